/*
 * A maximum-likelihood search shared by the purchase-log models
 * (src/models/mle.c). The model supplies its weighted log-likelihood and
 * gradient in its natural, positive parameters; the search runs over their
 * logarithms so positivity holds without constraints.
 */
#ifndef LTV_MLE_H
#define LTV_MLE_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

#define MLE_MAX_PARAMS 8
/* exp(+-25) is far outside any sensible fit: beyond it the optimum has run off. */
#define MLE_LOG_PARAM_LIMIT 25.0

/* Weighted log-likelihood at p (n_params values > 0); fills grad (dLL/dp) when not NULL. */
typedef double (*mle_log_lik_fn)(const double *p, const void *data, double *grad);

struct mle_problem {
	const char *name;       /* model name, for error messages */
	size_t n_params;        /* <= MLE_MAX_PARAMS */
	mle_log_lik_fn log_lik;
	const void *data;       /* borrowed, handed to log_lik */
	double total_weight;    /* the objective is -LL / total_weight */
	int max_iter;           /* per phase */
	double grad_tol;
};

/*
 * Starting from theta (log-parameters), leaves the best point found in theta,
 * its objective (-LL / total_weight) in *out_f, the gradient norm there in
 * *out_grad_norm and the iterations used in *out_iter. The caller switches
 * GSL's error handler off around the call (it would abort the process).
 */
int mle_minimise(const struct mle_problem *problem, double *theta, double *out_f,
		 double *out_grad_norm, uint32_t *out_iter, struct ltv_err *err);

#endif
