/*
 * Unit tests for src/age_means.c, the one place that fits a value per
 * snapshot age (the hurdle's and the multiplier's smearing factors, lookalike's
 * and semantic's mean futures by age): rows group by the snapshot interval of
 * their age, a thin interval takes the pooled value, groups are fitted in one
 * pass, a ratio of weighted sums, the lookup of an age between snapshots, and
 * the blob round trip with its checks, and the rule that keeps lookalike's
 * and semantic's values monotone across horizons.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/age_means.h"
#include "ltv/blob.h"

static int64_t snaps_v[] = { 1, 7, 30, 60 };
static const struct int_list snaps = { snaps_v, 4 };

/*
 * 60 rows at age 1 with value 4, 60 at 7 with value 2, 10 at 30 (too few:
 * pooled), 60 at ages 60..89 with value 0.5 (an age past the last snapshot
 * is the last snapshot's), one at NaN and one below the first snapshot
 * (skipped).
 */
static void test_fit_intervals_and_fallback(void **state)
{
	double age[192], num[192];
	struct age_means m;
	const double pooled = 3.0;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 60; i++, n++) {
		age[n] = 1;
		num[n] = 4;
	}
	for (int i = 0; i < 60; i++, n++) {
		age[n] = 7;
		num[n] = 2;
	}
	for (int i = 0; i < 10; i++, n++) {
		age[n] = 30;
		num[n] = 100;
	}
	for (int i = 0; i < 60; i++, n++) {
		age[n] = 60 + i % 30;
		num[n] = 0.5;
	}
	age[n] = NAN;
	num[n++] = 1000;
	age[n] = 0;
	num[n++] = 1000;
	age_means_fit(&snaps, age, num, NULL, NULL, NULL, 1, n, &pooled, &m);
	assert_int_equal(m.n, 4);
	assert_true(m.age[0] == 1 && m.age[1] == 7 && m.age[2] == 30 && m.age[3] == 60);
	assert_true(m.value[0] == 4 && m.value[1] == 2 && m.value[3] == 0.5);
	assert_true(m.value[2] == pooled); /* 10 rows < AGE_MEANS_MIN_ROWS */
	/* Lookup: the interval's entry; below the first and NaN: the fallback. */
	assert_true(age_means_at(&m, 1, -1) == 4);
	assert_true(age_means_at(&m, 6.5, -1) == 4);
	assert_true(age_means_at(&m, 7, -1) == 2);
	assert_true(age_means_at(&m, 45, -1) == pooled);
	assert_true(age_means_at(&m, 89, -1) == 0.5);
	assert_true(age_means_at(&m, 0.5, -1) == -1);
	assert_true(age_means_at(&m, NAN, -1) == -1);
}

/* Groups in one pass, weights, a ratio of sums, and a group without rows. */
static void test_groups_weights_ratio(void **state)
{
	enum { N = 400 };
	double age[N], num[N], den[N], w[N];
	int group[N];
	const double pooled[3] = { 10, 20, 30 };
	struct age_means m[3];

	(void)state;
	for (int i = 0; i < N; i++) {
		group[i] = i % 2 ? 1 : (i % 4 ? -1 : 0); /* group 2 gets no row */
		age[i] = i < N / 2 ? 7 : 30;
		w[i] = 1 + i % 3;
		num[i] = (double)(i % 5);
		den[i] = 2.0;
	}
	age_means_fit(&snaps, age, num, den, w, group, 3, N, pooled, m);
	assert_int_equal(m[2].n, 0);
	assert_true(age_means_at(&m[2], 30, pooled[2]) == pooled[2]);
	for (int g = 0; g < 2; g++) {
		assert_int_equal(m[g].n, 2);
		for (size_t a = 0; a < 2; a++) {
			double sn = 0, sd = 0;

			for (int i = 0; i < N; i++)
				if (group[i] == g && age[i] == m[g].age[a]) {
					sn += w[i] * num[i];
					sd += w[i] * den[i];
				}
			assert_true(fabs(m[g].value[a] - sn / sd) < 1e-12);
		}
	}
}

/*
 * Rows standing for repeats[i] rows each (0 included: a row that is not
 * there) fit the bits of age_means_fit over the rows written out, with
 * values whose sums round differently in another order (semantic's fit).
 */
static void test_repeated_rows_fit_the_written_out_bits(void **state)
{
	enum { N = 300 };
	double age[N], num[N], *age_out = NULL, *num_out = NULL;
	int group[N], *group_out = NULL;
	size_t repeats[N], n_out = 0, cap = 0;
	const double pooled[2] = { -1, -2 };
	struct age_means a[2], b[2], ga, gb;

	(void)state;
	for (int i = 0; i < N; i++) {
		age[i] = (double)(i % 4 == 0 ? 1 : i % 4 == 1 ? 7 : i % 4 == 2 ? 30 : 75);
		num[i] = 0.1 * (double)(i % 7) + 1e-9 * (double)i;
		group[i] = i % 5 == 4 ? -1 : i % 2;
		repeats[i] = (size_t)(i % 6);
		for (size_t k = 0; k < repeats[i]; k++) {
			ARRAY_GROW(age_out, n_out + 1, cap);
			num_out = xrealloc(num_out, cap * sizeof(double));
			group_out = xrealloc(group_out, cap * sizeof(int));
			age_out[n_out] = age[i];
			num_out[n_out] = num[i];
			group_out[n_out++] = group[i];
		}
	}
	age_means_fit(&snaps, age_out, num_out, NULL, NULL, group_out, 2, n_out, pooled, a);
	age_means_fit_repeated(&snaps, age, num, repeats, group, 2, N, pooled, b);
	age_means_fit(&snaps, age_out, num_out, NULL, NULL, NULL, 1, n_out, pooled, &ga);
	age_means_fit_repeated(&snaps, age, num, repeats, NULL, 1, N, pooled, &gb);
	for (int g = 0; g < 2; g++) {
		assert_int_equal(a[g].n, 2); /* even rows at 1 and 30 days, odd at 7 and 75 */
		assert_int_equal(b[g].n, a[g].n);
		assert_memory_equal(a[g].age, b[g].age, a[g].n * sizeof(double));
		assert_memory_equal(a[g].value, b[g].value, a[g].n * sizeof(double));
	}
	assert_int_equal(gb.n, ga.n);
	assert_memory_equal(ga.value, gb.value, ga.n * sizeof(double));
	free(age_out);
	free(num_out);
	free(group_out);
}

static void test_blob_round_trip(void **state)
{
	struct age_means m = { 3, { 1, 7, 30 }, { 1.5, 1.25, 1.0625 } }, back;
	struct blob_writer w;
	struct blob_reader r;
	uint8_t *buf;
	size_t len;

	(void)state;
	blob_writer_init(&w);
	age_means_put(&w, &m);
	buf = blob_writer_detach(&w, &len);
	assert_int_equal(len, 4 + 3 * 16);
	blob_reader_init(&r, buf, len);
	assert_int_equal(age_means_get(&r, &back), 0);
	assert_int_equal(back.n, 3);
	assert_memory_equal(back.age, m.age, 3 * sizeof(double));
	assert_memory_equal(back.value, m.value, 3 * sizeof(double));
	/* Truncated: an error, never an overread. */
	blob_reader_init(&r, buf, len - 1);
	assert_int_equal(age_means_get(&r, &back), -1);
	assert_true(r.failed);
	/* Ages that do not increase are corrupt. */
	memcpy(buf + 4 + 16, buf + 4, 8);
	blob_reader_init(&r, buf, len);
	assert_int_equal(age_means_get(&r, &back), -1);
	free(buf);
	/* A count above AGE_MEANS_MAX is refused before any read. */
	blob_writer_init(&w);
	blob_put_u32(&w, AGE_MEANS_MAX + 1);
	buf = blob_writer_detach(&w, &len);
	blob_reader_init(&r, buf, len);
	assert_int_equal(age_means_get(&r, &back), -1);
	free(buf);
}

/*
 * Three horizons (7, 30, 90; 30 untrained) whose values at an age are given
 * per horizon, for age_means_monotone.
 */
struct three_horizons {
	int64_t h[3];
	double v[3]; /* horizon j's value at any age; NaN: none */
	int calls;
};

static int64_t three_horizon(const void *ctx, size_t j)
{
	return ((const struct three_horizons *)ctx)->h[j];
}

static double three_value(const void *ctx, size_t j, double age)
{
	struct three_horizons *t = (struct three_horizons *)ctx;

	(void)age;
	t->calls++;
	return t->v[j];
}

/*
 * The largest value over the trained horizons up to the asked one that the
 * age has not lived; the asked horizon itself counts past its length only
 * with AGE_MEANS_OWN_HORIZON_ALWAYS; NaN when none counts.
 */
static void test_monotone_across_horizons(void **state)
{
	struct three_horizons t = { { 7, -1, 90 }, { 5, 100, 3 }, 0 };
	const struct age_means_horizons hs = { 3, three_horizon, three_value, &t };

	(void)state;
	/* Age 1 at 90: max(7's 5, 90's 3); the untrained 30 (value 100) never counts. */
	assert_true(age_means_monotone(&hs, 90, 1, 0) == 5);
	assert_int_equal(t.calls, 2);
	/* Age 10 has lived 7: only 90's own value. NaN age has lived none. */
	assert_true(age_means_monotone(&hs, 90, 10, 0) == 3);
	assert_true(age_means_monotone(&hs, 90, NAN, 0) == 5);
	/* At 7 the longer 90 never counts. */
	assert_true(age_means_monotone(&hs, 7, 1, 0) == 5);
	/* Past the asked horizon: nothing, unless its own value is kept. */
	assert_true(isnan(age_means_monotone(&hs, 7, 8, 0)));
	assert_true(age_means_monotone(&hs, 7, 8, AGE_MEANS_OWN_HORIZON_ALWAYS) == 5);
	assert_true(age_means_monotone(&hs, 90, 95, AGE_MEANS_OWN_HORIZON_ALWAYS) == 3);
	/* A NaN value is never the largest; a horizon shorter than every one: NaN. */
	t.v[0] = NAN;
	assert_true(age_means_monotone(&hs, 90, 1, 0) == 3);
	assert_true(isnan(age_means_monotone(&hs, 5, 1, 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_intervals_and_fallback),
		cmocka_unit_test(test_groups_weights_ratio),
		cmocka_unit_test(test_repeated_rows_fit_the_written_out_bits),
		cmocka_unit_test(test_blob_round_trip),
		cmocka_unit_test(test_monotone_across_horizons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
