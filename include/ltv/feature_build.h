/*
 * Feature building shared by the features stage (training) and the scorer
 * (new cohorts at a later as_of, or files given on the command line). The
 * base features of a row come from the complete days before the age it
 * describes; the
 * app and campaign encodings are learnt on training cohorts by the features
 * stage, stored with its artefact, and re-applied unchanged when scoring, so
 * a scored user sees exactly the encodings the models were trained with.
 */
#ifndef LTV_FEATURE_BUILD_H
#define LTV_FEATURE_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/config.h"
#include "ltv/frame.h"
#include "ltv/registry.h"

/*
 * One users-file attribute (columns.attributes: country, platform, ...): its
 * values among the users installed by as_of and, once the features stage has
 * learnt them, its target encodings. The encoding of value v in app a is the
 * smoothed training mean of ltv_<target> (and of the payer flag) over the
 * app's users with that value, shrunk to the app's own mean like a campaign
 * (features.encoding_smoothing pseudo-users); a value, or an app, no training
 * user had takes the app's (the global) value. A user whose attribute was
 * not stored has the empty string, a value like any other.
 */
struct attr_encoding {
	char *name;            /* the users-file column; owned */
	char **values;         /* sorted; owned */
	size_t n_values;
	double *ltv, *payer;   /* per app * n_values + value; NULL until learnt */
};

/* Frame column names of attribute `name`: its code, and its two encodings. */
#define ATTR_COLUMN_MAX 160
void attr_column_name(const char *name, const char *what, char *buf, size_t size);

/* Encodings learnt on the training cohorts (full training data, no folds). */
struct encodings {
	char **apps;           /* sorted; owned */
	size_t n_apps;
	char **campaigns;      /* sorted; owned */
	size_t n_campaigns;
	double global_ltv, global_payer;
	double *app_ltv, *app_payer;                      /* per app */
	double *cohort_ltv, *cohort_payer, *cohort_log_n; /* per app * n_campaigns + campaign */
	struct attr_encoding *attrs; /* columns.attributes, in config order; owned */
	size_t n_attrs;
};

/* Frees the attributes' names, values and tables, and the array. */
void attr_encodings_release(struct attr_encoding *a, size_t n);

void encodings_release(struct encodings *e);
int encodings_save(const struct encodings *e, struct registry *reg, int64_t artefact_id,
		   struct ltv_err *err);
int encodings_load(struct registry *reg, int64_t artefact_id, struct encodings *out,
		   struct ltv_err *err);
/* Adds the encodings' content to a content hash. */
struct hasher;
void encodings_hash(const struct encodings *e, struct hasher *h);

/* Which rows feature_build_base makes (DESIGN.md "Time, windows and labels"). */
enum feature_rows {
	/*
	 * Training: (user, snapshot age s) for each s of features.snapshots with
	 * s <= the user's age and s < the longest horizon, for users mature at the
	 * first horizon. A user with no revenue before the longest horizon they are
	 * mature at gets one of those rows (chosen by a hash of the user id) with
	 * weight = their number of snapshots; others get every row, weight 1.
	 */
	FEATURE_ROWS_SNAPSHOTS,
	/* Scoring: every user installed by as_of, once, at their age (s = age). */
	FEATURE_ROWS_AT_AGE,
	/*
	 * Held out, for select and calibrate: for each horizon H, each
	 * validation user at H (feature_params_split) at the real ages s < H it
	 * has at the pseudo as_of dates T'_k = as_of - H days + k *
	 * validation_days days (k = 0, 1, ...), each row exactly the row a
	 * scoring frame built at T'_k holds (features and history to date from
	 * days d < s, age_days = s), plus its labels ltv_<H> from as_of and the
	 * columns held_out_h (H) and held_out_k (k). At most
	 * FEATURE_HELD_OUT_MAX_ROWS rows per horizon (users kept by a hash of
	 * their id, with all their rows).
	 */
	FEATURE_ROWS_HELD_OUT,
};

/* Cap on the held-out rows of one horizon (FEATURE_ROWS_HELD_OUT). */
#define FEATURE_HELD_OUT_MAX_ROWS 300000

struct feature_base_stats {
	int64_t users;                 /* installed by as_of */
	int64_t user_days_read;
	int64_t user_days_after_as_of;
	int64_t users_after_as_of;
};

/*
 * The rows `mode` asks for, with their base features and app/campaign codes
 * into the sorted dictionaries *out_apps / *out_campaigns (caller frees with
 * frame_free_dict; the frame is the caller's to release). Columns:
 *   uid, install_time, age_days (whole days complete at as_of),
 *   window_days (the age s the row describes: its features read days d < s),
 *   weight (sampling weight), user_rep (1 on exactly one row per user),
 *   rev_window, rev_d0, rev_max_day, purchases_window, events_window,
 *   events_d0, active_days_window, engagement, first_purchase_day,
 *   purchase_days (days with revenue), days_since_purchase and
 *   days_since_active (from the last such day to day s - 1; NaN / s when
 *   none), rev_per_purchase_day, rev_last7 and events_last7_share (the last 7
 *   days before s), cost, and the user's history at as_of, the same on each
 *   of its rows and never a feature: rev_to_date (every complete day),
 *   repeat_days_to_date and last_repeat_day_to_date (paying days d >= 1 and
 *   the last of them, 0 when none: BTYD's x and t_x),
 *   ltv_<H> (revenue of days d < H for users mature at H, else NaN),
 *   app_code, campaign_code.
 */
int feature_build_base(struct registry *reg, const struct config *cfg, int64_t as_of,
		       enum feature_rows mode, struct frame *out, char ***out_apps,
		       size_t *out_n_apps, char ***out_campaigns, size_t *out_n_campaigns,
		       struct feature_base_stats *out_stats, struct ltv_err *err);

/*
 * feature_build_base for the users of the (app, campaign) cohorts of one
 * score shard (shard_keeps_cohort; NULL or count 0: every user), the others
 * read as never installed: `score --shard`. LTV_ENOTFOUND when the shard holds
 * no cohort with a user installed by as_of.
 */
struct shard_spec;
int feature_build_base_cohorts(struct registry *reg, const struct config *cfg, int64_t as_of,
			       enum feature_rows mode, const struct shard_spec *cohorts,
			       struct frame *out, char ***out_apps, size_t *out_n_apps,
			       char ***out_campaigns, size_t *out_n_campaigns,
			       struct feature_base_stats *out_stats, struct ltv_err *err);

/*
 * feature_build_base_cohorts plus the attributes of columns.attributes: a
 * column attr_<name>_code per attribute, the row's code into
 * (*out_attrs)[k].values (names and values only; the caller frees them with
 * attr_encodings_release). With no attribute configured, *out_n_attrs = 0
 * and the frame is feature_build_base_cohorts's, byte for byte.
 */
int feature_build_base_attrs(struct registry *reg, const struct config *cfg, int64_t as_of,
			     enum feature_rows mode, const struct shard_spec *cohorts,
			     struct frame *out, char ***out_apps, size_t *out_n_apps,
			     char ***out_campaigns, size_t *out_n_campaigns,
			     struct attr_encoding **out_attrs, size_t *out_n_attrs,
			     struct feature_base_stats *out_stats, struct ltv_err *err);

/*
 * feature_build_base_attrs from a registry or from memory
 * (include/ltv/data_source.h). With FEATURE_ROWS_AT_AGE, rows only for the
 * users younger than younger_than days at as_of (INT64_MAX: every user);
 * the others' days are not even kept, though their apps and campaigns stay in
 * the dictionaries. Scoring asks for the users younger than the longest
 * horizon, which are the only ones it predicts: a million-user file is mostly
 * users whose value is observed.
 */
struct data_source;
int feature_build_base_from(const struct data_source *src, const struct config *cfg,
			    int64_t as_of, enum feature_rows mode, const struct shard_spec *cohorts,
			    int64_t younger_than,
			    struct frame *out, char ***out_apps, size_t *out_n_apps,
			    char ***out_campaigns, size_t *out_n_campaigns,
			    struct attr_encoding **out_attrs, size_t *out_n_attrs,
			    struct feature_base_stats *out_stats, struct ltv_err *err);

/*
 * Re-codes a base frame's app_code/campaign_code from its own dictionaries to
 * the encodings' (names unseen in training are appended to copies of the
 * encodings' dictionaries, returned in *out_apps / *out_campaigns), and adds
 * the encoding columns: unseen campaigns take their app's value, unseen apps
 * the global one.
 */
int feature_apply_encodings(const struct encodings *e, struct frame *f,
			    char *const *base_apps, size_t n_base_apps,
			    char *const *base_campaigns, size_t n_base_campaigns,
			    char ***out_apps, size_t *out_n_apps,
			    char ***out_campaigns, size_t *out_n_campaigns);

/*
 * Adds the columns attr_<name>_ltv_te and attr_<name>_payer_te of each of the
 * encodings' attributes, from the frame's attr_<name>_code (an index into the
 * base attribute of that name; a code past its values, or no such base
 * attribute or column, is an unknown value). Call it after
 * feature_apply_encodings (it reads the re-coded app_code). A value no
 * training user had takes its app's encoding, an app unseen in training the
 * global one: the values a value with no training user gets from the
 * smoothing formula.
 */
void feature_apply_attr_encodings(const struct encodings *e, struct frame *f,
				  const struct attr_encoding *base, size_t n_base);

#endif
