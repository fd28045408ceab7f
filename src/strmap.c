/*
 * String → int64 map (include/ltv/strmap.h): linear probing at load <= 0.5,
 * xxHash for the hash. A key of up to INLINE_MAX bytes (user ids mostly are)
 * is kept in its slot, so a lookup touches one cache line instead of two: on
 * events ordered by time across a million users every lookup misses the
 * cache, and the key's second miss was a third of ingest's lookup time.
 * Longer keys are packed into arena blocks, so a million of them cost a few
 * allocations instead of a million.
 */
#include <string.h>

#include <xxhash.h>

#include "ltv/common.h"
#include "ltv/strmap.h"

/* The last byte of a slot's key says what the other bytes hold. */
enum { SLOT_EMPTY = 0, SLOT_INLINE = 1, SLOT_ARENA = 2 };
#define INLINE_MAX 14 /* bytes of a key kept in its slot, before its NUL and the tag */

struct strmap_slot {
	uint64_t hash;
	int64_t value;
	union {
		char text[INLINE_MAX + 2]; /* the key and its NUL; text[INLINE_MAX + 1] is the tag */
		const char *arena;         /* a longer key, in an arena block */
	} key;
};

static inline int slot_tag(const struct strmap_slot *s)
{
	return s->key.text[INLINE_MAX + 1];
}

/* 1 when slot s holds key (len bytes, hash), which it may only if the hashes agree. */
static inline int slot_holds(const struct strmap_slot *s, const char *key, size_t len, uint64_t hash)
{
	if (s->hash != hash)
		return 0;
	if (slot_tag(s) == SLOT_INLINE)
		return len <= INLINE_MAX && memcmp(s->key.text, key, len + 1) == 0;
	return len > INLINE_MAX && strcmp(s->key.arena, key) == 0;
}

#define ARENA_BLOCK (1u << 20)

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
	m->cap = 1024;
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
		size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;

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

/* The slot holding key, or the empty slot where it would go. */
static struct strmap_slot *find_slot(struct strmap_slot *slots, size_t cap, const char *key,
				     size_t len, uint64_t hash)
{
	size_t i = (size_t)hash & (cap - 1);

	while (slot_tag(&slots[i]) != SLOT_EMPTY && !slot_holds(&slots[i], key, len, hash))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void grow(struct strmap *m)
{
	size_t new_cap = m->cap * 2;
	struct strmap_slot *slots = xcalloc(new_cap, sizeof(*slots));

	/* Keys are distinct: a rehashed slot goes to the first empty one of its probe. */
	for (size_t i = 0; i < m->cap; i++) {
		size_t j = (size_t)m->slots[i].hash & (new_cap - 1);

		if (slot_tag(&m->slots[i]) == SLOT_EMPTY)
			continue;
		while (slot_tag(&slots[j]) != SLOT_EMPTY)
			j = (j + 1) & (new_cap - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = new_cap;
}

int strmap_get(const struct strmap *m, const char *key, int64_t *out_value)
{
	size_t len = strlen(key);
	uint64_t hash = XXH3_64bits(key, len);
	const struct strmap_slot *s = find_slot(m->slots, m->cap, key, len, hash);

	if (slot_tag(s) == SLOT_EMPTY)
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
	s = find_slot(m->slots, m->cap, key, len, hash);
	if (slot_tag(s) != SLOT_EMPTY)
		return 1;
	if (len <= INLINE_MAX) {
		memcpy(s->key.text, key, len + 1);
		s->key.text[INLINE_MAX + 1] = SLOT_INLINE;
	} else {
		s->key.arena = arena_copy(m, key, len);
		s->key.text[INLINE_MAX + 1] = SLOT_ARENA;
	}
	s->hash = hash;
	s->value = value;
	m->n++;
	return 0;
}
