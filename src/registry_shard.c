/*
 * Registry reads that `ltvpipe merge` needs from shard registries: the
 * ingested file records with their counts, in the order they were loaded.
 */
#include <stdlib.h>

#include "registry_internal.h"

static void read_file_row(sqlite3_stmt *st, void *elem)
{
	struct ingested_file_row *r = elem;

	r->content_hash = dup_col(st, 0);
	r->kind = dup_col(st, 1);
	r->path = dup_col(st, 2);
	r->rows = sqlite3_column_int64(st, 3);
	r->rejects = sqlite3_column_int64(st, 4);
}

static void release_file_row(void *elem)
{
	struct ingested_file_row *r = elem;

	free(r->content_hash);
	free(r->kind);
	free(r->path);
}

static const struct row_reader file_row_reader = { sizeof(struct ingested_file_row), read_file_row,
						    release_file_row };

int registry_ingested_files_load(struct registry *reg, struct ingested_file_row **out_rows,
				 size_t *out_n, struct ltv_err *err)
{
	void *rows;
	int ret = reg_load_rows(reg, "SELECT content_hash, kind, path, rows, rejects FROM ingested_files"
				     " ORDER BY rowid", 0, &file_row_reader, "listing ingested files",
				&rows, out_n, err);

	*out_rows = rows;
	return ret;
}

void ingested_file_rows_free(struct ingested_file_row *rows, size_t n)
{
	reg_free_rows(rows, n, &file_row_reader);
}
