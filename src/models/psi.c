/*
 * Population stability index (definitions, bins and the epsilon rule in
 * include/ltv/psi.h). The reference is sorted once for its quantile cut
 * points; every row is then placed by binary search on the cuts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/psi.h"

static int cmp_double(const void *pa, const void *pb)
{
	const double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

size_t psi_bin(const struct psi_result *r, double v)
{
	size_t lo = 0, hi;

	if (isnan(v))
		return r->n_bins;
	/* The first cut >= v; bin n_bins-1 when every cut is below v. */
	hi = r->n_bins - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= r->cut[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void fit_cuts(const double *ref, size_t n_ref, int n_bins, struct psi_result *out)
{
	double *sorted = xmalloc((n_ref ? n_ref : 1) * sizeof(double));
	size_t m = 0;

	for (size_t i = 0; i < n_ref; i++)
		if (!isnan(ref[i]))
			sorted[m++] = ref[i];
	out->n_bins = 1;
	if (m > 0) {
		qsort(sorted, m, sizeof(double), cmp_double);
		for (int k = 1; k < n_bins; k++) {
			/* ceil(k m / B), 1-based rank of the lower k/B quantile */
			size_t rank = ((size_t)k * m + (size_t)n_bins - 1) / (size_t)n_bins;
			double c = sorted[rank ? rank - 1 : 0];

			if (out->n_bins > 1 && c == out->cut[out->n_bins - 2])
				continue;
			/* A cut at the maximum leaves an empty bin above it that merging cannot see. */
			if (c >= sorted[m - 1] && out->n_bins > 1)
				continue;
			out->cut[out->n_bins - 1] = c;
			out->n_bins++;
		}
	}
	free(sorted);
}

int psi_compute(const double *ref, size_t n_ref, const double *cur, size_t n_cur, int n_bins,
		struct psi_result *out, struct ltv_err *err)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (n_bins < 2 || n_bins > PSI_MAX_BINS)
		return err_set(err, LTV_EINVAL, "psi: %d bins asked; use 2 to %d", n_bins, PSI_MAX_BINS);
	if (n_ref == 0 || n_cur == 0)
		return err_set(err, LTV_EINVAL, "psi: the %s sample is empty",
			       n_ref == 0 ? "reference" : "current");
	fit_cuts(ref, n_ref, n_bins, out);
	out->n_ref = n_ref;
	out->n_cur = n_cur;
	for (size_t i = 0; i < n_ref; i++)
		out->ref_share[psi_bin(out, ref[i])] += 1;
	for (size_t i = 0; i < n_cur; i++)
		out->cur_share[psi_bin(out, cur[i])] += 1;
	for (size_t j = 0; j <= out->n_bins; j++) {
		double r, c;

		out->ref_share[j] /= (double)n_ref;
		out->cur_share[j] /= (double)n_cur;
		if (out->ref_share[j] == 0 && out->cur_share[j] == 0)
			continue;
		r = fmax(out->ref_share[j], PSI_EPSILON);
		c = fmax(out->cur_share[j], PSI_EPSILON);
		sum += (c - r) * log(c / r);
	}
	out->psi = sum;
	return 0;
}

enum psi_level psi_level(double psi, double warn, double alert)
{
	if (psi >= alert)
		return PSI_ALERT;
	return psi >= warn ? PSI_WARN : PSI_OK;
}

const char *psi_level_name(enum psi_level level)
{
	static const char *const names[] = { "ok", "warn", "alert" };

	return names[level];
}

const char *psi_thresholds_check(double warn, double alert)
{
	if (!(warn > 0))
		return "the warn threshold must be above 0";
	if (!(alert > warn))
		return "the alert threshold must be above the warn threshold";
	return NULL;
}
