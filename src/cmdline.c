/*
 * Reads a command's option table three ways: to parse argv (one clear line
 * naming the option when it is unknown or lacks its value, where getopt
 * itself printed two), to print --help, and to write the man page and the
 * bash completion script, so that the four always agree.
 */
#include <assert.h>
#include <getopt.h>
#include <string.h>

#include "ltv/cmdline.h"

const struct cmd_option cmd_config_options[] = {
	{ "config", 0, "F", "configuration file (default config/ltvpipe.yaml)", 0 },
	{ "set", 0, "KEY=VALUE", "override one configuration value, e.g.\n"
				 "--set features.validation_days=21", 1 },
	{ "quiet", 0, NULL, "print only warnings and errors on stderr (no progress)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

static size_t count_options(const struct cmd_option *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

void cmd_parser_init(struct cmd_parser *p, const char *command, const char *help_command,
		     const struct cmd_option *options, int argc, char **argv)
{
	*p = (struct cmd_parser){ .argc = argc, .argv = argv, .command = command,
				  .help_command = help_command, .options = options };
	optind = 1;
	opterr = 0;
	p->optind = 1;
}

int cmd_getopt(struct cmd_parser *p, struct ltv_err *err)
{
	struct option longs[32];
	size_t n = count_options(p->options);
	int c;

	assert(n < sizeof(longs) / sizeof(longs[0]));
	for (size_t i = 0; i < n; i++)
		longs[i] = (struct option){ p->options[i].name,
					    p->options[i].arg ? required_argument : no_argument, NULL,
					    p->options[i].key };
	longs[n] = (struct option){ NULL, 0, NULL, 0 };
	/* ':' first: a missing value is told apart from an unknown option */
	c = getopt_long(p->argc, p->argv, ":", longs, NULL);
	p->optind = optind;
	if (c == -1)
		return 0;
	if (c == ':' || c == '?') {
		const char *arg = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "?";

		if (c == ':')
			return err_set(err, LTV_EUSAGE, "option '%s' needs a value; see 'ltvpipe %s --help'",
				       arg, p->help_command);
		return err_set(err, LTV_EUSAGE, "unknown option '%s'; see 'ltvpipe %s --help'", arg,
			       p->help_command);
	}
	p->optarg = optarg;
	return c;
}

int cmd_operands(const struct cmd_parser *p, int min, int max, const char *what,
		 struct ltv_err *err)
{
	int n = p->argc - p->optind;

	if (n > max && max >= 0)
		return err_set(err, LTV_EUSAGE, "unexpected argument '%s'%s%s; see 'ltvpipe %s --help'",
			       p->argv[p->optind + (max > 0 ? max : 0)],
			       what ? ", expected " : "", what ? what : "", p->help_command);
	if (n < min)
		return err_set(err, LTV_EUSAGE, "expected %s; see 'ltvpipe %s --help'",
			       what ? what : "more arguments", p->help_command);
	return 0;
}

/* ---- --help ---- */

/* Appends word to the synopsis, wrapping at 80 columns under the indent. */
static void syn_word(FILE *out, const char *word, size_t *col, size_t indent)
{
	size_t len = strlen(word);

	if (*col + 1 + len > 80) {
		fprintf(out, "\n%*s", (int)indent, "");
		*col = indent;
	} else {
		fputc(' ', out);
		(*col)++;
	}
	fputs(word, out);
	*col += len;
}

static void option_synopsis(const struct cmd_option *o, char *buf, size_t size)
{
	if (o->arg)
		snprintf(buf, size, "[--%s %s]%s", o->name, o->arg, o->repeatable ? "..." : "");
	else
		snprintf(buf, size, "[--%s]", o->name);
}

void cmd_print_options(FILE *out, const struct cmd_option *o)
{
	for (; o && o->name; o++) {
		char left[64];
		const char *h = o->help, *nl;

		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		nl = strchr(h, '\n');
		fprintf(out, "  %-20s%.*s\n", left, (int)(nl ? nl - h : (ptrdiff_t)strlen(h)), h);
		while (nl) {
			h = nl + 1;
			nl = strchr(h, '\n');
			fprintf(out, "  %-20s%.*s\n", "", (int)(nl ? nl - h : (ptrdiff_t)strlen(h)), h);
		}
	}
}

void cmd_print_help(FILE *out, const char *prefix, const struct cmd_doc *doc, int with_config)
{
	char head[128], word[128];
	size_t col, indent;

	col = (size_t)snprintf(head, sizeof(head), "usage: %s %s", prefix, doc->name);
	indent = col + 1;
	fputs(head, out);
	if (with_config)
		for (const struct cmd_option *o = cmd_config_options; o->name; o++) {
			option_synopsis(o, word, sizeof(word));
			syn_word(out, word, &col, indent);
		}
	for (const struct cmd_option *o = doc->options; o && o->name; o++) {
		option_synopsis(o, word, sizeof(word));
		syn_word(out, word, &col, indent);
	}
	if (doc->operands)
		syn_word(out, doc->operands, &col, indent);
	fprintf(out, "\n\n%s\n", doc->summary);
	if (doc->description)
		fprintf(out, "\n%s", doc->description);
	if (doc->options && doc->options->name) {
		fprintf(out, "\noptions:\n");
		cmd_print_options(out, doc->options);
	}
	if (with_config) {
		fprintf(out, "\nconfiguration:\n");
		cmd_print_options(out, cmd_config_options);
	}
}

/* ---- man page ---- */

/* Text into roff: backslashes and leading dots or quotes escaped, '-' as \-. */
static void roff_text(FILE *out, const char *s)
{
	int line_start = 1;

	for (; *s; s++) {
		if (line_start && (*s == '.' || *s == '\''))
			fputs("\\&", out);
		line_start = *s == '\n';
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

static void man_options(FILE *out, const struct cmd_option *o)
{
	for (; o && o->name; o++) {
		fprintf(out, ".TP\n.B \\-\\-");
		roff_text(out, o->name);
		if (o->arg) {
			fputs(" ", out);
			fputs("\\fI", out);
			roff_text(out, o->arg);
			fputs("\\fR", out);
		}
		fputc('\n', out);
		roff_text(out, o->help);
		fputc('\n', out);
	}
}

static void man_command(FILE *out, const char *prefix, const struct cmd_doc *d, int with_config)
{
	fprintf(out, ".SS \"%s %s\"\n", prefix, d->name);
	fprintf(out, ".B %s %s\n", prefix, d->name);
	if (with_config)
		fputs("[\\-\\-config \\fIF\\fR] [\\-\\-set \\fIKEY=VALUE\\fR]... [\\-\\-quiet]\n", out);
	for (const struct cmd_option *o = d->options; o && o->name; o++) {
		fputs("[\\-\\-", out);
		roff_text(out, o->name);
		if (o->arg) {
			fputs(" \\fI", out);
			roff_text(out, o->arg);
			fputs("\\fR", out);
		}
		fputs(o->repeatable ? "]...\n" : "]\n", out);
	}
	if (d->operands) {
		roff_text(out, d->operands);
		fputc('\n', out);
	}
	fputs(".PP\n", out);
	roff_text(out, d->summary);
	fputc('\n', out);
	if (d->description) {
		fputs(".PP\n.nf\n", out);
		roff_text(out, d->description);
		fputs(".fi\n", out);
	}
	man_options(out, d->options);
}

void cmd_print_man(FILE *out, const struct cmd_doc *commands, const int *with_config, size_t n,
		   const char *sub_of, const struct cmd_doc *subs, size_t n_subs,
		   const char *stages_text)
{
	fprintf(out, ".\\\" Generated by 'ltvpipe help --man' from the command table; do not edit.\n"
		     ".TH LTVPIPE 1 \"\" \"ltvpipe %s\" \"User Commands\"\n"
		     ".SH NAME\nltvpipe \\- train and score customer lifetime value (LTV) models\n"
		     ".SH SYNOPSIS\n.B ltvpipe\n\\fIcommand\\fR [\\fIoptions\\fR]\n"
		     ".SH DESCRIPTION\nltvpipe runs idempotent stages that train LTV models and "
		     "score users with them; every artefact is versioned, with its lineage, in one "
		     "SQLite registry (default models/registry.sqlite).\n.SH COMMANDS\n", LTV_VERSION);
	for (size_t i = 0; i < n; i++) {
		man_command(out, "ltvpipe", &commands[i], with_config[i]);
		if (sub_of && strcmp(commands[i].name, sub_of) == 0) {
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "ltvpipe %s", sub_of);
			for (size_t k = 0; k < n_subs; k++)
				man_command(out, prefix, &subs[k], 0);
		}
	}
	fputs(".SH CONFIGURATION OPTIONS\nEvery command that reads the configuration takes:\n", out);
	man_options(out, cmd_config_options);
	if (stages_text) {
		fputs(".SH STAGES\n.nf\n", out);
		roff_text(out, stages_text);
		fputs(".fi\n", out);
	}
	fputs(".SH EXIT STATUS\n0 success; 1 a stage or command failed; 2 a usage or configuration "
	      "error; monitor also 3 (drift warn) and 4 (drift alert).\n"
	      ".SH FILES\n.TP\n.I config/ltvpipe.yaml\nthe default configuration\n.TP\n"
	      ".I models/registry.sqlite\nthe default registry\n", out);
}

/* ---- bash completion ---- */

static void completion_words(FILE *out, const struct cmd_option *o, int with_config)
{
	if (with_config)
		for (const struct cmd_option *c = cmd_config_options; c->name; c++)
			fprintf(out, " --%s", c->name);
	for (; o && o->name; o++)
		fprintf(out, " --%s", o->name);
}

/* The options that take a value, as a bash case pattern ("--as-of|--only"), or nothing. */
static void completion_valued(FILE *out, const struct cmd_doc *d, int with_config, int *first)
{
	if (with_config)
		for (const struct cmd_option *c = cmd_config_options; c->name; c++)
			if (c->arg) {
				fprintf(out, "%s--%s", *first ? "" : "|", c->name);
				*first = 0;
			}
	for (const struct cmd_option *o = d->options; o && o->name; o++)
		if (o->arg) {
			fprintf(out, "%s--%s", *first ? "" : "|", o->name);
			*first = 0;
		}
}

void cmd_print_completion(FILE *out, const struct cmd_doc *commands, const int *with_config,
			  size_t n, const char *sub_of, const struct cmd_doc *subs, size_t n_subs)
{
	int first = 1;

	fprintf(out, "# bash completion for ltvpipe %s\n"
		     "# Generated by 'ltvpipe help --completion' from the command table; do not edit.\n"
		     "_ltvpipe() {\n"
		     "\tlocal cur prev cmd sub words\n"
		     "\tcur=${COMP_WORDS[COMP_CWORD]}\n"
		     "\tprev=${COMP_WORDS[COMP_CWORD-1]}\n"
		     "\tcmd=${COMP_WORDS[1]}\n"
		     "\tsub=${COMP_WORDS[2]}\n"
		     "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
		     "\t\tCOMPREPLY=($(compgen -W \"", LTV_VERSION);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? " " : "", commands[i].name);
	fputs(" help --help --version\" -- \"$cur\"))\n\t\treturn\n\tfi\n\tcase $prev in\n\t", out);
	for (size_t i = 0; i < n; i++)
		completion_valued(out, &commands[i], with_config[i], &first);
	for (size_t k = 0; k < n_subs; k++)
		completion_valued(out, &subs[k], 0, &first);
	fputs(")\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\t\treturn\n\t\t;;\n\tesac\n"
	      "\tcase $cmd in\n", out);
	for (size_t i = 0; i < n; i++) {
		if (sub_of && strcmp(commands[i].name, sub_of) == 0) {
			fprintf(out, "\t%s)\n\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then\n"
				     "\t\t\tCOMPREPLY=($(compgen -W \"", commands[i].name);
			for (size_t k = 0; k < n_subs; k++)
				fprintf(out, "%s%s", k ? " " : "", subs[k].name);
			fputs("\" -- \"$cur\"))\n\t\t\treturn\n\t\tfi\n\t\tcase $sub in\n", out);
			for (size_t k = 0; k < n_subs; k++) {
				fprintf(out, "\t\t%s) words=\"", subs[k].name);
				completion_words(out, subs[k].options, with_config[i]);
				fputs("\" ;;\n", out);
			}
			fputs("\t\tesac\n\t\t;;\n", out);
			continue;
		}
		fprintf(out, "\t%s) words=\"", commands[i].name);
		completion_words(out, commands[i].options, with_config[i]);
		fputs("\" ;;\n", out);
	}
	fputs("\tesac\n\tCOMPREPLY=($(compgen -W \"$words --help\" -- \"$cur\"))\n}\n"
	      "complete -o default -F _ltvpipe ltvpipe\n", out);
}
