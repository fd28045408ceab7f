/*
 * Accuracy metrics for LTV predictions, used by the evaluate stage (and by
 * select and calibrate when they compare methods): campaign-level WAPE and
 * bias, user-level normalized Gini, Spearman, RMSLE, decile MAPE and payer
 * AUC, plus the gain-curve points the report charts. Pure functions on arrays.
 *
 * Conventions shared by every function here:
 *  - Arguments come as (actual, pred, n): actual[i] and pred[i] are the same
 *    row. Nothing is modified and nothing returned needs freeing.
 *  - A row where either value is NaN is skipped, never silently: the number
 *    of rows actually used is written to *out_n_used (which may be NULL), so
 *    the caller can report n - n_used as "rows without a prediction".
 *  - An infinite value is an error (LTV_EINVAL naming the row): it is a bug
 *    upstream, and any sum it entered would be meaningless.
 *  - No usable row at all (n == 0, or every row has a NaN) is an error
 *    (LTV_EINVAL): there is nothing to report.
 *  - A metric that the data leave undefined (a zero denominator, a single
 *    class, a constant column) is written as NaN and the call returns 0; the
 *    header of each function says when that happens.
 */
#ifndef LTV_METRICS_H
#define LTV_METRICS_H

#include <stddef.h>

#include "ltv/common.h"

/*
 * Weighted absolute percentage error: sum |a - p| / sum |a| over usable rows.
 * NaN when sum |a| is 0.
 */
int metrics_wape(const double *actual, const double *pred, size_t n,
		 double *out_wape, size_t *out_n_used, struct ltv_err *err);

/*
 * Relative bias: (sum p - sum a) / sum a over usable rows; positive means the
 * predictions are too high in total. NaN when sum a is 0.
 */
int metrics_bias(const double *actual, const double *pred, size_t n,
		 double *out_bias, size_t *out_n_used, struct ltv_err *err);

/* Result of metrics_campaign_wape. */
struct metrics_campaign {
	double wape;           /* sum_g |A_g - P_g| / sum_g |A_g|, NaN if the denominator is 0 */
	double bias;           /* (sum_g P_g - sum_g A_g) / sum_g A_g, NaN if the denominator is 0 */
	size_t n_groups;       /* groups kept (at least min_count usable rows) */
	size_t n_groups_small; /* groups with 1 .. min_count-1 usable rows, left out */
	size_t n_rows;         /* usable rows in the kept groups */
	size_t n_rows_nan;     /* rows skipped because actual or pred was NaN */
};

/*
 * Campaign-level WAPE and bias. group[i] < n_groups is row i's campaign.
 * For each group g, A_g and P_g are the totals of actual and pred over its
 * usable rows and c_g their count; groups with c_g < min_count are left out
 * (min_count 0 behaves as 1). Over the kept groups:
 *   wape = sum_g |A_g - P_g| / sum_g |A_g|
 *   bias = (sum_g P_g - sum_g A_g) / sum_g A_g
 * This equals WAPE on each campaign's mean LTV weighted by its user count
 * (c_g * |mean_a - mean_p| = |A_g - P_g|), so a big campaign counts for more
 * and errors of opposite sign within one campaign cancel, as they do in the
 * campaign's ROAS. A group id >= n_groups is LTV_EINVAL. Usable rows that all
 * fall in groups below min_count are not an error: out->wape and out->bias
 * are NaN and out->n_groups is 0.
 */
int metrics_campaign_wape(const double *actual, const double *pred, const size_t *group,
			  size_t n, size_t n_groups, size_t min_count,
			  struct metrics_campaign *out, struct ltv_err *err);

/*
 * Gini of the gain curve for ranking rows by pred (the ZILN paper, Wang et
 * al. 2019). Rows are sorted by pred, highest first; the gain curve joins
 * (k/m, share of total actual held by the first k rows) for k = 0..m with
 * straight lines, m the number of usable rows. Gini = 2 * (area under the
 * curve - 1/2), i.e. twice the area between the curve and the diagonal, the
 * area computed exactly by trapezoids. (ZILN's reference code sums the curve
 * at k = 1..m instead, which adds 1/m to every raw Gini; the difference
 * vanishes for real data sizes.)
 * Ties in pred: a run of equal predictions is one straight segment of the
 * curve, which is the average curve over every order of the tied rows, so the
 * result does not depend on input order.
 * actual should be non-negative; NaN when sum actual <= 0.
 */
int metrics_gini(const double *actual, const double *pred, size_t n,
		 double *out_gini, size_t *out_n_used, struct ltv_err *err);

/*
 * The order of key[0..n): out_idx[k] is the row k-th by key, ascending (or
 * descending), ties by row index: the permutation a comparison sort on
 * (key, row) gives, from the ranking metrics' radix sort (a comparison sort
 * below 1,024 rows or with a NaN key).
 */
void metrics_sort_order(const double *key, size_t n, int descending, size_t *out_idx);

/*
 * metrics_gini over all n rows (out_gini[0]) and over the rows of each group
 * g = 1 .. n_groups - 1 alone (group[i] == g: out_gini[g]), from one sort of
 * all rows: a group's rows, taken in the order of all rows, are in the order
 * its own sort gives (ties by row), so each figure is bit for bit
 * metrics_gini's on those rows. NaN for a group without rows or with sum
 * actual <= 0. Returns -1, out_gini untouched, when a value is not finite or
 * a group index is out of range (metrics_gini then says what is wrong).
 */
int metrics_gini_groups(const double *actual, const double *key, const int *group, size_t n,
			int n_groups, double *out_gini);

/*
 * Normalized Gini: metrics_gini(actual, pred) / metrics_gini(actual, actual),
 * 1 for a perfect ranking, about 0 for a random one, -1 for the exact
 * reverse. NaN when sum actual <= 0 or every actual is equal (the perfect
 * ranking has Gini 0).
 */
int metrics_normalized_gini(const double *actual, const double *pred, size_t n,
			    double *out_gini, size_t *out_n_used, struct ltv_err *err);

/*
 * Gain-curve points for charting: out_x[k] = k / (n_points - 1) for k in
 * 0..n_points-1 (so 0 and 1 are included) and out_y[k] the curve described at
 * metrics_gini (same tie handling) at that fraction of rows, by linear
 * interpolation. Both arrays are the caller's, n_points long, n_points >= 2.
 * out_y is all NaN when sum actual <= 0.
 */
int metrics_gain_curve(const double *actual, const double *pred, size_t n, size_t n_points,
		       double *out_x, double *out_y, size_t *out_n_used, struct ltv_err *err);

/*
 * Spearman rank correlation: Pearson correlation of the ranks, tied values
 * sharing their average rank. NaN when either column is constant.
 */
int metrics_spearman(const double *actual, const double *pred, size_t n,
		     double *out_rho, size_t *out_n_used, struct ltv_err *err);

/*
 * Root mean squared log error: sqrt(mean((log1p(p) - log1p(a))^2)).
 * A negative actual or pred is LTV_EINVAL naming the row (LTV is never
 * negative, so such a value is a bug upstream; clamping would hide it).
 */
int metrics_rmsle(const double *actual, const double *pred, size_t n,
		  double *out_rmsle, size_t *out_n_used, struct ltv_err *err);
/*
 * metrics_rmsle with log_actual[i] = log1p(actual[i]) given, for a caller
 * that scores many predictions against the same actuals (select's RMSLE per
 * candidate and cohort): the same result, bit for bit, with half the log1p.
 */
int metrics_rmsle_logged(const double *actual, const double *log_actual, const double *pred,
			 size_t n, double *out_rmsle, size_t *out_n_used, struct ltv_err *err);

#define METRICS_N_DECILES 10

/* Result of metrics_decile_mape; decile 0 holds the lowest predictions. */
struct metrics_deciles {
	size_t count[METRICS_N_DECILES];
	double mean_pred[METRICS_N_DECILES];   /* NaN for an empty decile */
	double mean_actual[METRICS_N_DECILES]; /* NaN for an empty decile */
	/* |mean_pred - mean_actual| / |mean_actual|; NaN when the decile is skipped */
	double ape[METRICS_N_DECILES];
	double mape;                           /* mean of the non-NaN ape, NaN if there is none */
	size_t n_deciles;                      /* deciles that entered mape */
};

/*
 * Decile MAPE. Usable rows are sorted by pred ascending (equal predictions
 * keep input order, so the result is deterministic for a given row order);
 * the row at sorted position j (0-based, of m) falls in decile
 * floor(10 * j / m), so decile sizes differ by at most one. A decile is
 * skipped (ape NaN) when it is empty (m < 10) or its mean actual is 0.
 * mape is the unweighted mean of the remaining deciles' ape.
 */
int metrics_decile_mape(const double *actual, const double *pred, size_t n,
			struct metrics_deciles *out, size_t *out_n_used, struct ltv_err *err);

/*
 * Area under the ROC curve for labels (0 or 1) and scores, by the rank sum
 * (Mann-Whitney U): tied scores share their average rank, so a tied
 * positive/negative pair counts one half. Rows where label or score is NaN
 * are skipped; a label other than 0 or 1 is LTV_EINVAL. NaN when either
 * class is absent.
 */
int metrics_auc(const double *labels, const double *scores, size_t n,
		double *out_auc, size_t *out_n_used, struct ltv_err *err);

#endif
