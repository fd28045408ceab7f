/*
 * Two predictors of the same users compared with a paired, campaign-stratified
 * bootstrap (`ltvpipe models compare`, auto-promotion). Pure code on arrays.
 *
 * For each metric (campaign WAPE, normalized Gini, campaign bias — metrics.h)
 * the value of A, of B and d = metric(B) - metric(A) on the users given. Then
 * R resamples: within each campaign of n_g users, n_g users drawn with
 * replacement (so every campaign keeps its size and campaign WAPE stays
 * defined), the same users for A and B (paired), and d* computed on each.
 *   95% interval: the 2.5% and 97.5% percentiles of d* (linear between order
 *   statistics);
 *   p-value (two-sided, for "no difference"):
 *     p = min(1, 2 min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (R + 1)),
 *   i.e. how far 0 sits in the tail of the bootstrap distribution, with the
 *   +1 that keeps a finite R from claiming p = 0. Identical predictions give
 *   d* = 0 everywhere and p = 1.
 * Deterministic for a seed. Lower is better for WAPE, higher for Gini, and
 * bias is better nearer 0 (its d is reported as is; compare |bias| by eye).
 */
#ifndef LTV_PAIRED_BOOTSTRAP_H
#define LTV_PAIRED_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

enum paired_metric { PAIRED_WAPE, PAIRED_GINI, PAIRED_BIAS, PAIRED_N_METRICS };

struct paired_param {
	size_t n_resamples;       /* R, >= 100 */
	uint64_t seed;
	size_t min_campaign_users; /* campaign WAPE and bias keep campaigns with at least this many */
};

struct paired_metric_result {
	double a, b, diff;        /* diff = b - a */
	double lo, hi;            /* 95% bootstrap interval of diff */
	double p;                 /* two-sided p-value of diff = 0 */
	size_t n_resamples_used;  /* resamples where both metrics were defined */
};

struct paired_result {
	size_t n;                 /* users compared */
	size_t n_campaigns;       /* campaigns with users */
	struct paired_metric_result m[PAIRED_N_METRICS];
};

/* NULL when p is usable, else why not. */
const char *paired_param_check(const struct paired_param *p);

/*
 * actual, pred_a, pred_b and campaign are n long (campaign[i] < n_campaigns);
 * no NaN allowed (the caller compares users both predicted). LTV_EINVAL when
 * n is 0, a value is NaN or negative, or a campaign id is out of range.
 */
int paired_bootstrap(const double *actual, const double *pred_a, const double *pred_b,
		     const size_t *campaign, size_t n, size_t n_campaigns,
		     const struct paired_param *param, struct paired_result *out,
		     struct ltv_err *err);

const char *paired_metric_name(enum paired_metric m);

/*
 * How sure is it that B's campaign errors are below A's? For choosing a
 * method (select), where users are many rows each and only campaign totals
 * matter. resid_a[u] and resid_b[u] are user u's prediction minus actual,
 * summed over the user's rows; users are grouped by campaign, campaign g
 * holding users group_start[g] .. group_start[g + 1] - 1. Each resample
 * draws, within every campaign, as many users as it has with replacement
 * (the same users for A and B), and B wins it when
 * sum_g |sum resid_b| < sum_g |sum resid_a|. Returns the share of the
 * n_resamples resamples B wins (0 when there is no user): 0.95 or more is a
 * one-sided test of "B is no better" at 5%. Deterministic for a seed.
 */
double paired_bootstrap_win_share(const double *resid_a, const double *resid_b,
				  const size_t *group_start, size_t n_groups, size_t n_resamples,
				  uint64_t seed);
/*
 * Whether paired_bootstrap_win_share(...) >= min_share, the same verdict,
 * drawing only until it is settled: once B has lost too many resamples to
 * reach min_share (or won enough), the rest cannot change it. Most of
 * select's tests are settled within the first tenth of their resamples.
 * With n_threads > 1 and many users, the resamples are drawn on that many
 * threads, each from the seed's one stream jumped ahead to its own
 * resamples (rng_jump): the verdict is the same whatever n_threads.
 */
int paired_bootstrap_wins(const double *resid_a, const double *resid_b, const size_t *group_start,
			  size_t n_groups, size_t n_resamples, uint64_t seed, double min_share,
			  int n_threads);

#endif
