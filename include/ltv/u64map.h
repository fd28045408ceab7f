/*
 * Open-addressing hash map from uint64 keys to dense indices (0, 1, 2, ... in
 * insertion order), used to aggregate events per (user, day) before they are
 * written. The caller keeps the per-index payload in its own arrays.
 */
#ifndef LTV_U64MAP_H
#define LTV_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys;
	uint32_t *index1; /* index + 1; 0 marks an empty slot */
	size_t cap;       /* power of two */
	size_t n;
};

void u64map_init(struct u64map *m);
void u64map_release(struct u64map *m);
/* Returns the key's index, inserting it with index n when new (then *out_is_new = 1). */
size_t u64map_index(struct u64map *m, uint64_t key, int *out_is_new);

#endif
