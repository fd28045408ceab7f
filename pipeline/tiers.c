/*
 * Stage tiers: classifies every (app, campaign) by how much mature history it
 * has at the target horizon. Tier 1 has enough users and payers for a curve
 * of its own; tier 2 enough to share pooled models; tier 3 is new or sparse
 * and leans on look-alike and name similarity. Writes the campaign_tiers
 * table (for people, via sqlite3) and each user's tier as a frame column
 * (for the model stages).
 */
#include <math.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "ltv/model_data.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"
#include "ltv/timeutil.h"

static int classify(const struct config *cfg, const struct campaign_tier_row *r)
{
	if (r->mature_users >= cfg->tiers.tier1_min_users && r->payers >= cfg->tiers.tier1_min_payers)
		return 1;
	if (r->mature_users >= cfg->tiers.tier2_min_users && r->payers >= cfg->tiers.tier2_min_payers)
		return 2;
	return 3;
}

/* Aggregates per cohort; rows[c].app_id/campaign stay NULL for cohorts with no user. */
static struct campaign_tier_row *aggregate(const struct model_data *d, const struct config *cfg,
					   size_t n_cohorts)
{
	const int64_t target = d->params.target_horizon;
	const double *y = model_data_label(d, target);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col split = frame_col(&d->frame, "split");
	const struct frame_col user_rep = frame_col(&d->frame, "user_rep");
	const double *install = frame_column(&d->frame, "install_time");
	struct campaign_tier_row *rows = xcalloc(n_cohorts ? n_cohorts : 1, sizeof(*rows));
	double *first_install = xmalloc((n_cohorts ? n_cohorts : 1) * sizeof(double));

	for (size_t c = 0; c < n_cohorts; c++)
		first_install[c] = INFINITY;
	for (size_t i = 0; i < d->frame.n_rows; i++) {
		size_t c = model_data_cohort(d, i);
		struct campaign_tier_row *r = &rows[c];

		r->app_id = d->apps[c / d->n_campaigns];
		r->campaign = d->campaigns[c % d->n_campaigns];
		first_install[c] = fmin(first_install[c], install[i]);
		/* One row per user counts (user_rep): the others are the same user at other ages. */
		if (isnan(y[i]) || (frame_col_found(user_rep) && frame_col_at(user_rep, i) == 0))
			continue;
		r->mature_users++;
		r->validation_users += frame_col_at(split, i) == 1;
		r->payers += y[i] - rev_window[i] > 0;
		r->revenue += y[i];
	}
	for (size_t c = 0; c < n_cohorts; c++) {
		struct campaign_tier_row *r = &rows[c];

		r->mean_ltv = r->mature_users ? r->revenue / (double)r->mature_users : NAN;
		r->history_days = r->app_id ? time_day_index((int64_t)first_install[c], d->as_of) : 0;
		r->tier = classify(cfg, r);
	}
	free(first_install);
	return rows;
}

static void add_metrics(struct stage_ctx *ctx, const struct campaign_tier_row *rows,
			size_t n_cohorts, const struct frame *tiers, struct frame_col user_rep)
{
	double campaigns[4] = { 0 }, users[4] = { 0 };
	char name[48];

	for (size_t c = 0; c < n_cohorts; c++)
		if (rows[c].app_id)
			campaigns[rows[c].tier] += 1;
	for (size_t i = 0; i < tiers->n_rows; i++)
		users[(int)tiers->cols[0][i]] += frame_col_found(user_rep) ? frame_col_at(user_rep, i) : 1;
	for (int t = 1; t <= 3; t++) {
		snprintf(name, sizeof(name), "tier%d_campaigns", t);
		cJSON_AddNumberToObject(ctx->metrics, name, campaigns[t]);
		snprintf(name, sizeof(name), "tier%d_users", t);
		cJSON_AddNumberToObject(ctx->metrics, name, users[t]);
	}
}

int stage_tiers_run(struct stage_ctx *ctx)
{
	struct model_data d;
	struct campaign_tier_row *rows = NULL;
	struct frame tiers;
	size_t n_cohorts;
	int64_t out_id;
	double *tier;
	int ret = model_data_load(ctx, 0, &d);

	if (ret < 0)
		return ret;
	n_cohorts = d.n_apps * d.n_campaigns;
	rows = aggregate(&d, ctx->cfg, n_cohorts);
	frame_init(&tiers, d.frame.n_rows);
	tier = frame_add_column(&tiers, "tier");
	for (size_t i = 0; i < d.frame.n_rows; i++)
		tier[i] = rows[model_data_cohort(&d, i)].tier;
	add_metrics(ctx, rows, n_cohorts, &tiers, frame_col(&d.frame, "user_rep"));
	frame_hash(&tiers, &ctx->content);
	frame_compact(&tiers); /* a handful of tiers: stored as 2-byte codes */

	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = frame_save(&tiers, ctx->reg, out_id, &ctx->err);
	for (size_t c = 0; c < n_cohorts && ret == 0; c++) {
		if (!rows[c].app_id)
			continue;
		hasher_add_str(&ctx->content, rows[c].app_id);
		hasher_add_str(&ctx->content, rows[c].campaign);
		hasher_add_i64(&ctx->content, rows[c].tier);
		ret = registry_campaign_tier_insert(ctx->reg, out_id, &rows[c], &ctx->err);
	}
	free(rows); /* the strings are borrowed from d */
	frame_release(&tiers);
	model_data_release(&d);
	return ret;
}
