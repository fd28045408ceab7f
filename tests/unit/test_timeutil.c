/*
 * Unit tests for timeutil.c: epoch values checked against `date -u -d ... +%s`,
 * zone conversion, range validation and floor semantics for day indices.
 */
#include "testutil.h"

#include "ltv/common.h"
#include "ltv/timeutil.h"

static int64_t parse_ok(const char *s)
{
	int64_t ts = INT64_MIN;

	if (time_parse_iso8601(s, &ts) != 0)
		fail_msg("expected '%s' to parse", s);
	return ts;
}

static void test_known_epochs(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("2024-02-29T12:00:00Z"), 1709208000);
	assert_int_equal(parse_ok("2000-03-01T00:00:00Z"), 951868800);
	assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1);
	assert_int_equal(parse_ok("1900-01-01T00:00:00Z"), -2208988800LL);
	assert_int_equal(parse_ok("2038-01-19T03:14:08Z"), 2147483648LL);
	assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), 253402300799LL);
	/* No zone means UTC; seconds and minutes optional. */
	assert_int_equal(parse_ok("2024-02-29T12:00:00"), 1709208000);
	assert_int_equal(parse_ok("2024-02-29T12:00"), 1709208000);
	assert_int_equal(parse_ok("2024-02-29 12:00:00"), 1709208000);
	assert_int_equal(parse_ok("  2024-02-29T12:00:00Z  "), 1709208000);
	assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), 1483228800);
}

static void test_date_only(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("2024-02-29"), 1709164800);
	assert_int_equal(parse_ok("1970-01-01"), 0);
	assert_int_equal(parse_ok("1969-12-31"), -86400);
	assert_int_equal(parse_ok(" 2024-02-29 "), 1709164800);
}

static void test_zones_and_fractions(void **state)
{
	(void)state;
	/* 12:00 at +05:30 is 06:30 UTC; 12:00 at -08:00 is 20:00 UTC. */
	assert_int_equal(parse_ok("2024-02-29T12:00:00+05:30"), 1709208000 - 19800);
	assert_int_equal(parse_ok("2024-02-29T12:00:00+0530"), 1709208000 - 19800);
	assert_int_equal(parse_ok("2024-02-29T12:00:00-0800"), 1709208000 + 28800);
	assert_int_equal(parse_ok("2024-02-29T12:00:00-08:00"), 1709208000 + 28800);
	assert_int_equal(parse_ok("2024-02-29T12:00:00+05"), 1709208000 - 18000);
	assert_int_equal(parse_ok("2024-02-29T12:00+00:00"), 1709208000);
	/* A zone can move the instant across midnight and across a year. */
	assert_int_equal(parse_ok("2024-01-01T01:00:00+02:00"), parse_ok("2023-12-31T23:00:00Z"));
	/* Fractions are truncated, not rounded. */
	assert_int_equal(parse_ok("2024-02-29T12:00:00.999Z"), 1709208000);
	assert_int_equal(parse_ok("2024-02-29T12:00:59.5"), 1709208059);
	assert_int_equal(parse_ok("2024-02-29T12:00:00.123456-08:00"), 1709208000 + 28800);
}

static void test_invalid(void **state)
{
	static const char *const bad[] = {
		"2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-01-00",
		"2024-01-01T24:00", "2024-01-01T23:60", "2024-01-01T23:59:61",
		"24:00", "garbage", "", "   ", "2024-1-01", "2024-01-1", "2024/01/01",
		"2024-01-01T", "2024-01-01T12", "2024-01-01T12:00:00.", "2024-01-01T12:00:00Zjunk",
		"2024-01-01T12:00:00+5", "2024-01-01T12:00:00+05:3", "2024-01-01T12:00:00+24:00",
		"2024-01-01Z", "2024-01-01  12:00", "12024-01-01", "1900-02-29",
	};
	int64_t ts = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (time_parse_iso8601(bad[i], &ts) != LTV_EINVAL)
			fail_msg("'%s' should be rejected", bad[i]);
	}
	assert_int_equal(ts, 42); /* untouched on failure */
	assert_int_equal(time_parse_iso8601(NULL, &ts), LTV_EINVAL);
	/* 2000 is a leap year (divisible by 400). */
	assert_int_equal(parse_ok("2000-02-29"), 951782400);
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(time_format_iso8601(1709208000, buf, sizeof(buf)), "2024-02-29T12:00:00Z");
	assert_string_equal(time_format_iso8601(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	assert_string_equal(time_format_iso8601(-1, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
	assert_string_equal(time_format_iso8601(-2208988800LL, buf, sizeof(buf)),
			    "1900-01-01T00:00:00Z");
	assert_string_equal(time_format_date(1709208000, buf, sizeof(buf)), "2024-02-29");
	assert_string_equal(time_format_date(-1, buf, sizeof(buf)), "1969-12-31");
	/* 21 bytes is enough, and a short buffer truncates instead of overflowing. */
	time_format_iso8601(1709208000, buf, 21);
	assert_int_equal(strlen(buf), 20);
	time_format_iso8601(1709208000, buf, 5);
	assert_string_equal(buf, "2024");
}

static void test_round_trip(void **state)
{
	char buf[32];
	int64_t back;

	(void)state;
	/* Every day from 1600 to 2400 with an odd time of day, both directions. */
	for (int64_t ts = -11676096000LL + 3723; ts < 13569465600LL; ts += 86400 * 7 + 1) {
		time_format_iso8601(ts, buf, sizeof(buf));
		assert_int_equal(time_parse_iso8601(buf, &back), 0);
		assert_int_equal(back, ts);
	}
}

static void test_day_index(void **state)
{
	(void)state;
	assert_int_equal(time_day_index(100, 50), -1);
	assert_int_equal(time_day_index(0, 0), 0);
	assert_int_equal(time_day_index(0, 86399), 0);
	assert_int_equal(time_day_index(0, 86400), 1);
	assert_int_equal(time_day_index(0, -1), -1);
	assert_int_equal(time_day_index(0, -86400), -1);
	assert_int_equal(time_day_index(0, -86401), -2);
	assert_int_equal(time_day_index(1000, 1000 + 3 * 86400 + 5), 3);

	assert_int_equal(time_day_start(1709208000), 1709164800);
	assert_int_equal(time_day_start(1709164800), 1709164800);
	assert_int_equal(time_day_start(-1), -86400);
	assert_int_equal(time_day_start(-86400), -86400);
}

/* Hinnant's civil-date conversions, exported for the sample generator. */
static void test_civil_days(void **state)
{
	int64_t y;
	unsigned m, d;

	(void)state;
	assert_int_equal(time_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(time_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(time_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(time_days_from_civil(2024, 2, 29) + 1, time_days_from_civil(2024, 3, 1));
	for (int64_t z = -800000; z <= 800000; z += 997) {
		time_civil_from_days(z, &y, &m, &d);
		assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
		assert_int_equal(time_days_from_civil(y, m, d), z);
	}
	time_civil_from_days(19782, &y, &m, &d); /* 2024-02-29 */
	assert_int_equal(y, 2024);
	assert_int_equal(m, 2);
	assert_int_equal(d, 29);
}

/*
 * The checked number parsers. Found by tests/fuzz/fuzz_parse: a subnormal
 * double parsed from hex but not from the %.17g text it prints as (strtod
 * reports ERANGE for any subnormal result), so a value could not round-trip.
 */
static void test_number_parsers(void **state)
{
	double d = 0;
	int64_t i = 0;

	(void)state;
	assert_int_equal(parse_double("1e-310", &d), 0);
	assert_true(d == 1e-310);
	assert_int_equal(parse_double("4.9406564584124654e-324", &d), 0);
	assert_true(d > 0 && d < 1e-323);
	assert_int_equal(parse_double("0x1p-1074", &d), 0);
	assert_int_equal(parse_double("1e309", &d), LTV_EINVAL);
	assert_int_equal(parse_double("1e-400", &d), LTV_EINVAL); /* would silently become 0 */
	assert_int_equal(parse_double("0e-400", &d), 0);
	assert_true(d == 0);
	assert_int_equal(parse_double("nan", &d), LTV_EINVAL);
	assert_int_equal(parse_double("1.5x", &d), LTV_EINVAL);
	assert_int_equal(parse_int64("-9223372036854775808", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(parse_int64("9223372036854775808", &i), LTV_EINVAL);
	assert_int_equal(parse_int64("", &i), LTV_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_epochs),
		cmocka_unit_test(test_date_only),
		cmocka_unit_test(test_zones_and_fractions),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_day_index),
		cmocka_unit_test(test_civil_days),
		cmocka_unit_test(test_number_parsers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
