/*
 * The registry's runs, artefacts and metadata (see include/ltv/registry.h):
 * a run's row from start to finish, an artefact's row with its fingerprint,
 * content hash, lineage and the "current" pointer per name, and the key/value
 * meta table. The blobs an artefact holds live in src/registry_blob.c; the
 * connection, schema and transactions in src/registry.c.
 */
#include <string.h>

#include "registry_internal.h"

/* ---- runs ---- */

int registry_run_start(struct registry *reg, const char *run_id, const char *command,
		       int64_t as_of, const char *config_text, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret;

	utc_now(now);
	ret = prepare(reg, "INSERT INTO runs (run_id, started_at, status, command, as_of, config,"
			   " ltvpipe_version) VALUES (?, ?, 'running', ?, ?, ?, ?)", &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, run_id);
	bind_text(st, 2, now);
	bind_text(st, 3, command);
	sqlite3_bind_int64(st, 4, as_of);
	bind_text(st, 5, config_text);
	bind_text(st, 6, LTV_VERSION);
	ret = step_done(reg, st, "recording the run", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_run_set_as_of(struct registry *reg, const char *run_id, int64_t as_of,
			   struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "UPDATE runs SET as_of = ? WHERE run_id = ?", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, as_of);
	bind_text(st, 2, run_id);
	ret = step_done(reg, st, "recording the run's as_of", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_run_finish(struct registry *reg, const char *run_id, const char *status,
			struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret;

	utc_now(now);
	ret = prepare(reg, "UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, now);
	bind_text(st, 2, status);
	bind_text(st, 3, run_id);
	ret = step_done(reg, st, "finishing the run", err);
	sqlite3_finalize(st);
	return ret;
}

/* ---- artefacts ---- */

void artefact_info_release(struct artefact_info *a)
{
	free(a->config);
	free(a->metrics);
	free(a->timings);
	a->config = a->metrics = a->timings = NULL;
}

int registry_artefact_create(struct registry *reg, const struct artefact_new *a,
			     int64_t *out_id, int64_t *out_version, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int64_t version = 1, id;
	int ret;

	ret = prepare(reg, "SELECT COALESCE(MAX(version), 0) + 1 FROM artefacts WHERE name = ?",
		      &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, a->name);
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

	utc_now(now);
	ret = prepare(reg, "INSERT INTO artefacts (name, version, run_id, fingerprint, code_version,"
			   " config, as_of, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", &st, err);
	if (ret < 0)
		return ret;
	bind_text(st, 1, a->name);
	sqlite3_bind_int64(st, 2, version);
	bind_text(st, 3, a->run_id);
	bind_text(st, 4, a->fingerprint);
	bind_text(st, 5, a->code_version);
	bind_text(st, 6, a->config ? a->config : "");
	if (a->as_of == INT64_MIN)
		sqlite3_bind_null(st, 7);
	else
		sqlite3_bind_int64(st, 7, a->as_of);
	bind_text(st, 8, now);
	ret = step_done(reg, st, "creating an artefact", err);
	sqlite3_finalize(st);
	if (ret < 0)
		return ret;
	id = sqlite3_last_insert_rowid(reg->db);
	ret = reg_insert_links(reg, "INSERT OR IGNORE INTO lineage (artefact_id, input_id)"
				    " VALUES (?, ?)", id, a->inputs, a->n_inputs,
			       "recording lineage", err);
	*out_id = id;
	*out_version = version;
	return ret;
}

int registry_artefact_finish(struct registry *reg, int64_t id, const char *content_hash,
			     const char *metrics_json, const char *timings_json,
			     struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	/* The blob count lets registry_artefact_verify notice blobs deleted later. */
	int ret = prepare(reg, "UPDATE artefacts SET content_hash = ?, metrics = ?, timings = ?,"
			       " n_blobs = (SELECT count(*) FROM artefact_blobs WHERE artefact_id = ?4)"
			       " WHERE id = ?4", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, content_hash);
	bind_text(st, 2, metrics_json ? metrics_json : "{}");
	bind_text(st, 3, timings_json ? timings_json : "{}");
	sqlite3_bind_int64(st, 4, id);
	ret = step_done(reg, st, "finishing an artefact", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_artefact_set_fingerprint(struct registry *reg, int64_t id, const char *fingerprint,
				      const char *config, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "UPDATE artefacts SET fingerprint = ?, config = ? WHERE id = ?", &st,
			  err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, fingerprint);
	bind_text(st, 2, config ? config : "");
	sqlite3_bind_int64(st, 3, id);
	ret = step_done(reg, st, "fingerprinting an artefact", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_set_current(struct registry *reg, const char *name, int64_t id, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "INSERT INTO current_artefacts (name, artefact_id, updated_at)"
			       " VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
			       " artefact_id = excluded.artefact_id, updated_at = excluded.updated_at",
			  &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, id);
	bind_text(st, 3, now);
	ret = step_done(reg, st, "setting the current artefact", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_artefact_get(struct registry *reg, int64_t id, struct artefact_info *out,
			  struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char what[64];
	int ret = prepare(reg, "SELECT " ARTEFACT_COLUMNS " FROM artefacts WHERE id = ?", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	snprintf(what, sizeof(what), "with id %lld", (long long)id);
	ret = reg_fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

int registry_artefact_current(struct registry *reg, const char *name, struct artefact_info *out,
			      struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char what[128];
	int ret = prepare(reg, "SELECT " ARTEFACT_COLUMNS " FROM artefacts WHERE id ="
			       " (SELECT artefact_id FROM current_artefacts WHERE name = ?)", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, name);
	snprintf(what, sizeof(what), "'%s'", name);
	ret = reg_fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

int registry_artefact_by_fingerprint(struct registry *reg, const char *name,
				     const char *fingerprint, struct artefact_info *out,
				     struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char what[160];
	/* content_hash != '' skips rows of a transaction that never finished (cannot
	 * happen after a rollback, but costs nothing to state). */
	int ret = prepare(reg, "SELECT " ARTEFACT_COLUMNS " FROM artefacts WHERE name = ? AND"
			       " fingerprint = ? AND content_hash != '' ORDER BY version DESC LIMIT 1",
			  &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, name);
	bind_text(st, 2, fingerprint);
	snprintf(what, sizeof(what), "'%s' with fingerprint %s", name, fingerprint);
	ret = reg_fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

int registry_artefact_by_version(struct registry *reg, const char *name, int64_t version,
				 struct artefact_info *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char what[128];
	int ret = prepare(reg, "SELECT " ARTEFACT_COLUMNS " FROM artefacts WHERE name = ? AND"
			       " version = ?", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, version);
	snprintf(what, sizeof(what), "'%s' v%lld", name, (long long)version);
	ret = reg_fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

static void read_lineage_id(sqlite3_stmt *st, void *elem)
{
	*(int64_t *)elem = sqlite3_column_int64(st, 0);
}

static const struct row_reader lineage_reader = { sizeof(int64_t), read_lineage_id, NULL };

int registry_lineage(struct registry *reg, int64_t id, int64_t **out_ids, size_t *out_n,
		     struct ltv_err *err)
{
	void *ids;
	int ret = reg_load_rows(reg, "SELECT input_id FROM lineage WHERE artefact_id = ?"
				     " ORDER BY input_id", id, &lineage_reader, "reading lineage",
				&ids, out_n, err);

	*out_ids = ids;
	return ret;
}

int registry_artefact_count(struct registry *reg, const char *name, int64_t *out_n,
			    struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT COUNT(*) FROM artefacts WHERE name = ?", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, name);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out_n = sqlite3_column_int64(st, 0);
	else
		ret = SQL_FAIL(reg, err, "counting artefacts");
	sqlite3_finalize(st);
	return ret;
}

/* ---- meta ---- */

int registry_meta_set(struct registry *reg, const char *key, const char *value,
		      struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, key);
	bind_text(st, 2, value);
	ret = step_done(reg, st, "writing metadata", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_meta_get(struct registry *reg, const char *key, char **out_value,
		      struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT value FROM meta WHERE key = ?", &st, err);
	int rc;

	*out_value = NULL;
	if (ret < 0)
		return ret;
	bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_value = dup_col(st, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, LTV_ENOTFOUND, "registry has no '%s' yet", key);
	else
		ret = SQL_FAIL(reg, err, "reading metadata");
	sqlite3_finalize(st);
	return ret;
}

int registry_default_as_of(struct registry *reg, int64_t *out, struct ltv_err *err)
{
	char *value = NULL;
	int ret = registry_meta_get(reg, "max_event_time", &value, err);

	if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "the registry has no events yet, so there is no default "
			      "as_of; ingest events first (ltvpipe run) or pass --as-of DATE");
	else if (ret == 0 && parse_int64(value, out) < 0)
		ret = err_set(err, LTV_EREGISTRY, "registry meta max_event_time '%s' is not a time; "
			      "rerun ingest (ltvpipe run --only ingest --force)", value);
	free(value);
	return ret;
}
