/*
 * What a model stage reads from its declared inputs and writes to its output
 * in the serving layer's types (struct model_data, struct gbt_artefact): the
 * stage side of those modules, which know nothing of stages themselves.
 */
#ifndef LTV_STAGE_IO_H
#define LTV_STAGE_IO_H

#include "ltv/gbt_artefact.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"

/*
 * Loads from the stage's declared inputs "features" and (with_tiers) "tiers".
 * Caller releases. The stage's as_of must be set (STAGE_USES_AS_OF).
 */
int model_data_load(struct stage_ctx *ctx, int with_tiers, struct model_data *out);

/*
 * Puts the report into ctx->metrics after what is there ("skipped_horizons"
 * when any horizon was skipped, "tiers_on_pooled_model" when a tier's rows
 * were nearly all the pooled model's, then "models"), adds each body's key and
 * bytes to ctx->content in order, opens the stage's output (stage_output_id)
 * and stores each body as its blob.
 */
int gbt_artefact_store(struct gbt_artefact *a, struct stage_ctx *ctx);

/*
 * The key of the per-method predictions a stage makes on its features'
 * rows (include/ltv/prediction_memo.h): the registry, and the fingerprint
 * and content hash of its "features", "tiers" and every method input, so
 * that select's predictions are handed to a calibrate that predicts from
 * the very same artefacts, and to nothing else. Caller frees.
 */
char *stage_prediction_key(const struct stage_ctx *ctx);

#endif
