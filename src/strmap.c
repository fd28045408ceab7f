/*
 * String → int64 map (include/ltv/strmap.h): linear probing at load <= 0.5,
 * xxHash for the hash. A key of up to INLINE_MAX bytes (user ids mostly are)
 * is kept in its slot, so a lookup touches the slot's line (or two adjacent
 * ones) and not the key's as well: on events ordered by time across a
 * million users every lookup misses the cache, and the key's second miss was
 * a third of ingest's lookup time.
 * Longer keys are packed into arena blocks, so a million of them cost a few
 * allocations instead of a million. A map made with strmap_init_payload
 * keeps the caller's bytes for each key right after its slot, in the same
 * 64-byte line when they fit (strmap.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xxhash.h>

#include "ltv/common.h"
#include "ltv/strmap.h"

/* The last byte of a slot's key says what the other bytes hold. */
enum { SLOT_EMPTY = 0, SLOT_INLINE = 1, SLOT_ARENA = 2 };
#define INLINE_MAX 14 /* bytes of a key kept in its slot, before its NUL and the tag */

/*
 * 24 bytes, no hash: an inline key is compared whole (two 8-byte loads, as
 * cheap as a hash's compare), and a longer key's slot holds its pointer and
 * 32 bits of its hash, checked before the strcmp. A million user ids take a
 * table of 2^21 slots: 48 MB instead of the 64 MB of 32-byte slots with a
 * 64-bit hash, and on this VM the kernel zeroing a fresh huge page of the
 * table was a quarter of score's users read (perf: clear_page_erms under
 * the key's first write).
 */
struct strmap_slot {
	int64_t value;
	/*
	 * An inline key and its NUL, or (SLOT_ARENA) the arena pointer in bytes
	 * 0-7 and the low 32 bits of the key's hash in bytes 8-11; byte
	 * INLINE_MAX + 1 is the tag.
	 */
	char text[INLINE_MAX + 2];
};

#define ARENA_HASH 8 /* offset of an arena key's hash bits in text */

static inline const char *slot_arena(const struct strmap_slot *s)
{
	const char *p;

	memcpy(&p, s->text, sizeof(p));
	return p;
}

static inline uint32_t slot_arena_hash(const struct strmap_slot *s)
{
	uint32_t h;

	memcpy(&h, s->text + ARENA_HASH, sizeof(h));
	return h;
}

/*
 * Key arenas start small and double up to ARENA_BLOCK, and the table starts
 * at 16 slots: a server request builds a few maps of a handful of names, and
 * a 24 KB table zeroed plus a 1 MB arena mapped for each was a third of the
 * CPU of a single prediction (callgrind). A million keys still take about
 * twenty arena blocks and as many doublings of the table.
 */
#define ARENA_FIRST 4096u

static inline int slot_tag(const struct strmap_slot *s)
{
	return s->text[INLINE_MAX + 1];
}

/*
 * memcmp(a, b, n) == 0 for the n <= INLINE_MAX + 1 bytes of an inline key and
 * its NUL, in two overlapping loads of each side (none past either's n
 * bytes) instead of a call: the call's dispatch was most of a user id's
 * compare, 4% of ingest's samples.
 */
static inline int inline_key_equal(const char *a, const char *b, size_t n)
{
	uint64_t a8, b8, a8_end, b8_end;
	uint32_t a4, b4, a4_end, b4_end;

	if (n >= 8) {
		memcpy(&a8, a, 8);
		memcpy(&b8, b, 8);
		memcpy(&a8_end, a + n - 8, 8);
		memcpy(&b8_end, b + n - 8, 8);
		return ((a8 ^ b8) | (a8_end ^ b8_end)) == 0;
	}
	if (n >= 4) {
		memcpy(&a4, a, 4);
		memcpy(&b4, b, 4);
		memcpy(&a4_end, a + n - 4, 4);
		memcpy(&b4_end, b + n - 4, 4);
		return ((a4 ^ b4) | (a4_end ^ b4_end)) == 0;
	}
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* 1 when the full slot s holds key (len bytes, hash). */
static inline int slot_holds(const struct strmap_slot *s, const char *key, size_t len, uint64_t hash)
{
	if (len <= INLINE_MAX)
		return slot_tag(s) == SLOT_INLINE && inline_key_equal(s->text, key, len + 1);
	return slot_tag(s) == SLOT_ARENA && slot_arena_hash(s) == (uint32_t)hash &&
	       strcmp(slot_arena(s), key) == 0;
}

/* The hash of the key in the full slot s, for a rehash: a table grows a few times at most. */
static uint64_t slot_hash(const struct strmap_slot *s)
{
	const char *key = slot_tag(s) == SLOT_INLINE ? s->text : slot_arena(s);

	return XXH3_64bits(key, strlen(key));
}

#define ARENA_BLOCK (1u << 20)
#define LINE 64 /* a cache line: slots of a map with payloads are aligned to it */

static inline struct strmap_slot *slot_at(struct strmap_slot *slots, size_t stride, size_t i)
{
	return (struct strmap_slot *)((char *)slots + i * stride);
}

/*
 * A table this large (a power of two, so a whole number of 2 MiB pages) is
 * mapped on its own and asked for transparent huge pages: a lookup in a
 * million-key map misses the TLB as well as the cache on 4 KiB pages, and
 * the kernel zeroes 2 MiB pages with one fault instead of 512.
 */
#define HUGE_TABLE ((size_t)4 << 20)

/* cap zeroed slots of m->stride bytes, aligned to a cache line when they hold payloads. */
static struct strmap_slot *alloc_slots(const struct strmap *m, size_t cap)
{
	const size_t bytes = cap * m->stride;
	void *p = NULL;

	if (bytes >= HUGE_TABLE) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die_oom(bytes);
		(void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: without it the map works the same */
		return p;
	}
	if (m->payload_size == 0)
		return xcalloc(cap, m->stride);
	if (posix_memalign(&p, LINE, cap * m->stride) != 0)
		die_oom(cap * m->stride);
	memset(p, 0, cap * m->stride);
	return p;
}

static void free_slots(const struct strmap *m, struct strmap_slot *slots, size_t cap)
{
	if (cap * m->stride >= HUGE_TABLE)
		munmap(slots, cap * m->stride);
	else
		free(slots);
}

void strmap_init_payload(struct strmap *m, size_t payload_size)
{
	memset(m, 0, sizeof(*m));
	m->payload_size = payload_size;
	m->stride = sizeof(struct strmap_slot);
	if (payload_size) {
		/* Slot and payload in whole cache lines, so one key's never straddle two it need not. */
		m->stride = (sizeof(struct strmap_slot) + payload_size + LINE - 1) / LINE * LINE;
	}
	/* 16 slots for the handful of names a server request maps (see ARENA_FIRST) */
	m->cap = payload_size ? 1024 : 16;
	m->slots = alloc_slots(m, m->cap);
}

void strmap_init(struct strmap *m)
{
	strmap_init_payload(m, 0);
}

void strmap_release(struct strmap *m)
{
	for (size_t i = 0; i < m->n_arenas; i++)
		free(m->arenas[i]);
	free(m->arenas);
	if (m->slots)
		free_slots(m, m->slots, m->cap);
	memset(m, 0, sizeof(*m));
}

void *strmap_release_keep_table(struct strmap *m, size_t *out_len)
{
	void *table = NULL;

	*out_len = 0;
	if (m->slots && m->cap * m->stride >= HUGE_TABLE) {
		table = m->slots;
		*out_len = m->cap * m->stride;
		m->slots = NULL; /* no longer m's to free */
	}
	strmap_release(m);
	return table;
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

/* The slot holding key, or the empty slot where it would go. */
static struct strmap_slot *find_slot(const struct strmap *m, const char *key, size_t len,
				     uint64_t hash)
{
	const size_t mask = m->cap - 1;
	size_t i = (size_t)hash & mask;
	struct strmap_slot *s = slot_at(m->slots, m->stride, i);

	while (slot_tag(s) != SLOT_EMPTY && !slot_holds(s, key, len, hash)) {
		i = (i + 1) & mask;
		s = slot_at(m->slots, m->stride, i);
	}
	return s;
}

static void grow_to(struct strmap *m, size_t new_cap)
{
	struct strmap_slot *slots = alloc_slots(m, new_cap);

	/* Keys are distinct: a rehashed slot goes to the first empty one of its probe. */
	for (size_t i = 0; i < m->cap; i++) {
		const struct strmap_slot *from = slot_at(m->slots, m->stride, i);
		size_t j;

		if (slot_tag(from) == SLOT_EMPTY)
			continue;
		j = (size_t)slot_hash(from) & (new_cap - 1);
		while (slot_tag(slot_at(slots, m->stride, j)) != SLOT_EMPTY)
			j = (j + 1) & (new_cap - 1);
		memcpy(slot_at(slots, m->stride, j), from, m->stride);
	}
	free_slots(m, m->slots, m->cap);
	m->slots = slots;
	m->cap = new_cap;
}

static void grow(struct strmap *m)
{
	grow_to(m, m->cap * 2);
}

void strmap_reserve(struct strmap *m, size_t n)
{
	size_t cap = m->cap;

	while ((n + 1) * 2 > cap)
		cap *= 2;
	if (cap > m->cap)
		grow_to(m, cap);
}

void strmap_prefetch(const struct strmap *m, const char *key)
{
	const uint64_t hash = XXH3_64bits(key, strlen(key));

	__builtin_prefetch(slot_at(m->slots, m->stride, (size_t)hash & (m->cap - 1)));
}

static inline void *slot_payload(struct strmap_slot *s)
{
	return s + 1;
}

int strmap_get_payload(const struct strmap *m, const char *key, int64_t *out_value,
		       void **out_payload)
{
	const size_t len = strlen(key);
	struct strmap_slot *s = find_slot(m, key, len, XXH3_64bits(key, len));

	if (slot_tag(s) == SLOT_EMPTY)
		return 0;
	*out_value = s->value;
	if (out_payload)
		*out_payload = m->payload_size ? slot_payload(s) : NULL;
	return 1;
}

/*
 * Keys looked up together: their slots are loaded in one short loop first,
 * so the cache misses overlap (about a tenth of the time of one miss each).
 * Measured on this machine (a VM on AMD EPYC), a prefetch a few rows ahead
 * overlapped almost nothing: a lookup in a million-key map cost 90-170 ns
 * with or without it, and the sample sat on the prefetch instruction, which
 * waits for its page walk.
 */
#define GET_MANY 32

/* The hashes and lengths of keys[0..k) (NULL: the empty key), and their first slots loaded. */
static void hash_and_load(const struct strmap *m, const char *const *keys, size_t k,
			  uint64_t *hash, size_t *len)
{
	for (size_t j = 0; j < k; j++) {
		len[j] = keys[j] ? strlen(keys[j]) : 0;
		hash[j] = XXH3_64bits(keys[j] ? keys[j] : "", len[j]);
	}
	/*
	 * Loads, not prefetches: each load is issued whatever the TLB says. The
	 * slot's first and last bytes: a quarter of 24-byte slots straddle two
	 * cache lines, and the compare reads both.
	 */
	for (size_t j = 0; j < k; j++) {
		const struct strmap_slot *s = slot_at(m->slots, m->stride, (size_t)hash[j] & (m->cap - 1));
		const int64_t first = s->value;
		const int tag = slot_tag(s);

		__asm__ volatile("" : : "r"(first), "r"(tag));
	}
}

void strmap_touch_many(const struct strmap *m, const char *const *keys, size_t n)
{
	uint64_t hash[GET_MANY];
	size_t len[GET_MANY];

	for (size_t at = 0; at < n; at += GET_MANY)
		hash_and_load(m, keys + at, n - at < GET_MANY ? n - at : GET_MANY, hash, len);
}

size_t strmap_get_many(const struct strmap *m, const char *const *keys, size_t n,
		       int64_t *out_values, void **out_payloads)
{
	size_t found = 0;

	for (size_t at = 0; at < n; at += GET_MANY) {
		const size_t k = n - at < GET_MANY ? n - at : GET_MANY;
		uint64_t hash[GET_MANY];
		size_t len[GET_MANY];

		hash_and_load(m, keys + at, k, hash, len);
		for (size_t j = 0; j < k; j++) {
			struct strmap_slot *s = keys[at + j] ? find_slot(m, keys[at + j], len[j], hash[j])
							     : NULL;

			if (!s || slot_tag(s) == SLOT_EMPTY) {
				out_values[at + j] = STRMAP_ABSENT;
				if (out_payloads)
					out_payloads[at + j] = NULL;
				continue;
			}
			found++;
			out_values[at + j] = s->value;
			if (out_payloads)
				out_payloads[at + j] = m->payload_size ? slot_payload(s) : NULL;
		}
	}
	return found;
}

int strmap_get(const struct strmap *m, const char *key, int64_t *out_value)
{
	return strmap_get_payload(m, key, out_value, NULL);
}

int strmap_put_payload(struct strmap *m, const char *key, int64_t value, void **out_payload)
{
	const size_t len = strlen(key);
	const uint64_t hash = XXH3_64bits(key, len);
	struct strmap_slot *s;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	s = find_slot(m, key, len, hash);
	if (out_payload)
		*out_payload = m->payload_size ? slot_payload(s) : NULL;
	if (slot_tag(s) != SLOT_EMPTY)
		return 1;
	if (len <= INLINE_MAX) {
		memcpy(s->text, key, len + 1);
		s->text[INLINE_MAX + 1] = SLOT_INLINE;
	} else {
		const char *copy = arena_copy(m, key, len);
		const uint32_t bits = (uint32_t)hash;

		memcpy(s->text, &copy, sizeof(copy));
		memcpy(s->text + ARENA_HASH, &bits, sizeof(bits));
		s->text[INLINE_MAX + 1] = SLOT_ARENA;
	}
	s->value = value;
	m->n++;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, int64_t value)
{
	return strmap_put_payload(m, key, value, NULL);
}

void strmap_each_payload(struct strmap *m, void (*fn)(int64_t value, void *payload, void *arg),
			 void *arg)
{
	for (size_t i = 0; i < m->cap; i++) {
		struct strmap_slot *s = slot_at(m->slots, m->stride, i);

		if (slot_tag(s) != SLOT_EMPTY)
			fn(s->value, m->payload_size ? slot_payload(s) : NULL, arg);
	}
}
