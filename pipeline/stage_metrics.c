/*
 * Validation metrics recorded by the model stages that have no metrics of
 * their own (curves, lookalike, semantic), so they are defined once and
 * comparable across stages in `ltvpipe status`.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/metrics.h"
#include "ltv/stage_metrics.h"

/*
 * Validation metrics of pred (one per rows[i]) against ltv_H: campaign-level
 * WAPE and bias of cohort totals (metrics_campaign_wape), the mean and median
 * APE of cohort mean LTV over cohorts whose actual mean is > 0, user RMSLE,
 * and how many rows had a prediction. Undefined metrics are null.
 */
int stage_add_validation_metrics(struct stage_ctx *ctx, const struct model_data *d,
				  const size_t *rows, size_t n, const double *pred,
				  int64_t horizon)
{
	const double *label = model_data_label(d, horizon);
	const size_t n_dense = d->n_apps * d->n_campaigns;
	double *actual = xmalloc((n ? n : 1) * sizeof(double));
	size_t *group = xmalloc((n ? n : 1) * sizeof(size_t));
	double *sum_a = xcalloc(n_dense ? n_dense : 1, sizeof(double));
	double *sum_p = xcalloc(n_dense ? n_dense : 1, sizeof(double));
	size_t *cnt = xcalloc(n_dense ? n_dense : 1, sizeof(size_t));
	double *ape = xmalloc((n_dense ? n_dense : 1) * sizeof(double));
	struct metrics_campaign mc = { .wape = NAN, .bias = NAN };
	double rmsle = NAN, mape = NAN, median_ape = NAN;
	size_t n_pred = 0, n_ape = 0, n_campaigns = 0;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		actual[i] = label[rows[i]];
		group[i] = model_data_cohort(d, rows[i]);
		if (isnan(pred[i]) || isnan(actual[i]))
			continue;
		n_pred++;
		sum_a[group[i]] += actual[i];
		sum_p[group[i]] += pred[i];
		cnt[group[i]]++;
	}
	for (size_t c = 0; c < n_dense; c++) {
		n_campaigns += cnt[c] > 0;
		if (cnt[c] > 0 && sum_a[c] > 0)
			ape[n_ape++] = fabs(sum_p[c] - sum_a[c]) / sum_a[c];
	}
	if (n_ape) {
		mape = 0;
		for (size_t j = 0; j < n_ape; j++)
			mape += ape[j] / (double)n_ape;
		qsort(ape, n_ape, sizeof(double), double_cmp);
		median_ape = n_ape % 2 ? ape[n_ape / 2] : 0.5 * (ape[n_ape / 2 - 1] + ape[n_ape / 2]);
	}
	if (n_pred) {
		ret = metrics_campaign_wape(actual, pred, group, n, n_dense, 1, &mc, &ctx->err);
		if (ret == 0)
			ret = metrics_rmsle(actual, pred, n, &rmsle, NULL, &ctx->err);
	}
	if (ret == 0) {
		cJSON_AddNumberToObject(ctx->metrics, "val_horizon", (double)horizon);
		cJSON_AddNumberToObject(ctx->metrics, "val_users", (double)n);
		cJSON_AddNumberToObject(ctx->metrics, "val_users_predicted", (double)n_pred);
		cJSON_AddNumberToObject(ctx->metrics, "val_campaigns", (double)n_campaigns);
		cJSON_AddNumberToObject(ctx->metrics, "val_campaign_wape", mc.wape);
		cJSON_AddNumberToObject(ctx->metrics, "val_campaign_bias", mc.bias);
		cJSON_AddNumberToObject(ctx->metrics, "val_campaign_mape", mape);
		cJSON_AddNumberToObject(ctx->metrics, "val_campaign_median_ape", median_ape);
		cJSON_AddNumberToObject(ctx->metrics, "val_user_rmsle", rmsle);
	}
	free(actual);
	free(group);
	free(sum_a);
	free(sum_p);
	free(cnt);
	free(ape);
	return ret;
}

