/*
 * Unit tests for strmap.c: keys short enough to live in their slot and
 * longer ones in the arena, at the boundary between the two, keys that are a
 * prefix of one another, duplicates refused, every key still found after
 * the table has grown many times, payloads kept with their keys, many
 * keys looked up at once, long keys whose kept hash bits collide, and a
 * reserved table that grows only past what was reserved.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ltv/strmap.h"

static void test_short_and_long_keys(void **state)
{
	/* 14 bytes is the longest key kept in its slot; 15 goes to the arena. */
	static const char *keys[] = { "", "a", "u00000254", "abcdefghijklm", "abcdefghijklmn",
				      "abcdefghijklmno", "abcdefghijklmnop",
				      "0b8f7c1e-4d2a-4c55-9a61-2f0e8d7b3c90" };
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	struct strmap m;
	int64_t v = 0;

	(void)state;
	strmap_init(&m);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(strmap_put(&m, keys[i], (int64_t)i * 10 - 3), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(strmap_get(&m, keys[i], &v), 1);
		assert_int_equal(v, (int64_t)i * 10 - 3);
		/* A second put of the same key is refused and keeps the first value. */
		assert_int_equal(strmap_put(&m, keys[i], 999), 1);
		assert_int_equal(strmap_get(&m, keys[i], &v), 1);
		assert_int_equal(v, (int64_t)i * 10 - 3);
	}
	assert_int_equal(m.n, n);
	/* Prefixes and extensions of stored keys are other keys. */
	assert_int_equal(strmap_get(&m, "u0000025", &v), 0);
	assert_int_equal(strmap_get(&m, "u000002545", &v), 0);
	assert_int_equal(strmap_get(&m, "abcdefghijklmnopq", &v), 0);
	assert_int_equal(strmap_get(&m, "0b8f7c1e-4d2a-4c55-9a61-2f0e8d7b3c9", &v), 0);
	strmap_release(&m);
}

/*
 * Keys of every length from 0 to 20 (slot and arena alike), at every offset
 * of a buffer, are found, and keys one byte off in any position, or one byte
 * shorter or longer, are not: the inline compare loads a key's bytes in
 * overlapping words whose split depends on its length.
 */
static void test_every_key_length(void **state)
{
	char stored[22], probe[32];
	struct strmap m;
	int64_t v = 0;

	(void)state;
	strmap_init(&m);
	for (size_t len = 0; len <= 20; len++) {
		for (size_t i = 0; i < len; i++)
			stored[i] = (char)('a' + (i * 7 + len) % 26);
		stored[len] = '\0';
		assert_int_equal(strmap_put(&m, stored, (int64_t)len), 0);
	}
	for (size_t len = 0; len <= 20; len++) {
		for (size_t at = 0; at + len < sizeof(probe); at++) {
			char *const key = probe + at;

			for (size_t i = 0; i < len; i++)
				key[i] = (char)('a' + (i * 7 + len) % 26);
			key[len] = '\0';
			assert_int_equal(strmap_get(&m, key, &v), 1);
			assert_int_equal(v, (int64_t)len);
			for (size_t i = 0; i < len; i++) {
				key[i] ^= 1;
				assert_int_equal(strmap_get(&m, key, &v), 0);
				key[i] ^= 1;
			}
		}
	}
	strmap_release(&m);
}

static void test_growth_keeps_every_key(void **state)
{
	const int n = 50000;
	struct strmap m;
	char key[64];
	int64_t v;

	(void)state;
	strmap_init(&m);
	for (int i = 0; i < n; i++) {
		/* Odd ids are long (arena), even ones short (inline). */
		if (i % 2)
			snprintf(key, sizeof(key), "campaign_with_a_long_name_%d", i);
		else
			snprintf(key, sizeof(key), "u%08d", i);
		assert_int_equal(strmap_put(&m, key, i), 0);
	}
	assert_int_equal(m.n, (size_t)n);
	assert_true(m.cap >= 2 * (size_t)n);
	for (int i = 0; i < n; i++) {
		if (i % 2)
			snprintf(key, sizeof(key), "campaign_with_a_long_name_%d", i);
		else
			snprintf(key, sizeof(key), "u%08d", i);
		v = -1;
		assert_int_equal(strmap_get(&m, key, &v), 1);
		assert_int_equal(v, i);
	}
	assert_int_equal(strmap_get(&m, "u00050000", &v), 0);
	assert_int_equal(strmap_get(&m, "campaign_with_a_long_name_50001", &v), 0);
	strmap_release(&m);
}

struct pay {
	int64_t a;
	double b;
	int64_t c, d;
};

static void sum_payload(int64_t value, void *payload, void *arg)
{
	const struct pay *p = payload;
	int64_t *sums = arg;

	sums[0] += value;
	sums[1] += p->a;
	sums[2] += 1;
}

static void test_payloads(void **state)
{
	const int n = 5000;
	struct strmap m;
	char key[64];
	void *p = NULL;
	int64_t v, sums[3] = { 0, 0, 0 };

	(void)state;
	strmap_init_payload(&m, sizeof(struct pay));
	/* Slot and payload fill one 64-byte line, aligned to it. */
	assert_int_equal(m.stride, 64);
	assert_int_equal((uintptr_t)m.slots % 64, 0);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), i % 3 ? "id%d" : "a_much_longer_user_id_%d", i);
		assert_int_equal(strmap_put_payload(&m, key, i + 1, &p), 0);
		/* A new key's payload starts zeroed. */
		assert_int_equal(((struct pay *)p)->a, 0);
		assert_true(((struct pay *)p)->b == 0.0);
		((struct pay *)p)->a = 7 * i;
		((struct pay *)p)->d = -i;
	}
	/* Payloads moved with their keys through every growth. */
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), i % 3 ? "id%d" : "a_much_longer_user_id_%d", i);
		assert_int_equal(strmap_get_payload(&m, key, &v, &p), 1);
		assert_int_equal(v, i + 1);
		assert_int_equal(((struct pay *)p)->a, 7 * i);
		assert_int_equal(((struct pay *)p)->d, -i);
		/* put of an existing key refuses it and points to its payload. */
		assert_int_equal(strmap_put_payload(&m, key, -5, &p), 1);
		assert_int_equal(((struct pay *)p)->a, 7 * i);
	}
	assert_int_equal(strmap_get_payload(&m, "id0", &v, &p), 0);
	strmap_each_payload(&m, sum_payload, sums);
	assert_int_equal(sums[0], (int64_t)n * (n + 1) / 2);
	assert_int_equal(sums[1], 7 * ((int64_t)n * (n - 1) / 2));
	assert_int_equal(sums[2], n);
	strmap_release(&m);
}

/*
 * strmap_get_many gives what one strmap_get_payload per key gives: present
 * keys short and long, absent ones, NULL keys, and a count that is not a
 * multiple of its 32-key groups; strmap_touch_many changes nothing.
 */
static void test_get_many(void **state)
{
	enum { N = 1000, ASK = 2 * N + 3 };
	struct strmap m;
	char keys[ASK][48];
	const char *ask[ASK];
	int64_t values[ASK];
	void *payloads[ASK];
	size_t present = 0;

	(void)state;
	strmap_init_payload(&m, 16);
	for (int i = 0; i < N; i++) {
		void *p;

		snprintf(keys[i], sizeof(keys[i]), i % 3 ? "u%08d" : "a-much-longer-user-id-%d", i);
		assert_int_equal(strmap_put_payload(&m, keys[i], (int64_t)i * 7 - 500, &p), 0);
		*(int *)p = i;
	}
	for (int i = 0; i < ASK; i++) {
		/* Keys of the map, others like them, and NULL (a row without the field). */
		if (i % 5 == 4) {
			ask[i] = NULL;
			continue;
		}
		snprintf(keys[i], sizeof(keys[i]), i % 3 ? "u%08d" : "a-much-longer-user-id-%d", i % (N + 40));
		ask[i] = keys[i];
	}
	strmap_touch_many(&m, ask, ASK);
	assert_int_equal(m.n, N);
	for (int i = 0; i < ASK; i++)
		values[i] = 12345;
	present = strmap_get_many(&m, ask, ASK, values, payloads);
	for (int i = 0; i < ASK; i++) {
		int64_t v;
		void *p = NULL;

		if (ask[i] && strmap_get_payload(&m, ask[i], &v, &p)) {
			assert_int_equal(values[i], v);
			assert_ptr_equal(payloads[i], p);
			assert_int_equal(*(int *)payloads[i], (int)((v + 500) / 7));
			present--;
		} else {
			assert_true(values[i] == STRMAP_ABSENT);
			assert_null(payloads[i]);
		}
	}
	assert_int_equal(present, 0);
	/* Without payloads asked for, the values alone. */
	assert_true(strmap_get_many(&m, ask, 31, values, NULL) > 0);
	assert_int_equal(values[1], 1 * 7 - 500);
	strmap_release(&m);
}

static int cmp_low32(const void *a, const void *b)
{
	const uint64_t x = *(const uint64_t *)a & 0xffffffffu, y = *(const uint64_t *)b & 0xffffffffu;

	return x < y ? -1 : x > y;
}

/*
 * Two long (arena) keys whose hashes agree in the 32 bits a slot keeps of
 * them are still told apart by their text, and short keys, which keep no
 * hash at all, by theirs: found in 200,000 keys (a pair is all but certain
 * at that count), the pair put into a small table among short keys that
 * probe past one another.
 */
static void test_hash_bits_collide(void **state)
{
	enum { N = 200000 };
	uint64_t *h = malloc(N * sizeof(*h));
	char a[48], b[48], key[16];
	struct strmap m;
	int64_t v;
	int found = 0;

	(void)state;
	assert_non_null(h);
	for (uint64_t i = 0; i < N; i++) {
		snprintf(a, sizeof(a), "a-long-colliding-user-id-%llu", (unsigned long long)i);
		/* low 32 bits of the hash, and the key's number above them */
		h[i] = (XXH3_64bits(a, strlen(a)) & 0xffffffffu) | i << 32;
	}
	qsort(h, N, sizeof(*h), cmp_low32);
	for (size_t i = 1; i < N && !found; i++)
		if ((h[i] & 0xffffffffu) == (h[i - 1] & 0xffffffffu)) {
			snprintf(a, sizeof(a), "a-long-colliding-user-id-%llu", (unsigned long long)(h[i - 1] >> 32));
			snprintf(b, sizeof(b), "a-long-colliding-user-id-%llu", (unsigned long long)(h[i] >> 32));
			found = 1;
		}
	free(h);
	assert_true(found);
	strmap_init(&m);
	assert_int_equal(m.stride, 24); /* the 24-byte slot the table's memory was cut to */
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "u%08d", i);
		assert_int_equal(strmap_put(&m, key, i), 0);
	}
	assert_int_equal(strmap_put(&m, a, 100), 0);
	assert_int_equal(strmap_get(&m, b, &v), 0);
	assert_int_equal(strmap_put(&m, b, 200), 0);
	assert_int_equal(strmap_put(&m, a, 300), 1);
	assert_int_equal(strmap_get(&m, a, &v), 1);
	assert_int_equal(v, 100);
	assert_int_equal(strmap_get(&m, b, &v), 1);
	assert_int_equal(v, 200);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "u%08d", i);
		assert_int_equal(strmap_get(&m, key, &v), 1);
		assert_int_equal(v, i);
	}
	assert_int_equal(strmap_get(&m, "u00000005", &v), 0);
	strmap_release(&m);
}

/*
 * strmap_reserve sizes the table once: the keys reserved for go in without
 * another doubling (the rehash now recomputes each key's hash from its text),
 * and one more than reserved doubles it with every key still found.
 */
static void test_reserve_then_grow(void **state)
{
	enum { N = 3000 };
	struct strmap m;
	char key[48];
	size_t cap;
	int64_t v;

	(void)state;
	strmap_init(&m);
	strmap_put(&m, "before-the-reserve-and-long", -7);
	strmap_reserve(&m, N);
	cap = m.cap;
	for (int i = 1; i < N; i++) {
		snprintf(key, sizeof(key), i % 4 ? "u%08d" : "long-user-id-number-%d", i);
		assert_int_equal(strmap_put(&m, key, i), 0);
	}
	assert_int_equal(m.cap, cap);
	for (int i = N; m.cap == cap; i++) {
		snprintf(key, sizeof(key), i % 4 ? "u%08d" : "long-user-id-number-%d", i);
		assert_int_equal(strmap_put(&m, key, i), 0);
	}
	assert_int_equal(m.cap, 2 * cap);
	for (int i = 1; i < N; i++) {
		snprintf(key, sizeof(key), i % 4 ? "u%08d" : "long-user-id-number-%d", i);
		assert_int_equal(strmap_get(&m, key, &v), 1);
		assert_int_equal(v, i);
	}
	assert_int_equal(strmap_get(&m, "before-the-reserve-and-long", &v), 1);
	assert_int_equal(v, -7);
	strmap_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_and_long_keys),
		cmocka_unit_test(test_every_key_length),
		cmocka_unit_test(test_growth_keeps_every_key),
		cmocka_unit_test(test_payloads),
		cmocka_unit_test(test_get_many),
		cmocka_unit_test(test_hash_bits_collide),
		cmocka_unit_test(test_reserve_then_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
