/*
 * A/B experiments between model versions (contract, assignment and the
 * peeking guard in include/ltv/experiment.h). Subcommands are a table; every
 * check on the input runs before the registry is opened for writing, so a
 * refused start leaves it unchanged.
 */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/ab_assign.h"
#include "ltv/experiment.h"
#include "ltv/data_source.h"
#include "ltv/metrics.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

int experiment_serving_arm(const struct experiment_row *e, const char *user_id)
{
	return ab_is_candidate(e->salt, user_id, e->share);
}

/* ---- start ---- */

static int check_name(const char *name, struct ltv_err *err)
{
	size_t len = strlen(name);

	if (len == 0 || len >= sizeof(((struct experiment_row *)0)->name))
		return err_set(err, LTV_EUSAGE, "models experiment start: name '%s' must have 1 to 63 "
			       "characters", name);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-' && name[i] != '.')
			return err_set(err, LTV_EUSAGE, "models experiment start: name '%s': use letters, "
				       "digits, '_', '-' and '.' only", name);
	return 0;
}

static int parse_fraction(const char *flag, const char *text, int one_allowed, double *out,
			  struct ltv_err *err)
{
	if (parse_double(text, out) < 0 || !(*out > 0) || *out > 1 || (!one_allowed && *out >= 1))
		return err_set(err, LTV_EUSAGE, "models experiment start: %s '%s' must be a number in "
			       "(0, 1%s, e.g. 0.1", flag, text, one_allowed ? "]" : ")");
	return 0;
}

static int cmd_start(const struct config *cfg, struct registry *reg, int argc, char **argv, FILE *out,
		     struct ltv_err *err)
{
	static const struct option long_opts[] = {
		{ "candidate", required_argument, NULL, 'c' }, { "share", required_argument, NULL, 's' },
		{ "horizon", required_argument, NULL, 'h' },   { "min-users", required_argument, NULL, 'm' },
		{ "log-rate", required_argument, NULL, 'l' },  { NULL, 0, NULL, 0 },
	};
	struct experiment_row row = { .share = 0.1, .log_rate = 1, .min_users = 2000 };
	struct loaded_model mc = { 0 }, mt = { 0 };
	struct experiment_row running;
	struct ltv_err none;
	const char *candidate = NULL;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c': candidate = optarg; break;
		case 's': ret = parse_fraction("--share", optarg, 0, &row.share, err); break;
		case 'l': ret = parse_fraction("--log-rate", optarg, 1, &row.log_rate, err); break;
		case 'h':
			if (parse_int64(optarg, &row.horizon) < 0 || row.horizon < 1)
				ret = err_set(err, LTV_EUSAGE, "models experiment start: --horizon '%s' must "
					      "be a number of days >= 1", optarg);
			break;
		case 'm':
			if (parse_int64(optarg, &row.min_users) < 0 || row.min_users < 10)
				ret = err_set(err, LTV_EUSAGE, "models experiment start: --min-users '%s' "
					      "must be a whole number >= 10", optarg);
			break;
		default:
			ret = err_set(err, LTV_EUSAGE, "models experiment start: unknown option; see "
				      "'ltvpipe models --help'");
		}
		if (ret < 0)
			return ret;
	}
	if (argc - optind != 1 || !candidate)
		return err_set(err, LTV_EUSAGE, "models experiment start: expected NAME --candidate V "
			       "[--share 0.1] [--horizon H] [--min-users N] [--log-rate R]");
	snprintf(row.name, sizeof(row.name), "%s", argv[optind]);
	ret = check_name(argv[optind], err);
	snprintf(row.salt, sizeof(row.salt), "%s", row.name);
	if (ret == 0)
		ret = model_resolve(reg, candidate, &row.candidate, err);
	if (ret == 0)
		ret = registry_alias_get(reg, "production", &row.control, err);
	if (ret == 0 && row.candidate == row.control)
		ret = err_set(err, LTV_EUSAGE, "models experiment start: --candidate %s is model version "
			      "%lld, which is production already; give another version", candidate,
			      (long long)row.candidate);
	if (ret == 0 && registry_experiment_active(reg, &running, &none) == 0)
		ret = err_set(err, LTV_EUSAGE, "models experiment start: experiment '%s' is running; "
			      "stop it first ('ltvpipe models experiment stop %s')", running.name,
			      running.name);
	if (ret == 0 && registry_experiment_get(reg, row.name, &running, &none) == 0)
		ret = err_set(err, LTV_EUSAGE, "models experiment start: experiment '%s' exists already; "
			      "pick another name", row.name);
	if (ret == 0)
		ret = model_load(reg, cfg, row.control, &mc, err);
	if (ret == 0)
		ret = model_load(reg, cfg, row.candidate, &mt, err);
	if (ret == 0 && row.horizon == 0)
		row.horizon = mc.params.target_horizon;
	if (ret == 0 && (mc.params.horizons.n != mt.params.horizons.n ||
			 feature_params_horizon_index(&mc.params, row.horizon) < 0 ||
			 feature_params_horizon_index(&mt.params, row.horizon) < 0))
		ret = err_set(err, LTV_EUSAGE, "models experiment start: model versions %lld and %lld "
			      "must predict the same horizons, horizon %lld among them (--horizon)",
			      (long long)row.control, (long long)row.candidate, (long long)row.horizon);
	for (size_t h = 0; ret == 0 && h < mc.params.horizons.n; h++)
		if (mc.params.horizons.v[h] != mt.params.horizons.v[h])
			ret = err_set(err, LTV_EUSAGE, "models experiment start: model versions %lld and "
				      "%lld predict different horizons", (long long)row.control,
				      (long long)row.candidate);
	if (ret == 0)
		ret = registry_begin(reg, err);
	if (ret == 0) {
		ret = registry_experiment_insert(reg, &row, err);
		if (ret == 0)
			ret = registry_commit(reg, err);
		if (ret < 0)
			registry_rollback(reg);
	}
	if (ret == 0)
		fprintf(out, "experiment %s started: %.4g of users (by a hash of user_id salted with '%s') "
			"scored by candidate model version %lld, the others by production %lld; %.4g of "
			"users logged; the report tests ltv_%lld once %lld users per arm have it\n",
			row.name, row.share, row.salt, (long long)row.candidate, (long long)row.control,
			row.log_rate, (long long)row.horizon, (long long)row.min_users);
	if (mc.version)
		model_release(&mc);
	if (mt.version)
		model_release(&mt);
	return ret;
}

/* ---- stop, list ---- */

static int cmd_stop(const struct config *cfg, struct registry *reg, int argc, char **argv, FILE *out, struct ltv_err *err)
{
	int ret;

	(void)cfg;
	if (argc != 2)
		return err_set(err, LTV_EUSAGE, "models experiment stop: expected NAME");
	ret = registry_begin(reg, err);
	if (ret == 0) {
		ret = registry_experiment_stop(reg, argv[1], err);
		if (ret == 0)
			ret = registry_commit(reg, err);
		if (ret < 0)
			registry_rollback(reg);
	}
	if (ret == 0)
		fprintf(out, "experiment %s stopped: score serves every user with production again\n",
			argv[1]);
	return ret;
}

struct list_print {
	FILE *out;
	int rows;
};

static int print_row(void *opaque, int n_cols, char **names, char **values)
{
	struct list_print *lp = opaque;

	if (lp->rows++ == 0) {
		for (int c = 0; c < n_cols; c++)
			fprintf(lp->out, "%s%s", c ? "\t" : "", names[c]);
		fputc('\n', lp->out);
	}
	for (int c = 0; c < n_cols; c++)
		fprintf(lp->out, "%s%s", c ? "\t" : "", values[c] ? values[c] : "");
	fputc('\n', lp->out);
	return 0;
}

static int cmd_list(const struct config *cfg, struct registry *reg, int argc, char **argv, FILE *out, struct ltv_err *err)
{
	struct list_print lp = { out, 0 };
	int ret;

	(void)cfg;
	(void)argc;
	(void)argv;
	ret = registry_report(reg, "experiments", 0, print_row, &lp, err);
	if (ret == 0 && lp.rows == 0)
		fprintf(out, "(no experiment yet)\n");
	return ret;
}

/* ---- report ---- */

struct arm_stats {
	size_t n;
	double sum_pred, sum_actual, sum_ae, sum_ae2;
	double wape, bias;
};

static int arm_metrics(const double *actual, const double *pred, const size_t *group, size_t n,
		       size_t n_groups, size_t min_users, struct arm_stats *a, struct ltv_err *err)
{
	struct metrics_campaign mc;
	int ret;

	a->wape = a->bias = NAN;
	if (n == 0)
		return 0;
	ret = metrics_campaign_wape(actual, pred, group, n, n_groups, min_users, &mc, err);
	if (ret == 0) {
		a->wape = mc.wape;
		a->bias = mc.bias;
	}
	return ret;
}

static int cmd_report(const struct config *cfg, struct registry *reg, int argc, char **argv, FILE *out,
		      struct ltv_err *err)
{
	static const struct option long_opts[] = {
		{ "as-of", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 },
	};
	struct experiment_row e;
	struct experiment_prediction *logged = NULL;
	struct loaded_model m = { 0 };
	struct model_data d = { 0 };
	struct user_table users = { 0 };
	struct arm_stats arm[2] = { { 0 } };
	size_t n_logged = 0, *row_of_uid = NULL, first_complete_missing = 0;
	double *actual[2] = { NULL, NULL }, *pred[2] = { NULL, NULL };
	size_t *group[2] = { NULL, NULL };
	int64_t as_of = INT64_MIN, earliest = INT64_MAX;
	char iso[32], iso2[32];
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c != 'a' || time_parse_iso8601(optarg, &as_of) < 0)
			return err_set(err, LTV_EUSAGE, "models experiment report: expected NAME [--as-of "
				       "DATE], an ISO 8601 date");
	}
	if (argc - optind != 1)
		return err_set(err, LTV_EUSAGE, "models experiment report: expected NAME [--as-of DATE]");
	ret = registry_experiment_get(reg, argv[optind], &e, err);
	if (ret == 0 && as_of == INT64_MIN &&
	    (ret = registry_default_as_of(reg, &as_of, err)) < 0)
		err_prefix(err, "models experiment report");
	if (ret == 0)
		ret = registry_experiment_predictions(reg, e.name, &logged, &n_logged, err);
	if (ret == 0)
		ret = model_load(reg, cfg, e.control, &m, err);
	if (ret == 0)
		ret = model_data_for_scoring(&m, reg, as_of, &d, err);
	if (ret == 0)
		ret = registry_users_load(reg, &users, err);
	if (ret < 0)
		goto out;
	{
		const double *uid = frame_column(&d.frame, "uid");
		const double *install = frame_column(&d.frame, "install_time");
		const double *label = model_data_label(&d, e.horizon);
		struct strmap uid_of;

		strmap_init(&uid_of);
		for (size_t u = 0; u < users.n; u++)
			strmap_put(&uid_of, users.user_id[u], users.uid[u]);
		row_of_uid = xmalloc((users.n + 2) * sizeof(size_t));
		for (size_t u = 0; u < users.n + 2; u++)
			row_of_uid[u] = SIZE_MAX;
		for (size_t i = 0; i < d.frame.n_rows; i++)
			if ((size_t)uid[i] < users.n + 2)
				row_of_uid[(size_t)uid[i]] = i;
		for (int k = 0; k < 2; k++) {
			actual[k] = xmalloc((n_logged ? n_logged : 1) * sizeof(double));
			pred[k] = xmalloc((n_logged ? n_logged : 1) * sizeof(double));
			group[k] = xmalloc((n_logged ? n_logged : 1) * sizeof(size_t));
		}
		for (size_t i = 0; i < n_logged; i++) {
			const struct experiment_prediction *p = &logged[i];
			struct arm_stats *a = &arm[p->is_candidate];
			int64_t u;
			size_t row;

			/* logged at H days or older: the value was observed, not predicted */
			if (p->age_days >= (double)e.horizon)
				continue;
			if (!strmap_get(&uid_of, p->user_id, &u) || (size_t)u >= users.n + 2 ||
			    (row = row_of_uid[u]) == SIZE_MAX)
				continue;
			if (!label || isnan(label[row])) {
				const int64_t complete = (int64_t)install[row] + e.horizon * SECONDS_PER_DAY;

				first_complete_missing++;
				earliest = complete < earliest ? complete : earliest;
				continue;
			}
			actual[p->is_candidate][a->n] = label[row];
			pred[p->is_candidate][a->n] = p->ltv;
			group[p->is_candidate][a->n] = model_data_cohort(&d, row);
			a->n++;
			a->sum_pred += p->ltv;
			a->sum_actual += label[row];
			a->sum_ae += fabs(p->ltv - label[row]);
			a->sum_ae2 += (p->ltv - label[row]) * (p->ltv - label[row]);
		}
		strmap_release(&uid_of);
	}
	if (arm[0].n + arm[1].n == 0) {
		ret = err_set(err, LTV_EUSAGE, "models experiment report: horizon %lld is not complete at "
			      "%s for any of the %zu users logged by experiment '%s'%s%s; report then "
			      "(--as-of, or after ingesting newer events)", (long long)e.horizon,
			      time_format_iso8601(as_of, iso, sizeof(iso)), n_logged, e.name,
			      earliest != INT64_MAX ? "; the first completes on " : "",
			      earliest != INT64_MAX ? time_format_iso8601(earliest, iso2, sizeof(iso2)) : "");
		goto out;
	}
	for (int k = 0; k < 2 && ret == 0; k++)
		ret = arm_metrics(actual[k], pred[k], group[k], arm[k].n, d.n_apps * d.n_campaigns,
				  (size_t)cfg->models.compare_min_campaign_users, &arm[k], err);
	if (ret < 0)
		goto out;
	fprintf(out, "experiment %s: control model version %lld, candidate %lld (share %.4g), "
		"ltv_%lld complete at %s\n", e.name, (long long)e.control, (long long)e.candidate,
		e.share, (long long)e.horizon, time_format_iso8601(as_of, iso, sizeof(iso)));
	fprintf(out, "  %-10s %7s %12s %12s %14s %13s %10s\n", "arm", "users", "mean_pred",
		"mean_actual", "mean_abs_error", "campaign_WAPE", "bias");
	for (int k = 0; k < 2; k++) {
		const struct arm_stats *a = &arm[k];
		const double nn = a->n ? (double)a->n : NAN;

		fprintf(out, "  %-10s %7zu %12.4f %12.4f %14.4f %13.4f %10.4f\n", k ? "candidate" : "control",
			a->n, a->sum_pred / nn, a->sum_actual / nn, a->sum_ae / nn, a->wape, a->bias);
	}
	if (first_complete_missing)
		fprintf(out, "  %zu logged users are not %lld days old yet\n", first_complete_missing,
			(long long)e.horizon);
	if (arm[0].n < (size_t)e.min_users || arm[1].n < (size_t)e.min_users) {
		fprintf(out, "  no significance yet: the test is fixed-horizon, reported once both arms "
			"have %lld users with a complete outcome (now %zu and %zu), so looking early "
			"cannot inflate false positives\n", (long long)e.min_users, arm[0].n, arm[1].n);
	} else {
		double mean[2], var[2], diff, se, z, p;

		for (int k = 0; k < 2; k++) {
			const double nn = (double)arm[k].n;

			mean[k] = arm[k].sum_ae / nn;
			var[k] = (arm[k].sum_ae2 - nn * mean[k] * mean[k]) / (nn - 1);
			/* sum_ae2 is of the signed error, the same as of its absolute value */
		}
		diff = mean[1] - mean[0];
		se = sqrt(var[0] / (double)arm[0].n + var[1] / (double)arm[1].n);
		z = se > 0 ? diff / se : 0;
		p = erfc(fabs(z) / sqrt(2.0));
		fprintf(out, "  mean absolute error, candidate - control: %+.4f [95%% %+.4f, %+.4f], "
			"Welch z %.2f, p %.4f: %s\n", diff, diff - 1.96 * se, diff + 1.96 * se, z, p,
			p < 0.05 ? (diff < 0 ? "the candidate is more accurate" : "the candidate is less accurate")
				 : "no significant difference");
	}
out:
	for (int k = 0; k < 2; k++) {
		free(actual[k]);
		free(pred[k]);
		free(group[k]);
	}
	free(row_of_uid);
	free(logged);
	user_table_release(&users);
	model_data_release(&d);
	if (m.version)
		model_release(&m);
	return ret;
}

/* ---- dispatch ---- */

struct experiment_sub {
	const char *name;
	int (*fn)(const struct config *cfg, struct registry *reg, int argc, char **argv, FILE *out,
		  struct ltv_err *err);
	int writes;  /* needs the registry open for writing; else read-only suffices */
};

static const struct experiment_sub subs[] = {
	{ "start", cmd_start, 1 },
	{ "stop", cmd_stop, 1 },
	{ "list", cmd_list, 0 },
	{ "report", cmd_report, 0 },
};

static const struct experiment_sub *find_sub(int argc, char **argv)
{
	for (size_t i = 0; argc > 1 && i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(subs[i].name, argv[1]) == 0)
			return &subs[i];
	return NULL;
}

int experiment_verb_writes(int argc, char **argv)
{
	const struct experiment_sub *sub = find_sub(argc, argv);

	return sub ? sub->writes : -1;
}

int experiment_command(const struct config *cfg, struct registry *reg, int argc, char **argv,
		       FILE *out, struct ltv_err *err)
{
	const struct experiment_sub *sub = find_sub(argc, argv);

	if (!sub)
		return err_set(err, LTV_EUSAGE, "models experiment: expected start NAME --candidate V "
			       "[--share S], stop NAME, list or report NAME");
	return sub->fn(cfg, reg, argc - 1, argv + 1, out, err);
}

/* ---- score ---- */

int experiment_for_scores(const struct config *cfg, const struct loaded_model *m,
			  struct experiment_row *out, struct ltv_err *err)
{
	struct registry *reg = NULL;
	struct ltv_err none;
	int ret;

	/* Read-only: scoring without an experiment never needs to write. */
	ret = registry_open_readonly(cfg->registry.path, &reg, err);
	if (ret < 0)
		return ret;
	ret = registry_experiment_active(reg, out, &none) == 0 && out->control == m->version;
	registry_close(reg);
	return ret;
}

int experiment_apply_to_scores(const struct config *cfg, const struct loaded_model *m,
			       const struct experiment_row *running, const struct data_source *data,
			       const struct model_data *d, const struct user_table *users,
			       const size_t *rows, size_t n, int64_t as_of, struct served *sv,
			       FILE *out, struct ltv_err *err)
{
	struct registry *reg = NULL;
	const struct experiment_row e = *running;
	struct loaded_model mt = { 0 };
	struct model_data dt = { 0 };
	struct served cand = { 0 };
	const double *uid = frame_column(&d->frame, "uid");
	const double *age = frame_column(&d->frame, "age_days");
	size_t *mine = NULL, *their = NULL, n_cand = 0, n_logged = 0, n_uid = 0;
	int64_t *t_row = NULL;
	int have_cand = 0, ret;

	/* score's own registry stays read-only: logging the predictions needs a writer */
	ret = registry_open_existing(cfg->registry.path, (int)cfg->registry.busy_timeout_s, &reg, err);
	if (ret < 0)
		return ret;
	ret = model_load(reg, cfg, e.candidate, &mt, err);
	if (ret == 0)
		/* the users production scores (younger than its longest horizon), whatever the candidate's horizons */
		ret = model_data_for_scoring_from(&mt, data, as_of, NULL,
						  m->params.horizons.v[m->params.horizons.n - 1], &dt, err);
	if (ret < 0)
		goto out;
	{
		const double *tuid = frame_column(&dt.frame, "uid");

		for (size_t i = 0; i < dt.frame.n_rows; i++)
			n_uid = (size_t)tuid[i] + 1 > n_uid ? (size_t)tuid[i] + 1 : n_uid;
		t_row = xmalloc((n_uid ? n_uid : 1) * sizeof(int64_t));
		for (size_t u = 0; u < n_uid; u++)
			t_row[u] = -1;
		for (size_t i = 0; i < dt.frame.n_rows; i++)
			t_row[(size_t)tuid[i]] = (int64_t)i;
	}
	mine = xmalloc((n ? n : 1) * sizeof(size_t));
	their = xmalloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		const size_t u = (size_t)uid[rows[i]];

		if (!experiment_serving_arm(&e, users->user_id[u - 1]) || u >= n_uid || t_row[u] < 0)
			continue;
		mine[n_cand] = i;
		their[n_cand++] = (size_t)t_row[u];
	}
	ret = serving_predict(&mt, &dt, their, n_cand, &cand, err);
	if (ret < 0)
		goto out;
	have_cand = 1;
	for (size_t k = 0; k < n_cand; k++)
		served_copy_row(sv, mine[k], &cand, k);
	ret = registry_begin(reg, err);
	for (size_t i = 0, k = 0; i < n && ret == 0; i++) {
		const size_t u = (size_t)uid[rows[i]];
		const int is_cand = k < n_cand && mine[k] == i;
		const int hi = feature_params_horizon_index(&m->params, e.horizon);
		struct experiment_prediction p = { .is_candidate = is_cand, .as_of = as_of };
		char json[64 * PREDICTOR_MAX_HORIZONS] = "{";
		size_t len = 1;

		k += is_cand;
		if (!ab_is_logged(e.salt, users->user_id[u - 1], e.log_rate))
			continue;
		snprintf(p.user_id, sizeof(p.user_id), "%s", users->user_id[u - 1]);
		p.model_version = is_cand ? e.candidate : e.control;
		p.age_days = age[rows[i]];
		p.ltv = sv->ltv[hi][i];
		for (size_t h = 0; h < sv->n_horizons && len < sizeof(json); h++)
			len += (size_t)snprintf(json + len, sizeof(json) - len, "%s\"%lld\":%.17g",
						h ? "," : "", (long long)m->params.horizons.v[h],
						sv->ltv[h][i]);
		if (len < sizeof(json) - 1)
			snprintf(json + len, sizeof(json) - len, "}");
		ret = registry_experiment_log(reg, e.name, &p, json, err);
		n_logged++;
	}
	if (ret == 0)
		ret = registry_commit(reg, err);
	else
		registry_rollback(reg);
	if (ret == 0)
		fprintf(out, "experiment %s: %zu of %zu users scored by candidate model version %lld "
			"(share %.4g), the others by %lld; %zu predictions offered to the log (each user "
			"kept once)\n", e.name, n_cand, n, (long long)e.candidate, e.share,
			(long long)e.control, n_logged);
out:
	if (have_cand)
		served_release(&cand);
	free(mine);
	free(their);
	free(t_row);
	model_data_release(&dt);
	if (mt.version)
		model_release(&mt);
	registry_close(reg);
	return ret < 0 ? err_prefix(err, "experiment '%s'", e.name) : 0;
}
