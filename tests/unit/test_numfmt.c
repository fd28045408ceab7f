/*
 * Unit tests for src/numfmt.c: every function must write exactly the bytes
 * glibc's snprintf writes (and cJSON's number form), on random doubles over
 * the whole range, on exact ties (half to even), around powers of ten, and
 * on the values that leave the fast path (huge, tiny, NaN, infinite); and
 * parse_double's fast path for plain decimals against strtod.
 */
#include "testutil.h"

#include <float.h>

#include "ltv/common.h"
#include "ltv/numfmt.h"

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t next_u64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A double spread over many magnitudes: a random mantissa times 10^[-12, 24], either sign. */
static double random_double(void)
{
	const uint64_t r = next_u64();
	double mant = (double)(r >> 11) * 0x1.0p-53;
	int exp10 = (int)(next_u64() % 37) - 12;
	double v = mant * pow(10, exp10);

	switch (r % 8) {
	case 0: /* a whole or short decimal, as money is */
		v = round(v * 100) / 100;
		break;
	case 1: { /* any bit pattern of a finite double */
		uint64_t bits = next_u64();

		memcpy(&v, &bits, sizeof(v));
		if (!isfinite(v))
			v = 1.5;
		break;
	}
	default:
		break;
	}
	return (r & 0x10) ? -v : v;
}

static void expect_fixed(double v, int decimals)
{
	char want[NUMFMT_MAX], got[NUMFMT_MAX];
	size_t n;

	snprintf(want, sizeof(want), "%.*f", decimals, v);
	n = numfmt_fixed(got, v, decimals);
	if (strcmp(want, got) != 0 || n != strlen(want))
		fail_msg("%%.%df of %a: printf '%s', numfmt '%s'", decimals, v, want, got);
}

static void expect_g(double v, int precision)
{
	char want[NUMFMT_MAX], got[NUMFMT_MAX];
	size_t n;

	snprintf(want, sizeof(want), "%.*g", precision, v);
	n = numfmt_g(got, v, precision);
	if (strcmp(want, got) != 0 || n != strlen(want))
		fail_msg("%%.%dg of %a: printf '%s', numfmt '%s'", precision, v, want, got);
}

/* cJSON 1.7's print_number, as src/jbuf.c wrote it before numfmt. */
static void json_reference(char *buf, size_t size, double v)
{
	double back = 0;

	if (!isfinite(v)) {
		buf[0] = '\0';
	} else if (v >= -2147483648.0 && v <= 2147483647.0 && v == (double)(int)v) {
		snprintf(buf, size, "%d", (int)v);
	} else {
		snprintf(buf, size, "%1.15g", v);
		if (parse_double(buf, &back) < 0 || back != v)
			snprintf(buf, size, "%1.17g", v);
	}
}

static void expect_json(double v)
{
	char want[NUMFMT_MAX], got[NUMFMT_MAX];
	size_t n;

	json_reference(want, sizeof(want), v);
	n = numfmt_json(got, v);
	if (strcmp(want, got) != 0 || n != strlen(want))
		fail_msg("json of %a: reference '%s', numfmt '%s'", v, want, got);
}

static void test_random_values(void **state)
{
	(void)state;
	for (int i = 0; i < 300000; i++) {
		const double v = random_double();

		expect_fixed(v, 4);
		expect_fixed(v, i % 10);
		expect_g(v, 15);
		expect_g(v, 17);
		expect_g(v, 1 + i % 17);
		expect_json(v);
	}
}

/* Exact ties are rounded half to even, as glibc does in the default rounding mode. */
static void test_ties(void **state)
{
	static const double ties[] = { 0.5, 1.5, 2.5, -0.5, -2.5, 0.125, 0.375, 2.00005, 1.00005,
				       0.00005, 0.00015, 0.00025, 12345.67895, 562949953421312.5,
				       562949953421313.5, 4503599627370495.5, 0.3125, 1e-4 / 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(ties) / sizeof(ties[0]); i++)
		for (int p = 0; p < 10; p++) {
			expect_fixed(ties[i], p);
			expect_g(ties[i], p + 1);
			expect_g(ties[i], 15);
			expect_json(ties[i]);
		}
	/* Every k/2^j with a few bits: many of them are exact ties at some precision. */
	for (int j = 1; j < 30; j++)
		for (int k = 1; k < 200; k += 2) {
			const double v = ldexp(k, -j);

			for (int p = 0; p < 10; p++)
				expect_fixed(v, p);
			for (int p = 1; p <= 17; p++)
				expect_g(v, p);
			expect_json(v);
		}
}

/* Values next to powers of ten, where the decimal exponent changes. */
static void test_powers_of_ten(void **state)
{
	(void)state;
	for (int k = -30; k <= 40; k++) {
		const double p = pow(10, k);
		double v = p;

		for (int step = 0; step < 6; step++) {
			expect_g(v, 15);
			expect_g(v, 17);
			expect_g(-v, 17);
			expect_json(v);
			expect_fixed(v, 4);
			v = nextafter(v, step < 3 ? 0 : INFINITY);
			if (step == 2)
				v = nextafter(p, INFINITY);
		}
		expect_g(9.9999999999999999e-1 * p, 15);
		expect_g(0.99999999999999994 * p, 15);
		expect_g(0.9999999999999999 * p, 17);
	}
}

/* What the fast path does not cover still gives printf's text. */
static void test_edges(void **state)
{
	static const double edges[] = { 0.0, -0.0, DBL_MIN, -DBL_MIN, DBL_TRUE_MIN, DBL_MAX, -DBL_MAX,
					1e300, 1e-300, 4.9406564584124654e-324, 2147483647.0,
					2147483648.0, -2147483648.0, -2147483649.0, 0.1, 0.2, 0.3,
					1.0 / 3, 2.0 / 3, 123456789012345678.0, 1e22, 1e23, 5e-5,
					-5e-5, -1e-10, 9.5, 99.5, 999999.5, 0.99995, 0.999949999 };

	(void)state;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		for (int p = 0; p < 10; p++)
			expect_fixed(edges[i], p);
		for (int p = 1; p <= 17; p++)
			expect_g(edges[i], p);
		expect_json(edges[i]);
	}
	{
		char buf[NUMFMT_MAX];

		assert_int_equal(numfmt_json(buf, NAN), 0);
		assert_string_equal(buf, "");
		assert_int_equal(numfmt_json(buf, -INFINITY), 0);
		numfmt_fixed(buf, NAN, 4);
		assert_string_equal(buf, "nan");
		numfmt_fixed(buf, -INFINITY, 4);
		assert_string_equal(buf, "-inf");
		numfmt_g(buf, INFINITY, 17);
		assert_string_equal(buf, "inf");
		/* Known answers, independent of the reference. */
		numfmt_fixed(buf, 0.125, 2);
		assert_string_equal(buf, "0.12");
		numfmt_fixed(buf, 2.5, 0);
		assert_string_equal(buf, "2");
		numfmt_fixed(buf, -0.00001, 4);
		assert_string_equal(buf, "-0.0000");
		numfmt_json(buf, 0.1);
		assert_string_equal(buf, "0.1");
		numfmt_json(buf, 1.0 / 3);
		assert_string_equal(buf, "0.33333333333333331");
		numfmt_json(buf, 5.0621450735869251);
		assert_string_equal(buf, "5.0621450735869251");
		numfmt_json(buf, 1e-7);
		assert_string_equal(buf, "1e-07");
		numfmt_json(buf, 3e9);
		assert_string_equal(buf, "3000000000");
	}
}

/*
 * Every binary exponent: numfmt reads a double's mantissa and exponent off
 * its bits (the implicit bit of a normal number, none for a subnormal), so
 * an off-by-one there shows at 2^e, next to it, and at the top of its binade.
 */
static void test_every_exponent(void **state)
{
	(void)state;
	for (int e = -1074; e <= 1023; e++) {
		const double p = ldexp(1.0, e);
		const double vs[] = { p, nextafter(p, 0), nextafter(p, INFINITY),
				      e < 1023 ? nextafter(2 * p, 0) : DBL_MAX,
				      p * 1.7, p * (e > -1070 ? 1.3 : 3) };

		for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
			expect_fixed(vs[i], 4);
			expect_fixed(-vs[i], e & 7);
			expect_g(vs[i], 15);
			expect_json(vs[i]);
		}
	}
}

static void expect_parse(const char *text)
{
	char *end;
	double want = strtod(text, &end), got = NAN;
	int ok = parse_double(text, &got) == 0;

	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0' || end == text || !isfinite(want)) {
		assert_false(ok);
		return;
	}
	if (!ok || memcmp(&want, &got, sizeof(double)) != 0)
		fail_msg("parse_double('%s'): strtod %a, parse_double %a (ok %d)", text, want, got, ok);
}

/* parse_double's fast path for plain decimals gives strtod's double, bit for bit. */
static void test_parse_double(void **state)
{
	static const char *const texts[] = { "0", "-0", "+0", "5.", ".5", "-.5", "2.50", "007",
					     "0.1", "0.3", "1.7976931348623157", "123456789012345",
					     "1234567890123456", "0.0000000000000000000001",
					     "0.00000000000000000000001", "9007199254740993", "1 ",
					     "1\t", " 1", "1e3", "1.5e-3", "-", ".", "", "1..2", "0x10",
					     "inf", "nan", "12a", "999999999999999.9" };
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_parse(texts[i]);
	for (int i = 0; i < 200000; i++) {
		const uint64_t r = next_u64();
		const int decimals = (int)(r % 12), digits = 1 + (int)((r >> 8) % 17);
		uint64_t m = next_u64() % 100000000000000000ULL;
		char mant[32];
		int n;

		snprintf(mant, sizeof(mant), "%0*llu", digits, (unsigned long long)(m % (uint64_t)pow(10, digits)));
		n = (int)strlen(mant);
		if (decimals > 0 && decimals < n)
			snprintf(buf, sizeof(buf), "%s%.*s.%s", r & 1 ? "-" : "", n - decimals, mant,
				 mant + n - decimals);
		else
			snprintf(buf, sizeof(buf), "%s%s", r & 1 ? "-" : "", mant);
		expect_parse(buf);
		numfmt_json(buf, random_double());
		expect_parse(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_values),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_powers_of_ten),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_every_exponent),
		cmocka_unit_test(test_parse_double),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
