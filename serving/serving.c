/*
 * Serving a model version's predictions (contract in include/ltv/serving.h):
 * the selected method with its fallbacks, then the additive rule, the
 * calibration of the revenue to come, observed horizons and monotonicity.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "ltv/btyd_model.h"
#include "ltv/serving.h"

/* P(alive) thresholds of the risk segments: Safe from 0.8, Monitor from 0.5, At risk from 0.2. */
static const double risk_cut[] = { 0.8, 0.5, 0.2 };

const char *serving_risk_segment(double p_alive)
{
	if (isnan(p_alive))
		return "";
	return p_alive >= risk_cut[0] ? "Safe" : p_alive >= risk_cut[1] ? "Monitor"
	       : p_alive >= risk_cut[2] ? "At risk" : "Critical";
}

void serving_campaign_interval(const struct loaded_model *m, size_t h, double revenue,
			       double future, double *out_lo, double *out_hi)
{
	double lo, hi;

	conformal_group(&m->pred.band[h], future, &lo, &hi);
	*out_lo = revenue - future + lo;
	*out_hi = revenue - future + hi;
}

/* The band of each row at horizon index h: observed values are exact. */
static void fill_band(const struct loaded_model *m, size_t h, const double *seen,
		      struct served *out)
{
	const struct conformal *band = &m->pred.band[h];

	for (size_t i = 0; i < out->n; i++) {
		double lo, hi;

		if (out->observed[h][i]) {
			out->ltv_lo[h][i] = out->ltv_hi[h][i] = out->ltv[h][i];
			continue;
		}
		if (band->n_buckets == 0) {
			out->ltv_lo[h][i] = out->ltv_hi[h][i] = NAN;
			continue;
		}
		conformal_row(band, out->ltv[h][i] - seen[i], &lo, &hi);
		/*
		 * The band is of outcomes, not of the expected value: most users'
		 * revenue to come is exactly 0 and a few pay a lot, so the expected
		 * value can lie above it (0.02 expected, band [0, 0]). It used to be
		 * stretched to hold the value, which made it hold more than 80% of
		 * outcomes (README "Campaign intervals", per-user intervals).
		 */
		out->ltv_lo[h][i] = seen[i] + lo;
		out->ltv_hi[h][i] = seen[i] + hi;
	}
}

/*
 * P(alive) and the 30-day purchase probability from the version's Pareto/NBD,
 * else its BG/NBD: under BG/NBD a user who never bought again cannot have
 * left (P(alive) = 1 whatever their silence), while Pareto/NBD lets anyone
 * leave at any time, so its P(alive) falls with every quiet week.
 */
static int fill_outlook(const struct loaded_model *m, const struct model_data *d,
			const size_t *rows, struct served *out, struct ltv_err *err)
{
	static const char *const order[] = { "pareto_nbd", "bgnbd" };
	int ret = 0;

	for (size_t i = 0; i < out->n; i++)
		out->p_alive[i] = out->p_purchase_30d[i] = NAN;
	for (size_t k = 0; k < 2 && ret == 0; k++) {
		const void *state = m->pred.states[method_index(order[k])];

		if (state && out->n > 0 && isnan(out->p_alive[0]))
			ret = btyd_method_outlook(state, d, rows, out->n, 30, out->p_alive,
						  out->p_purchase_30d, err);
	}
	return ret;
}

void served_release(struct served *s)
{
	for (size_t h = 0; h < s->n_horizons; h++) {
		free(s->ltv[h]);
		free(s->observed[h]);
		free(s->p_payer_h[h]);
		free(s->ltv_lo[h]);
		free(s->ltv_hi[h]);
		free(s->raw_h[h]);
	}
	free(s->p_alive);
	free(s->p_purchase_30d);
	free(s->raw);
	free(s->p_payer);
	free(s->method);
	free(s->fallback);
	memset(s, 0, sizeof(*s));
}

void served_copy_row(struct served *dst, size_t i, const struct served *src, size_t j)
{
	assert(dst->n_horizons == src->n_horizons && i < dst->n && j < src->n);
	for (size_t h = 0; h < dst->n_horizons; h++) {
		dst->ltv[h][i] = src->ltv[h][j];
		dst->observed[h][i] = src->observed[h][j];
		if (dst->p_payer_h[h]) /* not kept by SERVING_LEAN */
			dst->p_payer_h[h][i] = src->p_payer_h[h][j];
		dst->ltv_lo[h][i] = src->ltv_lo[h][j];
		dst->ltv_hi[h][i] = src->ltv_hi[h][j];
	}
	dst->p_alive[i] = src->p_alive[j];
	dst->p_purchase_30d[i] = src->p_purchase_30d[j];
	dst->raw[i] = src->raw[j];
	dst->p_payer[i] = src->p_payer[j];
	dst->method[i] = src->method[j];
	dst->fallback[i] = src->fallback[j];
}

/*
 * select.horizon_step 1: for rows that have not lived the previous horizon
 * (not observed there), v = the previous horizon's served value + the
 * revenue this horizon's own methods put between the two horizons (its
 * value here minus its value at the previous horizon, both calibrated as
 * here, never below 0). Why: the two horizons may be served by different
 * methods (seed 3 at 30 and 90 days: pareto_nbd ranked by hurdle, then
 * curves), and the larger of the two user by user sums above either: every
 * user gets whichever method says more. With one method at both horizons,
 * uncalibrated, this is that method's own value.
 */
static int step_between(const struct loaded_model *m, const struct model_data *d,
			const size_t *rows, size_t n, size_t h, const double *seen,
			struct served *out, struct ltv_err *err)
{
	const int64_t horizon = m->params.horizons.v[h], prev = m->params.horizons.v[h - 1];
	size_t *sub = xmalloc((n ? n : 1) * sizeof(size_t)), *at = xmalloc((n ? n : 1) * sizeof(size_t));
	double *before, *seen_sub;
	size_t k_rows = 0;
	int ret;

	for (size_t i = 0; i < n; i++)
		if (!out->observed[h - 1][i] && !out->observed[h][i]) {
			at[k_rows] = i;
			sub[k_rows++] = rows[i];
		}
	before = xmalloc((k_rows ? k_rows : 1) * sizeof(double));
	seen_sub = xmalloc((k_rows ? k_rows : 1) * sizeof(double));
	ret = k_rows ? predictor_predict_raw_at(&m->pred, d, sub, k_rows, horizon, prev, before, err) : 0;
	for (size_t j = 0; j < k_rows; j++)
		seen_sub[j] = seen[at[j]];
	if (ret == 0 && k_rows)
		predictor_calibrate(&m->pred, d, sub, k_rows, horizon, seen_sub, before);
	for (size_t j = 0; j < k_rows && ret == 0; j++) {
		const size_t i = at[j];

		out->ltv[h][i] = out->ltv[h - 1][i] + fmax(out->ltv[h][i] - before[j], 0.0);
	}
	free(sub);
	free(at);
	free(before);
	free(seen_sub);
	return ret;
}

/*
 * The share of the floor between horizon indexes h-1 and h for a row
 * (include/ltv/predictor.h predictor_floor_between): its tier's, fitted by
 * calibrate on validation users younger than the shorter horizon so that
 * the floored sum is the longer horizon's own; 1 (the larger of the two)
 * unless calibrate.floor_share fitted one.
 */
static double floor_share_of(const struct predictor *p, const struct model_data *d, size_t row,
			     size_t h)
{
	const int tier = d->tier ? (int)d->tier[row] : 3;

	return p->floor_share[tier >= 1 && tier <= 3 ? tier : 3][h];
}

int serving_predict(const struct loaded_model *m, const struct model_data *d,
		    const size_t *rows, size_t n, struct served *out, struct ltv_err *err)
{
	return serving_predict_with(m, d, rows, n, 0, out, err);
}

/*
 * Rows whose value at horizon is the observed one (serving_predict_with's
 * test, below): n flags, NULL when none is.
 */
static unsigned char *observed_rows(const struct model_data *d, const size_t *rows, size_t n,
				    int64_t horizon)
{
	const double *age = frame_column(&d->frame, "age_days");
	const double *label = model_data_label(d, horizon);
	unsigned char *out = NULL;

	for (size_t i = 0; label && i < n; i++)
		if (age[rows[i]] >= (double)horizon && !isnan(label[rows[i]])) {
			if (!out)
				out = xcalloc(n, 1);
			out[i] = 1;
		}
	return out;
}

/*
 * Horizon index h's raw predictions (and p_payer when asked for), before
 * calibration, and the factors of curves' cells (predictor_predict_raw_cells).
 */
static int raw_horizon(const struct loaded_model *m, const struct model_data *d, const size_t *rows,
		       size_t n, unsigned flags, size_t h, int *served, struct served *out,
		       double **factor, struct ltv_err *err)
{
	const int64_t horizon = m->params.horizons.v[h];
	/* p_payer asks hurdle for every row; elsewhere only its rows run it */
	const int payer = horizon == m->params.target_horizon || (flags & SERVING_PAYER_EVERY_HORIZON);
	unsigned char *unread = horizon != m->params.target_horizon &&
					(flags & SERVING_RAW_OBSERVED_UNREAD)
				? observed_rows(d, rows, n, horizon)
				: NULL;
	int ret;

	for (size_t i = 0; !payer && out->p_payer_h[h] && i < n; i++)
		out->p_payer_h[h][i] = NAN;
	ret = predictor_predict_raw_cells(&m->pred, d, rows, n, horizon, unread, out->ltv[h], served,
					  payer ? out->p_payer_h[h] : NULL, factor, err);
	free(unread);
	return ret;
}

/*
 * The raw predictions as jobs: each horizon's (raw_horizon) and P(alive)
 * (fill_outlook), each writing outputs of its own. The caller's thread runs
 * the target horizon's first (hurdle for every row, p_payer); then both
 * threads take the others from one list, the longest horizon first (its rows
 * are the least observed, so the most predicted) and P(alive) last, so that
 * whichever thread is free takes the next job and the two end together. A
 * second thread that ran every other job left the caller's idle for a third
 * of the prediction at 1,000,000 users (README "Threads and performance").
 */
struct side_job {
	const struct loaded_model *m;
	const struct model_data *d;
	const size_t *rows;
	size_t n, target; /* target: the target horizon's index, done by the caller */
	unsigned flags;
	struct served *out;
	/* jobs in the order taken: horizon indexes, n_horizons for P(alive) */
	size_t order[PREDICTOR_MAX_HORIZONS + 1], n_jobs;
	atomic_size_t next; /* the next job of order to take */
	double *factor[PREDICTOR_MAX_HORIZONS]; /* curves' cells (NULL: none; predictor_predict_raw_cells) */
	int ret[PREDICTOR_MAX_HORIZONS], outlook_ret;
	struct ltv_err err[PREDICTOR_MAX_HORIZONS], outlook_err;
};

/* The jobs other than the target horizon's: horizons from the longest, then P(alive). */
static void side_jobs_order(struct side_job *j)
{
	j->n_jobs = 0;
	for (size_t h = j->out->n_horizons; h-- > 0;)
		if (h != j->target)
			j->order[j->n_jobs++] = h;
	j->order[j->n_jobs++] = j->out->n_horizons;
	atomic_init(&j->next, 0);
}

/* Takes and runs jobs until none is left. */
static void *side_job_main(void *arg)
{
	struct side_job *j = arg;
	size_t k;

	while ((k = atomic_fetch_add(&j->next, 1)) < j->n_jobs) {
		const size_t h = j->order[k];

		if (h == j->out->n_horizons)
			j->outlook_ret = fill_outlook(j->m, j->d, j->rows, j->out, &j->outlook_err);
		else
			j->ret[h] = raw_horizon(j->m, j->d, j->rows, j->n, j->flags, h, NULL, j->out,
						&j->factor[h], &j->err[h]);
	}
	return NULL;
}

/* Rows below which the second thread costs more than it saves (a served request). */
#define SIDE_THREAD_MIN_ROWS 20000

int serving_predict_with(const struct loaded_model *m, const struct model_data *d,
			 const size_t *rows, size_t n, unsigned flags, struct served *out,
			 struct ltv_err *err)
{
	const struct feature_params *fp = &m->params;
	const double *age = frame_column(&d->frame, "age_days");
	const double *seen = frame_column(&d->frame, "rev_to_date");
	const size_t alloc = n ? n : 1;
	double *seen_rows = xmalloc(alloc * sizeof(double));
	int *served = xmalloc(alloc * sizeof(int));
	struct side_job side = { .m = m, .d = d, .rows = rows, .n = n, .flags = flags, .out = out };
	pthread_t thread;
	int threaded = 0, ret = 0;

	memset(out, 0, sizeof(*out));
	out->n = n;
	out->n_horizons = fp->horizons.n;
	out->raw = xmalloc(alloc * sizeof(double));
	out->p_payer = xmalloc(alloc * sizeof(double));
	out->method = xcalloc(alloc, sizeof(int));
	out->fallback = xcalloc(alloc, sizeof(int));
	for (size_t i = 0; i < n; i++)
		seen_rows[i] = seen[rows[i]];
	for (size_t h = 0; h < out->n_horizons; h++) {
		const int lean = (flags & SERVING_LEAN) != 0;
		const int payer_h = fp->horizons.v[h] == fp->target_horizon ||
				    (flags & SERVING_PAYER_EVERY_HORIZON);

		out->ltv[h] = xmalloc(alloc * sizeof(double));
		out->observed[h] = xcalloc(alloc, 1);
		out->p_payer_h[h] = lean && !payer_h ? NULL : xmalloc(alloc * sizeof(double));
		out->ltv_lo[h] = xmalloc(alloc * sizeof(double));
		out->ltv_hi[h] = xmalloc(alloc * sizeof(double));
		out->raw_h[h] = lean ? NULL : xmalloc(alloc * sizeof(double));
	}
	out->p_alive = xmalloc(alloc * sizeof(double));
	out->p_purchase_30d = xmalloc(alloc * sizeof(double));
	/*
	 * Every horizon's raw predictions first, the target's here, then the
	 * others and P(alive) by whichever thread is free (side_job); then calibration, observed values
	 * and monotonicity horizon by horizon, in order, as each reads the last.
	 */
	side.target = (size_t)feature_params_horizon_index(fp, fp->target_horizon);
	side_jobs_order(&side);
	if (n >= SIDE_THREAD_MIN_ROWS && config_jobs(&m->cfg) > 1)
		threaded = pthread_create(&thread, NULL, side_job_main, &side) == 0;
	if (side.target < out->n_horizons)
		side.ret[side.target] = raw_horizon(m, d, rows, n, flags, side.target, served, out,
						    &side.factor[side.target], &side.err[side.target]);
	side_job_main(&side);
	if (threaded)
		pthread_join(thread, NULL);
	/* the first horizon's error in order, then P(alive)'s, as when they ran one after another */
	for (size_t h = 0; h < out->n_horizons && ret == 0; h++)
		if ((ret = side.ret[h]) < 0)
			*err = side.err[h];
	if (ret == 0 && (ret = side.outlook_ret) < 0)
		*err = side.outlook_err;
	for (size_t h = 0; h < out->n_horizons && ret == 0; h++) {
		const int64_t horizon = fp->horizons.v[h];
		const double *label = model_data_label(d, horizon);
		const int is_target = horizon == fp->target_horizon;
		double *v = out->ltv[h];

		if (out->raw_h[h])
			memcpy(out->raw_h[h], v, n * sizeof(double));
		if (is_target) {
			memcpy(out->raw, v, n * sizeof(double));
			memcpy(out->p_payer, out->p_payer_h[h], n * sizeof(double));
			predictor_chosen_methods(&m->pred, d, rows, n, (int)h, out->fallback);
			for (size_t i = 0; i < n; i++) {
				out->method[i] = served[i];
				out->fallback[i] = served[i] != out->fallback[i];
			}
		}
		predictor_calibrate(&m->pred, d, rows, n, horizon, seen_rows, v);
		/* curves' cells ordered by the ranker, each keeping its calibrated total (select.rank_cells) */
		for (size_t i = 0; side.factor[h] && i < n; i++)
			if (isfinite(side.factor[h][i]))
				v[i] = seen_rows[i] + side.factor[h][i] * fmax(v[i] - seen_rows[i], 0.0);
		for (size_t i = 0; i < n; i++) {
			if (age[rows[i]] >= (double)horizon && label && !isnan(label[rows[i]])) {
				v[i] = label[rows[i]];
				out->observed[h][i] = 1;
				if (is_target)
					out->raw[i] = NAN; /* nothing was predicted */
			}
			if (h == 0)
				continue;
			if (out->observed[h - 1][i] || out->observed[h][i]) {
				if (v[i] < out->ltv[h - 1][i])
					v[i] = out->ltv[h - 1][i];
			} else if (!m->cfg.select.horizon_step) /* with the step: step_between, below */
				v[i] = predictor_floor_between(out->ltv[h - 1][i], v[i],
							       floor_share_of(&m->pred, d, rows[i], h));
		}
		if (h > 0 && m->cfg.select.horizon_step)
			ret = step_between(m, d, rows, n, h, seen_rows, out, err);
		fill_band(m, h, seen_rows, out);
	}
	free(seen_rows);
	free(served);
	for (size_t h = 0; h < out->n_horizons; h++)
		free(side.factor[h]);
	if (ret < 0)
		served_release(out);
	return ret;
}
