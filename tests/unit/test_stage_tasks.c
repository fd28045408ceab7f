/*
 * Unit tests for stage tasks (pipeline/stage_tasks.c): every task runs once,
 * no more at once than the stage's threads, in index order with one thread,
 * each task's share of the threads, and a failure reported as the
 * lowest-numbered failed task's error with later tasks skipped,
 * run.memory_mb keeping a task that does not fit from starting beside others,
 * what a task freed kept in malloc's heap unless run.memory_mb is set, and
 * a wave's stage taking the core of a neighbour that commits.
 */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#include "ltv/config.h"
#include "ltv/core_share.h"
#include "ltv/stage.h"

#define N_TASKS 8

struct probe {
	pthread_mutex_t lock;
	pthread_cond_t changed;  /* running or n_started moved */
	int wave;                /* tasks 0..wave-1 must run side by side (0: no waiting) */
	int wave_read;           /* of them, how many have read their threads */
	int running;
	int max_running;
	int runs[N_TASKS];
	size_t order[N_TASKS];   /* task indexes in the order they started */
	size_t n_started;
	int threads_seen[N_TASKS];
	int fail_mask;           /* bit i: task i fails */
};

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* With p->lock held: waits for cond, at most 60 s (a pool that never starts enough tasks fails the test, not hangs it). */
static void probe_wait(struct probe *p, int (*cond)(const struct probe *))
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	while (!cond(p) && pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0)
		;
}

static int wave_running(const struct probe *p)
{
	return p->running >= p->wave;
}

static int wave_read(const struct probe *p)
{
	return p->wave_read >= p->wave;
}

/*
 * The first p->wave tasks wait for each other before reading their threads,
 * and finish only once all have read them: so they run side by side and see
 * each other however late a loaded machine starts their threads (a sleep
 * alone could let the first finish before the last started). A pool that
 * does not start that many at once leaves them waiting 60 s, then the
 * test's assertions fail.
 */
static int probe_task(void *arg, struct stage_task *task)
{
	struct probe *p = arg;
	const int in_wave = (int)task->index < p->wave;

	pthread_mutex_lock(&p->lock);
	p->running++;
	if (p->running > p->max_running)
		p->max_running = p->running;
	p->runs[task->index]++;
	p->order[p->n_started++] = task->index;
	pthread_cond_broadcast(&p->changed);
	if (in_wave)
		probe_wait(p, wave_running);
	pthread_mutex_unlock(&p->lock);
	sleep_ms(40);
	p->threads_seen[task->index] = stage_task_threads(task);
	pthread_mutex_lock(&p->lock);
	if (in_wave) {
		p->wave_read++;
		pthread_cond_broadcast(&p->changed);
		probe_wait(p, wave_read);
	}
	p->running--;
	pthread_mutex_unlock(&p->lock);
	if (p->fail_mask & (1 << task->index))
		return err_set(&task->err, LTV_EMODEL, "task %zu failed", task->index);
	return 0;
}

static void ctx_init(struct stage_ctx *ctx, struct config *cfg, int jobs)
{
	config_init_defaults(cfg);
	cfg->run.jobs = jobs;
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->n_threads = jobs;
}

static void probe_init(struct probe *p, int fail_mask, int wave)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	p->fail_mask = fail_mask;
	p->wave = wave;
}

static void test_runs_each_task_once_within_threads(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	struct probe p;

	(void)state;
	ctx_init(&ctx, &cfg, 3);
	probe_init(&p, 0, 3);
	assert_int_equal(stage_run_tasks(&ctx, N_TASKS, probe_task, &p), 0);
	for (int i = 0; i < N_TASKS; i++)
		assert_int_equal(p.runs[i], 1);
	assert_int_equal(p.running, 0);
	assert_int_equal(p.max_running, 3);
	/* With three running, each had one thread; the last ones alone get more. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(p.threads_seen[i], 1);
	assert_true(p.threads_seen[N_TASKS - 1] >= 1 && p.threads_seen[N_TASKS - 1] <= 3);
	assert_int_equal(ctx.max_threads_used, 3);
	config_release(&cfg);
}

static void test_one_thread_runs_in_order(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	struct probe p;

	(void)state;
	ctx_init(&ctx, &cfg, 1);
	probe_init(&p, 0, 0);
	assert_int_equal(stage_run_tasks(&ctx, N_TASKS, probe_task, &p), 0);
	assert_int_equal(p.max_running, 1);
	for (size_t i = 0; i < N_TASKS; i++) {
		assert_int_equal(p.order[i], i);
		assert_int_equal(p.threads_seen[i], 1);
	}
	config_release(&cfg);
}

static void test_lowest_failure_wins_and_stops_the_rest(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	struct probe p;

	(void)state;
	ctx_init(&ctx, &cfg, 2);
	probe_init(&p, (1 << 3) | (1 << 2), 0);
	assert_int_equal(stage_run_tasks(&ctx, N_TASKS, probe_task, &p), LTV_EMODEL);
	assert_string_equal(ctx.err.msg, "task 2 failed");
	/* Tasks start in order, two at a time: at most tasks 0..3 began before one failed. */
	assert_int_equal(p.runs[N_TASKS - 1], 0);
	assert_true(p.n_started <= 4);
	config_release(&cfg);
}

/*
 * run.memory_mb: a task that would not fit beside the running one waits, and
 * the running one then gets every thread; one that fits runs beside it.
 */
static void test_memory_limit_runs_tasks_one_at_a_time(void **state)
{
	const size_t rss = current_rss_bytes();
	struct config cfg;
	struct stage_ctx ctx;
	struct probe p;

	(void)state;
	assert_true(rss > 0);
	ctx_init(&ctx, &cfg, 3);
	probe_init(&p, 0, 0);
	cfg.run.memory_mb = (int64_t)(rss / 1048576) + 64;
	ctx.task_bytes = (size_t)1 << 30; /* a gigabyte a task: never two at once */
	assert_int_equal(stage_run_tasks(&ctx, N_TASKS, probe_task, &p), 0);
	assert_int_equal(p.max_running, 1);
	for (size_t i = 0; i < N_TASKS; i++) {
		assert_int_equal(p.runs[i], 1);
		assert_int_equal(p.order[i], i);
		assert_int_equal(p.threads_seen[i], 3);
	}
	/* The same limit with small tasks: they fit, three side by side. */
	probe_init(&p, 0, 3);
	ctx.task_bytes = 1048576;
	assert_int_equal(stage_run_tasks(&ctx, N_TASKS, probe_task, &p), 0);
	assert_int_equal(p.max_running, 3);
	config_release(&cfg);
}

/* Two tasks: task 1 reads its threads beside task 0, then ends; task 0 reads its own alone. */
struct grow_probe {
	struct probe p;          /* lock, changed, n_started */
	const struct stage_ctx *ctx;
	int beside, alone;       /* stage_threads of a task's ctx copy, with task 1 running and after */
	int task1_done;
};

static int task1_done(const struct probe *p)
{
	return ((const struct grow_probe *)p)->task1_done;
}

static int two_started(const struct probe *p)
{
	return p->n_started >= 2;
}

static int grow_task(void *arg, struct stage_task *task)
{
	struct grow_probe *g = arg;
	struct stage_ctx own = *g->ctx;

	own.task = task;
	pthread_mutex_lock(&g->p.lock);
	g->p.n_started++;
	pthread_cond_broadcast(&g->p.changed);
	probe_wait(&g->p, two_started);
	if (task->index == 1) {
		g->beside = stage_threads(&own);
		g->task1_done = 1;
		pthread_cond_broadcast(&g->p.changed);
		pthread_mutex_unlock(&g->p.lock);
		return 0;
	}
	probe_wait(&g->p, task1_done);
	pthread_mutex_unlock(&g->p.lock);
	/* the pool counts task 1 out once its function has returned */
	for (int i = 0; i < 600 && stage_threads(&own) < 2; i++)
		sleep_ms(10);
	g->alone = stage_threads(&own);
	return 0;
}

/*
 * A task's own copy of the stage's ctx with .task set (select's horizons):
 * stage_threads is the task's share, one thread each while two run on two,
 * both once the other has ended.
 */
static void test_task_ctx_threads_follow_the_share(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	struct grow_probe g;

	(void)state;
	ctx_init(&ctx, &cfg, 2);
	memset(&g, 0, sizeof(g));
	probe_init(&g.p, 0, 0);
	g.ctx = &ctx;
	assert_int_equal(stage_run_tasks(&ctx, 2, grow_task, &g), 0);
	assert_int_equal(g.beside, 1);
	assert_int_equal(g.alone, 2);
	config_release(&cfg);
}

#define FREED_BYTES ((size_t)16 << 20)

/* memset, called through a pointer the compiler cannot see through: else it drops the fill. */
static void *(*volatile fill_bytes)(void *, int, size_t) = memset;

/* Fills a block of FREED_BYTES from malloc's heap and frees it. */
static int fill_and_free_task(void *arg, struct stage_task *task)
{
	char *block = malloc(FREED_BYTES);

	(void)arg;
	(void)task;
	assert_non_null(block);
	fill_bytes(block, 1, FREED_BYTES);
	free(block);
	return 0;
}

/*
 * What a task freed stays in malloc's heap for the next task (handed back,
 * the next allocations faulted and zeroed it again: 198k -> 24k page faults
 * of a cold run at 1,000,000 users without the runner's trims), except under
 * run.memory_mb, whose test reads resident memory: then it goes back to the
 * kernel after each task.
 */
static void test_freed_memory_kept_unless_budget(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	size_t before;

	(void)state;
#if !defined(__GLIBC__) || defined(__SANITIZE_ADDRESS__)
	skip(); /* no glibc heap to trim (ASan serves every malloc) */
#endif
	memory_keep_freed(); /* blocks from the heap, no trim of its own on free */
	/*
	 * One thread: the tasks run on this one, in the main heap. (A thread
	 * of an earlier test's arena unmaps a secondary heap its block emptied
	 * whatever malloc's settings; a run caps arenas at one before any.)
	 */
	ctx_init(&ctx, &cfg, 1);
	memory_return_free();
	before = current_rss_bytes();
	assert_int_equal(stage_run_tasks(&ctx, 2, fill_and_free_task, NULL), 0);
	assert_true(current_rss_bytes() >= before + FREED_BYTES / 4 * 3); /* still resident */
	memory_return_free();
	before = current_rss_bytes();
	cfg.run.memory_mb = 1 << 20; /* a budget that never binds */
	assert_int_equal(stage_run_tasks(&ctx, 2, fill_and_free_task, NULL), 0);
	assert_true(current_rss_bytes() < before + FREED_BYTES / 4); /* handed back */
	memory_map_big_blocks();
	config_release(&cfg);
}

/*
 * A wave's cores (include/ltv/core_share.h): two jobs among seven unfinished
 * stages on two workers give a stage one thread; while its neighbour commits
 * (a checkpoint waiting for the disk) it may take both, and one again after.
 */
static void test_commit_lends_its_core(void **state)
{
	struct core_share cores = { .jobs = 2, .workers = 2, .unfinished = 7 };
	struct config cfg;
	struct stage_ctx ctx;

	(void)state;
	pthread_mutex_init(&cores.lock, NULL);
	ctx_init(&ctx, &cfg, 2);
	ctx.cores = &cores;
	assert_int_equal(stage_threads(&ctx), 1);
	core_share_lend(&cores, 1);
	assert_int_equal(stage_threads(&ctx), 2);
	core_share_lend(&cores, -1);
	assert_int_equal(stage_threads(&ctx), 1);
	cores.unfinished = 1; /* the last stage of the wave takes every core */
	assert_int_equal(stage_threads(&ctx), 2);
	core_share_lend(NULL, 1); /* a stage run alone lends nothing */
	pthread_mutex_destroy(&cores.lock);
	config_release(&cfg);
}

static void test_no_tasks(void **state)
{
	struct config cfg;
	struct stage_ctx ctx;
	struct probe p;

	(void)state;
	ctx_init(&ctx, &cfg, 2);
	probe_init(&p, 0, 0);
	assert_int_equal(stage_run_tasks(&ctx, 0, probe_task, &p), 0);
	assert_int_equal(p.n_started, 0);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_each_task_once_within_threads),
		cmocka_unit_test(test_one_thread_runs_in_order),
		cmocka_unit_test(test_lowest_failure_wins_and_stops_the_rest),
		cmocka_unit_test(test_memory_limit_runs_tasks_one_at_a_time),
		cmocka_unit_test(test_no_tasks),
		cmocka_unit_test(test_task_ctx_threads_follow_the_share),
		cmocka_unit_test(test_freed_memory_kept_unless_budget),
		cmocka_unit_test(test_commit_lends_its_core),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
