/*
 * What a model version serves for users: everything after the models, in one
 * place for score, predict and evaluate (DESIGN.md "Time, windows and
 * labels"). Per horizon H, a user aged a (a row at its age, window_days = a)
 * is worth:
 *  - when a >= H: ltv_H as observed, flagged observed;
 *  - else the revenue so far plus the calibrated revenue still to come in days
 *    [a, H): additive, never below what was seen, and monotone across
 *    horizons.
 */
#ifndef LTV_SERVING_H
#define LTV_SERVING_H

#include <stddef.h>

#include "ltv/model_loader.h"

struct served {
	size_t n;
	size_t n_horizons;
	double *ltv[PREDICTOR_MAX_HORIZONS];             /* final value per horizon */
	unsigned char *observed[PREDICTOR_MAX_HORIZONS]; /* 1: ltv is the observed value */
	double *raw;       /* uncalibrated prediction at the target horizon */
	double *p_payer;   /* P(pays again before the target horizon), NaN when unknown */
	double *p_payer_h[PREDICTOR_MAX_HORIZONS]; /* the same before each horizon */
	int *method;       /* method that served at the target horizon */
	int *fallback;     /* 1 when that was not the chosen method */
};

/*
 * Serves rows[0..n) of d (a frame of rows at their age, with tiers) with the
 * loaded model m. out is the caller's to release with served_release.
 */
int serving_predict(const struct loaded_model *m, const struct model_data *d,
		    const size_t *rows, size_t n, struct served *out, struct ltv_err *err);
void served_release(struct served *s);

#endif
