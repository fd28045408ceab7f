/*
 * Unit tests for text_ahead.c: the text a caller puts together from
 * text_ahead_get (or, when it says 0, from the function itself) is the text of
 * making every item in place, whether the items come in order, from the
 * middle, with chunks skipped or out of order; the second thread does make
 * items when the caller is slow; without a thread every get says 0.
 */
#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

#include "ltv/text_ahead.h"

/* Each thread's count of the items it made. */
struct maker {
	size_t calls;
};

/* Item i's text: its number and a tail whose length varies with i. */
static void make_item(void *ctx, struct jbuf *b, size_t i)
{
	struct maker *mk = ctx;

	mk->calls++;
	jbuf_int(b, (long long)i);
	jbuf_add(b, ":", 1);
	for (size_t k = 0; k < i % 53; k++)
		jbuf_add(b, "abcdefg" + k % 7, 1);
	jbuf_add(b, ";", 1);
}

/* The items order[0..n_order) through t into got; slow: a pause per chunk. */
static void take_items(struct text_ahead *t, struct maker *mine, const size_t *order, size_t n_order,
		       int slow, struct jbuf *got)
{
	for (size_t k = 0; k < n_order; k++) {
		const char *p;
		size_t len;

		if (slow && order[k] % TEXT_AHEAD_CHUNK == 0)
			usleep(2000);
		if (text_ahead_get(t, order[k], &p, &len))
			jbuf_add(got, p, len);
		else
			make_item(mine, got, order[k]);
	}
}

/* Runs order through a text_ahead of n items from first; checks the text; the thread's calls. */
static size_t check_order(size_t n, size_t first, const size_t *order, size_t n_order, int threaded,
			  int slow)
{
	struct maker theirs = { 0 }, mine = { 0 }, plain = { 0 };
	struct text_ahead t;
	struct jbuf got, want;

	jbuf_init(&got);
	jbuf_init(&want);
	for (size_t k = 0; k < n_order; k++)
		make_item(&plain, &want, order[k]);
	text_ahead_start(&t, n, first, make_item, &theirs, &mine, threaded);
	take_items(&t, &mine, order, n_order, slow, &got);
	text_ahead_stop(&t);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	jbuf_release(&got);
	jbuf_release(&want);
	return theirs.calls;
}

static void test_in_order_same_text(void **state)
{
	const size_t n = 20 * TEXT_AHEAD_CHUNK + 17;
	size_t *order = malloc(n * sizeof(size_t));

	(void)state;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	check_order(n, 0, order, n, 1, 0);
	/* from the middle: the first scored row of a file whose older users come first */
	check_order(n, 5 * TEXT_AHEAD_CHUNK + 3, order + 5 * TEXT_AHEAD_CHUNK + 3,
		    n - 5 * TEXT_AHEAD_CHUNK - 3, 1, 0);
	free(order);
}

static void test_slow_caller_gets_text_made_ahead(void **state)
{
	const size_t n = 12 * TEXT_AHEAD_CHUNK;
	size_t *order = malloc(n * sizeof(size_t));

	(void)state;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	assert_true(check_order(n, 0, order, n, 1, 1) > 0);
	free(order);
}

static void test_skips_and_out_of_order(void **state)
{
	const size_t n = 30 * TEXT_AHEAD_CHUNK + 5;
	size_t *order = malloc(2 * n * sizeof(size_t));
	size_t n_order = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		/* chunks 3, 4 and 9 to 20 skipped; now and then an item from long before */
		const size_t k = i / TEXT_AHEAD_CHUNK;

		if (k == 3 || k == 4 || (k >= 9 && k <= 20))
			continue;
		order[n_order++] = i;
		if (i % 701 == 0)
			order[n_order++] = i / 3;
		if (i % 997 == 0)
			order[n_order++] = i; /* the same item twice */
	}
	check_order(n, 0, order, n_order, 1, 0);
	check_order(n, 0, order, n_order, 1, 1);
	free(order);
}

static void test_without_thread_every_get_says_make_it(void **state)
{
	const size_t n = 8 * TEXT_AHEAD_CHUNK;
	struct maker theirs = { 0 }, mine = { 0 };
	struct text_ahead t;
	const char *p;
	size_t len;

	(void)state;
	text_ahead_start(&t, n, 0, make_item, &theirs, &mine, 0);
	for (size_t i = 0; i < n; i += 97)
		assert_int_equal(text_ahead_get(&t, i, &p, &len), 0);
	text_ahead_stop(&t);
	/* a chunk or less to make: no thread either */
	text_ahead_start(&t, n, n - 10, make_item, &theirs, &mine, 1);
	assert_int_equal(text_ahead_get(&t, n - 5, &p, &len), 0);
	text_ahead_stop(&t);
	assert_int_equal(theirs.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_same_text),
		cmocka_unit_test(test_slow_caller_gets_text_made_ahead),
		cmocka_unit_test(test_skips_and_out_of_order),
		cmocka_unit_test(test_without_thread_every_get_says_make_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
