/*
 * A cJSON parse whose nodes come from one bump arena of the calling thread
 * (src/models/json_arena.c), for gbt_forest.c's read of a model body: a
 * body of 300 trees is tens of thousands of nodes and key strings, each a
 * malloc and a free under the run's one malloc arena's lock, which XGBoost's
 * threads on the other core want too.
 */
#ifndef LTV_JSON_ARENA_H
#define LTV_JSON_ARENA_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include <stdalign.h>

/* A block of an arena's memory, newest first. */
struct json_arena_block {
	struct json_arena_block *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

/* The blocks a parse's nodes live in; zeroed by the caller ({ 0 }). */
struct json_arena {
	struct json_arena_block *blocks;
};

/*
 * Parses json[0..len) with every node and string in arena a, which must be
 * empty. The tree is freed by json_arena_release(a) only, never by
 * cJSON_Delete, and nothing may be added to it. NULL when the text is not
 * JSON (the arena then holds what the parse made: release it all the same).
 * The calling thread must not parse into another arena meanwhile.
 */
cJSON *json_arena_parse(struct json_arena *a, const char *json, size_t len);

/* Frees every block of a (its trees with them) and empties it; a may be empty. */
void json_arena_release(struct json_arena *a);

#endif
