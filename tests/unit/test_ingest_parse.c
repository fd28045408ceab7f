/*
 * Unit tests for ingest_parse.c without a registry: users handed to the
 * sink in order with their uids, user-days aggregated per (uid, day) in key
 * order from events ordered by time and out of order, rejects with line and
 * reason, refunds floored under negative_revenue: subtract, only the days of
 * users installed since a time (score's), and the helpers
 * the parse loop's speed rests on (csv_reader_peek_field, estimate_records,
 * strmap_reserve).
 */
#include "testutil.h"
#include "fixture.h"

#include "ltv/csvread.h"
#include "ltv/ingest_parse.h"
#include "ltv/mapped_block.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#include <math.h>

struct sink {
	int n;
	char ids[8][16];
	int64_t uids[8];
	size_t lines[8];
};

static int on_user(void *arg, const struct user_row *u, size_t line, struct ltv_err *err)
{
	struct sink *s = arg;

	(void)err;
	assert_true(s->n < 8);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", u->user_id);
	s->uids[s->n] = u->uid;
	s->lines[s->n] = line;
	s->n++;
	return 0;
}

static const char USERS[] =
	"user_id,app_id,campaign,install_time,cost\n"
	"a,app,c1,2025-01-01T00:00:00Z,1.5\n"
	"b,app,c1,not-a-time,2\n"
	"c,app,c2,2025-01-01T12:00:00Z,\n";

/* By time across users; a's last event is back on day 0 (out of order). */
static const char EVENTS[] =
	"user_id,event_time,revenue,event\n"
	"a,2025-01-01T01:00:00Z,2.50,purchase\n"
	"c,2025-01-01T13:00:00Z,0,session\n"
	"b,2025-01-01T14:00:00Z,1,purchase\n"
	"a,2025-01-02T01:00:00Z,1.25,purchase\n"
	"zz,2025-01-02T02:00:00Z,1,purchase\n"
	"c,2025-01-03T13:00:00Z,-0.5,refund\n"
	"a,2025-01-01T23:00:00Z,0,session\n";

struct run {
	char *dir;
	struct config cfg;
	struct sink sink;
	struct ingest_parse p;
	struct ltv_err err;
	struct user_day_row *rows;
	size_t n_rows;
	int64_t rows_read[2], rejected[2];
	size_t n_days_read;   /* finished aggregates once the files were read */
	int young_exact;      /* ingest_parse_young_exact then */
	char *rejects;        /* the rejects file's text then */
};

/* Ordered by user, then time: the aggregates come out in key order already. */
static const char EVENTS_BY_USER[] =
	"user_id,event_time,revenue,event\n"
	"a,2025-01-01T01:00:00Z,2.50,purchase\n"
	"a,2025-01-02T01:00:00Z,1.25,purchase\n"
	"c,2025-01-01T13:00:00Z,0,session\n"
	"c,2025-01-02T14:00:00Z,3,purchase\n";

static char *slurp(const char *path);

/*
 * Reads USERS and events_text, asking for young users only when young_span
 * is not 0 (ingest_parse_young_only); keeps the user-days of users installed
 * at or after since.
 */
static void run_parse_resolvers(struct run *r, const char *negative_revenue, const char *events_text,
				int64_t since, int64_t young_as_of, int64_t young_span, int resolvers)
{
	char *users, *events;

	memset(r, 0, sizeof(*r));
	r->dir = test_scratch_dir();
	users = test_write_file(r->dir, "users.csv", USERS);
	events = test_write_file(r->dir, "events.csv", events_text);
	/* two threads for an events file of a MB or more (parse_events_batched), as on 2 cores */
	test_config_init(&r->cfg, r->dir, "users.csv", "events.csv", "2");
	test_set(&r->cfg, "ingest.max_reject_rate=1");
	test_set(&r->cfg, "ingest.negative_revenue=%s", negative_revenue);
	ingest_parse_init(&r->p, &r->cfg, NULL, on_user, &r->sink);
	r->p.resolvers = resolvers;
	if (young_span)
		ingest_parse_young_only(&r->p, young_as_of, young_span);
	assert_int_equal(ingest_parse_open(&r->p, "test-run", &r->err), 0);
	assert_int_equal(ingest_parse_file(&r->p, users, INPUT_USERS, &r->rows_read[0],
					   &r->rejected[0], &r->err), 0);
	assert_int_equal(ingest_parse_file(&r->p, events, INPUT_EVENTS, &r->rows_read[1],
					   &r->rejected[1], &r->err), 0);
	r->n_days_read = r->p.n_days;
	r->young_exact = ingest_parse_young_exact(&r->p);
	fflush(r->p.rejects);
	r->rejects = slurp(r->p.rejects_path);
	/* without the scratch directory, to compare runs' rejects */
	for (char *at; (at = strstr(r->rejects, r->dir)) != NULL;)
		memmove(at, at + strlen(r->dir), strlen(at + strlen(r->dir)) + 1);
	ingest_parse_user_days(&r->p, since, &r->rows, &r->n_rows);
	free(users);
	free(events);
}

/* run_parse_resolvers with one resolve worker, as ingest has. */
static void run_parse_young(struct run *r, const char *negative_revenue, const char *events_text,
			    int64_t since, int64_t young_as_of, int64_t young_span)
{
	run_parse_resolvers(r, negative_revenue, events_text, since, young_as_of, young_span, 1);
}

/* Reads USERS and events_text; keeps the user-days of users installed at or after since. */
static void run_parse_since(struct run *r, const char *negative_revenue, const char *events_text,
			    int64_t since)
{
	run_parse_young(r, negative_revenue, events_text, since, INT64_MIN, 0);
}

static void run_parse(struct run *r, const char *negative_revenue)
{
	run_parse_since(r, negative_revenue, EVENTS, INT64_MIN);
}

static void run_release(struct run *r)
{
	ingest_parse_release(&r->p);
	free(r->rows);
	free(r->rejects);
	config_release(&r->cfg);
	test_scratch_free(r->dir);
}

/* The whole text of a small file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = xcalloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void expect_row(const struct user_day_row *row, int64_t uid, int64_t day, double revenue,
		       int64_t events, int64_t purchases)
{
	assert_int_equal(row->uid, uid);
	assert_int_equal(row->day, day);
	assert_true(fabs(row->revenue - revenue) < 1e-12);
	assert_int_equal(row->events, events);
	assert_int_equal(row->purchases, purchases);
}

static void test_users_days_and_rejects(void **state)
{
	struct run r;
	char *path, *text;

	(void)state;
	run_parse(&r, "reject");
	/* b's install time is bad: a and c are users 1 and 2, from lines 2 and 4. */
	assert_int_equal(r.sink.n, 2);
	assert_string_equal(r.sink.ids[0], "a");
	assert_string_equal(r.sink.ids[1], "c");
	assert_int_equal(r.sink.uids[0], 1);
	assert_int_equal(r.sink.uids[1], 2);
	assert_int_equal(r.sink.lines[1], 4);
	assert_int_equal(r.rows_read[0], 3);
	assert_int_equal(r.rejected[0], 1);
	/* b's event (a rejected user), zz (unknown) and c's refund are rejected. */
	assert_int_equal(r.rows_read[1], 7);
	assert_int_equal(r.rejected[1], 3);
	assert_int_equal(r.p.events_loaded, 4);
	/* a's day-0 events (one came after day 1) merged into one row, in key order. */
	assert_int_equal(r.n_rows, 3);
	expect_row(&r.rows[0], 1, 0, 2.5, 2, 1);
	expect_row(&r.rows[1], 1, 1, 1.25, 1, 1);
	expect_row(&r.rows[2], 2, 0, 0, 1, 0);
	assert_int_equal(r.p.max_event_time, 1735779600); /* 2025-01-02T01:00:00Z */
	/* The rejects file is complete once closed; it is kept, since rows were rejected. */
	path = xstrdup(r.p.rejects_path);
	ingest_parse_release(&r.p);
	text = slurp(path);
	assert_non_null(strstr(text, "users.csv,3,install_time,'not-a-time' is not an ISO 8601"));
	assert_non_null(strstr(text, "events.csv,4,user_id,user 'b' was rejected in the users file"));
	assert_non_null(strstr(text, "events.csv,6,user_id,unknown user 'zz'"));
	assert_non_null(strstr(text, "events.csv,7,revenue,'-0.5' is negative"));
	free(text);
	free(path);
	run_release(&r);
}

static void test_refund_floored(void **state)
{
	struct run r;

	(void)state;
	run_parse(&r, "subtract");
	assert_int_equal(r.rejected[1], 2);
	assert_int_equal(r.n_rows, 4);
	/* c's day 2 holds only a refund: floored at 0, not a paying day. */
	expect_row(&r.rows[3], 2, 2, 0, 1, 0);
	assert_int_equal(r.p.refunds, 1);
	assert_int_equal(r.p.days_floored, 1);
	run_release(&r);
}

/*
 * Revenues of zero in their written forms (parse_amount's zero skips the
 * division): +0.0, no purchase, and the day's sum is the other rows' alone.
 */
static void test_zero_amounts(void **state)
{
	static const char zeros[] =
		"user_id,event_time,revenue,event\n"
		"a,2025-01-01T01:00:00Z,0.00,session\n"
		"a,2025-01-01T02:00:00Z,00.0,session\n"
		"a,2025-01-01T03:00:00Z,0.,session\n"
		"a,2025-01-02T01:00:00Z,0.000,session\n"
		"a,2025-01-02T02:00:00Z,0.25,purchase\n";
	struct run r;

	(void)state;
	run_parse_since(&r, "reject", zeros, INT64_MIN);
	assert_int_equal(r.p.events_loaded, 5);
	assert_int_equal(r.n_rows, 2);
	expect_row(&r.rows[0], 1, 0, 0, 3, 0);
	assert_false(signbit(r.rows[0].revenue));
	expect_row(&r.rows[1], 1, 1, 0.25, 2, 1);
	assert_true(r.rows[1].revenue == 0.25);
	run_release(&r);
}

/*
 * installed_since (score keeps only the days of users younger than its
 * longest horizon): a, installed before c, loses its rows, in files ordered
 * by time and by user; c's rows are as without it.
 */
static void test_days_installed_since(void **state)
{
	const int64_t c_install = 1735732800; /* 2025-01-01T12:00:00Z */
	struct run r;

	(void)state;
	run_parse_since(&r, "reject", EVENTS, c_install);
	assert_int_equal(r.n_rows, 1);
	expect_row(&r.rows[0], 2, 0, 0, 1, 0);
	assert_int_equal(r.p.max_event_time, 1735779600); /* a's events still count */
	run_release(&r);
	run_parse_since(&r, "reject", EVENTS_BY_USER, c_install);
	assert_int_equal(r.n_rows, 2);
	expect_row(&r.rows[0], 2, 0, 0, 1, 0);
	expect_row(&r.rows[1], 2, 1, 3, 1, 1);
	run_release(&r);
	/* one second later than c's install: nobody */
	run_parse_since(&r, "reject", EVENTS_BY_USER, c_install + 1);
	assert_int_equal(r.n_rows, 0);
	run_release(&r);
	run_parse_since(&r, "reject", EVENTS_BY_USER, INT64_MIN);
	assert_int_equal(r.n_rows, 4);
	expect_row(&r.rows[0], 1, 0, 2.5, 1, 1);
	expect_row(&r.rows[3], 2, 1, 3, 1, 1);
	run_release(&r);
}

/*
 * ingest_parse_young_only, as score asks for the days of users younger than
 * its longest horizon: the rows, counts, rejects and latest time are those of
 * the plain read with installed_since, in files by time and by user, whether
 * as_of is given or is the data's latest time (found at the file's end, so
 * a's events are not aggregated at all: no finished aggregate).
 */
static void test_young_only(void **state)
{
	const int64_t c_install = 1735732800; /* 2025-01-01T12:00:00Z */
	const char *texts[2] = { EVENTS, EVENTS_BY_USER };

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct run plain, young, given;
		int64_t span;

		run_parse_since(&plain, "reject", texts[k], c_install);
		span = plain.p.max_event_time - c_install;
		run_parse_young(&young, "reject", texts[k], c_install, INT64_MIN, span);
		run_parse_young(&given, "reject", texts[k], c_install, plain.p.max_event_time, span);
		/* a's finished aggregates are not made; by user, c's day 0 is */
		assert_int_equal(plain.n_days_read, 2);
		assert_int_equal(young.n_days_read, (size_t)k);
		assert_int_equal(given.n_days_read, (size_t)k);
		for (int g = 0; g < 2; g++) {
			const struct run *y = g ? &given : &young;

			assert_int_equal(y->young_exact, 1);
			assert_int_equal(y->n_rows, plain.n_rows);
			assert_memory_equal(y->rows, plain.rows, plain.n_rows * sizeof(*plain.rows));
			assert_int_equal(y->p.max_event_time, plain.p.max_event_time);
			assert_int_equal(y->p.events_loaded, plain.p.events_loaded);
			assert_int_equal(y->p.events_rejected, plain.p.events_rejected);
			assert_int_equal(y->rejected[1], plain.rejected[1]);
			assert_string_equal(y->rejects, plain.rejects);
		}
		run_release(&plain);
		run_release(&young);
		run_release(&given);
	}
}

/*
 * test_young_only on an events file of 2.4 MB, which is read on two threads
 * besides its read-ahead, in batches (parse_events_batched): the old user's
 * events, left out of the batches where they would change nothing, still
 * count as loaded, its refunds are still counted in file order, and the
 * rows, rejects and latest time are the plain read's.
 */
/* b read as a did: the same rows, latest time, counts, refunds and rejects. */
static void assert_same_parse(const struct run *b, const struct run *a)
{
	assert_int_equal(b->n_rows, a->n_rows);
	assert_memory_equal(b->rows, a->rows, a->n_rows * sizeof(*a->rows));
	assert_int_equal(b->p.max_event_time, a->p.max_event_time);
	assert_int_equal(b->p.events_loaded, a->p.events_loaded);
	assert_int_equal(b->p.events_rejected, a->p.events_rejected);
	assert_int_equal(b->p.refunds, a->p.refunds);
	assert_true(b->p.refunded == a->p.refunded);
	assert_string_equal(b->rejects, a->rejects);
}

/*
 * An events file of 2.4 MB from c's install on, a row a minute: read in
 * batches (parse_events_batched). Refunds, purchases, sessions and the
 * unknown user zz's rejects come mixed; the caller frees it.
 */
static char *batched_events(int64_t from)
{
	const size_t n = 60000, size = n * 48 + 64;
	char *text = xmalloc(size), *p = text;

	p += snprintf(p, size, "user_id,event_time,revenue,event\n");
	for (size_t i = 0; i < n; i++) {
		char when[32];

		time_format_iso8601(from + (int64_t)i * 60, when, sizeof(when));
		p += snprintf(p, size - (size_t)(p - text), "%s,%s,%s,e\n",
			      i % 1000 == 999 ? "zz" : i % 2 ? "a" : "c", when,
			      i % 7 == 0 ? "-0.25" : i % 5 == 0 ? "1.5" : "0");
	}
	return text;
}

static void test_young_only_batched(void **state)
{
	const int64_t c_install = 1735732800; /* 2025-01-01T12:00:00Z */
	char *text = batched_events(c_install);
	struct run plain, young;
	int64_t span;

	(void)state;
	run_parse_since(&plain, "subtract", text, c_install);
	span = plain.p.max_event_time - c_install;
	run_parse_young(&young, "subtract", text, c_install, INT64_MIN, span);
	assert_true(plain.p.refunds > 0);
	assert_true(plain.p.events_rejected > 0);
	assert_int_equal(young.young_exact, 1);
	assert_same_parse(&young, &plain);
	run_release(&plain);
	run_release(&young);
	free(text);
}

/*
 * Two resolve workers (score's) take the batches in turn; applied in file
 * order, they give one worker's rows, sums, counts and rejects, with and
 * without young_only.
 */
static void test_two_resolvers(void **state)
{
	const int64_t c_install = 1735732800; /* 2025-01-01T12:00:00Z */
	char *text = batched_events(c_install);

	(void)state;
	for (int young = 0; young < 2; young++) {
		const int64_t span = young ? 59999 * 60 : 0; /* back to c_install from the last row */
		struct run one, two;

		run_parse_resolvers(&one, "subtract", text, c_install, INT64_MIN, span, 1);
		run_parse_resolvers(&two, "subtract", text, c_install, INT64_MIN, span, 2);
		assert_true(one.p.refunds > 0);
		assert_true(one.p.events_rejected > 0);
		assert_true(one.n_rows > 2);
		assert_int_equal(two.n_days_read, one.n_days_read);
		assert_same_parse(&two, &one);
		assert_non_null(strstr(one.p.first_reject, "/events.csv:"));
		assert_string_equal(strstr(two.p.first_reject, "/events.csv:"),
				    strstr(one.p.first_reject, "/events.csv:"));
		run_release(&one);
		run_release(&two);
	}
	free(text);
}

/*
 * A line at the file's end that is not a row: a quoted field holds it. The
 * end gives a later time than any row has, so young_only would have skipped
 * a's events; ingest_parse_young_exact says so, for the caller to read again.
 */
static void test_young_fooled_by_a_quote(void **state)
{
	static const char quoted[] =
		"user_id,event_time,revenue,event\n"
		"a,2025-01-01T01:00:00Z,2.50,\"note\n"
		"c,2025-03-01T00:00:00Z,0,x\n"
		"b\"\n";
	struct run r;

	(void)state;
	run_parse_young(&r, "reject", quoted, INT64_MIN, INT64_MIN, 86400);
	assert_int_equal(r.p.max_event_time, 1735693200); /* a's row, 2025-01-01T01:00:00Z */
	assert_int_equal(r.young_exact, 0);
	run_release(&r);
	/* without the quote, the same line is a row: the guess holds */
	run_parse_young(&r, "reject", "user_id,event_time,revenue,event\n"
			"a,2025-01-01T01:00:00Z,2.50,note\n"
			"c,2025-03-01T00:00:00Z,0,x\n", 1740787200 - 86400, INT64_MIN, 86400);
	assert_int_equal(r.young_exact, 1);
	assert_int_equal(r.p.max_event_time, 1740787200); /* 2025-03-01T00:00:00Z */
	assert_int_equal(r.n_days_read, 0);
	assert_int_equal(r.n_rows, 0); /* both users installed more than a day before */
	run_release(&r);
}

/* Users of test_grouping_halves; every 4th has an event back on its day 0, every 7th none. */
#define MANY_USERS 3000

static double many_revenue(int i)
{
	return (i % 5) * 0.25;
}

/*
 * Reads n_users users' events by time (every 4th with an event back on its
 * day 0, every 7th with none), on jobs threads, and groups their user-days:
 * into *out_rows (the caller frees it), or into *out_block when that is not
 * NULL (ingest's block from the id map's pages).
 */
static size_t parse_users(int n_users, int jobs, struct user_day_row **out_rows,
			  struct mapped_block *out_block)
{
	char *dir = test_scratch_dir(), *users, *events, *path_u, *path_e;
	size_t len_u, len_e, n;
	FILE *fu = open_memstream(&users, &len_u), *fe = open_memstream(&events, &len_e);
	struct config cfg;
	struct ingest_parse p;
	struct ltv_err err = { 0 };
	int64_t rows, rejected;

	fputs("user_id,app_id,campaign,install_time,cost\n", fu);
	fputs("user_id,event_time,revenue,event\n", fe);
	for (int i = 0; i < n_users; i++)
		fprintf(fu, "u%d,app,c1,2025-01-01T00:00:00Z,1\n", i);
	for (int d = 0; d < 3; d++)
		for (int i = 0; i < n_users; i++)
			if (i % 7 != 3)
				fprintf(fe, "u%d,2025-01-0%dT%02d:00:00Z,%.2f,x\n", i, d + 1, 1 + i % 20,
					many_revenue(i));
	for (int i = 0; i < n_users; i += 4)
		if (i % 7 != 3)
			fprintf(fe, "u%d,2025-01-01T23:00:00Z,0.50,x\n", i);
	fclose(fu);
	fclose(fe);
	path_u = test_write_file(dir, "users.csv", users);
	path_e = test_write_file(dir, "events.csv", events);
	test_config_init(&cfg, dir, "users.csv", "events.csv", NULL);
	test_set(&cfg, "run.jobs=%d", jobs);
	ingest_parse_init(&p, &cfg, NULL, NULL, NULL);
	assert_int_equal(ingest_parse_open(&p, "test-run", &err), 0);
	assert_int_equal(ingest_parse_file(&p, path_u, INPUT_USERS, &rows, &rejected, &err), 0);
	assert_int_equal(ingest_parse_file(&p, path_e, INPUT_EVENTS, &rows, &rejected, &err), 0);
	assert_int_equal(rejected, 0);
	if (out_block)
		ingest_parse_user_days_mapped(&p, NULL, 0, out_block, &n);
	else
		ingest_parse_user_days(&p, INT64_MIN, out_rows, &n);
	ingest_parse_release(&p);
	config_release(&cfg);
	free(users);
	free(events);
	free(path_u);
	free(path_e);
	test_scratch_free(dir);
	return n;
}

static size_t parse_many(int jobs, struct user_day_row **out_rows)
{
	return parse_users(MANY_USERS, jobs, out_rows, NULL);
}

/*
 * Grouping the user-days as two halves of the users (on two threads with
 * run.jobs 2, one after the other with 1): every user's days in key order,
 * a day's events that came out of order merged into one row in either half,
 * and the second half's rows moved up behind the first's merged ones.
 */
static void test_grouping_halves(void **state)
{
	(void)state;
	for (int jobs = 1; jobs <= 2; jobs++) {
		struct user_day_row *rows;
		const size_t n = parse_many(jobs, &rows);
		size_t k = 0;

		for (int i = 0; i < MANY_USERS; i++) {
			const double r = many_revenue(i);
			const int back = i % 4 == 0;

			if (i % 7 == 3)
				continue;
			assert_true(k + 3 <= n);
			expect_row(&rows[k++], i + 1, 0, r + 0.5 * back, 1 + back, (r > 0) + back);
			expect_row(&rows[k++], i + 1, 1, r, 1, r > 0);
			expect_row(&rows[k++], i + 1, 2, r, 1, r > 0);
		}
		assert_int_equal(k, n);
		free(rows);
	}
}

/*
 * Ingest's rows in a block made from the id map's table: 150,000 users make
 * a table of its own mapping (over 4 MB), whose pages begin the block
 * (fresh_from > 0), and the rows are byte for byte those of
 * ingest_parse_user_days, whose block is fresh: one or two threads.
 */
static void test_grouping_in_id_map_pages(void **state)
{
	const int n_users = 150000;

	(void)state;
	for (int jobs = 1; jobs <= 2; jobs++) {
		struct user_day_row *rows;
		struct mapped_block block;
		const size_t n = parse_users(n_users, jobs, &rows, NULL);

		assert_int_equal(parse_users(n_users, jobs, NULL, &block), n);
		assert_true(block.fresh_from > 0);
		assert_true(block.len >= n * sizeof(*rows));
		assert_memory_equal(block.p, rows, n * sizeof(*rows));
		mapped_block_release(&block);
		free(rows);
	}
}

/* The reader's look-ahead sees the rows csv_reader_next will return, and only those. */
static void test_peek_and_estimate(void **state)
{
	char *dir = test_scratch_dir();
	char *path = test_write_file(dir, "e.csv", EVENTS);
	struct ltv_err err = { 0 };
	struct csv_reader *r = csv_reader_open(path, &err);
	char **f;
	size_t n, line;

	(void)state;
	assert_non_null(r);
	assert_null(csv_reader_peek_field(r, 1, 0)); /* nothing returned yet */
	assert_int_equal(csv_reader_next(r, &f, &n, &line, &err), 1); /* header */
	/* The whole small file was read with the header: 8 records, exactly. */
	assert_int_equal(csv_reader_estimate_records(r), 8);
	assert_string_equal(csv_reader_peek_field(r, 1, 0), "a");
	assert_string_equal(csv_reader_peek_field(r, 6, 3), "refund");
	assert_null(csv_reader_peek_field(r, 6, 4)); /* no such field */
	assert_null(csv_reader_peek_field(r, 8, 0)); /* past the end */
	assert_int_equal(csv_reader_next(r, &f, &n, &line, &err), 1);
	assert_string_equal(csv_reader_peek_field(r, 1, 0), "c");
	assert_string_equal(csv_reader_peek_field(r, 0, 0), "a"); /* the row just returned */
	csv_reader_free(r);
	free(path);
	test_scratch_free(dir);
}

/* A reserved map takes its keys without growing, and finds them all. */
static void test_strmap_reserve(void **state)
{
	struct strmap m;
	char key[32];
	size_t cap;
	int64_t v;

	(void)state;
	strmap_init_payload(&m, 32);
	strmap_reserve(&m, 5000);
	cap = m.cap;
	assert_true(cap >= 2 * 5001);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "user-%d-with-a-long-id", i);
		strmap_prefetch(&m, key);
		assert_int_equal(strmap_put_payload(&m, key, i + 1, NULL), 0);
	}
	assert_int_equal(m.cap, cap);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "user-%d-with-a-long-id", i);
		assert_true(strmap_get(&m, key, &v));
		assert_int_equal(v, i + 1);
	}
	assert_false(strmap_get(&m, "user-5000-with-a-long-id", &v));
	strmap_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_users_days_and_rejects),
		cmocka_unit_test(test_refund_floored),
		cmocka_unit_test(test_days_installed_since),
		cmocka_unit_test(test_zero_amounts),
		cmocka_unit_test(test_young_only),
		cmocka_unit_test(test_young_fooled_by_a_quote),
		cmocka_unit_test(test_grouping_halves),
		cmocka_unit_test(test_grouping_in_id_map_pages),
		cmocka_unit_test(test_young_only_batched),
		cmocka_unit_test(test_two_resolvers),
		cmocka_unit_test(test_peek_and_estimate),
		cmocka_unit_test(test_strmap_reserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
