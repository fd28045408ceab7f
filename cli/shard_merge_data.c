/*
 * `ltvpipe merge`'s copy of the ingested data (see shard_merge_internal.h):
 * every shard's users numbered as an unsharded ingest numbers them (by their
 * place in the input files), their user-days under those uids, the file
 * records added up, and one rejects file in an unsharded ingest's order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ltv/csvread.h"
#include "ltv/shard_merge_internal.h"

/* ---- users ---- */

struct user_ref {
	int64_t pos;
	uint32_t shard;
	int64_t local_uid;
};

static int compare_user_ref(const void *a, const void *b)
{
	const struct user_ref *x = a, *y = b;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Numbers every shard's users 1..n in input order: the uids an unsharded ingest gives them. */
int shard_merge_number_users(struct shard_merge *mg, size_t *out_total, struct ltv_err *err)
{
	size_t total = 0, k = 0;
	struct user_ref *refs;

	for (size_t i = 0; i < mg->n; i++)
		total += mg->sh[i].n_users;
	refs = xmalloc((total ? total : 1) * sizeof(*refs));
	for (size_t i = 0; i < mg->n; i++) {
		mg->sh[i].global_uid = xmalloc((mg->sh[i].n_users ? mg->sh[i].n_users : 1) * sizeof(int64_t));
		for (size_t u = 0; u < mg->sh[i].n_users; u++)
			refs[k++] = (struct user_ref){ mg->sh[i].pos[u], (uint32_t)i, (int64_t)u + 1 };
	}
	qsort(refs, total, sizeof(*refs), compare_user_ref);
	for (size_t r = 0; r < total; r++) {
		if (r > 0 && refs[r].pos == refs[r - 1].pos) {
			free(refs);
			return err_set(err, LTV_EUSAGE, "%s and %s hold the same input row (line %lld); "
				       "they are not distinct shards of one split",
				       mg->sh[refs[r - 1].shard].path, mg->sh[refs[r].shard].path,
				       (long long)(refs[r].pos & ((1LL << 40) - 1)));
		}
		mg->sh[refs[r].shard].global_uid[refs[r].local_uid - 1] = (int64_t)r + 1;
	}
	free(refs);
	*out_total = total;
	return 0;
}

int shard_merge_copy_users(struct shard_merge *mg, struct ltv_err *err)
{
	int ret = 0;

	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		struct user_table t;
		struct user_row *rows;

		ret = registry_users_load(mg->sh[i].reg, &t, err);
		if (ret < 0)
			break;
		if (t.n != mg->sh[i].n_users) {
			user_table_release(&t);
			return err_set(err, LTV_EREGISTRY, "%s: %zu users but %zu input positions; rebuild "
				       "the shard", mg->sh[i].path, t.n, mg->sh[i].n_users);
		}
		rows = xmalloc((t.n ? t.n : 1) * sizeof(*rows));
		for (size_t u = 0; u < t.n; u++)
			rows[u] = (struct user_row){ mg->sh[i].global_uid[t.uid[u] - 1], t.user_id[u],
						     t.app_id[u], t.campaign[u], t.install_time[u],
						     t.cost[u], t.attributes_json[u] };
		ret = registry_users_insert(mg->reg, rows, t.n, mg->ingest_id, err);
		free(rows);
		user_table_release(&t);
	}
	return ret;
}

#define DAY_BATCH 4096

struct day_copy {
	struct shard_merge *mg;
	const struct shard_in *s;
	struct user_day_row rows[DAY_BATCH];
	size_t n;
	int64_t total;
	struct ltv_err *err;
};

static int flush_days(struct day_copy *dc)
{
	int ret = registry_user_days_add(dc->mg->reg, dc->rows, dc->n, dc->err);

	dc->total += (int64_t)dc->n;
	dc->n = 0;
	return ret;
}

static int copy_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
		    int64_t purchases)
{
	struct day_copy *dc = opaque;

	if (uid < 1 || (size_t)uid > dc->s->n_users)
		return err_set(dc->err, LTV_EREGISTRY, "%s: a user-day of unknown uid %lld",
			       dc->s->path, (long long)uid);
	dc->rows[dc->n++] = (struct user_day_row){ dc->s->global_uid[uid - 1], day, revenue, events,
						   purchases };
	return dc->n == DAY_BATCH ? flush_days(dc) : 0;
}

int shard_merge_copy_user_days(struct shard_merge *mg, int64_t *out_total, struct ltv_err *err)
{
	struct day_copy *dc = xcalloc(1, sizeof(*dc));
	int ret = 0;

	dc->mg = mg;
	dc->err = err;
	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		dc->s = &mg->sh[i];
		ret = registry_user_days_each(mg->sh[i].reg, copy_day, dc, err);
		if (ret == 0)
			ret = flush_days(dc);
	}
	*out_total = dc->total;
	free(dc);
	return ret;
}

/* The file records with the rows and rejects of every shard added up. */
int shard_merge_copy_file_records(struct shard_merge *mg, struct ltv_err *err)
{
	struct ingested_file_row *base = NULL;
	size_t n_base = 0;
	int ret = registry_ingested_files_load(mg->sh[0].reg, &base, &n_base, err);

	for (size_t i = 1; i < mg->n && ret == 0; i++) {
		struct ingested_file_row *rows = NULL;
		size_t n = 0;

		ret = registry_ingested_files_load(mg->sh[i].reg, &rows, &n, err);
		if (ret == 0 && n != n_base)
			ret = err_set(err, LTV_EUSAGE, "%s ingested %zu files, %s %zu; shards of one "
				      "split ingest the same files", mg->sh[i].path, n, mg->sh[0].path, n_base);
		for (size_t f = 0; f < n && ret == 0; f++) {
			if (strcmp(rows[f].content_hash, base[f].content_hash) != 0) {
				ret = err_set(err, LTV_EUSAGE, "%s and %s ingested other files (%s, %s)",
					      mg->sh[i].path, mg->sh[0].path, rows[f].path, base[f].path);
				break;
			}
			base[f].rows += rows[f].rows;
			base[f].rejects += rows[f].rejects;
		}
		ingested_file_rows_free(rows, n);
	}
	for (size_t f = 0; f < n_base && ret == 0; f++)
		ret = registry_file_record(mg->reg, base[f].content_hash, base[f].kind, base[f].path,
					   mg->ingest_id, base[f].rows, base[f].rejects, err);
	ingested_file_rows_free(base, n_base);
	return ret;
}

int shard_merge_max_event_time(struct shard_merge *mg, struct ltv_err *err)
{
	int64_t best = INT64_MIN;
	char value[32];

	for (size_t i = 0; i < mg->n; i++) {
		char *v = NULL;
		int64_t t;
		int ret = registry_meta_get(mg->sh[i].reg, "max_event_time", &v, err);

		if (ret == 0 && parse_int64(v, &t) == 0 && t > best)
			best = t;
		free(v);
		if (ret < 0 && ret != LTV_ENOTFOUND)
			return ret;
	}
	if (best == INT64_MIN)
		return 0;
	snprintf(value, sizeof(value), "%lld", (long long)best);
	return registry_meta_set(mg->reg, "max_event_time", value, err);
}

/* ---- rejects ---- */

struct reject_row {
	int64_t file_rank, line;
	char *fields[4];
};

static int compare_reject(const void *a, const void *b)
{
	const struct reject_row *x = a, *y = b;

	if (x->file_rank != y->file_rank)
		return x->file_rank < y->file_rank ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int64_t file_rank(const struct input_files *files, const char *path)
{
	for (size_t i = 0; i < files->n; i++)
		if (strcmp(files->v[i].path, path) == 0)
			return (int64_t)i;
	return (int64_t)files->n;
}

/*
 * One rejects file for the merge, in the order an unsharded ingest writes it
 * (file by file, line by line): each bad row was read by exactly one shard.
 */
int shard_merge_rejects(struct shard_merge *mg, struct ltv_err *err)
{
	struct reject_row *rows = NULL;
	size_t n = 0, cap = 0;
	FILE *out;
	int ret = 0;

	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(mg->sh[i].ingest_m, "rejects_file");
		struct csv_reader *r;
		char **f;
		size_t nf, line;

		if (!cJSON_IsString(p))
			continue;
		r = csv_reader_open(p->valuestring, err);
		if (!r) {
			ret = err_set(err, LTV_EIO, "%s: its rejects file %s cannot be read (shards and "
				      "merge must share one filesystem): %s", mg->sh[i].path,
				      p->valuestring, err->msg);
			break;
		}
		while ((ret = csv_reader_next(r, &f, &nf, &line, err)) == 1) {
			int64_t ln;

			if (line == 1)
				continue; /* header */
			if (nf != 4 || parse_int64(f[1], &ln) < 0) {
				ret = err_set(err, LTV_EIO, "%s:%zu: not a rejects row (file,line,field,reason)",
					      p->valuestring, line);
				break;
			}
			ARRAY_GROW(rows, n + 1, cap);
			rows[n] = (struct reject_row){ file_rank(&mg->files, f[0]), ln,
						       { xstrdup(f[0]), xstrdup(f[1]), xstrdup(f[2]),
							 xstrdup(f[3]) } };
			n++;
		}
		csv_reader_free(r);
	}
	if (ret == 0 && n > 0) {
		qsort(rows, n, sizeof(*rows), compare_reject);
		mkdir(mg->cfg->ingest.rejects_dir, 0777);
		mg->rejects_path = xasprintf("%s/%s.rejects.csv", mg->cfg->ingest.rejects_dir, mg->run_id);
		out = fopen(mg->rejects_path, "w");
		if (!out) {
			ret = err_set(err, LTV_EIO, "cannot write %s", mg->rejects_path);
		} else {
			fputs("file,line,field,reason\n", out);
			for (size_t k = 0; k < n; k++) {
				csv_write_field(out, rows[k].fields[0]);
				fprintf(out, ",%s,", rows[k].fields[1]);
				csv_write_field(out, rows[k].fields[2]);
				fputc(',', out);
				csv_write_field(out, rows[k].fields[3]);
				fputc('\n', out);
			}
			if (fclose(out) != 0)
				ret = err_set(err, LTV_EIO, "cannot write %s", mg->rejects_path);
		}
	}
	for (size_t k = 0; k < n; k++)
		for (int j = 0; j < 4; j++)
			free(rows[k].fields[j]);
	free(rows);
	mg->n_rejects = (int64_t)n;
	return ret < 0 ? ret : 0;
}
