/*
 * String → int64 map (include/ltv/strmap.h): linear probing at load <= 0.5,
 * xxHash for the hash, keys packed into arena blocks so a million user ids
 * cost a few allocations instead of a million.
 */
#include <string.h>

#include <xxhash.h>

#include "ltv/common.h"
#include "ltv/strmap.h"

struct strmap_slot {
	const char *key; /* NULL = empty */
	uint64_t hash;
	int64_t value;
};

/*
 * Key arenas start small and double up to ARENA_BLOCK, and the table starts
 * at 16 slots: a server request builds a few maps of a handful of names, and
 * a 24 KB table zeroed plus a 1 MB arena mapped for each was a third of the
 * CPU of a single prediction (callgrind). A million keys still take about
 * twenty arena blocks and as many doublings of the table.
 */
#define ARENA_FIRST 4096u
#define ARENA_BLOCK (1u << 20)

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
	m->cap = 16;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
}

void strmap_release(struct strmap *m)
{
	for (size_t i = 0; i < m->n_arenas; i++)
		free(m->arenas[i]);
	free(m->arenas);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static const char *arena_copy(struct strmap *m, const char *key, size_t len)
{
	char *dst;

	if (m->n_arenas == 0 || m->arena_used + len + 1 > m->arena_cap) {
		size_t want = m->n_arenas == 0 ? ARENA_FIRST : m->arena_cap * 2, size;

		if (want > ARENA_BLOCK)
			want = ARENA_BLOCK;
		size = len + 1 > want ? len + 1 : want;

		m->arenas = xrealloc(m->arenas, (m->n_arenas + 1) * sizeof(char *));
		m->arenas[m->n_arenas++] = xmalloc(size);
		m->arena_used = 0;
		m->arena_cap = size;
	}
	dst = m->arenas[m->n_arenas - 1] + m->arena_used;
	memcpy(dst, key, len + 1);
	m->arena_used += len + 1;
	return dst;
}

static struct strmap_slot *find_slot(struct strmap_slot *slots, size_t cap, const char *key,
				     uint64_t hash)
{
	size_t i = (size_t)hash & (cap - 1);

	while (slots[i].key && (slots[i].hash != hash || strcmp(slots[i].key, key) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void grow(struct strmap *m)
{
	size_t new_cap = m->cap * 2;
	struct strmap_slot *slots = xcalloc(new_cap, sizeof(*slots));

	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key)
			*find_slot(slots, new_cap, m->slots[i].key, m->slots[i].hash) = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = new_cap;
}

int strmap_get(const struct strmap *m, const char *key, int64_t *out_value)
{
	uint64_t hash = XXH3_64bits(key, strlen(key));
	const struct strmap_slot *s = find_slot(m->slots, m->cap, key, hash);

	if (!s->key)
		return 0;
	*out_value = s->value;
	return 1;
}

int strmap_put(struct strmap *m, const char *key, int64_t value)
{
	size_t len = strlen(key);
	uint64_t hash = XXH3_64bits(key, len);
	struct strmap_slot *s;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	s = find_slot(m->slots, m->cap, key, hash);
	if (s->key)
		return 1;
	s->key = arena_copy(m, key, len);
	s->hash = hash;
	s->value = value;
	m->n++;
	return 0;
}
