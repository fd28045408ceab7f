/*
 * A frame: named columns of doubles with one row per user, the in-memory form
 * of the features artefact and of model inputs. In the registry each column
 * is one blob ("col:<name>" behind a blob.h header: version 1 raw
 * little-endian doubles; version 2 the column as held, doubles, floats, or
 * codes and their table, frame.c), plus an index blob ("frame") listing the
 * columns and the row count, so a reader can load only the columns it needs.
 */
#ifndef LTV_FRAME_H
#define LTV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/hash.h"

struct registry;

/*
 * A column held other than as doubles (frame_compact): per row a 2-byte
 * index into its distinct values (a column of at most 65,536 of them), or
 * else a 4-byte float when every value is exactly one.
 */
struct frame_packed {
	uint16_t *code;  /* per row: its value's index in table, or NULL */
	double *table;   /* the distinct values, bit for bit */
	size_t n_table;
	float *f;        /* per row, when not coded; or NULL */
};

struct frame {
	size_t n_rows;
	size_t n_cols;
	char **names;   /* owned */
	double **cols;  /* owned; cols[j][i] is row i of column j; NULL where packed[j] holds it */
	/*
	 * NULL, or per column (owned): how a column frame_compact packed is held,
	 * cols[j] then NULL. Only the model stages' shared frame is compacted;
	 * frame_column still hands out doubles (below), frame_col reads any
	 * column as stored without a copy.
	 */
	struct frame_packed *packed;
};

/* A column as stored: doubles (d), else floats (f), else codes into table; all NULL when none. */
struct frame_col {
	const double *d;
	const float *f;
	const uint16_t *code;
	const double *table;
};

/* Row i of c, as the double it was built as (bit for bit). */
static inline double frame_col_at(struct frame_col c, size_t i)
{
	return c.d ? c.d[i] : c.f ? (double)c.f[i] : c.table[c.code[i]];
}

static inline int frame_col_found(struct frame_col c)
{
	return c.d || c.f || c.code;
}

void frame_init(struct frame *f, size_t n_rows);
void frame_release(struct frame *f);
/* Adds a zero-filled column and returns it (owned by the frame). */
double *frame_add_column(struct frame *f, const char *name);
/*
 * The named column as doubles, or NULL. A compacted column is widened into
 * a copy kept until the frame is released (one per column, whatever the
 * thread or view asking): correct for any reader, but it gives the memory
 * back, so a reader of the shared frame that runs at 1,000,000 users reads
 * through frame_col instead.
 */
double *frame_column(const struct frame *f, const char *name);
/*
 * Frees the widened copies frame_column made of f's packed columns (a later
 * frame_column widens again): the features stage's own reads of its packed
 * frame are not kept for the model stages it hands the frame to.
 */
void frame_drop_widened(const struct frame *f);
/* The named column as stored, without a copy (frame_col_found false when there is none). */
struct frame_col frame_col(const struct frame *f, const char *name);
/* Column j as stored. */
struct frame_col frame_col_at_index(const struct frame *f, size_t j);
/*
 * Packs every column: one of at most 65,536 distinct values (bit patterns,
 * NaN included) as 2-byte codes into a table of them, else one whose every
 * value widens back from a float to the same bits as floats; other columns
 * stay doubles. Every reader sees the same values. The hash does not
 * change (frame_hash widens); frame_save stores the columns as packed.
 */
void frame_compact(struct frame *f);
/*
 * frame_compact with the columns packed on up to `threads` threads (each
 * column its own, so the same frame): the features stage packs its ten
 * encoding columns, 1,000,000 rows each, between its serial steps.
 */
void frame_compact_threads(struct frame *f, int threads);
/*
 * A column built block by block and packed as it comes, as frame_compact
 * would pack the whole (same codes in the same order, same floats): the
 * features stage fills its rows a block at a time into one reused buffer
 * instead of faulting in a column of doubles per feature (fresh pages are
 * dear on these VMs: README "Fewer fresh pages").
 */
enum column_pack_kind { PACK_CODES, PACK_FLOATS, PACK_DOUBLES, PACK_GAVE_UP };

struct column_packer {
	size_t n_rows, n;          /* rows in all, rows added so far */
	enum column_pack_kind kind;
	int keep_doubles;          /* else a column of neither codes nor floats is given up */
	int floats_so_far;         /* every distinct value so far widens back from a float */
	uint16_t *code;            /* PACK_CODES: per row, into table */
	double *table;
	size_t n_table;
	uint64_t *key;             /* the open-addressed lookup of table's bits */
	int32_t *slot_code;
	size_t n_slots;
	uint64_t last;             /* bits of the last value coded */
	float *f;                  /* PACK_FLOATS */
	double *d;                 /* PACK_DOUBLES */
};

void column_packer_init(struct column_packer *p, size_t n_rows, int keep_doubles);
/* Appends n values (at most n_rows in all). */
void column_packer_add(struct column_packer *p, const double *v, size_t n);
/* Appends p's column (all n_rows added, keep_doubles) to f as name; p is released. */
void frame_add_packed_column(struct frame *f, const char *name, struct column_packer *p);
void column_packer_release(struct column_packer *p);

/* Bytes the frame's columns hold (doubles, packed columns and widened copies). */
size_t frame_bytes(const struct frame *f);
/* Adds every column's name and bytes to h (the artefact's content hash). */
void frame_hash(const struct frame *f, struct hasher *h);
/*
 * frame_hash in parts: columns from..to - 1 (from 0: the row count first),
 * so that frame_hash_part(f, 0, k) then frame_hash_part(f, k, n_cols) add
 * what frame_hash adds.
 */
void frame_hash_part(const struct frame *f, size_t from, size_t to, struct hasher *h);
/*
 * f's first n columns as a frame with arrays of its own, the columns'
 * memory borrowed: read it on one thread while another adds columns to f
 * (frame_add_column moves f's arrays). Free it with frame_view_release only.
 */
struct frame frame_view_first(const struct frame *f, size_t n);
void frame_view_release(struct frame *v);

/*
 * Stores every column under artefact_id (inside the stage's transaction), as
 * it is held: compact a frame first (frame_compact) to store less.
 */
int frame_save(const struct frame *f, struct registry *reg, int64_t artefact_id,
	       struct ltv_err *err);
/*
 * frame_save in parts, in any order: the frame's blob (its row count and
 * every column's name) and columns from..to - 1 (a column's blob is its own,
 * so the columns already final can be stored while more are worked out).
 */
int frame_save_head(const struct frame *f, struct registry *reg, int64_t artefact_id,
		    struct ltv_err *err);
int frame_save_columns(const struct frame *f, size_t from, size_t to, struct registry *reg,
		       int64_t artefact_id, struct ltv_err *err);
/*
 * Loads the named columns (NULL-terminated list; NULL loads all) of an
 * artefact's frame into out (caller releases). LTV_ENOTFOUND names a missing column.
 */
int frame_load(struct registry *reg, int64_t artefact_id, const char *const *names,
	       struct frame *out, struct ltv_err *err);

/*
 * frame_load, each column compacted as it is read (frame_compact): a column
 * stored packed is taken as stored. frame_load widens it to doubles.
 */
int frame_load_compact(struct registry *reg, int64_t artefact_id, const char *const *names,
		       struct frame *out, struct ltv_err *err);

/* String dictionaries (app and campaign names) stored beside a frame as "dict:<name>". */
int frame_save_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char *const *values, size_t n, struct ltv_err *err);
int frame_load_dict(struct registry *reg, int64_t artefact_id, const char *name,
		    char ***out_values, size_t *out_n, struct ltv_err *err);
void frame_free_dict(char **values, size_t n);

#endif
