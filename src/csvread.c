/*
 * Streaming CSV reader: libcsv does the RFC 4180 state machine, this file adds
 * what libcsv lacks for ingest, namely the physical line each record starts on
 * (so errors can say file:line), BOM stripping, pull-style iteration and
 * messages that say how to fix the file. libcsv reports neither positions nor
 * where a record began, so the input is fed to it in segments that each end
 * at a CR or LF: a record can then only begin or end on a segment boundary we
 * control, and counting '\n' between segments gives exact line numbers even
 * with newlines inside quoted fields and CRLF endings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>

#include "ltv/csvread.h"

#define CSV_CHUNK (64 * 1024)

/* A complete record queued for csv_reader_next: n fields from field_off[first]. */
struct queued_record {
	size_t first;
	size_t n;
	size_t line;
};

struct csv_reader {
	char *path;
	FILE *f;
	struct csv_parser parser;
	int parser_ready;
	uint64_t file_size;
	uint64_t bytes_read;
	unsigned char *chunk;
	int at_start; /* nothing read yet: a BOM may follow */
	int at_eof;

	/*
	 * Field text of the queued records and of the record in progress, each
	 * field NUL-terminated. Offsets, not pointers, because text grows by
	 * realloc while libcsv calls back.
	 */
	char *text;
	size_t text_len, text_cap;
	size_t *field_off;
	size_t n_fields, fields_cap;
	struct queued_record *queue;
	size_t n_queued, queue_cap, queue_head;

	/* The record in progress: its first field and the line it began on. */
	int in_record;
	size_t rec_first;
	size_t rec_line;
	size_t field_line; /* where the current field began, for unterminated quotes */
	size_t line;       /* physical line of the next byte fed to libcsv */

	char **out; /* pointers handed to the caller, rebuilt per record */
	size_t out_cap;

	int status; /* sticky failure: once malformed, every later call fails the same way */
	struct ltv_err failure;
};

static void on_field(void *s, size_t len, void *data)
{
	struct csv_reader *r = data;

	/*
	 * feed() marks record starts before libcsv sees them; this only covers
	 * a libcsv that starts rows on bytes it does not expect to.
	 */
	if (!r->in_record) {
		r->in_record = 1;
		r->rec_first = r->n_fields;
		r->rec_line = r->line;
	}
	ARRAY_GROW(r->field_off, r->n_fields + 1, r->fields_cap);
	ARRAY_GROW(r->text, r->text_len + len + 1, r->text_cap);
	r->field_off[r->n_fields++] = r->text_len;
	if (len)
		memcpy(r->text + r->text_len, s, len);
	r->text[r->text_len + len] = '\0';
	r->text_len += len + 1;
	/* A field ended at a delimiter, so the next one begins on this line. */
	r->field_line = r->line;
}

static void on_record(int c, void *data)
{
	struct csv_reader *r = data;
	struct queued_record *q;

	(void)c;
	ARRAY_GROW(r->queue, r->n_queued + 1, r->queue_cap);
	q = &r->queue[r->n_queued++];
	q->first = r->rec_first;
	q->n = r->n_fields - r->rec_first;
	q->line = r->rec_line;
	r->in_record = 0;
}

/*
 * Records the failure; csv_reader_next reports it once the records parsed
 * before the bad spot have been handed out, so callers see every good record.
 */
static int reader_fail(struct csv_reader *r, int code, const char *fmt, ...) LTV_PRINTF(3, 4);

static int reader_fail(struct csv_reader *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->failure.msg, sizeof(r->failure.msg), fmt, ap);
	va_end(ap);
	r->failure.code = code;
	r->status = code;
	return code;
}

struct csv_reader *csv_reader_open(const char *path, struct ltv_err *err)
{
	struct csv_reader *r = NULL;
	struct stat st;

	r = xcalloc(1, sizeof(*r));
	r->path = xstrdup(path);
	r->f = fopen(path, "rb");
	if (!r->f) {
		err_set(err, LTV_EIO, "cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode))
		r->file_size = (uint64_t)st.st_size;
	if (csv_init(&r->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
		err_set(err, LTV_ENOMEM, "cannot set up the CSV parser for '%s'", path);
		goto fail;
	}
	r->parser_ready = 1;
	r->chunk = xmalloc(CSV_CHUNK);
	r->at_start = 1;
	r->line = 1;
	return r;
fail:
	csv_reader_free(r);
	return NULL;
}

/*
 * Drops the records already handed out, keeping the partial record (its
 * fields may continue in the next chunk) at the front of the buffers.
 */
static void compact(struct csv_reader *r)
{
	const size_t keep_fields = r->in_record ? r->n_fields - r->rec_first : 0;
	size_t text_from;

	r->n_queued = 0;
	r->queue_head = 0;
	if (keep_fields == 0) {
		r->n_fields = 0;
		r->text_len = 0;
		r->rec_first = 0;
		return;
	}
	text_from = r->field_off[r->rec_first];
	memmove(r->text, r->text + text_from, r->text_len - text_from);
	r->text_len -= text_from;
	for (size_t i = 0; i < keep_fields; i++)
		r->field_off[i] = r->field_off[r->rec_first + i] - text_from;
	r->n_fields = keep_fields;
	r->rec_first = 0;
}

static int parse_error(struct csv_reader *r)
{
	const int e = csv_error(&r->parser);
	const size_t field_no = (r->in_record ? r->n_fields - r->rec_first : 0) + 1;

	if (e == CSV_EPARSE)
		return reader_fail(r, LTV_EINVAL,
				   "%s:%zu: misplaced quote in field %zu — a field that contains quotes "
				   "must itself be quoted, with each inner quote doubled (\"\")",
				   r->path, r->line, field_no);
	if (e == CSV_ENOMEM)
		return reader_fail(r, LTV_ENOMEM, "%s:%zu: out of memory in the CSV parser",
				   r->path, r->line);
	return reader_fail(r, LTV_EINVAL, "%s:%zu: field %zu is too large (%s) — check for "
			   "an unbalanced quote earlier in the file", r->path, r->line, field_no,
			   csv_strerror(e));
}

/*
 * Feeds one buffer to libcsv, one segment per line terminator. A record starts
 * in the first segment that holds a byte libcsv does not skip before a row
 * (it skips spaces, tabs, CR and LF there; that is also what makes such lines
 * blank).
 */
static int feed(struct csv_reader *r, const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	const unsigned char *nl = NULL;

	while (p < end) {
		const unsigned char *seg_end, *cr;
		size_t n;

		if (!nl || nl < p) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl)
				nl = end;
		}
		cr = memchr(p, '\r', (size_t)(nl - p));
		seg_end = cr ? cr + 1 : (nl < end ? nl + 1 : end);
		n = (size_t)(seg_end - p);

		if (!r->in_record) {
			const unsigned char *q = p;

			while (q < seg_end && (*q == ' ' || *q == '\t'))
				q++;
			if (q < seg_end && *q != '\r' && *q != '\n') {
				r->in_record = 1;
				r->rec_first = r->n_fields;
				r->rec_line = r->line;
				r->field_line = r->line;
			}
		}
		if (csv_parse(&r->parser, p, n, on_field, on_record, r) != n)
			return parse_error(r);
		if (seg_end[-1] == '\n')
			r->line++;
		p = seg_end;
	}
	return 0;
}

static int refill(struct csv_reader *r)
{
	size_t n = fread(r->chunk, 1, CSV_CHUNK, r->f);
	const unsigned char *p = r->chunk;

	if (n == 0) {
		if (ferror(r->f))
			return reader_fail(r, LTV_EIO, "cannot read '%s': %s", r->path,
					   strerror(errno));
		r->at_eof = 1;
		if (csv_fini(&r->parser, on_field, on_record, r) != 0)
			return reader_fail(r, LTV_EINVAL,
					   "%s:%zu: unterminated quoted field (field %zu) — add the "
					   "closing quote, and double any quote inside the field (\"\")",
					   r->path, r->field_line,
					   (r->in_record ? r->n_fields - r->rec_first : 0) + 1);
		return 0;
	}
	r->bytes_read += n;
	if (r->at_start) {
		r->at_start = 0;
		if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
			p += 3;
			n -= 3;
		}
	}
	return feed(r, p, n);
}

int csv_reader_next(struct csv_reader *r, char ***out_fields, size_t *out_n,
		    size_t *out_line, struct ltv_err *err)
{
	const struct queued_record *q;

	if (r->queue_head == r->n_queued) {
		/* Sticky: a malformed file is not resumed in the middle of a record. */
		if (r->status < 0)
			return err_set(err, r->status, "%s", r->failure.msg);
		compact(r);
		while (r->n_queued == 0 && !r->at_eof && refill(r) == 0)
			;
		if (r->n_queued == 0)
			return r->status < 0 ? err_set(err, r->status, "%s", r->failure.msg) : 0;
	}
	q = &r->queue[r->queue_head++];
	ARRAY_GROW(r->out, q->n + 1, r->out_cap);
	for (size_t i = 0; i < q->n; i++)
		r->out[i] = r->text + r->field_off[q->first + i];
	r->out[q->n] = NULL;
	*out_fields = r->out;
	*out_n = q->n;
	*out_line = q->line;
	return 1;
}

uint64_t csv_reader_bytes_read(const struct csv_reader *r)
{
	return r->bytes_read;
}

uint64_t csv_reader_file_size(const struct csv_reader *r)
{
	return r->file_size;
}

const char *csv_reader_path(const struct csv_reader *r)
{
	return r->path;
}

void csv_reader_free(struct csv_reader *r)
{
	if (!r)
		return;
	if (r->parser_ready)
		csv_free(&r->parser);
	if (r->f)
		fclose(r->f);
	free(r->path);
	free(r->chunk);
	free(r->text);
	free(r->field_off);
	free(r->queue);
	free(r->out);
	free(r);
}

/*
 * Leading and trailing blanks are quoted too: libcsv trims them from unquoted
 * fields, so this keeps a written value identical when read back.
 */
void csv_write_field(FILE *f, const char *s)
{
	const size_t len = strlen(s);

	if (strpbrk(s, ",\"\r\n") == NULL &&
	    (len == 0 || (s[0] != ' ' && s[0] != '\t' && s[len - 1] != ' ' && s[len - 1] != '\t'))) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
