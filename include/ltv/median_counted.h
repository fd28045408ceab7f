#ifndef LTV_MEDIAN_COUNTED_H
#define LTV_MEDIAN_COUNTED_H

#include <stddef.h>

/*
 * The median of a multiset given as n values, v[i] counted count[i] times
 * (counts may be 0; their sum at least 1): the median_select of the array
 * with each value written out count[i] times, bit for bit, without writing
 * it out (select's global medians: about 3 million training rows per horizon
 * at 1,000,000 users come from under a million weighted ones). Linear time;
 * reorders v and count together.
 */
double median_counted(double *v, size_t *count, size_t n);

#endif
