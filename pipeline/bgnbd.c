/*
 * Stage bgnbd: BG/NBD for the number of paying days and Gamma-Gamma for the
 * spend per paying day (Fader, Hardie & Lee 2005), the buy-till-you-die pair
 * a purchase log is usually modelled with, as a method select can choose.
 *
 * Fitted on the training users (model_data_split_users at the target
 * horizon: one row per user, installed before the validation cohorts) with
 * their whole history before as_of (btyd_history_to_date), in weeks, day 0
 * being the acquisition; once over every app (the fallback) and once per app
 * with at least bgnbd.min_app_users training users. Gamma-Gamma needs users
 * with a repeat paying day; an app without enough of them uses the pooled
 * spend model.
 *
 * Prediction for a row of age s with history (x, t_x, T = s) at horizon H:
 * rev_window + E[paying days in (s, H] | x, t_x, T] x E[spend | x, m_x].
 * The method models time itself, so a row is predicted at its own age
 * (any_age), and P(alive) comes with it (bgnbd_method_p_alive).
 *
 * Artefact blobs: "index" (u64 count, then each app's name), "bgnbd:<app>"
 * and "gg:<app>" per app with a fit of its own, "bgnbd:*" and "gg:*" pooled
 * (bgnbd_save / gamma_gamma_save formats).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/bgnbd.h"
#include "ltv/blob.h"
#include "ltv/btyd_history.h"
#include "ltv/gamma_gamma.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/stage.h"
#include "ltv/stage_metrics.h"
#include "ltv/strmap.h"

#define POOLED "*"

/* One fit: the pooled one or an app's. */
struct bgnbd_fit_pair {
	char *app;
	struct bgnbd_model *bg;
	struct gamma_gamma_model *gg;
};

struct bgnbd_state {
	struct bgnbd_fit_pair *fits; /* [0] is the pooled fit */
	size_t n_fits;
	struct strmap index;         /* app → fit */
};

static void state_free(struct bgnbd_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_fits; i++) {
		free(s->fits[i].app);
		bgnbd_free(s->fits[i].bg);
		gamma_gamma_free(s->fits[i].gg);
	}
	free(s->fits);
	strmap_release(&s->index);
	free(s);
}

static const struct bgnbd_fit_pair *fit_of(const struct bgnbd_state *s, const char *app)
{
	int64_t k;

	return strmap_get(&s->index, app, &k) ? &s->fits[k] : &s->fits[0];
}

/*
 * Expected revenue to come for history h over the next `weeks`, and P(alive).
 * Fails only on a model error (the caller names the row).
 */
static int expected_future(const struct bgnbd_fit_pair *f, const struct bgnbd_fit_pair *pooled,
			   const struct btyd_history *h, double weeks, double *out_future,
			   double *out_p_alive, struct ltv_err *err)
{
	const struct gamma_gamma_model *gg = f->gg ? f->gg : pooled->gg;
	double purchases = 0, spend = 0;
	int ret = 0;

	*out_p_alive = bgnbd_p_alive(f->bg, h->x, h->t_x, h->T);
	if (weeks > 0)
		ret = bgnbd_expected(f->bg, h->x, h->t_x, h->T, weeks, &purchases, err);
	if (ret == 0 && purchases > 0)
		ret = gamma_gamma_expected_spend(gg, h->x, h->m_x, &spend, err);
	*out_future = purchases * spend;
	return ret;
}

static int bgnbd_predict_rows(const void *state, const struct model_data *d, const size_t *rows,
			      size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
			      struct ltv_err *err)
{
	const struct bgnbd_state *s = state;
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const double *app = frame_column(&d->frame, "app_code");

	for (size_t i = 0; i < n; i++) {
		struct btyd_history h;
		double future, p_alive;
		int ret;

		btyd_history_at_row_age(d, rows[i], &h);
		ret = expected_future(fit_of(s, d->apps[(size_t)app[rows[i]]]), &s->fits[0], &h,
				      ((double)horizon - h.T * BTYD_DAYS_PER_WEEK) / BTYD_DAYS_PER_WEEK,
				      &future, &p_alive, err);
		if (ret < 0)
			return err_prefix(err, "bgnbd: row %zu (x %g, t_x %g, T %g weeks)", rows[i], h.x,
					  h.t_x, h.T);
		out_ltv[i] = rev_window[rows[i]] + future;
		if (out_p_payer)
			out_p_payer[i] = NAN;
	}
	return 0;
}

/* ---- artefact ---- */

static int put_model(struct stage_ctx *ctx, int64_t out_id, const char *kind, const char *app,
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

static int state_store(struct stage_ctx *ctx, const struct bgnbd_state *s, int64_t out_id)
{
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret = 0;

	blob_writer_init(&w);
	blob_put_header(&w, "LTVBGIDX", 1);
	blob_put_u64(&w, s->n_fits);
	for (size_t i = 0; i < s->n_fits; i++) {
		blob_put_str(&w, s->fits[i].app);
		blob_put_u32(&w, s->fits[i].gg != NULL);
	}
	data = blob_writer_detach(&w, &len);
	ret = put_model(ctx, out_id, "index", "", data, len);
	for (size_t i = 0; i < s->n_fits && ret == 0; i++) {
		ret = bgnbd_save(s->fits[i].bg, &data, &len, &ctx->err);
		if (ret == 0)
			ret = put_model(ctx, out_id, "bgnbd", s->fits[i].app, data, len);
		if (ret == 0 && s->fits[i].gg) {
			ret = gamma_gamma_save(s->fits[i].gg, &data, &len, &ctx->err);
			if (ret == 0)
				ret = put_model(ctx, out_id, "gg", s->fits[i].app, data, len);
		}
	}
	return ret;
}

static int get_model(struct registry *reg, int64_t id, const char *kind, const char *app,
		     void **out_data, size_t *out_len, struct ltv_err *err)
{
	char *key = xasprintf("%s:%s", kind, app);
	int ret = registry_blob_get(reg, id, key, out_data, out_len, err);

	free(key);
	return ret;
}

static int bgnbd_load_state(struct registry *reg, const struct artefact_info *artefact,
			    const struct config *cfg, void **out_state, struct ltv_err *err)
{
	struct bgnbd_state *s = xcalloc(1, sizeof(*s));
	struct blob_reader r;
	void *data = NULL;
	size_t len;
	uint32_t version;
	uint64_t n;
	int ret;

	(void)cfg;
	strmap_init(&s->index);
	ret = get_model(reg, artefact->id, "index", "", &data, &len, err);
	if (ret == 0) {
		blob_reader_init(&r, data, len);
		ret = blob_get_header(&r, "LTVBGIDX", 1, &version, err);
	}
	if (ret == 0) {
		n = blob_get_u64(&r);
		if (r.failed || n == 0 || n > len)
			ret = err_set(err, LTV_EINVAL, "bgnbd index blob: bad count");
	}
	if (ret == 0) {
		s->fits = xcalloc(n, sizeof(*s->fits));
		for (size_t i = 0; i < n && ret == 0; i++) {
			int has_gg;
			void *body = NULL;
			size_t body_len;

			s->n_fits = i + 1;
			s->fits[i].app = blob_get_str(&r);
			has_gg = blob_get_u32(&r) != 0;
			if ((ret = blob_reader_status(&r, "bgnbd index", err)) < 0)
				break;
			ret = get_model(reg, artefact->id, "bgnbd", s->fits[i].app, &body, &body_len, err);
			if (ret == 0)
				ret = bgnbd_load(body, body_len, &s->fits[i].bg, err);
			free(body);
			body = NULL;
			if (ret == 0 && has_gg) {
				ret = get_model(reg, artefact->id, "gg", s->fits[i].app, &body, &body_len, err);
				if (ret == 0)
					ret = gamma_gamma_load(body, body_len, &s->fits[i].gg, err);
				free(body);
			}
			if (ret == 0 && i > 0)
				strmap_put(&s->index, s->fits[i].app, (int64_t)i);
		}
	}
	if (ret == 0 && !s->fits[0].gg)
		ret = err_set(err, LTV_EINVAL, "bgnbd: the pooled fit has no spend model");
	free(data);
	if (ret < 0) {
		state_free(s);
		return err_prefix(err, "bgnbd v%lld", (long long)artefact->version);
	}
	*out_state = s;
	return 0;
}

static void bgnbd_free_state(void *state)
{
	state_free(state);
}

const struct method method_bgnbd = {
	.name = "bgnbd",
	.any_age = 1,
	.load = bgnbd_load_state,
	.predict = bgnbd_predict_rows,
	.free_state = bgnbd_free_state,
};

/* ---- training ---- */

/* Fits BG/NBD and (with enough repeaters) Gamma-Gamma on histories h[0..n). */
static int fit_pair(const struct btyd_history *h, size_t n, struct bgnbd_fit_pair *out,
		    struct ltv_err *err)
{
	struct btyd_triples t;
	struct bgnbd_param bp;
	struct gamma_gamma_param gp;
	double *x = xmalloc((n ? n : 1) * sizeof(double)), *m_x = xmalloc((n ? n : 1) * sizeof(double));
	size_t n_rep = 0;
	int ret;

	btyd_triples_build(h, n, &t);
	bgnbd_param_init(&bp);
	/* Day resolution makes the optimum flat in places; 1e-5 moves predictions by far less than noise. */
	bp.grad_tol = 1e-5;
	ret = bgnbd_fit(&bp, &(struct bgnbd_data){ .n = t.n, .x = t.x, .t_x = t.t_x, .T = t.T,
						    .weight = t.weight }, &out->bg, err);
	for (size_t i = 0; i < n; i++) {
		if (h[i].x < 1 || !(h[i].m_x > 0))
			continue;
		x[n_rep] = h[i].x;
		m_x[n_rep++] = h[i].m_x;
	}
	if (ret == 0 && n_rep >= 20) {
		gamma_gamma_param_init(&gp);
		gp.grad_tol = 1e-5;
		if (gamma_gamma_fit(&gp, &(struct gamma_gamma_data){ .n = n_rep, .x = x, .m_x = m_x },
				    &out->gg, err) < 0 || !(out->gg->q > 1)) {
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

static void add_fit_metrics(cJSON *m, const struct bgnbd_fit_pair *f, size_t n_users)
{
	cJSON *o = cJSON_AddObjectToObject(m, f->app);

	cJSON_AddNumberToObject(o, "users", (double)n_users);
	cJSON_AddNumberToObject(o, "r", f->bg->r);
	cJSON_AddNumberToObject(o, "alpha", f->bg->alpha);
	cJSON_AddNumberToObject(o, "a", f->bg->a);
	cJSON_AddNumberToObject(o, "b", f->bg->b);
	if (f->gg) {
		cJSON_AddNumberToObject(o, "gg_p", f->gg->p);
		cJSON_AddNumberToObject(o, "gg_q", f->gg->q);
		cJSON_AddNumberToObject(o, "gg_gamma", f->gg->gamma);
	}
}

static int fit_all(struct stage_ctx *ctx, const struct model_data *d, struct bgnbd_state *s)
{
	const double *app = frame_column(&d->frame, "app_code");
	struct row_split users;
	struct btyd_history *h = NULL, *mine = NULL;
	cJSON *fits = cJSON_AddObjectToObject(ctx->metrics, "fits");
	size_t n_mine;
	int ret;

	model_data_split_users(d, ctx->cfg->features.target_horizon, 0, &users);
	if (users.n_train == 0) {
		row_split_release(&users);
		return err_set(&ctx->err, LTV_EMODEL, "bgnbd: no training user is mature at the target "
			       "horizon; pass a later --as-of");
	}
	h = xmalloc(users.n_train * sizeof(*h));
	mine = xmalloc(users.n_train * sizeof(*mine));
	for (size_t i = 0; i < users.n_train; i++)
		btyd_history_to_date(d, users.train[i], &h[i]);
	s->fits = xcalloc(d->n_apps + 1, sizeof(*s->fits));
	s->fits[0].app = xstrdup(POOLED);
	s->n_fits = 1;
	ret = fit_pair(h, users.n_train, &s->fits[0], &ctx->err);
	if (ret == 0 && !s->fits[0].gg)
		ret = err_set(&ctx->err, LTV_EMODEL, "bgnbd: too few users bought again (or their spend "
			      "has no finite mean) to fit Gamma-Gamma over every app");
	if (ret == 0)
		add_fit_metrics(fits, &s->fits[0], users.n_train);
	for (size_t a = 0; a < d->n_apps && ret == 0; a++) {
		struct bgnbd_fit_pair f = { 0 };
		struct ltv_err fit_err = { 0 };

		n_mine = 0;
		for (size_t i = 0; i < users.n_train; i++)
			if ((size_t)app[users.train[i]] == a)
				mine[n_mine++] = h[i];
		if (n_mine < (size_t)ctx->cfg->bgnbd.min_app_users || n_mine == users.n_train)
			continue;
		if (fit_pair(mine, n_mine, &f, &fit_err) < 0) {
			LOG(LOG_WARN, "app %s: no BG/NBD of its own (%s); the pooled fit serves it",
			    d->apps[a], fit_err.msg);
			continue;
		}
		f.app = xstrdup(d->apps[a]);
		strmap_put(&s->index, f.app, (int64_t)s->n_fits);
		s->fits[s->n_fits++] = f;
		add_fit_metrics(fits, &f, n_mine);
	}
	free(h);
	free(mine);
	row_split_release(&users);
	return ret;
}

int stage_bgnbd_run(struct stage_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct bgnbd_state *s = xcalloc(1, sizeof(*s));
	struct model_data d;
	struct row_split valid = { 0 };
	double *pred = NULL;
	int64_t out_id;
	int ret;

	strmap_init(&s->index);
	ret = model_data_load(ctx, 0, &d);
	if (ret < 0) {
		state_free(s);
		return ret;
	}
	ret = fit_all(ctx, &d, s);
	if (ret == 0) {
		model_data_split(&d, cfg->features.target_horizon, 0, &valid);
		pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
		ret = bgnbd_predict_rows(s, &d, valid.valid, valid.n_valid, cfg->features.target_horizon,
					 pred, NULL, &ctx->err);
	}
	if (ret == 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
						   cfg->features.target_horizon);
	if (ret == 0)
		ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = state_store(ctx, s, out_id);
	free(pred);
	row_split_release(&valid);
	model_data_release(&d);
	state_free(s);
	return ret;
}
