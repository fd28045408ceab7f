/*
 * src/models/median_counted.c against median_select on the written-out
 * array: the same bits, for odd and even totals, ties and counts of 0, and
 * with -0 beside +0, where it writes the array out and asks median_select.
 */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "ltv/common.h"
#include "ltv/median_counted.h"
#include "ltv/rng.h"

/* median_select of v[i] written out count[i] times, in order. */
static double written_out(const double *v, const size_t *count, size_t n)
{
	size_t total = 0, at = 0;
	double *all, m;

	for (size_t i = 0; i < n; i++)
		total += count[i];
	all = xmalloc(total * sizeof(double));
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < count[i]; k++)
			all[at++] = v[i];
	m = median_select(all, total);
	free(all);
	return m;
}

static int same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_small_known(void **state)
{
	double v[] = { 5, 1, 3 };
	size_t c[] = { 1, 2, 1 };
	double w[] = { 2, 7 };
	size_t d[] = { 3, 3 };

	(void)state;
	/* 1 1 3 5: (1 + 3) / 2 */
	assert_true(median_counted(v, c, 3) == 2);
	/* 2 2 2 7 7 7: (2 + 7) / 2 */
	assert_true(median_counted(w, d, 2) == 4.5);
}

static void test_random_matches_written_out(void **state)
{
	struct rng r;

	(void)state;
	rng_seed(&r, 17, 3);
	for (int trial = 0; trial < 400; trial++) {
		const size_t n = 1 + rng_next(&r) % 300;
		double *v = xmalloc(n * sizeof(double)), *copy = xmalloc(n * sizeof(double));
		size_t *c = xmalloc(n * sizeof(size_t)), total = 0;
		/* few distinct values, so that runs of equal values straddle the middle */
		const uint64_t spread = trial % 3 == 0 ? 4 : 1000;
		double want, got;

		for (size_t i = 0; i < n; i++) {
			v[i] = (double)(rng_next(&r) % spread) - (double)spread / 3 + (trial % 2 ? 0.25 : 0);
			c[i] = rng_next(&r) % 5; /* some 0 */
			total += c[i];
		}
		if (total == 0)
			c[0] = total = 1;
		memcpy(copy, v, n * sizeof(double));
		want = written_out(v, c, n);
		got = median_counted(copy, c, n);
		assert_true(same_bits(want, got));
		free(v);
		free(copy);
		free(c);
	}
}

static void test_signed_zero_written_out(void **state)
{
	/* +0 and -0 both in the middle: median_select's pick of the two, bit for bit */
	double v[] = { -0.0, 0.0, 1, -1, 0.0, -0.0 };
	size_t c[] = { 2, 1, 1, 1, 3, 1 };
	double copy[6];

	(void)state;
	memcpy(copy, v, sizeof(v));
	assert_true(same_bits(median_counted(copy, c, 6), written_out(v, c, 6)));
	/* one count: a lone -0 stays -0 */
	{
		double z[] = { -0.0 };
		size_t one[] = { 1 };

		assert_true(signbit(median_counted(z, one, 1)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_known),
		cmocka_unit_test(test_random_matches_written_out),
		cmocka_unit_test(test_signed_zero_written_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
