/*
 * Fitting gradient-boosted trees with XGBoost (contract in include/ltv/gbt.h;
 * the fitted model is gbt.c's, what both share is in gbt_internal.h): the
 * parameters and their check, the training matrix (a quantile matrix binned
 * straight from our dense floats), the booster's configuration and the
 * boosting rounds. Early stopping is done here on the validation metric
 * (natively, gbt_eval.h, else XGBoosterEvalOneIter), the rounds scored in
 * order but in batches, when a stop becomes possible (score_due), and the
 * booster is then sliced to the best round so nothing downstream has to
 * know about it.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/gbt.h"
#include "ltv/gbt_eval.h"
#include "ltv/gbt_forest.h"
#include "gbt_internal.h"

void gbt_param_init_defaults(struct gbt_param *p)
{
	p->objective = "reg:squarederror";
	p->eval_metric = NULL;
	p->tweedie_variance_power = 1.5;
	p->max_depth = 6;
	p->eta = 0.1;
	p->n_rounds = 500;
	p->early_stopping_rounds = 30;
	p->min_child_weight = 1.0;
	p->subsample = 1.0;
	p->colsample_bytree = 1.0;
	p->lambda = 1.0;
	p->max_bin = 256;
	p->seed = 0;
	p->n_threads = 1;
	p->threads_now = NULL;
	p->threads_arg = NULL;
}

enum label_rule { LABEL_UNIT, LABEL_ANY, LABEL_POSITIVE, LABEL_NONNEG };

static const struct objective_info {
	const char *name;
	const char *default_metric; /* NULL: built from the tweedie power */
	enum label_rule labels;
	const char *labels_text;
} objectives[] = {
	{ "binary:logistic", "logloss", LABEL_UNIT, "in [0, 1]" },
	{ "reg:squarederror", "rmse", LABEL_ANY, "finite" },
	{ "reg:gamma", "gamma-nloglik", LABEL_POSITIVE, "> 0" },
	{ "reg:tweedie", NULL, LABEL_NONNEG, ">= 0" },
};

const struct objective_info *gbt_objective_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(objectives) / sizeof(objectives[0]); i++)
		if (strcmp(objectives[i].name, name) == 0)
			return &objectives[i];
	return NULL;
}

/* Metrics where a larger value is better; everything else is minimised. */
static int metric_maximises(const char *metric)
{
	static const char *const up[] = { "auc", "aucpr", "map", "ndcg", "pre" };

	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		size_t n = strlen(up[i]);

		if (strncmp(metric, up[i], n) == 0 && (metric[n] == '\0' || metric[n] == '@'))
			return 1;
	}
	return 0;
}

const char *gbt_param_check(const struct gbt_param *p)
{
	const struct objective_info *obj = gbt_objective_find(p->objective);

	if (!obj)
		return "objective must be binary:logistic, reg:squarederror, reg:gamma or reg:tweedie";
	if (p->eval_metric && (!*p->eval_metric || strlen(p->eval_metric) > 64 ||
			       strpbrk(p->eval_metric, "\"\\, \t\n")))
		return "eval_metric must be one XGBoost metric name, e.g. rmse or logloss";
	if (strcmp(obj->name, "reg:tweedie") == 0 &&
	    !(p->tweedie_variance_power >= 1.0 && p->tweedie_variance_power < 2.0))
		return "tweedie_variance_power must be in [1, 2)";
	if (p->max_depth < 1 || p->max_depth > 64)
		return "max_depth must be between 1 and 64";
	if (!(p->eta > 0.0 && p->eta <= 1.0))
		return "eta must be in (0, 1]";
	if (p->n_rounds < 1 || p->n_rounds > 1000000)
		return "n_rounds must be between 1 and 1000000";
	if (p->early_stopping_rounds < 1)
		return "early_stopping_rounds must be at least 1";
	if (!(p->min_child_weight >= 0.0 && isfinite(p->min_child_weight)))
		return "min_child_weight must be a finite number >= 0";
	if (!(p->subsample > 0.0 && p->subsample <= 1.0))
		return "subsample must be in (0, 1]";
	if (!(p->colsample_bytree > 0.0 && p->colsample_bytree <= 1.0))
		return "colsample_bytree must be in (0, 1]";
	if (!(p->lambda >= 0.0 && isfinite(p->lambda)))
		return "lambda must be a finite number >= 0";
	if (p->max_bin < 2 || p->max_bin > 1024)
		return "max_bin must be between 2 and 1024";
	if (p->n_threads < 1 || p->n_threads > 1024)
		return "n_threads must be between 1 and 1024";
	return NULL;
}

static char *metric_name(const struct gbt_param *p, const struct objective_info *obj)
{
	if (p->eval_metric)
		return xstrdup(p->eval_metric);
	if (obj->default_metric)
		return xstrdup(obj->default_metric);
	return xasprintf("tweedie-nloglik@%.17g", p->tweedie_variance_power);
}

static int check_labels(const struct objective_info *obj, const float *y, const float *w,
			size_t n, const char *what, struct ltv_err *err)
{
	for (size_t i = 0; i < n; i++) {
		const float v = y[i];
		int ok = isfinite(v);

		switch (obj->labels) {
		case LABEL_UNIT: ok = ok && v >= 0.0f && v <= 1.0f; break;
		case LABEL_POSITIVE: ok = ok && v > 0.0f; break;
		case LABEL_NONNEG: ok = ok && v >= 0.0f; break;
		case LABEL_ANY: break;
		}
		if (!ok)
			return err_set(err, LTV_EINVAL,
				       "gbt: %s label %zu is %g; labels must be %s for %s",
				       what, i, (double)v, obj->labels_text, obj->name);
		if (w && !(isfinite(w[i]) && w[i] >= 0.0f))
			return err_set(err, LTV_EINVAL,
				       "gbt: %s weight %zu is %g; weights must be finite and >= 0",
				       what, i, (double)w[i]);
	}
	return 0;
}

/*
 * The training rows as one batch of XGBoost's data iterator: what
 * XGQuantileDMatrixCreateFromCallback reads. It sketches the bins straight
 * from our dense floats and keeps only the bin indices (1 byte a value),
 * where a DMatrix first copies every value into a row page (8 bytes a value:
 * index and float) and then bins that copy. The trees are the same
 * (bench/same_results.sh: identical artefact hashes).
 */
struct dense_batch {
	DMatrixHandle proxy;
	const float *x, *y, *w;
	size_t n_rows, n_features;
	int served;
};

static void dense_batch_reset(DataIterHandle handle)
{
	((struct dense_batch *)handle)->served = 0;
}

/* 1: a batch was set on the proxy; 0: no more (XGBoost's protocol, errors included). */
static int dense_batch_next(DataIterHandle handle)
{
	struct dense_batch *b = handle;
	const char *typestr = (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) ? "<f4" : ">f4";
	char iface[192];

	if (b->served)
		return 0;
	b->served = 1;
	snprintf(iface, sizeof(iface),
		 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"%s\", "
		 "\"version\": 3}", (uintptr_t)b->x, b->n_rows, b->n_features, typestr);
	if (XGProxyDMatrixSetDataDense(b->proxy, iface) != 0 ||
	    (b->y && XGDMatrixSetFloatInfo(b->proxy, "label", b->y, b->n_rows) != 0) ||
	    (b->w && XGDMatrixSetFloatInfo(b->proxy, "weight", b->w, b->n_rows) != 0))
		return 0; /* XGBoost then fails the creation with its own last error */
	return 1;
}

static int quantile_matrix_new(const float *x, const float *y, const float *w, size_t n_rows,
			       size_t n_features, int n_threads, int max_bin, DMatrixHandle *out,
			       struct ltv_err *err)
{
	struct dense_batch b = { .x = x, .y = y, .w = w, .n_rows = n_rows,
				 .n_features = n_features };
	char config[96];
	int ret = 0;

	/* The booster is given the same max_bin (booster_configure): the bins are cut here. */
	snprintf(config, sizeof(config), "{\"missing\": NaN, \"nthread\": %d, \"max_bin\": %d}",
		 n_threads, max_bin);
	XGB_TRY(XGProxyDMatrixCreate(&b.proxy));
	XGB_TRY(XGQuantileDMatrixCreateFromCallback(&b, b.proxy, NULL, dense_batch_reset,
						    dense_batch_next, config, out));
out:
	if (b.proxy)
		XGDMatrixFree(b.proxy);
	return ret;
}

/*
 * quantile: the training matrix (bins only); else one that predicts from raw
 * values. The validation rows stay a DMatrix: as a QuantileDMatrix binned by
 * the training matrix's cuts (ref) the trees were identical, but XGBoost 1.7
 * predicted on it through a row copy of its own, so hurdle's payer fits took
 * about 6x the CPU and its peak rose (802 to 880 MB at 1,000,000 users,
 * bench/run_memory.sh).
 */
static int matrix_new(const float *x, const float *y, const float *w, size_t n_rows,
		      size_t n_features, const char *const *feature_names, int n_threads,
		      int quantile, int max_bin, DMatrixHandle *out, struct ltv_err *err)
{
	DMatrixHandle d = NULL;
	int ret = 0;

	if (quantile) {
		if ((ret = quantile_matrix_new(x, y, w, n_rows, n_features, n_threads, max_bin, &d,
					       err)) < 0)
			goto out;
	} else {
		XGB_TRY(XGDMatrixCreateFromMat_omp(x, n_rows, n_features, NAN, &d, n_threads));
		XGB_TRY(XGDMatrixSetFloatInfo(d, "label", y, n_rows));
		if (w)
			XGB_TRY(XGDMatrixSetFloatInfo(d, "weight", w, n_rows));
	}
	if (feature_names)
		XGB_TRY(XGDMatrixSetStrFeatureInfo(d, "feature_name",
						   (const char **)feature_names, n_features));
	*out = d;
	d = NULL;
out:
	if (d)
		XGDMatrixFree(d);
	return ret;
}

int gbt_booster_set(BoosterHandle b, const char *name, const char *value, struct ltv_err *err)
{
	int ret = 0;

	XGB_TRY(XGBoosterSetParam(b, name, value));
out:
	if (ret < 0)
		err_prefix(err, "setting '%s' to '%s'", name, value);
	return ret;
}

int gbt_booster_set_double(BoosterHandle b, const char *name, double v, struct ltv_err *err)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.17g", v);
	return gbt_booster_set(b, name, buf, err);
}

static int booster_configure(BoosterHandle b, const struct gbt_param *p, const char *metric,
			     struct ltv_err *err)
{
	int ret;

	/* verbosity first so the rest is quiet; XGBoost's log is routed elsewhere. */
	if ((ret = gbt_booster_set(b, "verbosity", "0", err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "nthread", p->n_threads, err)) < 0 ||
	    (ret = gbt_booster_set(b, "tree_method", "hist", err)) < 0 ||
	    (ret = gbt_booster_set(b, "objective", p->objective, err)) < 0 ||
	    (ret = gbt_booster_set(b, "eval_metric", metric, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "max_depth", p->max_depth, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "eta", p->eta, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "min_child_weight", p->min_child_weight, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "subsample", p->subsample, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "colsample_bytree", p->colsample_bytree, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "lambda", p->lambda, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "max_bin", p->max_bin, err)) < 0 ||
	    (ret = gbt_booster_set_double(b, "seed", p->seed, err)) < 0)
		return ret;
	if (strcmp(p->objective, "reg:tweedie") == 0)
		return gbt_booster_set_double(b, "tweedie_variance_power", p->tweedie_variance_power, err);
	return 0;
}

/* The fit's thread count now: p->threads_now's answer (clamped), else p->n_threads. */
static int fit_threads(const struct gbt_param *p)
{
	int n = p->threads_now ? p->threads_now(p->threads_arg) : p->n_threads;

	return n < 1 ? 1 : n > 1024 ? 1024 : n;
}

/*
 * Sets the booster's nthread to n unless *current already is n. Boosting
 * rounds follow fit_threads, asked before each round: a fit that started
 * beside others (one core each) takes the cores they leave (hurdle's longest
 * payer fit at 1,000,000 users ran its last rounds on one core with the
 * other idle). Rounds are bit-identical for any nthread, so the trees are
 * too. XGBoost's validation metric is not (see xgboost_score).
 */
static int booster_threads(BoosterHandle b, int n, int *current, struct ltv_err *err)
{
	if (n == *current)
		return 0;
	*current = n;
	return gbt_booster_set_double(b, "nthread", n, err);
}

/* Parses the value out of "[12]\tvalid-rmse:0.1234" (one data set, one metric). */
static int parse_eval(const char *text, double *out_score, struct ltv_err *err)
{
	const char *p = strstr(text, "\tvalid-");
	char *end;
	double v;

	if (p)
		p = strchr(p, ':');
	if (!p)
		return err_set(err, LTV_EMODEL, "gbt: cannot read the validation metric from '%s'", text);
	errno = 0;
	v = strtod(p + 1, &end);
	if (errno == ERANGE || end == p + 1 || (*end != '\0' && *end != '\t' && *end != '\n'))
		return err_set(err, LTV_EMODEL, "gbt: bad validation metric value in '%s'", text);
	*out_score = v;
	return 0;
}

static int score_better(double score, double best, int maximise)
{
	if (isnan(score))
		return 0;
	if (isnan(best))
		return 1;
	return maximise ? score > best : score < best;
}

/*
 * A fit's validation rows and how their metric is computed: natively
 * (gbt_eval.h) while it can be, else by XGBoost on a DMatrix made when first
 * needed. Either way the score is the serial sum's, to the bit. Rounds
 * 0..n_scored-1 have been scored.
 */
struct valid_set {
	const float *x, *y;
	size_t n_rows, n_features;
	const char *const *feature_names;
	int max_bin;
	struct gbt_eval *native;
	DMatrixHandle matrix;
	int n_scored;
};

/*
 * The trees of rounds first..last, cut from the booster (XGBoosterSlice
 * copies them) and read from one JSON body; NULL when they cannot be read
 * natively or the cut fails.
 */
static struct gbt_forest *rounds_forest(BoosterHandle b, int first, int last, size_t n_features)
{
	BoosterHandle cut = NULL;
	struct gbt_forest *f = NULL;
	struct ltv_err ignored = { 0 };
	const char *body = NULL;
	bst_ulong body_len = 0;

	if (XGBoosterSlice(b, first, last + 1, 1, &cut) == 0 &&
	    XGBoosterSaveModelToBuffer(cut, "{\"format\": \"json\"}", &body_len, &body) == 0 &&
	    gbt_forest_from_json(body, (size_t)body_len, n_features, &f, &ignored) == 0 &&
	    gbt_forest_n_trees(f) != (size_t)(last - first + 1)) {
		gbt_forest_free(f);
		f = NULL;
	}
	if (cut)
		XGBoosterFree(cut);
	return f;
}

/*
 * Round r's score by XGBoost, the booster being at round last. It is asked
 * on one thread: XGBoost sums a metric's per-row losses in one partial sum
 * per thread, so 2 threads round differently from 1, and the score decides
 * the best round and is stored with the model (multiplier's hash at
 * 1,000,000 users differed between a 1-thread and a 2-thread run by one bit
 * of best_score). A past round is scored on the booster cut to rounds 0..r,
 * whose prediction adds the same leaves in the same order as the booster's
 * cache did round by round.
 */
static int xgboost_score(struct valid_set *v, BoosterHandle b, int r, int last, int n_threads,
			 int *threads, double *out_score, struct ltv_err *err)
{
	const char *eval_names[1] = { "valid" };
	const char *eval_text = NULL;
	BoosterHandle past = NULL;
	int past_threads = 0, ret = 0;

	/* From here on XGBoost evaluates (a new matrix: its cache predicts the trees so far). */
	gbt_eval_free(v->native);
	v->native = NULL;
	if (!v->matrix && (ret = matrix_new(v->x, v->y, NULL, v->n_rows, v->n_features,
					    v->feature_names, n_threads, 0, v->max_bin,
					    &v->matrix, err)) < 0)
		return ret;
	if (r < last) {
		XGB_TRY(XGBoosterSlice(b, 0, r + 1, 1, &past));
		ret = booster_threads(past, 1, &past_threads, err);
	} else {
		ret = booster_threads(b, 1, threads, err);
	}
	if (ret < 0)
		goto out;
	XGB_TRY(XGBoosterEvalOneIter(past ? past : b, r, &v->matrix, eval_names, 1, &eval_text));
	ret = parse_eval(eval_text, out_score, err);
out:
	if (past)
		XGBoosterFree(past);
	return ret;
}

/*
 * Early stopping's bookkeeping: the best round and its score so far, and
 * the round the fit stops after (-1: none yet).
 */
struct best_round {
	int iter, stop;
	double score;
	int maximise, patience;
};

/* gbt_fit's early-stopping rule for round r's score, rounds in order. */
static void best_round_see(struct best_round *br, int r, double score)
{
	if (br->iter < 0 || score_better(score, br->score, br->maximise)) {
		br->iter = r;
		br->score = score;
	} else if (r - br->iter >= br->patience) {
		br->stop = r;
	}
}

/*
 * Whether the rounds trained since the last scoring must be scored now that
 * round iter is trained. Rounds are scored only when a stop is possible:
 * a round not yet scored can only move the best round later, so no round
 * before the best scored one + patience can be the stop, and rounds are
 * trained up to it and then scored together, in order, with the very rule
 * of round-by-round scoring: the same stop, best round and score. Slicing
 * and reading the trees of a batch at once instead of each round's was
 * about 4.6% of hurdle's CPU at 1,000,000 users (perf: XGBoosterSlice
 * 2.7%, its JSON 0.7%, parsing it 1.2%; best payer rounds 32-41 of 53-62).
 * Scored by XGBoost (any metric gbt_eval does not compute), every round.
 */
static int score_due(const struct valid_set *v, const struct best_round *br, int iter,
		     int n_rounds)
{
	return !v->native || iter + 1 == n_rounds ||
	       iter - (br->iter < 0 ? 0 : br->iter) >= br->patience;
}

/*
 * Scores rounds v->n_scored..last (the booster is at round last), in order,
 * into br, until br says stop. Natively the trees of all those rounds are
 * read at once (one at a time if that fails); a round whose tree cannot be
 * read natively and every round after it are XGBoost's.
 */
static int score_rounds(struct valid_set *v, BoosterHandle b, int last, int n_threads,
			int *threads, struct best_round *br, struct ltv_err *err)
{
	const int first = v->n_scored;
	struct gbt_forest *batch = v->native ? rounds_forest(b, first, last, v->n_features) : NULL;
	int ret = 0;

	for (int r = first; r <= last && br->stop < 0; r++) {
		struct gbt_forest *one = NULL;
		double score = NAN;

		if (v->native && !batch)
			one = rounds_forest(b, r, r, v->n_features);
		if (batch || one) {
			if (batch)
				gbt_eval_add_tree(v->native, batch, (size_t)(r - first), n_threads);
			else
				gbt_eval_add_trees(v->native, one, n_threads);
			score = gbt_eval_score(v->native, n_threads);
			gbt_forest_free(one);
		} else if ((ret = xgboost_score(v, b, r, last, n_threads, threads, &score, err)) < 0) {
			break;
		}
		best_round_see(br, r, score);
		v->n_scored = r + 1;
	}
	gbt_forest_free(batch);
	return ret;
}

static void model_set_attrs(struct gbt_model *m)
{
	char buf[64];

	/* Informative only (the Python package reads these); failures do not matter. */
	snprintf(buf, sizeof(buf), "%d", m->best_iteration);
	XGBoosterSetAttr(m->booster, "best_iteration", buf);
	snprintf(buf, sizeof(buf), "%.17g", m->best_score);
	XGBoosterSetAttr(m->booster, "best_score", buf);
}

struct gbt_rows {
	DMatrixHandle matrix; /* XGBoost's quantile matrix, without labels between fits */
	size_t n_rows, n_features;
	int max_bin;
};

int gbt_rows_new(const float *x, size_t n_rows, size_t n_features,
		 const char *const *feature_names, int n_threads, int max_bin,
		 struct gbt_rows **out_rows, struct ltv_err *err)
{
	DMatrixHandle d = NULL;
	int ret;

	assert(x && out_rows);
	*out_rows = NULL;
	if (n_rows == 0 || n_features == 0 || n_features > INT_MAX)
		return err_set(err, LTV_EINVAL,
			       "gbt: cannot bin %zu rows of %zu features; need at least one of each",
			       n_rows, n_features);
	if (n_threads < 1 || max_bin < 2 || max_bin > 1024)
		return err_set(err, LTV_ECONFIG, "gbt: binning needs n_threads >= 1 and max_bin "
			       "in 2..1024, got %d and %d", n_threads, max_bin);
	if ((ret = matrix_new(x, NULL, NULL, n_rows, n_features, feature_names, n_threads, 1,
			      max_bin, &d, err)) < 0)
		return ret;
	*out_rows = xcalloc(1, sizeof(**out_rows));
	(*out_rows)->matrix = d;
	(*out_rows)->n_rows = n_rows;
	(*out_rows)->n_features = n_features;
	(*out_rows)->max_bin = max_bin;
	return 0;
}

void gbt_rows_free(struct gbt_rows *r)
{
	if (!r)
		return;
	XGDMatrixFree(r->matrix);
	free(r);
}

/*
 * gbt_fit; x_release, when not NULL, is freed once the training matrix holds
 * x_train; with binned, the rows are binned's (x_train unused) and only the
 * labels are set on its matrix.
 */
static int fit(const struct gbt_param *p, const float *x_train, float **x_release,
	       struct gbt_rows *binned, const float *y_train, const float *w_train, size_t n_train,
	       const float *x_valid, const float *y_valid, size_t n_valid,
	       size_t n_features, const char *const *feature_names,
	       struct gbt_model **out_model, struct ltv_err *err)
{
	const struct objective_info *obj = gbt_objective_find(p->objective);
	DMatrixHandle dtrain = NULL;
	DMatrixHandle cache[2] = { NULL, NULL };
	struct valid_set valid = { .x = x_valid, .y = y_valid, .n_rows = n_valid,
				   .n_features = n_features, .feature_names = feature_names,
				   .max_bin = p->max_bin };
	BoosterHandle booster = NULL, sliced = NULL;
	struct gbt_model *m = NULL;
	const char *reason = gbt_param_check(p);
	char *metric = NULL;
	struct best_round br = { .iter = -1, .stop = -1, .score = NAN,
				 .patience = p->early_stopping_rounds };
	int best = -1, rounds = 0, threads = p->n_threads, want = p->n_threads;
	double best_score = NAN;
	int ret = 0;

	assert((x_train || binned) && y_train && out_model);
	assert(n_valid == 0 || (x_valid && y_valid));
	*out_model = NULL;
	if (reason)
		return err_set(err, LTV_ECONFIG, "gbt: %s", reason);
	if (n_train == 0 || n_features == 0 || n_features > INT_MAX)
		return err_set(err, LTV_EINVAL,
			       "gbt: cannot fit on %zu rows of %zu features; need at least one of each",
			       n_train, n_features);
	if ((ret = check_labels(obj, y_train, w_train, n_train, "training", err)) < 0 ||
	    (ret = check_labels(obj, y_valid, NULL, n_valid, "validation", err)) < 0)
		return ret;

	if (binned && (binned->n_rows != n_train || binned->n_features != n_features ||
		       binned->max_bin != p->max_bin || w_train))
		return err_set(err, LTV_EINVAL, "gbt: binned rows are %zu x %zu with max_bin %d; "
			       "the fit wants %zu x %zu with max_bin %d%s", binned->n_rows,
			       binned->n_features, binned->max_bin, n_train, n_features,
			       p->max_bin, w_train ? " and weights" : "");
	metric = metric_name(p, obj);
	br.maximise = metric_maximises(metric);
	if (binned) {
		XGB_TRY(XGDMatrixSetFloatInfo(binned->matrix, "label", y_train, n_train));
		dtrain = binned->matrix;
	} else if ((ret = matrix_new(x_train, y_train, w_train, n_train, n_features,
				     feature_names, p->n_threads, 1, p->max_bin, &dtrain, err)) < 0) {
		goto out;
	}
	if (x_release) { /* the quantile matrix holds its own bins of every value */
		free(*x_release);
		*x_release = NULL;
	}
	/*
	 * A metric computed natively leaves the validation rows out of XGBoost
	 * (no DMatrix, nothing in the booster's cache); any other is XGBoost's
	 * on a DMatrix made here, which also reports rows it refuses.
	 */
	cache[0] = dtrain;
	if (n_valid && !(valid.native = gbt_eval_new(p->objective, metric, x_valid, y_valid,
						     n_valid, n_features))) {
		if ((ret = matrix_new(x_valid, y_valid, NULL, n_valid, n_features, feature_names,
				      p->n_threads, 0, p->max_bin, &valid.matrix, err)) < 0)
			goto out;
		cache[1] = valid.matrix;
	}
	XGB_TRY(XGBoosterCreate(cache, cache[1] ? 2 : 1, &booster));
	if ((ret = booster_configure(booster, p, metric, err)) < 0)
		goto out;

	for (int iter = 0; iter < p->n_rounds; iter++) {
		want = fit_threads(p);
		if ((ret = booster_threads(booster, want, &threads, err)) < 0)
			goto out;
		XGB_TRY(XGBoosterUpdateOneIter(booster, iter, dtrain));
		rounds = iter + 1;
		if (!n_valid) {
			best = iter;
			continue;
		}
		if (!score_due(&valid, &br, iter, p->n_rounds))
			continue;
		if ((ret = score_rounds(&valid, booster, iter, want, &threads, &br, err)) < 0)
			goto out;
		best = br.iter;
		best_score = br.score;
		if (br.stop >= 0) {
			rounds = br.stop + 1; /* is iter: see score_due */
			break;
		}
	}

	if (best + 1 < rounds) {
		XGB_TRY(XGBoosterSlice(booster, 0, best + 1, 1, &sliced));
		XGBoosterFree(booster);
		booster = sliced;
		sliced = NULL;
	}
	/* The fit's last share of the cores, not evaluation's 1, for predicting. */
	if ((ret = booster_threads(booster, want, &threads, err)) < 0)
		goto out;

	m = xcalloc(1, sizeof(*m));
	m->booster = booster;
	booster = NULL;
	m->objective = xstrdup(p->objective);
	m->eval_metric = metric;
	metric = NULL;
	m->n_features = n_features;
	m->best_iteration = best;
	m->rounds_trained = rounds;
	m->best_score = best_score;
	m->n_threads = threads;
	model_set_attrs(m);
	if ((ret = gbt_model_warm_up(m, err)) < 0)
		goto out;
	{
		const char *body = NULL;
		bst_ulong body_len = 0;

		XGB_TRY(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &body_len,
						   &body));
		if ((ret = gbt_model_forest_build(m, body, (size_t)body_len, err)) < 0)
			goto out;
	}
	*out_model = m;
	m = NULL;
out:
	gbt_free(m);
	if (sliced)
		XGBoosterFree(sliced);
	if (booster)
		XGBoosterFree(booster);
	if (valid.matrix)
		XGDMatrixFree(valid.matrix);
	gbt_eval_free(valid.native);
	if (dtrain && !binned)
		XGDMatrixFree(dtrain);
	free(metric);
	return ret;
}

int gbt_fit(const struct gbt_param *p,
	    const float *x_train, const float *y_train, const float *w_train, size_t n_train,
	    const float *x_valid, const float *y_valid, size_t n_valid,
	    size_t n_features, const char *const *feature_names,
	    struct gbt_model **out_model, struct ltv_err *err)
{
	return fit(p, x_train, NULL, NULL, y_train, w_train, n_train, x_valid, y_valid, n_valid,
		   n_features, feature_names, out_model, err);
}

int gbt_fit_freeing_x(const struct gbt_param *p,
		      float **x_train, const float *y_train, const float *w_train, size_t n_train,
		      const float *x_valid, const float *y_valid, size_t n_valid,
		      size_t n_features, const char *const *feature_names,
		      struct gbt_model **out_model, struct ltv_err *err)
{
	return fit(p, *x_train, x_train, NULL, y_train, w_train, n_train, x_valid, y_valid,
		   n_valid, n_features, feature_names, out_model, err);
}

int gbt_fit_rows(const struct gbt_param *p, struct gbt_rows *train, const float *y_train,
		 const float *x_valid, const float *y_valid, size_t n_valid,
		 const char *const *feature_names, struct gbt_model **out_model,
		 struct ltv_err *err)
{
	return fit(p, NULL, NULL, train, y_train, NULL, train->n_rows, x_valid, y_valid, n_valid,
		   train->n_features, feature_names, out_model, err);
}
