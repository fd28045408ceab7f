/*
 * Median of counted values (include/ltv/median_counted.h): a three-way
 * quickselect on the distinct items, the counts standing for the copies.
 * The value at a rank of the written-out array is the pivot whose run of
 * equal values covers that rank, and equal doubles have one bit pattern but
 * for +0 and -0 (NaN equals nothing): with either present, which copy
 * median_select lands on depends on the array's order, so the array is
 * written out and median_select decides, as before.
 */
#include <math.h>

#include "ltv/common.h"
#include "ltv/median_counted.h"

static void swap_item(double *v, size_t *count, size_t a, size_t b)
{
	const double tv = v[a];
	const size_t tc = count[a];

	v[a] = v[b];
	v[b] = tv;
	count[a] = count[b];
	count[b] = tc;
}

static double middle_of_three(double a, double b, double c)
{
	if (a > b) {
		const double t = a;

		a = b;
		b = t;
	}
	return c < a ? a : c > b ? b : c;
}

/* The value at rank r (0-based) of the written-out array; r below the counts' sum. */
static double rank_value(double *v, size_t *count, size_t n, size_t r)
{
	size_t lo = 0, hi = n;

	for (;;) {
		const double pivot = middle_of_three(v[lo], v[lo + (hi - lo) / 2], v[hi - 1]);
		size_t lt = lo, i = lo, gt = hi, below = 0, equal = 0;

		/* [lo, lt) < pivot, [lt, i) == pivot, [gt, hi) > pivot */
		while (i < gt) {
			if (v[i] < pivot) {
				below += count[i];
				swap_item(v, count, lt++, i++);
			} else if (v[i] > pivot) {
				swap_item(v, count, i, --gt);
			} else {
				equal += count[i++];
			}
		}
		if (r < below)
			hi = lt;
		else if (r < below + equal)
			return pivot;
		else {
			r -= below + equal;
			lo = gt;
		}
	}
}

/* median_select of the written-out array, in v's order. */
static double median_written_out(const double *v, const size_t *count, size_t n, size_t total)
{
	double *all = xmalloc(total * sizeof(double)), m;
	size_t at = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < count[i]; k++)
			all[at++] = v[i];
	m = median_select(all, total);
	free(all);
	return m;
}

double median_counted(double *v, size_t *count, size_t n)
{
	size_t total = 0, k;
	int plain = 1;

	for (size_t i = 0; i < n; i++) {
		total += count[i];
		if (isnan(v[i]) || (v[i] == 0 && signbit(v[i])))
			plain = 0;
	}
	if (!plain)
		return median_written_out(v, count, n, total);
	k = total / 2;
	if (total % 2)
		return rank_value(v, count, n, k);
	/* median_select's mean of the two middle values, in its order of operands */
	return 0.5 * (rank_value(v, count, n, k - 1) + rank_value(v, count, n, k));
}
