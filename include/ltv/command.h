/*
 * The command table's types, shared by the driver (cli/main.c) and the
 * files that hold a command's own table of subcommands (cli/models_cli.c):
 * what a handler receives, the flags the dispatcher acts on, the option keys
 * and the options several commands share.
 */
#ifndef LTV_COMMAND_H
#define LTV_COMMAND_H

#include <stddef.h>

#include "ltv/cmdline.h"
#include "ltv/config.h"
#include "ltv/registry.h"

enum command_flags {
	CMD_NEEDS_CONFIG = 1 << 0,   /* parse --config/--set/--quiet and validate before the handler */
	CMD_EXIT_STATUS = 1 << 1,    /* a positive return is the process exit status (monitor: 3, 4) */
	CMD_REGISTRY_READ = 1 << 2,  /* open the existing registry read-only, in one read snapshot */
	CMD_REGISTRY_WRITE = 1 << 3, /* open the existing registry for writing (never creates one) */
	/*
	 * With CMD_REGISTRY_WRITE: the dispatcher takes the run lock
	 * (registry_lock_run) before the handler runs stages on the registry, and
	 * releases it when it closes the registry after the handler: one run at a
	 * time, whoever starts it (run; merge holds it inside its own transaction).
	 */
	CMD_RUN_LOCK = 1 << 4,
	CMD_SUBCOMMANDS = 1 << 5,    /* argv[1] names an entry of the command's own table */
	CMD_NEEDS_INPUTS = 1 << 6,   /* without a registry yet, the input files must exist (run, evaluate) */
	CMD_REGISTRY_CREATE = 1 << 7, /* with CMD_REGISTRY_WRITE: create it when absent (once the inputs exist) */
	CMD_REGISTRY_OPTIONAL = 1 << 8, /* with CMD_REGISTRY_READ: no registry yet leaves a->reg NULL */
};

struct command_args {
	int argc;
	char **argv;
	struct config *cfg;
	struct registry *reg;     /* opened by command_registry as the flags ask; closed by the dispatcher */
	unsigned reg_flags;       /* the command's CMD_REGISTRY_* and CMD_RUN_LOCK */
	const char *command_line; /* the whole command line, --config and --set included */
	const char *name;         /* "run", "models list": for messages */
	const struct cmd_option *options;
	struct ltv_err *err;
};

struct command {
	const char *name;
	int (*fn)(struct command_args *args);
	unsigned flags;
	const char *summary;
	/*
	 * The prose after the synopsis. An entry whose text starts with "usage:"
	 * and has no options table is printed as it is (a command written before
	 * the tables grew options).
	 */
	const char *usage;
	const struct cmd_option *options;
	const char *operands;
};

enum { OPT_AS_OF = 1, OPT_ONLY, OPT_FROM, OPT_TO, OPT_FORCE, OPT_DRY_RUN, OPT_JSON, OPT_MODEL,
       OPT_USERS, OPT_EVENTS, OPT_OUTPUT, OPT_APP, OPT_CAMPAIGN, OPT_FEATURE, OPT_PORT, OPT_BIND,
       OPT_THREADS, OPT_HORIZONS, OPT_HORIZON, OPT_SEED, OPT_OUT, OPT_START, OPT_ORDER, OPT_DOT,
       OPT_MAN, OPT_COMPLETION, OPT_SHARD, OPT_EXPLAIN, OPT_REASON, OPT_ALLOW_LOOKAHEAD,
       OPT_ATTR };

#define JSON_OPTION { "json", OPT_JSON, NULL, "print one JSON document on stdout (messages go to stderr)", 0 }
#define AS_OF_OPTION(help) { "as-of", OPT_AS_OF, "DATE", help, 0 }
#define MODEL_OPTION { "model", OPT_MODEL, "V", "model version number, or alias production or candidate\n(default production)", 0 }


/* Options of a command that takes only --json (models_cli.c). */
extern const struct cmd_option json_only_options[];

/* models' subcommands (cli/models_cli.c), dispatched by cmd_models in main.c */
extern const struct command models_commands[];
extern const size_t n_models_commands;

/* parse_as_of, with the message every command gives */
int command_parse_as_of(const char *text, int64_t *out, struct ltv_err *err);
/*
 * Opens cfg's registry as flags ask (main.c): CMD_REGISTRY_READ read-only in one
 * snapshot, CMD_REGISTRY_WRITE an existing one for writing (with CMD_RUN_LOCK,
 * locked); neither: *out_reg stays NULL. The caller closes it. Run from the
 * wrong directory (no registry; with CMD_NEEDS_INPUTS, no input files either)
 * it fails before anything is created, saying where to run from.
 */
int command_open_registry(unsigned flags, const struct config *cfg, struct registry **out_reg,
			  struct ltv_err *err);
/*
 * a->reg opened as the command's flags ask, once the handler has parsed its
 * arguments (so a usage error is said before a missing registry is). The
 * dispatcher closes it after the handler.
 */
int command_registry(struct command_args *a);
/*
 * The end of every handler's parsing: c is cmd_getopt's last return (< 0: a
 * usage error, returned as it is); then between min and max operands (max -1:
 * any number; what names them in the message); then a->reg opened as the
 * command's flags ask. 0 or the error.
 */
int command_ready(struct command_args *a, struct cmd_parser *p, int c, int min, int max,
		  const char *what);
/* A parser over a's options, named after a's command. */
void command_parser_init(struct cmd_parser *p, const struct command_args *a);

#endif
