/*
 * Unit tests for the runner (pipeline/runner.c) on a small generated sample
 * in a scratch directory: the stage table, skipping by fingerprint, rerunning
 * exactly the stage whose config changed, reusing an earlier version, --force,
 * --dry-run, stage selection, status, and a stage that fails (or is made to
 * fail by LTVPIPE_FAULT) after writing its output: the registry must keep its
 * previous versions.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/config.h"
#include "ltv/feature_params.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

#include "fixture.h"

/* A scratch dir with a 1500-user sample in data/ and a config pointing at it. */

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

static int setup(void **state)
{
	struct test_pipeline *fx = test_pipeline_new(1500, 7, "1");

	test_set(&fx->cfg, "registry.busy_timeout_s=%s", "5");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	test_pipeline_free(*state);
	return 0;
}

/* Runs the pipeline; returns the status and, in *out_text, what it printed (caller frees). */
static int run(struct test_pipeline *fx, int force, int dry_run, const char *only, int64_t as_of,
	       char **out_text, struct ltv_err *err)
{
	struct run_options opts = { .only = only, .force = force, .dry_run = dry_run,
				    .as_of = as_of, .command = "test" };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int ret;

	assert_non_null(out);
	err_clear(err);
	ret = runner_run(&fx->cfg, &opts, out, err);
	fclose(out);
	if (out_text)
		*out_text = text;
	else
		free(text);
	return ret;
}

static void run_ok(struct test_pipeline *fx, int force, char **out_text)
{
	struct ltv_err err = { 0 };

	if (run(fx, force, 0, NULL, INT64_MIN, out_text, &err) != 0)
		fail_msg("run failed: %s", err.msg);
}

/* Current artefact of a stage, opened read-only so the runner's own connection is unaffected. */
static void current_of(struct test_pipeline *fx, const char *name, struct artefact_info *out)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };

	assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
	if (registry_artefact_current(reg, name, out, &err) != 0)
		fail_msg("current %s: %s", name, err.msg);
	registry_close(reg);
}

static int64_t count_of(struct test_pipeline *fx, const char *name)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t n = -1;

	if (registry_open_readonly(fx->cfg.registry.path, &reg, &err) == LTV_ENOTFOUND)
		return 0;
	assert_int_equal(registry_artefact_count(reg, name, &n, &err), 0);
	registry_close(reg);
	return n;
}

static void assert_integrity(struct test_pipeline *fx)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };

	assert_int_equal(registry_open(fx->cfg.registry.path, 5, &reg, &err), 0);
	if (registry_integrity_check(reg, &err) != 0)
		fail_msg("integrity: %s", err.msg);
	registry_close(reg);
}

static size_t files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("expected '%s' in:\n%s", needle, text);
}

static void test_stage_table(void **state)
{
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(stage_table_check(&err), 0);
	assert_true(stage_count >= 2);
	assert_int_equal(stage_find("ingest"), 0);
	assert_int_equal(stage_find("features"), 1);
	assert_int_equal(stage_find("nosuch"), -1);
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage *s = &stage_table[i];

		assert_non_null(s->run);
		assert_non_null(s->summary);
		assert_true(strlen(s->code_version) > 0);
		assert_int_equal(stage_find(s->name), (int)i);
		for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++) {
			int idx = stage_find(s->inputs[k]);

			assert_true(idx >= 0 && (size_t)idx < i);
		}
	}
	/* features reads ingest and is fingerprinted by as_of */
	assert_string_equal(stage_table[1].inputs[0], "ingest");
	assert_true(stage_table[1].flags & STAGE_USES_AS_OF);
	assert_true(stage_table[0].flags & STAGE_READS_INPUT_FILES);
}

static void assert_params_equal(const struct feature_params *a, const struct feature_params *b)
{
	assert_true(a->as_of == b->as_of);
	assert_int_equal(a->snapshots.n, b->snapshots.n);
	assert_int_equal(a->horizons.n, b->horizons.n);
	for (size_t i = 0; i < a->snapshots.n; i++)
		assert_true(a->snapshots.v[i] == b->snapshots.v[i]);
	for (size_t i = 0; i < a->horizons.n; i++)
		assert_true(a->horizons.v[i] == b->horizons.v[i]);
	assert_true(a->target_horizon == b->target_horizon);
	assert_true(a->validation_days == b->validation_days);
}

/*
 * Every parameter the features artefact carries (its params blob) must be
 * part of the text the features stage is fingerprinted by, or changing it
 * would not rerun features and what reads it. Checked as a property: with
 * every numeric key of every section moved off its default, the parameters
 * rebuilt from the fingerprinted text alone (defaults + that text, as a
 * registry without the blob is read) equal the ones built from the whole
 * config. A parameter taken from another section, or not in the text, fails.
 */
static void test_feature_params_are_fingerprinted(void **state)
{
	const struct stage *s = &stage_table[stage_find("features")];
	const int64_t as_of = 1735689600; /* 2025-01-01 */
	struct config cfg, rebuilt, dflt;
	struct feature_params full, from_text, defaults;
	struct ltv_err err = { 0 };
	char *dump, *save = NULL, *text, *dflt_text;
	size_t moved = 0;

	(void)state;
	config_init_defaults(&cfg);
	config_init_defaults(&dflt);
	dump = config_dump(&cfg);
	for (char *line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strstr(line, ": "), *end, assignment[512];
		double v;

		if (!colon)
			continue;
		*colon = '\0';
		v = strtod(colon + 2, &end);
		if (end == colon + 2 || *end)
			continue; /* lists and strings: the features lists are set below */
		snprintf(assignment, sizeof(assignment), "%s=%.17g", line, v + 1);
		moved += config_apply_override(&cfg, assignment, &err) == 0;
	}
	free(dump);
	assert_true(moved > 20);
	test_set(&cfg, "features.snapshots=%s", "2,5,9");
	test_set(&cfg, "features.horizons=%s", "10,20,40");
	test_set(&cfg, "features.target_horizon=%s", "20");
	test_set(&cfg, "features.validation_days=%s", "17");

	text = runner_stage_config_text(s, &cfg, as_of, NULL, NULL);
	dflt_text = runner_stage_config_text(s, &dflt, as_of, NULL, NULL);
	assert_string_not_equal(text, dflt_text);
	config_init_defaults(&rebuilt);
	if (config_apply_canonical(&rebuilt, text, &err) != 0)
		fail_msg("fingerprinted text does not apply: %s\n%s", err.msg, text);
	feature_params_from_config(&cfg, as_of, &full);
	feature_params_from_config(&rebuilt, as_of, &from_text);
	feature_params_from_config(&dflt, as_of, &defaults);
	assert_params_equal(&full, &from_text);
	/* and the values moved, so the comparison above could fail */
	assert_int_equal(full.validation_days, 17);
	assert_int_equal(full.target_horizon, 20);
	assert_true(full.snapshots.n == 3 && full.snapshots.v[2] == 9);
	assert_true(full.horizons.n == 3 && full.horizons.v[0] == 10);
	assert_true(defaults.validation_days != 17 && defaults.target_horizon != 20);

	/* each parameter alone changes the text, hence the fingerprint */
	static const char *const one[] = { "features.validation_days=21", "features.snapshots=1,3",
					   "features.horizons=7,30,60", "features.target_horizon=7" };
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		struct config c;
		char *t;

		config_init_defaults(&c);
		assert_int_equal(config_apply_override(&c, one[i], &err), 0);
		t = runner_stage_config_text(s, &c, as_of, NULL, NULL);
		if (strcmp(t, dflt_text) == 0)
			fail_msg("'%s' leaves the features fingerprint text unchanged", one[i]);
		free(t);
		config_release(&c);
	}
	/* as_of is in it too (the stage reads by time) */
	free(text);
	text = runner_stage_config_text(s, &dflt, as_of + SECONDS_PER_DAY, NULL, NULL);
	assert_string_not_equal(text, dflt_text);

	feature_params_release(&full);
	feature_params_release(&from_text);
	feature_params_release(&defaults);
	free(text);
	free(dflt_text);
	config_release(&cfg);
	config_release(&rebuilt);
	config_release(&dflt);
}

static void test_rerun_is_noop(void **state)
{
	struct test_pipeline *fx = *state;
	struct artefact_info ing1, feat1, ing2, feat2;
	char *text = NULL;
	char *max_event = NULL;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t max_ts;

	run_ok(fx, 0, &text);
	assert_contains(text, "ingest: done (v1)");
	assert_contains(text, "features: done (v1)");
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 1);
	assert_int_equal(count_of(fx, "features"), 1);
	current_of(fx, "ingest", &ing1);
	current_of(fx, "features", &feat1);
	assert_int_equal(ing1.version, 1);
	assert_int_equal(feat1.version, 1);
	assert_int_equal(strlen(feat1.content_hash), HASH_HEX_LEN - 1);

	/* default as_of is the latest event ingested */
	assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_meta_get(reg, "max_event_time", &max_event, &err), 0);
	assert_int_equal(parse_int64(max_event, &max_ts), 0);
	assert_true(feat1.as_of == max_ts);
	assert_true(ing1.as_of == INT64_MIN);
	free(max_event);
	{
		int64_t *lin = NULL;
		size_t n = 0;

		assert_int_equal(registry_lineage(reg, feat1.id, &lin, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(lin[0], ing1.id);
		free(lin);
	}
	registry_close(reg);

	run_ok(fx, 0, &text);
	assert_contains(text, "ingest: up to date (v1)");
	assert_contains(text, "features: up to date (v1)");
	assert_null(strstr(text, "done"));
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 1);
	assert_int_equal(count_of(fx, "features"), 1);
	current_of(fx, "ingest", &ing2);
	current_of(fx, "features", &feat2);
	assert_int_equal(ing2.id, ing1.id);
	assert_int_equal(feat2.id, feat1.id);
	assert_string_equal(feat2.fingerprint, feat1.fingerprint);
	artefact_info_release(&ing1);
	artefact_info_release(&feat1);
	artefact_info_release(&ing2);
	artefact_info_release(&feat2);
	assert_integrity(fx);
}

static void test_config_change_reruns_only_its_stage(void **state)
{
	struct test_pipeline *fx = *state;
	struct artefact_info ing1, feat1, feat2, cur;
	struct ltv_err err = { 0 };
	char *text = NULL, *status = NULL;
	size_t len = 0;
	FILE *out;

	run_ok(fx, 0, NULL);
	current_of(fx, "ingest", &ing1);
	current_of(fx, "features", &feat1);

	test_set(&fx->cfg, "features.validation_days=%s", "21");
	/* dry run first: says why, writes nothing */
	assert_int_equal(run(fx, 0, 1, NULL, INT64_MIN, &text, &err), 0);
	assert_contains(text, "ingest: up to date (v1)");
	assert_contains(text, "features: would run (features.validation_days changed: 28 → 21)");
	free(text);
	assert_int_equal(count_of(fx, "features"), 1);
	/* status says the same, read-only */
	out = open_memstream(&status, &len);
	assert_int_equal(status_of(&fx->cfg, out, &err), 0);
	fclose(out);
	assert_contains(status, "stale (features.validation_days changed: 28 → 21)");
	assert_contains(status, "fresh");
	free(status);

	run_ok(fx, 0, &text);
	assert_contains(text, "ingest: up to date (v1)");
	assert_contains(text, "features: done (v2)");
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 1);
	assert_int_equal(count_of(fx, "features"), 2);
	current_of(fx, "features", &feat2);
	assert_int_equal(feat2.version, 2);
	assert_string_not_equal(feat2.fingerprint, feat1.fingerprint);
	assert_string_not_equal(feat2.content_hash, feat1.content_hash);
	assert_non_null(strstr(feat2.config, "features.validation_days=21\n"));
	current_of(fx, "ingest", &cur);
	assert_int_equal(cur.id, ing1.id);
	artefact_info_release(&cur);

	/* back to 28: the v1 built from exactly these inputs becomes current again */
	test_set(&fx->cfg, "features.validation_days=%s", "28");
	run_ok(fx, 0, &text);
	assert_contains(text, "features: up to date (v1, an earlier version with the same inputs)");
	free(text);
	assert_int_equal(count_of(fx, "features"), 2);
	current_of(fx, "features", &cur);
	assert_int_equal(cur.id, feat1.id);
	assert_int_equal(cur.version, 1);
	artefact_info_release(&cur);
	/* and a plain rerun now says v1 is up to date */
	run_ok(fx, 0, &text);
	assert_contains(text, "features: up to date (v1)\n");
	free(text);

	/* --force makes new versions of both, with the same content */
	run_ok(fx, 1, &text);
	assert_contains(text, "ingest: done (v2)");
	assert_contains(text, "features: done (v3)");
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 2);
	assert_int_equal(count_of(fx, "features"), 3);
	current_of(fx, "features", &cur);
	assert_int_equal(cur.version, 3);
	assert_string_equal(cur.content_hash, feat1.content_hash);
	assert_string_equal(cur.fingerprint, feat1.fingerprint);
	artefact_info_release(&cur);
	current_of(fx, "ingest", &cur);
	assert_string_equal(cur.content_hash, ing1.content_hash);
	artefact_info_release(&cur);

	artefact_info_release(&ing1);
	artefact_info_release(&feat1);
	artefact_info_release(&feat2);
	assert_integrity(fx);
}

static void test_as_of_change_reruns_features(void **state)
{
	struct test_pipeline *fx = *state;
	struct artefact_info feat1, cur;
	struct ltv_err err = { 0 };
	int64_t as_of;
	char *text = NULL;

	run_ok(fx, 0, NULL);
	current_of(fx, "features", &feat1);
	as_of = feat1.as_of - 10 * SECONDS_PER_DAY;
	assert_int_equal(run(fx, 0, 0, NULL, as_of, &text, &err), 0);
	assert_contains(text, "ingest: up to date (v1)");
	assert_contains(text, "features: done (v2)");
	free(text);
	current_of(fx, "features", &cur);
	assert_true(cur.as_of == as_of);
	assert_string_not_equal(cur.content_hash, feat1.content_hash);
	artefact_info_release(&cur);
	/* the same as_of again: nothing to do */
	assert_int_equal(run(fx, 0, 0, NULL, as_of, &text, &err), 0);
	assert_contains(text, "features: up to date (v2)");
	free(text);
	assert_int_equal(count_of(fx, "features"), 2);
	artefact_info_release(&feat1);
}

static void test_new_input_file_reruns_both(void **state)
{
	struct test_pipeline *fx = *state;
	struct artefact_info ing1, feat1, cur;
	char *text = NULL, *extra;

	test_set(&fx->cfg, "input.events=%s/events*.csv", fx->data);
	run_ok(fx, 0, NULL);
	current_of(fx, "ingest", &ing1);
	current_of(fx, "features", &feat1);
	/* one more purchase by the first user, long after install: changes labels, not inputs of ingest's old files */
	extra = test_write_file(fx->data, "events_more.csv",
				"user_id,event_time,revenue,event\n"
				"u00000001,2025-03-01T00:00:00Z,5.00,purchase\n");
	assert_non_null(extra);
	run_ok(fx, 0, &text);
	assert_contains(text, "ingest: done (v2)");
	assert_contains(text, "features: done (v2)");
	free(text);
	current_of(fx, "ingest", &cur);
	assert_string_not_equal(cur.content_hash, ing1.content_hash);
	assert_non_null(strstr(cur.metrics, "\"files_loaded\":1"));
	assert_non_null(strstr(cur.metrics, "\"files_already_ingested\":2"));
	assert_non_null(strstr(cur.metrics, "\"events_loaded\":1"));
	artefact_info_release(&cur);
	run_ok(fx, 0, &text);
	assert_contains(text, "ingest: up to date (v2)");
	assert_contains(text, "features: up to date (v2)");
	free(text);
	artefact_info_release(&ing1);
	artefact_info_release(&feat1);
	free(extra);
}

static void test_injected_fault_keeps_previous(void **state)
{
	struct test_pipeline *fx = *state;
	struct artefact_info ing1, feat1, cur;
	struct ltv_err err = { 0 };
	char *text = NULL;

	run_ok(fx, 0, NULL);
	current_of(fx, "ingest", &ing1);
	current_of(fx, "features", &feat1);

	setenv("LTVPIPE_FAULT", "features:fail", 1);
	assert_int_equal(run(fx, 1, 0, NULL, INT64_MIN, &text, &err), LTV_EINTERNAL);
	unsetenv("LTVPIPE_FAULT");
	assert_contains(err.msg, "stage features failed");
	assert_contains(err.msg, "injected fault");
	assert_contains(text, "ingest: done (v2)"); /* ingest committed before features failed */
	assert_null(strstr(text, "features: done"));
	free(text);
	assert_int_equal(count_of(fx, "features"), 1);
	assert_int_equal(count_of(fx, "ingest"), 2);
	current_of(fx, "features", &cur);
	assert_int_equal(cur.id, feat1.id);
	assert_int_equal(cur.version, 1);
	artefact_info_release(&cur);
	assert_integrity(fx);
	/* the failed run's output is gone, and nothing needs redoing: same fingerprint */
	run_ok(fx, 0, &text);
	assert_contains(text, "features: up to date (v1)");
	free(text);

	/* ingest failing: neither its artefact nor its data changes */
	setenv("LTVPIPE_FAULT", "ingest:fail", 1);
	assert_int_equal(run(fx, 1, 0, NULL, INT64_MIN, NULL, &err), LTV_EINTERNAL);
	unsetenv("LTVPIPE_FAULT");
	assert_contains(err.msg, "stage ingest failed");
	assert_int_equal(count_of(fx, "ingest"), 2);
	assert_int_equal(count_of(fx, "features"), 1);
	current_of(fx, "ingest", &cur);
	assert_int_equal(cur.version, 2);
	assert_string_equal(cur.content_hash, ing1.content_hash);
	artefact_info_release(&cur);
	/* a fault for another stage name that merely shares a prefix does nothing */
	setenv("LTVPIPE_FAULT", "feature:fail", 1);
	assert_int_equal(run(fx, 0, 0, NULL, INT64_MIN, NULL, &err), 0);
	unsetenv("LTVPIPE_FAULT");
	assert_integrity(fx);
	artefact_info_release(&ing1);
	artefact_info_release(&feat1);
}

/* A bad input row over the reject limit fails ingest and leaves the registry as it was. */
static void test_ingest_failure_rolls_back_data(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };
	struct registry *reg = NULL;
	struct user_table users;
	char *bad;
	size_t n_users;

	test_set(&fx->cfg, "input.events=%s/events*.csv", fx->data);
	run_ok(fx, 0, NULL);
	assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_users_load(reg, &users, &err), 0);
	n_users = users.n;
	user_table_release(&users);
	registry_close(reg);
	assert_int_equal(n_users, 1500);

	bad = test_write_file(fx->data, "events_bad.csv",
			      "user_id,event_time,revenue,event\n"
			      "u00000001,2025-03-01T00:00:00Z,1.00,purchase\n"
			      "nobody,2025-03-01T00:00:00Z,1.00,purchase\n");
	assert_non_null(bad);
	test_set(&fx->cfg, "ingest.max_reject_rate=%s", "0");
	assert_int_equal(run(fx, 0, 0, NULL, INT64_MIN, NULL, &err), LTV_EINVAL);
	assert_contains(err.msg, "stage ingest failed");
	assert_contains(err.msg, "events_bad.csv:3");
	assert_int_equal(count_of(fx, "ingest"), 1);
	assert_int_equal(count_of(fx, "features"), 1);
	assert_integrity(fx);
	/* with a tolerant limit it loads the good row */
	test_set(&fx->cfg, "ingest.max_reject_rate=%s", "0.5");
	run_ok(fx, 0, NULL);
	assert_int_equal(count_of(fx, "ingest"), 2);
	free(bad);
}

/*
 * A registry whose user_day_blocks hold a day of uid 1501, past its 1,500
 * users (damaged, or written by hand): features fails naming the registry,
 * the table and the uid, and keeps its previous version. It built a frame
 * without that day before, with nothing said.
 */
static void test_day_of_no_user_fails_features(void **state)
{
	struct test_pipeline *fx = *state;
	const struct user_day_row stray[] = { { 1501, 0, 2.5, 1, 1 } };
	struct artefact_info feat1, cur;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char *want;

	run_ok(fx, 0, NULL);
	current_of(fx, "features", &feat1);
	assert_int_equal(registry_open(fx->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_user_days_add(reg, stray, 1, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	registry_close(reg);
	assert_int_equal(run(fx, 1, 0, "features", INT64_MIN, NULL, &err), LTV_EREGISTRY);
	want = xasprintf("stage features failed: registry '%s': table user_day_blocks holds a "
			 "user-day of uid 1501 (day 0) but table users has 1500 users, uids 1 to "
			 "1500; the registry is inconsistent: ingest again (ltvpipe run --only "
			 "ingest --force", fx->cfg.registry.path);
	assert_contains(err.msg, want);
	free(want);
	assert_int_equal(count_of(fx, "features"), 1);
	current_of(fx, "features", &cur);
	assert_int_equal(cur.id, feat1.id);
	artefact_info_release(&cur);
	artefact_info_release(&feat1);
	assert_integrity(fx);
}

static void test_dry_run_writes_nothing(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };
	char *text = NULL;
	size_t logs;

	assert_int_equal(run(fx, 0, 1, NULL, INT64_MIN, &text, &err), 0);
	assert_contains(text, "ingest: would run (");
	assert_contains(text, "features: would run (");
	assert_null(strstr(text, "done"));
	free(text);
	/* not even the registry file is created */
	assert_int_not_equal(access(fx->cfg.registry.path, F_OK), 0);
	assert_int_equal(count_of(fx, "ingest"), 0);
	assert_int_equal(files_in(fx->cfg.run.log_dir), 0); /* no run log, no rejects file */

	run_ok(fx, 0, NULL);
	logs = files_in(fx->cfg.run.log_dir);
	assert_true(logs >= 1);
	assert_int_equal(run(fx, 1, 1, NULL, INT64_MIN, &text, &err), 0);
	assert_contains(text, "ingest: would run (--force)");
	assert_contains(text, "features: would run (an input would be rebuilt)");
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 1);
	assert_int_equal(count_of(fx, "features"), 1);
	assert_int_equal(files_in(fx->cfg.run.log_dir), logs);
	/* dry run of an earlier config: reuse is reported but current does not move */
	test_set(&fx->cfg, "features.validation_days=%s", "21");
	run_ok(fx, 0, NULL);
	test_set(&fx->cfg, "features.validation_days=%s", "28");
	assert_int_equal(run(fx, 0, 1, NULL, INT64_MIN, &text, &err), 0);
	assert_contains(text, "features: up to date (v1, an earlier version");
	free(text);
	{
		struct artefact_info cur;

		current_of(fx, "features", &cur);
		assert_int_equal(cur.version, 2);
		artefact_info_release(&cur);
	}
}

/* Whether the mapping holding p carries MADV_HUGEPAGE (VmFlags "hg" in /proc/self/smaps). */
static int has_huge_hint(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, hint = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long from, to;

		if (sscanf(line, "%lx-%lx ", &from, &to) == 2) /* a mapping's first line */
			in = (uintptr_t)p >= from && (uintptr_t)p < to;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			hint = strstr(line, " hg") != NULL;
	}
	fclose(f);
	return hint;
}

/*
 * Does an 8 MB block get the hint now? A mapping of its own: malloc may hand
 * out heap that an earlier hint already marked.
 */
static int huge_hint_given(void)
{
	const size_t n = (size_t)8 << 20;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int hint;

	assert_true(p != MAP_FAILED);
	memory_want_huge_pages(p, n);
	hint = has_huge_hint(p);
	munmap(p, n);
	return hint;
}

/*
 * The huge-page hint is ingest's and features' only (STAGE_HUGE_PAGES): they
 * run alone, so their page faults are the run's wall (features 3.3 s against
 * 4.1-5.0 s without it at 1,000,000 users); the model stages' blocks are left
 * to 4 KB pages, which cost them no CPU (README).
 */
static void test_huge_pages_by_stage(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };

	for (size_t i = 0; i < stage_count; i++)
		assert_int_equal((stage_table[i].flags & STAGE_HUGE_PAGES) != 0,
				 strcmp(stage_table[i].name, "ingest") == 0 ||
					 strcmp(stage_table[i].name, "features") == 0);
	memory_use_huge_pages(1);
	if (!huge_hint_given())
		skip(); /* no transparent huge pages on this kernel: nothing to tell apart */
	memory_use_huge_pages(0);
	assert_false(huge_hint_given());
	assert_int_equal(run(fx, 0, 0, "ingest", INT64_MIN, NULL, &err), 0);
	assert_true(huge_hint_given()); /* ingest turned it on */
	assert_int_equal(run(fx, 0, 0, "features", INT64_MIN, NULL, &err), 0);
	assert_true(huge_hint_given()); /* features keeps it */
	assert_int_equal(run(fx, 0, 0, "tiers", INT64_MIN, NULL, &err), 0);
	assert_false(huge_hint_given()); /* tiers, the first model stage, turned it off */
	assert_int_equal(run(fx, 1, 0, "ingest", INT64_MIN, NULL, &err), 0);
	assert_true(huge_hint_given());
	memory_use_huge_pages(1);
}

/* How many of the 4 KB pages of the mapping [p, p + n) are resident (mincore). */
static size_t resident_pages(void *p, size_t n)
{
	const size_t pages = n / 4096;
	unsigned char *vec = calloc(pages, 1);
	size_t in = 0;

	assert_non_null(vec);
	assert_int_equal(mincore(p, n, vec), 0);
	for (size_t i = 0; i < pages; i++)
		in += vec[i] & 1;
	free(vec);
	return in;
}

/*
 * prefault_start faults a block in on a thread of its own (ingest's
 * user-day rows, while the stage thread counts), and prefault_wait does what
 * the thread has not reached beside it: every page resident once it returns,
 * a block of 2 MB chunks and a last one of a few pages and bytes too, the
 * block zeros; a block below PREFAULT_MIN is left alone, as is memory the
 * caller wrote before (no prefault then).
 */
static void test_prefault_faults_in_pages(void **state)
{
	const size_t big = PREFAULT_MIN + ((size_t)1 << 20), small = PREFAULT_MIN / 4;
	char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct prefault pf;

	(void)state;
	assert_true(p != MAP_FAILED && q != MAP_FAILED);
	assert_int_equal(resident_pages(p, big), 0);
	prefault_start(&pf, p, big);
	prefault_wait(&pf);
	assert_int_equal(resident_pages(p, big), big / 4096);
	for (size_t i = 0; i < big; i += 4096)
		assert_int_equal(p[i], 0);
	prefault_wait(&pf); /* a second wait is a no-op */
	munmap(p, big);
	p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	prefault_start(&pf, p, PREFAULT_MIN + 3 * 4096 + 100);
	prefault_wait(&pf);
	assert_int_equal(resident_pages(p, big), PREFAULT_MIN / 4096 + 4);
	prefault_start(&pf, q, small);
	prefault_wait(&pf);
	assert_int_equal(resident_pages(q, small), 0);
	munmap(p, big);
	munmap(q, small);
}

/*
 * populate faults blocks in on a thread of its own while their owner writes
 * them (score's users table as the users file is read): every page of a big
 * block resident, side by side with a second one, without a byte the owner
 * wrote before or meanwhile changed (the first byte of each page included,
 * the byte a pinned populate's atomic add writes too: a plain store there
 * fails); a block below PREFAULT_MIN is left alone, and a populate never
 * started stops as a no-op. By the madvise, or pinned (the atomic adds).
 */
static void check_populate_keeps_what_the_owner_writes(int pinned)
{
	const size_t big = PREFAULT_MIN + ((size_t)1 << 20) + 2 * 4096, small = PREFAULT_MIN / 4;
	char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *r = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	const size_t pages = big / 4096;
	struct populate pp;

	assert_true(p != MAP_FAILED && q != MAP_FAILED && r != MAP_FAILED);
	populate_init(&pp);
	populate_stop(&pp);
	p[5] = 'a';
	populate_add(&pp, p, big);
	populate_add(&pp, r, big - 100); /* its last page, though only partly the block's */
	populate_add(&pp, q, small);
	if (pinned)
		populate_start_pinned(&pp);
	else
		populate_start(&pp);
	/* the owner's writes, page by page, while the thread faults the same pages in */
	for (size_t i = 0; i < big; i += 4096) {
		p[i] = (char)(i / 4096 % 90 + 10);
		if (i % (4096 * 7) == 0)
			p[i + 1] = (char)(i / 4096 % 100 + 1);
	}
	for (int tries = 0; tries < 2000 && (resident_pages(p, big) < pages ||
					      resident_pages(r, big) < pages); tries++)
		usleep(1000);
	populate_stop(&pp);
	assert_int_equal(resident_pages(p, big), pages);
	assert_int_equal(resident_pages(r, big), pages);
	assert_int_equal(resident_pages(q, small), 0);
	assert_int_equal(p[5], 'a');
	for (size_t i = 0; i < big; i += 4096)
		assert_int_equal(p[i], (char)(i / 4096 % 90 + 10));
	for (size_t i = 0; i < big; i += 4096 * 7)
		assert_int_equal(p[i + 1], (char)(i / 4096 % 100 + 1));
	for (size_t i = 0; i < big; i += 4096)
		assert_int_equal(r[i], 0);
	munmap(p, big);
	munmap(q, small);
	munmap(r, big);
}

static void test_populate_keeps_what_the_owner_writes(void **state)
{
	(void)state;
	check_populate_keeps_what_the_owner_writes(0);
	check_populate_keeps_what_the_owner_writes(1);
}

static void test_selection(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };
	struct run_options opts = { .as_of = INT64_MIN };
	char *text = NULL;
	FILE *out = fopen("/dev/null", "w");

	assert_non_null(out);
	/* features alone before ingest ever ran */
	assert_int_equal(run(fx, 0, 0, "features", INT64_MIN, NULL, &err), LTV_EUSAGE);
	assert_contains(err.msg, "never run");
	assert_int_equal(run(fx, 0, 0, "ingest,nosuch", INT64_MIN, NULL, &err), LTV_EUSAGE);
	assert_contains(err.msg, "nosuch");
	opts.from = "features";
	opts.to = "ingest";
	assert_int_equal(runner_run(&fx->cfg, &opts, out, &err), LTV_EUSAGE);
	opts.from = "bogus";
	opts.to = NULL;
	assert_int_equal(runner_run(&fx->cfg, &opts, out, &err), LTV_EUSAGE);
	assert_contains(err.msg, "bogus");
	fclose(out);

	assert_int_equal(run(fx, 0, 0, "ingest", INT64_MIN, &text, &err), 0);
	assert_contains(text, "ingest: done (v1)");
	assert_null(strstr(text, "features"));
	free(text);
	assert_int_equal(count_of(fx, "features"), 0);
	assert_int_equal(run(fx, 1, 0, "features", INT64_MIN, &text, &err), 0);
	assert_contains(text, "features: done (v1)");
	assert_null(strstr(text, "ingest"));
	free(text);
	assert_int_equal(count_of(fx, "ingest"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_table),
		cmocka_unit_test(test_prefault_faults_in_pages),
		cmocka_unit_test(test_populate_keeps_what_the_owner_writes),
		cmocka_unit_test(test_feature_params_are_fingerprinted),
		cmocka_unit_test_setup_teardown(test_rerun_is_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_change_reruns_only_its_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_as_of_change_reruns_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_input_file_reruns_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_injected_fault_keeps_previous, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest_failure_rolls_back_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_day_of_no_user_fails_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_pages_by_stage, setup, teardown),
	};

	log_level_current = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
