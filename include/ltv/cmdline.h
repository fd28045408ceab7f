/*
 * The command table's vocabulary, shared by the driver (src/main.c), its help
 * and the files generated from the same table: a man page (ltvpipe.1) and a
 * bash completion script. A command lists its options once, in a table of
 * struct cmd_option; the parser (cmd_getopt), --help, the man page and the
 * completion all read that table, so none of them can name an option the
 * others do not know.
 */
#ifndef LTV_CMDLINE_H
#define LTV_CMDLINE_H

#include <stddef.h>
#include <stdio.h>

#include "ltv/common.h"

struct cmd_option {
	const char *name;   /* long name without the dashes: "as-of" */
	int key;            /* what cmd_getopt returns for it (> 0) */
	const char *arg;    /* NULL for a flag, else the value's name in help: "DATE" */
	const char *help;   /* what it does; '\n' starts a continuation line */
	int repeatable;     /* shown as [--name ARG]... */
};

/*
 * One entry of a command table (commands, or models' subcommands). options
 * ends with a zeroed entry; NULL when the command takes none. operands is the
 * synopsis of its positional arguments ("V", "A B"), or NULL.
 */
struct cmd_doc {
	const char *name;
	const char *summary;     /* one line */
	const char *operands;
	const struct cmd_option *options;
	const char *description; /* paragraphs after the synopsis, or NULL */
};

/* An option parser over a table (GNU getopt_long, argv permuted, opterr off). */
struct cmd_parser {
	int argc;
	char **argv;
	const char *command;           /* "run", "models compare": named in messages */
	const char *help_command;      /* what 'ltvpipe X --help' names */
	const struct cmd_option *options;
	const char *optarg;            /* the current option's value */
	int optind;                    /* after the loop: the first operand */
};

void cmd_parser_init(struct cmd_parser *p, const char *command, const char *help_command,
		     const struct cmd_option *options, int argc, char **argv);
/*
 * The next option's key; 0 when the options are done (p->optind is then the
 * first operand); or LTV_EUSAGE with one line in err naming the option that is
 * unknown or lacks its value.
 */
int cmd_getopt(struct cmd_parser *p, struct ltv_err *err);
/* LTV_EUSAGE unless the operands left number between min and max; what names them. */
int cmd_operands(const struct cmd_parser *p, int min, int max, const char *what,
		 struct ltv_err *err);

/* Options every command that reads the configuration takes (--config, --set, --quiet). */
extern const struct cmd_option cmd_config_options[];

/* "usage: ltvpipe NAME [--opt ARG]... OPERANDS", wrapped at 80 columns, then the description
 * and one line per option. with_config adds cmd_config_options. prefix: "ltvpipe" or
 * "ltvpipe models". */
void cmd_print_help(FILE *out, const char *prefix, const struct cmd_doc *doc, int with_config);
/* One line per option (continuation lines indented), as --help lists them. */
void cmd_print_options(FILE *out, const struct cmd_option *options);
/* The man page (roff) of the program: commands[n] with their options; subs documents the
 * subcommands of the command named sub_of. */
void cmd_print_man(FILE *out, const struct cmd_doc *commands, const int *with_config, size_t n,
		   const char *sub_of, const struct cmd_doc *subs, size_t n_subs,
		   const char *stages_text);
/* A bash completion script: commands, their options, models' subcommands and files for values. */
void cmd_print_completion(FILE *out, const struct cmd_doc *commands, const int *with_config,
			  size_t n, const char *sub_of, const struct cmd_doc *subs, size_t n_subs);

#endif
