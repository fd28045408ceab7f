/*
 * A fit's early-stopping metric without XGBoost (contract in
 * include/ltv/gbt_eval.h). Every formula below is XGBoost 1.7's own
 * (src/metric/elementwise_metric.cu, src/objective/regression_obj.cu), the
 * same operations on the same types in the same order: float where it
 * computes in float (a double only where its source writes a double
 * literal), so this file must stay free of -ffast-math and FMA contraction
 * (the build has neither: C11 mode and no -march).
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "ltv/gbt_eval.h"

/* The objective's EvalTransform of a margin, as its PredTransform. */
enum transform { TRANSFORM_IDENTITY, TRANSFORM_SIGMOID, TRANSFORM_EXP };

enum metric { METRIC_RMSE, METRIC_LOGLOSS, METRIC_GAMMA_NLOGLIK, METRIC_TWEEDIE_NLOGLIK };

/* Rows per thread below which a parallel region costs more than it saves. */
#define PARALLEL_MIN_ROWS 4096

struct gbt_eval {
	const float *x, *y;
	size_t n_rows, n_features;
	enum transform transform;
	enum metric metric;
	float rho;      /* tweedie-nloglik's variance power, as XGBoost keeps it (float) */
	float *margin;  /* n_rows, NULL until the first trees */
	float *loss;    /* n_rows: each row's loss, summed in row order */
};

static const struct {
	const char *name;
	enum transform transform;
} objectives[] = {
	{ "binary:logistic", TRANSFORM_SIGMOID },
	{ "reg:squarederror", TRANSFORM_IDENTITY },
	{ "reg:gamma", TRANSFORM_EXP },
	{ "reg:tweedie", TRANSFORM_EXP },
};

static const struct {
	const char *name;
	enum metric metric;
} metrics[] = {
	{ "rmse", METRIC_RMSE },
	{ "logloss", METRIC_LOGLOSS },
	{ "gamma-nloglik", METRIC_GAMMA_NLOGLIK },
};

/* tweedie-nloglik@rho: XGBoost reads rho with atof into a float and wants it in [1, 2). */
static int tweedie_rho(const char *metric, float *out_rho)
{
	static const char prefix[] = "tweedie-nloglik@";
	const char *s = metric + sizeof(prefix) - 1;
	char *end;
	double rho;

	if (strncmp(metric, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	errno = 0;
	rho = strtod(s, &end);
	if (errno || end == s || *end != '\0')
		return -1;
	*out_rho = (float)rho;
	return *out_rho >= 1.0f && *out_rho < 2.0f ? 0 : -1;
}

/* XGBoost refuses a matrix holding an infinity: its error, not a score, is the answer. */
static int has_infinity(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (isinf(x[i]))
			return 1;
	return 0;
}

struct gbt_eval *gbt_eval_new(const char *objective, const char *metric, const float *x,
			      const float *y, size_t n_rows, size_t n_features)
{
	struct gbt_eval *e;
	size_t o, k;
	float rho = 0;

	assert(objective && metric && (x || n_rows == 0) && (y || n_rows == 0));
	for (o = 0; o < sizeof(objectives) / sizeof(objectives[0]); o++)
		if (strcmp(objectives[o].name, objective) == 0)
			break;
	for (k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++)
		if (strcmp(metrics[k].name, metric) == 0)
			break;
	if (o == sizeof(objectives) / sizeof(objectives[0]) ||
	    (k == sizeof(metrics) / sizeof(metrics[0]) && tweedie_rho(metric, &rho) < 0) ||
	    has_infinity(x, n_rows * n_features))
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->x = x;
	e->y = y;
	e->n_rows = n_rows;
	e->n_features = n_features;
	e->transform = objectives[o].transform;
	e->metric = k < sizeof(metrics) / sizeof(metrics[0]) ? metrics[k].metric
							     : METRIC_TWEEDIE_NLOGLIK;
	e->rho = rho;
	e->loss = xmalloc((n_rows ? n_rows : 1) * sizeof(float));
	return e;
}

void gbt_eval_free(struct gbt_eval *e)
{
	if (!e)
		return;
	free(e->margin);
	free(e->loss);
	free(e);
}

static void add_tree_range(struct gbt_eval *e, const struct gbt_forest *f, size_t first_tree,
			   size_t end_tree, int n_threads)
{
	assert(e && f && gbt_forest_n_features(f) == e->n_features);
	if (!e->margin) {
		const float base = gbt_forest_base_margin(f);

		e->margin = xmalloc((e->n_rows ? e->n_rows : 1) * sizeof(float));
		for (size_t i = 0; i < e->n_rows; i++)
			e->margin[i] = base;
	}
	gbt_forest_add_to_margins(f, first_tree, end_tree, e->x, e->n_rows, e->margin, n_threads);
}

void gbt_eval_add_trees(struct gbt_eval *e, const struct gbt_forest *f, int n_threads)
{
	add_tree_range(e, f, 0, gbt_forest_n_trees(f), n_threads);
}

void gbt_eval_add_tree(struct gbt_eval *e, const struct gbt_forest *f, size_t tree,
		       int n_threads)
{
	add_tree_range(e, f, tree, tree + 1, n_threads);
}

static float eval_transform(enum transform t, float margin)
{
	switch (t) {
	case TRANSFORM_SIGMOID:
		return gbt_forest_sigmoid(margin);
	case TRANSFORM_EXP:
		return expf(margin);
	default:
		return margin;
	}
}

/* std::max(a, b) as C++ defines it: b only when a < b (so a NaN a is kept). */
static float max_f(float a, float b)
{
	return a < b ? b : a;
}

/* EvalRowRMSE */
static float rmse_row(float label, float pred)
{
	const float diff = label - pred;

	return diff * diff;
}

/* LogLoss: x·log(max(y, 1e-16)), taken as 0 where x is 0. */
static float xlogy(float x, float y)
{
	const float eps = (float)1e-16;

	return (x - 0.0f == 0.0f) ? 0.0f : (x * logf(max_f(y, eps)));
}

static float logloss_row(float y, float py)
{
	const float pneg = 1.0f - py;

	return xlogy(-y, py) + xlogy(-(1.0f - y), pneg);
}

/* EvalGammaNLogLik: dispersion 1; theta's division is in double in XGBoost's source. */
static float gamma_nloglik_row(float y, float py)
{
	const float psi = 1.0f, a = psi, c = 0.0f;
	float theta, b;

	py = max_f(py, 1e-6f);
	theta = (float)(-1. / (double)py);
	b = -logf(-theta);
	return -((y * theta - b) / a + c);
}

/* EvalTweedieNLogLik */
static float tweedie_nloglik_row(float rho, float y, float p)
{
	const float a = y * expf((1.0f - rho) * logf(p)) / (1.0f - rho);
	const float b = expf((2.0f - rho) * logf(p)) / (2.0f - rho);

	return -a + b;
}

static float row_loss(const struct gbt_eval *e, size_t i)
{
	const float pred = eval_transform(e->transform, e->margin[i]);
	const float label = e->y[i];

	switch (e->metric) {
	case METRIC_RMSE:
		return rmse_row(label, pred);
	case METRIC_LOGLOSS:
		return logloss_row(label, pred);
	case METRIC_GAMMA_NLOGLIK:
		return gamma_nloglik_row(label, pred);
	default:
		return tweedie_nloglik_row(e->rho, label, pred);
	}
}

static void losses(struct gbt_eval *e, size_t first, size_t last)
{
	for (size_t i = first; i < last; i++)
		e->loss[i] = row_loss(e, i); /* times the weight 1.0f: unchanged */
}

/* Each metric's GetFinal over the summed losses and weights. */
static double final_value(enum metric metric, double esum, double wsum)
{
	if (metric == METRIC_RMSE)
		return wsum == 0 ? sqrt(esum) : sqrt(esum / wsum);
	return wsum == 0 ? esum : esum / wsum;
}

/*
 * The value as gbt_fit.c read XGBoost's: EvalOneIter prints it fixed with
 * max_digits10 (17) decimals, which rounds away low bits of small values.
 */
static double as_printed(double v)
{
	char text[400]; /* DBL_MAX has 309 digits before the point */

	snprintf(text, sizeof(text), "%.17f", v);
	return strtod(text, NULL);
}

double gbt_eval_score(struct gbt_eval *e, int n_threads)
{
	const size_t n = e->n_rows;
	double esum = 0;

	assert(e && e->margin);
	if (n_threads > 1 && n >= 2 * PARALLEL_MIN_ROWS) {
#pragma omp parallel num_threads(n_threads)
		{
			const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();

			losses(e, n * id / nt, n * (id + 1) / nt);
		}
	} else {
		losses(e, 0, n);
	}
	/* XGBoost's one-thread Reduce: one double, row after row. */
	for (size_t i = 0; i < n; i++)
		esum += e->loss[i];
	/* Its weight sum adds 1.0 per row: exactly n. */
	return as_printed(final_value(e->metric, esum, (double)n));
}
