/*
 * The registry's core (see include/ltv/registry.h for the contract): opening
 * and migrating the SQLite file, the run lock, transactions and the integrity
 * check, plus the statement helpers the other registry files share (declared
 * in src/registry_internal.h). Runs, artefacts and metadata live in
 * src/registry_artefact.c, their blobs in src/registry_blob.c, the ingested
 * data in src/registry_data.c and the model versions in
 * src/registry_versions.c. SQL is always prepared and bound, never built from
 * data.
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
#include "ltv/remove_later.h"
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

/*
 * Below this the WAL's unlink at close costs less than remove_later's shell
 * (1-8 ms); a cold run's is 130 MB and more.
 */
#define WAL_ASIDE_MIN_BYTES (16L << 20)

/*
 * A second name for a big WAL that SQLite is about to delete at close (its
 * "-wal" and ".aside"; NULL: none). The close copies the WAL into the
 * database and unlinks it; the file keeps its largest size, and after a cold
 * run (ingest's 131 MB WAL, copied by the run, then the run's writes) that
 * unlink freed its page cache and blocks on the main thread at the very end
 * of the run: 72 ms (strace -T, 1,000,000 users). With a second name the
 * unlink drops the name only and remove_later frees the file after us. A
 * stale second name (a run killed between the two) is removed first.
 */
static char *wal_aside(const struct registry *reg)
{
	char *wal = xasprintf("%s-wal", reg->path), *aside = xasprintf("%s-wal.aside", reg->path);
	struct stat st;
	int linked = 0;

	if (!reg->wal_left && stat(wal, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size >= WAL_ASIDE_MIN_BYTES) {
		linked = link(wal, aside) == 0;
		if (!linked && errno == EEXIST && unlink(aside) == 0)
			linked = link(wal, aside) == 0;
	}
	free(wal);
	if (!linked) {
		free(aside);
		return NULL;
	}
	return aside;
}

/*
 * After the close: the second name goes in the background once SQLite has
 * deleted the WAL (it keeps it while another connection has the database
 * open: then the name alone goes, here, which frees nothing).
 */
static void wal_aside_remove(const struct registry *reg, char *aside)
{
	char *wal = xasprintf("%s-wal", reg->path);

	if (access(wal, F_OK) == 0 || remove_later(&aside, 1) < 0)
		unlink(aside);
	free(wal);
	free(aside);
}

void registry_close(struct registry *reg)
{
	char *aside;

	if (!reg)
		return;
	if (reg->in_txn)
		registry_rollback(reg);
	registry_read_end(reg);
	sqlite3_finalize(reg->user_insert);
	sqlite3_finalize(reg->users_insert);
	if (reg->wal_left)
		sync_wal(reg);
	aside = wal_aside(reg);
	sqlite3_close(reg->db);
	if (aside)
		wal_aside_remove(reg, aside);
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

