/*
 * Two model versions on the same users (serving/model_compare.c) and the
 * auto-promotion that uses it (calibrate.c move_aliases), on one generated
 * sample of 20,000 users; models trained as of 2025-06-01 and the data run to
 * 2025-09-05, so users installed after 2025-06-01 have a known ltv_30.
 *  v1: deliberately worse: trained on the same users with every revenue
 *      multiplied by 10 (a currency mix-up in the training extract), then the registry
 *      re-ingests the true data. Its own validation WAPE is measured on the
 *      inflated data, so it says nothing of how v1 does on true revenue (it was
 *      below v2's before main's stacked blend: the old rule kept v1);
 *  v2: the default model on the true data.
 * Config-only crippling (one boosting round, no features, alpha forced) did
 * not make a worse model: select and calibrate route around the crippled
 * methods, so those versions compared as equal or better (see the commit).
 */
#include "testutil.h"
#include "fixture.h"

#include "ltv/model_compare.h"
#include "ltv/timeutil.h"

#define TRAIN_AS_OF "2025-06-01"


/* runner_status as `ltvpipe status` calls it: on the registry opened read-only in one snapshot. */
static int status_of(const struct config *cfg, FILE *out, struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret = registry_open_readonly(cfg->registry.path, &reg, err);

	if (ret == 0)
		ret = registry_read_begin(reg, err);
	if (ret == 0)
		ret = runner_status(cfg, reg, INT64_MIN, out, NULL, err);
	registry_close(reg);
	return ret;
}

static struct test_pipeline *pipeline;

static void train(const char *set1, const char *set2)
{
	struct config cfg;
	struct run_options opts = { .command = "test" };

	config_copy(&cfg, &pipeline->cfg);
	if (set1)
		test_set(&cfg, "%s", set1);
	if (set2)
		test_set(&cfg, "%s", set2);
	assert_int_equal(time_parse_iso8601(TRAIN_AS_OF, &opts.as_of), 0);
	test_run(&cfg, &opts);
	config_release(&cfg);
}

/*
 * dir/events3.csv: data/events.csv with revenue (the third column) times
 * REVENUE_FACTOR. It was 3; since select lets BTYD methods serve on a tie, and
 * they lean on each user's own spend, a mix trained on tripled revenue was
 * worse (campaign WAPE 0.244 against 0.223) but no longer significantly so
 * on 2,499 users: the mix-up is made larger, not the test weaker.
 */
#define REVENUE_FACTOR 10
/* events.csv: user_id,event_time,revenue,event; every revenue but the header's x REVENUE_FACTOR */
static int inflate_row(void *ctx, size_t row, char **f, size_t n)
{
	char *buf = ctx;
	double revenue;

	assert_true(n >= 4);
	if (row == 0)
		return 0;
	assert_int_equal(parse_double(f[2], &revenue), 0);
	snprintf(buf, 64, "%.4f", REVENUE_FACTOR * revenue);
	f[2] = buf;
	return 1;
}

static void inflated_events(const char *dir)
{
	char *in_path = xasprintf("%s/data/events.csv", dir);
	char *out_path = xasprintf("%s/events3.csv", dir);
	char buf[64];

	assert_true(test_csv_rewrite(in_path, out_path, inflate_row, buf) > 0);
	free(in_path);
	free(out_path);
}

static int setup(void **state)
{
	char *events3;

	(void)state;
	pipeline = test_pipeline_new(20000, 5, "1");
	test_config_small_sample(&pipeline->cfg);
	test_set(&pipeline->cfg, "models.compare_min_campaign_users=20");
	inflated_events(pipeline->dir);
	events3 = xasprintf("input.events=%s/events3.csv", pipeline->dir);
	train(events3, NULL);
	free(events3);
	train("ingest.mode=replace", NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_pipeline_free(pipeline);
	return 0;
}

static int compare(int64_t a, int64_t b, const char *as_of, int64_t horizon,
		   struct compare_result *out, struct ltv_err *err)
{
	struct registry *reg = NULL;
	int64_t t = INT64_MIN;
	int ret;

	if (as_of)
		assert_int_equal(time_parse_iso8601(as_of, &t), 0);
	assert_int_equal(registry_open_readonly(pipeline->cfg.registry.path, &reg, err), 0);
	ret = compare_versions(reg, &pipeline->cfg, a, b, t, horizon, out, err);
	registry_close(reg);
	return ret;
}

static double validation_wape(int64_t version)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	double wape = NAN;

	assert_int_equal(registry_open_readonly(pipeline->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_model_version_error(reg, version, &wape, &err), 0);
	registry_close(reg);
	return wape;
}

static void test_worse_model_detected(void **state)
{
	struct compare_result r, swapped;
	struct ltv_err err = { 0 };
	const struct paired_metric_result *w = &r.pr.m[PAIRED_WAPE];
	char line[512];

	(void)state;
	if (compare(2, 1, NULL, 0, &r, &err) != 0)
		fail_msg("compare: %s", err.msg);
	compare_summary(&r, line, sizeof(line));
	print_message("v2 against v1 (revenue x10): %s\n", line);
	print_message("validation WAPE: v1 %.4f, v2 %.4f\n", validation_wape(1), validation_wape(2));
	/*
	 * Each version's own validation WAPE is measured on its own data (v1's on
	 * inflated revenue): printed above for the record, it cannot be compared.
	 */
	/* users installed after 2025-06-01, scored as of the latest event - 30 days */
	assert_true(r.pr.n > 1000);
	assert_int_equal(r.horizon, 30);
	assert_true(r.first_install >= r.as_of_a && r.first_install >= r.as_of_b);
	assert_int_equal(r.scored_at, r.as_of - 30 * SECONDS_PER_DAY);
	assert_true(w->b > w->a);
	assert_true(w->lo > 0);
	assert_true(w->p < 0.05);
	assert_true(r.pr.m[PAIRED_BIAS].b > r.pr.m[PAIRED_BIAS].a);
	assert_false(compare_b_is_better(&r));
	/* the other way round: B (v2) is better, same p */
	if (compare(1, 2, NULL, 0, &swapped, &err) != 0)
		fail_msg("compare: %s", err.msg);
	assert_true(compare_b_is_better(&swapped));
	assert_double_near(swapped.pr.m[PAIRED_WAPE].diff, -w->diff, 1e-12);
	assert_double_near(swapped.pr.m[PAIRED_WAPE].p, w->p, 1e-12);
}

static void test_identical_not_flagged(void **state)
{
	struct compare_result r;
	struct ltv_err err = { 0 };

	(void)state;
	if (compare(1, 1, NULL, 7, &r, &err) != 0)
		fail_msg("compare: %s", err.msg);
	assert_int_equal(r.horizon, 7);
	for (int k = 0; k < PAIRED_N_METRICS; k++) {
		assert_double_near(r.pr.m[k].diff, 0, 0);
		assert_double_near(r.pr.m[k].p, 1, 1e-12);
	}
	assert_false(compare_b_is_better(&r));
}

static void test_bad_input(void **state)
{
	struct compare_result r;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(compare(1, 9, NULL, 0, &r, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "9"));
	assert_int_equal(compare(1, 2, NULL, 45, &r, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "--horizon 45"));
	/* outcomes on 2025-07-01: nobody installed after 2025-06-01 is 30 days old by 2025-06-01 */
	assert_int_equal(compare(1, 2, "2025-07-01", 0, &r, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "not complete yet"));
	assert_int_equal(compare(1, 2, "2026-01-01", 0, &r, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "after the latest event"));
}

struct last_move {
	const char *alias;
	int64_t to;
	char *reason;
};

static int keep_last(void *opaque, int n_cols, char **names, char **values)
{
	struct last_move *m = opaque;
	const char *alias = NULL, *to = NULL, *reason = NULL;

	for (int c = 0; c < n_cols; c++) {
		if (strcmp(names[c], "alias") == 0)
			alias = values[c];
		else if (strcmp(names[c], "to_version") == 0 || strcmp(names[c], "to") == 0)
			to = values[c];
		else if (strcmp(names[c], "reason") == 0)
			reason = values[c];
	}
	assert_non_null(alias);
	assert_non_null(to);
	assert_non_null(reason);
	if (strcmp(alias, m->alias) != 0)
		return 0;
	assert_int_equal(parse_int64(to, &m->to), 0);
	free(m->reason);
	m->reason = xstrdup(reason);
	return 0;
}

/* The last alias_history move of alias: its to_version, and its reason (caller frees). */
static char *last_move(const char *alias, int64_t *out_to)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct last_move m = { alias, 0, NULL };

	assert_int_equal(registry_open_readonly(pipeline->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_report(reg, "alias_history", 0, keep_last, &m, &err), 0);
	registry_close(reg);
	assert_non_null(m.reason);
	*out_to = m.to;
	return m.reason;
}

static void test_auto_promote_paired(void **state)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t to = 0, production = 0;
	char *reason;

	(void)state;
	/* production is v1 (the first version); a twin of v2 (another k-means seed) replaces it */
	train("models.auto_promote=1", "lookalike.seed=7");
	reason = last_move("production", &to);
	print_message("v3: %s\n", reason);
	assert_int_equal(to, 3);
	assert_non_null(strstr(reason, "auto-promoted: paired comparison on"));
	assert_non_null(strstr(reason, "(v3) vs"));
	assert_non_null(strstr(reason, "(v1), difference -"));
	free(reason);
	/* another twin is not significantly better than v3: production stays, the candidate says why */
	train("models.auto_promote=1", "lookalike.seed=8");
	reason = last_move("candidate", &to);
	print_message("v4: %s\n", reason);
	assert_int_equal(to, 4);
	assert_non_null(strstr(reason, "kept production (not significantly better): paired comparison on"));
	free(reason);
	assert_int_equal(registry_open_readonly(pipeline->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_alias_get(reg, "production", &production, &err), 0);
	registry_close(reg);
	assert_int_equal(production, 3);
}

/* run says what it made and how it compares; status shows both versions */
static void test_run_and_status_say(void **state)
{
	struct run_options opts = { .command = "test" };
	struct config cfg;
	struct ltv_err err = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	config_copy(&cfg, &pipeline->cfg);
	test_set(&cfg, "lookalike.seed=9");
	assert_int_equal(time_parse_iso8601(TRAIN_AS_OF, &opts.as_of), 0);
	out = open_memstream(&text, &len);
	if (runner_run(&cfg, &opts, out, &err) != 0)
		fail_msg("run: %s", err.msg);
	fclose(out);
	print_message("%s", strstr(text, "new candidate") ? strstr(text, "new candidate") : text);
	assert_non_null(strstr(text, "new candidate: model version 5; production is model version 3\n"));
	assert_non_null(strstr(text, "not significantly better than production: paired comparison on"));
	free(text);
	out = open_memstream(&text, &len);
	assert_int_equal(status_of(&cfg, out, &err), 0);
	fclose(out);
	assert_non_null(strstr(text, "  production model version 3, trained as of 2025-06-01"));
	assert_non_null(strstr(text, "  candidate  model version 5, trained as of 2025-06-01"));
	assert_non_null(strstr(text, "never monitored"));
	free(text);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worse_model_detected),
		cmocka_unit_test(test_identical_not_flagged),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_auto_promote_paired),
		cmocka_unit_test(test_run_and_status_say),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
