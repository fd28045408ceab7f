/*
 * Unit tests for frame.c's packed columns (include/ltv/frame.h): a column of
 * at most 65,536 distinct values is held as 2-byte codes into a table of
 * them, else one whose every value is bit for bit a float as floats, and
 * every reader (frame_col, frame_column's widened copy, the hash, the stored
 * artefact, a load) sees the doubles it was built as, NaN payloads and -0.0
 * included; any other column stays doubles.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/frame.h"
#include "ltv/hash.h"
#include "ltv/registry.h"

/* more distinct values than a 2-byte code tells apart, and than frame.c's 4,096-row chunks */
#define ROWS 70000

/*
 * Coded: counts, days with two kinds of NaN, -0.0 and 0. Floats: a row
 * number (70,000 values, each a float). Doubles: money and a uid past 2^24
 * (70,000 values, not floats).
 */
static void build(struct frame *f)
{
	const uint64_t nan_bits = 0x7ff8000000000123u; /* a NaN with a payload of its own */
	double *count, *days, *money, *uid, *zero, *row;
	double odd_nan;

	memcpy(&odd_nan, &nan_bits, sizeof(odd_nan));
	frame_init(f, ROWS);
	count = frame_add_column(f, "count");
	days = frame_add_column(f, "days");
	money = frame_add_column(f, "money");
	uid = frame_add_column(f, "uid");
	zero = frame_add_column(f, "zero");
	row = frame_add_column(f, "row");
	for (size_t i = 0; i < ROWS; i++) {
		count[i] = (double)(i % 300);
		days[i] = i % 7 ? (double)(i % 61) : i % 2 ? NAN : odd_nan;
		money[i] = 0.01 * (double)i;
		uid[i] = 16777216.0 + (double)i; /* 16777217 is not a float */
		zero[i] = i % 2 ? -0.0 : 0.0;
		row[i] = (double)i;
	}
}

static const struct frame_packed *packed_of(const struct frame *f, const char *name)
{
	for (size_t j = 0; j < f->n_cols; j++)
		if (strcmp(f->names[j], name) == 0)
			return f->packed ? &f->packed[j] : NULL;
	fail_msg("no column %s", name);
	return NULL;
}

/* Bytes of build's frame compacted: 3 coded columns, 1 of floats, 2 of doubles. */
#define CODED_BYTES (3 * ROWS * sizeof(uint16_t) + (300 + 63 + 2) * sizeof(double))
#define PACKED_BYTES (CODED_BYTES + ROWS * sizeof(float) + 2 * ROWS * sizeof(double))

static void assert_same_bits(double a, double b, const char *col, size_t row)
{
	if (memcmp(&a, &b, sizeof(a)) != 0)
		fail_msg("column %s row %zu: %.17g, expected %.17g", col, row, a, b);
}

/* Every column of f reads as ref's, bit for bit, through frame_col and frame_column. */
static void assert_reads_as(const struct frame *f, const struct frame *ref)
{
	assert_int_equal(f->n_cols, ref->n_cols);
	for (size_t j = 0; j < ref->n_cols; j++) {
		const struct frame_col c = frame_col(f, ref->names[j]);
		const double *wide;

		assert_true(frame_col_found(c));
		for (size_t i = 0; i < ROWS; i++)
			assert_same_bits(frame_col_at(c, i), ref->cols[j][i], ref->names[j], i);
		wide = frame_column(f, ref->names[j]);
		assert_non_null(wide);
		for (size_t i = 0; i < ROWS; i++)
			assert_same_bits(wide[i], ref->cols[j][i], ref->names[j], i);
		/* one widened copy per column, whoever asks again */
		assert_ptr_equal(frame_column(f, ref->names[j]), wide);
	}
	assert_false(frame_col_found(frame_col(f, "absent")));
	assert_null(frame_column(f, "absent"));
}

static void content_hash(const struct frame *f, char hex[HASH_HEX_LEN])
{
	struct hasher h;

	hasher_init(&h);
	frame_hash(f, &h);
	hasher_hex(&h, hex);
	hasher_release(&h);
}

static void test_compact_keeps_every_value(void **state)
{
	struct frame ref, f;
	char before[HASH_HEX_LEN], after[HASH_HEX_LEN];
	size_t full;

	(void)state;
	build(&ref);
	build(&f);
	full = frame_bytes(&f);
	assert_int_equal(full, 6 * ROWS * sizeof(double));
	content_hash(&f, before);
	frame_compact(&f);
	assert_non_null(f.packed);
	assert_non_null(frame_col(&f, "count").code);
	assert_int_equal(packed_of(&f, "count")->n_table, 300);
	assert_non_null(frame_col(&f, "days").code);
	assert_int_equal(packed_of(&f, "days")->n_table, 63); /* 61 days, two NaNs */
	assert_non_null(frame_col(&f, "zero").code);
	assert_int_equal(packed_of(&f, "zero")->n_table, 2);  /* 0.0 and -0.0 */
	assert_non_null(frame_col(&f, "row").f);
	assert_null(frame_col(&f, "row").code);
	assert_non_null(frame_col(&f, "money").d);
	assert_non_null(frame_col(&f, "uid").d);
	assert_null(frame_col(&f, "uid").f);
	assert_null(frame_col(&f, "uid").code);
	assert_int_equal(frame_bytes(&f), PACKED_BYTES);
	content_hash(&f, after);
	assert_string_equal(after, before);
	/* compacting again changes nothing */
	frame_compact(&f);
	assert_int_equal(frame_bytes(&f), PACKED_BYTES);
	assert_reads_as(&f, &ref);
	/* frame_column widened all four packed columns: counted until the frame goes */
	assert_int_equal(frame_bytes(&f), PACKED_BYTES + 4 * ROWS * sizeof(double));
	content_hash(&f, after);
	assert_string_equal(after, before);
	frame_release(&f);
	frame_release(&ref);
}

/* A view (a copy of the column arrays with a column's doubles swapped in) reads the doubles. */
static void test_view_reads_its_doubles(void **state)
{
	struct frame f, view;
	double *swapped = xmalloc(ROWS * sizeof(double));
	size_t j = 0;

	(void)state;
	build(&f);
	frame_compact(&f);
	while (strcmp(f.names[j], "days") != 0)
		j++;
	for (size_t i = 0; i < ROWS; i++)
		swapped[i] = 1000.5 + (double)i;
	view = f;
	view.cols = xmalloc(f.n_cols * sizeof(double *));
	memcpy(view.cols, f.cols, f.n_cols * sizeof(double *));
	view.cols[j] = swapped;
	assert_non_null(packed_of(&view, "days")->code);
	for (size_t i = 0; i < ROWS; i++) {
		assert_same_bits(frame_col_at(frame_col(&view, "days"), i), swapped[i], "days", i);
		assert_same_bits(frame_column(&view, "days")[i], swapped[i], "days", i);
	}
	assert_ptr_equal(frame_column(&view, "days"), swapped);
	free(view.cols);
	free(swapped);
	frame_release(&f);
}

/* Stored from a compact frame: the same blobs as from the doubles; loaded back compact or not. */
static void test_save_and_load(void **state)
{
	char *dir = test_scratch_dir();
	char *path = xasprintf("%s/models/registry.sqlite", dir);
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_new a = { .name = "features", .run_id = "r1", .fingerprint = "fp",
				  .code_version = "1", .config = "k=v\n", .as_of = 1700000000 };
	struct frame ref, f, plain, compact;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	int64_t id = 0, version = 0;

	(void)state;
	build(&ref);
	build(&f);
	frame_compact(&f);
	content_hash(&ref, want);
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_run_start(reg, "r1", "test", INT64_MIN, "cfg", &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_artefact_create(reg, &a, &id, &version, &err), 0);
	assert_int_equal(frame_save(&f, reg, id, &err), 0);
	assert_int_equal(registry_artefact_finish(reg, id, want, "{}", NULL, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);

	assert_int_equal(frame_load(reg, id, NULL, &plain, &err), 0);
	assert_null(plain.packed);
	for (size_t j = 0; j < ref.n_cols; j++)
		assert_memory_equal(plain.cols[j], ref.cols[j], ROWS * sizeof(double));
	assert_int_equal(frame_load_compact(reg, id, NULL, &compact, &err), 0);
	assert_int_equal(frame_bytes(&compact), frame_bytes(&f));
	content_hash(&compact, got);
	assert_string_equal(got, want);
	assert_reads_as(&compact, &ref);

	frame_release(&compact);
	frame_release(&plain);
	frame_release(&f);
	frame_release(&ref);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_keeps_every_value),
		cmocka_unit_test(test_view_reads_its_doubles),
		cmocka_unit_test(test_save_and_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
