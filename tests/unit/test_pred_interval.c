/*
 * Tests for the negative-binomial / Poisson prediction intervals: hand-worked
 * quantiles, then the quantile definition checked against GSL's CDFs (an
 * independent computation) over small and large means, where P(Y = 0)
 * underflows.
 */
#include "testutil.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>

#include "ltv/pred_interval.h"

/*
 * Poisson(2): F(0) = .135, F(3) = .857, F(4) = .947, so the 80% interval is
 * [0, 4]. Geometric (size 1) with mean 3: F(q) = 1 - .75^(q+1) >= .9 first at
 * q = 8, so [0, 8]. Poisson(10): F(5) = .067, F(6) = .130, F(13) = .864,
 * F(14) = .917, so [6, 14].
 */
static void test_hand_values(void **state)
{
	const double mean[3] = { 2, 3, 10 };
	double lo[3], hi[3];
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(pred_interval_nbinom(mean, 1, INFINITY, 0.8, lo, hi, &err), 0);
	assert_double_near(lo[0], 0, 0);
	assert_double_near(hi[0], 4, 0);
	assert_int_equal(pred_interval_nbinom(mean + 1, 1, 1, 0.8, lo, hi, &err), 0);
	assert_double_near(lo[0], 0, 0);
	assert_double_near(hi[0], 8, 0);
	assert_int_equal(pred_interval_nbinom(mean + 2, 1, INFINITY, 0.8, lo, hi, &err), 0);
	assert_double_near(lo[0], 6, 0);
	assert_double_near(hi[0], 14, 0);
}

static double cdf(double q, double mean, double size)
{
	if (q < 0)
		return 0;
	if (isinf(size))
		return gsl_cdf_poisson_P((unsigned)q, mean);
	return gsl_cdf_negative_binomial_P((unsigned)q, size / (size + mean), size);
}

/* lo and hi are the smallest q with F(q) >= .1 and >= .9, per GSL. */
static void test_against_gsl(void **state)
{
	const double mean[] = { 0.01, 0.3, 1.226, 7.5, 20, 250, 1000, 40000 };
	const double sizes[] = { 0.2, 0.61, 5, 80, INFINITY };
	const size_t n = sizeof(mean) / sizeof(mean[0]);
	double lo[sizeof(mean) / sizeof(mean[0])], hi[sizeof(mean) / sizeof(mean[0])];
	struct ltv_err err = { 0 };
	gsl_error_handler_t *old = gsl_set_error_handler_off();

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		assert_int_equal(pred_interval_nbinom(mean, n, sizes[k], 0.8, lo, hi, &err), 0);
		for (size_t i = 0; i < n; i++) {
			assert_true(lo[i] <= hi[i]);
			assert_true(cdf(lo[i], mean[i], sizes[k]) >= 0.1 - 1e-9);
			assert_true(cdf(lo[i] - 1, mean[i], sizes[k]) < 0.1 + 1e-9);
			assert_true(cdf(hi[i], mean[i], sizes[k]) >= 0.9 - 1e-9);
			assert_true(cdf(hi[i] - 1, mean[i], sizes[k]) < 0.9 + 1e-9);
		}
	}
	gsl_set_error_handler(old);
	/* A wider level never gives a narrower interval. */
	{
		double lo95[sizeof(mean) / sizeof(mean[0])], hi95[sizeof(mean) / sizeof(mean[0])];

		assert_int_equal(pred_interval_nbinom(mean, n, 5, 0.8, lo, hi, &err), 0);
		assert_int_equal(pred_interval_nbinom(mean, n, 5, 0.95, lo95, hi95, &err), 0);
		for (size_t i = 0; i < n; i++)
			assert_true(lo95[i] <= lo[i] && hi95[i] >= hi[i]);
		assert_true(hi95[n - 1] > hi[n - 1]);
	}
}

static void test_edges(void **state)
{
	double mean[2] = { 0, 4 }, lo[2] = { -1, -1 }, hi[2] = { -1, -1 };
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(pred_interval_nbinom(mean, 2, 3, 0.8, lo, hi, &err), 0);
	assert_double_near(lo[0], 0, 0);
	assert_double_near(hi[0], 0, 0);
	assert_int_equal(pred_interval_nbinom(mean, 0, 3, 0.8, lo, hi, &err), 0);
	mean[1] = -1;
	assert_int_equal(pred_interval_nbinom(mean, 2, 3, 0.8, lo, hi, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
	mean[1] = NAN;
	assert_int_equal(pred_interval_nbinom(mean, 2, 3, 0.8, lo, hi, &err), LTV_EINVAL);
	mean[1] = 4;
	assert_int_equal(pred_interval_nbinom(mean, 2, 0, 0.8, lo, hi, &err), LTV_EINVAL);
	assert_int_equal(pred_interval_nbinom(mean, 2, NAN, 0.8, lo, hi, &err), LTV_EINVAL);
	assert_int_equal(pred_interval_nbinom(mean, 2, 3, 1, lo, hi, &err), LTV_EINVAL);
	assert_int_equal(pred_interval_nbinom(mean, 2, 3, 0, lo, hi, &err), LTV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_values),
		cmocka_unit_test(test_against_gsl),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
