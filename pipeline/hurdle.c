/*
 * Stage hurdle: DESIGN.md's two-part model, ltv_H = rev_window + p × E, where
 * future = ltv_H − rev_window is the revenue still to come after the
 * observation window, a payer is a user with future > 0 (on purchase-log data
 * everyone pays on day 0, so only "pays again" carries signal), p = p(payer)
 * and E = E[future | payer]. For every configured horizon it trains a model
 * pooled over all tiers (tier 0, the fallback) and one per tier with at least
 * hurdle.min_tier_users training rows; a row uses its tier's model when there
 * is one. A model is an XGBoost classifier (binary:logistic; the training
 * payer rate as a constant when the labels have a single class) and a
 * regressor fitted on training payers only, chosen per model by dollar RMSE
 * on validation payers between (a) squared error on log1p(future) with Duan's
 * smearing and (b) reg:gamma on future. Early stopping watches the tier's own
 * validation rows, else the pooled ones, else none (see pick_valid). Bodies
 * are stored as blobs "t<tier>:h<H>:payer" and "t<tier>:h<H>:revenue" beside
 * a "manifest" blob (format at manifest_build) that method_hurdle reads back.
 */
#include <float.h>
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

/* A tier with at least this share of the pooled training rows uses the pooled model. */
#define TIER_OWN_MODEL_SHARE 0.9
#define MANIFEST_MAGIC "LTVHRDL1"
#define MANIFEST_VERSION 1u
#define MANIFEST_KEY "manifest"
#define N_TIERS 4          /* slot 0 is the pooled model, then tiers 1..3 */
/* Fewer validation rows than this and early stopping follows noise: borrow or go without. */
#define MIN_VALID_ROWS 30
/* XGBoost 1.7's default base_score: where every model starts (see revenue_labels). */
#define XGB_BASE_SCORE 0.5
/* Caps a log-scale prediction before exp() so a wild tree cannot make an infinity. */
#define MAX_LOG_PRED 700.0

enum revenue_kind { REVENUE_NONE, REVENUE_LOG_SMEAR, REVENUE_GAMMA, REVENUE_KIND_COUNT };
static const char *const revenue_kind_names[REVENUE_KIND_COUNT] = { "none", "log1p_smear",
								    "gamma" };

struct hurdle_model {
	int tier;                  /* 0: pooled over all tiers */
	int64_t horizon;
	double p_const;            /* p when payer is NULL (one class in training), else NaN */
	enum revenue_kind kind;    /* REVENUE_NONE: no training payers, E = 0 */
	double shift;              /* log-scale label centring, added back (see fit_candidate) */
	double smear;              /* mean correction on training payers (see fit_candidate) */
	struct gbt_model *payer;
	struct gbt_model *revenue;
};

/* What method_hurdle loads; also what the stage predicts with right after training. */
struct hurdle_state {
	struct str_list features;  /* owned; the matrix columns in order */
	struct hurdle_model *models;
	size_t n_models;
	size_t cap_models;
};

static struct hurdle_state *state_new(const struct str_list *features)
{
	struct hurdle_state *s = xcalloc(1, sizeof(*s));

	s->features.n = features->n;
	s->features.v = xcalloc(features->n ? features->n : 1, sizeof(char *));
	for (size_t j = 0; j < features->n; j++)
		s->features.v[j] = xstrdup(features->v[j]);
	return s;
}

static void hurdle_free_state(void *state)
{
	struct hurdle_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_models; i++) {
		gbt_free(s->models[i].payer);
		gbt_free(s->models[i].revenue);
	}
	free(s->models);
	for (size_t j = 0; j < s->features.n; j++)
		free(s->features.v[j]);
	free(s->features.v);
	free(s);
}

static const struct hurdle_model *model_find(const struct hurdle_state *s, int tier,
					     int64_t horizon)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (s->models[i].tier == tier && s->models[i].horizon == horizon)
			return &s->models[i];
	return NULL;
}

/* A row's tier slot; rows without a (valid) tier go to the pooled model. */
static int row_tier(const struct model_data *d, size_t row)
{
	double t = d->tier ? d->tier[row] : 0;

	return t >= 1 && t <= 3 ? (int)t : 0;
}

static double revenue_from_pred(const struct hurdle_model *m, double pred)
{
	switch (m->kind) {
	case REVENUE_LOG_SMEAR:
		/* Duan: E[1 + y] = exp(pred) * mean(exp(residual)) on the log1p scale. */
		return fmax(0.0, exp(fmin(pred + m->shift, MAX_LOG_PRED)) * m->smear - 1.0);
	case REVENUE_GAMMA:
		return fmax(0.0, pred * exp(m->shift) * m->smear);
	default:
		return 0.0;
	}
}

static void gather_rows(const float *x, size_t k, const size_t *idx, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * k, x + idx[i] * k, k * sizeof(float));
}

/* p and E[future | payer] for n rows of x (n × k) under m. */
static int model_predict(const struct hurdle_model *m, const float *x, size_t n, size_t k,
			 double *out_p, double *out_e, struct ltv_err *err)
{
	int ret = 0;

	if (m->payer)
		ret = gbt_predict(m->payer, x, n, k, out_p, err);
	else
		for (size_t i = 0; i < n; i++)
			out_p[i] = m->p_const;
	if (ret == 0 && m->revenue)
		ret = gbt_predict(m->revenue, x, n, k, out_e, err);
	for (size_t i = 0; i < n && ret == 0; i++)
		out_e[i] = m->revenue ? revenue_from_pred(m, out_e[i]) : 0.0;
	return ret;
}

static int hurdle_predict(const void *state, const struct model_data *d, const size_t *rows,
			  size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			  struct ltv_err *err)
{
	const struct hurdle_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const size_t k = s->features.n;
	const struct hurdle_model *use[N_TIERS];
	float *x = NULL, *sub = NULL;
	size_t *idx = NULL;
	double *p = NULL, *e = NULL;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		out_ltv[i] = NAN;
		if (out_p_payer)
			out_p_payer[i] = NAN;
	}
	use[0] = model_find(s, 0, horizon);
	if (!use[0] || n == 0)
		return 0;
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "hurdle: the features frame has no column 'rev_window'");
	for (int t = 1; t < N_TIERS; t++)
		use[t] = model_find(s, t, horizon) ? model_find(s, t, horizon) : use[0];
	ret = model_data_matrix(d, &s->features, rows, n, &x, err);
	if (ret < 0)
		goto out;
	idx = xmalloc(n * sizeof(*idx));
	p = xmalloc(n * sizeof(*p));
	e = xmalloc(n * sizeof(*e));
	for (int t = 0; t < N_TIERS && ret == 0; t++) {
		const struct hurdle_model *m = use[t];
		const float *xm = x;
		size_t n_sub = 0;

		if (t > 0 && m == use[0])
			continue; /* this tier's rows went with the pooled model's */
		for (size_t i = 0; i < n; i++)
			if (use[row_tier(d, rows[i])] == m)
				idx[n_sub++] = i;
		if (n_sub == 0)
			continue;
		if (n_sub < n) {
			if (!sub)
				sub = xmalloc(n * (k ? k : 1) * sizeof(float));
			gather_rows(x, k, idx, n_sub, sub);
			xm = sub;
		}
		ret = model_predict(m, xm, n_sub, k, p, e, err);
		for (size_t j = 0; j < n_sub && ret == 0; j++) {
			out_ltv[idx[j]] = rev_window[rows[idx[j]]] + p[j] * e[j];
			if (out_p_payer)
				out_p_payer[idx[j]] = p[j];
		}
	}
out:
	free(x);
	free(sub);
	free(idx);
	free(p);
	free(e);
	return ret;
}

/* ---- training ---- */

/* Rows of one fit: their feature matrix and future revenue. */
struct fit_data {
	float *x;        /* n × k, row-major */
	double *future;  /* ltv_H - rev_window */
	size_t n;
};

static void fit_data_release(struct fit_data *f)
{
	free(f->x);
	free(f->future);
	memset(f, 0, sizeof(*f));
}

static int fit_data_build(const struct model_data *d, const struct str_list *features,
			  const double *ltv, const size_t *rows, size_t n, struct fit_data *out,
			  struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");

	memset(out, 0, sizeof(*out));
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "hurdle: the features frame has no column 'rev_window'");
	out->future = xmalloc((n ? n : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++)
		out->future[i] = ltv[rows[i]] - rev_window[rows[i]];
	out->n = n;
	return model_data_matrix(d, features, rows, n, &out->x, err);
}

/* The payers (future > 0) among all. */
static void fit_data_payers(const struct fit_data *all, size_t k, struct fit_data *out)
{
	size_t n = 0;

	out->x = xmalloc((all->n ? all->n : 1) * (k ? k : 1) * sizeof(float));
	out->future = xmalloc((all->n ? all->n : 1) * sizeof(double));
	for (size_t i = 0; i < all->n; i++) {
		if (!(all->future[i] > 0))
			continue;
		memcpy(out->x + n * k, all->x + i * k, k * sizeof(float));
		out->future[n++] = all->future[i];
	}
	out->n = n;
}

enum valid_source { VALID_OWN, VALID_POOLED, VALID_NONE };
static const char *const valid_source_names[] = { "own", "pooled", "none" };

/*
 * Early stopping (and the revenue objective's choice) watches the model's own
 * validation rows when it has at least MIN_VALID_ROWS, else the pooled model's
 * when they are enough, else nothing: the model then keeps every round.
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

struct hurdle_fit {
	const struct gbt_section *sec;
	struct stage_task *task;   /* asked for its thread share before each fit */
	const struct str_list *features;
	size_t k;
	const char *const *names;
};

static void param_init(const struct hurdle_fit *hf, const char *objective, struct gbt_param *p)
{
	gbt_param_init_defaults(p);
	p->objective = objective;
	p->max_depth = (int)hf->sec->max_depth;
	p->eta = hf->sec->eta;
	p->n_rounds = (int)hf->sec->n_rounds;
	p->early_stopping_rounds = (int)hf->sec->early_stopping_rounds;
	p->min_child_weight = hf->sec->min_child_weight;
	p->subsample = hf->sec->subsample;
	p->colsample_bytree = hf->sec->colsample_bytree;
	p->lambda = hf->sec->lambda;
	p->n_threads = stage_task_threads(hf->task);
}

/* 1 for a payer (revenue after the window), else 0. */
static float *payer_labels(const struct fit_data *f)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++)
		y[i] = f->future[i] > 0 ? 1.0f : 0.0f;
	return y;
}

static int fit_payer(const struct hurdle_fit *hf, const struct fit_data *train,
		     const struct fit_data *valid_own, const struct fit_data *valid_pooled,
		     struct hurdle_model *m, cJSON *info, struct ltv_err *err)
{
	enum valid_source source;
	const struct fit_data *valid = pick_valid(valid_own, valid_pooled, &source);
	struct gbt_param p;
	float *y = payer_labels(train), *yv = NULL;
	size_t payers = 0;
	int ret = 0;

	for (size_t i = 0; i < train->n; i++)
		payers += y[i] > 0;
	cJSON_AddNumberToObject(info, "payers", (double)payers);
	if (payers == 0 || payers == train->n) {
		/* One class: nothing to classify, and XGBoost would only learn the rate. */
		m->p_const = (double)payers / (double)train->n;
		cJSON_AddNumberToObject(info, "payer_const", m->p_const);
		goto out;
	}
	param_init(hf, "binary:logistic", &p);
	if (valid)
		yv = payer_labels(valid);
	ret = gbt_fit(&p, train->x, y, NULL, train->n, valid ? valid->x : NULL, yv,
		      valid ? valid->n : 0, hf->k, hf->names, &m->payer, err);
	if (ret < 0)
		goto out;
	cJSON_AddStringToObject(info, "payer_valid", valid_source_names[source]);
	cJSON_AddNumberToObject(info, "payer_iter", gbt_best_iteration(m->payer));
out:
	free(y);
	free(yv);
	return ret;
}

/* Dollar RMSE of E[future | payer] under candidate c on the validation payers. */
static int rmse_dollars(const struct hurdle_model *c, const struct fit_data *valid, size_t k,
			double *out_rmse, struct ltv_err *err)
{
	double *pred = xmalloc(valid->n * sizeof(double)), sum = 0;
	int ret = gbt_predict(c->revenue, valid->x, valid->n, k, pred, err);

	for (size_t i = 0; i < valid->n && ret == 0; i++) {
		double diff = revenue_from_pred(c, pred[i]) - valid->future[i];

		sum += diff * diff;
	}
	*out_rmse = sqrt(sum / (double)valid->n);
	free(pred);
	return ret;
}

/*
 * Labels of a revenue candidate. XGBoost 1.7 starts every model from
 * base_score 0.5 (on the label's scale), and early stopping can end before
 * the trees have climbed to a payer's typical tens of dollars, which leaves
 * the fit biased low (by half in small tiers). So the labels are shifted to
 * put their training mean at 0.5: log1p(future) - shift for squared error,
 * future / exp(shift) for gamma. revenue_from_pred adds the shift back.
 */
static float *revenue_labels(enum revenue_kind kind, double shift, const struct fit_data *f)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++) {
		if (kind == REVENUE_LOG_SMEAR)
			y[i] = (float)(log1p(f->future[i]) - shift);
		else /* gamma needs y > 0: a tiny future must not round to 0 in float */
			y[i] = fmaxf((float)(f->future[i] / exp(shift)), FLT_MIN);
	}
	return y;
}

/*
 * Fits one revenue candidate on the training payers and its mean correction
 * ("smear") on the same rows: Duan's smearing factor mean(exp(residual)) for
 * the log1p model, whose back-transform would otherwise give a geometric
 * mean; sum(future) / sum(prediction) for gamma, whose early-stopped boosting
 * moves each leaf only part of the way in log space and so (Jensen) lands
 * below the arithmetic mean.
 */
static int fit_candidate(const struct hurdle_fit *hf, enum revenue_kind kind,
			 const struct fit_data *train, const struct fit_data *valid,
			 struct hurdle_model *c, struct ltv_err *err)
{
	float *y = NULL, *yv = NULL;
	double *pred = NULL, sum = 0;
	struct gbt_param p;
	int ret;

	for (size_t i = 0; i < train->n; i++)
		sum += kind == REVENUE_LOG_SMEAR ? log1p(train->future[i]) : train->future[i];
	c->kind = kind;
	c->shift = kind == REVENUE_LOG_SMEAR ? sum / (double)train->n - XGB_BASE_SCORE
					     : log(sum / (double)train->n / XGB_BASE_SCORE);
	c->smear = 1.0;
	y = revenue_labels(kind, c->shift, train);
	yv = valid ? revenue_labels(kind, c->shift, valid) : NULL;
	param_init(hf, kind == REVENUE_LOG_SMEAR ? "reg:squarederror" : "reg:gamma", &p);
	ret = gbt_fit(&p, train->x, y, NULL, train->n, valid ? valid->x : NULL, yv,
		      valid ? valid->n : 0, hf->k, hf->names, &c->revenue, err);
	if (ret == 0) {
		pred = xmalloc(train->n * sizeof(double));
		ret = gbt_predict(c->revenue, train->x, train->n, hf->k, pred, err);
	}
	if (ret == 0 && kind == REVENUE_LOG_SMEAR) {
		sum = 0;
		for (size_t i = 0; i < train->n; i++)
			sum += exp(log1p(train->future[i]) - (pred[i] + c->shift));
		c->smear = sum / (double)train->n;
	} else if (ret == 0) {
		double sum_pred = 0;

		sum = 0;
		for (size_t i = 0; i < train->n; i++) {
			sum += train->future[i];
			sum_pred += pred[i] * exp(c->shift);
		}
		c->smear = sum_pred > 0 ? sum / sum_pred : 1.0;
	}
	free(pred);
	free(y);
	free(yv);
	return ret;
}

/*
 * The revenue regressor on training payers: both candidates are fitted and
 * the one with the lower dollar RMSE on validation payers kept (log1p with
 * smearing when there are none to judge by).
 */
static int fit_revenue(const struct hurdle_fit *hf, const struct fit_data *train,
		       const struct fit_data *valid_own, const struct fit_data *valid_pooled,
		       struct hurdle_model *m, cJSON *info, struct ltv_err *err)
{
	static const enum revenue_kind kinds[] = { REVENUE_LOG_SMEAR, REVENUE_GAMMA };
	struct hurdle_model cand[2];
	double rmse[2] = { NAN, NAN };
	enum valid_source source;
	const struct fit_data *valid = pick_valid(valid_own, valid_pooled, &source);
	int best = 0, ret = 0;

	m->kind = REVENUE_NONE;
	m->shift = 0.0;
	m->smear = 1.0;
	if (train->n == 0)
		return 0;
	memset(cand, 0, sizeof(cand));
	for (int c = 0; c < 2 && ret == 0; c++) {
		ret = fit_candidate(hf, kinds[c], train, valid, &cand[c], err);
		if (ret == 0 && valid)
			ret = rmse_dollars(&cand[c], valid, hf->k, &rmse[c], err);
	}
	if (ret < 0)
		goto out;
	if (valid && rmse[1] < rmse[0])
		best = 1;
	m->kind = cand[best].kind;
	m->shift = cand[best].shift;
	m->smear = cand[best].smear;
	m->revenue = cand[best].revenue;
	cand[best].revenue = NULL;
	cJSON_AddStringToObject(info, "revenue", revenue_kind_names[m->kind]);
	cJSON_AddStringToObject(info, "revenue_valid", valid_source_names[source]);
	cJSON_AddNumberToObject(info, "revenue_iter", gbt_best_iteration(m->revenue));
	cJSON_AddNumberToObject(info, "shift", m->shift);
	cJSON_AddNumberToObject(info, "smear", m->smear);
	if (valid) {
		cJSON_AddNumberToObject(info, "rmse_log1p_smear", rmse[0]);
		cJSON_AddNumberToObject(info, "rmse_gamma", rmse[1]);
	}
out:
	gbt_free(cand[0].revenue);
	gbt_free(cand[1].revenue);
	return ret;
}

static void state_add(struct hurdle_state *s, const struct hurdle_model *m)
{
	ARRAY_GROW(s->models, s->n_models + 1, s->cap_models);
	s->models[s->n_models++] = *m;
}

/* Validation rows of one split, all and payers only. */
struct valid_data {
	struct fit_data all;
	struct fit_data payers;
};

static void valid_data_release(struct valid_data *v)
{
	fit_data_release(&v->all);
	fit_data_release(&v->payers);
}

static int valid_data_build(const struct model_data *d, const struct hurdle_fit *hf,
			    const struct str_list *features, const double *ltv,
			    const struct row_split *split, struct valid_data *out,
			    struct ltv_err *err)
{
	int ret = fit_data_build(d, features, ltv, split->valid, split->n_valid, &out->all, err);

	memset(&out->payers, 0, sizeof(out->payers));
	if (ret == 0)
		fit_data_payers(&out->all, hf->k, &out->payers);
	return ret;
}

/* Trains the (tier, horizon) model on split into *out; pooled is NULL when tier is 0. */
static int train_model(const struct model_data *d, const struct hurdle_fit *hf, int tier,
		       int64_t horizon, const double *ltv, const struct row_split *split,
		       const struct valid_data *pooled, struct hurdle_model *out, cJSON *details,
		       struct ltv_err *err)
{
	const struct str_list *features = hf->features;
	struct hurdle_model m = { .tier = tier, .horizon = horizon, .p_const = NAN,
				  .kind = REVENUE_NONE, .smear = 1.0 };
	struct fit_data train = { 0 }, train_payers = { 0 };
	struct valid_data own = { 0 };
	cJSON *info = cJSON_CreateObject();
	char name[48];
	double started = now_seconds(), t_payer = 0, t_revenue = 0;
	int ret;

	snprintf(name, sizeof(name), "t%d_h%lld", tier, (long long)horizon);
	cJSON_AddItemToObject(details, name, info);
	cJSON_AddNumberToObject(info, "n_train", (double)split->n_train);
	cJSON_AddNumberToObject(info, "n_valid", (double)split->n_valid);
	ret = fit_data_build(d, features, ltv, split->train, split->n_train, &train, err);
	if (ret == 0)
		ret = valid_data_build(d, hf, features, ltv, split, &own, err);
	t_payer = now_seconds();
	if (ret == 0)
		ret = fit_payer(hf, &train, &own.all, pooled ? &pooled->all : NULL, &m, info, err);
	t_revenue = now_seconds();
	if (ret == 0) {
		fit_data_payers(&train, hf->k, &train_payers);
		ret = fit_revenue(hf, &train_payers, &own.payers, pooled ? &pooled->payers : NULL,
				  &m, info, err);
	}
	if (ret < 0) {
		err_prefix(err, "hurdle: tier %d, horizon %lld", tier, (long long)horizon);
		gbt_free(m.payer);
		gbt_free(m.revenue);
	} else {
		*out = m;
		LOG(LOG_INFO, "tier %d h%lld: %zu training rows, %zu payers, revenue %s; %.1f s "
		    "(data %.1f, payer %.1f, revenue %.1f)", tier, (long long)horizon,
		    split->n_train, train_payers.n, revenue_kind_names[m.kind],
		    now_seconds() - started, t_payer - started, t_revenue - t_payer,
		    now_seconds() - t_revenue);
	}
	fit_data_release(&train);
	fit_data_release(&train_payers);
	valid_data_release(&own);
	return ret;
}

/* One horizon's training: a stage task with its own models, details and error. */
struct horizon_job {
	const struct model_data *d;
	struct hurdle_fit hf;        /* hf.task is set when the task runs */
	int64_t horizon;
	struct hurdle_model *models; /* in training order: pooled, then tiers 1..3 */
	size_t n_models;
	size_t cap_models;
	cJSON *details;              /* "t<tier>_h<H>" → what the fit chose */
	int skipped;                 /* no mature training user at this horizon */
};

static void job_add(struct horizon_job *job, const struct hurdle_model *m)
{
	ARRAY_GROW(job->models, job->n_models + 1, job->cap_models);
	job->models[job->n_models++] = *m;
}

/* Trains the pooled model of one horizon and then each tier's own (see TIER_OWN_MODEL_SHARE). */
static int train_horizon(void *arg, struct stage_task *task)
{
	struct horizon_job *job = (struct horizon_job *)arg + task->index;
	const struct model_data *d = job->d;
	const struct hurdle_fit *hf = &job->hf;
	const int64_t horizon = job->horizon;
	const double *ltv = model_data_label(d, horizon);
	struct row_split pooled_split;
	struct valid_data pooled = { 0 };
	struct hurdle_model m;
	int ret;

	job->hf.task = task;
	if (!ltv)
		return err_set(&task->err, LTV_EINTERNAL,
			       "hurdle: the features artefact has no label ltv_%lld; rerun features",
			       (long long)horizon);
	model_data_split(d, horizon, 0, &pooled_split);
	if (pooled_split.n_train == 0) {
		LOG(LOG_WARN, "h%lld: no user is mature at this horizon in the training cohorts; "
		    "no model for it", (long long)horizon);
		job->skipped = 1;
		row_split_release(&pooled_split);
		return 0;
	}
	ret = train_model(d, hf, 0, horizon, ltv, &pooled_split, NULL, &m, job->details,
			  &task->err);
	if (ret == 0) {
		job_add(job, &m);
		ret = valid_data_build(d, hf, hf->features, ltv, &pooled_split, &pooled,
				       &task->err);
	}
	for (int tier = 1; tier < N_TIERS && ret == 0; tier++) {
		struct row_split split;

		model_data_split(d, horizon, tier, &split);
		/*
		 * A tier holding nearly all the pooled rows would train nearly the
		 * pooled model again (at 1M users that was half of hurdle's time);
		 * its rows use the pooled model instead.
		 */
		if (split.n_train >= (size_t)hf->sec->min_tier_users &&
		    (double)split.n_train < TIER_OWN_MODEL_SHARE * (double)pooled_split.n_train) {
			ret = train_model(d, hf, tier, horizon, ltv, &split, &pooled, &m,
					  job->details, &task->err);
			if (ret == 0)
				job_add(job, &m);
		}
		row_split_release(&split);
	}
	valid_data_release(&pooled);
	row_split_release(&pooled_split);
	return ret;
}

/*
 * Every horizon's models, trained as parallel stage tasks (they share
 * nothing but the read-only data), then gathered in horizon order so the
 * state, the stored bodies and the content hash do not depend on which
 * finished first.
 */
static int train_all(struct stage_ctx *ctx, const struct model_data *d,
		     const struct hurdle_fit *hf, struct hurdle_state *state, cJSON *details,
		     cJSON *skipped)
{
	const struct int_list *horizons = &ctx->cfg->features.horizons;
	struct horizon_job *jobs = xcalloc(horizons->n ? horizons->n : 1, sizeof(*jobs));
	int ret;

	for (size_t h = 0; h < horizons->n; h++) {
		jobs[h].d = d;
		jobs[h].hf = *hf;
		jobs[h].horizon = horizons->v[h];
		jobs[h].details = cJSON_CreateObject();
	}
	ret = stage_run_tasks(ctx, horizons->n, train_horizon, jobs);
	for (size_t h = 0; h < horizons->n; h++) {
		struct horizon_job *job = &jobs[h];

		for (size_t i = 0; i < job->n_models; i++) {
			if (ret == 0) {
				state_add(state, &job->models[i]);
			} else {
				gbt_free(job->models[i].payer);
				gbt_free(job->models[i].revenue);
			}
		}
		while (job->details->child) {
			cJSON *item = cJSON_DetachItemViaPointer(job->details, job->details->child);

			cJSON_AddItemToObject(details, item->string, item); /* copies the key first */
		}
		if (job->skipped)
			cJSON_AddItemToArray(skipped, cJSON_CreateNumber((double)job->horizon));
		free(job->models);
		cJSON_Delete(job->details);
	}
	free(jobs);
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
 * At the target horizon, on its validation rows: payer AUC, RMSLE and WAPE of
 * ltv per user, plus WAPE and bias of campaign totals (what bids act on; a
 * mean-predicting model loses to "nothing more" per user but not per campaign).
 */
static int add_metrics(struct stage_ctx *ctx, const struct model_data *d,
		       const struct hurdle_state *state)
{
	const int64_t target = ctx->cfg->features.target_horizon;
	const double *ltv = model_data_label(d, target);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	double auc = NAN, rmsle = NAN, wape = NAN, bias = NAN;
	struct metrics_campaign campaign = { .wape = NAN };
	struct row_split split;
	double *pred, *p, *actual, *payer;
	size_t *cohort, n;
	int ret = 0;

	model_data_split(d, target, 0, &split);
	n = split.n_valid;
	pred = xmalloc((n ? n : 1) * sizeof(double));
	p = xmalloc((n ? n : 1) * sizeof(double));
	actual = xmalloc((n ? n : 1) * sizeof(double));
	payer = xmalloc((n ? n : 1) * sizeof(double));
	cohort = xmalloc((n ? n : 1) * sizeof(size_t));
	cJSON_AddNumberToObject(ctx->metrics, "horizon", (double)target);
	if (n > 0 && model_find(state, 0, target) && ltv) {
		for (size_t i = 0; i < n; i++) {
			actual[i] = ltv[split.valid[i]];
			payer[i] = actual[i] - rev_window[split.valid[i]] > 0;
			cohort[i] = model_data_cohort(d, split.valid[i]);
		}
		ret = hurdle_predict(state, d, split.valid, n, target, pred, p, &ctx->err);
		if (ret == 0)
			ret = metrics_auc(payer, p, n, &auc, NULL, &ctx->err);
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
	add_number_or_null(ctx->metrics, "payer_auc", auc);
	add_number_or_null(ctx->metrics, "rmsle", rmsle);
	add_number_or_null(ctx->metrics, "wape", wape);
	add_number_or_null(ctx->metrics, "campaign_wape", campaign.wape);
	add_number_or_null(ctx->metrics, "bias", bias);
	cJSON_AddNumberToObject(ctx->metrics, "n_valid", (double)n);
	cJSON_AddNumberToObject(ctx->metrics, "n_models", (double)state->n_models);
	free(pred);
	free(p);
	free(actual);
	free(payer);
	free(cohort);
	row_split_release(&split);
	return ret;
}

/* ---- storage ---- */

static void body_key(char *buf, size_t size, int tier, int64_t horizon, const char *part)
{
	snprintf(buf, size, "t%d:h%lld:%s", tier, (long long)horizon, part);
}

struct body {
	char key[48];
	uint8_t *data;
	size_t len;
};

/*
 * Manifest blob (blob.h fields after magic MANIFEST_MAGIC, version 1):
 *   u64 n_features, then each feature name (str) in matrix column order;
 *   u64 n_models, then per model: u32 tier (0 = pooled), u64 horizon,
 *   u32 has_payer_body, f64 p_const (NaN with a body), u32 revenue kind
 *   (0 none, 1 log1p with smearing, 2 gamma), f64 label shift (see
 *   revenue_labels), f64 smearing factor.
 * A model's bodies are the gbt_save buffers "t<tier>:h<H>:payer" (when
 * has_payer_body) and "t<tier>:h<H>:revenue" (when the kind is not none).
 */
static void manifest_build(const struct hurdle_state *s, struct body *out)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, MANIFEST_MAGIC, MANIFEST_VERSION);
	blob_put_u64(&w, s->features.n);
	for (size_t j = 0; j < s->features.n; j++)
		blob_put_str(&w, s->features.v[j]);
	blob_put_u64(&w, s->n_models);
	for (size_t i = 0; i < s->n_models; i++) {
		const struct hurdle_model *m = &s->models[i];

		blob_put_u32(&w, (uint32_t)m->tier);
		blob_put_u64(&w, (uint64_t)m->horizon);
		blob_put_u32(&w, m->payer != NULL);
		blob_put_f64(&w, m->p_const);
		blob_put_u32(&w, (uint32_t)m->kind);
		blob_put_f64(&w, m->shift);
		blob_put_f64(&w, m->smear);
	}
	snprintf(out->key, sizeof(out->key), "%s", MANIFEST_KEY);
	out->data = blob_writer_detach(&w, &out->len);
}

/* The manifest and every model body, in a fixed order (the content hash depends on it). */
static int bodies_build(const struct hurdle_state *s, struct body **out_bodies, size_t *out_n,
			struct ltv_err *err)
{
	struct body *b = xcalloc(1 + 2 * s->n_models, sizeof(*b));
	size_t n = 1;
	int ret = 0;

	manifest_build(s, &b[0]);
	for (size_t i = 0; i < s->n_models && ret == 0; i++) {
		const struct hurdle_model *m = &s->models[i];

		if (m->payer) {
			body_key(b[n].key, sizeof(b[n].key), m->tier, m->horizon, "payer");
			ret = gbt_save(m->payer, &b[n].data, &b[n].len, err);
			n += ret == 0;
		}
		if (ret == 0 && m->revenue) {
			body_key(b[n].key, sizeof(b[n].key), m->tier, m->horizon, "revenue");
			ret = gbt_save(m->revenue, &b[n].data, &b[n].len, err);
			n += ret == 0;
		}
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

int stage_hurdle_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct hurdle_fit hf = { .sec = &cfg->hurdle,
				 .k = cfg->hurdle.features.n,
				 .names = (const char *const *)cfg->hurdle.features.v };
	struct hurdle_state *state = NULL;
	struct body *bodies = NULL;
	size_t n_bodies = 0;
	cJSON *details = cJSON_CreateObject(), *skipped = cJSON_CreateArray();
	struct model_data d;
	int64_t out_id;
	int ret = model_data_load(ctx, 1, &d);

	if (ret < 0)
		goto out;
	state = state_new(&cfg->hurdle.features);
	hf.features = &state->features;
	ret = train_all(ctx, &d, &hf, state, details, skipped);
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
	hurdle_free_state(state);
	cJSON_Delete(details);
	cJSON_Delete(skipped);
	model_data_release(&d);
	return ret;
}

/* ---- the method ---- */

static int body_load(struct registry *reg, int64_t artefact_id, const struct hurdle_model *m,
		     const char *part, int n_threads, size_t n_features,
		     struct gbt_model **out_model, struct ltv_err *err)
{
	char key[48];
	void *buf = NULL;
	size_t len = 0;
	int ret;

	body_key(key, sizeof(key), m->tier, m->horizon, part);
	ret = registry_blob_get(reg, artefact_id, key, &buf, &len, err);
	if (ret == 0)
		ret = gbt_load(buf, len, n_threads, out_model, err);
	if (ret == 0 && gbt_n_features(*out_model) != n_features)
		ret = err_set(err, LTV_EINVAL, "it has %zu features, the manifest %zu",
			      gbt_n_features(*out_model), n_features);
	if (ret < 0)
		err_prefix(err, "hurdle body '%s'", key);
	free(buf);
	return ret;
}

static int manifest_read(struct blob_reader *r, struct hurdle_state *s, struct ltv_err *err)
{
	uint32_t version;
	uint64_t n_features, n_models;
	int ret = blob_get_header(r, MANIFEST_MAGIC, MANIFEST_VERSION, &version, err);

	if (ret < 0)
		return ret;
	n_features = blob_get_u64(r);
	if (n_features > (r->len - r->pos) / 4)
		return err_set(err, LTV_EINVAL, "hurdle manifest: bad feature count %llu",
			       (unsigned long long)n_features);
	s->features.v = xcalloc(n_features ? n_features : 1, sizeof(char *));
	for (; s->features.n < n_features; s->features.n++)
		if (!(s->features.v[s->features.n] = blob_get_str(r)))
			return blob_reader_status(r, "hurdle manifest", err);
	n_models = blob_get_u64(r);
	if (n_models > (r->len - r->pos) / 44)
		return err_set(err, LTV_EINVAL, "hurdle manifest: bad model count %llu",
			       (unsigned long long)n_models);
	s->models = xcalloc(n_models ? n_models : 1, sizeof(*s->models));
	s->cap_models = n_models;
	for (; s->n_models < n_models; s->n_models++) {
		struct hurdle_model *m = &s->models[s->n_models];
		uint32_t tier = blob_get_u32(r), has_payer, kind;

		m->horizon = (int64_t)blob_get_u64(r);
		has_payer = blob_get_u32(r);
		m->p_const = blob_get_f64(r);
		kind = blob_get_u32(r);
		m->shift = blob_get_f64(r);
		m->smear = blob_get_f64(r);
		if ((ret = blob_reader_status(r, "hurdle manifest", err)) < 0)
			return ret;
		/* p_const is NaN exactly when the classifier has a body. */
		if (tier >= N_TIERS || kind >= REVENUE_KIND_COUNT || has_payer > 1 ||
		    (has_payer != 0) != (isnan(m->p_const) != 0) || !(m->smear > 0) ||
		    !isfinite(m->shift))
			return err_set(err, LTV_EINVAL, "hurdle manifest: model %zu is inconsistent "
				       "(tier %u, payer body %u, revenue kind %u)", s->n_models, tier,
				       has_payer, kind);
		m->tier = (int)tier;
		m->kind = (enum revenue_kind)kind;
	}
	return blob_reader_status(r, "hurdle manifest", err);
}

static int hurdle_load(struct registry *reg, const struct artefact_info *artefact,
		       const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct hurdle_state *s = xcalloc(1, sizeof(*s));
	const int n_threads = config_jobs(cfg);
	struct blob_reader r;
	void *buf = NULL;
	size_t len = 0;
	int ret;

	*out_state = NULL;
	ret = registry_blob_get(reg, artefact->id, MANIFEST_KEY, &buf, &len, err);
	if (ret == 0) {
		blob_reader_init(&r, buf, len);
		ret = manifest_read(&r, s, err);
	}
	for (size_t i = 0; i < s->n_models && ret == 0; i++) {
		struct hurdle_model *m = &s->models[i];

		if (isnan(m->p_const))
			ret = body_load(reg, artefact->id, m, "payer", n_threads, s->features.n,
					&m->payer, err);
		if (ret == 0 && m->kind != REVENUE_NONE)
			ret = body_load(reg, artefact->id, m, "revenue", n_threads, s->features.n,
					&m->revenue, err);
	}
	free(buf);
	if (ret < 0) {
		err_prefix(err, "hurdle v%lld", (long long)artefact->version);
		hurdle_free_state(s);
		return ret;
	}
	*out_state = s;
	return 0;
}

const struct method method_hurdle = {
	.name = "hurdle",
	.load = hurdle_load,
	.predict = hurdle_predict,
	.free_state = hurdle_free_state,
};
