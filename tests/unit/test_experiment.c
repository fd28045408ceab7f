/*
 * A/B experiments: the salted-hash assignment (stable, at its share within 1%
 * over 100,000 users, nested as the share grows, independent of the logging
 * sample), refused input leaving the registry unchanged, and a run through
 * score and report on a generated sample: v1 production, v2 candidate.
 */
#include "testutil.h"
#include "fixture.h"

#include "ltv/ab_assign.h"
#include "ltv/experiment.h"
#include "ltv/registry.h"
#include "ltv/score.h"
#include "ltv/timeutil.h"


/* score_run as `ltvpipe score` calls it: on the registry opened read-only in one snapshot. */
static int score_registry(const struct config *cfg, const struct score_options *opts, FILE *out,
			  struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret = registry_open_readonly(cfg->registry.path, &reg, err);

	if (ret == 0)
		ret = registry_read_begin(reg, err);
	if (ret == 0)
		ret = score_run(cfg, reg, opts, out, err);
	registry_close(reg);
	return ret;
}

static void test_assignment(void **state)
{
	enum { N = 100000 };
	size_t cand = 0, cand20 = 0, nested = 1, other_salt = 0, both = 0, logged_cand = 0;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		char id[32];
		int a;

		snprintf(id, sizeof(id), "u%08zu", i);
		a = ab_is_candidate("exp1", id, 0.1);
		assert_int_equal(a, ab_is_candidate("exp1", id, 0.1)); /* stable */
		cand += (size_t)a;
		cand20 += (size_t)ab_is_candidate("exp1", id, 0.2);
		if (a && !ab_is_candidate("exp1", id, 0.2))
			nested = 0;
		other_salt += (size_t)ab_is_candidate("exp2", id, 0.1);
		both += (size_t)(a && ab_is_candidate("exp2", id, 0.1));
		logged_cand += (size_t)(a && ab_is_logged("exp1", id, 0.5));
	}
	print_message("share 0.1: %zu of %d (%.4f); 0.2: %zu; another salt %zu, both %zu; "
		      "logged at 0.5 among candidates %.4f\n", cand, N, (double)cand / N, cand20,
		      other_salt, both, (double)logged_cand / (double)cand);
	assert_true(fabs((double)cand / N - 0.1) < 0.01);
	assert_true(fabs((double)cand20 / N - 0.2) < 0.01);
	assert_true(nested);
	assert_true(fabs((double)other_salt / N - 0.1) < 0.01);
	/* independent salts: about 0.1 x 0.1 of users in both */
	assert_true(fabs((double)both / N - 0.01) < 0.003);
	assert_true(fabs((double)logged_cand / (double)cand - 0.5) < 0.03);
	/*
	 * Known values, so the assignment never changes silently between runs or
	 * releases (a user would change arm mid-experiment): XXH64 of
	 * "exp1" 0x1f "u00000000", seed 0, top 53 bits / 2^53, worked out by an
	 * independent Python XXH64 from the xxHash spec.
	 */
	assert_double_near(ab_unit("exp1", "u00000000"), 0.5527347687748743, 1e-15);
	assert_double_near(ab_unit("exp1", "u00000001"), 0.05108929739549184, 1e-15);
	assert_double_near(ab_unit("exp2", "u00000000"), 0.42986696007931824, 1e-15);
	assert_false(ab_is_candidate("exp1", "u00000000", 0.5));
	assert_true(ab_is_candidate("exp1", "u00000000", 0.56));
	assert_true(ab_is_candidate("exp1", "u00000001", 0.1));
}

static struct test_pipeline *pipeline;

static int run_models(char *const *args, size_t n, char **out_text, struct ltv_err *err)
{
	char *argv[16], *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int ret;

	assert_true(n + 1 < 16);
	argv[0] = (char *)"experiment";
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = args[i];
	argv[n + 1] = NULL;
	{
		/* as the dispatcher does: the existing registry, for writing */
		struct registry *reg = NULL;

		ret = registry_open_existing(pipeline->cfg.registry.path, 5, &reg, err);
		if (ret == 0)
			ret = experiment_command(&pipeline->cfg, reg, (int)n + 1, argv, out, err);
		registry_close(reg);
	}
	fclose(out);
	if (out_text)
		*out_text = text;
	else
		free(text);
	return ret;
}

static char *experiments_listed(void)
{
	char *args[] = { (char *)"list" }, *text = NULL;
	struct ltv_err err = { 0 };

	if (run_models(args, 1, &text, &err) != 0)
		fail_msg("experiment list: %s", err.msg);
	return text;
}

static char *score(const char *as_of)
{
	struct score_options opts = { .as_of = INT64_MIN };
	struct ltv_err err = { 0 };
	char *path = xasprintf("%s/scores.csv", pipeline->dir), *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	opts.output = path;
	assert_int_equal(time_parse_iso8601(as_of, &opts.as_of), 0);
	if (score_registry(&pipeline->cfg, &opts, out, &err) != 0)
		fail_msg("score: %s", err.msg);
	fclose(out);
	free(path);
	return text;
}

static void test_experiment_end_to_end(void **state)
{
	struct run_options opts = { .command = "test" };
	struct ltv_err err = { 0 };
	struct config cfg2;
	char *text = NULL, *list;
	char *unknown[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"9" };
	char *share0[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"2",
			   (char *)"--share", (char *)"0" };
	char *share1[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"2",
			   (char *)"--share", (char *)"1" };
	char *share15[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"2",
			    (char *)"--share", (char *)"1.5" };
	char *itself[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"production" };
	char *start[] = { (char *)"start", (char *)"ab1", (char *)"--candidate", (char *)"2",
			  (char *)"--share", (char *)"0.5", (char *)"--min-users", (char *)"50" };
	char *start2[] = { (char *)"start", (char *)"ab2", (char *)"--candidate", (char *)"2" };
	char *report_early[] = { (char *)"report", (char *)"ab1", (char *)"--as-of", (char *)"2025-07-01" };
	char *report[] = { (char *)"report", (char *)"ab1" };
	char *report_unknown[] = { (char *)"report", (char *)"nope" };
	char *stop[] = { (char *)"stop", (char *)"ab1" };
	char *before;

	(void)state;
	pipeline = test_pipeline_new(10000, 3, "1");
	test_config_small_sample(&pipeline->cfg);
	test_set(&pipeline->cfg, "models.compare_min_campaign_users=5");
	assert_int_equal(time_parse_iso8601("2025-06-01", &opts.as_of), 0);
	test_run(&pipeline->cfg, &opts);
	config_copy(&cfg2, &pipeline->cfg);
	test_set(&cfg2, "hurdle.n_rounds=50");
	test_run(&cfg2, &opts);
	config_release(&cfg2);

	/* refused input: clear errors, nothing stored */
	assert_int_equal(run_models(unknown, 4, NULL, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "9"));
	assert_int_equal(run_models(share0, 6, NULL, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "--share '0' must be a number in (0, 1)"));
	assert_int_equal(run_models(share1, 6, NULL, &err), LTV_EUSAGE);
	assert_int_equal(run_models(share15, 6, NULL, &err), LTV_EUSAGE);
	assert_int_equal(run_models(itself, 4, NULL, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "production already"));
	list = experiments_listed();
	assert_string_equal(list, "(no experiment yet)\n");
	free(list);
	assert_int_equal(run_models(report_unknown, 2, NULL, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no experiment 'nope'"));

	/* start; a second one while it runs is refused */
	if (run_models(start, 8, &text, &err) != 0)
		fail_msg("start: %s", err.msg);
	assert_non_null(strstr(text, "experiment ab1 started: 0.5 of users"));
	free(text);
	assert_int_equal(run_models(start2, 4, NULL, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "experiment 'ab1' is running"));

	/* score splits the users; a second score assigns them the same way and logs nobody twice */
	text = score("2025-07-01");
	print_message("%s", text);
	assert_non_null(strstr(text, "experiment ab1: "));
	assert_non_null(strstr(text, "scored by candidate model version 2 (share 0.5), the others by 1"));
	free(text);
	before = experiments_listed();
	text = score("2025-07-01");
	free(text);
	list = experiments_listed();
	assert_string_equal(list, before);
	print_message("%s", list);
	free(list);
	free(before);

	/* outcomes: none complete at 2025-07-01; complete by the data's end */
	assert_int_equal(run_models(report_early, 4, NULL, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "not complete"));
	if (run_models(report, 2, &text, &err) != 0)
		fail_msg("report: %s", err.msg);
	print_message("%s", text);
	assert_non_null(strstr(text, "  control "));
	assert_non_null(strstr(text, "  candidate "));
	assert_non_null(strstr(text, "Welch z"));
	free(text);

	/* stopped: score serves everyone with production and says nothing of it */
	assert_int_equal(run_models(stop, 2, NULL, &err), 0);
	text = score("2025-07-01");
	assert_null(strstr(text, "experiment ab1"));
	free(text);
	test_pipeline_free(pipeline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assignment),
		cmocka_unit_test(test_experiment_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
