/*
 * Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005,
 * "RFM and CLV: using iso-value curves for customer base analysis", Journal
 * of Marketing Research 42(4); Fader & Hardie 2013, "The Gamma-Gamma model
 * of monetary value"). A customer's transaction values are
 * Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers, so the mean m_x
 * of x transactions is informative about the next ones. Each customer is
 * summarised by
 *   x    number of transactions m_x averages (repeat transactions, usually),
 *   m_x  their mean value, > 0.
 * The model assumes spend is independent of the transaction process, so it
 * pairs with BG/NBD (bgnbd.h) for CLV.
 *
 * Pure model code: arrays in, numbers out, no I/O. Fitting uses GSL.
 */
#ifndef LTV_GAMMA_GAMMA_H
#define LTV_GAMMA_GAMMA_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

/* Fitting options; gamma_gamma_param_init gives the defaults. */
struct gamma_gamma_param {
	int max_iter;    /* iterations for each optimiser stage (simplex, then BFGS) */
	double grad_tol; /* converged when |gradient of the mean log-likelihood| in
			    log-parameters is below this */
};

/*
 * The customers, borrowed. weight is optional: NULL means every row counts
 * once; otherwise row i stands for weight[i] > 0 identical customers.
 */
struct gamma_gamma_data {
	size_t n;
	const double *x;
	const double *m_x;
	const double *weight;
};

struct gamma_gamma_model {
	double p, q, gamma;
	double log_lik;     /* at the fitted parameters, summed over (weighted) rows */
	double n_customers; /* sum of weights fitted on */
	uint32_t n_iter;    /* optimiser iterations used (both stages) */
};

/* Sets the defaults: max_iter 2000, grad_tol 1e-6. */
void gamma_gamma_param_init(struct gamma_gamma_param *param);
/* NULL when param is usable, else a static string naming what is wrong. */
const char *gamma_gamma_param_check(const struct gamma_gamma_param *param);

/*
 * Checks data for fitting: n >= 1, every x a whole number >= 1 (leave out
 * customers with no transactions to average), m_x finite and > 0, weights
 * > 0. Returns 0 or LTV_EINVAL with the row and field in err.
 */
int gamma_gamma_data_check(const struct gamma_gamma_data *data, struct ltv_err *err);

/*
 * Maximum-likelihood fit of p, q, gamma in log-parameters (Nelder-Mead from
 * p = 1, q = 2, gamma = mean m_x, then BFGS with the analytic gradient). On
 * success *out_model is a new model the caller frees with gamma_gamma_free.
 * Fails with LTV_EINVAL on bad param or data and LTV_EMODEL when the optimum
 * was not reached. GSL's error handler is switched off during the call and
 * restored after, so do not fit in one thread while another relies on it.
 */
int gamma_gamma_fit(const struct gamma_gamma_param *param, const struct gamma_gamma_data *data,
		    struct gamma_gamma_model **out_model, struct ltv_err *err);

/*
 * Log-likelihood of data (the density of each m_x given x, weighted) at the
 * model's parameters. Fails with LTV_EINVAL on bad data.
 */
int gamma_gamma_log_lik(const struct gamma_gamma_model *model, const struct gamma_gamma_data *data,
			double *out_log_lik, struct ltv_err *err);

/*
 * E[M | x, m_x] = (gamma + m_x x) p / (p x + q - 1), the expected value of
 * this customer's future transactions. x = 0 (m_x ignored) gives the
 * population mean p gamma / (q - 1). Fails with LTV_EINVAL on x not a whole
 * number >= 0 or m_x < 0, and LTV_EMODEL when the mean does not exist
 * (p x + q <= 1, e.g. q <= 1 for x = 0).
 */
int gamma_gamma_expected_spend(const struct gamma_gamma_model *model, double x, double m_x,
			       double *out_spend, struct ltv_err *err);

/*
 * E[M | x, m_x] for every row into out_spend (data->n doubles, owned by
 * the caller). Rows with x = 0 are allowed here. Weights are ignored.
 */
int gamma_gamma_predict(const struct gamma_gamma_model *model, const struct gamma_gamma_data *data,
			double *out_spend, struct ltv_err *err);

/*
 * Serialises the model in blob.h's format (magic "LTVGMGM1", version 1; the
 * doubles as raw IEEE bits). *out_data is new memory the caller frees.
 */
int gamma_gamma_save(const struct gamma_gamma_model *model, uint8_t **out_data, size_t *out_len,
		     struct ltv_err *err);
/* Reads a blob written by gamma_gamma_save; *out_model is freed with gamma_gamma_free. */
int gamma_gamma_load(const void *data, size_t len, struct gamma_gamma_model **out_model,
		     struct ltv_err *err);

/* Frees a model; NULL is allowed. */
void gamma_gamma_free(struct gamma_gamma_model *model);

#endif
