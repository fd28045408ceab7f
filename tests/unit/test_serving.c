/*
 * serving_predict (serving/serving.c) on a model version trained on a small
 * generated sample: per horizon H, a user aged a is served the observed ltv_H
 * (flagged observed) when a >= H, else the revenue so far plus the calibrated
 * revenue to come; predictions are additive (never below rev_to_date, with no
 * tolerance) and monotone across horizons (DESIGN.md "Time, windows and
 * labels"). Scored at the training as_of and at earlier ones, so that users
 * of every age relative to the horizons and snapshots occur.
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/model_loader.h"
#include "ltv/predictor.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/serving.h"

#include "fixture.h"

#define SECONDS_IN_DAY 86400

/* 3000 generated users (seed 7), thresholds lowered so every tier occurs, trained once. */
static int group_setup(void **state)
{
	const struct run_options opts = { .as_of = INT64_MIN, .command = "test_serving" };
	struct test_pipeline *fx;

	log_level_current = LOG_ERROR;
	fx = test_pipeline_new(3000, 7, "1");
	test_config_small_sample(&fx->cfg);
	test_run(&fx->cfg, &opts);
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	test_pipeline_free(*state);
	return 0;
}

struct tally {
	size_t rows, observed[PREDICTOR_MAX_HORIZONS], predicted[PREDICTOR_MAX_HORIZONS];
	size_t above_floor, between_snapshots;
};

/* The production version and the users as they were at an as_of, every row of them. */
struct served_users {
	struct registry *reg;
	struct loaded_model m;
	struct model_data d;
	size_t *rows;
};

static void served_users_open(const struct test_pipeline *fx, int64_t as_of, struct served_users *u)
{
	struct ltv_err err = { 0 };

	u->reg = NULL;
	test_production_load(fx, &u->reg, &u->m);
	if (model_data_for_scoring(&u->m, u->reg, as_of, &u->d, &err) != 0)
		fail_msg("model_data_for_scoring: %s", err.msg);
	u->rows = test_all_rows(u->d.frame.n_rows);
}

static void served_users_close(struct served_users *u)
{
	free(u->rows);
	model_data_release(&u->d);
	model_release(&u->m);
	registry_close(u->reg);
}

/* Serves every user installed by as_of with the production version and checks each value. */
static void serve_and_check(const struct test_pipeline *fx, int64_t as_of, struct tally *t)
{
	struct served_users u;
	const struct loaded_model *const m = &u.m;
	const struct model_data *const d = &u.d;
	struct served sv;
	struct ltv_err err = { 0 };
	const double *age, *seen, *window, *rev_window;

	memset(t, 0, sizeof(*t));
	served_users_open(fx, as_of, &u);
	if (serving_predict(m, d, u.rows, d->frame.n_rows, &sv, &err) != 0)
		fail_msg("serving_predict: %s", err.msg);
	age = frame_column(&d->frame, "age_days");
	seen = frame_column(&d->frame, "rev_to_date");
	window = frame_column(&d->frame, "window_days");
	rev_window = frame_column(&d->frame, "rev_window");
	assert_non_null(age);
	assert_non_null(seen);
	assert_int_equal(sv.n, d->frame.n_rows);
	assert_int_equal(sv.n_horizons, m->cfg.features.horizons.n);
	t->rows = sv.n;
	for (size_t i = 0; i < sv.n; i++) {
		int between = 0;

		/* a scoring row describes the user at their age and reads every complete day */
		assert_true(window[i] == age[i]);
		assert_true(rev_window[i] == seen[i]);
		for (size_t k = 0; k + 1 < m->cfg.features.snapshots.n; k++)
			between |= age[i] > (double)m->cfg.features.snapshots.v[k] &&
				   age[i] < (double)m->cfg.features.snapshots.v[k + 1];
		t->between_snapshots += between;
		for (size_t h = 0; h < sv.n_horizons; h++) {
			const int64_t horizon = m->cfg.features.horizons.v[h];
			const double v = sv.ltv[h][i];
			const double *label = model_data_label(d, horizon);
			const int lived = age[i] >= (double)horizon;

			assert_non_null(label);
			if (isnan(v) || isinf(v))
				fail_msg("row %zu H %lld: ltv %g", i, (long long)horizon, v);
			if (sv.observed[h][i] != lived)
				fail_msg("row %zu age %g H %lld: observed %d", i, age[i],
					 (long long)horizon, sv.observed[h][i]);
			if (lived) {
				/* the observed value itself, bit for bit */
				if (!(v == label[i]))
					fail_msg("row %zu age %g H %lld: served %.17g, observed ltv %.17g",
						 i, age[i], (long long)horizon, v, label[i]);
				/* what was seen by H is part of what was seen by as_of */
				assert_true(label[i] <= seen[i]);
				t->observed[h]++;
			} else {
				/* additive: never below the revenue so far, exactly */
				if (!(v >= seen[i]))
					fail_msg("row %zu age %g H %lld: served %.17g below rev_to_date %.17g",
						 i, age[i], (long long)horizon, v, seen[i]);
				assert_true(isnan(label[i]));
				t->predicted[h]++;
				t->above_floor += v > seen[i];
			}
			if (h > 0 && !(v >= sv.ltv[h - 1][i]))
				fail_msg("row %zu age %g: ltv_%lld %.17g below ltv_%lld %.17g", i, age[i],
					 (long long)horizon, v,
					 (long long)m->cfg.features.horizons.v[h - 1], sv.ltv[h - 1][i]);
		}
	}
	served_release(&sv);
	served_users_close(&u);
}

/* The as_of the features artefact was built at (the latest event). */
static int64_t trained_as_of(const struct test_pipeline *fx)
{
	struct registry *reg = NULL;
	struct artefact_info info;
	struct ltv_err err = { 0 };
	int64_t as_of;

	if (registry_open_readonly(fx->cfg.registry.path, &reg, &err) != 0 ||
	    registry_artefact_current(reg, "features", &info, &err) != 0)
		fail_msg("features: %s", err.msg);
	as_of = info.as_of;
	artefact_info_release(&info);
	registry_close(reg);
	return as_of;
}

/* Adds b's counts to a. */
static void tally_add(struct tally *a, const struct tally *b)
{
	a->rows += b->rows;
	a->above_floor += b->above_floor;
	a->between_snapshots += b->between_snapshots;
	for (size_t h = 0; h < PREDICTOR_MAX_HORIZONS; h++) {
		a->observed[h] += b->observed[h];
		a->predicted[h] += b->predicted[h];
	}
}

/*
 * At the training as_of, 0, 20, 45 and 80 days before it: younger users,
 * fewer horizons lived, the same rules. Together the runs exercise every
 * branch: lived and not-yet-lived users at each horizon, predictions above
 * the floor, ages between snapshots.
 */
static void test_serving_rules_at_several_as_of(void **state)
{
	const struct test_pipeline *fx = *state;
	const int64_t back[] = { 0, 20, 45, 80 };
	const int64_t as_of = trained_as_of(fx);
	struct tally all = { 0 }, t;

	for (size_t k = 0; k < sizeof(back) / sizeof(back[0]); k++) {
		serve_and_check(fx, as_of - back[k] * SECONDS_IN_DAY, &t);
		assert_true(t.rows > 100);
		for (size_t h = 0; h < fx->cfg.features.horizons.n; h++)
			assert_int_equal(t.observed[h] + t.predicted[h], t.rows);
		tally_add(&all, &t);
	}
	for (size_t h = 0; h < fx->cfg.features.horizons.n; h++)
		if (all.observed[h] < 50 || all.predicted[h] < 50)
			fail_msg("horizon %zu: %zu observed, %zu predicted rows: the test does not "
				 "exercise both", h, all.observed[h], all.predicted[h]);
	assert_true(all.above_floor > 100);      /* predictions add something to come */
	assert_true(all.between_snapshots > 100); /* and blended ages occur */
}

/* a and b hold the same bits (NaN equal to NaN) in n doubles */
static int same_bits(const double *a, const double *b, size_t n)
{
	return memcmp(a, b, n * sizeof(double)) == 0;
}

/* a and b served the same per-user values (not per horizon), bit for bit. */
static void assert_same_per_user(const struct served *a, const struct served *b)
{
	assert_true(same_bits(a->raw, b->raw, a->n) && same_bits(a->p_payer, b->p_payer, a->n));
	assert_true(same_bits(a->p_alive, b->p_alive, a->n));
	assert_true(same_bits(a->p_purchase_30d, b->p_purchase_30d, a->n));
	assert_memory_equal(a->method, b->method, a->n * sizeof(int));
	assert_memory_equal(a->fallback, b->fallback, a->n * sizeof(int));
}

/*
 * SERVING_PAYER_EVERY_HORIZON adds p_payer at the horizons other than the
 * target and changes nothing else, bit for bit: without it a horizon whose
 * rows chose no hurdle runs no hurdle trees (scoring's saving), and the
 * served values must not depend on that.
 */
/*
 * u's users predicted twice, plainly into *a and with flags into *b (the
 * test fails on an error); the target horizon's index, checked with a.
 */
static int predict_plain_and_with(struct served_users *u, unsigned flags, struct served *a,
				  struct served *b)
{
	struct ltv_err err = { 0 };
	const size_t n = u->d.frame.n_rows;
	int target;

	if (serving_predict(&u->m, &u->d, u->rows, n, a, &err) != 0 ||
	    serving_predict_with(&u->m, &u->d, u->rows, n, flags, b, &err) != 0)
		fail_msg("serving_predict: %s", err.msg);
	target = feature_params_horizon_index(&u->m.params, u->m.params.target_horizon);
	assert_true(target >= 0 && a->n_horizons > 1 && a->n > 100);
	return target;
}

/* a's and b's values, bounds and observed flags at horizon h, to the bit. */
static void assert_same_values_at(const struct served *a, const struct served *b, size_t h)
{
	assert_true(same_bits(a->ltv[h], b->ltv[h], a->n));
	assert_true(same_bits(a->ltv_lo[h], b->ltv_lo[h], a->n));
	assert_true(same_bits(a->ltv_hi[h], b->ltv_hi[h], a->n));
	assert_memory_equal(a->observed[h], b->observed[h], a->n);
}

static void test_serving_payer_flag_changes_only_payers(void **state)
{
	const struct test_pipeline *fx = *state;
	struct served_users u;
	struct served a, b;
	size_t other_payers = 0;
	int target;

	served_users_open(fx, trained_as_of(fx) - 20 * SECONDS_IN_DAY, &u);
	target = predict_plain_and_with(&u, SERVING_PAYER_EVERY_HORIZON, &a, &b);
	for (size_t h = 0; h < a.n_horizons; h++) {
		assert_same_values_at(&a, &b, h);
		assert_true(same_bits(a.raw_h[h], b.raw_h[h], a.n));
		for (size_t i = 0; i < a.n; i++) {
			if ((int)h == target) {
				assert_true(same_bits(&a.p_payer_h[h][i], &b.p_payer_h[h][i], 1));
				continue;
			}
			/* without the flag: not computed; with it: hurdle's probability */
			assert_true(isnan(a.p_payer_h[h][i]));
			other_payers += !isnan(b.p_payer_h[h][i]);
		}
	}
	assert_true(other_payers > a.n); /* the flag computed them at the other horizons */
	assert_same_per_user(&a, &b);
	served_release(&a);
	served_release(&b);
	served_users_close(&u);
}

/*
 * SERVING_RAW_OBSERVED_UNREAD (score's flag) leaves out the rows observed at
 * a horizon other than the target's: every value but their raw_h there is
 * the same, bit for bit (their raw_h is too where a method's age blend made
 * it rev_window + 0 and the global median is 0), with select.rank_cells on (an observed row can
 * share a ranked cell with a row younger than the horizon) and off. The
 * users at 20 days before as_of are of every age relative to the horizons.
 */
static void test_serving_unread_flag_changes_only_observed_raw(void **state)
{
	const struct test_pipeline *fx = *state;
	struct served_users u;
	struct loaded_model *const m = &u.m;

	served_users_open(fx, trained_as_of(fx) - 20 * SECONDS_IN_DAY, &u);
	for (int cells = 0; cells <= 1; cells++) {
		struct served a, b;
		size_t left_out = 0, young = 0;
		int target;

		m->cfg.select.rank_cells = cells;
		target = predict_plain_and_with(&u, SERVING_RAW_OBSERVED_UNREAD, &a, &b);
		for (size_t h = 0; h < a.n_horizons; h++) {
			assert_same_values_at(&a, &b, h);
			assert_true(same_bits(a.p_payer_h[h], b.p_payer_h[h], a.n));
			for (size_t i = 0; i < a.n; i++) {
				if ((int)h != target && a.observed[h][i]) {
					left_out++;
					continue;
				}
				young += (int)h != target;
				assert_true(same_bits(&a.raw_h[h][i], &b.raw_h[h][i], 1));
			}
		}
		/* rows to leave out, beside rows of the same horizons that were predicted */
		assert_true(left_out > 0 && young > 0);
		assert_same_per_user(&a, &b);
		served_release(&a);
		served_release(&b);
	}
	served_users_close(&u);
}

/*
 * SERVING_LEAN (score's flag) keeps no raw_h and no p_payer_h at a horizon
 * other than the target's (NULL), and every value it keeps is the same, bit
 * for bit; served_copy_row into such a result (an A/B candidate's row)
 * copies what it keeps.
 */
static void test_serving_lean_flag_keeps_every_value(void **state)
{
	const struct test_pipeline *fx = *state;
	struct served_users u;
	struct served a, b;
	int target;

	served_users_open(fx, trained_as_of(fx) - 20 * SECONDS_IN_DAY, &u);
	target = predict_plain_and_with(&u, SERVING_LEAN, &a, &b);
	for (size_t h = 0; h < a.n_horizons; h++) {
		assert_same_values_at(&a, &b, h);
		assert_null(b.raw_h[h]);
		if ((int)h == target)
			assert_true(same_bits(a.p_payer_h[h], b.p_payer_h[h], a.n));
		else
			assert_null(b.p_payer_h[h]);
	}
	assert_same_per_user(&a, &b);
	served_copy_row(&b, 0, &a, 1);
	assert_true(same_bits(&b.ltv[target][0], &a.ltv[target][1], 1));
	assert_true(same_bits(&b.p_payer_h[target][0], &a.p_payer_h[target][1], 1));
	served_release(&a);
	served_release(&b);
	served_users_close(&u);
}

/*
 * select.horizon_step 1 (serving.c step_between): a user who has not lived
 * the previous horizon gets that horizon's served value plus what this
 * horizon's own methods put between the two (their calibrated value here
 * minus at the previous horizon, never below 0), bit for bit; a user who
 * has lived it is served as without the step. The values stay additive and
 * monotone, and predictor_predict_raw_at at a horizon's own horizon is
 * predictor_predict_raw.
 */
static void test_serving_horizon_step(void **state)
{
	const struct test_pipeline *fx = *state;
	struct served_users u;
	struct loaded_model *const m = &u.m;
	const struct model_data *const d = &u.d;
	struct served a, b;
	struct ltv_err err = { 0 };
	size_t stepped = 0, differ = 0, kept = 0;
	const double *seen;

	served_users_open(fx, trained_as_of(fx) - 20 * SECONDS_IN_DAY, &u);
	seen = frame_column(&d->frame, "rev_to_date");
	m->cfg.select.horizon_step = 0;
	if (serving_predict(m, d, u.rows, d->frame.n_rows, &a, &err) != 0)
		fail_msg("serving_predict: %s", err.msg);
	m->cfg.select.horizon_step = 1;
	if (serving_predict(m, d, u.rows, d->frame.n_rows, &b, &err) != 0)
		fail_msg("serving_predict with the step: %s", err.msg);
	assert_true(a.n_horizons > 1 && a.n > 100);
	assert_true(same_bits(a.ltv[0], b.ltv[0], a.n));
	for (size_t h = 1; h < a.n_horizons; h++) {
		const int64_t horizon = m->params.horizons.v[h], prev = m->params.horizons.v[h - 1];
		double *here = xmalloc(a.n * sizeof(double)), *before = xmalloc(a.n * sizeof(double));
		double *same = xmalloc(a.n * sizeof(double));

		if (predictor_predict_raw_at(&m->pred, d, u.rows, a.n, horizon, prev, before, &err) != 0 ||
		    predictor_predict_raw_at(&m->pred, d, u.rows, a.n, horizon, horizon, same, &err) != 0)
			fail_msg("predictor_predict_raw_at: %s", err.msg);
		assert_true(same_bits(same, a.raw_h[h], a.n));
		memcpy(here, a.raw_h[h], a.n * sizeof(double));
		predictor_calibrate(&m->pred, d, u.rows, a.n, horizon, seen, here);
		predictor_calibrate(&m->pred, d, u.rows, a.n, horizon, seen, before);
		for (size_t i = 0; i < a.n; i++) {
			if (b.observed[h - 1][i]) {
				assert_true(same_bits(&a.ltv[h][i], &b.ltv[h][i], 1));
				kept++;
				continue;
			}
			if (!(b.ltv[h][i] == b.ltv[h - 1][i] + fmax(here[i] - before[i], 0.0)))
				fail_msg("row %zu H %lld: served %.17g, step rule %.17g", i, (long long)horizon,
					 b.ltv[h][i], b.ltv[h - 1][i] + fmax(here[i] - before[i], 0.0));
			assert_true(b.ltv[h][i] >= b.ltv[h - 1][i] && b.ltv[h][i] >= seen[i]);
			stepped++;
			differ += b.ltv[h][i] != a.ltv[h][i];
		}
		free(here);
		free(before);
		free(same);
	}
	/* both branches occur, and the step changes values (else it tests nothing) */
	assert_true(stepped > 100 && kept > 100 && differ > 10);
	served_release(&a);
	served_release(&b);
	served_users_close(&u);
}

/*
 * The floor's share between horizons (calibrate.floor_share;
 * predictor_floor_between): with share f for every tier, a user who has
 * lived neither horizon gets the shorter horizon's value + f × (the larger
 * of the two − it), bit for bit (the longer horizon's own value being its
 * calibrated raw prediction); a user who has lived the shorter horizon is
 * served exactly as with the plain floor (f = 1, what a version without
 * shares serves). Values stay monotone across horizons and never below the
 * revenue so far; f = 0 serves the shorter horizon's value.
 */
static void test_serving_floor_share(void **state)
{
	const struct test_pipeline *fx = *state;
	static const double shares[] = { 0.5, 0.0 };
	struct served_users u;
	struct loaded_model *const m = &u.m;
	const struct model_data *const d = &u.d;
	struct served a, b;
	struct ltv_err err = { 0 };
	size_t shared = 0, differ = 0, kept = 0;
	const double *seen;

	served_users_open(fx, trained_as_of(fx) - 20 * SECONDS_IN_DAY, &u);
	seen = frame_column(&d->frame, "rev_to_date");
	for (int t = 0; t < 4; t++)
		for (size_t h = 0; h < PREDICTOR_MAX_HORIZONS; h++)
			/* trained with the default (calibrate.floor_share 1): fitted shares */
			assert_true(m->pred.floor_share[t][h] >= 0.0 && m->pred.floor_share[t][h] <= 1.0);
	if (serving_predict(m, d, u.rows, d->frame.n_rows, &a, &err) != 0)
		fail_msg("serving_predict: %s", err.msg);
	for (size_t k = 0; k < sizeof(shares) / sizeof(shares[0]); k++) {
		for (int t = 0; t < 4; t++)
			for (size_t h = 0; h < PREDICTOR_MAX_HORIZONS; h++)
				m->pred.floor_share[t][h] = shares[k];
		if (serving_predict(m, d, u.rows, d->frame.n_rows, &b, &err) != 0)
			fail_msg("serving_predict with share %g: %s", shares[k], err.msg);
		assert_true(a.n_horizons > 1 && a.n > 100);
		assert_true(same_bits(a.ltv[0], b.ltv[0], a.n));
		for (size_t h = 1; h < a.n_horizons; h++) {
			const int64_t horizon = m->params.horizons.v[h];
			double *own = xmalloc(a.n * sizeof(double));

			memcpy(own, b.raw_h[h], a.n * sizeof(double));
			predictor_calibrate(&m->pred, d, u.rows, a.n, horizon, seen, own);
			for (size_t i = 0; i < a.n; i++) {
				const double prev = b.ltv[h - 1][i];

				/* (an observed value is ltv_H itself, below revenue so far for users older than H) */
				if (!(b.ltv[h][i] >= prev && (b.observed[h][i] || b.ltv[h][i] >= seen[i])))
					fail_msg("row %zu H %lld share %g: served %.17g below shorter %.17g or seen %.17g (observed %d %d)",
						 i, (long long)horizon, shares[k], b.ltv[h][i], prev, seen[i],
						 b.observed[h - 1][i], b.observed[h][i]);
				if (b.observed[h - 1][i]) {
					assert_true(same_bits(&a.ltv[h][i], &b.ltv[h][i], 1));
					kept++;
					continue;
				}
				if (!(b.ltv[h][i] == (own[i] <= prev ? prev : prev + shares[k] * (own[i] - prev))))
					fail_msg("row %zu H %lld share %g: served %.17g, own %.17g, shorter %.17g", i,
						 (long long)horizon, shares[k], b.ltv[h][i], own[i], prev);
				if (shares[k] == 0)
					assert_true(b.ltv[h][i] == prev);
				shared++;
				differ += b.ltv[h][i] != a.ltv[h][i];
			}
			free(own);
		}
		served_release(&b);
	}
	/* both branches occur, and the share changes values (else it tests nothing) */
	assert_true(shared > 100 && kept > 100 && differ > 10);
	served_release(&a);
	served_users_close(&u);
}

/*
 * predictor_floor_share_fit on hand-made values: two users served 10 and 0
 * at the shorter horizon and 4 and 20 by the longer horizon's own methods.
 * The plain floor serves max: 10 and 20, a sum of 30 where the longer
 * horizon's own sum is 24. The share 0.7 brings it back: 10 + (0 + 0.7 ×
 * 20) = 24. Fitted to actuals instead: their sum, within [shorter's sum,
 * the plain floor's]; clipped to 0 and 1 beyond; NaN when no user's longer
 * value is above the shorter (every share serves the same).
 */
static void test_floor_share_fit_hand_made(void **state)
{
	const double shorter[] = { 10, 0 }, longer[] = { 4, 20 };
	const double actual_mid[] = { 12, 15 }, actual_high[] = { 30, 30 }, actual_low[] = { 2, 3 };
	const double flat[] = { 10, 0 };
	double f, sum = 0;

	(void)state;
	f = predictor_floor_share_fit(shorter, longer, NULL, 2);
	assert_true(fabs(f - 0.7) < 1e-12);
	for (size_t i = 0; i < 2; i++) {
		const double served = predictor_floor_between(shorter[i], longer[i], f);

		assert_true(served >= shorter[i]);
		sum += served;
	}
	assert_true(fabs(sum - 24) < 1e-12);
	assert_true(predictor_floor_between(10, 4, 1) + predictor_floor_between(0, 20, 1) == 30);
	f = predictor_floor_share_fit(shorter, longer, actual_mid, 2); /* (27 - 10) / 20 */
	assert_true(fabs(f - 0.85) < 1e-12);
	assert_true(predictor_floor_share_fit(shorter, longer, actual_high, 2) == 1.0);
	assert_true(predictor_floor_share_fit(shorter, longer, actual_low, 2) == 0.0);
	assert_true(isnan(predictor_floor_share_fit(shorter, flat, NULL, 2)));
	assert_true(predictor_floor_between(5, 9, 0) == 5 && predictor_floor_between(5, 9, 0.25) == 6);
}

/* select's metric `name` (a string), or fails. */
static char *select_metric(const struct test_pipeline *fx, const char *name)
{
	struct registry *reg = NULL;
	struct artefact_info info = { 0 };
	struct ltv_err err = { 0 };
	const cJSON *item;
	cJSON *m;
	char *v;

	if (registry_open(fx->cfg.registry.path, 5, &reg, &err) != 0 ||
	    registry_artefact_current(reg, "select", &info, &err) != 0)
		fail_msg("registry: %s", err.msg);
	m = cJSON_Parse(info.metrics);
	assert_non_null(m);
	item = cJSON_GetObjectItemCaseSensitive(m, name);
	if (!cJSON_IsString(item))
		fail_msg("select metric '%s' missing", name);
	v = xstrdup(item->valuestring);
	cJSON_Delete(m);
	artefact_info_release(&info);
	registry_close(reg);
	return v;
}

/*
 * select.rank_share 3: a share is kept when its validation campaign WAPE is
 * no worse, and when worse only if the paired bootstrap does not call the
 * mix without it significantly better ("(not significantly worse)"); 1 drops
 * every share that is worse. The figures behind each verdict are the same
 * under both (the share and the mixes do not depend on the mode). Runs last:
 * it leaves select refitted with the mode of its last run.
 */
static void test_rank_share_mode_3(void **state)
{
	struct test_pipeline *fx = *state;
	const struct run_options opts = { .from = "select", .to = "select", .force = 1,
					  .as_of = INT64_MIN, .command = "test_serving" };
	size_t worse = 0, kept3 = 0, dropped3 = 0;

	for (size_t h = 0; h < fx->cfg.features.horizons.n; h++) {
		char key[48], *v1, *v3;
		double with1, alone1, with3, alone3;

		snprintf(key, sizeof(key), "rank_share_h%lld", (long long)fx->cfg.features.horizons.v[h]);
		test_set(&fx->cfg, "select.rank_share=%s", "1");
		test_run(&fx->cfg, &opts);
		v1 = select_metric(fx, key);
		test_set(&fx->cfg, "select.rank_share=%s", "3");
		test_run(&fx->cfg, &opts);
		v3 = select_metric(fx, key);
		assert_int_equal(sscanf(strstr(v1, "WAPE "), "WAPE %lf with it, %lf", &with1, &alone1), 2);
		assert_int_equal(sscanf(strstr(v3, "WAPE "), "WAPE %lf with it, %lf", &with3, &alone3), 2);
		assert_true(with1 == with3 && alone1 == alone3);
		if (with1 <= alone1) {
			assert_true(strncmp(v1, "kept:", 5) == 0 && strncmp(v3, "kept:", 5) == 0);
		} else {
			worse++;
			assert_true(strncmp(v1, "dropped:", 8) == 0);
			assert_true(strncmp(v3, "dropped:", 8) == 0 ||
				    strstr(v3, "(not significantly worse)") != NULL);
			dropped3 += strncmp(v3, "dropped:", 8) == 0;
			kept3 += strstr(v3, "(not significantly worse)") != NULL;
		}
		free(v1);
		free(v3);
	}
	test_set(&fx->cfg, "select.rank_share=%s", "1");
	/*
	 * On this sample (seed 7, 3,000 users) h30's and h90's shares are worse
	 * on validation and mode 3 keeps both as not significantly worse (with
	 * ratios one row carries left out, rank_share.c, the h30 share's excess
	 * fell from significant to noise); a share it drops is checked above
	 * whenever one is (dropped3 counts them: 0 here).
	 */
	assert_true(worse >= 2 && kept3 >= 2 && dropped3 + kept3 == worse);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serving_rules_at_several_as_of),
		cmocka_unit_test(test_serving_payer_flag_changes_only_payers),
		cmocka_unit_test(test_serving_unread_flag_changes_only_observed_raw),
		cmocka_unit_test(test_serving_lean_flag_keeps_every_value),
		cmocka_unit_test(test_serving_horizon_step),
		cmocka_unit_test(test_serving_floor_share),
		cmocka_unit_test(test_floor_share_fit_hand_made),
		cmocka_unit_test(test_rank_share_mode_3),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
