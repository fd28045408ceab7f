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
 * Artefact: blob "kmeans" (kmeans_save: scaler and centroids) and blob
 * "lookalike" (format at lookalike_save below).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/kmeans.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"
#include "ltv/stage_metrics.h"

#define LOOKALIKE_MAGIC "LTVLOOKA"
#define LOOKALIKE_VERSION 1
#define LOOKALIKE_BLOB "lookalike"
#define KMEANS_BLOB "kmeans"
#define LOOKALIKE_MAX_HORIZONS 64

struct lookalike_horizon {
	int64_t horizon;
	uint64_t n_train;   /* training rows behind the means; 0: horizon not trained */
	double *future;     /* k mean future revenues, non-decreasing over horizons */
	uint64_t *counts;   /* k training rows per cluster */
};

/* A trained (or loaded) model: what method_lookalike's state points to. */
struct lookalike_state {
	struct kmeans_model *km;
	size_t n_features;
	char **features;    /* frame column names, in the model's column order */
	double *median;     /* per feature: the value a NaN becomes */
	struct lookalike_horizon *h;
	size_t n_h;
};

static void lookalike_state_free(struct lookalike_state *s)
{
	if (!s)
		return;
	kmeans_free(s->km);
	for (size_t j = 0; j < s->n_features; j++)
		free(s->features[j]);
	free(s->features);
	free(s->median);
	for (size_t i = 0; i < s->n_h; i++) {
		free(s->h[i].future);
		free(s->h[i].counts);
	}
	free(s->h);
	free(s);
}

/*
 * Blob "LTVLOOKA" version 1: u64 n_features, per feature str name, f64 array
 * medians (n_features), u64 n_horizons, per horizon: u64 horizon, u64
 * n_train, f64 array mean future revenue (k), u64 array counts as u64 k then k
 * values. The cluster model itself is blob "kmeans".
 */
static void lookalike_save(const struct lookalike_state *s, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, LOOKALIKE_MAGIC, LOOKALIKE_VERSION);
	blob_put_u64(&w, s->n_features);
	for (size_t j = 0; j < s->n_features; j++)
		blob_put_str(&w, s->features[j]);
	blob_put_f64_array(&w, s->median, s->n_features);
	blob_put_u64(&w, s->n_h);
	for (size_t i = 0; i < s->n_h; i++) {
		blob_put_u64(&w, (uint64_t)s->h[i].horizon);
		blob_put_u64(&w, s->h[i].n_train);
		blob_put_f64_array(&w, s->h[i].future, s->km->k);
		blob_put_u64(&w, s->km->k);
		for (size_t c = 0; c < s->km->k; c++)
			blob_put_u64(&w, s->h[i].counts[c]);
	}
	*out_buf = blob_writer_detach(&w, out_len);
}

/* Reads the two blobs into a new state (which takes ownership of km on success and failure). */
static int lookalike_parse(const void *buf, size_t len, struct kmeans_model *km,
			   struct lookalike_state **out_state, struct ltv_err *err)
{
	struct lookalike_state *s = xcalloc(1, sizeof(*s));
	struct blob_reader r;
	uint32_t version;
	uint64_t n_f, n_h;
	size_t n_med = 0;
	int ret;

	s->km = km;
	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, LOOKALIKE_MAGIC, LOOKALIKE_VERSION, &version, err);
	if (ret < 0)
		goto out;
	n_f = blob_get_u64(&r);
	if (r.failed || n_f != km->d) {
		ret = err_set(err, LTV_EINVAL, "lookalike blob: %llu features, k-means model %zu",
			      (unsigned long long)n_f, km->d);
		goto out;
	}
	s->features = xcalloc(n_f ? n_f : 1, sizeof(char *));
	s->n_features = n_f;
	for (size_t j = 0; j < n_f; j++)
		if (!(s->features[j] = blob_get_str(&r)))
			r.failed = 1;
	if (!r.failed && (blob_get_f64_array(&r, &s->median, &n_med) < 0 || n_med != n_f))
		r.failed = 1;
	n_h = blob_get_u64(&r);
	if (r.failed || n_h > LOOKALIKE_MAX_HORIZONS) {
		ret = err_set(err, LTV_EINVAL, "lookalike blob: bad header");
		goto out;
	}
	s->h = xcalloc(n_h ? n_h : 1, sizeof(*s->h));
	s->n_h = n_h;
	for (size_t i = 0; i < n_h && !r.failed; i++) {
		struct lookalike_horizon *h = &s->h[i];
		size_t n_means = 0;

		h->horizon = (int64_t)blob_get_u64(&r);
		h->n_train = blob_get_u64(&r);
		if (blob_get_f64_array(&r, &h->future, &n_means) < 0 || n_means != km->k ||
		    blob_get_u64(&r) != km->k) {
			r.failed = 1;
			break;
		}
		h->counts = xcalloc(km->k, sizeof(uint64_t));
		for (size_t c = 0; c < km->k; c++)
			h->counts[c] = blob_get_u64(&r);
	}
	ret = blob_reader_status(&r, "lookalike", err);
out:
	if (ret < 0) {
		lookalike_state_free(s);
		s = NULL;
	}
	*out_state = s;
	return ret;
}

/* ---- prediction ---- */

static double signed_log(double x)
{
	return x < 0 ? -log1p(-x) : log1p(x);
}

/*
 * Row-major matrix of the model's features for rows, NaN replaced by the
 * median and every value by signed_log. LTV_ECONFIG names a missing column.
 */
static int build_matrix(const struct model_data *d, char *const *features, size_t n_f,
			const double *median, const size_t *rows, size_t n, double **out_x,
			struct ltv_err *err)
{
	double *x = xmalloc((n ? n : 1) * (n_f ? n_f : 1) * sizeof(double));

	for (size_t j = 0; j < n_f; j++) {
		const double *col = frame_column(&d->frame, features[j]);

		if (!col) {
			free(x);
			return err_set(err, LTV_ECONFIG,
				       "lookalike.features: '%s' is not a column of the features "
				       "artefact; list columns the features stage writes", features[j]);
		}
		for (size_t i = 0; i < n; i++) {
			double v = col[rows[i]];

			x[i * n_f + j] = signed_log(isnan(v) ? median[j] : v);
		}
	}
	*out_x = x;
	return 0;
}

static int predict_threads(const struct lookalike_state *s, const struct model_data *d,
			   const size_t *rows, size_t n, int64_t horizon, int n_threads,
			   double *out_ltv, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct lookalike_horizon *h = NULL;
	double *x = NULL;
	int *label = NULL;
	int ret;

	for (size_t i = 0; i < n; i++)
		out_ltv[i] = NAN;
	for (size_t i = 0; i < s->n_h; i++)
		if (s->h[i].horizon == horizon)
			h = &s->h[i];
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "lookalike: the features frame has no rev_window");
	if (!h || h->n_train == 0 || n == 0)
		return 0;
	ret = build_matrix(d, s->features, s->n_features, s->median, rows, n, &x, err);
	if (ret < 0)
		return ret;
	label = xmalloc(n * sizeof(int));
	ret = kmeans_predict(s->km, x, n, n_threads, label, NULL, err);
	for (size_t i = 0; i < n && ret == 0; i++)
		/* Negative only for a horizon inside the window: never below what was observed. */
		out_ltv[i] = rev_window[rows[i]] + fmax(h->future[label[i]], 0.0);
	free(x);
	free(label);
	return ret;
}

static int lookalike_predict(const void *state, const struct model_data *d, const size_t *rows,
			     size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			     struct ltv_err *err)
{
	if (out_p_payer)
		for (size_t i = 0; i < n; i++)
			out_p_payer[i] = NAN;
	return predict_threads(state, d, rows, n, horizon, 1, out_ltv, err);
}

static int lookalike_load(struct registry *reg, const struct artefact_info *artefact,
			  const struct config *cfg, void **out_state, struct ltv_err *err)
{
	void *buf = NULL, *km_buf = NULL;
	size_t len = 0, km_len = 0;
	struct kmeans_model *km = NULL;
	struct lookalike_state *s = NULL;
	int ret;

	(void)cfg;
	ret = registry_blob_get(reg, artefact->id, KMEANS_BLOB, &km_buf, &km_len, err);
	if (ret == 0)
		ret = registry_blob_get(reg, artefact->id, LOOKALIKE_BLOB, &buf, &len, err);
	if (ret == 0)
		ret = kmeans_load(km_buf, km_len, &km, err);
	if (ret == 0)
		ret = lookalike_parse(buf, len, km, &s, err);
	if (ret < 0)
		err_prefix(err, "lookalike v%lld", (long long)artefact->version);
	free(buf);
	free(km_buf);
	*out_state = s;
	return ret;
}

static void lookalike_free_state(void *state)
{
	lookalike_state_free(state);
}

const struct method method_lookalike = {
	.name = "lookalike",
	.load = lookalike_load,
	.predict = lookalike_predict,
	.free_state = lookalike_free_state,
};

/* ---- training ---- */

/* Median of the non-NaN values of col over rows; 0 when there is none. */
static double column_median(const double *col, const size_t *rows, size_t n)
{
	double *v = xmalloc((n ? n : 1) * sizeof(double));
	size_t m = 0;
	double median = 0;

	for (size_t i = 0; i < n; i++)
		if (!isnan(col[rows[i]]))
			v[m++] = col[rows[i]];
	if (m) {
		qsort(v, m, sizeof(double), double_cmp);
		median = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
	}
	free(v);
	return median;
}

/* Cluster means of future revenue at horizon hi, from the training rows mature there. */
static int fit_horizon_means(struct stage_ctx *ctx, const struct model_data *d,
			     struct lookalike_state *s, size_t hi)
{
	struct lookalike_horizon *h = &s->h[hi];
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const double *y = model_data_label(d, h->horizon);
	struct row_split split;
	double *x = NULL, *future = NULL;
	int *label = NULL;
	size_t *counts = xcalloc(s->km->k, sizeof(size_t));
	int ret;

	model_data_split(d, h->horizon, 0, &split);
	h->n_train = split.n_train;
	h->future = xcalloc(s->km->k, sizeof(double));
	h->counts = xcalloc(s->km->k, sizeof(uint64_t));
	ret = build_matrix(d, s->features, s->n_features, s->median, split.train, split.n_train,
			   &x, &ctx->err);
	if (ret < 0 || split.n_train == 0)
		goto out;
	label = xmalloc(split.n_train * sizeof(int));
	future = xmalloc(split.n_train * sizeof(double));
	for (size_t i = 0; i < split.n_train; i++)
		future[i] = y[split.train[i]] - rev_window[split.train[i]];
	ret = kmeans_predict(s->km, x, split.n_train, stage_threads(ctx), label, NULL, &ctx->err);
	if (ret == 0)
		ret = kmeans_cluster_means(s->km, label, split.n_train, future, h->future, counts,
					   &ctx->err);
	for (size_t c = 0; c < s->km->k; c++)
		h->counts[c] = counts[c];
out:
	free(counts);
	free(x);
	free(label);
	free(future);
	row_split_release(&split);
	return ret;
}

/* Makes each cluster's mean non-decreasing over the trained horizons, in horizon order. */
static void make_monotone(struct lookalike_state *s)
{
	for (size_t i = 0; i < s->n_h; i++) {
		if (!s->h[i].n_train)
			continue;
		for (size_t j = 0; j < s->n_h; j++) {
			if (!s->h[j].n_train || s->h[j].horizon >= s->h[i].horizon)
				continue;
			for (size_t c = 0; c < s->km->k; c++)
				s->h[i].future[c] = fmax(s->h[i].future[c], s->h[j].future[c]);
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

/* Fits the model of s from the training rows at the target horizon. */
static int fit_clusters(struct stage_ctx *ctx, const struct model_data *d,
			struct lookalike_state *s)
{
	const struct config *cfg = ctx->cfg;
	struct row_split split;
	struct kmeans_param param;
	const char *why;
	double *x = NULL;
	int ret = 0;

	/* Centroids from each row once: repeating non-payers' rows would only cost time. */
	model_data_split_weighted(d, cfg->features.target_horizon, 0, &split);
	if (split.n_train == 0) {
		ret = err_set(&ctx->err, LTV_EMODEL, "no training user is mature at the target "
			      "horizon %lld days; ingest older cohorts or lower "
			      "features.target_horizon", (long long)cfg->features.target_horizon);
		goto out;
	}
	for (size_t j = 0; j < s->n_features; j++) {
		const double *col = frame_column(&d->frame, s->features[j]);

		s->median[j] = col ? column_median(col, split.train, split.n_train) : 0;
	}
	ret = build_matrix(d, s->features, s->n_features, s->median, split.train, split.n_train,
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
	ret = kmeans_fit(&param, x, split.n_train, s->n_features, &s->km, NULL, &ctx->err);
	if (ret == 0 && s->km->n_iter >= param.max_iter)
		LOG(LOG_WARN, "k-means stopped after lookalike.max_iter=%zu updates without "
		    "converging", param.max_iter);
out:
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
	ret = fit_clusters(ctx, &d, s);
	if (ret < 0)
		goto out;
	s->n_h = cfg->features.horizons.n;
	s->h = xcalloc(s->n_h ? s->n_h : 1, sizeof(*s->h));
	for (size_t i = 0; i < s->n_h && ret == 0; i++) {
		s->h[i].horizon = cfg->features.horizons.v[i];
		ret = fit_horizon_means(ctx, &d, s, i);
	}
	if (ret < 0)
		goto out;
	make_monotone(s);
	add_training_metrics(ctx, s);

	model_data_split(&d, cfg->features.target_horizon, 0, &valid);
	pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
	ret = predict_threads(s, &d, valid.valid, valid.n_valid, cfg->features.target_horizon,
			      stage_threads(ctx), pred, &ctx->err);
	if (ret == 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
					     cfg->features.target_horizon);
	if (ret < 0)
		goto out;

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
	row_split_release(&valid);
	lookalike_state_free(s);
	model_data_release(&d);
	return ret;
}
