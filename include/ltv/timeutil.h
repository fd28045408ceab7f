/*
 * Time as ltvpipe uses it: UTC seconds since the epoch (int64), parsed from
 * ISO 8601 and printed back the same way. Day indices are whole days since
 * install (DESIGN.md "Time, windows and labels").
 */
#ifndef LTV_TIMEUTIL_H
#define LTV_TIMEUTIL_H

#include <stdint.h>
#include <stddef.h>

#define SECONDS_PER_DAY 86400

/*
 * Parses an ISO 8601 date or date-time into UTC epoch seconds.
 * Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM", "YYYY-MM-DDTHH:MM:SS", optional
 * fractional seconds (truncated), 'T' or a single space as separator, and an
 * optional zone: "Z", "+HH:MM", "+HHMM", "+HH" (converted to UTC). Leading and
 * trailing spaces are ignored. Validates ranges (month 1-12, day within the
 * month incl. leap years, hour 0-23, minute 0-59, second 0-60).
 * Returns 0, or LTV_EINVAL when s is not such a time.
 */
int time_parse_iso8601(const char *s, int64_t *out_ts);

/* What a parsed ISO 8601 text said about its zone. */
enum time_form {
	TIME_DATE,    /* a date alone: a calendar day */
	TIME_NO_ZONE, /* a date-time without a zone: *out_ts is its wall clock read as UTC */
	TIME_ZONED,   /* a date-time with "Z" or an offset: *out_ts is exact */
};

/* time_parse_iso8601 that also says which of the forms above s has. */
int time_parse_iso8601_form(const char *s, int64_t *out_ts, enum time_form *out_form);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with NUL) into buf; returns buf. */
char *time_format_iso8601(int64_t ts, char *buf, size_t size);
/* Writes "YYYY-MM-DD" into buf; returns buf. */
char *time_format_date(int64_t ts, char *buf, size_t size);

/* floor((t - t0) / 86400) for any sign (floor, not truncation). */
int64_t time_day_index(int64_t t0, int64_t t);

/* Epoch seconds of 00:00:00 UTC of the day containing ts. */
int64_t time_day_start(int64_t ts);

/*
 * Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m in 1..12,
 * d in 1..31), and back: Howard Hinnant's exact integer algorithms.
 */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
void time_civil_from_days(int64_t days, int64_t *out_y, unsigned *out_m, unsigned *out_d);

#endif
