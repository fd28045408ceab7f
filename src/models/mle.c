/*
 * Maximum likelihood for models whose parameters are all positive (BG/NBD,
 * Gamma-Gamma): minimise the mean negative log-likelihood over log-parameters
 * with Nelder-Mead, then polish with BFGS on the analytic gradient. Written
 * once here because both models need exactly this search.
 */
#include <math.h>
#include <string.h>

#include <gsl/gsl_multimin.h>
#include <gsl/gsl_vector.h>

#include "ltv/mle.h"

/* Returned instead of a non-finite objective: nmsimplex2 rejects inf and NaN. */
#define BAD_OBJECTIVE 1e10


/*
 * The optimiser minimises -LL / total weight over theta = log p: the mean
 * keeps tolerances independent of the number of customers. Points beyond
 * MLE_LOG_PARAM_LIMIT or with a non-finite value get BAD_OBJECTIVE and a
 * gradient pointing back towards the origin.
 */
static void objective_eval(const gsl_vector *theta, void *ctx, double *out_f, gsl_vector *out_g)
{
	const struct mle_problem *obj = ctx;
	double p[MLE_MAX_PARAMS], grad[MLE_MAX_PARAMS], f;
	int off = 0;

	for (int k = 0; k < (int)obj->n_params; k++) {
		const double v = gsl_vector_get(theta, (size_t)k);

		if (!(fabs(v) <= MLE_LOG_PARAM_LIMIT))
			off = 1;
		p[k] = exp(v);
	}
	if (!off) {
		f = -obj->log_lik(p, obj->data, out_g ? grad : NULL) / obj->total_weight;
		if (!isfinite(f))
			off = 1;
		for (int k = 0; out_g && k < (int)obj->n_params; k++)
			if (!isfinite(grad[k]))
				off = 1;
	}
	if (off) {
		f = BAD_OBJECTIVE;
		for (int k = 0; out_g && k < (int)obj->n_params; k++) {
			const double v = gsl_vector_get(theta, (size_t)k);

			grad[k] = isfinite(v) ? (v > 0 ? 1.0 : -1.0) : 0.0;
		}
	} else if (out_g) {
		for (int k = 0; k < (int)obj->n_params; k++)
			grad[k] = -grad[k] * p[k] / obj->total_weight;
	}
	if (out_f)
		*out_f = f;
	if (out_g)
		for (int k = 0; k < (int)obj->n_params; k++)
			gsl_vector_set(out_g, (size_t)k, grad[k]);
}

static double objective_f(const gsl_vector *theta, void *ctx)
{
	double f;

	objective_eval(theta, ctx, &f, NULL);
	return f;
}

static void objective_df(const gsl_vector *theta, void *ctx, gsl_vector *out_g)
{
	objective_eval(theta, ctx, NULL, out_g);
}

static void objective_fdf(const gsl_vector *theta, void *ctx, double *out_f, gsl_vector *out_g)
{
	objective_eval(theta, ctx, out_f, out_g);
}

/*
 * Nelder-Mead then BFGS from theta; leaves the better of the two end points
 * in theta, its objective in *out_f and gradient norm in *out_grad_norm.
 * The caller has switched GSL's error handler off.
 */
int mle_minimise(const struct mle_problem *obj, double *theta, double *out_f,
		 double *out_grad_norm, uint32_t *out_iter, struct ltv_err *err)
{
	const size_t n_params = obj->n_params;
	gsl_multimin_function fn = { objective_f, n_params, (void *)obj };
	gsl_multimin_function_fdf fdf = { objective_f, objective_df, objective_fdf, n_params, (void *)obj };
	gsl_multimin_fminimizer *simplex = NULL;
	gsl_multimin_fdfminimizer *bfgs = NULL;
	gsl_vector *start = gsl_vector_alloc(n_params);
	gsl_vector *step = gsl_vector_alloc(n_params);
	gsl_vector *grad = gsl_vector_alloc(n_params);
	double best_f;
	uint32_t n_iter = 0;
	int ret = 0;

	simplex = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, n_params);
	bfgs = gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, n_params);
	if (!start || !step || !grad || !simplex || !bfgs) {
		ret = err_set(err, LTV_ENOMEM, "%s: cannot allocate the GSL minimisers", obj->name);
		goto out;
	}
	for (int k = 0; k < (int)obj->n_params; k++)
		gsl_vector_set(start, (size_t)k, theta[k]);
	gsl_vector_set_all(step, 0.5);
	if (gsl_multimin_fminimizer_set(simplex, &fn, start, step) != GSL_SUCCESS) {
		ret = err_set(err, LTV_EMODEL, "%s: cannot start the simplex search", obj->name);
		goto out;
	}
	for (int it = 0; it < obj->max_iter; it++) {
		n_iter++;
		if (gsl_multimin_fminimizer_iterate(simplex) != GSL_SUCCESS)
			break;
		if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(simplex), 1e-8) == GSL_SUCCESS)
			break;
	}
	best_f = gsl_multimin_fminimizer_minimum(simplex);
	for (int k = 0; k < (int)obj->n_params; k++)
		theta[k] = gsl_vector_get(gsl_multimin_fminimizer_x(simplex), (size_t)k);

	gsl_vector_memcpy(start, gsl_multimin_fminimizer_x(simplex));
	if (gsl_multimin_fdfminimizer_set(bfgs, &fdf, start, 0.01, 0.1) == GSL_SUCCESS) {
		for (int it = 0; it < obj->max_iter; it++) {
			n_iter++;
			/* GSL_ENOPROG: no further decrease possible, which is the optimum here. */
			if (gsl_multimin_fdfminimizer_iterate(bfgs) != GSL_SUCCESS)
				break;
			if (gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(bfgs),
						       obj->grad_tol * 0.01) == GSL_SUCCESS)
				break;
		}
		if (gsl_multimin_fdfminimizer_minimum(bfgs) <= best_f) {
			best_f = gsl_multimin_fdfminimizer_minimum(bfgs);
			for (int k = 0; k < (int)obj->n_params; k++)
				theta[k] = gsl_vector_get(gsl_multimin_fdfminimizer_x(bfgs), (size_t)k);
		}
	}
	for (int k = 0; k < (int)obj->n_params; k++)
		gsl_vector_set(start, (size_t)k, theta[k]);
	objective_eval(start, (void *)obj, NULL, grad);
	*out_f = best_f;
	*out_grad_norm = 0;
	for (int k = 0; k < (int)obj->n_params; k++)
		*out_grad_norm += gsl_vector_get(grad, (size_t)k) * gsl_vector_get(grad, (size_t)k);
	*out_grad_norm = sqrt(*out_grad_norm);
	*out_iter = n_iter;
out:
	gsl_multimin_fdfminimizer_free(bfgs);
	gsl_multimin_fminimizer_free(simplex);
	gsl_vector_free(grad);
	gsl_vector_free(step);
	gsl_vector_free(start);
	return ret;
}

