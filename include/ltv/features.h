/*
 * The features stage (pipeline/features.c): what it does beyond the base
 * features of serving/feature_build.c, shared with `ltvpipe merge`.
 */
#ifndef LTV_FEATURES_H
#define LTV_FEATURES_H

#include <stdint.h>

#include "ltv/feature_build.h"
#include "ltv/feature_params.h"
#include "ltv/hash.h"

/*
 * The features stage's work on a base frame of every user (FEATURE_ROWS_SNAPSHOTS,
 * in uid order) with its dictionaries in enc: the install-date split, the
 * encodings learnt on training cohorts, the artefact's metrics and its
 * content hash. The stage calls it on the frame it builds; `ltvpipe merge`
 * on the shards' frames joined, so both give the same artefact.
 */
struct cJSON;
void features_complete(const struct config *cfg, int64_t as_of, struct frame *f,
		       struct encodings *enc, const struct feature_base_stats *stats,
		       struct cJSON *metrics, struct hasher *content);
/*
 * features_complete, and beside(base, ctx) on the thread that hashes the
 * base frame's columns once they are hashed, while the split and encodings
 * are worked out: base is a view of f's columns as they came (the columns
 * added meanwhile are not in it), which it only reads. The stage stores the
 * base columns so (frame_save_columns).
 */
void features_complete_beside(const struct config *cfg, int64_t as_of, struct frame *f,
			      struct encodings *enc, const struct feature_base_stats *stats,
			      struct cJSON *metrics, struct hasher *content,
			      void (*beside)(const struct frame *base, void *ctx), void *beside_ctx);
/*
 * Writes the parameters the features artefact artefact_id was built with (cfg's
 * features section at as_of, the values features_complete used) beside it, so
 * every consumer reads them from the artefact (include/ltv/feature_params.h).
 * Not part of the content hash: the frame already carries what they change.
 */
int features_save_params(const struct config *cfg, int64_t as_of, struct registry *reg,
			 int64_t artefact_id, struct ltv_err *err);

#endif
