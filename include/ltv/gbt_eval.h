/*
 * A fit's early-stopping metric, computed natively as XGBoost 1.7's
 * XGBoosterEvalOneIter computes it on one thread, bit for bit: each
 * validation row's margin kept in float and each new tree's leaf added in
 * tree order (as XGBoost's prediction cache does), the objective's
 * EvalTransform in float, the metric's per-row loss in float, the losses
 * summed in double in row order, the metric's final step, and the result as
 * gbt_fit.c read it from XGBoost's text ("%.17f", then strtod).
 *
 * XGBoost re-reads every validation row into a dense vector for every round
 * (FVecFill, about a tenth of hurdle's CPU at 1,000,000 users, on one
 * thread); here a round walks one tree over the rows as they are, and the
 * losses are computed on up to n_threads threads (each row's alone), only
 * their sum is serial.
 *
 * Computed here: the metrics rmse, logloss, gamma-nloglik and
 * tweedie-nloglik@rho, under the objectives binary:logistic,
 * reg:squarederror, reg:gamma and reg:tweedie, unweighted (gbt_fit's
 * validation rows have no weights), on rows without infinities (XGBoost
 * refuses those). Anything else: gbt_eval_new returns NULL and XGBoost
 * evaluates (or reports the error). tests/unit/test_gbt_eval.c compares every
 * round with XGBoosterEvalOneIter. Pure model code: arrays in, numbers out.
 */
#ifndef LTV_GBT_EVAL_H
#define LTV_GBT_EVAL_H

#include <stddef.h>

#include "ltv/gbt_forest.h"

struct gbt_eval;

/*
 * The metric (its XGBoost name) under objective over n_rows validation rows
 * x (row-major, n_features each, NaN missing) with labels y, both borrowed
 * until gbt_eval_free. NULL when the pair is not computed here or a value
 * of x is infinite. The caller
 * frees it with gbt_eval_free.
 */
struct gbt_eval *gbt_eval_new(const char *objective, const char *metric, const float *x,
			      const float *y, size_t n_rows, size_t n_features);
void gbt_eval_free(struct gbt_eval *e);

/*
 * Adds the trees of f (the rounds boosted since the last call, in order) to
 * every row's margin; the first call starts the margins at f's base margin.
 */
void gbt_eval_add_trees(struct gbt_eval *e, const struct gbt_forest *f, int n_threads);
/*
 * Adds f's tree number tree alone, likewise: a forest of several rounds is
 * scored round by round by adding its trees one at a time in order, each
 * followed by gbt_eval_score.
 */
void gbt_eval_add_tree(struct gbt_eval *e, const struct gbt_forest *f, size_t tree,
		       int n_threads);

/* The metric over the margins so far: the number XGBoost's EvalOneIter text gives. */
double gbt_eval_score(struct gbt_eval *e, int n_threads);

#endif
