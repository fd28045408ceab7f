/*
 * What the files of the configuration module (src/config*.c) share and nobody
 * else may see: a key's entry in the schema table (src/config.c) and the
 * functions that set a key's value and remember where it came from. The rest
 * of ltvpipe goes through include/ltv/config.h.
 */
#ifndef LTV_CONFIG_INTERNAL_H
#define LTV_CONFIG_INTERNAL_H

#include <stddef.h>

#include "ltv/config.h"

enum key_type { KEY_INT, KEY_DOUBLE, KEY_STRING, KEY_INT_LIST, KEY_STR_LIST };

struct config_key {
	const char *path;     /* "features.snapshots" */
	enum key_type type;
	size_t offset;        /* into struct config */
	double min, max;      /* for numbers and list items */
	const char *defval;   /* parsed by config_set_value like any other value */
};

/* The key named path ("features.snapshots"), or NULL when there is none. */
const struct config_key *config_find_key(const char *path);
/* What k's values are, for messages: "an integer", "a list of strings". */
const char *config_type_words(const struct config_key *k);
/*
 * Sets a list key from items (already split). Lists replace, never append, so
 * an override means the same whether it comes from YAML or --set. where
 * starts the message ("FILE:LINE:COL: ", "--set ").
 */
int config_set_list(struct config *cfg, const struct config_key *k, char **items, size_t n,
		    const char *where, struct ltv_err *err);
/*
 * Splits "a,b,c" (spaces trimmed) and sets a list key. A blank text is the
 * empty list; an empty item ("7,,30", "7,30,") is a typo and refused, never
 * dropped.
 */
int config_set_list_text(struct config *cfg, const struct config_key *k, const char *text,
			 const char *where, struct ltv_err *err);
/* Parses text as k's type, checks its range and stores it; 0 or LTV_ECONFIG. */
int config_set_value(struct config *cfg, const struct config_key *k, const char *text,
		     const char *where, struct ltv_err *err);
/* Records where key k got its value (see struct config's origins). */
void config_set_origin(struct config *cfg, const struct config_key *k, const char *where);
/*
 * "FILE:LINE:COL: " or "--set " for the key path given a value, else "FILE: "
 * (the value is a default, so the whole file is where to add it), in buf or
 * in cfg (valid while cfg is).
 */
const char *config_origin_of(const struct config *cfg, const char *path, char *buf, size_t size);

#endif
