/*
 * `ltvpipe predict`: one user described on the command line (contract in
 * include/ltv/score.h), served by a model version through
 * include/ltv/predict_user.h like the server's users.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/predict_user.h"
#include "ltv/score.h"

/*
 * Offset of the first byte of s that is not well-formed UTF-8 (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF), or -1 when s is
 * valid. The names are copied into the JSON as they are, so invalid bytes
 * would make invalid JSON.
 */
static long utf8_invalid_at(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; p[i];) {
		unsigned c = p[i];
		size_t n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
			 : (c & 0xF8) == 0xF0 ? 3 : 4;
		unsigned cp = n == 1 ? c & 0x1F : n == 2 ? c & 0x0F : c & 0x07;

		if (n == 0) {
			i++;
			continue;
		}
		if (n == 4)
			return (long)i;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return (long)i;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return (long)i;
		i += n + 1;
	}
	return -1;
}

static int check_utf8_arg(const char *flag, const char *value, struct ltv_err *err)
{
	long at = value ? utf8_invalid_at(value) : -1;

	if (at >= 0)
		return err_set(err, LTV_EUSAGE, "predict: %s is not valid UTF-8 (byte %ld); give it "
			       "as it is spelt in the data", flag, at + 1);
	return 0;
}

static int set_feature(struct user_batch *b, const char *assignment, struct ltv_err *err)
{
	const char *eq = strchr(assignment, '=');
	char name[128], why[LTV_ERR_MAX];
	double v = 0;

	if (!eq || (size_t)(eq - assignment) >= sizeof(name))
		return err_set(err, LTV_EUSAGE, "--feature '%s': expected name=value", assignment);
	memcpy(name, assignment, (size_t)(eq - assignment));
	name[eq - assignment] = '\0';
	if (predict_input_index(name) >= 0 && (parse_double(eq + 1, &v) < 0 || !isfinite(v)))
		return err_set(err, LTV_EUSAGE, "--feature %s: '%s' is not a number", name, eq + 1);
	if (user_batch_set(b, 0, name, v, err) < 0) {
		snprintf(why, sizeof(why), "%s", err->msg);
		return err_set(err, LTV_EUSAGE, "--feature %s", why);
	}
	return 0;
}

static int set_attr(struct user_batch *b, const char *assignment, struct ltv_err *err)
{
	const char *eq = strchr(assignment, '=');
	char name[128], why[LTV_ERR_MAX];

	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(name))
		return err_set(err, LTV_EUSAGE, "--attr '%s': expected name=value, e.g. country=US",
			       assignment);
	memcpy(name, assignment, (size_t)(eq - assignment));
	name[eq - assignment] = '\0';
	if (check_utf8_arg("--attr", eq + 1, err) < 0)
		return LTV_EUSAGE;
	if (user_batch_set_attr(b, 0, name, eq + 1, err) < 0) {
		snprintf(why, sizeof(why), "%s", err->msg);
		return err_set(err, LTV_EUSAGE, "--attr %s", why);
	}
	return 0;
}

int predict_run(const struct config *cfg, struct registry *reg, const struct predict_options *opts,
		FILE *out, struct ltv_err *err)
{
	struct loaded_model m;
	struct user_batch b = { 0 };
	struct served s = { 0 };
	struct jbuf text;
	const size_t row = 0;
	int64_t version;
	int ret, have_model = 0, have_batch = 0, have_served = 0;

	if (!opts->app)
		return err_set(err, LTV_EUSAGE, "predict: --app A is required");
	if (check_utf8_arg("--app", opts->app, err) < 0 ||
	    check_utf8_arg("--campaign", opts->campaign, err) < 0)
		return LTV_EUSAGE;
	ret = model_resolve(reg, opts->model, &version, err);
	if (ret == 0 && (ret = model_load(reg, cfg, version, &m, err)) == 0)
		have_model = 1;
	if (ret == 0) {
		user_batch_init(&b, &m, 1);
		have_batch = 1;
		ret = user_batch_set_names(&b, 0, opts->app, opts->campaign, err);
		if (ret < 0) {
			err_prefix(err, "predict");
			err->code = ret = LTV_EUSAGE;
		}
	}
	for (size_t i = 0; i < opts->n_features && ret == 0; i++)
		ret = set_feature(&b, opts->features[i], err);
	for (size_t i = 0; i < opts->n_attrs && ret == 0; i++)
		ret = set_attr(&b, opts->attrs[i], err);
	if (ret == 0)
		ret = user_batch_finish(&b, &m, err);
	if (ret == 0 && (ret = serving_predict(&m, &b.d, &row, 1, &s, err)) == 0)
		have_served = 1;
	if (ret == 0) {
		char warning[1024] = "";

		jbuf_init(&text);
		predict_user_json(&text, &m, &b, &s, 0);
		if (predict_user_warnings(&text, &m, &b, 0, warning, sizeof(warning)))
			fprintf(stderr, "ltvpipe predict: warning: %s\n", warning);
		if (opts->explain)
			ret = predict_user_explain(&text, &m, &b, &s, 0, err);
		if (ret == 0)
			fprintf(out, "%s\n", text.p);
		jbuf_release(&text);
	}
	if (have_served)
		served_release(&s);
	if (have_batch)
		user_batch_release(&b);
	if (have_model)
		model_release(&m);
	return ret;
}
