/*
 * k-means clustering for the lookalike stage: a per-feature scaler, k-means++
 * seeding from a fixed seed, and Lloyd iterations parallelised over blocks of
 * rows. Data is row-major: x[i * d + j] is feature j of row i.
 *
 * Results are bit-identical for a given seed whatever n_threads is: work is
 * cut into blocks whose size does not depend on the thread count, and partial
 * sums are merged in block order.
 */
#ifndef LTV_KMEANS_H
#define LTV_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

/* Per-feature standardisation z = (x - mean) / std, population std; a feature with std 0 gets std 1. */
struct scaler {
	size_t d;
	double *mean; /* d values, owned */
	double *std;  /* d values, owned, all > 0 */
};

/*
 * Sets up s from n rows of x (n >= 1, every value finite). On failure s owns
 * nothing. Release with scaler_release.
 */
int scaler_fit(struct scaler *s, const double *x, size_t n, size_t d, struct ltv_err *err);
/* Writes n standardised rows to out (n * s->d values); out may be x itself. */
void scaler_transform(const struct scaler *s, const double *x, size_t n, double *out);
/* The inverse of scaler_transform; out may be z itself. */
void scaler_inverse(const struct scaler *s, const double *z, size_t n, double *out);
/* Frees the contents of s (not s itself); safe on a released scaler. */
void scaler_release(struct scaler *s);

struct kmeans_param {
	size_t k;          /* clusters, >= 1 */
	size_t max_iter;   /* most Lloyd updates, >= 1 */
	double tol;        /* stop when |inertia change| <= tol * previous inertia; >= 0 */
	uint64_t seed;     /* k-means++ seed; same seed, same model */
	int n_threads;     /* OpenMP threads for the row loops, >= 1 */
	int standardize;   /* 1: cluster in standardised units; 0: scaler is the identity */
	/*
	 * NULL: k-means++ seeding. Otherwise k * d starting centroids in x's
	 * units (borrowed for the duration of kmeans_fit).
	 */
	const double *init_centroids;
	/*
	 * 1: a pass skips the distances of a row whose bounds (Hamerly's, kept
	 * across passes with a margin for rounding) show its centroid is still
	 * the nearest; 0: every distance every pass. The same model and labels
	 * either way, to the bit; 1 costs 16 bytes a row during the fit.
	 */
	int prune;
};

/*
 * A fitted model. Centroids live in standardised units; predict and
 * kmeans_centroids_unscaled apply the scaler.
 */
struct kmeans_model {
	size_t k;
	size_t d;
	struct scaler scaler;
	double *centroids; /* k * d, standardised units, owned */
	double inertia;    /* sum of squared standardised distances to the assigned centroid */
	size_t n_iter;     /* Lloyd updates made */
};

/* Defaults: k 8, max_iter 100, tol 1e-6, seed 42, n_threads 1, standardize 1, k-means++, prune 1. */
void kmeans_param_init(struct kmeans_param *p);
/* NULL when p is usable, else a static string saying which field is wrong. */
const char *kmeans_param_check(const struct kmeans_param *p);

/*
 * Clusters n rows of d features (n >= k, all finite). An empty cluster is
 * moved to the row farthest from its centroid; when every row already sits
 * on its centroid, to rounding (k exceeds the number of distinct rows), it
 * keeps its place. Stops after max_iter updates or when the inertia changes
 * by at most tol relative to the previous assignment.
 * On success *out_model is a new model (free with kmeans_free), and when
 * out_labels is not NULL it receives each row's cluster (n values, caller
 * allocated) for the final centroids. Uses one OpenBLAS thread per call
 * (parallelism is p->n_threads); the OpenBLAS thread count is restored after.
 */
int kmeans_fit(const struct kmeans_param *p, const double *x, size_t n, size_t d,
	       struct kmeans_model **out_model, int *out_labels, struct ltv_err *err);
/*
 * kmeans_fit without a standardised copy of the rows (n * d doubles, 64 MB at
 * 1,000,000 rows of 8 features): x is standardised in place and holds the
 * standardised rows afterwards (on failure, x may be changed too). The model
 * and labels are kmeans_fit's to the bit.
 */
int kmeans_fit_inplace(const struct kmeans_param *p, double *x, size_t n, size_t d,
		       struct kmeans_model **out_model, int *out_labels, struct ltv_err *err);

/*
 * Assigns n new rows (in x's original units) to their nearest centroid, ties
 * to the lowest cluster index. out_labels (n values) is required; out_dist2
 * (n values, squared standardised distance) may be NULL. Both caller
 * allocated. Fails on a non-finite value.
 */
int kmeans_predict(const struct kmeans_model *m, const double *x, size_t n, int n_threads,
		   int *out_labels, double *out_dist2, struct ltv_err *err);
/*
 * Rows per block of kmeans_fit's and kmeans_predict's distance products. A
 * caller that predicts its rows in slices starting at multiples of this
 * gets, row for row, the labels of one call over all the rows, to the bit
 * (the same blocks, so the same products).
 */
size_t kmeans_block_rows(const struct kmeans_model *m);

/*
 * Mean of values per cluster: out_means (m->k values, caller allocated).
 * A cluster with no rows gets the mean of all n values, so a prediction is
 * never NaN; out_counts (m->k values, may be NULL) tells the caller which
 * those were. Fails when a label is out of range or a value is not finite.
 */
int kmeans_cluster_means(const struct kmeans_model *m, const int *labels, size_t n,
			 const double *values, double *out_means, size_t *out_counts,
			 struct ltv_err *err);
/*
 * The same means as kmeans_cluster_means over the rows repeated: row i counts
 * repeats[i] times, each added in turn (so the sums are bit-identical to those
 * over the repeated rows, without holding them). Row numbers in errors count
 * the repeats.
 */
int kmeans_cluster_means_repeated(const struct kmeans_model *m, const int *labels,
				  const size_t *repeats, size_t n, const double *values,
				  double *out_means, size_t *out_counts, struct ltv_err *err);

/* Writes the k * d centroids in x's original units to out (caller allocated). */
void kmeans_centroids_unscaled(const struct kmeans_model *m, double *out);

/*
 * Serialises m (blob format "LTVKMNS1" version 1: u64 k, u64 d, f64 arrays
 * mean, std, centroids, f64 inertia, u64 n_iter). *out_buf is malloc'd; the
 * caller frees it.
 */
void kmeans_save(const struct kmeans_model *m, uint8_t **out_buf, size_t *out_len);
/* Reads a blob written by kmeans_save (borrowed); *out_model is new, free with kmeans_free. */
int kmeans_load(const void *buf, size_t len, struct kmeans_model **out_model,
		struct ltv_err *err);
/* Frees m and everything it owns; accepts NULL. */
void kmeans_free(struct kmeans_model *m);

#endif
