/*
 * select and calibrate spread their steps over the stage's threads (select's
 * other horizons side by side, its blend fits and rank-share mixes, calibrate's
 * horizons and the floor share's predictions): one thread and two must give
 * the very same artefacts and the same metrics (select's verdict lines).
 */
#include "testutil.h"
#include "fixture.h"
#include "ltv/log.h"
#include "ltv/select_mix.h"

static struct test_pipeline *fx;

static int group_setup(void **state)
{
	(void)state;
	log_level_current = LOG_WARN;
	fx = test_pipeline_new(20000, 42, "2");
	test_run_to(&fx->cfg, "calibrate");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	test_pipeline_free(fx);
	return 0;
}

/* The current artefact of stage (caller releases). */
static void current(const char *stage, struct artefact_info *out)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };

	if (registry_open(fx->cfg.registry.path, 5, &reg, &err) != 0 ||
	    registry_artefact_current(reg, stage, out, &err) != 0)
		fail_msg("registry: %s", err.msg);
	registry_close(reg);
}

static void test_one_thread_same_as_two(void **state)
{
	static const char *const stages[] = { "select", "calibrate" };
	const struct run_options opts = { .as_of = INT64_MIN, .only = "select,calibrate", .force = 1,
					  .command = "test" };
	struct artefact_info two[2], one[2];

	(void)state;
	for (int i = 0; i < 2; i++)
		current(stages[i], &two[i]);
	test_set(&fx->cfg, "run.jobs=%s", "1");
	test_run(&fx->cfg, &opts);
	for (int i = 0; i < 2; i++) {
		current(stages[i], &one[i]);
		assert_true(one[i].version > two[i].version);
		if (strcmp(one[i].content_hash, two[i].content_hash) != 0)
			fail_msg("%s: content %s with run.jobs=2, %s with run.jobs=1", stages[i],
				 two[i].content_hash, one[i].content_hash);
	}
	/* every verdict and figure select reports, in the same order */
	assert_non_null(strstr(two[0].metrics, "global_choice_h"));
	assert_string_equal(one[0].metrics, two[0].metrics);
	for (int i = 0; i < 2; i++) {
		artefact_info_release(&one[i]);
		artefact_info_release(&two[i]);
	}
	test_set(&fx->cfg, "run.jobs=%s", "2");
}

/*
 * A run's calibrate predicts with the methods select left it (the run's
 * shelf); a calibrate alone loads them from the registry: the same
 * calibration, bands and metrics either way.
 */
static void test_calibrate_alone_same_as_after_select(void **state)
{
	const struct run_options both = { .as_of = INT64_MIN, .only = "select,calibrate", .force = 1,
					  .command = "test" };
	const struct run_options alone = { .as_of = INT64_MIN, .only = "calibrate", .force = 1,
					   .command = "test" };
	struct artefact_info shared, loaded;
	const char *end;

	(void)state;
	test_run(&fx->cfg, &both);
	current("calibrate", &shared);
	test_run(&fx->cfg, &alone);
	current("calibrate", &loaded);
	assert_true(loaded.version > shared.version);
	assert_string_equal(loaded.content_hash, shared.content_hash);
	/* every figure before the version's own (its headline error, its number) */
	end = strstr(shared.metrics, "\"out_of_sample_campaign_wape\"");
	assert_non_null(strstr(shared.metrics, "\"interval_bands\""));
	assert_non_null(end);
	assert_int_equal(strstr(loaded.metrics, "\"out_of_sample_campaign_wape\"") - loaded.metrics,
			 end - shared.metrics);
	assert_memory_equal(loaded.metrics, shared.metrics, (size_t)(end - shared.metrics));
	artefact_info_release(&shared);
	artefact_info_release(&loaded);
}

/*
 * select_predict_mix's two parts: whole cohorts, each in the rows' order,
 * cohorts taken by first row until part 0 holds half the rows.
 */
static void test_cohort_halves(void **state)
{
	static const char *const apps[] = { "a" }, *const campaigns[] = { "x", "y", "z" };
	const double campaign[] = { 0, 1, 0, 2, 1, 0, 2, 2 };
	const size_t all[] = { 0, 1, 2, 3, 4, 5, 6, 7 }, some[] = { 7, 1, 6, 0, 4 };
	const unsigned char want_all[] = { 0, 0, 0, 1, 0, 0, 1, 1 }, want_some[] = { 0, 0, 0, 1, 0 };
	struct model_data d = { 0 };
	unsigned char part[8];

	(void)state;
	frame_init(&d.frame, 8);
	memcpy(frame_add_column(&d.frame, "campaign_code"), campaign, sizeof(campaign));
	memset(frame_add_column(&d.frame, "app_code"), 0, 8 * sizeof(double));
	d.apps = (char **)apps;
	d.n_apps = 1;
	d.campaigns = (char **)campaigns;
	d.n_campaigns = 3;
	/* x (3 rows) and y (2) fill part 0 to 5 of 8; z starts past half */
	assert_int_equal(select_cohort_halves(&d, all, 8, part), 5);
	assert_memory_equal(part, want_all, 8);
	/* by first row: z (2 of 5 rows), then y (2) fill part 0 to 4; x starts past half */
	assert_int_equal(select_cohort_halves(&d, some, 5, part), 4);
	assert_memory_equal(part, want_some, 5);
	frame_release(&d.frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_thread_same_as_two),
		cmocka_unit_test(test_calibrate_alone_same_as_after_select),
		cmocka_unit_test(test_cohort_halves),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
