/*
 * The runner: orders the stages of the stage table, fingerprints each one
 * (DESIGN.md "Idempotence"), skips those whose output already exists, and
 * runs the rest each in one registry transaction. Also answers `status`.
 */
#ifndef LTV_RUNNER_H
#define LTV_RUNNER_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"
#include "ltv/config.h"

struct cJSON;
struct registry;

struct run_options {
	const char *only;    /* comma-separated stage names, or NULL */
	const char *from;    /* first stage to consider, or NULL */
	const char *to;      /* last stage to consider, or NULL */
	int force;           /* rerun selected stages even when up to date */
	int dry_run;         /* print what would run and why; write nothing */
	int64_t as_of;       /* INT64_MIN: the latest event time ingested */
	const char *command; /* the command line, recorded with the run */
	struct cJSON *json;  /* when set: filled with the run and each stage's outcome (--json) */
};

/* Runs the selected stages; progress and skips are logged, the summary printed to out. */
int runner_run(const struct config *cfg, const struct run_options *opts, FILE *out,
	       struct ltv_err *err);

/*
 * Prints, per stage, its current version, when it was made, and fresh or stale
 * and why, reading reg (open for reading, in one snapshot). With json, also
 * fills it with the same per stage.
 */
int runner_status(const struct config *cfg, struct registry *reg, int64_t as_of, FILE *out,
		  struct cJSON *json, struct ltv_err *err);

/* Makes a run id "20261121-173102-4f2a" from the clock and pid. */
void runner_make_run_id(char *buf, size_t size);

#endif
