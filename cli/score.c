/*
 * `ltvpipe score`: predicts ltv per horizon for every user not yet mature at
 * the target horizon, with the model version it is asked for (contract in
 * include/ltv/score.h). The model is used with the configuration its
 * artefacts were built with and the encodings its features stage learnt;
 * data come from the registry, or from files ingested into a scratch registry
 * that is thrown away, never into the training data.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/experiment.h"
#include "ltv/csvread.h"
#include "ltv/model_loader.h"
#include "ltv/output_set.h"
#include "ltv/scratch_registry.h"
#include "ltv/score.h"
#include "ltv/score_internal.h"
#include "ltv/serving.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

void scored_release(struct scored *s)
{
	free(s->rows);
	served_release(&s->sv);
	memset(s, 0, sizeof(*s));
}

/* The longest horizon at which row i's value is observed rather than predicted, or -1. */
static int64_t observed_up_to(const struct config *cfg, const struct scored *s, size_t i)
{
	int64_t up_to = -1;

	for (size_t h = 0; h < s->sv.n_horizons; h++)
		if (s->sv.observed[h][i])
			up_to = cfg->features.horizons.v[h];
	return up_to;
}

/* ",v" with 4 decimals, or "," alone for NaN (an empty field). */
static void write_number(FILE *f, double v)
{
	if (isnan(v))
		fputc(',', f);
	else
		fprintf(f, ",%.4f", v);
}

static void fmt_money(char *buf, size_t size, double v)
{
	if (isnan(v))
		buf[0] = '\0';
	else
		snprintf(buf, size, "%.4f", v);
}

static int write_users_csv(const struct loaded_model *m, const struct model_data *d,
			   const struct user_table *users, const struct scored *s,
			   struct output_set *set, const char *path, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const int ti = predictor_horizon_index(cfg, cfg->features.target_horizon);
	const double *uid = frame_column(&d->frame, "uid"), *age = frame_column(&d->frame, "age_days");
	const double *install = frame_column(&d->frame, "install_time"), *cost = frame_column(&d->frame, "cost");
	const double *app = frame_column(&d->frame, "app_code"), *campaign = frame_column(&d->frame, "campaign_code");
	FILE *f = stdout;
	/* "-": straight to stdout, for a pipe; there is no previous file to keep whole */
	int ret = strcmp(path, "-") == 0 ? 0 : output_set_add(set, path, &f, err);

	if (ret < 0)
		return ret;
	fprintf(f, "user_id,app_id,campaign,install_date,age_days,tier,method,p_payer");
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		fprintf(f, ",ltv_%lld", (long long)cfg->features.horizons.v[h]);
	fprintf(f, ",observed_up_to,ltv_raw_%lld,segment,cost,roas_%lld,ltv_%lld_p10,ltv_%lld_p90,"
		"p_alive,p_purchase_30d,risk_segment\n", (long long)cfg->features.target_horizon,
		(long long)cfg->features.target_horizon, (long long)cfg->features.target_horizon,
		(long long)cfg->features.target_horizon);
	for (size_t i = 0; i < s->n; i++) {
		size_t r = s->rows[i];
		char date[16], num[64];
		double target_ltv = s->sv.ltv[ti][i];

		csv_write_field(f, users->user_id[(size_t)uid[r] - 1]);
		fputc(',', f);
		csv_write_field(f, d->apps[(size_t)app[r]]);
		fputc(',', f);
		csv_write_field(f, d->campaigns[(size_t)campaign[r]]);
		fprintf(f, ",%s,%.0f,%d,%s%s,", time_format_date((int64_t)install[r], date, sizeof(date)),
			age[r], (int)d->tier[r], method_name(s->sv.method[i]), s->sv.fallback[i] ? " (fallback)" : "");
		if (!isnan(s->sv.p_payer[i]))
			fprintf(f, "%.4f", s->sv.p_payer[i]);
		for (size_t h = 0; h < cfg->features.horizons.n; h++)
			fprintf(f, ",%.4f", s->sv.ltv[h][i]);
		fmt_money(num, sizeof(num), cost[r]);
		if (observed_up_to(cfg, s, i) >= 0)
			fprintf(f, ",%lld", (long long)observed_up_to(cfg, s, i));
		else
			fputc(',', f);
		if (isnan(s->sv.raw[i]))
			fputc(',', f);
		else
			fprintf(f, ",%.4f", s->sv.raw[i]);
		fprintf(f, ",%s,%s,", predictor_segment(&m->pred, target_ltv), num);
		if (!isnan(cost[r]) && cost[r] > 0)
			fprintf(f, "%.4f", target_ltv / cost[r]);
		write_number(f, s->sv.ltv_lo[ti][i]);
		write_number(f, s->sv.ltv_hi[ti][i]);
		write_number(f, s->sv.p_alive[i]);
		write_number(f, s->sv.p_purchase_30d[i]);
		fprintf(f, ",%s\n", serving_risk_segment(s->sv.p_alive[i]));
	}
	return ret;
}

/* ---- campaign summary and report ---- */

struct campaign_sum {
	const char *app, *campaign;
	int tier;
	size_t users, users_with_cost;
	double spend;
	double revenue[PREDICTOR_MAX_HORIZONS];
	double revenue_lo[PREDICTOR_MAX_HORIZONS], revenue_hi[PREDICTOR_MAX_HORIZONS]; /* 80% */
	double future[PREDICTOR_MAX_HORIZONS]; /* the predicted part of revenue */
	double p_alive_sum;
	size_t p_alive_n;
	size_t by_method[METHOD_SLOTS];
};

/*
 * The first day the campaign's predicted cumulative ROAS reaches 1, reading
 * its revenue as linear between day 0 (nothing) and each horizon; -1 when
 * not within the longest horizon or without spend.
 */
static int64_t payback_day(const struct config *cfg, const struct campaign_sum *c)
{
	double prev_day = 0, prev_rev = 0;

	if (!(c->spend > 0))
		return -1;
	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		const double day = (double)cfg->features.horizons.v[h], rev = c->revenue[h];

		if (rev >= c->spend) {
			double t = rev > prev_rev ? (c->spend - prev_rev) / (rev - prev_rev) : 1;

			return (int64_t)ceil(prev_day + t * (day - prev_day));
		}
		prev_day = day;
		prev_rev = rev;
	}
	return -1;
}

static double campaign_p_alive(const struct campaign_sum *c)
{
	return c->p_alive_n ? c->p_alive_sum / (double)c->p_alive_n : NAN;
}

static int campaign_method(const struct campaign_sum *c)
{
	int best = 0;

	for (int k = 1; k < METHOD_SLOTS; k++)
		if (c->by_method[k] > c->by_method[best])
			best = k;
	return method_of_slot(best);
}

static struct campaign_sum *summarise(const struct loaded_model *m, const struct model_data *d,
				      const struct scored *s,
				      size_t n_horizons, size_t *out_n)
{
	const double *app = frame_column(&d->frame, "app_code"), *campaign = frame_column(&d->frame, "campaign_code");
	const double *cost = frame_column(&d->frame, "cost");
	const double *rev_to_date = frame_column(&d->frame, "rev_to_date");
	size_t n_cohorts = d->n_apps * d->n_campaigns;
	struct campaign_sum *all = xcalloc(n_cohorts + 1, sizeof(*all)), *out;
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		size_t r = s->rows[i], c = (size_t)app[r] * d->n_campaigns + (size_t)campaign[r];
		struct campaign_sum *cs = &all[c];

		cs->app = d->apps[(size_t)app[r]];
		cs->campaign = d->campaigns[(size_t)campaign[r]];
		cs->tier = (int)d->tier[r];
		cs->users++;
		if (!isnan(cost[r])) {
			cs->spend += cost[r];
			cs->users_with_cost++;
		}
		for (size_t h = 0; h < n_horizons; h++) {
			cs->revenue[h] += s->sv.ltv[h][i];
			if (!s->sv.observed[h][i])
				cs->future[h] += s->sv.ltv[h][i] - rev_to_date[r];
		}
		if (!isnan(s->sv.p_alive[i])) {
			cs->p_alive_sum += s->sv.p_alive[i];
			cs->p_alive_n++;
		}
		cs->by_method[method_slot(s->sv.method[i])]++;
	}
	out = xcalloc(n_cohorts + 1, sizeof(*out));
	for (size_t c = 0; c < n_cohorts; c++) {
		if (!all[c].users)
			continue;
		for (size_t h = 0; h < n_horizons; h++)
			serving_campaign_interval(m, h, all[c].revenue[h], all[c].future[h],
						  &all[c].revenue_lo[h], &all[c].revenue_hi[h]);
		out[n++] = all[c];
	}
	free(all);
	*out_n = n;
	return out;
}

static int write_campaigns_csv(const struct config *cfg, const struct campaign_sum *cs, size_t n,
			       struct output_set *set, const char *path, struct ltv_err *err)
{
	FILE *f = NULL;
	int ret = output_set_add(set, path, &f, err);

	if (ret < 0)
		return ret;
	fprintf(f, "app_id,campaign,tier,method,users,spend");
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		fprintf(f, ",revenue_%lld", (long long)cfg->features.horizons.v[h]);
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		fprintf(f, ",roas_%lld", (long long)cfg->features.horizons.v[h]);
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		fprintf(f, ",revenue_%lld_p10,revenue_%lld_p90,roas_%lld_p10,roas_%lld_p90",
			(long long)cfg->features.horizons.v[h], (long long)cfg->features.horizons.v[h],
			(long long)cfg->features.horizons.v[h], (long long)cfg->features.horizons.v[h]);
	fprintf(f, ",payback_day,mean_p_alive,risk_segment\n");
	for (size_t i = 0; i < n; i++) {
		csv_write_field(f, cs[i].app);
		fputc(',', f);
		csv_write_field(f, cs[i].campaign);
		fprintf(f, ",%d,%s,%zu,%.2f", cs[i].tier, method_name(campaign_method(&cs[i])), cs[i].users,
			cs[i].spend);
		for (size_t h = 0; h < cfg->features.horizons.n; h++)
			fprintf(f, ",%.2f", cs[i].revenue[h]);
		for (size_t h = 0; h < cfg->features.horizons.n; h++) {
			if (cs[i].spend > 0)
				fprintf(f, ",%.4f", cs[i].revenue[h] / cs[i].spend);
			else
				fputc(',', f);
		}
		for (size_t h = 0; h < cfg->features.horizons.n; h++) {
			const double spend = cs[i].spend > 0 ? cs[i].spend : NAN;

			write_number(f, cs[i].revenue_lo[h]);
			write_number(f, cs[i].revenue_hi[h]);
			write_number(f, cs[i].revenue_lo[h] / spend);
			write_number(f, cs[i].revenue_hi[h] / spend);
		}
		if (payback_day(cfg, &cs[i]) >= 0)
			fprintf(f, ",%lld", (long long)payback_day(cfg, &cs[i]));
		else
			fprintf(f, ",not within %lld", (long long)cfg->features.horizons.v[cfg->features.horizons.n - 1]);
		write_number(f, campaign_p_alive(&cs[i]));
		fprintf(f, ",%s\n", serving_risk_segment(campaign_p_alive(&cs[i])));
	}
	return 0;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int target_index;

static int compare_roas_desc(const void *a, const void *b)
{
	const struct campaign_sum *x = a, *y = b;
	double rx = x->spend > 0 ? x->revenue[target_index] / x->spend : -1;
	double ry = y->spend > 0 ? y->revenue[target_index] / y->spend : -1;

	return rx < ry ? 1 : rx > ry ? -1 : strcmp(x->campaign, y->campaign);
}

static void report_campaign_line(FILE *f, const struct campaign_sum *c, int ti)
{
	fprintf(f, "  %-16.16s %-36.36s %6zu %10.2f %10.2f %6.2f  %-10s %d\n", c->app, c->campaign,
		c->users, c->spend, c->revenue[ti], c->revenue[ti] / c->spend,
		method_name(campaign_method(c)), c->tier);
}

static void report_campaigns(FILE *f, struct campaign_sum *cs, size_t n, int ti, long long target,
			     size_t min_users)
{
	struct campaign_sum *ranked = xmalloc((n ? n : 1) * sizeof(*ranked));
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (cs[i].users >= min_users && cs[i].spend > 0)
			ranked[k++] = cs[i];
	target_index = ti;
	qsort(ranked, k, sizeof(*ranked), compare_roas_desc);
	fprintf(f, "\nCampaigns by predicted D%lld ROAS (campaigns with at least %zu users scored and "
		"known cost; %zu of %zu):\n", target, min_users, k, n);
	fprintf(f, "  %-16s %-36s %6s %10s %10s %6s  %-10s %s\n", "app", "campaign", "users", "spend",
		"pred_rev", "ROAS", "method", "tier");
	fprintf(f, " top:\n");
	for (size_t i = 0; i < k && i < 10; i++)
		report_campaign_line(f, &ranked[i], ti);
	fprintf(f, " bottom:\n");
	/* Never repeat a campaign the top list already showed. */
	for (size_t i = k > 20 ? k - 10 : (k > 10 ? 10 : k); i < k; i++)
		report_campaign_line(f, &ranked[i], ti);
	free(ranked);
}


/*
 * Users younger than the first snapshot age at as_of have shown less than any
 * training row did: the models serve them from the first snapshot, scaled by
 * the days left (predictor_age_blend). Say how many, so a campaign full of
 * them is read as provisional.
 */
static void report_partial_windows(FILE *f, const struct config *cfg, const struct model_data *d,
				   const struct scored *s)
{
	const double *age = frame_column(&d->frame, "age_days");
	const int64_t first = cfg->features.snapshots.v[0];
	size_t partial = 0;

	for (size_t i = 0; age && i < s->n; i++)
		partial += age[s->rows[i]] < (double)first;
	if (partial == 0)
		return;
	fprintf(f, "  of which %zu (%.1f%%) are under %lld days old, the youngest age the models "
		"were trained at:\n  their predictions extrapolate from that age; rescore them "
		"tomorrow (column age_days)\n", partial, 100.0 * (double)partial / (double)s->n,
		(long long)first);
}

static int write_report(const struct loaded_model *m, const struct model_data *d,
			const struct scored *s, struct campaign_sum *cs, size_t n_cs, int64_t as_of,
			struct output_set *set, const char *path, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const int ti = predictor_horizon_index(cfg, cfg->features.target_horizon);
	const long long target = (long long)cfg->features.target_horizon;
	const double *cost = frame_column(&d->frame, "cost");
	size_t segments[SEGMENT_CUTS + 1] = { 0 }, methods[METHOD_SLOTS] = { 0 }, fallbacks = 0;
	double spend = 0, *sorted = xmalloc((s->n ? s->n : 1) * sizeof(double));
	FILE *f = NULL;
	char iso[32];
	int ret = output_set_add(set, path, &f, err);

	if (ret < 0) {
		free(sorted);
		return ret;
	}
	for (size_t i = 0; i < s->n; i++) {
		const char *seg = predictor_segment(&m->pred, s->sv.ltv[ti][i]);

		segments[seg[0] == 'L' ? 0 : seg[0] == 'M' ? 1 : seg[0] == 'H' ? 2 : 3]++;
		methods[method_slot(s->sv.method[i])]++;
		fallbacks += (size_t)s->sv.fallback[i];
		spend += isnan(cost[s->rows[i]]) ? 0 : cost[s->rows[i]];
		sorted[i] = s->sv.ltv[ti][i];
	}
	qsort(sorted, s->n, sizeof(double), compare_double);
	fprintf(f, "ltvpipe score report — model version %lld, as_of %s\n", (long long)m->version,
		time_format_iso8601(as_of, iso, sizeof(iso)));
	fprintf(f, "Horizons in days:");
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		fprintf(f, " %lld", (long long)cfg->features.horizons.v[h]);
	fprintf(f, " (target %lld). Money is in the currency of the input revenue and cost columns.\n\n", target);
	fprintf(f, "Users scored (not yet %lld days old, the longest horizon): %zu in %zu campaigns\n",
		(long long)cfg->features.horizons.v[cfg->features.horizons.n - 1], s->n, n_cs);
	report_partial_windows(f, cfg, d, s);
	fprintf(f, "Spend on them: %.2f\n", spend);
	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		double rev = 0;

		for (size_t i = 0; i < s->n; i++)
			rev += s->sv.ltv[h][i];
		fprintf(f, "Predicted revenue by day %lld: %.2f (ROAS %s%.3f)\n",
			(long long)cfg->features.horizons.v[h], rev, spend > 0 ? "" : "n/a ",
			spend > 0 ? rev / spend : 0);
	}
	if (s->n) {
		double total = 0;

		for (size_t i = 0; i < s->n; i++)
			total += sorted[i];
		fprintf(f, "\nPredicted D%lld LTV per user: mean %.4f, median %.4f, p90 %.4f, p99 %.4f, max %.4f\n",
			target, total / (double)s->n, sorted[s->n / 2], sorted[(size_t)(0.9 * (double)(s->n - 1))],
			sorted[(size_t)(0.99 * (double)(s->n - 1))], sorted[s->n - 1]);
	}
	report_campaigns(f, cs, n_cs, ti, target, (size_t)cfg->select.min_validation_users);
	fprintf(f, "\nValue segments at D%lld (cut at %.4f / %.4f / %.4f):\n", target,
		m->pred.segment_cut[0], m->pred.segment_cut[1], m->pred.segment_cut[2]);
	{
		static const char *const names[] = { "Low", "Medium", "High", "VIP" };

		for (int k = 0; k <= SEGMENT_CUTS; k++)
			fprintf(f, "  %-7s %8zu (%5.1f%%)\n", names[k], segments[k],
				s->n ? 100.0 * (double)segments[k] / (double)s->n : 0);
	}
	fprintf(f, "\nMethod that served at D%lld:\n", target);
	for (int k = 0; k < METHOD_SLOTS; k++)
		if (methods[k])
			fprintf(f, "  %-14s %8zu (%5.1f%%)\n", method_name(method_of_slot(k)),
				methods[k], 100.0 * (double)methods[k] / (double)s->n);
	fprintf(f, "  of which served by a fallback because the chosen method had nothing: %zu\n", fallbacks);
	free(sorted);
	return 0;
}

int score_write_outputs(const struct loaded_model *m, const struct model_data *d,
			const struct user_table *users, const struct scored *s, int64_t as_of,
			const char *output, size_t *out_n_campaigns, struct ltv_err *err)
{
	const int to_stdout = strcmp(output, "-") == 0;
	struct output_set set;
	struct campaign_sum *cs;
	char *campaigns_path = to_stdout ? NULL : xasprintf("%s.campaigns.csv", output);
	char *report_path = to_stdout ? NULL : xasprintf("%s.report.txt", output);
	size_t n_cs = 0;
	int ret;

	output_set_init(&set);
	cs = summarise(m, d, s, m->cfg.features.horizons.n, &n_cs);
	ret = write_users_csv(m, d, users, s, &set, output, err);
	if (ret == 0 && !to_stdout)
		ret = write_campaigns_csv(&m->cfg, cs, n_cs, &set, campaigns_path, err);
	if (ret == 0 && !to_stdout)
		ret = write_report(m, d, s, cs, n_cs, as_of, &set, report_path, err);
	if (ret == 0 && to_stdout && fflush(stdout) != 0)
		ret = err_set(err, LTV_EIO, "cannot write the users CSV to stdout");
	if (ret == 0)
		ret = output_set_commit(&set, err);
	output_set_release(&set);
	free(cs);
	free(campaigns_path);
	free(report_path);
	*out_n_campaigns = n_cs;
	return ret;
}

/* ---- score_run ---- */

/* Ingests --users/--events into a scratch registry sr; nothing touches the real one. */
static int scratch_ingest(const struct config *model_cfg, const struct score_options *opts,
			  struct scratch_registry *sr, struct registry **out_reg, struct ltv_err *err)
{
	char *set_users = xasprintf("input.users=%s", opts->users_path);
	char *set_events = xasprintf("input.events=%s", opts->events_path);
	int ret = scratch_registry_init(sr, "ltvscore", model_cfg, err);

	if (ret == 0)
		ret = config_apply_override(&sr->cfg, set_users, err);
	if (ret == 0)
		ret = config_apply_override(&sr->cfg, set_events, err);
	if (ret == 0)
		ret = scratch_registry_ingest(sr, "score (scratch ingest)", err);
	if (ret == 0)
		ret = registry_open_readonly(sr->path, out_reg, err);
	free(set_users);
	free(set_events);
	return ret;
}

int score_run(const struct config *cfg, struct registry *reg, const struct score_options *opts,
	      FILE *out, struct ltv_err *err)
{
	struct registry *data_reg = NULL;
	struct loaded_model m = { 0 };
	struct model_data d = { 0 };
	struct scored s = { 0 };
	struct user_table users = { 0 };
	struct scratch_registry sr = { 0 };
	char *campaigns_path = NULL, *report_path = NULL, iso[32];
	size_t n_cs = 0;
	int64_t version, as_of = opts->as_of;
	int have_model = 0, to_stdout = 0, ret;
	double started = now_seconds();

	if (!opts->output)
		return err_set(err, LTV_EUSAGE, "score: --output F is required (the users CSV)");
	if (!opts->users_path != !opts->events_path)
		return err_set(err, LTV_EUSAGE, "score: give --users and --events together");
	ret = model_resolve(reg, opts->model, &version, err);
	if (ret == 0)
		ret = model_load(reg, cfg, version, &m, err);
	if (ret < 0)
		goto out;
	have_model = 1;
	data_reg = reg;
	if (opts->users_path) {
		ret = scratch_ingest(&m.cfg, opts, &sr, &data_reg, err);
		if (ret < 0)
			goto out;
	}
	if (as_of == INT64_MIN)
		if ((ret = registry_default_as_of(data_reg, &as_of, err)) < 0)
			err_prefix(err, "score");
	if (ret == 0) {
		/*
		 * Score shards hold whole cohorts (include/ltv/shard.h): curves levels a
		 * cohort from all its scored users. Only their rows are built; a shard
		 * with no cohort writes empty outputs, which merge-scores takes.
		 */
		ret = model_data_for_scoring_cohorts(&m, data_reg, as_of,
						     opts->shard.count ? &opts->shard : NULL, &d, err);
		if (ret == LTV_ENOTFOUND && opts->shard.count) {
			model_data_release(&d);
			memset(&d, 0, sizeof(d));
			ret = 0;
		}
	}
	if (ret == 0)
		ret = registry_users_load(data_reg, &users, err);
	if (ret < 0)
		goto out;
	{
		const double *age = frame_column(&d.frame, "age_days");
		size_t cap = 0;

		for (size_t i = 0; i < d.frame.n_rows; i++) {
			/* Every user younger than the longest horizon has something still to come. */
			if (age[i] >= (double)m.cfg.features.horizons.v[m.cfg.features.horizons.n - 1])
				continue;
			ARRAY_GROW(s.rows, s.n + 1, cap);
			s.rows[s.n++] = i;
		}
	}
	if (s.n > 0 || !opts->shard.count)
		ret = serving_predict(&m, &d, s.rows, s.n, &s.sv, err);
	/* A/B: without --model, a running experiment's candidate serves its share of users. */
	if (ret == 0 && !opts->model && (s.n > 0 || !opts->shard.count))
		ret = experiment_apply_to_scores(cfg, &m, data_reg, &d, &users, s.rows, s.n, as_of,
						 &s.sv, out, err);
	if (ret < 0)
		goto out;
	to_stdout = strcmp(opts->output, "-") == 0;
	ret = score_write_outputs(&m, &d, &users, &s, as_of, opts->output, &n_cs, err);
	if (ret == 0 && opts->shard.count)
		ret = score_shard_write(&m, &d, &users, &s, as_of, &opts->shard, opts->output, err);
	campaigns_path = to_stdout ? NULL : xasprintf("%s.campaigns.csv", opts->output);
	report_path = to_stdout ? NULL : xasprintf("%s.report.txt", opts->output);
	if (ret == 0)
		fprintf(out, "scored %zu users in %zu campaigns with model version %lld at as_of %s in %.2f s\n"
			"  users:     %s\n  campaigns: %s\n  report:    %s\n", s.n, n_cs,
			(long long)version, time_format_iso8601(as_of, iso, sizeof(iso)),
			now_seconds() - started, to_stdout ? "(stdout)" : opts->output,
			to_stdout ? "(not written with --output -)" : campaigns_path,
			to_stdout ? "(not written with --output -)" : report_path);
	if (ret == 0 && opts->json) {
		cJSON_AddNumberToObject(opts->json, "model_version", (double)version);
		cJSON_AddStringToObject(opts->json, "as_of", iso);
		cJSON_AddNumberToObject(opts->json, "users", (double)s.n);
		cJSON_AddNumberToObject(opts->json, "campaigns", (double)n_cs);
		cJSON_AddNumberToObject(opts->json, "target_horizon", (double)m.cfg.features.target_horizon);
		cJSON_AddStringToObject(opts->json, "users_csv", to_stdout ? "-" : opts->output);
		if (!to_stdout) {
			cJSON_AddStringToObject(opts->json, "campaigns_csv", campaigns_path);
			cJSON_AddStringToObject(opts->json, "report", report_path);
		}
	}
out:
	free(campaigns_path);
	free(report_path);
	scored_release(&s);
	user_table_release(&users);
	model_data_release(&d);
	if (have_model)
		model_release(&m);
	if (data_reg && data_reg != reg)
		registry_close(data_reg);
	scratch_registry_release(&sr);
	return ret;
}
