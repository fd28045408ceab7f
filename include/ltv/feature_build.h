/*
 * Feature building shared by the features stage (training) and the scorer
 * (new cohorts at a later as_of, or files given on the command line). The
 * base features come from complete days in the observation window only; the
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

/* Encodings learnt on the training cohorts (full training data, no folds). */
struct encodings {
	char **apps;           /* sorted; owned */
	size_t n_apps;
	char **campaigns;      /* sorted; owned */
	size_t n_campaigns;
	double global_ltv, global_payer;
	double *app_ltv, *app_payer;                      /* per app */
	double *cohort_ltv, *cohort_payer, *cohort_log_n; /* per app * n_campaigns + campaign */
};

void encodings_release(struct encodings *e);
int encodings_save(const struct encodings *e, struct registry *reg, int64_t artefact_id,
		   struct ltv_err *err);
int encodings_load(struct registry *reg, int64_t artefact_id, struct encodings *out,
		   struct ltv_err *err);
/* Adds the encodings' content to a content hash. */
struct hasher;
void encodings_hash(const struct encodings *e, struct hasher *h);

/*
 * The users of reg installed on or before as_of, with their base features
 * (uid, install_time, age_days, window_days, rev_*, purchases_window, ...,
 * cost, ltv_<H> for mature users) and app/campaign codes into the sorted
 * dictionaries *out_apps / *out_campaigns (caller frees with frame_free_dict).
 */
struct feature_base_stats {
	int64_t user_days_read;
	int64_t user_days_after_as_of;
	int64_t users_after_as_of;
};
int feature_build_base(struct registry *reg, const struct config *cfg, int64_t as_of,
		       struct frame *out, char ***out_apps, size_t *out_n_apps,
		       char ***out_campaigns, size_t *out_n_campaigns,
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

#endif
