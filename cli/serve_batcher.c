/*
 * Single predictions served together (contract in include/ltv/serve_internal.h):
 * a leader/follower queue over the request threads. No thread is added and
 * no request waits for a timer: a batch is whatever queued while the
 * previous one ran.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ltv/serve_internal.h"

void serve_batcher_init(struct serve_batcher *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->tail = &b->head;
	b->max = max;
}

void serve_batcher_release(struct serve_batcher *b)
{
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
}

/* Predicts jobs[0..n) in groups of one model version (a swap may split a batch). */
static void predict_taken(struct serve *s, struct predict_job **jobs, size_t n)
{
	size_t start = 0;

	while (start < n) {
		size_t end = start + 1;

		while (end < n && jobs[end]->model == jobs[start]->model)
			end++;
		serve_predict_jobs(s, jobs + start, end - start);
		start = end;
	}
}

void serve_batcher_arriving(struct serve *s, int delta)
{
	atomic_fetch_add(&s->batcher.arriving, delta);
}

void serve_batcher_predict(struct serve *s, struct predict_job *job)
{
	struct serve_batcher *b = &s->batcher;
	struct predict_job **taken = xmalloc(b->max * sizeof(*taken));

	job->done = 0;
	job->next = NULL;
	pthread_mutex_lock(&b->lock);
	*b->tail = job;
	b->tail = &job->next;
	atomic_fetch_sub(&b->arriving, 1);
	pthread_cond_broadcast(&b->cond);
	while (!job->done) {
		size_t n = 0;

		if (b->leading) {
			pthread_cond_wait(&b->cond, &b->lock);
			continue;
		}
		b->leading = 1;
		if (atomic_load(&b->arriving) > 0) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += SERVE_BATCH_WAIT_US * 1000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (atomic_load(&b->arriving) > 0 &&
			       pthread_cond_timedwait(&b->cond, &b->lock, &until) != ETIMEDOUT)
				;
		}
		while (b->head && n < b->max) {
			taken[n++] = b->head;
			b->head = b->head->next;
		}
		if (!b->head)
			b->tail = &b->head;
		pthread_mutex_unlock(&b->lock);
		predict_taken(s, taken, n);
		pthread_mutex_lock(&b->lock);
		for (size_t i = 0; i < n; i++)
			taken[i]->done = 1;
		b->leading = 0;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	free(taken);
}
