/*
 * Gamma-Gamma spend model: maximum-likelihood fit of (p, q, gamma) from each
 * customer's number of transactions x and their mean value m_x, and the
 * conditional expected spend per transaction. The likelihood and its
 * gradient are here; the search (in log-parameters, a simplex search first
 * and BFGS with the analytic gradient after) and the blob layout are the ones
 * shared with BG/NBD in mle.c.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_sf_psi.h>

#include "ltv/gamma_gamma.h"
#include "ltv/mle.h"

#define N_PARAMS 3

enum { P_P, P_Q, P_GAMMA };

void gamma_gamma_param_init(struct gamma_gamma_param *param)
{
	assert(param);
	param->max_iter = MLE_DEFAULT_MAX_ITER;
	param->grad_tol = MLE_DEFAULT_GRAD_TOL;
}

const char *gamma_gamma_param_check(const struct gamma_gamma_param *param)
{
	if (!param)
		return "no parameters given";
	return mle_param_check(param->max_iter, param->grad_tol);
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
		ret = mle_weight_check("gamma_gamma", data->weight, i, err);
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
 * The terms of a row's log density that depend on the parameters only...
 * (psi_q only in the gradient's terms)
 */
struct p_terms {
	double lg_q, log_gamma, psi_q;
};

/* ... and on the parameters and x only (the digammas only in the gradient's). */
struct x_terms {
	double lg_pxq, lg_px, log_x, psi_pxq, psi_px;
};

static void p_terms_of(const double par[N_PARAMS], void *out_terms)
{
	struct p_terms *out = out_terms;

	out->lg_q = lngamma(par[P_Q]);
	out->log_gamma = log(par[P_GAMMA]);
}

static void x_terms_of(const double par[N_PARAMS], double x, void *out_terms)
{
	struct x_terms *out = out_terms;

	const double px = par[P_P] * x;

	out->lg_pxq = lngamma(px + par[P_Q]);
	out->lg_px = lngamma(px);
	out->log_x = log(x);
}

/* p_terms_of with what the gradient needs too. */
static void grad_p_terms_of(const double par[N_PARAMS], void *out_terms)
{
	struct p_terms *out = out_terms;

	p_terms_of(par, out);
	out->psi_q = gsl_sf_psi(par[P_Q]);
}

/* x_terms_of with what the gradient needs too. */
static void grad_x_terms_of(const double par[N_PARAMS], double x, void *out_terms)
{
	struct x_terms *out = out_terms;
	const double px = par[P_P] * x;

	x_terms_of(par, x, out);
	out->psi_pxq = gsl_sf_psi(px + par[P_Q]);
	out->psi_px = gsl_sf_psi(px);
}

/*
 * One customer's log density of m_x given x at p = (p, q, gamma):
 *   ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + (px-1) ln m_x
 *   + px ln x - (px+q) ln(gamma + m_x x)
 * (the 2013 note's f(m_x | p, q, gamma; x)), from the terms above
 * (row_log_lik and sum_log_lik share it, so both give the same bits); grad,
 * when not NULL, gets d/dp (the terms then the gradient's).
 */
static double row_core(const double par[N_PARAMS], const struct p_terms *pt,
		       const struct x_terms *xt, double x, double m_x, double log_m_x,
		       double grad[N_PARAMS])
{
	const double p = par[P_P], q = par[P_Q], gamma = par[P_GAMMA];
	const double px = p * x, total = gamma + m_x * x;
	const double log_total = log(total);
	const double ll = xt->lg_pxq - xt->lg_px - pt->lg_q + q * pt->log_gamma
			  + (px - 1) * log_m_x + px * xt->log_x - (px + q) * log_total;

	if (grad) {
		const double psi_sum = xt->psi_pxq;

		grad[P_P] = x * (psi_sum - xt->psi_px + log_m_x + xt->log_x - log_total);
		grad[P_Q] = psi_sum - pt->psi_q + pt->log_gamma - log_total;
		grad[P_GAMMA] = q / gamma - (px + q) / total;
	}
	return ll;
}

/*
 * The rows mle.c sums: the data and each row's ln m_x, which does not
 * depend on the parameters, so it is taken once per fit instead of once per
 * row and evaluation (the same log, so the same bits).
 */
struct gg_rows {
	struct gamma_gamma_data d;
	double *log_m_x;
};

static void gg_rows_init(const struct gamma_gamma_data *data, struct gg_rows *out)
{
	out->d = *data;
	out->log_m_x = xmalloc((data->n ? data->n : 1) * sizeof(double));
	for (size_t i = 0; i < data->n; i++)
		out->log_m_x[i] = log(data->m_x[i]);
}

/* row_log_lik of row `row` of a struct gg_rows, for struct mle_model. */
static double data_row_log_lik(const double *par, const void *data, size_t row, double *grad)
{
	const struct gg_rows *rows = data;
	const struct gamma_gamma_data *d = &rows->d;
	struct p_terms pt;
	struct x_terms xt;

	if (grad) {
		grad_p_terms_of(par, &pt);
		grad_x_terms_of(par, d->x[row], &xt);
	} else {
		p_terms_of(par, &pt);
		x_terms_of(par, d->x[row], &xt);
	}
	return row_core(par, &pt, &xt, d->x[row], d->m_x[row], rows->log_m_x[row], grad);
}

static const double *data_counts(const void *data)
{
	return ((const struct gg_rows *)data)->d.x;
}

static double data_row_from_terms(const double *par, const void *pt, const void *xt,
				  const void *data, size_t row)
{
	const struct gg_rows *rows = data;

	return row_core(par, pt, xt, rows->d.x[row], rows->d.m_x[row], rows->log_m_x[row], NULL);
}

static double data_row_grad_from_terms(const double *par, const void *pt, const void *xt,
				       const void *data, size_t row, double *grad)
{
	const struct gg_rows *rows = data;

	return row_core(par, pt, xt, rows->d.x[row], rows->d.m_x[row], rows->log_m_x[row], grad);
}

/* For mle_log_lik's sums: the parameter terms once, the x terms once per x. */
static const struct mle_terms terms = {
	sizeof(struct p_terms), sizeof(struct x_terms), p_terms_of, x_terms_of, data_counts,
	data_row_from_terms, grad_p_terms_of, grad_x_terms_of, data_row_grad_from_terms,
};

static const char *const param_names[N_PARAMS] = { "p", "q", "gamma" };

static const struct mle_model gamma_gamma_mle = {
	.name = "gamma_gamma",
	.magic = "LTVGMGM1",
	.n_params = N_PARAMS,
	.param_names = param_names,
	.unidentified_hint = "all m_x equal",
	.row_log_lik = data_row_log_lik,
	.terms = &terms,
};

/* A model's parameters and statistics in the shared layout. */
static struct mle_fit fit_of(const struct gamma_gamma_model *model)
{
	struct mle_fit fit = { { 0 }, model->log_lik, model->n_customers, model->n_iter };

	fit.param[P_P] = model->p;
	fit.param[P_Q] = model->q;
	fit.param[P_GAMMA] = model->gamma;
	return fit;
}

/* A new model from a fit's parameters and statistics. */
static struct gamma_gamma_model *model_of(const struct mle_fit *fit)
{
	struct gamma_gamma_model *model = xcalloc(1, sizeof(*model));

	model->p = fit->param[P_P];
	model->q = fit->param[P_Q];
	model->gamma = fit->param[P_GAMMA];
	model->log_lik = fit->log_lik;
	model->n_customers = fit->n_customers;
	model->n_iter = fit->n_iter;
	return model;
}

int gamma_gamma_fit(const struct gamma_gamma_param *param, const struct gamma_gamma_data *data,
		    struct gamma_gamma_model **out_model, struct ltv_err *err)
{
	struct mle_problem problem;
	struct gg_rows rows;
	struct mle_fit fit;
	double theta[N_PARAMS];
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
	gg_rows_init(data, &rows);
	problem = (struct mle_problem){ &gamma_gamma_mle, &rows, data->n, data->weight,
					param->max_iter, param->grad_tol };

	/* p = 1, q = 2 make the population mean p gamma / (q - 1) equal gamma. */
	theta[P_P] = 0;
	theta[P_Q] = log(2.0);
	theta[P_GAMMA] = log(mle_weighted_mean(data->m_x, data->weight, data->n));
	ret = mle_fit(&problem, theta, &fit, err);
	free(rows.log_m_x);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

int gamma_gamma_log_lik(const struct gamma_gamma_model *model, const struct gamma_gamma_data *data,
			double *out_log_lik, struct ltv_err *err)
{
	struct mle_problem problem;
	struct gg_rows rows;
	struct mle_fit fit;
	int ret;

	assert(model && data && out_log_lik);
	ret = gamma_gamma_data_check(data, err);
	if (ret < 0)
		return ret;
	gg_rows_init(data, &rows);
	problem = (struct mle_problem){ &gamma_gamma_mle, &rows, data->n, data->weight, 0, 0 };
	fit = fit_of(model);
	*out_log_lik = mle_log_lik(&problem, fit.param, NULL);
	free(rows.log_m_x);
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
	struct mle_fit fit;

	(void)err;
	assert(model);
	fit = fit_of(model);
	mle_save(&gamma_gamma_mle, &fit, out_data, out_len);
	return 0;
}

int gamma_gamma_load(const void *data, size_t len, struct gamma_gamma_model **out_model,
		     struct ltv_err *err)
{
	struct mle_fit fit;
	int ret;

	assert(out_model);
	*out_model = NULL;
	ret = mle_load(&gamma_gamma_mle, data, len, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

void gamma_gamma_free(struct gamma_gamma_model *model)
{
	free(model);
}
