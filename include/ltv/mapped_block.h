#ifndef LTV_MAPPED_BLOCK_H
#define LTV_MAPPED_BLOCK_H

#include <stddef.h>

/*
 * A large block as an anonymous mapping of its own, made from the pages of
 * a block freed just before it. On these VMs the kernel zeroing a page the
 * process has not had costs 2-4 ms of CPU a MB (README, "Threads and
 * performance"), while mremap moves a mapping's pages to the new block
 * without copying or zeroing them. Their old bytes stay: the block is for
 * an owner that writes what it reads. The rest of the block is fresh.
 *
 * Use:
 *   struct mapped_block b;
 *   mapped_block_make(&b, old, n_old, len);  // old: mappings of their own given up
 *   ... b.p[0 .. len), the pages from b.fresh_from on never touched ...
 *   mapped_block_release(&b);
 */
struct mapped_block {
	void *p;
	size_t len;        /* len rounded up to whole pages (at least one) */
	size_t fresh_from; /* the old block's pages end here: [fresh_from, len) are new */
};

/* A block being given up: an anonymous mapping of its own, len a multiple of 2 MB or its last piece. */
struct mapped_piece {
	void *p;
	size_t len;
};

/*
 * A block of at least len bytes, 2 MB aligned, beginning with the pages of
 * the n_old old blocks one after the other (each cut to what fits; all are
 * gone after, whatever happens) and fresh pages after them. When mremap
 * cannot move them (or n_old is 0): all fresh. Dies when out of memory, as
 * xmalloc. Gets the huge-page hint (memory_want_huge_pages).
 */
void mapped_block_make(struct mapped_block *b, const struct mapped_piece *old, size_t n_old,
		       size_t len);

/*
 * A mapping of len bytes (whole pages) to be a mapped_piece later: 2 MB
 * aligned, so its huge pages move whole, and not faulted in nor counted
 * against memory (MAP_NORESERVE) before it is written. NULL if none.
 */
void *mapped_block_reserve(size_t len);

/* Unmaps b's block (nothing for a zeroed struct). */
void mapped_block_release(struct mapped_block *b);

#endif
