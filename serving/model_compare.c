/*
 * Two model versions on the same users (contract, and the choice of users,
 * in include/ltv/model_compare.h); `ltvpipe models compare` prints it
 * (cli/models_compare.c). Predictions come from serving_predict at the
 * scoring day S, built by model_data_for_scoring, which reads only days
 * complete at S; outcomes from a frame at T.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/serving.h"
#include "ltv/timeutil.h"

/* The served ltv at horizon of rows of d (n long, caller frees). */
static int served_at(const struct loaded_model *m, const struct model_data *d, const size_t *rows,
		     size_t n, int64_t horizon, double **out, struct ltv_err *err)
{
	const int h = feature_params_horizon_index(&m->params, horizon);
	struct served sv;
	int ret = serving_predict(m, d, rows, n, &sv, err);

	if (ret < 0)
		return err_prefix(err, "compare: model version %lld", (long long)m->version);
	*out = xmalloc((n ? n : 1) * sizeof(double));
	memcpy(*out, sv.ltv[h], n * sizeof(double));
	served_release(&sv);
	return 0;
}

/* Both versions loaded; the horizon both predict; S, T0 and the first install checked. */
static int plan(struct registry *reg, const struct loaded_model *ma, const struct loaded_model *mb,
		int64_t as_of, int64_t horizon, struct compare_result *r, struct ltv_err *err)
{
	int64_t latest;
	char iso[32], iso2[32], iso3[32];
	int ret = registry_default_as_of(reg, &latest, err);

	if (ret < 0)
		return err_prefix(err, "compare: the outcomes");
	r->horizon = horizon ? horizon : ma->params.target_horizon;
	if (feature_params_horizon_index(&ma->params, r->horizon) < 0 ||
	    feature_params_horizon_index(&mb->params, r->horizon) < 0)
		return err_set(err, LTV_EUSAGE, "compare: --horizon %lld: model version %lld does not "
			       "predict it; give a horizon both versions were trained with "
			       "(features.horizons)", (long long)r->horizon,
			       (long long)(feature_params_horizon_index(&ma->params, r->horizon) < 0 ? r->version_a
											    : r->version_b));
	r->as_of_a = model_artefact(ma, "features")->as_of;
	r->as_of_b = model_artefact(mb, "features")->as_of;
	r->as_of = as_of == INT64_MIN ? latest : as_of;
	if (r->as_of > latest)
		return err_set(err, LTV_EUSAGE, "compare: --as-of %s is after the latest event ingested "
			       "(%s), so outcomes there are not known; pass --as-of %s or earlier",
			       time_format_iso8601(r->as_of, iso, sizeof(iso)),
			       time_format_iso8601(latest, iso2, sizeof(iso2)), iso2);
	r->scored_at = r->as_of - r->horizon * SECONDS_PER_DAY;
	r->first_install = r->as_of_a > r->as_of_b ? r->as_of_a : r->as_of_b;
	if (r->first_install < r->scored_at - r->horizon * SECONDS_PER_DAY)
		r->first_install = r->scored_at - r->horizon * SECONDS_PER_DAY;
	if (r->scored_at <= r->first_install)
		return err_set(err, LTV_EUSAGE, "compare: horizon %lld is not complete yet for any user "
			       "installed after both versions' as_of (%s): their ltv_%lld is known from "
			       "%s on, and the outcomes end at %s; compare then (--as-of), or at a "
			       "shorter --horizon", (long long)r->horizon,
			       time_format_iso8601(r->first_install, iso, sizeof(iso)),
			       (long long)r->horizon,
			       time_format_iso8601(r->first_install + (r->horizon + 1) * SECONDS_PER_DAY,
						   iso2, sizeof(iso2)),
			       time_format_iso8601(r->as_of, iso3, sizeof(iso3)));
	return 0;
}

/* Users eligible in da, their predictions by both versions, actuals, campaigns; then the bootstrap. */
static int measure(struct registry *reg, const struct config *cfg, const struct loaded_model *ma,
		   const struct loaded_model *mb, struct compare_result *r, struct ltv_err *err)
{
	struct model_data da = { 0 }, db = { 0 }, dt = { 0 };
	size_t n = 0, n_b_uid = 0, n_t_uid = 0, *rows_a = NULL, *rows_b = NULL, *campaign = NULL;
	int64_t *b_of_uid = NULL, *t_of_uid = NULL;
	double *pa = NULL, *pb = NULL, *actual = NULL;
	const struct paired_param param = {
		.n_resamples = (size_t)cfg->models.compare_resamples, .seed = COMPARE_SEED,
		.min_campaign_users = (size_t)cfg->models.compare_min_campaign_users,
	};
	char iso[32];
	int ret = model_data_for_scoring(ma, reg, r->scored_at, &da, err);

	if (ret == 0)
		ret = model_data_for_scoring(mb, reg, r->scored_at, &db, err);
	if (ret == 0)
		ret = model_data_for_scoring(ma, reg, r->as_of, &dt, err);
	if (ret < 0)
		goto out;
	{
		const double *install = frame_column(&da.frame, "install_time");
		const double *uid = frame_column(&da.frame, "uid");
		const double *label = model_data_label(&dt, r->horizon);

		b_of_uid = model_data_rows_by_uid(&db, &n_b_uid);
		t_of_uid = model_data_rows_by_uid(&dt, &n_t_uid);
		rows_a = xmalloc((da.frame.n_rows ? da.frame.n_rows : 1) * sizeof(size_t));
		rows_b = xmalloc((da.frame.n_rows ? da.frame.n_rows : 1) * sizeof(size_t));
		actual = xmalloc((da.frame.n_rows ? da.frame.n_rows : 1) * sizeof(double));
		campaign = xmalloc((da.frame.n_rows ? da.frame.n_rows : 1) * sizeof(size_t));
		for (size_t i = 0; i < da.frame.n_rows; i++) {
			const size_t u = (size_t)uid[i];

			if (install[i] < (double)r->first_install || install[i] >= (double)r->scored_at)
				continue;
			if (u >= n_b_uid || b_of_uid[u] < 0 || u >= n_t_uid || t_of_uid[u] < 0 ||
			    !label || isnan(label[t_of_uid[u]])) {
				ret = err_set(err, LTV_EINTERNAL, "compare: user uid %zu installed before %s "
					      "has no row or no ltv_%lld", u,
					      time_format_iso8601(r->scored_at, iso, sizeof(iso)),
					      (long long)r->horizon);
				goto out;
			}
			rows_a[n] = i;
			rows_b[n] = (size_t)b_of_uid[u];
			actual[n] = label[t_of_uid[u]];
			campaign[n] = model_data_cohort(&da, i);
			n++;
		}
	}
	if (n == 0) {
		ret = err_set(err, LTV_EUSAGE, "compare: no user was installed between %s and %s, the "
			      "users both versions can be judged on at horizon %lld; compare at a later "
			      "--as-of", time_format_iso8601(r->first_install, iso, sizeof(iso)),
			      time_format_iso8601(r->scored_at, iso, sizeof(iso)), (long long)r->horizon);
		goto out;
	}
	ret = served_at(ma, &da, rows_a, n, r->horizon, &pa, err);
	if (ret == 0)
		ret = served_at(mb, &db, rows_b, n, r->horizon, &pb, err);
	if (ret == 0)
		ret = paired_bootstrap(actual, pa, pb, campaign, n, da.n_apps * da.n_campaigns, &param,
				       &r->pr, err);
	r->n_resamples = param.n_resamples;
out:
	model_data_release(&da);
	model_data_release(&db);
	model_data_release(&dt);
	free(rows_a);
	free(rows_b);
	free(campaign);
	free(b_of_uid);
	free(t_of_uid);
	free(pa);
	free(pb);
	free(actual);
	return ret;
}

int compare_versions(struct registry *reg, const struct config *cfg, int64_t a, int64_t b,
		     int64_t as_of, int64_t horizon, struct compare_result *out, struct ltv_err *err)
{
	struct loaded_model ma = { 0 }, mb = { 0 };
	int ret;

	memset(out, 0, sizeof(*out));
	out->version_a = a;
	out->version_b = b;
	/*
	 * Whether any user can be compared yet needs the versions' parameters
	 * alone, so their models load after: calibrate's auto-promotion, on
	 * retraining over the data production was trained on, had both versions'
	 * models loaded (0.2 CPU s at 1,000,000 users, at the end of the run) for
	 * a comparison of nobody.
	 */
	ret = model_load_config(reg, cfg, a, &ma, err);
	if (ret == 0)
		ret = model_load_config(reg, cfg, b, &mb, err);
	if (ret == 0)
		ret = plan(reg, &ma, &mb, as_of, horizon, out, err);
	if (ret == 0)
		ret = model_load_models(reg, &ma, err);
	if (ret == 0)
		ret = model_load_models(reg, &mb, err);
	if (ret == 0)
		ret = measure(reg, cfg, &ma, &mb, out, err);
	if (ma.version)
		model_release(&ma);
	if (mb.version)
		model_release(&mb);
	return ret;
}

int compare_b_is_better(const struct compare_result *r)
{
	const struct paired_metric_result *w = &r->pr.m[PAIRED_WAPE];

	return !isnan(w->diff) && w->diff < 0 && !isnan(w->p) && w->p < COMPARE_ALPHA;
}

void compare_summary(const struct compare_result *r, char *buf, size_t size)
{
	const struct paired_metric_result *w = &r->pr.m[PAIRED_WAPE];
	char iso[32];

	snprintf(buf, size, "paired comparison on %zu users installed after both versions' as_of, "
		 "ltv_%lld complete at %s: campaign WAPE %.4f (v%lld) vs %.4f (v%lld), difference "
		 "%+.4f [95%% %+.4f, %+.4f], p %.4f", r->pr.n, (long long)r->horizon,
		 time_format_date(r->as_of, iso, sizeof(iso)), w->b, (long long)r->version_b, w->a,
		 (long long)r->version_a, w->diff, w->lo, w->hi, w->p);
}
