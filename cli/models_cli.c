/*
 * `ltvpipe models`: its subcommands as a table (models_commands), each with
 * its options and the registry access the dispatcher in main.c gives it
 * (read-only in one snapshot, or for writing). The work is in
 * model_commands.c, model_compare.c and experiment.c.
 */
#include <string.h>

#include "ltv/command.h"
#include "ltv/experiment.h"
#include "ltv/model_compare.h"
#include "ltv/model_loader.h"
#include "ltv/score.h"

/* ---- models: a table of subcommands ---- */

static int parse_version(const char *text, int64_t *out, struct ltv_err *err)
{
	if (!text || parse_int64(text, out) < 0 || *out < 1)
		return err_set(err, LTV_EUSAGE, "models: expected a model version number, got '%s'",
			       text ? text : "nothing");
	return 0;
}

const struct cmd_option json_only_options[] = {
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

/* Parses a subcommand that takes only --json and exactly n_operands operands. */
static int json_and_operands(struct command_args *a, int n_operands, const char *what, int *out_json,
			     int *out_first)
{
	struct cmd_parser p;
	int c;

	*out_json = 0;
	cmd_parser_init(&p, a->name, a->name, a->options, a->argc, a->argv);
	while ((c = cmd_getopt(&p, a->err)) > 0)
		*out_json = 1;
	c = command_ready(a, &p, c, n_operands, n_operands, what);
	*out_first = p.optind;
	return c;
}

static int cmd_models_list(struct command_args *a)
{
	int json, first, ret = json_and_operands(a, 0, NULL, &json, &first);

	return ret < 0 ? ret : models_list(a->reg, json, stdout, a->err);
}

static int cmd_models_show(struct command_args *a)
{
	int64_t version;
	int json, first, ret = json_and_operands(a, 1, "one model version", &json, &first);

	if (ret == 0)
		ret = model_resolve(a->reg, a->argv[first], &version, a->err);
	return ret < 0 ? ret : models_show(a->reg, a->cfg, version, json, stdout, a->err);
}

static int cmd_models_history(struct command_args *a)
{
	int json, first, ret = json_and_operands(a, 0, NULL, &json, &first);

	return ret < 0 ? ret : models_history(a->reg, json, stdout, a->err);
}

static const struct cmd_option move_options[] = {
	{ "reason", OPT_REASON, "TEXT", "why, kept in the alias history", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

/* Parses [--reason TEXT] and n_operands operands; *out_why = what + ": " + TEXT. */
static int parse_move(struct command_args *a, int n_operands, const char *what_operands,
		      const char *what, char *out_why, size_t size, struct cmd_parser *p)
{
	const char *reason = NULL;
	int c;

	cmd_parser_init(p, a->name, a->name, a->options, a->argc, a->argv);
	while ((c = cmd_getopt(p, a->err)) > 0) {
		if (!*p->optarg)
			return err_set(a->err, LTV_EUSAGE, "models %s: --reason needs a text (why, kept "
				       "in the alias history)", a->name);
		reason = p->optarg;
	}
	if (c == 0)
		c = cmd_operands(p, n_operands, n_operands, what_operands, a->err);
	snprintf(out_why, size, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
	return c;
}

static int cmd_models_promote(struct command_args *a)
{
	struct cmd_parser p;
	char why[1100];
	int64_t version;
	int c = parse_move(a, 1, "one model version", "promoted by hand (ltvpipe models promote)", why,
			   sizeof(why), &p);

	if (c == 0)
		c = parse_version(a->argv[p.optind], &version, a->err);
	if (c == 0)
		c = command_registry(a);
	return c < 0 ? c : models_promote(a->reg, version, why, stdout, a->err);
}

static int cmd_models_rollback(struct command_args *a)
{
	struct cmd_parser p;
	char why[1100];
	int64_t version;
	int c = parse_move(a, 0, NULL, "rollback (ltvpipe models rollback)", why, sizeof(why), &p);

	if (c == 0)
		c = command_registry(a);
	if (c == 0)
		c = registry_alias_previous(a->reg, "production", &version, a->err);
	return c < 0 ? c : models_promote(a->reg, version, why, stdout, a->err);
}

static const struct cmd_option compare_options[] = {
	AS_OF_OPTION("outcomes complete at T (default: the latest event)"),
	{ "horizon", OPT_HORIZON, "H", "the horizon compared (default: A's target horizon)", 0 },
	JSON_OPTION,
	{ NULL, 0, NULL, NULL, 0 },
};

static int cmd_models_compare(struct command_args *a)
{
	struct compare_options opts = { .as_of = INT64_MIN };
	struct cmd_parser p;
	int c, ret;

	cmd_parser_init(&p, a->name, a->name, a->options, a->argc, a->argv);
	while ((c = cmd_getopt(&p, a->err)) > 0) {
		switch (c) {
		case OPT_AS_OF:
			ret = command_parse_as_of(p.optarg, &opts.as_of, a->err);
			if (ret < 0)
				return ret;
			break;
		case OPT_HORIZON:
			if (parse_int64(p.optarg, &opts.horizon) < 0 || opts.horizon < 1)
				return err_set(a->err, LTV_EUSAGE, "models compare: --horizon '%s' must be a "
					       "number of days >= 1", p.optarg);
			break;
		case OPT_JSON: opts.json = 1; break;
		}
	}
	c = command_ready(a, &p, c, 2, 2, "two model versions, e.g. 'ltvpipe models compare "
			  "production candidate'");
	if (c < 0)
		return c;
	opts.a = a->argv[p.optind];
	opts.b = a->argv[p.optind + 1];
	return models_compare(a->cfg, a->reg, &opts, stdout, a->err);
}

/* experiment has its own verbs (start, stop, list, report), parsed by experiment.c. */
static int cmd_models_experiment(struct command_args *a)
{
	struct registry *reg = NULL;
	int writes = experiment_verb_writes(a->argc, a->argv), ret = 0;

	/* the verb picks the registry access; an unknown one is refused by experiment_command */
	if (writes >= 0)
		ret = command_open_registry(writes ? CMD_REGISTRY_WRITE : CMD_REGISTRY_READ, a->cfg, &reg,
					    a->err);
	if (ret == 0)
		ret = experiment_command(a->cfg, reg, a->argc, a->argv, stdout, a->err);
	registry_close(reg);
	return ret;
}

static int cmd_models_export(struct command_args *a)
{
	int64_t version;
	int json, first, ret = json_and_operands(a, 2, "a model version and a directory", &json, &first);

	if (ret == 0)
		ret = model_resolve(a->reg, a->argv[first], &version, a->err);
	return ret < 0 ? ret : models_export(a->reg, version, a->argv[first + 1], json, stdout, a->err);
}

const struct command models_commands[] = {
	{ "list", cmd_models_list, CMD_REGISTRY_READ,
	  "every version: trained as_of, out-of-sample WAPE, aliases, config vs production",
	  "One row per model version: its number, when and by which run it was made, its\n"
	  "campaign WAPE at the target horizon out of sample (select's cross-fitted figure),\n"
	  "the horizon, its aliases, the as_of it was trained at, and the configuration keys\n"
	  "whose values differ from production's (production → this version).\n", json_only_options, NULL },
	{ "show", cmd_models_show, CMD_REGISTRY_READ,
	  "the artefacts of version V with their metrics, and its backtests",
	  NULL, json_only_options, "V" },
	{ "history", cmd_models_history, CMD_REGISTRY_READ,
	  "every alias move: when, alias, from, to, who, why", NULL, json_only_options, NULL },
	{ "promote", cmd_models_promote, CMD_REGISTRY_WRITE, "make V production (recorded in the alias history)",
	  NULL, move_options, "V" },
	{ "rollback", cmd_models_rollback, CMD_REGISTRY_WRITE,
	  "make the previous production version production again", NULL, move_options, NULL },
	{ "compare", cmd_models_compare, CMD_REGISTRY_READ,
	  "both versions on the same users, with a paired bootstrap",
	  "Scores A and B on the users installed after both versions' as_of whose ltv_H is\n"
	  "complete at T, as of T - H; prints campaign WAPE, normalized Gini and bias of each,\n"
	  "B - A with a paired bootstrap 95% interval and p-value (models.compare_resamples\n"
	  "resamples of users within campaigns, fixed seed).\n",
	  compare_options, "A B" },
	{ "experiment", cmd_models_experiment, 0, "A/B test of a version against production",
	  "  start NAME --candidate V [--share S] [--horizon H] [--min-users N] [--log-rate R]\n"
	  "  stop NAME | list | report NAME [--as-of DATE]\n\n"
	  "score sends the users whose salted hash of user_id is below --share (default 0.1)\n"
	  "to V and logs a --log-rate sample (default 1) of predictions; report gives each\n"
	  "arm's accuracy once outcomes mature, and the test of the difference only once\n"
	  "both arms have --min-users (default 2000) users.\n",
	  NULL, "start|stop|list|report ..." },
	{ "export", cmd_models_export, CMD_REGISTRY_READ,
	  "write V's XGBoost models (XGBoost JSON), other artefacts and a manifest to DIR",
	  "Writes each XGBoost booster as DIR/<artefact>.<key>.json (XGBoosterSaveModel's JSON\n"
	  "format, loadable by any XGBoost), every other stored blob as it is, and\n"
	  "DIR/manifest.json listing every artefact of V with its stage version, as_of,\n"
	  "config, metrics and the files written with their sizes and content hashes (xxHash).\n",
	  json_only_options, "V DIR" },
};
const size_t n_models_commands = sizeof(models_commands) / sizeof(models_commands[0]);

