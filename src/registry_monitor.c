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
