/*
 * The hurdle stage's model as it is stored and predicted with: per (tier,
 * horizon) a payer classifier and a revenue regressor, ltv_H = rev_window +
 * p × E (DESIGN.md; pipeline/hurdle.c trains it, serving/hurdle_model.c
 * stores, loads and predicts). The stage predicts with the state it has just
 * trained; method_hurdle loads the same state back from the artefact.
 */
#ifndef LTV_HURDLE_MODEL_H
#define LTV_HURDLE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/age_means.h"
#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/method.h"
#include "ltv/model_data.h"

/* How E[future | payer] comes out of the revenue regressor; stored as u32 in the manifest. */
enum hurdle_revenue_kind {
	HURDLE_REVENUE_NONE,       /* no training payers: E = 0, no regressor */
	HURDLE_REVENUE_LOG_SMEAR,  /* squared error on log1p(future), Duan's smearing */
	HURDLE_REVENUE_GAMMA,      /* reg:gamma on future */
	HURDLE_REVENUE_KIND_COUNT
};

/* "none", "log1p_smear" or "gamma" (as the metrics record it); a static string. */
const char *hurdle_revenue_kind_name(enum hurdle_revenue_kind kind);

struct hurdle_model {
	int tier;                  /* 0: pooled over all tiers */
	int64_t horizon;
	double p_const;            /* p when payer is NULL (one class in training), else NaN */
	enum hurdle_revenue_kind kind;
	double shift;              /* label centring, added back by hurdle_model_revenue */
	double smear;              /* mean correction on training payers */
	/*
	 * The same correction per snapshot age (include/ltv/age_means.h), when
	 * hurdle.smear_by_age is 1 (n 0: `smear` at every age): the spread of
	 * log1p(future) falls with the age a row describes, so one factor over
	 * every age serves old payers the young payers' correction.
	 */
	struct age_means smear_by_age;
	struct gbt_model *payer;   /* owned, or NULL */
	struct gbt_model *revenue; /* owned, or NULL exactly when kind is HURDLE_REVENUE_NONE */
};

/*
 * E[future | payer] from the revenue regressor's prediction pred (on its
 * label scale) for a row at age window_days: the shift added back, the
 * smearing factor of that age applied, never below 0; 0 for
 * HURDLE_REVENUE_NONE.
 */
double hurdle_model_revenue(const struct hurdle_model *m, double pred, double window_days);

/* The column of window_days among features (the age a row describes); features->n when absent. */
size_t hurdle_window_column(const struct str_list *features);

/* What method_hurdle loads; also what the stage predicts with right after training. */
struct hurdle_state {
	struct str_list features;  /* owned; the matrix columns in order */
	struct hurdle_model *models; /* in training order: by horizon, pooled then tiers */
	size_t n_models;
	size_t cap_models;
};

/* A state with a copy of features and no models; free with hurdle_state_free. */
struct hurdle_state *hurdle_state_new(const struct str_list *features);
/* Frees a struct hurdle_state and every model's boosters; NULL is a no-op. */
void hurdle_state_free(void *state);
/* Appends *m; the state takes over its boosters. */
void hurdle_state_add(struct hurdle_state *s, const struct hurdle_model *m);
/* The (tier, horizon) model, borrowed from s; NULL when there is none. */
const struct hurdle_model *hurdle_state_find(const struct hurdle_state *s, int tier,
					     int64_t horizon);
/*
 * Adds the manifest and then each model's payer and revenue bodies to out,
 * in model order: the artefact's blobs and content hash. The boosters stay s's.
 */
int hurdle_state_save(const struct hurdle_state *s, struct gbt_artefact *out,
		      struct ltv_err *err);

/*
 * method_hurdle's predict, state a struct hurdle_state: each row uses its
 * tier's model at horizon, else the pooled one; rows get NaN when the
 * horizon has no pooled model. d must have the column rev_window.
 */
int hurdle_predict(const void *state, const struct model_data *d, const size_t *rows, size_t n,
		   int64_t horizon, double *out_ltv, double *out_p_payer, struct ltv_err *err);

extern const struct method method_hurdle;

#endif
