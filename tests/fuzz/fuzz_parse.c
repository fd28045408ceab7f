/*
 * libFuzzer target for the scalar parsers: time_parse_iso8601 (a time that
 * parses prints back as ISO 8601 and parses again to the same second, and
 * its civil date round-trips), parse_int64 and parse_double (a value that
 * parses prints back and parses again to the same value).
 */
#include <inttypes.h>
#include <math.h>

#include "fuzz_util.h"

#include "ltv/common.h"
#include "ltv/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	int64_t ts, again, i;
	double d, d2;
	char buf[64];

	if (time_parse_iso8601(s, &ts) == 0) {
		int64_t y;
		unsigned m, day;

		time_format_iso8601(ts, buf, sizeof(buf));
		if (time_parse_iso8601(buf, &again) != 0 || again != ts)
			abort();
		time_civil_from_days(time_day_index(0, ts), &y, &m, &day);
		if (m < 1 || m > 12 || day < 1 || day > 31 ||
		    time_days_from_civil(y, m, day) != time_day_index(0, ts))
			abort();
		if (time_day_start(ts) > ts || ts - time_day_start(ts) >= 86400)
			abort();
	}
	if (parse_int64(s, &i) == 0) {
		snprintf(buf, sizeof(buf), "%" PRId64, i);
		if (parse_int64(buf, &again) != 0 || again != i)
			abort();
	}
	if (parse_double(s, &d) == 0 && !isnan(d)) {
		snprintf(buf, sizeof(buf), "%.17g", d);
		if (parse_double(buf, &d2) != 0 || d2 != d)
			abort();
	}
	free(s);
	return 0;
}
