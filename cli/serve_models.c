/*
 * `ltvpipe serve`'s routes over the registry's models and aliases: the
 * versions and alias history (the reports `ltvpipe models` prints, as JSON),
 * one version shown with its artefacts, its monitor report and feature
 * importance, and moving an alias over HTTP (bearer token). Each request
 * opens the registry read-only for itself, apart from the alias move, which
 * writes as `ltvpipe models alias` does. The route table is in serve_routes.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/explain.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/serve_internal.h"
#include "ltv/timeutil.h"

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

void serve_on_models(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	(void)rq;
	report(s, "model_versions", 0, "versions", out);
}

void serve_on_alias_history(struct serve *s, struct serve_request *rq, struct serve_reply *out)
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
void serve_on_monitor(struct serve *s, struct serve_request *rq, struct serve_reply *out)
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

void serve_on_model_show(struct serve *s, struct serve_request *rq, struct serve_reply *out)
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
void serve_on_alias_move(struct serve *s, struct serve_request *rq, struct serve_reply *out)
{
	cJSON *root = serve_parse_json(s, rq, out);
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
