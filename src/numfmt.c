/*
 * Doubles to printf's text without printf (contract in include/ltv/numfmt.h).
 *
 * A finite double is m·2^e with m < 2^53. Its decimal digits at a scale
 * 10^p are round(m·2^e·10^p), which for the values served and scored fits
 * 128-bit integers exactly: m·10^p < 2^128 needs p <= 22, and the binary
 * shift or the decimal division leaves an exact remainder to round on.
 * Whatever falls outside goes to snprintf.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/numfmt.h"

__extension__ typedef unsigned __int128 u128; /* GCC and clang on 64-bit targets */

static const uint64_t pow10_u64[20] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
	100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
	10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* 10^k for k in 0..38 (the largest below 2^128). */
static u128 pow10_u128(int k)
{
	return k < 20 ? pow10_u64[k] : (u128)pow10_u64[19] * pow10_u64[k - 19];
}

static const double exact_pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
				      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
				      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };

/*
 * |v| (finite) as m·2^e, m an integer below 2^53, read off its bits: frexp
 * and ldexp were two library calls per number, a tenth of the fields'
 * formatting (11 numbers a scored user). A normal v is (2^52 + fraction)
 * · 2^(exponent - 1075), the m and e frexp gave; a subnormal is fraction ·
 * 2^-1074, the same value with m not normalised, which only snprintf
 * formats (scaled_round declines any e below -126 either way).
 */
static void decompose(double v, uint64_t *out_m, int *out_e)
{
	uint64_t bits;
	int exponent;

	memcpy(&bits, &v, sizeof(bits));
	exponent = (int)((bits >> 52) & 0x7ff);
	*out_m = bits & ((1ULL << 52) - 1);
	if (exponent == 0) {
		*out_e = -1074;
	} else {
		*out_m |= 1ULL << 52;
		*out_e = exponent - 1075;
	}
}

/*
 * round(m·2^e·10^p), half to even, into *out, and its floor into *out_floor
 * (may be NULL); 0, or -1 when it does not fit this arithmetic (then the
 * caller asks snprintf).
 */
static int scaled_round(uint64_t m, int e, int p, u128 *out, u128 *out_floor)
{
	u128 x, unused;

	if (!out_floor)
		out_floor = &unused;

	if (p >= 0) {
		if (p > 22)
			return -1;
		x = (u128)m * pow10_u128(p);
		if (e >= 0) {
			if (e > 20 || (x >> (127 - e)) != 0)
				return -1;
			*out = *out_floor = x << e;
			return 0;
		}
		if (e < -126)
			return -1;
		{
			const int q = -e;
			const u128 rem = x & (((u128)1 << q) - 1), half = (u128)1 << (q - 1);
			u128 d = x >> q;

			*out_floor = d;
			if (rem > half || (rem == half && (d & 1)))
				d++;
			*out = d;
		}
		return 0;
	}
	/* p < 0: v is large, a whole number when e >= 0. */
	if (e < 0 || e > 74 || -p > 38)
		return -1;
	x = (u128)m << e;
	{
		const u128 div = pow10_u128(-p), rem = x % div;
		u128 d = x / div;

		*out_floor = d;
		if (2 * rem > div || (2 * rem == div && (d & 1)))
			d++;
		*out = d;
	}
	return 0;
}

/* "00" to "99": two digits a division. */
static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* The decimal digits of d (no sign), most significant first; returns the count. */
static int digits_of(u128 d, char *out)
{
	char tmp[48];
	int n = sizeof(tmp);
	int count;

	/* 64-bit division is several times cheaper than 128-bit; d fits 64 bits but for huge %f. */
	while (d > UINT64_MAX) {
		tmp[--n] = (char)('0' + (int)(d % 10));
		d /= 10;
	}
	{
		uint64_t u = (uint64_t)d;

		while (u >= 100) {
			const unsigned pair = (unsigned)(u % 100);

			u /= 100;
			tmp[--n] = digit_pairs[2 * pair + 1];
			tmp[--n] = digit_pairs[2 * pair];
		}
		if (u >= 10) {
			tmp[--n] = digit_pairs[2 * u + 1];
			tmp[--n] = digit_pairs[2 * u];
		} else {
			tmp[--n] = (char)('0' + (int)u);
		}
	}
	count = (int)sizeof(tmp) - n;
	memcpy(out, tmp + n, (size_t)count);
	return count;
}

/* printf itself, for what the arithmetic here does not cover: 'f' or 'g'. */
static size_t fallback(char *buf, char conv, int prec, double v)
{
	int n = conv == 'f' ? snprintf(buf, NUMFMT_MAX, "%.*f", prec, v)
			    : snprintf(buf, NUMFMT_MAX, "%1.*g", prec, v);

	return n > 0 ? (size_t)n : 0;
}

size_t numfmt_fixed(char *buf, double v, int decimals)
{
	char dig[48];
	uint64_t m;
	int e, n, len = 0;
	u128 d;

	if (!isfinite(v) || decimals < 0 || decimals > 9)
		return fallback(buf, 'f', decimals, v);
	decompose(v, &m, &e);
	if (m == 0) {
		d = 0;
	} else if (scaled_round(m, e, decimals, &d, NULL) < 0) {
		return fallback(buf, 'f', decimals, v);
	}
	if (signbit(v))
		buf[len++] = '-';
	n = digits_of(d, dig);
	if (n <= decimals) { /* below 1: "0." then zeros */
		buf[len++] = '0';
		if (decimals > 0) {
			buf[len++] = '.';
			for (int i = n; i < decimals; i++)
				buf[len++] = '0';
			memcpy(buf + len, dig, (size_t)n);
			len += n;
		}
	} else {
		memcpy(buf + len, dig, (size_t)(n - decimals));
		len += n - decimals;
		if (decimals > 0) {
			buf[len++] = '.';
			memcpy(buf + len, dig + n - decimals, (size_t)decimals);
			len += decimals;
		}
	}
	buf[len] = '\0';
	return (size_t)len;
}

/*
 * The precision significant digits of v > 0, rounded, as an integer in
 * [10^(precision-1), 10^precision) into *out_d, and its decimal exponent: v
 * is about d × 10^(*out_exp - precision + 1). k_guess is about
 * floor(log10(v)) (corrected here when off by one). -1 when the arithmetic
 * does not cover v.
 */
static int significant(double v, int precision, int k_guess, u128 *out_d, int *out_exp)
{
	const u128 lo = pow10_u128(precision - 1), hi = lo * 10;
	uint64_t m;
	int e, k = k_guess, found = 0;
	u128 d = 0, whole = 0;

	decompose(v, &m, &e);
	/* k is right when lo <= v·10^(precision-1-k) < hi, before rounding. */
	for (int tries = 0; tries < 3 && !found; tries++) {
		if (scaled_round(m, e, precision - 1 - k, &d, &whole) < 0)
			return -1;
		if (whole >= lo && whole < hi)
			found = 1;
		else
			k += whole >= hi ? 1 : -1;
	}
	if (!found)
		return -1;
	if (d == hi) { /* rounded up to the next power of ten */
		d = lo;
		k++;
	}
	*out_d = d;
	*out_exp = k;
	return 0;
}

static int format_g(char *buf, int negative, const char *dig, int precision, int x)
{
	int n = precision, len = 0;

	while (n > 1 && dig[n - 1] == '0')
		n--;
	if (negative)
		buf[len++] = '-';
	if (x < -4 || x >= precision) {
		buf[len++] = dig[0];
		if (n > 1) {
			buf[len++] = '.';
			memcpy(buf + len, dig + 1, (size_t)(n - 1));
			len += n - 1;
		}
		len += snprintf(buf + len, 8, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
	} else if (x >= 0) {
		const int whole = x + 1;

		for (int i = 0; i < whole; i++)
			buf[len++] = i < n ? dig[i] : '0';
		if (n > whole) {
			buf[len++] = '.';
			memcpy(buf + len, dig + whole, (size_t)(n - whole));
			len += n - whole;
		}
	} else {
		buf[len++] = '0';
		buf[len++] = '.';
		for (int i = 0; i < -x - 1; i++)
			buf[len++] = '0';
		memcpy(buf + len, dig, (size_t)n);
		len += n;
	}
	buf[len] = '\0';
	return len;
}

size_t numfmt_g(char *buf, double v, int precision)
{
	char dig[48];
	u128 d;
	int x;

	if (!isfinite(v) || precision < 1 || precision > 17)
		return fallback(buf, 'g', precision, v);
	if (v == 0) {
		int len = 0;

		if (signbit(v))
			buf[len++] = '-';
		buf[len++] = '0';
		buf[len] = '\0';
		return (size_t)len;
	}
	if (significant(fabs(v), precision, (int)floor(log10(fabs(v))), &d, &x) < 0)
		return fallback(buf, 'g', precision, v);
	digits_of(d, dig);
	return (size_t)format_g(buf, signbit(v) != 0, dig, precision, x);
}

/*
 * Whether the 15 digits d × 10^(x - 14) read back as |v|: exact when the
 * decimal scale is a power of ten a double holds (Clinger's fast path: one
 * correctly rounded product or quotient of two exact doubles is what strtod
 * returns). -1 outside that range.
 */
static int reads_back(u128 d, int x, double v)
{
	const int scale = x - 14;
	double back;

	if (scale > 22 || scale < -22)
		return -1;
	/* d < 10^15 < 2^53: exact as a double */
	back = scale >= 0 ? (double)(uint64_t)d * exact_pow10[scale]
			  : (double)(uint64_t)d / exact_pow10[-scale];
	return back == fabs(v);
}

size_t numfmt_json(char *buf, double v)
{
	char dig[48];
	u128 d;
	int k, x, ok;

	if (!isfinite(v)) {
		buf[0] = '\0';
		return 0;
	}
	if (v >= -2147483648.0 && v <= 2147483647.0 && v == (double)(int)v) {
		/* printf's "%d" of (int)v: -0 is "0" */
		const long long i = (int)v;
		size_t len = 0;

		if (i < 0)
			buf[len++] = '-';
		len += (size_t)digits_of(i < 0 ? (u128)(0ULL - (unsigned long long)i) : (u128)i, buf + len);
		buf[len] = '\0';
		return len;
	}
	k = (int)floor(log10(fabs(v)));
	if (significant(fabs(v), 15, k, &d, &x) < 0 || (ok = reads_back(d, x, v)) < 0) {
		double back = 0;
		size_t n = fallback(buf, 'g', 15, v);

		if (parse_double(buf, &back) < 0 || back != v)
			n = fallback(buf, 'g', 17, v);
		return n;
	}
	if (ok) {
		digits_of(d, dig);
		return (size_t)format_g(buf, signbit(v) != 0, dig, 15, x);
	}
	if (significant(fabs(v), 17, x, &d, &x) < 0)
		return fallback(buf, 'g', 17, v);
	digits_of(d, dig);
	return (size_t)format_g(buf, signbit(v) != 0, dig, 17, x);
}
