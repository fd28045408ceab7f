/*
 * Progress of long work, in one place (src/progress.c). A run says which
 * stage of how many is running and the time the run has left; a stage says
 * how far it is in its own units (rows, models, horizons). On a terminal
 * that is one line on stderr, redrawn at most 4 times a second and erased
 * before any log line; elsewhere (cron, a pipe) a log line at most every 30 s
 * (LTVPIPE_PROGRESS_EVERY=S changes it; 0: every update, for tests), so
 * short work leaves no trace in a log. Below log level info (--quiet) it
 * says nothing.
 */
#ifndef LTV_PROGRESS_H
#define LTV_PROGRESS_H

#include <stdint.h>

struct progress {
	const char *what;   /* "hurdle", "ingest users" */
	const char *unit;   /* "rows", "models" */
	uint64_t total;     /* 0 when unknown: no percentage, no ETA */
	double started;
	double last_draw;   /* terminal: the last redraw */
	double last_log;    /* elsewhere: the last log line */
	int mode;           /* private: off, terminal or log lines */
	int ordinal, n_stages; /* this stage of the run's stages (0: not in a run) */
};

void progress_start(struct progress *p, const char *what, const char *unit, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* progress_update with the unit and total known only now (a stage's own steps). */
void progress_step(struct progress *p, const char *unit, uint64_t done, uint64_t total);
/* Erases the line on a terminal; the caller logs the final figure itself. */
void progress_finish(struct progress *p);

/*
 * The run (pipeline/runner.c): the stage the calling thread runs, k of n
 * (progress_start copies it), and the seconds the run has left by the last
 * run's timings (NAN: unknown), counted down from now.
 */
void progress_run_stage(int k, int n);
void progress_run_left(double seconds);

/* For the logger only, with its console lock held: erases a progress line on screen. */
void progress_erase_locked(void);

#endif
