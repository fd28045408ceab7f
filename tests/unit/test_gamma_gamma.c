/*
 * Known-answer tests for the Gamma-Gamma spend model on the CDNOW sample as
 * in Fader & Hardie's note "The Gamma-Gamma model of monetary value" (2013):
 * the 946 customers with at least one repeat transaction by 1997-09-30,
 * same-day purchases merged by summing their value, m_x the mean value of
 * the repeat transactions (the first purchase left out). Published fit:
 * p = 6.25, q = 3.74, gamma = 15.44.
 */
#include "testutil.h"

#include <math.h>

#include "ltv/gamma_gamma.h"

#include "cdnow.h"

/* Customers with x >= 1 repeat transactions in calibration. */
struct cdnow {
	size_t n;
	double *x, *m_x;
};

static struct cdnow cdnow_data;

/* Per-customer (x, m_x) for repeat buyers; NULL when the data set is not installed. */
static const struct cdnow *cdnow(void)
{
	const struct cdnow_customers *all = cdnow_customers();
	struct cdnow *c = &cdnow_data;

	if (!all || c->x)
		return all ? c : NULL;
	c->x = xmalloc(all->n * sizeof(double));
	c->m_x = xmalloc(all->n * sizeof(double));
	for (size_t i = 0; i < all->n; i++) {
		if (all->x[i] > 0) {
			c->x[c->n] = all->x[i];
			c->m_x[c->n] = all->m_x[i];
			c->n++;
		}
	}
	return c;
}

static struct gamma_gamma_data cdnow_as_data(const struct cdnow *c)
{
	struct gamma_gamma_data d = { c->n, c->x, c->m_x, NULL };

	return d;
}

static struct gamma_gamma_model published(void)
{
	struct gamma_gamma_model m = { 6.25, 3.74, 15.44, 0, 0, 0 };

	return m;
}

static void test_param_check(void **state)
{
	struct gamma_gamma_param param;

	(void)state;
	gamma_gamma_param_init(&param);
	assert_null(gamma_gamma_param_check(&param));
	param.max_iter = -1;
	assert_non_null(gamma_gamma_param_check(&param));
	gamma_gamma_param_init(&param);
	param.grad_tol = NAN;
	assert_non_null(gamma_gamma_param_check(&param));
}

static void test_data_check(void **state)
{
	double x[2] = { 1, 3 }, m_x[2] = { 10, 20 };
	struct gamma_gamma_data d = { 2, x, m_x, NULL };
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(gamma_gamma_data_check(&d, &err), 0);
	x[0] = 0;
	assert_int_equal(gamma_gamma_data_check(&d, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 0"));
	x[0] = 1;
	m_x[1] = 0;
	assert_int_equal(gamma_gamma_data_check(&d, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1"));
	assert_non_null(strstr(err.msg, "m_x"));
}

static void test_cdnow_summary(void **state)
{
	const struct cdnow *c = cdnow();
	double total_x = 0;

	(void)state;
	if (!c)
		skip();
	assert_int_equal(c->n, 946);
	for (size_t i = 0; i < c->n; i++)
		total_x += c->x[i];
	/* Every repeat transaction in calibration belongs to one of the 946. */
	assert_double_near(total_x, 2457, 0);
	/* masterid 4: repeats on 1997-01-18 ($29.73) and 1997-08-02 ($14.96). */
	assert_double_near(c->x[0], 2, 0);
	assert_double_near(c->m_x[0], (29.73 + 14.96) / 2, 1e-12);
}

static void test_fit_cdnow(void **state)
{
	const struct cdnow *c = cdnow();
	const struct gamma_gamma_model pub = published();
	struct gamma_gamma_param param;
	struct gamma_gamma_model *m = NULL;
	struct gamma_gamma_data d;
	struct ltv_err err = { 0 };
	double ll = 0, ll_pub = 0;

	(void)state;
	if (!c)
		skip();
	d = cdnow_as_data(c);
	gamma_gamma_param_init(&param);
	if (gamma_gamma_fit(&param, &d, &m, &err) < 0)
		fail_msg("%s", err.msg);
	print_message("gamma_gamma fit: p=%.17g q=%.17g gamma=%.17g LL=%.17g iter=%u\n",
		      m->p, m->q, m->gamma, m->log_lik, m->n_iter);
	/* Published to 2 decimals: the fit must round to the same digits. */
	assert_double_near(m->p, 6.25, 0.005);
	assert_double_near(m->q, 3.74, 0.005);
	assert_double_near(m->gamma, 15.44, 0.005);
	assert_double_near(m->n_customers, 946, 0);
	assert_int_equal(gamma_gamma_log_lik(m, &d, &ll, &err), 0);
	assert_double_near(ll, m->log_lik, 1e-9 * fabs(ll));
	/* The optimum beats the rounded published parameters, but only just. */
	assert_int_equal(gamma_gamma_log_lik(&pub, &d, &ll_pub, &err), 0);
	assert_true(ll >= ll_pub);
	assert_true(ll - ll_pub < 0.05);
	gamma_gamma_free(m);
}

/* A large sample drawn from the model gives its parameters back. */
static void test_fit_recovers_simulated(void **state)
{
	enum { N = 20000 };
	const double p = 3.0, q = 5.0, gamma = 40.0;
	struct gamma_gamma_param param;
	struct gamma_gamma_model *m = NULL;
	struct ltv_err err = { 0 };
	double *x = xmalloc(N * sizeof(double)), *m_x = xmalloc(N * sizeof(double));
	struct gamma_gamma_data d = { N, x, m_x, NULL };
	uint64_t seed = 42;

	(void)state;
	/*
	 * Gamma(shape k, rate 1) for whole k as a sum of exponentials; the
	 * shapes used (p x, q) are whole here, which keeps the sampler tiny.
	 */
	for (size_t i = 0; i < N; i++) {
		double nu = 0, sum = 0;

		x[i] = 1 + (double)(i % 4);
		for (int k = 0; k < (int)q; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			nu -= log(((double)(seed >> 11) + 0.5) / 9007199254740992.0);
		}
		nu /= gamma; /* nu ~ Gamma(q, rate gamma) */
		for (int k = 0; k < (int)(p * x[i]); k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			sum -= log(((double)(seed >> 11) + 0.5) / 9007199254740992.0);
		}
		m_x[i] = sum / nu / x[i]; /* sum of x Gamma(p, nu) values, averaged */
	}
	gamma_gamma_param_init(&param);
	if (gamma_gamma_fit(&param, &d, &m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_double_near(m->p, p, 0.1 * p);
	assert_double_near(m->q, q, 0.1 * q);
	assert_double_near(m->gamma, gamma, 0.15 * gamma);
	/* The population mean p gamma / (q - 1) is far better pinned than its parts. */
	assert_double_near(m->p * m->gamma / (m->q - 1), p * gamma / (q - 1), 0.03 * p * gamma / (q - 1));
	gamma_gamma_free(m);
	free(x);
	free(m_x);
}

static void test_expected_spend(void **state)
{
	const struct gamma_gamma_model m = published();
	struct ltv_err err = { 0 };
	double e = 0;

	(void)state;
	/* (gamma + m_x x) p / (p x + q - 1) by hand */
	assert_int_equal(gamma_gamma_expected_spend(&m, 2, 22.345, &e, &err), 0);
	assert_double_near(e, (15.44 + 44.69) * 6.25 / (12.5 + 2.74), 1e-12);
	/* no transactions: the population mean p gamma / (q - 1) */
	assert_int_equal(gamma_gamma_expected_spend(&m, 0, 123, &e, &err), 0);
	assert_double_near(e, 6.25 * 15.44 / 2.74, 1e-12);
	/* Shrinkage: the estimate lies between m_x and the population mean... */
	assert_int_equal(gamma_gamma_expected_spend(&m, 1, 100, &e, &err), 0);
	assert_true(e < 100 && e > 6.25 * 15.44 / 2.74);
	/* ...and moves towards m_x as x grows. */
	{
		double e50 = 0;

		assert_int_equal(gamma_gamma_expected_spend(&m, 50, 100, &e50, &err), 0);
		assert_true(e50 > e && e50 < 100);
	}
	assert_int_equal(gamma_gamma_expected_spend(&m, 1.5, 10, &e, &err), LTV_EINVAL);
	assert_int_equal(gamma_gamma_expected_spend(&m, 1, -1, &e, &err), LTV_EINVAL);
	{
		struct gamma_gamma_model heavy = m;

		heavy.q = 0.9; /* infinite population mean */
		assert_int_equal(gamma_gamma_expected_spend(&heavy, 0, 0, &e, &err), LTV_EMODEL);
		assert_int_equal(gamma_gamma_expected_spend(&heavy, 1, 10, &e, &err), 0);
	}
}

static void test_predict(void **state)
{
	double x[3] = { 0, 1, 4 }, m_x[3] = { 0, 30, 12.5 }, out[3];
	struct gamma_gamma_data d = { 3, x, m_x, NULL };
	const struct gamma_gamma_model m = published();
	struct ltv_err err = { 0 };

	(void)state;
	assert_int_equal(gamma_gamma_predict(&m, &d, out, &err), 0);
	for (size_t i = 0; i < 3; i++) {
		double one = 0;

		assert_int_equal(gamma_gamma_expected_spend(&m, x[i], m_x[i], &one, &err), 0);
		assert_double_near(out[i], one, 0);
	}
	x[2] = -1;
	assert_int_equal(gamma_gamma_predict(&m, &d, out, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 2"));
}

static void test_save_load(void **state)
{
	const struct gamma_gamma_model m = { 6.2484589, 3.74432, 15.44112, -4055.9, 946, 31 };
	struct gamma_gamma_model *back = NULL;
	struct ltv_err err = { 0 };
	uint8_t *blob = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(gamma_gamma_save(&m, &blob, &len, &err), 0);
	assert_int_equal(gamma_gamma_load(blob, len, &back, &err), 0);
	assert_memory_equal(&back->p, &m.p, sizeof(double));
	assert_memory_equal(&back->q, &m.q, sizeof(double));
	assert_memory_equal(&back->gamma, &m.gamma, sizeof(double));
	assert_memory_equal(&back->log_lik, &m.log_lik, sizeof(double));
	assert_double_near(back->n_customers, 946, 0);
	assert_int_equal(back->n_iter, 31);
	gamma_gamma_free(back);
	back = NULL;

	assert_int_equal(gamma_gamma_load(blob, len - 3, &back, &err), LTV_EINVAL);
	assert_null(back);
	memcpy(blob, "LTVBGNB1", 8);
	assert_int_equal(gamma_gamma_load(blob, len, &back, &err), LTV_EINVAL);
	assert_null(back);
	free(blob);
	gamma_gamma_free(NULL);
}

static int teardown_data(void **state)
{
	(void)state;
	free(cdnow_data.x);
	free(cdnow_data.m_x);
	cdnow_release();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_param_check),
		cmocka_unit_test(test_data_check),
		cmocka_unit_test(test_cdnow_summary),
		cmocka_unit_test(test_fit_cdnow),
		cmocka_unit_test(test_fit_recovers_simulated),
		cmocka_unit_test(test_expected_spend),
		cmocka_unit_test(test_predict),
		cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_data);
}
