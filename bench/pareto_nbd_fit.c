/*
 * Timing harness for pareto_nbd_fit (bench/pareto_nbd_fit.sh builds and runs
 * it). Simulates N customers from each of a few parameter sets like those the
 * pipeline fits (T uniform over 1..104 whole weeks, t_x floored to whole
 * weeks), collapses them to distinct weighted (x, t_x, T) triples as the
 * pipeline does, and fits each set REPS times; prints the rows, the fit and
 * the CPU time per fit (the machine may be shared).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "ltv/pareto_nbd.h"

static int cmp_triple(const void *pa, const void *pb)
{
	const double *a = pa, *b = pb;

	for (int k = 0; k < 3; k++)
		if (a[k] != b[k])
			return a[k] < b[k] ? -1 : 1;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const double sets[][4] = {
		{ 0.027, 1.64, 1.25, 3.30 },
		{ 0.011, 0.93, 7.58, 43.7 },
		{ 0.078, 3.5, 0.52, 0.485 },
		{ 0.8, 6, 0.9, 20 },
	};
	const size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 15750;
	const int reps = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 1;
	const char *only = argc > 3 ? argv[3] : NULL; /* e.g. "13": sets 1 and 3 only */
	double *tr = malloc(n * 3 * sizeof(double));
	double *x = malloc(n * sizeof(double)), *t_x = malloc(n * sizeof(double));
	double *T = malloc(n * sizeof(double)), *w = malloc(n * sizeof(double));
	double total = 0;
	int n_fits = 0;

	for (size_t set = 0; set < sizeof(sets) / sizeof(sets[0]); set++) {
		gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
		size_t m = 0;

		if (only && !strchr(only, (int)('0' + set))) {
			gsl_rng_free(rng);
			continue;
		}

		gsl_rng_set(rng, 11 + set);
		for (size_t i = 0; i < n; i++) {
			const double lambda = gsl_ran_gamma(rng, sets[set][0], 1 / sets[set][1]);
			const double mu = gsl_ran_gamma(rng, sets[set][2], 1 / sets[set][3]);
			const double death = gsl_ran_exponential(rng, 1 / mu);
			const double Ti = (double)(1 + gsl_rng_uniform_int(rng, 104));
			double t = 0, xi = 0, last = 0;

			for (;;) {
				t += gsl_ran_exponential(rng, 1 / lambda);
				if (!(t <= Ti && t <= death))
					break;
				xi++;
				last = t;
			}
			tr[3 * i] = xi;
			tr[3 * i + 1] = xi > 0 ? floor(last) : 0;
			tr[3 * i + 2] = Ti;
		}
		gsl_rng_free(rng);
		qsort(tr, n, 3 * sizeof(double), cmp_triple);
		for (size_t i = 0; i < n; i++) {
			if (m > 0 && cmp_triple(&tr[3 * i], &tr[3 * (i - 1)]) == 0) {
				w[m - 1]++;
				continue;
			}
			x[m] = tr[3 * i];
			t_x[m] = tr[3 * i + 1];
			T[m] = tr[3 * i + 2];
			w[m++] = 1;
		}
		for (int rep = 0; rep < reps; rep++) {
			struct pareto_nbd_data d = { m, x, t_x, T, w };
			struct pareto_nbd_param param;
			struct pareto_nbd_model *model = NULL;
			struct ltv_err err = { 0 };
			double t0 = now_s(), dt;
			int ret;

			pareto_nbd_param_init(&param);
			ret = pareto_nbd_fit(&param, &d, &model, &err);
			dt = now_s() - t0;
			total += dt;
			n_fits++;
			if (ret < 0) {
				printf("set %zu: %zu rows: FAILED (%s) %.3f s\n", set, m, err.msg, dt);
				continue;
			}
			printf("set %zu: %zu rows: r=%.10g alpha=%.10g s=%.10g beta=%.10g "
			       "LL=%.12g iter=%u  %.3f s\n", set, m, model->r, model->alpha, model->s,
			       model->beta, model->log_lik, model->n_iter, dt);
			pareto_nbd_free(model);
		}
	}
	printf("total %.3f s for %d fits (%.3f s per fit)\n", total, n_fits, total / n_fits);
	free(tr);
	free(x);
	free(t_x);
	free(T);
	free(w);
	return 0;
}
