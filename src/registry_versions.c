/*
 * The registry's model versions (see include/ltv/registry.h): a version groups
 * the artefacts one run produced, aliases such as "production" point at one,
 * and every alias change is kept in alias_history so a rollback can walk back.
 * Also the fixed read-only reports behind `ltvpipe models`, and the backtests
 * `ltvpipe evaluate` stores beside the production version of the day.
 */
#include <string.h>

#include "registry_internal.h"

/* ---- model versions and aliases ---- */

int registry_model_version_create(struct registry *reg, const char *run_id,
				  const int64_t *artefact_ids, size_t n, double validation_error,
				  const char *metrics_json, int64_t *out_version, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int64_t version;
	int ret = prepare(reg, "INSERT INTO model_versions (run_id, created_at, validation_error, metrics)"
			       " VALUES (?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, run_id);
	bind_text(st, 2, now);
	bind_double_or_null(st, 3, validation_error);
	bind_text(st, 4, metrics_json ? metrics_json : "{}");
	ret = step_done(reg, st, "creating a model version", err);
	sqlite3_finalize(st);
	if (ret < 0)
		return ret;
	version = sqlite3_last_insert_rowid(reg->db);
	ret = reg_insert_links(reg, "INSERT OR IGNORE INTO model_version_artefacts"
				    " (model_version, artefact_id) VALUES (?, ?)", version,
			       artefact_ids, n, "recording a model version's artefacts", err);
	*out_version = version;
	return ret;
}

int registry_model_version_artefact(struct registry *reg, int64_t version, const char *name,
				    struct artefact_info *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char what[128];
	int ret = prepare(reg, "SELECT " ARTEFACT_COLUMNS " FROM artefacts WHERE name = ? AND id IN"
			       " (SELECT artefact_id FROM model_version_artefacts WHERE model_version = ?)",
			  &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, version);
	snprintf(what, sizeof(what), "'%s' in model version %lld", name, (long long)version);
	ret = reg_fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

int registry_model_version_error(struct registry *reg, int64_t version, double *out_error,
				 struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT validation_error FROM model_versions WHERE version = ?", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, version);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_error = column_double_or_nan(st, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, LTV_ENOTFOUND, "no model version %lld in registry '%s'; "
			      "'ltvpipe models list' shows them", (long long)version, reg->path);
	else
		ret = SQL_FAIL(reg, err, "reading a model version");
	sqlite3_finalize(st);
	return ret;
}

int registry_alias_get(struct registry *reg, const char *alias, int64_t *out_version,
		       struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT model_version FROM aliases WHERE alias = ?", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	bind_text(st, 1, alias);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_version = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, LTV_ENOTFOUND, "no model is '%s' yet in registry '%s'; run the "
			      "pipeline through calibrate, or 'ltvpipe models promote V'", alias, reg->path);
	else
		ret = SQL_FAIL(reg, err, "reading an alias");
	sqlite3_finalize(st);
	return ret;
}

/*
 * Unsets alias (no history row: alias_history records moves to a version; the
 * move that caused it says why). Only registry_alias_move calls it.
 */
static int alias_delete(struct registry *reg, const char *alias, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "DELETE FROM aliases WHERE alias = ?", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, alias);
	ret = step_done(reg, st, "removing an alias", err);
	sqlite3_finalize(st);
	return ret;
}

/*
 * Points alias at version and records who, when, from, to and why. Pointing
 * it where it already points changes and records nothing. Only
 * registry_alias_move calls it, so the rules of a move live in one place.
 */
static int alias_set(struct registry *reg, const char *alias, int64_t version, const char *who,
		     const char *reason, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t from = 0;
	int have_from, ret;
	char now[32];
	struct ltv_err ignored;

	have_from = registry_alias_get(reg, alias, &from, &ignored) == 0;
	if (have_from && from == version)
		return 0; /* not a move: the history keeps moves only */
	utc_now(now);
	ret = prepare(reg, "INSERT INTO aliases (alias, model_version, updated_at) VALUES (?, ?, ?)"
			   " ON CONFLICT(alias) DO UPDATE SET model_version = excluded.model_version,"
			   " updated_at = excluded.updated_at", &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, alias);
	sqlite3_bind_int64(st, 2, version);
	bind_text(st, 3, now);
	ret = step_done(reg, st, "setting an alias", err);
	sqlite3_finalize(st);
	if (ret < 0)
		return ret;
	ret = prepare(reg, "INSERT INTO alias_history (alias, from_version, to_version, at, who, reason)"
			   " VALUES (?, ?, ?, ?, ?, ?)", &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, alias);
	if (have_from)
		sqlite3_bind_int64(st, 2, from);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, version);
	bind_text(st, 4, now);
	bind_text(st, 5, who);
	bind_text(st, 6, reason);
	ret = step_done(reg, st, "recording alias history", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_alias_move(struct registry *reg, const char *alias, int64_t version, const char *who,
			const char *why, struct alias_move *out, struct ltv_err *err)
{
	int64_t candidate = 0;
	double ignored;
	struct ltv_err none;
	int ret = registry_model_version_error(reg, version, &ignored, err);

	memset(out, 0, sizeof(*out));
	snprintf(out->reason, sizeof(out->reason), "%s", why);
	if (ret < 0)
		return ret;
	if (registry_alias_get(reg, alias, &out->from, &none) == 0 && out->from == version)
		return 0;
	/* A version that becomes production is no longer a candidate. */
	if (strcmp(alias, "production") == 0 &&
	    registry_alias_get(reg, "candidate", &candidate, &none) == 0 && candidate == version) {
		snprintf(out->reason, sizeof(out->reason), "%s; it was the candidate, so candidate is "
			 "now unset", why);
		ret = alias_delete(reg, "candidate", err);
		out->candidate_unset = ret == 0;
	}
	if (ret == 0)
		ret = alias_set(reg, alias, version, who, out->reason, err);
	out->moved = ret == 0;
	return ret;
}

/*
 * Production history read as a stack: a promotion pushes its version, a
 * rollback pops the version it undid. The version to roll back to is the one
 * under the top, so repeated rollbacks walk back 3 → 2 → 1 instead of
 * bouncing between the last two.
 */
int registry_alias_previous(struct registry *reg, const char *alias, int64_t *out_version,
			    struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *stack = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT to_version, reason FROM alias_history WHERE alias = ?"
			       " ORDER BY id", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	bind_text(st, 1, alias);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *reason = (const char *)sqlite3_column_text(st, 1);

		if (reason && strncmp(reason, "rollback", 8) == 0 && n > 0) {
			n--;
			continue;
		}
		ARRAY_GROW(stack, n + 1, cap);
		stack[n++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "reading alias history");
	else if (n < 2)
		ret = err_set(err, LTV_ENOTFOUND, "'%s' has no earlier version to roll back to", alias);
	else
		*out_version = stack[n - 2];
	sqlite3_finalize(st);
	free(stack);
	return ret;
}

static int report_run(struct registry *reg, const char *report, int64_t param, const char *text,
		      registry_row_fn fn, void *ctx, struct ltv_err *err)
{
	static const struct { const char *name; const char *sql; } reports[] = {
		{ "model_versions",
		  "SELECT v.version, v.created_at, v.run_id, CASE WHEN v.validation_error IS NULL"
		  " THEN 'n/a' ELSE printf('%.4f', v.validation_error) END AS campaign_wape_out_of_sample,"
		  " COALESCE('D' || json_extract(v.metrics, '$.target_horizon'), '?') AS at,"
		  " COALESCE((SELECT group_concat(alias, ',') FROM aliases a WHERE"
		  " a.model_version = v.version), '') AS aliases FROM model_versions v ORDER BY v.version" },
		{ "experiments",
		  "SELECT name, control, candidate, share, log_rate, horizon, min_users, started_at,"
		  " COALESCE(stopped_at, 'running') AS stopped_at, (SELECT count(*) FROM"
		  " experiment_predictions p WHERE p.experiment = e.name) AS logged FROM experiments e"
		  " ORDER BY started_at" },
		{ "alias_history",
		  "SELECT at, alias, COALESCE(from_version, '-') AS from_version, to_version, who, reason"
		  " FROM alias_history ORDER BY id" },
		{ "version_artefacts",
		  "SELECT a.name, a.version, a.created_at, a.metrics FROM artefacts a JOIN"
		  " model_version_artefacts m ON m.artefact_id = a.id WHERE m.model_version = ?1"
		  " ORDER BY a.id" },
		/* for models list, diff and export: what each artefact of a version was built with */
		{ "version_configs",
		  "SELECT a.id, a.name, a.version, COALESCE(a.as_of, '') AS as_of, a.config, a.metrics"
		  " FROM artefacts a JOIN model_version_artefacts m ON m.artefact_id = a.id"
		  " WHERE m.model_version = ?1 ORDER BY a.id" },
		{ "model_version",
		  "SELECT version, created_at, run_id, COALESCE(validation_error, '') AS validation_error,"
		  " metrics FROM model_versions WHERE version = ?1" },
		{ "artefact_blobs", "SELECT key, length(data) AS bytes FROM artefact_blobs"
				    " WHERE artefact_id = ?1 ORDER BY key" },
		/* text parameter: a run id */
		{ "run", "SELECT run_id, started_at, COALESCE(finished_at, '') AS finished_at, status,"
			 " command, COALESCE(as_of, '') AS as_of, config FROM runs WHERE run_id = ?1" },
		{ "run_artefacts", "SELECT id, name, version, COALESCE(as_of, '') AS as_of, config, metrics"
				   " FROM artefacts WHERE run_id = ?1 ORDER BY id" },
	};
	sqlite3_stmt *st = NULL;
	const char *sql = NULL;
	int ret = 0, rc;

	for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
		if (strcmp(reports[i].name, report) == 0)
			sql = reports[i].sql;
	if (!sql)
		return err_set(err, LTV_EINTERNAL, "no registry report '%s'", report);
	ret = prepare(reg, sql, &st, err);
	if (ret < 0)
		return ret;
	if (sqlite3_bind_parameter_count(st) > 0 && text)
		bind_text(st, 1, text);
	else if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, param);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_count(st);
		char *names[16], *values[16];

		for (int c = 0; c < n && c < 16; c++) {
			names[c] = (char *)sqlite3_column_name(st, c);
			values[c] = (char *)(sqlite3_column_text(st, c) ? (const char *)sqlite3_column_text(st, c) : "");
		}
		ret = fn(ctx, n < 16 ? n : 16, names, values);
		if (ret < 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, report);
	sqlite3_finalize(st);
	return ret;
}

int registry_report(struct registry *reg, const char *report, int64_t param,
		    registry_row_fn fn, void *ctx, struct ltv_err *err)
{
	return report_run(reg, report, param, NULL, fn, ctx, err);
}

int registry_report_text(struct registry *reg, const char *report, const char *param,
			 registry_row_fn fn, void *ctx, struct ltv_err *err)
{
	return report_run(reg, report, 0, param, fn, ctx, err);
}

/* ---- evaluations ---- */

int registry_score_insert(struct registry *reg, const struct score_record *rec, int64_t *out_id,
			  struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT INTO scores (scored_at, model_version, as_of, users, input,"
			       " output, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, rec->scored_at);
	sqlite3_bind_int64(st, 2, rec->model_version);
	sqlite3_bind_int64(st, 3, rec->as_of);
	sqlite3_bind_int64(st, 4, rec->users);
	if (rec->input)
		bind_text(st, 5, rec->input);
	else
		sqlite3_bind_null(st, 5);
	bind_text(st, 6, rec->output);
	bind_text(st, 7, rec->content_hash);
	ret = step_done(reg, st, "recording a score", err);
	sqlite3_finalize(st);
	if (ret == 0)
		*out_id = sqlite3_last_insert_rowid(reg->db);
	return ret;
}

int registry_evaluation_insert(struct registry *reg, const struct evaluation_row *row,
			       int64_t *out_id, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "INSERT INTO evaluations (run_id, created_at, as_of, horizons,"
			       " model_version, config_hash, metrics, report_dir)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, row->run_id);
	bind_text(st, 2, now);
	sqlite3_bind_int64(st, 3, row->as_of);
	bind_text(st, 4, row->horizons);
	if (row->model_version > 0)
		sqlite3_bind_int64(st, 5, row->model_version);
	else
		sqlite3_bind_null(st, 5);
	bind_text(st, 6, row->config_hash);
	bind_text(st, 7, row->metrics ? row->metrics : "{}");
	bind_text(st, 8, row->report_dir ? row->report_dir : "");
	ret = step_done(reg, st, "inserting an evaluation", err);
	sqlite3_finalize(st);
	if (ret == 0)
		*out_id = sqlite3_last_insert_rowid(reg->db);
	return ret;
}

static void read_evaluation_row(sqlite3_stmt *st, void *elem)
{
	struct evaluation_row *r = elem;

	r->id = sqlite3_column_int64(st, 0);
	r->run_id = dup_col(st, 1);
	r->created_at = dup_col(st, 2);
	r->as_of = sqlite3_column_int64(st, 3);
	r->horizons = dup_col(st, 4);
	r->model_version = sqlite3_column_int64(st, 5);
	r->config_hash = dup_col(st, 6);
	r->metrics = dup_col(st, 7);
	r->report_dir = dup_col(st, 8);
}

static void release_evaluation_row(void *elem)
{
	struct evaluation_row *r = elem;

	free(r->run_id);
	free(r->created_at);
	free(r->horizons);
	free(r->config_hash);
	free(r->metrics);
	free(r->report_dir);
}

static const struct row_reader evaluation_reader = {
	sizeof(struct evaluation_row), read_evaluation_row, release_evaluation_row
};

int registry_evaluations_load(struct registry *reg, int64_t model_version,
			      struct evaluation_row **out_rows, size_t *out_n, struct ltv_err *err)
{
	void *rows;
	int ret = reg_load_rows(reg, "SELECT id, run_id, created_at, as_of, horizons, model_version,"
				     " config_hash, metrics, report_dir FROM evaluations"
				     " WHERE model_version = ? ORDER BY id",
				model_version, &evaluation_reader, "reading evaluations", &rows,
				out_n, err);

	*out_rows = rows;
	return ret;
}

void evaluation_rows_free(struct evaluation_row *rows, size_t n)
{
	reg_free_rows(rows, n, &evaluation_reader);
}
