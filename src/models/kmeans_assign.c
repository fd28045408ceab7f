/*
 * One pass of k-means' nearest-centroid assignment (kmeans_internal.h). A
 * row's nearest centroid is the argmin of ||c||^2 - 2 x.c, each dot product
 * summed feature by feature in order (nearest_rows), so a row's label does
 * not depend on the rows beside it; blocks are fixed by k, not by the thread
 * count, and per-block sums are left for the caller to merge in block order.
 * In a fit, Hamerly's bounds (row_bounds) let a row keep its label without
 * its distances when no other centroid can have come nearer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kmeans_internal.h"

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

void kmeans_assign_rows(const struct assign_job *job)
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

void kmeans_bounds_init(struct row_bounds *b, size_t n)
{
	b->xnorm = xmalloc(n * sizeof(double));
	b->lower = xmalloc(n * sizeof(double));
	b->drift_max = b->drift_next = 0.0;
	b->drift_arg = 0;
	b->valid = 0;
}

void kmeans_bounds_release(struct row_bounds *b)
{
	free(b->xnorm);
	free(b->lower);
}

/* The two largest of how far each centroid moved from old to now, rounded up. */
void kmeans_bounds_drift(struct row_bounds *b, const double *old, const double *now, size_t k,
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
