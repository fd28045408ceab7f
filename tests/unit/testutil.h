/*
 * Shared helpers for the cmocka unit tests: scratch directories, paths to the
 * real data sets in ../shared/data (tests that need them skip when absent), a
 * fixed-seed random stream and random rows for the tree tests. What needs the
 * pipeline (configs, generated samples, runs, trained models) is in
 * fixture.h, the CDNOW log in cdnow.h.
 */
#ifndef LTV_TESTUTIL_H
#define LTV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Creates a fresh scratch directory under $TMPDIR; caller frees the path. */
static inline char *test_scratch_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[4096];

	snprintf(tmpl, sizeof(tmpl), "%s/ltvtest-XXXXXX", tmp ? tmp : "/tmp");
	/* Never NULL: a test cannot go on without its directory (and the compiler then knows it). */
	if (!mkdtemp(tmpl)) {
		perror(tmpl);
		abort();
	}
	return strdup(tmpl);
}

static inline int test_rm_entry(const char *path, const struct stat *st, int flag,
				struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes a scratch directory and everything in it, then frees the path; NULL is allowed. */
static inline void test_scratch_free(char *dir)
{
	if (dir)
		nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Writes text to dir/name; returns the full path (caller frees) or NULL. */
static inline char *test_write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return strdup(path);
}

/* Path of a shared data file, e.g. test_shared_path("cdnow/users.csv"), or NULL. */
static inline const char *test_shared_path(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s",
		 getenv("LTV_SHARED_DATA") ? getenv("LTV_SHARED_DATA") : "../shared/data", rel);
	return access(path, R_OK) == 0 ? path : NULL;
}

/* splitmix64: a fixed-seed stream, the same on every platform. */
static inline uint64_t test_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) from test_rng_next: its top 53 bits. */
static inline double test_unif(uint64_t *s)
{
	return (double)(test_rng_next(s) >> 11) * 0x1.0p-53;
}

/*
 * n rows of k floats from *s for the tree tests (caller frees), each value
 * from one draw u: NaN below `missing`, then below `huge` 1e30 or -1e-30
 * (half each), then below 0.3 an integer 0..9 (ties with split conditions),
 * else uniform in [-5, 15).
 */
static inline float *test_random_rows(uint64_t *s, size_t n, size_t k, double missing,
				      double huge)
{
	float *x = malloc(n * k * sizeof(float));

	assert_non_null(x);
	for (size_t i = 0; i < n * k; i++) {
		double u = test_unif(s);

		x[i] = u < missing ? NAN : u < huge ? (u < (missing + huge) / 2 ? 1e30f : -1e-30f)
			: u < 0.3 ? (float)floor(test_unif(s) * 10) : (float)(test_unif(s) * 20 - 5);
	}
	return x;
}

/* Standard normal by Box-Muller from test_rng_next. */
static inline double test_gauss(uint64_t *s)
{
	const double u1 = ((double)(test_rng_next(s) >> 11) + 1.0) * 0x1.0p-53;
	const double u2 = (double)(test_rng_next(s) >> 11) * 0x1.0p-53;

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#define assert_double_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#endif
