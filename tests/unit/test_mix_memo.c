/*
 * The kept mix (include/ltv/mix_memo.h): a call is served only when each
 * of its cohorts comes whole, the kept rows in their order (repeats
 * included), and then with the kept values; any other call is refused. And
 * the shelf hands a mix out with the memo of its key and horizon only.
 */
#include "testutil.h"

#include <string.h>

#include "ltv/mix_memo.h"
#include "ltv/prediction_memo.h"

/* Eight rows of one app and two campaigns: cohort 0 holds rows 0, 2, 5; cohort 1 rows 1, 3, 4, 6, 7. */
static const double campaign[] = { 0, 1, 0, 1, 1, 0, 1, 1 };
static const char *const apps[] = { "a" }, *const campaigns[] = { "x", "y" };

static void fixture(struct model_data *d)
{
	memset(d, 0, sizeof(*d));
	frame_init(&d->frame, 8);
	memcpy(frame_add_column(&d->frame, "campaign_code"), campaign, sizeof(campaign));
	memset(frame_add_column(&d->frame, "app_code"), 0, 8 * sizeof(double));
	d->apps = (char **)apps;
	d->n_apps = 1;
	d->campaigns = (char **)campaigns;
	d->n_campaigns = 2;
}

/* The kept rows (row 2 twice, as a weighted row's copies) and their values, 10 * row + 0.5. */
static const size_t kept[] = { 0, 1, 2, 2, 3, 4, 5, 6, 7 };
static const double kept_value[] = { 0.5, 10.5, 20.5, 20.5, 30.5, 40.5, 50.5, 60.5, 70.5 };

static struct mix_memo *kept_memo(const struct model_data *d)
{
	return mix_memo_new(d, kept, 9, kept_value);
}

static void test_whole_cohorts_in_order_are_served(void **state)
{
	const size_t one_cohort[] = { 0, 2, 2, 5 }, interleaved[] = { 1, 0, 3, 2, 2, 4, 5, 6, 7 };
	const double want_one[] = { 0.5, 20.5, 20.5, 50.5 };
	const double want_interleaved[] = { 10.5, 0.5, 30.5, 20.5, 20.5, 40.5, 50.5, 60.5, 70.5 };
	double out[9];
	struct model_data d;
	struct mix_memo *m;

	(void)state;
	fixture(&d);
	m = kept_memo(&d);
	assert_non_null(m);
	assert_true(mix_memo_get(m, &d, kept, 9, out));
	assert_memory_equal(out, kept_value, sizeof(kept_value));
	assert_true(mix_memo_get(m, &d, one_cohort, 4, out));
	assert_memory_equal(out, want_one, sizeof(want_one));
	/* the cohorts may interleave: each keeps its own order */
	assert_true(mix_memo_get(m, &d, interleaved, 9, out));
	assert_memory_equal(out, want_interleaved, sizeof(want_interleaved));
	assert_true(mix_memo_get(m, &d, NULL, 0, out));
	mix_memo_free(m);
	frame_release(&d.frame);
}

static void test_other_calls_are_refused(void **state)
{
	/* cohort 0 reordered, cut short, a copy missing, a copy too many; a row never kept */
	const size_t reordered[] = { 2, 2, 0, 5 }, short_of_one[] = { 0, 2, 2 }, one_copy[] = { 0, 2, 5 };
	const size_t extra_copy[] = { 0, 2, 2, 5, 5 }, other_row[] = { 0, 2, 2, 5, 8 };
	struct model_data d, bigger;
	struct mix_memo *m;
	double out[9];

	(void)state;
	fixture(&d);
	m = kept_memo(&d);
	assert_false(mix_memo_get(m, &d, reordered, 4, out));
	assert_false(mix_memo_get(m, &d, short_of_one, 3, out));
	assert_false(mix_memo_get(m, &d, one_copy, 3, out));
	assert_false(mix_memo_get(m, &d, extra_copy, 5, out));
	assert_false(mix_memo_get(m, &d, other_row, 5, out));
	/* another frame (one row more): refused; no memo: refused */
	fixture(&bigger);
	frame_release(&bigger.frame);
	frame_init(&bigger.frame, 9);
	assert_false(mix_memo_get(m, &bigger, kept, 9, out));
	assert_false(mix_memo_get(NULL, &d, kept, 9, out));
	mix_memo_free(m);
	frame_release(&bigger.frame);
	frame_release(&d.frame);
}

static void test_request_groups_are_not_kept(void **state)
{
	const uint32_t group[8] = { 0 };
	struct model_data d;

	(void)state;
	fixture(&d);
	d.group = group; /* curves levels per cohort and group: not what the memo checks */
	assert_null(kept_memo(&d));
	mix_memo_free(NULL);
	frame_release(&d.frame);
}

static void test_shelf_hands_the_mix_with_its_memo(void **state)
{
	struct prediction_shelf *shelf = prediction_shelf_new();
	struct prediction_memo *h30, *h90;
	struct mix_memo *mix;
	struct model_data d;
	double out[9];

	(void)state;
	fixture(&d);
	prediction_shelf_offer(shelf, "run A", prediction_memo_new(&d, 30, kept, 9));
	prediction_shelf_offer(shelf, "run A", prediction_memo_new(&d, 90, kept, 9));
	/* under another key or horizon: freed, not left (ASan/valgrind would say) */
	prediction_shelf_offer_mix(shelf, "run B", 30, kept_memo(&d));
	prediction_shelf_offer_mix(shelf, "run A", 7, kept_memo(&d));
	prediction_shelf_offer_mix(NULL, "run A", 30, kept_memo(&d));
	prediction_shelf_offer_mix(shelf, "run A", 30, kept_memo(&d));
	h30 = prediction_shelf_take(shelf, "run A", 30);
	mix = prediction_memo_take_mix(h30);
	assert_non_null(mix);
	assert_true(mix_memo_get(mix, &d, kept, 9, out));
	assert_memory_equal(out, kept_value, sizeof(kept_value));
	assert_null(prediction_memo_take_mix(h30)); /* handed once */
	assert_null(prediction_memo_take_mix(NULL));
	/* the 90-day memo got no mix */
	h90 = prediction_shelf_take(shelf, "run A", 90);
	assert_non_null(h90);
	assert_null(prediction_memo_take_mix(h90));
	mix_memo_free(mix);
	prediction_memo_free(h30);
	prediction_memo_free(h90);
	prediction_shelf_free(shelf);
	frame_release(&d.frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_cohorts_in_order_are_served),
		cmocka_unit_test(test_other_calls_are_refused),
		cmocka_unit_test(test_request_groups_are_not_kept),
		cmocka_unit_test(test_shelf_hands_the_mix_with_its_memo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
