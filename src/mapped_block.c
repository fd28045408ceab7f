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
 * An address where len bytes can go, 2 MB aligned: reserved (PROT_NONE) by
 * a mapping 2 MB longer, whose ends are then cut off. NULL if none.
 */
static char *aligned_place(size_t len)
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

/*
 * Moves the pieces one after the other to the start of the place at, each
 * cut to what still fits (a piece that does not fit at all is unmapped),
 * and maps fresh pages after them. Returns where the fresh pages begin, or
 * (size_t)-1 if a move failed: at is then unmapped, the pieces too.
 */
static size_t move_pieces(char *at, size_t len, const struct mapped_piece *old, size_t n_old)
{
	size_t used = 0, i;

	for (i = 0; i < n_old; i++) {
		const size_t take = old[i].len < len - used ? old[i].len : len - used;

		if (take == 0) {
			(void)munmap(old[i].p, old[i].len);
			continue;
		}
		/* A huge page lands whole when both ends are 2 MB aligned (each piece's length is). */
		if (mremap(old[i].p, old[i].len, take, MREMAP_MAYMOVE | MREMAP_FIXED, at + used) == MAP_FAILED)
			break;
		used += take;
	}
	if (i == n_old && (used == len || mmap(at + used, len - used, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED))
		return used;
	for (; i < n_old; i++)
		(void)munmap(old[i].p, old[i].len);
	(void)munmap(at, len);
	return (size_t)-1;
}

void mapped_block_make(struct mapped_block *b, const struct mapped_piece *old, size_t n_old,
		       size_t len)
{
	char *at = NULL;

	b->len = whole_pages(len);
	b->fresh_from = 0;
	if (n_old > 0 && (at = aligned_place(b->len)) != NULL)
		b->fresh_from = move_pieces(at, b->len, old, n_old);
	else
		for (size_t i = 0; i < n_old; i++)
			(void)munmap(old[i].p, old[i].len);
	if (at && b->fresh_from != (size_t)-1) {
		b->p = at;
	} else {
		b->fresh_from = 0;
		b->p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b->p == MAP_FAILED)
			die_oom(b->len);
	}
	memory_want_huge_pages(b->p, b->len);
}

void *mapped_block_reserve(size_t len)
{
	char *at = aligned_place(whole_pages(len));

	if (at && mprotect(at, whole_pages(len), PROT_READ | PROT_WRITE) != 0) {
		(void)munmap(at, whole_pages(len));
		at = NULL;
	}
	if (at)
		memory_want_huge_pages(at, whole_pages(len));
	return at;
}

void mapped_block_release(struct mapped_block *b)
{
	if (b->p)
		(void)munmap(b->p, b->len);
	memset(b, 0, sizeof(*b));
}
