/*
 * Configuration loading. Every key lives in one table (key_table) with its
 * type, range and default and a pointer offset into struct config; defaults,
 * YAML scalars and --set overrides all go through set_value(), so there is a
 * single place that parses and range-checks a value, and a single canonical
 * printer used for fingerprints.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/tzone.h"

enum key_type { KEY_INT, KEY_DOUBLE, KEY_STRING, KEY_INT_LIST, KEY_STR_LIST };

struct config_key {
	const char *path;     /* "features.snapshots" */
	enum key_type type;
	size_t offset;        /* into struct config */
	double min, max;      /* for numbers and list items */
	const char *defval;   /* parsed by set_value like any other value */
};

#define GBT_FEATURES \
	"rev_window,rev_d0,rev_max_day,purchases_window,events_window" \
	",events_d0,active_days_window,engagement,first_purchase_day,cost,window_days,app_ltv_te,campaign_ltv_te,campaign_payer_te,campaign_train_users_log" \
	",purchase_days,days_since_purchase,days_since_active,rev_per_purchase_day,rev_last7,events_last7_share"

#define K(path, type, field, min, max, def) \
	{ path, type, offsetof(struct config, field), min, max, def }

static const struct config_key key_table[] = {
	K("input.users", KEY_STRING, input.users, 0, 0, "data/users.csv"),
	K("input.events", KEY_STRING, input.events, 0, 0, "data/events.csv"),
	K("input.delimiter", KEY_STRING, input.delimiter, 0, 0, ","),
	K("columns.user_id", KEY_STRING, columns.user_id, 0, 0, "user_id"),
	K("columns.app_id", KEY_STRING, columns.app_id, 0, 0, "app_id"),
	K("columns.campaign", KEY_STRING, columns.campaign, 0, 0, "campaign"),
	K("columns.install_time", KEY_STRING, columns.install_time, 0, 0, "install_time"),
	K("columns.cost", KEY_STRING, columns.cost, 0, 0, "cost"),
	K("columns.event_user_id", KEY_STRING, columns.event_user_id, 0, 0, "user_id"),
	K("columns.event_time", KEY_STRING, columns.event_time, 0, 0, "event_time"),
	K("columns.revenue", KEY_STRING, columns.revenue, 0, 0, "revenue"),
	K("columns.event", KEY_STRING, columns.event, 0, 0, "event"),
	K("columns.attributes", KEY_STR_LIST, columns.attributes, 0, 0, ""),
	K("columns.time_format", KEY_STRING, columns.time_format, 0, 0, "iso8601"),
	K("registry.path", KEY_STRING, registry.path, 0, 0, "models/registry.sqlite"),
	K("registry.busy_timeout_s", KEY_INT, registry.busy_timeout_s, 0, 86400, "60"),
	K("run.jobs", KEY_INT, run.jobs, 0, 256, "0"),
	K("run.memory_mb", KEY_INT, run.memory_mb, 0, 16777216, "0"),
	K("run.log_dir", KEY_STRING, run.log_dir, 0, 0, "logs"),
	K("run.log_level", KEY_STRING, run.log_level, 0, 0, "info"),
	K("ingest.mode", KEY_STRING, ingest.mode, 0, 0, "append"),
	K("ingest.max_reject_rate", KEY_DOUBLE, ingest.max_reject_rate, 0, 1, "0.01"),
	K("ingest.rejects_dir", KEY_STRING, ingest.rejects_dir, 0, 0, "logs"),
	K("ingest.timezone", KEY_STRING, ingest.timezone, 0, 0, ""),
	K("ingest.negative_revenue", KEY_STRING, ingest.negative_revenue, 0, 0, "reject"),
	K("features.snapshots", KEY_INT_LIST, features.snapshots, 1, 3650, "1,3,7,14,30,60"),
	K("features.horizons", KEY_INT_LIST, features.horizons, 1, 3650, "7,30,90"),
	K("features.target_horizon", KEY_INT, features.target_horizon, 1, 3650, "30"),
	K("features.validation_days", KEY_INT, features.validation_days, 1, 3650, "28"),
	K("features.encoding_smoothing", KEY_DOUBLE, features.encoding_smoothing, 0, 1e9, "20"),
	K("tiers.tier1_min_users", KEY_INT, tiers.tier1_min_users, 1, 100000000, "500"),
	K("tiers.tier1_min_payers", KEY_INT, tiers.tier1_min_payers, 0, 100000000, "20"),
	K("tiers.tier2_min_users", KEY_INT, tiers.tier2_min_users, 1, 100000000, "50"),
	K("tiers.tier2_min_payers", KEY_INT, tiers.tier2_min_payers, 0, 100000000, "3"),
	K("hurdle.features", KEY_STR_LIST, hurdle.features, 0, 0, GBT_FEATURES),
	K("hurdle.max_depth", KEY_INT, hurdle.max_depth, 1, 16, "6"),
	K("hurdle.eta", KEY_DOUBLE, hurdle.eta, 0.001, 1, "0.1"),
	K("hurdle.n_rounds", KEY_INT, hurdle.n_rounds, 1, 10000, "400"),
	K("hurdle.early_stopping_rounds", KEY_INT, hurdle.early_stopping_rounds, 1, 1000, "20"),
	K("hurdle.min_child_weight", KEY_DOUBLE, hurdle.min_child_weight, 0, 1e6, "5"),
	K("hurdle.subsample", KEY_DOUBLE, hurdle.subsample, 0.01, 1, "0.8"),
	K("hurdle.colsample_bytree", KEY_DOUBLE, hurdle.colsample_bytree, 0.01, 1, "0.8"),
	K("hurdle.lambda", KEY_DOUBLE, hurdle.lambda, 0, 1e6, "1"),
	K("hurdle.max_bin", KEY_INT, hurdle.max_bin, 2, 1024, "256"),
	K("hurdle.max_train_rows", KEY_INT, hurdle.max_train_rows, 0, 100000000, "0"),
	K("hurdle.max_zero_rows", KEY_INT, hurdle.max_zero_rows, 0, 100000000, "150000"),
	K("hurdle.min_tier_users", KEY_INT, hurdle.min_tier_users, 1, 100000000, "2000"),
	K("hurdle.attribute_features", KEY_INT, hurdle.attribute_features, 0, 1, "0"),
	K("hurdle.smear_by_age", KEY_INT, hurdle.smear_by_age, 0, 1, "1"),
	K("multiplier.features", KEY_STR_LIST, multiplier.features, 0, 0, GBT_FEATURES),
	K("multiplier.max_depth", KEY_INT, multiplier.max_depth, 1, 16, "4"),
	K("multiplier.eta", KEY_DOUBLE, multiplier.eta, 0.001, 1, "0.1"),
	K("multiplier.n_rounds", KEY_INT, multiplier.n_rounds, 1, 10000, "300"),
	K("multiplier.early_stopping_rounds", KEY_INT, multiplier.early_stopping_rounds, 1, 1000, "10"),
	K("multiplier.min_child_weight", KEY_DOUBLE, multiplier.min_child_weight, 0, 1e6, "5"),
	K("multiplier.subsample", KEY_DOUBLE, multiplier.subsample, 0.01, 1, "0.8"),
	K("multiplier.colsample_bytree", KEY_DOUBLE, multiplier.colsample_bytree, 0.01, 1, "0.8"),
	K("multiplier.lambda", KEY_DOUBLE, multiplier.lambda, 0, 1e6, "1"),
	K("multiplier.max_bin", KEY_INT, multiplier.max_bin, 2, 1024, "256"),
	K("multiplier.min_tier_users", KEY_INT, multiplier.min_tier_users, 1, 100000000, "500"),
	K("multiplier.attribute_features", KEY_INT, multiplier.attribute_features, 0, 1, "0"),
	K("multiplier.smear_by_age", KEY_INT, multiplier.smear_by_age, 0, 1, "0"),
	K("curves.shrinkage_users", KEY_DOUBLE, curves.shrinkage_users, 0, 1e9, "500"),
	K("curves.min_cohort_users", KEY_INT, curves.min_cohort_users, 1, 100000000, "30"),
	K("lookalike.features", KEY_STR_LIST, lookalike.features, 0, 0,
	  "rev_window,purchases_window,active_days_window,events_window,engagement,cost,window_days,"
	  "days_since_active"),
	K("lookalike.k", KEY_INT, lookalike.k, 1, 1000, "16"),
	K("lookalike.max_iter", KEY_INT, lookalike.max_iter, 1, 10000, "100"),
	K("lookalike.seed", KEY_INT, lookalike.seed, 0, (double)INT64_MAX, "42"),
	K("lookalike.mean_by_age", KEY_INT, lookalike.mean_by_age, 0, 1, "1"),
	K("btyd.min_app_users", KEY_INT, btyd.min_app_users, 1, 100000000, "1000"),
	K("btyd.fit_users", KEY_INT, btyd.fit_users, 0, 1, "0"),
	K("btyd.serve_fit", KEY_INT, btyd.serve_fit, 0, 2, "0"),
	K("semantic.top_k", KEY_INT, semantic.top_k, 1, 1000, "5"),
	K("semantic.char_ngrams", KEY_INT, semantic.char_ngrams, 0, 8, "0"),
	K("semantic.mean_by_age", KEY_INT, semantic.mean_by_age, 0, 1, "1"),
	K("select.min_validation_users", KEY_INT, select.min_validation_users, 1, 100000000, "50"),
	K("select.held_out_ages", KEY_INT, select.held_out_ages, 0, 1, "0"),
	K("select.rank_share", KEY_INT, select.rank_share, 0, 3, "1"),
	K("select.rank_cells", KEY_INT, select.rank_cells, 0, 1, "1"),
	K("select.unlabelled", KEY_INT, select.unlabelled, 0, 2, "1"),
	K("select.horizon_step", KEY_INT, select.horizon_step, 0, 1, "0"),
	K("calibrate.alpha_min", KEY_DOUBLE, calibrate.alpha_min, 0, 10, "0.5"),
	K("calibrate.alpha_max", KEY_DOUBLE, calibrate.alpha_max, 0, 10, "1.5"),
	K("calibrate.folds", KEY_INT, calibrate.folds, 2, 100, "5"),
	K("calibrate.min_users", KEY_INT, calibrate.min_users, 2, 100000000, "200"),
	K("calibrate.held_out_ages", KEY_INT, calibrate.held_out_ages, 0, 1, "0"),
	K("calibrate.bootstrap_band", KEY_INT, calibrate.bootstrap_band, 0, 1, "0"),
	K("calibrate.floor_share", KEY_INT, calibrate.floor_share, 0, 2, "1"),
	K("models.auto_promote", KEY_INT, models.auto_promote, 0, 1, "0"),
	K("models.compare_resamples", KEY_INT, models.compare_resamples, 100, 1000000, "1000"),
	K("models.compare_min_campaign_users", KEY_INT, models.compare_min_campaign_users, 1, 100000000, "50"),
	K("monitor.window_days", KEY_INT, monitor.window_days, 1, 365, "7"),
	K("monitor.reference_windows", KEY_INT, monitor.reference_windows, 1, 52, "4"),
	K("monitor.bins", KEY_INT, monitor.bins, 2, 64, "10"),
	K("monitor.psi_warn", KEY_DOUBLE, monitor.psi_warn, 0.0001, 100, "0.1"),
	K("monitor.psi_alert", KEY_DOUBLE, monitor.psi_alert, 0.0001, 100, "0.25"),
	K("monitor.calibration_warn", KEY_DOUBLE, monitor.calibration_warn, 0.0001, 100, "0.3"),
	K("monitor.calibration_min_users", KEY_INT, monitor.calibration_min_users, 1, 100000000, "200"),
	K("monitor.calibration_weeks", KEY_INT, monitor.calibration_weeks, 1, 520, "13"),
	K("serve.bind", KEY_STRING, serve.bind, 0, 0, "127.0.0.1"),
	K("serve.port", KEY_INT, serve.port, 0, 65535, "8080"),
	K("serve.threads", KEY_INT, serve.threads, 0, 256, "0"),
	K("serve.model", KEY_STRING, serve.model, 0, 0, "production"),
	K("serve.watch_ms", KEY_INT, serve.watch_ms, 0, 3600000, "1000"),
	K("serve.max_batch", KEY_INT, serve.max_batch, 1, 1000000, "10000"),
	K("serve.max_body_bytes", KEY_INT, serve.max_body_bytes, 1024, 1073741824, "8388608"),
	K("serve.json_max_depth", KEY_INT, serve.json_max_depth, 2, 64, "16"),
	K("serve.max_connections", KEY_INT, serve.max_connections, 1, 65536, "512"),
	K("serve.connection_timeout_s", KEY_INT, serve.connection_timeout_s, 1, 3600, "30"),
	K("serve.request_timeout_s", KEY_INT, serve.request_timeout_s, 1, 3600, "30"),
	K("serve.token", KEY_STRING, serve.token, 0, 0, ""),
	K("serve.log_sample", KEY_INT, serve.log_sample, 0, 1000000, "1"),
};
#define N_KEYS (sizeof(key_table) / sizeof(key_table[0]))

static const struct config_key *find_key(const char *path)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(key_table[i].path, path) == 0)
			return &key_table[i];
	return NULL;
}

static void *field_ptr(struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *field_cptr(const struct config *cfg, const struct config_key *k)
{
	return (const char *)cfg + k->offset;
}

static const char *type_words(const struct config_key *k)
{
	switch (k->type) {
	case KEY_INT: return "an integer";
	case KEY_DOUBLE: return "a number";
	case KEY_STRING: return "a string";
	case KEY_INT_LIST: return "a list of integers";
	default: return "a list of strings";
	}
}

static int check_range(const struct config_key *k, double v, const char *where,
		       const char *text, struct ltv_err *err)
{
	if (v < k->min || v > k->max)
		return err_set(err, LTV_ECONFIG, "%s%s: %s is out of range; use a value from %g to %g",
			       where, k->path, text, k->min, k->max);
	return 0;
}

/* Stores into *out only a value that parsed and is in range. */
static int parse_int_item(const struct config_key *k, const char *s, const char *where,
			  int64_t *out, struct ltv_err *err)
{
	int64_t v;

	if (parse_int64(s, &v) < 0)
		return err_set(err, LTV_ECONFIG, "%s%s: expected %s, got '%s'", where, k->path,
			       k->type == KEY_INT ? "an integer" : "integers", s);
	if (check_range(k, (double)v, where, s, err) < 0)
		return LTV_ECONFIG;
	*out = v;
	return 0;
}

static void free_str_list(struct str_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * Sets a list key from items (already split). Lists replace, never append, so
 * an override means the same whether it comes from YAML or --set.
 */
static int set_list(struct config *cfg, const struct config_key *k, char **items, size_t n,
		    const char *where, struct ltv_err *err)
{
	if (k->type == KEY_INT_LIST) {
		struct int_list *l = field_ptr(cfg, k);
		int64_t *v = xcalloc(n, sizeof(*v));

		for (size_t i = 0; i < n; i++) {
			if (parse_int_item(k, items[i], where, &v[i], err) < 0) {
				free(v);
				return LTV_ECONFIG;
			}
		}
		free(l->v);
		l->v = v;
		l->n = n;
	} else {
		struct str_list *l = field_ptr(cfg, k);

		free_str_list(l);
		l->v = xcalloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			l->v[i] = xstrdup(items[i]);
		l->n = n;
	}
	return 0;
}

/*
 * Splits "a,b,c" (spaces trimmed) and sets a list key. A blank text is the
 * empty list; an empty item ("7,,30", "7,30,") is a typo and refused, never
 * dropped.
 */
static int set_list_from_text(struct config *cfg, const struct config_key *k, const char *text,
			      const char *where, struct ltv_err *err)
{
	char *copy = xstrdup(text), **items = NULL, *tok = copy;
	size_t n = 0, cap = 0;
	int ret = 0;

	while (*tok == ' ')
		tok++;
	/* "[a, b]", the flow syntax of the YAML file, means the same as "a,b" on --set. */
	if (*tok == '[') {
		char *end = tok + strlen(tok);

		while (end > tok + 1 && end[-1] == ' ')
			end--;
		if (end[-1] != ']') {
			ret = err_set(err, LTV_ECONFIG, "%s%s: '%s' opens a list with '[' but does not "
				      "close it; write [a, b] or a,b", where, k->path, text);
			goto out;
		}
		end[-1] = '\0';
		tok++;
		while (*tok == ' ')
			tok++;
	}
	if (strpbrk(tok, "[]")) {
		ret = err_set(err, LTV_ECONFIG, "%s%s: '%s' is not a list; write [a, b] or a,b", where,
			      k->path, text);
		goto out;
	}
	if (*tok == '\0')
		tok = NULL; /* the empty list */
	while (tok) {
		char *comma = strchr(tok, ',');
		size_t len;

		if (comma)
			*comma = '\0';
		while (*tok == ' ')
			tok++;
		len = strlen(tok);
		while (len > 0 && tok[len - 1] == ' ')
			tok[--len] = '\0';
		if (!len) {
			ret = err_set(err, LTV_ECONFIG, "%s%s: empty item %zu in '%s'; separate items "
				      "with single commas", where, k->path, n + 1, text);
			goto out;
		}
		ARRAY_GROW(items, n + 1, cap);
		items[n++] = tok;
		tok = comma ? comma + 1 : NULL;
	}
	ret = set_list(cfg, k, items, n, where, err);
out:
	free(items);
	free(copy);
	return ret;
}

static int set_value(struct config *cfg, const struct config_key *k, const char *text,
		     const char *where, struct ltv_err *err)
{
	switch (k->type) {
	case KEY_INT:
		return parse_int_item(k, text, where, field_ptr(cfg, k), err);
	case KEY_DOUBLE: {
		double v;

		if (parse_double(text, &v) < 0)
			return err_set(err, LTV_ECONFIG, "%s%s: expected a number, got '%s'", where,
				       k->path, text);
		if (check_range(k, v, where, text, err) < 0)
			return LTV_ECONFIG;
		*(double *)field_ptr(cfg, k) = v;
		return 0;
	}
	case KEY_STRING: {
		char **dst = field_ptr(cfg, k);

		free(*dst);
		*dst = xstrdup(text);
		return 0;
	}
	default:
		return set_list_from_text(cfg, k, text, where, err);
	}
}

/* Records where key k got its value (see struct config's origins). */
static void set_origin(struct config *cfg, const struct config_key *k, const char *where)
{
	size_t i = (size_t)(k - key_table);

	free(cfg->origins[i]);
	cfg->origins[i] = where ? xstrdup(where) : NULL;
}

/*
 * "FILE:LINE:COL: " or "--set " for a key given a value, else "FILE: " (the
 * value is a default, so the whole file is where to add it).
 */
static const char *origin_of(const struct config *cfg, const char *path, char *buf, size_t size)
{
	const struct config_key *k = find_key(path);

	assert(k);
	if (cfg->origins && cfg->origins[k - key_table])
		return cfg->origins[k - key_table];
	snprintf(buf, size, "%s: ", cfg->source_path);
	return buf;
}

void config_init_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->source_path = xstrdup("(defaults)");
	cfg->origins = xcalloc(N_KEYS, sizeof(char *));
	for (size_t i = 0; i < N_KEYS; i++) {
		int ret = set_value(cfg, &key_table[i], key_table[i].defval, "", NULL);

		assert(ret == 0 && "a default in key_table does not parse");
		(void)ret;
	}
}

void config_release(struct config *cfg)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &key_table[i];

		if (k->type == KEY_STRING)
			free(*(char **)field_ptr(cfg, k));
		else if (k->type == KEY_INT_LIST)
			free(((struct int_list *)field_ptr(cfg, k))->v);
		else if (k->type == KEY_STR_LIST)
			free_str_list(field_ptr(cfg, k));
		if (cfg->origins)
			free(cfg->origins[i]);
	}
	free(cfg->origins);
	free(cfg->source_path);
	memset(cfg, 0, sizeof(*cfg));
}

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
	ret = set_list(w->cfg, k, items, n, where, w->err);
	if (ret == 0)
		set_origin(w->cfg, k, where);
out:
	free(items);
	return ret;
}

static int walk_mapping(struct yaml_walk *w, yaml_node_t *map, const char *prefix);

static int walk_entry(struct yaml_walk *w, const char *path, yaml_node_t *value)
{
	const struct config_key *k = find_key(path);
	char where[4200];
	int ret;

	where_of(w, value, where, sizeof(where));
	if (value->type == YAML_MAPPING_NODE) {
		if (k)
			return err_set(w->err, LTV_ECONFIG, "%s%s: expected %s, got a mapping", where,
				       path, type_words(k));
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
				       path, type_words(k));
		return walk_scalar_list(w, k, value);
	}
	if (k->type != KEY_STRING && k->type != KEY_STR_LIST && is_str_tagged(w, value))
		return refuse_str_tagged(w, k, value, where);
	if (k->type == KEY_INT_LIST || k->type == KEY_STR_LIST) {
		/* "horizons: 30" or "attributes: []" written as scalars are one-item / empty lists */
		ret = set_list_from_text(w->cfg, k, (const char *)value->data.scalar.value, where,
					 w->err);
	} else {
		ret = set_value(w->cfg, k, (const char *)value->data.scalar.value, where, w->err);
	}
	if (ret == 0)
		set_origin(w->cfg, k, where);
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
	k = find_key(key);
	if (!k)
		return err_set(err, LTV_ECONFIG,
			       "--set: unknown key '%s'; see config/ltvpipe.yaml for the keys ltvpipe reads",
			       key);
	snprintf(where, sizeof(where), "--set ");
	if (set_value(cfg, k, eq + 1, where, err) < 0)
		return LTV_ECONFIG;
	set_origin(cfg, k, where);
	return 0;
}

/*
 * Columns no model may read: labels, the revenue to date (it sees past the
 * snapshot), the split and the age at as_of (they encode maturity, so training
 * and scoring rows differ by construction), the row id, and the row weight and
 * user marker (the sampling that sets them looks at the labels). The age a row
 * describes is window_days, which is a feature.
 */
static int leaky_feature(const char *name)
{
	static const char *const banned[] = { "rev_to_date", "repeat_days_to_date",
					      "last_repeat_day_to_date", "split", "age_days", "uid",
					      "weight", "user_rep" };

	if (strncmp(name, "ltv_", 4) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
		if (strcmp(name, banned[i]) == 0)
			return 1;
	return 0;
}

/*
 * The columns of the features frame a model may read (pipeline/feature_build.c
 * makes them; keep the two in step). A name
 * outside this list is a typo that would otherwise fail only at the stage.
 */
static const char *const model_features[] = {
	"rev_window", "rev_d0", "rev_max_day", "purchases_window", "events_window", "events_d0",
	"active_days_window", "engagement", "first_purchase_day", "cost", "window_days",
	"app_ltv_te", "campaign_ltv_te", "campaign_payer_te", "campaign_train_users_log",
	"purchase_days", "days_since_purchase", "days_since_active", "rev_per_purchase_day",
	"rev_last7", "events_last7_share", "app_code", "campaign_code",
};

static int known_feature(const char *name)
{
	for (size_t i = 0; i < sizeof(model_features) / sizeof(model_features[0]); i++)
		if (strcmp(name, model_features[i]) == 0)
			return 1;
	return 0;
}

/* attr_<a>_ltv_te or attr_<a>_payer_te for an attribute a of columns.attributes. */
static int attribute_feature(const struct config *cfg, const char *name)
{
	for (size_t k = 0; k < cfg->columns.attributes.n; k++) {
		char ltv[ATTR_FEATURE_MAX], payer[ATTR_FEATURE_MAX];

		config_attribute_features(cfg->columns.attributes.v[k], ltv, payer);
		if (strcmp(name, ltv) == 0 || strcmp(name, payer) == 0)
			return 1;
	}
	return 0;
}

void config_attribute_features(const char *attribute, char ltv[ATTR_FEATURE_MAX],
			       char payer[ATTR_FEATURE_MAX])
{
	snprintf(ltv, ATTR_FEATURE_MAX, "attr_%s_ltv_te", attribute);
	snprintf(payer, ATTR_FEATURE_MAX, "attr_%s_payer_te", attribute);
}

static void list_add_once(struct str_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
	l->v[l->n++] = xstrdup(name);
}

void config_model_features(const struct config *cfg, const struct gbt_section *sec,
			   struct str_list *out)
{
	out->n = 0;
	out->v = NULL;
	for (size_t i = 0; i < sec->features.n; i++)
		list_add_once(out, sec->features.v[i]);
	for (size_t k = 0; k < cfg->columns.attributes.n && sec->attribute_features; k++) {
		char ltv[ATTR_FEATURE_MAX], payer[ATTR_FEATURE_MAX];

		config_attribute_features(cfg->columns.attributes.v[k], ltv, payer);
		list_add_once(out, ltv);
		list_add_once(out, payer);
	}
}

void config_str_list_free(struct str_list *l)
{
	free_str_list(l);
}

static int check_feature_list(const struct config *cfg, const char *key, const struct str_list *l,
			      struct ltv_err *err)
{
	char buf[4200];

	for (size_t i = 0; i < l->n; i++)
		if (!leaky_feature(l->v[i]) && !known_feature(l->v[i]) && !attribute_feature(cfg, l->v[i]))
			return err_set(err, LTV_ECONFIG, "%s%s: '%s' is not a feature; the features are "
				       "rev_window, rev_d0, rev_max_day, purchases_window, events_window, "
				       "events_d0, active_days_window, engagement, first_purchase_day, "
				       "cost, window_days, app_ltv_te, campaign_ltv_te, campaign_payer_te, "
				       "campaign_train_users_log, purchase_days, days_since_purchase, "
				       "days_since_active, rev_per_purchase_day, rev_last7, "
				       "events_last7_share, app_code, campaign_code, and "
				       "attr_<a>_ltv_te, attr_<a>_payer_te for an attribute a of "
				       "columns.attributes",
				       origin_of(cfg, key, buf, sizeof(buf)), key, l->v[i]);
	for (size_t i = 0; i < l->n; i++)
		if (leaky_feature(l->v[i]))
			return err_set(err, LTV_ECONFIG,
				       "%s%s: '%s' would leak the outcome into the model (labels, "
				       "revenue to date, split and age are not features); remove it",
				       origin_of(cfg, key, buf, sizeof(buf)), key, l->v[i]);
	return 0;
}

/*
 * Snapshot ages: increasing, the first shorter than the first horizon (so every
 * horizon has training rows). Ages at or past the longest horizon are allowed
 * and unused (nothing is left to predict there), so `--set features.horizons`
 * alone never needs a matching snapshots list.
 */
static int check_snapshots(const struct config *cfg, struct ltv_err *err)
{
	const struct int_list *s = &cfg->features.snapshots, *h = &cfg->features.horizons;
	char buf[4200];
	const char *where = origin_of(cfg, "features.snapshots", buf, sizeof(buf));

	if (s->n == 0 || s->n > 32)
		return err_set(err, LTV_ECONFIG, "%sfeatures.snapshots: list 1 to 32 ages in days",
			       where);
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] <= s->v[i - 1])
			return err_set(err, LTV_ECONFIG,
				       "%sfeatures.snapshots: list ages in increasing order without repeats",
				       where);
	if (s->v[0] >= h->v[0])
		return err_set(err, LTV_ECONFIG,
			       "%sfeatures.snapshots: the first age (%lld days) must be shorter than the "
			       "first horizon (%lld days)", where, (long long)s->v[0], (long long)h->v[0]);
	return 0;
}

char config_delimiter(const struct config *cfg)
{
	const char *d = cfg->input.delimiter;

	if (strcmp(d, "tab") == 0 || strcmp(d, "\t") == 0)
		return '\t';
	if (strcmp(d, "semicolon") == 0 || strcmp(d, ";") == 0)
		return ';';
	if (strcmp(d, "comma") == 0 || strcmp(d, ",") == 0)
		return ',';
	return '\0';
}

/* The keys that say how to read the input files: each a word from a short list. */
static int check_input_options(const struct config *cfg, struct ltv_err *err)
{
	const char *const formats[] = { "iso8601", "unix_s", "unix_ms" };
	char buf[4200];
	int known = 0;
	struct tzone *tz;

	if (!config_delimiter(cfg))
		return err_set(err, LTV_ECONFIG, "%sinput.delimiter: '%s' is not one of ',' ';' "
			       "tab; write \",\", \";\" or tab", origin_of(cfg, "input.delimiter", buf,
			       sizeof(buf)), cfg->input.delimiter);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		known |= strcmp(cfg->columns.time_format, formats[i]) == 0;
	if (!known)
		return err_set(err, LTV_ECONFIG, "%scolumns.time_format: '%s' is not one of iso8601, "
			       "unix_s (seconds since 1970), unix_ms (milliseconds since 1970)",
			       origin_of(cfg, "columns.time_format", buf, sizeof(buf)),
			       cfg->columns.time_format);
	if (strcmp(cfg->ingest.negative_revenue, "reject") != 0 &&
	    strcmp(cfg->ingest.negative_revenue, "subtract") != 0)
		return err_set(err, LTV_ECONFIG, "%singest.negative_revenue: '%s' is not 'reject' or "
			       "'subtract'", origin_of(cfg, "ingest.negative_revenue", buf, sizeof(buf)),
			       cfg->ingest.negative_revenue);
	if (!*cfg->ingest.timezone)
		return 0;
	tz = tzone_open(cfg->ingest.timezone, err);
	if (!tz) {
		char msg[LTV_ERR_MAX];

		memcpy(msg, err->msg, sizeof(msg));
		return err_set(err, LTV_ECONFIG, "%s%s", origin_of(cfg, "ingest.timezone", buf,
			       sizeof(buf)), msg);
	}
	tzone_free(tz);
	return 0;
}

int config_validate(const struct config *cfg, struct ltv_err *err)
{
	for (size_t k = 0; k < cfg->columns.attributes.n; k++) {
		char buf0[4200];

		if (!*cfg->columns.attributes.v[k] || strlen(cfg->columns.attributes.v[k]) > ATTR_NAME_MAX)
			return err_set(err, LTV_ECONFIG, "%scolumns.attributes: '%.120s' is not a column "
				       "name of 1 to %d bytes; list the users-file header names",
				       origin_of(cfg, "columns.attributes", buf0, sizeof(buf0)),
				       cfg->columns.attributes.v[k], ATTR_NAME_MAX);
		for (size_t j = 0; j < k; j++)
			if (strcmp(cfg->columns.attributes.v[j], cfg->columns.attributes.v[k]) == 0)
				return err_set(err, LTV_ECONFIG, "%scolumns.attributes: '%s' is listed twice; "
					       "list each column once",
					       origin_of(cfg, "columns.attributes", buf0, sizeof(buf0)),
					       cfg->columns.attributes.v[k]);
	}
	if (check_feature_list(cfg, "hurdle.features", &cfg->hurdle.features, err) < 0 ||
	    check_feature_list(cfg, "multiplier.features", &cfg->multiplier.features, err) < 0 ||
	    check_feature_list(cfg, "lookalike.features", &cfg->lookalike.features, err) < 0)
		return LTV_ECONFIG;

	const struct int_list *h = &cfg->features.horizons;
	char buf[4200];
	int found = 0;
	int level, ret;

	if (h->n == 0 || h->n > 16)
		return err_set(err, LTV_ECONFIG, "%sfeatures.horizons: list 1 to 16 horizons in days",
			       origin_of(cfg, "features.horizons", buf, sizeof(buf)));
	if (cfg->calibrate.alpha_min > cfg->calibrate.alpha_max)
		return err_set(err, LTV_ECONFIG, "%scalibrate.alpha_min: %g is above calibrate.alpha_max %g",
			       origin_of(cfg, "calibrate.alpha_min", buf, sizeof(buf)),
			       cfg->calibrate.alpha_min, cfg->calibrate.alpha_max);
	if (cfg->semantic.char_ngrams == 1)
		return err_set(err, LTV_ECONFIG,
			       "%ssemantic.char_ngrams: 1 is not allowed; use 0 (words only) or 2 to 8",
			       origin_of(cfg, "semantic.char_ngrams", buf, sizeof(buf)));
	for (size_t i = 0; i < h->n; i++) {
		if (i > 0 && h->v[i] <= h->v[i - 1])
			return err_set(err, LTV_ECONFIG,
				       "%sfeatures.horizons: list horizons in increasing order without repeats",
				       origin_of(cfg, "features.horizons", buf, sizeof(buf)));
		if (h->v[i] == cfg->features.target_horizon)
			found = 1;
	}
	if (!found)
		return err_set(err, LTV_ECONFIG,
			       "%sfeatures.target_horizon: %lld is not one of features.horizons",
			       origin_of(cfg, "features.target_horizon", buf, sizeof(buf)),
			       (long long)cfg->features.target_horizon);
	ret = check_snapshots(cfg, err);
	if (ret < 0)
		return ret;
	if (strcmp(cfg->ingest.mode, "append") != 0 && strcmp(cfg->ingest.mode, "replace") != 0)
		return err_set(err, LTV_ECONFIG, "%singest.mode: '%s' is not 'append' or 'replace'",
			       origin_of(cfg, "ingest.mode", buf, sizeof(buf)), cfg->ingest.mode);
	ret = check_input_options(cfg, err);
	if (ret < 0)
		return ret;
	if (cfg->tiers.tier2_min_users > cfg->tiers.tier1_min_users)
		return err_set(err, LTV_ECONFIG,
			       "%stiers.tier2_min_users: %lld is above tiers.tier1_min_users %lld; tier 2 "
			       "needs fewer users than tier 1",
			       origin_of(cfg, "tiers.tier2_min_users", buf, sizeof(buf)),
			       (long long)cfg->tiers.tier2_min_users, (long long)cfg->tiers.tier1_min_users);
	if (cfg->monitor.psi_warn >= cfg->monitor.psi_alert)
		return err_set(err, LTV_ECONFIG,
			       "%s: monitor.psi_warn: %g is not below monitor.psi_alert %g; the warn "
			       "level must come first (e.g. 0.1 and 0.25)", cfg->source_path,
			       cfg->monitor.psi_warn, cfg->monitor.psi_alert);
	if (log_level_parse(cfg->run.log_level, &level) < 0)
		return err_set(err, LTV_ECONFIG,
			       "%srun.log_level: '%s' is not one of error, warn, info, debug",
			       origin_of(cfg, "run.log_level", buf, sizeof(buf)), cfg->run.log_level);
	return 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *text)
{
	size_t n = strlen(text);

	ARRAY_GROW(*buf, *len + n + 1, *cap);
	memcpy(*buf + *len, text, n + 1);
	*len += n;
}

static void format_value(const struct config *cfg, const struct config_key *k, char **buf,
			 size_t *len, size_t *cap)
{
	char num[64];

	switch (k->type) {
	case KEY_INT:
		snprintf(num, sizeof(num), "%lld", (long long)*(const int64_t *)field_cptr(cfg, k));
		append(buf, len, cap, num);
		break;
	case KEY_DOUBLE:
		snprintf(num, sizeof(num), "%.17g", *(const double *)field_cptr(cfg, k));
		append(buf, len, cap, num);
		break;
	case KEY_STRING:
		append(buf, len, cap, *(char *const *)field_cptr(cfg, k));
		break;
	case KEY_INT_LIST: {
		const struct int_list *l = field_cptr(cfg, k);

		append(buf, len, cap, "[");
		for (size_t i = 0; i < l->n; i++) {
			snprintf(num, sizeof(num), "%s%lld", i ? ", " : "", (long long)l->v[i]);
			append(buf, len, cap, num);
		}
		append(buf, len, cap, "]");
		break;
	}
	case KEY_STR_LIST: {
		const struct str_list *l = field_cptr(cfg, k);

		append(buf, len, cap, "[");
		for (size_t i = 0; i < l->n; i++) {
			append(buf, len, cap, i ? ", " : "");
			append(buf, len, cap, l->v[i]);
		}
		append(buf, len, cap, "]");
		break;
	}
	}
}

char *config_section_canonical(const struct config *cfg, const char *section)
{
	size_t slen = strlen(section), len = 0, cap = 0;
	char *buf = NULL;

	append(&buf, &len, &cap, "");
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &key_table[i];

		if (strncmp(k->path, section, slen) != 0 || k->path[slen] != '.')
			continue;
		append(&buf, &len, &cap, k->path);
		append(&buf, &len, &cap, "=");
		format_value(cfg, k, &buf, &len, &cap);
		append(&buf, &len, &cap, "\n");
	}
	return buf;
}

char *config_dump(const struct config *cfg)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;

	append(&buf, &len, &cap, "");
	for (size_t i = 0; i < N_KEYS; i++) {
		append(&buf, &len, &cap, key_table[i].path);
		append(&buf, &len, &cap, ": ");
		format_value(cfg, &key_table[i], &buf, &len, &cap);
		append(&buf, &len, &cap, "\n");
	}
	return buf;
}

int config_jobs(const struct config *cfg)
{
	long n;

	if (cfg->run.jobs > 0)
		return (int)cfg->run.jobs;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

const char *config_yaml_version(void)
{
	return yaml_get_version_string();
}

int config_apply_canonical(struct config *cfg, const char *text, struct ltv_err *err)
{
	char *copy = xstrdup(text), *save = NULL;
	int ret = 0;

	for (char *line = strtok_r(copy, "\n", &save); line && ret == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), *value;
		const struct config_key *k;
		size_t len;

		if (!eq)
			continue;
		*eq = '\0';
		k = find_key(line);
		if (!k)
			continue;
		value = eq + 1;
		len = strlen(value);
		/* Lists are printed as "[a, b]"; the setter takes "a, b". */
		if (len >= 2 && value[0] == '[' && value[len - 1] == ']') {
			value[len - 1] = '\0';
			value++;
		}
		ret = set_value(cfg, k, value, "model config: ", err);
	}
	free(copy);
	return ret;
}

void config_copy(struct config *dst, const struct config *src)
{
	config_init_defaults(dst);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &key_table[i];
		size_t len = 0, cap = 0;
		char *text = NULL;
		int ret;

		append(&text, &len, &cap, "");
		format_value(src, k, &text, &len, &cap);
		if ((k->type == KEY_INT_LIST || k->type == KEY_STR_LIST) && len >= 2) {
			text[len - 1] = '\0';
			memmove(text, text + 1, len - 1);
		}
		ret = set_value(dst, k, text, "", NULL);
		assert(ret == 0 && "a validated value must copy");
		(void)ret;
		free(text);
	}
	for (size_t i = 0; i < N_KEYS && src->origins; i++)
		set_origin(dst, &key_table[i], src->origins[i]);
	free(dst->source_path);
	dst->source_path = xstrdup(src->source_path);
}
