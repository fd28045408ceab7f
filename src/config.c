/*
 * The configuration's schema and values. Every key lives in one table
 * (key_table) with its type, range and default and an offset into struct
 * config; defaults, YAML scalars (src/config_yaml.c) and --set overrides all
 * go through config_set_value, so there is a single place that parses and
 * range-checks a value, and a single canonical printer used for
 * fingerprints. The checks of a loaded configuration as a whole are in
 * src/config_check.c.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

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

const struct config_key *config_find_key(const char *path)
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

const char *config_type_words(const struct config_key *k)
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
int config_set_list(struct config *cfg, const struct config_key *k, char **items, size_t n,
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
int config_set_list_text(struct config *cfg, const struct config_key *k, const char *text,
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
	ret = config_set_list(cfg, k, items, n, where, err);
out:
	free(items);
	free(copy);
	return ret;
}

int config_set_value(struct config *cfg, const struct config_key *k, const char *text,
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
		return config_set_list_text(cfg, k, text, where, err);
	}
}

void config_str_list_free(struct str_list *l)
{
	free_str_list(l);
}

/* Records where key k got its value (see struct config's origins). */
void config_set_origin(struct config *cfg, const struct config_key *k, const char *where)
{
	size_t i = (size_t)(k - key_table);

	free(cfg->origins[i]);
	cfg->origins[i] = where ? xstrdup(where) : NULL;
}

/*
 * "FILE:LINE:COL: " or "--set " for a key given a value, else "FILE: " (the
 * value is a default, so the whole file is where to add it).
 */
const char *config_origin_of(const struct config *cfg, const char *path, char *buf, size_t size)
{
	const struct config_key *k = config_find_key(path);

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
		int ret = config_set_value(cfg, &key_table[i], key_table[i].defval, "", NULL);

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
		k = config_find_key(line);
		if (!k)
			continue;
		value = eq + 1;
		len = strlen(value);
		/* Lists are printed as "[a, b]"; the setter takes "a, b". */
		if (len >= 2 && value[0] == '[' && value[len - 1] == ']') {
			value[len - 1] = '\0';
			value++;
		}
		ret = config_set_value(cfg, k, value, "model config: ", err);
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
		ret = config_set_value(dst, k, text, "", NULL);
		assert(ret == 0 && "a validated value must copy");
		(void)ret;
		free(text);
	}
	for (size_t i = 0; i < N_KEYS && src->origins; i++)
		config_set_origin(dst, &key_table[i], src->origins[i]);
	free(dst->source_path);
	dst->source_path = xstrdup(src->source_path);
}
