/*
 * Unit tests for csvread.c: RFC 4180 quoting, physical line numbers of
 * records after multi-line fields, CRLF, BOM, blank lines, malformed input
 * messages, records spanning the reader's 64 KiB chunks, and csv_write_field;
 * fields that are not usable text (NUL bytes, invalid UTF-8, over
 * CSV_FIELD_MAX), and the fast path for quote-free lines against libcsv on
 * random input.
 */
#include "testutil.h"

#include "ltv/common.h"
#include "ltv/csvread.h"
#include "ltv/hash.h"

#include <zlib.h>

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

/* Writes len bytes (NULs included) to dir/in.csv and opens a reader on it. */
static struct fixture *fx_open_bytes(const char *bytes, size_t len)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	FILE *f;

	assert_non_null(fx);
	fx->dir = test_scratch_dir();
	assert_non_null(fx->dir);
	fx->path = xasprintf("%s/in.csv", fx->dir);
	f = fopen(fx->path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
	fx->r = csv_reader_open(fx->path, &fx->err);
	assert_non_null(fx->r);
	return fx;
}

/* Reads the next record and checks its line, field count and fault. */
static void expect_fault(struct fixture *fx, size_t line, size_t n, enum csv_fault_kind kind,
			 size_t field, size_t offset)
{
	char **fields;
	size_t got_n, got_line;
	struct csv_fault fault;

	assert_int_equal(csv_reader_next(fx->r, &fields, &got_n, &got_line, &fx->err), 1);
	assert_int_equal(got_line, line);
	assert_int_equal(got_n, n);
	csv_reader_fault(fx->r, &fault);
	assert_int_equal(fault.kind, kind);
	if (kind != CSV_FAULT_NONE) {
		assert_int_equal(fault.field, field);
		assert_int_equal(fault.offset, offset);
	}
}

/*
 * A NUL byte inside a field is flagged with its field and byte, quoted or
 * not, on the fast path and through libcsv (before, "9\0.99" read as "9").
 */
static void test_nul_bytes(void **state)
{
	static const char text[] = "id,cost\n"
				   "u1,9\0.99\n"
				   "u00000006\0EXTRA,1\n"
				   "\"q\0x\",2\n"
				   "u2,3\n";

	for (int fast = 1; fast >= 0; fast--) {
		struct fixture *fx = fx_open_bytes(text, sizeof(text) - 1);
		char why[256];
		struct csv_fault fault;

		(void)state;
		csv_reader_set_fast_path(fx->r, fast);
		expect_fault(fx, 1, 2, CSV_FAULT_NONE, 0, 0);
		expect_fault(fx, 2, 2, CSV_FAULT_NUL, 1, 1);
		csv_reader_fault(fx->r, &fault);
		csv_fault_describe(&fault, why, sizeof(why));
		assert_non_null(strstr(why, "NUL byte at byte 2"));
		expect_fault(fx, 3, 2, CSV_FAULT_NUL, 0, 9);
		expect_fault(fx, 4, 2, CSV_FAULT_NUL, 0, 1);
		expect_fault(fx, 5, 2, CSV_FAULT_NONE, 0, 0);
		expect_eof(fx);
		fx_close(fx);
	}
}

/* UTF-8: valid text passes; stray, truncated, overlong and surrogate bytes are flagged. */
static void test_invalid_utf8(void **state)
{
	static const char text[] = "a,b\n"
				   "caf\xc3\xa9,\xf0\x9f\x98\x80 ok\n"  /* é and an emoji */
				   "x,ab\xff\n"                         /* stray byte */
				   "\"x\xc3\",y\n"                      /* truncated sequence */
				   "\xc0\x80,y\n"                       /* overlong NUL */
				   "y,\xed\xa0\x80\n"                   /* a surrogate */
				   "y,\xf4\x90\x80\x80\n"               /* above U+10FFFF */
				   "z,\"\xe2\x82\xac\"\n";              /* the euro sign, quoted */

	for (int fast = 1; fast >= 0; fast--) {
		struct fixture *fx = fx_open_bytes(text, sizeof(text) - 1);

		(void)state;
		csv_reader_set_fast_path(fx->r, fast);
		expect_fault(fx, 1, 2, CSV_FAULT_NONE, 0, 0);
		expect_fault(fx, 2, 2, CSV_FAULT_NONE, 0, 0);
		expect_fault(fx, 3, 2, CSV_FAULT_UTF8, 1, 2);
		expect_fault(fx, 4, 2, CSV_FAULT_UTF8, 0, 1);
		expect_fault(fx, 5, 2, CSV_FAULT_UTF8, 0, 0);
		expect_fault(fx, 6, 2, CSV_FAULT_UTF8, 1, 1);
		expect_fault(fx, 7, 2, CSV_FAULT_UTF8, 1, 1);
		expect_fault(fx, 8, 2, CSV_FAULT_NONE, 0, 0);
		expect_eof(fx);
		fx_close(fx);
	}
}

/* A field of CSV_FIELD_MAX bytes passes, one byte more is flagged with its length. */
static void test_field_limit(void **state)
{
	const size_t big = CSV_FIELD_MAX + 1;
	char *text = xmalloc(2 * big + 64);
	size_t len = 0;

	(void)state;
	len += (size_t)snprintf(text, 64, "a,b\n");
	memset(text + len, 'x', big - 1);
	len += big - 1;
	len += (size_t)snprintf(text + len, 64, ",1\n\"");
	memset(text + len, 'y', big);
	len += big;
	len += (size_t)snprintf(text + len, 64, "\",2\n3,4\n");
	for (int fast = 1; fast >= 0; fast--) {
		struct fixture *fx = fx_open_bytes(text, len);

		csv_reader_set_fast_path(fx->r, fast);
		expect_fault(fx, 1, 2, CSV_FAULT_NONE, 0, 0);
		expect_fault(fx, 2, 2, CSV_FAULT_NONE, 0, 0);
		expect_fault(fx, 3, 2, CSV_FAULT_TOO_LONG, 0, big);
		expect_fault(fx, 4, 2, CSV_FAULT_NONE, 0, 0);
		expect_eof(fx);
		fx_close(fx);
	}
	free(text);
}

/*
 * The fast path gives what libcsv gives, record by record (fields, lines,
 * faults, errors), on random files of commas, quotes, blanks, CR, LF, NUL and
 * high bytes, long enough to cross the 64 KiB chunks.
 */
/*
 * A byte of a mostly plain file: letters, digits and delimiters, with one
 * special byte (blank, quote, NUL, high byte, CR) in 64 of the others and
 * line breaks 1 in 2^(1 + round % 7) of their turns (the rest delimiters), so
 * lines run from a few fields to over a hundred: what the plain-line scan of
 * the fast path splits 16 bytes at a time, with the odd line it must leave to
 * the byte-by-byte path or to libcsv.
 */
static char plain_byte(char c, char delim, int round, uint64_t *seed)
{
	if (c == '\n')
		return test_rng_next(seed) % (2u << (round % 7)) == 0 ? '\n' : delim;
	if (c == delim || test_rng_next(seed) % 64 == 0)
		return c;
	return "abcxyz0123456789.-_:T"[test_rng_next(seed) % 21];
}

/*
 * Random files read by the fast path and by libcsv alone (read_ahead 0), or
 * by the fast path without and with read-ahead (read_ahead 1), with
 * delimiter delim: the same records, lines, faults and errors. With plain,
 * the files are mostly plain lines (plain_byte).
 */
static void fast_path_matches_in(char delim, int rounds, int read_ahead, int plain)
{
	static const char alphabet[] = { 'a', 'b', '1', ',', ',', ' ', '\t', '\n', '\n', '\r',
					 '"', '.', '\0', (char)0xc3, (char)0xa9, (char)0xff, ';', ';' };
	uint64_t seed = 42 + (uint64_t)delim;

	for (int round = 0; round < rounds; round++) {
		const size_t len = round < 30 ? 200 + (size_t)(test_rng_next(&seed) % 2000)
					      : 150000 + (size_t)(test_rng_next(&seed) % 50000);
		char *text = xmalloc(len);
		struct fixture *a, *b;
		int quotes = round % 3 != 0; /* a third of the files have no quote at all */

		for (size_t i = 0; i < len; i++) {
			char c = alphabet[test_rng_next(&seed) % sizeof(alphabet)];

			/* keep quotes rare, so most records are well formed */
			if (c == '"' && (!quotes || test_rng_next(&seed) % 8 != 0))
				c = 'q';
			text[i] = plain ? plain_byte(c, delim, round, &seed) : c;
		}
		a = fx_open_bytes(text, len);
		b = fx_open_bytes(text, len);
		assert_int_equal(csv_reader_set_delimiter(a->r, delim), 0);
		assert_int_equal(csv_reader_set_delimiter(b->r, delim), 0);
		if (read_ahead)
			csv_reader_set_read_ahead(b->r, 1);
		else
			csv_reader_set_fast_path(b->r, 0);
		for (;;) {
			char **fa, **fb;
			size_t na, nb, la, lb;
			struct csv_fault ka, kb;
			int ra = csv_reader_next(a->r, &fa, &na, &la, &a->err);
			int rb = csv_reader_next(b->r, &fb, &nb, &lb, &b->err);

			assert_int_equal(ra, rb);
			if (ra < 0) /* the same message, but for the scratch directory */
				assert_string_equal(strstr(a->err.msg, "in.csv:"),
						    strstr(b->err.msg, "in.csv:"));
			if (ra != 1)
				break;
			assert_int_equal(la, lb);
			assert_int_equal(na, nb);
			for (size_t i = 0; i < na; i++)
				assert_string_equal(fa[i], fb[i]);
			csv_reader_fault(a->r, &ka);
			csv_reader_fault(b->r, &kb);
			assert_int_equal(ka.kind, kb.kind);
			assert_int_equal(ka.field, kb.field);
			assert_int_equal(ka.offset, kb.offset);
		}
		fx_close(a);
		fx_close(b);
		free(text);
	}
}

static void fast_path_matches(char delim, int rounds, int read_ahead)
{
	fast_path_matches_in(delim, rounds, read_ahead, 0);
}

static void test_fast_path_matches_libcsv(void **state)
{
	(void)state;
	fast_path_matches(',', 40, 0);
}

/* Mostly plain lines, split 16 bytes at a time, against libcsv and with read-ahead. */
static void test_plain_lines_match_libcsv(void **state)
{
	(void)state;
	fast_path_matches_in(',', 40, 0, 1);
	fast_path_matches_in(';', 15, 0, 1);
	fast_path_matches_in('\t', 15, 0, 1);
	fast_path_matches_in(',', 20, 1, 1);
}

/*
 * Records handed out in batches (csv_reader_next_batch, as ingest's events
 * worker reads them) carry the faults csv_reader_next gives without
 * read-ahead: files of 150-200 KB with NULs and bad UTF-8 in many records,
 * so each batch holds many faults, kept apart from the records.
 */
static void test_batch_faults_match(void **state)
{
	static const char alphabet[] = { 'a', 'b', '1', ',', ',', '\n', '\n', '.', '\0',
					 (char)0xc3, (char)0xa9, (char)0xff };
	uint64_t seed = 7;

	(void)state;
	for (int round = 0; round < 6; round++) {
		const size_t len = 150000 + (size_t)(test_rng_next(&seed) % 50000);
		char *text = xmalloc(len);
		struct fixture *a, *b;
		struct csv_batch *batch;
		struct csv_fields io = { 0 };
		size_t faults = 0, batches = 0;

		for (size_t i = 0; i < len; i++)
			text[i] = alphabet[test_rng_next(&seed) % sizeof(alphabet)];
		a = fx_open_bytes(text, len);
		b = fx_open_bytes(text, len);
		csv_reader_set_read_ahead(b->r, 1);
		while (csv_reader_next_batch(b->r, &batch, &b->err) == 1) {
			batches++;
			for (size_t i = 0; i < csv_batch_count(batch); i++) {
				char **fa;
				size_t na, la, lb;
				struct csv_fault ka, kb;

				assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 1);
				csv_batch_record(batch, i, &io, &lb, &kb);
				csv_reader_fault(a->r, &ka);
				assert_int_equal(la, lb);
				assert_int_equal(na, io.n);
				assert_int_equal(ka.kind, kb.kind);
				assert_int_equal(ka.field, kb.field);
				assert_int_equal(ka.offset, kb.offset);
				assert_int_equal(ka.byte, kb.byte);
				faults += ka.kind != CSV_FAULT_NONE;
			}
			csv_reader_give_back(b->r, batch);
		}
		{
			char **fa;
			size_t na, la;

			assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 0);
		}
		assert_true(batches > 1);
		assert_true(faults > 100);
		free(io.fields);
		fx_close(a);
		fx_close(b);
		free(text);
	}
}

/*
 * Read-ahead hands over the records of one read at a time, with a record cut
 * by the read's end carried into the next: files of 150-200 KB span several
 * reads, quotes (with newlines inside) cross them, and a malformed quote
 * fails after the good records before it, as without read-ahead.
 */
static void test_read_ahead_matches(void **state)
{
	(void)state;
	fast_path_matches(',', 40, 1);
	fast_path_matches(';', 10, 1);
}

/*
 * Takes b's batches to its end (split by the taker when split is set, as raw
 * batches are) and checks each record, line and fault against a's next
 * record read alone; counts records and faults. Returns the last
 * csv_reader_next_batch's result (0 at the end, -1 on a failure).
 */
static int batches_match_reader(struct fixture *b, struct fixture *a, int split, struct csv_fields *io,
				size_t *n_records, size_t *n_faults)
{
	struct csv_batch *batch;
	char **fa;
	size_t na, la;
	int ret;

	while ((ret = csv_reader_next_batch(b->r, &batch, &b->err)) == 1) {
		if (split)
			csv_batch_split(batch);
		for (size_t i = 0; i < csv_batch_count(batch); i++) {
			struct csv_fault ka, kb;
			size_t lb;

			assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 1);
			csv_reader_fault(a->r, &ka);
			csv_batch_record(batch, i, io, &lb, &kb);
			assert_int_equal(lb, la);
			assert_int_equal(io->n, na);
			for (size_t k = 0; k < na; k++)
				assert_memory_equal(io->fields[k], fa[k], strlen(fa[k]) + 1);
			assert_int_equal(kb.kind, ka.kind);
			assert_int_equal(kb.field, ka.field);
			assert_int_equal(kb.offset, ka.offset);
			assert_int_equal(kb.byte, ka.byte);
			*n_faults += ka.kind != CSV_FAULT_NONE;
			(*n_records)++;
		}
		csv_reader_give_back(b->r, batch);
	}
	return ret;
}

/*
 * Batches (csv_reader_next_batch, as ingest's events workers take them)
 * give each record's fields, line and fault, its byte included, as
 * csv_reader_next without read-ahead: a 400 KB file, so several buffers, of
 * plain lines with now and then a NUL byte, bad UTF-8, a blank to trim or a
 * quoted field. The faults are kept apart from the records (csvread.c).
 */
static void test_batches_keep_faults(void **state)
{
	static const char *const odd[] = { "u\x00x", "\xc3(", "\xff", " pad ", "\"q,\nq\"" };
	const size_t cap = 400000;
	char *text = xmalloc(cap + 64);
	size_t len = 0, n_faults = 0, n_records = 0, want_faults = 0, want_records = 0;
	struct csv_fields io = { 0 };
	struct fixture *a, *b;
	char **fa;
	size_t na, la;
	int ret;

	(void)state;
	for (size_t i = 0; len < cap; i++) {
		const char *extra = i % 37 == 5 ? odd[i / 37 % 5] : "";
		const size_t extra_len = i / 37 % 5 == 0 && *extra ? 3 : strlen(extra);

		want_faults += *extra && i / 37 % 5 < 3; /* NUL, bad UTF-8 twice; a blank or a quote is none */
		want_records++;
		len += (size_t)snprintf(text + len, cap + 64 - len, "u%zu,2025-01-01T00:00:%02zuZ,", i, i % 60);
		memcpy(text + len, extra, extra_len);
		len += extra_len;
		text[len++] = '\n';
	}
	a = fx_open_bytes(text, len);
	b = fx_open_bytes(text, len);
	csv_reader_set_read_ahead(b->r, 1);
	assert_int_equal(csv_reader_next(b->r, &fa, &na, &la, &b->err), 1);
	assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 1);
	ret = batches_match_reader(b, a, 0, &io, &n_records, &n_faults);
	assert_int_equal(ret, 0);
	assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 0);
	assert_int_equal(n_records + 1, want_records); /* the first, read alone above */
	assert_int_equal(n_faults, want_faults);
	assert_true(n_faults > 100);
	free(io.fields);
	fx_close(a);
	fx_close(b);
	free(text);
}

/*
 * Raw batches (csv_reader_set_raw_batches, as score's and ingest's events
 * workers split their own) give the records, lines, faults and the failure
 * of csv_reader_next without read-ahead: files of 200-300 KB, so many
 * buffers, of plain lines with now and then a quoted field holding a
 * newline (a buffer that the reading thread splits itself), CR LF or CR
 * endings, blank lines, NULs, bad UTF-8, trimmed blanks; some without a
 * last line end, some ending in an open quote (the failure after every
 * good record).
 */
static void test_raw_batches_match(void **state)
{
	static const char *const odd[] = { "u\x00x", "\xc3(", " pad ", "\"q,\nq\"", "\r", "\r\n",
					   "\n", "\xff", "\t" };
	uint64_t seed = 11;

	(void)state;
	for (int round = 0; round < 8; round++) {
		const size_t cap = 200000 + (size_t)(test_rng_next(&seed) % 100000);
		const int quotes = round % 2, open_quote = round % 4 == 3, cut_end = round % 3 == 1;
		char *text = xmalloc(cap + 64);
		size_t len = 0, n_records = 0, n_faults = 0;
		struct csv_fields io = { 0 };
		struct fixture *a, *b;
		char **fa;
		size_t na, la;
		int ret, want;

		for (size_t i = 0; len < cap; i++) {
			const uint64_t pick = test_rng_next(&seed) % 400;
			/* A quoted field, rarer, only in every other file: the others are raw throughout. */
			const char *extra = pick < 9 && (pick != 3 || (quotes && i % 64 == 0)) ? odd[pick] : "";
			const size_t extra_len = pick == 0 ? 3 : strlen(extra);

			len += (size_t)snprintf(text + len, cap + 64 - len, "u%zu,%zu,", i, i % 97);
			memcpy(text + len, extra, extra_len);
			len += extra_len;
			text[len++] = '\n';
		}
		if (cut_end)
			len--; /* no line end after the last line */
		if (open_quote)
			len += (size_t)snprintf(text + len, 64, "u,\"open\n");
		a = fx_open_bytes(text, len);
		b = fx_open_bytes(text, len);
		csv_reader_set_read_ahead(b->r, 1);
		csv_reader_set_raw_batches(b->r, 1);
		assert_int_equal(csv_reader_next(b->r, &fa, &na, &la, &b->err), 1);
		assert_int_equal(csv_reader_next(a->r, &fa, &na, &la, &a->err), 1);
		ret = batches_match_reader(b, a, 1, &io, &n_records, &n_faults);
		want = csv_reader_next(a->r, &fa, &na, &la, &a->err);
		assert_int_equal(ret, want);
		if (open_quote) {
			assert_true(ret < 0); /* the same line and field; the paths differ */
			assert_string_equal(strchr(b->err.msg, ':'), strchr(a->err.msg, ':'));
		}
		assert_true(n_records > 10000);
		assert_true(n_faults > 10);
		free(io.fields);
		fx_close(a);
		fx_close(b);
		free(text);
	}
}

/* ';' and tab: the delimiter splits, a comma is text, a tab delimiter is never trimmed away. */
static void test_other_delimiters(void **state)
{
	struct fixture *fx = fx_open("a;b,c; d ;\"e;f\"\n1\t2\n");
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(csv_reader_set_delimiter(fx->r, ';'), 0);
	expect_record(fx, 1, 4, (const char *const[]){ "a", "b,c", "d", "e;f" });
	expect_record(fx, 2, 1, (const char *const[]){ "1\t2" });
	expect_eof(fx);
	fx_close(fx);
	fx = fx_open("a\tb,c\t\t\"d\te\"\n\tx\n");
	assert_int_equal(csv_reader_set_delimiter(fx->r, '\t'), 0);
	expect_record(fx, 1, 4, (const char *const[]){ "a", "b,c", "", "d\te" });
	expect_record(fx, 2, 2, (const char *const[]){ "", "x" });
	expect_eof(fx);
	assert_int_equal(csv_reader_set_delimiter(fx->r, '|'), LTV_EINVAL);
	fx_close(fx);
	(void)err;
	fast_path_matches(';', 15, 0);
	fast_path_matches('\t', 15, 0);
}

/* A gzip file gives the records of its plain text, with the same lines; a cut one fails. */
static void test_gzip(void **state)
{
	char *dir = test_scratch_dir(), *plain, *gz = NULL, *cut = NULL;
	struct ltv_err err = { 0 };
	struct csv_reader *a, *b;
	gzFile out;
	char **fa, **fb;
	size_t na, nb, la, lb, n_records = 0;
	int ra, rb;
	char *text = xmalloc(12000 * 64 + 1), *p = text;

	(void)state;
	for (int i = 0; i < 12000; i++)
		p += snprintf(p, 64, "u%d,\"camp,%d\",2025-01-%02dT00:00:00Z,%d.5\n", i, i % 7, 1 + i % 28, i);
	plain = test_write_file(dir, "plain.csv", text);
	gz = xasprintf("%s/plain.csv.gz", dir);
	out = gzopen(gz, "wb");
	assert_non_null(out);
	assert_int_equal(gzwrite(out, text, (unsigned)(p - text)), (int)(p - text));
	assert_int_equal(gzclose(out), Z_OK);
	a = csv_reader_open(plain, &err);
	b = csv_reader_open(gz, &err);
	assert_non_null(a);
	assert_non_null(b);
	csv_reader_set_read_ahead(b, 1); /* a thread decompresses and splits */
	do {
		ra = csv_reader_next(a, &fa, &na, &la, &err);
		rb = csv_reader_next(b, &fb, &nb, &lb, &err);
		assert_int_equal(ra, rb);
		if (ra != 1)
			break;
		n_records++;
		assert_int_equal(la, lb);
		assert_int_equal(na, nb);
		for (size_t i = 0; i < na; i++)
			assert_string_equal(fa[i], fb[i]);
	} while (1);
	assert_int_equal(n_records, 12000);
	assert_true(csv_reader_bytes_read(b) <= csv_reader_file_size(b));
	csv_reader_free(a);
	csv_reader_free(b);
	/* the first 3000 bytes of the compressed file: records, then an error naming the file */
	{
		FILE *f = fopen(gz, "rb");
		char buf[3000];
		size_t got = fread(buf, 1, sizeof(buf), f);

		fclose(f);
		cut = xasprintf("%s/cut.csv.gz", dir);
		f = fopen(cut, "wb");
		fwrite(buf, 1, got, f);
		fclose(f);
	}
	b = csv_reader_open(cut, &err);
	assert_non_null(b);
	csv_reader_set_read_ahead(b, 1);
	while ((rb = csv_reader_next(b, &fb, &nb, &lb, &err)) == 1)
		;
	assert_int_equal(rb, LTV_EIO);
	assert_non_null(strstr(err.msg, "cut.csv.gz': unexpected end of file, a truncated or damaged gzip file"));
	csv_reader_free(b);
	remove(plain);
	remove(gz);
	remove(cut);
	remove(dir);
	free(plain);
	free(gz);
	free(cut);
	free(dir);
	free(text);
}

/*
 * The hash a reader streams (csv_reader_hash_raw, csv_reader_raw_hash_hex)
 * of the bytes it reads is hash_file_hex's, read on the caller's thread or
 * the read-ahead thread, read to the end or stopped after a record, and for
 * a gzip file (its compressed bytes): ingest fingerprints by it.
 */
static void streamed_hash_matches(const char *path, int read_ahead, int records)
{
	struct ltv_err err = { 0 };
	struct csv_reader *r = csv_reader_open(path, &err);
	struct hasher h = { NULL };
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	char **f;
	size_t n, line;
	int ret = 1;

	assert_non_null(r);
	hasher_init(&h);
	csv_reader_hash_raw(r, &h);
	csv_reader_set_read_ahead(r, read_ahead);
	for (int i = 0; (records < 0 || i < records) && ret == 1; i++)
		ret = csv_reader_next(r, &f, &n, &line, &err);
	assert_true(ret >= 0);
	assert_int_equal(csv_reader_raw_hash_hex(r, got, &err), 0);
	assert_int_equal(hash_file_hex(path, want, &err), 0);
	assert_string_equal(got, want);
	hasher_release(&h);
	csv_reader_free(r);
}

static void test_streamed_hash(void **state)
{
	char *dir = test_scratch_dir(), *plain, *small, *gz;
	/* 5 MB: several of the reader's chunks, so the read-ahead thread hashes most of it */
	const int rows = 90000;
	char *text = xmalloc((size_t)rows * 64 + 1), *p = text;
	gzFile out;

	(void)state;
	for (int i = 0; i < rows; i++)
		p += snprintf(p, 64, "u%d,\"camp,%d\",2025-01-%02dT00:00:00Z,%d.5\n", i, i % 7,
			      1 + i % 28, i);
	plain = test_write_file(dir, "big.csv", text);
	small = test_write_file(dir, "small.csv", "a,b\n1,2\n3,4\n");
	gz = xasprintf("%s/big.csv.gz", dir);
	out = gzopen(gz, "wb");
	assert_non_null(out);
	assert_int_equal(gzwrite(out, text, (unsigned)(p - text)), (int)(p - text));
	assert_int_equal(gzclose(out), Z_OK);
	for (int ra = 0; ra <= 1; ra++) {
		streamed_hash_matches(plain, ra, -1);
		streamed_hash_matches(plain, ra, 1);
		streamed_hash_matches(plain, ra, 0);
		streamed_hash_matches(small, ra, -1);
		streamed_hash_matches(gz, ra, -1);
		streamed_hash_matches(gz, ra, 3);
	}
	remove(plain);
	remove(small);
	remove(gz);
	remove(dir);
	free(plain);
	free(small);
	free(gz);
	free(dir);
	free(text);
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
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_field_limit),
		cmocka_unit_test(test_fast_path_matches_libcsv),
		cmocka_unit_test(test_plain_lines_match_libcsv),
		cmocka_unit_test(test_read_ahead_matches),
		cmocka_unit_test(test_batches_keep_faults),
		cmocka_unit_test(test_batch_faults_match),
		cmocka_unit_test(test_raw_batches_match),
		cmocka_unit_test(test_other_delimiters),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_streamed_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
