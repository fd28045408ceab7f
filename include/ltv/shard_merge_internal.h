/*
 * What the files of `ltvpipe merge` share (cli/shard_merge.c: opening and
 * checking the shards, and the merged artefacts in one transaction;
 * cli/shard_merge_data.c: users, user-days, file records and rejects;
 * cli/shard_merge_frames.c: the features frame). Not for other modules.
 * Each function returns 0 or a negative enum ltv_status with err set.
 */
#ifndef LTV_SHARD_MERGE_INTERNAL_H
#define LTV_SHARD_MERGE_INTERNAL_H

#include <cjson/cJSON.h>

#include "ltv/feature_build.h"
#include "ltv/features.h"
#include "ltv/input_files.h"
#include "ltv/registry.h"
#include "ltv/shard.h"
#include "ltv/shard_merge.h"

struct shard_in {
	const char *path;
	struct registry *reg;
	struct shard_spec spec;
	struct artefact_info ingest, features;
	int have_ingest, have_features;
	cJSON *ingest_m, *features_m;
	int64_t *pos;          /* by local uid - 1 */
	size_t n_users;
	int64_t *global_uid;   /* by local uid - 1 */
};

struct shard_merge {
	const struct config *cfg;
	struct shard_in *sh;
	size_t n;
	int64_t count;         /* N */
	int64_t as_of;
	struct registry *reg;  /* main */
	char run_id[64];
	struct input_files files;
	char *ingest_text, *features_text;
	char ingest_fp[HASH_HEX_LEN], features_fp[HASH_HEX_LEN];
	int64_t ingest_id, ingest_version, features_id, features_version;
	char *rejects_path;
	int64_t n_rejects;
	size_t n_users;
	int64_t n_days;
	size_t feature_rows;
	char features_hash[HASH_HEX_LEN];
};

/* The number m holds under name, or 0 (a shard's metrics). */
static inline double shard_merge_metric(const cJSON *m, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, name);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/*
 * Numbers every shard's users 1..n in input order (each shard's global_uid):
 * the uids an unsharded ingest gives them; the count in *out_total.
 */
int shard_merge_number_users(struct shard_merge *mg, size_t *out_total, struct ltv_err *err);
/* Every shard's users into the main registry under their global uids. */
int shard_merge_copy_users(struct shard_merge *mg, struct ltv_err *err);
/* Every shard's user-days under the global uids; how many in *out_total. */
int shard_merge_copy_user_days(struct shard_merge *mg, int64_t *out_total, struct ltv_err *err);
/* The file records with the rows and rejects of every shard added up. */
int shard_merge_copy_file_records(struct shard_merge *mg, struct ltv_err *err);
/* The main registry's max_event_time: the latest of the shards' (none: left unset). */
int shard_merge_max_event_time(struct shard_merge *mg, struct ltv_err *err);
/*
 * One rejects file for the merge, in the order an unsharded ingest writes it
 * (file by file, line by line): each bad row was read by exactly one shard.
 */
int shard_merge_rejects(struct shard_merge *mg, struct ltv_err *err);
/*
 * The shards' base frames joined into the frame an unsharded features stage
 * builds: users in global uid order (each user's rows in their own order),
 * uids and app / campaign codes renumbered into the whole's dictionaries.
 */
int shard_merge_join_frames(struct shard_merge *mg, struct frame *out, struct encodings *enc,
			    struct feature_base_stats *st, struct ltv_err *err);

#endif
