/*
 * Unit tests for the native early-stopping metric (src/models/gbt_eval.c):
 * for every objective and metric ltvpipe fits with, every round's score
 * equals XGBoost's own XGBoosterEvalOneIter on one thread, to the bit, on
 * awkward data (missing and huge features, a huge residual first so the
 * serial sum matters, probabilities clipped at both ends, gamma predictions
 * below its 1e-6 floor, weighted training rows), and metrics it does not
 * compute are left to XGBoost.
 */
#include "testutil.h"

#include <xgboost/c_api.h>

#include "ltv/gbt.h"
#include "ltv/gbt_eval.h"
#include "ltv/gbt_forest.h"

#define N_FEATURES 5
#define N_TRAIN 6000
/* Above twice gbt_eval's parallel threshold, so 2 threads do split the rows. */
#define N_VALID 10000

static uint64_t rng_state = 0x3c6ef372fe94f82bULL;

static double unif(void)
{
	return test_unif(&rng_state);
}

/* 10% missing, integers (ties with split conditions), huge and tiny values. */
static float *make_rows(size_t n)
{
	return test_random_rows(&rng_state, n, N_FEATURES, 0.1, 0.11);
}

static double signal(const float *row)
{
	return (isnan(row[0]) ? 3 : row[0] > 1e29f ? 8 : row[0]) +
	       0.5 * (isnan(row[1]) ? -2 : row[1] > 4) + unif();
}

/* A case's labels from its rows: what makes its metric awkward (see each case). */
enum labels { LABELS_SEPARABLE, LABELS_HUGE_FIRST, LABELS_TINY_POSITIVE, LABELS_ZERO_INFLATED };

static float label_of(enum labels kind, const float *row, size_t i)
{
	const double s = signal(row);

	switch (kind) {
	case LABELS_SEPARABLE: /* fractional labels too: both log terms count */
		return i % 97 == 0 ? 0.3f : s > 4 ? 1.0f : 0.0f;
	case LABELS_HUGE_FIRST: /* one residual that swallows the small ones after it */
		return i == 0 ? 1e8f : i % 500 == 0 ? -1e6f : (float)(3 * s);
	case LABELS_TINY_POSITIVE: /* means far below gamma-nloglik's 1e-6 floor */
		return (float)(s > 4 ? exp(s) : 1e-9 * (1 + unif()));
	default:
		return unif() < 0.4 ? 0.0f : (float)exp(s / 4);
	}
}

static DMatrixHandle matrix(const float *x, const float *y, const float *w, size_t n)
{
	DMatrixHandle d = NULL;

	assert_int_equal(XGDMatrixCreateFromMat(x, n, N_FEATURES, NAN, &d), 0);
	assert_int_equal(XGDMatrixSetFloatInfo(d, "label", y, n), 0);
	if (w)
		assert_int_equal(XGDMatrixSetFloatInfo(d, "weight", w, n), 0);
	return d;
}

static void set(BoosterHandle b, const char *name, const char *value)
{
	if (XGBoosterSetParam(b, name, value) != 0)
		fail_msg("setting %s to %s: %s", name, value, XGBGetLastError());
}

/* The number in "[3]\tvalid-rmse:0.12345678901234567", as gbt_fit.c reads it. */
static double xgboost_score(BoosterHandle b, int iter, DMatrixHandle valid)
{
	const char *names[1] = { "valid" }, *text = NULL, *colon;

	set(b, "nthread", "1");
	assert_int_equal(XGBoosterEvalOneIter(b, iter, &valid, names, 1, &text), 0);
	colon = strrchr(text, ':');
	assert_non_null(colon);
	return strtod(colon + 1, NULL);
}

/* Round iter's tree added natively, as gbt_fit.c does: the booster cut to it, read from JSON. */
static void add_round(struct gbt_eval *e, BoosterHandle b, int iter, int n_threads)
{
	BoosterHandle one = NULL;
	const char *body = NULL;
	bst_ulong len = 0;
	struct gbt_forest *f = NULL;
	struct ltv_err err = { 0 };

	assert_int_equal(XGBoosterSlice(b, iter, iter + 1, 1, &one), 0);
	assert_int_equal(XGBoosterSaveModelToBuffer(one, "{\"format\": \"json\"}", &len, &body), 0);
	if (gbt_forest_from_json(body, (size_t)len, N_FEATURES, &f, &err) < 0)
		fail_msg("round %d: %s", iter, err.msg);
	assert_int_equal(gbt_forest_n_trees(f), 1);
	gbt_eval_add_trees(e, f, n_threads);
	gbt_forest_free(f);
	XGBoosterFree(one);
}

struct eval_case {
	const char *objective, *metric;
	enum labels labels;
	const char *eta;
	const char *extra[2][2]; /* more parameters: name, value (NULL: none) */
};

/*
 * Trains `rounds` rounds with XGBoost (validation rows in its cache, as
 * gbt_fit.c had them) and compares each round's score, 1 and 2 native threads.
 * Returns XGBoost's last predictions' count of values <= floor or >= 1.
 */
static size_t expect_same_scores(const struct eval_case *c, int rounds, float floor_pred)
{
	float *xt = make_rows(N_TRAIN), *xv = make_rows(N_VALID);
	float *yt = malloc(N_TRAIN * sizeof(float)), *yv = malloc(N_VALID * sizeof(float));
	float *wt = malloc(N_TRAIN * sizeof(float));
	DMatrixHandle cache[2];
	BoosterHandle b = NULL;
	struct gbt_eval *one, *two;
	bst_ulong n_pred = 0;
	const float *pred = NULL;
	size_t extreme = 0;

	assert_non_null(yt), assert_non_null(yv), assert_non_null(wt);
	for (size_t i = 0; i < N_TRAIN; i++) {
		yt[i] = label_of(c->labels, xt + i * N_FEATURES, i + 1);
		wt[i] = (float)(i % 7 == 0 ? 25.0 : 0.2 + unif());
	}
	for (size_t i = 0; i < N_VALID; i++)
		yv[i] = label_of(c->labels, xv + i * N_FEATURES, i);
	cache[0] = matrix(xt, yt, wt, N_TRAIN);
	cache[1] = matrix(xv, yv, NULL, N_VALID);
	assert_int_equal(XGBoosterCreate(cache, 2, &b), 0);
	set(b, "verbosity", "0");
	set(b, "tree_method", "hist");
	set(b, "objective", c->objective);
	set(b, "eval_metric", c->metric);
	set(b, "eta", c->eta);
	set(b, "max_depth", "5");
	set(b, "min_child_weight", "0");
	for (int k = 0; k < 2 && c->extra[k][0]; k++)
		set(b, c->extra[k][0], c->extra[k][1]);
	if (strncmp(c->metric, "tweedie", 7) == 0)
		set(b, "tweedie_variance_power", strchr(c->metric, '@') + 1);
	one = gbt_eval_new(c->objective, c->metric, xv, yv, N_VALID, N_FEATURES);
	two = gbt_eval_new(c->objective, c->metric, xv, yv, N_VALID, N_FEATURES);
	assert_non_null(one), assert_non_null(two);
	for (int iter = 0; iter < rounds; iter++) {
		double want, got1, got2;

		set(b, "nthread", "2");
		assert_int_equal(XGBoosterUpdateOneIter(b, iter, cache[0]), 0);
		want = xgboost_score(b, iter, cache[1]);
		add_round(one, b, iter, 1);
		add_round(two, b, iter, 2);
		got1 = gbt_eval_score(one, 1);
		got2 = gbt_eval_score(two, 2);
		if (memcmp(&want, &got1, sizeof(want)) != 0 || memcmp(&want, &got2, sizeof(want)) != 0)
			fail_msg("%s %s round %d: xgboost %a (%.17g), native %a / %a", c->objective,
				 c->metric, iter, want, want, got1, got2);
	}
	assert_int_equal(XGBoosterPredict(b, cache[1], 0, 0, 0, &n_pred, &pred), 0);
	for (bst_ulong i = 0; i < n_pred; i++)
		extreme += pred[i] <= floor_pred || pred[i] >= 1.0f;
	gbt_eval_free(one), gbt_eval_free(two);
	XGBoosterFree(b);
	XGDMatrixFree(cache[0]), XGDMatrixFree(cache[1]);
	free(xt), free(xv), free(yt), free(yv), free(wt);
	return extreme;
}

static void test_logloss_matches_xgboost(void **state)
{
	/* Margins from -46 (base_score 1e-20) and unshrunk leaves (lambda 0). */
	const struct eval_case c = { "binary:logistic", "logloss", LABELS_SEPARABLE, "1",
				     { { "base_score", "1e-20" }, { "lambda", "0" } } };

	(void)state;
	/* Probabilities at both clips (below 1e-16 and exactly 1), so both were met. */
	assert_true(expect_same_scores(&c, 30, 1e-16f) > 0);
}

static void test_rmse_matches_xgboost(void **state)
{
	const struct eval_case c = { "reg:squarederror", "rmse", LABELS_HUGE_FIRST, "0.3",
				     { { NULL } } };

	(void)state;
	expect_same_scores(&c, 25, -INFINITY);
}

static void test_gamma_nloglik_matches_xgboost(void **state)
{
	/* Means from 1e-9 up, a round's leaves bounded so large labels do not overflow. */
	const struct eval_case c = { "reg:gamma", "gamma-nloglik", LABELS_TINY_POSITIVE, "1",
				     { { "base_score", "1e-9" }, { "max_delta_step", "2" } } };

	(void)state;
	/* Predictions below the metric's 1e-6 floor, so its clip was met. */
	assert_true(expect_same_scores(&c, 25, 1e-6f) > 0);
}

static void test_tweedie_nloglik_matches_xgboost(void **state)
{
	const struct eval_case c[] = {
		{ "reg:tweedie", "tweedie-nloglik@1.5", LABELS_ZERO_INFLATED, "0.5", { { NULL } } },
		{ "reg:tweedie", "tweedie-nloglik@1.2", LABELS_ZERO_INFLATED, "0.5", { { NULL } } },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++)
		expect_same_scores(&c[k], 20, -INFINITY);
}

/* A metric on another objective's transform: rmse of gamma's exp(margin). */
static void test_rmse_on_gamma_matches_xgboost(void **state)
{
	const struct eval_case c = { "reg:gamma", "rmse", LABELS_TINY_POSITIVE, "0.5",
				     { { "max_delta_step", "2" } } };

	(void)state;
	expect_same_scores(&c, 20, -INFINITY);
}

static void test_other_metrics_left_to_xgboost(void **state)
{
	static const char *const pairs[][2] = {
		{ "reg:squarederror", "mae" },        { "binary:logistic", "auc" },
		{ "binary:logistic", "error@0.7" },   { "reg:tweedie", "tweedie-nloglik@2" },
		{ "reg:tweedie", "tweedie-nloglik@" }, { "reg:tweedie", "tweedie-nloglik@1.5x" },
		{ "reg:absoluteerror", "rmse" },      { "reg:squarederror", "rmse@1" },
	};
	float x[N_FEATURES] = { 0 }, y[1] = { 0 };

	struct gbt_eval *e;

	(void)state;
	for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++)
		if (gbt_eval_new(pairs[k][0], pairs[k][1], x, y, 1, N_FEATURES) != NULL)
			fail_msg("%s %s should be left to xgboost", pairs[k][0], pairs[k][1]);
	e = gbt_eval_new("reg:squarederror", "rmse", x, y, 1, N_FEATURES);
	assert_non_null(e);
	gbt_eval_free(e);
	/* Rows XGBoost refuses: it must say so, as it did before. */
	x[3] = -INFINITY;
	assert_null(gbt_eval_new("reg:squarederror", "rmse", x, y, 1, N_FEATURES));
}

/*
 * XGBoost's EvalOneIter of a fitted model's saved body (the best round's
 * trees) on the validation rows, on one thread: what gbt_fit kept as
 * best_score, however it computed it.
 */
static double xgboost_score_of(const struct gbt_model *m, const char *metric, const float *xv,
			       const float *yv, size_t nv)
{
	DMatrixHandle d = matrix(xv, yv, NULL, nv);
	BoosterHandle b = NULL;
	struct ltv_err err = { 0 };
	char *body = NULL;
	size_t len = 0;
	double score;

	assert_int_equal(gbt_save_json(m, &body, &len, &err), 0);
	assert_int_equal(XGBoosterCreate(&d, 1, &b), 0);
	assert_int_equal(XGBoosterLoadModelFromBuffer(b, body, len), 0);
	set(b, "eval_metric", metric);
	score = xgboost_score(b, gbt_best_iteration(m), d);
	XGBoosterFree(b);
	XGDMatrixFree(d);
	free(body);
	return score;
}

/*
 * gbt_fit's best_score is XGBoost's own for the round it kept, whether the
 * metric was computed natively (rmse) or by XGBoost (mae, on a DMatrix of
 * the validation rows in the booster's cache, as every metric was before).
 */
static void test_fit_keeps_xgboost_best_score(void **state)
{
	static const char *const metrics[] = { "rmse", "mae" };
	float *x = make_rows(N_TRAIN + N_VALID), *y = malloc((N_TRAIN + N_VALID) * sizeof(float));
	const float *xv = x + (size_t)N_TRAIN * N_FEATURES, *yv = y + N_TRAIN;

	(void)state;
	assert_non_null(y);
	for (size_t i = 0; i < N_TRAIN + N_VALID; i++)
		y[i] = label_of(LABELS_ZERO_INFLATED, x + i * N_FEATURES, i + 1);
	for (size_t k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++) {
		struct gbt_param p;
		struct gbt_model *m = NULL;
		struct ltv_err err = { 0 };
		double want, got;

		gbt_param_init_defaults(&p);
		p.eval_metric = metrics[k];
		p.n_rounds = 40;
		p.eta = 0.5;
		p.early_stopping_rounds = 5;
		p.n_threads = 2;
		if (gbt_fit(&p, x, y, NULL, N_TRAIN, xv, yv, N_VALID, N_FEATURES, NULL, &m, &err) < 0)
			fail_msg("gbt_fit: %s", err.msg);
		assert_true(gbt_best_iteration(m) > 0);
		want = xgboost_score_of(m, metrics[k], xv, yv, N_VALID);
		got = gbt_best_score(m);
		if (memcmp(&want, &got, sizeof(want)) != 0)
			fail_msg("%s: best_score %a, xgboost %a", metrics[k], got, want);
		gbt_free(m);
	}
	free(x);
	free(y);
}

/*
 * The rounds a fit trains, its best round and best_score, by the rule of
 * scoring every round as it is trained: each round's score is XGBoost's on
 * the booster cut to rounds 0..r of `full` (the same trees: training does
 * not depend on the validation rows).
 */
static void stop_by_every_round(const struct gbt_model *full, const char *metric, int patience,
				const float *xv, const float *yv, size_t nv, int *out_best,
				int *out_rounds, double *out_score)
{
	DMatrixHandle d = matrix(xv, yv, NULL, nv);
	BoosterHandle b = NULL;
	struct ltv_err err = { 0 };
	char *body = NULL;
	size_t len = 0;
	int best = -1, r;
	double best_score = NAN;

	assert_int_equal(gbt_save_json(full, &body, &len, &err), 0);
	assert_int_equal(XGBoosterCreate(&d, 1, &b), 0);
	assert_int_equal(XGBoosterLoadModelFromBuffer(b, body, len), 0);
	for (r = 0; r < gbt_rounds_trained(full); r++) {
		BoosterHandle cut = NULL;
		double score;

		assert_int_equal(XGBoosterSlice(b, 0, r + 1, 1, &cut), 0);
		set(cut, "eval_metric", metric);
		score = xgboost_score(cut, r, d);
		XGBoosterFree(cut);
		if (best < 0 || score < best_score) {
			best = r;
			best_score = score;
		} else if (r - best >= patience) {
			break;
		}
	}
	*out_best = best;
	*out_rounds = r < gbt_rounds_trained(full) ? r + 1 : r;
	*out_score = best_score;
	XGBoosterFree(b);
	XGDMatrixFree(d);
	free(body);
}

/*
 * gbt_fit scores the rounds trained since the last scoring only when a
 * stop is possible (the best round so far + patience) and then together:
 * the rounds trained, the best round and best_score must be those of
 * scoring every round as it is trained, whether the best round moves
 * within a batch (patience 3 and 6), the fit runs out of rounds (patience
 * 40) or the metric is XGBoost's (mae, scored every round).
 */
static void test_batched_scoring_stops_as_every_round(void **state)
{
	static const struct { const char *metric; int patience, n_rounds; } cases[] = {
		{ "rmse", 3, 70 }, { "rmse", 6, 70 }, { "rmse", 40, 30 }, { "mae", 3, 70 },
	};
	const size_t nv = 2000; /* the reference predicts every round from scratch */
	float *x = make_rows(N_TRAIN + N_VALID), *y = malloc((N_TRAIN + N_VALID) * sizeof(float));
	const float *xv = x + (size_t)N_TRAIN * N_FEATURES, *yv = y + N_TRAIN;

	(void)state;
	assert_non_null(y);
	for (size_t i = 0; i < N_TRAIN + N_VALID; i++)
		y[i] = label_of(LABELS_ZERO_INFLATED, x + i * N_FEATURES, i + 1);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct gbt_param p;
		struct gbt_model *m = NULL, *full = NULL;
		struct ltv_err err = { 0 };
		int best, rounds;
		double score, got;

		gbt_param_init_defaults(&p);
		p.eval_metric = cases[k].metric;
		p.n_rounds = cases[k].n_rounds;
		p.eta = 0.05;
		p.subsample = 0.7;
		p.early_stopping_rounds = cases[k].patience;
		p.n_threads = 2;
		if (gbt_fit(&p, x, y, NULL, N_TRAIN, xv, yv, nv, N_FEATURES, NULL, &m, &err) < 0 ||
		    gbt_fit(&p, x, y, NULL, N_TRAIN, NULL, NULL, 0, N_FEATURES, NULL, &full, &err) < 0)
			fail_msg("gbt_fit: %s", err.msg);
		stop_by_every_round(full, cases[k].metric, cases[k].patience, xv, yv, nv, &best,
				    &rounds, &score);
		/* the best round moved after the first batch: later batches were scored */
		assert_true(best > cases[k].patience || rounds == cases[k].n_rounds);
		got = gbt_best_score(m);
		if (gbt_best_iteration(m) != best || gbt_rounds_trained(m) != rounds ||
		    memcmp(&got, &score, sizeof(got)) != 0)
			fail_msg("%s patience %d: best %d of %d rounds, score %a; every round: %d of %d, %a",
				 cases[k].metric, cases[k].patience, gbt_best_iteration(m),
				 gbt_rounds_trained(m), got, best, rounds, score);
		gbt_free(m);
		gbt_free(full);
	}
	free(x);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logloss_matches_xgboost),
		cmocka_unit_test(test_rmse_matches_xgboost),
		cmocka_unit_test(test_gamma_nloglik_matches_xgboost),
		cmocka_unit_test(test_tweedie_nloglik_matches_xgboost),
		cmocka_unit_test(test_rmse_on_gamma_matches_xgboost),
		cmocka_unit_test(test_other_metrics_left_to_xgboost),
		cmocka_unit_test(test_fit_keeps_xgboost_best_score),
		cmocka_unit_test(test_batched_scoring_stops_as_every_round),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
