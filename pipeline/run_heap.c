/*
 * How a run's malloc heap treats what it frees (contract in
 * include/ltv/run_heap.h): the runner's arenas, and whether freed blocks
 * stay in the heap for the run or go back to the kernel under run.memory_mb.
 */
#include "ltv/config.h"
#include "ltv/run_heap.h"
#include "ltv/stage.h"

/*
 * malloc arenas of a run: one was as fast as one per thread (8.7 against
 * 8.9 CPU seconds for a cold run at 100,000 users) and the freed memory of
 * every thread is in it for the next allocation. Two (until session 18)
 * left XGBoost's threads on a many-core machine a second lock, but what one
 * stage's threads freed in the second arena was of no use to the next
 * stage's: once the runner stopped trimming the heap after a lone stage,
 * select's peak rose to 397-432 MB with two arenas, 359-396 MB with one
 * (1,000,000 users, cold run; bench/train_ab.sh). The runner trims the heap
 * only under run.memory_mb now (pipeline/runner.c, wave_worker).
 */
#define RUN_MALLOC_ARENAS 1

/*
 * Whether the whole run keeps what it frees in malloc's heap: without
 * run.memory_mb, whose tests read resident memory (run_heap_setup).
 */
int run_heap_keeps_freed(const struct config *cfg)
{
	return cfg->run.memory_mb == 0;
}

/*
 * Whether stage s keeps freed blocks in the heap on its own (STAGE_KEEP_FREED):
 * only under run.memory_mb, where the rest of the run maps big blocks apart
 * and hands them back; without it the whole run keeps them (run_heap_setup).
 */
int run_heap_stage_keeps_freed(const struct config *cfg, const struct stage *s)
{
	return !run_heap_keeps_freed(cfg) && (s->flags & STAGE_KEEP_FREED);
}

/*
 * Before any stage thread exists. Arenas: glibc gave every thread (stages
 * side by side, XGBoost's) an arena of its own, each keeping its thread's
 * freed high-water mark, and peak RSS of a cold run at 100,000 users was
 * 192 MB for 100 MB of live heap (bench/README.md, "peak memory").
 * Freed blocks: without run.memory_mb every block comes from the heap and
 * what a stage or task frees stays there for the next one (memory_keep_freed),
 * instead of glibc mapping each block over 32 MB on its own and unmapping it
 * on free, and trimming the heap's top past 64 MB, so that the next stage's
 * arrays were faulted in and zeroed by the kernel again (a 4 KB fault costs
 * 7-17 us of CPU on these VMs). The cold run after ingest at 1,000,000 users,
 * 6 alternating pairs (bench/train_ab.sh, load 5-7): minor faults 23.5k ->
 * 2.5k, system 1.09 -> 0.82 s, CPU 16.96 -> 17.07 s (paired -0.29 s), peak
 * RSS 376.8 -> 386.4 MB (paired +9.9), every content hash the same.
 * Under run.memory_mb the run keeps glibc's rule, since its tests read
 * resident memory, and only STAGE_KEEP_FREED stages keep
 * (run_heap_stage_keeps_freed).
 */
void run_heap_setup(const struct config *cfg)
{
	memory_limit_arenas(RUN_MALLOC_ARENAS);
	if (run_heap_keeps_freed(cfg))
		memory_keep_freed();
}
