/*
 * Select's validation rows by cohort (pipeline/select_cohorts.c): the
 * grouping, the cohort sums and the users' residual sums, against values
 * worked out by hand, with the rows in uid order and out of it (the
 * qsort path must give the same users and sums).
 */
#include "testutil.h"
#include "ltv/select_cohorts.h"

/*
 * Eight rows of one app and two campaigns: campaign, uid, label (ltv_30).
 * Campaign 0: uid 1 (rows 0, 2), uid 2 (row 5); campaign 1: uid 3 (rows 1,
 * 3), uid 4 (rows 4, 6), uid 5 (row 7).
 */
static const double campaign[] = { 0, 1, 0, 1, 1, 0, 1, 1 };
static const double label[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const char *const apps[] = { "a" }, *const campaigns[] = { "x", "y" };

static void fixture(struct model_data *d, const double *uid)
{
	memset(d, 0, sizeof(*d));
	frame_init(&d->frame, 8);
	memcpy(frame_add_column(&d->frame, "campaign_code"), campaign, sizeof(campaign));
	memset(frame_add_column(&d->frame, "app_code"), 0, 8 * sizeof(double));
	memcpy(frame_add_column(&d->frame, "uid"), uid, 8 * sizeof(double));
	memcpy(frame_add_column(&d->frame, "ltv_30"), label, sizeof(label));
	d->apps = (char **)apps;
	d->n_apps = 1;
	d->campaigns = (char **)campaigns;
	d->n_campaigns = 2;
}

/* Every candidate predicts label + m + 1 for each row, but method 1 has no value for row 4. */
static void predictions(double *pred[N_CANDIDATES], double store[N_CANDIDATES][8])
{
	for (int m = 0; m < N_CANDIDATES; m++) {
		for (int i = 0; i < 8; i++)
			store[m][i] = label[i] + m + 1;
		pred[m] = store[m];
	}
	store[1][4] = NAN;
}

static void test_grouping_and_sums(void **state)
{
	const double uid[] = { 1, 3, 1, 3, 4, 2, 4, 5 };
	const size_t rows[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const struct row_split s = { .valid = (size_t *)rows, .n_valid = 8 };
	const size_t want_row_of[] = { 0, 2, 5, 1, 3, 4, 6, 7 }, want_start[] = { 0, 3, 8 };
	const double want_actual[] = { 1, 3, 6, 2, 4, 5, 7, 8 }, want_resid[] = { 2, 1, 2, 2, 1 };
	double store[N_CANDIDATES][8], *pred[N_CANDIDATES];
	struct cohort_eval ev[3];
	struct model_data d;
	struct cohort_rows co;
	struct user_resid u;

	(void)state;
	fixture(&d, uid);
	predictions(pred, store);
	select_cohort_rows_build(&d, 30, &s, NULL, -1, 2, &co);
	assert_int_equal(co.n, 8);
	assert_memory_equal(co.row_of, want_row_of, sizeof(want_row_of));
	assert_memory_equal(co.start, want_start, sizeof(want_start));
	assert_memory_equal(co.actual, want_actual, sizeof(want_actual));
	assert_int_equal(co.cohort[7], 1);

	select_aggregate(&co, &d, &s, pred, 2, 2, ev, 2);
	assert_int_equal(ev[0].n, 3);
	assert_int_equal(ev[1].n, 5);
	assert_true(ev[0].actual_sum == 10 && ev[1].actual_sum == 26);
	assert_true(ev[0].pred_sum[0] == 13 && ev[1].pred_sum[2] == 26 + 15);
	assert_true(ev[1].missing[1] && !ev[0].missing[1]);
	assert_true(isnan(ev[1].rmsle[1]) && ev[1].rmsle[0] > 0);
	assert_int_equal(ev[1].tier, 3);

	select_user_resid_build(&co, &d, &s, pred, 2, 2, &u);
	assert_int_equal(u.n_users, 5);
	assert_int_equal(u.cohort_start[0], 0);
	assert_int_equal(u.cohort_start[1], 2);
	assert_int_equal(u.cohort_start[2], 5);
	/* candidate 0 is off by 1 a row: uid 1 two rows, uid 2 one, uid 3 two, uid 4 two, uid 5 one */
	for (size_t k = 0; k < 5; k++)
		assert_true(u.resid[0][k] == want_resid[k]);
	assert_true(u.resid[3][2] == 8); /* candidate 3: 4 a row */
	select_user_resid_release(&u);
	select_cohort_rows_release(&co);
	frame_release(&d.frame);
}

/* Rows not in uid order within a cohort: sorted by (cohort, uid, row), the same users and sums. */
static void test_users_out_of_order(void **state)
{
	const double uid[] = { 2, 4, 1, 3, 4, 2, 3, 1 };
	const size_t rows[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const struct row_split s = { .valid = (size_t *)rows, .n_valid = 8 };
	double store[N_CANDIDATES][8], *pred[N_CANDIDATES];
	struct model_data d;
	struct cohort_rows co;
	struct user_resid u;

	(void)state;
	fixture(&d, uid);
	predictions(pred, store);
	store[0][0] = 1.5; /* uid 2 of campaign 0: rows 0 and 5, residuals 0.5 and 1 */
	select_cohort_rows_build(&d, 30, &s, NULL, -1, 2, &co);
	select_user_resid_build(&co, &d, &s, pred, 2, 1, &u);
	/* campaign 0: uid 1 (row 2), uid 2 (rows 0, 5); campaign 1: uid 1 (7), 3 (3, 6), 4 (1, 4) */
	assert_int_equal(u.n_users, 5);
	assert_int_equal(u.cohort_start[1], 2);
	assert_true(u.resid[0][0] == 1 && u.resid[0][1] == 1.5);
	assert_true(u.resid[0][2] == 1 && u.resid[0][3] == 2 && u.resid[0][4] == 2);
	assert_true(isnan(u.resid[1][4])); /* uid 4 holds row 4, which method 1 did not predict */
	select_user_resid_release(&u);
	select_cohort_rows_release(&co);
	frame_release(&d.frame);
}

/* A fold left out: only the other fold's rows, still grouped by cohort in row order. */
static void test_fold_left_out(void **state)
{
	const double uid[] = { 1, 3, 1, 3, 4, 2, 4, 5 };
	const size_t rows[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const int fold[] = { 0, 1, 0, 1, 0, 1, 0, 1 };
	const struct row_split s = { .valid = (size_t *)rows, .n_valid = 8 };
	const size_t want_row_of[] = { 5, 1, 3, 7 }, want_start[] = { 0, 1, 4 };
	struct model_data d;
	struct cohort_rows co;

	(void)state;
	fixture(&d, uid);
	select_cohort_rows_build(&d, 30, &s, fold, 0, 2, &co);
	assert_int_equal(co.n, 4);
	assert_memory_equal(co.row_of, want_row_of, sizeof(want_row_of));
	assert_memory_equal(co.start, want_start, sizeof(want_start));
	assert_true(co.actual[0] == 6 && co.actual[3] == 8);
	select_cohort_rows_release(&co);
	frame_release(&d.frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouping_and_sums),
		cmocka_unit_test(test_users_out_of_order),
		cmocka_unit_test(test_fold_left_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
