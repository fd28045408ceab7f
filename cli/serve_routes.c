/*
 * `ltvpipe serve`'s routes: the static table the dispatcher (serve.c) reads,
 * and one handler per route. Request bodies are checked before any parser
 * sees them — NUL bytes, invalid UTF-8, escaped NULs, nesting deeper than
 * serve.json_max_depth — and every field is checked by the same rules as
 * `ltvpipe predict`'s (predict_user.c), so hostile input gets a 400 that
 * names the field. Predictions go through serving_predict and
 * predict_user_json like the CLI's.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <csv.h>
#include <microhttpd.h>

#include "ltv/explain.h"
#include "ltv/log.h"
#include "ltv/predict_user.h"
#include "ltv/registry.h"
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
static int body_check(const char *body, size_t len, int json, int64_t max_depth,
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
static cJSON *parse_json(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *end = NULL;
	cJSON *root;

	if (body_check(rq->body, rq->len, 1, s->max_depth, out) < 0)
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

/* One user's text fields before they are checked together. */
struct user_text {
	const char *app, *campaign, *install_time, *as_of, *user_id;
	int has_age;
};

/* Longest user_id accepted, in bytes (the experiment log keeps 127). */
#define USER_ID_MAX 127

static void field_name(char *buf, size_t size, const char *prefix, const char *name)
{
	char clipped[72];

	snprintf(buf, size, "%s%s", prefix, serve_clip(name, 64, clipped, sizeof(clipped)));
}

/* Sets one named value of a user given as text (CSV) or a number (JSON: text NULL). */
static int user_field(struct user_batch *b, size_t row, const char *name, const char *text,
		      const cJSON *item, struct user_text *ut, const char *prefix,
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
		if (slot == &ut->user_id && (!**slot || strlen(*slot) > USER_ID_MAX)) {
			field_name(field, sizeof(field), prefix, name);
			serve_reply_error(out, 400, "invalid_field", field,
					  "%s must have 1 to %d bytes", field, USER_ID_MAX);
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
static int user_finish(struct user_batch *b, size_t row, const struct user_text *ut,
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

static int user_from_json(struct user_batch *b, size_t row, const cJSON *obj, const char *prefix,
			  struct serve_reply *out)
{
	struct user_text ut = { 0 };
	const cJSON *item;

	if (!cJSON_IsObject(obj)) {
		serve_reply_error(out, 400, "invalid_field", *prefix ? prefix : NULL,
				  "%s must be a JSON object with app, the features and optional campaign",
				  *prefix ? prefix : "the body");
		return -1;
	}
	cJSON_ArrayForEach(item, obj)
		if (user_field(b, row, item->string, NULL, item, &ut, prefix, out) < 0)
			return -1;
	return user_finish(b, row, &ut, prefix, out);
}

/* ---- predictions ---- */

/* About what one user's answer takes (3 horizons), so a batch answer is allocated once. */
#define BATCH_JSON_USER_BYTES 600
#define BATCH_CSV_USER_BYTES 320

/* Serves every row of b with model m; 0, or the error answered in out. */
static int serve_batch(struct serve *s, const struct loaded_model *m, struct user_batch *b,
		       struct served *sv, struct serve_reply *out)
{
	struct ltv_err err = { 0 };
	size_t *rows = xmalloc((b->n ? b->n : 1) * sizeof(size_t));
	int ret;

	for (size_t i = 0; i < b->n; i++)
		rows[i] = i;
	ret = user_batch_finish(b, m, &err);
	if (ret == 0)
		ret = serving_predict(m, &b->d, rows, b->n, sv, &err);
	free(rows);
	if (ret == LTV_EINVAL) { /* a user the model's methods cannot describe */
		serve_reply_error(out, 400, "unservable", NULL, "the model cannot serve these users: %s",
				  err.msg);
		return -1;
	}
	if (ret < 0) {
		serve_reply_error(out, 500, "internal", NULL, "prediction failed: %s", err.msg);
		return -1;
	}
	serve_metrics_predictions(&s->metrics, m->version, sv->method, sv->n);
	return 0;
}

/*
 * Appends row i's answer: the object `ltvpipe predict` prints (with its
 * warnings), then the experiment arm that served it.
 */
static void answer_user(struct serve *s, const struct serve_arm *arm, const struct loaded_model *m,
			const struct user_batch *b, const struct served *sv, size_t i, struct jbuf *out)
{
	char warning[1024];

	predict_user_json(out, m, b, sv, i);
	predict_user_warnings(out, m, b, i, warning, sizeof(warning));
	serve_experiment_answer(s, arm, m, b, sv, i, out);
}

void serve_predict_jobs(struct serve *s, struct predict_job *const *jobs, size_t n)
{
	const struct loaded_model *m = &jobs[0]->model->m;
	struct user_batch own, *b = jobs[0]->user;
	struct serve_reply failed = { 0 };
	struct served sv;
	uint32_t *group = NULL;

	atomic_fetch_add(&s->metrics.batches, 1);
	atomic_fetch_add(&s->metrics.batched_users, n);
	if (n > 1) { /* one alone is served from its own rows: no copy */
		b = &own;
		group = xmalloc(n * sizeof(*group));
		user_batch_init(b, m, n);
		for (size_t i = 0; i < n; i++) {
			user_batch_copy_row(b, i, jobs[i]->user, 0);
			group[i] = (uint32_t)i;
		}
		/* Each request its own: an answer never depends on the requests served with it. */
		b->d.group = group;
	}
	if (serve_batch(s, m, b, &sv, n == 1 ? jobs[0]->out : &failed) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct jbuf text;

			jbuf_init(&text);
			answer_user(s, jobs[i]->arm, m, b, &sv, i, &text);
			jobs[i]->out->version = m->version;
			serve_reply_json(jobs[i]->out, 200, &text);
		}
		served_release(&sv);
	} else if (n > 1) {
		for (size_t i = 0; i < n; i++)
			serve_predict_jobs(s, jobs + i, 1);
	}
	free(failed.body);
	if (n > 1)
		user_batch_release(b);
	free(group);
}

/*
 * The version the user of a single prediction is served with (a reference
 * taken): the request's, or its experiment arm's when the body names a
 * user_id (its type and length are checked with the other fields).
 */
static struct serve_model *route_user(struct serve *s, struct serve_request *rq, const cJSON *root,
				      struct serve_arm *out_arm)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "user_id");
	const cJSON *as_of_item = cJSON_GetObjectItemCaseSensitive(root, "as_of");
	int64_t as_of = (int64_t)time(NULL);
	const char *user_id = cJSON_IsString(id) && *id->valuestring &&
			      strlen(id->valuestring) <= USER_ID_MAX ? id->valuestring : NULL;

	if (cJSON_IsString(as_of_item) && time_parse_iso8601(as_of_item->valuestring, &as_of) < 0)
		as_of = (int64_t)time(NULL); /* refused with its field by user_from_json */
	return serve_experiment_route(s, rq->model, user_id, as_of, out_arm);
}

/*
 * POST /v1/predict?explain=1: the same answer with "explain" added, served
 * on its own (never through the batcher): an explanation builds an XGBoost
 * DMatrix per tree model and predicts the user once per method.
 */
static void predict_explained(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = parse_json(s, rq, out);
	struct ltv_err err = { 0 };
	struct serve_arm arm;
	struct serve_model *use;
	const struct loaded_model *m;
	struct user_batch b;
	struct served sv;
	struct jbuf text;

	if (!root)
		return;
	use = route_user(s, rq, root, &arm);
	m = &use->m;
	user_batch_init(&b, m, 1);
	if (user_from_json(&b, 0, root, "", out) == 0 && serve_batch(s, m, &b, &sv, out) == 0) {
		jbuf_init(&text);
		answer_user(s, &arm, m, &b, &sv, 0, &text);
		out->version = m->version;
		if (predict_user_explain(&text, m, &b, &sv, 0, &err) == 0) {
			serve_reply_json(out, 200, &text);
		} else {
			jbuf_release(&text);
			serve_reply_error(out, 500, "internal", NULL, "%s", err.msg);
		}
		served_release(&sv);
	}
	user_batch_release(&b);
	serve_model_put(use);
	cJSON_Delete(root);
}

static void on_predict(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *explain = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "explain");
	cJSON *root;
	struct user_batch b;
	struct serve_arm arm;
	struct serve_model *use;

	if (explain && strcmp(explain, "0") != 0 && strcmp(explain, "false") != 0) {
		if (strcmp(explain, "1") != 0 && strcmp(explain, "true") != 0) {
			serve_reply_error(out, 400, "invalid_field", "explain",
					  "explain takes 1 or 0 (true or false)");
			return;
		}
		predict_explained(s, rq, out);
		return;
	}
	serve_batcher_arriving(s, 1);
	root = parse_json(s, rq, out);
	if (!root) {
		serve_batcher_arriving(s, -1);
		return;
	}
	use = route_user(s, rq, root, &arm);
	user_batch_init(&b, &use->m, 1);
	if (user_from_json(&b, 0, root, "", out) == 0) {
		struct predict_job job = { .user = &b, .model = use, .out = out,
					   .arm = arm.experiment[0] ? &arm : NULL };

		serve_batcher_predict(s, &job);
	} else {
		serve_batcher_arriving(s, -1);
	}
	user_batch_release(&b);
	serve_model_put(use);
	cJSON_Delete(root);
}

static int batch_size_ok(struct serve *s, size_t n, struct serve_reply *out)
{
	if (n == 0) {
		serve_reply_error(out, 400, "empty_batch", NULL, "the batch has no users; send at least one");
		return 0;
	}
	if (n > (size_t)s->max_batch) {
		serve_reply_error(out, 413, "batch_too_large", NULL,
				  "%zu users; serve.max_batch is %lld: split the batch", n,
				  (long long)s->max_batch);
		return 0;
	}
	return 1;
}

/*
 * A batch request's users split by experiment arm: each user that names a
 * user_id goes to its arm (serve_experiment_route, the salted hash `score`
 * uses), so the batch is served as up to two batches, the served version's
 * (control) and the candidate's, and answered in the order given.
 */
struct arm_split {
	struct serve_model *model[2]; /* control (the served version), candidate */
	struct user_batch b[2];
	struct served sv[2];
	int have[2], served[2];
	size_t n_arm[2];
	struct serve_arm *arms;       /* per user */
	size_t *row_of;               /* per user: its row in b[arms[i].candidate] */
	size_t n;
};

static void split_init(struct arm_split *x, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->n = n;
	x->arms = xcalloc(n ? n : 1, sizeof(*x->arms));
	x->row_of = xcalloc(n ? n : 1, sizeof(*x->row_of));
}

/* User i goes to use (a reference taken), the model of its arm x->arms[i]. */
static void split_take(struct arm_split *x, size_t i, struct serve_model *use)
{
	const int k = x->arms[i].candidate;

	if (!x->model[k])
		x->model[k] = use;
	else
		serve_model_put(use);
	x->row_of[i] = x->n_arm[k]++;
}

/* Routes user i (user_id NULL: none, so the served version). */
static void split_route(struct serve *s, struct serve_request *rq, struct arm_split *x, size_t i,
			const char *user_id, int64_t as_of)
{
	split_take(x, i, serve_experiment_route(s, rq->model, user_id, as_of, &x->arms[i]));
}

/* After every user is routed: the batch of each arm, to fill with split_batch. */
static void split_batches(struct arm_split *x)
{
	for (int k = 0; k < 2; k++)
		if (x->n_arm[k]) {
			user_batch_init(&x->b[k], &x->model[k]->m, x->n_arm[k]);
			x->have[k] = 1;
		}
}

static struct user_batch *split_batch(struct arm_split *x, size_t i)
{
	return &x->b[x->arms[i].candidate];
}

/* Serves both arms; 0, or the error answered in out. */
static int split_serve(struct serve *s, struct arm_split *x, struct serve_reply *out)
{
	for (int k = 0; k < 2; k++)
		if (x->have[k]) {
			if (serve_batch(s, &x->model[k]->m, &x->b[k], &x->sv[k], out) < 0)
				return -1;
			x->served[k] = 1;
		}
	return 0;
}

/* The experiment arm of user i, or NULL when none applies. */
static const struct serve_arm *split_arm(const struct arm_split *x, size_t i)
{
	return x->arms[i].experiment[0] ? &x->arms[i] : NULL;
}

static void split_release(struct arm_split *x)
{
	for (int k = 0; k < 2; k++) {
		if (x->served[k])
			served_release(&x->sv[k]);
		if (x->have[k])
			user_batch_release(&x->b[k]);
		serve_model_put(x->model[k]);
	}
	free(x->arms);
	free(x->row_of);
}

static void batch_json(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = parse_json(s, rq, out);
	const cJSON *item;
	struct arm_split x;
	size_t n, i = 0;
	int ok = 1;
	struct jbuf text;

	if (!root)
		return;
	if (!cJSON_IsArray(root)) {
		serve_reply_error(out, 400, "invalid_json", NULL,
				  "the body must be a JSON array of users (or CSV with Content-Type text/csv)");
		cJSON_Delete(root);
		return;
	}
	n = (size_t)cJSON_GetArraySize(root);
	if (!batch_size_ok(s, n, out)) {
		cJSON_Delete(root);
		return;
	}
	split_init(&x, n);
	cJSON_ArrayForEach(item, root) {
		if (cJSON_IsObject(item))
			split_take(&x, i, route_user(s, rq, item, &x.arms[i]));
		else
			split_route(s, rq, &x, i, NULL, 0);
		i++;
	}
	split_batches(&x);
	i = 0;
	cJSON_ArrayForEach(item, root) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "[%zu].", i);
		if (user_from_json(split_batch(&x, i), x.row_of[i], item, prefix, out) < 0) {
			ok = 0;
			break;
		}
		i++;
	}
	if (ok && split_serve(s, &x, out) == 0) {
		jbuf_init(&text);
		jbuf_reserve(&text, n * BATCH_JSON_USER_BYTES);
		jbuf_addf(&text, "{\"model_version\":%lld,\"n\":%zu,\"predictions\":[",
			  (long long)rq->model->m.version, n);
		for (i = 0; i < n; i++) {
			const int k = x.arms[i].candidate;

			if (i)
				jbuf_puts(&text, ",");
			answer_user(s, split_arm(&x, i), &x.model[k]->m, &x.b[k], &x.sv[k], x.row_of[i],
				    &text);
		}
		jbuf_puts(&text, "]}");
		serve_reply_json(out, 200, &text);
	}
	split_release(&x);
	cJSON_Delete(root);
}

/* CSV records as they are parsed (libcsv callbacks). */
struct csv_rows {
	char ***rows;       /* rows[r][c], owned */
	size_t *n_fields;
	size_t n, cap;
	char **cur;
	size_t n_cur, cap_cur;
	size_t limit;       /* rows beyond this are counted, not kept */
	size_t total;
};

static void csv_on_field(void *data, size_t len, void *ctx)
{
	struct csv_rows *c = ctx;

	if (c->total > c->limit)
		return;
	ARRAY_GROW(c->cur, c->n_cur + 1, c->cap_cur);
	c->cur[c->n_cur++] = xstrndup(data ? data : "", len);
}

static void csv_on_record(int term, void *ctx)
{
	struct csv_rows *c = ctx;

	(void)term;
	if (c->total++ > c->limit)
		return;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->rows = xrealloc(c->rows, c->cap * sizeof(char **));
		c->n_fields = xrealloc(c->n_fields, c->cap * sizeof(size_t));
	}
	c->rows[c->n] = c->cur;
	c->n_fields[c->n++] = c->n_cur;
	c->cur = NULL;
	c->n_cur = c->cap_cur = 0;
}

static void csv_rows_release(struct csv_rows *c)
{
	for (size_t r = 0; r < c->n; r++) {
		for (size_t k = 0; k < c->n_fields[r]; k++)
			free(c->rows[r][k]);
		free(c->rows[r]);
	}
	for (size_t k = 0; k < c->n_cur; k++)
		free(c->cur[k]);
	free(c->cur);
	free(c->rows);
	free(c->n_fields);
}

/*
 * The user_id of CSV line r (column id_col; SIZE_MAX: none) for routing, or
 * NULL when it has none (its length is checked with the other fields), and
 * the time its age is counted at (column as_of_col, else now).
 */
static const char *csv_user_id(const struct csv_rows *c, size_t r, size_t id_col, size_t as_of_col,
			       int64_t *out_as_of)
{
	const char *id = id_col != SIZE_MAX ? c->rows[r][id_col] : NULL;

	*out_as_of = (int64_t)time(NULL);
	if (as_of_col != SIZE_MAX && c->n_fields[r] > as_of_col &&
	    time_parse_iso8601(c->rows[r][as_of_col], out_as_of) < 0)
		*out_as_of = (int64_t)time(NULL); /* refused with its field by user_finish */
	if (!id || c->n_fields[r] <= id_col || !*id || strlen(id) > USER_ID_MAX)
		return NULL;
	return id;
}

/*
 * A CSV batch: routed user by user as a JSON batch is (a user_id column);
 * while an experiment applies, the answer has the columns experiment, arm
 * and logged after the prediction's, and model_version is the arm's.
 */
static void batch_csv(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct csv_rows c = { 0 };
	struct csv_parser p;
	struct arm_split x;
	struct jbuf text;
	size_t n = 0, id_col = SIZE_MAX, as_of_col = SIZE_MAX;
	int have_split = 0, ok = 1, any_arm = 0;

	if (body_check(rq->body, rq->len, 0, 0, out) < 0)
		return;
	c.limit = (size_t)s->max_batch + 1;
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
		serve_reply_error(out, 500, "internal", NULL, "cannot start the CSV parser");
		return;
	}
	if (csv_parse(&p, rq->body, rq->len, csv_on_field, csv_on_record, &c) != rq->len ||
	    csv_fini(&p, csv_on_field, csv_on_record, &c) != 0) {
		serve_reply_error(out, 400, "invalid_csv", NULL,
				  "the body is not CSV: %s near record %zu (RFC 4180: quote fields "
				  "holding commas, quotes or newlines)", csv_strerror(csv_error(&p)), c.total + 1);
		goto out;
	}
	if (c.n == 0) {
		serve_reply_error(out, 400, "invalid_csv", NULL,
				  "the body has no header line; send app,campaign,<feature>,... then one line per user");
		goto out;
	}
	n = c.total - 1;
	if (!batch_size_ok(s, n, out))
		goto out;
	for (size_t k = 0; k < c.n_fields[0]; k++) {
		const char *name = c.rows[0][k];
		char field[96];

		if (strcmp(name, "user_id") == 0)
			id_col = k;
		else if (strcmp(name, "as_of") == 0)
			as_of_col = k;
		else if (!is_feature(name) && !is_model_attr(&rq->model->m, name) && strcmp(name, "app") &&
			 strcmp(name, "campaign") && strcmp(name, "install_time")) {
			field_name(field, sizeof(field), "header.", name);
			serve_reply_error(out, 400, "unknown_field", field,
					  "CSV column '%s' is not a field; use %s or a feature: %s",
					  field + 7, user_fields, predict_input_list);
			goto out;
		}
	}
	split_init(&x, n);
	have_split = 1;
	for (size_t r = 1; r < c.n; r++) {
		int64_t as_of;
		const char *id = csv_user_id(&c, r, id_col, as_of_col, &as_of);

		split_route(s, rq, &x, r - 1, id, as_of);
		any_arm |= split_arm(&x, r - 1) != NULL;
	}
	split_batches(&x);
	for (size_t r = 1; r < c.n && ok; r++) {
		struct user_text ut = { 0 };
		char prefix[40];

		snprintf(prefix, sizeof(prefix), "line %zu: ", r + 1);
		if (c.n_fields[r] != c.n_fields[0]) {
			serve_reply_error(out, 400, "invalid_csv", NULL, "line %zu has %zu fields, the header %zu",
					  r + 1, c.n_fields[r], c.n_fields[0]);
			ok = 0;
			break;
		}
		for (size_t k = 0; k < c.n_fields[0] && ok; k++)
			ok = user_field(split_batch(&x, r - 1), x.row_of[r - 1], c.rows[0][k], c.rows[r][k],
					NULL, &ut, prefix, out) == 0;
		if (ok)
			ok = user_finish(split_batch(&x, r - 1), x.row_of[r - 1], &ut, prefix, out) == 0;
	}
	if (ok && split_serve(s, &x, out) == 0) {
		size_t len;
		char *body;

		jbuf_init(&text);
		jbuf_reserve(&text, n * BATCH_CSV_USER_BYTES);
		predict_user_csv_header(&text, &rq->model->m);
		if (any_arm) { /* the header's CRLF after the experiment's columns */
			text.len -= 2;
			jbuf_puts(&text, ",experiment,arm,logged\r\n");
		}
		for (size_t i = 0; i < n; i++) {
			const int k = x.arms[i].candidate;

			predict_user_csv(&text, &x.model[k]->m, &x.b[k], &x.sv[k], x.row_of[i]);
			if (any_arm)
				serve_experiment_csv(s, split_arm(&x, i), &x.model[k]->m, &x.b[k], &x.sv[k],
						     x.row_of[i], &text);
		}
		body = jbuf_take(&text, &len);
		serve_reply_text(out, 200, "text/csv; charset=utf-8", body, len);
	}
out:
	if (have_split)
		split_release(&x);
	csv_rows_release(&c);
	csv_free(&p);
}

static void on_predict_batch(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	const char *type = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);

	if (type && strncasecmp(type, "text/csv", 8) == 0)
		batch_csv(s, rq, out);
	else
		batch_json(s, rq, out);
}

/* ---- service ---- */

static void on_health(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;

	(void)s;
	(void)rq;
	jbuf_init(&b);
	jbuf_puts(&b, "{\"status\":\"ok\"}");
	serve_reply_json(out, 200, &b);
}

static void on_ready(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct serve_model *sm = serve_model_get(s);
	struct jbuf b;

	(void)rq;
	if (!sm) {
		serve_reply_error(out, 503, "not_ready", NULL, "no model version loaded yet ('%s' is not set)",
				  s->model_ref);
		return;
	}
	jbuf_init(&b);
	jbuf_addf(&b, "{\"status\":\"ready\",\"model_version\":%lld,\"model\":", (long long)sm->m.version);
	jbuf_json_str(&b, s->model_ref);
	jbuf_puts(&b, "}");
	out->version = sm->m.version;
	serve_model_put(sm);
	serve_reply_json(out, 200, &b);
}

static void on_metrics(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;
	size_t len;
	char *text;

	(void)rq;
	jbuf_init(&b);
	serve_metrics_write(&s->metrics, &b);
	serve_experiment_metrics(s, &b);
	text = jbuf_take(&b, &len);
	serve_reply_text(out, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static void on_page(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct jbuf b;
	size_t len;
	char *text;

	(void)s;
	(void)rq;
	jbuf_init(&b);
	for (size_t i = 0; serve_page_lines[i]; i++)
		jbuf_puts(&b, serve_page_lines[i]);
	text = jbuf_take(&b, &len);
	serve_reply_text(out, 200, "text/html; charset=utf-8", text, len);
}

/* ---- the registry's models and aliases ---- */

/* A registry report's rows as a JSON array of objects; numbers where the text is one. */
struct rows_json {
	struct jbuf *b;
	size_t n;
};

static int row_json(void *ctx, int n_cols, char **names, char **values)
{
	struct rows_json *rj = ctx;

	jbuf_puts(rj->b, rj->n++ ? ",{" : "{");
	for (int c = 0; c < n_cols; c++) {
		double v;

		if (c)
			jbuf_puts(rj->b, ",");
		jbuf_json_str(rj->b, names[c]);
		jbuf_puts(rj->b, ":");
		if (strcmp(names[c], "metrics") == 0 && *values[c] == '{') {
			cJSON *m = cJSON_Parse(values[c]);

			if (m)
				jbuf_puts(rj->b, values[c]);
			else
				jbuf_json_str(rj->b, values[c]);
			cJSON_Delete(m);
		} else if (*values[c] && parse_double(values[c], &v) == 0 && isfinite(v)) {
			jbuf_json_num(rj->b, v);
		} else {
			jbuf_json_str(rj->b, values[c]);
		}
	}
	jbuf_puts(rj->b, "}");
	return 0;
}

static int open_registry(struct serve *s, struct registry **reg, struct serve_reply *out)
{
	struct ltv_err err = { 0 };

	if (registry_open_readonly(s->cfg->registry.path, reg, &err) < 0 ||
	    registry_read_begin(*reg, &err) < 0) {
		serve_reply_error(out, 503, "not_ready", NULL, "cannot read the registry: %s", err.msg);
		registry_close(*reg);
		*reg = NULL;
		return -1;
	}
	return 0;
}

static void report(struct serve *s, const char *name, int64_t param, const char *key,
		   struct serve_reply *out)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct jbuf b;
	struct rows_json rj = { &b, 0 };
	struct serve_model *sm;

	if (open_registry(s, &reg, out) < 0)
		return;
	jbuf_init(&b);
	jbuf_puts(&b, "{");
	sm = serve_model_get(s);
	if (sm) {
		jbuf_addf(&b, "\"served_version\":%lld,", (long long)sm->m.version);
		out->version = sm->m.version;
	}
	serve_model_put(sm);
	if (strcmp(name, "model_versions") == 0) /* the page offers alias moves only when they can work */
		jbuf_addf(&b, "\"alias_moves\":%s,", s->token && *s->token ? "true" : "false");
	jbuf_json_str(&b, key);
	jbuf_puts(&b, ":[");
	if (registry_report(reg, name, param, row_json, &rj, &err) < 0) {
		jbuf_release(&b);
		serve_reply_error(out, 500, "internal", NULL, "reading the registry: %s", err.msg);
	} else {
		jbuf_puts(&b, "]}");
		serve_reply_json(out, 200, &b);
	}
	registry_close(reg);
}

static void on_models(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	(void)rq;
	report(s, "model_versions", 0, "versions", out);
}

static void on_alias_history(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	(void)rq;
	report(s, "alias_history", 0, "history", out);
}

/* Resolves a version number or alias in the registry; 0, or 404/400 answered. */
static int resolve(struct registry *reg, const char *ref, const char *field, int64_t *out_version,
		   struct serve_reply *out)
{
	struct ltv_err err = { 0 };
	char shown[72];
	int ret = model_resolve(reg, ref, out_version, &err);

	if (ret == LTV_ENOTFOUND)
		serve_reply_error(out, 404, "not_found", field, "%s", err.msg);
	else if (ret == LTV_EUSAGE)
		serve_reply_error(out, 400, "invalid_field", field,
				  "'%s' is not a model version; give a number, production or candidate",
				  serve_clip(ref, 64, shown, sizeof(shown)));
	else if (ret < 0)
		serve_reply_error(out, 500, "internal", NULL, "%s", err.msg);
	return ret;
}

/* "monitor": the latest drift report of version (include/ltv/monitor.h), or null. */
static void latest_monitor_json(struct jbuf *b, struct registry *reg, int64_t version)
{
	struct ltv_err err = { 0 };
	struct monitor_row mon;

	jbuf_puts(b, "\"monitor\":");
	if (registry_monitor_latest(reg, version, &mon, &err) < 0) {
		jbuf_puts(b, "null");
		return;
	}
	jbuf_addf(b, "{\"id\":%lld,\"created_at\":", (long long)mon.id);
	jbuf_json_str(b, mon.created_at);
	jbuf_puts(b, ",\"status\":");
	jbuf_json_str(b, mon.status);
	jbuf_puts(b, ",\"report\":");
	jbuf_puts(b, mon.report && *mon.report == '{' ? mon.report : "null");
	jbuf_puts(b, "}");
	monitor_row_release(&mon);
}

/*
 * "feature_importance" of version's tree models: the served model's when it
 * is that version, else the version loaded for this answer.
 */
static int importance_json(struct serve *s, struct registry *reg, int64_t version, struct jbuf *b,
			   struct ltv_err *err)
{
	struct serve_model *sm = serve_model_get(s);
	struct loaded_model other;
	int ret;

	if (sm && sm->m.version == version) {
		ret = explain_importance_json(b, &sm->m, err);
		serve_model_put(sm);
		return ret;
	}
	serve_model_put(sm);
	if ((ret = model_load(reg, &s->model_cfg, version, &other, err)) < 0)
		return ret;
	ret = explain_importance_json(b, &other, err);
	model_release(&other);
	return ret;
}

/* GET /v1/monitor: the served version's latest drift report. */
static void on_monitor(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct registry *reg = NULL;
	struct jbuf b;

	if (open_registry(s, &reg, out) < 0)
		return;
	jbuf_init(&b);
	jbuf_addf(&b, "{\"model_version\":%lld,", (long long)rq->model->m.version);
	out->version = rq->model->m.version;
	latest_monitor_json(&b, reg, rq->model->m.version);
	jbuf_puts(&b, "}");
	serve_reply_json(out, 200, &b);
	registry_close(reg);
}

static void on_model_show(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info features = { 0 }, select = { 0 };
	struct selection_row *sel = NULL;
	struct evaluation_row *evals = NULL;
	struct feature_params params = { 0 };
	size_t n_sel = 0, n_evals = 0;
	int64_t version;
	struct jbuf b;
	struct rows_json rj = { &b, 0 };
	double wape;
	int ret;

	if (open_registry(s, &reg, out) < 0)
		return;
	if (resolve(reg, rq->param, "version", &version, out) < 0) {
		registry_close(reg);
		return;
	}
	ret = registry_model_version_artefact(reg, version, "features", &features, &err);
	if (ret == 0)
		ret = feature_params_load(reg, &features, &params, &err);
	if (ret == 0)
		ret = registry_model_version_artefact(reg, version, "select", &select, &err);
	if (ret == 0)
		ret = registry_selection_load(reg, select.id, &sel, &n_sel, &err);
	if (ret == 0)
		ret = registry_evaluations_load(reg, version, &evals, &n_evals, &err);
	if (ret == 0)
		ret = registry_model_version_error(reg, version, &wape, &err);
	jbuf_init(&b);
	if (ret == 0) {
		char as_of[32];

		jbuf_addf(&b, "{\"version\":%lld,\"as_of\":", (long long)version);
		jbuf_json_str(&b, features.as_of == INT64_MIN ? "" : time_format_iso8601(features.as_of, as_of, sizeof(as_of)));
		jbuf_puts(&b, ",\"horizons\":[");
		for (size_t h = 0; h < params.horizons.n; h++)
			jbuf_addf(&b, "%s%lld", h ? "," : "", (long long)params.horizons.v[h]);
		jbuf_addf(&b, "],\"target_horizon\":%lld,\"validation_campaign_wape\":",
			  (long long)params.target_horizon);
		jbuf_json_num(&b, wape);
		jbuf_puts(&b, ",\"methods\":{");
		for (int m = 0; m < METHOD_COUNT; m++) {
			size_t campaigns = 0;

			for (size_t i = 0; i < n_sel; i++)
				campaigns += *sel[i].campaign && strcmp(sel[i].method, method_table[m]->name) == 0;
			jbuf_addf(&b, "%s\"%s\":{\"campaigns\":%zu}", m ? "," : "", method_table[m]->name, campaigns);
		}
		jbuf_puts(&b, "},\"campaigns\":[");
		for (size_t i = 0, k = 0; i < n_sel; i++) {
			if (!*sel[i].campaign)
				continue;
			jbuf_puts(&b, k++ ? ",{\"app\":" : "{\"app\":");
			jbuf_json_str(&b, sel[i].app_id);
			jbuf_puts(&b, ",\"campaign\":");
			jbuf_json_str(&b, sel[i].campaign);
			jbuf_puts(&b, ",\"method\":");
			jbuf_json_str(&b, sel[i].method);
			jbuf_puts(&b, "}");
		}
		jbuf_puts(&b, "],\"select_metrics\":");
		jbuf_puts(&b, select.metrics && *select.metrics ? select.metrics : "null");
		jbuf_puts(&b, ",\"artefacts\":[");
		ret = registry_report(reg, "version_artefacts", version, row_json, &rj, &err);
		jbuf_puts(&b, "],\"evaluations\":[");
		for (size_t i = 0; i < n_evals; i++) {
			char t[32];

			jbuf_addf(&b, "%s{\"id\":%lld,\"created_at\":", i ? "," : "", (long long)evals[i].id);
			jbuf_json_str(&b, evals[i].created_at);
			jbuf_puts(&b, ",\"as_of\":");
			jbuf_json_str(&b, time_format_iso8601(evals[i].as_of, t, sizeof(t)));
			jbuf_puts(&b, ",\"horizons\":");
			jbuf_json_str(&b, evals[i].horizons);
			jbuf_puts(&b, ",\"report_dir\":");
			jbuf_json_str(&b, evals[i].report_dir);
			jbuf_puts(&b, ",\"metrics\":");
			jbuf_puts(&b, evals[i].metrics && *evals[i].metrics ? evals[i].metrics : "null");
			jbuf_puts(&b, "}");
		}
		jbuf_puts(&b, "],");
		latest_monitor_json(&b, reg, version);
		jbuf_puts(&b, ",");
		ret = importance_json(s, reg, version, &b, &err);
		jbuf_puts(&b, "}");
	}
	if (ret == 0) {
		serve_reply_json(out, 200, &b);
	} else {
		jbuf_release(&b);
		serve_reply_error(out, 500, "internal", NULL, "model version %lld: %s", (long long)version, err.msg);
	}
	evaluation_rows_free(evals, n_evals);
	selection_rows_free(sel, n_sel);
	artefact_info_release(&features);
	artefact_info_release(&select);
	feature_params_release(&params);
	registry_close(reg);
}

/*
 * Moves an alias with `models promote`'s rules: the version must exist, an
 * alias already there is left alone, and the move is kept in alias_history
 * with who and why. {"rollback": true} moves it back to its previous version.
 */
static void on_alias_move(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = parse_json(s, rq, out);
	const cJSON *version_item, *reason_item, *rollback_item;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	const char *alias = rq->param, *reason;
	char shown[72];
	int64_t version = 0;
	struct alias_move mv;
	struct jbuf b;
	int ret, rollback;

	if (!root)
		return;
	if (strcmp(alias, "production") != 0 && strcmp(alias, "candidate") != 0) {
		serve_reply_error(out, 404, "not_found", "alias", "no alias '%s'; use production or candidate",
				  serve_clip(alias, 64, shown, sizeof(shown)));
		goto out;
	}
	version_item = cJSON_GetObjectItemCaseSensitive(root, "version");
	reason_item = cJSON_GetObjectItemCaseSensitive(root, "reason");
	rollback_item = cJSON_GetObjectItemCaseSensitive(root, "rollback");
	rollback = cJSON_IsTrue(rollback_item);
	if (!cJSON_IsObject(root) || (!rollback && !cJSON_IsNumber(version_item)) ||
	    (rollback && version_item)) {
		serve_reply_error(out, 400, "invalid_field", "version",
				  "send {\"version\": N, \"reason\": \"why\"} or {\"rollback\": true, \"reason\": \"why\"}");
		goto out;
	}
	if (!rollback && (version_item->valuedouble != floor(version_item->valuedouble) ||
			  version_item->valuedouble < 1 || version_item->valuedouble > 1e15)) {
		serve_reply_error(out, 400, "invalid_field", "version", "version must be a whole number >= 1");
		goto out;
	}
	if (reason_item && (!cJSON_IsString(reason_item) || strlen(reason_item->valuestring) > 500)) {
		serve_reply_error(out, 400, "invalid_field", "reason", "reason must be a string of at most 500 bytes");
		goto out;
	}
	reason = reason_item ? reason_item->valuestring
			     : rollback ? "rollback (ltvpipe serve)" : "promoted over HTTP (ltvpipe serve)";
	version = rollback ? 0 : (int64_t)version_item->valuedouble;
	/* As `models promote`: an existing registry, and every check inside the write transaction. */
	ret = registry_open_existing(s->cfg->registry.path, (int)s->cfg->registry.busy_timeout_s, &reg,
				     &err);
	if (ret == LTV_ENOTFOUND) {
		serve_reply_error(out, 503, "not_ready", NULL, "moving %s: %s", alias, err.msg);
		goto out;
	}
	if (ret == 0)
		ret = registry_begin(reg, &err);
	if (ret == 0 && rollback) {
		ret = registry_alias_previous(reg, alias, &version, &err);
		if (ret == LTV_ENOTFOUND) {
			serve_reply_error(out, 409, "conflict", "rollback", "%s", err.msg);
			goto out;
		}
	}
	if (ret == 0) {
		ret = registry_alias_move(reg, alias, version, "ltvpipe serve (bearer token)", reason, &mv,
					  &err);
		if (ret == LTV_ENOTFOUND) {
			serve_reply_error(out, 404, "not_found", "version", "%s", err.msg);
			goto out;
		}
	}
	if (ret == 0 && mv.moved)
		ret = registry_commit(reg, &err);
	if (ret < 0) { /* registry_close rolls back what was not committed */
		serve_reply_error(out, ret == LTV_EBUSY ? 409 : 500, ret == LTV_EBUSY ? "conflict" : "internal",
				  NULL, "moving %s: %s", alias, err.msg);
		goto out;
	}
	jbuf_init(&b);
	jbuf_puts(&b, "{\"alias\":");
	jbuf_json_str(&b, alias);
	jbuf_addf(&b, ",\"from\":%lld,\"to\":%lld,\"moved\":%s", (long long)mv.from,
		  (long long)version, mv.moved ? "true" : "false");
	if (mv.moved) {
		jbuf_puts(&b, ",\"reason\":");
		jbuf_json_str(&b, mv.reason);
		jbuf_addf(&b, ",\"candidate_unset\":%s", mv.candidate_unset ? "true" : "false");
	}
	jbuf_puts(&b, "}");
	serve_reply_json(out, 200, &b);
	if (mv.moved) {
		LOG(LOG_INFO, "%s: model version %lld -> %lld over HTTP (%s)", alias, (long long)mv.from,
		    (long long)version, mv.reason);
		serve_watch_poke(s);
	}
out:
	registry_close(reg);
	cJSON_Delete(root);
}

const struct route serve_routes[] = {
	{ "GET", "/", on_page, 0, "page" },
	{ "GET", "/health", on_health, 0, "health" },
	{ "GET", "/ready", on_ready, 0, "ready" },
	{ "GET", "/metrics", on_metrics, 0, "metrics" },
	{ "GET", "/v1/models", on_models, 0, "models" },
	{ "GET", "/v1/models/", on_model_show, ROUTE_PARAM, "model" },
	{ "GET", "/v1/monitor", on_monitor, ROUTE_MODEL, "monitor" },
	{ "POST", "/v1/predict", on_predict, ROUTE_BODY | ROUTE_MODEL, "predict" },
	{ "POST", "/v1/predict/batch", on_predict_batch, ROUTE_BODY | ROUTE_CSV | ROUTE_MODEL,
	  "predict_batch" },
	{ "GET", "/v1/aliases/history", on_alias_history, 0, "alias_history" },
	{ "POST", "/v1/aliases/", on_alias_move, ROUTE_BODY | ROUTE_TOKEN | ROUTE_PARAM, "alias_move" },
};
const size_t serve_route_count = sizeof(serve_routes) / sizeof(serve_routes[0]);
