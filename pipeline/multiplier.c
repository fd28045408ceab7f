/*
 * Stage multiplier: for a user who paid in the observation window, ltv_H =
 * rev_window × m with m = ltv_H / rev_window >= 1 predicted by XGBoost. The
 * model regresses log(m) with squared error and exponentiates with Duan's
 * smearing (mean(exp(residual)) on the training rows), chosen over fitting m
 * directly because m is heavy-tailed (a window payer who becomes a whale has
 * m in the hundreds) and squared error on m would chase those few rows. For a
 * user with rev_window == 0 the multiplier is undefined: such a user is
 * predicted the training mean ltv_H of zero-window users of its tier, its
 * "zero_window_value". For every configured horizon there is a pooled entry
 * over all tiers (tier 0, the fallback) and one per tier 1..3 with its own
 * regressor when it has at least multiplier.min_tier_users training rows
 * with window revenue (the rows the regressor learns from) and its own
 * zero-window value when it has that many zero-window training rows; what a
 * tier lacks it takes from the pooled entry. A tier whose training rows are
 * nearly all the pooled entry's (gbt_artefact_tier_fit, hurdle's rule on
 * the same rows: at 1,000,000 users tier 1 holds 99.3-99.6% of them and
 * 99.8% of the window payers) fits no regressor and keeps only its
 * zero-window value: its own would be the pooled one fitted again. Early stopping watches the
 * entry's own validation rows, else the pooled ones, else none
 * (gbt_artefact_pick_valid). This file trains; serving/multiplier_model.c
 * holds the trained state, its artefact format (bodies
 * "t<tier>:h<H>:multiplier" beside a "manifest") and method_multiplier, which
 * reads it back.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/log.h"
#include "ltv/model_data.h"
#include "ltv/multiplier_model.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"

/* The rows among rows[0..n) with window revenue, each counted as often as rows_build repeats it. */
static size_t window_rows(const struct model_data *d, const size_t *rows, size_t n)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	size_t n_kept = 0;

	for (size_t i = 0; i < n; i++)
		if (rev_window[rows[i]] > 0)
			n_kept += model_data_repeats(d, rows[i]);
	return n_kept;
}

/*
 * The rows among rows[0..n) with window revenue, n_kept of them as
 * window_rows counts them (the caller has counted them already), each
 * repeated as many times as its weight (model_data_repeats: rows is a
 * model_data_split_weighted list, walked as model_data_split's repeated one
 * without building it): their matrix and, as their target, log(m); when
 * out_age is not NULL, also each kept row's window age (caller frees).
 * Every struct gbt_artefact_rows here holds log(m).
 */
static int rows_build(const struct model_data *d, const struct str_list *features,
		      const double *ltv, const size_t *rows, size_t n, size_t n_kept,
		      struct gbt_artefact_rows *out, double **out_age, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	size_t *pos;
	int ret;

	memset(out, 0, sizeof(*out));
	pos = xmalloc((n_kept ? n_kept : 1) * sizeof(*pos));
	out->target = xmalloc((n_kept ? n_kept : 1) * sizeof(double));
	if (out_age)
		*out_age = xmalloc((n_kept ? n_kept : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		/* ltv_H includes the window, so m >= 1; fmax guards rounding only. */
		const double target = rev_window[rows[i]] > 0
				      ? log(fmax(1.0, ltv[rows[i]] / rev_window[rows[i]])) : 0;

		if (!(rev_window[rows[i]] > 0))
			continue;
		for (size_t k = model_data_repeats(d, rows[i]); k > 0; k--) {
			assert(out->n < n_kept);
			if (out_age)
				(*out_age)[out->n] = frame_col_found(window) ? frame_col_at(window, rows[i]) : NAN;
			out->target[out->n] = target;
			pos[out->n++] = rows[i];
		}
	}
	ret = model_data_matrix(d, features, pos, out->n, &out->x, err);
	free(pos);
	return ret;
}

static float *labels(const struct gbt_artefact_rows *f, double shift)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++)
		y[i] = (float)(f->target[i] - shift);
	return y;
}

/*
 * Fits log(m) on train and Duan's smearing factor on the same rows (one over
 * all rows and, with multiplier.smear_by_age, one per snapshot age: the
 * rows' ages train_age, include/ltv/age_means.h). Labels
 * are shifted so their training mean sits at XGBoost 1.7's starting point
 * (base_score 0.5): early stopping then cannot leave the fit short of it.
 */
static int fit_multiplier(struct stage_ctx *ctx, const struct int_list *snapshots,
			  const struct gbt_artefact_rows *train,
			  const double *train_age, const struct gbt_artefact_rows *valid_own,
			  const struct gbt_artefact_rows *valid_pooled, const struct str_list *features,
			  struct multiplier_model *m, cJSON *info)
{
	enum gbt_artefact_valid source;
	const struct gbt_artefact_rows *valid =
		gbt_artefact_pick_valid(valid_own, valid_pooled, &source);
	struct gbt_param p;
	float *y = NULL, *yv = NULL;
	double *pred = NULL, sum = 0;
	int ret;

	for (size_t i = 0; i < train->n; i++)
		sum += train->target[i];
	m->shift = sum / (double)train->n - GBT_ARTEFACT_BASE_SCORE;
	y = labels(train, m->shift);
	yv = valid ? labels(valid, m->shift) : NULL;
	gbt_artefact_param(&ctx->cfg->multiplier, "reg:squarederror", stage_threads(ctx), &p);
	ret = gbt_fit(&p, train->x, y, NULL, train->n, valid ? valid->x : NULL, yv,
		      valid ? valid->n : 0, features->n, (const char *const *)features->v, &m->model,
		      &ctx->err);
	if (ret == 0) {
		pred = xmalloc(train->n * sizeof(double));
		ret = gbt_predict(m->model, train->x, train->n, features->n,
				  pred, &ctx->err);
	}
	if (ret == 0) {
		sum = 0;
		for (size_t i = 0; i < train->n; i++) {
			pred[i] = exp(train->target[i] - (pred[i] + m->shift)); /* now exp(residual) */
			sum += pred[i];
		}
		m->smear = sum / (double)train->n;
		if (ctx->cfg->multiplier.smear_by_age)
			age_means_fit(snapshots, train_age, pred, NULL, NULL, NULL, 1, train->n,
				      &m->smear, &m->smear_by_age);
		cJSON_AddStringToObject(info, "valid", gbt_artefact_valid_name(source));
		cJSON_AddNumberToObject(info, "iter", gbt_best_iteration(m->model));
		cJSON_AddNumberToObject(info, "smear", m->smear);
		if (m->smear_by_age.n > 0)
			age_means_add_json(info, "smear_by_age", &m->smear_by_age);
	}
	free(pred);
	free(y);
	free(yv);
	return ret;
}

/* The pooled entry of a horizon, as its tiers' entries need it. */
struct pooled {
	size_t n_train;                           /* its training rows (split.n_train) */
	const struct gbt_artefact_rows *valid;    /* its validation rows, for early stopping */
	struct cJSON *nearly_pooled;              /* gbt_artefact.nearly_pooled */
};

/* The weighted mean ltv of split's training rows without window revenue, and their count. */
static double zero_window_mean(const struct model_data *d, const double *ltv,
			       const struct row_split *split, size_t *out_n)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	double sum = 0, weight = 0;

	*out_n = 0;
	for (size_t i = 0; i < split->n_train; i++) {
		if (rev_window[split->train[i]] == 0) {
			double w = model_data_weight(d, split->train[i]);

			/* once per repeat, in model_data_split's order: the same sums to the bit */
			for (size_t k = model_data_repeats(d, split->train[i]); k > 0; k--) {
				sum += w * ltv[split->train[i]];
				weight += w;
				(*out_n)++;
			}
		}
	}
	return *out_n > 0 ? sum / weight : NAN;
}

/*
 * Builds split's rows with window revenue (n_train and n_valid of them,
 * window_rows's counts) and fits m's regressor on them.
 */
static int fit_entry(struct stage_ctx *ctx, const struct model_data *d, const double *ltv,
		     const struct row_split *split, size_t n_train, size_t n_valid,
		     const struct pooled *pooled, struct multiplier_state *state,
		     struct multiplier_model *m, cJSON *info)
{
	struct gbt_artefact_rows train = { 0 }, valid = { 0 };
	double *train_age = NULL;
	int ret = rows_build(d, &state->features, ltv, split->train, split->n_train, n_train,
			     &train, &train_age, &ctx->err);

	if (ret == 0)
		ret = rows_build(d, &state->features, ltv, split->valid, split->n_valid, n_valid,
				 &valid, NULL, &ctx->err);
	if (ret == 0)
		ret = fit_multiplier(ctx, &d->params.snapshots, &train, train_age, &valid,
				     pooled ? pooled->valid : NULL, &state->features, m, info);
	gbt_artefact_rows_release(&train);
	gbt_artefact_rows_release(&valid);
	free(train_age);
	return ret;
}

/*
 * Trains the (tier, horizon) entry on split; pooled is NULL when tier is 0.
 * A tier entry with neither a regressor nor a zero-window value of its own
 * is not stored.
 */
static int train_entry(struct stage_ctx *ctx, const struct model_data *d, int tier,
		       int64_t horizon, const double *ltv, const struct row_split *split,
		       const struct pooled *pooled, struct multiplier_state *state,
		       cJSON *details)
{
	const size_t min_users = (size_t)ctx->cfg->multiplier.min_tier_users;
	const size_t n_train = window_rows(d, split->train, split->n_train);
	const size_t n_valid = window_rows(d, split->valid, split->n_valid);
	const enum gbt_artefact_tier_fit fit =
		pooled ? gbt_artefact_tier_fit(n_train, min_users, split->n_train, pooled->n_train)
		       : GBT_ARTEFACT_TIER_OWN;
	struct multiplier_model m = { .tier = tier, .horizon = horizon, .shift = 0, .smear = 1,
				      .zero_window_value = NAN };
	size_t n_zero;
	double zero_value = zero_window_mean(d, ltv, split, &n_zero);
	cJSON *info;
	int ret = 0;

	if (!pooled || n_zero >= min_users)
		m.zero_window_value = zero_value;
	if (fit == GBT_ARTEFACT_TIER_NEARLY_POOLED)
		gbt_artefact_note_nearly_pooled(pooled->nearly_pooled, tier, horizon);
	if (fit != GBT_ARTEFACT_TIER_OWN && isnan(m.zero_window_value))
		return 0;
	info = gbt_artefact_add_model_info(details, tier, horizon);
	cJSON_AddNumberToObject(info, "n_train", (double)n_train);
	cJSON_AddNumberToObject(info, "n_valid", (double)n_valid);
	cJSON_AddNumberToObject(info, "n_zero_train", (double)n_zero);
	if (!isnan(m.zero_window_value))
		cJSON_AddNumberToObject(info, "zero_window_value", m.zero_window_value);
	if (pooled)
		cJSON_AddStringToObject(info, "regressor", gbt_artefact_tier_fit_name(fit));
	if (n_train > 0 && fit == GBT_ARTEFACT_TIER_OWN)
		ret = fit_entry(ctx, d, ltv, split, n_train, n_valid, pooled, state, &m, info);
	if (ret < 0) {
		err_prefix(&ctx->err, "multiplier: tier %d, horizon %lld", tier, (long long)horizon);
		gbt_free(m.model);
		return ret;
	}
	multiplier_state_add(state, &m);
	LOG(LOG_INFO, "tier %d h%lld: %zu training rows with window revenue%s, %zu without "
	    "(mean ltv %.4g%s)", tier, (long long)horizon, n_train,
	    m.model ? "" : fit == GBT_ARTEFACT_TIER_NEARLY_POOLED
	    ? " (the pooled model: nearly all its rows)" : " (no model)",
	    n_zero, isnan(m.zero_window_value) ? 0.0 : m.zero_window_value,
	    isnan(m.zero_window_value) ? ", pooled's used" : "");
	return 0;
}

static int train_horizon(struct stage_ctx *ctx, const struct model_data *d, int64_t horizon,
			 struct multiplier_state *state, struct gbt_artefact *artefact)
{
	const double *ltv = model_data_label(d, horizon);
	struct row_split pooled_split;
	struct gbt_artefact_rows pooled_valid = { 0 };
	struct pooled pooled = { .valid = &pooled_valid, .nearly_pooled = artefact->nearly_pooled };
	size_t n_repeated = 0; /* training rows as model_data_split repeats them */
	int ret;

	if (!ltv)
		return err_set(&ctx->err, LTV_EINTERNAL,
			       "multiplier: the features artefact has no label ltv_%lld; rerun features",
			       (long long)horizon);
	model_data_split_weighted(d, horizon, 0, &pooled_split);
	for (size_t i = 0; i < pooled_split.n_train; i++)
		n_repeated += model_data_repeats(d, pooled_split.train[i]);
	if (n_repeated == 0) {
		LOG(LOG_WARN, "h%lld: no user is mature at this horizon in the training cohorts; "
		    "no model for it", (long long)horizon);
		cJSON_AddItemToArray(artefact->skipped, cJSON_CreateNumber((double)horizon));
		row_split_release(&pooled_split);
		return 0;
	}
	ret = train_entry(ctx, d, 0, horizon, ltv, &pooled_split, NULL, state, artefact->models);
	pooled.n_train = pooled_split.n_train;
	if (ret == 0)
		ret = rows_build(d, &state->features, ltv, pooled_split.valid, pooled_split.n_valid,
				 window_rows(d, pooled_split.valid, pooled_split.n_valid),
				 &pooled_valid, NULL, &ctx->err);
	for (int tier = 1; tier < GBT_ARTEFACT_N_TIERS && ret == 0; tier++) {
		struct row_split split;

		model_data_split_of_tier(d, &pooled_split, tier, &split);
		ret = train_entry(ctx, d, tier, horizon, ltv, &split, &pooled, state,
				  artefact->models);
		row_split_release(&split);
	}
	gbt_artefact_rows_release(&pooled_valid);
	row_split_release(&pooled_split);
	return ret;
}

/* ---- metrics ---- */

/*
 * At the target horizon, on its validation rows: RMSLE and WAPE per user, WAPE
 * and bias of campaign totals, and the share of rows without window revenue
 * (which get a tier constant, not a multiplier).
 */
static int add_metrics(struct stage_ctx *ctx, const struct model_data *d,
		       const struct multiplier_state *state)
{
	const int64_t target = d->params.target_horizon;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct gbt_artefact_validation v;
	double zero_share = NAN;
	size_t n_zero = 0;
	int ret = gbt_artefact_validate(d, target, &method_multiplier, state,
					multiplier_state_find(state, 0, target) != NULL, &v,
					&ctx->err);

	if (v.predicted) {
		for (size_t i = 0; i < v.n; i++)
			n_zero += rev_window[v.split.valid[i]] == 0;
		zero_share = (double)n_zero / (double)v.n;
	}
	cJSON_AddNumberToObject(ctx->metrics, "horizon", (double)target);
	gbt_artefact_add_scores(ctx->metrics, &v.scores);
	gbt_artefact_add_metric(ctx->metrics, "zero_window_share", zero_share);
	cJSON_AddNumberToObject(ctx->metrics, "n_valid", (double)v.n);
	cJSON_AddNumberToObject(ctx->metrics, "n_models", (double)state->n_models);
	gbt_artefact_validation_release(&v);
	return ret;
}

int stage_multiplier_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct multiplier_state *state = NULL;
	struct gbt_artefact artefact;
	struct str_list features;
	struct model_data d;
	int ret;

	gbt_artefact_init(&artefact);
	ret = model_data_load(ctx, 1, &d);
	if (ret < 0)
		goto out;
	/* multiplier.features plus the attributes' encodings (multiplier.attribute_features) */
	config_model_features(cfg, &cfg->multiplier, &features);
	state = multiplier_state_new(&features);
	config_str_list_free(&features);
	for (size_t h = 0; h < d.params.horizons.n && ret == 0; h++) {
		ret = train_horizon(ctx, &d, d.params.horizons.v[h], state, &artefact);
		stage_progress(ctx, "horizons", h + 1, d.params.horizons.n);
	}
	if (ret == 0)
		ret = add_metrics(ctx, &d, state);
	if (ret == 0)
		ret = multiplier_state_save(state, &artefact, &ctx->err);
	if (ret == 0)
		ret = gbt_artefact_store(&artefact, ctx);
out:
	gbt_artefact_release(&artefact);
	multiplier_state_free(state);
	model_data_release(&d);
	return ret;
}
