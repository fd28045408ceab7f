/*
 * The stage side of the serving layer's model data and XGBoost artefacts
 * (contract in include/ltv/stage_io.h).
 */
#include <assert.h>

#include <cjson/cJSON.h>

#include "ltv/jbuf.h"
#include "ltv/method.h"
#include "ltv/stage_io.h"

int model_data_load(struct stage_ctx *ctx, int with_tiers, struct model_data *out)
{
	const struct artefact_info *features = stage_input(ctx, "features");
	const struct artefact_info *tiers = with_tiers ? stage_input(ctx, "tiers") : NULL;

	assert(features && (!with_tiers || tiers));
	return model_data_load_artefacts(ctx->reg, features, tiers, out, &ctx->err);
}

/*
 * "tiers_on_pooled_model": the tiers the share rule put on the pooled model,
 * one string so `status` and `run` print it on the stage's line.
 */
static void add_nearly_pooled(cJSON *metrics, const cJSON *list)
{
	const cJSON *item;
	struct jbuf text;

	jbuf_init(&text);
	cJSON_ArrayForEach(item, list)
		jbuf_addf(&text, "%s ", item->valuestring);
	jbuf_addf(&text, "(%.0f%% or more of the pooled training rows)",
		  100 * GBT_ARTEFACT_TIER_OWN_MODEL_SHARE);
	cJSON_AddStringToObject(metrics, "tiers_on_pooled_model", text.p);
	jbuf_release(&text);
}

int gbt_artefact_store(struct gbt_artefact *a, struct stage_ctx *ctx)
{
	int64_t out_id;
	int ret;

	if (cJSON_GetArraySize(a->skipped) > 0) {
		cJSON_AddItemToObject(ctx->metrics, "skipped_horizons", a->skipped);
		a->skipped = NULL;
	}
	if (cJSON_GetArraySize(a->nearly_pooled) > 0)
		add_nearly_pooled(ctx->metrics, a->nearly_pooled);
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

char *stage_prediction_key(const struct stage_ctx *ctx)
{
	const char *names[METHOD_COUNT + 2] = { "features", "tiers" };
	char *key = xstrdup(registry_path(ctx->reg));

	for (int m = 0; m < METHOD_COUNT; m++)
		names[m + 2] = method_table[m]->name;
	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
		const struct artefact_info *a = stage_input(ctx, names[k]);
		char *next = xasprintf("%s\n%s %lld %s %s", key, names[k], a ? (long long)a->id : -1LL,
				       a ? a->fingerprint : "-", a ? a->content_hash : "-");

		free(key);
		key = next;
	}
	return key;
}
