/*
 * A file written in blocks by a thread of its own (contract in
 * include/ltv/block_writer.h): a pool of blocks on two bqueues, as the CSV
 * read-ahead's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/block_writer.h"

/* Writeback is started once this much more is written (sync_file_range). */
#define SYNC_STEP ((off_t)8 << 20)

/* What O_DIRECT asks of offsets, lengths and addresses (512 on most disks; 4096 covers both). */
#define DIRECT_ALIGN ((size_t)4096)

/* Writes len bytes whole; 0, or the errno of the write that failed. */
static int write_all(int fd, const char *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t k = write(fd, p + done, len - done);

		if (k < 0 && errno != EINTR)
			return errno;
		if (k > 0)
			done += (size_t)k;
	}
	return 0;
}

/* Back to writes through the page cache (the tail, or a file system that refuses O_DIRECT). */
static void direct_off(struct block_writer *w)
{
	const int flags = fcntl(w->fd, F_GETFL);

	if (flags != -1)
		(void)fcntl(w->fd, F_SETFL, flags & ~O_DIRECT);
	w->direct = 0;
}

/*
 * Writes the staged text's whole DIRECT_ALIGN units past the page cache and
 * keeps the rest staged; with final, the rest too (through the cache). A
 * direct write refused (EINVAL) is written again through the cache.
 */
static int flush_staged(struct block_writer *w, int final)
{
	const size_t whole = w->staged / DIRECT_ALIGN * DIRECT_ALIGN;
	int ret = 0;

	if (whole && w->direct) {
		ret = write_all(w->fd, w->stage, whole);
		if (ret == EINVAL) {
			direct_off(w);
			ret = write_all(w->fd, w->stage, whole);
		}
		memmove(w->stage, w->stage + whole, w->staged - whole);
		w->staged -= whole;
	}
	if (ret == 0 && (final || !w->direct) && w->staged) {
		if (w->direct)
			direct_off(w);
		ret = write_all(w->fd, w->stage, w->staged);
		w->staged = 0;
	}
	return ret;
}

/* Writes the block whole, hashes it and starts the writeback of what is due; the writer's side. */
static void write_block(struct block_writer *w, const struct jbuf *b)
{
	if (w->error)
		return;
	if (w->direct) {
		/* staged in the aligned buffer (reused: no fresh pages), then written past the cache */
		for (size_t done = 0; w->error == 0 && done < b->len;) {
			size_t n = b->len - done;

			if (n > w->stage_cap - w->staged)
				n = w->stage_cap - w->staged;
			memcpy(w->stage + w->staged, b->p + done, n);
			w->staged += n;
			done += n;
			w->error = flush_staged(w, 0);
		}
	} else {
		w->error = write_all(w->fd, b->p, b->len);
	}
	if (w->error)
		return;
	hasher_update(&w->hash, b->p, b->len);
	w->written += (off_t)b->len;
	/* Only a start: the pages go to disk while more text is built; fsync still waits for all. */
	if (!w->direct && w->sync_ranges && w->written - w->synced >= SYNC_STEP) {
		(void)sync_file_range(w->fd, w->synced, w->written - w->synced, SYNC_FILE_RANGE_WRITE);
		w->synced = w->written;
	}
}

static void *writer_main(void *arg)
{
	struct block_writer *w = arg;
	void *item;

	while (bqueue_pop(&w->full_q, &item) == 1) {
		struct jbuf *b = item;

		write_block(w, b);
		b->len = 0;
		if (b->p)
			b->p[0] = '\0';
		if (bqueue_push(&w->free_q, b) < 0)
			break;
	}
	return NULL;
}

void block_writer_start(struct block_writer *w, int fd)
{
	struct stat st;
	void *item;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->sync_ranges = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	/*
	 * A regular file written from an aligned offset goes past the page cache
	 * (O_DIRECT): a 236 MB users file otherwise took as many fresh page-cache
	 * pages, which on a VM cost more to get than the copy into them (README
	 * "Threads and performance"). Where the file system refuses it, through
	 * the cache as before.
	 */
	if (w->sync_ranges && lseek(fd, 0, SEEK_CUR) % (off_t)DIRECT_ALIGN == 0 &&
	    posix_memalign((void **)&w->stage, DIRECT_ALIGN, BLOCK_WRITER_BLOCK) == 0) {
		const int flags = fcntl(fd, F_GETFL);

		w->stage_cap = BLOCK_WRITER_BLOCK;
		w->direct = flags != -1 && fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
	}
	hasher_init(&w->hash);
	bqueue_init(&w->free_q, BLOCK_WRITER_BLOCKS);
	bqueue_init(&w->full_q, BLOCK_WRITER_BLOCKS);
	for (size_t i = 0; i < BLOCK_WRITER_BLOCKS; i++) {
		jbuf_init(&w->blocks[i]);
		jbuf_reserve(&w->blocks[i], BLOCK_WRITER_BLOCK + 4096);
		(void)bqueue_push(&w->free_q, &w->blocks[i]);
	}
	(void)bqueue_pop(&w->free_q, &item);
	w->filling = item;
	w->threaded = pthread_create(&w->thread, NULL, writer_main, w) == 0;
}

struct jbuf *block_writer_block(struct block_writer *w)
{
	return w->filling;
}

struct jbuf *block_writer_pass(struct block_writer *w)
{
	void *item;

	if (w->filling->len == 0)
		return w->filling;
	if (!w->threaded) {
		write_block(w, w->filling);
		w->filling->len = 0;
		return w->filling;
	}
	(void)bqueue_push(&w->full_q, w->filling);
	(void)bqueue_pop(&w->free_q, &item);
	w->filling = item;
	return w->filling;
}

int block_writer_finish(struct block_writer *w, char out_hex[HASH_HEX_LEN])
{
	int ret;

	if (w->threaded) {
		if (w->filling->len)
			(void)bqueue_push(&w->full_q, w->filling);
		bqueue_close(&w->full_q);
		pthread_join(w->thread, NULL);
	} else {
		write_block(w, w->filling);
	}
	if (w->error == 0)
		w->error = flush_staged(w, 1);
	if (w->direct)
		direct_off(w); /* the descriptor is the caller's again, as it gave it */
	free(w->stage);
	w->stage = NULL;
	ret = -w->error;
	if (out_hex && ret == 0)
		hasher_hex(&w->hash, out_hex);
	hasher_release(&w->hash);
	for (size_t i = 0; i < BLOCK_WRITER_BLOCKS; i++)
		jbuf_release(&w->blocks[i]);
	bqueue_release(&w->free_q);
	bqueue_release(&w->full_q);
	w->filling = NULL;
	return ret;
}
