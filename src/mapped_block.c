/* Blocks made from the pages of another (include/ltv/mapped_block.h). */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ltv/common.h"
#include "ltv/mapped_block.h"

static size_t whole_pages(size_t n)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n ? (n + page - 1) / page : 1) * page;
}

/* Huge pages are 2 MB: a block aligned to that keeps them whole when they move. */
#define HUGE_ALIGN ((uintptr_t)2 << 20)

/*
 * An address where len bytes can go, 2 MB aligned: reserved by a mapping
 * 2 MB longer, whose ends are then cut off. NULL if none.
 */
static void *aligned_place(size_t len)
{
	char *r = mmap(NULL, len + HUGE_ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *at;

	if (r == MAP_FAILED)
		return NULL;
	at = (char *)(((uintptr_t)r + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1));
	if (at > r)
		(void)munmap(r, (size_t)(at - r));
	if (r + len + HUGE_ALIGN > at + len)
		(void)munmap(at + len, (size_t)(r + len + HUGE_ALIGN - (at + len)));
	return at;
}

void mapped_block_make(struct mapped_block *b, void *old, size_t old_len, size_t len)
{
	void *p = MAP_FAILED, *at;

	b->len = whole_pages(len);
	b->fresh_from = 0;
	if (old) {
		/*
		 * Moved to a 2 MB boundary, where the old block's huge pages
		 * stay whole (moved elsewhere, each is split into 4 KB pages);
		 * the reserved place is replaced. Else wherever mremap likes.
		 */
		at = aligned_place(b->len);
		if (at) {
			p = mremap(old, old_len, b->len, MREMAP_MAYMOVE | MREMAP_FIXED, at);
			if (p == MAP_FAILED)
				(void)munmap(at, b->len);
		}
		if (p == MAP_FAILED)
			p = mremap(old, old_len, b->len, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			(void)munmap(old, old_len);
		else
			b->fresh_from = old_len < b->len ? old_len : b->len;
	}
	if (p == MAP_FAILED) {
		p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die_oom(b->len);
	}
	b->p = p;
	memory_want_huge_pages(p, b->len);
}

void mapped_block_release(struct mapped_block *b)
{
	if (b->p)
		(void)munmap(b->p, b->len);
	memset(b, 0, sizeof(*b));
}
