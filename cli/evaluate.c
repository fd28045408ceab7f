/*
 * `ltvpipe evaluate` (contract in include/ltv/evaluate.h). The honesty of the
 * backtest rests on two things done here and nowhere else: the pipeline is
 * trained by the ordinary runner with as_of = T into a scratch registry, and
 * the evaluated users are scored with model_data_for_scoring at the same T,
 * so both go through feature_build_base, which reads only user-days complete
 * at T. Only the actuals are built at T + the longest horizon. The main
 * registry is touched once, at the end, to store the metrics. With --model V
 * there is no training: version V is loaded from the main registry and T is
 * the as_of it was trained at, so the same guarantee holds by construction.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/evaluate.h"
#include "ltv/model_data.h"
#include "ltv/serving.h"
#include "ltv/log.h"
#include "ltv/model_loader.h"
#include "ltv/runner.h"
#include "ltv/scratch_registry.h"
#include "ltv/timeutil.h"

/* Config sections that define what the evaluated model is (the config hash). */
static const char *const hashed_sections[] = {
	"input", "columns", "features", "tiers", "hurdle", "multiplier", "curves",
	"lookalike", "semantic", "btyd", "select", "calibrate",
};

/* ---- metrics of one predictor ---- */

static void scores_init_nan(struct eval_scores *s)
{
	memset(s, 0, sizeof(*s));
	s->mean_pred = s->mean_actual = s->gini = s->spearman = s->rmsle = s->auc = NAN;
	s->mae = s->r2 = NAN;
	s->campaign.wape = s->campaign.bias = NAN;
	s->deciles.mape = NAN;
	for (int k = 0; k < METRICS_N_DECILES; k++)
		s->deciles.mean_pred[k] = s->deciles.mean_actual[k] = s->deciles.ape[k] = NAN;
	for (int k = 0; k < EVAL_GAIN_POINTS; k++)
		s->gain_y[k] = NAN;
}

int eval_score(const double *actual, const double *pred, const double *p_payer,
	       const double *payer, const size_t *campaign, size_t n, size_t n_campaigns,
	       size_t min_campaign_users, struct eval_scores *out, struct ltv_err *err)
{
	double gain_x[EVAL_GAIN_POINTS], sum_pred = 0, sum_actual = 0;
	size_t n_auc = 0;
	int ret;

	scores_init_nan(out);
	for (size_t i = 0; i < n; i++) {
		if (isnan(pred[i]) || isnan(actual[i]))
			continue;
		out->n_used++;
		sum_pred += pred[i];
		sum_actual += actual[i];
		n_auc += p_payer && payer && !isnan(p_payer[i]) && !isnan(payer[i]);
	}
	if (out->n_used == 0)
		return 0;
	out->mean_pred = sum_pred / (double)out->n_used;
	out->mean_actual = sum_actual / (double)out->n_used;
	{
		double abs_err = 0, sq_err = 0, sq_tot = 0;

		for (size_t i = 0; i < n; i++) {
			if (isnan(pred[i]) || isnan(actual[i]))
				continue;
			abs_err += fabs(pred[i] - actual[i]);
			sq_err += (pred[i] - actual[i]) * (pred[i] - actual[i]);
			sq_tot += (actual[i] - out->mean_actual) * (actual[i] - out->mean_actual);
		}
		out->mae = abs_err / (double)out->n_used;
		out->r2 = sq_tot > 0 ? 1 - sq_err / sq_tot : NAN;
	}
	ret = metrics_campaign_wape(actual, pred, campaign, n, n_campaigns, min_campaign_users,
				    &out->campaign, err);
	if (ret == 0)
		ret = metrics_normalized_gini(actual, pred, n, &out->gini, NULL, err);
	if (ret == 0)
		ret = metrics_spearman(actual, pred, n, &out->spearman, NULL, err);
	if (ret == 0)
		ret = metrics_rmsle(actual, pred, n, &out->rmsle, NULL, err);
	if (ret == 0)
		ret = metrics_decile_mape(actual, pred, n, &out->deciles, NULL, err);
	if (ret == 0)
		ret = metrics_gain_curve(actual, pred, n, EVAL_GAIN_POINTS, gain_x, out->gain_y, NULL, err);
	if (ret == 0 && n_auc > 0) {
		/* Only the rows the other metrics used: a payer label without a prediction is not scored. */
		double *labels = xmalloc(n * sizeof(double));

		for (size_t i = 0; i < n; i++)
			labels[i] = isnan(pred[i]) || isnan(actual[i]) ? NAN : payer[i];
		ret = metrics_auc(labels, p_payer, n, &out->auc, NULL, err);
		free(labels);
	}
	return ret;
}

/* ---- scratch training ---- */

/* The scratch registry's config (a copy of the user's) with --horizons applied. */
static int scratch_config(struct config *out, const struct evaluate_options *opts,
			  struct ltv_err *err)
{
	char *set_horizons = opts->horizons ? xasprintf("features.horizons=%s", opts->horizons) : NULL;
	int ret = 0;

	if (set_horizons)
		ret = config_apply_override(out, set_horizons, err);
	if (ret == 0 && set_horizons) {
		/* Keep the configured target when it is evaluated, else train on the shortest. */
		int keep = 0;

		for (size_t h = 0; h < out->features.horizons.n; h++)
			keep |= out->features.horizons.v[h] == out->features.target_horizon;
		if (!keep) {
			char *set_target = xasprintf("features.target_horizon=%lld",
						     (long long)out->features.horizons.v[0]);

			ret = config_apply_override(out, set_target, err);
			free(set_target);
		}
	}
	if (ret == 0)
		ret = config_validate(out, err);
	if (ret < 0)
		err_prefix(err, "evaluate: --horizons '%s'", opts->horizons ? opts->horizons : "(config)");
	free(set_horizons);
	return ret;
}

static int latest_event(const char *registry_path, int64_t *out, struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret = registry_open_readonly(registry_path, &reg, err);

	if (ret == 0 && (ret = registry_default_as_of(reg, out, err)) < 0)
		err_prefix(err, "evaluate");
	registry_close(reg);
	return ret;
}

/* The horizons a scratch training will use (a trained version's are in its params). */
static int64_t longest_horizon(const struct config *cfg)
{
	return cfg->features.horizons.v[cfg->features.horizons.n - 1];
}

/* Ingests the input into the scratch registry, picks T, trains through calibrate as of T. */
static int train_scratch(struct scratch_registry *sr, const struct evaluate_options *opts,
			 struct eval_result *r, struct ltv_err *err)
{
	const struct config *scratch = &sr->cfg;
	struct run_options train = { .from = "features", .to = "calibrate", .command = "ltvpipe evaluate (training as of T)" };
	const int64_t max_h = longest_horizon(scratch);
	char t_iso[32], latest_iso[32], limit_iso[32];
	int ret = scratch_registry_ingest(sr, "ltvpipe evaluate (scratch ingest)", err);

	if (ret == 0)
		ret = latest_event(sr->path, &r->latest_event, err);
	if (ret < 0)
		return ret;
	r->as_of = opts->as_of != INT64_MIN ? opts->as_of : r->latest_event - max_h * SECONDS_PER_DAY;
	time_format_iso8601(r->as_of, t_iso, sizeof(t_iso));
	time_format_iso8601(r->latest_event, latest_iso, sizeof(latest_iso));
	time_format_iso8601(r->latest_event - max_h * SECONDS_PER_DAY, limit_iso, sizeof(limit_iso));
	if (r->as_of + max_h * SECONDS_PER_DAY > r->latest_event)
		return err_set(err, LTV_EUSAGE, "evaluate: --as-of %s plus %lld days is after the latest event "
			       "(%s), so actual ltv_%lld would be incomplete; pass --as-of %s or earlier",
			       t_iso, (long long)max_h, latest_iso, (long long)max_h, limit_iso);
	train.as_of = r->as_of;
	LOG(LOG_INFO, "evaluate: training as of %s (latest event %s) in a scratch registry", t_iso, latest_iso);
	return runner_run(scratch, &train, stderr, err);
}

/* ---- predictions ---- */

/* The mix's predictions for the union of evaluated users, per horizon. */
struct mix_preds {
	double *ltv[PREDICTOR_MAX_HORIZONS], *p_payer[PREDICTOR_MAX_HORIZONS];
	double *lo[PREDICTOR_MAX_HORIZONS], *hi[PREDICTOR_MAX_HORIZONS]; /* 80% intervals */
};

static void mix_preds_release(struct mix_preds *x)
{
	for (size_t h = 0; h < PREDICTOR_MAX_HORIZONS; h++) {
		free(x->ltv[h]);
		free(x->p_payer[h]);
		free(x->lo[h]);
		free(x->hi[h]);
	}
}

/* The selected, calibrated mix exactly as `score` serves it (include/ltv/serving.h). */
static int predict_mix(const struct loaded_model *m, const struct model_data *d,
		       const size_t *rows, size_t n, struct mix_preds *out, struct ltv_err *err)
{
	struct served sv;
	int ret = serving_predict_with(m, d, rows, n, SERVING_PAYER_EVERY_HORIZON, &sv, err);

	for (size_t h = 0; ret == 0 && h < sv.n_horizons; h++) {
		/* Taken over from sv, which then frees only what is left. */
		out->ltv[h] = sv.ltv[h];
		out->p_payer[h] = sv.p_payer_h[h];
		out->lo[h] = sv.ltv_lo[h];
		out->hi[h] = sv.ltv_hi[h];
		sv.ltv[h] = sv.p_payer_h[h] = sv.ltv_lo[h] = sv.ltv_hi[h] = NULL;
	}
	if (ret == 0)
		served_release(&sv);
	return ret;
}

/*
 * The share of actuals inside the mix's 80% intervals: per user, and per
 * campaign with at least EVAL_MIN_CAMPAIGN_USERS evaluated users (its interval
 * from serving_campaign_interval, as score computes it).
 */
static void interval_coverage(const struct loaded_model *m, size_t hi, struct eval_horizon *eh,
			      const double *lo, const double *up, size_t n_cohorts)
{
	double *rev = xcalloc(n_cohorts + 1, sizeof(double)), *fut = xcalloc(n_cohorts + 1, sizeof(double));
	double *act = xcalloc(n_cohorts + 1, sizeof(double));
	size_t *cnt = xcalloc(n_cohorts + 1, sizeof(size_t)), inside = 0, n_user = 0, n_camp = 0, in_camp = 0;
	size_t n_point = 0, in_open = 0;
	const double slack = 1e-9;

	for (size_t i = 0; i < eh->n; i++) {
		const double pred = eh->series[0].pred[i];

		if (!isnan(lo[i])) {
			const int in = eh->actual[i] >= lo[i] - slack && eh->actual[i] <= up[i] + slack;

			n_user++;
			inside += in;
			if (lo[i] == up[i])
				n_point++;
			else
				in_open += in;
		}
		rev[eh->cohort[i]] += pred;
		fut[eh->cohort[i]] += pred - eh->rev_before[i];
		act[eh->cohort[i]] += eh->actual[i];
		cnt[eh->cohort[i]]++;
	}
	for (size_t c = 0; c < n_cohorts; c++) {
		double c_lo, c_hi;

		if (cnt[c] < EVAL_MIN_CAMPAIGN_USERS)
			continue;
		serving_campaign_interval(m, hi, rev[c], fut[c], &c_lo, &c_hi);
		if (isnan(c_lo))
			continue;
		n_camp++;
		in_camp += act[c] >= c_lo - slack && act[c] <= c_hi + slack;
	}
	eh->coverage_users = n_user ? (double)inside / (double)n_user : NAN;
	eh->point_band_users = n_user ? (double)n_point / (double)n_user : NAN;
	eh->coverage_users_open = n_user > n_point ? (double)in_open / (double)(n_user - n_point) : NAN;
	eh->coverage_campaigns = n_camp ? (double)in_camp / (double)n_camp : NAN;
	eh->n_coverage_campaigns = n_camp;
	eh->band_groups = m->pred.band[hi].n_groups;
	eh->band_tau2 = m->pred.band[hi].group_tau2;
	eh->band_k = m->pred.band[hi].group_k;
	eh->band_q = m->pred.band[hi].group_q;
	eh->band_boot_tau2 = m->pred.band[hi].boot_grid ? m->pred.band[hi].boot_tau2 : NAN;
	eh->band_boot_q = m->pred.band[hi].boot_grid ? m->pred.band[hi].boot_q : NAN;
	free(rev);
	free(fut);
	free(act);
	free(cnt);
}

static struct eval_series *add_series(struct eval_horizon *eh, const char *name, enum eval_kind kind)
{
	struct eval_series *s = &eh->series[eh->n_series++];

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->kind = kind;
	s->pred = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	return s;
}

/* Never below revenue before T; NaN stays NaN (no prediction). */
static void floor_series(struct eval_series *s, const struct eval_horizon *eh)
{
	for (size_t i = 0; i < eh->n; i++)
		if (!isnan(s->pred[i]))
			s->pred[i] = fmax(s->pred[i], eh->rev_before[i]);
}

/* One method alone: its prediction, the global median where it has none, then the floor. */
static int predict_method(const struct loaded_model *m, const struct model_data *d, int k,
			  const size_t *rows, struct eval_horizon *eh, struct ltv_err *err)
{
	const int hi = feature_params_horizon_index(&m->params, eh->horizon);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct eval_series *s = add_series(eh, method_table[k]->name, EVAL_METHOD);
	size_t fallbacks = 0;
	int ret;

	if (k == method_index("hurdle"))
		s->p_payer = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	ret = predictor_predict_method(&m->pred, k, d, rows, eh->n, eh->horizon, s->pred,
				       s->p_payer, err);
	if (ret < 0)
		return err_prefix(err, "%s", method_table[k]->name);
	for (size_t i = 0; i < eh->n; i++) {
		if (!isnan(s->pred[i]))
			continue;
		s->pred[i] = rev_window[rows[i]] + m->pred.global_median[hi];
		fallbacks++;
	}
	floor_series(s, eh);
	if (fallbacks)
		snprintf(s->note, sizeof(s->note), "no prediction for %zu of %zu users: global median "
			 "(%.4g) used", fallbacks, eh->n, m->pred.global_median[hi]);
	return 0;
}

/* Each series' metrics on revenue after as_of only (eval_series.after). */
static int score_after(const struct eval_result *r, struct eval_horizon *eh, struct ltv_err *err)
{
	double *actual = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	double *pred = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	int ret = 0;

	/* Both are >= 0 by construction (the floor; days before as_of are days < H); fmax only
	 * absorbs rounding. */
	for (size_t i = 0; i < eh->n; i++)
		actual[i] = fmax(eh->actual[i] - eh->rev_before[i], 0);
	for (size_t k = 0; k < eh->n_series && ret == 0; k++) {
		const struct eval_series *s = &eh->series[k];

		for (size_t i = 0; i < eh->n; i++)
			pred[i] = isnan(s->pred[i]) ? NAN : fmax(s->pred[i] - eh->rev_before[i], 0);
		ret = eval_score(actual, pred, NULL, NULL, eh->cohort, eh->n, r->n_cohorts,
				 EVAL_MIN_CAMPAIGN_USERS, &eh->series[k].after, err);
	}
	free(actual);
	free(pred);
	return ret;
}

/* Fills one horizon: its users, actuals and every predictor's predictions. */
static int build_horizon(const struct loaded_model *m, struct eval_result *r,
			 const struct eval_btyd *bg, const struct frame *actual_frame,
			 const int64_t *actual_row_of_uid, const size_t *union_rows, size_t n_union,
			 const struct mix_preds *mix, size_t hi, struct ltv_err *err)
{
	const struct model_data *d = &r->data;
	struct eval_horizon *eh = &r->h[r->n_horizons];
	const int64_t horizon = m->params.horizons.v[hi];
	const double start = (double)(r->as_of - horizon * SECONDS_PER_DAY);
	const double *install = frame_column(&d->frame, "install_time");
	const double *uid = frame_column(&d->frame, "uid");
	const double *rev_before = frame_column(&d->frame, "rev_to_date");
	const double *actual = NULL;
	size_t *rows = xmalloc((n_union ? n_union : 1) * sizeof(size_t)), *at = NULL;
	struct eval_series *s;
	int ret = 0;

	char label[32];

	label_name(horizon, label, sizeof(label));
	actual = frame_column(actual_frame, label);
	memset(eh, 0, sizeof(*eh));
	eh->horizon = horizon;
	eh->band_boot_tau2 = eh->band_boot_q = NAN;
	at = xmalloc((n_union ? n_union : 1) * sizeof(size_t));
	for (size_t i = 0; i < n_union; i++) {
		if (install[union_rows[i]] < start)
			continue;
		at[eh->n] = i;
		rows[eh->n++] = union_rows[i];
	}
	r->n_horizons++;
	eh->uid = xmalloc((eh->n ? eh->n : 1) * sizeof(int64_t));
	eh->actual = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	eh->payer = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	eh->rev_before = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	eh->cohort = xmalloc((eh->n ? eh->n : 1) * sizeof(size_t));
	eh->tier = xmalloc((eh->n ? eh->n : 1) * sizeof(int));
	for (size_t i = 0; i < eh->n; i++) {
		size_t row = rows[i];
		int64_t arow = actual_row_of_uid[(size_t)uid[row] - 1];

		eh->uid[i] = (int64_t)uid[row];
		eh->actual[i] = arow >= 0 ? actual[arow] : NAN;
		/* A payer pays between as_of and H: what p_payer (P(paying before H)) predicts. */
		eh->payer[i] = arow >= 0 && !isnan(actual[arow]) ? (actual[arow] - rev_before[row] > 1e-9) : NAN;
		eh->rev_before[i] = rev_before[row];
		eh->cohort[i] = model_data_cohort(d, row);
		eh->tier[i] = d->tier ? (int)d->tier[row] : 3;
		if (isnan(eh->actual[i])) {
			ret = err_set(err, LTV_EINTERNAL, "evaluate: user uid %lld has no actual ltv_%lld",
				      (long long)uid[row], (long long)horizon);
			goto out;
		}
	}
	s = add_series(eh, "mix", EVAL_MIX);
	s->p_payer = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
	{
		double *lo = xmalloc((eh->n ? eh->n : 1) * sizeof(double));
		double *up = xmalloc((eh->n ? eh->n : 1) * sizeof(double));

		for (size_t i = 0; i < eh->n; i++) {
			s->pred[i] = mix->ltv[hi][at[i]];
			s->p_payer[i] = mix->p_payer[hi][at[i]];
			lo[i] = mix->lo[hi][at[i]];
			up[i] = mix->hi[hi][at[i]];
		}
		interval_coverage(m, hi, eh, lo, up, r->n_cohorts);
		free(lo);
		free(up);
	}
	for (int k = 0; k < METHOD_COUNT && ret == 0; k++)
		ret = predict_method(m, d, k, rows, eh, err);
	if (ret < 0)
		goto out;
	s = add_series(eh, "campaign_mean", EVAL_BASELINE);
	eval_baseline_campaign_mean(d, horizon, rows, eh->n, s->pred, &eh->n_train);
	if (eh->n_train == 0)
		snprintf(s->note, sizeof(s->note), "no user was %lld days old at as_of: nothing to learn from",
			 (long long)horizon);
	floor_series(s, eh);
	s = add_series(eh, "day0_multiplier", EVAL_BASELINE);
	eval_baseline_window_multiplier(d, horizon, rows, eh->n, s->pred);
	if (eh->n_train == 0)
		snprintf(s->note, sizeof(s->note), "no user was %lld days old at as_of: nothing to learn from",
			 (long long)horizon);
	floor_series(s, eh);
	s = add_series(eh, "baseline_bgnbd", EVAL_BASELINE);
	ret = eval_btyd_predict(bg, EVAL_BTYD_BGNBD, d, horizon, rows, eh->n, s->pred, err);
	snprintf(s->note, sizeof(s->note), "%s", bg->bgnbd.note);
	s = add_series(eh, "baseline_pareto_nbd", EVAL_BASELINE);
	if (ret == 0)
		ret = eval_btyd_predict(bg, EVAL_BTYD_PARETO_NBD, d, horizon, rows, eh->n, s->pred, err);
	snprintf(s->note, sizeof(s->note), "%s", bg->pareto_nbd.note);
	for (size_t k = 0; k < eh->n_series && ret == 0; k++)
		ret = eval_score(eh->actual, eh->series[k].pred, eh->series[k].p_payer, eh->payer,
				 eh->cohort, eh->n, r->n_cohorts, EVAL_MIN_CAMPAIGN_USERS,
				 &eh->series[k].scores, err);
	if (ret == 0)
		ret = score_after(r, eh, err);
	if (ret < 0)
		err_prefix(err, "evaluate: horizon %lld", (long long)horizon);
out:
	free(rows);
	free(at);
	return ret;
}

/* ---- storing and printing ---- */

static void config_hash(const struct config *cfg, char out[HASH_HEX_LEN])
{
	struct hasher h;

	hasher_init(&h);
	for (size_t i = 0; i < sizeof(hashed_sections) / sizeof(hashed_sections[0]); i++) {
		char *text = config_section_canonical(cfg, hashed_sections[i]);

		hasher_add_str(&h, text);
		free(text);
	}
	hasher_hex(&h, out);
	hasher_release(&h);
}

/* Files the metrics in the main registry reg, in one write transaction. */
static int store_evaluation(struct registry *reg, struct eval_result *r, struct ltv_err *err)
{
	struct ltv_err none = { 0 };
	char *metrics = eval_report_json(r, 0), *horizons = NULL;
	size_t len = 0;
	int ret = 0;

	horizons = xcalloc(r->n_horizons * 24 + 1, 1);
	for (size_t h = 0; h < r->n_horizons; h++)
		len += (size_t)snprintf(horizons + len, 24, "%s%lld", h ? "," : "", (long long)r->h[h].horizon);
	if (ret == 0 && registry_alias_get(reg, "production", &r->production_version, &none) < 0)
		r->production_version = 0;
	if (ret == 0) {
		/*
		 * Without --model the model evaluated is the scratch one this run
		 * trained: the row is filed under the run, never under a registry
		 * version it did not evaluate.
		 */
		const struct evaluation_row row = {
			.run_id = r->run_id, .as_of = r->as_of, .horizons = horizons,
			.model_version = r->model_version,
			.config_hash = r->config_hash,
			.metrics = metrics, .report_dir = r->output_dir,
		};

		ret = registry_begin(reg, err);
		if (ret == 0)
			ret = registry_evaluation_insert(reg, &row, &r->evaluation_id, err);
		if (ret == 0)
			ret = registry_commit(reg, err);
		if (ret < 0)
			registry_rollback(reg);
	}
	free(metrics);
	free(horizons);
	return ret < 0 ? err_prefix(err, "evaluate: storing the results") : 0;
}

static int make_dirs(const char *path, struct ltv_err *err)
{
	char *dir = xstrdup(path);
	int ret = 0;

	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0777);
		*p = '/';
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		ret = err_set(err, LTV_EIO, "cannot create directory '%s': %s", dir, strerror(errno));
	free(dir);
	return ret;
}

static void fmt_metric(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else
		snprintf(buf, size, "%.4f", v);
}

static void print_summary(const struct eval_result *r, double seconds, FILE *out)
{
	char iso[32];

	if (r->model_version)
		fprintf(out, "evaluated model version %lld, trained as of %s, in %.1f s (training and "
			"scoring read nothing later)\n", (long long)r->model_version,
			time_format_iso8601(r->as_of, iso, sizeof(iso)), seconds);
	else
		fprintf(out, "evaluated as of %s in %.1f s (training and scoring read nothing later)\n",
			time_format_iso8601(r->as_of, iso, sizeof(iso)), seconds);
	for (size_t h = 0; h < r->n_horizons; h++) {
		const struct eval_horizon *eh = &r->h[h];

		fprintf(out, "  horizon %lld days: %zu users acquired in the %lld days before as_of, "
			"%zu campaigns with >= %d of them\n", (long long)eh->horizon, eh->n,
			(long long)eh->horizon, eh->n ? eh->series[0].scores.campaign.n_groups : 0,
			EVAL_MIN_CAMPAIGN_USERS);
		if (eh->n == 0) {
			fprintf(out, "    nothing to evaluate: pass an --as-of less than %lld days after "
				"some acquisitions\n", (long long)eh->horizon);
			continue;
		}
		fprintf(out, "    %-34s %13s %10s\n", "predictor", "campaign_WAPE", "norm_Gini");
		for (size_t k = 0; k < eh->n_series; k++) {
			char wape[32], gini[32];

			fmt_metric(wape, sizeof(wape), eh->series[k].scores.campaign.wape);
			fmt_metric(gini, sizeof(gini), eh->series[k].scores.gini);
			fprintf(out, "    %-34s %13s %10s\n", eval_series_label(&eh->series[k]), wape, gini);
		}
	}
	fprintf(out, "  report: %s/evaluation.html (.txt, .json)\n", r->output_dir);
	if (r->model_version)
		fprintf(out, "  stored as evaluation %lld of model version %lld\n",
			(long long)r->evaluation_id, (long long)r->model_version);
	else
		fprintf(out, "  stored as evaluation %lld of run %s: the scratch model it trained at "
			"as_of T, not a model version of the registry\n", (long long)r->evaluation_id,
			r->run_id);
}

/* ---- evaluate_run ---- */

void eval_result_release(struct eval_result *r)
{
	for (size_t h = 0; h < r->n_horizons; h++) {
		struct eval_horizon *eh = &r->h[h];

		for (size_t k = 0; k < eh->n_series; k++) {
			free(eh->series[k].pred);
			free(eh->series[k].p_payer);
		}
		free(eh->uid);
		free(eh->actual);
		free(eh->payer);
		free(eh->rev_before);
		free(eh->cohort);
		free(eh->tier);
	}
	free(r->config_summary);
	free(r->output_dir);
	free(r->command);
	user_table_release(&r->users);
	model_data_release(&r->data);
	memset(r, 0, sizeof(*r));
}

/* Users acquired in the longest horizon before T (every horizon's users are among them). */
static size_t *union_rows(const struct model_data *d, int64_t as_of, int64_t max_h, size_t *out_n)
{
	const double *install = frame_column(&d->frame, "install_time");
	const double start = (double)(as_of - max_h * SECONDS_PER_DAY);
	size_t *rows = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(size_t)), n = 0;

	for (size_t i = 0; i < d->frame.n_rows; i++)
		if (install[i] >= start && install[i] < (double)as_of)
			rows[n++] = i;
	*out_n = n;
	return rows;
}

/* Everything after training: score at T, actuals at T + max horizon, every predictor, metrics. */
static int evaluate_model(const struct loaded_model *m, struct registry *sreg,
			  struct eval_result *r, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const size_t n_h = m->params.horizons.n;
	const int64_t max_h = feature_params_max_horizon(&m->params);
	struct frame actual = { 0 };
	struct eval_btyd bg = { 0 };
	char **apps = NULL, **campaigns = NULL;
	size_t n_apps = 0, n_campaigns = 0, n_union = 0, *rows = NULL;
	struct mix_preds mix;
	int64_t *actual_row_of_uid = NULL;
	int ret;

	memset(&mix, 0, sizeof(mix));

	ret = model_data_for_scoring(m, sreg, r->as_of, &r->data, err);
	if (ret == 0)
		ret = registry_users_load(sreg, &r->users, err);
	if (ret == 0)
		ret = feature_build_base(sreg, cfg, r->as_of + max_h * SECONDS_PER_DAY, FEATURE_ROWS_AT_AGE,
					 &actual, &apps,
					 &n_apps, &campaigns, &n_campaigns, NULL, err);
	if (ret < 0)
		goto out;
	r->n_cohorts = r->data.n_apps * r->data.n_campaigns;
	rows = union_rows(&r->data, r->as_of, max_h, &n_union);
	if (n_union == 0) {
		char iso[32];

		ret = err_set(err, LTV_EUSAGE, "evaluate: no user was acquired in the %lld days before as_of "
			      "%s; pass another --as-of", (long long)max_h,
			      time_format_iso8601(r->as_of, iso, sizeof(iso)));
		goto out;
	}
	actual_row_of_uid = xmalloc((r->users.n ? r->users.n : 1) * sizeof(int64_t));
	for (size_t u = 0; u < r->users.n; u++)
		actual_row_of_uid[u] = -1;
	for (size_t i = 0; i < actual.n_rows; i++)
		actual_row_of_uid[(size_t)frame_column(&actual, "uid")[i] - 1] = (int64_t)i;
	ret = predict_mix(m, &r->data, rows, n_union, &mix, err);
	if (ret == 0)
		ret = eval_btyd_fit(sreg, &r->data, &bg, err);
	if (ret < 0)
		goto out;
	r->bgnbd = bg.bgnbd;
	r->pareto_nbd = bg.pareto_nbd;
	for (size_t h = 0; h < n_h && ret == 0; h++)
		ret = build_horizon(m, r, &bg, &actual, actual_row_of_uid, rows, n_union, &mix, h, err);
out:
	mix_preds_release(&mix);
	eval_btyd_release(&bg);
	free(actual_row_of_uid);
	free(rows);
	frame_release(&actual);
	frame_free_dict(apps, n_apps);
	frame_free_dict(campaigns, n_campaigns);
	return ret;
}

/* A model trained afresh as of T in the scratch registry sr (released by the caller). */
static int prepare_fresh(const struct config *cfg, const struct evaluate_options *opts,
			 struct scratch_registry *sr, struct registry **out_reg,
			 struct loaded_model *m, struct eval_result *r, struct ltv_err *err)
{
	int64_t version;
	int ret = scratch_registry_init(sr, "ltveval", cfg, err);

	if (ret < 0)
		return err_prefix(err, "evaluate");
	if (ret == 0)
		ret = scratch_config(&sr->cfg, opts, err);
	if (ret == 0)
		ret = train_scratch(sr, opts, r, err);
	if (ret == 0)
		ret = registry_open_readonly(sr->path, out_reg, err);
	if (ret == 0)
		ret = model_resolve(*out_reg, "production", &version, err);
	if (ret == 0)
		ret = model_load(*out_reg, &sr->cfg, version, m, err);
	return ret;
}

/* The as_of a loaded model was trained at (its features artefact's). */
static int64_t model_as_of(const struct loaded_model *m)
{
	for (size_t i = 0; i < MODEL_STAGES; i++)
		if (strcmp(m->art[i].name, "features") == 0)
			return m->art[i].as_of;
	return INT64_MIN;
}

/*
 * Version opts->model of the main registry, at the as_of it was trained at;
 * every horizon's actuals must be complete in the data ingested since.
 */
static int prepare_registry_model(const struct config *cfg, const struct evaluate_options *opts,
				  struct registry *reg, struct loaded_model *m,
				  struct eval_result *r, struct ltv_err *err)
{
	char t_iso[32], need_iso[32], latest_iso[32];
	int64_t version, max_h;
	int ret;

	if (opts->as_of != INT64_MIN || opts->horizons)
		return err_set(err, LTV_EUSAGE, "evaluate: --model evaluates a version at the as_of "
			       "and horizons it was trained with; drop --%s, or drop --model to train "
			       "afresh", opts->as_of != INT64_MIN ? "as-of" : "horizons");
	/* one snapshot until the version is evaluated; ended before its metrics are stored */
	ret = registry_read_begin(reg, err);
	if (ret == 0)
		ret = model_resolve(reg, opts->model, &version, err);
	if (ret == 0)
		ret = model_load(reg, cfg, version, m, err);
	if (ret == 0)
		ret = latest_event(cfg->registry.path, &r->latest_event, err);
	if (ret < 0)
		return ret;
	r->model_version = version;
	r->as_of = model_as_of(m);
	max_h = feature_params_max_horizon(&m->params);
	if (r->as_of == INT64_MIN)
		return err_set(err, LTV_EREGISTRY, "evaluate: model version %lld has no features "
			       "artefact with an as_of", (long long)version);
	time_format_iso8601(r->as_of, t_iso, sizeof(t_iso));
	if (r->as_of + max_h * SECONDS_PER_DAY > r->latest_event)
		return err_set(err, LTV_EUSAGE, "evaluate: model version %lld was trained as of %s; its "
			       "%lld-day outcomes need events through %s, and the registry's latest "
			       "is %s. Ingest newer data and evaluate it then, or backtest the same "
			       "config afresh with --as-of and --horizons instead of --model",
			       (long long)version, t_iso, (long long)max_h,
			       time_format_iso8601(r->as_of + max_h * SECONDS_PER_DAY, need_iso,
						   sizeof(need_iso)),
			       time_format_iso8601(r->latest_event, latest_iso, sizeof(latest_iso)));
	LOG(LOG_INFO, "evaluate: model version %lld, trained as of %s", (long long)version, t_iso);
	return 0;
}

static int write_reports(struct eval_result *r, struct ltv_err *err)
{
	char *path = xasprintf("%s/evaluation.json", r->output_dir);
	char *json = eval_report_json(r, 1);
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f || fputs(json, f) < 0 || fputc('\n', f) == EOF)
		ret = err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	if (f && fclose(f) != 0 && ret == 0)
		ret = err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	free(json);
	free(path);
	path = xasprintf("%s/evaluation.txt", r->output_dir);
	if (ret == 0)
		ret = eval_report_text(r, path, err);
	free(path);
	path = xasprintf("%s/evaluation.html", r->output_dir);
	if (ret == 0)
		ret = eval_report_html(r, path, err);
	free(path);
	return ret;
}

int evaluate_run(const struct config *cfg, struct registry *reg, const struct evaluate_options *opts,
		 FILE *out, struct eval_result *out_result, struct ltv_err *err)
{
	struct eval_result r = { 0 };
	struct scratch_registry sr = { 0 };
	struct registry *sreg = NULL;
	struct loaded_model m = { 0 };
	const double started = now_seconds();
	int ret;

	runner_make_run_id(r.run_id, sizeof(r.run_id));
	r.command = opts->command ? xstrdup(opts->command) : NULL;
	if (opts->model) {
		ret = prepare_registry_model(cfg, opts, reg, &m, &r, err);
		if (ret == 0)
			ret = evaluate_model(&m, reg, &r, err);
		registry_read_end(reg);
	} else {
		ret = prepare_fresh(cfg, opts, &sr, &sreg, &m, &r, err);
		if (ret == 0)
			ret = evaluate_model(&m, sreg, &r, err);
	}
	if (ret < 0)
		goto out;
	config_hash(&m.cfg, r.config_hash);
	r.target_horizon = m.params.target_horizon;
	r.config_summary = xasprintf("snapshots from %lld to %lld days, target horizon %lld, "
				     "validation_days %lld", (long long)m.params.snapshots.v[0],
				     (long long)m.params.snapshots.v[m.params.snapshots.n - 1],
				     (long long)m.params.target_horizon,
				     (long long)m.params.validation_days);
	r.output_dir = opts->output_dir ? xstrdup(opts->output_dir)
					: xasprintf("%s/eval-%s", cfg->run.log_dir, r.run_id);
	ret = make_dirs(r.output_dir, err);
	if (ret == 0)
		ret = store_evaluation(reg, &r, err);
	if (ret == 0)
		ret = write_reports(&r, err);
	if (ret == 0)
		print_summary(&r, now_seconds() - started, out);
out:
	if (m.version) /* 0: never loaded, or model_load released it on failure */
		model_release(&m);
	registry_close(sreg);
	scratch_registry_release(&sr);
	if (ret == 0 && out_result)
		*out_result = r;
	else
		eval_result_release(&r);
	return ret;
}

int evaluate_run_json(const struct config *cfg, struct registry *reg,
		      const struct evaluate_options *opts, struct ltv_err *err)
{
	struct eval_result r;
	int ret = evaluate_run(cfg, reg, opts, stderr, &r, err);
	char *json;

	if (ret < 0)
		return ret;
	/* the same document as DIR/evaluation.json, so a pipe need not find the directory */
	json = eval_report_json(&r, 1);
	printf("%s\n", json);
	free(json);
	eval_result_release(&r);
	return 0;
}
