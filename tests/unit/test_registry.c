/*
 * Unit tests for registry.c on real files in a scratch directory: schema
 * version and WAL mode, versions per artefact name, lineage, blobs, metadata,
 * rollback, the run lock between processes (forked children hold it), and a
 * writer killed with SIGKILL in the middle of a large transaction.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <sqlite3.h>

#include "ltv/registry.h"

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A fresh registry path "<scratch>/models/registry.sqlite" (caller frees both). */
static char *fresh_path(char **out_dir)
{
	char *dir = test_scratch_dir();

	assert_non_null(dir);
	*out_dir = dir;
	return xasprintf("%s/models/registry.sqlite", dir);
}

static struct registry *open_or_fail(const char *path)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int ret = registry_open(path, 5, &reg, &err);

	if (ret != 0)
		fail_msg("registry_open(%s): %s", path, err.msg);
	assert_non_null(reg);
	return reg;
}

static void start_run(struct registry *reg, const char *run_id)
{
	struct ltv_err err = { 0 };

	if (registry_run_start(reg, run_id, "test", INT64_MIN, "cfg", &err) != 0)
		fail_msg("run_start: %s", err.msg);
}

/*
 * Creates and commits the next version of name (fingerprint fp, content hash
 * content) with inputs and one blob "body"; returns its id.
 */
static int64_t commit_artefact(struct registry *reg, const char *run_id, const char *name,
			       const char *fp, const char *content, const int64_t *inputs,
			       size_t n_inputs, const void *blob, size_t blob_len,
			       int64_t *out_version)
{
	struct ltv_err err = { 0 };
	struct artefact_new a = { .name = name, .run_id = run_id, .fingerprint = fp,
				  .code_version = "1", .config = "k=v\n", .as_of = 1700000000,
				  .inputs = inputs, .n_inputs = n_inputs };
	int64_t id = 0, version = 0;

	assert_int_equal(registry_begin(reg, &err), 0);
	if (registry_artefact_create(reg, &a, &id, &version, &err) != 0)
		fail_msg("artefact_create: %s", err.msg);
	if (blob)
		assert_int_equal(registry_blob_put(reg, id, "body", blob, blob_len, &err), 0);
	assert_int_equal(registry_artefact_finish(reg, id, content, "{\"m\":1}", NULL, &err), 0);
	assert_int_equal(registry_set_current(reg, name, id, &err), 0);
	if (registry_commit(reg, &err) != 0)
		fail_msg("commit: %s", err.msg);
	if (out_version)
		*out_version = version;
	return id;
}

static int64_t count_of(struct registry *reg, const char *name)
{
	struct ltv_err err = { 0 };
	int64_t n = -1;

	assert_int_equal(registry_artefact_count(reg, name, &n, &err), 0);
	return n;
}

static void assert_integrity_ok(struct registry *reg)
{
	struct ltv_err err = { 0 };

	if (registry_integrity_check(reg, &err) != 0)
		fail_msg("integrity: %s", err.msg);
}

/* Fills buf with bytes that depend on seed, including NULs. */
static void pattern(unsigned char *buf, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
}

static void assert_blob(struct registry *reg, int64_t id, const char *key, const void *expect,
			size_t len)
{
	struct ltv_err err = { 0 };
	void *data = NULL;
	size_t n = 0;

	if (registry_blob_get(reg, id, key, &data, &n, &err) != 0)
		fail_msg("blob_get(%lld, %s): %s", (long long)id, key, err.msg);
	assert_int_equal(n, len);
	assert_memory_equal(data, expect, len);
	free(data);
}

static void test_open_creates_wal_registry(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg;
	struct ltv_err err = { 0 };
	unsigned char header[100];
	FILE *f;
	char *wal;

	(void)state;
	assert_int_not_equal(access(path, F_OK), 0);
	reg = open_or_fail(path);
	assert_int_equal(access(path, F_OK), 0); /* file and its directory created */
	assert_string_equal(registry_path(reg), path);
	assert_int_equal(registry_schema_version(reg), REGISTRY_SCHEMA_VERSION);
	assert_integrity_ok(reg);
	start_run(reg, "r1");
	wal = xasprintf("%s-wal", path);
	assert_int_equal(access(wal, F_OK), 0); /* a write went to the WAL */
	registry_close(reg);

	/* The database header says WAL: file format write/read versions are 2. */
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(header, 1, sizeof(header), f), sizeof(header));
	fclose(f);
	assert_memory_equal(header, "SQLite format 3", 16);
	assert_int_equal(header[18], 2);
	assert_int_equal(header[19], 2);
	/* 64 KB pages: the big-endian u16 at offset 16, where 1 stands for 65536 */
	assert_int_equal(header[16] << 8 | header[17], 1);
	/* user_version is the big-endian u32 at offset 60 */
	assert_int_equal((header[60] << 24) | (header[61] << 16) | (header[62] << 8) | header[63],
			 REGISTRY_SCHEMA_VERSION);

	/* Reopening keeps data and does not migrate again. */
	reg = open_or_fail(path);
	assert_int_equal(registry_schema_version(reg), REGISTRY_SCHEMA_VERSION);
	assert_int_equal(registry_run_finish(reg, "r1", "ok", &err), 0);
	registry_close(reg);

	/* Read-only open works on an existing registry. */
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_int_equal(registry_schema_version(reg), REGISTRY_SCHEMA_VERSION);
	assert_integrity_ok(reg);
	registry_close(reg);
	registry_close(NULL);
	free(wal);
	free(path);
	test_scratch_free(dir);
}

static void test_open_readonly_missing(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = (struct registry *)&reg;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(registry_open_readonly(path, &reg, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, path));
	/* and it did not create the file */
	assert_int_not_equal(access(path, F_OK), 0);
	free(path);
	test_scratch_free(dir);
}

/* A registry written by a newer ltvpipe (user_version above ours) is refused, not damaged. */
static void test_newer_schema_refused(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	unsigned char v[4] = { 0, 0, 0, REGISTRY_SCHEMA_VERSION + 1 };
	FILE *f;

	(void)state;
	registry_close(reg); /* last connection: checkpointed into the main file */
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 60, SEEK_SET), 0);
	assert_int_equal(fwrite(v, 1, 4, f), 4);
	fclose(f);
	reg = NULL;
	assert_int_equal(registry_open(path, 1, &reg, &err), LTV_EREGISTRY);
	assert_null(reg);
	assert_non_null(strstr(err.msg, "newer"));
	assert_int_equal(registry_open_readonly(path, &reg, &err), LTV_EREGISTRY);
	assert_null(reg);
	free(path);
	test_scratch_free(dir);
}

static void test_versions_lineage_current(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_info info;
	int64_t v = 0, ids[3], other, *lin = NULL;
	size_t n_lin = 0;

	(void)state;
	start_run(reg, "run-a");
	assert_int_equal(count_of(reg, "ingest"), 0);
	assert_int_equal(registry_artefact_current(reg, "ingest", &info, &err), LTV_ENOTFOUND);
	for (int i = 0; i < 3; i++) {
		char fp[16], ch[16];

		snprintf(fp, sizeof(fp), "fp%d", i + 1);
		snprintf(ch, sizeof(ch), "ch%d", i + 1);
		ids[i] = commit_artefact(reg, "run-a", "ingest", fp, ch, NULL, 0, NULL, 0, &v);
		assert_int_equal(v, i + 1);
	}
	assert_int_equal(count_of(reg, "ingest"), 3);
	/* versions are per name: another name starts at 1 */
	other = commit_artefact(reg, "run-a", "features", "ffp", "fch", ids, 2, NULL, 0, &v);
	assert_int_equal(v, 1);
	assert_int_equal(count_of(reg, "features"), 1);
	assert_int_equal(count_of(reg, "nosuch"), 0);

	assert_int_equal(registry_lineage(reg, other, &lin, &n_lin, &err), 0);
	assert_int_equal(n_lin, 2);
	assert_int_equal(lin[0], ids[0]);
	assert_int_equal(lin[1], ids[1]);
	free(lin);
	assert_int_equal(registry_lineage(reg, ids[0], &lin, &n_lin, &err), 0);
	assert_int_equal(n_lin, 0);
	free(lin);

	assert_int_equal(registry_artefact_current(reg, "ingest", &info, &err), 0);
	assert_int_equal(info.id, ids[2]);
	assert_int_equal(info.version, 3);
	assert_string_equal(info.name, "ingest");
	assert_string_equal(info.run_id, "run-a");
	assert_string_equal(info.fingerprint, "fp3");
	assert_string_equal(info.content_hash, "ch3");
	assert_string_equal(info.code_version, "1");
	assert_string_equal(info.config, "k=v\n");
	assert_string_equal(info.metrics, "{\"m\":1}");
	assert_string_equal(info.timings, "{}");
	assert_int_equal(info.as_of, 1700000000);
	artefact_info_release(&info);

	/* make v1 current again */
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_set_current(reg, "ingest", ids[0], &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(registry_artefact_current(reg, "ingest", &info, &err), 0);
	assert_int_equal(info.version, 1);
	artefact_info_release(&info);

	assert_int_equal(registry_artefact_by_version(reg, "ingest", 2, &info, &err), 0);
	assert_int_equal(info.id, ids[1]);
	assert_string_equal(info.fingerprint, "fp2");
	artefact_info_release(&info);
	assert_int_equal(registry_artefact_by_version(reg, "ingest", 4, &info, &err), LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_by_fingerprint(reg, "ingest", "fp2", &info, &err), 0);
	assert_int_equal(info.version, 2);
	artefact_info_release(&info);
	assert_int_equal(registry_artefact_by_fingerprint(reg, "features", "fp2", &info, &err),
			 LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_get(reg, other, &info, &err), 0);
	assert_string_equal(info.name, "features");
	artefact_info_release(&info);
	assert_int_equal(registry_artefact_get(reg, 9999, &info, &err), LTV_ENOTFOUND);

	assert_integrity_ok(reg);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/* An artefact committed without a content hash is never found by fingerprint. */
static void test_unfinished_not_reused(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_new a = { .name = "x", .run_id = "r", .fingerprint = "same",
				  .code_version = "1", .as_of = INT64_MIN };
	struct artefact_info info;
	int64_t id, v;

	(void)state;
	start_run(reg, "r");
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_artefact_create(reg, &a, &id, &v, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(registry_artefact_by_fingerprint(reg, "x", "same", &info, &err),
			 LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_get(reg, id, &info, &err), 0);
	assert_true(info.as_of == INT64_MIN); /* NULL as_of reads back as INT64_MIN */
	assert_string_equal(info.config, "");
	artefact_info_release(&info);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

static void test_blobs_exact(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	const size_t big = 3 * 1024 * 1024 + 17;
	unsigned char *data = xmalloc(big), small[5] = { 0, 1, 0, 255, 0 };
	void *got = NULL;
	size_t n = 1;
	int64_t id;

	(void)state;
	pattern(data, big, 7);
	start_run(reg, "r");
	id = commit_artefact(reg, "r", "model", "fp", "ch", NULL, 0, data, big, NULL);
	assert_blob(reg, id, "body", data, big);

	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_blob_put(reg, id, "small", small, sizeof(small), &err), 0);
	assert_int_equal(registry_blob_put(reg, id, "empty", NULL, 0, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_blob(reg, id, "small", small, sizeof(small));
	assert_int_equal(registry_blob_get(reg, id, "empty", &got, &n, &err), 0);
	assert_int_equal(n, 0);
	free(got);

	/* put under an existing key replaces it */
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_blob_put(reg, id, "small", "xyz", 3, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_blob(reg, id, "small", "xyz", 3);

	assert_int_equal(registry_blob_get(reg, id, "absent", &got, &n, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "absent"));
	assert_int_equal(registry_blob_get(reg, id + 100, "body", &got, &n, &err), LTV_ENOTFOUND);
	/* a blob needs an existing artefact (foreign keys are on) */
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_true(registry_blob_put(reg, id + 100, "orphan", "a", 1, &err) < 0);
	registry_rollback(reg);

	registry_close(reg);
	/* and the bytes survive a reopen */
	reg = open_or_fail(path);
	assert_blob(reg, id, "body", data, big);
	registry_close(reg);
	free(data);
	free(path);
	test_scratch_free(dir);
}

/*
 * registry_blob_get_parts reads a blob into two caller buffers: the bytes
 * are registry_blob_get's, a wrong length or a missing blob is refused, and
 * bytes changed behind the registry's back fail the checksum.
 */
static void test_blob_get_parts(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	const size_t big = 3 * 1024 * 1024 + 17, head_len = 20;
	unsigned char *data = xmalloc(big), *body = xmalloc(big), head[20];
	sqlite3 *db;
	int64_t id;

	(void)state;
	pattern(data, big, 11);
	start_run(reg, "r");
	id = commit_artefact(reg, "r", "model", "fp", "ch", NULL, 0, data, big, NULL);
	assert_int_equal(registry_blob_get_parts(reg, id, "body", head, head_len, body,
						 big - head_len, &err), 0);
	assert_memory_equal(head, data, head_len);
	assert_memory_equal(body, data + head_len, big - head_len);

	assert_int_equal(registry_blob_get_parts(reg, id, "body", head, head_len, body,
						 big - head_len - 1, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "bytes"));
	assert_int_equal(registry_blob_get_parts(reg, id, "absent", head, head_len, body, 1, &err),
			 LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "absent"));
	registry_close(reg);

	/* one byte of the body changed, the checksum left as it was */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE artefact_blobs SET data = CAST(substr(data, 1, 100) ||"
				      " x'00' || substr(data, 102) AS BLOB) WHERE key = 'body'", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	reg = open_or_fail(path);
	assert_int_equal(registry_blob_get_parts(reg, id, "body", head, head_len, body,
						 big - head_len, &err), LTV_EREGISTRY);
	assert_non_null(strstr(err.msg, "does not match its checksum"));
	registry_close(reg);
	free(data);
	free(body);
	free(path);
	test_scratch_free(dir);
}

/*
 * registry_blob_peek gives a blob's length and first bytes (fewer when it is
 * shorter); registry_blob_get_vec reads it into any number of parts, refuses
 * parts that do not add up to its length, and checks the checksum.
 */
static void test_blob_peek_and_vec(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	const size_t big = 1024 * 1024 + 5;
	unsigned char *data = xmalloc(big), *mid = xmalloc(big), head[16], tail[3];
	const struct blob_part parts[3] = { { head, 16 }, { mid, big - 19 }, { tail, 3 } };
	const struct blob_part short_parts[2] = { { head, 16 }, { mid, big - 17 } };
	unsigned char tiny[4] = { 1, 2, 3, 4 }, got[16] = { 0 };
	sqlite3 *db;
	size_t len = 0;
	int64_t id, tiny_id;

	(void)state;
	pattern(data, big, 5);
	start_run(reg, "r");
	id = commit_artefact(reg, "r", "model", "fp", "ch", NULL, 0, data, big, NULL);
	tiny_id = commit_artefact(reg, "r", "other", "fp", "ch", NULL, 0, tiny, sizeof(tiny), NULL);
	assert_int_equal(registry_blob_peek(reg, id, "body", head, sizeof(head), &len, &err), 0);
	assert_int_equal(len, big);
	assert_memory_equal(head, data, sizeof(head));
	assert_int_equal(registry_blob_peek(reg, tiny_id, "body", got, sizeof(got), &len, &err), 0);
	assert_int_equal(len, sizeof(tiny));
	assert_memory_equal(got, tiny, sizeof(tiny));
	assert_int_equal(registry_blob_peek(reg, id, "absent", head, sizeof(head), &len, &err),
			 LTV_ENOTFOUND);

	memset(head, 0, sizeof(head));
	assert_int_equal(registry_blob_get_vec(reg, id, "body", parts, 3, &err), 0);
	assert_memory_equal(head, data, 16);
	assert_memory_equal(mid, data + 16, big - 19);
	assert_memory_equal(tail, data + big - 3, 3);
	assert_int_equal(registry_blob_get_vec(reg, id, "body", short_parts, 2, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "bytes"));
	registry_close(reg);

	/* the last byte changed, the checksum left as it was */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE artefact_blobs SET data = CAST(substr(data, 1, "
				      "length(data) - 1) || x'00' AS BLOB) WHERE key = 'body' AND "
				      "length(data) > 100", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	reg = open_or_fail(path);
	assert_int_equal(registry_blob_get_vec(reg, id, "body", parts, 3, &err), LTV_EREGISTRY);
	assert_non_null(strstr(err.msg, "does not match its checksum"));
	registry_close(reg);
	free(data);
	free(mid);
	free(path);
	test_scratch_free(dir);
}

static void test_rollback_leaves_no_trace(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_info info;
	unsigned char b1[1000], b2[1000];
	struct artefact_new a = { .name = "model", .run_id = "r", .fingerprint = "fp-rolled",
				  .code_version = "1", .config = "", .as_of = 5 };
	int64_t id1, id2, id3, v, *lin;
	size_t n_lin, n_got;
	void *got = NULL;
	char *meta = NULL;

	(void)state;
	pattern(b1, sizeof(b1), 1);
	pattern(b2, sizeof(b2), 2);
	start_run(reg, "r");
	id1 = commit_artefact(reg, "r", "model", "fp1", "c1", NULL, 0, b1, sizeof(b1), NULL);
	a.inputs = &id1;
	a.n_inputs = 1;

	assert_int_equal(registry_begin(reg, &err), 0);
	/* nested begin is refused, not silently merged */
	assert_int_equal(registry_begin(reg, &err), LTV_EINTERNAL);
	assert_int_equal(registry_artefact_create(reg, &a, &id2, &v, &err), 0);
	assert_int_equal(v, 2);
	assert_int_equal(registry_blob_put(reg, id2, "body", b2, sizeof(b2), &err), 0);
	assert_int_equal(registry_blob_put(reg, id1, "extra", b2, sizeof(b2), &err), 0);
	assert_int_equal(registry_artefact_finish(reg, id2, "c2", NULL, NULL, &err), 0);
	assert_int_equal(registry_set_current(reg, "model", id2, &err), 0);
	assert_int_equal(registry_meta_set(reg, "k", "rolled", &err), 0);
	assert_int_equal(count_of(reg, "model"), 2); /* visible inside the transaction */
	registry_rollback(reg);
	registry_rollback(reg); /* a second rollback is harmless */

	assert_int_equal(count_of(reg, "model"), 1);
	assert_int_equal(registry_artefact_get(reg, id2, &info, &err), LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_by_version(reg, "model", 2, &info, &err), LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_by_fingerprint(reg, "model", "fp-rolled", &info, &err),
			 LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_current(reg, "model", &info, &err), 0);
	assert_int_equal(info.id, id1);
	assert_string_equal(info.content_hash, "c1");
	artefact_info_release(&info);
	assert_blob(reg, id1, "body", b1, sizeof(b1));
	assert_int_equal(registry_blob_get(reg, id1, "extra", &got, &n_got, &err), LTV_ENOTFOUND);
	assert_int_equal(registry_lineage(reg, id2, &lin, &n_lin, &err), 0);
	assert_int_equal(n_lin, 0);
	free(lin);
	assert_int_equal(registry_meta_get(reg, "k", &meta, &err), LTV_ENOTFOUND);
	assert_null(meta);
	assert_integrity_ok(reg);

	/* the next version after a rollback is 2 again: no gap */
	id3 = commit_artefact(reg, "r", "model", "fp3", "c3", NULL, 0, NULL, 0, &v);
	assert_int_equal(v, 2);
	assert_true(id3 > id1);

	/* closing with an open transaction rolls it back */
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_artefact_create(reg, &a, &id2, &v, &err), 0);
	assert_int_equal(v, 3);
	registry_close(reg);
	reg = open_or_fail(path);
	assert_int_equal(count_of(reg, "model"), 2);
	assert_integrity_ok(reg);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/* One reader of the default as_of for every command: none yet, a time, and a broken value. */
static void test_default_as_of(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	int64_t as_of = 42;

	(void)state;
	assert_int_equal(registry_default_as_of(reg, &as_of, &err), LTV_EUSAGE);
	assert_int_equal(as_of, 42);
	assert_non_null(strstr(err.msg, "no events yet"));
	assert_non_null(strstr(err.msg, "--as-of DATE"));
	assert_int_equal(registry_meta_set(reg, "max_event_time", "1735689600", &err), 0);
	assert_int_equal(registry_default_as_of(reg, &as_of, &err), 0);
	assert_int_equal(as_of, 1735689600);
	assert_int_equal(registry_meta_set(reg, "max_event_time", "yesterday", &err), 0);
	assert_int_equal(registry_default_as_of(reg, &as_of, &err), LTV_EREGISTRY);
	assert_non_null(strstr(err.msg, "'yesterday' is not a time"));
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

static void test_meta(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	char *value = (char *)"sentinel";

	(void)state;
	assert_int_equal(registry_meta_get(reg, "max_event_time", &value, &err), LTV_ENOTFOUND);
	assert_null(value);
	assert_non_null(strstr(err.msg, "max_event_time"));
	assert_int_equal(registry_meta_set(reg, "max_event_time", "1735689600", &err), 0);
	assert_int_equal(registry_meta_get(reg, "max_event_time", &value, &err), 0);
	assert_string_equal(value, "1735689600");
	free(value);
	assert_int_equal(registry_meta_set(reg, "max_event_time", "", &err), 0);
	assert_int_equal(registry_meta_set(reg, "other", "x y\nz", &err), 0);
	registry_close(reg);
	reg = open_or_fail(path);
	assert_int_equal(registry_meta_get(reg, "max_event_time", &value, &err), 0);
	assert_string_equal(value, "");
	free(value);
	assert_int_equal(registry_meta_get(reg, "other", &value, &err), 0);
	assert_string_equal(value, "x y\nz");
	free(value);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/*
 * Forks a child that opens path, takes the run lock, writes one byte to the
 * returned pipe and holds the lock until the parent closes *release (the
 * write end of a second pipe), then waits linger_ms and exits. Not a timer:
 * a parent delayed on a loaded machine would find the lock already gone.
 * The parent must have no open connection to path when it calls this.
 */
static pid_t fork_lock_holder(const char *path, int *release, int linger_ms)
{
	int fds[2], rel[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(pipe(rel), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct registry *reg = NULL;
		struct ltv_err err = { 0 };
		struct timespec linger = { linger_ms / 1000, (long)(linger_ms % 1000) * 1000000L };

		close(fds[0]);
		close(rel[1]);
		if (registry_open(path, 5, &reg, &err) != 0 || registry_lock_run(reg, 0, &err) != 0)
			_exit(3);
		if (write(fds[1], "L", 1) != 1)
			_exit(4);
		while (read(rel[0], &c, 1) > 0) /* until the parent closes its end */
			;
		nanosleep(&linger, NULL);
		_exit(0); /* no unlock: the kernel releases it */
	}
	close(fds[1]);
	close(rel[0]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	*release = rel[1];
	return pid;
}

static void test_run_lock_between_processes(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	char *lock_path = xasprintf("%s.lock", path);
	double t0, waited;
	pid_t pid;
	int status, release;

	(void)state;
	registry_close(reg); /* no connection across fork */

	pid = fork_lock_holder(path, &release, 1000);
	reg = open_or_fail(path);
	t0 = mono_now();
	assert_int_equal(registry_lock_run(reg, 1, &err), LTV_EBUSY);
	waited = mono_now() - t0;
	/* at least the timeout; at most what a loaded machine adds to it */
	assert_true(waited >= 0.9);
	assert_true(waited < 20);
	assert_int_equal(err.code, LTV_EBUSY);
	assert_non_null(strstr(err.msg, lock_path));
	assert_non_null(strstr(err.msg, "another ltvpipe run"));
	/* the failed attempt does not leave this connection holding anything */
	assert_int_equal(registry_lock_run(reg, 0, &err), LTV_EBUSY);

	/* a longer timeout waits for the holder to exit (1 s after its release), then gets the lock */
	t0 = mono_now();
	close(release);
	assert_int_equal(registry_lock_run(reg, 60, &err), 0);
	waited = mono_now() - t0;
	assert_true(waited >= 0.9);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* held by us now: a second connection cannot take it */
	{
		struct registry *reg2 = open_or_fail(path);

		assert_int_equal(registry_lock_run(reg2, 0, &err), LTV_EBUSY);
		registry_unlock_run(reg);
		assert_int_equal(registry_lock_run(reg2, 0, &err), 0);
		registry_unlock_run(reg2);
		registry_close(reg2);
	}
	registry_close(reg);

	/* a holder killed with SIGKILL has released the lock once it is reaped */
	pid = fork_lock_holder(path, &release, 0);
	reg = open_or_fail(path);
	assert_int_equal(registry_lock_run(reg, 0, &err), LTV_EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(release);
	assert_int_equal(registry_lock_run(reg, 0, &err), 0);
	registry_close(reg); /* close releases it too */
	reg = open_or_fail(path);
	assert_int_equal(registry_lock_run(reg, 0, &err), 0);
	registry_close(reg);

	free(lock_path);
	free(path);
	test_scratch_free(dir);
}

#define KILL_BLOB_SIZE (1024 * 1024)
#define KILL_N_BLOBS 200
#define KILL_SIGNAL_AFTER 40

/*
 * A writer SIGKILLed half way through a 200 MB transaction: the previous
 * versions are exactly as they were, the killed one never existed, and the
 * file is sound.
 */
/*
 * Reads len bytes the writer child pid sends on fd once it is where the test
 * wants it, then kills it with SIGKILL and reaps it.
 */
static void kill_when_told(pid_t pid, int fd, void *msg, size_t len)
{
	int status = 0;

	if (read(fd, msg, len) != (ssize_t)len) {
		waitpid(pid, &status, 0);
		fail_msg("writer child died before signalling (status %d)", status);
	}
	close(fd);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_sigkill_mid_transaction(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_info info;
	unsigned char *b1 = xmalloc(KILL_BLOB_SIZE), *b2 = xmalloc(KILL_BLOB_SIZE);
	int64_t id1, id2, v;
	int fds[2];
	char c;
	pid_t pid;
	struct stat st;
	char *wal = xasprintf("%s-wal", path);

	(void)state;
	pattern(b1, KILL_BLOB_SIZE, 11);
	pattern(b2, KILL_BLOB_SIZE, 12);
	start_run(reg, "r");
	id1 = commit_artefact(reg, "r", "model", "fp1", "c1", NULL, 0, b1, KILL_BLOB_SIZE, NULL);
	id2 = commit_artefact(reg, "r", "model", "fp2", "c2", &id1, 1, b2, KILL_BLOB_SIZE, NULL);
	registry_close(reg);

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct artefact_new a = { .name = "model", .run_id = "r", .fingerprint = "fp-killed",
					  .code_version = "1", .config = "", .as_of = 1 };
		unsigned char *blob = xmalloc(KILL_BLOB_SIZE);
		int64_t id, version;

		close(fds[0]);
		if (registry_open(path, 5, &reg, &err) != 0 || registry_begin(reg, &err) != 0 ||
		    registry_artefact_create(reg, &a, &id, &version, &err) != 0 ||
		    registry_set_current(reg, "model", id, &err) != 0 ||
		    registry_meta_set(reg, "max_event_time", "killed", &err) != 0)
			_exit(3);
		for (int i = 0; i < KILL_N_BLOBS; i++) {
			char key[32];

			pattern(blob, KILL_BLOB_SIZE, (unsigned)(100 + i));
			snprintf(key, sizeof(key), "part%d", i);
			if (registry_blob_put(reg, id, key, blob, KILL_BLOB_SIZE, &err) != 0)
				_exit(4);
			if (i == KILL_SIGNAL_AFTER && write(fds[1], "K", 1) != 1)
				_exit(5);
		}
		/* Not reached unless the parent is slow: park here uncommitted. */
		pause();
		_exit(6);
	}
	close(fds[1]);
	kill_when_told(pid, fds[0], &c, 1);
	/* The uncommitted pages really had spilled into the WAL before the kill. */
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 10 * KILL_BLOB_SIZE);

	reg = open_or_fail(path);
	assert_integrity_ok(reg);
	assert_int_equal(count_of(reg, "model"), 2);
	assert_int_equal(registry_artefact_by_version(reg, "model", 3, &info, &err), LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_by_fingerprint(reg, "model", "fp-killed", &info, &err),
			 LTV_ENOTFOUND);
	assert_int_equal(registry_artefact_current(reg, "model", &info, &err), 0);
	assert_int_equal(info.id, id2);
	assert_int_equal(info.version, 2);
	artefact_info_release(&info);
	assert_blob(reg, id1, "body", b1, KILL_BLOB_SIZE);
	assert_blob(reg, id2, "body", b2, KILL_BLOB_SIZE);
	{
		char *value = NULL;

		assert_int_equal(registry_meta_get(reg, "max_event_time", &value, &err), LTV_ENOTFOUND);
	}
	/* and it is writable: the next version is 3 */
	commit_artefact(reg, "r", "model", "fp3", "c3", NULL, 0, "ok", 2, &v);
	assert_int_equal(v, 3);
	assert_integrity_ok(reg);
	registry_close(reg);
	free(wal);
	free(b1);
	free(b2);
	free(path);
	test_scratch_free(dir);
}

/* Past SQLite's 1,000-page autocheckpoint at the registry's 64 KB pages. */
#define DEFER_BLOB_SIZE ((size_t)72 << 20)

/*
 * registry_defer_checkpoints (the runner's serial stages before the model
 * wave): a commit past the autocheckpoint size stays in the WAL, survives
 * SIGKILL there whole, and the next commit of a connection that does not
 * defer copies it into the database file.
 */
static void test_deferred_checkpoint_survives_sigkill(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_info info;
	unsigned char *big = xmalloc(DEFER_BLOB_SIZE);
	int fds[2];
	int64_t id = 0;
	struct stat st;
	pid_t pid;

	(void)state;
	pattern(big, DEFER_BLOB_SIZE, 21);
	start_run(reg, "r");
	commit_artefact(reg, "r", "tiers", "fp0", "c0", NULL, 0, "small", 5, NULL);
	registry_close(reg);

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		reg = open_or_fail(path);
		registry_defer_checkpoints(reg, 1);
		id = commit_artefact(reg, "r", "features", "fp1", "c1", NULL, 0, big,
				     DEFER_BLOB_SIZE, NULL);
		if (write(fds[1], &id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(5);
		pause(); /* committed, never closed: killed here */
		_exit(6);
	}
	close(fds[1]);
	kill_when_told(pid, fds[0], &id, sizeof(id));
	/* The commit was not copied into the database file: it lives in the WAL only. */
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < (off_t)(DEFER_BLOB_SIZE / 2));

	reg = open_or_fail(path);
	assert_integrity_ok(reg);
	assert_int_equal(registry_artefact_current(reg, "features", &info, &err), 0);
	assert_int_equal(info.id, id);
	artefact_info_release(&info);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	/* A connection that does not defer: its commit checkpoints what the other left. */
	commit_artefact(reg, "r", "hurdle", "fp2", "c2", NULL, 0, "small", 5, NULL);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > (off_t)DEFER_BLOB_SIZE);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	assert_integrity_ok(reg);
	registry_close(reg);
	free(big);
	free(path);
	test_scratch_free(dir);
}

/*
 * registry_leave_wal_at_close: the close copies nothing (the commit stays in
 * the WAL, beside a database file that never held it), a reader and a
 * read-only reader find it there, and the next connection that closes
 * normally copies it and removes the WAL.
 */
static void test_wal_left_at_close(void **state)
{
	char *dir, *path = fresh_path(&dir);
	char *wal = xasprintf("%s-wal", path);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct artefact_info info;
	unsigned char *big = xmalloc(DEFER_BLOB_SIZE);
	struct stat st;
	int64_t id;

	(void)state;
	pattern(big, DEFER_BLOB_SIZE, 22);
	start_run(reg, "r");
	registry_defer_checkpoints(reg, 1);
	id = commit_artefact(reg, "r", "ingest", "fp1", "c1", NULL, 0, big, DEFER_BLOB_SIZE, NULL);
	registry_leave_wal_at_close(reg);
	commit_artefact(reg, "r", "tiers", "fp2", "c2", NULL, 0, "small", 5, NULL);
	registry_close(reg);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < (off_t)(DEFER_BLOB_SIZE / 2));
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > (off_t)DEFER_BLOB_SIZE);

	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	registry_close(reg);

	reg = open_or_fail(path);
	assert_integrity_ok(reg);
	assert_int_equal(registry_artefact_current(reg, "ingest", &info, &err), 0);
	assert_int_equal(info.id, id);
	artefact_info_release(&info);
	registry_close(reg);
	/* That connection closed as every other does: the WAL is copied and gone. */
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > (off_t)DEFER_BLOB_SIZE);
	assert_int_not_equal(stat(wal, &st), 0);
	reg = open_or_fail(path);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	registry_close(reg);
	free(big);
	free(wal);
	free(path);
	test_scratch_free(dir);
}

/* Waits up to 10 s for path to be gone (a background rm's work): 1 when it is. */
static int gone_within(const char *path)
{
	struct stat st;

	for (int i = 0; i < 1000; i++) {
		if (stat(path, &st) != 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

/*
 * A big WAL that the close copies and deletes is given a second name first
 * (".aside"), which a background rm removes: the WAL is gone at once, the
 * second name soon after, the data in the database. A stale second name is
 * replaced; with another connection open the WAL stays and so does no
 * second name.
 */
static void test_big_wal_freed_after_close(void **state)
{
	char *dir, *path = fresh_path(&dir);
	char *wal = xasprintf("%s-wal", path), *aside = xasprintf("%s-wal.aside", path);
	struct registry *reg = open_or_fail(path), *reader = NULL;
	struct ltv_err err = { 0 };
	unsigned char *big = xmalloc(DEFER_BLOB_SIZE);
	struct stat st;
	FILE *stale;
	int64_t id;

	(void)state;
	pattern(big, DEFER_BLOB_SIZE, 23);
	start_run(reg, "r");
	registry_defer_checkpoints(reg, 1);
	id = commit_artefact(reg, "r", "ingest", "fp1", "c1", NULL, 0, big, DEFER_BLOB_SIZE, NULL);
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > (off_t)DEFER_BLOB_SIZE);
	/* another connection: the close leaves the WAL, and no second name */
	assert_int_equal(registry_open_readonly(path, &reader, &err), 0);
	assert_blob(reader, id, "body", big, DEFER_BLOB_SIZE);
	registry_close(reg);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_not_equal(stat(aside, &st), 0);
	registry_close(reader);

	stale = fopen(aside, "w");
	assert_non_null(stale);
	fputs("stale", stale);
	fclose(stale);
	reg = open_or_fail(path);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	registry_close(reg);
	assert_int_not_equal(stat(wal, &st), 0);
	assert_true(gone_within(aside));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > (off_t)DEFER_BLOB_SIZE);

	reg = open_or_fail(path);
	assert_integrity_ok(reg);
	assert_blob(reg, id, "body", big, DEFER_BLOB_SIZE);
	registry_close(reg);
	free(big);
	free(aside);
	free(wal);
	free(path);
	test_scratch_free(dir);
}

/* Counts the rows a registry_report streams. */
static int count_rows(void *ctx, int n_cols, char **names, char **values)
{
	(void)n_cols;
	(void)names;
	(void)values;
	++*(int *)ctx;
	return 0;
}

/*
 * Setting an alias to the version it already points at changes nothing and
 * records nothing: alias_history holds moves, not "production 2 -> 2".
 */
static void test_alias_noop_not_recorded(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct ltv_err err = { 0 };
	struct alias_move mv;
	int64_t id, v = 0, current = 0;
	int rows = 0;

	(void)state;
	start_run(reg, "r");
	id = commit_artefact(reg, "r", "model", "fp", "c", NULL, 0, NULL, 0, NULL);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_model_version_create(reg, "r", &id, 1, NAN, "{}", &v, &err), 0);
	assert_int_equal(registry_alias_move(reg, "production", v, "t", "first", &mv, &err), 0);
	assert_int_equal(mv.moved, 1);
	assert_int_equal(registry_alias_move(reg, "production", v, "t", "again", &mv, &err), 0);
	assert_int_equal(mv.moved, 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(registry_alias_get(reg, "production", &current, &err), 0);
	assert_int_equal(current, v);
	assert_int_equal(registry_report(reg, "alias_history", 0, count_rows, &rows, &err), 0);
	assert_int_equal(rows, 1);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

static char *meta_or_fail(struct registry *reg, const char *key)
{
	struct ltv_err err = { 0 };
	char *value = NULL;

	if (registry_meta_get(reg, key, &value, &err) != 0)
		fail_msg("meta_get(%s): %s", key, err.msg);
	return value;
}

static void set_meta_committed(struct registry *reg, const char *key, const char *value)
{
	struct ltv_err err = { 0 };

	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_meta_set(reg, key, value, &err), 0);
	if (registry_commit(reg, &err) != 0)
		fail_msg("commit: %s", err.msg);
}

/*
 * A reader inside registry_read_begin sees one snapshot: a writer on another
 * connection commits between the reader's two reads, and both reads still
 * see the old value; after registry_read_end the reader sees the new one.
 */
static void test_read_transaction_is_one_snapshot(void **state)
{
	char *dir, *path = fresh_path(&dir);
	struct registry *writer = open_or_fail(path), *reader = NULL;
	struct ltv_err err = { 0 };
	char *a, *b, *c;

	(void)state;
	set_meta_committed(writer, "users", "100");
	set_meta_committed(writer, "model", "v1");
	assert_int_equal(registry_open_readonly(path, &reader, &err), 0);
	assert_int_equal(registry_read_begin(reader, &err), 0);
	a = meta_or_fail(reader, "users");
	/* a run commits new data and a new model while the reader is between reads */
	assert_int_equal(registry_begin(writer, &err), 0);
	assert_int_equal(registry_meta_set(writer, "users", "200", &err), 0);
	assert_int_equal(registry_meta_set(writer, "model", "v2", &err), 0);
	assert_int_equal(registry_commit(writer, &err), 0);
	b = meta_or_fail(reader, "model");
	assert_string_equal(a, "100");
	assert_string_equal(b, "v1");
	/* a second begin inside is refused, not silently nested */
	assert_int_equal(registry_read_begin(reader, &err), LTV_EINTERNAL);
	registry_read_end(reader);
	c = meta_or_fail(reader, "model");
	assert_string_equal(c, "v2");
	registry_read_end(reader); /* twice is harmless */
	registry_read_end(NULL);
	free(a);
	free(b);
	free(c);
	registry_close(reader);
	registry_close(writer);
	free(path);
	test_scratch_free(dir);
}

/*
 * registry_users_load packs the users' strings into blocks: every string
 * reads back as stored, one longer than a block included (it gets a block of
 * its own and the next string a fresh one), NULL attributes stay NULL, and
 * user_table_release frees the blocks (LeakSanitizer checks it).
 */
static void test_users_load_packs_strings(void **state)
{
	char *dir = NULL, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct user_row rows[5000];
	struct user_table t;
	struct ltv_err err = { 0 };
	const size_t long_len = (4u << 20) + 100; /* past a block (4 MB) */
	char *long_campaign = xmalloc(long_len + 1), ids[5000][16];
	int64_t id;

	(void)state;
	memset(long_campaign, 'k', long_len);
	long_campaign[long_len] = '\0';
	for (int i = 0; i < 5000; i++) {
		snprintf(ids[i], sizeof(ids[i]), "u%d", i);
		rows[i] = (struct user_row){ i + 1, ids[i], i % 2 ? "app-b" : "app-a",
					     i == 1234 ? long_campaign : "camp", 1000 + i,
					     i % 3 ? 0.25 : NAN, i % 2 ? "{\"c\":\"de\"}" : NULL };
	}
	start_run(reg, "r1");
	id = commit_artefact(reg, "r1", "ingest", "fp", "h", NULL, 0, NULL, 0, NULL);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_users_insert(reg, rows, 5000, id, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(registry_users_load(reg, &t, &err), 0);
	assert_int_equal(t.n, 5000);
	assert_true(t.n_text_blocks >= 2);
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(t.uid[i], i + 1);
		assert_string_equal(t.user_id[i], ids[i]);
		assert_string_equal(t.app_id[i], i % 2 ? "app-b" : "app-a");
		assert_string_equal(t.campaign[i], i == 1234 ? long_campaign : "camp");
		assert_int_equal(t.install_time[i], 1000 + i);
		assert_true(i % 3 ? t.cost[i] == 0.25 : isnan(t.cost[i]));
		if (i % 2)
			assert_string_equal(t.attributes_json[i], "{\"c\":\"de\"}");
		else
			assert_null(t.attributes_json[i]);
	}
	user_table_release(&t);
	assert_int_equal(t.n, 0);
	assert_null(t.text_blocks);
	free(long_campaign);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/* What registry_users_and_days passed on, checked against the users read so far. */
struct seen_days {
	const struct user_table *users;
	struct user_day_row rows[64];
	size_t n;
	int user_missing; /* a user-day came before its user's columns were in */
};

static int see_day(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
		   int64_t purchases)
{
	struct seen_days *s = ctx;

	/* Its user's columns are in: the install time the test gave user uid. */
	s->user_missing |= s->users->install_time[uid - 1] != 5000 + uid;
	if (s->n < 64)
		s->rows[s->n] = (struct user_day_row){ uid, day, revenue, events, purchases };
	s->n++;
	return 0;
}

/*
 * Inside registry_read_begin's snapshot, the users are read on the
 * snapshot's own connection: a rebuild committed meanwhile by another
 * process, with as many users but new campaigns, is not seen (two readers
 * on connections of their own would read the new users beside the
 * snapshot's user-days).
 */
static void users_read_in_snapshot(struct registry *reg, const char *path, struct user_row *rows,
				   size_t n)
{
	struct registry *writer = open_or_fail(path);
	struct user_table t;
	struct seen_days s = { .users = &t };
	struct ltv_err err = { 0 };
	int64_t id;

	assert_int_equal(registry_read_begin(reg, &err), 0);
	for (size_t i = 0; i < n; i++)
		rows[i].campaign = "moved";
	start_run(writer, "r2");
	id = commit_artefact(writer, "r2", "ingest", "fp2", "h2", NULL, 0, NULL, 0, NULL);
	assert_int_equal(registry_begin(writer, &err), 0);
	if (registry_data_clear(writer, &err) != 0)
		fail_msg("the rebuild's clear: %s", err.msg);
	if (registry_users_insert(writer, rows, n, id, &err) != 0)
		fail_msg("the rebuild's insert: %s", err.msg);
	if (registry_commit(writer, &err) != 0)
		fail_msg("the rebuild's commit: %s", err.msg);
	if (registry_users_and_days(reg, 2, &t, see_day, &s, &err) != 0)
		fail_msg("registry_users_and_days: %s", err.msg);
	assert_int_equal(t.n, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(t.campaign[i], "camp") != 0)
			fail_msg("user %zu read from a later commit inside the snapshot", i + 1);
	user_table_release(&t);
	registry_read_end(reg);
	registry_close(writer);
}

/*
 * A block holding a day of uid 900,000, past the 600,000 users (after
 * users_read_in_snapshot's rebuild, which left no user-days): on one
 * thread, on two (two readers on connections of their own) and inside a
 * snapshot (the users read on its connection), the read fails naming the
 * registry, the table and the uid, and *users is released (it dropped the
 * day silently before, and features built a frame without it).
 */
static void day_of_no_user_fails(struct registry *reg, const char *path)
{
	const struct user_day_row stray[] = { { 5, 0, 1.0, 1, 0 }, { 900000, 1, 9.0, 1, 0 } };
	char *want = xasprintf("registry '%s': table user_day_blocks holds a user-day of uid 900000 "
			       "(day 1) but table users has 600000 users, uids 1 to 600000; the "
			       "registry is inconsistent: ingest again", path);
	struct ltv_err err = { 0 };

	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_user_days_add(reg, stray, 2, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	for (int run = 0; run < 3; run++) {
		struct user_table t;
		struct seen_days s = { .users = &t };

		if (run == 2)
			assert_int_equal(registry_read_begin(reg, &err), 0);
		err.msg[0] = '\0';
		assert_int_equal(registry_users_and_days(reg, run == 0 ? 1 : 2, &t, see_day, &s, &err),
				 LTV_EREGISTRY);
		if (strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("run %d: '%s'", run, err.msg);
		assert_int_equal(t.n, 0);
		assert_null(t.uid);
		assert_int_equal(s.n, 1); /* user 5's day came first */
		assert_int_equal(s.rows[0].uid, 5);
		if (run == 2)
			registry_read_end(reg);
	}
	free(want);
}

/*
 * registry_users_and_days on one thread and on two gives the users of
 * registry_users_load and the user-days of registry_user_days_each, and
 * passes a user-day on only once its user's columns can be read (users past
 * USERS_AHEAD + USERS_PUBLISH, so that the two threads meet midway): users
 * 3 and 79,000 have days, and uid 79,000's come in two blocks (an
 * append-mode ingest), summed. 600,000 users: each of the table's columns
 * is past PREFAULT_MIN, so with two threads they are faulted in on a thread
 * of their own while the users' thread fills them (users_populate_start),
 * and every row must still be the one written. Then a day of no user
 * (day_of_no_user_fails).
 */
static void test_users_and_days_at_once(void **state)
{
	enum { N = 600000 };
	char *dir = NULL, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct user_row *rows = xcalloc(N, sizeof(*rows));
	char (*ids)[16] = xcalloc(N, sizeof(*ids));
	const struct user_day_row first[] = { { 3, 0, 1.5, 2, 1 }, { 79000, 4, 2.0, 1, 1 } };
	const struct user_day_row second[] = { { 79000, 4, 0.5, 3, 0 }, { 79000, 6, 1.0, 1, 0 } };
	struct ltv_err err = { 0 };
	int64_t id;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "u%d", i);
		rows[i] = (struct user_row){ i + 1, ids[i], "app", "camp", 5001 + i, 1.0, NULL };
	}
	start_run(reg, "r1");
	id = commit_artefact(reg, "r1", "ingest", "fp", "h", NULL, 0, NULL, 0, NULL);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_users_insert(reg, rows, N, id, &err), 0);
	assert_int_equal(registry_user_days_add(reg, first, 2, &err), 0);
	assert_int_equal(registry_user_days_add(reg, second, 2, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	for (int threads = 1; threads <= 2; threads++) {
		struct user_table t;
		struct seen_days s = { .users = &t };

		if (registry_users_and_days(reg, threads, &t, see_day, &s, &err) != 0)
			fail_msg("registry_users_and_days: %s", err.msg);
		assert_int_equal(t.n, N);
		assert_int_equal(t.uid[N - 1], N);
		assert_string_equal(t.user_id[N - 1], ids[N - 1]);
		for (int i = 0; i < N; i++)
			if (t.uid[i] != i + 1 || t.install_time[i] != 5001 + i || t.cost[i] != 1.0 ||
			    strcmp(t.user_id[i], ids[i]) != 0 || strcmp(t.campaign[i], "camp") != 0 ||
			    t.attributes_json[i] != NULL)
				fail_msg("user %d read wrong with %d threads", i + 1, threads);
		assert_false(s.user_missing);
		assert_int_equal(s.n, 3);
		assert_int_equal(s.rows[0].uid, 3);
		assert_int_equal(s.rows[1].uid, 79000);
		assert_int_equal(s.rows[1].day, 4);
		assert_true(s.rows[1].revenue == 2.5);
		assert_int_equal(s.rows[1].events, 4);
		assert_int_equal(s.rows[2].day, 6);
		user_table_release(&t);
	}
	users_read_in_snapshot(reg, path, rows, N);
	day_of_no_user_fails(reg, path);
	registry_close(reg);
	free(rows);
	free(ids);
	free(path);
	test_scratch_free(dir);
}

/* Runs sql on the registry file at path, as a hand editing it with sqlite3 would. */
static void hand_edit(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/*
 * A users table whose uids are not 1..n (user 3 deleted by hand from users
 * 1..5, then user 0 added): registry_users_load and registry_users_and_days
 * on one thread and two fail naming the registry, the uid found and the one
 * expected, and release the table. Read on, user 4 took user 3's row and
 * features asserted in user_age (session 18's note).
 */
static void test_users_gap_fails(void **state)
{
	char *dir = NULL, *path = fresh_path(&dir);
	struct registry *reg = open_or_fail(path);
	struct user_row rows[5];
	const char *ids[] = { "u1", "u2", "u3", "u4", "u5" };
	struct ltv_err err = { 0 };
	char *want[2];
	int64_t id;

	(void)state;
	for (int i = 0; i < 5; i++)
		rows[i] = (struct user_row){ i + 1, ids[i], "app", "camp", 1000 + i, 1.0, NULL };
	start_run(reg, "r1");
	id = commit_artefact(reg, "r1", "ingest", "fp", "h", NULL, 0, NULL, 0, NULL);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_users_insert(reg, rows, 5, id, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	registry_close(reg);
	hand_edit(path, "DELETE FROM users WHERE uid = 3");
	reg = open_or_fail(path);
	want[0] = xasprintf("registry '%s': table users holds uid 4 where uid 3 was expected", path);
	want[1] = xasprintf("registry '%s': table users holds uid 0 where uid 1 was expected", path);
	for (int gap = 0; gap < 2; gap++) {
		struct user_table t;
		struct seen_days s = { .users = &t };

		if (gap == 1) {
			registry_close(reg);
			hand_edit(path, "INSERT INTO users SELECT 0, 'u0', app_id, campaign, install_time,"
				  " cost, attributes, artefact_id FROM users WHERE uid = 1");
			reg = open_or_fail(path);
		}
		err.msg[0] = '\0';
		assert_int_equal(registry_users_load(reg, &t, &err), LTV_EREGISTRY);
		if (strncmp(err.msg, want[gap], strlen(want[gap])) != 0)
			fail_msg("load, gap %d: '%s'", gap, err.msg);
		assert_int_equal(t.n, 0);
		assert_null(t.uid);
		for (int threads = 1; threads <= 2; threads++) {
			err.msg[0] = '\0';
			assert_int_equal(registry_users_and_days(reg, threads, &t, see_day, &s, &err),
					 LTV_EREGISTRY);
			if (strncmp(err.msg, want[gap], strlen(want[gap])) != 0)
				fail_msg("%d threads, gap %d: '%s'", threads, gap, err.msg);
			assert_int_equal(t.n, 0);
			assert_null(t.uid);
		}
	}
	free(want[0]);
	free(want[1]);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_wal_registry),
		cmocka_unit_test(test_users_load_packs_strings),
		cmocka_unit_test(test_users_and_days_at_once),
		cmocka_unit_test(test_users_gap_fails),
		cmocka_unit_test(test_open_readonly_missing),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_versions_lineage_current),
		cmocka_unit_test(test_unfinished_not_reused),
		cmocka_unit_test(test_blobs_exact),
		cmocka_unit_test(test_blob_get_parts),
		cmocka_unit_test(test_blob_peek_and_vec),
		cmocka_unit_test(test_rollback_leaves_no_trace),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_default_as_of),
		cmocka_unit_test(test_run_lock_between_processes),
		cmocka_unit_test(test_sigkill_mid_transaction),
		cmocka_unit_test(test_deferred_checkpoint_survives_sigkill),
		cmocka_unit_test(test_wal_left_at_close),
		cmocka_unit_test(test_big_wal_freed_after_close),
		cmocka_unit_test(test_alias_noop_not_recorded),
		cmocka_unit_test(test_read_transaction_is_one_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
