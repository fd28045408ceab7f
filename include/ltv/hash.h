/*
 * Content hashing with xxHash (XXH3, 128-bit), printed as 32 lowercase hex
 * digits. Used for file content hashes, artefact content hashes and stage
 * fingerprints (DESIGN.md "Idempotence").
 */
#ifndef LTV_HASH_H
#define LTV_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define HASH_HEX_LEN 33 /* 32 hex digits + NUL */

/* Streaming hasher. Opaque state; init before use, release after. */
struct hasher {
	void *state; /* XXH3_state_t * */
};

void hasher_init(struct hasher *h);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Adds a string with its length, so ("ab","c") and ("a","bc") differ. */
void hasher_add_str(struct hasher *h, const char *s);
void hasher_add_i64(struct hasher *h, int64_t v);
/* Adds a double by its bit pattern (+0.0 and -0.0 differ; every NaN is one NaN). */
void hasher_add_double(struct hasher *h, double v);
/* Writes the digest as hex into out_hex (HASH_HEX_LEN bytes). Does not release. */
void hasher_hex(const struct hasher *h, char out_hex[HASH_HEX_LEN]);
void hasher_release(struct hasher *h);

/* One-shot hash of a buffer / string. */
void hash_buffer_hex(const void *data, size_t len, char out_hex[HASH_HEX_LEN]);
/* Hashes a whole file's bytes. Returns 0 or LTV_EIO with err naming the path. */
int hash_file_hex(const char *path, char out_hex[HASH_HEX_LEN], struct ltv_err *err);

#endif
