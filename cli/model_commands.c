/*
 * `ltvpipe models`, which lists, shows and moves the model-version aliases
 * (every move is kept in alias_history with who, when, from, to and why).
 * `ltvpipe predict` lives in predict_user.c, beside what the server shares.
 */
#include <math.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/score.h"

/* ---- models ---- */

struct table_print {
	FILE *out;
	int rows;
};

static int print_row(void *opaque, int n_cols, char **names, char **values)
{
	struct table_print *tp = opaque;

	if (tp->rows++ == 0) {
		for (int c = 0; c < n_cols; c++)
			fprintf(tp->out, "%s%s", c ? "\t" : "", names[c]);
		fputc('\n', tp->out);
	}
	for (int c = 0; c < n_cols; c++)
		fprintf(tp->out, "%s%s", c ? "\t" : "", values[c]);
	fputc('\n', tp->out);
	return 0;
}

static void print_metric(FILE *out, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsNumber(v))
		fprintf(out, " %13.4f", v->valuedouble);
	else
		fprintf(out, " %13s", "n/a");
}

/* The backtests `ltvpipe evaluate` stored beside version: per horizon and predictor, the headline metrics. */
static int print_evaluations(struct registry *reg, int64_t version, FILE *out, struct ltv_err *err)
{
	struct evaluation_row *rows = NULL;
	size_t n = 0;
	int ret = registry_evaluations_load(reg, version, &rows, &n, err);

	for (size_t i = 0; i < n && ret == 0; i++) {
		cJSON *m = cJSON_Parse(rows[i].metrics);
		const cJSON *h, *as_of = cJSON_GetObjectItemCaseSensitive(m, "as_of");

		fprintf(out, "\nevaluation %lld (%s): backtest as of %s, horizons %s, config %s\n  report %s\n",
			(long long)rows[i].id, rows[i].created_at,
			cJSON_IsString(as_of) ? as_of->valuestring : "?", rows[i].horizons,
			rows[i].config_hash, rows[i].report_dir);
		fprintf(out, "  %-8s %-18s %7s %13s %13s %13s %13s\n", "horizon", "predictor", "users",
			"campaign_WAPE", "norm_Gini", "after_WAPE", "after_Gini");
		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(m, "horizons")) {
			const cJSON *hz = cJSON_GetObjectItemCaseSensitive(h, "horizon"), *p;

			cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(h, "predictors")) {
				const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
				const cJSON *users = cJSON_GetObjectItemCaseSensitive(p, "users");
				const cJSON *after = cJSON_GetObjectItemCaseSensitive(p, "after_as_of");

				fprintf(out, "  %-8.0f %-18s %7.0f", cJSON_IsNumber(hz) ? hz->valuedouble : 0,
					cJSON_IsString(name) ? name->valuestring : "?",
					cJSON_IsNumber(users) ? users->valuedouble : 0);
				print_metric(out, p, "campaign_wape");
				print_metric(out, p, "normalized_gini");
				print_metric(out, after, "campaign_wape");
				print_metric(out, after, "normalized_gini");
				fputc('\n', out);
			}
		}
		cJSON_Delete(m);
	}
	evaluation_rows_free(rows, n);
	return ret;
}

/* Who moves an alias: the OS user running ltvpipe (cron's too, where $USER is unset). */
static const char *os_user(char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name && *pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else if (getenv("USER") && *getenv("USER"))
		snprintf(buf, size, "%s", getenv("USER"));
	else
		snprintf(buf, size, "uid %lu", (unsigned long)geteuid());
	return buf;
}

/*
 * Points production at version. A version that becomes production is no
 * longer a candidate: the candidate alias, when it named it, is removed, and
 * the move's reason says so.
 */
static int move_alias(const struct config *cfg, int64_t version, const char *why, FILE *out,
		      struct ltv_err *err)
{
	struct registry *reg = NULL;
	int64_t current = 0, candidate = 0;
	double ignored;
	char who[256], reason[1200];
	struct ltv_err none;
	/* Moving an alias never creates a registry: there would be no version to move it to. */
	int ret = registry_open_existing(cfg->registry.path, (int)cfg->registry.busy_timeout_s, &reg, err);

	if (ret < 0)
		goto out;
	ret = registry_begin(reg, err);
	if (ret == 0)
		ret = registry_model_version_error(reg, version, &ignored, err);
	if (ret < 0)
		goto out;
	if (registry_alias_get(reg, "production", &current, &none) == 0 && current == version) {
		fprintf(out, "model version %lld is already production\n", (long long)version);
		goto out;
	}
	snprintf(reason, sizeof(reason), "%s", why);
	if (registry_alias_get(reg, "candidate", &candidate, &none) == 0 && candidate == version) {
		snprintf(reason, sizeof(reason), "%s; it was the candidate, so candidate is now unset", why);
		ret = registry_alias_delete(reg, "candidate", err);
	}
	if (ret == 0)
		ret = registry_alias_set(reg, "production", version, os_user(who, sizeof(who)), reason, err);
	if (ret == 0)
		ret = registry_commit(reg, err);
	if (ret == 0)
		fprintf(out, "production: model version %lld → %lld (%s)\n", (long long)current,
			(long long)version, reason);
out:
	registry_close(reg); /* rolls back whatever was not committed */
	return ret;
}

/* "--reason TEXT" (or --reason=TEXT) after the first `from` arguments; anything else is refused. */
static int parse_reason(int argc, char **argv, int from, const char *sub, const char **out,
			struct ltv_err *err)
{
	for (int i = from; i < argc; i++) {
		if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc && *argv[i + 1]) {
			*out = argv[++i];
		} else if (strncmp(argv[i], "--reason=", 9) == 0 && argv[i][9]) {
			*out = argv[i] + 9;
		} else {
			return err_set(err, LTV_EUSAGE, "models %s: unexpected '%s'; the only option is "
				       "--reason TEXT (why, kept in the alias history)", sub, argv[i]);
		}
	}
	return 0;
}

static int parse_version(const char *text, int64_t *out, struct ltv_err *err)
{
	if (!text || parse_int64(text, out) < 0 || *out < 1)
		return err_set(err, LTV_EUSAGE, "models: expected a model version number, got '%s'",
			       text ? text : "nothing");
	return 0;
}

int models_run(const struct config *cfg, int argc, char **argv, FILE *out, struct ltv_err *err)
{
	const char *sub = argc > 0 ? argv[0] : "list";
	struct table_print tp = { out, 0 };
	struct registry *reg = NULL;
	int64_t version = 0;
	int ret, handled;

	ret = models_extra_run(cfg, argc, argv, out, &handled, err);
	if (handled)
		return ret;
	if (strcmp(sub, "promote") == 0 || strcmp(sub, "rollback") == 0) {
		const int promote = strcmp(sub, "promote") == 0;
		const char *reason = NULL;
		char why[1100];

		ret = parse_reason(argc, argv, promote ? 2 : 1, sub, &reason, err);
		if (ret == 0 && promote)
			ret = parse_version(argc > 1 ? argv[1] : NULL, &version, err);
		if (ret == 0 && !promote) {
			ret = registry_open_readonly(cfg->registry.path, &reg, err);
			if (ret == 0)
				ret = registry_alias_previous(reg, "production", &version, err);
			registry_close(reg);
		}
		snprintf(why, sizeof(why), "%s%s%s", promote ? "promoted by hand (ltvpipe models promote)"
			 : "rollback (ltvpipe models rollback)", reason ? ": " : "", reason ? reason : "");
		return ret < 0 ? ret : move_alias(cfg, version, why, out, err);
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "history") != 0)
		return err_set(err, LTV_EUSAGE, "models: '%s' is not one of list, show V, promote V, "
			       "rollback, history, compare A B", sub);
	if (strcmp(sub, "show") == 0 && (ret = parse_version(argc > 1 ? argv[1] : NULL, &version, err)) < 0)
		return ret;
	ret = registry_open_readonly(cfg->registry.path, &reg, err);
	if (ret == 0)
		ret = registry_read_begin(reg, err); /* one snapshot; ended by registry_close */
	if (ret < 0) {
		registry_close(reg);
		return ret;
	}
	if (strcmp(sub, "list") == 0) {
		ret = registry_report(reg, "model_versions", 0, print_row, &tp, err);
	} else if (strcmp(sub, "history") == 0) {
		ret = registry_report(reg, "alias_history", 0, print_row, &tp, err);
	} else {
		double wape;

		ret = registry_model_version_error(reg, version, &wape, err);
		if (ret == 0) {
			if (isnan(wape))
				fprintf(out, "model version %lld: no out-of-sample campaign WAPE recorded\n\n",
					(long long)version);
			else
				fprintf(out, "model version %lld: campaign WAPE at the target horizon, out of sample "
					"(validation cohorts cross-fitted by select) %.4f\n\n",
					(long long)version, wape);
			ret = registry_report(reg, "version_artefacts", version, print_row, &tp, err);
			if (ret == 0)
				ret = print_evaluations(reg, version, out, err);
		}
	}
	if (ret == 0 && tp.rows == 0)
		fprintf(out, "(none yet)\n");
	registry_close(reg);
	return ret;
}
