/*
 * The features stage against a hand-written fixture with a fixed as_of, and
 * the leakage proof extended to snapshot rows: "no event after as_of can
 * change anything, and an event on day d before as_of can change a feature
 * only of rows describing an age above d".
 *
 * as_of = 2025-03-01T00:00:00Z, features.snapshots = 1,3,10,90, horizons
 * [7, 30, 90], target 30, validation_days 28, so validation cohorts are those
 * installed after 2025-01-02T00:00:00Z with at least 30 complete days.
 * Snapshot 90 equals the longest horizon: it must never make a row (a1 is
 * exactly 90 days old). Every expected value below is worked out by hand in
 * the comments next to it.
 */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/data_source.h"
#include "ltv/config.h"
#include "ltv/feature_build.h"
#include "ltv/feature_params.h"
#include "ltv/model_data.h"
#include "ltv/frame.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/timeutil.h"

#include "fixture.h"

#define AS_OF 1740787200 /* 2025-03-01T00:00:00Z */
#define SNAPSHOTS "1,3,10,90"

static const char users_csv[] =
	"user_id,app_id,campaign,install_time,cost\n"
	"a1,app1,camp_x,2024-12-01T00:00:00Z,1.5\n"  /* uid 1: age 90, train, payer */
	"a2,app1,camp_y,2024-12-10T12:00:00Z,2\n"    /* uid 2: age 80, train, payer */
	"a3,app2,camp_x,2025-01-15T12:00:00Z,\n"     /* uid 3: age 44, validation, no cost */
	"a6,app1,camp_late,2025-03-05T00:00:00Z,1\n" /* uid 4: installed after as_of */
	"a4,app1,camp_x,2025-02-25T06:00:00Z,0.5\n"  /* uid 5: age 3: not mature at 7, no row */
	"a5,app2,camp_z,2025-02-28T12:00:00Z,1\n"    /* uid 6: age 0: no row */
	"a7,app1,camp_x,2025-02-10T00:00:00Z,0\n"    /* uid 7: age 19, payer before 7 */
	"a8,app2,camp_z,2025-01-02T00:00:00Z,0.25\n" /* uid 8: age 58, install == boundary: train */
	"a9,app2,camp_z,2025-01-30T00:00:00Z,0.75\n" /* uid 9: age exactly 30: validation */
	"a10,app1,camp_y,2025-01-30T00:00:01Z,3\n"   /* uid 10: age 29 (one second short) */
	"a11,app1,camp_y,2025-02-21T00:00:00Z,1\n"   /* uid 11: age 8: snapshots 1, 3 only */
	"a12,app2,camp_x,2025-02-09T00:00:00Z,2\n"   /* uid 12: age 20, pays on d8 only */
	"a13,app1,camp_z,2025-02-19T00:00:00Z,0.5\n" /* uid 13: age exactly 10: s = 10 allowed */
	"a14,app2,camp_y,2025-02-19T00:00:01Z,0\n";  /* uid 14: age 9: s = 10 not allowed */

static const char events_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2024-12-01T01:00:00Z,1.5,purchase\n" /* d0 */
	"a1,2024-12-01T05:00:00Z,0,session\n"    /* d0 */
	"a1,2024-12-02T10:00:00Z,4.25,purchase\n" /* d1 */
	"a1,2024-12-04T00:00:00Z,10,purchase\n"  /* d3: ltv_7 */
	"a1,2024-12-21T00:00:00Z,5,purchase\n"   /* d20: ltv_30 */
	"a1,2025-01-30T00:00:00Z,7,purchase\n"   /* d60: ltv_90 */
	"a2,2024-12-11T13:00:00Z,0,session\n"    /* d1 */
	"a2,2024-12-11T14:00:00Z,2.5,purchase\n" /* d1 */
	"a3,2025-01-15T12:30:00Z,0,session\n"    /* d0 */
	"a3,2025-01-20T00:00:00Z,3,purchase\n"   /* d4 */
	"a4,2025-02-25T07:00:00Z,2,purchase\n"   /* d0 */
	"a4,2025-02-27T07:00:00Z,3,purchase\n"   /* d2 */
	"a4,2025-02-28T08:00:00Z,1,purchase\n"   /* d3, before as_of but the day is incomplete */
	"a5,2025-02-28T13:00:00Z,4,purchase\n"   /* d0, incomplete at as_of: not read */
	"a7,2025-02-10T00:00:00Z,1,purchase\n"   /* d0 */
	"a7,2025-02-16T23:59:59Z,2,purchase\n"   /* d6: ltv_7 */
	"a7,2025-02-17T00:00:00Z,4,purchase\n"   /* d7: not in ltv_7 */
	"a6,2025-03-05T01:00:00Z,9,purchase\n"   /* user installed after as_of */
	"a11,2025-02-23T10:00:00Z,0,session\n"   /* d2 */
	"a12,2025-02-17T12:00:00Z,6,purchase\n"  /* d8: after the only horizon a12 is mature at */
	"a13,2025-02-19T08:00:00Z,2,purchase\n"  /* d0 */
	"a13,2025-02-19T09:00:00Z,0.5,purchase\n" /* d0: two purchases, one paying day */
	"a13,2025-02-28T23:00:00Z,1,purchase\n"  /* d9, the last complete day */
	"a14,2025-02-19T01:00:00Z,1,purchase\n"; /* d0 */

/* (a) Events at or after as_of only, many inside a user's early days by day index. */
static const char events_after_as_of_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2025-03-01T00:00:00Z,100,purchase\n" /* exactly at as_of */
	"a1,2025-03-01T00:00:01Z,0,session\n"
	"a2,2025-06-01T00:00:00Z,60,purchase\n"
	"a3,2025-03-20T00:00:00Z,40,purchase\n"
	"a4,2025-03-01T05:59:59Z,50,purchase\n"  /* a4's d3, the same day as a pre-as_of event */
	"a5,2025-03-01T01:00:00Z,20,purchase\n"  /* a5's d0 */
	"a5,2025-03-01T11:59:59Z,0,session\n"    /* a5's d0 */
	"a7,2025-03-02T00:00:00Z,30,purchase\n"
	"a6,2025-03-06T00:00:00Z,5,purchase\n"
	"a8,2025-03-01T00:00:00Z,9,purchase\n"   /* would make the non-payer a8 a payer */
	"a9,2025-03-01T00:00:00Z,9,purchase\n"
	"a10,2025-03-01T00:00:00Z,9,purchase\n"  /* a10's d29 */
	"a11,2025-03-01T00:00:00Z,9,purchase\n"  /* a11's d8 */
	"a13,2025-03-01T00:00:00Z,9,purchase\n"  /* a13's d10 */
	"a14,2025-03-01T00:00:00Z,9,purchase\n"; /* a14's d9, which ends one second after as_of */

/* Users installed after as_of, under names that would sort first in the dictionaries. */
static const char users_late_csv[] =
	"user_id,app_id,campaign,install_time,cost\n"
	"late1,aaa_app,aaa_camp,2025-03-01T00:00:01Z,5\n" /* one second after as_of */
	"late2,app1,camp_a,2025-03-02T00:00:00Z,5\n";
static const char events_late_csv[] =
	"user_id,event_time,revenue,event\n"
	"late1,2025-03-01T00:00:01Z,3,purchase\n"
	"late2,2025-03-02T01:00:00Z,3,purchase\n";

/*
 * (b) Zero-revenue events before as_of: labels and the sample cannot move,
 * so rows of ages s <= d (the day of the user's earliest new event) must keep
 * every column. The new event days per user are in session_days below.
 */
static const char events_sessions_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2024-12-04T12:00:00Z,0,session\n"  /* d3: row s = 3 reads d < 3 only */
	"a1,2024-12-06T00:00:00Z,0,session\n"  /* d5 */
	"a2,2024-12-13T12:00:00Z,0,session\n"  /* d3, first second of the day */
	"a3,2025-01-16T13:00:00Z,0,session\n"  /* d1 */
	"a8,2025-01-02T05:00:00Z,0,session\n"  /* d0: a8's one row (s = 1) reads it */
	"a9,2025-02-28T23:59:59Z,0,session\n"  /* d29 */
	"a13,2025-02-28T10:00:00Z,0,session\n"; /* d9: only s = 10 reads it */

/* (b) Revenue events before as_of; rows are matched by (uid, window_days). */
static const char events_revenue_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2024-12-03T00:00:00Z,8,purchase\n"   /* d2 */
	"a2,2024-12-25T00:00:00Z,3,purchase\n"   /* d14: beyond every row of a2 */
	"a9,2025-02-28T23:59:59Z,4,purchase\n"   /* d29: the non-payer a9 becomes a payer */
	"a11,2025-02-28T00:00:00Z,5,purchase\n"  /* d7: revenue, but not before 7: still sampled */
	"a12,2025-02-11T00:00:00Z,1,purchase\n"; /* d2: a12 becomes a payer before 7 */

struct new_event {
	int64_t uid, day;
	double revenue;
};

static const struct new_event session_events[] = {
	{ 1, 3, 0 }, { 1, 5, 0 }, { 2, 3, 0 }, { 3, 1, 0 }, { 8, 0, 0 }, { 9, 29, 0 }, { 13, 9, 0 },
};
static const struct new_event revenue_events[] = {
	{ 1, 2, 8 }, { 2, 14, 3 }, { 9, 29, 4 }, { 11, 7, 5 }, { 12, 2, 1 },
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The columns of a row checked by hand, in the order of struct row_expect. */
static const char *const checked[] = {
	"uid", "window_days", "age_days", "weight", "user_rep",
	"rev_window", "rev_d0", "rev_max_day", "purchases_window", "events_window", "events_d0",
	"active_days_window", "engagement", "first_purchase_day", "purchase_days",
	"days_since_purchase", "days_since_active", "rev_per_purchase_day", "rev_last7",
	"events_last7_share", "rev_to_date", "ltv_7", "ltv_30", "ltv_90",
};
#define N_CHECKED N_OF(checked)

struct row_expect {
	double v[N_CHECKED];
};

#define N NAN
/* log1p(k): engagement = log1p(events) * active_days / s */
#define L1 0.6931471805599453
#define L2 1.0986122886681096
#define L3 1.3862943611198906
#define L4 1.6094379124341003

/*
 * uid, s, age, weight, user_rep,
 * rev, rev_d0, rev_max, purchases, events, events_d0, active, engagement, first_purchase,
 * purchase_days, since_purchase = s-1-last purchase day, since_active (s when none), rev per
 * purchase day, rev_last7 (days >= s-7), events_last7_share, rev_to_date, ltv_7, ltv_30, ltv_90
 */
static const struct row_expect rows_expected[] = {
	/* a1 (90 days, revenue before 90): every snapshot < 90, weight 1, user_rep on the first.
	 * days: d0 1.5 (2 events, 1 purchase), d1 4.25, d3 10, d20 5, d60 7. */
	{ { 1, 1, 90, 1, 1, 1.5, 1.5, 1.5, 1, 2, 2, 1, L2 * 1 / 1, 0, 1, 0, 0, 1.5, 1.5, 1,
	    27.75, 15.75, 20.75, 27.75 } },
	{ { 1, 3, 90, 1, 0, 5.75, 1.5, 4.25, 2, 3, 2, 2, L3 * 2 / 3, 0, 2, 1, 1, 2.875, 5.75, 1,
	    27.75, 15.75, 20.75, 27.75 } },
	/* s=10: d0, d1, d3; last purchase d3: 9-3 = 6; last 7 days = d3..d9: 10, 1 of 4 events */
	{ { 1, 10, 90, 1, 0, 15.75, 1.5, 10, 3, 4, 2, 3, L4 * 3 / 10, 0, 3, 6, 6, 5.25, 10, 0.25,
	    27.75, 15.75, 20.75, 27.75 } },
	/* a2 (80 days): d1 session + 2.5; mature at 7 and 30 */
	{ { 2, 1, 80, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, N, 0, N, 1, N, 0, N, 2.5, 2.5, 2.5, N } },
	{ { 2, 3, 80, 1, 0, 2.5, 0, 2.5, 1, 2, 0, 1, L2 * 1 / 3, 1, 1, 1, 1, 2.5, 2.5, 1,
	    2.5, 2.5, 2.5, N } },
	/* s=10: d1 is 8 days before d9; last 7 days = d3..d9: nothing */
	{ { 2, 10, 80, 1, 0, 2.5, 0, 2.5, 1, 2, 0, 1, L2 * 1 / 10, 1, 1, 8, 8, 2.5, 0, 0,
	    2.5, 2.5, 2.5, N } },
	/* a3 (44 days): d0 session, d4 purchase 3 */
	{ { 3, 1, 44, 1, 1, 0, 0, 0, 0, 1, 1, 1, L1 * 1 / 1, N, 0, N, 0, N, 0, 1, 3, 3, 3, N } },
	{ { 3, 3, 44, 1, 0, 0, 0, 0, 0, 1, 1, 1, L1 * 1 / 3, N, 0, N, 2, N, 0, 1, 3, 3, 3, N } },
	{ { 3, 10, 44, 1, 0, 3, 0, 3, 1, 2, 1, 2, L2 * 2 / 10, 4, 1, 5, 5, 3, 3, 0.5, 3, 3, 3, N } },
	/* a7 (19 days): d0 1, d6 2, d7 4; ltv_7 = 1 + 2; rev_to_date 7 */
	{ { 7, 1, 19, 1, 1, 1, 1, 1, 1, 1, 1, 1, L1 * 1 / 1, 0, 1, 0, 0, 1, 1, 1, 7, 3, N, N } },
	{ { 7, 3, 19, 1, 0, 1, 1, 1, 1, 1, 1, 1, L1 * 1 / 3, 0, 1, 2, 2, 1, 1, 1, 7, 3, N, N } },
	/* s=10: last 7 days d3..d9 hold d6 and d7: 6, 2 of 3 events */
	{ { 7, 10, 19, 1, 0, 7, 1, 4, 3, 3, 1, 3, L3 * 3 / 10, 0, 3, 2, 2, 7.0 / 3, 6, 2.0 / 3,
	    7, 3, N, N } },
	/* Non-payers: one row each at snapshot (FNV-1a of user_id, then h ^ h >> 29) % n, weight n.
	 * a8: 11217381471439965276 % 3 = 0 → s=1 of {1,3,10} */
	{ { 8, 1, 58, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, N, 0, N, 1, N, 0, N, 0, 0, 0, N } },
	/* a9: 11217382570951595531 % 3 = 2 → s=10 */
	{ { 9, 10, 30, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, N, 0, N, 10, N, 0, N, 0, 0, 0, N } },
	/* a10: 16199237122975924151 % 3 = 2 → s=10 */
	{ { 10, 10, 29, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, N, 0, N, 10, N, 0, N, 0, 0, N, N } },
	/* a11 (8 days: snapshots 1 and 3): 16199236023464427780 % 2 = 0 → s=1, weight 2 */
	{ { 11, 1, 8, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, N, 0, N, 1, N, 0, N, 0, 0, N, N } },
	/* a12 (20 days, mature at 7 only, revenue on d8 only: sampled):
	 * 16199239321999184429 % 3 = 2 → s=10, which reads the d8 purchase */
	{ { 12, 10, 20, 3, 1, 6, 0, 6, 1, 1, 0, 1, L1 * 1 / 10, 8, 1, 1, 1, 6, 6, 1, 6, 0, N, N } },
	/* a13 (exactly 10 days): d0 2 + 0.5 (2 purchases, 1 paying day), d9 1 */
	{ { 13, 1, 10, 1, 1, 2.5, 2.5, 2.5, 2, 2, 2, 1, L2 * 1 / 1, 0, 1, 0, 0, 2.5, 2.5, 1,
	    3.5, 2.5, N, N } },
	{ { 13, 3, 10, 1, 0, 2.5, 2.5, 2.5, 2, 2, 2, 1, L2 * 1 / 3, 0, 1, 2, 2, 2.5, 2.5, 1,
	    3.5, 2.5, N, N } },
	/* s=10: d9 is both the last purchase (9 - 9 = 0) and the only day in d3..d9 */
	{ { 13, 10, 10, 1, 0, 3.5, 2.5, 2.5, 3, 3, 2, 2, L3 * 2 / 10, 0, 2, 0, 0, 1.75, 1, 1.0 / 3,
	    3.5, 2.5, N, N } },
	/* a14 (9 days, one second short of 10): d0 1; no s=10 row */
	{ { 14, 1, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, L1 * 1 / 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, N, N } },
	{ { 14, 3, 9, 1, 0, 1, 1, 1, 1, 1, 1, 1, L1 * 1 / 3, 0, 1, 2, 2, 1, 1, 1, 1, 1, N, N } },
};
#define N_ROWS N_OF(rows_expected)

/* Per-user columns: uid, install_time, cost, split, app_code, campaign_code. */
struct user_expect {
	int64_t uid;
	double install, cost, split, app, campaign;
};

/* app1 0, app2 1; camp_x 0, camp_y 1, camp_z 2 (camp_late belongs to a6 only: absent). */
static const struct user_expect users_expected[] = {
	{ 1, 1733011200, 1.5, 0, 0, 0 },   { 2, 1733832000, 2, 0, 0, 1 },
	{ 3, 1736942400, N, 1, 1, 0 },     { 7, 1739145600, 0, 2, 0, 0 },
	{ 8, 1735776000, 0.25, 0, 1, 2 },  { 9, 1738195200, 0.75, 1, 1, 2 },
	{ 10, 1738195201, 3, 2, 0, 1 },    { 11, 1740096000, 1, 2, 0, 1 },
	{ 12, 1739059200, 2, 2, 1, 0 },    { 13, 1739923200, 0.5, 2, 0, 2 },
	{ 14, 1739923201, 0, 2, 1, 1 },
};
#undef N

static int setup(void **state)
{
	struct test_hand *fx = test_hand_new(users_csv, events_csv, "users*.csv", "events*.csv");

	test_set(&fx->cfg, "features.snapshots=%s", SNAPSHOTS);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	test_hand_free(*state);
	return 0;
}

static void run_as_of(struct test_hand *fx)
{
	/* Only the stages under test: model stages need more than a handful of users. */
	const struct run_options opts = { .as_of = AS_OF, .to = "features", .command = "test" };

	test_run(&fx->cfg, &opts);
}

/* Loads the current features frame and its artefact (caller releases both). */
static void load_current(struct test_hand *fx, struct frame *f, struct artefact_info *info)
{
	test_features_load(&fx->cfg, f, info, NULL);
}

/* Equal within 1e-12, NaN equal to NaN only. */
static void assert_value(const char *what, double uid, double s, double got, double expect)
{
	if (isnan(expect) ? !isnan(got) : !(fabs(got - expect) <= 1e-12))
		fail_msg("uid %g s %g %s: got %.17g, expected %.17g", uid, s, what, got, expect);
}

/* The row of (uid, window_days), or SIZE_MAX. */
static size_t find_row(const struct frame *f, double uid, double s)
{
	const double *u = test_column(f, "uid"), *w = test_column(f, "window_days");

	for (size_t i = 0; i < f->n_rows; i++)
		if (u[i] == uid && w[i] == s)
			return i;
	return SIZE_MAX;
}


static int same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(double)) == 0;
}

/*
 * Columns that may see revenue outside a row's window: labels, what is learnt
 * from labels, and the user's history at as_of (rev_to_date and the other
 * *_to_date columns: the same on all of a user's rows, never a feature).
 */
static int is_label_derived(const char *name)
{
	size_t n = strlen(name);

	return strncmp(name, "ltv_", 4) == 0 || (n > 3 && strcmp(name + n - 3, "_te") == 0) ||
	       strcmp(name, "campaign_train_users_log") == 0 ||
	       (n > 8 && strcmp(name + n - 8, "_to_date") == 0);
}

/* The earliest new event day of uid, or INT64_MAX when the user has none. */
static int64_t first_new_day(const struct new_event *ev, size_t n, double uid)
{
	int64_t d = INT64_MAX;

	for (size_t k = 0; k < n; k++)
		if ((double)ev[k].uid == uid && ev[k].day < d)
			d = ev[k].day;
	return d;
}

/* The base frame against rows_expected and users_expected, row by row in order. */
static void check_hand_rows(const struct frame *f)
{
	if (f->n_rows != N_ROWS)
		fail_msg("%zu rows, expected %zu", f->n_rows, N_ROWS);
	for (size_t i = 0; i < N_ROWS; i++) {
		const struct row_expect *e = &rows_expected[i];
		const struct user_expect *ue = NULL;

		/* rows follow uid order, then snapshot order */
		for (size_t j = 0; j < N_CHECKED; j++)
			assert_value(checked[j], e->v[0], e->v[1], test_column(f, checked[j])[i], e->v[j]);
		for (size_t k = 0; k < N_OF(users_expected); k++)
			if ((double)users_expected[k].uid == e->v[0])
				ue = &users_expected[k];
		assert_non_null(ue);
		assert_value("install_time", e->v[0], e->v[1], test_column(f, "install_time")[i], ue->install);
		assert_value("cost", e->v[0], e->v[1], test_column(f, "cost")[i], ue->cost);
		assert_value("split", e->v[0], e->v[1], test_column(f, "split")[i], ue->split);
		assert_value("app_code", e->v[0], e->v[1], test_column(f, "app_code")[i], ue->app);
		assert_value("campaign_code", e->v[0], e->v[1], test_column(f, "campaign_code")[i], ue->campaign);
	}
}

static void test_hand_computed_snapshot_rows(void **state)
{
	struct test_hand *fx = *state;
	struct frame f;
	struct artefact_info info;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char **dict = NULL;
	size_t n_dict = 0;
	char *path;
	cJSON *m;

	run_as_of(fx);
	load_current(fx, &f, &info);
	assert_true(info.as_of == AS_OF);
	check_hand_rows(&f);
	/* user_rep: exactly one row per user */
	{
		const double *u = test_column(&f, "uid"), *rep = test_column(&f, "user_rep");

		for (size_t k = 0; k < N_OF(users_expected); k++) {
			double reps = 0;

			for (size_t i = 0; i < f.n_rows; i++)
				if (u[i] == (double)users_expected[k].uid)
					reps += rep[i];
			assert_value("sum user_rep", (double)users_expected[k].uid, -1, reps, 1);
		}
	}
	/* the dictionaries hold only users installed by as_of */
	path = test_registry_path(fx->dir);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_int_equal(frame_load_dict(reg, info.id, "campaign", &dict, &n_dict, &err), 0);
	assert_int_equal(n_dict, 3);
	assert_string_equal(dict[0], "camp_x");
	assert_string_equal(dict[1], "camp_y");
	assert_string_equal(dict[2], "camp_z");
	frame_free_dict(dict, n_dict);
	assert_int_equal(frame_load_dict(reg, info.id, "app", &dict, &n_dict, &err), 0);
	assert_int_equal(n_dict, 2);
	assert_string_equal(dict[0], "app1");
	assert_string_equal(dict[1], "app2");
	frame_free_dict(dict, n_dict);
	registry_close(reg);
	free(path);
	/* counts are of users (user_rep rows), not of rows */
	m = cJSON_Parse(info.metrics);
	assert_non_null(m);
	assert_value("users", 0, 0, test_metric(m, "users"), 13);
	assert_value("rows", 0, 0, test_metric(m, "rows"), (double)N_ROWS);
	assert_value("train_users", 0, 0, test_metric(m, "train_users"), 3);           /* a1 a2 a8 */
	assert_value("validation_users", 0, 0, test_metric(m, "validation_users"), 2); /* a3 a9 */
	assert_value("not mature", 0, 0, test_metric(m, "users_not_mature_at_target"), 6);
	assert_value("after as_of", 0, 0, test_metric(m, "users_installed_after_as_of_ignored"), 1);
	cJSON_Delete(m);
	artefact_info_release(&info);
	frame_release(&f);
}

/*
 * Scoring rows (FEATURE_ROWS_AT_AGE): one per user installed by as_of, at
 * s = their age, reading every complete day; users installed after as_of absent.
 */
static void test_rows_at_age(void **state)
{
	struct test_hand *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct frame f;
	struct feature_base_stats st;
	char **apps = NULL, **camps = NULL;
	size_t n_apps = 0, n_camps = 0, i;
	char *path = test_registry_path(fx->dir);
	const double *u, *w, *age, *rev, *seen;

	run_as_of(fx);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (feature_build_base(reg, &fx->cfg, AS_OF, FEATURE_ROWS_AT_AGE, &f, &apps, &n_apps, &camps,
			       &n_camps, &st, &err) != 0)
		fail_msg("feature_build_base: %s", err.msg);
	assert_int_equal(f.n_rows, 13); /* uids 1..14 but 4 */
	u = test_column(&f, "uid");
	w = test_column(&f, "window_days");
	age = test_column(&f, "age_days");
	rev = test_column(&f, "rev_window");
	seen = test_column(&f, "rev_to_date");
	for (i = 0; i < f.n_rows; i++) {
		assert_true(u[i] != 4);
		assert_value("window_days == age_days", u[i], w[i], w[i], age[i]);
		assert_value("rev_window == rev_to_date", u[i], w[i], rev[i], seen[i]);
		assert_value("weight", u[i], w[i], test_column(&f, "weight")[i], 1);
		assert_value("user_rep", u[i], w[i], test_column(&f, "user_rep")[i], 1);
	}
	/* a4 (uid 5, 3 days): d0 2, d2 3; d3 (1) is incomplete */
	i = find_row(&f, 5, 3);
	assert_true(i != SIZE_MAX);
	assert_value("rev_window", 5, 3, rev[i], 5);
	assert_value("purchase_days", 5, 3, test_column(&f, "purchase_days")[i], 2);
	assert_value("days_since_purchase", 5, 3, test_column(&f, "days_since_purchase")[i], 0);
	assert_value("rev_max_day", 5, 3, test_column(&f, "rev_max_day")[i], 3);
	assert_value("ltv_7", 5, 3, test_column(&f, "ltv_7")[i], NAN);
	/* a5 (uid 6, 0 days): nothing complete */
	i = find_row(&f, 6, 0);
	assert_true(i != SIZE_MAX);
	assert_value("rev_window", 6, 0, rev[i], 0);
	assert_value("events_window", 6, 0, test_column(&f, "events_window")[i], 0);
	assert_value("days_since_active", 6, 0, test_column(&f, "days_since_active")[i], 0);
	assert_value("engagement", 6, 0, test_column(&f, "engagement")[i], 0);
	/* a1 (90 days): all of it; last purchase d60: 89 - 60; nothing in d83..d89 */
	i = find_row(&f, 1, 90);
	assert_true(i != SIZE_MAX);
	assert_value("rev_window", 1, 90, rev[i], 27.75);
	assert_value("days_since_purchase", 1, 90, test_column(&f, "days_since_purchase")[i], 29);
	assert_value("rev_last7", 1, 90, test_column(&f, "rev_last7")[i], 0);
	assert_value("events_last7_share", 1, 90, test_column(&f, "events_last7_share")[i], 0);
	assert_value("ltv_90", 1, 90, test_column(&f, "ltv_90")[i], 27.75);
	/* a7 (19 days): d0 1, d6 2, d7 4; last 7 days d12..d18 empty */
	i = find_row(&f, 7, 19);
	assert_true(i != SIZE_MAX);
	assert_value("rev_window", 7, 19, rev[i], 7);
	assert_value("days_since_purchase", 7, 19, test_column(&f, "days_since_purchase")[i], 11);
	assert_value("rev_per_purchase_day", 7, 19, test_column(&f, "rev_per_purchase_day")[i], 7.0 / 3);
	/* a12 (20 days): d8 6; last 7 days d13..d19 */
	i = find_row(&f, 12, 20);
	assert_true(i != SIZE_MAX);
	assert_value("rev_window", 12, 20, rev[i], 6);
	assert_value("first_purchase_day", 12, 20, test_column(&f, "first_purchase_day")[i], 8);
	assert_value("rev_last7", 12, 20, test_column(&f, "rev_last7")[i], 0);
	assert_int_equal(st.users, 13);
	assert_int_equal(st.users_after_as_of, 1);
	/* the dictionaries leave out camp_late */
	assert_int_equal(n_camps, 3);
	frame_free_dict(apps, n_apps);
	frame_free_dict(camps, n_camps);
	frame_release(&f);
	registry_close(reg);
	free(path);
}

static void assert_frames_identical(const struct frame *a, const struct frame *b, const char *why)
{
	assert_int_equal(a->n_rows, b->n_rows);
	assert_int_equal(a->n_cols, b->n_cols);
	for (size_t j = 0; j < a->n_cols; j++) {
		const struct frame_col ca = frame_col_at_index(a, j), cb = frame_col_at_index(b, j);

		assert_string_equal(a->names[j], b->names[j]);
		/* as doubles: a snapshot frame comes packed (fill_packed_rows) */
		for (size_t i = 0; i < a->n_rows; i++) {
			const double x = frame_col_at(ca, i), y = frame_col_at(cb, i);

			if (memcmp(&x, &y, sizeof(x)) != 0)
				fail_msg("column %s row %zu changed after %s", a->names[j], i, why);
		}
	}
}

/*
 * The registry's data read into memory once (user_data_load) builds, at
 * as_of and at earlier cut-offs, the very frame and dictionaries a read of
 * the registry at that cut-off builds (monitor builds all its frames from
 * one read).
 */
static void test_source_frames_equal_registry_frames(void **state)
{
	static const int64_t back_days[] = { 0, 1, 9, 30, 60 };
	struct test_hand *fx = *state;
	struct registry *reg = NULL;
	struct user_data data;
	const struct data_source src = data_source_memory(&data);
	struct ltv_err err = { 0 };
	char *path = test_registry_path(fx->dir);

	run_as_of(fx);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (user_data_load(reg, INT64_MIN, &data, &err) != 0)
		fail_msg("user_data_load: %s", err.msg);
	for (size_t k = 0; k < sizeof(back_days) / sizeof(back_days[0]); k++) {
		const int64_t cut = AS_OF - back_days[k] * SECONDS_PER_DAY;
		struct frame a, b;
		char **apps_a = NULL, **camps_a = NULL, **apps_b = NULL, **camps_b = NULL;
		size_t n_apps_a = 0, n_camps_a = 0, n_apps_b = 0, n_camps_b = 0;

		if (feature_build_base(reg, &fx->cfg, cut, FEATURE_ROWS_AT_AGE, &a, &apps_a, &n_apps_a,
				       &camps_a, &n_camps_a, NULL, &err) != 0)
			fail_msg("feature_build_base: %s", err.msg);
		if (feature_build_base_from(&src, &fx->cfg, cut, FEATURE_ROWS_AT_AGE, NULL, INT64_MAX,
					    &b, &apps_b, &n_apps_b, &camps_b, &n_camps_b, NULL, NULL,
					    NULL, &err) != 0)
			fail_msg("feature_build_base_from: %s", err.msg);
		assert_true(a.n_rows > 0);
		assert_frames_identical(&a, &b, "building from the source");
		assert_int_equal(n_apps_a, n_apps_b);
		assert_int_equal(n_camps_a, n_camps_b);
		for (size_t i = 0; i < n_camps_a; i++)
			assert_string_equal(camps_a[i], camps_b[i]);
		frame_free_dict(apps_a, n_apps_a);
		frame_free_dict(camps_a, n_camps_a);
		frame_free_dict(apps_b, n_apps_b);
		frame_free_dict(camps_b, n_camps_b);
		frame_release(&a);
		frame_release(&b);
	}
	user_data_release(&data);
	registry_close(reg);
	free(path);
}

/* (a) and (c): events at or after as_of and users installed after it change nothing at all. */
static void test_events_after_as_of_change_nothing(void **state)
{
	struct test_hand *fx = *state;
	struct frame before, after;
	struct artefact_info info_before, info_after;

	run_as_of(fx);
	load_current(fx, &before, &info_before);
	test_put_file(fx->dir, "events_a.csv", events_after_as_of_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	assert_string_equal(info_after.content_hash, info_before.content_hash);
	assert_frames_identical(&before, &after, "adding events after as_of");
	artefact_info_release(&info_after);
	frame_release(&after);

	test_put_file(fx->dir, "users_late.csv", users_late_csv);
	test_put_file(fx->dir, "events_late.csv", events_late_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	assert_non_null(strstr(info_after.metrics, "\"users_installed_after_as_of_ignored\":3"));
	/* the late users and events did arrive */
	{
		struct registry *reg = NULL;
		struct artefact_info ing;
		struct ltv_err err = { 0 };
		char *path = test_registry_path(fx->dir);

		assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
		assert_int_equal(registry_artefact_current(reg, "ingest", &ing, &err), 0);
		assert_int_equal(ing.version, 3);
		assert_non_null(strstr(ing.metrics, "\"users_loaded\":2"));
		assert_non_null(strstr(ing.metrics, "\"events_loaded\":2"));
		assert_non_null(strstr(ing.metrics, "\"events_rejected\":0"));
		artefact_info_release(&ing);
		registry_close(reg);
		free(path);
	}
	assert_string_equal(info_after.content_hash, info_before.content_hash);
	assert_frames_identical(&before, &after, "adding users installed after as_of");
	/* and the content is still the hand-computed one */
	check_hand_rows(&after);
	artefact_info_release(&info_before);
	artefact_info_release(&info_after);
	frame_release(&before);
	frame_release(&after);
}

/*
 * (b) with zero revenue: the sample is unchanged (same rows, same order); a
 * row of age s <= d, d the user's earliest new event day, keeps every column
 * bit for bit, as does every row of a user without new events; a row of age
 * s > d gains exactly the new events of days < s.
 */
static void test_session_on_day_d_changes_only_ages_above_d(void **state)
{
	struct test_hand *fx = *state;
	struct frame before, after;
	struct artefact_info info_before, info_after;
	size_t n_kept = 0, n_moved = 0;

	run_as_of(fx);
	load_current(fx, &before, &info_before);
	test_put_file(fx->dir, "events_b.csv", events_sessions_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	assert_int_equal(info_after.version, 2);
	assert_string_not_equal(info_after.content_hash, info_before.content_hash);
	assert_int_equal(after.n_rows, before.n_rows);
	assert_int_equal(after.n_cols, before.n_cols);
	for (size_t i = 0; i < before.n_rows; i++) {
		const double uid = test_column(&before, "uid")[i], s = test_column(&before, "window_days")[i];
		const int64_t d = first_new_day(session_events, N_OF(session_events), uid);
		double new_events = 0;

		assert_value("uid", uid, s, test_column(&after, "uid")[i], uid);
		assert_value("window_days", uid, s, test_column(&after, "window_days")[i], s);
		if (s <= (double)d) {
			for (size_t j = 0; j < before.n_cols; j++)
				if (!same_bits(after.cols[j][i], before.cols[j][i]))
					fail_msg("uid %g s %g: %s changed by an event on day %lld >= s",
						 uid, s, before.names[j], (long long)d);
			n_kept++;
			continue;
		}
		for (size_t k = 0; k < N_OF(session_events); k++)
			if ((double)session_events[k].uid == uid && (double)session_events[k].day < s)
				new_events++;
		assert_true(new_events > 0);
		assert_value("events_window", uid, s, test_column(&after, "events_window")[i],
			     test_column(&before, "events_window")[i] + new_events);
		/* labels, sample and the revenue features did not move */
		assert_value("rev_window", uid, s, test_column(&after, "rev_window")[i],
			     test_column(&before, "rev_window")[i]);
		assert_value("weight", uid, s, test_column(&after, "weight")[i], test_column(&before, "weight")[i]);
		assert_value("user_rep", uid, s, test_column(&after, "user_rep")[i], test_column(&before, "user_rep")[i]);
		assert_value("ltv_30", uid, s, test_column(&after, "ltv_30")[i], test_column(&before, "ltv_30")[i]);
		n_moved++;
	}
	/* a1 s=1,3; a2 s=1,3; a3 s=1; a9 s=10; a13 s=1,3 kept, plus 9 rows of untouched users;
	 * moved: a1 s=10, a2 s=10, a3 s=3,10, a8 s=1, a13 s=10 */
	assert_int_equal(n_moved, 6);
	assert_int_equal(n_kept, N_ROWS - 6);
	/* the day-d boundary, spelled out: a1's session on d3 is not in its s=3 row, in its s=10 row */
	assert_value("events_window", 1, 3, test_column(&after, "events_window")[find_row(&after, 1, 3)], 3);
	assert_value("events_window", 1, 10, test_column(&after, "events_window")[find_row(&after, 1, 10)], 6);
	assert_value("days_since_active", 1, 10,
		     test_column(&after, "days_since_active")[find_row(&after, 1, 10)], 4); /* 9 - d5 */
	assert_value("days_since_active", 3, 3,
		     test_column(&after, "days_since_active")[find_row(&after, 3, 3)], 1); /* 2 - d1 */
	assert_value("active_days_window", 8, 1,
		     test_column(&after, "active_days_window")[find_row(&after, 8, 1)], 1);
	artefact_info_release(&info_before);
	artefact_info_release(&info_after);
	frame_release(&before);
	frame_release(&after);
}

/*
 * (b) with revenue, rows matched by (uid, window_days): the feature columns
 * of a row of age s <= d keep their bits (labels, rev_to_date, weight,
 * user_rep and the label encodings may move); a row of age s > d gains the
 * new revenue of days < s; the sample follows the new revenue.
 */
static void test_revenue_on_day_d_changes_only_ages_above_d(void **state)
{
	struct test_hand *fx = *state;
	struct frame before, after;
	struct artefact_info info_before, info_after;
	size_t n_matched = 0, n_features = 0;

	run_as_of(fx);
	load_current(fx, &before, &info_before);
	test_put_file(fx->dir, "events_b.csv", events_revenue_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	/* a9 and a12 became payers: 1 row of weight 3 → 3 rows of weight 1 each */
	assert_int_equal(after.n_rows, before.n_rows + 4);
	for (size_t i = 0; i < after.n_rows; i++) {
		const double uid = test_column(&after, "uid")[i], s = test_column(&after, "window_days")[i];
		const int64_t d = first_new_day(revenue_events, N_OF(revenue_events), uid);
		const size_t b = find_row(&before, uid, s);
		double new_rev = 0;

		if (b == SIZE_MAX)
			continue;
		n_matched++;
		if (s <= (double)d) {
			for (size_t j = 0; j < before.n_cols; j++) {
				const char *name = before.names[j];

				assert_string_equal(after.names[j], name);
				if (is_label_derived(name) || strcmp(name, "weight") == 0 ||
				    strcmp(name, "user_rep") == 0)
					continue;
				if (!same_bits(after.cols[j][i], before.cols[j][b]))
					fail_msg("uid %g s %g: feature %s changed by revenue on day %lld >= s",
						 uid, s, name, (long long)d);
				n_features++;
			}
			continue;
		}
		for (size_t k = 0; k < N_OF(revenue_events); k++)
			if ((double)revenue_events[k].uid == uid && (double)revenue_events[k].day < s)
				new_rev += revenue_events[k].revenue;
		assert_true(new_rev > 0);
		assert_value("rev_window", uid, s, test_column(&after, "rev_window")[i],
			     test_column(&before, "rev_window")[b] + new_rev);
	}
	assert_int_equal(n_matched, N_ROWS);
	assert_true(n_features >= (N_ROWS - 3) * 18); /* rows but a1 s=3,10 and a12 s=10 */
	/* the labels and the floor did take the new revenue */
	assert_value("ltv_7", 1, 1, test_column(&after, "ltv_7")[find_row(&after, 1, 1)], 15.75 + 8);
	assert_value("ltv_30", 2, 10, test_column(&after, "ltv_30")[find_row(&after, 2, 10)], 2.5 + 3);
	assert_value("ltv_7", 2, 10, test_column(&after, "ltv_7")[find_row(&after, 2, 10)], 2.5);
	assert_value("ltv_30", 9, 3, test_column(&after, "ltv_30")[find_row(&after, 9, 3)], 4);
	assert_value("rev_to_date", 11, 1, test_column(&after, "rev_to_date")[find_row(&after, 11, 1)], 5);
	/* the sample: a9 and a12 have every snapshot at weight 1 now; a11 (revenue on d7, mature
	 * at 7 only) is still one row of weight 2 */
	for (int s = 1; s <= 10; s += s == 1 ? 2 : 7) {
		size_t i9 = find_row(&after, 9, s), i12 = find_row(&after, 12, s);

		assert_true(i9 != SIZE_MAX && i12 != SIZE_MAX);
		assert_value("weight", 9, s, test_column(&after, "weight")[i9], 1);
		assert_value("user_rep", 9, s, test_column(&after, "user_rep")[i9], s == 1);
		assert_value("weight", 12, s, test_column(&after, "weight")[i12], 1);
	}
	assert_true(find_row(&after, 11, 3) == SIZE_MAX);
	assert_value("weight", 11, 1, test_column(&after, "weight")[find_row(&after, 11, 1)], 2);
	/* a12's s=3 row reads its new d2 purchase */
	assert_value("rev_window", 12, 3, test_column(&after, "rev_window")[find_row(&after, 12, 3)], 1);
	artefact_info_release(&info_before);
	artefact_info_release(&info_after);
	frame_release(&before);
	frame_release(&after);
}

/*
 * Held-out rows (FEATURE_ROWS_HELD_OUT) of the fixture's registry at AS_OF.
 * Caller releases the frame.
 */
static void build_held_out(struct test_hand *fx, struct frame *f)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char **apps = NULL, **camps = NULL;
	size_t n_apps = 0, n_camps = 0;
	char *path = test_registry_path(fx->dir);

	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (feature_build_base(reg, &fx->cfg, AS_OF, FEATURE_ROWS_HELD_OUT, f, &apps, &n_apps, &camps,
			       &n_camps, NULL, &err) != 0)
		fail_msg("feature_build_base (held out): %s", err.msg);
	frame_free_dict(apps, n_apps);
	frame_free_dict(camps, n_camps);
	registry_close(reg);
	free(path);
}

/* The row of (uid, held_out_h, held_out_k), or SIZE_MAX. */
static size_t find_held_out(const struct frame *f, double uid, double h, double k)
{
	const double *u = test_column(f, "uid"), *hh = test_column(f, "held_out_h"), *kk = test_column(f, "held_out_k");

	for (size_t i = 0; i < f->n_rows; i++)
		if (u[i] == uid && hh[i] == h && kk[i] == k)
			return i;
	return SIZE_MAX;
}

/*
 * Held-out rows, worked out by hand (validation_days 28, so T'_k = as_of -
 * H days + 28 k days while T'_k < as_of, and a row while the age s < H):
 *  H = 7 (validation installs 2025-01-25 < i <= 02-22), T'_0 = 02-22:
 *    a11 s=1, a14 s=2 (one second short of 3), a13 s=3; older users are >= 7.
 *  H = 30 (01-02 < i <= 01-30): T'_0 = 01-30: a3 s=14, a9 s=0 (installed at
 *    T'_0); T'_1 = 02-27: a9 s=28 (a3 is 42).
 *  H = 90 (i <= 12-01, after 2024-11-03): a1 at T'_0..3 = 12-01, 12-29,
 *    01-26, 02-23: s = 0, 28, 56, 84.
 * Each row is, column for column, the row a scoring frame built at T'_k
 * holds for that user (app and campaign codes aside: they index the
 * dictionaries of the users installed by each frame's as_of), and carries
 * the user's labels at as_of.
 */
static void test_held_out_rows_are_scoring_rows(void **state)
{
	static const struct { double uid, h, k, s, label; } expect[] = {
		{ 11, 7, 0, 1, NAN }, /* a11: 8 days old at as_of, d7 is not before 7: ltv_7 = 0 */
		{ 13, 7, 0, 3, 2.5 }, { 14, 7, 0, 2, 1 },
		{ 3, 30, 0, 14, 3 }, { 9, 30, 0, 0, 0 }, { 9, 30, 1, 28, 0 },
		{ 1, 90, 0, 0, 27.75 }, { 1, 90, 1, 28, 27.75 }, { 1, 90, 2, 56, 27.75 },
		{ 1, 90, 3, 84, 27.75 },
	};
	struct test_hand *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct frame ho;
	char *path = test_registry_path(fx->dir);
	size_t compared = 0;

	run_as_of(fx);
	build_held_out(fx, &ho);
	assert_int_equal(ho.n_rows, N_OF(expect));
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	for (size_t e = 0; e < N_OF(expect); e++) {
		const size_t i = find_held_out(&ho, expect[e].uid, expect[e].h, expect[e].k);
		const int64_t t = AS_OF - (int64_t)expect[e].h * 86400 + (int64_t)expect[e].k * 28 * 86400;
		char **apps = NULL, **camps = NULL, label[32];
		size_t n_apps = 0, n_camps = 0, j;
		struct frame at;

		if (i == SIZE_MAX)
			fail_msg("no held-out row uid %g H %g k %g", expect[e].uid, expect[e].h, expect[e].k);
		assert_value("window_days", expect[e].uid, expect[e].s, test_column(&ho, "window_days")[i], expect[e].s);
		assert_value("age_days", expect[e].uid, expect[e].s, test_column(&ho, "age_days")[i], expect[e].s);
		snprintf(label, sizeof(label), "ltv_%g", expect[e].h);
		if (!isnan(expect[e].label))
			assert_value(label, expect[e].uid, expect[e].s, test_column(&ho, label)[i], expect[e].label);
		if (feature_build_base(reg, &fx->cfg, t, FEATURE_ROWS_AT_AGE, &at, &apps, &n_apps, &camps,
				       &n_camps, NULL, &err) != 0)
			fail_msg("feature_build_base at T': %s", err.msg);
		for (j = 0; j < at.n_rows && test_column(&at, "uid")[j] != expect[e].uid; j++)
			;
		assert_true(j < at.n_rows);
		for (size_t c = 0; c < at.n_cols; c++) {
			const char *name = at.names[c];

			if (strncmp(name, "ltv_", 4) == 0 || strcmp(name, "app_code") == 0 ||
			    strcmp(name, "campaign_code") == 0)
				continue;
			if (!same_bits(test_column(&ho, name)[i], at.cols[c][j]))
				fail_msg("uid %g at T'_%g of H %g: %s is %.17g held out, %.17g scored at T'",
					 expect[e].uid, expect[e].k, expect[e].h, name, test_column(&ho, name)[i],
					 at.cols[c][j]);
			compared++;
		}
		frame_free_dict(apps, n_apps);
		frame_free_dict(camps, n_camps);
		frame_release(&at);
	}
	assert_true(compared >= N_OF(expect) * 25);
	/* a11's ltv_7 is its revenue of d0..d6: none (its d2 session has no revenue) */
	assert_value("ltv_7", 11, 1, test_column(&ho, "ltv_7")[find_held_out(&ho, 11, 7, 0)], 0);
	/* a1 at 28 days: history to date is d0, d1, d3 and d20 only, not the d60 purchase */
	assert_value("rev_to_date", 1, 28, test_column(&ho, "rev_to_date")[find_held_out(&ho, 1, 90, 1)], 20.75);
	registry_close(reg);
	frame_release(&ho);
	free(path);
}

/*
 * Leakage of the held-out rows: events after as_of change nothing at all;
 * revenue on a user's day d changes the features of that user's rows of age
 * s > d only, while a row of age s <= d (the event comes after its T') keeps
 * every column but its labels, which take the new revenue when d < H.
 */
static void test_held_out_leakage(void **state)
{
	struct test_hand *fx = *state;
	struct frame before, after;
	size_t n_kept = 0, n_label_moved = 0;

	run_as_of(fx);
	build_held_out(fx, &before);
	test_put_file(fx->dir, "events_a.csv", events_after_as_of_csv);
	run_as_of(fx);
	build_held_out(fx, &after);
	assert_frames_identical(&before, &after, "adding events after as_of (held-out rows)");
	frame_release(&after);

	test_put_file(fx->dir, "events_b.csv", events_revenue_csv);
	run_as_of(fx);
	build_held_out(fx, &after);
	assert_int_equal(after.n_rows, before.n_rows);
	for (size_t i = 0; i < before.n_rows; i++) {
		const double uid = test_column(&before, "uid")[i], s = test_column(&before, "window_days")[i];
		const double h = test_column(&before, "held_out_h")[i];
		const int64_t d = first_new_day(revenue_events, N_OF(revenue_events), uid);
		const size_t a = find_held_out(&after, uid, h, test_column(&before, "held_out_k")[i]);
		char label[32];

		assert_true(a != SIZE_MAX);
		if (s > (double)d) {
			assert_true(test_column(&after, "rev_window")[a] > test_column(&before, "rev_window")[i]);
			continue;
		}
		for (size_t j = 0; j < before.n_cols; j++) {
			if (strncmp(before.names[j], "ltv_", 4) == 0)
				continue;
			if (!same_bits(test_column(&after, before.names[j])[a], before.cols[j][i]))
				fail_msg("uid %g s %g: %s changed by revenue on day %lld >= s", uid, s,
					 before.names[j], (long long)d);
		}
		n_kept++;
		snprintf(label, sizeof(label), "ltv_%g", h);
		if (d < (int64_t)h && d != INT64_MAX) {
			assert_false(same_bits(test_column(&after, label)[a], test_column(&before, label)[i]));
			n_label_moved++;
		}
	}
	/* kept: every row but a1 s=28,56,84 (revenue on d2); labels moved: a1 s=0 (ltv_90 + 8),
	 * a9 s=0 and s=28 (ltv_30 + 4 on d29, after T'_1) */
	assert_int_equal(n_kept, before.n_rows - 3);
	assert_int_equal(n_label_moved, 3);
	assert_value("ltv_30", 9, 28, test_column(&after, "ltv_30")[find_held_out(&after, 9, 30, 1)], 4);
	assert_value("rev_window", 9, 28, test_column(&after, "rev_window")[find_held_out(&after, 9, 30, 1)], 0);
	frame_release(&before);
	frame_release(&after);
}

/*
 * The parameters travel with the artefact (include/ltv/feature_params.h):
 * written beside it, read back by model_data whatever the config says now,
 * and the split column is exactly the one split rule. Boundary cases by hand:
 * at the target 30 with validation_days 28 the cut is as_of - 58 days =
 * 2025-01-02T00:00:00Z (a8 installed exactly then: training).
 */
static void test_params_travel_with_artefact(void **state)
{
	struct test_hand *fx = *state;
	struct frame f;
	struct artefact_info info;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct feature_params p;
	struct model_data d;
	struct row_split split;
	char *path;
	const double cut = 1735776000; /* 2025-01-02T00:00:00Z */
	size_t n_valid_col = 0;

	run_as_of(fx);
	load_current(fx, &f, &info);
	/* the config changes after training: nothing below may see it */
	test_set(&fx->cfg, "features.target_horizon=%s", "90");
	test_set(&fx->cfg, "features.horizons=%s", "30,90,180");
	test_set(&fx->cfg, "features.validation_days=%s", "7");
	path = test_registry_path(fx->dir);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (feature_params_load(reg, &info, &p, &err) != 0)
		fail_msg("feature_params_load: %s", err.msg);
	assert_true(p.as_of == AS_OF);
	assert_int_equal(p.snapshots.n, 4);
	assert_true(p.snapshots.v[0] == 1 && p.snapshots.v[1] == 3 && p.snapshots.v[2] == 10 &&
		    p.snapshots.v[3] == 90);
	assert_int_equal(p.horizons.n, 3);
	assert_true(p.horizons.v[0] == 7 && p.horizons.v[1] == 30 && p.horizons.v[2] == 90);
	assert_true(p.target_horizon == 30);
	assert_true(p.validation_days == 28);
	assert_int_equal(feature_params_horizon_index(&p, 90), 2);
	assert_int_equal(feature_params_horizon_index(&p, 180), -1);
	/* the split rule at its boundaries */
	assert_true(feature_params_valid_after(&p, AS_OF, 30) == cut);
	assert_int_equal(feature_params_split(&p, AS_OF, 30, 58, cut), SPLIT_TRAIN);
	assert_int_equal(feature_params_split(&p, AS_OF, 30, 57.9, cut + 1), SPLIT_VALID);
	assert_int_equal(feature_params_split(&p, AS_OF, 30, 29.99, cut + 86400 * 28), SPLIT_SCORE);
	assert_int_equal(feature_params_split(&p, AS_OF, 7, 40, cut + 1), SPLIT_TRAIN);
	assert_int_equal(feature_params_split(&p, AS_OF, 7, 30, AS_OF - 35 * 86400 + 1), SPLIT_VALID);
	/* the artefact's split column is that rule at the target horizon, row by row */
	{
		const double *split_col = test_column(&f, "split"), *age = test_column(&f, "age_days");
		const double *install = test_column(&f, "install_time");

		for (size_t i = 0; i < f.n_rows; i++) {
			assert_value("split", test_column(&f, "uid")[i], test_column(&f, "window_days")[i], split_col[i],
				     feature_params_split(&p, AS_OF, 30, age[i], install[i]));
			n_valid_col += split_col[i] == SPLIT_VALID && test_column(&f, "window_days")[i] < 30;
		}
	}
	/* model data carries the artefact's parameters, and splits by them (weights repeat rows) */
	if (model_data_load_artefacts(reg, &info, NULL, &d, &err) != 0)
		fail_msg("model_data_load_artefacts: %s", err.msg);
	assert_true(d.as_of == AS_OF && d.params.target_horizon == 30 && d.params.validation_days == 28);
	assert_int_equal(d.params.horizons.n, 3);
	model_data_split_weighted(&d, 30, 0, &split);
	assert_int_equal(split.n_valid, n_valid_col);
	assert_true(split.n_valid > 0 && split.n_train > 0);
	row_split_release(&split);
	/* the validation rows alone are model_data_split's, repeats and order included */
	for (size_t k = 0; k < d.params.horizons.n; k++) {
		struct row_split whole, valid;

		model_data_split(&d, d.params.horizons.v[k], 0, &whole);
		model_data_split_valid(&d, d.params.horizons.v[k], 0, &valid);
		assert_true(d.params.horizons.v[k] != 30 || (whole.n_valid > 0 && whole.n_train > 0));
		assert_int_equal(valid.n_train, 0);
		assert_int_equal(valid.n_valid, whole.n_valid);
		assert_memory_equal(valid.valid, whole.valid, whole.n_valid * sizeof(size_t));
		row_split_release(&whole);
		row_split_release(&valid);
	}
	/* score explains the difference with today's config */
	{
		char buf[512];

		assert_int_equal(feature_params_config_diff(&p, &fx->cfg, buf, sizeof(buf)), 3);
		assert_string_equal(buf, "target_horizon 30 (config: 90), horizons [7, 30, 90] (config: "
				    "[30, 90, 180]), validation_days 28 (config: 7)");
	}
	model_data_release(&d);
	feature_params_release(&p);
	registry_close(reg);
	free(path);
	artefact_info_release(&info);
	frame_release(&f);
}

/*
 * Rows are filled in parallel over users (chunks of 1,024): the frames of
 * every mode but held-out's, built with one thread and with two, are the
 * same to the bit.
 */
static void test_frames_same_whatever_the_threads(void **state)
{
	static const enum feature_rows modes[] = { FEATURE_ROWS_SNAPSHOTS, FEATURE_ROWS_AT_AGE };
	struct test_pipeline *p = test_pipeline_new(5000, 21, "1");
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t as_of = 0;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	{
		const struct data_source rs = data_source_registry(reg);

		assert_int_equal(data_source_max_event_time(&rs, &as_of, &err), 0);
	}
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct frame f[2];
		char **apps[2], **camps[2];
		size_t n_apps[2], n_camps[2];

		for (int k = 0; k < 2; k++) {
			test_set(&p->cfg, "run.jobs=%d", k + 1);
			if (feature_build_base(reg, &p->cfg, as_of, modes[m], &f[k], &apps[k], &n_apps[k],
					       &camps[k], &n_camps[k], NULL, &err) != 0)
				fail_msg("feature_build_base: %s", err.msg);
		}
		assert_true(f[0].n_rows > 3000);
		assert_frames_identical(&f[0], &f[1], "two threads");
		for (int k = 0; k < 2; k++) {
			frame_free_dict(apps[k], n_apps[k]);
			frame_free_dict(camps[k], n_camps[k]);
			frame_release(&f[k]);
		}
	}
	registry_close(reg);
	test_pipeline_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hand_computed_snapshot_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_at_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_after_as_of_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_frames_equal_registry_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_on_day_d_changes_only_ages_above_d, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_revenue_on_day_d_changes_only_ages_above_d, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_params_travel_with_artefact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_out_rows_are_scoring_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_out_leakage, setup, teardown),
		cmocka_unit_test(test_frames_same_whatever_the_threads),
	};

	log_level_current = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
