/*
 * CSV → in-memory users and user-day aggregates (include/ltv/ingest_parse.h):
 * validates users.csv and events.csv (columns mapped by the config), rejects
 * every bad row with file, line, field and reason, and fails a file with too
 * many rejects. The ingest stage (pipeline/ingest.c) writes the result to
 * the registry; nothing here touches SQLite.
 *
 * Rows are rejected, never silently altered: a field with a NUL byte, bytes
 * that are not UTF-8 or more than CSV_FIELD_MAX bytes, and any revenue or
 * cost above MAX_AMOUNT (a sum of such values overflows to infinity later).
 *
 * Aggregation follows how exports are ordered: each user's events come in
 * time order whether the file is per user or by time across users, so each
 * event either adds to its user's latest (user, day) aggregate or starts a new
 * one, and a hash map is not needed. The latest aggregate lives in an array
 * by uid (struct user_state) and moves to the list of finished ones when the
 * next one starts. In a file ordered by time every event is another user's
 * and each of its lookups misses the cache: they are done many at once
 * (strmap_get_many), so the misses overlap. The aggregates are
 * grouped by user at the end (a counting sort by uid), rows out of order
 * within a user are sorted and merged, and they are returned in the table's
 * key order.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ltv/bqueue.h"
#include "ltv/hash.h"
#include "ltv/csvread.h"
#include "ltv/halves.h"
#include "ltv/ingest_parse.h"
#include "ltv/log.h"
#include "ltv/mapped_block.h"
#include "ltv/progress.h"
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

struct ingest_day_agg {
	uint64_t key; /* uid << DAY_BITS | day */
	double revenue;
	int64_t events;
	int64_t purchases;
};

/*
 * A user's latest (user, day) aggregate, by uid in ingest_parse.latest: the
 * day and purchase count packed in one word (purchases would need 2^44 events
 * in one day to overflow). It is apart from the id map and from the install
 * times, which the events worker reads while the applying thread writes
 * these: in one cache line, as they were, every write took the line from the
 * worker's core and every read took it back. By uid, a file ordered by time
 * touches a narrow window of them (users are numbered in install order and
 * mostly active soon after), where the map's slots are scattered by hash.
 */
struct user_state {
	double revenue;          /* of the latest aggregate */
	int64_t events;          /* of the latest aggregate; 0 when there is none */
	uint64_t day_purchases;  /* its day | its purchases << DAY_BITS */
	uint64_t pad;            /* 32 bytes: two per line, none across two */
};

/*
 * Loads p's cache line and discards the value. Rows' random lines are loaded
 * this way in a short loop of their own before the rows are worked on: the
 * misses then overlap, where a prefetch beside each row's work overlapped
 * almost nothing on this machine (see strmap_get_many).
 */
static inline void touch(const void *p)
{
	const char c = *(const volatile char *)p;

	(void)c;
}

/*
 * A time parser (ingest_time_parser) parses one time field as
 * columns.time_format says; chosen once per run.
 * Returns 0, TIME_BAD (not such a time) or TIME_NO_ZONE_ERR (a date-time
 * without a zone and no ingest.timezone). *out_until is when the value is
 * complete: the end of the day for a date alone, else the time itself.
 */
enum { TIME_BAD = -1, TIME_NO_ZONE_ERR = -2 };

/*
 * Rows read one at a time load their id map slots this many at once
 * (strmap_touch_many): enough misses in flight to overlap, few enough that
 * the lines are still cached when their rows come.
 */
#define TOUCH_ROWS 32

/* How far ahead the grouping into user-days prefetches its counts and rows. */
#define PREFETCH_ROWS 16

/* Files from this size on (compressed size for gzip) are read with csv_reader_set_read_ahead. */
#define READ_AHEAD_MIN ((uint64_t)1 << 20)

/* Rows of a shard's ingest that belong to another shard's user. */
#define ROW_OTHER_SHARD 2

/*
 * A row's shard is its user id's (include/ltv/shard.h). A row too short to
 * have a user id field goes to shard 0, so every row, even a broken one, is
 * read by exactly one shard and reported once.
 */
static int row_in_shard(const struct ingest_parse *in, char **f, size_t n, int user_id_col)
{
	const struct shard_spec *s = in->shard;

	if (!s || s->count == 0)
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
	/*
	 * Zero ("0.00", most events' revenue) without the division, the same
	 * +0.0: the division's latency reached the caller's checks of the value.
	 */
	*out_value = frac > 0 && mant ? (double)mant / pow10[frac] : (double)mant;
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
static int parse_time_iso8601(struct ingest_parse *in, const char *s, int64_t *out_ts, int64_t *out_until)
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

static int parse_time_unix_s(struct ingest_parse *in, const char *s, int64_t *out_ts, int64_t *out_until)
{
	(void)in;
	if (parse_epoch(s, 1, out_ts) < 0)
		return TIME_BAD;
	*out_until = *out_ts;
	return 0;
}

static int parse_time_unix_ms(struct ingest_parse *in, const char *s, int64_t *out_ts, int64_t *out_until)
{
	(void)in;
	if (parse_epoch(s, 1000, out_ts) < 0)
		return TIME_BAD;
	*out_until = *out_ts;
	return 0;
}


static void reject(struct ingest_parse *in, const char *path, size_t line, const char *field,
		   const char *fmt, ...) LTV_PRINTF(5, 6);

static void reject(struct ingest_parse *in, const char *path, size_t line, const char *field,
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
static void reject_time(struct ingest_parse *in, const char *path, size_t line, const char *field,
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

static int map_user_columns(struct ingest_parse *in, char **header, size_t n, const char *path,
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

static int map_event_columns(struct ingest_parse *in, char **header, size_t n, const char *path,
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

static char *attributes_json(const struct ingest_parse *in, const struct columns *c, char **fields)
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
static int reject_fault(struct ingest_parse *in, const char *path, size_t line, const struct columns *c,
			const struct csv_fault *fault)
{
	char why[256];

	if (fault->kind == CSV_FAULT_NONE)
		return 0;
	csv_fault_describe(fault, why, sizeof(why));
	reject(in, path, line, field_name(c, fault->field), "the field %s", why);
	return 1;
}

/* Gives the new user uid its install time and an empty latest aggregate. */
static void user_add(struct ingest_parse *in, int64_t uid, int64_t install_time)
{
	ARRAY_GROW_HUGE(in->install_times, (size_t)uid + 1, in->cap_install_times);
	ARRAY_GROW_HUGE(in->latest, (size_t)uid + 1, in->cap_latest);
	in->install_times[uid] = install_time;
	in->latest[uid] = (struct user_state){ 0 };
}

/* Validates one users.csv row; returns 1 when loaded, 0 when rejected, <0 on failure. */
static int ingest_user_row(struct ingest_parse *in, const char *path, size_t line, char **f, size_t n,
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
	user_add(in, u.uid, u.install_time);
	goto valid;
rejected:
	/* Remember the id so its events are reported as such, not as unknown. */
	strmap_put(&in->user_ids, f[c->user_id], -1);
	return 0;
valid:
	attrs = attributes_json(in, c, f);
	u.attributes_json = attrs;
	ret = in->on_user ? in->on_user(in->on_user_arg, &u, line, err) : 0;
	free(attrs);
	if (ret < 0)
		return ret;
	in->n_users++;
	return 1;
}

/* User uid's latest aggregate u as a finished one. */
static struct ingest_day_agg latest_agg(int64_t uid, const struct user_state *u)
{
	return (struct ingest_day_agg){
		.key = (uint64_t)uid << DAY_BITS | (u->day_purchases & MAX_DAY),
		.revenue = u->revenue,
		.events = u->events,
		.purchases = (int64_t)(u->day_purchases >> DAY_BITS),
	};
}

/* Moves the latest aggregate of user uid, if it has one, to the finished ones. */
static void finish_latest(struct ingest_parse *in, int64_t uid, struct user_state *u)
{
	if (u->events == 0)
		return;
	ARRAY_GROW_HUGE(in->days, in->n_days + 1, in->cap_days);
	in->days[in->n_days++] = latest_agg(uid, u);
	u->events = 0;
}


/* ingest_event_resolve's looked_up when the row's user id was not looked up before. */
#define LOOK_UP_NOW (STRMAP_ABSENT + 1)

/* An events row validated, with what its aggregation needs. */
struct resolved_event {
	int64_t uid;
	int64_t day;
	double revenue;
};

/*
 * Validates one events.csv row into *out (1), rejects it (0) or skips it
 * (ROW_OTHER_SHARD), and raises in->max_event_time. looked_up is the row's
 * user id already looked up in the id map (STRMAP_ABSENT: not there), or
 * LOOK_UP_NOW. It reads the id map and the install times only, so two
 * threads may resolve rows at once while a third aggregates (in->latest),
 * each with its own rejects stream and time cache (resolve_batch).
 */
static int ingest_event_resolve(struct ingest_parse *in, const char *path, size_t line, char **f,
				size_t n, const struct columns *c, const struct csv_fault *fault,
				int64_t looked_up, struct resolved_event *out)
{
	const struct config *cfg = in->cfg;
	int64_t uid = looked_up, t, until, day;
	double revenue = 0;
	int ret;

	if (!row_in_shard(in, f, n, c->user_id))
		return ROW_OTHER_SHARD;
	if (reject_fault(in, path, line, c, fault))
		return 0;
	if (n != c->n_header) {
		reject(in, path, line, "(row)", "row has %zu fields, the header has %zu", n, c->n_header);
		return 0;
	}
	if (looked_up == LOOK_UP_NOW && !strmap_get(&in->user_ids, f[c->user_id], &uid))
		uid = STRMAP_ABSENT;
	if (uid == STRMAP_ABSENT) {
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
	day = time_day_index(in->install_times[uid], t);
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
	/* A date-only time ("1998-06-30") stands for that whole day, so the data
	 * reach the day's end (until): the default as_of then keeps the last day. */
	if (until > in->max_event_time)
		in->max_event_time = until;
	*out = (struct resolved_event){ uid, day, revenue };
	return 1;
}

/*
 * The install time from which users' events are aggregated
 * (ingest_parse_young_only): INT64_MIN, every user's, unless a caller asked
 * for young users only. Then it is the latest time known so far, or the
 * caller's as_of, minus the span. The latest time only grows, so a user older
 * than it now is older than it at the end, where the caller asks for the
 * users installed since (ingest_parse_user_days): skipping that user's events
 * changes none of the rows it gets.
 */
static int64_t young_since(const struct ingest_parse *in)
{
	int64_t end = in->young_as_of;

	if (in->young_span == 0)
		return INT64_MIN;
	if (end == INT64_MIN)
		end = in->max_event_time > in->time_hint ? in->max_event_time : in->time_hint;
	return end == INT64_MIN ? INT64_MIN : end - in->young_span;
}

/*
 * Adds a resolved event to its (user, day) aggregate. Called in file order,
 * so every sum is taken in the same order whoever resolved the rows. The
 * events of a user installed before since (young_since) are counted but not
 * aggregated: nobody will ask for that user's days.
 */
static void apply_event(struct ingest_parse *in, const struct resolved_event *e, int64_t since)
{
	struct user_state *u = &in->latest[e->uid];

	if (e->revenue < 0) {
		in->refunds++;
		in->refunded -= e->revenue;
	}
	if (since != INT64_MIN && in->install_times[e->uid] < since)
		return;
	if (u->events == 0 || (u->day_purchases & MAX_DAY) != (uint64_t)e->day) {
		finish_latest(in, e->uid, u);
		u->revenue = 0;
		u->day_purchases = (uint64_t)e->day;
	}
	u->revenue += e->revenue;
	u->events += 1;
	u->day_purchases += (uint64_t)(e->revenue > 0) << DAY_BITS;
}

/* Validates one events.csv row and adds it to its (user, day) aggregate. */
static int ingest_event_row(struct ingest_parse *in, const char *path, size_t line, char **f, size_t n,
			    const struct columns *c, const struct csv_fault *fault)
{
	struct resolved_event e;
	const int ret = ingest_event_resolve(in, path, line, f, n, c, fault, LOOK_UP_NOW, &e);

	if (ret == 1)
		apply_event(in, &e, young_since(in));
	return ret;
}

/* How much of an events file's end tail_time_hint reads. */
#define TAIL_BYTES 65536

/*
 * Raises in->time_hint to the latest time of the valid rows among the last
 * TAIL_BYTES of the events file at path (a plain file: a gzip one is left
 * alone), so young_since skips old users' events from the file's first row:
 * a file ordered by time would otherwise raise it only as it is read, when
 * most old users' events are past. Each line is validated as the read will
 * validate it (ingest_event_resolve, rejects thrown away). A line with a
 * quote is passed over: a quoted field may hold line breaks, so the lines
 * around it may not be rows. Where a quote opened higher up still fools this
 * (the read then finds no row as late), ingest_parse_young_exact says so.
 */
static void tail_time_hint(struct ingest_parse *in, const char *path, const struct columns *c)
{
	const char delim = config_delimiter(in->cfg);
	const struct csv_fault none = { .kind = CSV_FAULT_NONE };
	struct ingest_parse view = *in;
	char **f = xcalloc(c->n_header + 1, sizeof(*f));
	char *buf = xmalloc(TAIL_BYTES + 1), *text = NULL, *line, *next;
	size_t text_len = 0;
	ssize_t got = -1;
	struct stat st;
	const int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 2) {
		const off_t from = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
		unsigned char magic[2];

		if (pread(fd, magic, 2, 0) == 2 && !csv_gzip_magic(magic, 2))
			got = pread(fd, buf, TAIL_BYTES, from);
	}
	if (fd >= 0)
		close(fd);
	if (got > 0)
		buf[got] = '\0';
	view.rejects = got > 0 ? open_memstream(&text, &text_len) : NULL;
	view.max_event_time = INT64_MIN;
	/* The first line is the header, or a line cut by the start of the tail. */
	for (line = got > 0 && view.rejects ? memchr(buf, '\n', (size_t)got) : NULL; line; line = next) {
		size_t n = 0;
		struct resolved_event e;

		line++;
		next = strchr(line, '\n');
		if (!next)
			break; /* the file's last line without its line break: the read has it all the same */
		*next = '\0';
		if (next > line && next[-1] == '\r')
			next[-1] = '\0';
		if (strchr(line, '"'))
			continue;
		for (char *p = line; n < c->n_header + 1; n++) {
			f[n] = p;
			p = strchr(p, delim);
			if (!p) {
				n++;
				break;
			}
			*p++ = '\0';
		}
		if (n == c->n_header)
			(void)ingest_event_resolve(&view, path, 0, f, n, c, &none, LOOK_UP_NOW, &e);
	}
	if (view.rejects)
		fclose(view.rejects);
	if (view.max_event_time > in->time_hint)
		in->time_hint = view.max_event_time;
	free(text);
	free(buf);
	free(f);
}

static int check_reject_rate(const struct ingest_parse *in, const char *path, int64_t rows,
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

/*
 * Events on two threads besides the read-ahead. It hands its buffers over
 * whole (csv_reader_next_batch); a worker resolves each (the id lookup,
 * times, amounts, every check: most of the work) into a batch, and the
 * caller applies the batches in file order while the worker resolves the
 * next: rejects appended to the rejects file, events added to their
 * aggregates. Rejects, their lines and order, the first reject, every sum
 * and every count are therefore those of the one-thread loop.
 *
 * Why a pipeline and not the caller resolving every other buffer itself (tried
 * first): the caller's lookups then cost twice the worker's (about 285 ns
 * against 143 ns a row at 1M users, perf), so the caller's thread, the one
 * the stage waits on, was no shorter than with one thread. Applying alone,
 * it is 36% shorter (bench/ingest_threads.sh).
 *
 * Score, whose caller has nothing else to do meanwhile and applies few
 * events (old users' are left out), asks for two workers (ingest_parse.
 * resolvers): batch k goes to worker k % 2, and is taken back from it in
 * turn, so the order is the same. One worker was its events' bound, busy
 * while the read-ahead and the caller together used half a core
 * (bench/score_read_threads.sh: events bound 926 -> 731 samples).
 */
/*
 * Resolve workers at most (ingest_parse.resolvers), and batches resolved or
 * applied at once: each worker resolves one while the caller applies the
 * oldest; the read-ahead's pool has room for them and the two it fills
 * (csvread.c).
 */
#define RESOLVERS_MAX 2
#define EVENT_BATCHES (RESOLVERS_MAX + 1)

struct event_batch {
	struct csv_batch *csv;
	struct ingest_parse view;      /* in, with this batch's rejects stream and time cache */
	char *rejects;                 /* the rejects stream's text, once resolved */
	size_t rejects_len;
	struct resolved_event *events; /* the rows loaded, in order */
	size_t n_events, cap_events;
	int64_t rows, other;           /* this shard's rows; other shards' rows skipped */
	int64_t unapplied;             /* rows loaded but not in events (old_user_event) */
	int64_t since;                 /* young_since when the batch started */
	struct csv_fields fields;
	const char **keys;             /* each row's user id, NULL when it has none */
	int64_t *uids;                 /* what the id map says of it (STRMAP_ABSENT: nothing) */
	size_t cap_keys, cap_uids;
};

/* A resolve worker: batch k goes to worker k % n, so each one's come back in order. */
struct resolver {
	struct events_job *job;
	struct bqueue todo, done;      /* batches to resolve, and resolved */
	pthread_t thread;
	int running;
};

struct events_job {
	const char *path;
	const struct columns *cols;
	struct resolver res[RESOLVERS_MAX];
	size_t n_res;
	struct event_batch batch[EVENT_BATCHES];
};

/* A view of in for one batch: only its rejects stream, first reject, time cache and maximum change. */
static void batch_start(struct event_batch *b, struct ingest_parse *in, struct csv_batch *csv)
{
	b->csv = csv;
	b->view = *in;
	b->view.rejects = open_memstream(&b->rejects, &b->rejects_len);
	if (!b->view.rejects)
		die_oom(0);
	b->view.first_reject[0] = '\0';
	b->since = young_since(in);
	b->view.max_event_time = INT64_MIN;
	b->n_events = 0;
	b->rows = b->other = b->unapplied = 0;
}

/*
 * 1 when row r1 of batch b (ingest_event_resolve's answer, its event e) is an
 * event that would change nothing when applied: its user installed before
 * the batch's since (young_since only grows, so apply_event's since is at
 * least that) and it is no refund, which apply_event counts for every user.
 * Such events (two in three of score's at 1,000,000 users) are left out of
 * the batch, where the applying thread loaded each one's install time, a
 * cache miss, only to pass it over. Without a branch: old and young users'
 * events come mixed, and a branch on it was mispredicted (the worker's own
 * samples 55 -> 101 ms, perf).
 */
static size_t old_user_event(const struct event_batch *b, const struct resolved_event *e, int r1)
{
	const int64_t uid = r1 == 1 ? e->uid : 0; /* e is only written for a loaded row */
	const double revenue = r1 == 1 ? e->revenue : 0;

	return (size_t)(r1 == 1) & (size_t)(revenue >= 0) &
	       (size_t)(b->view.install_times[uid] < b->since);
}

/* Rows whose install times resolve_batch loads at once, before resolving them. */
#define RESOLVE_TOUCH 64

static void resolve_batch(struct events_job *job, struct event_batch *b)
{
	const size_t user_col = (size_t)job->cols->user_id;
	size_t n;

	csv_batch_split(b->csv);
	n = csv_batch_count(b->csv);
	ARRAY_GROW(b->events, n, b->cap_events);
	ARRAY_GROW(b->keys, n, b->cap_keys);
	ARRAY_GROW(b->uids, n, b->cap_uids);
	/* Every row's user id first, many at once (strmap_get_many): most of a row's time was its miss. */
	for (size_t i = 0; i < n; i++)
		b->keys[i] = csv_batch_field(b->csv, i, user_col);
	strmap_get_many(&b->view.user_ids, b->keys, n, b->uids, NULL);
	for (size_t i = 0; i < n; i++) {
		struct csv_fault fault;
		size_t line, old;
		int r1;

		/*
		 * The next RESOLVE_TOUCH rows' install times loaded at once, just
		 * before those rows: loaded for the whole buffer first (20,000
		 * rows, over a MB of lines), the early ones had left the core's
		 * cache by their turn and each row waited on its own.
		 */
		if (i % RESOLVE_TOUCH == 0)
			for (size_t k = i; k < n && k < i + RESOLVE_TOUCH; k++)
				if (b->uids[k] > 0)
					touch(&b->view.install_times[b->uids[k]]);

		csv_batch_record(b->csv, i, &b->fields, &line, &fault);
		r1 = ingest_event_resolve(&b->view, job->path, line, b->fields.fields, b->fields.n,
					  job->cols, &fault, b->uids[i], &b->events[b->n_events]);
		if (r1 == ROW_OTHER_SHARD) {
			b->other++;
			continue;
		}
		b->rows++;
		old = old_user_event(b, &b->events[b->n_events], r1);
		b->unapplied += (int64_t)old;
		b->n_events += (size_t)r1 - old;
	}
	fclose(b->view.rejects); /* sets rejects and rejects_len */
	b->view.rejects = NULL;
}

static void *events_worker_main(void *arg)
{
	struct resolver *w = arg;
	void *b;

	while (bqueue_pop(&w->todo, &b))
		if (resolve_batch(w->job, b), bqueue_push(&w->done, b) < 0)
			break;
	return NULL;
}

/* Events whose latest aggregates apply_batch loads at once, before adding to them. */
#define APPLY_TOUCH 64

/* Batch b's rejects and events, in file order after those of the batches before. */
static void apply_batch(struct ingest_parse *in, struct csv_reader *r, struct event_batch *b,
			int64_t *rows, int64_t *loaded, int64_t *other)
{
	int64_t since;

	if (b->rejects_len)
		fwrite(b->rejects, 1, b->rejects_len, in->rejects);
	free(b->rejects);
	b->rejects = NULL;
	if (!in->first_reject[0])
		memcpy(in->first_reject, b->view.first_reject, sizeof(in->first_reject));
	/* The batch's latest time is a valid row's, applied below: it can raise since at once. */
	if (b->view.max_event_time > in->max_event_time)
		in->max_event_time = b->view.max_event_time;
	since = young_since(in);
	for (size_t at = 0; at < b->n_events; at += APPLY_TOUCH) {
		const size_t end = at + APPLY_TOUCH < b->n_events ? at + APPLY_TOUCH : b->n_events;

		for (size_t i = at; i < end; i++)
			if (since == INT64_MIN || in->install_times[b->events[i].uid] >= since)
				touch(&in->latest[b->events[i].uid]);
		for (size_t i = at; i < end; i++)
			apply_event(in, &b->events[i], since);
	}
	*rows += b->rows;
	*loaded += (int64_t)b->n_events + b->unapplied;
	*other += b->other;
	csv_reader_give_back(r, b->csv);
	b->csv = NULL;
}

/*
 * The events rows of r after its header, on two threads: ret as the
 * one-thread loop's (0 at the end, or the reader's failure after every row
 * before it was applied).
 */
static int parse_events_batched(struct ingest_parse *in, struct csv_reader *r, const char *path,
				const struct columns *cols, struct progress *prog, int64_t *rows,
				int64_t *loaded, int64_t *other, struct ltv_err *err)
{
	const size_t n_res = in->resolvers >= RESOLVERS_MAX ? RESOLVERS_MAX : 1;
	struct events_job job = { .path = path, .cols = cols, .n_res = n_res };
	const size_t ring = n_res + 1;
	struct csv_batch *csv;
	size_t k = 0, applied = 0;
	int ret;
	void *done;

	for (size_t i = 0; i < job.n_res; i++) {
		struct resolver *w = &job.res[i];

		w->job = &job;
		bqueue_init(&w->todo, EVENT_BATCHES);
		bqueue_init(&w->done, EVENT_BATCHES);
		w->running = pthread_create(&w->thread, NULL, events_worker_main, w) == 0;
	}
	while ((ret = csv_reader_next_batch(r, &csv, err)) == 1) {
		struct event_batch *b = &job.batch[k % ring];
		struct resolver *w = &job.res[k++ % job.n_res];

		batch_start(b, in, csv);
		if (!w->running || bqueue_push(&w->todo, b) < 0) {
			resolve_batch(&job, b); /* no worker: resolve here, in order all the same */
			(void)bqueue_push(&w->done, b);
		}
		/* Batches come back in the order they went: apply the oldest once the ring is full. */
		if (k - applied < ring)
			continue;
		(void)bqueue_pop(&job.res[applied++ % job.n_res].done, &done);
		apply_batch(in, r, done, rows, loaded, other);
		prog->total = (uint64_t)((double)*rows * (double)csv_reader_file_size(r) /
					 ((double)csv_batch_bytes_read(csv) + 1));
		progress_update(prog, (uint64_t)*rows);
	}
	for (; applied < k; applied++) {
		(void)bqueue_pop(&job.res[applied % job.n_res].done, &done);
		apply_batch(in, r, done, rows, loaded, other);
	}
	for (size_t i = 0; i < job.n_res; i++) {
		struct resolver *w = &job.res[i];

		bqueue_close(&w->todo);
		if (w->running)
			pthread_join(w->thread, NULL);
		bqueue_release(&w->todo);
		bqueue_release(&w->done);
	}
	for (size_t i = 0; i < EVENT_BATCHES; i++) {
		free(job.batch[i].events);
		free(job.batch[i].fields.fields);
		free(job.batch[i].keys);
		free(job.batch[i].uids);
	}
	return ret;
}

int ingest_parse_file(struct ingest_parse *in, const char *path, enum input_kind kind,
		      int64_t *out_rows, int64_t *out_rejected, struct ltv_err *err)
{
	return ingest_parse_file_hashed(in, path, kind, out_rows, out_rejected, NULL, err);
}

int ingest_parse_file_hashed(struct ingest_parse *in, const char *path, enum input_kind kind,
			     int64_t *out_rows, int64_t *out_rejected, char *out_hash,
			     struct ltv_err *err)
{
	struct hasher raw = { NULL };
	struct csv_reader *r = NULL;
	struct columns cols = { 0 };
	struct progress prog;
	struct populate fresh;
	char **fields;
	size_t n, line;
	int64_t rows = 0, loaded = 0, other = 0;
	const int is_users = kind == INPUT_USERS;
	int ret, batched;

	*out_rows = *out_rejected = 0;
	populate_init(&fresh);
	r = csv_reader_open(path, err);
	if (!r)
		return err->code;
	csv_reader_set_delimiter(r, config_delimiter(in->cfg)); /* validated with the config */
	if (out_hash) {
		hasher_init(&raw);
		csv_reader_hash_raw(r, &raw);
	}
	/*
	 * Reading and splitting a large file on a second thread takes a third
	 * of this thread's work off it (bench/ingest.sh); a small one is read
	 * before a thread would have started.
	 */
	if (csv_reader_file_size(r) >= READ_AHEAD_MIN)
		csv_reader_set_read_ahead(r, 1);
	/*
	 * Events in batches on two resolve workers (score): each splits its own
	 * (csv_reader_set_raw_batches). Not with one (ingest), whose worker is
	 * then its busiest thread: bench/ingest_ab.sh 5 gave 2.95 -> 3.17 CPU s
	 * and 2.01 -> 2.17 s of wall with it.
	 */
	if (!is_users && in->parse_threads >= 2 && in->resolvers >= RESOLVERS_MAX)
		csv_reader_set_raw_batches(r, 1);
	ret = csv_reader_next(r, &fields, &n, &line, err);
	if (ret == 0)
		ret = err_set(err, LTV_EINVAL, "%s: the file is empty; it needs a header row", path);
	if (ret < 0)
		goto out;
	{
		struct csv_fault fault;

		csv_reader_fault(r, &fault);
		if (fault.kind != CSV_FAULT_NONE) {
			char why[256];

			csv_fault_describe(&fault, why, sizeof(why));
			ret = err_set(err, LTV_EINVAL, "%s:%zu: header field %zu %s", path, line,
				      fault.field + 1, why);
			goto out;
		}
	}
	cols.n_header = n;
	cols.names = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		cols.names[i] = xstrdup(fields[i]);
	in->first_reject[0] = '\0';
	ret = is_users ? map_user_columns(in, fields, n, path, &cols, err)
		       : map_event_columns(in, fields, n, path, &cols, err);
	if (ret < 0)
		goto out;
	/*
	 * The header's chunk says about how many users follow: size the id map
	 * for them once. 15/16 of the estimate, since the table doubles at powers
	 * of two: one too many would double it for nothing, and one too few costs
	 * one doubling at the end, as without the estimate.
	 */
	if (is_users) {
		const size_t expected = (size_t)csv_reader_estimate_records(r);

		strmap_reserve(&in->user_ids, in->user_ids.n + expected / 16 * 15);
		/* The arrays by uid, once: doubling them copied them and took twice their pages. */
		in->users_expected = expected ? in->n_users + expected + expected / 16 : 0;
		if (in->users_expected + 1 > in->cap_install_times) {
			in->cap_install_times = in->users_expected + 1;
			in->install_times = xrealloc_huge(in->install_times, in->cap_install_times *
							  sizeof(*in->install_times));
		}
		if (in->users_expected + 1 > in->cap_latest) {
			in->cap_latest = in->users_expected + 1;
			in->latest = xrealloc_huge(in->latest, in->cap_latest * sizeof(*in->latest));
		}
		populate_add(&fresh, in->user_ids.slots, in->user_ids.cap * in->user_ids.stride);
		populate_add(&fresh, in->install_times, in->cap_install_times * sizeof(*in->install_times));
		populate_add(&fresh, in->latest, in->cap_latest * sizeof(*in->latest));
		populate_start(&fresh);
	} else if (in->young_span && in->young_as_of == INT64_MIN)
		tail_time_hint(in, path, &cols);
	progress_start(&prog, is_users ? "ingest users" : "ingest events", "rows", 0);
	batched = !is_users && in->parse_threads >= 2 && csv_reader_has_batches(r);
	/* Users go one by one: each takes the next uid and goes to the writer in order. */
	if (batched)
		ret = parse_events_batched(in, r, path, &cols, &prog, &rows, &loaded, &other, err);
	else while ((ret = csv_reader_next(r, &fields, &n, &line, err)) == 1) {
		struct csv_fault fault;
		int r1;

		/* The id map's slots of this row and the next TOUCH_ROWS - 1, loaded at once. */
		if ((rows + other) % TOUCH_ROWS == 0) {
			const char *keys[TOUCH_ROWS];

			for (size_t k = 0; k < TOUCH_ROWS; k++)
				keys[k] = csv_reader_peek_field(r, k, (size_t)cols.user_id);
			strmap_touch_many(&in->user_ids, keys, TOUCH_ROWS);
		}
		csv_reader_fault(r, &fault);
		r1 = is_users ? ingest_user_row(in, path, line, fields, n, &cols, &fault, err)
			      : ingest_event_row(in, path, line, fields, n, &cols, &fault);

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
	if (ret < 0)
		goto out;
	LOG(LOG_INFO, "%s: %lld rows, %lld loaded, %lld rejected, %.0f rows/s", path,
	    (long long)rows, (long long)loaded, (long long)(rows - loaded),
	    (double)rows / (now_seconds() - prog.started + 1e-9));
	if (other)
		LOG(LOG_INFO, "%s: %lld rows of other shards' users skipped", path, (long long)other);
	if (batched)
		LOG(LOG_INFO, "%s: rows on 2 threads", path);
	if (is_users) {
		in->users_other_shards += other;
		in->users_loaded += loaded;
		in->users_rejected += rows - loaded;
	} else {
		in->events_other_shards += other;
		in->events_loaded += loaded;
		in->events_rejected += rows - loaded;
	}
	*out_rows = rows;
	*out_rejected = rows - loaded;
	ret = check_reject_rate(in, path, rows, rows - loaded, err);
	if (ret == 0 && out_hash)
		ret = csv_reader_raw_hash_hex(r, out_hash, err);
out:
	hasher_release(&raw);
	populate_stop(&fresh);
	for (size_t i = 0; cols.names && i < cols.n_header; i++)
		free(cols.names[i]);
	free(cols.names);
	free(cols.attributes);
	csv_reader_free(r);
	return ret;
}

static int compare_day_key(const void *a, const void *b)
{
	const struct ingest_day_agg *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static struct user_day_row day_row(const struct ingest_day_agg *d)
{
	return (struct user_day_row){ (int64_t)(d->key >> DAY_BITS), (int64_t)(d->key & MAX_DAY),
				      d->revenue, d->events, d->purchases };
}

static struct ingest_day_agg day_agg(const struct user_day_row *r)
{
	return (struct ingest_day_agg){ (uint64_t)r->uid << DAY_BITS | (uint64_t)r->day, r->revenue,
					r->events, r->purchases };
}

/*
 * Sorts a user's run of rows by day, where events came out of order. The sort
 * is qsort on the aggregates themselves, as before rows were made straight
 * from them, so aggregates of one day are summed in the same order and the
 * sums are the same to the bit.
 */
static void sort_user_run(struct user_day_row *rows, size_t n)
{
	struct ingest_day_agg *tmp = xmalloc(n * sizeof(*tmp));

	for (size_t i = 0; i < n; i++)
		tmp[i] = day_agg(&rows[i]);
	qsort(tmp, n, sizeof(*tmp), compare_day_key);
	for (size_t i = 0; i < n; i++)
		rows[i] = day_row(&tmp[i]);
	free(tmp);
}

/* Whether the aggregate with this key is kept: its user installed at or after since. */
static int keeps_day(const struct ingest_parse *in, uint64_t key, int64_t since)
{
	return since == INT64_MIN || in->install_times[key >> DAY_BITS] >= since;
}

/* Whether a user's latest aggregate exists and is kept (keeps_day). */
static int keeps_latest(const struct ingest_parse *in, size_t uid, int64_t since)
{
	return in->latest[uid].events != 0 && keeps_day(in, (uint64_t)uid << DAY_BITS, since);
}

/* How many aggregates days_in_key_order writes for the users installed at or after since. */
static size_t count_kept_days(const struct ingest_parse *in, int64_t since)
{
	size_t n = 0;

	if (since == INT64_MIN)
		n = in->n_days;
	else
		for (size_t i = 0; i < in->n_days; i++)
			n += (size_t)keeps_day(in, in->days[i].key, since);
	for (size_t uid = 1; uid <= in->n_users && in->latest; uid++)
		n += (size_t)keeps_latest(in, uid, since);
	return n;
}

/*
 * One of the two halves of the users whose aggregates days_in_key_order
 * groups: uids [lo, hi), and their rows from first on. Each half reads every
 * aggregate and handles its own users' alone, so the halves touch disjoint
 * counts and rows and run on two threads at once (halves_run); the rows are
 * the ones one thread would write, in the same places, summed in the same
 * order.
 */
struct group_half {
	struct ingest_parse *in;
	int64_t since;
	struct user_day_row *rows;
	size_t *start;   /* by uid + 1: its kept aggregates, then (prefix sums) where its run begins */
	size_t lo, hi;   /* uids */
	size_t first, m; /* its rows begin at first; m of them once merged */
};

/* Whether the aggregate with this key is one of h's users'. */
static int in_half(const struct group_half *h, uint64_t key)
{
	return (key >> DAY_BITS) - h->lo < h->hi - h->lo;
}

/*
 * Counts the kept aggregates of each of h's users into start[uid + 1]. In a
 * file ordered by time consecutive aggregates are other users', so each
 * count misses the cache: the lines are asked for PREFETCH_ROWS aggregates
 * ahead.
 */
static void count_half(void *arg)
{
	struct group_half *h = arg;
	const struct ingest_parse *in = h->in;
	const size_t n = in->n_days, n_latest = in->latest ? in->n_users : 0;
	size_t *start = h->start;

	for (size_t i = 0; i < n; i++) {
		const uint64_t key = in->days[i].key;

		if (i + PREFETCH_ROWS < n && in_half(h, in->days[i + PREFETCH_ROWS].key))
			__builtin_prefetch(&start[(in->days[i + PREFETCH_ROWS].key >> DAY_BITS) + 1], 1);
		if (in_half(h, key))
			start[(key >> DAY_BITS) + 1] += (size_t)keeps_day(in, key, h->since);
	}
	for (size_t uid = h->lo; uid < h->hi && uid <= n_latest; uid++)
		start[uid + 1] += (size_t)keeps_latest(in, uid, h->since);
}

/*
 * Merges the rows of one (user, day) that events out of order split, in
 * h's rows (sorted by user, then day), moving them to the front of its range.
 */
static void merge_half(struct group_half *h, size_t end)
{
	struct user_day_row *rows = h->rows;
	size_t m = h->first;

	for (size_t i = h->first; i < end; i++) {
		if (m > h->first && rows[m - 1].uid == rows[i].uid && rows[m - 1].day == rows[i].day) {
			rows[m - 1].revenue += rows[i].revenue;
			rows[m - 1].events += rows[i].events;
			rows[m - 1].purchases += rows[i].purchases;
			continue;
		}
		if (m != i)
			rows[m] = rows[i];
		m++;
	}
	h->m = m - h->first;
}

/*
 * Writes h's users' aggregates to their runs (start[uid] from the prefix
 * sums: where uid's run begins, then, once written, where it ends), the
 * latest one last; then sorts each run by day where events came out of
 * order, and merges. The row's line is asked for half as far ahead as its
 * count's, once that count is cached.
 */
static void scatter_half(void *arg)
{
	struct group_half *h = arg;
	const struct ingest_parse *in = h->in;
	const size_t n = in->n_days, n_latest = in->latest ? in->n_users : 0;
	size_t *start = h->start, from = h->first;

	for (size_t i = 0; i < n; i++) {
		const uint64_t key = in->days[i].key;

		if (i + PREFETCH_ROWS < n && in_half(h, in->days[i + PREFETCH_ROWS].key))
			__builtin_prefetch(&start[in->days[i + PREFETCH_ROWS].key >> DAY_BITS], 1);
		if (i + PREFETCH_ROWS / 2 < n && in_half(h, in->days[i + PREFETCH_ROWS / 2].key))
			__builtin_prefetch(&h->rows[start[in->days[i + PREFETCH_ROWS / 2].key >> DAY_BITS]], 1);
		if (in_half(h, key) && keeps_day(in, key, h->since))
			h->rows[start[key >> DAY_BITS]++] = day_row(&in->days[i]);
	}
	for (size_t uid = h->lo; uid < h->hi && uid <= n_latest; uid++) {
		if (keeps_latest(in, uid, h->since)) {
			const struct ingest_day_agg d = latest_agg((int64_t)uid, &in->latest[uid]);

			h->rows[start[uid]++] = day_row(&d);
		}
	}
	/* start[uid] is now the end of uid's run, which begins where uid - 1's ended. */
	for (size_t u = h->lo; u < h->hi; from = start[u], u++) {
		for (size_t i = from + 1; i < start[u]; i++) {
			if (h->rows[i - 1].day > h->rows[i].day) {
				sort_user_run(h->rows + from, start[u] - from);
				break;
			}
		}
	}
	merge_half(h, from);
}

/*
 * The first uid of the second half: where half the rows have been written
 * (start holds prefix sums, by uid), so the halves' scatters take as long.
 */
static size_t row_middle(const size_t *start, size_t n_users)
{
	size_t lo = 1, hi = n_users + 1;
	const size_t half = start[n_users + 1] / 2;

	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;

		if (start[mid] < half)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The aggregates of the users installed at or after since (INT64_MIN: every
 * user) as rows grouped by user (a stable counting sort on uid), each user's
 * run sorted by day where events came out of order and its rows of one day
 * merged: written straight into the rows, so no sorted copy of the
 * aggregates is made (at a million users that copy was 100 MB of peak
 * memory). The aggregates are the finished ones (in->days) followed by each
 * user's latest one in uid order, the order finish_latest would have
 * appended them in: read where they are, as appending a million of them grew
 * in->days by up to 64 MB of fresh pages on this thread. The rows
 * (count_kept_days of them) are being faulted in by pf until prefault_wait.
 * The counting and the writing each run as two halves of the users on two
 * threads (in->parse_threads): this was the longest serial pass of ingest's
 * tail (0.15-0.25 s at a million users) with the other core idle. Returns
 * how many rows there are.
 */
static size_t days_in_key_order(struct ingest_parse *in, int64_t since, struct user_day_row *rows,
				struct prefault *pf)
{
	const size_t n = in->n_days, n_latest = in->latest ? in->n_users : 0;
	const size_t end = in->n_users + 1;
	struct group_half h[2];
	uint64_t prev = 0;
	size_t *start, k = 0;
	int ordered = 1;

	for (size_t i = 0; i < n && ordered; i++) {
		ordered = prev < in->days[i].key;
		prev = in->days[i].key;
	}
	for (size_t uid = 1; uid <= n_latest && ordered; uid++) {
		if (in->latest[uid].events == 0)
			continue;
		ordered = prev < latest_agg((int64_t)uid, &in->latest[uid]).key;
		prev = latest_agg((int64_t)uid, &in->latest[uid]).key;
	}
	/* Strictly increasing keys: no run to sort, no day to merge. */
	if (ordered) {
		prefault_wait(pf);
		for (size_t i = 0; i < n; i++)
			if (keeps_day(in, in->days[i].key, since))
				rows[k++] = day_row(&in->days[i]);
		for (size_t uid = 1; uid <= n_latest; uid++) {
			if (keeps_latest(in, uid, since)) {
				const struct ingest_day_agg d = latest_agg((int64_t)uid, &in->latest[uid]);

				rows[k++] = day_row(&d);
			}
		}
		return k;
	}
	start = xmalloc_huge((in->n_users + 2) * sizeof(*start));
	memset(start, 0, (in->n_users + 2) * sizeof(*start));
	for (int i = 0; i < 2; i++)
		h[i] = (struct group_half){ .in = in, .since = since, .rows = rows, .start = start };
	h[0].lo = 1;
	h[0].hi = h[1].lo = 1 + in->n_users / 2;
	h[1].hi = end;
	halves_run(count_half, &h[0], &h[1], in->parse_threads);
	for (size_t u = 1; u <= end; u++)
		start[u] += start[u - 1];
	h[0].hi = h[1].lo = row_middle(start, in->n_users);
	h[0].first = start[h[0].lo];
	h[1].first = start[h[1].lo];
	prefault_wait(pf);
	halves_run(scatter_half, &h[0], &h[1], in->parse_threads);
	free(start);
	/* The second half's rows follow the first's, closer when the first merged some. */
	if (h[0].m < h[1].first)
		memmove(rows + h[0].m, rows + h[1].first, h[1].m * sizeof(*rows));
	return h[0].m + h[1].m;
}

/*
 * ingest.negative_revenue: subtract. A day's refunds can exceed its purchases
 * (the purchase was on an earlier day): its revenue is floored at 0, so no
 * day and no label is ever negative, and a day whose refunds took all its
 * revenue is not a paying day.
 */
static void floor_refunded_days(struct ingest_parse *in, struct user_day_row *rows, size_t n)
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
 * Groups the aggregates into rows (n of them at most, count_kept_days),
 * whose bytes from fresh on are pages never touched: those (120 MB at a
 * million users) are faulted in on another thread while this one counts
 * the aggregates of each user (prefault_start): their zeroing was a third of
 * what this single-threaded tail of ingest cost (perf), with the other core
 * idle. Returns how many rows there are.
 */
static size_t group_days(struct ingest_parse *in, int64_t installed_since,
			 struct user_day_row *rows, size_t n, size_t fresh)
{
	const size_t bytes = n * sizeof(*rows);
	struct prefault pf;

	prefault_start(&pf, (char *)rows + (fresh < bytes ? fresh : bytes), fresh < bytes ? bytes - fresh : 0);
	n = days_in_key_order(in, installed_since, rows, &pf);
	prefault_wait(&pf);
	free(in->latest);
	in->latest = NULL;
	free(in->days);
	in->days = NULL;
	in->n_days = 0;
	if (in->subtract_refunds)
		floor_refunded_days(in, rows, n);
	return n;
}

/*
 * The aggregates in key order, which is the table's primary-key order,
 * merging those of one (user, day) that events out of order split.
 */
void ingest_parse_user_days(struct ingest_parse *in, int64_t installed_since,
			    struct user_day_row **out_rows, size_t *out_n)
{
	struct user_day_row *rows;
	size_t n;

	/* The id map is not needed any more, and its table is the largest block: free it first. */
	strmap_release(&in->user_ids);
	n = count_kept_days(in, installed_since);
	rows = xmalloc_huge((n ? n : 1) * sizeof(*rows));
	*out_n = group_days(in, installed_since, rows, n, 0);
	*out_rows = rows;
}

/*
 * The id map's table is no longer needed when the rows are, and its pages
 * are faulted in: the rows' block begins with them (48 of ingest's 120 MB
 * at a million users), then with the caller's spare blocks, instead of with
 * fresh pages the kernel must zero.
 */
void ingest_parse_user_days_mapped(struct ingest_parse *in, const struct mapped_piece *spare,
				   size_t n_spare, struct mapped_block *out_rows, size_t *out_n)
{
	struct mapped_piece *old = xcalloc(n_spare + 1, sizeof(*old));
	size_t n_old = 0, n;

	old[0].p = strmap_release_keep_table(&in->user_ids, &old[0].len);
	n_old += old[0].p != NULL;
	for (size_t i = 0; i < n_spare; i++)
		old[n_old++] = spare[i];
	n = count_kept_days(in, INT64_MIN);
	mapped_block_make(out_rows, old, n_old, n * sizeof(struct user_day_row));
	free(old);
	*out_n = group_days(in, INT64_MIN, out_rows->p, n, out_rows->fresh_from);
}

/* Sets how times and negative revenue are read, from columns.time_format and ingest.*. */
static int choose_time_parser(struct ingest_parse *in, struct ltv_err *err)
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

void ingest_parse_init(struct ingest_parse *in, const struct config *cfg,
		       const struct shard_spec *shard, ingest_user_fn on_user, void *on_user_arg)
{
	memset(in, 0, sizeof(*in));
	in->cfg = cfg;
	in->shard = shard;
	in->on_user = on_user;
	in->on_user_arg = on_user_arg;
	in->max_event_time = INT64_MIN;
	in->young_as_of = in->time_hint = INT64_MIN;
	in->parse_threads = config_jobs(cfg) >= 2 ? 2 : 1;
	in->resolvers = 1;
	strmap_init(&in->user_ids);
}

static int open_rejects(struct ingest_parse *in, const char *run_id, struct ltv_err *err)
{
	const char *dir = in->cfg->ingest.rejects_dir;

	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return err_set(err, LTV_EIO, "cannot create rejects directory '%s': %s", dir,
			       strerror(errno));
	in->rejects_path = xasprintf("%s/%s.rejects.csv", dir, run_id);
	in->rejects = fopen(in->rejects_path, "w");
	if (!in->rejects)
		return err_set(err, LTV_EIO, "cannot write rejects file '%s': %s", in->rejects_path,
			       strerror(errno));
	fputs("file,line,field,reason\n", in->rejects);
	return 0;
}

int ingest_parse_open(struct ingest_parse *in, const char *run_id, struct ltv_err *err)
{
	const int ret = choose_time_parser(in, err);

	return ret < 0 ? ret : open_rejects(in, run_id, err);
}

void ingest_parse_young_only(struct ingest_parse *in, int64_t as_of, int64_t span)
{
	in->young_as_of = as_of;
	in->young_span = span;
}

int ingest_parse_young_exact(const struct ingest_parse *in)
{
	return in->time_hint == INT64_MIN || in->time_hint <= in->max_event_time;
}

void ingest_parse_known_user(struct ingest_parse *in, const char *user_id, int64_t uid,
			     int64_t install_time)
{
	strmap_put(&in->user_ids, user_id, uid);
	user_add(in, uid, install_time);
	in->n_users++;
}

void ingest_parse_release(struct ingest_parse *in)
{
	if (in->rejects)
		fclose(in->rejects);
	/* Keep the rejects file only when it has something to say. */
	if (in->rejects_path && in->users_rejected + in->events_rejected == 0)
		unlink(in->rejects_path);
	free(in->rejects_path);
	free(in->days);
	free(in->install_times);
	free(in->latest);
	strmap_release(&in->user_ids);
	tzone_free(in->tz);
	memset(in, 0, sizeof(*in));
}
