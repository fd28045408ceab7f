/*
 * Pareto/NBD model: maximum-likelihood fit of (r, alpha, s, beta) from
 * per-customer (x, t_x, T) summaries, P(alive), the conditional expectation
 * and the probability of at least one purchase in a coming window. The
 * search and the blob layout are mle.c's, shared with BG/NBD and
 * Gamma-Gamma; this file owns the likelihood and the predictions.
 *
 * Every hypergeometric term the model needs is one integral,
 *   F(tau) = integral over u > tau of (A + u)^-p (B + u)^-q,   p + q > 1,
 * which expands in z = |A - B| / (max(A, B) + tau) < 1 as
 *   (M + tau)^-(p+q-1) / (p+q-1) 2F1(p+q-1, b; p+q; z),  M = max(A, B),
 * b the exponent of the factor with the smaller shift. That is the
 * likelihood's A0 (Fader & Hardie's two branches alpha >= beta and
 * alpha < beta are the two choices of M) and the window-purchase
 * probability's integral; each is a difference F(lo) - F(hi) of positive
 * terms, taken in log space.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ltv/mle.h"
#include "ltv/pareto_nbd.h"

#define N_PARAMS 4
/* Enough for z up to about 1 - 4e-4, i.e. alpha / beta within about 1e4 of 1. */
#define HYP_MAX_TERMS 100000L
/* Step in each log-parameter for the central-difference gradient. */
#define GRAD_STEP 1e-5

enum { P_R, P_ALPHA, P_S, P_BETA };

void pareto_nbd_param_init(struct pareto_nbd_param *param)
{
	assert(param);
	param->max_iter = MLE_DEFAULT_MAX_ITER;
	param->grad_tol = MLE_DEFAULT_GRAD_TOL;
}

const char *pareto_nbd_param_check(const struct pareto_nbd_param *param)
{
	if (!param)
		return "no parameters given";
	return mle_param_check(param->max_iter, param->grad_tol);
}

static int check_row(double x, double t_x, double T, size_t row, struct ltv_err *err)
{
	if (!isfinite(x) || x < 0 || x != floor(x))
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: x = %g is not a whole number >= 0 of repeat "
			       "transactions", row, x);
	if (!isfinite(T) || T < 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: row %zu: T = %g is not a time >= 0",
			       row, T);
	if (!isfinite(t_x) || t_x < 0 || t_x > T)
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: t_x = %g must lie in [0, T = %g]", row, t_x, T);
	if (x == 0 && t_x != 0)
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: t_x = %g with x = 0; recency of a customer "
			       "with no repeat transactions is 0", row, t_x);
	return 0;
}

int pareto_nbd_data_check(const struct pareto_nbd_data *data, struct ltv_err *err)
{
	assert(data);
	if (data->n == 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: no customers to fit on");
	if (!data->x || !data->t_x || !data->T)
		return err_set(err, LTV_EINVAL, "pareto_nbd: x, t_x and T arrays are all required");
	for (size_t i = 0; i < data->n; i++) {
		int ret = check_row(data->x[i], data->t_x[i], data->T[i], i, err);

		if (ret == 0)
			ret = mle_weight_check("pareto_nbd", data->weight, i, err);
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

/*
 * ln 2F1(a, b; a + 1; z) for a > 0, 0 < b < a + 1, 0 <= z < 1, through
 * Euler's transformation (1 - z)^(1 - b) 2F1(1, a + 1 - b; a + 1; z): the
 * latter's terms are positive with ratios below z, so the tail after a term
 * is at most term z / (1 - z) and the sum stops once that is below rounding.
 */
static int log_hyp2f1_c_a1(double a, double b, double z, double *out_value)
{
	const double c0 = a + 1 - b;
	double term = 1.0, sum = 1.0;
	long k;

	for (k = 0; k < HYP_MAX_TERMS && term * z > DBL_EPSILON * sum * (1 - z); k++) {
		term *= (c0 + (double)k) / (a + 1 + (double)k) * z;
		sum += term;
	}
	if (k == HYP_MAX_TERMS)
		return LTV_EMODEL;
	*out_value = (1 - b) * log1p(-z) + log(sum);
	return 0;
}

/* ln F(tau), F the tail integral of the opening comment; A, B > 0, p, q >= 0, p + q > 1. */
static int log_tail(double A, double p, double B, double q, double tau, double *out_value)
{
	const double a = p + q - 1;
	const double M = A >= B ? A : B;
	const double z = fabs(A - B) / (M + tau);
	double lf;
	int ret = log_hyp2f1_c_a1(a, A >= B ? q : p, z, &lf);

	if (ret < 0)
		return ret;
	*out_value = -a * log(M + tau) - log(a) + lf;
	return 0;
}

/*
 * ln of the integral over u in [lo, hi] of (A + u)^-p (B + u)^-q, -inf when
 * lo >= hi. The two tails agree to rounding when the interval is short; the
 * difference is then tiny next to whatever it is added to.
 */
static int log_integral(double A, double p, double B, double q, double lo, double hi,
			double *out_value)
{
	double l_lo, l_hi;
	int ret;

	if (!(lo < hi)) {
		*out_value = -INFINITY;
		return 0;
	}
	ret = log_tail(A, p, B, q, lo, &l_lo);
	if (ret == 0 && isinf(hi)) {
		*out_value = l_lo;
		return 0;
	}
	if (ret == 0)
		ret = log_tail(A, p, B, q, hi, &l_hi);
	if (ret < 0)
		return ret;
	*out_value = l_hi < l_lo ? l_lo + log(-expm1(l_hi - l_lo)) : -INFINITY;
	return 0;
}

/*
 * The two parts of one customer's likelihood at p = (r, alpha, s, beta),
 * without the common factor Gamma(r+x) alpha^r beta^s / Gamma(r):
 *   *out_alive = ln[(alpha+T)^-(r+x) (beta+T)^-s]   (still alive at T),
 *   *out_dead  = ln[s integral over [t_x, T] of
 *                   (alpha+u)^-(r+x) (beta+u)^-(s+1) du]   (died after t_x),
 * the second being s A0 / (r+s+x) of Fader & Hardie's note.
 */
static int log_parts(const double p[N_PARAMS], double x, double t_x, double T,
		     double *out_alive, double *out_dead)
{
	const double r = p[P_R], alpha = p[P_ALPHA], s = p[P_S], beta = p[P_BETA];
	double li;
	int ret = log_integral(alpha, r + x, beta, s + 1, t_x, T, &li);

	if (ret < 0)
		return ret;
	*out_alive = -(r + x) * log(alpha + T) - s * log(beta + T);
	*out_dead = log(s) + li;
	return 0;
}

static double log_add(double u, double v)
{
	const double top = u > v ? u : v;

	return top + log1p(exp((u > v ? v : u) - top));
}

/* One customer's log-likelihood, NaN when a series does not converge. */
static double row_log_lik_value(const double p[N_PARAMS], double x, double t_x, double T)
{
	const double r = p[P_R], alpha = p[P_ALPHA], s = p[P_S], beta = p[P_BETA];
	double alive, dead;

	if (log_parts(p, x, t_x, T, &alive, &dead) < 0)
		return NAN;
	return lngamma(r + x) - lngamma(r) + r * log(alpha) + s * log(beta) + log_add(alive, dead);
}

/*
 * row_log_lik of row `row` of a struct pareto_nbd_data, for struct mle_model;
 * grad (d/dp) by central differences in ln p.
 */
static double data_row_log_lik(const double *p, const void *data, size_t row, double *grad)
{
	const struct pareto_nbd_data *d = data;
	const double x = d->x[row], t_x = d->t_x[row], T = d->T[row];
	const double ll = row_log_lik_value(p, x, t_x, T);

	if (!grad)
		return ll;
	for (int k = 0; k < N_PARAMS; k++) {
		double q[N_PARAMS] = { p[0], p[1], p[2], p[3] }, up, down;

		q[k] = p[k] * exp(GRAD_STEP);
		up = row_log_lik_value(q, x, t_x, T);
		q[k] = p[k] * exp(-GRAD_STEP);
		down = row_log_lik_value(q, x, t_x, T);
		grad[k] = (up - down) / (2 * GRAD_STEP) / p[k];
	}
	return ll;
}

static const char *const param_names[N_PARAMS] = { "r", "alpha", "s", "beta" };

static const struct mle_model pareto_nbd_mle = {
	.name = "pareto_nbd",
	.magic = "LTVPNBD1",
	.n_params = N_PARAMS,
	.param_names = param_names,
	.unidentified_hint = "too few repeat buyers",
	.row_log_lik = data_row_log_lik,
};

static struct mle_fit fit_of(const struct pareto_nbd_model *model)
{
	struct mle_fit fit = { { 0 }, model->log_lik, model->n_customers, model->n_iter };

	fit.param[P_R] = model->r;
	fit.param[P_ALPHA] = model->alpha;
	fit.param[P_S] = model->s;
	fit.param[P_BETA] = model->beta;
	return fit;
}

static struct pareto_nbd_model *model_of(const struct mle_fit *fit)
{
	struct pareto_nbd_model *model = xcalloc(1, sizeof(*model));

	model->r = fit->param[P_R];
	model->alpha = fit->param[P_ALPHA];
	model->s = fit->param[P_S];
	model->beta = fit->param[P_BETA];
	model->log_lik = fit->log_lik;
	model->n_customers = fit->n_customers;
	model->n_iter = fit->n_iter;
	return model;
}

int pareto_nbd_fit(const struct pareto_nbd_param *param, const struct pareto_nbd_data *data,
		   struct pareto_nbd_model **out_model, struct ltv_err *err)
{
	struct mle_problem problem;
	struct mle_fit fit;
	double theta[N_PARAMS], mean_T;
	const char *why;
	int ret;

	assert(data && out_model);
	*out_model = NULL;
	why = pareto_nbd_param_check(param);
	if (why)
		return err_set(err, LTV_EINVAL, "pareto_nbd: %s", why);
	ret = pareto_nbd_data_check(data, err);
	if (ret < 0)
		return ret;
	problem = (struct mle_problem){ &pareto_nbd_mle, data, data->n, data->weight,
					param->max_iter, param->grad_tol };
	mean_T = mle_weighted_mean(data->T, data->weight, data->n);

	/* alpha and beta are time scales, so start them at the data's own scale. */
	theta[P_R] = 0;
	theta[P_ALPHA] = log(mean_T > 1e-8 ? mean_T : 1.0);
	theta[P_S] = 0;
	theta[P_BETA] = theta[P_ALPHA];
	ret = mle_fit(&problem, theta, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

int pareto_nbd_log_lik(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double *out_log_lik, struct ltv_err *err)
{
	struct mle_problem problem;
	struct mle_fit fit;
	double ll;
	int ret;

	assert(model && data && out_log_lik);
	ret = pareto_nbd_data_check(data, err);
	if (ret < 0)
		return ret;
	problem = (struct mle_problem){ &pareto_nbd_mle, data, data->n, data->weight, 0, 0 };
	fit = fit_of(model);
	ll = mle_log_lik(&problem, fit.param, NULL);
	if (isnan(ll))
		return err_set(err, LTV_EMODEL,
			       "pareto_nbd: hypergeometric series did not converge at alpha = %g, "
			       "beta = %g", model->alpha, model->beta);
	*out_log_lik = ll;
	return 0;
}

static int series_failed(const struct pareto_nbd_model *model, struct ltv_err *err)
{
	return err_set(err, LTV_EMODEL,
		       "pareto_nbd: hypergeometric series did not converge in %ld terms at "
		       "alpha = %g, beta = %g", HYP_MAX_TERMS, model->alpha, model->beta);
}

int pareto_nbd_p_alive(const struct pareto_nbd_model *model, double x, double t_x, double T,
		       double *out_p_alive, struct ltv_err *err)
{
	struct mle_fit fit;
	double alive, dead;
	int ret;

	assert(model && out_p_alive);
	fit = fit_of(model);
	ret = check_row(x, t_x, T, 0, err);
	if (ret < 0)
		return ret;
	if (log_parts(fit.param, x, t_x, T, &alive, &dead) < 0)
		return series_failed(model, err);
	*out_p_alive = 1 / (1 + exp(dead - alive));
	return 0;
}

static int check_horizon(double t, struct ltv_err *err)
{
	if (!isfinite(t) || t < 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: horizon t = %g is not a time >= 0", t);
	return 0;
}

int pareto_nbd_conditional_expected(const struct pareto_nbd_model *model, double x, double t_x,
				    double T, double t, double *out_expected,
				    struct ltv_err *err)
{
	double p_alive, log_ratio, integral, s1;
	int ret;

	assert(model && out_expected);
	s1 = model->s - 1;
	ret = check_horizon(t, err);
	if (ret == 0)
		ret = pareto_nbd_p_alive(model, x, t_x, T, &p_alive, err);
	if (ret < 0)
		return ret;
	/* (1 - e^((s-1) L)) / (s-1) with L = ln((beta+T)/(beta+T+t)), -L at s = 1. */
	log_ratio = log(model->beta + T) - log(model->beta + T + t);
	integral = s1 == 0 ? -log_ratio : -expm1(s1 * log_ratio) / s1;
	*out_expected = p_alive * (model->r + x) * (model->beta + T) / (model->alpha + T) * integral;
	return 0;
}

int pareto_nbd_p_any_purchase(const struct pareto_nbd_model *model, double x, double t_x,
			      double T, double t, double *out_p_any, struct ltv_err *err)
{
	double p_alive, li, A, B, rx;
	int ret;

	assert(model && out_p_any);
	A = model->alpha + T;
	B = model->beta + T;
	rx = model->r + x;
	ret = check_horizon(t, err);
	if (ret == 0)
		ret = pareto_nbd_p_alive(model, x, t_x, T, &p_alive, err);
	if (ret < 0)
		return ret;
	if (log_integral(A, rx + 1, B, model->s, 0, t, &li) < 0)
		return series_failed(model, err);
	*out_p_any = p_alive * exp(log(rx) + rx * log(A) + model->s * log(B) + li);
	return 0;
}

int pareto_nbd_predict(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double t, double *out_expected, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err)
{
	assert(model && data && out_expected);
	for (size_t i = 0; i < data->n; i++) {
		const double x = data->x[i], t_x = data->t_x[i], T = data->T[i];
		int ret = check_row(x, t_x, T, i, err);

		if (ret == 0)
			ret = pareto_nbd_conditional_expected(model, x, t_x, T, t, &out_expected[i],
							      err);
		if (ret == 0 && out_p_alive)
			ret = pareto_nbd_p_alive(model, x, t_x, T, &out_p_alive[i], err);
		if (ret == 0 && out_p_any)
			ret = pareto_nbd_p_any_purchase(model, x, t_x, T, t, &out_p_any[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int pareto_nbd_save(const struct pareto_nbd_model *model, uint8_t **out_data, size_t *out_len,
		    struct ltv_err *err)
{
	struct mle_fit fit;

	(void)err;
	assert(model);
	fit = fit_of(model);
	mle_save(&pareto_nbd_mle, &fit, out_data, out_len);
	return 0;
}

int pareto_nbd_load(const void *data, size_t len, struct pareto_nbd_model **out_model,
		    struct ltv_err *err)
{
	struct mle_fit fit;
	int ret;

	assert(out_model);
	*out_model = NULL;
	ret = mle_load(&pareto_nbd_mle, data, len, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

void pareto_nbd_free(struct pareto_nbd_model *model)
{
	free(model);
}
