/*
 * btyd_triples_build: whole-number histories are sorted as packed integer
 * keys (a radix sort), the rest by sorting the histories. Either way the
 * triples must be exactly those of rounding the histories to whole weeks and
 * collapsing them with btyd_triples_collapse, the fits' input to the bit.
 */
#include "testutil.h"

#include "ltv/btyd_history.h"

/* The triples as btyd_triples_build made them before the packed keys. */
static void reference_triples(const struct btyd_history *h, size_t n, struct btyd_triples *out)
{
	struct btyd_history *c = malloc((n ? n : 1) * sizeof(*c));

	assert_non_null(c);
	memcpy(c, h, n * sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		c[i].T = round(c[i].T);
		c[i].t_x = fmin(round(c[i].t_x), c[i].T);
	}
	btyd_triples_collapse(c, n, out);
	free(c);
}

static void assert_same_triples(const struct btyd_history *h, size_t n)
{
	struct btyd_triples got, want;

	btyd_triples_build(h, n, &got);
	reference_triples(h, n, &want);
	assert_int_equal(got.n, want.n);
	assert_memory_equal(got.x, want.x, want.n * sizeof(double));
	assert_memory_equal(got.t_x, want.t_x, want.n * sizeof(double));
	assert_memory_equal(got.T, want.T, want.n * sizeof(double));
	assert_memory_equal(got.weight, want.weight, want.n * sizeof(double));
	btyd_triples_release(&got);
	btyd_triples_release(&want);
}

/* n users of ages up to max_days days, x repeat days, t_x their last (in weeks, as the stages). */
static struct btyd_history *histories(size_t n, uint64_t max_days, uint64_t seed)
{
	struct btyd_history *h = malloc(n * sizeof(*h));
	uint64_t s = seed;

	assert_non_null(h);
	for (size_t i = 0; i < n; i++) {
		const uint64_t age = test_rng_next(&s) % max_days + 1;
		const uint64_t x = test_rng_next(&s) % 4 == 0 ? test_rng_next(&s) % 40 : 0;
		const uint64_t last = x > 0 ? test_rng_next(&s) % age : 0;

		h[i] = (struct btyd_history){ .x = (double)x, .t_x = (double)last / 7.0,
					      .T = (double)age / 7.0, .m_x = (double)(i % 13) };
	}
	return h;
}

static void test_whole_numbers_same_triples(void **state)
{
	struct btyd_history *h = histories(50000, 400, 7);
	struct btyd_triples t;

	(void)state;
	assert_same_triples(h, 50000);
	/* many users share a triple: the collapse has weights above 1 to get right */
	btyd_triples_build(h, 50000, &t);
	assert_true(t.n < 50000 / 4);
	btyd_triples_release(&t);
	/* a long history: T above 2^11 weeks needs the radix sort's upper digits */
	h[17].T = 5000.0;
	h[18].T = 4999.6;
	assert_same_triples(h, 50000);
	assert_same_triples(h, 1);
	assert_same_triples(h, 0);
	free(h);
}

static void test_other_values_same_triples(void **state)
{
	struct btyd_history *h = histories(5000, 200, 11);

	(void)state;
	h[3].x = 1.5; /* not a whole number of days: the histories are sorted instead */
	assert_same_triples(h, 5000);
	h[3].x = 2;
	h[4].T = 3e6; /* beyond the packed field */
	assert_same_triples(h, 5000);
	h[4].T = 10;
	h[5].x = -0.0; /* -0 must stay -0 */
	assert_same_triples(h, 5000);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_numbers_same_triples),
		cmocka_unit_test(test_other_values_same_triples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
