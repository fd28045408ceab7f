/*
 * Scratch directories in $TMPDIR (default /tmp) for work that is thrown away,
 * such as the scratch registry of `score --users/--events`. Each is named
 * "<prefix>-<pid>-XXXXXX", so a process killed before removing its own can be
 * told apart: creating a new one first removes those of the same prefix
 * whose process is dead.
 */
#ifndef LTV_SCRATCH_DIR_H
#define LTV_SCRATCH_DIR_H

#include <stddef.h>

#include "ltv/common.h"

/*
 * Removes the stale scratch directories of prefix, then creates a new one and
 * writes its path into out (size bytes). LTV_EIO naming the directory on failure.
 */
int scratch_dir_create(const char *prefix, char *out, size_t size, struct ltv_err *err);
/* Removes dir and everything in it; never follows symlinks out of it. */
void scratch_dir_remove(const char *dir);

#endif
