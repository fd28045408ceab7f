/*
 * The buy-till-you-die methods as stages (DESIGN.md "btyd"): a count model of
 * paying days (BG/NBD or Pareto/NBD) with Gamma-Gamma spend per paying day,
 * fitted per app on the training users' whole history before as_of, in weeks,
 * day 0 being the acquisition. One module owns fitting, storing, loading and
 * predicting; each count model plugs in through struct btyd_count_model
 * (pipeline/btyd_bgnbd.c, pipeline/btyd_pareto.c).
 *
 * Prediction for a row of age s with history (x, t_x, T = s) at horizon H:
 * rev_window + E[paying days in (s, H] | x, t_x, T] x E[spend | x, m_x]; its
 * p_payer is P(at least one paying day in (s, H]). Such a method models time
 * itself, so a row is predicted at its own age (struct method.any_age).
 */
#ifndef LTV_BTYD_STAGE_H
#define LTV_BTYD_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ltv/btyd_history.h"
#include "ltv/registry.h"
#include "ltv/stage.h"

struct btyd_count_model {
	const char *name; /* the stage and method name, and the prefix of its blobs */
	/* Fits on collapsed histories; *out_model freed with free_model. */
	int (*fit)(const struct btyd_triples *t, void **out_model, struct ltv_err *err);
	/*
	 * For history h and the next `weeks`: expected paying days, P(alive) and
	 * P(at least one paying day).
	 */
	int (*outlook)(const void *model, const struct btyd_history *h, double weeks,
		       double *out_expected, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err);
	int (*save)(const void *model, uint8_t **out_data, size_t *out_len, struct ltv_err *err);
	int (*load)(const void *data, size_t len, void **out_model, struct ltv_err *err);
	void (*free_model)(void *model);
	/* Adds the fitted parameters to a metrics object. */
	void (*add_metrics)(cJSON *o, const void *model);
};

/* The stage body for a count model. */
int btyd_stage_run(struct stage_ctx *ctx, const struct btyd_count_model *kind);

/* struct method's load / predict / free_state for a count model. */
int btyd_method_load(const struct btyd_count_model *kind, struct registry *reg,
		     const struct artefact_info *artefact, void **out_state, struct ltv_err *err);
int btyd_method_predict(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			struct ltv_err *err);
void btyd_method_free(void *state);

/*
 * P(alive) and P(at least one paying day in the next `days` days) of rows of
 * d at their age, from a loaded state (btyd_method_load).
 */
int btyd_method_outlook(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, double days, double *out_p_alive, double *out_p_any,
			struct ltv_err *err);

#endif
