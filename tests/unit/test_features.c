/*
 * The features stage against a hand-written fixture with a fixed as_of, and
 * the leakage proof the issue asks for: "no event after as_of, and no event
 * outside the observation window, can change a feature".
 *
 * as_of = 2025-03-01T00:00:00Z, obs_days 2, horizons [7, 30, 90], target 30,
 * validation_days 28, so validation cohorts are those installed after
 * 2025-01-02T00:00:00Z with at least 30 complete days. Every expected value
 * below is worked out by hand in the comments next to it.
 */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

#include "ltv/config.h"
#include "ltv/frame.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/runner.h"

#include "fixture.h"

#define AS_OF 1740787200 /* 2025-03-01T00:00:00Z */

static const char users_csv[] =
	"user_id,app_id,campaign,install_time,cost\n"
	"a1,app1,camp_x,2024-12-01T00:00:00Z,1.5\n"  /* uid 1: age 90, train */
	"a2,app1,camp_y,2024-12-10T12:00:00Z,2\n"    /* uid 2: age 80, train */
	"a3,app2,camp_x,2025-01-15T12:00:00Z,\n"     /* uid 3: age 44, validation, no cost */
	"a6,app1,camp_late,2025-03-05T00:00:00Z,1\n" /* uid 4: installed after as_of */
	"a4,app1,camp_x,2025-02-25T06:00:00Z,0.5\n"  /* uid 5: age 3, score */
	"a5,app2,camp_z,2025-02-28T12:00:00Z,1\n"    /* uid 6: age 0, score */
	"a7,app1,camp_x,2025-02-10T00:00:00Z,0\n"    /* uid 7: age 19, score */
	"a8,app2,camp_z,2025-01-02T00:00:00Z,0.25\n" /* uid 8: age 58, install == boundary: train */
	"a9,app2,camp_z,2025-01-30T00:00:00Z,0.75\n" /* uid 9: age exactly 30: validation */
	"a10,app1,camp_y,2025-01-30T00:00:01Z,3\n";  /* uid 10: age 29 (one second short): score */

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
	"a4,2025-02-27T07:00:00Z,3,purchase\n"   /* d2, complete, outside the window */
	"a4,2025-02-28T08:00:00Z,1,purchase\n"   /* d3, before as_of but the day is incomplete */
	"a5,2025-02-28T13:00:00Z,4,purchase\n"   /* d0, incomplete at as_of: not read */
	"a7,2025-02-10T00:00:00Z,1,purchase\n"   /* d0 */
	"a7,2025-02-16T23:59:59Z,2,purchase\n"   /* d6: ltv_7 */
	"a7,2025-02-17T00:00:00Z,4,purchase\n"   /* d7: not in ltv_7 */
	"a6,2025-03-05T01:00:00Z,9,purchase\n";  /* user installed after as_of */

/* (a) Events at or after as_of only, many inside a user's d0/d1 by day index. */
static const char events_after_as_of_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2025-03-01T00:00:00Z,100,purchase\n" /* exactly at as_of */
	"a1,2025-03-01T00:00:01Z,0,session\n"
	"a2,2025-06-01T00:00:00Z,60,purchase\n"
	"a3,2025-03-20T00:00:00Z,40,purchase\n"
	"a4,2025-03-01T05:59:59Z,50,purchase\n"  /* a4's d3, the same day as a pre-as_of event */
	"a5,2025-03-01T01:00:00Z,20,purchase\n"  /* a5's d0: inside the window by day index */
	"a5,2025-03-01T11:59:59Z,0,session\n"    /* a5's d0 */
	"a7,2025-03-02T00:00:00Z,30,purchase\n"
	"a6,2025-03-06T00:00:00Z,5,purchase\n"
	"a8,2025-03-01T00:00:00Z,9,purchase\n"
	"a9,2025-03-01T00:00:00Z,9,purchase\n"
	"a10,2025-03-01T00:00:00Z,9,purchase\n"; /* a10's d29 */

/* Users installed after as_of, under names that would sort first in the dictionaries. */
static const char users_late_csv[] =
	"user_id,app_id,campaign,install_time,cost\n"
	"late1,aaa_app,aaa_camp,2025-03-01T00:00:01Z,5\n" /* one second after as_of */
	"late2,app1,camp_a,2025-03-02T00:00:00Z,5\n";
static const char events_late_csv[] =
	"user_id,event_time,revenue,event\n"
	"late1,2025-03-01T00:00:01Z,3,purchase\n"
	"late2,2025-03-02T01:00:00Z,3,purchase\n";

/* (b) Events before as_of on days >= obs_days. */
static const char events_outside_window_csv[] =
	"user_id,event_time,revenue,event\n"
	"a1,2024-12-03T00:00:00Z,8,purchase\n"   /* d2 */
	"a1,2024-12-05T00:00:00Z,0,session\n"    /* d4 */
	"a1,2025-02-01T00:00:00Z,6,purchase\n"   /* d62 */
	"a1,2025-02-28T23:59:59Z,1,purchase\n"   /* d89, the last complete day */
	"a2,2024-12-25T00:00:00Z,3,purchase\n"   /* d14 */
	"a3,2025-01-18T00:00:00Z,2,purchase\n"   /* d2 */
	"a4,2025-02-27T09:00:00Z,1,purchase\n"   /* d2 of an immature user */
	"a7,2025-02-12T00:00:00Z,1,purchase\n"   /* d2 */
	"a8,2025-01-04T00:00:00Z,0,session\n"    /* d2 */
	"a9,2025-02-28T23:59:59Z,4,purchase\n";  /* d29 */

struct expect {
	int64_t uid;
	int64_t install;
	double age, window, rev, rev_d0, rev_max, purchases, events, events_d0, active;
	double first_purchase, cost, split, ltv7, ltv30, ltv90, app, campaign;
	double engagement;
};

#define N NAN
/* Campaign codes: camp_x 0, camp_y 1, camp_z 2 (camp_late belongs to a6 only: absent). */
static const struct expect base[] = {
	/* a1: d0 1.5 + 0 (2 events), d1 4.25; ltv_7 += 10, ltv_30 += 5, ltv_90 += 7 */
	{ 1, 1733011200, 90, 2, 5.75, 1.5, 4.25, 2, 3, 2, 2, 0, 1.5, 0, 15.75, 20.75, 27.75, 0, 0,
	  1.3862943611198906 /* log1p(3) * 2 / 2 */ },
	/* a2: d1 only: session + 2.5; 80 days old: no ltv_90 */
	{ 2, 1733832000, 80, 2, 2.5, 0, 2.5, 1, 2, 0, 1, 1, 2, 0, 2.5, 2.5, N, 0, 1,
	  1.0986122886681096 / 2 },
	/* a3: d0 session; d4 purchase is a label only; 44 days old: no ltv_90 */
	{ 3, 1736942400, 44, 2, 0, 0, 0, 0, 1, 1, 1, N, N, 1, 3, 3, N, 1, 0,
	  0.69314718055994529 / 2 },
	/* a4: d0 purchase 2; d2 (3) is outside the window, d3 is incomplete */
	{ 5, 1740463200, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0.5, 2, N, N, N, 0, 0,
	  0.69314718055994529 / 2 },
	/* a5: installed 12 h before as_of: day 0 is incomplete, nothing is read */
	{ 6, 1740744000, 0, 0, 0, 0, 0, 0, 0, 0, 0, N, 1, 2, N, N, N, 1, 2, 0 },
	/* a7: d0 1; ltv_7 = d0..d6 = 1 + 2 */
	{ 7, 1739145600, 19, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 3, N, N, 0, 0,
	  0.69314718055994529 / 2 },
	{ 8, 1735776000, 58, 2, 0, 0, 0, 0, 0, 0, 0, N, 0.25, 0, 0, 0, N, 1, 2, 0 },
	{ 9, 1738195200, 30, 2, 0, 0, 0, 0, 0, 0, 0, N, 0.75, 1, 0, 0, N, 1, 2, 0 },
	{ 10, 1738195201, 29, 2, 0, 0, 0, 0, 0, 0, 0, N, 3, 2, 0, N, N, 0, 1, 0 },
};
#define N_ROWS (sizeof(base) / sizeof(base[0]))

/* Labels after the (b) events, by the same rows. */
static const double ltv_after_b[N_ROWS][3] = {
	{ 15.75 + 8, 20.75 + 8, 27.75 + 8 + 6 + 1 },
	{ 2.5, 2.5 + 3, N },
	{ 3 + 2, 3 + 2, N },
	{ N, N, N },
	{ N, N, N },
	{ 3 + 1, N, N },
	{ 0, 0, N },
	{ 0, 4, N },
	{ 0, N, N },
};
#undef N

struct fixture {
	char *dir;
	struct config cfg;
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char *u, *e;

	fx->dir = test_scratch_dir();
	if (!fx->dir)
		return -1;
	u = test_write_file(fx->dir, "users.csv", users_csv);
	e = test_write_file(fx->dir, "events.csv", events_csv);
	if (!u || !e)
		return -1;
	free(u);
	free(e);
	test_config_init(&fx->cfg, fx->dir, "users*.csv", "events*.csv", "1");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	config_release(&fx->cfg);
	test_scratch_free(fx->dir);
	free(fx);
	return 0;
}

static void run_as_of(struct fixture *fx)
{
	/* Only the stages under test: model stages need more than nine users. */
	const struct run_options opts = { .as_of = AS_OF, .to = "features", .command = "test" };

	test_run(&fx->cfg, &opts);
}

/* Loads the current features frame and its artefact (caller releases both). */
static void load_current(struct fixture *fx, struct frame *f, struct artefact_info *info)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char *path = xasprintf("%s/models/registry.sqlite", fx->dir);

	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (registry_artefact_current(reg, "features", info, &err) != 0)
		fail_msg("features: %s", err.msg);
	if (frame_load(reg, info->id, NULL, f, &err) != 0)
		fail_msg("frame_load: %s", err.msg);
	registry_close(reg);
	free(path);
}

static const double *col(const struct frame *f, const char *name)
{
	const double *c = frame_column(f, name);

	if (!c)
		fail_msg("features frame has no column '%s'", name);
	return c;
}

/* Equal, NaN equal to NaN. */
static void assert_value(const char *what, int64_t uid, double got, double expect)
{
	if (isnan(expect) ? !isnan(got) : !(fabs(got - expect) <= 1e-12))
		fail_msg("uid %lld %s: got %.17g, expected %.17g", (long long)uid, what, got, expect);
}

static size_t row_of(const struct frame *f, int64_t uid)
{
	const double *u = col(f, "uid");

	for (size_t i = 0; i < f->n_rows; i++)
		if (u[i] == (double)uid)
			return i;
	fail_msg("no row for uid %lld", (long long)uid);
	return 0;
}

/* A feature column, as opposed to a label or something computed from labels. */
/*
 * Columns allowed to see past the observation window: the labels, what is
 * learnt from labels, and rev_to_date — the revenue observed so far, which
 * the scorer uses only as a floor and no model reads as a feature.
 */
static int is_label_derived(const char *name)
{
	size_t n = strlen(name);

	return strncmp(name, "ltv_", 4) == 0 || (n > 3 && strcmp(name + n - 3, "_te") == 0) ||
	       strcmp(name, "campaign_train_users_log") == 0 || strcmp(name, "rev_to_date") == 0;
}

static void add_events_file(struct fixture *fx, const char *name, const char *text)
{
	char *p = test_write_file(fx->dir, name, text);

	assert_non_null(p);
	free(p);
}

static void test_hand_computed_features(void **state)
{
	struct fixture *fx = *state;
	struct frame f;
	struct artefact_info info;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char **dict = NULL;
	size_t n_dict = 0;
	char *path;

	run_as_of(fx);
	load_current(fx, &f, &info);
	assert_true(info.as_of == AS_OF);
	assert_int_equal(f.n_rows, N_ROWS);
	for (size_t k = 0; k < N_ROWS; k++) {
		const struct expect *e = &base[k];
		size_t i = row_of(&f, e->uid);

		assert_int_equal(i, k); /* rows follow uid order, skipping a6 */
		assert_value("install_time", e->uid, col(&f, "install_time")[i], (double)e->install);
		assert_value("age_days", e->uid, col(&f, "age_days")[i], e->age);
		assert_value("window_days", e->uid, col(&f, "window_days")[i], e->window);
		assert_value("rev_window", e->uid, col(&f, "rev_window")[i], e->rev);
		assert_value("rev_d0", e->uid, col(&f, "rev_d0")[i], e->rev_d0);
		assert_value("rev_max_day", e->uid, col(&f, "rev_max_day")[i], e->rev_max);
		assert_value("purchases_window", e->uid, col(&f, "purchases_window")[i], e->purchases);
		assert_value("events_window", e->uid, col(&f, "events_window")[i], e->events);
		assert_value("events_d0", e->uid, col(&f, "events_d0")[i], e->events_d0);
		assert_value("active_days_window", e->uid, col(&f, "active_days_window")[i], e->active);
		assert_value("first_purchase_day", e->uid, col(&f, "first_purchase_day")[i],
			     e->first_purchase);
		assert_value("cost", e->uid, col(&f, "cost")[i], e->cost);
		assert_value("split", e->uid, col(&f, "split")[i], e->split);
		assert_value("ltv_7", e->uid, col(&f, "ltv_7")[i], e->ltv7);
		assert_value("ltv_30", e->uid, col(&f, "ltv_30")[i], e->ltv30);
		assert_value("ltv_90", e->uid, col(&f, "ltv_90")[i], e->ltv90);
		assert_value("app_code", e->uid, col(&f, "app_code")[i], e->app);
		assert_value("campaign_code", e->uid, col(&f, "campaign_code")[i], e->campaign);
		assert_value("engagement", e->uid, col(&f, "engagement")[i], e->engagement);
	}
	/* the dictionaries hold only users installed by as_of */
	path = xasprintf("%s/models/registry.sqlite", fx->dir);
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
	assert_non_null(strstr(info.metrics, "\"users_installed_after_as_of_ignored\":1"));
	assert_non_null(strstr(info.metrics, "\"train_users\":3"));
	assert_non_null(strstr(info.metrics, "\"validation_users\":2"));
	assert_non_null(strstr(info.metrics, "\"users_to_score\":4"));
	artefact_info_release(&info);
	frame_release(&f);
}

/* (a): events at or after as_of change nothing at all: same content hash, same bits. */
static void test_events_after_as_of_change_nothing(void **state)
{
	struct fixture *fx = *state;
	struct frame before, after;
	struct artefact_info info_before, info_after;

	run_as_of(fx);
	load_current(fx, &before, &info_before);
	add_events_file(fx, "events_a.csv", events_after_as_of_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	assert_string_equal(info_after.content_hash, info_before.content_hash);
	artefact_info_release(&info_after);
	frame_release(&after);
	/* users installed at or after as_of, with their events, change nothing either */
	add_events_file(fx, "users_late.csv", users_late_csv);
	add_events_file(fx, "events_late.csv", events_late_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);
	assert_non_null(strstr(info_after.metrics, "\"users_installed_after_as_of_ignored\":3"));

	/* the late users and events did arrive */
	{
		struct registry *reg = NULL;
		struct artefact_info ing;
		struct ltv_err err = { 0 };
		char *path = xasprintf("%s/models/registry.sqlite", fx->dir);

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
	assert_int_equal(after.n_rows, before.n_rows);
	assert_int_equal(after.n_cols, before.n_cols);
	for (size_t j = 0; j < before.n_cols; j++) {
		assert_string_equal(after.names[j], before.names[j]);
		if (memcmp(after.cols[j], before.cols[j], before.n_rows * sizeof(double)) != 0)
			fail_msg("column %s changed after adding events after as_of", before.names[j]);
	}
	artefact_info_release(&info_before);
	artefact_info_release(&info_after);
	frame_release(&before);
	frame_release(&after);
}

/*
 * (b): events before as_of but outside the observation window change labels
 * (and what is computed from labels), never a feature.
 */
static void test_events_outside_window_change_only_labels(void **state)
{
	struct fixture *fx = *state;
	struct frame before, after, again;
	struct artefact_info info_before, info_after, info_again;
	size_t n_compared = 0;

	run_as_of(fx);
	load_current(fx, &before, &info_before);
	add_events_file(fx, "events_b.csv", events_outside_window_csv);
	run_as_of(fx);
	load_current(fx, &after, &info_after);

	assert_int_equal(info_after.version, 2);
	assert_string_not_equal(info_after.content_hash, info_before.content_hash);
	assert_int_equal(after.n_rows, before.n_rows);
	assert_int_equal(after.n_cols, before.n_cols);
	for (size_t j = 0; j < before.n_cols; j++) {
		assert_string_equal(after.names[j], before.names[j]);
		if (is_label_derived(before.names[j]))
			continue;
		if (memcmp(after.cols[j], before.cols[j], before.n_rows * sizeof(double)) != 0)
			fail_msg("feature %s changed after adding events outside the window",
				 before.names[j]);
		n_compared++;
	}
	assert_true(n_compared >= 17); /* uid .. cost, app/campaign codes, split */
	/* the labels did take the new revenue */
	for (size_t k = 0; k < N_ROWS; k++) {
		size_t i = row_of(&after, base[k].uid);

		assert_value("ltv_7", base[k].uid, col(&after, "ltv_7")[i], ltv_after_b[k][0]);
		assert_value("ltv_30", base[k].uid, col(&after, "ltv_30")[i], ltv_after_b[k][1]);
		assert_value("ltv_90", base[k].uid, col(&after, "ltv_90")[i], ltv_after_b[k][2]);
	}

	/* and (a) on top of (b) changes nothing either */
	add_events_file(fx, "events_c.csv", events_after_as_of_csv);
	run_as_of(fx);
	load_current(fx, &again, &info_again);
	assert_string_equal(info_again.content_hash, info_after.content_hash);
	for (size_t j = 0; j < after.n_cols; j++)
		assert_memory_equal(again.cols[j], after.cols[j], after.n_rows * sizeof(double));

	artefact_info_release(&info_before);
	artefact_info_release(&info_after);
	artefact_info_release(&info_again);
	frame_release(&before);
	frame_release(&after);
	frame_release(&again);
}

/* A wider window reads d2: the same fixture with obs_days 3 moves exactly those values. */
static void test_obs_days_3_reads_day_2(void **state)
{
	struct fixture *fx = *state;
	struct frame f;
	struct artefact_info info;
	struct ltv_err err = { 0 };
	size_t i;

	assert_int_equal(config_apply_override(&fx->cfg, "features.obs_days=3", &err), 0);
	run_as_of(fx);
	load_current(fx, &f, &info);
	i = row_of(&f, 5); /* a4: d2 (3) is complete, d3 is not */
	assert_value("rev_window", 5, col(&f, "rev_window")[i], 2 + 3);
	assert_value("window_days", 5, col(&f, "window_days")[i], 3);
	assert_value("active_days_window", 5, col(&f, "active_days_window")[i], 2);
	assert_value("rev_max_day", 5, col(&f, "rev_max_day")[i], 3);
	i = row_of(&f, 1); /* a1: nothing on d2 */
	assert_value("rev_window", 1, col(&f, "rev_window")[i], 5.75);
	i = row_of(&f, 3); /* a3: nothing on d2 */
	assert_value("events_window", 3, col(&f, "events_window")[i], 1);
	artefact_info_release(&info);
	frame_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hand_computed_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_after_as_of_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_outside_window_change_only_labels, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_obs_days_3_reads_day_2, setup, teardown),
	};

	log_level_current = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
