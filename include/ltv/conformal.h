/*
 * Prediction intervals by split conformal calibration: on held-out rows with
 * a prediction p and an outcome y (here, revenue still to come), rows are cut
 * into buckets by p (quantiles of p), and each bucket keeps the lower and
 * upper quantiles of y. A new row gets its bucket's [lo, hi]: on rows like
 * the held-out ones, the share of outcomes inside is the level asked for,
 * whatever the shape of y's distribution (most users' future revenue is 0,
 * a few are whales, which no normal or log-normal form fits).
 *
 * Groups (campaigns) get an interval shaped by two sources of error and
 * scaled by held-out groups (normalized split conformal; calibrate's groups
 * are a validation campaign at one snapshot age, pipeline/calibrate.c says
 * why):
 *   - the users' own noise, which shrinks, relatively, as a campaign grows:
 *     with k = sum (y - p)^2 / sum p over held-out rows (variance
 *     proportional to the prediction, as for counts), a campaign whose
 *     revenue to come is predicted F varies by k F;
 *   - the error a whole campaign makes, which does not shrink with its size:
 *     tau^2 = mean over held-out groups of ((Y - P) / P)^2 - k / P, floored
 *     at 0 (measured from 1, not from the mean ratio, so a systematic bias
 *     counts as error).
 * With sd(F) = sqrt(tau^2 F^2 + k F), each held-out group scores
 * |Y - P| / sd(P), and q is the ceil((G + 1) level)-th smallest of the G
 * scores (the largest when G is small): a campaign's interval is
 * F +- q sd(F), floored at 0. Revenue is heavy-tailed, so a normal
 * quantile times sd was far too wide (every campaign inside); the held-out
 * scores set the width instead. Why not the held-out ratios' quantiles Y / P
 * (the first version, still reported): a campaign smaller than the held-out
 * ones, or unlike them, fell outside almost always (CDNOW: 0 of 7 and 1 of
 * 4 campaigns inside the 80% band from 5 held-out weeks).
 */
#ifndef LTV_CONFORMAL_H
#define LTV_CONFORMAL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define CONFORMAL_MAX_BUCKETS 64
/* Fewest held-out groups a group interval is fitted from. */
#define CONFORMAL_MIN_GROUPS 5

struct conformal {
	double level;                          /* e.g. 0.8 */
	size_t n_buckets;
	double upper[CONFORMAL_MAX_BUCKETS];   /* bucket b holds p <= upper[b] (last: +inf) */
	double lo[CONFORMAL_MAX_BUCKETS];
	double hi[CONFORMAL_MAX_BUCKETS];
	double group_lo, group_hi;             /* held-out ratios' quantiles (reported only) */
	double group_tau2, group_k, group_q;   /* the group interval; NaN when not fitted */
	size_t n_groups;                       /* held-out groups behind the group interval */
};

/*
 * Fits the user bands on rows (pred[i], actual[i]) with up to n_buckets
 * buckets of at least min_rows rows each, at `level` (0 < level < 1), and the
 * group band on (group_pred[k], group_actual[k]) for k < n_groups (groups
 * with group_pred <= 0 are skipped; fewer than CONFORMAL_MIN_GROUPS leave it NaN). LTV_EINVAL on
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
