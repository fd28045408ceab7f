/*
 * Unit tests for users_gate.c: the rows ready are the chunks in without a
 * gap, with one reader or two taking chunks in turn; a reader that ends
 * short of its chunks ends the wait; and a reader that has read all its
 * chunks does not end the wait while the other, on the chunk before, has
 * all that chunk's rows in but not yet counted it finished (the window in
 * which features dropped user-days at load, session 17). No sleeps: the
 * thread publishing waits till the waiter is asleep on the gate.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "ltv/users_gate.h"

/* 10 rows in chunks of 4 taken in turn: chunk 0 (rows 0-3) and 2 (8-9) reader 0's, 1 (4-7) reader 1's. */
static void test_ready_is_the_chunks_without_a_gap(void **state)
{
	struct users_gate g;

	(void)state;
	users_gate_init(&g, 10, 4, 2);
	assert_int_equal(users_gate_ready(&g), 0);
	users_gate_publish(&g, 1, 1, 0, 1); /* reader 1: chunk 1 done, and all of its chunks */
	assert_int_equal(users_gate_ready(&g), 0);
	assert_int_equal(users_gate_over(&g), 0);
	users_gate_publish(&g, 0, 0, 3, 0);
	assert_int_equal(users_gate_ready(&g), 3);
	users_gate_publish(&g, 0, 1, 0, 0); /* chunk 0 done: chunks 0 and 1 in */
	assert_int_equal(users_gate_ready(&g), 8);
	assert_int_equal(users_gate_over(&g), 0);
	users_gate_publish(&g, 0, 1, 2, 0); /* the last chunk's 2 rows */
	assert_int_equal(users_gate_ready(&g), 10);
	assert_int_equal(users_gate_over(&g), 1);
	assert_int_equal(users_gate_wait(&g, 10, 100), 10);
	users_gate_release(&g);
}

static void test_one_reader(void **state)
{
	struct users_gate g;

	(void)state;
	users_gate_init(&g, 5, 5, 1);
	users_gate_publish(&g, 0, 0, 4, 0);
	assert_int_equal(users_gate_ready(&g), 4);
	assert_int_equal(users_gate_over(&g), 0);
	assert_int_equal(users_gate_wait(&g, 3, 0), 4); /* there already: no wait */
	users_gate_publish(&g, 0, 1, 0, 1);
	assert_int_equal(users_gate_ready(&g), 5);
	assert_int_equal(users_gate_over(&g), 1);
	users_gate_release(&g);
}

/* A reader that ends short of its chunk (an error, fewer rows than counted): no more rows come. */
static void test_reader_ending_short_ends_the_wait(void **state)
{
	struct users_gate g;

	(void)state;
	users_gate_init(&g, 16, 4, 2);
	users_gate_publish(&g, 1, 2, 0, 1);
	users_gate_publish(&g, 0, 0, 2, 1);
	assert_int_equal(users_gate_ready(&g), 2);
	assert_int_equal(users_gate_over(&g), 1);
	assert_int_equal(users_gate_wait(&g, 3, 0), 2);
	users_gate_release(&g);
	/* an empty table: nothing to wait for */
	users_gate_init(&g, 0, 1, 1);
	assert_int_equal(users_gate_over(&g), 1);
	assert_int_equal(users_gate_wait(&g, 1, 0), 0);
	users_gate_release(&g);
}

/* Reader 0 finishing chunks 0 and 2 of 16 rows in chunks of 4, once the waiter sleeps. */
struct late_reader {
	struct users_gate *g;
	atomic_int waiter_back;
};

static void *late_reader_main(void *arg)
{
	struct late_reader *r = arg;

	for (;;) { /* the waiter sets want, then sleeps on the condition, under the mutex */
		int asleep;

		pthread_mutex_lock(&r->g->mu);
		asleep = r->g->want != SIZE_MAX;
		pthread_mutex_unlock(&r->g->mu);
		if (asleep || atomic_load(&r->waiter_back))
			break;
		sched_yield();
	}
	users_gate_publish(r->g, 0, 1, 0, 0);
	users_gate_publish(r->g, 0, 1, 4, 0);
	users_gate_publish(r->g, 0, 2, 0, 1);
	return NULL;
}

/*
 * Reader 1 has read chunks 1 and 3, all of its own, and ended; reader 0
 * has published all 4 rows of chunk 0 and not yet counted it done (it does
 * next, then reads chunk 2). The gate used to read "no more rows" there
 * (the ended reader was chunk 1's, the one after the 4 rows in), so the
 * waiter for row 9 returned with 4 and features dropped the user-days of
 * the users of chunks 2 and 3.
 */
static void test_ended_next_reader_does_not_end_the_wait(void **state)
{
	struct users_gate g;
	struct late_reader r = { &g, 0 };
	pthread_t t;
	size_t ready;

	(void)state;
	users_gate_init(&g, 16, 4, 2);
	users_gate_publish(&g, 1, 2, 0, 1);
	users_gate_publish(&g, 0, 0, 4, 0);
	assert_int_equal(users_gate_over(&g), 0);
	assert_int_equal(users_gate_ready(&g), 8); /* chunk 0's rows all in, chunk 1 done */
	assert_int_equal(pthread_create(&t, NULL, late_reader_main, &r), 0);
	ready = users_gate_wait(&g, 9, 0);
	atomic_store(&r.waiter_back, 1);
	pthread_join(t, NULL);
	assert_true(ready >= 12);
	assert_int_equal(users_gate_ready(&g), 16);
	users_gate_release(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_is_the_chunks_without_a_gap),
		cmocka_unit_test(test_one_reader),
		cmocka_unit_test(test_reader_ending_short_ends_the_wait),
		cmocka_unit_test(test_ended_next_reader_does_not_end_the_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
