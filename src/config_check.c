/*
 * Checking a loaded configuration as a whole (config_validate): the keys that
 * depend on each other, the model's feature lists (no feature that leaks the
 * outcome, none unknown, attributes declared), snapshots and the input
 * files' options. Each message names where the offending value came from.
 */
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "ltv/log.h"
#include "ltv/tzone.h"

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
				       config_origin_of(cfg, key, buf, sizeof(buf)), key, l->v[i]);
	for (size_t i = 0; i < l->n; i++)
		if (leaky_feature(l->v[i]))
			return err_set(err, LTV_ECONFIG,
				       "%s%s: '%s' would leak the outcome into the model (labels, "
				       "revenue to date, split and age are not features); remove it",
				       config_origin_of(cfg, key, buf, sizeof(buf)), key, l->v[i]);
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
	const char *where = config_origin_of(cfg, "features.snapshots", buf, sizeof(buf));

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
			       "tab; write \",\", \";\" or tab", config_origin_of(cfg, "input.delimiter", buf,
			       sizeof(buf)), cfg->input.delimiter);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		known |= strcmp(cfg->columns.time_format, formats[i]) == 0;
	if (!known)
		return err_set(err, LTV_ECONFIG, "%scolumns.time_format: '%s' is not one of iso8601, "
			       "unix_s (seconds since 1970), unix_ms (milliseconds since 1970)",
			       config_origin_of(cfg, "columns.time_format", buf, sizeof(buf)),
			       cfg->columns.time_format);
	if (strcmp(cfg->ingest.negative_revenue, "reject") != 0 &&
	    strcmp(cfg->ingest.negative_revenue, "subtract") != 0)
		return err_set(err, LTV_ECONFIG, "%singest.negative_revenue: '%s' is not 'reject' or "
			       "'subtract'", config_origin_of(cfg, "ingest.negative_revenue", buf, sizeof(buf)),
			       cfg->ingest.negative_revenue);
	if (!*cfg->ingest.timezone)
		return 0;
	tz = tzone_open(cfg->ingest.timezone, err);
	if (!tz) {
		char msg[LTV_ERR_MAX];

		memcpy(msg, err->msg, sizeof(msg));
		return err_set(err, LTV_ECONFIG, "%s%s", config_origin_of(cfg, "ingest.timezone", buf,
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
				       config_origin_of(cfg, "columns.attributes", buf0, sizeof(buf0)),
				       cfg->columns.attributes.v[k], ATTR_NAME_MAX);
		for (size_t j = 0; j < k; j++)
			if (strcmp(cfg->columns.attributes.v[j], cfg->columns.attributes.v[k]) == 0)
				return err_set(err, LTV_ECONFIG, "%scolumns.attributes: '%s' is listed twice; "
					       "list each column once",
					       config_origin_of(cfg, "columns.attributes", buf0, sizeof(buf0)),
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
			       config_origin_of(cfg, "features.horizons", buf, sizeof(buf)));
	if (cfg->calibrate.alpha_min > cfg->calibrate.alpha_max)
		return err_set(err, LTV_ECONFIG, "%scalibrate.alpha_min: %g is above calibrate.alpha_max %g",
			       config_origin_of(cfg, "calibrate.alpha_min", buf, sizeof(buf)),
			       cfg->calibrate.alpha_min, cfg->calibrate.alpha_max);
	if (cfg->semantic.char_ngrams == 1)
		return err_set(err, LTV_ECONFIG,
			       "%ssemantic.char_ngrams: 1 is not allowed; use 0 (words only) or 2 to 8",
			       config_origin_of(cfg, "semantic.char_ngrams", buf, sizeof(buf)));
	for (size_t i = 0; i < h->n; i++) {
		if (i > 0 && h->v[i] <= h->v[i - 1])
			return err_set(err, LTV_ECONFIG,
				       "%sfeatures.horizons: list horizons in increasing order without repeats",
				       config_origin_of(cfg, "features.horizons", buf, sizeof(buf)));
		if (h->v[i] == cfg->features.target_horizon)
			found = 1;
	}
	if (!found)
		return err_set(err, LTV_ECONFIG,
			       "%sfeatures.target_horizon: %lld is not one of features.horizons",
			       config_origin_of(cfg, "features.target_horizon", buf, sizeof(buf)),
			       (long long)cfg->features.target_horizon);
	ret = check_snapshots(cfg, err);
	if (ret < 0)
		return ret;
	if (strcmp(cfg->ingest.mode, "append") != 0 && strcmp(cfg->ingest.mode, "replace") != 0)
		return err_set(err, LTV_ECONFIG, "%singest.mode: '%s' is not 'append' or 'replace'",
			       config_origin_of(cfg, "ingest.mode", buf, sizeof(buf)), cfg->ingest.mode);
	ret = check_input_options(cfg, err);
	if (ret < 0)
		return ret;
	if (cfg->tiers.tier2_min_users > cfg->tiers.tier1_min_users)
		return err_set(err, LTV_ECONFIG,
			       "%stiers.tier2_min_users: %lld is above tiers.tier1_min_users %lld; tier 2 "
			       "needs fewer users than tier 1",
			       config_origin_of(cfg, "tiers.tier2_min_users", buf, sizeof(buf)),
			       (long long)cfg->tiers.tier2_min_users, (long long)cfg->tiers.tier1_min_users);
	if (cfg->monitor.psi_warn >= cfg->monitor.psi_alert)
		return err_set(err, LTV_ECONFIG,
			       "%s: monitor.psi_warn: %g is not below monitor.psi_alert %g; the warn "
			       "level must come first (e.g. 0.1 and 0.25)", cfg->source_path,
			       cfg->monitor.psi_warn, cfg->monitor.psi_alert);
	if (log_level_parse(cfg->run.log_level, &level) < 0)
		return err_set(err, LTV_ECONFIG,
			       "%srun.log_level: '%s' is not one of error, warn, info, debug",
			       config_origin_of(cfg, "run.log_level", buf, sizeof(buf)), cfg->run.log_level);
	return 0;
}
