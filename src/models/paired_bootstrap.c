/*
 * Paired, campaign-stratified bootstrap of the difference between two
 * predictors (definitions in include/ltv/paired_bootstrap.h). Each resample
 * is a list of row indices, gathered into scratch arrays so that the metric
 * functions of metrics.h compute exactly what evaluate reports.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ltv/metrics.h"
#include "ltv/paired_bootstrap.h"
#include "ltv/rng.h"

const char *paired_metric_name(enum paired_metric m)
{
	static const char *const names[] = { "campaign_wape", "normalized_gini", "campaign_bias" };

	return names[m];
}

const char *paired_param_check(const struct paired_param *p)
{
	if (p->n_resamples < 100)
		return "at least 100 resamples are needed for a 95% interval";
	return NULL;
}

/* The three metrics of pred on rows (gathered); NaN where undefined. */
static int metrics_of(const double *actual, const double *pred, const size_t *campaign, size_t n,
		      size_t n_campaigns, size_t min_users, double out[PAIRED_N_METRICS],
		      struct ltv_err *err)
{
	struct metrics_campaign mc;
	int ret = metrics_campaign_wape(actual, pred, campaign, n, n_campaigns, min_users, &mc, err);

	if (ret == 0)
		ret = metrics_normalized_gini(actual, pred, n, &out[PAIRED_GINI], NULL, err);
	out[PAIRED_WAPE] = mc.wape;
	out[PAIRED_BIAS] = mc.bias;
	return ret;
}

static int cmp_double(const void *pa, const void *pb)
{
	const double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

/* Percentile q of sorted[0..n) with linear interpolation between order statistics. */
static double percentile(const double *sorted, size_t n, double q)
{
	const double pos = q * (double)(n - 1);
	const size_t lo = (size_t)floor(pos);
	const size_t hi = lo + 1 < n ? lo + 1 : lo;

	return sorted[lo] + (pos - (double)lo) * (sorted[hi] - sorted[lo]);
}

int paired_bootstrap(const double *actual, const double *pred_a, const double *pred_b,
		     const size_t *campaign, size_t n, size_t n_campaigns,
		     const struct paired_param *param, struct paired_result *out,
		     struct ltv_err *err)
{
	size_t *start = NULL, *members = NULL, *fill = NULL;
	double *ra = NULL, *rpa = NULL, *rpb = NULL, *diffs[PAIRED_N_METRICS] = { 0 };
	size_t *rc = NULL;
	double ma[PAIRED_N_METRICS], mb[PAIRED_N_METRICS];
	struct rng rng;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return err_set(err, LTV_EINVAL, "compare: no user to compare");
	if (paired_param_check(param))
		return err_set(err, LTV_EINVAL, "compare: %s", paired_param_check(param));
	for (size_t i = 0; i < n; i++) {
		if (isnan(actual[i]) || isnan(pred_a[i]) || isnan(pred_b[i]) || actual[i] < 0 ||
		    pred_a[i] < 0 || pred_b[i] < 0)
			return err_set(err, LTV_EINVAL, "compare: row %zu: actual %g, predictions %g and "
				       "%g must be numbers >= 0", i, actual[i], pred_a[i], pred_b[i]);
		if (campaign[i] >= n_campaigns)
			return err_set(err, LTV_EINVAL, "compare: row %zu: campaign %zu of %zu", i,
				       campaign[i], n_campaigns);
	}
	out->n = n;
	ret = metrics_of(actual, pred_a, campaign, n, n_campaigns, param->min_campaign_users, ma, err);
	if (ret == 0)
		ret = metrics_of(actual, pred_b, campaign, n, n_campaigns, param->min_campaign_users, mb, err);
	if (ret < 0)
		return ret;
	/* Rows grouped by campaign: members[start[g] .. start[g + 1]) */
	start = xcalloc(n_campaigns + 1, sizeof(size_t));
	fill = xcalloc(n_campaigns, sizeof(size_t));
	members = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		start[campaign[i] + 1]++;
	for (size_t g = 0; g < n_campaigns; g++) {
		out->n_campaigns += start[g + 1] > 0;
		start[g + 1] += start[g];
	}
	for (size_t i = 0; i < n; i++)
		members[start[campaign[i]] + fill[campaign[i]]++] = i;
	ra = xmalloc(n * sizeof(double));
	rpa = xmalloc(n * sizeof(double));
	rpb = xmalloc(n * sizeof(double));
	rc = xmalloc(n * sizeof(size_t));
	for (int k = 0; k < PAIRED_N_METRICS; k++)
		diffs[k] = xmalloc(param->n_resamples * sizeof(double));
	rng_seed(&rng, param->seed, 0x70616972); /* "pair" */
	for (size_t b = 0; b < param->n_resamples && ret == 0; b++) {
		double sa[PAIRED_N_METRICS], sb[PAIRED_N_METRICS];
		size_t j = 0;

		for (size_t g = 0; g < n_campaigns; g++) {
			const size_t size = start[g + 1] - start[g];

			for (size_t t = 0; t < size; t++, j++) {
				const size_t i = members[start[g] + rng_below(&rng, (uint32_t)size)];

				ra[j] = actual[i];
				rpa[j] = pred_a[i];
				rpb[j] = pred_b[i];
				rc[j] = g;
			}
		}
		ret = metrics_of(ra, rpa, rc, n, n_campaigns, param->min_campaign_users, sa, err);
		if (ret == 0)
			ret = metrics_of(ra, rpb, rc, n, n_campaigns, param->min_campaign_users, sb, err);
		for (int k = 0; k < PAIRED_N_METRICS && ret == 0; k++)
			if (!isnan(sa[k]) && !isnan(sb[k]))
				diffs[k][out->m[k].n_resamples_used++] = sb[k] - sa[k];
	}
	for (int k = 0; k < PAIRED_N_METRICS && ret == 0; k++) {
		struct paired_metric_result *m = &out->m[k];
		const size_t used = m->n_resamples_used;
		size_t below = 0, above = 0;

		m->a = ma[k];
		m->b = mb[k];
		m->diff = mb[k] - ma[k];
		m->lo = m->hi = m->p = NAN;
		if (used < 2)
			continue;
		qsort(diffs[k], used, sizeof(double), cmp_double);
		m->lo = percentile(diffs[k], used, 0.025);
		m->hi = percentile(diffs[k], used, 0.975);
		for (size_t b = 0; b < used; b++) {
			below += diffs[k][b] <= 0;
			above += diffs[k][b] >= 0;
		}
		m->p = fmin(1.0, 2.0 * (double)(1 + (below < above ? below : above)) / (double)(used + 1));
	}
	free(start);
	free(fill);
	free(members);
	free(ra);
	free(rpa);
	free(rpb);
	free(rc);
	for (int k = 0; k < PAIRED_N_METRICS; k++)
		free(diffs[k]);
	return ret;
}

/* One resample's verdict: 1 when B's summed campaign error is below A's. */
static int b_wins_resample(struct rng *r, const double *resid_a, const double *resid_b,
			   const size_t *group_start, size_t n_groups)
{
	double err_a = 0, err_b = 0;

	for (size_t g = 0; g < n_groups; g++) {
		const size_t first = group_start[g], n = group_start[g + 1] - first;
		double sum_a = 0, sum_b = 0;

		for (size_t k = 0; k < n; k++) {
			const size_t u = first + rng_below(r, (uint32_t)n);

			sum_a += resid_a[u];
			sum_b += resid_b[u];
		}
		err_a += fabs(sum_a);
		err_b += fabs(sum_b);
	}
	return err_b < err_a;
}

double paired_bootstrap_win_share(const double *resid_a, const double *resid_b,
				  const size_t *group_start, size_t n_groups, size_t n_resamples,
				  uint64_t seed)
{
	struct rng r;
	size_t wins = 0;

	if (n_resamples == 0 || group_start[n_groups] == group_start[0])
		return 0;
	rng_seed(&r, seed, 0);
	for (size_t b = 0; b < n_resamples; b++)
		wins += (size_t)b_wins_resample(&r, resid_a, resid_b, group_start, n_groups);
	return (double)wins / (double)n_resamples;
}

/* Resamples each thread draws per round of the parallel paired_bootstrap_wins. */
#define WINS_CHUNK 8
/* Draws per resample below which one thread decides (a round costs more than it saves). */
#define WINS_PARALLEL_MIN_DRAWS 16384

/*
 * The verdict from resamples won[0..n) in order, where the first b0 of all
 * resamples won *wins: 1 or 0 once settled (as paired_bootstrap_wins
 * decides it, before each draw), -1 when not yet.
 */
static int wins_settled(const unsigned char *won, size_t n, size_t b0, size_t *wins,
			size_t n_resamples, double min_share)
{
	for (size_t b = b0; b < b0 + n; b++) {
		if ((double)(*wins + n_resamples - b) / (double)n_resamples < min_share)
			return 0;
		if ((double)*wins / (double)n_resamples >= min_share)
			return 1;
		*wins += won[b - b0];
	}
	return -1;
}

/*
 * paired_bootstrap_wins on n_threads: each round, thread t draws resamples
 * b0 + t * WINS_CHUNK .. from the stream jumped ahead to them (every
 * resample takes exactly one draw per user, rng_jump), and the verdict is
 * then read off in resample order with the serial rule, so it is the serial
 * one, at the cost of at most a round drawn past where it settled.
 */
static int wins_parallel(const double *resid_a, const double *resid_b, const size_t *group_start,
			 size_t n_groups, size_t n_resamples, struct rng *r, double min_share,
			 int n_threads)
{
	const size_t per_round = (size_t)n_threads * WINS_CHUNK;
	const uint64_t draws = group_start[n_groups] - group_start[0];
	unsigned char *won = xmalloc(per_round);
	struct rng_jump chunk;
	size_t wins = 0;
	int verdict = -1;

	rng_jump_of(draws * WINS_CHUNK, &chunk);
	for (size_t b0 = 0; b0 < n_resamples && verdict < 0; b0 += per_round) {
		const size_t n = n_resamples - b0 < per_round ? n_resamples - b0 : per_round;
		struct rng next = *r;

#pragma omp parallel num_threads(n_threads)
		{
#ifdef _OPENMP
			const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
			const int t = 0, nt = 1;
#endif
			/* with fewer threads than asked, each takes several chunks in turn */
			for (size_t c = (size_t)t; c * WINS_CHUNK < n; c += (size_t)nt) {
				struct rng own = *r;

				for (size_t k = 0; k < c; k++)
					rng_jump(&own, &chunk);
				for (size_t b = c * WINS_CHUNK; b < (c + 1) * WINS_CHUNK && b < n; b++)
					won[b] = (unsigned char)b_wins_resample(&own, resid_a, resid_b,
										group_start, n_groups);
				if ((c + 1) * WINS_CHUNK >= n)
					next = own;
			}
		}
		*r = next;
		verdict = wins_settled(won, n, b0, &wins, n_resamples, min_share);
	}
	free(won);
	return verdict >= 0 ? verdict : (double)wins / (double)n_resamples >= min_share;
}

int paired_bootstrap_wins(const double *resid_a, const double *resid_b, const size_t *group_start,
			  size_t n_groups, size_t n_resamples, uint64_t seed, double min_share,
			  int n_threads)
{
	struct rng r;
	size_t wins = 0;

	if (n_resamples == 0 || group_start[n_groups] == group_start[0])
		return 0 >= min_share;
	rng_seed(&r, seed, 0);
	if (n_threads > 1 && group_start[n_groups] - group_start[0] >= WINS_PARALLEL_MIN_DRAWS)
		return wins_parallel(resid_a, resid_b, group_start, n_groups, n_resamples, &r,
				     min_share, n_threads);
	for (size_t b = 0; b < n_resamples; b++) {
		/* settled: every resample left won, or none needed, cannot change the verdict */
		if ((double)(wins + n_resamples - b) / (double)n_resamples < min_share)
			return 0;
		if ((double)wins / (double)n_resamples >= min_share)
			return 1;
		wins += (size_t)b_wins_resample(&r, resid_a, resid_b, group_start, n_groups);
	}
	return (double)wins / (double)n_resamples >= min_share;
}
