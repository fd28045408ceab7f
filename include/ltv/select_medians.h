#ifndef LTV_SELECT_MEDIANS_H
#define LTV_SELECT_MEDIANS_H

#include "ltv/model_data.h"
#include "ltv/stage.h"

/*
 * Median revenue still to come (ltv_H - rev_window) over training rows
 * (weighted) per horizon: the last resort of the chain adds it to what a user
 * spent so far. Each horizon's split of the frame is made here once:
 * valid[h] keeps its validation rows, the ones select judges on (judged_rows),
 * instead of a second pass over the whole frame. The training rows stay
 * weighted: their median counts each row as often as expanding it would
 * (median_counted), without writing out and faulting in about 3 million rows
 * per horizon at 1,000,000 users.
 */
void select_global_medians(struct stage_ctx *ctx, const struct model_data *d, double *out,
			   struct row_split *valid);

#endif
