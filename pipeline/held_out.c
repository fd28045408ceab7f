/*
 * Held-out rows at served ages (contract in include/ltv/held_out.h).
 */
#include <string.h>

#include "ltv/data_source.h"
#include "ltv/held_out.h"
#include "ltv/model_loader.h"

/* Each cohort's tier as the training rows give it (3 for a cohort they do not have). */
static double *cohort_tiers(const struct model_data *train)
{
	const size_t n_cohorts = train->n_apps * train->n_campaigns;
	double *tier = xmalloc((n_cohorts + 1) * sizeof(double));

	for (size_t c = 0; c <= n_cohorts; c++)
		tier[c] = 3;
	for (size_t i = 0; train->tier && i < train->frame.n_rows; i++)
		tier[model_data_cohort(train, i)] = train->tier[i];
	return tier;
}

int held_out_load(struct stage_ctx *ctx, const struct model_data *train, struct held_out *out)
{
	const struct artefact_info *features = stage_input(ctx, "features");
	struct encodings enc = { 0 };
	struct config cfg;
	double *tier;
	int ret;

	memset(out, 0, sizeof(*out));
	/* Rows built as the features artefact's own were: its parameters, not today's config. */
	config_copy(&cfg, ctx->cfg);
	feature_params_apply(&train->params, &cfg);
	ret = encodings_load(ctx->reg, features->id, &enc, &ctx->err);
	if (ret == 0) {
		const struct data_source data = data_source_registry(ctx->reg);

		ret = model_data_build(&data, &cfg, &enc, &train->params, train->as_of,
				       FEATURE_ROWS_HELD_OUT, NULL, INT64_MAX, &out->d, &ctx->err);
	}
	encodings_release(&enc);
	config_release(&cfg);
	if (ret < 0)
		return err_prefix(&ctx->err, "held-out rows");
	if (out->d.n_apps != train->n_apps || out->d.n_campaigns != train->n_campaigns) {
		ret = err_set(&ctx->err, LTV_EINTERNAL, "held-out rows: %zu apps and %zu campaigns, "
			      "the features artefact %zu and %zu", out->d.n_apps, out->d.n_campaigns,
			      train->n_apps, train->n_campaigns);
		held_out_release(out);
		return ret;
	}
	out->h = frame_column(&out->d.frame, "held_out_h");
	out->k = frame_column(&out->d.frame, "held_out_k");
	tier = cohort_tiers(train);
	out->d.tier = xmalloc((out->d.frame.n_rows ? out->d.frame.n_rows : 1) * sizeof(double));
	out->group = xmalloc((out->d.frame.n_rows ? out->d.frame.n_rows : 1) * sizeof(uint32_t));
	for (size_t i = 0; i < out->d.frame.n_rows; i++) {
		out->d.tier[i] = tier[model_data_cohort(&out->d, i)];
		/* A pseudo as_of is one scoring: the curves method levels a cohort within it only. */
		out->group[i] = (uint32_t)out->k[i];
		if ((size_t)out->k[i] + 1 > out->n_k)
			out->n_k = (size_t)out->k[i] + 1;
	}
	out->d.group = out->group;
	free(tier);
	return 0;
}

void held_out_release(struct held_out *h)
{
	model_data_release(&h->d);
	free(h->group);
	memset(h, 0, sizeof(*h));
}

void held_out_split(const struct held_out *h, int64_t horizon, int tier, struct row_split *out)
{
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < h->d.frame.n_rows; i++) {
		if (h->h[i] != (double)horizon || (tier > 0 && h->d.tier[i] != tier))
			continue;
		ARRAY_GROW(out->valid, out->n_valid + 1, cap);
		out->valid[out->n_valid++] = i;
	}
}
