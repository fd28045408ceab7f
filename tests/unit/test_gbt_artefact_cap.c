/*
 * Unit tests for gbt_artefact_rows_cap (serving/gbt_artefact.c), the sample
 * the payer classifier trains on past hurdle.max_train_rows: every row stays
 * whole (features with their target), payers are all kept while they are at
 * most half the cap, both classes' weighted totals are kept to within
 * sampling error, the same rows are chosen every time, and nothing changes
 * under the cap; and the tier share rule's boundaries (gbt_artefact_tier_fit).
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/gbt_artefact.h"

#define K 3

/* n rows, one in every `pos_every` a payer (target > 0); x[i][0] is i, to follow a row. */
static void rows_make(struct gbt_artefact_rows *r, size_t n, size_t pos_every, int weighted)
{
	memset(r, 0, sizeof(*r));
	r->x = malloc(n * K * sizeof(float));
	r->target = malloc(n * sizeof(double));
	r->weight = weighted ? malloc(n * sizeof(float)) : NULL;
	assert_non_null(r->x);
	assert_non_null(r->target);
	for (size_t i = 0; i < n; i++) {
		r->x[i * K] = (float)i;
		r->x[i * K + 1] = (float)(i % 7);
		r->x[i * K + 2] = -1.0f;
		r->target[i] = i % pos_every == 0 ? 1.0 + (double)(i % 5) : 0.0;
		if (weighted)
			r->weight[i] = i % 2 ? 2.0f : 1.0f;
	}
	r->n = n;
}

/* Weighted totals of both classes: [0] non-payers, [1] payers. */
static void totals(const struct gbt_artefact_rows *r, double out[2])
{
	out[0] = out[1] = 0;
	for (size_t i = 0; i < r->n; i++)
		out[r->target[i] > 0] += r->weight ? r->weight[i] : 1.0;
}

static void test_keeps_payers_and_totals(void **state)
{
	struct gbt_artefact_rows r;
	double before[2], after[2];
	size_t kept, payers = 0;

	(void)state;
	rows_make(&r, 100000, 10, 1);
	totals(&r, before);
	kept = gbt_artefact_rows_cap(&r, K, 30000);
	assert_int_equal(kept, r.n);
	/* 10,000 payers, all kept; about 20,000 of 90,000 non-payers. */
	assert_true(kept > 29000 && kept < 31000);
	totals(&r, after);
	for (size_t i = 0; i < r.n; i++) {
		size_t orig = (size_t)r.x[i * K];

		/* the row moved whole: its features and its target are the original row's */
		assert_int_equal((size_t)r.x[i * K + 1], orig % 7);
		assert_true(r.x[i * K + 2] == -1.0f);
		assert_true(r.target[i] == (orig % 10 == 0 ? 1.0 + (double)(orig % 5) : 0.0));
		if (i > 0)
			assert_true(r.x[i * K] > r.x[(i - 1) * K]); /* order kept */
		if (r.target[i] > 0) {
			payers++;
			assert_true(r.weight[i] == (orig % 2 ? 2.0f : 1.0f)); /* rate 1: weight as it was */
		} else {
			assert_true(r.weight[i] > (orig % 2 ? 2.0f : 1.0f) * 4.0f);
		}
	}
	assert_int_equal(payers, 10000);
	assert_true(after[1] == before[1]);
	assert_true(fabs(after[0] / before[0] - 1.0) < 0.03);
	gbt_artefact_rows_release(&r);
}

static void test_many_payers_sampled_too(void **state)
{
	struct gbt_artefact_rows r;
	double before[2], after[2];
	size_t kept, payers = 0;

	(void)state;
	/* Half the rows pay: past cap / 2 they are sampled like the others. */
	rows_make(&r, 40000, 2, 0);
	totals(&r, before);
	kept = gbt_artefact_rows_cap(&r, K, 10000);
	assert_true(kept > 9500 && kept < 10500);
	assert_non_null(r.weight); /* created: the kept rows stand for 4 each */
	for (size_t i = 0; i < r.n; i++) {
		payers += r.target[i] > 0;
		assert_true(fabsf(r.weight[i] - 4.0f) < 1e-5f);
	}
	assert_true(payers > 4500 && payers < 5500);
	totals(&r, after);
	assert_true(fabs(after[0] / before[0] - 1.0) < 0.05);
	assert_true(fabs(after[1] / before[1] - 1.0) < 0.05);
	gbt_artefact_rows_release(&r);
}

static void test_same_rows_every_time(void **state)
{
	struct gbt_artefact_rows a, b;

	(void)state;
	rows_make(&a, 50000, 8, 1);
	rows_make(&b, 50000, 8, 1);
	gbt_artefact_rows_cap(&a, K, 12345);
	gbt_artefact_rows_cap(&b, K, 12345);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.x, b.x, a.n * K * sizeof(float));
	assert_memory_equal(a.weight, b.weight, a.n * sizeof(float));
	gbt_artefact_rows_release(&a);
	gbt_artefact_rows_release(&b);
}

static void test_under_the_cap_unchanged(void **state)
{
	struct gbt_artefact_rows r;

	(void)state;
	rows_make(&r, 1000, 3, 0);
	assert_int_equal(gbt_artefact_rows_cap(&r, K, 1000), 1000);
	assert_int_equal(gbt_artefact_rows_cap(&r, K, 0), 1000); /* 0: no cap */
	assert_null(r.weight);
	for (size_t i = 0; i < r.n; i++)
		assert_true(r.x[i * K] == (float)i);
	gbt_artefact_rows_release(&r);
}

/*
 * Not the cap, but the other rule about a fit's rows here: a tier fits its
 * own model when its fit has at least min_rows rows and the tier under 90%
 * of the pooled training rows (the multiplier's tier 1 at 1,000,000 users
 * and h7: about 99.3% of the rows, 16,770 of 16,806 window payers; at
 * 100,000, seed 42, h90: 81% of the rows, 90.1% of the window payers).
 */
static void test_tier_fit_rule(void **state)
{
	(void)state;
	assert_int_equal(gbt_artefact_tier_fit(499, 500, 5000, 10000), GBT_ARTEFACT_TIER_TOO_FEW);
	assert_int_equal(gbt_artefact_tier_fit(500, 500, 5000, 10000), GBT_ARTEFACT_TIER_OWN);
	assert_int_equal(gbt_artefact_tier_fit(500, 500, 8999, 10000), GBT_ARTEFACT_TIER_OWN);
	assert_int_equal(gbt_artefact_tier_fit(500, 500, 9000, 10000),
			 GBT_ARTEFACT_TIER_NEARLY_POOLED);
	/* the share counts the training rows, not the fit's: 90.1% of window payers, 81% of rows */
	assert_int_equal(gbt_artefact_tier_fit(1614, 500, 79080, 97500), GBT_ARTEFACT_TIER_OWN);
	assert_int_equal(gbt_artefact_tier_fit(16770, 500, 1756412, 1769173),
			 GBT_ARTEFACT_TIER_NEARLY_POOLED);
	/* too few wins: such a tier never had a model of its own */
	assert_int_equal(gbt_artefact_tier_fit(300, 500, 9990, 10000), GBT_ARTEFACT_TIER_TOO_FEW);
	assert_string_equal(gbt_artefact_tier_fit_name(GBT_ARTEFACT_TIER_OWN), "own");
	assert_string_equal(gbt_artefact_tier_fit_name(GBT_ARTEFACT_TIER_NEARLY_POOLED),
			    "pooled: nearly all its rows");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keeps_payers_and_totals),
		cmocka_unit_test(test_many_payers_sampled_too),
		cmocka_unit_test(test_same_rows_every_time),
		cmocka_unit_test(test_under_the_cap_unchanged),
		cmocka_unit_test(test_tier_fit_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
