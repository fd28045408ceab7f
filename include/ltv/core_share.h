#ifndef LTV_CORE_SHARE_H
#define LTV_CORE_SHARE_H
/*
 * The cores of one wave of stages (pipeline/runner.c, run_wave): run.jobs
 * shared by the stages still unfinished, at most one per worker thread,
 * asked for again before each long step (stage_threads). Hurdle is ~70% of
 * training; sharing only at a stage's start left it on one thread after its
 * neighbours had finished. The runner owns the struct and its lock's life.
 */
#include <pthread.h>
#include <stddef.h>

struct core_share {
	pthread_mutex_t lock;
	int jobs;
	size_t workers;
	size_t unfinished;  /* guarded by lock */
	/*
	 * workers whose core is free: under run.memory_mb those not running a
	 * stage, and any stage's while it commits (core_share_lend); guarded by lock
	 */
	size_t waiting;
};

/* The threads one running stage of the wave may use now (at least 1). */
int core_share_threads(struct core_share *c);
/* Adds delta (+1 or -1) to the workers whose core is free. */
void core_share_waiting(struct core_share *c, int delta);
/*
 * A stage about to commit lends its core to the wave's others (+1) until
 * its commit returns (-1); c NULL (a stage run alone) does nothing.
 */
void core_share_lend(struct core_share *c, int delta);

#endif
