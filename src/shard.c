/*
 * The shard of a user (contract and the exact hash in include/ltv/shard.h).
 */
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "ltv/shard.h"

int shard_parse(const char *text, struct shard_spec *out, struct ltv_err *err)
{
	const char *slash = text ? strchr(text, '/') : NULL;
	char index_text[32];
	int64_t i, n;

	if (!slash || (size_t)(slash - text) >= sizeof(index_text))
		return err_set(err, LTV_EUSAGE, "--shard '%s' must be i/N, e.g. 0/4 (shards 0 to N-1)",
			       text ? text : "");
	memcpy(index_text, text, (size_t)(slash - text));
	index_text[slash - text] = '\0';
	if (parse_int64(index_text, &i) < 0 || parse_int64(slash + 1, &n) < 0 || n < 1 ||
	    n > SHARD_MAX_COUNT || i < 0 || i >= n)
		return err_set(err, LTV_EUSAGE, "--shard '%s' must be i/N with 1 <= N <= %d and "
			       "0 <= i < N, e.g. 0/4", text, SHARD_MAX_COUNT);
	out->index = i;
	out->count = n;
	return 0;
}

uint64_t shard_hash(const char *user_id)
{
	return (uint64_t)XXH3_64bits(user_id, strlen(user_id));
}

int64_t shard_of(const char *user_id, int64_t count)
{
	return count > 0 ? (int64_t)(shard_hash(user_id) % (uint64_t)count) : 0;
}

int shard_keeps(const struct shard_spec *s, const char *user_id)
{
	return s->count == 0 || shard_of(user_id, s->count) == s->index;
}

int64_t shard_of_cohort(const char *app, const char *campaign, int64_t count)
{
	XXH3_state_t *st;
	uint64_t h;

	if (count <= 0)
		return 0;
	st = XXH3_createState();
	(void)XXH3_64bits_reset(st);
	(void)XXH3_64bits_update(st, app, strlen(app));
	(void)XXH3_64bits_update(st, "\x1f", 1);
	(void)XXH3_64bits_update(st, campaign, strlen(campaign));
	h = (uint64_t)XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return (int64_t)(h % (uint64_t)count);
}

int shard_keeps_cohort(const struct shard_spec *s, const char *app, const char *campaign)
{
	return s->count == 0 || shard_of_cohort(app, campaign, s->count) == s->index;
}

const char *shard_format(const struct shard_spec *s, char *buf, size_t size)
{
	if (s->count == 0)
		snprintf(buf, size, "%s", "");
	else
		snprintf(buf, size, "%lld/%lld", (long long)s->index, (long long)s->count);
	return buf;
}
