/*
 * Select's global medians (include/ltv/select_medians.h), out of
 * pipeline/select.c.
 */
#include <stdlib.h>

#include "ltv/median_counted.h"
#include "ltv/select_medians.h"

void select_global_medians(struct stage_ctx *ctx, const struct model_data *d, double *out,
			   struct row_split *valid)
{
	const double *rev_window = frame_column(&d->frame, "rev_window");

	/* the horizons are independent: side by side */
#pragma omp parallel for schedule(dynamic, 1) num_threads(stage_threads(ctx))
	for (size_t h = 0; h < d->params.horizons.n; h++) {
		struct row_split *s = &valid[h];
		const double *y = model_data_label(d, d->params.horizons.v[h]);
		double *v;
		size_t *count, total = 0;

		model_data_split_weighted(d, d->params.horizons.v[h], 0, s);
		model_data_expand_by_weight(d, &s->valid, &s->n_valid);
		v = xmalloc((s->n_train ? s->n_train : 1) * sizeof(double));
		count = xmalloc((s->n_train ? s->n_train : 1) * sizeof(size_t));
		for (size_t i = 0; i < s->n_train; i++) {
			v[i] = y[s->train[i]] - rev_window[s->train[i]];
			count[i] = model_data_repeats(d, s->train[i]);
			total += count[i];
		}
		out[h] = total ? median_counted(v, count, s->n_train) : 0;
		free(v);
		free(count);
		free(s->train);
		s->train = NULL;
		s->n_train = 0;
	}
}
