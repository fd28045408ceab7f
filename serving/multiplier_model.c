/*
 * The multiplier model as stored and predicted with: the state the
 * multiplier stage trains (pipeline/multiplier.c), its artefact format (a
 * manifest, see multiplier_state_save, beside bodies "t<tier>:h<H>:multiplier")
 * and method_multiplier, which loads that artefact back and predicts
 * rev_window × m for users with window revenue and a tier's zero-window value
 * for the others, taking from the pooled entry what a tier lacks. Training
 * and scoring share this file so the stage's own validation metrics come from
 * the same predictor that select, calibrate and score use.
 */
#include <math.h>

#include "ltv/blob.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/multiplier_model.h"

struct multiplier_state *multiplier_state_new(const struct str_list *features)
{
	struct multiplier_state *s = xcalloc(1, sizeof(*s));

	gbt_artefact_copy_features(features, &s->features);
	return s;
}

void multiplier_state_free(void *state)
{
	struct multiplier_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_models; i++)
		gbt_free(s->models[i].model);
	free(s->models);
	gbt_artefact_release_features(&s->features);
	free(s);
}

void multiplier_state_add(struct multiplier_state *s, const struct multiplier_model *m)
{
	ARRAY_GROW(s->models, s->n_models + 1, s->cap_models);
	s->models[s->n_models++] = *m;
}

const struct multiplier_model *multiplier_state_find(const struct multiplier_state *s, int tier,
						     int64_t horizon)
{
	for (size_t i = 0; i < s->n_models; i++)
		if (s->models[i].tier == tier && s->models[i].horizon == horizon)
			return &s->models[i];
	return NULL;
}

double multiplier_smear_for_age(const struct multiplier_model *m, double window_days)
{
	return age_means_at(&m->smear_by_age, window_days, m->smear);
}

static double multiplier_from_pred(const struct multiplier_model *m, double pred, double window_days)
{
	return fmax(1.0, exp(fmin(pred + m->shift, GBT_ARTEFACT_MAX_LOG_PRED)) *
			 multiplier_smear_for_age(m, window_days));
}

/*
 * For each tier slot: the entry (a struct multiplier_model) whose regressor
 * its window payers use, and the zero-window value its other rows get. False
 * when the horizon has no pooled entry (nothing to say).
 */
static int resolve(const struct multiplier_state *s, int64_t horizon,
		   const void *out_model[GBT_ARTEFACT_N_TIERS],
		   double out_zero[GBT_ARTEFACT_N_TIERS])
{
	const struct multiplier_model *pooled = multiplier_state_find(s, 0, horizon);

	if (!pooled)
		return 0;
	for (int t = 0; t < GBT_ARTEFACT_N_TIERS; t++) {
		const struct multiplier_model *own = t ? multiplier_state_find(s, t, horizon)
						       : pooled;

		out_model[t] = own && own->model ? own : pooled;
		out_zero[t] = own && !isnan(own->zero_window_value) ? own->zero_window_value
								    : pooled->zero_window_value;
	}
	return 1;
}

int multiplier_predict(const void *state, const struct model_data *d, const size_t *rows,
		       size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
		       struct ltv_err *err)
{
	const struct multiplier_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const size_t k = s->features.n;
	const void *use[GBT_ARTEFACT_N_TIERS]; /* struct multiplier_model */
	double zero[GBT_ARTEFACT_N_TIERS];
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
			out_ltv[i] = zero[gbt_artefact_row_tier(d, rows[i])];
		}
	}
	if (n_pos == 0)
		goto out;
	ret = model_data_matrix(d, &s->features, pos_rows, n_pos, &x, err);
	if (ret < 0)
		goto out;
	idx = xmalloc(n_pos * sizeof(*idx));
	pred = xmalloc(n_pos * sizeof(*pred));
	for (int t = 0; t < GBT_ARTEFACT_N_TIERS && ret == 0; t++) {
		const struct multiplier_model *m = use[t];
		const size_t n_sub = gbt_artefact_tier_rows(d, pos_rows, n_pos, use, t, idx);

		if (n_sub == 0)
			continue;
		if (!m->model) {
			for (size_t j = 0; j < n_sub; j++)
				pred[j] = -INFINITY; /* m = 1: no window payer ever trained it */
		} else {
			ret = gbt_predict(m->model,
					  gbt_artefact_tier_matrix(x, n_pos, k, idx, n_sub, &sub),
					  n_sub, k, pred, err);
		}
		for (size_t j = 0; j < n_sub && ret == 0; j++)
			out_ltv[pos[idx[j]]] = rev_window[pos_rows[idx[j]]] *
					       multiplier_from_pred(m, pred[j],
								    frame_col_found(window) ? frame_col_at(window, pos_rows[idx[j]]) : NAN);
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

/*
 * Manifest blob (the opening every manifest shares, see gbt_artefact.h, with
 * magic "LTVMULT1", version 2, then per entry after its opening): f64 label
 * shift, f64 smearing factor, f64 zero_window_value (NaN: the pooled
 * entry's), then the factors by snapshot age (age_means_put: u32 count, per
 * age f64 age, f64 factor; version 1, read still, has none: one factor for
 * every age). An entry's body is the gbt_save buffer "t<tier>:h<H>:multiplier"
 * (when has_body), predicting log(m) - shift.
 */
static const struct gbt_artefact_manifest manifest_format = {
	.magic = "LTVMULT1",
	.version = 2,
	.entry_bytes = 16 + 8 + 8 + 8,
	.what = "multiplier manifest",
};

/* What reading fills: the state, and whether each entry has a body. */
struct read_target {
	struct multiplier_state *s;
	unsigned char *has_body;
};

static struct gbt_artefact_entry entry_opening(const void *state, size_t i, int *has_factors)
{
	const struct multiplier_model *m = &((const struct multiplier_state *)state)->models[i];

	*has_factors = m->smear_by_age.n > 0;
	return (struct gbt_artefact_entry){ (uint32_t)m->tier, m->horizon, m->model != NULL };
}

static void entry_put(struct blob_writer *w, const void *state, size_t i, uint32_t version)
{
	const struct multiplier_model *m = &((const struct multiplier_state *)state)->models[i];

	blob_put_f64(w, m->shift);
	blob_put_f64(w, m->smear);
	blob_put_f64(w, m->zero_window_value);
	if (version >= 2)
		age_means_put(w, &m->smear_by_age);
}

static void entries_reserve(void *state, size_t n)
{
	struct read_target *t = state;

	t->s->models = xcalloc(n ? n : 1, sizeof(*t->s->models));
	t->s->cap_models = n;
	t->has_body = xcalloc(n ? n : 1, 1);
}

/* The next entry of the manifest, after its opening e. */
static int entry_get(struct blob_reader *r, uint32_t version, const struct gbt_artefact_entry *e,
		     void *state, struct ltv_err *err)
{
	struct read_target *t = state;
	struct multiplier_model *m = &t->s->models[t->s->n_models];
	int ret;

	m->shift = blob_get_f64(r);
	m->smear = blob_get_f64(r);
	m->zero_window_value = blob_get_f64(r);
	age_means_get_factors(r, version, &m->smear, &m->smear_by_age);
	if ((ret = blob_reader_status(r, manifest_format.what, err)) < 0)
		return ret;
	if (e->tier >= GBT_ARTEFACT_N_TIERS || e->has_body > 1 || !isfinite(m->shift) ||
	    !(m->smear > 0) || isinf(m->zero_window_value))
		return err_set(err, LTV_EINVAL, "multiplier manifest: entry %zu is "
			       "inconsistent (tier %u, body %u)", t->s->n_models, e->tier,
			       e->has_body);
	m->tier = (int)e->tier;
	m->horizon = e->horizon;
	t->has_body[t->s->n_models++] = (unsigned char)e->has_body;
	return 0;
}

static const struct gbt_artefact_codec codec = {
	.fmt = &manifest_format,
	.opening = entry_opening,
	.put = entry_put,
	.reserve = entries_reserve,
	.get = entry_get,
};

int multiplier_state_save(const struct multiplier_state *s, struct gbt_artefact *out,
			  struct ltv_err *err)
{
	int ret = 0;

	gbt_artefact_write_manifest(out, &codec, &s->features, s, s->n_models);
	for (size_t i = 0; i < s->n_models && ret == 0; i++)
		if (s->models[i].model)
			ret = gbt_artefact_add_model(out, s->models[i].tier, s->models[i].horizon,
						     "multiplier", s->models[i].model, err);
	return ret;
}

static int multiplier_load(struct registry *reg, const struct artefact_info *artefact,
			   const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct multiplier_state *s = xcalloc(1, sizeof(*s));
	struct read_target t = { .s = s };
	const int n_threads = config_jobs(cfg);
	int ret;

	*out_state = NULL;
	ret = gbt_artefact_read_manifest(reg, artefact->id, &codec, &s->features, &t, err);
	if (ret == 0) {
		/* every body side by side (gbt_artefact_load_models) */
		struct gbt_body_load *bodies = xcalloc(s->n_models + 1, sizeof(*bodies));
		size_t n = 0;

		for (size_t i = 0; i < s->n_models; i++)
			if (t.has_body[i])
				bodies[n++] = (struct gbt_body_load){ s->models[i].tier, s->models[i].horizon,
								      "multiplier", &s->models[i].model };
		ret = gbt_artefact_load_models(reg, artefact->id, "multiplier", bodies, n, n_threads,
					       s->features.n, err);
		free(bodies);
	}
	free(t.has_body);
	if (ret < 0) {
		err_prefix(err, "multiplier v%lld", (long long)artefact->version);
		multiplier_state_free(s);
		return ret;
	}
	*out_state = s;
	return 0;
}

const struct method method_multiplier = {
	.name = "multiplier",
	.own_threads = 1,
	.load = multiplier_load,
	.predict = multiplier_predict,
	.free_state = multiplier_state_free,
};
