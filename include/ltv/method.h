/*
 * A prediction method as select, calibrate and score see it: something that,
 * loaded from its stage's artefact, predicts ltv_H for rows of a features
 * frame. Each stored model (serving/hurdle_model.c, serving/curves_model.c,
 * ...) exports one `const struct method method_<name>`, and its stage
 * (pipeline/hurdle.c, ...) trains it; the method table in serving/method.c
 * lists them, serving/predictor.c's fallback_order the order (DESIGN.md
 * "score": hurdle → multiplier → lookalike → semantic → global median).
 *
 * Predictions are of total ltv_H: rev_window (what the row's user spent
 * before the age it describes, window_days) plus the revenue still to come. A method returns NaN for a row it has nothing for (no model for
 * that tier, no curve for that campaign): the caller falls back.
 */
#ifndef LTV_METHOD_H
#define LTV_METHOD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"

struct method {
	const char *name;   /* the stage that trains it */
	/*
	 * 1: the method models time itself and predicts a row at any age (curves,
	 * btyd). 0: it learnt from rows at the snapshot ages only, and the
	 * predictor serves a row at another age by interpolating between the
	 * snapshots around it (predictor_predict_raw).
	 */
	int any_age;
	/*
	 * 1: each user's own history is modelled at the user's exact age (BTYD);
	 * curves is any_age too, but one curve serves a whole cohort. select
	 * prefers such a method on a tie with a snapshot method (select.c).
	 */
	int user_at_age;
	/*
	 * 1: every user of a cohort at one age gets the same revenue to come
	 * (curves: the cohort's level times its curve's rest): the method says
	 * how much a cohort-age cell will pay and nothing about which of its
	 * users will. The predictor orders such a cell by a ranking method,
	 * keeping its total (predictor.c rank_within_cells, select.rank_cells).
	 */
	int same_to_come;
	/*
	 * 1: a row's prediction depends on the other rows of the call (curves
	 * levels each cohort from the rows it is given, summed in their order),
	 * so predictions made for one set of rows cannot stand in for those of
	 * a subset. 0: row by row, the same for a row in any call.
	 */
	int batch_level;
	/*
	 * 1: predict spreads a large call's rows over the run's threads itself
	 * (the tree models, run.jobs). A caller predicting every method runs
	 * these one after another and the others side by side (select.c
	 * predict_all).
	 */
	int own_threads;
	/* Loads the artefact's bodies; *out_state is freed with free_state. */
	int (*load)(struct registry *reg, const struct artefact_info *artefact,
		    const struct config *cfg, void **out_state, struct ltv_err *err);
	/*
	 * out_ltv[i] = predicted ltv_H of row rows[i] of d (NaN: nothing to say);
	 * out_p_payer may be NULL, and is NaN where the method has no such notion.
	 * d must carry tiers when the method is tiered.
	 */
	int (*predict)(const void *state, const struct model_data *d, const size_t *rows,
		       size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
		       struct ltv_err *err);
	/*
	 * NULL, or predict where past[i] marks a row at or past the horizon (the
	 * method neither any_age nor batch_level): predictor_predict_method
	 * serves such a row as rev_window + 0 × max(v - rev_window, 0), v being
	 * predict's value (NaN when v is), so only v's NaN-ness and overflow
	 * count, and its out_ltv[i] may be any value that gives the same. Every
	 * other value, and out_p_payer, are predict's own. hurdle walks no
	 * revenue tree for those rows: at the target horizon p_payer needs the
	 * payer trees only (13.5 M tree walks less when scoring 1,000,000 users).
	 */
	int (*predict_past)(const void *state, const struct model_data *d, const size_t *rows,
			    size_t n, int64_t horizon, const unsigned char *past, double *out_ltv,
			    double *out_p_payer, struct ltv_err *err);
	void (*free_state)(void *state);
	/*
	 * NULL, or the log-likelihood of the method's time model on the users it
	 * was fitted on (NaN: not fitted). The BTYD methods fit the same users'
	 * histories, so theirs compare: select serves a horizon without labels
	 * with the higher one (select.c choose_unlabelled).
	 */
	double (*fit_log_lik)(const void *state);
	/*
	 * NULL, or puts in place what serves users rather than what select and
	 * calibrate judge (the BTYD refit on every user's history before as_of,
	 * btyd.serve_fit). A state loaded by a stage that judges on validation
	 * users keeps the judged model; model_load_models calls this.
	 */
	void (*for_serving)(void *state);
};

#define METHOD_COUNT 7
#define METHOD_GLOBAL_MEDIAN (-1) /* "method" index when the last fallback served */
/* "method" index of the blend: a convex mix of the methods' revenue to come, per tier */
#define METHOD_BLEND (-2)
/* Array slots for counting what served: every method, the global median, the blend. */
#define METHOD_SLOTS (METHOD_COUNT + 2)

/* The methods in table order: hurdle, multiplier, curves, lookalike, semantic, bgnbd,
 * pareto_nbd (serving/method.c). */
extern const struct method *const method_table[METHOD_COUNT];
/* Index of a method by name ("blend": METHOD_BLEND), or -1. */
int method_index(const char *name);
/* The name of a method index: "global_median" for METHOD_GLOBAL_MEDIAN, "blend" for METHOD_BLEND. */
const char *method_name(int index);
/* The counting slot of a method index (0 .. METHOD_SLOTS - 1) and back. */
int method_slot(int index);
int method_of_slot(int slot);

#endif
