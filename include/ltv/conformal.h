/*
 * Prediction intervals by split conformal calibration: on held-out rows with
 * a prediction p and an outcome y (here, revenue still to come), rows are cut
 * into buckets by p (quantiles of p), and each bucket keeps the lower and
 * upper quantiles of y. A new row gets its bucket's [lo, hi]: on rows like
 * the held-out ones, the share of outcomes inside is the level asked for,
 * whatever the shape of y's distribution (most users' future revenue is 0,
 * a few are whales, which no normal or log-normal form fits).
 *
 * Groups (campaigns) get a band of the ratio y_sum / p_sum over held-out
 * groups, so a group's interval is [p_sum * r_lo, p_sum * r_hi]: it carries
 * the error a whole campaign makes, which user-level noise does not.
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
	double group_lo, group_hi;             /* ratio band for groups; NaN when not fitted */
	size_t n_groups;                       /* held-out groups behind the ratio band */
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
/* The band [*out_lo, *out_hi] of a row with prediction p. */
void conformal_row(const struct conformal *c, double p, double *out_lo, double *out_hi);
/* Serialised as a blob (caller frees) and back. */
uint8_t *conformal_save(const struct conformal *c, size_t *out_len);
int conformal_load(const void *data, size_t len, struct conformal *out, struct ltv_err *err);

#endif
