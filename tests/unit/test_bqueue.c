/*
 * Unit tests for bqueue.c: items come out in the order they went in, also
 * through a queue of one slot between two threads (so both sides wait on
 * each other many times); a closed queue still hands out what it holds,
 * then says it is empty, and refuses pushes; a thread waiting on an empty
 * queue is woken by the close. No sleeps: every wait is on the queue.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>

#include "ltv/bqueue.h"

#define N_ITEMS 20000

static void test_fifo_one_thread(void **state)
{
	struct bqueue q;
	void *out = NULL;

	(void)state;
	bqueue_init(&q, 3);
	for (intptr_t i = 1; i <= 3; i++)
		assert_int_equal(bqueue_push(&q, (void *)i), 0);
	/* The ring wraps: pop one, push one, then all come out in order. */
	assert_int_equal(bqueue_pop(&q, &out), 1);
	assert_int_equal((intptr_t)out, 1);
	assert_int_equal(bqueue_push(&q, (void *)4), 0);
	for (intptr_t i = 2; i <= 4; i++) {
		assert_int_equal(bqueue_pop(&q, &out), 1);
		assert_int_equal((intptr_t)out, i);
	}
	bqueue_release(&q);
}

static void *producer(void *arg)
{
	struct bqueue *q = arg;

	for (intptr_t i = 1; i <= N_ITEMS; i++)
		if (bqueue_push(q, (void *)i) < 0)
			break;
	bqueue_close(q);
	return NULL;
}

static void test_order_between_threads(void **state)
{
	struct bqueue q;
	pthread_t t;
	void *out;
	intptr_t expect = 1;

	(void)state;
	bqueue_init(&q, 1);
	assert_int_equal(pthread_create(&t, NULL, producer, &q), 0);
	while (bqueue_pop(&q, &out)) {
		assert_int_equal((intptr_t)out, expect);
		expect++;
	}
	pthread_join(t, NULL);
	assert_int_equal(expect, N_ITEMS + 1);
	bqueue_release(&q);
}

static void test_close_drains_then_refuses(void **state)
{
	struct bqueue q;
	void *out = NULL;

	(void)state;
	bqueue_init(&q, 4);
	assert_int_equal(bqueue_push(&q, (void *)7), 0);
	assert_int_equal(bqueue_push(&q, (void *)8), 0);
	bqueue_close(&q);
	bqueue_close(&q); /* idempotent */
	assert_int_equal(bqueue_push(&q, (void *)9), -1);
	assert_int_equal(bqueue_pop(&q, &out), 1);
	assert_int_equal((intptr_t)out, 7);
	assert_int_equal(bqueue_pop(&q, &out), 1);
	assert_int_equal((intptr_t)out, 8);
	out = NULL;
	assert_int_equal(bqueue_pop(&q, &out), 0);
	assert_null(out);
	bqueue_release(&q);
}

static void *popper(void *arg)
{
	struct bqueue *q = arg;
	void *out;

	return (void *)(intptr_t)bqueue_pop(q, &out);
}

static void test_close_wakes_waiter(void **state)
{
	struct bqueue q;
	pthread_t t;
	void *ret = (void *)1;

	(void)state;
	bqueue_init(&q, 1);
	assert_int_equal(pthread_create(&t, NULL, popper, &q), 0);
	/* Whether the thread waits already or only pops later, it must return 0. */
	bqueue_close(&q);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, 0);
	bqueue_release(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_one_thread),
		cmocka_unit_test(test_order_between_threads),
		cmocka_unit_test(test_close_drains_then_refuses),
		cmocka_unit_test(test_close_wakes_waiter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
