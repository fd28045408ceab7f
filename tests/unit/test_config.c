/*
 * Unit tests for config.c: the built-in defaults, YAML loading over them
 * (overrides, sequences, and errors that name FILE:LINE:COL and the key),
 * --set overrides, the cross-key checks of config_validate, and the canonical
 * section text the runner fingerprints.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/config.h"

/* Writes text to a fresh scratch dir as NAME and returns the path (caller frees). */
static char *yaml_file(const char *name, const char *text)
{
	char *dir = test_scratch_dir();
	char *path;

	assert_non_null(dir);
	path = test_write_file(dir, name, text);
	assert_non_null(path);
	free(dir);
	return path;
}

/* Removes a file yaml_file wrote and its scratch dir. */
static void remove_yaml(const char *path)
{
	char *dir = xstrdup(path);

	unlink(path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
	free(dir);
}

/* Loads text as a YAML file over the defaults; returns the status, message in err. */
static int load_text(struct config *cfg, const char *text, char **out_path, struct ltv_err *err)
{
	char *path = yaml_file("c.yaml", text);
	int ret;

	config_init_defaults(cfg);
	err_clear(err);
	ret = config_load_file(cfg, path, err);
	remove_yaml(path); /* the path stays for messages; the file and its dir go */
	if (out_path)
		*out_path = path;
	else
		free(path);
	return ret;
}

static void test_defaults(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	config_init_defaults(&cfg);
	assert_string_equal(cfg.source_path, "(defaults)");
	assert_int_equal(cfg.features.snapshots.n, 6);
	assert_int_equal(cfg.features.snapshots.v[0], 1);
	assert_int_equal(cfg.features.snapshots.v[1], 3);
	assert_int_equal(cfg.features.snapshots.v[2], 7);
	assert_int_equal(cfg.features.snapshots.v[3], 14);
	assert_int_equal(cfg.features.snapshots.v[4], 30);
	assert_int_equal(cfg.features.snapshots.v[5], 60);
	assert_int_equal(cfg.features.horizons.n, 3);
	assert_int_equal(cfg.features.horizons.v[0], 7);
	assert_int_equal(cfg.features.horizons.v[1], 30);
	assert_int_equal(cfg.features.horizons.v[2], 90);
	assert_int_equal(cfg.features.target_horizon, 30);
	assert_int_equal(cfg.features.validation_days, 28);
	assert_double_near(cfg.features.encoding_smoothing, 20.0, 0);
	assert_string_equal(cfg.input.users, "data/users.csv");
	assert_string_equal(cfg.input.events, "data/events.csv");
	assert_string_equal(cfg.registry.path, "models/registry.sqlite");
	assert_int_equal(cfg.registry.busy_timeout_s, 60);
	assert_string_equal(cfg.ingest.mode, "append");
	assert_double_near(cfg.ingest.max_reject_rate, 0.01, 0);
	assert_string_equal(cfg.columns.user_id, "user_id");
	assert_int_equal(cfg.columns.attributes.n, 0);
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_release(&cfg);
}

/* config/ltvpipe.yaml promises to hold exactly the built-in defaults. */
static void test_shipped_yaml_equals_defaults(void **state)
{
	struct config def, file;
	struct ltv_err err = { 0 };
	char *a, *b;

	(void)state;
	if (access("config/ltvpipe.yaml", R_OK) != 0)
		skip();
	config_init_defaults(&def);
	config_init_defaults(&file);
	assert_int_equal(config_load_file(&file, "config/ltvpipe.yaml", &err), 0);
	assert_string_equal(file.source_path, "config/ltvpipe.yaml");
	a = config_dump(&def);
	b = config_dump(&file);
	assert_string_equal(a, b);
	free(a);
	free(b);
	config_release(&def);
	config_release(&file);
}

static void test_load_overrides(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };
	char *path = NULL;

	(void)state;
	assert_int_equal(load_text(&cfg,
				   "# comment\n"
				   "features:\n"
				   "  validation_days: 21\n"
				   "  snapshots: [2, 10, 45]\n"
				   "  horizons: [14, 60, 365]\n"
				   "  target_horizon: 60\n"
				   "  encoding_smoothing: 2.5\n"
				   "ingest:\n"
				   "  mode: replace\n"
				   "  max_reject_rate: 0.5\n"
				   "registry:\n"
				   "  path: /tmp/x/reg.sqlite\n",
				   &path, &err),
			 0);
	assert_string_equal(cfg.source_path, path);
	assert_int_equal(cfg.features.validation_days, 21);
	assert_int_equal(cfg.features.snapshots.n, 3);
	assert_int_equal(cfg.features.snapshots.v[0], 2);
	assert_int_equal(cfg.features.snapshots.v[1], 10);
	assert_int_equal(cfg.features.snapshots.v[2], 45);
	assert_int_equal(cfg.features.horizons.n, 3);
	assert_int_equal(cfg.features.horizons.v[0], 14);
	assert_int_equal(cfg.features.horizons.v[1], 60);
	assert_int_equal(cfg.features.horizons.v[2], 365);
	assert_int_equal(cfg.features.target_horizon, 60);
	assert_double_near(cfg.features.encoding_smoothing, 2.5, 0);
	assert_string_equal(cfg.ingest.mode, "replace");
	assert_double_near(cfg.ingest.max_reject_rate, 0.5, 0);
	assert_string_equal(cfg.registry.path, "/tmp/x/reg.sqlite");
	/* untouched keys keep their defaults */
	assert_int_equal(cfg.registry.busy_timeout_s, 60);
	assert_string_equal(cfg.input.users, "data/users.csv");
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_release(&cfg);
	free(path);
}

static void test_list_as_block_sequence(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(load_text(&cfg,
				   "features:\n"
				   "  horizons:\n"
				   "    - 10\n"
				   "    - 30\n"
				   "columns:\n"
				   "  attributes:\n"
				   "    - country\n"
				   "    - platform\n",
				   NULL, &err),
			 0);
	assert_int_equal(cfg.features.horizons.n, 2);
	assert_int_equal(cfg.features.horizons.v[0], 10);
	assert_int_equal(cfg.features.horizons.v[1], 30);
	assert_int_equal(cfg.columns.attributes.n, 2);
	assert_string_equal(cfg.columns.attributes.v[0], "country");
	assert_string_equal(cfg.columns.attributes.v[1], "platform");
	config_release(&cfg);

	/* a scalar for a list key is a one-item list; lists replace, never append */
	assert_int_equal(load_text(&cfg, "features:\n  horizons: 30\n", NULL, &err), 0);
	assert_int_equal(cfg.features.horizons.n, 1);
	assert_int_equal(cfg.features.horizons.v[0], 30);
	config_release(&cfg);
}

static void test_unknown_key(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };
	char *path = NULL, *expect;

	(void)state;
	/* the bad key's value is on line 3, column 20 */
	assert_int_equal(load_text(&cfg,
				   "features:\n"
				   "  validation_days: 28\n"
				   "  validation_dayz: 21\n",
				   &path, &err),
			 LTV_ECONFIG);
	assert_int_equal(err.code, LTV_ECONFIG);
	expect = xasprintf("%s:3:20: unknown key 'features.validation_dayz'", path);
	assert_non_null(strstr(err.msg, expect));
	free(expect);
	free(path);
	config_release(&cfg);

	/* an unknown section, nested */
	assert_int_equal(load_text(&cfg, "featurez:\n  validation_days: 21\n", &path, &err),
			 LTV_ECONFIG);
	expect = xasprintf("%s:2:20: unknown key 'featurez.validation_days'", path);
	assert_non_null(strstr(err.msg, expect));
	free(expect);
	free(path);
	config_release(&cfg);
}

static void test_wrong_type_and_range(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };
	char *path = NULL, *expect;

	(void)state;
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: two\n", &path, &err),
			 LTV_ECONFIG);
	expect = xasprintf("%s:2:20: features.validation_days: expected an integer, got 'two'", path);
	assert_non_null(strstr(err.msg, expect));
	free(expect);
	free(path);
	config_release(&cfg);

	/* a double key given text */
	assert_int_equal(load_text(&cfg, "ingest:\n  max_reject_rate: lots\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "ingest.max_reject_rate"));
	config_release(&cfg);

	/* out of range: validation_days is 1..3650 */
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: 3651\n", &path, &err),
			 LTV_ECONFIG);
	expect = xasprintf("%s:2:20: features.validation_days: 3651 is out of range; use a value "
			   "from 1 to 3650", path);
	assert_non_null(strstr(err.msg, expect));
	free(expect);
	free(path);
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: 0\n", &path, &err),
			 LTV_ECONFIG);
	expect = xasprintf("%s:2:20: features.validation_days: 0 is out of range", path);
	assert_non_null(strstr(err.msg, expect));
	free(expect);
	free(path);
	config_release(&cfg);
	/* the ends of the range are accepted */
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: 3650\n", NULL, &err), 0);
	assert_int_equal(cfg.features.validation_days, 3650);
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: 1\n", NULL, &err), 0);
	assert_int_equal(cfg.features.validation_days, 1);
	config_release(&cfg);

	assert_int_equal(load_text(&cfg, "ingest:\n  max_reject_rate: 1.5\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "ingest.max_reject_rate"));
	assert_non_null(strstr(err.msg, "out of range"));
	config_release(&cfg);

	/* a list item out of range names the list key */
	assert_int_equal(load_text(&cfg, "features:\n  horizons: [7, 0]\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.horizons"));
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  snapshots: [1, 3651]\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.snapshots: 3651 is out of range"));
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  snapshots: [1, two]\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.snapshots: expected integers, got 'two'"));
	config_release(&cfg);

	/* a mapping where a number belongs, a list where a scalar belongs */
	assert_int_equal(load_text(&cfg, "features:\n  validation_days:\n    a: 1\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.validation_days: expected an integer, got a mapping"));
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  validation_days: [1, 2]\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.validation_days: expected an integer, got a list"));
	config_release(&cfg);
	assert_int_equal(load_text(&cfg, "features:\n  snapshots:\n    a: 1\n", NULL, &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "features.snapshots: expected a list of integers, got a mapping"));
	config_release(&cfg);
}

static void test_yaml_syntax_and_missing_file(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };
	char *path = NULL;

	(void)state;
	assert_int_equal(load_text(&cfg, "features: [unclosed\n", &path, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "YAML"));
	free(path);
	config_release(&cfg);

	config_init_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, "/nonexistent/ltv.yaml", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/ltv.yaml"));
	config_release(&cfg);
}

static void test_apply_override(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=21", &err), 0);
	assert_int_equal(cfg.features.validation_days, 21);
	assert_int_equal(config_apply_override(&cfg, "features.snapshots=2, 5,13", &err), 0);
	assert_int_equal(cfg.features.snapshots.n, 3);
	assert_int_equal(cfg.features.snapshots.v[0], 2);
	assert_int_equal(cfg.features.snapshots.v[1], 5);
	assert_int_equal(cfg.features.snapshots.v[2], 13);
	assert_int_equal(config_apply_override(&cfg, "features.horizons=14, 30,90", &err), 0);
	assert_int_equal(cfg.features.horizons.n, 3);
	assert_int_equal(cfg.features.horizons.v[0], 14);
	assert_int_equal(cfg.features.horizons.v[2], 90);
	assert_int_equal(config_apply_override(&cfg, "input.users=a=b.csv", &err), 0);
	assert_string_equal(cfg.input.users, "a=b.csv");

	assert_int_equal(config_apply_override(&cfg, "features.validation_dayz=3", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "unknown key 'features.validation_dayz'"));
	assert_int_equal(config_apply_override(&cfg, "features.obs_days=3", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "unknown key 'features.obs_days'"));
	assert_int_equal(config_apply_override(&cfg, "features.validation_days", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "key.path=value"));
	assert_int_equal(config_apply_override(&cfg, "=3", &err), LTV_ECONFIG);
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=x", &err), LTV_ECONFIG);
	assert_string_equal(err.msg, "--set features.validation_days: expected an integer, got 'x'");
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=0", &err), LTV_ECONFIG);
	assert_string_equal(err.msg, "--set features.validation_days: 0 is out of range; use a value "
				     "from 1 to 3650");
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=3651", &err),
			 LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=", &err), LTV_ECONFIG);
	assert_int_equal(cfg.features.validation_days, 21);
	assert_int_equal(config_apply_override(&cfg, "features.snapshots=1,0", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "--set features.snapshots: 0 is out of range"));
	assert_int_equal(cfg.features.snapshots.n, 3);
	assert_int_equal(cfg.features.snapshots.v[0], 2);
	/* a failed override leaves the last good value */
	assert_int_equal(config_apply_override(&cfg, "features.horizons=7,abc", &err), LTV_ECONFIG);
	assert_int_equal(cfg.features.horizons.n, 3);
	assert_int_equal(cfg.features.horizons.v[0], 14);
	config_release(&cfg);
}

/*
 * A rejected number must not stick: the value before the failed --set stays,
 * for a double and for an integer key.
 */
static void test_failed_set_keeps_value(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "ingest.max_reject_rate=0.25", &err), 0);
	assert_int_equal(config_apply_override(&cfg, "ingest.max_reject_rate=2", &err), LTV_ECONFIG);
	assert_double_near(cfg.ingest.max_reject_rate, 0.25, 0);
	assert_int_equal(config_apply_override(&cfg, "ingest.max_reject_rate=x", &err), LTV_ECONFIG);
	assert_double_near(cfg.ingest.max_reject_rate, 0.25, 0);
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=21", &err), 0);
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=x", &err), LTV_ECONFIG);
	assert_int_equal(cfg.features.validation_days, 21);
	assert_int_equal(config_apply_override(&cfg, "features.validation_days=3651", &err),
			 LTV_ECONFIG);
	assert_int_equal(cfg.features.validation_days, 21);
	config_release(&cfg);
}

static void expect_invalid(const char *set1, const char *set2, const char *key_in_msg)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, set1, &err), 0);
	if (set2)
		assert_int_equal(config_apply_override(&cfg, set2, &err), 0);
	assert_int_equal(config_validate(&cfg, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, key_in_msg));
	config_release(&cfg);
}

/* Like expect_invalid, with the whole message config_validate must give. */
static void expect_invalid_msg(const char *set1, const char *set2, const char *msg)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, set1, &err), 0);
	if (set2)
		assert_int_equal(config_apply_override(&cfg, set2, &err), 0);
	assert_int_equal(config_validate(&cfg, &err), LTV_ECONFIG);
	assert_int_equal(err.code, LTV_ECONFIG);
	assert_string_equal(err.msg, msg);
	config_release(&cfg);
}

/* Sets the overrides (NULL ends them) over the defaults and expects config_validate to pass. */
static void expect_valid(const char *set1, const char *set2)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, set1, &err), 0);
	if (set2)
		assert_int_equal(config_apply_override(&cfg, set2, &err), 0);
	if (config_validate(&cfg, &err) != 0)
		fail_msg("%s %s: %s", set1, set2 ? set2 : "", err.msg);
	config_release(&cfg);
}

/* A model feature list naming a label or revenue to date is refused before any run. */
static void test_leaky_features_refused(void **state)
{
	static const char *const leaky[] = {
		"hurdle.features=rev_window,ltv_30", "multiplier.features=rev_to_date",
		"lookalike.features=cost,split", "hurdle.features=age_days",
	};
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(leaky) / sizeof(leaky[0]); i++) {
		config_init_defaults(&cfg);
		assert_int_equal(config_apply_override(&cfg, leaky[i], &err), 0);
		assert_int_equal(config_validate(&cfg, &err), LTV_ECONFIG);
		assert_non_null(strstr(err.msg, "would leak the outcome"));
		config_release(&cfg);
	}
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "hurdle.features=rev_window,cost", &err), 0);
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_release(&cfg);
}

static void test_validate(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	expect_invalid("features.target_horizon=60", NULL, "features.target_horizon");
	expect_invalid("features.horizons=30,7,90", NULL, "features.horizons");
	expect_invalid("features.horizons=7,7,30", NULL, "features.horizons");
	expect_invalid("ingest.mode=upsert", NULL, "ingest.mode");
	expect_invalid("run.log_level=loud", NULL, "run.log_level");
	expect_invalid("features.horizons=", NULL, "features.horizons");

	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "ingest.mode=replace", &err), 0);
	assert_int_equal(config_validate(&cfg, &err), 0);
	config_release(&cfg);
}

/* features.snapshots: increasing, first < first horizon; any last age. Errors name where the value came from (--set). */
static void test_validate_snapshots(void **state)
{
	(void)state;
	/* not increasing, or a repeat */
	expect_invalid_msg("features.snapshots=1,7,3", NULL,
			   "--set features.snapshots: list ages in increasing order without repeats");
	expect_invalid_msg("features.snapshots=1,3,3,7", NULL,
			   "--set features.snapshots: list ages in increasing order without repeats");
	expect_invalid_msg("features.snapshots=30,14", NULL,
			   "--set features.snapshots: list ages in increasing order without repeats");
	/* empty */
	expect_invalid_msg("features.snapshots=", NULL,
			   "--set features.snapshots: list 1 to 32 ages in days");
	/* the first at or past the first horizon (default horizons 7, 30, 90) */
	expect_invalid_msg("features.snapshots=7,14", NULL,
			   "--set features.snapshots: the first age (7 days) must be shorter than "
			   "the first horizon (7 days)");
	expect_invalid_msg("features.snapshots=10", NULL,
			   "--set features.snapshots: the first age (10 days) must be shorter than "
			   "the first horizon (7 days)");
	expect_invalid_msg("features.horizons=5,30", "features.snapshots=5,10",
			   "--set features.snapshots: the first age (5 days) must be shorter than "
			   "the first horizon (5 days)");
	/* ages at or past the longest horizon are allowed (and unused) */
	expect_valid("features.snapshots=1,90", NULL);
	expect_valid("features.snapshots=1,3,7,14,30,60,120", NULL);
	expect_valid("features.horizons=5,30", NULL);
	expect_valid("features.horizons=7,30", "features.target_horizon=30");

	/* the boundary: one day less than the first horizon is fine */
	expect_valid("features.snapshots=6", NULL);
	expect_valid("features.snapshots=6,89", NULL);
	expect_valid("features.snapshots=1,89", NULL);
	expect_valid("features.horizons=5,30", "features.snapshots=4,29");
	expect_valid("features.horizons=5,30", "features.snapshots=1,2,3,4,29");
	expect_valid("features.snapshots=1,3,7,14,30,60", NULL);
}

static void test_section_canonical(void **state)
{
	struct config a, b;
	struct ltv_err err = { 0 };
	char *ca, *ca2, *cb, *ing;
	char *path = NULL;

	(void)state;
	config_init_defaults(&a);
	ca = config_section_canonical(&a, "features");
	assert_string_equal(ca, "features.snapshots=[1, 3, 7, 14, 30, 60]\n"
				"features.horizons=[7, 30, 90]\n"
				"features.target_horizon=30\n"
				"features.validation_days=28\n"
				"features.encoding_smoothing=20\n");
	ca2 = config_section_canonical(&a, "features");
	assert_string_equal(ca, ca2);
	/* other sections never leak in */
	assert_null(strstr(ca, "ingest."));
	assert_null(strstr(ca, "registry."));
	ing = config_section_canonical(&a, "ingest");
	assert_string_equal(ing, "ingest.mode=append\n"
				 "ingest.max_reject_rate=0.01\n"
				 "ingest.rejects_dir=logs\n"
				 "ingest.timezone=\n"
				 "ingest.negative_revenue=reject\n");
	assert_null(strstr(ing, "features."));

	/* same values written differently in YAML: same text */
	assert_int_equal(load_text(&b,
				   "features: {snapshots: [1,3, 7,14,30, 60], horizons: [7,30, 90],\n"
				   "           target_horizon: 30, validation_days: 28}\n"
				   "registry: {path: elsewhere.sqlite}\n",
				   &path, &err),
			 0);
	cb = config_section_canonical(&b, "features");
	assert_string_equal(ca, cb);
	free(cb);

	/* one value changed: different text */
	assert_int_equal(config_apply_override(&b, "features.validation_days=21", &err), 0);
	cb = config_section_canonical(&b, "features");
	assert_string_not_equal(ca, cb);
	assert_non_null(strstr(cb, "features.validation_days=21\n"));
	free(cb);
	/* a list key changed: printed like features.horizons */
	assert_int_equal(config_apply_override(&b, "features.snapshots=2, 5,13", &err), 0);
	cb = config_section_canonical(&b, "features");
	assert_non_null(strstr(cb, "features.snapshots=[2, 5, 13]\n"));
	assert_null(strstr(cb, "features.snapshots=[1, 3, 7, 14, 30, 60]\n"));
	free(cb);
	/* a double prints with %.17g */
	assert_int_equal(config_apply_override(&b, "features.encoding_smoothing=0.1", &err), 0);
	cb = config_section_canonical(&b, "features");
	assert_non_null(strstr(cb, "features.encoding_smoothing=0.10000000000000001\n"));
	free(cb);

	/* a prefix of a section name is not that section */
	cb = config_section_canonical(&a, "feature");
	assert_string_equal(cb, "");
	free(cb);

	free(ca);
	free(ca2);
	free(ing);
	free(path);
	config_release(&a);
	config_release(&b);
}

/* Loads text and expects LTV_ECONFIG from loading or validating, with needle in the message. */
static void expect_yaml_error(const char *text, const char *needle)
{
	struct config cfg;
	struct ltv_err err = { 0 };
	int ret = load_text(&cfg, text, NULL, &err);

	if (ret == 0)
		ret = config_validate(&cfg, &err);
	if (ret != LTV_ECONFIG || !strstr(err.msg, needle))
		fail_msg("YAML\n%s\nexpected LTV_ECONFIG with '%s', got %d: %s", text, needle, ret, err.msg);
	config_release(&cfg);
}

/*
 * What YAML allows but a config must not: a duplicate key (last would win
 * silently), a second document (ignored silently), a number key given an
 * explicit string (!!str 16). Each names file:line:column.
 */
static void test_yaml_strict(void **state)
{
	(void)state;
	expect_yaml_error("features:\n  validation_days: 20\n  validation_days: 30\n",
			  "c.yaml:3:3: duplicate key 'features.validation_days' (first at line 2)");
	expect_yaml_error("features:\n  validation_days: 20\nrun:\n  jobs: 1\nfeatures:\n  validation_days: 30\n",
			  "c.yaml:5:1: duplicate key 'features' (first at line 1)");
	expect_yaml_error("features:\n  validation_days: 20\n---\nfeatures:\n  validation_days: 30\n",
			  "c.yaml:3:1: a second YAML document");
	expect_yaml_error("features:\n  validation_days: !!str 20\n",
			  "c.yaml:2:20: features.validation_days: expected an integer, got the string '20' (tagged !!str)");
	expect_yaml_error("ingest:\n  max_reject_rate: !!str 0.5\n",
			  "c.yaml:2:20: ingest.max_reject_rate: expected a number, got the string '0.5'");
	expect_yaml_error("features:\n  horizons: [7, !!str 30, 90]\n",
			  "c.yaml:2:17: features.horizons: expected an integer, got the string '30'");
}

/* Cross-field and enum errors point at the value that is wrong, in the file or on --set. */
static void test_validate_located(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	expect_yaml_error("features:\n  target_horizon: 60\n",
			  "c.yaml:2:19: features.target_horizon: 60 is not one of features.horizons");
	expect_yaml_error("features:\n  horizons: [30, 7, 90]\n",
			  "c.yaml:2:13: features.horizons: list horizons in increasing order");
	expect_yaml_error("ingest:\n  mode: upsert\n",
			  "c.yaml:2:9: ingest.mode: 'upsert' is not 'append' or 'replace'");
	expect_yaml_error("run:\n  log_level: loud\n",
			  "c.yaml:2:14: run.log_level: 'loud' is not one of");
	expect_yaml_error("features:\n  snapshots: [7, 14]\n",
			  "c.yaml:2:14: features.snapshots: the first age (7 days) must be shorter than the first horizon");
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "features.target_horizon=60", &err), 0);
	assert_int_equal(config_validate(&cfg, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "--set features.target_horizon: 60 is not one of"));
	config_release(&cfg);
}

/* A list with an empty item is a typo, not a shorter list. */
static void test_set_empty_list_item(void **state)
{
	static const char *const bad[] = { "features.horizons=7,,30", "features.horizons=7,30,",
					   "features.horizons=,7", "hurdle.features=cost, ,rev_d0" };
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_init_defaults(&cfg);
		if (config_apply_override(&cfg, bad[i], &err) != LTV_ECONFIG || !strstr(err.msg, "empty item"))
			fail_msg("--set %s: expected an empty item error, got: %s", bad[i], err.msg);
		config_release(&cfg);
	}
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "features.horizons=7,,30", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "--set features.horizons: empty item 2 in '7,,30'"));
	/* the list is unchanged, and an empty value is still the empty list */
	assert_int_equal(cfg.features.horizons.n, 3);
	assert_int_equal(cfg.features.horizons.v[1], 30);
	assert_int_equal(config_apply_override(&cfg, "columns.attributes=", &err), 0);
	assert_int_equal(cfg.columns.attributes.n, 0);
	config_release(&cfg);
}

/* --set takes the YAML flow syntax too, and feature names are checked when the config loads. */
static void test_set_list_syntax_and_features(void **state)
{
	struct config cfg;
	struct ltv_err err = { 0 };

	(void)state;
	config_init_defaults(&cfg);
	assert_int_equal(config_apply_override(&cfg, "features.horizons=[14, 60 ]", &err), 0);
	assert_int_equal(cfg.features.horizons.n, 2);
	assert_int_equal(cfg.features.horizons.v[0], 14);
	assert_int_equal(cfg.features.horizons.v[1], 60);
	assert_int_equal(config_apply_override(&cfg, "hurdle.features=[cost,rev_d0]", &err), 0);
	assert_int_equal(cfg.hurdle.features.n, 2);
	assert_string_equal(cfg.hurdle.features.v[1], "rev_d0");
	assert_int_equal(config_apply_override(&cfg, "columns.attributes=[]", &err), 0);
	assert_int_equal(cfg.columns.attributes.n, 0);
	assert_int_equal(config_apply_override(&cfg, "features.horizons=[7,30", &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "does not close it"));
	assert_int_equal(config_apply_override(&cfg, "features.horizons=7,[30]", &err), LTV_ECONFIG);
	assert_int_equal(cfg.features.horizons.n, 2); /* unchanged by the refused values */
	assert_int_equal(config_apply_override(&cfg, "features.target_horizon=14", &err), 0);
	assert_int_equal(config_apply_override(&cfg, "features.snapshots=[1, 7]", &err), 0);
	assert_int_equal(config_validate(&cfg, &err), 0);
	assert_int_equal(config_apply_override(&cfg, "lookalike.features=[cost, rev_windw]", &err), 0);
	assert_int_equal(config_validate(&cfg, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "--set lookalike.features: 'rev_windw' is not a feature"));
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_yaml_equals_defaults),
		cmocka_unit_test(test_load_overrides),
		cmocka_unit_test(test_list_as_block_sequence),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type_and_range),
		cmocka_unit_test(test_yaml_syntax_and_missing_file),
		cmocka_unit_test(test_apply_override),
		cmocka_unit_test(test_failed_set_keeps_value),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_validate_snapshots),
		cmocka_unit_test(test_leaky_features_refused),
		cmocka_unit_test(test_section_canonical),
		cmocka_unit_test(test_yaml_strict),
		cmocka_unit_test(test_validate_located),
		cmocka_unit_test(test_set_empty_list_item),
		cmocka_unit_test(test_set_list_syntax_and_features),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
