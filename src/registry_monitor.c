/*
 * The registry's monitoring tables (contract in include/ltv/registry.h):
 * drift reports written by `ltvpipe monitor` and read back by `status`.
 * SQL is prepared and bound, never built from data.
 */
#include <math.h>
#include <string.h>

#include "registry_internal.h"

int registry_monitor_insert(struct registry *reg, const struct monitor_row *row, int64_t *out_id,
			    struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "INSERT INTO monitor_reports (created_at, model_version, as_of,"
			       " window_days, status, max_psi, report) VALUES (?, ?, ?, ?, ?, ?, ?)",
			  &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, now);
	sqlite3_bind_int64(st, 2, row->model_version);
	sqlite3_bind_int64(st, 3, row->as_of);
	sqlite3_bind_int64(st, 4, row->window_days);
	bind_text(st, 5, row->status);
	bind_double_or_null(st, 6, row->max_psi);
	bind_text(st, 7, row->report ? row->report : "{}");
	ret = step_done(reg, st, "inserting a monitor report", err);
	sqlite3_finalize(st);
	if (ret == 0)
		*out_id = sqlite3_last_insert_rowid(reg->db);
	return ret;
}

static void read_monitor_row(sqlite3_stmt *st, void *elem)
{
	struct monitor_row *r = elem;

	r->id = sqlite3_column_int64(st, 0);
	r->created_at = dup_col(st, 1);
	r->model_version = sqlite3_column_int64(st, 2);
	r->as_of = sqlite3_column_int64(st, 3);
	r->window_days = sqlite3_column_int64(st, 4);
	r->status = dup_col(st, 5);
	r->max_psi = column_double_or_nan(st, 6);
	r->report = dup_col(st, 7);
}

void monitor_row_release(struct monitor_row *row)
{
	free(row->created_at);
	free(row->status);
	free(row->report);
	memset(row, 0, sizeof(*row));
}

static void release_monitor_elem(void *elem)
{
	monitor_row_release(elem);
}

static const struct row_reader monitor_reader = {
	sizeof(struct monitor_row), read_monitor_row, release_monitor_elem
};

int registry_monitor_latest(struct registry *reg, int64_t model_version, struct monitor_row *out,
			    struct ltv_err *err)
{
	void *rows = NULL;
	size_t n = 0;
	int ret = reg_load_rows(reg, "SELECT id, created_at, model_version, as_of, window_days,"
				     " status, max_psi, report FROM monitor_reports"
				     " WHERE model_version = ? ORDER BY id DESC LIMIT 1",
				model_version, &monitor_reader, "reading monitor reports", &rows, &n,
				err);

	memset(out, 0, sizeof(*out));
	if (ret < 0)
		return ret;
	if (n == 0)
		return err_set(err, LTV_ENOTFOUND, "model version %lld has no monitor report; run "
			       "'ltvpipe monitor --model %lld'", (long long)model_version,
			       (long long)model_version);
	*out = *(struct monitor_row *)rows;
	free(rows);
	return 0;
}

/* ---- experiments ---- */

#define EXPERIMENT_COLUMNS \
	"name, control, candidate, share, log_rate, horizon, min_users, salt, started_at," \
	" stopped_at IS NULL"

static void read_experiment(sqlite3_stmt *st, struct experiment_row *r)
{
	memset(r, 0, sizeof(*r));
	copy_col(st, 0, r->name, sizeof(r->name));
	r->control = sqlite3_column_int64(st, 1);
	r->candidate = sqlite3_column_int64(st, 2);
	r->share = sqlite3_column_double(st, 3);
	r->log_rate = sqlite3_column_double(st, 4);
	r->horizon = sqlite3_column_int64(st, 5);
	r->min_users = sqlite3_column_int64(st, 6);
	copy_col(st, 7, r->salt, sizeof(r->salt));
	copy_col(st, 8, r->started_at, sizeof(r->started_at));
	r->active = sqlite3_column_int(st, 9);
}

int registry_experiment_insert(struct registry *reg, const struct experiment_row *row,
			       struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "INSERT INTO experiments (name, control, candidate, share, log_rate,"
			       " horizon, min_users, salt, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			  &st, err), rc;

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, row->name);
	sqlite3_bind_int64(st, 2, row->control);
	sqlite3_bind_int64(st, 3, row->candidate);
	sqlite3_bind_double(st, 4, row->share);
	sqlite3_bind_double(st, 5, row->log_rate);
	sqlite3_bind_int64(st, 6, row->horizon);
	sqlite3_bind_int64(st, 7, row->min_users);
	bind_text(st, 8, row->salt);
	bind_text(st, 9, now);
	rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		ret = err_set(err, LTV_EINVAL, "experiment '%s' exists already; pick another name "
			      "('ltvpipe models experiment list' shows them)", row->name);
	else if (rc != SQLITE_DONE)
		ret = err_set(err, LTV_EREGISTRY, "inserting experiment '%s': %s", row->name,
			      sqlite3_errmsg(reg->db));
	sqlite3_finalize(st);
	return ret;
}

static int experiment_one(struct registry *reg, const char *sql, const char *name,
			  struct experiment_row *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, sql, &st, err), rc;

	if (ret < 0)
		return ret;
	if (name)
		bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_experiment(st, out);
	else if (rc == SQLITE_DONE)
		ret = name ? err_set(err, LTV_ENOTFOUND, "no experiment '%s'; 'ltvpipe models experiment "
				     "list' shows them", name)
			   : err_set(err, LTV_ENOTFOUND, "no active experiment");
	else
		ret = err_set(err, LTV_EREGISTRY, "reading experiments: %s", sqlite3_errmsg(reg->db));
	sqlite3_finalize(st);
	return ret;
}

int registry_experiment_get(struct registry *reg, const char *name, struct experiment_row *out,
			    struct ltv_err *err)
{
	return experiment_one(reg, "SELECT " EXPERIMENT_COLUMNS " FROM experiments WHERE name = ?",
			      name, out, err);
}

int registry_experiment_active(struct registry *reg, struct experiment_row *out,
			       struct ltv_err *err)
{
	return experiment_one(reg, "SELECT " EXPERIMENT_COLUMNS " FROM experiments WHERE stopped_at"
			      " IS NULL ORDER BY started_at DESC, rowid DESC LIMIT 1", NULL, out, err);
}

int registry_experiment_stop(struct registry *reg, const char *name, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "UPDATE experiments SET stopped_at = ? WHERE name = ? AND stopped_at"
			       " IS NULL", &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, now);
	bind_text(st, 2, name);
	ret = step_done(reg, st, "stopping an experiment", err);
	sqlite3_finalize(st);
	if (ret == 0 && sqlite3_changes(reg->db) == 0)
		ret = err_set(err, LTV_ENOTFOUND, "no running experiment '%s'; 'ltvpipe models "
			      "experiment list' shows them", name);
	return ret;
}

int registry_experiment_log(struct registry *reg, const char *experiment,
			    const struct experiment_prediction *p, const char *predictions,
			    struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int ret = prepare(reg, "INSERT OR IGNORE INTO experiment_predictions (experiment, user_id,"
			       " arm, model_version, at, as_of, age_days, ltv, predictions)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	utc_now(now);
	bind_text(st, 1, experiment);
	bind_text(st, 2, p->user_id);
	bind_text(st, 3, p->is_candidate ? "candidate" : "control");
	sqlite3_bind_int64(st, 4, p->model_version);
	bind_text(st, 5, now);
	sqlite3_bind_int64(st, 6, p->as_of);
	sqlite3_bind_double(st, 7, p->age_days);
	sqlite3_bind_double(st, 8, p->ltv);
	bind_text(st, 9, predictions);
	ret = step_done(reg, st, "logging an experiment prediction", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_experiment_predictions(struct registry *reg, const char *experiment,
				    struct experiment_prediction **out_rows, size_t *out_n,
				    struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0, cap = 0;
	struct experiment_prediction *rows = NULL;
	int ret = prepare(reg, "SELECT user_id, arm = 'candidate', model_version, as_of, age_days, ltv"
			       " FROM experiment_predictions WHERE experiment = ? ORDER BY user_id",
			  &st, err), rc;

	*out_rows = NULL;
	*out_n = 0;
	if (ret < 0)
		return ret;
	bind_text(st, 1, experiment);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct experiment_prediction *p;

		ARRAY_GROW(rows, n + 1, cap);
		p = &rows[n++];
		copy_col(st, 0, p->user_id, sizeof(p->user_id));
		p->is_candidate = sqlite3_column_int(st, 1);
		p->model_version = sqlite3_column_int64(st, 2);
		p->as_of = sqlite3_column_int64(st, 3);
		p->age_days = sqlite3_column_double(st, 4);
		p->ltv = sqlite3_column_double(st, 5);
	}
	if (rc != SQLITE_DONE) {
		ret = err_set(err, LTV_EREGISTRY, "reading experiment predictions: %s",
			      sqlite3_errmsg(reg->db));
		free(rows);
		rows = NULL;
		n = 0;
	}
	sqlite3_finalize(st);
	*out_rows = rows;
	*out_n = n;
	return ret;
}
