/*
 * Known-answer tests for the BG/NBD model on the CDNOW sample of Fader,
 * Hardie & Lee (2005): 2,357 customers, calibration to 1997-09-30, weeks as
 * the unit, same-day purchases merged. The published fit is r = 0.243,
 * alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4; the paper's example
 * customer (x = 2, t_x = 30.43, T = 38.86) expects 1.226 purchases in the
 * next 39 weeks. Time is days / 7 with T counted to 1997-09-30 itself (as in
 * Hardie's spreadsheet); counting to the end of that day gives LL -9589.9.
 */
#include "testutil.h"

#include <math.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_hyperg.h>

#include "ltv/bgnbd.h"

#include "cdnow.h"

static struct bgnbd_data cdnow_as_data(const struct cdnow_customers *c)
{
	struct bgnbd_data d = { c->n, c->x, c->t_x, c->T, NULL };

	return d;
}

static struct bgnbd_model published(void)
{
	struct bgnbd_model m = { 0.243, 4.414, 0.793, 2.426, 0, 0, 0 };

	return m;
}

static void test_param_check(void **state)
{
	struct bgnbd_param param;

	(void)state;
	bgnbd_param_init(&param);
	assert_null(bgnbd_param_check(&param));
	param.max_iter = 0;
	assert_non_null(bgnbd_param_check(&param));
	bgnbd_param_init(&param);
	param.grad_tol = 0;
	assert_non_null(bgnbd_param_check(&param));
	assert_non_null(bgnbd_param_check(NULL));
}

static void test_data_check(void **state)
{
	double x[2] = { 1, 0 }, t_x[2] = { 2, 0 }, T[2] = { 3, 1 }, w[2] = { 1, 2 };
	struct bgnbd_data d = { 2, x, t_x, T, w };
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(bgnbd_data_check(&d, &err), 0);
	x[0] = 1.5;
	assert_int_equal(bgnbd_data_check(&d, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 0"));
	x[0] = 1;
	t_x[0] = 4;
	assert_int_equal(bgnbd_data_check(&d, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "t_x"));
	t_x[0] = 2;
	w[1] = 0;
	assert_int_equal(bgnbd_data_check(&d, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
	d.n = 0;
	assert_int_equal(bgnbd_data_check(&d, &err), LTV_EINVAL);
}

/* The summaries the paper's numbers rest on. */
static void test_cdnow_summary(void **state)
{
	const struct cdnow_customers *c = cdnow_customers();
	double total_x = 0;

	(void)state;
	if (!c)
		skip();
	assert_int_equal(c->n, 2357);
	for (size_t i = 0; i < c->n; i++)
		total_x += c->x[i];
	assert_double_near(total_x, 2457, 0);
	/* masterid 4, first row of the file, is the paper's example customer. */
	assert_double_near(c->x[0], 2, 0);
	assert_double_near(c->t_x[0], 30.43, 0.005);
	assert_double_near(c->T[0], 38.86, 0.005);
}

static void test_log_lik_at_published(void **state)
{
	const struct cdnow_customers *c = cdnow_customers();
	const struct bgnbd_model m = published();
	struct bgnbd_data d;
	struct ltv_err err = { 0 };
	double ll = 0;

	(void)state;
	if (!c)
		skip();
	d = cdnow_as_data(c);
	assert_int_equal(bgnbd_log_lik(&m, &d, &ll, &err), 0);
	assert_double_near(ll, -9582.4, 0.05);
}

static void test_fit_cdnow(void **state)
{
	const struct cdnow_customers *c = cdnow_customers();
	struct bgnbd_param param;
	struct bgnbd_model *m = NULL;
	struct bgnbd_data d;
	struct ltv_err err = { 0 };
	double ll = 0;

	(void)state;
	if (!c)
		skip();
	d = cdnow_as_data(c);
	bgnbd_param_init(&param);
	if (bgnbd_fit(&param, &d, &m, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("bgnbd fit: r=%.17g alpha=%.17g a=%.17g b=%.17g LL=%.17g iter=%u\n",
		      m->r, m->alpha, m->a, m->b, m->log_lik, m->n_iter);
	/* Published to 3 decimals: the fit must round to the same digits. */
	assert_double_near(m->r, 0.243, 0.0005);
	assert_double_near(m->alpha, 4.414, 0.0005);
	assert_double_near(m->a, 0.793, 0.0005);
	assert_double_near(m->b, 2.426, 0.0005);
	assert_double_near(m->log_lik, -9582.4, 0.05);
	assert_double_near(m->n_customers, 2357, 0);
	assert_int_equal(bgnbd_log_lik(m, &d, &ll, &err), 0);
	assert_double_near(ll, m->log_lik, 1e-9 * fabs(ll));
	bgnbd_free(m);
}

static int cmp_triple(const void *pa, const void *pb)
{
	const double *a = pa, *b = pb;

	for (int k = 0; k < 3; k++)
		if (a[k] != b[k])
			return a[k] < b[k] ? -1 : 1;
	return 0;
}

/* Identical (x, t_x, T) rows collapsed into one weighted row give the same fit. */
static void test_fit_weights(void **state)
{
	const struct cdnow_customers *c = cdnow_customers();
	struct bgnbd_param param;
	struct bgnbd_model *flat = NULL, *agg = NULL;
	struct bgnbd_data d;
	struct ltv_err err = { 0 };
	double *triples, *x, *t_x, *T, *w;
	size_t n = 0;

	(void)state;
	if (!c)
		skip();
	triples = xmalloc(c->n * 3 * sizeof(double));
	for (size_t i = 0; i < c->n; i++) {
		triples[3 * i] = c->x[i];
		triples[3 * i + 1] = c->t_x[i];
		triples[3 * i + 2] = c->T[i];
	}
	qsort(triples, c->n, 3 * sizeof(double), cmp_triple);
	x = xmalloc(c->n * sizeof(double));
	t_x = xmalloc(c->n * sizeof(double));
	T = xmalloc(c->n * sizeof(double));
	w = xmalloc(c->n * sizeof(double));
	for (size_t i = 0; i < c->n; i++) {
		if (n > 0 && cmp_triple(&triples[3 * i], &triples[3 * (i - 1)]) == 0) {
			w[n - 1]++;
			continue;
		}
		x[n] = triples[3 * i];
		t_x[n] = triples[3 * i + 1];
		T[n] = triples[3 * i + 2];
		w[n++] = 1;
	}
	assert_true(n < c->n / 2);

	bgnbd_param_init(&param);
	d = cdnow_as_data(c);
	if (bgnbd_fit(&param, &d, &flat, &err) < 0)
		fail_msg("%s", err.msg);
	d = (struct bgnbd_data){ n, x, t_x, T, w };
	if (bgnbd_fit(&param, &d, &agg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_double_near(agg->n_customers, 2357, 0);
	assert_double_near(agg->log_lik, flat->log_lik, 1e-6);
	assert_double_near(agg->r, flat->r, 1e-5);
	assert_double_near(agg->alpha, flat->alpha, 1e-4);
	assert_double_near(agg->a, flat->a, 1e-5);
	assert_double_near(agg->b, flat->b, 1e-4);
	bgnbd_free(flat);
	bgnbd_free(agg);
	free(triples);
	free(x);
	free(t_x);
	free(T);
	free(w);
}

static void test_expected_paper_customer(void **state)
{
	const struct bgnbd_model m = published();
	struct ltv_err err = { 0 };
	double e = 0;

	(void)state;
	assert_int_equal(bgnbd_expected(&m, 2, 30.43, 38.86, 39, &e, &err), 0);
	assert_double_near(e, 1.226, 0.0005);
	assert_int_equal(bgnbd_expected(&m, 2, 30.43, 38.86, 0, &e, &err), 0);
	assert_double_near(e, 0, 0);
	assert_int_equal(bgnbd_expected(&m, 2, 40, 38.86, 39, &e, &err), LTV_EINVAL);
	assert_int_equal(bgnbd_expected(&m, 2, 30, 38.86, -1, &e, &err), LTV_EINVAL);
}

/* Eq. (10) straight from the paper with GSL's 2F1, valid for moderate z. */
static double expected_direct(const struct bgnbd_model *m, double x, double t_x, double T,
			      double t)
{
	const double z = t / (m->alpha + T + t);
	const double f = gsl_sf_hyperg_2F1(m->r + x, m->b + x, m->a + m->b + x - 1, z);
	const double g = pow((m->alpha + T) / (m->alpha + T + t), m->r + x) * f;

	return (m->a + m->b + x - 1) / (m->a - 1) * (1 - g) * bgnbd_p_alive(m, x, t_x, T);
}

/* Both series (Euler-transformed or not) against GSL, and a = 1 continuity. */
static void test_expected_vs_gsl(void **state)
{
	struct bgnbd_model models[3] = { published(), published(), published() };
	const double cases[][4] = {
		{ 0, 0, 0, 39 }, { 0, 0, 20, 10 }, { 1, 3, 30, 52 },
		{ 5, 25, 38, 20 }, { 12, 36, 38.5, 39 }, { 3, 1, 50, 100 },
	};
	struct ltv_err err = { 0 };

	(void)state;
	models[1].a = 7.5; /* a > r + x + 1 for small x: the untransformed series */
	models[2].b = 0.4;
	models[2].r = 2.5;
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const double *c = cases[i];
			double e = 0, want = expected_direct(&models[k], c[0], c[1], c[2], c[3]);

			assert_int_equal(bgnbd_expected(&models[k], c[0], c[1], c[2], c[3], &e, &err), 0);
			assert_double_near(e, want, 1e-9 * fabs(want) + 1e-12);
		}

	/* a = 1 is a removable 0/0; the value must sit between its neighbours. */
	{
		struct bgnbd_model m = published();
		double lo = 0, mid = 0, hi = 0;

		m.a = 1 - 1e-3;
		assert_int_equal(bgnbd_expected(&m, 2, 20, 38, 39, &lo, &err), 0);
		m.a = 1;
		assert_int_equal(bgnbd_expected(&m, 2, 20, 38, 39, &mid, &err), 0);
		m.a = 1 + 1e-3;
		assert_int_equal(bgnbd_expected(&m, 2, 20, 38, 39, &hi, &err), 0);
		assert_true(isfinite(mid));
		assert_double_near(mid, 0.5 * (lo + hi), 1e-5);
	}
}

/* Long horizons (z near 1) still converge and grow with t. */
static void test_expected_long_horizon(void **state)
{
	const struct bgnbd_model m = published();
	struct ltv_err err = { 0 };
	double prev = 0;

	(void)state;
	for (double t = 10; t <= 1e5; t *= 10) {
		double e = 0;

		if (bgnbd_expected(&m, 0, 0, 1, t, &e, &err) < 0)
			fail_msg("%s", err.msg);
		assert_true(e > prev);
		prev = e;
	}
}

static void test_p_alive(void **state)
{
	const struct bgnbd_model m = published();
	const double p = bgnbd_p_alive(&m, 2, 30.43, 38.86);

	(void)state;
	assert_double_near(bgnbd_p_alive(&m, 0, 0, 38), 1.0, 0);
	assert_true(p > 0 && p < 1);
	/* by hand: 1 / (1 + a/(b+1) ((alpha+T)/(alpha+t_x))^(r+2)) */
	assert_double_near(p, 1 / (1 + 0.793 / 3.426 * pow(43.274 / 34.844, 2.243)), 1e-12);
	/* A purchase just now means alive as far as the model can tell... */
	assert_true(bgnbd_p_alive(&m, 2, 38.86, 38.86) > p);
	/* ...and a long silence makes death likelier. */
	assert_true(bgnbd_p_alive(&m, 2, 5, 38.86) < p);
	assert_true(bgnbd_p_alive(&m, 2, 5, 38.86) > 0);
}

static void test_p_any_purchase(void **state)
{
	const struct bgnbd_model m = published();
	const double p = bgnbd_p_any_purchase(&m, 2, 30.43, 38.86, 39);

	(void)state;
	/* by hand: P(alive) (1 - (43.274 / 82.274)^2.243) */
	assert_double_near(p, bgnbd_p_alive(&m, 2, 30.43, 38.86)
			      * (1 - pow(43.274 / 82.274, 2.243)), 1e-12);
	assert_double_near(bgnbd_p_any_purchase(&m, 0, 0, 10, 5), 1 - pow(14.414 / 19.414, 0.243),
			   1e-12);
	assert_double_near(bgnbd_p_any_purchase(&m, 2, 30.43, 38.86, 0), 0, 0);
	/* Grows with the window, never beyond P(alive). */
	assert_true(bgnbd_p_any_purchase(&m, 2, 30.43, 38.86, 52) > p);
	assert_true(bgnbd_p_any_purchase(&m, 2, 30.43, 38.86, 1e9)
		    <= bgnbd_p_alive(&m, 2, 30.43, 38.86));
	/* A 1e-9-week window: the probability is tiny but keeps its digits. */
	assert_double_near(bgnbd_p_any_purchase(&m, 0, 0, 10, 1e-9), 0.243 * 1e-9 / 14.414,
			   1e-6 * 0.243 * 1e-9 / 14.414);
}

/*
 * Monte Carlo check of P(alive), P(any purchase in (T, T+t]) and E[Y(t)]:
 * customers simulated from the published parameters over their calibration
 * age T and a further t = 39 weeks. Each formula is a conditional mean given
 * (x, t_x, T), so within any group of customers formed from those summaries
 * the simulated outcomes must average to the averaged formula. Groups: x = 0,
 * 1, 2, 3-5, 6+, each split at its median-ish recency ratio t_x / T = 0.5.
 * Tolerance 4.5 standard errors (fixed seed, so the test is deterministic).
 * A formula that drops P(alive) from P(any) is rejected by the same test.
 */
#define MC_CUSTOMERS 200000
#define MC_GROUPS 10

static int mc_group(double x, double t_x, double T)
{
	const int xg = x == 0 ? 0 : x == 1 ? 1 : x == 2 ? 2 : x <= 5 ? 3 : 4;

	return 2 * xg + (xg == 0 ? T > 32.5 : t_x > 0.5 * T);
}

static void test_monte_carlo(void **state)
{
	const struct bgnbd_model m = published();
	const double t = 39;
	gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
	double n[MC_GROUPS] = { 0 }, alive[MC_GROUPS] = { 0 }, pa[MC_GROUPS] = { 0 },
	       pa_var[MC_GROUPS] = { 0 }, any[MC_GROUPS] = { 0 }, pany[MC_GROUPS] = { 0 },
	       pany_var[MC_GROUPS] = { 0 }, naive[MC_GROUPS] = { 0 }, cnt[MC_GROUPS] = { 0 },
	       cnt2[MC_GROUPS] = { 0 }, expect[MC_GROUPS] = { 0 };
	struct ltv_err err = { 0 };
	int rejected = 0;

	(void)state;
	gsl_rng_set(rng, 20261201);
	for (int i = 0; i < MC_CUSTOMERS; i++) {
		const double T = 26 + 13 * gsl_rng_uniform(rng);
		const double lambda = gsl_ran_gamma(rng, m.r, 1 / m.alpha);
		const double p = gsl_ran_beta(rng, m.a, m.b);
		double now = 0, x = 0, t_x = 0, in_window = 0, e = 0, p_alive, p_any;
		int dead_at_T = 0, g;

		for (;;) {
			now += gsl_ran_exponential(rng, 1 / lambda);
			if (now > T + t)
				break;
			if (now <= T) {
				x++;
				t_x = now;
			} else {
				in_window++;
			}
			if (gsl_rng_uniform(rng) < p) {
				dead_at_T = now <= T;
				break;
			}
		}
		g = mc_group(x, t_x, T);
		p_alive = bgnbd_p_alive(&m, x, t_x, T);
		p_any = bgnbd_p_any_purchase(&m, x, t_x, T, t);
		assert_int_equal(bgnbd_expected(&m, x, t_x, T, t, &e, &err), 0);
		n[g]++;
		alive[g] += !dead_at_T;
		pa[g] += p_alive;
		pa_var[g] += p_alive * (1 - p_alive);
		any[g] += in_window > 0;
		pany[g] += p_any;
		pany_var[g] += p_any * (1 - p_any);
		naive[g] += -expm1((m.r + x) * log((m.alpha + T) / (m.alpha + T + t)));
		cnt[g] += in_window;
		cnt2[g] += in_window * in_window;
		expect[g] += e;
	}
	gsl_rng_free(rng);
	for (int g = 0; g < MC_GROUPS; g++) {
		const double cnt_sd = sqrt((cnt2[g] - cnt[g] * cnt[g] / n[g]) / (n[g] - 1));

		print_message("group %d: n %.0f alive %.0f/%.1f any %.0f/%.1f (naive %.1f) "
			      "count %.0f/%.1f\n", g, n[g], alive[g], pa[g], any[g], pany[g],
			      naive[g], cnt[g], expect[g]);
		assert_true(n[g] >= 500);
		if (g >= 2)
			assert_double_near(alive[g], pa[g], 4.5 * sqrt(pa_var[g]));
		else
			assert_double_near(alive[g], n[g], 0);
		assert_double_near(any[g], pany[g], 4.5 * sqrt(pany_var[g]));
		assert_double_near(cnt[g] / n[g], expect[g] / n[g], 4.5 * cnt_sd / sqrt(n[g]));
		if (fabs(any[g] - naive[g]) > 4.5 * sqrt(pany_var[g]))
			rejected++;
	}
	/* Every group with repeat buyers (x >= 1) tells the wrong formula apart. */
	assert_int_equal(rejected, MC_GROUPS - 2);
}

static void test_predict(void **state)
{
	double x[3] = { 0, 2, 5 }, t_x[3] = { 0, 30.43, 10 }, T[3] = { 20, 38.86, 38 };
	struct bgnbd_data d = { 3, x, t_x, T, NULL };
	const struct bgnbd_model m = published();
	struct ltv_err err = { 0 };
	double e[3], pa[3];

	(void)state;
	assert_int_equal(bgnbd_predict(&m, &d, 39, e, pa, &err), 0);
	for (size_t i = 0; i < 3; i++) {
		double one = 0;

		assert_int_equal(bgnbd_expected(&m, x[i], t_x[i], T[i], 39, &one, &err), 0);
		assert_double_near(e[i], one, 0);
		assert_double_near(pa[i], bgnbd_p_alive(&m, x[i], t_x[i], T[i]), 0);
	}
	assert_double_near(e[1], 1.226, 0.0005);
	t_x[2] = 40;
	assert_int_equal(bgnbd_predict(&m, &d, 39, e, NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 2"));
}

static void test_save_load(void **state)
{
	const struct bgnbd_model m = { 0.24270312345, 4.4135, 0.79291, 2.42588, -9582.43, 2357, 77 };
	struct bgnbd_model *back = NULL;
	struct ltv_err err = { 0 };
	uint8_t *blob = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(bgnbd_save(&m, &blob, &len, &err), 0);
	assert_int_equal(bgnbd_load(blob, len, &back, &err), 0);
	assert_memory_equal(&back->r, &m.r, sizeof(double));
	assert_memory_equal(&back->alpha, &m.alpha, sizeof(double));
	assert_memory_equal(&back->a, &m.a, sizeof(double));
	assert_memory_equal(&back->b, &m.b, sizeof(double));
	assert_memory_equal(&back->log_lik, &m.log_lik, sizeof(double));
	assert_double_near(back->n_customers, 2357, 0);
	assert_int_equal(back->n_iter, 77);
	bgnbd_free(back);
	back = NULL;

	assert_int_equal(bgnbd_load(blob, len - 1, &back, &err), LTV_EINVAL);
	assert_null(back);
	blob[0] = 'X';
	assert_int_equal(bgnbd_load(blob, len, &back, &err), LTV_EINVAL);
	assert_null(back);
	free(blob);
	bgnbd_free(NULL);
}

static int teardown_data(void **state)
{
	(void)state;
	cdnow_release();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_param_check),
		cmocka_unit_test(test_data_check),
		cmocka_unit_test(test_cdnow_summary),
		cmocka_unit_test(test_log_lik_at_published),
		cmocka_unit_test(test_fit_cdnow),
		cmocka_unit_test(test_fit_weights),
		cmocka_unit_test(test_expected_paper_customer),
		cmocka_unit_test(test_expected_vs_gsl),
		cmocka_unit_test(test_expected_long_horizon),
		cmocka_unit_test(test_p_alive),
		cmocka_unit_test(test_p_any_purchase),
		cmocka_unit_test(test_monte_carlo),
		cmocka_unit_test(test_predict),
		cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_data);
}
