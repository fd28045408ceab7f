/*
 * Prediction intervals by split conformal calibration: on held-out rows with
 * a prediction p and an outcome y (here, revenue still to come), rows are cut
 * into buckets by p (quantiles of p), and each bucket keeps the lower and
 * upper quantiles of y. A new row gets its bucket's [lo, hi]: on rows like
 * the held-out ones, the share of outcomes inside is the level asked for,
 * whatever the shape of y's distribution (most users' future revenue is 0,
 * a few are whales, which no normal or log-normal form fits).
 *
 * Groups (campaigns) get an interval from two sources of error, both
 * measured on held-out groups:
 *   - the users' own noise, which shrinks as a campaign grows: with k =
 *     sum (y - p)^2 / sum p over held-out rows (variance proportional to the
 *     prediction, as for counts), a campaign whose revenue to come is
 *     predicted F varies by k F;
 *   - the error a whole campaign makes, which does not shrink with its size:
 *     tau^2 = mean over held-out groups of ((Y - P) / P)^2 - k / P (floored
 *     at 0; measured from 1, not from the mean ratio, so a systematic bias
 *     counts as error).
 * A campaign's interval is F +- t sqrt(tau^2 F^2 + k F), t being Student's
 * t quantile at (1 + level) / 2 with G - 1 degrees of freedom for G
 * held-out groups: with 5 groups the spread itself is uncertain and t is
 * 1.53 at 80%, not 1.28. Why not the quantiles of the held-out ratios Y / P
 * (the first version): a campaign unlike the few held-out ones, or smaller
 * than them, fell outside almost always (CDNOW: 0 of 7 and 1 of 4 campaigns
 * inside the 80% band from 5 held-out weeks).
 */
#ifndef LTV_CONFORMAL_H
#define LTV_CONFORMAL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define CONFORMAL_MAX_BUCKETS 64

struct conformal {
	double level;                          /* e.g. 0.8 */
	size_t n_buckets;
	double upper[CONFORMAL_MAX_BUCKETS];   /* bucket b holds p <= upper[b] (last: +inf) */
	double lo[CONFORMAL_MAX_BUCKETS];
	double hi[CONFORMAL_MAX_BUCKETS];
	double group_lo, group_hi;             /* held-out ratios' quantiles (reported only) */
	double group_tau2, group_k, group_t;   /* the group interval; NaN when not fitted */
	size_t n_groups;                       /* held-out groups behind the group interval */
};

/*
 * Fits the user bands on rows (pred[i], actual[i]) with up to n_buckets
 * buckets of at least min_rows rows each, at `level` (0 < level < 1), and the
 * group band on (group_pred[k], group_actual[k]) for k < n_groups (groups
 * with group_pred <= 0 are skipped; fewer than 5 leave it NaN). LTV_EINVAL on
 * bad arguments or no rows.
 */
int conformal_fit(const double *pred, const double *actual, size_t n, size_t n_buckets,
		  size_t min_rows, double level, const double *group_pred,
		  const double *group_actual, size_t n_groups, struct conformal *out,
		  struct ltv_err *err);
/*
 * The interval of a group whose predicted sum is f >= 0 (never below 0);
 * NaN when no group interval was fitted.
 */
void conformal_group(const struct conformal *c, double f, double *out_lo, double *out_hi);
/* The band [*out_lo, *out_hi] of a row with prediction p. */
void conformal_row(const struct conformal *c, double p, double *out_lo, double *out_hi);
/* Serialised as a blob (caller frees) and back. */
uint8_t *conformal_save(const struct conformal *c, size_t *out_len);
int conformal_load(const void *data, size_t len, struct conformal *out, struct ltv_err *err);

#endif
