/*
 * Known-answer tests for src/models/psi.c: each expected PSI is worked out by
 * hand in the comment above it, from the bins include/ltv/psi.h defines.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/psi.h"

#define EPS 1e-12

static void test_identical_is_zero(void **state)
{
	/* ref = cur = 1..10: cuts at 1..9, one value per bin, PSI 0 */
	double v[10];
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 10; i++)
		v[i] = i + 1;
	assert_int_equal(psi_compute(v, 10, v, 10, 10, &r, &err), 0);
	assert_int_equal(r.n_bins, 10);
	for (int k = 0; k < 9; k++)
		assert_double_near(r.cut[k], k + 1, EPS);
	assert_double_near(r.psi, 0, EPS);
	assert_double_near(r.ref_share[3], 0.1, EPS);
	assert_double_near(r.ref_share[10], 0, EPS); /* NaN bin */
}

static void test_shift_and_empty_bins(void **state)
{
	/*
	 * ref 1..10: every bin 0.1. cur {1,1,1,1,1,2,3,4,5,6}: bin 0 holds 0.5,
	 * bins 1..5 0.1, bins 6..9 none (floored at 1e-4):
	 *   (0.5 - 0.1) ln 5 + 4 (1e-4 - 0.1) ln(1e-4 / 0.1)
	 * = 0.4 ln 5 + 4 (0.1 - 1e-4) ln 1000 = 3.4041142...
	 */
	const double cur[10] = { 1, 1, 1, 1, 1, 2, 3, 4, 5, 6 };
	double ref[10];
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 10; i++)
		ref[i] = i + 1;
	assert_int_equal(psi_compute(ref, 10, cur, 10, 10, &r, &err), 0);
	assert_double_near(r.psi, 0.4 * log(5) + 4 * (0.1 - 1e-4) * log(1000), EPS);
	assert_double_near(r.psi, 3.4041142, 1e-6);
	assert_double_near(r.cur_share[0], 0.5, EPS);
	assert_double_near(r.cur_share[9], 0, EPS);
	/* the reverse is not the same number: the floors sit on the other side */
	assert_int_equal(psi_compute(cur, 10, ref, 10, 10, &r, &err), 0);
	assert_true(fabs(r.psi - 3.4041142) > 0.01);
}

static void test_constant_feature(void **state)
{
	/*
	 * A constant reference 5 has the one cut 5: bins (-inf, 5] and (5, inf).
	 * ref shares 1, 0; cur {5,5,6,6} 0.5, 0.5:
	 *   (0.5 - 1) ln 0.5 + (0.5 - 1e-4) ln(0.5 / 1e-4) = 0.5 ln 2 + 0.4999 ln 5000
	 * The same constant on both sides is 0.
	 */
	const double ref[4] = { 5, 5, 5, 5 }, cur[4] = { 5, 5, 6, 6 };
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(psi_compute(ref, 4, cur, 4, 10, &r, &err), 0);
	assert_int_equal(r.n_bins, 2);
	assert_double_near(r.cut[0], 5, EPS);
	assert_double_near(r.psi, 0.5 * log(2) + 0.4999 * log(5000), EPS);
	assert_int_equal(psi_compute(ref, 4, ref, 4, 10, &r, &err), 0);
	assert_double_near(r.psi, 0, EPS);
}

static void test_nan_bin(void **state)
{
	/*
	 * ref 1..8 and two NaN (10 rows), 4 bins: m = 8, cuts x_(2k) = 2, 4, 6;
	 * every value bin 0.2 and the NaN bin 0.2. cur 1, 3, 5, 7 and six NaN:
	 * value bins 0.1 each, NaN 0.6:
	 *   4 (0.1 - 0.2) ln 0.5 + (0.6 - 0.2) ln 3 = 0.4 ln 2 + 0.4 ln 3
	 */
	const double ref[10] = { 1, 2, 3, 4, 5, 6, 7, 8, NAN, NAN };
	const double cur[10] = { 1, 3, 5, 7, NAN, NAN, NAN, NAN, NAN, NAN };
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(psi_compute(ref, 10, cur, 10, 4, &r, &err), 0);
	assert_int_equal(r.n_bins, 4);
	assert_double_near(r.cut[0], 2, EPS);
	assert_double_near(r.cut[1], 4, EPS);
	assert_double_near(r.cut[2], 6, EPS);
	assert_double_near(r.ref_share[4], 0.2, EPS);
	assert_double_near(r.cur_share[4], 0.6, EPS);
	assert_double_near(r.psi, 0.4 * log(2) + 0.4 * log(3), EPS);
	/* a value on a cut falls in the bin below it */
	assert_int_equal(psi_bin(&r, 4), 1);
	assert_int_equal(psi_bin(&r, 4.5), 2);
	assert_int_equal(psi_bin(&r, 100), 3);
	assert_int_equal(psi_bin(&r, -100), 0);
	assert_int_equal(psi_bin(&r, NAN), 4);
}

static void test_discrete_merges_bins(void **state)
{
	/*
	 * ref seven 0 and three 1, 10 bins: cuts x_(1..9) = 0 (x7) then 1, the
	 * maximum, dropped: bins (-inf, 0] and (0, inf) with 0.7, 0.3.
	 * cur five and five: (0.5 - 0.7) ln(5/7) + (0.5 - 0.3) ln(5/3)
	 */
	const double ref[10] = { 0, 0, 0, 0, 0, 0, 0, 1, 1, 1 };
	const double cur[10] = { 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 };
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(psi_compute(ref, 10, cur, 10, 10, &r, &err), 0);
	assert_int_equal(r.n_bins, 2);
	assert_double_near(r.psi, -0.2 * log(5.0 / 7) + 0.2 * log(5.0 / 3), EPS);
}

static void test_all_nan_reference(void **state)
{
	/* no value to cut: one value bin (-inf, inf) and the NaN bin; ref 0, 1; cur 0.5, 0.5 */
	const double ref[2] = { NAN, NAN }, cur[2] = { 1, NAN };
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(psi_compute(ref, 2, cur, 2, 10, &r, &err), 0);
	assert_int_equal(r.n_bins, 1);
	assert_double_near(r.psi, (0.5 - 1e-4) * log(0.5 / 1e-4) + (0.5 - 1) * log(0.5), EPS);
}

static void test_errors_and_levels(void **state)
{
	const double v[2] = { 1, 2 };
	struct psi_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(psi_compute(v, 0, v, 2, 10, &r, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "reference"));
	assert_int_equal(psi_compute(v, 2, v, 0, 10, &r, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "current"));
	assert_int_equal(psi_compute(v, 2, v, 2, 1, &r, &err), LTV_EINVAL);
	assert_int_equal(psi_compute(v, 2, v, 2, PSI_MAX_BINS + 1, &r, &err), LTV_EINVAL);
	assert_int_equal(psi_level(0.0999, 0.1, 0.25), PSI_OK);
	assert_int_equal(psi_level(0.1, 0.1, 0.25), PSI_WARN);
	assert_int_equal(psi_level(0.2499, 0.1, 0.25), PSI_WARN);
	assert_int_equal(psi_level(0.25, 0.1, 0.25), PSI_ALERT);
	assert_string_equal(psi_level_name(PSI_ALERT), "alert");
	assert_null(psi_thresholds_check(0.1, 0.25));
	assert_non_null(psi_thresholds_check(0.3, 0.25));
	assert_non_null(psi_thresholds_check(0, 0.25));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_is_zero),
		cmocka_unit_test(test_shift_and_empty_bins),
		cmocka_unit_test(test_constant_feature),
		cmocka_unit_test(test_nan_bin),
		cmocka_unit_test(test_discrete_merges_bins),
		cmocka_unit_test(test_all_nan_reference),
		cmocka_unit_test(test_errors_and_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
