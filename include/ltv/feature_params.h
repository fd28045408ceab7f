/*
 * The parameters a features artefact was built with, which travel with it:
 * as_of, the snapshot ages, the horizons, the target horizon and the
 * validation window (DESIGN.md "Time, windows and labels"). The features
 * stage writes them with its artefact (blob "params"); every model stage, the
 * predictor, serving and the commands read them from there, never from the
 * global config, so a model version is always served with its own parameters
 * whatever the config says today.
 *
 * The train/validation split rule by install date is here too, once.
 */
#ifndef LTV_FEATURE_PARAMS_H
#define LTV_FEATURE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/config.h"
#include "ltv/registry.h"

#define FEATURE_PARAMS_MAGIC "LTVFPRM1"
#define FEATURE_PARAMS_VERSION 1
/* The blob key of the params on a features artefact. */
#define FEATURE_PARAMS_BLOB "params"

struct feature_params {
	int64_t as_of;              /* the features artefact's as_of (unix seconds) */
	struct int_list snapshots;  /* ages (days) a training row describes, increasing; owned */
	struct int_list horizons;   /* increasing; owned */
	int64_t target_horizon;     /* one of horizons */
	int64_t validation_days;    /* the most recent mature installs held out, in days */
};

/*
 * The parameters the features stage builds with: its config section and the
 * run's as_of. Only the writer of features calls this (pipeline/features.c,
 * `ltvpipe merge`). Caller releases.
 */
void feature_params_from_config(const struct config *cfg, int64_t as_of,
				struct feature_params *out);
void feature_params_copy(struct feature_params *dst, const struct feature_params *src);
void feature_params_release(struct feature_params *p);

/* Stores p as blob FEATURE_PARAMS_BLOB of the features artefact artefact_id. */
int feature_params_save(const struct feature_params *p, struct registry *reg, int64_t artefact_id,
			struct ltv_err *err);
/*
 * The parameters of a features artefact: its "params" blob, or, for an
 * artefact written before the blob existed, its canonical config text and
 * as_of (the same values). LTV_EINVAL names the artefact when they are
 * corrupt or inconsistent. Caller releases.
 */
int feature_params_load(struct registry *reg, const struct artefact_info *features,
			struct feature_params *out, struct ltv_err *err);

/* Index of horizon in p->horizons, or -1. */
int feature_params_horizon_index(const struct feature_params *p, int64_t horizon);
/* The longest horizon. */
int64_t feature_params_max_horizon(const struct feature_params *p);

enum feature_split { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_SCORE = 2 };

/*
 * The split rule, once: at horizon H, a user of age_days < H is not mature
 * (SPLIT_SCORE: no label); a mature user installed after
 * as_of - (H + validation_days) days is a validation user, an older one a
 * training user. as_of is the data's (the features stage's, or the scoring
 * as_of for data scored with a model): never a random split.
 */
enum feature_split feature_params_split(const struct feature_params *p, int64_t as_of,
					int64_t horizon, double age_days, double install_time);
/* The install time after which a mature user is a validation user at horizon. */
double feature_params_valid_after(const struct feature_params *p, int64_t as_of, int64_t horizon);
/*
 * feature_params_split with its cut-off valid_after (feature_params_valid_after)
 * worked out by the caller: model_data's splits pass over every frame row
 * (1,133,867 at 1,000,000 users) tens of times a run, one cut-off each.
 */
static inline enum feature_split feature_split_at(double valid_after, int64_t horizon,
						  double age_days, double install_time)
{
	if (age_days < (double)horizon)
		return SPLIT_SCORE;
	return install_time > valid_after ? SPLIT_VALID : SPLIT_TRAIN;
}

/*
 * Says, in buf, where cfg's features keys differ from p ("target_horizon 30
 * (config: 90), horizons [7, 30, 90] (config: [30, 90, 180])"); returns the
 * number of keys that differ (0: buf is ""). For commands that explain that a
 * model version keeps its own parameters.
 */
int feature_params_config_diff(const struct feature_params *p, const struct config *cfg, char *buf,
			       size_t size);

/*
 * Sets cfg's features keys (snapshots, horizons, target_horizon,
 * validation_days) to p: features built for a model version with cfg are then
 * built as the model's own were.
 */
void feature_params_apply(const struct feature_params *p, struct config *cfg);

#endif
