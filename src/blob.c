/*
 * Little-endian serialisation for model bodies (format documented in
 * include/ltv/blob.h). Written by hand because each model is a few arrays of
 * doubles and a bounds-checked reader is shorter than any dependency.
 */
#include <stdlib.h>
#include <string.h>

#include "ltv/blob.h"

void blob_writer_init(struct blob_writer *w)
{
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
}

void blob_writer_release(struct blob_writer *w)
{
	free(w->data);
	blob_writer_init(w);
}

uint8_t *blob_writer_detach(struct blob_writer *w, size_t *out_len)
{
	uint8_t *data = w->data;

	*out_len = w->len;
	blob_writer_init(w);
	return data ? data : xcalloc(1, 1);
}

void blob_put_bytes(struct blob_writer *w, const void *p, size_t n)
{
	ARRAY_GROW(w->data, w->len + n, w->cap);
	if (n)
		memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void put_le(struct blob_writer *w, uint64_t v, int bytes)
{
	uint8_t b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	blob_put_bytes(w, b, (size_t)bytes);
}

void blob_put_header(struct blob_writer *w, const char magic[8], uint32_t version)
{
	blob_put_bytes(w, magic, 8);
	blob_put_u32(w, version);
}

void blob_put_u32(struct blob_writer *w, uint32_t v) { put_le(w, v, 4); }
void blob_put_u64(struct blob_writer *w, uint64_t v) { put_le(w, v, 8); }

void blob_put_f64(struct blob_writer *w, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	put_le(w, bits, 8);
}

void blob_put_str(struct blob_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	blob_put_u32(w, (uint32_t)n);
	blob_put_bytes(w, s, n);
}

void blob_put_f64_array(struct blob_writer *w, const double *v, size_t n)
{
	blob_put_u64(w, n);
	for (size_t i = 0; i < n; i++)
		blob_put_f64(w, v[i]);
}

void blob_reader_init(struct blob_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->failed = 0;
}

static int take(struct blob_reader *r, size_t n)
{
	if (r->failed || n > r->len - r->pos) {
		r->failed = 1;
		return 0;
	}
	return 1;
}

static uint64_t get_le(struct blob_reader *r, int bytes)
{
	uint64_t v = 0;

	if (!take(r, (size_t)bytes))
		return 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->data[r->pos + (size_t)i] << (8 * i);
	r->pos += (size_t)bytes;
	return v;
}

int blob_get_header(struct blob_reader *r, const char magic[8], uint32_t max_version,
		    uint32_t *out_version, struct ltv_err *err)
{
	uint32_t version;

	if (!take(r, 8) || memcmp(r->data + r->pos, magic, 8) != 0)
		return err_set(err, LTV_EINVAL, "model blob is not a '%.8s' body", magic);
	r->pos += 8;
	version = blob_get_u32(r);
	if (r->failed || version == 0 || version > max_version)
		return err_set(err, LTV_EINVAL,
			       "'%.8s' blob has format version %u; this build reads up to %u",
			       magic, version, max_version);
	*out_version = version;
	return 0;
}

uint32_t blob_get_u32(struct blob_reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t blob_get_u64(struct blob_reader *r) { return get_le(r, 8); }

double blob_get_f64(struct blob_reader *r)
{
	uint64_t bits = get_le(r, 8);
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

char *blob_get_str(struct blob_reader *r)
{
	uint32_t n = blob_get_u32(r);
	char *s;

	if (!take(r, n))
		return NULL;
	s = xstrndup((const char *)r->data + r->pos, n);
	r->pos += n;
	return s;
}

int blob_get_f64_array(struct blob_reader *r, double **out, size_t *out_n)
{
	uint64_t n = blob_get_u64(r);
	double *v;

	if (r->failed || n > (r->len - r->pos) / 8) {
		r->failed = 1;
		return LTV_EINVAL;
	}
	v = xmalloc((size_t)n * sizeof(double));
	for (uint64_t i = 0; i < n; i++)
		v[i] = blob_get_f64(r);
	*out = v;
	*out_n = (size_t)n;
	return 0;
}

int blob_get_bytes(struct blob_reader *r, void *dst, size_t n)
{
	if (!take(r, n))
		return LTV_EINVAL;
	memcpy(dst, r->data + r->pos, n);
	r->pos += n;
	return 0;
}

int blob_reader_status(const struct blob_reader *r, const char *what, struct ltv_err *err)
{
	if (!r->failed)
		return 0;
	return err_set(err, LTV_EINVAL, "%s: model blob is truncated or corrupt (at byte %zu of %zu)",
		       what, r->pos, r->len);
}
