/*
 * Reproducible random numbers: xoshiro256** streams seeded by splitmix64
 * (Blackman and Vigna), the same bits on every platform and libc, so a
 * generated sample or a k-means++ start depends on the seed alone. The
 * per-draw functions are inline: the sample generator makes hundreds of
 * millions of draws.
 */
#ifndef LTV_RNG_H
#define LTV_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
	double spare;      /* rng_normal makes two values at a time */
	int has_spare;
};

/* splitmix64: advances *state and returns the next value of its stream. */
static inline uint64_t rng_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * A uniform number in [0, 1) fixed by key within stream (any constant): the
 * top 53 bits of splitmix64's first value from key ^ stream. For samples that
 * must keep the same items on every run (a row by position, a user by uid).
 */
static inline double rng_keyed_uniform(uint64_t key, uint64_t stream)
{
	uint64_t state = key ^ stream;

	return (double)(rng_splitmix64(&state) >> 11) * 0x1.0p-53;
}

/* Seeds r with stream `stream` of `seed`: streams of one seed are independent. */
void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	const uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return result;
}

/*
 * A jump of a fixed number of draws (rng_jump_of): applied by rng_jump, it
 * moves a stream that many rng_next ahead in 256 steps, so that threads can
 * each draw a later stretch of one stream and together give exactly the
 * numbers one thread would have drawn. poly is x^k modulo the
 * characteristic polynomial of xoshiro256's state transition.
 */
struct rng_jump {
	uint64_t poly[4];
};

/* The jump of k draws of rng_next (any k, 0 included). */
void rng_jump_of(uint64_t k, struct rng_jump *out);

/* Moves r's stream ahead by j's draws (r's spare normal is left as it is). */
void rng_jump(struct rng *r, const struct rng_jump *j);

/* Uniform in [0, 1), 53 random bits. */
static inline double rng_unif(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply; a bias below 2^-32). */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
double rng_normal(struct rng *r);

/* Exponential with the given mean. */
double rng_exp(struct rng *r, double mean);

/* Poisson with mean lambda by Knuth's product method; lambda is capped at 30. */
int rng_poisson(struct rng *r, double lambda);

/* An index in [0, n) drawn with probability proportional to w[i] >= 0. */
int rng_pick(struct rng *r, const double *w, int n);

#endif
