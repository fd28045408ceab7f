/*
 * The BTYD stages with btyd.fit_users 1 (pipeline/btyd_stage.c): fitted on
 * every user at least a day old at as_of except validation users, their
 * purchase days read from the registry. Leakage: a purchase after as_of for
 * every user changes no fitted parameter; a purchase inside every validation
 * user's label window (before as_of) changes none either, since select
 * judges the fit on those users; the same purchase for users too young for
 * the features frame does change the fit (they are in it, and the test can
 * fail). The fit counts more users than the training users alone. And
 * select's rule for a horizon without labels (select.unlabelled).
 *
 * btyd.serve_fit 1: the judged fit is the same as without it, and a refit on
 * every user a day old at as_of is stored beside it; a purchase after as_of
 * changes neither, one inside every validation user's label window changes
 * the refit only (the judged fit never sees validation labels); the method
 * as select loads it predicts with the judged fit, and as a served model
 * loads it (model_load) with the refit. btyd.serve_fit 2: the refit counts
 * exactly the training and validation users, and ignores a purchase after
 * as_of too.
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/btyd_model.h"
#include "ltv/log.h"
#include "ltv/model_data.h"
#include "ltv/model_loader.h"
#include "ltv/registry.h"
#include "ltv/runner.h"
#include "ltv/timeutil.h"

#include "fixture.h"

struct fit_fixture {
	struct test_pipeline *p;
	int64_t as_of;
};

/*
 * What the stage fitted, as it recorded it: its "fits" (every fit's
 * parameters and log-likelihood) and "not_fitted" printed, the pooled fit's
 * users (NaN: none), the users it read (btyd.fit_users 1), its version.
 */
struct fitted {
	char *fit;
	char *serve;       /* "serve_fits" printed (btyd.serve_fit 1), or "" */
	double users, fit_users;
	double serve_users; /* "serve_fit_users", NaN: none */
	int n_fits, n_serve_fits; /* the pooled fit and one per app with enough users */
	int64_t version;
};

static void run_bgnbd(const struct fit_fixture *fx, struct fitted *out)
{
	const struct run_options opts = { .as_of = fx->as_of, .to = "bgnbd", .command = "test" };
	const cJSON *fits, *pooled, *not_fitted;
	struct test_model m;

	test_run(&fx->p->cfg, &opts);
	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	fits = cJSON_GetObjectItemCaseSensitive(m.metrics, "fits");
	not_fitted = cJSON_GetObjectItemCaseSensitive(m.metrics, "not_fitted");
	assert_non_null(fits);
	pooled = cJSON_GetObjectItemCaseSensitive(fits, "*");
	out->users = pooled ? test_metric(pooled, "users") : NAN;
	out->n_fits = cJSON_GetArraySize(fits);
	out->fit_users = fx->p->cfg.btyd.fit_users ? test_metric(m.metrics, "fit_users") : NAN;
	{
		char *a = cJSON_PrintUnformatted(fits);

		out->fit = xasprintf("%s %s", a, cJSON_IsString(not_fitted) ? not_fitted->valuestring : "");
		cJSON_free(a);
	}
	{
		const cJSON *serve = cJSON_GetObjectItemCaseSensitive(m.metrics, "serve_fits");
		char *a = serve ? cJSON_PrintUnformatted(serve) : NULL;

		out->serve = xstrdup(a ? a : "");
		out->n_serve_fits = serve ? cJSON_GetArraySize(serve) : 0;
		out->serve_users = serve ? test_metric(m.metrics, "serve_fit_users") : NAN;
		cJSON_free(a);
	}
	out->version = m.artefact.version;
	test_model_release(&m);
}

static void fitted_release(struct fitted *f)
{
	free(f->fit);
	free(f->serve);
}

static int same_fit(const struct fitted *x, const struct fitted *y)
{
	return strcmp(x->fit, y->fit) == 0 && x->fit_users == y->fit_users;
}

/*
 * Writes data/NAME: a purchase of 9.5 for every user u with day[u] >= 0, on
 * that day of its life (a day complete at as_of, so read), or an hour after
 * as_of (or after its install, when later) when after_t; `shift` seconds
 * later still, so that another call's purchases are not the same events.
 */
static void write_purchases(const struct fit_fixture *fx, const struct user_table *users,
			    const int64_t *day, const char *name, int after_t, int64_t shift)
{
	char *path = xasprintf("%s/%s", fx->p->data, name);
	FILE *f = fopen(path, "w");
	size_t n = 0;

	assert_non_null(f);
	fprintf(f, "user_id,event_time,revenue,event\n");
	for (size_t u = 0; u < users->n; u++) {
		const int64_t install = users->install_time[u];
		char iso[32];

		if (day[u] < 0)
			continue;
		assert_true(after_t || install + (day[u] + 1) * SECONDS_PER_DAY <= fx->as_of);
		fprintf(f, "%s,%s,9.5,purchase\n", users->user_id[u],
			time_format_iso8601(shift + (after_t ? (install > fx->as_of ? install : fx->as_of) + 3600
						     : install + day[u] * SECONDS_PER_DAY + 1),
					    iso, sizeof(iso)));
		n++;
	}
	fclose(f);
	free(path);
	assert_true(n > 20);
}

/*
 * valid[u]: for a validation user at some horizon H, day H - 1 (inside its
 * label window, complete at as_of since the user is mature at H), else -1.
 * young[u]: 1 for every fourth user younger than the first horizon
 * (absent from the features frame, present in the fit) with day 1
 * complete, else -1.
 */
static void pick_users(const struct fit_fixture *fx, const struct user_table *users,
		       int64_t *valid, int64_t *young)
{
	struct test_model m;
	const double *uid;

	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	uid = frame_column(&m.d.frame, "uid");
	assert_non_null(uid);
	for (size_t u = 0; u < users->n; u++) {
		const int64_t age = time_day_index(users->install_time[u], fx->as_of);

		/* a few of them, on day 1: enough to move the fit, not to throw it off */
		young[u] = age >= 2 && age < m.d.params.horizons.v[0] && u % 4 == 0 ? 1 : -1;
		valid[u] = -1;
	}
	for (size_t k = 0; k < m.d.params.horizons.n; k++) {
		struct row_split s;

		model_data_split(&m.d, m.d.params.horizons.v[k], 0, &s);
		assert_true(s.n_valid > 0);
		for (size_t i = 0; i < s.n_valid; i++)
			valid[(size_t)uid[s.valid[i]] - 1] = m.d.params.horizons.v[k] - 1;
		row_split_release(&s);
	}
	test_model_release(&m);
}

static void test_fit_users_leak_nothing(void **state)
{
	struct fit_fixture *fx = *state;
	struct fitted train, base, late, valid, young;
	struct user_table users = { 0 };
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	int64_t *valid_day, *young_day, *late_day;

	/* the training users alone (the default), then every user without a validation label */
	test_set(&fx->p->cfg, "btyd.fit_users=%s", "0");
	run_bgnbd(fx, &train);
	test_set(&fx->p->cfg, "btyd.fit_users=%s", "1");
	run_bgnbd(fx, &base);
	assert_true(base.version > train.version);
	/* both fitted: the comparisons below are between real fits */
	assert_true(train.users > 100 && base.users == base.fit_users);
	assert_true(base.users > train.users);
	assert_false(same_fit(&train, &base));
	/*
	 * apps of enough users get fits of their own whichever users are fitted
	 * (an app's fit can still run off and leave it to the pooled one)
	 */
	assert_true(train.n_fits > 1 && base.n_fits > 1);

	assert_int_equal(registry_open(fx->p->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_users_load(reg, &users, &err), 0);
	registry_close(reg);
	/* the fit counts no user installed after as_of, though the registry has some */
	{
		size_t after = 0, day_old = 0;

		for (size_t u = 0; u < users.n; u++) {
			after += users.install_time[u] >= fx->as_of;
			day_old += time_day_index(users.install_time[u], fx->as_of) >= 1;
		}
		assert_true(after > 100);
		assert_true(base.users < (double)day_old);
	}
	valid_day = xmalloc(users.n * sizeof(int64_t));
	young_day = xmalloc(users.n * sizeof(int64_t));
	late_day = xcalloc(users.n, sizeof(int64_t));
	pick_users(fx, &users, valid_day, young_day);

	/* A purchase for every user an hour after as_of: the stage reruns, the fit is the same. */
	write_purchases(fx, &users, late_day, "events_late.csv", 1, 0);
	run_bgnbd(fx, &late);
	assert_true(late.version > base.version);
	assert_true(same_fit(&base, &late));

	/* A purchase on day H - 1 of each validation user at H: inside its label window. */
	write_purchases(fx, &users, valid_day, "events_valid.csv", 0, 0);
	run_bgnbd(fx, &valid);
	assert_true(valid.version > late.version);
	assert_true(same_fit(&base, &valid));

	/* The same for users too young for the features frame: they are fitted on. */
	write_purchases(fx, &users, young_day, "events_young.csv", 0, 0);
	run_bgnbd(fx, &young);
	assert_true(young.version > valid.version);
	assert_false(same_fit(&base, &young));
	assert_true(young.fit_users == base.fit_users);

	fitted_release(&train);
	fitted_release(&base);
	fitted_release(&late);
	fitted_release(&valid);
	fitted_release(&young);
	free(valid_day);
	free(young_day);
	free(late_day);
	user_table_release(&users);
}

/* The current artefact of stage `name`'s metrics, parsed (caller deletes). */
static cJSON *stage_metrics(const struct fit_fixture *fx, const char *name)
{
	struct registry *reg = NULL;
	struct artefact_info info = { 0 };
	struct ltv_err err = { 0 };
	cJSON *m;

	if (registry_open(fx->p->cfg.registry.path, 5, &reg, &err) != 0 ||
	    registry_artefact_current(reg, name, &info, &err) != 0)
		fail_msg("registry: %s", err.msg);
	m = cJSON_Parse(info.metrics);
	assert_non_null(m);
	artefact_info_release(&info);
	registry_close(reg);
	return m;
}

static const char *metric_text(const cJSON *m, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(m, name);

	if (!cJSON_IsString(item))
		fail_msg("metric '%s' missing or not a string", name);
	return item->valuestring;
}

/* The pooled fit's log-likelihood the BTYD stage `name` recorded. */
static double pooled_log_lik(const struct fit_fixture *fx, const char *name)
{
	cJSON *m = stage_metrics(fx, name);
	const cJSON *fit = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "fits"), "*");
	double ll;

	assert_non_null(fit);
	ll = test_metric(fit, "log_lik");
	cJSON_Delete(m);
	return ll;
}

/*
 * A horizon no user has lived to (365 days, as_of five months after the
 * first install): select.unlabelled 1 serves it with bgnbd, 2 with the BTYD
 * fit of the higher log-likelihood, 0 with the target horizon's choices.
 */
static void test_unlabelled_horizon(void **state)
{
	struct fit_fixture *fx = *state;
	const struct run_options opts = { .as_of = fx->as_of, .to = "select", .command = "test" };
	double ll_bg, ll_pn;
	cJSON *m;

	test_set(&fx->p->cfg, "btyd.fit_users=%s", "0");
	test_set(&fx->p->cfg, "features.horizons=%s", "7,30,365");
	test_set(&fx->p->cfg, "select.unlabelled=%s", "1");
	test_run(&fx->p->cfg, &opts);
	m = stage_metrics(fx, "select");
	assert_string_equal(metric_text(m, "global_choice_h365"), "bgnbd");
	assert_non_null(strstr(metric_text(m, "unlabelled_choice_h365"), "bgnbd (select.unlabelled 1)"));
	/* a horizon with labels keeps its own validated choice */
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "unlabelled_choice_h7"));
	cJSON_Delete(m);

	ll_bg = pooled_log_lik(fx, "bgnbd");
	ll_pn = pooled_log_lik(fx, "pareto_nbd");
	assert_true(ll_bg != ll_pn);
	test_set(&fx->p->cfg, "select.unlabelled=%s", "2");
	test_run(&fx->p->cfg, &opts);
	m = stage_metrics(fx, "select");
	assert_string_equal(metric_text(m, "global_choice_h365"), ll_bg > ll_pn ? "bgnbd" : "pareto_nbd");
	cJSON_Delete(m);

	test_set(&fx->p->cfg, "select.unlabelled=%s", "0");
	test_run(&fx->p->cfg, &opts);
	m = stage_metrics(fx, "select");
	assert_string_equal(metric_text(m, "global_choice_h365"), "as the target horizon");
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "unlabelled_choice_h365"));
	cJSON_Delete(m);
}

/* Predictions of the loaded state for every validation row at the target horizon (caller frees). */
static double *valid_predictions(const struct test_model *m, size_t *out_n)
{
	struct row_split s;
	struct ltv_err err = { 0 };
	double *pred;

	model_data_split(&m->d, m->d.params.target_horizon, 0, &s);
	assert_true(s.n_valid > 50);
	pred = xmalloc(s.n_valid * sizeof(double));
	if (btyd_method_predict(m->state, &m->d, s.valid, s.n_valid, m->d.params.target_horizon, pred,
				NULL, &err) != 0)
		fail_msg("predict: %s", err.msg);
	*out_n = s.n_valid;
	row_split_release(&s);
	return pred;
}

/* Users a day old at as_of in the registry: whom the serving refit sees. */
static size_t day_old_users(const struct fit_fixture *fx, struct user_table *users)
{
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	size_t n = 0;

	assert_int_equal(registry_open(fx->p->cfg.registry.path, 5, &reg, &err), 0);
	assert_int_equal(registry_users_load(reg, users, &err), 0);
	registry_close(reg);
	for (size_t u = 0; u < users->n; u++)
		n += time_day_index(users->install_time[u], fx->as_of) >= 1;
	return n;
}

/* The judged fit and the serving refit (btyd.serve_fit), and what each serves. */
static void test_serve_fit(void **state)
{
	struct fit_fixture *fx = *state;
	struct fitted off, on, late, valid, mature, late2;
	struct user_table users = { 0 };
	struct test_model m;
	double *judged, *served, *off_pred;
	size_t n, n_off, moved = 0;
	int64_t *valid_day, *young_day, *late_day;

	test_set(&fx->p->cfg, "btyd.fit_users=%s", "0");
	test_set(&fx->p->cfg, "features.horizons=%s", "7,30");
	test_set(&fx->p->cfg, "select.unlabelled=%s", "1");
	test_set(&fx->p->cfg, "btyd.serve_fit=%s", "0");
	run_bgnbd(fx, &off);
	assert_string_equal(off.serve, "");
	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	assert_null(((struct btyd_state *)m.state)->serve);
	off_pred = valid_predictions(&m, &n_off);
	test_model_release(&m);

	test_set(&fx->p->cfg, "btyd.serve_fit=%s", "1");
	run_bgnbd(fx, &on);
	assert_true(on.version > off.version);
	/* the judged fit is the one without the option, to the bit */
	assert_string_equal(on.fit, off.fit);
	/* the refit: every user a day old at as_of, more than the training users */
	assert_true(on.serve_users == (double)day_old_users(fx, &users));
	assert_true(on.serve_users > on.users && on.users > 100);
	assert_true(on.n_fits > 1 && on.n_serve_fits > 1);
	assert_non_null(strstr(on.serve, "\"*\":{\"users\":"));
	assert_string_not_equal(on.serve, on.fit);

	/* as select and calibrate load it: the judged fit predicts, as without the option */
	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	assert_non_null(((struct btyd_state *)m.state)->serve);
	judged = valid_predictions(&m, &n);
	assert_int_equal(n, n_off);
	assert_memory_equal(judged, off_pred, n * sizeof(double));
	/* for serving: the refit predicts, and a second call changes nothing */
	btyd_method_for_serving(m.state);
	served = valid_predictions(&m, &n);
	for (size_t i = 0; i < n; i++)
		moved += served[i] != judged[i];
	assert_true(moved > n / 10);
	free(served);
	btyd_method_for_serving(m.state);
	assert_true(((struct btyd_state *)m.state)->serving);
	served = valid_predictions(&m, &n);
	moved = 0;
	for (size_t i = 0; i < n; i++)
		moved += served[i] != judged[i];
	assert_true(moved > n / 10);
	test_model_release(&m);

	valid_day = xmalloc(users.n * sizeof(int64_t));
	young_day = xmalloc(users.n * sizeof(int64_t));
	late_day = xcalloc(users.n, sizeof(int64_t));
	pick_users(fx, &users, valid_day, young_day);

	/* A purchase for every user an hour after as_of: neither fit moves. */
	write_purchases(fx, &users, late_day, "events_serve_late.csv", 1, 60);
	run_bgnbd(fx, &late);
	assert_true(late.version > on.version);
	assert_string_equal(late.fit, on.fit);
	assert_string_equal(late.serve, on.serve);

	/*
	 * A purchase inside every validation user's label window (before
	 * as_of): the judged fit never sees it, the refit does (the test can fail).
	 */
	write_purchases(fx, &users, valid_day, "events_serve_valid.csv", 0, 60);
	run_bgnbd(fx, &valid);
	assert_true(valid.version > late.version);
	assert_string_equal(valid.fit, on.fit);
	assert_string_not_equal(valid.serve, on.serve);
	assert_true(valid.serve_users == on.serve_users);

	/*
	 * btyd.serve_fit 2: the refit on every user mature at the target horizon
	 * (training and validation users, from the features frame); a purchase
	 * after as_of moves nothing there either.
	 */
	test_set(&fx->p->cfg, "btyd.serve_fit=%s", "2");
	run_bgnbd(fx, &mature);
	assert_string_equal(mature.fit, valid.fit);
	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	{
		struct row_split split;

		model_data_split_users(&m.d, m.d.params.target_horizon, 0, &split);
		assert_true(split.n_valid > 50);
		assert_true(mature.serve_users == (double)(split.n_train + split.n_valid));
		assert_true(mature.users == (double)split.n_train);
		row_split_release(&split);
	}
	test_model_release(&m);
	assert_string_not_equal(mature.serve, valid.serve);
	write_purchases(fx, &users, late_day, "events_serve_late2.csv", 1, 120);
	run_bgnbd(fx, &late2);
	assert_true(late2.version > mature.version);
	assert_string_equal(late2.fit, mature.fit);
	assert_string_equal(late2.serve, mature.serve);

	free(judged);
	free(served);
	free(off_pred);
	free(valid_day);
	free(young_day);
	free(late_day);
	fitted_release(&off);
	fitted_release(&on);
	fitted_release(&late);
	fitted_release(&valid);
	fitted_release(&mature);
	fitted_release(&late2);
	user_table_release(&users);
}

/*
 * A served model (model_load, as score, predict, serve and evaluate load
 * it) predicts with the refit; select, on the same artefacts, chose as it
 * does without the option.
 */
static void test_serve_fit_served(void **state)
{
	struct fit_fixture *fx = *state;
	const struct run_options opts = { .as_of = fx->as_of, .command = "test" };
	struct loaded_model lm;
	struct registry *reg = NULL;
	const struct btyd_state *s;
	struct test_model m;

	test_set(&fx->p->cfg, "btyd.serve_fit=%s", "1");
	test_run(&fx->p->cfg, &opts);
	test_production_load(fx->p, &reg, &lm);
	s = lm.pred.states[method_index("bgnbd")];
	assert_true(s->serving && s->serve && s->n_fits > 0);
	/* the refit serves: its pooled fit is the one stored under "serve." */
	test_model_load(&fx->p->cfg, &method_bgnbd, 1, &m);
	{
		const struct btyd_state *judged = m.state;
		uint8_t *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		struct ltv_err err = { 0 };

		assert_int_equal(judged->kind->save(judged->serve->fits[0].count, &a, &la, &err), 0);
		assert_int_equal(s->kind->save(s->fits[0].count, &b, &lb, &err), 0);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		free(b);
		assert_int_equal(judged->kind->save(judged->fits[0].count, &b, &lb, &err), 0);
		assert_true(la != lb || memcmp(a, b, la) != 0);
		free(a);
		free(b);
	}
	test_model_release(&m);
	model_release(&lm);
	registry_close(reg);
}

static int fit_setup(void **state)
{
	struct fit_fixture *fx = xcalloc(1, sizeof(*fx));

	log_level_current = LOG_ERROR;
	fx->p = test_pipeline_new(6000, 42, "1");
	if (time_parse_iso8601("2025-06-01T00:00:00Z", &fx->as_of) < 0)
		return -1;
	/* the appended events files count too */
	test_set(&fx->p->cfg, "input.events=%s/events*.csv", fx->p->data);
	test_config_small_sample(&fx->p->cfg);
	test_set(&fx->p->cfg, "features.horizons=%s", "7,30");
	/* apps with fits of their own beside the pooled one (the sample's training users are few) */
	test_set(&fx->p->cfg, "btyd.min_app_users=%s", "150");
	*state = fx;
	return 0;
}

static int fit_teardown(void **state)
{
	struct fit_fixture *fx = *state;

	if (!fx)
		return 0;
	test_pipeline_free(fx->p);
	free(fx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit_users_leak_nothing),
		cmocka_unit_test(test_unlabelled_horizon),
		cmocka_unit_test(test_serve_fit),
		cmocka_unit_test(test_serve_fit_served),
	};

	return cmocka_run_group_tests_name("btyd_fit", tests, fit_setup, fit_teardown);
}
