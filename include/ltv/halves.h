/*
 * Two halves of one job on two threads (src/halves.c): ingest's serial tail
 * (grouping the user-days, checking and encoding their block) runs after the
 * events parse with the other core idle, and each of its passes splits into
 * two halves whose results are kept apart and joined in order, so the
 * output is the same bytes however many threads ran.
 *
 * Use:
 *   halves_run(fn, &half[0], &half[1], threads);  // fn(&half[1]) on a new thread
 *                                                 // while fn(&half[0]) runs here
 */
#ifndef LTV_HALVES_H
#define LTV_HALVES_H

/*
 * Runs fn(a) and fn(b) and returns when both have: b on a thread of its own
 * when threads >= 2 and one can be started, else after a on this one.
 */
void halves_run(void (*fn)(void *), void *a, void *b, int threads);

#endif
