/*
 * The features stage (pipeline/features.c): what it does beyond the base
 * features of serving/feature_build.c, shared with `ltvpipe merge`.
 */
#ifndef LTV_FEATURES_H
#define LTV_FEATURES_H

#include <stdint.h>

#include "ltv/feature_build.h"
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

#endif
