/*
 * Unit tests for the columnar user-day blocks (src/user_day_block.c) and
 * their storage in the registry (registry_user_days_add / _each): an exact
 * round trip of every field, damaged blocks refused, and the reader's merge of
 * several blocks and of the rows older versions wrote to table user_days,
 * summing a (uid, day) stored twice as the old upsert did, and rows given
 * in a block whose pages SQLite takes for its record copy
 * (registry_user_days_add_block).
 */
#include "testutil.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "ltv/mapped_block.h"
#include "ltv/registry.h"
#include "ltv/user_day_block.h"

/* A deterministic pseudo-random sorted set of n rows. */
static struct user_day_row *make_rows(size_t n, uint64_t seed)
{
	struct user_day_row *v = xmalloc(n * sizeof(*v));
	int64_t uid = 0, day = 0;

	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		if (i == 0 || (seed >> 60) < 6) {
			/* a new user: gaps of 1, of thousands and near 2^40 */
			uid += (seed >> 59) == 0 ? ((int64_t)1 << 40) : 1 + (int64_t)((seed >> 33) % 3000);
			day = (int64_t)((seed >> 20) % 2000);
		} else {
			day += 1 + (int64_t)((seed >> 40) % 400);
		}
		v[i].uid = uid;
		v[i].day = day;
		v[i].events = (int64_t)((seed >> 10) % 5 == 0 ? (seed >> 8) : (seed >> 50) % 40);
		v[i].purchases = (int64_t)((seed >> 30) % 3);
		v[i].revenue = (seed >> 45) % 4 ? 0.0 : (double)(seed >> 12) / 3e12;
	}
	return v;
}

/* Decodes block and checks it holds rows[0..n) exactly; returns its length. */
static size_t expect_round_trip(const struct user_day_row *rows, size_t n)
{
	struct user_day_cursor c;
	struct ltv_err err = { 0 };
	size_t len, i = 0;
	uint8_t *block = user_day_block_encode(rows, n, &len);
	int r;

	assert_int_equal(user_day_cursor_open(&c, block, len, "test", &err), 0);
	while ((r = user_day_cursor_next(&c, &err)) == 1) {
		assert_true(i < n);
		assert_int_equal(c.row.uid, rows[i].uid);
		assert_int_equal(c.row.day, rows[i].day);
		assert_int_equal(c.row.events, rows[i].events);
		assert_int_equal(c.row.purchases, rows[i].purchases);
		assert_memory_equal(&c.row.revenue, &rows[i].revenue, sizeof(double));
		i++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(i, n);
	free(block);
	return len;
}

static void test_round_trip_exact(void **state)
{
	const size_t n = 20000;
	struct user_day_row *rows = make_rows(n, 42);

	(void)state;
	/* Much smaller than the 40 bytes of a struct per row. */
	assert_true(expect_round_trip(rows, n) < n * 20);
	free(rows);
}

/*
 * Blocks large enough to be encoded as two halves on two threads: the
 * second half's first row steps from the first half's last, a new user's
 * or the same user's next day, at an even and an odd row count.
 */
static void test_round_trip_halves(void **state)
{
	const size_t n = 200001;
	struct user_day_row *rows = make_rows(n, 9);

	(void)state;
	expect_round_trip(rows, n);
	expect_round_trip(rows, n - 1);
	/* the halves' boundary inside one user's run, then at a new user */
	rows[n / 2].uid = rows[n / 2 - 1].uid;
	rows[n / 2].day = rows[n / 2 - 1].day + 1;
	for (size_t i = n / 2 + 1; i < n; i++)
		rows[i].uid += rows[n / 2].uid + 1;
	expect_round_trip(rows, n);
	rows[n / 2].uid++;
	expect_round_trip(rows, n);
	free(rows);
}

static void test_damaged_refused(void **state)
{
	struct user_day_row *rows = make_rows(100, 7);
	struct user_day_cursor c;
	struct ltv_err err = { 0 };
	size_t len;
	uint8_t *block = user_day_block_encode(rows, 100, &len);
	int r = 0;

	(void)state;
	/* Cut short: the revenue column no longer matches the row count. */
	assert_int_equal(user_day_cursor_open(&c, block, len - 8, "cut", &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "cut"));
	/* Another magic. */
	block[0] ^= 1;
	assert_true(user_day_cursor_open(&c, block, len, "magic", &err) < 0);
	block[0] ^= 1;
	/* A uid section claiming more bytes than the block has. */
	block[20 + 7] = 0x7f;
	assert_int_equal(user_day_cursor_open(&c, block, len, "section", &err), LTV_EINVAL);
	block[20 + 7] = 0;
	/* A varint that never ends within its section. */
	assert_int_equal(user_day_cursor_open(&c, block, len, "ok", &err), 0);
	memset((uint8_t *)c.p[0], 0xff, (size_t)(c.end[0] - c.p[0]));
	while ((r = user_day_cursor_next(&c, &err)) == 1)
		;
	assert_int_equal(r, LTV_EINVAL);
	free(block);
	free(rows);
}

struct collected {
	struct user_day_row *v;
	size_t n, cap;
};

static int collect(void *ctx, int64_t uid, int64_t day, double revenue, int64_t events,
		   int64_t purchases)
{
	struct collected *c = ctx;

	ARRAY_GROW(c->v, c->n + 1, c->cap);
	c->v[c->n++] = (struct user_day_row){ uid, day, revenue, events, purchases };
	return 0;
}

static void test_registry_merges_blocks_and_legacy_rows(void **state)
{
	char *dir = test_scratch_dir();
	char *path = xasprintf("%s/registry.sqlite", dir);
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct collected got = { 0 };
	sqlite3 *db;
	/* A first ingest, then a second adding to user 2's day 5 and new days, out of order. */
	const struct user_day_row first[] = { { 1, 0, 1.5, 2, 1 }, { 2, 0, 0, 1, 0 }, { 2, 5, 2, 1, 1 } };
	const struct user_day_row second[] = { { 3, 1, 0, 4, 0 }, { 2, 5, 0.25, 3, 1 },
					       { 2, 3, 0, 1, 0 }, { 3, 1, 1, 1, 1 } };
	const struct user_day_row want[] = { { 1, 0, 1.5, 2, 1 }, { 2, 0, 0, 1, 0 },
					     { 2, 3, 0, 1, 0 }, { 2, 5, 2.25 + 4, 4 + 2, 2 + 1 },
					     { 3, 1, 1, 5, 1 }, { 4, 0, 9, 1, 1 } };

	(void)state;
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_user_days_add(reg, first, 3, &err), 0);
	assert_int_equal(registry_user_days_add(reg, second, 4, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	registry_close(reg);
	/* Rows as schema 7 wrote them, in the old table: merged with the blocks. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO users (uid, user_id, app_id, campaign,"
				      " install_time, artefact_id) VALUES (2, 'b', 'a', 'c', 0, 0),"
				      " (4, 'd', 'a', 'c', 0, 0);"
				      "INSERT INTO user_days VALUES (2, 5, 4, 2, 1), (4, 0, 9, 1, 1)",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_int_equal(registry_user_days_each(reg, collect, &got, &err), 0);
	registry_close(reg);
	assert_int_equal(got.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < got.n; i++) {
		assert_int_equal(got.v[i].uid, want[i].uid);
		assert_int_equal(got.v[i].day, want[i].day);
		assert_true(got.v[i].revenue == want[i].revenue);
		assert_int_equal(got.v[i].events, want[i].events);
		assert_int_equal(got.v[i].purchases, want[i].purchases);
	}
	free(got.v);
	free(path);
	test_scratch_free(dir);
}

static void test_registry_refuses_bad_rows(void **state)
{
	char *dir = test_scratch_dir();
	char *path = xasprintf("%s/registry.sqlite", dir);
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	const struct user_day_row bad[] = { { 1, -1, 0, 1, 0 } };
	/* Out of order first, out of range last: the one pass checks on past the order. */
	const struct user_day_row late[] = { { 3, 1, 0, 1, 0 }, { 2, 0, 0, 1, 0 }, { 4, 2, 0, 1, -1 } };

	(void)state;
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	assert_int_equal(registry_user_days_add(reg, bad, 1, &err), LTV_EINTERNAL);
	assert_non_null(strstr(err.msg, "day -1"));
	assert_int_equal(registry_user_days_add(reg, late, 3, &err), LTV_EINTERNAL);
	assert_non_null(strstr(err.msg, "uid 4, day 2"));
	registry_rollback(reg);
	registry_close(reg);
	free(path);
	test_scratch_free(dir);
}

/*
 * A batch large enough to be checked as two halves on two threads: the
 * first bad row is named whichever half it is in, and rows out of order
 * only across the halves' boundary are sorted, not taken as in order.
 */
static void test_registry_checks_halves(void **state)
{
	char *dir = test_scratch_dir();
	char *path = xasprintf("%s/registry.sqlite", dir);
	const size_t n = 100000;
	struct user_day_row *rows = xmalloc(n * sizeof(*rows)), kept;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };
	struct collected got = { 0 };

	(void)state;
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct user_day_row){ (int64_t)(i / 2) + 1, (int64_t)(i % 2), 1, 1, 0 };
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	assert_int_equal(registry_begin(reg, &err), 0);
	rows[n - 3].events = -1;
	assert_int_equal(registry_user_days_add(reg, rows, n, &err), LTV_EINTERNAL);
	assert_non_null(strstr(err.msg, "uid 49999, day 1"));
	rows[10].purchases = -1;
	assert_int_equal(registry_user_days_add(reg, rows, n, &err), LTV_EINTERNAL);
	assert_non_null(strstr(err.msg, "uid 6, day 0"));
	rows[10].purchases = 0;
	rows[n - 3].events = 1;
	kept = rows[n / 2 - 1];
	rows[n / 2 - 1] = rows[n / 2];
	rows[n / 2] = kept;
	assert_int_equal(registry_user_days_add(reg, rows, n, &err), 0);
	assert_int_equal(registry_commit(reg, &err), 0);
	registry_close(reg);
	assert_int_equal(registry_open_readonly(path, &reg, &err), 0);
	assert_int_equal(registry_user_days_each(reg, collect, &got, &err), 0);
	registry_close(reg);
	assert_int_equal(got.n, n);
	for (size_t i = 0; i < got.n; i++) {
		assert_int_equal(got.v[i].uid, (int64_t)(i / 2) + 1);
		assert_int_equal(got.v[i].day, (int64_t)(i % 2));
	}
	free(got.v);
	free(rows);
	free(path);
	test_scratch_free(dir);
}

/*
 * Rows in a mapped block: stored as registry_user_days_add stores them,
 * while SQLite's record copy of the block (3.6 MB, over the 1 MB a lent
 * block serves) takes the block's pages, which it frees; the block is
 * emptied. Rows out of order are sorted into a copy first, and then the
 * block is not lent: stored the same. Both read back exactly.
 */
static void test_registry_block_lends_its_pages(void **state)
{
	char *dir = test_scratch_dir();
	char *path = xasprintf("%s/registry.sqlite", dir);
	const size_t n = 300000;
	struct user_day_row *rows = make_rows(n, 7), *shuffled;
	struct registry *reg = NULL;
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(registry_open(path, 5, &reg, &err), 0);
	for (int in_order = 1; in_order >= 0; in_order--) {
		struct mapped_block b;
		struct collected got = { 0 };

		mapped_block_make(&b, NULL, 0, n * sizeof(*rows));
		memcpy(b.p, rows, n * sizeof(*rows));
		shuffled = b.p;
		if (!in_order) { /* the first and last rows swapped */
			shuffled[0] = rows[n - 1];
			shuffled[n - 1] = rows[0];
		}
		assert_int_equal(registry_begin(reg, &err), 0);
		assert_int_equal(registry_user_days_add_block(reg, &b, n, &err), 0);
		assert_null(b.p);
		assert_int_equal(registry_user_days_each(reg, collect, &got, &err), 0);
		registry_rollback(reg);
		assert_int_equal(got.n, n);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(got.v[i].uid, rows[i].uid);
			assert_int_equal(got.v[i].day, rows[i].day);
			assert_memory_equal(&got.v[i].revenue, &rows[i].revenue, sizeof(double));
			assert_int_equal(got.v[i].events, rows[i].events);
			assert_int_equal(got.v[i].purchases, rows[i].purchases);
		}
		free(got.v);
	}
	registry_close(reg);
	free(rows);
	free(path);
	test_scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_exact),
		cmocka_unit_test(test_round_trip_halves),
		cmocka_unit_test(test_damaged_refused),
		cmocka_unit_test(test_registry_merges_blocks_and_legacy_rows),
		cmocka_unit_test(test_registry_refuses_bad_rows),
		cmocka_unit_test(test_registry_checks_halves),
		cmocka_unit_test(test_registry_block_lends_its_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
