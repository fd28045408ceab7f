/*
 * Shared helpers for the cmocka unit tests: scratch directories and paths to
 * the real data sets in ../shared/data (tests that need them skip when absent).
 */
#ifndef LTV_TESTUTIL_H
#define LTV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Creates a fresh scratch directory under $TMPDIR; caller frees the path. */
static inline char *test_scratch_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[4096];

	snprintf(tmpl, sizeof(tmpl), "%s/ltvtest-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl))
		return NULL;
	return strdup(tmpl);
}

/* Writes text to dir/name; returns the full path (caller frees) or NULL. */
static inline char *test_write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return strdup(path);
}

/* Path of a shared data file, e.g. test_shared_path("cdnow/users.csv"), or NULL. */
static inline const char *test_shared_path(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s",
		 getenv("LTV_SHARED_DATA") ? getenv("LTV_SHARED_DATA") : "../shared/data", rel);
	return access(path, R_OK) == 0 ? path : NULL;
}

#define assert_double_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#endif
