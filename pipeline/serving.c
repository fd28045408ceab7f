/*
 * Serving a model version's predictions (contract in include/ltv/serving.h):
 * the selected method with its fallbacks, then the additive rule, the
 * calibration of the revenue to come, observed horizons and monotonicity.
 */
#include <math.h>
#include <string.h>

#include "ltv/serving.h"

void served_release(struct served *s)
{
	for (size_t h = 0; h < s->n_horizons; h++) {
		free(s->ltv[h]);
		free(s->observed[h]);
		free(s->p_payer_h[h]);
	}
	free(s->raw);
	free(s->p_payer);
	free(s->method);
	free(s->fallback);
	memset(s, 0, sizeof(*s));
}

int serving_predict(const struct loaded_model *m, const struct model_data *d,
		    const size_t *rows, size_t n, struct served *out, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const double *age = frame_column(&d->frame, "age_days");
	const double *seen = frame_column(&d->frame, "rev_to_date");
	const size_t alloc = n ? n : 1;
	double *seen_rows = xmalloc(alloc * sizeof(double));
	int *served = xmalloc(alloc * sizeof(int));
	int ret = 0;

	memset(out, 0, sizeof(*out));
	out->n = n;
	out->n_horizons = cfg->features.horizons.n;
	out->raw = xmalloc(alloc * sizeof(double));
	out->p_payer = xmalloc(alloc * sizeof(double));
	out->method = xcalloc(alloc, sizeof(int));
	out->fallback = xcalloc(alloc, sizeof(int));
	for (size_t i = 0; i < n; i++)
		seen_rows[i] = seen[rows[i]];
	for (size_t h = 0; h < out->n_horizons; h++) {
		out->ltv[h] = xmalloc(alloc * sizeof(double));
		out->observed[h] = xcalloc(alloc, 1);
		out->p_payer_h[h] = xmalloc(alloc * sizeof(double));
	}
	for (size_t h = 0; h < out->n_horizons && ret == 0; h++) {
		const int64_t horizon = cfg->features.horizons.v[h];
		const double *label = model_data_label(d, horizon);
		const int is_target = horizon == cfg->features.target_horizon;
		double *v = out->ltv[h];

		ret = predictor_predict_raw(&m->pred, d, rows, n, horizon, v, served,
					    out->p_payer_h[h], err);
		if (ret < 0)
			break;
		if (is_target) {
			memcpy(out->raw, v, n * sizeof(double));
			memcpy(out->p_payer, out->p_payer_h[h], n * sizeof(double));
			for (size_t i = 0; i < n; i++) {
				out->method[i] = served[i];
				out->fallback[i] = served[i] !=
						   predictor_chosen_method(&m->pred, d, rows[i]);
			}
		}
		predictor_calibrate(&m->pred, d, rows, n, horizon, seen_rows, v);
		for (size_t i = 0; i < n; i++) {
			if (age[rows[i]] >= (double)horizon && label && !isnan(label[rows[i]])) {
				v[i] = label[rows[i]];
				out->observed[h][i] = 1;
			}
			if (h > 0 && v[i] < out->ltv[h - 1][i])
				v[i] = out->ltv[h - 1][i];
		}
	}
	free(seen_rows);
	free(served);
	if (ret < 0)
		served_release(out);
	return ret;
}
