/*
 * Unit tests for the shared maximum-likelihood loop (src/models/mle.c): the
 * value-only sum a model describes with struct mle_terms, and the sum with
 * the gradient through its gradient terms, equal adding the weighted rows
 * one by one in row order, bit for bit, and compute a count's terms once per
 * distinct whole count below MLE_X_MEMO and every time for any other count. A toy model with one parameter stands in for BG/NBD,
 * Pareto/NBD and Gamma-Gamma, which all sum through this loop.
 */
#include "testutil.h"

#include <math.h>

#include <gsl/gsl_sf_psi.h>

#include "ltv/mle.h"

struct toy_data {
	const double *x, *t;
};

static size_t x_terms_calls, grad_x_terms_calls;

static void toy_p_terms(const double *p, void *out)
{
	*(double *)out = log(p[0]);
}

static void toy_x_terms(const double *p, double x, void *out)
{
	x_terms_calls++;
	*(double *)out = lgamma(p[0] + x);
}

/* The x terms with d/da's: lgamma(a + x), then psi(a + x). */
static void toy_grad_x_terms(const double *p, double x, void *out)
{
	grad_x_terms_calls++;
	((double *)out)[0] = lgamma(p[0] + x);
	((double *)out)[1] = gsl_sf_psi(p[0] + x);
}

static const double *toy_counts(const void *data)
{
	return ((const struct toy_data *)data)->x;
}

static double toy_row_from_terms(const double *p, const void *pt, const void *xt,
				 const void *data, size_t row)
{
	const struct toy_data *d = data;

	return *(const double *)xt - p[0] * d->t[row] + d->x[row] * *(const double *)pt;
}

static double toy_row_grad_from_terms(const double *p, const void *pt, const void *xt,
				      const void *data, size_t row, double *grad)
{
	const struct toy_data *d = data;

	grad[0] = ((const double *)xt)[1] - d->t[row] + d->x[row] / p[0];
	return toy_row_from_terms(p, pt, xt, data, row);
}

static double toy_row_log_lik(const double *p, const void *data, size_t row, double *grad)
{
	const struct toy_data *d = data;
	const double log_p = log(p[0]), lg = lgamma(p[0] + d->x[row]);

	if (grad)
		grad[0] = gsl_sf_psi(p[0] + d->x[row]) - d->t[row] + d->x[row] / p[0];
	return lg - p[0] * d->t[row] + d->x[row] * log_p;
}

static const struct mle_terms toy_terms = {
	sizeof(double), 2 * sizeof(double), toy_p_terms, toy_x_terms, toy_counts,
	toy_row_from_terms, toy_p_terms, toy_grad_x_terms, toy_row_grad_from_terms,
};

static const char *const toy_names[] = { "a" };

/*
 * The toy rows both sums are checked on: counts 1 and 3 repeat; 2.5 and
 * MLE_X_MEMO + 6 have no memo slot.
 */
static const double toy_x[] = { 1, 3, 1, 2.5, MLE_X_MEMO + 6, 3, 0, 2.5, 1 };
static const double toy_t[] = { 0.3, 1.7, 2.2, 0.9, 4.1, 0.05, 3.3, 1.1, 0.6 };
static const double toy_weight[] = { 2, 0.5, 1, 3, 1, 7, 0.25, 1, 4 };

/*
 * mle_log_lik through the model's terms and row by row, each with and
 * without weights, against the rows' weighted sum written out here: the
 * same bits, the gradient too when with_grad. Counts 0, 1 and 3 take their
 * x terms once each, 2.5 twice (no memo slot) and MLE_X_MEMO + 6 once: six
 * calls, of the gradient's x terms when with_grad (then no value-only ones).
 */
static void check_terms_sum(int with_grad)
{
	const size_t n = sizeof(toy_x) / sizeof(toy_x[0]);
	const struct toy_data d = { toy_x, toy_t };
	struct mle_model with_terms = { "toy", "LTVTOY01", 1, toy_names, "none",
					toy_row_log_lik, &toy_terms };
	struct mle_model rows_only = with_terms;
	const double p[] = { 1.37 };

	rows_only.terms = NULL;
	for (int weighted = 0; weighted < 2; weighted++) {
		const double *w = weighted ? toy_weight : NULL;
		const struct mle_problem by_terms = { &with_terms, &d, n, w, 0, 0 };
		const struct mle_problem by_rows = { &rows_only, &d, n, w, 0, 0 };
		double want = 0, want_grad = 0, grad_terms = -1, grad_rows = -1;
		double got_terms, got_rows;

		for (size_t i = 0; i < n; i++) {
			double g;

			want += (w ? w[i] : 1.0) * toy_row_log_lik(p, &d, i, with_grad ? &g : NULL);
			if (with_grad)
				want_grad += (w ? w[i] : 1.0) * g;
		}
		x_terms_calls = grad_x_terms_calls = 0;
		got_terms = mle_log_lik(&by_terms, p, with_grad ? &grad_terms : NULL);
		assert_int_equal(with_grad ? grad_x_terms_calls : x_terms_calls, 6);
		assert_int_equal(with_grad ? x_terms_calls : grad_x_terms_calls, 0);
		got_rows = mle_log_lik(&by_rows, p, with_grad ? &grad_rows : NULL);
		assert_memory_equal(&got_terms, &want, sizeof(double));
		assert_memory_equal(&got_rows, &want, sizeof(double));
		assert_true(isfinite(want));
		if (!with_grad)
			continue;
		assert_memory_equal(&grad_terms, &want_grad, sizeof(double));
		assert_memory_equal(&grad_rows, &want_grad, sizeof(double));
		assert_true(isfinite(want_grad) && want_grad != 0);
	}
}

static void test_terms_sum_is_the_rows_sum(void **state)
{
	(void)state;
	check_terms_sum(0);
}

static void test_terms_grad_sum_is_the_rows_sum(void **state)
{
	(void)state;
	check_terms_sum(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terms_sum_is_the_rows_sum),
		cmocka_unit_test(test_terms_grad_sum_is_the_rows_sum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
