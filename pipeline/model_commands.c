/*
 * `ltvpipe predict` — one user described on the command line, predicted by a
 * model version and printed as one JSON object — and `ltvpipe models`, which
 * lists, shows and moves the model-version aliases (every move is kept in
 * alias_history with who, when, from, to and why).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/score.h"

/* The base columns a features frame has, with what an unknown value defaults to. */
static const struct { const char *name; double def; } base_columns[] = {
	{ "uid", 0 }, { "install_time", 0 }, { "rev_window", 0 }, { "rev_d0", 0 },
	{ "rev_max_day", 0 }, { "purchases_window", 0 }, { "events_window", 0 }, { "events_d0", 0 },
	{ "active_days_window", 0 }, { "engagement", 0 }, { "first_purchase_day", NAN },
	{ "cost", NAN }, { "app_code", 0 }, { "campaign_code", 0 }, { "purchase_days", 0 },
	{ "days_since_purchase", NAN }, { "days_since_active", NAN }, { "rev_per_purchase_day", NAN },
	{ "rev_last7", 0 }, { "events_last7_share", NAN }, { "weight", 1 }, { "user_rep", 1 },
};

/*
 * Offset of the first byte of s that is not well-formed UTF-8 (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF), or -1 when s is
 * valid. cJSON copies strings as they are, so invalid bytes would make
 * invalid JSON.
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

/*
 * A one-row frame: a user aged the first snapshot age with nothing seen, then
 * the --feature values; window_days follows age_days unless given.
 */
static int build_row(const struct loaded_model *m, const struct predict_options *opts,
		     struct model_data *d, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	char *app = (char *)opts->app, *campaign = (char *)opts->campaign ? (char *)opts->campaign : (char *)"";
	double *rev_to_date;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	frame_init(&d->frame, 1);
	for (size_t k = 0; k < sizeof(base_columns) / sizeof(base_columns[0]); k++)
		frame_add_column(&d->frame, base_columns[k].name)[0] = base_columns[k].def;
	frame_add_column(&d->frame, "age_days")[0] = (double)cfg->features.snapshots.v[0];
	frame_add_column(&d->frame, "window_days")[0] = NAN;
	rev_to_date = frame_add_column(&d->frame, "rev_to_date");
	rev_to_date[0] = NAN;
	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		char name[32];

		snprintf(name, sizeof(name), "ltv_%lld", (long long)cfg->features.horizons.v[h]);
		frame_add_column(&d->frame, name)[0] = NAN;
	}
	for (size_t i = 0; i < opts->n_features && ret == 0; i++) {
		const char *eq = strchr(opts->features[i], '=');
		char name[128];
		double *col, v;

		if (!eq || (size_t)(eq - opts->features[i]) >= sizeof(name)) {
			ret = err_set(err, LTV_EUSAGE, "--feature '%s': expected name=value", opts->features[i]);
			break;
		}
		memcpy(name, opts->features[i], (size_t)(eq - opts->features[i]));
		name[eq - opts->features[i]] = '\0';
		col = frame_column(&d->frame, name);
		if (!col || strcmp(name, "app_code") == 0 || strcmp(name, "campaign_code") == 0 ||
		    strcmp(name, "uid") == 0 || strncmp(name, "ltv_", 4) == 0)
			ret = err_set(err, LTV_EUSAGE, "--feature %s: not a feature; use rev_window, rev_d0, "
				      "rev_max_day, purchases_window, events_window, events_d0, "
				      "active_days_window, engagement, first_purchase_day, cost, age_days, "
				      "window_days, rev_to_date", name);
		else if (parse_double(eq + 1, &v) < 0 || !isfinite(v))
			ret = err_set(err, LTV_EUSAGE, "--feature %s: '%s' is not a number", name, eq + 1);
		else if (v < 0)
			ret = err_set(err, LTV_EUSAGE, "--feature %s: %s is negative; features are counts, "
				      "days or money, so give a value >= 0", name, eq + 1);
		else
			col[0] = v;
	}
	if (ret < 0)
		return ret;
	if (isnan(rev_to_date[0]))
		rev_to_date[0] = frame_column(&d->frame, "rev_window")[0];
	if (isnan(frame_column(&d->frame, "window_days")[0]))
		frame_column(&d->frame, "window_days")[0] = frame_column(&d->frame, "age_days")[0];
	if (isnan(frame_column(&d->frame, "days_since_active")[0]))
		frame_column(&d->frame, "days_since_active")[0] = frame_column(&d->frame, "window_days")[0];
	feature_apply_encodings(&m->enc, &d->frame, &app, 1, &campaign, 1, &d->apps, &d->n_apps,
				&d->campaigns, &d->n_campaigns);
	d->tier = xmalloc(sizeof(double));
	d->tier[0] = model_tier(m, app, campaign);
	d->validation_days = cfg->features.validation_days;
	return 0;
}

static int predict_json(const struct loaded_model *m, const struct model_data *d, FILE *out,
			struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const size_t row = 0;
	cJSON *obj = cJSON_CreateObject(), *ltv = cJSON_CreateObject(), *raw = cJSON_CreateObject();
	double floor_v = frame_column(&d->frame, "rev_to_date")[0], prev = 0, p_payer = NAN;
	int method = 0, chosen = predictor_chosen_method(&m->pred, d, row), ret = 0;
	char *text;

	for (size_t h = 0; h < cfg->features.horizons.n && ret == 0; h++) {
		int64_t horizon = cfg->features.horizons.v[h];
		int is_target = horizon == cfg->features.target_horizon;
		double v, r, pp;
		int served;
		char key[24];

		ret = predictor_predict_raw(&m->pred, d, &row, 1, horizon, &v, &served, &pp, err);
		if (ret < 0)
			break;
		r = v;
		predictor_calibrate(&m->pred, d, &row, 1, horizon, &floor_v, &v);
		v = fmax(v, prev);
		prev = v;
		snprintf(key, sizeof(key), "%lld", (long long)horizon);
		cJSON_AddNumberToObject(ltv, key, v);
		cJSON_AddNumberToObject(raw, key, r);
		if (is_target) {
			method = served;
			p_payer = pp;
			cJSON_AddStringToObject(obj, "segment", predictor_segment(&m->pred, v));
		}
	}
	if (ret == 0) {
		cJSON_AddNumberToObject(obj, "model_version", (double)m->version);
		cJSON_AddStringToObject(obj, "app", d->apps[0 + (size_t)frame_column(&d->frame, "app_code")[0]]);
		cJSON_AddStringToObject(obj, "campaign",
					d->campaigns[(size_t)frame_column(&d->frame, "campaign_code")[0]]);
		cJSON_AddNumberToObject(obj, "tier", d->tier[0]);
		cJSON_AddStringToObject(obj, "method", method_name(method));
		cJSON_AddBoolToObject(obj, "fallback", method != chosen);
		if (isnan(p_payer))
			cJSON_AddNullToObject(obj, "p_payer");
		else
			cJSON_AddNumberToObject(obj, "p_payer", p_payer);
		cJSON_AddNumberToObject(obj, "target_horizon_days", (double)cfg->features.target_horizon);
		cJSON_AddItemToObject(obj, "ltv", ltv);
		cJSON_AddItemToObject(obj, "ltv_raw", raw);
		ltv = raw = NULL;
		text = cJSON_PrintUnformatted(obj);
		fprintf(out, "%s\n", text);
		cJSON_free(text);
	}
	cJSON_Delete(ltv);
	cJSON_Delete(raw);
	cJSON_Delete(obj);
	return ret;
}

int predict_run(const struct config *cfg, const struct predict_options *opts, FILE *out,
		struct ltv_err *err)
{
	struct registry *reg = NULL;
	struct loaded_model m;
	struct model_data d = { 0 };
	int64_t version;
	int ret, have_model = 0;

	if (!opts->app)
		return err_set(err, LTV_EUSAGE, "predict: --app A is required");
	if (check_utf8_arg("--app", opts->app, err) < 0 ||
	    check_utf8_arg("--campaign", opts->campaign, err) < 0)
		return LTV_EUSAGE;
	ret = registry_open_readonly(cfg->registry.path, &reg, err);
	if (ret == 0)
		ret = registry_read_begin(reg, err); /* one snapshot; ended by registry_close */
	if (ret == 0)
		ret = model_resolve(reg, opts->model, &version, err);
	if (ret == 0 && (ret = model_load(reg, cfg, version, &m, err)) == 0)
		have_model = 1;
	if (ret == 0)
		ret = build_row(&m, opts, &d, err);
	if (ret == 0)
		ret = predict_json(&m, &d, out, err);
	model_data_release(&d);
	if (have_model)
		model_release(&m);
	registry_close(reg);
	return ret;
}

/* ---- models ---- */

struct table_print {
	FILE *out;
	int rows;
};

static int print_row(void *opaque, int n_cols, char **names, char **values)
{
	struct table_print *tp = opaque;

	if (tp->rows++ == 0) {
		for (int c = 0; c < n_cols; c++)
			fprintf(tp->out, "%s%s", c ? "\t" : "", names[c]);
		fputc('\n', tp->out);
	}
	for (int c = 0; c < n_cols; c++)
		fprintf(tp->out, "%s%s", c ? "\t" : "", values[c]);
	fputc('\n', tp->out);
	return 0;
}

static void print_metric(FILE *out, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsNumber(v))
		fprintf(out, " %13.4f", v->valuedouble);
	else
		fprintf(out, " %13s", "n/a");
}

/* The backtests `ltvpipe evaluate` stored beside version: per horizon and predictor, the headline metrics. */
static int print_evaluations(struct registry *reg, int64_t version, FILE *out, struct ltv_err *err)
{
	struct evaluation_row *rows = NULL;
	size_t n = 0;
	int ret = registry_evaluations_load(reg, version, &rows, &n, err);

	for (size_t i = 0; i < n && ret == 0; i++) {
		cJSON *m = cJSON_Parse(rows[i].metrics);
		const cJSON *h, *as_of = cJSON_GetObjectItemCaseSensitive(m, "as_of");

		fprintf(out, "\nevaluation %lld (%s): backtest as of %s, horizons %s, config %s\n  report %s\n",
			(long long)rows[i].id, rows[i].created_at,
			cJSON_IsString(as_of) ? as_of->valuestring : "?", rows[i].horizons,
			rows[i].config_hash, rows[i].report_dir);
		fprintf(out, "  %-8s %-18s %7s %13s %13s %13s %13s\n", "horizon", "predictor", "users",
			"campaign_WAPE", "norm_Gini", "after_WAPE", "after_Gini");
		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(m, "horizons")) {
			const cJSON *hz = cJSON_GetObjectItemCaseSensitive(h, "horizon"), *p;

			cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(h, "predictors")) {
				const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
				const cJSON *users = cJSON_GetObjectItemCaseSensitive(p, "users");
				const cJSON *after = cJSON_GetObjectItemCaseSensitive(p, "after_as_of");

				fprintf(out, "  %-8.0f %-18s %7.0f", cJSON_IsNumber(hz) ? hz->valuedouble : 0,
					cJSON_IsString(name) ? name->valuestring : "?",
					cJSON_IsNumber(users) ? users->valuedouble : 0);
				print_metric(out, p, "campaign_wape");
				print_metric(out, p, "normalized_gini");
				print_metric(out, after, "campaign_wape");
				print_metric(out, after, "normalized_gini");
				fputc('\n', out);
			}
		}
		cJSON_Delete(m);
	}
	evaluation_rows_free(rows, n);
	return ret;
}

static int move_alias(const struct config *cfg, int64_t version, const char *reason, FILE *out,
		      struct ltv_err *err)
{
	struct registry *reg = NULL;
	int64_t current = 0;
	double ignored;
	const char *who = getenv("USER") ? getenv("USER") : "ltvpipe models";
	struct ltv_err none;
	/* Moving an alias never creates a registry: there would be no version to move it to. */
	int ret = registry_open_existing(cfg->registry.path, (int)cfg->registry.busy_timeout_s, &reg, err);

	if (ret < 0)
		goto out;
	ret = registry_begin(reg, err);
	if (ret == 0)
		ret = registry_model_version_error(reg, version, &ignored, err);
	if (ret < 0)
		goto out;
	if (registry_alias_get(reg, "production", &current, &none) == 0 && current == version) {
		fprintf(out, "model version %lld is already production\n", (long long)version);
		goto out;
	}
	ret = registry_alias_set(reg, "production", version, who, reason, err);
	if (ret == 0)
		ret = registry_commit(reg, err);
	if (ret == 0)
		fprintf(out, "production: model version %lld → %lld (%s)\n", (long long)current,
			(long long)version, reason);
out:
	registry_close(reg); /* rolls back whatever was not committed */
	return ret;
}

static int parse_version(const char *text, int64_t *out, struct ltv_err *err)
{
	if (!text || parse_int64(text, out) < 0 || *out < 1)
		return err_set(err, LTV_EUSAGE, "models: expected a model version number, got '%s'",
			       text ? text : "nothing");
	return 0;
}

int models_run(const struct config *cfg, int argc, char **argv, FILE *out, struct ltv_err *err)
{
	const char *sub = argc > 0 ? argv[0] : "list";
	struct table_print tp = { out, 0 };
	struct registry *reg = NULL;
	int64_t version = 0;
	int ret, handled;

	ret = models_extra_run(cfg, argc, argv, out, &handled, err);
	if (handled)
		return ret;
	if (strcmp(sub, "promote") == 0) {
		ret = parse_version(argc > 1 ? argv[1] : NULL, &version, err);
		return ret < 0 ? ret : move_alias(cfg, version, "promoted by hand (ltvpipe models promote)", out, err);
	}
	if (strcmp(sub, "rollback") == 0) {
		ret = registry_open_readonly(cfg->registry.path, &reg, err);
		if (ret == 0)
			ret = registry_alias_previous(reg, "production", &version, err);
		registry_close(reg);
		return ret < 0 ? ret : move_alias(cfg, version, "rollback (ltvpipe models rollback)", out, err);
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "history") != 0)
		return err_set(err, LTV_EUSAGE, "models: '%s' is not one of list, show V, promote V, "
			       "rollback, history, compare A B", sub);
	if (strcmp(sub, "show") == 0 && (ret = parse_version(argc > 1 ? argv[1] : NULL, &version, err)) < 0)
		return ret;
	ret = registry_open_readonly(cfg->registry.path, &reg, err);
	if (ret == 0)
		ret = registry_read_begin(reg, err); /* one snapshot; ended by registry_close */
	if (ret < 0) {
		registry_close(reg);
		return ret;
	}
	if (strcmp(sub, "list") == 0) {
		ret = registry_report(reg, "model_versions", 0, print_row, &tp, err);
	} else if (strcmp(sub, "history") == 0) {
		ret = registry_report(reg, "alias_history", 0, print_row, &tp, err);
	} else {
		double wape;

		ret = registry_model_version_error(reg, version, &wape, err);
		if (ret == 0) {
			if (isnan(wape))
				fprintf(out, "model version %lld: no out-of-sample campaign WAPE recorded\n\n",
					(long long)version);
			else
				fprintf(out, "model version %lld: campaign WAPE at the target horizon, out of sample "
					"(validation cohorts cross-fitted by select) %.4f\n\n",
					(long long)version, wape);
			ret = registry_report(reg, "version_artefacts", version, print_row, &tp, err);
			if (ret == 0)
				ret = print_evaluations(reg, version, out, err);
		}
	}
	if (ret == 0 && tp.rows == 0)
		fprintf(out, "(none yet)\n");
	registry_close(reg);
	return ret;
}
