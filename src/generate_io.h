/*
 * The output side of the sample generator, private to src/generate*.c:
 * buffered writers that remember the first write error, the hand-written
 * formatting of times, money and user ids (tens of millions of rows go
 * through it), the spool that puts events in time order across users, and the
 * housekeeping of the output directory (created with its parents, checked for
 * free space, cleared of the temporary files of killed runs).
 */
#ifndef LTV_GENERATE_IO_H
#define LTV_GENERATE_IO_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"

#define GEN_OUT_BUF (1 << 18)
#define GEN_LINE_MAX 512 /* longest line the generator ever appends */

/* A buffered output file; a failed write is remembered and reported at close. */
struct gen_out {
	FILE *f;
	const char *path; /* borrowed */
	char *buf;
	size_t len;
	int failed;
	int saved_errno;
};

/* Creates path for writing; LTV_EIO naming it on failure (o is then safe to close). */
int gen_out_open(struct gen_out *o, const char *path, struct ltv_err *err);
void gen_out_flush(struct gen_out *o);
/*
 * Flushes and closes; returns 0 or LTV_EIO naming the path (err may be NULL).
 * Safe on a failed or already closed file; frees the buffer.
 */
int gen_out_close(struct gen_out *o, struct ltv_err *err);

/* A pointer with at least GEN_LINE_MAX bytes of room; commit with gen_out_commit. */
static inline char *gen_out_reserve(struct gen_out *o)
{
	if (o->len + GEN_LINE_MAX > GEN_OUT_BUF)
		gen_out_flush(o);
	return o->buf + o->len;
}

static inline void gen_out_commit(struct gen_out *o, const char *end)
{
	o->len = (size_t)(end - o->buf);
}

/*
 * "YYYY-MM-DDTHH:MM:SSZ" (20 bytes, no NUL) at p; returns the end. The date
 * part is cached per day, since consecutive rows mostly share it; start with
 * day = INT64_MIN. Years must be 0..9999 (generate_param_check sees to it).
 */
struct time_fmt {
	int64_t day;
	char date[11];
};
char *put_time(struct time_fmt *tf, char *p, int64_t ts);
char *put_u64(char *p, uint64_t v);
/* Cents (>= 0) as "D.CC". */
char *put_money(char *p, int64_t cents);
char *put_str(char *p, const char *s);
/* User ids are "u" + at least 8 digits of i, so they sort as generated. */
char *put_user_id(char *p, uint64_t i);

/* One events.csv row: id,time,revenue,event. */
void gen_write_event(struct gen_out *eo, struct time_fmt *tf, const char *id, size_t idlen,
		     int64_t ts, int64_t cents, const char *event);

/*
 * Events in time order across users with bounded memory: events are appended
 * to one of up to 256 buckets by time (whole days each), buckets spill in
 * blocks to one temporary file that is unlinked as soon as it is open (so a
 * killed run leaves nothing behind), and at the end each bucket is read back,
 * sorted and written. Memory is the spill buffers plus the largest bucket.
 * Order: time, then user index, then revenue and event kind, so the output is
 * a function of the events alone, not of the order they were added in.
 */
struct event_spool;

/*
 * Opens a spool for events at times [start_ts, start_ts + n_days days), its
 * temporary file in dir. NULL with LTV_EIO in err when the file cannot be made.
 */
struct event_spool *event_spool_open(const char *dir, int64_t start_ts, int n_days,
				     struct ltv_err *err);
/* Adds one event of user index user (0-based, < 2^32); kind < 8. */
void event_spool_add(struct event_spool *sp, uint64_t user, int64_t ts, int64_t cents,
		     unsigned kind);
/* Nonzero once a spill to the temporary file failed (reported by event_spool_write). */
int event_spool_failed(const struct event_spool *sp);
/*
 * Writes every event to eo in order, names from event_names[kind]. Returns 0,
 * or LTV_EIO when the temporary file could not be written or read back.
 */
int event_spool_write(struct event_spool *sp, struct gen_out *eo,
		      const char *const *event_names, struct ltv_err *err);
/* Accepts NULL. */
void event_spool_free(struct event_spool *sp);

/* mkdir -p: creates dir and missing parents; LTV_EIO if dir is not a directory. */
int gen_make_dirs(const char *dir, struct ltv_err *err);

/*
 * Removes the temporary files that generate runs killed before they finished
 * left in dir (".users.csv.tmp.PID", ".events.csv.tmp.PID",
 * ".events.csv.spool.PID"), those of processes that no longer exist; a live
 * run's files are left alone. Returns how many were removed.
 */
int gen_remove_stale_temps(const char *dir);

/*
 * Bytes free for this process in the file system holding dir, or -1 when it
 * cannot be told.
 */
int64_t gen_free_bytes(const char *dir);

#endif
