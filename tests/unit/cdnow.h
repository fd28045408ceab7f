/*
 * The CDNOW sample of Fader & Hardie's papers (shared data set
 * cdnow/cdnowElog.csv) summarised per customer as the BG/NBD and Gamma-Gamma
 * known-answer tests need it (tests/unit/cdnow.c): calibration up to
 * 1997-09-30, weeks as the unit, same-day purchases merged.
 */
#ifndef LTV_TEST_CDNOW_H
#define LTV_TEST_CDNOW_H

#include <stddef.h>

struct cdnow_customers {
	size_t n;    /* customers, in masterid order */
	double *x;   /* repeat transactions (purchase days after the first) in calibration */
	double *t_x; /* weeks from the first purchase to the last repeat one; 0 when x == 0 */
	double *T;   /* weeks from the first purchase to 1997-09-30 itself (Hardie's spreadsheet) */
	double *m_x; /* mean value of the repeat transactions, a day's purchases summed; 0 when x == 0 */
};

/*
 * The summaries, read on the first call and kept for the process (free with
 * cdnow_release), or NULL when the data set is not installed: the test then
 * skips. Fails the test on a malformed row.
 */
const struct cdnow_customers *cdnow_customers(void);
void cdnow_release(void);

#endif
