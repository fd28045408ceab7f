/*
 * Output files replaced as a set (contract in include/ltv/output_set.h):
 * temporaries beside their targets, fsync, then renames, then the directories
 * fsynced. Symlinks are written through, devices and directories refused, and
 * temporaries of dead processes cleaned. Only score uses it today; anything
 * that writes several files a user reads together should.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "ltv/output_set.h"
#include "ltv/remove_later.h"

/* Symlink hops followed before giving up, as the kernel's own limit. */
#define MAX_LINK_HOPS 40

/*
 * Files from this size on are set aside and freed by a child (see
 * set_aside): freeing 236 MB took ~55 ms on ext4 with discard, a fork
 * ~1 ms; below this the fork would cost more than the free. Once one file
 * of the set is, the child is there anyway and the others go with it: a
 * rename over a small file took 0.6-32 ms too (strace -T, 36 KB files on
 * the shared ext4 disk), against 0.2-0.3 ms to a name that was free.
 */
#define ASIDE_MIN_BYTES (16L << 20)

/* The directory part of path ("." when none), in a new string. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xasprintf("%.*s", (int)(slash - path), path);
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static const char *kind_of(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/*
 * The file a write to path should replace: path itself, or the end of its
 * chain of symlinks (which may not exist yet). *out_mode gets the target's
 * mode, 0 when it does not exist.
 */
static int resolve_target(const char *path, char **out_target, mode_t *out_mode,
			  struct ltv_err *err)
{
	char *cur = xstrdup(path);
	struct stat st;
	int ret = 0;

	*out_mode = 0;
	for (int hop = 0;; hop++) {
		char link[4096];
		ssize_t len;

		if (lstat(cur, &st) != 0) {
			if (errno != ENOENT)
				ret = err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
			break; /* a new file (or a dangling link's target) */
		}
		if (!S_ISLNK(st.st_mode)) {
			*out_mode = st.st_mode;
			break;
		}
		if (hop == MAX_LINK_HOPS) {
			ret = err_set(err, LTV_EIO, "cannot write '%s': too many levels of symbolic links",
				      path);
			break;
		}
		len = readlink(cur, link, sizeof(link) - 1);
		if (len < 0) {
			ret = err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
			break;
		}
		link[len] = '\0';
		if (link[0] == '/') {
			free(cur);
			cur = xstrdup(link);
		} else {
			char *dir = dir_of(cur);

			free(cur);
			cur = xasprintf("%s/%s", dir, link);
			free(dir);
		}
	}
	if (ret == 0 && *out_mode && !S_ISREG(*out_mode))
		ret = err_set(err, LTV_EIO, "cannot write '%s': it is %s, not a regular file; "
			      "give --output a file path", path, kind_of(*out_mode));
	if (ret < 0) {
		free(cur);
		cur = NULL;
	}
	*out_target = cur;
	return ret;
}

int output_set_clean_stale(const char *target)
{
	char *dir = dir_of(target), *prefix = xasprintf("%s.tmp-", base_of(target));
	size_t prefix_len = strlen(prefix);
	DIR *d = opendir(dir);
	const struct dirent *e;
	int removed = 0;

	while (d && (e = readdir(d)) != NULL) {
		const char *digits = e->d_name + prefix_len;
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, prefix_len) != 0 || *digits < '1' || *digits > '9')
			continue;
		errno = 0;
		pid = strtol(digits, &end, 10);
		if (strcmp(end, ".old") == 0) /* a replaced file set aside (set_aside) */
			end += 4;
		if (errno || *end || pid <= 0 || pid > INT32_MAX || (pid_t)pid == getpid())
			continue;
		/* EPERM means the process exists (another user's): leave its file alone. */
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			char *stale = xasprintf("%s/%s", dir, e->d_name);

			removed += unlink(stale) == 0;
			free(stale);
		}
	}
	if (d)
		closedir(d);
	free(prefix);
	free(dir);
	return removed;
}

void output_set_init(struct output_set *set)
{
	memset(set, 0, sizeof(*set));
}

int output_set_add(struct output_set *set, const char *path, FILE **out_f, struct ltv_err *err)
{
	struct output_file *o;
	mode_t mode = 0;
	int fd = -1, ret;

	assert(set->n < OUTPUT_SET_MAX);
	*out_f = NULL;
	o = &set->files[set->n];
	memset(o, 0, sizeof(*o));
	o->synced_to = -1;
	ret = resolve_target(path, &o->target, &mode, err);
	if (ret < 0)
		return ret;
	o->path = xstrdup(path);
	set->n++; /* from here on, release frees it */
	output_set_clean_stale(o->target);
	o->tmp = xasprintf("%s.tmp-%ld", o->target, (long)getpid());
	unlink(o->tmp); /* ours from an earlier set in this process */
	fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd < 0) {
		ret = err_set(err, LTV_EIO, "cannot write '%s' (temporary '%s'): %s", path, o->tmp,
			      strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return ret;
	}
	/* A replaced file keeps its permissions. */
	if (mode)
		(void)fchmod(fd, mode & 07777);
	o->f = fdopen(fd, "w");
	if (!o->f) {
		ret = err_set(err, LTV_EIO, "cannot write '%s': %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	*out_f = o->f;
	return 0;
}

/*
 * fsyncs the directory of each target once: one fsync after the last rename
 * makes every rename in that directory durable, and each more cost a journal
 * commit (score's four files in one directory: four fsyncs of 0.1-14 ms).
 */
static void sync_dirs(const struct output_set *set)
{
	char *done[OUTPUT_SET_MAX];
	size_t n_done = 0;

	for (size_t i = 0; i < set->n; i++) {
		char *dir = dir_of(set->files[i].target);
		size_t k = 0;
		int fd;

		while (k < n_done && strcmp(done[k], dir) != 0)
			k++;
		if (k < n_done) {
			free(dir);
			continue;
		}
		done[n_done++] = dir;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
	for (size_t k = 0; k < n_done; k++)
		free(done[k]);
}

/* 1 when target is a regular file with one link of min_bytes or more: a rename over it frees it. */
static int freed_by_rename(const char *target, off_t min_bytes)
{
	struct stat st;

	return lstat(target, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	       st.st_size >= min_bytes;
}

/*
 * Gives o's target, when a rename over it would free it (freed_by_rename),
 * a second link o->aside, so the rename frees nothing; free_asides drops that
 * link later. Any failure leaves o->aside NULL: the rename then frees the old
 * file itself, as before.
 */
static void set_aside(struct output_file *o, off_t min_bytes)
{
	if (!freed_by_rename(o->target, min_bytes))
		return;
	o->aside = xasprintf("%s.old", o->tmp);
	unlink(o->aside); /* ours from an earlier set in this process */
	if (link(o->target, o->aside) != 0) {
		free(o->aside);
		o->aside = NULL;
	}
}

/* remove_later of the set-aside links (n of them): 0 when it started rm. */
static int spawn_remover(struct output_set *set, size_t n)
{
	char **paths = xcalloc(n, sizeof(*paths));
	size_t k = 0;
	int ret;

	for (size_t i = 0; i < set->n; i++)
		if (set->files[i].aside)
			paths[k++] = set->files[i].aside;
	ret = remove_later(paths, k);
	free(paths);
	return ret;
}

/*
 * Removes the set-aside links in a process of its own (spawn_remover), so
 * the filesystem frees the replaced files' blocks off the caller's path;
 * here, as before, when it cannot be started.
 */
static void free_asides(struct output_set *set)
{
	size_t n = 0;
	int spawned;

	for (size_t i = 0; i < set->n; i++)
		n += set->files[i].aside != NULL;
	if (n == 0)
		return;
	spawned = spawn_remover(set, n) == 0;
	for (size_t i = 0; i < set->n; i++) {
		struct output_file *o = &set->files[i];

		if (!spawned && o->aside) /* no shell: free them here */
			unlink(o->aside);
		free(o->aside);
		o->aside = NULL;
	}
}

/*
 * Sets aside the replaced files a rename would free (set_aside): the large
 * ones, and the others too once one is, since its child frees them all.
 */
static void set_asides(struct output_set *set)
{
	int any_large = 0;

	for (size_t i = 0; i < set->n && !any_large; i++)
		any_large = freed_by_rename(set->files[i].target, ASIDE_MIN_BYTES);
	if (any_large)
		for (size_t i = 0; i < set->n; i++)
			set_aside(&set->files[i], 0);
}

/*
 * Flushes each temporary's stream and starts the disk writeback of all of
 * them (sync_file_range, a start only) before the first fsync: the
 * filesystem then places every file's blocks in the transaction that first
 * fsync commits, and the later fsyncs find theirs committed, where each had
 * cost a journal commit of its own (score's campaigns and two reports after
 * the users file: 1-10 ms each). Durability is still each file's fsync's.
 * A stream that fails to flush is reported by the fsync loop.
 */
static void start_writeback(struct output_set *set, size_t first)
{
	for (size_t i = first; i < set->n; i++) {
		FILE *f = set->files[i].f;

		if (f && fflush(f) == 0)
			(void)sync_file_range(fileno(f), 0, 0, SYNC_FILE_RANGE_WRITE);
	}
}

/* The file's end as written so far: its stream's position, or -1. */
static off_t written_to(FILE *f)
{
	return ftello(f);
}

/*
 * Flushes o's stream and fsyncs its file unless output_set_sync did since
 * the last byte was written; 0, or the failure (naming the file).
 */
static int sync_file(struct output_file *o, struct ltv_err *err)
{
	if (fflush(o->f) != 0 || ferror(o->f))
		goto fail;
	if (o->synced_to >= 0 && written_to(o->f) == o->synced_to)
		return 0;
	if (fsync(fileno(o->f)) != 0)
		goto fail;
	o->synced_to = written_to(o->f);
	return 0;
fail:
	return err_set(err, LTV_EIO, "cannot write '%s': %s; the previous file is unchanged", o->path,
		       strerror(errno));
}

int output_set_sync_file(struct output_set *set, size_t i, struct ltv_err *err)
{
	assert(i < OUTPUT_SET_MAX && set->files[i].f);
	return sync_file(&set->files[i], err);
}

int output_set_sync_from(struct output_set *set, size_t first, struct ltv_err *err)
{
	int ret = 0;

	start_writeback(set, first);
	for (size_t i = first; i < set->n && ret == 0; i++)
		if (set->files[i].f)
			ret = sync_file(&set->files[i], err);
	return ret;
}

int output_set_commit(struct output_set *set, struct ltv_err *err)
{
	const char *fault = getenv("LTVPIPE_FAULT");

	for (size_t i = 0; i < set->n; i++)
		if (!set->files[i].f)
			return err_set(err, LTV_EINTERNAL, "output '%s' was never opened",
				       set->files[i].path);
	start_writeback(set, 0);
	for (size_t i = 0; i < set->n; i++) {
		struct output_file *o = &set->files[i];
		int ret = sync_file(o, err);

		if (fclose(o->f) != 0 && ret == 0)
			ret = err_set(err, LTV_EIO, "cannot write '%s': %s; the previous file is unchanged",
				      o->path, strerror(errno));
		o->f = NULL;
		if (ret < 0)
			return ret;
	}
	if (fault && strcmp(fault, "output:kill") == 0)
		raise(SIGKILL);
	if (fault && strcmp(fault, "output:fail") == 0)
		return err_set(err, LTV_EINTERNAL, "injected fault (LTVPIPE_FAULT=%s)", fault);
	set_asides(set);
	for (size_t i = 0; i < set->n; i++) {
		struct output_file *o = &set->files[i];

		if (rename(o->tmp, o->target) != 0)
			return err_set(err, LTV_EIO, "cannot replace '%s': %s", o->path, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
	}
	sync_dirs(set);
	free_asides(set);
	return 0;
}

void output_set_release(struct output_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct output_file *o = &set->files[i];

		if (o->f)
			fclose(o->f);
		if (o->tmp)
			unlink(o->tmp);
		if (o->aside) /* a commit that failed after set_aside */
			unlink(o->aside);
		free(o->tmp);
		free(o->aside);
		free(o->target);
		free(o->path);
	}
	memset(set, 0, sizeof(*set));
}
