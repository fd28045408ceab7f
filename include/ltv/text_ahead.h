/*
 * Text of items 0..n-1 formatted ahead on a second thread (src/text_ahead.c),
 * for a caller that writes the items mostly in index order between work of
 * its own: score's users files, whose prediction fields (numbers printed
 * with numfmt) were 60% of the writing thread's time after the prediction,
 * on one core while the other had nothing to do.
 *
 * Items are formatted in chunks of consecutive indices into a few slots; the
 * thread stays at most TEXT_AHEAD_SLOTS chunks ahead of the caller. A caller
 * waiting for a chunk formats the next unclaimed one into a slot itself, so
 * neither thread waits while there is text to make. The text of an item is
 * whatever fn appends for it, the same bytes on either thread: fn gets the
 * context of the thread that calls it (ctx for the second thread, the
 * caller's own for the caller), so a cache in it needs no lock.
 *
 * Use:
 *   struct text_ahead t;
 *   text_ahead_start(&t, n, first, fn, thread_ctx, caller_ctx, threaded);
 *   for each item i to write:
 *           if (text_ahead_get(&t, i, &p, &len)) jbuf_add(b, p, len);
 *           else fn(caller_ctx, b, i);      // not made ahead: make it here
 *   text_ahead_stop(&t);
 *
 * text_ahead_get returns 0 (make it yourself) for an item before the chunk
 * the caller last asked for (a file out of index order), for any item when
 * no thread runs, and for a chunk the thread had not claimed (the caller then
 * owns that chunk and makes its items inline). The text it gives stays valid
 * until the next call.
 */
#ifndef LTV_TEXT_AHEAD_H
#define LTV_TEXT_AHEAD_H

#include <pthread.h>
#include <stddef.h>

#include "ltv/jbuf.h"

#define TEXT_AHEAD_SLOTS 4
#define TEXT_AHEAD_CHUNK ((size_t)1024) /* items per chunk: a hand-over per some 200 KB */

typedef void (*text_ahead_fn)(void *ctx, struct jbuf *b, size_t i);

struct text_ahead_slot {
	struct jbuf text;
	size_t *end;   /* end offset of each of the chunk's items in text */
	size_t chunk;  /* the chunk the slot holds, once made; SIZE_MAX for none */
};

struct text_ahead {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int threaded;      /* the thread runs: gets may give text */
	int set_up;        /* the lock and slots exist (text_ahead_stop frees them) */
	size_t n, n_chunks;
	text_ahead_fn fn;
	void *thread_ctx, *caller_ctx;
	size_t next_claim; /* the first chunk nobody has claimed (under lock) */
	size_t reading;    /* the chunk the caller reads; claims stay below reading + SLOTS */
	int stop;
	struct text_ahead_slot slot[TEXT_AHEAD_SLOTS];
	/* the caller's side */
	size_t cur;        /* the chunk asked for last */
	int cur_mode;      /* 0 none yet, 1 in a slot, 2 the caller's own (inline) */
};

/*
 * Starts making the text of items first.. (of n) on a thread when threaded
 * and there is more than a chunk of them; else every get returns 0.
 */
void text_ahead_start(struct text_ahead *t, size_t n, size_t first, text_ahead_fn fn,
		      void *thread_ctx, void *caller_ctx, int threaded);

/* Item i's text made ahead (1, *p and *len), or 0: make it yourself. */
int text_ahead_get(struct text_ahead *t, size_t i, const char **p, size_t *len);

/* Stops the thread (at the end of its chunk) and frees the slots. */
void text_ahead_stop(struct text_ahead *t);

#endif
