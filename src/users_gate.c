/*
 * The count of rows in that threads reading a table in chunks publish and a
 * waiter reads (include/ltv/users_gate.h): the features stage's user-days
 * wait on the users read by two threads (src/registry_read.c).
 */
#include <assert.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/users_gate.h"

void users_gate_init(struct users_gate *g, size_t n, size_t chunk, int readers)
{
	assert(chunk >= 1 && readers >= 1 && readers <= 2);
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->n = n;
	g->chunk = chunk;
	g->readers = readers;
	g->want = SIZE_MAX;
}

void users_gate_release(struct users_gate *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

/* The rows of chunk j: chunk, or what the last one has left. */
static size_t chunk_rows(const struct users_gate *g, size_t j)
{
	return g->n - j * g->chunk < g->chunk ? g->n - j * g->chunk : g->chunk;
}

/* Rows of chunk j in (all of them once its reader counts it finished). */
static size_t rows_in(const struct users_gate *g, size_t j)
{
	const int k = (int)(j % (size_t)g->readers);
	const size_t turn = j / (size_t)g->readers;

	return g->done[k] > turn ? chunk_rows(g, j) : g->done[k] == turn ? g->at[k] : 0;
}

/*
 * The first chunk with rows still to come (under the mutex); n / chunk
 * rounded up when none. A chunk whose rows are all in counts as finished
 * before its reader says so: its reader publishes at == its rows first,
 * then done, and in between the next chunk's reader may have ended.
 */
static size_t first_open(const struct users_gate *g)
{
	size_t j = 0;

	while (j * g->chunk < g->n && rows_in(g, j) == chunk_rows(g, j))
		j++;
	return j;
}

static size_t ready_locked(const struct users_gate *g)
{
	const size_t j = first_open(g);

	return j * g->chunk >= g->n ? g->n : j * g->chunk + rows_in(g, j);
}

/* The over flag read is the first open chunk's reader's, never the one of the chunk after. */
static int over_locked(const struct users_gate *g)
{
	const size_t j = first_open(g);

	return j * g->chunk >= g->n || g->over[j % (size_t)g->readers];
}

void users_gate_publish(struct users_gate *g, int reader, size_t done, size_t at, int over)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->done[reader] = done;
	g->at[reader] = at;
	g->over[reader] |= over;
	if (over_locked(g) || ready_locked(g) >= g->want)
		pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

size_t users_gate_ready(struct users_gate *g)
{
	size_t ready;

	pthread_mutex_lock(&g->mu);
	ready = ready_locked(g);
	pthread_mutex_unlock(&g->mu);
	return ready;
}

int users_gate_over(struct users_gate *g)
{
	int over;

	pthread_mutex_lock(&g->mu);
	over = over_locked(g);
	pthread_mutex_unlock(&g->mu);
	return over;
}

size_t users_gate_wait(struct users_gate *g, size_t need, size_t ahead)
{
	size_t ready;

	pthread_mutex_lock(&g->mu);
	if (ready_locked(g) < need && !over_locked(g)) {
		g->want = need + ahead;
		while (ready_locked(g) < g->want && !over_locked(g))
			pthread_cond_wait(&g->cv, &g->mu);
	}
	ready = ready_locked(g);
	pthread_mutex_unlock(&g->mu);
	return ready;
}
