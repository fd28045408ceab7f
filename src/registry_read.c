/*
 * The registry's users and user-days read back (include/ltv/registry.h): the
 * users table into a user_table, the user-day blocks decoded and merged in
 * (uid, day) order, and both at once on two threads for the features stage
 * (registry_users_and_days). Ingest's writing side is src/registry_data.c.
 */
#include <pthread.h>
#include <string.h>

#include <xxhash.h>

#include "ltv/user_day_block.h"
#include "ltv/users_gate.h"
#include "registry_internal.h"

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
 * What fixes users or user-days a hand or a damage left inconsistent:
 * ingest from the input files anew. The default append mode would load the
 * damaged users and keep the stray days, so replace.
 */
#define REINGEST_ADVICE                                                                   \
	"ingest again (ltvpipe run --only ingest --force --set ingest.mode=replace, with " \
	"its --shard for a shard's registry)"

/*
 * One reader of the users table into t's columns (rows [0, n)), its strings
 * into text's blocks (t itself, or a table of its own for a second reader),
 * on the connection db (reg's, or a second one, whose errors are its own):
 * chunks index, index + stride, ... of `chunk` rows, chunk j being the users
 * from uid from_uid + j * chunk on (INT64_MIN: one chunk, every user). It
 * tells gate (NULL: nobody waits) how far it is every USERS_PUBLISH users
 * and at each chunk's end, as reader `index`; got is how many rows it read.
 */
struct users_reader {
	struct registry *reg;
	sqlite3 *db;
	struct user_table *t, *text;
	size_t n, chunk;
	int index, stride;
	int64_t from_uid;
	struct users_gate *gate;
	size_t got;
	/* a row i whose uid is not i + 1 (users_order_error), if stray */
	int stray;
	size_t stray_row;
	int64_t stray_uid;
};

/* The rows of chunk j: r->chunk, or what the last one has left. */
static size_t chunk_rows(const struct users_reader *r, size_t j)
{
	const size_t first = j * r->chunk;

	return r->n - first < r->chunk ? r->n - first : r->chunk;
}

/*
 * Chunk j's rows (of `done` chunks this reader finished before it) through
 * the statement st, bound and stepped here; how many came. *rc is SQLite's
 * last answer: SQLITE_ROW when the chunk ended with rows left, SQLITE_DONE
 * when the table did, else an error.
 */
static size_t read_chunk(struct users_reader *r, sqlite3_stmt *st, size_t j, size_t done,
			 struct shared_text *shared, size_t *used, int *rc)
{
	struct user_table *t = r->t, *x = r->text;
	const size_t first = j * r->chunk, cap = chunk_rows(r, j);
	size_t k = 0;

	*rc = sqlite3_reset(st);
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, 1, r->from_uid == INT64_MIN ? INT64_MIN
							: r->from_uid + (int64_t)first);
	while (*rc == SQLITE_OK || *rc == SQLITE_ROW) {
		const size_t i = first + k;

		if (k == cap || (*rc = sqlite3_step(st)) != SQLITE_ROW)
			break;
		t->uid[i] = sqlite3_column_int64(st, 0);
		if (t->uid[i] != (int64_t)i + 1) { /* a damaged table: users_order_error */
			r->stray = 1;
			r->stray_row = i;
			r->stray_uid = t->uid[i];
			*rc = SQLITE_DONE;
			break;
		}
		k++;
		t->user_id[i] = keep_column_text(x, used, st, 1);
		t->app_id[i] = keep_shared_column_text(x, used, &shared[0], st, 2);
		t->campaign[i] = keep_shared_column_text(x, used, &shared[1], st, 3);
		t->install_time[i] = sqlite3_column_int64(st, 4);
		t->cost[i] = column_double_or_nan(st, 5);
		t->attributes_json[i] = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL
					: keep_shared_column_text(x, used, &shared[2], st, 6);
		if (k % USERS_PUBLISH == 0)
			users_gate_publish(r->gate, r->index, done, k, 0);
	}
	return k;
}

/*
 * LTV_EREGISTRY: the users table's row i (0-based, in uid order) has a
 * uid other than i + 1 (r->stray_row, r->stray_uid). Ingest numbers users 1..n without a gap, and every
 * reader puts user uid at row uid - 1 (features' user_age, shard merge's
 * global uids, ingest's known users): a gap or a uid below 1 means the
 * table was damaged or changed by hand, and read on, the users after it
 * would take other users' places.
 */
static int users_order_error(const struct users_reader *r, struct ltv_err *err)
{
	return err_set(err, LTV_EREGISTRY, "registry '%s': table users holds uid %lld where uid "
		       "%zu was expected (ltvpipe numbers users 1 to n without a gap); the registry "
		       "is damaged or was changed by hand: " REINGEST_ADVICE, r->reg->path,
		       (long long)r->stray_uid, r->stray_row + 1);
}

static int users_read_rows(struct users_reader *r, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct shared_text *shared = xcalloc(3, sizeof(*shared)); /* app, campaign, attributes */
	size_t used = 0, done = 0, k = 0;
	int rc = sqlite3_prepare_v2(r->db, "SELECT uid, user_id, app_id, campaign, install_time, cost,"
				    " attributes FROM users WHERE uid >= ?1 ORDER BY uid", -1, &st, NULL);
	const char *what = rc == SQLITE_OK ? "reading users" : "prepare";
	int ret = 0, short_chunk = 0;

	/*
	 * reg's connection is serialized (SQLITE_OPEN_FULLMUTEX): each of the
	 * eight calls a row makes takes and drops its mutex, 16 million
	 * lock operations at 1,000,000 users (a tenth of the features stage's
	 * CPU). Held here, those become the owner's cheap re-entries. (A second
	 * connection has no mutex: NULL, and these do nothing.)
	 */
	sqlite3_mutex_enter(sqlite3_db_mutex(r->db));
	r->got = 0;
	for (size_t j = (size_t)r->index; rc == SQLITE_OK && !short_chunk && j * r->chunk < r->n;
	     j += (size_t)r->stride) {
		k = read_chunk(r, st, j, done, shared, &used, &rc);
		r->got += k;
		short_chunk = k < chunk_rows(r, j);
		if (rc == SQLITE_ROW || (rc == SQLITE_DONE && !short_chunk))
			rc = SQLITE_OK;
		if (!short_chunk)
			users_gate_publish(r->gate, r->index, ++done, 0, 0);
	}
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		ret = err_set(err, sqlite3_errcode(r->db) == SQLITE_BUSY ? LTV_EBUSY : LTV_EREGISTRY,
			      "registry '%s': %s: %s", r->reg->path, what, sqlite3_errmsg(r->db));
	else if (r->stray)
		ret = users_order_error(r, err);
	sqlite3_mutex_leave(sqlite3_db_mutex(r->db));
	sqlite3_finalize(st);
	free(shared);
	if (ret < 0)
		r->got = 0;
	users_gate_publish(r->gate, r->index, ret < 0 ? 0 : done, ret < 0 || !short_chunk ? 0 : k, 1);
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
	{
		struct users_reader r = { .reg = reg, .db = reg->db, .t = &t, .text = &t, .n = cap,
					  .chunk = cap ? cap : 1, .index = 0, .stride = 1,
					  .from_uid = INT64_MIN };

		ret = users_read_rows(&r, err);
		t.n = r.got;
	}
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
	/*
	 * Fresh pages, written once: 36 MB at 1,000,000 users was 9,000 faults
	 * of 4 KB (about 17 us of CPU each on these VMs) on the thread that then
	 * decodes the blocks, the features stage's long pole.
	 */
	data = xmalloc_huge(len ? len : 1);
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

int registry_user_days_bound(struct registry *reg, size_t *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT (SELECT COALESCE(SUM(n_rows), 0) FROM user_day_blocks)"
			       " + (SELECT COUNT(*) FROM user_days)", &st, err);

	*out = 0;
	if (ret < 0)
		return ret;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = (size_t)sqlite3_column_int64(st, 0);
	else
		ret = SQL_FAIL(reg, err, "counting user-days");
	sqlite3_finalize(st);
	return ret;
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
 * The tables user-days are read from, for a message: user_day_blocks, and
 * user_days when it holds rows (legacy_user_days). Asked on reg's
 * connection, only on the way to an error.
 */
static const char *day_tables(struct registry *reg)
{
	sqlite3_stmt *st = NULL;
	int legacy = 0;

	if (sqlite3_prepare_v2(reg->db, "SELECT EXISTS (SELECT 1 FROM user_days)", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		legacy = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return legacy ? "user_day_blocks or user_days" : "user_day_blocks";
}

int registry_day_of_no_user(struct registry *reg, int64_t uid, int64_t day, size_t n_users,
			    struct ltv_err *err)
{
	return err_set(err, LTV_EREGISTRY, "registry '%s': table %s holds a user-day of uid %lld "
		       "(day %lld) but table users has %zu users, uids 1 to %zu; the registry is "
		       "inconsistent: " REINGEST_ADVICE, reg->path, day_tables(reg), (long long)uid,
		       (long long)day, n_users, n_users);
}

/*
 * The users' reading gave fewer users than counted with no error of its
 * own: the table changed between the count and the read. A run's stages
 * hold the run lock and a read-only command reads one snapshot, so only a
 * writer that ignores the lock does that.
 */
static int users_short_error(struct registry *reg, size_t got, size_t n, struct ltv_err *err)
{
	return err_set(err, LTV_EREGISTRY, "registry '%s': table users gave %zu of its %zu users "
		       "while they were read: another process changed it meanwhile; run again once "
		       "it is done", reg->path, got, n);
}

/*
 * A user_day_fn passing on the user-days of users already read
 * (users_gate_wait); known is the count last seen, so most rows take no lock.
 * A uid past the count after the wait is never dropped: the wait returns
 * early only once no more users will come (users_gate_over), so either the
 * reading ended short of the count (a reader's error, returned instead of
 * this one, or users_short_error) or, every user read, the day is of no
 * user. Ingest and merge write a user's days with the user in one
 * transaction, so that registry is damaged or was written by hand, and its
 * features would silently lack those days.
 */
struct gated_days {
	struct registry *reg;
	struct users_gate *gate;
	size_t known;
	user_day_fn fn;
	void *ctx;
	struct ltv_err *err;
};

static int day_of_no_user(const struct gated_days *g, int64_t uid, int64_t day)
{
	if (uid >= 1 && g->known < g->gate->n)
		return users_short_error(g->reg, g->known, g->gate->n, g->err);
	return registry_day_of_no_user(g->reg, uid, day, g->gate->n, g->err);
}

static int gated_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
		     int64_t purchases)
{
	struct gated_days *g = opaque;

	if (uid >= 1 && (uint64_t)uid > g->known)
		g->known = users_gate_wait(g->gate, (size_t)uid, USERS_AHEAD);
	if (uid < 1 || (uint64_t)uid > g->known)
		return day_of_no_user(g, uid, day);
	return g->fn(g->ctx, uid, day, revenue, events, purchases);
}

/* A users' reading thread: its own error, not the caller's, which the user-days may set. */
struct users_job {
	struct users_reader r;
	struct ltv_err err;
	int ret;
};

static void *users_job_main(void *arg)
{
	struct users_job *j = arg;

	j->ret = users_read_rows(&j->r, &j->err);
	return NULL;
}

/*
 * Users from which the table is read by two threads, each on a read-only
 * connection of its own (read_connection), in chunks of USERS_CHUNK users
 * taken in turn: the users in without a gap, which the user-days' decoder
 * waits for, then come at both threads' pace. SQLite's stepping and column
 * calls were three quarters of the one users' thread (the rest its fresh
 * pages, now users_populate_start's), the features stage's long pole, and a
 * connection steps one statement at a time; a connection of its own also
 * takes no mutex per call, as reg's serialized one does.
 */
#define USERS_SPLIT_MIN ((size_t)100000)
#define USERS_CHUNK ((size_t)65536)

/*
 * A read-only connection to reg's file, without a mutex (one thread uses
 * it), or NULL: fewer than USERS_SPLIT_MIN users, a registry in memory, or
 * uids that are not 1..n as the connection sees them (so that chunk j is
 * the users from uid j * USERS_CHUNK + 1 on, and it sees reg's n users).
 */
static sqlite3 *read_connection(struct registry *reg, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int same = 0;

	if (n < USERS_SPLIT_MIN || !reg->path || strcmp(reg->path, ":memory:") == 0 ||
	    strncmp(reg->path, "file:", 5) == 0)
		return NULL;
	if (sqlite3_open_v2(reg->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
		    SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT (SELECT MIN(uid) FROM users), (SELECT MAX(uid) FROM users)",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		same = sqlite3_column_int64(st, 0) == 1 && sqlite3_column_int64(st, 1) == (int64_t)n;
	sqlite3_finalize(st);
	if (!same) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/*
 * The users' seven columns (56 MB at 1,000,000 users) faulted in on a
 * thread of their own while the users' thread fills them row by row: the
 * kernel's zeroing of their fresh pages was a quarter of that thread's
 * time (0.15 of 0.68 s), and it is the read's long pole, while the caller
 * decoding the user-days mostly waits for it (populate_start, common.h).
 * Pinned: registry_users_and_days stops it before the columns may be freed,
 * on every path, and nothing moves them meanwhile.
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
	populate_start_pinned(pp);
}

/* Appends the text blocks of from (a second reader's) to t's, which then owns them. */
static void text_blocks_take(struct user_table *t, struct user_table *from)
{
	if (!from->n_text_blocks)
		return;
	t->text_blocks = xrealloc(t->text_blocks,
				  (t->n_text_blocks + from->n_text_blocks) * sizeof(char *));
	memcpy(t->text_blocks + t->n_text_blocks, from->text_blocks,
	       from->n_text_blocks * sizeof(char *));
	t->n_text_blocks += from->n_text_blocks;
	free(from->text_blocks);
	from->text_blocks = NULL;
	from->n_text_blocks = 0;
}

/*
 * The users' readers on threads of their own (started[k]), or, with one
 * thread or none to be had, reader k on the caller's: the users first, then
 * the days find them all read.
 */
static void users_readers_start(struct users_job *job, int readers, int threads,
				pthread_t *thread, int *started)
{
	for (int k = 0; k < readers; k++) {
		started[k] = threads > 1 && pthread_create(&thread[k], NULL, users_job_main, &job[k]) == 0;
		if (!started[k])
			users_job_main(&job[k]);
	}
}

/*
 * Everything SQLite does on reg's connection happens first on the caller's
 * thread (the count, the blocks' bytes) or under the connection's mutex on
 * the users' thread, so the decoding here never waits on SQLite, only on
 * users not read yet. With many users two threads read them instead, on
 * connections of their own (USERS_SPLIT_MIN), and the table's fresh columns
 * are faulted in beside them.
 */
int registry_users_and_days(struct registry *reg, int threads, struct user_table *users,
			    user_day_fn fn, void *ctx, struct ltv_err *err)
{
	struct users_gate gate;
	struct user_table text[2] = { { 0 }, { 0 } }; /* the readers' strings, then users' */
	struct users_job job[2];
	struct gated_days gated = { reg, &gate, 0, fn, ctx, err };
	struct day_sources s = { 0 };
	struct populate fresh;
	pthread_t thread[2];
	sqlite3 *db[2] = { NULL, NULL };
	size_t n = 0;
	int ret = users_count(reg, &n, err), started[2] = { 0, 0 };

	memset(users, 0, sizeof(*users));
	memset(job, 0, sizeof(job));
	populate_init(&fresh);
	if (ret < 0)
		return ret;
	user_table_alloc(users, n);
	if (threads > 1) {
		users_populate_start(users, n, &fresh);
		/*
		 * Not inside registry_read_begin's snapshot: the readers' connections
		 * would see later commits (a rebuild's renumbered users) beside this
		 * connection's user-days. A run holds the run lock, so no writer
		 * changes users while its stages read them.
		 */
		db[0] = reg->in_read ? NULL : read_connection(reg, n);
		db[1] = db[0] ? read_connection(reg, n) : NULL;
	}
	if (db[1]) { /* chunks in turn on two connections of their own, the even ones and the odd */
		users_gate_init(&gate, n, USERS_CHUNK, 2);
		for (int k = 0; k < 2; k++)
			job[k].r = (struct users_reader){ .reg = reg, .db = db[k], .t = users,
							  .text = &text[k], .n = n,
							  .chunk = USERS_CHUNK, .index = k,
							  .stride = 2, .from_uid = 1,
							  .gate = &gate };
	} else { /* one chunk of every user on reg's connection */
		users_gate_init(&gate, n, n ? n : 1, 1);
		job[0].r = (struct users_reader){ .reg = reg, .db = reg->db, .t = users,
						  .text = users, .n = n, .chunk = n ? n : 1,
						  .index = 0, .stride = 1, .from_uid = INT64_MIN,
						  .gate = &gate };
	}
	/*
	 * Readers on connections of their own start before the blocks are read
	 * on reg's (0.1-0.15 s at 1,000,000 users with one core idle); one on
	 * reg's connection after, as it holds the connection's mutex.
	 */
	if (db[1])
		users_readers_start(job, gate.readers, threads, thread, started);
	ret = load_blocks(reg, &s, err);
	if (ret == 0)
		ret = legacy_user_days(reg, &s, err);
	if (ret == 0 && !db[1])
		users_readers_start(job, gate.readers, threads, thread, started);
	if (ret == 0)
		ret = merge_sources(&s, gated_day, &gated, err);
	for (int k = 0; k < gate.readers; k++)
		if (started[k])
			pthread_join(thread[k], NULL);
	for (int k = 0; k < 2; k++)
		text_blocks_take(users, &text[k]);
	users->n = users_gate_ready(&gate);
	if (ret == 0 && users->n < n)
		ret = users_short_error(reg, users->n, n, err);
	/* A users' failure comes first, as when the users were read before the days. */
	for (int k = gate.readers - 1; k >= 0; k--)
		if (job[k].ret < 0) {
			*err = job[k].err;
			ret = job[k].ret;
		}
	populate_stop(&fresh); /* before the columns may be freed */
	users_gate_release(&gate);
	sqlite3_close(db[0]);
	sqlite3_close(db[1]);
	sources_release(&s);
	if (ret < 0)
		user_table_release(users);
	return ret;
}
