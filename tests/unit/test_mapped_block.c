/*
 * Unit tests for mapped_block.c: a block made from old mappings keeps the
 * old pages' bytes at its start, one after the other, and is fresh (zero)
 * after them, grown or cut to whole pages; without one it is all fresh.
 */
#include "testutil.h"

#include "ltv/mapped_block.h"

#include <sys/mman.h>
#include <unistd.h>

#define MB ((size_t)1 << 20)

/* An anonymous mapping of n bytes, byte i holding (i * 7 + 3) & 0xff. */
static unsigned char *patterned(size_t n)
{
	unsigned char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 7 + 3) & 0xff);
	return p;
}

static void expect_pattern(const unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != (unsigned char)((i * 7 + 3) & 0xff))
			fail_msg("byte %zu is %u, not the old block's", i, p[i]);
}

static void expect_zero(const unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != 0)
			fail_msg("fresh byte %zu is %u", i, p[i]);
}

/* Grown: the old 6 MB first, then 14 MB never touched, all writable. */
static void test_grown_keeps_old_pages(void **state)
{
	struct mapped_block b;
	unsigned char *old = patterned(6 * MB);

	(void)state;
	mapped_block_make(&b, &(struct mapped_piece){ old, 6 * MB }, 1, 20 * MB - 5);
	assert_int_equal(b.len, 20 * MB);
	assert_int_equal(b.fresh_from, 6 * MB);
	expect_pattern(b.p, 0, 6 * MB);
	expect_zero(b.p, 6 * MB, b.len);
	memset(b.p, 1, b.len);
	mapped_block_release(&b);
	assert_null(b.p);
}

/* Cut: a shorter block is all old pages, to the page after len. */
static void test_cut_keeps_old_pages(void **state)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mapped_block b;
	unsigned char *old = patterned(8 * MB);

	(void)state;
	mapped_block_make(&b, &(struct mapped_piece){ old, 8 * MB }, 1, 3 * MB + 1);
	assert_int_equal(b.len, 3 * MB + page);
	assert_int_equal(b.fresh_from, b.len);
	expect_pattern(b.p, 0, b.len);
	mapped_block_release(&b);
}

/*
 * Two old blocks, one after the other: the second (not whole huge pages
 * long) after the first, then fresh pages; a third that no longer fits is
 * given up all the same.
 */
static void test_pieces_in_order(void **state)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *a = patterned(4 * MB), *c = patterned(MB);
	unsigned char *second = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mapped_piece pieces[3];
	struct mapped_block b;

	(void)state;
	assert_true(second != MAP_FAILED);
	memset(second, 0xab, 3 * page);
	pieces[0] = (struct mapped_piece){ a, 4 * MB };
	pieces[1] = (struct mapped_piece){ second, 3 * page };
	pieces[2] = (struct mapped_piece){ c, MB };
	mapped_block_make(&b, pieces, 3, 4 * MB + 3 * page);
	assert_int_equal(b.fresh_from, 4 * MB + 3 * page);
	expect_pattern(b.p, 0, 4 * MB);
	for (size_t i = 4 * MB; i < b.len; i++)
		assert_int_equal(((unsigned char *)b.p)[i], 0xab);
	mapped_block_release(&b);
	pieces[0] = (struct mapped_piece){ patterned(2 * MB), 2 * MB };
	second = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(second, 0xcd, page);
	pieces[1] = (struct mapped_piece){ second, page };
	mapped_block_make(&b, pieces, 2, 3 * MB);
	assert_int_equal(b.fresh_from, 2 * MB + page);
	expect_pattern(b.p, 0, 2 * MB);
	assert_int_equal(((unsigned char *)b.p)[2 * MB + page - 1], 0xcd);
	expect_zero(b.p, 2 * MB + page, b.len);
	memset(b.p, 1, b.len);
	mapped_block_release(&b);
}

/* No old block (and a zero length): fresh pages, at least one. */
static void test_without_old_block(void **state)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct mapped_block b, none = { 0 };

	(void)state;
	mapped_block_make(&b, NULL, 0, 5 * MB);
	assert_int_equal(b.len, 5 * MB);
	assert_int_equal(b.fresh_from, 0);
	expect_zero(b.p, 0, b.len);
	mapped_block_release(&b);
	mapped_block_make(&b, NULL, 0, 0);
	assert_int_equal(b.len, page);
	mapped_block_release(&b);
	mapped_block_release(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grown_keeps_old_pages),
		cmocka_unit_test(test_cut_keeps_old_pages),
		cmocka_unit_test(test_pieces_in_order),
		cmocka_unit_test(test_without_old_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
