/*
 * select's paired bootstraps (paired_bootstrap_wins: 1,000 resamples, B must
 * win 95 %) on generated residuals of the sizes select tests at 1,000,000
 * users: every validated cohort (about 120,000 users in 48 campaigns), a
 * tier's (30,000 in 16) and campaigns' (3,000 and 600 users, alone), each
 * on SEEDS seeds with B a little better or a little worse than A so that
 * the tests settle at different resamples, on one thread and on THREADS.
 * Prints the CPU seconds of each size and the verdicts as a bit string,
 * which must be the same for both builds when a change keeps results
 * identical. bench/paired_bootstrap.sh builds it against the old and the
 * new src/models/paired_bootstrap.c and runs both alternately.
 *   usage: paired_bootstrap_bench SEEDS THREADS
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ltv/paired_bootstrap.h"
#include "ltv/rng.h"

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	static const size_t users[] = { 120000, 30000, 3000, 600 }, groups[] = { 48, 16, 1, 1 };
	/* B's advantage per user at 120,000 users, larger in proportion to the noise on fewer */
	static const double edge[] = { -0.002, 0, 0.001, 0.003 };
	const int seeds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 0;
	const int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 0;
	double *a = malloc(users[0] * sizeof(double)), *b = malloc(users[0] * sizeof(double));
	size_t *start = malloc((groups[0] + 1) * sizeof(size_t));
	struct rng r;

	if (argc != 3 || seeds < 1 || threads < 1) {
		fprintf(stderr, "usage: paired_bootstrap_bench SEEDS THREADS\n");
		return 2;
	}
	for (size_t s = 0; s < sizeof(users) / sizeof(*users); s++) {
		char verdicts[256];
		int nv = 0;
		double t0 = cpu_now();

		for (size_t g = 0; g <= groups[s]; g++)
			start[g] = users[s] * g / groups[s];
		for (int t = 1; t <= threads; t += threads > 1 ? threads - 1 : 1)
			for (size_t e = 0; e < sizeof(edge) / sizeof(*edge); e++)
				for (int seed = 1; seed <= seeds; seed++) {
					rng_seed(&r, (uint64_t)seed, s * 10 + e);
					for (size_t i = 0; i < users[s]; i++) {
						b[i] = rng_unif(&r) - 0.5;
						a[i] = b[i] + (rng_unif(&r) - 0.5) * 0.3 +
						       edge[e] * sqrt((double)users[0] / (double)users[s]);
					}
					verdicts[nv++] = (char)('0' + paired_bootstrap_wins(a, b, start, groups[s], 1000,
										    (uint64_t)seed, 0.95, t));
				}
		verdicts[nv] = 0;
		printf("users %zu cpu %.3f verdicts %s\n", users[s], cpu_now() - t0, verdicts);
	}
	free(a);
	free(b);
	free(start);
	return 0;
}
