/*
 * A small bounded FIFO of pointers between threads (src/bqueue.c): one
 * mutex and two condition variables, so that every hand-over in the tree
 * (the CSV read-ahead's buffers, ingest's users writer, ingest's parse
 * worker) is the same few lines, tested once.
 *
 * The usual shape is a pool: a "free" queue holding every buffer at the
 * start and a "full" queue; the producer pops a free buffer, fills it and
 * pushes it full; the consumer pops it, uses it and pushes it back free.
 * The consumer knows the producer has finished with every buffer when it
 * has popped them all back from the free queue.
 *
 * Use:
 *   struct bqueue q;
 *   bqueue_init(&q, 4);         // room for 4 items
 *   bqueue_push(&q, item);      // blocks while full; -1 once closed
 *   bqueue_pop(&q, &item);      // blocks while empty; 0 once closed and empty
 *   bqueue_close(&q);           // wakes every waiter: pushes fail, pops drain
 *   bqueue_release(&q);         // no thread may use it any more
 */
#ifndef LTV_BQUEUE_H
#define LTV_BQUEUE_H

#include <pthread.h>
#include <stddef.h>

struct bqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void **items; /* a ring of cap items from head */
	size_t cap, head, n;
	int closed;
};

/* An empty open queue with room for cap (>= 1) items. */
void bqueue_init(struct bqueue *q, size_t cap);

/* Frees the ring; items still queued are the caller's to free before. */
void bqueue_release(struct bqueue *q);

/* Appends item, waiting while the queue is full; 0, or -1 (item not queued) once closed. */
int bqueue_push(struct bqueue *q, void *item);

/*
 * Takes the oldest item into *out, waiting while the queue is empty; 1, or
 * 0 when the queue is closed and empty (what was queued before the close is
 * still handed out).
 */
int bqueue_pop(struct bqueue *q, void **out);

/* No more pushes: wakes every waiting thread. Idempotent. */
void bqueue_close(struct bqueue *q);

#endif
