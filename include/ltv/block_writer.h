/*
 * A file written in blocks by a thread of its own (src/block_writer.c), so
 * the thread that builds the text does not wait for the kernel's copy into
 * the page cache. The writer also hashes what it writes (the content hash a
 * caller would otherwise read the file back for) and, on a regular file,
 * starts the disk writeback of every few MB at once, so the fsync at the end
 * finds little left to write. A regular file whose offset is aligned is
 * written with O_DIRECT (whole 4 KB units, the tail through the cache at
 * finish), where the file system allows it: no page-cache pages for it.
 *
 * Use:
 *   struct block_writer w;
 *   block_writer_start(&w, fd);            // fd stays the caller's
 *   struct jbuf *b = block_writer_block(&w);
 *   jbuf_add(b, ...);                      // fill it
 *   if (b->len >= BLOCK_WRITER_BLOCK)
 *           b = block_writer_pass(&w);     // queued in order; a new empty block
 *   ret = block_writer_finish(&w, hex);    // the rest written; 0 or -errno
 *
 * Blocks are written in the order passed. The first write error stops the
 * writing; finish returns it (as -errno) and blocks passed after it are
 * dropped. Without a thread (pthread_create failed) each block is written
 * when passed.
 */
#ifndef LTV_BLOCK_WRITER_H
#define LTV_BLOCK_WRITER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "ltv/bqueue.h"
#include "ltv/hash.h"
#include "ltv/jbuf.h"

/* A block is handed over at about this many bytes: a hand-over costs a thread switch. */
#define BLOCK_WRITER_BLOCK ((size_t)1 << 20)
#define BLOCK_WRITER_BLOCKS 3

struct block_writer {
	int fd;
	int threaded;
	pthread_t thread;
	struct bqueue free_q, full_q;
	struct jbuf blocks[BLOCK_WRITER_BLOCKS];
	struct jbuf *filling;  /* the block the caller fills */
	struct hasher hash;
	off_t written, synced; /* bytes written; bytes whose writeback was started */
	int sync_ranges;       /* fd is a regular file: sync_file_range applies */
	int direct;            /* fd is written with O_DIRECT, through stage */
	char *stage;           /* aligned: the text not yet written past the cache */
	size_t staged, stage_cap;
	int error;             /* the first write's errno, 0 while none (the writer's) */
};

/* Starts the writer on fd (open for writing, at its end); fd stays the caller's. */
void block_writer_start(struct block_writer *w, int fd);

/* The block to fill. */
struct jbuf *block_writer_block(struct block_writer *w);

/* Queues the filled block to be written (after those before it); returns an empty one. */
struct jbuf *block_writer_pass(struct block_writer *w);

/*
 * Writes what is left, waits for the writer and frees it; the content hash of
 * everything written (hash_file_hex's) into out_hex when not NULL. 0, or
 * -errno of the first failed write.
 */
int block_writer_finish(struct block_writer *w, char out_hex[HASH_HEX_LEN]);

#endif
