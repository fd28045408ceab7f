/*
 * The shard of a user (include/ltv/shard.h): XXH3_64bits of the user_id's
 * bytes, seed 0, mod N; of a scored cohort, the same of "app" 0x1f "campaign". It must never change between versions, or shard
 * registries built by two versions would disagree on who is where: the
 * values below are fixed (the first is xxHash's published vector for the
 * empty input).
 */
#include "testutil.h"

#include "ltv/shard.h"

static void test_hash_is_xxh3_64_of_the_id(void **state)
{
	(void)state;
	assert_true(shard_hash("") == 0x2d06800538d394c2ULL);
	assert_true(shard_hash("u00000001") == 0x258b6fe50d6a777cULL);
	assert_true(shard_hash("u00000002") == 0xdd360a71ec0140ddULL);
	assert_true(shard_hash("customer-42") == 0xf40925ac7f7b5e61ULL);
	assert_int_equal(shard_of("u00000001", 4), 0);
	assert_int_equal(shard_of("u00000002", 4), 1);
	assert_int_equal(shard_of("customer-42", 4), 1);
	assert_int_equal(shard_of("anything", 1), 0);
}

/* Scoring shards by cohort: the same hash of "app" 0x1f "campaign". */
static void test_cohort_shard(void **state)
{
	struct shard_spec s = { 3, 4 };

	(void)state;
	/* XXH3_64bits("puzzle_blast\x1f" "fb_us_ios_broad_v2") = 0xbdea30230e477243 */
	assert_int_equal(shard_of_cohort("puzzle_blast", "fb_us_ios_broad_v2", 4), 0xbdea30230e477243ULL % 4);
	assert_int_equal(shard_of_cohort("puzzle_blast", "fb_us_ios_broad_v2", 4), 3);
	assert_true(shard_keeps_cohort(&s, "puzzle_blast", "fb_us_ios_broad_v2"));
	/* the separator keeps ("ab", "c") and ("a", "bc") apart */
	assert_true(shard_of_cohort("ab", "c", 1 << 16) != shard_of_cohort("a", "bc", 1 << 16));
}

/* Every user is in exactly one shard, and the shards are about even. */
static void test_every_user_in_one_shard_evenly(void **state)
{
	enum { USERS = 20000, N = 4 };
	int count[N] = { 0 };

	(void)state;
	for (int u = 0; u < USERS; u++) {
		char id[32];
		int in = 0;

		snprintf(id, sizeof(id), "u%08d", u);
		for (int i = 0; i < N; i++) {
			struct shard_spec s = { i, N };

			if (shard_keeps(&s, id)) {
				in++;
				count[i]++;
			}
		}
		assert_int_equal(in, 1);
	}
	for (int i = 0; i < N; i++) /* 5000 each; 4 standard deviations is about 245 */
		assert_in_range(count[i], 5000 - 300, 5000 + 300);
}

static void test_parse(void **state)
{
	struct shard_spec s = { 0 };
	struct ltv_err err = { 0 };
	char buf[32];

	(void)state;
	assert_int_equal(shard_parse("2/4", &s, &err), 0);
	assert_int_equal(s.index, 2);
	assert_int_equal(s.count, 4);
	assert_string_equal(shard_format(&s, buf, sizeof(buf)), "2/4");
	assert_int_equal(shard_parse("0/1", &s, &err), 0);
	static const char *const bad[] = { "4/4", "-1/4", "1/0", "1", "/4", "1/", "a/4", "1/4x",
					   "0/65537", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(shard_parse(bad[i], &s, &err), LTV_EUSAGE);
		assert_non_null(strstr(err.msg, "--shard"));
	}
	s = (struct shard_spec){ 0, 0 };
	assert_true(shard_keeps(&s, "whoever"));
	assert_string_equal(shard_format(&s, buf, sizeof(buf)), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_xxh3_64_of_the_id),
		cmocka_unit_test(test_every_user_in_one_shard_evenly),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_cohort_shard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
