/*
 * The `ltvpipe models` subcommands (the table is in main.c; the dispatcher
 * opens the registry as each one's flags ask): list, show and history, for
 * people (tab-separated tables) and programs (--json), promote and rollback,
 * which move the production alias (every move is kept in alias_history with
 * who, when, from, to and why), and export. `ltvpipe predict` lives in
 * predict_user.c, beside what the server shares.
 */
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/explain.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/inspect.h"
#include "ltv/metrics_text.h"
#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/score.h"
#include "ltv/timeutil.h"

/* ---- models ---- */

struct table_print {
	FILE *out;
	int rows;
	cJSON *array;   /* JSON mode: one object per row */
};

/* A cell as JSON: a number when it reads as one, else a string. */
static cJSON *json_cell(const char *value)
{
	double v;

	if (value[0] && parse_double(value, &v) == 0 && isfinite(v))
		return cJSON_CreateNumber(v);
	return cJSON_CreateString(value);
}

static int print_row(void *opaque, int n_cols, char **names, char **values)
{
	struct table_print *tp = opaque;

	if (tp->array) {
		cJSON *o = cJSON_CreateObject();

		for (int c = 0; c < n_cols; c++) {
			cJSON *m = strcmp(names[c], "metrics") == 0 ? cJSON_Parse(values[c]) : NULL;

			cJSON_AddItemToObject(o, names[c], m ? m : json_cell(values[c]));
		}
		cJSON_AddItemToArray(tp->array, o);
		tp->rows++;
		return 0;
	}

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

/* Each tree model's feature importance (include/ltv/explain.h), from the loaded version. */
static int print_importance(struct registry *reg, const struct config *cfg, int64_t version,
			    FILE *out, struct ltv_err *err)
{
	struct loaded_model m;
	int ret = model_load(reg, cfg, version, &m, err);

	if (ret < 0)
		return ret;
	ret = explain_importance_print(out, &m, err);
	model_release(&m);
	return ret;
}

/* Who moves an alias: the OS user running ltvpipe (cron's too, where $USER is unset). */
static const char *os_user(char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name && *pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else if (getenv("USER") && *getenv("USER"))
		snprintf(buf, size, "%s", getenv("USER"));
	else
		snprintf(buf, size, "uid %lu", (unsigned long)geteuid());
	return buf;
}

/*
 * Points production at version. A version that becomes production is no
 * longer a candidate: the candidate alias, when it named it, is removed, and
 * the move's reason says so.
 */
int models_promote(struct registry *reg, int64_t version, const char *why, FILE *out,
		   struct ltv_err *err)
{
	struct alias_move mv;
	char who[256];
	int ret = registry_begin(reg, err);

	if (ret == 0)
		ret = registry_alias_move(reg, "production", version, os_user(who, sizeof(who)), why,
					  &mv, err);
	if (ret == 0 && !mv.moved) {
		fprintf(out, "model version %lld is already production\n", (long long)version);
		goto out;
	}
	if (ret == 0)
		ret = registry_commit(reg, err);
	if (ret == 0)
		fprintf(out, "production: model version %lld → %lld (%s)\n", (long long)mv.from,
			(long long)version, mv.reason);
out:
	registry_rollback(reg); /* whatever was not committed */
	return ret;
}

/* ---- list ---- */

struct version_list {
	struct registry *reg;
	FILE *out;
	cJSON *array;                /* JSON mode */
	const struct built_with *production; /* NULL when there is none */
	int64_t production_version;
	int rows;
	int ret;
	struct ltv_err *err;
};

/* "key: production → this; ..." of the config keys that differ, into buf. */
static void differing_keys(const struct built_with *prod, const struct built_with *v, cJSON *json,
			   char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < v->n_config; i++) {
		const char *pv = kv_find(prod->config, prod->n_config, v->config[i].key);

		if (pv && strcmp(pv, v->config[i].value) == 0)
			continue;
		if (json) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "key", v->config[i].key);
			pv ? (void)cJSON_AddStringToObject(o, "production", pv)
			   : (void)cJSON_AddNullToObject(o, "production");
			cJSON_AddStringToObject(o, "this", v->config[i].value);
			cJSON_AddItemToArray(json, o);
		} else if (len < size) {
			len += (size_t)snprintf(buf + len, size - len, "%s%s: %s → %s", len ? "; " : "",
						v->config[i].key, pv ? pv : "(absent)", v->config[i].value);
		}
	}
	if (len >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

/* model_versions report: version, created_at, run_id, campaign_wape_out_of_sample, at, aliases. */
static int list_row(void *opaque, int n_cols, char **names, char **values)
{
	struct version_list *vl = opaque;
	struct built_with bw;
	char as_of[32] = "?", diff[1024];
	int64_t version;
	int ret;

	if (n_cols < 6 || parse_int64(values[0], &version) < 0)
		return 0;
	ret = built_with_version(vl->reg, version, &bw, vl->err);
	if (ret < 0) {
		vl->ret = ret;
		return ret;
	}
	if (bw.as_of != INT64_MIN)
		time_format_iso8601(bw.as_of, as_of, sizeof(as_of));
	if (vl->array) {
		cJSON *o = cJSON_CreateObject(), *m, *aliases;
		double wape;
		char name[96];

		cJSON_AddNumberToObject(o, "version", (double)version);
		cJSON_AddStringToObject(o, "created_at", values[1]);
		cJSON_AddStringToObject(o, "run_id", values[2]);
		cJSON_AddStringToObject(o, "trained_as_of", as_of);
		aliases = cJSON_AddArrayToObject(o, "aliases");
		for (char *a = values[5], *comma; a && *a; a = comma ? comma + 1 : NULL) {
			comma = strchr(a, ',');
			cJSON_AddItemToArray(aliases, cJSON_CreateString(comma ? (*comma = '\0', a) : a));
		}
		m = cJSON_AddObjectToObject(o, "metrics");
		snprintf(name, sizeof(name), "campaign_wape_out_of_sample_at_%s", values[4]);
		if (parse_double(values[3], &wape) == 0)
			cJSON_AddNumberToObject(m, name, wape);
		else
			cJSON_AddNullToObject(m, name);
		if (vl->production && version != vl->production_version)
			differing_keys(vl->production, &bw, cJSON_AddArrayToObject(o, "differs_from_production"),
				       diff, sizeof(diff));
		cJSON_AddItemToArray(vl->array, o);
	} else {
		if (vl->rows == 0) {
			for (int c = 0; c < n_cols; c++)
				fprintf(vl->out, "%s\t", names[c]);
			fprintf(vl->out, "trained_as_of\tdiffers_from_production\n");
		}
		if (!vl->production)
			snprintf(diff, sizeof(diff), "(no production)");
		else if (version == vl->production_version)
			snprintf(diff, sizeof(diff), "(this is production)");
		else
			differing_keys(vl->production, &bw, NULL, diff, sizeof(diff));
		for (int c = 0; c < n_cols; c++)
			fprintf(vl->out, "%s\t", values[c]);
		fprintf(vl->out, "%s\t%s\n", as_of, diff[0] ? diff : "(nothing)");
	}
	vl->rows++;
	built_with_release(&bw);
	return 0;
}

int models_list(struct registry *reg, int json, FILE *out, struct ltv_err *err)
{
	struct built_with production = { .as_of = INT64_MIN };
	struct version_list vl = { .reg = reg, .out = out, .err = err };
	struct ltv_err none;
	cJSON *doc = NULL;
	int ret;

	if (registry_alias_get(reg, "production", &vl.production_version, &none) == 0 &&
	    built_with_version(reg, vl.production_version, &production, &none) == 0)
		vl.production = &production;
	if (json) {
		doc = cJSON_CreateObject();
		if (vl.production)
			cJSON_AddNumberToObject(doc, "production", (double)vl.production_version);
		else
			cJSON_AddNullToObject(doc, "production");
		vl.array = cJSON_AddArrayToObject(doc, "model_versions");
	}
	ret = registry_report(reg, "model_versions", 0, list_row, &vl, err);
	if (ret == 0 && vl.ret < 0)
		ret = vl.ret;
	if (ret == 0 && json) {
		char *text = cJSON_Print(doc);

		fprintf(out, "%s\n", text);
		cJSON_free(text);
	} else if (ret == 0 && vl.rows == 0) {
		fprintf(out, "(none yet)\n");
	}
	cJSON_Delete(doc);
	built_with_release(&production);
	return ret;
}

/* ---- show and history ---- */

static void print_json_doc(FILE *out, cJSON *doc)
{
	char *text = cJSON_Print(doc);

	fprintf(out, "%s\n", text);
	cJSON_free(text);
}

/* "feature_importance" of each tree model of version (include/ltv/explain.h) into doc. */
static int importance_json(struct registry *reg, const struct config *cfg, int64_t version,
			   cJSON *doc, struct ltv_err *err)
{
	struct loaded_model m;
	struct jbuf b;
	cJSON *parsed;
	int ret = model_load(reg, cfg, version, &m, err);

	if (ret < 0)
		return ret;
	jbuf_init(&b);
	jbuf_puts(&b, "{");
	ret = explain_importance_json(&b, &m, err);
	jbuf_puts(&b, "}");
	parsed = ret == 0 ? cJSON_Parse(b.p) : NULL;
	if (parsed)
		cJSON_AddItemToObject(doc, "feature_importance",
				      cJSON_DetachItemFromObject(parsed, "feature_importance"));
	cJSON_Delete(parsed);
	jbuf_release(&b);
	model_release(&m);
	return ret;
}

/* The parameters version was trained with: its features artefact's (include/ltv/feature_params.h). */
static int version_params(struct registry *reg, int64_t version, struct feature_params *out,
			  struct ltv_err *err)
{
	struct artefact_info features = { 0 };
	int ret = registry_model_version_artefact(reg, version, "features", &features, err);

	memset(out, 0, sizeof(*out));
	if (ret == 0)
		ret = feature_params_load(reg, &features, out, err);
	artefact_info_release(&features);
	return ret;
}

static cJSON *int_list_json(const struct int_list *l)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < l->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)l->v[i]));
	return a;
}

static void params_json(cJSON *doc, const struct feature_params *p)
{
	cJSON *o = cJSON_AddObjectToObject(doc, "parameters");
	char iso[32];

	cJSON_AddStringToObject(o, "as_of", time_format_iso8601(p->as_of, iso, sizeof(iso)));
	cJSON_AddItemToObject(o, "snapshots", int_list_json(&p->snapshots));
	cJSON_AddItemToObject(o, "horizons", int_list_json(&p->horizons));
	cJSON_AddNumberToObject(o, "target_horizon", (double)p->target_horizon);
	cJSON_AddNumberToObject(o, "validation_days", (double)p->validation_days);
}

static void print_int_list(FILE *out, const struct int_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		fprintf(out, "%s%lld", i ? ", " : "", (long long)l->v[i]);
}

/* What the version keeps, whatever the config says today. */
static void print_params(FILE *out, const struct feature_params *p)
{
	char iso[32];

	fprintf(out, "  parameters (its own, kept with its features artefact): as_of %s, snapshot ages ",
		time_format_iso8601(p->as_of, iso, sizeof(iso)));
	print_int_list(out, &p->snapshots);
	fprintf(out, " days, horizons ");
	print_int_list(out, &p->horizons);
	fprintf(out, " days, target horizon D%lld, validation_days %lld\n\n",
		(long long)p->target_horizon, (long long)p->validation_days);
}

static int show_json(struct registry *reg, const struct config *cfg, int64_t version, double wape,
		     FILE *out, struct ltv_err *err)
{
	cJSON *doc = cJSON_CreateObject(), *evals;
	struct table_print tp = { out, 0, NULL };
	struct evaluation_row *rows = NULL;
	struct built_with bw;
	struct feature_params params = { 0 };
	char as_of[32] = "?";
	size_t n = 0;
	int ret = built_with_version(reg, version, &bw, err);

	cJSON_AddNumberToObject(doc, "version", (double)version);
	if (ret == 0 && bw.as_of != INT64_MIN)
		time_format_iso8601(bw.as_of, as_of, sizeof(as_of));
	cJSON_AddStringToObject(doc, "trained_as_of", as_of);
	if (isnan(wape))
		cJSON_AddNullToObject(doc, "campaign_wape_out_of_sample");
	else
		cJSON_AddNumberToObject(doc, "campaign_wape_out_of_sample", wape);
	if (ret == 0)
		ret = version_params(reg, version, &params, err);
	if (ret == 0)
		params_json(doc, &params);
	tp.array = cJSON_AddArrayToObject(doc, "artefacts");
	if (ret == 0)
		ret = registry_report(reg, "version_artefacts", version, print_row, &tp, err);
	if (ret == 0)
		ret = registry_evaluations_load(reg, version, &rows, &n, err);
	evals = cJSON_AddArrayToObject(doc, "evaluations");
	for (size_t i = 0; i < n && ret == 0; i++) {
		cJSON *o = cJSON_CreateObject(), *m = cJSON_Parse(rows[i].metrics);

		cJSON_AddNumberToObject(o, "id", (double)rows[i].id);
		cJSON_AddStringToObject(o, "created_at", rows[i].created_at);
		cJSON_AddStringToObject(o, "report_dir", rows[i].report_dir);
		cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateNull());
		cJSON_AddItemToArray(evals, o);
	}
	if (ret == 0)
		ret = importance_json(reg, cfg, version, doc, err);
	if (ret == 0)
		print_json_doc(out, doc);
	evaluation_rows_free(rows, n);
	built_with_release(&bw);
	feature_params_release(&params);
	cJSON_Delete(doc);
	return ret;
}

struct artefact_lines {
	FILE *out;
	int64_t horizon;
	int rows;
};

/* version_artefacts report (name, version, created_at, metrics): each metric on a named line. */
static int artefact_lines_row(void *opaque, int n_cols, char **names, char **values)
{
	struct artefact_lines *al = opaque;
	const char *name = "?", *version = "?", *created = "?", *metrics = "{}";

	for (int c = 0; c < n_cols; c++) {
		if (!values[c])
			continue;
		if (strcmp(names[c], "name") == 0)
			name = values[c];
		else if (strcmp(names[c], "version") == 0)
			version = values[c];
		else if (strcmp(names[c], "created_at") == 0)
			created = values[c];
		else if (strcmp(names[c], "metrics") == 0)
			metrics = values[c];
	}
	fprintf(al->out, "%s%s v%s (made %s)\n", al->rows++ ? "\n" : "", name, version, created);
	metrics_say_lines(al->out, "  ", metrics, al->horizon);
	return 0;
}

int models_show(struct registry *reg, const struct config *cfg, int64_t version, int json, FILE *out,
		struct ltv_err *err)
{
	struct artefact_lines al = { out, 0, 0 };
	struct feature_params params;
	char as_of[32];
	double wape;
	int ret = registry_model_version_error(reg, version, &wape, err);

	if (ret < 0)
		return ret;
	if (json)
		return show_json(reg, cfg, version, wape, out, err);
	ret = version_params(reg, version, &params, err);
	if (ret < 0)
		return ret;
	al.horizon = params.target_horizon;
	fprintf(out, "model version %lld, trained as of %s\n", (long long)version,
		time_format_iso8601(params.as_of, as_of, sizeof(as_of)));
	if (isnan(wape))
		fprintf(out, "  no out-of-sample campaign WAPE recorded\n");
	else
		fprintf(out, "  campaign WAPE at D%lld, out of sample (validation cohorts cross-fitted "
			"by select): %.4f\n", (long long)al.horizon, wape);
	print_params(out, &params);
	feature_params_release(&params);
	ret = registry_report(reg, "version_artefacts", version, artefact_lines_row, &al, err);
	if (ret == 0)
		ret = print_evaluations(reg, version, out, err);
	if (ret == 0 && al.rows == 0)
		fprintf(out, "(none yet)\n");
	if (ret == 0)
		ret = print_importance(reg, cfg, version, out, err);
	return ret;
}

int models_history(struct registry *reg, int json, FILE *out, struct ltv_err *err)
{
	struct table_print tp = { out, 0, NULL };
	cJSON *doc = json ? cJSON_CreateObject() : NULL;
	int ret;

	if (doc)
		tp.array = cJSON_AddArrayToObject(doc, "alias_history");
	ret = registry_report(reg, "alias_history", 0, print_row, &tp, err);
	if (ret == 0 && doc)
		print_json_doc(out, doc);
	else if (ret == 0 && tp.rows == 0)
		fprintf(out, "(none yet)\n");
	cJSON_Delete(doc);
	return ret;
}

/* ---- export ---- */

struct export_state {
	struct registry *reg;
	const char *dir;
	cJSON *artefacts;   /* the manifest's list */
	cJSON *files;       /* the current artefact's files */
	int64_t artefact_id;
	const char *stage;
	size_t n_boosters, n_files;
	int ret;
	struct ltv_err *err;
};

static int write_whole_file(const char *path, const void *data, size_t len, struct ltv_err *err)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return err_set(err, LTV_EIO, "cannot create '%s': %s", path, strerror(errno));
	ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

/* A booster body's key is "t<tier>:h<horizon>:<part>" (gbt_artefact.c). */
static int is_booster_key(const char *key)
{
	int tier, n = 0;
	long long h;

	return sscanf(key, "t%d:h%lld:%n", &tier, &h, &n) == 2 && n > 0;
}

/* File names keep letters, digits, '-', '_' and '.'; the rest become '_'. */
static void safe_name(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			*s = '_';
}

/* artefact_blobs report: key, bytes. Boosters become XGBoost JSON, other blobs are copied. */
static int export_blob(void *opaque, int n_cols, char **names, char **values)
{
	struct export_state *ex = opaque;
	struct gbt_model *model = NULL;
	void *buf = NULL;
	char *text = NULL, file[512], path[1024], hex[HASH_HEX_LEN];
	size_t len = 0, text_len = 0;
	const char *format = "blob";
	cJSON *o;
	int ret;

	(void)names;
	if (n_cols < 2)
		return 0;
	ret = registry_blob_get(ex->reg, ex->artefact_id, values[0], &buf, &len, ex->err);
	if (ret < 0)
		goto out;
	if (is_booster_key(values[0]) && gbt_load(buf, len, 1, &model, ex->err) == 0) {
		ret = gbt_save_json(model, &text, &text_len, ex->err);
		if (ret < 0)
			goto out;
		snprintf(file, sizeof(file), "%s.%s.json", ex->stage, values[0]);
		format = "xgboost-json";
		ex->n_boosters++;
	} else {
		snprintf(file, sizeof(file), "%s.%s.bin", ex->stage, values[0]);
	}
	safe_name(file);
	snprintf(path, sizeof(path), "%s/%s", ex->dir, file);
	ret = text ? write_whole_file(path, text, text_len, ex->err) : write_whole_file(path, buf, len, ex->err);
	if (ret < 0)
		goto out;
	hash_buffer_hex(text ? (const void *)text : (const void *)buf, text ? text_len : len, hex);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddStringToObject(o, "registry_key", values[0]);
	cJSON_AddStringToObject(o, "format", format);
	cJSON_AddNumberToObject(o, "bytes", (double)(text ? text_len : len));
	cJSON_AddStringToObject(o, "xxh3_64", hex);
	cJSON_AddItemToArray(ex->files, o);
	ex->n_files++;
out:
	gbt_free(model);
	free(text);
	free(buf);
	if (ret < 0)
		ex->ret = ret;
	return ret;
}

/* version_configs report: id, name, version, as_of, config, metrics. */
static int export_artefact(void *opaque, int n_cols, char **names, char **values)
{
	struct export_state *ex = opaque;
	cJSON *o, *m;
	int64_t as_of;

	(void)names;
	if (n_cols < 6 || parse_int64(values[0], &ex->artefact_id) < 0)
		return 0;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "stage", values[1]);
	cJSON_AddNumberToObject(o, "version", strtod(values[2], NULL));
	if (values[3][0] && parse_int64(values[3], &as_of) == 0) {
		char iso[32];

		cJSON_AddStringToObject(o, "as_of", time_format_iso8601(as_of, iso, sizeof(iso)));
	}
	cJSON_AddStringToObject(o, "config", values[4]);
	m = cJSON_Parse(values[5]);
	cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateNull());
	ex->files = cJSON_AddArrayToObject(o, "files");
	cJSON_AddItemToArray(ex->artefacts, o);
	/* the report's statement is still stepping: stash the id and read blobs after */
	return 0;
}

/*
 * A stage with boosters names the columns they take, in order: without that a
 * booster is unusable elsewhere. Stages without a model manifest add nothing.
 */
static int add_feature_names(struct registry *reg, int64_t artefact_id, cJSON *artefact,
			     struct ltv_err *err)
{
	struct str_list features = { 0 };
	const cJSON *f;
	int has_booster = 0, ret;
	cJSON *names;

	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(artefact, "files")) {
		const cJSON *format = cJSON_GetObjectItemCaseSensitive(f, "format");

		has_booster |= cJSON_IsString(format) && strcmp(format->valuestring, "xgboost-json") == 0;
	}
	if (!has_booster)
		return 0;
	ret = gbt_artefact_feature_names(reg, artefact_id, &features, err);
	if (ret == 0) {
		names = cJSON_AddArrayToObject(artefact, "feature_names");
		for (size_t i = 0; i < features.n; i++)
			cJSON_AddItemToArray(names, cJSON_CreateString(features.v[i]));
	}
	for (size_t i = 0; i < features.n; i++)
		free(features.v[i]);
	free(features.v);
	return ret;
}

int models_export(struct registry *reg, int64_t version, const char *dir, int json, FILE *out,
		  struct ltv_err *err)
{
	struct export_state ex = { .reg = reg, .dir = dir, .err = err };
	cJSON *manifest = cJSON_CreateObject(), *a;
	char path[1024], *text = NULL;
	double wape;
	int ret = registry_model_version_error(reg, version, &wape, err);

	if (ret < 0)
		goto out;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		ret = err_set(err, LTV_EIO, "cannot create directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	cJSON_AddStringToObject(manifest, "format", "ltvpipe model export 1");
	cJSON_AddStringToObject(manifest, "ltvpipe_version", LTV_VERSION);
	cJSON_AddStringToObject(manifest, "xgboost_version", gbt_version_string());
	cJSON_AddNumberToObject(manifest, "model_version", (double)version);
	if (isnan(wape))
		cJSON_AddNullToObject(manifest, "campaign_wape_out_of_sample");
	else
		cJSON_AddNumberToObject(manifest, "campaign_wape_out_of_sample", wape);
	ex.artefacts = cJSON_AddArrayToObject(manifest, "artefacts");
	ret = registry_report(reg, "version_configs", version, export_artefact, &ex, err);
	cJSON_ArrayForEach(a, ex.artefacts) {
		int64_t id = 0;
		struct artefact_info info;
		const cJSON *stage = cJSON_GetObjectItemCaseSensitive(a, "stage");
		const cJSON *ver = cJSON_GetObjectItemCaseSensitive(a, "version");

		if (ret < 0)
			break;
		/* the artefact's id, from its stage and stage version */
		ret = registry_artefact_by_version(reg, stage->valuestring, (int64_t)ver->valuedouble, &info,
						   err);
		if (ret < 0)
			break;
		id = info.id;
		artefact_info_release(&info);
		ex.artefact_id = id;
		ex.stage = stage->valuestring;
		ex.files = cJSON_GetObjectItemCaseSensitive(a, "files");
		ret = registry_report(reg, "artefact_blobs", id, export_blob, &ex, err);
		if (ret == 0 && ex.ret < 0)
			ret = ex.ret;
		if (ret == 0)
			ret = add_feature_names(reg, id, a, err);
	}
	if (ret < 0)
		goto out;
	text = cJSON_Print(manifest);
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	ret = write_whole_file(path, text, strlen(text), err);
	if (ret < 0)
		goto out;
	if (json) {
		cJSON *doc = cJSON_CreateObject();

		cJSON_AddNumberToObject(doc, "model_version", (double)version);
		cJSON_AddStringToObject(doc, "manifest", path);
		cJSON_AddNumberToObject(doc, "xgboost_models", (double)ex.n_boosters);
		cJSON_AddNumberToObject(doc, "files", (double)ex.n_files + 1);
		print_json_doc(out, doc);
		cJSON_Delete(doc);
	} else {
		fprintf(out, "exported model version %lld to %s: %zu XGBoost models (XGBoost JSON), %zu "
			"files in all with the manifest %s\n", (long long)version, dir, ex.n_boosters,
			ex.n_files + 1, path);
	}
out:
	free(text);
	cJSON_Delete(manifest);
	return ret;
}
