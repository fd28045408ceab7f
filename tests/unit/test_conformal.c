/*
 * Known answers for the split conformal bands (src/models/conformal.c):
 * buckets by prediction with their outcome quantiles, ties kept in one bucket
 * (the case that once ran past the last row), the group ratio band, and a
 * blob round trip.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "testutil.h"
#include "ltv/conformal.h"

/* 100 rows, p = i, y = i + 0.5: 4 buckets of 25; 80% band of y in each. */
static void test_buckets(void **state)
{
	double p[100], y[100], lo, hi;
	struct conformal c;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 100; i++) {
		p[i] = i;
		y[i] = i + 0.5;
	}
	assert_int_equal(conformal_fit(p, y, 100, 4, 10, 0.8, NULL, NULL, 0, 0, &c, &err), 0);
	assert_int_equal(c.n_buckets, 4);
	/*
	 * bucket 0 holds y 0.5 .. 24.5: the type-1 quantile at 0.1 of 25 is rank 3,
	 * and the band holds ceil(0.8 * 25) = 20 rows from there: ranks 3 to 22
	 */
	assert_true(c.lo[0] == 2.5 && c.hi[0] == 21.5);
	conformal_row(&c, 60, &lo, &hi); /* bucket 2: y 50.5 .. 74.5 */
	assert_true(lo == 52.5 && hi == 71.5);
	conformal_row(&c, 1e9, &lo, &hi); /* beyond the last edge: the last bucket */
	assert_true(lo == 77.5 && hi == 96.5);
	assert_true(isnan(c.group_lo)); /* no groups */
}

/* 30 rows all tied at p = 0 but one: ties never split, and nothing reads past the end. */
static void test_ties(void **state)
{
	double p[30], y[30];
	struct conformal c;
	struct ltv_err err = { 0 };

	(void)state;
	for (int i = 0; i < 30; i++) {
		p[i] = i < 29 ? 0 : 5;
		y[i] = i < 29 ? 0 : 7;
	}
	assert_int_equal(conformal_fit(p, y, 30, 10, 2, 0.8, NULL, NULL, 0, 0, &c, &err), 0);
	assert_int_equal(c.n_buckets, 2);
	assert_true(c.lo[0] == 0 && c.hi[0] == 0);
	assert_true(c.lo[1] == 7 && c.hi[1] == 7);
	assert_true(c.upper[0] == 0 && isinf(c.upper[1]));
}

static void test_groups_and_blob(void **state)
{
	double p[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, y[10] = { 0 };
	double gp[6] = { 10, 10, 10, 10, 10, 0 }, ga[6] = { 5, 8, 10, 12, 20, 99 }, lo, hi;
	struct conformal c, back;
	struct ltv_err err = { 0 };
	uint8_t *blob;
	size_t len;

	(void)state;
	assert_int_equal(conformal_fit(p, y, 10, 2, 1, 0.8, gp, ga, 6, 0, &c, &err), 0);
	/* ratios 0.5, 0.8, 1, 1.2, 2 (the group with no prediction is left out) */
	assert_int_equal(c.n_groups, 5);
	assert_true(c.group_lo == 0.5 && c.group_hi == 2);
	/*
	 * k = sum (y - p)^2 / sum p = 385 / 55 = 7; the relative errors -0.5, -0.2,
	 * 0, 0.2, 1 square to 1.33 in all, less 5 k / 10 = 3.5 of user noise: tau^2
	 * is floored at 0, sd(10) = sqrt(70), the scores are 5, 2, 0, 2, 10 over
	 * sqrt(70), and with 5 groups q is the ceil(6 * 0.8) = 5th: 10 / sqrt(70).
	 */
	assert_double_near(c.group_k, 7, 1e-12);
	assert_double_near(c.group_tau2, 0, 0);
	assert_double_near(c.group_q, 10 / sqrt(70), 1e-12);
	/* The k F band (no bootstrap asked: it serves, and the blob stays version 2). */
	assert_int_equal(c.boot_grid, 0);
	assert_true(isnan(c.boot_q));
	blob = conformal_save(&c, &len);
	assert_int_equal(blob[8], 2); /* the version after the 8-byte magic */
	assert_int_equal(conformal_load(blob, len, &back, &err), 0);
	assert_true(back.boot_grid == 0 && isnan(back.boot_q) && back.group_q == c.group_q);
	free(blob);
	conformal_group(&back, 10, &lo, &hi);
	assert_double_near(lo, 0, 1e-12);
	assert_double_near(hi, 20, 1e-12);
	conformal_group(&back, 40, &lo, &hi); /* sd(40) = sqrt(280): 40 +- 20 */
	assert_double_near(lo, 20, 1e-12);
	assert_double_near(hi, 60, 1e-12);
	/*
	 * The bootstrap band: every row's outcome is 0, so every resampled set
	 * has R = -1 (no spread: the quantile above is floored), E R^2 = 1, and
	 * each group is judged against that noise.
	 */
	conformal_fit_bootstrap(p, y, 10, gp, ga, 6, 0, &c);
	assert_int_equal(c.boot_grid, CONFORMAL_BOOT_GRID);
	assert_double_near(c.boot_mean_p, 5.5, 1e-12);
	assert_double_near(c.boot_var[0], 16, 1e-9); /* n E R^2 at n = 16 */
	assert_double_near(c.boot_down[0], 4, 1e-9); /* sqrt(16) * 1 */
	/*
	 * Only the group Y = 20 (rel 1) and Y = 12 (rel 0.2) lie above, where the
	 * floored quantile leaves no room: the 5th of the needs 0, 0, 0,
	 * 0.2^2 / z^2, 1 / z^2 (z = 1.2816; less the floored quantile, 1e-3 sqrt(16)
	 * / sqrt(n), n = 10 / 5.5, squared) sets tau_b^2, and q_b = 1.
	 */
	assert_double_near(c.boot_tau2, (1 - 0.004 * 0.004 * 5.5 / 10) / 1.6423744151, 1e-9);
	assert_double_near(c.boot_q, 1, 0);
	conformal_group(&c, 10, &lo, &hi);
	assert_true(lo >= 0 && lo <= 10 && hi >= 10 && isfinite(hi));
	blob = conformal_save(&c, &len);
	assert_int_equal(conformal_load(blob, len, &back, &err), 0);
	assert_true(back.n_buckets == c.n_buckets && back.group_hi == 2 && back.level == 0.8);
	assert_true(back.group_q == c.group_q && back.group_k == c.group_k);
	assert_true(back.boot_grid == c.boot_grid && back.boot_q == c.boot_q &&
		    back.boot_tau2 == c.boot_tau2 && back.boot_up[3] == c.boot_up[3]);
	assert_int_equal(conformal_load(blob, len - 3, &back, &err) < 0, 1);
	free(blob);
}

/* A small deterministic generator (xorshift64*) and an exponential draw. */
static uint64_t rng_state = 88172645463325252ULL;

static double uniform01(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/*
 * Simulated users whose outcome is known in law: prediction p uniform on
 * [0, 10], outcome y = p * E with E exponential(1). Bands fitted on 5,000
 * users must hold 80% (+-2.5%) of 40,000 fresh users' outcomes, and the
 * bucket nearest p has the exponential's quantiles p * -ln(0.9), p * -ln(0.1).
 */
/*
 * The conformal rank counts independent units: 20 groups predicted 100 each
 * (rows as in test_groups_and_blob: k = 7, tau^2 floored at 0, sd(100) =
 * sqrt(700)) with outcomes 100 + d, d = 1 to 20, score d / sqrt(700). As 20
 * independent groups, q is the ceil(21 * 0.8) = 17th score; from 10
 * campaigns (two ages each), the rule's ceil(11 * 0.8) = 9 of 10 campaigns
 * is 18 of the 20 groups; from 5, ceil(6 * 0.8) = 5 of 5: the largest. More
 * units than groups count as the groups.
 */
static void test_group_rank_by_units(void **state)
{
	double p[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, y[10] = { 0 }, gp[20], ga[20];
	static const size_t units[] = { 0, 20, 40, 10, 5, 3 }, want[] = { 17, 17, 17, 18, 20, 20 };
	struct conformal c;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t g = 0; g < 20; g++) {
		gp[g] = 100;
		ga[g] = 100 + (double)(g + 1);
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		assert_int_equal(conformal_fit(p, y, 10, 2, 1, 0.8, gp, ga, 20, units[i], &c, &err), 0);
		assert_double_near(c.group_tau2, 0, 0);
		assert_double_near(c.group_q, (double)want[i] / sqrt(700), 1e-12);
	}
}

static void test_coverage_on_known_distribution(void **state)
{
	const size_t n_fit = 5000, n_test = 40000;
	double *p = malloc(n_fit * sizeof(double)), *y = malloc(n_fit * sizeof(double));
	struct conformal c;
	struct ltv_err err = { 0 };
	size_t inside = 0;
	double lo, hi;

	(void)state;
	for (size_t i = 0; i < n_fit; i++) {
		p[i] = 10 * uniform01();
		y[i] = p[i] * -log(1 - uniform01());
	}
	assert_int_equal(conformal_fit(p, y, n_fit, 20, 100, 0.8, NULL, NULL, 0, 0, &c, &err), 0);
	for (size_t i = 0; i < n_test; i++) {
		double pi = 10 * uniform01(), yi = pi * -log(1 - uniform01());

		conformal_row(&c, pi, &lo, &hi);
		inside += yi >= lo && yi <= hi;
	}
	assert_true(fabs((double)inside / (double)n_test - 0.8) < 0.025);
	/* bucket of p in [4.5, 5]: the band of p * E over it, roughly 4.75 * (0.105, 2.303) */
	conformal_row(&c, 4.75, &lo, &hi);
	assert_true(lo > 0.2 && lo < 0.8);
	assert_true(hi > 9 && hi < 13);
	free(p);
	free(y);
}

static double normal01(void)
{
	return sqrt(-2 * log(1 - uniform01())) * cos(6.283185307179586 * uniform01());
}

/*
 * Users of known law with a point mass at 0, as revenue to come is: user i
 * pays again with probability pi_i (uniform on [0.02, 0.7]), then a
 * log-normal amount (mu 1, sigma 1.5); the prediction is the mean,
 * pi_i e^(mu + sigma^2 / 2). Bands fitted on 20,000 users, judged on 100,000
 * fresh ones against each one's exact probability of lying inside:
 *   - where the band is [0, hi > 0] (its bucket's mass at 0 between 10% and
 *     80%), it holds 80% (the central band [Q10, Q90] held 90% there);
 *   - where the mass at 0 exceeds 80%, the band is [0, 0] and holds that
 *     mass, the least any band containing 0 can hold;
 *   - overall, the share inside is the exact expectation (the band is
 *     honest about what it holds), within sampling noise.
 */
static double normal_cdf(double x)
{
	return 0.5 * erfc(-x / sqrt(2));
}

static void zero_inflated_user(double *out_p, double *out_y, double *out_pi)
{
	const double mu = 1, sigma = 1.5, pi = 0.02 + 0.68 * uniform01();

	*out_pi = pi;
	*out_p = pi * exp(mu + sigma * sigma / 2);
	*out_y = uniform01() < pi ? exp(mu + sigma * normal01()) : 0;
}

/* P(lo <= Y <= hi) for the law above. */
static double zero_inflated_inside(double pi, double lo, double hi)
{
	const double mu = 1, sigma = 1.5;
	const double up = hi > 0 ? normal_cdf((log(hi) - mu) / sigma) : 0;
	const double down = lo > 0 ? normal_cdf((log(lo) - mu) / sigma) : 0;

	return (lo <= 0 ? 1 - pi : 0) + pi * (up - down);
}

static void test_user_coverage_zero_inflated(void **state)
{
	enum { N_FIT = 20000, N_TEST = 100000 };
	double *p = malloc(N_FIT * sizeof(double)), *y = malloc(N_FIT * sizeof(double));
	double pi, lo, hi, expect_all = 0, expect_open = 0, expect_zero = 0;
	size_t inside_all = 0, inside_open = 0, n_open = 0, inside_zero = 0, n_zero = 0;
	struct conformal c;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t i = 0; i < N_FIT; i++)
		zero_inflated_user(&p[i], &y[i], &pi);
	assert_int_equal(conformal_fit(p, y, N_FIT, 20, 100, 0.8, NULL, NULL, 0, 0, &c, &err), 0);
	for (size_t i = 0; i < N_TEST; i++) {
		double pi_i, p_i, y_i, e;
		int in;

		zero_inflated_user(&p_i, &y_i, &pi_i);
		conformal_row(&c, p_i, &lo, &hi);
		in = y_i >= lo && y_i <= hi;
		e = zero_inflated_inside(pi_i, lo, hi);
		inside_all += in;
		expect_all += e;
		if (lo == 0 && hi > 0) {
			n_open++;
			inside_open += in;
			expect_open += e;
		} else if (hi == 0) {
			n_zero++;
			inside_zero += in;
			expect_zero += e;
		}
	}
	print_message("zero-inflated users: [0, hi] bands hold %.3f (exact %.3f) of %zu, [0, 0] bands "
		"%.3f (exact %.3f) of %zu, all %.3f (exact %.3f)\n", (double)inside_open / (double)n_open,
		expect_open / (double)n_open, n_open, (double)inside_zero / (double)n_zero,
		expect_zero / (double)n_zero, n_zero, (double)inside_all / N_TEST, expect_all / N_TEST);
	/* both kinds of band occur: pi below 0.2 and above 0.2 */
	assert_true(n_open > N_TEST / 2 && n_zero > N_TEST / 20);
	assert_true(fabs((double)inside_open / (double)n_open - 0.8) < 0.02);
	assert_true(fabs(expect_open / (double)n_open - 0.8) < 0.02);
	assert_true((double)inside_zero / (double)n_zero > 0.8);
	assert_true(fabs((double)inside_zero - expect_zero) / (double)n_zero < 0.01);
	assert_true(fabs((double)inside_all - expect_all) / N_TEST < 0.005);
	free(p);
	free(y);
}

/*
 * Campaigns whose error is known in law: a campaign of n users (50 to 500)
 * has a systematic error beta ~ 1 + 0.15 N(0, 1) shared by its users, and
 * each user's outcome is p * beta * E (p uniform on [0.5, 1.5], E
 * exponential(1)). Fitted on 60 campaigns, the group interval must hold
 * between 75% and 85% of 3,000 fresh campaigns' totals; the old band (the
 * held-out ratios' quantiles) is also checked on campaigns 10 times smaller
 * than the held-out ones, where it was too narrow.
 */
static void simulate_group(size_t n, double *out_p, double *out_y, double *rows_p, double *rows_y)
{
	const double beta = 1 + 0.15 * normal01();

	*out_p = *out_y = 0;
	for (size_t i = 0; i < n; i++) {
		const double p = 0.5 + uniform01(), y = p * beta * -log(1 - uniform01());

		*out_p += p;
		*out_y += y;
		if (rows_p) {
			rows_p[i] = p;
			rows_y[i] = y;
		}
	}
}

static void test_group_coverage_on_known_distribution(void **state)
{
	enum { G_FIT = 60, G_TEST = 3000 };
	double gp[G_FIT], ga[G_FIT], *p = malloc(G_FIT * 500 * sizeof(double));
	double *y = malloc(G_FIT * 500 * sizeof(double)), lo, hi;
	size_t n = 0, inside = 0, inside_small = 0;
	struct conformal c;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t g = 0; g < G_FIT; g++) {
		const size_t users = 50 + (size_t)(450 * uniform01());

		simulate_group(users, &gp[g], &ga[g], p + n, y + n);
		n += users;
	}
	assert_int_equal(conformal_fit(p, y, n, 20, 100, 0.8, gp, ga, G_FIT, 0, &c, &err), 0);
	/* tau^2 near 0.15^2 = 0.0225 (60 campaigns: a loose check), k near E p^2 / E p = 1.083 */
	assert_true(c.group_tau2 > 0.01 && c.group_tau2 < 0.04);
	assert_true(fabs(c.group_k - 1.083) < 0.15);
	for (size_t g = 0; g < G_TEST; g++) {
		double P, A;

		simulate_group(50 + (size_t)(450 * uniform01()), &P, &A, NULL, NULL);
		conformal_group(&c, P, &lo, &hi);
		inside += A >= lo && A <= hi;
		simulate_group(5 + (size_t)(45 * uniform01()), &P, &A, NULL, NULL);
		conformal_group(&c, P, &lo, &hi);
		inside_small += A >= lo && A <= hi;
	}
	assert_true((double)inside / G_TEST >= 0.75 && (double)inside / G_TEST <= 0.85);
	/* small campaigns: wider by their own noise, so still about 80% */
	assert_true((double)inside_small / G_TEST >= 0.75 && (double)inside_small / G_TEST <= 0.88);
	free(p);
	free(y);
}

/* The k F band of the header (what served before the bootstrap band). */
static void scale_band(const struct conformal *c, double f, double *lo, double *hi)
{
	const double half = c->group_q * sqrt(c->group_tau2 * f * f + c->group_k * f);

	*lo = fmax(f - half, 0);
	*hi = f + half;
}

/*
 * Few campaigns, as on CDNOW (5 validation weeks). Each campaign has its own
 * beta ~ 1 + 0.15 N(0, 1) and is seen at 6 snapshot ages, the revenue to come
 * shrinking with age (p times (7 - a) / 6); calibrate makes one held-out group
 * per (campaign, age), 30 groups. Over 200 fits on fresh draws, each judged
 * on 200 fresh campaigns of 50 to 200 users at one age, as a scored campaign
 * is, those hold between 75% and 85% on average. One group per campaign (the
 * sum over its ages, as calibrate had it) gives 5 groups, q their largest
 * score, and groups unlike the scored campaigns: about 90% with the k F
 * band, too wide, as it was on the real data. Both the k F band and the
 * bootstrap band hold 75% to 85% from the (campaign, age) groups.
 * (Simulated users are drawn afresh per age; the real groups of one
 * campaign share users, which only makes them more alike.)
 */
static void simulate_aged(size_t n, double beta, double scale, double *out_p, double *out_y,
			  double *rows_p, double *rows_y)
{
	*out_p = *out_y = 0;
	for (size_t i = 0; i < n; i++) {
		const double p = scale * (0.5 + uniform01()), y = p * beta * -log(1 - uniform01());

		*out_p += p;
		*out_y += y;
		rows_p[i] = p;
		rows_y[i] = y;
	}
}

static void test_group_coverage_few_campaigns(void **state)
{
	enum { CAMPAIGNS = 5, AGES = 6, USERS = 100, FITS = 200, TESTS = 200 };
	double *p = malloc(CAMPAIGNS * AGES * USERS * sizeof(double));
	double *y = malloc(CAMPAIGNS * AGES * USERS * sizeof(double));
	double gp[CAMPAIGNS * AGES], ga[CAMPAIGNS * AGES], cp[CAMPAIGNS], ca[CAMPAIGNS];
	double tp[USERS * 2], ty[USERS * 2], sum[3] = { 0 }, sq[3] = { 0 }, mean[3], sd[3];
	static const char *const what[3] = { "(campaign, age), k F band", "campaign, k F band",
					      "(campaign, age), bootstrap band" };
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t f = 0; f < FITS; f++) {
		struct conformal fit[2];
		size_t inside[3] = { 0 };

		for (size_t c = 0; c < CAMPAIGNS; c++) {
			const double beta = 1 + 0.15 * normal01();

			cp[c] = ca[c] = 0;
			for (size_t a = 0; a < AGES; a++) {
				const size_t g = c * AGES + a;

				simulate_aged(USERS, beta, (double)(AGES + 1 - a) / AGES, &gp[g], &ga[g],
					      p + g * USERS, y + g * USERS);
				cp[c] += gp[g];
				ca[c] += ga[g];
			}
		}
		assert_int_equal(conformal_fit(p, y, CAMPAIGNS * AGES * USERS, 20, 100, 0.8, gp, ga,
					       CAMPAIGNS * AGES, 0, &fit[0], &err), 0);
		assert_int_equal(conformal_fit(p, y, CAMPAIGNS * AGES * USERS, 20, 100, 0.8, cp, ca,
					       CAMPAIGNS, 0, &fit[1], &err), 0);
		conformal_fit_bootstrap(p, y, CAMPAIGNS * AGES * USERS, gp, ga, CAMPAIGNS * AGES, 0,
					&fit[0]);
		assert_int_equal(fit[0].n_groups, 30);
		assert_int_equal(fit[1].n_groups, 5);
		for (size_t t = 0; t < TESTS; t++) {
			const size_t n = 50 + (size_t)(150 * uniform01());
			const double scale = (double)(AGES - (size_t)(AGES * uniform01())) / AGES;
			double P, A, lo, hi;

			simulate_aged(n, 1 + 0.15 * normal01(), scale, &P, &A, tp, ty);
			for (int k = 0; k < 2; k++) {
				scale_band(&fit[k], P, &lo, &hi);
				inside[k] += A >= lo && A <= hi;
			}
			conformal_group(&fit[0], P, &lo, &hi);
			inside[2] += A >= lo && A <= hi;
		}
		for (int k = 0; k < 3; k++) {
			const double cov = (double)inside[k] / TESTS;

			sum[k] += cov;
			sq[k] += cov * cov;
		}
	}
	for (int k = 0; k < 3; k++) {
		mean[k] = sum[k] / FITS;
		sd[k] = sqrt(fmax(sq[k] / FITS - mean[k] * mean[k], 0));
		print_message("groups per %s: mean coverage %.3f, sd %.3f over %d fits\n",
			      what[k], mean[k], sd[k], FITS);
	}
	assert_true(mean[0] >= 0.75 && mean[0] <= 0.85);
	assert_true(mean[2] >= 0.75 && mean[2] <= 0.85);
	/* summed over ages, groups are 6 times the scored campaigns: too wide (about 0.9) */
	assert_true(mean[1] > 0.85);
	free(p);
	free(y);
}

/*
 * Heavy-tailed revenue, as real revenue to come: a user (prediction p
 * uniform on [0.5, 1.5]) pays with probability 0.05, and then p beta L /
 * 0.05, L log-normal with sigma 1.5 and mean 1 (whales: the top 1% of
 * payers bring about a fifth of the revenue); beta ~ 1 + 0.1 N(0, 1) per
 * campaign. Held-out groups are small (50 to 300 users, as validation
 * campaigns at one age), the scored campaigns larger (300 to 3,000 users).
 * |Y - P| / sqrt(k P) is not pivotal here: a small group mostly holds no
 * whale, so its score is small, and the k F band fitted on such groups is
 * too narrow for the larger campaigns (about 0.7). The bootstrap band, whose
 * noise is resampled for each size, must hold 75% to 85% of them on average
 * over 20 fits, and the k F band must not (the test can tell them apart).
 */
static double lognormal_mean1(double sigma)
{
	return exp(sigma * normal01() - sigma * sigma / 2);
}

static void simulate_whales(size_t n, double *out_p, double *out_y, double *rows_p, double *rows_y)
{
	const double beta = 1 + 0.1 * normal01();

	*out_p = *out_y = 0;
	for (size_t i = 0; i < n; i++) {
		const double p = 0.5 + uniform01();
		const double y = uniform01() < 0.05 ? p * beta * lognormal_mean1(1.5) / 0.05 : 0;

		*out_p += p;
		*out_y += y;
		if (rows_p) {
			rows_p[i] = p;
			rows_y[i] = y;
		}
	}
}

static void test_group_coverage_heavy_tails(void **state)
{
	enum { G_FIT = 60, FITS = 20, TESTS = 200 };
	double gp[G_FIT], ga[G_FIT], *p = malloc(G_FIT * 300 * sizeof(double));
	double *y = malloc(G_FIT * 300 * sizeof(double)), cov_boot = 0, cov_scale = 0;
	struct ltv_err err = { 0 };

	(void)state;
	for (size_t f = 0; f < FITS; f++) {
		struct conformal c;
		size_t n = 0, in_boot = 0, in_scale = 0;

		for (size_t g = 0; g < G_FIT; g++) {
			const size_t users = 50 + (size_t)(250 * uniform01());

			simulate_whales(users, &gp[g], &ga[g], p + n, y + n);
			n += users;
		}
		assert_int_equal(conformal_fit(p, y, n, 20, 100, 0.8, gp, ga, G_FIT, 0, &c, &err), 0);
		conformal_fit_bootstrap(p, y, n, gp, ga, G_FIT, 0, &c);
		assert_int_equal(c.boot_grid, CONFORMAL_BOOT_GRID);
		for (size_t t = 0; t < TESTS; t++) {
			double P, A, lo, hi;

			simulate_whales(300 + (size_t)(2700 * uniform01()), &P, &A, NULL, NULL);
			conformal_group(&c, P, &lo, &hi);
			in_boot += A >= lo && A <= hi;
			scale_band(&c, P, &lo, &hi);
			in_scale += A >= lo && A <= hi;
		}
		cov_boot += (double)in_boot / TESTS / FITS;
		cov_scale += (double)in_scale / TESTS / FITS;
	}
	print_message("heavy tails: bootstrap band %.3f, k F band %.3f of larger campaigns\n",
		      cov_boot, cov_scale);
	assert_true(cov_boot >= 0.75 && cov_boot <= 0.85);
	assert_true(cov_scale < 0.75);
	free(p);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_groups_and_blob),
		cmocka_unit_test(test_group_rank_by_units),
		cmocka_unit_test(test_coverage_on_known_distribution),
		cmocka_unit_test(test_group_coverage_on_known_distribution),
		cmocka_unit_test(test_group_coverage_few_campaigns),
		cmocka_unit_test(test_group_coverage_heavy_tails),
		/* last: the tests above draw from one stream, which a test before them would move */
		cmocka_unit_test(test_user_coverage_zero_inflated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
