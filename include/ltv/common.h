/*
 * Cross-cutting definitions every ltvpipe file uses: status codes, the error
 * buffer that carries a failure's message up to main, and allocation helpers
 * that abort on out-of-memory (the one place library code may exit).
 */
#ifndef LTV_COMMON_H
#define LTV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LTV_VERSION "0.1.0"

/* 0 is success; every failure is negative so `if (ret < 0)` reads naturally. */
enum ltv_status {
	LTV_OK = 0,
	LTV_EINVAL = -1,    /* bad input data (a CSV row, a value out of range) */
	LTV_EUSAGE = -2,    /* bad command line */
	LTV_ECONFIG = -3,   /* bad configuration file or --set override */
	LTV_EIO = -4,       /* a file could not be read or written */
	LTV_ENOMEM = -5,
	LTV_EREGISTRY = -6, /* SQLite reported an error */
	LTV_EBUSY = -7,     /* another process holds the registry's write lock */
	LTV_EMODEL = -8,    /* a model could not be fitted or loaded */
	LTV_ENOTFOUND = -9, /* a named artefact, version or alias does not exist */
	LTV_EINTERNAL = -10,
};

#define LTV_ERR_MAX 2048

/*
 * Message-on-handle error reporting (as SQLite and XGBoost do): the function
 * that fails writes one human-readable line here and returns the code.
 */
struct ltv_err {
	int code;
	char msg[LTV_ERR_MAX];
};

#if defined(__GNUC__)
#define LTV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define LTV_NORETURN __attribute__((noreturn))
#else
#define LTV_PRINTF(f, a)
#define LTV_NORETURN
#endif

/* Sets err (may be NULL) and returns code, so a failure is one line. */
int err_set(struct ltv_err *err, int code, const char *fmt, ...) LTV_PRINTF(3, 4);
/* Prefixes an existing message with context: "features: <old message>". */
int err_prefix(struct ltv_err *err, const char *fmt, ...) LTV_PRINTF(2, 3);
void err_clear(struct ltv_err *err);
/* Exit code main uses for a status: 0, 1 failure, 2 usage or config. */
int ltv_exit_code(int status);
const char *ltv_status_name(int status);

/* Allocation that never returns NULL: out of memory prints and aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Allocates and formats; caller frees. */
char *xasprintf(const char *fmt, ...) LTV_PRINTF(1, 2);
LTV_NORETURN void die_oom(size_t n);
/*
 * xmalloc and xrealloc for an array of megabytes written soon after (ingest's
 * user-days): the block is asked for transparent huge pages before it is
 * touched, so the kernel fills it with one fault per 2 MB instead of one per
 * 4 KB. On this project's VMs a 4 KB fault costs about 17 us of CPU: a fresh
 * 128 MB array took 0.55 CPU s to fill on 4 KB pages and 0.01 to 0.15 s on
 * huge pages (bench/page_faults.c). A hint only: freed with free(), and
 * without THP the block works the same.
 */
void *xmalloc_huge(size_t n);
void *xrealloc_huge(void *p, size_t n);
/* The hint alone, for a block of n bytes at p that another allocator made (SQLite's). */
void memory_want_huge_pages(void *p, size_t n);
/*
 * Whether the hint above is given at all (on unless turned off): the runner
 * gives it to ingest and features only (STAGE_HUGE_PAGES; they run alone, so
 * their page faults are the run's wall time). A block's last huge page is
 * whole however little of it the block uses, and it is not shared with the
 * next block: with training's hundreds of 9 MB frame columns and matrices
 * that once cost up to ~90 MB of peak RSS for no measurable CPU. Since session
 * 18 `run` also starts with glibc.malloc.hugetlb=1 (cli/main.c), under which
 * glibc hints its whole heap itself; this switch then decides only the blocks
 * that other allocators (SQLite's) make, and everything when the user turns
 * the tunable off.
 */
void memory_use_huge_pages(int on);
/*
 * Fresh memory costs its first touch: the kernel zeroes each page then (on
 * these VMs about 2 ms of CPU per MB, huge pages or not). A thread that is
 * about to fill a large block while the other core is idle can have that
 * done there: prefault_start writes one byte of every page of [p, p + n)
 * on a thread of its own; the caller must not touch the block until
 * prefault_wait returns, which faults in what the thread has not reached
 * yet beside it (2 MB at a time, each taken by one of them) instead of
 * waiting idle. Blocks below PREFAULT_MIN, or no thread: nothing is done,
 * and the caller's own writes fault the pages as before.
 */
#define PREFAULT_MIN ((size_t)4 << 20)
struct prefault {
	char *p;
	size_t n;
	size_t next;      /* the next 2 MB chunk to fault in (atomic) */
	int running;
	uintptr_t thread; /* pthread_t, kept opaque here */
};
void prefault_start(struct prefault *pf, void *p, size_t n);
void prefault_wait(struct prefault *pf);
/*
 * Fresh blocks faulted in on another thread while their owner fills them
 * (score's users table and the parser's arrays by uid, as the users file is
 * read): madvise(MADV_POPULATE_WRITE) faults each page in as a first write
 * would, zeroed, without writing to it, so the owner may write the blocks
 * meanwhile, which prefault_start's writes forbid. A page the owner reached
 * first is passed over. Up to POPULATE_BLOCKS blocks of PREFAULT_MIN or more
 * (populate_add; smaller ones are left to the owner), in the order added;
 * populate_stop ends the thread where it is and must come before any block
 * is freed or moved. Without the madvise (Linux < 5.14) nothing is done.
 *
 * populate_start_pinned is for an owner that moves and frees none of the
 * blocks until populate_stop, on every path (the registry's users columns
 * and features' user-days): the pages are then faulted in by an atomic add
 * of 0 to a byte of each, which stores back the byte it read, so the owner
 * may still write it meanwhile. Such a write fault comes in under the VMA's
 * own lock (CONFIG_PER_VMA_LOCK), where the madvise holds the process's
 * mmap_lock while it zeroes a chunk (a 2 MB huge page, ~4 ms on these VMs),
 * and every mmap, brk or MADV_HUGEPAGE of another thread, and the malloc
 * arena lock that thread holds meanwhile, waits for it. The add on a block
 * moved or freed meanwhile would write to memory no longer the block's (or
 * unmapped): hence the owner's promise.
 */
#define POPULATE_BLOCKS 16
struct populate {
	char *p[POPULATE_BLOCKS];
	size_t n[POPULATE_BLOCKS];
	size_t count;
	int stop;         /* atomic: populate_stop asks the thread to end */
	int pinned;       /* populate_start_pinned: faulted by atomic adds */
	int running;
	uintptr_t thread; /* pthread_t, kept opaque here */
};
void populate_init(struct populate *pp);
void populate_add(struct populate *pp, void *p, size_t n);
void populate_start(struct populate *pp);
void populate_start_pinned(struct populate *pp);
void populate_stop(struct populate *pp);

/* Growable array of doubles / strings, used wherever a count is unknown. */
#define ARRAY_GROW(ptr, n_needed, cap) ARRAY_GROW_BY(xrealloc, ptr, n_needed, cap)
/* ARRAY_GROW with xrealloc_huge, for arrays of megabytes. */
#define ARRAY_GROW_HUGE(ptr, n_needed, cap) ARRAY_GROW_BY(xrealloc_huge, ptr, n_needed, cap)
/* Doubles cap (from 16) until n_needed fit, reallocating ptr with grow_fn. */
#define ARRAY_GROW_BY(grow_fn, ptr, n_needed, cap)                              \
	do {                                                                    \
		if ((n_needed) > (cap)) {                                       \
			size_t new_cap_ = (cap) ? (cap) * 2 : 16;               \
			while (new_cap_ < (n_needed))                           \
				new_cap_ *= 2;                                  \
			(ptr) = grow_fn((ptr), new_cap_ * sizeof(*(ptr)));      \
			(cap) = new_cap_;                                       \
		}                                                               \
	} while (0)

/* Checked number parsing (strtod/strtoll + end pointer + errno). */
int parse_double(const char *s, double *out_value);
int parse_int64(const char *s, int64_t *out_value);

/* qsort comparator: doubles in ascending order (no NaN expected). */
int double_cmp(const void *a, const void *b);

/*
 * The median of v[0..n) (no NaN; n >= 1): the middle value, or the mean of
 * the two middle ones when n is even: the value sorting would give, in
 * linear time (quickselect). Reorders v.
 */
double median_select(double *v, size_t n);
/* v[k] of v[0..n) sorted ascending (no NaN; k < n), in linear time. Reorders v. */
double kth_select(double *v, size_t n, size_t k);

/* Monotonic seconds, for timings and progress. */
double now_seconds(void);
/* Peak resident set size of this process in bytes (from getrusage). */
size_t peak_rss_bytes(void);
/* Resident memory now (/proc/self/statm), bytes; 0 where unknown. */
size_t current_rss_bytes(void);
/*
 * Training's allocator settings (glibc; elsewhere no-ops). memory_limit_arenas
 * caps malloc's per-thread arenas, before the threads start: each arena keeps
 * what its thread freed, so stage and XGBoost threads each held their own
 * high-water mark. memory_return_free hands every arena's free pages back
 * to the kernel (malloc_trim): the runner calls it only under run.memory_mb,
 * whose tests read resident memory, since pages handed back are faulted in
 * and zeroed again by the next allocation (a huge page each under
 * glibc.malloc.hugetlb=1; pipeline/runner.c, wave_worker: the figures).
 */
void memory_limit_arenas(int arenas);
void memory_return_free(void);
/*
 * For a batch command (score, and a run without run.memory_mb: pipeline/
 * run_heap.c): every block comes from malloc's heap and freed
 * ones stay there for the next allocation, instead of going back to the
 * kernel. By default glibc maps each block over 128 KB (and up to
 * 32 MB) on its own and unmaps it on free, so every column, matrix and
 * buffer is faulted in and zeroed by the kernel again. With huge pages under
 * the heap (cli/main.c, ensure_runtime_env), scoring 200,000 users took
 * 2,000 page faults instead of 10,000 and 1.2 CPU s instead of 1.6; peak
 * RSS within 1% at 1,000,000 users.
 */
void memory_keep_freed(void);
/*
 * Undoes memory_keep_freed for a process that goes on (the runner under
 * run.memory_mb, after a STAGE_KEEP_FREED stage): big blocks are mapped on their own again, at
 * the threshold glibc's own rule reaches after the first big free (32 MB,
 * trimming at twice that), as in the rest of a run.
 */
void memory_map_big_blocks(void);

#include "ltv/banned.h"

#endif
