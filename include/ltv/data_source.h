/*
 * Where the users and their user-days a feature frame is built from come
 * from: a registry (what ingest stored), or memory (the same rows, read
 * from CSV files by ingest without a registry: `score --users F --events F`).
 * The feature builder reads either through these three calls, so training
 * and scoring share one builder whatever holds the data.
 */
#ifndef LTV_DATA_SOURCE_H
#define LTV_DATA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/registry.h"

/* Slots of the cache of strings users share (app, campaign, attributes). */
#define USER_DATA_SHARED_SLOTS 1024

/*
 * Users and user-days held in memory, as the ingest stage would have stored
 * them. The users' strings live in blocks of text the struct owns (a million
 * users are four million strings: one malloc each cost more than reading
 * them), so release it with user_data_release, never user_table_release.
 * Users with the same app, campaign or attributes may share one copy of it:
 * the strings are read-only.
 */
struct user_data {
	struct user_table users;     /* uid = index + 1, in input order */
	size_t cap_users;
	struct user_day_row *days;   /* (uid, day) order, one row per (uid, day) */
	size_t n_days;
	int64_t max_event_time;      /* INT64_MIN: no event */
	char **blocks;               /* the users' strings */
	size_t n_blocks, block_used, block_size;
	char *shared[USER_DATA_SHARED_SLOTS]; /* strings kept once for many users, in the blocks */
};

/* An empty struct: no users, no days, no event. */
void user_data_init(struct user_data *u);
/* Appends a copy of u (its uid must be users.n + 1: ingest numbers users 1, 2, ...). */
void user_data_add_user(struct user_data *ud, const struct user_row *u);
/*
 * Room for n users in all, allocated at once: growing a million users' seven
 * columns by doubling copied them and took twice their pages, fresh ones
 * (README "Threads and performance", fewer fresh pages).
 */
void user_data_reserve(struct user_data *ud, size_t n);
void user_data_release(struct user_data *u);
/*
 * Frees the user-days alone, once the frames that read them are built: the
 * users and max_event_time stay. A frame built after it sees users without
 * events.
 */
void user_data_release_days(struct user_data *u);
/*
 * Frees the users' columns that only a frame reads (app, campaign, cost,
 * attributes: their arrays, set to NULL; the strings stay where they are),
 * once the frames are built; user ids, uids and install times stay. Score
 * does it before the models predict, whose memory then reuses those pages
 * (4 x 8 MB at 1,000,000 users). No frame can be built from u after it.
 */
void user_data_release_frame_columns(struct user_data *u);
/*
 * What a registry's ingest stored (every user, the latest event time, and
 * the user-days of the users installed at or after installed_since;
 * INT64_MIN: all) read into *out once, for work that builds many frames from
 * the same data (monitor's weekly cohorts): data_source_memory(out) then
 * builds, at any as_of, the frames the registry itself would give, in every
 * row of a user installed since installed_since (an earlier user's row reads
 * as a user without events). Release with user_data_release (done here on
 * failure).
 */
int user_data_load(struct registry *reg, int64_t installed_since, struct user_data *out,
		   struct ltv_err *err);

/* Exactly one of reg and mem is set. */
struct data_source {
	struct registry *reg;
	const struct user_data *mem;
};

static inline struct data_source data_source_registry(struct registry *reg)
{
	return (struct data_source){ .reg = reg, .mem = NULL };
}

static inline struct data_source data_source_memory(const struct user_data *mem)
{
	return (struct data_source){ .reg = NULL, .mem = mem };
}

/*
 * The users in uid order: *out points at the memory's table, or at *owned,
 * loaded from the registry (release *owned with user_table_release whatever
 * this returns; it is zeroed first).
 */
int data_source_users(const struct data_source *s, struct user_table *owned,
		      const struct user_table **out, struct ltv_err *err);

/* Every user-day in (uid, day) order to fn, as registry_user_days_each. */
int data_source_user_days_each(const struct data_source *s, user_day_fn fn, void *ctx,
			       struct ltv_err *err);

/*
 * data_source_users, then data_source_user_days_each, but a user-day whose
 * uid is not a user's is an error, never dropped (registry_users_and_days:
 * LTV_EREGISTRY; from memory, LTV_EINTERNAL); from a registry, the two are read
 * at once on `threads` threads (registry_users_and_days: fn may read the
 * columns of users 1..uid, never (*out)->n, till this returns).
 */
int data_source_users_and_days(const struct data_source *s, int threads, struct user_table *owned,
				const struct user_table **out, user_day_fn fn, void *ctx,
				struct ltv_err *err);

/*
 * At least as many user-days as data_source_users_and_days passes to fn
 * (registry_user_days_bound; from memory, the days held), or 0 when the
 * registry cannot say: a size to reserve, never a limit.
 */
size_t data_source_user_days_bound(const struct data_source *s);

/* The latest event time ingested; LTV_ENOTFOUND when there is none. */
int data_source_max_event_time(const struct data_source *s, int64_t *out, struct ltv_err *err);

#endif
