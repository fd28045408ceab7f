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
#include "ltv/shard.h"

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
	struct shard_spec shard; /* --shard i/N: ingest and features of one shard (count 0: all) */
	struct cJSON *json;  /* when set: filled with the run and each stage's outcome (--json) */
};

/*
 * Runs the selected stages; progress and skips are logged, the summary printed
 * to out. Opens cfg's registry itself (creating it), and holds the run lock
 * while it runs; a dry run opens it read-only, or says every stage would run
 * when there is none. For callers that own no registry: scratch registries,
 * tests.
 */
int runner_run(const struct config *cfg, const struct run_options *opts, FILE *out,
	       struct ltv_err *err);
/*
 * runner_run on reg, which the caller opened (ltvpipe's dispatcher): for
 * writing with the run lock held (registry_lock_run), or for a dry run
 * read-only, or NULL when there is no registry yet. reg stays open.
 */
int runner_run_on(const struct config *cfg, struct registry *reg, const struct run_options *opts,
		  FILE *out, struct ltv_err *err);

/*
 * Prints, per stage, its current version, when it was made, and fresh or stale
 * and why, reading reg (open for reading, in one snapshot). With json, also
 * fills it with the same per stage.
 */
int runner_status(const struct config *cfg, struct registry *reg, int64_t as_of, FILE *out,
		  struct cJSON *json, struct ltv_err *err);

struct stage;
struct artefact_info;
struct input_files;

/*
 * The exact text a stage is fingerprinted by besides its inputs (its config
 * sections, as_of, input file hashes, and "shard=i/N" for a shard's ingest
 * and features); caller frees. And the fingerprint itself. `merge` uses both
 * to give merged artefacts the fingerprints an unsharded run would compute.
 */
char *runner_stage_config_text(const struct stage *s, const struct config *cfg, int64_t as_of,
			       const struct input_files *files, const struct shard_spec *shard);
void runner_stage_fingerprint(const struct stage *s, const char *config_text,
			      const struct artefact_info *const *inputs, size_t n_inputs,
			      char out[33]);

/* Makes a run id "20261121-173102-4f2a" from the clock and pid. */
void runner_make_run_id(char *buf, size_t size);

#endif
