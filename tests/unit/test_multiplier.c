/*
 * Unit tests for the multiplier stage (pipeline/multiplier.c) on a real
 * registry: the pipeline runs on a generated 20,000-user sample in a scratch
 * directory, then the tests read its artefact, load method_multiplier back
 * and check that rows without window revenue get exactly their tier's
 * recorded zero-window value, that window payers are never predicted below
 * their window revenue, and that reloaded models reproduce the metrics
 * computed in memory right after training, to the bit.
 */
#include "testutil.h"

#include <ftw.h>
#include <math.h>

#include <cjson/cJSON.h>

#include "ltv/config.h"
#include "ltv/generate.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/stage.h"

extern const struct method method_hurdle, method_multiplier;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A pipeline run on generated data in a scratch directory. */
struct fixture {
	char *dir;
	struct config cfg;
};

/* Applies the override "key=<prefix><suffix>" (suffix may be ""). */
static void set(struct config *cfg, const char *key, const char *prefix, const char *suffix)
{
	struct ltv_err err = { 0 };
	char *assignment = xasprintf("%s=%s%s", key, prefix, suffix);

	if (config_apply_override(cfg, assignment, &err) != 0)
		fail_msg("override %s: %s", assignment, err.msg);
	free(assignment);
}

static void run_to(struct fixture *fx, const char *to)
{
	struct run_options opts = { .as_of = INT64_MIN, .to = to, .command = "test" };
	struct ltv_err err = { 0 };
	FILE *out = fopen("/dev/null", "w");
	int ret;

	assert_non_null(out);
	ret = runner_run(&fx->cfg, &opts, out, &err);
	fclose(out);
	if (ret != 0)
		fail_msg("runner_run --to %s: %s", to, err.msg);
}

/* Generates the sample and runs the pipeline up to `to`, with extra_key=extra unless NULL. */
static struct fixture *fixture_new(const char *to, const char *extra_key, const char *extra)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct generate_param gp;
	struct ltv_err err = { 0 };
	char *data;

	assert_non_null(fx);
	fx->dir = test_scratch_dir();
	assert_non_null(fx->dir);
	data = xasprintf("%s/data", fx->dir);
	generate_param_init(&gp);
	gp.n_users = 20000;
	if (generate_sample(&gp, data, NULL, &err) != 0)
		fail_msg("generate_sample: %s", err.msg);
	config_init_defaults(&fx->cfg);
	set(&fx->cfg, "input.users", data, "/users.csv");
	set(&fx->cfg, "input.events", data, "/events.csv");
	set(&fx->cfg, "registry.path", fx->dir, "/models/registry.sqlite");
	set(&fx->cfg, "run.log_dir", fx->dir, "/logs");
	set(&fx->cfg, "ingest.rejects_dir", fx->dir, "/logs");
	set(&fx->cfg, "run.jobs", "2", "");
	if (extra)
		set(&fx->cfg, extra_key, extra, "");
	free(data);
	run_to(fx, to);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	if (!fx)
		return;
	config_release(&fx->cfg);
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->dir);
	free(fx);
}

/* The current multiplier artefact, its model data and the loaded method. */
struct loaded {
	struct registry *reg;
	struct artefact_info features, tiers, artefact;
	struct model_data d;
	void *state;
	cJSON *metrics;
};

static void load(const struct fixture *fx, struct loaded *l)
{
	struct stage_ctx ctx = { 0 };
	struct ltv_err err = { 0 };

	memset(l, 0, sizeof(*l));
	if (registry_open(fx->cfg.registry.path, 5, &l->reg, &err) != 0 ||
	    registry_artefact_current(l->reg, "features", &l->features, &err) != 0 ||
	    registry_artefact_current(l->reg, "tiers", &l->tiers, &err) != 0 ||
	    registry_artefact_current(l->reg, "multiplier", &l->artefact, &err) != 0)
		fail_msg("registry: %s", err.msg);
	ctx.reg = l->reg;
	ctx.cfg = &fx->cfg;
	ctx.as_of = l->artefact.as_of;
	ctx.inputs[0] = &l->features;
	ctx.inputs[1] = &l->tiers;
	ctx.n_inputs = 2;
	if (model_data_load(&ctx, 1, &l->d) != 0)
		fail_msg("model_data_load: %s", ctx.err.msg);
	if (method_multiplier.load(l->reg, &l->artefact, &fx->cfg, &l->state, &err) != 0)
		fail_msg("method_multiplier.load: %s", err.msg);
	l->metrics = cJSON_Parse(l->artefact.metrics);
	assert_non_null(l->metrics);
}

static void unload(struct loaded *l)
{
	method_multiplier.free_state(l->state);
	model_data_release(&l->d);
	artefact_info_release(&l->features);
	artefact_info_release(&l->tiers);
	artefact_info_release(&l->artefact);
	registry_close(l->reg);
	cJSON_Delete(l->metrics);
}

static double metric(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(item))
		fail_msg("metric '%s' missing or not a number", name);
	return item->valuedouble;
}

static void predict(const struct loaded *l, const size_t *rows, size_t n, int64_t horizon,
		    double *out_ltv, double *out_p)
{
	struct ltv_err err = { 0 };

	if (method_multiplier.predict(l->state, &l->d, rows, n, horizon, out_ltv, out_p, &err) != 0)
		fail_msg("predict: %s", err.msg);
}

/*
 * Equal up to the last digit or so: cJSON prints a double with 15 significant
 * digits whenever that reads back within an epsilon, so metrics lose an ulp.
 */
static int same_number(double a, double b)
{
	return fabs(a - b) <= 1e-14 * fmax(fabs(a), fabs(b));
}

static size_t *all_rows(size_t n)
{
	size_t *rows = malloc(n * sizeof(size_t));

	assert_non_null(rows);
	for (size_t i = 0; i < n; i++)
		rows[i] = i;
	return rows;
}

static struct fixture *fx_main;

static int group_setup(void **state)
{
	(void)state;
	log_level_current = LOG_WARN;
	fx_main = fixture_new("multiplier", NULL, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_free(fx_main);
	return 0;
}

/* The entry "t<tier>_h<H>" of the metrics' models, or NULL. */
static const cJSON *entry(const struct loaded *l, int tier, int64_t horizon)
{
	char name[32];

	snprintf(name, sizeof(name), "t%d_h%lld", tier, (long long)horizon);
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l->metrics,
										  "models"), name);
}

static void test_artefact_metrics(void **state)
{
	const int64_t target = fx_main->cfg.features.target_horizon;
	struct loaded l;
	struct row_split split;
	const double *rev_window;
	size_t n_zero = 0;

	(void)state;
	load(fx_main, &l);
	assert_int_equal(l.artefact.version, 1);
	assert_int_equal(metric(l.metrics, "horizon"), target);
	assert_true(isfinite(metric(l.metrics, "wape")) && metric(l.metrics, "wape") > 0);
	assert_true(isfinite(metric(l.metrics, "rmsle")) && metric(l.metrics, "rmsle") > 0);
	assert_int_equal(metric(l.metrics, "n_models"),
			 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l.metrics, "models")));
	model_data_split(&l.d, target, 0, &split);
	rev_window = frame_column(&l.d.frame, "rev_window");
	for (size_t i = 0; i < split.n_valid; i++)
		n_zero += rev_window[split.valid[i]] == 0;
	assert_int_equal(metric(l.metrics, "n_valid"), split.n_valid);
	assert_true(same_number(metric(l.metrics, "zero_window_share"),
				(double)n_zero / (double)split.n_valid));
	assert_true(n_zero > 0 && n_zero < split.n_valid);
	/* The pooled entry exists at every horizon, with a regressor and a constant. */
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const cJSON *m = entry(&l, 0, fx_main->cfg.features.horizons.v[h]);

		assert_non_null(m);
		assert_true(metric(m, "n_train") > 50);
		assert_true(metric(m, "iter") >= 0);
		assert_true(metric(m, "smear") > 0.5 && metric(m, "smear") < 10);
		assert_true(metric(m, "zero_window_value") > 0);
	}
	row_split_release(&split);
	unload(&l);
}

/* Zero-window rows get exactly their tier's recorded constant, else the pooled one. */
static void test_zero_window_constant(void **state)
{
	struct loaded l;
	size_t n, *rows, n_zero = 0, n_own = 0;
	double *pred;
	const double *rev_window;

	(void)state;
	load(fx_main, &l);
	n = l.d.frame.n_rows;
	rows = all_rows(n);
	pred = malloc(n * sizeof(double));
	rev_window = frame_column(&l.d.frame, "rev_window");
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const int64_t horizon = fx_main->cfg.features.horizons.v[h];
		double value[4], first[4];

		value[0] = metric(entry(&l, 0, horizon), "zero_window_value");
		for (int t = 1; t <= 3; t++) {
			const cJSON *m = entry(&l, t, horizon);

			value[t] = m && cJSON_GetObjectItemCaseSensitive(m, "zero_window_value")
					   ? metric(m, "zero_window_value") : value[0];
			n_own += value[t] != value[0];
		}
		predict(&l, rows, n, horizon, pred, NULL);
		for (int t = 0; t <= 3; t++)
			first[t] = NAN;
		for (size_t i = 0; i < n; i++) {
			const int t = (int)l.d.tier[i];

			if (rev_window[i] != 0)
				continue;
			n_zero++;
			assert_true(same_number(pred[i], value[t]));
			if (isnan(first[t]))
				first[t] = pred[i];
			assert_true(pred[i] == first[t]); /* one constant, bit for bit */
		}
	}
	assert_true(n_zero > n); /* most rows, at every horizon */
	assert_true(n_own > 0);  /* and at least one tier has a constant of its own */
	free(rows);
	free(pred);
	unload(&l);
}

/* Window payers: finite, never below the window revenue, and mostly above it. */
static void test_window_payers(void **state)
{
	struct loaded l;
	size_t n, *rows, n_pos = 0, n_above = 0;
	double *pred, *p;
	const double *rev_window;

	(void)state;
	load(fx_main, &l);
	n = l.d.frame.n_rows;
	rows = all_rows(n);
	pred = malloc(n * sizeof(double));
	p = malloc(n * sizeof(double));
	rev_window = frame_column(&l.d.frame, "rev_window");
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		predict(&l, rows, n, fx_main->cfg.features.horizons.v[h], pred, p);
		for (size_t i = 0; i < n; i++) {
			assert_true(isnan(p[i])); /* no notion of a payer */
			if (!(rev_window[i] > 0))
				continue;
			n_pos++;
			assert_true(isfinite(pred[i]));
			assert_true(pred[i] >= rev_window[i]);
			n_above += pred[i] > rev_window[i];
		}
	}
	assert_true(n_pos > 100);
	assert_true(n_above > n_pos / 2);
	/* A horizon nobody trained: nothing to say. */
	predict(&l, rows, 10, 365, pred, NULL);
	for (size_t i = 0; i < 10; i++)
		assert_true(isnan(pred[i]));
	free(rows);
	free(pred);
	free(p);
	unload(&l);
}

/*
 * The stored metrics were computed from the models in memory right after
 * training; the same numbers from the reloaded models prove the round trip.
 */
static void test_reload_reproduces(void **state)
{
	const int64_t target = fx_main->cfg.features.target_horizon;
	struct loaded l;
	struct row_split split;
	struct ltv_err err = { 0 };
	double *a, *b, *actual, rmsle, wape;
	const double *ltv;

	(void)state;
	load(fx_main, &l);
	model_data_split(&l.d, target, 0, &split);
	a = malloc(split.n_valid * sizeof(double));
	b = malloc(split.n_valid * sizeof(double));
	actual = malloc(split.n_valid * sizeof(double));
	predict(&l, split.valid, split.n_valid, target, a, NULL);
	predict(&l, split.valid, split.n_valid, target, b, NULL);
	assert_memory_equal(a, b, split.n_valid * sizeof(double));
	ltv = model_data_label(&l.d, target);
	for (size_t i = 0; i < split.n_valid; i++)
		actual[i] = ltv[split.valid[i]];
	assert_int_equal(metrics_rmsle(actual, a, split.n_valid, &rmsle, NULL, &err), 0);
	assert_int_equal(metrics_wape(actual, a, split.n_valid, &wape, NULL, &err), 0);
	assert_true(same_number(rmsle, metric(l.metrics, "rmsle")));
	assert_true(same_number(wape, metric(l.metrics, "wape")));
	free(a);
	free(b);
	free(actual);
	row_split_release(&split);
	unload(&l);
}

/* Each method refuses the other's artefact cleanly (the manifests' magics differ). */
static void test_foreign_manifest_refused(void **state)
{
	struct registry *reg = NULL;
	struct artefact_info hurdle, multiplier;
	struct ltv_err err = { 0 };
	void *st = (void *)&err;

	(void)state;
	assert_int_equal(registry_open(fx_main->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_artefact_current(reg, "hurdle", &hurdle, &err), 0);
	assert_int_equal(registry_artefact_current(reg, "multiplier", &multiplier, &err), 0);
	assert_int_equal(method_multiplier.load(reg, &hurdle, &fx_main->cfg, &st, &err), LTV_EINVAL);
	assert_null(st);
	assert_non_null(strstr(err.msg, "LTVMULT1"));
	st = (void *)&err;
	assert_int_equal(method_hurdle.load(reg, &multiplier, &fx_main->cfg, &st, &err), LTV_EINVAL);
	assert_null(st);
	assert_non_null(strstr(err.msg, "LTVHRDL1"));
	artefact_info_release(&hurdle);
	artefact_info_release(&multiplier);
	registry_close(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_artefact_metrics),
		cmocka_unit_test(test_zero_window_constant),
		cmocka_unit_test(test_window_payers),
		cmocka_unit_test(test_reload_reproduces),
		cmocka_unit_test(test_foreign_manifest_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
