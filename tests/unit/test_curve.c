/*
 * Known-answer tests for power-law curves: exact and noisy recovery of
 * a = 2.5, b = 0.4, degenerate input, shrinkage weights and extrapolation.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/curve.h"

#define TRUE_A 2.5
#define TRUE_B 0.4

static void test_exact_recovery(void **state)
{
	double d[30], y[30], w[30];
	struct curve c;
	struct ltv_err err;
	uint64_t s = 5;

	(void)state;
	for (int i = 0; i < 30; i++) {
		d[i] = i + 1;
		y[i] = TRUE_A * pow(d[i], TRUE_B);
		w[i] = 1.0 + (double)(test_rng_next(&s) % 1000);
	}
	assert_int_equal(curve_fit(d, y, NULL, 30, &c, &err), 0);
	assert_double_near(exp(c.log_a), TRUE_A, 1e-9);
	assert_double_near(c.b, TRUE_B, 1e-9);
	assert_int_equal(c.n_points, 30);
	/* Weights do not move an exact fit. */
	assert_int_equal(curve_fit(d, y, w, 30, &c, &err), 0);
	assert_double_near(exp(c.log_a), TRUE_A, 1e-9);
	assert_double_near(c.b, TRUE_B, 1e-9);
	/* Absolute form: 2.5 * 30^0.4 = 9.745149602290473 */
	assert_double_near(curve_predict(&c, 30.0), 9.745149602290473, 1e-8);
}

static void test_noisy_recovery(void **state)
{
	/* Multiplicative lognormal noise, sd 0.05 in log space, days 1..90. */
	double d[90], y[90];
	struct curve c;
	struct ltv_err err;
	uint64_t s = 2024;

	(void)state;
	for (int i = 0; i < 90; i++) {
		d[i] = i + 1;
		y[i] = TRUE_A * pow(d[i], TRUE_B) * exp(0.05 * test_gauss(&s));
	}
	assert_int_equal(curve_fit(d, y, NULL, 90, &c, &err), 0);
	/* This seed gives a = 2.435 (-2.6%), b = 0.4083 (+2.1%). */
	assert_true(fabs(exp(c.log_a) / TRUE_A - 1.0) < 0.05);
	assert_true(fabs(c.b / TRUE_B - 1.0) < 0.03);
	/* Not exact either: the noise is really there. */
	assert_true(fabs(c.b - TRUE_B) > 1e-6);
}

static void test_weights_and_skipped_points(void **state)
{
	/*
	 * An exact curve on days 1..10 plus an outlier at day 11. With weight
	 * 0 the outlier is ignored and the fit is exact; with weight 1 it pulls
	 * b away. Points at d < 1 or y <= 0 are skipped, not fitted.
	 */
	double d[13], y[13], w[13];
	struct curve c;
	struct ltv_err err;

	(void)state;
	for (int i = 0; i < 10; i++) {
		d[i] = i + 1;
		y[i] = TRUE_A * pow(d[i], TRUE_B);
		w[i] = 1.0;
	}
	d[10] = 11;
	y[10] = 1000.0;
	w[10] = 0.0;
	d[11] = 0.5; /* before the first day: skipped */
	y[11] = 50.0;
	w[11] = 1.0;
	d[12] = 12;
	y[12] = 0.0; /* no revenue: skipped */
	w[12] = 1.0;
	assert_int_equal(curve_fit(d, y, w, 13, &c, &err), 0);
	assert_int_equal(c.n_points, 10);
	assert_double_near(exp(c.log_a), TRUE_A, 1e-9);
	assert_double_near(c.b, TRUE_B, 1e-9);
	w[10] = 1.0;
	assert_int_equal(curve_fit(d, y, w, 13, &c, &err), 0);
	assert_int_equal(c.n_points, 11);
	assert_true(c.b > TRUE_B + 0.1);
}

static void test_degenerate_input(void **state)
{
	const double d1[] = { 3 }, y1[] = { 2 };
	const double d2[] = { 3, 3, 3 }, y2[] = { 2, 2.5, 3 };
	const double d3[] = { 1, 2, 0.5 }, y3[] = { 0, 3, 1 };
	const double dn[] = { 1, NAN }, yn[] = { 1, 2 };
	const double w_neg[] = { 1, -1 };
	const double d_ok[] = { 1, 2 }, y_ok[] = { 1, 2 };
	struct curve c = { 7.0, 7.0, 7 };
	struct ltv_err err;

	(void)state;
	assert_int_equal(curve_fit(d1, y1, NULL, 1, &c, &err), LTV_EMODEL);
	assert_non_null(strstr(err.msg, "got 1 usable of 1 points"));
	/* Three points on one day fix no slope. */
	assert_int_equal(curve_fit(d2, y2, NULL, 3, &c, &err), LTV_EMODEL);
	assert_non_null(strstr(err.msg, "2 distinct days"));
	/* y = 0 and d < 1 leave one usable point. */
	assert_int_equal(curve_fit(d3, y3, NULL, 3, &c, &err), LTV_EMODEL);
	assert_non_null(strstr(err.msg, "got 1 usable of 3"));
	assert_int_equal(curve_fit(NULL, NULL, NULL, 0, &c, &err), LTV_EMODEL);
	assert_int_equal(curve_fit(dn, yn, NULL, 2, &c, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "point 1"));
	assert_int_equal(curve_fit(d_ok, y_ok, w_neg, 2, &c, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "negative weight"));
	/* Failures leave the output alone. */
	assert_true(c.log_a == 7.0 && c.b == 7.0 && c.n_points == 7);
	/* Two points are enough: y = d exactly gives a = 1, b = 1. */
	assert_int_equal(curve_fit(d_ok, y_ok, NULL, 2, &c, &err), 0);
	assert_double_near(c.log_a, 0.0, 1e-12);
	assert_double_near(c.b, 1.0, 1e-12);
}

static void test_shrinkage(void **state)
{
	struct curve_param p;
	const struct curve own = { log(3.0), 0.5, 20 }, prior = { log(2.0), 0.3, 0 };
	struct curve out;

	(void)state;
	curve_param_init(&p);
	assert_null(curve_param_check(&p));
	p.shrink_k = 200.0;
	assert_double_near(curve_shrink_weight(&p, 200), 0.5, 1e-15);
	assert_double_near(curve_shrink_weight(&p, 600), 0.75, 1e-15);
	assert_double_near(curve_shrink_weight(&p, 50), 0.2, 1e-15);
	assert_true(curve_shrink_weight(&p, 0) == 0.0);
	/* w = 0.75: log a = 0.75 ln 3 + 0.25 ln 2 = 0.9972460116410686, b = 0.45 */
	curve_shrink(&p, &own, &prior, 600, &out);
	assert_double_near(out.log_a, 0.9972460116410686, 1e-14);
	assert_double_near(out.b, 0.45, 1e-14);
	assert_int_equal(out.n_points, 0);
	/* No users: the prior itself. */
	curve_shrink(&p, &own, &prior, 0, &out);
	assert_double_near(out.log_a, log(2.0), 1e-15);
	assert_double_near(out.b, 0.3, 1e-15);
	/* k = 0: no shrinkage; out may alias own. */
	p.shrink_k = 0.0;
	out = own;
	curve_shrink(&p, &out, &prior, 5, &out);
	assert_double_near(out.log_a, log(3.0), 1e-15);
	assert_double_near(out.b, 0.5, 1e-15);
	p.shrink_k = -1.0;
	assert_non_null(curve_param_check(&p));
}

static void test_extrapolation(void **state)
{
	const struct curve c = { log(TRUE_A), TRUE_B, 30 };
	const struct curve falling = { 0.0, -0.2, 5 };
	struct ltv_err err;
	double v = -1.0;

	(void)state;
	/* 1.2 * (30 / 7)^0.4 = 2.147783649708597 */
	assert_int_equal(curve_extrapolate(&c, 7.0, 1.2, 30.0, &v, &err), 0);
	assert_double_near(v, 2.147783649708597, 1e-12);
	/* Anchored on an exact curve's own value, the ratio form lands on the curve. */
	assert_int_equal(curve_extrapolate(&c, 7.0, curve_predict(&c, 7.0), 30.0, &v, &err), 0);
	assert_double_near(v, 9.745149602290473, 1e-12);
	/* H = k is the observed value; y_k = 0 stays 0. */
	assert_int_equal(curve_extrapolate(&c, 7.0, 1.2, 7.0, &v, &err), 0);
	assert_double_near(v, 1.2, 1e-15);
	assert_int_equal(curve_extrapolate(&c, 7.0, 0.0, 90.0, &v, &err), 0);
	assert_true(v == 0.0);
	/* A falling fit never predicts below what was observed. */
	assert_int_equal(curve_extrapolate(&falling, 2.0, 3.0, 90.0, &v, &err), 0);
	assert_double_near(v, 3.0, 1e-15);
	v = -1.0;
	assert_int_equal(curve_extrapolate(&c, 30.0, 1.2, 7.0, &v, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "horizon 7 is before the observed age 30"));
	assert_int_equal(curve_extrapolate(&c, 0.0, 1.2, 7.0, &v, &err), LTV_EINVAL);
	assert_int_equal(curve_extrapolate(&c, 2.0, -1.0, 7.0, &v, &err), LTV_EINVAL);
	assert_true(v == -1.0);
}

static void test_save_load_round_trip(void **state)
{
	const struct curve c = { log(TRUE_A), TRUE_B, 30 };
	struct curve back = { 0, 0, 0 };
	struct ltv_err err;
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	curve_save(&c, &buf, &len);
	assert_int_equal(len, 12 + 8 + 8 + 8);
	assert_memory_equal(buf, "LTVCURVE", 8);
	assert_int_equal(curve_load(buf, len, &back, &err), 0);
	assert_memory_equal(&back.log_a, &c.log_a, sizeof(double));
	assert_memory_equal(&back.b, &c.b, sizeof(double));
	assert_int_equal(back.n_points, 30);
	assert_int_equal(curve_load(buf, len - 1, &back, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "truncated"));
	buf[3] = 'X';
	assert_int_equal(curve_load(buf, len, &back, &err), LTV_EINVAL);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_recovery),
		cmocka_unit_test(test_noisy_recovery),
		cmocka_unit_test(test_weights_and_skipped_points),
		cmocka_unit_test(test_degenerate_input),
		cmocka_unit_test(test_shrinkage),
		cmocka_unit_test(test_extrapolation),
		cmocka_unit_test(test_save_load_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
