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
	size_t n;
	char **arenas;    /* key storage blocks */
	size_t n_arenas;
	size_t arena_used;
	size_t arena_cap;
};

void strmap_init(struct strmap *m);
void strmap_release(struct strmap *m);
/* 1 and *out_value when present, else 0. */
int strmap_get(const struct strmap *m, const char *key, int64_t *out_value);
/* Inserts key → value; returns 0, or 1 (and leaves the map as it was) when key exists. */
int strmap_put(struct strmap *m, const char *key, int64_t value);

#endif
