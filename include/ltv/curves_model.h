/*
 * The curves model as it is stored and predicted with (method_curves, the
 * format of its blobs); pipeline/curves.c trains it, and its header comment
 * says how the model predicts. serving/curves_model.c holds the code.
 */
#ifndef LTV_CURVES_MODEL_H
#define LTV_CURVES_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/curve.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/strmap.h"

#define CURVES_MAGIC "LTVCURVS"
#define CURVES_VERSION 2
#define CURVES_BLOB "curves"
#define CURVES_MAX_HORIZONS 32

enum curves_prior { PRIOR_TIER1 = 0, PRIOR_TIER23 = 1, N_PRIORS = 2 };

struct curves_entry {
	char *app;
	char *campaign;
	struct curve curve; /* shrunk to the tier-1 prior */
	uint64_t n_users;   /* training users behind the fit */
};

struct curves_horizon {
	int64_t horizon;
	int has_prior[N_PRIORS];
	struct curve prior[N_PRIORS];
	uint64_t prior_users[N_PRIORS];
	struct curves_entry *entries;
	size_t n_entries;
	struct strmap index; /* "app\x1fcampaign" → entry */
};

/* A trained (or loaded) model: what method_curves' state points to. */
struct curves_state {
	double shrinkage_users;
	struct curves_horizon *h;
	size_t n_h;
};

/* Frees a state and everything it owns; NULL is a no-op. */
void curves_state_free(struct curves_state *s);

/* Builds each horizon's app/campaign index once its entries are set. */
void curves_state_index(struct curves_state *s);

/*
 * Blob "LTVCURVS" version 2: f64 shrinkage_users, u64
 * n_horizons, then per horizon: u64 horizon; per prior (tier 1, tiers 2-3):
 * u32 present, f64 log_a, f64 b, u64 users; u64 n_campaigns; per campaign:
 * str app, str campaign, f64 log_a, f64 b, u64 users.
 */
void curves_save(const struct curves_state *s, uint8_t **out_buf, size_t *out_len);

/* The state a blob of curves_save holds (indexed); LTV_EINVAL on a bad blob. */
int curves_parse(const void *buf, size_t len, struct curves_state **out_state,
		 struct ltv_err *err);

/*
 * out[i] = predicted ltv_H of rows[i] (see pipeline/curves.c's header comment): NaN for every
 * row when H was not trained, and for a row whose cohort has no curve.
 */
int curves_predict(const void *state, const struct model_data *d, const size_t *rows,
		   size_t n, int64_t horizon, double *out_ltv, double *out_p_payer,
		   struct ltv_err *err);

extern const struct method method_curves;

#endif
