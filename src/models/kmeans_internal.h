/*
 * What the files of k-means (src/models/kmeans*.c) share and nobody else may
 * see: the block size, the squared distance every exact comparison uses, and
 * one pass of nearest-centroid assignment with the fit's bounds
 * (kmeans_assign.c).
 */
#ifndef LTV_KMEANS_INTERNAL_H
#define LTV_KMEANS_INTERNAL_H

#include <stddef.h>

#include "ltv/kmeans.h"

/*
 * Rows per block: big enough for dgemm to run at speed, small enough that a
 * thread's block x k distance matrix stays near 32 MB even for large k.
 */
static inline size_t block_rows_for(size_t k)
{
	size_t rows = ((size_t)1 << 22) / k;

	if (rows > 4096)
		rows = 4096;
	if (rows < 64)
		rows = 64;
	return rows;
}

static inline double sq_dist(const double *a, const double *b, size_t d)
{
	double s = 0.0;

	for (size_t j = 0; j < d; j++) {
		const double t = a[j] - b[j];
		s += t * t;
	}
	return s;
}

/*
 * One pass of nearest-centroid assignment. x is raw when sc is given (each
 * block is standardised into thread scratch) and already standardised when
 * sc is NULL. Per-block outputs (sums, counts, inertia) are optional.
 */
struct row_bounds;

struct assign_job {
	const double *x;
	const struct scaler *sc;
	size_t n, d, k;
	const double *centroids;
	int n_threads;
	int *labels;         /* n */
	double *dist2;       /* n, or NULL */
	/*
	 * n_blocks * k * d and n_blocks * k, or NULL. With valid bounds they
	 * hold the last pass's, which a block whose labels do not change keeps.
	 */
	double *blk_sums;
	size_t *blk_counts;
	double *blk_inertia; /* n_blocks, or NULL */
	struct row_bounds *bounds; /* the fit's, or NULL: x is the fit's rows, labels the last pass's */
};

/*
 * Hamerly's bounds for the fit's passes (kmeans_param.prune): a row whose
 * centroid is nearer than every other by more than the rounding of the
 * expanded distances keeps its label without them. Bounds are on exact
 * distances, each rounded outwards: a lower bound from the second least
 * expanded distance of the last full search, moved by how far the
 * centroids moved (the triangle inequality). The upper side needs no bound:
 * every pass computes each row's exact squared distance to its centroid
 * anyway (the inertia), so it does that first, against the last pass's
 * label, and tests with it.
 */
struct row_bounds {
	double *xnorm;     /* n: row i's squared norm, set by the first pass (the rows do not move) */
	double *lower;     /* n: <= row i's distance to every other centroid */
	double drift_max;  /* the largest drift of a centroid in the last update, of drift_arg */
	double drift_next; /* the largest of the others */
	size_t drift_arg;
	int valid;         /* 0 until a pass has set lower for every row */
};

/*
 * Runs the pass job describes over job->n rows in blocks of
 * block_rows_for(k) on job->n_threads threads: labels (ties to the lowest
 * index), and the optional dist2 and per-block sums, counts and inertia.
 */
void kmeans_assign_rows(const struct assign_job *job);
/* Bounds for n rows, none valid yet; free with kmeans_bounds_release. */
void kmeans_bounds_init(struct row_bounds *b, size_t n);
void kmeans_bounds_release(struct row_bounds *b);
/* The two largest of how far each of the k centroids moved from old to now, rounded up. */
void kmeans_bounds_drift(struct row_bounds *b, const double *old, const double *now, size_t k,
			 size_t d);

#endif
