/*
 * Encoding and decoding of user-day blocks (format in
 * include/ltv/user_day_block.h). Varints keep a typical row (same user, the
 * next day, one event, no purchase) at 4 bytes plus its revenue, a quarter of
 * a SQLite row with its B-tree key.
 */
#include <string.h>

#include "ltv/blob.h"
#include "ltv/halves.h"
#include "ltv/user_day_block.h"

#define BLOCK_MAGIC "LTVUDAY1"
#define BLOCK_VERSION 1
#define HEADER_BYTES (8 + 4 + 8 + 4 * 8)

/* Blocks of this many rows or more are encoded on two threads (user_day_block_encode). */
#define ENCODE_HALVES_MIN ((size_t)1 << 16)

/* Unsigned LEB128, at most 10 bytes. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		const uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/* Bytes of v as a varint (put_varint). */
static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Row i's values in the four varint sections: uid step, day (step), events, purchases. */
static void row_varints(const struct user_day_row *rows, size_t i, uint64_t v[4])
{
	const struct user_day_row *r = &rows[i];
	const int64_t prev_uid = i ? rows[i - 1].uid : 0;

	v[0] = (uint64_t)(r->uid - prev_uid);
	v[1] = r->uid == prev_uid ? (uint64_t)(r->day - rows[i - 1].day - 1) : (uint64_t)r->day;
	v[2] = (uint64_t)r->events;
	v[3] = (uint64_t)r->purchases;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + bytes;
}

/*
 * One of the two halves of the rows a block is encoded from, [from, to):
 * the bytes of its part of each varint section, then where its parts and
 * its revenues go. A row's varints depend on the row before only, which
 * the second half reads across its first row: the halves run on two
 * threads (halves_run) and write the bytes one thread would.
 */
struct encode_half {
	const struct user_day_row *rows;
	size_t from, to;
	size_t len[4];
	uint8_t *sec[4], *revenue;
};

static void measure_half(void *arg)
{
	struct encode_half *h = arg;
	uint64_t v[4];

	for (size_t i = h->from; i < h->to; i++) {
		row_varints(h->rows, i, v);
		for (int k = 0; k < 4; k++)
			h->len[k] += varint_len(v[k]);
	}
}

static void write_half(void *arg)
{
	struct encode_half *h = arg;
	uint8_t *p = h->revenue;
	uint64_t v[4];

	for (size_t i = h->from; i < h->to; i++) {
		uint64_t bits;

		row_varints(h->rows, i, v);
		for (int k = 0; k < 4; k++)
			h->sec[k] += put_varint(h->sec[k], v[k]);
		memcpy(&bits, &h->rows[i].revenue, sizeof(bits));
		p = put_le(p, bits, 8);
	}
}

/*
 * Two passes: the sections' lengths first, then every section written in
 * place in the one buffer returned. A block of a million users is tens of
 * MB: staging the sections in buffers of their own and copying them after
 * wrote it twice and faulted in twice the memory (bench/ingest.sh). Each
 * pass runs as two halves of the rows on two threads from
 * ENCODE_HALVES_MIN rows on: at a million users this was 0.1 s of
 * ingest's serial tail with the other core idle.
 */
uint8_t *user_day_block_encode(const struct user_day_row *rows, size_t n, size_t *out_len)
{
	struct encode_half h[2] = { { .rows = rows, .from = 0, .to = n / 2 },
				    { .rows = rows, .from = n / 2, .to = n } };
	const int threads = n >= ENCODE_HALVES_MIN ? 2 : 1;
	size_t len[4], total;
	uint8_t *out, *p;

	halves_run(measure_half, &h[0], &h[1], threads);
	for (int k = 0; k < 4; k++)
		len[k] = h[0].len[k] + h[1].len[k];
	total = HEADER_BYTES + len[0] + len[1] + len[2] + len[3] + 8 * n;
	out = xmalloc_huge(total);
	memcpy(out, BLOCK_MAGIC, 8); /* the blob.h header: magic, u32 version */
	p = put_le(out + 8, BLOCK_VERSION, 4);
	p = put_le(p, n, 8);
	for (int k = 0; k < 4; k++)
		p = put_le(p, len[k], 8);
	for (int k = 0; k < 4; k++) {
		h[0].sec[k] = p;
		h[1].sec[k] = p + h[0].len[k];
		p += len[k];
	}
	h[0].revenue = p;
	h[1].revenue = p + 8 * h[1].from;
	halves_run(write_half, &h[0], &h[1], threads);
	*out_len = total;
	return out;
}

int user_day_cursor_open(struct user_day_cursor *c, const void *data, size_t len,
			 const char *what, struct ltv_err *err)
{
	struct blob_reader r;
	uint32_t version;
	uint64_t n, sec_len[4], at;
	int ret;

	memset(c, 0, sizeof(*c));
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, BLOCK_MAGIC, BLOCK_VERSION, &version, err);
	if (ret < 0)
		return ret;
	n = blob_get_u64(&r);
	for (int k = 0; k < 4; k++)
		sec_len[k] = blob_get_u64(&r);
	if ((ret = blob_reader_status(&r, what, err)) < 0)
		return ret;
	at = r.pos;
	for (int k = 0; k < 4; k++) {
		if (sec_len[k] > len - at)
			return err_set(err, LTV_EINVAL, "%s: a section runs past the end of the block",
				       what);
		c->p[k] = (const uint8_t *)data + at;
		c->end[k] = c->p[k] + sec_len[k];
		at += sec_len[k];
	}
	if (n > (len - at) / 8 || len - at != 8 * n)
		return err_set(err, LTV_EINVAL, "%s: %llu rows do not match the block's %zu bytes",
			       what, (unsigned long long)n, len);
	c->revenue = (const uint8_t *)data + at;
	c->left = (size_t)n;
	return 0;
}

int user_day_cursor_next(struct user_day_cursor *c, struct ltv_err *err)
{
	uint64_t v[4], bits = 0;

	if (c->left == 0)
		return 0;
	for (int k = 0; k < 4; k++)
		if (get_varint(&c->p[k], c->end[k], &v[k]) < 0 || v[k] > INT64_MAX)
			return err_set(err, LTV_EINVAL, "user-day block: a damaged varint");
	if (v[0] == 0 && c->row.uid == 0)
		return err_set(err, LTV_EINVAL, "user-day block: uid 0");
	if (v[0] > 0) {
		c->row.uid += (int64_t)v[0];
		c->row.day = (int64_t)v[1];
	} else {
		c->row.day += (int64_t)v[1] + 1;
	}
	c->row.events = (int64_t)v[2];
	c->row.purchases = (int64_t)v[3];
	for (int i = 7; i >= 0; i--)
		bits = bits << 8 | c->revenue[i];
	memcpy(&c->row.revenue, &bits, sizeof(bits));
	c->revenue += 8;
	c->left--;
	return 1;
}
