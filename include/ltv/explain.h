/*
 * "Why this number": what served one user's prediction and which features
 * moved it, and which features each tree model of a model version leans on.
 * For `ltvpipe predict --explain`, `POST /v1/predict?explain=1`, `models
 * show V` and `GET /v1/models/{V}`. Off the fast path: an explanation
 * predicts its user once per method and builds an XGBoost DMatrix per tree
 * model (gbt_predict_contribs), so it is for one user at a time.
 *
 * The explanation is of the target horizon H:
 *  - "method_chain": the method chosen for the user's campaign (or its tier's
 *    default, or the blend with its weights), then the fallback chain up to
 *    the method that served, each with its raw prediction of ltv_H for this
 *    user (null: it had nothing to say, so the chain went on);
 *  - "contributions": for each tree model the user's row goes through (the
 *    hurdle's payer classifier and revenue regressor, the multiplier's
 *    regressor, at the user's tier or the pooled fallback, at each snapshot
 *    age the prediction interpolates between, with that snapshot's weight),
 *    the margin (log-odds of paying; the regressor's label scale), the bias
 *    (the margin of an average training row), the top features by absolute
 *    contribution with the value the model saw, and the sum of the others:
 *    bias + top + rest = margin exactly (XGBoost's TreeSHAP).
 */
#ifndef LTV_EXPLAIN_H
#define LTV_EXPLAIN_H

#include <stddef.h>
#include <stdio.h>

#include "ltv/jbuf.h"
#include "ltv/model_loader.h"
#include "ltv/serving.h"

/* Features listed per model, the rest summed. */
#define EXPLAIN_TOP 5

/*
 * Appends "explain":{...} (a member, no braces around it) for row `row` of
 * d, served by m with served_method (struct served's method at the target
 * horizon).
 */
int explain_row_json(struct jbuf *out, const struct loaded_model *m, const struct model_data *d,
		     size_t row, int served_method, struct ltv_err *err);

/*
 * Appends "feature_importance":[...] (a member): per tree model of m
 * (method, part, tier 0 = pooled, horizon) its top features by total split
 * gain, with each one's share of the model's total gain.
 */
int explain_importance_json(struct jbuf *out, const struct loaded_model *m, struct ltv_err *err);
/* The same as text, one line per model, for `models show`. */
int explain_importance_print(FILE *out, const struct loaded_model *m, struct ltv_err *err);

#endif
