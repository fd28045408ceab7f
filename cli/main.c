/*
 * ltvpipe's driver: a table of subcommands (git's cmd_struct). The dispatcher
 * does what a command's flags ask — load the configuration, apply --set
 * overrides, validate — so each handler only does its own job. Only main
 * prints an error and picks the exit code: 0 ok, 1 failure, 2 usage/config.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "ltv/config.h"
#include "ltv/evaluate.h"
#include "ltv/gbt.h"
#include "ltv/generate.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/monitor.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/score.h"
#include "ltv/serve.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

enum command_flags {
	CMD_NEEDS_CONFIG = 1 << 0, /* parse --config/--set and validate before the handler */
	CMD_EXIT_STATUS = 1 << 1,  /* a positive return is the process exit status (monitor: 3, 4) */
	CMD_NEEDS_REGISTRY = 1 << 2, /* reads a registry that must exist: never creates one */
	CMD_NEEDS_INPUTS = 1 << 3,   /* without a registry yet, the input files must exist */
};

struct command_args {
	int argc;
	char **argv;
	struct config *cfg;
	struct ltv_err *err;
};

struct command {
	const char *name;
	int (*fn)(struct command_args *args);
	unsigned flags;
	const char *summary;
	const char *usage;
};

static const struct command *find_command(const char *name);
static int check_working_directory(unsigned flags, const struct config *cfg, struct ltv_err *err);

/*
 * Called by a handler once its options parsed (a usage error comes first):
 * fails before the command creates anything in a directory that has neither
 * the registry it reads nor the input files it would load.
 */
static int command_ready(const struct command_args *a, const char *name)
{
	return check_working_directory(find_command(name)->flags, a->cfg, a->err);
}

static const char config_usage[] =
	"  --config F          configuration file (default config/ltvpipe.yaml)\n"
	"  --set KEY=VALUE     override one configuration value for this run, e.g.\n"
	"                      --set features.validation_days=21 (repeatable; part of the fingerprint)\n";

static int usage_error(struct ltv_err *err, const char *cmd, const char *what)
{
	return err_set(err, LTV_EUSAGE, "%s: %s; see 'ltvpipe %s --help'", cmd, what, cmd);
}

static int parse_as_of(const char *text, int64_t *out, struct ltv_err *err)
{
	if (time_parse_iso8601(text, out) < 0)
		return err_set(err, LTV_EUSAGE,
			       "--as-of '%s' is not an ISO 8601 date or date-time (e.g. 2025-06-30 or "
			       "2025-06-30T12:00:00Z)", text);
	return 0;
}

/* "ltvpipe <command> <its arguments>" into buf (cut at size), for the run's record; returns buf. */
static const char *command_line(const struct command_args *a, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "ltvpipe");

	for (int i = 0; i < a->argc && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, " %s", a->argv[i]);
	return buf;
}

/* ---- run ---- */

static int cmd_run(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "as-of", required_argument, NULL, 'a' }, { "only", required_argument, NULL, 'o' },
		{ "from", required_argument, NULL, 'f' },  { "to", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'F' },       { "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_options opts = { .as_of = INT64_MIN };
	char command[1024];
	int c, ret;

	opts.command = command_line(a, command, sizeof(command));
	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			ret = parse_as_of(optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case 'o': opts.only = optarg; break;
		case 'f': opts.from = optarg; break;
		case 't': opts.to = optarg; break;
		case 'F': opts.force = 1; break;
		case 'n': opts.dry_run = 1; break;
		default: return usage_error(a->err, "run", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "run", "unexpected argument");
	/* A dry run writes nothing, so it may describe a directory with nothing in it. */
	if (!opts.dry_run && (ret = command_ready(a, "run")) < 0)
		return ret;
	return runner_run(a->cfg, &opts, stdout, a->err);
}

/* ---- status ---- */

static int cmd_status(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "as-of", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t as_of = INT64_MIN;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		if (c != 'a')
			return usage_error(a->err, "status", "unknown option");
		ret = parse_as_of(optarg, &as_of, a->err);
		if (ret < 0)
			return ret;
	}
	if ((ret = command_ready(a, "status")) < 0)
		return ret;
	return runner_status(a->cfg, as_of, stdout, a->err);
}

/* ---- score ---- */

static int cmd_score(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "model", required_argument, NULL, 'm' },  { "as-of", required_argument, NULL, 'a' },
		{ "users", required_argument, NULL, 'u' },  { "events", required_argument, NULL, 'e' },
		{ "output", required_argument, NULL, 'o' },
		{ "allow-lookahead", no_argument, NULL, 'L' }, { NULL, 0, NULL, 0 },
	};
	struct score_options opts = { .as_of = INT64_MIN };
	int c, ret;

	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm': opts.model = optarg; break;
		case 'a':
			ret = parse_as_of(optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case 'u': opts.users_path = optarg; break;
		case 'e': opts.events_path = optarg; break;
		case 'o': opts.output = optarg; break;
		case 'L': opts.allow_lookahead = 1; break;
		default: return usage_error(a->err, "score", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "score", "unexpected argument");
	if ((ret = command_ready(a, "score")) < 0)
		return ret;
	return score_run(a->cfg, &opts, stdout, a->err);
}

/* ---- predict ---- */

static int cmd_predict(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "model", required_argument, NULL, 'm' },    { "app", required_argument, NULL, 'a' },
		{ "campaign", required_argument, NULL, 'c' }, { "feature", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct predict_options opts = { 0 };
	char **features = xcalloc((size_t)a->argc + 1, sizeof(char *));
	int c, ret;

	opts.features = features;
	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm': opts.model = optarg; break;
		case 'a': opts.app = optarg; break;
		case 'c': opts.campaign = optarg; break;
		case 'f': features[opts.n_features++] = optarg; break;
		default:
			free(features);
			return usage_error(a->err, "predict", "unknown option");
		}
	}
	ret = optind < a->argc ? usage_error(a->err, "predict", "unexpected argument")
			       : command_ready(a, "predict") < 0 ? a->err->code
			       : predict_run(a->cfg, &opts, stdout, a->err);
	free(features);
	return ret;
}

static int cmd_models(struct command_args *a)
{
	const int ret = command_ready(a, "models");

	return ret < 0 ? ret : models_run(a->cfg, a->argc - 1, a->argv + 1, stdout, a->err);
}

/* ---- serve ---- */

static int cmd_serve(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "port", required_argument, NULL, 'p' },  { "bind", required_argument, NULL, 'b' },
		{ "model", required_argument, NULL, 'm' }, { "threads", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_options opts = { .port = -1 };
	int c;

	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_int64(optarg, &opts.port) < 0 || opts.port < 0 || opts.port > 65535)
				return usage_error(a->err, "serve", "--port takes 0..65535 (0: a free port)");
			break;
		case 'b': opts.bind = optarg; break;
		case 'm': opts.model = optarg; break;
		case 't':
			if (parse_int64(optarg, &opts.threads) < 0 || opts.threads < 1 || opts.threads > 256)
				return usage_error(a->err, "serve", "--threads takes 1..256");
			break;
		default: return usage_error(a->err, "serve", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "serve", "unexpected argument");
	/* No working-directory check: a server may start before the first model and wait for it. */
	return serve_run(a->cfg, &opts, a->err);
}

/* ---- evaluate ---- */

static int cmd_evaluate(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "as-of", required_argument, NULL, 'a' },  { "horizons", required_argument, NULL, 'h' },
		{ "output", required_argument, NULL, 'o' }, { "model", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct evaluate_options opts = { .as_of = INT64_MIN };
	char command[1024];
	int c, ret;

	opts.command = command_line(a, command, sizeof(command));
	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			ret = parse_as_of(optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case 'h': opts.horizons = optarg; break;
		case 'o': opts.output_dir = optarg; break;
		case 'm': opts.model = optarg; break;
		default: return usage_error(a->err, "evaluate", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "evaluate", "unexpected argument");
	if ((ret = command_ready(a, "evaluate")) < 0)
		return ret;
	return evaluate_run(a->cfg, &opts, stdout, NULL, a->err);
}

/* ---- monitor ---- */

static int cmd_monitor(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "model", required_argument, NULL, 'm' }, { "as-of", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },        { NULL, 0, NULL, 0 },
	};
	struct monitor_options opts = { .as_of = INT64_MIN };
	struct monitor_result r;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm': opts.model = optarg; break;
		case 'a':
			ret = parse_as_of(optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case 'j': opts.json = 1; break;
		default: return usage_error(a->err, "monitor", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "monitor", "unexpected argument");
	ret = command_ready(a, "monitor");
	if (ret == 0)
		ret = monitor_run(a->cfg, &opts, stdout, &r, a->err);
	if (ret < 0)
		return ret;
	ret = monitor_exit_status(r.level);
	monitor_result_release(&r);
	return ret;
}

/* ---- generate ---- */

static int parse_count(const char *text, const char *flag, uint64_t *out, struct ltv_err *err)
{
	int64_t v;

	if (parse_int64(text, &v) < 0 || v < 1)
		return err_set(err, LTV_EUSAGE, "generate: %s '%s' must be a whole number >= 1", flag, text);
	*out = (uint64_t)v;
	return 0;
}

static int cmd_generate(struct command_args *a)
{
	static const struct option long_opts[] = {
		{ "users", required_argument, NULL, 'u' }, { "seed", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },   { "start", required_argument, NULL, 'd' },
		{ "order", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 },
	};
	struct generate_param p;
	struct generate_stats st;
	const char *out_dir = "data", *why;
	double started = now_seconds();
	int c, ret;

	generate_param_init(&p);
	optind = 1;
	while ((c = getopt_long(a->argc, a->argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			ret = parse_count(optarg, "--users", &p.n_users, a->err);
			if (ret < 0)
				return ret;
			break;
		case 's': {
			int64_t seed;

			if (parse_int64(optarg, &seed) < 0 || seed < 0)
				return err_set(a->err, LTV_EUSAGE, "generate: --seed '%s' must be a whole number >= 0", optarg);
			p.seed = (uint64_t)seed;
			break;
		}
		case 'o': out_dir = optarg; break;
		case 'd': p.start_date = optarg; break;
		case 'r':
			if (strcmp(optarg, "user") != 0 && strcmp(optarg, "time") != 0)
				return err_set(a->err, LTV_EUSAGE, "generate: --order '%s' must be 'user' or 'time'", optarg);
			p.order = optarg[0] == 't' ? GENERATE_ORDER_TIME : GENERATE_ORDER_USER;
			break;
		default: return usage_error(a->err, "generate", "unknown option");
		}
	}
	if (optind < a->argc)
		return usage_error(a->err, "generate", "unexpected argument");
	why = generate_param_check(&p);
	if (why)
		return err_set(a->err, LTV_EUSAGE, "generate: %s", why);
	ret = generate_sample(&p, out_dir, &st, a->err);
	if (ret < 0)
		return ret;
	if (st.stale_removed)
		printf("removed %d temporary files left by killed runs in %s\n", st.stale_removed, out_dir);
	printf("generated %llu users and %llu events in %.1f s: %s/users.csv, %s/events.csv\n",
	       (unsigned long long)st.n_users, (unsigned long long)st.n_events,
	       now_seconds() - started, out_dir, out_dir);
	printf("  %d apps, %d campaigns, installs from %s, data to %s\n", st.n_apps, st.n_campaigns,
	       st.span_start, st.data_end);
	printf("  payers %.2f%%, revenue %.2f, acquisition cost %.2f (currency of the sample: USD)\n",
	       st.n_users ? 100.0 * (double)st.n_payers / (double)st.n_users : 0.0,
	       st.total_revenue, st.total_cost);
	return 0;
}

/* ---- help and version ---- */

static const struct command commands[] = {
	{ "run", cmd_run, CMD_NEEDS_CONFIG | CMD_NEEDS_INPUTS, "run the pipeline's stages, skipping those up to date",
	  "usage: ltvpipe run [--config F] [--set K=V]... [--as-of DATE] [--only S[,S]] [--from S]\n"
	  "                   [--to S] [--force] [--dry-run]\n\n"
	  "Runs the stages in order. A stage whose fingerprint (its code version, config\n"
	  "section, as_of and the content of its inputs) matches a stored artefact is\n"
	  "skipped: 'features: up to date (v3)'. Each stage commits in one transaction.\n\n"
	  "  --as-of DATE        data cut-off (ISO 8601); default: the latest event ingested\n"
	  "  --only S[,S]        run only these stages (their inputs must exist)\n"
	  "  --from S, --to S    run the stages from S on, or up to S\n"
	  "  --force             rerun the selected stages even when up to date\n"
	  "  --dry-run           print what would run and why; change nothing\n" },
	{ "status", cmd_status, CMD_NEEDS_CONFIG | CMD_NEEDS_REGISTRY,
	  "show each stage's current version and whether it is fresh or stale",
	  "usage: ltvpipe status [--config F] [--set K=V]... [--as-of DATE]\n\n"
	  "For each stage: its current artefact version, when and by which run it was made,\n"
	  "whether it is fresh or stale (and why) for the present config and data, and\n"
	  "its recorded metrics.\n" },
	{ "score", cmd_score, CMD_NEEDS_CONFIG | CMD_NEEDS_REGISTRY,
	  "predict LTV per horizon for users not yet mature, with a model version",
	  "usage: ltvpipe score [--config F] [--model V|production|candidate] [--as-of DATE]\n"
	  "                     [--allow-lookahead] [--users F [--events F]] --output F\n\n"
	  "Scores every user not yet mature at the target horizon at as_of (default: the\n"
	  "latest event in the data) with the model version given (default production).\n"
	  "An as_of before the one the model was trained at is look-ahead and refused\n"
	  "unless --allow-lookahead is given.\n"
	  "With --users (and --events), scores those files instead of the registry's data;\n"
	  "they are read into a scratch registry, never into the training data. Without\n"
	  "--events, users are valued from their campaign and cost (as_of: the latest\n"
	  "install). F then holds the users file's own rows and columns, in its order,\n"
	  "followed by the predictions and a reason for each row not scored.\n"
	  "Writes F (one row per user: ltv per horizon, p_payer, method, segment, ROAS,\n"
	  "model_version, as_of, scored_at),\n"
	  "F.campaigns.csv (per campaign: users, spend, predicted revenue and ROAS per\n"
	  "horizon) and F.report.txt (totals, distributions, top and bottom campaigns,\n"
	  "segments, methods and fallbacks).\n" },
	{ "predict", cmd_predict, CMD_NEEDS_CONFIG | CMD_NEEDS_REGISTRY, "predict one user given on the command line, as JSON",
	  "usage: ltvpipe predict [--config F] [--model V|production|candidate] --app A\n"
	  "                       [--campaign C] [--feature name=value]...\n\n"
	  "Prints one JSON object: ltv per horizon (calibrated and raw), p_payer, tier,\n"
	  "the method that served and the model version. Features not given are those of\n"
	  "a user with no activity in the observation window; names: rev_window, rev_d0,\n"
	  "rev_max_day, purchases_window, events_window, events_d0, active_days_window,\n"
	  "engagement, first_purchase_day, cost, age_days, window_days, rev_to_date.\n" },
	{ "models", cmd_models, CMD_NEEDS_CONFIG | CMD_NEEDS_REGISTRY, "list, show, promote or roll back model versions",
	  "usage: ltvpipe models [--config F] list | show V | promote V [--reason TEXT]\n"
	  "                      | rollback [--reason TEXT] | history\n"
	  "                      | compare A B [--as-of T] [--horizon H] [--json]\n"
	  "                      | experiment start NAME --candidate V [--share S] [--horizon H]\n"
	  "                        [--min-users N] [--log-rate R] | experiment stop NAME\n"
	  "                      | experiment list | experiment report NAME [--as-of DATE]\n\n"
	  "  list        every model version, its validation error and its aliases\n"
	  "  show V      the artefacts of version V with their metrics\n"
	  "  promote V   make V production (recorded in the alias history with the OS user\n"
	  "              and --reason); if V was the candidate, candidate is unset\n"
	  "  rollback    make the previous production version production again\n"
	  "  history     every alias move: when, alias, from, to, who, why\n"
	  "  compare A B both versions on the same users: those installed after both\n"
	  "              versions' as_of whose ltv_H is complete at T (--as-of, default the\n"
	  "              latest event), scored as of T - H; campaign WAPE, normalized Gini\n"
	  "              and bias of each, B - A with a paired bootstrap 95% interval and\n"
	  "              p-value (models.compare_resamples resamples of users within\n"
	  "              campaigns, fixed seed). --horizon H: default A's target horizon\n"
	  "  experiment  A/B of version V against production: score sends the users whose\n"
	  "              salted hash of user_id is below --share (default 0.1) to V and logs\n"
	  "              a --log-rate sample (default 1) of predictions; report gives each\n"
	  "              arm's accuracy once outcomes mature, and the test of the difference\n"
	  "              only once both arms have --min-users (default 2000) users\n" },
	{ "serve", cmd_serve, CMD_NEEDS_CONFIG,
	  "serve predictions over HTTP (JSON API, metrics, a page) on a loopback address",
	  "usage: ltvpipe serve [--config F] [--set K=V]... [--port P] [--bind ADDR]\n"
	  "                     [--model V|production|candidate] [--threads N]\n\n"
	  "Loads the model version once and answers on http://ADDR:P/ until SIGINT or\n"
	  "SIGTERM (requests in flight finish). When --model is an alias, the alias is\n"
	  "read again every serve.watch_ms: a new version is loaded aside and swapped in\n"
	  "without dropping a request. Logs one line per request (serve.log_sample).\n\n"
	  "  GET  /                     a page: the prediction form and the models\n"
	  "  GET  /health, /ready       liveness; readiness (503 until a model is loaded)\n"
	  "  GET  /metrics              Prometheus text: requests, latency, predictions\n"
	  "  GET  /v1/models            versions, aliases and validation error\n"
	  "  GET  /v1/models/V|alias    one version: as_of, horizons, methods, evaluations\n"
	  "  POST /v1/predict           one user (JSON): the object 'ltvpipe predict' prints\n"
	  "  POST /v1/predict/batch     up to serve.max_batch users: a JSON array, or CSV\n"
	  "                             (Content-Type: text/csv); answered in kind\n"
	  "  POST /v1/aliases/ALIAS     {\"version\": V, \"reason\": R} or {\"rollback\": true}\n"
	  "                             with 'Authorization: Bearer <serve.token>'\n"
	  "  GET  /v1/aliases/history   every alias move\n\n"
	  "A user is a JSON object: app (required), campaign, install_time (ISO 8601;\n"
	  "its age is counted at as_of, default now) or age_days, and the features of\n"
	  "'ltvpipe predict'. Errors are {\"error\": {\"code\", \"message\", \"field\"}}.\n\n"
	  "  --port P            default serve.port (8080); 0 picks a free port, printed\n"
	  "  --bind ADDR         a loopback address (default 127.0.0.1); never another\n"
	  "  --model V           version number or alias (default serve.model: production)\n"
	  "  --threads N         request threads (default serve.threads: 8)\n" },
	{ "evaluate", cmd_evaluate, CMD_NEEDS_CONFIG | CMD_NEEDS_INPUTS,
	  "backtest: train as of T, predict users acquired before T, compare with what they spent",
	  "usage: ltvpipe evaluate [--config F] [--set K=V]... [--as-of T] [--horizons H[,H]]\n"
	  "                        [--output DIR]\n"
	  "       ltvpipe evaluate [--config F] --model V|production|candidate [--output DIR]\n\n"
	  "An honest backtest. Trains the pipeline as of T on the configured input files in a\n"
	  "scratch registry (nothing after T is read), predicts ltv_H for the users acquired\n"
	  "in the H days before T from their data before T, and compares with their actual\n"
	  "ltv_H from the data after T. Scores the selected, calibrated mix, each method\n"
	  "alone and three baselines (campaign mean; window revenue x a global multiplier;\n"
	  "BG/NBD + Gamma-Gamma) with campaign WAPE and bias (campaigns with >= 50 users),\n"
	  "normalized Gini, Spearman, RMSLE, decile MAPE and payer AUC. Writes\n"
	  "DIR/evaluation.html (charts), .txt and .json, and stores the metrics in the\n"
	  "registry beside the production model version ('ltvpipe models show V').\n\n"
	  "With --model, nothing is trained: the registry's model version V is evaluated as\n"
	  "it is stored, with T = the as_of it was trained at, on the data ingested since\n"
	  "(every horizon's outcome must be complete), and the metrics are stored with V.\n\n"
	  "  --as-of T           the cut-off (ISO 8601); default: the latest event minus the\n"
	  "                      longest horizon, so every actual is complete\n"
	  "  --horizons H[,H]    horizons in days to evaluate (default: features.horizons);\n"
	  "                      the model trains on the target horizon if listed, else the first\n"
	  "  --model V           evaluate the registry's version V (or alias) instead of training\n"
	  "  --output DIR        where the reports go (default: <run.log_dir>/eval-<run id>)\n" },
	{ "monitor", cmd_monitor, CMD_NEEDS_CONFIG | CMD_NEEDS_REGISTRY | CMD_EXIT_STATUS,
	  "drift and calibration of a model version; exit 0 ok, 3 warn, 4 alert",
	  "usage: ltvpipe monitor [--config F] [--set K=V]... [--model V|production|candidate]\n"
	  "                       [--as-of DATE] [--json]\n\n"
	  "PSI of every model feature and of the predicted LTV at the target horizon, between\n"
	  "the users installed in the monitor.window_days (7) before as_of and those installed\n"
	  "in the monitor.reference_windows (4) windows of the same length before the version's\n"
	  "as_of, both at the age they had at their window's end and served as 'score' serves\n"
	  "them. Then calibration: the users the version predicted at its as_of whose outcome\n"
	  "at a horizon is now complete, predicted against actual, per install week. The\n"
	  "report is stored in the registry (table monitor_reports).\n\n"
	  "  --model V           the version monitored (default production)\n"
	  "  --as-of DATE        end of the monitored window (default: the latest event)\n"
	  "  --json              print the report as JSON\n\n"
	  "Exit status: 0 ok; 3 warn (a PSI >= monitor.psi_warn 0.1, or a calibration bias\n"
	  "beyond monitor.calibration_warn); 4 alert (a PSI >= monitor.psi_alert 0.25);\n"
	  "1 failure; 2 usage or config error.\n" },
	{ "generate", cmd_generate, 0, "write a synthetic mobile user-acquisition sample",
	  "usage: ltvpipe generate [--users N] [--seed S] [--start YYYY-MM-DD] [--order user|time]\n"
	  "                        [--out DIR]\n\n"
	  "Writes DIR/users.csv and DIR/events.csv (default DIR: data): several apps,\n"
	  "dozens of named campaigns, a few percent payers with heavy-tailed spend,\n"
	  "decaying activity and costs per install by network, country and platform.\n"
	  "Deterministic for a seed. Defaults: 20000 users, seed 42.\n"
	  "--order user (default) writes each user's events together; --order time\n"
	  "orders them by time across users, as an export of an events table is.\n" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_help(FILE *out)
{
	fprintf(out, "usage: ltvpipe <command> [options]\n\n"
		     "Trains and scores customer lifetime value (LTV) models; every artefact is\n"
		     "versioned in one SQLite registry (default models/registry.sqlite).\n\n"
		     "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nstages (ltvpipe run):\n");
	for (size_t i = 0; i < stage_count; i++)
		fprintf(out, "  %-10s %s\n", stage_table[i].name, stage_table[i].summary);
	fprintf(out, "\n'ltvpipe <command> --help' describes a command. '--version' prints versions.\n"
		     "Exit codes: 0 success, 1 a stage or command failed, 2 usage or config error;\n"
		     "monitor also 3 (drift warn) and 4 (drift alert).\n");
}

static void print_version(void)
{
	printf("ltvpipe %s\n", LTV_VERSION);
	printf("  registry schema %d\n", REGISTRY_SCHEMA_VERSION);
	printf("  SQLite %s\n", registry_sqlite_version());
	printf("  libyaml %s\n", config_yaml_version());
	printf("  XGBoost %s\n", gbt_version_string());
	printf("  OpenBLAS %s\n", openblas_get_config());
}

/*
 * Pulls --config and --set out of argv (they are common to every command that
 * reads the configuration), loads the file and applies the overrides in order.
 */
static int load_config(int *argc, char **argv, struct config *cfg, struct ltv_err *err)
{
	const char *path = NULL;
	const char **sets = xcalloc((size_t)*argc + 1, sizeof(char *));
	size_t n_sets = 0;
	int out = 0, ret = 0;

	for (int i = 0; i < *argc; i++) {
		const char *arg = argv[i];
		const char *value = NULL;
		int is_config = strncmp(arg, "--config", 8) == 0 && (arg[8] == '\0' || arg[8] == '=');
		int is_set = strncmp(arg, "--set", 5) == 0 && (arg[5] == '\0' || arg[5] == '=');

		if (!is_config && !is_set) {
			argv[out++] = argv[i];
			continue;
		}
		value = strchr(arg, '=') ? strchr(arg, '=') + 1 : (i + 1 < *argc ? argv[++i] : NULL);
		if (!value) {
			ret = err_set(err, LTV_EUSAGE, "%s needs a value", is_config ? "--config" : "--set");
			goto done;
		}
		if (is_config)
			path = value;
		else
			sets[n_sets++] = value;
	}
	*argc = out;
	config_init_defaults(cfg);
	if (path || access("config/ltvpipe.yaml", R_OK) == 0)
		ret = config_load_file(cfg, path ? path : "config/ltvpipe.yaml", err);
	for (size_t i = 0; i < n_sets && ret == 0; i++)
		ret = config_apply_override(cfg, sets[i], err);
	if (ret == 0)
		ret = config_validate(cfg, err);
	if (ret == 0)
		log_level_parse(cfg->run.log_level, &log_level_current);
done:
	free(sets);
	return ret;
}

/*
 * Run from the wrong directory (no config, no data, no registry), a command
 * must fail before it creates anything: no registry file, no logs/. A command
 * that reads a model needs the registry to exist; one that trains needs
 * either a registry or input files to load.
 */
static int check_working_directory(unsigned flags, const struct config *cfg, struct ltv_err *err)
{
	const int defaults = strcmp(cfg->source_path, "(defaults)") == 0;
	const char *no_config = defaults ? " (and no --config, nor config/ltvpipe.yaml here)" : "";
	struct input_files files = { 0 };
	int ret;

	if (!(flags & (CMD_NEEDS_REGISTRY | CMD_NEEDS_INPUTS)) || access(cfg->registry.path, F_OK) == 0)
		return 0;
	if (flags & CMD_NEEDS_REGISTRY)
		return err_set(err, LTV_ENOTFOUND, "no registry at '%s'%s; run ltvpipe from the "
			       "directory that holds your configuration and registry, pass --config F, "
			       "or train a model first with 'ltvpipe run'", cfg->registry.path, no_config);
	ret = input_files_resolve(cfg, &files, err);
	input_files_release(&files);
	if (ret < 0 && defaults)
		err_prefix(err, "no registry at '%s' and no --config, nor config/ltvpipe.yaml here; "
			   "run ltvpipe from the directory that holds your configuration, or pass "
			   "--config F", cfg->registry.path);
	return ret;
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

/*
 * libgomp reads OMP_WAIT_POLICY once, when it loads, before main. Its default
 * spins waiting threads; on a shared or oversubscribed machine a team of two
 * then ran XGBoost 40x slower than one thread (measured: multiplier 38 s vs
 * 0.11 s on 100k users). So unless the user chose a policy, re-exec once with
 * PASSIVE, which sleeps instead of spinning.
 */
static void ensure_passive_openmp(char **argv)
{
	if (getenv("OMP_WAIT_POLICY"))
		return;
	setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
	execv("/proc/self/exe", argv);
	/* exec failed (no /proc): carry on with the default policy */
}

int main(int argc, char **argv)
{
	struct ltv_err err = { 0 };
	struct config cfg;
	const struct command *cmd;
	int have_config = 0, ret;

	ensure_passive_openmp(argv);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		print_help(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		print_version();
		return 0;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "ltvpipe: '%s' is not a command; see 'ltvpipe --help'\n", argv[1]);
		return 2;
	}
	if (wants_help(argc - 1, argv + 1)) {
		printf("%s\n", cmd->usage);
		if (cmd->flags & CMD_NEEDS_CONFIG)
			printf("configuration:\n%s", config_usage);
		return 0;
	}
	log_hook_xgboost();
	struct command_args args = { argc - 1, argv + 1, &cfg, &err };
	if (cmd->flags & CMD_NEEDS_CONFIG) {
		ret = load_config(&args.argc, args.argv, &cfg, &err);
		have_config = 1;
		if (ret < 0)
			goto out;
	}
	ret = cmd->fn(&args);
out:
	if (ret < 0)
		fprintf(stderr, "ltvpipe %s: error: %s\n", cmd->name, err.msg);
	if (have_config)
		config_release(&cfg);
	if (ret > 0 && (cmd->flags & CMD_EXIT_STATUS))
		return ret;
	return ltv_exit_code(ret);
}
