/*
 * Cumulative revenue-per-user curves for the curves stage: y(d) = a * d^b,
 * fitted by weighted least squares on ln y = ln a + b ln d, shrunk towards a
 * tier prior for small cohorts, and used to extrapolate a young cohort to a
 * horizon.
 *
 * Day convention: d is days elapsed, i.e. day index + 1. y(d) is the
 * cumulative revenue per user over day indices 0 .. d-1, so y(1) is day 0's
 * revenue and y(H) is exactly the label ltv_H (revenue with day index < H).
 * A cohort observed for k full days (indices 0 .. k-1) has its last point at
 * d = k.
 *
 * A curve is a small value struct that owns no memory, so there is no
 * curve_free; copy it freely.
 */
#ifndef LTV_CURVE_H
#define LTV_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

struct curve_param {
	double shrink_k; /* prior strength in users: own weight w = n / (n + shrink_k); >= 0 */
};

struct curve {
	double log_a;    /* ln a */
	double b;        /* growth exponent; a cumulative curve has b >= 0, a noisy fit may not */
	size_t n_points; /* usable points behind the fit (0 for a prior or a shrunk blend) */
};

/* Defaults: shrink_k 200. */
void curve_param_init(struct curve_param *p);
/* NULL when p is usable, else a static string saying which field is wrong. */
const char *curve_param_check(const struct curve_param *p);

/*
 * Fits ln y = ln a + b ln d by least squares weighted by weights (n values,
 * or NULL for all 1; typically the users behind each point). Usable points
 * have d >= 1, y > 0 and weight > 0; others are skipped. Fails with
 * LTV_EMODEL, and the reason, when fewer than 2 distinct d are usable (the
 * caller then falls back to the tier prior), and with LTV_EINVAL on a
 * non-finite value or a negative weight.
 */
int curve_fit(const double *days, const double *y, const double *weights, size_t n,
	      struct curve *out_curve, struct ltv_err *err);

/* Absolute form: a * d^b, for d > 0 days elapsed. */
double curve_predict(const struct curve *c, double d);

/*
 * The weight of a cohort's own fit against the prior: n_users / (n_users +
 * shrink_k); 0 when n_users is 0, 1 when shrink_k is 0 and n_users > 0.
 */
double curve_shrink_weight(const struct curve_param *p, size_t n_users);

/*
 * Blends own and prior: out = w * own + (1 - w) * prior in (ln a, b), with
 * w = curve_shrink_weight(p, n_users). out may alias own or prior.
 */
void curve_shrink(const struct curve_param *p, const struct curve *own,
		  const struct curve *prior, size_t n_users, struct curve *out_curve);

/*
 * Ratio form, anchored on what the cohort has shown: y(H) = y_k * (H / k)^b
 * for a cohort observed for k days elapsed (k >= 1) with cumulative value
 * per user y_k (>= 0) so far, and horizon H >= k. A negative b is taken as 0
 * so the result never falls below y_k. y_k = 0 gives 0: use curve_predict
 * or the prior for a cohort with no revenue yet. Fails with LTV_EINVAL when
 * H < k (the value at H has already been observed) or an input is invalid.
 */
int curve_extrapolate(const struct curve *c, double k, double y_k, double horizon,
		      double *out_value, struct ltv_err *err);

/*
 * Serialises c (blob "LTVCURVE" version 1: f64 log_a, f64 b, u64 n_points).
 * *out_buf is malloc'd; the caller frees it.
 */
void curve_save(const struct curve *c, uint8_t **out_buf, size_t *out_len);
/* Reads a blob written by curve_save (borrowed) into *out_curve. */
int curve_load(const void *buf, size_t len, struct curve *out_curve, struct ltv_err *err);

#endif
