/*
 * `ltvpipe merge SHARD_REGISTRY...` (contract in include/ltv/shard_merge.h):
 * joins the shard registries that `run --to features --shard i/N` built into
 * the main registry, in one transaction. Users are numbered in the order an
 * unsharded ingest numbers them (their place in the input files, which each
 * shard keeps in the blob shard_user_pos), so users, user_days and the
 * features frame come out exactly as one unsharded run makes them; what
 * needs every user (the split, the app and campaign encodings) is then
 * computed on the whole by features_complete, the features stage's own code.
 * The merged ingest and features artefacts get the fingerprints an unsharded
 * run computes, so `ltvpipe run` afterwards finds them up to date and trains
 * from tiers on, exactly as today.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/csvread.h"
#include "ltv/feature_build.h"
#include "ltv/features.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/runner.h"
#include "ltv/shard_merge.h"
#include "ltv/stage.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

struct shard_in {
	const char *path;
	struct registry *reg;
	struct shard_spec spec;
	struct artefact_info ingest, features;
	int have_ingest, have_features;
	cJSON *ingest_m, *features_m;
	int64_t *pos;          /* by local uid - 1 */
	size_t n_users;
	int64_t *global_uid;   /* by local uid - 1 */
};

struct merge {
	const struct config *cfg;
	struct shard_in *sh;
	size_t n;
	int64_t count;         /* N */
	int64_t as_of;
	struct registry *reg;  /* main */
	char run_id[64];
	struct input_files files;
	char *ingest_text, *features_text;
	char ingest_fp[HASH_HEX_LEN], features_fp[HASH_HEX_LEN];
	int64_t ingest_id, ingest_version, features_id, features_version;
	char *rejects_path;
	int64_t n_rejects;
	size_t n_users;
	int64_t n_days;
	size_t feature_rows;
	char features_hash[HASH_HEX_LEN];
};

/* The config text without its "shard=i/N" line: what the shard shares with the others. */
static char *without_shard_line(const char *text)
{
	char *out = xstrdup(text), *line = strstr(out, "shard=");

	while (line && line != out && line[-1] != '\n')
		line = strstr(line + 1, "shard=");
	if (line) {
		char *end = strchr(line, '\n');

		memmove(line, end ? end + 1 : line + strlen(line), strlen(end ? end + 1 : "") + 1);
	}
	return out;
}

static double metric(const cJSON *m, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, name);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int read_shard_spec(struct shard_in *s, struct ltv_err *err)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(s->ingest_m, "shard");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(s->features_m, "shard");

	if (!cJSON_IsString(a) || !cJSON_IsString(b))
		return err_set(err, LTV_EUSAGE, "%s is not a shard registry (its ingest or features ran "
			       "without --shard); build shards with 'ltvpipe run --to features --shard "
			       "i/N --as-of T --set registry.path=%s'", s->path, s->path);
	if (strcmp(a->valuestring, b->valuestring) != 0)
		return err_set(err, LTV_EUSAGE, "%s: its ingest is shard %s but its features shard %s; "
			       "rebuild it with one --shard", s->path, a->valuestring, b->valuestring);
	if (shard_parse(a->valuestring, &s->spec, err) < 0)
		return err_set(err, LTV_EREGISTRY, "%s: shard '%s' recorded in its ingest is not i/N",
			       s->path, a->valuestring);
	return 0;
}

static int load_positions(struct shard_in *s, struct ltv_err *err)
{
	void *data = NULL;
	size_t len = 0;
	int ret = registry_blob_get(s->reg, s->ingest.id, "shard_user_pos", &data, &len, err);

	if (ret < 0)
		return ret;
	s->pos = data;
	s->n_users = len / sizeof(int64_t);
	return 0;
}

/* Opens one shard registry read-only and reads what merge checks before writing anything. */
static int open_shard(struct shard_in *s, struct ltv_err *err)
{
	int ret = registry_open_readonly(s->path, &s->reg, err);

	if (ret == LTV_ENOTFOUND)
		return err_set(err, LTV_EUSAGE, "shard registry %s does not exist", s->path);
	if (ret == 0)
		ret = registry_read_begin(s->reg, err);
	if (ret < 0)
		return ret;
	ret = registry_artefact_current(s->reg, "ingest", &s->ingest, err);
	s->have_ingest = ret == 0;
	if (ret == 0) {
		ret = registry_artefact_current(s->reg, "features", &s->features, err);
		s->have_features = ret == 0;
	}
	if (ret == LTV_ENOTFOUND)
		return err_set(err, LTV_EUSAGE, "%s has no %s yet; run 'ltvpipe run --to features "
			       "--shard i/N --as-of T --set registry.path=%s' first", s->path,
			       s->have_ingest ? "features" : "ingest", s->path);
	if (ret < 0)
		return ret;
	s->ingest_m = cJSON_Parse(s->ingest.metrics);
	s->features_m = cJSON_Parse(s->features.metrics);
	if (!s->ingest_m || !s->features_m)
		return err_set(err, LTV_EREGISTRY, "%s: unreadable artefact metrics", s->path);
	ret = read_shard_spec(s, err);
	if (ret == 0)
		ret = load_positions(s, err);
	return ret;
}

/* Every shard 0..N-1 exactly once, built from the same data, config and as_of. */
static int check_shards(struct merge *mg, struct ltv_err *err)
{
	const struct shard_in *first = &mg->sh[0];
	char *ingest0 = without_shard_line(first->ingest.config);
	char *features0 = without_shard_line(first->features.config);
	int ret = 0;

	mg->count = first->spec.count;
	mg->as_of = first->features.as_of;
	if ((int64_t)mg->n != mg->count)
		ret = err_set(err, LTV_EUSAGE, "%zu shard registries given, but they are shards of %lld; "
			      "give all %lld (0/%lld to %lld/%lld)", mg->n, (long long)mg->count,
			      (long long)mg->count, (long long)mg->count, (long long)mg->count - 1,
			      (long long)mg->count);
	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		const struct shard_in *s = &mg->sh[i];
		char *it = without_shard_line(s->ingest.config), *ft = without_shard_line(s->features.config);

		if (s->spec.count != mg->count)
			ret = err_set(err, LTV_EUSAGE, "%s is a shard of %lld, %s of %lld; shards of one "
				      "split only", s->path, (long long)s->spec.count, first->path,
				      (long long)mg->count);
		for (size_t j = 0; j < i && ret == 0; j++)
			if (mg->sh[j].spec.index == s->spec.index)
				ret = err_set(err, LTV_EUSAGE, "%s and %s are both shard %lld/%lld",
					      mg->sh[j].path, s->path, (long long)s->spec.index,
					      (long long)mg->count);
		if (ret == 0 && s->features.as_of != mg->as_of) {
			char a[32], b[32];

			ret = err_set(err, LTV_EUSAGE, "%s has features as of %s, %s as of %s; rebuild the "
				      "shards with one --as-of", s->path,
				      time_format_iso8601(s->features.as_of, a, sizeof(a)), first->path,
				      time_format_iso8601(mg->as_of, b, sizeof(b)));
		}
		if (ret == 0 && (strcmp(it, ingest0) != 0 || strcmp(s->ingest.content_hash,
								     first->ingest.content_hash) != 0))
			ret = err_set(err, LTV_EUSAGE, "%s and %s ingested other files or another input "
				      "configuration; rebuild the shards from the same files", s->path,
				      first->path);
		if (ret == 0 && strcmp(ft, features0) != 0)
			ret = err_set(err, LTV_EUSAGE, "%s and %s were built with another features "
				      "configuration; rebuild the shards with one", s->path, first->path);
		free(it);
		free(ft);
	}
	free(ingest0);
	free(features0);
	return ret;
}

/*
 * The fingerprints an unsharded run computes with this configuration; the
 * shards must have been built with the same texts, or the merged artefacts
 * would claim a configuration they were not made with.
 */
static int plan_fingerprints(struct merge *mg, struct ltv_err *err)
{
	const struct stage *ingest = &stage_table[stage_find("ingest")];
	const struct stage *features = &stage_table[stage_find("features")];
	struct artefact_info merged_ingest = { 0 };
	const struct artefact_info *inputs[1] = { &merged_ingest };
	char *shard_ingest = without_shard_line(mg->sh[0].ingest.config);
	char *shard_features = without_shard_line(mg->sh[0].features.config);
	int ret = input_files_resolve(mg->cfg, &mg->files, err);

	if (ret == 0) {
		mg->ingest_text = runner_stage_config_text(ingest, mg->cfg, INT64_MIN, &mg->files, NULL);
		mg->features_text = runner_stage_config_text(features, mg->cfg, mg->as_of, NULL, NULL);
		if (strcmp(mg->ingest_text, shard_ingest) != 0)
			ret = err_set(err, LTV_EUSAGE, "the shards ingested other input files or another "
				      "input, columns or ingest configuration than this one (%s); merge "
				      "with the configuration the shards ran with", mg->cfg->source_path);
		else if (strcmp(mg->features_text, shard_features) != 0)
			ret = err_set(err, LTV_EUSAGE, "the shards' features configuration differs from "
				      "this one (%s); merge with the configuration the shards ran with",
				      mg->cfg->source_path);
	}
	if (ret == 0) {
		runner_stage_fingerprint(ingest, mg->ingest_text, NULL, 0, mg->ingest_fp);
		snprintf(merged_ingest.content_hash, sizeof(merged_ingest.content_hash), "%s",
			 mg->sh[0].ingest.content_hash);
		runner_stage_fingerprint(features, mg->features_text, inputs, 1, mg->features_fp);
	}
	free(shard_ingest);
	free(shard_features);
	return ret;
}

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
static int number_users(struct merge *mg, size_t *out_total, struct ltv_err *err)
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

static int copy_users(struct merge *mg, struct ltv_err *err)
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
	struct merge *mg;
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

static int copy_user_days(struct merge *mg, int64_t *out_total, struct ltv_err *err)
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
static int copy_file_records(struct merge *mg, struct ltv_err *err)
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

static int max_event_time(struct merge *mg, struct ltv_err *err)
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
static int merge_rejects(struct merge *mg, struct ltv_err *err)
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

/* ---- features ---- */

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted union of the shards' dictionaries, as feature_build_base makes it from every user. */
static char **union_dict(char ***dicts, const size_t *ns, size_t n_shards, size_t *out_n)
{
	struct strmap seen;
	char **all = NULL;
	size_t n = 0, cap = 0;

	strmap_init(&seen);
	for (size_t i = 0; i < n_shards; i++)
		for (size_t k = 0; k < ns[i]; k++)
			if (strmap_put(&seen, dicts[i][k], 0) == 0) {
				ARRAY_GROW(all, n + 1, cap);
				all[n++] = xstrdup(dicts[i][k]);
			}
	strmap_release(&seen);
	if (n)
		qsort(all, n, sizeof(char *), compare_str);
	*out_n = n;
	return all;
}

static double code_in(char **dict, size_t n, const char *name)
{
	char *const *hit = bsearch(&name, dict, n, sizeof(char *), compare_str);

	return hit ? (double)(hit - dict) : NAN;
}

/*
 * The attributes' dictionaries (columns.attributes) joined like app and
 * campaign: each shard's attr_<name>_code re-coded into the sorted union.
 */
static int join_attr_dicts(struct merge *mg, struct frame *fr, struct encodings *enc,
			   struct ltv_err *err)
{
	const struct str_list *names = &mg->cfg->columns.attributes;
	char ***dicts = xcalloc(mg->n, sizeof(char **));
	size_t *ns = xcalloc(mg->n, sizeof(size_t));
	int ret = 0;

	enc->attrs = xcalloc(names->n + 1, sizeof(*enc->attrs));
	enc->n_attrs = names->n;
	for (size_t k = 0; k < names->n && ret == 0; k++) {
		struct attr_encoding *a = &enc->attrs[k];
		char key[ATTR_COLUMN_MAX], col[ATTR_COLUMN_MAX];

		a->name = xstrdup(names->v[k]);
		snprintf(key, sizeof(key), "attr:%s", a->name);
		attr_column_name(a->name, "code", col, sizeof(col));
		for (size_t i = 0; i < mg->n && ret == 0; i++)
			ret = frame_load_dict(mg->sh[i].reg, mg->sh[i].features.id, key, &dicts[i], &ns[i], err);
		if (ret == 0)
			a->values = union_dict(dicts, ns, mg->n, &a->n_values);
		for (size_t i = 0; i < mg->n && ret == 0; i++) {
			double *code = frame_column(&fr[i], col);

			if (!code) {
				ret = err_set(err, LTV_EUSAGE, "%s: its features have no attribute '%s'; "
					      "rebuild the shards with this columns.attributes",
					      mg->sh[i].path, a->name);
				break;
			}
			for (size_t r = 0; r < fr[i].n_rows; r++)
				code[r] = code_in(a->values, a->n_values, dicts[i][(size_t)code[r]]);
		}
		for (size_t i = 0; i < mg->n; i++) {
			frame_free_dict(dicts[i], ns[i]);
			dicts[i] = NULL;
			ns[i] = 0;
		}
	}
	free(dicts);
	free(ns);
	return ret;
}

struct row_ref {
	int64_t uid;
	uint32_t shard;
	size_t row;
};

static int compare_row_ref(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

/*
 * The shards' base frames joined into the frame an unsharded features stage
 * builds: users in global uid order (each user's rows in their own order),
 * uids and app / campaign codes renumbered into the whole's dictionaries.
 */
static int join_frames(struct merge *mg, struct frame *out, struct encodings *enc,
		       struct feature_base_stats *st, struct ltv_err *err)
{
	struct frame *fr = xcalloc(mg->n, sizeof(*fr));
	char ***apps = xcalloc(mg->n, sizeof(char **)), ***camps = xcalloc(mg->n, sizeof(char **));
	size_t *n_apps = xcalloc(mg->n, sizeof(size_t)), *n_camps = xcalloc(mg->n, sizeof(size_t));
	struct row_ref *refs = NULL;
	size_t total = 0, k = 0;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < mg->n && ret == 0; i++) {
		const struct shard_in *s = &mg->sh[i];

		ret = frame_load(s->reg, s->features.id, NULL, &fr[i], err);
		if (ret == 0)
			ret = frame_load_dict(s->reg, s->features.id, "app", &apps[i], &n_apps[i], err);
		if (ret == 0)
			ret = frame_load_dict(s->reg, s->features.id, "campaign", &camps[i], &n_camps[i], err);
		if (ret == 0 && (fr[i].n_cols != fr[0].n_cols))
			ret = err_set(err, LTV_EUSAGE, "%s: its features have other columns than %s's; "
				      "rebuild the shards with one ltvpipe version", s->path, mg->sh[0].path);
		for (size_t j = 0; ret == 0 && j < fr[i].n_cols; j++)
			if (strcmp(fr[i].names[j], fr[0].names[j]) != 0)
				ret = err_set(err, LTV_EUSAGE, "%s: its features have other columns than "
					      "%s's; rebuild the shards with one ltvpipe version", s->path,
					      mg->sh[0].path);
		total += fr[i].n_rows;
		st->users += (int64_t)metric(s->features_m, "users");
		st->user_days_read += (int64_t)metric(s->features_m, "user_days_read");
		st->user_days_after_as_of += (int64_t)metric(s->features_m, "user_days_after_as_of_ignored");
		st->users_after_as_of += (int64_t)metric(s->features_m, "users_installed_after_as_of_ignored");
	}
	if (ret < 0)
		goto out;
	enc->apps = union_dict(apps, n_apps, mg->n, &enc->n_apps);
	enc->campaigns = union_dict(camps, n_camps, mg->n, &enc->n_campaigns);
	ret = join_attr_dicts(mg, fr, enc, err);
	if (ret < 0)
		goto out;
	refs = xmalloc((total ? total : 1) * sizeof(*refs));
	for (size_t i = 0; i < mg->n; i++) {
		double *uid = frame_column(&fr[i], "uid");
		double *app = frame_column(&fr[i], "app_code"), *camp = frame_column(&fr[i], "campaign_code");

		for (size_t r = 0; r < fr[i].n_rows; r++) {
			int64_t local = (int64_t)uid[r];

			if (local < 1 || (size_t)local > mg->sh[i].n_users) {
				ret = err_set(err, LTV_EREGISTRY, "%s: a features row of unknown uid %lld",
					      mg->sh[i].path, (long long)local);
				goto out;
			}
			uid[r] = (double)mg->sh[i].global_uid[local - 1];
			app[r] = code_in(enc->apps, enc->n_apps, apps[i][(size_t)app[r]]);
			camp[r] = code_in(enc->campaigns, enc->n_campaigns, camps[i][(size_t)camp[r]]);
			refs[k++] = (struct row_ref){ (int64_t)uid[r], (uint32_t)i, r };
		}
	}
	qsort(refs, total, sizeof(*refs), compare_row_ref);
	frame_init(out, total);
	for (size_t j = 0; j < fr[0].n_cols; j++) {
		double *col = frame_add_column(out, fr[0].names[j]);

		for (size_t r = 0; r < total; r++)
			col[r] = fr[refs[r].shard].cols[j][refs[r].row];
	}
out:
	for (size_t i = 0; i < mg->n; i++) {
		frame_release(&fr[i]);
		frame_free_dict(apps[i], n_apps[i]);
		frame_free_dict(camps[i], n_camps[i]);
	}
	free(fr);
	free(apps);
	free(camps);
	free(n_apps);
	free(n_camps);
	free(refs);
	return ret;
}

/* ---- the merged artefacts ---- */

/* Lineage outside this registry: which shard registry and artefact each part came from. */
static void add_shard_lineage(cJSON *m, const struct merge *mg, int features)
{
	cJSON *a = cJSON_AddArrayToObject(m, "shards");

	for (size_t i = 0; i < mg->n; i++) {
		const struct shard_in *s = &mg->sh[i];
		const struct artefact_info *art = features ? &s->features : &s->ingest;
		cJSON *o = cJSON_CreateObject();
		char spec[32];

		cJSON_AddStringToObject(o, "shard", shard_format(&s->spec, spec, sizeof(spec)));
		cJSON_AddStringToObject(o, "registry", s->path);
		cJSON_AddNumberToObject(o, "version", (double)art->version);
		cJSON_AddStringToObject(o, "run_id", art->run_id);
		cJSON_AddStringToObject(o, "content_hash", art->content_hash);
		cJSON_AddItemToArray(a, o);
	}
}

static char *timings_json(double seconds)
{
	cJSON *t = cJSON_CreateObject();
	char *text;

	cJSON_AddNumberToObject(t, "seconds", seconds);
	cJSON_AddNumberToObject(t, "peak_rss_mb", (double)peak_rss_bytes() / 1048576.0);
	text = cJSON_PrintUnformatted(t);
	cJSON_Delete(t);
	return text;
}

static int write_ingest(struct merge *mg, double started, struct ltv_err *err)
{
	static const char *const sums[] = { "users_loaded", "users_rejected", "events_loaded",
					    "events_rejected", "users_total", "user_days_added" };
	struct artefact_new a = { .name = "ingest", .run_id = mg->run_id, .fingerprint = mg->ingest_fp,
				  .code_version = stage_table[stage_find("ingest")].code_version,
				  .config = mg->ingest_text, .as_of = INT64_MIN };
	cJSON *m = cJSON_CreateObject();
	char *metrics, *timings;
	int ret = registry_artefact_create(mg->reg, &a, &mg->ingest_id, &mg->ingest_version, err);

	if (ret == 0)
		ret = registry_data_clear(mg->reg, err);
	if (ret == 0)
		ret = number_users(mg, &mg->n_users, err);
	if (ret == 0)
		ret = copy_users(mg, err);
	if (ret == 0)
		ret = copy_user_days(mg, &mg->n_days, err);
	if (ret == 0)
		ret = copy_file_records(mg, err);
	if (ret == 0)
		ret = max_event_time(mg, err);
	if (ret == 0)
		ret = registry_meta_set(mg->reg, "user_data_from", "merge", err);
	if (ret == 0)
		ret = merge_rejects(mg, err);
	if (ret < 0) {
		cJSON_Delete(m);
		return ret;
	}
	cJSON_AddNumberToObject(m, "files_loaded", metric(mg->sh[0].ingest_m, "files_loaded"));
	cJSON_AddNumberToObject(m, "files_already_ingested",
				metric(mg->sh[0].ingest_m, "files_already_ingested"));
	for (size_t k = 0; k < sizeof(sums) / sizeof(sums[0]); k++) {
		double total = 0;

		for (size_t i = 0; i < mg->n; i++)
			total += metric(mg->sh[i].ingest_m, sums[k]);
		cJSON_AddNumberToObject(m, sums[k], total);
	}
	if (mg->rejects_path)
		cJSON_AddStringToObject(m, "rejects_file", mg->rejects_path);
	cJSON_AddNumberToObject(m, "users_merged", (double)mg->n_users);
	cJSON_AddNumberToObject(m, "user_days_merged", (double)mg->n_days);
	add_shard_lineage(m, mg, 0);
	metrics = cJSON_PrintUnformatted(m);
	timings = timings_json(now_seconds() - started);
	ret = registry_artefact_finish(mg->reg, mg->ingest_id, mg->sh[0].ingest.content_hash, metrics,
				       timings, err);
	if (ret == 0)
		ret = registry_set_current(mg->reg, "ingest", mg->ingest_id, err);
	cJSON_Delete(m);
	cJSON_free(metrics);
	cJSON_free(timings);
	return ret;
}

static int write_features(struct merge *mg, double started, struct ltv_err *err)
{
	int64_t inputs[1] = { mg->ingest_id };
	struct artefact_new a = { .name = "features", .run_id = mg->run_id,
				  .fingerprint = mg->features_fp,
				  .code_version = stage_table[stage_find("features")].code_version,
				  .config = mg->features_text, .as_of = mg->as_of, .inputs = inputs,
				  .n_inputs = 1 };
	struct encodings enc = { 0 };
	struct feature_base_stats st;
	struct frame f = { 0 };
	struct hasher content;
	cJSON *m = cJSON_CreateObject();
	char hex[HASH_HEX_LEN], *metrics = NULL, *timings = NULL;
	int ret = join_frames(mg, &f, &enc, &st, err);

	hasher_init(&content);
	if (ret == 0) {
		features_complete(mg->cfg, mg->as_of, &f, &enc, &st, m, &content);
		frame_compact(&f); /* stored packed (as stage_features_run does) */
		add_shard_lineage(m, mg, 1);
		hasher_hex(&content, hex);
		ret = registry_artefact_create(mg->reg, &a, &mg->features_id, &mg->features_version, err);
	}
	if (ret == 0)
		ret = frame_save(&f, mg->reg, mg->features_id, err);
	if (ret == 0)
		ret = encodings_save(&enc, mg->reg, mg->features_id, err);
	if (ret == 0)
		ret = features_save_params(mg->cfg, mg->as_of, mg->reg, mg->features_id, err);
	if (ret == 0) {
		metrics = cJSON_PrintUnformatted(m);
		timings = timings_json(now_seconds() - started);
		ret = registry_artefact_finish(mg->reg, mg->features_id, hex, metrics, timings, err);
	}
	if (ret == 0)
		ret = registry_set_current(mg->reg, "features", mg->features_id, err);
	if (ret == 0) {
		mg->feature_rows = f.n_rows;
		snprintf(mg->features_hash, sizeof(mg->features_hash), "%s", hex);
	}
	hasher_release(&content);
	cJSON_Delete(m);
	cJSON_free(metrics);
	cJSON_free(timings);
	encodings_release(&enc);
	frame_release(&f);
	return ret;
}

/* 1 when the main registry already holds this very merge (same shards' content, same config). */
static int already_merged(struct merge *mg)
{
	struct artefact_info cur;
	struct ltv_err ignored;
	cJSON *m, *shards, *o;
	int same = 0;

	if (registry_artefact_current(mg->reg, "features", &cur, &ignored) < 0)
		return 0;
	m = cJSON_Parse(cur.metrics);
	shards = m ? cJSON_GetObjectItemCaseSensitive(m, "shards") : NULL;
	if (strcmp(cur.fingerprint, mg->features_fp) == 0 && cJSON_GetArraySize(shards) == (int)mg->n) {
		same = 1;
		cJSON_ArrayForEach(o, shards) {
			const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "content_hash");
			int found = 0;

			for (size_t i = 0; i < mg->n; i++)
				found |= cJSON_IsString(h) &&
					 strcmp(h->valuestring, mg->sh[i].features.content_hash) == 0;
			same &= found;
		}
	}
	cJSON_Delete(m);
	artefact_info_release(&cur);
	return same;
}

/* Main's user data may be replaced only when a merge wrote it (or there is none). */
static int check_main_data(struct merge *mg, struct ltv_err *err)
{
	char **hashes = NULL, *from = NULL;
	size_t n = 0;
	int ret = registry_ingested_hashes(mg->reg, &hashes, &n, err);

	for (size_t i = 0; i < n; i++)
		free(hashes[i]);
	free(hashes);
	if (ret < 0 || n == 0)
		return ret;
	ret = registry_meta_get(mg->reg, "user_data_from", &from, err);
	if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "%s holds data ingested without shards; merge would "
			      "replace it with the shards' users: merge into a new registry path "
			      "(--set registry.path=...), or keep ingesting this one unsharded",
			      mg->cfg->registry.path);
	free(from);
	return ret;
}

/* Test hook, as the runner's: LTVPIPE_FAULT=merge:kill dies before the commit, merge:fail fails. */
static int injected_fault(struct ltv_err *err)
{
	const char *fault = getenv("LTVPIPE_FAULT");

	if (!fault || strncmp(fault, "merge:", 6) != 0)
		return 0;
	if (strcmp(fault + 6, "kill") == 0)
		raise(SIGKILL);
	return err_set(err, LTV_EINTERNAL, "injected fault (LTVPIPE_FAULT=%s)", fault);
}

static int merge_into_main(struct merge *mg, const char *command, double started, FILE *out,
			   struct ltv_err *err)
{
	char *config_text = NULL;
	int ret = registry_open(mg->cfg->registry.path, (int)mg->cfg->registry.busy_timeout_s,
				&mg->reg, err);

	if (ret == 0)
		ret = registry_lock_run(mg->reg, (int)mg->cfg->registry.busy_timeout_s, err);
	if (ret < 0)
		return ret;
	if (already_merged(mg)) {
		fprintf(out, "merge: up to date (these %zu shards are merged already)\n", mg->n);
		return 0;
	}
	ret = check_main_data(mg, err);
	if (ret < 0)
		return ret;
	runner_make_run_id(mg->run_id, sizeof(mg->run_id));
	{
		struct ltv_err log_err;

		if (log_open_run(mg->cfg->run.log_dir, mg->run_id, &log_err) < 0)
			LOG(LOG_WARN, "%s; logging to the console only", log_err.msg);
	}
	config_text = config_dump(mg->cfg);
	ret = registry_run_start(mg->reg, mg->run_id, command, mg->as_of, config_text, err);
	free(config_text);
	if (ret < 0)
		return ret;
	log_set_stage("merge");
	LOG(LOG_INFO, "merging %zu shards into %s", mg->n, mg->cfg->registry.path);
	ret = registry_begin(mg->reg, err);
	if (ret == 0)
		ret = write_ingest(mg, started, err);
	if (ret == 0)
		ret = write_features(mg, started, err);
	if (ret == 0)
		ret = injected_fault(err);
	if (ret == 0)
		ret = registry_commit(mg->reg, err);
	if (ret < 0) {
		registry_rollback(mg->reg);
		if (mg->rejects_path)
			unlink(mg->rejects_path);
		LOG(LOG_ERROR, "%s; the registry keeps its previous versions", err->msg);
	}
	{
		struct ltv_err finish_err;

		registry_run_finish(mg->reg, mg->run_id, ret == 0 ? "ok" : "failed", &finish_err);
	}
	log_set_stage(NULL);
	log_close_run();
	if (ret == 0) {
		fprintf(out, "ingest: merged %zu users and %lld user-days of %zu shards (v%lld)%s%s\n",
			mg->n_users, (long long)mg->n_days, mg->n, (long long)mg->ingest_version,
			mg->rejects_path ? "; rejects in " : "", mg->rejects_path ? mg->rejects_path : "");
		fprintf(out, "features: merged %zu rows (v%lld, content hash %s)\n", mg->feature_rows,
			(long long)mg->features_version, mg->features_hash);
		fprintf(out, "merge %s finished in %.2f s (registry %s); train with 'ltvpipe run'\n",
			mg->run_id, now_seconds() - started, mg->cfg->registry.path);
	}
	return ret;
}

int shard_merge_run(const struct config *cfg, int argc, char **argv, const char *command,
		    FILE *out, struct ltv_err *err)
{
	struct merge mg = { .cfg = cfg, .n = (size_t)argc };
	double started = now_seconds();
	int ret = 0;

	if (argc < 1)
		return err_set(err, LTV_EUSAGE, "give the shard registries, e.g. 'ltvpipe merge "
			       "shards/shard-*-of-4.sqlite'");
	mg.sh = xcalloc(mg.n, sizeof(*mg.sh));
	for (size_t i = 0; i < mg.n && ret == 0; i++) {
		mg.sh[i].path = argv[i];
		if (strcmp(argv[i], cfg->registry.path) == 0)
			ret = err_set(err, LTV_EUSAGE, "%s is the main registry (registry.path), "
				      "not a shard", argv[i]);
		else
			ret = open_shard(&mg.sh[i], err);
	}
	if (ret == 0)
		ret = check_shards(&mg, err);
	if (ret == 0)
		ret = plan_fingerprints(&mg, err);
	if (ret == 0)
		ret = merge_into_main(&mg, command, started, out, err);
	for (size_t i = 0; i < mg.n; i++) {
		struct shard_in *s = &mg.sh[i];

		if (s->have_ingest)
			artefact_info_release(&s->ingest);
		if (s->have_features)
			artefact_info_release(&s->features);
		cJSON_Delete(s->ingest_m);
		cJSON_Delete(s->features_m);
		free(s->pos);
		free(s->global_uid);
		registry_close(s->reg);
	}
	free(mg.sh);
	free(mg.ingest_text);
	free(mg.features_text);
	free(mg.rejects_path);
	input_files_release(&mg.files);
	registry_close(mg.reg);
	return ret;
}
