/*
 * Known answers for the stacked blend (src/models/blend.c): the simplex
 * projection on hand cases, and blend_fit recovering convex weights that
 * generated the group totals exactly, ignoring an unusable method, and
 * staying on the simplex when the best fit lies outside it.
 */
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ltv/blend.h"
#include "ltv/rng.h"

static void test_projection(void **state)
{
	double a[3] = { 0.2, 0.3, 0.5 }, b[3] = { 2, 0, 0 }, c[2] = { 1, 1 }, d[3] = { -1, 0.5, 0.2 };

	(void)state;
	blend_project_simplex(a, 3); /* already on the simplex: unchanged */
	assert_true(fabs(a[0] - 0.2) < 1e-15 && fabs(a[1] - 0.3) < 1e-15 && fabs(a[2] - 0.5) < 1e-15);
	blend_project_simplex(b, 3); /* a far corner projects onto the vertex */
	assert_true(b[0] == 1 && b[1] == 0 && b[2] == 0);
	blend_project_simplex(c, 2); /* (1, 1) → (0.5, 0.5) */
	assert_true(fabs(c[0] - 0.5) < 1e-15 && fabs(c[1] - 0.5) < 1e-15);
	blend_project_simplex(d, 3); /* theta = -0.15: (0, 0.65, 0.35) */
	assert_true(d[0] == 0 && fabs(d[1] - 0.65) < 1e-12 && fabs(d[2] - 0.35) < 1e-12);
}

static int desc(const void *pa, const void *pb)
{
	const double a = *(const double *)pa, b = *(const double *)pb;

	return (a < b) - (a > b);
}

/*
 * The projection sorts a handful of values by insertion (qsort was most of
 * blend_fit): bit for bit what the qsort version (Duchi et al.) gives, on
 * random vectors with ties, every length up to BLEND_MAX_METHODS.
 */
static void test_projection_matches_sorting(void **state)
{
	struct rng r;

	(void)state;
	rng_seed(&r, 5, 0);
	for (int trial = 0; trial < 2000; trial++) {
		const size_t n = 1 + (size_t)(trial % BLEND_MAX_METHODS);
		double v[BLEND_MAX_METHODS], want[BLEND_MAX_METHODS], u[BLEND_MAX_METHODS];
		double cum = 0, theta = 0;

		for (size_t k = 0; k < n; k++)
			v[k] = trial % 3 == 0 ? (double)(rng_next(&r) % 4) / 4 : 2 * rng_unif(&r) - 0.5;
		memcpy(u, v, n * sizeof(double));
		qsort(u, n, sizeof(double), desc);
		for (size_t k = 0; k < n; k++) {
			cum += u[k];
			if (u[k] - (cum - 1) / (double)(k + 1) > 0)
				theta = (cum - 1) / (double)(k + 1);
		}
		for (size_t k = 0; k < n; k++)
			want[k] = fmax(v[k] - theta, 0);
		blend_project_simplex(v, n);
		assert_memory_equal(v, want, n * sizeof(double));
	}
}

/* 12 groups, 3 methods; y = x . (0.6, 0, 0.4) exactly; method 1 is noise. */
static void test_recovers_weights(void **state)
{
	double x[12 * 3], y[12], n[12], w[3];
	const int usable[3] = { 1, 1, 1 };

	(void)state;
	for (int g = 0; g < 12; g++) {
		x[g * 3 + 0] = 10 + g;
		x[g * 3 + 1] = 40 - 3 * g + (g % 3) * 7;
		x[g * 3 + 2] = 5 + (g * g) % 11;
		y[g] = 0.6 * x[g * 3 + 0] + 0.4 * x[g * 3 + 2];
		n[g] = 50 + g;
	}
	assert_int_equal(blend_fit(x, y, n, 12, 3, usable, w), 0);
	assert_true(fabs(w[0] - 0.6) < 1e-6);
	assert_true(fabs(w[1]) < 1e-6);
	assert_true(fabs(w[2] - 0.4) < 1e-6);
}

static void test_unusable_and_outside(void **state)
{
	double x[6 * 2], y[6], n[6], w[2];
	const int only_first[2] = { 1, 0 }, both[2] = { 1, 1 }, none[2] = { 0, 0 };

	(void)state;
	for (int g = 0; g < 6; g++) {
		x[g * 2] = 1 + g;
		x[g * 2 + 1] = 2 * (1 + g);
		y[g] = 3 * (1 + g); /* needs w = (1, 1): off the simplex */
		n[g] = 1;
	}
	assert_int_equal(blend_fit(x, y, n, 6, 2, only_first, w), 0);
	assert_true(w[0] == 1 && w[1] == 0);
	assert_int_equal(blend_fit(x, y, n, 6, 2, both, w), 0);
	/* the best convex fit puts everything on the larger predictor */
	assert_true(fabs(w[0]) < 1e-9 && fabs(w[1] - 1) < 1e-9);
	assert_int_equal(blend_fit(x, y, n, 6, 2, none, w), -1);
	assert_int_equal(blend_fit(x, y, n, 0, 2, both, w), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_projection),
		cmocka_unit_test(test_projection_matches_sorting),
		cmocka_unit_test(test_recovers_weights),
		cmocka_unit_test(test_unusable_and_outside),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
