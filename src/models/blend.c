/*
 * Stacked blend weights (contract in include/ltv/blend.h). The simplex
 * projection is the sorting method of Held, Wolfe & Crowder (1974) / Duchi
 * et al. (2008); the least squares are solved by projected gradient, which
 * is plenty for a handful of methods and tens of groups.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/blend.h"

#define BLEND_ITERATIONS 5000

void blend_project_simplex(double *v, size_t n)
{
	double u[BLEND_MAX_METHODS], cum = 0, theta = 0;

	if (n == 0 || n > BLEND_MAX_METHODS)
		return;
	/* Insertion sort, descending: n is a handful, and qsort's call per compare was most of the fit. */
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		for (; j > 0 && u[j - 1] < v[i]; j--)
			u[j] = u[j - 1];
		u[j] = v[i];
	}
	for (size_t k = 0; k < n; k++) {
		cum += u[k];
		if (u[k] - (cum - 1) / (double)(k + 1) > 0)
			theta = (cum - 1) / (double)(k + 1);
	}
	for (size_t k = 0; k < n; k++)
		v[k] = fmax(v[k] - theta, 0);
}

int blend_fit(const double *x, const double *y, const double *n_g, size_t n_groups,
	      size_t n_methods, const int *usable, double *out_w)
{
	double w[BLEND_MAX_METHODS], grad[BLEND_MAX_METHODS], packed[BLEND_MAX_METHODS];
	double lipschitz = 0;
	size_t n_use = 0;

	if (n_methods == 0 || n_methods > BLEND_MAX_METHODS || n_groups == 0)
		return -1;
	for (size_t m = 0; m < n_methods; m++)
		n_use += usable[m] != 0;
	if (n_use == 0)
		return -1;
	/* The Frobenius bound on the Hessian's largest eigenvalue: a safe step. */
	for (size_t g = 0; g < n_groups; g++)
		for (size_t m = 0; m < n_methods; m++)
			if (usable[m])
				lipschitz += 2 * x[g * n_methods + m] * x[g * n_methods + m] / n_g[g];
	for (size_t m = 0; m < n_methods; m++)
		w[m] = usable[m] ? 1.0 / (double)n_use : 0;
	for (int it = 0; it < BLEND_ITERATIONS && lipschitz > 0; it++) {
		size_t k = 0;
		int same;

		memset(grad, 0, sizeof(grad));
		for (size_t g = 0; g < n_groups; g++) {
			double r = -y[g];

			for (size_t m = 0; m < n_methods; m++)
				r += w[m] * x[g * n_methods + m];
			for (size_t m = 0; m < n_methods; m++)
				grad[m] += 2 * r * x[g * n_methods + m] / n_g[g];
		}
		for (size_t m = 0; m < n_methods; m++)
			if (usable[m])
				packed[k++] = w[m] - grad[m] / lipschitz;
		blend_project_simplex(packed, k);
		k = 0;
		same = 1;
		for (size_t m = 0; m < n_methods; m++) {
			const double next = usable[m] ? packed[k++] : 0;

			same &= memcmp(&next, &w[m], sizeof(next)) == 0; /* bits: 0 and -0 differ */
			w[m] = next;
		}
		/*
		 * Each step is a function of w alone: once a step leaves w as it
		 * was, every later one would too, so the remaining iterations
		 * cannot change the result.
		 */
		if (same)
			break;
	}
	memcpy(out_w, w, n_methods * sizeof(double));
	return 0;
}
