/*
 * Shards by user (DESIGN.md "Scale"): `--shard i/N` keeps the users whose
 * shard number is i. The one definition of a user's shard lives here:
 *
 *   shard(user_id) = XXH3_64bits(the user_id field's bytes, as read from the
 *                    CSV after unquoting, without a terminator; seed 0) mod N
 *
 * so it depends on the id alone (not on file order, the other users or the
 * machine), and every command that shards ingest and features agrees on it. A
 * user's events go to the user's shard, so every per-user computation of a
 * shard is exactly the unsharded one.
 *
 * Scoring shards by cohort instead, with the same hash of the cohort key:
 *
 *   shard(app, campaign) = XXH3_64bits(app bytes, 0x1f, campaign bytes) mod N
 *
 * because one method, curves, levels a cohort against its curve from every
 * scored user of the cohort together (pipeline/curves.c): a shard holding a
 * whole cohort serves it exactly as an unsharded score does, bit for bit.
 */
#ifndef LTV_SHARD_H
#define LTV_SHARD_H

#include <stdint.h>

#include "ltv/common.h"

#define SHARD_MAX_COUNT 65536

struct shard_spec {
	int64_t index; /* 0 .. count - 1 */
	int64_t count; /* 0: not sharded */
};

/* Parses "i/N" (0 <= i < N <= SHARD_MAX_COUNT); LTV_EUSAGE naming the text otherwise. */
int shard_parse(const char *text, struct shard_spec *out, struct ltv_err *err);

/* XXH3_64bits of the id's bytes (seed 0): the documented shard hash. */
uint64_t shard_hash(const char *user_id);

/* The shard (0 .. count - 1) of a user id. */
int64_t shard_of(const char *user_id, int64_t count);

/* 1 when the spec is unsharded or the user is in its shard. */
int shard_keeps(const struct shard_spec *s, const char *user_id);

/* The shard (0 .. count - 1) of an (app, campaign) cohort, for scoring. */
int64_t shard_of_cohort(const char *app, const char *campaign, int64_t count);

/* 1 when the spec is unsharded or the cohort is in its shard. */
int shard_keeps_cohort(const struct shard_spec *s, const char *app, const char *campaign);

/* "i/N" into buf ("" when unsharded); returns buf. */
const char *shard_format(const struct shard_spec *s, char *buf, size_t size);

#endif
