/*
 * Stage ingest: loads users.csv and events.csv into the registry as users and
 * per-user-day aggregates (DESIGN.md "Data in"). Reading, validating and
 * aggregating is src/ingest_parse.c's job; this file writes what it produces.
 * Files whose content hash was ingested before are skipped, so re-ingest is a
 * no-op and next month's file adds to what is there. Every bad row goes to
 * the rejects file with file, line, field and reason; too many rejects fail
 * the stage, which rolls back.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/bqueue.h"
#include "ltv/ingest_parse.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/mapped_block.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

/* Users waiting to be inserted many per statement, their strings copied. */
#define USER_FLUSH 1024

/*
 * A batch holds its users as records one after the other: uid, install
 * time and cost (8 bytes each), a byte saying whether attributes follow,
 * then user_id, app_id, campaign and the attributes, each ended by a NUL.
 * A million users can wait for the writer at once (struct user_writer):
 * at about 75 bytes a user, where rows of pointers and offsets beside
 * the text took 140.
 */
#define USER_RECORD_HEAD (3 * sizeof(int64_t) + 1)

struct user_batch {
	size_t n;
	char *rec;
	size_t len, cap;
	int in_stream; /* rec is in the writer's stream, not a heap block of its own */
};

/*
 * The batches' records go one after another into one mapping of their own
 * (the stream) rather than heap blocks: once the writer has inserted them
 * all, its pages (75 MB at a million users, faulted in while the users
 * file was read) begin the user-day rows' block (write_user_days), which
 * otherwise took as many fresh pages the kernel had to zero in ingest's
 * serial tail. Reserved, not faulted: USER_STREAM_PER_BYTE bytes a byte of
 * the users files. A batch that does not fit goes to the heap, as every
 * batch did before, and so do all after it. Only the parse thread moves
 * used and full; a batch's bytes are one thread's at a time, as its struct.
 */
#define USER_STREAM_PER_BYTE 3

struct user_stream {
	char *p;      /* NULL: no stream (heap batches), or given away */
	size_t cap;   /* bytes reserved */
	size_t used;  /* where the batch being filled begins: the queued ones' end */
	int full;     /* a batch left it: the rest go to the heap */
};

/*
 * Batches queued for the writer at most (1,024 users each: a million users)
 * before the parser waits for it, and the spare ones the writer keeps for
 * the parser to refill; it frees the others once they are written.
 */
#define USER_QUEUED_MAX 1024
#define USER_SPARE 4

/*
 * The users' SQLite inserts are the longest single thread of ingest (about
 * 1.8 CPU s at a million users, while parsing the users file takes the
 * stage thread 0.6 s): they run on a thread of their own, and not only
 * while the users files are read but on into the events files, which need
 * nothing of the registry's users (an event finds its user in the id map of
 * src/ingest_parse.c). The stage waits for the writer only before it writes
 * the user-days (their foreign key names the users), having grouped them
 * first. The parse thread fills a batch and queues it on `full`, taking the
 * next from `spare` or a new one; the writer inserts the full ones in queue
 * order, so rows reach the registry in the same order, with the same uids,
 * as when one thread did both. Until the drain the writer and the stage
 * thread share the connection, which is serialized (SQLITE_OPEN_FULLMUTEX):
 * each registry call of the stage thread then (the file checks and records)
 * holds its mutex whole (src/registry_data.c), as the writer's batch does,
 * so they take turns. A batch is one thread's at a time; status is atomic,
 * its err written before it.
 */
struct user_writer {
	struct registry *reg;
	int64_t artefact_id;
	struct bqueue spare, full;
	_Atomic size_t n_spare;     /* batches in spare: only the writer pushes there */
	_Atomic size_t n_queued;    /* batches in full */
	struct user_batch *filling; /* the parse thread's */
	struct user_stream stream;
	struct user_row rows[USER_FLUSH]; /* a batch's users, read back: whoever inserts */
	pthread_t thread;
	int started;                /* the thread runs: started at the first full batch */
	int finished;               /* user_writer_finish: the last batch is queued */
	_Atomic int wrote_back;     /* the thread started the WAL's writeback */
	_Atomic int done;           /* the thread has inserted every batch and ends */
	_Atomic int cancel;         /* the stage failed: queued batches are dropped */
	_Atomic int status;         /* the first insert failure (sticky), its message in err */
	struct ltv_err err;
};

struct ingest {
	struct stage_ctx *ctx;
	size_t users_bytes;         /* of the users files to load: the writer's stream is sized by it */
	struct ingest_parse p;      /* the users and user-days read */
	struct user_writer *writer;
	int64_t artefact_id;
	size_t n_user_days;         /* distinct (user, day) written */
	int64_t files_loaded, files_skipped;
	/* --shard: each loaded user's place in the input, by uid - 1 (shard_user_pos blob) */
	int64_t *user_pos;
	size_t cap_user_pos;
	int64_t file_ordinal;       /* of the file being read, counted over every ingest */
};

/* Batch b's records so far, moved to a heap block of their own. */
static void batch_leave_stream(struct user_batch *b)
{
	char *heap = xmalloc(b->len ? b->len : 1);

	memcpy(heap, b->rec, b->len);
	b->rec = heap;
	b->cap = b->len;
	b->in_stream = 0;
}

static void batch_put(struct user_batch *b, const void *p, size_t len)
{
	if (b->in_stream && b->len + len > b->cap)
		batch_leave_stream(b);
	if (!b->in_stream)
		ARRAY_GROW(b->rec, b->len + len, b->cap);
	memcpy(b->rec + b->len, p, len);
	b->len += len;
}

/* Appends user u's record to b. */
static void batch_add(struct user_batch *b, const struct user_row *u)
{
	char head[USER_RECORD_HEAD];

	memcpy(head, &u->uid, 8);
	memcpy(head + 8, &u->install_time, 8);
	memcpy(head + 16, &u->cost, 8);
	head[24] = u->attributes_json != NULL;
	batch_put(b, head, sizeof(head));
	batch_put(b, u->user_id, strlen(u->user_id) + 1);
	batch_put(b, u->app_id, strlen(u->app_id) + 1);
	batch_put(b, u->campaign, strlen(u->campaign) + 1);
	if (u->attributes_json)
		batch_put(b, u->attributes_json, strlen(u->attributes_json) + 1);
	b->n++;
}

/* The string at *p, and *p moved past it. */
static const char *next_str(const char **p)
{
	const char *s = *p;

	*p += strlen(s) + 1;
	return s;
}

static void batch_free(struct user_batch *b)
{
	if (b && !b->in_stream)
		free(b->rec);
	free(b);
}

/* Empty batch b is filled next: in the stream after the queued ones while there is room. */
static void stream_attach(struct user_stream *st, struct user_batch *b)
{
	b->n = b->len = 0;
	if (st->p && !st->full) {
		if (!b->in_stream)
			free(b->rec);
		b->rec = st->p + st->used;
		b->cap = st->cap - st->used;
		b->in_stream = 1;
	} else if (b->in_stream) {
		b->rec = NULL;
		b->cap = 0;
		b->in_stream = 0;
	}
}

/* Full batch b is queued: the next one begins after it, or in the heap if it left the stream. */
static void stream_queued(struct user_stream *st, const struct user_batch *b)
{
	if (b->in_stream)
		st->used += b->len;
	else
		st->full = 1;
}

/* Inserts batch b (and empties it), its users read into rows (USER_FLUSH of them). */
static int insert_batch(struct registry *reg, int64_t artefact_id, struct user_batch *b,
			struct user_row *rows, struct ltv_err *err)
{
	const char *p = b->rec;
	int ret;

	if (b->n == 0)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		struct user_row *u = &rows[i];
		const int has_attributes = p[24];

		memcpy(&u->uid, p, 8);
		memcpy(&u->install_time, p + 8, 8);
		memcpy(&u->cost, p + 16, 8);
		p += USER_RECORD_HEAD;
		u->user_id = next_str(&p);
		u->app_id = next_str(&p);
		u->campaign = next_str(&p);
		u->attributes_json = has_attributes ? next_str(&p) : NULL;
	}
	ret = registry_users_insert(reg, rows, b->n, artefact_id, err);
	b->n = 0;
	b->len = 0;
	return ret;
}

static void *writer_main(void *arg)
{
	struct user_writer *w = arg;
	size_t freed = 0;
	void *next;

	while (bqueue_pop(&w->full, &next)) {
		struct user_batch *b = next;
		struct ltv_err err = { 0 };

		atomic_fetch_sub(&w->n_queued, 1);

		/* After a failure the rest is dropped: the stage fails and rolls back. */
		if (atomic_load(&w->status) < 0 || atomic_load(&w->cancel)) {
			b->n = b->len = 0;
		} else {
			const int ret = insert_batch(w->reg, w->artefact_id, b, w->rows, &err);

			if (ret < 0) {
				w->err = err;
				atomic_store(&w->status, ret);
			}
		}
		/* The parser pops only after the count says the batch is there: never waits. */
		if (atomic_load(&w->n_spare) < USER_SPARE && bqueue_push(&w->spare, b) == 0) {
			atomic_fetch_add(&w->n_spare, 1);
		} else {
			batch_free(b);
			freed++;
		}
		/*
		 * Caught up after a backlog: the freed batches (about 100 MB at a
		 * million users) lie in the heap, where the user-days' large blocks
		 * (mapped apart) never reuse them; give them back to the system.
		 */
		if (freed && atomic_load(&w->n_queued) == 0) {
			malloc_trim(0);
			freed = 0;
		}
	}
	/*
	 * Every user is in the WAL now (user_writer_finish queued the last
	 * batch): its writeback starts here, while the events are parsed and
	 * grouped. On the stage thread the call blocked it 40-50 ms (ext4
	 * allocating the WAL's blocks, reading a block bitmap) with both cores
	 * otherwise idle.
	 */
	if (atomic_load(&w->status) == 0 && !atomic_load(&w->cancel)) {
		registry_start_wal_writeback(w->reg);
		atomic_store(&w->wrote_back, 1);
	}
	atomic_store(&w->done, 1);
	return NULL;
}

static struct user_writer *user_writer_new(struct registry *reg, int64_t artefact_id,
					   size_t users_bytes)
{
	struct user_writer *w = xcalloc(1, sizeof(*w));

	w->reg = reg;
	w->artefact_id = artefact_id;
	bqueue_init(&w->spare, USER_SPARE);
	bqueue_init(&w->full, USER_QUEUED_MAX);
	w->filling = xcalloc(1, sizeof(*w->filling));
	if (users_bytes > 0 && users_bytes <= SIZE_MAX / USER_STREAM_PER_BYTE / 2) {
		w->stream.cap = users_bytes * USER_STREAM_PER_BYTE;
		w->stream.p = mapped_block_reserve(w->stream.cap); /* NULL: heap batches, as before */
	}
	stream_attach(&w->stream, w->filling);
	return w;
}

/*
 * The stream's pages for the user-day rows' block, once the writer thread
 * has inserted every batch (its last act: done) and nothing waits for the
 * drain; the reserve it never touched is unmapped. Returns 0 (nothing
 * given) otherwise, as when there is no stream.
 */
static size_t user_writer_give_stream(struct user_writer *w, struct mapped_piece *out)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len, cap;

	if (!w || !w->stream.p || !w->started || !atomic_load(&w->done) || w->filling->n > 0 ||
	    atomic_load(&w->status) < 0)
		return 0;
	len = (w->stream.used + page - 1) / page * page;
	cap = (w->stream.cap + page - 1) / page * page;
	if (len == 0)
		return 0;
	if (len < cap)
		(void)munmap(w->stream.p + len, cap - len);
	out->p = w->stream.p;
	out->len = len;
	w->stream.p = NULL;
	w->stream.full = 1;
	return 1;
}

/* The writer's failure, if any, as this thread's error. */
static int writer_status(struct user_writer *w, struct ltv_err *err)
{
	const int ret = atomic_load(&w->status);

	if (ret < 0)
		*err = w->err;
	return ret;
}

/*
 * Queues the full batch for the writer (started now if need be), waiting
 * while USER_QUEUED_MAX are queued, and takes an empty one: a spare one,
 * else a new one. A failed insert shows here, at a later batch than one
 * thread would have stopped at: the stage fails the same way.
 */
static int user_writer_queue(struct user_writer *w, struct ltv_err *err)
{
	void *empty;

	if (!w->started) {
		if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
			/* No thread: insert here, as one thread always did. */
			return insert_batch(w->reg, w->artefact_id, w->filling, w->rows, err);
		}
		w->started = 1;
	}
	stream_queued(&w->stream, w->filling);
	atomic_fetch_add(&w->n_queued, 1);
	(void)bqueue_push(&w->full, w->filling);
	if (atomic_load(&w->n_spare) > 0) {
		(void)bqueue_pop(&w->spare, &empty);
		atomic_fetch_sub(&w->n_spare, 1);
		w->filling = empty;
	} else {
		w->filling = xcalloc(1, sizeof(*w->filling));
	}
	stream_attach(&w->stream, w->filling);
	return writer_status(w, err);
}

/*
 * No user comes after this (every users file is read before the first
 * events file): the batch being filled goes to the writer as its last, and
 * the writer ends once it has inserted them all, without waiting for the
 * drain. A writer that never started keeps its batch for the drain.
 */
static void user_writer_finish(struct user_writer *w)
{
	if (!w || w->finished)
		return;
	w->finished = 1;
	if (w->started && w->filling->n > 0) {
		stream_queued(&w->stream, w->filling);
		atomic_fetch_add(&w->n_queued, 1);
		(void)bqueue_push(&w->full, w->filling);
		w->filling = xcalloc(1, sizeof(*w->filling));
	}
	bqueue_close(&w->full);
}

/*
 * Waits until the writer has inserted every queued batch and ends it, then
 * inserts the batch being filled here (a file of under USER_FLUSH users
 * never starts the thread) unless the stage failed (ok 0: it rolls back, so
 * what is queued is dropped, as one thread would never have inserted it).
 * The registry is then the stage thread's alone. Once only: users files
 * are all read before the first events file.
 */
static int user_writer_drain(struct user_writer *w, int ok, struct ltv_err *err)
{
	int ret;

	if (!w)
		return 0;
	if (!ok)
		atomic_store(&w->cancel, 1);
	bqueue_close(&w->full);
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = 0;
	ret = writer_status(w, err);
	if (ret < 0 || !ok) {
		w->filling->n = w->filling->len = 0;
		return ret;
	}
	return insert_batch(w->reg, w->artefact_id, w->filling, w->rows, err);
}

static void user_writer_free(struct user_writer *w)
{
	void *b;

	if (!w)
		return;
	(void)user_writer_drain(w, 0, &(struct ltv_err){ 0 });
	while (atomic_load(&w->n_spare) > 0 && bqueue_pop(&w->spare, &b)) {
		atomic_fetch_sub(&w->n_spare, 1);
		batch_free(b);
	}
	batch_free(w->filling);
	if (w->stream.p)
		(void)munmap(w->stream.p, w->stream.cap);
	bqueue_release(&w->spare);
	bqueue_release(&w->full);
	free(w);
}

/* Queues a valid user for insertion; the registry sees it once its batch is written. */
static int add_user(struct ingest *in, const struct user_row *u, struct ltv_err *err)
{
	struct user_batch *b;

	if (!in->writer)
		in->writer = user_writer_new(in->ctx->reg, in->artefact_id, in->users_bytes);
	b = in->writer->filling;
	batch_add(b, u);
	return b->n == USER_FLUSH ? user_writer_queue(in->writer, err) : 0;
}


/* ingest_parse's user sink: queues the user and, for a shard, notes its place in the input. */
static int on_user(void *arg, const struct user_row *u, size_t line, struct ltv_err *err)
{
	struct ingest *in = arg;
	const int ret = add_user(in, u, err);

	if (ret < 0 || !in->ctx->shard.count)
		return ret;
	ARRAY_GROW(in->user_pos, in->p.n_users + 1, in->cap_user_pos);
	in->user_pos[in->p.n_users] = in->file_ordinal << 40 | (int64_t)line;
	return 0;
}

/* Loads one file; a file without its hash yet gets it from the bytes the parse reads. */
static int ingest_file(struct ingest *in, struct input_file *file, struct ltv_err *err)
{
	int64_t rows, rejected;
	int ret;

	if (file->kind == INPUT_EVENTS)
		user_writer_finish(in->writer);
	ret = ingest_parse_file_hashed(&in->p, file->path, file->kind, &rows, &rejected,
				       file->hash[0] ? NULL : file->hash, err);

	/* The users writer may still be inserting this file's users: see struct user_writer. */
	if (ret == 0)
		ret = registry_file_record(in->ctx->reg, file->hash,
					   file->kind == INPUT_USERS ? "users" : "events", file->path,
					   in->artefact_id, rows, rejected, err);
	return ret;
}

/*
 * A shard keeps each user's place in the input (file ordinal << 40 | line)
 * in the blob "shard_user_pos" of its ingest artefact, for every user of the
 * shard registry: `merge` numbers the users of all shards in that order,
 * which is the order an unsharded ingest numbers them in.
 */
static int load_user_positions(struct ingest *in, struct ltv_err *err)
{
	struct artefact_info prev;
	void *data = NULL;
	size_t len = 0;
	int ret;

	if (in->p.n_users == 0)
		return 0;
	ret = registry_artefact_current(in->ctx->reg, "ingest", &prev, err);
	if (ret == 0) {
		ret = registry_blob_get(in->ctx->reg, prev.id, "shard_user_pos", &data, &len, err);
		artefact_info_release(&prev);
	}
	if (ret == 0 && len != in->p.n_users * sizeof(int64_t))
		ret = err_set(err, LTV_EREGISTRY, "shard registry %s: the users' input positions "
			      "(blob shard_user_pos) do not match its %zu users; rebuild the shard "
			      "with ingest.mode: replace", registry_path(in->ctx->reg), in->p.n_users);
	else if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "%s holds users ingested without --shard; a shard "
			      "registry must hold one shard only: use a new registry path",
			      registry_path(in->ctx->reg));
	if (ret == 0) {
		in->cap_user_pos = in->p.n_users;
		in->user_pos = data;
		data = NULL;
	}
	free(data);
	return ret;
}

/* Loads the users already in the registry, so new events can find them. */
static int load_known_users(struct ingest *in, struct ltv_err *err)
{
	struct user_table t;
	int ret = registry_users_load(in->ctx->reg, &t, err);

	if (ret < 0)
		return ret;
	/* uids are 1..n: registry_users_load fails on a gap */
	for (size_t i = 0; i < t.n; i++)
		ingest_parse_known_user(&in->p, t.user_id[i], t.uid[i], t.install_time[i]);
	user_table_release(&t);
	if (ret == 0 && in->ctx->shard.count)
		ret = load_user_positions(in, err);
	return ret;
}

/*
 * Writes the user-days of every event read, in the table's key order. They
 * are grouped while the users writer may still be inserting, and written
 * once it has finished: their foreign key names the users.
 */
static int write_user_days(struct ingest *in, struct ltv_err *err)
{
	struct mapped_block rows;
	struct mapped_piece stream;
	size_t n;
	int ret;

	user_writer_finish(in->writer);
	n = user_writer_give_stream(in->writer, &stream);
	ingest_parse_user_days_mapped(&in->p, &stream, n, &rows, &n);
	in->n_user_days = n;
	ret = user_writer_drain(in->writer, 1, err);
	/*
	 * The users (92 MB at a million) are in the WAL by now, spilled there
	 * by the writer: the disk writes them while the user-days are written,
	 * not in the sync that follows the commit. The writer thread started
	 * that when it ended (writer_main); without one, it starts here.
	 */
	if (ret == 0 && !(in->writer && atomic_load(&in->writer->wrote_back)))
		registry_start_wal_writeback(in->ctx->reg);
	if (ret == 0)
		ret = registry_user_days_add_block(in->ctx->reg, &rows, n, err);
	mapped_block_release(&rows); /* not taken over if the drain failed */
	return ret;
}

static int update_max_event_time(struct ingest *in, struct ltv_err *err)
{
	char *old = NULL, value[32];
	int64_t prev;
	int ret = registry_meta_get(in->ctx->reg, "max_event_time", &old, err);

	if (ret == 0 && parse_int64(old, &prev) == 0 && prev > in->p.max_event_time)
		in->p.max_event_time = prev;
	free(old);
	if (in->p.max_event_time == INT64_MIN)
		return 0;
	snprintf(value, sizeof(value), "%lld", (long long)in->p.max_event_time);
	return registry_meta_set(in->ctx->reg, "max_event_time", value, err);
}

static void add_metrics(struct ingest *in)
{
	cJSON *m = in->ctx->metrics;
	char iso[32];

	cJSON_AddNumberToObject(m, "files_loaded", (double)in->files_loaded);
	cJSON_AddNumberToObject(m, "files_already_ingested", (double)in->files_skipped);
	cJSON_AddNumberToObject(m, "users_loaded", (double)in->p.users_loaded);
	cJSON_AddNumberToObject(m, "users_rejected", (double)in->p.users_rejected);
	cJSON_AddNumberToObject(m, "events_loaded", (double)in->p.events_loaded);
	cJSON_AddNumberToObject(m, "events_rejected", (double)in->p.events_rejected);
	cJSON_AddNumberToObject(m, "users_total", (double)in->p.n_users);
	cJSON_AddNumberToObject(m, "user_days_added", (double)in->n_user_days);
	if (in->p.max_event_time != INT64_MIN)
		cJSON_AddStringToObject(m, "max_event_time",
					time_format_iso8601(in->p.max_event_time, iso, sizeof(iso)));
	if (in->p.subtract_refunds) {
		cJSON_AddNumberToObject(m, "refunds_subtracted", (double)in->p.refunds);
		cJSON_AddNumberToObject(m, "refunded_revenue", in->p.refunded);
		cJSON_AddNumberToObject(m, "user_days_floored_at_0", (double)in->p.days_floored);
	}
	if (in->p.users_rejected + in->p.events_rejected > 0)
		cJSON_AddStringToObject(m, "rejects_file", in->p.rejects_path);
	if (in->ctx->shard.count) {
		char spec[32];

		cJSON_AddStringToObject(m, "shard", shard_format(&in->ctx->shard, spec, sizeof(spec)));
		cJSON_AddNumberToObject(m, "users_other_shards", (double)in->p.users_other_shards);
		cJSON_AddNumberToObject(m, "events_other_shards", (double)in->p.events_other_shards);
	}
}

/*
 * In append mode a file is loaded once. If a path that was loaded before now
 * has other content (a re-export, an edited file), loading it again would
 * count its old rows twice, so ingest stops and says what to do instead.
 */
static int refuse_changed_file(struct stage_ctx *ctx, const struct input_file *file)
{
	const char *kind = file->kind == INPUT_USERS ? "users" : "events";
	char *old = NULL;
	int ret = registry_file_hash_for_path(ctx->reg, kind, file->path, &old, &ctx->err);

	if (ret == 0 && old)
		ret = err_set(&ctx->err, LTV_EINVAL,
			      "%s: this path was ingested before with other content (%.12s, now %.12s); "
			      "loading it again would count its earlier rows twice — put new data in a "
			      "new file (input patterns may be globs), or set ingest.mode: replace to "
			      "reload every file from scratch", file->path, old, file->hash);
	free(old);
	return ret;
}

/*
 * The data state is the set of files loaded so far: re-ingesting changes
 * nothing and hashes the same, so the stages downstream stay up to date.
 */
static int hash_data_state(struct stage_ctx *ctx)
{
	char **hashes = NULL;
	size_t n = 0;
	int ret = registry_ingested_hashes(ctx->reg, &hashes, &n, &ctx->err);

	for (size_t i = 0; i < n; i++) {
		if (ret == 0)
			hasher_add_str(&ctx->content, hashes[i]);
		free(hashes[i]);
	}
	free(hashes);
	return ret;
}

/* How many files the registry has loaded before: the first file of this ingest is the next. */
static int count_ingested_files(struct stage_ctx *ctx, int64_t *out)
{
	char **hashes = NULL;
	size_t n = 0;
	int ret = registry_ingested_hashes(ctx->reg, &hashes, &n, &ctx->err);

	for (size_t i = 0; i < n; i++)
		free(hashes[i]);
	free(hashes);
	*out = (int64_t)n;
	return ret;
}

/*
 * The runner's files without hashes, for a registry that has loaded no file
 * yet: there is nothing a file could be skipped or refused by, and each is
 * hashed as it is read. Had the registry loaded files after all, they are
 * hashed now, before anything is compared.
 */
static int hash_unless_first(struct stage_ctx *ctx, struct input_files *files, int64_t loaded)
{
	int ret = 0;

	for (size_t i = 0; i < files->n && ret == 0 && loaded > 0; i++)
		if (!files->v[i].hash[0])
			ret = hash_file_hex(files->v[i].path, files->v[i].hash, &ctx->err);
	return ret;
}

int stage_ingest_run(struct stage_ctx *ctx)
{
	struct ingest in = { .ctx = ctx };
	struct input_files own = { 0 };
	struct input_files *fl = ctx->unhashed_files ? ctx->unhashed_files : &own;
	int64_t artefact_id = 0;
	int replace = strcmp(ctx->cfg->ingest.mode, "replace") == 0;
	int ret = 0;

	ingest_parse_init(&in.p, ctx->cfg, &ctx->shard, on_user, &in);
	if (!ctx->unhashed_files)
		ret = input_files_resolve_in(ctx->cfg, ctx->reg, &own, &ctx->err);
	if (ret == 0)
		ret = ingest_parse_open(&in.p, ctx->run_id, &ctx->err);
	if (ret == 0)
		ret = stage_output_id(ctx, &artefact_id);
	in.artefact_id = artefact_id;
	if (ret < 0)
		goto out;
	ret = replace ? registry_data_clear(ctx->reg, &ctx->err) : load_known_users(&in, &ctx->err);
	if (ret == 0)
		ret = count_ingested_files(ctx, &in.file_ordinal);
	if (ret == 0)
		ret = hash_unless_first(ctx, fl, in.file_ordinal);
	for (size_t i = 0; i < fl->n; i++) {
		struct stat st;

		if (fl->v[i].kind == INPUT_USERS && stat(fl->v[i].path, &st) == 0 && st.st_size > 0)
			in.users_bytes += (size_t)st.st_size;
	}
	for (size_t i = 0; i < fl->n && ret == 0; i++) {
		in.file_ordinal++;
		/* No hash yet: the registry has loaded no file (hash_unless_first). */
		int seen = fl->v[i].hash[0] ? registry_file_ingested(ctx->reg, fl->v[i].hash,
								     &ctx->err) : 0;

		if (seen < 0) {
			ret = seen;
		} else if (!seen && !replace) {
			ret = refuse_changed_file(ctx, &fl->v[i]);
		}
		if (ret < 0) {
			break;
		} else if (seen) {
			LOG(LOG_INFO, "%s: already ingested (content %.12s), skipped", fl->v[i].path,
			    fl->v[i].hash);
			in.files_skipped++;
		} else {
			ret = ingest_file(&in, &fl->v[i], &ctx->err);
			in.files_loaded++;
		}
	}
	if (ret == 0)
		ret = write_user_days(&in, &ctx->err);
	if (ret == 0)
		ret = update_max_event_time(&in, &ctx->err);
	if (ret == 0)
		ret = hash_data_state(ctx);
	if (ret == 0 && ctx->shard.count)
		ret = registry_blob_put(ctx->reg, artefact_id, "shard_user_pos",
					in.user_pos ? (const void *)in.user_pos : "", in.p.n_users * sizeof(int64_t),
					&ctx->err);
	if (ret == 0)
		add_metrics(&in);
out:
	ingest_parse_release(&in.p);
	free(in.user_pos);
	user_writer_free(in.writer);
	input_files_release(&own);
	return ret;
}

