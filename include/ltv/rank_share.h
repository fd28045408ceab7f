/*
 * Ranking within campaigns (DESIGN-difference note in README "Results"):
 * select chooses a method per campaign by how close its campaign total
 * comes, and a method can get a total right while ranking the campaign's
 * users badly (the multiplier, curves). The share keeps the chosen method's
 * level and takes the order of users from the method that ranks best:
 *
 *   revenue to come = ratio * ranker's revenue to come
 *
 * where the ranker is the method with the highest normalized Gini of revenue
 * to come on the tier's validation rows (all tiers' rows when the tier has
 * too few), and ratio = sum of the chosen method's revenue to come over the
 * sum of the ranker's on the same validation rows at the user's age: those
 * of the user's campaign when it had enough of them, else those of its tier.
 * The ratio is kept per snapshot age (cell) and a row of age a weighs the
 * cells around a as methods are served between snapshots
 * (predictor_age_blend), because two methods' levels differ by age (a tree
 * trained at snapshots scales beyond the last one, BG/NBD does not). Both are
 * fitted at select and stored, so a user's value is a function of that user
 * alone (never of who else is scored in the same call), and summed over a
 * campaign like the validation campaigns it gives the chosen method's total.
 * A ratio is a quotient of sums (not a mean of per-user quotients) because
 * the total is what select chose the method for.
 */
#ifndef LTV_RANK_SHARE_H
#define LTV_RANK_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/blob.h"
#include "ltv/method.h"
#include "ltv/strmap.h"

struct model_data;

#define RANK_SHARE_MAX_CELLS 32

/* Where a row sits among the age cells: (1 - t) of cell lo and t of cell hi. */
struct rank_cell {
	int lo, hi;
	double t;
};

/* One horizon's share; ranker[t] < 0 (every t): none, the chosen method serves. */
struct rank_share {
	int ranker[4];                        /* per tier 1..3; [0]: over every tier */
	double gini[4];                       /* the ranker's validation Gini of revenue to come */
	int n_cells;                          /* age cells: the snapshots below the horizon (>= 1) */
	/* per (tier, chosen method, cell); NaN: none */
	double tier_ratio[4][METHOD_COUNT][RANK_SHARE_MAX_CELLS];
	struct strmap cohort;                 /* "app\x1f" "campaign" → index below */
	char **cohort_app, **cohort_campaign; /* in the order fitted (for saving) */
	double *cohort_ratio;                 /* n_cells per cohort */
	size_t n_cohorts;
};

void rank_share_init(struct rank_share *s);
/* Frees what s holds and zeroes it (rank_share_init makes it usable again). */
void rank_share_release(struct rank_share *s);

/*
 * Fits s from n validation rows (rows[i] of d, labelled at horizon): pred[m][i]
 * is method m's LTV for rows[i] (NaN where it has none), chosen[i] the method
 * its campaign is served by (< 0: blend or median, no share), cell[i] where
 * its age sits among n_cells age cells. A tier needs min_users validation
 * rows for its own ranker; a ratio needs min_users rows (weighted) in its cell.
 * The tiers' rankers are chosen on up to n_threads threads (same result).
 */
void rank_share_fit(struct rank_share *s, const struct model_data *d, int64_t horizon,
		    const size_t *rows, size_t n, double *const *pred, const int *chosen,
		    const struct rank_cell *cell, int n_cells, size_t min_users, int n_threads);

/*
 * dst = src's rankers without any ratio: no campaign's level is moved by a
 * stored ratio, and the rankers still order the cells of a method that gives
 * a whole cohort-age cell one value (predictor.c rank_within_cells).
 */
void rank_share_copy_rankers(struct rank_share *dst, const struct rank_share *src);

/* The ranker for a row of this tier (-1: none). */
int rank_share_ranker(const struct rank_share *s, int tier);
/*
 * The ratio for a row of (app, campaign, tier) at cell served by method chosen;
 * NaN: no share (among others where chosen is a BTYD method, user_at_age).
 */
double rank_share_ratio(const struct rank_share *s, const char *app, const char *campaign, int tier,
			int chosen, struct rank_cell cell);
/*
 * The same in two steps, for a caller with many rows per campaign: the
 * campaign's own ratios (NULL: none, its tier's serve), looked up once, then
 * the ratio of a row of it.
 */
const double *rank_share_cohort(const struct rank_share *s, const char *app, const char *campaign);
double rank_share_ratio_of(const struct rank_share *s, const double *cohort, int tier, int chosen,
			   struct rank_cell cell);
/*
 * select.rank_cells: the rows of a method that gives every user of a cohort
 * at one age the same revenue to come (method.same_to_come: curves), which
 * says how much a cell will pay and nothing about which of its users will.
 * Row i belongs to group[i] (a cohort of one call; >= n_groups: not one of
 * these rows, left as it is) and weighs (1 - t) in age cell lo and t in hi.
 * to_come[i] (in: the chosen method's revenue to come, out: the row's) becomes
 *
 *   sum over its cells k of w_k * (C_k / R_k) * ranker_to_come[i]
 *
 * with C_k and R_k the weighted sums of the chosen method's and the ranker's
 * revenue to come over the group's rows in cell k: so the group's rows sum,
 * cell by cell, to the chosen method's total (sum_k (C_k / R_k) R_k), and
 * within a cell they are ordered as the ranker orders them. A cell the
 * ranker gives nothing keeps the chosen method's values. Unlike the ratios
 * above, nothing is fitted on validation rows: the totals are the scored
 * cohort's own, as the chosen method (curves levels a cohort from the rows
 * it is given) made them.
 */
void rank_share_within_cells(const size_t *group, size_t n_groups, const struct rank_cell *cell,
			     const double *ranker_to_come, double *to_come, size_t n);
/* A shared value: rev_so_far + ratio * max(ranker_ltv - rev_so_far, 0). */
double rank_share_apply(double ratio, double ranker_ltv, double rev_so_far);

/* s as blob fields (after the caller's header) and back. */
void rank_share_put(struct blob_writer *w, const struct rank_share *s);
int rank_share_get(struct blob_reader *r, struct rank_share *s, struct ltv_err *err);

#endif
