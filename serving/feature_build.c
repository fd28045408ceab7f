/*
 * Base features and encodings (contract in include/ltv/feature_build.h).
 * The leakage rules live here, once, for training and scoring alike:
 *  - a user-day is read only when the whole day is complete at as_of
 *    (install + (day + 1) days <= as_of), so nothing after as_of is seen;
 *  - a row describes the user at an age s (window_days) and its features read
 *    only days d < s; a label ltv_H exists only for a user mature at H
 *    (install + H days <= as_of), NaN otherwise.
 * Training rows are (user, snapshot age) pairs; scoring rows are one per user
 * at the age they have (DESIGN.md "Time, windows and labels").
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/data_source.h"
#include "ltv/model_data.h"
#include "ltv/feature_build.h"
#include "ltv/feature_params.h"
#include "ltv/hash.h"
#include "ltv/shard.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#define MAX_HORIZONS 16
#define MAX_SNAPSHOTS 32
#define ENCODINGS_MAGIC "LTVENCD1"
#define ATTR_ENCODINGS_MAGIC "LTVATTR1"
/* Days counted as "recent" by rev_last7 and events_last7_share. */
#define RECENT_DAYS 7

/*
 * One complete user-day, as ingest aggregated it: 24 bytes, where five
 * 8-byte fields took 40 (at 1,000,000 users the three million user-days
 * were held beside the whole frame; collect_user_day refuses a value that
 * does not fit, so every value is the one stored).
 */
struct day_rec {
	double revenue;
	uint32_t uid;
	int32_t day;
	uint32_t events, purchases;
};

struct base_run {
	const struct config *cfg;
	int64_t as_of;
	enum feature_rows mode;
	const struct user_table *users; /* the source's, or owned_users */
	struct user_table owned_users;
	const struct shard_spec *cohorts; /* NULL: every cohort */
	int64_t *age_of_uid;    /* uid - 1 → whole days complete at as_of; -1: installed after */
	size_t n_aged, cap_aged; /* age_of_uid's users so far (ages_upto), its room */
	int64_t younger_than;   /* rows only for users younger (FEATURE_ROWS_AT_AGE); INT64_MAX: all */
	struct day_rec *days;   /* complete days, grouped by uid in day order */
	size_t n_days, cap_days;
	int days_unsorted;      /* a day came before the one kept last (collect_user_day) */
	/*
	 * uid - 1 → index of its first day in days; [n] = n_days (group_days).
	 * Until then first_day[uid] counts user uid's days as they come, so
	 * that group_days need not pass over the days (72 MB at 1,000,000 users).
	 */
	size_t *first_day;
	size_t cap_first_day;
	size_t *first_row;      /* uid - 1 → its first frame row; [n] = rows (not held-out rows) */
	uint64_t *hash_of_uid;  /* uid - 1 → user_hash of its user_id (the strings go before the frame) */
	struct feature_base_stats stats;
	struct ltv_err *err;    /* collect_user_day's refusal */
	struct populate *fresh; /* faulting days in (reserve_days), stopped before they move */
};

/* The frame columns a row fills. */
struct row_cols {
	double *uid, *install, *age, *window, *weight, *user_rep;
	double *rev_window, *rev_d0, *rev_max, *purchases, *events, *events_d0, *active;
	double *engagement, *first_purchase, *purchase_days, *since_purchase, *since_active;
	double *rev_per_purchase_day, *rev_last7, *events_last7_share;
	double *cost, *rev_to_date, *repeat_days_to_date, *last_repeat_day_to_date;
	double *ltv[MAX_HORIZONS];
	double *held_out_h, *held_out_k; /* FEATURE_ROWS_HELD_OUT only */
	size_t base; /* the frame row the columns' element 0 holds (fill_packed_rows' blocks) */
};

/* Days complete at as_of since install: day d is readable iff d < this. */
static int64_t complete_days(int64_t install, int64_t as_of)
{
	return time_day_index(install, as_of);
}

/* User u's (uid - 1) whole days complete at as_of; -1: installed after as_of, or another shard's. */
static int64_t user_age(const struct base_run *br, size_t u)
{
	const struct user_table *t = br->users;

	assert(t->uid[u] == (int64_t)u + 1); /* the registry numbers users 1..n */
	/* Another shard's cohort: read like a user not yet installed, so never. */
	if (t->install_time[u] > br->as_of ||
	    (br->cohorts && !shard_keeps_cohort(br->cohorts, t->app_id[u], t->campaign[u])))
		return -1;
	return complete_days(t->install_time[u], br->as_of);
}

/*
 * age_of_uid up to user n - 1, as the users come: the user-days are read
 * while the users still are (data_source_users_and_days), so a user's age is
 * worked out when its first user-day, or the end of the reading, asks.
 */
static void ages_upto(struct base_run *br, size_t n)
{
	if (n <= br->n_aged)
		return;
	ARRAY_GROW_HUGE(br->age_of_uid, n, br->cap_aged);
	ARRAY_GROW_HUGE(br->first_day, n + 1, br->cap_first_day);
	if (br->n_aged == 0)
		br->first_day[0] = 0;
	for (; br->n_aged < n; br->n_aged++) {
		br->age_of_uid[br->n_aged] = user_age(br, br->n_aged);
		br->first_day[br->n_aged + 1] = 0;
	}
}

static int compare_day_rec(const void *a, const void *b)
{
	const struct day_rec *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return (x->day > y->day) - (x->day < y->day);
}

/*
 * Collects the complete days of users installed by as_of; counts the rest.
 * uid is a user's, read already (data_source_users_and_days).
 */
static int collect_user_day(void *opaque, int64_t uid, int64_t day, double revenue,
			    int64_t events, int64_t purchases)
{
	struct base_run *br = opaque;

	ages_upto(br, (size_t)uid);
	if (br->age_of_uid[uid - 1] < 0 || br->age_of_uid[uid - 1] >= br->younger_than)
		return 0;
	if (day >= br->age_of_uid[uid - 1]) {
		br->stats.user_days_after_as_of++;
		return 0;
	}
	if ((uint64_t)uid > UINT32_MAX || day < 0 || day > INT32_MAX || events < 0 ||
	    (uint64_t)events > UINT32_MAX || purchases < 0 || (uint64_t)purchases > UINT32_MAX)
		return err_set(br->err, LTV_EINVAL, "user-day (uid %lld, day %lld) has %lld events "
			       "and %lld purchases: features counts up to %u users, events and "
			       "purchases a day; split the users into shards (--shard)",
			       (long long)uid, (long long)day, (long long)events,
			       (long long)purchases, UINT32_MAX);
	br->stats.user_days_read++;
	if (br->n_days + 1 > br->cap_days && br->fresh)
		populate_stop(br->fresh); /* more days than the bound: the room moves */
	ARRAY_GROW_HUGE(br->days, br->n_days + 1, br->cap_days); /* 72 MB at 1,000,000 users */
	br->days[br->n_days++] = (struct day_rec){ .revenue = revenue, .uid = (uint32_t)uid,
						   .day = (int32_t)day, .events = (uint32_t)events,
						   .purchases = (uint32_t)purchases };
	br->first_day[uid]++;
	/*
	 * Checked here, against the day kept last, still in the cache: a pass
	 * over the days in group_days was 0.07 s of the stage's one thread.
	 */
	if (br->n_days > 1 && compare_day_rec(&br->days[br->n_days - 2], &br->days[br->n_days - 1]) > 0)
		br->days_unsorted = 1;
	return 0;
}

/*
 * Users read from memory (score --users F): their count is known, so the
 * ages get their room at once (and the days theirs, reserve_days).
 */
static void reserve_for_memory(struct base_run *br, const struct user_data *mem)
{
	br->users = &mem->users;
	ages_upto(br, mem->users.n);
}

/*
 * Room for the source's user-days at once (n: data_source_user_days_bound).
 * Grown by doubling, the ages and the days took turns at the heap's top and
 * each doubling copied the days read so far into fresh pages (72 MB of them
 * at 1,000,000 users). The days kept are at most n; group_days gives the
 * rest back. With fresh, the room is faulted in on a thread of its own
 * while the days are decoded into it (populate_start): in a cold run at
 * 1,000,000 users the decoder ran alone for 0.3 s after the users' readers
 * were done, with the kernel zeroing its fresh pages in 60% of its samples
 * (perf), while the other core was idle. The caller stops fresh before the
 * days are moved or freed (collect_user_day before it grows them), so it is
 * pinned (populate_start_pinned: no mmap_lock held while it faults).
 */
static void reserve_days(struct base_run *br, size_t n, struct populate *fresh)
{
	if (n == 0)
		return;
	ARRAY_GROW_HUGE(br->days, n, br->cap_days);
	if (!fresh)
		return;
	populate_add(fresh, br->days, n * sizeof(*br->days));
	br->fresh = fresh;
	populate_start_pinned(fresh);
}

/*
 * Groups the collected days by uid in day order and sets first_day offsets;
 * every user's age is worked out (ages_upto), so first_day has its n + 1.
 */
static void group_days(struct base_run *br)
{
	assert(br->n_aged >= br->users->n);
	if (br->days_unsorted) /* the registry streams in (uid, day) order; this keeps us right if not */
		qsort(br->days, br->n_days, sizeof(*br->days), compare_day_rec);
	/* The doubling's slack back before the frame is allocated beside the days. */
	br->days = xrealloc(br->days, (br->n_days ? br->n_days : 1) * sizeof(*br->days));
	br->cap_days = br->n_days ? br->n_days : 1;
	/* first_day[u + 1] counts user u's days (collect_user_day), then a prefix sum makes offsets. */
	for (size_t u = 0; u < br->users->n; u++)
		br->first_day[u + 1] += br->first_day[u];
}

/* A stable pseudo-random number of a user id (FNV-1a), for the row sample. */
static uint64_t user_hash(const char *user_id)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)user_id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static void add_row_columns(const struct config *cfg, struct frame *f, struct row_cols *c)
{
	c->base = 0;
	c->uid = frame_add_column(f, "uid");
	c->install = frame_add_column(f, "install_time");
	c->age = frame_add_column(f, "age_days");
	c->window = frame_add_column(f, "window_days");
	c->weight = frame_add_column(f, "weight");
	c->user_rep = frame_add_column(f, "user_rep");
	c->rev_window = frame_add_column(f, "rev_window");
	c->rev_d0 = frame_add_column(f, "rev_d0");
	c->rev_max = frame_add_column(f, "rev_max_day");
	c->purchases = frame_add_column(f, "purchases_window");
	c->events = frame_add_column(f, "events_window");
	c->events_d0 = frame_add_column(f, "events_d0");
	c->active = frame_add_column(f, "active_days_window");
	c->engagement = frame_add_column(f, "engagement");
	c->first_purchase = frame_add_column(f, "first_purchase_day");
	c->purchase_days = frame_add_column(f, "purchase_days");
	c->since_purchase = frame_add_column(f, "days_since_purchase");
	c->since_active = frame_add_column(f, "days_since_active");
	c->rev_per_purchase_day = frame_add_column(f, "rev_per_purchase_day");
	c->rev_last7 = frame_add_column(f, "rev_last7");
	c->events_last7_share = frame_add_column(f, "events_last7_share");
	c->cost = frame_add_column(f, "cost");
	c->rev_to_date = frame_add_column(f, "rev_to_date");
	c->repeat_days_to_date = frame_add_column(f, "repeat_days_to_date");
	c->last_repeat_day_to_date = frame_add_column(f, "last_repeat_day_to_date");
	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		char name[32];

		label_name(cfg->features.horizons.v[h], name, sizeof(name));
		c->ltv[h] = frame_add_column(f, name);
	}
}

static void add_held_out_columns(struct frame *f, struct row_cols *c)
{
	c->held_out_h = frame_add_column(f, "held_out_h");
	c->held_out_k = frame_add_column(f, "held_out_k");
}

/*
 * Row `row` = user u (0-based) seen at age s: its features read days d < s
 * only; labels are the user's at as_of, the same on each of its rows. The
 * history to date (rev_to_date, BTYD's x and t_x) and age_days are the
 * user's at as_of, or, with at_s (held-out rows), at age s: what a scoring
 * frame built at the pseudo as_of install + s days holds.
 */
static void fill_row_at(const struct base_run *br, const struct row_cols *c, size_t row, size_t u,
			int64_t s, double weight, int user_rep, int at_s)
{
	const struct config *cfg = br->cfg;
	const struct day_rec *d = br->days + br->first_day[u];
	const size_t n = br->first_day[u + 1] - br->first_day[u];
	const int64_t age = at_s ? s : br->age_of_uid[u];
	const int64_t mature_age = br->age_of_uid[u];
	const size_t at = row - c->base;
	double rev = 0, rev_d0 = 0, rev_max = 0, purchases = 0, events = 0, events_d0 = 0;
	double active = 0, purchase_days = 0, first_purchase = NAN, last_purchase = NAN;
	double last_active = NAN, rev_last7 = 0, events_last7 = 0, rev_to_date = 0;
	double repeat_days = 0, last_repeat = 0;
	double ltv[MAX_HORIZONS] = { 0 };

	for (size_t i = 0; i < n; i++) {
		const struct day_rec *r = &d[i];

		if (!at_s || r->day < s)
			rev_to_date += r->revenue;
		/* BTYD's history at as_of: day 0 is the acquisition, later paying days repeat it. */
		if (r->day >= 1 && r->revenue > 0 && (!at_s || r->day < s)) {
			repeat_days += 1;
			last_repeat = (double)r->day;
		}
		for (size_t h = 0; h < cfg->features.horizons.n; h++)
			if (r->day < cfg->features.horizons.v[h])
				ltv[h] += r->revenue;
		if (r->day >= s)
			continue;
		rev += r->revenue;
		purchases += r->purchases;
		events += r->events;
		active += 1;
		last_active = (double)r->day;
		rev_max = fmax(rev_max, r->revenue);
		if (r->day == 0) {
			rev_d0 += r->revenue;
			events_d0 += r->events;
		}
		if (r->revenue > 0) {
			purchase_days += 1;
			last_purchase = (double)r->day;
			if (isnan(first_purchase))
				first_purchase = (double)r->day;
		}
		if (r->day >= s - RECENT_DAYS) {
			rev_last7 += r->revenue;
			events_last7 += r->events;
		}
	}
	c->uid[at] = (double)br->users->uid[u];
	c->install[at] = (double)br->users->install_time[u];
	c->age[at] = (double)age;
	c->window[at] = (double)s;
	c->weight[at] = weight;
	c->user_rep[at] = user_rep;
	c->rev_window[at] = rev;
	c->rev_d0[at] = rev_d0;
	c->rev_max[at] = rev_max;
	c->purchases[at] = purchases;
	c->events[at] = events;
	c->events_d0[at] = events_d0;
	c->active[at] = active;
	/* Events per observed day, damped by log so one burst does not dominate. */
	c->engagement[at] = s > 0 ? log1p(events) * active / (double)s : 0;
	c->first_purchase[at] = first_purchase;
	c->purchase_days[at] = purchase_days;
	/* Recency as BTYD reads it: whole days between the last one and the last complete day. */
	c->since_purchase[at] = isnan(last_purchase) ? NAN : (double)(s - 1) - last_purchase;
	c->since_active[at] = isnan(last_active) ? (double)s : (double)(s - 1) - last_active;
	c->rev_per_purchase_day[at] = purchase_days > 0 ? rev / purchase_days : NAN;
	c->rev_last7[at] = rev_last7;
	c->events_last7_share[at] = events > 0 ? events_last7 / events : NAN;
	c->cost[at] = br->users->cost[u];
	c->rev_to_date[at] = rev_to_date;
	c->repeat_days_to_date[at] = repeat_days;
	c->last_repeat_day_to_date[at] = last_repeat;
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		c->ltv[h][at] = mature_age >= cfg->features.horizons.v[h] ? ltv[h] : NAN;
}

static void fill_row(const struct base_run *br, const struct row_cols *c, size_t row, size_t u,
		     int64_t s, double weight, int user_rep)
{
	fill_row_at(br, c, row, u, s, weight, user_rep, 0);
}

/* Revenue of a user's days d < limit. */
static double revenue_before(const struct base_run *br, size_t u, int64_t limit)
{
	double sum = 0;

	for (size_t i = br->first_day[u]; i < br->first_day[u + 1]; i++)
		if (br->days[i].day < limit)
			sum += br->days[i].revenue;
	return sum;
}

/*
 * The snapshot ages a training user contributes rows at: s <= age (the days
 * before s are complete) and s < the longest horizon. A user not mature at the
 * first horizon carries no label and contributes none.
 */
static size_t eligible_snapshots(const struct base_run *br, size_t u, int64_t *out)
{
	const struct int_list *snap = &br->cfg->features.snapshots, *hz = &br->cfg->features.horizons;
	const int64_t age = br->age_of_uid[u];
	size_t n = 0;

	if (age < hz->v[0])
		return 0;
	for (size_t k = 0; k < snap->n && n < MAX_SNAPSHOTS; k++)
		if (snap->v[k] <= age && snap->v[k] < hz->v[hz->n - 1])
			out[n++] = snap->v[k];
	return n;
}

/*
 * Training rows: every snapshot of a user who has revenue before the longest
 * horizon they are mature at; one snapshot, chosen by a hash of the user id and
 * weighted by the number of snapshots, for a user who has none (their rows
 * differ only in activity features and all have target 0). Training cost then
 * grows with payers, not with snapshots x users, and weighted sums over rows
 * are unbiased for the full set. Returns user u's number of rows and, when c,
 * fills them from frame row `row`.
 */
static size_t snapshot_user_rows(const struct base_run *br, const struct row_cols *c, size_t row,
				 size_t u)
{
	const struct int_list *hz = &br->cfg->features.horizons;
	int64_t snaps[MAX_SNAPSHOTS];
	size_t n = eligible_snapshots(br, u, snaps);
	int64_t horizon = 0;

	if (n == 0)
		return 0;
	for (size_t h = 0; h < hz->n; h++)
		if (br->age_of_uid[u] >= hz->v[h])
			horizon = hz->v[h];
	if (revenue_before(br, u, horizon) > 0) {
		for (size_t k = 0; k < n && c; k++)
			fill_row(br, c, row + k, u, snaps[k], 1.0, k == 0);
		return n;
	}
	if (c)
		fill_row(br, c, row, u, snaps[br->hash_of_uid[u] % n], (double)n, 1);
	return 1;
}

/* Scoring rows: each user installed by as_of, once, at the age they have. */
static size_t age_user_rows(const struct base_run *br, const struct row_cols *c, size_t row,
			    size_t u)
{
	if (br->age_of_uid[u] < 0 || br->age_of_uid[u] >= br->younger_than)
		return 0;
	if (c)
		fill_row(br, c, row, u, br->age_of_uid[u], 1.0, 1);
	return 1;
}

/*
 * Held-out rows (DESIGN.md "Time, windows and labels"): for each horizon H,
 * the validation users at H (feature_params_split) seen as `score` would see
 * them at pseudo as_of dates T'_k = as_of - H days + k * validation_days
 * days, k = 0, 1, ...: a user installed at i is a row at its real age
 * s = whole days from i to T'_k while s < H, read as a scoring frame built
 * at T'_k reads it (days d < s, history to date at s), with its actual
 * ltv_H from as_of. Every validation install period of validation_days
 * days is then seen at every age below H once, as the users an evaluation
 * scores are. T'_k < install + H <= as_of, so nothing after as_of is read.
 * Columns held_out_h (H) and held_out_k (k) name the row's horizon and
 * pseudo as_of. When a horizon has more than FEATURE_HELD_OUT_MAX_ROWS rows,
 * users are kept by a hash of their id (all of a user's rows or none), so
 * the stages that judge on them keep a bounded cost.
 */
static int held_out_user(const struct base_run *br, const struct feature_params *p, size_t u,
			 int64_t horizon)
{
	return br->age_of_uid[u] >= 0 &&
	       feature_params_split(p, br->as_of, horizon, (double)br->age_of_uid[u],
				    (double)br->users->install_time[u]) == SPLIT_VALID;
}

/* The pseudo as_of T'_k of horizon index h, or 0 past the last one (T'_k >= as_of). */
static int64_t held_out_as_of(const struct base_run *br, const struct feature_params *p,
			      int64_t horizon, int64_t k)
{
	const int64_t step = (p->validation_days > 0 ? p->validation_days : 1) * SECONDS_PER_DAY;
	const int64_t t = br->as_of - horizon * SECONDS_PER_DAY + k * step;

	return t < br->as_of ? t : 0;
}

static size_t held_out_user_rows(const struct base_run *br, const struct row_cols *c, size_t row,
				 const struct feature_params *p, size_t u, int64_t horizon)
{
	size_t n = 0;

	for (int64_t k = 0;; k++) {
		const int64_t t = held_out_as_of(br, p, horizon, k);
		int64_t s;

		if (t == 0)
			break;
		s = complete_days(br->users->install_time[u], t);
		if (s >= horizon)
			break;
		if (c) {
			fill_row_at(br, c, row + n, u, s, 1.0, 1, 1);
			c->held_out_h[row + n] = (double)horizon;
			c->held_out_k[row + n] = (double)k;
		}
		n++;
	}
	return n;
}

static size_t held_out_rows(const struct base_run *br, const struct row_cols *c)
{
	struct feature_params p;
	size_t row = 0;

	feature_params_from_config(br->cfg, br->as_of, &p);
	for (size_t h = 0; h < p.horizons.n; h++) {
		const int64_t horizon = p.horizons.v[h];
		size_t total = 0;
		uint64_t keep_below = UINT64_MAX;

		for (size_t u = 0; u < br->users->n; u++)
			if (held_out_user(br, &p, u, horizon))
				total += held_out_user_rows(br, NULL, 0, &p, u, horizon);
		if (total > FEATURE_HELD_OUT_MAX_ROWS)
			keep_below = (uint64_t)((double)UINT64_MAX *
						((double)FEATURE_HELD_OUT_MAX_ROWS / (double)total));
		for (size_t u = 0; u < br->users->n; u++)
			if (held_out_user(br, &p, u, horizon) &&
			    br->hash_of_uid[u] <= keep_below)
				row += held_out_user_rows(br, c, row, &p, u, horizon);
	}
	feature_params_release(&p);
	return row;
}

/*
 * The number of rows of br's mode. Snapshot and scoring rows are numbered
 * user by user, so their first row per user is kept (br->first_row) for
 * fill_mode_rows.
 */
static size_t count_mode_rows(struct base_run *br)
{
	size_t (*user_rows)(const struct base_run *, const struct row_cols *, size_t, size_t) =
		br->mode == FEATURE_ROWS_SNAPSHOTS ? snapshot_user_rows : age_user_rows;

	if (br->mode == FEATURE_ROWS_HELD_OUT)
		return held_out_rows(br, NULL);
	br->first_row = xmalloc((br->users->n + 1) * sizeof(size_t));
	br->first_row[0] = 0;
	/* Each user's count is its own, so they are counted in parallel, then summed in order. */
#pragma omp parallel for num_threads(config_jobs(br->cfg)) schedule(static)
	for (size_t u = 0; u < br->users->n; u++)
		br->first_row[u + 1] = user_rows(br, NULL, 0, u);
	for (size_t u = 0; u < br->users->n; u++)
		br->first_row[u + 1] += br->first_row[u];
	return br->first_row[br->users->n];
}

/*
 * Fills the rows count_mode_rows counted. Snapshot and scoring rows are
 * filled in parallel over users: each user's rows are its own (first_row),
 * and a row's values depend on nothing but its user, so the frame is the
 * same whatever the threads.
 */
static void fill_mode_rows(const struct base_run *br, const struct row_cols *c)
{
	size_t (*user_rows)(const struct base_run *, const struct row_cols *, size_t, size_t) =
		br->mode == FEATURE_ROWS_SNAPSHOTS ? snapshot_user_rows : age_user_rows;
	const size_t n = br->users->n;

	if (br->mode == FEATURE_ROWS_HELD_OUT) {
		held_out_rows(br, c);
		return;
	}
#pragma omp parallel for num_threads(config_jobs(br->cfg)) schedule(dynamic, 1024)
	for (size_t u = 0; u < n; u++)
		if (br->first_row[u + 1] > br->first_row[u])
			user_rows(br, c, br->first_row[u], u);
}

/* Frame rows per block of fill_packed_rows: 35 columns of them are 9 MB, reused block after block. */
#define PACK_BLOCK_ROWS 32768

/* Users first..(return) - 1 hold at most PACK_BLOCK_ROWS rows (a user has at most MAX_SNAPSHOTS). */
static size_t block_end(const struct base_run *br, size_t first)
{
	size_t u = first;

	while (u < br->users->n && br->first_row[u + 1] - br->first_row[first] <= PACK_BLOCK_ROWS)
		u++;
	return u;
}

/* Users first..last - 1's rows into blk (row first_row[first] at 0), with their code columns. */
static void fill_block(const struct base_run *br, struct row_cols *c, size_t first, size_t last,
		       double *const *code_cols, const int32_t *const *codes, size_t n_codes)
{
	c->base = br->first_row[first];
#pragma omp parallel for num_threads(config_jobs(br->cfg)) schedule(dynamic, 1024)
	for (size_t u = first; u < last; u++) {
		if (br->first_row[u + 1] == br->first_row[u])
			continue;
		snapshot_user_rows(br, c, br->first_row[u], u);
		for (size_t k = 0; k < n_codes; k++)
			for (size_t i = br->first_row[u]; i < br->first_row[u + 1]; i++)
				code_cols[k][i - c->base] = codes[k][u] >= 0 ? (double)codes[k][u] : 0;
	}
}

/*
 * The snapshot rows (fill_mode_rows) and their code columns (codes_to_rows,
 * n_codes of them named code_names, codes by uid - 1) added to out packed as
 * frame_compact would pack them: the rows are filled a block of users at a
 * time into one buffer, each block appended to a column_packer per column.
 * A frame of doubles was 317 MB of fresh pages at 1,000,000 users, faulted
 * in (the kernel zeroing them was most of the stage's system CPU) only to
 * be packed into 88 MB and freed. Same columns in the same order, same values.
 */
static void fill_packed_rows(const struct base_run *br, struct frame *out,
			     const char *const *code_names, const int32_t *const *codes,
			     size_t n_codes)
{
	const size_t n_users = br->users->n, n_rows = br->first_row[n_users];
	struct frame blk;
	struct row_cols c;
	struct column_packer *packers;
	double **code_cols = xcalloc(n_codes + 1, sizeof(double *));

	frame_init(&blk, PACK_BLOCK_ROWS);
	add_row_columns(br->cfg, &blk, &c);
	for (size_t k = 0; k < n_codes; k++)
		code_cols[k] = frame_add_column(&blk, code_names[k]);
	packers = xcalloc(blk.n_cols, sizeof(*packers));
	for (size_t j = 0; j < blk.n_cols; j++)
		column_packer_init(&packers[j], n_rows, 1);
	for (size_t first = 0, last; first < n_users; first = last) {
		const size_t rows = br->first_row[(last = block_end(br, first))] - br->first_row[first];

		fill_block(br, &c, first, last, code_cols, codes, n_codes);
#pragma omp parallel for num_threads(config_jobs(br->cfg)) schedule(dynamic, 1)
		for (size_t j = 0; j < blk.n_cols; j++)
			column_packer_add(&packers[j], blk.cols[j], rows);
	}
	for (size_t j = 0; j < blk.n_cols; j++)
		frame_add_packed_column(out, blk.names[j], &packers[j]);
	free(packers);
	free(code_cols);
	frame_release(&blk);
}

static int compare_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The users' strings are mostly shared: the users table keeps one copy of an
 * app, campaign or attribute value for many users (user_data's cache). A
 * string met again at the same address was already looked up, so a small
 * cache by address spares the hashing (at 1,000,000 users four lookups per
 * user for app and campaign, 0.1 s of the one thread building the frame).
 * A string at another address is looked up as before: same codes.
 */
#define SEEN_AT 256
struct seen_at {
	const char *key[SEEN_AT];
	int64_t code[SEEN_AT];
};

static size_t seen_at_slot(const char *p)
{
	const uintptr_t a = (uintptr_t)p;

	return (size_t)((a >> 4) ^ (a >> 12)) % SEEN_AT;
}

/* 1 and its code when p was met before (seen_at_keep). */
static int seen_at_get(const struct seen_at *c, const char *p, int64_t *code)
{
	const size_t k = seen_at_slot(p);

	if (c->key[k] != p)
		return 0;
	*code = c->code[k];
	return 1;
}

static void seen_at_keep(struct seen_at *c, const char *p, int64_t code)
{
	const size_t k = seen_at_slot(p);

	c->key[k] = p;
	c->code[k] = code;
}

/*
 * Sorted unique values among the users installed by as_of (copies), and each
 * frame row's index into them (rows name their user by the uid column).
 */
static char **dictionary(char *const *values, const int64_t *age_of_uid, size_t n_users,
			 int32_t *code_of_uid, size_t *out_n)
{
	struct strmap seen;
	struct seen_at *at = xcalloc(1, sizeof(*at));
	char **dict = NULL;
	size_t n = 0, cap = 0;
	int64_t code;

	strmap_init(&seen);
	for (size_t u = 0; u < n_users; u++) {
		if (age_of_uid[u] < 0 || seen_at_get(at, values[u], &code))
			continue;
		seen_at_keep(at, values[u], 0);
		if (strmap_put(&seen, values[u], 0) != 0)
			continue;
		ARRAY_GROW(dict, n + 1, cap);
		dict[n++] = xstrdup(values[u]);
	}
	if (n)
		qsort(dict, n, sizeof(char *), compare_str_ptr);
	strmap_release(&seen);
	strmap_init(&seen);
	memset(at, 0, sizeof(*at));
	for (size_t i = 0; i < n; i++)
		strmap_put(&seen, dict[i], (int64_t)i);
	for (size_t u = 0; u < n_users; u++) {
		if (!seen_at_get(at, values[u], &code)) {
			if (!strmap_get(&seen, values[u], &code))
				code = -1;
			seen_at_keep(at, values[u], code);
		}
		code_of_uid[u] = (int32_t)code;
	}
	strmap_release(&seen);
	free(at);
	*out_n = n;
	return dict;
}

/* A code column of the frame from its rows' users' codes (dictionary; -1 leaves 0). */
static void codes_to_rows(struct frame *f, const char *name, const int32_t *code_of_uid)
{
	const double *uid = frame_column(f, "uid");
	double *out = frame_add_column(f, name);

	for (size_t i = 0; i < f->n_rows; i++) {
		const int32_t code = code_of_uid[(size_t)uid[i] - 1];

		if (code >= 0)
			out[i] = (double)code;
	}
}

/* The code columns' names in frame order (app, campaign, attributes) and their codes by uid - 1. */
static size_t code_columns(const struct config *cfg, const int32_t *app, const int32_t *campaign,
			   int32_t *const *attr, size_t n_attrs, char ***out_names,
			   const int32_t ***out_codes)
{
	char **names = xcalloc(n_attrs + 2, sizeof(char *));
	const int32_t **codes = xcalloc(n_attrs + 2, sizeof(int32_t *));

	names[0] = xstrdup("app_code");
	codes[0] = app;
	names[1] = xstrdup("campaign_code");
	codes[1] = campaign;
	for (size_t k = 0; k < n_attrs; k++) {
		char col[ATTR_COLUMN_MAX];

		attr_column_name(cfg->columns.attributes.v[k], "code", col, sizeof(col));
		names[k + 2] = xstrdup(col);
		codes[k + 2] = attr[k];
	}
	*out_names = names;
	*out_codes = codes;
	return n_attrs + 2;
}

int feature_build_base(struct registry *reg, const struct config *cfg, int64_t as_of,
		       enum feature_rows mode, struct frame *out, char ***out_apps,
		       size_t *out_n_apps, char ***out_campaigns, size_t *out_n_campaigns,
		       struct feature_base_stats *out_stats, struct ltv_err *err)
{
	return feature_build_base_cohorts(reg, cfg, as_of, mode, NULL, out, out_apps, out_n_apps,
					  out_campaigns, out_n_campaigns, out_stats, err);
}

void attr_column_name(const char *name, const char *what, char *buf, size_t size)
{
	snprintf(buf, size, "attr_%s_%s", name, what);
}

void attr_encodings_release(struct attr_encoding *a, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(a[k].name);
		frame_free_dict(a[k].values, a[k].n_values);
		free(a[k].ltv);
		free(a[k].payer);
	}
	free(a);
}

/*
 * The attributes of columns.attributes as code columns attr_<name>_code with
 * their sorted dictionaries. Ingest stored each user's attributes as one JSON
 * object of strings; a user without one (ingested before the attribute was
 * configured) has the empty string.
 */
static struct attr_encoding *attr_dictionaries(const struct base_run *br, int32_t **code_of_uid,
					       size_t *out_n)
{
	const struct str_list *names = &br->cfg->columns.attributes;
	struct attr_encoding *attrs = xcalloc(names->n + 1, sizeof(*attrs));
	cJSON **parsed;
	char **values;
	static char empty[] = "";

	*out_n = names->n;
	if (names->n == 0) /* the default: no pass over the users, no 16 MB of fresh pages */
		return attrs;
	parsed = xcalloc(br->users->n + 1, sizeof(cJSON *));
	values = xcalloc(br->users->n + 1, sizeof(char *));
	for (size_t u = 0; u < br->users->n; u++)
		if (br->age_of_uid[u] >= 0 && br->users->attributes_json[u])
			parsed[u] = cJSON_Parse(br->users->attributes_json[u]);
	for (size_t k = 0; k < names->n; k++) {
		for (size_t u = 0; u < br->users->n; u++) {
			const cJSON *v = parsed[u] ? cJSON_GetObjectItemCaseSensitive(parsed[u], names->v[k]) : NULL;

			values[u] = cJSON_IsString(v) ? v->valuestring : empty;
		}
		attrs[k].name = xstrdup(names->v[k]);
		code_of_uid[k] = xmalloc((br->users->n ? br->users->n : 1) * sizeof(int32_t));
		attrs[k].values = dictionary(values, br->age_of_uid, br->users->n, code_of_uid[k],
					     &attrs[k].n_values);
	}
	for (size_t u = 0; u < br->users->n; u++)
		cJSON_Delete(parsed[u]);
	free(parsed);
	free(values);
	return attrs;
}

int feature_build_base_cohorts(struct registry *reg, const struct config *cfg, int64_t as_of,
			       enum feature_rows mode, const struct shard_spec *cohorts,
			       struct frame *out, char ***out_apps, size_t *out_n_apps,
			       char ***out_campaigns, size_t *out_n_campaigns,
			       struct feature_base_stats *out_stats, struct ltv_err *err)
{
	return feature_build_base_attrs(reg, cfg, as_of, mode, cohorts, out, out_apps, out_n_apps,
					out_campaigns, out_n_campaigns, NULL, NULL, out_stats, err);
}

int feature_build_base_attrs(struct registry *reg, const struct config *cfg, int64_t as_of,
			     enum feature_rows mode, const struct shard_spec *cohorts,
			     struct frame *out, char ***out_apps, size_t *out_n_apps,
			     char ***out_campaigns, size_t *out_n_campaigns,
			     struct attr_encoding **out_attrs, size_t *out_n_attrs,
			     struct feature_base_stats *out_stats, struct ltv_err *err)
{
	const struct data_source src = data_source_registry(reg);

	return feature_build_base_from(&src, cfg, as_of, mode, cohorts, INT64_MAX, out, out_apps,
				       out_n_apps,
				       out_campaigns, out_n_campaigns, out_attrs, out_n_attrs,
				       out_stats, err);
}

int feature_build_base_from(const struct data_source *src, const struct config *cfg,
			    int64_t as_of, enum feature_rows mode, const struct shard_spec *cohorts,
			    int64_t younger_than,
			    struct frame *out, char ***out_apps, size_t *out_n_apps,
			    char ***out_campaigns, size_t *out_n_campaigns,
			    struct attr_encoding **out_attrs, size_t *out_n_attrs,
			    struct feature_base_stats *out_stats, struct ltv_err *err)
{
	struct base_run br = { .cfg = cfg, .as_of = as_of, .mode = mode, .cohorts = cohorts,
			       .younger_than = mode == FEATURE_ROWS_AT_AGE ? younger_than : INT64_MAX,
			       .err = err };
	struct row_cols cols;
	struct populate fresh;
	size_t n_installed = 0, n_rows, n_attr_codes = 0;
	int32_t *app_of_uid = NULL, *campaign_of_uid = NULL, **attr_of_uid = NULL;
	char **code_names = NULL;
	const int32_t **codes = NULL;
	size_t n_codes = 0;
	int ret = 0;

	if (out_attrs) {
		*out_attrs = NULL;
		*out_n_attrs = 0;
	}

	assert(cfg->features.horizons.n <= MAX_HORIZONS);
	frame_init(out, 0);
	populate_init(&fresh);
	if (src->mem)
		reserve_for_memory(&br, src->mem);
	/* Only the registry's read leaves a core idle (registry_users_and_days). */
	reserve_days(&br, data_source_user_days_bound(src),
		     !src->mem && config_jobs(cfg) > 1 ? &fresh : NULL);
	ret = data_source_users_and_days(src, config_jobs(cfg), &br.owned_users, &br.users,
					 collect_user_day, &br, err);
	populate_stop(&fresh); /* before group_days moves the days, or out: frees them */
	if (ret < 0)
		goto out;
	ages_upto(&br, br.users->n);
	for (size_t u = 0; u < br.users->n; u++)
		n_installed += br.age_of_uid[u] >= 0;
	br.stats.users_after_as_of = (int64_t)(br.users->n - n_installed);
	if (n_installed == 0 && cohorts && cohorts->count > 0) {
		char spec[32];

		ret = err_set(err, LTV_ENOTFOUND, "shard %s holds no cohort with a user installed by as_of",
			      shard_format(cohorts, spec, sizeof(spec)));
		goto out;
	}
	if (n_installed == 0) {
		char iso[32];

		ret = err_set(err, LTV_EINVAL, "no user installed on or before as_of %s; pass a later --as-of",
			      time_format_iso8601(as_of, iso, sizeof(iso)));
		goto out;
	}
	/*
	 * Only snapshot and held-out rows sample users by this hash: scoring's
	 * rows (FEATURE_ROWS_AT_AGE) skip it, 1,000,000 strings (0.03 s of the frame).
	 */
	if (mode != FEATURE_ROWS_AT_AGE) {
		br.hash_of_uid = xmalloc((br.users->n ? br.users->n : 1) * sizeof(uint64_t));
		/* Each user's own (the run's threads are idle here: 1,000,000 strings hashed). */
#pragma omp parallel for num_threads(config_jobs(cfg)) schedule(static)
		for (size_t u = 0; u < br.users->n; u++)
			br.hash_of_uid[u] = user_hash(br.users->user_id[u]);
	}
	group_days(&br);
	n_rows = count_mode_rows(&br);
	if (n_rows == 0 && mode == FEATURE_ROWS_HELD_OUT) {
		ret = err_set(err, LTV_EINVAL, "no validation user to hold out at any horizon; pass a "
			      "later --as-of or a larger features.validation_days");
		goto out;
	}
	/* scoring only the young: a file of users all past the longest horizon scores none */
	if (n_rows == 0 && br.younger_than == INT64_MAX) {
		ret = err_set(err, LTV_EINVAL, "no user is %lld days old at as_of, the first horizon: no "
			      "training rows; pass a later --as-of or a shorter first horizon",
			      (long long)cfg->features.horizons.v[0]);
		goto out;
	}
	/*
	 * The users' strings are read here, per user, so that an owned table's
	 * (50 MB at 1,000,000 users, and their 32 MB of pointers) go before the
	 * frame is filled beside the days: that was the features stage's peak.
	 */
	app_of_uid = xmalloc((br.users->n ? br.users->n : 1) * sizeof(int32_t));
	campaign_of_uid = xmalloc((br.users->n ? br.users->n : 1) * sizeof(int32_t));
	/* Two dictionaries of their own (a strmap each): one a thread, 0.02 s apart at 1,000,000 users. */
#pragma omp parallel sections num_threads(config_jobs(cfg) > 1 ? 2 : 1)
	{
#pragma omp section
		*out_apps = dictionary(br.users->app_id, br.age_of_uid, br.users->n, app_of_uid,
				       out_n_apps);
#pragma omp section
		*out_campaigns = dictionary(br.users->campaign, br.age_of_uid, br.users->n,
					    campaign_of_uid, out_n_campaigns);
	}
	if (out_attrs) {
		n_attr_codes = cfg->columns.attributes.n;
		attr_of_uid = xcalloc(n_attr_codes + 1, sizeof(int32_t *));
		*out_attrs = attr_dictionaries(&br, attr_of_uid, out_n_attrs);
	}
	if (br.users == &br.owned_users)
		user_table_drop_strings(&br.owned_users);
	n_codes = code_columns(cfg, app_of_uid, campaign_of_uid, attr_of_uid, n_attr_codes, &code_names,
			       &codes);
	frame_init(out, n_rows);
	if (mode == FEATURE_ROWS_SNAPSHOTS) {
		fill_packed_rows(&br, out, (const char *const *)code_names, codes, n_codes);
	} else {
		add_row_columns(cfg, out, &cols);
		if (mode == FEATURE_ROWS_HELD_OUT)
			add_held_out_columns(out, &cols);
		fill_mode_rows(&br, &cols);
	}
	/* The rows are filled: the days (72 MB at 1,000,000 users) go before more columns come. */
	free(br.days);
	free(br.first_day);
	free(br.first_row);
	br.days = NULL;
	br.first_day = br.first_row = NULL;
	br.stats.users = (int64_t)n_installed;
	for (size_t k = 0; k < n_codes && mode != FEATURE_ROWS_SNAPSHOTS; k++)
		codes_to_rows(out, code_names[k], codes[k]);
	if (out_stats)
		*out_stats = br.stats;
out:
	free(br.days);
	free(br.first_day);
	free(br.first_row);
	free(br.age_of_uid);
	free(br.hash_of_uid);
	free(app_of_uid);
	free(campaign_of_uid);
	for (size_t k = 0; k < n_attr_codes; k++)
		free(attr_of_uid[k]);
	free(attr_of_uid);
	for (size_t k = 0; k < n_codes; k++)
		free(code_names[k]);
	free(code_names);
	free(codes);
	user_table_release(&br.owned_users);
	return ret;
}

/* ---- encodings ---- */

void encodings_release(struct encodings *e)
{
	frame_free_dict(e->apps, e->n_apps);
	frame_free_dict(e->campaigns, e->n_campaigns);
	free(e->app_ltv);
	free(e->app_payer);
	free(e->cohort_ltv);
	free(e->cohort_payer);
	free(e->cohort_log_n);
	attr_encodings_release(e->attrs, e->n_attrs);
	memset(e, 0, sizeof(*e));
}

/*
 * The attributes' encodings, a blob of their own ("attr_encodings") beside
 * a dictionary "attr:<name>" each, written only when attributes are
 * configured: an artefact without attributes is the same as before they
 * existed, and a model saved before them loads with none.
 */
static int attr_encodings_save(const struct encodings *e, struct registry *reg,
			       int64_t artefact_id, struct ltv_err *err)
{
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, ATTR_ENCODINGS_MAGIC, 1);
	blob_put_u32(&w, (uint32_t)e->n_attrs);
	for (size_t k = 0; k < e->n_attrs; k++) {
		blob_put_str(&w, e->attrs[k].name);
		blob_put_f64_array(&w, e->attrs[k].ltv, e->n_apps * e->attrs[k].n_values);
		blob_put_f64_array(&w, e->attrs[k].payer, e->n_apps * e->attrs[k].n_values);
	}
	data = blob_writer_detach(&w, &len);
	ret = registry_blob_put(reg, artefact_id, "attr_encodings", data, len, err);
	free(data);
	for (size_t k = 0; k < e->n_attrs && ret == 0; k++) {
		char key[ATTR_COLUMN_MAX];

		snprintf(key, sizeof(key), "attr:%s", e->attrs[k].name);
		ret = frame_save_dict(reg, artefact_id, key, e->attrs[k].values, e->attrs[k].n_values, err);
	}
	return ret;
}

static int attr_encodings_load(struct registry *reg, int64_t artefact_id, struct encodings *out,
			       struct ltv_err *err)
{
	struct blob_reader r;
	void *data = NULL;
	size_t len;
	uint32_t version;
	int corrupt = 0, ret = registry_blob_get(reg, artefact_id, "attr_encodings", &data, &len, err);

	if (ret == LTV_ENOTFOUND) { /* no attribute was configured */
		err_clear(err);
		return 0;
	}
	if (ret < 0)
		return ret;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, ATTR_ENCODINGS_MAGIC, 1, &version, err);
	if (ret == 0) {
		out->n_attrs = blob_get_u32(&r);
		corrupt = out->n_attrs > 4096;
		if (corrupt)
			out->n_attrs = 0;
		else
			out->attrs = xcalloc(out->n_attrs + 1, sizeof(*out->attrs));
	}
	for (size_t k = 0; k < out->n_attrs && ret == 0 && !corrupt; k++) {
		struct attr_encoding *a = &out->attrs[k];
		char key[ATTR_COLUMN_MAX];
		size_t n1 = 0, n2 = 0;

		a->name = blob_get_str(&r);
		corrupt = !a->name || blob_get_f64_array(&r, &a->ltv, &n1) < 0 ||
			  blob_get_f64_array(&r, &a->payer, &n2) < 0;
		if (corrupt)
			break;
		snprintf(key, sizeof(key), "attr:%s", a->name);
		ret = frame_load_dict(reg, artefact_id, key, &a->values, &a->n_values, err);
		corrupt = ret == 0 && (n1 != out->n_apps * a->n_values || n2 != n1);
	}
	if (corrupt)
		ret = err_set(err, LTV_EINVAL, "attribute encodings of artefact %lld are truncated or "
			      "corrupt", (long long)artefact_id);
	free(data);
	return ret;
}

int encodings_save(const struct encodings *e, struct registry *reg, int64_t artefact_id,
		   struct ltv_err *err)
{
	size_t n_cohorts = e->n_apps * e->n_campaigns, len;
	struct blob_writer w;
	uint8_t *data;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, ENCODINGS_MAGIC, 1);
	blob_put_f64(&w, e->global_ltv);
	blob_put_f64(&w, e->global_payer);
	blob_put_f64_array(&w, e->app_ltv, e->n_apps);
	blob_put_f64_array(&w, e->app_payer, e->n_apps);
	blob_put_f64_array(&w, e->cohort_ltv, n_cohorts);
	blob_put_f64_array(&w, e->cohort_payer, n_cohorts);
	blob_put_f64_array(&w, e->cohort_log_n, n_cohorts);
	data = blob_writer_detach(&w, &len);
	ret = registry_blob_put(reg, artefact_id, "encodings", data, len, err);
	free(data);
	if (ret == 0)
		ret = frame_save_dict(reg, artefact_id, "app", e->apps, e->n_apps, err);
	if (ret == 0)
		ret = frame_save_dict(reg, artefact_id, "campaign", e->campaigns, e->n_campaigns, err);
	if (ret == 0 && e->n_attrs)
		ret = attr_encodings_save(e, reg, artefact_id, err);
	return ret;
}

int encodings_load(struct registry *reg, int64_t artefact_id, struct encodings *out,
		   struct ltv_err *err)
{
	struct blob_reader r;
	void *data = NULL;
	size_t len, n_app1 = 0, n_app2 = 0, n_c1 = 0, n_c2 = 0, n_c3 = 0;
	uint32_t version;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = frame_load_dict(reg, artefact_id, "app", &out->apps, &out->n_apps, err);
	if (ret == 0)
		ret = frame_load_dict(reg, artefact_id, "campaign", &out->campaigns, &out->n_campaigns, err);
	if (ret == 0)
		ret = registry_blob_get(reg, artefact_id, "encodings", &data, &len, err);
	if (ret < 0)
		goto out;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, ENCODINGS_MAGIC, 1, &version, err);
	if (ret < 0)
		goto out;
	out->global_ltv = blob_get_f64(&r);
	out->global_payer = blob_get_f64(&r);
	if (blob_get_f64_array(&r, &out->app_ltv, &n_app1) < 0 ||
	    blob_get_f64_array(&r, &out->app_payer, &n_app2) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_ltv, &n_c1) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_payer, &n_c2) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_log_n, &n_c3) < 0 ||
	    n_app1 != out->n_apps || n_app2 != out->n_apps ||
	    n_c1 != out->n_apps * out->n_campaigns || n_c2 != n_c1 || n_c3 != n_c1)
		ret = err_set(err, LTV_EINVAL, "encodings of artefact %lld are truncated or corrupt",
			      (long long)artefact_id);
	if (ret == 0)
		ret = attr_encodings_load(reg, artefact_id, out, err);
out:
	free(data);
	if (ret < 0)
		encodings_release(out);
	return ret;
}

void encodings_hash(const struct encodings *e, struct hasher *h)
{
	size_t n_cohorts = e->n_apps * e->n_campaigns;

	for (size_t i = 0; i < e->n_apps; i++)
		hasher_add_str(h, e->apps[i]);
	for (size_t i = 0; i < e->n_campaigns; i++)
		hasher_add_str(h, e->campaigns[i]);
	hasher_add_double(h, e->global_ltv);
	hasher_add_double(h, e->global_payer);
	hasher_update(h, e->app_ltv, e->n_apps * sizeof(double));
	hasher_update(h, e->app_payer, e->n_apps * sizeof(double));
	hasher_update(h, e->cohort_ltv, n_cohorts * sizeof(double));
	hasher_update(h, e->cohort_payer, n_cohorts * sizeof(double));
	hasher_update(h, e->cohort_log_n, n_cohorts * sizeof(double));
	for (size_t k = 0; k < e->n_attrs; k++) {
		hasher_add_str(h, e->attrs[k].name);
		for (size_t v = 0; v < e->attrs[k].n_values; v++)
			hasher_add_str(h, e->attrs[k].values[v]);
		hasher_update(h, e->attrs[k].ltv, e->n_apps * e->attrs[k].n_values * sizeof(double));
		hasher_update(h, e->attrs[k].payer, e->n_apps * e->attrs[k].n_values * sizeof(double));
	}
}

/* Maps each base dictionary entry to its index in an extended copy of the target dictionary. */
static double *recode(char *const *target, size_t n_target, char *const *base, size_t n_base,
		      char ***out_dict, size_t *out_n)
{
	struct strmap index;
	double *map = xmalloc((n_base ? n_base : 1) * sizeof(double));
	char **dict = xcalloc(n_target + n_base + 1, sizeof(char *));
	size_t n = 0;

	strmap_init(&index);
	for (; n < n_target; n++) {
		dict[n] = xstrdup(target[n]);
		strmap_put(&index, dict[n], (int64_t)n);
	}
	for (size_t i = 0; i < n_base; i++) {
		int64_t code;

		if (!strmap_get(&index, base[i], &code)) {
			code = (int64_t)n;
			dict[n++] = xstrdup(base[i]);
			strmap_put(&index, base[i], code);
		}
		map[i] = (double)code;
	}
	strmap_release(&index);
	*out_dict = dict;
	*out_n = n;
	return map;
}

int feature_apply_encodings(const struct encodings *e, struct frame *f,
			    char *const *base_apps, size_t n_base_apps,
			    char *const *base_campaigns, size_t n_base_campaigns,
			    char ***out_apps, size_t *out_n_apps,
			    char ***out_campaigns, size_t *out_n_campaigns)
{
	double *app = frame_column(f, "app_code"), *campaign = frame_column(f, "campaign_code");
	double *app_map = recode(e->apps, e->n_apps, base_apps, n_base_apps, out_apps, out_n_apps);
	double *campaign_map = recode(e->campaigns, e->n_campaigns, base_campaigns, n_base_campaigns,
				      out_campaigns, out_n_campaigns);
	double *app_ltv = frame_add_column(f, "app_ltv_te");
	double *campaign_ltv = frame_add_column(f, "campaign_ltv_te");
	double *campaign_payer = frame_add_column(f, "campaign_payer_te");
	double *campaign_log_n = frame_add_column(f, "campaign_train_users_log");

	assert(app && campaign);
	for (size_t i = 0; i < f->n_rows; i++) {
		size_t a = (size_t)app_map[(size_t)app[i]];
		size_t c = (size_t)campaign_map[(size_t)campaign[i]];
		int known_app = a < e->n_apps, known_cohort = known_app && c < e->n_campaigns;
		double app_value = known_app ? e->app_ltv[a] : e->global_ltv;
		double app_payer = known_app ? e->app_payer[a] : e->global_payer;

		app[i] = (double)a;
		campaign[i] = (double)c;
		app_ltv[i] = app_value;
		campaign_ltv[i] = known_cohort ? e->cohort_ltv[a * e->n_campaigns + c] : app_value;
		campaign_payer[i] = known_cohort ? e->cohort_payer[a * e->n_campaigns + c] : app_payer;
		campaign_log_n[i] = known_cohort ? e->cohort_log_n[a * e->n_campaigns + c] : 0;
	}
	free(app_map);
	free(campaign_map);
	return 0;
}

/* The base attribute named `name`, or NULL. */
static const struct attr_encoding *find_attr(const struct attr_encoding *a, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(a[k].name, name) == 0)
			return &a[k];
	return NULL;
}

void feature_apply_attr_encodings(const struct encodings *e, struct frame *f,
				  const struct attr_encoding *base, size_t n_base)
{
	const double *app = frame_column(f, "app_code");

	assert(app);
	for (size_t k = 0; k < e->n_attrs; k++) {
		const struct attr_encoding *a = &e->attrs[k];
		const struct attr_encoding *b = find_attr(base, n_base, a->name);
		char col[ATTR_COLUMN_MAX];
		const double *code;
		double *ltv, *payer, *map = NULL;
		char **dict = NULL;
		size_t n_dict = 0;

		attr_column_name(a->name, "code", col, sizeof(col));
		code = b ? frame_column(f, col) : NULL;
		if (code) /* the base's values in the encodings' order; unseen ones past a->n_values */
			map = recode(a->values, a->n_values, b->values, b->n_values, &dict, &n_dict);
		attr_column_name(a->name, "ltv_te", col, sizeof(col));
		ltv = frame_add_column(f, col);
		attr_column_name(a->name, "payer_te", col, sizeof(col));
		payer = frame_add_column(f, col);
		for (size_t i = 0; i < f->n_rows; i++) {
			size_t ap = (size_t)app[i];
			size_t v = code && code[i] >= 0 && (size_t)code[i] < b->n_values
				   ? (size_t)map[(size_t)code[i]] : a->n_values;

			if (ap >= e->n_apps) {
				ltv[i] = e->global_ltv;
				payer[i] = e->global_payer;
			} else if (v >= a->n_values) {
				ltv[i] = e->app_ltv[ap];
				payer[i] = e->app_payer[ap];
			} else {
				ltv[i] = a->ltv[ap * a->n_values + v];
				payer[i] = a->payer[ap * a->n_values + v];
			}
		}
		free(map);
		frame_free_dict(dict, n_dict);
	}
}
