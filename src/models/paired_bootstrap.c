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

/*
 * A user's residuals under A and B side by side: a draw reads one 16-byte
 * pair from one cache line instead of two doubles from two arrays (a test's
 * users are up to 2 MB of them), and b_wins_lanes_avx2 adds it to a lane's
 * (sum_a, sum_b) in one instruction.
 */
struct resid_pair {
	double a, b;
};

/* resid_a and resid_b interleaved for users group_start[0] .. group_start[n_groups] - 1. */
static struct resid_pair *resid_pairs(const double *resid_a, const double *resid_b,
				      const size_t *group_start, size_t n_groups)
{
	const size_t first = group_start[0], n = group_start[n_groups] - first;
	struct resid_pair *p = xmalloc((n ? n : 1) * sizeof(*p));

	for (size_t u = 0; u < n; u++)
		p[u] = (struct resid_pair){ resid_a[first + u], resid_b[first + u] };
	return p;
}

/*
 * One resample's verdict: 1 when B's summed campaign error is below A's.
 * resid holds the users from group_start[0] on.
 */
static int b_wins_resample(struct rng *r, const struct resid_pair *resid,
			   const size_t *group_start, size_t n_groups)
{
	double err_a = 0, err_b = 0;

	for (size_t g = 0; g < n_groups; g++) {
		const size_t first = group_start[g] - group_start[0], n = group_start[g + 1] - group_start[g];
		double sum_a = 0, sum_b = 0;

		for (size_t k = 0; k < n; k++) {
			const size_t u = first + rng_below(r, (uint32_t)n);

			sum_a += resid[u].a;
			sum_b += resid[u].b;
		}
		err_a += fabs(sum_a);
		err_b += fabs(sum_b);
	}
	return err_b < err_a;
}

/*
 * Resamples drawn together by b_wins_lanes, and the draws per resample from
 * which that pays: each lane after the first starts from a jump (256 steps
 * of the generator) instead of where the previous resample ended.
 */
#define WINS_LANES 4
#define WINS_LANES_MIN_DRAWS 2048

#if defined(__x86_64__) && defined(__GNUC__)
#define WINS_HAVE_AVX2 1
#include <immintrin.h>

/* x rotated left by k bits in each 64-bit lane. */
#define ROTL64X4(x, k) _mm256_or_si256(_mm256_slli_epi64((x), (k)), _mm256_srli_epi64((x), 64 - (k)))

/* A lane's campaign sums (A's, B's) added, as absolute errors, to its totals. */
__attribute__((target("avx2"))) static inline void add_lane_error(__m128d sum, double *err_a,
								  double *err_b)
{
	double sums[2];

	_mm_storeu_pd(sums, sum);
	*err_a += fabs(sums[0]);
	*err_b += fabs(sums[1]);
}

/*
 * b_wins_resample for WINS_LANES resamples at once, lane l drawing from
 * lane[l] (each left where its resample ends), on AVX2: rng_next and
 * rng_below of the four lanes in one 256-bit register each step (the same
 * 64-bit arithmetic: *5 and *9 as shifts and adds, Lemire's product of two
 * 32-bit halves exactly), and each lane's (sum_a, sum_b) one 128-bit add
 * of its user's pair, which rounds as the two scalar adds do. So the same
 * draws and sums, in the same order, as b_wins_resample on each lane
 * alone: the same verdicts to the bit. b_wins_resample's loop is 20
 * instructions a draw (gcc 12 -O2), this one 33 for four draws:
 * bench/paired_bootstrap.sh.
 */
__attribute__((target("avx2"))) static void b_wins_lanes_avx2(struct rng lane[WINS_LANES],
							       const struct resid_pair *resid,
							       const size_t *group_start,
							       size_t n_groups,
							       unsigned char *won)
{
	__m256i s0 = _mm256_set_epi64x((long long)lane[3].s[0], (long long)lane[2].s[0],
				       (long long)lane[1].s[0], (long long)lane[0].s[0]);
	__m256i s1 = _mm256_set_epi64x((long long)lane[3].s[1], (long long)lane[2].s[1],
				       (long long)lane[1].s[1], (long long)lane[0].s[1]);
	__m256i s2 = _mm256_set_epi64x((long long)lane[3].s[2], (long long)lane[2].s[2],
				       (long long)lane[1].s[2], (long long)lane[0].s[2]);
	__m256i s3 = _mm256_set_epi64x((long long)lane[3].s[3], (long long)lane[2].s[3],
				       (long long)lane[1].s[3], (long long)lane[0].s[3]);
	double err_a[WINS_LANES] = { 0 }, err_b[WINS_LANES] = { 0 };
	uint64_t s_out[4][WINS_LANES];

	for (size_t g = 0; g < n_groups; g++) {
		const size_t first = group_start[g] - group_start[0], n = group_start[g + 1] - group_start[g];
		const char *grp = (const char *)(resid + first);
		const __m256i nv = _mm256_set1_epi64x((long long)n);
		__m128d sum0 = _mm_setzero_pd(), sum1 = _mm_setzero_pd();
		__m128d sum2 = _mm_setzero_pd(), sum3 = _mm_setzero_pd();

		for (size_t k = 0; k < n; k++) {
			/* rng_next: rotl(s1 * 5, 7) * 9, then the state's step */
			const __m256i x5 = _mm256_add_epi64(_mm256_slli_epi64(s1, 2), s1);
			const __m256i r7 = ROTL64X4(x5, 7);
			const __m256i out = _mm256_add_epi64(_mm256_slli_epi64(r7, 3), r7);
			const __m256i t = _mm256_slli_epi64(s1, 17);
			/* rng_below: (out >> 32) * n >> 32, here as a byte offset of a pair */
			const __m256i off = _mm256_slli_epi64(
				_mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(out, 32), nv), 32), 4);
			uint64_t at[WINS_LANES];

			s2 = _mm256_xor_si256(s2, s0);
			s3 = _mm256_xor_si256(s3, s1);
			s1 = _mm256_xor_si256(s1, s2);
			s0 = _mm256_xor_si256(s0, s3);
			s2 = _mm256_xor_si256(s2, t);
			s3 = ROTL64X4(s3, 45);
			_mm256_storeu_si256((__m256i *)at, off);
			sum0 = _mm_add_pd(sum0, _mm_loadu_pd((const double *)(grp + at[0])));
			sum1 = _mm_add_pd(sum1, _mm_loadu_pd((const double *)(grp + at[1])));
			sum2 = _mm_add_pd(sum2, _mm_loadu_pd((const double *)(grp + at[2])));
			sum3 = _mm_add_pd(sum3, _mm_loadu_pd((const double *)(grp + at[3])));
		}
		add_lane_error(sum0, &err_a[0], &err_b[0]);
		add_lane_error(sum1, &err_a[1], &err_b[1]);
		add_lane_error(sum2, &err_a[2], &err_b[2]);
		add_lane_error(sum3, &err_a[3], &err_b[3]);
	}
	_mm256_storeu_si256((__m256i *)s_out[0], s0);
	_mm256_storeu_si256((__m256i *)s_out[1], s1);
	_mm256_storeu_si256((__m256i *)s_out[2], s2);
	_mm256_storeu_si256((__m256i *)s_out[3], s3);
	for (int l = 0; l < WINS_LANES; l++) {
		for (int w = 0; w < 4; w++)
			lane[l].s[w] = s_out[w][l];
		won[l] = err_b[l] < err_a[l];
	}
}
#else
#define WINS_HAVE_AVX2 0
#endif

/* Whether b_wins_lanes has a faster path than one lane after another here. */
static int wins_lanes_fast(void)
{
#if WINS_HAVE_AVX2
	return __builtin_cpu_supports("avx2");
#else
	return 0;
#endif
}

/* WINS_LANES resamples, lane l from lane[l] (each left where its resample ends). */
static void b_wins_lanes(struct rng lane[WINS_LANES], const struct resid_pair *resid,
			 const size_t *group_start, size_t n_groups, unsigned char *won)
{
#if WINS_HAVE_AVX2
	if (wins_lanes_fast()) {
		b_wins_lanes_avx2(lane, resid, group_start, n_groups, won);
		return;
	}
#endif
	for (int l = 0; l < WINS_LANES; l++)
		won[l] = (unsigned char)b_wins_resample(&lane[l], resid, group_start, n_groups);
}

/*
 * won[0..n) for the n resamples that start at *r's state, leaving *r where
 * the last one ends. With a jump of one resample's draws (one_resample not
 * NULL), WINS_LANES of them at a time, each lane jumped ahead to its own.
 */
static void draw_resamples(struct rng *r, const struct resid_pair *resid, const size_t *group_start,
			   size_t n_groups, const struct rng_jump *one_resample, size_t n,
			   unsigned char *won)
{
	size_t b = 0;

	if (one_resample)
		for (; b + WINS_LANES <= n; b += WINS_LANES) {
			struct rng lane[WINS_LANES];

			lane[0] = *r;
			for (int l = 1; l < WINS_LANES; l++) {
				lane[l] = lane[l - 1];
				rng_jump(&lane[l], one_resample);
			}
			b_wins_lanes(lane, resid, group_start, n_groups, won + b);
			*r = lane[WINS_LANES - 1];
		}
	for (; b < n; b++)
		won[b] = (unsigned char)b_wins_resample(r, resid, group_start, n_groups);
}

double paired_bootstrap_win_share(const double *resid_a, const double *resid_b,
				  const size_t *group_start, size_t n_groups, size_t n_resamples,
				  uint64_t seed)
{
	struct resid_pair *resid;
	struct rng r;
	size_t wins = 0;

	if (n_resamples == 0 || group_start[n_groups] == group_start[0])
		return 0;
	resid = resid_pairs(resid_a, resid_b, group_start, n_groups);
	rng_seed(&r, seed, 0);
	for (size_t b = 0; b < n_resamples; b++)
		wins += (size_t)b_wins_resample(&r, resid, group_start, n_groups);
	free(resid);
	return (double)wins / (double)n_resamples;
}

/* Resamples each thread draws per round of the parallel paired_bootstrap_wins. */
#define WINS_CHUNK 8
/* Draws per resample below which one thread decides (a round costs more than it saves). */
#define WINS_PARALLEL_MIN_DRAWS 16384

/*
 * paired_bootstrap_wins' rule before resample b, when the first b won
 * `wins`: 1 or 0 once settled (every resample left won, or none needed,
 * cannot change the verdict), -1 when not yet.
 */
static int settled_before(size_t b, size_t wins, size_t n_resamples, double min_share)
{
	if ((double)(wins + n_resamples - b) / (double)n_resamples < min_share)
		return 0;
	if ((double)wins / (double)n_resamples >= min_share)
		return 1;
	return -1;
}

/*
 * The verdict from resamples won[0..n) in order, where the first b0 of all
 * resamples won *wins: settled_before's, before each of them, or -1.
 */
static int wins_settled(const unsigned char *won, size_t n, size_t b0, size_t *wins,
			size_t n_resamples, double min_share)
{
	for (size_t b = b0; b < b0 + n; b++) {
		const int verdict = settled_before(b, *wins, n_resamples, min_share);

		if (verdict >= 0)
			return verdict;
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
static int wins_parallel(const struct resid_pair *resid, const size_t *group_start,
			 size_t n_groups, size_t n_resamples, struct rng *r, double min_share,
			 int n_threads)
{
	const size_t per_round = (size_t)n_threads * WINS_CHUNK;
	const uint64_t draws = group_start[n_groups] - group_start[0];
	unsigned char *won = xmalloc(per_round);
	struct rng_jump chunk, one;
	const struct rng_jump *lanes = wins_lanes_fast() ? &one : NULL;
	size_t wins = 0;
	int verdict = -1;

	rng_jump_of(draws * WINS_CHUNK, &chunk);
	rng_jump_of(draws, &one);
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
				const size_t b = c * WINS_CHUNK, k = n - b < WINS_CHUNK ? n - b : WINS_CHUNK;
				struct rng own = *r;

				for (size_t j = 0; j < c; j++)
					rng_jump(&own, &chunk);
				draw_resamples(&own, resid, group_start, n_groups, lanes, k, won + b);
				if (b + k >= n)
					next = own;
			}
		}
		*r = next;
		verdict = wins_settled(won, n, b0, &wins, n_resamples, min_share);
	}
	free(won);
	return verdict >= 0 ? verdict : (double)wins / (double)n_resamples >= min_share;
}

/*
 * One thread: WINS_LANES resamples at a time when they are long enough
 * (else one), the verdict checked before each block is drawn and read off
 * its resamples in order, so at most WINS_LANES - 1 are drawn past where
 * it settled.
 */
static int wins_serial(const struct resid_pair *resid, const size_t *group_start,
		       size_t n_groups, size_t n_resamples, struct rng *r, double min_share)
{
	const uint64_t draws = group_start[n_groups] - group_start[0];
	const size_t step = draws >= WINS_LANES_MIN_DRAWS && wins_lanes_fast() ? WINS_LANES : 1;
	unsigned char won[WINS_LANES];
	struct rng_jump one;
	size_t wins = 0;

	if (step > 1)
		rng_jump_of(draws, &one);
	for (size_t b0 = 0; b0 < n_resamples; b0 += step) {
		const size_t n = n_resamples - b0 < step ? n_resamples - b0 : step;
		int verdict = settled_before(b0, wins, n_resamples, min_share);

		if (verdict >= 0)
			return verdict;
		draw_resamples(r, resid, group_start, n_groups, step > 1 ? &one : NULL, n, won);
		verdict = wins_settled(won, n, b0, &wins, n_resamples, min_share);
		if (verdict >= 0)
			return verdict;
	}
	return (double)wins / (double)n_resamples >= min_share;
}

int paired_bootstrap_wins(const double *resid_a, const double *resid_b, const size_t *group_start,
			  size_t n_groups, size_t n_resamples, uint64_t seed, double min_share,
			  int n_threads)
{
	struct resid_pair *resid;
	struct rng r;
	int verdict;

	if (n_resamples == 0 || group_start[n_groups] == group_start[0])
		return 0 >= min_share;
	resid = resid_pairs(resid_a, resid_b, group_start, n_groups);
	rng_seed(&r, seed, 0);
	if (n_threads > 1 && group_start[n_groups] - group_start[0] >= WINS_PARALLEL_MIN_DRAWS)
		verdict = wins_parallel(resid, group_start, n_groups, n_resamples, &r, min_share,
					n_threads);
	else
		verdict = wins_serial(resid, group_start, n_groups, n_resamples, &r, min_share);
	free(resid);
	return verdict;
}
