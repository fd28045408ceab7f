/*
 * uint64 → dense index map (include/ltv/u64map.h): linear probing at load
 * <= 0.5 with a 64-bit mixer, so sequential keys (uid << 20 | day) spread.
 */
#include <assert.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/u64map.h"

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void u64map_init(struct u64map *m)
{
	m->cap = 1024;
	m->n = 0;
	m->keys = xmalloc(m->cap * sizeof(*m->keys));
	m->index1 = xcalloc(m->cap, sizeof(*m->index1));
}

void u64map_release(struct u64map *m)
{
	free(m->keys);
	free(m->index1);
	memset(m, 0, sizeof(*m));
}

static size_t probe(const struct u64map *m, uint64_t key)
{
	size_t i = (size_t)mix(key) & (m->cap - 1);

	while (m->index1[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void grow(struct u64map *m)
{
	struct u64map bigger = { .cap = m->cap * 2, .n = m->n };

	bigger.keys = xmalloc(bigger.cap * sizeof(*bigger.keys));
	bigger.index1 = xcalloc(bigger.cap, sizeof(*bigger.index1));
	for (size_t i = 0; i < m->cap; i++) {
		if (m->index1[i]) {
			size_t j = probe(&bigger, m->keys[i]);

			bigger.keys[j] = m->keys[i];
			bigger.index1[j] = m->index1[i];
		}
	}
	u64map_release(m);
	*m = bigger;
}

size_t u64map_index(struct u64map *m, uint64_t key, int *out_is_new)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	i = probe(m, key);
	if (m->index1[i]) {
		*out_is_new = 0;
		return m->index1[i] - 1;
	}
	assert(m->n < UINT32_MAX);
	m->keys[i] = key;
	m->index1[i] = (uint32_t)(++m->n);
	*out_is_new = 1;
	return m->n - 1;
}
