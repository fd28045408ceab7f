/*
 * Stage semantic: a campaign with no history of its own is valued by the
 * names of campaigns that have one (include/ltv/tfidf.h). Per configured
 * horizon H, the documents are the (app, campaign) cohorts with training
 * users mature at H (model_data_split(H).train), named by the campaign name;
 * a document's value is its training users' mean future revenue
 * (ltv_H - rev_window).
 *
 * A campaign is worth the cosine-weighted mean value of its semantic.top_k
 * most similar documents, whatever their app (restricting to the same app
 * when possible did not validate better on the generated sample); with no
 * shared term at all (a new naming scheme, an empty name) it is worth the
 * mean over every training user at H. A user is predicted rev_window + that value: the revenue still to come
 * (DESIGN.md "Time, windows and labels"), never below what was observed, and
 * a payer is not handed a campaign mean that averages in non-payers'
 * windows. The value at H is the largest over the trained horizons up to H,
 * so predictions never decrease with the horizon; horizons not trained give
 * NaN.
 *
 * Validation is leave-one-out over campaigns: a validation cohort is valued
 * without its own document (else every known campaign would be "predicted"
 * from itself). Scoring uses every document: a known campaign is most like
 * itself, which is right there.
 *
 * With semantic.mean_by_age, each document also keeps its mean future per
 * snapshot age and a row takes the value at its own age (include/ltv/
 * age_means.h): a campaign's rows are of every age, whose futures fall
 * steeply with it.
 *
 * Artefact: blob "semantic" (format in include/ltv/semantic_model.h) and one blob
 * "tfidf:<H>" (tfidf_save) per horizon with documents.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/semantic_model.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"
#include "ltv/stage_metrics.h"
#include "ltv/tfidf.h"

/*
 * h->by_age and h->global_by_age: each document's and the global mean future
 * per snapshot age over split's training rows, each standing for repeats[j]
 * rows (include/ltv/age_means.h). cnt[c] is cohort c's training rows
 * (documents are the cohorts with rows, in cohort order).
 */
static void fit_means_by_age(const struct model_data *d, const struct row_split *split,
			     const size_t *repeats, const size_t *cnt, struct semantic_horizon *h)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const double *y = model_data_label(d, h->horizon);
	const size_t n_dense = d->n_apps * d->n_campaigns, n = split->n_train;
	int *doc_of = xmalloc((n_dense ? n_dense : 1) * sizeof(int));
	int *doc = xmalloc((n ? n : 1) * sizeof(int));
	double *age = xmalloc((n ? n : 1) * sizeof(double));
	double *future = xmalloc((n ? n : 1) * sizeof(double));
	int next = 0;

	for (size_t c = 0; c < n_dense; c++)
		doc_of[c] = cnt[c] ? next++ : -1;
	for (size_t j = 0; j < n; j++) {
		const size_t r = split->train[j];

		doc[j] = doc_of[model_data_cohort(d, r)];
		age[j] = frame_col_found(window) ? frame_col_at(window, r) : NAN;
		future[j] = y[r] - rev_window[r];
	}
	h->by_age = xcalloc(h->n_docs, sizeof(*h->by_age));
	age_means_fit_repeated(&d->params.snapshots, age, future, repeats, doc, h->n_docs, n,
			       h->value, h->by_age);
	age_means_fit_repeated(&d->params.snapshots, age, future, repeats, NULL, 1, n,
			       &h->global_mean, &h->global_by_age);
	free(doc_of);
	free(doc);
	free(age);
	free(future);
}

/*
 * Documents and values of horizon h->horizon from its training rows: the
 * distinct rows (model_data_split_weighted), each one's future added as
 * many times in a row as model_data_split repeats it, so the sums are those
 * over the repeated rows to the bit without the repeated row list (3,155,958
 * rows at 30 days at 1,000,000 users) and its per-row arrays.
 */
static int fit_horizon(struct stage_ctx *ctx, const struct model_data *d,
		       struct semantic_horizon *h)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const double *y = model_data_label(d, h->horizon);
	const size_t n_dense = d->n_apps * d->n_campaigns;
	double *sum = xcalloc(n_dense ? n_dense : 1, sizeof(double));
	size_t *cnt = xcalloc(n_dense ? n_dense : 1, sizeof(size_t));
	size_t *repeats = NULL;
	const char **names = NULL;
	struct tfidf_param param;
	struct row_split split;
	double total = 0;
	const char *why;
	int ret = 0;

	model_data_split_weighted(d, h->horizon, 0, &split);
	repeats = xmalloc((split.n_train ? split.n_train : 1) * sizeof(size_t));
	h->n_train = 0;
	for (size_t j = 0; j < split.n_train; j++) {
		const size_t r = split.train[j];
		const double future = y[r] - rev_window[r];
		const size_t c = model_data_cohort(d, r);

		repeats[j] = model_data_repeats(d, r);
		for (size_t k = repeats[j]; k > 0; k--) {
			sum[c] += future;
			total += future;
		}
		cnt[c] += repeats[j];
		h->n_train += repeats[j];
	}
	h->global_mean = h->n_train ? total / (double)h->n_train : NAN;
	for (size_t c = 0; c < n_dense; c++)
		h->n_docs += cnt[c] > 0;
	if (h->n_docs == 0)
		goto out;
	h->doc_app = xcalloc(h->n_docs, sizeof(char *));
	h->value = xcalloc(h->n_docs, sizeof(double));
	h->n_users = xcalloc(h->n_docs, sizeof(uint64_t));
	names = xcalloc(h->n_docs, sizeof(char *));
	/* Documents in (app, campaign) dictionary order, so the artefact is deterministic. */
	for (size_t c = 0, j = 0; c < n_dense; c++) {
		if (!cnt[c])
			continue;
		h->doc_app[j] = xstrdup(d->apps[c / d->n_campaigns]);
		names[j] = d->campaigns[c % d->n_campaigns];
		h->value[j] = sum[c] / (double)cnt[c];
		h->n_users[j] = cnt[c];
		j++;
	}
	tfidf_param_init(&param);
	param.char_ngram = (int)ctx->cfg->semantic.char_ngrams;
	if ((why = tfidf_param_check(&param))) {
		ret = err_set(&ctx->err, LTV_ECONFIG, "semantic.char_ngrams: %s", why);
		goto out;
	}
	ret = tfidf_fit(&param, names, h->n_docs, &h->tf, &ctx->err);
	if (ret == 0 && ctx->cfg->semantic.mean_by_age)
		fit_means_by_age(d, &split, repeats, cnt, h);
out:
	free(sum);
	free(cnt);
	free(names);
	free(repeats);
	row_split_release(&split);
	return ret;
}

static void add_training_metrics(struct stage_ctx *ctx, const struct semantic_state *s)
{
	char name[64];

	for (size_t i = 0; i < s->n_h; i++) {
		const struct semantic_horizon *h = &s->h[i];
		const long long hz = (long long)h->horizon;

		snprintf(name, sizeof(name), "campaigns_with_history_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, (double)h->n_docs);
		snprintf(name, sizeof(name), "vocabulary_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, h->tf ? (double)tfidf_n_terms(h->tf) : 0);
		snprintf(name, sizeof(name), "global_future_mean_%lld", hz);
		cJSON_AddNumberToObject(ctx->metrics, name, h->global_mean);
	}
}

int stage_semantic_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct semantic_state *s = xcalloc(1, sizeof(*s));
	struct model_data d;
	struct row_split valid = { 0 };
	uint8_t *blob = NULL;
	size_t len = 0;
	double *pred = NULL;
	int64_t out_id;
	int ret = model_data_load(ctx, 0, &d);

	if (ret < 0) {
		free(s);
		return ret;
	}
	s->top_k = (size_t)cfg->semantic.top_k;
	s->n_h = d.params.horizons.n;
	s->h = xcalloc(s->n_h ? s->n_h : 1, sizeof(*s->h));
	for (size_t i = 0; i < s->n_h && ret == 0; i++) {
		s->h[i].horizon = d.params.horizons.v[i];
		ret = fit_horizon(ctx, &d, &s->h[i]);
		/* steps: each horizon, then the leave-one-out validation */
		stage_progress(ctx, "steps", i + 1, s->n_h + 1);
	}
	if (ret < 0)
		goto out;
	add_training_metrics(ctx, s);

	model_data_split_valid(&d, d.params.target_horizon, 0, &valid);
	pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
	ret = semantic_predict_rows(s, &d, valid.valid, valid.n_valid, d.params.target_horizon, 1,
			   pred, &ctx->err);
	if (ret == 0) {
		cJSON_AddBoolToObject(ctx->metrics, "val_leave_one_out", 1);
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
					     d.params.target_horizon);
	}
	if (ret < 0)
		goto out;
	stage_progress(ctx, "steps", s->n_h + 1, s->n_h + 1);

	semantic_save(s, &blob, &len);
	hasher_update(&ctx->content, blob, len);
	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = registry_blob_put(ctx->reg, out_id, SEMANTIC_BLOB, blob, len, &ctx->err);
	for (size_t i = 0; i < s->n_h && ret == 0; i++) {
		uint8_t *tf_blob;
		size_t tf_len;
		char key[48];

		if (!s->h[i].tf)
			continue;
		semantic_tfidf_key(s->h[i].horizon, key, sizeof(key));
		tfidf_save(s->h[i].tf, &tf_blob, &tf_len);
		hasher_add_str(&ctx->content, key);
		hasher_update(&ctx->content, tf_blob, tf_len);
		ret = registry_blob_put(ctx->reg, out_id, key, tf_blob, tf_len, &ctx->err);
		free(tf_blob);
	}
out:
	free(blob);
	free(pred);
	row_split_release(&valid);
	semantic_state_free(s);
	model_data_release(&d);
	return ret;
}
