/*
 * Maximum likelihood shared by the purchase-log models whose parameters are
 * all positive, BG/NBD and Gamma-Gamma (src/models/mle.c). A model describes
 * itself once (struct mle_model: its name, blob magic, parameter names and
 * per-customer log-likelihood); this module sums the weighted rows, searches
 * for the maximum over the parameters' logarithms (so positivity holds
 * without constraints), judges the outcome, and stores and reads back the
 * fitted parameters in the one blob layout both models use.
 *
 * Pure model code: arrays in, numbers out, no I/O. Fitting uses GSL.
 */
#ifndef LTV_MLE_H
#define LTV_MLE_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define MLE_MAX_PARAMS 8
/* exp(+-25) is far outside any sensible fit: beyond it the optimum has run off. */
#define MLE_LOG_PARAM_LIMIT 25.0
/* The models' default search settings (x_param_init). */
#define MLE_DEFAULT_MAX_ITER 2000
#define MLE_DEFAULT_GRAD_TOL 1e-6

/*
 * One customer's log-likelihood, row `row` of data, at p (n_params values
 * > 0); fills grad (d/dp, n_params values) when not NULL.
 */
typedef double (*mle_row_log_lik_fn)(const double *p, const void *data, size_t row,
				     double *grad);

/*
 * A model's value-only log-likelihood split by what its terms depend on, so
 * that mle_log_lik's one loop computes the terms that depend on p only
 * (lgamma(r), log alpha, ...) once per call, and those that depend on p and
 * the repeat count x only once per distinct whole count below MLE_X_MEMO:
 * the search evaluates the objective hundreds of times. The loop adds
 * weight[i] * row(...) in row order from 0, so row must equal
 * row_log_lik(p, data, i, NULL) bit for bit.
 */
#define MLE_X_MEMO 64
#define MLE_TERMS_MAX 64 /* bytes of a model's p terms or x terms, at most */
struct mle_terms {
	size_t p_size, x_size; /* sizeof the model's two terms structs */
	void (*p_terms)(const double *p, void *out);
	void (*x_terms)(const double *p, double x, void *out);
	/* The repeat counts x of data's rows. */
	const double *(*counts)(const void *data);
	/* Row `row` of data's log-likelihood from the terms above. */
	double (*row)(const double *p, const void *p_terms, const void *x_terms, const void *data,
		      size_t row);
	/*
	 * Optional (NULL: the gradient's sum calls row_log_lik per row), the same
	 * for the gradient's sum: the p terms and x terms with what d/dp needs
	 * too (the digammas, the same structs), and row `row`'s value and
	 * gradient from them, equal to row_log_lik(p, data, row, grad) bit for
	 * bit; the sum adds them in row order from 0 as that loop did.
	 */
	void (*grad_p_terms)(const double *p, void *out);
	void (*grad_x_terms)(const double *p, double x, void *out);
	double (*row_grad)(const double *p, const void *p_terms, const void *x_terms,
			   const void *data, size_t row, double *grad);
};

/* What a model tells the shared code about itself; each model has one, static. */
struct mle_model {
	const char *name;               /* prefixes every message, e.g. "bgnbd" */
	const char *magic;              /* the blob's 8-character magic, e.g. "LTVBGNB1" */
	size_t n_params;                /* <= MLE_MAX_PARAMS */
	const char *const *param_names; /* n_params names, for messages */
	const char *unidentified_hint;  /* an example of data that cannot identify the model */
	mle_row_log_lik_fn row_log_lik;
	const struct mle_terms *terms;  /* optional; mle_log_lik's value-only sum when set */
};

/* Rows to fit on or to score, borrowed, and the search's settings. */
struct mle_problem {
	const struct mle_model *model;
	const void *data;     /* the model's own data struct, handed to row_log_lik */
	size_t n;             /* rows */
	const double *weight; /* NULL: every row counts once; else weight[i] > 0 customers */
	int max_iter;         /* per phase of the search */
	double grad_tol;      /* on the gradient of the mean log-likelihood in log-parameters */
};

/* Fitted parameters and how the fit went: what every model of this family stores. */
struct mle_fit {
	double param[MLE_MAX_PARAMS]; /* model->n_params values > 0 */
	double log_lik;               /* at param, summed over (weighted) rows */
	double n_customers;           /* sum of weights fitted on */
	uint32_t n_iter;              /* search iterations used (both phases) */
};

/* NULL when the search settings are usable, else a static string naming what is wrong. */
const char *mle_param_check(int max_iter, double grad_tol);

/*
 * 0 when weight is NULL or weight[row] is a positive number, else LTV_EINVAL
 * with "<name>: row <row>: ..." in err.
 */
int mle_weight_check(const char *name, const double *weight, size_t row, struct ltv_err *err);

/* Sum of weight[i] v[i] over sum of weight[i] (weight NULL: all 1), n >= 1. */
double mle_weighted_mean(const double *v, const double *weight, size_t n);

/*
 * Weighted log-likelihood of the problem's rows at p; fills grad (d/dp)
 * when not NULL. Rows are not checked: the model checks its data first.
 */
double mle_log_lik(const struct mle_problem *problem, const double *p, double *grad);

/*
 * Maximum-likelihood fit from theta0 (log-parameters, model->n_params values):
 * Nelder-Mead (nmsimplex2), then BFGS (bfgs2) on the analytic gradient
 * from its end point, keeping the better. Fills *out. Fails with LTV_EMODEL
 * when a parameter ran off towards 0 or infinity (the data do not identify
 * the model) or the gradient norm stayed above grad_tol, LTV_ENOMEM when GSL
 * cannot allocate. Switches GSL's error handler off during the call and
 * restores it after, so do not fit in one thread while another relies on it.
 */
int mle_fit(const struct mle_problem *problem, const double *theta0, struct mle_fit *out,
	    struct ltv_err *err);

/*
 * Serialises fit in blob.h's format: model->magic, version 1, the n_params
 * parameters, log_lik and n_customers as raw IEEE doubles (load gives back the
 * same values), n_iter as a u32. *out_data is new memory the caller frees.
 */
void mle_save(const struct mle_model *model, const struct mle_fit *fit, uint8_t **out_data,
	      size_t *out_len);

/*
 * Reads a blob written by mle_save for the same model into *out. Fails with
 * LTV_EINVAL on another magic or version, a truncated blob, trailing bytes or
 * parameters that are not positive numbers.
 */
int mle_load(const struct mle_model *model, const void *data, size_t len, struct mle_fit *out,
	     struct ltv_err *err);

#endif
