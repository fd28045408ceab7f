/*
 * usage: gbt_eval_bench [VALID_ROWS] [FEATURES] [ROUNDS]   (bench/gbt_eval.sh)
 *
 * The benchmark behind the native early-stopping metric (include/ltv/gbt_eval.h):
 * a logistic fit on generated rows (VALID_ROWS validation rows, default
 * 100,000, about one of hurdle's payer fits at 1,000,000 users; twice as
 * many training rows; FEATURES features, default 40, one in ten missing;
 * depth 6), ROUNDS rounds (default 60). After each round the logloss is
 * computed both ways, XGBoost's XGBoosterEvalOneIter on one thread (as
 * gbt_fit.c did) and the native one (the round's tree cut off with
 * XGBoosterSlice, read, walked, summed) on one thread, and the two must
 * agree to the bit (exit 1 otherwise). Prints each way's thread CPU time per
 * round (the calling thread does all of it on one thread: the figure that
 * holds on a loaded machine) and the one-off cost of XGBoost's validation
 * DMatrix, which the native way does not build.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xgboost/c_api.h>

#include "ltv/gbt_eval.h"
#include "ltv/gbt_forest.h"
#include "ltv/rng.h"

static double thread_cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x510e527fade682d1ULL;

static double unif(void)
{
	return (double)(rng_splitmix64(&rng_state) >> 11) * 0x1.0p-53;
}

static void make(size_t n, size_t k, float **out_x, float **out_y)
{
	float *x = malloc(n * k * sizeof(float)), *y = malloc(n * sizeof(float));

	if (!x || !y) {
		fprintf(stderr, "gbt_eval_bench: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < n; i++) {
		double s = 0;

		for (size_t j = 0; j < k; j++) {
			double u = unif();

			x[i * k + j] = u < 0.1 ? NAN : (float)(unif() * 10);
			s += isnan(x[i * k + j]) ? 0 : x[i * k + j] / (double)(j + 1);
		}
		y[i] = s + 3 * unif() > 12 ? 1.0f : 0.0f;
	}
	*out_x = x;
	*out_y = y;
}

static int check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "gbt_eval_bench: %s failed: %s\n", what, XGBGetLastError());
		exit(2);
	}
	return 0;
}

/* The native way for one round: what gbt_fit.c's native_add_round and valid_score do. */
static double native_round(struct gbt_eval *e, BoosterHandle b, int iter, size_t k)
{
	BoosterHandle one = NULL;
	const char *body = NULL;
	bst_ulong len = 0;
	struct gbt_forest *f = NULL;
	struct ltv_err err = { 0 };
	double score;

	check(XGBoosterSlice(b, iter, iter + 1, 1, &one) == 0, "XGBoosterSlice");
	check(XGBoosterSaveModelToBuffer(one, "{\"format\": \"json\"}", &len, &body) == 0,
	      "XGBoosterSaveModelToBuffer");
	check(gbt_forest_from_json(body, (size_t)len, k, &f, &err) == 0, "gbt_forest_from_json");
	gbt_eval_add_trees(e, f, 1);
	score = gbt_eval_score(e, 1);
	gbt_forest_free(f);
	XGBoosterFree(one);
	return score;
}

int main(int argc, char **argv)
{
	const size_t nv = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	const size_t k = argc > 2 ? strtoul(argv[2], NULL, 10) : 40;
	const int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 60;
	const size_t nt = 2 * nv;
	const char *names[1] = { "valid" };
	float *xt, *yt, *xv, *yv;
	DMatrixHandle dtrain, dvalid;
	BoosterHandle b;
	struct gbt_eval *e;
	double t, t_matrix, t_xgb = 0, t_native = 0;
	int differ = 0;

	make(nt, k, &xt, &yt);
	make(nv, k, &xv, &yv);
	check(XGDMatrixCreateFromMat_omp(xt, nt, k, NAN, &dtrain, 1) == 0, "train matrix");
	check(XGDMatrixSetFloatInfo(dtrain, "label", yt, nt) == 0, "train labels");
	t = thread_cpu();
	check(XGDMatrixCreateFromMat_omp(xv, nv, k, NAN, &dvalid, 1) == 0, "valid matrix");
	check(XGDMatrixSetFloatInfo(dvalid, "label", yv, nv) == 0, "valid labels");
	t_matrix = thread_cpu() - t;
	check(XGBoosterCreate((DMatrixHandle[]){ dtrain, dvalid }, 2, &b) == 0, "XGBoosterCreate");
	check(XGBoosterSetParam(b, "verbosity", "0") == 0 &&
	      XGBoosterSetParam(b, "tree_method", "hist") == 0 &&
	      XGBoosterSetParam(b, "objective", "binary:logistic") == 0 &&
	      XGBoosterSetParam(b, "eval_metric", "logloss") == 0 &&
	      XGBoosterSetParam(b, "max_depth", "6") == 0 &&
	      XGBoosterSetParam(b, "nthread", "1") == 0, "XGBoosterSetParam");
	e = gbt_eval_new("binary:logistic", "logloss", xv, yv, nv, k);
	for (int iter = 0; iter < rounds; iter++) {
		const char *text = NULL;
		double want, got;

		check(XGBoosterUpdateOneIter(b, iter, dtrain) == 0, "XGBoosterUpdateOneIter");
		t = thread_cpu();
		check(XGBoosterEvalOneIter(b, iter, &dvalid, names, 1, &text) == 0, "XGBoosterEvalOneIter");
		want = strtod(strrchr(text, ':') + 1, NULL);
		t_xgb += thread_cpu() - t;
		t = thread_cpu();
		got = native_round(e, b, iter, k);
		t_native += thread_cpu() - t;
		differ += memcmp(&want, &got, sizeof(want)) != 0;
	}
	printf("%zu validation rows, %zu features, %d rounds of depth 6, logloss, one thread:\n",
	       nv, k, rounds);
	printf("  xgboost EvalOneIter  %7.2f ms CPU a round (and %.1f ms once for its DMatrix)\n",
	       1e3 * t_xgb / rounds, 1e3 * t_matrix);
	printf("  native               %7.2f ms CPU a round\n", 1e3 * t_native / rounds);
	printf("  rounds whose scores differ: %d\n", differ);
	gbt_eval_free(e);
	XGBoosterFree(b);
	XGDMatrixFree(dtrain);
	XGDMatrixFree(dvalid);
	free(xt), free(yt), free(xv), free(yv);
	return differ ? 1 : 0;
}
