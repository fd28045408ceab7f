/*
 * Unit tests for frame.c's packed columns (include/ltv/frame.h): a column of
 * at most 65,536 distinct values is held as 2-byte codes into a table of
 * them, else one whose every value is bit for bit a float as floats, and
 * every reader (frame_col, frame_column's widened copy, the hash, the stored
 * artefact, a load) sees the doubles it was built as, NaN payloads and -0.0
 * included; any other column stays doubles.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>

#include "ltv/blob.h"
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

/* The same packing, column by column: kind, codes and table, floats or doubles, bit for bit. */
static void assert_same_packing(const struct frame *f, const struct frame *ref)
{
	assert_int_equal(f->n_cols, ref->n_cols);
	for (size_t j = 0; j < ref->n_cols; j++) {
		const struct frame_col a = frame_col_at_index(f, j), b = frame_col_at_index(ref, j);

		assert_string_equal(f->names[j], ref->names[j]);
		assert_int_equal(!a.d, !b.d);
		assert_int_equal(!a.f, !b.f);
		assert_int_equal(!a.code, !b.code);
		if (a.code) {
			assert_int_equal(f->packed[j].n_table, ref->packed[j].n_table);
			assert_memory_equal(a.table, b.table, f->packed[j].n_table * sizeof(double));
			assert_memory_equal(a.code, b.code, ROWS * sizeof(uint16_t));
		} else if (a.f) {
			assert_memory_equal(a.f, b.f, ROWS * sizeof(float));
		} else {
			assert_memory_equal(a.d, b.d, ROWS * sizeof(double));
		}
	}
}

/*
 * column_packer, fed by blocks of any size, packs a column as frame_compact
 * packs it whole: build's columns, plus one of floats that a late double
 * turns into doubles, and one whose first distinct values are not floats
 * (so past 65,536 of them it is doubles, not floats).
 */
static void test_packer_by_blocks_packs_as_compact(void **state)
{
	static const size_t blocks[] = { 1, 7, 4096, 32768, ROWS };
	struct frame ref;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	double *late, *early;

	(void)state;
	build(&ref);
	late = frame_add_column(&ref, "late_double");
	early = frame_add_column(&ref, "early_double");
	for (size_t i = 0; i < ROWS; i++) {
		late[i] = i == ROWS - 2 ? 0.1 : (double)i;
		early[i] = i < 10 ? 0.1 * (double)i : (double)i;
	}
	content_hash(&ref, want);
	for (size_t b = 0; b < sizeof(blocks) / sizeof(*blocks); b++) {
		struct frame f;

		frame_init(&f, ROWS);
		for (size_t j = 0; j < ref.n_cols; j++) {
			struct column_packer p;

			column_packer_init(&p, ROWS, 1);
			for (size_t at = 0; at < ROWS; at += blocks[b])
				column_packer_add(&p, ref.cols[j] + at,
						  ROWS - at < blocks[b] ? ROWS - at : blocks[b]);
			frame_add_packed_column(&f, ref.names[j], &p);
		}
		content_hash(&f, got);
		assert_string_equal(got, want);
		assert_reads_as(&f, &ref);
		frame_drop_widened(&f);
		if (b == 0) {
			struct frame whole;

			build(&whole);
			memcpy(frame_add_column(&whole, "late_double"), late, ROWS * sizeof(double));
			memcpy(frame_add_column(&whole, "early_double"), early, ROWS * sizeof(double));
			frame_compact(&whole);
			assert_non_null(frame_col(&whole, "late_double").d);
			assert_non_null(frame_col(&whole, "early_double").d);
			assert_same_packing(&f, &whole);
			frame_release(&whole);
		}
		/* no widened copy is left: the frame holds its packing only */
		assert_int_equal(frame_bytes(&f), PACKED_BYTES + 2 * ROWS * sizeof(double));
		frame_release(&f);
	}
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

/* A registry with one run started, for artefacts of frames. */
struct store {
	char *dir;
	struct registry *reg;
};

static void store_open(struct store *st)
{
	char *path;
	struct ltv_err err = { 0 };

	st->dir = test_scratch_dir();
	path = xasprintf("%s/models/registry.sqlite", st->dir);
	assert_int_equal(registry_open(path, 5, &st->reg, &err), 0);
	assert_int_equal(registry_run_start(st->reg, "r1", "test", INT64_MIN, "cfg", &err), 0);
	free(path);
}

static void store_close(struct store *st)
{
	registry_close(st->reg);
	test_scratch_free(st->dir);
}

/* A new features artefact in an open transaction. */
static int64_t store_begin(struct store *st)
{
	struct artefact_new a = { .name = "features", .run_id = "r1", .fingerprint = "fp",
				  .code_version = "1", .config = "k=v\n", .as_of = 1700000000 };
	struct ltv_err err = { 0 };
	int64_t id = 0, version = 0;

	assert_int_equal(registry_begin(st->reg, &err), 0);
	assert_int_equal(registry_artefact_create(st->reg, &a, &id, &version, &err), 0);
	return id;
}

static void store_commit(struct store *st, int64_t id)
{
	struct ltv_err err = { 0 };

	assert_int_equal(registry_artefact_finish(st->reg, id, "content", "{}", NULL, &err), 0);
	assert_int_equal(registry_commit(st->reg, &err), 0);
}

static int64_t store_frame(struct store *st, const struct frame *f)
{
	struct ltv_err err = { 0 };
	const int64_t id = store_begin(st);

	assert_int_equal(frame_save(f, st->reg, id, &err), 0);
	store_commit(st, id);
	return id;
}

/* Bytes of column blob name as stored. */
static size_t stored_len(struct store *st, int64_t id, const char *name)
{
	struct ltv_err err = { 0 };
	char key[64], head[1];
	size_t len = 0;

	snprintf(key, sizeof(key), "col:%s", name);
	assert_int_equal(registry_blob_peek(st->reg, id, key, head, sizeof(head), &len, &err), 0);
	return len;
}

/* Every column of f is bit for bit ref's, as doubles (not packed). */
static void assert_doubles_as(const struct frame *f, const struct frame *ref)
{
	assert_null(f->packed);
	assert_int_equal(f->n_cols, ref->n_cols);
	for (size_t j = 0; j < ref->n_cols; j++) {
		assert_string_equal(f->names[j], ref->names[j]);
		assert_memory_equal(f->cols[j], ref->cols[j], ROWS * sizeof(double));
	}
}

/* Bytes of a version 2 column blob's header: magic, version, rows, kind, table length. */
#define COLUMN_HEAD_V2 (8 + 4 + 8 + 4 + 4)

/*
 * Stored from a compact frame: each column as held (codes and their table,
 * floats, doubles: a version 2 column blob); loaded back compact (as
 * stored) or as doubles, the same values and hash either way.
 */
static void test_save_and_load(void **state)
{
	struct store st;
	struct ltv_err err = { 0 };
	struct frame ref, f, plain, compact;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	int64_t id;

	(void)state;
	build(&ref);
	build(&f);
	frame_compact(&f);
	content_hash(&ref, want);
	store_open(&st);
	id = store_frame(&st, &f);
	assert_int_equal(stored_len(&st, id, "count"),
			 COLUMN_HEAD_V2 + 300 * sizeof(double) + ROWS * sizeof(uint16_t));
	assert_int_equal(stored_len(&st, id, "row"), COLUMN_HEAD_V2 + ROWS * sizeof(float));
	assert_int_equal(stored_len(&st, id, "money"), COLUMN_HEAD_V2 + ROWS * sizeof(double));

	assert_int_equal(frame_load(st.reg, id, NULL, &plain, &err), 0);
	assert_doubles_as(&plain, &ref);
	assert_int_equal(frame_load_compact(st.reg, id, NULL, &compact, &err), 0);
	assert_int_equal(frame_bytes(&compact), frame_bytes(&f));
	assert_non_null(frame_col(&compact, "count").code);
	assert_non_null(frame_col(&compact, "row").f);
	assert_non_null(frame_col(&compact, "money").d);
	content_hash(&compact, got);
	assert_string_equal(got, want);
	assert_reads_as(&compact, &ref);

	frame_release(&compact);
	frame_release(&plain);
	frame_release(&f);
	frame_release(&ref);
	store_close(&st);
}

/*
 * Every kind a column is packed as, at its edges: coded extremes (the
 * largest and smallest doubles, a subnormal, both infinities, NaN payloads,
 * -0.0), exactly 65,536 distinct values (coded) and 65,537 (floats), large
 * floats (i * 2^100, FLT_MAX), and doubles with NaN and -0.0 among them.
 * Round trip through the registry, packed and as doubles, by name too.
 */
static void build_edges(struct frame *f)
{
	const uint64_t nan_bits = 0xfff0000000000abcu; /* a negative signalling NaN with a payload */
	const double extreme[] = { DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, INFINITY, -INFINITY,
				   NAN, -0.0, 0.0, 1e300 };
	double *ex, *c16, *c17, *big, *wide, odd_nan;

	memcpy(&odd_nan, &nan_bits, sizeof(odd_nan));
	frame_init(f, ROWS);
	ex = frame_add_column(f, "extreme");
	c16 = frame_add_column(f, "distinct_65536");
	c17 = frame_add_column(f, "distinct_65537");
	big = frame_add_column(f, "big_float");
	wide = frame_add_column(f, "wide");
	for (size_t i = 0; i < ROWS; i++) {
		ex[i] = i % 11 == 10 ? odd_nan : extreme[i % 11];
		c16[i] = (double)(i % 65536);
		c17[i] = (double)(i % 65537);
		big[i] = ldexp((double)i, 100);
		wide[i] = (1.0 + 1e-9 * (double)i) * 1e300;
	}
	big[1] = FLT_MAX;
	big[2] = -0.0;
	big[3] = -INFINITY;
	big[4] = NAN;
	wide[5] = -0.0;
	wide[6] = odd_nan;
}

static void test_packed_round_trip_every_kind(void **state)
{
	static const char *const some[] = { "wide", "extreme", NULL };
	struct store st;
	struct ltv_err err = { 0 };
	struct frame ref, f, plain, compact, part;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	int64_t id;

	(void)state;
	build_edges(&ref);
	build_edges(&f);
	content_hash(&ref, want);
	frame_compact(&f);
	assert_int_equal(packed_of(&f, "extreme")->n_table, 11);
	assert_int_equal(packed_of(&f, "distinct_65536")->n_table, 65536);
	assert_non_null(frame_col(&f, "distinct_65537").f);
	assert_non_null(frame_col(&f, "big_float").f);
	assert_non_null(frame_col(&f, "wide").d);
	store_open(&st);
	id = store_frame(&st, &f);

	assert_int_equal(frame_load(st.reg, id, NULL, &plain, &err), 0);
	assert_doubles_as(&plain, &ref);
	assert_int_equal(frame_load_compact(st.reg, id, NULL, &compact, &err), 0);
	assert_int_equal(packed_of(&compact, "distinct_65536")->n_table, 65536);
	assert_int_equal(frame_bytes(&compact), frame_bytes(&f));
	content_hash(&compact, got);
	assert_string_equal(got, want);
	assert_reads_as(&compact, &ref);
	/* only the columns named, in the order named */
	assert_int_equal(frame_load_compact(st.reg, id, some, &part, &err), 0);
	assert_int_equal(part.n_cols, 2);
	assert_string_equal(part.names[0], "wide");
	for (size_t i = 0; i < ROWS; i++)
		assert_same_bits(frame_col_at(frame_col(&part, "extreme"), i), ref.cols[0][i],
				 "extreme", i);

	frame_release(&part);
	frame_release(&compact);
	frame_release(&plain);
	frame_release(&f);
	frame_release(&ref);
	store_close(&st);
}

/*
 * frame_save_head and frame_save_columns in another order (the last columns,
 * the head, then the first two, as the features stage stores its base
 * columns while it adds more) store the blobs frame_save does, byte for byte,
 * and the frame loads back the same.
 */
static void test_save_in_parts(void **state)
{
	struct store st;
	struct ltv_err err = { 0 };
	struct frame f, loaded;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	int64_t whole, parts;

	(void)state;
	build(&f);
	frame_compact(&f);
	content_hash(&f, want);
	store_open(&st);
	whole = store_frame(&st, &f);
	parts = store_begin(&st);
	assert_int_equal(frame_save_columns(&f, 2, f.n_cols, st.reg, parts, &err), 0);
	assert_int_equal(frame_save_head(&f, st.reg, parts, &err), 0);
	assert_int_equal(frame_save_columns(&f, 0, 2, st.reg, parts, &err), 0);
	store_commit(&st, parts);
	for (size_t j = 0; j <= f.n_cols; j++) {
		char key[64];
		void *a = NULL, *b = NULL;
		size_t na = 0, nb = 0;

		if (j < f.n_cols)
			snprintf(key, sizeof(key), "col:%s", f.names[j]);
		else
			snprintf(key, sizeof(key), "frame");
		assert_int_equal(registry_blob_get(st.reg, whole, key, &a, &na, &err), 0);
		assert_int_equal(registry_blob_get(st.reg, parts, key, &b, &nb, &err), 0);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
		free(a);
		free(b);
	}
	assert_int_equal(frame_load_compact(st.reg, parts, NULL, &loaded, &err), 0);
	content_hash(&loaded, got);
	assert_string_equal(got, want);

	frame_release(&loaded);
	frame_release(&f);
	store_close(&st);
}

/* A frame saved as doubles (not compacted) loads as doubles, and compact as frame_compact packs it. */
static void test_doubles_saved_load_compact(void **state)
{
	struct store st;
	struct ltv_err err = { 0 };
	struct frame ref, compact;
	int64_t id;

	(void)state;
	build(&ref);
	store_open(&st);
	id = store_frame(&st, &ref);
	assert_int_equal(stored_len(&st, id, "count"), COLUMN_HEAD_V2 + ROWS * sizeof(double));
	assert_int_equal(frame_load_compact(st.reg, id, NULL, &compact, &err), 0);
	assert_int_equal(frame_bytes(&compact), PACKED_BYTES);
	assert_reads_as(&compact, &ref);
	frame_release(&compact);
	frame_release(&ref);
	store_close(&st);
}

/* The frame index blob as frame_save writes it (unchanged since version 1). */
static void put_index(struct store *st, int64_t id, const struct frame *f)
{
	struct blob_writer w;
	struct ltv_err err = { 0 };

	blob_writer_init(&w);
	blob_put_header(&w, "LTVFRAM1", 1);
	blob_put_u64(&w, f->n_rows);
	blob_put_u32(&w, (uint32_t)f->n_cols);
	for (size_t j = 0; j < f->n_cols; j++)
		blob_put_str(&w, f->names[j]);
	assert_int_equal(registry_blob_put(st->reg, id, "frame", w.data, w.len, &err), 0);
	blob_writer_release(&w);
}

/* A column blob as versions before 2 wrote every column: the header, then the doubles. */
static void put_column_v1(struct store *st, int64_t id, const char *name, const double *col,
			  size_t n_rows)
{
	struct blob_writer w;
	struct ltv_err err = { 0 };
	char key[64];

	blob_writer_init(&w);
	blob_put_header(&w, "LTVCOLF1", 1);
	blob_put_u64(&w, n_rows);
	blob_put_bytes(&w, col, n_rows * sizeof(double));
	snprintf(key, sizeof(key), "col:%s", name);
	assert_int_equal(registry_blob_put(st->reg, id, key, w.data, w.len, &err), 0);
	blob_writer_release(&w);
}

/* A registry written before column blob version 2 still loads, as doubles and compact. */
static void test_version_1_columns_load(void **state)
{
	struct store st;
	struct ltv_err err = { 0 };
	struct frame ref, plain, compact;
	char want[HASH_HEX_LEN], got[HASH_HEX_LEN];
	int64_t id;

	(void)state;
	build(&ref);
	content_hash(&ref, want);
	store_open(&st);
	id = store_begin(&st);
	put_index(&st, id, &ref);
	for (size_t j = 0; j < ref.n_cols; j++)
		put_column_v1(&st, id, ref.names[j], ref.cols[j], ROWS);
	store_commit(&st, id);

	assert_int_equal(frame_load(st.reg, id, NULL, &plain, &err), 0);
	assert_doubles_as(&plain, &ref);
	assert_int_equal(frame_load_compact(st.reg, id, NULL, &compact, &err), 0);
	assert_int_equal(frame_bytes(&compact), PACKED_BYTES);
	content_hash(&compact, got);
	assert_string_equal(got, want);
	assert_reads_as(&compact, &ref);
	frame_release(&compact);
	frame_release(&plain);
	frame_release(&ref);
	store_close(&st);
}

/*
 * A one-column frame of 4 rows whose column blob is a version 2 coded
 * column: its header says kind and n_table, n_written table values follow.
 */
static int64_t put_coded(struct store *st, uint32_t kind, uint32_t n_table, uint32_t n_written,
			 uint16_t top_code)
{
	const double table[2] = { 1.5, 2.5 };
	uint16_t codes[4] = { 0, 1, 0, top_code };
	struct blob_writer w;
	struct ltv_err err = { 0 };
	struct frame f;
	int64_t id = store_begin(st);

	frame_init(&f, 4);
	frame_add_column(&f, "c");
	put_index(st, id, &f);
	frame_release(&f);
	blob_writer_init(&w);
	blob_put_header(&w, "LTVCOLF1", 2);
	blob_put_u64(&w, 4);
	blob_put_u32(&w, kind);
	blob_put_u32(&w, n_table);
	blob_put_bytes(&w, table, n_written * sizeof(double));
	blob_put_bytes(&w, codes, sizeof(codes));
	assert_int_equal(registry_blob_put(st->reg, id, "col:c", w.data, w.len, &err), 0);
	blob_writer_release(&w);
	store_commit(st, id);
	return id;
}

/* A damaged or foreign column blob is refused, never read past its table. */
static void test_bad_column_blob_refused(void **state)
{
	struct store st;
	struct ltv_err err = { 0 };
	struct frame f;
	int64_t id;

	(void)state;
	store_open(&st);
	id = put_coded(&st, 2, 2, 2, 1);
	assert_int_equal(frame_load(st.reg, id, NULL, &f, &err), 0);
	assert_true(f.cols[0][3] == 2.5 && f.cols[0][2] == 1.5);
	frame_release(&f);

	id = put_coded(&st, 2, 2, 2, 2);
	assert_int_equal(frame_load_compact(st.reg, id, NULL, &f, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "code past"));
	id = put_coded(&st, 7, 2, 2, 1);
	assert_int_equal(frame_load(st.reg, id, NULL, &f, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "kind"));
	id = put_coded(&st, 2, 2, 1, 1); /* a table value short of what its header says */
	assert_int_equal(frame_load(st.reg, id, NULL, &f, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "bytes"));
	store_close(&st);
}

/*
 * frame_compact_threads packs as frame_compact does (same columns packed
 * the same way, same bytes, same hash), and the frame's hash in two parts,
 * the first read through a view while columns are added to the frame,
 * is frame_hash's (what the features stage does: features_complete).
 */
static void test_compact_threads_and_hash_parts(void **state)
{
	struct frame ref, one, two, view;
	struct hasher h;
	char a[HASH_HEX_LEN], b[HASH_HEX_LEN];
	double *extra;

	(void)state;
	build(&ref);
	build(&one);
	build(&two);
	frame_compact(&one);
	frame_compact_threads(&two, 2);
	assert_int_equal(frame_bytes(&two), frame_bytes(&one));
	for (size_t j = 0; j < one.n_cols; j++) {
		const struct frame_col x = frame_col_at_index(&one, j), y = frame_col_at_index(&two, j);

		assert_int_equal(x.d != NULL, y.d != NULL);
		assert_int_equal(x.f != NULL, y.f != NULL);
		assert_int_equal(x.code != NULL, y.code != NULL);
	}
	assert_reads_as(&two, &ref);
	view = frame_view_first(&two, two.n_cols);
	extra = frame_add_column(&two, "extra");
	for (size_t i = 0; i < two.n_rows; i++)
		extra[i] = (double)i / 7;
	content_hash(&two, a);
	hasher_init(&h);
	frame_hash_part(&view, 0, view.n_cols, &h);
	frame_hash_part(&two, view.n_cols, two.n_cols, &h);
	hasher_hex(&h, b);
	hasher_release(&h);
	assert_string_equal(b, a);
	hasher_init(&h);
	frame_hash_part(&two, 0, 2, &h); /* split elsewhere: another hash */
	frame_hash_part(&two, 3, two.n_cols, &h);
	hasher_hex(&h, b);
	hasher_release(&h);
	assert_string_not_equal(b, a);
	frame_view_release(&view);
	frame_release(&ref);
	frame_release(&one);
	frame_release(&two);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_keeps_every_value),
		cmocka_unit_test(test_compact_threads_and_hash_parts),
		cmocka_unit_test(test_packer_by_blocks_packs_as_compact),
		cmocka_unit_test(test_view_reads_its_doubles),
		cmocka_unit_test(test_save_and_load),
		cmocka_unit_test(test_save_in_parts),
		cmocka_unit_test(test_packed_round_trip_every_kind),
		cmocka_unit_test(test_doubles_saved_load_compact),
		cmocka_unit_test(test_version_1_columns_load),
		cmocka_unit_test(test_bad_column_blob_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
