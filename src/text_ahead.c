/*
 * Items' text made ahead on a second thread (contract in
 * include/ltv/text_ahead.h). Chunk k lives in slot k % TEXT_AHEAD_SLOTS.
 * Claims are taken in order and only below reading + SLOTS, so a slot being
 * filled is never the one the caller reads: the caller reads chunk
 * `reading` only once it is made, and never goes back to an earlier chunk.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ltv/common.h"
#include "ltv/text_ahead.h"

/* Fills chunk k's slot with its items' text; called without the lock. */
static void fill_chunk(struct text_ahead *t, size_t k, void *ctx)
{
	struct text_ahead_slot *s = &t->slot[k % TEXT_AHEAD_SLOTS];
	const size_t from = k * TEXT_AHEAD_CHUNK;
	const size_t to = from + TEXT_AHEAD_CHUNK < t->n ? from + TEXT_AHEAD_CHUNK : t->n;

	s->text.len = 0;
	for (size_t i = from; i < to; i++) {
		t->fn(ctx, &s->text, i);
		s->end[i - from] = s->text.len;
	}
}

/* Under the lock: a chunk that may be claimed now, or SIZE_MAX. */
static size_t claimable(const struct text_ahead *t)
{
	if (t->stop || t->next_claim >= t->n_chunks ||
	    t->next_claim >= t->reading + TEXT_AHEAD_SLOTS)
		return SIZE_MAX;
	return t->next_claim;
}

/* Under the lock: claims chunk k, fills it unlocked, marks it made. */
static void make_chunk(struct text_ahead *t, size_t k, void *ctx)
{
	t->next_claim = k + 1;
	pthread_mutex_unlock(&t->lock);
	fill_chunk(t, k, ctx);
	pthread_mutex_lock(&t->lock);
	t->slot[k % TEXT_AHEAD_SLOTS].chunk = k;
	pthread_cond_broadcast(&t->cond);
}

static void *ahead_main(void *arg)
{
	struct text_ahead *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop && t->next_claim < t->n_chunks) {
		const size_t k = claimable(t);

		if (k == SIZE_MAX)
			pthread_cond_wait(&t->cond, &t->lock);
		else
			make_chunk(t, k, t->thread_ctx);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void text_ahead_start(struct text_ahead *t, size_t n, size_t first, text_ahead_fn fn,
		      void *thread_ctx, void *caller_ctx, int threaded)
{
	t->n = n;
	t->n_chunks = (n + TEXT_AHEAD_CHUNK - 1) / TEXT_AHEAD_CHUNK;
	t->fn = fn;
	t->thread_ctx = thread_ctx;
	t->caller_ctx = caller_ctx;
	t->next_claim = t->reading = first / TEXT_AHEAD_CHUNK;
	t->stop = 0;
	t->cur = 0;
	t->cur_mode = 0;
	t->threaded = t->set_up = 0;
	/* a chunk or less left: the caller makes it as fast as it would hand it over */
	if (!threaded || t->n_chunks <= t->next_claim + 1)
		return;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	for (size_t s = 0; s < TEXT_AHEAD_SLOTS; s++) {
		jbuf_init(&t->slot[s].text);
		t->slot[s].end = xcalloc(TEXT_AHEAD_CHUNK, sizeof(size_t));
		t->slot[s].chunk = SIZE_MAX;
	}
	t->set_up = 1;
	t->threaded = pthread_create(&t->thread, NULL, ahead_main, t) == 0;
	if (!t->threaded)
		text_ahead_stop(t);
}

/*
 * The caller moves on to chunk k (> the previous one): it reads k's slot once
 * made, making the next claimable chunk itself while it waits, or owns k
 * when nobody had claimed it.
 */
static void move_to(struct text_ahead *t, size_t k)
{
	pthread_mutex_lock(&t->lock);
	t->reading = k;
	pthread_cond_broadcast(&t->cond); /* room for the thread's claims */
	if (k >= t->next_claim) {
		t->next_claim = k + 1;
		t->cur_mode = 2;
	} else {
		while (t->slot[k % TEXT_AHEAD_SLOTS].chunk != k) {
			const size_t j = claimable(t);

			if (j == SIZE_MAX)
				pthread_cond_wait(&t->cond, &t->lock);
			else
				make_chunk(t, j, t->caller_ctx);
		}
		t->cur_mode = 1;
	}
	t->cur = k;
	pthread_mutex_unlock(&t->lock);
}

int text_ahead_get(struct text_ahead *t, size_t i, const char **p, size_t *len)
{
	const size_t k = i / TEXT_AHEAD_CHUNK;
	const struct text_ahead_slot *s;
	size_t j, from;

	if (!t->threaded || i >= t->n || (t->cur_mode && k < t->cur))
		return 0;
	if (!t->cur_mode || k != t->cur)
		move_to(t, k);
	if (t->cur_mode != 1)
		return 0;
	s = &t->slot[k % TEXT_AHEAD_SLOTS];
	j = i - k * TEXT_AHEAD_CHUNK;
	from = j ? s->end[j - 1] : 0;
	*p = s->text.p + from;
	*len = s->end[j] - from;
	return 1;
}

void text_ahead_stop(struct text_ahead *t)
{
	if (t->threaded) {
		pthread_mutex_lock(&t->lock);
		t->stop = 1;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
		t->threaded = 0;
	}
	if (!t->set_up)
		return;
	t->set_up = 0;
	for (size_t s = 0; s < TEXT_AHEAD_SLOTS; s++) {
		jbuf_release(&t->slot[s].text);
		free(t->slot[s].end);
		t->slot[s].end = NULL;
	}
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}
