/*
 * Sharded runs (DESIGN.md "Scale", README "Scale out"): `ltvpipe merge`
 * joins shard registries into the main one; `ltvpipe merge-scores` joins the
 * outputs of `ltvpipe score --shard i/N` into the unsharded score outputs.
 */
#ifndef LTV_SHARD_MERGE_H
#define LTV_SHARD_MERGE_H

#include <stdio.h>

#include "ltv/common.h"
#include "ltv/config.h"

/*
 * Merges the shard registries argv[0..argc) (every shard 0..N-1 of one
 * split, built from the same files, configuration and as_of) into
 * cfg->registry.path in one transaction: users, user_days, file records,
 * rejects, and the ingest and features artefacts, with the fingerprints an
 * unsharded run computes and metrics naming each shard (registry, version,
 * run, content hash). On any failure the main registry is left as it was.
 */
int shard_merge_run(const struct config *cfg, int argc, char **argv, const char *command,
		    FILE *out, struct ltv_err *err);

struct registry;

/*
 * `merge-scores --output F SHARD_OUTPUT...`: reads each SHARD_OUTPUT.shard.csv
 * (written by `score --shard i/N --output SHARD_OUTPUT`), checks they are every
 * shard of one split scored with one model version and as_of, and writes F,
 * F.campaigns.csv and F.report.txt exactly as an unsharded score writes them.
 * The model version is loaded from reg (the main registry, open for reading:
 * the dispatcher's).
 */
int shard_merge_scores_run(const struct config *cfg, struct registry *reg, const char *output,
			   int argc, char **argv, FILE *out, struct ltv_err *err);

#endif
