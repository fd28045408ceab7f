/*
 * Scoring with a model version from the registry: `ltvpipe score` (users not
 * yet mature at as_of, written to CSV with a campaign summary and a report),
 * `ltvpipe predict` (one user described on the command line, as JSON) and
 * `ltvpipe models` (list, show, promote, rollback, history). The scorer reads
 * only the registry: the model's artefacts, and either the ingested data or a
 * scratch registry made from the files given with --users/--events.
 */
#ifndef LTV_SCORE_H
#define LTV_SCORE_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"
#include "ltv/config.h"

struct score_options {
	const char *model;        /* "production" (default), "candidate" or a version number */
	int64_t as_of;            /* INT64_MIN: the latest event time of the data scored */
	const char *users_path;   /* with events_path: score these files instead of the registry's data */
	const char *events_path;
	const char *output;       /* users CSV; OUTPUT.campaigns.csv and OUTPUT.report.txt beside it */
	int allow_lookahead;      /* score at an as_of before the model's own (refused otherwise) */
};

int score_run(const struct config *cfg, const struct score_options *opts, FILE *out,
	      struct ltv_err *err);

struct predict_options {
	const char *model;
	const char *app;
	const char *campaign;
	char *const *features;    /* "name=value" */
	size_t n_features;
};

int predict_run(const struct config *cfg, const struct predict_options *opts, FILE *out,
		struct ltv_err *err);

/* argv[0] is the subcommand: list | show V | promote V | rollback | history. */
int models_run(const struct config *cfg, int argc, char **argv, FILE *out, struct ltv_err *err);

#endif
