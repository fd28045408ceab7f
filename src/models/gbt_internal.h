/*
 * What the files of the gbt module (src/models/gbt.c: the fitted model;
 * src/models/gbt_fit.c: fitting) share and nobody else may see: the model
 * struct, the macro that turns an XGBoost failure into an ltv_err, and the
 * few functions both sides call. Together with those files it is the only
 * place that includes <xgboost/c_api.h> besides the logger (src/log.c); the
 * rest of ltvpipe goes through include/ltv/gbt.h.
 */
#ifndef LTV_GBT_INTERNAL_H
#define LTV_GBT_INTERNAL_H

#include <stddef.h>

#include <xgboost/c_api.h>

#include "ltv/gbt.h"

struct gbt_model {
	BoosterHandle booster;
	/* The same trees, evaluated natively; NULL where it did not match XGBoost. */
	struct gbt_forest *forest;
	int n_threads;
	char *objective;
	char *eval_metric;
	size_t n_features;
	int best_iteration;
	int rounds_trained;
	double best_score;
};

/*
 * Needs `int ret`, `struct ltv_err *err` and an `out:` label in scope. The
 * message names the XGBoost function (the text of `call` up to its '(').
 */
#define XGB_TRY(call)                                                            \
	do {                                                                     \
		if ((call) != 0) {                                               \
			ret = gbt_xgb_fail(err, #call);                          \
			goto out;                                                \
		}                                                                \
	} while (0)

/* gbt.c: XGB_TRY's error (XGBoost's last error, one line) */
int gbt_xgb_fail(struct ltv_err *err, const char *call);
/* gbt.c: the learner configured now, so concurrent predicts only read it */
int gbt_model_warm_up(struct gbt_model *m, struct ltv_err *err);
/* gbt.c: m->forest from the model's JSON body, kept only where it predicts as XGBoost does */
int gbt_model_forest_build(struct gbt_model *m, const char *json, size_t len, struct ltv_err *err);

/* gbt_fit.c: an objective ltvpipe fits (gbt_param_check's list), else NULL */
struct objective_info;
const struct objective_info *gbt_objective_find(const char *name);
/* gbt_fit.c: one booster parameter, a failure naming it */
int gbt_booster_set(BoosterHandle b, const char *name, const char *value, struct ltv_err *err);
int gbt_booster_set_double(BoosterHandle b, const char *name, double v, struct ltv_err *err);

#endif
