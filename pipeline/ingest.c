/*
 * Stage ingest: validates users.csv and events.csv (columns mapped by the
 * config) and loads them into the registry as users and per-user-day
 * aggregates (DESIGN.md "Data in"). Files whose content hash was ingested
 * before are skipped, so re-ingest is a no-op and next month's file adds to
 * what is there. Every bad row goes to the rejects file with file, line,
 * field and reason; too many rejects fail the stage, which rolls back.
 *
 * Rows are rejected, never silently altered: a field with a NUL byte, bytes
 * that are not UTF-8 or more than CSV_FIELD_MAX bytes, and any revenue or
 * cost above MAX_AMOUNT (a sum of such values overflows to infinity later).
 *
 * Aggregation follows how exports are ordered: each user's events come in
 * time order whether the file is per user or by time across users, so each
 * event either adds to its user's latest (user, day) aggregate or starts a new
 * one, and a hash map is not needed. The aggregates are grouped by user at
 * the end (a counting sort by uid; nothing to do for a per-user file), rows
 * out of order within a user are sorted and merged, and they are written in
 * the table's key order in multi-row statements.
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
#include "ltv/progress.h"
#include "ltv/stage.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"
#include "ltv/tzone.h"

/* Day indices are packed below the uid in one 64-bit aggregation key. */
#define DAY_BITS 20
#define MAX_DAY ((1 << DAY_BITS) - 1)

/*
 * Largest revenue of one event and cost of one user that ingest accepts. No
 * real purchase or install costs a billion in any currency, and bounding
 * each value keeps every sum the later stages take finite (values near 1e308
 * passed before and made them infinite).
 */
#define MAX_AMOUNT 1e9

struct day_agg {
	uint64_t key; /* uid << DAY_BITS | day */
	double revenue;
	int64_t events;
	int64_t purchases;
};

struct user_state {
	int64_t install_time;
	int64_t latest; /* index in days of the user's latest aggregate, -1 for none */
};

/* Users waiting to be inserted many per statement, their strings copied. */
#define USER_FLUSH 1024

struct user_batch {
	struct user_row rows[USER_FLUSH];
	size_t str_off[USER_FLUSH][4]; /* user_id, app_id, campaign, attributes (SIZE_MAX: none) */
	size_t n;
	char *text;
	size_t text_len, text_cap;
};

struct ingest;

/*
 * Parses one time field as columns.time_format says; chosen once per run.
 * Returns 0, TIME_BAD (not such a time) or TIME_NO_ZONE_ERR (a date-time
 * without a zone and no ingest.timezone). *out_until is when the value is
 * complete: the end of the day for a date alone, else the time itself.
 */
typedef int (*time_parser)(struct ingest *in, const char *s, int64_t *out_ts, int64_t *out_until);
enum { TIME_BAD = -1, TIME_NO_ZONE_ERR = -2 };

struct ingest {
	struct stage_ctx *ctx;
	time_parser parse_time;
	struct tzone *tz;           /* ingest.timezone, NULL when unset */
	int subtract_refunds;       /* ingest.negative_revenue: subtract */
	int64_t refunds, days_floored;
	double refunded;
	const struct config *cfg;
	struct strmap user_ids;     /* user_id → uid */
	struct user_state *users;   /* by uid - 1 */
	size_t n_users, cap_users;
	struct day_agg *days;       /* in the order they were first seen */
	size_t n_days, cap_days;
	size_t n_user_days;         /* distinct (user, day) written */
	struct user_batch *batch;
	int64_t artefact_id;
	char time_date[10];         /* the last event date parsed, and its midnight */
	int64_t time_date_ts;
	FILE *rejects;
	char *rejects_path;
	char first_reject[512];     /* of the file being read */
	int64_t max_event_time;
	int64_t users_loaded, users_rejected, events_loaded, events_rejected;
	int64_t files_loaded, files_skipped;
	/* --shard: rows of other shards' users (skipped, not rejected) */
	int64_t users_other_shards, events_other_shards;
	/* --shard: each loaded user's place in the input, by uid - 1 (shard_user_pos blob) */
	int64_t *user_pos;
	size_t cap_user_pos;
	int64_t file_ordinal;       /* of the file being read, counted over every ingest */
};

/* Rows of a shard's ingest that belong to another shard's user. */
#define ROW_OTHER_SHARD 2

/*
 * A row's shard is its user id's (include/ltv/shard.h). A row too short to
 * have a user id field goes to shard 0, so every row, even a broken one, is
 * read by exactly one shard and reported once.
 */
static int row_in_shard(const struct ingest *in, char **f, size_t n, int user_id_col)
{
	const struct shard_spec *s = &in->ctx->shard;

	if (s->count == 0)
		return 1;
	if (user_id_col < 0 || (size_t)user_id_col >= n)
		return s->index == 0;
	return shard_keeps(s, f[user_id_col]);
}

/* Column positions of one file, resolved from its header. -1 = absent (optional). */
struct columns {
	int user_id, app_id, campaign, install_time, cost;
	int event_time, revenue, event;
	int *attributes;
	size_t n_header;
	char **names; /* the header's column names, to name a field in a reject */
};

/* The name of field i of a row, for a reject. */
static const char *field_name(const struct columns *c, size_t i)
{
	return i < c->n_header ? c->names[i] : "(row)";
}

/*
 * A non-negative decimal such as "12.34" with at most 15 digits is one
 * correctly rounded division of two exact doubles, so this gives strtod's
 * result bit for bit without its cost; anything else goes to parse_double.
 */
static int parse_amount(const char *s, double *out_value)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
					1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	uint64_t mant = 0;
	int digits = 0, frac = -1;
	const char *p = s;

	for (;; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 15)
				return parse_double(s, out_value);
			mant = mant * 10 + (uint64_t)(*p - '0');
			frac += frac >= 0;
		} else if (*p == '.' && frac < 0) {
			frac = 0;
		} else {
			break;
		}
	}
	if (*p != '\0' || digits == 0)
		return parse_double(s, out_value);
	*out_value = frac > 0 ? (double)mant / pow10[frac] : (double)mant;
	return 0;
}

static int is_digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * time_parse_iso8601 with a shortcut for "YYYY-MM-DDTHH:MM:SSZ" whose date is
 * the one parsed last: consecutive events mostly share their date, in a
 * per-user file and even more in one ordered by time. A time without a zone
 * is read in ingest.timezone; without one it is refused, since taking it as
 * UTC would silently shift every day boundary.
 */
static int parse_time_iso8601(struct ingest *in, const char *s, int64_t *out_ts, int64_t *out_until)
{
	enum time_form form;

	if (strnlen(s, 21) == 20 && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z' &&
	    memcmp(s, in->time_date, 10) == 0 && is_digits(s + 11, 2) && is_digits(s + 14, 2) &&
	    is_digits(s + 17, 2)) {
		const int hh = (s[11] - '0') * 10 + s[12] - '0';
		const int mi = (s[14] - '0') * 10 + s[15] - '0';
		const int ss = (s[17] - '0') * 10 + s[18] - '0';

		if (hh <= 23 && mi <= 59 && ss <= 60) {
			*out_ts = *out_until = in->time_date_ts + hh * 3600 + mi * 60 + ss;
			return 0;
		}
	}
	if (time_parse_iso8601_form(s, out_ts, &form) < 0)
		return TIME_BAD;
	if (form == TIME_ZONED && strlen(s) >= 10 && s[4] == '-' && s[7] == '-' && is_digits(s, 4)) {
		char date[11];
		int64_t midnight;

		memcpy(date, s, 10);
		date[10] = '\0';
		if (time_parse_iso8601(date, &midnight) == 0) {
			memcpy(in->time_date, s, 10);
			in->time_date_ts = midnight;
		}
	}
	if (form == TIME_ZONED) {
		*out_until = *out_ts;
		return 0;
	}
	if (form == TIME_NO_ZONE && !in->tz)
		return TIME_NO_ZONE_ERR;
	/* A date alone is a whole day: in the zone assumed, else in UTC as before. */
	if (form == TIME_DATE) {
		*out_until = in->tz ? tzone_local_to_utc(in->tz, *out_ts + SECONDS_PER_DAY)
				    : *out_ts + SECONDS_PER_DAY;
	}
	if (in->tz)
		*out_ts = tzone_local_to_utc(in->tz, *out_ts);
	if (form == TIME_NO_ZONE)
		*out_until = *out_ts;
	return 0;
}

/* An epoch count ("1719792000", "-86400"; a fraction is truncated) divided by unit. */
static int parse_epoch(const char *s, int64_t unit, int64_t *out_ts)
{
	int64_t v = 0;
	int neg = *s == '-', digits = 0;

	s += neg;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (++digits > 15) /* beyond year 30000 even in milliseconds */
			return TIME_BAD;
		v = v * 10 + (*s - '0');
	}
	if (*s == '.' && digits) {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return TIME_BAD;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s || !digits)
		return TIME_BAD;
	if (neg)
		v = -v;
	/* Floor, so -1 ms is the last second before 1970. */
	*out_ts = v / unit - (v % unit < 0);
	return 0;
}

static int parse_time_unix_s(struct ingest *in, const char *s, int64_t *out_ts, int64_t *out_until)
{
	(void)in;
	if (parse_epoch(s, 1, out_ts) < 0)
		return TIME_BAD;
	*out_until = *out_ts;
	return 0;
}

static int parse_time_unix_ms(struct ingest *in, const char *s, int64_t *out_ts, int64_t *out_until)
{
	(void)in;
	if (parse_epoch(s, 1000, out_ts) < 0)
		return TIME_BAD;
	*out_until = *out_ts;
	return 0;
}

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

/* Rejects a time field that in->parse_time refused with code, saying what was expected. */
static void reject_time(struct ingest *in, const char *path, size_t line, const char *field,
			const char *value, int code)
{
	const char *format = in->cfg->columns.time_format;

	if (code == TIME_NO_ZONE_ERR)
		reject(in, path, line, field, "'%s' has no time zone; add one (Z, +02:00) or set "
		       "ingest.timezone to the zone it is in (Europe/Paris, +02:00, UTC)", value);
	else if (strcmp(format, "unix_s") == 0)
		reject(in, path, line, field, "'%s' is not a number of seconds since 1970-01-01 UTC "
		       "(columns.time_format: unix_s)", value);
	else if (strcmp(format, "unix_ms") == 0)
		reject(in, path, line, field, "'%s' is not a number of milliseconds since 1970-01-01 "
		       "UTC (columns.time_format: unix_ms)", value);
	else
		reject(in, path, line, field, "'%s' is not an ISO 8601 date or date-time", value);
}

static int find_column(char **header, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(header[i], name) == 0)
			return (int)i;
	return -1;
}

/*
 * A header read as one column that holds another delimiter was split with the
 * wrong one: say which delimiter it looks like instead of "no column".
 */
static int wrong_delimiter(char **header, size_t n, const char *path, struct ltv_err *err)
{
	static const struct { char c; const char *shown, *set; } seps[] = {
		{ ',', "','", "\",\"" }, { ';', "';'", "\";\"" }, { '\t', "tab", "tab" },
	};

	if (n != 1)
		return 0;
	for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++)
		if (strchr(header[0], seps[i].c))
			return err_set(err, LTV_EINVAL, "%s:1: the header has one column; is the file "
				       "%s-separated? set input.delimiter: %s", path, seps[i].shown,
				       seps[i].set);
	return 0;
}

static int require_column(char **header, size_t n, const char *name, const char *key,
			  const char *path, int *out_idx, struct ltv_err *err)
{
	*out_idx = find_column(header, n, name);
	if (*out_idx < 0 && wrong_delimiter(header, n, path, err) < 0)
		return err->code;
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

/*
 * Rejects a row with a field that is not usable text (fault); returns 1 when
 * it did.
 */
static int reject_fault(struct ingest *in, const char *path, size_t line, const struct columns *c,
			const struct csv_fault *fault)
{
	char why[256];

	if (fault->kind == CSV_FAULT_NONE)
		return 0;
	csv_fault_describe(fault, why, sizeof(why));
	reject(in, path, line, field_name(c, fault->field), "the field %s", why);
	return 1;
}

static size_t batch_str(struct user_batch *b, const char *s)
{
	const size_t off = b->text_len, len = strlen(s) + 1;

	ARRAY_GROW(b->text, b->text_len + len, b->text_cap);
	memcpy(b->text + off, s, len);
	b->text_len += len;
	return off;
}

static int flush_users(struct ingest *in, struct ltv_err *err)
{
	struct user_batch *b = in->batch;
	const char **strs[4];
	int ret;

	if (!b || b->n == 0)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		strs[0] = &b->rows[i].user_id;
		strs[1] = &b->rows[i].app_id;
		strs[2] = &b->rows[i].campaign;
		strs[3] = &b->rows[i].attributes_json;
		for (int k = 0; k < 4; k++)
			*strs[k] = b->str_off[i][k] == SIZE_MAX ? NULL : b->text + b->str_off[i][k];
	}
	ret = registry_users_insert(in->ctx->reg, b->rows, b->n, in->artefact_id, err);
	b->n = 0;
	b->text_len = 0;
	return ret;
}

/* Queues a valid user for insertion; the registry sees it at the next flush. */
static int add_user(struct ingest *in, const struct user_row *u, struct ltv_err *err)
{
	struct user_batch *b = in->batch;
	size_t i;

	if (!b)
		b = in->batch = xcalloc(1, sizeof(*b));
	i = b->n++;
	b->rows[i] = *u;
	b->str_off[i][0] = batch_str(b, u->user_id);
	b->str_off[i][1] = batch_str(b, u->app_id);
	b->str_off[i][2] = batch_str(b, u->campaign);
	b->str_off[i][3] = u->attributes_json ? batch_str(b, u->attributes_json) : SIZE_MAX;
	return b->n == USER_FLUSH ? flush_users(in, err) : 0;
}

/* Validates one users.csv row; returns 1 when loaded, 0 when rejected, <0 on failure. */
static int ingest_user_row(struct ingest *in, const char *path, size_t line, char **f, size_t n,
			   const struct columns *c, const struct csv_fault *fault, struct ltv_err *err)
{
	const struct config *cfg = in->cfg;
	struct user_row u = { 0 };
	char *attrs;
	int64_t until;
	int ret;

	if (!row_in_shard(in, f, n, c->user_id))
		return ROW_OTHER_SHARD;
	if (reject_fault(in, path, line, c, fault)) {
		/* Its events are then reported as a rejected user's, unless the id is the bad field. */
		if (n == c->n_header && fault->field != (size_t)c->user_id && *f[c->user_id])
			strmap_put(&in->user_ids, f[c->user_id], -1);
		return 0;
	}
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
	ret = in->parse_time(in, f[c->install_time], &u.install_time, &until);
	if (ret < 0) {
		reject_time(in, path, line, cfg->columns.install_time, f[c->install_time], ret);
		goto rejected;
	}
	u.cost = NAN;
	if (c->cost >= 0 && *f[c->cost]) {
		if (parse_amount(f[c->cost], &u.cost) < 0 || u.cost < 0) {
			reject(in, path, line, cfg->columns.cost, "'%s' is not a number >= 0", f[c->cost]);
			goto rejected;
		}
		if (u.cost > MAX_AMOUNT) {
			reject(in, path, line, cfg->columns.cost, "'%s' is above %.0e, the largest cost "
			       "one user may have; check the unit and the decimal separator",
			       f[c->cost], MAX_AMOUNT);
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
	ret = add_user(in, &u, err);
	free(attrs);
	if (ret < 0)
		return ret;
	ARRAY_GROW(in->users, in->n_users + 1, in->cap_users);
	if (in->ctx->shard.count) {
		ARRAY_GROW(in->user_pos, in->n_users + 1, in->cap_user_pos);
		in->user_pos[in->n_users] = in->file_ordinal << 40 | (int64_t)line;
	}
	in->users[in->n_users++] = (struct user_state){ u.install_time, -1 };
	return 1;
}

/* Validates one events.csv row and adds it to its (user, day) aggregate. */
static int ingest_event_row(struct ingest *in, const char *path, size_t line, char **f, size_t n,
			    const struct columns *c, const struct csv_fault *fault)
{
	const struct config *cfg = in->cfg;
	int64_t uid, t, until, day;
	double revenue = 0;
	int ret;
	struct user_state *u;
	struct day_agg *agg;
	uint64_t key;

	if (!row_in_shard(in, f, n, c->user_id))
		return ROW_OTHER_SHARD;
	if (reject_fault(in, path, line, c, fault))
		return 0;
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
	ret = in->parse_time(in, f[c->event_time], &t, &until);
	if (ret < 0) {
		reject_time(in, path, line, cfg->columns.event_time, f[c->event_time], ret);
		return 0;
	}
	/* An empty revenue cell is a non-paying event, the common export convention. */
	if (*f[c->revenue] && parse_amount(f[c->revenue], &revenue) < 0) {
		reject(in, path, line, cfg->columns.revenue, "'%s' is not a number", f[c->revenue]);
		return 0;
	}
	if (revenue < 0 && !in->subtract_refunds) {
		reject(in, path, line, cfg->columns.revenue, "'%s' is negative (a refund? set "
		       "ingest.negative_revenue: subtract to take it off that day's revenue)",
		       f[c->revenue]);
		return 0;
	}
	if (fabs(revenue) > MAX_AMOUNT) {
		reject(in, path, line, cfg->columns.revenue, "'%s' is above %.0e, the largest revenue "
		       "one event may carry; check the unit and the decimal separator",
		       f[c->revenue], MAX_AMOUNT);
		return 0;
	}
	u = &in->users[uid - 1];
	day = time_day_index(u->install_time, t);
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
	key = (uint64_t)uid << DAY_BITS | (uint64_t)day;
	if (u->latest >= 0 && in->days[u->latest].key == key) {
		agg = &in->days[u->latest];
	} else {
		ARRAY_GROW(in->days, in->n_days + 1, in->cap_days);
		u->latest = (int64_t)in->n_days;
		agg = &in->days[in->n_days++];
		*agg = (struct day_agg){ .key = key };
	}
	agg->revenue += revenue;
	agg->events += 1;
	agg->purchases += revenue > 0;
	if (revenue < 0) {
		in->refunds++;
		in->refunded -= revenue;
	}
	/* A date-only time ("1998-06-30") stands for that whole day, so the data
	 * reach the day's end (until): the default as_of then keeps the last day. */
	if (until > in->max_event_time)
		in->max_event_time = until;
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
	int64_t rows = 0, loaded = 0, other = 0;
	int ret, is_users = file->kind == INPUT_USERS;

	r = csv_reader_open(file->path, err);
	if (!r)
		return err->code;
	csv_reader_set_delimiter(r, config_delimiter(in->cfg)); /* validated with the config */
	ret = csv_reader_next(r, &fields, &n, &line, err);
	if (ret == 0)
		ret = err_set(err, LTV_EINVAL, "%s: the file is empty; it needs a header row", file->path);
	if (ret < 0)
		goto out;
	{
		struct csv_fault fault;

		csv_reader_fault(r, &fault);
		if (fault.kind != CSV_FAULT_NONE) {
			char why[256];

			csv_fault_describe(&fault, why, sizeof(why));
			ret = err_set(err, LTV_EINVAL, "%s:%zu: header field %zu %s", file->path, line,
				      fault.field + 1, why);
			goto out;
		}
	}
	cols.n_header = n;
	cols.names = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		cols.names[i] = xstrdup(fields[i]);
	in->first_reject[0] = '\0';
	ret = is_users ? map_user_columns(in, fields, n, file->path, &cols, err)
		       : map_event_columns(in, fields, n, file->path, &cols, err);
	if (ret < 0)
		goto out;
	progress_start(&prog, is_users ? "ingest users" : "ingest events", "rows", 0);
	while ((ret = csv_reader_next(r, &fields, &n, &line, err)) == 1) {
		struct csv_fault fault;
		int r1;

		csv_reader_fault(r, &fault);
		r1 = is_users ? ingest_user_row(in, file->path, line, fields, n, &cols, &fault, err)
			      : ingest_event_row(in, file->path, line, fields, n, &cols, &fault);

		if (r1 < 0) {
			ret = r1;
			break;
		}
		if (r1 == ROW_OTHER_SHARD) {
			other++;
			continue;
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
	if (ret == 0 && is_users)
		ret = flush_users(in, err);
	if (ret < 0)
		goto out;
	LOG(LOG_INFO, "%s: %lld rows, %lld loaded, %lld rejected, %.0f rows/s", file->path,
	    (long long)rows, (long long)loaded, (long long)(rows - loaded),
	    (double)rows / (now_seconds() - prog.started + 1e-9));
	if (other)
		LOG(LOG_INFO, "%s: %lld rows of other shards' users skipped", file->path, (long long)other);
	if (is_users) {
		in->users_other_shards += other;
		in->users_loaded += loaded;
		in->users_rejected += rows - loaded;
	} else {
		in->events_other_shards += other;
		in->events_loaded += loaded;
		in->events_rejected += rows - loaded;
	}
	ret = check_reject_rate(in, file->path, rows, rows - loaded, err);
	if (ret == 0)
		ret = registry_file_record(in->ctx->reg, file->hash, is_users ? "users" : "events",
					   file->path, artefact_id, rows, rows - loaded, err);
out:
	for (size_t i = 0; cols.names && i < cols.n_header; i++)
		free(cols.names[i]);
	free(cols.names);
	free(cols.attributes);
	csv_reader_free(r);
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

	if (in->n_users == 0)
		return 0;
	ret = registry_artefact_current(in->ctx->reg, "ingest", &prev, err);
	if (ret == 0) {
		ret = registry_blob_get(in->ctx->reg, prev.id, "shard_user_pos", &data, &len, err);
		artefact_info_release(&prev);
	}
	if (ret == 0 && len != in->n_users * sizeof(int64_t))
		ret = err_set(err, LTV_EREGISTRY, "shard registry %s: the users' input positions "
			      "(blob shard_user_pos) do not match its %zu users; rebuild the shard "
			      "with ingest.mode: replace", registry_path(in->ctx->reg), in->n_users);
	else if (ret == LTV_ENOTFOUND)
		ret = err_set(err, LTV_EUSAGE, "%s holds users ingested without --shard; a shard "
			      "registry must hold one shard only: use a new registry path",
			      registry_path(in->ctx->reg));
	if (ret == 0) {
		in->cap_user_pos = in->n_users;
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
	for (size_t i = 0; i < t.n; i++) {
		if (t.uid[i] != (int64_t)i + 1) {
			ret = err_set(err, LTV_EREGISTRY, "users table has a gap at uid %lld; "
				      "re-ingest with ingest.mode: replace", (long long)t.uid[i]);
			break;
		}
		strmap_put(&in->user_ids, t.user_id[i], t.uid[i]);
		ARRAY_GROW(in->users, in->n_users + 1, in->cap_users);
		in->users[in->n_users++] = (struct user_state){ t.install_time[i], -1 };
	}
	user_table_release(&t);
	if (ret == 0 && in->ctx->shard.count)
		ret = load_user_positions(in, err);
	return ret;
}

static int compare_day_key(const void *a, const void *b)
{
	const struct day_agg *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/*
 * Groups the aggregates by user (a stable counting sort on uid) and sorts each
 * user's run by day where events came out of order; returns the array to
 * read, in->days itself when it is in key order already.
 */
static struct day_agg *days_in_key_order(struct ingest *in)
{
	const size_t n = in->n_days;
	struct day_agg *sorted;
	size_t *start;
	int ordered = 1;

	for (size_t i = 1; i < n && ordered; i++)
		ordered = in->days[i - 1].key < in->days[i].key;
	if (ordered)
		return in->days;
	start = xcalloc(in->n_users + 2, sizeof(*start));
	for (size_t i = 0; i < n; i++)
		start[(in->days[i].key >> DAY_BITS) + 1]++;
	for (size_t u = 1; u <= in->n_users + 1; u++)
		start[u] += start[u - 1];
	sorted = xmalloc(n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[start[in->days[i].key >> DAY_BITS]++] = in->days[i];
	/* start[uid] is now the end of uid's run, and start[uid - 1] its beginning. */
	for (size_t u = 1, from = start[0]; u <= in->n_users; from = start[u], u++) {
		for (size_t i = from + 1; i < start[u]; i++) {
			if (sorted[i - 1].key > sorted[i].key) {
				qsort(sorted + from, start[u] - from, sizeof(*sorted), compare_day_key);
				break;
			}
		}
	}
	free(start);
	return sorted;
}

/*
 * ingest.negative_revenue: subtract. A day's refunds can exceed its purchases
 * (the purchase was on an earlier day): its revenue is floored at 0, so no
 * day and no label is ever negative, and a day whose refunds took all its
 * revenue is not a paying day.
 */
static void floor_refunded_days(struct ingest *in, struct user_day_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (rows[i].revenue > 0)
			continue;
		if (rows[i].revenue < 0)
			in->days_floored++;
		rows[i].revenue = 0;
		rows[i].purchases = 0;
	}
}

/*
 * Writes the aggregates in key order, which is the table's primary-key
 * order, merging those of one (user, day) that events out of order split.
 */
static int write_user_days(struct ingest *in, struct ltv_err *err)
{
	struct day_agg *days = days_in_key_order(in);
	struct user_day_row *rows = xmalloc((in->n_days ? in->n_days : 1) * sizeof(*rows));
	size_t m = 0;
	int ret;

	for (size_t i = 0; i < in->n_days; i++) {
		const struct day_agg *d = &days[i];

		if (m && rows[m - 1].uid == (int64_t)(d->key >> DAY_BITS) &&
		    rows[m - 1].day == (int64_t)(d->key & MAX_DAY)) {
			rows[m - 1].revenue += d->revenue;
			rows[m - 1].events += d->events;
			rows[m - 1].purchases += d->purchases;
			continue;
		}
		rows[m++] = (struct user_day_row){ (int64_t)(d->key >> DAY_BITS),
						   (int64_t)(d->key & MAX_DAY), d->revenue, d->events,
						   d->purchases };
	}
	if (in->subtract_refunds)
		floor_refunded_days(in, rows, m);
	if (days != in->days)
		free(days);
	in->n_user_days = m;
	ret = registry_user_days_add(in->ctx->reg, rows, m, err);
	free(rows);
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
	cJSON_AddNumberToObject(m, "user_days_added", (double)in->n_user_days);
	if (in->max_event_time != INT64_MIN)
		cJSON_AddStringToObject(m, "max_event_time",
					time_format_iso8601(in->max_event_time, iso, sizeof(iso)));
	if (in->subtract_refunds) {
		cJSON_AddNumberToObject(m, "refunds_subtracted", (double)in->refunds);
		cJSON_AddNumberToObject(m, "refunded_revenue", in->refunded);
		cJSON_AddNumberToObject(m, "user_days_floored_at_0", (double)in->days_floored);
	}
	if (in->users_rejected + in->events_rejected > 0)
		cJSON_AddStringToObject(m, "rejects_file", in->rejects_path);
	if (in->ctx->shard.count) {
		char spec[32];

		cJSON_AddStringToObject(m, "shard", shard_format(&in->ctx->shard, spec, sizeof(spec)));
		cJSON_AddNumberToObject(m, "users_other_shards", (double)in->users_other_shards);
		cJSON_AddNumberToObject(m, "events_other_shards", (double)in->events_other_shards);
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

/* Sets how times and negative revenue are read, from columns.time_format and ingest.*. */
static int choose_time_parser(struct ingest *in, struct ltv_err *err)
{
	const char *format = in->cfg->columns.time_format;

	in->parse_time = strcmp(format, "unix_s") == 0    ? parse_time_unix_s
			 : strcmp(format, "unix_ms") == 0 ? parse_time_unix_ms
							  : parse_time_iso8601;
	in->subtract_refunds = strcmp(in->cfg->ingest.negative_revenue, "subtract") == 0;
	if (*in->cfg->ingest.timezone) {
		in->tz = tzone_open(in->cfg->ingest.timezone, err);
		if (!in->tz)
			return err->code;
	}
	return 0;
}

int stage_ingest_run(struct stage_ctx *ctx)
{
	struct ingest in = { .ctx = ctx, .cfg = ctx->cfg, .max_event_time = INT64_MIN };
	struct input_files files = { 0 };
	int64_t artefact_id = 0;
	int replace = strcmp(ctx->cfg->ingest.mode, "replace") == 0;
	int ret;

	strmap_init(&in.user_ids);
	ret = choose_time_parser(&in, &ctx->err);
	if (ret == 0)
		ret = input_files_resolve_in(ctx->cfg, ctx->reg, &files, &ctx->err);
	if (ret == 0)
		ret = open_rejects(&in, &ctx->err);
	if (ret == 0)
		ret = stage_output_id(ctx, &artefact_id);
	in.artefact_id = artefact_id;
	if (ret < 0)
		goto out;
	ret = replace ? registry_data_clear(ctx->reg, &ctx->err) : load_known_users(&in, &ctx->err);
	if (ret == 0)
		ret = count_ingested_files(ctx, &in.file_ordinal);
	for (size_t i = 0; i < files.n && ret == 0; i++) {
		in.file_ordinal++;
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
	if (ret == 0 && ctx->shard.count)
		ret = registry_blob_put(ctx->reg, artefact_id, "shard_user_pos",
					in.user_pos ? (const void *)in.user_pos : "", in.n_users * sizeof(int64_t),
					&ctx->err);
	if (ret == 0)
		add_metrics(&in);
out:
	if (in.rejects)
		fclose(in.rejects);
	/* Keep the rejects file only when it has something to say. */
	if (in.rejects_path && in.users_rejected + in.events_rejected == 0)
		unlink(in.rejects_path);
	free(in.rejects_path);
	free(in.users);
	free(in.user_pos);
	if (in.batch)
		free(in.batch->text);
	free(in.batch);
	free(in.days);
	strmap_release(&in.user_ids);
	tzone_free(in.tz);
	input_files_release(&files);
	return ret;
}
