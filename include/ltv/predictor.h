/*
 * A trained model version as one thing that predicts: the loaded methods, the
 * method selected per campaign (or its tier's default), the fallback chain
 * hurdle → multiplier → lookalike → semantic → global median for rows the
 * selected method has nothing for, and per (tier, horizon) calibration.
 * select builds one from its decisions; calibrate, score and predict load
 * one from the registry.
 */
#ifndef LTV_PREDICTOR_H
#define LTV_PREDICTOR_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/calibration.h"
#include "ltv/conformal.h"
#include "ltv/feature_params.h"
#include "ltv/method.h"
#include "ltv/prediction_memo.h"
#include "ltv/rank_share.h"
#include "ltv/strmap.h"

#define PREDICTOR_MAX_HORIZONS 16
#define SEGMENT_CUTS 3
/* The fallback chain's method names in order (borrowed, static); returns how many. */
size_t predictor_fallback_order(const char *const **out_names);

/*
 * What select chose for one horizon: the method per (app, campaign), per
 * tier for the campaigns it did not judge, and the blend's weights per tier
 * (0: over every tier, the fallback of a tier without its own): revenue to
 * come = sum_m w[m] * method m's; has_blend 0 when not fitted.
 */
struct predictor_choices {
	int own;                             /* 0: the target horizon's choices serve this one */
	struct strmap cohort_method;         /* "app\x1f" "campaign" → method index */
	int tier_default[4];                 /* per tier 1..3 */
	double blend_weight[4][METHOD_COUNT];
	int has_blend[4];
	/* The cohort choices in the order made (for saving): app, campaign, method. */
	char **cohort_app, **cohort_campaign;
	int *cohort_choice;
	size_t n_cohorts;
};

struct predictor {
	const struct config *cfg;            /* the methods' sections (borrowed) */
	struct feature_params params;        /* its features artefact's (horizons, snapshots, target); owned */
	void *states[METHOD_COUNT];          /* loaded methods; owned */
	/*
	 * Per horizon index. select judges every horizon that has validation
	 * labels on its own (a method that is best at 30 days can be far off at
	 * 90); a horizon without any (CDNOW at 365 days: no user is that old) is
	 * served by the target horizon's choices.
	 */
	struct predictor_choices choice[PREDICTOR_MAX_HORIZONS];
	int target_h;                        /* index of the target horizon */
	double global_median[PREDICTOR_MAX_HORIZONS];
	struct calibration *cal[4][PREDICTOR_MAX_HORIZONS]; /* NULL: identity; owned */
	double segment_cut[SEGMENT_CUTS]; /* target-horizon LTV where Medium, High, VIP start */
	/*
	 * Per horizon index with its own validated choices: the chosen method's
	 * level with the best ranking method's order of users (ltv/rank_share.h);
	 * none for a horizon served by the target's choices.
	 */
	struct rank_share share[PREDICTOR_MAX_HORIZONS];
	/* 80% bands of the revenue still to come, per horizon; n_buckets 0: none */
	struct conformal band[PREDICTOR_MAX_HORIZONS];
	/*
	 * The floor between horizons, per tier (1..3) and horizon index h > 0:
	 * a user who has not lived horizon h-1 is served at h its value there
	 * plus floor_share × (the larger of the two − it) (serving.c); 1, the
	 * larger of the two, unless calibrate fitted it (calibrate.floor_share;
	 * it fits one share for every tier).
	 */
	double floor_share[4][PREDICTOR_MAX_HORIZONS];
};

/* params: the features artefact's parameters (copied); cfg is borrowed. */
void predictor_init(struct predictor *p, const struct config *cfg,
		    const struct feature_params *params);
void predictor_release(struct predictor *p);

/* Loads each method from its artefact (artefacts in method_table order). */
int predictor_load_methods(struct predictor *p, struct registry *reg,
			   const struct artefact_info *const *artefacts, struct ltv_err *err);
/* Loads the selection (table method_selection, global medians, blend weights) of a select artefact. */
int predictor_load_selection(struct predictor *p, struct registry *reg,
			     const struct artefact_info *select, struct ltv_err *err);
/* Loads the per-(tier, horizon) calibrations of a calibrate artefact. */
int predictor_load_calibration(struct predictor *p, struct registry *reg,
			       const struct artefact_info *calibrate, struct ltv_err *err);

/* Loads the interval bands ("band:h<H>") of a calibrate artefact; a horizon without one has none. */
int predictor_load_bands(struct predictor *p, struct registry *reg,
			 const struct artefact_info *calibrate, struct ltv_err *err);
/*
 * The floor shares (calibrate.floor_share) as a blob (caller frees) and back
 * from a calibrate artefact; a version without one keeps every share at 1.
 */
uint8_t *predictor_save_floor_shares(const struct predictor *p, size_t *out_len);
int predictor_load_floor_shares(struct predictor *p, struct registry *reg,
				const struct artefact_info *calibrate, struct ltv_err *err);
/*
 * A longer horizon's value for a user who has not lived the shorter one:
 * prev (the shorter horizon's) + share × (max(prev, v) − prev). Never below
 * prev (monotone across horizons); share 1 is the larger of the two.
 */
static inline double predictor_floor_between(double prev, double v, double share)
{
	return v <= prev ? prev : share >= 1 ? v : prev + share * (v - prev);
}
/*
 * The share for predictor_floor_between that makes sum_i of the served
 * longer-horizon values equal sum_i target[i] over rows[0..n) (target NULL:
 * longer, the longer horizon's own values, unfloored): (sum target - sum
 * shorter) / sum max(longer - shorter, 0), clipped to [0, 1]; NaN when no
 * row's longer value is above its shorter one (any share serves the same).
 * 0 when the target sum is below the shorter: nothing is served below it.
 */
double predictor_floor_share_fit(const double *shorter, const double *longer, const double *target,
				 size_t n);
/* Segment thresholds as a blob (caller frees) and back, from a calibrate artefact. */
uint8_t *predictor_save_segments(const struct predictor *p, size_t *out_len);
int predictor_load_segments(struct predictor *p, struct registry *reg,
			    const struct artefact_info *calibrate, struct ltv_err *err);
/* "Low", "Medium", "High" or "VIP" for a target-horizon LTV. */
const char *predictor_segment(const struct predictor *p, double ltv_target);

/* The choices that serve horizon index h (its own, or the target horizon's). */
const struct predictor_choices *predictor_choices_at(const struct predictor *p, int h);
/*
 * The blend at horizon index h of a row of the given tier from each method's
 * prediction (by_method[m], NaN where a method has none) and the row's
 * rev_window: NaN when a method with weight has no prediction, or no blend
 * was fitted.
 */
double predictor_blend(const struct predictor *p, int h, int tier, const double *by_method,
		       double rev_window);
/*
 * The blend weights and every non-target horizon's choices as blobs (caller
 * frees); read back by predictor_load_selection.
 */
uint8_t *predictor_save_blend(const struct predictor *p, size_t *out_len);
uint8_t *predictor_save_choices(const struct predictor *p, size_t *out_len);
/* Every horizon's rank share as a blob (caller frees); read back by predictor_load_selection. */
uint8_t *predictor_save_shares(const struct predictor *p, size_t *out_len);
/* Each configured horizon's global median as a blob (caller frees); read back likewise. */
uint8_t *predictor_save_medians(const struct predictor *p, size_t *out_len);
/*
 * Fits horizon index h's rank share from the validation rows at horizon
 * (pred[m][i]: method m's LTV for rows[i]), with the choices p has at h,
 * on n_threads threads (the same share for any).
 */
void predictor_fit_share(struct predictor *p, const struct model_data *d, int64_t horizon,
			 const size_t *rows, size_t n, double *const *pred, size_t min_users,
			 int n_threads);
/* Forgets every choice at horizon index h (own stays 0 until set). */
void predictor_choices_reset(struct predictor *p, int h);
/* Sets the method for one (app, campaign) at horizon index h. */
void predictor_choose(struct predictor *p, int h, const char *app, const char *campaign,
		      int method);

/*
 * The method chosen for a row's campaign (or its tier's default) at horizon
 * index h, before any fallback.
 */
int predictor_chosen_method(const struct predictor *p, const struct model_data *d, size_t row,
			    int h);
/* The same for rows[0..n) into out_method[n], looking each cohort up once. */
void predictor_chosen_methods(const struct predictor *p, const struct model_data *d,
			      const size_t *rows, size_t n, int h, int *out_method);

/*
 * Raw (uncalibrated) ltv at horizon for rows of d: the campaign's method, else
 * its tier's default (its level shared by the horizon's ranking method, when
 * a share was fitted: ltv/rank_share.h), then the fallback chain. out_method[i] says which served
 * (may be NULL); out_p_payer from hurdle where it has one, else NaN (may be NULL).
 */
int predictor_predict_raw(const struct predictor *p, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, double *out_ltv,
			  int *out_method, double *out_p_payer, struct ltv_err *err);
/*
 * The same, and *out_factor: with select.rank_cells, for a row whose
 * campaign curves serves without a stored ratio (method.same_to_come), the
 * factor of its calibrated revenue to come that orders its cohort-age cell
 * by the share's ranker and keeps the cell's total (rank_share_within_cells);
 * NaN for every other row. Allocated (n values; the caller frees) only when
 * some row has one, else NULL. serving_predict applies it after calibration.
 * unread (NULL: none) marks rows whose values the caller will not read (at
 * a horizon they have lived: the observed value replaces the prediction):
 * they are predicted only where other rows' values depend on them (by a
 * method that levels a cohort from the rows it is given, method.batch_level,
 * and in full when a read row ranks in the same cell), so every other row's
 * values are the same as without; an unread row's out_ltv and out_method are
 * then the global median's (or a cohort-level fallback's).
 */
int predictor_predict_raw_cells(const struct predictor *p, const struct model_data *d,
				const size_t *rows, size_t n, int64_t horizon,
				const unsigned char *unread, double *out_ltv, int *out_method,
				double *out_p_payer, double **out_factor, struct ltv_err *err);
/*
 * The same, with given[m] (when given and given[m] are not NULL) the
 * predictions predictor_predict_method made for method m over all of
 * rows[0..n) at horizon: they are used instead of predicting again (select
 * judges the mix on rows it has predicted by every method). Equal to
 * predictor_predict_raw because a method predicts a row alone, or, for a
 * cohort-level method (curves), from its cohort's rows, and
 * predictor_predict_raw only asks such a method for whole cohorts (the
 * chosen method, a blend's tier, the ranker of a shared cohort; curves is in
 * no fallback). hurdle's given values are not used when out_p_payer is asked.
 */
int predictor_predict_raw_given(const struct predictor *p, const struct model_data *d,
				const size_t *rows, size_t n, int64_t horizon,
				const double *const *given, double *out_ltv, int *out_method,
				double *out_p_payer, struct ltv_err *err);
/*
 * predictor_predict_raw with memo (NULL: none) keeping each row-by-row
 * method's predictions (include/ltv/prediction_memo.h): a row the memo
 * has a method's value for is not predicted by it again, and what is
 * predicted is kept. The same values as predictor_predict_raw. memo must be
 * one made for d's rows at horizon.
 */
int predictor_predict_raw_memo(const struct predictor *p, const struct model_data *d,
			       const size_t *rows, size_t n, int64_t horizon,
			       struct prediction_memo *memo, double *out_ltv, struct ltv_err *err);
/*
 * Raw ltv at at_horizon (a configured horizon) made by what serves horizon:
 * horizon's choices, rank share and blend, each method predicting
 * at_horizon. Serving's step between horizons (serving.c) asks for the
 * value the horizon's own methods give at the shorter horizon.
 */
int predictor_predict_raw_at(const struct predictor *p, const struct model_data *d,
			     const size_t *rows, size_t n, int64_t horizon, int64_t at_horizon,
			     double *out_ltv, struct ltv_err *err);
/*
 * Applies the calibration of each row's tier at horizon, in place, to the
 * revenue still to come: ltv[i] = rev_floor[i] + max(0, cal(ltv[i] -
 * rev_floor[i])), rev_floor[i] being what the user spent so far (additive, so
 * never below it; DESIGN.md "Predictions are additive").
 */
void predictor_calibrate(const struct predictor *p, const struct model_data *d,
			 const size_t *rows, size_t n, int64_t horizon, const double *rev_floor,
			 double *ltv);

/*
 * How a row of age `age` is served at `horizon` by a method trained on the
 * snapshot ages: the snapshots below and above it (*out_lo, *out_hi), the
 * share *out_t of the one above, and *out_scale for the revenue to come (days
 * left over days left at the snapshot, beyond the first or last snapshot; 0
 * when age >= horizon). DESIGN.md "Time, windows and labels".
 */
void predictor_age_blend(const struct int_list *snapshots, int64_t horizon, double age,
			 double *out_lo, double *out_hi, double *out_t, double *out_scale);
/*
 * One method's predictions (method index m) for rows at their age: a method
 * trained on snapshot ages is served through predictor_age_blend; NaN where
 * the method has nothing. out_p_payer may be NULL.
 */
int predictor_predict_method(const struct predictor *p, int m, const struct model_data *d,
			     const size_t *rows, size_t n, int64_t horizon, double *out_ltv,
			     double *out_p_payer, struct ltv_err *err);

#endif
