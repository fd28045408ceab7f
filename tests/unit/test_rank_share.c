/*
 * Unit tests for the rank share (serving/rank_share.c): the ranker is the
 * method that orders users' revenue to come best on validation; the shared
 * values of a validation campaign sum to the chosen method's total for it;
 * a campaign without validation rows of its own takes the tier's pooled
 * ratio; ratios are kept per age cell; the share survives its blob; a
 * campaign served by a BTYD method gets no share and lends its rows to no
 * other ratio; a campaign cell one row carries takes the tier's ratio. (That a user's served value does not
 * depend on batch-mates: tests/unit/test_serve_batch.c.)
 */
#include "testutil.h"

#include <math.h>
#include <stdint.h>

#include "ltv/model_data.h"
#include "ltv/rank_share.h"

#define N_ROWS 120
#define MIN_USERS 50

/*
 * The validation rows both tests share: one app, campaigns c0 and c1 in
 * turn (c2 has no rows), revenue in the window 0..4 and to come 0..10, every
 * row in age cell 0, and no method's prediction yet but the ranker's
 * ("hurdle"), which orders users perfectly and stands too low. Each test
 * sets the other methods' predictions and the chosen method per row.
 */
struct share_rows {
	struct model_data d;
	char *apps[1], *campaigns[3];
	double campaign[N_ROWS], rev[N_ROWS], ltv[N_ROWS], *pred[METHOD_COUNT];
	size_t rows[N_ROWS];
	int chosen[N_ROWS];
	struct rank_cell cell[N_ROWS];
};

static const struct rank_cell at0 = { 0, 0, 0 };

static void share_rows_init(struct share_rows *f, int ranker)
{
	memset(f, 0, sizeof(*f));
	f->apps[0] = (char *)"app";
	f->campaigns[0] = (char *)"c0";
	f->campaigns[1] = (char *)"c1";
	f->campaigns[2] = (char *)"c2";
	for (int m = 0; m < METHOD_COUNT; m++)
		f->pred[m] = xmalloc(N_ROWS * sizeof(double));
	for (size_t i = 0; i < N_ROWS; i++) {
		const double future = (double)((i * 37) % 11); /* revenue to come, 0..10 */

		f->rows[i] = i;
		f->cell[i] = at0;
		f->campaign[i] = (double)(i % 2);
		f->rev[i] = (double)(i % 5);
		f->ltv[i] = f->rev[i] + future;
		for (int m = 0; m < METHOD_COUNT; m++)
			f->pred[m][i] = NAN; /* not a candidate ranker: no value for every row */
		f->pred[ranker][i] = f->rev[i] + 0.5 * future + 1;
	}
	frame_init(&f->d.frame, N_ROWS);
	memcpy(frame_add_column(&f->d.frame, "campaign_code"), f->campaign, sizeof(f->campaign));
	memcpy(frame_add_column(&f->d.frame, "rev_window"), f->rev, sizeof(f->rev));
	memcpy(frame_add_column(&f->d.frame, "ltv_30"), f->ltv, sizeof(f->ltv));
	memset(frame_add_column(&f->d.frame, "app_code"), 0, N_ROWS * sizeof(double));
	f->d.apps = f->apps;
	f->d.n_apps = 1;
	f->d.campaigns = f->campaigns;
	f->d.n_campaigns = 3;
}

static void share_rows_release(struct share_rows *f)
{
	for (int m = 0; m < METHOD_COUNT; m++)
		free(f->pred[m]);
	frame_release(&f->d.frame);
}

static void test_share_keeps_campaign_totals(void **state)
{
	const int good = method_index("hurdle"), flat = method_index("multiplier");
	double sum_chosen[2] = { 0 }, sum_shared[2] = { 0 }, all_flat = 0, all_good = 0;
	struct share_rows f;
	struct rank_share s, back;
	struct blob_writer w;
	struct blob_reader r;
	struct ltv_err err = { 0 };
	uint8_t *blob;
	size_t len;

	(void)state;
	share_rows_init(&f, good);
	for (size_t i = 0; i < N_ROWS; i++) {
		f.chosen[i] = flat;
		f.pred[flat][i] = f.rev[i] + (i % 2 ? 20.0 : 10.0); /* the campaign totals, no order */
	}
	rank_share_init(&s);
	rank_share_fit(&s, &f.d, 30, f.rows, N_ROWS, f.pred, f.chosen, f.cell, 1, MIN_USERS, 2);
	assert_int_equal(rank_share_ranker(&s, 3), good);
	assert_true(s.gini[0] > 0.99);
	/* Campaign totals of the chosen method kept, row by row from the stored ratio. */
	for (size_t i = 0; i < N_ROWS; i++) {
		const size_t c = (size_t)f.campaign[i];
		double ratio = rank_share_ratio(&s, "app", f.campaigns[c], 3, flat, at0);

		assert_false(isnan(ratio));
		sum_chosen[c] += f.pred[flat][i] - f.rev[i];
		sum_shared[c] += rank_share_apply(ratio, f.pred[good][i], f.rev[i]) - f.rev[i];
		all_flat += f.pred[flat][i] - f.rev[i];
		all_good += f.pred[good][i] - f.rev[i];
	}
	assert_double_near(sum_shared[0], sum_chosen[0], 1e-9);
	assert_double_near(sum_shared[1], sum_chosen[1], 1e-9);
	/* Users now ordered as the ranker orders them: more to come, more predicted. */
	assert_true(rank_share_apply(rank_share_ratio(&s, "app", "c0", 3, flat, at0), 9, 0) >
		    rank_share_apply(rank_share_ratio(&s, "app", "c0", 3, flat, at0), 2, 0));
	/* A campaign validation never saw: the tier's ratio, pooled over its rows. */
	assert_double_near(rank_share_ratio(&s, "app", "c2", 3, flat, at0), all_flat / all_good, 1e-12);
	/* The ranker itself, the blend and the median are served as they are. */
	assert_true(isnan(rank_share_ratio(&s, "app", "c0", 3, good, at0)));
	assert_true(isnan(rank_share_ratio(&s, "app", "c0", 3, METHOD_BLEND, at0)));
	/* Through its blob, the same share. */
	blob_writer_init(&w);
	rank_share_put(&w, &s);
	blob = blob_writer_detach(&w, &len);
	blob_reader_init(&r, blob, len);
	rank_share_init(&back);
	assert_int_equal(rank_share_get(&r, &back, &err), 0);
	assert_int_equal(rank_share_ranker(&back, 3), good);
	assert_double_near(rank_share_ratio(&back, "app", "c1", 3, flat, at0),
			   rank_share_ratio(&s, "app", "c1", 3, flat, at0), 0);
	assert_double_near(rank_share_ratio(&back, "app", "c2", 3, flat, at0), all_flat / all_good, 1e-12);
	/*
	 * Two age cells, the chosen method twice as high as the ranker in the
	 * first and four times in the second: each cell keeps its own total,
	 * and a row between them weighs both as methods are served.
	 */
	for (size_t i = 0; i < N_ROWS; i++) {
		f.cell[i] = (struct rank_cell){ (int)(i % 4 < 2 ? 0 : 1), (int)(i % 4 < 2 ? 0 : 1), 0 };
		f.pred[flat][i] = f.rev[i] + (f.cell[i].lo ? 4 : 2) * (f.pred[good][i] - f.rev[i]);
	}
	rank_share_fit(&s, &f.d, 30, f.rows, N_ROWS, f.pred, f.chosen, f.cell, 2, MIN_USERS, 2);
	assert_double_near(rank_share_ratio(&s, "app", "c2", 3, flat, (struct rank_cell){ 0, 0, 0 }), 2, 1e-12);
	assert_double_near(rank_share_ratio(&s, "app", "c2", 3, flat, (struct rank_cell){ 1, 1, 0 }), 4, 1e-12);
	assert_double_near(rank_share_ratio(&s, "app", "c2", 3, flat, (struct rank_cell){ 0, 1, 0.25 }), 2.5,
			   1e-12);
	assert_true(isnan(rank_share_ratio(&s, "app", "c2", 3, flat, (struct rank_cell){ 2, 2, 0 })));
	/* Too few validation rows: no ranker, no share. */
	rank_share_fit(&s, &f.d, 30, f.rows, MIN_USERS - 1, f.pred, f.chosen, f.cell, 1, MIN_USERS, 2);
	assert_int_equal(rank_share_ranker(&s, 3), -1);
	assert_true(isnan(rank_share_ratio(&s, "app", "c0", 3, flat, at0)));
	free(blob);
	rank_share_release(&s);
	rank_share_release(&back);
	share_rows_release(&f);
}


/*
 * A campaign cell one row carries (more than half of the chosen method's
 * revenue to come: one large payer the multiplier scales up) takes its
 * tier's ratio, as a cell with too few rows does; just under half, the
 * campaign's own ratio stands. Campaign c1 keeps its own ratio throughout.
 */
static void test_one_row_does_not_carry_a_ratio(void **state)
{
	const int good = method_index("hurdle"), flat = method_index("multiplier");
	static const double whales[] = { 1000, 500 }; /* c0's other 59 rows: 590 to come */
	struct share_rows f;
	struct rank_share s;

	(void)state;
	share_rows_init(&f, good);
	for (size_t k = 0; k < sizeof(whales) / sizeof(whales[0]); k++) {
		double c_flat[2] = { 0 }, c_good[2] = { 0 }, all_flat = 0, all_good = 0;

		for (size_t i = 0; i < N_ROWS; i++) {
			const size_t c = (size_t)f.campaign[i];

			f.chosen[i] = flat;
			f.pred[flat][i] = f.rev[i] + (i == 0 ? whales[k] : c ? 20.0 : 10.0);
			c_flat[c] += f.pred[flat][i] - f.rev[i];
			c_good[c] += f.pred[good][i] - f.rev[i];
			all_flat += f.pred[flat][i] - f.rev[i];
			all_good += f.pred[good][i] - f.rev[i];
		}
		rank_share_init(&s);
		rank_share_fit(&s, &f.d, 30, f.rows, N_ROWS, f.pred, f.chosen, f.cell, 1, MIN_USERS, 2);
		assert_int_equal(rank_share_ranker(&s, 3), good);
		/* the tier's cell is not carried by row 0 (1000 of 2790, 500 of 2290) */
		assert_double_near(rank_share_ratio(&s, "app", "c0", 3, flat, at0),
				   whales[k] > 590 ? all_flat / all_good : c_flat[0] / c_good[0], 1e-12);
		assert_double_near(rank_share_ratio(&s, "app", "c1", 3, flat, at0), c_flat[1] / c_good[1], 1e-12);
		rank_share_release(&s);
	}
	share_rows_release(&f);
}

/*
 * Campaign c0 served by bgnbd, c1 by the multiplier: c0 gets no share (nor
 * would pareto_nbd), c1's ratio is its own, and a campaign validation never
 * saw takes the tier's ratio pooled over the shared rows only (c1's).
 */
static void test_no_share_where_btyd_serves(void **state)
{
	const int good = method_index("hurdle"), flat = method_index("multiplier");
	const int bgnbd = method_index("bgnbd"), pareto = method_index("pareto_nbd");
	double c1_flat = 0, c1_good = 0;
	struct share_rows f;
	struct rank_share s;

	(void)state;
	share_rows_init(&f, good);
	for (size_t i = 0; i < N_ROWS; i++) {
		const double to_come = f.pred[good][i] - f.rev[i];

		f.chosen[i] = i % 2 ? flat : bgnbd;
		f.pred[flat][i] = f.rev[i] + 10.0;
		/* c0's chosen method, three times the ranker's level: would pull a pooled ratio up */
		f.pred[bgnbd][i] = f.rev[i] + 3 * to_come + (double)(i % 3);
		if (i % 2) {
			c1_flat += f.pred[flat][i] - f.rev[i];
			c1_good += to_come;
		}
	}
	rank_share_init(&s);
	rank_share_fit(&s, &f.d, 30, f.rows, N_ROWS, f.pred, f.chosen, f.cell, 1, MIN_USERS / 2, 2);
	assert_int_equal(rank_share_ranker(&s, 3), good);
	assert_true(isnan(rank_share_ratio(&s, "app", "c0", 3, bgnbd, at0)));
	assert_true(isnan(rank_share_ratio(&s, "app", "c2", 3, bgnbd, at0)));
	assert_true(isnan(rank_share_ratio(&s, "app", "c0", 3, pareto, at0)));
	assert_double_near(rank_share_ratio(&s, "app", "c1", 3, flat, at0), c1_flat / c1_good, 1e-12);
	assert_double_near(rank_share_ratio(&s, "app", "c2", 3, flat, at0), c1_flat / c1_good, 1e-12);
	rank_share_release(&s);
	share_rows_release(&f);
}

/*
 * select.rank_cells on hand-made rows (rank_share_within_cells): the chosen
 * method gives each cell one value (curves), the ranker orders its rows and
 * the cell keeps its total; a cell the ranker gives nothing, a cohort of one
 * row and a row of no group keep their values; a row between two age cells
 * takes each cell's ratio by its weight, and its group's total is kept.
 */
static void test_within_cells_keeps_cell_totals(void **state)
{
	/* group 0: four rows in cell 0 (6 each to come), two in cell 1 the ranker gives 0 */
	/* group 1: one row; group 2: rows in cell 0, in cell 1 and between them; SIZE_MAX: none */
	const size_t group[] = { 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, SIZE_MAX };
	const struct rank_cell cell[] = {
		{ 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 1, 1, 0 }, { 1, 1, 0 },
		{ 0, 0, 0 }, { 0, 0, 0 }, { 1, 1, 0 }, { 0, 1, 0.25 }, { 0, 0, 0 },
	};
	const double ranker[] = { 1, 2, 3, 6, 0, 0, 100, 2, 1, 4, 9 };
	double to_come[] = { 6, 6, 6, 6, 1, 1, 5, 3, 2, 2.5, 7 };
	const double c0 = 0.75 * 2.5 + 3, r0 = 0.75 * 4 + 2, c1 = 0.25 * 2.5 + 2, r1 = 0.25 * 4 + 1;

	(void)state;
	rank_share_within_cells(group, 3, cell, ranker, to_come, 11);
	/* cell 0 of group 0: 24 to come shared as 1:2:3:6 */
	assert_double_near(to_come[0], 2, 1e-12);
	assert_double_near(to_come[1], 4, 1e-12);
	assert_double_near(to_come[2], 6, 1e-12);
	assert_double_near(to_come[3], 12, 1e-12);
	assert_double_near(to_come[4], 1, 0);
	assert_double_near(to_come[5], 1, 0);
	assert_double_near(to_come[6], 5, 1e-12);
	assert_double_near(to_come[7], c0 / r0 * 2, 1e-12);
	assert_double_near(to_come[8], c1 / r1 * 1, 1e-12);
	assert_double_near(to_come[9], 0.75 * c0 / r0 * 4 + 0.25 * c1 / r1 * 4, 1e-12);
	assert_double_near(to_come[7] + to_come[8] + to_come[9], 3 + 2 + 2.5, 1e-12);
	assert_double_near(to_come[10], 7, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share_keeps_campaign_totals),
		cmocka_unit_test(test_one_row_does_not_carry_a_ratio),
		cmocka_unit_test(test_no_share_where_btyd_serves),
		cmocka_unit_test(test_within_cells_keeps_cell_totals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
