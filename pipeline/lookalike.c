/*
 * Stage lookalike: a user is worth what users who looked like them in the
 * observation window went on to spend. k-means++ (include/ltv/kmeans.h) on
 * the standardised lookalike.features columns of the training users at the
 * target horizon; then, per configured horizon H, each cluster's mean future
 * revenue (ltv_H - rev_window) over the training users mature at H
 * (model_data_split(H).train).
 *
 * Prediction: rev_window + the cluster's mean future revenue. We predict the
 * revenue still to come rather than max(rev_window, cluster mean ltv_H)
 * (DESIGN.md "Time, windows and labels"): it never falls below what the user
 * has already paid, and it does not hand a payer the mean of a cluster that
 * also holds non-payers' zeros. Per cluster the stored means are made
 * non-decreasing over the horizons, so predictions are monotone in H.
 *
 * Inputs are transformed before clustering: a missing value (NaN) becomes
 * that column's median over the training rows (recorded in the artefact),
 * then every value x becomes sign(x) * ln(1 + |x|), because revenue and event
 * counts are heavy-tailed and standardised raw values would spend most
 * clusters on a handful of whales. An empty cluster gets the mean of all
 * training rows (kmeans_cluster_means). A horizon with no training user gets
 * NaN (the scorer falls back).
 *
 * With lookalike.mean_by_age, each cluster also keeps its mean future per
 * snapshot age and a row takes the mean of its own age (include/ltv/
 * age_means.h): a cluster holds rows of every age, whose futures fall
 * steeply with it. Those are made monotone across horizons where they are
 * served (age_means_monotone in include/ltv/age_means.h, called by
 * serving/lookalike_model.c's future_by_age).
 *
 * Artefact: blob "kmeans" (kmeans_save: scaler and centroids) and blob
 * "lookalike" (format in include/ltv/lookalike_model.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/kmeans.h"
#include "ltv/log.h"
#include "ltv/lookalike_model.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"
#include "ltv/stage_metrics.h"

/* Median of the non-NaN values of col over rows; 0 when there is none. */
static double column_median(struct frame_col col, const size_t *rows, size_t n)
{
	double *v = xmalloc((n ? n : 1) * sizeof(double));
	size_t m = 0;
	double median = 0;

	for (size_t i = 0; i < n; i++)
		if (!isnan(frame_col_at(col, rows[i])))
			v[m++] = frame_col_at(col, rows[i]);
	if (m)
		median = median_select(v, m);
	free(v);
	return median;
}

/*
 * h->by_age: each cluster's mean future per snapshot age over the training
 * rows of split (label[i] the cluster of split.train[i], repeats[i] its
 * count, future[i] its future), the cluster's pooled mean where an age has
 * too few rows (include/ltv/age_means.h).
 */
static void fit_means_by_age(const struct model_data *d, size_t k, const struct row_split *split,
			     const int *label, const size_t *repeats, const double *future,
			     struct lookalike_horizon *h)
{
	const struct frame_col window = frame_col(&d->frame, "window_days");
	double *age = xmalloc((split->n_train ? split->n_train : 1) * sizeof(double));
	double *w = xmalloc((split->n_train ? split->n_train : 1) * sizeof(double));

	for (size_t i = 0; i < split->n_train; i++) {
		age[i] = frame_col_found(window) ? frame_col_at(window, split->train[i]) : NAN;
		w[i] = (double)repeats[i];
	}
	h->by_age = xcalloc(k, sizeof(*h->by_age));
	age_means_fit(&d->params.snapshots, age, future, NULL, w, label, k, split->n_train,
		      h->future, h->by_age);
	free(age);
	free(w);
}

/*
 * label[i] = the cluster of frame row rows[i]: row_label's (the fit's, -1
 * for a row it did not see) where it has one, else predicted. A row's
 * label depends on its values alone (include/ltv/kmeans.h), and the fit's
 * last assignment is kmeans_predict's to the bit, so looking it up is
 * predicting it; most rows mature at another horizon are the fit's too.
 */
static int horizon_labels(struct stage_ctx *ctx, const struct model_data *d,
			  const struct lookalike_state *s, const int *row_label,
			  const size_t *rows, size_t n, int *label)
{
	size_t *missing = xmalloc((n ? n : 1) * sizeof(size_t));
	size_t *at = xmalloc((n ? n : 1) * sizeof(size_t));
	int *predicted = NULL;
	size_t n_missing = 0;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		label[i] = row_label[rows[i]];
		if (label[i] < 0) {
			at[n_missing] = i;
			missing[n_missing++] = rows[i];
		}
	}
	if (n_missing) {
		predicted = xmalloc(n_missing * sizeof(int));
		ret = lookalike_labels(s, d, missing, n_missing, stage_threads(ctx), predicted,
				       &ctx->err);
		for (size_t m = 0; m < n_missing && ret == 0; m++)
			label[at[m]] = predicted[m];
	}
	free(predicted);
	free(at);
	free(missing);
	return ret;
}

/*
 * Cluster means of future revenue at horizon hi, from the training rows
 * mature there, each counted as many times as model_data_split repeats it
 * (its weight): the same sums as over the repeated rows, but the matrix and
 * labels are of the distinct rows (at 1,000,000 users the repeated rows'
 * matrix was about 200 MB beside the shared frame).
 */
static int fit_horizon_means(struct stage_ctx *ctx, const struct model_data *d,
			     struct lookalike_state *s, size_t hi, const int *row_label)
{
	struct lookalike_horizon *h = &s->h[hi];
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const double *y = model_data_label(d, h->horizon);
	struct row_split split;
	double *future = NULL;
	int *label = NULL;
	size_t *counts = xcalloc(s->km->k, sizeof(size_t)), *repeats = NULL;
	int ret = 0;

	model_data_split_weighted(d, h->horizon, 0, &split);
	repeats = xmalloc((split.n_train ? split.n_train : 1) * sizeof(size_t));
	h->n_train = 0;
	for (size_t i = 0; i < split.n_train; i++) {
		repeats[i] = model_data_repeats(d, split.train[i]);
		h->n_train += repeats[i];
	}
	h->future = xcalloc(s->km->k, sizeof(double));
	h->counts = xcalloc(s->km->k, sizeof(uint64_t));
	if (h->n_train == 0)
		goto out;
	future = xmalloc(split.n_train * sizeof(double));
	for (size_t i = 0; i < split.n_train; i++)
		future[i] = y[split.train[i]] - rev_window[split.train[i]];
	label = xmalloc(split.n_train * sizeof(int));
	ret = horizon_labels(ctx, d, s, row_label, split.train, split.n_train, label);
	if (ret == 0)
		ret = kmeans_cluster_means_repeated(s->km, label, repeats, split.n_train, future,
						    h->future, counts, &ctx->err);
	for (size_t c = 0; c < s->km->k; c++)
		h->counts[c] = counts[c];
	if (ret == 0 && ctx->cfg->lookalike.mean_by_age)
		fit_means_by_age(d, s->km->k, &split, label, repeats, future, h);
out:
	free(counts);
	free(repeats);
	free(label);
	free(future);
	row_split_release(&split);
	return ret;
}

/*
 * Makes each cluster's mean non-decreasing over the trained horizons, in
 * horizon order.
 */
static void make_monotone(struct lookalike_state *s)
{
	for (size_t i = 0; i < s->n_h; i++) {
		struct lookalike_horizon *hi = &s->h[i];

		if (!hi->n_train)
			continue;
		for (size_t j = 0; j < s->n_h; j++) {
			const struct lookalike_horizon *hj = &s->h[j];

			if (!hj->n_train || hj->horizon >= hi->horizon)
				continue;
			/* The means by age are made monotone where they are served (age_means_monotone). */
			for (size_t c = 0; c < s->km->k; c++)
				hi->future[c] = fmax(hi->future[c], hj->future[c]);
		}
	}
}

static void add_training_metrics(struct stage_ctx *ctx, const struct lookalike_state *s)
{
	char name[64];

	cJSON_AddNumberToObject(ctx->metrics, "clusters", (double)s->km->k);
	cJSON_AddNumberToObject(ctx->metrics, "inertia", s->km->inertia);
	cJSON_AddNumberToObject(ctx->metrics, "kmeans_iterations", (double)s->km->n_iter);
	for (size_t i = 0; i < s->n_h; i++) {
		const struct lookalike_horizon *h = &s->h[i];
		double lo = INFINITY, hi = -INFINITY;
		size_t empty = 0;

		for (size_t c = 0; c < s->km->k; c++) {
			lo = fmin(lo, h->future[c]);
			hi = fmax(hi, h->future[c]);
			empty += h->counts[c] == 0;
		}
		snprintf(name, sizeof(name), "train_users_%lld", (long long)h->horizon);
		cJSON_AddNumberToObject(ctx->metrics, name, (double)h->n_train);
		snprintf(name, sizeof(name), "cluster_future_min_%lld", (long long)h->horizon);
		cJSON_AddNumberToObject(ctx->metrics, name, h->n_train ? lo : NAN);
		snprintf(name, sizeof(name), "cluster_future_max_%lld", (long long)h->horizon);
		cJSON_AddNumberToObject(ctx->metrics, name, h->n_train ? hi : NAN);
		snprintf(name, sizeof(name), "empty_clusters_%lld", (long long)h->horizon);
		cJSON_AddNumberToObject(ctx->metrics, name, (double)empty);
	}
}

/*
 * Fits the model of s from the training rows at the target horizon
 * (model_data_split_weighted's); *out_row_label (caller frees; one a frame
 * row, 4 MB a million rows) is each of those rows' cluster under the final
 * centroids, -1 for the frame's other rows.
 */
static int fit_clusters(struct stage_ctx *ctx, const struct model_data *d,
			struct lookalike_state *s, int **out_row_label)
{
	const struct config *cfg = ctx->cfg;
	struct row_split split;
	struct kmeans_param param;
	const char *why;
	double *x = NULL;
	int *label = NULL;
	int ret = 0;

	/* Centroids from each row once: repeating non-payers' rows would only cost time. */
	model_data_split_weighted(d, d->params.target_horizon, 0, &split);
	if (split.n_train == 0) {
		ret = err_set(&ctx->err, LTV_EMODEL, "no training user is mature at the target "
			      "horizon %lld days; ingest older cohorts or lower "
			      "features.target_horizon", (long long)d->params.target_horizon);
		goto out;
	}
	for (size_t j = 0; j < s->n_features; j++) {
		const struct frame_col col = frame_col(&d->frame, s->features[j]);

		s->median[j] = frame_col_found(col) ? column_median(col, split.train, split.n_train) : 0;
	}
	ret = lookalike_build_matrix(d, s->features, s->n_features, s->median, split.train, split.n_train,
			   &x, &ctx->err);
	if (ret < 0)
		goto out;
	kmeans_param_init(&param);
	param.k = (size_t)cfg->lookalike.k < split.n_train ? (size_t)cfg->lookalike.k : split.n_train;
	param.max_iter = (size_t)cfg->lookalike.max_iter;
	param.seed = (uint64_t)cfg->lookalike.seed;
	param.n_threads = stage_threads(ctx);
	if ((why = kmeans_param_check(&param))) {
		ret = err_set(&ctx->err, LTV_ECONFIG, "lookalike: %s", why);
		goto out;
	}
	if (param.k < (size_t)cfg->lookalike.k)
		LOG(LOG_WARN, "only %zu training users: k lowered from %lld", split.n_train,
		    (long long)cfg->lookalike.k);
	label = xmalloc(split.n_train * sizeof(int));
	/* x is not read again: standardised in place, not beside a copy (64 MB at 1,000,000 rows). */
	ret = kmeans_fit_inplace(&param, x, split.n_train, s->n_features, &s->km, label,
				 &ctx->err);
	if (ret == 0 && s->km->n_iter >= param.max_iter)
		LOG(LOG_WARN, "k-means stopped after lookalike.max_iter=%zu updates without "
		    "converging", param.max_iter);
	if (ret == 0) {
		*out_row_label = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(int));
		memset(*out_row_label, -1, d->frame.n_rows * sizeof(int));
		for (size_t i = 0; i < split.n_train; i++)
			(*out_row_label)[split.train[i]] = label[i];
	}
out:
	free(label);
	free(x);
	row_split_release(&split);
	return ret;
}

int stage_lookalike_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	const struct str_list *features = &cfg->lookalike.features;
	struct lookalike_state *s = xcalloc(1, sizeof(*s));
	struct model_data d;
	struct row_split valid = { 0 };
	uint8_t *km_blob = NULL, *blob = NULL;
	size_t km_len = 0, len = 0;
	double *pred = NULL;
	int *row_label = NULL;
	int64_t out_id;
	int ret;

	if (features->n == 0) {
		free(s);
		return err_set(&ctx->err, LTV_ECONFIG, "lookalike.features is empty; list at least "
			       "one features-stage column");
	}
	ret = model_data_load(ctx, 0, &d);
	if (ret < 0) {
		free(s);
		return ret;
	}
	s->n_features = features->n;
	s->features = xcalloc(features->n, sizeof(char *));
	for (size_t j = 0; j < features->n; j++)
		s->features[j] = xstrdup(features->v[j]);
	s->median = xcalloc(features->n, sizeof(double));
	ret = fit_clusters(ctx, &d, s, &row_label);
	if (ret < 0)
		goto out;
	/* steps: the clusters, each horizon's means, the validation */
	stage_progress(ctx, "steps", 1, d.params.horizons.n + 2);
	s->n_h = d.params.horizons.n;
	s->h = xcalloc(s->n_h ? s->n_h : 1, sizeof(*s->h));
	for (size_t i = 0; i < s->n_h && ret == 0; i++) {
		s->h[i].horizon = d.params.horizons.v[i];
		ret = fit_horizon_means(ctx, &d, s, i, row_label);
		stage_progress(ctx, "steps", i + 2, s->n_h + 2);
	}
	if (ret < 0)
		goto out;
	make_monotone(s);
	add_training_metrics(ctx, s);

	model_data_split_valid(&d, d.params.target_horizon, 0, &valid);
	pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
	ret = lookalike_predict_threads(s, &d, valid.valid, valid.n_valid, d.params.target_horizon,
			      stage_threads(ctx), pred, &ctx->err);
	if (ret == 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
					     d.params.target_horizon);
	if (ret < 0)
		goto out;
	stage_progress(ctx, "steps", s->n_h + 2, s->n_h + 2);

	kmeans_save(s->km, &km_blob, &km_len);
	lookalike_save(s, &blob, &len);
	hasher_update(&ctx->content, km_blob, km_len);
	hasher_update(&ctx->content, blob, len);
	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = registry_blob_put(ctx->reg, out_id, KMEANS_BLOB, km_blob, km_len, &ctx->err);
	if (ret == 0)
		ret = registry_blob_put(ctx->reg, out_id, LOOKALIKE_BLOB, blob, len, &ctx->err);
out:
	free(km_blob);
	free(blob);
	free(pred);
	free(row_label);
	row_split_release(&valid);
	lookalike_state_free(s);
	model_data_release(&d);
	return ret;
}
