/*
 * Central prediction intervals for counts under a negative binomial (or, at
 * infinite size, Poisson) with a given mean: the quantiles come from the
 * probability mass function summed upwards from 0 in log space, so a large
 * mean whose P(Y = 0) underflows still gives exact quantiles. The work per
 * user is proportional to the upper quantile, which is why the mean is
 * capped.
 */
#include <assert.h>
#include <math.h>

#include "ltv/pred_interval.h"

#define MEAN_MAX 1e7

static double log_add(double u, double v)
{
	const double top = u > v ? u : v;

	if (top == -INFINITY)
		return top;
	return top + log1p(exp((u > v ? v : u) - top));
}

/*
 * Smallest q with P(Y <= q) >= p_lo into *out_lo, likewise p_hi (>= p_lo)
 * into *out_hi, Y ~ NB(mean, size) or Poisson(mean) when size is infinite.
 * ln P(Y = q + 1) = ln P(Y = q) + ln((q + size) / (q + 1)) + ln(1 - prob)
 * (Poisson: + ln(mean / (q + 1))).
 */
static void quantiles(double mean, double size, double p_lo, double p_hi, double *out_lo,
		      double *out_hi)
{
	const int poisson = isinf(size);
	const double log_lo = log(p_lo), log_hi = log(p_hi);
	/* ln P(Y = 0) and the ratio's constant part. */
	const double log_p0 = poisson ? -mean : -size * log1p(mean / size);
	const double log_step = poisson ? log(mean) : log(mean) - log(mean + size);
	double log_pmf = log_p0, log_cdf = log_p0, q = 0;
	int have_lo = 0;

	for (;;) {
		if (!have_lo && log_cdf >= log_lo) {
			*out_lo = q;
			have_lo = 1;
		}
		/*
		 * Rounding can leave the summed CDF a few ulps short of p_hi
		 * once the terms stop adding; the tail beyond mean + 50 sd is
		 * far below that, so stop there too.
		 */
		if (log_cdf >= log_hi
		    || q > mean + 50 * sqrt(mean + (poisson ? 0 : mean * mean / size)) + 50) {
			if (!have_lo)
				*out_lo = q;
			*out_hi = q;
			return;
		}
		log_pmf += log_step + (poisson ? 0 : log(q + size)) - log(q + 1);
		q++;
		log_cdf = log_add(log_cdf, log_pmf);
	}
}

int pred_interval_nbinom(const double *mean, size_t n, double size, double level,
			 double *out_lo, double *out_hi, struct ltv_err *err)
{
	assert((mean && out_lo && out_hi) || n == 0);
	if (!(size > 0))
		return err_set(err, LTV_EINVAL,
			       "pred_interval: size %g must be > 0 (infinity for Poisson)", size);
	if (!(level > 0 && level < 1))
		return err_set(err, LTV_EINVAL, "pred_interval: level %g must lie in (0, 1)", level);
	for (size_t i = 0; i < n; i++)
		if (!(mean[i] >= 0 && mean[i] <= MEAN_MAX))
			return err_set(err, LTV_EINVAL,
				       "pred_interval: row %zu: mean %g is not a number in [0, %g]",
				       i, mean[i], MEAN_MAX);
	for (size_t i = 0; i < n; i++) {
		if (mean[i] == 0) {
			out_lo[i] = out_hi[i] = 0;
			continue;
		}
		quantiles(mean[i], size, (1 - level) / 2, (1 + level) / 2, &out_lo[i], &out_hi[i]);
	}
	return 0;
}
