/*
 * BTYD histories from the features frame (contract in
 * include/ltv/btyd_history.h). The day arithmetic matches feature_build.c:
 * days_since_purchase counts from the last paying day to day s - 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/btyd_history.h"
#include "ltv/timeutil.h"

void btyd_row_columns_of(const struct model_data *d, struct btyd_row_columns *out)
{
	out->window = frame_col(&d->frame, "window_days");
	out->rev = frame_col(&d->frame, "rev_window");
	out->rev_d0 = frame_col(&d->frame, "rev_d0");
	out->paying_days = frame_col(&d->frame, "purchase_days");
	out->since = frame_col(&d->frame, "days_since_purchase");
}

/* A column's value at row, NaN when the frame has no such column. */
static double column_value(struct frame_col c, size_t row)
{
	return frame_col_found(c) ? frame_col_at(c, row) : NAN;
}

void btyd_history_of_row(const struct btyd_row_columns *c, size_t row, struct btyd_history *out)
{
	const double s = column_value(c->window, row);
	const double rev = column_value(c->rev, row);
	const double rev_d0 = column_value(c->rev_d0, row);
	const double paying_days = column_value(c->paying_days, row);
	const double since = column_value(c->since, row);
	const double last = isnan(since) ? 0 : (s - 1) - since;

	out->x = fmax(paying_days - (rev_d0 > 0 ? 1 : 0), 0);
	out->t_x = out->x > 0 && last >= 1 ? last / BTYD_DAYS_PER_WEEK : 0;
	out->T = s / BTYD_DAYS_PER_WEEK;
	out->m_x = out->x > 0 ? fmax(rev - rev_d0, 0) / out->x : 0;
}

/* One row's to-date history from the columns' arrays (rev_to_date, rev_d0, ...). */
static void to_date_of(const double *rev, const double *rev_d0, struct frame_col x,
		       struct frame_col last, struct frame_col age, size_t row,
		       struct btyd_history *out)
{
	const double r = rev ? rev[row] : NAN, r0 = rev_d0 ? rev_d0[row] : NAN;

	out->x = frame_col_found(x) ? frame_col_at(x, row) : NAN;
	out->t_x = (frame_col_found(last) ? frame_col_at(last, row) : NAN) / BTYD_DAYS_PER_WEEK;
	out->T = (frame_col_found(age) ? frame_col_at(age, row) : NAN) / BTYD_DAYS_PER_WEEK;
	out->m_x = out->x > 0 ? fmax(r - r0, 0) / out->x : 0;
}

void btyd_history_to_date(const struct model_data *d, size_t row, struct btyd_history *out)
{
	btyd_histories_to_date(d, &row, 1, out);
}

void btyd_histories_to_date(const struct model_data *d, const size_t *rows, size_t n,
			    struct btyd_history *out)
{
	/* Looked up once: a column lookup by name costs more than the row's arithmetic. */
	const double *rev = frame_column(&d->frame, "rev_to_date");
	const double *rev_d0 = frame_column(&d->frame, "rev_d0");
	const struct frame_col x = frame_col(&d->frame, "repeat_days_to_date");
	const struct frame_col last = frame_col(&d->frame, "last_repeat_day_to_date");
	const struct frame_col age = frame_col(&d->frame, "age_days");

	for (size_t i = 0; i < n; i++)
		to_date_of(rev, rev_d0, x, last, age, rows[i], &out[i]);
}

static int add_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
		   int64_t purchases)
{
	struct btyd_days *b = opaque;
	int64_t k;

	(void)events;
	(void)purchases;
	if (uid < 1 || (size_t)uid > b->n_uids || (k = b->slot[uid - 1]) < 0)
		return 0;
	/* Only days complete at as_of exist (the rule of feature_build_base). */
	if (day >= time_day_index((int64_t)b->install[k], b->as_of))
		return 0;
	if (day >= 1 && revenue > 0) {
		b->x[k] += 1;
		b->m_x[k] += revenue;
		if ((double)day > b->t_x[k])
			b->t_x[k] = (double)day;
	}
	return 0;
}

int btyd_days_read(struct registry *reg, struct btyd_days *b, struct ltv_err *err)
{
	int ret = registry_user_days_each(reg, add_day, b, err);

	/* m_x summed the repeat revenue: now its mean per paying day */
	for (size_t k = 0; k < b->n_slots && ret == 0; k++)
		if (b->x[k] > 0)
			b->m_x[k] /= b->x[k];
	return ret;
}

static int compare_history(const void *pa, const void *pb)
{
	const struct btyd_history *a = pa, *b = pb;

	if (a->x != b->x)
		return a->x < b->x ? -1 : 1;
	if (a->t_x != b->t_x)
		return a->t_x < b->t_x ? -1 : 1;
	return (a->T > b->T) - (a->T < b->T);
}

void btyd_triples_collapse(struct btyd_history *h, size_t n, struct btyd_triples *out)
{
	size_t k = 0;

	qsort(h, n, sizeof(*h), compare_history);
	out->x = xmalloc((n ? n : 1) * sizeof(double));
	out->t_x = xmalloc((n ? n : 1) * sizeof(double));
	out->T = xmalloc((n ? n : 1) * sizeof(double));
	out->weight = xmalloc((n ? n : 1) * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && compare_history(&h[i], &h[i - 1]) == 0) {
			out->weight[k - 1] += 1;
			continue;
		}
		out->x[k] = h[i].x;
		out->t_x[k] = h[i].t_x;
		out->T[k] = h[i].T;
		out->weight[k++] = 1;
	}
	out->n = k;
}

/* Bits of each field of a packed key: 2^21 weeks are 40,000 years, 2^21 repeat days more. */
#define KEY_BITS 21
#define KEY_DIGIT_BITS 11

/* A whole number in [0, 2^KEY_BITS) (not -0: the triple must keep its value to the bit). */
static int key_field(double v, uint64_t *out)
{
	if (!(v >= 0 && v < (double)(1u << KEY_BITS)) || v != floor(v) || signbit(v))
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/*
 * Whole-week triples (t_x and T rounded, x whole) packed as x, t_x, T from
 * the high bits down: the keys' integer order is compare_history's. -1 when
 * a value does not fit (a fractional x, a NaN): the caller sorts histories.
 */
static int pack_keys(const struct btyd_history *h, size_t n, uint64_t *key)
{
	for (size_t i = 0; i < n; i++) {
		const double T = round(h[i].T), t_x = fmin(round(h[i].t_x), T);
		uint64_t x, t, a;

		if (key_field(h[i].x, &x) < 0 || key_field(t_x, &t) < 0 || key_field(T, &a) < 0)
			return -1;
		key[i] = x << (2 * KEY_BITS) | t << KEY_BITS | a;
	}
	return 0;
}

/* LSD radix sort of key[0..n) (tmp: n more), skipping digits every key shares. */
static void radix_sort(uint64_t *const keys, uint64_t *tmp, size_t n)
{
	const size_t buckets = (size_t)1 << KEY_DIGIT_BITS;
	size_t *count = xmalloc(buckets * sizeof(*count));
	uint64_t *key = keys;

	for (unsigned shift = 0; shift < 3 * KEY_BITS; shift += KEY_DIGIT_BITS) {
		size_t sum = 0;
		uint64_t *swap;

		memset(count, 0, buckets * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[key[i] >> shift & (buckets - 1)]++;
		if (n == 0 || count[key[0] >> shift & (buckets - 1)] == n)
			continue; /* one digit value: this pass would not move anything */
		for (size_t b = 0; b < buckets; b++) {
			size_t c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[key[i] >> shift & (buckets - 1)]++] = key[i];
		swap = key;
		key = tmp;
		tmp = swap;
	}
	free(count);
	if (key != keys) /* an odd number of passes: the sorted keys are in tmp */
		memcpy(keys, key, n * sizeof(*keys));
}

void btyd_triples_build(const struct btyd_history *h, size_t n, struct btyd_triples *out)
{
	uint64_t *key = xmalloc((n ? n : 1) * sizeof(*key));
	uint64_t *tmp = xmalloc((n ? n : 1) * sizeof(*tmp));
	struct btyd_history *sorted;
	size_t k = 0;

	/*
	 * Whole weeks, the resolution of the published fits: day resolution gives
	 * hundreds of times more distinct rows, and Pareto/NBD's likelihood costs
	 * a hypergeometric series per row (20,000 users: 120 s at days).
	 * Whole-number triples are sorted as packed integers (a radix sort: the
	 * histories' qsort was a fifth of a Pareto/NBD fit at 1,000,000 users);
	 * equal triples are equal in every field the collapse reads, so the
	 * triples are the same as from sorting the histories.
	 */
	if (pack_keys(h, n, key) == 0) {
		const uint64_t field = ((uint64_t)1 << KEY_BITS) - 1;

		radix_sort(key, tmp, n);
		free(tmp);
		out->x = xmalloc((n ? n : 1) * sizeof(double));
		out->t_x = xmalloc((n ? n : 1) * sizeof(double));
		out->T = xmalloc((n ? n : 1) * sizeof(double));
		out->weight = xmalloc((n ? n : 1) * sizeof(double));
		for (size_t i = 0; i < n; i++) {
			if (k > 0 && key[i] == key[i - 1]) {
				out->weight[k - 1] += 1;
				continue;
			}
			out->x[k] = (double)(key[i] >> (2 * KEY_BITS));
			out->t_x[k] = (double)(key[i] >> KEY_BITS & field);
			out->T[k] = (double)(key[i] & field);
			out->weight[k++] = 1;
		}
		out->n = k;
		free(key);
		return;
	}
	free(key);
	free(tmp);
	sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
	memcpy(sorted, h, n * sizeof(*sorted));
	for (size_t i = 0; i < n; i++) {
		sorted[i].T = round(sorted[i].T);
		sorted[i].t_x = fmin(round(sorted[i].t_x), sorted[i].T);
	}
	btyd_triples_collapse(sorted, n, out);
	free(sorted);
}

void btyd_triples_release(struct btyd_triples *t)
{
	free(t->x);
	free(t->t_x);
	free(t->T);
	free(t->weight);
	memset(t, 0, sizeof(*t));
}
