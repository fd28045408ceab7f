/*
 * The server serves concurrent single predictions together
 * (serve_predict_jobs), and the curves method levels a campaign cohort from
 * the revenue of the users predicted with it. A single prediction must not
 * depend on its batch-mates: user A served alone and A served in one batch
 * with big spenders of its own campaign get the same bytes. The same users
 * through serving_predict without model_data.group (a batch request, or
 * `score`) do level together, which shows that the check can fail.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/predict_user.h"
#include "ltv/serve_internal.h"

#include "fixture.h"

/* Tree models cut short so that curves serves most campaigns. */
static int group_setup(void **state)
{
	const struct run_options opts = { .as_of = INT64_MIN, .command = "test_serve_batch" };
	struct test_pipeline *fx;

	log_level_current = LOG_ERROR;
	fx = test_pipeline_new(2000, 7, "1");
	test_config_small_sample(&fx->cfg);
	test_set(&fx->cfg, "hurdle.n_rounds=1");
	test_set(&fx->cfg, "multiplier.n_rounds=1");
	test_set(&fx->cfg, "lookalike.k=1");
	test_set(&fx->cfg, "curves.shrinkage_users=0");
	/* 2: the share whatever validation totals say (this small sample would drop it) */
	test_set(&fx->cfg, "select.rank_share=2");
	test_run(&fx->cfg, &opts);
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	test_pipeline_free(*state);
	return 0;
}

/* One user of app/campaign aged 5 days who spent rev in the window. */
static struct user_batch *one_user(const struct loaded_model *m, const char *app,
				   const char *campaign, double rev)
{
	struct user_batch *b = xcalloc(1, sizeof(*b));
	struct ltv_err err = { 0 };

	user_batch_init(b, m, 1);
	if (user_batch_set_names(b, 0, app, campaign, &err) != 0 ||
	    user_batch_set(b, 0, "age_days", 5, &err) != 0 ||
	    user_batch_set(b, 0, "rev_window", rev, &err) != 0 ||
	    user_batch_set(b, 0, "purchases_window", rev > 100 ? 9 : 1, &err) != 0)
		fail_msg("user: %s", err.msg);
	return b;
}

/* The answers of users[0..n) served as one batch of single predictions. */
static void serve_together(struct serve *s, struct serve_model *sm, struct user_batch **users,
			   size_t n, struct serve_reply *out)
{
	struct predict_job jobs[8], *ptrs[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		jobs[i] = (struct predict_job){ .user = users[i], .model = sm, .out = &out[i] };
		ptrs[i] = &jobs[i];
	}
	serve_predict_jobs(s, ptrs, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].status, 200);
}

/* ltv at the target horizon of row 0 of u served through serving_predict with rows of others. */
static double level_of(const struct loaded_model *m, struct user_batch **users, size_t n)
{
	struct user_batch b;
	struct served sv;
	struct ltv_err err = { 0 };
	size_t *rows = test_all_rows(n);
	double v;

	user_batch_init(&b, m, n);
	for (size_t i = 0; i < n; i++)
		user_batch_copy_row(&b, i, users[i], 0);
	if (user_batch_finish(&b, m, &err) != 0 || serving_predict(m, &b.d, rows, n, &sv, &err) != 0)
		fail_msg("serving_predict: %s", err.msg);
	v = sv.ltv[feature_params_horizon_index(&m->params, m->params.target_horizon)][0];
	served_release(&sv);
	user_batch_release(&b);
	free(rows);
	return v;
}

static void test_single_prediction_ignores_batch_mates(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct serve s;
	struct serve_model sm;
	struct user_batch *users[6];
	struct serve_reply alone = { 0 }, together[6];
	const char *app = NULL, *campaign = NULL;

	memset(&s, 0, sizeof(s));
	memset(&sm, 0, sizeof(sm));
	memset(together, 0, sizeof(together));
	serve_metrics_init(&s.metrics);
	test_production_load(fx, &reg, &sm.m);
	atomic_init(&sm.refs, 1);
	/* a known cohort that curves serves */
	for (size_t k = 0; k < sm.m.enc.n_apps * sm.m.enc.n_campaigns && !app; k++) {
		struct user_batch *u = one_user(&sm.m, sm.m.enc.apps[k / sm.m.enc.n_campaigns],
						sm.m.enc.campaigns[k % sm.m.enc.n_campaigns], 3);
		struct serve_reply r = { 0 };

		serve_together(&s, &sm, &u, 1, &r);
		if (strstr(r.body, "\"method\":\"curves\"")) {
			app = sm.m.enc.apps[k / sm.m.enc.n_campaigns];
			campaign = sm.m.enc.campaigns[k % sm.m.enc.n_campaigns];
		}
		free(r.body);
		user_batch_release(u);
		free(u);
	}
	if (!app)
		fail_msg("no campaign is served by curves");
	users[0] = one_user(&sm.m, app, campaign, 3);
	for (size_t i = 1; i < 6; i++)
		users[i] = one_user(&sm.m, app, campaign, 900);
	serve_together(&s, &sm, users, 1, &alone);
	serve_together(&s, &sm, users, 6, together);
	assert_string_equal(together[0].body, alone.body);
	/* the same users levelled together (a batch request): A's value moves */
	assert_true(level_of(&sm.m, users, 6) > 2 * level_of(&sm.m, users, 1));
	for (size_t i = 0; i < 6; i++) {
		free(together[i].body);
		user_batch_release(users[i]);
		free(users[i]);
	}
	free(alone.body);
	model_release(&sm.m);
	serve_metrics_release(&s.metrics);
	registry_close(reg);
}

/*
 * The rank share (ltv/rank_share.h) is a function of the user alone: a user
 * of a campaign whose chosen method is shared by another method's ranking
 * gets the same value served alone and with big spenders of its campaign in
 * one serving_predict call, and that value is the share, not the chosen
 * method's own (except where a BTYD method serves: no share there). (Campaigns served or ranked by curves are left out: curves
 * levels whole cohorts of a batch, the case above.)
 */
static void test_rank_share_ignores_batch_mates(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct loaded_model m;
	struct ltv_err err = { 0 };
	struct user_batch *users[6] = { 0 };
	const int curves = method_index("curves");
	int h, found = 0;

	test_production_load(fx, &reg, &m);
	h = feature_params_horizon_index(&m.params, m.params.target_horizon);
	assert_true(m.pred.share[h].ranker[0] >= 0);
	/*
	 * This 2,000-user sample's cells mostly rest on one validation user, so
	 * they have no ratio (rank_share.c, carried_by_one_row): a tier ratio of
	 * 1.5 where there is none lets the share serve every campaign it can.
	 */
	for (int t = 0; t <= 3; t++)
		for (int k = 0; k < METHOD_COUNT; k++)
			for (int c = 0; c < m.pred.share[h].n_cells; c++)
				if (isnan(m.pred.share[h].tier_ratio[t][k][c]))
					m.pred.share[h].tier_ratio[t][k][c] = 1.5;
	for (size_t k = 0; k < m.enc.n_apps * m.enc.n_campaigns && !found; k++) {
		const char *app = m.enc.apps[k / m.enc.n_campaigns];
		const char *campaign = m.enc.campaigns[k % m.enc.n_campaigns];
		struct user_batch b;
		size_t row = 0;
		int chosen, tier, ranker;
		double own = NAN, shared = NAN;

		users[0] = one_user(&m, app, campaign, 3);
		user_batch_init(&b, &m, 1);
		user_batch_copy_row(&b, 0, users[0], 0);
		if (user_batch_finish(&b, &m, &err) != 0)
			fail_msg("user: %s", err.msg);
		chosen = predictor_chosen_method(&m.pred, &b.d, 0, h);
		tier = b.d.tier ? (int)b.d.tier[0] : 3;
		ranker = rank_share_ranker(&m.pred.share[h], tier);
		if (chosen >= 0 && chosen != curves && ranker != curves && ranker != chosen) {
			if (predictor_predict_method(&m.pred, chosen, &b.d, &row, 1, m.params.target_horizon,
						     &own, NULL, &err) != 0 ||
			    predictor_predict_raw(&m.pred, &b.d, &row, 1, m.params.target_horizon, &shared,
						  NULL, NULL, &err) != 0)
				fail_msg("predict: %s", err.msg);
			/* a campaign a BTYD method serves keeps that method's value (no share) */
			if (method_table[chosen]->user_at_age && !isnan(own))
				assert_true(test_same_number(own, shared));
		}
		/* the share serves, not the chosen method alone */
		if (chosen >= 0 && chosen != curves && ranker != curves && ranker != chosen &&
		    !isnan(own) && !test_same_number(own, shared)) {
			for (size_t i = 1; i < 6; i++)
				users[i] = one_user(&m, app, campaign, 900);
			assert_true(test_same_number(level_of(&m, users, 6), level_of(&m, users, 1)));
			for (size_t i = 1; i < 6; i++) {
				user_batch_release(users[i]);
				free(users[i]);
			}
			found = 1;
		}
		user_batch_release(&b);
		user_batch_release(users[0]);
		free(users[0]);
	}
	if (!found)
		fail_msg("no campaign is served by a shared method");
	model_release(&m);
	registry_close(reg);
}

/*
 * select judges the mix on rows every method has predicted already
 * (predictor_predict_raw_given): the mix from those predictions is the one
 * predictor_predict_raw makes, bit for bit, for a batch of every known
 * campaign (two users each, curves' cohorts among them) at every horizon.
 */
static void test_raw_given_equals_raw(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct loaded_model m;
	struct user_batch b;
	struct ltv_err err = { 0 };
	size_t n, *rows;

	test_production_load(fx, &reg, &m);
	n = 2 * m.enc.n_apps * m.enc.n_campaigns;
	user_batch_init(&b, &m, n);
	for (size_t i = 0; i < n; i++) {
		const size_t k = i / 2;

		if (user_batch_set_names(&b, i, m.enc.apps[k / m.enc.n_campaigns],
					 m.enc.campaigns[k % m.enc.n_campaigns], &err) != 0 ||
		    user_batch_set(&b, i, "age_days", i % 2 ? 5 : 20, &err) != 0 ||
		    user_batch_set(&b, i, "rev_window", i % 2 ? 3 : 40, &err) != 0 ||
		    user_batch_set(&b, i, "purchases_window", i % 2 ? 1 : 4, &err) != 0)
			fail_msg("user: %s", err.msg);
	}
	if (user_batch_finish(&b, &m, &err) != 0)
		fail_msg("batch: %s", err.msg);
	rows = test_all_rows(n);
	for (size_t h = 0; h < m.params.horizons.n; h++) {
		const int64_t horizon = m.params.horizons.v[h];
		double *given[METHOD_COUNT], *raw = xmalloc(n * sizeof(double));
		double *from_given = xmalloc(n * sizeof(double));
		int *served_raw = xmalloc(n * sizeof(int)), *served_given = xmalloc(n * sizeof(int));

		for (int k = 0; k < METHOD_COUNT; k++) {
			given[k] = xmalloc(n * sizeof(double));
			if (predictor_predict_method(&m.pred, k, &b.d, rows, n, horizon, given[k], NULL,
						     &err) != 0)
				fail_msg("predict %d: %s", k, err.msg);
		}
		if (predictor_predict_raw(&m.pred, &b.d, rows, n, horizon, raw, served_raw, NULL, &err) != 0 ||
		    predictor_predict_raw_given(&m.pred, &b.d, rows, n, horizon,
						(const double *const *)given, from_given, served_given,
						NULL, &err) != 0)
			fail_msg("predict raw: %s", err.msg);
		for (size_t i = 0; i < n; i++) {
			if (!test_same_number(raw[i], from_given[i]))
				fail_msg("H %lld row %zu (%s): raw %.17g, from given %.17g (served %d, %d)",
					 (long long)horizon, i, b.d.campaigns[(size_t)frame_col_at(frame_col(&b.d.frame, "campaign_code"), i)],
					 raw[i], from_given[i], served_raw[i], served_given[i]);
			assert_int_equal(served_raw[i], served_given[i]);
		}
		for (int k = 0; k < METHOD_COUNT; k++)
			free(given[k]);
		free(raw);
		free(from_given);
		free(served_raw);
		free(served_given);
	}
	free(rows);
	user_batch_release(&b);
	model_release(&m);
	registry_close(reg);
}

/*
 * select.rank_cells (predictor_predict_raw_cells, ltv/rank_share.h
 * rank_share_within_cells), with the share's rankers and no stored ratio (as
 * select keeps them when it drops the share): users of one campaign that
 * curves serves, at one age, in one batch, ranked by the multiplier. Curves
 * gives them all the same revenue to come; the raw values stay curves', and
 * the factors serving applies after calibration sum to the cell's rows (its
 * total kept), rise with the ranker's revenue to come and are not all 1; a
 * user predicted alone gets 1, and without the key there is none (NULL).
 */
static void test_rank_cells_keep_curves_totals(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct loaded_model m;
	struct rank_share rankers;
	struct user_batch b;
	struct ltv_err err = { 0 };
	const int curves = method_index("curves");
	const double revs[6] = { 1, 3, 10, 30, 100, 900 };
	double plain[6], raw[6], *factor = NULL, by_ranker[6], alone, *alone_factor = NULL, sum = 0;
	const double *rev;
	size_t *rows = test_all_rows(6), row0 = 0;
	int h, ranker = -1;
	int64_t horizon;

	test_production_load(fx, &reg, &m);
	horizon = m.params.target_horizon;
	h = feature_params_horizon_index(&m.params, horizon);
	rank_share_init(&rankers);
	rank_share_copy_rankers(&rankers, &m.pred.share[h]);
	rank_share_release(&m.pred.share[h]);
	/* the multiplier tells these users apart; the cut-short hurdle does not */
	for (int t = 0; t <= 3; t++)
		rankers.ranker[t] = method_index("multiplier");
	m.pred.share[h] = rankers;
	m.cfg.select.rank_cells = 1;
	user_batch_init(&b, &m, 6);
	for (size_t k = 0; k < m.enc.n_apps * m.enc.n_campaigns; k++) {
		int chosen;

		for (size_t i = 0; i < 6; i++)
			if (user_batch_set_names(&b, i, m.enc.apps[k / m.enc.n_campaigns],
						 m.enc.campaigns[k % m.enc.n_campaigns], &err) != 0 ||
			    user_batch_set(&b, i, "age_days", 5, &err) != 0 ||
			    user_batch_set(&b, i, "rev_window", revs[i], &err) != 0 ||
			    user_batch_set(&b, i, "purchases_window", 1 + (double)i, &err) != 0)
				fail_msg("user: %s", err.msg);
		if (user_batch_finish(&b, &m, &err) != 0)
			fail_msg("batch: %s", err.msg);
		chosen = predictor_chosen_method(&m.pred, &b.d, 0, h);
		ranker = rank_share_ranker(&m.pred.share[h], b.d.tier ? (int)b.d.tier[0] : 3);
		if (chosen == curves && ranker >= 0 && ranker != curves)
			break;
		user_batch_release(&b);
		user_batch_init(&b, &m, 6);
		ranker = -1;
	}
	if (ranker < 0)
		fail_msg("no campaign is served by curves with another ranker");
	rev = frame_column(&b.d.frame, "rev_window");
	if (predictor_predict_raw(&m.pred, &b.d, rows, 6, horizon, plain, NULL, NULL, &err) != 0 ||
	    predictor_predict_raw_cells(&m.pred, &b.d, rows, 6, horizon, NULL, raw, NULL, NULL, &factor,
					&err) != 0 ||
	    predictor_predict_method(&m.pred, ranker, &b.d, rows, 6, horizon, by_ranker, NULL, &err) != 0 ||
	    predictor_predict_raw_cells(&m.pred, &b.d, &row0, 1, horizon, NULL, &alone, NULL, NULL,
					&alone_factor, &err) != 0)
		fail_msg("predict: %s", err.msg);
	assert_true(plain[0] - rev[0] > 0);
	assert_non_null(factor);
	assert_non_null(alone_factor);
	for (size_t i = 0; i < 6; i++) {
		/* curves: one revenue to come for the whole cell, and the raw values stay its own */
		assert_double_near(plain[i] - rev[i], plain[0] - rev[0], 1e-9 * (1 + plain[0]));
		assert_true(test_same_number(raw[i], plain[i]));
		assert_true(isfinite(factor[i]));
		sum += factor[i];
		for (size_t j = 0; j < 6; j++)
			if (by_ranker[i] - rev[i] > by_ranker[j] - rev[j])
				assert_true(factor[i] > factor[j]);
	}
	assert_double_near(sum, 6, 1e-9);
	assert_true(fabs(factor[0] - 1) > 0.1 && fabs(factor[5] - 1) > 0.1);
	/* alone, its cell is itself */
	assert_double_near(alone_factor[0], 1, 1e-12);
	free(factor);
	free(alone_factor);
	m.cfg.select.rank_cells = 0;
	if (predictor_predict_raw_cells(&m.pred, &b.d, rows, 6, horizon, NULL, raw, NULL, NULL, &factor,
					&err) != 0)
		fail_msg("predict: %s", err.msg);
	assert_null(factor);
	free(rows);
	user_batch_release(&b);
	model_release(&m);
	registry_close(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_prediction_ignores_batch_mates),
		cmocka_unit_test(test_rank_share_ignores_batch_mates),
		cmocka_unit_test(test_rank_cells_keep_curves_totals),
		cmocka_unit_test(test_raw_given_equals_raw),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
