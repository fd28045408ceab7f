/*
 * What `run` and `status` say about the model versions (contract in
 * include/ltv/model_compare.h): the aliases, the candidate against production
 * on the same users when that is possible, the latest drift report. Reads
 * the registry only.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/model_compare.h"
#include "ltv/psi.h"
#include "ltv/timeutil.h"

struct version_of_run {
	const char *run_id;
	int64_t version;
};

static int find_run_version(void *opaque, int n_cols, char **names, char **values)
{
	struct version_of_run *v = opaque;
	const char *run = NULL, *version = NULL;

	for (int c = 0; c < n_cols; c++) {
		if (strcmp(names[c], "run_id") == 0)
			run = values[c];
		else if (strcmp(names[c], "version") == 0)
			version = values[c];
	}
	if (run && version && strcmp(run, v->run_id) == 0)
		parse_int64(version, &v->version);
	return 0;
}

struct last_reason {
	int64_t version;
	char reason[1024];
	char alias[32];
};

static int find_reason(void *opaque, int n_cols, char **names, char **values)
{
	struct last_reason *r = opaque;
	const char *to = NULL, *reason = NULL, *alias = NULL;
	int64_t v;

	for (int c = 0; c < n_cols; c++) {
		if (strcmp(names[c], "to_version") == 0)
			to = values[c];
		else if (strcmp(names[c], "reason") == 0)
			reason = values[c];
		else if (strcmp(names[c], "alias") == 0)
			alias = values[c];
	}
	if (to && reason && alias && parse_int64(to, &v) == 0 && v == r->version) {
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
		snprintf(r->alias, sizeof(r->alias), "%s", alias);
	}
	return 0;
}

static void say_validation(struct registry *reg, int64_t candidate, int64_t production, FILE *out)
{
	struct ltv_err ignored;
	double wc = NAN, wp = NAN;

	registry_model_version_error(reg, candidate, &wc, &ignored);
	registry_model_version_error(reg, production, &wp, &ignored);
	fprintf(out, "  validation campaign WAPE (each on its own validation users, not comparable "
		"as such): candidate %.4f, production %.4f\n", wc, wp);
}

void models_say_after_run(struct registry *reg, const struct config *cfg, const char *run_id,
			  FILE *out)
{
	struct version_of_run made = { run_id, 0 };
	struct last_reason last = { 0 };
	struct ltv_err err = { 0 };
	struct compare_result cr;
	int64_t production = 0, candidate = 0;
	char line[1024];

	if (registry_report(reg, "model_versions", 0, find_run_version, &made, &err) < 0 ||
	    made.version == 0)
		return;
	last.version = made.version;
	registry_report(reg, "alias_history", 0, find_reason, &last, &err);
	registry_alias_get(reg, "production", &production, &err);
	registry_alias_get(reg, "candidate", &candidate, &err);
	if (production == made.version) {
		fprintf(out, "model version %lld is production: %s\n", (long long)made.version,
			last.reason[0] ? last.reason : "(no reason recorded)");
		return;
	}
	if (candidate != made.version)
		return;
	fprintf(out, "new candidate: model version %lld; production is model version %lld\n",
		(long long)made.version, (long long)production);
	if (strstr(last.reason, "paired comparison")) {
		fprintf(out, "  %s\n", last.reason);
		return;
	}
	if (compare_versions(reg, cfg, production, made.version, INT64_MIN, 0, &cr, &err) == 0) {
		compare_summary(&cr, line, sizeof(line));
		fprintf(out, "  %s: %s\n", compare_b_is_better(&cr) ? "better than production"
			: "not significantly better than production", line);
		fprintf(out, "  'ltvpipe models promote %lld' makes it production\n", (long long)made.version);
		return;
	}
	fprintf(out, "  no paired comparison with production yet: %s\n", err.msg);
	say_validation(reg, made.version, production, out);
}

static void say_version(struct registry *reg, const char *alias, FILE *out)
{
	struct ltv_err err = { 0 };
	struct monitor_row mon;
	struct artefact_info features;
	int64_t version;
	double wape = NAN;
	char iso[32];

	if (registry_alias_get(reg, alias, &version, &err) < 0) {
		fprintf(out, "  %-10s none\n", alias);
		return;
	}
	registry_model_version_error(reg, version, &wape, &err);
	fprintf(out, "  %-10s model version %lld", alias, (long long)version);
	if (registry_model_version_artefact(reg, version, "features", &features, &err) == 0) {
		fprintf(out, ", trained as of %s", time_format_date(features.as_of, iso, sizeof(iso)));
		artefact_info_release(&features);
	}
	fprintf(out, ", validation campaign WAPE %.4f", wape);
	if (registry_monitor_latest(reg, version, &mon, &err) == 0) {
		fprintf(out, "; monitor %s (max PSI %.3f) at as_of %s", mon.status, mon.max_psi,
			time_format_date(mon.as_of, iso, sizeof(iso)));
		monitor_row_release(&mon);
	} else {
		fprintf(out, "; never monitored");
	}
	fputc('\n', out);
}

void models_say_status(struct registry *reg, FILE *out)
{
	fprintf(out, "models ('ltvpipe models compare production candidate' compares them on the "
		"same users):\n");
	say_version(reg, "production", out);
	say_version(reg, "candidate", out);
}
