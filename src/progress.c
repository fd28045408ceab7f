/*
 * Progress lines (contract in include/ltv/progress.h). The terminal line
 * shares the logger's console lock, so a log line never lands in the middle
 * of it: log_write erases it first (progress_erase_locked).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ltv/log.h"
#include "ltv/progress.h"

enum { MODE_OFF, MODE_TERMINAL, MODE_LOG };

#define REDRAW_SECONDS 0.25
#define LOG_EVERY_SECONDS 30.0

static int on_screen;                /* guarded by the console lock */
static _Thread_local int thread_ordinal, thread_n_stages;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static double run_left = NAN, run_left_at;

void progress_run_stage(int k, int n)
{
	thread_ordinal = k;
	thread_n_stages = n;
}

void progress_run_left(double seconds)
{
	pthread_mutex_lock(&run_lock);
	run_left = seconds;
	run_left_at = now_seconds();
	pthread_mutex_unlock(&run_lock);
}

static double log_every(void)
{
	const char *env = getenv("LTVPIPE_PROGRESS_EVERY");
	double v;

	if (env && parse_double(env, &v) == 0 && v >= 0)
		return v;
	return LOG_EVERY_SECONDS;
}

void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total)
{
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->started = now_seconds();
	p->last_draw = 0;
	p->last_log = p->started;
	p->ordinal = thread_ordinal;
	p->n_stages = thread_n_stages;
	if (log_level_current < LOG_INFO)
		p->mode = MODE_OFF;
	else
		p->mode = isatty(STDERR_FILENO) ? MODE_TERMINAL : MODE_LOG;
}

/* "[stage 4 of 12] hurdle: 2 of 3 models (67%), about 3 s left; run: about 40 s left" */
static void describe(const struct progress *p, uint64_t done, double now, char *buf, size_t size)
{
	const double elapsed = now - p->started;
	const double rate = elapsed > 0 ? (double)done / elapsed : 0;
	double left;
	size_t len = 0;

#define ADD(...)                                                                         \
	do {                                                                             \
		if (len < size)                                                          \
			len += (size_t)snprintf(buf + len, size - len, __VA_ARGS__);     \
	} while (0)
	if (p->ordinal > 0)
		ADD("[stage %d of %d] ", p->ordinal, p->n_stages);
	if (p->total > 0 && done <= p->total) {
		ADD("%s: %llu of %llu %s (%.0f%%)", p->what, (unsigned long long)done,
		    (unsigned long long)p->total, p->unit, 100.0 * (double)done / (double)p->total);
		if (rate > 0 && done < p->total)
			ADD(", about %.0f s left", (double)(p->total - done) / rate);
	} else {
		ADD("%s: %llu %s, %.0f %s/s", p->what, (unsigned long long)done, p->unit, rate, p->unit);
	}
	pthread_mutex_lock(&run_lock);
	left = isnan(run_left) ? NAN : fmax(0, run_left - (now - run_left_at));
	pthread_mutex_unlock(&run_lock);
	if (p->ordinal > 0 && !isnan(left))
		ADD("; run: about %.0f s left", left);
#undef ADD
}

void progress_update(struct progress *p, uint64_t done)
{
	char line[256];
	double now;

	if (p->mode == MODE_OFF)
		return;
	now = now_seconds();
	if (p->mode == MODE_LOG) {
		if (now - p->last_log < log_every())
			return;
		p->last_log = now;
		describe(p, done, now, line, sizeof(line));
		LOG(LOG_INFO, "progress: %s", line);
		return;
	}
	if (now - p->last_draw < REDRAW_SECONDS)
		return;
	p->last_draw = now;
	describe(p, done, now, line, sizeof(line));
	log_console_lock();
	fprintf(stderr, "\r\033[K%s", line);
	on_screen = 1;
	log_console_unlock();
}

void progress_step(struct progress *p, const char *unit, uint64_t done, uint64_t total)
{
	p->unit = unit;
	p->total = total;
	progress_update(p, done);
}

void progress_erase_locked(void)
{
	if (on_screen) {
		fputs("\r\033[K", stderr);
		on_screen = 0;
	}
}

void progress_finish(struct progress *p)
{
	if (p->mode != MODE_TERMINAL)
		return;
	log_console_lock();
	progress_erase_locked();
	log_console_unlock();
}
