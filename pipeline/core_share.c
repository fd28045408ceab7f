/*
 * How a wave's stages share the cores (contract in include/ltv/core_share.h).
 */
#include "ltv/core_share.h"

int core_share_threads(struct core_share *c)
{
	size_t active;
	int n;

	pthread_mutex_lock(&c->lock);
	active = c->unfinished < c->workers ? c->unfinished : c->workers;
	active = active > c->waiting ? active - c->waiting : 0;
	n = active > 0 ? c->jobs / (int)active : c->jobs;
	pthread_mutex_unlock(&c->lock);
	return n > 0 ? n : 1;
}

void core_share_waiting(struct core_share *c, int delta)
{
	pthread_mutex_lock(&c->lock);
	c->waiting = (size_t)((long)c->waiting + delta);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Why a commit lends its core: the first commits of the model wave copy the
 * WAL the serial stages left (131 MB after ingest at 1,000,000 users) into
 * the database file and wait for the disk. curves' commit sat in D state for
 * 0.7 s with no CPU while hurdle's tasks kept to their one core
 * (bench/run_timeline.sh); lent, hurdle starts a second fit there. Cold runs
 * after ingest at 1,000,000 users, 6 alternating pairs under chrt -f 1
 * (bench/train_ab.sh, load 5-12): wall 10.05 -> 9.68 s (paired -0.38 s,
 * 6 of 6), hurdle's own 6.79 -> 5.73 s, CPU 17.02 -> 16.70 s, peak RSS
 * 382.1 -> 381.6 MB (max 410.9), every content hash the same.
 */
void core_share_lend(struct core_share *c, int delta)
{
	if (c)
		core_share_waiting(c, delta);
}
