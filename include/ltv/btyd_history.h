/*
 * A user's purchase history in the terms of the buy-till-you-die models
 * (BG/NBD, Pareto/NBD, Gamma-Gamma), in weeks: day 0 is the acquisition;
 * x = paying days d >= 1 (repeat transactions), t_x = the last of them (0
 * when none), T = the age, m_x = mean revenue of those days. Read off a row
 * of the features frame, either as the user was at the row's age (its
 * features: for scoring and validation) or at as_of (the to-date columns: for
 * fitting on training users).
 */
#ifndef LTV_BTYD_HISTORY_H
#define LTV_BTYD_HISTORY_H

#include <stddef.h>

#include "ltv/model_data.h"
#include "ltv/registry.h"

#define BTYD_DAYS_PER_WEEK 7.0

struct btyd_history {
	double x, t_x, T, m_x;
};

/*
 * The columns a row's history at its own age is read from (not found: not in
 * the frame; the value is then NaN), looked up once by btyd_row_columns_of for
 * all the rows of a prediction: a lookup by name per row cost more than the
 * row's arithmetic.
 */
struct btyd_row_columns {
	struct frame_col window, rev, rev_d0, paying_days, since;
};

void btyd_row_columns_of(const struct model_data *d, struct btyd_row_columns *out);
/* The history row's features show: days d < window_days. */
void btyd_history_of_row(const struct btyd_row_columns *c, size_t row, struct btyd_history *out);
/* The user's whole history before as_of (to-date columns, age_days). */
void btyd_history_to_date(const struct model_data *d, size_t row, struct btyd_history *out);
/* The same for rows[0..n) into out[0..n), the columns looked up once. */
void btyd_histories_to_date(const struct model_data *d, const size_t *rows, size_t n,
			    struct btyd_history *out);

/*
 * Purchase days before as_of read from the registry's user-days (what the
 * to-date columns hold, for users the features frame does not have): user
 * uid (1-based, uid <= n_uids) with slot[uid - 1] >= 0 goes to index
 * slot[uid - 1] of x (paying days d >= 1), t_x (the last of them, in days,
 * 0 when none) and m_x (their mean revenue); install[slot] is its install
 * time. Only days complete at as_of count (the rule of feature_build_base),
 * so nothing after as_of is read. x, t_x and m_x are the caller's, zeroed.
 */
struct btyd_days {
	const int64_t *slot;
	size_t n_uids;
	const double *install;
	int64_t as_of;
	double *x, *t_x, *m_x;
	size_t n_slots;
};
int btyd_days_read(struct registry *reg, struct btyd_days *b, struct ltv_err *err);

/*
 * Histories collapsed to distinct (x, t_x, T) triples with counts, for the
 * likelihood fits, with T and t_x rounded to whole weeks (the resolution of
 * the published fits; predictions still use days). The arrays are the
 * caller's to free with btyd_triples_release.
 */
struct btyd_triples {
	size_t n;
	double *x, *t_x, *T, *weight;
};
void btyd_triples_build(const struct btyd_history *h, size_t n, struct btyd_triples *out);
/*
 * The same without the rounding: h's own (x, t_x, T) collapsed, exactly
 * (h is sorted in place by x, t_x, T).
 */
void btyd_triples_collapse(struct btyd_history *h, size_t n, struct btyd_triples *out);
void btyd_triples_release(struct btyd_triples *t);

#endif
