/*
 * Calibration maps a method's raw prediction onto the scale validation
 * cohorts actually reached: anchor-and-adjust shrinks or stretches the
 * predictions around a tier's training mean, isotonic regression learns any
 * monotone correction. calibration_fit_best picks between them by
 * cross-validation on contiguous folds so the choice is made on data the
 * candidate was not fitted on. Contracts are in include/ltv/calibration.h.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/calibration.h"
#include "ltv/metrics.h"

static const char calibration_magic[8] = { 'L', 'T', 'V', 'C', 'A', 'L', 'B', '1' };
#define CALIBRATION_FORMAT_VERSION 1u

void calibration_param_init(struct calibration_param *param)
{
	param->alpha_min = 0;
	param->alpha_max = 2;
	param->n_folds = 5;
}

const char *calibration_param_check(const struct calibration_param *param)
{
	if (!isfinite(param->alpha_min) || !isfinite(param->alpha_max))
		return "alpha_min and alpha_max must be finite numbers";
	if (param->alpha_min > param->alpha_max)
		return "alpha_min must not exceed alpha_max";
	if (param->n_folds < 2)
		return "n_folds must be at least 2";
	return NULL;
}

const char *calibration_kind_name(enum calibration_kind kind)
{
	switch (kind) {
	case CALIBRATION_ANCHOR:
		return "anchor";
	case CALIBRATION_ISOTONIC:
		return "isotonic";
	}
	return "unknown";
}

static struct calibration *calibration_new(enum calibration_kind kind)
{
	struct calibration *cal = xcalloc(1, sizeof(*cal));

	cal->kind = kind;
	cal->anchor = NAN;
	cal->alpha = NAN;
	cal->cv_mse_anchor = NAN;
	cal->cv_mse_isotonic = NAN;
	return cal;
}

void calibration_free(struct calibration *cal)
{
	if (!cal)
		return;
	free(cal->x);
	free(cal->y);
	free(cal);
}

static int check_inputs(const char *what, const double *pred, const double *actual,
			const double *weight, size_t n, struct ltv_err *err)
{
	if (n == 0)
		return err_set(err, LTV_EINVAL, "%s calibration: no validation rows to fit on", what);
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(pred[i]) || !isfinite(actual[i]))
			return err_set(err, LTV_EINVAL,
				       "%s calibration: row %zu has %s %g; validation values must be finite",
				       what, i, isfinite(pred[i]) ? "actual" : "prediction",
				       isfinite(pred[i]) ? actual[i] : pred[i]);
		if (weight && !(isfinite(weight[i]) && weight[i] > 0))
			return err_set(err, LTV_EINVAL,
				       "%s calibration: row %zu has weight %g; weights must be finite and > 0",
				       what, i, weight[i]);
	}
	return 0;
}

int calibration_anchor_alpha(const double *pred, const double *actual, size_t n, double anchor,
			     double alpha_min, double alpha_max, double *out_alpha,
			     struct ltv_err *err)
{
	double num = 0, den = 0, alpha;
	int ret;

	assert(alpha_min <= alpha_max);
	if (!isfinite(anchor))
		return err_set(err, LTV_EINVAL, "anchor calibration: anchor is %g; it must be finite",
			       anchor);
	ret = check_inputs("anchor", pred, actual, NULL, n, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++) {
		const double dp = pred[i] - anchor;

		num += dp * (actual[i] - anchor);
		den += dp * dp;
	}
	alpha = den > 0 ? num / den : 1;
	if (alpha < alpha_min)
		alpha = alpha_min;
	if (alpha > alpha_max)
		alpha = alpha_max;
	*out_alpha = alpha;
	return 0;
}

int calibration_fit_anchor(const struct calibration_param *param, double anchor,
			   const double *pred, const double *actual, size_t n,
			   struct calibration **out_cal, struct ltv_err *err)
{
	const char *why = calibration_param_check(param);
	struct calibration *cal;
	double alpha;
	int ret;

	if (why)
		return err_set(err, LTV_EINVAL, "calibration parameters: %s", why);
	ret = calibration_anchor_alpha(pred, actual, n, anchor, param->alpha_min,
				       param->alpha_max, &alpha, err);
	if (ret < 0)
		return ret;
	cal = calibration_new(CALIBRATION_ANCHOR);
	cal->anchor = anchor;
	cal->alpha = alpha;
	*out_cal = cal;
	return 0;
}

struct iso_row {
	double x;
	size_t idx;
};

/* A run of pooled points: its weighted sum and weight, and its pred range. */
struct iso_block {
	double sum_wy;
	double sum_w;
	double x_lo;
	double x_hi;
};

/*
 * Pool-adjacent-violators into cal->x / cal->y; inputs already checked.
 * perm: the rows by pred, ties by row (metrics_sort_order: a radix sort; it
 * was qsort's on (pred, row)).
 */
static void isotonic_fit_ordered(const double *pred, const double *actual, const double *weight,
				 size_t n, const size_t *perm, struct calibration *cal)
{
	struct iso_row *order = xmalloc((n ? n : 1) * sizeof(*order));
	struct iso_block *blocks = xmalloc((n ? n : 1) * sizeof(*blocks));
	size_t n_blocks = 0, n_points = 0;
	size_t i = 0;

	for (size_t r = 0; r < n; r++) {
		order[r].x = pred[perm[r]];
		order[r].idx = perm[r];
	}

	while (i < n) {
		struct iso_block cur = { 0, 0, order[i].x, order[i].x };

		/* Equal predictions enter as one point so they get one value. */
		for (; i < n && order[i].x == cur.x_lo; i++) {
			const double w = weight ? weight[order[i].idx] : 1;

			cur.sum_wy += w * actual[order[i].idx];
			cur.sum_w += w;
		}
		while (n_blocks > 0 &&
		       blocks[n_blocks - 1].sum_wy / blocks[n_blocks - 1].sum_w >
			       cur.sum_wy / cur.sum_w) {
			const struct iso_block *prev = &blocks[--n_blocks];

			cur.sum_wy += prev->sum_wy;
			cur.sum_w += prev->sum_w;
			cur.x_lo = prev->x_lo;
		}
		blocks[n_blocks++] = cur;
	}

	cal->x = xmalloc(2 * n_blocks * sizeof(*cal->x));
	cal->y = xmalloc(2 * n_blocks * sizeof(*cal->y));
	for (size_t b = 0; b < n_blocks; b++) {
		const double value = blocks[b].sum_wy / blocks[b].sum_w;

		cal->x[n_points] = blocks[b].x_lo;
		cal->y[n_points++] = value;
		if (blocks[b].x_hi != blocks[b].x_lo) {
			cal->x[n_points] = blocks[b].x_hi;
			cal->y[n_points++] = value;
		}
	}
	cal->n_points = n_points;
	free(order);
	free(blocks);
}

static void isotonic_fit(const double *pred, const double *actual, const double *weight,
			 size_t n, struct calibration *cal)
{
	size_t *perm = xmalloc((n ? n : 1) * sizeof(size_t));

	metrics_sort_order(pred, n, 0, perm);
	isotonic_fit_ordered(pred, actual, weight, n, perm, cal);
	free(perm);
}

int calibration_fit_isotonic(const double *pred, const double *actual, const double *weight,
			     size_t n, struct calibration **out_cal, struct ltv_err *err)
{
	struct calibration *cal;
	int ret;

	ret = check_inputs("isotonic", pred, actual, weight, n, err);
	if (ret < 0)
		return ret;
	cal = calibration_new(CALIBRATION_ISOTONIC);
	isotonic_fit(pred, actual, weight, n, cal);
	*out_cal = cal;
	return 0;
}

static double isotonic_value(const struct calibration *cal, double t)
{
	const size_t last = cal->n_points - 1;
	size_t lo = 0, hi = last;

	if (t <= cal->x[0])
		return cal->y[0];
	if (t >= cal->x[last])
		return cal->y[last];
	/* Invariant: x[lo] < t < x[hi]. */
	while (hi - lo > 1) {
		const size_t mid = lo + (hi - lo) / 2;

		if (cal->x[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return cal->y[lo] + (t - cal->x[lo]) / (cal->x[hi] - cal->x[lo]) * (cal->y[hi] - cal->y[lo]);
}

double calibration_apply_repeated(const struct calibration *cal, double pred,
				  struct calibration_last *last)
{
	uint64_t bits;

	memcpy(&bits, &pred, sizeof(bits));
	if (cal != last->cal || bits != last->bits) {
		last->cal = cal;
		last->bits = bits;
		calibration_apply(cal, &pred, 1, &last->value);
	}
	return last->value;
}

void calibration_apply(const struct calibration *cal, const double *pred, size_t n,
		       double *out_calibrated)
{
	for (size_t i = 0; i < n; i++) {
		const double p = pred[i];

		if (isnan(p))
			out_calibrated[i] = p;
		else if (cal->kind == CALIBRATION_ANCHOR)
			out_calibrated[i] = cal->anchor + cal->alpha * (p - cal->anchor);
		else
			out_calibrated[i] = isotonic_value(cal, p);
	}
}

int calibration_fit_best(const struct calibration_param *param, double anchor,
			 const double *pred, const double *actual, size_t n,
			 struct calibration **out_cal, struct ltv_err *err)
{
	const char *why = calibration_param_check(param);
	double *train_p = NULL, *train_a = NULL;
	size_t *perm = NULL, *train_perm = NULL;
	struct calibration *iso = NULL, *best = NULL;
	double sse_anchor = 0, sse_iso = 0;
	int ret;

	if (why)
		return err_set(err, LTV_EINVAL, "calibration parameters: %s", why);
	if (!isfinite(anchor))
		return err_set(err, LTV_EINVAL, "anchor calibration: anchor is %g; it must be finite",
			       anchor);
	ret = check_inputs("best", pred, actual, NULL, n, err);
	if (ret < 0)
		return ret;
	if (n < param->n_folds)
		return err_set(err, LTV_EINVAL,
			       "calibration: %zu validation rows cannot make %zu folds; lower n_folds or widen validation_days",
			       n, param->n_folds);

	train_p = xmalloc(n * sizeof(*train_p));
	train_a = xmalloc(n * sizeof(*train_a));
	/*
	 * The rows sorted once: a fold's training rows keep their order, so
	 * their order by (pred, row) is this one without the fold's rows,
	 * renumbered, the permutation sorting them would give.
	 */
	perm = xmalloc(n * sizeof(*perm));
	train_perm = xmalloc(n * sizeof(*train_perm));
	metrics_sort_order(pred, n, 0, perm);
	for (size_t f = 0; f < param->n_folds; f++) {
		const size_t lo = f * n / param->n_folds;
		const size_t hi = (f + 1) * n / param->n_folds;
		size_t n_train = 0;
		double alpha;

		for (size_t i = 0; i < n; i++) {
			if (i >= lo && i < hi)
				continue;
			train_p[n_train] = pred[i];
			train_a[n_train++] = actual[i];
		}
		ret = calibration_anchor_alpha(train_p, train_a, n_train, anchor, param->alpha_min,
					       param->alpha_max, &alpha, err);
		if (ret < 0)
			goto out;
		for (size_t k = 0, t = 0; k < n; k++)
			if (perm[k] < lo || perm[k] >= hi)
				train_perm[t++] = perm[k] < lo ? perm[k] : perm[k] - (hi - lo);
		iso = calibration_new(CALIBRATION_ISOTONIC);
		isotonic_fit_ordered(train_p, train_a, NULL, n_train, train_perm, iso);
		/* (this fold's iso only: a later one may get the freed one's address) */
		struct calibration_last last = { 0 };

		for (size_t i = lo; i < hi; i++) {
			const double by_anchor = anchor + alpha * (pred[i] - anchor);
			const double by_iso = calibration_apply_repeated(iso, pred[i], &last);

			sse_anchor += (by_anchor - actual[i]) * (by_anchor - actual[i]);
			sse_iso += (by_iso - actual[i]) * (by_iso - actual[i]);
		}
		calibration_free(iso);
		iso = NULL;
	}

	if (sse_iso < sse_anchor) {
		best = calibration_new(CALIBRATION_ISOTONIC);
		isotonic_fit_ordered(pred, actual, NULL, n, perm, best); /* calibration_fit_isotonic's */
	} else {
		ret = calibration_fit_anchor(param, anchor, pred, actual, n, &best, err);
	}
	if (ret < 0)
		goto out;
	best->cv_mse_anchor = sse_anchor / (double)n;
	best->cv_mse_isotonic = sse_iso / (double)n;
	*out_cal = best;
out:
	calibration_free(iso);
	free(train_p);
	free(train_a);
	free(perm);
	free(train_perm);
	return ret;
}

uint8_t *calibration_save(const struct calibration *cal, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, calibration_magic, CALIBRATION_FORMAT_VERSION);
	blob_put_u32(&w, (uint32_t)cal->kind);
	blob_put_f64(&w, cal->anchor);
	blob_put_f64(&w, cal->alpha);
	blob_put_f64(&w, cal->cv_mse_anchor);
	blob_put_f64(&w, cal->cv_mse_isotonic);
	blob_put_f64_array(&w, cal->x, cal->n_points);
	blob_put_f64_array(&w, cal->y, cal->n_points);
	return blob_writer_detach(&w, out_len);
}

/* NULL when cal obeys the invariants calibration_apply relies on, else why not. */
static const char *calibration_invalid(const struct calibration *cal)
{
	if (cal->kind == CALIBRATION_ANCHOR) {
		if (!isfinite(cal->anchor) || !isfinite(cal->alpha))
			return "anchor or alpha is not a finite number";
		if (cal->n_points != 0)
			return "an anchor calibration carries isotonic points";
		return NULL;
	}
	if (cal->kind != CALIBRATION_ISOTONIC)
		return "unknown calibration kind";
	if (cal->n_points == 0)
		return "an isotonic calibration has no points";
	for (size_t i = 0; i < cal->n_points; i++) {
		if (!isfinite(cal->x[i]) || !isfinite(cal->y[i]))
			return "an isotonic point is not a finite number";
		if (i > 0 && !(cal->x[i] > cal->x[i - 1] && cal->y[i] >= cal->y[i - 1]))
			return "isotonic points are not increasing";
	}
	return NULL;
}

int calibration_load(const void *data, size_t len, struct calibration **out_cal,
		     struct ltv_err *err)
{
	struct blob_reader r;
	struct calibration *cal = NULL;
	uint32_t version, kind;
	size_t n_x = 0, n_y = 0;
	const char *why;
	int ret;

	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, calibration_magic, CALIBRATION_FORMAT_VERSION, &version, err);
	if (ret < 0)
		return ret;
	kind = blob_get_u32(&r);
	cal = calibration_new((enum calibration_kind)kind);
	cal->anchor = blob_get_f64(&r);
	cal->alpha = blob_get_f64(&r);
	cal->cv_mse_anchor = blob_get_f64(&r);
	cal->cv_mse_isotonic = blob_get_f64(&r);
	if (blob_get_f64_array(&r, &cal->x, &n_x) < 0 ||
	    blob_get_f64_array(&r, &cal->y, &n_y) < 0) {
		ret = blob_reader_status(&r, "calibration", err);
		goto out;
	}
	ret = blob_reader_status(&r, "calibration", err);
	if (ret < 0)
		goto out;
	if (r.pos != r.len) {
		ret = err_set(err, LTV_EINVAL,
			      "calibration: model blob has %zu trailing bytes; it is corrupt",
			      r.len - r.pos);
		goto out;
	}
	if (n_x != n_y) {
		ret = err_set(err, LTV_EINVAL,
			      "calibration: model blob has %zu x but %zu y points; it is corrupt",
			      n_x, n_y);
		goto out;
	}
	cal->n_points = n_x;
	why = calibration_invalid(cal);
	if (why) {
		ret = err_set(err, LTV_EINVAL, "calibration: model blob is corrupt: %s", why);
		goto out;
	}
	*out_cal = cal;
	cal = NULL;
out:
	calibration_free(cal);
	return ret;
}
