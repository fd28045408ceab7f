/*
 * Unit tests for data_source.c: users and user-days from memory give the
 * feature builder the very frame the registry gives (every column, bit for
 * bit, at an as_of that cuts users and days off), rows for the young users
 * only are the full frame's rows of those users, struct user_data keeps
 * copies of its strings, long ones too, that outlive the caller's buffers,
 * user-days out of (uid, day) order give the same frame,
 * the user-days' bound is the count passed on,
 * user_data_load from an install time on keeps only those users' days,
 * and a user-day of no user, in memory or in the registry, is an error.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "ltv/data_source.h"
#include "ltv/feature_build.h"
#include "ltv/frame.h"
#include "ltv/registry.h"

/* The registry's users and user-days, in memory (user_data_load, every user-day). */
static void load_into_memory(struct registry *reg, struct user_data *ud)
{
	struct ltv_err err;

	if (user_data_load(reg, INT64_MIN, ud, &err) != 0)
		fail_msg("user_data_load: %s", err.msg);
}

static void build(const struct data_source *src, const struct config *cfg, int64_t as_of,
		  struct frame *f, char ***apps, size_t *n_apps, char ***camps, size_t *n_camps)
{
	struct ltv_err err;

	if (feature_build_base_from(src, cfg, as_of, FEATURE_ROWS_AT_AGE, NULL, INT64_MAX, f, apps, n_apps,
				    camps, n_camps, NULL, NULL, NULL, &err) != 0)
		fail_msg("feature_build_base_from: %s", err.msg);
}

static void test_memory_frame_is_the_registry_frame(void **state)
{
	struct test_pipeline *p = test_pipeline_new(600, 11, "1");
	struct registry *reg = NULL;
	struct user_data ud;
	struct ltv_err err;
	int64_t max_event = 0, mem_max = 0;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	load_into_memory(reg, &ud);
	{
		const struct data_source rs = data_source_registry(reg);

		assert_int_equal(data_source_max_event_time(&rs, &max_event, &err), 0);
	}
	/* as of the last event, and 40 days earlier: later installs and days are cut off */
	for (int k = 0; k < 2; k++) {
		const int64_t as_of = max_event - k * 40 * 86400;
		const struct data_source rs = data_source_registry(reg), ms = data_source_memory(&ud);
		struct frame a, b;
		char **apps_a, **apps_b, **camps_a, **camps_b;
		size_t na_a, na_b, nc_a, nc_b;

		build(&rs, &p->cfg, as_of, &a, &apps_a, &na_a, &camps_a, &nc_a);
		build(&ms, &p->cfg, as_of, &b, &apps_b, &na_b, &camps_b, &nc_b);
		assert_true(a.n_rows > 100);
		assert_int_equal(a.n_rows, b.n_rows);
		assert_int_equal(a.n_cols, b.n_cols);
		for (size_t j = 0; j < a.n_cols; j++) {
			assert_string_equal(a.names[j], b.names[j]);
			/* NaN where the registry's frame has NaN; memcmp compares them bit for bit */
			assert_memory_equal(a.cols[j], b.cols[j], a.n_rows * sizeof(double));
		}
		assert_int_equal(na_a, na_b);
		assert_int_equal(nc_a, nc_b);
		for (size_t i = 0; i < nc_a; i++)
			assert_string_equal(camps_a[i], camps_b[i]);
		if (k == 1)
			assert_true(a.n_rows < ud.users.n); /* the earlier as_of left users out */
		frame_release(&a);
		frame_release(&b);
		frame_free_dict(apps_a, na_a);
		frame_free_dict(apps_b, na_b);
		frame_free_dict(camps_a, nc_a);
		frame_free_dict(camps_b, nc_b);
	}
	{
		const struct data_source ms = data_source_memory(&ud);

		assert_int_equal(data_source_max_event_time(&ms, &mem_max, &err), 0);
		assert_true(mem_max == max_event);
	}
	user_data_release(&ud);
	registry_close(reg);
	test_pipeline_free(p);
}

static int count_day(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
		     int64_t purchases)
{
	(void)uid, (void)day, (void)revenue, (void)events, (void)purchases;
	++*(size_t *)ctx;
	return 0;
}

/*
 * The user-days' bound, which the feature builder reserves its days by, is
 * the count the registry passes on (one ingest: no (uid, day) twice), and a
 * memory source's is the days it holds.
 */
static void test_user_days_bound(void **state)
{
	struct test_pipeline *p = test_pipeline_new(600, 11, "1");
	struct registry *reg = NULL;
	struct user_data ud;
	struct ltv_err err;
	size_t bound = 0, passed = 0;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	assert_int_equal(registry_user_days_bound(reg, &bound, &err), 0);
	assert_int_equal(registry_user_days_each(reg, count_day, &passed, &err), 0);
	assert_true(passed > 600);
	assert_int_equal(bound, passed);
	{
		const struct data_source rs = data_source_registry(reg);

		assert_int_equal(data_source_user_days_bound(&rs), passed);
	}
	load_into_memory(reg, &ud);
	{
		const struct data_source ms = data_source_memory(&ud);

		assert_int_equal(data_source_user_days_bound(&ms), ud.n_days);
		assert_int_equal(ud.n_days, passed);
	}
	user_data_release(&ud);
	registry_close(reg);
	test_pipeline_free(p);
}

/*
 * User-days that do not come in (uid, day) order (the registry's and
 * ingest's do) are sorted before the rows are built: the frame of the
 * days reversed in memory is the registry's, bit for bit. Without the sort,
 * or with each user's days counted wrong, the rows would read other days.
 */
static void test_days_out_of_order_give_the_same_frame(void **state)
{
	struct test_pipeline *p = test_pipeline_new(400, 5, "1");
	struct registry *reg = NULL;
	struct user_data ud;
	struct ltv_err err;
	int64_t as_of = 0;
	struct frame a, b;
	char **apps_a, **apps_b, **camps_a, **camps_b;
	size_t na_a, na_b, nc_a, nc_b;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	load_into_memory(reg, &ud);
	assert_true(ud.n_days > 100);
	for (size_t i = 0, j = ud.n_days - 1; i < j; i++, j--) {
		const struct user_day_row t = ud.days[i];

		ud.days[i] = ud.days[j];
		ud.days[j] = t;
	}
	{
		const struct data_source rs = data_source_registry(reg), ms = data_source_memory(&ud);

		assert_int_equal(data_source_max_event_time(&rs, &as_of, &err), 0);
		build(&rs, &p->cfg, as_of, &a, &apps_a, &na_a, &camps_a, &nc_a);
		build(&ms, &p->cfg, as_of, &b, &apps_b, &na_b, &camps_b, &nc_b);
	}
	assert_true(a.n_rows > 100);
	assert_int_equal(a.n_rows, b.n_rows);
	assert_int_equal(a.n_cols, b.n_cols);
	for (size_t j = 0; j < a.n_cols; j++) {
		assert_string_equal(a.names[j], b.names[j]);
		assert_memory_equal(a.cols[j], b.cols[j], a.n_rows * sizeof(double));
	}
	frame_release(&a);
	frame_release(&b);
	frame_free_dict(apps_a, na_a);
	frame_free_dict(apps_b, na_b);
	frame_free_dict(camps_a, nc_a);
	frame_free_dict(camps_b, nc_b);
	user_data_release(&ud);
	registry_close(reg);
	test_pipeline_free(p);
}

/*
 * Rows only for the users younger than a limit (what score builds): exactly
 * the full frame's rows of those users, every column bit for bit, and the
 * same dictionaries, though the older users' campaigns have no row.
 */
static void test_younger_than_is_a_subset(void **state)
{
	struct test_pipeline *p = test_pipeline_new(600, 12, "1");
	struct registry *reg = NULL;
	struct ltv_err err;
	int64_t as_of = 0;
	const int64_t limit = 60;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	{
		const struct data_source rs = data_source_registry(reg);
		struct frame all, young;
		char **apps_a, **apps_y, **camps_a, **camps_y;
		size_t na_a, na_y, nc_a, nc_y, k = 0;
		const double *age;

		assert_int_equal(data_source_max_event_time(&rs, &as_of, &err), 0);
		build(&rs, &p->cfg, as_of, &all, &apps_a, &na_a, &camps_a, &nc_a);
		if (feature_build_base_from(&rs, &p->cfg, as_of, FEATURE_ROWS_AT_AGE, NULL, limit, &young,
					    &apps_y, &na_y, &camps_y, &nc_y, NULL, NULL, NULL, &err) != 0)
			fail_msg("feature_build_base_from: %s", err.msg);
		age = frame_column(&all, "age_days");
		assert_true(young.n_rows > 0 && young.n_rows < all.n_rows);
		assert_int_equal(young.n_cols, all.n_cols);
		for (size_t i = 0; i < all.n_rows; i++) {
			if (age[i] >= (double)limit)
				continue;
			for (size_t j = 0; j < all.n_cols; j++)
				assert_memory_equal(&all.cols[j][i], &young.cols[j][k], sizeof(double));
			k++;
		}
		assert_int_equal(k, young.n_rows);
		assert_int_equal(na_a, na_y);
		assert_int_equal(nc_a, nc_y);
		frame_release(&all);
		frame_release(&young);
		frame_free_dict(apps_a, na_a);
		frame_free_dict(apps_y, na_y);
		frame_free_dict(camps_a, nc_a);
		frame_free_dict(camps_y, nc_y);
	}
	registry_close(reg);
	test_pipeline_free(p);
}

/* A user-day callback that stops at the third day. */
static int stop_at_third(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
			 int64_t purchases)
{
	int *seen = ctx;

	(void)uid;
	(void)day;
	(void)revenue;
	(void)events;
	(void)purchases;
	return ++*seen == 3 ? LTV_EINVAL : 0;
}

static void test_user_data_keeps_copies(void **state)
{
	struct user_data ud;
	struct user_table owned;
	const struct user_table *t = NULL;
	struct ltv_err err;
	const size_t camp_len = 3 << 20; /* longer than a text block */
	char id[32], *camp = xmalloc(camp_len);
	int64_t when = 0;
	int seen = 0;

	(void)state;
	user_data_init(&ud);
	memset(camp, 'c', camp_len - 1);
	camp[camp_len - 1] = '\0';
	for (int i = 0; i < 3000; i++) {
		struct user_row u = { i + 1, id, "app", i == 7 ? camp : "short", 1000 + i, i % 3 ? 0.5 : NAN,
				      i % 2 ? "{\"country\":\"gb\"}" : NULL };

		snprintf(id, sizeof(id), "user-%d", i);
		user_data_add_user(&ud, &u);
	}
	snprintf(id, sizeof(id), "overwritten");
	memset(camp, 'x', 10);
	ud.days = xmalloc(4 * sizeof(*ud.days));
	for (int i = 0; i < 4; i++)
		ud.days[i] = (struct user_day_row){ 1, i, 1.0, 1, 0 };
	ud.n_days = 4;
	{
		const struct data_source ms = data_source_memory(&ud);

		assert_int_equal(data_source_users(&ms, &owned, &t, &err), 0);
		assert_ptr_equal(t, &ud.users); /* borrowed, not copied */
		assert_int_equal(data_source_max_event_time(&ms, &when, &err), LTV_ENOTFOUND);
		assert_int_equal(data_source_user_days_each(&ms, stop_at_third, &seen, &err), LTV_EINVAL);
		assert_int_equal(seen, 3);
		/* a day of no user is an error, never dropped */
		ud.days[2].uid = 3001;
		seen = 0;
		assert_int_equal(data_source_users_and_days(&ms, 1, &owned, &t, stop_at_third, &seen,
							    &err), LTV_EINTERNAL);
		assert_string_equal(err.msg, "a user-day of uid 3001 (day 2) is not one of the 3000 "
				    "users in memory");
		assert_int_equal(seen, 2);
	}
	assert_int_equal(t->n, 3000);
	assert_string_equal(t->user_id[0], "user-0");
	assert_string_equal(t->user_id[2999], "user-2999");
	assert_int_equal(t->uid[2999], 3000);
	assert_int_equal(strlen(t->campaign[7]), camp_len - 1);
	assert_int_equal(t->campaign[7][0], 'c');
	assert_string_equal(t->campaign[8], "short");
	assert_null(t->attributes_json[0]);
	assert_string_equal(t->attributes_json[1], "{\"country\":\"gb\"}");
	assert_true(isnan(t->cost[0]));
	assert_true(t->cost[1] == 0.5);
	assert_int_equal(t->install_time[42], 1042);
	/* shared values are kept once; user ids, each its own, are not shared */
	assert_ptr_equal(t->campaign[8], t->campaign[2999]);
	assert_ptr_equal(t->app_id[0], t->app_id[2999]);
	assert_ptr_equal(t->attributes_json[1], t->attributes_json[2999]);
	assert_true(t->user_id[0] != t->user_id[1]);
	user_data_release(&ud);
	free(camp);
	assert_int_equal(ud.users.n, 0);
	assert_int_equal(ud.n_days, 0);
}

/*
 * user_data_reserve sizes the table once; a smaller reserve keeps it; users
 * past the reserve grow it again, every value kept. Then
 * user_data_release_frame_columns frees only the columns a frame reads.
 */
static void test_user_data_reserve(void **state)
{
	struct user_data ud;
	char id[32];

	(void)state;
	user_data_init(&ud);
	user_data_reserve(&ud, 2500);
	assert_int_equal(ud.cap_users, 2500);
	user_data_reserve(&ud, 10);
	assert_int_equal(ud.cap_users, 2500);
	for (int i = 0; i < 2600; i++) {
		struct user_row u = { i + 1, id, "app", "camp", 1000 + i, 0.5, NULL };

		snprintf(id, sizeof(id), "user-%d", i);
		user_data_add_user(&ud, &u);
		if (i == 2499)
			assert_int_equal(ud.cap_users, 2500);
	}
	assert_int_equal(ud.cap_users, 5000);
	assert_int_equal(ud.users.n, 2600);
	assert_string_equal(ud.users.user_id[0], "user-0");
	assert_string_equal(ud.users.user_id[2599], "user-2599");
	assert_int_equal(ud.users.install_time[2499], 3499);
	assert_int_equal(ud.users.uid[2599], 2600);
	/* score, once its frame is built: the frame's columns go, ids and install times stay */
	user_data_release_frame_columns(&ud);
	assert_null(ud.users.app_id);
	assert_null(ud.users.campaign);
	assert_null(ud.users.cost);
	assert_null(ud.users.attributes_json);
	assert_int_equal(ud.users.n, 2600);
	assert_string_equal(ud.users.user_id[1234], "user-1234");
	assert_int_equal(ud.users.install_time[1234], 2234);
	assert_int_equal(ud.users.uid[1234], 1235);
	user_data_release(&ud);
}

/*
 * Values that meet in one slot of the shared-text cache, or change from
 * user to user, still read back as each user's own; the user-days can be
 * released alone (score, once its frame is built).
 */
static void test_user_data_shared_text(void **state)
{
	struct user_data ud;
	char campaign[32], attrs[64];

	(void)state;
	user_data_init(&ud);
	for (int i = 0; i < 20000; i++) {
		struct user_row u = { i + 1, "id", "app", campaign, i, 1.0, attrs };

		snprintf(campaign, sizeof(campaign), "campaign-%d", i % 3000);
		snprintf(attrs, sizeof(attrs), "{\"n\":%d}", i);
		user_data_add_user(&ud, &u);
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(campaign, sizeof(campaign), "campaign-%d", i % 3000);
		snprintf(attrs, sizeof(attrs), "{\"n\":%d}", i);
		assert_string_equal(ud.users.campaign[i], campaign);
		assert_string_equal(ud.users.attributes_json[i], attrs);
	}
	ud.days = xmalloc(2 * sizeof(*ud.days));
	ud.n_days = 2;
	user_data_release_days(&ud);
	assert_null(ud.days);
	assert_int_equal(ud.n_days, 0);
	assert_int_equal(ud.users.n, 20000);
	user_data_release(&ud);
}

/* A registry's day of uid 601, past its 600 users: user_data_load fails naming it, not keeping it. */
static void load_refuses_day_of_no_user(const char *path)
{
	const struct user_day_row stray[] = { { 601, 0, 1.0, 1, 0 } };
	struct registry *reg = NULL;
	struct user_data ud;
	struct ltv_err err;
	char *want = xasprintf("registry '%s': table user_day_blocks holds a user-day of uid 601 "
			       "(day 0) but table users has 600 users, uids 1 to 600", path);

	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_user_days_add(reg, stray, 1, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	assert_int_equal(user_data_load(reg, INT64_MIN, &ud, &err), LTV_EREGISTRY);
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("'%s'", err.msg);
	assert_int_equal(ud.users.n, 0);
	registry_close(reg);
	free(want);
}

/*
 * user_data_load from an install time on (monitor's read): every user, the
 * latest event, and of the user-days exactly those of the users installed
 * at or after it, in the full read's order.
 */
static void test_load_installed_since(void **state)
{
	struct test_pipeline *p = test_pipeline_new(600, 13, "1");
	struct registry *reg = NULL;
	struct user_data all, some;
	struct ltv_err err;
	int64_t since;
	size_t j = 0, n_kept_users = 0;

	(void)state;
	test_run_to(&p->cfg, "ingest");
	if (registry_open_readonly(p->cfg.registry.path, &reg, &err) != 0)
		fail_msg("registry_open_readonly: %s", err.msg);
	load_into_memory(reg, &all);
	since = all.users.install_time[all.users.n / 2];
	assert_int_equal(user_data_load(reg, since, &some, &err), 0);
	assert_int_equal(some.users.n, all.users.n);
	assert_true(some.max_event_time == all.max_event_time);
	for (size_t u = 0; u < all.users.n; u++)
		n_kept_users += all.users.install_time[u] >= since;
	assert_true(n_kept_users > 0 && n_kept_users < all.users.n);
	for (size_t i = 0; i < all.n_days; i++) {
		const struct user_day_row *d = &all.days[i];

		if (all.users.install_time[d->uid - 1] < since)
			continue;
		assert_true(j < some.n_days);
		assert_memory_equal(&some.days[j], d, sizeof(*d));
		j++;
	}
	assert_int_equal(j, some.n_days);
	assert_true(some.n_days > 0 && some.n_days < all.n_days);
	user_data_release(&all);
	user_data_release(&some);
	registry_close(reg);
	load_refuses_day_of_no_user(p->cfg.registry.path);
	test_pipeline_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_frame_is_the_registry_frame),
		cmocka_unit_test(test_user_days_bound),
		cmocka_unit_test(test_younger_than_is_a_subset),
		cmocka_unit_test(test_days_out_of_order_give_the_same_frame),
		cmocka_unit_test(test_user_data_keeps_copies),
		cmocka_unit_test(test_user_data_shared_text),
		cmocka_unit_test(test_user_data_reserve),
		cmocka_unit_test(test_load_installed_since),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
