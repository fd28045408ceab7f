/*
 * Power-law cumulative revenue curves (conventions in include/ltv/curve.h).
 * The fit is linear in log-log space, so it is one weighted least-squares
 * solve (LAPACK's QR, dgels) on two columns; the interesting decisions are
 * which points are usable and what to do when too few are: say so, and let
 * the caller use the tier prior.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include <lapacke.h>

#include "ltv/blob.h"
#include "ltv/curve.h"

#define CURVE_MAGIC "LTVCURVE"
#define CURVE_VERSION 1

void curve_param_init(struct curve_param *p)
{
	p->shrink_k = 200.0;
}

const char *curve_param_check(const struct curve_param *p)
{
	if (!isfinite(p->shrink_k) || p->shrink_k < 0.0)
		return "shrink_k must be a finite number >= 0";
	return NULL;
}

int curve_fit(const double *days, const double *y, const double *weights, size_t n,
	      struct curve *out_curve, struct ltv_err *err)
{
	double *a = NULL, *rhs = NULL;
	double ld_min = HUGE_VAL, ld_max = -HUGE_VAL;
	size_t m = 0, row = 0;
	lapack_int info;
	int ret = 0;

	assert(out_curve && ((days && y) || n == 0));
	for (size_t i = 0; i < n; i++) {
		const double w = weights ? weights[i] : 1.0;

		if (!isfinite(days[i]) || !isfinite(y[i]) || !isfinite(w))
			return err_set(err, LTV_EINVAL, "curve: point %zu has a non-finite value", i);
		if (w < 0.0)
			return err_set(err, LTV_EINVAL, "curve: point %zu has negative weight %g", i, w);
		if (days[i] >= 1.0 && y[i] > 0.0 && w > 0.0) {
			const double ld = log(days[i]);
			m++;
			ld_min = ld < ld_min ? ld : ld_min;
			ld_max = ld > ld_max ? ld : ld_max;
		}
	}
	if (m < 2 || !(ld_max > ld_min))
		return err_set(err, LTV_EMODEL,
			       "curve: fit needs revenue per user > 0 on at least 2 distinct days "
			       "(d >= 1); got %zu usable of %zu points", m, n);
	if (m > (size_t)INT32_MAX)
		return err_set(err, LTV_EINVAL, "curve: %zu points is more than supported", m);

	/* Row i scaled by sqrt(w_i) turns weighted least squares into ordinary. */
	a = xmalloc(2 * m * sizeof(double));
	rhs = xmalloc(m * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		const double w = weights ? weights[i] : 1.0;

		if (!(days[i] >= 1.0 && y[i] > 0.0 && w > 0.0))
			continue;
		const double sw = sqrt(w);
		a[row] = sw;
		a[m + row] = sw * log(days[i]);
		rhs[row] = sw * log(y[i]);
		row++;
	}
	info = LAPACKE_dgels(LAPACK_COL_MAJOR, 'N', (lapack_int)m, 2, 1, a, (lapack_int)m, rhs,
			     (lapack_int)m);
	if (info < 0) {
		ret = err_set(err, LTV_EINTERNAL, "curve: LAPACKE_dgels rejected argument %d",
			      (int)-info);
		goto out;
	}
	if (info > 0) {
		ret = err_set(err, LTV_EMODEL, "curve: points are degenerate (LAPACKE_dgels rank %d)",
			      (int)info - 1);
		goto out;
	}
	out_curve->log_a = rhs[0];
	out_curve->b = rhs[1];
	out_curve->n_points = m;
out:
	free(rhs);
	free(a);
	return ret;
}

double curve_predict(const struct curve *c, double d)
{
	assert(d > 0.0);
	return exp(c->log_a + c->b * log(d));
}

double curve_shrink_weight(const struct curve_param *p, size_t n_users)
{
	if (n_users == 0)
		return 0.0;
	return (double)n_users / ((double)n_users + p->shrink_k);
}

void curve_shrink(const struct curve_param *p, const struct curve *own,
		  const struct curve *prior, size_t n_users, struct curve *out_curve)
{
	const double w = curve_shrink_weight(p, n_users);
	/* Both computed before writing: out_curve may be own or prior. */
	const double log_a = w * own->log_a + (1.0 - w) * prior->log_a;
	const double b = w * own->b + (1.0 - w) * prior->b;

	assert(!curve_param_check(p));
	out_curve->log_a = log_a;
	out_curve->b = b;
	out_curve->n_points = 0;
}

int curve_extrapolate(const struct curve *c, double k, double y_k, double horizon,
		      double *out_value, struct ltv_err *err)
{
	if (!isfinite(c->b))
		return err_set(err, LTV_EINVAL, "curve: exponent b is not finite");
	if (!isfinite(k) || k < 1.0)
		return err_set(err, LTV_EINVAL, "curve: observed age %g days must be >= 1", k);
	if (!isfinite(y_k) || y_k < 0.0)
		return err_set(err, LTV_EINVAL, "curve: observed value %g must be finite and >= 0", y_k);
	if (!isfinite(horizon) || horizon < k)
		return err_set(err, LTV_EINVAL,
			       "curve: horizon %g is before the observed age %g; use the observed value",
			       horizon, k);
	*out_value = y_k * pow(horizon / k, c->b > 0.0 ? c->b : 0.0);
	return 0;
}

void curve_save(const struct curve *c, uint8_t **out_buf, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, CURVE_MAGIC, CURVE_VERSION);
	blob_put_f64(&w, c->log_a);
	blob_put_f64(&w, c->b);
	blob_put_u64(&w, c->n_points);
	*out_buf = blob_writer_detach(&w, out_len);
}

int curve_load(const void *buf, size_t len, struct curve *out_curve, struct ltv_err *err)
{
	struct blob_reader r;
	struct curve c;
	uint32_t version;
	int ret;

	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, CURVE_MAGIC, CURVE_VERSION, &version, err);
	if (ret < 0)
		return ret;
	c.log_a = blob_get_f64(&r);
	c.b = blob_get_f64(&r);
	c.n_points = (size_t)blob_get_u64(&r);
	ret = blob_reader_status(&r, "curve", err);
	if (ret < 0)
		return ret;
	if (!isfinite(c.log_a) || !isfinite(c.b))
		return err_set(err, LTV_EINVAL, "curve: blob parameters are not finite");
	*out_curve = c;
	return 0;
}
