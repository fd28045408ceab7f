/*
 * Synthetic sample data in the shape of DESIGN.md "Data in" (users.csv and
 * events.csv), modelled on mobile user acquisition: four apps with different
 * monetisation (IAP with whales, a subscription, a shop), dozens of campaigns
 * whose names (network_country_platform_theme_period) partly predict their
 * quality and cost, users whose early engagement predicts their value, and
 * activity that decays after install. `ltvpipe generate` writes it; tests and
 * benchmarks use it because its structure is known.
 *
 * Output is a pure function of (seed, n_users, start_date, span_days,
 * follow_days, n_campaigns, order): the same bytes on every run and machine
 * with an IEEE 754 libm. Each user draws from its own random stream, so the
 * work can be split by user without changing a byte. The order only moves
 * events.csv rows: both orders hold the same rows.
 */
#ifndef LTV_GENERATE_H
#define LTV_GENERATE_H

#include <stdint.h>

#include "ltv/common.h"

/*
 * Row order of events.csv. USER: each user's events together, users in id
 * order, as a per-user log would be. TIME: ordered by event time across users
 * (ties by user id), as an export from an events table is: users interleave.
 */
enum generate_order { GENERATE_ORDER_USER, GENERATE_ORDER_TIME };

struct generate_param {
	uint64_t n_users;       /* rows of users.csv, 1 .. 1e9 */
	uint64_t seed;
	const char *start_date; /* "YYYY-MM-DD" (UTC) of the first install; borrowed */
	int span_days;          /* installs are spread over [start, start + span) */
	int follow_days;        /* events continue this many days past the span */
	int n_campaigns;        /* 0: the seed picks 48-72; else 8 .. 1000 */
	enum generate_order order;
};

/*
 * Defaults: 20,000 users, seed 42, installs over 240 days from 2025-01-01 and
 * events followed 7 days past that, per-user order, so the oldest cohorts are mature for 90
 * days and more and the newest are a few days old.
 */
void generate_param_init(struct generate_param *p);

/* NULL when p is usable, else a static string saying which field is wrong and why. */
const char *generate_param_check(const struct generate_param *p);

struct generate_stats {
	uint64_t n_users;
	uint64_t n_events;
	uint64_t n_payers;      /* users with revenue > 0 in the file */
	double total_revenue;   /* sum of events.csv revenue */
	double total_cost;      /* sum of users.csv cost (empty cells count 0) */
	int n_campaigns;        /* distinct campaigns in users.csv */
	int n_apps;
	char span_start[21];    /* "YYYY-MM-DDTHH:MM:SSZ": installs start here */
	char data_end[21];      /* no event is at or after this time */
	int stale_removed;      /* temporary files of killed runs removed from out_dir */
};

/*
 * Writes out_dir/users.csv and out_dir/events.csv (out_dir and its parents
 * are created when missing). Both are written under temporary names and
 * renamed only when complete, so a failure (a full disk included) leaves any
 * previous files as they were and no partial ones; temporary files that a
 * killed run left in out_dir are removed first. Refuses, before any work, a
 * sample that cannot fit in the free space of out_dir. Memory stays bounded
 * whatever n_users is: in time order, by a spill buffer and the events of the
 * busiest day (spooled through an unlinked temporary file in out_dir).
 * out_stats may be NULL. Returns 0, LTV_EINVAL for bad parameters, or LTV_EIO
 * with err naming the path at fault.
 */
int generate_sample(const struct generate_param *p, const char *out_dir,
		    struct generate_stats *out_stats, struct ltv_err *err);

#endif
