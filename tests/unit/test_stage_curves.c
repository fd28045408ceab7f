/*
 * Unit tests for the curves stage (pipeline/curves.c): its predict on a
 * hand-built artefact (blob version 2) reproduces rev_window + L * (y(H) - y(u))
 * exactly, L the cohort's level against its curve at its users' ages u (with
 * and without the small-cohort blend, and the tier prior for a campaign
 * without a curve),
 * a truncated artefact is refused, and on a generated sample the fitted
 * curves grow (b > 0), every validation user is predicted at or above what
 * they already paid, and the extrapolated validation cohorts land within a
 * reasonable error of their actual 30-day mean.
 */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/blob.h"
#include "ltv/config.h"
#include "ltv/log.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/stage.h"

#include "fixture.h"

extern const struct method method_curves;

/* ---- hand-built artefacts ---- */

struct hand_curve {
	const char *app, *campaign;
	double log_a, b;
	uint64_t n;
};

/* The documented blob "LTVCURVS" v2 for one horizon (see pipeline/curves.c). */
static uint8_t *hand_blob(double shrink, int64_t horizon, const struct hand_curve *prior1,
			  const struct hand_curve *prior23, const struct hand_curve *entries,
			  size_t n_entries, size_t *out_len)
{
	struct blob_writer w;
	const struct hand_curve *priors[2] = { prior1, prior23 };

	blob_writer_init(&w);
	blob_put_header(&w, "LTVCURVS", 2);
	blob_put_f64(&w, shrink);
	blob_put_u64(&w, 1);
	blob_put_u64(&w, (uint64_t)horizon);
	for (int p = 0; p < 2; p++) {
		blob_put_u32(&w, priors[p] != NULL);
		blob_put_f64(&w, priors[p] ? priors[p]->log_a : 0);
		blob_put_f64(&w, priors[p] ? priors[p]->b : 0);
		blob_put_u64(&w, priors[p] ? priors[p]->n : 0);
	}
	blob_put_u64(&w, n_entries);
	for (size_t j = 0; j < n_entries; j++) {
		blob_put_str(&w, entries[j].app);
		blob_put_str(&w, entries[j].campaign);
		blob_put_f64(&w, entries[j].log_a);
		blob_put_f64(&w, entries[j].b);
		blob_put_u64(&w, entries[j].n);
	}
	return blob_writer_detach(&w, out_len);
}

/* Stores blob as artefact "curves" (blob key "curves") in a fresh registry; returns its info. */
static void store_artefact(struct registry *reg, const void *blob, size_t len,
			   struct artefact_info *out)
{
	static int n_made;
	struct ltv_err err = { 0 };
	char fp[40];
	struct artefact_new a = { .name = "curves", .run_id = "test-run", .fingerprint = fp,
				  .code_version = "1", .config = "k=v\n", .as_of = 1700000000 };
	int64_t id = 0, version = 0;

	snprintf(fp, sizeof(fp), "fp%d", n_made++);
	assert_int_equal(registry_begin(reg, &err), 0);
	if (registry_artefact_create(reg, &a, &id, &version, &err) != 0)
		fail_msg("artefact_create: %s", err.msg);
	assert_int_equal(registry_blob_put(reg, id, "curves", blob, len, &err), 0);
	assert_int_equal(registry_artefact_finish(reg, id, "c", "{}", NULL, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(registry_artefact_get(reg, id, out, &err), 0);
}

/* A model_data of one app and campaigns camp_a (tier 1) and camp_b (tier 3). */
static void hand_data(struct model_data *d, const double *rev, const double *window,
		      const double *campaign, size_t n)
{
	double *c_rev, *c_win, *c_app, *c_camp;

	memset(d, 0, sizeof(*d));
	frame_init(&d->frame, n);
	c_rev = frame_add_column(&d->frame, "rev_window");
	c_win = frame_add_column(&d->frame, "window_days");
	c_app = frame_add_column(&d->frame, "app_code");
	c_camp = frame_add_column(&d->frame, "campaign_code");
	d->tier = xcalloc(n, sizeof(double));
	for (size_t i = 0; i < n; i++) {
		c_rev[i] = rev[i];
		c_win[i] = window[i];
		c_app[i] = 0;
		c_camp[i] = campaign[i];
		d->tier[i] = campaign[i] == 0 ? 1 : 3;
	}
	d->apps = xcalloc(1, sizeof(char *));
	d->apps[0] = xstrdup("app1");
	d->n_apps = 1;
	d->campaigns = xcalloc(2, sizeof(char *));
	d->campaigns[0] = xstrdup("camp_a");
	d->campaigns[1] = xstrdup("camp_b");
	d->n_campaigns = 2;
}

/*
 * By hand (curves.c header): a cohort's level L = sum(rev_window) / sum(y(u))
 * over its rows at their ages u (u >= 1, weight 1 without a weight column),
 * blended to 1 by w = n / (n + shrinkage); each row gets
 * rev_window + L * (y(30) - y(u)) with y(D) = a * D^b.
 *   camp_a (own curve a 0.5, b 0.4), rows 0-4, all at u = 2, revenue 8:
 *     L = 8 / (5 * 0.5 * 2^0.4), increment L * 0.5 * (30^0.4 - 2^0.4) = 1.6 * (15^0.4 - 1)
 *     each, so the cohort mean is 1.6 * 15^0.4;
 *   camp_b (no curve, tier 3: prior a 0.2, b 0.35), rows 5, 6 at u = 2 and 7 at u = 1,
 *     revenue 3.5: L = 3.5 / (0.2 * (2 * 2^0.35 + 1)); increment L * 0.2 * (30^0.35 - 2^0.35)
 *     for rows 5, 6 and L * 0.2 * (30^0.35 - 1) for row 7 (a younger user has more to come).
 */
static void test_predict_hand_built(void **state)
{
	static const double rev[] = { 0, 1, 2, 0, 5, 0.5, 0, 3 };
	static const double window[] = { 2, 2, 2, 2, 2, 2, 2, 1 };
	static const double campaign[] = { 0, 0, 0, 0, 0, 1, 1, 1 };
	static const size_t rows[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const struct hand_curve prior1 = { NULL, NULL, log(0.3), 0.55, 5000 };
	const struct hand_curve prior23 = { NULL, NULL, log(0.2), 0.35, 3000 };
	const struct hand_curve own = { "app1", "camp_a", log(0.5), 0.4, 1000 };
	char *dir = test_scratch_dir(), *path = xasprintf("%s/registry.sqlite", dir);
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct artefact_info exact = { 0 }, blended = { 0 }, cut = { 0 };
	struct model_data d;
	double pred[8], p_payer[8], mean_a = 0, l_a, l_b, w, level, expect;
	void *s = NULL;
	uint8_t *blob;
	size_t len;

	(void)state;
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_run_start(reg, "test-run", "test", INT64_MIN, "cfg", &err), 0);
	blob = hand_blob(0, 30, &prior1, &prior23, &own, 1, &len);
	store_artefact(reg, blob, len, &exact);
	store_artefact(reg, blob, len - 3, &cut);
	free(blob);
	blob = hand_blob(100, 30, &prior1, &prior23, &own, 1, &len);
	store_artefact(reg, blob, len, &blended);
	free(blob);
	hand_data(&d, rev, window, campaign, 8);

	/* shrinkage 0: each cohort keeps its own level exactly. */
	assert_int_equal(method_curves.load(reg, &exact, NULL, &s, &err), 0);
	assert_int_equal(method_curves.predict(s, &d, rows, 8, 30, pred, p_payer, &err), 0);
	l_a = 8.0 / (5 * 0.5 * pow(2.0, 0.4));
	for (size_t i = 0; i < 5; i++) {
		mean_a += pred[i] / 5;
		/* The cohort's increment is the same for users of the same age. */
		assert_double_near(pred[i] - rev[i], l_a * 0.5 * (pow(30.0, 0.4) - pow(2.0, 0.4)), 1e-12);
		assert_double_near(pred[i] - rev[i], 1.6 * (pow(15.0, 0.4) - 1), 1e-12);
		assert_true(isnan(p_payer[i]));
	}
	expect = 1.6 * pow(15.0, 0.4);
	assert_double_near(mean_a, expect, 1e-12 * expect);
	/* camp_b has no curve: tier-3 rows use the tier-2/3 prior, level over all three rows. */
	l_b = 3.5 / (0.2 * (2 * pow(2.0, 0.35) + 1));
	expect = l_b * 0.2 * (pow(30.0, 0.35) - pow(2.0, 0.35));
	assert_double_near(pred[5] - rev[5], expect, 1e-12);
	assert_double_near(pred[6] - rev[6], expect, 1e-12);
	/* A one-day-old user also gets the day it has not seen yet. */
	assert_double_near(pred[7] - rev[7], l_b * 0.2 * (pow(30.0, 0.35) - 1), 1e-12);
	assert_true(pred[7] - rev[7] > pred[5] - rev[5]);
	/* A horizon the artefact was not trained for: nothing to say. */
	assert_int_equal(method_curves.predict(s, &d, rows, 8, 7, pred, NULL, &err), 0);
	for (size_t i = 0; i < 8; i++)
		assert_true(isnan(pred[i]));
	/* A user at or past the horizon has nothing left to come. */
	{
		static const double old_window[] = { 30, 45 };
		static const double old_rev[] = { 4, 9 };
		static const double old_campaign[] = { 0, 0 };
		struct model_data old;

		hand_data(&old, old_rev, old_window, old_campaign, 2);
		assert_int_equal(method_curves.predict(s, &old, rows, 2, 30, pred, NULL, &err), 0);
		assert_true(pred[0] == 4 && pred[1] == 9);
		model_data_release(&old);
	}
	method_curves.free_state(s);

	/* shrinkage 100: 5 users' level 3.2 / 2^0.4 blends towards the curve's own 1. */
	assert_int_equal(method_curves.load(reg, &blended, NULL, &s, &err), 0);
	assert_int_equal(method_curves.predict(s, &d, rows, 5, 30, pred, NULL, &err), 0);
	w = 5.0 / 105.0;
	level = w * l_a + (1 - w);
	for (size_t i = 0; i < 5; i++)
		assert_double_near(pred[i],
				   rev[i] + level * 0.5 * (pow(30.0, 0.4) - pow(2.0, 0.4)), 1e-12);
	method_curves.free_state(s);

	s = (void *)1;
	assert_int_equal(method_curves.load(reg, &cut, NULL, &s, &err), LTV_EINVAL);
	assert_null(s);

	model_data_release(&d);
	artefact_info_release(&exact);
	artefact_info_release(&blended);
	artefact_info_release(&cut);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/* ---- a generated sample ---- */

static void test_generated_sample(void **state)
{
	const struct run_options opts = { .only = "ingest,features,tiers,curves",
					  .as_of = INT64_MIN, .command = "test" };
	struct test_pipeline *fx;
	struct test_model c;
	struct row_split split;
	double *pred, sum_p = 0, sum_a = 0;

	(void)state;
	log_level_current = LOG_WARN;
	fx = test_pipeline_new(30000, 42, "2");
	test_run(&fx->cfg, &opts);
	test_model_load(&fx->cfg, &method_curves, 1, &c);
	assert_non_null(c.metrics);
	/* Cumulative revenue grows, and less than linearly. */
	for (size_t h = 0; h < fx->cfg.features.horizons.n; h++) {
		const long long hz = (long long)fx->cfg.features.horizons.v[h];
		char name[64];
		double b;

		snprintf(name, sizeof(name), "tier1_prior_b_%lld", hz);
		b = test_metric(c.metrics, name);
		assert_true(b > 0 && b < 1);
		snprintf(name, sizeof(name), "campaign_curves_%lld", hz);
		assert_true(test_metric(c.metrics, name) >= 1);
	}
	assert_true(test_metric(c.metrics, "median_campaign_b_30") > 0);
	assert_int_equal((int)test_metric(c.metrics, "val_users"),
			 (int)test_metric(c.metrics, "val_users_predicted"));
	assert_true(test_metric(c.metrics, "val_users") > 1000);
	assert_true(test_metric(c.metrics, "val_campaign_wape") < 0.8);
	assert_true(fabs(test_metric(c.metrics, "val_campaign_bias")) < 0.35);

	/* The stored artefact predicts what the stage validated, never below observed revenue. */
	model_data_split(&c.d, 30, 0, &split);
	pred = xmalloc(split.n_valid * sizeof(double));
	test_model_predict(&c, split.valid, split.n_valid, 30, pred, NULL);
	for (size_t i = 0; i < split.n_valid; i++) {
		const size_t r = split.valid[i];

		assert_true(isfinite(pred[i]));
		assert_true(pred[i] >= frame_column(&c.d.frame, "rev_window")[r]);
		sum_p += pred[i];
		sum_a += model_data_label(&c.d, 30)[r];
	}
	/* Known answer: the extrapolated validation cohorts, in total, within 35% of the truth. */
	assert_true(fabs(sum_p - sum_a) / sum_a < 0.35);
	free(pred);
	row_split_release(&split);
	test_model_release(&c);
	test_pipeline_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predict_hand_built),
		cmocka_unit_test(test_generated_sample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
