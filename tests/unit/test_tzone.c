/*
 * Unit tests for tzone.c: wall-clock times converted to UTC in fixed offsets
 * and IANA zones, checked against Python's zoneinfo (fold = 0): summer and
 * winter, a spring-forward gap and a fall-back repeat, years past the TZif
 * transitions (the footer's POSIX rule, both hemispheres), and names refused.
 */
#include "testutil.h"

#include "ltv/common.h"
#include "ltv/timeutil.h"
#include "ltv/tzone.h"

static int64_t utc_of(const char *zone, const char *wall)
{
	struct ltv_err err = { 0 };
	struct tzone *tz = tzone_open(zone, &err);
	int64_t local, utc;

	if (!tz)
		fail_msg("cannot open zone '%s': %s", zone, err.msg);
	assert_int_equal(time_parse_iso8601(wall, &local), 0);
	utc = tzone_local_to_utc(tz, local);
	tzone_free(tz);
	return utc;
}

static void test_fixed_offsets(void **state)
{
	(void)state;
	assert_int_equal(utc_of("UTC", "2024-07-01T12:00"), 1719835200);
	assert_int_equal(utc_of("+05:30", "2024-07-01T12:00"), 1719835200 - 19800);
	assert_int_equal(utc_of("+0530", "2024-07-01T12:00"), 1719835200 - 19800);
	assert_int_equal(utc_of("-08:00", "2024-07-01T12:00"), 1719835200 + 28800);
	assert_int_equal(utc_of("-03", "2024-07-01T12:00"), 1719835200 + 10800);
}

static void test_iana_zones(void **state)
{
	(void)state;
	assert_int_equal(utc_of("Europe/Paris", "2024-07-01T12:00"), 1719828000);
	assert_int_equal(utc_of("Europe/Paris", "2024-01-15T12:00"), 1705316400);
	/* 02:30 happens twice on 2024-10-27: the first (summer time) is taken. */
	assert_int_equal(utc_of("Europe/Paris", "2024-10-27T02:30"), 1729989000);
	/* 02:30 never happens on 2024-03-31: read with the offset before the gap. */
	assert_int_equal(utc_of("Europe/Paris", "2024-03-31T02:30"), 1711848600);
	/* 2040 is past the listed transitions of a slim file: the POSIX rule decides. */
	assert_int_equal(utc_of("America/New_York", "2040-07-01T12:00"), 2224771200);
	assert_int_equal(utc_of("America/New_York", "2040-01-15T12:00"), 2210259600);
	assert_int_equal(utc_of("Australia/Sydney", "2040-01-15T12:00"), 2210202000);
	assert_int_equal(utc_of("Australia/Sydney", "2040-07-15T12:00"), 2225930400);
	assert_int_equal(utc_of("America/Sao_Paulo", "2040-01-15T12:00"), 2210252400);
}

static void test_refused(void **state)
{
	static const char *const bad[] = { "", "+25:00", "+05:61", "05:00", "Mars/Olympus",
					   "../../etc/passwd", "/etc/localtime", "Europe/../UTC",
					   "Europe/Paris; rm", "+05:30x" };
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ltv_err err = { 0 };
		struct tzone *tz = tzone_open(bad[i], &err);

		if (tz)
			fail_msg("zone '%s' was accepted", bad[i]);
		assert_int_equal(err.code, LTV_ECONFIG);
		assert_non_null(strstr(err.msg, "ingest.timezone"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_offsets),
		cmocka_unit_test(test_iana_zones),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
