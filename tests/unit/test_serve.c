/*
 * Unit tests for what ltvpipe serve is made of, below HTTP: the route table
 * (unique routes and names, well-formed paths and flags), jbuf's JSON and CSV
 * writers (known answers, exact round trip of doubles), serve_clip on UTF-8
 * boundaries, and the input checks every user goes through
 * (user_batch_set, user_batch_set_names) with the field named in the message.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/jbuf.h"
#include "ltv/predict_user.h"
#include "ltv/serve_internal.h"

static void test_route_table(void **state)
{
	(void)state;
	assert_true(serve_route_count > 0);
	assert_true(serve_route_count + 1 <= 32); /* metrics rows: one per route plus unmatched */
	for (size_t i = 0; i < serve_route_count; i++) {
		const struct route *r = &serve_routes[i];

		assert_true(r->path[0] == '/');
		assert_true(strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0);
		assert_non_null(r->fn);
		if (r->flags & ROUTE_PARAM)
			assert_true(r->path[strlen(r->path) - 1] == '/');
		if (r->flags & ROUTE_CSV)
			assert_true(r->flags & ROUTE_BODY);
		if (r->flags & ROUTE_BODY)
			assert_string_equal(r->method, "POST");
		for (size_t j = 0; j < i; j++) {
			assert_false(strcmp(r->name, serve_routes[j].name) == 0);
			assert_false(strcmp(r->method, serve_routes[j].method) == 0 &&
				     strcmp(r->path, serve_routes[j].path) == 0 &&
				     (r->flags & ROUTE_PARAM) == (serve_routes[j].flags & ROUTE_PARAM));
		}
	}
	for (int k = 1; k < SERVE_STATUS_COUNT; k++)
		assert_true(serve_statuses[k - 1] < serve_statuses[k]);
}

static const char *num(double v)
{
	static struct jbuf b;

	jbuf_release(&b);
	jbuf_init(&b);
	jbuf_json_num(&b, v);
	return b.p;
}

static void test_json_numbers(void **state)
{
	(void)state;
	assert_string_equal(num(1), "1");
	assert_string_equal(num(-0.0), "0");
	assert_string_equal(num(0.5), "0.5");
	assert_string_equal(num(0.1), "0.1");
	assert_string_equal(num(1.0 / 3), "0.33333333333333331");
	assert_string_equal(num(3e9), "3000000000");
	assert_string_equal(num(NAN), "null");
	assert_string_equal(num(INFINITY), "null");
	/* every double reads back exactly */
	for (int i = 0; i < 2000; i++) {
		double v = (double)(i * 7919 % 1000003) / 997.0 * pow(10, i % 40 - 20), back;

		assert_int_equal(parse_double(num(v), &back), 0);
		assert_true(back == v);
	}
}

static void test_json_strings_and_csv(void **state)
{
	struct jbuf b;

	(void)state;
	jbuf_init(&b);
	jbuf_json_str(&b, "a\"b\\c\n\x01%s");
	assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001%s\"");
	jbuf_release(&b);
	jbuf_init(&b);
	jbuf_csv_field(&b, "plain");
	jbuf_puts(&b, ",");
	jbuf_csv_field(&b, "a,\"b\"");
	assert_string_equal(b.p, "plain,\"a,\"\"b\"\"\"");
	jbuf_release(&b);
}

static void test_clip_keeps_characters_whole(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(serve_clip("a\xc3\xa9z", 2, buf, sizeof(buf)), "a");
	assert_string_equal(serve_clip("a\xc3\xa9z", 3, buf, sizeof(buf)), "a\xc3\xa9");
	assert_string_equal(serve_clip("short", 64, buf, sizeof(buf)), "short");
	assert_string_equal(serve_clip("0123456789abcdefXYZ", 64, buf, sizeof(buf)), "0123456789abcde");
}

static void test_user_checks(void **state)
{
	struct loaded_model m;
	struct user_batch b;
	struct ltv_err err = { 0 };
	char long_name[PREDICT_NAME_MAX + 2];

	(void)state;
	memset(&m, 0, sizeof(m));
	config_init_defaults(&m.cfg);
	/* what a model's features artefact built with the defaults carries */
	feature_params_from_config(&m.cfg, 0, &m.params);
	user_batch_init(&b, &m, 2);
	assert_int_equal(user_batch_set(&b, 0, "rev_window", 4.99, &err), 0);
	assert_true(frame_column(&b.d.frame, "rev_window")[0] == 4.99);
	assert_true(frame_column(&b.d.frame, "rev_window")[1] == 0);
	assert_int_equal(user_batch_set(&b, 1, "cost", -1, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "cost: -1 is negative"));
	assert_int_equal(user_batch_set(&b, 1, "rev_d0", NAN, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "rev_d0: not a finite number"));
	assert_int_equal(user_batch_set(&b, 1, "rev_d0", INFINITY, &err), LTV_EINVAL);
	assert_int_equal(user_batch_set(&b, 1, "purchase_days", 2.5, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "purchase_days: 2.5 is not a whole number"));
	assert_int_equal(user_batch_set(&b, 1, "purchase_days", 3, &err), 0);
	assert_int_equal(user_batch_set(&b, 1, "events_last7_share", 1.5, &err), LTV_EINVAL);
	assert_int_equal(user_batch_set(&b, 1, "events_last7_share", 0.25, &err), 0);
	assert_int_equal(user_batch_set(&b, 1, "ltv_30", 1, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "ltv_30: not a feature; use one of rev_window"));
	assert_int_equal(user_batch_set(&b, 1, "app_code", 1, &err), LTV_EINVAL);
	assert_int_equal(user_batch_set(&b, 1, "rev_window", 1e13, &err), LTV_EINVAL);
	assert_int_equal(user_batch_set_names(&b, 0, "", "c", &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "app: required"));
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(user_batch_set_names(&b, 0, "a", long_name, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "campaign:"));
	assert_int_equal(user_batch_set_names(&b, 0, "a", NULL, &err), 0);
	assert_string_equal(b.campaign[0], "");
	user_batch_release(&b);
	feature_params_release(&m.params);
	config_release(&m.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_json_numbers),
		cmocka_unit_test(test_json_strings_and_csv),
		cmocka_unit_test(test_clip_keeps_characters_whole),
		cmocka_unit_test(test_user_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
