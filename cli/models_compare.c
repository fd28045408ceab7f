/*
 * `ltvpipe models compare A B`: two versions on the same users
 * (include/ltv/model_compare.h), printed as text or JSON. The models
 * subcommand table is cli/models_cli.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/timeutil.h"

static cJSON *number_or_null(double v)
{
	return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

/* The result as JSON text (caller frees). */
static char *compare_json(const struct compare_result *r)
{
	cJSON *o = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
	char iso[32], *text;

	cJSON_AddNumberToObject(o, "version_a", (double)r->version_a);
	cJSON_AddNumberToObject(o, "version_b", (double)r->version_b);
	cJSON_AddStringToObject(o, "as_of_a", time_format_iso8601(r->as_of_a, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "as_of_b", time_format_iso8601(r->as_of_b, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "outcomes_as_of", time_format_iso8601(r->as_of, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "scored_at", time_format_iso8601(r->scored_at, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "installed_from", time_format_iso8601(r->first_install, iso, sizeof(iso)));
	cJSON_AddNumberToObject(o, "horizon", (double)r->horizon);
	cJSON_AddNumberToObject(o, "users", (double)r->pr.n);
	cJSON_AddNumberToObject(o, "campaigns", (double)r->pr.n_campaigns);
	cJSON_AddNumberToObject(o, "resamples", (double)r->n_resamples);
	cJSON_AddNumberToObject(o, "seed", COMPARE_SEED);
	for (int k = 0; k < PAIRED_N_METRICS; k++) {
		const struct paired_metric_result *m = &r->pr.m[k];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddItemToObject(e, "a", number_or_null(m->a));
		cJSON_AddItemToObject(e, "b", number_or_null(m->b));
		cJSON_AddItemToObject(e, "difference", number_or_null(m->diff));
		cJSON_AddItemToObject(e, "ci95_low", number_or_null(m->lo));
		cJSON_AddItemToObject(e, "ci95_high", number_or_null(m->hi));
		cJSON_AddItemToObject(e, "p_value", number_or_null(m->p));
		cJSON_AddItemToObject(metrics, paired_metric_name((enum paired_metric)k), e);
	}
	cJSON_AddItemToObject(o, "metrics", metrics);
	cJSON_AddBoolToObject(o, "b_is_better", compare_b_is_better(r));
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

static void print_text(const struct compare_result *r, FILE *out)
{
	char s_iso[32], t_iso[32], f_iso[32];

	fprintf(out, "model version %lld (A) against %lld (B) at horizon %lld days\n",
		(long long)r->version_a, (long long)r->version_b, (long long)r->horizon);
	fprintf(out, "  %zu users in %zu campaigns, installed from %s (after both versions' as_of) "
		"to %s, scored as of %s, outcomes complete at %s\n", r->pr.n, r->pr.n_campaigns,
		time_format_date(r->first_install, f_iso, sizeof(f_iso)),
		time_format_date(r->scored_at, s_iso, sizeof(s_iso)), s_iso,
		time_format_date(r->as_of, t_iso, sizeof(t_iso)));
	fprintf(out, "  %-16s %9s %9s %10s %21s %8s\n", "metric", "A", "B", "B - A", "95% interval",
		"p");
	for (int k = 0; k < PAIRED_N_METRICS; k++) {
		const struct paired_metric_result *m = &r->pr.m[k];

		fprintf(out, "  %-16s %9.4f %9.4f %+10.4f [%+9.4f, %+9.4f] %8.4f\n",
			paired_metric_name((enum paired_metric)k), m->a, m->b, m->diff, m->lo, m->hi, m->p);
	}
	fprintf(out, "  paired bootstrap: %zu resamples of users within campaigns, seed %d; "
		"campaign metrics over campaigns with >= the configured minimum of users\n",
		r->n_resamples, COMPARE_SEED);
	fprintf(out, "  %s\n", compare_b_is_better(r)
		? "B is better: lower campaign WAPE with p < 0.05"
		: "no significant improvement of B over A in campaign WAPE (p >= 0.05 or B not lower)");
}

/* ---- ltvpipe models compare ---- */

int models_compare(const struct config *cfg, struct registry *reg, const struct compare_options *opts,
		   FILE *out, struct ltv_err *err)
{
	struct compare_result r;
	int64_t a = 0, b = 0;
	int ret = model_resolve(reg, opts->a, &a, err);

	if (ret == 0)
		ret = model_resolve(reg, opts->b, &b, err);
	if (ret == 0)
		ret = compare_versions(reg, cfg, a, b, opts->as_of, opts->horizon, &r, err);
	if (ret < 0)
		return ret;
	if (opts->json) {
		char *text = compare_json(&r);

		fprintf(out, "%s\n", text);
		free(text);
	} else {
		print_text(&r, out);
	}
	return 0;
}
