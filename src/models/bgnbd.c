/*
 * BG/NBD model: maximum-likelihood fit of (r, alpha, a, b) from per-customer
 * (x, t_x, T) summaries, the conditional expectation of future transactions
 * and P(alive). The likelihood and its gradient are here; the search (in
 * log-parameters, a simplex search from a crude start, then BFGS with the
 * analytic gradient to a tight gradient norm) and the blob layout are the
 * ones shared with Gamma-Gamma in mle.c.
 * The Gaussian hypergeometric function in the conditional expectation is
 * summed here rather than by GSL, so scoring needs no global error handler
 * and can run in parallel.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_sf_psi.h>

#include "ltv/bgnbd.h"
#include "ltv/mle.h"

#define N_PARAMS 4
#define HYP_MAX_TERMS 10000000L
/* Within this of a = 1, eq. (10) is 0/0; it is taken as the mean of a = 1 +- this. */
#define A_NEAR_ONE 1e-6

enum { P_R, P_ALPHA, P_A, P_B };

void bgnbd_param_init(struct bgnbd_param *param)
{
	assert(param);
	param->max_iter = MLE_DEFAULT_MAX_ITER;
	param->grad_tol = MLE_DEFAULT_GRAD_TOL;
}

const char *bgnbd_param_check(const struct bgnbd_param *param)
{
	if (!param)
		return "no parameters given";
	return mle_param_check(param->max_iter, param->grad_tol);
}

static int check_row(double x, double t_x, double T, size_t row, struct ltv_err *err)
{
	if (!isfinite(x) || x < 0 || x != floor(x))
		return err_set(err, LTV_EINVAL,
			       "bgnbd: row %zu: x = %g is not a whole number >= 0 of repeat transactions",
			       row, x);
	if (!isfinite(T) || T < 0)
		return err_set(err, LTV_EINVAL, "bgnbd: row %zu: T = %g is not a time >= 0", row, T);
	if (!isfinite(t_x) || t_x < 0 || t_x > T)
		return err_set(err, LTV_EINVAL,
			       "bgnbd: row %zu: t_x = %g must lie in [0, T = %g]", row, t_x, T);
	return 0;
}

int bgnbd_data_check(const struct bgnbd_data *data, struct ltv_err *err)
{
	assert(data);
	if (data->n == 0)
		return err_set(err, LTV_EINVAL, "bgnbd: no customers to fit on");
	if (!data->x || !data->t_x || !data->T)
		return err_set(err, LTV_EINVAL, "bgnbd: x, t_x and T arrays are all required");
	for (size_t i = 0; i < data->n; i++) {
		int ret = check_row(data->x[i], data->t_x[i], data->T[i], i, err);

		if (ret == 0)
			ret = mle_weight_check("bgnbd", data->weight, i, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static double lngamma(double v)
{
	int sign;

	return lgamma_r(v, &sign);
}

/* The terms of a row's log-likelihood that depend on p only (the digammas: the gradient's). */
struct p_terms {
	double lg_r, log_alpha, lg_ab, lg_b, log_a;
	double psi_r, psi_ab, psi_b;
};

/* ... and on p and the repeat count x only (log_bx1 only when x > 0; digammas as above). */
struct x_terms {
	double lg_rx, lg_bx, lg_abx, log_bx1;
	double psi_rx, psi_bx, psi_abx;
};

static void p_terms_of(const double p[N_PARAMS], void *out_terms)
{
	struct p_terms *out = out_terms;

	const double r = p[P_R], alpha = p[P_ALPHA], a = p[P_A], b = p[P_B];

	out->lg_r = lngamma(r);
	out->log_alpha = log(alpha);
	out->lg_ab = lngamma(a + b);
	out->lg_b = lngamma(b);
	out->log_a = log(a);
}

static void x_terms_of(const double p[N_PARAMS], double x, void *out_terms)
{
	struct x_terms *out = out_terms;

	const double r = p[P_R], a = p[P_A], b = p[P_B];

	out->lg_rx = lngamma(r + x);
	out->lg_bx = lngamma(b + x);
	out->lg_abx = lngamma(a + b + x);
	out->log_bx1 = x > 0 ? log(b + x - 1) : 0;
}

/* p_terms_of with what the gradient needs too. */
static void grad_p_terms_of(const double p[N_PARAMS], void *out_terms)
{
	struct p_terms *out = out_terms;

	p_terms_of(p, out);
	out->psi_r = gsl_sf_psi(p[P_R]);
	out->psi_ab = gsl_sf_psi(p[P_A] + p[P_B]);
	out->psi_b = gsl_sf_psi(p[P_B]);
}

/* x_terms_of with what the gradient needs too. */
static void grad_x_terms_of(const double p[N_PARAMS], double x, void *out_terms)
{
	struct x_terms *out = out_terms;

	x_terms_of(p, x, out);
	out->psi_rx = gsl_sf_psi(p[P_R] + x);
	out->psi_bx = gsl_sf_psi(p[P_B] + x);
	out->psi_abx = gsl_sf_psi(p[P_A] + p[P_B] + x);
}

/*
 * One customer's log-likelihood at p = (r, alpha, a, b):
 *   ln[ B(a, b+x) / B(a, b) * Gamma(r+x) alpha^r / Gamma(r) ]
 *   + ln[ (alpha+T)^-(r+x) + [x > 0] a/(b+x-1) (alpha+t_x)^-(r+x) ],
 * the second bracket summed in log space (log-sum-exp), from the terms
 * above (row_log_lik and sum_log_lik share this, so both give the same
 * bits). When grad is not NULL it receives d/dp of that value (the terms
 * then the gradient's).
 */
static double row_core(const double p[N_PARAMS], const struct p_terms *pt,
		       const struct x_terms *xt, double x, double t_x, double T,
		       double grad[N_PARAMS])
{
	const double r = p[P_R], alpha = p[P_ALPHA], a = p[P_A], b = p[P_B];
	const double a1 = xt->lg_rx - pt->lg_r + r * pt->log_alpha;
	const double a2 = pt->lg_ab + xt->lg_bx - pt->lg_b - xt->lg_abx;
	const double log_T = log(alpha + T), a3 = -(r + x) * log_T;
	double a4 = -INFINITY, log_t_x = 0, top, e3, e4, w4 = 0, ll;

	if (x > 0) {
		log_t_x = log(alpha + t_x);
		a4 = pt->log_a - xt->log_bx1 - (r + x) * log_t_x;
	}
	top = a3 > a4 ? a3 : a4;
	e3 = exp(a3 - top);
	e4 = exp(a4 - top);
	ll = a1 + a2 + top + log(e3 + e4);
	if (!grad)
		return ll;

	/* Share of the second bracket that comes from the "died after t_x" term. */
	if (x > 0)
		w4 = e4 / (e3 + e4);
	grad[P_R] = xt->psi_rx - pt->psi_r + pt->log_alpha
		    - (1 - w4) * log_T - w4 * (x > 0 ? log_t_x : log(alpha + t_x));
	grad[P_ALPHA] = r / alpha - (1 - w4) * (r + x) / (alpha + T)
			- w4 * (r + x) / (alpha + t_x);
	grad[P_A] = pt->psi_ab - xt->psi_abx + (x > 0 ? w4 / a : 0);
	grad[P_B] = pt->psi_ab + xt->psi_bx - pt->psi_b - xt->psi_abx
		    - (x > 0 ? w4 / (b + x - 1) : 0);
	return ll;
}

/* row_log_lik of row `row` of a struct bgnbd_data, for struct mle_model. */
static double data_row_log_lik(const double *p, const void *data, size_t row, double *grad)
{
	const struct bgnbd_data *d = data;
	struct p_terms pt;
	struct x_terms xt;

	if (grad) {
		grad_p_terms_of(p, &pt);
		grad_x_terms_of(p, d->x[row], &xt);
	} else {
		p_terms_of(p, &pt);
		x_terms_of(p, d->x[row], &xt);
	}
	return row_core(p, &pt, &xt, d->x[row], d->t_x[row], d->T[row], grad);
}

static const double *data_counts(const void *data)
{
	return ((const struct bgnbd_data *)data)->x;
}

static double data_row_from_terms(const double *p, const void *pt, const void *xt,
				  const void *data, size_t row)
{
	const struct bgnbd_data *d = data;

	return row_core(p, pt, xt, d->x[row], d->t_x[row], d->T[row], NULL);
}

static double data_row_grad_from_terms(const double *p, const void *pt, const void *xt,
				       const void *data, size_t row, double *grad)
{
	const struct bgnbd_data *d = data;

	return row_core(p, pt, xt, d->x[row], d->t_x[row], d->T[row], grad);
}

/* For mle_log_lik's sums: the p terms once, the x terms once per count. */
static const struct mle_terms terms = {
	sizeof(struct p_terms), sizeof(struct x_terms), p_terms_of, x_terms_of, data_counts,
	data_row_from_terms, grad_p_terms_of, grad_x_terms_of, data_row_grad_from_terms,
};

static const char *const param_names[N_PARAMS] = { "r", "alpha", "a", "b" };

static const struct mle_model bgnbd_mle = {
	.name = "bgnbd",
	.magic = "LTVBGNB1",
	.n_params = N_PARAMS,
	.param_names = param_names,
	.unidentified_hint = "too few repeat buyers",
	.row_log_lik = data_row_log_lik,
	.terms = &terms,
};

/* A model's parameters and statistics in the shared layout. */
static struct mle_fit fit_of(const struct bgnbd_model *model)
{
	struct mle_fit fit = { { 0 }, model->log_lik, model->n_customers, model->n_iter };

	fit.param[P_R] = model->r;
	fit.param[P_ALPHA] = model->alpha;
	fit.param[P_A] = model->a;
	fit.param[P_B] = model->b;
	return fit;
}

/* A new model from a fit's parameters and statistics. */
static struct bgnbd_model *model_of(const struct mle_fit *fit)
{
	struct bgnbd_model *model = xcalloc(1, sizeof(*model));

	model->r = fit->param[P_R];
	model->alpha = fit->param[P_ALPHA];
	model->a = fit->param[P_A];
	model->b = fit->param[P_B];
	model->log_lik = fit->log_lik;
	model->n_customers = fit->n_customers;
	model->n_iter = fit->n_iter;
	return model;
}

int bgnbd_fit(const struct bgnbd_param *param, const struct bgnbd_data *data,
	      struct bgnbd_model **out_model, struct ltv_err *err)
{
	struct mle_problem problem;
	struct mle_fit fit;
	double theta[N_PARAMS], mean_T;
	const char *why;
	int ret;

	assert(data && out_model);
	*out_model = NULL;
	why = bgnbd_param_check(param);
	if (why)
		return err_set(err, LTV_EINVAL, "bgnbd: %s", why);
	ret = bgnbd_data_check(data, err);
	if (ret < 0)
		return ret;
	problem = (struct mle_problem){ &bgnbd_mle, data, data->n, data->weight,
					param->max_iter, param->grad_tol };
	mean_T = mle_weighted_mean(data->T, data->weight, data->n);

	/* alpha is a time scale, so start it at the data's own scale. */
	theta[P_R] = 0;
	theta[P_ALPHA] = log(mean_T > 1e-8 ? mean_T : 1.0);
	theta[P_A] = 0;
	theta[P_B] = 0;
	ret = mle_fit(&problem, theta, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

int bgnbd_log_lik(const struct bgnbd_model *model, const struct bgnbd_data *data,
		  double *out_log_lik, struct ltv_err *err)
{
	struct mle_problem problem;
	struct mle_fit fit;
	int ret;

	assert(model && data && out_log_lik);
	ret = bgnbd_data_check(data, err);
	if (ret < 0)
		return ret;
	problem = (struct mle_problem){ &bgnbd_mle, data, data->n, data->weight, 0, 0 };
	fit = fit_of(model);
	*out_log_lik = mle_log_lik(&problem, fit.param, NULL);
	return 0;
}

double bgnbd_p_alive(const struct bgnbd_model *model, double x, double t_x, double T)
{
	assert(model);
	if (x <= 0)
		return 1.0;
	return 1.0 / (1.0 + model->a / (model->b + x - 1)
				    * exp((model->r + x) * (log(model->alpha + T)
							    - log(model->alpha + t_x))));
}

double bgnbd_p_any_purchase(const struct bgnbd_model *model, double x, double t_x, double T,
			    double t)
{
	assert(model);
	/* -expm1 keeps the digits of a short window's small probability. */
	return bgnbd_p_alive(model, x, t_x, T)
	       * -expm1((model->r + x) * (log(model->alpha + T) - log(model->alpha + T + t)));
}

/*
 * Gauss series for 2F1(A, B; C; z), 0 <= z < 1, C > 0. Callers arrange
 * C - A - B >= 0 so the terms decay at least like z^k / k. Stops once the
 * terms' ratio is bounded by z from then on and the geometric bound on the
 * tail is below rounding.
 */
static int hyp2f1_series(double A, double B, double C, double z, double *out_value)
{
	double term = 1.0, sum = 1.0;

	for (long k = 0; k < HYP_MAX_TERMS; k++) {
		const double kd = (double)k;

		term *= (A + kd) * (B + kd) / ((C + kd) * (kd + 1)) * z;
		sum += term;
		if (term == 0)
			break;
		if (A + kd + 1 > 0 && B + kd + 1 > 0
		    && (A + kd + 1) * (B + kd + 1) <= (C + kd + 1) * (kd + 2)
		    && fabs(term) * z <= DBL_EPSILON * fabs(sum) * (1 - z))
			break;
		if (k == HYP_MAX_TERMS - 1)
			return LTV_EMODEL;
	}
	*out_value = sum;
	return 0;
}

/*
 * (a+b+x-1)/(a-1) * [1 - G] with
 * G = ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z). By Euler's
 * transformation G also equals (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z);
 * the two series' C-A-B are negatives of each other, and the one with
 * C-A-B >= 0 converges fast near z = 1 where the other does not.
 */
static int expected_alive(double r, double alpha, double a, double b, double x, double T,
			  double t, double *out_value)
{
	const double z = t / (alpha + T + t);
	const double log_1mz = log(alpha + T) - log(alpha + T + t);
	const double C = a + b + x - 1;
	double F, G;
	int ret;

	if (r + x + 1 - a >= 0) {
		ret = hyp2f1_series(a + b - 1 - r, a - 1, C, z, &F);
		G = exp((a - 1) * log_1mz) * F;
	} else {
		ret = hyp2f1_series(r + x, b + x, C, z, &F);
		G = exp((r + x) * log_1mz) * F;
	}
	if (ret < 0)
		return ret;
	*out_value = C / (a - 1) * (1 - G);
	return 0;
}

int bgnbd_expected(const struct bgnbd_model *model, double x, double t_x, double T,
		   double t, double *out_expected, struct ltv_err *err)
{
	double value = 0, lo = 0, hi = 0;
	int ret;

	assert(model && out_expected);
	ret = check_row(x, t_x, T, 0, err);
	if (ret < 0)
		return ret;
	if (!isfinite(t) || t < 0)
		return err_set(err, LTV_EINVAL, "bgnbd: horizon t = %g is not a time >= 0", t);
	if (t == 0) {
		*out_expected = 0;
		return 0;
	}
	if (fabs(model->a - 1) < A_NEAR_ONE) {
		ret = expected_alive(model->r, model->alpha, 1 - A_NEAR_ONE, model->b, x, T, t, &lo);
		if (ret == 0)
			ret = expected_alive(model->r, model->alpha, 1 + A_NEAR_ONE, model->b, x, T,
					     t, &hi);
		value = 0.5 * (lo + hi);
	} else {
		ret = expected_alive(model->r, model->alpha, model->a, model->b, x, T, t, &value);
	}
	if (ret < 0)
		return err_set(err, LTV_EMODEL,
			       "bgnbd: hypergeometric series for t = %g, T = %g did not converge "
			       "in %ld terms; use a coarser time unit", t, T, HYP_MAX_TERMS);
	*out_expected = value * bgnbd_p_alive(model, x, t_x, T);
	return 0;
}

int bgnbd_predict(const struct bgnbd_model *model, const struct bgnbd_data *data, double t,
		  double *out_expected, double *out_p_alive, struct ltv_err *err)
{
	assert(model && data && out_expected);
	for (size_t i = 0; i < data->n; i++) {
		int ret = check_row(data->x[i], data->t_x[i], data->T[i], i, err);

		if (ret == 0)
			ret = bgnbd_expected(model, data->x[i], data->t_x[i], data->T[i], t,
					     &out_expected[i], err);
		if (ret < 0)
			return ret;
		if (out_p_alive)
			out_p_alive[i] = bgnbd_p_alive(model, data->x[i], data->t_x[i], data->T[i]);
	}
	return 0;
}

int bgnbd_save(const struct bgnbd_model *model, uint8_t **out_data, size_t *out_len,
	       struct ltv_err *err)
{
	struct mle_fit fit;

	(void)err;
	assert(model);
	fit = fit_of(model);
	mle_save(&bgnbd_mle, &fit, out_data, out_len);
	return 0;
}

int bgnbd_load(const void *data, size_t len, struct bgnbd_model **out_model,
	       struct ltv_err *err)
{
	struct mle_fit fit;
	int ret;

	assert(out_model);
	*out_model = NULL;
	ret = mle_load(&bgnbd_mle, data, len, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

void bgnbd_free(struct bgnbd_model *model)
{
	free(model);
}
