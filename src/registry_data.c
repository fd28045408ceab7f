/*
 * The registry's tables of ingested data and of the stages' per-campaign
 * results (see include/ltv/registry.h): ingested files, users and user-days
 * (written row by row by ingest through statements prepared once per
 * connection), campaign tiers, method selection and calibration parameters.
 * The tiers, selection and calibration tables duplicate what the artefacts'
 * blobs hold so that people can query them with sqlite3.
 */
#include <pthread.h>
#include <string.h>

#include "ltv/halves.h"
#include "ltv/mapped_block.h"
#include "ltv/user_day_block.h"
#include "registry_internal.h"

/* ---- ingested data ---- */

/* Rows per user-day block: about 12 bytes a row, so a blob stays under 100 MB. */
#define USER_DAY_BLOCK_ROWS ((size_t)1 << 23)
#define USER_INSERT_SQL \
	"INSERT INTO users (uid, user_id, app_id, campaign, install_time, cost, attributes," \
	" artefact_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
#define USER_INSERT_ROW ", (?, ?, ?, ?, ?, ?, ?, ?)"
/*
 * Users a statement: the users writer's whole batch (pipeline/ingest.c), so
 * a million users take 977 statements. Each statement starts, and keeps an
 * undo copy (statement journal) of, the 64 KB pages it changes first; at 64
 * users a statement, 15,625 of them, the writer took 1.28 CPU s against
 * 1.19 (medians of the writer thread's perf samples, four alternating runs
 * at 1,000,000 users). The last batch's fewer users go one by one.
 */
#define USER_BATCH 1024
/* User-days from which registry_user_days_add checks them on two threads (rows_check). */
#define CHECK_HALVES_MIN ((size_t)1 << 16)

/* head, then row n - 1 times, then tail: a statement inserting n rows. Caller frees. */
static char *multi_row_sql(const char *head, const char *row, int n, const char *tail)
{
	const size_t lh = strlen(head), lr = strlen(row), lt = strlen(tail);
	char *sql = xmalloc(lh + (size_t)(n - 1) * lr + lt + 1), *w = sql;

	memcpy(w, head, lh);
	w += lh;
	for (int k = 1; k < n; k++) {
		memcpy(w, row, lr);
		w += lr;
	}
	memcpy(w, tail, lt + 1);
	return sql;
}

static int file_ingested(struct registry *reg, const char *content_hash, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT 1 FROM ingested_files WHERE content_hash = ?", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	bind_text(st, 1, content_hash);
	rc = sqlite3_step(st);
	ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SQL_FAIL(reg, err, "reading files");
	sqlite3_finalize(st);
	return ret;
}

static int file_record(struct registry *reg, const char *content_hash, const char *kind,
		       const char *path, int64_t artefact_id, int64_t rows, int64_t rejects,
		       struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT INTO ingested_files (content_hash, kind, path, artefact_id,"
			       " rows, rejects) VALUES (?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	bind_text(st, 1, content_hash);
	bind_text(st, 2, kind);
	bind_text(st, 3, path);
	sqlite3_bind_int64(st, 4, artefact_id);
	sqlite3_bind_int64(st, 5, rows);
	sqlite3_bind_int64(st, 6, rejects);
	ret = step_done(reg, st, "recording an ingested file", err);
	sqlite3_finalize(st);
	return ret;
}

static int file_hash_for_path(struct registry *reg, const char *kind, const char *path,
			      char **out_hash, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT content_hash FROM ingested_files WHERE kind = ? AND path = ?"
			       " ORDER BY rowid DESC LIMIT 1", &st, err);
	int rc;

	*out_hash = NULL;
	if (ret < 0)
		return ret;
	bind_text(st, 1, kind);
	bind_text(st, 2, path);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out_hash = dup_col(st, 0);
	else if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "reading ingested files");
	sqlite3_finalize(st);
	return ret;
}

/*
 * The three calls ingest's stage thread makes while its users writer may
 * be inserting on the same connection (pipeline/ingest.c): each holds the
 * serialized connection's mutex whole, as the writer's batch does
 * (registry_users_insert), so that no statement of the other thread comes
 * between a step and its error message.
 */
int registry_file_ingested(struct registry *reg, const char *content_hash, struct ltv_err *err)
{
	int ret;

	sqlite3_mutex_enter(sqlite3_db_mutex(reg->db));
	ret = file_ingested(reg, content_hash, err);
	sqlite3_mutex_leave(sqlite3_db_mutex(reg->db));
	return ret;
}

int registry_file_record(struct registry *reg, const char *content_hash, const char *kind,
			 const char *path, int64_t artefact_id, int64_t rows, int64_t rejects,
			 struct ltv_err *err)
{
	int ret;

	sqlite3_mutex_enter(sqlite3_db_mutex(reg->db));
	ret = file_record(reg, content_hash, kind, path, artefact_id, rows, rejects, err);
	sqlite3_mutex_leave(sqlite3_db_mutex(reg->db));
	return ret;
}

int registry_file_hash_for_path(struct registry *reg, const char *kind, const char *path,
				char **out_hash, struct ltv_err *err)
{
	int ret;

	sqlite3_mutex_enter(sqlite3_db_mutex(reg->db));
	ret = file_hash_for_path(reg, kind, path, out_hash, err);
	sqlite3_mutex_leave(sqlite3_db_mutex(reg->db));
	return ret;
}

static void read_hash(sqlite3_stmt *st, void *elem)
{
	*(char **)elem = dup_col(st, 0);
}

static void release_hash(void *elem)
{
	free(*(char **)elem);
}

static const struct row_reader hash_reader = { sizeof(char *), read_hash, release_hash };

int registry_ingested_hashes(struct registry *reg, char ***out_hashes, size_t *out_n,
			     struct ltv_err *err)
{
	void *hashes;
	int ret = reg_load_rows(reg, "SELECT content_hash FROM ingested_files ORDER BY content_hash",
				0, &hash_reader, "listing ingested files", &hashes, out_n, err);

	*out_hashes = hashes;
	return ret;
}

int registry_data_clear(struct registry *reg, struct ltv_err *err)
{
	return exec_sql(reg, "DELETE FROM user_days; DELETE FROM user_day_blocks; DELETE FROM users; DELETE FROM ingested_files;"
			     " DELETE FROM meta WHERE key = 'max_event_time';", err);
}

/* Binds user u to the 8 parameters of st from first (1-based). */
static void bind_user(sqlite3_stmt *st, int first, const struct user_row *u, int64_t artefact_id)
{
	sqlite3_bind_int64(st, first, u->uid);
	sqlite3_bind_text(st, first + 1, u->user_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, first + 2, u->app_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, first + 3, u->campaign, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, first + 4, u->install_time);
	bind_double_or_null(st, first + 5, u->cost);
	if (u->attributes_json)
		sqlite3_bind_text(st, first + 6, u->attributes_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, first + 6);
	sqlite3_bind_int64(st, first + 7, artefact_id);
}

int registry_user_insert(struct registry *reg, const struct user_row *u, int64_t artefact_id,
			 struct ltv_err *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (!reg->user_insert) {
		ret = prepare(reg, USER_INSERT_SQL, &reg->user_insert, err);
		if (ret < 0)
			return ret;
	}
	st = reg->user_insert;
	sqlite3_reset(st);
	bind_user(st, 1, u, artefact_id);
	ret = step_done(reg, st, "inserting a user", err);
	sqlite3_clear_bindings(st);
	return ret;
}

int registry_users_insert(struct registry *reg, const struct user_row *rows, size_t n,
			  int64_t artefact_id, struct ltv_err *err)
{
	sqlite3_stmt *st;
	size_t i = 0;
	int ret = 0;

	/*
	 * Held whole, as in registry_users_load: the connection is serialized,
	 * and each of a user's eight binds took and dropped its mutex (3% of
	 * ingest's CPU at 1,000,000 users, all of it on the users writer, the
	 * thread a users file waits for: pipeline/ingest.c).
	 */
	sqlite3_mutex_enter(sqlite3_db_mutex(reg->db));
	/* Prepared once per connection: the users writer calls this per 1,024 users. */
	if (n >= USER_BATCH && !reg->users_insert) {
		char *sql = multi_row_sql(USER_INSERT_SQL, USER_INSERT_ROW, USER_BATCH, "");

		ret = prepare(reg, sql, &reg->users_insert, err);
		free(sql);
	}
	st = reg->users_insert;
	for (; ret == 0 && n - i >= USER_BATCH; i += USER_BATCH) {
		for (int k = 0; k < USER_BATCH; k++)
			bind_user(st, 8 * k + 1, &rows[i + (size_t)k], artefact_id);
		ret = step_done(reg, st, "inserting users", err);
		sqlite3_reset(st);
	}
	/* No binding outlives the caller's strings (SQLITE_STATIC). */
	if (st && n >= USER_BATCH)
		sqlite3_clear_bindings(st);
	for (; ret == 0 && i < n; i++)
		ret = registry_user_insert(reg, &rows[i], artefact_id, err);
	sqlite3_mutex_leave(sqlite3_db_mutex(reg->db));
	return ret;
}

int registry_user_day_add(struct registry *reg, int64_t uid, int64_t day, double revenue,
			  int64_t events, int64_t purchases, struct ltv_err *err)
{
	const struct user_day_row row = { uid, day, revenue, events, purchases };

	return registry_user_days_add(reg, &row, 1, err);
}

static int compare_user_day(const void *a, const void *b)
{
	const struct user_day_row *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->day < y->day ? -1 : x->day > y->day;
}

/* One of the two halves of the rows rows_check reads, [from, to): its first bad row, if any, and its order. */
struct check_half {
	const struct user_day_row *rows;
	size_t from, to;
	size_t bad;  /* the first row out of range; to if none */
	int ordered; /* strictly increasing from the row before from */
};

static void check_half(void *arg)
{
	struct check_half *h = arg;
	const struct user_day_row *rows = h->rows;
	int in_order = 1;

	h->bad = h->to;
	for (size_t i = h->from; i < h->to; i++) {
		if (rows[i].uid < 1 || rows[i].day < 0 || rows[i].events < 0 || rows[i].purchases < 0) {
			h->bad = i;
			break;
		}
		in_order &= i == 0 || compare_user_day(&rows[i - 1], &rows[i]) < 0;
	}
	h->ordered = in_order;
}

/*
 * Checks that every row is in range (uid >= 1, day, events and purchases >=
 * 0) and sets *ordered to whether they are in strictly increasing (uid,
 * day) order: one pass, as ingest's 3 million rows (120 MB at a million
 * users) read twice, once per check, cost 0.04 s of its serial tail; from
 * CHECK_HALVES_MIN rows on, as two halves on two threads (halves_run).
 */
static int rows_check(const struct user_day_row *rows, size_t n, int *ordered, struct ltv_err *err)
{
	struct check_half h[2] = { { .rows = rows, .from = 0, .to = n / 2 },
				   { .rows = rows, .from = n / 2, .to = n } };

	halves_run(check_half, &h[0], &h[1], n >= CHECK_HALVES_MIN ? 2 : 1);
	for (int k = 0; k < 2; k++)
		if (h[k].bad < h[k].to)
			return err_set(err, LTV_EINTERNAL, "user-day (uid %lld, day %lld) out of range",
				       (long long)rows[h[k].bad].uid, (long long)rows[h[k].bad].day);
	*ordered = h[0].ordered && h[1].ordered;
	return 0;
}

/* Rows in strictly increasing (uid, day) order: rows itself if ordered, or a sorted and merged copy. */
static const struct user_day_row *rows_in_key_order(const struct user_day_row *rows, size_t *n,
						    int ordered, struct user_day_row **owned)
{
	struct user_day_row *v;
	size_t m = 0;

	*owned = NULL;
	if (ordered)
		return rows;
	v = xmalloc(*n * sizeof(*v));
	memcpy(v, rows, *n * sizeof(*v));
	qsort(v, *n, sizeof(*v), compare_user_day);
	for (size_t i = 0; i < *n; i++) {
		if (m && v[m - 1].uid == v[i].uid && v[m - 1].day == v[i].day) {
			v[m - 1].revenue += v[i].revenue;
			v[m - 1].events += v[i].events;
			v[m - 1].purchases += v[i].purchases;
		} else {
			v[m++] = v[i];
		}
	}
	*n = m;
	*owned = v;
	return v;
}

/*
 * registry_user_days_add, and with a block (NULL or the rows' own): once the
 * last block of rows is encoded, the rows are not read again, and their
 * pages go to SQLite for its record copy of that block (src/registry_mem.c).
 */
static int add_user_days(struct registry *reg, const struct user_day_row *rows, size_t n,
			 struct mapped_block *block, struct ltv_err *err)
{
	struct user_day_row *owned;
	sqlite3_stmt *st = NULL;
	int ordered = 0, ret;

	if (n == 0)
		return 0;
	ret = rows_check(rows, n, &ordered, err);
	if (ret < 0)
		return ret;
	rows = rows_in_key_order(rows, &n, ordered, &owned);
	ret = prepare(reg, "INSERT INTO user_day_blocks (uid_min, uid_max, n_rows, data)"
			   " VALUES (?, ?, ?, ?)", &st, err);
	/* Blocks of at most USER_DAY_BLOCK_ROWS rows keep each blob far below SQLite's limit. */
	for (size_t i = 0; ret == 0 && i < n; i += USER_DAY_BLOCK_ROWS) {
		const size_t m = n - i < USER_DAY_BLOCK_ROWS ? n - i : USER_DAY_BLOCK_ROWS;
		size_t len;
		uint8_t *data = user_day_block_encode(rows + i, m, &len);

		sqlite3_bind_int64(st, 1, rows[i].uid);
		sqlite3_bind_int64(st, 2, rows[i + m - 1].uid);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)m);
		sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
		if (block && !owned && i + m == n)
			registry_mem_lend(block);
		ret = step_done(reg, st, "adding user-days", err);
		sqlite3_reset(st);
		free(data);
	}
	registry_mem_unlend();
	sqlite3_finalize(st);
	free(owned);
	return ret;
}

int registry_user_days_add(struct registry *reg, const struct user_day_row *rows, size_t n,
			   struct ltv_err *err)
{
	return add_user_days(reg, rows, n, NULL, err);
}

int registry_user_days_add_block(struct registry *reg, struct mapped_block *rows, size_t n,
				 struct ltv_err *err)
{
	int ret = add_user_days(reg, rows->p, n, rows, err);

	mapped_block_release(rows);
	return ret;
}
/* ---- campaign tiers ---- */

int registry_campaign_tier_insert(struct registry *reg, int64_t artefact_id,
				  const struct campaign_tier_row *row, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT INTO campaign_tiers (artefact_id, app_id, campaign, tier,"
			       " mature_users, validation_users, payers, revenue, mean_ltv, history_days)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, row->app_id);
	bind_text(st, 3, row->campaign);
	sqlite3_bind_int(st, 4, row->tier);
	sqlite3_bind_int64(st, 5, row->mature_users);
	sqlite3_bind_int64(st, 6, row->validation_users);
	sqlite3_bind_int64(st, 7, row->payers);
	sqlite3_bind_double(st, 8, row->revenue);
	bind_double_or_null(st, 9, row->mean_ltv);
	sqlite3_bind_int64(st, 10, row->history_days);
	ret = step_done(reg, st, "inserting a campaign tier", err);
	sqlite3_finalize(st);
	return ret;
}

static void read_tier_row(sqlite3_stmt *st, void *elem)
{
	struct campaign_tier_row *r = elem;

	r->app_id = dup_col(st, 0);
	r->campaign = dup_col(st, 1);
	r->tier = sqlite3_column_int(st, 2);
	r->mature_users = sqlite3_column_int64(st, 3);
	r->validation_users = sqlite3_column_int64(st, 4);
	r->payers = sqlite3_column_int64(st, 5);
	r->revenue = sqlite3_column_double(st, 6);
	r->mean_ltv = column_double_or_nan(st, 7);
	r->history_days = sqlite3_column_int64(st, 8);
}

static void release_tier_row(void *elem)
{
	struct campaign_tier_row *r = elem;

	free(r->app_id);
	free(r->campaign);
}

static const struct row_reader tier_reader = {
	sizeof(struct campaign_tier_row), read_tier_row, release_tier_row
};

int registry_campaign_tiers_load(struct registry *reg, int64_t artefact_id,
				 struct campaign_tier_row **out_rows, size_t *out_n,
				 struct ltv_err *err)
{
	void *rows;
	int ret = reg_load_rows(reg, "SELECT app_id, campaign, tier, mature_users, validation_users,"
				     " payers, revenue, mean_ltv, history_days FROM campaign_tiers"
				     " WHERE artefact_id = ? ORDER BY app_id, campaign",
				artefact_id, &tier_reader, "reading campaign tiers", &rows, out_n, err);

	*out_rows = rows;
	return ret;
}

void campaign_tiers_free(struct campaign_tier_row *rows, size_t n)
{
	reg_free_rows(rows, n, &tier_reader);
}

/* ---- method selection ---- */

int registry_selection_insert(struct registry *reg, int64_t artefact_id,
			      const struct selection_row *row, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT INTO method_selection (artefact_id, app_id, campaign, tier,"
			       " method, selected, source, n_validation, ape, rmsle)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, row->app_id);
	bind_text(st, 3, row->campaign);
	sqlite3_bind_int(st, 4, row->tier);
	bind_text(st, 5, row->method);
	sqlite3_bind_int(st, 6, row->selected);
	bind_text(st, 7, row->source);
	sqlite3_bind_int64(st, 8, row->n_validation);
	bind_double_or_null(st, 9, row->ape);
	bind_double_or_null(st, 10, row->rmsle);
	ret = step_done(reg, st, "inserting a method selection", err);
	sqlite3_finalize(st);
	return ret;
}

static void read_selection_row(sqlite3_stmt *st, void *elem)
{
	struct selection_row *r = elem;

	r->app_id = dup_col(st, 0);
	r->campaign = dup_col(st, 1);
	r->tier = sqlite3_column_int(st, 2);
	r->method = dup_col(st, 3);
	r->source = dup_col(st, 4);
	r->selected = 1; /* the query reads the selected rows only */
	r->n_validation = sqlite3_column_int64(st, 5);
	r->ape = column_double_or_nan(st, 6);
	r->rmsle = column_double_or_nan(st, 7);
}

static void release_selection_row(void *elem)
{
	struct selection_row *r = elem;

	free(r->app_id);
	free(r->campaign);
	free(r->method);
	free(r->source);
}

static const struct row_reader selection_reader = {
	sizeof(struct selection_row), read_selection_row, release_selection_row
};

int registry_selection_load(struct registry *reg, int64_t artefact_id,
			    struct selection_row **out_rows, size_t *out_n, struct ltv_err *err)
{
	void *rows;
	int ret = reg_load_rows(reg, "SELECT app_id, campaign, tier, method, source, n_validation,"
				     " ape, rmsle FROM method_selection"
				     " WHERE artefact_id = ? AND selected = 1"
				     " ORDER BY tier, app_id, campaign",
				artefact_id, &selection_reader, "reading method selection", &rows,
				out_n, err);

	*out_rows = rows;
	return ret;
}

void selection_rows_free(struct selection_row *rows, size_t n)
{
	reg_free_rows(rows, n, &selection_reader);
}

int registry_calibration_insert(struct registry *reg, int64_t artefact_id,
				const struct calibration_row *row, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT INTO calibration (artefact_id, tier, horizon, kind, alpha,"
			       " anchor, n_validation, mse_anchor, mse_isotonic)"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	sqlite3_bind_int(st, 2, row->tier);
	sqlite3_bind_int64(st, 3, row->horizon);
	bind_text(st, 4, row->kind);
	bind_double_or_null(st, 5, row->alpha);
	bind_double_or_null(st, 6, row->anchor);
	sqlite3_bind_int64(st, 7, row->n_validation);
	bind_double_or_null(st, 8, row->mse_anchor);
	bind_double_or_null(st, 9, row->mse_isotonic);
	ret = step_done(reg, st, "inserting a calibration", err);
	sqlite3_finalize(st);
	return ret;
}
