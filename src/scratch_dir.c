/*
 * Scratch directories named after their process (contract in
 * include/ltv/scratch_dir.h), so that what a killed process left in $TMPDIR
 * is found and removed by the next one instead of piling up.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/scratch_dir.h"

static const char *tmp_root(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void scratch_dir_remove(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The pid in "<prefix>-<pid>-XXXXXX", or 0 when name is not one of ours. */
static long scratch_pid(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	char *end;
	long pid;

	if (strncmp(name, prefix, n) != 0 || name[n] != '-' || name[n + 1] < '1' || name[n + 1] > '9')
		return 0;
	errno = 0;
	pid = strtol(name + n + 1, &end, 10);
	if (errno || *end != '-' || strlen(end + 1) != 6 || pid > INT32_MAX)
		return 0;
	return pid;
}

static void remove_stale(const char *root, const char *prefix)
{
	DIR *d = opendir(root);
	const struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		long pid = scratch_pid(e->d_name, prefix);

		/* EPERM: the process exists (another user's); only ESRCH says it is gone. */
		if (pid > 0 && (pid_t)pid != getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			char *path = xasprintf("%s/%s", root, e->d_name);

			scratch_dir_remove(path);
			free(path);
		}
	}
	if (d)
		closedir(d);
}

int scratch_dir_create(const char *prefix, char *out, size_t size, struct ltv_err *err)
{
	const char *root = tmp_root();
	int n;

	remove_stale(root, prefix);
	n = snprintf(out, size, "%s/%s-%ld-XXXXXX", root, prefix, (long)getpid());
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return err_set(err, LTV_EIO, "scratch directory path under '%s' is too long; "
			       "set TMPDIR to a shorter directory", root);
	}
	if (!mkdtemp(out)) {
		int e = errno;

		out[0] = '\0';
		return err_set(err, LTV_EIO, "cannot create a scratch directory in '%s': %s; "
			       "set TMPDIR to a writable directory", root, strerror(e));
	}
	return 0;
}
