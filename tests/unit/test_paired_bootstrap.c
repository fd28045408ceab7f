/*
 * Tests of src/models/paired_bootstrap.c: the point values are metrics.h's
 * (checked by hand on a small case), identical predictors give d* = 0 and
 * p = 1, a clearly better predictor gets p = 2 / (R + 1) and an interval
 * excluding 0 (p at its floor 2 / (R + 1) when every resample agrees), a slightly noisier twin is not flagged, and results are
 * deterministic for a seed.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/paired_bootstrap.h"
#include "ltv/rng.h"

#define EPS 1e-12

static const struct paired_param param = { .n_resamples = 400, .seed = 42, .min_campaign_users = 1 };

static void test_point_values_by_hand(void **state)
{
	/*
	 * campaign 0: actual 10, 0 -> A 10; pred_a 8, 2 -> P 10; pred_b 6, 0 -> P 6
	 * campaign 1: actual 5, 5 -> A 10; pred_a 5, 9 -> P 14; pred_b 5, 5 -> P 10
	 * WAPE a = (|10 - 10| + |10 - 14|) / 20 = 0.2; b = (4 + 0) / 20 = 0.2; diff 0
	 * bias a = (24 - 20) / 20 = 0.2; b = (16 - 20) / 20 = -0.2; diff -0.4
	 */
	const double actual[] = { 10, 0, 5, 5 }, pa[] = { 8, 2, 5, 9 }, pb[] = { 6, 0, 5, 5 };
	const size_t campaign[] = { 0, 0, 1, 1 };
	struct paired_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(paired_bootstrap(actual, pa, pb, campaign, 4, 2, &param, &r, &err), 0);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.n_campaigns, 2);
	assert_double_near(r.m[PAIRED_WAPE].a, 0.2, EPS);
	assert_double_near(r.m[PAIRED_WAPE].b, 0.2, EPS);
	assert_double_near(r.m[PAIRED_WAPE].diff, 0, EPS);
	assert_double_near(r.m[PAIRED_BIAS].a, 0.2, EPS);
	assert_double_near(r.m[PAIRED_BIAS].b, -0.2, EPS);
	assert_double_near(r.m[PAIRED_BIAS].diff, -0.4, EPS);
	assert_true(r.m[PAIRED_WAPE].lo <= r.m[PAIRED_WAPE].hi);
}

/* n users in 5 campaigns with heavy-tailed actuals (a few payers). */
static void sample(size_t n, uint64_t seed, double *actual, size_t *campaign)
{
	struct rng r;

	rng_seed(&r, seed, 1);
	for (size_t i = 0; i < n; i++) {
		campaign[i] = i % 5;
		actual[i] = rng_unif(&r) < 0.1 ? rng_exp(&r, 20.0 * (1 + (double)campaign[i])) : 0;
	}
}

static void test_identical_is_never_flagged(void **state)
{
	enum { N = 2000 };
	double actual[N], pred[N];
	size_t campaign[N];
	struct paired_result r;
	struct ltv_err err = { 0 };

	(void)state;
	sample(N, 1, actual, campaign);
	for (size_t i = 0; i < N; i++)
		pred[i] = 2.0 + 0.5 * actual[i];
	assert_int_equal(paired_bootstrap(actual, pred, pred, campaign, N, 5, &param, &r, &err), 0);
	for (int k = 0; k < PAIRED_N_METRICS; k++) {
		assert_double_near(r.m[k].diff, 0, EPS);
		assert_double_near(r.m[k].lo, 0, EPS);
		assert_double_near(r.m[k].hi, 0, EPS);
		assert_double_near(r.m[k].p, 1, EPS);
		assert_int_equal(r.m[k].n_resamples_used, param.n_resamples);
	}
}

static void test_better_and_twin(void **state)
{
	enum { N = 3000 };
	double actual[N], good[N], bad[N], twin[N];
	size_t campaign[N];
	struct paired_result r, again;
	struct ltv_err err = { 0 };
	struct rng rng;

	(void)state;
	sample(N, 2, actual, campaign);
	rng_seed(&rng, 3, 0);
	for (size_t i = 0; i < N; i++) {
		/* good: campaign mean + a share of the truth; bad: one global mean; twin: good + noise */
		good[i] = 0.3 * actual[i] + 0.7 * 2.0 * (1 + (double)campaign[i]);
		bad[i] = 6.0;
		twin[i] = good[i] * (1 + 0.01 * rng_normal(&rng));
		if (twin[i] < 0)
			twin[i] = 0;
	}
	/* A = good, B = bad: B's WAPE higher, Gini lower, both with p at its floor */
	assert_int_equal(paired_bootstrap(actual, good, bad, campaign, N, 5, &param, &r, &err), 0);
	print_message("bad: WAPE %.4f vs %.4f [%.4f, %.4f] p %.4f; Gini %.4f vs %.4f p %.4f\n",
		      r.m[PAIRED_WAPE].a, r.m[PAIRED_WAPE].b, r.m[PAIRED_WAPE].lo, r.m[PAIRED_WAPE].hi,
		      r.m[PAIRED_WAPE].p, r.m[PAIRED_GINI].a, r.m[PAIRED_GINI].b, r.m[PAIRED_GINI].p);
	assert_true(r.m[PAIRED_WAPE].diff > 0);
	assert_true(r.m[PAIRED_WAPE].lo > 0);
	assert_true(r.m[PAIRED_WAPE].p < 0.05);
	/* the constant ranks nobody: Gini 0, every resample worse, p at its floor 2 / (R + 1) */
	assert_double_near(r.m[PAIRED_GINI].b, 0, EPS);
	assert_true(r.m[PAIRED_GINI].diff < 0 && r.m[PAIRED_GINI].hi < 0);
	assert_double_near(r.m[PAIRED_GINI].p, 2.0 / (param.n_resamples + 1), EPS);
	/* the same seed gives the same numbers */
	assert_int_equal(paired_bootstrap(actual, good, bad, campaign, N, 5, &param, &again, &err), 0);
	assert_memory_equal(&r, &again, sizeof(r));
	/* a twin with 1% multiplicative noise: the interval holds 0 and p is large */
	assert_int_equal(paired_bootstrap(actual, good, twin, campaign, N, 5, &param, &r, &err), 0);
	print_message("twin: WAPE diff %.5f [%.5f, %.5f] p %.3f\n", r.m[PAIRED_WAPE].diff,
		      r.m[PAIRED_WAPE].lo, r.m[PAIRED_WAPE].hi, r.m[PAIRED_WAPE].p);
	assert_true(fabs(r.m[PAIRED_WAPE].diff) < 0.01);
	assert_true(r.m[PAIRED_WAPE].p > 0.05);
	assert_true(r.m[PAIRED_WAPE].lo <= 0 && r.m[PAIRED_WAPE].hi >= 0);
}

static void test_errors(void **state)
{
	const double ok[] = { 1, 2 }, nan_[] = { 1, NAN }, neg[] = { 1, -1 };
	const size_t c[] = { 0, 1 };
	const struct paired_param few = { .n_resamples = 10, .seed = 1, .min_campaign_users = 1 };
	struct paired_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(paired_bootstrap(ok, ok, ok, c, 0, 2, &param, &r, &err), LTV_EINVAL);
	assert_int_equal(paired_bootstrap(ok, nan_, ok, c, 2, 2, &param, &r, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
	assert_int_equal(paired_bootstrap(ok, ok, neg, c, 2, 2, &param, &r, &err), LTV_EINVAL);
	assert_int_equal(paired_bootstrap(ok, ok, ok, c, 2, 1, &param, &r, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "campaign 1 of 1"));
	assert_int_equal(paired_bootstrap(ok, ok, ok, c, 2, 2, &few, &r, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "100 resamples"));
}

/*
 * paired_bootstrap_win_share: identical residuals never win (strictly
 * lower only); B with no error against A off by 1 per user always wins;
 * B better on one campaign and worse on the other by as much is not
 * significantly better either way. Same seed, same share.
 */
static void test_win_share(void **state)
{
	double a[40], b[40], noisy_a[40], noisy_b[40];
	const size_t start[3] = { 0, 20, 40 };
	double share;

	(void)state;
	for (int i = 0; i < 40; i++) {
		a[i] = 1;
		b[i] = 0;
		/* campaign 0: A is off by +1 per user, B by 0; campaign 1 the other way round */
		noisy_a[i] = i < 20 ? 1 + (i % 2 ? 0.5 : -0.5) : (i % 2 ? 0.5 : -0.5);
		noisy_b[i] = i < 20 ? (i % 2 ? 0.5 : -0.5) : 1 + (i % 2 ? 0.5 : -0.5);
	}
	assert_double_near(paired_bootstrap_win_share(a, a, start, 2, 200, 7), 0, 0);
	assert_double_near(paired_bootstrap_win_share(a, b, start, 2, 200, 7), 1, 0);
	assert_double_near(paired_bootstrap_win_share(b, a, start, 2, 200, 7), 0, 0);
	share = paired_bootstrap_win_share(noisy_a, noisy_b, start, 2, 400, 7);
	assert_true(share > 0.05 && share < 0.95);
	assert_double_near(share, paired_bootstrap_win_share(noisy_a, noisy_b, start, 2, 400, 7), 0);
	assert_double_near(paired_bootstrap_win_share(a, b, start, 0, 200, 7), 0, 0); /* no user */
}

/*
 * paired_bootstrap_wins stops drawing once the verdict is settled: over
 * residuals where B is a little better, on many seeds and thresholds
 * (shares near each threshold included), its verdict is always the full
 * share's, and both verdicts occur.
 */
static void test_wins_matches_share(void **state)
{
	enum { N = 60 };
	static const double thresholds[] = { 0.95, 0.5, 0.8, 0.0, 1.0 };
	double a[N], b[N];
	const size_t start[4] = { 0, 25, 40, N };
	int seen[2] = { 0, 0 };

	(void)state;
	for (int i = 0; i < N; i++) {
		a[i] = (i % 3 ? 0.6 : -0.9) + (i < 25 ? 0.08 : 0);
		b[i] = (i % 2 ? 0.55 : -0.5);
	}
	for (uint64_t seed = 1; seed <= 40; seed++)
		for (size_t k = 0; k < sizeof(thresholds) / sizeof(*thresholds); k++) {
			const double share = paired_bootstrap_win_share(a, b, start, 3, 300, seed);
			const int wins = paired_bootstrap_wins(a, b, start, 3, 300, seed, thresholds[k], 1);

			assert_int_equal(wins, share >= thresholds[k]);
			seen[wins]++;
			/* the share itself sits between the thresholds: both verdicts are tested */
			assert_true(share > 0.5 && share < 0.95);
		}
	assert_true(seen[0] > 0 && seen[1] > 0);
	assert_int_equal(paired_bootstrap_wins(a, b, start, 0, 300, 7, 0.95, 1), 0); /* no user */
	assert_int_equal(paired_bootstrap_wins(a, b, start, 0, 300, 7, 0.95, 2), 0);
}

/*
 * On many users (past the size where threads take over), the verdict on 2
 * and 3 threads is the one thread's, for each threshold and seed, with B a
 * little better (shares near the thresholds) and with A equal to B; and it
 * is the full share's. 3 threads on a 2-core machine still give each
 * thread its own chunks of the one stream.
 */
static void test_wins_same_on_threads(void **state)
{
	enum { N = 20000 };
	static const double thresholds[] = { 0.95, 0.6, 0.05 };
	double *a = malloc(N * sizeof(double)), *b = malloc(N * sizeof(double));
	const size_t start[4] = { 0, 9000, 15000, N };
	struct rng r;
	int seen[2] = { 0, 0 };

	(void)state;
	rng_seed(&r, 3, 0);
	for (int i = 0; i < N; i++) {
		b[i] = rng_unif(&r) - 0.5;
		a[i] = b[i] + (rng_unif(&r) - 0.5) * 0.2 + 0.0004;
	}
	for (uint64_t seed = 1; seed <= 4; seed++)
		for (size_t k = 0; k < sizeof(thresholds) / sizeof(*thresholds); k++) {
			const double share = paired_bootstrap_win_share(a, b, start, 3, 200, seed);
			const int one = paired_bootstrap_wins(a, b, start, 3, 200, seed, thresholds[k], 1);

			assert_int_equal(one, share >= thresholds[k]);
			assert_int_equal(paired_bootstrap_wins(a, b, start, 3, 200, seed, thresholds[k], 2), one);
			assert_int_equal(paired_bootstrap_wins(a, b, start, 3, 200, seed, thresholds[k], 3), one);
			assert_int_equal(paired_bootstrap_wins(a, a, start, 3, 200, seed, thresholds[k], 2),
					 0 >= thresholds[k]);
			seen[one]++;
		}
	assert_true(seen[0] > 0 && seen[1] > 0);
	free(a);
	free(b);
}

/*
 * Between the size where one thread draws several resamples at once
 * (WINS_LANES_MIN_DRAWS, 2,048 users) and the one where threads take over,
 * with a resample count that leaves a partial block at the end: the verdict
 * is still the full share's, drawn one resample after another, for every
 * threshold and seed, and both verdicts occur, and it flips exactly at the
 * share (so any one resample's verdict drawn differently would show); an
 * unequal split of users over the campaigns and an empty campaign change
 * nothing.
 */
static void test_wins_in_lanes_matches_share(void **state)
{
	enum { N = 3001 };
	static const double thresholds[] = { 0.95, 0.7, 0.5, 0.2, 0.05 };
	double *a = malloc(N * sizeof(double)), *b = malloc(N * sizeof(double));
	const size_t start[5] = { 0, 1700, 1700, 2950, N };
	struct rng r;
	int seen[2] = { 0, 0 };

	(void)state;
	rng_seed(&r, 11, 0);
	for (int i = 0; i < N; i++) {
		b[i] = rng_unif(&r) - 0.5;
		a[i] = b[i] + (rng_unif(&r) - 0.5) * 0.3 + 0.004;
	}
	for (uint64_t seed = 1; seed <= 6; seed++)
		for (size_t k = 0; k < sizeof(thresholds) / sizeof(*thresholds); k++) {
			const double share = paired_bootstrap_win_share(a, b, start, 4, 203, seed);
			const int wins = paired_bootstrap_wins(a, b, start, 4, 203, seed, thresholds[k], 1);

			assert_int_equal(wins, share >= thresholds[k]);
			seen[wins]++;
			/* at the share itself and just above it: one resample's verdict moved would show */
			assert_int_equal(paired_bootstrap_wins(a, b, start, 4, 203, seed, share, 1), 1);
			assert_int_equal(paired_bootstrap_wins(a, b, start, 4, 203, seed,
							       share + 0.5 / 203, 1), 0);
		}
	assert_true(seen[0] > 0 && seen[1] > 0);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_point_values_by_hand),
		cmocka_unit_test(test_identical_is_never_flagged),
		cmocka_unit_test(test_better_and_twin),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_win_share),
		cmocka_unit_test(test_wins_matches_share),
		cmocka_unit_test(test_wins_same_on_threads),
		cmocka_unit_test(test_wins_in_lanes_matches_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
