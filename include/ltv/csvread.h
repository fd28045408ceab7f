/*
 * Streaming RFC 4180 reader on top of libcsv: quoted fields, embedded commas,
 * quotes and newlines, CRLF or LF, an optional UTF-8 byte-order mark. Hands
 * back one record at a time with the 1-based physical line it started on, so
 * every error can name file:line. Memory stays bounded by the longest record.
 */
#ifndef LTV_CSVREAD_H
#define LTV_CSVREAD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

struct csv_reader; /* opaque */

/* Opens path for reading. Returns NULL and sets err (naming the path) on failure. */
struct csv_reader *csv_reader_open(const char *path, struct ltv_err *err);

/*
 * Reads the next record. On success *out_fields points at n NUL-terminated
 * field strings owned by the reader and valid until the next call (the array
 * also has a NULL at index n); *out_line is the physical line the record
 * starts on (the header is line 1; lines are counted by '\n', so CRLF files
 * and newlines inside quoted fields number as an editor shows them).
 * Returns 1 for a record, 0 at end of file, or a negative status with err set
 * ("users.csv:17: unterminated quoted field" style) on a malformed file; the
 * records before the malformed one are all returned first, and once failed
 * every later call fails the same way.
 * Blank lines (no fields at all, or only spaces and tabs) are skipped, not
 * returned. As libcsv does, spaces and tabs around an unquoted field are
 * trimmed; inside quotes they are kept.
 */
int csv_reader_next(struct csv_reader *r, char ***out_fields, size_t *out_n,
		    size_t *out_line, struct ltv_err *err);

/* Bytes consumed so far and the file size, for progress reporting. */
uint64_t csv_reader_bytes_read(const struct csv_reader *r);
uint64_t csv_reader_file_size(const struct csv_reader *r);
const char *csv_reader_path(const struct csv_reader *r);

/* Closes and frees; accepts NULL. */
void csv_reader_free(struct csv_reader *r);

/*
 * Writes one field to f quoted per RFC 4180 when it contains a comma, quote,
 * CR or LF (quotes doubled), or starts or ends with a space or tab (which the
 * reader would otherwise trim); otherwise as is.
 */
#include <stdio.h>
void csv_write_field(FILE *f, const char *s);

#endif
