/*
 * A/B assignment by a salted hash of the user id (contract in
 * include/ltv/ab_assign.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "ltv/ab_assign.h"
#include "ltv/common.h"

double ab_unit(const char *salt, const char *user_id)
{
	const size_t ls = strlen(salt), lu = strlen(user_id);
	char stack[256], *buf = ls + lu + 1 <= sizeof(stack) ? stack : xmalloc(ls + lu + 1);
	uint64_t h;

	memcpy(buf, salt, ls);
	buf[ls] = 0x1f;
	memcpy(buf + ls + 1, user_id, lu);
	h = XXH64(buf, ls + lu + 1, 0);
	if (buf != stack)
		free(buf);
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

int ab_is_candidate(const char *salt, const char *user_id, double share)
{
	return ab_unit(salt, user_id) < share;
}

int ab_is_logged(const char *salt, const char *user_id, double rate)
{
	char log_salt[256];

	snprintf(log_salt, sizeof(log_salt), "%s/log", salt);
	return ab_unit(log_salt, user_id) < rate;
}
