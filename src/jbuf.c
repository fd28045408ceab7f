/*
 * Growable text with JSON and CSV writers (contract in include/ltv/jbuf.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/jbuf.h"
#include "ltv/numfmt.h"

void jbuf_init(struct jbuf *b)
{
	b->cap = 256;
	b->p = xmalloc(b->cap);
	b->p[0] = '\0';
	b->len = 0;
}

void jbuf_release(struct jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *jbuf_take(struct jbuf *b, size_t *out_len)
{
	char *p = b->p;

	if (out_len)
		*out_len = b->len;
	memset(b, 0, sizeof(*b));
	return p;
}

static void reserve(struct jbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < need)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
}

void jbuf_reserve(struct jbuf *b, size_t extra)
{
	reserve(b, extra);
}

void jbuf_add_grow(struct jbuf *b, const char *s, size_t n)
{
	reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jbuf_addf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void jbuf_json_str(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	reserve(b, strlen(s) + 2);
	b->p[b->len++] = '"';
	for (;;) {
		const unsigned char *run = u;
		char esc = 0;

		/* A run of bytes that need no escape is copied at once. */
		while (*u >= 0x20 && *u != '"' && *u != '\\')
			u++;
		if (u > run)
			jbuf_add(b, (const char *)run, (size_t)(u - run));
		if (!*u)
			break;
		switch (*u) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\b': esc = 'b'; break;
		case '\f': esc = 'f'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		default: break;
		}
		if (esc) {
			char two[2] = { '\\', esc };

			jbuf_add(b, two, 2);
		} else {
			char six[6] = { '\\', 'u', '0', '0', hex[*u >> 4], hex[*u & 15] };

			jbuf_add(b, six, 6);
		}
		u++;
	}
	jbuf_add(b, "\"", 1);
}

/* cJSON 1.7's print_number, without its locale handling (ltvpipe runs in "C"). */
static void number(struct jbuf *b, double v, const char *nan_text)
{
	if (isnan(v) || isinf(v)) {
		jbuf_puts(b, nan_text);
		return;
	}
	reserve(b, NUMFMT_MAX); /* written in place, NUL included */
	b->len += numfmt_json(b->p + b->len, v);
}

void jbuf_json_num(struct jbuf *b, double v)
{
	number(b, v, "null");
}

void jbuf_num(struct jbuf *b, double v)
{
	number(b, v, "");
}

void jbuf_fixed(struct jbuf *b, double v, int decimals)
{
	reserve(b, NUMFMT_MAX);
	b->len += numfmt_fixed(b->p + b->len, v, decimals);
}

void jbuf_int(struct jbuf *b, long long v)
{
	char tmp[24];
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--n] = '-';
	jbuf_add(b, tmp + n, sizeof(tmp) - n);
}

void jbuf_csv_field(struct jbuf *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		jbuf_puts(b, s);
		return;
	}
	jbuf_add(b, "\"", 1);
	for (const char *q = s; *q; q++) {
		if (*q == '"')
			jbuf_add(b, "\"", 1);
		jbuf_add(b, q, 1);
	}
	jbuf_add(b, "\"", 1);
}
