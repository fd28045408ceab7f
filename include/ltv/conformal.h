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
 * scores (the largest when G is small; with the groups drawn from U < G
 * independent campaigns, the rank ceil((U + 1) level) of U as a share of
 * the G: the largest with 5 campaigns): a campaign's interval is
 * F +- q sd(F), floored at 0. Revenue is heavy-tailed, so a normal
 * quantile times sd was far too wide (every campaign inside); the held-out
 * scores set the width instead. Why not the held-out ratios' quantiles Y / P
 * (the first version, still reported): a campaign smaller than the held-out
 * ones, or unlike them, fell outside almost always (CDNOW: 0 of 7 and 1 of
 * 4 campaigns inside the 80% band from 5 held-out weeks).
 *
 * The bootstrap band (calibrate.bootstrap_band: 1; blob version 3) keeps
 * that shape but takes the users' noise from a bootstrap instead of k F:
 * revenue is heavy-tailed
 * (whales), so |Y - P| / sqrt(k P) is not pivotal. A small group mostly
 * holds no whale and lands below its prediction, now and then far above
 * it; its score is small, a q fitted on small groups is too small for a
 * large campaign, whose sum is nearly normal. The bootstrap resamples the
 * held-out rows (prediction, outcome) in sets of n rows, for n on a grid
 * (16 to 2,048 rows, steps of sqrt 2), and keeps the quantiles at
 * (1 -+ level) / 2 of the relative error R = sum (y - p) / sum p of a set
 * and E R^2. A group predicted F is as noisy as a set of n = F / mean p
 * rows (variance proportional to the prediction, as k F says), between
 * grid points by interpolation of sqrt(n) times each quantile, beyond the
 * last by the central limit's 1 / sqrt(n). Its scale is asymmetric:
 * up = sqrt(Q_hi(n)^2 + z^2 tau_b^2), down = sqrt(Q_lo(n)^2 + z^2 tau_b^2),
 * z the normal quantile at (1 + level) / 2, tau_b^2 the groups' relative
 * error in excess of the bootstrap's (mean of ((Y - P) / P)^2 - E R^2(n),
 * floored at 0: the error of a whole campaign). Each held-out group scores
 * (Y - P) / (P up) above its prediction, (P - Y) / (P down) below it (about
 * 1 at the level's edge when the resampled noise is all there is), q_b is
 * their conformal quantile as above, and the interval is
 * [F (1 - q_b down), F (1 + q_b up)], floored at 0.
 */
#ifndef LTV_CONFORMAL_H
#define LTV_CONFORMAL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define CONFORMAL_MAX_BUCKETS 64
/* Fewest held-out groups a group interval is fitted from. */
#define CONFORMAL_MIN_GROUPS 5
/* Bootstrap grid of set sizes: 16 * 2^(i/2) rows for i < CONFORMAL_BOOT_GRID (16 to 2,048). */
#define CONFORMAL_BOOT_GRID 15
#define CONFORMAL_BOOT_MIN_ROWS 16.0
/* Resampled sets per grid size. */
#define CONFORMAL_BOOT_SETS 500

struct conformal {
	double level;                          /* e.g. 0.8 */
	size_t n_buckets;
	double upper[CONFORMAL_MAX_BUCKETS];   /* bucket b holds p <= upper[b] (last: +inf) */
	double lo[CONFORMAL_MAX_BUCKETS];
	double hi[CONFORMAL_MAX_BUCKETS];
	double group_lo, group_hi;             /* held-out ratios' quantiles (reported only) */
	double group_tau2, group_k, group_q;   /* the group interval; NaN when not fitted */
	size_t n_groups;                       /* held-out groups behind the group interval */
	/* The bootstrap band of the header; boot_grid 0 (not asked, older blobs): the k F band serves. */
	size_t boot_grid;                      /* grid sizes fitted (0 or CONFORMAL_BOOT_GRID) */
	double boot_mean_p;                    /* mean prediction of the resampled rows */
	double boot_up[CONFORMAL_BOOT_GRID];   /* sqrt(n) Q_hi of R at grid size n */
	double boot_down[CONFORMAL_BOOT_GRID]; /* sqrt(n) (-Q_lo) of R */
	double boot_var[CONFORMAL_BOOT_GRID];  /* n E R^2 */
	double boot_tau2, boot_q;              /* between-group term and conformal quantile; NaN if none */
};

/*
 * Fits the user bands on rows (pred[i], actual[i]) with up to n_buckets
 * buckets of at least min_rows rows each, at `level` (0 < level < 1), and the
 * group band on (group_pred[k], group_actual[k]) for k < n_groups (groups
 * with group_pred <= 0 are skipped; fewer than CONFORMAL_MIN_GROUPS leave it NaN). n_units:
 * how many independent units (campaigns) the kept groups come from, whose
 * count sets the conformal rank's finite-sample margin; 0 when the groups
 * are independent. LTV_EINVAL on bad arguments or no rows.
 */
int conformal_fit(const double *pred, const double *actual, size_t n, size_t n_buckets,
		  size_t min_rows, double level, const double *group_pred,
		  const double *group_actual, size_t n_groups, size_t n_units, struct conformal *out,
		  struct ltv_err *err);
/*
 * Adds the bootstrap band of the header to a band fitted by conformal_fit on
 * the same rows and groups (calibrate.bootstrap_band): until then, and when
 * it cannot be fitted (fewer than CONFORMAL_MIN_GROUPS groups, no error in
 * the rows), the k F band serves.
 */
void conformal_fit_bootstrap(const double *pred, const double *actual, size_t n,
			     const double *group_pred, const double *group_actual, size_t n_groups,
			     size_t n_units, struct conformal *out);
/*
 * The interval of a group whose predicted sum is f >= 0 (never below 0): the
 * bootstrap band when fitted, else the k F band; NaN when no group interval
 * was fitted.
 */
void conformal_group(const struct conformal *c, double f, double *out_lo, double *out_hi);
/* The band [*out_lo, *out_hi] of a row with prediction p. */
void conformal_row(const struct conformal *c, double p, double *out_lo, double *out_hi);
/* Serialised as a blob (caller frees) and back. */
uint8_t *conformal_save(const struct conformal *c, size_t *out_len);
int conformal_load(const void *data, size_t len, struct conformal *out, struct ltv_err *err);

#endif
