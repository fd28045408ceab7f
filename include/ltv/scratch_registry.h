/*
 * A throwaway registry for a command that works on data the user's registry
 * has never seen: `score --users/--events` (files to score) and `evaluate`
 * without --model (a model trained afresh as of T). One scratch directory
 * (include/ltv/scratch_dir.h: named after the process, so one a killed
 * process left is removed by the next), a copy of the config whose registry is
 * <dir>/registry.sqlite with ingest.mode=replace, and the ingest stage run
 * into it. Nothing touches the user's registry.
 */
#ifndef LTV_SCRATCH_REGISTRY_H
#define LTV_SCRATCH_REGISTRY_H

#include "ltv/common.h"
#include "ltv/config.h"

struct scratch_registry {
	char dir[4096];    /* "" until created */
	char *path;        /* <dir>/registry.sqlite */
	struct config cfg; /* the copy; further overrides go here (config_apply_override) */
	int have_cfg;
};

/*
 * Creates the directory ("<prefix>-<pid>-XXXXXX" in $TMPDIR) and s->cfg, a
 * copy of base with the registry moved there and ingest.mode=replace. Release
 * s with scratch_registry_release whatever this returns.
 */
int scratch_registry_init(struct scratch_registry *s, const char *prefix,
			  const struct config *base, struct ltv_err *err);
/* Runs the ingest stage of s->cfg into the scratch registry; command is what `runs` records. */
int scratch_registry_ingest(struct scratch_registry *s, const char *command, struct ltv_err *err);
/* Releases the config and removes the directory; a zeroed s is a no-op. */
void scratch_registry_release(struct scratch_registry *s);

#endif
