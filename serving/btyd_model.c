/*
 * The buy-till-you-die models as stored and predicted with (contract in
 * include/ltv/btyd_model.h); pipeline/btyd_stage.c fits and stores them.
 *
 * Artefact blobs: "<name>:index:" (magic, u64 count, then per fit its app
 * name and u32 has-own-spend-model), "<name>:<app>" (the count model's own
 * save format) and "gg:<app>" (gamma_gamma_save), app "*" being the pooled fit.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/btyd_model.h"
#include "ltv/gamma_gamma.h"

static atomic_uint_fast64_t next_state_id = 1;

struct btyd_state *btyd_state_new(const struct btyd_count_model *kind)
{
	struct btyd_state *s = xcalloc(1, sizeof(*s));

	s->id = atomic_fetch_add(&next_state_id, 1);
	s->kind = kind;
	strmap_init(&s->index);
	return s;
}

void btyd_method_free(void *state)
{
	struct btyd_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_fits; i++) {
		free(s->fits[i].app);
		s->kind->free_model(s->fits[i].count);
		gamma_gamma_free(s->fits[i].gg);
	}
	free(s->fits);
	strmap_release(&s->index);
	btyd_method_free(s->serve);
	free(s);
}

void btyd_method_for_serving(void *state)
{
	struct btyd_state *s = state, *full = s ? s->serve : NULL;
	struct btyd_fit *fits;
	size_t n_fits;
	struct strmap index;

	if (!full || s->serving)
		return;
	/* Swapped, not copied: s->serve now holds the judged fits, freed with s. */
	fits = s->fits, n_fits = s->n_fits, index = s->index;
	s->fits = full->fits, s->n_fits = full->n_fits, s->index = full->index;
	full->fits = fits, full->n_fits = n_fits, full->index = index;
	s->serving = 1;
}

double btyd_method_log_lik(const void *state)
{
	const struct btyd_state *s = state;

	return s && s->n_fits > 0 ? s->kind->log_lik(s->fits[0].count) : NAN;
}

static const struct btyd_fit *fit_of(const struct btyd_state *s, const char *app)
{
	int64_t k;

	return strmap_get(&s->index, app, &k) ? &s->fits[k] : &s->fits[0];
}

/*
 * Outlooks already computed, per thread (no lock on the serving path): a
 * Pareto/NBD P(alive) is a numerical integral, about 10 µs, while the
 * histories repeat (whole paying days, ages in days), so most users of a
 * batch, and most single predictions, find theirs here. An entry is keyed by
 * the state's unique id (never reused, so a freed state's entries are never
 * met again), the fit and every input; the values are those the model
 * computed, so a hit changes no bit of the result.
 */
#define OUTLOOK_CACHE_SLOTS 4096

struct outlook_entry {
	uint64_t state_id;      /* 0: empty */
	const void *count;
	double x, t_x, T, weeks;
	double expected, p_alive, p_any;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, free);
}

static struct outlook_entry *cache_slot(uint64_t state_id, const void *count,
					const struct btyd_history *h, double weeks)
{
	struct outlook_entry *cache;
	const double key[4] = { h->x, h->t_x, h->T, weeks };
	uint64_t hash = state_id * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)count;

	pthread_once(&cache_once, cache_key_init);
	cache = pthread_getspecific(cache_key);
	if (!cache) {
		cache = xcalloc(OUTLOOK_CACHE_SLOTS, sizeof(*cache));
		if (pthread_setspecific(cache_key, cache) != 0) {
			free(cache);
			return NULL;
		}
	}
	for (int k = 0; k < 4; k++) {
		uint64_t bits;

		memcpy(&bits, &key[k], sizeof(bits));
		hash = (hash ^ bits) * 0xff51afd7ed558ccdu;
		hash ^= hash >> 32;
	}
	return &cache[hash % OUTLOOK_CACHE_SLOTS];
}

static int outlook_cached(const struct btyd_state *s, const void *count,
			  const struct btyd_history *h, double weeks, double *out_expected,
			  double *out_p_alive, double *out_p_any, struct ltv_err *err)
{
	struct outlook_entry *e = cache_slot(s->id, count, h, weeks);
	int ret;

	/* Compared as values: the keys are finite (a NaN input misses and is recomputed). */
	if (e && e->state_id == s->id && e->count == count && e->x == h->x && e->t_x == h->t_x &&
	    e->T == h->T && e->weeks == weeks) {
		*out_expected = e->expected;
		*out_p_alive = e->p_alive;
		*out_p_any = e->p_any;
		return 0;
	}
	ret = s->kind->outlook(count, h, weeks, out_expected, out_p_alive, out_p_any, err);
	if (ret == 0 && e)
		*e = (struct outlook_entry){ s->id, count, h->x, h->t_x, h->T, weeks,
					     *out_expected, *out_p_alive, *out_p_any };
	return ret;
}

/*
 * What a prediction reads per row, looked up once for all its rows: the
 * history columns, and each app code's fit (a lookup by name per row cost
 * more than the rows' arithmetic, 2.8 million rows a select at 1,000,000
 * users).
 */
struct row_inputs {
	struct btyd_row_columns cols;
	struct frame_col app;
	const struct btyd_fit **fit_by_app; /* per app code */
};

static void row_inputs_init(const struct btyd_state *s, const struct model_data *d,
			    struct row_inputs *in)
{
	btyd_row_columns_of(d, &in->cols);
	in->app = frame_col(&d->frame, "app_code");
	in->fit_by_app = xmalloc((d->n_apps ? d->n_apps : 1) * sizeof(*in->fit_by_app));
	for (size_t a = 0; a < d->n_apps; a++)
		in->fit_by_app[a] = fit_of(s, d->apps[a]);
}

static void row_inputs_release(struct row_inputs *in)
{
	free(in->fit_by_app);
}

/* Row i's history, the fit of its app, and what the next `days` days hold. */
static int row_outlook(const struct btyd_state *s, const struct row_inputs *in, size_t row,
		       double days, double *out_future, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err)
{
	const struct btyd_fit *f = in->fit_by_app[(size_t)frame_col_at(in->app, row)];
	const struct gamma_gamma_model *gg = f->gg ? f->gg : s->fits[0].gg;
	struct btyd_history h;
	double purchases = 0, spend = 0;
	int ret;

	btyd_history_of_row(&in->cols, row, &h);
	ret = outlook_cached(s, f->count, &h, fmax(days, 0) / BTYD_DAYS_PER_WEEK, &purchases,
			     out_p_alive, out_p_any, err);
	if (ret == 0 && out_future && purchases > 0)
		ret = gamma_gamma_expected_spend(gg, h.x, h.m_x, &spend, err);
	if (out_future)
		*out_future = purchases * spend;
	if (ret < 0)
		return err_prefix(err, "%s: row %zu (x %g, t_x %g, T %g weeks)", s->kind->name, row,
				  h.x, h.t_x, h.T);
	return 0;
}

int btyd_method_predict(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			struct ltv_err *err)
{
	const struct btyd_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	struct row_inputs in;
	int ret = 0;

	if (s->n_fits == 0) { /* not fitted: nothing to say */
		for (size_t i = 0; i < n; i++) {
			out_ltv[i] = NAN;
			if (out_p_payer)
				out_p_payer[i] = NAN;
		}
		return 0;
	}
	row_inputs_init(s, d, &in);
	for (size_t i = 0; i < n; i++) {
		double future, p_alive, p_any;

		ret = row_outlook(s, &in, rows[i], (double)horizon - frame_col_at(window, rows[i]), &future,
				  &p_alive, &p_any, err);
		if (ret < 0)
			break;
		out_ltv[i] = rev_window[rows[i]] + future;
		if (out_p_payer)
			out_p_payer[i] = p_any;
	}
	row_inputs_release(&in);
	return ret;
}

int btyd_method_outlook(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, double days, double *out_p_alive, double *out_p_any,
			struct ltv_err *err)
{
	const struct btyd_state *s = state;
	struct row_inputs in;
	int ret = 0;

	if (s->n_fits == 0) {
		for (size_t i = 0; i < n; i++)
			out_p_alive[i] = out_p_any[i] = NAN;
		return 0;
	}
	row_inputs_init(s, d, &in);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = row_outlook(s, &in, rows[i], days, NULL, &out_p_alive[i], &out_p_any[i], err);
	row_inputs_release(&in);
	return ret;
}

static int get_blob(struct registry *reg, int64_t id, const char *prefix, const char *kind,
		    const char *app, void **out_data, size_t *out_len, struct ltv_err *err)
{
	char *key = xasprintf("%s%s:%s", prefix, kind, app);
	int ret = registry_blob_get(reg, id, key, out_data, out_len, err);

	free(key);
	return ret;
}

/* Fit i's count model and (has_gg) spend model, from their blobs. */
static int load_fit(struct btyd_state *s, struct registry *reg, int64_t id, const char *prefix,
		    size_t i, int has_gg, struct ltv_err *err)
{
	void *body = NULL;
	size_t len;
	int ret = get_blob(reg, id, prefix, s->kind->name, s->fits[i].app, &body, &len, err);

	if (ret == 0)
		ret = s->kind->load(body, len, &s->fits[i].count, err);
	free(body);
	body = NULL;
	if (ret == 0 && has_gg) {
		ret = get_blob(reg, id, prefix, "gg", s->fits[i].app, &body, &len, err);
		if (ret == 0)
			ret = gamma_gamma_load(body, len, &s->fits[i].gg, err);
		free(body);
	}
	return ret;
}

/*
 * The fits stored under prefix ("": the judged ones; BTYD_SERVE_PREFIX: the
 * serving refit) into s. LTV_ENOTFOUND when the artefact has no such index.
 */
static int load_fits(struct btyd_state *s, struct registry *reg, int64_t id, const char *prefix,
		     struct ltv_err *err)
{
	const struct btyd_count_model *kind = s->kind;
	char *index_kind = xasprintf("%s:index", kind->name);
	struct blob_reader r;
	void *data = NULL;
	size_t len = 0;
	uint32_t version;
	uint64_t n = 0;
	int ret = get_blob(reg, id, prefix, index_kind, "", &data, &len, err);

	if (ret == 0) {
		blob_reader_init(&r, data, len);
		ret = blob_get_header(&r, BTYD_INDEX_MAGIC, 1, &version, err);
	}
	if (ret == 0) {
		n = blob_get_u64(&r);
		if (r.failed || n > len)
			ret = err_set(err, LTV_EINVAL, "%s%s index blob: bad count", prefix, kind->name);
	}
	if (ret == 0)
		s->fits = xcalloc(n, sizeof(*s->fits));
	for (size_t i = 0; i < n && ret == 0; i++) {
		int has_gg;

		s->n_fits = i + 1;
		s->fits[i].app = blob_get_str(&r);
		has_gg = blob_get_u32(&r) != 0;
		ret = blob_reader_status(&r, "btyd index", err);
		if (ret == 0)
			ret = load_fit(s, reg, id, prefix, i, has_gg, err);
		if (ret == 0 && i > 0)
			strmap_put(&s->index, s->fits[i].app, (int64_t)i);
	}
	if (ret == 0 && n > 0 && !s->fits[0].gg)
		ret = err_set(err, LTV_EINVAL, "%s%s: the pooled fit has no spend model", prefix,
			      kind->name);
	free(data);
	free(index_kind);
	return ret;
}

int btyd_method_load(const struct btyd_count_model *kind, struct registry *reg,
		     const struct artefact_info *artefact, void **out_state, struct ltv_err *err)
{
	struct btyd_state *s = btyd_state_new(kind);
	struct ltv_err serve_err = { 0 };
	int ret = load_fits(s, reg, artefact->id, "", err);

	if (ret == 0) {
		/* No serving refit (btyd.serve_fit 0, or an older artefact): the judged fits serve. */
		s->serve = btyd_state_new(kind);
		ret = load_fits(s->serve, reg, artefact->id, BTYD_SERVE_PREFIX, &serve_err);
		if (ret == LTV_ENOTFOUND) {
			btyd_method_free(s->serve);
			s->serve = NULL;
			ret = 0;
		} else if (ret < 0)
			*err = serve_err;
	}
	if (ret < 0) {
		btyd_method_free(s);
		return err_prefix(err, "%s v%lld", kind->name, (long long)artefact->version);
	}
	*out_state = s;
	return 0;
}
