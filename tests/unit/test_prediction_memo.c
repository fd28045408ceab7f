/*
 * The prediction memo (include/ltv/prediction_memo.h): what is kept is
 * handed back for the same frame rows only, batch-level methods are never
 * kept, and the shelf hands a memo out only under its own key and horizon,
 * once.
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "ltv/model_data.h"
#include "ltv/prediction_memo.h"

static void test_get_what_was_put(void **state)
{
	struct model_data d;
	const size_t rows[] = { 2, 5, 5, 7 }, put_rows[] = { 5, 7, 3 }, ask[] = { 7, 2, 5, 3, 9 };
	const double put[] = { 1.5, -0.0, 8 };
	const unsigned char want[] = { 1, 1, 1, 1, 0 };
	unsigned char done[5] = { 0 };
	double pred[5] = { NAN, NAN, NAN, NAN, NAN };
	const int hurdle = method_index("hurdle"), curves = method_index("curves");
	struct prediction_memo *m;

	(void)state;
	memset(&d, 0, sizeof(d));
	d.frame.n_rows = 10;
	m = prediction_memo_new(&d, 30, rows, 4);
	assert_true(prediction_memo_fits(m, &d, 30));
	assert_false(prediction_memo_fits(m, &d, 90));
	assert_true(prediction_memo_keeps(hurdle));
	assert_false(prediction_memo_keeps(curves)); /* levels cohorts from the rows it is given */
	/* row 3 is not one of the memo's rows: not kept */
	prediction_memo_put(m, hurdle, put_rows, 3, put);
	prediction_memo_put(m, curves, put_rows, 3, put);
	prediction_memo_get(m, hurdle, ask, 5, want, done, pred);
	assert_true(done[0] && pred[0] == 0.0 && signbit(pred[0])); /* row 7: -0 as put */
	assert_false(done[1]);                                      /* row 2: not predicted yet */
	assert_true(done[2] && pred[2] == 1.5);                     /* row 5 */
	assert_false(done[3]);                                      /* row 3: outside */
	assert_false(done[4]);                                      /* not wanted */
	assert_true(isnan(pred[1]) && isnan(pred[3]) && isnan(pred[4]));
	memset(done, 0, sizeof(done));
	prediction_memo_get(m, curves, ask, 5, want, done, pred);
	assert_false(done[0] || done[1] || done[2] || done[3]);
	/* already done rows are left alone */
	memset(done, 1, sizeof(done));
	pred[2] = 42;
	prediction_memo_get(m, hurdle, ask, 5, want, done, pred);
	assert_true(pred[2] == 42);
	prediction_memo_free(m);
}

static void test_shelf_hands_out_by_key_and_horizon(void **state)
{
	struct model_data d;
	const size_t rows[] = { 1, 2 };
	struct prediction_memo *h30, *h90, *other, *again;
	struct prediction_shelf *run1 = prediction_shelf_new(), *run2 = prediction_shelf_new();

	(void)state;
	memset(&d, 0, sizeof(d));
	d.frame.n_rows = 4;
	h30 = prediction_memo_new(&d, 30, rows, 2);
	h90 = prediction_memo_new(&d, 90, rows, 2);
	prediction_shelf_offer(run1, "run A", h30);
	prediction_shelf_offer(run1, "run A", h90);
	assert_null(prediction_shelf_take(run1, "run B", 30));
	assert_null(prediction_shelf_take(run1, "run A", 7));
	/* one run's shelf is not another's, even under the same key */
	assert_null(prediction_shelf_take(run2, "run A", 30));
	assert_ptr_equal(prediction_shelf_take(run1, "run A", 30), h30);
	assert_null(prediction_shelf_take(run1, "run A", 30)); /* once */
	/* a newer memo of a horizon replaces the one left there */
	again = prediction_memo_new(&d, 90, rows, 2);
	prediction_shelf_offer(run1, "run A", again);
	assert_ptr_equal(prediction_shelf_take(run1, "run A", 90), again);
	assert_null(prediction_shelf_take(run1, "run A", 90));
	prediction_memo_free(again);
	/* another key's memo replaces what is left of run A's */
	prediction_shelf_offer(run2, "run A", prediction_memo_new(&d, 90, rows, 2));
	other = prediction_memo_new(&d, 90, rows, 2);
	prediction_shelf_offer(run2, "run B", other);
	assert_null(prediction_shelf_take(run2, "run A", 90));
	/* no shelf (a stage outside a run): nothing handed out, an offered memo freed */
	assert_null(prediction_shelf_take(NULL, "run B", 90));
	prediction_shelf_offer(NULL, "run B", prediction_memo_new(&d, 30, rows, 2));
	/* freeing a shelf frees what is left on it (other, here: ASan/valgrind would say) */
	prediction_shelf_free(run1);
	prediction_shelf_free(run2);
	prediction_memo_free(h30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_what_was_put),
		cmocka_unit_test(test_shelf_hands_out_by_key_and_horizon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
