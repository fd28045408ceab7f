/*
 * The registry's core (see include/ltv/registry.h for the contract): opening
 * and migrating the SQLite file, the run lock, transactions, the integrity
 * check, runs, artefacts with their lineage and blobs, and key/value metadata,
 * plus the statement helpers the other registry files share (declared in
 * src/registry_internal.h). The ingested data lives in src/registry_data.c and
 * the model versions in src/registry_versions.c. SQL is always prepared and
 * bound, never built from data.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/log.h"
#include "registry_internal.h"

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
	/* 4 → 5: a checksum per blob and a blob count per artefact, so that a run
	 * that skips a stage can tell its stored output is still whole (NULL for
	 * what older versions wrote: not checked) */
	"ALTER TABLE artefact_blobs ADD COLUMN checksum TEXT;"
	"ALTER TABLE artefacts ADD COLUMN n_blobs INTEGER;",
	/* 5 → 6: drift reports stored by ltvpipe monitor */
	"CREATE TABLE monitor_reports ("
	"  id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,"
	"  model_version INTEGER NOT NULL REFERENCES model_versions(version),"
	"  as_of INTEGER NOT NULL, window_days INTEGER NOT NULL,"
	"  status TEXT NOT NULL CHECK (status IN ('ok', 'warn', 'alert')),"
	"  max_psi REAL, report TEXT NOT NULL);"
	"CREATE INDEX monitor_reports_by_version ON monitor_reports(model_version);",
	/* 6 → 7: A/B experiments between model versions and their logged predictions */
	"CREATE TABLE experiments ("
	"  name TEXT PRIMARY KEY, control INTEGER NOT NULL REFERENCES model_versions(version),"
	"  candidate INTEGER NOT NULL REFERENCES model_versions(version),"
	"  share REAL NOT NULL CHECK (share > 0 AND share < 1),"
	"  log_rate REAL NOT NULL CHECK (log_rate > 0 AND log_rate <= 1),"
	"  horizon INTEGER NOT NULL, min_users INTEGER NOT NULL, salt TEXT NOT NULL,"
	"  started_at TEXT NOT NULL, stopped_at TEXT);"
	"CREATE TABLE experiment_predictions ("
	"  experiment TEXT NOT NULL REFERENCES experiments(name), user_id TEXT NOT NULL,"
	"  arm TEXT NOT NULL CHECK (arm IN ('control', 'candidate')),"
	"  model_version INTEGER NOT NULL, at TEXT NOT NULL, as_of INTEGER NOT NULL,"
	"  age_days REAL NOT NULL, ltv REAL NOT NULL, predictions TEXT NOT NULL,"
	"  PRIMARY KEY (experiment, user_id)) WITHOUT ROWID;",
	/* 7 → 8: user-days as columnar blocks (include/ltv/user_day_block.h); the
	 * user_days table keeps what older versions wrote, and readers merge both */
	"CREATE TABLE user_day_blocks ("
	"  id INTEGER PRIMARY KEY, uid_min INTEGER NOT NULL, uid_max INTEGER NOT NULL,"
	"  n_rows INTEGER NOT NULL, data BLOB NOT NULL);",
	/* 8 → 9: every ltvpipe score, so an output file can be traced to what made it */
	"CREATE TABLE scores ("
	"  id INTEGER PRIMARY KEY, scored_at TEXT NOT NULL,"
	"  model_version INTEGER NOT NULL REFERENCES model_versions(version),"
	"  as_of INTEGER NOT NULL, users INTEGER NOT NULL, input TEXT,"
	"  output TEXT NOT NULL, content_hash TEXT NOT NULL);",
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == REGISTRY_SCHEMA_VERSION, "one migration per schema version");

/*
 * Reads PRAGMA user_version into *out. A file SQLite cannot read (not a
 * database, truncated, malformed) fails here with SQLite's own reason, so it
 * is never mistaken for an old schema.
 */
static int read_schema_version(struct registry *reg, int *out, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;

	if (sqlite3_prepare_v2(reg->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = err_set(err, LTV_EREGISTRY,
			      "cannot read registry '%s': %s; restore it from a backup, or move it "
			      "away and run 'ltvpipe run' to start a new one", reg->path,
			      sqlite3_errmsg(reg->db));
		goto out;
	}
	*out = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return ret;
}

/*
 * 0 when version is one this ltvpipe can migrate from (0 .. current), else the
 * reason. A negative version indexes no migration: it was never written by
 * ltvpipe, and migrating would read outside the table.
 */
static int check_schema_version(const struct registry *reg, int version, struct ltv_err *err)
{
	if (version < 0)
		return err_set(err, LTV_EREGISTRY,
			       "registry '%s' has an invalid schema version %d (PRAGMA user_version); "
			       "it was not written by ltvpipe: restore it from a backup or move it away",
			       reg->path, version);
	if (version > REGISTRY_SCHEMA_VERSION)
		return err_set(err, LTV_EREGISTRY,
			       "registry '%s' has schema version %d, newer than this ltvpipe (%d); "
			       "upgrade ltvpipe", reg->path, version, REGISTRY_SCHEMA_VERSION);
	return 0;
}

static int migrate(struct registry *reg, struct ltv_err *err)
{
	int version = 0;
	int ret = read_schema_version(reg, &version, err);

	if (ret == 0)
		ret = check_schema_version(reg, version, err);
	if (ret < 0)
		return ret;
	while (version < REGISTRY_SCHEMA_VERSION) {
		char pragma[64];

		ret = registry_begin(reg, err);
		if (ret < 0)
			return ret;
		/* Re-read inside the lock: another process may have migrated meanwhile. */
		ret = read_schema_version(reg, &version, err);
		if (ret == 0)
			ret = check_schema_version(reg, version, err);
		if (ret < 0) {
			registry_rollback(reg);
			return ret;
		}
		if (version == REGISTRY_SCHEMA_VERSION) {
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


/* SQLite's process-wide settings: taken before its first use, ignored after it. */
static void configure_sqlite(void)
{
	/*
	 * Statement journals keep SQLite's default (64 KB, so a page of 64 KB
	 * goes to the journal's file at once). Session 14 kept them in memory up
	 * to 4 MB to save ingest's users inserts system calls, but SQLite 3.40
	 * then failed with "database or disk is full" whenever such a journal
	 * outgrew memory and was copied to its file: `ingest.mode=replace` on
	 * 1,000,000 users failed so (test_users_and_days_at_once's rebuild).
	 */
	/*
	 * No count of SQLite's memory (nothing here reads it, and no heap limit
	 * is set): with it, each of SQLite's allocations and frees takes one
	 * process-wide mutex, which ingest's users writer took about twice a
	 * column (perf: half the lock calls left on that thread).
	 */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	registry_mem_configure(); /* src/registry_mem.c */
}

static int open_common(const char *path, int flags, int busy_timeout_s,
		       struct registry **out_reg, struct ltv_err *err)
{
	static pthread_once_t configured = PTHREAD_ONCE_INIT;
	struct registry *reg = xcalloc(1, sizeof(*reg));
	int version = 0, ret = 0;

	pthread_once(&configured, configure_sqlite);
	reg->path = xstrdup(path);
	reg->lock_fd = -1;
	if (sqlite3_open_v2(path, &reg->db, flags, NULL) != SQLITE_OK) {
		ret = err_set(err, LTV_EREGISTRY,
			      "cannot open registry '%s': %s; check registry.path and the permissions "
			      "of its directory", path, reg->db ? sqlite3_errmsg(reg->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(reg->db, busy_timeout_s * 1000);
	sqlite3_extended_result_codes(reg->db, 0);
	/* SQLite opens the file lazily: read it now so a damaged file fails with its own reason. */
	ret = read_schema_version(reg, &version, err);
	if (ret < 0)
		goto out;
	if ((flags & SQLITE_OPEN_READWRITE) && sqlite3_db_readonly(reg->db, "main") == 1) {
		ret = err_set(err, LTV_EREGISTRY,
			      "registry '%s' is read-only; make the file and its directory writable "
			      "(the WAL needs to create files beside it)", path);
		goto out;
	}
	ret = exec_sql(reg, "PRAGMA foreign_keys = ON", err);
	if (ret < 0)
		goto out;
	if (flags & SQLITE_OPEN_READWRITE) {
		/* WAL: readers (status, score, serve) never block the writer, and an
		 * interrupted transaction is rolled back from the log on next open. */
		/*
		 * 64 KB pages, which SQLite fixes when it creates the file (an
		 * existing registry keeps its own). The registry holds blobs of
		 * hundreds of MB (a 1,000,000-user features frame is 317 MB) and
		 * SQLite moves them a page at a time: two pwrite calls per page into
		 * the WAL, then a pread and a pwrite per page at the checkpoint. At
		 * 4 KB that was 300,000 system calls for one frame; the features
		 * stage's save and commit took 2.2 CPU s, at 64 KB 0.8.
		 */
		ret = exec_sql(reg, "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL;"
				    " PRAGMA synchronous = NORMAL;", err);
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
	if (ret == 0) {
		int v = 0;

		ret = read_schema_version(*out_reg, &v, err);
		if (ret == 0)
			ret = check_schema_version(*out_reg, v, err);
		if (ret == 0 && v < REGISTRY_SCHEMA_VERSION)
			ret = err_set(err, LTV_EREGISTRY,
				      "registry '%s' has schema version %d, this ltvpipe reads %d; "
				      "run 'ltvpipe run' once to migrate it", path, v,
				      REGISTRY_SCHEMA_VERSION);
		if (ret < 0) {
			registry_close(*out_reg);
			*out_reg = NULL;
		}
	}
	return ret;
}

int registry_open_existing(const char *path, int busy_timeout_s, struct registry **out_reg,
			   struct ltv_err *err)
{
	*out_reg = NULL;
	if (access(path, F_OK) != 0)
		return err_set(err, LTV_ENOTFOUND,
			       "no registry at '%s'; run 'ltvpipe run' first or set registry.path", path);
	return open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, busy_timeout_s,
			   out_reg, err);
}

/*
 * Syncs the WAL as the checkpoint at close would have before copying it
 * (SQLite's own sync, which also syncs the directory of a WAL it created):
 * with synchronous = NORMAL nothing else does, and what a run committed is
 * to be on the disk when it exits, as it was when the close copied it.
 */
static void sync_wal(struct registry *reg)
{
	sqlite3_file *wal = NULL;

	if (sqlite3_file_control(reg->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) == SQLITE_OK &&
	    wal && wal->pMethods && wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) != SQLITE_OK)
		LOG(LOG_WARN, "registry '%s': cannot sync its WAL", reg->path);
}

void registry_close(struct registry *reg)
{
	if (!reg)
		return;
	if (reg->in_txn)
		registry_rollback(reg);
	registry_read_end(reg);
	sqlite3_finalize(reg->user_insert);
	sqlite3_finalize(reg->users_insert);
	if (reg->wal_left)
		sync_wal(reg);
	sqlite3_close(reg->db);
	registry_unlock_run(reg);
	free(reg->path);
	free(reg);
}

void registry_defer_checkpoints(struct registry *reg, int defer)
{
	/* SQLITE_DEFAULT_WAL_AUTOCHECKPOINT pages when not deferred, as every connection opens. */
	if (reg)
		sqlite3_wal_autocheckpoint(reg->db, defer ? 0 : 1000);
}

void registry_start_wal_writeback(struct registry *reg)
{
	char *wal = xasprintf("%s-wal", reg->path);
	int fd = open(wal, O_RDONLY | O_CLOEXEC);

	/* Best effort: without it the sync to come writes everything itself. */
	if (fd >= 0) {
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		close(fd);
	}
	free(wal);
}

void registry_leave_wal_at_close(struct registry *reg)
{
	int on = 0;

	if (!reg)
		return;
	sqlite3_wal_autocheckpoint(reg->db, 0);
	if (sqlite3_db_config(reg->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &on) == SQLITE_OK && on)
		reg->wal_left = 1;
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
	int version = 0;

	return read_schema_version(reg, &version, NULL) < 0 ? INT_MIN : version;
}

/*
 * What the run lock remembers of the file between runs: size and mtime of the
 * database and its WAL. A run releasing the lock writes it into the lock file;
 * the next run compares, and only a file changed by someone else (an edit, a
 * restore, a disk fault, a killed run) pays for a PRAGMA quick_check.
 */
static void file_stamp(const char *path, char *buf, size_t size)
{
	char *wal_path = xasprintf("%s-wal", path);
	struct stat db, wal;
	int have_db = stat(path, &db) == 0, have_wal = stat(wal_path, &wal) == 0;

	/*
	 * An empty WAL holds nothing: SQLite creates one when a connection opens
	 * and deletes it when the last closes, so "none" and "empty" must stamp
	 * alike, or every run would find the file changed and check all of it.
	 */
	if (have_wal && wal.st_size == 0)
		have_wal = 0;

	snprintf(buf, size, "ltvpipe registry stamp 1\ndb %lld %lld.%09ld\nwal %lld %lld.%09ld\n",
		 have_db ? (long long)db.st_size : -1LL, have_db ? (long long)db.st_mtim.tv_sec : 0LL,
		 have_db ? db.st_mtim.tv_nsec : 0L, have_wal ? (long long)wal.st_size : -1LL,
		 have_wal ? (long long)wal.st_mtim.tv_sec : 0LL, have_wal ? wal.st_mtim.tv_nsec : 0L);
	free(wal_path);
}

/* 1 when the lock file's stamp is the file as it is now. */
static int stamp_matches(const struct registry *reg)
{
	char now[256], stored[256];
	ssize_t n = pread(reg->lock_fd, stored, sizeof(stored) - 1, 0);

	if (n <= 0)
		return 0;
	stored[n] = '\0';
	file_stamp(reg->path, now, sizeof(now));
	return strcmp(now, stored) == 0;
}

int registry_quick_check(struct registry *reg, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	const char *first;
	char one_line[512];
	int ret = 0;

	if (sqlite3_prepare_v2(reg->db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = err_set(err, LTV_EREGISTRY, "registry '%s' is damaged (PRAGMA quick_check: %s); "
			      "restore it from a backup, or move it away and run 'ltvpipe run' to "
			      "rebuild it from the input files", reg->path, sqlite3_errmsg(reg->db));
		goto out;
	}
	first = (const char *)sqlite3_column_text(st, 0);
	if (!first || strcmp(first, "ok") != 0) {
		/* SQLite's answer spans lines; a message is one. */
		snprintf(one_line, sizeof(one_line), "%s", first ? first : "no answer");
		for (char *c = one_line; *c; c++)
			if (*c == '\n')
				*c = ' ';
		ret = err_set(err, LTV_EREGISTRY, "registry '%s' is damaged (PRAGMA quick_check: %s); "
			      "restore it from a backup, or move it away and run 'ltvpipe run' to "
			      "rebuild it from the input files", reg->path, one_line);
	}
out:
	sqlite3_finalize(st);
	return ret;
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
	/* Changed since the last run released the lock: check the pages before trusting them. */
	reg->unchanged = stamp_matches(reg);
	if (!reg->unchanged) {
		ret = registry_quick_check(reg, err);
		if (ret < 0)
			goto out;
	}
	reg->stamp_ok = 1;
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
	if (reg->lock_fd >= 0 && reg->stamp_ok) {
		char stamp[256];
		size_t len;

		file_stamp(reg->path, stamp, sizeof(stamp));
		len = strlen(stamp);
		if (ftruncate(reg->lock_fd, 0) != 0 || pwrite(reg->lock_fd, stamp, len, 0) != (ssize_t)len)
			(void)ftruncate(reg->lock_fd, 0); /* no stamp: the next run checks */
		reg->stamp_ok = 0;
	}
	if (reg->lock_fd >= 0) {
		flock(reg->lock_fd, LOCK_UN);
		close(reg->lock_fd);
		reg->lock_fd = -1;
	}
}

int registry_begin(struct registry *reg, struct ltv_err *err)
{
	int ret;

	if (reg->in_txn || reg->in_read)
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
	if (reg && reg->in_txn) {
		sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
		reg->in_txn = 0;
	}
}

int registry_read_begin(struct registry *reg, struct ltv_err *err)
{
	int ret;

	if (reg->in_txn || reg->in_read)
		return err_set(err, LTV_EINTERNAL, "registry: nested transaction");
	/* Nothing is pinned until the first read: read now, not at the caller's first query. */
	ret = exec_sql(reg, "BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema", err);
	if (ret < 0) {
		if (!sqlite3_get_autocommit(reg->db))
			sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
	reg->in_read = 1;
	return 0;
}

void registry_read_end(struct registry *reg)
{
	if (reg && reg->in_read) {
		sqlite3_exec(reg->db, "COMMIT", NULL, NULL, NULL);
		reg->in_read = 0;
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

/* ---- helpers shared by the registry files ---- */

int reg_insert_links(struct registry *reg, const char *sql, int64_t id, const int64_t *others,
		     size_t n, const char *what, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(reg, sql, &st, err);

	for (size_t i = 0; i < n && ret == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, others[i]);
		ret = step_done(reg, st, what, err);
	}
	sqlite3_finalize(st);
	return ret;
}

int reg_load_rows(struct registry *reg, const char *sql, int64_t param,
		  const struct row_reader *reader, const char *what, void **out_rows,
		  size_t *out_n, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	unsigned char *rows = NULL; /* bytes: only the caller knows the element type */
	size_t n = 0, cap = 0;      /* n in elements, cap in bytes */
	int ret = prepare(reg, sql, &st, err);
	int rc;

	if (ret < 0)
		goto out;
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, param);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		unsigned char *elem;

		ARRAY_GROW(rows, (n + 1) * reader->size, cap);
		elem = rows + n++ * reader->size;
		memset(elem, 0, reader->size);
		reader->read(st, elem);
	}
	if (rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, what);
out:
	sqlite3_finalize(st);
	if (ret < 0) {
		reg_free_rows(rows, n, reader);
		rows = NULL;
		n = 0;
	}
	*out_rows = rows;
	*out_n = n;
	return ret;
}

void reg_free_rows(void *rows, size_t n, const struct row_reader *reader)
{
	unsigned char *elems = rows;

	if (reader->release)
		for (size_t i = 0; i < n; i++)
			reader->release(elems + i * reader->size);
	free(rows);
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

int reg_fetch_artefact(struct registry *reg, sqlite3_stmt *st, const char *what,
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

int registry_blob_put(struct registry *reg, int64_t artefact_id, const char *key,
		      const void *data, size_t len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char checksum[HASH_HEX_LEN];
	int ret = prepare(reg, "INSERT OR REPLACE INTO artefact_blobs (artefact_id, key, data, checksum)"
			       " VALUES (?, ?, ?, ?)", &st, err);

	if (ret < 0)
		return ret;
	hash_buffer_hex(data ? data : "", len, checksum);
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, key);
	sqlite3_bind_blob64(st, 3, data ? data : "", (sqlite3_uint64)len, SQLITE_STATIC);
	bind_text(st, 4, checksum);
	ret = step_done(reg, st, "storing a blob", err);
	sqlite3_finalize(st);
	return ret;
}

/*
 * The message for a damaged artefact: which one, what is wrong (detail), and
 * the two ways out. Returns LTV_EREGISTRY.
 */
static int damaged(struct registry *reg, int64_t artefact_id, const char *detail,
		   struct ltv_err *err)
{
	struct artefact_info a;
	struct ltv_err ignored;

	if (registry_artefact_get(reg, artefact_id, &a, &ignored) < 0)
		return err_set(err, LTV_EREGISTRY, "registry '%s': artefact %lld is damaged: %s; "
			       "restore the registry from a backup", reg->path,
			       (long long)artefact_id, detail);
	err_set(err, LTV_EREGISTRY, "registry '%s': artefact '%s' v%lld is damaged: %s; rebuild it "
		"with 'ltvpipe run --force --from %s', or restore the registry from a backup",
		reg->path, a.name, (long long)a.version, detail, a.name);
	artefact_info_release(&a);
	return LTV_EREGISTRY;
}

/* 0 when the blob in the current row of st (columns: key, data, checksum) matches its checksum. */
/* 0 when blob `key`'s bytes hash to its stored checksum, else marks the artefact damaged. */
static int checksum_matches(struct registry *reg, int64_t artefact_id, const char *key,
			    const char *stored, const char *actual, struct ltv_err *err)
{
	char detail[256];

	if (strcmp(actual, stored) == 0)
		return 0;
	snprintf(detail, sizeof(detail), "blob '%s' does not match its checksum", key);
	return damaged(reg, artefact_id, detail, err);
}

static int check_blob_row(struct registry *reg, sqlite3_stmt *st, int64_t artefact_id,
			  struct ltv_err *err)
{
	const char *stored = (const char *)sqlite3_column_text(st, 2);
	char actual[HASH_HEX_LEN];
	const void *data;
	size_t len;

	if (!stored)
		return 0; /* written before blobs carried checksums */
	data = sqlite3_column_blob(st, 1);
	len = (size_t)sqlite3_column_bytes(st, 1);
	hash_buffer_hex(data ? data : "", len, actual);
	return checksum_matches(reg, artefact_id, (const char *)sqlite3_column_text(st, 0), stored,
				actual, err);
}

int registry_artefact_verify(struct registry *reg, int64_t artefact_id, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t expected = -1, n = 0;
	int ret = prepare(reg, "SELECT n_blobs FROM artefacts WHERE id = ?", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		expected = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, LTV_ENOTFOUND, "no artefact with id %lld in registry '%s'",
			      (long long)artefact_id, reg->path);
	else if (rc != SQLITE_ROW)
		ret = SQL_FAIL(reg, err, "verifying an artefact");
	sqlite3_finalize(st);
	st = NULL;
	if (ret < 0)
		return ret;
	/*
	 * A file as the last run left it holds the blobs that run checked or
	 * wrote: count them (a few index pages) rather than hash every byte, which
	 * was most of a no-op run. Any other change to the file rechecks them all.
	 */
	ret = prepare(reg, reg->unchanged && reg->lock_fd >= 0
			   ? "SELECT key, NULL, NULL FROM artefact_blobs WHERE artefact_id = ?"
			   : "SELECT key, data, checksum FROM artefact_blobs WHERE artefact_id = ?",
		      &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		ret = check_blob_row(reg, st, artefact_id, err);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "verifying an artefact's blobs");
	sqlite3_finalize(st);
	if (ret == 0 && expected >= 0 && n != expected) {
		char detail[128];

		snprintf(detail, sizeof(detail), "it has %lld of its %lld blobs", (long long)n,
			 (long long)expected);
		ret = damaged(reg, artefact_id, detail, err);
	}
	return ret;
}

/*
 * Steps *out_st (caller finalizes, also on failure) to the row of blob `key`
 * of the artefact, selecting `columns`: 0, LTV_ENOTFOUND or SQLite's error.
 */
static int blob_row(struct registry *reg, int64_t artefact_id, const char *key,
		    const char *columns, sqlite3_stmt **out_st, struct ltv_err *err)
{
	char *sql = xasprintf("SELECT %s FROM artefact_blobs WHERE artefact_id = ? AND key = ?",
			      columns);
	int ret = prepare(reg, sql, out_st, err);
	int rc;

	free(sql);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(*out_st, 1, artefact_id);
	bind_text(*out_st, 2, key);
	rc = sqlite3_step(*out_st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return err_set(err, LTV_ENOTFOUND, "artefact %lld has no blob '%s'",
			       (long long)artefact_id, key);
	return SQL_FAIL(reg, err, "reading a blob");
}

int registry_blob_get(struct registry *reg, int64_t artefact_id, const char *key,
		      void **out_data, size_t *out_len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = blob_row(reg, artefact_id, key, "key, data, checksum", &st, err);

	if (ret == 0)
		ret = check_blob_row(reg, st, artefact_id, err);
	if (ret == 0) {
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		void *data = xmalloc(len);

		/* Copy: SQLite's pointer is only valid until the next step/finalize. */
		if (len)
			memcpy(data, sqlite3_column_blob(st, 1), len);
		*out_data = data;
		*out_len = len;
	}
	sqlite3_finalize(st);
	return ret;
}

/* Reads len bytes at offset of an open blob into dst; SQLITE_OK or SQLite's error. */
static int blob_read_at(sqlite3_blob *b, void *dst, size_t len, size_t offset)
{
	return len ? sqlite3_blob_read(b, dst, (int)len, (int)offset) : SQLITE_OK;
}

/* Opens blob key of the artefact for reading; *out_stored is its checksum (NULL: none). */
static int blob_open(struct registry *reg, int64_t artefact_id, const char *key,
		     sqlite3_blob **out_b, char **out_stored, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t rowid = 0;
	int ret = blob_row(reg, artefact_id, key, "rowid, checksum", &st, err);

	*out_b = NULL;
	*out_stored = NULL;
	if (ret == 0) {
		rowid = sqlite3_column_int64(st, 0);
		*out_stored = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : dup_col(st, 1);
	}
	sqlite3_finalize(st);
	if (ret == 0 &&
	    sqlite3_blob_open(reg->db, "main", "artefact_blobs", "data", rowid, 0, out_b) != SQLITE_OK)
		ret = SQL_FAIL(reg, err, "reading a blob");
	return ret;
}

int registry_blob_peek(struct registry *reg, int64_t artefact_id, const char *key, void *head,
		       size_t head_len, size_t *out_len, struct ltv_err *err)
{
	sqlite3_blob *b = NULL;
	char *stored = NULL;
	int ret = blob_open(reg, artefact_id, key, &b, &stored, err);

	if (ret == 0) {
		*out_len = (size_t)sqlite3_blob_bytes(b);
		if (blob_read_at(b, head, head_len < *out_len ? head_len : *out_len, 0) != SQLITE_OK)
			ret = SQL_FAIL(reg, err, "reading a blob");
	}
	sqlite3_blob_close(b);
	free(stored);
	return ret;
}

int registry_blob_get_vec(struct registry *reg, int64_t artefact_id, const char *key,
			  const struct blob_part *parts, size_t n_parts, struct ltv_err *err)
{
	sqlite3_blob *b = NULL;
	char *stored = NULL, actual[HASH_HEX_LEN];
	size_t len, want = 0, at = 0;
	int ret = blob_open(reg, artefact_id, key, &b, &stored, err);

	if (ret < 0)
		goto out;
	len = (size_t)sqlite3_blob_bytes(b);
	for (size_t k = 0; k < n_parts; k++)
		want += parts[k].len;
	if (len != want) {
		ret = err_set(err, LTV_EINVAL, "blob '%s' of artefact %lld has %zu bytes, not the %zu "
			      "its index gives", key, (long long)artefact_id, len, want);
		goto out;
	}
	for (size_t k = 0; k < n_parts && ret == 0; k++) {
		if (blob_read_at(b, parts[k].data, parts[k].len, at) != SQLITE_OK)
			ret = SQL_FAIL(reg, err, "reading a blob");
		at += parts[k].len;
	}
	if (ret == 0 && stored) { /* NULL: written before blobs carried checksums */
		struct hasher h;

		hasher_init(&h);
		for (size_t k = 0; k < n_parts; k++)
			hasher_update(&h, parts[k].data, parts[k].len);
		hasher_hex(&h, actual);
		hasher_release(&h);
		ret = checksum_matches(reg, artefact_id, key, stored, actual, err);
	}
out:
	sqlite3_blob_close(b);
	free(stored);
	return ret;
}

int registry_blob_get_parts(struct registry *reg, int64_t artefact_id, const char *key,
			    void *head, size_t head_len, void *body, size_t body_len,
			    struct ltv_err *err)
{
	const struct blob_part parts[2] = { { head, head_len }, { body, body_len } };

	return registry_blob_get_vec(reg, artefact_id, key, parts, 2, err);
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
