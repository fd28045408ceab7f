/*
 * Unit tests for hash.c: known XXH3-128 answers (computed independently with
 * `xxh128sum` from the xxhash package), streaming against one-shot, the
 * framing of the typed adders, and file hashing including its failure path.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/hash.h"

/* printf '' | xxh128sum ; printf 'abc' | xxh128sum */
#define XXH128_EMPTY "99aa06d3014798d86001c324468d497f"
#define XXH128_ABC "06b05ab6733a618578af5f94892f3950"

static void test_known_answers(void **state)
{
	char hex[HASH_HEX_LEN];

	(void)state;
	hash_buffer_hex("", 0, hex);
	assert_string_equal(hex, XXH128_EMPTY);
	hash_buffer_hex(NULL, 0, hex);
	assert_string_equal(hex, XXH128_EMPTY);
	hash_buffer_hex("abc", 3, hex);
	assert_string_equal(hex, XXH128_ABC);
	assert_int_equal(strlen(hex), 32);
}

static void test_streaming_equals_one_shot(void **state)
{
	static char data[10000];
	char one[HASH_HEX_LEN], streamed[HASH_HEX_LEN], again[HASH_HEX_LEN];
	struct hasher h;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 131 + 7);
	hash_buffer_hex(data, sizeof(data), one);

	hasher_init(&h);
	/* Uneven pieces cross XXH3's internal 256-byte stripes and 1 KiB blocks. */
	for (size_t off = 0, step = 1; off < sizeof(data); off += step, step = step * 3 + 1) {
		size_t n = step < sizeof(data) - off ? step : sizeof(data) - off;
		hasher_update(&h, data + off, n);
	}
	hasher_hex(&h, streamed);
	/* hasher_hex does not consume the state. */
	hasher_hex(&h, again);
	hasher_release(&h);
	assert_string_equal(streamed, one);
	assert_string_equal(again, one);

	hasher_init(&h);
	hasher_update(&h, "abc", 3);
	hasher_hex(&h, streamed);
	hasher_release(&h);
	assert_string_equal(streamed, XXH128_ABC);
	assert_null(h.state);
}

static void hex_of_strs(const char *a, const char *b, char out[HASH_HEX_LEN])
{
	struct hasher h;

	hasher_init(&h);
	hasher_add_str(&h, a);
	hasher_add_str(&h, b);
	hasher_hex(&h, out);
	hasher_release(&h);
}

static void test_add_str_is_length_prefixed(void **state)
{
	char ab_c[HASH_HEX_LEN], a_bc[HASH_HEX_LEN], ab_c2[HASH_HEX_LEN], expect[HASH_HEX_LEN];
	/* 8-byte little-endian length, then the bytes: 2,"ab",1,"c". */
	static const unsigned char framed[] = { 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b',
						1, 0, 0, 0, 0, 0, 0, 0, 'c' };

	(void)state;
	hex_of_strs("ab", "c", ab_c);
	hex_of_strs("a", "bc", a_bc);
	hex_of_strs("ab", "c", ab_c2);
	assert_string_not_equal(ab_c, a_bc);
	assert_string_equal(ab_c, ab_c2);
	hash_buffer_hex(framed, sizeof(framed), expect);
	assert_string_equal(ab_c, expect);
}

static void test_add_i64_and_double(void **state)
{
	char pz[HASH_HEX_LEN], nz[HASH_HEX_LEN], nan1[HASH_HEX_LEN], nan2[HASH_HEX_LEN];
	char i64[HASH_HEX_LEN], expect[HASH_HEX_LEN];
	static const unsigned char le_minus2[8] = { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct hasher h;

	(void)state;
	hasher_init(&h);
	hasher_add_i64(&h, -2);
	hasher_hex(&h, i64);
	hasher_release(&h);
	hash_buffer_hex(le_minus2, sizeof(le_minus2), expect);
	assert_string_equal(i64, expect);

	hasher_init(&h);
	hasher_add_double(&h, 0.0);
	hasher_hex(&h, pz);
	hasher_release(&h);
	hasher_init(&h);
	hasher_add_double(&h, -0.0);
	hasher_hex(&h, nz);
	hasher_release(&h);
	assert_string_not_equal(pz, nz);

	hasher_init(&h);
	hasher_add_double(&h, NAN);
	hasher_hex(&h, nan1);
	hasher_release(&h);
	hasher_init(&h);
	hasher_add_double(&h, -NAN);
	hasher_hex(&h, nan2);
	hasher_release(&h);
	assert_string_equal(nan1, nan2);
	assert_string_not_equal(nan1, pz);
}

static void test_file_hash(void **state)
{
	char *dir = test_scratch_dir();
	char *path, *empty;
	char file_hex[HASH_HEX_LEN], buf_hex[HASH_HEX_LEN];
	struct ltv_err err = { 0, "" };
	/* Larger than one 64 KiB read chunk so the loop runs more than once. */
	const size_t n = 200000;
	char *text = malloc(n + 1);
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)('a' + i % 26);
	text[n] = '\0';
	path = test_write_file(dir, "big.txt", text);
	assert_non_null(path);
	assert_int_equal(hash_file_hex(path, file_hex, &err), 0);
	hash_buffer_hex(text, n, buf_hex);
	assert_string_equal(file_hex, buf_hex);

	empty = test_write_file(dir, "empty.txt", "");
	assert_non_null(empty);
	assert_int_equal(hash_file_hex(empty, file_hex, &err), 0);
	assert_string_equal(file_hex, XXH128_EMPTY);

	f = fopen(empty, "wb");
	assert_non_null(f);
	fputs("abc", f);
	fclose(f);
	assert_int_equal(hash_file_hex(empty, file_hex, &err), 0);
	assert_string_equal(file_hex, XXH128_ABC);

	remove(path);
	remove(empty);
	remove(dir);
	free(path);
	free(empty);
	free(dir);
	free(text);
}

/*
 * A file of 8 MB or more is read on a thread while the caller hashes it
 * (src/hash.c): the same hash as the bytes hashed at once, for a file that
 * ends inside a 1 MB chunk, and one that ends on a chunk's last byte.
 */
static void test_file_hash_read_on_a_thread(void **state)
{
	char *dir = test_scratch_dir();
	const size_t sizes[] = { ((size_t)9 << 20) + 12345, (size_t)10 << 20 };
	char file_hex[HASH_HEX_LEN], buf_hex[HASH_HEX_LEN];
	struct ltv_err err = { 0, "" };

	(void)state;
	assert_non_null(dir);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		const size_t n = sizes[k];
		unsigned char *bytes = malloc(n);
		char *path = xasprintf("%s/large%zu.bin", dir, k);
		uint64_t x = 88172645463325252ull + k;
		FILE *f;

		assert_non_null(bytes);
		for (size_t i = 0; i < n; i++) { /* xorshift: no two chunks alike */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			bytes[i] = (unsigned char)x;
		}
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(bytes, 1, n, f), n);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(hash_file_hex(path, file_hex, &err), 0);
		hash_buffer_hex(bytes, n, buf_hex);
		assert_string_equal(file_hex, buf_hex);
		/* One byte changed in the last chunk changes the hash. */
		bytes[n - 1] ^= 1;
		hash_buffer_hex(bytes, n, buf_hex);
		assert_string_not_equal(file_hex, buf_hex);
		remove(path);
		free(path);
		free(bytes);
	}
	remove(dir);
	free(dir);
}

static void test_missing_file(void **state)
{
	char hex[HASH_HEX_LEN];
	struct ltv_err err = { 0, "" };
	const char *path = "/nonexistent-ltv-dir/users.csv";

	(void)state;
	assert_int_equal(hash_file_hex(path, hex, &err), LTV_EIO);
	assert_int_equal(err.code, LTV_EIO);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_streaming_equals_one_shot),
		cmocka_unit_test(test_add_str_is_length_prefixed),
		cmocka_unit_test(test_add_i64_and_double),
		cmocka_unit_test(test_file_hash),
		cmocka_unit_test(test_file_hash_read_on_a_thread),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
