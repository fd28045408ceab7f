/*
 * Calibration of LTV predictions on validation cohorts, used by the calibrate
 * stage (fit, per tier) and the scorer (apply). Two kinds:
 *  - anchor-and-adjust: calibrated = anchor + alpha * (pred - anchor), the
 *    anchor given by the caller (the tier's mean actual LTV on training
 *    cohorts), alpha fitted by least squares on validation and clipped;
 *  - isotonic: a non-decreasing step-and-ramp function of pred fitted by
 *    weighted pool-adjacent-violators.
 * Pure: arrays in, a struct out. Fitting functions take (pred, actual), the
 * input and the target, in that order.
 */
#ifndef LTV_CALIBRATION_H
#define LTV_CALIBRATION_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

enum calibration_kind {
	CALIBRATION_ANCHOR = 1,
	CALIBRATION_ISOTONIC = 2,
};

struct calibration_param {
	double alpha_min; /* alpha is clipped to [alpha_min, alpha_max] */
	double alpha_max;
	size_t n_folds;   /* folds for calibration_fit_best's cross-validation, >= 2 */
};

struct calibration {
	enum calibration_kind kind;
	/* CALIBRATION_ANCHOR */
	double anchor;
	double alpha;
	/*
	 * CALIBRATION_ISOTONIC: n_points points, x strictly increasing, y
	 * non-decreasing; calibration_apply interpolates linearly between them
	 * and holds y[0] / y[n_points-1] beyond the ends. Owned by the struct.
	 */
	size_t n_points;
	double *x;
	double *y;
	/*
	 * Cross-validated mean squared error of each kind, as computed by
	 * calibration_fit_best; NaN when the struct came from a single-kind fit.
	 */
	double cv_mse_anchor;
	double cv_mse_isotonic;
};

/* Defaults: alpha in [0, 2], 5 folds. */
void calibration_param_init(struct calibration_param *param);

/* Returns NULL when param is usable, else a static string saying what is wrong. */
const char *calibration_param_check(const struct calibration_param *param);

/* "anchor" or "isotonic" ("unknown" otherwise); static string. */
const char *calibration_kind_name(enum calibration_kind kind);

/*
 * Least-squares alpha for anchor-and-adjust:
 *   alpha = sum (p - anchor)(a - anchor) / sum (p - anchor)^2
 * clipped to [alpha_min, alpha_max]. When sum (p - anchor)^2 is 0 (every
 * prediction equals the anchor) alpha is 1 before clipping. Every pred,
 * actual and the anchor must be finite and n >= 1, else LTV_EINVAL.
 */
int calibration_anchor_alpha(const double *pred, const double *actual, size_t n, double anchor,
			     double alpha_min, double alpha_max, double *out_alpha,
			     struct ltv_err *err);

/*
 * Fits anchor-and-adjust with calibration_anchor_alpha on (pred, actual).
 * On success *out_cal is a new struct the caller frees with calibration_free.
 */
int calibration_fit_anchor(const struct calibration_param *param, double anchor,
			   const double *pred, const double *actual, size_t n,
			   struct calibration **out_cal, struct ltv_err *err);

/*
 * Fits a non-decreasing isotonic regression of actual on pred. weight may be
 * NULL (every row weighs 1), else each weight must be finite and > 0. Rows
 * with equal pred are first merged into one point (weighted mean of actual,
 * summed weight), so they always get one value; then pool-adjacent-violators
 * merges neighbouring points into blocks holding their weighted mean. Each
 * block is kept as its lowest and highest pred (one point if equal), both at
 * the block's value. Every value must be finite and n >= 1, else LTV_EINVAL.
 * On success *out_cal is a new struct the caller frees with calibration_free.
 */
int calibration_fit_isotonic(const double *pred, const double *actual, const double *weight,
			     size_t n, struct calibration **out_cal, struct ltv_err *err);

/*
 * Fits both kinds and keeps the one with the lower cross-validated mean
 * squared error; a tie keeps anchor-and-adjust (one parameter). The rows are
 * cut, in the order given, into param->n_folds contiguous folds (fold f holds
 * rows [f*n/k, (f+1)*n/k)): pass them ordered by install date and each fold
 * is a block of cohorts. Each fold is predicted by both kinds fitted on the
 * other folds, with the same anchor; the MSE is over all n held-out rows.
 * The winner is then refitted on all rows, and both MSEs are kept in the
 * result. n < n_folds is LTV_EINVAL. *out_cal as for the single-kind fits.
 */
int calibration_fit_best(const struct calibration_param *param, double anchor,
			 const double *pred, const double *actual, size_t n,
			 struct calibration **out_cal, struct ltv_err *err);

/*
 * Writes the calibrated value of pred[i] to out_calibrated[i] for i < n;
 * out_calibrated may be pred itself. NaN stays NaN.
 */
void calibration_apply(const struct calibration *cal, const double *pred, size_t n,
		       double *out_calibrated);

/*
 * The last value calibration_apply_repeated gave, zeroed to start: rows
 * that repeat (a weighted validation row's copies, one after another; 4.5
 * copies a row at 1,000,000 users) are calibrated once a run, the same value.
 */
struct calibration_last {
	const struct calibration *cal;
	uint64_t bits; /* pred's */
	double value;
};
/* calibration_apply of the one value pred; last carries the previous call's. */
double calibration_apply_repeated(const struct calibration *cal, double pred,
				  struct calibration_last *last);

/*
 * Serialises cal in the blob.h format (magic "LTVCALB1", version 1: u32 kind,
 * f64 anchor, alpha, cv_mse_anchor, cv_mse_isotonic, then f64 arrays x and
 * y). Returns a new buffer the caller frees and its length in *out_len.
 */
uint8_t *calibration_save(const struct calibration *cal, size_t *out_len);

/*
 * Reads a blob written by calibration_save (borrowed; not kept). Checks the
 * header, every length, and that the contents obey the struct's invariants;
 * a foreign or corrupt blob is LTV_EINVAL. On success *out_cal is a new struct
 * the caller frees with calibration_free.
 */
int calibration_load(const void *data, size_t len, struct calibration **out_cal,
		     struct ltv_err *err);

/* Frees cal and its arrays; NULL is fine. */
void calibration_free(struct calibration *cal);

#endif
