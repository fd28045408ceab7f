/*
 * Select's mix on the validation rows (include/ltv/select_mix.h), out of
 * pipeline/select.c.
 *
 * Why two parts: the served mix on the target horizon's validation rows
 * (add_mix_metrics, 466,813 rows at 1,000,000 users) ran on one thread at
 * the end of select with the other core idle: 0.17 s in all (timed), of
 * which the copies into given and the predictions now run side by side.
 */
#include <stdlib.h>

#include "ltv/common.h"
#include "ltv/method.h"
#include "ltv/mix_memo.h"
#include "ltv/prediction_memo.h"
#include "ltv/select_mix.h"
#include "ltv/stage_io.h"

void select_given_for(double *const *pred, const size_t *at, size_t k, double **given)
{
	for (int m = 0; m < METHOD_COUNT; m++) {
		given[m] = NULL;
		if (method_table[m]->batch_level)
			continue;
		given[m] = xmalloc((k ? k : 1) * sizeof(double));
		for (size_t j = 0; j < k; j++)
			given[m][j] = pred[m][at ? at[j] : j];
	}
}

void select_given_release(double **given)
{
	for (int m = 0; m < METHOD_COUNT; m++)
		free(given[m]);
}

size_t select_cohort_halves(const struct model_data *d, const size_t *rows, size_t n,
			    unsigned char *part)
{
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	/* per cohort: 0 unseen, else 1 + its part */
	unsigned char *cohort_part = xcalloc(n_cohorts + 1, 1);
	size_t *count = xcalloc(n_cohorts + 1, sizeof(size_t)), in_0 = 0;

	for (size_t i = 0; i < n; i++)
		count[model_data_cohort(d, rows[i])]++;
	for (size_t i = 0; i < n; i++) {
		const size_t c = model_data_cohort(d, rows[i]);

		if (!cohort_part[c]) {
			cohort_part[c] = 1 + (2 * in_0 >= n);
			if (cohort_part[c] == 1)
				in_0 += count[c];
		}
		part[i] = (unsigned char)(cohort_part[c] - 1);
	}
	free(cohort_part);
	free(count);
	return in_0;
}

/* Part k of the mix: its rows' predictions scattered into out_ltv and out_method. */
static int predict_part(const struct predictor *p, const struct model_data *d, const size_t *rows,
			size_t n, const unsigned char *part, int k, int64_t horizon,
			double *const *pred, double *out_ltv, int *out_method, struct ltv_err *err)
{
	const size_t alloc = n ? n : 1;
	size_t *at = xmalloc(alloc * sizeof(size_t)), *sub = xmalloc(alloc * sizeof(size_t)), m = 0;
	double *ltv = xmalloc(alloc * sizeof(double)), *given[METHOD_COUNT];
	int *method = xmalloc(alloc * sizeof(int)), ret;

	for (size_t i = 0; i < n; i++)
		if (part[i] == k) {
			at[m] = i;
			sub[m++] = rows[i];
		}
	select_given_for(pred, at, m, given);
	ret = predictor_predict_raw_given(p, d, sub, m, horizon, (const double *const *)given, ltv,
					  out_method ? method : NULL, NULL, err);
	select_given_release(given);
	for (size_t j = 0; j < m && ret == 0; j++) {
		out_ltv[at[j]] = ltv[j];
		if (out_method)
			out_method[at[j]] = method[j];
	}
	free(at);
	free(sub);
	free(ltv);
	free(method);
	return ret;
}

int select_predict_mix(struct stage_ctx *ctx, const struct predictor *p, const struct model_data *d,
		       const size_t *rows, size_t n, int64_t horizon, double *const *pred,
		       double *out_ltv, int *out_method)
{
	const int two = stage_threads(ctx) >= 2;
	unsigned char *part = xcalloc(n ? n : 1, 1);
	struct ltv_err errs[2] = { { 0 } };
	int rets[2] = { 0 };

	if (two)
		select_cohort_halves(d, rows, n, part);
#pragma omp parallel for schedule(static, 1) num_threads(two ? 2 : 1)
	for (int k = 0; k < 1 + two; k++)
		rets[k] = predict_part(p, d, rows, n, part, k, horizon, pred, out_ltv, out_method, &errs[k]);
	free(part);
	for (int k = 0; k < 2; k++)
		if (rets[k] < 0) {
			ctx->err = errs[k];
			return rets[k];
		}
	return 0;
}

void select_offer_mix(struct stage_ctx *ctx, const struct model_data *d, const struct row_split *s,
		      int64_t horizon, const double *ltv)
{
	char *key;

	/* predict_all's own rule for leaving its memo */
	if (!ltv || ctx->cfg->select.held_out_ages || !ctx->predictions)
		return;
	key = stage_prediction_key(ctx);
	prediction_shelf_offer_mix(ctx->predictions, key, horizon,
				   mix_memo_new(d, s->valid, s->n_valid, ltv));
	free(key);
}
