/*
 * Held-out rows at served ages, for the stages that judge methods (select)
 * and calibrate them (calibrate): each validation user seen as `score` and
 * `evaluate` see a user, once per pseudo as_of T' at the real age it has
 * there, with its actual from as_of (FEATURE_ROWS_HELD_OUT,
 * include/ltv/feature_build.h), built by the scoring path
 * (model_data_build) with the features artefact's encodings and the tiers
 * of the training rows. Validation rows on snapshot ages never showed the
 * error of serving between snapshots, nor a campaign as evaluate sums it
 * (each user once, all at their own age).
 */
#ifndef LTV_HELD_OUT_H
#define LTV_HELD_OUT_H

#include <stdint.h>

#include "ltv/model_data.h"
#include "ltv/stage.h"

struct held_out {
	struct model_data d;  /* the rows, with tiers; d.group = the row's pseudo as_of index */
	uint32_t *group;      /* owned: held_out_k per row */
	const double *h;      /* held_out_h: the horizon a row is held out for */
	const double *k;      /* held_out_k: its pseudo as_of index */
	size_t n_k;           /* 1 + the largest held_out_k */
};

/*
 * Builds the held-out rows of the stage's features artefact (train: the
 * stage's model_data of it, with tiers), reading user-days of ctx->reg
 * complete at its as_of only. Caller releases.
 */
int held_out_load(struct stage_ctx *ctx, const struct model_data *train, struct held_out *out);
void held_out_release(struct held_out *h);

/*
 * The held-out rows of horizon (of that tier when tier > 0) in out->valid,
 * in frame order; out->train is empty. Caller releases (row_split_release).
 */
void held_out_split(const struct held_out *h, int64_t horizon, int tier, struct row_split *out);

#endif
