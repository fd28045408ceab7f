/*
 * The buy-till-you-die stages (contract in include/ltv/btyd_stage.h).
 *
 * Fitted on the training users (model_data_split_users at the target
 * horizon: one row per user, installed before the validation cohorts) with
 * their whole history before as_of (btyd_history_to_date); once over every app
 * (the fallback) and once per app with at least btyd.min_app_users training
 * users. Gamma-Gamma needs users with a repeat paying day; an app without
 * enough of them, or whose spend has no finite mean, uses the pooled one.
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
#include "ltv/btyd_stage.h"
#include "ltv/gamma_gamma.h"
#include "ltv/log.h"
#include "ltv/stage_metrics.h"
#include "ltv/strmap.h"

#define POOLED "*"
#define INDEX_MAGIC "LTVBTYDI"
/* Repeat buyers a Gamma-Gamma fit needs before it is trusted over the pooled one. */
#define MIN_REPEATERS 20

/* One fit: the pooled one or an app's. */
struct btyd_fit {
	char *app;
	void *count;                  /* the count model */
	struct gamma_gamma_model *gg; /* NULL: the pooled spend model serves */
};

struct btyd_state {
	uint64_t id;           /* unique per loaded state: keys its cached outlooks */
	const struct btyd_count_model *kind;
	struct btyd_fit *fits; /* [0] is the pooled fit */
	size_t n_fits;
	struct strmap index;   /* app → fit */
};

static atomic_uint_fast64_t next_state_id = 1;

static struct btyd_state *state_new(const struct btyd_count_model *kind)
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
	free(s);
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

/* Row i's history, the fit of its app, and what the next `days` days hold. */
static int row_outlook(const struct btyd_state *s, const struct model_data *d, size_t row,
		       double days, double *out_future, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err)
{
	const double *app = frame_column(&d->frame, "app_code");
	const struct btyd_fit *f = fit_of(s, d->apps[(size_t)app[row]]);
	const struct gamma_gamma_model *gg = f->gg ? f->gg : s->fits[0].gg;
	struct btyd_history h;
	double purchases = 0, spend = 0;
	int ret;

	btyd_history_at_row_age(d, row, &h);
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
	const double *window = frame_column(&d->frame, "window_days");

	for (size_t i = 0; i < n; i++) {
		double future, p_alive, p_any;
		int ret;

		if (s->n_fits == 0) { /* not fitted: nothing to say */
			out_ltv[i] = NAN;
			if (out_p_payer)
				out_p_payer[i] = NAN;
			continue;
		}
		ret = row_outlook(s, d, rows[i], (double)horizon - window[rows[i]], &future, &p_alive,
				  &p_any, err);

		if (ret < 0)
			return ret;
		out_ltv[i] = rev_window[rows[i]] + future;
		if (out_p_payer)
			out_p_payer[i] = p_any;
	}
	return 0;
}

int btyd_method_outlook(const void *state, const struct model_data *d, const size_t *rows,
			size_t n, double days, double *out_p_alive, double *out_p_any,
			struct ltv_err *err)
{
	const struct btyd_state *s = state;

	for (size_t i = 0; i < n; i++) {
		int ret = 0;

		if (s->n_fits == 0)
			out_p_alive[i] = out_p_any[i] = NAN;
		else
			ret = row_outlook(s, d, rows[i], days, NULL, &out_p_alive[i], &out_p_any[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- artefact ---- */

static int put_blob(struct stage_ctx *ctx, int64_t out_id, const char *kind, const char *app,
		    uint8_t *data, size_t len)
{
	char *key = xasprintf("%s:%s", kind, app);
	int ret;

	hasher_add_str(&ctx->content, key);
	hasher_update(&ctx->content, data, len);
	ret = registry_blob_put(ctx->reg, out_id, key, data, len, &ctx->err);
	free(key);
	free(data);
	return ret;
}

static int state_store(struct stage_ctx *ctx, const struct btyd_state *s, int64_t out_id)
{
	char *index_kind = xasprintf("%s:index", s->kind->name);
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, INDEX_MAGIC, 1);
	blob_put_u64(&w, s->n_fits);
	for (size_t i = 0; i < s->n_fits; i++) {
		blob_put_str(&w, s->fits[i].app);
		blob_put_u32(&w, s->fits[i].gg != NULL);
	}
	data = blob_writer_detach(&w, &len);
	ret = put_blob(ctx, out_id, index_kind, "", data, len);
	for (size_t i = 0; i < s->n_fits && ret == 0; i++) {
		ret = s->kind->save(s->fits[i].count, &data, &len, &ctx->err);
		if (ret == 0)
			ret = put_blob(ctx, out_id, s->kind->name, s->fits[i].app, data, len);
		if (ret == 0 && s->fits[i].gg) {
			ret = gamma_gamma_save(s->fits[i].gg, &data, &len, &ctx->err);
			if (ret == 0)
				ret = put_blob(ctx, out_id, "gg", s->fits[i].app, data, len);
		}
	}
	free(index_kind);
	return ret;
}

static int get_blob(struct registry *reg, int64_t id, const char *kind, const char *app,
		    void **out_data, size_t *out_len, struct ltv_err *err)
{
	char *key = xasprintf("%s:%s", kind, app);
	int ret = registry_blob_get(reg, id, key, out_data, out_len, err);

	free(key);
	return ret;
}

/* Fit i's count model and (has_gg) spend model, from their blobs. */
static int load_fit(struct btyd_state *s, struct registry *reg, int64_t id, size_t i, int has_gg,
		    struct ltv_err *err)
{
	void *body = NULL;
	size_t len;
	int ret = get_blob(reg, id, s->kind->name, s->fits[i].app, &body, &len, err);

	if (ret == 0)
		ret = s->kind->load(body, len, &s->fits[i].count, err);
	free(body);
	body = NULL;
	if (ret == 0 && has_gg) {
		ret = get_blob(reg, id, "gg", s->fits[i].app, &body, &len, err);
		if (ret == 0)
			ret = gamma_gamma_load(body, len, &s->fits[i].gg, err);
		free(body);
	}
	return ret;
}

int btyd_method_load(const struct btyd_count_model *kind, struct registry *reg,
		     const struct artefact_info *artefact, void **out_state, struct ltv_err *err)
{
	struct btyd_state *s = state_new(kind);
	char *index_kind = xasprintf("%s:index", kind->name);
	struct blob_reader r;
	void *data = NULL;
	size_t len = 0;
	uint32_t version;
	uint64_t n = 0;
	int ret = get_blob(reg, artefact->id, index_kind, "", &data, &len, err);

	if (ret == 0) {
		blob_reader_init(&r, data, len);
		ret = blob_get_header(&r, INDEX_MAGIC, 1, &version, err);
	}
	if (ret == 0) {
		n = blob_get_u64(&r);
		if (r.failed || n > len)
			ret = err_set(err, LTV_EINVAL, "%s index blob: bad count", kind->name);
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
			ret = load_fit(s, reg, artefact->id, i, has_gg, err);
		if (ret == 0 && i > 0)
			strmap_put(&s->index, s->fits[i].app, (int64_t)i);
	}
	if (ret == 0 && n > 0 && !s->fits[0].gg)
		ret = err_set(err, LTV_EINVAL, "%s: the pooled fit has no spend model", kind->name);
	free(data);
	free(index_kind);
	if (ret < 0) {
		btyd_method_free(s);
		return err_prefix(err, "%s v%lld", kind->name, (long long)artefact->version);
	}
	*out_state = s;
	return 0;
}

/* ---- training ---- */

/* Fits the count model and (with enough repeaters) Gamma-Gamma on histories h[0..n). */
static int fit_one(const struct btyd_count_model *kind, const struct btyd_history *h, size_t n,
		   struct btyd_fit *out, struct ltv_err *err)
{
	struct btyd_triples t;
	struct gamma_gamma_param gp;
	double *x = xmalloc((n ? n : 1) * sizeof(double)), *m_x = xmalloc((n ? n : 1) * sizeof(double));
	size_t n_rep = 0;
	int ret;

	btyd_triples_build(h, n, &t);
	ret = kind->fit(&t, &out->count, err);
	for (size_t i = 0; i < n; i++) {
		if (h[i].x < 1 || !(h[i].m_x > 0))
			continue;
		x[n_rep] = h[i].x;
		m_x[n_rep++] = h[i].m_x;
	}
	if (ret == 0 && n_rep >= MIN_REPEATERS) {
		struct ltv_err gg_err = { 0 };

		gamma_gamma_param_init(&gp);
		/* Day resolution leaves the optimum flat; 1e-5 moves predictions far less than noise. */
		gp.grad_tol = 1e-5;
		if (gamma_gamma_fit(&gp, &(struct gamma_gamma_data){ .n = n_rep, .x = x, .m_x = m_x },
				    &out->gg, &gg_err) < 0 || !(out->gg->q > 1)) {
			/* No usable spend model of its own: the pooled one serves. */
			gamma_gamma_free(out->gg);
			out->gg = NULL;
		}
	}
	btyd_triples_release(&t);
	free(x);
	free(m_x);
	return ret;
}

static void add_fit_metrics(cJSON *fits, const struct btyd_count_model *kind,
			    const struct btyd_fit *f, size_t n_users)
{
	cJSON *o = cJSON_AddObjectToObject(fits, f->app);

	cJSON_AddNumberToObject(o, "users", (double)n_users);
	kind->add_metrics(o, f->count);
	if (f->gg) {
		cJSON_AddNumberToObject(o, "gg_p", f->gg->p);
		cJSON_AddNumberToObject(o, "gg_q", f->gg->q);
		cJSON_AddNumberToObject(o, "gg_gamma", f->gg->gamma);
	}
}

/* The pooled fit, then one per app with enough training users. */
static int fit_all(struct stage_ctx *ctx, const struct model_data *d, struct btyd_state *s)
{
	const double *app = frame_column(&d->frame, "app_code");
	const struct btyd_count_model *kind = s->kind;
	cJSON *fits = cJSON_AddObjectToObject(ctx->metrics, "fits");
	struct btyd_history *h = NULL, *mine = NULL;
	struct row_split users;
	int ret;

	model_data_split_users(d, ctx->cfg->features.target_horizon, 0, &users);
	if (users.n_train == 0) {
		row_split_release(&users);
		return err_set(&ctx->err, LTV_EMODEL, "%s: no training user is mature at the target "
			       "horizon; pass a later --as-of", kind->name);
	}
	h = xmalloc(users.n_train * sizeof(*h));
	mine = xmalloc(users.n_train * sizeof(*mine));
	for (size_t i = 0; i < users.n_train; i++)
		btyd_history_to_date(d, users.train[i], &h[i]);
	s->fits = xcalloc(d->n_apps + 1, sizeof(*s->fits));
	s->fits[0].app = xstrdup(POOLED);
	s->n_fits = 1;
	ret = fit_one(kind, h, users.n_train, &s->fits[0], &ctx->err);
	if (ret == 0 && !s->fits[0].gg)
		ret = err_set(&ctx->err, LTV_EMODEL, "%s: too few users bought again (or their spend "
			      "has no finite mean) to fit Gamma-Gamma over every app", kind->name);
	if (ret == 0)
		add_fit_metrics(fits, kind, &s->fits[0], users.n_train);
	for (size_t a = 0; a < d->n_apps && ret == 0; a++) {
		struct btyd_fit f = { 0 };
		struct ltv_err fit_err = { 0 };
		size_t n_mine = 0;

		for (size_t i = 0; i < users.n_train; i++)
			if ((size_t)app[users.train[i]] == a)
				mine[n_mine++] = h[i];
		if (n_mine < (size_t)ctx->cfg->btyd.min_app_users || n_mine == users.n_train)
			continue;
		if (fit_one(kind, mine, n_mine, &f, &fit_err) < 0) {
			LOG(LOG_WARN, "app %s: no %s of its own (%s); the pooled fit serves it",
			    d->apps[a], kind->name, fit_err.msg);
			kind->free_model(f.count);
			gamma_gamma_free(f.gg);
			continue;
		}
		f.app = xstrdup(d->apps[a]);
		strmap_put(&s->index, f.app, (int64_t)s->n_fits);
		s->fits[s->n_fits++] = f;
		add_fit_metrics(fits, kind, &f, n_mine);
	}
	free(h);
	free(mine);
	row_split_release(&users);
	return ret;
}

int btyd_stage_run(struct stage_ctx *ctx, const struct btyd_count_model *kind)
{
	const struct config *cfg = ctx->cfg;
	struct btyd_state *s = state_new(kind);
	struct model_data d;
	struct row_split valid = { 0 };
	double *pred = NULL;
	int64_t out_id;
	int ret = model_data_load(ctx, 0, &d);

	if (ret < 0) {
		btyd_method_free(s);
		return ret;
	}
	ret = fit_all(ctx, &d, s);
	if (ret == LTV_EMODEL) {
		/* Data a BTYD model cannot describe: the method has nothing, the chain serves. */
		LOG(LOG_WARN, "%s: not fitted (%s); the method will predict nothing", kind->name,
		    ctx->err.msg);
		cJSON_AddStringToObject(ctx->metrics, "not_fitted", ctx->err.msg);
		for (size_t i = 0; i < s->n_fits; i++) {
			free(s->fits[i].app);
			kind->free_model(s->fits[i].count);
			gamma_gamma_free(s->fits[i].gg);
		}
		s->n_fits = 0;
		strmap_release(&s->index);
		strmap_init(&s->index);
		ret = 0;
	}
	if (ret == 0 && s->n_fits > 0) {
		model_data_split(&d, cfg->features.target_horizon, 0, &valid);
		pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
		ret = btyd_method_predict(s, &d, valid.valid, valid.n_valid,
					  cfg->features.target_horizon, pred, NULL, &ctx->err);
	}
	if (ret == 0 && s->n_fits > 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
						   cfg->features.target_horizon);
	if (ret == 0)
		ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = state_store(ctx, s, out_id);
	free(pred);
	row_split_release(&valid);
	model_data_release(&d);
	btyd_method_free(s);
	return ret;
}
