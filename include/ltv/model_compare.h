/*
 * Two model versions compared on the same users (`ltvpipe models compare`,
 * and auto-promotion in the calibrate stage).
 *
 * Which users: those installed at or after T0 = the later of the two
 * versions' as_of — so neither version read a single day of them, let alone
 * trained on them — whose ltv_H is complete at the comparison's as_of T. They
 * are scored as the daily `score` run of day S = T - H would have served them:
 * from their days before S, at the age they had then, by serving_predict with
 * each version; so every user installed in [max(T0, S - H), S) takes part
 * (younger than H at S, so neither version merely reports an observed value),
 * and their actual ltv_H is complete at install + H < S + H = T. Nothing after
 * S is read for predictions; the data after S are read for the outcomes only.
 * The stricter alternative — users in neither version's training cohorts,
 * i.e. installed after T0 - H — would include users whose early days one
 * version was fitted on at shorter horizons, so it is not used.
 *
 * Metrics and significance: src/models/paired_bootstrap.c with campaigns as
 * the (app, campaign) pairs, models.compare_resamples resamples (default
 * 1000) and the fixed seed COMPARE_SEED, so a comparison is reproducible.
 * The decision rule auto-promotion uses: B (the candidate) replaces A
 * (production) when its campaign WAPE is lower with p < COMPARE_ALPHA.
 */
#ifndef LTV_MODEL_COMPARE_H
#define LTV_MODEL_COMPARE_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/config.h"
#include "ltv/paired_bootstrap.h"
#include "ltv/registry.h"

#define COMPARE_SEED 20251201
#define COMPARE_ALPHA 0.05

struct compare_result {
	int64_t version_a, version_b;
	int64_t as_of_a, as_of_b;  /* each version's training as_of */
	int64_t as_of;             /* T: outcomes complete here */
	int64_t scored_at;         /* S = T - H */
	int64_t first_install;     /* users installed in [first_install, S) */
	int64_t horizon;
	size_t n_resamples;
	struct paired_result pr;   /* a = version_a, b = version_b */
};

/*
 * Compares versions a and b of reg on the users above at horizon (0: a's
 * target horizon) with outcomes at as_of (INT64_MIN: the latest event).
 * LTV_EUSAGE, with the date from which it would work, when no user is
 * eligible yet (the horizon is not complete for anyone installed after both
 * versions' as_of) or as_of is after the latest event; LTV_ENOTFOUND for an
 * unknown version; LTV_EUSAGE for a horizon one version does not predict.
 * Reads only: safe inside a caller's transaction.
 */
int compare_versions(struct registry *reg, const struct config *cfg, int64_t a, int64_t b,
		     int64_t as_of, int64_t horizon, struct compare_result *out, struct ltv_err *err);

/* B beats A: lower campaign WAPE with p < COMPARE_ALPHA. */
int compare_b_is_better(const struct compare_result *r);

/* One line with the users, both WAPEs, the difference, its interval and p (for alias_history). */
void compare_summary(const struct compare_result *r, char *buf, size_t size);

struct compare_options {
	const char *a, *b;  /* model versions: numbers or aliases */
	int64_t as_of;      /* INT64_MIN: the latest event */
	int64_t horizon;    /* 0: A's target horizon */
	int json;           /* print compare_json instead of the text */
};

/* `ltvpipe models compare A B` on reg (open for reading), printed to out (cli/models_compare.c). */
int models_compare(const struct config *cfg, struct registry *reg, const struct compare_options *opts,
		   FILE *out, struct ltv_err *err);

/*
 * After `ltvpipe run`: when the run made a model version, says which alias it
 * got and how it compares with production (the paired comparison when users
 * for it exist, else why not and both versions' validation WAPE, measured on
 * different users). Best effort: a failure is printed, never returned.
 */
void models_say_after_run(struct registry *reg, const struct config *cfg, const char *run_id,
			  FILE *out);

/*
 * For `ltvpipe status`: production and candidate, each with its as_of, its
 * validation WAPE and its latest monitor report.
 */
void models_say_status(struct registry *reg, FILE *out);

#endif
