/*
 * Error buffer, allocation and checked-parsing helpers shared by every module.
 * Allocation failure is the one condition below main that ends the process:
 * nothing useful can be reported once memory is gone.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <limits.h>
#include <malloc.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ltv/common.h"

int err_set(struct ltv_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_prefix(struct ltv_err *err, const char *fmt, ...)
{
	char prefix[512];
	char old[LTV_ERR_MAX];
	va_list ap;

	if (!err)
		return LTV_EINTERNAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation keeps the start of the message, which says what failed. */
	size_t plen = strlen(prefix);
	if (plen > sizeof(err->msg) - 3)
		plen = sizeof(err->msg) - 3;
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, ": ", 2);
	size_t rest = sizeof(err->msg) - plen - 3;
	size_t olen = strnlen(old, rest);
	memcpy(err->msg + plen + 2, old, olen);
	err->msg[plen + 2 + olen] = '\0';
	return err->code;
}

void err_clear(struct ltv_err *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

int ltv_exit_code(int status)
{
	if (status >= 0)
		return 0;
	if (status == LTV_EUSAGE || status == LTV_ECONFIG)
		return 2;
	return 1;
}

const char *ltv_status_name(int status)
{
	switch (status) {
	case LTV_OK: return "ok";
	case LTV_EINVAL: return "invalid input";
	case LTV_EUSAGE: return "usage error";
	case LTV_ECONFIG: return "config error";
	case LTV_EIO: return "i/o error";
	case LTV_ENOMEM: return "out of memory";
	case LTV_EREGISTRY: return "registry error";
	case LTV_EBUSY: return "registry busy";
	case LTV_EMODEL: return "model error";
	case LTV_ENOTFOUND: return "not found";
	default: return "internal error";
	}
}

void die_oom(size_t n)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die_oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		die_oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		die_oom(n);
	return q;
}

/* Below this a block holds no whole 2 MB page worth asking for. */
#define HUGE_HINT_MIN ((size_t)4 << 20)

/*
 * The pages under [p, p + n) get MADV_HUGEPAGE: the kernel then backs each
 * 2 MB-aligned range inside with one huge page at its first fault. glibc maps
 * a block this large on its own, its header in the first page: the hint
 * covers the whole mapping, header page included, since a mapping split in
 * two by a hint on part of it cannot be grown by mremap, and realloc then
 * copies the block instead (measured: 50,000 faults more). mremap keeps the
 * hint as realloc grows the block, and it goes away with it on free.
 */
static _Atomic int huge_pages_off; /* memory_use_huge_pages(0) */

void memory_use_huge_pages(int on)
{
	huge_pages_off = !on;
}

void memory_want_huge_pages(void *p, size_t n)
{
	const uintptr_t page = 4096, from = (uintptr_t)p & ~(page - 1);
	const uintptr_t to = ((uintptr_t)p + n + page - 1) & ~(page - 1);

	if (n >= HUGE_HINT_MIN && !huge_pages_off)
		(void)madvise((void *)from, to - from, MADV_HUGEPAGE);
}

void *xmalloc_huge(size_t n)
{
	void *p = xmalloc(n);

	memory_want_huge_pages(p, n);
	return p;
}

void *xrealloc_huge(void *p, size_t n)
{
	void *q = xrealloc(p, n);

	memory_want_huge_pages(q, n);
	return q;
}

/* The pages of a block are faulted in by chunks, one huge page each, claimed in turn. */
#define PREFAULT_CHUNK ((size_t)2 << 20)

/* Faults in the chunks of pf's block nobody has claimed yet (both threads run this). */
static void prefault_claim(struct prefault *pf)
{
	volatile char *p = pf->p;

	for (;;) {
		const size_t from = __atomic_fetch_add(&pf->next, 1, __ATOMIC_RELAXED) * PREFAULT_CHUNK;
		const size_t to = from + PREFAULT_CHUNK < pf->n ? from + PREFAULT_CHUNK : pf->n;

		if (from >= pf->n)
			return;
		for (size_t at = from; at < to; at += 4096)
			p[at] = 0;
		p[to - 1] = 0;
	}
}

static void *prefault_main(void *arg)
{
	prefault_claim(arg);
	return NULL;
}

void prefault_start(struct prefault *pf, void *p, size_t n)
{
	pthread_t t;

	_Static_assert(sizeof(pthread_t) <= sizeof(pf->thread), "pthread_t fits in uintptr_t");
	pf->p = p;
	pf->n = n;
	pf->next = 0;
	pf->running = n >= PREFAULT_MIN && pthread_create(&t, NULL, prefault_main, pf) == 0;
	if (pf->running)
		memcpy(&pf->thread, &t, sizeof(t));
}

void prefault_wait(struct prefault *pf)
{
	pthread_t t;

	if (!pf->running)
		return;
	/* What the thread has not reached yet is done here, rather than waited for. */
	prefault_claim(pf);
	memcpy(&t, &pf->thread, sizeof(t));
	pthread_join(t, NULL);
	pf->running = 0;
}

void populate_init(struct populate *pp)
{
	memset(pp, 0, sizeof(*pp));
}

void populate_add(struct populate *pp, void *p, size_t n)
{
	if (pp->running || pp->count == POPULATE_BLOCKS || !p || n < PREFAULT_MIN)
		return;
	pp->p[pp->count] = p;
	pp->n[pp->count++] = n;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Faults in the pages of [from, to) as the owner's first writes would, by an
 * atomic add of 0 to the first byte of each page of the range (the kernel
 * zeroes the page, a whole huge page on a hinted block) that stores back,
 * atomically, the byte it read: populate_start_pinned's owner may write it
 * meanwhile, and moves or frees nothing until populate_stop.
 */
static void populate_pinned_range(uintptr_t from, uintptr_t to)
{
	const uintptr_t page = 4096;

	for (uintptr_t at = from; at < to; at = (at | (page - 1)) + 1)
		(void)__atomic_fetch_add((char *)at, 0, __ATOMIC_RELAXED);
}

/* Faults [from, to) in, the block's pages from base on; 0 when the thread must end. */
static int populate_range(const struct populate *pp, uintptr_t base, uintptr_t from, uintptr_t to)
{
	if (__atomic_load_n(&pp->stop, __ATOMIC_RELAXED))
		return 0;
	if (pp->pinned) {
		/* the first page may begin before the block: start at the block */
		populate_pinned_range(from > base ? from : base, to);
		return 1;
	}
	return madvise((void *)from, to - from, MADV_POPULATE_WRITE) == 0; /* or a kernel without it */
}

/*
 * The blocks side by side, the same share of each per round: an owner that
 * fills several arrays row by row (a users table's columns) is at the same
 * share of each, and the thread stays ahead of it in all of them. A chunk at
 * a time, so populate_stop is answered within a chunk's faults.
 */
static void *populate_main(void *arg)
{
	struct populate *pp = arg;
	const uintptr_t page = 4096;
	size_t rounds = 1;

	for (size_t b = 0; b < pp->count; b++)
		if ((pp->n[b] + PREFAULT_CHUNK - 1) / PREFAULT_CHUNK > rounds)
			rounds = (pp->n[b] + PREFAULT_CHUNK - 1) / PREFAULT_CHUNK;
	for (size_t r = 0; r < rounds; r++) {
		for (size_t b = 0; b < pp->count; b++) {
			const uintptr_t base = (uintptr_t)pp->p[b];
			const uintptr_t from = (base + pp->n[b] / rounds * r) & ~(page - 1);
			const uintptr_t to = r + 1 == rounds ? base + pp->n[b]
							      : (base + pp->n[b] / rounds * (r + 1)) & ~(page - 1);

			if (to <= from)
				continue;
			if (!populate_range(pp, base, from, to))
				return NULL;
		}
	}
	return NULL;
}

static void populate_start_as(struct populate *pp, int pinned)
{
	pthread_t t;

	pp->stop = 0;
	pp->pinned = pinned;
	pp->running = pp->count > 0 && pthread_create(&t, NULL, populate_main, pp) == 0;
	if (pp->running)
		memcpy(&pp->thread, &t, sizeof(t));
}

void populate_start(struct populate *pp)
{
	populate_start_as(pp, 0);
}

void populate_start_pinned(struct populate *pp)
{
	populate_start_as(pp, 1);
}

void populate_stop(struct populate *pp)
{
	pthread_t t;

	if (!pp->running)
		return;
	__atomic_store_n(&pp->stop, 1, __ATOMIC_RELAXED);
	memcpy(&t, &pp->thread, sizeof(t));
	pthread_join(t, NULL);
	pp->running = 0;
	pp->count = 0;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	int len;
	char *buf;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		die_oom(0);
	buf = xmalloc((size_t)len + 1);
	va_start(ap, fmt);
	vsnprintf(buf, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return buf;
}

/*
 * A plain decimal ("-12.50", "3") with at most 15 significant digits is
 * m·10^-f with m < 2^53 exact and f <= 22, so one correctly rounded division
 * gives what strtod gives (Clinger's fast path), many times faster. 1 with
 * *out_value, or 0: not such a number, ask strtod.
 */
static int parse_plain_decimal(const char *s, double *out_value)
{
	static const double pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
					1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
					1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
	const int negative = *s == '-';
	uint64_t m = 0;
	int digits = 0, significant = 0, frac = -1;
	double v;

	if (*s == '-' || *s == '+')
		s++;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			if (significant > 0 || *s != '0')
				significant++;
			if (significant > 15)
				return 0;
			m = m * 10 + (uint64_t)(*s - '0');
			digits++;
			if (frac >= 0)
				frac++;
		} else if (*s == '.' && frac < 0) {
			frac = 0;
		} else {
			break;
		}
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '\0' || digits == 0 || frac > 22)
		return 0;
	v = frac > 0 ? (double)m / pow10[frac] : (double)m;
	*out_value = negative ? -v : v;
	return 1;
}

int parse_double(const char *s, double *out_value)
{
	char *end;
	double v;

	if (!s || !*s)
		return LTV_EINVAL;
	if (parse_plain_decimal(s, out_value))
		return 0;
	errno = 0;
	v = strtod(s, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	/*
	 * ERANGE also flags a subnormal result, which is exact enough and what
	 * "%.17g" prints for one; refuse only overflow and underflow to zero.
	 */
	if ((errno == ERANGE && (v == 0 || !isfinite(v))) || *end != '\0' || end == s ||
	    !isfinite(v))
		return LTV_EINVAL;
	*out_value = v;
	return 0;
}

int parse_int64(const char *s, int64_t *out_value)
{
	char *end;
	long long v;

	if (!s || !*s)
		return LTV_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end != '\0' || end == s)
		return LTV_EINVAL;
	*out_value = (int64_t)v;
	return 0;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t peak_rss_bytes(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (size_t)ru.ru_maxrss * 1024;
}

size_t current_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	long page = sysconf(_SC_PAGESIZE);

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return page > 0 ? (size_t)resident * (size_t)page : 0;
}

void memory_limit_arenas(int arenas)
{
#ifdef __GLIBC__
	(void)mallopt(M_ARENA_MAX, arenas);
#else
	(void)arenas;
#endif
}

void memory_keep_freed(void)
{
#ifdef __GLIBC__
	/* no block of its own mapping (M_MMAP_THRESHOLD stops at 32 MB): all from the heap */
	(void)mallopt(M_MMAP_MAX, 0);
	(void)mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

void memory_map_big_blocks(void)
{
#ifdef __GLIBC__
	(void)mallopt(M_MMAP_MAX, 65536); /* glibc's default */
	(void)mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

/*
 * Under AddressSanitizer glibc's allocator holds nothing (ASan's own serves
 * every malloc) and its malloc_trim is not intercepted: trimming glibc's
 * never-used main arena from two stage tasks at once crashed in mtrim
 * (test_stage_tasks under make SANITIZE=address). So no trim there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LTV_TRIM_GLIBC_HEAP 0
#elif defined(__GLIBC__)
#define LTV_TRIM_GLIBC_HEAP 1
#else
#define LTV_TRIM_GLIBC_HEAP 0
#endif

void memory_return_free(void)
{
#if LTV_TRIM_GLIBC_HEAP
	(void)malloc_trim(0);
#endif
}

int double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void swap_double(double *a, double *b)
{
	const double t = *a;

	*a = *b;
	*b = t;
}

/* Reorders v[0..n) so that v[k] is the value sorting would put there, v[< k] <= v[k] <= v[> k]. */
static void select_kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;
		double pivot;
		size_t i = lo, j = hi;

		/* Median of three as pivot: sorted or constant input stays linear. */
		if (v[mid] < v[lo])
			swap_double(&v[mid], &v[lo]);
		if (v[hi] < v[lo])
			swap_double(&v[hi], &v[lo]);
		if (v[hi] < v[mid])
			swap_double(&v[hi], &v[mid]);
		pivot = v[mid];
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (pivot < v[j])
				j--;
			if (i <= j) {
				swap_double(&v[i], &v[j]);
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		/* Now v[lo..j] <= pivot <= v[i..hi], and v(j..i) == pivot. */
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
}

double kth_select(double *v, size_t n, size_t k)
{
	select_kth(v, n, k);
	return v[k];
}

double median_select(double *v, size_t n)
{
	const size_t k = n / 2;
	double below;

	select_kth(v, n, k);
	if (n % 2)
		return v[k];
	below = v[0];
	for (size_t i = 1; i < k; i++)
		below = v[i] > below ? v[i] : below;
	return 0.5 * (below + v[k]);
}
