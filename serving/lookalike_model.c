/*
 * The lookalike model as stored and predicted with (contract in
 * include/ltv/lookalike_model.h); pipeline/lookalike.c trains it and describes it.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/kmeans.h"
#include "ltv/lookalike_model.h"
#include "ltv/method.h"
#include "ltv/model_data.h"

void lookalike_state_free(struct lookalike_state *s)
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
		free(s->h[i].by_age);
	}
	free(s->h);
	free(s);
}

/* The format: include/ltv/lookalike_model.h. */
void lookalike_save(const struct lookalike_state *s, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;
	uint32_t version = 1; /* without means by age: the same bytes as before they existed */

	for (size_t i = 0; i < s->n_h; i++)
		if (s->h[i].by_age)
			version = 2;
	blob_writer_init(&w);
	blob_put_header(&w, LOOKALIKE_MAGIC, version);
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
		if (version < 2)
			continue;
		blob_put_u32(&w, s->h[i].by_age != NULL);
		for (size_t c = 0; s->h[i].by_age && c < s->km->k; c++)
			age_means_put(&w, &s->h[i].by_age[c]);
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
		if (version >= 2 && blob_get_u32(&r) == 1) {
			h->by_age = xcalloc(km->k, sizeof(*h->by_age));
			for (size_t c = 0; c < km->k && !r.failed; c++)
				age_means_get(&r, &h->by_age[c]);
		}
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

/*
 * log1p of the whole numbers below it, each log1p's own result: most of the
 * features clustered on are counts and days (at 1,000,000 users five of the
 * eight columns, about 10 million values a training run), and a lookup is
 * a fraction of a log1p.
 */
#define LOG1P_WHOLE 4096
static double log1p_whole[LOG1P_WHOLE];
static pthread_once_t log1p_whole_once = PTHREAD_ONCE_INIT;

static void log1p_whole_fill(void)
{
	for (int i = 0; i < LOG1P_WHOLE; i++)
		log1p_whole[i] = log1p((double)i);
}

/* log1p(x), from the table when x is a whole number in it: the same bits. */
static double log1p_of(double x)
{
	if (x > 0 && x < LOG1P_WHOLE && (double)(int)x == x)
		return log1p_whole[(int)x];
	return log1p(x);
}

/* sign(x) ln(1 + |x|); a zero keeps its sign, as log1p keeps it. */
static double signed_log(double x)
{
	return x < 0 ? -log1p_of(-x) : log1p_of(x);
}

/*
 * Row-major matrix of the model's features for rows, NaN replaced by the
 * median and every value by signed_log. LTV_ECONFIG names a missing column.
 */
int lookalike_build_matrix(const struct model_data *d, char *const *features, size_t n_f,
			   const double *median, const size_t *rows, size_t n, double **out_x,
			   struct ltv_err *err)
{
	struct frame_col *cols = xmalloc((n_f ? n_f : 1) * sizeof(*cols));
	double *x;

	pthread_once(&log1p_whole_once, log1p_whole_fill);

	for (size_t j = 0; j < n_f; j++) {
		cols[j] = frame_col(&d->frame, features[j]);
		if (!frame_col_found(cols[j])) {
			free(cols);
			return err_set(err, LTV_ECONFIG,
				       "lookalike.features: '%s' is not a column of the features "
				       "artefact; list columns the features stage writes", features[j]);
		}
	}
	/* Row by row: x is written once in order (column by column it was rewritten
	 * n_f times over, a quarter of the stage at 1,000,000 users). */
	x = xmalloc_huge((n ? n : 1) * (n_f ? n_f : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		double *xi = x + i * n_f;

		for (size_t j = 0; j < n_f; j++) {
			const double v = frame_col_at(cols[j], rows[i]);

			xi[j] = signed_log(isnan(v) ? median[j] : v);
		}
	}
	free(cols);
	*out_x = x;
	return 0;
}

/* One cluster, for age_means_monotone's callbacks. */
struct cluster_at {
	const struct lookalike_state *s;
	int c;
};

/* Horizon j's length, -1 when it was not trained. */
static int64_t trained_horizon(const void *ctx, size_t j)
{
	const struct lookalike_state *s = ((const struct cluster_at *)ctx)->s;

	return s->h[j].n_train ? s->h[j].horizon : -1;
}

/* Cluster c's mean future at horizon j for a row aged age (its mean by age, else its mean). */
static double cluster_future(const void *ctx, size_t j, double age)
{
	const struct cluster_at *at = ctx;
	const struct lookalike_horizon *hj = &at->s->h[j];

	return hj->by_age ? age_means_at(&hj->by_age[at->c], age, hj->future[at->c])
			  : hj->future[at->c];
}

/*
 * lookalike.mean_by_age: cluster c's revenue still to come at horizon h for a
 * row aged `age`, monotone across horizons by age_means_monotone's rule;
 * nothing is still to come at a horizon the age has lived (0).
 */
static double future_by_age(const struct lookalike_state *s, const struct lookalike_horizon *h,
			    int c, double age)
{
	const struct cluster_at at = { s, c };
	const struct age_means_horizons hs = { s->n_h, trained_horizon, cluster_future, &at };

	return fmax(age_means_monotone(&hs, h->horizon, age, 0), 0.0);
}

int lookalike_labels(const struct lookalike_state *s, const struct model_data *d,
		     const size_t *rows, size_t n, int n_threads, int *label, struct ltv_err *err)
{
	/* Slices of whole k-means blocks (kmeans_block_rows): the same products as one call. */
	const size_t bs = kmeans_block_rows(s->km);
	const size_t slice = bs * ((((size_t)1 << 18) + bs - 1) / bs);
	double *x = NULL;
	int ret = 0;

	for (size_t r0 = 0; r0 < n && ret == 0; r0 += slice) {
		const size_t m = n - r0 < slice ? n - r0 : slice;

		ret = lookalike_build_matrix(d, s->features, s->n_features, s->median, rows + r0, m,
					     &x, err);
		if (ret == 0)
			ret = kmeans_predict(s->km, x, m, n_threads, label + r0, NULL, err);
		free(x);
		x = NULL;
	}
	return ret;
}

int lookalike_predict_threads(const struct lookalike_state *s, const struct model_data *d,
			      const size_t *rows, size_t n, int64_t horizon, int n_threads,
			      double *out_ltv, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const struct lookalike_horizon *h = NULL;
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
	label = xmalloc(n * sizeof(int));
	ret = lookalike_labels(s, d, rows, n, n_threads, label, err);
	for (size_t i = 0; i < n && ret == 0; i++) {
		const double future = h->by_age && frame_col_found(window)
					      ? future_by_age(s, h, label[i], frame_col_at(window, rows[i]))
					      : h->future[label[i]];

		/* Negative only for a horizon inside the window: never below what was observed. */
		out_ltv[i] = rev_window[rows[i]] + fmax(future, 0.0);
	}
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
	return lookalike_predict_threads(state, d, rows, n, horizon, 1, out_ltv, err);
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
