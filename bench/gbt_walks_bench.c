/*
 * usage: gbt_walks_bench REGISTRY [ROWS]   (make bench-tools)
 *
 * The native tree evaluator's walks side by side (include/ltv/gbt_forest.h:
 * the node array, the complete layout, the leaf masks) on the tree models a
 * registry holds: every XGBoost body of the current hurdle and multiplier
 * artefacts, read as forests. For each model and each walk the forest can
 * take it
 *  1. predicts ROWS rows (default 20000; values at and beside the forest's
 *     split conditions, one in ten missing), margins and transformed, and
 *     counts the predictions that differ from the node walk's by even a bit,
 *  2. times ROWS rows in one call and in calls of one row (a served
 *     request), on one thread, in thread CPU time, keeping the fastest of 15
 *     and 5 repeats: the figures to compare walks by on a loaded machine.
 * XGBoost is left out (bench/gbt_forest.sh compares the forest with it).
 * Exits 1 if any prediction differs.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/gbt_forest.h"
#include "ltv/hurdle_model.h"
#include "ltv/method.h"
#include "ltv/multiplier_model.h"
#include "ltv/registry.h"

extern const struct method method_hurdle, method_multiplier;

#define BATCH_REPEATS 15
#define ROW_REPEATS 5
/* Calls of one row timed at most (a call costs about a microsecond). */
#define ROW_CALLS 4000

static const char *const walk_names[] = { "nodes", "complete", "leaf masks" };
#define N_WALKS (sizeof(walk_names) / sizeof(walk_names[0]))

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static double unif(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) * 0x1.0p-53;
}

/* Rows at the forest's splits: NaN, a split condition, the float either side of one, or a plain value. */
static float *make_rows(const struct gbt_forest *f, size_t n)
{
	const size_t k = gbt_forest_n_features(f);
	float *x = xmalloc((n * k > 0 ? n * k : 1) * sizeof(float));

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < k; j++) {
			size_t n_cut = 0;
			const float *cut = gbt_forest_thresholds(f, j, &n_cut);
			const int kind = (int)(unif() * 10);
			const float c = n_cut ? cut[(size_t)(unif() * (double)n_cut)] : (float)(unif() * 50);

			x[i * k + j] = kind == 0 ? NAN : kind == 1 ? c : kind == 2 ? nextafterf(c, -INFINITY)
				     : kind == 3 ? nextafterf(c, INFINITY) : kind < 7 ? c + (float)unif()
				     : (float)(unif() * 51 - 1);
		}
	return x;
}

struct totals {
	size_t models, differ, rows[N_WALKS], row_calls[N_WALKS];
	double batch_cpu[N_WALKS], row_cpu[N_WALKS];
};

/* Fastest thread CPU seconds of `repeats` predictions of n rows of x in calls of `per_call` rows. */
static double time_calls(const struct gbt_forest *f, const float *x, size_t n, size_t per_call,
			 int repeats, double *out)
{
	const size_t k = gbt_forest_n_features(f);
	double best = INFINITY;

	for (int rep = 0; rep < repeats; rep++) {
		const double t0 = cpu_now();

		for (size_t i = 0; i < n; i += per_call)
			gbt_forest_predict(f, x + i * k, n - i < per_call ? n - i : per_call, 0, 1, out + i);
		best = fmin(best, cpu_now() - t0);
	}
	return best;
}

static int bench_model(const char *name, const struct gbt_model *m, size_t rows, struct totals *tot)
{
	struct gbt_forest *f = NULL;
	struct ltv_err err = { 0 };
	char *json = NULL;
	size_t len = 0, row_calls = rows < ROW_CALLS ? rows : ROW_CALLS, differ = 0;
	double *want = xmalloc(2 * rows * sizeof(double)), *got = xmalloc(2 * rows * sizeof(double));
	float *x;
	int ret = gbt_save_json(m, &json, &len, &err);

	if (ret == 0)
		ret = gbt_forest_from_json(json, len, gbt_n_features(m), &f, &err);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", name, err.msg);
		goto out;
	}
	x = make_rows(f, rows);
	printf("| %-22s | %3zu | %2d |", name, gbt_forest_n_trees(f), gbt_forest_max_depth(f));
	for (size_t w = 0; w < N_WALKS; w++) {
		double batch, row;

		if (gbt_forest_use_walk(f, (enum gbt_forest_walk)w) < 0) {
			printf(" %8s | %8s |", "-", "-");
			continue;
		}
		for (int margin = 0; margin < 2; margin++)
			gbt_forest_predict(f, x, rows, margin, 1, (w == 0 ? want : got) + margin * rows);
		for (size_t i = 0; w > 0 && i < 2 * rows; i++)
			differ += memcmp(&want[i], &got[i], sizeof(double)) != 0;
		batch = time_calls(f, x, rows, rows, BATCH_REPEATS, got);
		row = time_calls(f, x, row_calls, 1, ROW_REPEATS, got);
		tot->batch_cpu[w] += batch;
		tot->rows[w] += rows;
		tot->row_cpu[w] += row;
		tot->row_calls[w] += row_calls;
		printf(" %8.4f | %8.3f |", batch * 1e6 / (double)rows, row * 1e6 / (double)row_calls);
	}
	printf(" %zu |\n", differ);
	tot->models++;
	tot->differ += differ;
	free(x);
out:
	gbt_forest_free(f);
	free(json);
	free(want);
	free(got);
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
	int ret;

	if (argc < 2 || rows == 0) {
		fprintf(stderr, "usage: gbt_walks_bench REGISTRY [ROWS]\n");
		return 2;
	}
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
		fprintf(stderr, "gbt_walks_bench: %s\n", err.msg);
		return 1;
	}
	printf("thread CPU µs a row: %zu rows in one call (fastest of %d), calls of one row (fastest of %d)\n\n",
	       rows, BATCH_REPEATS, ROW_REPEATS);
	printf("| model | trees | depth |");
	for (size_t w = 0; w < N_WALKS; w++)
		printf(" %s, batch | %s, 1 row |", walk_names[w], walk_names[w]);
	printf(" differing from nodes |\n|---|---:|---:|");
	for (size_t w = 0; w < N_WALKS; w++)
		printf("---:|---:|");
	printf("---:|\n");
	for (size_t i = 0; ret == 0 && i < ((struct hurdle_state *)state[0])->n_models; i++) {
		const struct hurdle_model *h = &((struct hurdle_state *)state[0])->models[i];
		char name[64];

		snprintf(name, sizeof(name), "hurdle t%d h%lld payer", h->tier, (long long)h->horizon);
		if (h->payer)
			ret = bench_model(name, h->payer, rows, &tot);
		snprintf(name, sizeof(name), "hurdle t%d h%lld revenue", h->tier, (long long)h->horizon);
		if (ret == 0 && h->revenue)
			ret = bench_model(name, h->revenue, rows, &tot);
	}
	for (size_t i = 0; ret == 0 && i < ((struct multiplier_state *)state[1])->n_models; i++) {
		const struct multiplier_model *mm = &((struct multiplier_state *)state[1])->models[i];
		char name[64];

		snprintf(name, sizeof(name), "multiplier t%d h%lld", mm->tier, (long long)mm->horizon);
		if (mm->model)
			ret = bench_model(name, mm->model, rows, &tot);
	}
	if (ret == 0) {
		printf("\n%zu models; %zu predictions differ from the node walk's\n", tot.models, tot.differ);
		for (size_t w = 0; w < N_WALKS; w++)
			if (tot.rows[w])
				printf("%-10s: %.4f µs a row in calls of %zu rows, %.3f µs a call of one row (%zu of %zu models)\n",
				       walk_names[w], tot.batch_cpu[w] * 1e6 / (double)tot.rows[w], rows,
				       tot.row_cpu[w] * 1e6 / (double)tot.row_calls[w], tot.rows[w] / rows,
				       tot.models);
	}
	for (int s = 0; s < 2; s++) {
		if (state[s])
			methods[s]->free_state(state[s]);
		artefact_info_release(&info[s]);
	}
	registry_close(reg);
	config_release(&cfg);
	return ret < 0 || tot.differ > 0;
}
