/*
 * Reading the configuration's YAML file and --set overrides into struct
 * config: each scalar or list found is set through config_set_value or
 * config_set_list (src/config.c), so a value is parsed and range-checked in one
 * place, and each remembers where it came from (FILE:LINE:COL, or --set) for
 * the messages of config_validate. The only file that includes <yaml.h>.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "config_internal.h"

/* ---- YAML ---- */

struct yaml_walk {
	struct config *cfg;
	yaml_document_t *doc;
	const char *path;
	struct ltv_err *err;
	/* Byte offsets of the scalars written with an explicit !!str tag. */
	size_t *str_tagged;
	size_t n_str_tagged;
};

/*
 * The document model cannot tell "16" from "!!str 16" (both carry the str
 * tag), so one pass over the events notes where explicit !!str scalars start.
 * A syntax error ends the pass quietly: yaml_parser_load reports it.
 */
static void find_str_tagged(FILE *f, struct yaml_walk *w)
{
	yaml_parser_t parser;
	yaml_event_t event;
	size_t cap = 0;
	int done = 0;

	if (!yaml_parser_initialize(&parser))
		return;
	yaml_parser_set_input_file(&parser, f);
	while (!done && yaml_parser_parse(&parser, &event)) {
		if (event.type == YAML_SCALAR_EVENT && event.data.scalar.tag &&
		    strcmp((const char *)event.data.scalar.tag, YAML_STR_TAG) == 0) {
			ARRAY_GROW(w->str_tagged, w->n_str_tagged + 1, cap);
			w->str_tagged[w->n_str_tagged++] = event.start_mark.index;
		}
		done = event.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&event);
	}
	yaml_parser_delete(&parser);
}

static int is_str_tagged(const struct yaml_walk *w, const yaml_node_t *node)
{
	for (size_t i = 0; i < w->n_str_tagged; i++)
		if (w->str_tagged[i] == node->start_mark.index)
			return 1;
	return 0;
}

/* A number key given "!!str 16": YAML says string, so refuse rather than guess. */
static int refuse_str_tagged(const struct yaml_walk *w, const struct config_key *k,
			     const yaml_node_t *node, const char *where)
{
	return err_set(w->err, LTV_ECONFIG, "%s%s: expected %s, got the string '%s' (tagged !!str); "
		       "remove the tag", where, k->path,
		       k->type == KEY_DOUBLE ? "a number" : "an integer",
		       (const char *)node->data.scalar.value);
}

static void where_of(const struct yaml_walk *w, const yaml_node_t *node, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%zu:%zu: ", w->path, node->start_mark.line + 1,
		 node->start_mark.column + 1);
}

static int walk_scalar_list(struct yaml_walk *w, const struct config_key *k, yaml_node_t *seq)
{
	char where[4200];
	char **items = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;

	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(w->doc, *it);

		if (!item || item->type != YAML_SCALAR_NODE) {
			where_of(w, item ? item : seq, where, sizeof(where));
			ret = err_set(w->err, LTV_ECONFIG, "%s%s: list items must be plain values",
				      where, k->path);
			goto out;
		}
		if (k->type == KEY_INT_LIST && is_str_tagged(w, item)) {
			where_of(w, item, where, sizeof(where));
			ret = refuse_str_tagged(w, k, item, where);
			goto out;
		}
		ARRAY_GROW(items, n + 1, cap);
		items[n++] = (char *)item->data.scalar.value;
	}
	where_of(w, seq, where, sizeof(where));
	ret = config_set_list(w->cfg, k, items, n, where, w->err);
	if (ret == 0)
		config_set_origin(w->cfg, k, where);
out:
	free(items);
	return ret;
}

static int walk_mapping(struct yaml_walk *w, yaml_node_t *map, const char *prefix);

static int walk_entry(struct yaml_walk *w, const char *path, yaml_node_t *value)
{
	const struct config_key *k = config_find_key(path);
	char where[4200];
	int ret;

	where_of(w, value, where, sizeof(where));
	if (value->type == YAML_MAPPING_NODE) {
		if (k)
			return err_set(w->err, LTV_ECONFIG, "%s%s: expected %s, got a mapping", where,
				       path, config_type_words(k));
		return walk_mapping(w, value, path);
	}
	if (!k) {
		/* A section name alone is known if some key starts with "path." */
		return err_set(w->err, LTV_ECONFIG,
			       "%sunknown key '%s'; see config/ltvpipe.yaml for the keys ltvpipe reads",
			       where, path);
	}
	if (value->type == YAML_SEQUENCE_NODE) {
		if (k->type != KEY_INT_LIST && k->type != KEY_STR_LIST)
			return err_set(w->err, LTV_ECONFIG, "%s%s: expected %s, got a list", where,
				       path, config_type_words(k));
		return walk_scalar_list(w, k, value);
	}
	if (k->type != KEY_STRING && k->type != KEY_STR_LIST && is_str_tagged(w, value))
		return refuse_str_tagged(w, k, value, where);
	if (k->type == KEY_INT_LIST || k->type == KEY_STR_LIST) {
		/* "horizons: 30" or "attributes: []" written as scalars are one-item / empty lists */
		ret = config_set_list_text(w->cfg, k, (const char *)value->data.scalar.value, where,
					 w->err);
	} else {
		ret = config_set_value(w->cfg, k, (const char *)value->data.scalar.value, where, w->err);
	}
	if (ret == 0)
		config_set_origin(w->cfg, k, where);
	return ret;
}

static int walk_mapping(struct yaml_walk *w, yaml_node_t *map, const char *prefix)
{
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(w->doc, pair->key);
		yaml_node_t *value = yaml_document_get_node(w->doc, pair->value);
		char path[512];
		int ret;

		if (!key || key->type != YAML_SCALAR_NODE || !value) {
			char where[4200];

			where_of(w, key ? key : map, where, sizeof(where));
			return err_set(w->err, LTV_ECONFIG, "%skeys must be plain names", where);
		}
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
			 (const char *)key->data.scalar.value);
		/* YAML lets the last of two equal keys win silently; a config must not. */
		for (yaml_node_pair_t *prev = map->data.mapping.pairs.start; prev < pair; prev++) {
			yaml_node_t *pk = yaml_document_get_node(w->doc, prev->key);

			if (pk && pk->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)pk->data.scalar.value,
				   (const char *)key->data.scalar.value) == 0)
				return err_set(w->err, LTV_ECONFIG,
					       "%s:%zu:%zu: duplicate key '%s' (first at line %zu); "
					       "keep one", w->path, key->start_mark.line + 1,
					       key->start_mark.column + 1, path, pk->start_mark.line + 1);
		}
		ret = walk_entry(w, path, value);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int config_load_file(struct config *cfg, const char *path, struct ltv_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc, next;
	struct yaml_walk w = { cfg, &doc, path, err, NULL, 0 };
	FILE *f = NULL;
	int ret = 0, have_doc = 0, have_parser = 0;

	f = fopen(path, "rb");
	if (!f)
		return err_set(err, LTV_ECONFIG, "cannot read config '%s': %s", path, strerror(errno));
	find_str_tagged(f, &w);
	rewind(f);
	if (!yaml_parser_initialize(&parser)) {
		ret = err_set(err, LTV_ENOMEM, "cannot initialise the YAML parser");
		goto out;
	}
	have_parser = 1;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = err_set(err, LTV_ECONFIG, "%s:%zu:%zu: YAML syntax error: %s", path,
			      parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			      parser.problem ? parser.problem : "unknown");
		goto out;
	}
	have_doc = 1;
	/* A second document would be ignored: refuse it rather than read half the file. */
	if (!yaml_parser_load(&parser, &next)) {
		ret = err_set(err, LTV_ECONFIG, "%s:%zu:%zu: YAML syntax error: %s", path,
			      parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			      parser.problem ? parser.problem : "unknown");
		goto out;
	}
	if (yaml_document_get_root_node(&next)) {
		ret = err_set(err, LTV_ECONFIG, "%s:%zu:%zu: a second YAML document; ltvpipe reads "
			      "one: put every section in the first and remove the '---'", path,
			      next.start_mark.line + 1, next.start_mark.column + 1);
		yaml_document_delete(&next);
		goto out;
	}
	yaml_document_delete(&next);
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root) {
		if (root->type != YAML_MAPPING_NODE) {
			ret = err_set(err, LTV_ECONFIG, "%s:%zu:%zu: the top level must be a mapping of sections",
				      path, root->start_mark.line + 1, root->start_mark.column + 1);
			goto out;
		}
		ret = walk_mapping(&w, root, "");
		if (ret < 0)
			goto out;
	}
	free(cfg->source_path);
	cfg->source_path = xstrdup(path);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	free(w.str_tagged);
	fclose(f);
	return ret;
}

int config_apply_override(struct config *cfg, const char *assignment, struct ltv_err *err)
{
	const char *eq = strchr(assignment, '=');
	char key[512];
	const struct config_key *k;
	char where[600];

	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(key))
		return err_set(err, LTV_ECONFIG, "--set '%s': expected key.path=value", assignment);
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	k = config_find_key(key);
	if (!k)
		return err_set(err, LTV_ECONFIG,
			       "--set: unknown key '%s'; see config/ltvpipe.yaml for the keys ltvpipe reads",
			       key);
	snprintf(where, sizeof(where), "--set ");
	if (config_set_value(cfg, k, eq + 1, where, err) < 0)
		return LTV_ECONFIG;
	config_set_origin(cfg, k, where);
	return 0;
}

const char *config_yaml_version(void)
{
	return yaml_get_version_string();
}
