/*
 * The registry: one SQLite file holding every run, every versioned artefact
 * with its lineage, fingerprint, content hash, config and metrics, the
 * ingested data (users, user_days) and the model-version aliases. Only the
 * registry module (src/registry*.c and src/registry_internal.h) includes
 * <sqlite3.h>; everything else calls registry_*().
 *
 * Concurrency: a run takes an exclusive advisory lock on "<path>.lock" for its
 * whole duration (released by the kernel if the process dies), so two runs
 * never interleave versions. Writes happen inside registry_begin() /
 * registry_commit() (BEGIN IMMEDIATE), and registry_rollback() restores the
 * previous state exactly; a crash mid-transaction is rolled back by SQLite's
 * WAL on the next open.
 */
#ifndef LTV_REGISTRY_H
#define LTV_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/hash.h"

#define REGISTRY_SCHEMA_VERSION 9

struct registry; /* opaque: a connection plus cached statements */

/*
 * Opens (creating the file and its directory if needed) and migrates the
 * schema forward to REGISTRY_SCHEMA_VERSION. busy_timeout_s bounds how long a
 * write waits for another connection. Returns NULL-safe *out_reg the caller
 * closes with registry_close.
 */
int registry_open(const char *path, int busy_timeout_s, struct registry **out_reg,
		  struct ltv_err *err);
/*
 * Opens read-only; fails with LTV_ENOTFOUND when the file does not exist, and
 * with LTV_EREGISTRY (SQLite's reason and a fix) when it cannot be read or its
 * schema version is not this ltvpipe's.
 */
int registry_open_readonly(const char *path, struct registry **out_reg, struct ltv_err *err);
/*
 * registry_open for a registry that must already exist (commands that only
 * change one, such as `models promote`): LTV_ENOTFOUND, creating nothing,
 * when the file is absent.
 */
int registry_open_existing(const char *path, int busy_timeout_s, struct registry **out_reg,
			   struct ltv_err *err);
/* Accepts NULL. Rolls back an open transaction first. */
void registry_close(struct registry *reg);
const char *registry_path(const struct registry *reg);
/*
 * Whether this connection's commits copy the WAL back into the database file
 * (SQLite's checkpoint, which a commit runs once the WAL passes 1,000 pages:
 * the default) or leave it to another connection's commit, or to the last
 * close. Deferring changes no durability: a committed transaction in the WAL
 * survives a crash or SIGKILL and is read from there until copied.
 */
void registry_defer_checkpoints(struct registry *reg, int defer);
/*
 * Defers this connection's checkpoints to its end and then leaves the WAL
 * as it is, synced, for the next connection to copy: registry_close skips
 * the checkpoint SQLite runs when the last connection closes. For a run
 * whose commits another process will copy soon (`run --only ingest`, then
 * `run`); every reader opening the registry meanwhile first reads the whole
 * WAL (SQLite's recovery of its index), so not for a registry left so for long.
 */
void registry_leave_wal_at_close(struct registry *reg);
/*
 * Starts the disk writeback of what the WAL holds so far, without waiting:
 * a transaction that wrote hundreds of MB then finds less to wait for in
 * the sync of its WAL (at the checkpoint, or registry_leave_wal_at_close's).
 */
void registry_start_wal_writeback(struct registry *reg);
/* The linked SQLite library's version, for --version. */
const char *registry_sqlite_version(void);
/* PRAGMA user_version, or INT_MIN when SQLite cannot read it. */
int registry_schema_version(struct registry *reg);

/*
 * Exclusive lock held for a whole run: waits up to timeout_s for another run
 * to finish, then fails with LTV_EBUSY naming the lock file. Released by
 * registry_unlock_run or process exit. When the file changed since the last
 * run released the lock (size and mtime of the file and its WAL, kept in the
 * lock file), it runs registry_quick_check first and fails as it does.
 */
int registry_lock_run(struct registry *reg, int timeout_s, struct ltv_err *err);
void registry_unlock_run(struct registry *reg);

/* Write transaction (BEGIN IMMEDIATE ... COMMIT); rollback never fails loudly and accepts NULL. */
int registry_begin(struct registry *reg, struct ltv_err *err);
int registry_commit(struct registry *reg, struct ltv_err *err);
void registry_rollback(struct registry *reg);

/*
 * Read transaction for readers (score, status, models, evaluate, predict):
 * every read between registry_read_begin and registry_read_end sees one
 * snapshot of the registry, so a run committing meanwhile is seen whole or
 * not at all. begin starts a deferred transaction and reads once, which pins
 * the WAL snapshot there and then. Not nested, and not inside registry_begin.
 * registry_read_end (also done by registry_close) accepts NULL and never
 * fails loudly: a read transaction has nothing to lose.
 */
int registry_read_begin(struct registry *reg, struct ltv_err *err);
void registry_read_end(struct registry *reg);

/* "PRAGMA quick_check" == ok → 0, else LTV_EREGISTRY with SQLite's text and the fix. */
int registry_quick_check(struct registry *reg, struct ltv_err *err);
/* "PRAGMA integrity_check" == ok → 0, else LTV_EREGISTRY with SQLite's text. */
int registry_integrity_check(struct registry *reg, struct ltv_err *err);

/* ---- runs ---- */

int registry_run_start(struct registry *reg, const char *run_id, const char *command,
		       int64_t as_of, const char *config_text, struct ltv_err *err);
/* status: "ok" or "failed". */
/* Records the as_of a run used once it is known (the default is resolved during the run). */
int registry_run_set_as_of(struct registry *reg, const char *run_id, int64_t as_of,
			   struct ltv_err *err);
int registry_run_finish(struct registry *reg, const char *run_id, const char *status,
			struct ltv_err *err);

/* ---- artefacts ---- */

struct artefact_info {
	int64_t id;
	char name[64];
	int64_t version;
	char run_id[64];
	char fingerprint[HASH_HEX_LEN];
	char content_hash[HASH_HEX_LEN];
	char code_version[32];
	char created_at[32];
	int64_t as_of;       /* INT64_MIN when the stage does not depend on as_of */
	char *config;        /* canonical config text it was built with; owned */
	char *metrics;       /* JSON object text; owned */
	char *timings;       /* JSON object text; owned */
};

/* Frees the strings inside; the struct itself is the caller's. */
void artefact_info_release(struct artefact_info *a);

struct artefact_new {
	const char *name;
	const char *run_id;
	const char *fingerprint;
	const char *code_version;
	const char *config;     /* canonical text */
	int64_t as_of;
	const int64_t *inputs;  /* artefact ids it was made from */
	size_t n_inputs;
};

/* Inside a transaction: inserts the next version of a->name; content hash and metrics come later. */
int registry_artefact_create(struct registry *reg, const struct artefact_new *a,
			     int64_t *out_id, int64_t *out_version, struct ltv_err *err);
/* Inside a transaction: records the final content hash, metrics and timings JSON. */
int registry_artefact_finish(struct registry *reg, int64_t id, const char *content_hash,
			     const char *metrics_json, const char *timings_json,
			     struct ltv_err *err);
/*
 * Inside a transaction, before the finish: the fingerprint and config text
 * of an artefact whose stage learnt its inputs' hashes while it ran (ingest
 * into a registry without one: the runner's unhashed_files).
 */
int registry_artefact_set_fingerprint(struct registry *reg, int64_t id, const char *fingerprint,
				      const char *config, struct ltv_err *err);
/* Inside a transaction: makes id the current version of its name (what downstream stages read). */
int registry_set_current(struct registry *reg, const char *name, int64_t id, struct ltv_err *err);

/* Fills out for an artefact; LTV_ENOTFOUND when absent. Caller releases out. */
int registry_artefact_get(struct registry *reg, int64_t id, struct artefact_info *out,
			  struct ltv_err *err);
int registry_artefact_current(struct registry *reg, const char *name, struct artefact_info *out,
			      struct ltv_err *err);
int registry_artefact_by_fingerprint(struct registry *reg, const char *name,
				     const char *fingerprint, struct artefact_info *out,
				     struct ltv_err *err);
int registry_artefact_by_version(struct registry *reg, const char *name, int64_t version,
				 struct artefact_info *out, struct ltv_err *err);
/* Lineage: ids of the artefacts id was made from (caller frees *out_ids). */
int registry_lineage(struct registry *reg, int64_t id, int64_t **out_ids, size_t *out_n,
		     struct ltv_err *err);
/* Number of versions stored under name (0 when none). */
int registry_artefact_count(struct registry *reg, const char *name, int64_t *out_n,
			    struct ltv_err *err);

/* Blobs attached to an artefact (model bodies, feature columns). */
int registry_blob_put(struct registry *reg, int64_t artefact_id, const char *key,
		      const void *data, size_t len, struct ltv_err *err);
/*
 * Copies the blob into a new buffer (caller frees). LTV_ENOTFOUND when absent;
 * LTV_EREGISTRY naming the artefact and the fix when the bytes no longer
 * match the checksum stored with them.
 */
int registry_blob_get(struct registry *reg, int64_t artefact_id, const char *key,
		      void **out_data, size_t *out_len, struct ltv_err *err);
/*
 * Reads a blob of exactly head_len + body_len bytes straight into the
 * caller's memory: its first head_len bytes into head, the rest into body,
 * with the checksum checked as registry_blob_get does. For large blobs (a
 * frame column) that the caller can size: no copy in between. LTV_EINVAL
 * when the blob has another length.
 */
int registry_blob_get_parts(struct registry *reg, int64_t artefact_id, const char *key,
			    void *head, size_t head_len, void *body, size_t body_len,
			    struct ltv_err *err);
/* Where registry_blob_get_vec puts the next len bytes of a blob. */
struct blob_part {
	void *data;
	size_t len;
};
/*
 * registry_blob_get_parts into any number of parts, one after another: for
 * a blob whose pieces go to separate arrays (a packed frame column's table
 * and codes). LTV_EINVAL when the parts do not add up to the blob's length.
 */
int registry_blob_get_vec(struct registry *reg, int64_t artefact_id, const char *key,
			  const struct blob_part *parts, size_t n_parts, struct ltv_err *err);
/*
 * The blob's length and its first head_len bytes (fewer when it is
 * shorter), NOT checked against the checksum: for a reader that sizes its
 * parts from a header, then reads the whole through registry_blob_get_vec,
 * which checks it.
 */
int registry_blob_peek(struct registry *reg, int64_t artefact_id, const char *key, void *head,
		       size_t head_len, size_t *out_len, struct ltv_err *err);
/*
 * Checks that an artefact is still whole: every blob matches its checksum and
 * none is missing (the count recorded by registry_artefact_finish). Reads
 * every blob, so it costs one pass over the artefact's bytes; blobs and
 * artefacts stored before schema 5 carry no checksum or count and pass.
 * LTV_EREGISTRY with the artefact's name, version and the fix when damaged.
 */
int registry_artefact_verify(struct registry *reg, int64_t artefact_id, struct ltv_err *err);

/* ---- key/value metadata ---- */

int registry_meta_set(struct registry *reg, const char *key, const char *value,
		      struct ltv_err *err);
/* Returns a new string (caller frees), or NULL with LTV_ENOTFOUND. */
int registry_meta_get(struct registry *reg, const char *key, char **out_value,
		      struct ltv_err *err);
/*
 * The as_of a command uses when it is given none: the time of the latest
 * ingested event (meta max_event_time, which ingest keeps). LTV_EUSAGE saying
 * to ingest events or pass --as-of when there is none yet; LTV_EREGISTRY when
 * the stored value is not a time. Every command reads it here, so they agree
 * on the default and on the message.
 */
int registry_default_as_of(struct registry *reg, int64_t *out, struct ltv_err *err);

/* ---- ingested data ---- */

/* 1 when a file with this content hash was ingested before, else 0 (negative on error). */
int registry_file_ingested(struct registry *reg, const char *content_hash, struct ltv_err *err);
int registry_file_record(struct registry *reg, const char *content_hash, const char *kind,
			 const char *path, int64_t artefact_id, int64_t rows, int64_t rejects,
			 struct ltv_err *err);
/*
 * The content hash an earlier ingest recorded for this kind and path, in a new
 * string (caller frees), or NULL when the path was never ingested.
 */
int registry_file_hash_for_path(struct registry *reg, const char *kind, const char *path,
				char **out_hash, struct ltv_err *err);
/* Content hashes of every ingested file, sorted (caller frees each and the array). */
int registry_ingested_hashes(struct registry *reg, char ***out_hashes, size_t *out_n,
			     struct ltv_err *err);
/* One ingested_files record. */
struct ingested_file_row {
	char *content_hash, *kind, *path;
	int64_t rows, rejects;
};
/* Every ingested file record in the order they were loaded (src/registry_shard.c). */
int registry_ingested_files_load(struct registry *reg, struct ingested_file_row **out_rows,
				 size_t *out_n, struct ltv_err *err);
void ingested_file_rows_free(struct ingested_file_row *rows, size_t n);
/* Deletes every ingested user, user-day and file record (ingest.mode: replace). */
int registry_data_clear(struct registry *reg, struct ltv_err *err);

struct user_row {
	int64_t uid;          /* dense id assigned by ingest, 1-based */
	const char *user_id;
	const char *app_id;
	const char *campaign;
	int64_t install_time; /* epoch seconds UTC */
	double cost;          /* NaN when empty */
	const char *attributes_json; /* NULL when none configured */
};

int registry_user_insert(struct registry *reg, const struct user_row *u, int64_t artefact_id,
			 struct ltv_err *err);
/*
 * registry_user_insert for n rows (borrowed, strings included), many per
 * statement: per-row statement overhead was a third of inserting a user.
 */
int registry_users_insert(struct registry *reg, const struct user_row *rows, size_t n,
			  int64_t artefact_id, struct ltv_err *err);
/* Adds to the (uid, day) aggregate, creating it when new (a block of one row). */
int registry_user_day_add(struct registry *reg, int64_t uid, int64_t day, double revenue,
			  int64_t events, int64_t purchases, struct ltv_err *err);

struct user_day_row {
	int64_t uid;
	int64_t day;
	double revenue;
	int64_t events;
	int64_t purchases;
};

/*
 * registry_user_day_add for n rows (borrowed), stored as columnar blocks in
 * table user_day_blocks (include/ltv/user_day_block.h): a row per user-day in
 * SQLite was most of ingest's time. Rows sorted by (uid, day) are stored as
 * they are; others are sorted (and a repeated (uid, day) summed) first. One
 * call makes one block (up to 8M rows), so add many rows per call.
 */
int registry_user_days_add(struct registry *reg, const struct user_day_row *rows, size_t n,
			   struct ltv_err *err);
/*
 * registry_user_days_add for the n rows at the start of block rows (taken
 * over and released, whatever happens): its pages serve SQLite's copy of the
 * last block's record, as the rows are not read once it is encoded, instead
 * of fresh pages the kernel would zero (ingest's tail; src/registry_mem.c).
 */
struct mapped_block;
int registry_user_days_add_block(struct registry *reg, struct mapped_block *rows, size_t n,
				 struct ltv_err *err);

/* All users in uid order, as parallel arrays owned by the table. */
struct user_table {
	size_t n;
	int64_t *uid;
	char **user_id;
	char **app_id;
	char **campaign;
	int64_t *install_time;
	double *cost;
	char **attributes_json; /* entries may be NULL */
	/*
	 * registry_users_load packs the strings into these blocks (a million
	 * users' four strings each were four million allocations, a third of
	 * features' time), users with the same app, campaign or attributes
	 * sharing one read-only copy of it; none: each string is its own
	 * allocation.
	 */
	char **text_blocks;
	size_t n_text_blocks;
};
int registry_users_load(struct registry *reg, struct user_table *out, struct ltv_err *err);
void user_table_release(struct user_table *t);
/*
 * Frees the strings and their arrays (user_id, app_id, campaign,
 * attributes_json, then NULL), keeping the numbers, for a reader done with
 * the strings (the features build, before its frame). user_table_release
 * still releases the rest.
 */
void user_table_drop_strings(struct user_table *t);
/* Frees the column arrays only (their strings owned elsewhere, e.g. in blocks) and zeroes t. */
void user_table_free_arrays(struct user_table *t);

/*
 * Streams every user-day in (uid, day) order to fn, merging the blocks (and
 * the rows older versions wrote to table user_days) and summing a (uid, day)
 * stored more than once; fn returns 0 to go on or a negative status to stop
 * (which is returned).
 */
typedef int (*user_day_fn)(void *ctx, int64_t uid, int64_t day, double revenue,
			   int64_t events, int64_t purchases);
int registry_user_days_each(struct registry *reg, user_day_fn fn, void *ctx, struct ltv_err *err);
/*
 * *out = the user-days stored (the blocks' rows and a legacy table's): as
 * many as registry_user_days_each passes on, or more where an append-mode
 * ingest stored a (uid, day) in several blocks. A reader sizes its array by it.
 */
int registry_user_days_bound(struct registry *reg, size_t *out, struct ltv_err *err);

/*
 * registry_users_load into *users and registry_user_days_each to fn at once:
 * with threads > 1 the users are read from SQLite on a thread of their own
 * while this one decodes the user-days (their blocks read first), so the two
 * reads take the longer one's time, not their sum. fn is called for a
 * user-day of uid only once users 1..uid are in *users: it may read their
 * columns (users->n only after this returns). A user-day whose uid is not a
 * user's (past the users table, or < 1), or fewer users read than counted,
 * is LTV_EREGISTRY naming the registry, table and uid: never dropped, as
 * that registry is damaged. On failure *users is released (zeroed), and a
 * users' error is returned before a user-days' one, as the two calls in turn.
 */
int registry_users_and_days(struct registry *reg, int threads, struct user_table *users,
			    user_day_fn fn, void *ctx, struct ltv_err *err);
/*
 * LTV_EREGISTRY: reg's user-days hold a day (uid, day) of no user of its
 * n_users (uids 1..n_users), with what would fix it. A registry written by
 * ltvpipe never does (a user's days are written with the user, in one
 * transaction): it was damaged or changed by hand.
 */
int registry_day_of_no_user(struct registry *reg, int64_t uid, int64_t day, size_t n_users,
			    struct ltv_err *err);

/* ---- campaign tiers (a table people query with sqlite3) ---- */

struct campaign_tier_row {
	char *app_id;
	char *campaign;
	int tier;                 /* 1, 2 or 3 */
	int64_t mature_users;     /* mature at the target horizon (training + validation) */
	int64_t validation_users;
	int64_t payers;           /* mature users with revenue after the observation window */
	double revenue;           /* their total revenue to the target horizon */
	double mean_ltv;          /* revenue / mature_users; NaN when none */
	int64_t history_days;     /* as_of minus the campaign's first install, in days */
};

int registry_campaign_tier_insert(struct registry *reg, int64_t artefact_id,
				  const struct campaign_tier_row *row, struct ltv_err *err);
/* Rows of one tiers artefact ordered by app, campaign; caller frees with campaign_tiers_free. */
int registry_campaign_tiers_load(struct registry *reg, int64_t artefact_id,
				 struct campaign_tier_row **out_rows, size_t *out_n,
				 struct ltv_err *err);
void campaign_tiers_free(struct campaign_tier_row *rows, size_t n);

/* ---- method selection (one row per campaign and method, per select artefact) ---- */

struct selection_row {
	char *app_id;
	char *campaign;       /* "" for a tier default row */
	int tier;
	char *method;
	int selected;         /* 1 for the method kept */
	char *source;         /* "validation" or "tier default" */
	int64_t n_validation;
	double ape;           /* campaign-level absolute percentage error; NaN when not computed */
	double rmsle;
};

int registry_selection_insert(struct registry *reg, int64_t artefact_id,
			      const struct selection_row *row, struct ltv_err *err);
/* The selected rows only, ordered by tier, app, campaign; free with selection_rows_free. */
int registry_selection_load(struct registry *reg, int64_t artefact_id,
			    struct selection_row **out_rows, size_t *out_n, struct ltv_err *err);
void selection_rows_free(struct selection_row *rows, size_t n);

/* ---- calibration parameters (for people; the bodies are blobs) ---- */

struct calibration_row {
	int tier;
	int64_t horizon;
	const char *kind;     /* "anchor" or "isotonic" or "identity" */
	double alpha, anchor; /* NaN for isotonic */
	int64_t n_validation;
	double mse_anchor, mse_isotonic;
};
int registry_calibration_insert(struct registry *reg, int64_t artefact_id,
				const struct calibration_row *row, struct ltv_err *err);

/* ---- model versions and aliases ---- */

/* Inside a transaction: a new model version made of these artefacts; returns its number. */
int registry_model_version_create(struct registry *reg, const char *run_id,
				  const int64_t *artefact_ids, size_t n, double validation_error,
				  const char *metrics_json, int64_t *out_version, struct ltv_err *err);
/* The artefact of a stage within a model version; LTV_ENOTFOUND when absent. */
int registry_model_version_artefact(struct registry *reg, int64_t version, const char *name,
				    struct artefact_info *out, struct ltv_err *err);
/* Validation error recorded for a version (NaN when none); LTV_ENOTFOUND for no such version. */
int registry_model_version_error(struct registry *reg, int64_t version, double *out_error,
				 struct ltv_err *err);
/* The version an alias points at; LTV_ENOTFOUND when the alias is unset. */
int registry_alias_get(struct registry *reg, const char *alias, int64_t *out_version,
		       struct ltv_err *err);
struct alias_move {
	int64_t from;        /* where the alias pointed (0: unset) */
	int moved;           /* 0: it already pointed at the version; nothing changed */
	int candidate_unset; /* production moved to the candidate, so candidate was removed */
	char reason[1200];   /* the reason recorded (why, and the candidate's removal) */
};
/*
 * Inside a transaction: the one way an alias moves (`models
 * promote`/`rollback`, `POST /v1/aliases/{alias}`, and calibrate's first
 * version, candidate and auto-promotion). Pointing it where it already
 * points changes and records nothing (out->moved = 0). LTV_ENOTFOUND when the
 * version does not exist. A version that becomes production is no longer the
 * candidate: the candidate alias, when it named it, is removed and the
 * reason says so. Recorded in alias_history with who and why.
 */
int registry_alias_move(struct registry *reg, const char *alias, int64_t version, const char *who,
			const char *why, struct alias_move *out, struct ltv_err *err);
/* The previous value of alias in its history (before the current one); LTV_ENOTFOUND when none. */
int registry_alias_previous(struct registry *reg, const char *alias, int64_t *out_version,
			    struct ltv_err *err);

/* Rows of a read-only query for the `models` command: fn gets column names and values as text. */
typedef int (*registry_row_fn)(void *ctx, int n_cols, char **names, char **values);
/*
 * Runs one of the fixed report queries ("model_versions", "alias_history",
 * "version_artefacts" with param = version) and streams rows to fn.
 */
int registry_report(struct registry *reg, const char *report, int64_t param,
		    registry_row_fn fn, void *ctx, struct ltv_err *err);
/*
 * The same for the reports keyed by text ("run", "run_artefacts" with a run
 * id). Also "version_configs" (id, name, version, as_of, config, metrics of a
 * version's artefacts), "model_version" and "artefact_blobs" (key, bytes) by
 * number through registry_report.
 */
int registry_report_text(struct registry *reg, const char *report, const char *param,
			 registry_row_fn fn, void *ctx, struct ltv_err *err);

/* ---- evaluations (ltvpipe evaluate; a table people query with sqlite3) ---- */

struct evaluation_row {
	int64_t id;
	char *run_id;         /* the evaluate run's id */
	char *created_at;     /* set by insert; filled by load */
	int64_t as_of;        /* the backtest's cut-off T */
	char *horizons;       /* "90,365" */
	int64_t model_version; /* production model version when it ran; 0 when none (NULL in SQL) */
	char *config_hash;    /* of the config sections that define the evaluated model */
	char *metrics;        /* JSON object text (eval_report_json, not detailed) */
	char *report_dir;     /* where the HTML, text and JSON reports were written */
};

/* One `ltvpipe score` (table scores). */
struct score_record {
	const char *scored_at;    /* ISO 8601 UTC, as written in the output's scored_at column */
	int64_t model_version;
	int64_t as_of;
	int64_t users;            /* users scored */
	const char *input;        /* the --users file, or NULL for the registry's own data */
	const char *output;       /* the users CSV written */
	const char *content_hash; /* of that file */
};

/* Inside a transaction: records one score; *out_id gets its id. */
int registry_score_insert(struct registry *reg, const struct score_record *rec, int64_t *out_id,
			  struct ltv_err *err);

/* Inside a transaction: inserts row (its id and created_at are ignored); *out_id gets the new id. */
int registry_evaluation_insert(struct registry *reg, const struct evaluation_row *row,
			       int64_t *out_id, struct ltv_err *err);
/*
 * Evaluations stored beside model_version, oldest first; every string is
 * owned by the rows; free with evaluation_rows_free. *out_n may be 0.
 */
int registry_evaluations_load(struct registry *reg, int64_t model_version,
			      struct evaluation_row **out_rows, size_t *out_n, struct ltv_err *err);
void evaluation_rows_free(struct evaluation_row *rows, size_t n);

/* ---- drift reports (ltvpipe monitor; src/registry_monitor.c) ---- */

struct monitor_row {
	int64_t id;
	char *created_at;      /* set by insert; filled by load */
	int64_t model_version;
	int64_t as_of;         /* the monitored window ends here */
	int64_t window_days;
	char *status;          /* "ok", "warn" or "alert" */
	double max_psi;        /* NaN when no PSI could be computed */
	char *report;          /* JSON object text (monitor_report_json) */
};

/* Inside a transaction: inserts row (id and created_at ignored); *out_id gets the new id. */
int registry_monitor_insert(struct registry *reg, const struct monitor_row *row, int64_t *out_id,
			    struct ltv_err *err);
/*
 * The latest report stored for model_version into *out (caller releases with
 * monitor_row_release); LTV_ENOTFOUND when there is none.
 */
int registry_monitor_latest(struct registry *reg, int64_t model_version, struct monitor_row *out,
			    struct ltv_err *err);
void monitor_row_release(struct monitor_row *row);

/* ---- A/B experiments (ltvpipe models experiment; src/registry_monitor.c) ---- */

struct experiment_row {
	char name[64];
	int64_t control, candidate; /* model versions of the two arms */
	double share;               /* of users sent to the candidate, in (0, 1) */
	double log_rate;            /* of users whose predictions are logged, in (0, 1] */
	int64_t horizon;            /* the outcome the report judges */
	int64_t min_users;          /* per arm, with a complete outcome, before a test is reported */
	char salt[96];
	char started_at[32];
	int active;                 /* not stopped */
};

/* Inside a transaction; LTV_EINVAL naming the experiment when the name is taken. */
int registry_experiment_insert(struct registry *reg, const struct experiment_row *row,
			       struct ltv_err *err);
/* LTV_ENOTFOUND naming it (and how to list them) when there is none of that name. */
int registry_experiment_get(struct registry *reg, const char *name, struct experiment_row *out,
			    struct ltv_err *err);
/* The active experiment (the latest started, not stopped); LTV_ENOTFOUND when none. */
int registry_experiment_active(struct registry *reg, struct experiment_row *out,
			       struct ltv_err *err);
/* Inside a transaction: stops it; LTV_ENOTFOUND when no active experiment has that name. */
int registry_experiment_stop(struct registry *reg, const char *name, struct ltv_err *err);

struct experiment_prediction {
	char user_id[128];
	int is_candidate;
	int64_t model_version;
	int64_t as_of;
	double age_days;
	double ltv;                 /* at the experiment's horizon */
};

/*
 * Inside a transaction: logs p for experiment (predictions: JSON text of every
 * horizon). A user already logged keeps their first prediction (the report
 * judges each user once, at the age they were first scored).
 */
int registry_experiment_log(struct registry *reg, const char *experiment,
			    const struct experiment_prediction *p, const char *predictions,
			    struct ltv_err *err);
/* Every logged prediction of experiment; free *out_rows with free(). */
int registry_experiment_predictions(struct registry *reg, const char *experiment,
				    struct experiment_prediction **out_rows, size_t *out_n,
				    struct ltv_err *err);

#endif
