#ifndef LTV_RUN_HEAP_H
#define LTV_RUN_HEAP_H
/*
 * A run's malloc settings (pipeline/run_heap.c): one arena, and without
 * run.memory_mb every freed block kept in the heap for the next allocation.
 */
struct config;
struct stage;

/* Sets them, before any stage thread exists (runner_run_on). */
void run_heap_setup(const struct config *cfg);
/* Whether the whole run keeps what it frees: without run.memory_mb. */
int run_heap_keeps_freed(const struct config *cfg);
/* Whether stage s keeps what it frees on its own: STAGE_KEEP_FREED under run.memory_mb. */
int run_heap_stage_keeps_freed(const struct config *cfg, const struct stage *s);

#endif
