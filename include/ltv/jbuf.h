/*
 * A growable text buffer with JSON and CSV writers, for answers built at a
 * rate where a cJSON tree per row would cost more than the prediction
 * (ltvpipe serve's batch answers). Numbers are written in cJSON's form (an
 * integer when exact, else %.15g when it reads back equal, else %.17g; NaN
 * and infinities as null), but always exactly: every double round-trips.
 */
#ifndef LTV_JBUF_H
#define LTV_JBUF_H

#include <stddef.h>
#include <string.h>

struct jbuf {
	char *p;     /* NUL-terminated; owned, freed by jbuf_release or taken by jbuf_take */
	size_t len;
	size_t cap;
};

void jbuf_init(struct jbuf *b);
void jbuf_release(struct jbuf *b);
/* The text (caller frees); b is empty afterwards. */
char *jbuf_take(struct jbuf *b, size_t *out_len);
/* Room for extra more bytes at once (a batch answer of known size: no copies as it grows). */
void jbuf_reserve(struct jbuf *b, size_t extra);
/* jbuf_add when the buffer must grow first. */
void jbuf_add_grow(struct jbuf *b, const char *s, size_t n);

/*
 * n bytes of s. Inline: score's lines are built from many pieces of a byte
 * or a few, and a call with a memcpy per piece was 4% of scoring 1M users.
 */
static inline void jbuf_add(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap) {
		jbuf_add_grow(b, s, n);
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_add(b, s, strlen(s));
}
void jbuf_addf(struct jbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* A JSON string literal with its quotes; bytes below 0x20, '"' and '\\' escaped. */
void jbuf_json_str(struct jbuf *b, const char *s);
/* A JSON number as cJSON prints it; NaN and infinities are null. */
void jbuf_json_num(struct jbuf *b, double v);
/* The number alone, in the same form (NaN and infinities as an empty string), for CSV. */
void jbuf_num(struct jbuf *b, double v);
/* printf's "%.*f" of v, decimals 0..9 (numfmt.h: the same bytes, faster). */
void jbuf_fixed(struct jbuf *b, double v, int decimals);
/* printf's "%lld". */
void jbuf_int(struct jbuf *b, long long v);
/* A CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180). */
void jbuf_csv_field(struct jbuf *b, const char *s);

#endif
