/*
 * The bodies and users `ltvpipe serve` reads: a request body is checked
 * before any parser sees it (NUL bytes, invalid UTF-8, escaped NULs, nesting
 * deeper than serve.json_max_depth), and every field of a user, from JSON or
 * from a CSV line, is checked by the same rules as `ltvpipe predict`'s
 * (predict_user.c), so hostile input gets a 400 that names the field. Shared
 * with the predict routes through serve_internal.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ltv/predict_user.h"
#include "ltv/serve_internal.h"
#include "ltv/timeutil.h"

/* ---- checking a body ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when invalid. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		len = 2;
		cp = p[0] & 0x1F;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		len = 3;
		cp = p[0] & 0x0F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/*
 * 0 when body is text a parser may see: UTF-8, no NUL byte and, for JSON, no
 * escaped NUL (\u0000 would cut a C string short) and nesting at most
 * max_depth. Else answers 400 naming the byte offset.
 */
int serve_body_check(const char *body, size_t len, int json, int64_t max_depth,
		     struct serve_reply *out)
{
	const unsigned char *p = (const unsigned char *)body;
	int64_t depth = 0;
	int in_string = 0;

	for (size_t i = 0; i < len;) {
		size_t n;

		if (p[i] == 0) {
			serve_reply_error(out, 400, "nul_byte", NULL,
					  "the body has a NUL byte at offset %zu; send UTF-8 text", i);
			return -1;
		}
		n = utf8_char(p + i, len - i);
		if (n == 0) {
			serve_reply_error(out, 400, "invalid_utf8", NULL,
					  "the body is not valid UTF-8 at offset %zu; send UTF-8 text", i);
			return -1;
		}
		if (json && in_string && p[i] == '\\' && i + 1 < len) {
			if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0) {
				serve_reply_error(out, 400, "nul_escape", NULL,
						  "the body has an escaped NUL (\\u0000) at offset %zu; "
						  "names and values cannot hold one", i);
				return -1;
			}
			i += 2;
			continue;
		}
		if (json && p[i] == '"')
			in_string = !in_string;
		else if (json && !in_string && (p[i] == '[' || p[i] == '{') && ++depth > max_depth) {
			serve_reply_error(out, 400, "too_deep", NULL,
					  "JSON nested deeper than serve.json_max_depth (%lld) at offset %zu",
					  (long long)max_depth, i);
			return -1;
		} else if (json && !in_string && (p[i] == ']' || p[i] == '}')) {
			depth--;
		}
		i += n;
	}
	return 0;
}

/* The parsed JSON body, or NULL with a 400 answered. Caller deletes. */
cJSON *serve_parse_json(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *end = NULL;
	cJSON *root;

	if (serve_body_check(rq->body, rq->len, 1, s->max_depth, out) < 0)
		return NULL;
	root = cJSON_ParseWithLengthOpts(rq->body, rq->len, &end, 0);
	if (!root) {
		size_t at = end && end >= rq->body ? (size_t)(end - rq->body) : 0;

		serve_reply_error(out, 400, "invalid_json", NULL,
				  rq->len ? "the body is not JSON (error at offset %zu)"
					  : "the body is empty%.0zu; send a JSON object", at);
		return NULL;
	}
	while (end && end < rq->body + rq->len && strchr(" \t\r\n", *end))
		end++;
	if (end && end < rq->body + rq->len) {
		serve_reply_error(out, 400, "invalid_json", NULL,
				  "text after the JSON value at offset %zu; send one value",
				  (size_t)(end - rq->body));
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* ---- users from a body ---- */

static int is_feature(const char *name)
{
	for (size_t k = 0; predict_input_names[k]; k++)
		if (strcmp(predict_input_names[k], name) == 0)
			return 1;
	return 0;
}

/* An attribute the model was trained with (columns.attributes): a user field too. */
static int is_model_attr(const struct loaded_model *m, const char *name)
{
	for (size_t k = 0; k < m->enc.n_attrs; k++)
		if (strcmp(m->enc.attrs[k].name, name) == 0)
			return 1;
	return 0;
}

/* What a user may carry beside the features. */
static const char user_fields[] = "app, campaign, install_time, as_of, user_id";

static void field_name(char *buf, size_t size, const char *prefix, const char *name)
{
	char clipped[72];

	snprintf(buf, size, "%s%s", prefix, serve_clip(name, 64, clipped, sizeof(clipped)));
}

/* Sets one named value of a user given as text (CSV) or a number (JSON: text NULL). */
int serve_user_field(struct user_batch *b, size_t row, const char *name, const char *text,
		     const cJSON *item, struct serve_user_text *ut, const char *prefix,
		     struct serve_reply *out)
{
	const char **slot = strcmp(name, "app") == 0 ? &ut->app
			  : strcmp(name, "campaign") == 0 ? &ut->campaign
			  : strcmp(name, "install_time") == 0 ? &ut->install_time
			  : strcmp(name, "as_of") == 0 ? &ut->as_of
			  : strcmp(name, "user_id") == 0 ? &ut->user_id : NULL;
	struct ltv_err err = { 0 };
	char field[160];
	double v;
	int input;

	/* The field's name is written only for an error: a batch has thousands of fields. */
	if (slot) {
		if (item && cJSON_IsNull(item) && slot == &ut->campaign)
			return 0;
		if (item && !cJSON_IsString(item)) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field, "%s must be a string", field);
			return -1;
		}
		if (!item && slot == &ut->user_id && !*text)
			return 0; /* an empty CSV cell: no user_id, so no experiment arm */
		*slot = item ? item->valuestring : text;
		if (slot == &ut->user_id && (!**slot || strlen(*slot) > SERVE_USER_ID_MAX)) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field,
					  "%s must have 1 to %d bytes", field, SERVE_USER_ID_MAX);
			return -1;
		}
		return 0;
	}
	if (user_batch_attr_index(b, name) >= 0) { /* an attribute of the model: a string */
		if (!item && !*text)
			return 0; /* an empty CSV cell: not given */
		if (item && !cJSON_IsString(item)) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field, "%s must be a string", field);
			return -1;
		}
		if (user_batch_set_attr(b, row, name, item ? item->valuestring : text, &err) < 0) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field, "%s%s", prefix, err.msg);
			return -1;
		}
		return 0;
	}
	input = predict_input_index(name);
	if (input < 0) {
		field_name(field, sizeof(field), prefix, name);
		serve_reply_error(out, 400, "unknown_field", field, "%s is not a field; use %s or a feature: %s",
				  field, user_fields, predict_input_list);
		return -1;
	}
	if (item) {
		if (!cJSON_IsNumber(item)) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field, "%s must be a number", field);
			return -1;
		}
		v = item->valuedouble;
	} else if (!*text) {
		return 0; /* an empty CSV cell: not given */
	} else if (parse_double(text, &v) < 0) {
		char shown[40];

		field_name(field, sizeof(field), prefix, name);
		serve_reply_error(out, 400, "invalid_field", field, "%s: '%s' is not a number", field,
				  serve_clip(text, 32, shown, sizeof(shown)));
		return -1;
	}
	if (strcmp(predict_input_names[input], "age_days") == 0)
		ut->has_age = 1;
	if (user_batch_set_input(b, row, input, v, &err) < 0) {
		field_name(field, sizeof(field), prefix, name);
		serve_reply_error(out, 400, "invalid_field", field, "%s%s", prefix, err.msg);
		return -1;
	}
	return 0;
}

/* Checks a user's text fields together: names, and install_time (with as_of) as its age. */
int serve_user_finish(struct user_batch *b, size_t row, const struct serve_user_text *ut,
		      const char *prefix, struct serve_reply *out)
{
	struct ltv_err err = { 0 };
	char field[160], shown[72];
	int64_t install, as_of = (int64_t)time(NULL);

	if (user_batch_set_names(b, row, ut->app, ut->campaign, &err) < 0) {
		field_name(field, sizeof(field), prefix, ut->app && *ut->app ? "campaign" : "app");
		if (ut->app && strlen(ut->app) > PREDICT_NAME_MAX)
			field_name(field, sizeof(field), prefix, "app");
		serve_reply_error(out, 400, "invalid_field", field, "%s%s", prefix, err.msg);
		return -1;
	}
	if (ut->as_of && time_parse_iso8601(ut->as_of, &as_of) < 0) {
		field_name(field, sizeof(field), prefix, "as_of");
		serve_reply_error(out, 400, "invalid_field", field,
				  "%s '%s' is not an ISO 8601 date or date-time (e.g. 2025-06-30T12:00:00Z)",
				  field, serve_clip(ut->as_of, 64, shown, sizeof(shown)));
		return -1;
	}
	if (!ut->install_time)
		return 0;
	field_name(field, sizeof(field), prefix, "install_time");
	if (ut->has_age) {
		serve_reply_error(out, 400, "invalid_field", field,
				  "%s and age_days both given; give one", field);
		return -1;
	}
	if (time_parse_iso8601(ut->install_time, &install) < 0) {
		serve_reply_error(out, 400, "invalid_field", field,
				  "%s '%s' is not an ISO 8601 date or date-time (e.g. 2025-06-30T12:00:00Z)",
				  field, serve_clip(ut->install_time, 64, shown, sizeof(shown)));
		return -1;
	}
	if (install > as_of) {
		serve_reply_error(out, 400, "invalid_field", field,
				  "%s is after as_of (default: now); give an earlier install time", field);
		return -1;
	}
	/* whole days complete at as_of, as the features stage counts a user's age */
	if (user_batch_set(b, row, "age_days", (double)((as_of - install) / 86400), &err) < 0) {
		serve_reply_error(out, 400, "invalid_field", field, "%s%s", prefix, err.msg);
		return -1;
	}
	return 0;
}

int serve_user_from_json(struct user_batch *b, size_t row, const cJSON *obj, const char *prefix,
			 struct serve_reply *out)
{
	struct serve_user_text ut = { 0 };
	const cJSON *item;

	if (!cJSON_IsObject(obj)) {
		serve_reply_error(out, 400, "invalid_field", *prefix ? prefix : NULL,
				  "%s must be a JSON object with app, the features and optional campaign",
				  *prefix ? prefix : "the body");
		return -1;
	}
	cJSON_ArrayForEach(item, obj)
		if (serve_user_field(b, row, item->string, NULL, item, &ut, prefix, out) < 0)
			return -1;
	return serve_user_finish(b, row, &ut, prefix, out);
}

int serve_csv_header(const struct loaded_model *m, char *const *names, size_t n,
		     size_t *out_id_col, size_t *out_as_of_col, struct serve_reply *out)
{
	for (size_t k = 0; k < n; k++) {
		const char *name = names[k];
		char field[96];

		if (strcmp(name, "user_id") == 0)
			*out_id_col = k;
		else if (strcmp(name, "as_of") == 0)
			*out_as_of_col = k;
		else if (!is_feature(name) && !is_model_attr(m, name) && strcmp(name, "app") &&
			 strcmp(name, "campaign") && strcmp(name, "install_time")) {
			field_name(field, sizeof(field), "header.", name);
			serve_reply_error(out, 400, "unknown_field", field,
					  "CSV column '%s' is not a field; use %s or a feature: %s",
					  field + 7, user_fields, predict_input_list);
			return -1;
		}
	}
	return 0;
}
