/*
 * CSV → in-memory users and user-day aggregates (src/ingest_parse.c): the
 * parse loop of ingest, without SQLite. The ingest stage (pipeline/ingest.c)
 * writes what it produces to the registry; scoring from CSV can use it
 * directly. Validation, rejects (file, line, field, reason) and the
 * max_reject_rate check are the same for both, since they are done here.
 *
 * Use:
 *   struct ingest_parse p;
 *   ingest_parse_init(&p, cfg, shard, on_user, arg);    // shard may be NULL
 *   ingest_parse_open(&p, run_id, err);                  // time parser, rejects file
 *   ingest_parse_known_user(&p, ...)                      // optional: users loaded before
 *   ingest_parse_young_only(&p, as_of, span)              // optional (score): old users' events
 *                                                         // are not aggregated
 *   ingest_parse_file(&p, users_path, INPUT_USERS, ...)  // every users file first,
 *   ingest_parse_file(&p, events_path, INPUT_EVENTS, ...) // then every events file
 *   ingest_parse_user_days(&p, INT64_MIN, &rows, &n);    // (uid, day) rows, key order
 *   ingest_parse_release(&p);
 *
 * Users are numbered 1, 2, ... in the order they are loaded (after the known
 * ones); each valid user is handed to on_user once, with borrowed strings.
 */
#ifndef LTV_INGEST_PARSE_H
#define LTV_INGEST_PARSE_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/input_files.h"
#include "ltv/registry.h"
#include "ltv/shard.h"
#include "ltv/strmap.h"

struct ingest_parse;

/*
 * Called for each valid user row (u->uid is its new uid; strings valid only
 * during the call; line is the row's line in its file). Nonzero stops the
 * file with that code, its message in err.
 */
typedef int (*ingest_user_fn)(void *arg, const struct user_row *u, size_t line,
			      struct ltv_err *err);

typedef int (*ingest_time_parser)(struct ingest_parse *p, const char *s, int64_t *out_ts,
				  int64_t *out_until);

struct ingest_day_agg;
struct user_state;

struct ingest_parse {
	const struct config *cfg;
	const struct shard_spec *shard; /* NULL: every row */
	ingest_user_fn on_user;
	void *on_user_arg;

	/* What was read, for metrics. */
	size_t n_users;             /* users known: loaded before and now */
	int64_t users_loaded, users_rejected, events_loaded, events_rejected;
	int64_t users_other_shards, events_other_shards; /* shard: rows skipped, not rejected */
	int64_t max_event_time;     /* INT64_MIN when no event was loaded */
	size_t users_expected;      /* users known once the users file being read is: an
				     * estimate from its first rows, to size tables once (0: unknown) */
	int64_t refunds, days_floored; /* ingest.negative_revenue: subtract */
	double refunded;
	int subtract_refunds;
	int parse_threads;          /* events files of 1 MB or more: 2 parse on two threads
				     * (run.jobs >= 2, the default on two cores), 1 on this one */
	int resolvers;              /* of those, threads that resolve rows: 1, or 2 for a
				     * caller with nothing else to do meanwhile (score) */
	char *rejects_path;         /* kept only when something was rejected */

	/* Private to src/ingest_parse.c. */
	int64_t young_as_of, young_span; /* ingest_parse_young_only */
	int64_t time_hint;          /* the latest valid time at the events files' ends (INT64_MIN: none) */
	ingest_time_parser parse_time;
	struct tzone *tz;
	struct strmap user_ids;     /* user_id → uid (-1: rejected) */
	int64_t *install_times;     /* by uid: read by the events worker, never written then */
	struct user_state *latest;  /* by uid: the user's latest aggregate, the applier's only */
	size_t cap_install_times, cap_latest;
	struct ingest_day_agg *days;
	size_t n_days, cap_days;
	char time_date[10];         /* the last event date parsed, and its midnight */
	int64_t time_date_ts;
	FILE *rejects;
	char first_reject[512];
};

void ingest_parse_init(struct ingest_parse *p, const struct config *cfg,
		       const struct shard_spec *shard, ingest_user_fn on_user, void *on_user_arg);

/*
 * Reads columns.time_format and ingest.* (timezone, negative_revenue) and
 * creates the rejects file ingest.rejects_dir/RUN_ID.rejects.csv.
 */
int ingest_parse_open(struct ingest_parse *p, const char *run_id, struct ltv_err *err);

/*
 * Score (cli/score.c): the caller will ask only for the days of users
 * installed at or after as_of - span (ingest_parse_user_days), as_of being
 * the latest event time when INT64_MIN; span > 0 seconds. Events of users
 * older than that are then validated, counted and rejected as ever, but not
 * aggregated: at 1,000,000 users by time that is two events in three. To
 * skip them from the start of a file ordered by time, each events file's
 * last rows are read first for its latest time. Call before the first file.
 */
void ingest_parse_young_only(struct ingest_parse *p, int64_t as_of, int64_t span);

/*
 * 1 when the events skipped under ingest_parse_young_only were all old
 * users': always, unless a file's last lines were not what its read found
 * (a quote left open above them); then the caller must read the files again
 * without ingest_parse_young_only. Ask after the last file.
 */
int ingest_parse_young_exact(const struct ingest_parse *p);

/* A user loaded before (uid = n_users + 1 in order), so new events can find it. */
void ingest_parse_known_user(struct ingest_parse *p, const char *user_id, int64_t uid,
			     int64_t install_time);

/*
 * Reads one users or events file (plain or gzip; input.delimiter): every bad
 * row is rejected with its reason, and the file fails when more than
 * ingest.max_reject_rate of its rows were. *out_rows and *out_rejected count
 * the rows of this shard.
 */
int ingest_parse_file(struct ingest_parse *p, const char *path, enum input_kind kind,
		      int64_t *out_rows, int64_t *out_rejected, struct ltv_err *err);
/*
 * The same, also writing the file's content hash into out_hash (HASH_HEX_LEN
 * bytes), exactly hash_file_hex's, taken from the bytes the parse reads as it
 * reads them (csv_reader_hash_raw) instead of a read of its own.
 */
int ingest_parse_file_hashed(struct ingest_parse *p, const char *path, enum input_kind kind,
			     int64_t *out_rows, int64_t *out_rejected, char *out_hash,
			     struct ltv_err *err);

/*
 * The user-days of every event read, one row per (uid, day) in key order,
 * revenue floored at 0 under negative_revenue: subtract; only those of the
 * users installed at or after installed_since (INT64_MIN: every user's; score
 * builds rows only for users younger than its longest horizon, and most of a
 * file's user-days are older users'). The caller frees *out_rows. Call once,
 * after the last file: it frees the id map, so no file can be read after it.
 */
void ingest_parse_user_days(struct ingest_parse *p, int64_t installed_since,
			    struct user_day_row **out_rows, size_t *out_n);

/*
 * The same rows for every user (installed_since INT64_MIN), in a block made
 * from the pages of the id map's table and then of the n_spare blocks given
 * (include/ltv/mapped_block.h; they are the block's after): its rows are
 * out_rows->p, and the caller releases it with mapped_block_release. For
 * ingest, whose tail waited on the kernel zeroing the rows' fresh pages.
 */
struct mapped_block;
struct mapped_piece;
void ingest_parse_user_days_mapped(struct ingest_parse *p, const struct mapped_piece *spare,
				   size_t n_spare, struct mapped_block *out_rows, size_t *out_n);

/* Closes the rejects file (removed when nothing was rejected) and frees p's contents. */
void ingest_parse_release(struct ingest_parse *p);

#endif
