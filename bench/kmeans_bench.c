/*
 * k-means as the lookalike stage runs it (k = 16 on 8 standardised
 * features, one thread), on generated rows: the CPU seconds of a fit and of
 * a prediction over the same rows, and an XXH3 of the labels, centroids and
 * inertia, which must not change when a speed change keeps results
 * identical. bench/kmeans_assign.sh builds it against the old and the new
 * src/models/kmeans.c and runs both alternately.
 *   usage: kmeans_bench ROWS|FILE ITERATIONS
 * ITERATIONS is Lloyd's updates with tol 0, so both builds do the same work.
 * FILE instead of a row count: rows of 8 raw doubles (host order), e.g. the
 * lookalike stage's matrix at 1,000,000 users before it is standardised,
 * whose clusters (sizes, runs of rows in one cluster, rows that move) the
 * generated rows do not have.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <xxhash.h>

#include "ltv/kmeans.h"
#include "ltv/rng.h"

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double unit(uint64_t *s)
{
	return ((double)(rng_splitmix64(s) >> 11) + 0.5) * 0x1.0p-53;
}

/* Heavy-tailed, like signed_log of revenue and counts: 24 groups, log-normal spread. */
static double *generated_rows(size_t n, size_t d)
{
	double *x = malloc(n * d * sizeof(double));
	uint64_t s = 7;

	for (size_t i = 0; x && i < n; i++) {
		const size_t grp = (size_t)(unit(&s) * 24);

		for (size_t j = 0; j < d; j++)
			x[i * d + j] = log1p(exp((double)((grp * 7 + j * 3) % 11) * 0.4 +
						 sqrt(-2 * log(unit(&s))) * cos(6.283185307 * unit(&s))));
	}
	return x;
}

/* The rows of d doubles in file path (*n of them), or NULL. */
static double *file_rows(const char *path, size_t d, size_t *n)
{
	FILE *f = fopen(path, "rb");
	double *x = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		*n = (size_t)len / (d * sizeof(double));
		x = malloc(*n * d * sizeof(double));
		if (x && fread(x, d * sizeof(double), *n, f) != *n) {
			free(x);
			x = NULL;
		}
	}
	fclose(f);
	return x;
}

int main(int argc, char **argv)
{
	const size_t d = 8;
	const char *rows = argc > 1 ? argv[1] : "700000";
	char *end;
	size_t n = strtoull(rows, &end, 10);
	size_t iters = argc > 2 ? strtoull(argv[2], NULL, 10) : 30;
	double *x = *end ? file_rows(rows, d, &n) : generated_rows(n, d);
	int *labels = malloc(n * sizeof(int)), *pred = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	uint64_t h;
	double t0, t_fit, t_pred;

	if (!x || !labels || !pred || n < 16)
		return 2;
	kmeans_param_init(&p);
	p.k = 16;
	p.seed = 42;
	p.tol = 0;
	p.max_iter = iters;
	p.n_threads = 1;
	t0 = cpu_now();
	if (kmeans_fit(&p, x, n, d, &m, labels, &err) < 0) {
		fprintf(stderr, "kmeans_fit: %s\n", err.msg);
		return 1;
	}
	t_fit = cpu_now() - t0;
	t0 = cpu_now();
	if (kmeans_predict(m, x, n, 1, pred, NULL, &err) < 0) {
		fprintf(stderr, "kmeans_predict: %s\n", err.msg);
		return 1;
	}
	t_pred = cpu_now() - t0;
	h = XXH3_64bits(labels, n * sizeof(int)) ^ XXH3_64bits(pred, n * sizeof(int)) * 3 ^
	    XXH3_64bits(m->centroids, m->k * d * sizeof(double)) * 5 ^
	    XXH3_64bits(&m->inertia, sizeof(m->inertia)) * 7;
	printf("rows %zu, %zu updates: fit %.3f s CPU, predict %.3f s CPU, results %016llx\n", n,
	       m->n_iter, t_fit, t_pred, (unsigned long long)h);
	kmeans_free(m);
	free(x);
	free(labels);
	free(pred);
	return 0;
}
