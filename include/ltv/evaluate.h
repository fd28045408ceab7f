/*
 * `ltvpipe evaluate`: an honest backtest. The pipeline is trained as of a
 * cut-off T into a scratch registry (so nothing after T reaches training:
 * feature_build_base reads only days complete at T); the users acquired in
 * the H days before T are scored with their data before T; their actual
 * ltv_H comes from the data after T. Each method alone, the selected and
 * calibrated mix, and four baselines are scored with the same metrics
 * (metrics.h), written as text, JSON and a self-contained HTML report, and
 * stored in the main registry's evaluations table.
 *
 * Every predictor, baselines included, is floored at the revenue the user
 * had shown before T (the product's rule, DESIGN.md "Time, windows and
 * labels"), so no predictor gets credit for revenue already seen.
 */
#ifndef LTV_EVALUATE_H
#define LTV_EVALUATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"
#include "ltv/config.h"
#include "ltv/hash.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/predictor.h"
#include "ltv/registry.h"

struct evaluate_options {
	/*
	 * NULL: train afresh as of T in a scratch registry. Else a model version
	 * of the registry ("production", "candidate" or a number), evaluated as it
	 * is stored, at the as_of it was trained at; as_of and horizons must then
	 * be unset (its own are used).
	 */
	const char *model;
	int64_t as_of;          /* INT64_MIN: the latest event time minus the longest horizon */
	const char *horizons;   /* "90,365", or NULL for the config's horizons */
	const char *output_dir; /* NULL: <run.log_dir>/eval-<run id> */
	const char *command;    /* the command line, for the report; may be NULL */
};

#define EVAL_GAIN_POINTS 101
#define EVAL_MAX_SERIES (METHOD_COUNT + 5)
#define EVAL_MIN_CAMPAIGN_USERS 50
/* A campaign metric over fewer campaigns than this is flagged as thin on the page. */
#define EVAL_FEW_CAMPAIGNS 5

enum eval_kind { EVAL_MIX, EVAL_METHOD, EVAL_BASELINE };

/* The metrics of one predictor on the users evaluated at one horizon. */
struct eval_scores {
	size_t n_used;                 /* users with a prediction and an actual */
	double mean_pred, mean_actual; /* over those users */
	struct metrics_campaign campaign; /* campaigns with >= EVAL_MIN_CAMPAIGN_USERS users */
	double gini;                   /* normalized Gini (metrics_normalized_gini) */
	double spearman, rmsle;
	double mae;                    /* mean absolute error per user */
	double r2;                     /* 1 - SSE / SST over users (NaN when actuals are constant) */
	struct metrics_deciles deciles;
	double auc;                    /* of p_payer against payer; NaN without p_payer */
	double gain_y[EVAL_GAIN_POINTS]; /* gain curve at k / (EVAL_GAIN_POINTS - 1) */
};

/*
 * Scores one predictor. actual, pred and campaign are n long (campaign[i] <
 * n_campaigns); p_payer and payer (0 or 1) may be NULL, and then auc is NaN.
 * Rows where pred is NaN are left out of every metric. When no row has a
 * prediction every metric is NaN and n_used is 0: that is not an error (a
 * baseline the data leave undefined). Metrics a degenerate sample leaves
 * undefined are NaN as metrics.h says. Errors only on bad values (an
 * infinity, a negative LTV), with the row in err.
 */
int eval_score(const double *actual, const double *pred, const double *p_payer,
	       const double *payer, const size_t *campaign, size_t n, size_t n_campaigns,
	       size_t min_campaign_users, struct eval_scores *out, struct ltv_err *err);

/* One predictor's predictions for the users evaluated at one horizon. */
struct eval_series {
	char name[32];         /* "mix", "hurdle", ..., "campaign_mean", "day0_multiplier", "baseline_bgnbd" */
	enum eval_kind kind;
	double *pred;          /* per evaluated user, never below revenue before T; NaN: none */
	double *p_payer;       /* NULL when the predictor has no payer probability */
	char note[256];        /* why there is no prediction, or how it was made; may be "" */
	struct eval_scores scores;
	/*
	 * The same metrics on revenue after as_of only (actual - revenue before,
	 * pred - revenue before): what had still to happen, without the credit
	 * every predictor gets for revenue it was shown.
	 */
	struct eval_scores after;
};

/* The users evaluated at one horizon and every predictor's predictions for them. */
struct eval_horizon {
	int64_t horizon;
	size_t n;              /* users installed in [T - horizon days, T) */
	int64_t *uid;          /* registry uid of each (user_id: result->users.user_id[uid - 1]) */
	double *actual;        /* ltv_H from all the data, i.e. after T too */
	double *payer;         /* 1 when the user paid between as_of and H */
	double *rev_before;    /* revenue on days complete at T: every prediction's floor */
	size_t *cohort;        /* model_data_cohort of the user in result->data */
	int *tier;             /* the evaluated model's tier for the user's campaign */
	size_t n_train;        /* users mature at H at T, what baselines a and b learnt from */
	/* share of actuals inside the mix's 80% intervals (NaN: no intervals) */
	double coverage_users, coverage_campaigns;
	size_t n_coverage_campaigns;
	/*
	 * Users whose band is one point (revenue so far: over 80% of their
	 * bucket's held-out users paid nothing more), their share, and the
	 * coverage of the other users' bands, which is what an 80% band promises.
	 */
	double point_band_users, coverage_users_open;
	/* the campaign band behind them (include/ltv/conformal.h): held-out groups, tau^2, k, q */
	size_t band_groups;
	double band_tau2, band_k, band_q;
	double band_boot_tau2, band_boot_q;  /* the bootstrap band (NaN: the k F band served) */
	struct eval_series series[EVAL_MAX_SERIES];
	size_t n_series;
};

/* BG/NBD (c) or Pareto/NBD (d) + Gamma-Gamma fitted as of T, or why not. */
struct eval_btyd_fit {
	int ok;
	double r, alpha, log_lik;
	double a, b;       /* BG/NBD's dropout after a purchase */
	double s, beta;    /* Pareto/NBD's dropout rate */
	double p, q, gamma;
	double n_customers, n_repeaters;
	char note[256];
};

struct eval_result {
	int64_t as_of;
	int64_t latest_event;      /* what the default as_of was computed from */
	char run_id[64];
	char config_hash[HASH_HEX_LEN];
	char *config_summary;      /* snapshots, target, validation days: one line; owned */
	int64_t target_horizon;    /* the model's; the page's opening sentence is about it */
	int64_t production_version; /* the main registry's production version, 0 when none */
	int64_t model_version;     /* the registry version evaluated (--model), 0: trained afresh */
	int64_t evaluation_id;     /* row of the main registry's evaluations table, 0 if not stored */
	char *output_dir;          /* owned */
	char *command;             /* owned; may be NULL */
	struct user_table users;   /* of the data evaluated */
	size_t n_cohorts;          /* data.n_apps * data.n_campaigns (model_data_cohort) */
	struct eval_horizon h[PREDICTOR_MAX_HORIZONS];
	size_t n_horizons;
	struct eval_btyd_fit bgnbd, pareto_nbd; /* baselines c and d */
	struct model_data data;    /* the scoring frame at T (owns the dictionaries) */
};

/* Frees everything inside r (the struct itself is the caller's). */
void eval_result_release(struct eval_result *r);

/*
 * Runs the backtest (see the top of this file), writes DIR/evaluation.txt,
 * .json and .html, stores the metrics in reg (cfg's main registry, open for
 * writing: ltvpipe's dispatcher opens it, creating it when missing) and
 * prints a summary to out. With --model, the version is read from reg in one
 * snapshot. When out_result is not NULL the result is left there for the
 * caller (who releases it). LTV_EUSAGE when as_of + the longest horizon is
 * after the data's latest event (actuals would be incomplete) or no user was
 * acquired in the horizon before as_of.
 */
int evaluate_run(const struct config *cfg, struct registry *reg, const struct evaluate_options *opts,
		 FILE *out, struct eval_result *out_result, struct ltv_err *err);
/* evaluate_run for --json: its messages on stderr, DIR/evaluation.json's document on stdout. */
int evaluate_run_json(const struct config *cfg, struct registry *reg,
		      const struct evaluate_options *opts, struct ltv_err *err);

/* ---- baselines (cli/eval_baselines.c) ---- */

/*
 * (a) The campaign's mean ltv_H over the users of d mature at H (labelled in
 * d, i.e. before its as_of); the mean of all of them for a campaign that has
 * none; NaN everywhere when no user is mature. (b) day-0 revenue (rev_d0)
 * times the global multiplier mean(ltv_H) / mean(rev_d0) over the same users
 * (the "window" of the name is day 0, the one day every user has lived); NaN
 * when there are none or they had no day-0 revenue. Predictions for the
 * rows given; out_n_train gets the number of mature users (may be NULL).
 */
void eval_baseline_campaign_mean(const struct model_data *d, int64_t horizon,
				 const size_t *rows, size_t n, double *out_pred, size_t *out_n_train);
void eval_baseline_window_multiplier(const struct model_data *d, int64_t horizon,
				     const size_t *rows, size_t n, double *out_pred);

/*
 * (c) BG/NBD + Gamma-Gamma and (d) Pareto/NBD + Gamma-Gamma, both fitted on
 * every user of d from their user-days in reg complete at d->as_of, in
 * weeks: x = purchase days after day 0 (the acquisition), t_x = the last
 * one, T = days complete; one Gamma-Gamma for both. Fills bgnbd and
 * pareto_nbd (ok 0 with a note when a model could not be fitted: that is
 * not an error).
 */
struct bgnbd_model;
struct pareto_nbd_model;
struct gamma_gamma_model;
enum eval_btyd_kind { EVAL_BTYD_BGNBD, EVAL_BTYD_PARETO_NBD };
struct eval_btyd {
	struct eval_btyd_fit bgnbd, pareto_nbd;
	struct bgnbd_model *bg;
	struct pareto_nbd_model *pn;
	struct gamma_gamma_model *gg;
	double *x, *t_x, *age_days, *m_x; /* per row of d */
};
int eval_btyd_fit(struct registry *reg, const struct model_data *d, struct eval_btyd *out,
		  struct ltv_err *err);
/*
 * Revenue before as_of plus expected purchases (under the count model of
 * kind) in the days left to H times expected spend per purchase, for the
 * rows given; NaN when that model was not fitted.
 */
int eval_btyd_predict(const struct eval_btyd *b, enum eval_btyd_kind kind, const struct model_data *d,
		      int64_t horizon, const size_t *rows, size_t n, double *out_pred, struct ltv_err *err);
void eval_btyd_release(struct eval_btyd *b);

/* ---- reports (cli/eval_report.c) ---- */

/*
 * The results as JSON text (caller frees). detailed 0: scalar metrics only,
 * what the registry stores; 1: also deciles, gain curves, campaigns, tiers.
 */
char *eval_report_json(const struct eval_result *r, int detailed);
int eval_report_text(const struct eval_result *r, const char *path, struct ltv_err *err);
int eval_report_html(const struct eval_result *r, const char *path, struct ltv_err *err);
/* The report's human name of a series ("ltvpipe (selected, calibrated)", ...). */
const char *eval_series_label(const struct eval_series *s);

#endif
