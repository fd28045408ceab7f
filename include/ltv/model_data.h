/*
 * What every model stage starts from: the features frame of its input
 * artefact (plus each row's tier when it reads tiers), the app and campaign
 * dictionaries, and time-honest train/validation row sets per horizon.
 *
 * Rows are (user, snapshot age) pairs (DESIGN.md "Time, windows and labels"):
 * window_days is the age a row describes, weight its sampling weight, so sums
 * and means over rows are weighted. For a horizon H, only rows of users mature
 * at H (age_days >= H) and of an age below H (window_days < H) take part.
 * Among them, validation is the most recent validation_days of installs
 * (install_time > as_of - (H + validation_days) days) and training is
 * everything older — never a random split (feature_params_split, the one
 * rule). At the target horizon this is exactly the features stage's split
 * column. The parameters (snapshots, horizons, target, validation_days) are
 * the features artefact's own (include/ltv/feature_params.h).
 */
#ifndef LTV_MODEL_DATA_H
#define LTV_MODEL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/config.h"
#include "ltv/feature_params.h"
#include "ltv/frame.h"
#include "ltv/registry.h"

struct model_data {
	struct frame frame;     /* every features column, one row per user; read-only */
	int shared_frame;       /* frame is the process's shared copy (model_data_load) */
	double *tier;           /* per row: 1, 2 or 3; NULL unless loaded with tiers */
	char **apps;            /* app_code → app id */
	size_t n_apps;
	char **campaigns;       /* campaign_code → campaign name */
	size_t n_campaigns;
	int64_t as_of;                 /* the data's: the features artefact's, or the scoring as_of */
	struct feature_params params;  /* the features artefact's (a model's: its own); owned */
	/*
	 * The columns read per row by model_data_cohort and model_data_weight,
	 * looked up once by model_data_load (a name lookup per row was most of
	 * tiers' time), as stored (the shared frame keeps them as floats).
	 * Not found: looked up by name on each call.
	 */
	struct frame_col app_code, campaign_code, weight;
	/*
	 * NULL, or per row the request it belongs to (the caller's array): the
	 * server predicts concurrent single requests together, and a method that
	 * learns from the rows predicted with it (curves level a cohort from its
	 * users' revenue) must then use only the rows of the same request, so an
	 * answer never depends on its batch-mates.
	 */
	const uint32_t *group;
};

/*
 * Loads the features artefact with its parameters and, unless tiers is NULL,
 * the tiers artefact of the same users. Caller releases. (A stage loads from its declared
 * inputs with model_data_load, include/ltv/stage_io.h.) The frame is shared
 * with every other model_data of the process loading the same artefact (one
 * copy in memory, read once): never write to it.
 */
int model_data_load_artefacts(struct registry *reg, const struct artefact_info *features,
			      const struct artefact_info *tiers, struct model_data *out,
			      struct ltv_err *err);
void model_data_release(struct model_data *d);
/*
 * Hands *f, the frame just saved as features artefact artefact_id (content
 * hash content_hash) of the registry at registry_path, to the shared frame
 * that model_data_load_artefacts serves, so that the stages after features
 * do not read back what features had in memory (at 1,000,000 users, reading
 * it was all of tiers' 2.5 s). Takes f over (frees it when the shared frame
 * is in use by another artefact); *f is left empty.
 */
void model_data_offer_frame(const char *registry_path, int64_t artefact_id,
			    const char *content_hash, struct frame *f);
/*
 * Bytes of the features frame the model stages share now (0 when none is
 * loaded): what the runner counts a model stage's own working set as under
 * run.memory_mb (most stages copy a part of it into their matrices).
 */
size_t model_data_shared_frame_bytes(void);

/* The sampling weight of a row (1 when the frame has no weight column). */
double model_data_weight(const struct model_data *d, size_t row);
/*
 * How many times model_data_expand_by_weight repeats a row: its weight
 * rounded, 0 when negative. For a caller that walks the distinct rows
 * (model_data_split_weighted) and repeats each one's sums itself.
 */
size_t model_data_repeats(const struct model_data *d, size_t row);
/*
 * Repeats each of the n rows of *rows (an array the caller owns, replaced in
 * place) as many times as its weight: features give whole-number weights, so
 * unweighted metrics over the result are exactly the weighted ones.
 */
void model_data_expand_by_weight(const struct model_data *d, size_t **rows, size_t *n);
/* Longest label name label_name writes, with its NUL. */
#define LABEL_NAME_MAX 32
/*
 * The one place the label column of a horizon is named: "ltv_<H>" (features
 * write it, models, evaluate and predict read it).
 */
void label_name(int64_t horizon, char *out, size_t size);
/* The frame column ltv_<H>, or NULL when H is not one of the features' horizons. */
const double *model_data_label(const struct model_data *d, int64_t horizon);

struct row_split {
	size_t *train;
	size_t n_train;
	size_t *valid;
	size_t n_valid;
};

/*
 * Rows mature at horizon, split by install date (see above). When tier > 0,
 * only rows of that tier. Each row is repeated as many times as its weight
 * (model_data_expand_by_weight), so plain sums and means over the result are
 * user sums and means. Caller releases.
 */
void model_data_split(const struct model_data *d, int64_t horizon, int tier,
		      struct row_split *out);
/*
 * model_data_split's validation rows alone (out->train empty): what a stage
 * scores itself on. Each model stage of the wave did this on a whole split,
 * whose training rows at the target horizon (3,155,958 repeated rows at
 * 1,000,000 users, 25 MB of fresh memory) it dropped unread. Caller releases.
 */
void model_data_split_valid(const struct model_data *d, int64_t horizon, int tier,
			    struct row_split *out);
/*
 * The same rows once each, for a caller that applies model_data_weight itself
 * (XGBoost's weights in hurdle: repeating rows would undo the sampling).
 */
void model_data_split_weighted(const struct model_data *d, int64_t horizon, int tier,
			       struct row_split *out);
/*
 * model_data_split_weighted(d, H, tier) from all, the split of every tier at
 * the same H (model_data_split_weighted(d, H, 0)): its rows of that tier, in
 * its order, without another pass over every row of the frame. A caller that
 * splits the pooled rows and then each tier's (multiplier) makes one pass, not
 * four. Caller releases out.
 */
void model_data_split_of_tier(const struct model_data *d, const struct row_split *all, int tier,
			      struct row_split *out);
/*
 * The same split with one row per user (its user_rep row, whatever age that
 * row describes): for models of users rather than of (user, age) rows.
 */
void model_data_split_users(const struct model_data *d, int64_t horizon, int tier,
			    struct row_split *out);
void row_split_release(struct row_split *s);

/*
 * Row-major float matrix of the named columns for the given rows (NaN stays
 * NaN: XGBoost treats it as missing). LTV_ECONFIG names a column the features
 * artefact does not have. Caller frees *out_x.
 */
int model_data_matrix(const struct model_data *d, const struct str_list *columns,
		      const size_t *rows, size_t n_rows, float **out_x, struct ltv_err *err);
/*
 * The same into x (n_rows * columns->n floats, the caller's): a caller that
 * predicts in blocks of rows reuses one small buffer instead of touching a
 * matrix of all its rows (fresh pages are dear: README "Threads and
 * performance").
 */
int model_data_matrix_into(const struct model_data *d, const struct str_list *columns,
			   const size_t *rows, size_t n_rows, float *x, struct ltv_err *err);

/* (app_code, campaign_code) of a row as one dense cohort index: app * n_campaigns + campaign. */
size_t model_data_cohort(const struct model_data *d, size_t row);

/*
 * Row of each uid in a frame of one row per user (a scoring frame): out[uid],
 * -1 where the frame has no row; *out_n is the array's length (max uid + 1).
 * Joins two frames of the same registry built at different cut-offs. Caller frees.
 */
int64_t *model_data_rows_by_uid(const struct model_data *d, size_t *out_n);

#endif
