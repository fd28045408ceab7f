#ifndef LTV_USERS_GATE_H
#define LTV_USERS_GATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How many rows of a table its reading threads have put in so far, for a
 * thread waiting on them (src/registry_read.c: the features stage's user-days
 * wait on the users). The n rows come in chunks of `chunk` rows, chunk j read
 * by reader j % readers (one or two readers), each reader's chunks in order.
 * A reader publishes how many of its chunks it has finished and how many rows
 * of its next one are in, after writing those rows: a waiter that sees the
 * count may read them. The rows ready are the chunks finished without a gap,
 * then the rows in of the first chunk not finished.
 *
 * Use:
 *   struct users_gate g;
 *   users_gate_init(&g, n, chunk, readers);
 *   reader k:  ... rows ...; users_gate_publish(&g, k, done, at, 0);  ... at its end, over = 1
 *   waiter:    ready = users_gate_wait(&g, row_count_needed);
 *   users_gate_release(&g);
 */
struct users_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n, chunk;
	int readers;
	size_t done[2], at[2];
	int over[2];  /* reader k ended (all its chunks, or short of them: an error, fewer rows) */
	size_t want;  /* the count the waiter sleeps for: no wake-up before */
};

/* n rows in chunks of chunk (>= 1) rows taken in turn by readers (1 or 2) threads. */
void users_gate_init(struct users_gate *g, size_t n, size_t chunk, int readers);
void users_gate_release(struct users_gate *g);

/*
 * Reader `reader` has finished `done` of its chunks and has `at` rows of the
 * next in (over: it reads no more, having read those). g NULL: nothing.
 */
void users_gate_publish(struct users_gate *g, int reader, size_t done, size_t at, int over);

/* The rows [0, return) a waiter may read now. */
size_t users_gate_ready(struct users_gate *g);

/*
 * 1 when no more rows will come: all n are in, or the reader of the first
 * chunk not finished has ended (short of it). Not the reader of the chunk
 * after a finished one whose end is not counted yet: that one may have read
 * all its chunks while the first reader still has one to count and more to
 * read (features then dropped user-days of users still to come: a
 * different frame, now and then, on a loaded machine).
 */
int users_gate_over(struct users_gate *g);

/*
 * Waits till `need` rows and `ahead` more are ready (at most n), or no more
 * will come; the rows ready then. Returns at once when `need` are ready.
 */
size_t users_gate_wait(struct users_gate *g, size_t need, size_t ahead);

#endif
