/*
 * Independent tasks inside one stage (contract in include/ltv/stage.h).
 *
 * Why: hurdle is most of training, and its horizons are independent fits.
 * One XGBoost fit on two threads ran 1.5x faster than on one on the 2-core
 * machine, two fits side by side on one thread each close to 2x, so a stage
 * gets more from its cores by running its tasks side by side, each with its
 * share of the threads, than one after another with all of them.
 *
 * How many run at once follows stage_threads(), which grows as neighbouring
 * stages finish; a worker waiting for a core re-asks every WAIT_POLL_MS
 * (a neighbour finishing does not signal this pool).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/progress.h"
#include "ltv/stage.h"

#define MAX_TASK_WORKERS 32
#define WAIT_POLL_MS 50

struct task_pool {
	pthread_mutex_t lock;
	pthread_cond_t changed;     /* a task finished */
	struct stage_ctx *ctx;      /* stage_threads is called with lock held only */
	stage_task_fn fn;
	void *arg;
	struct stage_task *tasks;
	int *rets;
	size_t n;
	size_t next;                /* the next task to start */
	size_t running;
	int failed;
	const char *log_stage;      /* the stage's log name, set on each worker */
	size_t done;                /* tasks finished: the stage's progress */
};

/*
 * Under run.memory_mb, does one more task fit beside the running ones? Each
 * task holds its own training matrices (hurdle: about 100 MB a horizon at
 * 1,000,000 users), so side by side they add up; one after another they
 * take the cores in turn and the peak is one task's.
 */
static int memory_fits(const struct task_pool *p)
{
	const size_t limit = (size_t)p->ctx->cfg->run.memory_mb * 1048576;

	return limit == 0 || current_rss_bytes() + p->ctx->task_bytes <= limit;
}

/* With the lock held: may one more task start now? */
static int may_start(struct task_pool *p)
{
	return p->running == 0 || ((int)p->running < stage_threads(p->ctx) && memory_fits(p));
}

static void wait_for_core(struct task_pool *p)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += WAIT_POLL_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&p->changed, &p->lock, &until);
}

static void *pool_worker(void *opaque)
{
	struct task_pool *p = opaque;

	log_set_stage(p->log_stage);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct stage_task *t;
		int ret;

		while (p->next < p->n && !p->failed && !may_start(p))
			wait_for_core(p);
		if (p->next >= p->n || p->failed)
			break;
		t = &p->tasks[p->next++];
		p->running++;
		pthread_mutex_unlock(&p->lock);
		ret = p->fn(p->arg, t);
		/*
		 * The task's matrices stay in malloc's heap for the next task's,
		 * except under run.memory_mb, whose test (memory_fits) reads
		 * resident memory. Handing them back made the next task fault and
		 * zero them again (pipeline/runner.c, wave_worker: the figures).
		 */
		if (p->ctx->cfg->run.memory_mb != 0)
			memory_return_free();
		pthread_mutex_lock(&p->lock);
		p->running--;
		p->done++;
		stage_progress(p->ctx, "tasks", p->done, p->n);
		p->rets[t->index] = ret;
		if (ret < 0)
			p->failed = 1;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void stage_progress(struct stage_ctx *ctx, const char *unit, uint64_t done, uint64_t total)
{
	if (ctx->progress)
		progress_step(ctx->progress, unit, done, total);
}

int stage_task_threads(struct stage_task *task)
{
	struct task_pool *p = task->pool;
	int share;

	pthread_mutex_lock(&p->lock);
	share = stage_threads(p->ctx) / (int)(p->running > 0 ? p->running : 1);
	pthread_mutex_unlock(&p->lock);
	return share > 0 ? share : 1;
}

static size_t worker_count(const struct stage_ctx *ctx, size_t n)
{
	size_t jobs = (size_t)config_jobs(ctx->cfg);

	if (jobs < (size_t)ctx->n_threads)
		jobs = (size_t)ctx->n_threads;
	if (jobs > MAX_TASK_WORKERS)
		jobs = MAX_TASK_WORKERS;
	return n < jobs ? n : jobs;
}

int stage_run_tasks(struct stage_ctx *ctx, size_t n, stage_task_fn fn, void *arg)
{
	struct task_pool p = { .ctx = ctx, .fn = fn, .arg = arg, .n = n,
			       .log_stage = log_stage() };
	pthread_t threads[MAX_TASK_WORKERS];
	size_t n_workers = worker_count(ctx, n), started = 0;
	int ret = 0;

	if (n == 0)
		return 0;
	stage_progress(ctx, "tasks", 0, n);
	p.tasks = xcalloc(n, sizeof(*p.tasks));
	p.rets = xcalloc(n, sizeof(*p.rets));
	for (size_t i = 0; i < n; i++) {
		p.tasks[i].index = i;
		p.tasks[i].pool = &p;
	}
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	if (n_workers > 1)
		for (; started < n_workers; started++)
			if (pthread_create(&threads[started], NULL, pool_worker, &p) != 0)
				break;
	if (started == 0)
		pool_worker(&p); /* one worker, or threads unavailable: this thread runs them all */
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (p.rets[i] < 0) {
			ret = p.rets[i];
			ctx->err = p.tasks[i].err;
		}
	}
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	free(p.tasks);
	free(p.rets);
	return ret;
}
