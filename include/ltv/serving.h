/*
 * What a model version serves for users: everything after the models, in one
 * place for score, predict and evaluate (DESIGN.md "Time, windows and
 * labels"). Per horizon H, a user aged a (a row at its age, window_days = a)
 * is worth:
 *  - when a >= H: ltv_H as observed, flagged observed;
 *  - else the revenue so far plus the calibrated revenue still to come in days
 *    [a, H): additive, never below what was seen, and monotone across
 *    horizons; with an 80% interval from the model version's bands (split
 *    conformal on the validation cohorts, src/models/conformal.c).
 * And per user: P(alive) and P(a paying day in the next 30 days) from the
 * version's BG/NBD, the risk segment cut from P(alive).
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
	double *raw_h[PREDICTOR_MAX_HORIZONS]; /* uncalibrated prediction per horizon (NULL: SERVING_LEAN) */
	double *p_payer;   /* P(pays again before the target horizon), NaN when unknown */
	/*
	 * The same before each horizon: at the target horizon always, at the
	 * others only with SERVING_PAYER_EVERY_HORIZON (NaN without it; NULL
	 * with SERVING_LEAN).
	 */
	double *p_payer_h[PREDICTOR_MAX_HORIZONS];
	int *method;       /* method that served at the target horizon */
	int *fallback;     /* 1 when that was not the chosen method */
	/* 80% interval of ltv per horizon (equal to ltv when observed; NaN: no band) */
	double *ltv_lo[PREDICTOR_MAX_HORIZONS], *ltv_hi[PREDICTOR_MAX_HORIZONS];
	double *p_alive;          /* P(still a customer), Pareto/NBD's else BG/NBD's; NaN: neither */
	double *p_purchase_30d;   /* P(at least one paying day in the next 30 days) */
};

/*
 * A campaign's 80% interval at horizon index h, from its predicted revenue
 * (observed and to come) and the part of it still to come: the part to come
 * is scaled by the version's campaign ratio band (NaN both when it has none).
 */
void serving_campaign_interval(const struct loaded_model *m, size_t h, double revenue,
			       double future, double *out_lo, double *out_hi);

/* The risk segment of a P(alive): "Safe", "Monitor", "At risk", "Critical", or "" for NaN. */
const char *serving_risk_segment(double p_alive);

/*
 * Serves rows[0..n) of d (a frame of rows at their age, with tiers) with the
 * loaded model m. out is the caller's to release with served_release.
 */
int serving_predict(const struct loaded_model *m, const struct model_data *d,
		    const size_t *rows, size_t n, struct served *out, struct ltv_err *err);

/*
 * Flags of serving_predict_with. SERVING_PAYER_EVERY_HORIZON: p_payer_h at
 * every horizon, not only the target's. Only evaluate reads them; without it
 * a horizon where no row's method is hurdle runs no hurdle trees at all (at
 * 1M users, hurdle at the two other horizons was a fifth of scoring's CPU).
 * Every other value is the same with or without it.
 *
 * SERVING_RAW_OBSERVED_UNREAD: the caller does not read raw_h at a horizon
 * other than the target's for a row observed there (its ltv is the observed
 * value whatever was predicted): those rows are not predicted there
 * (predictor_predict_raw_cells' unread) and their raw_h is the global
 * median's. score sets it: at 1,000,000 users every scored row has lived 7
 * days, and the 7-day trees ran for them all. Every value the caller reads
 * is the same with or without it; predict and serve print raw_h.
 *
 * SERVING_LEAN: raw_h is not kept, nor p_payer_h at a horizon whose
 * p_payer is not asked for (both NULL; served_copy_row and served_release
 * take that). score reads neither: at 1,000,000 users 5 arrays of 2.6 MB
 * fewer live while the models predict, where peak memory is fresh pages
 * (README "Threads and performance"). Every value kept is the same.
 */
enum { SERVING_PAYER_EVERY_HORIZON = 1, SERVING_RAW_OBSERVED_UNREAD = 2, SERVING_LEAN = 4 };

/* serving_predict with flags (the SERVING_* above, or 0 for serving_predict's own). */
int serving_predict_with(const struct loaded_model *m, const struct model_data *d,
			 const size_t *rows, size_t n, unsigned flags, struct served *out,
			 struct ltv_err *err);
void served_release(struct served *s);
/* Row j of src into row i of dst (same horizons): an A/B arm's prediction replacing another's. */
void served_copy_row(struct served *dst, size_t i, const struct served *src, size_t j);

#endif
