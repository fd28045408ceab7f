/*
 * Users-file attributes (columns.attributes) as model features: their target
 * encodings against hand-computed values, the leakage rule (learnt from
 * training cohorts only: a validation or scoring user's attribute or revenue,
 * and anything after as_of, change nothing a training row or the stored
 * tables hold), the same value for the same user in the training frame and in
 * the scoring frame, unseen values and apps, and a config with no attribute.
 *
 * as_of = 2025-03-01T00:00:00Z, snapshots 1,3,10, horizons [7, 30, 90],
 * target 30, validation_days 28 (validation: installed after 2025-01-02 and
 * 30 days old), encoding_smoothing m = 3. One app, one campaign.
 * Training users, each weighing 3 (three snapshot rows of weight 1, or one
 * sampled row of weight 3 for a user with no revenue):
 *   t1 US ltv_30 = 10, t2 US ltv_30 = 0, t3 FR ltv_30 = 4 (paid on day 1).
 * Global (= app) mean: 3 * 14 / 9 = 14/3.
 *   US: (3*10 + 3*0 + 3 * 14/3) / (6 + 3) = 44/9
 *   FR: (3*4 + 3 * 14/3) / (3 + 3)       = 13/3
 *   DE, JP (no training user): the app's 14/3.
 * Payer flag per row (revenue still to come after the row's age): only t3's
 * row at age 1 pays, so the global payer mean is 1/9 and
 *   US: (0 + 3 * 1/9) / 9 = 1/27, FR: (1 + 3 * 1/9) / 6 = 2/9.
 */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>

#include "ltv/config.h"
#include "ltv/feature_build.h"
#include "ltv/frame.h"
#include "ltv/log.h"
#include "ltv/registry.h"
#include "ltv/runner.h"

#include "fixture.h"

#define AS_OF 1740787200 /* 2025-03-01T00:00:00Z */

static const char users_csv[] =
	"user_id,app_id,campaign,install_time,cost,country\n"
	"t1,app1,c1,2024-12-01T00:00:00Z,1,US\n" /* uid 1: train */
	"t2,app1,c1,2024-12-05T00:00:00Z,1,US\n" /* uid 2: train, never pays */
	"t3,app1,c1,2024-12-10T00:00:00Z,1,FR\n" /* uid 3: train */
	"v1,app1,c1,2025-01-20T00:00:00Z,1,DE\n" /* uid 4: validation (age 40) */
	"s1,app1,c1,2025-02-20T00:00:00Z,1,US\n" /* uid 5: scored (age 9) */
	"s2,app1,c1,2025-02-21T00:00:00Z,1,JP\n"; /* uid 6: scored (age 8) */

static const char events_csv[] =
	"user_id,event_time,revenue,event\n"
	"t1,2024-12-01T01:00:00Z,10,purchase\n"
	"t3,2024-12-11T01:00:00Z,4,purchase\n"
	"v1,2025-01-20T01:00:00Z,7,purchase\n"
	"s1,2025-02-20T01:00:00Z,2,purchase\n";

/* The validation and scored users move country; they and t1 (after as_of) spend more. */
static const char users_moved_csv[] =
	"user_id,app_id,campaign,install_time,cost,country\n"
	"t1,app1,c1,2024-12-01T00:00:00Z,1,US\n"
	"t2,app1,c1,2024-12-05T00:00:00Z,1,US\n"
	"t3,app1,c1,2024-12-10T00:00:00Z,1,FR\n"
	"v1,app1,c1,2025-01-20T00:00:00Z,1,US\n"
	"s1,app1,c1,2025-02-20T00:00:00Z,1,FR\n"
	"s2,app1,c1,2025-02-21T00:00:00Z,1,FR\n";

static const char events_more_csv[] =
	"user_id,event_time,revenue,event\n"
	"t1,2024-12-01T01:00:00Z,10,purchase\n"
	"t3,2024-12-11T01:00:00Z,4,purchase\n"
	"v1,2025-01-20T01:00:00Z,7,purchase\n"
	"v1,2025-01-23T01:00:00Z,100,purchase\n"
	"s1,2025-02-20T01:00:00Z,2,purchase\n"
	"s1,2025-02-21T01:00:00Z,50,purchase\n"
	"t1,2025-03-02T00:00:00Z,1000,purchase\n"; /* after as_of */

/* A training user moving: the control that shows the comparison can fail. */
static const char users_t3_moved_csv[] =
	"user_id,app_id,campaign,install_time,cost,country\n"
	"t1,app1,c1,2024-12-01T00:00:00Z,1,US\n"
	"t2,app1,c1,2024-12-05T00:00:00Z,1,US\n"
	"t3,app1,c1,2024-12-10T00:00:00Z,1,US\n"
	"v1,app1,c1,2025-01-20T00:00:00Z,1,DE\n"
	"s1,app1,c1,2025-02-20T00:00:00Z,1,US\n"
	"s2,app1,c1,2025-02-21T00:00:00Z,1,JP\n";

/* Replaces the inputs (re-read with ingest.mode=replace). */
static void write_inputs(struct test_hand *fx, const char *users, const char *events)
{
	test_put_file(fx->dir, "users.csv", users);
	test_put_file(fx->dir, "events.csv", events);
}

static int setup(void **state)
{
	struct test_hand *fx = test_hand_new(users_csv, events_csv, "users.csv", "events.csv");

	test_set(&fx->cfg, "features.snapshots=1,3,10");
	test_set(&fx->cfg, "features.encoding_smoothing=3");
	test_set(&fx->cfg, "columns.attributes=country");
	/* re-reading edited files is a correction: replace, as README says */
	test_set(&fx->cfg, "ingest.mode=replace");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	test_hand_free(*state);
	return 0;
}

/* The features stage as of AS_OF, then its frame and encodings (caller releases both). */
static void run_and_load(struct test_hand *fx, struct frame *f, struct encodings *enc)
{
	const struct run_options opts = { .as_of = AS_OF, .to = "features", .command = "test" };

	test_run(&fx->cfg, &opts);
	test_features_load(&fx->cfg, f, NULL, enc);
}

static void assert_near(const char *what, double got, double expect)
{
	if (!(fabs(got - expect) <= 1e-12))
		fail_msg("%s: got %.17g, expected %.17g", what, got, expect);
}

/* The index of value v of attribute 0, or fails. */
static size_t value_index(const struct encodings *e, const char *v)
{
	for (size_t i = 0; i < e->attrs[0].n_values; i++)
		if (strcmp(e->attrs[0].values[i], v) == 0)
			return i;
	fail_msg("country '%s' is not in the dictionary", v);
	return 0;
}

/* Every row of uid has the value expect in column name. */
static void assert_user_rows(const struct frame *f, double uid, const char *name, double expect)
{
	const double *u = test_column(f, "uid"), *c = test_column(f, name);
	size_t n = 0;

	for (size_t i = 0; i < f->n_rows; i++)
		if (u[i] == uid) {
			char what[96];

			snprintf(what, sizeof(what), "uid %g %s", uid, name);
			assert_near(what, c[i], expect);
			n++;
		}
	assert_true(n > 0);
}

static void test_hand_computed_encodings(void **state)
{
	struct test_hand *fx = *state;
	struct encodings e;
	struct frame f;

	run_and_load(fx, &f, &e);
	assert_int_equal(e.n_apps, 1);
	assert_int_equal(e.n_attrs, 1);
	assert_string_equal(e.attrs[0].name, "country");
	/* every installed user's value, sorted: DE and JP only outside training */
	assert_int_equal(e.attrs[0].n_values, 4);
	assert_string_equal(e.attrs[0].values[0], "DE");
	assert_string_equal(e.attrs[0].values[3], "US");
	assert_near("global ltv", e.global_ltv, 14.0 / 3);
	assert_near("US ltv", e.attrs[0].ltv[value_index(&e, "US")], 44.0 / 9);
	assert_near("FR ltv", e.attrs[0].ltv[value_index(&e, "FR")], 13.0 / 3);
	assert_near("DE ltv", e.attrs[0].ltv[value_index(&e, "DE")], 14.0 / 3);
	assert_near("JP ltv", e.attrs[0].ltv[value_index(&e, "JP")], 14.0 / 3);
	assert_near("US payer", e.attrs[0].payer[value_index(&e, "US")], 1.0 / 27);
	assert_near("FR payer", e.attrs[0].payer[value_index(&e, "FR")], 2.0 / 9);
	/* validation and scored users' rows carry the full-training tables */
	assert_user_rows(&f, 4, "attr_country_ltv_te", 14.0 / 3);
	assert_user_rows(&f, 5, "attr_country_ltv_te", 44.0 / 9);
	assert_user_rows(&f, 6, "attr_country_ltv_te", 14.0 / 3);
	assert_user_rows(&f, 5, "attr_country_payer_te", 1.0 / 27);
	/*
	 * t1's rows are out of fold: its own fold (the first fifth of the
	 * training install dates) left out, US is t2 alone (0) shrunk to the
	 * out-of-fold app mean (t2, t3: 12/6 = 2, itself shrunk to the
	 * out-of-fold global 2): (0 + 3 * 2) / (3 + 3) = 1. Never its own label.
	 */
	assert_user_rows(&f, 1, "attr_country_ltv_te", 1);
	encodings_release(&e);
	frame_release(&f);
}

/* Training rows' attribute columns and the training values' tables, bit for bit. */
static int same_training_encodings(const struct frame *a, const struct encodings *ea,
				   const struct frame *b, const struct encodings *eb)
{
	static const char *const cols[] = { "attr_country_ltv_te", "attr_country_payer_te" };
	static const char *const train_values[] = { "US", "FR" };
	const double *split = test_column(a, "split"), *ua = test_column(a, "uid"), *wa = test_column(a, "window_days");
	const double *ub = test_column(b, "uid"), *wb = test_column(b, "window_days");

	for (size_t v = 0; v < 2; v++) {
		size_t ia = value_index(ea, train_values[v]), ib = value_index(eb, train_values[v]);

		if (memcmp(&ea->attrs[0].ltv[ia], &eb->attrs[0].ltv[ib], sizeof(double)) != 0 ||
		    memcmp(&ea->attrs[0].payer[ia], &eb->attrs[0].payer[ib], sizeof(double)) != 0)
			return 0;
	}
	for (size_t i = 0; i < a->n_rows; i++) {
		size_t j = 0;

		if (split[i] != 0)
			continue;
		while (j < b->n_rows && !(ub[j] == ua[i] && wb[j] == wa[i]))
			j++;
		if (j == b->n_rows)
			return 0;
		for (size_t k = 0; k < 2; k++)
			if (memcmp(&test_column(a, cols[k])[i], &test_column(b, cols[k])[j], sizeof(double)) != 0)
				return 0;
	}
	return 1;
}

/*
 * Leakage: validation and scored users changing country and spending more,
 * and a training user's revenue after as_of, change nothing the training rows
 * or the training values' tables hold. A training user moving does (the
 * control: the comparison can fail).
 */
static void test_learnt_from_training_users_only(void **state)
{
	struct test_hand *fx = *state;
	struct encodings e0, e1, e2;
	struct frame f0, f1, f2;

	run_and_load(fx, &f0, &e0);
	write_inputs(fx, users_moved_csv, events_more_csv);
	run_and_load(fx, &f1, &e1);
	/* the edits did arrive: v1 is now US, with its later revenue */
	assert_user_rows(&f1, 4, "attr_country_ltv_te", e1.attrs[0].ltv[value_index(&e1, "US")]);
	assert_user_rows(&f1, 6, "attr_country_ltv_te", 13.0 / 3);
	assert_true(same_training_encodings(&f0, &e0, &f1, &e1));

	write_inputs(fx, users_t3_moved_csv, events_csv);
	run_and_load(fx, &f2, &e2);
	assert_false(same_training_encodings(&f0, &e0, &f2, &e2));
	/* US is now t1, t2, t3: (3*10 + 3*4 + 3 * 14/3) / (9 + 3) */
	assert_near("US ltv with t3", e2.attrs[0].ltv[value_index(&e2, "US")], 56.0 / 12);
	encodings_release(&e0);
	encodings_release(&e1);
	encodings_release(&e2);
	frame_release(&f0);
	frame_release(&f1);
	frame_release(&f2);
}

/*
 * The scorer's frame (model_data_for_scoring's steps: base rows at age, the
 * stored encodings re-applied) gives a non-training user exactly its
 * training-frame value, and a training user the full-training table.
 */
static void test_training_and_scoring_frames_agree(void **state)
{
	struct test_hand *fx = *state;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct encodings e;
	struct frame f, s;
	struct attr_encoding *attrs = NULL;
	char **apps = NULL, **camps = NULL, **apps2 = NULL, **camps2 = NULL;
	size_t n_apps = 0, n_camps = 0, n_apps2 = 0, n_camps2 = 0, n_attrs = 0;
	char *path = test_registry_path(fx->dir);
	const double *su, *sl, *sp, *fu, *fl, *fp;

	run_and_load(fx, &f, &e);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	if (feature_build_base_attrs(reg, &fx->cfg, AS_OF, FEATURE_ROWS_AT_AGE, NULL, &s, &apps, &n_apps,
				     &camps, &n_camps, &attrs, &n_attrs, NULL, &err) != 0)
		fail_msg("feature_build_base_attrs: %s", err.msg);
	assert_int_equal(n_attrs, 1);
	feature_apply_encodings(&e, &s, apps, n_apps, camps, n_camps, &apps2, &n_apps2, &camps2,
				&n_camps2);
	feature_apply_attr_encodings(&e, &s, attrs, n_attrs);
	assert_int_equal(s.n_rows, 6);
	su = test_column(&s, "uid");
	sl = test_column(&s, "attr_country_ltv_te");
	sp = test_column(&s, "attr_country_payer_te");
	fu = test_column(&f, "uid");
	fl = test_column(&f, "attr_country_ltv_te");
	fp = test_column(&f, "attr_country_payer_te");
	for (size_t i = 0; i < s.n_rows; i++) {
		if (su[i] <= 3) { /* training users: scored with the full-training table */
			size_t v = value_index(&e, su[i] == 3 ? "FR" : "US");

			assert_near("training user scored", sl[i], e.attrs[0].ltv[v]);
			assert_near("training user scored (payer)", sp[i], e.attrs[0].payer[v]);
			continue;
		}
		for (size_t j = 0; j < f.n_rows; j++)
			if (fu[j] == su[i] && (memcmp(&fl[j], &sl[i], sizeof(double)) != 0 ||
					       memcmp(&fp[j], &sp[i], sizeof(double)) != 0))
				fail_msg("uid %g: training frame %.17g / %.17g, scoring frame %.17g / %.17g",
					 su[i], fl[j], fp[j], sl[i], sp[i]);
	}
	frame_free_dict(apps, n_apps);
	frame_free_dict(camps, n_camps);
	frame_free_dict(apps2, n_apps2);
	frame_free_dict(camps2, n_camps2);
	attr_encodings_release(attrs, n_attrs);
	encodings_release(&e);
	frame_release(&f);
	frame_release(&s);
	registry_close(reg);
	free(path);
}

/* A value no training user had takes its app's encoding; an unseen app the global one. */
static void test_unseen_values_and_apps(void **state)
{
	struct test_hand *fx = *state;
	struct encodings e;
	struct frame f, g;
	char br[] = "BR", us[] = "US", country[] = "country";
	char *values[] = { br, us };
	struct attr_encoding base = { .name = country, .values = values, .n_values = 2 };
	double *app, *code;

	run_and_load(fx, &f, &e);
	frame_init(&g, 4);
	app = frame_add_column(&g, "app_code");
	code = frame_add_column(&g, "attr_country_code");
	app[0] = 0, code[0] = 0; /* BR in app1: unseen value */
	app[1] = 0, code[1] = 1; /* US in app1 */
	app[2] = 1, code[2] = 1; /* US in an app not trained on (code past e.n_apps) */
	app[3] = 0, code[3] = 2; /* not given (a code past the base values) */
	feature_apply_attr_encodings(&e, &g, &base, 1);
	assert_near("BR", test_column(&g, "attr_country_ltv_te")[0], e.app_ltv[0]);
	assert_near("BR payer", test_column(&g, "attr_country_payer_te")[0], e.app_payer[0]);
	assert_near("US", test_column(&g, "attr_country_ltv_te")[1], 44.0 / 9);
	assert_near("unseen app", test_column(&g, "attr_country_ltv_te")[2], e.global_ltv);
	assert_near("unseen app payer", test_column(&g, "attr_country_payer_te")[2], e.global_payer);
	assert_near("not given", test_column(&g, "attr_country_ltv_te")[3], e.app_ltv[0]);
	frame_release(&g);
	/* no base attribute at all (a predict call without --attr): the app's value */
	frame_init(&g, 1);
	frame_add_column(&g, "app_code");
	feature_apply_attr_encodings(&e, &g, NULL, 0);
	assert_near("no attribute given", test_column(&g, "attr_country_ltv_te")[0], e.app_ltv[0]);
	frame_release(&g);
	encodings_release(&e);
	frame_release(&f);
}

/* No columns.attributes (CDNOW): no attribute column, blob or feature; the config rules. */
static void test_no_attributes_configured(void **state)
{
	struct test_hand *fx = *state;
	struct ltv_err err = { 0 };
	struct str_list out;
	char rev_window[] = "rev_window";
	char *one[] = { rev_window };
	struct gbt_section sec = { .features = { one, 1 } };
	struct encodings e;
	struct frame f;

	test_set(&fx->cfg, "columns.attributes=[]");
	run_and_load(fx, &f, &e);
	assert_int_equal(e.n_attrs, 0);
	for (size_t j = 0; j < f.n_cols; j++)
		if (strncmp(f.names[j], "attr_", 5) == 0)
			fail_msg("column %s without attributes", f.names[j]);
	encodings_release(&e);
	frame_release(&f);

	/* an attribute feature listed by hand needs its attribute */
	test_set(&fx->cfg, "hurdle.features=rev_window,attr_country_ltv_te");
	assert_int_equal(config_validate(&fx->cfg, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "'attr_country_ltv_te' is not a feature"));
	test_set(&fx->cfg, "columns.attributes=country,platform");
	err_clear(&err);
	assert_int_equal(config_validate(&fx->cfg, &err), 0);
	/* attribute_features adds each attribute's two encodings, once */
	sec.attribute_features = 1;
	config_model_features(&fx->cfg, &sec, &out);
	assert_int_equal(out.n, 5);
	assert_string_equal(out.v[1], "attr_country_ltv_te");
	assert_string_equal(out.v[4], "attr_platform_payer_te");
	config_str_list_free(&out);
	sec.attribute_features = 0;
	config_model_features(&fx->cfg, &sec, &out);
	assert_int_equal(out.n, 1);
	config_str_list_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hand_computed_encodings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learnt_from_training_users_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_training_and_scoring_frames_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unseen_values_and_apps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_attributes_configured, setup, teardown),
	};

	log_level_current = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
