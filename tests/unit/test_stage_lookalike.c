/*
 * Unit tests for the lookalike stage (pipeline/lookalike.c) on a generated
 * sample: the artefact is bit-identical whatever the thread count (run.jobs 1
 * and 2, --force), its cluster means are finite and its validation metrics
 * present, and its predict never goes below observed revenue, is monotone
 * across horizons, imputes a missing feature instead of failing, and says
 * nothing (NaN) for a horizon it was not trained for.
 */
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/config.h"
#include "ltv/generate.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/stage.h"

extern const struct method method_lookalike;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void set(struct config *cfg, const char *fmt, ...) LTV_PRINTF(2, 3);

static void set(struct config *cfg, const char *fmt, ...)
{
	struct ltv_err err = { 0 };
	char assignment[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(assignment, sizeof(assignment), fmt, ap);
	va_end(ap);
	if (config_apply_override(cfg, assignment, &err) != 0)
		fail_msg("--set %s: %s", assignment, err.msg);
}

struct fixture {
	char *dir;
	struct config cfg;
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	struct generate_param gp;
	struct ltv_err err = { 0 };
	char *data;

	log_level_current = LOG_WARN;
	fx->dir = test_scratch_dir();
	if (!fx->dir)
		return -1;
	data = xasprintf("%s/data", fx->dir);
	generate_param_init(&gp);
	gp.n_users = 20000;
	gp.seed = 11;
	if (generate_sample(&gp, data, NULL, &err) != 0)
		return -1;
	config_init_defaults(&fx->cfg);
	set(&fx->cfg, "input.users=%s/users.csv", data);
	set(&fx->cfg, "input.events=%s/events.csv", data);
	set(&fx->cfg, "registry.path=%s/registry.sqlite", fx->dir);
	set(&fx->cfg, "run.log_dir=%s/logs", fx->dir);
	set(&fx->cfg, "ingest.rejects_dir=%s/logs", fx->dir);
	free(data);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	config_release(&fx->cfg);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->dir);
	free(fx);
	return 0;
}

static void run(struct config *cfg, const char *only, int force)
{
	struct run_options opts = { .only = only, .force = force, .as_of = INT64_MIN,
				    .command = "test" };
	struct ltv_err err = { 0 };
	FILE *out = fopen("/dev/null", "w");

	assert_non_null(out);
	if (runner_run(cfg, &opts, out, &err) != 0)
		fail_msg("run: %s", err.msg);
	fclose(out);
}

static double metric(const cJSON *m, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(m, name);

	if (!cJSON_IsNumber(item))
		fail_msg("metric %s missing", name);
	return item->valuedouble;
}

static void test_threads_same_artefact(void **state)
{
	struct fixture *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info v1 = { 0 }, v2 = { 0 };
	cJSON *m;

	set(&fx->cfg, "run.jobs=%s", "1");
	run(&fx->cfg, "ingest,features,lookalike", 0);
	set(&fx->cfg, "run.jobs=%s", "2");
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
		assert_true(isfinite(metric(m, lo)) && metric(m, lo) >= 0);
		assert_true(isfinite(metric(m, hi)) && metric(m, hi) > metric(m, lo));
	}
	assert_int_equal((int)metric(m, "clusters"), 16);
	assert_true(metric(m, "val_users") > 500);
	assert_int_equal((int)metric(m, "val_users"), (int)metric(m, "val_users_predicted"));
	assert_true(isfinite(metric(m, "val_campaign_wape")) && metric(m, "val_campaign_wape") < 1);
	assert_true(isfinite(metric(m, "val_user_rmsle")));
	assert_true(metric(m, "val_campaigns") >= 10);
	cJSON_Delete(m);
	artefact_info_release(&v1);
	artefact_info_release(&v2);
	registry_close(reg);
}

static void test_predict(void **state)
{
	struct fixture *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info model = { 0 }, features = { 0 };
	struct stage_ctx ctx = { 0 };
	struct model_data d;
	const size_t n = 2000;
	size_t *rows = xmalloc(n * sizeof(size_t));
	double *p7 = xmalloc(n * sizeof(double)), *p30 = xmalloc(n * sizeof(double));
	double *p90 = xmalloc(n * sizeof(double)), *cost;
	const double *rev_window;
	void *s = NULL;

	run(&fx->cfg, "ingest,features,lookalike", 0);
	assert_int_equal(registry_open(fx->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_artefact_current(reg, "lookalike", &model, &err), 0);
	assert_int_equal(registry_artefact_current(reg, "features", &features, &err), 0);
	ctx.reg = reg;
	ctx.cfg = &fx->cfg;
	ctx.as_of = model.as_of;
	ctx.inputs[0] = &features;
	ctx.n_inputs = 1;
	assert_int_equal(model_data_load(&ctx, 0, &d), 0);
	assert_true(d.frame.n_rows >= n);
	/* Rows spread over the frame, scored or not; a missing cost is imputed, not a failure. */
	cost = frame_column(&d.frame, "cost");
	for (size_t i = 0; i < n; i++) {
		rows[i] = i * (d.frame.n_rows / n);
		if (i % 3 == 0)
			cost[rows[i]] = NAN;
	}
	rev_window = frame_column(&d.frame, "rev_window");
	assert_int_equal(method_lookalike.load(reg, &model, &fx->cfg, &s, &err), 0);
	assert_int_equal(method_lookalike.predict(s, &d, rows, n, 7, p7, NULL, &err), 0);
	assert_int_equal(method_lookalike.predict(s, &d, rows, n, 30, p30, NULL, &err), 0);
	assert_int_equal(method_lookalike.predict(s, &d, rows, n, 90, p90, NULL, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(isfinite(p7[i]));
		assert_true(p7[i] >= rev_window[rows[i]]);
		assert_true(p7[i] <= p30[i] && p30[i] <= p90[i]);
	}
	/* A horizon it was not trained for. */
	assert_int_equal(method_lookalike.predict(s, &d, rows, n, 14, p7, NULL, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(isnan(p7[i]));
	method_lookalike.free_state(s);
	model_data_release(&d);
	artefact_info_release(&model);
	artefact_info_release(&features);
	registry_close(reg);
	free(rows);
	free(p7);
	free(p30);
	free(p90);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_same_artefact),
		cmocka_unit_test(test_predict),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
