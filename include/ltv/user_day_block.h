/*
 * The columnar form of user-days in the registry (table user_day_blocks):
 * one block holds rows sorted by strictly increasing (uid, day), column by
 * column, so ingest stores a million users' days as one blob instead of
 * millions of SQLite rows (the row inserts were most of ingest's time) and
 * readers decode them at memory speed.
 *
 * Block format, version 1 (little-endian; varint = unsigned LEB128):
 *   "LTVUDAY1" magic, u32 version (blob.h header)
 *   u64 n_rows
 *   u64 byte length of each varint section: uid, day, events, purchases
 *   uid section:       per row, uid minus the previous row's uid (first: uid)
 *   day section:       per row, the day when the uid changed, else
 *                      day minus the previous day minus 1
 *   events section:    per row, events
 *   purchases section: per row, purchases
 *   revenue:           n_rows doubles, 8 bytes each
 * contrib/user_days.py decodes the same format, for reading with sqlite3.
 */
#ifndef LTV_USER_DAY_BLOCK_H
#define LTV_USER_DAY_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"
#include "ltv/registry.h"

/*
 * Encodes n rows that are sorted by strictly increasing (uid, day), with
 * uid >= 1, day >= 0, events >= 0 and purchases >= 0 (the caller checks).
 * Returns a new buffer (caller frees) of *out_len bytes.
 */
uint8_t *user_day_block_encode(const struct user_day_row *rows, size_t n, size_t *out_len);

/* Reads a block row by row; borrows the bytes. */
struct user_day_cursor {
	const uint8_t *p[4], *end[4]; /* uid, day, events, purchases sections */
	const uint8_t *revenue;
	size_t left;                  /* rows not yet read */
	struct user_day_row row;      /* the row read last */
};

/*
 * Checks the header and that the sections fit in len bytes; LTV_EINVAL (with
 * what in the message) for a block that is not one.
 */
int user_day_cursor_open(struct user_day_cursor *c, const void *data, size_t len,
			 const char *what, struct ltv_err *err);
/* 1 and c->row set, 0 at the end, LTV_EINVAL for a damaged block. */
int user_day_cursor_next(struct user_day_cursor *c, struct ltv_err *err);

#endif
