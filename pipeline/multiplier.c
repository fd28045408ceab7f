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
 * tier lacks it takes from the pooled entry. Early stopping watches the
 * entry's own validation rows, else the pooled ones, else none (pick_valid).
 * Bodies are blobs "t<tier>:h<H>:multiplier" beside a "manifest" blob (format
 * at manifest_build) that method_multiplier reads back.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/gbt.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"

#define MANIFEST_MAGIC "LTVMULT1"
#define MANIFEST_VERSION 1u
#define MANIFEST_KEY "manifest"
#define N_TIERS 4          /* slot 0 is the pooled entry, then tiers 1..3 */
/* Fewer validation rows than this and early stopping follows noise: borrow or go without. */
#define MIN_VALID_ROWS 30
/* XGBoost 1.7's default base_score: labels are shifted so their mean starts there. */
#define XGB_BASE_SCORE 0.5
/* Caps log(m) before exp() so a wild tree cannot make an infinity. */
#define MAX_LOG_PRED 700.0

struct mult_model {
	int tier;                  /* 0: pooled over all tiers */
	int64_t horizon;
	double shift;              /* label = log(m) - shift (mean at XGB_BASE_SCORE) */
	double smear;              /* Duan's factor on the training rows */
	double zero_window_value;  /* mean training ltv_H with no window revenue; NaN: pooled's */
	struct gbt_model *model;   /* NULL: pooled's (for the pooled entry: m = 1) */
};

/* What method_multiplier loads; also what the stage predicts with right after training. */
struct mult_state {
	struct str_list features;  /* owned; the matrix columns in order */
	struct mult_model *models;
	size_t n_models;
	size_t cap_models;
};

static struct mult_state *state_new(const struct str_list *features)
{
	struct mult_state *s = xcalloc(1, sizeof(*s));

	s->features.n = features->n;
	s->features.v = xcalloc(features->n ? features->n : 1, sizeof(char *));
	for (size_t j = 0; j < features->n; j++)
		s->features.v[j] = xstrdup(features->v[j]);
	return s;
}

static void multiplier_free_state(void *state)
{
	struct mult_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_models; i++)
		gbt_free(s->models[i].model);
	free(s->models);
	for (size_t j = 0; j < s->features.n; j++)
		free(s->features.v[j]);
	free(s->features.v);
	free(s);
}

static const struct mult_model *model_find(const struct mult_state *s, int tier,
					   int64_t horizon)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (s->models[i].tier == tier && s->models[i].horizon == horizon)
			return &s->models[i];
	return NULL;
}

/* A row's tier slot; rows without a (valid) tier go to the pooled entry. */
static int row_tier(const struct model_data *d, size_t row)
{
	double t = d->tier ? d->tier[row] : 0;

	return t >= 1 && t <= 3 ? (int)t : 0;
}

static double multiplier_from_pred(const struct mult_model *m, double pred)
{
	return fmax(1.0, exp(fmin(pred + m->shift, MAX_LOG_PRED)) * m->smear);
}

static void gather_rows(const float *x, size_t k, const size_t *idx, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * k, x + idx[i] * k, k * sizeof(float));
}

/*
 * For each tier slot: the entry whose regressor its window payers use, and
 * the zero-window value its other rows get. False when the horizon has no
 * pooled entry (nothing to say).
 */
static int resolve(const struct mult_state *s, int64_t horizon,
		   const struct mult_model *out_model[N_TIERS], double out_zero[N_TIERS])
{
	const struct mult_model *pooled = model_find(s, 0, horizon);

	if (!pooled)
		return 0;
	for (int t = 0; t < N_TIERS; t++) {
		const struct mult_model *own = t ? model_find(s, t, horizon) : pooled;

		out_model[t] = own && own->model ? own : pooled;
		out_zero[t] = own && !isnan(own->zero_window_value) ? own->zero_window_value
								    : pooled->zero_window_value;
	}
	return 1;
}

static int multiplier_predict(const void *state, const struct model_data *d, const size_t *rows,
			      size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			      struct ltv_err *err)
{
	const struct mult_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const size_t k = s->features.n;
	const struct mult_model *use[N_TIERS];
	double zero[N_TIERS];
	size_t *pos = NULL, *pos_rows = NULL, *idx = NULL, n_pos = 0;
	float *x = NULL, *sub = NULL;
	double *pred = NULL;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		out_ltv[i] = NAN;
		if (out_p_payer)
			out_p_payer[i] = NAN; /* the multiplier has no notion of a payer */
	}
	if (n == 0 || !resolve(s, horizon, use, zero))
		return 0;
	if (!rev_window)
		return err_set(err, LTV_EINVAL,
			       "multiplier: the features frame has no column 'rev_window'");
	pos = xmalloc(n * sizeof(*pos));
	pos_rows = xmalloc(n * sizeof(*pos_rows));
	for (size_t i = 0; i < n; i++) {
		const double r = rev_window[rows[i]];

		if (r > 0) {
			pos[n_pos] = i;
			pos_rows[n_pos++] = rows[i];
		} else if (r == 0) {
			out_ltv[i] = zero[row_tier(d, rows[i])];
		}
	}
	if (n_pos == 0)
		goto out;
	ret = model_data_matrix(d, &s->features, pos_rows, n_pos, &x, err);
	if (ret < 0)
		goto out;
	idx = xmalloc(n_pos * sizeof(*idx));
	pred = xmalloc(n_pos * sizeof(*pred));
	for (int t = 0; t < N_TIERS && ret == 0; t++) {
		const struct mult_model *m = use[t];
		const float *xm = x;
		size_t n_sub = 0;

		if (t > 0 && m == use[0])
			continue; /* this tier's rows went with the pooled entry's */
		for (size_t j = 0; j < n_pos; j++)
			if (use[row_tier(d, pos_rows[j])] == m)
				idx[n_sub++] = j;
		if (n_sub == 0)
			continue;
		if (!m->model) {
			for (size_t j = 0; j < n_sub; j++)
				pred[j] = -INFINITY; /* m = 1: no window payer ever trained it */
		} else {
			if (n_sub < n_pos) {
				if (!sub)
					sub = xmalloc(n_pos * (k ? k : 1) * sizeof(float));
				gather_rows(x, k, idx, n_sub, sub);
				xm = sub;
			}
			ret = gbt_predict(m->model, xm, n_sub, k, pred, err);
		}
		for (size_t j = 0; j < n_sub && ret == 0; j++)
			out_ltv[pos[idx[j]]] = rev_window[pos_rows[idx[j]]] *
					       multiplier_from_pred(m, pred[j]);
	}
out:
	free(pos);
	free(pos_rows);
	free(idx);
	free(x);
	free(sub);
	free(pred);
	return ret;
}

/* ---- training ---- */

/* Window-payer rows of one fit: their feature matrix and log(m). */
struct fit_data {
	float *x;        /* n × k, row-major */
	double *log_m;
	size_t n;
};

static void fit_data_release(struct fit_data *f)
{
	free(f->x);
	free(f->log_m);
	memset(f, 0, sizeof(*f));
}

/* The rows among rows[0..n) with window revenue. */
static int fit_data_build(const struct model_data *d, const struct str_list *features,
			  const double *ltv, const size_t *rows, size_t n, struct fit_data *out,
			  struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	size_t *pos = xmalloc((n ? n : 1) * sizeof(*pos));
	int ret;

	memset(out, 0, sizeof(*out));
	out->log_m = xmalloc((n ? n : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		if (!(rev_window[rows[i]] > 0))
			continue;
		/* ltv_H includes the window, so m >= 1; fmax guards rounding only. */
		out->log_m[out->n] = log(fmax(1.0, ltv[rows[i]] / rev_window[rows[i]]));
		pos[out->n++] = rows[i];
	}
	ret = model_data_matrix(d, features, pos, out->n, &out->x, err);
	free(pos);
	return ret;
}

enum valid_source { VALID_OWN, VALID_POOLED, VALID_NONE };
static const char *const valid_source_names[] = { "own", "pooled", "none" };

/*
 * Early stopping watches the entry's own validation rows when it has at least
 * MIN_VALID_ROWS, else the pooled entry's when they are enough, else nothing:
 * the model then keeps every round.
 */
static const struct fit_data *pick_valid(const struct fit_data *own, const struct fit_data *pooled,
					 enum valid_source *out_source)
{
	if (own->n >= MIN_VALID_ROWS) {
		*out_source = VALID_OWN;
		return own;
	}
	if (pooled && pooled->n >= MIN_VALID_ROWS) {
		*out_source = VALID_POOLED;
		return pooled;
	}
	*out_source = VALID_NONE;
	return NULL;
}

static float *labels(const struct fit_data *f, double shift)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++)
		y[i] = (float)(f->log_m[i] - shift);
	return y;
}

static void param_init(const struct gbt_section *sec, int n_threads, struct gbt_param *p)
{
	gbt_param_init_defaults(p);
	p->objective = "reg:squarederror";
	p->max_depth = (int)sec->max_depth;
	p->eta = sec->eta;
	p->n_rounds = (int)sec->n_rounds;
	p->early_stopping_rounds = (int)sec->early_stopping_rounds;
	p->min_child_weight = sec->min_child_weight;
	p->subsample = sec->subsample;
	p->colsample_bytree = sec->colsample_bytree;
	p->lambda = sec->lambda;
	p->n_threads = n_threads;
}

/*
 * Fits log(m) on train and Duan's smearing factor on the same rows. Labels
 * are shifted so their training mean sits at XGBoost 1.7's starting point
 * (base_score 0.5): early stopping then cannot leave the fit short of it.
 */
static int fit_multiplier(struct stage_ctx *ctx, const struct fit_data *train,
			  const struct fit_data *valid_own, const struct fit_data *valid_pooled,
			  struct mult_model *m, cJSON *info)
{
	enum valid_source source;
	const struct fit_data *valid = pick_valid(valid_own, valid_pooled, &source);
	struct gbt_param p;
	float *y = NULL, *yv = NULL;
	double *pred = NULL, sum = 0;
	int ret;

	for (size_t i = 0; i < train->n; i++)
		sum += train->log_m[i];
	m->shift = sum / (double)train->n - XGB_BASE_SCORE;
	y = labels(train, m->shift);
	yv = valid ? labels(valid, m->shift) : NULL;
	param_init(&ctx->cfg->multiplier, stage_threads(ctx), &p);
	ret = gbt_fit(&p, train->x, y, NULL, train->n, valid ? valid->x : NULL, yv,
		      valid ? valid->n : 0, ctx->cfg->multiplier.features.n,
		      (const char *const *)ctx->cfg->multiplier.features.v, &m->model, &ctx->err);
	if (ret == 0) {
		pred = xmalloc(train->n * sizeof(double));
		ret = gbt_predict(m->model, train->x, train->n, ctx->cfg->multiplier.features.n,
				  pred, &ctx->err);
	}
	if (ret == 0) {
		sum = 0;
		for (size_t i = 0; i < train->n; i++)
			sum += exp(train->log_m[i] - (pred[i] + m->shift));
		m->smear = sum / (double)train->n;
		cJSON_AddStringToObject(info, "valid", valid_source_names[source]);
		cJSON_AddNumberToObject(info, "iter", gbt_best_iteration(m->model));
		cJSON_AddNumberToObject(info, "smear", m->smear);
	}
	free(pred);
	free(y);
	free(yv);
	return ret;
}

static void state_add(struct mult_state *s, const struct mult_model *m)
{
	ARRAY_GROW(s->models, s->n_models + 1, s->cap_models);
	s->models[s->n_models++] = *m;
}

/*
 * Trains the (tier, horizon) entry on split; pooled_valid is NULL when tier
 * is 0. A tier entry with neither a regressor nor a zero-window value of its
 * own is not stored.
 */
static int train_entry(struct stage_ctx *ctx, const struct model_data *d, int tier,
		       int64_t horizon, const double *ltv, const struct row_split *split,
		       const struct fit_data *pooled_valid, struct mult_state *state,
		       cJSON *details)
{
	const size_t min_users = (size_t)ctx->cfg->multiplier.min_tier_users;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct mult_model m = { .tier = tier, .horizon = horizon, .shift = 0, .smear = 1,
				.zero_window_value = NAN };
	struct fit_data train = { 0 }, valid = { 0 };
	double zero_sum = 0;
	size_t n_zero = 0;
	cJSON *info = NULL;
	char name[48];
	int ret;

	for (size_t i = 0; i < split->n_train; i++) {
		if (rev_window[split->train[i]] == 0) {
			zero_sum += ltv[split->train[i]];
			n_zero++;
		}
	}
	if (n_zero > 0 && (tier == 0 || n_zero >= min_users))
		m.zero_window_value = zero_sum / (double)n_zero;
	ret = fit_data_build(d, &state->features, ltv, split->train, split->n_train, &train,
			     &ctx->err);
	if (ret == 0)
		ret = fit_data_build(d, &state->features, ltv, split->valid, split->n_valid, &valid,
				     &ctx->err);
	if (ret < 0 || (tier > 0 && train.n < min_users && isnan(m.zero_window_value)))
		goto out;
	info = cJSON_CreateObject();
	snprintf(name, sizeof(name), "t%d_h%lld", tier, (long long)horizon);
	cJSON_AddItemToObject(details, name, info);
	cJSON_AddNumberToObject(info, "n_train", (double)train.n);
	cJSON_AddNumberToObject(info, "n_valid", (double)valid.n);
	cJSON_AddNumberToObject(info, "n_zero_train", (double)n_zero);
	if (!isnan(m.zero_window_value))
		cJSON_AddNumberToObject(info, "zero_window_value", m.zero_window_value);
	if (train.n > 0 && (tier == 0 || train.n >= min_users))
		ret = fit_multiplier(ctx, &train, &valid, pooled_valid, &m, info);
	if (ret < 0) {
		err_prefix(&ctx->err, "multiplier: tier %d, horizon %lld", tier, (long long)horizon);
		gbt_free(m.model);
		goto out;
	}
	state_add(state, &m);
	LOG(LOG_INFO, "tier %d h%lld: %zu training rows with window revenue%s, %zu without "
	    "(mean ltv %.4g%s)", tier, (long long)horizon, train.n, m.model ? "" : " (no model)",
	    n_zero, isnan(m.zero_window_value) ? 0.0 : m.zero_window_value,
	    isnan(m.zero_window_value) ? ", pooled's used" : "");
out:
	fit_data_release(&train);
	fit_data_release(&valid);
	return ret;
}

static int train_horizon(struct stage_ctx *ctx, const struct model_data *d, int64_t horizon,
			 struct mult_state *state, cJSON *details, cJSON *skipped)
{
	const double *ltv = model_data_label(d, horizon);
	struct row_split pooled_split;
	struct fit_data pooled_valid = { 0 };
	int ret;

	if (!ltv)
		return err_set(&ctx->err, LTV_EINTERNAL,
			       "multiplier: the features artefact has no label ltv_%lld; rerun features",
			       (long long)horizon);
	model_data_split(d, horizon, 0, &pooled_split);
	if (pooled_split.n_train == 0) {
		LOG(LOG_WARN, "h%lld: no user is mature at this horizon in the training cohorts; "
		    "no model for it", (long long)horizon);
		cJSON_AddItemToArray(skipped, cJSON_CreateNumber((double)horizon));
		row_split_release(&pooled_split);
		return 0;
	}
	ret = train_entry(ctx, d, 0, horizon, ltv, &pooled_split, NULL, state, details);
	if (ret == 0)
		ret = fit_data_build(d, &state->features, ltv, pooled_split.valid,
				     pooled_split.n_valid, &pooled_valid, &ctx->err);
	for (int tier = 1; tier < N_TIERS && ret == 0; tier++) {
		struct row_split split;

		model_data_split(d, horizon, tier, &split);
		ret = train_entry(ctx, d, tier, horizon, ltv, &split, &pooled_valid, state, details);
		row_split_release(&split);
	}
	fit_data_release(&pooled_valid);
	row_split_release(&pooled_split);
	return ret;
}

/* ---- metrics ---- */

static void add_number_or_null(cJSON *obj, const char *name, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(obj, name, v);
	else
		cJSON_AddNullToObject(obj, name);
}

/*
 * At the target horizon, on its validation rows: RMSLE and WAPE per user, WAPE
 * and bias of campaign totals, and the share of rows without window revenue
 * (which get a tier constant, not a multiplier).
 */
static int add_metrics(struct stage_ctx *ctx, const struct model_data *d,
		       const struct mult_state *state)
{
	const int64_t target = ctx->cfg->features.target_horizon;
	const double *ltv = model_data_label(d, target);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	double rmsle = NAN, wape = NAN, bias = NAN, zero_share = NAN;
	struct metrics_campaign campaign = { .wape = NAN };
	struct row_split split;
	double *pred, *actual;
	size_t *cohort, n, n_zero = 0;
	int ret = 0;

	model_data_split(d, target, 0, &split);
	n = split.n_valid;
	pred = xmalloc((n ? n : 1) * sizeof(double));
	actual = xmalloc((n ? n : 1) * sizeof(double));
	cohort = xmalloc((n ? n : 1) * sizeof(size_t));
	cJSON_AddNumberToObject(ctx->metrics, "horizon", (double)target);
	if (n > 0 && model_find(state, 0, target) && ltv) {
		for (size_t i = 0; i < n; i++) {
			actual[i] = ltv[split.valid[i]];
			cohort[i] = model_data_cohort(d, split.valid[i]);
			n_zero += rev_window[split.valid[i]] == 0;
		}
		zero_share = (double)n_zero / (double)n;
		ret = multiplier_predict(state, d, split.valid, n, target, pred, NULL, &ctx->err);
		if (ret == 0)
			ret = metrics_rmsle(actual, pred, n, &rmsle, NULL, &ctx->err);
		if (ret == 0)
			ret = metrics_wape(actual, pred, n, &wape, NULL, &ctx->err);
		if (ret == 0)
			ret = metrics_bias(actual, pred, n, &bias, NULL, &ctx->err);
		if (ret == 0)
			ret = metrics_campaign_wape(actual, pred, cohort, n,
						    d->n_apps * d->n_campaigns, 1, &campaign,
						    &ctx->err);
	}
	add_number_or_null(ctx->metrics, "rmsle", rmsle);
	add_number_or_null(ctx->metrics, "wape", wape);
	add_number_or_null(ctx->metrics, "campaign_wape", campaign.wape);
	add_number_or_null(ctx->metrics, "bias", bias);
	add_number_or_null(ctx->metrics, "zero_window_share", zero_share);
	cJSON_AddNumberToObject(ctx->metrics, "n_valid", (double)n);
	cJSON_AddNumberToObject(ctx->metrics, "n_models", (double)state->n_models);
	free(pred);
	free(actual);
	free(cohort);
	row_split_release(&split);
	return ret;
}

/* ---- storage ---- */

static void body_key(char *buf, size_t size, int tier, int64_t horizon)
{
	snprintf(buf, size, "t%d:h%lld:multiplier", tier, (long long)horizon);
}

struct body {
	char key[48];
	uint8_t *data;
	size_t len;
};

/*
 * Manifest blob (blob.h fields after magic MANIFEST_MAGIC, version 1):
 *   u64 n_features, then each feature name (str) in matrix column order;
 *   u64 n_models, then per entry: u32 tier (0 = pooled), u64 horizon,
 *   u32 has_body, f64 label shift, f64 smearing factor, f64 zero_window_value
 *   (NaN: the pooled entry's). An entry's body is the gbt_save buffer
 *   "t<tier>:h<H>:multiplier" (when has_body), predicting log(m) - shift.
 */
static void manifest_build(const struct mult_state *s, struct body *out)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, MANIFEST_MAGIC, MANIFEST_VERSION);
	blob_put_u64(&w, s->features.n);
	for (size_t j = 0; j < s->features.n; j++)
		blob_put_str(&w, s->features.v[j]);
	blob_put_u64(&w, s->n_models);
	for (size_t i = 0; i < s->n_models; i++) {
		const struct mult_model *m = &s->models[i];

		blob_put_u32(&w, (uint32_t)m->tier);
		blob_put_u64(&w, (uint64_t)m->horizon);
		blob_put_u32(&w, m->model != NULL);
		blob_put_f64(&w, m->shift);
		blob_put_f64(&w, m->smear);
		blob_put_f64(&w, m->zero_window_value);
	}
	snprintf(out->key, sizeof(out->key), "%s", MANIFEST_KEY);
	out->data = blob_writer_detach(&w, &out->len);
}

/* The manifest and every body, in a fixed order (the content hash depends on it). */
static int bodies_build(const struct mult_state *s, struct body **out_bodies, size_t *out_n,
			struct ltv_err *err)
{
	struct body *b = xcalloc(1 + s->n_models, sizeof(*b));
	size_t n = 1;
	int ret = 0;

	manifest_build(s, &b[0]);
	for (size_t i = 0; i < s->n_models && ret == 0; i++) {
		const struct mult_model *m = &s->models[i];

		if (!m->model)
			continue;
		body_key(b[n].key, sizeof(b[n].key), m->tier, m->horizon);
		ret = gbt_save(m->model, &b[n].data, &b[n].len, err);
		n += ret == 0;
	}
	*out_bodies = b;
	*out_n = n;
	return ret;
}

static void bodies_free(struct body *b, size_t n)
{
	for (size_t i = 0; b && i < n; i++)
		free(b[i].data);
	free(b);
}

int stage_multiplier_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct mult_state *state = NULL;
	struct body *bodies = NULL;
	size_t n_bodies = 0;
	cJSON *details = cJSON_CreateObject(), *skipped = cJSON_CreateArray();
	struct model_data d;
	int64_t out_id;
	int ret = model_data_load(ctx, 1, &d);

	if (ret < 0)
		goto out;
	state = state_new(&cfg->multiplier.features);
	for (size_t h = 0; h < cfg->features.horizons.n && ret == 0; h++)
		ret = train_horizon(ctx, &d, cfg->features.horizons.v[h], state, details, skipped);
	if (ret == 0)
		ret = add_metrics(ctx, &d, state);
	if (ret < 0)
		goto out;
	if (cJSON_GetArraySize(skipped) > 0) {
		cJSON_AddItemToObject(ctx->metrics, "skipped_horizons", skipped);
		skipped = NULL;
	}
	cJSON_AddItemToObject(ctx->metrics, "models", details);
	details = NULL;
	ret = bodies_build(state, &bodies, &n_bodies, &ctx->err);
	for (size_t i = 0; i < n_bodies && ret == 0; i++) {
		hasher_add_str(&ctx->content, bodies[i].key);
		hasher_update(&ctx->content, bodies[i].data, bodies[i].len);
	}
	if (ret == 0)
		ret = stage_output_id(ctx, &out_id);
	for (size_t i = 0; i < n_bodies && ret == 0; i++)
		ret = registry_blob_put(ctx->reg, out_id, bodies[i].key, bodies[i].data,
					bodies[i].len, &ctx->err);
out:
	bodies_free(bodies, n_bodies);
	multiplier_free_state(state);
	cJSON_Delete(details);
	cJSON_Delete(skipped);
	model_data_release(&d);
	return ret;
}

/* ---- the method ---- */

/* Reads the manifest into s; (*out_has_body)[i] says whether entry i has a body (caller frees). */
static int manifest_read(struct blob_reader *r, struct mult_state *s,
			 unsigned char **out_has_body, struct ltv_err *err)
{
	uint32_t version;
	uint64_t n_features, n_models;
	int ret = blob_get_header(r, MANIFEST_MAGIC, MANIFEST_VERSION, &version, err);

	if (ret < 0)
		return ret;
	n_features = blob_get_u64(r);
	if (n_features > (r->len - r->pos) / 4)
		return err_set(err, LTV_EINVAL, "multiplier manifest: bad feature count %llu",
			       (unsigned long long)n_features);
	s->features.v = xcalloc(n_features ? n_features : 1, sizeof(char *));
	for (; s->features.n < n_features; s->features.n++)
		if (!(s->features.v[s->features.n] = blob_get_str(r)))
			return blob_reader_status(r, "multiplier manifest", err);
	n_models = blob_get_u64(r);
	if (n_models > (r->len - r->pos) / 40)
		return err_set(err, LTV_EINVAL, "multiplier manifest: bad entry count %llu",
			       (unsigned long long)n_models);
	s->models = xcalloc(n_models ? n_models : 1, sizeof(*s->models));
	s->cap_models = n_models;
	*out_has_body = xcalloc(n_models ? n_models : 1, 1);
	for (; s->n_models < n_models; s->n_models++) {
		struct mult_model *m = &s->models[s->n_models];
		uint32_t tier = blob_get_u32(r), has_body;

		m->horizon = (int64_t)blob_get_u64(r);
		has_body = blob_get_u32(r);
		m->shift = blob_get_f64(r);
		m->smear = blob_get_f64(r);
		m->zero_window_value = blob_get_f64(r);
		if ((ret = blob_reader_status(r, "multiplier manifest", err)) < 0)
			return ret;
		if (tier >= N_TIERS || has_body > 1 || !isfinite(m->shift) || !(m->smear > 0) ||
		    isinf(m->zero_window_value))
			return err_set(err, LTV_EINVAL, "multiplier manifest: entry %zu is "
				       "inconsistent (tier %u, body %u)", s->n_models, tier, has_body);
		m->tier = (int)tier;
		(*out_has_body)[s->n_models] = (unsigned char)has_body;
	}
	return blob_reader_status(r, "multiplier manifest", err);
}

static int body_load(struct registry *reg, int64_t artefact_id, const struct mult_model *m,
		     int n_threads, size_t n_features, struct gbt_model **out_model,
		     struct ltv_err *err)
{
	char key[48];
	void *buf = NULL;
	size_t len = 0;
	int ret;

	body_key(key, sizeof(key), m->tier, m->horizon);
	ret = registry_blob_get(reg, artefact_id, key, &buf, &len, err);
	if (ret == 0)
		ret = gbt_load(buf, len, n_threads, out_model, err);
	if (ret == 0 && gbt_n_features(*out_model) != n_features)
		ret = err_set(err, LTV_EINVAL, "it has %zu features, the manifest %zu",
			      gbt_n_features(*out_model), n_features);
	if (ret < 0)
		err_prefix(err, "multiplier body '%s'", key);
	free(buf);
	return ret;
}

static int multiplier_load(struct registry *reg, const struct artefact_info *artefact,
			   const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct mult_state *s = xcalloc(1, sizeof(*s));
	const int n_threads = config_jobs(cfg);
	struct blob_reader r;
	unsigned char *has_body = NULL;
	void *buf = NULL;
	size_t len = 0;
	int ret;

	*out_state = NULL;
	ret = registry_blob_get(reg, artefact->id, MANIFEST_KEY, &buf, &len, err);
	if (ret == 0) {
		blob_reader_init(&r, buf, len);
		ret = manifest_read(&r, s, &has_body, err);
	}
	for (size_t i = 0; i < s->n_models && ret == 0; i++)
		if (has_body[i])
			ret = body_load(reg, artefact->id, &s->models[i], n_threads, s->features.n,
					&s->models[i].model, err);
	free(has_body);
	free(buf);
	if (ret < 0) {
		err_prefix(err, "multiplier v%lld", (long long)artefact->version);
		multiplier_free_state(s);
		return ret;
	}
	*out_state = s;
	return 0;
}

const struct method method_multiplier = {
	.name = "multiplier",
	.load = multiplier_load,
	.predict = multiplier_predict,
	.free_state = multiplier_free_state,
};
