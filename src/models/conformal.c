/*
 * Split conformal prediction bands (contract in include/ltv/conformal.h).
 * Quantiles are the empirical ones of type 1 (the smallest value with at
 * least the asked share at or below it), on sorted copies; nothing here
 * touches files or the registry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "ltv/blob.h"
#include "ltv/conformal.h"
#include "ltv/metrics.h"
#include "ltv/rng.h"

#define CONFORMAL_MAGIC "LTVCONF1"

struct pair {
	double p, y;
};

static int compare_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	return (x->p > y->p) - (x->p < y->p);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Type-1 quantile q of sorted v[0..n). */
static double quantile(const double *v, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);

	return v[k == 0 ? 0 : k > n ? n - 1 : k - 1];
}

/*
 * Index of the upper end of a band of sorted y[0..n) whose lower end is lo:
 * the smallest index with at least ceil(level n) rows from lo up to it, so
 * the band holds `level` of the rows. With continuous outcomes lo is the
 * (1 - level) / 2 quantile and this is the (1 + level) / 2 one, the central
 * band. Revenue to come has a point mass at 0: where at least (1 - level) / 2
 * of the rows are 0, lo is 0, the band holds the whole mass, and its upper
 * end is the `level` quantile, not the (1 + level) / 2 one (which held
 * level + (1 - level) / 2 of the rows: 90% for an 80% band). Where more than
 * `level` of the rows are 0 the band is [0, 0] and holds that share: any band
 * containing 0 holds at least it, one leaving 0 out at most 1 minus it.
 */
static size_t upper_index(const double *y, size_t n, double lo, double level)
{
	size_t below = 0, need = (size_t)ceil(level * (double)n - 1e-9), k;

	while (below < n && y[below] < lo)
		below++;
	k = below + (need ? need : 1) - 1;
	return k < n ? k : n - 1;
}

static void bucket_band(const struct pair *rows, size_t n, double level, double *out_lo,
			double *out_hi)
{
	double *y = xmalloc((n ? n : 1) * sizeof(double));

	for (size_t i = 0; i < n; i++)
		y[i] = rows[i].y;
	qsort(y, n, sizeof(double), compare_double);
	*out_lo = quantile(y, n, (1 - level) / 2);
	*out_hi = y[upper_index(y, n, *out_lo, level)];
	free(y);
}

/* k of the header: the users' variance per unit of prediction. */
static double noise_per_unit(const double *pred, const double *actual, size_t n)
{
	double sq = 0, sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(pred[i] >= 0) || !isfinite(actual[i]))
			continue;
		sq += (actual[i] - pred[i]) * (actual[i] - pred[i]);
		sum += pred[i];
	}
	return sum > 0 ? sq / sum : 0;
}

/*
 * The conformal rank among k sorted scores: the finite-sample rule
 * ceil((u + 1) level) of u exchangeable units, u the independent units
 * behind the groups (n_units; 0: the groups themselves), as a share of the k
 * groups, so that u = k gives ceil((k + 1) level). Calibrate's groups are
 * validation campaigns at several snapshot ages: the ages of one campaign
 * share its users and miss together, so the groups say no more about a new
 * campaign than the campaigns do, and the rule's margin above level is that
 * of the campaigns (with 5 campaigns, all of them: the largest score).
 */
static size_t group_rank(size_t k, size_t n_units, double level)
{
	const size_t u = n_units > 0 && n_units < k ? n_units : k;
	const double m = fmin(ceil((double)(u + 1) * level), (double)u);
	const size_t rank = (size_t)ceil(m * (double)k / (double)u - 1e-9);

	return rank < 1 ? 1 : rank > k ? k : rank;
}

static void fit_groups(const double *group_pred, const double *group_actual, size_t n_groups,
		       size_t n_units, double level, double k_noise, struct conformal *out)
{
	double *ratio = xmalloc((n_groups ? n_groups : 1) * sizeof(double)), excess = 0;
	size_t k = 0;

	for (size_t g = 0; g < n_groups; g++)
		if (group_pred[g] > 0 && isfinite(group_actual[g])) {
			const double rel = (group_actual[g] - group_pred[g]) / group_pred[g];

			ratio[k++] = group_actual[g] / group_pred[g];
			excess += rel * rel - k_noise / group_pred[g];
		}
	out->n_groups = k;
	out->group_lo = out->group_hi = NAN;
	out->group_tau2 = out->group_k = out->group_q = NAN;
	if (k >= CONFORMAL_MIN_GROUPS) {
		const size_t rank = group_rank(k, n_units, level);
		size_t j = 0;

		qsort(ratio, k, sizeof(double), compare_double);
		out->group_lo = quantile(ratio, k, (1 - level) / 2);
		out->group_hi = quantile(ratio, k, (1 + level) / 2);
		out->group_tau2 = fmax(excess / (double)k, 0);
		out->group_k = k_noise;
		/* The scores |Y - P| / sd(P), reusing ratio[]; their conformal quantile. */
		for (size_t g = 0; g < n_groups; g++)
			if (group_pred[g] > 0 && isfinite(group_actual[g])) {
				const double f = group_pred[g];
				const double sd = sqrt(out->group_tau2 * f * f + k_noise * f);

				ratio[j++] = sd > 0 ? fabs(group_actual[g] - f) / sd : 0;
			}
		qsort(ratio, k, sizeof(double), compare_double);
		out->group_q = ratio[rank - 1];
	}
	free(ratio);
}

/* Set size of grid point i. */
static size_t boot_size(size_t i)
{
	return (size_t)llround(CONFORMAL_BOOT_MIN_ROWS * pow(2, (double)i / 2));
}

/*
 * The bootstrap grid of the header: for each grid size n, CONFORMAL_BOOT_
 * SETS sets of n rows drawn with replacement from the rows with a prediction
 * and an outcome; R = sum (y - p) / sum p of each set. A fixed seed: the
 * same rows give the same band (artefacts are reproducible). Leaves
 * boot_grid 0 when the rows say nothing (none, or no error at all).
 */
static void fit_boot_grid(const double *pred, const double *actual, size_t n, double level,
			  struct conformal *out)
{
	double *p = xmalloc((n ? n : 1) * sizeof(double)), *e = xmalloc((n ? n : 1) * sizeof(double));
	double r[CONFORMAL_BOOT_SETS], sum_p = 0;
	size_t m = 0;
	struct rng g;

	out->boot_grid = 0;
	for (size_t i = 0; i < n; i++)
		if (pred[i] >= 0 && isfinite(pred[i]) && isfinite(actual[i])) {
			p[m] = pred[i];
			e[m++] = actual[i] - pred[i];
			sum_p += pred[i];
		}
	if (m == 0 || !(sum_p > 0) || m > UINT32_MAX)
		goto out;
	out->boot_mean_p = sum_p / (double)m;
	rng_seed(&g, 0x636f6e66, 0);
	for (size_t i = 0; i < CONFORMAL_BOOT_GRID; i++) {
		const size_t size = boot_size(i);
		double sq = 0;

		for (size_t b = 0; b < CONFORMAL_BOOT_SETS; b++) {
			double sp = 0, se = 0;

			for (size_t j = 0; j < size; j++) {
				const uint32_t k = rng_below(&g, (uint32_t)m);

				sp += p[k];
				se += e[k];
			}
			r[b] = sp > 0 ? se / sp : 0;
			sq += r[b] * r[b];
		}
		qsort(r, CONFORMAL_BOOT_SETS, sizeof(double), compare_double);
		out->boot_var[i] = (double)size * sq / CONFORMAL_BOOT_SETS;
		/*
		 * Quantiles measured from the prediction; one on the wrong side of it
		 * (a skew that puts 90% of sets below their prediction) is floored
		 * at a thousandth of the standard deviation, so scores stay finite.
		 */
		out->boot_up[i] = sqrt((double)size) * fmax(quantile(r, CONFORMAL_BOOT_SETS, (1 + level) / 2),
							    1e-3 * sqrt(sq / CONFORMAL_BOOT_SETS));
		out->boot_down[i] = sqrt((double)size) * fmax(-quantile(r, CONFORMAL_BOOT_SETS, (1 - level) / 2),
							      1e-3 * sqrt(sq / CONFORMAL_BOOT_SETS));
		if (!(out->boot_var[i] > 0))
			goto out;
	}
	out->boot_grid = CONFORMAL_BOOT_GRID;
out:
	free(p);
	free(e);
}

/*
 * The relative noise of a group predicted f: up and down quantiles and
 * E R^2 of a set of f / mean p rows, interpolated in log n between grid
 * points (of sqrt(n) times each, which varies slowly) and scaled by the
 * central limit outside the grid.
 */
static void boot_noise(const struct conformal *c, double f, double *up, double *down, double *var)
{
	const double n = fmax(f / c->boot_mean_p, 1e-9);
	const double x = fmin(fmax(2 * log2(n / CONFORMAL_BOOT_MIN_ROWS), 0), CONFORMAL_BOOT_GRID - 1);
	const size_t i = (size_t)x < CONFORMAL_BOOT_GRID - 1 ? (size_t)x : CONFORMAL_BOOT_GRID - 2;
	const double w = x - (double)i;

	*up = ((1 - w) * c->boot_up[i] + w * c->boot_up[i + 1]) / sqrt(n);
	*down = ((1 - w) * c->boot_down[i] + w * c->boot_down[i + 1]) / sqrt(n);
	*var = ((1 - w) * c->boot_var[i] + w * c->boot_var[i + 1]) / n;
}

/* The asymmetric scale of a group predicted f: bootstrap noise and the between-group term. */
static void boot_scale(const struct conformal *c, double f, double tau2, double *up, double *down)
{
	const double z = gsl_cdf_ugaussian_Pinv((1 + c->level) / 2);
	double var;

	boot_noise(c, f, up, down, &var);
	*up = sqrt(*up * *up + z * z * tau2);
	*down = sqrt(*down * *down + z * z * tau2);
}

/*
 * tau_b^2 and q_b of the header, from the held-out groups, by one rank: the
 * smallest band of the family (q_b <= 1 with no between-group term, then
 * q_b = 1 and tau_b^2 growing) that holds ceil((G + 1) level) groups. Group
 * g is inside at q_b = 1 once z^2 tau^2 >= rel^2 - Q^2 (Q its side's
 * bootstrap quantile), so tau_b^2 is that rank's smallest such tau^2; when
 * it is 0, enough groups are inside the resampled noise alone, and q_b is
 * the rank's score |rel| / Q instead. A moment estimate (mean rel^2 less
 * the bootstrap's E R^2) was tried first: one whale in a small group moved
 * it from 0 to above 1 (simulated, true tau^2 0.01), a rank does not.
 */
static void fit_boot_groups(const double *group_pred, const double *group_actual, size_t n_groups,
			    size_t n_units, struct conformal *out)
{
	const double z = gsl_cdf_ugaussian_Pinv((1 + out->level) / 2);
	double *need = xmalloc((n_groups ? n_groups : 1) * sizeof(double));
	double *score = xmalloc((n_groups ? n_groups : 1) * sizeof(double));
	size_t k = 0, rank;

	out->boot_tau2 = out->boot_q = NAN;
	if (out->boot_grid == 0)
		goto out;
	for (size_t g = 0; g < n_groups; g++)
		if (group_pred[g] > 0 && isfinite(group_actual[g])) {
			const double rel = (group_actual[g] - group_pred[g]) / group_pred[g];
			double up, down, var, side;

			boot_noise(out, group_pred[g], &up, &down, &var);
			side = rel >= 0 ? up : down;
			need[k] = fmax(rel * rel - side * side, 0) / (z * z);
			score[k++] = fabs(rel) / side;
		}
	if (k < CONFORMAL_MIN_GROUPS)
		goto out;
	rank = group_rank(k, n_units, out->level);
	qsort(need, k, sizeof(double), compare_double);
	qsort(score, k, sizeof(double), compare_double);
	out->boot_tau2 = need[rank - 1];
	out->boot_q = out->boot_tau2 > 0 ? 1 : score[rank - 1];
out:
	free(need);
	free(score);
}

void conformal_group(const struct conformal *c, double f, double *out_lo, double *out_hi)
{
	double half, up, down;

	f = fmax(f, 0);
	if (c->n_buckets > 0 && c->boot_grid > 0 && !isnan(c->boot_q)) {
		if (f == 0) {
			*out_lo = *out_hi = 0;
			return;
		}
		boot_scale(c, f, c->boot_tau2, &up, &down);
		*out_lo = fmax(f * (1 - c->boot_q * down), 0);
		*out_hi = f * (1 + c->boot_q * up);
		return;
	}
	if (isnan(c->group_q) || c->n_buckets == 0) {
		*out_lo = *out_hi = NAN;
		return;
	}
	half = c->group_q * sqrt(c->group_tau2 * f * f + c->group_k * f);
	*out_lo = fmax(f - half, 0);
	*out_hi = f + half;
}

/*
 * rows[0..n) = (pred[i], actual[i]) by prediction, ascending, ties in row
 * order (which never changes a band: ties never straddle a bucket), from the
 * metrics' radix sort: a qsort of every validation row of a horizon was most
 * of the fit. With a NaN prediction (no order) the qsort, as before.
 */
static void pairs_by_prediction(const double *pred, const double *actual, size_t n,
				struct pair *rows)
{
	size_t *order;
	int has_nan = 0;

	for (size_t i = 0; i < n && !has_nan; i++)
		has_nan = isnan(pred[i]);
	if (has_nan) {
		for (size_t i = 0; i < n; i++)
			rows[i] = (struct pair){ pred[i], actual[i] };
		qsort(rows, n, sizeof(*rows), compare_pair);
		return;
	}
	order = xmalloc((n ? n : 1) * sizeof(size_t));
	metrics_sort_order(pred, n, 0, order);
	for (size_t k = 0; k < n; k++)
		rows[k] = (struct pair){ pred[order[k]], actual[order[k]] };
	free(order);
}

int conformal_fit(const double *pred, const double *actual, size_t n, size_t n_buckets,
		  size_t min_rows, double level, const double *group_pred,
		  const double *group_actual, size_t n_groups, size_t n_units, struct conformal *out,
		  struct ltv_err *err)
{
	struct pair *rows;
	size_t per, start = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n_buckets == 0 || n_buckets > CONFORMAL_MAX_BUCKETS || !(level > 0 && level < 1))
		return err_set(err, LTV_EINVAL, "conformal: need rows, 1 to %d buckets and a level in "
			       "(0, 1)", CONFORMAL_MAX_BUCKETS);
	rows = xmalloc(n * sizeof(*rows));
	pairs_by_prediction(pred, actual, n, rows);
	if (min_rows > 0 && n / min_rows < n_buckets)
		n_buckets = n / min_rows ? n / min_rows : 1;
	per = n / n_buckets;
	out->level = level;
	/* Buckets of equal size by prediction; ties never straddle a boundary. */
	while (start < n && out->n_buckets < n_buckets) {
		/* Ties may have stretched earlier buckets: never past the last row. */
		size_t end = out->n_buckets + 1 == n_buckets || start + per > n ? n : start + per;

		while (end < n && rows[end].p == rows[end - 1].p)
			end++;
		bucket_band(rows + start, end - start, level, &out->lo[out->n_buckets],
			    &out->hi[out->n_buckets]);
		out->upper[out->n_buckets++] = end < n ? rows[end - 1].p : INFINITY;
		start = end;
	}
	out->upper[out->n_buckets - 1] = INFINITY;
	fit_groups(group_pred, group_actual, n_groups, n_units, level, noise_per_unit(pred, actual, n),
		   out);
	out->boot_grid = 0;
	out->boot_tau2 = out->boot_q = NAN;
	free(rows);
	return 0;
}

void conformal_fit_bootstrap(const double *pred, const double *actual, size_t n,
			     const double *group_pred, const double *group_actual, size_t n_groups,
			     size_t n_units, struct conformal *out)
{
	out->boot_grid = 0;
	out->boot_tau2 = out->boot_q = NAN;
	if (out->n_groups < CONFORMAL_MIN_GROUPS || !(out->level > 0 && out->level < 1))
		return;
	fit_boot_grid(pred, actual, n, out->level, out);
	fit_boot_groups(group_pred, group_actual, n_groups, n_units, out);
	if (isnan(out->boot_q))
		out->boot_grid = 0;
}

void conformal_row(const struct conformal *c, double p, double *out_lo, double *out_hi)
{
	size_t b = 0;

	while (b + 1 < c->n_buckets && p > c->upper[b])
		b++;
	*out_lo = c->n_buckets ? c->lo[b] : NAN;
	*out_hi = c->n_buckets ? c->hi[b] : NAN;
}

uint8_t *conformal_save(const struct conformal *c, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	/* Without a bootstrap band, version 2 as before: the same bytes as before it existed. */
	blob_put_header(&w, CONFORMAL_MAGIC, c->boot_grid ? 3 : 2);
	blob_put_f64(&w, c->level);
	blob_put_f64_array(&w, c->upper, c->n_buckets);
	blob_put_f64_array(&w, c->lo, c->n_buckets);
	blob_put_f64_array(&w, c->hi, c->n_buckets);
	blob_put_f64(&w, c->group_lo);
	blob_put_f64(&w, c->group_hi);
	blob_put_u64(&w, c->n_groups);
	blob_put_f64(&w, c->group_tau2);
	blob_put_f64(&w, c->group_k);
	blob_put_f64(&w, c->group_q);
	if (!c->boot_grid)
		return blob_writer_detach(&w, out_len);
	blob_put_u64(&w, c->boot_grid);
	blob_put_f64(&w, c->boot_mean_p);
	blob_put_f64_array(&w, c->boot_up, c->boot_grid);
	blob_put_f64_array(&w, c->boot_down, c->boot_grid);
	blob_put_f64_array(&w, c->boot_var, c->boot_grid);
	blob_put_f64(&w, c->boot_tau2);
	blob_put_f64(&w, c->boot_q);
	return blob_writer_detach(&w, out_len);
}

int conformal_load(const void *data, size_t len, struct conformal *out, struct ltv_err *err)
{
	struct blob_reader r;
	double *upper = NULL, *lo = NULL, *hi = NULL, *bu = NULL, *bd = NULL, *bv = NULL;
	size_t n1 = 0, n2 = 0, n3 = 0;
	uint32_t version;
	int ret;

	memset(out, 0, sizeof(*out));
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, CONFORMAL_MAGIC, 3, &version, err);
	if (ret < 0)
		return ret;
	out->level = blob_get_f64(&r);
	if (blob_get_f64_array(&r, &upper, &n1) < 0 || blob_get_f64_array(&r, &lo, &n2) < 0 ||
	    blob_get_f64_array(&r, &hi, &n3) < 0 || n1 != n2 || n2 != n3 || n1 == 0 ||
	    n1 > CONFORMAL_MAX_BUCKETS) {
		ret = err_set(err, LTV_EINVAL, "interval blob: truncated or corrupt");
		goto out;
	}
	out->n_buckets = n1;
	memcpy(out->upper, upper, n1 * sizeof(double));
	memcpy(out->lo, lo, n1 * sizeof(double));
	memcpy(out->hi, hi, n1 * sizeof(double));
	out->group_lo = blob_get_f64(&r);
	out->group_hi = blob_get_f64(&r);
	out->n_groups = (size_t)blob_get_u64(&r);
	/* Version 1 had the ratio band only: no group interval. */
	out->group_tau2 = version >= 2 ? blob_get_f64(&r) : NAN;
	out->group_k = version >= 2 ? blob_get_f64(&r) : NAN;
	out->group_q = version >= 2 ? blob_get_f64(&r) : NAN;
	/* Version 2 had no bootstrap band: the k F band serves. */
	out->boot_tau2 = out->boot_q = NAN;
	if (version >= 3) {
		const size_t grid = (size_t)blob_get_u64(&r);
		size_t m1 = 0, m2 = 0, m3 = 0;

		out->boot_mean_p = blob_get_f64(&r);
		if (blob_get_f64_array(&r, &bu, &m1) < 0 || blob_get_f64_array(&r, &bd, &m2) < 0 ||
		    blob_get_f64_array(&r, &bv, &m3) < 0 || m1 != grid || m2 != grid || m3 != grid ||
		    (grid != 0 && grid != CONFORMAL_BOOT_GRID) || (grid && !(out->boot_mean_p > 0))) {
			ret = err_set(err, LTV_EINVAL, "interval blob: truncated or corrupt");
			goto out;
		}
		out->boot_grid = grid;
		if (grid) {
			memcpy(out->boot_up, bu, grid * sizeof(double));
			memcpy(out->boot_down, bd, grid * sizeof(double));
			memcpy(out->boot_var, bv, grid * sizeof(double));
		}
		out->boot_tau2 = blob_get_f64(&r);
		out->boot_q = blob_get_f64(&r);
	}
	ret = blob_reader_status(&r, "interval blob", err);
out:
	free(upper);
	free(lo);
	free(hi);
	free(bu);
	free(bd);
	free(bv);
	return ret;
}
