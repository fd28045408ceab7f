/*
 * A set of output files replaced together (score's users CSV, campaign
 * summary and report): each file is written to a temporary beside its target,
 * all temporaries are flushed and fsynced, and only then renamed over their
 * targets, one after the other, and the directories fsynced. A failure or a
 * kill before the renames leaves every previous file as it was; temporaries a
 * killed process left behind ("<target>.tmp-<pid>" whose pid is dead) are
 * removed by the next writer of the same target.
 *
 * A large file replaced is not freed by the rename: the filesystem frees its
 * blocks there, on the caller's path (~55 ms for score's 236 MB users CSV on
 * ext4 mounted with discard). It gets a second link "<target>.tmp-<pid>.old"
 * before the rename, and a process of its own (`rm` in the background of
 * /bin/sh, started by posix_spawn) removes that link after the commit while
 * the caller goes on; once one file of the set is set aside, the set's
 * other replaced files are too (a rename over a small file took 0.6-32 ms).
 * A kill in between leaves the link to the next writer's clean-up, as a
 * temporary.
 *
 * A target that is a symlink is written through: the file it points at is
 * replaced and the link stays. A target that exists and is not a regular file
 * (a device such as /dev/full, a directory, a FIFO) is refused, never replaced.
 *
 * Test hook: LTVPIPE_FAULT=output:kill sends the process SIGKILL once every
 * temporary is written and synced, before the first rename; output:fail
 * fails there instead.
 */
#ifndef LTV_OUTPUT_SET_H
#define LTV_OUTPUT_SET_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "ltv/common.h"

#define OUTPUT_SET_MAX 8

struct output_file {
	char *path;   /* as the caller named it, for messages */
	char *target; /* the file renamed over: path, or what its symlinks point at */
	char *tmp;    /* "<target>.tmp-<pid>" while not yet renamed */
	char *aside;  /* "<target>.tmp-<pid>.old": a second link to the file replaced */
	FILE *f;
	off_t synced_to; /* the end written when output_set_sync_from fsynced it; -1: not yet */
};

struct output_set {
	size_t n;
	struct output_file files[OUTPUT_SET_MAX];
};

void output_set_init(struct output_set *set);
/*
 * Adds path to the set and opens its temporary for writing into *out_f, which
 * stays owned by the set (write to it; never fclose it). Fails with LTV_EIO
 * naming path when the target is not a regular file or the temporary cannot
 * be created.
 */
int output_set_add(struct output_set *set, const char *path, FILE **out_f, struct ltv_err *err);
/*
 * The files added from index first on are written whole: flushes and fsyncs
 * them now, on the caller's thread, so that their fsyncs overlap the
 * writing of others (score's campaigns file and reports while another thread
 * writes the users file) rather than wait in output_set_commit. Commit
 * fsyncs such a file again only if it was written to since. Fails as commit
 * does, naming the file; the set stays the caller's to release.
 */
int output_set_sync_from(struct output_set *set, size_t first, struct ltv_err *err);
/*
 * output_set_sync_from for the one file at index i, touching no other part
 * of the set: a thread that wrote file i may call it while another adds
 * files (score's users file, written by its own thread).
 */
int output_set_sync_file(struct output_set *set, size_t i, struct ltv_err *err);
/*
 * Flushes, fsyncs and closes every temporary (a full disk fails here, naming
 * the file), then renames each over its target and fsyncs each directory
 * once. On failure before the renames no target has changed.
 */
int output_set_commit(struct output_set *set, struct ltv_err *err);
/* Closes and removes the temporaries not renamed, and frees the set's strings. */
void output_set_release(struct output_set *set);

/*
 * Removes the temporaries "<target>.tmp-<pid>" and "<target>.tmp-<pid>.old"
 * of target whose process is no longer running; returns how many it removed.
 */
int output_set_clean_stale(const char *target);

#endif
