/*
 * The semantic model as stored and predicted with (contract in
 * include/ltv/semantic_model.h); pipeline/semantic.c trains it and describes it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/semantic_model.h"
#include "ltv/tfidf.h"

void semantic_state_free(struct semantic_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_h; i++) {
		struct semantic_horizon *h = &s->h[i];

		tfidf_free(h->tf);
		for (size_t j = 0; j < h->n_docs && h->doc_app; j++)
			free(h->doc_app[j]);
		free(h->doc_app);
		free(h->value);
		free(h->n_users);
		free(h->by_age);
	}
	free(s->h);
	free(s);
}

/* The format: include/ltv/semantic_model.h. */
void semantic_save(const struct semantic_state *s, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;
	uint32_t version = 1; /* without means by age: the same bytes as before they existed */

	for (size_t i = 0; i < s->n_h; i++)
		if (s->h[i].by_age)
			version = 2;
	blob_writer_init(&w);
	blob_put_header(&w, SEMANTIC_MAGIC, version);
	blob_put_u64(&w, s->top_k);
	blob_put_u64(&w, s->n_h);
	for (size_t i = 0; i < s->n_h; i++) {
		const struct semantic_horizon *h = &s->h[i];

		blob_put_u64(&w, (uint64_t)h->horizon);
		blob_put_f64(&w, h->global_mean);
		blob_put_u64(&w, h->n_train);
		blob_put_u64(&w, h->n_docs);
		for (size_t j = 0; j < h->n_docs; j++) {
			blob_put_str(&w, h->doc_app[j]);
			blob_put_f64(&w, h->value[j]);
			blob_put_u64(&w, h->n_users[j]);
		}
		if (version < 2)
			continue;
		blob_put_u32(&w, h->by_age != NULL);
		if (!h->by_age)
			continue;
		age_means_put(&w, &h->global_by_age);
		for (size_t j = 0; j < h->n_docs; j++)
			age_means_put(&w, &h->by_age[j]);
	}
	*out_buf = blob_writer_detach(&w, out_len);
}

void semantic_tfidf_key(int64_t horizon, char *buf, size_t size)
{
	snprintf(buf, size, "tfidf:%lld", (long long)horizon);
}

static int semantic_load(struct registry *reg, const struct artefact_info *artefact,
			 const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct semantic_state *s = xcalloc(1, sizeof(*s));
	struct blob_reader r;
	void *buf = NULL;
	size_t len = 0;
	uint32_t version;
	uint64_t n_h;
	int ret;

	(void)cfg;
	ret = registry_blob_get(reg, artefact->id, SEMANTIC_BLOB, &buf, &len, err);
	if (ret < 0)
		goto out;
	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, SEMANTIC_MAGIC, SEMANTIC_VERSION, &version, err);
	if (ret < 0)
		goto out;
	s->top_k = (size_t)blob_get_u64(&r);
	n_h = blob_get_u64(&r);
	if (r.failed || n_h > SEMANTIC_MAX_HORIZONS) {
		ret = err_set(err, LTV_EINVAL, "semantic blob: bad header");
		goto out;
	}
	s->h = xcalloc(n_h ? n_h : 1, sizeof(*s->h));
	s->n_h = n_h;
	for (size_t i = 0; i < n_h && ret == 0; i++) {
		struct semantic_horizon *h = &s->h[i];
		uint64_t n_docs;

		h->horizon = (int64_t)blob_get_u64(&r);
		h->global_mean = blob_get_f64(&r);
		h->n_train = blob_get_u64(&r);
		n_docs = blob_get_u64(&r);
		/* A document takes at least 20 bytes: a bound before allocating. */
		if (r.failed || n_docs > (r.len - r.pos) / 20) {
			r.failed = 1;
			break;
		}
		h->doc_app = xcalloc(n_docs ? n_docs : 1, sizeof(char *));
		h->value = xcalloc(n_docs ? n_docs : 1, sizeof(double));
		h->n_users = xcalloc(n_docs ? n_docs : 1, sizeof(uint64_t));
		h->n_docs = n_docs;
		for (size_t j = 0; j < n_docs; j++) {
			h->doc_app[j] = blob_get_str(&r);
			h->value[j] = blob_get_f64(&r);
			h->n_users[j] = blob_get_u64(&r);
			if (!h->doc_app[j] || !isfinite(h->value[j]))
				r.failed = 1;
		}
		if (!r.failed && version >= 2 && blob_get_u32(&r) == 1) {
			h->by_age = xcalloc(n_docs ? n_docs : 1, sizeof(*h->by_age));
			age_means_get(&r, &h->global_by_age);
			for (size_t j = 0; j < n_docs && !r.failed; j++)
				age_means_get(&r, &h->by_age[j]);
		}
		if (!r.failed && n_docs) {
			char key[48];
			void *tf_buf = NULL;
			size_t tf_len = 0;

			semantic_tfidf_key(h->horizon, key, sizeof(key));
			ret = registry_blob_get(reg, artefact->id, key, &tf_buf, &tf_len, err);
			if (ret == 0)
				ret = tfidf_load(tf_buf, tf_len, &h->tf, err);
			if (ret == 0 && tfidf_n_docs(h->tf) != n_docs)
				ret = err_set(err, LTV_EINVAL, "%s has %zu documents, expected %llu",
					      key, tfidf_n_docs(h->tf), (unsigned long long)n_docs);
			free(tf_buf);
		}
	}
	if (ret == 0)
		ret = blob_reader_status(&r, "semantic", err);
out:
	if (ret < 0) {
		err_prefix(err, "semantic v%lld", (long long)artefact->version);
		semantic_state_free(s);
		s = NULL;
	}
	free(buf);
	*out_state = s;
	return ret;
}

/* ---- prediction ---- */

/* Scratch for campaign_value: room for top_k + 1 indices and similarities. */
struct value_scratch {
	size_t *idx;
	double *sim;
	size_t cap;
};

/* Document doc's value (doc SIZE_MAX: the global mean) for a row at age (NaN: the pooled one). */
static double doc_value(const struct semantic_horizon *h, size_t doc, double age)
{
	if (doc == SIZE_MAX)
		return h->by_age ? age_means_at(&h->global_by_age, age, h->global_mean)
				 : h->global_mean;
	return h->by_age ? age_means_at(&h->by_age[doc], age, h->value[doc]) : h->value[doc];
}

/*
 * The value of campaign name of app at h for a row at age: the
 * cosine-weighted mean value of its top_k most similar documents
 * (tfidf_predict_value), or the global mean when it shares no term with any.
 * With leave_one_out the document of this very (app, name) is skipped, so
 * top_k + 1 are asked for.
 */
static double campaign_value(const struct semantic_horizon *h, size_t top_k, const char *app,
			     const char *name, int leave_one_out, double age,
			     struct value_scratch *sc)
{
	const size_t want = top_k + (leave_one_out ? 1 : 0);
	double sum = 0, sum_sim = 0;
	size_t m = 0, taken = 0;

	if (h->n_docs == 0)
		return doc_value(h, SIZE_MAX, age);
	if (sc->cap < want) {
		sc->cap = want;
		sc->idx = xrealloc(sc->idx, sc->cap * sizeof(size_t));
		sc->sim = xrealloc(sc->sim, sc->cap * sizeof(double));
	}
	tfidf_top_k(h->tf, name, want, sc->idx, sc->sim, &m);
	for (size_t j = 0; j < m && taken < top_k; j++) {
		const size_t doc = sc->idx[j];

		if (leave_one_out && strcmp(h->doc_app[doc], app) == 0 &&
		    strcmp(tfidf_doc_name(h->tf, doc), name) == 0)
			continue;
		sum += sc->sim[j] * doc_value(h, doc, age);
		sum_sim += sc->sim[j];
		taken++;
	}
	return taken ? sum / sum_sim : doc_value(h, SIZE_MAX, age);
}

/* One campaign, for age_means_monotone's callbacks. */
struct campaign_at {
	const struct semantic_state *s;
	const char *app, *name;
	int leave_one_out;
	struct value_scratch *sc;
};

/* Horizon j's length, -1 when it was not trained. */
static int64_t trained_horizon(const void *ctx, size_t j)
{
	const struct semantic_state *s = ((const struct campaign_at *)ctx)->s;

	return isnan(s->h[j].global_mean) ? -1 : s->h[j].horizon;
}

/* The campaign's value at horizon j for a row aged age (campaign_value). */
static double horizon_value(const void *ctx, size_t j, double age)
{
	const struct campaign_at *at = ctx;

	return campaign_value(&at->s->h[j], at->s->top_k, at->app, at->name, at->leave_one_out, age,
			      at->sc);
}

/* 0 for NaN (no age), else 1 + the index of the largest snapshot at or below age. */
static size_t age_slot(const struct int_list *snapshots, double age)
{
	size_t slot = 0;

	for (size_t j = 0; j < snapshots->n && (double)snapshots->v[j] <= age; j++)
		slot = j + 1;
	return slot;
}

int semantic_predict_rows(const struct semantic_state *s, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, int leave_one_out,
			  double *out_ltv, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	struct value_scratch sc = { 0 };
	size_t n_slots, n_dense;
	double *value = NULL;
	unsigned char *done = NULL;
	int trained = 0, by_age = 0;

	for (size_t i = 0; i < n; i++)
		out_ltv[i] = NAN;
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "semantic: the features frame has no rev_window");
	for (size_t i = 0; i < s->n_h; i++) {
		trained |= s->h[i].horizon == horizon && !isnan(s->h[i].global_mean);
		by_age |= s->h[i].by_age != NULL;
	}
	if (!trained || n == 0)
		return 0;
	/* Values are cached per (cohort, age slot): with means by age, slot 1 + the snapshot interval. */
	n_slots = by_age ? d->params.snapshots.n + 1 : 1;
	n_dense = d->n_apps * d->n_campaigns * n_slots;
	value = xmalloc((n_dense ? n_dense : 1) * sizeof(double));
	done = xcalloc(n_dense ? n_dense : 1, 1);
	for (size_t i = 0; i < n; i++) {
		const size_t cohort = model_data_cohort(d, rows[i]);
		const double age = by_age && frame_col_found(window) ? frame_col_at(window, rows[i]) : NAN;
		const size_t c = cohort * n_slots + (by_age ? age_slot(&d->params.snapshots, age) : 0);

		if (!done[c]) {
			const char *app = d->apps[cohort / d->n_campaigns];
			const char *name = d->campaigns[cohort % d->n_campaigns];

			const struct campaign_at at = { s, app, name, leave_one_out, &sc };
			const struct age_means_horizons hs = { s->n_h, trained_horizon, horizon_value,
							       &at };

			/* A row past the asked horizon keeps its value (a shorter one lived is not kept). */
			value[c] = age_means_monotone(&hs, horizon, age, AGE_MEANS_OWN_HORIZON_ALWAYS);
			done[c] = 1;
		}
		/* Negative only for a horizon inside the window: never below what was observed. */
		out_ltv[i] = rev_window[rows[i]] + fmax(value[c], 0.0);
	}
	free(value);
	free(done);
	free(sc.idx);
	free(sc.sim);
	return 0;
}

static int semantic_predict(const void *state, const struct model_data *d, const size_t *rows,
			    size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			    struct ltv_err *err)
{
	if (out_p_payer)
		for (size_t i = 0; i < n; i++)
			out_p_payer[i] = NAN;
	return semantic_predict_rows(state, d, rows, n, horizon, 0, out_ltv, err);
}

static void semantic_free_state(void *state)
{
	semantic_state_free(state);
}

const struct method method_semantic = {
	.name = "semantic",
	.load = semantic_load,
	.predict = semantic_predict,
	.free_state = semantic_free_state,
};
