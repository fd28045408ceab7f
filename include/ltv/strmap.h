/*
 * Open-addressing hash map from strings to int64 values, used where ingest
 * must look up millions of user ids. Keys are copied into an arena the map
 * owns; values are the caller's. No deletion: ingest only ever adds.
 */
#ifndef LTV_STRMAP_H
#define LTV_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap {
	struct strmap_slot *slots;
	size_t cap;       /* power of two */
	size_t stride;    /* bytes per slot, its payload included */
	size_t payload_size;
	size_t n;
	char **arenas;    /* key storage blocks */
	size_t n_arenas;
	size_t arena_used;
	size_t arena_cap;
};

void strmap_init(struct strmap *m);
void strmap_release(struct strmap *m);
/*
 * strmap_release, except that a table which is an anonymous mapping of its
 * own (from 4 MB: a million keys' is 48 MB, its pages faulted in) is handed
 * to the caller, its length in *out_len, for a block made from its pages
 * (include/ltv/mapped_block.h) or munmap. NULL if the table is not one.
 */
void *strmap_release_keep_table(struct strmap *m, size_t *out_len);
/*
 * A map whose every key carries payload_size bytes for the caller, zeroed
 * when the key is put, kept beside the key in the same cache line when slot
 * and payload fit in 64 bytes (payload_size <= 40): a lookup that misses the
 * cache then misses once for both. A payload moves when the map grows, so a
 * pointer to one is good only until the next put.
 */
void strmap_init_payload(struct strmap *m, size_t payload_size);
/* strmap_get, and *out_payload (when not NULL) points to the key's payload. */
int strmap_get_payload(const struct strmap *m, const char *key, int64_t *out_value,
		       void **out_payload);
/* strmap_put, and *out_payload (when not NULL) points to the key's payload, new or existing. */
int strmap_put_payload(struct strmap *m, const char *key, int64_t value, void **out_payload);
/* Calls fn with each key's value and payload, in no particular order. */
void strmap_each_payload(struct strmap *m, void (*fn)(int64_t value, void *payload, void *arg),
			 void *arg);
/*
 * Sizes the table for n keys in all, so that putting them does not grow it
 * again: one table instead of twenty doublings that each rehash every key
 * (a million users). The keys' place in the table is the same either way.
 */
void strmap_reserve(struct strmap *m, size_t n);
/*
 * Starts loading the cache line of key's slot for a lookup soon after. On
 * events ordered by time each lookup misses the cache; asking a few rows
 * ahead overlaps those misses instead of waiting for each in turn.
 */
void strmap_prefetch(const struct strmap *m, const char *key);
/*
 * out_values[i] (and out_payloads[i], when not NULL) for keys[i], i < n, or
 * STRMAP_ABSENT (and NULL) where keys[i] is absent or NULL. The same answers
 * as n strmap_get_payload calls, several times faster on a large map whose
 * lookups miss the cache: the slots are loaded a few dozen at once. Returns
 * how many were found.
 */
#define STRMAP_ABSENT INT64_MIN
size_t strmap_get_many(const struct strmap *m, const char *const *keys, size_t n,
		       int64_t *out_values, void **out_payloads);
/*
 * Loads the slots where keys[i], i < n, are or would go (NULL keys
 * count as ""), for puts or gets of those keys soon after:
 * strmap_get_many's first half, for callers that must put or get one key at
 * a time.
 */
void strmap_touch_many(const struct strmap *m, const char *const *keys, size_t n);
/* 1 and *out_value when present, else 0. */
int strmap_get(const struct strmap *m, const char *key, int64_t *out_value);
/* Inserts key → value; returns 0, or 1 (and leaves the map as it was) when key exists. */
int strmap_put(struct strmap *m, const char *key, int64_t value);

#endif
