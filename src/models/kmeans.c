/*
 * k-means for the lookalike stage: a user is worth the mean LTV of the users
 * nearest to it in standardised early-feature space. A row's nearest centroid
 * is the argmin of ||c||^2 - 2 x.c (||x||^2 dropped since it does not change
 * the argmin), each dot product summed feature by feature in order
 * (nearest_rows), so a row's label does not depend on the rows beside it.
 * Block boundaries do not depend on the thread count and partial sums are
 * merged serially in block order, which is what makes a fit bit-identical
 * across n_threads.
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

#define KMEANS_MAGIC "LTVKMNS1"
#define KMEANS_VERSION 1

/*
 * Rows per block: big enough for dgemm to run at speed, small enough that a
 * thread's block x k distance matrix stays near 32 MB even for large k.
 */
static size_t block_rows_for(size_t k)
{
	size_t rows = ((size_t)1 << 22) / k;

	if (rows > 4096)
		rows = 4096;
	if (rows < 64)
		rows = 64;
	return rows;
}

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

static double sq_dist(const double *a, const double *b, size_t d)
{
	double s = 0.0;

	for (size_t j = 0; j < d; j++) {
		const double t = a[j] - b[j];
		s += t * t;
	}
	return s;
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
	double *blk_sums;    /* n_blocks * k * d, or NULL */
	size_t *blk_counts;  /* n_blocks * k, or NULL */
	double *blk_inertia; /* n_blocks, or NULL */
	struct row_bounds *bounds; /* the fit's, or NULL: x is the fit's rows, labels the last pass's */
};

/*
 * Two doubles, added and multiplied lane by lane (a GCC and Clang vector
 * extension; each lane rounds as the scalar operation would, and C11 mode
 * contracts no multiply-add into a fused one).
 */
typedef double dpair __attribute__((vector_size(2 * sizeof(double))));

#define NEAR_LANES 8 /* centroids one pass of dot_lanes keeps in registers */

static dpair pair_at(const double *p)
{
	dpair v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * -2 zi.c_j + ||c_j||^2 into v[j] for the NEAR_LANES centroids whose
 * transposed features start at ct (row stride kp) and norms at cnorm, each
 * dot summed in feature order. Four named accumulators, not an array: the
 * compiler keeps them in registers.
 */
static void dist_lanes(const double *restrict zi, size_t d, const double *restrict ct, size_t kp,
		       const double *restrict cnorm, double *restrict v)
{
	const dpair two = { -2.0, -2.0 };
	dpair a0 = zi[0] * pair_at(ct), a1 = zi[0] * pair_at(ct + 2);
	dpair a2 = zi[0] * pair_at(ct + 4), a3 = zi[0] * pair_at(ct + 6);

	for (size_t t = 1; t < d; t++) {
		const double zt = zi[t];
		const double *c = ct + t * kp;

		a0 += zt * pair_at(c);
		a1 += zt * pair_at(c + 2);
		a2 += zt * pair_at(c + 4);
		a3 += zt * pair_at(c + 6);
	}
	a0 = two * a0 + pair_at(cnorm);
	a1 = two * a1 + pair_at(cnorm + 2);
	a2 = two * a2 + pair_at(cnorm + 4);
	a3 = two * a3 + pair_at(cnorm + 6);
	memcpy(v, &a0, sizeof(a0));
	memcpy(v + 2, &a1, sizeof(a1));
	memcpy(v + 4, &a2, sizeof(a2));
	memcpy(v + 6, &a3, sizeof(a3));
}

/*
 * The first j < n with the least v[j] (v holds no NaN: rows and centroids
 * are finite). Runs of 4 are scanned apart and joined in order, a later run
 * winning only when strictly less: the j of one scan from 0, on a shorter
 * chain of dependent comparisons.
 */
static size_t argmin_first(const double *v, size_t n)
{
	size_t b = 0;

	for (size_t r0 = 0; r0 < n; r0 += 4) {
		const size_t r1 = n - r0 < 4 ? n : r0 + 4;
		size_t rb = r0;

		for (size_t j = r0 + 1; j < r1; j++)
			if (v[j] < v[rb])
				rb = j;
		if (v[rb] < v[b])
			b = rb;
	}
	return b;
}

/*
 * Nearest centroid of each of rows rows of z: best[i] the first j with the
 * least ||c_j||^2 - 2 z_i.c_j. ct is the centroids transposed (d x kp, the
 * columns past k zero), so a row's dot products advance together, feature
 * by feature. Each dot is summed in feature order and then doubled: the
 * values OpenBLAS's dgemm (alpha -2, beta 0) gave on this code's earlier
 * path with the PRESCOTT kernel it picks on this project's machines, for
 * every row of a whole group of 4 (a call's last 1-3 rows it sums in
 * another order, which can move a last bit), so the labels are the same.
 * The product was half the stage, mostly packing, zeroing and a block x k
 * matrix written and read back, none of which a 16 x 8 product needs.
 */
static void nearest_rows(const double *restrict z, size_t rows, size_t d, size_t k, size_t kp,
			 const double *restrict ct, const double *restrict cnorm,
			 double *restrict v, int *restrict best)
{
	for (size_t i = 0; i < rows; i++) {
		const double *zi = z + i * d;

		for (size_t j0 = 0; j0 < k; j0 += NEAR_LANES)
			dist_lanes(zi, d, ct + j0, kp, cnorm + j0, v + j0);
		best[i] = (int)argmin_first(v, k);
	}
}

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

/* Outward rounding of a bound: far above this code's relative errors (about 1e-15). */
#define BOUND_SLACK 1e-12

/*
 * A bound on how far the expanded ||c||^2 - 2 x.c can be from its exact
 * value for a row of squared norm xn against centroids of squared norm at
 * most cn: (3 d + 1) units in the last place of (|x| + |c|)^2 <= 2 (xn + cn)
 * is the dot products' and the norms' rounding (Cauchy-Schwarz bounds the
 * sum of |x_t c_t|). BOUND_SLACK covers that for d up to 2,000; at the
 * lookalike's 8 features with three orders of magnitude to spare.
 */
static double expanded_error(double xn, double cn)
{
	return BOUND_SLACK * 2 * (xn + cn);
}

/*
 * The least v[j] over j < n but a (+inf when there is none), in four chains
 * side by side: v[a] is set to +inf for the scan and put back. A minimum
 * rounds nothing, so the order of the scan does not change it.
 */
static double min_but(double *v, size_t n, size_t a)
{
	const double keep = v[a];
	double m0 = INFINITY, m1 = INFINITY, m2 = INFINITY, m3 = INFINITY;
	size_t j = 0;

	v[a] = INFINITY;
	for (; j + 4 <= n; j += 4) {
		m0 = v[j] < m0 ? v[j] : m0;
		m1 = v[j + 1] < m1 ? v[j + 1] : m1;
		m2 = v[j + 2] < m2 ? v[j + 2] : m2;
		m3 = v[j + 3] < m3 ? v[j + 3] : m3;
	}
	for (; j < n; j++)
		m0 = v[j] < m0 ? v[j] : m0;
	v[a] = keep;
	m0 = m1 < m0 ? m1 : m0;
	m2 = m3 < m2 ? m3 : m2;
	return m2 < m0 ? m2 : m0;
}

/*
 * nearest_rows for the fit's rows r0.. with bounds. dd[i] is given as the
 * row's squared distance to prev[i]'s centroid (the last pass's label) as
 * sq_dist computes it, when the bounds are valid; a row skips the search
 * when its lower bound, moved by the centroids' drift, and that distance
 * (rounded outwards: sq_dist's error is far below BOUND_SLACK) say prev[i]
 * is still nearest by more than twice the expanded distances' error; then
 * the search cannot have chosen another. The others are searched as
 * nearest_rows does and get a new lower bound, and a row whose label moves
 * gets dd[i] to its new centroid, so dd is centroid_dists of best on return.
 */
static void nearest_rows_bounded(const double *restrict z, size_t rows, size_t d, size_t k,
				 size_t kp, const double *restrict centroids,
				 const double *restrict ct,
				 const double *restrict cnorm, double cn, const int *prev,
				 struct row_bounds *b, size_t r0, double *restrict v,
				 int *restrict best, double *restrict dd)
{
	for (size_t i = 0; i < rows; i++) {
		const double *zi = z + i * d;
		double xn = 0.0, v2, e;
		size_t a;

		if (b->valid) {
			xn = b->xnorm[r0 + i];
		} else {
			for (size_t t = 0; t < d; t++)
				xn += zi[t] * zi[t];
			b->xnorm[r0 + i] = xn;
		}
		e = expanded_error(xn, cn);

		if (b->valid) {
			const size_t p = (size_t)prev[i];
			const double l = (b->lower[r0 + i] -
					  (p == b->drift_arg ? b->drift_next : b->drift_max)) *
					 (1 - BOUND_SLACK);

			/*
			 * l^2 against the squared distance, both rounded
			 * outwards; the products' own rounding is inside the
			 * slack as well.
			 */
			if (l > 0 && l * l * (1 - BOUND_SLACK) -
					     dd[i] * ((1 + BOUND_SLACK) * (1 + BOUND_SLACK)) > 2 * e) {
				best[i] = (int)p;
				b->lower[r0 + i] = l;
				continue;
			}
		}
		for (size_t j0 = 0; j0 < k; j0 += NEAR_LANES)
			dist_lanes(zi, d, ct + j0, kp, cnorm + j0, v + j0);
		a = argmin_first(v, k);
		best[i] = (int)a;
		v2 = xn + min_but(v, k, a) - 2 * e;
		b->lower[r0 + i] = v2 > 0 ? sqrt(v2) * (1 - BOUND_SLACK) : 0.0;
		if (!b->valid || a != (size_t)prev[i])
			dd[i] = sq_dist(zi, centroids + a * d, d);
	}
}

/*
 * dd[i] = sq_dist of row i of z to its centroid near[i], four rows at a
 * time: their sums are four independent chains the CPU runs side by side
 * (one row's is a chain of d dependent adds), each summed in feature order
 * from 0 as sq_dist sums it, so the bits are sq_dist's.
 */
static void centroid_dists(const double *restrict z, size_t rows, size_t d,
			   const double *restrict centroids, const int *restrict near,
			   double *restrict dd)
{
	size_t i = 0;

	for (; i + 4 <= rows; i += 4) {
		const double *z0 = z + i * d, *z1 = z0 + d, *z2 = z1 + d, *z3 = z2 + d;
		const double *c0 = centroids + (size_t)near[i] * d;
		const double *c1 = centroids + (size_t)near[i + 1] * d;
		const double *c2 = centroids + (size_t)near[i + 2] * d;
		const double *c3 = centroids + (size_t)near[i + 3] * d;
		double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;

		for (size_t t = 0; t < d; t++) {
			const double t0 = z0[t] - c0[t], t1 = z1[t] - c1[t];
			const double t2 = z2[t] - c2[t], t3 = z3[t] - c3[t];

			s0 += t0 * t0;
			s1 += t1 * t1;
			s2 += t2 * t2;
			s3 += t3 * t3;
		}
		dd[i] = s0;
		dd[i + 1] = s1;
		dd[i + 2] = s2;
		dd[i + 3] = s3;
	}
	for (; i < rows; i++)
		dd[i] = sq_dist(z + i * d, centroids + (size_t)near[i] * d, d);
}

static void assign_rows(const struct assign_job *job)
{
	const size_t n = job->n, d = job->d, k = job->k;
	const size_t bs = block_rows_for(k);
	const size_t n_blocks = (n + bs - 1) / bs;
	/* Transposed, and padded with zero centroids to whole passes of dist_lanes. */
	const size_t kp = (k + NEAR_LANES - 1) / NEAR_LANES * NEAR_LANES;
	double *cnorm = xcalloc(kp, sizeof(double));
	double *ct = xcalloc(d * kp, sizeof(double));
	double cn = 0.0; /* the largest squared centroid norm, for nearest_rows_bounded */

	for (size_t j = 0; j < k; j++) {
		cnorm[j] = cblas_ddot((int)d, job->centroids + j * d, 1, job->centroids + j * d, 1);
		cn = cnorm[j] > cn ? cnorm[j] : cn;
		for (size_t t = 0; t < d; t++)
			ct[t * kp + j] = job->centroids[j * d + t];
	}

#pragma omp parallel num_threads(job->n_threads)
	{
		double *v = xmalloc(kp * sizeof(double));
		int *near = xmalloc(bs * sizeof(int));
		double *dd = xmalloc(bs * sizeof(double));
		double *zb = job->sc ? xmalloc(bs * d * sizeof(double)) : NULL;

#pragma omp for schedule(static)
		for (size_t blk = 0; blk < n_blocks; blk++) {
			const size_t r0 = blk * bs;
			const size_t rows = n - r0 < bs ? n - r0 : bs;
			const double *z = job->x + r0 * d;
			double *sums = job->blk_sums ? job->blk_sums + blk * k * d : NULL;
			size_t *counts = job->blk_counts ? job->blk_counts + blk * k : NULL;
			double inertia = 0.0;

			if (job->sc) {
				scaler_transform(job->sc, z, rows, zb);
				z = zb;
			}
			/* The expanded form cancels badly near a centroid; dd is the exact one. */
			if (job->bounds) {
				if (job->bounds->valid)
					centroid_dists(z, rows, d, job->centroids, job->labels + r0, dd);
				nearest_rows_bounded(z, rows, d, k, kp, job->centroids, ct, cnorm, cn,
						     job->labels + r0, job->bounds, r0, v, near, dd);
			} else {
				nearest_rows(z, rows, d, k, kp, ct, cnorm, v, near);
				centroid_dists(z, rows, d, job->centroids, near, dd);
			}
			if (sums)
				memset(sums, 0, k * d * sizeof(double));
			if (counts)
				memset(counts, 0, k * sizeof(size_t));
			memcpy(job->labels + r0, near, rows * sizeof(int));
			if (job->dist2)
				memcpy(job->dist2 + r0, dd, rows * sizeof(double));
			for (size_t i = 0; i < rows; i++) {
				const double *zi = z + i * d;
				const size_t best = (size_t)near[i];

				inertia += dd[i];
				if (sums) {
					double *s = sums + best * d;
					for (size_t j = 0; j < d; j++)
						s[j] += zi[j];
				}
				if (counts)
					counts[best]++;
			}
			if (job->blk_inertia)
				job->blk_inertia[blk] = inertia;
		}
		free(zb);
		free(dd);
		free(near);
		free(v);
	}
	free(ct);
	free(cnorm);
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

static void bounds_init(struct row_bounds *b, size_t n)
{
	b->xnorm = xmalloc(n * sizeof(double));
	b->lower = xmalloc(n * sizeof(double));
	b->drift_max = b->drift_next = 0.0;
	b->drift_arg = 0;
	b->valid = 0;
}

static void bounds_release(struct row_bounds *b)
{
	free(b->xnorm);
	free(b->lower);
}

/* The two largest of how far each centroid moved from old to now, rounded up. */
static void bounds_drift(struct row_bounds *b, const double *old, const double *now, size_t k,
			 size_t d)
{
	b->drift_max = b->drift_next = 0.0;
	b->drift_arg = 0;
	for (size_t j = 0; j < k; j++) {
		const double m = sqrt(sq_dist(old + j * d, now + j * d, d)) * (1 + BOUND_SLACK);

		if (m > b->drift_max) {
			b->drift_next = b->drift_max;
			b->drift_max = m;
			b->drift_arg = j;
		} else if (m > b->drift_next) {
			b->drift_next = m;
		}
	}
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
		bounds_init(&bounds, n);
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

		assign_rows(&job);
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
			bounds_drift(&bounds, old, m->centroids, p->k, d);
		prev = inertia;
	}
	m->n_iter = iter;
	*out_model = m;
	m = NULL;
	ret = 0;
out:
	openblas_set_num_threads(blas_threads);
	kmeans_free(m);
	bounds_release(&bounds);
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
	assign_rows(&job);
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
