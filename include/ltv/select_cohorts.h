#ifndef LTV_SELECT_COHORTS_H
#define LTV_SELECT_COHORTS_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/stage.h"

/*
 * The candidates select chooses among: every method (k < METHOD_COUNT) and
 * the blend (k == METHOD_COUNT), whose predictor index is METHOD_BLEND.
 */
#define N_CANDIDATES (METHOD_COUNT + 1)

/* One validation cohort (app x campaign) as select judges it. */
struct cohort_eval {
	size_t n;              /* validation users */
	double actual_sum;
	double pred_sum[N_CANDIDATES];
	int missing[N_CANDIDATES]; /* the candidate had nothing for some of its users */
	double ape[N_CANDIDATES];
	double rmsle[N_CANDIDATES];
	int best;
	int tier;
};

/*
 * The validation rows i of a split s outside skip_fold (all of them when
 * in_fold is NULL) grouped by cohort, each cohort's rows in row order (a
 * counting sort): one choice reads them three ways (its cohort sums, each
 * cohort's RMSLE per candidate, each user's residuals), and each used to
 * look every row's cohort up again and sort them again.
 *   cohort[i]   model_data_cohort of s->valid[i], for every i
 *   row_of[j]   the i of the j-th kept row in cohort order, j < n
 *   start[c]    cohort c's rows: row_of[start[c] .. start[c + 1])
 *   actual[j]   the label at the horizon of row row_of[j]
 *   y, in_fold, skip_fold   the label column and the fold rule (borrowed)
 * Built by select_cohort_rows_build, freed by select_cohort_rows_release.
 */
struct cohort_rows {
	size_t n;
	size_t *cohort;
	size_t *row_of;
	size_t *start;
	double *actual;
	const double *y;
	const int *in_fold;
	int skip_fold;
};

void select_cohort_rows_build(const struct model_data *d, int64_t horizon, const struct row_split *s,
			      const int *in_fold, int skip_fold, size_t n_cohorts,
			      struct cohort_rows *out);
void select_cohort_rows_release(struct cohort_rows *co);

/*
 * co's rows aggregated per cohort into ev[0 .. n_cohorts] (cleared first):
 * actual and predicted sums, and the user-level RMSLE per candidate of each
 * cohort of at least min_users (NaN otherwise), the candidates side by side
 * on n_threads threads. The same bits as summing in row order.
 */
void select_aggregate(const struct cohort_rows *co, const struct model_data *d, const struct row_split *s,
		      double *const *pred, size_t min_users, int n_threads, struct cohort_eval *ev,
		      size_t n_cohorts);

/*
 * co's validation users grouped by cohort: per candidate, each user's
 * prediction minus actual summed over the user's rows (a user is several
 * snapshot rows, and repeated by weight; resampling users, not rows, keeps
 * those rows together), in (cohort, uid, row) order.
 */
struct user_resid {
	size_t n_users;
	size_t *cohort_start; /* users of cohort c: cohort_start[c] .. cohort_start[c + 1] - 1 */
	double *resid[N_CANDIDATES];
};

/*
 * Each user's residual sums per candidate, summed side by side on
 * n_threads threads, each over its rows in the same order as one thread:
 * the same bits for any n_threads. select_user_resid_release frees them.
 */
void select_user_resid_build(const struct cohort_rows *co, const struct model_data *d,
			     const struct row_split *s, double *const *pred, size_t n_cohorts,
			     int n_threads, struct user_resid *out);
void select_user_resid_release(struct user_resid *u);

#endif
