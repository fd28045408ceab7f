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
#include "ltv/shard.h"

struct cJSON;
struct registry;

struct score_options {
	const char *model;        /* "production" (default), "candidate" or a version number */
	int64_t as_of;            /* INT64_MIN: the latest event time of the data scored */
	const char *users_path;   /* with events_path: score these files instead of the registry's data */
	const char *events_path;
	const char *output;       /* users CSV; OUTPUT.campaigns.csv and OUTPUT.report.txt beside it;
				   * "-": the users CSV to stdout, nothing beside it */
	struct shard_spec shard;  /* --shard i/N: only that shard's users, plus OUTPUT.shard.csv */
	int allow_lookahead;      /* score at an as_of before the model's own (refused otherwise) */
	struct cJSON *json;       /* when set: filled with what was scored (--json) */
};

/*
 * Scores with a version of reg (cfg's registry, open for reading in one
 * snapshot: the dispatcher's); the data are reg's or, with --users/--events,
 * a scratch registry's.
 */
int score_run(const struct config *cfg, struct registry *reg, const struct score_options *opts,
	      FILE *out, struct ltv_err *err);

struct predict_options {
	const char *model;
	const char *app;
	const char *campaign;
	char *const *features;    /* "name=value" */
	size_t n_features;
	char *const *attrs;       /* "attribute=value" (columns.attributes) */
	size_t n_attrs;
	int explain;              /* add "explain" (include/ltv/explain.h) */
};

/* One user described by opts, predicted with a version of reg (open for reading), as JSON on out. */
int predict_run(const struct config *cfg, struct registry *reg, const struct predict_options *opts,
		FILE *out, struct ltv_err *err);

/*
 * The `ltvpipe models` subcommands, on a registry the dispatcher opened
 * (read-only for list, show, history and export; for writing for promote).
 * json: one JSON document instead of the tab-separated table.
 */
struct registry;
/* Every version: its row of model_versions, trained as_of and the config keys that differ from production. */
int models_list(struct registry *reg, int json, FILE *out, struct ltv_err *err);
int models_show(struct registry *reg, const struct config *cfg, int64_t version, int json, FILE *out,
		struct ltv_err *err);
int models_history(struct registry *reg, int json, FILE *out, struct ltv_err *err);
/* Makes version production, recording reason; in its own transaction. */
int models_promote(struct registry *reg, int64_t version, const char *reason, FILE *out,
		   struct ltv_err *err);
/*
 * Writes version's artefacts into dir (created if absent): each XGBoost booster
 * in XGBoost's JSON model format (<stage>.<key>.json), every other blob as it
 * is stored (<stage>.<key>.bin), and manifest.json listing every artefact with
 * its stage version, as_of, config, metrics and files (bytes, xxh3_64).
 */
int models_export(struct registry *reg, int64_t version, const char *dir, int json, FILE *out,
		  struct ltv_err *err);

#endif
