/*
 * `ltvpipe monitor`: is the served model version still looking at the
 * population it was trained for, and are its predictions still right?
 *
 * Drift (PSI, include/ltv/psi.h) for every model feature — the union of the
 * hurdle, multiplier and lookalike feature lists of the version's own config —
 * and for the predicted LTV at the target horizon, between
 *  - current: the users installed in the monitor.window_days (W) before
 *    as_of, each at the age they have at as_of, and
 *  - reference: the users installed in each of the monitor.reference_windows
 *    (K) windows of W days that end at the version's as_of T, T - W, ...,
 *    T - (K-1) W, each at the age they had at the end of their window.
 * Both sides are built by model_data_for_scoring and predicted by
 * serving_predict, exactly as `score` would have served them, so they have the
 * same age mix (0 .. W-1 days) and the same feature code. The version's own
 * training rows are not the reference: they are (user, snapshot age) pairs of
 * users at least H days old, weighted by sampling, and PSI against them would
 * measure the difference in ages, not drift. The reference reads nothing after
 * T; the current side nothing after as_of.
 *
 * Calibration once outcomes mature, per horizon H, two groups of users, each
 * against their actual ltv_H, complete at as_of:
 *  - at T: the users installed in the H days before T, predicted as the
 *    version served them at T (their data before T, through serving_predict),
 *    whose ltv_H is complete at as_of (install + H <= as_of); per install week
 *    counted back from T. These users were not in the version's training rows
 *    at H (they were younger than H at T). Only outcomes are read after T.
 *  - new cohorts: the users installed after T, per install week
 *    [T + 7k days, T + 7(k+1) days), each week predicted as the daily score of
 *    its last day S_k = T + 7(k+1) days served it: every user younger than the
 *    longest horizon at S_k predicted together (as `score` does, so the curves
 *    method levels cohorts as it did), from their days complete at S_k (ages
 *    0 to 6 days), by a frame built by model_data_for_scoring at S_k. A week
 *    is judged at H once all of it is complete (S_k + H <= as_of); the latest
 *    monitor.calibration_weeks such weeks per horizon (each costs one scoring
 *    pass). Why the end of the install week rather than each user's first
 *    snapshot age: one frame per week serves every user of it at the age the
 *    weekly drift windows use, and the bias of young users' predictions is
 *    what campaign decisions are taken on. Nothing after S_k is read for a
 *    week's predictions (tests/unit/test_monitor.c changes every event after
 *    S_k and checks the predictions do not move).
 *
 * Levels: drift is the worst feature or prediction PSI (psi.h levels).
 * Calibration warns for a group (a horizon's users at T, its new cohorts
 * together, or one install week of either) of at least
 * monitor.calibration_min_users complete users whose bias
 * |sum predicted / sum actual - 1| is both material (>= monitor.calibration_warn)
 * and significant: |z| >= 2.576 (two-sided p < 0.01) for
 * z = mean(pred - actual) / (sd(pred - actual) / sqrt(n)). LTV is heavy-tailed:
 * a few hundred users' total revenue moves by tens of percent by chance, and
 * a warning that fires on chance alone teaches people to ignore it.
 * The calibration level is the worst group's; the status the worse of drift
 * and calibration.
 * The report is stored in the registry's monitor_reports table.
 */
#ifndef LTV_MONITOR_H
#define LTV_MONITOR_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/config.h"
#include "ltv/predictor.h"
#include "ltv/psi.h"

struct registry;

struct monitor_options {
	const char *model;  /* version number or alias; NULL: production */
	int64_t as_of;      /* INT64_MIN: the latest event ingested */
	int json;           /* print the JSON report instead of the text */
};

struct monitor_psi {
	char name[64];      /* a feature column, or "predicted_ltv_<H>" */
	struct psi_result psi;
	enum psi_level level;
};

/* Predicted against actual for one group of users at one horizon. */
struct monitor_calibration {
	int64_t horizon;
	size_t n;            /* users whose ltv_H is complete at as_of */
	double sum_pred, sum_actual;
	double sum_diff2;    /* sum of (pred - actual)^2 */
	double bias;         /* sum_pred / sum_actual - 1; NaN when sum_actual is 0 or n is 0 */
	double z;            /* mean(pred - actual) / its standard error; NaN when n < 2 */
	int judged;          /* n >= monitor.calibration_min_users */
	enum psi_level level; /* PSI_OK or PSI_WARN */
};

/* One install week [week_start, week_start + 7 days) at one horizon. */
struct monitor_week {
	int64_t week_start;
	int64_t scored_at;   /* the cut-off its predictions were made at: T, or its S_k */
	int new_cohort;      /* 1: installed after T (scored at S_k); 0: before T (scored at T) */
	struct monitor_calibration c;
};

struct monitor_result {
	int64_t model_version;
	int64_t model_as_of;  /* T */
	int64_t as_of;
	int64_t window_days, reference_windows;
	double psi_warn, psi_alert;
	double calibration_warn;  /* the band: |bias| at or above it is material */
	size_t n_current, n_reference;
	struct monitor_psi *psi;  /* features, then the prediction last */
	size_t n_psi;
	struct monitor_calibration cal[PREDICTOR_MAX_HORIZONS];     /* users predicted at T */
	struct monitor_calibration cal_new[PREDICTOR_MAX_HORIZONS]; /* new cohorts' weeks together */
	size_t n_cal;                                               /* horizons */
	struct monitor_week *weeks;  /* by horizon, then install week (at T's first) */
	size_t n_weeks;
	int64_t calibration_warn_n;  /* groups that warn (totals and weeks) */
	enum psi_level drift_level;       /* the worst PSI */
	enum psi_level calibration_level; /* PSI_OK or PSI_WARN */
	enum psi_level level;     /* the worse of the two */
	double max_psi;
	char worst[64];           /* the PSI row with max_psi */
	int64_t report_id;        /* its row in monitor_reports */
};

/*
 * Computes the report (above), stores it in cfg's registry and prints it to
 * out (text, or JSON with opts->json). LTV_EUSAGE when as_of is before the
 * version's as_of or no user was installed in either window; the message says
 * which and what to pass. On success *out_result (which may be NULL) holds the
 * result; release it with monitor_result_release.
 */
int monitor_run(const struct config *cfg, struct registry *reg, const struct monitor_options *opts,
		FILE *out, struct monitor_result *out_result, struct ltv_err *err);
void monitor_result_release(struct monitor_result *r);

/* The JSON report (caller frees): what is stored and printed with --json. */
char *monitor_report_json(const struct monitor_result *r);

/* Process exit status of a level: 0 ok, 3 warn, 4 alert. */
int monitor_exit_status(enum psi_level level);

#endif
