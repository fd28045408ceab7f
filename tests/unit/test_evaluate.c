/*
 * Unit tests for `ltvpipe evaluate` (cli/evaluate.c, eval_baselines.c,
 * eval_report.c, the evaluations table of registry_versions.c): the metric plumbing
 * against hand-computed values, baselines a and b on a hand-made frame, the
 * registry round trip, and the backtest's one promise — nothing after T
 * reaches training or scoring: events appended after T leave every
 * prediction bit-identical and change only the actuals, while events
 * appended before T do change predictions (so the check can fail).
 */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

#include "ltv/config.h"
#include "ltv/evaluate.h"
#include "ltv/gamma_gamma.h"
#include "ltv/pareto_nbd.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/timeutil.h"

#include "fixture.h"

/* ---- eval_score on a hand-made case ---- */

/*
 * Five users in two campaigns; the fifth has no prediction and must be left
 * out of everything. By hand, over rows 0..3:
 *   campaign totals A = (10, 30), P = (9, 29): WAPE (1 + 1) / 40 = 0.05, bias -2 / 40
 *   gain curve by pred (20, 9, 8, 1) holds 0.75, 0.75, 1, 1 of the revenue: area 0.75,
 *   Gini 0.5; the perfect order (30, 10, 0, 0) gives 0.625; normalized 0.8
 *   ranks actual (1.5, 3, 1.5, 4), pred (1, 2, 3, 4): Spearman 3 / sqrt(4.5 * 5)
 *   deciles of 4 rows: 0, 2, 5, 7; those with a non-zero mean actual: |8-10|/10 and
 *   |20-30|/30, MAPE 0.26667
 *   AUC: payers score 0.8 and 0.9 against 0.1 and 0.85: 3 of 4 pairs
 */
static const double hand_actual[] = { 0, 10, 0, 30, 5 };
static const double hand_pred[] = { 1, 8, 9, 20, NAN };
static const double hand_p_payer[] = { 0.1, 0.8, 0.85, 0.9, 0.5 };
static const double hand_payer[] = { 0, 1, 0, 1, 1 };
static const size_t hand_campaign[] = { 0, 0, 1, 1, 1 };

static void test_score_hand_computed(void **state)
{
	struct eval_scores s;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(eval_score(hand_actual, hand_pred, hand_p_payer, hand_payer, hand_campaign,
				    5, 2, 2, &s, &err), 0);
	assert_int_equal(s.n_used, 4);
	assert_double_near(s.mean_pred, 38.0 / 4, 1e-12);
	assert_double_near(s.mean_actual, 10.0, 1e-12);
	assert_int_equal(s.campaign.n_groups, 2);
	assert_double_near(s.campaign.wape, 0.05, 1e-12);
	assert_double_near(s.campaign.bias, -0.05, 1e-12);
	assert_double_near(s.gini, 0.8, 1e-12);
	assert_double_near(s.spearman, 3 / sqrt(22.5), 1e-12);
	assert_double_near(s.rmsle, 1.22211933306067, 1e-12);
	assert_double_near(s.deciles.mape, (0.2 + 1.0 / 3) / 2, 1e-12);
	assert_int_equal(s.deciles.n_deciles, 2);
	assert_double_near(s.auc, 0.75, 1e-12);
	assert_double_near(s.gain_y[0], 0, 1e-12);
	assert_double_near(s.gain_y[(EVAL_GAIN_POINTS - 1) / 4], 0.75, 1e-12); /* a quarter of the users: the 30 */
	assert_double_near(s.gain_y[EVAL_GAIN_POINTS - 1], 1, 1e-12);

	/* A campaign below the minimum is left out: campaign 1 alone has 3 rows, 2 usable. */
	assert_int_equal(eval_score(hand_actual, hand_pred, NULL, NULL, hand_campaign, 5, 2, 3, &s, &err), 0);
	assert_int_equal(s.campaign.n_groups, 0);
	assert_true(isnan(s.campaign.wape));
	assert_true(isnan(s.auc));
	assert_double_near(s.gini, 0.8, 1e-12);
}

static void test_score_no_prediction(void **state)
{
	const double none[] = { NAN, NAN, NAN, NAN, NAN };
	const double inf[] = { 1, 8, INFINITY, 20, NAN };
	struct eval_scores s;
	struct ltv_err err = { 0 };

	(void)state;
	/* A baseline with nothing to say is reported as n/a, not as an error. */
	assert_int_equal(eval_score(hand_actual, none, NULL, NULL, hand_campaign, 5, 2, 1, &s, &err), 0);
	assert_int_equal(s.n_used, 0);
	assert_true(isnan(s.gini) && isnan(s.campaign.wape) && isnan(s.rmsle) && isnan(s.deciles.mape));
	/* An infinity is a bug upstream and must not be averaged away. */
	assert_int_equal(eval_score(hand_actual, inf, NULL, NULL, hand_campaign, 5, 2, 1, &s, &err), LTV_EINVAL);
}

/* ---- baselines a and b on a hand-made frame ---- */

static void test_baselines_hand_made(void **state)
{
	struct model_data d = { 0 };
	char *apps[] = { (char *)"app" };
	char *campaigns[] = { (char *)"c0", (char *)"c1", (char *)"c2" };
	/* rows 0-2 mature at 30 (c0: 10, 20; c1: 6), rows 3-5 not yet (c0, c1, unseen c2) */
	const double campaign[] = { 0, 0, 1, 0, 1, 2 };
	const double ltv[] = { 10, 20, 6, NAN, NAN, NAN };
	const double d0[] = { 1, 3, 2, 0.5, 1, 2 };
	const double window[] = { 7, 9, 8, 6.5, 7, 8 }; /* later days: baseline b reads day 0 only */
	const size_t rows[] = { 3, 4, 5 };
	double pred[3];
	size_t n_train = 0;

	(void)state;
	frame_init(&d.frame, 6);
	memcpy(frame_add_column(&d.frame, "campaign_code"), campaign, sizeof(campaign));
	memcpy(frame_add_column(&d.frame, "ltv_30"), ltv, sizeof(ltv));
	memcpy(frame_add_column(&d.frame, "rev_window"), window, sizeof(window));
	memcpy(frame_add_column(&d.frame, "rev_d0"), d0, sizeof(d0));
	memset(frame_add_column(&d.frame, "app_code"), 0, 6 * sizeof(double));
	d.apps = apps;
	d.n_apps = 1;
	d.campaigns = campaigns;
	d.n_campaigns = 3;
	eval_baseline_campaign_mean(&d, 30, rows, 3, pred, &n_train);
	assert_int_equal(n_train, 3);
	assert_double_near(pred[0], 15, 1e-12);
	assert_double_near(pred[1], 6, 1e-12);
	assert_double_near(pred[2], 12, 1e-12); /* unseen campaign: the mean of all 36 / 3 */
	/* day-0 revenue times the multiplier mean(ltv_30) / mean(rev_d0) = 36 / 6 = 6 */
	eval_baseline_window_multiplier(&d, 30, rows, 3, pred);
	assert_double_near(pred[0], 3, 1e-12);
	assert_double_near(pred[1], 6, 1e-12);
	assert_double_near(pred[2], 12, 1e-12);
	/* A horizon nobody is labelled at gives no prediction. */
	eval_baseline_campaign_mean(&d, 90, rows, 3, pred, &n_train);
	assert_int_equal(n_train, 0);
	assert_true(isnan(pred[0]) && isnan(pred[2]));
	eval_baseline_window_multiplier(&d, 90, rows, 3, pred);
	assert_true(isnan(pred[1]));
	frame_release(&d.frame);
}

/*
 * Baseline d on a hand case: a user of age 0 with no repeat purchase is
 * predicted Pareto/NBD's unconditional E[X(t)] = r beta / (alpha (s - 1))
 * (1 - (beta / (beta + t))^(s - 1)) purchases in t = H / 7 weeks, times
 * Gamma-Gamma's population mean spend gamma p / (q - 1), plus what they
 * spent so far; a user already H days old keeps exactly what they spent.
 */
static void test_baseline_pareto_nbd_hand_case(void **state)
{
	struct model_data d = { 0 };
	struct eval_btyd b = { 0 };
	const double rev_to_date[] = { 2.5, 40 };
	const size_t rows[] = { 0, 1 };
	double x[] = { 0, 3 }, t_x[] = { 0, 50 }, age[] = { 0, 80 }, m_x[] = { 0, 12 }, pred[2];
	struct ltv_err err = { 0 };
	/* r 0.5, alpha 10, s 2, beta 8; t = 70 / 7 = 10 weeks: 0.5 * 8 / 10 * (1 - 8 / 18) = 2 / 9 */
	const double purchases = 2.0 / 9.0, spend = 15.0 * 6.0 / (4.0 - 1.0);

	(void)state;
	frame_init(&d.frame, 2);
	memcpy(frame_add_column(&d.frame, "rev_to_date"), rev_to_date, sizeof(rev_to_date));
	b.pn = xcalloc(1, sizeof(*b.pn));
	*b.pn = (struct pareto_nbd_model){ .r = 0.5, .alpha = 10, .s = 2, .beta = 8 };
	b.gg = xcalloc(1, sizeof(*b.gg));
	*b.gg = (struct gamma_gamma_model){ .p = 6, .q = 4, .gamma = 15 };
	b.x = x;
	b.t_x = t_x;
	b.age_days = age;
	b.m_x = m_x;
	/* Not fitted: no prediction, not an error. */
	assert_int_equal(eval_btyd_predict(&b, EVAL_BTYD_PARETO_NBD, &d, 70, rows, 2, pred, &err), 0);
	assert_true(isnan(pred[0]) && isnan(pred[1]));
	b.pareto_nbd.ok = 1;
	assert_int_equal(eval_btyd_predict(&b, EVAL_BTYD_PARETO_NBD, &d, 70, rows, 2, pred, &err), 0);
	assert_double_near(pred[0], 2.5 + purchases * spend, 1e-9);
	assert_double_near(pred[1], 40, 0);
	/* Baseline c is another model of the same rows: BG/NBD was not fitted here. */
	assert_int_equal(eval_btyd_predict(&b, EVAL_BTYD_BGNBD, &d, 70, rows, 2, pred, &err), 0);
	assert_true(isnan(pred[0]));
	pareto_nbd_free(b.pn);
	gamma_gamma_free(b.gg);
	frame_release(&d.frame);
}

/* ---- the evaluations table ---- */

static void test_registry_round_trip(void **state)
{
	char *dir = test_scratch_dir(), *path;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct evaluation_row row = {
		.run_id = (char *)"run-1", .as_of = 86400 * 100, .horizons = (char *)"30,90",
		.model_version = 0, .config_hash = (char *)"abc", .metrics = (char *)"{\"x\":1}",
		.report_dir = (char *)"logs/eval-run-1",
	}, *rows = NULL;
	size_t n = 0;
	int64_t id = 0;

	(void)state;
	assert_non_null(dir);
	path = xasprintf("%s/registry.sqlite", dir);
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	/* Without a production version the row stands alone (model_version NULL). */
	assert_int_equal(registry_evaluation_insert(reg, &row, &id, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_true(id > 0);
	assert_int_equal(registry_evaluations_load(reg, 1, &rows, &n, &err), 0);
	assert_int_equal(n, 0);
	/* A version that does not exist is refused by the foreign key. */
	row.model_version = 7;
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_true(registry_evaluation_insert(reg, &row, &id, &err) < 0);
	registry_rollback(reg);
	registry_close(reg);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_int_equal(registry_schema_version(reg), REGISTRY_SCHEMA_VERSION);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/* ---- nothing after T reaches training or scoring ---- */

struct leak_fixture {
	struct test_pipeline *p;
	int64_t as_of;
	struct user_table users;
};

static int evaluate(struct leak_fixture *fx, const char *out_name, struct eval_result *out)
{
	struct evaluate_options opts = { .as_of = fx->as_of, .horizons = "7,30" };
	struct ltv_err err = { 0 };
	char *out_dir = xasprintf("%s/%s", fx->p->dir, out_name);
	FILE *devnull = fopen("/dev/null", "w");
	struct registry *reg = NULL;
	int ret;

	opts.output_dir = out_dir;
	ret = registry_open(fx->p->cfg.registry.path, 5, &reg, &err);
	if (ret == 0)
		ret = evaluate_run(&fx->p->cfg, reg, &opts, devnull, out, &err);
	registry_close(reg);
	if (ret != 0)
		fprintf(stderr, "evaluate: %s\n", err.msg);
	fclose(devnull);
	free(out_dir);
	return ret;
}

/* Appends one event per evaluated user at horizon 30 to data/NAME at install + offset_s (or T + offset_s). */
static void write_events(const struct leak_fixture *fx, const struct eval_horizon *eh,
			 const char *name, int after_t, int64_t offset_s)
{
	char *path = xasprintf("%s/%s", fx->p->data, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "user_id,event_time,revenue,event\n");
	for (size_t i = 0; i < eh->n; i++) {
		const size_t u = (size_t)eh->uid[i] - 1;
		int64_t t = after_t ? fx->as_of + offset_s : fx->users.install_time[u] + offset_s;
		char iso[32];

		/* before T: only users whose day 0 is complete at T, so the event is readable */
		if (!after_t && fx->users.install_time[u] + SECONDS_PER_DAY > fx->as_of)
			continue;
		fprintf(f, "%s,%s,7.5,purchase\n", fx->users.user_id[u],
			time_format_iso8601(t, iso, sizeof(iso)));
	}
	fclose(f);
	free(path);
}

static int leak_setup(void **state)
{
	struct leak_fixture *fx = xcalloc(1, sizeof(*fx));

	log_level_current = LOG_ERROR;
	fx->p = test_pipeline_new(3000, 42, "1");
	if (time_parse_iso8601("2025-06-01T00:00:00Z", &fx->as_of) < 0)
		return -1;
	/* the appended events files count too */
	test_set(&fx->p->cfg, "input.events=%s/events*.csv", fx->p->data);
	test_config_small_sample(&fx->p->cfg);
	*state = fx;
	return 0;
}

static int leak_teardown(void **state)
{
	struct leak_fixture *fx = *state;

	if (!fx)
		return 0;
	test_pipeline_free(fx->p);
	user_table_release(&fx->users);
	free(fx);
	return 0;
}

static const struct eval_horizon *horizon_of(const struct eval_result *r, int64_t h)
{
	for (size_t i = 0; i < r->n_horizons; i++)
		if (r->h[i].horizon == h)
			return &r->h[i];
	fail_msg("no horizon %lld in the result", (long long)h);
	return NULL;
}

/* Every series' predictions (and p_payer) identical, bit for bit, for the same users. */
static size_t count_prediction_differences(const struct eval_result *a, const struct eval_result *b)
{
	size_t diffs = 0;

	assert_int_equal(a->n_horizons, b->n_horizons);
	for (size_t h = 0; h < a->n_horizons; h++) {
		const struct eval_horizon *x = &a->h[h], *y = &b->h[h];

		assert_int_equal(x->n, y->n);
		assert_int_equal(x->n_series, y->n_series);
		for (size_t i = 0; i < x->n; i++)
			assert_int_equal(x->uid[i], y->uid[i]);
		for (size_t k = 0; k < x->n_series; k++) {
			assert_string_equal(x->series[k].name, y->series[k].name);
			for (size_t i = 0; i < x->n; i++) {
				double p = x->series[k].pred[i], q = y->series[k].pred[i];

				diffs += !(p == q || (isnan(p) && isnan(q)));
				if (x->series[k].p_payer) {
					p = x->series[k].p_payer[i];
					q = y->series[k].p_payer[i];
					diffs += !(p == q || (isnan(p) && isnan(q)));
				}
			}
		}
	}
	return diffs;
}

static void test_nothing_after_t(void **state)
{
	struct leak_fixture *fx = *state;
	struct eval_result base = { 0 }, late = { 0 }, early = { 0 };
	const struct eval_horizon *h30, *l30;
	size_t changed = 0, late_users = 0;

	assert_int_equal(evaluate(fx, "base", &base), 0);
	/* the users as the evaluation numbered them, to name them in the appended files */
	user_table_release(&fx->users);
	fx->users = base.users;
	memset(&base.users, 0, sizeof(base.users));
	h30 = horizon_of(&base, 30);
	assert_true(h30->n > 100);
	assert_int_equal(base.as_of, fx->as_of);
	for (size_t k = 0; k < h30->n_series; k++)
		assert_true(h30->series[k].scores.n_used == h30->n || h30->series[k].scores.n_used == 0);
	/*
	 * Trained with the default snapshots (1 to 60 days) for horizons 7 and 30:
	 * ages at or past the longest horizon are accepted and unused, and the mix
	 * really predicts every user (identical NaNs would prove nothing below).
	 */
	assert_non_null(strstr(base.config_summary, "snapshots from 1 to 60 days"));
	assert_string_equal(h30->series[0].name, "mix");
	assert_int_equal(h30->series[0].scores.n_used, h30->n);

	/* A second events file with a purchase for every evaluated user one hour after T. */
	write_events(fx, h30, "events_late.csv", 1, 3600);
	assert_int_equal(evaluate(fx, "late", &late), 0);
	assert_int_equal(count_prediction_differences(&base, &late), 0);
	l30 = horizon_of(&late, 30);
	for (size_t i = 0; i < h30->n; i++) {
		/* T + 1 h is before install + 30 days for everyone installed after T - 30 d + 1 h */
		changed += l30->actual[i] != h30->actual[i];
		late_users += fx->users.install_time[h30->uid[i] - 1] + 30 * SECONDS_PER_DAY > fx->as_of + 3600;
		if (l30->actual[i] != h30->actual[i])
			assert_double_near(l30->actual[i] - h30->actual[i], 7.5, 1e-9);
	}
	assert_int_equal(changed, late_users);
	assert_true(changed > 100);
	eval_result_release(&late);
	{
		char *p = xasprintf("%s/events_late.csv", fx->p->data);

		assert_int_equal(unlink(p), 0);
		free(p);
	}

	/* The same purchase half a day after install (before T) must change predictions. */
	write_events(fx, h30, "events_early.csv", 0, SECONDS_PER_DAY / 2);
	assert_int_equal(evaluate(fx, "early", &early), 0);
	assert_true(count_prediction_differences(&base, &early) > 100);
	eval_result_release(&early);
	eval_result_release(&base);
}

int main(void)
{
	/* One group (the runner counts one PASSED line per binary); only the last test uses the fixture. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_score_hand_computed),
		cmocka_unit_test(test_score_no_prediction),
		cmocka_unit_test(test_baselines_hand_made),
		cmocka_unit_test(test_baseline_pareto_nbd_hand_case),
		cmocka_unit_test(test_registry_round_trip),
		cmocka_unit_test(test_nothing_after_t),
	};

	return cmocka_run_group_tests_name("evaluate", tests, leak_setup, leak_teardown);
}
