/*
 * Process-wide logger: one parseable line per event to stderr and, during a
 * run, to logs/<run_id>.log. A mutex keeps lines whole when model stages log
 * from parallel threads; the stage name is per thread for the same reason.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xgboost/c_api.h>

#include "ltv/log.h"

int log_level_current = LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static char run_id[64];
static _Thread_local const char *thread_stage;
static int progress_on_screen;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

static void clear_progress_line(void)
{
	if (progress_on_screen) {
		fputs("\r\033[K", stderr);
		progress_on_screen = 0;
	}
}

void log_write(int level, const char *fmt, ...)
{
	char stamp[32], msg[4096];
	struct tm tm;
	time_t t = time(NULL);
	va_list ap;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;

	pthread_mutex_lock(&log_lock);
	clear_progress_line();
	fprintf(stderr, "%s %-5s run=%s stage=%s %s\n", stamp, level_names[level],
		run_id[0] ? run_id : "-", thread_stage ? thread_stage : "-", msg);
	if (log_file) {
		fprintf(log_file, "%s %-5s run=%s stage=%s %s\n", stamp, level_names[level],
			run_id[0] ? run_id : "-", thread_stage ? thread_stage : "-", msg);
		fflush(log_file);
	}
	pthread_mutex_unlock(&log_lock);
}

int log_level_parse(const char *s, int *out_level)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out_level = i;
			return 0;
		}
	}
	return LTV_EINVAL;
}

int log_open_run(const char *log_dir, const char *id, struct ltv_err *err)
{
	char path[4096];

	snprintf(run_id, sizeof(run_id), "%s", id);
	if (mkdir(log_dir, 0777) != 0 && errno != EEXIST)
		return err_set(err, LTV_EIO, "cannot create log directory '%s': %s", log_dir,
			       strerror(errno));
	snprintf(path, sizeof(path), "%s/%s.log", log_dir, id);
	pthread_mutex_lock(&log_lock);
	log_file = fopen(path, "a");
	pthread_mutex_unlock(&log_lock);
	if (!log_file)
		return err_set(err, LTV_EIO, "cannot open log file '%s': %s", path, strerror(errno));
	return 0;
}

void log_close_run(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	run_id[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

const char *log_run_id(void)
{
	return run_id;
}

void log_set_stage(const char *stage)
{
	thread_stage = stage;
}

const char *log_stage(void)
{
	return thread_stage;
}

static void xgboost_log_line(const char *msg)
{
	LOG(LOG_DEBUG, "xgboost: %s", msg);
}

void log_hook_xgboost(void)
{
	XGBRegisterLogCallback(xgboost_log_line);
}

void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total)
{
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->started = now_seconds();
	p->last_draw = 0;
	p->enabled = isatty(STDERR_FILENO) && log_level_current >= LOG_INFO;
}

void progress_update(struct progress *p, uint64_t done)
{
	double now, elapsed, rate;

	if (!p->enabled)
		return;
	now = now_seconds();
	if (now - p->last_draw < 0.25)
		return;
	p->last_draw = now;
	elapsed = now - p->started;
	rate = elapsed > 0 ? (double)done / elapsed : 0;
	pthread_mutex_lock(&log_lock);
	if (p->total > 0 && rate > 0 && done <= p->total)
		fprintf(stderr, "\r\033[K%s: %.1f%% %.0f %s/s ETA %.0fs", p->what,
			100.0 * (double)done / (double)p->total, rate, p->unit,
			(double)(p->total - done) / rate);
	else
		fprintf(stderr, "\r\033[K%s: %llu %s, %.0f %s/s", p->what,
			(unsigned long long)done, p->unit, rate, p->unit);
	progress_on_screen = 1;
	pthread_mutex_unlock(&log_lock);
}

void progress_finish(struct progress *p)
{
	if (!p->enabled)
		return;
	pthread_mutex_lock(&log_lock);
	clear_progress_line();
	pthread_mutex_unlock(&log_lock);
}
