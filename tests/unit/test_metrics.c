/*
 * Known-answer tests for src/models/metrics.c: every expected value is worked
 * out by hand in the comment above its assertion.
 */
#include <math.h>
#include <stdlib.h>

#include "testutil.h"
#include "ltv/metrics.h"

#define EPS 1e-12

static void test_wape_bias(void **state)
{
	/*
	 * |a - p| = 2, 2, 0, 4 -> 8;  sum |a| = 20  -> wape 0.4
	 * sum p = 24, sum a = 20 -> bias (24 - 20) / 20 = 0.2
	 * The two NaN rows are skipped: 4 of 6 rows used.
	 */
	const double a[] = { 10, 0, 5, 5, NAN, 1 };
	const double p[] = { 8, 2, 5, 9, 3, NAN };
	struct ltv_err err = { 0 };
	double v = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(metrics_wape(a, p, 6, &v, &used, &err), 0);
	assert_double_near(v, 0.4, EPS);
	assert_int_equal(used, 4);
	assert_int_equal(metrics_bias(a, p, 6, &v, &used, &err), 0);
	assert_double_near(v, 0.2, EPS);
	assert_int_equal(used, 4);
}

static void test_wape_errors(void **state)
{
	const double nan2[] = { NAN, NAN };
	const double two[] = { 1, 2 };
	const double inf2[] = { 1, INFINITY };
	const double zero2[] = { 0, 0 };
	struct ltv_err err = { 0 };
	double v = 0;

	(void)state;
	/* every row NaN: nothing to report */
	assert_int_equal(metrics_wape(nan2, two, 2, &v, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "wape"));
	/* an infinity names its row (index 1) */
	assert_int_equal(metrics_wape(two, inf2, 2, &v, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
	/* sum |a| = 0: undefined, NaN but no error */
	assert_int_equal(metrics_wape(zero2, two, 2, &v, NULL, &err), 0);
	assert_true(isnan(v));
}

static void test_campaign_wape(void **state)
{
	/*
	 * g0: a 10,10,10  p 12,12,12 -> A 30, P 36, |A-P| 6
	 * g1: a 5,5       p 7,3      -> A 10, P 10, |A-P| 0 (errors cancel)
	 * g2: a 100       p 0        -> one row
	 * g3: no rows; the NaN row is in g1 and is skipped.
	 * min_count 2: g2 dropped. wape = (6 + 0) / (30 + 10) = 0.15,
	 *   bias = (46 - 40) / 40 = 0.15
	 * min_count 1: wape = (6 + 0 + 100) / 140 = 106/140,
	 *   bias = (46 - 140) / 140 = -94/140
	 */
	const double a[] = { 10, 10, 10, 5, 5, 100, NAN };
	const double p[] = { 12, 12, 12, 7, 3, 0, 1 };
	const size_t g[] = { 0, 0, 0, 1, 1, 2, 1 };
	struct metrics_campaign c;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(metrics_campaign_wape(a, p, g, 7, 4, 2, &c, &err), 0);
	assert_double_near(c.wape, 0.15, EPS);
	assert_double_near(c.bias, 0.15, EPS);
	assert_int_equal(c.n_groups, 2);
	assert_int_equal(c.n_groups_small, 1);
	assert_int_equal(c.n_rows, 5);
	assert_int_equal(c.n_rows_nan, 1);

	assert_int_equal(metrics_campaign_wape(a, p, g, 7, 4, 1, &c, &err), 0);
	assert_double_near(c.wape, 106.0 / 140.0, EPS);
	assert_double_near(c.bias, -94.0 / 140.0, EPS);
	assert_int_equal(c.n_groups, 3);
	assert_int_equal(c.n_groups_small, 0);

	/* every group below min_count: NaN, not an error */
	assert_int_equal(metrics_campaign_wape(a, p, g, 7, 4, 10, &c, &err), 0);
	assert_true(isnan(c.wape));
	assert_int_equal(c.n_groups, 0);
	assert_int_equal(c.n_groups_small, 3);

	/* a group id out of range names the row */
	assert_int_equal(metrics_campaign_wape(a, p, g, 7, 2, 1, &c, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 5"));
}

static void test_gini_perfect_and_reversed(void **state)
{
	/*
	 * a = 4,3,2,1 (total 10). Ranked perfectly the gain curve passes
	 * (0,0) (.25,.4) (.5,.7) (.75,.9) (1,1): trapezoid area
	 * .25 * (.2 + .55 + .8 + .95) = .625, Gini = 2 * (.625 - .5) = .25.
	 * Reversed it passes (.25,.1) (.5,.3) (.75,.6) (1,1): area
	 * .25 * (.05 + .2 + .45 + .8) = .375, Gini = -.25, normalized -1.
	 */
	const double a[] = { 4, 3, 2, 1 };
	const double good[] = { 40, 30, 20, 10 };
	const double bad[] = { 10, 20, 30, 40 };
	struct ltv_err err = { 0 };
	double v = 0;

	(void)state;
	assert_int_equal(metrics_gini(a, good, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.25, EPS);
	assert_int_equal(metrics_normalized_gini(a, good, 4, &v, NULL, &err), 0);
	assert_double_near(v, 1.0, EPS);
	assert_int_equal(metrics_gini(a, bad, 4, &v, NULL, &err), 0);
	assert_double_near(v, -0.25, EPS);
	assert_int_equal(metrics_normalized_gini(a, bad, 4, &v, NULL, &err), 0);
	assert_double_near(v, -1.0, EPS);
}

static void test_gini_known_value(void **state)
{
	/*
	 * a = 1,0,3,0 (total 4), p = .2,.1,.9,.4. By p descending the rows are
	 * 2 (3), 3 (0), 0 (1), 1 (0): curve y = 0, .75, .75, 1, 1;
	 * area = .25 * (.375 + .75 + .875 + 1) = .75, Gini = .5.
	 * Perfect order 3,1,0,0: y = 0, .75, 1, 1, 1;
	 * area = .25 * (.375 + .875 + 1 + 1) = .8125, Gini = .625.
	 * Normalized = .5 / .625 = .8.
	 */
	const double a[] = { 1, 0, 3, 0 };
	const double p[] = { 0.2, 0.1, 0.9, 0.4 };
	struct ltv_err err = { 0 };
	double v = 0;

	(void)state;
	assert_int_equal(metrics_normalized_gini(a, p, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.8, EPS);
}

static void test_gini_ties(void **state)
{
	/*
	 * a = 4,3,2,1, p = 5,5,1,0: rows 0 and 1 tie and form one segment to
	 * (.5, .7), then (.75, .9), (1, 1). Area = .5 * .35 + .25 * .8
	 * + .25 * .95 = .6125, Gini = .225, normalized = .225 / .25 = .9.
	 * Swapping the tied rows' order must not change it; all predictions
	 * equal gives the diagonal, Gini 0.
	 */
	const double a[] = { 4, 3, 2, 1 };
	const double p[] = { 5, 5, 1, 0 };
	const double a_swapped[] = { 3, 4, 2, 1 };
	const double flat[] = { 7, 7, 7, 7 };
	struct ltv_err err = { 0 };
	double v = 0;

	(void)state;
	assert_int_equal(metrics_normalized_gini(a, p, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.9, EPS);
	assert_int_equal(metrics_normalized_gini(a_swapped, p, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.9, EPS);
	assert_int_equal(metrics_gini(a, flat, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.0, EPS);
	/* every actual equal: the perfect Gini is 0, so normalized is undefined */
	assert_int_equal(metrics_normalized_gini(flat, a, 4, &v, NULL, &err), 0);
	assert_true(isnan(v));
}

/* The reference order for gini: prediction descending, row index breaking ties. */
static const double *ref_key;

static int ref_desc(const void *pa, const void *pb)
{
	const size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	if (ref_key[a] != ref_key[b])
		return ref_key[a] > ref_key[b] ? -1 : 1;
	return (a > b) - (a < b);
}

/* gini_by of metrics.c, sorting with qsort: what every Gini was before the radix sort. */
static double ref_gini(const double *a, const double *p, size_t m)
{
	size_t *order = malloc(m * sizeof(size_t)), i = 0;
	double total = 0, cum = 0, area = 0, px = 0, py = 0;

	for (size_t k = 0; k < m; k++) {
		total += a[k];
		order[k] = k;
	}
	ref_key = p;
	qsort(order, m, sizeof(size_t), ref_desc);
	while (i < m) {
		size_t j = i;
		double x, y;

		while (j < m && p[order[j]] == p[order[i]])
			cum += a[order[j++]];
		x = (double)j / (double)m;
		y = cum / total;
		area += (x - px) * (y + py) / 2;
		px = x;
		py = y;
		i = j;
	}
	free(order);
	return 2 * area - 1;
}

static void test_gini_large_matches_qsort_order(void **state)
{
	/*
	 * Above 1,024 rows the rows are ordered by a radix sort: the Gini must be
	 * bit for bit the one of the comparison sort, with many ties, -0 beside
	 * +0 (equal: one segment), negatives and values a byte apart.
	 */
	enum { N = 6000 };
	double *a = malloc(N * sizeof(double)), *p = malloc(N * sizeof(double));
	struct ltv_err err = { 0 };
	unsigned long long x = 88172645463325252ULL;
	double v = 0, v2 = 0, perfect;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* magnitudes far apart: a sum in another order rounds differently */
		a[i] = (double)(x % 1000) / 10.0 * pow(10.0, (double)((x >> 40) % 13) - 3);
		switch (x >> 60) {
		case 0: p[i] = 0.0; break;
		case 1: p[i] = -0.0; break;
		case 2: p[i] = -(double)((x >> 20) % 50); break;
		case 3: p[i] = 1.0 + (double)((x >> 20) % 4) * 0x1p-52; break;
		default: p[i] = (double)((x >> 20) % 300) / 7.0; break;
		}
	}
	assert_int_equal(metrics_gini(a, p, N, &v, NULL, &err), 0);
	assert_true(v == ref_gini(a, p, N));
	perfect = ref_gini(a, a, N);
	assert_int_equal(metrics_normalized_gini(a, p, N, &v2, NULL, &err), 0);
	assert_true(v2 == ref_gini(a, p, N) / perfect);
	/* only -0 and +0: one tie, summed in row order as the total is, so exactly the diagonal */
	for (size_t i = 0; i < N; i++)
		p[i] = i % 3 ? 0.0 : -0.0;
	assert_int_equal(metrics_gini(a, p, N, &v, NULL, &err), 0);
	assert_true(v == ref_gini(a, p, N));
	assert_true(v == 0);
	free(a);
	free(p);
}

static void test_gini_groups_match_each_group(void **state)
{
	/*
	 * One sort for all rows and three groups (select's rank share: every
	 * tier): each figure bit for bit metrics_gini's on that group's rows
	 * alone, with ties across groups, -0 beside +0 and a small group below
	 * the radix sort's size; a group without rows is NaN; a non-finite
	 * value is refused.
	 */
	enum { N = 6000 };
	double *a = malloc(N * sizeof(double)), *p = malloc(N * sizeof(double));
	double *ga = malloc(N * sizeof(double)), *gp = malloc(N * sizeof(double));
	int *group = malloc(N * sizeof(int));
	struct ltv_err err = { 0 };
	unsigned long long x = 2463534242ULL;
	double out[5], want;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		a[i] = (double)(x % 1000) / 10.0 * pow(10.0, (double)((x >> 40) % 13) - 3);
		p[i] = (x >> 60) < 2 ? ((x >> 60) ? -0.0 : 0.0) : (double)((x >> 20) % 300) / 7.0;
		group[i] = (x >> 33) % 10 == 0 ? 3 : (x >> 33) % 10 < 4 ? 2 : 1; /* 3: ~600 rows */
	}
	assert_int_equal(metrics_gini_groups(a, p, group, N, 5, out), 0);
	assert_int_equal(metrics_gini(a, p, N, &want, NULL, &err), 0);
	assert_true(out[0] == want);
	for (int g = 1; g <= 3; g++) {
		size_t k = 0;

		for (size_t i = 0; i < N; i++)
			if (group[i] == g) {
				ga[k] = a[i];
				gp[k++] = p[i];
			}
		assert_int_equal(metrics_gini(ga, gp, k, &want, NULL, &err), 0);
		assert_true(out[g] == want);
		assert_true(want != 0);
	}
	assert_true(isnan(out[4]));
	p[17] = INFINITY;
	out[0] = 7;
	assert_int_equal(metrics_gini_groups(a, p, group, N, 5, out), -1);
	assert_true(out[0] == 7);
	free(a);
	free(p);
	free(ga);
	free(gp);
	free(group);
}

static void test_gini_groups_copies_of_rows(void **state)
{
	/*
	 * Select's validation rows come in runs of copies of a row (one per user
	 * a weighted row stands for), which metrics_gini_groups sorts once per
	 * run: still bit for bit metrics_gini's on each group's rows, with runs
	 * of one to six copies, neighbours with the same key but another actual
	 * or group (not a run), copies of one key far apart, and -0 beside +0.
	 */
	enum { N = 9000 };
	double *a = malloc(N * sizeof(double)), *p = malloc(N * sizeof(double));
	double *ga = malloc(N * sizeof(double)), *gp = malloc(N * sizeof(double));
	int *group = malloc(N * sizeof(int));
	struct ltv_err err = { 0 };
	unsigned long long x = 88172645463325252ULL;
	double out[4], want;
	size_t i = 0;

	(void)state;
	while (i < N) {
		size_t len;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		len = 1 + (x >> 50) % 6;
		for (size_t c = 0; c < len && i < N; c++, i++) {
			a[i] = (double)(x % 500) / 10.0;
			p[i] = (x >> 61) == 0 ? ((x >> 20) & 1 ? -0.0 : 0.0) : (double)((x >> 24) % 40) / 3.0;
			group[i] = 1 + (int)((x >> 33) % 3);
			if (c == 1 && (x >> 45) % 5 == 0)
				a[i] += 1; /* the same key, another actual: not a copy */
			if (c == 2 && (x >> 47) % 5 == 0)
				group[i] = 1 + group[i] % 3; /* another group: not a copy */
		}
	}
	assert_int_equal(metrics_gini_groups(a, p, group, N, 4, out), 0);
	assert_int_equal(metrics_gini(a, p, N, &want, NULL, &err), 0);
	assert_true(out[0] == want);
	for (int g = 1; g <= 3; g++) {
		size_t k = 0;

		for (size_t j = 0; j < N; j++)
			if (group[j] == g) {
				ga[k] = a[j];
				gp[k++] = p[j];
			}
		assert_int_equal(metrics_gini(ga, gp, k, &want, NULL, &err), 0);
		assert_true(out[g] == want);
		assert_true(want != 0);
	}
	free(a);
	free(p);
	free(ga);
	free(gp);
	free(group);
}

static void test_gain_curve(void **state)
{
	/*
	 * Same curve as the perfect ranking above: vertices at x = k/4 with
	 * y = 0, .4, .7, .9, 1. Nine points fall on x = k/8; the midpoints are
	 * interpolated: x = .125 -> .2, .375 -> .55, .625 -> .8, .875 -> .95.
	 */
	const double a[] = { 4, 3, 2, 1 };
	const double p[] = { 40, 30, 20, 10 };
	const double want_y[] = { 0, 0.2, 0.4, 0.55, 0.7, 0.8, 0.9, 0.95, 1 };
	const double flat[] = { 1, 1, 1, 1 };
	double x[9], y[9];
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(metrics_gain_curve(a, p, 4, 9, x, y, NULL, &err), 0);
	for (int k = 0; k < 9; k++) {
		assert_double_near(x[k], k / 8.0, EPS);
		assert_double_near(y[k], want_y[k], EPS);
	}
	/* all tied: one segment, the diagonal */
	assert_int_equal(metrics_gain_curve(a, flat, 4, 3, x, y, NULL, &err), 0);
	assert_double_near(y[1], 0.5, EPS);
	assert_int_equal(metrics_gain_curve(a, p, 4, 1, x, y, NULL, &err), LTV_EINVAL);
}

static void test_spearman(void **state)
{
	/*
	 * Monotone (not linear) -> 1, reversed -> -1.
	 * Ties: a ranks 1,2,3,4; p = 1,1,2,3 ranks 1.5,1.5,3,4. Deviations from
	 * 2.5: (-1.5,-.5,.5,1.5) and (-1,-1,.5,1.5); cov 4.5, var 5 and 4.5,
	 * rho = 4.5 / sqrt(22.5) = sqrt(.9).
	 */
	const double a[] = { 1, 2, 3, 4, 5 };
	const double up[] = { 10, 20, 30, 40, 1000 };
	const double down[] = { 5, 4, 3, 2, -100 };
	const double tied[] = { 1, 1, 2, 3 };
	const double flat[] = { 2, 2, 2, 2 };
	struct ltv_err err = { 0 };
	double v = 0;

	(void)state;
	assert_int_equal(metrics_spearman(a, up, 5, &v, NULL, &err), 0);
	assert_double_near(v, 1.0, EPS);
	assert_int_equal(metrics_spearman(a, down, 5, &v, NULL, &err), 0);
	assert_double_near(v, -1.0, EPS);
	assert_int_equal(metrics_spearman(a, tied, 4, &v, NULL, &err), 0);
	assert_double_near(v, sqrt(0.9), EPS);
	assert_int_equal(metrics_spearman(a, flat, 4, &v, NULL, &err), 0);
	assert_true(isnan(v));
}

static void test_rmsle(void **state)
{
	/*
	 * a = 0, e-1; p = e-1, e-1. log1p: a -> 0, 1; p -> 1, 1.
	 * Squared differences 1, 0; mean .5; rmsle = sqrt(.5).
	 */
	const double e1 = exp(1.0) - 1;
	const double a[] = { 0, e1, NAN };
	const double p[] = { e1, e1, 4 };
	const double neg[] = { 1, -0.5, 1 };
	struct ltv_err err = { 0 };
	double v = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(metrics_rmsle(a, p, 3, &v, &used, &err), 0);
	assert_double_near(v, sqrt(0.5), EPS);
	assert_int_equal(used, 2);
	/* negative values are refused, naming the row */
	assert_int_equal(metrics_rmsle(p, neg, 3, &v, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
}

/*
 * metrics_rmsle_logged, given log1p of the actuals, gives metrics_rmsle's
 * result to the bit, skips and refuses the same rows.
 */
static void test_rmsle_logged(void **state)
{
	enum { N = 1000 };
	double a[N], la[N], p[N], v = 0, w = 1;
	const double neg[] = { 1, -0.5, 1 }, ok[] = { 1, 2, 3 };
	double lneg[3];
	size_t used = 0, used_logged = 0;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < N; i++) {
		a[i] = i % 7 == 0 ? 0 : (i % 11 == 0 ? NAN : exp((double)(i % 37) / 5.0) - 1);
		p[i] = i % 13 == 0 ? NAN : exp((double)(i % 29) / 6.0) - 1 + (double)i / 997.0;
		la[i] = log1p(a[i]);
	}
	assert_int_equal(metrics_rmsle(a, p, N, &v, &used, &err), 0);
	assert_int_equal(metrics_rmsle_logged(a, la, p, N, &w, &used_logged, &err), 0);
	assert_memory_equal(&v, &w, sizeof(v));
	assert_int_equal(used, used_logged);
	for (int i = 0; i < 3; i++)
		lneg[i] = log1p(neg[i]);
	assert_int_equal(metrics_rmsle_logged(neg, lneg, ok, 3, &w, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
}

/*
 * Predictions that repeat (a weighted row's copies, one after another; +0
 * beside -0, a NaN between copies): each row's log1p as if computed alone,
 * summed in order, to the bit.
 */
static void test_rmsle_repeats(void **state)
{
	const double a[] = { 1, 2, 0.5, 0.5, 3, 0, 0, 4, 4, 4 };
	const double p[] = { 0.25, 0.25, 0.25, 0, -0.0, -0.0, 0, 2.5, NAN, 2.5 };
	double sum_sq = 0, want, v = 0;
	size_t m = 0, used = 0;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(a) / sizeof(*a); i++) {
		double d;

		if (isnan(p[i]))
			continue;
		d = log1p(p[i]) - log1p(a[i]);
		sum_sq += d * d;
		m++;
	}
	want = sqrt(sum_sq / (double)m);
	assert_int_equal(metrics_rmsle(a, p, sizeof(a) / sizeof(*a), &v, &used, &err), 0);
	assert_memory_equal(&v, &want, sizeof(v));
	assert_int_equal(used, 9);
}

static void test_decile_mape(void **state)
{
	/*
	 * 20 rows, pred 20..1 (given in reverse to exercise the sort): decile d
	 * holds preds 2d+1 and 2d+2, mean pred 2d+1.5.
	 * actual = 2 * pred, except decile 0 (preds 1, 2 -> actual 3, 0, mean
	 * 1.5, ape 0) and decile 9 (preds 19, 20 -> actual 0, 0: skipped).
	 * Deciles 1..8: |m - 2m| / 2m = .5. MAPE = (0 + 8 * .5) / 9 = 4/9.
	 */
	double a[20], p[20];
	struct metrics_deciles d;
	struct ltv_err err = { 0 };
	size_t used = 0;

	(void)state;
	for (int i = 0; i < 20; i++) {
		p[i] = 20 - i;
		a[i] = 2 * p[i];
	}
	a[19] = 3; /* pred 1 */
	a[18] = 0; /* pred 2 */
	a[0] = 0;  /* pred 20 */
	a[1] = 0;  /* pred 19 */
	assert_int_equal(metrics_decile_mape(a, p, 20, &d, &used, &err), 0);
	assert_int_equal(used, 20);
	assert_double_near(d.mape, 4.0 / 9.0, EPS);
	assert_int_equal(d.n_deciles, 9);
	for (int k = 0; k < METRICS_N_DECILES; k++)
		assert_int_equal(d.count[k], 2);
	assert_double_near(d.mean_pred[3], 7.5, EPS);
	assert_double_near(d.mean_actual[3], 15, EPS);
	assert_double_near(d.ape[3], 0.5, EPS);
	assert_double_near(d.ape[0], 0, EPS);
	assert_double_near(d.mean_pred[9], 19.5, EPS);
	assert_double_near(d.mean_actual[9], 0, EPS);
	assert_true(isnan(d.ape[9]));
}

static void test_decile_few_rows(void **state)
{
	/* 3 rows: positions 0,1,2 go to deciles 0, 3, 6; the rest are empty. */
	const double a[] = { 1, 2, 4 };
	const double p[] = { 1, 3, 4 };
	struct metrics_deciles d;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(metrics_decile_mape(a, p, 3, &d, NULL, &err), 0);
	assert_int_equal(d.count[0], 1);
	assert_int_equal(d.count[3], 1);
	assert_int_equal(d.count[6], 1);
	assert_int_equal(d.count[1], 0);
	assert_true(isnan(d.mean_pred[1]));
	assert_int_equal(d.n_deciles, 3);
	/* apes 0, .5, 0 -> mape 1/6 */
	assert_double_near(d.mape, 0.5 / 3, EPS);
}

static void test_auc(void **state)
{
	/*
	 * labels 0,0,1,1, scores .1,.4,.35,.8: ranks 1,3,2,4; positive rank
	 * sum 6, U = 6 - 3 = 3 of 4 pairs -> .75.
	 * Ties: labels 0,1,0,1, scores .5,.5,.2,.9: ranks 2.5,2.5,1,4; R = 6.5,
	 * U = 3.5 (the tied pair counts half) -> .875.
	 */
	const double y1[] = { 0, 0, 1, 1 };
	const double s1[] = { 0.1, 0.4, 0.35, 0.8 };
	const double y2[] = { 0, 1, 0, 1, NAN };
	const double s2[] = { 0.5, 0.5, 0.2, 0.9, 0.3 };
	const double ones[] = { 1, 1, 1 };
	const double bad[] = { 0, 2, 1 };
	struct ltv_err err = { 0 };
	double v = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(metrics_auc(y1, s1, 4, &v, NULL, &err), 0);
	assert_double_near(v, 0.75, EPS);
	assert_int_equal(metrics_auc(y2, s2, 5, &v, &used, &err), 0);
	assert_double_near(v, 0.875, EPS);
	assert_int_equal(used, 4);
	/* one class only: NaN */
	assert_int_equal(metrics_auc(ones, s1, 3, &v, NULL, &err), 0);
	assert_true(isnan(v));
	assert_int_equal(metrics_auc(bad, s1, 3, &v, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wape_bias),
		cmocka_unit_test(test_wape_errors),
		cmocka_unit_test(test_campaign_wape),
		cmocka_unit_test(test_gini_perfect_and_reversed),
		cmocka_unit_test(test_gini_known_value),
		cmocka_unit_test(test_gini_ties),
		cmocka_unit_test(test_gini_large_matches_qsort_order),
		cmocka_unit_test(test_gini_groups_match_each_group),
		cmocka_unit_test(test_gini_groups_copies_of_rows),
		cmocka_unit_test(test_gain_curve),
		cmocka_unit_test(test_spearman),
		cmocka_unit_test(test_rmsle),
		cmocka_unit_test(test_rmsle_repeats),
		cmocka_unit_test(test_rmsle_logged),
		cmocka_unit_test(test_decile_mape),
		cmocka_unit_test(test_decile_few_rows),
		cmocka_unit_test(test_auc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
