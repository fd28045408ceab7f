/*
 * The curves model as stored and predicted with (contract in
 * include/ltv/curves_model.h); pipeline/curves.c trains it and describes it.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/curve.h"
#include "ltv/curves_model.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/strmap.h"
#include "ltv/u64map.h"

void curves_state_free(struct curves_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_h; i++) {
		for (size_t j = 0; j < s->h[i].n_entries; j++) {
			free(s->h[i].entries[j].app);
			free(s->h[i].entries[j].campaign);
		}
		free(s->h[i].entries);
		strmap_release(&s->h[i].index);
	}
	free(s->h);
	free(s);
}

static char *cohort_key(const char *app, const char *campaign)
{
	return xasprintf("%s\x1f%s", app, campaign);
}

void curves_state_index(struct curves_state *s)
{
	for (size_t i = 0; i < s->n_h; i++) {
		struct curves_horizon *h = &s->h[i];

		strmap_init(&h->index);
		for (size_t j = 0; j < h->n_entries; j++) {
			char *key = cohort_key(h->entries[j].app, h->entries[j].campaign);

			strmap_put(&h->index, key, (int64_t)j);
			free(key);
		}
	}
}

/*
 * Blob "LTVCURVS" version 2: f64 shrinkage_users, u64
 * n_horizons, then per horizon: u64 horizon; per prior (tier 1, tiers 2-3):
 * u32 present, f64 log_a, f64 b, u64 users; u64 n_campaigns; per campaign:
 * str app, str campaign, f64 log_a, f64 b, u64 users.
 */
void curves_save(const struct curves_state *s, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, CURVES_MAGIC, CURVES_VERSION);
	blob_put_f64(&w, s->shrinkage_users);
	blob_put_u64(&w, s->n_h);
	for (size_t i = 0; i < s->n_h; i++) {
		const struct curves_horizon *h = &s->h[i];

		blob_put_u64(&w, (uint64_t)h->horizon);
		for (int p = 0; p < N_PRIORS; p++) {
			blob_put_u32(&w, (uint32_t)h->has_prior[p]);
			blob_put_f64(&w, h->prior[p].log_a);
			blob_put_f64(&w, h->prior[p].b);
			blob_put_u64(&w, h->prior_users[p]);
		}
		blob_put_u64(&w, h->n_entries);
		for (size_t j = 0; j < h->n_entries; j++) {
			blob_put_str(&w, h->entries[j].app);
			blob_put_str(&w, h->entries[j].campaign);
			blob_put_f64(&w, h->entries[j].curve.log_a);
			blob_put_f64(&w, h->entries[j].curve.b);
			blob_put_u64(&w, h->entries[j].n_users);
		}
	}
	*out_buf = blob_writer_detach(&w, out_len);
}

int curves_parse(const void *buf, size_t len, struct curves_state **out_state,
		 struct ltv_err *err)
{
	struct curves_state *s = xcalloc(1, sizeof(*s));
	struct blob_reader r;
	uint32_t version;
	uint64_t n_h;
	int ret;

	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, CURVES_MAGIC, CURVES_VERSION, &version, err);
	if (ret == 0 && version != CURVES_VERSION)
		ret = err_set(err, LTV_EINVAL, "curves blob version %u predates snapshot ages; "
			      "rerun the pipeline (ltvpipe run) to retrain", version);
	if (ret < 0)
		goto out;
	s->shrinkage_users = blob_get_f64(&r);
	n_h = blob_get_u64(&r);
	if (r.failed || n_h > CURVES_MAX_HORIZONS || !(s->shrinkage_users >= 0)) {
		ret = err_set(err, LTV_EINVAL, "curves blob: bad header");
		goto out;
	}
	s->h = xcalloc(n_h ? n_h : 1, sizeof(*s->h));
	for (size_t i = 0; i < n_h && !r.failed; i++) {
		struct curves_horizon *h = &s->h[i];
		uint64_t n_entries;

		s->n_h = i + 1;
		h->horizon = (int64_t)blob_get_u64(&r);
		for (int p = 0; p < N_PRIORS; p++) {
			h->has_prior[p] = blob_get_u32(&r) != 0;
			h->prior[p].log_a = blob_get_f64(&r);
			h->prior[p].b = blob_get_f64(&r);
			h->prior_users[p] = blob_get_u64(&r);
		}
		n_entries = blob_get_u64(&r);
		/* Each entry takes at least 32 bytes: a bound before allocating. */
		if (r.failed || n_entries > (r.len - r.pos) / 32) {
			r.failed = 1;
			break;
		}
		h->entries = xcalloc(n_entries ? n_entries : 1, sizeof(*h->entries));
		for (size_t j = 0; j < n_entries && !r.failed; j++) {
			struct curves_entry *e = &h->entries[j];

			h->n_entries = j + 1;
			e->app = blob_get_str(&r);
			e->campaign = blob_get_str(&r);
			e->curve.log_a = blob_get_f64(&r);
			e->curve.b = blob_get_f64(&r);
			e->n_users = blob_get_u64(&r);
			if (!e->app || !e->campaign || !isfinite(e->curve.log_a) || !isfinite(e->curve.b))
				r.failed = 1;
		}
	}
	ret = blob_reader_status(&r, "curves", err);
	if (ret == 0)
		curves_state_index(s);
out:
	if (ret < 0) {
		curves_state_free(s);
		s = NULL;
	}
	*out_state = s;
	return ret;
}

/* ---- prediction ---- */

static const struct curves_horizon *find_horizon(const struct curves_state *s, int64_t horizon)
{
	for (size_t i = 0; i < s->n_h; i++)
		if (s->h[i].horizon == horizon)
			return &s->h[i];
	return NULL;
}

/* The curve a cohort is extrapolated with: its own, else its tier's prior; NULL when none. */
static const struct curve *cohort_curve(const struct curves_horizon *h, const char *app,
					const char *campaign, double tier)
{
	char *key = cohort_key(app, campaign);
	int64_t idx;
	int found = strmap_get(&h->index, key, &idx);
	int p = tier == 1 ? PRIOR_TIER1 : PRIOR_TIER23;

	free(key);
	if (found)
		return &h->entries[idx].curve;
	if (h->has_prior[p])
		return &h->prior[p];
	return h->has_prior[1 - p] ? &h->prior[1 - p] : NULL;
}

/* a * D^b with b < 0 taken as 0: a cumulative curve never falls. */
static double rising_curve(const struct curve *cv, double day)
{
	struct curve c = *cv;

	if (c.b < 0)
		c.b = 0;
	return day > 0 ? curve_predict(&c, day) : 0.0;
}

/* One cohort among the rows being predicted. */
struct cohort_acc {
	size_t first_row;
	double seen;      /* weighted revenue of the rows before their age */
	double expected;  /* weighted curve value at the rows' ages (set per horizon) */
	double users;     /* weight of the rows with an age of at least one day */
	double level;     /* blended seen / expected, set per horizon */
	const struct curve *cv;
	double at_horizon; /* rising_curve at the horizon's day, set per horizon */
	double last_day, last_value; /* the last rising_curve of this cohort (NaN day: none) */
};

/*
 * rising_curve of a's curve at day, remembering the last day asked: a
 * cohort's rows sit on a handful of ages (snapshot ages, or one age repeated
 * for the copies of a weighted row), and exp and log were most of
 * curves_predict. The same value, computed once.
 */
static double cohort_curve_at(struct cohort_acc *a, double day)
{
	if (day != a->last_day) {
		a->last_day = day;
		a->last_value = rising_curve(a->cv, day);
	}
	return a->last_value;
}

/*
 * out[i] = predicted ltv_H of rows[i] (see the header comment): NaN for every
 * row when H was not trained, and for a row whose cohort has no curve.
 */
int curves_predict(const void *state, const struct model_data *d, const size_t *rows,
		   size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
		   struct ltv_err *err)
{
	const struct curves_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const size_t n_dense = d->n_apps * d->n_campaigns;
	int32_t *slot_of = NULL;
	struct cohort_acc *acc = NULL;
	size_t n_slots = 0, cap = 0;
	int32_t *row_slot = NULL;
	struct u64map group_slots;

	for (size_t i = 0; i < n; i++) {
		out_ltv[i] = NAN;
		if (out_p_payer)
			out_p_payer[i] = NAN;
	}
	if (!rev_window || !frame_col_found(window))
		return err_set(err, LTV_EINVAL, "curves: the features frame has no rev_window or "
			       "window_days column");
	if (!find_horizon(s, horizon) || n == 0)
		return 0;
	slot_of = xmalloc((n_dense ? n_dense : 1) * sizeof(*slot_of));
	row_slot = xmalloc(n * sizeof(*row_slot));
	for (size_t c = 0; c < n_dense; c++)
		slot_of[c] = -1;
	if (d->group)
		u64map_init(&group_slots);
	for (size_t i = 0; i < n; i++) {
		size_t c = model_data_cohort(d, rows[i]);

		if (d->group) {
			/* One level per cohort and request (model_data.group). */
			int is_new = 0;
			size_t k = u64map_index(&group_slots, ((uint64_t)c << 32) | d->group[rows[i]], &is_new);

			if (is_new) {
				ARRAY_GROW(acc, n_slots + 1, cap);
				acc[n_slots++] = (struct cohort_acc){ .first_row = rows[i] };
			}
			row_slot[i] = (int32_t)k;
			continue;
		}
		if (slot_of[c] < 0) {
			ARRAY_GROW(acc, n_slots + 1, cap);
			acc[n_slots] = (struct cohort_acc){ .first_row = rows[i] };
			slot_of[c] = (int32_t)n_slots++;
		}
		row_slot[i] = slot_of[c];
	}
	if (d->group)
		u64map_release(&group_slots);
	/* Every trained horizon up to H, so that predictions never decrease with H. */
	for (size_t hi = 0; hi < s->n_h; hi++) {
		const struct curves_horizon *h = &s->h[hi];
		const double hd = (double)h->horizon;

		if (h->horizon > horizon)
			continue;
		for (size_t c = 0; c < n_slots; c++) {
			struct cohort_acc *a = &acc[c];
			size_t r = a->first_row;
			const size_t cohort = model_data_cohort(d, r);

			a->cv = cohort_curve(h, d->apps[cohort / d->n_campaigns],
					     d->campaigns[cohort % d->n_campaigns], d->tier ? d->tier[r] : 3);
			a->seen = a->expected = a->users = 0;
			a->at_horizon = a->cv ? rising_curve(a->cv, hd) : NAN;
			a->last_day = NAN;
		}
		for (size_t i = 0; i < n; i++) {
			struct cohort_acc *a = &acc[row_slot[i]];
			const double u = fmin(frame_col_at(window, rows[i]), hd);

			/* Rows come once per user they stand for (model_data_split repeats by weight). */
			if (!a->cv || u < 1)
				continue;
			a->seen += rev_window[rows[i]];
			a->expected += cohort_curve_at(a, u);
			a->users += 1;
		}
		for (size_t c = 0; c < n_slots; c++) {
			struct cohort_acc *a = &acc[c];
			double w = a->users == 0 ? 0.0
				   : s->shrinkage_users == 0 ? 1.0 : a->users / (a->users + s->shrinkage_users);

			/* The cohort's level against its curve, shrunk to the curve's own for few users. */
			a->level = w * (a->expected > 0 ? a->seen / a->expected : 1.0) + (1.0 - w);
		}
		for (size_t i = 0; i < n; i++) {
			struct cohort_acc *a = &acc[row_slot[i]];
			const double u = fmin(frame_col_at(window, rows[i]), hd);
			double inc;

			if (!a->cv)
				continue;
			inc = a->level * (a->at_horizon - cohort_curve_at(a, u));
			inc = rev_window[rows[i]] + (inc > 0 ? inc : 0.0);
			if (isnan(out_ltv[i]) || inc > out_ltv[i])
				out_ltv[i] = inc;
		}
	}
	free(slot_of);
	free(row_slot);
	free(acc);
	return 0;
}

static int curves_load(struct registry *reg, const struct artefact_info *artefact,
		       const struct config *cfg, void **out_state, struct ltv_err *err)
{
	void *buf = NULL;
	size_t len = 0;
	struct curves_state *s = NULL;
	int ret = registry_blob_get(reg, artefact->id, CURVES_BLOB, &buf, &len, err);

	(void)cfg;
	if (ret == 0)
		ret = curves_parse(buf, len, &s, err);
	if (ret < 0)
		err_prefix(err, "curves v%lld", (long long)artefact->version);
	free(buf);
	*out_state = s;
	return ret;
}

static void curves_free_state(void *state)
{
	curves_state_free(state);
}

const struct method method_curves = {
	.name = "curves",
	.any_age = 1,
	.same_to_come = 1,
	.batch_level = 1,
	.load = curves_load,
	.predict = curves_predict,
	.free_state = curves_free_state,
};
