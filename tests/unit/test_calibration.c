/*
 * Known-answer tests for src/models/calibration.c: anchor-and-adjust
 * recovers a planted alpha, PAV reproduces textbook poolings, fit_best picks
 * the kind that matches how the data were made, and a saved calibration
 * loads back bit for bit.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/calibration.h"

#define EPS 1e-12

static void test_param_check(void **state)
{
	struct calibration_param param;

	(void)state;
	calibration_param_init(&param);
	assert_null(calibration_param_check(&param));
	param.alpha_min = 3;
	assert_non_null(calibration_param_check(&param));
	calibration_param_init(&param);
	param.n_folds = 1;
	assert_non_null(calibration_param_check(&param));
	calibration_param_init(&param);
	param.alpha_max = NAN;
	assert_non_null(calibration_param_check(&param));
}

static void test_anchor_recovers_alpha(void **state)
{
	/*
	 * pred = A + (a - A) / 0.8, so p - A = 1.25 (a - A) and
	 * alpha = sum 1.25 d^2 / sum 1.5625 d^2 = 0.8 exactly; the calibrated
	 * values are then the actuals.
	 */
	const double anchor = 10;
	const double a[] = { 0, 5, 20, 40, 12 };
	double p[5], out[5];
	struct calibration_param param;
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 5; i++)
		p[i] = anchor + (a[i] - anchor) / 0.8;
	calibration_param_init(&param);
	assert_int_equal(calibration_fit_anchor(&param, anchor, p, a, 5, &cal, &err), 0);
	assert_int_equal(cal->kind, CALIBRATION_ANCHOR);
	assert_double_near(cal->alpha, 0.8, EPS);
	assert_double_near(cal->anchor, 10, 0);
	assert_true(isnan(cal->cv_mse_anchor));
	calibration_apply(cal, p, 5, out);
	for (int i = 0; i < 5; i++)
		assert_double_near(out[i], a[i], 1e-9);
	calibration_free(cal);
}

static void test_anchor_clipping(void **state)
{
	/* Same data: the free alpha is 0.8, outside [0.9, 1.5] and [0.1, 0.5]. */
	const double anchor = 10;
	const double a[] = { 0, 5, 20, 40, 12 };
	const double flat[] = { 10, 10, 10, 10, 10 };
	const double with_inf[] = { 1, INFINITY, 1, 1, 1 };
	double p[5], alpha = 0;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 5; i++)
		p[i] = anchor + (a[i] - anchor) / 0.8;
	assert_int_equal(calibration_anchor_alpha(p, a, 5, anchor, 0.9, 1.5, &alpha, &err), 0);
	assert_double_near(alpha, 0.9, 0);
	assert_int_equal(calibration_anchor_alpha(p, a, 5, anchor, 0.1, 0.5, &alpha, &err), 0);
	assert_double_near(alpha, 0.5, 0);
	/* every prediction at the anchor: sum (p - A)^2 = 0, alpha = 1, then clipped */
	assert_int_equal(calibration_anchor_alpha(flat, a, 5, anchor, 0, 2, &alpha, &err), 0);
	assert_double_near(alpha, 1, 0);
	assert_int_equal(calibration_anchor_alpha(flat, a, 5, anchor, 0, 0.5, &alpha, &err), 0);
	assert_double_near(alpha, 0.5, 0);
	/* non-finite input names the row */
	assert_int_equal(calibration_anchor_alpha(with_inf, a, 5, anchor, 0, 2, &alpha, &err),
			 LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
}

static void test_pav_textbook(void **state)
{
	/*
	 * y = 1, 3, 2, 4 at x = 1..4: 3 > 2 violates, pooled to 2.5, giving
	 * 1, 2.5, 2.5, 4. The pooled block spans x 2..3, so it is kept as two
	 * points: (1,1) (2,2.5) (3,2.5) (4,4).
	 */
	const double x[] = { 1, 2, 3, 4 };
	const double y[] = { 1, 3, 2, 4 };
	const double want_x[] = { 1, 2, 3, 4 };
	const double want_y[] = { 1, 2.5, 2.5, 4 };
	double out[4];
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(calibration_fit_isotonic(x, y, NULL, 4, &cal, &err), 0);
	assert_int_equal(cal->kind, CALIBRATION_ISOTONIC);
	assert_int_equal(cal->n_points, 4);
	for (int i = 0; i < 4; i++) {
		assert_double_near(cal->x[i], want_x[i], 0);
		assert_double_near(cal->y[i], want_y[i], EPS);
	}
	calibration_apply(cal, x, 4, out);
	for (int i = 0; i < 4; i++)
		assert_double_near(out[i], want_y[i], EPS);
	calibration_free(cal);
}

static void test_pav_decreasing_weighted_ties(void **state)
{
	/* y = 4,3,2,1: everything pools into one block of mean 2.5 over x 1..4. */
	const double x1[] = { 1, 2, 3, 4 };
	const double y1[] = { 4, 3, 2, 1 };
	/* weighted: (1*3 + 3*1) / 4 = 1.5 for both points */
	const double x2[] = { 1, 2 };
	const double y2[] = { 3, 1 };
	const double w2[] = { 1, 3 };
	/* tied x = 1 pools first to (0 + 2) / 2 = 1, then x = 2 stays at 5 */
	const double x3[] = { 2, 1, 1 };
	const double y3[] = { 5, 0, 2 };
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };
	const double w_bad[] = { 1, 0 };

	(void)state;
	assert_int_equal(calibration_fit_isotonic(x1, y1, NULL, 4, &cal, &err), 0);
	assert_int_equal(cal->n_points, 2);
	assert_double_near(cal->x[0], 1, 0);
	assert_double_near(cal->x[1], 4, 0);
	assert_double_near(cal->y[0], 2.5, EPS);
	assert_double_near(cal->y[1], 2.5, EPS);
	calibration_free(cal);

	assert_int_equal(calibration_fit_isotonic(x2, y2, w2, 2, &cal, &err), 0);
	assert_int_equal(cal->n_points, 2);
	assert_double_near(cal->y[0], 1.5, EPS);
	assert_double_near(cal->y[1], 1.5, EPS);
	calibration_free(cal);

	assert_int_equal(calibration_fit_isotonic(x3, y3, NULL, 3, &cal, &err), 0);
	assert_int_equal(cal->n_points, 2);
	assert_double_near(cal->x[0], 1, 0);
	assert_double_near(cal->y[0], 1, EPS);
	assert_double_near(cal->x[1], 2, 0);
	assert_double_near(cal->y[1], 5, EPS);
	calibration_free(cal);

	assert_int_equal(calibration_fit_isotonic(x2, y2, w_bad, 2, &cal, &err), LTV_EINVAL);
	assert_int_equal(calibration_fit_isotonic(x2, y2, NULL, 0, &cal, &err), LTV_EINVAL);
}

static void test_isotonic_interpolation(void **state)
{
	/*
	 * Points (1,1) (2,2.5) (3,2.5) (4,4): 1.5 -> 1.75, 2.7 -> 2.5 (flat
	 * block), 3.5 -> 3.25, beyond the ends held at 1 and 4, NaN stays NaN.
	 */
	const double x[] = { 1, 2, 3, 4 };
	const double y[] = { 1, 3, 2, 4 };
	const double q[] = { -5, 0.999, 1.5, 2.7, 3.5, 4, 10, NAN };
	const double want[] = { 1, 1, 1.75, 2.5, 3.25, 4, 4 };
	double out[8];
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(calibration_fit_isotonic(x, y, NULL, 4, &cal, &err), 0);
	calibration_apply(cal, q, 8, out);
	for (int i = 0; i < 7; i++)
		assert_double_near(out[i], want[i], EPS);
	assert_true(isnan(out[7]));
	calibration_free(cal);
}

/*
 * calibration_apply_repeated: each value calibration_apply's to the bit,
 * through runs of repeats, a change of calibration between equal values,
 * and NaN.
 */
static void test_apply_repeated(void **state)
{
	const double x[] = { 1, 2, 3, 4 }, y[] = { 1, 3, 2, 4 };
	const double q[] = { 1.5, 1.5, 1.5, 2.7, 2.7, 1.5, NAN, NAN, 3.5 };
	const int use_iso[] = { 1, 1, 0, 0, 1, 1, 1, 0, 0 };
	struct calibration *iso = NULL, *anchor = xcalloc(1, sizeof(*anchor));
	struct calibration_last last = { 0 };
	struct ltv_err err = { 0 };

	(void)state;
	anchor->kind = CALIBRATION_ANCHOR;
	anchor->anchor = 2;
	anchor->alpha = 0.5;
	assert_int_equal(calibration_fit_isotonic(x, y, NULL, 4, &iso, &err), 0);
	for (int i = 0; i < 9; i++) {
		const struct calibration *cal = use_iso[i] ? iso : anchor;
		double want, got;

		calibration_apply(cal, &q[i], 1, &want);
		got = calibration_apply_repeated(cal, q[i], &last);
		assert_memory_equal(&got, &want, sizeof(got));
	}
	calibration_free(iso);
	calibration_free(anchor);
}

static void test_fit_best_picks_anchor_on_linear(void **state)
{
	/*
	 * actual = 25 + 0.8 (pred - 25) exactly, pred a permutation of 0..49
	 * (so every fold spans the range). Anchor-and-adjust recovers alpha on
	 * every fold: CV MSE ~ 0. Isotonic holds the fold's extreme preds (0,
	 * 49) at the nearest training value, so its CV MSE is > 0.
	 */
	double p[50], a[50];
	struct calibration_param param;
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 50; i++) {
		p[i] = (i * 37) % 50;
		a[i] = 25 + 0.8 * (p[i] - 25);
	}
	calibration_param_init(&param);
	assert_int_equal(calibration_fit_best(&param, 25, p, a, 50, &cal, &err), 0);
	assert_int_equal(cal->kind, CALIBRATION_ANCHOR);
	assert_double_near(cal->alpha, 0.8, 1e-12);
	assert_true(cal->cv_mse_anchor < 1e-20);
	assert_true(cal->cv_mse_isotonic > 1e-3);
	calibration_free(cal);

	/* too few rows for the folds */
	assert_int_equal(calibration_fit_best(&param, 25, p, a, 4, &cal, &err), LTV_EINVAL);
}

static void test_fit_best_picks_isotonic_on_step(void **state)
{
	/*
	 * actual = 0 below pred 50 and 100 from 50 on: no line through the
	 * anchor (50) fits a step, isotonic does except between 49 and 50.
	 */
	double p[100], a[100], out[2];
	const double q[] = { 10, 90 };
	struct calibration_param param;
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 100; i++) {
		p[i] = (i * 37) % 100;
		a[i] = p[i] < 50 ? 0 : 100;
	}
	calibration_param_init(&param);
	assert_int_equal(calibration_fit_best(&param, 50, p, a, 100, &cal, &err), 0);
	assert_int_equal(cal->kind, CALIBRATION_ISOTONIC);
	assert_true(cal->cv_mse_isotonic < cal->cv_mse_anchor);
	assert_true(cal->cv_mse_anchor > 100);
	calibration_apply(cal, q, 2, out);
	assert_double_near(out[0], 0, EPS);
	assert_double_near(out[1], 100, EPS);
	calibration_free(cal);
}

/*
 * fit_best sorts its rows once and takes each fold's training order from
 * that sort: its cross-validated errors and its isotonic points must be bit
 * for bit those of fitting every fold on its own (calibration_fit_isotonic
 * sorts its rows itself). 3,001 rows (the radix sort's side of metrics'
 * threshold), many ties, +0 and -0 among them, uneven folds.
 */
static void test_fit_best_matches_fold_by_fold(void **state)
{
	enum { N = 3001, FOLDS = 7 };
	static double p[N], a[N], tp[N], ta[N];
	struct calibration_param param;
	struct calibration *cal = NULL, *ref = NULL;
	struct ltv_err err = { 0 };
	double sse_anchor = 0, sse_iso = 0;

	(void)state;
	for (int i = 0; i < N; i++) {
		p[i] = (double)((i * 7919) % 211) / 8.0; /* about 14 rows per value */
		if (p[i] == 0)
			p[i] = i % 2 ? -0.0 : 0.0;
		a[i] = (p[i] < 12 ? 1.0 : 20.0) + (double)((i * 31) % 17) / 4.0;
	}
	calibration_param_init(&param);
	param.n_folds = FOLDS;
	assert_int_equal(calibration_fit_best(&param, 10, p, a, N, &cal, &err), 0);
	for (size_t f = 0; f < FOLDS; f++) {
		const size_t lo = f * N / FOLDS, hi = (f + 1) * N / FOLDS;
		size_t k = 0;
		double alpha, v;

		for (size_t i = 0; i < N; i++)
			if (i < lo || i >= hi) {
				tp[k] = p[i];
				ta[k++] = a[i];
			}
		assert_int_equal(calibration_anchor_alpha(tp, ta, k, 10, param.alpha_min,
							  param.alpha_max, &alpha, &err), 0);
		assert_int_equal(calibration_fit_isotonic(tp, ta, NULL, k, &ref, &err), 0);
		for (size_t i = lo; i < hi; i++) {
			const double by_anchor = 10 + alpha * (p[i] - 10);

			calibration_apply(ref, &p[i], 1, &v);
			sse_anchor += (by_anchor - a[i]) * (by_anchor - a[i]);
			sse_iso += (v - a[i]) * (v - a[i]);
		}
		calibration_free(ref);
	}
	sse_anchor /= N;
	sse_iso /= N;
	assert_memory_equal(&cal->cv_mse_anchor, &sse_anchor, sizeof(double));
	assert_memory_equal(&cal->cv_mse_isotonic, &sse_iso, sizeof(double));
	assert_int_equal(cal->kind, CALIBRATION_ISOTONIC);
	assert_int_equal(calibration_fit_isotonic(p, a, NULL, N, &ref, &err), 0);
	assert_int_equal(cal->n_points, ref->n_points);
	assert_memory_equal(cal->x, ref->x, ref->n_points * sizeof(double));
	assert_memory_equal(cal->y, ref->y, ref->n_points * sizeof(double));
	calibration_free(ref);
	calibration_free(cal);
}

/* Saves cal, loads it, and checks every field and a second save are identical. */
static void check_round_trip(const struct calibration *cal)
{
	struct calibration *back = NULL;
	struct ltv_err err = { 0 };
	uint8_t *blob, *blob2;
	size_t len = 0, len2 = 0;

	blob = calibration_save(cal, &len);
	assert_int_equal(calibration_load(blob, len, &back, &err), 0);
	assert_int_equal(back->kind, cal->kind);
	assert_memory_equal(&back->anchor, &cal->anchor, sizeof(double));
	assert_memory_equal(&back->alpha, &cal->alpha, sizeof(double));
	assert_memory_equal(&back->cv_mse_anchor, &cal->cv_mse_anchor, sizeof(double));
	assert_memory_equal(&back->cv_mse_isotonic, &cal->cv_mse_isotonic, sizeof(double));
	assert_int_equal(back->n_points, cal->n_points);
	if (cal->n_points) {
		assert_memory_equal(back->x, cal->x, cal->n_points * sizeof(double));
		assert_memory_equal(back->y, cal->y, cal->n_points * sizeof(double));
	}
	blob2 = calibration_save(back, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(blob2, blob, len);

	/* truncated by one byte, foreign magic, unknown kind: all refused */
	assert_int_equal(calibration_load(blob, len - 1, &back, &err), LTV_EINVAL);
	blob2[0] = 'X';
	assert_int_equal(calibration_load(blob2, len, &back, &err), LTV_EINVAL);
	blob2[0] = blob[0];
	blob2[12] = 7; /* kind: after the 8-byte magic and u32 version */
	assert_int_equal(calibration_load(blob2, len, &back, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "corrupt"));

	calibration_free(back);
	free(blob);
	free(blob2);
}

static void test_save_load_round_trip(void **state)
{
	/* values with no short decimal form, so a text round trip would show */
	double p[30], a[30];
	struct calibration_param param;
	struct calibration *cal = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 30; i++) {
		p[i] = sqrt((double)((i * 7) % 30) + 0.1) / 3.0;
		a[i] = p[i] * 1.1 + sin((double)i) / 7.0;
	}
	calibration_param_init(&param);
	assert_int_equal(calibration_fit_isotonic(p, a, NULL, 30, &cal, &err), 0);
	assert_true(cal->n_points > 2);
	check_round_trip(cal);
	calibration_free(cal);

	assert_int_equal(calibration_fit_anchor(&param, 1.0 / 3.0, p, a, 30, &cal, &err), 0);
	check_round_trip(cal);
	calibration_free(cal);

	assert_int_equal(calibration_fit_best(&param, 1.0 / 3.0, p, a, 30, &cal, &err), 0);
	assert_false(isnan(cal->cv_mse_anchor));
	check_round_trip(cal);
	calibration_free(cal);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_param_check),
		cmocka_unit_test(test_anchor_recovers_alpha),
		cmocka_unit_test(test_anchor_clipping),
		cmocka_unit_test(test_pav_textbook),
		cmocka_unit_test(test_pav_decreasing_weighted_ties),
		cmocka_unit_test(test_isotonic_interpolation),
		cmocka_unit_test(test_apply_repeated),
		cmocka_unit_test(test_fit_best_picks_anchor_on_linear),
		cmocka_unit_test(test_fit_best_picks_isotonic_on_step),
		cmocka_unit_test(test_fit_best_matches_fold_by_fold),
		cmocka_unit_test(test_save_load_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
