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
#include "ltv/progress.h"

int log_level_current = LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static char run_id[64];
static _Thread_local const char *thread_stage;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

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
	progress_erase_locked(); /* a progress line on the terminal, if any */
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

void log_console_lock(void)
{
	pthread_mutex_lock(&log_lock);
}

void log_console_unlock(void)
{
	pthread_mutex_unlock(&log_lock);
}
