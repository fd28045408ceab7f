/*
 * A file written in blocks by a thread of its own (contract in
 * include/ltv/block_writer.h): a pool of blocks on two bqueues, as the CSV
 * read-ahead's.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ltv/block_writer.h"

/* Writeback is started once this much more is written (sync_file_range). */
#define SYNC_STEP ((off_t)8 << 20)

/* Writes the block whole, hashes it and starts the writeback of what is due; the writer's side. */
static void write_block(struct block_writer *w, const struct jbuf *b)
{
	size_t done = 0;

	while (w->error == 0 && done < b->len) {
		ssize_t k = write(w->fd, b->p + done, b->len - done);

		if (k < 0 && errno != EINTR)
			w->error = errno;
		else if (k > 0)
			done += (size_t)k;
	}
	if (w->error)
		return;
	hasher_update(&w->hash, b->p, b->len);
	w->written += (off_t)b->len;
	/* Only a start: the pages go to disk while more text is built; fsync still waits for all. */
	if (w->sync_ranges && w->written - w->synced >= SYNC_STEP) {
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
