/*
 * Doubles to text, fast, with the very bytes glibc's printf writes: score's
 * CSV ("%.4f") and the server's JSON and CSV answers (cJSON's number form)
 * spent more time in printf than in the models. The digits come from exact
 * integer arithmetic (128 bits), rounded half to even as glibc rounds in the
 * default rounding mode; a value outside the range that arithmetic covers
 * (huge, tiny, NaN, infinite) goes to snprintf itself, so every double gets
 * printf's text. tests/unit/test_numfmt.c compares with snprintf on millions
 * of values, ties and edges included.
 *
 * Each function writes a NUL-terminated string into buf (at least
 * NUMFMT_MAX bytes) and returns its length.
 */
#ifndef LTV_NUMFMT_H
#define LTV_NUMFMT_H

#include <stddef.h>

#define NUMFMT_MAX 352 /* "%.9f" of -DBL_MAX, with room */

/* snprintf(buf, n, "%.*f", decimals, v) for decimals 0..9. */
size_t numfmt_fixed(char *buf, double v, int decimals);
/* snprintf(buf, n, "%.*g", precision, v) for precision 1..17. */
size_t numfmt_g(char *buf, double v, int precision);
/*
 * cJSON 1.7's number: "%d" when v is an int, else "%1.15g" when that reads
 * back as v, else "%1.17g"; NaN and infinities are not numbers here (the
 * caller writes null or nothing): they return 0 and write "".
 */
size_t numfmt_json(char *buf, double v);

#endif
