/*
 * Gamma-Gamma spend model: maximum-likelihood fit of (p, q, gamma) from each
 * customer's number of transactions x and their mean value m_x, and the
 * conditional expected spend per transaction. As in bgnbd.c the fit runs in
 * log-parameters, a simplex search first and BFGS with the analytic gradient
 * after; the optimiser plumbing is repeated here rather than shared so each
 * model file stands alone (it is some 150 lines and tuned per model).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_psi.h>

#include "ltv/blob.h"
#include "ltv/mle.h"
#include "ltv/gamma_gamma.h"

#define N_PARAMS 3
#define FORMAT_VERSION 1

enum { P_P, P_Q, P_GAMMA };

void gamma_gamma_param_init(struct gamma_gamma_param *param)
{
	assert(param);
	param->max_iter = 2000;
	param->grad_tol = 1e-6;
}

const char *gamma_gamma_param_check(const struct gamma_gamma_param *param)
{
	if (!param)
		return "no parameters given";
	if (param->max_iter < 1)
		return "max_iter must be at least 1";
	if (!(param->grad_tol > 0) || !isfinite(param->grad_tol))
		return "grad_tol must be a positive number";
	return NULL;
}

static int check_x(double x, double min_x, size_t row, struct ltv_err *err)
{
	if (!isfinite(x) || x < min_x || x != floor(x))
		return err_set(err, LTV_EINVAL,
			       "gamma_gamma: row %zu: x = %g is not a whole number >= %g of transactions",
			       row, x, min_x);
	return 0;
}

int gamma_gamma_data_check(const struct gamma_gamma_data *data, struct ltv_err *err)
{
	assert(data);
	if (data->n == 0)
		return err_set(err, LTV_EINVAL, "gamma_gamma: no customers to fit on");
	if (!data->x || !data->m_x)
		return err_set(err, LTV_EINVAL, "gamma_gamma: x and m_x arrays are both required");
	for (size_t i = 0; i < data->n; i++) {
		int ret = check_x(data->x[i], 1, i, err);

		if (ret < 0)
			return ret;
		if (!isfinite(data->m_x[i]) || !(data->m_x[i] > 0))
			return err_set(err, LTV_EINVAL,
				       "gamma_gamma: row %zu: mean spend m_x = %g must be > 0; "
				       "leave customers with zero spend out of the fit",
				       i, data->m_x[i]);
		if (data->weight && (!isfinite(data->weight[i]) || !(data->weight[i] > 0)))
			return err_set(err, LTV_EINVAL,
				       "gamma_gamma: row %zu: weight %g must be a positive number",
				       i, data->weight[i]);
	}
	return 0;
}

static double lngamma(double v)
{
	int sign;

	return lgamma_r(v, &sign);
}

/*
 * One customer's log density of m_x given x at p = (p, q, gamma):
 *   ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + (px-1) ln m_x
 *   + px ln x - (px+q) ln(gamma + m_x x)
 * (the 2013 note's f(m_x | p, q, gamma; x)); grad, when not NULL, gets d/dp.
 */
static double row_log_lik(const double par[N_PARAMS], double x, double m_x,
			  double grad[N_PARAMS])
{
	const double p = par[P_P], q = par[P_Q], gamma = par[P_GAMMA];
	const double px = p * x, total = gamma + m_x * x;
	const double ll = lngamma(px + q) - lngamma(px) - lngamma(q) + q * log(gamma)
			  + (px - 1) * log(m_x) + px * log(x) - (px + q) * log(total);

	if (grad) {
		const double psi_sum = gsl_sf_psi(px + q);

		grad[P_P] = x * (psi_sum - gsl_sf_psi(px) + log(m_x) + log(x) - log(total));
		grad[P_Q] = psi_sum - gsl_sf_psi(q) + log(gamma) - log(total);
		grad[P_GAMMA] = q / gamma - (px + q) / total;
	}
	return ll;
}

/* Weighted log-likelihood and (when grad is not NULL) its gradient in p. */
static double data_log_lik(const double par[N_PARAMS], const struct gamma_gamma_data *data,
			   double grad[N_PARAMS])
{
	double ll = 0;

	if (grad)
		memset(grad, 0, N_PARAMS * sizeof(*grad));
	for (size_t i = 0; i < data->n; i++) {
		const double w = data->weight ? data->weight[i] : 1.0;
		double g[N_PARAMS];

		ll += w * row_log_lik(par, data->x[i], data->m_x[i], grad ? g : NULL);
		if (grad)
			for (int k = 0; k < N_PARAMS; k++)
				grad[k] += w * g[k];
	}
	return ll;
}

/* data_log_lik behind the mle_log_lik_fn signature. */
static double problem_log_lik(const double *p, const void *data, double *grad)
{
	return data_log_lik(p, data, grad);
}

int gamma_gamma_fit(const struct gamma_gamma_param *param, const struct gamma_gamma_data *data,
		    struct gamma_gamma_model **out_model, struct ltv_err *err)
{
	struct mle_problem obj = { "gamma_gamma", N_PARAMS, problem_log_lik, data, 0,
				   param->max_iter, param->grad_tol };
	struct gamma_gamma_model *model = NULL;
	gsl_error_handler_t *old_handler;
	double theta[N_PARAMS], mean_m = 0, f = 0, grad_norm = 0;
	uint32_t n_iter = 0;
	const char *why;
	int ret;

	assert(data && out_model);
	*out_model = NULL;
	why = gamma_gamma_param_check(param);
	if (why)
		return err_set(err, LTV_EINVAL, "gamma_gamma: %s", why);
	ret = gamma_gamma_data_check(data, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < data->n; i++) {
		const double w = data->weight ? data->weight[i] : 1.0;

		obj.total_weight += w;
		mean_m += w * data->m_x[i];
	}
	mean_m /= obj.total_weight;

	/* p = 1, q = 2 make the population mean p gamma / (q - 1) equal gamma. */
	theta[P_P] = 0;
	theta[P_Q] = log(2.0);
	theta[P_GAMMA] = log(mean_m);
	old_handler = gsl_set_error_handler_off();
	ret = mle_minimise(&obj, theta, &f, &grad_norm, &n_iter, err);
	gsl_set_error_handler(old_handler);
	if (ret < 0)
		return ret;

	for (int k = 0; k < N_PARAMS; k++)
		if (!(fabs(theta[k]) < MLE_LOG_PARAM_LIMIT - 1))
			return err_set(err, LTV_EMODEL,
				       "gamma_gamma: fit ran off to p=%g q=%g gamma=%g; the data "
				       "(%zu rows) do not identify the model, e.g. all m_x equal",
				       exp(theta[P_P]), exp(theta[P_Q]), exp(theta[P_GAMMA]), data->n);
	if (!(grad_norm <= param->grad_tol))
		return err_set(err, LTV_EMODEL,
			       "gamma_gamma: fit did not converge in %u iterations (gradient norm %g > "
			       "grad_tol %g); raise max_iter or grad_tol",
			       n_iter, grad_norm, param->grad_tol);

	model = xcalloc(1, sizeof(*model));
	model->p = exp(theta[P_P]);
	model->q = exp(theta[P_Q]);
	model->gamma = exp(theta[P_GAMMA]);
	model->log_lik = -f * obj.total_weight;
	model->n_customers = obj.total_weight;
	model->n_iter = n_iter;
	*out_model = model;
	return 0;
}

int gamma_gamma_log_lik(const struct gamma_gamma_model *model, const struct gamma_gamma_data *data,
			double *out_log_lik, struct ltv_err *err)
{
	double par[N_PARAMS];
	int ret;

	assert(model && data && out_log_lik);
	ret = gamma_gamma_data_check(data, err);
	if (ret < 0)
		return ret;
	par[P_P] = model->p;
	par[P_Q] = model->q;
	par[P_GAMMA] = model->gamma;
	*out_log_lik = data_log_lik(par, data, NULL);
	return 0;
}

static int expected_row(const struct gamma_gamma_model *model, double x, double m_x, size_t row,
			double *out_spend, struct ltv_err *err)
{
	const double denom = model->p * x + model->q - 1;
	int ret = check_x(x, 0, row, err);

	if (ret < 0)
		return ret;
	if (x == 0)
		m_x = 0;
	else if (!isfinite(m_x) || m_x < 0)
		return err_set(err, LTV_EINVAL,
			       "gamma_gamma: row %zu: mean spend m_x = %g must be >= 0", row, m_x);
	if (!(denom > 0))
		return err_set(err, LTV_EMODEL,
			       "gamma_gamma: row %zu: expected spend is infinite for x = %g "
			       "(p x + q - 1 = %g <= 0)", row, x, denom);
	*out_spend = (model->gamma + m_x * x) * model->p / denom;
	return 0;
}

int gamma_gamma_expected_spend(const struct gamma_gamma_model *model, double x, double m_x,
			       double *out_spend, struct ltv_err *err)
{
	assert(model && out_spend);
	return expected_row(model, x, m_x, 0, out_spend, err);
}

int gamma_gamma_predict(const struct gamma_gamma_model *model, const struct gamma_gamma_data *data,
			double *out_spend, struct ltv_err *err)
{
	assert(model && data && out_spend);
	for (size_t i = 0; i < data->n; i++) {
		int ret = expected_row(model, data->x[i], data->m_x[i], i, &out_spend[i], err);

		if (ret < 0)
			return ret;
	}
	return 0;
}

int gamma_gamma_save(const struct gamma_gamma_model *model, uint8_t **out_data, size_t *out_len,
		     struct ltv_err *err)
{
	struct blob_writer w;

	(void)err;
	assert(model && out_data && out_len);
	blob_writer_init(&w);
	blob_put_header(&w, "LTVGMGM1", FORMAT_VERSION);
	blob_put_f64(&w, model->p);
	blob_put_f64(&w, model->q);
	blob_put_f64(&w, model->gamma);
	blob_put_f64(&w, model->log_lik);
	blob_put_f64(&w, model->n_customers);
	blob_put_u32(&w, model->n_iter);
	*out_data = blob_writer_detach(&w, out_len);
	return 0;
}

int gamma_gamma_load(const void *data, size_t len, struct gamma_gamma_model **out_model,
		     struct ltv_err *err)
{
	struct blob_reader r;
	struct gamma_gamma_model m;
	uint32_t version;
	int ret;

	assert(out_model);
	*out_model = NULL;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, "LTVGMGM1", FORMAT_VERSION, &version, err);
	if (ret < 0)
		return ret;
	m.p = blob_get_f64(&r);
	m.q = blob_get_f64(&r);
	m.gamma = blob_get_f64(&r);
	m.log_lik = blob_get_f64(&r);
	m.n_customers = blob_get_f64(&r);
	m.n_iter = blob_get_u32(&r);
	ret = blob_reader_status(&r, "gamma_gamma", err);
	if (ret < 0)
		return ret;
	if (r.pos != len)
		return err_set(err, LTV_EINVAL, "gamma_gamma: model blob has %zu trailing bytes",
			       len - r.pos);
	if (!(m.p > 0 && m.q > 0 && m.gamma > 0) || !isfinite(m.p) || !isfinite(m.q)
	    || !isfinite(m.gamma))
		return err_set(err, LTV_EINVAL,
			       "gamma_gamma: model blob holds invalid parameters p=%g q=%g gamma=%g",
			       m.p, m.q, m.gamma);
	*out_model = xmalloc(sizeof(**out_model));
	**out_model = m;
	return 0;
}

void gamma_gamma_free(struct gamma_gamma_model *model)
{
	free(model);
}
