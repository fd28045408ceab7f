/*
 * Resolution of the configured input patterns to hashed files (contract in
 * include/ltv/input_files.h). Shared by the runner, which fingerprints ingest
 * by file content, and by the ingest stage, which reads them.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ltv/input_files.h"
#include "ltv/registry.h"

/* The stat a recorded hash is trusted by: device, inode, size, mtime to the nanosecond. */
static void stamp_of(const struct stat *st, char *stamp, size_t size)
{
	snprintf(stamp, size, "%llu %llu %lld %lld.%09ld", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino, (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

/*
 * Records hash as the content of the file with this stat (best effort: a
 * registry that cannot take the write just hashes next time). A file
 * modified in the last two seconds could change again within the clock's
 * granularity keeping its mtime ("racy git"): not recorded.
 */
static void record_hash(struct registry *reg, const char *path, const char *stamp,
			int64_t mtime_sec, const char *hash)
{
	struct ltv_err ignored = { 0 };
	char *key, value[INPUT_STAMP_LEN + HASH_HEX_LEN];

	if (mtime_sec + 2 >= (int64_t)time(NULL))
		return;
	key = xasprintf("input_file_hash:%s", path);
	snprintf(value, sizeof(value), "%s %s", stamp, hash);
	(void)registry_meta_set(reg, key, value, &ignored);
	free(key);
}

/*
 * A file's content hash, reused from the registry's meta table while the
 * file's device, inode, size and modification time (to the nanosecond) are
 * the ones recorded with it, as make and git trust a file's stat. Hashing the
 * input files was most of a no-op run (0.5 GB of CSV at a million users).
 * Without a registry, or when the file changed, it is hashed and recorded.
 */
static int file_hash(struct registry *reg, const char *path, char hash[HASH_HEX_LEN],
		     struct ltv_err *err)
{
	struct stat st;
	char *key, *old = NULL, stamp[INPUT_STAMP_LEN];
	struct ltv_err ignored = { 0 };
	int ret;

	if (!reg || stat(path, &st) != 0)
		return hash_file_hex(path, hash, err);
	stamp_of(&st, stamp, sizeof(stamp));
	key = xasprintf("input_file_hash:%s", path);
	if (registry_meta_get(reg, key, &old, &ignored) == 0 && old &&
	    strncmp(old, stamp, strlen(stamp)) == 0 && old[strlen(stamp)] == ' ' &&
	    strlen(old + strlen(stamp) + 1) == HASH_HEX_LEN - 1) {
		memcpy(hash, old + strlen(stamp) + 1, HASH_HEX_LEN);
		free(old);
		free(key);
		return 0;
	}
	free(old);
	free(key);
	ret = hash_file_hex(path, hash, err);
	if (ret == 0)
		record_hash(reg, path, stamp, (int64_t)st.st_mtim.tv_sec, hash);
	return ret;
}

/* For a hash taken later (input_files_record_hash): the stat before the file is read. */
static void take_stamp(struct input_file *f)
{
	struct stat st;

	f->stamp[0] = '\0';
	if (stat(f->path, &st) != 0)
		return;
	stamp_of(&st, f->stamp, sizeof(f->stamp));
	f->mtime_sec = (int64_t)st.st_mtim.tv_sec;
}

void input_files_record_hash(struct registry *reg, const struct input_file *f)
{
	if (f->stamp[0] && f->hash[0])
		record_hash(reg, f->path, f->stamp, f->mtime_sec, f->hash);
}

/* When add_pattern hashes the files. */
enum { HASH_NEVER, HASH_NOW, HASH_LATER };

static int add_pattern(struct registry *reg, int hash, struct input_files *files, size_t *cap,
		       const char *pattern, const char *key, enum input_kind kind,
		       struct ltv_err *err)
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
		f->hash[0] = '\0';
		f->stamp[0] = '\0';
		if (hash == HASH_LATER)
			take_stamp(f);
		ret = hash == HASH_NOW ? file_hash(reg, f->path, f->hash, err) : 0;
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
	return input_files_resolve_in(cfg, NULL, out, err);
}

/* The matches of input.users, then of input.events; their hashes as hash says. */
static int resolve(const struct config *cfg, struct registry *reg, int hash,
		   struct input_files *out, struct ltv_err *err)
{
	size_t cap = 0;
	int ret;

	out->v = NULL;
	out->n = 0;
	ret = add_pattern(reg, hash, out, &cap, cfg->input.users, "input.users", INPUT_USERS, err);
	if (ret == 0)
		ret = add_pattern(reg, hash, out, &cap, cfg->input.events, "input.events",
				  INPUT_EVENTS, err);
	if (ret < 0)
		input_files_release(out);
	return ret;
}

int input_files_resolve_in(const struct config *cfg, struct registry *reg,
			   struct input_files *out, struct ltv_err *err)
{
	return resolve(cfg, reg, HASH_NOW, out, err);
}

int input_files_resolve_unhashed(const struct config *cfg, struct input_files *out,
				 struct ltv_err *err)
{
	return resolve(cfg, NULL, HASH_LATER, out, err);
}

int input_files_expand(const struct config *cfg, struct input_files *out, struct ltv_err *err)
{
	return resolve(cfg, NULL, HASH_NEVER, out, err);
}

int input_files_check_readable(const struct input_files *files, struct ltv_err *err)
{
	for (size_t i = 0; i < files->n; i++) {
		FILE *f = fopen(files->v[i].path, "rb");
		int read_errno;

		if (!f)
			return err_set(err, LTV_EIO, "cannot open '%s': %s", files->v[i].path,
				       strerror(errno));
		(void)fgetc(f);
		read_errno = ferror(f) ? errno : 0;
		fclose(f);
		if (read_errno)
			return err_set(err, LTV_EIO, "cannot read '%s': %s", files->v[i].path,
				       strerror(read_errno));
	}
	return 0;
}

void input_files_release(struct input_files *files)
{
	for (size_t i = 0; i < files->n; i++)
		free(files->v[i].path);
	free(files->v);
	files->v = NULL;
	files->n = 0;
}
