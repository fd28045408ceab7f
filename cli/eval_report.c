/*
 * The reports of `ltvpipe evaluate` (contract in include/ltv/evaluate.h): the
 * same numbers as JSON (for machines and the registry), as text (for a
 * terminal or an e-mail) and as one self-contained HTML page whose charts are
 * inline SVG drawn here, so the page opens anywhere without a network.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/evaluate.h"
#include "ltv/svg.h"
#include "ltv/timeutil.h"

const char *eval_series_label(const struct eval_series *s)
{
	static const struct { const char *name, *label; } labels[] = {
		{ "mix", "ltvpipe (selected, calibrated)" },
		{ "hurdle", "  method alone: hurdle" },
		{ "multiplier", "  method alone: multiplier" },
		{ "curves", "  method alone: curves" },
		{ "lookalike", "  method alone: lookalike" },
		{ "semantic", "  method alone: semantic" },
		{ "bgnbd", "  method alone: bgnbd" },
		{ "pareto_nbd", "  method alone: pareto_nbd" },
		{ "campaign_mean", "baseline a: campaign mean" },
		{ "day0_multiplier", "baseline b: day 0 x multiplier" },
		{ "baseline_bgnbd", "baseline c: BG/NBD + Gamma-Gamma" },
		{ "baseline_pareto_nbd", "baseline d: Pareto/NBD + Gamma-Gamma" },
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(labels[i].name, s->name) == 0)
			return labels[i].label;
	return s->name;
}

static const char *kind_name(enum eval_kind k)
{
	return k == EVAL_MIX ? "mix" : k == EVAL_METHOD ? "method" : "baseline";
}

/* ---- per-horizon aggregates shared by the reports ---- */

struct cohort_sum {
	size_t cohort, users;
	double actual, pred;
};

static const struct eval_series *find_series(const struct eval_horizon *eh, const char *name)
{
	for (size_t k = 0; k < eh->n_series; k++)
		if (strcmp(eh->series[k].name, name) == 0)
			return &eh->series[k];
	return NULL;
}

static int compare_cohort_users(const void *a, const void *b)
{
	const struct cohort_sum *x = a, *y = b;

	return x->users < y->users ? 1 : x->users > y->users ? -1 : (x->cohort > y->cohort) - (x->cohort < y->cohort);
}

/* Per campaign: users, actual and mix totals; the campaigns with users, the biggest first. */
static struct cohort_sum *cohort_sums(const struct eval_result *r, const struct eval_horizon *eh,
				      size_t *out_n)
{
	const struct eval_series *mix = find_series(eh, "mix");
	struct cohort_sum *all = xcalloc(r->n_cohorts + 1, sizeof(*all));
	size_t n = 0;

	for (size_t c = 0; c < r->n_cohorts; c++)
		all[c].cohort = c;
	for (size_t i = 0; i < eh->n; i++) {
		struct cohort_sum *c = &all[eh->cohort[i]];

		c->users++;
		c->actual += eh->actual[i];
		c->pred += mix ? mix->pred[i] : NAN;
	}
	for (size_t c = 0; c < r->n_cohorts; c++)
		if (all[c].users)
			all[n++] = all[c];
	qsort(all, n, sizeof(*all), compare_cohort_users);
	*out_n = n;
	return all;
}

struct tier_sum {
	size_t users;
	double actual, pred;
};

static void tier_sums(const struct eval_horizon *eh, struct tier_sum out[4])
{
	const struct eval_series *mix = find_series(eh, "mix");

	memset(out, 0, 4 * sizeof(*out));
	for (size_t i = 0; i < eh->n; i++) {
		int t = eh->tier[i] >= 1 && eh->tier[i] <= 3 ? eh->tier[i] : 3;

		out[t].users++;
		out[t].actual += eh->actual[i];
		out[t].pred += mix ? mix->pred[i] : NAN;
	}
}

static double payer_rate(const struct eval_horizon *eh)
{
	double payers = 0;

	for (size_t i = 0; i < eh->n; i++)
		payers += eh->payer[i] > 0;
	return eh->n ? payers / (double)eh->n : NAN;
}

static const char *cohort_app(const struct eval_result *r, size_t c)
{
	return r->data.apps[c / r->data.n_campaigns];
}

static const char *cohort_campaign(const struct eval_result *r, size_t c)
{
	return r->data.campaigns[c % r->data.n_campaigns];
}

/* ---- JSON ---- */

static void add_num(cJSON *obj, const char *key, double v)
{
	if (isnan(v) || isinf(v))
		cJSON_AddNullToObject(obj, key);
	else
		cJSON_AddNumberToObject(obj, key, v);
}

static cJSON *series_json(const struct eval_series *s, int detailed)
{
	const struct eval_scores *sc = &s->scores;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "kind", kind_name(s->kind));
	cJSON_AddNumberToObject(o, "users", (double)sc->n_used);
	add_num(o, "mean_pred", sc->mean_pred);
	add_num(o, "mean_actual", sc->mean_actual);
	add_num(o, "campaign_wape", sc->campaign.wape);
	add_num(o, "campaign_bias", sc->campaign.bias);
	cJSON_AddNumberToObject(o, "campaigns", (double)sc->campaign.n_groups);
	add_num(o, "normalized_gini", sc->gini);
	add_num(o, "spearman", sc->spearman);
	add_num(o, "rmsle", sc->rmsle);
	add_num(o, "mae", sc->mae);
	add_num(o, "r2", sc->r2);
	add_num(o, "decile_mape", sc->deciles.mape);
	add_num(o, "auc", sc->auc);
	{
		const struct eval_scores *af = &s->after;
		cJSON *a = cJSON_AddObjectToObject(o, "after_as_of");

		add_num(a, "mean_pred", af->mean_pred);
		add_num(a, "mean_actual", af->mean_actual);
		add_num(a, "campaign_wape", af->campaign.wape);
		add_num(a, "campaign_bias", af->campaign.bias);
		add_num(a, "normalized_gini", af->gini);
		add_num(a, "spearman", af->spearman);
		add_num(a, "rmsle", af->rmsle);
		add_num(a, "mae", af->mae);
		add_num(a, "r2", af->r2);
		add_num(a, "decile_mape", af->deciles.mape);
	}
	if (!detailed)
		return o;
	cJSON_AddStringToObject(o, "label", eval_series_label(s));
	cJSON_AddStringToObject(o, "note", s->note);
	{
		cJSON *dec = cJSON_AddArrayToObject(o, "deciles");
		cJSON *gain = cJSON_AddArrayToObject(o, "gain_curve");

		for (int k = 0; k < METRICS_N_DECILES; k++) {
			cJSON *d = cJSON_CreateObject();

			cJSON_AddNumberToObject(d, "users", (double)sc->deciles.count[k]);
			add_num(d, "mean_pred", sc->deciles.mean_pred[k]);
			add_num(d, "mean_actual", sc->deciles.mean_actual[k]);
			add_num(d, "ape", sc->deciles.ape[k]);
			cJSON_AddItemToArray(dec, d);
		}
		for (int k = 0; k < EVAL_GAIN_POINTS; k++)
			cJSON_AddItemToArray(gain, isnan(sc->gain_y[k]) ? cJSON_CreateNull()
									: cJSON_CreateNumber(sc->gain_y[k]));
	}
	return o;
}

static cJSON *horizon_json(const struct eval_result *r, const struct eval_horizon *eh, int detailed)
{
	cJSON *o = cJSON_CreateObject(), *series;

	cJSON_AddNumberToObject(o, "horizon", (double)eh->horizon);
	cJSON_AddNumberToObject(o, "users", (double)eh->n);
	cJSON_AddNumberToObject(o, "users_mature_at_as_of", (double)eh->n_train);
	add_num(o, "payer_rate_after_as_of", payer_rate(eh));
	add_num(o, "interval_coverage_users", eh->coverage_users);
	add_num(o, "interval_users_point_band", eh->point_band_users);
	add_num(o, "interval_coverage_users_open_band", eh->coverage_users_open);
	add_num(o, "interval_coverage_campaigns", eh->coverage_campaigns);
	cJSON_AddNumberToObject(o, "interval_coverage_n_campaigns", (double)eh->n_coverage_campaigns);
	cJSON_AddNumberToObject(o, "interval_campaign_groups", (double)eh->band_groups);
	add_num(o, "interval_campaign_tau2", eh->band_tau2);
	add_num(o, "interval_campaign_k", eh->band_k);
	add_num(o, "interval_campaign_q", eh->band_q);
	if (!isnan(eh->band_boot_q)) { /* calibrate.bootstrap_band */
		add_num(o, "interval_campaign_boot_tau2", eh->band_boot_tau2);
		add_num(o, "interval_campaign_boot_q", eh->band_boot_q);
	}
	series = cJSON_AddArrayToObject(o, "predictors");
	for (size_t k = 0; k < eh->n_series; k++)
		cJSON_AddItemToArray(series, series_json(&eh->series[k], detailed));
	if (detailed) {
		size_t n_cs;
		struct cohort_sum *cs = cohort_sums(r, eh, &n_cs);
		struct tier_sum ts[4];
		cJSON *camps = cJSON_AddArrayToObject(o, "campaigns");
		cJSON *tiers = cJSON_AddArrayToObject(o, "tiers");

		for (size_t i = 0; i < n_cs; i++) {
			cJSON *c = cJSON_CreateObject();

			cJSON_AddStringToObject(c, "app", cohort_app(r, cs[i].cohort));
			cJSON_AddStringToObject(c, "campaign", cohort_campaign(r, cs[i].cohort));
			cJSON_AddNumberToObject(c, "users", (double)cs[i].users);
			add_num(c, "mean_actual", cs[i].actual / (double)cs[i].users);
			add_num(c, "mean_pred_mix", cs[i].pred / (double)cs[i].users);
			cJSON_AddItemToArray(camps, c);
		}
		free(cs);
		tier_sums(eh, ts);
		for (int t = 1; t <= 3; t++) {
			cJSON *c = cJSON_CreateObject();

			cJSON_AddNumberToObject(c, "tier", t);
			cJSON_AddNumberToObject(c, "users", (double)ts[t].users);
			add_num(c, "mean_actual", ts[t].users ? ts[t].actual / (double)ts[t].users : NAN);
			add_num(c, "mean_pred_mix", ts[t].users ? ts[t].pred / (double)ts[t].users : NAN);
			cJSON_AddItemToArray(tiers, c);
		}
	}
	return o;
}

/* A BTYD baseline's fit: its count model's parameters (pareto: s, beta; else a, b) and Gamma-Gamma's. */
static void btyd_fit_json(cJSON *o, const struct eval_btyd_fit *f, int pareto)
{
	cJSON_AddBoolToObject(o, "fitted", f->ok);
	if (f->ok) {
		add_num(o, "r", f->r);
		add_num(o, "alpha", f->alpha);
		add_num(o, pareto ? "s" : "a", pareto ? f->s : f->a);
		add_num(o, pareto ? "beta" : "b", pareto ? f->beta : f->b);
		add_num(o, "log_lik", f->log_lik);
		add_num(o, "gg_p", f->p);
		add_num(o, "gg_q", f->q);
		add_num(o, "gg_gamma", f->gamma);
		add_num(o, "customers", f->n_customers);
		add_num(o, "repeat_buyers", f->n_repeaters);
	}
	cJSON_AddStringToObject(o, "note", f->note);
}

char *eval_report_json(const struct eval_result *r, int detailed)
{
	cJSON *o = cJSON_CreateObject(), *hs;
	char iso[32], *text;

	cJSON_AddStringToObject(o, "run_id", r->run_id);
	cJSON_AddStringToObject(o, "as_of", time_format_iso8601(r->as_of, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "latest_event", time_format_iso8601(r->latest_event, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "config_hash", r->config_hash);
	cJSON_AddStringToObject(o, "config", r->config_summary ? r->config_summary : "");
	cJSON_AddNumberToObject(o, "min_campaign_users", EVAL_MIN_CAMPAIGN_USERS);
	if (detailed) {
		if (r->production_version)
			cJSON_AddNumberToObject(o, "production_version", (double)r->production_version);
		else
			cJSON_AddNullToObject(o, "production_version");
		if (r->model_version)
			cJSON_AddNumberToObject(o, "model_version", (double)r->model_version);
		else
			cJSON_AddNullToObject(o, "model_version"); /* trained afresh as of as_of */
		cJSON_AddNumberToObject(o, "evaluation_id", (double)r->evaluation_id);
		if (r->command)
			cJSON_AddStringToObject(o, "command", r->command);
	}
	btyd_fit_json(cJSON_AddObjectToObject(o, "bgnbd"), &r->bgnbd, 0);
	btyd_fit_json(cJSON_AddObjectToObject(o, "pareto_nbd"), &r->pareto_nbd, 1);
	hs = cJSON_AddArrayToObject(o, "horizons");
	for (size_t h = 0; h < r->n_horizons; h++)
		cJSON_AddItemToArray(hs, horizon_json(r, &r->h[h], detailed));
	text = detailed ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* ---- verdicts: does ltvpipe beat each baseline? ---- */

/* Which is better on one metric (lower_better: WAPE); a tie is not a win. */
static const char *verdict(double mix, double base, int lower_better)
{
	if (isnan(mix) || isnan(base))
		return "n/a";
	return (lower_better ? mix < base : mix > base) ? "ltvpipe better" : "BASELINE BETTER";
}

/* ---- text ---- */

/* A metric to 4 decimals (signed when with_sign), "n/a" for NaN. */
static void fmt(char *buf, size_t size, double v, int with_sign)
{
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else if (with_sign)
		snprintf(buf, size, "%+.4f", v);
	else
		snprintf(buf, size, "%.4f", v);
}

static void text_table(FILE *f, const struct eval_horizon *eh, int after);
static void text_tail(FILE *f, const struct eval_horizon *eh, const struct eval_series *mix);

static void text_horizon(FILE *f, const struct eval_result *r, const struct eval_horizon *eh)
{
	const struct eval_series *mix = find_series(eh, "mix");
	char from[16], to[16];

	fprintf(f, "\n== Horizon %lld days ==\n", (long long)eh->horizon);
	fprintf(f, "Evaluated users: %zu acquired from %s to %s (the %lld days before as_of); payers after "
		"as_of (paying again before the horizon): %.2f%%.\n", eh->n,
		time_format_date(r->as_of - eh->horizon * SECONDS_PER_DAY, from, sizeof(from)),
		time_format_date(r->as_of, to, sizeof(to)), (long long)eh->horizon, 100 * payer_rate(eh));
	fprintf(f, "Users already %lld days old at as_of (what baselines a and b learn from): %zu.\n",
		(long long)eh->horizon, eh->n_train);
	if (eh->n == 0) {
		fprintf(f, "Nothing to evaluate: no user was acquired in the %lld days before as_of.\n",
			(long long)eh->horizon);
		return;
	}
	fprintf(f, "Campaign metrics over %zu campaigns with at least %d evaluated users.\n",
		mix ? mix->scores.campaign.n_groups : 0, EVAL_MIN_CAMPAIGN_USERS);
	fprintf(f, "ltvpipe's 80%% intervals hold %.1f%% of users' and %.1f%% of %zu campaigns' actual "
		"ltv_%lld\n(80%% is the aim; over %zu campaigns a true 80%% band lands within +-%.1f points, "
		"one standard\ndeviation). %.1f%% of users have the one-point band \"revenue so far\" (over "
		"80%% of their like\npaid nothing more: a band that holds no more revenue holds them all); "
		"the other users' bands\nhold %.1f%%.\n\n",
		100 * eh->coverage_users, 100 * eh->coverage_campaigns, eh->n_coverage_campaigns,
		(long long)eh->horizon, eh->n_coverage_campaigns,
		eh->n_coverage_campaigns ? 100 * sqrt(0.16 / (double)eh->n_coverage_campaigns) : NAN,
		100 * eh->point_band_users, 100 * eh->coverage_users_open);
	text_table(f, eh, 0);
	fprintf(f, "\nThe same on revenue after as_of only (actual and predicted minus the revenue seen\n"
		   "before as_of: what had still to happen):\n\n");
	text_table(f, eh, 1);
	fprintf(f, "\nNotes:\n");
	for (size_t k = 0; k < eh->n_series; k++)
		if (eh->series[k].note[0])
			fprintf(f, "  %s: %s\n", eval_series_label(&eh->series[k]) + (eh->series[k].kind == EVAL_METHOD ? 2 : 0),
				eh->series[k].note);
	if (!mix)
		return;
	fprintf(f, "\nVerdict at %lld days (all revenue to H; revenue after as_of only):\n", (long long)eh->horizon);
	for (size_t k = 0; k < eh->n_series; k++) {
		const struct eval_series *b = &eh->series[k];

		if (b->kind != EVAL_BASELINE)
			continue;
		fprintf(f, "  vs %s: normalized Gini %s / %s; campaign WAPE %s / %s\n", eval_series_label(b),
			verdict(mix->scores.gini, b->scores.gini, 0), verdict(mix->after.gini, b->after.gini, 0),
			verdict(mix->scores.campaign.wape, b->scores.campaign.wape, 1),
			verdict(mix->after.campaign.wape, b->after.campaign.wape, 1));
	}
	text_tail(f, eh, mix);
}

static void text_table(FILE *f, const struct eval_horizon *eh, int after)
{
	fprintf(f, "%-34s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %7s\n", "predictor", "mean_pred",
		"mean_act", "camp_WAPE", "camp_bias", "norm_Gini", "Spearman", "RMSLE", "MAE", "R2",
		"dec_MAPE", "AUC");
	for (size_t k = 0; k < eh->n_series; k++) {
		const struct eval_series *s = &eh->series[k];
		const struct eval_scores *sc = after ? &s->after : &s->scores;
		char v[11][32];

		fmt(v[0], 32, sc->mean_pred, 0);
		fmt(v[1], 32, sc->mean_actual, 0);
		fmt(v[2], 32, sc->campaign.wape, 0);
		fmt(v[3], 32, sc->campaign.bias, 1);
		fmt(v[4], 32, sc->gini, 0);
		fmt(v[5], 32, sc->spearman, 0);
		fmt(v[6], 32, sc->rmsle, 0);
		fmt(v[7], 32, sc->deciles.mape, 0);
		fmt(v[8], 32, sc->auc, 0);
		fmt(v[9], 32, sc->mae, 0);
		fmt(v[10], 32, sc->r2, 0);
		fprintf(f, "%-34s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %7s\n", eval_series_label(s),
			v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[9], v[10], v[7], v[8]);
	}
}

static void text_tail(FILE *f, const struct eval_horizon *eh, const struct eval_series *mix)
{
	fprintf(f, "\nDeciles of the ltvpipe prediction (mean predicted vs actual):\n");
	for (int d = 0; d < METRICS_N_DECILES; d++) {
		char p[32], a[32];

		fmt(p, sizeof(p), mix->scores.deciles.mean_pred[d], 0);
		fmt(a, sizeof(a), mix->scores.deciles.mean_actual[d], 0);
		fprintf(f, "  decile %2d  users %7zu  predicted %10s  actual %10s\n", d + 1,
			mix->scores.deciles.count[d], p, a);
	}
	{
		struct tier_sum ts[4];

		tier_sums(eh, ts);
		fprintf(f, "\nCalibration by tier (mean predicted vs actual):\n");
		for (int t = 1; t <= 3; t++)
			if (ts[t].users)
				fprintf(f, "  tier %d  users %7zu  predicted %10.4f  actual %10.4f\n", t,
					ts[t].users, ts[t].pred / (double)ts[t].users,
					ts[t].actual / (double)ts[t].users);
	}
}

int eval_report_text(const struct eval_result *r, const char *path, struct ltv_err *err)
{
	FILE *f = fopen(path, "w");
	char iso[32], latest[32];

	if (!f)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	fprintf(f, "ltvpipe evaluate — backtest as of %s (run %s)\n",
		time_format_iso8601(r->as_of, iso, sizeof(iso)), r->run_id);
	if (r->command)
		fprintf(f, "Arguments: %s (with the --config/--set values shown below)\n", r->command);
	if (r->model_version)
		fprintf(f, "Model version %lld, as stored in the registry, was trained as of %s, so training\n",
			(long long)r->model_version, iso);
	else
		fprintf(f, "The pipeline was trained as of %s into a scratch registry, so training\n", iso);
	fprintf(f, "read nothing later; each horizon's users were scored with their data before as_of,\n"
		   "and compared with their actual LTV from all the data (latest event %s).\n",
		time_format_iso8601(r->latest_event, latest, sizeof(latest)));
	fprintf(f, "Configuration: %s; config hash %s.\n", r->config_summary ? r->config_summary : "",
		r->config_hash);
	if (r->model_version)
		fprintf(f, "Stored as evaluation %lld of model version %lld.\n",
			(long long)r->evaluation_id, (long long)r->model_version);
	else
		fprintf(f, "Stored as evaluation %lld of run %s: the scratch model it trained, not a "
			"model version of the registry.\n", (long long)r->evaluation_id, r->run_id);
	fprintf(f, "Every prediction, baselines included, is floored at the revenue seen before as_of.\n"
		   "Money is in the currency of the input revenue column.\n");
	if (r->bgnbd.ok)
		fprintf(f, "BG/NBD: r %.4f, alpha %.4f, a %.4f, b %.4f, log-likelihood %.1f; Gamma-Gamma: p %.4f, "
			"q %.4f, gamma %.4f (%s).\n", r->bgnbd.r, r->bgnbd.alpha, r->bgnbd.a, r->bgnbd.b,
			r->bgnbd.log_lik, r->bgnbd.p, r->bgnbd.q, r->bgnbd.gamma, r->bgnbd.note);
	else
		fprintf(f, "BG/NBD + Gamma-Gamma: %s.\n", r->bgnbd.note);
	if (r->pareto_nbd.ok)
		fprintf(f, "Pareto/NBD: r %.4f, alpha %.4f, s %.4f, beta %.4f, log-likelihood %.1f; the same "
			"Gamma-Gamma (%s).\n", r->pareto_nbd.r, r->pareto_nbd.alpha, r->pareto_nbd.s,
			r->pareto_nbd.beta, r->pareto_nbd.log_lik, r->pareto_nbd.note);
	else
		fprintf(f, "Pareto/NBD + Gamma-Gamma: %s.\n", r->pareto_nbd.note);
	for (size_t h = 0; h < r->n_horizons; h++)
		text_horizon(f, r, &r->h[h]);
	if (fclose(f) != 0)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

/* ---- HTML with inline SVG ---- */

#define SVG_W 460.0
#define SVG_H 300.0
#define PAD_L 56.0
#define PAD_R 16.0
#define PAD_T 28.0
#define PAD_B 40.0

static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b",
				       "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

struct plot {
	FILE *f;
	struct svg_frame fr;
	double legend_x, legend_y; /* top-left corner of the legend */
};

static double px(const struct plot *p, double x)
{
	return svg_x(&p->fr, x);
}

static double py(const struct plot *p, double y)
{
	return svg_y(&p->fr, y);
}

static void plot_begin(struct plot *p, FILE *f, const char *title, const char *x_label,
		       const char *y_label, double x0, double x1, double y0, double y1, int x_ticks)
{
	*p = (struct plot){ f, { SVG_W, SVG_H, PAD_L, PAD_R, PAD_T, PAD_B, x0, x1, y0, y1, 0 },
			    PAD_L + 8, PAD_T + 6 };
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fprintf(f, "<text x=\"%.0f\" y=\"16\" font-size=\"13\" font-weight=\"bold\">", PAD_L);
	svg_text(f, title);
	fprintf(f, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		   "stroke=\"#999\"/>\n", PAD_L, PAD_T, SVG_W - PAD_L - PAD_R, SVG_H - PAD_T - PAD_B);
	svg_y_grid(f, &p->fr, "stroke=\"#eee\"", 4);
	for (int k = 0; x_ticks && k <= 4; k++) {
		double x = x0 + (x1 - x0) * k / 4;

		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3g</text>\n", px(p, x),
			SVG_H - PAD_B + 14, x);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (PAD_L + SVG_W - PAD_R) / 2,
		SVG_H - 6);
	svg_text(f, x_label);
	fprintf(f, "</text>\n<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 12 %.1f)\">",
		(PAD_T + SVG_H - PAD_B) / 2, (PAD_T + SVG_H - PAD_B) / 2);
	svg_text(f, y_label);
	fprintf(f, "</text>\n");
}

static void plot_legend(const struct plot *p, int k, const char *color, const char *name)
{
	fprintf(p->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
		      "<text x=\"%.1f\" y=\"%.1f\">", p->legend_x, p->legend_y + 14 * k, color,
		p->legend_x + 14, p->legend_y + 9 + 14 * k);
	svg_text(p->f, name);
	fprintf(p->f, "</text>\n");
}

/* Grouped bars: n groups of two values (predicted, actual). */
static void plot_bars(FILE *f, const char *title, const char *x_label, size_t n,
		      const char *const *group_names, const double *pred, const double *actual)
{
	struct plot p;
	double top = 0, slot;

	for (size_t i = 0; i < n; i++) {
		if (!isnan(pred[i]))
			top = fmax(top, pred[i]);
		if (!isnan(actual[i]))
			top = fmax(top, actual[i]);
	}
	plot_begin(&p, f, title, x_label, "mean LTV per user", 0, (double)n, 0, svg_nice_max(top), 0);
	slot = (SVG_W - PAD_L - PAD_R) / (double)(n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		const double v[2] = { pred[i], actual[i] };

		for (int k = 0; k < 2; k++) {
			double x = PAD_L + slot * (double)i + slot * (0.15 + 0.35 * k);

			if (isnan(v[k]))
				continue;
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
				   "<title>%.4g</title></rect>\n", x, py(&p, v[k]), slot * 0.35,
				py(&p, 0) - py(&p, v[k]), k ? "#444" : palette[0], v[k]);
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", PAD_L + slot * ((double)i + 0.5),
			SVG_H - PAD_B + 14);
		svg_text(f, group_names[i]);
		fprintf(f, "</text>\n");
	}
	plot_legend(&p, 0, palette[0], "predicted (ltvpipe)");
	plot_legend(&p, 1, "#444", "actual");
	fprintf(f, "</svg>\n");
}

static void plot_gain(FILE *f, const struct eval_horizon *eh)
{
	struct plot p;
	int legend = 0;

	plot_begin(&p, f, "Cumulative gain (users ranked by prediction)", "share of users",
		   "share of actual revenue", 0, 1, 0, 1, 1);
	/* Bottom right: the curves of heavy-tailed revenue hug the top left. */
	p.legend_x = PAD_L + 140;
	p.legend_y = SVG_H - PAD_B - 14 * 5 - 8;
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
		   "stroke-dasharray=\"4 3\"/>\n", px(&p, 0), py(&p, 0), px(&p, 1), py(&p, 1));
	{
		/* The perfect ordering: the ceiling every curve is measured against. */
		double x[EVAL_GAIN_POINTS], y[EVAL_GAIN_POINTS];
		struct ltv_err ignored;

		if (eh->n && metrics_gain_curve(eh->actual, eh->actual, eh->n, EVAL_GAIN_POINTS, x, y, NULL,
						&ignored) == 0 && !isnan(y[0])) {
			fprintf(f, "<polyline fill=\"none\" stroke=\"#000\" stroke-dasharray=\"2 2\" points=\"");
			for (int i = 0; i < EVAL_GAIN_POINTS; i++) {
				svg_xy(f, &p.fr, x[i], y[i]);
				fputc(' ', f);
			}
			fprintf(f, "\"/>\n");
			plot_legend(&p, legend++, "#000", "perfect ordering (actual)");
		}
	}
	for (size_t k = 0; k < eh->n_series; k++) {
		const struct eval_series *s = &eh->series[k];
		const char *color = palette[k % (sizeof(palette) / sizeof(palette[0]))];

		if (s->kind == EVAL_METHOD || isnan(s->scores.gain_y[0]))
			continue;
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%d\" points=\"", color,
			s->kind == EVAL_MIX ? 3 : 1);
		for (int i = 0; i < EVAL_GAIN_POINTS; i++) {
			svg_xy(f, &p.fr, (double)i / (EVAL_GAIN_POINTS - 1), s->scores.gain_y[i]);
			fputc(' ', f);
		}
		fprintf(f, "\"/>\n");
		plot_legend(&p, legend++, color, eval_series_label(s));
	}
	fprintf(f, "</svg>\n");
}

static void plot_campaigns(FILE *f, const struct eval_result *r, const struct eval_horizon *eh)
{
	size_t n_cs, n_shown = 0;
	struct cohort_sum *cs = cohort_sums(r, eh, &n_cs);
	size_t min_users = n_cs && cs[0].users >= EVAL_MIN_CAMPAIGN_USERS ? EVAL_MIN_CAMPAIGN_USERS : 1;
	double top = 0;
	struct plot p;
	char title[128];

	for (size_t i = 0; i < n_cs && cs[i].users >= min_users; i++, n_shown++)
		top = fmax(top, fmax(cs[i].actual, cs[i].pred) / (double)cs[i].users);
	top = svg_nice_max(top);
	snprintf(title, sizeof(title), "Campaigns (>= %zu users): predicted vs actual", min_users);
	plot_begin(&p, f, title, "actual mean LTV", "predicted mean LTV (ltvpipe)", 0, top, 0, top, 1);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
		   "stroke-dasharray=\"4 3\"/>\n", px(&p, 0), py(&p, 0), px(&p, top), py(&p, top));
	for (size_t i = 0; i < n_shown; i++) {
		double a = cs[i].actual / (double)cs[i].users, pr = cs[i].pred / (double)cs[i].users;
		double radius = 2 + 6 * sqrt((double)cs[i].users / (double)cs[0].users);

		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.6\"><title>",
			px(&p, a), py(&p, pr), radius, palette[0]);
		svg_text(f, cohort_app(r, cs[i].cohort));
		fputc('/', f);
		svg_text(f, cohort_campaign(r, cs[i].cohort));
		fprintf(f, ": %zu users, actual %.4g, predicted %.4g</title></circle>\n", cs[i].users, a, pr);
	}
	fprintf(f, "</svg>\n");
	free(cs);
}

static void html_table(FILE *f, const struct eval_horizon *eh, int after)
{
	static const char *const heads[] = { "predictor", "mean pred", "mean actual", "campaign WAPE",
					     "campaign bias", "norm. Gini", "Spearman", "RMSLE",
					     "decile MAPE", "AUC p_payer", "campaigns", "note" };
	size_t few = SIZE_MAX;

	fprintf(f, "<table>\n<tr>");
	for (size_t k = 0; k < sizeof(heads) / sizeof(heads[0]); k++)
		fprintf(f, "<th>%s</th>", heads[k]);
	fprintf(f, "</tr>\n");
	for (size_t k = 0; k < eh->n_series; k++) {
		const struct eval_series *s = &eh->series[k];
		const struct eval_scores *sc = after ? &s->after : &s->scores;
		const double v[9] = { sc->mean_pred, sc->mean_actual, sc->campaign.wape, sc->campaign.bias,
				      sc->gini, sc->spearman, sc->rmsle, sc->deciles.mape, sc->auc };

		fprintf(f, "<tr class=\"%s\"><td>", kind_name(s->kind));
		svg_text(f, eval_series_label(s));
		fprintf(f, "</td>");
		/* a campaign metric over a handful of campaigns is one or two campaigns' luck */
		const int thin = sc->campaign.n_groups < EVAL_FEW_CAMPAIGNS;

		for (int j = 0; j < 9; j++) {
			char buf[32];

			fmt(buf, sizeof(buf), v[j], 0);
			fprintf(f, "<td class=\"n%s\">%s%s</td>", thin && (j == 2 || j == 3) ? " thin" : "",
				buf, thin && (j == 2 || j == 3) && !isnan(v[j]) ? "*" : "");
		}
		fprintf(f, "<td class=\"n%s\">%zu</td><td>", thin ? " thin" : "", sc->campaign.n_groups);
		if (thin && sc->campaign.n_groups > 0 && sc->campaign.n_groups < few)
			few = sc->campaign.n_groups;
		svg_text(f, s->note);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n");
	if (few != SIZE_MAX)
		fprintf(f, "<p class=\"few-campaigns\">* Campaign WAPE and bias rest on fewer than %d "
			   "campaigns (as few as %zu with at least %d users): too few to judge a "
			   "method by; read the user-level metrics instead.</p>\n",
			EVAL_FEW_CAMPAIGNS, few, EVAL_MIN_CAMPAIGN_USERS);
}

/* The campaigns behind the campaign metrics, by name: users, actual and predicted mean LTV. */
static void html_campaigns(FILE *f, const struct eval_result *r, const struct eval_horizon *eh)
{
	size_t n_cs, shown = 0;
	struct cohort_sum *cs = cohort_sums(r, eh, &n_cs);

	fprintf(f, "<table class=\"campaigns\">\n<tr><th>app</th><th>campaign</th><th>users</th>"
		   "<th>mean actual LTV</th><th>mean predicted (ltvpipe)</th><th>error</th></tr>\n");
	for (size_t i = 0; i < n_cs && shown < 20; i++) {
		const double a = cs[i].actual / (double)cs[i].users, p = cs[i].pred / (double)cs[i].users;

		if (cs[i].users < EVAL_MIN_CAMPAIGN_USERS)
			continue;
		fprintf(f, "<tr><td>");
		svg_text(f, cohort_app(r, cs[i].cohort));
		fprintf(f, "</td><td>");
		svg_text(f, cohort_campaign(r, cs[i].cohort));
		fprintf(f, "</td><td class=\"n\">%zu</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f</td>"
			   "<td class=\"n\">", cs[i].users, a, p);
		if (a > 0)
			fprintf(f, "%+.0f%%", 100 * (p / a - 1));
		else
			fprintf(f, "n/a");
		fprintf(f, "</td></tr>\n");
		shown++;
	}
	fprintf(f, "</table>\n");
	if (shown == 0)
		fprintf(f, "<p>No campaign has %d users at this horizon: no campaign metric.</p>\n",
			EVAL_MIN_CAMPAIGN_USERS);
	free(cs);
}

/*
 * The sentence the page opens with, for a manager: at the target horizon
 * (else the longest evaluated), how far predicted campaign revenue was from
 * actual (campaign WAPE), its bias, and whether ltvpipe beat each baseline
 * on that metric. Every number is the table's.
 */
static void html_headline(FILE *f, const struct eval_result *r)
{
	const struct eval_horizon *eh = r->n_horizons ? &r->h[r->n_horizons - 1] : NULL;
	const struct eval_series *mix;
	size_t n_base = 0, n_beaten = 0, n_unknown = 0;
	char lost[256] = "";

	for (size_t h = 0; h < r->n_horizons; h++)
		if (r->h[h].horizon == r->target_horizon)
			eh = &r->h[h];
	mix = eh ? find_series(eh, "mix") : NULL;
	fprintf(f, "<p id=\"headline\" class=\"headline\">");
	if (!mix || isnan(mix->scores.campaign.wape)) {
		fprintf(f, "At D%lld no campaign had %d users to judge, so there is no campaign-level "
			   "verdict; see the user-level metrics below.</p>\n",
			eh ? (long long)eh->horizon : 0LL, EVAL_MIN_CAMPAIGN_USERS);
		return;
	}
	for (size_t k = 0; k < eh->n_series; k++) {
		const struct eval_series *b = &eh->series[k];

		if (b->kind != EVAL_BASELINE)
			continue;
		n_base++;
		if (isnan(b->scores.campaign.wape))
			n_unknown++;
		else if (mix->scores.campaign.wape < b->scores.campaign.wape)
			n_beaten++;
		else
			snprintf(lost + strlen(lost), sizeof(lost) - strlen(lost), "%s%s",
				 *lost ? ", " : "", eval_series_label(b));
	}
	fprintf(f, "At D%lld, predicted campaign revenue was off by %.0f%% (campaign WAPE over %zu "
		   "campaign%s), bias %+.0f%%; ", (long long)eh->horizon,
		100 * mix->scores.campaign.wape, mix->scores.campaign.n_groups,
		mix->scores.campaign.n_groups == 1 ? "" : "s", 100 * mix->scores.campaign.bias);
	if (n_base == 0)
		fprintf(f, "no baseline was computed");
	else if (n_beaten == n_base)
		fprintf(f, "beats every baseline");
	else if (!*lost)
		fprintf(f, "beats every baseline that could be computed (%zu of %zu)", n_beaten, n_base);
	else {
		fprintf(f, "does not beat ");
		svg_text(f, lost);
	}
	if (mix->scores.campaign.n_groups < EVAL_FEW_CAMPAIGNS)
		fprintf(f, " (only %zu campaign%s: too few to trust)", mix->scores.campaign.n_groups,
			mix->scores.campaign.n_groups == 1 ? "" : "s");
	fprintf(f, ".</p>\n");
}

static void html_horizon(FILE *f, const struct eval_result *r, const struct eval_horizon *eh)
{
	const struct eval_series *mix = find_series(eh, "mix");
	static const char *const decile_names[] = { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10" };
	static const char *const tier_names[] = { "tier 1", "tier 2", "tier 3" };
	struct tier_sum ts[4];
	double tp[3], ta[3];

	fprintf(f, "<h2>Horizon %lld days</h2>\n<p>%zu users acquired in the %lld days before as_of; "
		   "paying after as_of %.2f%%; %zu users were already %lld days old at "
		   "as_of (what baselines a and b learn from).</p>\n", (long long)eh->horizon, eh->n,
		(long long)eh->horizon, 100 * payer_rate(eh), eh->n_train, (long long)eh->horizon);
	html_table(f, eh, 0);
	fprintf(f, "<p>The same on revenue after as_of only (actual and predicted minus the revenue seen "
		   "before as_of: what had still to happen):</p>\n");
	html_table(f, eh, 1);
	fprintf(f, "<p>The campaigns with at least %d users, largest first:</p>\n",
		EVAL_MIN_CAMPAIGN_USERS);
	html_campaigns(f, r, eh);
	if (mix) {
		fprintf(f, "<ul>\n");
		for (size_t k = 0; k < eh->n_series; k++)
			if (eh->series[k].kind == EVAL_BASELINE)
				fprintf(f, "<li>vs %s: normalized Gini %s / %s; campaign WAPE %s / %s "
					   "(all revenue to H / revenue after as_of only)</li>\n",
					eval_series_label(&eh->series[k]),
					verdict(mix->scores.gini, eh->series[k].scores.gini, 0),
					verdict(mix->after.gini, eh->series[k].after.gini, 0),
					verdict(mix->scores.campaign.wape, eh->series[k].scores.campaign.wape, 1),
					verdict(mix->after.campaign.wape, eh->series[k].after.campaign.wape, 1));
		fprintf(f, "</ul>\n<div class=\"charts\">\n");
		plot_bars(f, "Deciles of predicted LTV: predicted vs actual", "decile of the ltvpipe prediction",
			  METRICS_N_DECILES, decile_names, mix->scores.deciles.mean_pred,
			  mix->scores.deciles.mean_actual);
		plot_gain(f, eh);
		plot_campaigns(f, r, eh);
		tier_sums(eh, ts);
		for (int t = 1; t <= 3; t++) {
			tp[t - 1] = ts[t].users ? ts[t].pred / (double)ts[t].users : NAN;
			ta[t - 1] = ts[t].users ? ts[t].actual / (double)ts[t].users : NAN;
		}
		plot_bars(f, "Calibration by tier: mean predicted vs actual", "campaign tier", 3, tier_names,
			  tp, ta);
		fprintf(f, "</div>\n");
	}
}

int eval_report_html(const struct eval_result *r, const char *path, struct ltv_err *err)
{
	FILE *f = fopen(path, "w");
	char iso[32], latest[32];

	if (!f)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	time_format_iso8601(r->as_of, iso, sizeof(iso));
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<title>ltvpipe evaluate — as of %s</title>\n<style>\n"
		   "body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}\n"
		   "table{border-collapse:collapse;font-size:13px;margin:8px 0}\n"
		   "td,th{border:1px solid #ccc;padding:3px 6px}td.n{text-align:right}\n"
		   "tr.mix{font-weight:bold;background:#eef4fb}tr.method td:first-child{padding-left:18px}\n"
		   "tr.baseline{background:#f7f7f7}.charts svg{margin:6px;border:1px solid #eee}\n"
		   ".headline{font-size:18px;background:#eef4fb;padding:10px 14px;border-radius:4px}\n"
		   "td.thin{color:#a66a00}.few-campaigns{color:#a66a00;font-size:13px}\n"
		   "</style></head><body>\n<h1>ltvpipe evaluate — backtest as of %s</h1>\n", iso, iso);
	html_headline(f, r);
	if (r->model_version)
		fprintf(f, "<p>Model version %lld, as stored in the registry, was trained as of %s "
			   "(training read nothing later).", (long long)r->model_version, iso);
	else
		fprintf(f, "<p>The pipeline was trained as of %s into a scratch registry (training "
			   "read nothing later).", iso);
	fprintf(f, " Each horizon's users were scored with their data before as_of and compared with "
		   "their actual LTV from all the data (latest event %s). Every prediction, baselines "
		   "included, is floored at the revenue seen before as_of.</p>\n<p>",
		time_format_iso8601(r->latest_event, latest, sizeof(latest)));
	svg_text(f, r->config_summary ? r->config_summary : "");
	fprintf(f, "; config hash <code>%s</code>; run <code>%s</code>; evaluation %lld", r->config_hash,
		r->run_id, (long long)r->evaluation_id);
	if (r->model_version)
		fprintf(f, " of model version %lld", (long long)r->model_version);
	else
		fprintf(f, " of the scratch model this run trained (not a model version of the registry)");
	fprintf(f, ".</p>\n");
	if (r->command) {
		fprintf(f, "<p>Command: <code>");
		svg_text(f, r->command);
		fprintf(f, "</code></p>\n");
	}
	fprintf(f, "<p>BG/NBD + Gamma-Gamma baseline: ");
	if (r->bgnbd.ok)
		fprintf(f, "r %.4f, &alpha; %.4f, a %.4f, b %.4f, log-likelihood %.1f; p %.4f, q %.4f, "
			   "&gamma; %.4f. ", r->bgnbd.r, r->bgnbd.alpha, r->bgnbd.a, r->bgnbd.b,
			r->bgnbd.log_lik, r->bgnbd.p, r->bgnbd.q, r->bgnbd.gamma);
	svg_text(f, r->bgnbd.note);
	fprintf(f, "</p>\n<p>Pareto/NBD + Gamma-Gamma baseline: ");
	if (r->pareto_nbd.ok)
		fprintf(f, "r %.4f, &alpha; %.4f, s %.4f, &beta; %.4f, log-likelihood %.1f; the same "
			   "Gamma-Gamma. ", r->pareto_nbd.r, r->pareto_nbd.alpha, r->pareto_nbd.s,
			r->pareto_nbd.beta, r->pareto_nbd.log_lik);
	svg_text(f, r->pareto_nbd.note);
	fprintf(f, "</p>\n");
	for (size_t h = 0; h < r->n_horizons; h++)
		html_horizon(f, r, &r->h[h]);
	fprintf(f, "</body></html>\n");
	if (fclose(f) != 0)
		return err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}
