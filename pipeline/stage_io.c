/*
 * The stage side of the serving layer's model data and XGBoost artefacts
 * (contract in include/ltv/stage_io.h).
 */
#include <assert.h>

#include <cjson/cJSON.h>

#include "ltv/stage_io.h"

int model_data_load(struct stage_ctx *ctx, int with_tiers, struct model_data *out)
{
	const struct artefact_info *features = stage_input(ctx, "features");
	const struct artefact_info *tiers = with_tiers ? stage_input(ctx, "tiers") : NULL;

	assert(features && (!with_tiers || tiers));
	return model_data_load_artefacts(ctx->reg, features, tiers, out, &ctx->err);
}

int gbt_artefact_store(struct gbt_artefact *a, struct stage_ctx *ctx)
{
	int64_t out_id;
	int ret;

	if (cJSON_GetArraySize(a->skipped) > 0) {
		cJSON_AddItemToObject(ctx->metrics, "skipped_horizons", a->skipped);
		a->skipped = NULL;
	}
	cJSON_AddItemToObject(ctx->metrics, "models", a->models);
	a->models = NULL;
	for (size_t i = 0; i < a->n_bodies; i++) {
		hasher_add_str(&ctx->content, a->bodies[i].key);
		hasher_update(&ctx->content, a->bodies[i].data, a->bodies[i].len);
	}
	ret = stage_output_id(ctx, &out_id);
	for (size_t i = 0; i < a->n_bodies && ret == 0; i++)
		ret = registry_blob_put(ctx->reg, out_id, a->bodies[i].key, a->bodies[i].data,
					a->bodies[i].len, &ctx->err);
	return ret;
}
