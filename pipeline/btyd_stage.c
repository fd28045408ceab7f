/*
 * The buy-till-you-die stages (contract in include/ltv/btyd_stage.h).
 *
 * Fitted on the training users (model_data_split_users at the target
 * horizon: one row per user, installed before the validation cohorts) with
 * their whole history before as_of (btyd_history_to_date), or with
 * btyd.fit_users 1 on every user a day old at as_of but the validation users
 * of every horizon (read from the registry: users_without_validation_label);
 * once over every app (the fallback) and once per app with at least
 * btyd.min_app_users of those users. Gamma-Gamma needs users with a repeat paying day; an app without
 * enough of them, or whose spend has no finite mean, uses the pooled one.
 *
 * With btyd.serve_fit 1, a second set of fits on every user a day old at
 * as_of (validation users included, their history before as_of only), with
 * 2 on every user mature at the target horizon (training and validation
 * users), is stored beside it for serving (fit_served); select and
 * calibrate judge the first.
 *
 * Stored in the blobs serving/btyd_model.c reads (format there).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/btyd_stage.h"
#include "ltv/gamma_gamma.h"
#include "ltv/log.h"
#include "ltv/stage_io.h"
#include "ltv/stage_metrics.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

/* Repeat buyers a Gamma-Gamma fit needs before it is trusted over the pooled one. */
#define MIN_REPEATERS 20

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

/* s's fits under prefix ("" or BTYD_SERVE_PREFIX: serving/btyd_model.c reads both). */
static int state_store(struct stage_ctx *ctx, const struct btyd_state *s, const char *prefix,
		       int64_t out_id)
{
	char *index_kind = xasprintf("%s%s:index", prefix, s->kind->name);
	char *count_kind = xasprintf("%s%s", prefix, s->kind->name);
	char *gg_kind = xasprintf("%sgg", prefix);
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, BTYD_INDEX_MAGIC, 1);
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
			ret = put_blob(ctx, out_id, count_kind, s->fits[i].app, data, len);
		if (ret == 0 && s->fits[i].gg) {
			ret = gamma_gamma_save(s->fits[i].gg, &data, &len, &ctx->err);
			if (ret == 0)
				ret = put_blob(ctx, out_id, gg_kind, s->fits[i].app, data, len);
		}
	}
	free(index_kind);
	free(count_kind);
	free(gg_kind);
	return ret;
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

/* The fit's users: their histories to date and app codes (-1: an app the frame has not). */
struct fit_users {
	struct btyd_history *h;
	double *app;
	size_t n;
};

/*
 * The training users at the target horizon, as the features frame has them;
 * with_valid: and its validation users (every user mature at the target
 * horizon: the serving refit of btyd.serve_fit 2).
 */
static void training_users(const struct model_data *d, int with_valid, struct fit_users *out)
{
	const struct frame_col app = frame_col(&d->frame, "app_code");
	struct row_split users;
	size_t n;

	model_data_split_users(d, d->params.target_horizon, 0, &users);
	n = users.n_train + (with_valid ? users.n_valid : 0);
	out->n = n;
	out->h = xmalloc((n ? n : 1) * sizeof(*out->h));
	out->app = xmalloc((n ? n : 1) * sizeof(double));
	btyd_histories_to_date(d, users.train, users.n_train, out->h);
	if (with_valid)
		btyd_histories_to_date(d, users.valid, users.n_valid, out->h + users.n_train);
	for (size_t i = 0; i < users.n_train; i++)
		out->app[i] = frame_col_at(app, users.train[i]);
	for (size_t i = users.n_train; i < n; i++)
		out->app[i] = frame_col_at(app, users.valid[i - users.n_train]);
	row_split_release(&users);
}

/*
 * Users at least a day old at as_of, with their purchase days from the
 * registry as evaluate's baselines read them (btyd_days_read: days complete
 * at as_of only). skip_validation (btyd.fit_users 1): except those who are
 * validation users at some horizon, so the fit sees the users being scored
 * (most of them too young for the features frame) while select still judges
 * it on users it never saw. Without (the serving refit, btyd.serve_fit):
 * every one, the validation users' history before as_of included, as the
 * baselines are fitted; nothing judged on validation labels sees that fit.
 * The count read goes to metric `metric`.
 */
static int users_before_as_of(struct stage_ctx *ctx, const struct model_data *d, int skip_validation,
			      const char *metric, struct fit_users *out)
{
	const struct frame_col uid = frame_col(&d->frame, "uid");
	struct user_table users = { 0 };
	struct btyd_days days = { .as_of = d->as_of };
	struct strmap app_code;
	int64_t *slot;
	double *install;
	int ret = registry_users_load(ctx->reg, &users, &ctx->err);

	if (ret < 0)
		return ret;
	days.n_uids = users.n ? (size_t)users.uid[users.n - 1] : 0;
	days.slot = slot = xmalloc((days.n_uids ? days.n_uids : 1) * sizeof(int64_t));
	for (size_t u = 0; u < days.n_uids; u++)
		slot[u] = -1;
	for (size_t u = 0; u < users.n; u++)
		if (time_day_index(users.install_time[u], d->as_of) >= 1)
			slot[users.uid[u] - 1] = 0;
	/* a validation user's label window must not reach the fit select judges on it */
	for (size_t k = 0; k < d->params.horizons.n && skip_validation; k++) {
		struct row_split s;

		model_data_split_valid(d, d->params.horizons.v[k], 0, &s);
		for (size_t i = 0; i < s.n_valid; i++)
			slot[(size_t)frame_col_at(uid, s.valid[i]) - 1] = -1;
		row_split_release(&s);
	}
	strmap_init(&app_code);
	for (size_t a = 0; a < d->n_apps; a++)
		strmap_put(&app_code, d->apps[a], (int64_t)a);
	install = xmalloc((users.n ? users.n : 1) * sizeof(double));
	out->app = xmalloc((users.n ? users.n : 1) * sizeof(double));
	out->n = 0;
	for (size_t u = 0; u < users.n; u++) {
		int64_t a;

		if (slot[users.uid[u] - 1] < 0)
			continue;
		slot[users.uid[u] - 1] = (int64_t)out->n;
		install[out->n] = (double)users.install_time[u];
		out->app[out->n++] = strmap_get(&app_code, users.app_id[u], &a) ? (double)a : -1;
	}
	/* Not needed past here: freed before the days are read (bgnbd and pareto_nbd run together). */
	user_table_release(&users);
	days.install = install;
	days.n_slots = out->n;
	days.x = xcalloc(out->n ? out->n : 1, sizeof(double));
	days.t_x = xcalloc(out->n ? out->n : 1, sizeof(double));
	days.m_x = xcalloc(out->n ? out->n : 1, sizeof(double));
	ret = btyd_days_read(ctx->reg, &days, &ctx->err);
	out->h = xmalloc((out->n ? out->n : 1) * sizeof(*out->h));
	for (size_t k = 0; k < out->n; k++)
		out->h[k] = (struct btyd_history){
			days.x[k], days.t_x[k] / BTYD_DAYS_PER_WEEK,
			(double)time_day_index((int64_t)install[k], d->as_of) / BTYD_DAYS_PER_WEEK,
			days.m_x[k] };
	cJSON_AddNumberToObject(ctx->metrics, metric, (double)out->n);
	free(days.x);
	free(days.t_x);
	free(days.m_x);
	free(install);
	free(slot);
	strmap_release(&app_code);
	return ret;
}

/* Which fit: the one select and calibrate judge, or the serving refit (btyd.serve_fit). */
enum fit_for { FIT_JUDGED, FIT_SERVED };

/* The users the fit `which` sees (the stage's comment at the top of the file). */
static int fit_users_of(struct stage_ctx *ctx, const struct model_data *d, enum fit_for which,
			struct fit_users *out)
{
	if (which == FIT_SERVED && ctx->cfg->btyd.serve_fit == 2) {
		training_users(d, 1, out);
		cJSON_AddNumberToObject(ctx->metrics, "serve_fit_users", (double)out->n);
		return 0;
	}
	if (which == FIT_SERVED)
		return users_before_as_of(ctx, d, 0, "serve_fit_users", out);
	if (ctx->cfg->btyd.fit_users)
		return users_before_as_of(ctx, d, 1, "fit_users", out);
	training_users(d, 0, out);
	return 0;
}

/* What fit_users_of found none of, for the error: one phrase per branch there. */
static const char *fit_users_missing(const struct stage_ctx *ctx, enum fit_for which)
{
	if (which == FIT_SERVED && ctx->cfg->btyd.serve_fit == 2)
		return "training or validation user is mature at the target horizon";
	if (which == FIT_SERVED)
		return "user is a day old at as_of";
	if (ctx->cfg->btyd.fit_users)
		return "user a day old at as_of is without a validation label";
	return "training user is mature at the target horizon";
}

/* The pooled fit, then one per app with enough users. */
static int fit_all(struct stage_ctx *ctx, const struct model_data *d, enum fit_for which,
		   struct btyd_state *s)
{
	const struct btyd_count_model *kind = s->kind;
	cJSON *fits = cJSON_AddObjectToObject(ctx->metrics, which == FIT_SERVED ? "serve_fits" : "fits");
	struct btyd_history *mine = NULL;
	struct fit_users users = { 0 };
	int ret = fit_users_of(ctx, d, which, &users);

	if (ret == 0 && users.n == 0)
		ret = err_set(&ctx->err, LTV_EMODEL, "%s: no %s; pass a later --as-of", kind->name,
			      fit_users_missing(ctx, which));
	if (ret < 0) {
		free(users.h);
		free(users.app);
		return ret;
	}
	mine = xmalloc(users.n * sizeof(*mine));
	s->fits = xcalloc(d->n_apps + 1, sizeof(*s->fits));
	s->fits[0].app = xstrdup(BTYD_POOLED);
	s->n_fits = 1;
	ret = fit_one(kind, users.h, users.n, &s->fits[0], &ctx->err);
	if (ret == 0 && !s->fits[0].gg)
		ret = err_set(&ctx->err, LTV_EMODEL, "%s: too few users bought again (or their spend "
			      "has no finite mean) to fit Gamma-Gamma over every app", kind->name);
	if (ret == 0)
		add_fit_metrics(fits, kind, &s->fits[0], users.n);
	/* fits: the pooled one, then one per app */
	stage_progress(ctx, "fits", 1, d->n_apps + 1);
	for (size_t a = 0; a < d->n_apps && ret == 0; a++) {
		struct btyd_fit f = { 0 };
		struct ltv_err fit_err = { 0 };
		size_t n_mine = 0;

		stage_progress(ctx, "fits", a + 1, d->n_apps + 1);

		for (size_t i = 0; i < users.n; i++)
			if (users.app[i] == (double)a)
				mine[n_mine++] = users.h[i];
		if (n_mine < (size_t)ctx->cfg->btyd.min_app_users || n_mine == users.n)
			continue;
		if (fit_one(kind, mine, n_mine, &f, &fit_err) < 0) {
			LOG(LOG_WARN, "app %s: no %s of its own%s (%s); the pooled fit serves it",
			    d->apps[a], kind->name, which == FIT_SERVED ? " in the serving refit" : "",
			    fit_err.msg);
			kind->free_model(f.count);
			gamma_gamma_free(f.gg);
			continue;
		}
		f.app = xstrdup(d->apps[a]);
		strmap_put(&s->index, f.app, (int64_t)s->n_fits);
		s->fits[s->n_fits++] = f;
		add_fit_metrics(fits, kind, &f, n_mine);
	}
	free(users.h);
	free(users.app);
	free(mine);
	return ret;
}

/*
 * btyd.serve_fit 1: after the judged fit, a refit on every user's history
 * before as_of for serving (s->serve), the standard refit on all data once
 * the choice is made. Validation labels are inside that history, so nothing
 * judged reads it: the validation metrics above and select/calibrate use the
 * judged fit. A refit that fails leaves the judged fit to serve.
 */
static int fit_served(struct stage_ctx *ctx, const struct model_data *d, struct btyd_state *s)
{
	int ret;

	s->serve = btyd_state_new(s->kind);
	ret = fit_all(ctx, d, FIT_SERVED, s->serve);
	if (ret == LTV_EMODEL) {
		LOG(LOG_WARN, "%s: no serving refit (%s); the judged fit serves", s->kind->name,
		    ctx->err.msg);
		cJSON_AddStringToObject(ctx->metrics, "serve_not_fitted", ctx->err.msg);
		btyd_method_free(s->serve);
		s->serve = NULL;
		ret = 0;
	}
	return ret;
}

int btyd_stage_run(struct stage_ctx *ctx, const struct btyd_count_model *kind)
{
	struct btyd_state *s = btyd_state_new(kind);
	struct model_data d;
	struct row_split valid = { 0 };
	double *pred = NULL;
	int64_t out_id;
	int ret = model_data_load(ctx, 0, &d);

	if (ret < 0) {
		btyd_method_free(s);
		return ret;
	}
	ret = fit_all(ctx, &d, FIT_JUDGED, s);
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
		model_data_split_valid(&d, d.params.target_horizon, 0, &valid);
		pred = xmalloc((valid.n_valid ? valid.n_valid : 1) * sizeof(double));
		ret = btyd_method_predict(s, &d, valid.valid, valid.n_valid,
					  d.params.target_horizon, pred, NULL, &ctx->err);
	}
	if (ret == 0 && s->n_fits > 0)
		ret = stage_add_validation_metrics(ctx, &d, valid.valid, valid.n_valid, pred,
						   d.params.target_horizon);
	if (ret == 0 && s->n_fits > 0 && ctx->cfg->btyd.serve_fit)
		ret = fit_served(ctx, &d, s);
	if (ret == 0)
		ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = state_store(ctx, s, "", out_id);
	if (ret == 0 && s->serve)
		ret = state_store(ctx, s->serve, BTYD_SERVE_PREFIX, out_id);
	free(pred);
	row_split_release(&valid);
	model_data_release(&d);
	btyd_method_free(s);
	return ret;
}

int stage_bgnbd_run(struct stage_ctx *ctx)
{
	return btyd_stage_run(ctx, &btyd_bgnbd_kind);
}

int stage_pareto_nbd_run(struct stage_ctx *ctx)
{
	return btyd_stage_run(ctx, &btyd_pareto_nbd_kind);
}
