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
 *   mapped_block_make(&b, old, old_len, len);  // old: a mapping of its own, or NULL
 *   ... b.p[0 .. len), the pages from b.fresh_from on never touched ...
 *   mapped_block_release(&b);
 */
struct mapped_block {
	void *p;
	size_t len;        /* len rounded up to whole pages (at least one) */
	size_t fresh_from; /* the old block's pages end here: [fresh_from, len) are new */
};

/*
 * A block of at least len bytes, with old's pages at its start (old, a
 * mapping of old_len bytes, a multiple of the page size, is gone after). A
 * NULL old, or one mremap could not move: a fresh block. Dies when out of
 * memory, as xmalloc. Gets the huge-page hint (memory_want_huge_pages).
 */
void mapped_block_make(struct mapped_block *b, void *old, size_t old_len, size_t len);

/* Unmaps b's block (nothing for a zeroed struct). */
void mapped_block_release(struct mapped_block *b);

#endif
