/*
 * Population stability index (PSI) of a current sample against a reference,
 * for drift monitoring (`ltvpipe monitor`). Pure code on arrays.
 *
 * Bins come from the reference alone: with m non-NaN reference values
 * sorted x_(1) <= ... <= x_(m) and B requested bins, the cut points are the
 * lower empirical quantiles c_k = x_(ceil(k m / B)) for k = 1 .. B-1; equal
 * cut points are merged and a cut at the reference's maximum is dropped
 * (it would leave a bin the reference never fills), so a discrete feature
 * (mostly zeros) gets fewer bins; a constant one keeps its one cut and gets
 * two: (-inf, v] and (v, +inf). Value bins are
 * (-inf, c_1], (c_1, c_2], ..., (c_last, +inf), and NaN (a missing value:
 * no purchase yet, no cost) is one more bin of its own, so a change in how
 * often a value is missing counts as drift.
 *
 * With shares r_j (reference) and c_j (current) of all rows in each bin,
 *   PSI = sum_j (c_j' - r_j') ln(c_j' / r_j'),  s' = max(s, PSI_EPSILON),
 * over the bins where r_j or c_j is non-zero. The floor PSI_EPSILON = 1e-4
 * keeps a bin empty on one side finite: it then adds about
 * s ln(s / 1e-4), e.g. 0.1 ln(1000) = 0.69 for a tenth of the current rows in
 * a bin the reference never had. A bin empty on both sides adds nothing.
 *
 * Levels: PSI < warn is ok, warn <= PSI < alert warns, PSI >= alert alerts
 * (the industry's rule of thumb: 0.1 and 0.25).
 */
#ifndef LTV_PSI_H
#define LTV_PSI_H

#include <stddef.h>

#include "ltv/common.h"

#define PSI_EPSILON 1e-4
#define PSI_MAX_BINS 64
#define PSI_DEFAULT_BINS 10

enum psi_level { PSI_OK = 0, PSI_WARN = 1, PSI_ALERT = 2 };

struct psi_result {
	double psi;
	size_t n_bins;                      /* value bins after merging, NaN bin not counted */
	double cut[PSI_MAX_BINS];           /* the n_bins - 1 upper edges of bins 0 .. n_bins-2 */
	double ref_share[PSI_MAX_BINS + 1]; /* [0 .. n_bins) value bins, [n_bins] the NaN bin */
	double cur_share[PSI_MAX_BINS + 1];
	size_t n_ref, n_cur;                /* rows, NaN included */
};

/*
 * PSI of cur[0..n_cur) against ref[0..n_ref) with n_bins (2 .. PSI_MAX_BINS)
 * quantile bins of the reference, as described above. LTV_EINVAL when either
 * sample is empty or n_bins is out of range. Nothing to free.
 */
int psi_compute(const double *ref, size_t n_ref, const double *cur, size_t n_cur, int n_bins,
		struct psi_result *out, struct ltv_err *err);

/* The bin of value v for the cut points of r: 0 .. n_bins-1, n_bins for NaN. */
size_t psi_bin(const struct psi_result *r, double v);

/* The level of a PSI value for the thresholds (warn < alert). */
enum psi_level psi_level(double psi, double warn, double alert);

/* "ok", "warn" or "alert". */
const char *psi_level_name(enum psi_level level);

/* NULL when 0 < warn < alert, else the reason. */
const char *psi_thresholds_check(double warn, double alert);

#endif
