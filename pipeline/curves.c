/*
 * Stage curves: cumulative revenue per user of a cohort as a function of days
 * elapsed, y(D) = a * D^b (include/ltv/curve.h), fitted per tier-1 campaign
 * and shrunk towards a pooled tier prior, then used to extrapolate a young
 * cohort from what it showed in the observation window to a horizon.
 *
 * Training, per configured horizon H: the users of model_data_split(H).train
 * (mature at H, installed before that horizon's validation cohorts), whose
 * daily revenue is read from the registry's user-days (a day only when it is
 * complete at as_of). Each (app, campaign) cohort gives y(D) for D = 1..H;
 * tier-1 cohorts with at least curves.min_cohort_users such users get their
 * own fit, shrunk to the tier-1 prior with weight n / (n + shrinkage_users).
 * Two priors are pooled fits: over every tier-1 training user, and over every
 * tier-2 and tier-3 training user (so campaigns without a curve of their own
 * still have one).
 *
 * Prediction for the rows of one cohort (a cohort-level method): each row
 * describes a user at an age u (window_days) with rev_window seen before it.
 * The cohort's level is L = sum(rev_window) / sum(y(u)) over its rows (weighted,
 * ages of at least a day), blended towards 1 by w = n / (n + shrinkage_users)
 * for small cohorts; each user gets rev_window + L * (y(H) - y(u)), with b < 0
 * taken as 0, so the cohort is extrapolated along its curve from the ages its
 * users have, and nobody falls below observed revenue. A campaign with no
 * curve of its own uses its tier's prior (a row without a tier counts as tier
 * 3). Because L is taken over the rows passed, a cohort's rows must be
 * predicted in one call. A prediction at H is the largest such value over
 * the trained horizons up to H, so predictions never decrease with the
 * horizon. Horizons not trained give NaN.
 *
 * Artefact: blob "curves" (format in include/ltv/curves_model.h), nothing else.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/curve.h"
#include "ltv/curves_model.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"
#include "ltv/stage_metrics.h"
#include "ltv/strmap.h"

struct curves_train {
	const struct model_data *d;
	const struct config *cfg;
	struct frame_col age;
	int64_t *row_of_uid;   /* uid → frame row, -1 when absent; uid < n_uids */
	size_t n_uids;
	uint32_t *train_mask;  /* per row: bit i set when a training row at horizon i */
	size_t *compact;       /* per row: its cohort among the cohorts present */
	size_t n_cohorts;
	size_t *day_off;       /* per horizon: offset of its [cohort][day] sums in day_sum */
	double *day_sum;
	double *n_train;       /* [horizon * n_cohorts + cohort] */
	int64_t days_read;
};

static int add_user_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
			int64_t purchases)
{
	struct curves_train *t = opaque;
	const struct int_list *hz = &t->d->params.horizons;
	int64_t row;
	uint32_t mask;

	(void)events;
	(void)purchases;
	if (uid < 0 || (size_t)uid >= t->n_uids || (row = t->row_of_uid[uid]) < 0)
		return 0;
	mask = t->train_mask[row];
	/* day < age is install + (day + 1) days <= as_of: the day is complete. */
	if (!mask || day < 0 || (double)day >= frame_col_at(t->age, row))
		return 0;
	t->days_read++;
	for (size_t h = 0; h < hz->n; h++)
		if ((mask >> h & 1u) && day < hz->v[h])
			t->day_sum[t->day_off[h] + t->compact[row] * (size_t)hz->v[h] + (size_t)day] +=
				revenue;
	return 0;
}

/* Fits y(D) = total[0..D-1] / n_users for D = 1..H; LTV_EMODEL when it cannot. */
static int fit_cumulative(const double *day_total, int64_t horizon, double n_users,
			  struct curve *out, struct ltv_err *err)
{
	double *days = xmalloc((size_t)horizon * sizeof(double));
	double *y = xmalloc((size_t)horizon * sizeof(double));
	double *weight = xmalloc((size_t)horizon * sizeof(double));
	double cum = 0;
	int ret;

	for (int64_t dd = 0; dd < horizon; dd++) {
		cum += day_total[dd];
		days[dd] = (double)(dd + 1);
		y[dd] = n_users > 0 ? cum / n_users : 0;
		weight[dd] = n_users;
	}
	ret = n_users > 0 ? curve_fit(days, y, weight, (size_t)horizon, out, err)
			  : err_set(err, LTV_EMODEL, "no training users");
	free(days);
	free(y);
	free(weight);
	return ret;
}

static int load_day_sums(struct stage_ctx *ctx, struct curves_train *t)
{
	const struct model_data *d = t->d;
	const struct int_list *hz = &d->params.horizons;
	const struct frame_col uid = frame_col(&d->frame, "uid");
	const struct frame_col user_rep = frame_col(&d->frame, "user_rep");
	const size_t n_dense = d->n_apps * d->n_campaigns;
	size_t *compact_of = xmalloc((n_dense ? n_dense : 1) * sizeof(size_t));
	size_t total = 0;
	double max_uid = 0;
	int ret;

	assert(hz->n <= CURVES_MAX_HORIZONS && d->tier);
	if (!frame_col_found(uid) || !frame_col_found(t->age)) {
		free(compact_of);
		return err_set(&ctx->err, LTV_EINTERNAL, "features frame lacks uid or age_days");
	}
	for (size_t c = 0; c < n_dense; c++)
		compact_of[c] = SIZE_MAX;
	t->compact = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(size_t));
	for (size_t i = 0; i < d->frame.n_rows; i++) {
		size_t c = model_data_cohort(d, i);

		if (compact_of[c] == SIZE_MAX)
			compact_of[c] = t->n_cohorts++;
		t->compact[i] = compact_of[c];
		max_uid = fmax(max_uid, frame_col_at(uid, i));
	}
	free(compact_of);
	t->n_uids = (size_t)max_uid + 1;
	t->row_of_uid = xmalloc(t->n_uids * sizeof(int64_t));
	for (size_t u = 0; u < t->n_uids; u++)
		t->row_of_uid[u] = -1;
	for (size_t i = 0; i < d->frame.n_rows; i++)
		if (!frame_col_found(user_rep) || frame_col_at(user_rep, i) != 0)
			t->row_of_uid[(size_t)frame_col_at(uid, i)] = (int64_t)i;

	t->train_mask = xcalloc(d->frame.n_rows ? d->frame.n_rows : 1, sizeof(uint32_t));
	t->day_off = xmalloc(hz->n * sizeof(size_t));
	t->n_train = xcalloc(hz->n * (t->n_cohorts ? t->n_cohorts : 1), sizeof(double));
	for (size_t h = 0; h < hz->n; h++) {
		struct row_split split;

		model_data_split_users(d, hz->v[h], 0, &split);
		for (size_t j = 0; j < split.n_train; j++) {
			t->train_mask[split.train[j]] |= 1u << h;
			t->n_train[h * t->n_cohorts + t->compact[split.train[j]]] += 1;
		}
		row_split_release(&split);
		t->day_off[h] = total;
		total += t->n_cohorts * (size_t)hz->v[h];
	}
	t->day_sum = xcalloc(total ? total : 1, sizeof(double));
	ret = registry_user_days_each(ctx->reg, add_user_day, t, &ctx->err);
	return ret;
}

static void curves_train_release(struct curves_train *t)
{
	free(t->row_of_uid);
	free(t->train_mask);
	free(t->compact);
	free(t->day_off);
	free(t->day_sum);
	free(t->n_train);
}

static int compare_entry(const void *a, const void *b)
{
	const struct curves_entry *x = a, *y = b;
	int c = strcmp(x->app, y->app);

	return c ? c : strcmp(x->campaign, y->campaign);
}

/* Fits the priors and the tier-1 campaign curves of horizon index hi. */
static void fit_horizon(struct stage_ctx *ctx, const struct curves_train *t, size_t hi,
			const double *cohort_tier, const size_t *cohort_row,
			struct curves_horizon *out)
{
	const struct config *cfg = ctx->cfg;
	const int64_t horizon = t->d->params.horizons.v[hi];
	const size_t hn = (size_t)horizon;
	const double *sums = t->day_sum + t->day_off[hi];
	const double *n_train = t->n_train + hi * t->n_cohorts;
	const struct curve_param param = { .shrink_k = cfg->curves.shrinkage_users };
	double *pooled = xcalloc(N_PRIORS * hn, sizeof(double));
	double pooled_n[N_PRIORS] = { 0 };
	const struct model_data *d = t->d;
	size_t cap = 0, n_failed = 0;
	struct ltv_err fit_err;
	char why[N_PRIORS][256] = { "", "" };

	memset(out, 0, sizeof(*out));
	out->horizon = horizon;
	for (size_t c = 0; c < t->n_cohorts; c++) {
		int p = cohort_tier[c] == 1 ? PRIOR_TIER1 : PRIOR_TIER23;

		pooled_n[p] += n_train[c];
		for (size_t dd = 0; dd < hn; dd++)
			pooled[p * hn + dd] += sums[c * hn + dd];
	}
	for (int p = 0; p < N_PRIORS; p++) {
		out->prior_users[p] = (uint64_t)pooled_n[p];
		out->has_prior[p] = fit_cumulative(pooled + p * hn, horizon, pooled_n[p],
						   &out->prior[p], &fit_err) == 0;
		if (!out->has_prior[p])
			snprintf(why[p], sizeof(why[p]), "%.200s", fit_err.msg);
	}
	if (!out->has_prior[0] && !out->has_prior[1])
		LOG(LOG_WARN, "H=%lld: no prior curve (%s); campaigns without a curve of their own "
		    "get no prediction at this horizon", (long long)horizon, why[0]);
	else if (!out->has_prior[0] || !out->has_prior[1])
		LOG(LOG_WARN, "H=%lld: no %s prior curve (%s); those campaigns use the other prior",
		    (long long)horizon, out->has_prior[0] ? "tier-2/3" : "tier-1",
		    why[out->has_prior[0] ? 1 : 0]);
	for (size_t c = 0; c < t->n_cohorts; c++) {
		const size_t cohort = model_data_cohort(d, cohort_row[c]);
		struct curve own;
		struct curves_entry *e;

		if (cohort_tier[c] != 1 || n_train[c] < (double)cfg->curves.min_cohort_users)
			continue;
		if (fit_cumulative(sums + c * hn, horizon, n_train[c], &own, &fit_err) < 0) {
			n_failed++;
			LOG(LOG_DEBUG, "H=%lld: %s/%s keeps the prior: %s", (long long)horizon,
			    d->apps[cohort / d->n_campaigns], d->campaigns[cohort % d->n_campaigns],
			    fit_err.msg);
			continue;
		}
		ARRAY_GROW(out->entries, out->n_entries + 1, cap);
		e = &out->entries[out->n_entries++];
		e->app = xstrdup(d->apps[cohort / d->n_campaigns]);
		e->campaign = xstrdup(d->campaigns[cohort % d->n_campaigns]);
		e->n_users = (uint64_t)n_train[c];
		if (out->has_prior[PRIOR_TIER1])
			curve_shrink(&param, &own, &out->prior[PRIOR_TIER1], (size_t)n_train[c], &e->curve);
		else
			e->curve = own;
	}
	if (out->n_entries)
		qsort(out->entries, out->n_entries, sizeof(*out->entries), compare_entry);
	if (n_failed)
		LOG(LOG_INFO, "H=%lld: %zu tier-1 campaigns without a usable curve use the prior",
		    (long long)horizon, n_failed);
	free(pooled);
}

static void add_training_metrics(struct stage_ctx *ctx, const struct curves_state *s,
				 const struct curves_train *t)
{
	char name[64];

	cJSON_AddNumberToObject(ctx->metrics, "user_days_read", (double)t->days_read);
	for (size_t i = 0; i < s->n_h; i++) {
		const struct curves_horizon *h = &s->h[i];
		const long long hz = (long long)h->horizon;
		double *b = xmalloc((h->n_entries ? h->n_entries : 1) * sizeof(double));

		snprintf(name, sizeof(name), "campaign_curves_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, (double)h->n_entries);
		snprintf(name, sizeof(name), "tier1_prior_b_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, h->has_prior[0] ? h->prior[0].b : NAN);
		snprintf(name, sizeof(name), "tier23_prior_b_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, h->has_prior[1] ? h->prior[1].b : NAN);
		for (size_t j = 0; j < h->n_entries; j++)
			b[j] = h->entries[j].curve.b;
		qsort(b, h->n_entries, sizeof(double), double_cmp);
		snprintf(name, sizeof(name), "median_campaign_b_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name,
					h->n_entries ? b[h->n_entries / 2] : NAN);
		free(b);
	}
}

int stage_curves_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	const struct int_list *hz;
	struct curves_train t = { 0 };
	struct curves_state *trained = xcalloc(1, sizeof(*trained));
	struct curves_state *loaded = NULL;
	struct model_data d;
	struct row_split valid = { 0 };
	double *cohort_tier = NULL, *pred = NULL;
	size_t *cohort_row = NULL;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int64_t out_id;
	int ret;

	ret = model_data_load(ctx, 1, &d);
	if (ret < 0) {
		free(trained);
		return ret;
	}
	hz = &d.params.horizons;
	if (hz->n > CURVES_MAX_HORIZONS) {
		free(trained);
		model_data_release(&d);
		return err_set(&ctx->err, LTV_ECONFIG, "curves: at most %d horizons",
			       CURVES_MAX_HORIZONS);
	}
	t.d = &d;
	t.cfg = cfg;
	t.age = frame_col(&d.frame, "age_days");
	ret = load_day_sums(ctx, &t);
	if (ret < 0)
		goto out;

	cohort_tier = xcalloc(t.n_cohorts ? t.n_cohorts : 1, sizeof(double));
	cohort_row = xcalloc(t.n_cohorts ? t.n_cohorts : 1, sizeof(size_t));
	for (size_t i = d.frame.n_rows; i-- > 0;) {
		cohort_tier[t.compact[i]] = d.tier[i];
		cohort_row[t.compact[i]] = i;
	}
	trained->shrinkage_users = cfg->curves.shrinkage_users;
	trained->n_h = hz->n;
	trained->h = xcalloc(hz->n ? hz->n : 1, sizeof(*trained->h));
	for (size_t h = 0; h < hz->n; h++) {
		fit_horizon(ctx, &t, h, cohort_tier, cohort_row, &trained->h[h]);
		stage_progress(ctx, "horizons", h + 1, hz->n);
	}
	curves_state_index(trained);
	add_training_metrics(ctx, trained, &t);

	/* Validate what is stored: the saved blob, read back. */
	curves_save(trained, &blob, &blob_len);
	ret = curves_parse(blob, blob_len, &loaded, &ctx->err);
	if (ret < 0)
		goto out;
	model_data_split_valid(&d, d.params.target_horizon, 0, &valid);
	pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
	ret = curves_predict(loaded, &d, valid.valid, valid.n_valid, d.params.target_horizon,
			     pred, NULL, &ctx->err);
	if (ret == 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
					     d.params.target_horizon);
	if (ret < 0)
		goto out;

	hasher_update(&ctx->content, blob, blob_len);
	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = registry_blob_put(ctx->reg, out_id, CURVES_BLOB, blob, blob_len, &ctx->err);
out:
	free(blob);
	free(pred);
	free(cohort_tier);
	free(cohort_row);
	row_split_release(&valid);
	curves_state_free(trained);
	curves_state_free(loaded);
	curves_train_release(&t);
	model_data_release(&d);
	return ret;
}
