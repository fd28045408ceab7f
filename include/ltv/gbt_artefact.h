/*
 * The artefact of a stage whose models are XGBoost boosters (hurdle,
 * multiplier), and what those stages must decide the same way.
 *
 * The artefact's blobs are a "manifest" in the stage's own format beside one
 * blob per booster, keyed "t<tier>:h<H>:<part>", holding its gbt_save buffer.
 * Every manifest opens the same way: magic and version (blob.h), u64
 * n_features and each feature name (str) in matrix column order, u64
 * n_entries, then per entry u32 tier, u64 horizon, u32 has_body (whether the
 * entry's first body exists) and the stage's own fields. Bodies are hashed
 * into the content hash and stored in the order they are added, so the same
 * models always give the same artefact. Beside its blobs the stage reports
 * per model what training chose ("models" in its metrics, keyed
 * "t<tier>_h<H>") and the horizons it had no model for ("skipped_horizons").
 *
 * The rest is shared by their training and their metrics: tier slots (0 is
 * pooled over all tiers, then tiers 1..3), gbt_param from the stage's config
 * section, the rows of one fit, which validation rows early stopping watches,
 * and the validation scores both report.
 */
#ifndef LTV_GBT_ARTEFACT_H
#define LTV_GBT_ARTEFACT_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/blob.h"
#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"

struct cJSON;

#define GBT_ARTEFACT_MANIFEST_KEY "manifest"
/* Size of a body key buffer, terminator included. */
#define GBT_ARTEFACT_KEY_MAX 48
/* Tier slots: 0 is the model pooled over all tiers, then tiers 1..3. */
#define GBT_ARTEFACT_N_TIERS 4
/* Fewer validation rows than this and early stopping follows noise: borrow or go without. */
#define GBT_ARTEFACT_MIN_VALID_ROWS 30
/* XGBoost 1.7's default base_score: where every model starts (labels are shifted to it). */
#define GBT_ARTEFACT_BASE_SCORE 0.5
/* Caps a log-scale prediction before exp() so a wild tree cannot make an infinity. */
#define GBT_ARTEFACT_MAX_LOG_PRED 700.0

/* ---- writing ---- */

struct gbt_artefact_body {
	char key[GBT_ARTEFACT_KEY_MAX];
	uint8_t *data;   /* owned */
	size_t len;
};

/* A stage's output being built: its bodies in order and its training report. */
struct gbt_artefact {
	struct gbt_artefact_body *bodies;
	size_t n_bodies;
	size_t cap_bodies;
	struct cJSON *models;   /* object: "t<tier>_h<H>" → what training chose */
	struct cJSON *skipped;  /* array: horizons without a model */
	/* array: "t<tier>_h<H>" of tiers GBT_ARTEFACT_TIER_NEARLY_POOLED (gbt_artefact_tier_fit) */
	struct cJSON *nearly_pooled;
};

/* An empty artefact with an empty report; release with gbt_artefact_release. */
void gbt_artefact_init(struct gbt_artefact *a);
/* Frees the bodies and the report (unless stored); a is left empty. */
void gbt_artefact_release(struct gbt_artefact *a);

/*
 * A new object for what training chose for the (tier, horizon) model, added
 * to models (a->models, or a stage task's own object) as "t<tier>_h<H>" and
 * owned by it.
 */
struct cJSON *gbt_artefact_add_model_info(struct cJSON *models, int tier, int64_t horizon);

/* The layout of a stage's manifest. */
struct gbt_artefact_manifest {
	const char *magic;    /* 8 bytes */
	uint32_t version;     /* what the stage writes, and the newest it reads */
	size_t entry_bytes;   /* of one entry: bounds a count read from a corrupt blob */
	const char *what;     /* names the blob in messages: "hurdle manifest" */
};

/* Where an entry applies, and whether its first body exists: how every entry opens. */
struct gbt_artefact_entry {
	uint32_t tier;        /* as read: the stage checks it is below GBT_ARTEFACT_N_TIERS */
	int64_t horizon;
	uint32_t has_body;    /* as read: the stage checks it is 0 or 1 */
};

/*
 * A stage's manifest entries: how each one's own fields, after the opening
 * every entry shares, are written and read. gbt_artefact_write_manifest and
 * gbt_artefact_read_manifest walk the manifest for every stage with one.
 */
struct gbt_artefact_codec {
	const struct gbt_artefact_manifest *fmt;
	/*
	 * Entry i's opening; *has_factors set when it has factors by snapshot
	 * age (age_means.h). When none has, the manifest is written as version
	 * 1: the same bytes as before factors by age existed.
	 */
	struct gbt_artefact_entry (*opening)(const void *state, size_t i, int *has_factors);
	/* Writes entry i's own fields as version writes them. */
	void (*put)(struct blob_writer *w, const void *state, size_t i, uint32_t version);
	/* Makes room in state for the n entries read next. */
	void (*reserve)(void *state, size_t n);
	/*
	 * Reads the next entry's own fields after its opening e into state and
	 * checks them: 0, or the error (a failed read is blob_reader_status's).
	 */
	int (*get)(struct blob_reader *r, uint32_t version, const struct gbt_artefact_entry *e,
		   void *state, struct ltv_err *err);
};

/* Adds the body "manifest": header, feature list, then the n entries of state. */
void gbt_artefact_write_manifest(struct gbt_artefact *a, const struct gbt_artefact_codec *c,
				 const struct str_list *features, const void *state, size_t n);
/* Adds m's gbt_save buffer as the body "t<tier>:h<horizon>:<part>"; m stays the caller's. */
int gbt_artefact_add_model(struct gbt_artefact *a, int tier, int64_t horizon, const char *part,
			   const struct gbt_model *m, struct ltv_err *err);
/* The stage stores it with gbt_artefact_store (include/ltv/stage_io.h). */

/* ---- reading ---- */

/*
 * Reads artefact_id's manifest: checks its header against c->fmt, appends
 * its feature names to out_features (empty before; the caller's to free,
 * also on failure), then reserves and reads every entry into state.
 */
int gbt_artefact_read_manifest(struct registry *reg, int64_t artefact_id,
			       const struct gbt_artefact_codec *c, struct str_list *out_features,
			       void *state, struct ltv_err *err);
/*
 * The feature names, in column order, that artefact_id's boosters take (its
 * manifest's list, whichever stage wrote it), appended to out_features (empty
 * before; the caller's to free, also on failure). LTV_ENOTFOUND without a manifest.
 */
int gbt_artefact_feature_names(struct registry *reg, int64_t artefact_id,
			       struct str_list *out_features, struct ltv_err *err);

/*
 * Loads the body "t<tier>:h<horizon>:<part>" of artefact_id to predict with
 * n_threads threads; a body that does not take exactly n_features features
 * is LTV_EINVAL. Messages name the body after stage ("hurdle body
 * 't0:h30:payer': ..."). On success *out_model is the caller's (gbt_free).
 */
int gbt_artefact_load_model(struct registry *reg, int64_t artefact_id, const char *stage,
			    int tier, int64_t horizon, const char *part, int n_threads,
			    size_t n_features, struct gbt_model **out_model, struct ltv_err *err);

/* One body for gbt_artefact_load_models: where it goes and which it is. */
struct gbt_body_load {
	int tier;
	int64_t horizon;
	const char *part;
	struct gbt_model **out_model;
};

/*
 * gbt_artefact_load_model for each of bodies[0..n), side by side on up to
 * n_threads threads (each body's parse is its own; the registry connection
 * serializes the reads): a stage or score reads hurdle's dozen bodies
 * before anything else. Returns 0, or the first failing body's (in order)
 * error; the bodies loaded are the caller's either way.
 */
int gbt_artefact_load_models(struct registry *reg, int64_t artefact_id, const char *stage,
			     const struct gbt_body_load *bodies, size_t n, int n_threads,
			     size_t n_features, struct ltv_err *err);

/* Copies features into out_features (caller releases with gbt_artefact_release_features). */
void gbt_artefact_copy_features(const struct str_list *features, struct str_list *out_features);
/* Frees the names and the array; features is left empty. */
void gbt_artefact_release_features(struct str_list *features);

/* ---- training ---- */

/*
 * A tier whose fit would have at least this share of the pooled model's
 * training rows uses the pooled model: its own would be nearly the same fit
 * again. At 1,000,000 generated users tier 1 holds 99.8% of the
 * multiplier's rows and more than 90% of hurdle's (refitting it was half of
 * hurdle's time).
 */
#define GBT_ARTEFACT_TIER_OWN_MODEL_SHARE 0.9

/* Whether a tier (slot 1..3) fits a model of its own, and why not. */
enum gbt_artefact_tier_fit {
	GBT_ARTEFACT_TIER_OWN,
	GBT_ARTEFACT_TIER_TOO_FEW,       /* fewer than the stage's min_tier_users rows */
	GBT_ARTEFACT_TIER_NEARLY_POOLED  /* GBT_ARTEFACT_TIER_OWN_MODEL_SHARE or more of its rows */
};

/*
 * The one rule every XGBoost stage follows for a tier: its fit would learn
 * from n_fit_rows rows, and it has n_rows training rows where the pooled
 * model has n_pooled_rows (the same count of both, whatever part of them a
 * fit learns from: hurdle's payer rows, multiplier's window payers). It
 * fits its own model when n_fit_rows >= min_rows and n_rows <
 * GBT_ARTEFACT_TIER_OWN_MODEL_SHARE x n_pooled_rows, else the pooled model
 * serves its rows.
 */
enum gbt_artefact_tier_fit gbt_artefact_tier_fit(size_t n_fit_rows, size_t min_rows,
						 size_t n_rows, size_t n_pooled_rows);
/* "own", "pooled: too few rows", "pooled: nearly all its rows"; a static string. */
const char *gbt_artefact_tier_fit_name(enum gbt_artefact_tier_fit fit);
/*
 * Appends "t<tier>_h<H>" to list (an array: a->nearly_pooled, or a stage
 * task's own, gathered in order after) for a tier whose rows the pooled model
 * serves as GBT_ARTEFACT_TIER_NEARLY_POOLED; gbt_artefact_store reports them.
 */
void gbt_artefact_note_nearly_pooled(struct cJSON *list, int tier, int64_t horizon);

/*
 * XGBoost's defaults with objective and n_threads, and every tree setting
 * (depth, eta, rounds, early stopping, sampling, lambda) from sec.
 */
void gbt_artefact_param(const struct gbt_section *sec, const char *objective, int n_threads,
			struct gbt_param *out_param);

/* A row's tier slot: its tier 1..3, or 0 when d carries no tiers or the row no valid one. */
int gbt_artefact_row_tier(const struct model_data *d, size_t row);

/*
 * Prediction routes each row to a model by its tier slot: use[s] is the
 * model slot s predicts with (its own or slot 0's, compared by address).
 * Writes to out_idx the positions i of rows[0..n) whose slot uses use[t], and
 * returns how many; 0 for a slot t > 0 that shares slot 0's model, whose
 * call covers its rows.
 */
size_t gbt_artefact_tier_rows(const struct model_data *d, const size_t *rows, size_t n,
			      const void *const use[GBT_ARTEFACT_N_TIERS], int t,
			      size_t *out_idx);
/*
 * The matrix of rows idx[0..n_sub) of x (n × k, row-major): x itself when
 * n_sub == n, else those rows copied into *sub, which is allocated for n rows
 * on first use and freed by the caller.
 */
const float *gbt_artefact_tier_matrix(const float *x, size_t n, size_t k, const size_t *idx,
				      size_t n_sub, float **sub);

/* Rows of one fit: their feature matrix and the value the stage derives labels from. */
struct gbt_artefact_rows {
	float *x;        /* n × k, row-major; owned */
	double *target;  /* n; owned */
	float *weight;   /* n sampling weights (model_data_weight); owned, may be NULL */
	size_t n;
};

/* Frees x and target; rows is left empty. */
void gbt_artefact_rows_release(struct gbt_artefact_rows *rows);

/*
 * Keeps about max_rows of the n rows (k features each) when there are more,
 * for a classifier of target > 0 whose training cost grows with rows while
 * its accuracy stops growing long before. Positive rows are kept whole while
 * they are at most half of max_rows, else sampled at (max_rows / 2) / their
 * count; the others fill the rest. A row is chosen by a hash of its position
 * (the same rows on every run and thread count), and a kept row's weight is
 * divided by its class's keep rate, so the weighted totals of both classes
 * are kept in expectation (rows->weight is created, at 1, when NULL).
 * Returns the rows kept (rows->n unchanged when n <= max_rows or max_rows is 0).
 */
size_t gbt_artefact_rows_cap(struct gbt_artefact_rows *rows, size_t k, size_t max_rows);

/* The validation rows early stopping watches; the names are what the metrics record. */
enum gbt_artefact_valid { GBT_ARTEFACT_VALID_OWN, GBT_ARTEFACT_VALID_POOLED,
			  GBT_ARTEFACT_VALID_NONE };

/*
 * The model's own validation rows when it has at least
 * GBT_ARTEFACT_MIN_VALID_ROWS, else the pooled model's (pooled may be NULL)
 * when they are enough, else NULL: the model then keeps every round.
 * *out_valid says which.
 */
const struct gbt_artefact_rows *gbt_artefact_pick_valid(const struct gbt_artefact_rows *own,
							const struct gbt_artefact_rows *pooled,
							enum gbt_artefact_valid *out_valid);
/* "own", "pooled" or "none"; a static string. */
const char *gbt_artefact_valid_name(enum gbt_artefact_valid valid);

/* ---- metrics ---- */

/* Validation scores of ltv predictions, as both stages report them; NaN: not computed. */
struct gbt_artefact_scores {
	double rmsle;          /* per user */
	double wape;           /* per user */
	double campaign_wape;  /* of campaign totals, what bids act on */
	double bias;           /* per user, relative */
};

/* A stage's own validation at one horizon: its state's predictions on the validation rows. */
struct gbt_artefact_validation {
	/* pooled, at the horizon: split.valid are the rows (model_data_split_valid: no train) */
	struct row_split split;
	size_t n;                 /* split.n_valid */
	int predicted;            /* 0: no rows, no label or no model; the arrays hold nothing */
	double *actual;           /* n: ltv at the horizon */
	double *pred;             /* n: the method's ltv */
	double *p_payer;          /* n: the method's p(payer), NaN where it has none */
	struct gbt_artefact_scores scores;
};

/*
 * Fills out for the validation rows of d at horizon: when there are rows,
 * d has the label and has_model (the state has a pooled model at horizon),
 * predicts them with method->predict(state) and scores them; cohorts are
 * campaigns (model_data_cohort). Caller releases out, also on failure.
 */
int gbt_artefact_validate(const struct model_data *d, int64_t horizon,
			  const struct method *method, const void *state, int has_model,
			  struct gbt_artefact_validation *out, struct ltv_err *err);
/* Frees the split and the arrays; v is left empty. */
void gbt_artefact_validation_release(struct gbt_artefact_validation *v);

/* Adds "rmsle", "wape", "campaign_wape" and "bias" to metrics, in that order. */
void gbt_artefact_add_scores(struct cJSON *metrics, const struct gbt_artefact_scores *s);
/* Adds v to metrics as name, or null when v is not finite (JSON has no NaN). */
void gbt_artefact_add_metric(struct cJSON *metrics, const char *name, double v);

#endif
