/*
 * The multiplier stage's model as it is stored and predicted with: per
 * (tier, horizon) an entry with a regressor of log(m), m = ltv_H / rev_window,
 * and the value predicted for users without window revenue
 * (pipeline/multiplier.c trains it, serving/multiplier_model.c stores, loads
 * and predicts). The stage predicts with the state it has just trained;
 * method_multiplier loads the same state back from the artefact.
 */
#ifndef LTV_MULTIPLIER_MODEL_H
#define LTV_MULTIPLIER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/age_means.h"
#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/method.h"
#include "ltv/model_data.h"

struct multiplier_model {
	int tier;                  /* 0: pooled over all tiers */
	int64_t horizon;
	double shift;              /* label = log(m) - shift (mean at GBT_ARTEFACT_BASE_SCORE) */
	double smear;              /* Duan's factor on the training rows */
	/*
	 * Duan's factor per snapshot age (include/ltv/age_means.h), when
	 * multiplier.smear_by_age is 1; n 0: `smear` at every age. log(m)'s
	 * spread falls with the window, so one factor over every age lifts old
	 * payers' m far above what they go on to pay.
	 */
	struct age_means smear_by_age;
	double zero_window_value;  /* mean training ltv_H with no window revenue; NaN: pooled's */
	struct gbt_model *model;   /* owned; NULL: pooled's (for the pooled entry: m = 1) */
};

/* What method_multiplier loads; also what the stage predicts with right after training. */
struct multiplier_state {
	struct str_list features;  /* owned; the matrix columns in order */
	struct multiplier_model *models; /* in training order: by horizon, pooled then tiers */
	size_t n_models;
	size_t cap_models;
};

/* A state with a copy of features and no entries; free with multiplier_state_free. */
struct multiplier_state *multiplier_state_new(const struct str_list *features);
/* Frees a struct multiplier_state and every entry's regressor; NULL is a no-op. */
void multiplier_state_free(void *state);
/* Appends *m; the state takes over its regressor. */
void multiplier_state_add(struct multiplier_state *s, const struct multiplier_model *m);
/* The (tier, horizon) entry, borrowed from s; NULL when there is none. */
const struct multiplier_model *multiplier_state_find(const struct multiplier_state *s, int tier,
						     int64_t horizon);
/*
 * Adds the manifest and then each entry's body to out, in entry order: the
 * artefact's blobs and content hash. The regressors stay s's.
 */
int multiplier_state_save(const struct multiplier_state *s, struct gbt_artefact *out,
			  struct ltv_err *err);

/*
 * method_multiplier's predict, state a struct multiplier_state: a row with
 * window revenue gets rev_window × m from its tier's regressor (else the
 * pooled one), a row without gets its tier's zero-window value (else the
 * pooled one); NaN when the horizon has no pooled entry. out_p_payer, when
 * given, is all NaN. d must have the column rev_window.
 */
/* The smearing factor of m for a row served at window age window_days (NaN: the entry's). */
double multiplier_smear_for_age(const struct multiplier_model *m, double window_days);

int multiplier_predict(const void *state, const struct model_data *d, const size_t *rows,
		       size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
		       struct ltv_err *err);

extern const struct method method_multiplier;

#endif
