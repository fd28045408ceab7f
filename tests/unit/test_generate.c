/*
 * Tests of the synthetic data generator: exact headers and row counts,
 * byte-identical output for a seed, referential integrity and time order, and
 * the structure the models depend on (payer share, heavy tail, campaign
 * count, country/platform value contrasts, D0-D1 signal).
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"
#include "ltv/generate.h"

#define N_TEST_USERS 20000

static char *read_all(const char *path, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		ARRAY_GROW(buf, len + 65536, cap);
		got = fread(buf + len, 1, 65536, f);
		len += got;
	} while (got > 0);
	fclose(f);
	*out_len = len;
	return buf;
}

/* Removes a scratch directory and frees its path. */
static void scratch_done(char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

static char *path_in(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* Splits line in place at commas; returns the field count (no quoting in generated data). */
static int split(char *line, char **fields, int max)
{
	int n = 0;
	char *s = line;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max) {
		char *comma = strchr(s, ',');
		fields[n++] = s;
		if (!comma)
			break;
		*comma = '\0';
		s = comma + 1;
	}
	return n;
}

static void gen_order(const char *dir, uint64_t n, uint64_t seed, enum generate_order order,
		      struct generate_stats *st)
{
	struct generate_param p;
	struct ltv_err err = { 0 };

	generate_param_init(&p);
	p.n_users = n;
	p.seed = seed;
	p.order = order;
	int ret = generate_sample(&p, dir, st, &err);
	if (ret != 0)
		fail_msg("generate_sample: %s", err.msg);
}

static void gen(const char *dir, uint64_t n, uint64_t seed, struct generate_stats *st)
{
	gen_order(dir, n, seed, GENERATE_ORDER_USER, st);
}

/* What the checks below need from one run, read back from the files. */
struct sample {
	uint64_t n_users;
	char (*install)[21];
	char (*campaign)[64];
	char (*country)[4];
	char (*platform)[8];
	char (*app)[24];
	double *revenue;     /* all events */
	double *revenue_d1;  /* events before install + 2 days (string compare on dates is enough here) */
	int *sessions_d0;
	uint64_t n_events;
	char users_header[128];
	char events_header[128];
};

static uint64_t user_index(const char *id, uint64_t n)
{
	char *end;
	unsigned long long v;

	assert_true(id[0] == 'u');
	v = strtoull(id + 1, &end, 10);
	assert_true(*end == '\0');
	assert_true(v >= 1 && v <= n);
	return v - 1;
}

static int64_t iso_seconds(const char *s)
{
	struct tm tm = { 0 };

	assert_int_equal(strlen(s), 20);
	assert_true(s[10] == 'T' && s[19] == 'Z');
	assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return (int64_t)timegm(&tm);
}

static void sample_load(struct sample *sm, const char *dir, uint64_t n)
{
	char *up = path_in(dir, "users.csv"), *ep = path_in(dir, "events.csv");
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	char *fld[16];
	uint64_t rows = 0;

	memset(sm, 0, sizeof(*sm));
	sm->n_users = n;
	sm->install = xcalloc(n, sizeof(*sm->install));
	sm->campaign = xcalloc(n, sizeof(*sm->campaign));
	sm->country = xcalloc(n, sizeof(*sm->country));
	sm->platform = xcalloc(n, sizeof(*sm->platform));
	sm->app = xcalloc(n, sizeof(*sm->app));
	sm->revenue = xcalloc(n, sizeof(double));
	sm->revenue_d1 = xcalloc(n, sizeof(double));
	sm->sessions_d0 = xcalloc(n, sizeof(int));

	f = fopen(up, "r");
	assert_non_null(f);
	assert_true(getline(&line, &cap, f) > 0);
	snprintf(sm->users_header, sizeof(sm->users_header), "%s", line);
	while (getline(&line, &cap, f) > 0) {
		assert_int_equal(split(line, fld, 16), 7);
		uint64_t i = user_index(fld[0], n);
		assert_int_equal(i, rows); /* one row per user, in id order */
		assert_int_equal(strlen(fld[3]), 20);
		snprintf(sm->install[i], sizeof(sm->install[i]), "%s", fld[3]);
		snprintf(sm->campaign[i], sizeof(sm->campaign[i]), "%s", fld[2]);
		snprintf(sm->app[i], sizeof(sm->app[i]), "%s", fld[1]);
		snprintf(sm->country[i], sizeof(sm->country[i]), "%s", fld[5]);
		snprintf(sm->platform[i], sizeof(sm->platform[i]), "%s", fld[6]);
		if (fld[4][0]) {
			double cost;
			assert_int_equal(parse_double(fld[4], &cost), 0);
			assert_true(cost > 0 && cost < 50);
		}
		rows++;
	}
	assert_int_equal(rows, n);
	fclose(f);

	f = fopen(ep, "r");
	assert_non_null(f);
	assert_true(getline(&line, &cap, f) > 0);
	snprintf(sm->events_header, sizeof(sm->events_header), "%s", line);
	uint64_t prev = 0;
	char prev_time[21] = "";
	while (getline(&line, &cap, f) > 0) {
		double rev;
		assert_int_equal(split(line, fld, 16), 4);
		uint64_t i = user_index(fld[0], n);
		assert_int_equal(strlen(fld[1]), 20);
		/* sorted by user, then time; never before install */
		assert_true(i >= prev);
		if (i == prev && sm->n_events)
			assert_true(strcmp(fld[1], prev_time) >= 0);
		assert_true(strcmp(fld[1], sm->install[i]) >= 0);
		prev = i;
		memcpy(prev_time, fld[1], 21);
		assert_int_equal(parse_double(fld[2], &rev), 0);
		assert_true(rev >= 0);
		assert_non_null(strchr(fld[2], '.'));
		assert_int_equal(strlen(strchr(fld[2], '.')), 3);
		if (rev > 0)
			assert_true(!strcmp(fld[3], "purchase") || !strcmp(fld[3], "subscription_renewal"));
		else
			assert_true(!strcmp(fld[3], "session") || !strcmp(fld[3], "level_up") ||
				    !strcmp(fld[3], "tutorial_complete"));
		sm->revenue[i] += rev;
		int64_t age = iso_seconds(fld[1]) - iso_seconds(sm->install[i]);
		assert_true(age >= 0);
		if (age < 2 * 86400)
			sm->revenue_d1[i] += rev;
		if (age < 86400 && !strcmp(fld[3], "session"))
			sm->sessions_d0[i]++;
		sm->n_events++;
	}
	fclose(f);
	free(line);
	free(up);
	free(ep);
}

static void sample_free(struct sample *sm)
{
	free(sm->install);
	free(sm->campaign);
	free(sm->country);
	free(sm->platform);
	free(sm->app);
	free(sm->revenue);
	free(sm->revenue_d1);
	free(sm->sessions_d0);
}

static int cmp_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x < y) - (x > y);
}

static void test_param_check(void **state)
{
	struct generate_param p;
	struct ltv_err err = { 0 };

	(void)state;
	generate_param_init(&p);
	assert_null(generate_param_check(&p));
	assert_int_equal(p.n_users, 20000);
	assert_int_equal(p.seed, 42);
	p.n_users = 0;
	assert_non_null(generate_param_check(&p));
	generate_param_init(&p);
	p.start_date = "2025-02-30";
	assert_non_null(generate_param_check(&p));
	p.start_date = "2025-1-01";
	assert_non_null(generate_param_check(&p));
	p.start_date = NULL;
	assert_non_null(generate_param_check(&p));
	generate_param_init(&p);
	p.span_days = 0;
	assert_non_null(generate_param_check(&p));
	generate_param_init(&p);
	p.follow_days = -1;
	assert_non_null(generate_param_check(&p));
	generate_param_init(&p);
	p.n_campaigns = 3;
	assert_non_null(generate_param_check(&p));
	assert_int_equal(generate_sample(&p, "/nonexistent-ignored", NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "n_campaigns"));
}

static void test_deterministic(void **state)
{
	char *d1 = test_scratch_dir(), *d2 = test_scratch_dir(), *d3 = test_scratch_dir();
	const char *names[] = { "users.csv", "events.csv" };
	struct generate_stats s1, s2;

	(void)state;
	gen(d1, 3000, 7, &s1);
	gen(d2, 3000, 7, &s2);
	gen(d3, 3000, 8, NULL);
	assert_int_equal(s1.n_events, s2.n_events);
	assert_true(s1.total_revenue == s2.total_revenue);
	for (int k = 0; k < 2; k++) {
		char *a = path_in(d1, names[k]), *b = path_in(d2, names[k]), *c = path_in(d3, names[k]);
		size_t la, lb, lc;
		char *ba = read_all(a, &la), *bb = read_all(b, &lb), *bc = read_all(c, &lc);

		assert_non_null(ba);
		assert_non_null(bb);
		assert_non_null(bc);
		assert_int_equal(la, lb);
		assert_memory_equal(ba, bb, la);
		assert_true(la != lc || memcmp(ba, bc, la) != 0);
		free(ba);
		free(bb);
		free(bc);
		free(a);
		free(b);
		free(c);
	}
	scratch_done(d1);
	scratch_done(d2);
	scratch_done(d3);
}

/* Temporary files are renamed away; a path that is a file fails cleanly. */
static void test_output_dir(void **state)
{
	char *dir = test_scratch_dir();
	char *nested = xasprintf("%s/a/b", dir);
	char *file = test_write_file(dir, "plain", "x");
	struct generate_param p;
	struct ltv_err err = { 0 };
	struct stat st;

	(void)state;
	generate_param_init(&p);
	p.n_users = 50;
	assert_int_equal(generate_sample(&p, nested, NULL, &err), 0);
	char *u = path_in(nested, "users.csv");
	assert_int_equal(stat(u, &st), 0);
	free(u);
	char *cmd = xasprintf("test $(ls -A '%s' | wc -l) -eq 2", nested);
	assert_int_equal(system(cmd), 0);
	free(cmd);

	assert_int_equal(generate_sample(&p, file, NULL, &err), LTV_EIO);
	assert_non_null(strstr(err.msg, "plain"));
	free(file);
	free(nested);
	scratch_done(dir);
}

static void test_structure(void **state)
{
	char *dir = test_scratch_dir();
	struct generate_stats st;
	struct sample sm;
	const uint64_t n = N_TEST_USERS;
	double total = 0, us_ios = 0, br_and = 0;
	uint64_t payers = 0, n_us_ios = 0, n_br_and = 0, late_payers = 0;
	char (*names)[64] = xcalloc(n, sizeof(*names));
	int n_names = 0;

	(void)state;
	gen(dir, n, 42, &st);
	sample_load(&sm, dir, n);

	assert_string_equal(sm.users_header,
			    "user_id,app_id,campaign,install_time,cost,country,platform\n");
	assert_string_equal(sm.events_header, "user_id,event_time,revenue,event\n");
	assert_int_equal(st.n_users, n);
	assert_int_equal(st.n_events, sm.n_events);
	assert_int_equal(st.n_apps, 4);
	/* ~5-15 events per user */
	assert_true(sm.n_events > 5 * n && sm.n_events < 15 * n);

	for (uint64_t i = 0; i < n; i++) {
		total += sm.revenue[i];
		payers += sm.revenue[i] > 0;
		late_payers += sm.revenue[i] > 0 && sm.revenue_d1[i] == 0;
		if (!strcmp(sm.country[i], "us") && !strcmp(sm.platform[i], "ios")) {
			us_ios += sm.revenue[i];
			n_us_ios++;
		} else if (!strcmp(sm.country[i], "br") && !strcmp(sm.platform[i], "android")) {
			br_and += sm.revenue[i];
			n_br_and++;
		}
		int seen = 0;
		for (int k = n_names - 1; k >= 0 && !seen; k--)
			seen = !strcmp(names[k], sm.campaign[i]);
		if (!seen)
			memcpy(names[n_names++], sm.campaign[i], 64);
	}
	assert_int_equal(payers, st.n_payers);
	assert_double_near(total, st.total_revenue, 0.01 * (double)n);
	/* payer share 1-10%; a real share of payers first pays after D1 */
	assert_true(payers > n / 100 && payers < n / 10);
	assert_true(late_payers > payers / 5);
	/* campaigns: dozens, names network_country_platform_... */
	assert_int_equal(n_names, st.n_campaigns);
	assert_true(n_names >= 40 && n_names <= 80);
	for (int k = 0; k < n_names; k++)
		assert_true(strstr(names[k], "_ios_") || strstr(names[k], "_android_"));

	/* heavy tail: the top 1% of users hold more than 30% of revenue */
	double *sorted = xmalloc(n * sizeof(double));
	memcpy(sorted, sm.revenue, n * sizeof(double));
	qsort(sorted, n, sizeof(double), cmp_desc);
	double top = 0;
	for (uint64_t i = 0; i < n / 100; i++)
		top += sorted[i];
	assert_true(top > 0.3 * total);
	free(sorted);

	/* value differs by market as designed */
	assert_true(n_us_ios > 200 && n_br_and > 200);
	assert_true(us_ios / (double)n_us_ios > 2.0 * br_and / (double)n_br_and);

	/* early behaviour predicts value: users with 3+ D0 sessions are worth more */
	double hi = 0, lo = 0;
	uint64_t n_hi = 0, n_lo = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (sm.sessions_d0[i] >= 3) {
			hi += sm.revenue[i] - sm.revenue_d1[i];
			n_hi++;
		} else {
			lo += sm.revenue[i] - sm.revenue_d1[i];
			n_lo++;
		}
	}
	assert_true(n_hi > 100 && n_lo > 100);
	assert_true(hi / (double)n_hi > 1.5 * lo / (double)n_lo);

	free(names);
	sample_free(&sm);
	scratch_done(dir);
}

/* Splits a buffer into its lines (in place); returns them, count in *out_n. */
static char **lines_of(char *buf, size_t len, size_t *out_n)
{
	char **v = NULL;
	size_t n = 0, cap = 0, start = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] = '\0';
		ARRAY_GROW(v, n + 1, cap);
		v[n++] = buf + start;
		start = i + 1;
	}
	assert_int_equal(start, len); /* every line ends with a newline */
	*out_n = n;
	return v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * --order time: the same users.csv bytes, the same multiset of event rows,
 * ordered by time across users (users interleave), byte-identical for a seed.
 */
static void test_order_time(void **state)
{
	char *du = test_scratch_dir(), *dt = test_scratch_dir(), *dt2 = test_scratch_dir();
	struct generate_stats su, st, st2;
	const uint64_t n = 3000;

	(void)state;
	gen_order(du, n, 7, GENERATE_ORDER_USER, &su);
	gen_order(dt, n, 7, GENERATE_ORDER_TIME, &st);
	gen_order(dt2, n, 7, GENERATE_ORDER_TIME, &st2);
	assert_int_equal(su.n_events, st.n_events);
	assert_int_equal(su.n_payers, st.n_payers);
	assert_true(su.total_revenue == st.total_revenue);

	char *uu = path_in(du, "users.csv"), *ut = path_in(dt, "users.csv");
	char *eu = path_in(du, "events.csv"), *et = path_in(dt, "events.csv");
	char *et2 = path_in(dt2, "events.csv");
	size_t luu, lut, leu, let, let2, nu, nt;
	char *buu = read_all(uu, &luu), *but = read_all(ut, &lut);
	char *beu = read_all(eu, &leu), *bet = read_all(et, &let), *bet2 = read_all(et2, &let2);

	assert_non_null(buu);
	assert_non_null(but);
	assert_non_null(beu);
	assert_non_null(bet);
	assert_non_null(bet2);
	assert_int_equal(luu, lut);
	assert_memory_equal(buu, but, luu);
	assert_int_equal(let, let2);
	assert_memory_equal(bet, bet2, let);
	assert_int_equal(leu, let);
	assert_true(memcmp(beu, bet, leu) != 0);

	char **lu = lines_of(beu, leu, &nu), **lt = lines_of(bet, let, &nt);
	uint64_t user_changes = 0;

	assert_int_equal(nu, nt);
	assert_int_equal(nt, st.n_events + 1);
	assert_string_equal(lu[0], "user_id,event_time,revenue,event");
	assert_string_equal(lt[0], lu[0]);
	/* time order: event_time never decreases; consecutive rows mostly change user */
	for (size_t i = 2; i < nt; i++) {
		const char *a = strchr(lt[i - 1], ','), *b = strchr(lt[i], ',');

		assert_non_null(a);
		assert_non_null(b);
		assert_true(strncmp(a + 1, b + 1, 20) <= 0);
		user_changes += (size_t)(a - lt[i - 1]) != (size_t)(b - lt[i]) ||
				strncmp(lt[i - 1], lt[i], (size_t)(b - lt[i])) != 0;
	}
	assert_true(user_changes > st.n_events / 2);
	qsort(lu + 1, nu - 1, sizeof(char *), cmp_str);
	qsort(lt + 1, nt - 1, sizeof(char *), cmp_str);
	for (size_t i = 1; i < nt; i++)
		assert_string_equal(lu[i], lt[i]);

	free(lu);
	free(lt);
	free(buu);
	free(but);
	free(beu);
	free(bet);
	free(bet2);
	free(uu);
	free(ut);
	free(eu);
	free(et);
	free(et2);
	scratch_done(du);
	scratch_done(dt);
	scratch_done(dt2);
}

/*
 * The last start whose data fit four-digit years is accepted and writes year
 * 9999; a day later is refused before anything is written (it wrote 0000-
 * dates before).
 */
static void test_start_limit(void **state)
{
	char *dir = test_scratch_dir();
	struct generate_param p;
	struct ltv_err err = { 0 };

	(void)state;
	generate_param_init(&p);
	p.n_users = 50;
	p.start_date = "9999-12-31";
	assert_non_null(generate_param_check(&p));
	assert_int_equal(generate_sample(&p, dir, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "9999-12-31"));
	p.start_date = "9999-04-29"; /* 240 + 7 days of data end on 10000-01-01 */
	assert_non_null(generate_param_check(&p));
	p.follow_days = 6;
	assert_null(generate_param_check(&p));
	p.follow_days = 7;
	p.start_date = "9999-04-28";
	assert_null(generate_param_check(&p));
	for (int order = 0; order < 2; order++) {
		struct generate_stats st;
		size_t len;
		char *ev, *buf;

		p.order = order ? GENERATE_ORDER_TIME : GENERATE_ORDER_USER;
		assert_int_equal(generate_sample(&p, dir, &st, &err), 0);
		assert_string_equal(st.data_end, "9999-12-31T00:00:00Z");
		ev = path_in(dir, "events.csv");
		buf = read_all(ev, &len);
		assert_non_null(buf);
		buf = xrealloc(buf, len + 1);
		buf[len] = '\0';
		assert_non_null(strstr(buf, ",9999-0"));
		assert_null(strstr(buf, ",0000-"));
		assert_null(strstr(buf, ",10000-"));
		free(buf);
		free(ev);
	}
	scratch_done(dir);
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* Temporary files of killed runs go on the next run; a live run's and other files stay. */
static void test_stale_temps(void **state)
{
	char *dir = test_scratch_dir();
	const pid_t dead = dead_pid();
	char name[64];
	struct generate_param p;
	struct generate_stats st;
	struct ltv_err err = { 0 };
	const char *dead_kinds[] = { ".users.csv.tmp.", ".events.csv.tmp.", ".events.csv.spool." };
	const char *keep[] = { ".users.csv.tmp.1", ".users.csv.tmp.12x", "notes.txt" };

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%ld", dead_kinds[i], (long)dead);
		free(test_write_file(dir, name, "partial"));
	}
	for (int i = 0; i < 3; i++) /* pid 1 is always alive */
		free(test_write_file(dir, keep[i], "x"));
	generate_param_init(&p);
	p.n_users = 20;
	assert_int_equal(generate_sample(&p, dir, &st, &err), 0);
	assert_int_equal(st.stale_removed, 3);
	for (int i = 0; i < 3; i++) {
		char *path;

		snprintf(name, sizeof(name), "%s%ld", dead_kinds[i], (long)dead);
		path = path_in(dir, name);
		assert_int_equal(access(path, F_OK), -1);
		free(path);
		path = path_in(dir, keep[i]);
		assert_int_equal(access(path, F_OK), 0);
		free(path);
	}
	assert_int_equal(generate_sample(&p, dir, &st, &err), 0);
	assert_int_equal(st.stale_removed, 0);
	scratch_done(dir);
}

/* Exit codes of the disk-full child below: 0 ok, 77 cannot mount, else the failed check. */
#define CHILD_CHECK(cond, code)                                                         \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "disk-full check %d failed: %s (%s)\n", code, #cond, \
				err.msg);                                               \
			_exit(code);                                                    \
		}                                                                       \
	} while (0)

static int dir_entries(const char *dir)
{
	char *cmd = xasprintf("exit $(ls -A '%s' | wc -l)", dir);
	int rc = system(cmd);

	free(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void disk_full_child(const char *dir)
{
	struct generate_param p;
	struct ltv_err err = { 0 };

	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0)
		_exit(77);
	generate_param_init(&p);
	/* 20000 users cannot fit in 1 MB: refused before any work */
	p.n_users = 20000;
	CHILD_CHECK(generate_sample(&p, dir, NULL, &err) == LTV_EIO, 1);
	CHILD_CHECK(strstr(err.msg, "not enough space") && strstr(err.msg, "--out"), 2);
	CHILD_CHECK(dir_entries(dir) == 0, 3);
	/* 5000 users pass that check but fill the disk half way: said, and nothing left */
	for (int order = 0; order < 2; order++) {
		p.n_users = 5000;
		p.order = order ? GENERATE_ORDER_TIME : GENERATE_ORDER_USER;
		err.msg[0] = '\0';
		CHILD_CHECK(generate_sample(&p, dir, NULL, &err) == LTV_EIO, 4 + 3 * order);
		CHILD_CHECK(strstr(err.msg, "No space left on device") &&
			    strstr(err.msg, "free some space"), 5 + 3 * order);
		CHILD_CHECK(dir_entries(dir) == 0, 6 + 3 * order);
	}
	/* and a sample that fits still works there */
	p.n_users = 500;
	CHILD_CHECK(generate_sample(&p, dir, NULL, &err) == 0, 10);
	CHILD_CHECK(dir_entries(dir) == 2, 11);
	_exit(0);
}

/* A full disk, on a 1 MB tmpfs in a private mount namespace (needs root, else skipped). */
static void test_disk_full(void **state)
{
	char *dir = test_scratch_dir();
	pid_t pid;
	int status = 0;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		disk_full_child(dir);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	scratch_done(dir);
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_param_check),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_output_dir),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_order_time),
		cmocka_unit_test(test_start_limit),
		cmocka_unit_test(test_stale_temps),
		cmocka_unit_test(test_disk_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
