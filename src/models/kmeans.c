/*
 * k-means for the lookalike stage: a user is worth the mean LTV of the users
 * nearest to it in standardised early-feature space. A row's nearest centroid
 * is the argmin of ||c||^2 - 2 x.c (||x||^2 dropped since it does not change
 * the argmin), each dot product summed feature by feature in order
 * (nearest_rows), so a row's label does not depend on the rows beside it.
 * Block boundaries do not depend on the thread count and partial sums are
 * merged serially in block order, which is what makes a fit bit-identical
 * across n_threads. The assignment pass itself (distances, Hamerly's bounds)
 * is in kmeans_assign.c; this file holds the scaler, the seeding, the fit's
 * loop, prediction and the saved form.
 */
#include <assert.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ltv/blob.h"
#include "ltv/kmeans.h"
#include "ltv/rng.h"
#include "kmeans_internal.h"

#define KMEANS_MAGIC "LTVKMNS1"
#define KMEANS_VERSION 1

/* Uniform in [0, 1) with 53 random bits of splitmix64: the same stream on every platform. */
static double rng_unit(uint64_t *state)
{
	return (double)(rng_splitmix64(state) >> 11) * 0x1.0p-53;
}

static size_t rng_index(uint64_t *state, size_t n)
{
	size_t i = (size_t)(rng_unit(state) * (double)n);

	return i < n ? i : n - 1;
}

static int check_finite(const double *x, size_t n, size_t d, struct ltv_err *err)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			if (!isfinite(x[i * d + j]))
				return err_set(err, LTV_EINVAL,
					       "kmeans: row %zu, feature %zu is not a finite number", i, j);
	return 0;
}

int scaler_fit(struct scaler *s, const double *x, size_t n, size_t d, struct ltv_err *err)
{
	int ret;

	assert(s && x && d > 0);
	s->d = 0;
	s->mean = NULL;
	s->std = NULL;
	if (n == 0)
		return err_set(err, LTV_EINVAL, "scaler: no rows to fit on");
	ret = check_finite(x, n, d, err);
	if (ret < 0)
		return ret;
	s->d = d;
	s->mean = xcalloc(d, sizeof(double));
	s->std = xcalloc(d, sizeof(double));
	/* Two passes: the one-pass formula loses digits when mean >> std. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			s->mean[j] += x[i * d + j];
	for (size_t j = 0; j < d; j++)
		s->mean[j] /= (double)n;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++) {
			const double t = x[i * d + j] - s->mean[j];
			s->std[j] += t * t;
		}
	for (size_t j = 0; j < d; j++) {
		s->std[j] = sqrt(s->std[j] / (double)n);
		if (!(s->std[j] > 0.0))
			s->std[j] = 1.0;
	}
	return 0;
}

void scaler_transform(const struct scaler *s, const double *x, size_t n, double *out)
{
	const size_t d = s->d;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			out[i * d + j] = (x[i * d + j] - s->mean[j]) / s->std[j];
}

void scaler_inverse(const struct scaler *s, const double *z, size_t n, double *out)
{
	const size_t d = s->d;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			out[i * d + j] = z[i * d + j] * s->std[j] + s->mean[j];
}

void scaler_release(struct scaler *s)
{
	if (!s)
		return;
	free(s->mean);
	free(s->std);
	s->mean = NULL;
	s->std = NULL;
	s->d = 0;
}

static void scaler_identity(struct scaler *s, size_t d)
{
	s->d = d;
	s->mean = xcalloc(d, sizeof(double));
	s->std = xmalloc(d * sizeof(double));
	for (size_t j = 0; j < d; j++)
		s->std[j] = 1.0;
}

void kmeans_param_init(struct kmeans_param *p)
{
	p->k = 8;
	p->max_iter = 100;
	p->tol = 1e-6;
	p->seed = 42;
	p->n_threads = 1;
	p->standardize = 1;
	p->init_centroids = NULL;
	p->prune = 1;
}

const char *kmeans_param_check(const struct kmeans_param *p)
{
	if (p->k < 1)
		return "k must be at least 1";
	if (p->k > INT_MAX)
		return "k is too large";
	if (p->max_iter < 1)
		return "max_iter must be at least 1";
	if (!isfinite(p->tol) || p->tol < 0.0)
		return "tol must be a finite number >= 0";
	if (p->n_threads < 1)
		return "n_threads must be at least 1";
	if (p->standardize != 0 && p->standardize != 1)
		return "standardize must be 0 or 1";
	if (p->prune != 0 && p->prune != 1)
		return "prune must be 0 or 1";
	return NULL;
}

/*
 * Refreshes min_d2[i] = min(min_d2[i], |z_i - c|^2) (or sets it when first)
 * and the per-block totals k-means++ samples from.
 */
static void update_min_dist(const double *z, size_t n, size_t d, const double *c, int first,
			    int n_threads, size_t bs, double *min_d2, double *blk_tot)
{
	const size_t n_blocks = (n + bs - 1) / bs;

#pragma omp parallel for num_threads(n_threads) schedule(static)
	for (size_t blk = 0; blk < n_blocks; blk++) {
		const size_t r0 = blk * bs;
		const size_t r1 = n - r0 < bs ? n : r0 + bs;
		double tot = 0.0;

		for (size_t i = r0; i < r1; i++) {
			const double dd = sq_dist(z + i * d, c, d);
			if (first || dd < min_d2[i])
				min_d2[i] = dd;
			tot += min_d2[i];
		}
		blk_tot[blk] = tot;
	}
}

/* Picks a row with probability proportional to min_d2, or uniformly when all are 0. */
static size_t sample_d2(const double *min_d2, const double *blk_tot, size_t n, size_t bs,
			uint64_t *rng)
{
	const size_t n_blocks = (n + bs - 1) / bs;
	double total = 0.0, cum = 0.0, u;
	size_t blk, last = n_blocks;

	for (blk = 0; blk < n_blocks; blk++)
		total += blk_tot[blk];
	if (!(total > 0.0))
		return rng_index(rng, n);
	u = rng_unit(rng) * total;
	for (blk = 0; blk < n_blocks; blk++) {
		if (blk_tot[blk] > 0.0)
			last = blk;
		if (cum + blk_tot[blk] > u)
			break;
		cum += blk_tot[blk];
	}
	if (blk == n_blocks) {
		/* u landed past the end through rounding: take the last block with mass. */
		blk = last;
		u = cum;
		cum = cum - blk_tot[blk];
	}
	const size_t r0 = blk * bs;
	const size_t r1 = n - r0 < bs ? n : r0 + bs;
	size_t pick = n;
	double acc = cum;

	for (size_t i = r0; i < r1; i++) {
		if (!(min_d2[i] > 0.0))
			continue;
		pick = i;
		acc += min_d2[i];
		if (acc > u)
			break;
	}
	assert(pick < n);
	return pick;
}

/* Mean squared distance of the rows from their mean: the data's scale. */
static double spread(const double *z, size_t n, size_t d)
{
	double *mean = xcalloc(d, sizeof(double));
	double ss = 0.0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < d; j++)
			mean[j] += z[i * d + j];
	for (size_t j = 0; j < d; j++)
		mean[j] /= (double)n;
	for (size_t i = 0; i < n; i++)
		ss += sq_dist(z + i * d, mean, d);
	free(mean);
	return ss / (double)n;
}

static void init_plusplus(const struct kmeans_param *p, const double *z, size_t n, size_t d,
			  double *centroids)
{
	const size_t bs = block_rows_for(p->k);
	const size_t n_blocks = (n + bs - 1) / bs;
	double *min_d2 = xmalloc(n * sizeof(double));
	double *blk_tot = xmalloc(n_blocks * sizeof(double));
	uint64_t rng = p->seed;
	size_t pick = rng_index(&rng, n);

	memcpy(centroids, z + pick * d, d * sizeof(double));
	for (size_t j = 1; j < p->k; j++) {
		update_min_dist(z, n, d, centroids + (j - 1) * d, j == 1, p->n_threads, bs,
				min_d2, blk_tot);
		pick = sample_d2(min_d2, blk_tot, n, bs, &rng);
		memcpy(centroids + j * d, z + pick * d, d * sizeof(double));
	}
	free(blk_tot);
	free(min_d2);
}

/*
 * New centroids from the merged block sums; an empty cluster moves to the
 * row farthest from its centroid, unless every row is within on_centroid
 * (rounding) of it.
 */
static void update_centroids(size_t k, size_t d, size_t n_blocks, const double *blk_sums,
			    const size_t *blk_counts, const double *z, size_t n, double on_centroid,
			    double *dist2, double *centroids)
{
	double *sums = xcalloc(k * d, sizeof(double));
	size_t *counts = xcalloc(k, sizeof(size_t));

	for (size_t blk = 0; blk < n_blocks; blk++) {
		for (size_t t = 0; t < k * d; t++)
			sums[t] += blk_sums[blk * k * d + t];
		for (size_t j = 0; j < k; j++)
			counts[j] += blk_counts[blk * k + j];
	}
	for (size_t j = 0; j < k; j++) {
		if (counts[j] == 0)
			continue;
		for (size_t t = 0; t < d; t++)
			centroids[j * d + t] = sums[j * d + t] / (double)counts[j];
	}
	for (size_t j = 0; j < k; j++) {
		size_t far = n;
		double far_d2 = on_centroid;

		if (counts[j] != 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (dist2[i] > far_d2) {
				far_d2 = dist2[i];
				far = i;
			}
		if (far == n)
			continue; /* every row is on its centroid: nothing to gain */
		memcpy(centroids + j * d, z + far * d, d * sizeof(double));
		dist2[far] = 0.0; /* a second empty cluster takes the next farthest row */
	}
	free(counts);
	free(sums);
}

/*
 * kmeans_fit and kmeans_fit_inplace: z_in is NULL to standardise into a copy
 * of x, or x itself to standardise in place (the caller's rows are then z).
 */
static int fit(const struct kmeans_param *p, const double *x, double *z_in, size_t n, size_t d,
	       struct kmeans_model **out_model, int *out_labels, struct ltv_err *err)
{
	struct kmeans_model *m = NULL;
	double *z = NULL, *dist2 = NULL, *blk_sums = NULL, *blk_inertia = NULL, *old = NULL;
	struct row_bounds bounds = { 0 };
	size_t *blk_counts = NULL;
	int *labels = NULL;
	const char *why;
	const int blas_threads = openblas_get_num_threads();
	int ret;

	assert(p && x && out_model);
	*out_model = NULL;
	why = kmeans_param_check(p);
	if (why)
		return err_set(err, LTV_EINVAL, "kmeans: %s", why);
	if (d < 1 || d > INT_MAX / 2)
		return err_set(err, LTV_EINVAL, "kmeans: feature count %zu is out of range", d);
	if (n < p->k)
		return err_set(err, LTV_EINVAL,
			       "kmeans: %zu rows cannot make %zu clusters; lower k or add rows", n,
			       p->k);
	if (p->k > SIZE_MAX / d / sizeof(double))
		return err_set(err, LTV_EINVAL, "kmeans: k x d is too large");

	openblas_set_num_threads(1);
	m = xcalloc(1, sizeof(*m));
	m->k = p->k;
	m->d = d;
	if (p->standardize) {
		ret = scaler_fit(&m->scaler, x, n, d, err);
		if (ret < 0)
			goto out;
	} else {
		ret = check_finite(x, n, d, err);
		if (ret < 0)
			goto out;
		scaler_identity(&m->scaler, d);
	}
	/* A copy is 64 MB at 1,000,000 rows, written at once; in place, none. */
	z = z_in ? z_in : xmalloc_huge(n * d * sizeof(double));
	scaler_transform(&m->scaler, x, n, z);

	m->centroids = xmalloc(p->k * d * sizeof(double));
	if (p->init_centroids) {
		ret = check_finite(p->init_centroids, p->k, d, err);
		if (ret < 0) {
			err_prefix(err, "init_centroids");
			goto out;
		}
		scaler_transform(&m->scaler, p->init_centroids, p->k, m->centroids);
	} else {
		init_plusplus(p, z, n, d, m->centroids);
	}

	const size_t bs = block_rows_for(p->k);
	const size_t n_blocks = (n + bs - 1) / bs;
	labels = out_labels ? out_labels : xmalloc(n * sizeof(int));
	dist2 = xmalloc(n * sizeof(double));
	blk_sums = xmalloc(n_blocks * p->k * d * sizeof(double));
	blk_counts = xmalloc(n_blocks * p->k * sizeof(size_t));
	blk_inertia = xmalloc(n_blocks * sizeof(double));
	if (p->prune) {
		/* 16 bytes a row (squared norm, lower bound): 16 MB at the lookalike's 1,000,000 rows. */
		kmeans_bounds_init(&bounds, n);
		old = xmalloc(p->k * d * sizeof(double));
	}
	const struct assign_job job = {
		.x = z, .sc = NULL, .n = n, .d = d, .k = p->k, .centroids = m->centroids,
		.n_threads = p->n_threads, .labels = labels, .dist2 = dist2,
		.blk_sums = blk_sums, .blk_counts = blk_counts, .blk_inertia = blk_inertia,
		.bounds = p->prune ? &bounds : NULL,
	};
	/*
	 * A centroid that is the mean of equal rows need not equal them to the
	 * last bit; distances below this (relative to the data's spread) are
	 * rounding, not a row worth reseeding to.
	 */
	const double on_centroid = 1e-20 * (spread(z, n, d) + DBL_MIN);
	double prev = 0.0;
	size_t iter;

	/* Assign, then update: the labels and inertia kept always match the final centroids. */
	for (iter = 0;; iter++) {
		double inertia = 0.0;

		kmeans_assign_rows(&job);
		bounds.valid = 1;
		for (size_t blk = 0; blk < n_blocks; blk++)
			inertia += blk_inertia[blk];
		m->inertia = inertia;
		if (iter > 0 && (fabs(prev - inertia) <= p->tol * prev ||
				 inertia <= (double)n * on_centroid))
			break;
		if (iter == p->max_iter)
			break;
		if (old)
			memcpy(old, m->centroids, p->k * d * sizeof(double));
		update_centroids(p->k, d, n_blocks, blk_sums, blk_counts, z, n, on_centroid, dist2,
				 m->centroids);
		if (old)
			kmeans_bounds_drift(&bounds, old, m->centroids, p->k, d);
		prev = inertia;
	}
	m->n_iter = iter;
	*out_model = m;
	m = NULL;
	ret = 0;
out:
	openblas_set_num_threads(blas_threads);
	kmeans_free(m);
	kmeans_bounds_release(&bounds);
	free(old);
	free(blk_inertia);
	free(blk_counts);
	free(blk_sums);
	free(dist2);
	if (labels != out_labels)
		free(labels);
	if (z != z_in)
		free(z);
	return ret;
}

int kmeans_fit(const struct kmeans_param *p, const double *x, size_t n, size_t d,
	       struct kmeans_model **out_model, int *out_labels, struct ltv_err *err)
{
	return fit(p, x, NULL, n, d, out_model, out_labels, err);
}

int kmeans_fit_inplace(const struct kmeans_param *p, double *x, size_t n, size_t d,
		       struct kmeans_model **out_model, int *out_labels, struct ltv_err *err)
{
	return fit(p, x, x, n, d, out_model, out_labels, err);
}

size_t kmeans_block_rows(const struct kmeans_model *m)
{
	return block_rows_for(m->k);
}

int kmeans_predict(const struct kmeans_model *m, const double *x, size_t n, int n_threads,
		   int *out_labels, double *out_dist2, struct ltv_err *err)
{
	int blas_threads;
	int ret;

	assert(m && out_labels && (x || n == 0));
	if (n_threads < 1)
		return err_set(err, LTV_EINVAL, "kmeans: n_threads must be at least 1");
	if (n == 0)
		return 0;
	ret = check_finite(x, n, m->d, err);
	if (ret < 0)
		return ret;
	const struct assign_job job = {
		.x = x, .sc = &m->scaler, .n = n, .d = m->d, .k = m->k,
		.centroids = m->centroids, .n_threads = n_threads, .labels = out_labels,
		.dist2 = out_dist2,
	};
	blas_threads = openblas_get_num_threads();
	openblas_set_num_threads(1);
	kmeans_assign_rows(&job);
	openblas_set_num_threads(blas_threads);
	return 0;
}

int kmeans_cluster_means(const struct kmeans_model *m, const int *labels, size_t n,
			 const double *values, double *out_means, size_t *out_counts,
			 struct ltv_err *err)
{
	return kmeans_cluster_means_repeated(m, labels, NULL, n, values, out_means, out_counts, err);
}

int kmeans_cluster_means_repeated(const struct kmeans_model *m, const int *labels,
				  const size_t *repeats, size_t n, const double *values,
				  double *out_means, size_t *out_counts, struct ltv_err *err)
{
	size_t *counts = NULL, at = 0;
	double total = 0.0;
	int ret = 0;

	assert(m && out_means && ((labels && values) || n == 0));
	counts = xcalloc(m->k, sizeof(size_t));
	for (size_t j = 0; j < m->k; j++)
		out_means[j] = 0.0;
	for (size_t i = 0; i < n; i++) {
		for (size_t r = repeats ? repeats[i] : 1; r > 0; r--, at++) {
			if (labels[i] < 0 || (size_t)labels[i] >= m->k) {
				ret = err_set(err, LTV_EINVAL,
					      "kmeans: row %zu has label %d; the model has %zu clusters",
					      at, labels[i], m->k);
				goto out;
			}
			if (!isfinite(values[i])) {
				ret = err_set(err, LTV_EINVAL, "kmeans: row %zu value is not finite", at);
				goto out;
			}
			out_means[labels[i]] += values[i];
			counts[labels[i]]++;
			total += values[i];
		}
	}
	for (size_t j = 0; j < m->k; j++)
		out_means[j] = counts[j] ? out_means[j] / (double)counts[j]
					 : (at ? total / (double)at : 0.0);
	if (out_counts)
		memcpy(out_counts, counts, m->k * sizeof(size_t));
out:
	free(counts);
	return ret;
}

void kmeans_centroids_unscaled(const struct kmeans_model *m, double *out)
{
	scaler_inverse(&m->scaler, m->centroids, m->k, out);
}

void kmeans_save(const struct kmeans_model *m, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, KMEANS_MAGIC, KMEANS_VERSION);
	blob_put_u64(&w, m->k);
	blob_put_u64(&w, m->d);
	blob_put_f64_array(&w, m->scaler.mean, m->d);
	blob_put_f64_array(&w, m->scaler.std, m->d);
	blob_put_f64_array(&w, m->centroids, m->k * m->d);
	blob_put_f64(&w, m->inertia);
	blob_put_u64(&w, m->n_iter);
	*out_buf = blob_writer_detach(&w, out_len);
}

int kmeans_load(const void *buf, size_t len, struct kmeans_model **out_model,
		struct ltv_err *err)
{
	struct blob_reader r;
	struct kmeans_model *m = NULL;
	uint32_t version;
	uint64_t k, d;
	size_t n_mean = 0, n_std = 0, n_cent = 0;
	int ret;

	*out_model = NULL;
	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, KMEANS_MAGIC, KMEANS_VERSION, &version, err);
	if (ret < 0)
		return ret;
	k = blob_get_u64(&r);
	d = blob_get_u64(&r);
	ret = blob_reader_status(&r, "kmeans", err);
	if (ret < 0)
		return ret;
	if (k < 1 || d < 1 || k > INT_MAX || d > INT_MAX / 2)
		return err_set(err, LTV_EINVAL, "kmeans: blob has k %llu, d %llu; both must be >= 1",
			       (unsigned long long)k, (unsigned long long)d);
	m = xcalloc(1, sizeof(*m));
	m->k = (size_t)k;
	m->d = (size_t)d;
	m->scaler.d = m->d;
	if (blob_get_f64_array(&r, &m->scaler.mean, &n_mean) < 0 ||
	    blob_get_f64_array(&r, &m->scaler.std, &n_std) < 0 ||
	    blob_get_f64_array(&r, &m->centroids, &n_cent) < 0) {
		ret = blob_reader_status(&r, "kmeans", err);
		goto out;
	}
	m->inertia = blob_get_f64(&r);
	m->n_iter = (size_t)blob_get_u64(&r);
	ret = blob_reader_status(&r, "kmeans", err);
	if (ret < 0)
		goto out;
	if (n_mean != m->d || n_std != m->d || n_cent != m->k * m->d) {
		ret = err_set(err, LTV_EINVAL, "kmeans: blob array sizes do not match k %zu, d %zu",
			      m->k, m->d);
		goto out;
	}
	for (size_t j = 0; j < m->d; j++)
		if (!isfinite(m->scaler.mean[j]) || !isfinite(m->scaler.std[j]) ||
		    !(m->scaler.std[j] > 0.0)) {
			ret = err_set(err, LTV_EINVAL, "kmeans: blob scaler feature %zu is invalid", j);
			goto out;
		}
	ret = check_finite(m->centroids, m->k, m->d, err);
	if (ret < 0)
		goto out;
	*out_model = m;
	m = NULL;
out:
	kmeans_free(m);
	return ret;
}

void kmeans_free(struct kmeans_model *m)
{
	if (!m)
		return;
	scaler_release(&m->scaler);
	free(m->centroids);
	free(m);
}
