/*
 * Unit tests for the hurdle stage (pipeline/hurdle.c) on a real registry: the
 * pipeline runs on a generated 20,000-user sample in a scratch directory,
 * then the tests read its artefact, load method_hurdle back and check the
 * payer AUC, the save/load round trip (reloaded predictions reproduce the
 * metrics computed from the models in memory right after training, to the
 * bit), the floor at window revenue, dispatch by tier, a single-class
 * horizon (a sample rewritten so that nobody pays on day 1), that changing
 * one hurdle parameter reruns hurdle alone, the payer classifier's sample past
 * hurdle.max_train_rows and of the users without revenue past
 * hurdle.max_zero_rows, that the number of threads does not change a byte
 * of the stored models (sampled rows included), the revenue part's
 * smearing factor per snapshot age (hurdle.smear_by_age, on in the fixture),
 * that its predictions past the horizon (method.predict_past) serve as
 * its own, and which tiers fit a model of their own (the tier share rule).
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/age_means.h"
#include "ltv/config.h"
#include "ltv/gbt.h"
#include "ltv/gbt_artefact.h"
#include "ltv/hurdle_model.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/stage.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#include "fixture.h"

extern const struct method method_hurdle;

/* Generates the sample and runs the pipeline up to `to`, with the override extra unless NULL. */
static struct test_pipeline *fixture_new(const char *to, const char *extra)
{
	struct test_pipeline *fx = test_pipeline_new(20000, 42, "2");

	if (extra)
		test_set(&fx->cfg, "%s", extra);
	test_run_to(&fx->cfg, to);
	return fx;
}

/* The current hurdle artefact, its model data and the loaded method. */
static void load(const struct test_pipeline *fx, struct test_model *l)
{
	test_model_load(&fx->cfg, &method_hurdle, 1, l);
	assert_non_null(l->metrics);
}

static struct test_pipeline *fx_main;

static int group_setup(void **state)
{
	(void)state;
	log_level_current = LOG_WARN;
	fx_main = fixture_new("multiplier", "hurdle.smear_by_age=1");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_pipeline_free(fx_main);
	return 0;
}

/* The position of key among obj's members, or -1. */
static int key_position(const cJSON *obj, const char *key)
{
	const cJSON *item;
	int at = 0;

	cJSON_ArrayForEach(item, obj) {
		if (strcmp(item->string, key) == 0)
			return at;
		at++;
	}
	return -1;
}

/*
 * A pooled model's payer classifier and revenue regressor are fitted by
 * tasks of their own and gathered after: the stored details must read as
 * one fit's, horizon by horizon in the configured order (each horizon's
 * pooled model first, then its tiers'), each model's row counts first, then
 * the classifier's keys, then the regressor's.
 */
static void assert_models_in_fit_order(const cJSON *models, const struct int_list *horizons)
{
	const cJSON *m;
	size_t h = 0;
	int tier_last = -1;

	cJSON_ArrayForEach(m, models) {
		long long horizon;
		int tier;

		assert_int_equal(sscanf(m->string, "t%d_h%lld", &tier, &horizon), 2);
		if (h < horizons->n && horizon != horizons->v[h]) {
			h++;
			tier_last = -1;
		}
		assert_true(h < horizons->n);
		assert_int_equal(horizon, horizons->v[h]);
		assert_true(tier > tier_last);
		assert_true(tier_last >= 0 || tier == 0);
		tier_last = tier;
		assert_int_equal(key_position(m, "n_train"), 0);
		assert_int_equal(key_position(m, "n_valid"), 1);
		assert_true(key_position(m, "payers") > 1);
		assert_true(key_position(m, "revenue") > key_position(m, "payers"));
		assert_true(key_position(m, "smear") > key_position(m, "revenue"));
	}
	assert_int_equal(h + 1, horizons->n);
}

static void test_artefact_metrics(void **state)
{
	struct test_model l;
	const cJSON *models, *m;
	char name[32];

	(void)state;
	load(fx_main, &l);
	assert_int_equal(l.artefact.version, 1);
	assert_int_equal(test_metric(l.metrics, "horizon"), 30);
	assert_true(test_metric(l.metrics, "payer_auc") > 0.6);
	assert_true(test_metric(l.metrics, "payer_auc") <= 1.0);
	assert_true(test_metric(l.metrics, "rmsle") > 0 &&
		    isfinite(test_metric(l.metrics, "rmsle")));
	assert_true(test_metric(l.metrics, "wape") > 0 && isfinite(test_metric(l.metrics, "wape")));
	assert_true(test_metric(l.metrics, "n_valid") > 500);
	models = cJSON_GetObjectItemCaseSensitive(l.metrics, "models");
	assert_non_null(models);
	assert_int_equal(test_metric(l.metrics, "n_models"), cJSON_GetArraySize(models));
	/* The pooled fallback exists at every horizon and says what it chose. */
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const cJSON *revenue;

		snprintf(name, sizeof(name), "t0_h%lld", (long long)fx_main->cfg.features.horizons.v[h]);
		m = cJSON_GetObjectItemCaseSensitive(models, name);
		assert_non_null(m);
		assert_true(test_metric(m, "n_train") > 1000);
		assert_true(test_metric(m, "payer_iter") >= 0);
		revenue = cJSON_GetObjectItemCaseSensitive(m, "revenue");
		assert_true(cJSON_IsString(revenue));
		assert_true(strcmp(revenue->valuestring, "log1p_smear") == 0 ||
			    strcmp(revenue->valuestring, "gamma") == 0);
		assert_true(test_metric(m, "smear") > 0.5 && test_metric(m, "smear") < 10);
	}
	assert_models_in_fit_order(models, &fx_main->cfg.features.horizons);
	test_model_release(&l);
}

/*
 * The stored metrics were computed from the models in memory right after
 * training; the same numbers from the reloaded models prove the round trip.
 */
static void test_reload_reproduces(void **state)
{
	const int64_t target = fx_main->cfg.features.target_horizon;
	struct test_model l;
	struct row_split split;
	struct ltv_err err = { 0 };
	double *a, *b, *pa, *pb, *actual, *payer, auc, rmsle, wape;
	const double *ltv, *rev_window;

	(void)state;
	load(fx_main, &l);
	model_data_split(&l.d, target, 0, &split);
	assert_true(split.n_valid > 0);
	a = malloc(split.n_valid * sizeof(double));
	b = malloc(split.n_valid * sizeof(double));
	pa = malloc(split.n_valid * sizeof(double));
	pb = malloc(split.n_valid * sizeof(double));
	actual = malloc(split.n_valid * sizeof(double));
	payer = malloc(split.n_valid * sizeof(double));
	test_model_predict(&l, split.valid, split.n_valid, target, a, pa);
	test_model_predict(&l, split.valid, split.n_valid, target, b, pb);
	assert_memory_equal(a, b, split.n_valid * sizeof(double));
	assert_memory_equal(pa, pb, split.n_valid * sizeof(double));

	ltv = model_data_label(&l.d, target);
	rev_window = frame_column(&l.d.frame, "rev_window");
	for (size_t i = 0; i < split.n_valid; i++) {
		actual[i] = ltv[split.valid[i]];
		payer[i] = actual[i] - rev_window[split.valid[i]] > 0;
	}
	assert_int_equal(metrics_auc(payer, pa, split.n_valid, &auc, NULL, &err), 0);
	assert_int_equal(metrics_rmsle(actual, a, split.n_valid, &rmsle, NULL, &err), 0);
	assert_int_equal(metrics_wape(actual, a, split.n_valid, &wape, NULL, &err), 0);
	assert_true(test_same_number(auc, test_metric(l.metrics, "payer_auc")));
	assert_true(test_same_number(rmsle, test_metric(l.metrics, "rmsle")));
	assert_true(test_same_number(wape, test_metric(l.metrics, "wape")));

	free(a);
	free(b);
	free(pa);
	free(pb);
	free(actual);
	free(payer);
	row_split_release(&split);
	test_model_release(&l);
}

/* Every row, mature or not, at every horizon: finite, p in [0, 1], never below the window. */
static void test_floor_and_range(void **state)
{
	struct test_model l;
	size_t n, *rows, below = 0, bad = 0;
	double *pred, *p;
	const double *rev_window;

	(void)state;
	load(fx_main, &l);
	n = l.d.frame.n_rows;
	rows = test_all_rows(n);
	pred = malloc(n * sizeof(double));
	p = malloc(n * sizeof(double));
	rev_window = frame_column(&l.d.frame, "rev_window");
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		test_model_predict(&l, rows, n, fx_main->cfg.features.horizons.v[h], pred, p);
		for (size_t i = 0; i < n; i++) {
			below += pred[i] < rev_window[i];
			bad += !isfinite(pred[i]) || !(p[i] >= 0 && p[i] <= 1);
		}
	}
	assert_int_equal(below, 0);
	assert_int_equal(bad, 0);
	/* A horizon nobody trained: nothing to say. */
	test_model_predict(&l, rows, 10, 365, pred, p);
	for (size_t i = 0; i < 10; i++)
		assert_true(isnan(pred[i]) && isnan(p[i]));
	free(rows);
	free(pred);
	free(p);
	test_model_release(&l);
}

/* Rows of a tier with its own model use it; rows of the others use the pooled one. */
static void test_tier_dispatch(void **state)
{
	const int64_t target = fx_main->cfg.features.target_horizon;
	const cJSON *models;
	struct test_model l;
	size_t n, *rows, differ[4] = { 0 }, count[4] = { 0 };
	double *tiered, *pooled, *tier;
	char name[32];

	(void)state;
	load(fx_main, &l);
	n = l.d.frame.n_rows;
	rows = test_all_rows(n);
	tiered = malloc(n * sizeof(double));
	pooled = malloc(n * sizeof(double));
	test_model_predict(&l, rows, n, target, tiered, NULL);
	tier = l.d.tier;
	l.d.tier = NULL; /* without tiers every row goes to the pooled model */
	test_model_predict(&l, rows, n, target, pooled, NULL);
	l.d.tier = tier;
	for (size_t i = 0; i < n; i++) {
		count[(int)tier[i]]++;
		differ[(int)tier[i]] += tiered[i] != pooled[i];
	}
	models = cJSON_GetObjectItemCaseSensitive(l.metrics, "models");
	snprintf(name, sizeof(name), "t1_h%lld", (long long)target);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(models, name)); /* tier 1 is big enough */
	for (int t = 1; t <= 3; t++) {
		snprintf(name, sizeof(name), "t%d_h%lld", t, (long long)target);
		if (cJSON_GetObjectItemCaseSensitive(models, name))
			assert_true(differ[t] > count[t] / 2);
		else
			assert_int_equal(differ[t], 0);
	}
	free(rows);
	free(tiered);
	free(pooled);
	test_model_release(&l);
}

/* Splits a CSV line in place at commas (generated files have no quoted fields). */
static int split_csv(char *line, char **fields, int max)
{
	int n = 0;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max) {
		fields[n++] = line;
		line = strchr(line, ',');
		if (!line)
			break;
		*line++ = '\0';
	}
	return n;
}

/*
 * Rewrites the sample's events.csv without the revenue of day 1 (the second
 * day after install): nobody pays on day 1. Returns how many events were dropped.
 */
static size_t drop_day1_revenue(const struct test_pipeline *fx)
{
	char *users_path = xasprintf("%s/users.csv", fx->data);
	char *events_path = xasprintf("%s/events.csv", fx->data);
	char *tmp_path = xasprintf("%s/events.csv.tmp", fx->data);
	FILE *in = fopen(users_path, "r"), *out;
	struct strmap install;
	char line[4096], copy[4096], *f[8];
	size_t dropped = 0;
	int64_t t;

	assert_non_null(in);
	strmap_init(&install);
	assert_non_null(fgets(line, sizeof(line), in)); /* header */
	assert_int_equal(split_csv(line, f, 8), 7);
	assert_string_equal(f[3], "install_time");
	while (fgets(line, sizeof(line), in)) {
		assert_true(split_csv(line, f, 8) >= 4);
		assert_int_equal(time_parse_iso8601(f[3], &t), 0);
		assert_int_equal(strmap_put(&install, f[0], t), 0);
	}
	fclose(in);
	in = fopen(events_path, "r");
	out = fopen(tmp_path, "w");
	assert_non_null(in);
	assert_non_null(out);
	assert_non_null(fgets(line, sizeof(line), in));
	fputs(line, out);
	assert_int_equal(split_csv(line, f, 8), 4);
	assert_string_equal(f[1], "event_time");
	assert_string_equal(f[2], "revenue");
	while (fgets(line, sizeof(line), in)) {
		int64_t installed;
		double revenue;

		snprintf(copy, sizeof(copy), "%s", line);
		assert_int_equal(split_csv(line, f, 8), 4);
		assert_int_equal(time_parse_iso8601(f[1], &t), 0);
		assert_true(strmap_get(&install, f[0], &installed));
		assert_int_equal(parse_double(f[2], &revenue), 0);
		if (revenue > 0 && time_day_index(installed, t) == 1) {
			dropped++;
			continue;
		}
		fputs(copy, out);
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(rename(tmp_path, events_path), 0);
	strmap_release(&install);
	free(users_path);
	free(events_path);
	free(tmp_path);
	return dropped;
}

/*
 * A horizon with no revenue between the first snapshot and it: every label is
 * "not a payer". With horizons 2 and 30 the rows at horizon 2 are those of
 * snapshot 1 (the only age below 2), whose revenue to come is that of day 1;
 * the sample is rewritten so that nobody pays on day 1. That must train (a
 * constant p = 0), not crash, and predict exactly the revenue before the row's age.
 */
static void test_single_class_horizon(void **state)
{
	struct test_pipeline *fx;
	struct test_model l;
	const cJSON *m;
	size_t n, *rows, at_snapshot1 = 0;
	double *pred, *p;
	const double *rev_window, *window;

	(void)state;
	fx = test_pipeline_new(20000, 42, "2");
	assert_true(drop_day1_revenue(fx) > 0); /* the generated sample did have day-1 payers */
	test_set(&fx->cfg, "%s", "features.horizons=2,30");
	test_run_to(&fx->cfg, "hurdle");
	load(fx, &l);
	m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l.metrics, "models"),
					     "t0_h2");
	assert_non_null(m);
	assert_true(test_metric(m, "n_train") > 1000);
	assert_true(test_metric(m, "payer_const") == 0.0);
	assert_int_equal(test_metric(m, "payers"), 0);
	assert_true(cJSON_GetObjectItemCaseSensitive(m, "payer_iter") == NULL);
	/* the target horizon is unaffected */
	assert_true(test_metric(l.metrics, "payer_auc") > 0.6);
	n = l.d.frame.n_rows;
	rows = test_all_rows(n);
	pred = malloc(n * sizeof(double));
	p = malloc(n * sizeof(double));
	rev_window = frame_column(&l.d.frame, "rev_window");
	window = frame_column(&l.d.frame, "window_days");
	test_model_predict(&l, rows, n, 2, pred, p);
	for (size_t i = 0; i < n; i++) {
		assert_true(pred[i] == rev_window[i]);
		assert_true(p[i] == 0.0);
		at_snapshot1 += window[i] == 1;
	}
	assert_true(at_snapshot1 > 1000);
	free(rows);
	free(pred);
	free(p);
	test_model_release(&l);
	test_pipeline_free(fx);
}

static int64_t count_versions(struct registry *reg, const char *name)
{
	struct ltv_err err = { 0 };
	int64_t n = -1;

	if (registry_artefact_count(reg, name, &n, &err) != 0)
		fail_msg("registry_artefact_count: %s", err.msg);
	return n;
}

/* Runs last: it moves the fixture's current hurdle to version 2. */
static void test_param_change_reruns_hurdle_only(void **state)
{
	static const char *const upstream[] = { "ingest", "features", "tiers", "multiplier" };
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct test_model l;

	(void)state;
	test_set(&fx_main->cfg, "hurdle.max_depth=%s", "3");
	test_run_to(&fx_main->cfg, "multiplier");
	assert_int_equal(registry_open(fx_main->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(count_versions(reg, "hurdle"), 2);
	for (size_t i = 0; i < sizeof(upstream) / sizeof(upstream[0]); i++)
		assert_int_equal(count_versions(reg, upstream[i]), 1);
	/* And once more with nothing changed: nothing runs. */
	registry_close(reg);
	test_run_to(&fx_main->cfg, "multiplier");
	assert_int_equal(registry_open(fx_main->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(count_versions(reg, "hurdle"), 2);
	assert_int_equal(count_versions(reg, "multiplier"), 1);
	registry_close(reg);
	load(fx_main, &l);
	assert_int_equal(l.artefact.version, 2);
	assert_non_null(strstr(l.artefact.config, "hurdle.max_depth=3\n"));
	assert_true(test_metric(l.metrics, "payer_auc") > 0.6);
	test_model_release(&l);
}

/*
 * Past hurdle.max_train_rows the payer classifier trains on a sample of about
 * that many rows, and says so; the model still ranks payers. The setting is
 * kept, so the thread test after this one covers the sampled path too.
 */
static void test_sampled_payer_rows(void **state)
{
	const double cap = 3000;
	struct test_model l;
	cJSON *m;
	int sampled = 0;

	(void)state;
	test_set(&fx_main->cfg, "hurdle.max_train_rows=%.0f", cap);
	test_run_to(&fx_main->cfg, "multiplier");
	load(fx_main, &l);
	assert_non_null(strstr(l.artefact.config, "hurdle.max_train_rows=3000\n"));
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(l.metrics, "models")) {
		double n_train = test_metric(m, "n_train");
		cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "n_train_sampled");

		if (n_train <= cap) {
			assert_null(n);
			continue;
		}
		assert_non_null(n);
		assert_true(n->valuedouble > 0.9 * cap && n->valuedouble < 1.1 * cap);
		sampled++;
	}
	assert_true(sampled > 0);
	assert_true(test_metric(l.metrics, "payer_auc") > 0.6);
	test_model_release(&l);
}

/* Each model's "payers" (training rows with revenue to come) of the current hurdle artefact. */
static size_t model_payers(const struct test_pipeline *fx, double *out, size_t cap)
{
	struct test_model l;
	const cJSON *m;
	size_t n = 0;

	load(fx, &l);
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(l.metrics, "models")) {
		assert_true(n < cap);
		out[n++] = test_metric(m, "payers");
	}
	test_model_release(&l);
	return n;
}

/*
 * Past hurdle.max_zero_rows, the users with no revenue to H are sampled for
 * the payer classifier: about that many of their rows stay, every other row
 * stays (the payers counted are those of the unsampled run, model by model),
 * the share kept is reported, and the model still ranks payers. The setting
 * is kept, so the thread test after this one covers this path too.
 */
static void test_sampled_zero_users(void **state)
{
	const double cap = 2000;
	double payers[16], payers_sampled[16];
	size_t n_models, sampled = 0, i = 0;
	struct test_model l;
	cJSON *m;

	(void)state;
	test_set(&fx_main->cfg, "%s", "hurdle.max_train_rows=0");
	test_run_to(&fx_main->cfg, "multiplier");
	n_models = model_payers(fx_main, payers, 16);
	test_set(&fx_main->cfg, "hurdle.max_zero_rows=%.0f", cap);
	test_run_to(&fx_main->cfg, "multiplier");
	assert_int_equal(model_payers(fx_main, payers_sampled, 16), n_models);
	load(fx_main, &l);
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(l.metrics, "models")) {
		cJSON *zero = cJSON_GetObjectItemCaseSensitive(m, "n_zero_rows");

		assert_true(payers_sampled[i] == payers[i]);
		i++;
		if (!zero) {
			assert_null(cJSON_GetObjectItemCaseSensitive(m, "n_train_sampled"));
			continue;
		}
		double n_train = test_metric(m, "n_train"), kept = test_metric(m, "n_train_sampled");
		double rate = test_metric(m, "zero_rows_rate"), kept_zero = kept - (n_train - zero->valuedouble);

		assert_true(zero->valuedouble > cap);
		assert_true(fabs(rate - cap / zero->valuedouble) < 1e-12);
		assert_true(kept_zero > 0.85 * cap && kept_zero < 1.15 * cap);
		sampled++;
	}
	assert_true(sampled > 0);
	assert_true(test_metric(l.metrics, "payer_auc") > 0.6);
	test_model_release(&l);
}

/* Content hash of a stage's current artefact. */
static void current_hash(const struct test_pipeline *fx, const char *stage, char *out)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info a;

	if (registry_open(fx->cfg.registry.path, 5, &reg, &err) != 0 ||
	    registry_artefact_current(reg, stage, &a, &err) != 0)
		fail_msg("registry: %s", err.msg);
	memcpy(out, a.content_hash, HASH_HEX_LEN);
	artefact_info_release(&a);
	registry_close(reg);
}

static void force_hurdle_and_multiplier(struct test_pipeline *fx, const char *jobs)
{
	const struct run_options opts = { .as_of = INT64_MIN, .from = "hurdle", .to = "multiplier",
					  .force = 1, .command = "test" };

	test_set(&fx->cfg, "run.jobs=%s", jobs);
	test_run(&fx->cfg, &opts);
}

/*
 * Hurdle trains its horizons as parallel tasks beside multiplier, with more
 * XGBoost threads as cores free up: one thread and three must store the very
 * same models (content hashes cover every body byte).
 */
static void test_threads_do_not_change_artefacts(void **state)
{
	static const char *const stages[] = { "hurdle", "multiplier" };
	static const char *const jobs[] = { "1", "3" };
	char first[2][HASH_HEX_LEN], again[HASH_HEX_LEN];

	(void)state;
	for (size_t j = 0; j < 2; j++) {
		force_hurdle_and_multiplier(fx_main, jobs[j]);
		for (size_t i = 0; i < 2; i++) {
			if (j == 0) {
				current_hash(fx_main, stages[i], first[i]);
				continue;
			}
			current_hash(fx_main, stages[i], again);
			if (strcmp(first[i], again) != 0)
				fail_msg("%s: content %s with run.jobs=1, %s with run.jobs=3", stages[i],
					 first[i], again);
		}
	}
	test_set(&fx_main->cfg, "run.jobs=%s", "2");
}

/*
 * hurdle.smear_by_age (on in this file's fixture). At each snapshot age with
 * at least AGE_MEANS_MIN_ROWS training payers, an entry's factor is its
 * correction over those payers alone: for gamma the ratio that makes their
 * mean E[future | payer] their mean future (so exact, but for the floor at 0),
 * for log1p Duan's mean(exp(residual)) over them. The entry's one factor over
 * every age, what the key's 0 serves (a row without an age takes it), misses
 * gamma's oldest such age below H by far more.
 */
static void test_smear_by_age(void **state)
{
	const struct int_list *snaps = &fx_main->cfg.features.snapshots;
	size_t n_checked = 0, n_gamma_oldest = 0;
	struct test_model l;
	const struct hurdle_state *s;
	const double *rev_window, *window;
	struct ltv_err err = { 0 };

	(void)state;
	load(fx_main, &l);
	s = l.state;
	rev_window = frame_column(&l.d.frame, "rev_window");
	window = frame_column(&l.d.frame, "window_days");
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const int64_t horizon = fx_main->cfg.features.horizons.v[h];
		const struct hurdle_model *m = hurdle_state_find(s, 0, horizon);
		const double *ltv = model_data_label(&l.d, horizon);
		struct row_split split;
		size_t *payers, n = 0;
		double oldest_miss[2] = { NAN, NAN }; /* by age, one factor */
		float *x = NULL;
		double *pred;

		assert_non_null(m);
		if (m->kind == HURDLE_REVENUE_NONE)
			continue;
		assert_true(m->smear_by_age.n > 0);
		model_data_split_weighted(&l.d, horizon, 0, &split); /* the pooled entry's rows */
		payers = malloc((split.n_train ? split.n_train : 1) * sizeof(size_t));
		for (size_t i = 0; i < split.n_train; i++)
			if (ltv[split.train[i]] - rev_window[split.train[i]] > 0)
				payers[n++] = split.train[i];
		assert_int_equal(model_data_matrix(&l.d, &s->features, payers, n, &x, &err), 0);
		pred = malloc((n ? n : 1) * sizeof(double));
		assert_int_equal(gbt_predict(m->revenue, x, n, s->features.n, pred, &err), 0);
		for (size_t k = 0; k < snaps->n && snaps->v[k] < horizon; k++) {
			const double a = (double)snaps->v[k];
			double sum_age = 0, sum_one = 0, sum_act = 0, duan = 0;
			size_t n_age = 0;

			for (size_t i = 0; i < n; i++) {
				const double y = ltv[payers[i]] - rev_window[payers[i]];

				if (window[payers[i]] != a)
					continue;
				sum_age += hurdle_model_revenue(m, pred[i], a);
				sum_one += hurdle_model_revenue(m, pred[i], NAN);
				sum_act += y;
				duan += exp(log1p(y) - (pred[i] + m->shift));
				n_age++;
			}
			if (n_age < AGE_MEANS_MIN_ROWS) {
				assert_true(age_means_at(&m->smear_by_age, a, NAN) == m->smear);
				continue;
			}
			if (m->kind == HURDLE_REVENUE_GAMMA) {
				assert_true(fabs(sum_age - sum_act) < 0.01 * sum_act);
				oldest_miss[0] = fabs(sum_age - sum_act);
				oldest_miss[1] = fabs(sum_one - sum_act);
			} else {
				assert_true(fabs(age_means_at(&m->smear_by_age, a, NAN) -
						 duan / (double)n_age) < 1e-9);
			}
			n_checked++;
		}
		if (!isnan(oldest_miss[0])) {
			assert_true(oldest_miss[1] > 5 * oldest_miss[0]);
			n_gamma_oldest++;
		}
		free(x);
		free(pred);
		free(payers);
		row_split_release(&split);
	}
	assert_true(n_checked >= 4);
	assert_true(n_gamma_oldest >= 1); /* on this sample: 90 days, gamma, age 60 */
	test_model_release(&l);
}

/* How predictor_predict_method serves a row past the horizon from v (method.predict_past). */
static double served_past(double v, double rev_window)
{
	return isnan(v) ? v : rev_window + 0 * fmax(v - rev_window, 0.0);
}

/*
 * method.predict_past serves the rows it is told are past the horizon as
 * predict does (served_past, bit for bit, p_payer too), without the revenue
 * trees (its values differ where E > 0), and the others with predict's own
 * values; with rev_window too large to rule out an overflow it walks them,
 * and gives predict's own values.
 */
static void test_predict_past_serves_as_predict(void **state)
{
	struct test_model l;
	size_t n, *rows, differ = 0, unchanged = 0;
	double *v, *p, *v_past, *p_past, *rev, *rev_saved;
	unsigned char *past;

	(void)state;
	load(fx_main, &l);
	n = l.d.frame.n_rows;
	rows = test_all_rows(n);
	v = malloc(n * sizeof(double));
	p = malloc(n * sizeof(double));
	v_past = malloc(n * sizeof(double));
	p_past = malloc(n * sizeof(double));
	rev_saved = malloc(n * sizeof(double));
	past = malloc(n);
	for (size_t i = 0; i < n; i++)
		past[i] = i % 3 != 0; /* a third of the rows not past: predict's own values */
	assert_non_null(method_hurdle.predict_past);
	rev = (double *)(uintptr_t)frame_column(&l.d.frame, "rev_window");
	memcpy(rev_saved, rev, n * sizeof(double));
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const int64_t horizon = fx_main->cfg.features.horizons.v[h];
		struct ltv_err err = { 0 };

		assert_int_equal(method_hurdle.predict(l.state, &l.d, rows, n, horizon, v, p, &err), 0);
		assert_int_equal(method_hurdle.predict_past(l.state, &l.d, rows, n, horizon, past,
							    v_past, p_past, &err), 0);
		for (size_t i = 0; i < n; i++) {
			const double a = served_past(v[i], rev[i]), b = served_past(v_past[i], rev[i]);

			assert_memory_equal(&p[i], &p_past[i], sizeof(double));
			if (past[i]) {
				assert_memory_equal(&a, &b, sizeof(double));
				differ += v[i] != v_past[i];
			} else {
				assert_memory_equal(&v[i], &v_past[i], sizeof(double));
				unchanged++;
			}
		}
		/* rev_window past DBL_MAX / 4: the revenue trees run, predict's values */
		for (size_t i = 0; i < n; i++)
			rev[i] = DBL_MAX / 2;
		assert_int_equal(method_hurdle.predict_past(l.state, &l.d, rows, n, horizon, past,
							    v_past, p_past, &err), 0);
		assert_int_equal(method_hurdle.predict(l.state, &l.d, rows, n, horizon, v, p, &err), 0);
		assert_memory_equal(v, v_past, n * sizeof(double));
		memcpy(rev, rev_saved, n * sizeof(double));
	}
	assert_true(differ > n / 10 && unchanged > n / 10);
	free(rows);
	free(past);
	free(v);
	free(p);
	free(v_past);
	free(p_past);
	free(rev_saved);
	test_model_release(&l);
}

/*
 * The tier share rule (gbt_artefact_tier_fit), which hurdle and multiplier
 * share. With tier 1's thresholds lowered nearly every campaign is tier 1:
 * where a tier holds 90% or more of the pooled training rows it has no
 * model of its own (its rows use the pooled one) and the stage lists it in
 * tiers_on_pooled_model; a tier with at least hurdle.min_tier_users rows and
 * a smaller share keeps its own. Run last: it leaves the tiers changed.
 */
static void test_tier_share_rule(void **state)
{
	const size_t min_users = 100;
	const cJSON *models, *listed;
	size_t count[3] = { 0 };
	struct test_model l;
	char want[256] = "";

	(void)state;
	test_set(&fx_main->cfg, "hurdle.min_tier_users=%zu", min_users);
	test_set(&fx_main->cfg, "%s", "tiers.tier1_min_users=50");
	test_set(&fx_main->cfg, "%s", "tiers.tier1_min_payers=3");
	test_run_to(&fx_main->cfg, "hurdle");
	load(fx_main, &l);
	models = cJSON_GetObjectItemCaseSensitive(l.metrics, "models");
	for (size_t h = 0; h < fx_main->cfg.features.horizons.n; h++) {
		const int64_t horizon = fx_main->cfg.features.horizons.v[h];
		struct row_split pooled;

		model_data_split_weighted(&l.d, horizon, 0, &pooled);
		for (int t = 1; t <= 3; t++) {
			struct row_split split;
			enum gbt_artefact_tier_fit fit;
			char name[32];

			model_data_split_weighted(&l.d, horizon, t, &split);
			fit = gbt_artefact_tier_fit(split.n_train, min_users, split.n_train,
						    pooled.n_train);
			snprintf(name, sizeof(name), "t%d_h%lld", t, (long long)horizon);
			assert_int_equal(cJSON_GetObjectItemCaseSensitive(models, name) != NULL,
					 fit == GBT_ARTEFACT_TIER_OWN);
			if (fit == GBT_ARTEFACT_TIER_NEARLY_POOLED)
				snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s ", name);
			count[fit]++;
			row_split_release(&split);
		}
		row_split_release(&pooled);
	}
	assert_true(count[GBT_ARTEFACT_TIER_NEARLY_POOLED] >= 2);
	assert_true(count[GBT_ARTEFACT_TIER_OWN] >= 1);
	snprintf(want + strlen(want), sizeof(want) - strlen(want),
		 "(90%% or more of the pooled training rows)");
	listed = cJSON_GetObjectItemCaseSensitive(l.metrics, "tiers_on_pooled_model");
	assert_true(cJSON_IsString(listed));
	assert_string_equal(listed->valuestring, want);
	test_model_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_artefact_metrics),
		cmocka_unit_test(test_reload_reproduces),
		cmocka_unit_test(test_smear_by_age),
		cmocka_unit_test(test_floor_and_range),
		cmocka_unit_test(test_tier_dispatch),
		cmocka_unit_test(test_predict_past_serves_as_predict),
		cmocka_unit_test(test_single_class_horizon),
		cmocka_unit_test(test_param_change_reruns_hurdle_only),
		cmocka_unit_test(test_sampled_payer_rows),
		cmocka_unit_test(test_sampled_zero_users),
		/* Last: its forced reruns add versions the test above counts. */
		cmocka_unit_test(test_threads_do_not_change_artefacts),
		/* After it: changes the tiers (that test counts hurdle's versions). */
		cmocka_unit_test(test_tier_share_rule),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
