/*
 * Validation metrics shared by model stages (pipeline/stage_metrics.c).
 */
#ifndef LTV_STAGE_METRICS_H
#define LTV_STAGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/model_data.h"
#include "ltv/stage.h"

/*
 * Adds to ctx->metrics the validation metrics of pred (one per rows[i])
 * against ltv_<horizon>: campaign-level WAPE and bias of cohort totals, the
 * mean and median APE of cohort mean LTV over cohorts whose actual mean is
 * > 0, user RMSLE, and how many rows had a prediction. Undefined metrics are
 * null. Returns 0 or a negative status with ctx->err set.
 */
int stage_add_validation_metrics(struct stage_ctx *ctx, const struct model_data *d,
				 const size_t *rows, size_t n, const double *pred, int64_t horizon);

#endif
