/*
 * Unit tests for block_writer.c: blocks passed from the caller's thread come
 * out in the file in order and whole, across many hand-overs (more blocks
 * than the pool holds) and blocks that grew past the hand-over size; the
 * hash it gives is hash_file_hex's of the file; a descriptor it cannot
 * write to gives the write's errno, and the caller's blocks are still taken.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "ltv/block_writer.h"
#include "ltv/hash.h"

/* Line k of the test text: its number and a tail whose length varies with k. */
static void add_line(struct jbuf *b, size_t k)
{
	jbuf_int(b, (long long)k);
	jbuf_add(b, ",", 1);
	for (size_t i = 0; i < k % 97; i++)
		jbuf_add(b, "x", 1);
	jbuf_add(b, "\n", 1);
}

static void test_blocks_in_order_and_hashed(void **state)
{
	char path[] = "/tmp/test_block_writer.XXXXXX";
	char got[HASH_HEX_LEN], want[HASH_HEX_LEN];
	struct block_writer w;
	struct ltv_err err;
	struct jbuf expect, *b;
	char *text;
	size_t len = 0, n_passes = 0;
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	jbuf_init(&expect);
	block_writer_start(&w, fd);
	b = block_writer_block(&w);
	for (size_t k = 0; k < 200000; k++) {
		add_line(b, k);
		add_line(&expect, k);
		/* now and then a block well past the hand-over size */
		if (b->len >= BLOCK_WRITER_BLOCK / (k % 3 ? 1 : 64) && k % 7) {
			b = block_writer_pass(&w);
			n_passes++;
		}
	}
	assert_int_equal(block_writer_finish(&w, got), 0);
	assert_true(n_passes > BLOCK_WRITER_BLOCKS * 4);
	close(fd);
	f = fopen(path, "rb");
	assert_non_null(f);
	text = malloc(expect.len + 1);
	len = fread(text, 1, expect.len + 1, f);
	fclose(f);
	assert_int_equal(len, expect.len);
	assert_memory_equal(text, expect.p, expect.len);
	assert_int_equal(hash_file_hex(path, want, &err), 0);
	assert_string_equal(got, want);
	free(text);
	jbuf_release(&expect);
	unlink(path);
}

static void test_write_error_is_returned(void **state)
{
	struct block_writer w;
	struct jbuf *b;
	int fd = open("/dev/null", O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	block_writer_start(&w, fd);
	b = block_writer_block(&w);
	for (size_t k = 0; k < 50000; k++) {
		add_line(b, k);
		if (b->len >= BLOCK_WRITER_BLOCK)
			b = block_writer_pass(&w);
	}
	assert_int_equal(block_writer_finish(&w, NULL), -EBADF);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_in_order_and_hashed),
		cmocka_unit_test(test_write_error_is_returned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
