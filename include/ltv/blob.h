/*
 * The documented binary format for non-XGBoost model bodies stored as BLOBs:
 * an 8-byte magic naming the model ("LTVKMNS1"), a u32 format version, then
 * fields in little-endian order: u32, u64, f64 (IEEE 754 bits, so doubles
 * round-trip exactly), strings as u32 length + bytes, arrays as u64 count +
 * elements. Readers check every length against what is left, so a truncated
 * or foreign blob is an error, never an overread.
 */
#ifndef LTV_BLOB_H
#define LTV_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

struct blob_writer {
	uint8_t *data; /* owned; hand to the caller with blob_writer_detach */
	size_t len;
	size_t cap;
};

void blob_writer_init(struct blob_writer *w);
void blob_writer_release(struct blob_writer *w);
/* Returns the buffer (caller frees) and its length; w is left empty. */
uint8_t *blob_writer_detach(struct blob_writer *w, size_t *out_len);
void blob_put_header(struct blob_writer *w, const char magic[8], uint32_t version);
void blob_put_u32(struct blob_writer *w, uint32_t v);
void blob_put_u64(struct blob_writer *w, uint64_t v);
void blob_put_f64(struct blob_writer *w, double v);
void blob_put_str(struct blob_writer *w, const char *s);
void blob_put_f64_array(struct blob_writer *w, const double *v, size_t n);
void blob_put_bytes(struct blob_writer *w, const void *p, size_t n);

/* Reads from a borrowed buffer; the first failure sticks and is reported by blob_reader_status. */
struct blob_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	int failed;
};

void blob_reader_init(struct blob_reader *r, const void *data, size_t len);
/* Checks magic and returns the version, or sets err and returns a negative status. */
int blob_get_header(struct blob_reader *r, const char magic[8], uint32_t max_version,
		    uint32_t *out_version, struct ltv_err *err);
uint32_t blob_get_u32(struct blob_reader *r);
uint64_t blob_get_u64(struct blob_reader *r);
double blob_get_f64(struct blob_reader *r);
/* Returns a new string (caller frees), or NULL on failure. */
char *blob_get_str(struct blob_reader *r);
/* Allocates *out (caller frees) and returns 0, or a negative status. */
int blob_get_f64_array(struct blob_reader *r, double **out, size_t *out_n);
int blob_get_bytes(struct blob_reader *r, void *dst, size_t n);
/* 0 when every read so far fitted, else LTV_EINVAL with err naming what. */
int blob_reader_status(const struct blob_reader *r, const char *what, struct ltv_err *err);

#endif
