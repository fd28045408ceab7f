#ifndef LTV_SELECT_MIX_H
#define LTV_SELECT_MIX_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/model_data.h"
#include "ltv/predictor.h"
#include "ltv/stage.h"

/*
 * given[m] for predictor_predict_raw_given on the k validation rows at[0..k)
 * of the rows pred[m] was made for (all of them when at is NULL): method m's
 * predictions where a row's prediction is its own (NULL for a batch_level
 * method, which predicts the rows it is given again, as predictor_predict_raw
 * would). Select has predicted every method on every validation row; the mix
 * reuses that instead of predicting them all over again, with identical
 * results. select_given_release frees them.
 */
void select_given_for(double *const *pred, const size_t *at, size_t k, double **given);
void select_given_release(double **given);

/*
 * The positions 0..n) of rows in two parts of whole cohorts (model_data_cohort),
 * each part in rows' order: part[i] is 0 or 1, the cohorts taken in order of
 * their first row until part 0 holds about half the rows. Returns part 0's
 * row count.
 */
size_t select_cohort_halves(const struct model_data *d, const size_t *rows, size_t n,
			    unsigned char *part);

/*
 * predictor_predict_raw_given(p, d, rows, n, horizon, given from pred) in
 * two parts of whole cohorts side by side on two of the stage's threads (one
 * call on one thread). Identical to one call: a row-by-row method's value is
 * the row's own, and a batch_level one (curves) levels each cohort and
 * request from that cohort's rows in their order, which a part keeps whole
 * (method.h). out_method may be NULL. On failure, part 0's error before part 1's.
 */
int select_predict_mix(struct stage_ctx *ctx, const struct predictor *p, const struct model_data *d,
		       const size_t *rows, size_t n, int64_t horizon, double *const *pred,
		       double *out_ltv, int *out_method);

/*
 * Leaves the served mix ltv[i] of s->valid[i] at horizon on the run's shelf
 * with predict_all's memo of the same rows (prediction_shelf_offer_mix), for
 * calibrate of the same run, which asks for this mix of these rows again
 * (fit_band, validation_wape). Nothing when ltv is NULL or select left no
 * memo (select.held_out_ages, no shelf).
 */
void select_offer_mix(struct stage_ctx *ctx, const struct model_data *d, const struct row_split *s,
		      int64_t horizon, const double *ltv);

#endif
