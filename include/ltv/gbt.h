/*
 * Gradient-boosted trees: a thin, pure wrapper over XGBoost's C API used by
 * the hurdle and multiplier stages. Arrays in, a model out; it never touches
 * files or the registry. Features are row-major floats, NaN meaning missing.
 *
 * Trees are grown with tree_method=hist. With a validation set, training
 * stops early and the model is cut (XGBoosterSlice) to the best round, so a
 * model holds exactly best_iteration + 1 rounds of trees: predictions, saved
 * bodies and reloaded models all use only those, with nothing to remember.
 *
 * Prediction walks the trees natively (gbt_forest.h) when that gives
 * XGBoost's numbers bit for bit, which gbt_fit and gbt_load check; XGBoost's
 * own call costs ~180 µs however few the rows.
 *
 * Thread safety: every function may run concurrently on different models.
 * gbt_predict, gbt_save and gbt_feature_importance may also run concurrently
 * on the same model (XGBoost keeps their output buffers per thread).
 */
#ifndef LTV_GBT_H
#define LTV_GBT_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

/* Blob magic of a saved model (see gbt_save). */
#define GBT_BLOB_MAGIC "LTVGBT01"
#define GBT_BLOB_VERSION 1u

/* Rows handed to XGBoost per call by gbt_predict: bounds its buffers (~512 KiB). */
#define GBT_PREDICT_CHUNK_ROWS ((size_t)1 << 17)

struct gbt_param {
	/* "binary:logistic", "reg:squarederror", "reg:gamma" or "reg:tweedie". */
	const char *objective;
	/* NULL: the objective's own (logloss, rmse, gamma-nloglik,
	 * tweedie-nloglik@<power>). Else an XGBoost metric name; early stopping
	 * maximises auc, aucpr, map and ndcg and minimises all others. */
	const char *eval_metric;
	double tweedie_variance_power; /* in [1, 2); reg:tweedie only */
	int max_depth;                 /* 1..64 */
	double eta;                    /* (0, 1] */
	int n_rounds;                  /* maximum boosting rounds, >= 1 */
	int early_stopping_rounds;     /* >= 1; used when a validation set is given */
	double min_child_weight;       /* >= 0 */
	double subsample;              /* (0, 1] */
	double colsample_bytree;       /* (0, 1] */
	double lambda;                 /* L2 on leaf weights, >= 0 */
	int max_bin;                   /* 2..1024: histogram bins per feature (hist) */
	uint32_t seed;
	int n_threads;                 /* >= 1, explicit: never "all cores" */
	/*
	 * NULL, or asked before each boosting round for the fit's thread count
	 * now (>= 1; e.g. a stage task's share of the cores, which grows when
	 * its neighbours finish). The booster's nthread follows it from that
	 * round on; the model does not change (see below), only the cores used.
	 */
	int (*threads_now)(void *arg);
	void *threads_arg;
};

/*
 * Defaults: reg:squarederror, max_depth 6, eta 0.1, 500 rounds, early stop
 * after 30, min_child_weight 1, subsample 1, colsample_bytree 1, lambda 1,
 * max_bin 256, tweedie power 1.5, seed 0, 1 thread (XGBoost's own defaults where it has
 * them). With XGBoost 1.7 and tree_method=hist, the same param and seed give
 * bit-identical models for any n_threads, row and column sampling included
 * (tests/unit/test_gbt.c checks 1 vs 2 threads).
 */
void gbt_param_init_defaults(struct gbt_param *p);
/* NULL when p is usable, else a static string saying which field is wrong and why. */
const char *gbt_param_check(const struct gbt_param *p);

struct gbt_model;

/*
 * Fits a model. x_train is n_train × n_features row-major; y_train has
 * n_train labels ([0, 1] for logistic, > 0 for gamma, >= 0 for tweedie);
 * w_train is NULL or n_train non-negative weights. With n_valid > 0, the
 * validation metric is computed after every round, training stops once it
 * has not improved for early_stopping_rounds rounds, and the model keeps the
 * rounds up to the best one. With n_valid == 0 all n_rounds are kept.
 * feature_names is NULL or n_features strings (stored inside the model).
 * On success *out_model is a new model the caller frees with gbt_free.
 * Returns 0, LTV_ECONFIG (bad param), LTV_EINVAL (bad data) or LTV_EMODEL.
 */
int gbt_fit(const struct gbt_param *p,
	    const float *x_train, const float *y_train, const float *w_train, size_t n_train,
	    const float *x_valid, const float *y_valid, size_t n_valid,
	    size_t n_features, const char *const *feature_names,
	    struct gbt_model **out_model, struct ltv_err *err);
/*
 * gbt_fit that frees *x_train (and sets it NULL) as soon as XGBoost's
 * training matrix holds its bins, so the float rows are not held through
 * the boosting rounds (hurdle at 1,000,000 users: about 50 MB a horizon).
 * On an error before that point *x_train is left to the caller.
 */
int gbt_fit_freeing_x(const struct gbt_param *p,
		      float **x_train, const float *y_train, const float *w_train, size_t n_train,
		      const float *x_valid, const float *y_valid, size_t n_valid,
		      size_t n_features, const char *const *feature_names,
		      struct gbt_model **out_model, struct ltv_err *err);

/*
 * Unweighted training rows binned once for several fits that differ only in
 * their labels (hurdle's two revenue candidates on the same payers): XGBoost
 * cuts each feature's max_bin bins and bins the rows once, where each
 * gbt_fit does both again. The bins depend on the rows alone, so a fit on
 * them gives gbt_fit's model to the bit. x is not kept. NULL feature_names
 * as for gbt_fit. Free with gbt_rows_free (NULL is a no-op).
 */
struct gbt_rows;
int gbt_rows_new(const float *x, size_t n_rows, size_t n_features,
		 const char *const *feature_names, int n_threads, int max_bin,
		 struct gbt_rows **out_rows, struct ltv_err *err);
void gbt_rows_free(struct gbt_rows *rows);
/*
 * gbt_fit on train's rows with labels y_train (train's n_rows of them),
 * without weights; p->max_bin must be the one train was binned with. The
 * labels stay set on train until the next fit: fits on one train must not
 * run at the same time.
 */
int gbt_fit_rows(const struct gbt_param *p, struct gbt_rows *train, const float *y_train,
		 const float *x_valid, const float *y_valid, size_t n_valid,
		 const char *const *feature_names, struct gbt_model **out_model,
		 struct ltv_err *err);

/*
 * Predicts n_rows rows of x (row-major, n_features must equal the model's)
 * into the caller's out_pred[n_rows], on the transformed scale: probability
 * for binary:logistic, the mean for the regression objectives. Works in
 * chunks of GBT_PREDICT_CHUNK_ROWS, so memory stays bounded for any n_rows.
 */
int gbt_predict(const struct gbt_model *m, const float *x, size_t n_rows, size_t n_features,
		double *out_pred, struct ltv_err *err);
/* As gbt_predict, but the raw margin (log-odds for logistic, log-mean for gamma/tweedie). */
int gbt_predict_margin(const struct gbt_model *m, const float *x, size_t n_rows,
		       size_t n_features, double *out_pred, struct ltv_err *err);

/*
 * Whether m predicts with its native forest (include/ltv/gbt_forest.h): set
 * when the forest gave XGBoost's own predictions, to the bit, on the probe
 * rows checked at load and fit. Otherwise XGBoost predicts.
 */
int gbt_native(const struct gbt_model *m);
/*
 * A bound on the absolute value of every margin gbt_predict_margin can give
 * (gbt_forest_margin_bound), so of every prediction through the objective's
 * link; INFINITY when XGBoost predicts (no forest to read the leaves of).
 */
double gbt_margin_bound(const struct gbt_model *m);
/*
 * As gbt_predict (margin: as gbt_predict_margin), always through XGBoost,
 * never the native forest: for tests and benchmarks that compare the two.
 */
int gbt_predict_xgboost(const struct gbt_model *m, const float *x, size_t n_rows,
			size_t n_features, int margin, double *out_pred, struct ltv_err *err);
/*
 * Each feature's contribution to the raw margin of each row (XGBoost's
 * TreeSHAP, exact): out_contrib is n_rows × (n_features + 1), row-major, the
 * last column the bias (the expected margin). A row's n_features + 1 values
 * sum to its gbt_predict_margin. Slower than gbt_predict (it builds a
 * DMatrix): for explaining a few rows, not for serving.
 */
int gbt_predict_contribs(const struct gbt_model *m, const float *x, size_t n_rows,
			 size_t n_features, double *out_contrib, struct ltv_err *err);

/*
 * Serialises m into a new buffer *out_buf (caller frees) of *out_len bytes:
 * blob.h fields after magic GBT_BLOB_MAGIC, version GBT_BLOB_VERSION:
 *   str objective, str eval_metric, u64 n_features, u32 best_iteration,
 *   u32 rounds_trained, f64 best_score, u64 XXH3-64 of the body,
 *   u64 body length, body (XGBoost JSON model, already cut to the best round).
 * The checksum catches corruption in storage; XGBoost itself trusts a body,
 * and a deliberately crafted one can crash it, so load only blobs we wrote.
 */
int gbt_save(const struct gbt_model *m, uint8_t **out_buf, size_t *out_len, struct ltv_err *err);
/*
 * The booster alone in XGBoost's own JSON model format (what XGBoosterSaveModel
 * writes to a ".json" file), loadable by any XGBoost >= 1.0: for `models
 * export`. *out_text is NUL-terminated; the caller frees it.
 */
int gbt_save_json(const struct gbt_model *m, char **out_text, size_t *out_len, struct ltv_err *err);

/*
 * Rebuilds a model saved by gbt_save, predicting with n_threads (>= 1)
 * threads. A truncated, foreign or corrupted buffer returns LTV_EINVAL (or
 * LTV_EMODEL if XGBoost rejects the body) without handing bad bytes to XGBoost.
 * On success *out_model is a new model the caller frees with gbt_free.
 */
int gbt_load(const void *buf, size_t len, int n_threads, struct gbt_model **out_model,
	     struct ltv_err *err);
/* Frees m; NULL is a no-op. */
void gbt_free(struct gbt_model *m);

/* 0-based index of the last round kept: the model has best_iteration + 1 rounds. */
int gbt_best_iteration(const struct gbt_model *m);
/* Validation metric at best_iteration; NaN when fitted without a validation set. */
double gbt_best_score(const struct gbt_model *m);
/* Rounds boosted before the cut (best_iteration + 1 + rounds without improvement). */
int gbt_rounds_trained(const struct gbt_model *m);
size_t gbt_n_features(const struct gbt_model *m);
/* The objective's name; borrowed, lives as long as m. */
const char *gbt_objective(const struct gbt_model *m);

/*
 * Writes each feature's total split gain into the caller's
 * out_gain[n_features] (0 for features no tree splits on).
 */
int gbt_feature_importance(const struct gbt_model *m, double *out_gain, struct ltv_err *err);

/* XGBoost's version, e.g. "1.7.4"; a static string. */
const char *gbt_version_string(void);

#endif
