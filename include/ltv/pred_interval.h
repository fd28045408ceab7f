/*
 * Prediction intervals for per-user counts (src/models/pred_interval.c):
 * given each user's predicted mean number of transactions over a horizon
 * (for example bgnbd_expected or pareto_nbd_conditional_expected) and one
 * dispersion for everybody, the central interval that holds the user's
 * actual count with probability at least `level` (0.8 for an 80% interval)
 * when the count is negative binomial with that mean:
 *   Var = mean + mean^2 / size,
 * size = +infinity meaning Poisson. The dispersion is the caller's to
 * estimate (e.g. by matching Var on a holdout period); nothing here fits it.
 *
 * Pure model code: arrays in, numbers out, no I/O, no GSL, thread-safe.
 */
#ifndef LTV_PRED_INTERVAL_H
#define LTV_PRED_INTERVAL_H

#include <stddef.h>

#include "ltv/common.h"

/*
 * For i < n: out_lo[i] and out_hi[i] are the (1 - level) / 2 and
 * (1 + level) / 2 quantiles of NB(mean[i], size), each the smallest whole
 * number q with P(Y <= q) >= that probability, so
 * P(out_lo[i] <= Y <= out_hi[i]) >= level (counts are discrete; it is
 * usually more). mean[i] = 0 gives [0, 0]. The caller owns all arrays
 * (n doubles each; out_lo and out_hi may not alias mean). Fails with
 * LTV_EINVAL, naming the row, when a mean is not a finite number in
 * [0, 1e7], size is not > 0 (+INFINITY allowed) or level is not in (0, 1).
 */
int pred_interval_nbinom(const double *mean, size_t n, double size, double level,
			 double *out_lo, double *out_hi, struct ltv_err *err);

#endif
