/*
 * A model version loaded from the registry for scoring: its artefacts, the
 * configuration they were built with, the features stage's encodings, the
 * predictor (methods, selection, calibration, segments) and each known
 * campaign's tier. Used by score and predict.
 */
#ifndef LTV_MODEL_LOADER_H
#define LTV_MODEL_LOADER_H

#include <stdint.h>

#include "ltv/config.h"
#include "ltv/feature_build.h"
#include "ltv/predictor.h"
#include "ltv/registry.h"
#include "ltv/strmap.h"

/* features, tiers, select, calibrate and one stage per method. */
#define MODEL_STAGES (4 + METHOD_COUNT)

struct loaded_model {
	int64_t version;
	/*
	 * The caller's config with the model's sections applied; its features
	 * keys are set from params, so features built for scoring are built as
	 * the model's own were. Read the parameters from params.
	 */
	struct config cfg;
	struct feature_params params; /* its features artefact's: horizons, snapshots, target, ... */
	struct artefact_info art[MODEL_STAGES];
	struct encodings enc;
	struct predictor pred;
	struct strmap tier_of;     /* "app\x1f" "campaign" → tier */
};

/* The artefact of the named stage in m, or NULL. */
const struct artefact_info *model_artefact(const struct loaded_model *m, const char *stage);
/* "production", "candidate" or a version number → the version. */
int model_resolve(struct registry *reg, const char *ref, int64_t *out_version,
		  struct ltv_err *err);
int model_load(struct registry *reg, const struct config *cfg, int64_t version,
	       struct loaded_model *out, struct ltv_err *err);
/*
 * model_load in two steps, so a caller can read its input while the models
 * load: model_load_config gives the version's configuration and feature
 * parameters (what reading input files needs), releasing out on failure;
 * model_load_models then the models, selection, calibration and tiers. It
 * writes none of out->cfg and out->params, which another thread may read
 * meanwhile; on failure out stays the caller's to release (model_release),
 * for the same reason.
 */
int model_load_config(struct registry *reg, const struct config *cfg, int64_t version,
		      struct loaded_model *out, struct ltv_err *err);
int model_load_models(struct registry *reg, struct loaded_model *out, struct ltv_err *err);
void model_release(struct loaded_model *m);

/* The tier the model gives (app, campaign): its tiers artefact's, 3 when unknown. */
int model_tier(const struct loaded_model *m, const char *app, const char *campaign);

/*
 * The rows `mode` asks for (feature_build_base_from) of the users of src
 * (a registry or memory; rows only for users younger than younger_than days
 * with FEATURE_ROWS_AT_AGE, INT64_MAX: all), with the encodings enc learnt by a features stage (app, campaign
 * and attribute encodings, dictionaries extended with names it never saw)
 * and a copy of params, as a model_data without tiers (out->tier NULL): the
 * one path from user-days to rows a model is served on, for score, evaluate
 * and the held-out rows of select and calibrate. Caller releases.
 */
struct shard_spec;
struct data_source;
int model_data_build(const struct data_source *src, const struct config *cfg,
		     const struct encodings *enc, const struct feature_params *params,
		     int64_t as_of, enum feature_rows mode, const struct shard_spec *cohorts,
		     int64_t younger_than, struct model_data *out, struct ltv_err *err);

/*
 * Features of the users of data_reg installed by as_of, with the model's
 * encodings and tiers, as a model_data (dictionaries extended with names the
 * model never saw). Caller releases.
 */
int model_data_for_scoring(const struct loaded_model *m, struct registry *data_reg, int64_t as_of,
			   struct model_data *out, struct ltv_err *err);
/* The same for the users of one score shard's cohorts (feature_build_base_cohorts). */
struct shard_spec;
int model_data_for_scoring_cohorts(const struct loaded_model *m, struct registry *data_reg,
				   int64_t as_of, const struct shard_spec *cohorts,
				   struct model_data *out, struct ltv_err *err);
/*
 * The same from a registry or from memory (include/ltv/data_source.h), with
 * rows only for the users younger than younger_than days (INT64_MAX: all).
 */
int model_data_for_scoring_from(const struct loaded_model *m, const struct data_source *src,
				int64_t as_of, const struct shard_spec *cohorts, int64_t younger_than,
				struct model_data *out, struct ltv_err *err);

#endif
