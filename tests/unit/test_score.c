/*
 * Unit tests for the scoring path (cli/score.c, serving/predictor.c,
 * model_loader.c, model_commands.c) on a pipeline trained once on a small
 * generated sample: model references resolve to versions or fail naming
 * them, the method a campaign gets (its selection, semantic for a name the
 * selection never saw, the global median for an empty name, the tier default
 * without a selection), value segments and the revenue floor of calibration,
 * `score` output (header with observed_up_to, one row per user younger than
 * the longest horizon at the age they have, ltv >= revenue so far and
 * monotone across horizons, observed values for the horizons a user has
 * lived, campaign sums, a report naming the version and the users scored)
 * that is byte-identical when scored again, `predict` JSON for unseen
 * and empty campaign names, and the report's sort of the LTVs (qsort's
 * order, bit for bit).
 */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "ltv/config.h"
#include "ltv/csvread.h"
#include "ltv/jbuf.h"
#include "ltv/log.h"
#include "ltv/model_loader.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/score.h"
#include "ltv/score_internal.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#include "fixture.h"

/* 4000 generated users (seed 42), thresholds lowered so every tier occurs, trained once. */

/* score_run as `ltvpipe score` calls it: on the registry opened read-only in one snapshot. */
static int score_registry(const struct config *cfg, const struct score_options *opts, FILE *out,
			  struct ltv_err *err)
{
	struct registry *reg = NULL;
	int ret = registry_open_readonly(cfg->registry.path, &reg, err);

	if (ret == 0)
		ret = registry_read_begin(reg, err);
	if (ret == 0)
		ret = score_run(cfg, reg, opts, out, err);
	registry_close(reg);
	return ret;
}

static int group_setup(void **state)
{
	const struct run_options opts = { .as_of = INT64_MIN, .command = "test_score" };
	struct test_pipeline *fx;

	log_level_current = LOG_ERROR;
	fx = test_pipeline_new(4000, 42, "1");
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

/* Whole file as a NUL-terminated string (caller frees); fails the test when unreadable. */
static char *slurp(const char *path, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		fail_msg("cannot read '%s'", path);
	do {
		if (len + 4096 + 1 > cap) {
			cap = (len + 4096 + 1) * 2;
			buf = xrealloc(buf, cap);
		}
		got = fread(buf + len, 1, 4096, f);
		len += got;
	} while (got > 0);
	fclose(f);
	buf[len] = '\0';
	if (out_len)
		*out_len = len;
	return buf;
}

/* ---- model references ---- */

static void test_model_resolve(void **state)
{
	struct test_pipeline *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t v = 0;

	assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(model_resolve(reg, NULL, &v, &err), 0);
	assert_int_equal(v, 1); /* the first version is production */
	v = 0;
	assert_int_equal(model_resolve(reg, "production", &v, &err), 0);
	assert_int_equal(v, 1);
	v = 0;
	assert_int_equal(model_resolve(reg, "1", &v, &err), 0);
	assert_int_equal(v, 1);
	/* one training run: no candidate yet */
	assert_int_equal(model_resolve(reg, "candidate", &v, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "candidate"));
	assert_int_equal(model_resolve(reg, "99", &v, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "model version 99"));
	assert_int_equal(model_resolve(reg, "champion", &v, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "champion"));
	registry_close(reg);
}

/* ---- predictor pieces ---- */

static void test_method_names(void **state)
{
	(void)state;
	for (int m = 0; m < METHOD_COUNT; m++)
		assert_int_equal(method_index(method_name(m)), m);
	assert_string_equal(method_name(METHOD_GLOBAL_MEDIAN), "global_median");
	assert_int_equal(method_index("global_median"), -1);
	assert_int_equal(method_index("nope"), -1);
	assert_true(method_index("semantic") >= 0);
	assert_true(method_index("lookalike") >= 0);
}

static void test_segments_and_floor(void **state)
{
	struct test_pipeline *fx = *state;
	struct predictor p;
	struct model_data d = { 0 };
	const size_t rows[3] = { 0, 1, 2 };
	const double floor_v[3] = { 0, 5, 0.25 };
	double ltv[3] = { -1, 2, 0.5 };
	struct feature_params fp;

	/* parameters as a features artefact built with this config would carry */
	feature_params_from_config(&fx->cfg, 0, &fp);
	predictor_init(&p, &fx->cfg, &fp);
	feature_params_release(&fp);
	/* no cuts learnt (all 0): everyone is Low, never VIP by accident */
	assert_string_equal(predictor_segment(&p, 100), "Low");
	p.segment_cut[0] = 1;
	p.segment_cut[1] = 2;
	p.segment_cut[2] = 3;
	assert_string_equal(predictor_segment(&p, 0), "Low");
	assert_string_equal(predictor_segment(&p, 0.999), "Low");
	assert_string_equal(predictor_segment(&p, 1), "Medium");
	assert_string_equal(predictor_segment(&p, 2.5), "High");
	assert_string_equal(predictor_segment(&p, 3), "VIP");
	assert_string_equal(predictor_segment(&p, 1e9), "VIP");

	assert_int_equal(feature_params_horizon_index(&p.params, 7), 0);
	assert_int_equal(feature_params_horizon_index(&p.params, 90), 2);
	assert_int_equal(feature_params_horizon_index(&p.params, 60), -1);

	/* identity calibration: never below the revenue observed, nor below 0 */
	frame_init(&d.frame, 3);
	d.tier = xmalloc(3 * sizeof(double));
	d.tier[0] = 1;
	d.tier[1] = 2;
	d.tier[2] = 3;
	predictor_calibrate(&p, &d, rows, 3, 30, floor_v, ltv);
	assert_double_near(ltv[0], 0, 1e-12);
	assert_double_near(ltv[1], 5, 1e-12);
	assert_double_near(ltv[2], 0.5, 1e-12);
	model_data_release(&d);
	predictor_release(&p);
}

/* One app, campaigns as given, one row each, all tier 3. */
static void hand_data(struct model_data *d, const char *const *names, size_t n)
{
	double *app, *campaign;

	memset(d, 0, sizeof(*d));
	frame_init(&d->frame, n);
	app = frame_add_column(&d->frame, "app_code");
	campaign = frame_add_column(&d->frame, "campaign_code");
	d->campaigns = xcalloc(n, sizeof(char *));
	d->tier = xmalloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		app[i] = 0;
		campaign[i] = (double)i;
		d->campaigns[i] = xstrdup(names[i]);
		d->tier[i] = 3;
	}
	d->n_campaigns = n;
	d->apps = xcalloc(1, sizeof(char *));
	d->apps[0] = xstrdup("app_a");
	d->n_apps = 1;
}

static void test_chosen_method(void **state)
{
	static const char *const names[] = { "known_curves", "known_lookalike", "brand_new_2026", "" };
	struct test_pipeline *fx = *state;
	struct predictor p;
	struct model_data d;
	struct feature_params fp;

	hand_data(&d, names, 4);
	d.tier[2] = 2; /* brand_new_2026: its users' tier */
	feature_params_from_config(&fx->cfg, 0, &fp);
	predictor_init(&p, &fx->cfg, &fp);
	feature_params_release(&fp);
	p.choice[p.target_h].tier_default[2] = method_index("multiplier");
	p.choice[p.target_h].tier_default[3] = method_index("hurdle");
	/* without any per-campaign selection, every named campaign gets its tier's default */
	assert_int_equal(predictor_chosen_method(&p, &d, 0, p.target_h), method_index("hurdle"));
	assert_int_equal(predictor_chosen_method(&p, &d, 2, p.target_h), method_index("multiplier"));
	/* an empty name has nothing to go on */
	assert_int_equal(predictor_chosen_method(&p, &d, 3, p.target_h), METHOD_GLOBAL_MEDIAN);

	predictor_choose(&p, p.target_h, "app_a", "known_curves", method_index("curves"));
	predictor_choose(&p, p.target_h, "app_a", "known_lookalike", method_index("lookalike"));
	predictor_choose(&p, p.target_h, "app_a", "known_lookalike", method_index("hurdle")); /* first wins */
	predictor_choose(&p, p.target_h, "app_b", "brand_new_2026", method_index("multiplier")); /* other app */
	assert_int_equal(predictor_chosen_method(&p, &d, 0, p.target_h), method_index("curves"));
	assert_int_equal(predictor_chosen_method(&p, &d, 1, p.target_h), method_index("lookalike"));
	/*
	 * a name the selection never saw for this app (nor the other app's choice)
	 * is served by its tier's best method: its users' behaviour is known
	 */
	assert_int_equal(predictor_chosen_method(&p, &d, 2, p.target_h), method_index("multiplier"));
	d.tier[2] = 3;
	assert_int_equal(predictor_chosen_method(&p, &d, 2, p.target_h), method_index("hurdle"));
	assert_int_equal(predictor_chosen_method(&p, &d, 3, p.target_h), METHOD_GLOBAL_MEDIAN);
	predictor_release(&p);
	model_data_release(&d);
}

/* ---- score ---- */

static void test_score_usage_errors(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };
	char *path = xasprintf("%s/never.csv", fx->dir);
	struct score_options no_output = { .as_of = INT64_MIN };
	struct score_options half = { .as_of = INT64_MIN, .events_path = "e.csv", .output = path };
	struct score_options bad_model = { .as_of = INT64_MIN, .model = "99", .output = path };

	assert_int_equal(score_registry(&fx->cfg, &no_output, stdout, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "--output"));
	assert_int_equal(score_registry(&fx->cfg, &half, stdout, &err), LTV_EUSAGE);
	assert_non_null(strstr(err.msg, "--events F needs --users F"));
	assert_int_equal(score_registry(&fx->cfg, &bad_model, stdout, &err), LTV_ENOTFOUND);
	assert_non_null(strstr(err.msg, "99"));
	assert_int_equal(access(path, F_OK), -1);
	free(path);
}

/*
 * What `score` should cover, computed from the registry without the scorer:
 * every user installed by as_of (the latest event, the default) and younger
 * than the LONGEST horizon, with their age and revenue of complete days.
 */
struct expect_users {
	struct user_table users;
	struct strmap by_id;       /* user_id → index into users */
	int64_t as_of;
	int64_t *age;              /* whole days complete at as_of; -1: installed after */
	double *rev_to_date;       /* revenue of the complete days */
	double *ltv[3];            /* revenue of days d < 7, 30, 90 (complete days only) */
	int64_t n_to_score;        /* installed and age < 90 */
	int64_t n_under_first;     /* of those, younger than the first snapshot (1 day) */
};

static const int64_t score_horizons[3] = { 7, 30, 90 };

static int add_day(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
		   int64_t purchases)
{
	struct expect_users *e = ctx;
	const size_t u = (size_t)uid - 1;

	(void)events;
	(void)purchases;
	if (uid < 1 || u >= e->users.n || e->age[u] < 0 || day >= e->age[u])
		return 0; /* installed after as_of, or a day not complete at as_of */
	e->rev_to_date[u] += revenue;
	for (size_t h = 0; h < 3; h++)
		if (day < score_horizons[h])
			e->ltv[h][u] += revenue;
	return 0;
}

static void expect_users_load(struct test_pipeline *fx, struct expect_users *e)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	char *value = NULL;

	memset(e, 0, sizeof(*e));
	assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
	assert_int_equal(registry_meta_get(reg, "max_event_time", &value, &err), 0);
	assert_int_equal(parse_int64(value, &e->as_of), 0);
	free(value);
	assert_int_equal(registry_users_load(reg, &e->users, &err), 0);
	e->age = xmalloc(e->users.n * sizeof(int64_t));
	e->rev_to_date = xcalloc(e->users.n, sizeof(double));
	for (size_t h = 0; h < 3; h++)
		e->ltv[h] = xcalloc(e->users.n, sizeof(double));
	strmap_init(&e->by_id);
	for (size_t u = 0; u < e->users.n; u++) {
		assert_int_equal(e->users.uid[u], (int64_t)u + 1);
		assert_int_equal(strmap_put(&e->by_id, e->users.user_id[u], (int64_t)u), 0);
		e->age[u] = e->users.install_time[u] <= e->as_of
			    ? time_day_index(e->users.install_time[u], e->as_of) : -1;
		if (e->age[u] >= 0 && e->age[u] < 90) {
			e->n_to_score++;
			e->n_under_first += e->age[u] < 1;
		}
	}
	assert_int_equal(registry_user_days_each(reg, add_day, e, &err), 0);
	registry_close(reg);
}

static void expect_users_release(struct expect_users *e)
{
	user_table_release(&e->users);
	strmap_release(&e->by_id);
	free(e->age);
	free(e->rev_to_date);
	for (size_t h = 0; h < 3; h++)
		free(e->ltv[h]);
}

/* A CSV number field; fails the test when it is not one. */
static double num(const char *text)
{
	double v;

	if (parse_double(text, &v) < 0)
		fail_msg("'%s' is not a number", text);
	return v;
}

/* Money as score prints it (%.4f) against the exact value. */
static int same_money(double printed, double exact)
{
	return fabs(printed - exact) <= 5.001e-5 + 1e-12 * fabs(exact);
}

static void check_users_csv(char *text, const struct expect_users *e)
{
	static const char header[] = "user_id,app_id,campaign,install_date,age_days,tier,method,p_payer,"
				     "ltv_7,ltv_30,ltv_90,observed_up_to,ltv_raw_30,segment,cost,roas_30,"
				     "ltv_30_p10,ltv_30_p90,p_alive,p_purchase_30d,risk_segment,"
				     "model_version,as_of,scored_at";
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	char *seen = xcalloc(e->users.n, 1);
	int64_t rows = 0, observed[3] = { 0 };

	assert_non_null(line);
	assert_string_equal(line, header);
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *fields[25], *p = line;
		int n = 0;
		int64_t u;

		/* generated campaign names have no commas, so a plain split is exact */
		while (n < 25) {
			fields[n++] = p;
			p = strchr(p, ',');
			if (!p)
				break;
			*p++ = '\0';
		}
		assert_int_equal(n, 24);
		assert_string_equal(fields[21], "1"); /* model_version */
		if (!strmap_get(&e->by_id, fields[0], &u))
			fail_msg("row %lld: unknown user '%s'", (long long)rows + 1, fields[0]);
		if (seen[u]++)
			fail_msg("user %s scored twice", fields[0]);
		double age = num(fields[4]), tier = num(fields[5]);
		double ltv[3] = { num(fields[8]), num(fields[9]), num(fields[10]) };
		int64_t up_to = -1;

		/* every user younger than the longest horizon, at the age they have */
		assert_int_equal((int64_t)age, e->age[u]);
		assert_true(age >= 0 && age < 90);
		assert_true(tier >= 1 && tier <= 3);
		if (fields[7][0]) {
			double pp = num(fields[7]);

			assert_true(pp >= 0 && pp <= 1);
		}
		if (!(ltv[0] >= 0 && ltv[0] <= ltv[1] && ltv[1] <= ltv[2]))
			fail_msg("row %lld (%s): ltv not monotone or negative: %g %g %g", (long long)rows + 1,
				 fields[0], ltv[0], ltv[1], ltv[2]);
		for (size_t h = 0; h < 3; h++) {
			/* additive: a horizon still to come is never below the revenue so far */
			if (e->age[u] < score_horizons[h] && ltv[h] < e->rev_to_date[u] - 5.001e-5)
				fail_msg("user %s: ltv_%lld %g below revenue so far %g", fields[0],
					 (long long)score_horizons[h], ltv[h], e->rev_to_date[u]);
			/* a horizon the user has lived is the observed value */
			if (e->age[u] >= score_horizons[h]) {
				up_to = score_horizons[h];
				observed[h]++;
				if (!same_money(ltv[h], e->ltv[h][u]))
					fail_msg("user %s (age %lld): ltv_%lld %g, observed %g", fields[0],
						 (long long)e->age[u], (long long)score_horizons[h], ltv[h],
						 e->ltv[h][u]);
			}
		}
		/* observed_up_to: the longest horizon observed, empty when none */
		if (up_to < 0)
			assert_string_equal(fields[11], "");
		else
			assert_int_equal((int64_t)num(fields[11]), up_to);
		/* ltv_raw_30: a prediction only where D30 is still to come */
		if (e->age[u] >= 30)
			assert_string_equal(fields[12], "");
		else
			assert_true(num(fields[12]) >= 0);
		/* the 80% interval at D30 is ordered, and a lived D30 is exact */
		assert_true(num(fields[16]) <= num(fields[17]));
		if (e->age[u] >= 30)
			assert_true(num(fields[16]) == ltv[1] && num(fields[17]) == ltv[1]);
		/* P(alive) and P(purchase in 30 days) are probabilities, the risk segment follows P(alive) */
		{
			double pa = num(fields[18]), p30 = num(fields[19]);
			const char *risk = pa >= 0.8 ? "Safe" : pa >= 0.5 ? "Monitor" : pa >= 0.2 ? "At risk"
											: "Critical";

			assert_true(pa >= 0 && pa <= 1);
			assert_true(p30 >= 0 && p30 <= 1);
			assert_string_equal(fields[20], risk);
		}
		assert_true(strcmp(fields[13], "Low") == 0 || strcmp(fields[13], "Medium") == 0 ||
			    strcmp(fields[13], "High") == 0 || strcmp(fields[13], "VIP") == 0);
		rows++;
	}
	assert_int_equal(rows, e->n_to_score);
	/* the sample has users past 7 and past 30 days among those scored: both cases are exercised */
	assert_true(observed[0] > 0 && observed[1] > 0);
	assert_int_equal(observed[2], 0);
	free(seen);
}

static int64_t campaigns_users_sum(char *text)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	int64_t sum = 0;

	assert_non_null(line);
	assert_non_null(strstr(line, "app_id,campaign,tier,method,users,spend,"));
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *p = line;

		for (int k = 0; k < 4 && p; k++) {
			p = strchr(p, ',');
			p = p ? p + 1 : NULL;
		}
		assert_non_null(p);
		*strchr(p, ',') = '\0';
		sum += (int64_t)num(p);
	}
	return sum;
}

static void test_score_outputs(void **state)
{
	struct test_pipeline *fx = *state;
	struct ltv_err err = { 0 };
	char *a = xasprintf("%s/a.csv", fx->dir), *b = xasprintf("%s/b.csv", fx->dir);
	static const char *const suffix[] = { "", ".campaigns.csv", ".report.txt" };
	struct score_options oa = { .as_of = INT64_MIN, .output = a };

	/* scored_at is the one column that may differ between two scores; pin it */
	setenv("SOURCE_DATE_EPOCH", "1767225600", 1);
	struct score_options ob = { .as_of = INT64_MIN, .model = "1", .output = b };
	FILE *out = fopen("/dev/null", "w");
	struct expect_users e;
	char line[256];

	expect_users_load(fx, &e);
	assert_true(e.n_to_score > 0);
	if (score_registry(&fx->cfg, &oa, out, &err) != 0)
		fail_msg("score: %s", err.msg);
	if (score_registry(&fx->cfg, &ob, out, &err) != 0)
		fail_msg("score --model 1: %s", err.msg);
	fclose(out);
	for (size_t k = 0; k < 3; k++) {
		char *pa = xasprintf("%s%s", a, suffix[k]), *pb = xasprintf("%s%s", b, suffix[k]);
		size_t la, lb;
		char *ta = slurp(pa, &la), *tb = slurp(pb, &lb);

		assert_true(la > 0);
		if (la != lb || memcmp(ta, tb, la) != 0)
			fail_msg("'%s' and '%s' differ: scoring is not deterministic", pa, pb);
		if (k == 0)
			check_users_csv(ta, &e);
		else if (k == 1)
			assert_int_equal(campaigns_users_sum(ta), e.n_to_score);
		else {
			assert_non_null(strstr(ta, "model version 1,"));
			assert_non_null(strstr(ta, "Horizons in days: 7 30 90 (target 30)"));
			snprintf(line, sizeof(line),
				 "\nUsers scored (not yet 90 days old, the longest horizon): %lld in ",
				 (long long)e.n_to_score);
			if (!strstr(ta, line))
				fail_msg("report lacks '%s':\n%s", line + 1, ta);
			/* users younger than the first snapshot age are counted, or the line is absent */
			snprintf(line, sizeof(line), "\n  of which %lld (", (long long)e.n_under_first);
			if (e.n_under_first > 0)
				assert_non_null(strstr(ta, line));
			else
				assert_null(strstr(ta, "days old, the youngest age the models were trained at"));
		}
		free(ta);
		free(tb);
		free(pa);
		free(pb);
	}
	expect_users_release(&e);
	free(a);
	free(b);
}

/* ---- predict ---- */

static cJSON *predict_json(struct test_pipeline *fx, const char *app, const char *campaign)
{
	struct predict_options opts = { .app = app, .campaign = campaign };
	struct ltv_err err = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	cJSON *j;

	struct registry *reg = NULL;

	assert_non_null(out);
	/* as `ltvpipe predict` does: the dispatcher opens the registry read-only */
	if (registry_open_readonly(fx->cfg.registry.path, &reg, &err) != 0 ||
	    predict_run(&fx->cfg, reg, &opts, out, &err) != 0)
		fail_msg("predict %s/%s: %s", app, campaign ? campaign : "(none)", err.msg);
	registry_close(reg);
	fclose(out);
	j = cJSON_Parse(text);
	if (!j)
		fail_msg("predict printed no JSON: %s", text);
	free(text);
	return j;
}

static const char *json_str(const cJSON *j, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsString(item))
		fail_msg("predict JSON has no string '%s'", key);
	return item->valuestring;
}

static void check_ltv_monotone(const cJSON *j)
{
	const cJSON *ltv = cJSON_GetObjectItemCaseSensitive(j, "ltv");
	const char *keys[] = { "7", "30", "90" };
	double prev = 0;

	assert_non_null(ltv);
	for (size_t k = 0; k < 3; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(ltv, keys[k]);

		assert_true(cJSON_IsNumber(v));
		assert_true(v->valuedouble >= prev);
		prev = v->valuedouble;
	}
}

static void test_predict_unseen_and_empty(void **state)
{
	struct test_pipeline *fx = *state;
	/* puzzle_blast is one of the generated sample's apps (seed 42) */
	cJSON *unseen = predict_json(fx, "puzzle_blast", "some_new_name_2026");
	cJSON *empty = predict_json(fx, "puzzle_blast", "");
	cJSON *none = predict_json(fx, "puzzle_blast", NULL);

	/* a campaign the model never saw is tier 3, served by tier 3's best method */
	{
		struct registry *reg = NULL;
		struct loaded_model m = { 0 };
		struct ltv_err err = { 0 };

		assert_int_equal(registry_open_readonly(fx->cfg.registry.path, &reg, &err), 0);
		if (model_load(reg, &fx->cfg, 1, &m, &err) != 0)
			fail_msg("model_load: %s", err.msg);
		const int chosen = m.pred.choice[m.pred.target_h].tier_default[3];

		/* a method, or the blend, which select judges like one */
		assert_true((chosen >= 0 && chosen < METHOD_COUNT) || chosen == METHOD_BLEND);
		assert_string_equal(json_str(unseen, "method"), method_name(chosen));
		model_release(&m);
		registry_close(reg);
	}
	assert_string_equal(json_str(unseen, "campaign"), "some_new_name_2026");
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(unseen, "tier")->valuedouble, 3);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(unseen, "model_version")->valuedouble, 1);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(unseen, "fallback")));
	check_ltv_monotone(unseen);
	assert_string_equal(json_str(empty, "method"), "global_median");
	check_ltv_monotone(empty);
	assert_string_equal(json_str(none, "method"), "global_median");
	cJSON_Delete(unseen);
	cJSON_Delete(empty);
	cJSON_Delete(none);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * score_sort_ltvs puts values in qsort's order, bit for bit: repeated
 * values, -0 beside +0 (in their input order), infinities, negatives; and
 * with a NaN as qsort does.
 */
static void test_sort_ltvs_as_qsort(void **state)
{
	const size_t n = 50000;
	double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	for (int with_nan = 0; with_nan < 2; with_nan++) {
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			switch (x % 8) {
			case 0: a[i] = 0.0; break;
			case 1: a[i] = -0.0; break;
			case 2: a[i] = (double)(x % 100) / 4; break;
			case 3: a[i] = -(double)(x % 1000) * 1e-3; break;
			case 4: a[i] = (x >> 40) % 2 ? INFINITY : -INFINITY; break;
			default: a[i] = (double)(x >> 11) * 0x1p-40; break;
			}
		}
		if (with_nan)
			a[n / 3] = NAN;
		memcpy(b, a, n * sizeof(double));
		score_sort_ltvs(a, n);
		qsort(b, n, sizeof(double), compare_double);
		assert_memory_equal(a, b, n * sizeof(double));
	}
	score_sort_ltvs(a, 0);
	free(a);
	free(b);
}

/* The fields as csv_write_field writes each, comma-separated: what the own file's row must say. */
static char *fields_by_csv_write(char *const *fields, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	for (size_t k = 0; k < n; k++) {
		if (k)
			fputc(',', f);
		csv_write_field(f, fields[k]);
	}
	fclose(f);
	return text;
}

/*
 * score_put_row_fields writes what csv_write_field does field by field: for
 * fields one after another in one text (as a reader's plain line leaves
 * them), with quotes, commas, CR, LF, blanks at either end, empty fields,
 * a gap between two fields, fields apart or in another order, and rows
 * longer than a 16-byte step.
 */
static void test_put_row_fields_as_csv_write(void **state)
{
	static const char *const pieces[] = { "u00000001", "", "a", "kingdom_tactics", "x,y", "say \"hi\"",
					      " lead", "trail\t", "mid dle", "line\nbreak", "cr\r",
					      "applovin_gb_android_broad_and_then_some_more", "0.92" };
	static const size_t plain[] = { 0, 1, 2, 3, 11, 12 }; /* pieces that need no quotes */
	const size_t n_pieces = sizeof(pieces) / sizeof(pieces[0]);
	uint64_t x = 0x2545f4914f6cdd1dULL;

	(void)state;
	for (int round = 0; round < 4000; round++) {
		char text[1024], *fields[12];
		const size_t n = 1 + (size_t)(round % 12);
		const int layout = round % 4; /* 0 plain and 1 any, one after another; 2 a gap; 3 reversed */
		size_t at = 0;
		struct jbuf b;
		char *want;

		for (size_t k = 0; k < n; k++) {
			const size_t i = layout ? (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x % n_pieces)
						: plain[(k + (size_t)round) % 6];
			const size_t len = strlen(pieces[i]);

			memcpy(text + at, pieces[i], len + 1);
			fields[k] = text + at;
			at += len + 1;
			if (layout == 2 && k == n / 2) {
				memcpy(text + at, "gap", 4); /* a NUL-ended gap before the next field */
				at += 4;
			}
		}
		if (layout == 3)
			for (size_t k = 0; k < n / 2; k++) {
				char *t = fields[k];

				fields[k] = fields[n - 1 - k];
				fields[n - 1 - k] = t;
			}
		want = fields_by_csv_write(fields, n);
		jbuf_init(&b);
		jbuf_puts(&b, "head:");
		score_put_row_fields(&b, fields, n);
		assert_int_equal(b.len, 5 + strlen(want));
		assert_string_equal(b.p + 5, want);
		assert_memory_equal(b.p, "head:", 5);
		jbuf_release(&b);
		free(want);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_resolve),
		cmocka_unit_test(test_method_names),
		cmocka_unit_test(test_segments_and_floor),
		cmocka_unit_test(test_chosen_method),
		cmocka_unit_test(test_score_usage_errors),
		cmocka_unit_test(test_score_outputs),
		cmocka_unit_test(test_predict_unseen_and_empty),
		cmocka_unit_test(test_sort_ltvs_as_qsort),
		cmocka_unit_test(test_put_row_fields_as_csv_write),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
