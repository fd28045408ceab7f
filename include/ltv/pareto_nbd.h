/*
 * Pareto/NBD purchase-count model (Schmittlein, Morrison & Colombo 1987,
 * "Counting your customers: who are they and what will they do next?",
 * Management Science 33(1); expressions from Fader & Hardie 2005, "A note on
 * deriving the Pareto/NBD model and related expressions"). While alive a
 * customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); the
 * lifetime is exponential with rate mu ~ Gamma(s, beta), independent of
 * lambda, so unlike BG/NBD (bgnbd.h) a customer can drop out at any moment,
 * including before a first repeat purchase. Each customer is summarised by
 *   x    number of repeat transactions (purchases after the first) in the
 *        calibration period, a whole number >= 0,
 *   t_x  time of the last repeat transaction since the first purchase
 *        (0 when x == 0),
 *   T    time from the first purchase to the end of calibration,
 * all in one time unit the caller chooses (weeks in the papers); alpha and
 * beta are in that unit and the predictions are too.
 *
 * Pure model code: arrays in, numbers out, no I/O. Fitting uses GSL; the
 * likelihood and the predictions evaluate their hypergeometric integrals
 * themselves (a 2F1 series when it converges fast, Gauss-Legendre
 * quadrature otherwise, for any alpha / beta), so scoring needs no GSL error
 * handler and may run in several threads.
 */
#ifndef LTV_PARETO_NBD_H
#define LTV_PARETO_NBD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

/* Fitting options; pareto_nbd_param_init gives the defaults. */
struct pareto_nbd_param {
	int max_iter;    /* iterations for each optimiser stage (simplex, then BFGS) */
	double grad_tol; /* converged when |gradient of the mean log-likelihood| in
			    log-parameters is below this */
	int tail_memo;   /* 1 (default): the search keeps each row's series tails for the
			    rows after it (the same fit to the bit); 0: computes every one */
	int node_memo;   /* 1 (default): the search keeps each quadrature panel's nodes
			    (e^v, ln(e^v + d)) for the rows after it (the same fit to the
			    bit); 0: computes every one */
};

/*
 * The customers to fit on or score, borrowed. weight is optional: NULL means
 * every row counts once; otherwise row i stands for weight[i] > 0 identical
 * customers, so rows may be aggregated (x, t_x, T) triples.
 */
struct pareto_nbd_data {
	size_t n;
	const double *x;
	const double *t_x;
	const double *T;
	const double *weight;
};

struct pareto_nbd_model {
	double r, alpha, s, beta;
	double log_lik;     /* at the fitted parameters, summed over (weighted) rows */
	double n_customers; /* sum of weights fitted on */
	uint32_t n_iter;    /* optimiser iterations used (both stages) */
};

/* Sets the defaults: max_iter 2000, grad_tol 1e-6. */
void pareto_nbd_param_init(struct pareto_nbd_param *param);
/* NULL when param is usable, else a static string naming what is wrong. */
const char *pareto_nbd_param_check(const struct pareto_nbd_param *param);

/*
 * Checks data row by row: x a whole number >= 0, 0 <= t_x <= T, all finite,
 * t_x == 0 when x == 0, weights > 0, n >= 1. Returns 0 or LTV_EINVAL with the
 * row and field in err.
 */
int pareto_nbd_data_check(const struct pareto_nbd_data *data, struct ltv_err *err);

/*
 * Maximum-likelihood fit of r, alpha, s, beta over their logarithms with the
 * search shared with BG/NBD (mle.h): Nelder-Mead from r = s = 1,
 * alpha = beta = mean T, then BFGS. The gradient is analytic
 * (differentiating the hypergeometric integral under the integral sign,
 * evaluated by the same quadrature as its value). On success *out_model is
 * a new model the caller frees with pareto_nbd_free. Fails with LTV_EINVAL on
 * bad param or data, LTV_EMODEL when the optimum was not reached (for
 * example parameters running off to 0 or infinity on data with almost no
 * repeat buyers). GSL's error handler is switched off during the call and
 * restored after, so do not fit in one thread while another relies on it.
 */
int pareto_nbd_fit(const struct pareto_nbd_param *param, const struct pareto_nbd_data *data,
		   struct pareto_nbd_model **out_model, struct ltv_err *err);

/*
 * Log-likelihood of data (Fader & Hardie's LL(r, alpha, s, beta), weighted)
 * at the model's parameters, into *out_log_lik. Fails with LTV_EINVAL on bad
 * data and LTV_EMODEL when the result is not a number (parameters beyond
 * floating point).
 */
int pareto_nbd_log_lik(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double *out_log_lik, struct ltv_err *err);

/*
 * P(alive at T | x, t_x, T), in (0, 1]:
 *   1 / (1 + s / (r + s + x) (alpha + T)^(r + x) (beta + T)^s A0),
 * A0 as in Fader & Hardie's note. Unlike BG/NBD it is below 1 for x = 0.
 * Fails with LTV_EINVAL on a bad row and LTV_EMODEL when the integral is
 * not a finite number.
 */
int pareto_nbd_p_alive(const struct pareto_nbd_model *model, double x, double t_x, double T,
		       double *out_p_alive, struct ltv_err *err);

/*
 * E[X(T, T + t] | x, t_x, T], the expected number of transactions in the
 * next t >= 0 time units:
 *   P(alive) (r + x) (beta + T) / ((alpha + T) (s - 1))
 *     [1 - ((beta + T) / (beta + T + t))^(s - 1)],
 * computed with expm1 so that s near 1 is accurate; s == 1 exactly takes the
 * limit (r + x) (beta + T) / (alpha + T) ln((beta + T + t) / (beta + T)).
 * Fails like pareto_nbd_p_alive, and with LTV_EINVAL on a bad t.
 */
int pareto_nbd_conditional_expected(const struct pareto_nbd_model *model, double x, double t_x,
				    double T, double t, double *out_expected,
				    struct ltv_err *err);

/*
 * P(at least one transaction in (T, T + t] | x, t_x, T), t >= 0. A customer
 * alive at T with rates (lambda, mu) buys in the window unless the lifetime
 * ends first or the window does: P = lambda / (lambda + mu)
 * (1 - e^-(lambda + mu) t). Given alive, lambda ~ Gamma(r + x, alpha + T) and
 * mu ~ Gamma(s, beta + T) independently, so
 *   P(alive) (r + x) (alpha + T)^(r + x) (beta + T)^s
 *     integral over u in [0, t] of (alpha + T + u)^-(r + x + 1) (beta + T + u)^-s,
 * the integral in closed form with 2F1. (Not P(alive) (1 - E[e^-(lambda + mu) t]):
 * that would count a customer who dies in the window without buying as a
 * buyer.) Fails like pareto_nbd_conditional_expected.
 */
int pareto_nbd_p_any_purchase(const struct pareto_nbd_model *model, double x, double t_x,
			      double T, double t, double *out_p_any, struct ltv_err *err);

/*
 * Scores every row of data over the horizon t: out_expected[i] =
 * E[X(T, T + t] | row i] and, when not NULL, out_p_alive[i] = P(alive | row i)
 * and out_p_any[i] = P(at least one transaction in (T, T + t] | row i). The
 * caller owns the arrays (data->n doubles each). Weights are ignored. Fails
 * with the first bad row's error.
 */
int pareto_nbd_predict(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double t, double *out_expected, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err);

/*
 * Serialises the model in blob.h's format (magic "LTVPNBD1", version 1; the
 * doubles as raw IEEE bits, so load gives back the same values). *out_data
 * is new memory the caller frees.
 */
int pareto_nbd_save(const struct pareto_nbd_model *model, uint8_t **out_data, size_t *out_len,
		    struct ltv_err *err);
/*
 * Reads a blob written by pareto_nbd_save; *out_model is freed with
 * pareto_nbd_free. Fails with LTV_EINVAL on another magic or version, a
 * truncated blob, trailing bytes or parameters that are not positive.
 */
int pareto_nbd_load(const void *data, size_t len, struct pareto_nbd_model **out_model,
		    struct ltv_err *err);

/* Frees a model; NULL is allowed. */
void pareto_nbd_free(struct pareto_nbd_model *model);

#endif
