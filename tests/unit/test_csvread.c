/*
 * Unit tests for csvread.c: RFC 4180 quoting, physical line numbers of
 * records after multi-line fields, CRLF, BOM, blank lines, malformed input
 * messages, records spanning the reader's 64 KiB chunks, and csv_write_field.
 */
#include "testutil.h"

#include "ltv/common.h"
#include "ltv/csvread.h"

struct fixture {
	char *dir;
	char *path;
	struct csv_reader *r;
	struct ltv_err err;
};

static struct fixture *fx_open(const char *text)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->dir = test_scratch_dir();
	assert_non_null(fx->dir);
	fx->path = test_write_file(fx->dir, "in.csv", text);
	assert_non_null(fx->path);
	fx->r = csv_reader_open(fx->path, &fx->err);
	assert_non_null(fx->r);
	return fx;
}

static void fx_close(struct fixture *fx)
{
	csv_reader_free(fx->r);
	remove(fx->path);
	remove(fx->dir);
	free(fx->path);
	free(fx->dir);
	free(fx);
}

/* Reads one record and checks its line and fields ("|"-joined). */
static void expect_record(struct fixture *fx, size_t line, size_t n, const char *const *want)
{
	char **fields = NULL;
	size_t got_n = 0, got_line = 0;
	int ret = csv_reader_next(fx->r, &fields, &got_n, &got_line, &fx->err);

	if (ret != 1)
		fail_msg("expected a record at line %zu, got %d (%s)", line, ret, fx->err.msg);
	assert_int_equal(got_line, line);
	assert_int_equal(got_n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(fields[i], want[i]);
}

static void expect_eof(struct fixture *fx)
{
	char **fields;
	size_t n, line;

	assert_int_equal(csv_reader_next(fx->r, &fields, &n, &line, &fx->err), 0);
	/* End of file is sticky. */
	assert_int_equal(csv_reader_next(fx->r, &fields, &n, &line, &fx->err), 0);
}

#define REC(fx, line, ...)                                                              \
	do {                                                                            \
		static const char *const want_[] = { __VA_ARGS__ };                     \
		expect_record((fx), (line), sizeof(want_) / sizeof(want_[0]), want_);   \
	} while (0)

static void test_simple(void **state)
{
	struct fixture *fx = fx_open("user_id,amount\nu1,3.5\nu2,\n,x\n");

	(void)state;
	REC(fx, 1, "user_id", "amount");
	REC(fx, 2, "u1", "3.5");
	REC(fx, 3, "u2", "");
	REC(fx, 4, "", "x");
	expect_eof(fx);
	assert_int_equal(csv_reader_bytes_read(fx->r), 29);
	assert_int_equal(csv_reader_file_size(fx->r), 29);
	assert_string_equal(csv_reader_path(fx->r), fx->path);
	fx_close(fx);
}

static void test_quoted_fields_and_lines(void **state)
{
	struct fixture *fx = fx_open("id,note,n\n"
				     "1,\"a, b\",2\n"
				     "2,\"say \"\"hi\"\"\",3\n"
				     "3,\"line one\nline two\nline three\",4\n"
				     "4,\"\",5\n"
				     "\"5\nx\",y,z\n"
				     "6,after,7\n");

	(void)state;
	REC(fx, 1, "id", "note", "n");
	REC(fx, 2, "1", "a, b", "2");
	REC(fx, 3, "2", "say \"hi\"", "3");
	REC(fx, 4, "3", "line one\nline two\nline three", "4");
	REC(fx, 7, "4", "", "5");
	REC(fx, 8, "5\nx", "y", "z");
	REC(fx, 10, "6", "after", "7");
	expect_eof(fx);
	fx_close(fx);
}

static void test_crlf_bom_blank_lines(void **state)
{
	struct fixture *fx = fx_open("\xEF\xBB\xBFid,v\r\n"
				     "\r\n"
				     "a,1\r\n"
				     "\n"
				     "   \n"
				     "b,\"x\r\ny\"\r\n"
				     "c,3"); /* no final newline */

	(void)state;
	/* The BOM must not leak into the first header name. */
	REC(fx, 1, "id", "v");
	REC(fx, 3, "a", "1");
	REC(fx, 6, "b", "x\r\ny");
	REC(fx, 8, "c", "3");
	expect_eof(fx);
	fx_close(fx);
}

/* A lone CR ends a record without starting a new physical line. */
static void test_lone_cr(void **state)
{
	struct fixture *fx = fx_open("h\r\"x\ny\",a\rc\n");

	(void)state;
	REC(fx, 1, "h");
	REC(fx, 1, "x\ny", "a");
	REC(fx, 2, "c");
	expect_eof(fx);
	fx_close(fx);
}

static void test_empty_and_bom_only(void **state)
{
	struct fixture *fx = fx_open("");

	(void)state;
	expect_eof(fx);
	fx_close(fx);
	fx = fx_open("\xEF\xBB\xBF");
	expect_eof(fx);
	fx_close(fx);
	fx = fx_open("\n\n\r\n");
	expect_eof(fx);
	fx_close(fx);
}

static void test_unquoted_blanks_trimmed(void **state)
{
	struct fixture *fx = fx_open(" a , b\t,\" c \"\n");

	(void)state;
	/* libcsv trims blanks around unquoted fields; quoting keeps them. */
	REC(fx, 1, "a", "b", " c ");
	expect_eof(fx);
	fx_close(fx);
}

static void expect_error(struct fixture *fx, int code, const char *needle)
{
	char **fields;
	size_t n, line;

	assert_int_equal(csv_reader_next(fx->r, &fields, &n, &line, &fx->err), code);
	assert_int_equal(fx->err.code, code);
	if (!strstr(fx->err.msg, needle))
		fail_msg("message '%s' lacks '%s'", fx->err.msg, needle);
}

static void test_unterminated_quote(void **state)
{
	struct fixture *fx = fx_open("id,note\n1,ok\n\n2,\"never\nclosed\n");
	char want[4200];

	(void)state;
	REC(fx, 1, "id", "note");
	REC(fx, 2, "1", "ok");
	snprintf(want, sizeof(want), "%s:4: unterminated quoted field (field 2)", fx->path);
	expect_error(fx, LTV_EINVAL, want);
	assert_non_null(strstr(fx->err.msg, "closing quote"));
	/* A failed reader keeps failing rather than resuming mid-record. */
	expect_error(fx, LTV_EINVAL, want);
	fx_close(fx);
}

static void test_stray_quote(void **state)
{
	struct fixture *fx = fx_open("id,name\n1,\"a\"\n\n2,ab\"c\n");
	char want[4200];

	(void)state;
	REC(fx, 1, "id", "name");
	REC(fx, 2, "1", "a");
	snprintf(want, sizeof(want), "%s:4: misplaced quote in field 2", fx->path);
	expect_error(fx, LTV_EINVAL, want);
	fx_close(fx);

	/* Text after a closing quote is malformed too. */
	fx = fx_open("x\n\"ab\"c\n");
	REC(fx, 1, "x");
	snprintf(want, sizeof(want), "%s:2: misplaced quote in field 1", fx->path);
	expect_error(fx, LTV_EINVAL, want);
	fx_close(fx);
}

static void test_missing_file(void **state)
{
	struct ltv_err err = { 0, "" };
	struct csv_reader *r = csv_reader_open("/nonexistent-ltv/users.csv", &err);

	(void)state;
	assert_null(r);
	assert_int_equal(err.code, LTV_EIO);
	assert_non_null(strstr(err.msg, "/nonexistent-ltv/users.csv"));
	csv_reader_free(NULL);
}

/* Records and a long quoted field straddle the 64 KiB read boundaries. */
static void test_across_chunks(void **state)
{
	const size_t n_rows = 20000;
	const size_t big = 150000;
	size_t cap = n_rows * 40 + big + 100, len = 0;
	char *text = malloc(cap);
	char *bigfield = malloc(big + 1);
	struct fixture *fx;
	char **fields;
	size_t n, line;
	char want[32];

	(void)state;
	assert_non_null(text);
	assert_non_null(bigfield);
	len += (size_t)snprintf(text + len, cap - len, "k,v\n");
	for (size_t i = 0; i < n_rows; i++) {
		if (i == n_rows / 2) {
			/* One field of 150 KB holding 1,000 newlines. */
			text[len++] = '"';
			for (size_t j = 0; j < big; j++)
				bigfield[j] = text[len++] = (j % 150 == 149) ? '\n' : 'q';
			bigfield[big] = '\0';
			len += (size_t)snprintf(text + len, cap - len, "\",big\n");
		}
		len += (size_t)snprintf(text + len, cap - len, "key%zu,%zu\r\n", i, i * 7);
	}
	text[len] = '\0';
	fx = fx_open(text);

	REC(fx, 1, "k", "v");
	for (size_t i = 0; i < n_rows; i++) {
		if (i == n_rows / 2) {
			assert_int_equal(csv_reader_next(fx->r, &fields, &n, &line, &fx->err), 1);
			assert_int_equal(line, 2 + i);
			assert_int_equal(n, 2);
			assert_int_equal(strlen(fields[0]), big);
			assert_memory_equal(fields[0], bigfield, big);
			assert_string_equal(fields[1], "big");
		}
		assert_int_equal(csv_reader_next(fx->r, &fields, &n, &line, &fx->err), 1);
		/* The big field spans 1,001 physical lines. */
		assert_int_equal(line, 2 + i + (i >= n_rows / 2 ? 1001 : 0));
		assert_int_equal(n, 2);
		snprintf(want, sizeof(want), "key%zu", i);
		assert_string_equal(fields[0], want);
		snprintf(want, sizeof(want), "%zu", i * 7);
		assert_string_equal(fields[1], want);
		assert_null(fields[2]);
	}
	expect_eof(fx);
	assert_int_equal(csv_reader_bytes_read(fx->r), len);
	fx_close(fx);
	free(text);
	free(bigfield);
}

static void test_write_field(void **state)
{
	char *dir = test_scratch_dir();
	char path[4200];
	char buf[256];
	FILE *f;
	size_t got;
	struct csv_reader *r;
	struct ltv_err err = { 0, "" };
	char **fields;
	size_t n, line;
	static const char *const vals[] = { "plain", "a,b", "say \"hi\"", "two\nlines",
					    "cr\rhere", "", " padded ", "x" };
	const size_t n_vals = sizeof(vals) / sizeof(vals[0]);

	(void)state;
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/out.csv", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < n_vals; i++) {
		if (i)
			fputc(',', f);
		csv_write_field(f, vals[i]);
	}
	fputc('\n', f);
	fclose(f);

	f = fopen(path, "rb");
	assert_non_null(f);
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",,"
				 "\" padded \",x\n");

	/* What is written reads back unchanged. */
	r = csv_reader_open(path, &err);
	assert_non_null(r);
	assert_int_equal(csv_reader_next(r, &fields, &n, &line, &err), 1);
	assert_int_equal(n, n_vals);
	assert_int_equal(line, 1);
	for (size_t i = 0; i < n_vals; i++)
		assert_string_equal(fields[i], vals[i]);
	csv_reader_free(r);
	remove(path);
	remove(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_quoted_fields_and_lines),
		cmocka_unit_test(test_crlf_bom_blank_lines),
		cmocka_unit_test(test_lone_cr),
		cmocka_unit_test(test_empty_and_bom_only),
		cmocka_unit_test(test_unquoted_blanks_trimmed),
		cmocka_unit_test(test_unterminated_quote),
		cmocka_unit_test(test_stray_quote),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_across_chunks),
		cmocka_unit_test(test_write_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
