/*
 * The buy-till-you-die stages (DESIGN.md "btyd"): fit a count model of
 * paying days with Gamma-Gamma spend per app on the training users' whole
 * history before as_of, in weeks, day 0 being the acquisition, and store it
 * in the format include/ltv/btyd_model.h loads and predicts with; with
 * btyd.serve_fit, a refit for serving is stored beside it.
 */
#ifndef LTV_BTYD_STAGE_H
#define LTV_BTYD_STAGE_H

#include "ltv/btyd_model.h"
#include "ltv/stage.h"

/* The stage body for a count model. */
int btyd_stage_run(struct stage_ctx *ctx, const struct btyd_count_model *kind);

#endif
