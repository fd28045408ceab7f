/*
 * usage: gbt_forest_bench REGISTRY [ROWS] [BATCH]   (make bench-forest)
 *
 * The benchmark behind the native tree evaluator (include/ltv/gbt_forest.h),
 * on the tree models a registry holds: every XGBoost body of the current
 * hurdle and multiplier artefacts. For each model it
 *  1. says whether the model predicts natively (gbt_native: the forest gave
 *     XGBoost's numbers on the probe rows at load),
 *  2. predicts ROWS rows (values drawn around the model's own split
 *     conditions, one in ten missing) both ways and counts the predictions,
 *     margins and transformed, that differ from XGBoost's by even one bit,
 *  3. times both ways in calls of BATCH rows (default 1, a single
 *     prediction, then ROWS at once), keeping the fastest of 5 repeats
 *     (the least disturbed on a shared machine),
 *  4. times the native ROWS at once in thread CPU time, fastest of 15 (the
 *     figure to compare two builds by on a loaded machine: one thread).
 * Exits 1 if any prediction differs.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/hurdle_model.h"
#include "ltv/method.h"
#include "ltv/multiplier_model.h"
#include "ltv/registry.h"

extern const struct method method_hurdle, method_multiplier;

#define REPEATS 5
#define CPU_REPEATS 15

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Rows whose values fall around the training data's range: uniform in [-1, 50], 10% NaN, some integers. */
static float *make_rows(size_t n, size_t k)
{
	float *x = xmalloc(n * k * sizeof(float));

	for (size_t i = 0; i < n * k; i++) {
		uint64_t r = rng_next();

		if (r % 10 == 0)
			x[i] = NAN;
		else if (r % 10 < 4)
			x[i] = (float)((r >> 8) % 31);
		else
			x[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 51.0 - 1.0);
	}
	return x;
}

struct totals {
	size_t models, native, differ, rows;
	double t_native, t_xgb, t_native_batch, t_xgb_batch, cpu_native_batch;
};

static int bench_model(const char *name, const struct gbt_model *m, size_t rows, size_t batch,
		       struct totals *tot)
{
	const size_t k = gbt_n_features(m);
	float *x = make_rows(rows, k);
	double *a = xmalloc(rows * sizeof(double)), *b = xmalloc(rows * sizeof(double));
	struct ltv_err err = { 0 };
	size_t differ = 0, calls = rows / batch;
	double t0, t1, t2, best[4] = { 0, 0, 0, 0 };
	int ret = 0;

	for (int margin = 0; margin < 2 && ret == 0; margin++) {
		ret = margin ? gbt_predict_margin(m, x, rows, k, a, &err)
			     : gbt_predict(m, x, rows, k, a, &err);
		if (ret == 0)
			ret = gbt_predict_xgboost(m, x, rows, k, margin, b, &err);
		for (size_t i = 0; i < rows && ret == 0; i++)
			differ += memcmp(&a[i], &b[i], sizeof(double)) != 0;
	}
	/* Each timing is the fastest of REPEATS: on a shared machine that is the least disturbed. */
	for (int rep = 0; rep < REPEATS && ret == 0; rep++) {
		t0 = now();
		for (size_t c = 0; c < calls && ret == 0; c++)
			ret = gbt_predict(m, x + c * batch * k, batch, k, a + c * batch, &err);
		t1 = now();
		best[0] = rep == 0 || t1 - t0 < best[0] ? t1 - t0 : best[0];
		if (rep > 1)
			continue; /* XGBoost is slow and its spread does not matter here */
		for (size_t c = 0; c < calls && ret == 0; c++)
			ret = gbt_predict_xgboost(m, x + c * batch * k, batch, k, 0, b + c * batch, &err);
		t2 = now();
		best[1] = rep == 0 || t2 - t1 < best[1] ? t2 - t1 : best[1];
		t0 = now();
		if (ret == 0)
			ret = gbt_predict(m, x, rows, k, a, &err);
		t1 = now();
		best[2] = rep == 0 || t1 - t0 < best[2] ? t1 - t0 : best[2];
		if (ret == 0)
			ret = gbt_predict_xgboost(m, x, rows, k, 0, b, &err);
		t2 = now();
		best[3] = rep == 0 || t2 - t1 < best[3] ? t2 - t1 : best[3];
	}
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", name, err.msg);
		return ret;
	}
	for (int rep = 2; rep < REPEATS; rep++) { /* the whole-batch native timing, repeated too */
		t0 = now();
		gbt_predict(m, x, rows, k, a, &err);
		t1 = now();
		best[2] = t1 - t0 < best[2] ? t1 - t0 : best[2];
	}
	{
		double best_cpu = 0;

		for (int rep = 0; rep < CPU_REPEATS; rep++) {
			t0 = cpu_now();
			gbt_predict(m, x, rows, k, a, &err);
			t1 = cpu_now() - t0;
			best_cpu = rep == 0 || t1 < best_cpu ? t1 : best_cpu;
		}
		tot->cpu_native_batch += best_cpu;
	}
	tot->models++;
	tot->native += (size_t)gbt_native(m);
	tot->differ += differ;
	tot->rows += calls * batch;
	tot->t_native += best[0];
	tot->t_xgb += best[1];
	tot->t_native_batch += best[2];
	tot->t_xgb_batch += best[3];
	t0 = 0;
	t1 = best[2];
	t2 = best[2] + best[3];
	printf("| %-22s | %s | %7zu | %10.3f | %10.3f |\n", name, gbt_native(m) ? "yes" : "no ",
	       differ, (t1 - t0) * 1e6 / (double)rows, (t2 - t1) * 1e6 / (double)rows);
	free(x);
	free(a);
	free(b);
	return ret;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct registry *reg = NULL;
	struct artefact_info info[2];
	const struct method *methods[2] = { &method_hurdle, &method_multiplier };
	void *state[2] = { NULL, NULL };
	struct totals tot = { 0 };
	struct ltv_err err = { 0 };
	char *end = NULL;
	size_t rows = argc > 2 ? strtoul(argv[2], &end, 10) : 20000;
	size_t batch = argc > 3 ? strtoul(argv[3], &end, 10) : 1;
	int ret;

	if (argc < 2 || rows == 0 || batch == 0 || batch > rows) {
		fprintf(stderr, "usage: gbt_forest_bench REGISTRY [ROWS] [BATCH]\n");
		return 2;
	}
	rows -= rows % batch;
	config_init_defaults(&cfg);
	cfg.run.jobs = 1;
	memset(info, 0, sizeof(info));
	ret = registry_open_readonly(argv[1], &reg, &err);
	for (int s = 0; s < 2 && ret == 0; s++) {
		ret = registry_artefact_current(reg, methods[s]->name, &info[s], &err);
		if (ret == 0)
			ret = methods[s]->load(reg, &info[s], &cfg, &state[s], &err);
	}
	if (ret < 0) {
		fprintf(stderr, "gbt_forest_bench: %s\n", err.msg);
		return 1;
	}
	printf("| model | native | predictions differing from XGBoost | native µs/row (%zu rows at once) | XGBoost µs/row |\n",
	       rows);
	printf("|---|---|---|---|---|\n");
	for (size_t i = 0; ret == 0 && i < ((struct hurdle_state *)state[0])->n_models; i++) {
		const struct hurdle_model *h = &((struct hurdle_state *)state[0])->models[i];
		char name[64];

		snprintf(name, sizeof(name), "hurdle t%d h%lld payer", h->tier, (long long)h->horizon);
		if (h->payer)
			ret = bench_model(name, h->payer, rows, batch, &tot);
		snprintf(name, sizeof(name), "hurdle t%d h%lld revenue", h->tier, (long long)h->horizon);
		if (ret == 0 && h->revenue)
			ret = bench_model(name, h->revenue, rows, batch, &tot);
	}
	for (size_t i = 0; ret == 0 && i < ((struct multiplier_state *)state[1])->n_models; i++) {
		const struct multiplier_model *mm = &((struct multiplier_state *)state[1])->models[i];
		char name[64];

		snprintf(name, sizeof(name), "multiplier t%d h%lld", mm->tier, (long long)mm->horizon);
		if (mm->model)
			ret = bench_model(name, mm->model, rows, batch, &tot);
	}
	if (ret == 0) {
		printf("\n%zu models, %zu native; %zu predictions differ from XGBoost\n", tot.models,
		       tot.native, tot.differ);
		printf("calls of %zu row(s): native %.2f µs a call, XGBoost %.2f µs a call (%.0fx)\n",
		       batch, tot.t_native * 1e6 / (double)(tot.rows / batch),
		       tot.t_xgb * 1e6 / (double)(tot.rows / batch), tot.t_xgb / tot.t_native);
		printf("%zu rows at once: native %.3f µs a row, XGBoost %.3f µs a row (%.1fx)\n", rows,
		       tot.t_native_batch * 1e6 / (double)(rows * tot.models),
		       tot.t_xgb_batch * 1e6 / (double)(rows * tot.models),
		       tot.t_xgb_batch / tot.t_native_batch);
		printf("%zu rows at once, native in thread CPU time (fastest of %d): %.4f µs a row\n",
		       rows, CPU_REPEATS, tot.cpu_native_batch * 1e6 / (double)(rows * tot.models));
	}
	for (int s = 0; s < 2; s++) {
		if (state[s])
			methods[s]->free_state(state[s]);
		artefact_info_release(&info[s]);
	}
	registry_close(reg);
	config_release(&cfg);
	return ret < 0 || tot.differ > 0 || tot.native < tot.models;
}
