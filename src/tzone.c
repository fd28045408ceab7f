/*
 * Time zones for ingest.timezone: a fixed offset, or an IANA zone read from
 * its TZif file (RFC 8536). Only what converting wall-clock times to UTC
 * needs is kept: the transition times with the offset after each, and the
 * footer's POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3") for times after the
 * last transition, which "slim" TZif files stop listing early.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/timeutil.h"
#include "ltv/tzone.h"

/* One end of daylight saving time: month m, week w (5 = last), weekday d, at secs local. */
struct rule_day {
	int m, w, d;
	int32_t secs;
};

struct tzone {
	int64_t *at;      /* transition times, increasing */
	int32_t *off;     /* offset in effect from at[i] on */
	size_t n;
	int32_t initial;  /* before the first transition, or the fixed offset */
	int has_rule;     /* the footer's rule applies after the last transition */
	int has_dst;
	int32_t std_off, dst_off;
	struct rule_day start, end;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int two_digits(const char *s)
{
	return s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

/* "+05:30", "-0800", "+05", "UTC", "Z": seconds east of UTC; -1 when not one. */
static int parse_fixed(const char *s, int32_t *out)
{
	int sign, hh, mm = 0;

	if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0 || strcmp(s, "GMT") == 0) {
		*out = 0;
		return 0;
	}
	if ((s[0] != '+' && s[0] != '-') || !two_digits(s + 1))
		return -1;
	sign = s[0] == '-' ? -1 : 1;
	hh = (s[1] - '0') * 10 + s[2] - '0';
	s += 3;
	if (*s == ':')
		s++;
	if (*s) {
		if (!two_digits(s) || s[2])
			return -1;
		mm = (s[0] - '0') * 10 + s[1] - '0';
	}
	if (hh > 14 || mm > 59)
		return -1;
	*out = sign * (hh * 3600 + mm * 60);
	return 0;
}

/* A number of a POSIX TZ string, advancing *p; -1 when none. */
static int read_num(const char **p, int max_digits)
{
	int v = 0, n = 0;

	while (**p >= '0' && **p <= '9' && n < max_digits) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n ? v : -1;
}

/* [+-]hh[:mm[:ss]] as seconds; returns -1 on a malformed one. */
static int read_hms(const char **p, int32_t *out)
{
	int sign = 1, h, m = 0, s = 0;

	if (**p == '+' || **p == '-')
		sign = *(*p)++ == '-' ? -1 : 1;
	if ((h = read_num(p, 3)) < 0)
		return -1;
	if (**p == ':') {
		(*p)++;
		if ((m = read_num(p, 2)) < 0)
			return -1;
		if (**p == ':') {
			(*p)++;
			if ((s = read_num(p, 2)) < 0)
				return -1;
		}
	}
	*out = sign * (h * 3600 + m * 60 + s);
	return 0;
}

static int skip_name(const char **p)
{
	const char *s = *p;

	if (*s == '<') {
		while (*s && *s != '>')
			s++;
		if (*s != '>')
			return -1;
		*p = s + 1;
		return 0;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	if (s - *p < 3)
		return -1;
	*p = s;
	return 0;
}

/* ",Mm.w.d[/time]"; only the M form, the one tzdata writes. */
static int read_rule_day(const char **p, struct rule_day *out)
{
	if (*(*p)++ != ',' || *(*p)++ != 'M')
		return -1;
	out->m = read_num(p, 2);
	if (out->m < 1 || out->m > 12 || *(*p)++ != '.')
		return -1;
	out->w = read_num(p, 1);
	if (out->w < 1 || out->w > 5 || *(*p)++ != '.')
		return -1;
	out->d = read_num(p, 1);
	if (out->d < 0 || out->d > 6)
		return -1;
	out->secs = 7200;
	if (**p == '/') {
		(*p)++;
		return read_hms(p, &out->secs);
	}
	return 0;
}

/* The TZif footer; a rule it cannot read leaves has_rule 0 (the last offset then holds). */
static void parse_footer(struct tzone *tz, const char *s)
{
	int32_t std, dst;

	if (skip_name(&s) < 0 || read_hms(&s, &std) < 0)
		return;
	tz->std_off = -std;
	if (*s == '\0') {
		tz->has_rule = 1;
		return;
	}
	if (skip_name(&s) < 0)
		return;
	dst = std - 3600;
	if (*s != ',' && read_hms(&s, &dst) < 0)
		return;
	tz->dst_off = -dst;
	if (read_rule_day(&s, &tz->start) < 0 || read_rule_day(&s, &tz->end) < 0 || *s)
		return;
	tz->has_dst = 1;
	tz->has_rule = 1;
}

static int64_t days_in(int64_t y, int m)
{
	return time_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : (unsigned)m + 1, 1) -
	       time_days_from_civil(y, (unsigned)m, 1);
}

/* Wall-clock seconds (in the zone's time before the change) when r happens in year y. */
static int64_t rule_local(const struct rule_day *r, int64_t y)
{
	const int64_t first = time_days_from_civil(y, (unsigned)r->m, 1);
	const int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
	int64_t day = (r->d - wd + 7) % 7 + (int64_t)(r->w - 1) * 7;

	if (day >= days_in(y, r->m))
		day -= 7;
	return (first + day) * SECONDS_PER_DAY + r->secs;
}

static int32_t rule_offset(const struct tzone *tz, int64_t t)
{
	int64_t y, start, end;
	unsigned m, d;

	if (!tz->has_dst)
		return tz->std_off;
	time_civil_from_days(time_day_index(0, t + tz->std_off), &y, &m, &d);
	start = rule_local(&tz->start, y) - tz->std_off;
	end = rule_local(&tz->end, y) - tz->dst_off;
	if (start < end)
		return t >= start && t < end ? tz->dst_off : tz->std_off;
	return t >= end && t < start ? tz->std_off : tz->dst_off; /* southern hemisphere */
}

int32_t tzone_offset_at(const struct tzone *tz, int64_t t)
{
	size_t lo = 0, hi = tz->n;

	if (tz->n == 0)
		return tz->has_rule ? rule_offset(tz, t) : tz->initial;
	if (t < tz->at[0])
		return tz->initial;
	if (t >= tz->at[tz->n - 1] && tz->has_rule)
		return rule_offset(tz, t);
	while (hi - lo > 1) { /* the last transition at or before t */
		const size_t mid = lo + (hi - lo) / 2;

		if (tz->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->off[lo];
}

int64_t tzone_local_to_utc(const struct tzone *tz, int64_t local)
{
	/* The offsets just before and after any transition near local; try the earlier first. */
	const int32_t a = tzone_offset_at(tz, local - 86400), b = tzone_offset_at(tz, local + 86400);

	if (tzone_offset_at(tz, local - a) == a)
		return local - a;
	if (tzone_offset_at(tz, local - b) == b)
		return local - b;
	return local - a; /* in a gap: read with the offset before it */
}

static int read_tzif(struct tzone *tz, const unsigned char *buf, size_t len)
{
	size_t pos = 0, timecnt, typecnt, charcnt, leapcnt, isstdcnt, isutcnt, v1;
	const unsigned char *times, *idx, *types;

	if (len < 44 || memcmp(buf, "TZif", 4) != 0)
		return -1;
	/* Skip the version 1 block (32-bit times); version 2+ repeats it with 64-bit ones. */
	v1 = 44 + be32(buf + 32) * 5 + be32(buf + 36) * 6 + be32(buf + 40) + be32(buf + 28) * 8 +
	     be32(buf + 24) + be32(buf + 20);
	if (buf[4] < '2' || v1 + 44 > len)
		return -1;
	pos = v1;
	if (memcmp(buf + pos, "TZif", 4) != 0)
		return -1;
	isutcnt = be32(buf + pos + 20);
	isstdcnt = be32(buf + pos + 24);
	leapcnt = be32(buf + pos + 28);
	timecnt = be32(buf + pos + 32);
	typecnt = be32(buf + pos + 36);
	charcnt = be32(buf + pos + 40);
	pos += 44;
	if (typecnt == 0 || pos + timecnt * 9 + typecnt * 6 + charcnt + leapcnt * 12 + isstdcnt +
	    isutcnt > len)
		return -1;
	times = buf + pos;
	idx = times + timecnt * 8;
	types = idx + timecnt;
	tz->n = timecnt;
	tz->at = xcalloc(timecnt + 1, sizeof(*tz->at));
	tz->off = xcalloc(timecnt + 1, sizeof(*tz->off));
	for (size_t i = 0; i < timecnt; i++) {
		if (idx[i] >= typecnt)
			return -1;
		tz->at[i] = be64(times + i * 8);
		tz->off[i] = (int32_t)be32(types + idx[i] * 6);
	}
	tz->initial = (int32_t)be32(types); /* type 0 is the one before the first transition */
	pos += timecnt * 9 + typecnt * 6 + charcnt + leapcnt * 12 + isstdcnt + isutcnt;
	if (pos < len && buf[pos] == '\n') {
		const unsigned char *end = memchr(buf + pos + 1, '\n', len - pos - 1);

		if (end) {
			char footer[128];
			const size_t n = (size_t)(end - buf - pos - 1);

			if (n < sizeof(footer)) {
				memcpy(footer, buf + pos + 1, n);
				footer[n] = '\0';
				parse_footer(tz, footer);
			}
		}
	}
	return 0;
}

static int load_file(struct tzone *tz, const char *name, struct ltv_err *err)
{
	const char *dir = getenv("TZDIR");
	char *path;
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f;
	int ret = 0;

	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	path = xasprintf("%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		ret = err_set(err, LTV_ECONFIG, "ingest.timezone: '%s' is neither a fixed offset "
			      "(UTC, +05:30, -0800) nor a zone of the tz database (%s: %s); use an "
			      "IANA name such as Europe/Paris", name, path, strerror(errno));
		goto out;
	}
	for (;;) {
		size_t got;

		ARRAY_GROW(buf, len + 65536, cap);
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0 || len > (1u << 20))
			break;
	}
	fclose(f);
	if (read_tzif(tz, buf, len) < 0)
		ret = err_set(err, LTV_ECONFIG, "ingest.timezone: '%s' is not a valid TZif file; "
			      "reinstall tzdata or use a fixed offset such as +01:00", path);
out:
	free(buf);
	free(path);
	return ret;
}

struct tzone *tzone_open(const char *name, struct ltv_err *err)
{
	struct tzone *tz = xcalloc(1, sizeof(*tz));

	if (parse_fixed(name, &tz->initial) == 0)
		return tz;
	/* A name, never a path: no absolute paths, no "..", only the database's characters. */
	if (!*name || name[0] == '/' || strstr(name, "..") ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-+") !=
	    strlen(name)) {
		err_set(err, LTV_ECONFIG, "ingest.timezone: '%s' is neither a fixed offset (UTC, "
			"+05:30, -0800) nor an IANA zone name such as Europe/Paris", name);
		tzone_free(tz);
		return NULL;
	}
	if (load_file(tz, name, err) < 0) {
		tzone_free(tz);
		return NULL;
	}
	return tz;
}

void tzone_free(struct tzone *tz)
{
	if (!tz)
		return;
	free(tz->at);
	free(tz->off);
	free(tz);
}
