/*
 * Streaming RFC 4180 reader on top of libcsv: quoted fields, embedded commas,
 * quotes and newlines, CRLF or LF, an optional UTF-8 byte-order mark. Hands
 * back one record at a time with the 1-based physical line it started on, so
 * every error can name file:line. Memory stays bounded by the longest record.
 * Each record also says whether its bytes are usable text (no NUL byte, valid
 * UTF-8, no field over CSV_FIELD_MAX bytes), so ingest can reject the row
 * naming the field instead of silently truncating it at a NUL.
 */
#ifndef LTV_CSVREAD_H
#define LTV_CSVREAD_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

struct csv_reader; /* opaque */

/*
 * Longest field ingest accepts, in bytes. Longer fields are still read (a
 * record is never split) but flagged CSV_FAULT_TOO_LONG; ids, names and
 * numbers are far shorter, so such a field is almost always an unbalanced
 * quote that swallowed lines.
 */
#define CSV_FIELD_MAX 65536

enum csv_fault_kind {
	CSV_FAULT_NONE,
	CSV_FAULT_NUL,      /* a NUL byte: C strings would end there */
	CSV_FAULT_UTF8,     /* not valid UTF-8 (overlong forms and surrogates included) */
	CSV_FAULT_TOO_LONG, /* longer than CSV_FIELD_MAX bytes */
};

/* The first unusable field of a record. */
struct csv_fault {
	enum csv_fault_kind kind;
	size_t field;       /* 0-based field index */
	size_t offset;      /* byte offset in the field where it goes wrong; TOO_LONG: its length */
	unsigned char byte; /* CSV_FAULT_UTF8: the first byte that is not valid there */
};

/* Whether a file's first n bytes start with gzip's magic (csv_reader_open then reads it through zlib). */
static inline int csv_gzip_magic(const unsigned char *first, size_t n)
{
	return n >= 2 && first[0] == 0x1f && first[1] == 0x8b;
}

/*
 * Opens path for reading. A gzip file (found by its magic bytes, whatever its
 * name) is decompressed as it is read. Returns NULL and sets err (naming the
 * path) on failure.
 */
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

/*
 * The fault of the record csv_reader_next returned last: kind CSV_FAULT_NONE
 * when every field is usable text, else its first unusable field.
 */
void csv_reader_fault(const struct csv_reader *r, struct csv_fault *out);

/* Writes what is wrong, for a reject reason ("contains a NUL byte at byte 2; ..."). */
void csv_fault_describe(const struct csv_fault *f, char *buf, size_t size);

/*
 * Sets the field delimiter: ',' (the default), ';' or '\t'; call it before
 * the first csv_reader_next. Returns LTV_EINVAL for any other byte.
 */
int csv_reader_set_delimiter(struct csv_reader *r, char delim);

/*
 * Lines without a quote are split by a fast path that gives the records
 * libcsv would (it is on by default); off, every byte goes through libcsv.
 * For tests and benchmarks that compare the two.
 */
void csv_reader_set_fast_path(struct csv_reader *r, int on);

/*
 * Read-ahead: a second thread reads (and for gzip decompresses) the file and
 * splits it into records while the caller works on the ones before; the
 * records, lines, faults and errors are the same as without it. Call it
 * before the first csv_reader_next; off by default (a thread is worth it for
 * large files only). The reader is then still used by one caller thread.
 */
void csv_reader_set_read_ahead(struct csv_reader *r, int on);

/*
 * Batches: with read-ahead the records can be taken a whole buffer at a time
 * (about a 64th of the file, at most 1 MB of text), so that threads can work
 * on different buffers at once. csv_reader_next_batch hands out the next one
 * (first the rest of the buffer csv_reader_next was in, when there is one):
 * 1 and *out, 0 at the end of the file, or the reader's failure once the
 * records before it were handed out, as csv_reader_next does. The batch's
 * records stay valid until csv_reader_give_back, which any thread may call;
 * give every batch back, in any order, before taking more than three (the
 * thread waits for an empty buffer).
 */
struct csv_batch;
struct csv_fields {
	char **fields; /* n field strings, NULL at [n]; grown as needed */
	size_t n, cap;
};
/* 1 when batches can be taken: read-ahead asked for and its thread not failed to start. */
int csv_reader_has_batches(const struct csv_reader *r);
int csv_reader_next_batch(struct csv_reader *r, struct csv_batch **out, struct ltv_err *err);
void csv_reader_give_back(struct csv_reader *r, struct csv_batch *b);
/*
 * Raw batches: with it, a batch after the first buffer may come as whole
 * lines of text not yet split into records, which csv_batch_split splits
 * (on the thread that takes the batch, so the records it writes are in that
 * core's cache when it reads them). The records, lines, faults and errors
 * are those of the reader without it; records handed out one by one
 * (csv_reader_next) are split before. Call it before the first
 * csv_reader_next; off by default. csv_reader_estimate_records does not
 * count a raw buffer's records: ask it before the batches (ingest_parse asks
 * after the users file's first buffer, which is never raw).
 */
void csv_reader_set_raw_batches(struct csv_reader *r, int on);
/* Splits a raw batch's lines into its records; call it before the csv_batch_ calls below. */
void csv_batch_split(struct csv_batch *b);
/* Records in the batch. */
size_t csv_batch_count(const struct csv_batch *b);
/* Record i of the batch: fields into *io (free io->fields after the last), line and fault. */
void csv_batch_record(const struct csv_batch *b, size_t i, struct csv_fields *io,
		      size_t *out_line, struct csv_fault *out_fault);
/* Field `field` of record i, or NULL when the record has fewer fields or there is no such record. */
const char *csv_batch_field(const struct csv_batch *b, size_t i, size_t field);
/* Bytes of the file read when the batch was handed over (compressed for gzip), for progress. */
uint64_t csv_batch_bytes_read(const struct csv_batch *b);

/*
 * Field `field` of the record `ahead` records after the one csv_reader_next
 * returned last, when that record is parsed already; NULL when it is not (or
 * has fewer fields). Read-only, for prefetching what a later row will need;
 * good until the next csv_reader_next.
 */
const char *csv_reader_peek_field(const struct csv_reader *r, size_t ahead, size_t field);

/*
 * Records in the whole file, estimated from those parsed so far and the bytes
 * they took, to size tables once; 0 when unknown (gzip, not a regular file).
 */
uint64_t csv_reader_estimate_records(const struct csv_reader *r);

/* Bytes consumed so far (of the compressed file for gzip) and the file size, for progress. */
uint64_t csv_reader_bytes_read(const struct csv_reader *r);
uint64_t csv_reader_file_size(const struct csv_reader *r);
const char *csv_reader_path(const struct csv_reader *r);

/* Closes and frees; accepts NULL. */
/*
 * Feeds h every byte read from the file, as it is read (on the read-ahead
 * thread when there is one): a file's content hash for the price of hashing,
 * without a second read. Call before the first csv_reader_next.
 */
struct hasher;
void csv_reader_hash_raw(struct csv_reader *r, struct hasher *h);
/*
 * The file's content hash, exactly hash_file_hex's: the bytes fed so far and
 * the rest of the file (stops the read-ahead thread; the reader is then done
 * except for csv_reader_free). A gzip file, or one read without
 * csv_reader_hash_raw, is hashed by hash_file_hex. 0, or LTV_EIO.
 */
int csv_reader_raw_hash_hex(struct csv_reader *r, char out_hex[33], struct ltv_err *err);
void csv_reader_free(struct csv_reader *r);

/*
 * Writes one field to f quoted per RFC 4180 when it contains a comma, quote,
 * CR or LF (quotes doubled), or starts or ends with a space or tab (which the
 * reader would otherwise trim); otherwise as is.
 */
#include <stdio.h>
void csv_write_field(FILE *f, const char *s);
/* Whether csv_write_field quotes s (for writers that build lines in memory). */
int csv_field_needs_quotes(const char *s);

#endif
