/*
 * Unit tests for the scratch registry of `score --users/--events` and
 * `evaluate` (pipeline/scratch_registry.c): it lives in a directory of its
 * own under $TMPDIR named after the process, removing one a dead process left;
 * its config is the caller's with the registry moved there and
 * ingest.mode=replace; ingest fills it and leaves the user's registry
 * untouched; release removes the directory.
 */
#include "testutil.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/scratch_registry.h"

#include "fixture.h"

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* A pid no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void test_scratch_registry_lifecycle(void **state)
{
	struct test_pipeline *p = test_pipeline_new(300, 7, "1");
	char *tmp = test_scratch_dir();
	char *stale, *prefix, *old_tmp = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
	struct scratch_registry sr;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t as_of = INT64_MIN;

	(void)state;
	log_level_current = LOG_ERROR;
	assert_non_null(p);
	assert_non_null(tmp);
	setenv("TMPDIR", tmp, 1);
	stale = xasprintf("%s/ltvsr-%ld-abcdef", tmp, (long)dead_pid());
	assert_int_equal(mkdir(stale, 0700), 0);

	assert_int_equal(scratch_registry_init(&sr, "ltvsr", &p->cfg, &err), 0);
	prefix = xasprintf("%s/ltvsr-%ld-", tmp, (long)getpid());
	assert_int_equal(strncmp(sr.dir, prefix, strlen(prefix)), 0);
	assert_true(exists(sr.dir));
	assert_false(exists(stale));
	{
		char *want = xasprintf("%s/registry.sqlite", sr.dir);

		assert_string_equal(sr.path, want);
		free(want);
	}
	assert_string_equal(sr.cfg.registry.path, sr.path);
	assert_string_equal(sr.cfg.ingest.mode, "replace");
	/* The caller's config is a different one, and stays as it was. */
	assert_string_not_equal(p->cfg.registry.path, sr.path);

	assert_int_equal(scratch_registry_ingest(&sr, "test_scratch_registry", &err), 0);
	assert_int_equal(registry_open_readonly(sr.path, &reg, &err), 0);
	assert_int_equal(registry_default_as_of(reg, &as_of, &err), 0);
	assert_true(as_of > 0);
	registry_close(reg);
	assert_false(exists(p->cfg.registry.path));

	{
		char *dir = xstrdup(sr.dir);

		scratch_registry_release(&sr);
		assert_false(exists(dir));
		assert_string_equal(sr.dir, "");
		scratch_registry_release(&sr); /* a second release does nothing */
		free(dir);
	}
	if (old_tmp)
		setenv("TMPDIR", old_tmp, 1);
	else
		unsetenv("TMPDIR");
	free(old_tmp);
	free(stale);
	free(prefix);
	test_scratch_free(tmp);
	test_pipeline_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scratch_registry_lifecycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
