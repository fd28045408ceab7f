/*
 * SQLite-backed registry (see include/ltv/registry.h for the contract). SQL is
 * always prepared and bound, never built from data. Hot statements (the ingest
 * inserts) are prepared once per connection and reset between rows.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ltv/registry.h"

struct registry {
	sqlite3 *db;
	char *path;
	int lock_fd;
	int in_txn;
	sqlite3_stmt *user_insert;
	sqlite3_stmt *user_day_add;
};

/* Converts a failing SQLite call into err, keeping SQLite's own text. */
#define SQL_FAIL(reg, err, what)                                                        \
	err_set((err), sqlite3_errcode((reg)->db) == SQLITE_BUSY ? LTV_EBUSY : LTV_EREGISTRY, \
		"registry '%s': %s: %s", (reg)->path, (what), sqlite3_errmsg((reg)->db))

#define SQL_TRY(reg, err, call, what)                       \
	do {                                                \
		int rc_ = (call);                           \
		if (rc_ != SQLITE_OK && rc_ != SQLITE_DONE && rc_ != SQLITE_ROW) { \
			ret = SQL_FAIL(reg, err, what);     \
			goto out;                           \
		}                                           \
	} while (0)

/*
 * Schema migrations, applied in order up to REGISTRY_SCHEMA_VERSION; entry i
 * takes user_version i to i+1. Never edit a released entry: append a new one.
 */
static const char *const migrations[] = {
	/* 0 → 1: runs, artefacts with lineage and blobs, ingested data */
	"CREATE TABLE runs ("
	"  run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,"
	"  status TEXT NOT NULL, command TEXT NOT NULL, as_of INTEGER,"
	"  config TEXT NOT NULL, ltvpipe_version TEXT NOT NULL);"
	"CREATE TABLE artefacts ("
	"  id INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL,"
	"  run_id TEXT NOT NULL REFERENCES runs(run_id), fingerprint TEXT NOT NULL,"
	"  content_hash TEXT NOT NULL DEFAULT '', code_version TEXT NOT NULL,"
	"  config TEXT NOT NULL, as_of INTEGER, metrics TEXT NOT NULL DEFAULT '{}',"
	"  timings TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,"
	"  UNIQUE (name, version));"
	"CREATE INDEX artefacts_by_fingerprint ON artefacts(name, fingerprint);"
	"CREATE TABLE lineage ("
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id),"
	"  input_id INTEGER NOT NULL REFERENCES artefacts(id),"
	"  PRIMARY KEY (artefact_id, input_id)) WITHOUT ROWID;"
	"CREATE TABLE artefact_blobs ("
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id), key TEXT NOT NULL,"
	"  data BLOB NOT NULL, PRIMARY KEY (artefact_id, key));"
	"CREATE TABLE current_artefacts ("
	"  name TEXT PRIMARY KEY, artefact_id INTEGER NOT NULL REFERENCES artefacts(id),"
	"  updated_at TEXT NOT NULL);"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE ingested_files ("
	"  content_hash TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL,"
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id), rows INTEGER NOT NULL,"
	"  rejects INTEGER NOT NULL);"
	"CREATE TABLE users ("
	"  uid INTEGER PRIMARY KEY, user_id TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL,"
	"  campaign TEXT NOT NULL, install_time INTEGER NOT NULL, cost REAL,"
	"  attributes TEXT, artefact_id INTEGER NOT NULL REFERENCES artefacts(id));"
	"CREATE TABLE user_days ("
	"  uid INTEGER NOT NULL REFERENCES users(uid), day INTEGER NOT NULL,"
	"  revenue REAL NOT NULL, events INTEGER NOT NULL, purchases INTEGER NOT NULL,"
	"  PRIMARY KEY (uid, day)) WITHOUT ROWID;",
	/* 1 → 2: campaign tiers, one row per (app, campaign) per tiers artefact */
	"CREATE TABLE campaign_tiers ("
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id), app_id TEXT NOT NULL,"
	"  campaign TEXT NOT NULL, tier INTEGER NOT NULL CHECK (tier BETWEEN 1 AND 3),"
	"  mature_users INTEGER NOT NULL, validation_users INTEGER NOT NULL,"
	"  payers INTEGER NOT NULL, revenue REAL NOT NULL, mean_ltv REAL,"
	"  history_days INTEGER NOT NULL, PRIMARY KEY (artefact_id, app_id, campaign));",
	/* 2 → 3: method selection, calibration, model versions and aliases */
	"CREATE TABLE method_selection ("
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id), app_id TEXT NOT NULL,"
	"  campaign TEXT NOT NULL, tier INTEGER NOT NULL, method TEXT NOT NULL,"
	"  selected INTEGER NOT NULL, source TEXT NOT NULL, n_validation INTEGER NOT NULL,"
	"  ape REAL, rmsle REAL, PRIMARY KEY (artefact_id, app_id, campaign, tier, method));"
	"CREATE TABLE calibration ("
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id), tier INTEGER NOT NULL,"
	"  horizon INTEGER NOT NULL, kind TEXT NOT NULL, alpha REAL, anchor REAL,"
	"  n_validation INTEGER NOT NULL, mse_anchor REAL, mse_isotonic REAL,"
	"  PRIMARY KEY (artefact_id, tier, horizon));"
	"CREATE TABLE model_versions ("
	"  version INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(run_id),"
	"  created_at TEXT NOT NULL, validation_error REAL, metrics TEXT NOT NULL DEFAULT '{}');"
	"CREATE TABLE model_version_artefacts ("
	"  model_version INTEGER NOT NULL REFERENCES model_versions(version),"
	"  artefact_id INTEGER NOT NULL REFERENCES artefacts(id),"
	"  PRIMARY KEY (model_version, artefact_id)) WITHOUT ROWID;"
	"CREATE TABLE aliases ("
	"  alias TEXT PRIMARY KEY, model_version INTEGER NOT NULL REFERENCES model_versions(version),"
	"  updated_at TEXT NOT NULL);"
	"CREATE TABLE alias_history ("
	"  id INTEGER PRIMARY KEY, alias TEXT NOT NULL, from_version INTEGER, to_version INTEGER NOT NULL,"
	"  at TEXT NOT NULL, who TEXT NOT NULL, reason TEXT NOT NULL);",
	/* 3 → 4: backtests stored by ltvpipe evaluate, beside the production version of the day */
	"CREATE TABLE evaluations ("
	"  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, created_at TEXT NOT NULL,"
	"  as_of INTEGER NOT NULL, horizons TEXT NOT NULL,"
	"  model_version INTEGER REFERENCES model_versions(version), config_hash TEXT NOT NULL,"
	"  metrics TEXT NOT NULL, report_dir TEXT NOT NULL);"
	"CREATE INDEX evaluations_by_version ON evaluations(model_version);",
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == REGISTRY_SCHEMA_VERSION, "one migration per schema version");

static void utc_now(char buf[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int exec_sql(struct registry *reg, const char *sql, struct ltv_err *err)
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

static int migrate(struct registry *reg, struct ltv_err *err)
{
	int version = registry_schema_version(reg);
	int ret;

	if (version > REGISTRY_SCHEMA_VERSION)
		return err_set(err, LTV_EREGISTRY,
			       "registry '%s' has schema version %d, newer than this ltvpipe (%d); "
			       "upgrade ltvpipe", reg->path, version, REGISTRY_SCHEMA_VERSION);
	while (version < REGISTRY_SCHEMA_VERSION) {
		char pragma[64];

		ret = registry_begin(reg, err);
		if (ret < 0)
			return ret;
		/* Re-read inside the lock: another process may have migrated meanwhile. */
		version = registry_schema_version(reg);
		if (version >= REGISTRY_SCHEMA_VERSION) {
			registry_rollback(reg);
			break;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		ret = exec_sql(reg, migrations[version], err);
		if (ret == 0)
			ret = exec_sql(reg, pragma, err);
		if (ret == 0)
			ret = registry_commit(reg, err);
		if (ret < 0) {
			registry_rollback(reg);
			return err_prefix(err, "migrating schema %d to %d", version, version + 1);
		}
		version++;
	}
	return 0;
}

static int make_parent_dir(const char *path, struct ltv_err *err)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int ret = 0;

	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			mkdir(dir, 0777);
			*p = '/';
		}
		if (mkdir(dir, 0777) != 0 && errno != EEXIST)
			ret = err_set(err, LTV_EIO, "cannot create directory '%s': %s", dir,
				      strerror(errno));
	}
	free(dir);
	return ret;
}

static int open_common(const char *path, int flags, int busy_timeout_s,
		       struct registry **out_reg, struct ltv_err *err)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	int ret = 0;

	reg->path = xstrdup(path);
	reg->lock_fd = -1;
	if (sqlite3_open_v2(path, &reg->db, flags, NULL) != SQLITE_OK) {
		ret = err_set(err, LTV_EREGISTRY, "cannot open registry '%s': %s", path,
			      reg->db ? sqlite3_errmsg(reg->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(reg->db, busy_timeout_s * 1000);
	sqlite3_extended_result_codes(reg->db, 0);
	ret = exec_sql(reg, "PRAGMA foreign_keys = ON", err);
	if (ret < 0)
		goto out;
	if (flags & SQLITE_OPEN_READWRITE) {
		/* WAL: readers (status, score, serve) never block the writer, and an
		 * interrupted transaction is rolled back from the log on next open. */
		ret = exec_sql(reg, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", err);
		if (ret < 0)
			goto out;
		ret = migrate(reg, err);
	}
out:
	if (ret < 0) {
		registry_close(reg);
		reg = NULL;
	}
	*out_reg = reg;
	return ret;
}

int registry_open(const char *path, int busy_timeout_s, struct registry **out_reg,
		  struct ltv_err *err)
{
	int ret = make_parent_dir(path, err);

	if (ret < 0)
		return ret;
	return open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			   busy_timeout_s, out_reg, err);
}

int registry_open_readonly(const char *path, struct registry **out_reg, struct ltv_err *err)
{
	int ret;

	if (access(path, R_OK) != 0)
		return err_set(err, LTV_ENOTFOUND,
			       "no registry at '%s'; run 'ltvpipe run' first or set registry.path", path);
	ret = open_common(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, 5, out_reg, err);
	if (ret == 0 && registry_schema_version(*out_reg) != REGISTRY_SCHEMA_VERSION) {
		int v = registry_schema_version(*out_reg);

		registry_close(*out_reg);
		*out_reg = NULL;
		return err_set(err, LTV_EREGISTRY,
			       "registry '%s' has schema version %d, this ltvpipe reads %d; "
			       "run 'ltvpipe run' once to migrate it", path, v, REGISTRY_SCHEMA_VERSION);
	}
	return ret;
}

void registry_close(struct registry *reg)
{
	if (!reg)
		return;
	if (reg->in_txn)
		registry_rollback(reg);
	sqlite3_finalize(reg->user_insert);
	sqlite3_finalize(reg->user_day_add);
	sqlite3_close(reg->db);
	registry_unlock_run(reg);
	free(reg->path);
	free(reg);
}

const char *registry_path(const struct registry *reg)
{
	return reg->path;
}

const char *registry_sqlite_version(void)
{
	return sqlite3_libversion();
}

int registry_schema_version(struct registry *reg)
{
	sqlite3_stmt *st = NULL;
	int version = -1;

	if (sqlite3_prepare_v2(reg->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

int registry_lock_run(struct registry *reg, int timeout_s, struct ltv_err *err)
{
	char *lock_path = xasprintf("%s.lock", reg->path);
	double deadline = now_seconds() + timeout_s;
	int announced = 0, ret = 0;

	if (reg->lock_fd >= 0) {
		free(lock_path);
		return 0; /* this handle already holds the run lock */
	}

	reg->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (reg->lock_fd < 0) {
		ret = err_set(err, LTV_EIO, "cannot open lock file '%s': %s", lock_path,
			      strerror(errno));
		goto out;
	}
	while (flock(reg->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			ret = err_set(err, LTV_EIO, "cannot lock '%s': %s", lock_path, strerror(errno));
			goto out;
		}
		if (now_seconds() >= deadline) {
			ret = err_set(err, LTV_EBUSY,
				      "another ltvpipe run holds the registry '%s' (lock '%s'); waited %d s "
				      "(registry.busy_timeout_s) — wait for it to finish or raise the timeout",
				      reg->path, lock_path, timeout_s);
			goto out;
		}
		if (!announced) {
			fprintf(stderr, "ltvpipe: another run holds '%s'; waiting up to %d s\n",
				lock_path, timeout_s);
			announced = 1;
		}
		usleep(100 * 1000);
	}
	/* Holding the lock, any run still marked running was killed: say so. */
	sqlite3_exec(reg->db, "UPDATE runs SET status = 'killed' WHERE status = 'running'",
		     NULL, NULL, NULL);
out:
	if (ret < 0 && reg->lock_fd >= 0) {
		close(reg->lock_fd);
		reg->lock_fd = -1;
	}
	free(lock_path);
	return ret;
}

void registry_unlock_run(struct registry *reg)
{
	if (reg->lock_fd >= 0) {
		flock(reg->lock_fd, LOCK_UN);
		close(reg->lock_fd);
		reg->lock_fd = -1;
	}
}

int registry_begin(struct registry *reg, struct ltv_err *err)
{
	int ret;

	if (reg->in_txn)
		return err_set(err, LTV_EINTERNAL, "registry: nested transaction");
	ret = exec_sql(reg, "BEGIN IMMEDIATE", err);
	if (ret == 0)
		reg->in_txn = 1;
	return ret;
}

int registry_commit(struct registry *reg, struct ltv_err *err)
{
	int ret = exec_sql(reg, "COMMIT", err);

	if (ret == 0)
		reg->in_txn = 0;
	return ret;
}

void registry_rollback(struct registry *reg)
{
	if (reg->in_txn) {
		sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
		reg->in_txn = 0;
	}
}

int registry_integrity_check(struct registry *reg, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;

	SQL_TRY(reg, err, sqlite3_prepare_v2(reg->db, "PRAGMA integrity_check", -1, &st, NULL),
		"integrity_check");
	if (sqlite3_step(st) != SQLITE_ROW) {
		ret = SQL_FAIL(reg, err, "integrity_check");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
		ret = err_set(err, LTV_EREGISTRY, "registry '%s' is damaged: %s", reg->path,
			      (const char *)sqlite3_column_text(st, 0));
out:
	sqlite3_finalize(st);
	return ret;
}

/* ---- small statement helpers ---- */

static int prepare(struct registry *reg, const char *sql, sqlite3_stmt **out_st,
		   struct ltv_err *err)
{
	if (sqlite3_prepare_v2(reg->db, sql, -1, out_st, NULL) != SQLITE_OK)
		return SQL_FAIL(reg, err, "prepare");
	return 0;
}

static int step_done(struct registry *reg, sqlite3_stmt *st, const char *what,
		     struct ltv_err *err)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		return SQL_FAIL(reg, err, what);
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", s ? s : "");
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return xstrdup(s ? s : "");
}

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

#define ARTEFACT_COLUMNS \
	"id, name, version, run_id, fingerprint, content_hash, code_version, created_at," \
	" as_of, config, metrics, timings"

static void read_artefact_row(sqlite3_stmt *st, struct artefact_info *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(st, 0);
	copy_col(st, 1, out->name, sizeof(out->name));
	out->version = sqlite3_column_int64(st, 2);
	copy_col(st, 3, out->run_id, sizeof(out->run_id));
	copy_col(st, 4, out->fingerprint, sizeof(out->fingerprint));
	copy_col(st, 5, out->content_hash, sizeof(out->content_hash));
	copy_col(st, 6, out->code_version, sizeof(out->code_version));
	copy_col(st, 7, out->created_at, sizeof(out->created_at));
	out->as_of = sqlite3_column_type(st, 8) == SQLITE_NULL ? INT64_MIN
							      : sqlite3_column_int64(st, 8);
	out->config = dup_col(st, 9);
	out->metrics = dup_col(st, 10);
	out->timings = dup_col(st, 11);
}

/* Runs a one-row artefact query whose parameters are already bound. */
static int fetch_artefact(struct registry *reg, sqlite3_stmt *st, const char *what,
			  struct artefact_info *out, struct ltv_err *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		read_artefact_row(st, out);
		return 0;
	}
	if (rc == SQLITE_DONE)
		return err_set(err, LTV_ENOTFOUND, "no artefact %s in registry '%s'", what, reg->path);
	return SQL_FAIL(reg, err, what);
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

	ret = prepare(reg, "INSERT OR IGNORE INTO lineage (artefact_id, input_id) VALUES (?, ?)",
		      &st, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < a->n_inputs && ret == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, a->inputs[i]);
		ret = step_done(reg, st, "recording lineage", err);
	}
	sqlite3_finalize(st);
	*out_id = id;
	*out_version = version;
	return ret;
}

int registry_artefact_finish(struct registry *reg, int64_t id, const char *content_hash,
			     const char *metrics_json, const char *timings_json,
			     struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "UPDATE artefacts SET content_hash = ?, metrics = ?, timings = ?"
			       " WHERE id = ?", &st, err);

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
	ret = fetch_artefact(reg, st, what, out, err);
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
	ret = fetch_artefact(reg, st, what, out, err);
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
	ret = fetch_artefact(reg, st, what, out, err);
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
	ret = fetch_artefact(reg, st, what, out, err);
	sqlite3_finalize(st);
	return ret;
}

int registry_lineage(struct registry *reg, int64_t id, int64_t **out_ids, size_t *out_n,
		     struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT input_id FROM lineage WHERE artefact_id = ? ORDER BY input_id",
			  &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ARRAY_GROW(ids, n + 1, cap);
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		free(ids);
		ids = NULL;
		n = 0;
		ret = SQL_FAIL(reg, err, "reading lineage");
	}
	sqlite3_finalize(st);
	*out_ids = ids;
	*out_n = n;
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

int registry_blob_put(struct registry *reg, int64_t artefact_id, const char *key,
		      const void *data, size_t len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "INSERT OR REPLACE INTO artefact_blobs (artefact_id, key, data)"
			       " VALUES (?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, key);
	sqlite3_bind_blob64(st, 3, data ? data : "", (sqlite3_uint64)len, SQLITE_STATIC);
	ret = step_done(reg, st, "storing a blob", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_blob_get(struct registry *reg, int64_t artefact_id, const char *key,
		      void **out_data, size_t *out_len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT data FROM artefact_blobs WHERE artefact_id = ? AND key = ?",
			  &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(st, 0);
		void *data = xmalloc(len);

		/* Copy: SQLite's pointer is only valid until the next step/finalize. */
		if (len)
			memcpy(data, sqlite3_column_blob(st, 0), len);
		*out_data = data;
		*out_len = len;
	} else if (rc == SQLITE_DONE) {
		ret = err_set(err, LTV_ENOTFOUND, "artefact %lld has no blob '%s'",
			      (long long)artefact_id, key);
	} else {
		ret = SQL_FAIL(reg, err, "reading a blob");
	}
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

/* ---- ingested data ---- */

int registry_file_ingested(struct registry *reg, const char *content_hash, struct ltv_err *err)
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

int registry_file_record(struct registry *reg, const char *content_hash, const char *kind,
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

int registry_file_hash_for_path(struct registry *reg, const char *kind, const char *path,
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

int registry_ingested_hashes(struct registry *reg, char ***out_hashes, size_t *out_n,
			     struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT content_hash FROM ingested_files ORDER BY content_hash", &st,
			  err);
	int rc;

	if (ret < 0)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ARRAY_GROW(v, n + 1, cap);
		v[n++] = dup_col(st, 0);
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "listing ingested files");
	sqlite3_finalize(st);
	*out_hashes = v;
	*out_n = n;
	return ret;
}

int registry_data_clear(struct registry *reg, struct ltv_err *err)
{
	return exec_sql(reg, "DELETE FROM user_days; DELETE FROM users; DELETE FROM ingested_files;"
			     " DELETE FROM meta WHERE key = 'max_event_time';", err);
}

int registry_user_insert(struct registry *reg, const struct user_row *u, int64_t artefact_id,
			 struct ltv_err *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (!reg->user_insert) {
		ret = prepare(reg, "INSERT INTO users (uid, user_id, app_id, campaign, install_time,"
				   " cost, attributes, artefact_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			      &reg->user_insert, err);
		if (ret < 0)
			return ret;
	}
	st = reg->user_insert;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, u->uid);
	sqlite3_bind_text(st, 2, u->user_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, u->app_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, u->campaign, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, u->install_time);
	if (isnan(u->cost))
		sqlite3_bind_null(st, 6);
	else
		sqlite3_bind_double(st, 6, u->cost);
	bind_text(st, 7, u->attributes_json);
	sqlite3_bind_int64(st, 8, artefact_id);
	ret = step_done(reg, st, "inserting a user", err);
	sqlite3_clear_bindings(st);
	return ret;
}

int registry_user_day_add(struct registry *reg, int64_t uid, int64_t day, double revenue,
			  int64_t events, int64_t purchases, struct ltv_err *err)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (!reg->user_day_add) {
		ret = prepare(reg, "INSERT INTO user_days (uid, day, revenue, events, purchases)"
				   " VALUES (?, ?, ?, ?, ?) ON CONFLICT(uid, day) DO UPDATE SET"
				   " revenue = revenue + excluded.revenue,"
				   " events = events + excluded.events,"
				   " purchases = purchases + excluded.purchases",
			      &reg->user_day_add, err);
		if (ret < 0)
			return ret;
	}
	st = reg->user_day_add;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, day);
	sqlite3_bind_double(st, 3, revenue);
	sqlite3_bind_int64(st, 4, events);
	sqlite3_bind_int64(st, 5, purchases);
	return step_done(reg, st, "adding a user-day", err);
}

void user_table_release(struct user_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->user_id[i]);
		free(t->app_id[i]);
		free(t->campaign[i]);
		free(t->attributes_json[i]);
	}
	free(t->uid);
	free(t->user_id);
	free(t->app_id);
	free(t->campaign);
	free(t->install_time);
	free(t->cost);
	free(t->attributes_json);
	memset(t, 0, sizeof(*t));
}

int registry_users_load(struct registry *reg, struct user_table *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct user_table t = { 0 };
	size_t cap = 0;
	int ret = 0, rc;
	int64_t count = 0;

	ret = prepare(reg, "SELECT COUNT(*) FROM users", &st, err);
	if (ret < 0)
		return ret;
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	cap = (size_t)count;
	t.uid = xmalloc((cap ? cap : 1) * sizeof(*t.uid));
	t.user_id = xcalloc(cap ? cap : 1, sizeof(char *));
	t.app_id = xcalloc(cap ? cap : 1, sizeof(char *));
	t.campaign = xcalloc(cap ? cap : 1, sizeof(char *));
	t.install_time = xmalloc((cap ? cap : 1) * sizeof(int64_t));
	t.cost = xmalloc((cap ? cap : 1) * sizeof(double));
	t.attributes_json = xcalloc(cap ? cap : 1, sizeof(char *));

	ret = prepare(reg, "SELECT uid, user_id, app_id, campaign, install_time, cost, attributes"
			   " FROM users ORDER BY uid", &st, err);
	if (ret < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && t.n < cap) {
		size_t i = t.n++;

		t.uid[i] = sqlite3_column_int64(st, 0);
		t.user_id[i] = dup_col(st, 1);
		t.app_id[i] = dup_col(st, 2);
		t.campaign[i] = dup_col(st, 3);
		t.install_time[i] = sqlite3_column_int64(st, 4);
		t.cost[i] = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN
								      : sqlite3_column_double(st, 5);
		t.attributes_json[i] = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL
										 : dup_col(st, 6);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = SQL_FAIL(reg, err, "reading users");
out:
	sqlite3_finalize(st);
	if (ret < 0)
		user_table_release(&t);
	*out = t;
	return ret;
}

int registry_user_days_each(struct registry *reg, user_day_fn fn, void *ctx, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, "SELECT uid, day, revenue, events, purchases FROM user_days"
			       " ORDER BY uid, day", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
			 sqlite3_column_double(st, 2), sqlite3_column_int64(st, 3),
			 sqlite3_column_int64(st, 4));
		if (ret < 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "reading user-days");
out:
	sqlite3_finalize(st);
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
	if (isnan(row->mean_ltv))
		sqlite3_bind_null(st, 9);
	else
		sqlite3_bind_double(st, 9, row->mean_ltv);
	sqlite3_bind_int64(st, 10, row->history_days);
	ret = step_done(reg, st, "inserting a campaign tier", err);
	sqlite3_finalize(st);
	return ret;
}

int registry_campaign_tiers_load(struct registry *reg, int64_t artefact_id,
				 struct campaign_tier_row **out_rows, size_t *out_n,
				 struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct campaign_tier_row *rows = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT app_id, campaign, tier, mature_users, validation_users, payers,"
			       " revenue, mean_ltv, history_days FROM campaign_tiers"
			       " WHERE artefact_id = ? ORDER BY app_id, campaign", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct campaign_tier_row *r;

		ARRAY_GROW(rows, n + 1, cap);
		r = &rows[n++];
		r->app_id = dup_col(st, 0);
		r->campaign = dup_col(st, 1);
		r->tier = sqlite3_column_int(st, 2);
		r->mature_users = sqlite3_column_int64(st, 3);
		r->validation_users = sqlite3_column_int64(st, 4);
		r->payers = sqlite3_column_int64(st, 5);
		r->revenue = sqlite3_column_double(st, 6);
		r->mean_ltv = sqlite3_column_type(st, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 7);
		r->history_days = sqlite3_column_int64(st, 8);
	}
	if (rc != SQLITE_DONE) {
		ret = SQL_FAIL(reg, err, "reading campaign tiers");
		campaign_tiers_free(rows, n);
		rows = NULL;
		n = 0;
	}
	sqlite3_finalize(st);
	*out_rows = rows;
	*out_n = n;
	return ret;
}

void campaign_tiers_free(struct campaign_tier_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].app_id);
		free(rows[i].campaign);
	}
	free(rows);
}

/* ---- method selection ---- */

static void bind_double_or_null(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static double column_double_or_nan(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

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

int registry_selection_load(struct registry *reg, int64_t artefact_id,
			    struct selection_row **out_rows, size_t *out_n, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct selection_row *rows = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT app_id, campaign, tier, method, source, n_validation, ape, rmsle"
			       " FROM method_selection WHERE artefact_id = ? AND selected = 1"
			       " ORDER BY tier, app_id, campaign", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct selection_row *r;

		ARRAY_GROW(rows, n + 1, cap);
		r = &rows[n++];
		r->app_id = dup_col(st, 0);
		r->campaign = dup_col(st, 1);
		r->tier = sqlite3_column_int(st, 2);
		r->method = dup_col(st, 3);
		r->source = dup_col(st, 4);
		r->selected = 1;
		r->n_validation = sqlite3_column_int64(st, 5);
		r->ape = column_double_or_nan(st, 6);
		r->rmsle = column_double_or_nan(st, 7);
	}
	if (rc != SQLITE_DONE) {
		ret = SQL_FAIL(reg, err, "reading method selection");
		selection_rows_free(rows, n);
		rows = NULL;
		n = 0;
	}
	sqlite3_finalize(st);
	*out_rows = rows;
	*out_n = n;
	return ret;
}

void selection_rows_free(struct selection_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].app_id);
		free(rows[i].campaign);
		free(rows[i].method);
		free(rows[i].source);
	}
	free(rows);
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
	ret = prepare(reg, "INSERT OR IGNORE INTO model_version_artefacts (model_version, artefact_id)"
			   " VALUES (?, ?)", &st, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n && ret == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, version);
		sqlite3_bind_int64(st, 2, artefact_ids[i]);
		ret = step_done(reg, st, "recording a model version's artefacts", err);
	}
	sqlite3_finalize(st);
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
	ret = fetch_artefact(reg, st, what, out, err);
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

int registry_alias_set(struct registry *reg, const char *alias, int64_t version,
		       const char *who, const char *reason, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t from = 0;
	int have_from, ret;
	char now[32];
	struct ltv_err ignored;

	have_from = registry_alias_get(reg, alias, &from, &ignored) == 0;
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

int registry_report(struct registry *reg, const char *report, int64_t param,
		    registry_row_fn fn, void *ctx, struct ltv_err *err)
{
	static const struct { const char *name; const char *sql; } reports[] = {
		{ "model_versions",
		  "SELECT v.version, v.created_at, v.run_id, CASE WHEN v.validation_error IS NULL"
		  " THEN 'n/a' ELSE printf('%.4f', v.validation_error) END AS validation_wape, COALESCE((SELECT group_concat(alias, ',') FROM aliases a WHERE"
		  " a.model_version = v.version), '') AS aliases FROM model_versions v ORDER BY v.version" },
		{ "alias_history",
		  "SELECT at, alias, COALESCE(from_version, '-') AS from_version, to_version, who, reason"
		  " FROM alias_history ORDER BY id" },
		{ "version_artefacts",
		  "SELECT a.name, a.version, a.created_at, a.metrics FROM artefacts a JOIN"
		  " model_version_artefacts m ON m.artefact_id = a.id WHERE m.model_version = ?1"
		  " ORDER BY a.id" },
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
	if (sqlite3_bind_parameter_count(st) > 0)
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

/* ---- evaluations ---- */

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

int registry_evaluations_load(struct registry *reg, int64_t model_version,
			      struct evaluation_row **out_rows, size_t *out_n, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	struct evaluation_row *rows = NULL;
	size_t n = 0, cap = 0;
	int ret = prepare(reg, "SELECT id, run_id, created_at, as_of, horizons, model_version,"
			       " config_hash, metrics, report_dir FROM evaluations"
			       " WHERE model_version = ? ORDER BY id", &st, err);
	int rc;

	*out_rows = NULL;
	*out_n = 0;
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, model_version);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct evaluation_row *r;

		ARRAY_GROW(rows, n + 1, cap);
		r = &rows[n++];
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
	if (rc != SQLITE_DONE) {
		ret = SQL_FAIL(reg, err, "reading evaluations");
		evaluation_rows_free(rows, n);
		rows = NULL;
		n = 0;
	}
	sqlite3_finalize(st);
	*out_rows = rows;
	*out_n = n;
	return ret;
}

void evaluation_rows_free(struct evaluation_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].run_id);
		free(rows[i].created_at);
		free(rows[i].horizons);
		free(rows[i].config_hash);
		free(rows[i].metrics);
		free(rows[i].report_dir);
	}
	free(rows);
}
