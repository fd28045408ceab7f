/*
 * The served mix's raw predictions (predictor_predict_raw) of one set of
 * rows, kept so that a later call on those rows, or on some of their
 * cohorts, reads them instead of predicting the mix again: select predicts
 * the mix of each horizon's validation rows to judge its rank share, and
 * calibrate asked for the same again for each horizon's band and its WAPE
 * (1.87 million rows at 1,000,000 users, 4 of its 18 calls of the mix).
 *
 * A row's mix value depends on the row alone, but for a method that levels
 * a cohort from the rows it is given (curves, method.batch_level: its sums
 * run over the cohort's rows in call order). So a memo serves a call only
 * when each cohort among the call's rows comes whole, the very rows of the
 * kept set in the same order (repeats included); the values are then the
 * ones predicting would give, to the bit. Any other call is refused and
 * predicts as before. Frames with request groups (model_data.group: one
 * level per cohort and group) are not kept.
 */
#ifndef LTV_MIX_MEMO_H
#define LTV_MIX_MEMO_H

#include <stddef.h>

#include "ltv/model_data.h"

struct mix_memo;

/*
 * A memo of raw[i], the mix of rows[i] of d (i < n), both copied; NULL when
 * d has request groups. Free with mix_memo_free (NULL is fine).
 */
struct mix_memo *mix_memo_new(const struct model_data *d, const size_t *rows, size_t n,
			      const double *raw);
void mix_memo_free(struct mix_memo *m);
/*
 * 1 with out[0..n) the kept values of rows[0..n) when m serves this call
 * (every cohort among the rows whole and in m's order, d of m's frame);
 * else 0, and out[] holds nothing meant.
 */
int mix_memo_get(const struct mix_memo *m, const struct model_data *d, const size_t *rows,
		 size_t n, double *out);

#endif
