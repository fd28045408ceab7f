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

#include <xxhash.h>

#include "ltv/halves.h"
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

int registry_user_days_add(struct registry *reg, const struct user_day_row *rows, size_t n,
			   struct ltv_err *err)
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
		ret = step_done(reg, st, "adding user-days", err);
		sqlite3_reset(st);
		free(data);
	}
	sqlite3_finalize(st);
	free(owned);
	return ret;
}

void user_table_release(struct user_table *t)
{
	user_table_drop_strings(t);
	user_table_free_arrays(t);
}

void user_table_drop_strings(struct user_table *t)
{
	/* no user_id array: dropped already */
	for (size_t i = 0; i < t->n && t->n_text_blocks == 0 && t->user_id; i++) {
		free(t->user_id[i]);
		free(t->app_id[i]);
		free(t->campaign[i]);
		free(t->attributes_json[i]);
	}
	for (size_t b = 0; b < t->n_text_blocks; b++)
		free(t->text_blocks[b]);
	free(t->text_blocks);
	free(t->user_id);
	free(t->app_id);
	free(t->campaign);
	free(t->attributes_json);
	t->text_blocks = NULL;
	t->n_text_blocks = 0;
	t->user_id = t->app_id = t->campaign = t->attributes_json = NULL;
}

/* Bytes of one block of a user table's strings: whole 2 MB huge pages (xmalloc_huge). */
#define USER_TEXT_BLOCK ((size_t)4 << 20)

/* A copy of column col's text (NULL reads as "", as dup_col) in t's current block, or a new one. */
static char *keep_text(struct user_table *t, size_t *used, const char *text, size_t len)
{
	char *p;

	if (t->n_text_blocks == 0 || *used + len > USER_TEXT_BLOCK) {
		t->text_blocks = xrealloc(t->text_blocks, (t->n_text_blocks + 1) * sizeof(char *));
		t->text_blocks[t->n_text_blocks++] = xmalloc_huge(len > USER_TEXT_BLOCK ? len : USER_TEXT_BLOCK);
		*used = 0;
	}
	p = t->text_blocks[t->n_text_blocks - 1] + *used;
	memcpy(p, text, len);
	*used += len > USER_TEXT_BLOCK ? USER_TEXT_BLOCK : len; /* an outsized string fills its block */
	return p;
}

static char *keep_column_text(struct user_table *t, size_t *used, sqlite3_stmt *st, int col)
{
	const unsigned char *column = sqlite3_column_text(st, col);

	return column ? keep_text(t, used, (const char *)column, (size_t)sqlite3_column_bytes(st, col) + 1)
		      : keep_text(t, used, "", 1);
}

/*
 * The copies of a column's recent values, by a hash of their bytes: a
 * million users have a few apps and campaigns, so most users' values are one
 * copy shared (the strings are read-only, as user_data's), which spares
 * their bytes (35 of 48 MB of fresh pages at 1,000,000 users, on the thread
 * that reads the users) and lets the frame's dictionaries find a value by
 * its address (feature_build.c, seen_at) instead of hashing it per user.
 */
#define SHARED_TEXT_SLOTS 64
struct shared_text {
	const char *p[SHARED_TEXT_SLOTS];
	size_t len[SHARED_TEXT_SLOTS]; /* with the NUL */
};

/*
 * XXH3, not a byte-at-a-time FNV-1a: three values of each user went through
 * that loop of dependent multiplies, a tenth of the users' thread's samples
 * (as user_data's keep_shared_text in score). Any hash is right: the slot's
 * bytes are compared before they are shared.
 */
static size_t shared_text_slot(const char *text, size_t len)
{
	return (size_t)(XXH3_64bits(text, len) >> 32) % SHARED_TEXT_SLOTS;
}

/* keep_column_text, or the copy of the same text made for an earlier user. */
static char *keep_shared_column_text(struct user_table *t, size_t *used, struct shared_text *c,
				     sqlite3_stmt *st, int col)
{
	const unsigned char *column = sqlite3_column_text(st, col);
	const char *text = column ? (const char *)column : "";
	const size_t len = column ? (size_t)sqlite3_column_bytes(st, col) + 1 : 1;
	const size_t k = shared_text_slot(text, len);

	if (c->p[k] && c->len[k] == len && memcmp(c->p[k], text, len) == 0)
		return (char *)c->p[k];
	c->p[k] = keep_text(t, used, text, len);
	c->len[k] = len;
	return (char *)c->p[k];
}

void user_table_free_arrays(struct user_table *t)
{
	free(t->uid);
	free(t->user_id);
	free(t->app_id);
	free(t->campaign);
	free(t->install_time);
	free(t->cost);
	free(t->attributes_json);
	memset(t, 0, sizeof(*t));
}

/*
 * How many users a reading thread has put into the table so far, for a
 * reader of the user-days waiting on it (registry_users_and_days). The
 * count is published under the mutex after the rows' columns are written,
 * so a waiter that sees it may read those rows.
 */
struct users_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t loaded;
	size_t want; /* the count the waiter sleeps for: no wake-up before */
	int done;
};

/* Users are counted out this many at a time (a lock each, rarely a wake-up). */
#define USERS_PUBLISH 4096
/*
 * A waiter sleeps till this many users past the one it needs are in (or
 * the last). Waking it for every 4,096 users was 250 hand-overs at
 * 1,000,000 users, each a wait for a core on a busy machine: the stage took
 * 17-28 s in a cold run at load 12-16 against main's 6-8 s. 16 hand-overs
 * instead; the user-days decoded after the last users are a 64K users' tail.
 */
#define USERS_AHEAD 65536

static void gate_publish(struct users_gate *g, size_t loaded, int done)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->loaded = loaded;
	g->done |= done;
	if (g->done || g->loaded >= g->want)
		pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/*
 * Waits till user uid and USERS_AHEAD more are in the table, or the reading
 * ended; how many users are in.
 */
static size_t gate_wait(struct users_gate *g, int64_t uid)
{
	size_t loaded;

	pthread_mutex_lock(&g->mu);
	if ((int64_t)g->loaded < uid && !g->done) {
		g->want = (size_t)uid + USERS_AHEAD;
		while (g->loaded < g->want && !g->done)
			pthread_cond_wait(&g->cv, &g->mu);
	}
	loaded = g->loaded;
	pthread_mutex_unlock(&g->mu);
	return loaded;
}

static int users_count(struct registry *reg, size_t *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT COUNT(*) FROM users", &st, err);

	*out = 0;
	if (ret < 0)
		return ret;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Columns for cap users, each written once in order: huge pages, 8 MB a column at 1,000,000 users. */
static void user_table_alloc(struct user_table *t, size_t cap)
{
	memset(t, 0, sizeof(*t));
	t->uid = xmalloc_huge((cap ? cap : 1) * sizeof(*t->uid));
	t->user_id = xmalloc_huge((cap ? cap : 1) * sizeof(char *));
	t->app_id = xmalloc_huge((cap ? cap : 1) * sizeof(char *));
	t->campaign = xmalloc_huge((cap ? cap : 1) * sizeof(char *));
	t->install_time = xmalloc_huge((cap ? cap : 1) * sizeof(int64_t));
	t->cost = xmalloc_huge((cap ? cap : 1) * sizeof(double));
	t->attributes_json = xmalloc_huge((cap ? cap : 1) * sizeof(char *));
}

/*
 * Reads up to cap users in uid order into t (columns allocated for cap),
 * telling gate (NULL: nobody waits) how many are in every USERS_PUBLISH
 * users and at the end; t->n is set once, at the end, so that a waiter
 * reads nothing this thread writes but the published rows.
 */
static int users_read_rows(struct registry *reg, struct user_table *t, size_t cap,
			   struct users_gate *gate, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct shared_text *shared = xcalloc(3, sizeof(*shared)); /* app, campaign, attributes */
	size_t n = 0, used = 0;
	int ret = prepare(reg, "SELECT uid, user_id, app_id, campaign, install_time, cost, attributes"
			       " FROM users ORDER BY uid", &st, err);
	int rc = SQLITE_DONE;

	/*
	 * The connection is serialized (SQLITE_OPEN_FULLMUTEX): each of the
	 * eight calls a row makes takes and drops its mutex, 16 million
	 * lock operations at 1,000,000 users (a tenth of the features stage's
	 * CPU). Held here, those become the owner's cheap re-entries.
	 */
	sqlite3_mutex_enter(sqlite3_db_mutex(reg->db));
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW && n < cap) {
		size_t i = n++;

		t->uid[i] = sqlite3_column_int64(st, 0);
		t->user_id[i] = keep_column_text(t, &used, st, 1);
		t->app_id[i] = keep_shared_column_text(t, &used, &shared[0], st, 2);
		t->campaign[i] = keep_shared_column_text(t, &used, &shared[1], st, 3);
		t->install_time[i] = sqlite3_column_int64(st, 4);
		t->cost[i] = column_double_or_nan(st, 5);
		t->attributes_json[i] = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL
					: keep_shared_column_text(t, &used, &shared[2], st, 6);
		if (n % USERS_PUBLISH == 0)
			gate_publish(gate, n, 0);
	}
	if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = SQL_FAIL(reg, err, "reading users");
	sqlite3_mutex_leave(sqlite3_db_mutex(reg->db));
	sqlite3_finalize(st);
	free(shared);
	t->n = n;
	gate_publish(gate, ret == 0 ? n : 0, 1);
	return ret;
}

int registry_users_load(struct registry *reg, struct user_table *out, struct ltv_err *err)
{
	struct user_table t = { 0 };
	size_t cap = 0;
	int ret = users_count(reg, &cap, err);

	if (ret < 0) {
		*out = t;
		return ret;
	}
	user_table_alloc(&t, cap);
	ret = users_read_rows(reg, &t, cap, NULL, err);
	if (ret < 0)
		user_table_release(&t);
	*out = t;
	return ret;
}

/* The blocks' bytes, read into memory, and a cursor on each. */
struct day_sources {
	uint8_t **data;
	struct user_day_cursor *cur;
	size_t n, cap;
};

static void sources_add(struct day_sources *s, uint8_t *data)
{
	ARRAY_GROW(s->data, s->n + 1, s->cap);
	s->cur = xrealloc(s->cur, s->cap * sizeof(*s->cur));
	s->data[s->n++] = data;
}

static void sources_release(struct day_sources *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->data);
	free(s->cur);
	memset(s, 0, sizeof(*s));
}

/*
 * Rows of the user_days table, which registries of schema 7 and older hold
 * (newer ones store blocks only), as one more block.
 */
static int legacy_user_days(struct registry *reg, struct day_sources *s, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct user_day_row *rows = NULL;
	size_t n = 0, cap = 0, len;
	int ret = prepare(reg, "SELECT uid, day, revenue, events, purchases FROM user_days"
			       " ORDER BY uid, day", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ARRAY_GROW(rows, n + 1, cap);
		rows[n++] = (struct user_day_row){ sqlite3_column_int64(st, 0),
						   sqlite3_column_int64(st, 1),
						   sqlite3_column_double(st, 2),
						   sqlite3_column_int64(st, 3),
						   sqlite3_column_int64(st, 4) };
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "reading user-days");
	sqlite3_finalize(st);
	if (ret == 0 && n > 0) {
		sources_add(s, user_day_block_encode(rows, n, &len));
		ret = user_day_cursor_open(&s->cur[s->n - 1], s->data[s->n - 1], len, "user_days", err);
	}
	free(rows);
	return ret;
}

/* Reads the blob of row `id` of user_day_blocks into a new buffer (*out_data, *out_len). */
static int read_block(struct registry *reg, int64_t id, uint8_t **out_data, size_t *out_len,
		      struct ltv_err *err)
{
	sqlite3_blob *blob = NULL;
	size_t len;
	uint8_t *data;
	int rc;

	if (sqlite3_blob_open(reg->db, "main", "user_day_blocks", "data", id, 0, &blob) != SQLITE_OK) {
		rc = SQL_FAIL(reg, err, "reading user-day blocks");
		sqlite3_blob_close(blob);
		return rc;
	}
	len = (size_t)sqlite3_blob_bytes(blob);
	data = xmalloc(len ? len : 1);
	rc = len ? sqlite3_blob_read(blob, data, (int)len, 0) : SQLITE_OK;
	sqlite3_blob_close(blob);
	if (rc != SQLITE_OK) {
		free(data);
		return SQL_FAIL(reg, err, "reading user-day blocks");
	}
	*out_data = data;
	*out_len = len;
	return 0;
}

/*
 * The blocks in (uid_min, id) order: the ids are sorted first, then each
 * blob is read straight into its buffer. Sorting the rows themselves had
 * SQLite's sorter copy every block (36 MB at 1,000,000 users) and the
 * column read copy it once more before ours: 0.8 CPU s of the features
 * stage's 9.
 */
static int load_blocks(struct registry *reg, struct day_sources *s, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT id FROM user_day_blocks ORDER BY uid_min, id", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ARRAY_GROW(ids, n + 1, cap);
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "reading user-day blocks");
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && ret == 0; i++) {
		uint8_t *data = NULL;
		size_t len = 0;

		ret = read_block(reg, ids[i], &data, &len, err);
		if (ret < 0)
			break;
		sources_add(s, data);
		ret = user_day_cursor_open(&s->cur[s->n - 1], data, len, "user_day_blocks", err);
	}
	free(ids);
	return ret;
}

static int row_before(const struct user_day_row *a, const struct user_day_row *b)
{
	return a->uid < b->uid || (a->uid == b->uid && a->day < b->day);
}

/* Restores the min-heap of cursors (by their current row) below position i. */
static void heap_down(struct user_day_cursor **h, size_t n, size_t i)
{
	for (;;) {
		size_t m = i, l = 2 * i + 1, r = l + 1;
		struct user_day_cursor *t;

		if (l < n && row_before(&h[l]->row, &h[m]->row))
			m = l;
		if (r < n && row_before(&h[r]->row, &h[m]->row))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/*
 * Merges the sources in (uid, day) order; a (uid, day) in several blocks
 * (an append-mode ingest adding days to earlier users) is summed, as the
 * table's upsert did.
 */
static int merge_sources(struct day_sources *s, user_day_fn fn, void *ctx, struct ltv_err *err)
{
	struct user_day_cursor **heap = xmalloc((s->n ? s->n : 1) * sizeof(*heap));
	size_t n = 0;
	int ret = 0;

	for (size_t i = 0; i < s->n && ret >= 0; i++) {
		ret = user_day_cursor_next(&s->cur[i], err);
		if (ret == 1)
			heap[n++] = &s->cur[i];
	}
	for (size_t i = n / 2; ret >= 0 && i-- > 0;)
		heap_down(heap, n, i);
	while (ret >= 0 && n > 0) {
		struct user_day_row acc = heap[0]->row;

		for (;;) {
			ret = user_day_cursor_next(heap[0], err);
			if (ret < 0)
				break;
			if (ret == 0)
				heap[0] = heap[--n];
			heap_down(heap, n, 0);
			if (n == 0 || heap[0]->row.uid != acc.uid || heap[0]->row.day != acc.day)
				break;
			acc.revenue += heap[0]->row.revenue;
			acc.events += heap[0]->row.events;
			acc.purchases += heap[0]->row.purchases;
		}
		if (ret >= 0)
			ret = fn(ctx, acc.uid, acc.day, acc.revenue, acc.events, acc.purchases);
	}
	free(heap);
	return ret < 0 ? ret : 0;
}

int registry_user_days_each(struct registry *reg, user_day_fn fn, void *ctx, struct ltv_err *err)
{
	struct day_sources s = { 0 };
	int ret = load_blocks(reg, &s, err);

	if (ret == 0)
		ret = legacy_user_days(reg, &s, err);
	if (ret == 0)
		ret = merge_sources(&s, fn, ctx, err);
	sources_release(&s);
	return ret;
}

/*
 * A user_day_fn passing on the user-days of users already read (gate_wait);
 * known is the count last seen, so most rows take no lock.
 */
struct gated_days {
	struct users_gate *gate;
	size_t known;
	user_day_fn fn;
	void *ctx;
};

static int gated_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
		     int64_t purchases)
{
	struct gated_days *g = opaque;

	if (uid < 1)
		return 0;
	if ((uint64_t)uid > g->known)
		g->known = gate_wait(g->gate, uid);
	if ((uint64_t)uid > g->known)
		return 0;
	return g->fn(g->ctx, uid, day, revenue, events, purchases);
}

/* The users' reading thread: its own error, not the caller's, which the user-days may set. */
struct users_job {
	struct registry *reg;
	struct user_table *t;
	size_t cap;
	struct users_gate *gate;
	struct ltv_err err;
	int ret;
};

static void *users_job_main(void *arg)
{
	struct users_job *j = arg;

	j->ret = users_read_rows(j->reg, j->t, j->cap, j->gate, &j->err);
	return NULL;
}

/*
 * The users' seven columns (56 MB at 1,000,000 users) faulted in on a
 * thread of their own while the users' thread fills them row by row: the
 * kernel's zeroing of their fresh pages was a quarter of that thread's
 * time (0.15 of 0.68 s), and it is the read's long pole, while the caller
 * decoding the user-days mostly waits for it (populate_start, common.h).
 */
static void users_populate_start(struct user_table *t, size_t cap, struct populate *pp)
{
	populate_add(pp, t->uid, cap * sizeof(*t->uid));
	populate_add(pp, t->user_id, cap * sizeof(*t->user_id));
	populate_add(pp, t->app_id, cap * sizeof(*t->app_id));
	populate_add(pp, t->campaign, cap * sizeof(*t->campaign));
	populate_add(pp, t->install_time, cap * sizeof(*t->install_time));
	populate_add(pp, t->cost, cap * sizeof(*t->cost));
	populate_add(pp, t->attributes_json, cap * sizeof(*t->attributes_json));
	populate_start(pp);
}

/*
 * Everything SQLite does happens first on the caller's thread (the count,
 * the blocks' bytes) or under the connection's mutex on the users' thread,
 * so the decoding here never waits on SQLite, only on users not read yet.
 */
int registry_users_and_days(struct registry *reg, int threads, struct user_table *users,
			    user_day_fn fn, void *ctx, struct ltv_err *err)
{
	struct users_gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, SIZE_MAX, 0 };
	struct users_job job = { reg, users, 0, &gate, { 0 }, 0 };
	struct gated_days gated = { &gate, 0, fn, ctx };
	struct day_sources s = { 0 };
	struct populate fresh;
	pthread_t thread;
	int ret = users_count(reg, &job.cap, err), started = 0;

	memset(users, 0, sizeof(*users));
	populate_init(&fresh);
	if (ret < 0)
		return ret;
	user_table_alloc(users, job.cap);
	if (threads > 1)
		users_populate_start(users, job.cap, &fresh);
	ret = load_blocks(reg, &s, err);
	if (ret == 0)
		ret = legacy_user_days(reg, &s, err);
	if (ret == 0) {
		started = threads > 1 && pthread_create(&thread, NULL, users_job_main, &job) == 0;
		if (!started) /* one thread: the users first, then the days find them all read */
			users_job_main(&job);
		ret = merge_sources(&s, gated_day, &gated, err);
		if (started)
			pthread_join(thread, NULL);
		/* A users' failure comes first, as when the users were read before the days. */
		if (job.ret < 0) {
			*err = job.err;
			ret = job.ret;
		}
	}
	populate_stop(&fresh); /* before the columns may be freed */
	sources_release(&s);
	if (ret < 0)
		user_table_release(users);
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
