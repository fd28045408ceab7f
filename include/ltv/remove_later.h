/*
 * Removing big files off the caller's path. On ext4 the unlink of a file's
 * last name frees its page cache and blocks there and then (236 MB: ~55 ms;
 * the registry's 130 MB WAL: ~70 ms on these VMs), and the caller waits.
 * A caller that gives such a file a second name first leaves the unlink of
 * the first only the name; remove_later then frees the second in a process
 * of its own, after the caller is gone if need be.
 */
#ifndef LTV_REMOVE_LATER_H
#define LTV_REMOVE_LATER_H

#include <stddef.h>

/*
 * Starts `rm -f -- PATHS` (paths[0..n)) in the background of a shell that
 * exits at once (waited for here), so nobody has to reap the rm that works
 * (init does). 0 when the shell started rm (whose own failure nobody sees),
 * else -1: the caller removes them itself.
 */
int remove_later(char *const *paths, size_t n);

#endif
