/*
 * The non-inline draws of include/ltv/rng.h: seeding and the distributions
 * the sample generator needs. Each is the textbook method, chosen for being
 * exact and reproducible rather than fast; the generator's hot path is the
 * inline uniform draws in the header.
 */
#include <math.h>

#include "ltv/rng.h"

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed;
	uint64_t y = stream ^ 0x632BE59BD9B4E019ULL;

	x = rng_splitmix64(&x) ^ rng_splitmix64(&y);
	for (int i = 0; i < 4; i++)
		r->s[i] = rng_splitmix64(&x);
	r->has_spare = 0;
	r->spare = 0;
}

double rng_normal(struct rng *r)
{
	double u1, u2, m;

	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	u1 = 1.0 - rng_unif(r);
	u2 = rng_unif(r);
	m = sqrt(-2.0 * log(u1));
	r->spare = m * sin(2.0 * M_PI * u2);
	r->has_spare = 1;
	return m * cos(2.0 * M_PI * u2);
}

double rng_exp(struct rng *r, double mean)
{
	return -log(1.0 - rng_unif(r)) * mean;
}

/* Fine for the small means the generator uses; large means would take long and underflow exp. */
int rng_poisson(struct rng *r, double lambda)
{
	double limit, prod = 1.0;
	int k = -1;

	if (lambda <= 0)
		return 0;
	if (lambda > 30)
		lambda = 30;
	limit = exp(-lambda);
	do {
		k++;
		prod *= rng_unif(r);
	} while (prod > limit);
	return k;
}

int rng_pick(struct rng *r, const double *w, int n)
{
	double total = 0, u;

	for (int i = 0; i < n; i++)
		total += w[i];
	u = rng_unif(r) * total;
	for (int i = 0; i < n; i++) {
		if (u < w[i])
			return i;
		u -= w[i];
	}
	return n - 1;
}
