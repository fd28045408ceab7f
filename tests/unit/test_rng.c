/*
 * Tests of rng_jump (src/rng.c): a jump of k draws lands exactly where k
 * calls of rng_next do, from several seeds, for k below the polynomial's
 * degree and far above it (where a wrong characteristic polynomial would
 * show), and jumps add up.
 */
#include <string.h>

#include "testutil.h"
#include "ltv/rng.h"

static void test_jump_is_k_draws(void **state)
{
	static const uint64_t ks[] = { 0, 1, 2, 63, 64, 255, 256, 257, 1000, 65537, 1000003 };

	(void)state;
	for (uint64_t seed = 1; seed <= 3; seed++)
		for (size_t t = 0; t < sizeof(ks) / sizeof(*ks); t++) {
			struct rng stepped, jumped;
			struct rng_jump j;

			rng_seed(&stepped, seed, 5);
			jumped = stepped;
			for (uint64_t k = 0; k < ks[t]; k++)
				rng_next(&stepped);
			rng_jump_of(ks[t], &j);
			rng_jump(&jumped, &j);
			assert_memory_equal(jumped.s, stepped.s, sizeof(stepped.s));
			/* and the streams go on alike */
			assert_true(rng_next(&jumped) == rng_next(&stepped));
		}
}

/* Jumps compose: 3 jumps of 1,000 draws are one of 3,000; a jump never leaves a state as it was. */
static void test_jumps_add_up(void **state)
{
	struct rng a, b;
	struct rng_jump j1000, j3000;

	(void)state;
	rng_seed(&a, 42, 0);
	b = a;
	rng_jump_of(1000, &j1000);
	rng_jump_of(3000, &j3000);
	for (int k = 0; k < 3; k++)
		rng_jump(&a, &j1000);
	rng_jump(&b, &j3000);
	assert_memory_equal(a.s, b.s, sizeof(a.s));
	rng_seed(&b, 42, 0);
	rng_jump(&b, &j1000);
	rng_seed(&a, 42, 0);
	assert_true(memcmp(a.s, b.s, sizeof(a.s)) != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jump_is_k_draws),
		cmocka_unit_test(test_jumps_add_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
