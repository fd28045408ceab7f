/*
 * Split conformal prediction bands (contract in include/ltv/conformal.h).
 * Quantiles are the empirical ones of type 1 (the smallest value with at
 * least the asked share at or below it), on sorted copies; nothing here
 * touches files or the registry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/conformal.h"

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

static void bucket_band(const struct pair *rows, size_t n, double level, double *out_lo,
			double *out_hi)
{
	double *y = xmalloc((n ? n : 1) * sizeof(double));

	for (size_t i = 0; i < n; i++)
		y[i] = rows[i].y;
	qsort(y, n, sizeof(double), compare_double);
	*out_lo = quantile(y, n, (1 - level) / 2);
	*out_hi = quantile(y, n, (1 + level) / 2);
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

static void fit_groups(const double *group_pred, const double *group_actual, size_t n_groups,
		       double level, double k_noise, struct conformal *out)
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
		size_t rank = (size_t)ceil((double)(k + 1) * level), j = 0;

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
		out->group_q = ratio[(rank > k ? k : rank) - 1];
	}
	free(ratio);
}

void conformal_group(const struct conformal *c, double f, double *out_lo, double *out_hi)
{
	double half;

	if (isnan(c->group_q) || c->n_buckets == 0) {
		*out_lo = *out_hi = NAN;
		return;
	}
	f = fmax(f, 0);
	half = c->group_q * sqrt(c->group_tau2 * f * f + c->group_k * f);
	*out_lo = fmax(f - half, 0);
	*out_hi = f + half;
}

int conformal_fit(const double *pred, const double *actual, size_t n, size_t n_buckets,
		  size_t min_rows, double level, const double *group_pred,
		  const double *group_actual, size_t n_groups, struct conformal *out,
		  struct ltv_err *err)
{
	struct pair *rows;
	size_t per, start = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0 || n_buckets == 0 || n_buckets > CONFORMAL_MAX_BUCKETS || !(level > 0 && level < 1))
		return err_set(err, LTV_EINVAL, "conformal: need rows, 1 to %d buckets and a level in "
			       "(0, 1)", CONFORMAL_MAX_BUCKETS);
	rows = xmalloc(n * sizeof(*rows));
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct pair){ pred[i], actual[i] };
	qsort(rows, n, sizeof(*rows), compare_pair);
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
	fit_groups(group_pred, group_actual, n_groups, level, noise_per_unit(pred, actual, n), out);
	free(rows);
	return 0;
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
	blob_put_header(&w, CONFORMAL_MAGIC, 2);
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
	return blob_writer_detach(&w, out_len);
}

int conformal_load(const void *data, size_t len, struct conformal *out, struct ltv_err *err)
{
	struct blob_reader r;
	double *upper = NULL, *lo = NULL, *hi = NULL;
	size_t n1 = 0, n2 = 0, n3 = 0;
	uint32_t version;
	int ret;

	memset(out, 0, sizeof(*out));
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, CONFORMAL_MAGIC, 2, &version, err);
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
	ret = blob_reader_status(&r, "interval blob", err);
out:
	free(upper);
	free(lo);
	free(hi);
	return ret;
}
