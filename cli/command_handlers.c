/*
 * The handlers of ltvpipe's top-level commands (run, status, score, predict,
 * serve, evaluate, monitor, generate, merge, merge-scores, dag, diff), each
 * with its options table: a handler parses its own options, then does its
 * command's work through the library. The command table that names them,
 * and the dispatcher that loads the configuration and opens the registry as
 * their flags ask, are in cli/main.c.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/command_handlers.h"
#include "ltv/evaluate.h"
#include "ltv/generate.h"
#include "ltv/inspect.h"
#include "ltv/monitor.h"
#include "ltv/runner.h"
#include "ltv/score.h"
#include "ltv/serve.h"
#include "ltv/shard_merge.h"

/* The JSON document of a command that prints one, with a newline. */
static void print_json(cJSON *doc)
{
	char *text = cJSON_Print(doc);

	printf("%s\n", text);
	cJSON_free(text);
}

/* ---- run ---- */

const struct cmd_option cmd_run_options[] = {
	AS_OF_OPTION("data cut-off (ISO 8601); default: the latest event ingested"),
	{ "only", OPT_ONLY, "S[,S]", "run only these stages (their inputs must exist)", 0 },
	{ "from", OPT_FROM, "S", "run the stages from S on", 0 },
	{ "to", OPT_TO, "S", "run the stages up to S", 0 },
	{ "force", OPT_FORCE, NULL, "rerun the selected stages even when up to date", 0 },
	{ "dry-run", OPT_DRY_RUN, NULL, "print what would run and why; change nothing", 0 },
	JSON_OPTION,
	{ "shard", OPT_SHARD, "I/N", "ingest and features of shard I of N only (users whose\n"
				   "XXH3-64 of user_id mod N is I) into a shard registry\n"
				   "(--set registry.path=...); features needs --as-of;\n"
				   "'ltvpipe merge' joins the shards into the main registry", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_run(struct command_args *a)
{
	struct run_options opts = { .as_of = INT64_MIN, .command = a->command_line };
	struct cmd_parser p;
	int c, json = 0, ret;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_AS_OF:
			ret = command_parse_as_of(p.optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_ONLY: opts.only = p.optarg; break;
		case OPT_FROM: opts.from = p.optarg; break;
		case OPT_TO: opts.to = p.optarg; break;
		case OPT_FORCE: opts.force = 1; break;
		case OPT_DRY_RUN: opts.dry_run = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_SHARD:
			ret = shard_parse(p.optarg, &opts.shard, a->err);
			if (ret < 0)
				return ret;
			break;
		}
	}
	/*
	 * A dry run writes nothing, so it reads the registry in one snapshot, and
	 * may describe a directory with none yet; a run gets it for writing (created
	 * on the first run), with the run lock held.
	 */
	if (opts.dry_run)
		a->reg_flags = CMD_REGISTRY_READ | CMD_REGISTRY_OPTIONAL;
	if ((c = command_ready(a, &p, c, 0, 0, NULL)) < 0)
		return c;
	if (json)
		opts.json = cJSON_CreateObject();
	ret = runner_run_on(a->cfg, a->reg, &opts, json ? stderr : stdout, a->err);
	if (json) {
		if (ret == 0)
			print_json(opts.json);
		cJSON_Delete(opts.json);
	}
	return ret;
}

/* ---- status ---- */

const struct cmd_option cmd_status_options[] = {
	AS_OF_OPTION("judge freshness at this cut-off; default: the latest event ingested"),
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_status(struct command_args *a)
{
	int64_t as_of = INT64_MIN;
	cJSON *json = NULL;
	FILE *text;
	struct cmd_parser p;
	int c, ret;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		if (c == OPT_JSON) {
			json = json ? json : cJSON_CreateObject();
			continue;
		}
		ret = command_parse_as_of(p.optarg, &as_of, a->err);
		if (ret < 0) {
			cJSON_Delete(json);
			return ret;
		}
	}
	c = command_ready(a, &p, c, 0, 0, NULL);
	/* with --json the document says all the text would: the text goes nowhere */
	text = json ? fopen("/dev/null", "w") : stdout;
	if (!text && c == 0)
		c = err_set(a->err, LTV_EIO, "cannot open /dev/null");
	ret = c < 0 ? c : runner_status(a->cfg, a->reg, as_of, text, json, a->err);
	if (ret == 0 && json)
		print_json(json);
	if (text && text != stdout)
		fclose(text);
	cJSON_Delete(json);
	return ret;
}

/* ---- score ---- */

const struct cmd_option cmd_score_options[] = {
	MODEL_OPTION,
	AS_OF_OPTION("score the users as they were at DATE; default: the latest event"),
	{ "users", OPT_USERS, "F", "score the users of this file instead of the registry's data,\n"
				  "through a scratch registry; the output is F's own rows and\n"
				  "columns, then the predictions and a reason per row not scored", 0 },
	{ "events", OPT_EVENTS, "F", "the events of the users of --users (without it, users are\n"
				    "valued from campaign and cost at the latest install)", 0 },
	{ "allow-lookahead", OPT_ALLOW_LOOKAHEAD, NULL, "score at an --as-of before the one the model "
							 "was\ntrained at (look-ahead; refused otherwise)", 0 },
	{ "output", OPT_OUTPUT, "F", "the per-user CSV ('-': stdout; the campaign summary and\n"
				    "report then go beside nothing and are not written)", 0 },
	JSON_OPTION,
	{ "shard", OPT_SHARD, "I/N", "score only the cohorts of shard I of N, and write\n"
				   "F.shard.csv for 'ltvpipe merge-scores'", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_score(struct command_args *a)
{
	struct score_options opts = { .as_of = INT64_MIN };
	struct cmd_parser p;
	int c, json = 0, ret;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_MODEL: opts.model = p.optarg; break;
		case OPT_AS_OF:
			ret = command_parse_as_of(p.optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_USERS: opts.users_path = p.optarg; break;
		case OPT_EVENTS: opts.events_path = p.optarg; break;
		case OPT_OUTPUT: opts.output = p.optarg; break;
		case OPT_ALLOW_LOOKAHEAD: opts.allow_lookahead = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_SHARD:
			ret = shard_parse(p.optarg, &opts.shard, a->err);
			if (ret < 0)
				return ret;
			break;
		}
	}
	if (c < 0)
		return c;
	if (json)
		opts.json = cJSON_CreateObject();
	if (!opts.output)
		ret = err_set(a->err, LTV_EUSAGE, "--output F is required (the users CSV, or - for stdout)");
	else if (opts.events_path && !opts.users_path)
		ret = err_set(a->err, LTV_EUSAGE, "--events F needs --users F (the users the events "
			      "belong to)");
	else if (opts.shard.count && strcmp(opts.output, "-") == 0)
		ret = err_set(a->err, LTV_EUSAGE, "--shard writes F.shard.csv beside --output F for "
			      "merge-scores; give a file, not -");
	else
		ret = command_ready(a, &p, c, 0, 0, NULL);
	/* with --output - the CSV owns stdout, so what score says goes to stderr */
	if (ret == 0)
		ret = score_run(a->cfg, a->reg, &opts,
				json || strcmp(opts.output, "-") == 0 ? stderr : stdout, a->err);
	if (json) {
		if (ret == 0)
			print_json(opts.json);
		cJSON_Delete(opts.json);
	}
	return ret;
}

/* ---- predict ---- */

const struct cmd_option cmd_predict_options[] = {
	MODEL_OPTION,
	{ "app", OPT_APP, "A", "the user's app (required)", 0 },
	{ "campaign", OPT_CAMPAIGN, "C", "the user's campaign", 0 },
	{ "feature", OPT_FEATURE, "NAME=VALUE", "one feature of the user (repeatable)", 1 },
	{ "attr", OPT_ATTR, "NAME=VALUE", "one attribute of the user, a column of the model's\n"
	  "columns.attributes, e.g. country=US (repeatable)", 1 },
	{ "explain", OPT_EXPLAIN, NULL, "add \"explain\": the method chain that served (each method's\n"
	  "raw prediction) and the tree models' top feature contributions (TreeSHAP)\n"
	  "at the target horizon", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_predict(struct command_args *a)
{
	struct predict_options opts = { 0 };
	char **features = xcalloc((size_t)a->argc + 1, sizeof(char *));
	char **attrs = xcalloc((size_t)a->argc + 1, sizeof(char *));
	struct cmd_parser p;
	int c, ret;

	opts.features = features;
	opts.attrs = attrs;
	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_MODEL: opts.model = p.optarg; break;
		case OPT_APP: opts.app = p.optarg; break;
		case OPT_CAMPAIGN: opts.campaign = p.optarg; break;
		case OPT_FEATURE: features[opts.n_features++] = (char *)p.optarg; break;
		case OPT_ATTR: attrs[opts.n_attrs++] = (char *)p.optarg; break;
		case OPT_EXPLAIN: opts.explain = 1; break;
		}
	}
	c = command_ready(a, &p, c, 0, 0, NULL);
	ret = c < 0 ? c : predict_run(a->cfg, a->reg, &opts, stdout, a->err);
	free(features);
	free(attrs);
	return ret;
}

/* ---- serve ---- */

const struct cmd_option cmd_serve_options[] = {
	{ "port", OPT_PORT, "P", "default serve.port (8080); 0 picks a free port, printed", 0 },
	{ "bind", OPT_BIND, "ADDR", "a loopback address (default 127.0.0.1); never another", 0 },
	{ "model", OPT_MODEL, "V", "version number or alias (default serve.model: production)", 0 },
	{ "threads", OPT_THREADS, "N", "request threads (default serve.threads: 0 = one per core, at least 2)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_serve(struct command_args *a)
{
	struct serve_options opts = { .port = -1 };
	struct cmd_parser p;
	int c;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_PORT:
			if (parse_int64(p.optarg, &opts.port) < 0 || opts.port < 0 || opts.port > 65535)
				return err_set(a->err, LTV_EUSAGE, "serve: --port takes 0..65535 (0: a free port)");
			break;
		case OPT_BIND: opts.bind = p.optarg; break;
		case OPT_MODEL: opts.model = p.optarg; break;
		case OPT_THREADS:
			if (parse_int64(p.optarg, &opts.threads) < 0 || opts.threads < 1 || opts.threads > 256)
				return err_set(a->err, LTV_EUSAGE, "serve: --threads takes 1..256");
			break;
		}
	}
	/* no registry flag: serve opens its own, again at each hot swap (cli/serve.c) */
	if ((c = command_ready(a, &p, c, 0, 0, NULL)) < 0)
		return c;
	return serve_run(a->cfg, &opts, a->err);
}

/* ---- evaluate ---- */

const struct cmd_option cmd_evaluate_options[] = {
	AS_OF_OPTION("the cut-off (ISO 8601); default: the latest event minus the\n"
		     "longest horizon, so every actual is complete"),
	{ "horizons", OPT_HORIZONS, "H[,H]", "horizons in days to evaluate (default: features.horizons);\n"
					    "the model trains on the target horizon if listed, else the first", 0 },
	{ "model", OPT_MODEL, "V", "evaluate the registry's version V (or alias) instead of training", 0 },
	{ "output", OPT_OUTPUT, "DIR", "where the reports go (default: <run.log_dir>/eval-<run id>)", 0 },
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_evaluate(struct command_args *a)
{
	struct evaluate_options opts = { .as_of = INT64_MIN, .command = a->command_line };
	struct cmd_parser p;
	int c, json = 0, ret;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_AS_OF:
			ret = command_parse_as_of(p.optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_HORIZONS: opts.horizons = p.optarg; break;
		case OPT_OUTPUT: opts.output_dir = p.optarg; break;
		case OPT_MODEL: opts.model = p.optarg; break;
		case OPT_JSON: json = 1; break;
		}
	}
	if ((c = command_ready(a, &p, c, 0, 0, NULL)) < 0)
		return c;
	if (!json)
		return evaluate_run(a->cfg, a->reg, &opts, stdout, NULL, a->err);
	return evaluate_run_json(a->cfg, a->reg, &opts, a->err);
}

/* ---- monitor ---- */

const struct cmd_option cmd_monitor_options[] = {
	{ "model", OPT_MODEL, "V", "the version monitored (default production)", 0 },
	AS_OF_OPTION("end of the monitored window (default: the latest event)"),
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_monitor(struct command_args *a)
{
	struct monitor_options opts = { .as_of = INT64_MIN };
	struct monitor_result r;
	struct cmd_parser p;
	int c, ret;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_MODEL: opts.model = p.optarg; break;
		case OPT_AS_OF:
			ret = command_parse_as_of(p.optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_JSON: opts.json = 1; break;
		}
	}
	if ((c = command_ready(a, &p, c, 0, 0, NULL)) < 0)
		return c;
	ret = monitor_run(a->cfg, a->reg, &opts, stdout, &r, a->err);
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

const struct cmd_option cmd_generate_options[] = {
	{ "users", OPT_USERS, "N", "how many users (default 20000)", 0 },
	{ "seed", OPT_SEED, "S", "the random seed (default 42): the same seed, the same files", 0 },
	{ "start", OPT_START, "YYYY-MM-DD", "the first install date", 0 },
	{ "order", OPT_ORDER, "user|time", "user (default) writes each user's events together; time\n"
					  "orders them by time across users, as an export of an events\n"
					  "table is", 0 },
	{ "out", OPT_OUT, "DIR", "where users.csv and events.csv go (default data)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_generate(struct command_args *a)
{
	struct generate_param p;
	struct generate_stats st;
	struct cmd_parser cp;
	const char *out_dir = "data", *why;
	double started = now_seconds();
	int c, ret;

	generate_param_init(&p);
	command_parser_init(&cp, a);
	while ((c = cmd_getopt(&cp, a->err)) > 0) {
		switch (c) {
		case OPT_USERS:
			ret = parse_count(cp.optarg, "--users", &p.n_users, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_SEED: {
			int64_t seed;

			if (parse_int64(cp.optarg, &seed) < 0 || seed < 0)
				return err_set(a->err, LTV_EUSAGE, "generate: --seed '%s' must be a whole number >= 0",
					       cp.optarg);
			p.seed = (uint64_t)seed;
			break;
		}
		case OPT_OUT: out_dir = cp.optarg; break;
		case OPT_START: p.start_date = cp.optarg; break;
		case OPT_ORDER:
			if (strcmp(cp.optarg, "user") != 0 && strcmp(cp.optarg, "time") != 0)
				return err_set(a->err, LTV_EUSAGE, "generate: --order '%s' must be 'user' or 'time'",
					       cp.optarg);
			p.order = cp.optarg[0] == 't' ? GENERATE_ORDER_TIME : GENERATE_ORDER_USER;
			break;
		}
	}
	if ((c = command_ready(a, &cp, c, 0, 0, NULL)) < 0)
		return c;
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

/* ---- merge and merge-scores (cli/shard_merge.c, cli/score_merge.c) ---- */

int cmd_merge(struct command_args *a)
{
	struct cmd_parser p;
	int c;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		;
	c = command_ready(a, &p, c, 1, -1, "the shard registries, e.g. 'ltvpipe merge "
			  "shards/shard-*-of-4.sqlite'");
	/* merge opens (or creates) the main registry itself, in its one transaction */
	return c < 0 ? c : shard_merge_run(a->cfg, a->argc - p.optind, a->argv + p.optind,
					    a->command_line, stdout, a->err);
}

const struct cmd_option cmd_merge_scores_options[] = {
	{ "output", OPT_OUTPUT, "F", "the merged per-user CSV, F.campaigns.csv and F.report.txt\n"
				    "beside it (required; '-': the per-user CSV to stdout alone)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_merge_scores(struct command_args *a)
{
	const char *output = NULL;
	struct cmd_parser p;
	int c;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		output = p.optarg;
	if (c == 0 && !output)
		c = err_set(a->err, LTV_EUSAGE, "--output F is required (the merged users CSV)");
	c = command_ready(a, &p, c, 1, -1, "the shards' outputs, e.g. 'ltvpipe merge-scores "
			  "--output scores.csv shards/scores-*-of-4.csv'");
	/* with --output - the CSV owns stdout, so what merge-scores says goes to stderr */
	return c < 0 ? c : shard_merge_scores_run(a->cfg, a->reg, output, a->argc - p.optind,
						   a->argv + p.optind,
						   strcmp(output, "-") == 0 ? stderr : stdout, a->err);
}

/* ---- dag and diff ---- */

const struct cmd_option cmd_dag_options[] = {
	{ "dot", OPT_DOT, NULL, "print the graph in Graphviz's dot language", 0 },
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_dag(struct command_args *a)
{
	struct cmd_parser p;
	int c, fmt = DAG_TEXT;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		fmt = c == OPT_DOT ? DAG_DOT : DAG_JSON;
	c = command_ready(a, &p, c, 0, 0, NULL);
	return c < 0 ? c : inspect_dag(stdout, fmt, a->err);
}

int cmd_diff(struct command_args *a)
{
	struct cmd_parser p;
	int c, json = 0;

	command_parser_init(&p, a);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		json = 1;
	c = command_ready(a, &p, c, 2, 2, "two runs or two model versions");
	return c < 0 ? c : inspect_diff(a->reg, a->argv[p.optind], a->argv[p.optind + 1], json, stdout,
					 a->err);
}

