/*
 * Stage hurdle: DESIGN.md's two-part model, ltv_H = rev_window + p × E, where
 * future = ltv_H − rev_window is the revenue still to come after the
 * observation window, a payer is a user with future > 0 (on purchase-log data
 * everyone pays on day 0, so only "pays again" carries signal), p = p(payer)
 * and E = E[future | payer]. For every configured horizon it trains a model
 * pooled over all tiers (tier 0, the fallback) and one per tier with at least
 * hurdle.min_tier_users training rows and not nearly all the pooled ones
 * (gbt_artefact_tier_fit); a row uses its tier's model when there is one. A model is an XGBoost classifier (binary:logistic; the training
 * payer rate as a constant when the labels have a single class) and a
 * regressor fitted on training payers only, chosen per model by dollar RMSE
 * on validation payers between (a) squared error on log1p(future) with Duan's
 * smearing and (b) reg:gamma on future. Early stopping watches the tier's own
 * validation rows, else the pooled ones, else none (gbt_artefact_pick_valid).
 * This file trains; serving/hurdle_model.c holds the trained state, its
 * artefact format (bodies "t<tier>:h<H>:payer" and "t<tier>:h<H>:revenue"
 * beside a "manifest") and method_hurdle, which reads it back.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/hurdle_model.h"
#include "ltv/log.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/rng.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"

/*
 * Resident bytes a horizon's task adds, per features-frame row and model
 * feature, for run.memory_mb: its float training and validation rows and
 * XGBoost's quantile matrix, bins and sketch. Measured (bench/README.md,
 * "peak memory"): hurdle alone at 1,000,000 users, one task at a time
 * against two side by side.
 */
#define HURDLE_TASK_BYTES_PER_CELL 12

/*
 * The rows' matrix and, as their target, their future revenue ltv_H -
 * rev_window: every struct gbt_artefact_rows here holds future revenue. A
 * row of a user with no revenue to H (ltv_H 0) has its weight divided by
 * zero_rate, the share of such users kept (1: all, see sample_zero_users).
 */
static int rows_build(const struct model_data *d, const struct str_list *features,
		      const double *ltv, const size_t *rows, size_t n, double zero_rate,
		      struct gbt_artefact_rows *out, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");

	memset(out, 0, sizeof(*out));
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "hurdle: the features frame has no column 'rev_window'");
	out->target = xmalloc((n ? n : 1) * sizeof(double));
	out->weight = xmalloc((n ? n : 1) * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		double w = model_data_weight(d, rows[i]);

		out->target[i] = ltv[rows[i]] - rev_window[rows[i]];
		out->weight[i] = (float)(ltv[rows[i]] > 0 ? w : w / zero_rate);
	}
	out->n = n;
	return model_data_matrix(d, features, rows, n, &out->x, err);
}

/* A uniform number in [0, 1) fixed by a user's uid: the same draw at every horizon and tier. */
static double uid_uniform(double uid)
{
	return rng_keyed_uniform((uint64_t)uid, 0x6875726469657a72ULL); /* any fixed stream */
}

/*
 * DESIGN.md "Time, windows and labels" taken one step further for the payer
 * classifier: past max_zero rows of users with no revenue to H (ltv_H 0:
 * every such row is a negative with rev_window 0), only a share
 * rate = max_zero / their rows of those users is kept, chosen by a hash of
 * the uid (all of a user's rows or none), and rows_build weights each kept
 * one by 1 / rate, so weighted totals stay unbiased. Every row of a user with
 * revenue stays. Below the cap (and with max_zero 0) *out is NULL and the
 * rows are used as they are. Returns the number of rows in *out (or n).
 */
static size_t sample_zero_users(const struct model_data *d, const double *ltv,
				const size_t *rows, size_t n, size_t max_zero, size_t **out,
				double *out_rate, size_t *out_zero)
{
	const struct frame_col uid = frame_col(&d->frame, "uid");
	size_t n_zero = 0, at = 0;
	double rate;

	*out = NULL;
	*out_rate = 1.0;
	for (size_t i = 0; i < n; i++)
		n_zero += !(ltv[rows[i]] > 0);
	*out_zero = n_zero;
	if (max_zero == 0 || n_zero <= max_zero || !frame_col_found(uid))
		return n;
	rate = (double)max_zero / (double)n_zero;
	*out = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		if (ltv[rows[i]] > 0 || uid_uniform(frame_col_at(uid, rows[i])) < rate)
			(*out)[at++] = rows[i];
	*out_rate = rate;
	return at;
}

struct hurdle_fit {
	const struct gbt_section *sec;
	struct stage_task *task;   /* asked for its thread share before each fit */
	const struct str_list *features;
	size_t k;
	const char *const *names;
	/* hurdle.smear_by_age: the snapshots the factors are by, else NULL */
	const struct int_list *smear_snapshots;
	size_t window_col;         /* window_days among names (hurdle_window_column); k: none */
};

/* Row i's age (window_days) in x (n × hf->k); NaN when the features lack it. */
static double row_age(const struct hurdle_fit *hf, const float *x, size_t i)
{
	return hf->window_col < hf->k ? (double)x[i * hf->k + hf->window_col] : NAN;
}

/* gbt_param.threads_now: the task's share of the cores at this moment. */
static int task_threads_now(void *task)
{
	return stage_task_threads(task);
}

/*
 * The task's current thread share, asked before each fit and again before
 * each boosting round: when the other horizons and stages finish, the
 * running fit takes their cores (identical trees, gbt.h).
 */
static void param_init(const struct hurdle_fit *hf, const char *objective, struct gbt_param *p)
{
	gbt_artefact_param(hf->sec, objective, stage_task_threads(hf->task), p);
	p->threads_now = task_threads_now;
	p->threads_arg = hf->task;
}

/* 1 for a payer (revenue after the window), else 0. */
static float *payer_labels(const struct gbt_artefact_rows *f)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++)
		y[i] = f->target[i] > 0 ? 1.0f : 0.0f;
	return y;
}

/* Fits the payer model; train->x is freed once XGBoost holds it (train->x NULL after). */
static int fit_payer(const struct hurdle_fit *hf, struct gbt_artefact_rows *train,
		     const struct gbt_artefact_rows *valid_own,
		     const struct gbt_artefact_rows *valid_pooled,
		     struct hurdle_model *m, cJSON *info, struct ltv_err *err)
{
	enum gbt_artefact_valid source;
	const struct gbt_artefact_rows *valid =
		gbt_artefact_pick_valid(valid_own, valid_pooled, &source);
	struct gbt_param p;
	float *y = payer_labels(train), *yv = NULL;
	size_t payers = 0;
	int ret = 0;

	double w_payers = 0, w_all = 0;

	for (size_t i = 0; i < train->n; i++) {
		payers += y[i] > 0;
		w_payers += (y[i] > 0) * (train->weight ? train->weight[i] : 1.0);
		w_all += train->weight ? train->weight[i] : 1.0;
	}
	cJSON_AddNumberToObject(info, "payers", (double)payers);
	if (payers == 0 || payers == train->n) {
		/* One class: nothing to classify, and XGBoost would only learn the rate. */
		m->p_const = w_all > 0 ? w_payers / w_all : 0;
		cJSON_AddNumberToObject(info, "payer_const", m->p_const);
		goto out;
	}
	param_init(hf, "binary:logistic", &p);
	if (valid)
		yv = payer_labels(valid);
	/* Weighted: non-paying users are sampled (one row of their snapshots, weighted). */
	ret = gbt_fit_freeing_x(&p, &train->x, y, train->weight, train->n,
				valid ? valid->x : NULL, yv, valid ? valid->n : 0, hf->k, hf->names,
				&m->payer, err);
	if (ret < 0)
		goto out;
	cJSON_AddStringToObject(info, "payer_valid", gbt_artefact_valid_name(source));
	cJSON_AddNumberToObject(info, "payer_iter", gbt_best_iteration(m->payer));
out:
	free(y);
	free(yv);
	return ret;
}

/* Dollar RMSE of E[future | payer] under candidate c on the validation payers. */
static int rmse_dollars(const struct hurdle_fit *hf, const struct hurdle_model *c,
			const struct gbt_artefact_rows *valid, double *out_rmse, struct ltv_err *err)
{
	double *pred = xmalloc(valid->n * sizeof(double)), sum = 0;
	int ret = gbt_predict(c->revenue, valid->x, valid->n, hf->k, pred, err);

	for (size_t i = 0; i < valid->n && ret == 0; i++) {
		double diff = hurdle_model_revenue(c, pred[i], row_age(hf, valid->x, i)) -
			      valid->target[i];

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
 * future / exp(shift) for gamma. hurdle_model_revenue adds the shift back.
 */
static float *revenue_labels(enum hurdle_revenue_kind kind, double shift,
			     const struct gbt_artefact_rows *f)
{
	float *y = xmalloc((f->n ? f->n : 1) * sizeof(float));

	for (size_t i = 0; i < f->n; i++) {
		if (kind == HURDLE_REVENUE_LOG_SMEAR)
			y[i] = (float)(log1p(f->target[i]) - shift);
		else /* gamma needs y > 0: a tiny future must not round to 0 in float */
			y[i] = fmaxf((float)(f->target[i] / exp(shift)), FLT_MIN);
	}
	return y;
}

/*
 * c's mean correction per snapshot age (include/ltv/age_means.h), pred the
 * regressor's raw predictions on train: the same correction as c->smear over
 * the payers of each age (Duan's mean(exp(residual)) for log1p, gamma's
 * sum(future) / sum(prediction)), c->smear where an age has too few. For
 * log1p the ratio that makes an age's in-sample mean exact, sum(1 + future) /
 * sum(exp(prediction)), was measured and dropped: it scales the "1 +" too,
 * which lifts every payer predicted little by the same amount (generated
 * seed 42, 30 days: Gini after T 0.865 -> 0.594).
 */
static void smear_by_age(const struct hurdle_fit *hf, const struct gbt_artefact_rows *train,
			 const double *pred, struct hurdle_model *c)
{
	const size_t n = train->n ? train->n : 1;
	double *age = xmalloc(n * sizeof(double)), *num = xmalloc(n * sizeof(double));
	double *den = c->kind == HURDLE_REVENUE_GAMMA ? xmalloc(n * sizeof(double)) : NULL;

	for (size_t i = 0; i < train->n; i++) {
		age[i] = row_age(hf, train->x, i);
		if (den) {
			num[i] = train->target[i];
			den[i] = pred[i] * exp(c->shift);
		} else {
			num[i] = exp(log1p(train->target[i]) - (pred[i] + c->shift));
		}
	}
	age_means_fit(hf->smear_snapshots, age, num, den, NULL, NULL, 1, train->n, &c->smear,
		      &c->smear_by_age);
	free(age);
	free(num);
	free(den);
}

/*
 * Fits one revenue candidate on the training payers and its mean correction
 * ("smear") on the same rows: Duan's smearing factor mean(exp(residual)) for
 * the log1p model, whose back-transform would otherwise give a geometric
 * mean; sum(future) / sum(prediction) for gamma, whose early-stopped boosting
 * moves each leaf only part of the way in log space and so (Jensen) lands
 * below the arithmetic mean.
 */
static int fit_candidate(const struct hurdle_fit *hf, enum hurdle_revenue_kind kind,
			 const struct gbt_artefact_rows *train, struct gbt_rows *binned,
			 const struct gbt_artefact_rows *valid, struct hurdle_model *c,
			 struct ltv_err *err)
{
	float *y = NULL, *yv = NULL;
	double *pred = NULL, sum = 0;
	struct gbt_param p;
	int ret;

	for (size_t i = 0; i < train->n; i++)
		sum += kind == HURDLE_REVENUE_LOG_SMEAR ? log1p(train->target[i])
							 : train->target[i];
	c->kind = kind;
	c->shift = kind == HURDLE_REVENUE_LOG_SMEAR
			   ? sum / (double)train->n - GBT_ARTEFACT_BASE_SCORE
			   : log(sum / (double)train->n / GBT_ARTEFACT_BASE_SCORE);
	c->smear = 1.0;
	y = revenue_labels(kind, c->shift, train);
	yv = valid ? revenue_labels(kind, c->shift, valid) : NULL;
	param_init(hf, kind == HURDLE_REVENUE_LOG_SMEAR ? "reg:squarederror" : "reg:gamma", &p);
	ret = gbt_fit_rows(&p, binned, y, valid ? valid->x : NULL, yv, valid ? valid->n : 0,
			   hf->names, &c->revenue, err);
	if (ret == 0) {
		pred = xmalloc(train->n * sizeof(double));
		ret = gbt_predict(c->revenue, train->x, train->n, hf->k, pred, err);
	}
	if (ret == 0 && kind == HURDLE_REVENUE_LOG_SMEAR) {
		sum = 0;
		for (size_t i = 0; i < train->n; i++)
			sum += exp(log1p(train->target[i]) - (pred[i] + c->shift));
		c->smear = sum / (double)train->n;
	} else if (ret == 0) {
		double sum_pred = 0;

		sum = 0;
		for (size_t i = 0; i < train->n; i++) {
			sum += train->target[i];
			sum_pred += pred[i] * exp(c->shift);
		}
		c->smear = sum_pred > 0 ? sum / sum_pred : 1.0;
	}
	if (ret == 0 && hf->smear_snapshots)
		smear_by_age(hf, train, pred, c);
	free(pred);
	free(y);
	free(yv);
	return ret;
}

/*
 * The revenue regressor on training payers: both candidates are fitted and
 * the one with the lower dollar RMSE on validation payers kept (log1p with
 * smearing when there are none to judge by). The payers' rows are binned
 * once for both (gbt_rows_new: the same trees as binning them per fit).
 */
static int fit_revenue(const struct hurdle_fit *hf, const struct gbt_artefact_rows *train,
		       const struct gbt_artefact_rows *valid_own,
		       const struct gbt_artefact_rows *valid_pooled,
		       struct hurdle_model *m, cJSON *info, struct ltv_err *err)
{
	static const enum hurdle_revenue_kind kinds[] = { HURDLE_REVENUE_LOG_SMEAR,
							    HURDLE_REVENUE_GAMMA };
	struct hurdle_model cand[2];
	double rmse[2] = { NAN, NAN };
	enum gbt_artefact_valid source;
	const struct gbt_artefact_rows *valid =
		gbt_artefact_pick_valid(valid_own, valid_pooled, &source);
	struct gbt_rows *binned = NULL;
	int best = 0, ret = 0;

	m->kind = HURDLE_REVENUE_NONE;
	m->shift = 0.0;
	m->smear = 1.0;
	if (train->n == 0)
		return 0;
	memset(cand, 0, sizeof(cand));
	ret = gbt_rows_new(train->x, train->n, hf->k, hf->names, stage_task_threads(hf->task),
			   (int)hf->sec->max_bin, &binned, err);
	for (int c = 0; c < 2 && ret == 0; c++) {
		ret = fit_candidate(hf, kinds[c], train, binned, valid, &cand[c], err);
		if (ret == 0 && valid)
			ret = rmse_dollars(hf, &cand[c], valid, &rmse[c], err);
	}
	if (ret < 0)
		goto out;
	if (valid && rmse[1] < rmse[0])
		best = 1;
	m->kind = cand[best].kind;
	m->shift = cand[best].shift;
	m->smear = cand[best].smear;
	m->smear_by_age = cand[best].smear_by_age;
	m->revenue = cand[best].revenue;
	cand[best].revenue = NULL;
	cJSON_AddStringToObject(info, "revenue", hurdle_revenue_kind_name(m->kind));
	cJSON_AddStringToObject(info, "revenue_valid", gbt_artefact_valid_name(source));
	cJSON_AddNumberToObject(info, "revenue_iter", gbt_best_iteration(m->revenue));
	cJSON_AddNumberToObject(info, "shift", m->shift);
	cJSON_AddNumberToObject(info, "smear", m->smear);
	if (m->smear_by_age.n > 0)
		age_means_add_json(info, "smear_by_age", &m->smear_by_age);
	if (valid) {
		cJSON_AddNumberToObject(info, "rmse_log1p_smear", rmse[0]);
		cJSON_AddNumberToObject(info, "rmse_gamma", rmse[1]);
	}
out:
	gbt_rows_free(binned);
	gbt_free(cand[0].revenue);
	gbt_free(cand[1].revenue);
	return ret;
}

/*
 * The rows among rows[0..n) of payers at this horizon (future revenue
 * ltv_H - rev_window > 0), in their order: the rows the revenue fits
 * train and validate on, without building the others' matrix.
 */
static size_t payer_rows(const struct model_data *d, const double *ltv, const size_t *rows,
			 size_t n, size_t **out)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	size_t m = 0;

	*out = xmalloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n && rev_window; i++)
		if (ltv[rows[i]] - rev_window[rows[i]] > 0)
			(*out)[m++] = rows[i];
	return m;
}

/* The payers' matrix and targets of rows[0..n), without weights (the revenue fits take none). */
static int payers_build(const struct model_data *d, const struct str_list *features,
			const double *ltv, const size_t *rows, size_t n,
			struct gbt_artefact_rows *out, struct ltv_err *err)
{
	size_t *payers = NULL, n_payers = payer_rows(d, ltv, rows, n, &payers);
	int ret = rows_build(d, features, ltv, payers, n_payers, 1.0, out, err);

	free(out->weight);
	out->weight = NULL;
	free(payers);
	return ret;
}

/*
 * The pooled (tier 0) validation rows a tier's fit falls back on when its
 * own are fewer than GBT_ARTEFACT_MIN_VALID_ROWS, built the first time a fit
 * needs them: all rows for the payer classifier, the payers' for revenue.
 */
struct pooled_valid {
	const struct model_data *d;
	const struct str_list *features;
	const double *ltv;
	const struct row_split *split;
	int have_all, have_payers;
	struct gbt_artefact_rows all, payers;
};

static int pooled_valid_get(struct pooled_valid *pv, int payers_only,
			    const struct gbt_artefact_rows **out, struct ltv_err *err)
{
	int ret = 0;

	*out = NULL;
	if (!pv)
		return 0;
	if (payers_only && !pv->have_payers) {
		ret = payers_build(pv->d, pv->features, pv->ltv, pv->split->valid, pv->split->n_valid,
				   &pv->payers, err);
		pv->have_payers = ret == 0;
	} else if (!payers_only && !pv->have_all) {
		ret = rows_build(pv->d, pv->features, pv->ltv, pv->split->valid, pv->split->n_valid,
				 1.0, &pv->all, err);
		pv->have_all = ret == 0;
	}
	*out = payers_only ? &pv->payers : &pv->all;
	return ret;
}

static void pooled_valid_release(struct pooled_valid *pv)
{
	gbt_artefact_rows_release(&pv->all);
	gbt_artefact_rows_release(&pv->payers);
}

/*
 * The (tier, horizon) payer classifier on split into m (m->payer or
 * m->p_const); pooled is NULL for tier 0. Fills info's row counts first,
 * then fit_payer's keys.
 */
static int payer_part(const struct model_data *d, const struct hurdle_fit *hf,
		      const double *ltv, const struct row_split *split, struct pooled_valid *pooled,
		      struct hurdle_model *m, cJSON *info, struct ltv_err *err)
{
	struct gbt_artefact_rows train = { 0 }, valid = { 0 };
	const struct gbt_artefact_rows *fallback = NULL;
	double started = now_seconds(), t_fit, zero_rate;
	size_t *kept = NULL, n_kept, n_zero, n_classifier;
	int ret;

	cJSON_AddNumberToObject(info, "n_train", (double)split->n_train);
	cJSON_AddNumberToObject(info, "n_valid", (double)split->n_valid);
	n_kept = sample_zero_users(d, ltv, split->train, split->n_train,
				   (size_t)hf->sec->max_zero_rows, &kept, &zero_rate, &n_zero);
	if (kept) {
		cJSON_AddNumberToObject(info, "n_zero_rows", (double)n_zero);
		cJSON_AddNumberToObject(info, "zero_rows_rate", zero_rate);
	}
	ret = rows_build(d, hf->features, ltv, kept ? kept : split->train, n_kept, zero_rate,
			 &train, err);
	free(kept);
	if (ret == 0)
		ret = rows_build(d, hf->features, ltv, split->valid, split->n_valid, 1.0, &valid, err);
	if (ret == 0 && valid.n < GBT_ARTEFACT_MIN_VALID_ROWS)
		ret = pooled_valid_get(pooled, 0, &fallback, err);
	if (ret == 0 &&
	    gbt_artefact_rows_cap(&train, hf->k, (size_t)hf->sec->max_train_rows) < split->n_train)
		/* either sample (max_zero_rows, max_train_rows) cut the classifier's rows */
		cJSON_AddNumberToObject(info, "n_train_sampled", (double)train.n);
	n_classifier = train.n; /* fit_payer hands the rows to XGBoost */
	t_fit = now_seconds();
	if (ret == 0)
		ret = fit_payer(hf, &train, &valid, fallback, m, info, err);
	if (ret < 0)
		err_prefix(err, "hurdle: tier %d, horizon %lld", m->tier, (long long)m->horizon);
	else
		LOG(LOG_INFO, "tier %d h%lld payer: %zu training rows, %zu of them for the "
		    "classifier; best round %d of %d; %.1f s (data %.1f, fit %.1f)", m->tier,
		    (long long)m->horizon, split->n_train, n_classifier,
		    m->payer ? gbt_best_iteration(m->payer) : -1,
		    m->payer ? gbt_rounds_trained(m->payer) : 0, now_seconds() - started,
		    t_fit - started, now_seconds() - t_fit);
	gbt_artefact_rows_release(&train);
	gbt_artefact_rows_release(&valid);
	return ret;
}

/* The (tier, horizon) revenue regressor on split's payers into m; pooled is NULL for tier 0. */
static int revenue_part(const struct model_data *d, const struct hurdle_fit *hf,
			const double *ltv, const struct row_split *split,
			struct pooled_valid *pooled, struct hurdle_model *m, cJSON *info,
			struct ltv_err *err)
{
	struct gbt_artefact_rows train = { 0 }, valid = { 0 };
	const struct gbt_artefact_rows *fallback = NULL;
	double started = now_seconds(), t_fit;
	int ret = payers_build(d, hf->features, ltv, split->train, split->n_train, &train, err);

	if (ret == 0)
		ret = payers_build(d, hf->features, ltv, split->valid, split->n_valid, &valid, err);
	if (ret == 0 && valid.n < GBT_ARTEFACT_MIN_VALID_ROWS)
		ret = pooled_valid_get(pooled, 1, &fallback, err);
	t_fit = now_seconds();
	if (ret == 0)
		ret = fit_revenue(hf, &train, &valid, fallback, m, info, err);
	if (ret < 0)
		err_prefix(err, "hurdle: tier %d, horizon %lld", m->tier, (long long)m->horizon);
	else
		LOG(LOG_INFO, "tier %d h%lld revenue: %zu payers, %s, best round %d of %d; "
		    "%.1f s (data %.1f, fit %.1f)", m->tier, (long long)m->horizon, train.n,
		    hurdle_revenue_kind_name(m->kind), m->revenue ? gbt_best_iteration(m->revenue) : -1,
		    m->revenue ? gbt_rounds_trained(m->revenue) : 0, now_seconds() - started,
		    t_fit - started, now_seconds() - t_fit);
	gbt_artefact_rows_release(&train);
	gbt_artefact_rows_release(&valid);
	return ret;
}

static struct hurdle_model model_empty(int tier, int64_t horizon)
{
	return (struct hurdle_model){ .tier = tier, .horizon = horizon, .p_const = NAN,
				      .kind = HURDLE_REVENUE_NONE, .smear = 1.0 };
}

/* Moves the revenue regressor of from into to (to keeps its payer classifier). */
static void model_take_revenue(struct hurdle_model *to, struct hurdle_model *from)
{
	to->kind = from->kind;
	to->shift = from->shift;
	to->smear = from->smear;
	to->smear_by_age = from->smear_by_age;
	to->revenue = from->revenue;
	from->revenue = NULL;
	memset(&from->smear_by_age, 0, sizeof(from->smear_by_age));
}

/*
 * What one hurdle task fits at one horizon: the pooled model's payer
 * classifier, its revenue regressor, or every tier's own model (both parts;
 * small, see gbt_artefact_tier_fit). The pooled model's two parts are tasks
 * of their own so the stage's cores stay busy to its end: with a horizon a
 * task, the last horizon ran alone on the wave's two cores (two fits on one
 * thread each are ~2x, one fit on two threads 1.5x).
 */
enum hurdle_part { PART_PAYER, PART_REVENUE, PART_TIERS };

struct hurdle_task {
	const struct model_data *d;
	struct hurdle_fit hf;          /* hf.task is set when the task runs */
	int64_t horizon;
	const struct row_split *pooled_split;
	enum hurdle_part part;
	struct hurdle_model *models;   /* PART_TIERS: tiers 1..3; else one part of tier 0's */
	size_t n_models;
	size_t cap_models;
	cJSON *details;                /* "t<tier>_h<H>" → what the fit chose */
	cJSON *nearly_pooled;          /* PART_TIERS: gbt_artefact.nearly_pooled's, this horizon */
};

static void task_add(struct hurdle_task *t, const struct hurdle_model *m)
{
	ARRAY_GROW(t->models, t->n_models + 1, t->cap_models);
	t->models[t->n_models++] = *m;
}

/*
 * Each tier's own model, where the tier has enough rows and not nearly all
 * the pooled ones. A tier's rows are taken from the horizon's pooled split
 * (model_data_split_of_tier: model_data_split_weighted's rows for the tier,
 * in its order).
 */
static int train_tiers(struct hurdle_task *t, const double *ltv, struct ltv_err *err)
{
	const struct hurdle_fit *hf = &t->hf;
	struct pooled_valid pooled = { .d = t->d, .features = hf->features, .ltv = ltv,
				       .split = t->pooled_split };
	int ret = 0;

	for (int tier = 1; tier < GBT_ARTEFACT_N_TIERS && ret == 0; tier++) {
		struct hurdle_model m = model_empty(tier, t->horizon);
		enum gbt_artefact_tier_fit fit;
		struct row_split split;
		cJSON *info;

		/* from the pooled split, not a pass over every frame row per tier: split_rows
		 * of tiers 1..3 was 1.4% of hurdle's CPU at 1,000,000 users (perf) */
		model_data_split_of_tier(t->d, t->pooled_split, tier, &split);
		fit = gbt_artefact_tier_fit(split.n_train, (size_t)hf->sec->min_tier_users,
					    split.n_train, t->pooled_split->n_train);
		if (fit == GBT_ARTEFACT_TIER_NEARLY_POOLED)
			gbt_artefact_note_nearly_pooled(t->nearly_pooled, tier, t->horizon);
		if (fit == GBT_ARTEFACT_TIER_OWN) {
			info = gbt_artefact_add_model_info(t->details, tier, t->horizon);
			ret = payer_part(t->d, hf, ltv, &split, &pooled, &m, info, err);
			if (ret == 0)
				ret = revenue_part(t->d, hf, ltv, &split, &pooled, &m, info, err);
			if (ret == 0) {
				task_add(t, &m);
			} else {
				gbt_free(m.payer);
				gbt_free(m.revenue);
			}
		}
		row_split_release(&split);
	}
	pooled_valid_release(&pooled);
	return ret;
}

static int train_part(void *arg, struct stage_task *task)
{
	struct hurdle_task *t = (struct hurdle_task *)arg + task->index;
	const double *ltv = model_data_label(t->d, t->horizon);
	struct hurdle_model m = model_empty(0, t->horizon);
	int ret;

	t->hf.task = task;
	if (t->part == PART_TIERS)
		return train_tiers(t, ltv, &task->err);
	if (t->part == PART_PAYER)
		ret = payer_part(t->d, &t->hf, ltv, t->pooled_split, NULL, &m,
				 gbt_artefact_add_model_info(t->details, 0, t->horizon), &task->err);
	else
		ret = revenue_part(t->d, &t->hf, ltv, t->pooled_split, NULL, &m,
				   gbt_artefact_add_model_info(t->details, 0, t->horizon),
				   &task->err);
	if (ret == 0) {
		task_add(t, &m);
	} else {
		gbt_free(m.payer);
		gbt_free(m.revenue);
	}
	return ret;
}

/*
 * Adds one horizon's models to state in the order of one task per horizon
 * (the pooled model, then each tier's), and their details likewise: the
 * pooled model's payer keys, then its revenue keys.
 */
static void gather_horizon(struct hurdle_task *payer, struct hurdle_task *revenue,
			   struct hurdle_task *tiers, struct hurdle_state *state,
			   struct gbt_artefact *artefact)
{
	cJSON *details = artefact->models;

	struct hurdle_model m = payer->models[0];
	cJSON *info = payer->details->child, *rev = revenue->details->child;

	model_take_revenue(&m, &revenue->models[0]);
	hurdle_state_add(state, &m);
	for (size_t i = 0; i < tiers->n_models; i++)
		hurdle_state_add(state, &tiers->models[i]);
	tiers->n_models = 0;
	payer->n_models = 0;
	while (rev->child) {
		cJSON *item = cJSON_DetachItemViaPointer(rev, rev->child);

		cJSON_AddItemToObject(info, item->string, item); /* copies the key first */
	}
	cJSON_DetachItemViaPointer(payer->details, info);
	cJSON_AddItemToObject(details, info->string, info);
	while (tiers->details->child) {
		cJSON *item = cJSON_DetachItemViaPointer(tiers->details, tiers->details->child);

		cJSON_AddItemToObject(details, item->string, item); /* copies the key first */
	}
	while (tiers->nearly_pooled->child)
		cJSON_AddItemToArray(artefact->nearly_pooled,
				     cJSON_DetachItemViaPointer(tiers->nearly_pooled,
								tiers->nearly_pooled->child));
}

static void task_release(struct hurdle_task *t)
{
	for (size_t i = 0; i < t->n_models; i++) {
		gbt_free(t->models[i].payer);
		gbt_free(t->models[i].revenue);
	}
	free(t->models);
	cJSON_Delete(t->details);
	cJSON_Delete(t->nearly_pooled);
}

/*
 * order[0..n): the horizons' indexes, the one with more training rows
 * first (ties: config order), so the longest fits start first and the
 * short ones fill the cores at the end.
 */
static void order_longest_first(const struct row_split *splits, size_t n, size_t *order)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		for (; j > 0 && splits[order[j - 1]].n_train < splits[i].n_train; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
}

/*
 * Every horizon's models, trained as parallel stage tasks (they share
 * nothing but the read-only data and the horizon's split), then gathered in
 * horizon order so the state, the stored bodies and the content hash do not
 * depend on which finished first.
 */
static int train_all(struct stage_ctx *ctx, const struct model_data *d,
		     const struct hurdle_fit *hf, struct hurdle_state *state,
		     struct gbt_artefact *artefact)
{
	const struct int_list *horizons = &d->params.horizons;
	const size_t n_h = horizons->n;
	struct row_split *splits = xcalloc(n_h ? n_h : 1, sizeof(*splits));
	size_t *order = xcalloc(n_h ? n_h : 1, sizeof(*order));
	struct hurdle_task *tasks = xcalloc(3 * (n_h ? n_h : 1), sizeof(*tasks));
	size_t n_tasks = 0, n_trained = 0, *slot = xcalloc(n_h ? n_h : 1, sizeof(*slot));
	int ret = 0;

	for (size_t h = 0; h < n_h; h++) {
		if (!model_data_label(d, horizons->v[h])) {
			ret = err_set(&ctx->err, LTV_EINTERNAL, "hurdle: the features artefact has no "
				      "label ltv_%lld; rerun features", (long long)horizons->v[h]);
			goto out;
		}
		model_data_split_weighted(d, horizons->v[h], 0, &splits[h]);
		if (splits[h].n_train == 0)
			LOG(LOG_WARN, "h%lld: no user is mature at this horizon in the training "
			    "cohorts; no model for it", (long long)horizons->v[h]);
	}
	order_longest_first(splits, n_h, order);
	for (size_t i = 0; i < n_h; i++)
		if (splits[order[i]].n_train > 0)
			order[n_trained++] = order[i];
	/* all payer classifiers (the longest fits), then the regressors, then the tiers' */
	for (int part = PART_PAYER; part <= PART_TIERS; part++) {
		for (size_t i = 0; i < n_trained; i++) {
			struct hurdle_task *t = &tasks[n_tasks];

			if (part == PART_PAYER)
				slot[order[i]] = n_tasks;
			t->d = d;
			t->hf = *hf;
			t->horizon = horizons->v[order[i]];
			t->pooled_split = &splits[order[i]];
			t->part = (enum hurdle_part)part;
			t->details = cJSON_CreateObject();
			t->nearly_pooled = cJSON_CreateArray();
			n_tasks++;
		}
	}
	ret = stage_run_tasks(ctx, n_tasks, train_part, tasks);
	for (size_t h = 0; h < n_h && ret == 0; h++) {
		if (splits[h].n_train == 0) {
			cJSON_AddItemToArray(artefact->skipped,
					     cJSON_CreateNumber((double)horizons->v[h]));
			continue;
		}
		gather_horizon(&tasks[slot[h]], &tasks[slot[h] + n_trained],
			       &tasks[slot[h] + 2 * n_trained], state, artefact);
	}
out:
	for (size_t i = 0; i < n_tasks; i++)
		task_release(&tasks[i]);
	for (size_t h = 0; h < n_h; h++)
		row_split_release(&splits[h]);
	free(tasks);
	free(slot);
	free(order);
	free(splits);
	return ret;
}

/* ---- metrics ---- */

/*
 * At the target horizon, on its validation rows: payer AUC, RMSLE and WAPE of
 * ltv per user, plus WAPE and bias of campaign totals (what bids act on; a
 * mean-predicting model loses to "nothing more" per user but not per campaign).
 */
static int add_metrics(struct stage_ctx *ctx, const struct model_data *d,
		       const struct hurdle_state *state)
{
	const int64_t target = d->params.target_horizon;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct gbt_artefact_validation v;
	double auc = NAN, *payer = NULL;
	int ret = gbt_artefact_validate(d, target, &method_hurdle, state,
					hurdle_state_find(state, 0, target) != NULL, &v, &ctx->err);

	if (ret == 0 && v.predicted) {
		payer = xmalloc(v.n * sizeof(*payer));
		for (size_t i = 0; i < v.n; i++)
			payer[i] = v.actual[i] - rev_window[v.split.valid[i]] > 0;
		ret = metrics_auc(payer, v.p_payer, v.n, &auc, NULL, &ctx->err);
	}
	cJSON_AddNumberToObject(ctx->metrics, "horizon", (double)target);
	gbt_artefact_add_metric(ctx->metrics, "payer_auc", auc);
	gbt_artefact_add_scores(ctx->metrics, &v.scores);
	cJSON_AddNumberToObject(ctx->metrics, "n_valid", (double)v.n);
	cJSON_AddNumberToObject(ctx->metrics, "n_models", (double)state->n_models);
	free(payer);
	gbt_artefact_validation_release(&v);
	return ret;
}

int stage_hurdle_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct hurdle_fit hf = { .sec = &cfg->hurdle };
	struct hurdle_state *state = NULL;
	struct gbt_artefact artefact;
	struct str_list features;
	struct model_data d;
	int ret;

	/* hurdle.features plus the attributes' encodings (hurdle.attribute_features) */
	config_model_features(cfg, &cfg->hurdle, &features);
	hf.k = features.n;
	hf.names = (const char *const *)features.v;
	gbt_artefact_init(&artefact);
	ret = model_data_load(ctx, 1, &d);
	if (ret < 0)
		goto out;
	state = hurdle_state_new(&features);
	hf.features = &state->features;
	hf.window_col = hurdle_window_column(&features);
	if (cfg->hurdle.smear_by_age)
		hf.smear_snapshots = &d.params.snapshots;
	ctx->task_bytes = d.frame.n_rows * features.n * HURDLE_TASK_BYTES_PER_CELL;
	ret = train_all(ctx, &d, &hf, state, &artefact);
	if (ret == 0)
		ret = add_metrics(ctx, &d, state);
	if (ret == 0)
		ret = hurdle_state_save(state, &artefact, &ctx->err);
	if (ret == 0)
		ret = gbt_artefact_store(&artefact, ctx);
out:
	gbt_artefact_release(&artefact);
	hurdle_state_free(state);
	config_str_list_free(&features);
	model_data_release(&d);
	return ret;
}
