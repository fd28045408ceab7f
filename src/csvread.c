/*
 * Streaming CSV reader: libcsv does the RFC 4180 state machine, this file adds
 * what libcsv lacks for ingest, namely the physical line each record starts on
 * (so errors can say file:line), BOM stripping, pull-style iteration and
 * messages that say how to fix the file. libcsv reports neither positions nor
 * where a record began, so the input is fed to it in segments that each end
 * at a CR or LF: a record can then only begin or end on a segment boundary we
 * control, and counting '\n' between segments gives exact line numbers even
 * with newlines inside quoted fields and CRLF endings.
 *
 * Most lines of an export hold no quote at all, and for those libcsv's byte
 * at a time state machine and callbacks were most of ingest's tokenizing time
 * (bench/results.md, "ingest"): such a line, when it starts a record and ends
 * within the chunk, is split here directly, with libcsv's rules (fields split
 * at commas, spaces and tabs around them trimmed); any line with a quote, or
 * cut by the chunk's end, goes through libcsv as before. Every field is
 * checked for NUL bytes, invalid UTF-8 and length on both paths.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>
#include <zlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ltv/bqueue.h"
#include "ltv/csvread.h"
#include "ltv/hash.h"

#define CSV_CHUNK (64 * 1024)

/*
 * Bytes of a chunk that are 16 at a time scanned past its '\n' sentinel: the
 * chunk is allocated this much longer (and zeroed), and nothing past the
 * sentinel is ever used.
 */
#define SCAN_PAD 16

/*
 * libcsv grows its field buffer by this much at a time (128 bytes by
 * default, which made a long field cost thousands of reallocations).
 */
#define CSV_BLK_SIZE (1 << 20)

/*
 * Buffers the read-ahead thread hands over: one being handed records from
 * (or two handed out whole, to ingest's parse worker and its caller), one
 * queued, one for the thread to swap in, one spare so it never waits on a
 * slow give-back.
 */
#define RA_BUFFERS 4

/* A cache line: the reader's fields for the caller's side are on lines of their own. */
#define READER_LINE 64

/*
 * A complete record queued for csv_reader_next: n fields from
 * field_off[first]. Its fault, rare, is kept apart (rec_buf's faults), so a
 * record is 32 bytes and not 56: with read-ahead every byte of a buffer is
 * written on one core and read on the other, and the writes to lines the
 * other core has read cost the reading thread about as much as its parse
 * (at 1,000,000 users, events.csv: 0.23 s of its CPU with nobody reading
 * the buffers, 0.41 s with a thread on the other core reading them).
 */
struct queued_record {
	size_t first;
	size_t n;
	size_t line;
	size_t fault; /* 0: none; else 1 + its index in the buffer's faults */
};

/*
 * Parsed records: the field text of the queued records and of the record in
 * progress, each field NUL-terminated (offsets, not pointers, because text
 * grows by realloc while libcsv calls back). With read-ahead a buffer that
 * is handed over also says what the reader had done by then.
 */
struct rec_buf {
	char *text;
	size_t text_len, text_cap;
	size_t *field_off;
	size_t n_fields, fields_cap;
	struct queued_record *queue;
	size_t n_queued, queue_cap;
	struct csv_fault *faults; /* of the queued records that have one, in order */
	size_t n_faults, faults_cap;
	/*
	 * Raw batches (csv_reader_set_raw_batches): whole lines of text, each
	 * ended by '\n', none holding a quote, that follow the queued records
	 * and are split by csv_batch_split on the thread that takes the batch.
	 * raw_line: the line they start on; a '\n' sentinel and SCAN_PAD bytes
	 * follow them, as a chunk's.
	 */
	unsigned char *raw;
	size_t raw_len, raw_cap;
	size_t raw_line;
	const unsigned char *raw_cls;
	unsigned char raw_delim;
	/* Read-ahead only: the reader's state when the buffer was handed over. */
	size_t first_record;     /* csv_reader_next_batch: the records before it were handed out */
	uint64_t n_records, bytes_read;
	int last;                /* nothing follows: the end of the file, or status */
	int status;              /* the reader's failure, once these records are handed out */
	struct ltv_err failure;
};

struct csv_reader {
	char *path;
	FILE *f;
	gzFile gz;  /* a gzip file, read through zlib instead of f */
	struct hasher *raw_hash; /* csv_reader_hash_raw: fed every byte fread returns */
	const unsigned char *cls; /* the fast path's byte classes for this delimiter */
	unsigned char delim;
	unsigned char own_cls[256];
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
	struct rec_buf b;    /* where records are parsed into */
	uint64_t n_records;  /* queued since the start of the file */

	/* The record in progress: its first field and the line it began on. */
	int in_record;
	size_t rec_first;
	size_t rec_line;
	size_t field_line; /* where the current field began, for unterminated quotes */
	size_t line;       /* physical line of the next byte fed to libcsv */

	struct csv_fault rec_fault;  /* of the record in progress */
	int fast;                    /* split quote-free lines without libcsv */

	/*
	 * What csv_reader_next writes for each record it hands out, in cache
	 * lines of their own (the struct is allocated on a line, reader_alloc):
	 * beside the fields the read-ahead thread writes for each record it
	 * parses (n_records, line, rec_fault), every record took the lines
	 * from one core to the other and back. At 1,000,000 users that was
	 * csv_reader_next and csv_reader_fault's 85 samples of score's main
	 * thread in the users file, and the thread's queue_record (perf).
	 */
	_Alignas(READER_LINE) struct rec_buf *cv; /* where csv_reader_next hands them from:
						  * &b, or a pool buffer with read-ahead */
	size_t queue_head;           /* the next record of *cv to hand out */
	char **out;                  /* pointers handed to the caller, rebuilt per record */
	size_t out_cap;
	struct csv_fault last_fault; /* of the record handed out last */

	_Alignas(READER_LINE) int status; /* sticky failure: once malformed, every later call
					   * fails the same way */
	struct ltv_err failure;

	/*
	 * Read-ahead (csv_reader_set_read_ahead): a thread reads, decompresses
	 * and splits the file into b, and hands what it parsed over whole: it
	 * takes an empty buffer of the pool from free_bufs, swaps its contents
	 * with b's and queues it on full_bufs (include/ltv/bqueue.h). The caller
	 * takes full buffers in order, hands records out of them (cv) or hands
	 * them out whole (csv_reader_next_batch), and gives each back to
	 * free_bufs. A buffer is only ever one thread's, and everything else in
	 * the struct is the thread's while it runs (the caller's side only uses
	 * cv, queue_head, out, last_fault, taken and the fields set before the
	 * first csv_reader_next), so nothing is shared but the two queues.
	 */
	int read_ahead;  /* asked for: the thread starts at the first csv_reader_next */
	int raw_batches; /* csv_reader_set_raw_batches: buffers after the first may be raw */
	/*
	 * Raw batches: the text after the last '\n' of the buffer handed over
	 * (the start of the next line), and a chunk read but not yet used, one
	 * holding a quote, which the next buffer splits itself (leave_raw).
	 */
	unsigned char *tail;
	size_t tail_len, tail_cap;
	size_t pending;
	int raw_eof; /* a raw fill read the end of the file */
	int ra_running;  /* the thread was started (joined by csv_reader_free) */
	struct rec_buf pool[RA_BUFFERS];
	struct bqueue free_bufs, full_bufs;
	pthread_t ra_thread;
	struct rec_buf taken; /* the reader's state of the last buffer taken: no records */
};

/* Byte offset of the first byte that breaks UTF-8 in s, or len when it is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;
		size_t n;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0; /* overlong */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong */
			else if (c == 0xF4)
				hi = 0x8F; /* above U+10FFFF */
		} else {
			return i;
		}
		if (i + 1 >= len || s[i + 1] < lo || s[i + 1] > hi)
			return i + 1 < len ? i + 1 : i;
		for (size_t k = 2; k <= n; k++)
			if (i + k >= len || s[i + k] < 0x80 || s[i + k] > 0xBF)
				return i + k < len ? i + k : i;
		i += n + 1;
	}
	return len;
}

/* Notes the record's first unusable field; field is its 0-based index. */
static void check_field(struct csv_reader *r, const unsigned char *s, size_t len, size_t field)
{
	const unsigned char *nul;
	size_t bad;

	if (r->rec_fault.kind != CSV_FAULT_NONE)
		return;
	if (len > CSV_FIELD_MAX) {
		r->rec_fault = (struct csv_fault){ CSV_FAULT_TOO_LONG, field, len, 0 };
	} else if ((nul = memchr(s, '\0', len)) != NULL) {
		r->rec_fault = (struct csv_fault){ CSV_FAULT_NUL, field, (size_t)(nul - s), 0 };
	} else if ((bad = utf8_invalid_at(s, len)) < len) {
		r->rec_fault = (struct csv_fault){ CSV_FAULT_UTF8, field, bad, s[bad] };
	}
}

static void begin_record(struct csv_reader *r)
{
	r->in_record = 1;
	r->rec_first = r->b.n_fields;
	r->rec_line = r->line;
	r->field_line = r->line;
	r->rec_fault.kind = CSV_FAULT_NONE;
}

/* Appends one field's text, NUL-terminated. */
static inline void add_field(struct csv_reader *r, const void *s, size_t len)
{
	ARRAY_GROW(r->b.field_off, r->b.n_fields + 1, r->b.fields_cap);
	ARRAY_GROW(r->b.text, r->b.text_len + len + 1, r->b.text_cap);
	r->b.field_off[r->b.n_fields++] = r->b.text_len;
	if (len)
		memcpy(r->b.text + r->b.text_len, s, len);
	r->b.text[r->b.text_len + len] = '\0';
	r->b.text_len += len + 1;
}

/*
 * Queues the record of fields first.. with its fault. A plain line passes
 * none (plain_line) and does not clear r->rec_fault: the struct's copy after
 * a 4-byte store to its first field was a load that store forwarding cannot
 * serve, so it waited for every store before it to reach the cache, among
 * them the line's copy into a buffer the other core had read last. That
 * wait was 376 of the events read-ahead thread's 518 samples in score at
 * 1,000,000 users (perf, on the load after the struct's).
 */
static void queue_record(struct csv_reader *r, size_t first, size_t line,
			 const struct csv_fault *fault)
{
	struct queued_record *q;

	ARRAY_GROW(r->b.queue, r->b.n_queued + 1, r->b.queue_cap);
	q = &r->b.queue[r->b.n_queued++];
	q->first = first;
	q->n = r->b.n_fields - first;
	q->line = line;
	q->fault = 0;
	if (fault && fault->kind != CSV_FAULT_NONE) {
		ARRAY_GROW(r->b.faults, r->b.n_faults + 1, r->b.faults_cap);
		r->b.faults[r->b.n_faults++] = *fault;
		q->fault = r->b.n_faults;
	}
	r->n_records++;
}

/* The fault of record q of v. */
static struct csv_fault record_fault(const struct rec_buf *v, const struct queued_record *q)
{
	static const struct csv_fault none = { .kind = CSV_FAULT_NONE };

	return q->fault ? v->faults[q->fault - 1] : none;
}

static void on_field(void *s, size_t len, void *data)
{
	struct csv_reader *r = data;

	/*
	 * feed() marks record starts before libcsv sees them; this only covers
	 * a libcsv that starts rows on bytes it does not expect to.
	 */
	if (!r->in_record)
		begin_record(r);
	check_field(r, s, len, r->b.n_fields - r->rec_first);
	add_field(r, s, len);
	/* A field ended at a delimiter, so the next one begins on this line. */
	r->field_line = r->line;
}

static void on_record(int c, void *data)
{
	struct csv_reader *r = data;

	(void)c;
	queue_record(r, r->rec_first, r->rec_line, &r->rec_fault);
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

/* Defined with the fast path below. */
static const unsigned char byte_class[256];

/*
 * The reader layer: a file that starts with gzip's magic bytes is read
 * through zlib, whatever its name, so "events.csv.gz" and a compressed file
 * without the suffix both work; any other file is read with stdio as before,
 * so plain CSV pays nothing for it.
 */
static int open_gzip(struct csv_reader *r, struct ltv_err *err)
{
	unsigned char magic[2];
	const size_t n = fread(magic, 1, 2, r->f);

	if (!csv_gzip_magic(magic, n)) {
		rewind(r->f);
		return 0;
	}
	r->gz = gzopen(r->path, "rb");
	if (!r->gz)
		return err_set(err, LTV_EIO, "cannot read '%s' as gzip: %s", r->path, strerror(errno));
	gzbuffer(r->gz, 256 * 1024);
	fclose(r->f);
	r->f = NULL;
	return 0;
}

/* Reads up to CSV_CHUNK bytes of text into to; 0 at the end, -1 (reader failed) on an error. */
static long read_chunk_into(struct csv_reader *r, unsigned char *to)
{
	int n, zerr;

	if (!r->gz) {
		const size_t got = fread(to, 1, CSV_CHUNK, r->f);

		if (got == 0 && ferror(r->f))
			return reader_fail(r, LTV_EIO, "cannot read '%s': %s", r->path, strerror(errno));
		if (r->raw_hash)
			hasher_update(r->raw_hash, to, got);
		return (long)got;
	}
	n = gzread(r->gz, to, CSV_CHUNK);
	if (n < 0 || (n == 0 && gzerror(r->gz, &zerr) && zerr != Z_OK && zerr != Z_STREAM_END)) {
		const char *msg = gzerror(r->gz, &zerr), *colon = strrchr(msg, ':');

		/* zlib's message starts with the path, which ours already names. */
		return reader_fail(r, LTV_EIO, "cannot read '%s': %s, a truncated or damaged gzip "
				   "file; check it with 'gzip -t' and copy it again", r->path,
				   colon && colon[1] == ' ' ? colon + 2 : msg);
	}
	return n;
}

/* read_chunk_into the reader's chunk. */
static long read_chunk(struct csv_reader *r)
{
	return read_chunk_into(r, r->chunk);
}

/* A zeroed reader on a cache line of its own (READER_LINE); freed with free(). */
static struct csv_reader *reader_alloc(void)
{
	void *p;

	if (posix_memalign(&p, READER_LINE, sizeof(struct csv_reader)) != 0)
		die_oom(sizeof(struct csv_reader));
	memset(p, 0, sizeof(struct csv_reader));
	return p;
}

struct csv_reader *csv_reader_open(const char *path, struct ltv_err *err)
{
	struct csv_reader *r = NULL;
	struct stat st;

	r = reader_alloc();
	r->path = xstrdup(path);
	r->cv = &r->b;
	r->f = fopen(path, "rb");
	if (!r->f) {
		err_set(err, LTV_EIO, "cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode))
		r->file_size = (uint64_t)st.st_size;
	if (open_gzip(r, err) < 0)
		goto fail;
	if (csv_init(&r->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
		err_set(err, LTV_ENOMEM, "cannot set up the CSV parser for '%s'", path);
		goto fail;
	}
	r->parser_ready = 1;
	csv_set_blk_size(&r->parser, CSV_BLK_SIZE);
	r->fast = 1;
	r->cls = byte_class;
	r->delim = ',';
	r->chunk = xcalloc(1, CSV_CHUNK + 1 + SCAN_PAD);
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
	const size_t keep_fields = r->in_record ? r->b.n_fields - r->rec_first : 0;
	size_t text_from;

	r->b.n_queued = 0;
	r->b.n_faults = 0;
	r->queue_head = 0;
	if (keep_fields == 0) {
		r->b.n_fields = 0;
		r->b.text_len = 0;
		r->rec_first = 0;
		return;
	}
	text_from = r->b.field_off[r->rec_first];
	memmove(r->b.text, r->b.text + text_from, r->b.text_len - text_from);
	r->b.text_len -= text_from;
	for (size_t i = 0; i < keep_fields; i++)
		r->b.field_off[i] = r->b.field_off[r->rec_first + i] - text_from;
	r->b.n_fields = keep_fields;
	r->rec_first = 0;
}

static int parse_error(struct csv_reader *r)
{
	const int e = csv_error(&r->parser);
	const size_t field_no = (r->in_record ? r->b.n_fields - r->rec_first : 0) + 1;

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

/* Byte classes of the fast path; 0 is an ordinary byte of a field. */
enum { B_PLAIN, B_COMMA, B_QUOTE, B_EOL, B_BLANK, B_CHECK };

/* One letter a class, to keep the table readable. */
#define P B_PLAIN
#define C B_COMMA
#define Q B_QUOTE
#define E B_EOL
#define B B_BLANK
#define X B_CHECK
static const unsigned char byte_class[256] = {
	X, P, P, P, P, P, P, P, P, B, E, P, P, E, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	B, P, Q, P, P, P, P, P, P, P, P, P, C, P, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef P
#undef C
#undef Q
#undef E
#undef B
#undef X

/* Adds the unquoted field [a, b) as libcsv would: spaces and tabs around it trimmed. */
static inline void fast_field(struct csv_reader *r, const unsigned char *a, const unsigned char *b,
			      size_t first, int check)
{
	while (a < b && (*a == ' ' || *a == '\t'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	if (check || (size_t)(b - a) > CSV_FIELD_MAX)
		check_field(r, a, (size_t)(b - a), r->b.n_fields - first);
	add_field(r, a, (size_t)(b - a));
}

/*
 * The fast path, byte by byte: when the line at p holds no quote and ends
 * before end, queues its record (none for a blank line) and returns the bytes
 * it used, with its terminator; otherwise undoes what it added and returns 0
 * for libcsv to read the line. end is the end of the chunk, where refill put a
 * '\n' sentinel.
 */
static size_t fast_line_bytes(struct csv_reader *r, const unsigned char *p, const unsigned char *end)
{
	const size_t first = r->b.n_fields, text_len = r->b.text_len;
	const unsigned char *const cls = r->cls;
	const unsigned char *s = p, *field = p;
	int blank = 1, check = 0;

	r->rec_fault.kind = CSV_FAULT_NONE;
	for (;; s++) {
		const unsigned char *run = s;

		/* *end is a '\n' sentinel (refill), so this loop needs no bound check. */
		while (cls[*s] == B_PLAIN)
			s++;
		if (s != run)
			blank = 0;
		if (s == end)
			goto undo;
		switch (cls[*s]) {
		case B_BLANK:
			continue;
		case B_CHECK:
			blank = 0;
			check = 1;
			continue;
		case B_COMMA:
			fast_field(r, field, s, first, check);
			field = s + 1;
			blank = 0;
			check = 0;
			continue;
		case B_QUOTE:
			goto undo;
		default: /* B_EOL */
			break;
		}
		break;
	}
	if (!blank) {
		fast_field(r, field, s, first, check);
		queue_record(r, first, r->line, &r->rec_fault);
	}
	if (*s == '\n')
		r->line++;
	return (size_t)(s + 1 - p);
undo:
	r->b.n_fields = first;
	r->b.text_len = text_len;
	return 0;
}

/*
 * Where a plain line's delimiters are noted (plain_line): more fields than
 * this and the line takes the byte-by-byte path.
 */
#define PLAIN_FIELDS 64

/*
 * The bytes at s..s+15 that may not be plain: every byte below '#' (the
 * blanks, line ends, the quote, NUL and a few rare control bytes; bytes of
 * 0x80 and over too, as signed chars) and the delimiter. A bit per byte, the
 * lowest first; the byte class table then says what each one is.
 */
static inline unsigned maybe_special(const unsigned char *s, unsigned char delim)
{
#ifdef __SSE2__
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
	const __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8('"' + 1));
	const __m128i d = _mm_cmpeq_epi8(v, _mm_set1_epi8((char)delim));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, d));
#else
	unsigned mask = 0;

	for (unsigned i = 0; i < 16; i++)
		mask |= (unsigned)((signed char)s[i] < '"' + 1 || s[i] == delim) << i;
	return mask;
#endif
}

/*
 * The common line of an export, split without a byte loop: plain bytes and
 * delimiters only, ended by CR or LF before end, not empty. It goes into the
 * text in one copy, its delimiters and terminator overwritten by NULs, which
 * gives the bytes fast_line_bytes writes field by field (no blank is trimmed,
 * no field checked, as there is none to trim and none to fault). Returns the
 * bytes used, or 0 for fast_line_bytes to read the line (a blank or a high or
 * NUL byte or a quote in it, a line cut by end, too many fields).
 */
static size_t plain_line(struct csv_reader *r, const unsigned char *p, const unsigned char *end)
{
	const unsigned char *const cls = r->cls;
	uint32_t delims[PLAIN_FIELDS];
	size_t n_delims = 0, len, base, first;

	/* *end is a '\n' sentinel with SCAN_PAD bytes after it, so the scan needs no bound check. */
	for (const unsigned char *s = p;; s += 16) {
		unsigned mask = maybe_special(s, r->delim);

		for (; mask; mask &= mask - 1) {
			const unsigned char *const q = s + __builtin_ctz(mask);

			switch (cls[*q]) {
			case B_PLAIN:
				continue;
			case B_COMMA:
				if (n_delims == PLAIN_FIELDS - 1)
					return 0;
				delims[n_delims++] = (uint32_t)(q - p);
				continue;
			case B_EOL:
				if (q == p || q == end)
					return 0;
				len = (size_t)(q - p);
				if (len > CSV_FIELD_MAX)
					return 0; /* a field may be over the limit: fast_line_bytes checks each */
				goto found;
			default: /* B_QUOTE, B_BLANK, B_CHECK */
				return 0;
			}
		}
	}
found:
	ARRAY_GROW(r->b.field_off, r->b.n_fields + n_delims + 1, r->b.fields_cap);
	ARRAY_GROW(r->b.text, r->b.text_len + len + 1, r->b.text_cap);
	base = r->b.text_len;
	memcpy(r->b.text + base, p, len);
	r->b.field_off[r->b.n_fields] = base;
	for (size_t i = 0; i < n_delims; i++) {
		r->b.text[base + delims[i]] = '\0';
		r->b.field_off[r->b.n_fields + 1 + i] = base + delims[i] + 1;
	}
	r->b.text[base + len] = '\0';
	r->b.text_len = base + len + 1;
	first = r->b.n_fields;
	r->b.n_fields += n_delims + 1;
	queue_record(r, first, r->line, NULL);
	if (p[len] == '\n')
		r->line++;
	return len + 1;
}

/* The fast path (fast_line_bytes), the plain line first. */
static size_t fast_line(struct csv_reader *r, const unsigned char *p, const unsigned char *end)
{
	const size_t n = plain_line(r, p, end);

	return n ? n : fast_line_bytes(r, p, end);
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

		if (!r->in_record && r->fast) {
			n = fast_line(r, p, end);
			if (n) {
				p += n;
				continue;
			}
		}
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

			while (q < seg_end && (*q == ' ' || *q == '\t') && *q != r->delim)
				q++;
			if (q < seg_end && *q != '\r' && *q != '\n')
				begin_record(r);
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
	const long got = read_chunk(r);
	size_t n = got > 0 ? (size_t)got : 0;
	const unsigned char *p = r->chunk;

	if (got < 0)
		return (int)got;
	r->chunk[n] = '\n'; /* the fast path's sentinel; never fed to libcsv */
	if (n == 0) {
		r->at_eof = 1;
		if (csv_fini(&r->parser, on_field, on_record, r) != 0)
			return reader_fail(r, LTV_EINVAL,
					   "%s:%zu: unterminated quoted field (field %zu) — add the "
					   "closing quote, and double any quote inside the field (\"\")",
					   r->path, r->field_line,
					   (r->in_record ? r->b.n_fields - r->rec_first : 0) + 1);
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

/* Bytes consumed (of the compressed file for gzip): the reading thread's own count. */
static uint64_t bytes_consumed(const struct csv_reader *r)
{
	if (r->gz) {
		const z_off_t off = gzoffset(r->gz);

		return off > 0 ? (uint64_t)off : 0;
	}
	return r->bytes_read;
}

/*
 * Text the read-ahead thread parses before it hands a buffer over, after the
 * first: a 64th of the file, from one chunk to 1 MB. One handover per 64 KB
 * chunk was 27,000 thread switches for score's 478 MB of CSV, each a futex
 * wait and a wake-up; on this VM they cost more CPU than the thread saved.
 * The first buffer is one chunk, as before: the records in it size the
 * user id map (csv_reader_estimate_records), and the caller starts at once.
 */
static size_t read_ahead_batch(const struct csv_reader *r)
{
	const uint64_t want = r->file_size / 64;

	return want < CSV_CHUNK ? CSV_CHUNK : want > (1 << 20) ? (size_t)1 << 20 : (size_t)want;
}

/*
 * The '\n' bytes of p[0..n): 16 bytes at a time, each lane counting its
 * matches for up to 255 rounds, then summed (no popcount instruction in the
 * build's baseline: __builtin_popcount was a libgcc call, 34 samples of the
 * read-ahead thread's 206 at 1,000,000 users).
 */
static size_t count_newlines(const unsigned char *p, size_t n)
{
	size_t count = 0, i = 0;

#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();

	while (i + 16 <= n) {
		__m128i lanes = zero, sums;

		for (int round = 0; round < 255 && i + 16 <= n; round++, i += 16) {
			const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));

			lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, nl));
		}
		sums = _mm_sad_epu8(lanes, zero);
		count += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
	}
#endif
	for (; i < n; i++)
		count += p[i] == '\n';
	return count;
}

/* Appends n bytes to the buffer's raw text, room kept for the sentinel and SCAN_PAD. */
static void raw_append(struct rec_buf *b, const unsigned char *p, size_t n)
{
	ARRAY_GROW(b->raw, b->raw_len + n + 1 + SCAN_PAD, b->raw_cap);
	memcpy(b->raw + b->raw_len, p, n);
	b->raw_len += n;
}

/* 1 when the next buffer may be filled raw: a record boundary, the fast path, nothing pending. */
static int can_fill_raw(const struct csv_reader *r)
{
	return r->raw_batches && r->fast && !r->in_record && r->delim != '"' && r->status == 0 &&
	       !r->at_eof && !r->raw_eof && r->pending == 0;
}

/*
 * Fills r->b with raw lines (rec_buf's raw): the tail left by the buffer
 * before, then chunks, until batch bytes or a chunk holding a quote (kept
 * in r->chunk, pending) or the end of the file (raw_eof) or a read error.
 * The text after the last '\n' is kept as the next tail. A quote-free
 * line is split by the fast path alone, whatever it follows, and the lines
 * a fill holds are counted here, so a raw buffer can be split by any thread
 * into exactly the records, lines and faults that refill's would have: what
 * a worker splits itself is in its own cache when it reads the records (the
 * reading thread's writes to lines the other core had read were most of its
 * cost, struct queued_record).
 */
static void fill_raw(struct csv_reader *r, size_t batch)
{
	struct rec_buf *const b = &r->b;
	const unsigned char *cut;

	b->raw_len = 0;
	b->raw_line = r->line;
	b->raw_cls = r->cls;
	b->raw_delim = r->delim;
	raw_append(b, r->tail, r->tail_len);
	while (b->raw_len < batch) {
		unsigned char *to;
		long got;

		/* Read in place: a copy from the chunk was as dear as the split it saved. */
		ARRAY_GROW(b->raw, b->raw_len + CSV_CHUNK + 1 + SCAN_PAD, b->raw_cap);
		to = b->raw + b->raw_len;
		got = read_chunk_into(r, to);
		if (got <= 0) {
			r->raw_eof = got == 0;
			break;
		}
		r->bytes_read += (uint64_t)got;
		if (memchr(to, '"', (size_t)got)) {
			memcpy(r->chunk, to, (size_t)got);
			r->pending = (size_t)got;
			break;
		}
		b->raw_len += (size_t)got;
	}
	cut = b->raw_len ? memrchr(b->raw, '\n', b->raw_len) : NULL;
	r->tail_len = b->raw_len - (cut ? (size_t)(cut + 1 - b->raw) : 0);
	ARRAY_GROW(r->tail, r->tail_len + 1 + SCAN_PAD, r->tail_cap);
	memcpy(r->tail, b->raw + b->raw_len - r->tail_len, r->tail_len);
	b->raw_len -= r->tail_len;
	r->line += count_newlines(b->raw, b->raw_len);
	b->raw[b->raw_len] = '\n'; /* the fast path's sentinel, as refill's */
	memset(b->raw + b->raw_len + 1, 0, SCAN_PAD);
}

/*
 * After raw buffers, what they left is split here as refill would: the tail
 * (a line begun), then the pending chunk. 0, or the reader's failure.
 */
static int leave_raw(struct csv_reader *r)
{
	int ret = r->status;

	if (r->tail_len) {
		const size_t n = r->tail_len;

		r->tail_len = 0;
		r->tail[n] = '\n';
		memset(r->tail + n + 1, 0, SCAN_PAD);
		ret = feed(r, r->tail, n);
	}
	if (ret == 0 && r->pending) {
		const size_t n = r->pending;

		r->pending = 0;
		r->chunk[n] = '\n';
		ret = feed(r, r->chunk, n);
	}
	return ret;
}

/*
 * Splits b's raw lines into records after its queued ones, as refill's
 * fast path does (the same functions, on a reader of its own).
 */
static void split_raw(struct rec_buf *b)
{
	struct csv_reader w;
	const unsigned char *p = b->raw, *const end = b->raw + b->raw_len;

	if (b->raw_len == 0)
		return;
	memset(&w, 0, sizeof(w));
	w.b = *b;
	w.cls = b->raw_cls;
	w.delim = b->raw_delim;
	w.line = b->raw_line;
	while (p < end) {
		const size_t n = fast_line(&w, p, end);

		assert(n > 0); /* every line ends in '\n' before end, and holds no quote */
		p += n;
	}
	w.b.raw_len = 0;
	*b = w.b;
}

/*
 * The read-ahead thread: parses as csv_reader_next would, a refill at a
 * time, and hands over what it parsed whenever it has a whole record and
 * read_ahead_batch's bytes of text (or the file ended or failed). The record
 * in progress stays: it is copied into the fresh buffer after the swap, as
 * compact() keeps it in place.
 */
static void *read_ahead_main(void *arg)
{
	struct csv_reader *r = arg;
	struct rec_buf carry = { 0 };
	const size_t batch = read_ahead_batch(r);
	int first = 1;

	for (;;) {
		int last, stop;
		size_t keep;
		void *empty;

		if (!first && can_fill_raw(r))
			fill_raw(r, batch);
		if (r->b.raw_len == 0 && leave_raw(r) == 0)
			while ((r->b.n_queued == 0 || (!first && r->b.text_len < batch)) && !r->at_eof &&
			       refill(r) == 0)
				;
		first = 0;
		last = r->at_eof || r->status < 0;
		r->b.n_records = r->n_records;
		r->b.bytes_read = bytes_consumed(r);
		r->b.last = last;
		r->b.status = r->status;
		r->b.failure = r->failure;
		/* The record in progress, to carry into the next buffer. */
		keep = r->in_record ? r->b.n_fields - r->rec_first : 0;
		carry.n_fields = carry.text_len = 0;
		if (keep) {
			const size_t from = r->b.field_off[r->rec_first];

			ARRAY_GROW(carry.text, r->b.text_len - from, carry.text_cap);
			ARRAY_GROW(carry.field_off, keep, carry.fields_cap);
			memcpy(carry.text, r->b.text + from, r->b.text_len - from);
			carry.text_len = r->b.text_len - from;
			for (size_t i = 0; i < keep; i++)
				carry.field_off[i] = r->b.field_off[r->rec_first + i] - from;
			carry.n_fields = keep;
			r->b.n_fields = r->rec_first;
			r->b.text_len = from;
		}
		/* The queues are closed when csv_reader_free stops the thread. */
		stop = bqueue_pop(&r->free_bufs, &empty) == 0;
		if (!stop) {
			struct rec_buf *const full = empty;
			const struct rec_buf t = *full;

			*full = r->b;
			r->b = t;
			stop = bqueue_push(&r->full_bufs, full) < 0;
		}
		if (stop || last)
			break;
		r->b.n_queued = 0;
		r->b.n_faults = 0;
		r->b.n_fields = 0;
		r->b.text_len = 0;
		r->b.raw_len = 0;
		ARRAY_GROW(r->b.text, carry.text_len, r->b.text_cap);
		ARRAY_GROW(r->b.field_off, carry.n_fields, r->b.fields_cap);
		if (carry.text_len)
			memcpy(r->b.text, carry.text, carry.text_len);
		if (carry.n_fields) /* carry.field_off is NULL until a record is carried */
			memcpy(r->b.field_off, carry.field_off, carry.n_fields * sizeof(size_t));
		r->b.text_len = carry.text_len;
		r->b.n_fields = carry.n_fields;
		r->rec_first = 0;
	}
	free(carry.text);
	free(carry.field_off);
	return NULL;
}

/*
 * With read-ahead, the next buffer of records from the thread (started on
 * the first call); 0, or -1 once the last buffer has been handed out.
 */
static int start_read_ahead(struct csv_reader *r)
{
	bqueue_init(&r->free_bufs, RA_BUFFERS);
	bqueue_init(&r->full_bufs, RA_BUFFERS);
	for (size_t i = 0; i < RA_BUFFERS; i++)
		(void)bqueue_push(&r->free_bufs, &r->pool[i]);
	if (pthread_create(&r->ra_thread, NULL, read_ahead_main, r) != 0) {
		bqueue_release(&r->free_bufs);
		bqueue_release(&r->full_bufs);
		return -1;
	}
	r->ra_running = 1;
	return 0;
}

static int in_pool(const struct csv_reader *r, const struct rec_buf *b)
{
	return b >= r->pool && b < r->pool + RA_BUFFERS;
}

/* A buffer back to the thread: the free queue has room for all of them, so this never waits. */
static void give_back(struct csv_reader *r, struct rec_buf *b)
{
	(void)bqueue_push(&r->free_bufs, b);
}

/*
 * With read-ahead, the next full buffer from the thread (started on the
 * first call) into *out, its state noted in r->taken; 0, or -1 once the
 * last buffer has been taken.
 */
static int take_full(struct csv_reader *r, struct rec_buf **out)
{
	void *full;

	if (r->taken.last || bqueue_pop(&r->full_bufs, &full) == 0)
		return -1;
	*out = full;
	r->taken.n_records = (*out)->n_records;
	r->taken.bytes_read = (*out)->bytes_read;
	r->taken.last = (*out)->last;
	r->taken.status = (*out)->status;
	r->taken.failure = (*out)->failure;
	return 0;
}

/* The next buffer of records to hand out one by one: 0, or -1 after the last. */
static int take_ready(struct csv_reader *r)
{
	if (!r->ra_running) {
		if (start_read_ahead(r) < 0) {
			r->read_ahead = 0; /* no thread: read here, as without read-ahead */
			return -1;
		}
	} else if (in_pool(r, r->cv)) {
		give_back(r, r->cv);
	}
	r->cv = &r->taken; /* no records: what is handed out after the last buffer */
	r->queue_head = 0;
	if (take_full(r, &r->cv) < 0)
		return -1;
	split_raw(r->cv);
	r->cv->first_record = 0;
	return 0;
}

/* Refills *r->cv when it is handed out; 1 when it then holds a record. */
static int fill_view(struct csv_reader *r)
{
	if (r->read_ahead) {
		while (r->cv->n_queued == r->queue_head)
			if (take_ready(r) < 0)
				break;
		if (r->read_ahead)
			return r->cv->n_queued > r->queue_head;
	}
	compact(r);
	while (r->b.n_queued == 0 && !r->at_eof && refill(r) == 0)
		;
	return r->b.n_queued > 0;
}

int csv_reader_next(struct csv_reader *r, char ***out_fields, size_t *out_n,
		    size_t *out_line, struct ltv_err *err)
{
	const struct queued_record *q;
	struct rec_buf *v = r->cv;

	if (r->queue_head == v->n_queued) {
		/* Sticky: a malformed file is not resumed in the middle of a record. */
		if (r->read_ahead ? (r->taken.last && r->taken.status < 0) : r->status < 0) {
			const struct ltv_err *f = r->read_ahead ? &r->taken.failure : &r->failure;

			return err_set(err, f->code, "%s", f->msg);
		}
		if (!fill_view(r)) {
			const struct ltv_err *f = r->read_ahead ? &r->taken.failure : &r->failure;
			const int status = r->read_ahead ? r->taken.status : r->status;

			return status < 0 ? err_set(err, status, "%s", f->msg) : 0;
		}
		v = r->cv;
	}
	q = &v->queue[r->queue_head++];
	r->last_fault = record_fault(v, q);
	ARRAY_GROW(r->out, q->n + 1, r->out_cap);
	for (size_t i = 0; i < q->n; i++)
		r->out[i] = v->text + v->field_off[q->first + i];
	r->out[q->n] = NULL;
	*out_fields = r->out;
	*out_n = q->n;
	*out_line = q->line;
	return 1;
}

/* A batch is a pool buffer handed out whole, its records from first_record on. */
struct csv_batch {
	struct rec_buf buf;
};

int csv_reader_has_batches(const struct csv_reader *r)
{
	return r->read_ahead;
}

int csv_reader_next_batch(struct csv_reader *r, struct csv_batch **out, struct ltv_err *err)
{
	struct rec_buf *b;

	if (!r->read_ahead)
		return err_set(err, LTV_EINVAL, "%s: batches need read-ahead", r->path);
	if (!r->ra_running && start_read_ahead(r) < 0)
		return err_set(err, LTV_EIO, "%s: cannot start the read-ahead thread", r->path);
	/* First what is left of the buffer csv_reader_next was handing records from. */
	if (in_pool(r, r->cv)) {
		b = r->cv;
		r->cv = &r->taken;
		if (r->queue_head < b->n_queued) {
			b->first_record = r->queue_head;
			r->queue_head = 0;
			*out = (struct csv_batch *)b;
			return 1;
		}
		give_back(r, b);
	}
	r->cv = &r->taken;
	r->queue_head = 0;
	while (take_full(r, &b) == 0) {
		if (b->n_queued > 0 || b->raw_len > 0) {
			b->first_record = 0;
			*out = (struct csv_batch *)b;
			return 1;
		}
		give_back(r, b);
	}
	return r->taken.status < 0 ? err_set(err, r->taken.status, "%s", r->taken.failure.msg) : 0;
}

void csv_batch_split(struct csv_batch *b)
{
	split_raw(&b->buf);
}

void csv_reader_give_back(struct csv_reader *r, struct csv_batch *b)
{
	give_back(r, &b->buf);
}

size_t csv_batch_count(const struct csv_batch *b)
{
	return b->buf.n_queued - b->buf.first_record;
}

void csv_batch_record(const struct csv_batch *b, size_t i, struct csv_fields *io,
		      size_t *out_line, struct csv_fault *out_fault)
{
	const struct rec_buf *v = &b->buf;
	const struct queued_record *q = &v->queue[v->first_record + i];

	ARRAY_GROW(io->fields, q->n + 1, io->cap);
	for (size_t k = 0; k < q->n; k++)
		io->fields[k] = v->text + v->field_off[q->first + k];
	io->fields[q->n] = NULL;
	io->n = q->n;
	*out_line = q->line;
	*out_fault = record_fault(v, q);
}

const char *csv_batch_field(const struct csv_batch *b, size_t i, size_t field)
{
	const struct rec_buf *v = &b->buf;

	if (v->first_record + i >= v->n_queued || field >= v->queue[v->first_record + i].n)
		return NULL;
	return v->text + v->field_off[v->queue[v->first_record + i].first + field];
}

uint64_t csv_batch_bytes_read(const struct csv_batch *b)
{
	return b->buf.bytes_read;
}

void csv_reader_fault(const struct csv_reader *r, struct csv_fault *out)
{
	*out = r->last_fault;
}

void csv_fault_describe(const struct csv_fault *f, char *buf, size_t size)
{
	switch (f->kind) {
	case CSV_FAULT_NUL:
		snprintf(buf, size, "contains a NUL byte at byte %zu; remove it (is the file UTF-16 "
			 "or binary? export it as UTF-8 text)", f->offset + 1);
		break;
	case CSV_FAULT_UTF8:
		snprintf(buf, size, "is not valid UTF-8 (byte 0x%02x at byte %zu); export the file "
			 "as UTF-8", f->byte, f->offset + 1);
		break;
	case CSV_FAULT_TOO_LONG:
		snprintf(buf, size, "is %zu bytes long, over the limit of %d bytes a field; check for "
			 "an unbalanced quote before it", f->offset, CSV_FIELD_MAX);
		break;
	default:
		snprintf(buf, size, "is valid");
		break;
	}
}

int csv_reader_set_delimiter(struct csv_reader *r, char delim)
{
	const unsigned char d = (unsigned char)delim;

	if (d != ',' && d != ';' && d != '\t')
		return LTV_EINVAL;
	r->delim = d;
	csv_set_delim(&r->parser, d);
	if (d == ',') {
		r->cls = byte_class;
		return 0;
	}
	memcpy(r->own_cls, byte_class, sizeof(r->own_cls));
	r->own_cls[','] = B_PLAIN;
	r->own_cls[d] = B_COMMA;
	r->cls = r->own_cls;
	return 0;
}

void csv_reader_set_fast_path(struct csv_reader *r, int on)
{
	r->fast = on;
}

uint64_t csv_reader_bytes_read(const struct csv_reader *r)
{
	/* With read-ahead, as of the records being handed out: the thread's count moves. */
	return r->ra_running ? r->taken.bytes_read : bytes_consumed(r);
}

const char *csv_reader_peek_field(const struct csv_reader *r, size_t ahead, size_t field)
{
	const struct rec_buf *v = r->cv;
	const size_t i = r->queue_head - 1 + ahead;

	if (r->queue_head == 0 || i >= v->n_queued || field >= v->queue[i].n)
		return NULL;
	return v->text + v->field_off[v->queue[i].first + field];
}

uint64_t csv_reader_estimate_records(const struct csv_reader *r)
{
	/* With read-ahead, what the thread had read by the buffer being handed out. */
	const uint64_t records = r->ra_running ? r->taken.n_records : r->n_records;
	const uint64_t bytes = r->ra_running ? r->taken.bytes_read : r->bytes_read;

	if (r->gz || r->file_size == 0 || bytes == 0)
		return 0;
	return (uint64_t)((double)records * (double)r->file_size / (double)bytes);
}

void csv_reader_set_raw_batches(struct csv_reader *r, int on)
{
	r->raw_batches = on;
}

void csv_reader_set_read_ahead(struct csv_reader *r, int on)
{
	if (!r->ra_running)
		r->read_ahead = on;
}

uint64_t csv_reader_file_size(const struct csv_reader *r)
{
	return r->file_size;
}

const char *csv_reader_path(const struct csv_reader *r)
{
	return r->path;
}

static void rec_buf_free(struct rec_buf *b)
{
	free(b->text);
	free(b->field_off);
	free(b->queue);
	free(b->faults);
	free(b->raw);
}

/* Stops the read-ahead thread wherever it waits; batches not given back are the pool's still. */
static void stop_read_ahead(struct csv_reader *r)
{
	if (!r->ra_running)
		return;
	bqueue_close(&r->free_bufs);
	bqueue_close(&r->full_bufs);
	pthread_join(r->ra_thread, NULL);
	bqueue_release(&r->free_bufs);
	bqueue_release(&r->full_bufs);
	r->ra_running = 0;
}

void csv_reader_hash_raw(struct csv_reader *r, struct hasher *h)
{
	r->raw_hash = h;
}

int csv_reader_raw_hash_hex(struct csv_reader *r, char out_hex[HASH_HEX_LEN], struct ltv_err *err)
{
	unsigned char *buf;
	size_t n;
	int read_errno;

	/* zlib reads the compressed bytes itself: hashing them is a read of its own (small files). */
	if (r->gz || !r->raw_hash)
		return hash_file_hex(r->path, out_hex, err);
	/* After the thread, nothing reads f: the bytes the parse did not need follow in order. */
	stop_read_ahead(r);
	buf = xmalloc(CSV_CHUNK);
	while ((n = fread(buf, 1, CSV_CHUNK, r->f)) > 0)
		hasher_update(r->raw_hash, buf, n);
	read_errno = ferror(r->f) ? errno : 0;
	free(buf);
	if (read_errno)
		return err_set(err, LTV_EIO, "cannot read '%s': %s", r->path, strerror(read_errno));
	hasher_hex(r->raw_hash, out_hex);
	return 0;
}

void csv_reader_free(struct csv_reader *r)
{
	if (!r)
		return;
	stop_read_ahead(r);
	for (size_t i = 0; i < RA_BUFFERS; i++)
		rec_buf_free(&r->pool[i]);
	if (r->parser_ready)
		csv_free(&r->parser);
	if (r->f)
		fclose(r->f);
	if (r->gz)
		gzclose(r->gz);
	free(r->path);
	free(r->chunk);
	free(r->tail);
	rec_buf_free(&r->b);
	free(r->out);
	free(r);
}

/*
 * Leading and trailing blanks are quoted too: libcsv trims them from unquoted
 * fields, so this keeps a written value identical when read back.
 */
int csv_field_needs_quotes(const char *s)
{
	const size_t len = strlen(s);

	return strpbrk(s, ",\"\r\n") != NULL ||
	       (len > 0 && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t'));
}

void csv_write_field(FILE *f, const char *s)
{
	if (!csv_field_needs_quotes(s)) {
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
