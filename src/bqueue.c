/*
 * Bounded FIFO of pointers between threads (include/ltv/bqueue.h). Waiters
 * are woken with signal, not broadcast: every push makes one item that one
 * popper can take, every pop one slot that one pusher can fill. The close
 * broadcasts, since then every waiter must return.
 */
#include <assert.h>

#include "ltv/bqueue.h"
#include "ltv/common.h"

void bqueue_init(struct bqueue *q, size_t cap)
{
	assert(cap >= 1);
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->items = xmalloc(cap * sizeof(*q->items));
	q->cap = cap;
	q->head = q->n = 0;
	q->closed = 0;
}

void bqueue_release(struct bqueue *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->items);
	q->items = NULL;
}

int bqueue_push(struct bqueue *q, void *item)
{
	int ret = -1;

	pthread_mutex_lock(&q->lock);
	while (q->n == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->lock);
	if (!q->closed) {
		q->items[(q->head + q->n++) % q->cap] = item;
		pthread_cond_signal(&q->not_empty);
		ret = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return ret;
}

int bqueue_pop(struct bqueue *q, void **out)
{
	int ret = 0;

	pthread_mutex_lock(&q->lock);
	while (q->n == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->n > 0) {
		*out = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
		pthread_cond_signal(&q->not_full);
		ret = 1;
	}
	pthread_mutex_unlock(&q->lock);
	return ret;
}

void bqueue_close(struct bqueue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}
