/*
 * ISO 8601 timestamps to and from UTC epoch seconds, and whole-day arithmetic.
 * Ingest parses millions of timestamps, so the parser is a hand-written scan
 * over fixed-width digits rather than sscanf or strptime, and the calendar
 * maths is Howard Hinnant's days-from-civil algorithm: pure integer arithmetic
 * that is exact for every proleptic Gregorian date and never consults TZ or the
 * C library's notion of local time (timegm is not in C11, mktime reads TZ).
 */
#include <assert.h>
#include <stdio.h>

#include "ltv/timeutil.h"
#include "ltv/common.h"

int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

void time_civil_from_days(int64_t z, int64_t *out_y, unsigned *out_m, unsigned *out_d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	const unsigned m = mp < 10 ? mp + 3 : mp - 9;

	*out_d = doy - (153 * mp + 2) / 5 + 1;
	*out_m = m;
	*out_y = (int64_t)yoe + era * 400 + (m <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *p; advances *p. Returns 0, or -1 if any is not a digit. */
static int read_digits(const char **p, int n, unsigned *out_v)
{
	const char *s = *p;
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*p = s + n;
	*out_v = v;
	return 0;
}

/* Parses "Z", "+HH:MM", "+HHMM" or "+HH" (or '-') into seconds east of UTC. */
static int read_zone(const char **p, int64_t *out_offset)
{
	const char *s = *p;
	unsigned hh, mm = 0;
	int sign;

	if (*s == 'Z' || *s == 'z') {
		*p = s + 1;
		*out_offset = 0;
		return 0;
	}
	if (*s != '+' && *s != '-')
		return -1;
	sign = *s == '-' ? -1 : 1;
	s++;
	if (read_digits(&s, 2, &hh) < 0)
		return -1;
	if (*s == ':') {
		s++;
		if (read_digits(&s, 2, &mm) < 0)
			return -1;
	} else if (is_digit(*s)) {
		if (read_digits(&s, 2, &mm) < 0)
			return -1;
	}
	if (hh > 23 || mm > 59)
		return -1;
	*p = s;
	*out_offset = sign * (int64_t)(hh * 3600 + mm * 60);
	return 0;
}

int time_parse_iso8601(const char *s, int64_t *out_ts)
{
	enum time_form form;

	return time_parse_iso8601_form(s, out_ts, &form);
}

int time_parse_iso8601_form(const char *s, int64_t *out_ts, enum time_form *out_form)
{
	unsigned year, mon, day, hh = 0, mi = 0, ss = 0;
	int64_t offset = 0;
	enum time_form form = TIME_DATE;

	if (!s)
		return LTV_EINVAL;
	while (*s == ' ')
		s++;
	if (read_digits(&s, 4, &year) < 0 || *s++ != '-' ||
	    read_digits(&s, 2, &mon) < 0 || *s++ != '-' ||
	    read_digits(&s, 2, &day) < 0)
		return LTV_EINVAL;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return LTV_EINVAL;

	/* A space is a separator only when a time follows; otherwise it is trailing. */
	if (*s == 'T' || (*s == ' ' && is_digit(s[1]))) {
		s++;
		if (read_digits(&s, 2, &hh) < 0 || *s++ != ':' || read_digits(&s, 2, &mi) < 0)
			return LTV_EINVAL;
		if (*s == ':') {
			s++;
			if (read_digits(&s, 2, &ss) < 0)
				return LTV_EINVAL;
			if (*s == '.' || *s == ',') {
				s++;
				if (!is_digit(*s))
					return LTV_EINVAL;
				while (is_digit(*s))
					s++;
			}
		}
		if (hh > 23 || mi > 59 || ss > 60)
			return LTV_EINVAL;
		form = TIME_NO_ZONE;
		if (*s == 'Z' || *s == 'z' || *s == '+' || *s == '-') {
			if (read_zone(&s, &offset) < 0)
				return LTV_EINVAL;
			form = TIME_ZONED;
		}
	}
	while (*s == ' ')
		s++;
	if (*s != '\0')
		return LTV_EINVAL;

	*out_ts = time_days_from_civil(year, mon, day) * SECONDS_PER_DAY +
		  (int64_t)(hh * 3600 + mi * 60 + ss) - offset;
	*out_form = form;
	return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	const int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

char *time_format_iso8601(int64_t ts, char *buf, size_t size)
{
	const int64_t days = floor_div(ts, SECONDS_PER_DAY);
	const int64_t sod = ts - days * SECONDS_PER_DAY;
	int64_t y;
	unsigned m, d;

	assert(buf);
	time_civil_from_days(days, &y, &m, &d);
	snprintf(buf, size, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
		 (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60));
	return buf;
}

char *time_format_date(int64_t ts, char *buf, size_t size)
{
	int64_t y;
	unsigned m, d;

	assert(buf);
	time_civil_from_days(floor_div(ts, SECONDS_PER_DAY), &y, &m, &d);
	snprintf(buf, size, "%04lld-%02u-%02u", (long long)y, m, d);
	return buf;
}

int64_t time_day_index(int64_t t0, int64_t t)
{
	return floor_div(t - t0, SECONDS_PER_DAY);
}

int64_t time_day_start(int64_t ts)
{
	return floor_div(ts, SECONDS_PER_DAY) * SECONDS_PER_DAY;
}
