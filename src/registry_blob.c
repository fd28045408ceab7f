/*
 * The registry's artefact blobs (see include/ltv/registry.h): storing one
 * with its checksum, reading it whole, in parts or by its head, and verifying
 * that an artefact's stored blobs are all there and unchanged, so a run that
 * skips a stage can trust its output.
 */
#include <string.h>

#include "registry_internal.h"

/*
 * An existing key's blob is updated in place (an upsert), not replaced:
 * SQLite gives an INSERT OR REPLACE inside a transaction a statement
 * journal (the replace may delete a row, then fail), and with 64 KB pages
 * each one past 64 KB goes to a file in /var/tmp. A cold run at 1,000,000
 * users wrote 71 MB there (the features' blobs 60 MB: ~25 pages a blob),
 * 2 MB with the upsert (strace), every content hash the same. A blob of
 * an artefact that does not exist still fails before anything is written
 * (SQLite checks a one-row insert's foreign key first).
 */
int registry_blob_put(struct registry *reg, int64_t artefact_id, const char *key,
		      const void *data, size_t len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	char checksum[HASH_HEX_LEN];
	int ret = prepare(reg, "INSERT INTO artefact_blobs (artefact_id, key, data, checksum)"
			       " VALUES (?, ?, ?, ?) ON CONFLICT (artefact_id, key) DO UPDATE SET"
			       " data = excluded.data, checksum = excluded.checksum", &st, err);

	if (ret < 0)
		return ret;
	hash_buffer_hex(data ? data : "", len, checksum);
	sqlite3_bind_int64(st, 1, artefact_id);
	bind_text(st, 2, key);
	sqlite3_bind_blob64(st, 3, data ? data : "", (sqlite3_uint64)len, SQLITE_STATIC);
	bind_text(st, 4, checksum);
	ret = step_done(reg, st, "storing a blob", err);
	sqlite3_finalize(st);
	return ret;
}

/*
 * The message for a damaged artefact: which one, what is wrong (detail), and
 * the two ways out. Returns LTV_EREGISTRY.
 */
static int damaged(struct registry *reg, int64_t artefact_id, const char *detail,
		   struct ltv_err *err)
{
	struct artefact_info a;
	struct ltv_err ignored;

	if (registry_artefact_get(reg, artefact_id, &a, &ignored) < 0)
		return err_set(err, LTV_EREGISTRY, "registry '%s': artefact %lld is damaged: %s; "
			       "restore the registry from a backup", reg->path,
			       (long long)artefact_id, detail);
	err_set(err, LTV_EREGISTRY, "registry '%s': artefact '%s' v%lld is damaged: %s; rebuild it "
		"with 'ltvpipe run --force --from %s', or restore the registry from a backup",
		reg->path, a.name, (long long)a.version, detail, a.name);
	artefact_info_release(&a);
	return LTV_EREGISTRY;
}

/* 0 when the blob in the current row of st (columns: key, data, checksum) matches its checksum. */
/* 0 when blob `key`'s bytes hash to its stored checksum, else marks the artefact damaged. */
static int checksum_matches(struct registry *reg, int64_t artefact_id, const char *key,
			    const char *stored, const char *actual, struct ltv_err *err)
{
	char detail[256];

	if (strcmp(actual, stored) == 0)
		return 0;
	snprintf(detail, sizeof(detail), "blob '%s' does not match its checksum", key);
	return damaged(reg, artefact_id, detail, err);
}

static int check_blob_row(struct registry *reg, sqlite3_stmt *st, int64_t artefact_id,
			  struct ltv_err *err)
{
	const char *stored = (const char *)sqlite3_column_text(st, 2);
	char actual[HASH_HEX_LEN];
	const void *data;
	size_t len;

	if (!stored)
		return 0; /* written before blobs carried checksums */
	data = sqlite3_column_blob(st, 1);
	len = (size_t)sqlite3_column_bytes(st, 1);
	hash_buffer_hex(data ? data : "", len, actual);
	return checksum_matches(reg, artefact_id, (const char *)sqlite3_column_text(st, 0), stored,
				actual, err);
}

int registry_artefact_verify(struct registry *reg, int64_t artefact_id, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t expected = -1, n = 0;
	int ret = prepare(reg, "SELECT n_blobs FROM artefacts WHERE id = ?", &st, err);
	int rc;

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		expected = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		ret = err_set(err, LTV_ENOTFOUND, "no artefact with id %lld in registry '%s'",
			      (long long)artefact_id, reg->path);
	else if (rc != SQLITE_ROW)
		ret = SQL_FAIL(reg, err, "verifying an artefact");
	sqlite3_finalize(st);
	st = NULL;
	if (ret < 0)
		return ret;
	/*
	 * A file as the last run left it holds the blobs that run checked or
	 * wrote: count them (a few index pages) rather than hash every byte, which
	 * was most of a no-op run. Any other change to the file rechecks them all.
	 */
	ret = prepare(reg, reg->unchanged && reg->lock_fd >= 0
			   ? "SELECT key, NULL, NULL FROM artefact_blobs WHERE artefact_id = ?"
			   : "SELECT key, data, checksum FROM artefact_blobs WHERE artefact_id = ?",
		      &st, err);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, artefact_id);
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		ret = check_blob_row(reg, st, artefact_id, err);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = SQL_FAIL(reg, err, "verifying an artefact's blobs");
	sqlite3_finalize(st);
	if (ret == 0 && expected >= 0 && n != expected) {
		char detail[128];

		snprintf(detail, sizeof(detail), "it has %lld of its %lld blobs", (long long)n,
			 (long long)expected);
		ret = damaged(reg, artefact_id, detail, err);
	}
	return ret;
}

/*
 * Steps *out_st (caller finalizes, also on failure) to the row of blob `key`
 * of the artefact, selecting `columns`: 0, LTV_ENOTFOUND or SQLite's error.
 */
static int blob_row(struct registry *reg, int64_t artefact_id, const char *key,
		    const char *columns, sqlite3_stmt **out_st, struct ltv_err *err)
{
	char *sql = xasprintf("SELECT %s FROM artefact_blobs WHERE artefact_id = ? AND key = ?",
			      columns);
	int ret = prepare(reg, sql, out_st, err);
	int rc;

	free(sql);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(*out_st, 1, artefact_id);
	bind_text(*out_st, 2, key);
	rc = sqlite3_step(*out_st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return err_set(err, LTV_ENOTFOUND, "artefact %lld has no blob '%s'",
			       (long long)artefact_id, key);
	return SQL_FAIL(reg, err, "reading a blob");
}

int registry_blob_get(struct registry *reg, int64_t artefact_id, const char *key,
		      void **out_data, size_t *out_len, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int ret = blob_row(reg, artefact_id, key, "key, data, checksum", &st, err);

	if (ret == 0)
		ret = check_blob_row(reg, st, artefact_id, err);
	if (ret == 0) {
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		void *data = xmalloc(len);

		/* Copy: SQLite's pointer is only valid until the next step/finalize. */
		if (len)
			memcpy(data, sqlite3_column_blob(st, 1), len);
		*out_data = data;
		*out_len = len;
	}
	sqlite3_finalize(st);
	return ret;
}

/* Reads len bytes at offset of an open blob into dst; SQLITE_OK or SQLite's error. */
static int blob_read_at(sqlite3_blob *b, void *dst, size_t len, size_t offset)
{
	return len ? sqlite3_blob_read(b, dst, (int)len, (int)offset) : SQLITE_OK;
}

/* Opens blob key of the artefact for reading; *out_stored is its checksum (NULL: none). */
static int blob_open(struct registry *reg, int64_t artefact_id, const char *key,
		     sqlite3_blob **out_b, char **out_stored, struct ltv_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t rowid = 0;
	int ret = blob_row(reg, artefact_id, key, "rowid, checksum", &st, err);

	*out_b = NULL;
	*out_stored = NULL;
	if (ret == 0) {
		rowid = sqlite3_column_int64(st, 0);
		*out_stored = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : dup_col(st, 1);
	}
	sqlite3_finalize(st);
	if (ret == 0 &&
	    sqlite3_blob_open(reg->db, "main", "artefact_blobs", "data", rowid, 0, out_b) != SQLITE_OK)
		ret = SQL_FAIL(reg, err, "reading a blob");
	return ret;
}

int registry_blob_peek(struct registry *reg, int64_t artefact_id, const char *key, void *head,
		       size_t head_len, size_t *out_len, struct ltv_err *err)
{
	sqlite3_blob *b = NULL;
	char *stored = NULL;
	int ret = blob_open(reg, artefact_id, key, &b, &stored, err);

	if (ret == 0) {
		*out_len = (size_t)sqlite3_blob_bytes(b);
		if (blob_read_at(b, head, head_len < *out_len ? head_len : *out_len, 0) != SQLITE_OK)
			ret = SQL_FAIL(reg, err, "reading a blob");
	}
	sqlite3_blob_close(b);
	free(stored);
	return ret;
}

int registry_blob_get_vec(struct registry *reg, int64_t artefact_id, const char *key,
			  const struct blob_part *parts, size_t n_parts, struct ltv_err *err)
{
	sqlite3_blob *b = NULL;
	char *stored = NULL, actual[HASH_HEX_LEN];
	size_t len, want = 0, at = 0;
	int ret = blob_open(reg, artefact_id, key, &b, &stored, err);

	if (ret < 0)
		goto out;
	len = (size_t)sqlite3_blob_bytes(b);
	for (size_t k = 0; k < n_parts; k++)
		want += parts[k].len;
	if (len != want) {
		ret = err_set(err, LTV_EINVAL, "blob '%s' of artefact %lld has %zu bytes, not the %zu "
			      "its index gives", key, (long long)artefact_id, len, want);
		goto out;
	}
	for (size_t k = 0; k < n_parts && ret == 0; k++) {
		if (blob_read_at(b, parts[k].data, parts[k].len, at) != SQLITE_OK)
			ret = SQL_FAIL(reg, err, "reading a blob");
		at += parts[k].len;
	}
	if (ret == 0 && stored) { /* NULL: written before blobs carried checksums */
		struct hasher h;

		hasher_init(&h);
		for (size_t k = 0; k < n_parts; k++)
			hasher_update(&h, parts[k].data, parts[k].len);
		hasher_hex(&h, actual);
		hasher_release(&h);
		ret = checksum_matches(reg, artefact_id, key, stored, actual, err);
	}
out:
	sqlite3_blob_close(b);
	free(stored);
	return ret;
}

int registry_blob_get_parts(struct registry *reg, int64_t artefact_id, const char *key,
			    void *head, size_t head_len, void *body, size_t body_len,
			    struct ltv_err *err)
{
	const struct blob_part parts[2] = { { head, head_len }, { body, body_len } };

	return registry_blob_get_vec(reg, artefact_id, key, parts, 2, err);
}
