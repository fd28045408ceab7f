/*
 * cJSON parses into a bump arena of the calling thread (contract in
 * src/models/json_arena.h). cJSON allocates through process-wide hooks
 * only, so the hooks are set once, before main and any thread: a thread
 * parsing into an arena gets its memory from it and its frees are no-ops
 * (all it frees meanwhile is the failed parse's own nodes); every other
 * allocation and free, on any thread, is malloc's and free's as before.
 *
 * Why: a cold training run at 1,000,000 users reads 120 model bodies
 * natively (12.7 MB of text: the fits' rounds for their validation score,
 * then select's loads), and perf put ~100 of its ~4,500 samples in malloc,
 * free and the malloc arena's lock under cJSON_ParseWithLengthOpts and
 * cJSON_Delete, and ~2,500 futex calls in a parse waiting for the lock or
 * waking a waiter. With the arena, select alone (bench/stage_symbols_ab.sh,
 * 4 pairs): malloc, _int_malloc, _int_free and malloc_consolidate 32-51 ->
 * 14-27 samples at 999 Hz; the cold run after ingest (bench/train_ab.sh,
 * 4 pairs, load 3, chrt -f 1): CPU paired -0.86 s (3 of 4), wall -0.46 s,
 * peak RSS +1.6 MB; every content hash the same.
 */
#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ltv/common.h"

#include "json_arena.h"

/* malloc's alignment: a cJSON node holds pointers and a double. */
#define ARENA_ALIGN alignof(max_align_t)

/* The arena the thread parses into, NULL outside json_arena_parse. */
static _Thread_local struct json_arena *parsing;

/*
 * A new block of at least n bytes: the first one sized to the text (the
 * nodes of a model body take 7-14.5 bytes of memory per byte of text, 13.3
 * on average: 169 MB for 12.7 MB of text in a cold run at 1,000,000 users),
 * each next one twice its predecessor.
 */
static struct json_arena_block *block_new(size_t n, size_t want)
{
	size_t cap = n > want ? n : want;
	struct json_arena_block *b = xmalloc(sizeof(*b) + cap);

	b->next = NULL;
	b->used = 0;
	b->cap = cap;
	return b;
}

static void *arena_malloc(size_t n)
{
	struct json_arena *a = parsing;
	struct json_arena_block *b;
	void *p;

	if (!a)
		return malloc(n);
	n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	b = a->blocks;
	if (b->cap - b->used < n) {
		struct json_arena_block *next = block_new(n, 2 * b->cap);

		next->next = b;
		a->blocks = b = next;
	}
	p = b->data + b->used;
	b->used += n;
	return p;
}

static void arena_free(void *p)
{
	if (!parsing)
		free(p);
}

/*
 * Before main, while the process has one thread: cJSON_InitHooks writes
 * the globals every cJSON call reads. (With hooks of its own, cJSON prints
 * without realloc: a printed text grows by malloc and copy, doubling.)
 */
__attribute__((constructor)) static void json_arena_hooks(void)
{
	cJSON_Hooks hooks = { .malloc_fn = arena_malloc, .free_fn = arena_free };

	cJSON_InitHooks(&hooks);
}

cJSON *json_arena_parse(struct json_arena *a, const char *json, size_t len)
{
	cJSON *root;

	assert(a && !a->blocks && !parsing);
	a->blocks = block_new(0, 16 * len + 4096);
	parsing = a;
	root = cJSON_ParseWithLength(json, len);
	parsing = NULL;
	return root;
}

void json_arena_release(struct json_arena *a)
{
	while (a->blocks) {
		struct json_arena_block *next = a->blocks->next;

		free(a->blocks);
		a->blocks = next;
	}
}
