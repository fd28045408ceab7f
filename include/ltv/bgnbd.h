/*
 * BG/NBD purchase-count model (Fader, Hardie & Lee 2005, "Counting your
 * customers the easy way: an alternative to the Pareto/NBD model", Marketing
 * Science 24(2)). While alive a customer buys as a Poisson process with rate
 * lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
 * p ~ Beta(a, b). Each customer is summarised by
 *   x    number of repeat transactions (purchases after the first) in the
 *        calibration period, a whole number >= 0,
 *   t_x  time of the last repeat transaction since the first purchase
 *        (0 when x == 0),
 *   T    time from the first purchase to the end of calibration,
 * all in one time unit the caller chooses (weeks in the paper); alpha is in
 * that unit and the predictions are too.
 *
 * Pure model code: arrays in, numbers out, no I/O. Fitting uses GSL.
 */
#ifndef LTV_BGNBD_H
#define LTV_BGNBD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

/* Fitting options; bgnbd_param_init gives the defaults. */
struct bgnbd_param {
	int max_iter;    /* iterations for each optimiser stage (simplex, then BFGS) */
	double grad_tol; /* converged when |gradient of the mean log-likelihood| in
			    log-parameters is below this */
};

/*
 * The customers to fit on, borrowed (liblinear's struct problem). weight is
 * optional: NULL means every row counts once; otherwise row i stands for
 * weight[i] > 0 identical customers, so rows may be aggregated (x, t_x, T)
 * triples.
 */
struct bgnbd_data {
	size_t n;
	const double *x;
	const double *t_x;
	const double *T;
	const double *weight;
};

struct bgnbd_model {
	double r, alpha, a, b;
	double log_lik;       /* at the fitted parameters, summed over (weighted) rows */
	double n_customers;   /* sum of weights fitted on */
	uint32_t n_iter;      /* optimiser iterations used (both stages) */
};

/* Sets the defaults: max_iter 2000, grad_tol 1e-6. */
void bgnbd_param_init(struct bgnbd_param *param);
/* NULL when param is usable, else a static string naming what is wrong. */
const char *bgnbd_param_check(const struct bgnbd_param *param);

/*
 * Checks data row by row: x a whole number >= 0, 0 <= t_x <= T, all finite,
 * weights > 0, n >= 1. Returns 0 or LTV_EINVAL with the row and field in err.
 */
int bgnbd_data_check(const struct bgnbd_data *data, struct ltv_err *err);

/*
 * Maximum-likelihood fit of r, alpha, a, b in log-parameters: Nelder-Mead
 * (nmsimplex2) from r = a = b = 1, alpha = mean T, then BFGS (bfgs2) with the
 * analytic gradient. On success *out_model is a new model the caller frees
 * with bgnbd_free. Fails with LTV_EINVAL on bad param or data, LTV_EMODEL when
 * the optimum was not reached (for example parameters running off to 0 or
 * infinity on data with almost no repeat buyers). GSL's error handler is
 * switched off during the call and restored after, so do not fit in one
 * thread while another relies on that handler.
 */
int bgnbd_fit(const struct bgnbd_param *param, const struct bgnbd_data *data,
	      struct bgnbd_model **out_model, struct ltv_err *err);

/*
 * Log-likelihood of data (the paper's LL(r, alpha, a, b), weighted) at the
 * model's parameters, into *out_log_lik. Fails with LTV_EINVAL on bad data.
 */
int bgnbd_log_lik(const struct bgnbd_model *model, const struct bgnbd_data *data,
		  double *out_log_lik, struct ltv_err *err);

/*
 * P(alive | x, t_x, T), the probability that the customer has not dropped
 * out by T (Fader, Hardie & Lee's note "Computing P(alive) using the BG/NBD
 * model"): 1 when x == 0, since a BG/NBD customer can drop out only right
 * after a repeat purchase. Inputs are not checked; see bgnbd_data_check.
 */
double bgnbd_p_alive(const struct bgnbd_model *model, double x, double t_x, double T);

/*
 * E[Y(t) | x, t_x, T], the expected number of transactions in (T, T + t] for
 * a customer with that history (eq. 10). With x = t_x = T = 0 it is E[X(t)]
 * for a new customer (the paper's E[X(t)]). The Gaussian hypergeometric function is summed
 * as a series in z = t / (alpha + T + t) in [0, 1), using Euler's
 * transformation where that makes the series converge faster; no GSL calls,
 * so it is safe to call from several threads. Fails with LTV_EINVAL on bad
 * input and LTV_EMODEL when the series does not converge (t of the order of a
 * million times alpha + T).
 */
int bgnbd_expected(const struct bgnbd_model *model, double x, double t_x, double T,
		   double t, double *out_expected, struct ltv_err *err);

/*
 * P(at least one transaction in (T, T + t] | x, t_x, T), t >= 0 in the
 * model's time unit. A BG/NBD customer can drop out only right after a
 * purchase, so one alive at T buys in the window exactly when the Poisson
 * process fires there: e^(-lambda t), with lambda | alive, x, T ~
 * Gamma(r + x, alpha + T), gives
 *   P(alive) (1 - ((alpha + T) / (alpha + T + t))^(r + x)).
 * 0 when t == 0. Inputs are not checked; see bgnbd_data_check.
 */
double bgnbd_p_any_purchase(const struct bgnbd_model *model, double x, double t_x, double T,
			    double t);

/*
 * Scores every row of data: out_expected[i] = E[Y(t) | row i] and, when
 * out_p_alive is not NULL, out_p_alive[i] = P(alive | row i). The caller owns
 * both arrays (data->n doubles each). Weights are ignored.
 */
int bgnbd_predict(const struct bgnbd_model *model, const struct bgnbd_data *data, double t,
		  double *out_expected, double *out_p_alive, struct ltv_err *err);

/*
 * Serialises the model in blob.h's format (magic "LTVBGNB1", version 1; the
 * doubles as raw IEEE bits, so load gives back the same values). *out_data
 * is new memory the caller frees.
 */
int bgnbd_save(const struct bgnbd_model *model, uint8_t **out_data, size_t *out_len,
	       struct ltv_err *err);
/* Reads a blob written by bgnbd_save; *out_model is freed with bgnbd_free. */
int bgnbd_load(const void *data, size_t len, struct bgnbd_model **out_model,
	       struct ltv_err *err);

/* Frees a model; NULL is allowed. */
void bgnbd_free(struct bgnbd_model *model);

#endif
