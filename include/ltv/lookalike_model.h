/*
 * The lookalike model as it is stored and predicted with (method_lookalike, the
 * format of its blobs); pipeline/lookalike.c trains it, and its header comment
 * says how the model predicts. serving/lookalike_model.c holds the code.
 */
#ifndef LTV_LOOKALIKE_MODEL_H
#define LTV_LOOKALIKE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/age_means.h"
#include "ltv/kmeans.h"
#include "ltv/method.h"
#include "ltv/model_data.h"

#define LOOKALIKE_MAGIC "LTVLOOKA"
#define LOOKALIKE_VERSION 2
#define LOOKALIKE_BLOB "lookalike"
#define KMEANS_BLOB "kmeans"
#define LOOKALIKE_MAX_HORIZONS 64

struct lookalike_horizon {
	int64_t horizon;
	uint64_t n_train;   /* training rows behind the means; 0: horizon not trained */
	double *future;     /* k mean future revenues, non-decreasing over horizons */
	uint64_t *counts;   /* k training rows per cluster */
	/*
	 * lookalike.mean_by_age: per cluster, its mean future revenue per
	 * snapshot age (include/ltv/age_means.h; `future` where an age has too
	 * few rows); NULL: `future` at every age. The rows of a cluster are of
	 * every snapshot age, and their futures fall steeply with it: one mean
	 * serves a 60-day-old the futures of the cluster's 1-day rows.
	 */
	struct age_means *by_age;
};

/* A trained (or loaded) model: what method_lookalike's state points to. */
struct lookalike_state {
	struct kmeans_model *km;
	size_t n_features;
	char **features;    /* frame column names, in the model's column order */
	double *median;     /* per feature: the value a NaN becomes */
	struct lookalike_horizon *h;
	size_t n_h;
};

/* Frees a state and everything it owns; NULL is a no-op. */
void lookalike_state_free(struct lookalike_state *s);

/*
 * Blob "LTVLOOKA" version 1: u64 n_features, per feature str name, f64 array
 * medians (n_features), u64 n_horizons, per horizon: u64 horizon, u64
 * n_train, f64 array mean future revenue (k), u64 array counts as u64 k then k
 * values. Version 2 (written only when some horizon has means by age) adds
 * per horizon, after the counts, u32 0/1 and, when 1, per cluster its means
 * by age (age_means_put). The cluster model itself is blob "kmeans".
 */
void lookalike_save(const struct lookalike_state *s, uint8_t **out_buf, size_t *out_len);

/*
 * Row-major matrix of the model's features for rows, NaN replaced by the
 * median and every value by signed_log. LTV_ECONFIG names a missing column.
 */
int lookalike_build_matrix(const struct model_data *d, char *const *features, size_t n_f,
			   const double *median, const size_t *rows, size_t n, double **out_x,
			   struct ltv_err *err);

/*
 * The cluster of each of rows[0..n) (label, n values, caller allocated), on
 * n_threads: kmeans_predict's on lookalike_build_matrix's rows to the bit,
 * but the matrix is built a slice of rows at a time (about 16 MB), not for
 * all n at once (64 MB a million rows).
 */
int lookalike_labels(const struct lookalike_state *s, const struct model_data *d,
		     const size_t *rows, size_t n, int n_threads, int *label, struct ltv_err *err);

/* rev_window + the row's cluster's mean future revenue at horizon, on n_threads. */
int lookalike_predict_threads(const struct lookalike_state *s, const struct model_data *d,
			      const size_t *rows, size_t n, int64_t horizon, int n_threads,
			      double *out_ltv, struct ltv_err *err);

extern const struct method method_lookalike;

#endif
