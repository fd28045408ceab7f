/*
 * A stacked blend: convex weights over several predictors of group totals
 * (campaigns), fitted by least squares. Pure code on arrays.
 */
#ifndef LTV_BLEND_H
#define LTV_BLEND_H

#include <stddef.h>

#define BLEND_MAX_METHODS 32

/* Euclidean projection of v[0..n) onto the probability simplex, in place. */
void blend_project_simplex(double *v, size_t n);

/*
 * Weights w (out_w[0..n_methods), >= 0, summing to 1 over the usable
 * methods, 0 for the others) minimising sum_g (x_g . w - y_g)^2 / n_g, x_g the
 * row g of the n_groups x n_methods matrix x (row-major), n_g > 0 a group's
 * size. Projected gradient with step 1/L. Returns 0, or -1 when no method is
 * usable, there is no group or n_methods exceeds BLEND_MAX_METHODS.
 */
int blend_fit(const double *x, const double *y, const double *n_g, size_t n_groups,
	      size_t n_methods, const int *usable, double *out_w);

#endif
