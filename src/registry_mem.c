/*
 * SQLite's allocator for the registry (src/registry_internal.h): glibc's, as
 * SQLite's default, plus the huge-page hint on blocks of megabytes, and a
 * block of pages lent for one large allocation.
 *
 * Inserting ingest's user-day block copies its tens of MB into a record
 * buffer SQLite allocates (OP_MakeRecord): fresh pages, which the kernel
 * zeroed in ingest's single-threaded tail (about 0.1 s at a million users,
 * perf) just after the block's rows were freed. registry_mem_lend hands
 * those rows' pages, faulted in already, to SQLite's next allocation of at
 * least LEND_MIN bytes that fits in them; freed, they are unmapped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "registry_internal.h"

#include "ltv/mapped_block.h"

/* Below this no allocation takes the lent block: SQLite's pages (64 KB) and the like never do. */
#define LEND_MIN ((size_t)1 << 20)
/* The lent block's allocation begins this far in, as glibc's do (16-byte aligned). */
#define LEND_HEAD 16

static sqlite3_mem_methods sqlite_default_mem;

/*
 * offered: lent, not taken yet (under lend_lock). taken_at: what xMalloc
 * returned from it, NULL if nothing; atomic, as every free compares its
 * pointer with it; the rest is the taker's, who frees it.
 */
static pthread_mutex_t lend_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapped_block offered;
static struct mapped_block taken;
static size_t taken_size;
static char *_Atomic taken_at;

/* The lent block, if there is one and n fits: taken, its pages past n unmapped. */
static void *take_lent(size_t n)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = NULL;

	pthread_mutex_lock(&lend_lock);
	if (offered.p && !atomic_load(&taken_at) && n <= offered.len - LEND_HEAD) {
		const size_t keep = (n + LEND_HEAD + page - 1) / page * page;

		taken = offered;
		memset(&offered, 0, sizeof(offered));
		if (keep < taken.len) {
			(void)munmap((char *)taken.p + keep, taken.len - keep);
			taken.len = keep;
		}
		taken_size = n;
		p = (char *)taken.p + LEND_HEAD;
		atomic_store(&taken_at, p);
	}
	pthread_mutex_unlock(&lend_lock);
	return p;
}

static void free_taken(void)
{
	pthread_mutex_lock(&lend_lock);
	/* cleared first: once unmapped, another thread's mapping may land at that address */
	atomic_store(&taken_at, NULL);
	mapped_block_release(&taken);
	pthread_mutex_unlock(&lend_lock);
}

static void *mem_malloc(int n)
{
	void *p = n > 0 && (size_t)n >= LEND_MIN ? take_lent((size_t)n) : NULL;

	if (p)
		return p;
	p = sqlite_default_mem.xMalloc(n);
	if (p && n > 0)
		memory_want_huge_pages(p, (size_t)n);
	return p;
}

static void mem_free(void *p)
{
	if (p && p == atomic_load(&taken_at))
		free_taken();
	else
		sqlite_default_mem.xFree(p);
}

static int mem_size(void *p)
{
	return p && p == atomic_load(&taken_at) ? (int)taken_size : sqlite_default_mem.xSize(p);
}

static void *mem_realloc(void *old, int n)
{
	void *p;

	if (old && old == atomic_load(&taken_at)) {
		if (n > 0 && (size_t)n <= taken.len - LEND_HEAD) {
			taken_size = (size_t)n;
			return old;
		}
		p = mem_malloc(n);
		if (p)
			memcpy(p, old, taken_size < (size_t)n ? taken_size : (size_t)n);
		if (p)
			free_taken();
		return p;
	}
	p = sqlite_default_mem.xRealloc(old, n);
	if (p && n > 0)
		memory_want_huge_pages(p, (size_t)n);
	return p;
}

void registry_mem_configure(void)
{
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_default_mem) == SQLITE_OK) {
		sqlite3_mem_methods ours = sqlite_default_mem;

		ours.xMalloc = mem_malloc;
		ours.xFree = mem_free;
		ours.xSize = mem_size;
		ours.xRealloc = mem_realloc;
		(void)sqlite3_config(SQLITE_CONFIG_MALLOC, &ours);
	}
}

void registry_mem_lend(struct mapped_block *b)
{
	pthread_mutex_lock(&lend_lock);
	mapped_block_release(&offered);
	offered = *b;
	memset(b, 0, sizeof(*b));
	pthread_mutex_unlock(&lend_lock);
}

void registry_mem_unlend(void)
{
	pthread_mutex_lock(&lend_lock);
	mapped_block_release(&offered);
	pthread_mutex_unlock(&lend_lock);
}
