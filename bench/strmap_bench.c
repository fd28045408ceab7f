/*
 * The user-id map as ingest and score build and use it (bench/strmap_ids.sh):
 * USERS ids "u%08d" put in file order into a map reserved for them, with
 * their slots loaded TOUCH_ROWS at a time first (ingest_parse.c's users
 * loop), then LOOKUPS ids of random users (events ordered by time, so each
 * one misses the cache) looked up 256 at a time (the events parse's batches,
 * strmap_get_many). Prints the CPU seconds of each half (user + system: the
 * kernel zeroing the table's pages is the build's system time), the minor
 * page faults of the build, and a sum of the values found, which must agree
 * between builds.
 *   usage: strmap_bench USERS LOOKUPS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "ltv/strmap.h"

#define TOUCH_ROWS 16
#define BATCH 256

static double cpu_seconds(long *minflt)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	if (minflt)
		*minflt = ru.ru_minflt;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	const size_t users = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	const size_t lookups = argc > 2 ? strtoull(argv[2], NULL, 10) : 8000000;
	char (*ids)[16] = malloc((users + BATCH) * sizeof(*ids));
	const char *keys[BATCH];
	int64_t values[BATCH];
	uint64_t rng = 88172645463325252ull, sum = 0;
	struct strmap m;
	long flt0, flt1;
	double t0, t1, t2;

	if (!ids || users == 0)
		return 2;
	for (size_t u = 0; u < users; u++)
		snprintf(ids[u], sizeof(ids[u]), "u%08zu", u + 1);
	t0 = cpu_seconds(&flt0);
	strmap_init(&m);
	strmap_reserve(&m, users / 16 * 15);
	for (size_t u = 0; u < users; u++) {
		if (u % TOUCH_ROWS == 0 && u + TOUCH_ROWS <= users) {
			for (size_t k = 0; k < TOUCH_ROWS; k++)
				keys[k] = ids[u + k];
			strmap_touch_many(&m, keys, TOUCH_ROWS);
		}
		strmap_put(&m, ids[u], (int64_t)u + 1);
	}
	t1 = cpu_seconds(&flt1);
	for (size_t at = 0; at < lookups; at += BATCH) {
		for (size_t k = 0; k < BATCH; k++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			keys[k] = ids[rng % users];
		}
		strmap_get_many(&m, keys, BATCH, values, NULL);
		for (size_t k = 0; k < BATCH; k++)
			sum += (uint64_t)values[k];
	}
	t2 = cpu_seconds(NULL);
	printf("build %.3f s CPU, %ld faults, lookups %.1f ns each, sum %llu\n", t1 - t0, flt1 - flt0,
	       (t2 - t1) * 1e9 / (double)(lookups / BATCH * BATCH), (unsigned long long)sum);
	strmap_release(&m);
	free(ids);
	return 0;
}
