/*
 * One logger for the whole process: a parseable line per event,
 *   2026-11-21T17:31:02Z INFO  run=20261121-173102-4f2a stage=features message
 * to stderr (console) and to logs/<run_id>.log when a run is open. LOG checks
 * the level before evaluating its arguments (Redis serverLog). The stage name
 * is thread-local because independent model stages run on their own threads.
 * Progress lines are include/ltv/progress.h's.
 */
#ifndef LTV_LOG_H
#define LTV_LOG_H

#include <stdint.h>
#include "ltv/common.h"

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level_current;

#define LOG(level, ...)                                                          \
	do {                                                                     \
		if ((level) <= log_level_current)                                \
			log_write((level), __VA_ARGS__);                         \
	} while (0)

void log_write(int level, const char *fmt, ...) LTV_PRINTF(2, 3);
/* Parses "error|warn|info|debug"; returns 0 or LTV_EINVAL. */
int log_level_parse(const char *s, int *out_level);
/* Opens logs/<run_id>.log (directory created); console logging continues if it fails. */
int log_open_run(const char *log_dir, const char *run_id, struct ltv_err *err);
void log_close_run(void);
const char *log_run_id(void);
/* Sets the calling thread's stage name (NULL clears). The string must outlive its use. */
void log_set_stage(const char *stage);
/* The calling thread's stage name, or NULL. */
const char *log_stage(void);
/* Routes XGBoost's own log lines into this logger. */
void log_hook_xgboost(void);

/*
 * The console lock log_write holds while it writes a line to stderr; the
 * progress line (include/ltv/progress.h) is drawn under it too.
 */
void log_console_lock(void);
void log_console_unlock(void);

#endif
