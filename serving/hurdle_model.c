/*
 * The hurdle model as stored and predicted with: the state the hurdle stage
 * trains (pipeline/hurdle.c), its artefact format (a manifest, see
 * hurdle_state_save, beside bodies "t<tier>:h<H>:payer" and
 * "t<tier>:h<H>:revenue") and method_hurdle, which loads that artefact back
 * and predicts ltv_H = rev_window + p × E with each row's tier model, or the
 * pooled one where its tier has none. Training and scoring share this file so
 * the stage's own validation metrics come from the same predictor that
 * select, calibrate and score use.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/hurdle_model.h"

const char *hurdle_revenue_kind_name(enum hurdle_revenue_kind kind)
{
	static const char *const names[HURDLE_REVENUE_KIND_COUNT] = { "none", "log1p_smear",
								      "gamma" };

	assert((unsigned)kind < HURDLE_REVENUE_KIND_COUNT);
	return names[kind];
}

double hurdle_model_revenue(const struct hurdle_model *m, double pred, double window_days)
{
	const double smear = age_means_at(&m->smear_by_age, window_days, m->smear);

	switch (m->kind) {
	case HURDLE_REVENUE_LOG_SMEAR:
		/* Duan: E[1 + y] = exp(pred) * mean(exp(residual)) on the log1p scale. */
		return fmax(0.0, exp(fmin(pred + m->shift, GBT_ARTEFACT_MAX_LOG_PRED)) * smear -
				 1.0);
	case HURDLE_REVENUE_GAMMA:
		return fmax(0.0, pred * exp(m->shift) * smear);
	default:
		return 0.0;
	}
}

size_t hurdle_window_column(const struct str_list *features)
{
	size_t j = 0;

	while (j < features->n && strcmp(features->v[j], "window_days") != 0)
		j++;
	return j;
}

struct hurdle_state *hurdle_state_new(const struct str_list *features)
{
	struct hurdle_state *s = xcalloc(1, sizeof(*s));

	gbt_artefact_copy_features(features, &s->features);
	return s;
}

void hurdle_state_free(void *state)
{
	struct hurdle_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_models; i++) {
		gbt_free(s->models[i].payer);
		gbt_free(s->models[i].revenue);
	}
	free(s->models);
	gbt_artefact_release_features(&s->features);
	free(s);
}

void hurdle_state_add(struct hurdle_state *s, const struct hurdle_model *m)
{
	ARRAY_GROW(s->models, s->n_models + 1, s->cap_models);
	s->models[s->n_models++] = *m;
}

const struct hurdle_model *hurdle_state_find(const struct hurdle_state *s, int tier,
					     int64_t horizon)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (s->models[i].tier == tier && s->models[i].horizon == horizon)
			return &s->models[i];
	return NULL;
}

/*
 * Whether E[future | payer] lies in [0, DBL_MAX / 4] whatever the row:
 * log1p with smearing clamps the trees' value (fmin, NaN included) below
 * exp(GBT_ARTEFACT_MAX_LOG_PRED); gamma's trees give expf(margin), bounded by
 * their leaves (gbt_margin_bound); times the largest smearing factor (a NaN
 * or negative one gives 0). No revenue model gives 0.
 */
static int revenue_bounded(const struct hurdle_model *m)
{
	const char *objective = m->revenue ? gbt_objective(m->revenue) : NULL;
	double most = isnan(m->smear) ? 0 : m->smear, pred;

	if (m->kind == HURDLE_REVENUE_NONE || !m->revenue)
		return 1;
	for (size_t k = 0; k < m->smear_by_age.n; k++)
		if (!isnan(m->smear_by_age.value[k]))
			most = fmax(most, m->smear_by_age.value[k]);
	if (m->kind == HURDLE_REVENUE_LOG_SMEAR)
		pred = exp(GBT_ARTEFACT_MAX_LOG_PRED);
	else if (m->kind == HURDLE_REVENUE_GAMMA && objective && strcmp(objective, "reg:gamma") == 0)
		pred = exp(gbt_margin_bound(m->revenue)) * 2 * exp(m->shift); /* 2: expf's rounding */
	else
		return 0;
	return pred * fmax(most, 0) <= DBL_MAX / 4;
}

/*
 * Whether a row past the horizon needs its revenue trees (method.predict_past):
 * rev_window + p × E is NaN exactly where rev_window + p × 0 is when E is
 * bounded (revenue_bounded) and p is a probability or NaN, and is no
 * overflow from a rev_window up to DBL_MAX / 4.
 */
static int past_needs_revenue(int bounded, double p, double rev_window)
{
	return !bounded || !(isnan(p) || (p >= 0 && p <= 1)) || fabs(rev_window) > DBL_MAX / 4;
}

/*
 * p and E[future | payer] for n rows of x (n × k; window_days in column wcol,
 * k: none) under m. past: rows past the horizon (method.predict_past), whose
 * E is 0 unless past_needs_revenue.
 */
static int model_predict(const struct hurdle_model *m, const float *x, size_t n, size_t k,
			 size_t wcol, int past, const double *rev_window, double *out_p,
			 double *out_e, struct ltv_err *err)
{
	int ret = 0, revenue = m->revenue != NULL;

	if (m->payer)
		ret = gbt_predict(m->payer, x, n, k, out_p, err);
	else
		for (size_t i = 0; i < n; i++)
			out_p[i] = m->p_const;
	if (ret == 0 && past && revenue) {
		const int bounded = revenue_bounded(m);

		revenue = 0;
		for (size_t i = 0; i < n && !revenue; i++)
			revenue = past_needs_revenue(bounded, out_p[i], rev_window[i]);
	}
	if (ret == 0 && revenue)
		ret = gbt_predict(m->revenue, x, n, k, out_e, err);
	for (size_t i = 0; i < n && ret == 0; i++)
		out_e[i] = revenue ? hurdle_model_revenue(m, out_e[i], wcol < k ? x[i * k + wcol] : NAN)
				   : 0.0;
	return ret;
}

/*
 * Rows of a tier's matrix built and predicted at a time: 1.3 MB of floats
 * at 21 features, reused, where a matrix of all of a tier's rows was 29 MB
 * of fresh pages at 1,000,000 users (two at once, the target horizon's and
 * another's), and the kernel's zeroing of fresh pages was a fifth of
 * scoring's CPU. Enough rows for the trees' walk to split between threads
 * (gbt_forest.c's PARALLEL_MIN_ROWS).
 */
#define MATRIX_BLOCK_ROWS 16384

/* One call's reused buffers, MATRIX_BLOCK_ROWS rows each. */
struct block_bufs {
	float *x;
	size_t *in, *sub_rows; /* positions in the call's rows, and those rows */
	double *p, *e, *rev;
};

/* Rows rows[in[j]], j < c, of one tier (model m) into out_ltv and out_p_payer. */
static int predict_block(const struct hurdle_state *s, const struct hurdle_model *m,
			 const struct model_data *d, const size_t *rows, size_t c, int past,
			 const double *rev_window, struct block_bufs *b, double *out_ltv,
			 double *out_p_payer, struct ltv_err *err)
{
	const size_t k = s->features.n;
	int ret;

	for (size_t j = 0; j < c; j++) {
		b->sub_rows[j] = rows[b->in[j]];
		b->rev[j] = rev_window[b->sub_rows[j]];
	}
	ret = model_data_matrix_into(d, &s->features, b->sub_rows, c, b->x, err);
	if (ret == 0)
		ret = model_predict(m, b->x, c, k, hurdle_window_column(&s->features), past, b->rev,
				    b->p, b->e, err);
	for (size_t j = 0; j < c && ret == 0; j++) {
		out_ltv[b->in[j]] = b->rev[j] + b->p[j] * b->e[j];
		if (out_p_payer)
			out_p_payer[b->in[j]] = b->p[j];
	}
	return ret;
}

/* hurdle_predict, or its predict_past with past (NULL: no row past the horizon). */
static int predict_rows_of(const struct hurdle_state *s, const struct model_data *d,
			   const size_t *rows, size_t n, int64_t horizon, const unsigned char *past,
			   double *out_ltv, double *out_p_payer, struct ltv_err *err)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const size_t k = s->features.n, block = n < MATRIX_BLOCK_ROWS ? n : MATRIX_BLOCK_ROWS;
	const void *use[GBT_ARTEFACT_N_TIERS]; /* struct hurdle_model */
	struct block_bufs b;
	size_t *idx;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		out_ltv[i] = NAN;
		if (out_p_payer)
			out_p_payer[i] = NAN;
	}
	use[0] = hurdle_state_find(s, 0, horizon);
	if (!use[0] || n == 0)
		return 0;
	if (!rev_window)
		return err_set(err, LTV_EINVAL, "hurdle: the features frame has no column 'rev_window'");
	for (int t = 1; t < GBT_ARTEFACT_N_TIERS; t++) {
		use[t] = hurdle_state_find(s, t, horizon);
		if (!use[t])
			use[t] = use[0];
	}
	idx = xmalloc(n * sizeof(*idx));
	b.in = xmalloc(block * sizeof(*b.in));
	b.sub_rows = xmalloc(block * sizeof(*b.sub_rows));
	b.p = xmalloc(block * sizeof(*b.p));
	b.e = xmalloc(block * sizeof(*b.e));
	b.rev = xmalloc(block * sizeof(*b.rev));
	b.x = xmalloc(block * (k ? k : 1) * sizeof(float));
	for (int t = 0; t < GBT_ARTEFACT_N_TIERS && ret == 0; t++) {
		const size_t n_sub = gbt_artefact_tier_rows(d, rows, n, use, t, idx);

		/*
		 * Each tier's rows a block at a time (a row's prediction is its
		 * own), the rows past the horizon in blocks of their own: those
		 * need no revenue tree.
		 */
		for (int aged = 0; aged < (past ? 2 : 1) && ret == 0; aged++)
			for (size_t r = 0; r < n_sub && ret == 0;) {
				size_t c = 0;

				for (; r < n_sub && c < block; r++)
					if (!past || (past[idx[r]] != 0) == aged)
						b.in[c++] = idx[r];
				if (c > 0)
					ret = predict_block(s, use[t], d, rows, c, aged, rev_window, &b,
							    out_ltv, out_p_payer, err);
			}
	}
	free(b.x);
	free(b.in);
	free(b.sub_rows);
	free(b.p);
	free(b.e);
	free(b.rev);
	free(idx);
	return ret;
}

int hurdle_predict(const void *state, const struct model_data *d, const size_t *rows, size_t n,
		   int64_t horizon, double *out_ltv, double *out_p_payer, struct ltv_err *err)
{
	return predict_rows_of(state, d, rows, n, horizon, NULL, out_ltv, out_p_payer, err);
}

/* method.predict_past: the rows past the horizon through the payer trees only, where it can. */
static int hurdle_predict_past(const void *state, const struct model_data *d, const size_t *rows,
			       size_t n, int64_t horizon, const unsigned char *past,
			       double *out_ltv, double *out_p_payer, struct ltv_err *err)
{
	return predict_rows_of(state, d, rows, n, horizon, past, out_ltv, out_p_payer, err);
}

/*
 * Manifest blob (the opening every manifest shares, see gbt_artefact.h, with
 * magic "LTVHRDL1", version 2, then per model after its opening):
 *   f64 p_const (NaN exactly when has_body: the payer classifier's body),
 *   u32 revenue kind (0 none, 1 log1p with smearing, 2 gamma), f64 label
 *   shift (see revenue_labels in pipeline/hurdle.c), f64 smearing factor,
 *   then the factors by snapshot age (age_means_put). Version 1 (written
 *   when no model has factors by age, and read still) ends at the factor.
 * A model's bodies are the gbt_save buffers "t<tier>:h<H>:payer" (when
 * has_body) and "t<tier>:h<H>:revenue" (when the kind is not none).
 */
static const struct gbt_artefact_manifest manifest_format = {
	.magic = "LTVHRDL1",
	.version = 2,
	.entry_bytes = 16 + 8 + 4 + 8 + 8,
	.what = "hurdle manifest",
};

static struct gbt_artefact_entry model_opening(const void *state, size_t i, int *has_factors)
{
	const struct hurdle_model *m = &((const struct hurdle_state *)state)->models[i];

	*has_factors = m->smear_by_age.n > 0;
	return (struct gbt_artefact_entry){ (uint32_t)m->tier, m->horizon, m->payer != NULL };
}

static void model_put(struct blob_writer *w, const void *state, size_t i, uint32_t version)
{
	const struct hurdle_model *m = &((const struct hurdle_state *)state)->models[i];

	blob_put_f64(w, m->p_const);
	blob_put_u32(w, (uint32_t)m->kind);
	blob_put_f64(w, m->shift);
	blob_put_f64(w, m->smear);
	if (version >= 2)
		age_means_put(w, &m->smear_by_age);
}

static void models_reserve(void *state, size_t n)
{
	struct hurdle_state *s = state;

	s->models = xcalloc(n ? n : 1, sizeof(*s->models));
	s->cap_models = n;
}

/* The next model of the manifest, after its opening e. */
static int model_get(struct blob_reader *r, uint32_t version, const struct gbt_artefact_entry *e,
		     void *state, struct ltv_err *err)
{
	struct hurdle_state *s = state;
	struct hurdle_model *m = &s->models[s->n_models];
	uint32_t kind;
	int ret;

	m->p_const = blob_get_f64(r);
	kind = blob_get_u32(r);
	m->shift = blob_get_f64(r);
	m->smear = blob_get_f64(r);
	age_means_get_factors(r, version, &m->smear, &m->smear_by_age);
	if ((ret = blob_reader_status(r, manifest_format.what, err)) < 0)
		return ret;
	if (e->tier >= GBT_ARTEFACT_N_TIERS || kind >= HURDLE_REVENUE_KIND_COUNT ||
	    e->has_body > 1 || (e->has_body != 0) != (isnan(m->p_const) != 0) ||
	    !(m->smear > 0) || !isfinite(m->shift))
		return err_set(err, LTV_EINVAL, "hurdle manifest: model %zu is inconsistent "
			       "(tier %u, payer body %u, revenue kind %u)", s->n_models,
			       e->tier, e->has_body, kind);
	m->tier = (int)e->tier;
	m->horizon = e->horizon;
	m->kind = (enum hurdle_revenue_kind)kind;
	s->n_models++;
	return 0;
}

static const struct gbt_artefact_codec codec = {
	.fmt = &manifest_format,
	.opening = model_opening,
	.put = model_put,
	.reserve = models_reserve,
	.get = model_get,
};

int hurdle_state_save(const struct hurdle_state *s, struct gbt_artefact *out,
		      struct ltv_err *err)
{
	int ret = 0;

	gbt_artefact_write_manifest(out, &codec, &s->features, s, s->n_models);
	for (size_t i = 0; i < s->n_models && ret == 0; i++) {
		const struct hurdle_model *m = &s->models[i];

		if (m->payer)
			ret = gbt_artefact_add_model(out, m->tier, m->horizon, "payer", m->payer,
						     err);
		if (ret == 0 && m->revenue)
			ret = gbt_artefact_add_model(out, m->tier, m->horizon, "revenue",
						     m->revenue, err);
	}
	return ret;
}

static int hurdle_load(struct registry *reg, const struct artefact_info *artefact,
		       const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct hurdle_state *s = xcalloc(1, sizeof(*s));
	const int n_threads = config_jobs(cfg);
	int ret;

	*out_state = NULL;
	ret = gbt_artefact_read_manifest(reg, artefact->id, &codec, &s->features, s, err);
	if (ret == 0) {
		/* every body, in the order they were read one by one: side by side */
		struct gbt_body_load *bodies = xcalloc(2 * s->n_models + 1, sizeof(*bodies));
		size_t n = 0;

		for (size_t i = 0; i < s->n_models; i++) {
			struct hurdle_model *m = &s->models[i];

			if (isnan(m->p_const))
				bodies[n++] = (struct gbt_body_load){ m->tier, m->horizon, "payer", &m->payer };
			if (m->kind != HURDLE_REVENUE_NONE)
				bodies[n++] = (struct gbt_body_load){ m->tier, m->horizon, "revenue",
								      &m->revenue };
		}
		ret = gbt_artefact_load_models(reg, artefact->id, "hurdle", bodies, n, n_threads,
					       s->features.n, err);
		free(bodies);
	}
	if (ret < 0) {
		err_prefix(err, "hurdle v%lld", (long long)artefact->version);
		hurdle_state_free(s);
		return ret;
	}
	*out_state = s;
	return 0;
}

const struct method method_hurdle = {
	.name = "hurdle",
	.own_threads = 1,
	.load = hurdle_load,
	.predict = hurdle_predict,
	.predict_past = hurdle_predict_past,
	.free_state = hurdle_state_free,
};
