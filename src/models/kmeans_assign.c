/*
 * One pass of k-means' nearest-centroid assignment (kmeans_internal.h). A
 * row's nearest centroid is the argmin of ||c||^2 - 2 x.c, each dot product
 * summed feature by feature in order (nearest_rows), so a row's label does
 * not depend on the rows beside it; blocks are fixed by k, not by the thread
 * count, and per-block sums are left for the caller to merge in block order.
 * In a fit, Hamerly's bounds (row_bounds) let a row keep its label without
 * its distances when no other centroid can have come nearer, and a block
 * whose labels did not change keeps its sums and counts.
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
 * Folds x into the two least of a chain, *lo <= *hi. Each ?: is the form of
 * one SSE2 minsd or maxsd (a branch per value cost a mispredicted one).
 */
static inline void least_two_add(double x, double *lo, double *hi)
{
	const double above = *lo > x ? *lo : x;

	*hi = above < *hi ? above : *hi;
	*lo = x < *lo ? x : *lo;
}

/*
 * argmin_first(v, n), and into *out_second the least v[j] over j != that
 * index (+inf when n is 1): the second of v in order, which is the least
 * when it is there twice. Four chains of the two least side by side, then
 * joined; minima round nothing, so the order does not matter. One pass with
 * no data-dependent branch but the index's: the separate argmin and a second
 * scan with the argmin set aside were a fifth of a pruned fit.
 */
static size_t argmin_and_second(const double *v, size_t n, double *out_second)
{
	double lo0 = INFINITY, lo1 = INFINITY, lo2 = INFINITY, lo3 = INFINITY;
	double hi0 = INFINITY, hi1 = INFINITY, hi2 = INFINITY, hi3 = INFINITY;
	size_t j = 0, a = 0;

	for (; j + 4 <= n; j += 4) {
		least_two_add(v[j], &lo0, &hi0);
		least_two_add(v[j + 1], &lo1, &hi1);
		least_two_add(v[j + 2], &lo2, &hi2);
		least_two_add(v[j + 3], &lo3, &hi3);
	}
	for (; j < n; j++)
		least_two_add(v[j], &lo0, &hi0);
	least_two_add(lo1, &lo0, &hi0);
	least_two_add(lo3, &lo2, &hi2);
	least_two_add(lo2, &lo0, &hi0);
	hi1 = hi1 < hi3 ? hi1 : hi3;
	hi0 = hi0 < hi2 ? hi0 : hi2;
	hi0 = hi0 < hi1 ? hi0 : hi1;
	while (a < n && v[a] != lo0)
		a++;
	*out_second = hi0;
	/* every v NaN: none equals lo0 (still +inf); argmin_first's answer, 0 */
	return a < n ? a : 0;
}

/*
 * The rows of a block whose bounds cannot keep their label: their indexes
 * into out_search, their count returned. A row the bounds keep gets
 * prev[i] and its lower bound moved by the centroids' drift; the others
 * get the same, overwritten by their search. dd[i] is the row's squared
 * distance to prev[i]'s centroid as sq_dist computes it; a row is kept
 * when its lower bound and that distance (rounded outwards: sq_dist's
 * error is far below BOUND_SLACK) say prev[i] is still nearest by more than
 * twice the expanded distances' error: then the search cannot have chosen
 * another. No branch on the test: the searched rows (about one in seven
 * after the first updates at 1,000,000 users) are scattered, and a
 * mispredicted branch per one cost more than the test.
 */
static size_t rows_to_search(size_t rows, double cn, const int *prev, struct row_bounds *b,
			     size_t r0, const double *restrict dd, int *restrict best,
			     size_t *restrict out_search)
{
	size_t n_search = 0;

	for (size_t i = 0; i < rows; i++) {
		const size_t p = (size_t)prev[i];
		const double e = expanded_error(b->xnorm[r0 + i], cn);
		const double l = (b->lower[r0 + i] -
				  (p == b->drift_arg ? b->drift_next : b->drift_max)) *
				 (1 - BOUND_SLACK);
		/*
		 * l^2 against the squared distance, both rounded outwards;
		 * the products' own rounding is inside the slack as well.
		 */
		const int keeps = l > 0 && l * l * (1 - BOUND_SLACK) -
						   dd[i] * ((1 + BOUND_SLACK) * (1 + BOUND_SLACK)) >
					   2 * e;

		best[i] = (int)p;
		b->lower[r0 + i] = l;
		out_search[n_search] = i;
		n_search += !keeps;
	}
	return n_search;
}

/*
 * nearest_rows for the fit's rows r0.. with bounds. When the bounds are
 * valid, dd[i] is given as the row's squared distance to prev[i]'s centroid
 * (the last pass's label) and only the rows rows_to_search picks are
 * searched; else every row is, and its squared norm kept. A searched row
 * is searched as nearest_rows does and gets a new lower bound, and a row
 * whose label moves gets dd[i] to its new centroid, so dd is
 * centroid_dists of best on return. search is scratch for rows indexes.
 */
static void nearest_rows_bounded(const double *restrict z, size_t rows, size_t d, size_t k,
				 size_t kp, const double *restrict centroids,
				 const double *restrict ct,
				 const double *restrict cnorm, double cn, const int *prev,
				 struct row_bounds *b, size_t r0, double *restrict v,
				 int *restrict best, double *restrict dd, size_t *restrict search)
{
	size_t n_search = rows;

	if (b->valid) {
		n_search = rows_to_search(rows, cn, prev, b, r0, dd, best, search);
	} else {
		for (size_t i = 0; i < rows; i++) {
			const double *zi = z + i * d;
			double xn = 0.0;

			for (size_t t = 0; t < d; t++)
				xn += zi[t] * zi[t];
			b->xnorm[r0 + i] = xn;
			search[i] = i;
		}
	}
	for (size_t m = 0; m < n_search; m++) {
		const size_t i = search[m];
		const double *zi = z + i * d;
		const double xn = b->xnorm[r0 + i], e = expanded_error(xn, cn);
		double v2, second;
		size_t a;

		for (size_t j0 = 0; j0 < k; j0 += NEAR_LANES)
			dist_lanes(zi, d, ct + j0, kp, cnorm + j0, v + j0);
		a = argmin_and_second(v, k, &second);
		best[i] = (int)a;
		v2 = xn + second - 2 * e;
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

#define SUM_LANES 8 /* features one pass of add_sums_lanes keeps in registers */

/*
 * sums[near[i] * d + t0 + t] += z[i * d + t0 + t] for t < SUM_LANES, row by
 * row in order: each sum gets the additions it would one at a time, so the
 * same bits. While the rows' cluster does not change, its sums stay in
 * registers: rows one after another in the same cluster (a few clusters
 * hold most rows) went through memory, each add waiting on the last one's
 * store (at 1,000,000 users about a third of the pass function's own
 * samples).
 */
static void add_sums_lanes(const double *restrict z, size_t rows, size_t d, size_t t0,
			   const int *restrict near, double *restrict sums)
{
	double *s = sums + (size_t)near[0] * d + t0;
	dpair a0 = pair_at(s), a1 = pair_at(s + 2), a2 = pair_at(s + 4), a3 = pair_at(s + 6);

	for (size_t i = 0; i < rows; i++) {
		const double *zi = z + i * d + t0;
		double *at = sums + (size_t)near[i] * d + t0;

		if (at != s) {
			memcpy(s, &a0, sizeof(a0));
			memcpy(s + 2, &a1, sizeof(a1));
			memcpy(s + 4, &a2, sizeof(a2));
			memcpy(s + 6, &a3, sizeof(a3));
			s = at;
			a0 = pair_at(s);
			a1 = pair_at(s + 2);
			a2 = pair_at(s + 4);
			a3 = pair_at(s + 6);
		}
		a0 += pair_at(zi);
		a1 += pair_at(zi + 2);
		a2 += pair_at(zi + 4);
		a3 += pair_at(zi + 6);
	}
	memcpy(s, &a0, sizeof(a0));
	memcpy(s + 2, &a1, sizeof(a1));
	memcpy(s + 4, &a2, sizeof(a2));
	memcpy(s + 6, &a3, sizeof(a3));
}

/*
 * Each row's features added to its cluster's sums (k x d, zeroed by the
 * caller), row by row in order: SUM_LANES features at a time, the last
 * d % SUM_LANES one by one.
 */
static void add_block_sums(const double *restrict z, size_t rows, size_t d,
			   const int *restrict near, double *restrict sums)
{
	size_t t0 = 0;

	if (rows == 0)
		return;
	for (; t0 + SUM_LANES <= d; t0 += SUM_LANES)
		add_sums_lanes(z, rows, d, t0, near, sums);
	if (t0 == d)
		return;
	for (size_t i = 0; i < rows; i++) {
		const double *zi = z + i * d;
		double *s = sums + (size_t)near[i] * d;

		for (size_t t = t0; t < d; t++)
			s[t] += zi[t];
	}
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
		size_t *search = job->bounds ? xmalloc(bs * sizeof(size_t)) : NULL;
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
						     job->labels + r0, job->bounds, r0, v, near, dd,
						     search);
			} else {
				nearest_rows(z, rows, d, k, kp, ct, cnorm, v, near);
				centroid_dists(z, rows, d, job->centroids, near, dd);
			}
			/*
			 * The same rows in the same clusters as the last pass: its
			 * sums and counts, the same additions, are still there. At
			 * 1,000,000 users 28% of the fit's blocks (the rows whose
			 * cluster changes, 0.7% of a pass's, fall in most blocks
			 * of the early updates).
			 */
			const int kept = job->bounds && job->bounds->valid &&
					 memcmp(job->labels + r0, near, rows * sizeof(int)) == 0;

			if (sums && !kept) {
				memset(sums, 0, k * d * sizeof(double));
				add_block_sums(z, rows, d, near, sums);
			}
			if (counts && !kept) {
				memset(counts, 0, k * sizeof(size_t));
				for (size_t i = 0; i < rows; i++)
					counts[near[i]]++;
			}
			memcpy(job->labels + r0, near, rows * sizeof(int));
			if (job->dist2)
				memcpy(job->dist2 + r0, dd, rows * sizeof(double));
			for (size_t i = 0; i < rows; i++)
				inertia += dd[i];
			if (job->blk_inertia)
				job->blk_inertia[blk] = inertia;
		}
		free(zb);
		free(search);
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
