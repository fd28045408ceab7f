/*
 * Output side of the sample generator (contract in src/generate_io.h): the
 * buffered writers, number and time formatting by hand, the time-order spool
 * and the output directory's housekeeping. The spool exists because a real
 * export from an events table interleaves users by time, while the generator
 * makes one user at a time: buckets of whole days bound the memory a global
 * sort would need, and the temporary file is unlinked as soon as it is open so
 * that even `kill -9` leaves no spool behind.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include "generate_io.h"
#include "ltv/timeutil.h"

#define DAY 86400

/* ---- buffered output ---------------------------------------------------- */

void gen_out_flush(struct gen_out *o)
{
	if (o->len && !o->failed && fwrite(o->buf, 1, o->len, o->f) != o->len) {
		o->failed = 1;
		o->saved_errno = errno;
	}
	o->len = 0;
}

int gen_out_open(struct gen_out *o, const char *path, struct ltv_err *err)
{
	o->path = path;
	o->len = 0;
	o->failed = 0;
	o->saved_errno = 0;
	o->buf = xmalloc(GEN_OUT_BUF);
	o->f = fopen(path, "wb");
	if (!o->f)
		return err_set(err, LTV_EIO, "cannot create '%s': %s", path, strerror(errno));
	return 0;
}

int gen_out_close(struct gen_out *o, struct ltv_err *err)
{
	int ret = 0;

	if (o->f) {
		gen_out_flush(o);
		if (!o->failed && fflush(o->f) != 0) {
			o->failed = 1;
			o->saved_errno = errno;
		}
		if (fclose(o->f) != 0 && !o->failed) {
			o->failed = 1;
			o->saved_errno = errno;
		}
		o->f = NULL;
		if (o->failed)
			ret = err_set(err, LTV_EIO, "cannot write '%s': %s", o->path,
				      strerror(o->saved_errno));
	}
	free(o->buf);
	o->buf = NULL;
	return ret;
}

/* ---- formatting --------------------------------------------------------- */

static inline char *put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

char *put_time(struct time_fmt *tf, char *p, int64_t ts)
{
	int64_t day = ts / DAY, sec = ts % DAY;

	if (sec < 0) {
		sec += DAY;
		day--;
	}
	if (day != tf->day) {
		int64_t y;
		unsigned m, d;

		time_civil_from_days(day, &y, &m, &d);
		assert(y >= 0 && y <= 9999);
		tf->date[0] = (char)('0' + (y / 1000) % 10);
		tf->date[1] = (char)('0' + (y / 100) % 10);
		put2(tf->date + 2, (int)(y % 100));
		tf->date[4] = '-';
		put2(tf->date + 5, (int)m);
		tf->date[7] = '-';
		put2(tf->date + 8, (int)d);
		tf->day = day;
	}
	memcpy(p, tf->date, 10);
	p[10] = 'T';
	put2(p + 11, (int)(sec / 3600));
	p[13] = ':';
	put2(p + 14, (int)(sec / 60 % 60));
	p[16] = ':';
	put2(p + 17, (int)(sec % 60));
	p[19] = 'Z';
	return p + 20;
}

char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

char *put_money(char *p, int64_t cents)
{
	assert(cents >= 0);
	p = put_u64(p, (uint64_t)(cents / 100));
	*p++ = '.';
	return put2(p, (int)(cents % 100));
}

char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

char *put_user_id(char *p, uint64_t i)
{
	char digits[24];
	char *end = put_u64(digits, i);
	int n = (int)(end - digits);

	*p++ = 'u';
	for (int k = n; k < 8; k++)
		*p++ = '0';
	memcpy(p, digits, (size_t)n);
	return p + n;
}

void gen_write_event(struct gen_out *eo, struct time_fmt *tf, const char *id, size_t idlen,
		     int64_t ts, int64_t cents, const char *event)
{
	char *q = gen_out_reserve(eo);

	memcpy(q, id, idlen);
	q += idlen;
	*q++ = ',';
	q = put_time(tf, q, ts);
	*q++ = ',';
	q = put_money(q, cents);
	*q++ = ',';
	q = put_str(q, event);
	*q++ = '\n';
	gen_out_commit(eo, q);
}

/* ---- time-order spool --------------------------------------------------- */

#define SPOOL_BLOCK 1024 /* events per spill: 16 KiB */
#define SPOOL_MAX_BUCKETS 256

/* key: seconds since start << 32 | user index; val: cents << 3 | kind. */
struct spool_rec {
	uint64_t key;
	uint64_t val;
};

/* A spilled block of one bucket; blocks of a bucket are chained in order. */
struct spool_block {
	uint64_t off;
	uint32_t n;
	int64_t next; /* index of the bucket's next block, -1 at the end */
};

struct event_spool {
	int fd;
	char *path;
	int64_t start_ts;
	int64_t bucket_secs;
	int n_buckets;
	struct spool_rec *buf; /* n_buckets x SPOOL_BLOCK, the unspilled tail of each bucket */
	uint32_t *fill;
	int64_t *head, *tail;
	struct spool_block *blocks;
	size_t n_blocks, cap_blocks;
	uint64_t file_end;
	int failed;
	int saved_errno;
};

struct event_spool *event_spool_open(const char *dir, int64_t start_ts, int n_days,
				     struct ltv_err *err)
{
	struct event_spool *sp = xcalloc(1, sizeof(*sp));
	int days_per_bucket;

	assert(n_days >= 1);
	sp->path = xasprintf("%s/.events.csv.spool.%ld", dir, (long)getpid());
	sp->fd = open(sp->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sp->fd < 0) {
		err_set(err, LTV_EIO, "cannot create '%s': %s", sp->path, strerror(errno));
		event_spool_free(sp);
		return NULL;
	}
	unlink(sp->path);
	days_per_bucket = (n_days + SPOOL_MAX_BUCKETS - 1) / SPOOL_MAX_BUCKETS;
	sp->n_buckets = (n_days + days_per_bucket - 1) / days_per_bucket;
	sp->bucket_secs = (int64_t)days_per_bucket * DAY;
	sp->start_ts = start_ts;
	sp->buf = xmalloc((size_t)sp->n_buckets * SPOOL_BLOCK * sizeof(*sp->buf));
	sp->fill = xcalloc((size_t)sp->n_buckets, sizeof(*sp->fill));
	sp->head = xmalloc((size_t)sp->n_buckets * sizeof(*sp->head));
	sp->tail = xmalloc((size_t)sp->n_buckets * sizeof(*sp->tail));
	for (int b = 0; b < sp->n_buckets; b++)
		sp->head[b] = sp->tail[b] = -1;
	return sp;
}

static int write_at(int fd, const void *data, size_t len, uint64_t off)
{
	const char *p = data;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_at(int fd, void *data, size_t len, uint64_t off)
{
	char *p = data;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void spill(struct event_spool *sp, int b)
{
	const size_t bytes = sp->fill[b] * sizeof(struct spool_rec);
	struct spool_block *blk;

	if (!sp->failed &&
	    write_at(sp->fd, sp->buf + (size_t)b * SPOOL_BLOCK, bytes, sp->file_end) < 0) {
		sp->failed = 1;
		sp->saved_errno = errno;
	}
	if (!sp->failed) {
		ARRAY_GROW(sp->blocks, sp->n_blocks + 1, sp->cap_blocks);
		blk = &sp->blocks[sp->n_blocks];
		blk->off = sp->file_end;
		blk->n = sp->fill[b];
		blk->next = -1;
		if (sp->tail[b] >= 0)
			sp->blocks[sp->tail[b]].next = (int64_t)sp->n_blocks;
		else
			sp->head[b] = (int64_t)sp->n_blocks;
		sp->tail[b] = (int64_t)sp->n_blocks;
		sp->n_blocks++;
		sp->file_end += bytes;
	}
	sp->fill[b] = 0;
}

void event_spool_add(struct event_spool *sp, uint64_t user, int64_t ts, int64_t cents,
		     unsigned kind)
{
	const int64_t off = ts - sp->start_ts;
	int b;
	struct spool_rec *rec;

	assert(off >= 0 && off < (int64_t)sp->n_buckets * sp->bucket_secs);
	assert(user <= UINT32_MAX && kind < 8 && cents >= 0 && cents < (INT64_C(1) << 60));
	b = (int)(off / sp->bucket_secs);
	if (sp->fill[b] == SPOOL_BLOCK)
		spill(sp, b);
	rec = &sp->buf[(size_t)b * SPOOL_BLOCK + sp->fill[b]++];
	rec->key = (uint64_t)off << 32 | user;
	rec->val = (uint64_t)cents << 3 | kind;
}

int event_spool_failed(const struct event_spool *sp)
{
	return sp->failed;
}

static int compare_rec(const void *a, const void *b)
{
	const struct spool_rec *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->val > y->val) - (x->val < y->val);
}

int event_spool_write(struct event_spool *sp, struct gen_out *eo,
		      const char *const *event_names, struct ltv_err *err)
{
	struct spool_rec *recs = NULL;
	size_t cap = 0;
	struct time_fmt tf = { .day = INT64_MIN };
	int ret = 0;

	for (int b = 0; b < sp->n_buckets && !sp->failed && !eo->failed; b++) {
		size_t n = sp->fill[b];

		for (int64_t k = sp->head[b]; k >= 0; k = sp->blocks[k].next)
			n += sp->blocks[k].n;
		ARRAY_GROW(recs, n + 1, cap);
		n = 0;
		for (int64_t k = sp->head[b]; k >= 0 && !sp->failed; k = sp->blocks[k].next) {
			const struct spool_block *blk = &sp->blocks[k];

			if (read_at(sp->fd, recs + n, blk->n * sizeof(*recs), blk->off) < 0) {
				sp->failed = 1;
				sp->saved_errno = errno;
			}
			n += blk->n;
		}
		if (sp->failed)
			break;
		memcpy(recs + n, sp->buf + (size_t)b * SPOOL_BLOCK, sp->fill[b] * sizeof(*recs));
		n += sp->fill[b];
		qsort(recs, n, sizeof(*recs), compare_rec);
		for (size_t i = 0; i < n; i++) {
			char id[32];
			const size_t idlen = (size_t)(put_user_id(id, (recs[i].key & UINT32_MAX) + 1) - id);

			gen_write_event(eo, &tf, id, idlen, sp->start_ts + (int64_t)(recs[i].key >> 32),
					(int64_t)(recs[i].val >> 3), event_names[recs[i].val & 7]);
		}
	}
	if (sp->failed)
		ret = err_set(err, LTV_EIO, "generate: cannot write the temporary file '%s' that sorts "
			      "events by time: %s%s", sp->path, strerror(sp->saved_errno),
			      sp->saved_errno == ENOSPC || sp->saved_errno == EDQUOT
				      ? "; the partial files were removed: free some space or choose another --out"
				      : "");
	free(recs);
	return ret;
}

void event_spool_free(struct event_spool *sp)
{
	if (!sp)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->path);
	free(sp->buf);
	free(sp->fill);
	free(sp->head);
	free(sp->tail);
	free(sp->blocks);
	free(sp);
}

/* ---- the output directory ----------------------------------------------- */

int gen_make_dirs(const char *dir, struct ltv_err *err)
{
	char *path = xstrdup(dir);
	struct stat st;
	int ret = 0;

	for (char *s = path + 1;; s++) {
		const char saved = *s;
		if (saved != '/' && saved != '\0')
			continue;
		*s = '\0';
		if (mkdir(path, 0777) != 0 && errno != EEXIST) {
			ret = err_set(err, LTV_EIO, "cannot create directory '%s': %s", path,
				      strerror(errno));
			goto out;
		}
		*s = saved;
		if (!saved)
			break;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		ret = err_set(err, LTV_EIO, "output path '%s' is not a directory", dir);
out:
	free(path);
	return ret;
}

/* The pid a temporary file name ends with, or 0 when it is not one of ours. */
static pid_t temp_owner(const char *name)
{
	static const char *const prefixes[] = { ".users.csv.tmp.", ".events.csv.tmp.",
						".events.csv.spool." };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const size_t len = strlen(prefixes[i]);
		int64_t pid;

		if (strncmp(name, prefixes[i], len) != 0)
			continue;
		if (!name[len] || strspn(name + len, "0123456789") != strlen(name + len) ||
		    parse_int64(name + len, &pid) < 0 || pid <= 0 || pid > INT32_MAX)
			return 0;
		return (pid_t)pid;
	}
	return 0;
}

int gen_remove_stale_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		const pid_t pid = temp_owner(e->d_name);
		char *path;

		/* ESRCH: no such process. EPERM means it lives under another user: keep. */
		if (pid == 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (unlink(path) == 0)
			removed++;
		free(path);
	}
	closedir(d);
	return removed;
}

int64_t gen_free_bytes(const char *dir)
{
	struct statvfs st;

	if (statvfs(dir, &st) != 0)
		return -1;
	return (int64_t)st.f_bavail * (int64_t)st.f_frsize;
}
