/*
 * Resolution of the configured input patterns to hashed files (contract in
 * include/ltv/input_files.h). Shared by the runner, which fingerprints ingest
 * by file content, and by the ingest stage, which reads them.
 */
#include <glob.h>
#include <stdio.h>

#include "ltv/input_files.h"

static int add_pattern(struct input_files *files, size_t *cap, const char *pattern,
		       const char *key, enum input_kind kind, struct ltv_err *err)
{
	glob_t g;
	int rc = glob(pattern, GLOB_ERR, NULL, &g);
	int ret = 0;

	if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
		ret = err_set(err, LTV_EIO,
			      "%s: no file matches '%s'; set %s in the config or run "
			      "'ltvpipe generate --out data' for a sample", key, pattern, key);
		goto out;
	}
	if (rc != 0) {
		ret = err_set(err, LTV_EIO, "%s: cannot read '%s'", key, pattern);
		goto out;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct input_file *f;

		ARRAY_GROW(files->v, files->n + 1, *cap);
		f = &files->v[files->n];
		f->path = xstrdup(g.gl_pathv[i]);
		f->kind = kind;
		files->n++;
		ret = hash_file_hex(f->path, f->hash, err);
		if (ret < 0)
			goto out;
	}
out:
	if (rc == 0 || rc == GLOB_NOMATCH)
		globfree(&g);
	return ret;
}

int input_files_resolve(const struct config *cfg, struct input_files *out, struct ltv_err *err)
{
	size_t cap = 0;
	int ret;

	out->v = NULL;
	out->n = 0;
	ret = add_pattern(out, &cap, cfg->input.users, "input.users", INPUT_USERS, err);
	if (ret == 0)
		ret = add_pattern(out, &cap, cfg->input.events, "input.events", INPUT_EVENTS, err);
	if (ret < 0)
		input_files_release(out);
	return ret;
}

void input_files_release(struct input_files *files)
{
	for (size_t i = 0; i < files->n; i++)
		free(files->v[i].path);
	free(files->v);
	files->v = NULL;
	files->n = 0;
}
