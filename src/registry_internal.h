/*
 * What the files of the registry module (src/registry*.c) share and nobody
 * else may see: the connection struct, the macro that turns a SQLite failure
 * into an ltv_err, and the statement helpers. Together with those files it is
 * the only place that includes <sqlite3.h>; the rest of ltvpipe goes through
 * include/ltv/registry.h. The one-line helpers are static inline so that the
 * library exports no generic names such as prepare(); the larger shared
 * functions live in src/registry.c and carry a reg_ prefix for the same reason.
 */
#ifndef LTV_REGISTRY_INTERNAL_H
#define LTV_REGISTRY_INTERNAL_H

#include <math.h>
#include <stdio.h>
#include <time.h>

#include <sqlite3.h>

#include "ltv/registry.h"

struct registry {
	sqlite3 *db;
	char *path;
	int lock_fd;
	int in_txn;
	int in_read; /* inside registry_read_begin */
	int stamp_ok; /* the run lock found the file sound: its release records the file's stamp */
	int unchanged; /* and as the last run holding the lock left it (the stamp matched) */
	int wal_left; /* registry_leave_wal_at_close: the close syncs the WAL and copies nothing */
	/* The ingest inserts run once per row, so they are prepared once per connection. */
	sqlite3_stmt *user_insert;
	sqlite3_stmt *users_insert; /* USER_BATCH users a statement (registry_users_insert) */
};

/*
 * SQLite's allocator (src/registry_mem.c): glibc's with the huge-page hint on
 * blocks of megabytes; registry_mem_configure installs it, before SQLite's
 * first use. registry_mem_lend gives b's pages (b is emptied) to SQLite's
 * next allocation of a MB or more that fits in them, unmapped when SQLite
 * frees it; registry_mem_unlend unmaps them if none took them.
 */
struct mapped_block;
void registry_mem_configure(void);
void registry_mem_lend(struct mapped_block *b);
void registry_mem_unlend(void);

/* Converts a failing SQLite call into err, keeping SQLite's own text. */
#define SQL_FAIL(reg, err, what)                                                        \
	err_set((err), sqlite3_errcode((reg)->db) == SQLITE_BUSY ? LTV_EBUSY : LTV_EREGISTRY, \
		"registry '%s': %s: %s", (reg)->path, (what), sqlite3_errmsg((reg)->db))

/* SQL_FAIL for a call in a function with `int ret` and an `out:` label. */
#define SQL_TRY(reg, err, call, what)                       \
	do {                                                \
		int rc_ = (call);                           \
		if (rc_ != SQLITE_OK && rc_ != SQLITE_DONE && rc_ != SQLITE_ROW) { \
			ret = SQL_FAIL(reg, err, what);     \
			goto out;                           \
		}                                           \
	} while (0)

/* The columns reg_fetch_artefact reads, in its order. */
#define ARTEFACT_COLUMNS \
	"id, name, version, run_id, fingerprint, content_hash, code_version, created_at," \
	" as_of, config, metrics, timings"

/* The registry's timestamps: UTC, ISO 8601, to the second. */
static inline void utc_now(char buf[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Runs SQL without results (pragmas, transactions, migrations) through sqlite3_exec. */
static inline int exec_sql(struct registry *reg, const char *sql, struct ltv_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(reg->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_errcode(reg->db) == SQLITE_BUSY ? LTV_EBUSY : LTV_EREGISTRY;

		err_set(err, code, "registry '%s': %s", reg->path, msg ? msg : "unknown error");
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

static inline int prepare(struct registry *reg, const char *sql, sqlite3_stmt **out_st,
			  struct ltv_err *err)
{
	if (sqlite3_prepare_v2(reg->db, sql, -1, out_st, NULL) != SQLITE_OK)
		return SQL_FAIL(reg, err, "prepare");
	return 0;
}

/* Steps a statement that returns no rows; what names it in the message. */
static inline int step_done(struct registry *reg, sqlite3_stmt *st, const char *what,
			    struct ltv_err *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return SQL_FAIL(reg, err, what);
	return 0;
}

/* Binds a copy of s, or NULL when s is NULL. */
static inline void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* NaN is stored as NULL, so people querying the file see "no value", not a number. */
static inline void bind_double_or_null(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static inline double column_double_or_nan(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* Copies a text column into a fixed buffer, truncating; NULL reads as "". */
static inline void copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", s ? s : "");
}

/* A new copy of a text column (caller frees); NULL reads as "". */
static inline char *dup_col(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return xstrdup(s ? s : "");
}

/*
 * Steps st, a one-row query over ARTEFACT_COLUMNS whose parameters are bound,
 * into out (caller releases). No row is LTV_ENOTFOUND, with what naming the
 * artefact sought ("'tiers' v3"). The caller still finalizes st.
 */
int reg_fetch_artefact(struct registry *reg, sqlite3_stmt *st, const char *what,
		       struct artefact_info *out, struct ltv_err *err);

/*
 * Inserts the pairs (id, others[i]) with sql, an INSERT of two parameters
 * (lineage, a model version's artefacts); stops at the first failure.
 */
int reg_insert_links(struct registry *reg, const char *sql, int64_t id, const int64_t *others,
		     size_t n, const char *what, struct ltv_err *err);

/*
 * How reg_load_rows turns result rows into an array of one C type: size is
 * that of an element, read fills a zeroed element from the current row, and
 * release (NULL when read allocates nothing) frees what read put into one.
 */
struct row_reader {
	size_t size;
	void (*read)(sqlite3_stmt *st, void *elem);
	void (*release)(void *elem);
};

/*
 * Runs sql, binding param to its parameter when it has one, and returns every
 * row as a new array in *out_rows (NULL when there are none; free it with
 * reg_free_rows) and its length in *out_n. On failure *out_rows is NULL and
 * *out_n 0, nothing is left allocated, and what names the read in the message.
 */
int reg_load_rows(struct registry *reg, const char *sql, int64_t param,
		  const struct row_reader *reader, const char *what, void **out_rows,
		  size_t *out_n, struct ltv_err *err);

/* Releases each of the n elements of rows with reader->release, then the array; NULL is fine. */
void reg_free_rows(void *rows, size_t n, const struct row_reader *reader);

#endif
