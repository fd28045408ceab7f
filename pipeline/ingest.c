/*
 * Stage ingest: validates users.csv and events.csv (columns mapped by the
 * config) and loads them into the registry as users and per-user-day
 * aggregates (DESIGN.md "Data in"). Files whose content hash was ingested
 * before are skipped, so re-ingest is a no-op and next month's file adds to
 * what is there. Every bad row goes to the rejects file with file, line,
 * field and reason; too many rejects fail the stage, which rolls back.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/csvread.h"
#include "ltv/input_files.h"
#include "ltv/log.h"
#include "ltv/stage.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"
#include "ltv/u64map.h"

/* Day indices are packed below the uid in one 64-bit aggregation key. */
#define DAY_BITS 20
#define MAX_DAY ((1 << DAY_BITS) - 1)

struct day_agg {
	double revenue;
	int64_t events;
	int64_t purchases;
};

struct ingest {
	struct stage_ctx *ctx;
	const struct config *cfg;
	struct strmap user_ids;     /* user_id → uid */
	int64_t *install_time;      /* by uid - 1 */
	size_t n_users, cap_users;
	struct u64map day_keys;     /* (uid << DAY_BITS | day) → index into days */
	struct day_agg *days;
	size_t cap_days;
	FILE *rejects;
	char *rejects_path;
	char first_reject[512];
	int64_t max_event_time;
	int64_t users_loaded, users_rejected, events_loaded, events_rejected;
	int64_t files_loaded, files_skipped;
};

/* Column positions of one file, resolved from its header. -1 = absent (optional). */
struct columns {
	int user_id, app_id, campaign, install_time, cost;
	int event_time, revenue, event;
	int *attributes;
	size_t n_header;
};

static int open_rejects(struct ingest *in, struct ltv_err *err)
{
	const char *dir = in->cfg->ingest.rejects_dir;

	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return err_set(err, LTV_EIO, "cannot create rejects directory '%s': %s", dir,
			       strerror(errno));
	in->rejects_path = xasprintf("%s/%s.rejects.csv", dir, in->ctx->run_id);
	in->rejects = fopen(in->rejects_path, "w");
	if (!in->rejects)
		return err_set(err, LTV_EIO, "cannot write rejects file '%s': %s", in->rejects_path,
			       strerror(errno));
	fputs("file,line,field,reason\n", in->rejects);
	return 0;
}

static void reject(struct ingest *in, const char *path, size_t line, const char *field,
		   const char *fmt, ...) LTV_PRINTF(5, 6);

static void reject(struct ingest *in, const char *path, size_t line, const char *field,
		   const char *fmt, ...)
{
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	csv_write_field(in->rejects, path);
	fprintf(in->rejects, ",%zu,", line);
	csv_write_field(in->rejects, field);
	fputc(',', in->rejects);
	csv_write_field(in->rejects, reason);
	fputc('\n', in->rejects);
	if (!in->first_reject[0])
		snprintf(in->first_reject, sizeof(in->first_reject), "%s:%zu: %s: %s", path, line,
			 field, reason);
}

static int find_column(char **header, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(header[i], name) == 0)
			return (int)i;
	return -1;
}

static int require_column(char **header, size_t n, const char *name, const char *key,
			  const char *path, int *out_idx, struct ltv_err *err)
{
	*out_idx = find_column(header, n, name);
	if (*out_idx < 0)
		return err_set(err, LTV_EINVAL,
			       "%s:1: no column '%s' in the header; set %s to the column that holds it",
			       path, name, key);
	return 0;
}

static int map_user_columns(struct ingest *in, char **header, size_t n, const char *path,
			    struct columns *c, struct ltv_err *err)
{
	const struct config *cfg = in->cfg;
	int ret = 0;

	c->n_header = n;
	ret = require_column(header, n, cfg->columns.user_id, "columns.user_id", path, &c->user_id, err);
	if (ret == 0)
		ret = require_column(header, n, cfg->columns.app_id, "columns.app_id", path, &c->app_id, err);
	if (ret == 0)
		ret = require_column(header, n, cfg->columns.campaign, "columns.campaign", path,
				     &c->campaign, err);
	if (ret == 0)
		ret = require_column(header, n, cfg->columns.install_time, "columns.install_time", path,
				     &c->install_time, err);
	if (ret < 0)
		return ret;
	c->cost = find_column(header, n, cfg->columns.cost);
	if (c->cost < 0)
		LOG(LOG_WARN, "%s: no '%s' column; costs are unknown, so ROAS will be too", path,
		    cfg->columns.cost);
	c->attributes = xcalloc(cfg->columns.attributes.n + 1, sizeof(int));
	for (size_t i = 0; i < cfg->columns.attributes.n && ret == 0; i++)
		ret = require_column(header, n, cfg->columns.attributes.v[i], "columns.attributes",
				     path, &c->attributes[i], err);
	return ret;
}

static int map_event_columns(struct ingest *in, char **header, size_t n, const char *path,
			     struct columns *c, struct ltv_err *err)
{
	const struct config *cfg = in->cfg;
	int ret;

	c->n_header = n;
	ret = require_column(header, n, cfg->columns.event_user_id, "columns.event_user_id", path,
			     &c->user_id, err);
	if (ret == 0)
		ret = require_column(header, n, cfg->columns.event_time, "columns.event_time", path,
				     &c->event_time, err);
	if (ret == 0)
		ret = require_column(header, n, cfg->columns.revenue, "columns.revenue", path,
				     &c->revenue, err);
	c->event = find_column(header, n, cfg->columns.event);
	return ret;
}

static char *attributes_json(const struct ingest *in, const struct columns *c, char **fields)
{
	cJSON *obj;
	char *text;

	if (in->cfg->columns.attributes.n == 0)
		return NULL;
	obj = cJSON_CreateObject();
	for (size_t i = 0; i < in->cfg->columns.attributes.n; i++)
		cJSON_AddStringToObject(obj, in->cfg->columns.attributes.v[i], fields[c->attributes[i]]);
	text = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	return text;
}

/* Validates one users.csv row; returns 1 when loaded, 0 when rejected, <0 on failure. */
static int ingest_user_row(struct ingest *in, const char *path, size_t line, char **f, size_t n,
			   const struct columns *c, int64_t artefact_id, struct ltv_err *err)
{
	const struct config *cfg = in->cfg;
	struct user_row u = { 0 };
	char *attrs;
	int ret;

	if (n != c->n_header) {
		reject(in, path, line, "(row)", "row has %zu fields, the header has %zu", n, c->n_header);
		return 0;
	}
	u.user_id = f[c->user_id];
	u.app_id = f[c->app_id];
	u.campaign = f[c->campaign];
	if (!*u.user_id) {
		reject(in, path, line, cfg->columns.user_id, "empty user id");
		return 0;
	}
	if (!*u.app_id) {
		reject(in, path, line, cfg->columns.app_id, "empty app id");
		goto rejected;
	}
	if (time_parse_iso8601(f[c->install_time], &u.install_time) < 0) {
		reject(in, path, line, cfg->columns.install_time,
		       "'%s' is not an ISO 8601 date or date-time", f[c->install_time]);
		goto rejected;
	}
	u.cost = NAN;
	if (c->cost >= 0 && *f[c->cost]) {
		if (parse_double(f[c->cost], &u.cost) < 0 || u.cost < 0) {
			reject(in, path, line, cfg->columns.cost, "'%s' is not a number >= 0", f[c->cost]);
			goto rejected;
		}
	}
	u.uid = (int64_t)in->n_users + 1;
	if (strmap_put(&in->user_ids, u.user_id, u.uid) != 0) {
		reject(in, path, line, cfg->columns.user_id, "duplicate user id '%s'", u.user_id);
		return 0;
	}
	goto valid;
rejected:
	/* Remember the id so its events are reported as such, not as unknown. */
	strmap_put(&in->user_ids, f[c->user_id], -1);
	return 0;
valid:
	attrs = attributes_json(in, c, f);
	u.attributes_json = attrs;
	ret = registry_user_insert(in->ctx->reg, &u, artefact_id, err);
	free(attrs);
	if (ret < 0)
		return ret;
	ARRAY_GROW(in->install_time, in->n_users + 1, in->cap_users);
	in->install_time[in->n_users++] = u.install_time;
	return 1;
}

/* Validates one events.csv row and adds it to its (user, day) aggregate. */
static int ingest_event_row(struct ingest *in, const char *path, size_t line, char **f, size_t n,
			    const struct columns *c)
{
	const struct config *cfg = in->cfg;
	int64_t uid, t, day;
	double revenue = 0;
	size_t idx;
	int is_new;

	if (n != c->n_header) {
		reject(in, path, line, "(row)", "row has %zu fields, the header has %zu", n, c->n_header);
		return 0;
	}
	if (!strmap_get(&in->user_ids, f[c->user_id], &uid)) {
		reject(in, path, line, cfg->columns.event_user_id,
		       "unknown user '%s' (not in any users file)", f[c->user_id]);
		return 0;
	}
	if (uid < 0) {
		reject(in, path, line, cfg->columns.event_user_id,
		       "user '%s' was rejected in the users file", f[c->user_id]);
		return 0;
	}
	if (time_parse_iso8601(f[c->event_time], &t) < 0) {
		reject(in, path, line, cfg->columns.event_time,
		       "'%s' is not an ISO 8601 date or date-time", f[c->event_time]);
		return 0;
	}
	/* An empty revenue cell is a non-paying event, the common export convention. */
	if (*f[c->revenue] && (parse_double(f[c->revenue], &revenue) < 0 || revenue < 0)) {
		reject(in, path, line, cfg->columns.revenue, "'%s' is not a number >= 0", f[c->revenue]);
		return 0;
	}
	day = time_day_index(in->install_time[uid - 1], t);
	if (day < 0) {
		reject(in, path, line, cfg->columns.event_time,
		       "event at %s is before the user's install", f[c->event_time]);
		return 0;
	}
	if (day > MAX_DAY) {
		reject(in, path, line, cfg->columns.event_time, "event is %lld days after install",
		       (long long)day);
		return 0;
	}
	idx = u64map_index(&in->day_keys, ((uint64_t)uid << DAY_BITS) | (uint64_t)day, &is_new);
	if (is_new) {
		ARRAY_GROW(in->days, idx + 1, in->cap_days);
		in->days[idx] = (struct day_agg){ 0 };
	}
	in->days[idx].revenue += revenue;
	in->days[idx].events += 1;
	in->days[idx].purchases += revenue > 0;
	/* A date-only time ("1998-06-30") stands for that whole day, so the data
	 * reach the day's end: the default as_of then keeps the last day. */
	if (strlen(f[c->event_time]) == 10)
		t = time_day_start(t) + SECONDS_PER_DAY;
	if (t > in->max_event_time)
		in->max_event_time = t;
	return 1;
}

static int check_reject_rate(const struct ingest *in, const char *path, int64_t rows,
			     int64_t rejected, struct ltv_err *err)
{
	double rate = rows ? (double)rejected / (double)rows : 0;

	if (rate <= in->cfg->ingest.max_reject_rate)
		return 0;
	return err_set(err, LTV_EINVAL,
		       "%s: %lld of %lld rows rejected (%.2f%%), above ingest.max_reject_rate %.2f%%; "
		       "first: %s — all reasons in %s", path, (long long)rejected, (long long)rows,
		       100 * rate, 100 * in->cfg->ingest.max_reject_rate, in->first_reject,
		       in->rejects_path);
}

static int ingest_file(struct ingest *in, const struct input_file *file, int64_t artefact_id,
		       struct ltv_err *err)
{
	struct csv_reader *r = NULL;
	struct columns cols = { 0 };
	struct progress prog;
	char **fields;
	size_t n, line;
	int64_t rows = 0, loaded = 0;
	int ret, is_users = file->kind == INPUT_USERS;

	r = csv_reader_open(file->path, err);
	if (!r)
		return err->code;
	ret = csv_reader_next(r, &fields, &n, &line, err);
	if (ret == 0)
		ret = err_set(err, LTV_EINVAL, "%s: the file is empty; it needs a header row", file->path);
	if (ret < 0)
		goto out;
	ret = is_users ? map_user_columns(in, fields, n, file->path, &cols, err)
		       : map_event_columns(in, fields, n, file->path, &cols, err);
	if (ret < 0)
		goto out;
	progress_start(&prog, is_users ? "ingest users" : "ingest events", "rows", 0);
	while ((ret = csv_reader_next(r, &fields, &n, &line, err)) == 1) {
		int r1 = is_users ? ingest_user_row(in, file->path, line, fields, n, &cols, artefact_id, err)
				  : ingest_event_row(in, file->path, line, fields, n, &cols);

		if (r1 < 0) {
			ret = r1;
			break;
		}
		rows++;
		loaded += r1;
		if ((rows & 0xffff) == 0) {
			uint64_t read = csv_reader_bytes_read(r);

			prog.total = read ? (uint64_t)((double)rows * (double)csv_reader_file_size(r) / (double)read) : 0;
			progress_update(&prog, (uint64_t)rows);
		}
	}
	progress_finish(&prog);
	if (ret < 0)
		goto out;
	LOG(LOG_INFO, "%s: %lld rows, %lld loaded, %lld rejected, %.0f rows/s", file->path,
	    (long long)rows, (long long)loaded, (long long)(rows - loaded),
	    (double)rows / (now_seconds() - prog.started + 1e-9));
	if (is_users) {
		in->users_loaded += loaded;
		in->users_rejected += rows - loaded;
	} else {
		in->events_loaded += loaded;
		in->events_rejected += rows - loaded;
	}
	ret = check_reject_rate(in, file->path, rows, rows - loaded, err);
	if (ret == 0)
		ret = registry_file_record(in->ctx->reg, file->hash, is_users ? "users" : "events",
					   file->path, artefact_id, rows, rows - loaded, err);
out:
	free(cols.attributes);
	csv_reader_free(r);
	return ret;
}

/* Loads the users already in the registry, so new events can find them. */
static int load_known_users(struct ingest *in, struct ltv_err *err)
{
	struct user_table t;
	int ret = registry_users_load(in->ctx->reg, &t, err);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < t.n; i++) {
		if (t.uid[i] != (int64_t)i + 1) {
			ret = err_set(err, LTV_EREGISTRY, "users table has a gap at uid %lld; "
				      "re-ingest with ingest.mode: replace", (long long)t.uid[i]);
			break;
		}
		strmap_put(&in->user_ids, t.user_id[i], t.uid[i]);
		ARRAY_GROW(in->install_time, in->n_users + 1, in->cap_users);
		in->install_time[in->n_users++] = t.install_time[i];
	}
	user_table_release(&t);
	return ret;
}

static int compare_u64_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Writes the aggregates in key order, which is the table's primary-key order. */
static int write_user_days(struct ingest *in, struct ltv_err *err)
{
	size_t n = in->day_keys.n, k = 0;
	uint64_t *pairs = xmalloc((n ? n : 1) * 2 * sizeof(uint64_t));
	int ret = 0;

	for (size_t i = 0; i < in->day_keys.cap; i++) {
		if (in->day_keys.index1[i]) {
			pairs[2 * k] = in->day_keys.keys[i];
			pairs[2 * k + 1] = in->day_keys.index1[i] - 1;
			k++;
		}
	}
	qsort(pairs, n, 2 * sizeof(uint64_t), compare_u64_pair);
	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct day_agg *d = &in->days[pairs[2 * i + 1]];

		ret = registry_user_day_add(in->ctx->reg, (int64_t)(pairs[2 * i] >> DAY_BITS),
					    (int64_t)(pairs[2 * i] & MAX_DAY), d->revenue, d->events,
					    d->purchases, err);
	}
	free(pairs);
	return ret;
}

static int update_max_event_time(struct ingest *in, struct ltv_err *err)
{
	char *old = NULL, value[32];
	int64_t prev;
	int ret = registry_meta_get(in->ctx->reg, "max_event_time", &old, err);

	if (ret == 0 && parse_int64(old, &prev) == 0 && prev > in->max_event_time)
		in->max_event_time = prev;
	free(old);
	if (in->max_event_time == INT64_MIN)
		return 0;
	snprintf(value, sizeof(value), "%lld", (long long)in->max_event_time);
	return registry_meta_set(in->ctx->reg, "max_event_time", value, err);
}

static void add_metrics(struct ingest *in)
{
	cJSON *m = in->ctx->metrics;
	char iso[32];

	cJSON_AddNumberToObject(m, "files_loaded", (double)in->files_loaded);
	cJSON_AddNumberToObject(m, "files_already_ingested", (double)in->files_skipped);
	cJSON_AddNumberToObject(m, "users_loaded", (double)in->users_loaded);
	cJSON_AddNumberToObject(m, "users_rejected", (double)in->users_rejected);
	cJSON_AddNumberToObject(m, "events_loaded", (double)in->events_loaded);
	cJSON_AddNumberToObject(m, "events_rejected", (double)in->events_rejected);
	cJSON_AddNumberToObject(m, "users_total", (double)in->n_users);
	cJSON_AddNumberToObject(m, "user_days_added", (double)in->day_keys.n);
	if (in->max_event_time != INT64_MIN)
		cJSON_AddStringToObject(m, "max_event_time",
					time_format_iso8601(in->max_event_time, iso, sizeof(iso)));
	if (in->users_rejected + in->events_rejected > 0)
		cJSON_AddStringToObject(m, "rejects_file", in->rejects_path);
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

int stage_ingest_run(struct stage_ctx *ctx)
{
	struct ingest in = { .ctx = ctx, .cfg = ctx->cfg, .max_event_time = INT64_MIN };
	struct input_files files = { 0 };
	int64_t artefact_id;
	int replace = strcmp(ctx->cfg->ingest.mode, "replace") == 0;
	int ret;

	strmap_init(&in.user_ids);
	u64map_init(&in.day_keys);
	ret = input_files_resolve(ctx->cfg, &files, &ctx->err);
	if (ret == 0)
		ret = open_rejects(&in, &ctx->err);
	if (ret == 0)
		ret = stage_output_id(ctx, &artefact_id);
	if (ret < 0)
		goto out;
	ret = replace ? registry_data_clear(ctx->reg, &ctx->err) : load_known_users(&in, &ctx->err);
	for (size_t i = 0; i < files.n && ret == 0; i++) {
		int seen = registry_file_ingested(ctx->reg, files.v[i].hash, &ctx->err);

		if (seen < 0) {
			ret = seen;
		} else if (!seen && !replace) {
			ret = refuse_changed_file(ctx, &files.v[i]);
		}
		if (ret < 0) {
			break;
		} else if (seen) {
			LOG(LOG_INFO, "%s: already ingested (content %.12s), skipped", files.v[i].path,
			    files.v[i].hash);
			in.files_skipped++;
		} else {
			ret = ingest_file(&in, &files.v[i], artefact_id, &ctx->err);
			in.files_loaded++;
		}
	}
	if (ret == 0)
		ret = write_user_days(&in, &ctx->err);
	if (ret == 0)
		ret = update_max_event_time(&in, &ctx->err);
	if (ret == 0)
		ret = hash_data_state(ctx);
	if (ret == 0)
		add_metrics(&in);
out:
	if (in.rejects)
		fclose(in.rejects);
	/* Keep the rejects file only when it has something to say. */
	if (in.rejects_path && in.users_rejected + in.events_rejected == 0)
		unlink(in.rejects_path);
	free(in.rejects_path);
	free(in.install_time);
	free(in.days);
	strmap_release(&in.user_ids);
	u64map_release(&in.day_keys);
	input_files_release(&files);
	return ret;
}
