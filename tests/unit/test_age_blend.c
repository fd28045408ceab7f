/*
 * predictor_age_blend: a user of age a is served, at horizon H, from the
 * documented snapshot(s) (DESIGN.md "Time, windows and labels", contract in
 * include/ltv/predictor.h). With the default snapshots [1, 3, 7, 14, 30, 60]:
 * between the snapshots around a, linearly in a; below the first or above the
 * last one below H, that snapshot with the revenue to come scaled by
 * (H - a) / (H - s); nothing to come (scale 0) once a >= H.
 */
#include "testutil.h"

#include "ltv/predictor.h"

static const int64_t default_snapshots[] = { 1, 3, 7, 14, 30, 60 };
static const struct int_list snapshots = { (int64_t *)default_snapshots, 6 };
static const int64_t horizons[] = { 7, 30, 90 };

struct blend {
	double lo, hi, t, scale;
};

static struct blend blend_at(int64_t horizon, double age)
{
	struct blend b = { NAN, NAN, NAN, NAN };

	predictor_age_blend(&snapshots, horizon, age, &b.lo, &b.hi, &b.t, &b.scale);
	return b;
}

static void expect(int64_t horizon, double age, double lo, double hi, double t, double scale)
{
	struct blend b = blend_at(horizon, age);

	if (!(fabs(b.lo - lo) <= 1e-15 && fabs(b.hi - hi) <= 1e-15 && fabs(b.t - t) <= 1e-15 &&
	      fabs(b.scale - scale) <= 1e-15))
		fail_msg("H %lld a %g: got lo %g hi %g t %.17g scale %.17g, expected lo %g hi %g "
			 "t %.17g scale %.17g", (long long)horizon, age, b.lo, b.hi, b.t, b.scale, lo,
			 hi, t, scale);
}

/* Age exactly a snapshot: that snapshot alone (t = 0), nothing scaled. */
static void test_age_at_a_snapshot(void **state)
{
	(void)state;
	expect(30, 1, 1, 1, 0, 1);   /* the first: lo = hi */
	expect(30, 14, 14, 14, 0, 1); /* the last below 30 */
	expect(90, 60, 60, 60, 0, 1); /* the last below 90 */
	for (size_t j = 0; j < 3; j++)
		for (size_t k = 0; k < 6 && default_snapshots[k] < horizons[j]; k++) {
			const int64_t h = horizons[j];
			struct blend b = blend_at(h, (double)default_snapshots[k]);

			assert_true(b.lo == (double)default_snapshots[k]);
			assert_true(b.t == 0);
			assert_true(b.scale == 1);
		}
}

/* Between two snapshots: lo and hi around a, t = (a - lo) / (hi - lo), scale 1. */
static void test_age_between_snapshots(void **state)
{
	(void)state;
	expect(30, 2, 1, 3, 0.5, 1);
	expect(30, 5, 3, 7, 0.5, 1);
	expect(30, 10, 7, 14, 3.0 / 7, 1);
	expect(30, 13, 7, 14, 6.0 / 7, 1);
	expect(90, 45, 30, 60, 0.5, 1);
	expect(90, 20, 14, 30, 6.0 / 16, 1);
	expect(7, 2.5, 1, 3, 0.75, 1); /* ages need not be whole */
}

/* Below the first snapshot: the first, future scaled by the days left, H / (H - 1) at a = 0. */
static void test_age_below_first_snapshot(void **state)
{
	(void)state;
	expect(30, 0, 1, 1, 0, 30.0 / 29);
	expect(7, 0, 1, 1, 0, 7.0 / 6);
	expect(90, 0.5, 1, 1, 0, 89.5 / 89);
}

/* Past the last snapshot below H: that one, future scaled by (H - a) / (H - s). */
static void test_age_above_last_snapshot_below_horizon(void **state)
{
	(void)state;
	expect(30, 20, 14, 14, 0, 10.0 / 16);
	expect(30, 29, 14, 14, 0, 1.0 / 16);
	expect(7, 5, 3, 3, 0, 2.0 / 4);  /* 7 is not below H = 7: the last is 3 */
	expect(7, 6, 3, 3, 0, 1.0 / 4);
	expect(90, 89, 60, 60, 0, 1.0 / 30);
}

/* A horizon the user has lived: nothing to come. */
static void test_age_at_or_past_horizon(void **state)
{
	(void)state;
	assert_true(blend_at(30, 30).scale == 0);
	assert_true(blend_at(30, 45).scale == 0);
	assert_true(blend_at(7, 7).scale == 0);
	assert_true(blend_at(90, 90).scale == 0);
	assert_true(blend_at(90, 400).scale == 0);
	assert_true(blend_at(30, 30).t == 0);
}

/*
 * Every age in [0, H) at half-day steps: the blend point lo + t (hi - lo) is a
 * itself between the first and last snapshots below H (linear in a), lo <= a
 * < hi when t > 0, and outside that range scale * (H - s) = H - a, so the
 * served future shrinks with the days left and never grows past the
 * snapshot's own.
 */
static void test_blend_is_linear_and_scale_is_days_left(void **state)
{
	(void)state;
	for (size_t j = 0; j < 3; j++) {
		const int64_t h = horizons[j];
		double first = 1, last = 0;

		for (size_t k = 0; k < 6 && default_snapshots[k] < h; k++)
			last = (double)default_snapshots[k];
		for (double a = 0; a < (double)h; a += 0.5) {
			struct blend b = blend_at(h, a);

			assert_true(b.t >= 0 && b.t < 1);
			if (a >= first && a <= last) {
				assert_double_near(b.lo + b.t * (b.hi - b.lo), a, 1e-12);
				assert_true(b.scale == 1);
				assert_true(b.lo <= a);
				if (b.t > 0)
					assert_true(a < b.hi);
			} else {
				assert_true(b.lo == b.hi && b.t == 0);
				assert_true(b.lo == (a < first ? first : last));
				assert_double_near(b.scale * ((double)h - b.lo), (double)h - a, 1e-12);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_age_at_a_snapshot),
		cmocka_unit_test(test_age_between_snapshots),
		cmocka_unit_test(test_age_below_first_snapshot),
		cmocka_unit_test(test_age_above_last_snapshot_below_horizon),
		cmocka_unit_test(test_age_at_or_past_horizon),
		cmocka_unit_test(test_blend_is_linear_and_scale_is_days_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
