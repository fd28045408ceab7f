/*
 * The non-inline draws of include/ltv/rng.h: seeding and the distributions
 * the sample generator needs. Each is the textbook method, chosen for being
 * exact and reproducible rather than fast; the generator's hot path is the
 * inline uniform draws in the header.
 */
#include <math.h>
#include <string.h>

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

/*
 * The characteristic polynomial of xoshiro256's state transition: x^256
 * plus these coefficients (bit b of word w is that of x^(64w + b)), from
 * Berlekamp-Massey on the stream's bits. x^(2^128) and x^(2^192) modulo it
 * are xoshiro256's published jump() and long_jump() constants (checked when
 * it was derived); tests/unit/test_rng.c checks jumps against stepping.
 */
static const uint64_t xoshiro_poly[4] = {
	0x9d116f2bb0f0f001ULL, 0x0280002bcefd1a5eULL, 0x04b4edcf26259f85ULL, 0x0003c03c3f3ecb19ULL,
};

/* a *= x modulo the characteristic polynomial. */
static void poly_times_x(uint64_t a[4])
{
	const uint64_t top = a[3] >> 63;

	for (int w = 3; w > 0; w--)
		a[w] = a[w] << 1 | a[w - 1] >> 63;
	a[0] <<= 1;
	if (top)
		for (int w = 0; w < 4; w++)
			a[w] ^= xoshiro_poly[w];
}

/* out = a * b modulo the characteristic polynomial (out may be a or b). */
static void poly_mulmod(const uint64_t a[4], const uint64_t b[4], uint64_t out[4])
{
	uint64_t r[4] = { 0 }, t[4];

	memcpy(t, a, sizeof(t));
	for (int i = 0; i < 256; i++) {
		if (b[i / 64] >> (i % 64) & 1)
			for (int w = 0; w < 4; w++)
				r[w] ^= t[w];
		poly_times_x(t);
	}
	memcpy(out, r, sizeof(r));
}

void rng_jump_of(uint64_t k, struct rng_jump *out)
{
	uint64_t base[4] = { 2, 0, 0, 0 }; /* x */

	memset(out->poly, 0, sizeof(out->poly));
	out->poly[0] = 1;
	for (; k; k >>= 1) {
		if (k & 1)
			poly_mulmod(out->poly, base, out->poly);
		poly_mulmod(base, base, base);
	}
}

void rng_jump(struct rng *r, const struct rng_jump *j)
{
	uint64_t s[4] = { 0 };

	for (int i = 0; i < 256; i++) {
		if (j->poly[i / 64] >> (i % 64) & 1)
			for (int w = 0; w < 4; w++)
				s[w] ^= r->s[w];
		rng_next(r);
	}
	memcpy(r->s, s, sizeof(s));
}
