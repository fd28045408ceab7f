/*
 * The configuration: plain structs filled from config/ltvpipe.yaml (libyaml)
 * and --set overrides. Every key is declared once in a table in config.c with
 * its type, range and default; YAML values, defaults and --set all pass through
 * the same checked setter, so an error always names file:line:column and the
 * key path. Each stage's section has a canonical text form for fingerprints.
 */
#ifndef LTV_CONFIG_H
#define LTV_CONFIG_H

#include <stdint.h>
#include <stddef.h>

#include "ltv/common.h"

struct int_list {
	int64_t *v;
	size_t n;
};

struct str_list {
	char **v;
	size_t n;
};

struct config {
	char *source_path; /* the YAML file read, or "(defaults)" */
	/*
	 * Where each key got its value, by key-table index: "FILE:LINE:COL: ",
	 * "--set " or NULL for a default; for the messages of config_validate.
	 */
	char **origins;

	struct {
		char *users;  /* path or glob pattern; files matched in sorted order */
		char *events;
		char *delimiter; /* ",", ";" or "\t" ("tab" in the file); see config_delimiter */
	} input;
	struct {
		char *user_id, *app_id, *campaign, *install_time, *cost;
		char *event_user_id, *event_time, *revenue, *event;
		struct str_list attributes; /* extra users.csv columns kept per user */
		char *time_format; /* "iso8601", "unix_s" or "unix_ms", for both time columns */
	} columns;
	struct {
		char *path;
		int64_t busy_timeout_s;
	} registry;
	struct {
		int64_t jobs; /* 0 = number of cores */
		int64_t memory_mb; /* 0 = no limit; see stage_run_tasks */
		char *log_dir;
		char *log_level;
	} run;
	struct {
		char *mode;            /* "append" or "replace" */
		double max_reject_rate;
		char *rejects_dir;
		char *timezone;         /* zone of times written without one; "" = such times are errors */
		char *negative_revenue; /* "reject" or "subtract" (refunds lower the day's revenue) */
	} ingest;
	struct {
		struct int_list snapshots; /* ages (days) a training row describes, increasing */
		struct int_list horizons;
		int64_t target_horizon;
		int64_t validation_days;
		double encoding_smoothing;
	} features;
	struct {
		int64_t tier1_min_users, tier1_min_payers;
		int64_t tier2_min_users, tier2_min_payers;
	} tiers;
	struct gbt_section {
		struct str_list features; /* frame columns the model reads */
		int64_t max_depth;
		double eta;
		int64_t n_rounds;
		int64_t early_stopping_rounds;
		double min_child_weight;
		double subsample;
		double colsample_bytree;
		double lambda;
		int64_t max_bin;        /* histogram bins per feature (XGBoost's max_bin) */
		int64_t max_train_rows; /* hurdle only; 0: all, else a hash-chosen reweighted sample */
		int64_t max_zero_rows;  /* hurdle only; 0: all, else zero-revenue users sampled by uid */
		int64_t min_tier_users; /* fewer training users: the tier uses the pooled model */
		int64_t attribute_features; /* 1: columns.attributes' encodings join features */
		int64_t smear_by_age;   /* 1: the revenue's smearing factor per snapshot age (age_means.h) */
	} hurdle, multiplier;
	struct {
		double shrinkage_users;
		int64_t min_cohort_users;
	} curves;
	struct {
		struct str_list features;
		int64_t k;
		int64_t max_iter;
		int64_t seed;
		int64_t mean_by_age; /* 1: each cluster's mean future per snapshot age (age_means.h) */
	} lookalike;
	struct {
		int64_t top_k;
		int64_t char_ngrams;
		int64_t mean_by_age; /* 1: each campaign's mean future per snapshot age (age_means.h) */
	} semantic;
	struct {
		int64_t min_app_users; /* training users an app needs for a fit of its own */
		int64_t fit_users;     /* 0: training users; 1: every user without a validation label (btyd_stage.c) */
		int64_t serve_fit;     /* serve a refit: 1 on every user a day old at as_of, 2 on every user mature at the target (btyd_stage.c) */
	} btyd;
	struct {
		int64_t min_validation_users; /* a campaign needs this many to pick its own method */
		int64_t held_out_ages;        /* 1: judge on held-out rows at served ages (held_out.h) */
		int64_t rank_share;           /* 1: chosen method's level, best ranker's order (rank_share.h) where no worse on validation totals; 2: always; 3: unless significantly worse (paired bootstrap) */
		int64_t rank_cells;           /* 1: a cohort-age cell curves serves without a stored ratio is ordered by the share's ranker after calibration, its total kept (predictor_predict_raw_cells) */
		int64_t unlabelled;           /* a horizon without labels: 1 bgnbd, 2 the BTYD fit with the higher log-likelihood, 0 the target's choices (select.c choose_unlabelled) */
		int64_t horizon_step;         /* 1: a longer horizon = the shorter one served + its own methods' revenue between them (serving.c step_between); 0: the larger of the two */
	} select;
	struct {
		double alpha_min, alpha_max;
		int64_t folds;
		int64_t min_users;            /* fewer validation users: no calibration (identity) */
		int64_t held_out_ages;        /* 1: fit and check on held-out rows at served ages */
		int64_t bootstrap_band;       /* 1: campaign band with bootstrap noise (conformal.h) */
		int64_t floor_share;          /* 1: fit the floor's share between horizons (calibrate.c fit_floor_shares) */
	} calibrate;
	struct {
		int64_t auto_promote;         /* 1: a better candidate replaces production */
		int64_t compare_resamples;    /* paired bootstrap resamples */
		int64_t compare_min_campaign_users; /* campaigns in campaign WAPE need this many users */
	} models;
	struct {
		int64_t window_days;          /* the recent installs monitored */
		int64_t reference_windows;    /* windows before the version's as_of in the reference */
		int64_t bins;                 /* PSI quantile bins of the reference */
		double psi_warn, psi_alert;   /* PSI levels, warn < alert */
		double calibration_warn;      /* |campaign-total bias| that warns */
		int64_t calibration_min_users; /* fewer matured users: calibration not judged */
		int64_t calibration_weeks;    /* install weeks after as_of judged per horizon (latest) */
	} monitor;
	struct {
		char *bind;                   /* a loopback address: serve never listens beyond the host */
		int64_t port;
		int64_t threads;              /* request threads (libmicrohttpd's pool) */
		char *model;                  /* version number or alias served */
		int64_t watch_ms;             /* alias poll period; 0: never reload */
		int64_t max_batch;            /* users per /v1/predict/batch */
		int64_t max_body_bytes;
		int64_t json_max_depth;
		int64_t max_connections;
		int64_t connection_timeout_s; /* idle connection closed after */
		int64_t request_timeout_s;    /* a request's body must arrive within */
		char *token;                  /* bearer token for alias moves; "" refuses them */
		int64_t log_sample;           /* log 1 in N answered requests (errors always); 0: none */
	} serve;
};

/* Fills cfg with every default. Caller releases with config_release. */
void config_init_defaults(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Reads a YAML file over the defaults. Unknown keys, wrong types and
 * out-of-range values fail with LTV_ECONFIG and "FILE:LINE:COL: key.path: ...".
 */
int config_load_file(struct config *cfg, const char *path, struct ltv_err *err);

/* Applies one "key.path=value" override (from --set); LTV_ECONFIG on a bad one. */
int config_apply_override(struct config *cfg, const char *assignment, struct ltv_err *err);

/*
 * Applies the "key=value" lines of an artefact's canonical config text (as
 * config_section_canonical wrote them) so a model is used with the settings
 * it was trained with. Lines that are not config keys (as_of=, input_file=)
 * are skipped.
 */
int config_apply_canonical(struct config *cfg, const char *text, struct ltv_err *err);

/* Makes dst (uninitialised) an independent copy of src. Caller releases dst. */
void config_copy(struct config *dst, const struct config *src);

/* Checks constraints between keys (target horizon among horizons, ...). */
int config_validate(const struct config *cfg, struct ltv_err *err);

/* Longest attribute name (columns.attributes) and its feature names. */
#define ATTR_NAME_MAX 100
#define ATTR_FEATURE_MAX 128
/* The two model features of an attribute: attr_<a>_ltv_te and attr_<a>_payer_te. */
void config_attribute_features(const char *attribute, char ltv[ATTR_FEATURE_MAX],
			       char payer[ATTR_FEATURE_MAX]);
/*
 * The features a GBT model reads (sec: cfg's hurdle or multiplier): its
 * listed features then, when its attribute_features is 1, each attribute's
 * two encodings not listed already. The key sits in the model's own section
 * so that it is part of that stage's fingerprint. *out is the caller's
 * (config_str_list_free).
 */
void config_model_features(const struct config *cfg, const struct gbt_section *sec,
			   struct str_list *out);
void config_str_list_free(struct str_list *l);

/*
 * Canonical text of one top-level section ("features"): "key=value\n" lines in
 * table order, doubles as %.17g. Stable across runs and YAML formatting, so it
 * can be hashed into a fingerprint. Caller frees.
 */
char *config_section_canonical(const struct config *cfg, const char *section);

/* The whole configuration as YAML-ish text, for `ltvpipe run --dry-run` and the registry. */
char *config_dump(const struct config *cfg);

/* The linked libyaml's version, for --version. */
const char *config_yaml_version(void);

/* The field delimiter input.delimiter names: ',', ';' or '\t'. */
char config_delimiter(const struct config *cfg);

/* Number of worker threads: run.jobs, or the number of online cores when 0. */
int config_jobs(const struct config *cfg);

#endif
