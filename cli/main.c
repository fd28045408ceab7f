/*
 * ltvpipe's driver: a table of subcommands (git's cmd_struct). Each entry
 * lists its options once (struct cmd_option); the parser, --help, the man page
 * and the bash completion are all read from that table. The dispatcher does
 * what a command's flags ask — load the configuration, apply --set overrides,
 * validate, open the registry read-only or for writing, take the run lock — so
 * each handler (cli/command_handlers.c) only does its own job. Only main
 * prints an error and picks the exit code: 0 ok, 1 failure, 2 usage/config.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "ltv/cmdline.h"
#include "ltv/command.h"
#include "ltv/command_handlers.h"
#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

int command_parse_as_of(const char *text, int64_t *out, struct ltv_err *err)
{
	if (time_parse_iso8601(text, out) < 0)
		return err_set(err, LTV_EUSAGE,
			       "--as-of '%s' is not an ISO 8601 date or date-time (e.g. 2025-06-30 or "
			       "2025-06-30T12:00:00Z)", text);
	return 0;
}

void command_parser_init(struct cmd_parser *p, const struct command_args *a)
{
	cmd_parser_init(p, a->name, a->name, a->options, a->argc, a->argv);
}

/* ---- help, the man page and the completion script ---- */

static int cmd_help(struct command_args *a);
static int cmd_models(struct command_args *a);

static const struct cmd_option help_options[] = {
	{ "man", OPT_MAN, NULL, "print the man page ltvpipe.1 (roff)", 0 },
	{ "completion", OPT_COMPLETION, NULL, "print the bash completion script", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

static const struct command commands[] = {
	{ "run", cmd_run, CMD_NEEDS_CONFIG | CMD_NEEDS_INPUTS | CMD_REGISTRY_WRITE |
			     CMD_REGISTRY_CREATE | CMD_RUN_LOCK, "run the pipeline's stages, skipping those up to date",
	  "Runs the stages in order. A stage whose fingerprint (its code version, config\n"
	  "section, as_of and the content of its inputs) matches a stored artefact is\n"
	  "skipped: 'features: up to date (v3)'. Each stage commits in one transaction.\n"
	  "The run is recorded in the registry (table runs) with the whole command line\n"
	  "and the as_of it used.\n",
	  cmd_run_options, NULL },
	{ "status", cmd_status, CMD_NEEDS_CONFIG | CMD_REGISTRY_READ,
	  "show each stage's current version and whether it is fresh or stale",
	  "For each stage: its current artefact version, when and by which run it was made,\n"
	  "whether it is fresh or stale (and why) for the present config and data, and\n"
	  "its recorded metrics.\n",
	  cmd_status_options, NULL },
	{ "score", cmd_score, CMD_NEEDS_CONFIG | CMD_REGISTRY_READ,
	  "predict LTV per horizon for users not yet mature, with a model version",
	  "Scores every user not yet mature at the target horizon at as_of (default: the\n"
	  "latest event in the data) with the model version given (default production),\n"
	  "with the configuration that version was trained with (--set changes only what is\n"
	  "not part of the model, such as registry.path). An as_of before the one the model\n"
	  "was trained at is look-ahead and refused unless --allow-lookahead is given.\n"
	  "With --users (and --events), scores those files instead of the registry's data;\n"
	  "they are read into a scratch registry, never into the training data. Without\n"
	  "--events, users are valued from their campaign and cost (as_of: the latest\n"
	  "install). F then holds the users file's own rows and columns, in its order,\n"
	  "followed by the predictions and a reason for each row not scored.\n"
	  "Writes F (one row per user: ltv per horizon, p_payer, method, segment, ROAS,\n"
	  "model_version, as_of, scored_at), F.campaigns.csv (per campaign: users, spend,\n"
	  "predicted revenue and ROAS per horizon), F.report.txt (totals, distributions,\n"
	  "top and bottom campaigns, segments, methods and fallbacks) and F.report.html\n"
	  "(the same as a self-contained page: each top and bottom campaign's predicted\n"
	  "cumulative ROAS curve with its interval, cost and payback day, and the segment\n"
	  "mix); each score is recorded in the registry (table scores).\n"
	  "--output - writes the per-user CSV to stdout and nothing beside it.\n"
	  "With --shard I/N, scores only the cohorts of shard I (XXH3-64 of app, 0x1f,\n"
	  "campaign, mod N: whole cohorts, since curves levels a cohort from all its\n"
	  "users) and also writes F.shard.csv, the exact values 'ltvpipe merge-scores' joins.\n",
	  cmd_score_options, NULL },
	{ "predict", cmd_predict, CMD_NEEDS_CONFIG | CMD_REGISTRY_READ, "predict one user given on the command line, as JSON",
	  "Prints one JSON object: ltv per horizon (calibrated and raw), p_payer, tier,\n"
	  "the method that served and the model version. Features not given are those of\n"
	  "a user with no activity in the observation window; names: rev_window, rev_d0,\n"
	  "rev_max_day, purchases_window, events_window, events_d0, active_days_window,\n"
	  "engagement, first_purchase_day, cost, age_days, window_days, rev_to_date.\n"
	  "Attributes (--attr, the model's columns.attributes) not given, or with a value\n"
	  "no training user had, are served their app's encoding.\n",
	  cmd_predict_options, NULL },
	{ "models", cmd_models, CMD_NEEDS_CONFIG | CMD_SUBCOMMANDS,
	  "list, show, compare, export, promote or roll back model versions", NULL, NULL,
	  "list|show|history|promote|rollback|compare|experiment|export ..." },
	{ "serve", cmd_serve, CMD_NEEDS_CONFIG,
	  "serve predictions over HTTP (JSON API, metrics, a page) on a loopback address",
	  "Loads the model version once and answers on http://ADDR:P/ until SIGINT or\n"
	  "SIGTERM (requests in flight finish). When --model is an alias, the alias is\n"
	  "read again every serve.watch_ms: a new version is loaded aside and swapped in\n"
	  "without dropping a request. Logs one line per request (serve.log_sample).\n\n"
	  "  GET  /                     a page: the prediction form and the models\n"
	  "  GET  /health, /ready       liveness; readiness (503 until a model is loaded)\n"
	  "  GET  /metrics              Prometheus text: requests, latency, predictions\n"
	  "  GET  /v1/models            versions, aliases and validation error\n"
	  "  GET  /v1/models/V|alias    one version: as_of, horizons, methods, evaluations,\n"
	  "                             feature importance, the latest drift report\n"
	  "  GET  /v1/monitor           the served version's latest drift report\n"
	  "  POST /v1/predict           one user (JSON): the object 'ltvpipe predict' prints\n"
	  "                             (?explain=1: as 'ltvpipe predict --explain')\n"
	  "  POST /v1/predict/batch     up to serve.max_batch users: a JSON array, or CSV\n"
	  "                             (Content-Type: text/csv); answered in kind\n"
	  "  POST /v1/aliases/ALIAS     {\"version\": V, \"reason\": R} or {\"rollback\": true}\n"
	  "                             with 'Authorization: Bearer <serve.token>'\n"
	  "  GET  /v1/aliases/history   every alias move\n\n"
	  "A user is a JSON object: app (required), campaign, install_time (ISO 8601;\n"
	  "its age is counted at as_of, default now) or age_days, and the features of\n"
	  "'ltvpipe predict'. Errors are {\"error\": {\"code\", \"message\", \"field\"}}.\n",
	  cmd_serve_options, NULL },
	{ "evaluate", cmd_evaluate, CMD_NEEDS_CONFIG | CMD_NEEDS_INPUTS | CMD_REGISTRY_WRITE |
				       CMD_REGISTRY_CREATE,
	  "backtest: train as of T, predict users acquired before T, compare with what they spent",
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
	  "(every horizon's outcome must be complete), and the metrics are stored with V.\n",
	  cmd_evaluate_options, NULL },
	{ "monitor", cmd_monitor, CMD_NEEDS_CONFIG | CMD_EXIT_STATUS | CMD_REGISTRY_WRITE,
	  "drift and calibration of a model version; exit 0 ok, 3 warn, 4 alert",
	  "PSI of every model feature and of the predicted LTV at the target horizon, between\n"
	  "the users installed in the monitor.window_days (7) before as_of and those installed\n"
	  "in the monitor.reference_windows (4) windows of the same length before the version's\n"
	  "as_of, both at the age they had at their window's end and served as 'score' serves\n"
	  "them. Then calibration, predicted against actual at each horizon now complete: the\n"
	  "users the version predicted at its as_of, and each install week after its as_of\n"
	  "predicted as the daily score of the week's last day served it (the latest\n"
	  "monitor.calibration_weeks, 13), per install week. The report is stored in the\n"
	  "registry (table monitor_reports).\n\n"
	  "Exit status: 0 ok; 3 warn (a PSI >= monitor.psi_warn 0.1, or a calibration bias\n"
	  "beyond monitor.calibration_warn); 4 alert (a PSI >= monitor.psi_alert 0.25);\n"
	  "1 failure; 2 usage or config error.\n",
	  cmd_monitor_options, NULL },
	{ "dag", cmd_dag, 0, "print the stage graph: what each stage reads",
	  "One line per stage, in run order, with the stages whose output it reads and the\n"
	  "config sections in its fingerprint. --dot prints the same graph for Graphviz\n"
	  "('ltvpipe dag --dot | dot -Tsvg > dag.svg').\n",
	  cmd_dag_options, NULL },
	{ "diff", cmd_diff, CMD_NEEDS_CONFIG | CMD_REGISTRY_READ,
	  "two runs or two model versions side by side: config, then metrics",
	  "A and B are two model versions (numbers or aliases: production, candidate) or two\n"
	  "run ids. Prints the configuration keys whose values differ, then the metrics that\n"
	  "differ, each with the direction that is better (lower for errors, higher for\n"
	  "Gini and AUC) and which of the two it favours.\n",
	  json_only_options, "A B" },
	{ "merge", cmd_merge, CMD_NEEDS_CONFIG,
	  "join shard registries (run --shard I/N) into the main registry",
	  "Merges every shard 0/N..N-1/N of one split (built by 'ltvpipe run --to features\n"
	  "--shard I/N --as-of T --set registry.path=SHARD') into the main registry\n"
	  "(registry.path), in one transaction: users and user-days numbered as an\n"
	  "unsharded ingest numbers them, file records, one rejects file, and the ingest\n"
	  "and features artefacts. What needs every user (the install-date split, the\n"
	  "app and campaign encodings) is computed on the merged whole, so the features\n"
	  "equal an unsharded run's (same content hash) and 'ltvpipe run' then trains\n"
	  "from tiers on. Each merged artefact's metrics name the shards it came from.\n"
	  "The shards, the input files and the main registry must be on paths this\n"
	  "machine reads (a shared filesystem). A failure leaves the main registry as it\n"
	  "was; merging the same shards again is a no-op.\n",
	  NULL, "SHARD_REGISTRY..." },
	{ "merge-scores", cmd_merge_scores, CMD_NEEDS_CONFIG | CMD_REGISTRY_READ,
	  "join the outputs of score --shard I/N into one score output",
	  "Reads SHARD_OUTPUT.shard.csv of every shard 0/N..N-1/N scored by 'ltvpipe score\n"
	  "--shard I/N --output SHARD_OUTPUT' with one model version and as_of, puts the\n"
	  "users back in the order an unsharded score writes them, and writes F,\n"
	  "F.campaigns.csv and F.report.txt with score's own code: campaign sums and\n"
	  "counts, the LTV distribution and the segments come from the users themselves,\n"
	  "never from averages of the shards' summaries, so the files are byte-identical\n"
	  "to an unsharded score's. The model version is read from the main registry.\n",
	  cmd_merge_scores_options, "SHARD_OUTPUT..." },
	{ "generate", cmd_generate, 0, "write a synthetic mobile user-acquisition sample",
	  "Writes DIR/users.csv and DIR/events.csv: several apps, dozens of named campaigns,\n"
	  "a few percent payers with heavy-tailed spend, decaying activity and costs per\n"
	  "install by network, country and platform. Deterministic for a seed.\n",
	  cmd_generate_options, NULL },
	{ "help", cmd_help, 0, "this help; the man page (--man) or bash completion (--completion)",
	  "With COMMAND, that command's help. 'make install' installs the man page and the\n"
	  "completion script generated here.\n",
	  help_options, "[COMMAND]" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))
#define MAX_SUBCOMMANDS 16

static const struct command *find_in(const struct command *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* An entry as documentation: a legacy entry's whole text is its description. */
static struct cmd_doc doc_of(const struct command *c)
{
	return (struct cmd_doc){ c->name, c->summary, c->operands, c->options, c->usage };
}

static int is_legacy(const struct command *c)
{
	return !c->options && c->usage && strncmp(c->usage, "usage:", 6) == 0;
}

static void print_command_help(FILE *out, const struct command *cmd)
{
	struct cmd_doc doc = doc_of(cmd);

	if (is_legacy(cmd)) {
		fprintf(out, "%s\n", cmd->usage);
		if (cmd->flags & CMD_NEEDS_CONFIG) {
			fprintf(out, "configuration:\n");
			cmd_print_options(out, cmd_config_options);
		}
		return;
	}
	if (cmd->flags & CMD_SUBCOMMANDS) {
		fprintf(out, "usage: ltvpipe models [--config F] [--set KEY=VALUE]... [--quiet] SUBCOMMAND\n\n"
			     "%s\n\nsubcommands ('ltvpipe models SUBCOMMAND --help' for one):\n", cmd->summary);
		for (size_t i = 0; i < n_models_commands; i++) {
			char left[64];

			snprintf(left, sizeof(left), "%s%s%s", models_commands[i].name,
				 models_commands[i].operands ? " " : "",
				 models_commands[i].operands ? models_commands[i].operands : "");
			fprintf(out, "  %-22s %s\n", strchr(left, '.') ? models_commands[i].name : left,
				strchr(models_commands[i].summary, '\n') ? "" : models_commands[i].summary);
			if (strchr(models_commands[i].summary, '\n'))
				fprintf(out, "    %s\n", models_commands[i].summary);
		}
		return;
	}
	cmd_print_help(out, "ltvpipe", &doc, (cmd->flags & CMD_NEEDS_CONFIG) != 0);
}

static void print_help(FILE *out)
{
	fprintf(out, "usage: ltvpipe <command> [options]\n\n"
		     "Trains and scores customer lifetime value (LTV) models; every artefact is\n"
		     "versioned in one SQLite registry (default models/registry.sqlite).\n\n"
		     "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nstages (ltvpipe run):\n");
	for (size_t i = 0; i < stage_count; i++)
		fprintf(out, "  %-12s %s\n", stage_table[i].name, stage_table[i].summary);
	fprintf(out, "\n'ltvpipe <command> --help' describes a command. '--version' prints versions.\n"
		     "Exit codes: 0 success, 1 a stage or command failed, 2 usage or config error;\n"
		     "monitor also 3 (drift warn) and 4 (drift alert).\n");
}

/* The command and subcommand tables as documentation, for the man page and the completion. */
static void docs_of_tables(struct cmd_doc *docs, int *with_config, struct cmd_doc *subs)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		docs[i] = doc_of(&commands[i]);
		with_config[i] = (commands[i].flags & CMD_NEEDS_CONFIG) != 0;
	}
	for (size_t i = 0; i < n_models_commands; i++)
		subs[i] = doc_of(&models_commands[i]);
}

static int cmd_help(struct command_args *a)
{
	struct cmd_doc docs[N_COMMANDS], subs[MAX_SUBCOMMANDS];
	int with_config[N_COMMANDS];
	struct cmd_parser p;
	int c, mode = 0;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		mode = c;
	if ((c = command_ready(a, &p, c, 0, 1, "at most one command")) < 0)
		return c;
	assert(n_models_commands <= MAX_SUBCOMMANDS);
	docs_of_tables(docs, with_config, subs);
	if (mode == OPT_MAN) {
		char stages[4096];
		size_t len = 0;

		for (size_t i = 0; i < stage_count && len < sizeof(stages); i++)
			len += (size_t)snprintf(stages + len, sizeof(stages) - len, "%-10s %s\n",
						stage_table[i].name, stage_table[i].summary);
		cmd_print_man(stdout, docs, with_config, N_COMMANDS, "models", subs, n_models_commands,
			      stages);
	} else if (mode == OPT_COMPLETION) {
		cmd_print_completion(stdout, docs, with_config, N_COMMANDS, "models", subs,
				     n_models_commands);
	} else if (p.optind < p.argc) {
		const struct command *cmd = find_in(commands, N_COMMANDS, p.argv[p.optind]);

		if (!cmd)
			return err_set(a->err, LTV_EUSAGE, "'%s' is not a command; see 'ltvpipe --help'",
				       p.argv[p.optind]);
		print_command_help(stdout, cmd);
	} else {
		print_help(stdout);
	}
	return 0;
}

static void print_version(void)
{
	printf("ltvpipe %s\n", LTV_VERSION);
	printf("  registry schema %d\n", REGISTRY_SCHEMA_VERSION);
	printf("  SQLite %s\n", registry_sqlite_version());
	printf("  libyaml %s\n", config_yaml_version());
	printf("  XGBoost %s\n", gbt_version_string());
	printf("  OpenBLAS %s (%d thread%s)\n", openblas_get_config(), openblas_get_num_threads(),
	       openblas_get_num_threads() == 1 ? "" : "s");
}

/*
 * Pulls --config, --set and --quiet out of argv (they are common to every
 * command that reads the configuration), loads the file and applies the
 * overrides in order.
 */
static int load_config(int *argc, char **argv, struct config *cfg, struct ltv_err *err)
{
	const char *path = NULL;
	const char **sets = xcalloc((size_t)*argc + 1, sizeof(char *));
	size_t n_sets = 0;
	int out = 0, quiet = 0, ret = 0;

	for (int i = 0; i < *argc; i++) {
		const char *arg = argv[i];
		const char *value = NULL;
		int is_config = strncmp(arg, "--config", 8) == 0 && (arg[8] == '\0' || arg[8] == '=');
		int is_set = strncmp(arg, "--set", 5) == 0 && (arg[5] == '\0' || arg[5] == '=');

		if (strcmp(arg, "--quiet") == 0) {
			quiet = 1;
			continue;
		}
		if (strcmp(arg, "--") == 0) { /* operands only from here on */
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
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
	if (ret == 0 && quiet && log_level_current > LOG_WARN)
		log_level_current = LOG_WARN;
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

	if (!(flags & (CMD_REGISTRY_READ | CMD_REGISTRY_WRITE | CMD_NEEDS_INPUTS)) ||
	    access(cfg->registry.path, F_OK) == 0)
		return 0;
	if ((flags & (CMD_REGISTRY_READ | CMD_REGISTRY_WRITE)) &&
	    !(flags & (CMD_REGISTRY_CREATE | CMD_REGISTRY_OPTIONAL)))
		return err_set(err, LTV_ENOTFOUND, "no registry at '%s'%s; run ltvpipe from the "
			       "directory that holds your configuration and registry, pass --config F, "
			       "or train a model first with 'ltvpipe run'", cfg->registry.path, no_config);
	if (!(flags & CMD_NEEDS_INPUTS))
		return 0;
	/*
	 * Matched and readable is all this needs: hashing them here (0.5 GB of
	 * CSV at a million users, 0.2 s) was done again by the runner.
	 */
	ret = input_files_expand(cfg, &files, err);
	if (ret == 0)
		ret = input_files_check_readable(&files, err);
	input_files_release(&files);
	if (ret < 0 && defaults)
		err_prefix(err, "no registry at '%s' and no --config, nor config/ltvpipe.yaml here; "
			   "run ltvpipe from the directory that holds your configuration, or pass "
			   "--config F", cfg->registry.path);
	return ret;
}

static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

/* "ltvpipe" and every argument, quoted where the shell would need it, for the run's record. */
static char *command_line_of(int argc, char **argv)
{
	size_t size = 16;
	char *buf, *p;

	for (int i = 0; i < argc; i++)
		size += 3 + 2 * strlen(argv[i]);
	buf = xmalloc(size);
	p = stpcpy(buf, "ltvpipe");
	for (int i = 1; i < argc; i++) {
		int plain = argv[i][0] != '\0' && strspn(argv[i], "abcdefghijklmnopqrstuvwxyz"
							  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
							  "-_=.,:/+@%") == strlen(argv[i]);

		*p++ = ' ';
		if (plain) {
			p = stpcpy(p, argv[i]);
			continue;
		}
		*p++ = '\'';
		for (const char *s = argv[i]; *s; s++) {
			if (*s == '\'') {
				p = stpcpy(p, "'\\''");
				continue;
			}
			*p++ = *s;
		}
		*p++ = '\'';
		*p = '\0';
	}
	return buf;
}

/* Opens the registry as the flags ask: read-only in one snapshot, or for writing (and locked). */
int command_open_registry(unsigned flags, const struct config *cfg, struct registry **out_reg,
			  struct ltv_err *err)
{
	int ret = check_working_directory(flags, cfg, err);

	if (ret < 0)
		return ret;
	if (flags & CMD_REGISTRY_READ) {
		if ((flags & CMD_REGISTRY_OPTIONAL) && access(cfg->registry.path, F_OK) != 0)
			return 0; /* none yet: the handler says what that means (run --dry-run) */
		ret = registry_open_readonly(cfg->registry.path, out_reg, err);
		if (ret == 0)
			ret = registry_read_begin(*out_reg, err); /* one snapshot; ended by registry_close */
		return ret;
	}
	if (!(flags & CMD_REGISTRY_WRITE))
		return 0;
	/*
	 * A command that changes a registry never creates one (there would be
	 * nothing to change), except those that fill one from the input files.
	 */
	if (flags & CMD_REGISTRY_CREATE)
		ret = registry_open(cfg->registry.path, (int)cfg->registry.busy_timeout_s, out_reg, err);
	else
		ret = registry_open_existing(cfg->registry.path, (int)cfg->registry.busy_timeout_s,
					     out_reg, err);
	if (ret == 0 && (flags & CMD_RUN_LOCK))
		ret = registry_lock_run(*out_reg, (int)cfg->registry.busy_timeout_s, err);
	return ret;
}

int command_registry(struct command_args *a)
{
	/* a command without registry flags may have no configuration loaded either (generate) */
	if (a->reg || !(a->reg_flags & (CMD_REGISTRY_READ | CMD_REGISTRY_WRITE | CMD_NEEDS_INPUTS)))
		return 0;
	return command_open_registry(a->reg_flags, a->cfg, &a->reg, a->err);
}

int command_ready(struct command_args *a, struct cmd_parser *p, int c, int min, int max,
		  const char *what)
{
	if (c < 0)
		return c;
	c = cmd_operands(p, min, max, what, a->err);
	return c < 0 ? c : command_registry(a);
}

/* Dispatches `models SUB ...` through models_commands, opening the registry as SUB's flags ask. */
static int cmd_models(struct command_args *a)
{
	const char *name = a->argc > 1 ? a->argv[1] : "list";
	const struct command *sub = find_in(models_commands, n_models_commands, name);
	struct command_args sa = *a;
	char full[64];
	int ret;

	if (!sub)
		return err_set(a->err, LTV_EUSAGE, "'%s' is not a subcommand of models; see 'ltvpipe models "
			       "--help'", name);
	snprintf(full, sizeof(full), "models %s", sub->name);
	sa.argc = a->argc > 1 ? a->argc - 1 : 1;
	sa.argv = a->argc > 1 ? a->argv + 1 : a->argv;
	sa.name = full;
	sa.options = sub->options;
	sa.reg = NULL;
	sa.reg_flags = sub->flags;
	ret = sub->fn(&sa);
	registry_close(sa.reg);
	return ret;
}

/* The commands whose memory is hundreds of MB written once (ensure_runtime_env). */
static int wants_huge_pages(const char *command)
{
	return strcmp(command, "run") == 0 || strcmp(command, "score") == 0 ||
	       strcmp(command, "evaluate") == 0;
}

/*
 * Settings the C runtime reads once, when the process starts, so they are set
 * by re-executing once with them in the environment:
 *  - libgomp reads OMP_WAIT_POLICY before main. Its default spins waiting
 *    threads; on a shared or oversubscribed machine a team of two then ran
 *    XGBoost 40x slower than one thread (measured: multiplier 38 s vs 0.11 s
 *    on 100k users). Unless the user chose a policy: PASSIVE, which sleeps.
 *  - glibc reads GLIBC_TUNABLES before main. For the commands that fill
 *    hundreds of MB (run, score, evaluate), glibc.malloc.hugetlb=1 asks the
 *    kernel for transparent huge pages under malloc's heap (the machine's THP
 *    setting "madvise" gives them only when asked): one fault per 2 MB
 *    instead of 512, and a 4 KB fault costs about 7-17 us of CPU on these
 *    VMs. Scoring at 200,000 users: 32,000 faults, 1.7 CPU s; with it 2,000
 *    faults, 1.2 CPU s, and 4% more peak RSS. The cold training run at
 *    1,000,000 users (after ingest, four alternating pairs, session 18):
 *    minor faults 470-525k -> 173-198k, CPU 18.3-30.3 -> 17.0-21.4 s, wall
 *    12.2-16.8 -> 10.9-11.9 s, peak RSS 380-417 -> 388-393 MB, every
 *    artefact's content hash the same. (Training was left out while its peak
 *    was hurdle's 800 MB and a 2 MB page per 9 MB column cost up to 90 MB.)
 *    A tunable the user set stays: glibc.malloc.hugetlb=0 turns it off.
 *  - OpenBLAS (the pthread build) reads OPENBLAS_NUM_THREADS when it loads
 *    and starts a thread per further core, which spins on sched_yield for
 *    about 0.1 s before it sleeps. ltvpipe runs BLAS on one thread only
 *    (k-means sets one around its calls; curve's least squares is 2 columns),
 *    so unless the user chose a number: 1, no thread. `ltvpipe status` on a
 *    1,000,000-user registry: 270-445 -> 194-232 ms of CPU (perf stat).
 */
static void ensure_runtime_env(int argc, char **argv)
{
	static const char hugetlb[] = "glibc.malloc.hugetlb";
	const char *tunables = getenv("GLIBC_TUNABLES");
	const int thp = argc > 1 && wants_huge_pages(argv[1]) && !(tunables && strstr(tunables, hugetlb));
	char *joined = NULL;

	/*
	 * Once only: a setuid or capability-bearing binary may have
	 * GLIBC_TUNABLES dropped by glibc, which would exec again forever.
	 * Removed again so processes ltvpipe starts set their own.
	 */
	if (getenv("LTVPIPE_REEXECUTED")) {
		unsetenv("LTVPIPE_REEXECUTED");
		return;
	}
	if (getenv("OMP_WAIT_POLICY") && getenv("OPENBLAS_NUM_THREADS") && !thp)
		return;
	setenv("LTVPIPE_REEXECUTED", "1", 1);
	if (!getenv("OMP_WAIT_POLICY"))
		setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
	if (!getenv("OPENBLAS_NUM_THREADS"))
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
	if (thp) {
		joined = xasprintf("%s%s%s=1", tunables ? tunables : "", tunables && *tunables ? ":" : "",
				   hugetlb);
		setenv("GLIBC_TUNABLES", joined, 1);
		free(joined);
	}
	execv("/proc/self/exe", argv);
	/* exec failed (no /proc): carry on with the defaults */
	unsetenv("LTVPIPE_REEXECUTED");
}

/* `models SUB --help` prints SUB's help; `models --help`, the list of subcommands. */
static void print_help_for(const struct command *cmd, int argc, char **argv)
{
	const struct command *sub = NULL;

	if ((cmd->flags & CMD_SUBCOMMANDS) && argc > 2)
		sub = find_in(models_commands, n_models_commands, argv[2]);
	if (!sub) {
		print_command_help(stdout, cmd);
		return;
	}
	if (is_legacy(sub) || !sub->options) {
		struct cmd_doc doc = doc_of(sub);

		cmd_print_help(stdout, "ltvpipe models", &doc, 0);
		return;
	}
	cmd_print_help(stdout, "ltvpipe models", &(struct cmd_doc){ sub->name, sub->summary, sub->operands,
								     sub->options, sub->usage }, 0);
}

int main(int argc, char **argv)
{
	struct ltv_err err = { 0 };
	struct config cfg;
	const struct command *cmd;
	char *line = NULL;
	int have_config = 0, ret;

	ensure_runtime_env(argc, argv);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_help(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		print_version();
		return 0;
	}
	cmd = find_in(commands, N_COMMANDS, argv[1]);
	if (!cmd) {
		fprintf(stderr, "ltvpipe: '%s' is not a command; see 'ltvpipe --help'\n", argv[1]);
		return 2;
	}
	if (wants_help(argc - 1, argv + 1)) {
		print_help_for(cmd, argc, argv);
		return 0;
	}
	log_hook_xgboost();
	line = command_line_of(argc, argv);
	struct command_args args = { .argc = argc - 1, .argv = argv + 1, .cfg = &cfg,
				     .command_line = line, .name = cmd->name, .options = cmd->options,
				     .err = &err };
	if (cmd->flags & CMD_NEEDS_CONFIG) {
		ret = load_config(&args.argc, args.argv, &cfg, &err);
		have_config = 1;
		if (ret < 0)
			goto out;
	}
	args.reg_flags = cmd->flags;
	ret = cmd->fn(&args);
out:
	if (ret < 0)
		fprintf(stderr, "ltvpipe %s: error: %s\n", cmd->name, err.msg);
	registry_close(args.reg);
	if (have_config)
		config_release(&cfg);
	free(line);
	if (ret > 0 && (cmd->flags & CMD_EXIT_STATUS))
		return ret;
	return ltv_exit_code(ret);
}
