/*
 * One value per snapshot age: the per-age mean corrections and means of the
 * snapshot methods (the multiplier's and the hurdle's smearing factors,
 * lookalike's cluster and semantic's campaign mean futures). A training row
 * describes a user at one age (window_days); what is still to come, and how
 * widely it spreads, falls steeply with that age (a day-1 payer may become a
 * whale, a day-60 payer has mostly stopped), so a value pooled over the rows
 * of every age serves old users the young rows' future. This module owns the
 * rule: rows are grouped by the snapshot interval their age falls in (the
 * largest snapshot at or below it; a row at exactly a snapshot, as the
 * default training rows are, is that snapshot's), each group's value is
 * sum(w × num) / sum(w × den), and a group with less than AGE_MEANS_MIN_ROWS
 * of weight keeps the caller's pooled value, so thin ages fall back rather
 * than swing.
 */
#ifndef LTV_AGE_MEANS_H
#define LTV_AGE_MEANS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/config.h"

/* Snapshot ages with a value of their own: at most the features stage's snapshots. */
#define AGE_MEANS_MAX 32
/* Least row weight at an age for a value of its own (less: the pooled value). */
#define AGE_MEANS_MIN_ROWS 50

struct age_means {
	size_t n;                   /* 0: every age takes the pooled value */
	double age[AGE_MEANS_MAX];  /* increasing snapshot ages (interval starts) */
	double value[AGE_MEANS_MAX];
};

/*
 * Fits out[0..n_groups) in one pass over rows i in [0, n): row i belongs to
 * group group[i] (group NULL: every row to group 0; a negative group: no
 * group) and, at age[i] (NaN or below the first snapshot: skipped), adds
 * w[i] × num[i] and w[i] × den[i] (w NULL: 1; den NULL: 1, a plain mean) to
 * its group's sums at its interval. Every (group, interval) with rows gets an
 * entry; one with less than AGE_MEANS_MIN_ROWS of weight, or a zero
 * denominator, gets the group's pooled[g].
 */
void age_means_fit(const struct int_list *snapshots, const double *age, const double *num,
		   const double *den, const double *w, const int *group, size_t n_groups,
		   size_t n, const double *pooled, struct age_means *out);

/*
 * age_means_fit (den and w NULL) over rows that stand for repeats[i] rows
 * each (model_data_split_weighted's with model_data_repeats): row i's sums
 * are added repeats[i] times in a row, so the fit is the bits of
 * age_means_fit over the repeated rows (model_data_split's) without them
 * (semantic at 1,000,000 users: 3,155,958 repeated rows at 30 days, from at
 * most the frame's 1,133,867 rows).
 */
void age_means_fit_repeated(const struct int_list *snapshots, const double *age,
			    const double *num, const size_t *repeats, const int *group,
			    size_t n_groups, size_t n, const double *pooled, struct age_means *out);
/* The value for a row at age (the entry of the largest age at or below it), else fallback. */
double age_means_at(const struct age_means *m, double age, double fallback);

/*
 * The rule that keeps a snapshot method's revenue still to come monotone
 * across horizons at every age (lookalike's clusters and semantic's campaigns,
 * where their means by age are served): at horizon `horizon`, a row aged `age`
 * gets the largest value over the trained horizons up to `horizon` that the
 * age has not lived, since what is still to come before a shorter horizon is
 * still to come before a longer one. Two horizons' means by age need not have
 * the same ages (an age with too few rows keeps the pooled value), so this is
 * taken where the values are served, not when fitting.
 *
 * The caller's horizons are j in [0, n): horizon(ctx, j) is horizon j's length
 * in days, negative when it was not trained; value(ctx, j, age) its value at
 * age, NaN when it has none (a NaN value is never the largest). An age lives a
 * horizon when age >= its length; with AGE_MEANS_OWN_HORIZON_ALWAYS the asked
 * horizon itself counts whatever the age (semantic: a row past it is served
 * its value; lookalike: nothing, as nothing is still to come). A NaN age has
 * lived none. Returns NaN when no horizon counts.
 */
enum { AGE_MEANS_OWN_HORIZON_ALWAYS = 1 };
struct age_means_horizons {
	size_t n;
	int64_t (*horizon)(const void *ctx, size_t j);
	double (*value)(const void *ctx, size_t j, double age);
	const void *ctx;
};
double age_means_monotone(const struct age_means_horizons *hs, int64_t horizon, double age,
			  unsigned flags);

/* u32 count, then per entry f64 age, f64 value. */
void age_means_put(struct blob_writer *w, const struct age_means *m);
/*
 * Reads what age_means_put wrote; -1 (r marked failed) when the count is
 * above AGE_MEANS_MAX or an age or value is not finite or ages do not increase.
 */
int age_means_get(struct blob_reader *r, struct age_means *m);

/*
 * A smearing factor's reading (the hurdle's and the multiplier's manifests):
 * from version 2 on, the factors by age after *smear; *smear becomes NaN (the
 * caller's "inconsistent" check) when one is not positive. A bad count marks
 * r failed (blob_reader_status reports it).
 */
void age_means_get_factors(struct blob_reader *r, uint32_t version, double *smear,
			   struct age_means *m);

/* Adds object name to obj, {"<age>": value, ...}, for a stage's details. */
void age_means_add_json(cJSON *obj, const char *name, const struct age_means *m);

#endif
