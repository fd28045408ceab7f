/*
 * Unit tests for the lookalike stage (pipeline/lookalike.c) on a generated
 * sample: the artefact is bit-identical whatever the thread count (run.jobs 1
 * and 2, --force), its cluster means are finite and its validation metrics
 * present, and its predict never goes below observed revenue, is monotone
 * across horizons, imputes a missing feature instead of failing, and says
 * nothing (NaN) for a horizon it was not trained for; the medians it
 * imputes with (median_select) are those sorting gives; with
 * lookalike.mean_by_age the revenue still to come of the oldest training
 * rows is their own age's, not the cluster's rows of every age; each
 * horizon's cluster counts are its rows' predicted clusters; its matrix is
 * signed_log's, whole numbers looked up in a table or not.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/lookalike_model.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/rng.h"
#include "ltv/runner.h"
#include "ltv/stage.h"

#include "fixture.h"

extern const struct method method_lookalike;

static int setup(void **state)
{
	log_level_current = LOG_WARN;
	*state = test_pipeline_new(20000, 11, NULL);
	return 0;
}

static int teardown(void **state)
{
	test_pipeline_free(*state);
	return 0;
}

static void run(struct config *cfg, const char *only, int force)
{
	const struct run_options opts = { .only = only, .force = force, .as_of = INT64_MIN,
					  .command = "test" };

	test_run(cfg, &opts);
}

static void test_threads_same_artefact(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info v1 = { 0 }, v2 = { 0 };
	cJSON *m;

	test_set(&fx->cfg, "run.jobs=%s", "1");
	run(&fx->cfg, "ingest,features,lookalike", 0);
	test_set(&fx->cfg, "run.jobs=%s", "2");
	run(&fx->cfg, "lookalike", 1);

	assert_int_equal(registry_open(fx->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_artefact_by_version(reg, "lookalike", 1, &v1, &err), 0);
	assert_int_equal(registry_artefact_by_version(reg, "lookalike", 2, &v2, &err), 0);
	assert_string_equal(v1.content_hash, v2.content_hash);
	assert_string_equal(v1.metrics, v2.metrics);

	m = cJSON_Parse(v2.metrics);
	assert_non_null(m);
	for (size_t h = 0; h < fx->cfg.features.horizons.n; h++) {
		const long long hz = (long long)fx->cfg.features.horizons.v[h];
		char lo[64], hi[64];

		snprintf(lo, sizeof(lo), "cluster_future_min_%lld", hz);
		snprintf(hi, sizeof(hi), "cluster_future_max_%lld", hz);
		assert_true(isfinite(test_metric(m, lo)) && test_metric(m, lo) >= 0);
		assert_true(isfinite(test_metric(m, hi)) &&
			    test_metric(m, hi) > test_metric(m, lo));
	}
	assert_int_equal((int)test_metric(m, "clusters"), 16);
	assert_true(test_metric(m, "val_users") > 500);
	assert_int_equal((int)test_metric(m, "val_users"),
			 (int)test_metric(m, "val_users_predicted"));
	assert_true(isfinite(test_metric(m, "val_campaign_wape")) &&
		    test_metric(m, "val_campaign_wape") < 1);
	assert_true(isfinite(test_metric(m, "val_user_rmsle")));
	assert_true(test_metric(m, "val_campaigns") >= 10);
	cJSON_Delete(m);
	artefact_info_release(&v1);
	artefact_info_release(&v2);
	registry_close(reg);
}

static void test_predict(void **state)
{
	struct test_pipeline *fx = *state;
	struct test_model m;
	const size_t n = 2000;
	size_t *rows = xmalloc(n * sizeof(size_t));
	double *p7 = xmalloc(n * sizeof(double)), *p30 = xmalloc(n * sizeof(double));
	double *p90 = xmalloc(n * sizeof(double)), *cost;
	const double *rev_window;

	run(&fx->cfg, "ingest,features,lookalike", 0);
	test_model_load(&fx->cfg, &method_lookalike, 0, &m);
	assert_true(m.d.frame.n_rows >= n);
	/* Rows spread over the frame, scored or not; a missing cost is imputed, not a failure. */
	cost = frame_column(&m.d.frame, "cost");
	for (size_t i = 0; i < n; i++) {
		rows[i] = i * (m.d.frame.n_rows / n);
		if (i % 3 == 0)
			cost[rows[i]] = NAN;
	}
	rev_window = frame_column(&m.d.frame, "rev_window");
	test_model_predict(&m, rows, n, 7, p7, NULL);
	test_model_predict(&m, rows, n, 30, p30, NULL);
	test_model_predict(&m, rows, n, 90, p90, NULL);
	for (size_t i = 0; i < n; i++) {
		assert_true(isfinite(p7[i]));
		assert_true(p7[i] >= rev_window[rows[i]]);
		assert_true(p7[i] <= p30[i] && p30[i] <= p90[i]);
	}
	/* A horizon it was not trained for. */
	test_model_predict(&m, rows, n, 14, p7, NULL);
	for (size_t i = 0; i < n; i++)
		assert_true(isnan(p7[i]));
	test_model_release(&m);
	free(rows);
	free(p7);
	free(p30);
	free(p90);
}

/*
 * Each horizon's cluster counts are those of its training rows' predicted
 * clusters: the stage looks up the fit's labels for the rows it clustered
 * and predicts only the others, which must come to the same.
 */
static void test_horizon_counts_are_predicted(void **state)
{
	struct test_pipeline *fx = *state;
	struct test_model m;
	struct ltv_err err = { 0 };
	const struct lookalike_state *s;

	run(&fx->cfg, "ingest,features,lookalike", 0);
	test_model_load(&fx->cfg, &method_lookalike, 0, &m);
	s = m.state;
	assert_true(s->n_h >= 2);
	for (size_t h = 0; h < s->n_h; h++) {
		struct row_split split;
		uint64_t counts[64] = { 0 };
		int *label;

		assert_true(s->km->k <= 64);
		model_data_split_weighted(&m.d, s->h[h].horizon, 0, &split);
		assert_true(split.n_train > 0);
		label = xmalloc(split.n_train * sizeof(int));
		assert_int_equal(lookalike_labels(s, &m.d, split.train, split.n_train, 1, label,
						  &err), 0);
		for (size_t i = 0; i < split.n_train; i++)
			counts[label[i]] += model_data_repeats(&m.d, split.train[i]);
		assert_memory_equal(counts, s->h[h].counts, s->km->k * sizeof(uint64_t));
		free(label);
		row_split_release(&split);
	}
	test_model_release(&m);
}

/* test_future_at_age's hide: lookalike's means by age out of sight (on) and back. */
static void hide_by_age(void *state, int on)
{
	static struct age_means *saved[LOOKALIKE_MAX_HORIZONS];
	struct lookalike_state *s = state;

	for (size_t h = 0; h < s->n_h; h++) {
		if (on)
			saved[h] = s->h[h].by_age;
		s->h[h].by_age = on ? NULL : saved[h];
	}
}

/*
 * lookalike.mean_by_age: over the training rows at the oldest snapshot below
 * 90 days (60), the predicted revenue still to come at 90 days sums to what
 * those rows went on to pay (each (cluster, age) with enough rows is their own
 * mean: 2,573 for 2,524 on this sample), and far closer than the clusters'
 * means over rows of every age (the key's 0: 12,930), which give a 60-day-old
 * the futures of the cluster's 1-day rows. Monotone across horizons still.
 */
static void test_mean_by_age(void **state)
{
	struct test_pipeline *fx = *state;
	struct test_model m;
	double sums[3];
	size_t n_old;

	test_set(&fx->cfg, "lookalike.mean_by_age=%s", "1");
	run(&fx->cfg, "ingest,features,lookalike", 0);
	run(&fx->cfg, "lookalike", 1);
	test_model_load(&fx->cfg, &method_lookalike, 0, &m);
	for (size_t h = 0; h < ((struct lookalike_state *)m.state)->n_h; h++)
		assert_non_null(((struct lookalike_state *)m.state)->h[h].by_age);
	test_future_at_age(&m, 30, 90, 60, hide_by_age, sums, &n_old);
	assert_true(n_old > 1000 && sums[0] > 0);
	assert_true(fabs(sums[1] - sums[0]) < 0.1 * sums[0]);
	assert_true(fabs(sums[2] - sums[0]) > 3 * fabs(sums[1] - sums[0]));
	test_set(&fx->cfg, "lookalike.mean_by_age=%s", "0");
	test_model_release(&m);
}

/*
 * median_select (the features' medians, common.c) gives the median sorting
 * gives: odd and even counts, runs of ties, sorted and reversed input.
 */
static void test_median_select(void **state)
{
	struct rng r;
	double v[257], sorted[257];

	(void)state;
	rng_seed(&r, 11, 0);
	for (size_t n = 1; n <= 257; n += (n < 20 ? 1 : 17)) {
		for (int shape = 0; shape < 4; shape++) {
			double want;

			for (size_t i = 0; i < n; i++)
				v[i] = shape == 0 ? (double)(rng_next(&r) % 1000) / 7
				       : shape == 1 ? (double)(rng_next(&r) % 3)
				       : shape == 2 ? (double)i : (double)(n - i);
			memcpy(sorted, v, n * sizeof(double));
			qsort(sorted, n, sizeof(double), double_cmp);
			want = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
			assert_true(median_select(v, n) == want);
			/* kth_select (select's medians of install times): every rank */
			for (size_t k = 0; k < n; k += 1 + n / 16)
				assert_true(kth_select(v, n, k) == sorted[k]);
		}
	}
}

/*
 * lookalike_build_matrix's values are sign(x) log1p(|x|) to the bit, a
 * median for NaN: whole numbers (looked up in a table of log1p's own
 * results) and the others alike, zeros keeping their sign, at the table's
 * edge and past it.
 */
static void test_build_matrix_signed_log(void **state)
{
	static const double v[] = { 0.0, -0.0, 1, 2, 3, 17, 4095, 4096, 4097, 2.5, 0.5, -7, -4095,
				    -4096.5, 1e6, 1e-300, 123456789.0, NAN };
	const size_t n = sizeof(v) / sizeof(v[0]);
	char name[] = "f", *features[] = { name };
	const double median = 3.0;
	size_t rows[sizeof(v) / sizeof(v[0])];
	struct model_data d;
	struct ltv_err err;
	double *x = NULL, *col;

	(void)state;
	memset(&d, 0, sizeof(d));
	frame_init(&d.frame, n);
	col = frame_add_column(&d.frame, "f");
	for (size_t i = 0; i < n; i++) {
		col[i] = v[i];
		rows[i] = n - 1 - i;
	}
	assert_int_equal(lookalike_build_matrix(&d, features, 1, &median, rows, n, &x, &err), 0);
	for (size_t i = 0; i < n; i++) {
		const double in = isnan(v[rows[i]]) ? median : v[rows[i]];
		const double want = in < 0 ? -log1p(-in) : log1p(in);

		assert_memory_equal(&x[i], &want, sizeof(double));
	}
	assert_true(signbit(x[n - 2]) && !signbit(x[n - 1]));
	free(x);
	frame_release(&d.frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_same_artefact),
		cmocka_unit_test(test_predict),
		cmocka_unit_test(test_horizon_counts_are_predicted),
		cmocka_unit_test(test_mean_by_age),
		cmocka_unit_test(test_median_select),
		cmocka_unit_test(test_build_matrix_signed_log),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
