/*
 * Frames and their registry storage (format in include/ltv/frame.h). Columns
 * are written as they are held, raw little-endian doubles, floats or 2-byte
 * codes (column blobs, version 2, below), because a million-row column is
 * read and written whole; x86-64 and aarch64 are little-endian, and the blob
 * header's magic would reject anything else.
 */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/frame.h"
#include "ltv/log.h"
#include "ltv/registry.h"

#define FRAME_MAGIC "LTVFRAM1"
#define COLUMN_MAGIC "LTVCOLF1"
#define DICT_MAGIC "LTVDICT1"

void frame_init(struct frame *f, size_t n_rows)
{
	memset(f, 0, sizeof(*f));
	f->n_rows = n_rows;
}

/*
 * The widened copies frame_column made of packed columns, keyed by the
 * packed data: views of a frame (a copy of its column arrays with one
 * column swapped, serving/predictor.c) share them, and the copy goes when
 * the packed column is freed.
 */
static pthread_mutex_t widened_lock = PTHREAD_MUTEX_INITIALIZER;
static struct widened {
	const void *from; /* the packed column's codes or floats */
	double *to;
} *widened;
static size_t n_widened, cap_widened;

static void widened_drop(const void *from)
{
	pthread_mutex_lock(&widened_lock);
	for (size_t k = 0; k < n_widened; k++)
		if (widened[k].from == from) {
			free(widened[k].to);
			widened[k] = widened[--n_widened];
			break;
		}
	pthread_mutex_unlock(&widened_lock);
}

/* The packed data a column's widened copy is keyed by; NULL when not packed. */
static const void *packed_key(const struct frame_packed *p)
{
	return p->code ? (const void *)p->code : (const void *)p->f;
}

static void packed_release(struct frame_packed *p)
{
	if (packed_key(p))
		widened_drop(packed_key(p));
	free(p->code);
	free(p->table);
	free(p->f);
	memset(p, 0, sizeof(*p));
}

void frame_drop_widened(const struct frame *f)
{
	for (size_t j = 0; j < f->n_cols && f->packed; j++)
		if (packed_key(&f->packed[j]))
			widened_drop(packed_key(&f->packed[j]));
}

void frame_release(struct frame *f)
{
	for (size_t j = 0; j < f->n_cols; j++) {
		free(f->names[j]);
		free(f->cols[j]);
		if (f->packed)
			packed_release(&f->packed[j]);
	}
	free(f->names);
	free(f->cols);
	free(f->packed);
	memset(f, 0, sizeof(*f));
}

/*
 * A zeroed column, a large one on transparent huge pages (xmalloc_huge): it
 * is written once from end to end, and 4 KiB faults were a fifth of the
 * features stage's CPU at 1,000,000 users (77,000 of them for the 317 MB
 * frame). calloc, not malloc and memset: a large column is fresh mapped
 * memory, which the kernel hands out zeroed, so calloc skips the second
 * pass over 317 MB that memset made (and its faults land in the first write).
 */
static double *column_alloc(size_t n_rows)
{
	const size_t bytes = (n_rows ? n_rows : 1) * sizeof(double);
	double *col = xcalloc(n_rows ? n_rows : 1, sizeof(double));

	memory_want_huge_pages(col, bytes);
	return col;
}

double *frame_add_column(struct frame *f, const char *name)
{
	f->names = xrealloc(f->names, (f->n_cols + 1) * sizeof(char *));
	f->cols = xrealloc(f->cols, (f->n_cols + 1) * sizeof(double *));
	if (f->packed) {
		f->packed = xrealloc(f->packed, (f->n_cols + 1) * sizeof(*f->packed));
		memset(&f->packed[f->n_cols], 0, sizeof(*f->packed));
	}
	f->names[f->n_cols] = xstrdup(name);
	f->cols[f->n_cols] = column_alloc(f->n_rows);
	return f->cols[f->n_cols++];
}

#define CODES_MAX 65536              /* distinct values a uint16 code tells apart */
#define CODE_SLOTS (2 * CODES_MAX)   /* open addressing, at most half full */
#define FIRST_SLOTS 1024             /* a column of few values keeps a small table */

static int is_float(double v)
{
	const double back = (double)(float)v;

	return memcmp(&back, &v, sizeof(double)) == 0;
}

void column_packer_init(struct column_packer *p, size_t n_rows, int keep_doubles)
{
	memset(p, 0, sizeof(*p));
	p->n_rows = n_rows;
	p->kind = PACK_CODES;
	p->keep_doubles = keep_doubles;
	p->floats_so_far = 1;
	p->code = xmalloc((n_rows ? n_rows : 1) * sizeof(uint16_t));
	p->n_slots = FIRST_SLOTS;
	p->key = xmalloc(p->n_slots * sizeof(uint64_t));
	p->slot_code = xmalloc(p->n_slots * sizeof(int32_t));
	memset(p->slot_code, 0xff, p->n_slots * sizeof(int32_t));
	p->table = xmalloc(p->n_slots / 2 * sizeof(double));
}

static size_t slot_of(const struct column_packer *p, uint64_t b)
{
	size_t h = (size_t)((b * 0x9E3779B97F4A7C15u) >> 47) & (p->n_slots - 1);

	while (p->slot_code[h] >= 0 && p->key[h] != b)
		h = (h + 1) & (p->n_slots - 1);
	return h;
}

/* Twice the slots (the table's values rehashed), kept at most half full. */
static void packer_grow(struct column_packer *p)
{
	p->n_slots *= 2;
	p->key = xrealloc(p->key, p->n_slots * sizeof(uint64_t));
	p->slot_code = xrealloc(p->slot_code, p->n_slots * sizeof(int32_t));
	memset(p->slot_code, 0xff, p->n_slots * sizeof(int32_t));
	p->table = xrealloc(p->table, p->n_slots / 2 * sizeof(double));
	for (size_t c = 0; c < p->n_table; c++) {
		uint64_t b;
		size_t h;

		memcpy(&b, &p->table[c], sizeof(b));
		h = slot_of(p, b);
		p->key[h] = b;
		p->slot_code[h] = (int32_t)c;
	}
}

static void packer_free_codes(struct column_packer *p)
{
	free(p->code);
	free(p->table);
	free(p->key);
	free(p->slot_code);
	p->code = NULL;
	p->table = NULL;
	p->key = NULL;
	p->slot_code = NULL;
}

/* The rows so far as doubles, or PACK_GAVE_UP without keep_doubles. */
static void packer_to_doubles(struct column_packer *p)
{
	if (!p->keep_doubles) {
		packer_free_codes(p);
		free(p->f);
		p->f = NULL;
		p->kind = PACK_GAVE_UP;
		return;
	}
	p->d = xmalloc_huge((p->n_rows ? p->n_rows : 1) * sizeof(double));
	for (size_t i = 0; i < p->n; i++)
		p->d[i] = p->kind == PACK_FLOATS ? (double)p->f[i] : p->table[p->code[i]];
	packer_free_codes(p);
	free(p->f);
	p->f = NULL;
	p->kind = PACK_DOUBLES;
}

/* More than CODES_MAX values: floats when every value so far is one, else doubles. */
static void packer_overflow(struct column_packer *p)
{
	if (!p->floats_so_far) {
		packer_to_doubles(p);
		return;
	}
	p->f = xmalloc((p->n_rows ? p->n_rows : 1) * sizeof(float));
	for (size_t i = 0; i < p->n; i++)
		p->f[i] = (float)p->table[p->code[i]];
	packer_free_codes(p);
	p->kind = PACK_FLOATS;
}

/*
 * One value coded; 0 when it is a value past CODES_MAX. Values are told
 * apart by their bits, so every NaN payload and -0.0 come back as they were.
 */
static int packer_code(struct column_packer *p, double v)
{
	uint64_t b;
	size_t h;

	memcpy(&b, &v, sizeof(b));
	/* runs of one value (codes, flags, a user's snapshot rows) skip the lookup */
	if (p->n > 0 && b == p->last) {
		p->code[p->n] = p->code[p->n - 1];
		return 1;
	}
	p->last = b;
	h = slot_of(p, b);
	if (p->slot_code[h] < 0) {
		if (p->n_table == CODES_MAX)
			return 0;
		if (2 * (p->n_table + 1) > p->n_slots) {
			packer_grow(p);
			h = slot_of(p, b);
		}
		p->key[h] = b;
		p->slot_code[h] = (int32_t)p->n_table;
		p->table[p->n_table++] = v;
		p->floats_so_far &= is_float(v);
	}
	p->code[p->n] = (uint16_t)p->slot_code[h];
	return 1;
}

void column_packer_add(struct column_packer *p, const double *v, size_t n)
{
	size_t i = 0;

	assert(p->n + n <= p->n_rows);
	for (; i < n && p->kind == PACK_CODES; i++, p->n++)
		if (!packer_code(p, v[i])) {
			packer_overflow(p);
			break;
		}
	for (; i < n && p->kind == PACK_FLOATS; i++, p->n++) {
		if (!is_float(v[i])) {
			packer_to_doubles(p);
			break;
		}
		p->f[p->n] = (float)v[i];
	}
	for (; i < n && p->kind == PACK_DOUBLES; i++)
		p->d[p->n++] = v[i];
}

/* The codes and table, or the floats, p holds, handed over (none for doubles). */
static struct frame_packed packer_take(struct column_packer *p)
{
	struct frame_packed packed = { 0 };

	if (p->kind == PACK_CODES) {
		packed.code = p->code;
		packed.table = xrealloc(p->table, (p->n_table ? p->n_table : 1) * sizeof(double));
		packed.n_table = p->n_table;
		p->code = NULL;
		p->table = NULL;
	} else if (p->kind == PACK_FLOATS) {
		packed.f = p->f;
		p->f = NULL;
	}
	return packed;
}

/* Appends p's column to f under name, packed or as doubles; p is left empty. */
void frame_add_packed_column(struct frame *f, const char *name, struct column_packer *p)
{
	const struct frame_packed packed = packer_take(p);

	assert(p->n == f->n_rows && p->kind != PACK_GAVE_UP);
	f->names = xrealloc(f->names, (f->n_cols + 1) * sizeof(char *));
	f->cols = xrealloc(f->cols, (f->n_cols + 1) * sizeof(double *));
	if (!f->packed && p->kind != PACK_DOUBLES)
		f->packed = xcalloc(f->n_cols + 1, sizeof(*f->packed));
	else if (f->packed)
		f->packed = xrealloc(f->packed, (f->n_cols + 1) * sizeof(*f->packed));
	f->names[f->n_cols] = xstrdup(name);
	f->cols[f->n_cols] = p->kind == PACK_DOUBLES ? p->d : NULL;
	if (f->packed)
		f->packed[f->n_cols] = packed;
	f->n_cols++;
	p->d = NULL;
	column_packer_release(p);
}

void column_packer_release(struct column_packer *p)
{
	packer_free_codes(p);
	free(p->f);
	free(p->d);
	memset(p, 0, sizeof(*p));
}

/* Column j packed in place (column_packer, without keeping doubles: they are held already). */
static void compact_column(struct frame *f, size_t j)
{
	struct column_packer p;
	struct frame_packed packed;

	if (!f->cols[j])
		return;
	column_packer_init(&p, f->n_rows, 0);
	column_packer_add(&p, f->cols[j], f->n_rows);
	if (p.kind == PACK_GAVE_UP) {
		column_packer_release(&p);
		return;
	}
	packed = packer_take(&p);
	column_packer_release(&p);
	if (!f->packed)
		f->packed = xcalloc(f->n_cols ? f->n_cols : 1, sizeof(*f->packed));
	free(f->cols[j]);
	f->cols[j] = NULL;
	f->packed[j] = packed;
}

void frame_compact(struct frame *f)
{
	for (size_t j = 0; j < f->n_cols; j++)
		compact_column(f, j);
}

void frame_compact_threads(struct frame *f, int threads)
{
	if (threads <= 1) {
		frame_compact(f);
		return;
	}
	/* The one thing the columns share, made before they part (all zero: none packed). */
	if (!f->packed && f->n_cols)
		f->packed = xcalloc(f->n_cols, sizeof(*f->packed));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
	for (size_t j = 0; j < f->n_cols; j++)
		compact_column(f, j);
}

/* Column j as doubles: a packed one widened once (see widened above). */
static double *column_doubles(const struct frame *f, size_t j)
{
	const struct frame_col c = frame_col_at_index(f, j);
	const void *from;
	double *to = NULL;

	if (f->cols[j] || !frame_col_found(c))
		return f->cols[j];
	from = packed_key(&f->packed[j]);
	pthread_mutex_lock(&widened_lock);
	for (size_t k = 0; k < n_widened && !to; k++)
		if (widened[k].from == from)
			to = widened[k].to;
	if (!to) {
		to = xmalloc((f->n_rows ? f->n_rows : 1) * sizeof(double));
		for (size_t i = 0; i < f->n_rows; i++)
			to[i] = frame_col_at(c, i);
		ARRAY_GROW(widened, n_widened + 1, cap_widened);
		widened[n_widened++] = (struct widened){ from, to };
		LOG(LOG_DEBUG, "frame: column %s widened to doubles for a reader (%zu rows)",
		    f->names[j], f->n_rows);
	}
	pthread_mutex_unlock(&widened_lock);
	return to;
}

struct frame_col frame_col_at_index(const struct frame *f, size_t j)
{
	const struct frame_packed *p = f->packed ? &f->packed[j] : NULL;

	/* doubles first: a view (serving/predictor.c) swaps a column's doubles over its packing */
	if (f->cols[j] || !p)
		return (struct frame_col){ .d = f->cols[j] };
	return (struct frame_col){ .f = p->f, .code = p->code, .table = p->table };
}

size_t frame_bytes(const struct frame *f)
{
	size_t bytes = 0;

	for (size_t j = 0; j < f->n_cols; j++) {
		const struct frame_packed *p = f->packed ? &f->packed[j] : NULL;

		if (f->cols[j] || !p || !packed_key(p)) {
			bytes += f->n_rows * sizeof(double);
			continue;
		}
		bytes += p->code ? f->n_rows * sizeof(uint16_t) + p->n_table * sizeof(double)
				 : f->n_rows * sizeof(float);
		pthread_mutex_lock(&widened_lock);
		for (size_t k = 0; k < n_widened; k++)
			bytes += widened[k].from == packed_key(p) ? f->n_rows * sizeof(double) : 0;
		pthread_mutex_unlock(&widened_lock);
	}
	return bytes;
}

/*
 * Where each name asked for was last found, per thread and by the address of
 * the name (the callers pass string literals): one strcmp confirms the hint
 * instead of one per column before it. A serving request looks columns up
 * thousands of times in frames of the same layout. A hint that does not
 * confirm falls back to the scan, so the answer is always the first column
 * of that name.
 */
#define COLUMN_HINTS 256

static _Thread_local struct {
	const char *name;
	size_t index;
} column_hint[COLUMN_HINTS];

/* Index of the first column called name, or SIZE_MAX. */
static size_t column_index(const struct frame *f, const char *name)
{
	const size_t slot = ((uintptr_t)name >> 3) % COLUMN_HINTS;
	const size_t hint = column_hint[slot].index;

	if (column_hint[slot].name == name && hint < f->n_cols && strcmp(f->names[hint], name) == 0) {
		/* The first of that name: an earlier duplicate would win the scan. */
		for (size_t j = 0; j < hint; j++)
			if (f->names[j][0] == name[0] && strcmp(f->names[j], name) == 0)
				return j;
		return hint;
	}
	for (size_t j = 0; j < f->n_cols; j++)
		if (strcmp(f->names[j], name) == 0) {
			column_hint[slot].name = name;
			column_hint[slot].index = j;
			return j;
		}
	return SIZE_MAX;
}

double *frame_column(const struct frame *f, const char *name)
{
	const size_t j = column_index(f, name);

	return j == SIZE_MAX ? NULL : column_doubles(f, j);
}

struct frame_col frame_col(const struct frame *f, const char *name)
{
	const size_t j = column_index(f, name);

	return j == SIZE_MAX ? (struct frame_col){ .d = NULL } : frame_col_at_index(f, j);
}

/*
 * Column j's bytes as doubles, 4,096 rows at a time into buf, passed to put:
 * what frame_hash sees of a packed column is the doubles it was built as.
 */
#define WIDEN_CHUNK 4096

static void column_bytes(const struct frame *f, size_t j,
			 void (*put)(void *arg, const void *p, size_t n), void *arg)
{
	const struct frame_col c = frame_col_at_index(f, j);
	double buf[WIDEN_CHUNK];

	if (f->cols[j]) {
		put(arg, f->cols[j], f->n_rows * sizeof(double));
		return;
	}
	for (size_t at = 0; at < f->n_rows; at += WIDEN_CHUNK) {
		const size_t n = f->n_rows - at < WIDEN_CHUNK ? f->n_rows - at : WIDEN_CHUNK;

		for (size_t i = 0; i < n; i++)
			buf[i] = frame_col_at(c, at + i);
		put(arg, buf, n * sizeof(double));
	}
}

static void put_hash(void *arg, const void *p, size_t n)
{
	hasher_update(arg, p, n);
}

void frame_hash(const struct frame *f, struct hasher *h)
{
	frame_hash_part(f, 0, f->n_cols, h);
}

void frame_hash_part(const struct frame *f, size_t from, size_t to, struct hasher *h)
{
	if (from == 0)
		hasher_add_i64(h, (int64_t)f->n_rows);
	for (size_t j = from; j < to; j++) {
		hasher_add_str(h, f->names[j]);
		column_bytes(f, j, put_hash, h);
	}
}

struct frame frame_view_first(const struct frame *f, size_t n)
{
	struct frame v = { .n_rows = f->n_rows, .n_cols = n };

	v.names = xmalloc((n ? n : 1) * sizeof(char *));
	v.cols = xmalloc((n ? n : 1) * sizeof(double *));
	memcpy(v.names, f->names, n * sizeof(char *));
	memcpy(v.cols, f->cols, n * sizeof(double *));
	if (f->packed) {
		v.packed = xmalloc((n ? n : 1) * sizeof(*v.packed));
		memcpy(v.packed, f->packed, n * sizeof(*v.packed));
	}
	return v;
}

void frame_view_release(struct frame *v)
{
	free(v->names);
	free(v->cols);
	free(v->packed);
	memset(v, 0, sizeof(*v));
}

/*
 * Column blobs, version 2: the v1 header (magic, version, row count), then
 * how the column is held, the table's length, and the column as held:
 *   COL_DOUBLES  n_rows doubles (all version 1 had)
 *   COL_FLOATS   n_rows floats, each exactly the double it stands for
 *   COL_CODES    n_table doubles (the distinct values, bit for bit), then
 *                n_rows 2-byte codes into them
 * A packed column is written as it is held (frame_compact): at 1,000,000
 * users 88 of the frame's 317 MB, so 229 MB less to copy into the WAL,
 * checkpoint into the database and checksum, and a compact reader takes
 * the packing as stored instead of packing the doubles again.
 */
#define COLUMN_VERSION 2
#define COLUMN_HEAD_V1 (8 + 4 + 8)
#define COLUMN_HEAD (COLUMN_HEAD_V1 + 4 + 4)

enum column_kind { COL_DOUBLES = 0, COL_FLOATS = 1, COL_CODES = 2 };

static void put_column(struct blob_writer *w, const struct frame *f, size_t j)
{
	const struct frame_col c = frame_col_at_index(f, j);
	const struct frame_packed *p = f->packed ? &f->packed[j] : NULL;

	blob_put_header(w, COLUMN_MAGIC, COLUMN_VERSION);
	blob_put_u64(w, f->n_rows);
	if (c.code) {
		blob_put_u32(w, COL_CODES);
		blob_put_u32(w, (uint32_t)p->n_table);
		blob_put_bytes(w, p->table, p->n_table * sizeof(double));
		blob_put_bytes(w, c.code, f->n_rows * sizeof(uint16_t));
	} else if (c.f) {
		blob_put_u32(w, COL_FLOATS);
		blob_put_u32(w, 0);
		blob_put_bytes(w, c.f, f->n_rows * sizeof(float));
	} else {
		blob_put_u32(w, COL_DOUBLES);
		blob_put_u32(w, 0);
		blob_put_bytes(w, c.d, f->n_rows * sizeof(double));
	}
}

int frame_save_head(const struct frame *f, struct registry *reg, int64_t artefact_id,
		    struct ltv_err *err)
{
	struct blob_writer w;
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, FRAME_MAGIC, 1);
	blob_put_u64(&w, f->n_rows);
	blob_put_u32(&w, (uint32_t)f->n_cols);
	for (size_t j = 0; j < f->n_cols; j++)
		blob_put_str(&w, f->names[j]);
	data = blob_writer_detach(&w, &len);
	ret = registry_blob_put(reg, artefact_id, "frame", data, len, err);
	free(data);
	return ret;
}

int frame_save_columns(const struct frame *f, size_t from, size_t to, struct registry *reg,
		       int64_t artefact_id, struct ltv_err *err)
{
	struct blob_writer w;
	int ret = 0;

	/*
	 * One buffer for every column, rewritten in place: a new one per column
	 * was a fresh mapping of n_rows * 8 bytes to fault in each time (35
	 * columns of 9 MB at 1,000,000 users).
	 */
	blob_writer_init(&w);
	for (size_t j = from; j < to && j < f->n_cols && ret == 0; j++) {
		char key[300];

		w.len = 0;
		put_column(&w, f, j);
		snprintf(key, sizeof(key), "col:%s", f->names[j]);
		ret = registry_blob_put(reg, artefact_id, key, w.data, w.len, err);
	}
	blob_writer_release(&w);
	return ret;
}

int frame_save(const struct frame *f, struct registry *reg, int64_t artefact_id,
	       struct ltv_err *err)
{
	int ret = frame_save_head(f, reg, artefact_id, err);

	return ret < 0 ? ret : frame_save_columns(f, 0, f->n_cols, reg, artefact_id, err);
}

/* A column blob's header: its version, kind and table length (0 and COL_DOUBLES for version 1). */
struct column_head {
	uint32_t version;
	uint32_t kind;
	size_t n_table;
	size_t head_len;
};

static int column_head_parse(const uint8_t *head, size_t len, int64_t artefact_id,
			     const char *key, size_t n_rows, struct column_head *h, struct ltv_err *err)
{
	struct blob_reader r;
	int ret;

	memset(h, 0, sizeof(*h));
	blob_reader_init(&r, head, len);
	ret = blob_get_header(&r, COLUMN_MAGIC, COLUMN_VERSION, &h->version, err);
	if (ret < 0)
		return ret;
	if (blob_get_u64(&r) != n_rows && !r.failed)
		return err_set(err, LTV_EINVAL, "blob '%s' of artefact %lld has the wrong row count",
			       key, (long long)artefact_id);
	h->head_len = COLUMN_HEAD_V1;
	if (h->version >= 2) {
		h->kind = blob_get_u32(&r);
		h->n_table = blob_get_u32(&r);
		h->head_len = COLUMN_HEAD;
	}
	ret = blob_reader_status(&r, key, err);
	if (ret == 0 && (h->kind > COL_CODES || h->n_table > CODES_MAX))
		ret = err_set(err, LTV_EINVAL, "blob '%s' holds a column kind %u with %zu values "
			      "this version does not read", key, h->kind, h->n_table);
	return ret;
}

/* Every code of a coded column is an index into its table (a damaged blob is refused, not overread). */
static int codes_check(const struct frame_packed *p, size_t n_rows, const char *key,
		       struct ltv_err *err)
{
	uint16_t max = 0;

	for (size_t i = 0; i < n_rows; i++)
		max = p->code[i] > max ? p->code[i] : max;
	if (n_rows && (size_t)max >= p->n_table)
		return err_set(err, LTV_EINVAL, "blob '%s' has a code past its %zu values", key,
			       p->n_table);
	return 0;
}

/* Reads a packed column's body (after its head) into *p, allocated here. */
static int read_packed(struct registry *reg, int64_t artefact_id, const char *key,
		       const struct column_head *h, uint8_t *head, size_t n_rows,
		       struct frame_packed *p, struct ltv_err *err)
{
	struct blob_part parts[3] = { { head, h->head_len } };
	size_t n_parts = 1;
	int ret;

	memset(p, 0, sizeof(*p));
	if (h->kind == COL_FLOATS) {
		p->f = xmalloc((n_rows ? n_rows : 1) * sizeof(float));
		parts[n_parts++] = (struct blob_part){ p->f, n_rows * sizeof(float) };
	} else {
		p->n_table = h->n_table;
		p->table = xmalloc((h->n_table ? h->n_table : 1) * sizeof(double));
		p->code = xmalloc((n_rows ? n_rows : 1) * sizeof(uint16_t));
		parts[n_parts++] = (struct blob_part){ p->table, h->n_table * sizeof(double) };
		parts[n_parts++] = (struct blob_part){ p->code, n_rows * sizeof(uint16_t) };
	}
	ret = registry_blob_get_vec(reg, artefact_id, key, parts, n_parts, err);
	if (ret == 0 && p->code)
		ret = codes_check(p, n_rows, key, err);
	if (ret < 0)
		packed_release(p);
	return ret;
}

/* Adds a column held as p (taken over), without doubles. */
static void add_packed_column(struct frame *f, const char *name, struct frame_packed *p)
{
	f->names = xrealloc(f->names, (f->n_cols + 1) * sizeof(char *));
	f->cols = xrealloc(f->cols, (f->n_cols + 1) * sizeof(double *));
	if (f->packed)
		f->packed = xrealloc(f->packed, (f->n_cols + 1) * sizeof(*f->packed));
	else
		f->packed = xcalloc(f->n_cols + 1, sizeof(*f->packed));
	f->names[f->n_cols] = xstrdup(name);
	f->cols[f->n_cols] = NULL;
	f->packed[f->n_cols++] = *p;
	memset(p, 0, sizeof(*p));
}

/* A packed column's rows widened into dst (a reader that asked for doubles). */
static void widen_into(const struct frame_packed *p, size_t n_rows, double *dst)
{
	const struct frame_col c = { .f = p->f, .code = p->code, .table = p->table };

	for (size_t i = 0; i < n_rows; i++)
		dst[i] = frame_col_at(c, i);
}

/*
 * Reads column `name` of the stored frame into out: doubles straight from
 * the registry, a packed one as stored when compact (else widened). A
 * stored doubles column is compacted when compact, as frame_compact would.
 */
static int load_column(struct registry *reg, int64_t artefact_id, const char *name, int compact,
		       struct frame *out, struct ltv_err *err)
{
	uint8_t head[COLUMN_HEAD];
	struct column_head h;
	struct frame_packed p;
	char key[300];
	size_t len;
	int ret;

	snprintf(key, sizeof(key), "col:%s", name);
	ret = registry_blob_peek(reg, artefact_id, key, head, sizeof(head), &len, err);
	if (ret == 0)
		ret = column_head_parse(head, len < sizeof(head) ? len : sizeof(head), artefact_id,
					key, out->n_rows, &h, err);
	if (ret < 0)
		return ret;
	if (h.kind == COL_DOUBLES) {
		double *dst = frame_add_column(out, name);

		ret = registry_blob_get_parts(reg, artefact_id, key, head, h.head_len, dst,
					      out->n_rows * sizeof(double), err);
		/* column by column: the doubles of one column at a time on top of the compact ones */
		if (ret == 0 && compact)
			compact_column(out, out->n_cols - 1);
		return ret;
	}
	ret = read_packed(reg, artefact_id, key, &h, head, out->n_rows, &p, err);
	if (ret == 0 && compact) {
		add_packed_column(out, name, &p);
	} else if (ret == 0) {
		widen_into(&p, out->n_rows, frame_add_column(out, name));
		packed_release(&p);
	}
	return ret;
}

static int load_frame(struct registry *reg, int64_t artefact_id, const char *const *names,
		      int compact, struct frame *out, struct ltv_err *err)
{
	struct blob_reader r;
	void *data = NULL;
	size_t len, n_cols;
	char **stored = NULL;
	uint32_t version;
	int ret;

	frame_init(out, 0);
	ret = registry_blob_get(reg, artefact_id, "frame", &data, &len, err);
	if (ret < 0)
		return ret;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, FRAME_MAGIC, 1, &version, err);
	if (ret < 0)
		goto out;
	out->n_rows = (size_t)blob_get_u64(&r);
	n_cols = blob_get_u32(&r);
	stored = xcalloc(n_cols + 1, sizeof(char *));
	for (size_t j = 0; j < n_cols && !r.failed; j++)
		stored[j] = blob_get_str(&r);
	ret = blob_reader_status(&r, "frame index", err);
	if (ret < 0)
		goto out;
	for (size_t j = 0; names ? names[j] != NULL : j < n_cols; j++) {
		const char *name = names ? names[j] : stored[j];
		int found = 0;

		for (size_t k = 0; k < n_cols; k++)
			found |= strcmp(stored[k], name) == 0;
		if (!found) {
			ret = err_set(err, LTV_ENOTFOUND, "artefact %lld has no column '%s'",
				      (long long)artefact_id, name);
			goto out;
		}
		ret = load_column(reg, artefact_id, name, compact, out, err);
		if (ret < 0)
			goto out;
	}
out:
	if (stored)
		frame_free_dict(stored, n_cols);
	free(data);
	if (ret < 0)
		frame_release(out);
	return ret;
}

int frame_load(struct registry *reg, int64_t artefact_id, const char *const *names,
	       struct frame *out, struct ltv_err *err)
{
	return load_frame(reg, artefact_id, names, 0, out, err);
}

int frame_load_compact(struct registry *reg, int64_t artefact_id, const char *const *names,
		       struct frame *out, struct ltv_err *err)
{
	return load_frame(reg, artefact_id, names, 1, out, err);
}

int frame_save_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char *const *values, size_t n, struct ltv_err *err)
{
	struct blob_writer w;
	char key[300];
	uint8_t *data;
	size_t len;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, DICT_MAGIC, 1);
	blob_put_u64(&w, n);
	for (size_t i = 0; i < n; i++)
		blob_put_str(&w, values[i]);
	data = blob_writer_detach(&w, &len);
	snprintf(key, sizeof(key), "dict:%s", name);
	ret = registry_blob_put(reg, artefact_id, key, data, len, err);
	free(data);
	return ret;
}

int frame_load_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char ***out_values, size_t *out_n, struct ltv_err *err)
{
	struct blob_reader r;
	char key[300];
	void *data = NULL;
	size_t len, n;
	uint32_t version;
	char **values = NULL;
	int ret;

	snprintf(key, sizeof(key), "dict:%s", name);
	ret = registry_blob_get(reg, artefact_id, key, &data, &len, err);
	if (ret < 0)
		return ret;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, DICT_MAGIC, 1, &version, err);
	if (ret < 0)
		goto out;
	n = (size_t)blob_get_u64(&r);
	if (r.failed || n > len) {
		ret = blob_reader_status(&r, key, err);
		goto out;
	}
	values = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n && !r.failed; i++)
		values[i] = blob_get_str(&r);
	ret = blob_reader_status(&r, key, err);
	if (ret < 0) {
		frame_free_dict(values, n);
		goto out;
	}
	*out_values = values;
	*out_n = n;
out:
	free(data);
	return ret;
}

void frame_free_dict(char **values, size_t n)
{
	if (!values)
		return;
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	free(values);
}
