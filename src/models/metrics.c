/*
 * The accuracy metrics evaluate reports (definitions, NaN and tie rules in
 * include/ltv/metrics.h). Every metric first copies the usable rows out, so
 * the NaN policy lives in one place (collect_rows), then works on dense
 * arrays. Ranking metrics sort (value, row) pairs, the row index breaking
 * ties, so every result is a function of the input alone.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/metrics.h"

struct keyed {
	double key;
	size_t idx;
};

static int cmp_keyed_asc(const void *pa, const void *pb)
{
	const struct keyed *a = pa, *b = pb;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_keyed_desc(const void *pa, const void *pb)
{
	const struct keyed *a = pa, *b = pb;

	if (a->key != b->key)
		return a->key > b->key ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Below this many rows qsort is as quick as the radix sort's passes. */
#define RADIX_MIN_ROWS 1024
/*
 * 11-bit digits: six passes over the 64 bits instead of eight byte passes,
 * with counts (2048 per pass) that still sit in cache. Any digit width sorts
 * to the same permutation.
 */
#define RADIX_BITS 11
#define RADIX_BUCKETS (1 << RADIX_BITS)
#define RADIX_PASSES ((64 + RADIX_BITS - 1) / RADIX_BITS)
#define RADIX_DIGIT(b, p) ((size_t)((b) >> (RADIX_BITS * (p))) & (RADIX_BUCKETS - 1))

/*
 * A double as an unsigned integer in the same order (descending: the
 * reverse order); -0 as +0, since the comparators call them equal.
 */
static uint64_t order_bits(double v, int descending)
{
	uint64_t b;

	if (v == 0)
		v = 0; /* -0.0 -> +0.0 */
	memcpy(&b, &v, sizeof(b));
	b = b >> 63 ? ~b : b | (uint64_t)1 << 63;
	return descending ? ~b : b;
}

/* The radix sort's items are keyed rows whose key field holds order_bits while sorting. */
static uint64_t item_bits(const struct keyed *it)
{
	uint64_t b;

	memcpy(&b, &it->key, sizeof(b));
	return b;
}

/*
 * key's rows into order[], sorted as cmp_keyed_asc/desc sort them, by a
 * stable LSD radix sort on order_bits (rows enter in index order, so ties
 * stay by row index, the comparators' tie-break): the same permutation,
 * without qsort's O(m log m) indirect comparisons (select's rank share ranks
 * half a million validation rows per method and tier). The passes move
 * (bits, row) items between order and one buffer of the same size: 32 bytes
 * a row, where separate bit and index arrays beside order were 48 (select's
 * rank share sorts up to 700,000 rows on each thread at 1,000,000 users).
 * Returns 0, order's contents undefined, when a key is NaN (no consistent
 * order: qsort then does what it always did).
 */
static int radix_sort_keyed(const double *key, size_t m, int descending, struct keyed *order)
{
	struct keyed *buf = xmalloc((m ? m : 1) * sizeof(*buf)), *from = order, *to = buf, *t;
	size_t (*count)[RADIX_BUCKETS] = xcalloc(RADIX_PASSES, sizeof(*count));
	int ok = 1;

	for (size_t i = 0; i < m && ok; i++) {
		const uint64_t b = order_bits(key[i], descending);

		ok = !isnan(key[i]);
		memcpy(&order[i].key, &b, sizeof(b));
		order[i].idx = i;
		for (int p = 0; p < RADIX_PASSES; p++)
			count[p][RADIX_DIGIT(b, p)]++;
	}
	for (int p = 0; p < RADIX_PASSES && ok; p++) {
		size_t at = 0;

		if (count[p][RADIX_DIGIT(item_bits(&from[0]), p)] == m)
			continue; /* every row has the same digit here: the pass would move none */
		for (int d = 0; d < RADIX_BUCKETS; d++) {
			const size_t c = count[p][d];

			count[p][d] = at;
			at += c;
		}
		for (size_t i = 0; i < m; i++)
			to[count[p][RADIX_DIGIT(item_bits(&from[i]), p)]++] = from[i];
		t = from, from = to, to = t;
	}
	if (ok && from != order)
		memcpy(order, from, m * sizeof(*order));
	for (size_t i = 0; i < m && ok; i++)
		order[i].key = key[order[i].idx];
	free(buf);
	free(count);
	return ok;
}

/* Returns key's rows sorted (caller frees); equal keys stay in row order. */
static struct keyed *sort_rows(const double *key, size_t m, int descending)
{
	struct keyed *order = xmalloc((m ? m : 1) * sizeof(*order));

	if (m >= RADIX_MIN_ROWS && radix_sort_keyed(key, m, descending, order))
		return order;
	for (size_t i = 0; i < m; i++) {
		order[i].key = key[i];
		order[i].idx = i;
	}
	qsort(order, m, sizeof(*order), descending ? cmp_keyed_desc : cmp_keyed_asc);
	return order;
}

void metrics_sort_order(const double *key, size_t n, int descending, size_t *out_idx)
{
	struct keyed *order = sort_rows(key, n, descending);

	for (size_t k = 0; k < n; k++)
		out_idx[k] = order[k].idx;
	free(order);
}

/*
 * Copies the rows where neither value is NaN into new arrays (caller frees
 * both, also on failure they are NULL). An infinity, or no usable row, is an
 * error naming the metric.
 */
static int collect_rows(const char *metric, const double *actual, const double *pred, size_t n,
			double **out_actual, double **out_pred, size_t *out_m,
			struct ltv_err *err)
{
	double *a = xmalloc(n * sizeof(*a));
	double *p = xmalloc(n * sizeof(*p));
	size_t m = 0;
	int ret = 0;

	*out_actual = NULL;
	*out_pred = NULL;
	for (size_t i = 0; i < n; i++) {
		if (isnan(actual[i]) || isnan(pred[i]))
			continue;
		if (isinf(actual[i]) || isinf(pred[i])) {
			ret = err_set(err, LTV_EINVAL,
				      "%s: row %zu has an infinite %s value; predictions and labels must be finite",
				      metric, i, isinf(actual[i]) ? "actual" : "predicted");
			goto out;
		}
		a[m] = actual[i];
		p[m] = pred[i];
		m++;
	}
	if (m == 0) {
		ret = err_set(err, LTV_EINVAL,
			      "%s: no row has both an actual and a predicted value (%zu rows, all NaN or none)",
			      metric, n);
		goto out;
	}
	*out_actual = a;
	*out_pred = p;
	*out_m = m;
	a = NULL;
	p = NULL;
out:
	free(a);
	free(p);
	return ret;
}

static void set_used(size_t *out_n_used, size_t m)
{
	if (out_n_used)
		*out_n_used = m;
}

int metrics_wape(const double *actual, const double *pred, size_t n,
		 double *out_wape, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p;
	double abs_err = 0, abs_actual = 0;
	size_t m;
	int ret;

	ret = collect_rows("wape", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < m; i++) {
		abs_err += fabs(a[i] - p[i]);
		abs_actual += fabs(a[i]);
	}
	*out_wape = abs_actual > 0 ? abs_err / abs_actual : NAN;
	set_used(out_n_used, m);
	free(a);
	free(p);
	return 0;
}

int metrics_bias(const double *actual, const double *pred, size_t n,
		 double *out_bias, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p;
	double sum_a = 0, sum_p = 0;
	size_t m;
	int ret;

	ret = collect_rows("bias", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < m; i++) {
		sum_a += a[i];
		sum_p += p[i];
	}
	*out_bias = sum_a != 0 ? (sum_p - sum_a) / sum_a : NAN;
	set_used(out_n_used, m);
	free(a);
	free(p);
	return 0;
}

int metrics_campaign_wape(const double *actual, const double *pred, const size_t *group,
			  size_t n, size_t n_groups, size_t min_count,
			  struct metrics_campaign *out, struct ltv_err *err)
{
	double *sum_a = NULL, *sum_p = NULL;
	size_t *count = NULL;
	double abs_err = 0, abs_a = 0, tot_a = 0, tot_p = 0;
	size_t n_used = 0;
	int ret = 0;

	out->wape = NAN;
	out->bias = NAN;
	out->n_groups = 0;
	out->n_groups_small = 0;
	out->n_rows = 0;
	out->n_rows_nan = 0;
	if (min_count == 0)
		min_count = 1;
	sum_a = xcalloc(n_groups, sizeof(*sum_a));
	sum_p = xcalloc(n_groups, sizeof(*sum_p));
	count = xcalloc(n_groups, sizeof(*count));

	for (size_t i = 0; i < n; i++) {
		if (group[i] >= n_groups) {
			ret = err_set(err, LTV_EINVAL,
				      "campaign wape: row %zu has group id %zu, but there are only %zu groups",
				      i, group[i], n_groups);
			goto out;
		}
		if (isnan(actual[i]) || isnan(pred[i])) {
			out->n_rows_nan++;
			continue;
		}
		if (isinf(actual[i]) || isinf(pred[i])) {
			ret = err_set(err, LTV_EINVAL,
				      "campaign wape: row %zu has an infinite %s value; predictions and labels must be finite",
				      i, isinf(actual[i]) ? "actual" : "predicted");
			goto out;
		}
		sum_a[group[i]] += actual[i];
		sum_p[group[i]] += pred[i];
		count[group[i]]++;
		n_used++;
	}
	if (n_used == 0) {
		ret = err_set(err, LTV_EINVAL,
			      "campaign wape: no row has both an actual and a predicted value (%zu rows, all NaN or none)",
			      n);
		goto out;
	}
	for (size_t g = 0; g < n_groups; g++) {
		if (count[g] == 0)
			continue;
		if (count[g] < min_count) {
			out->n_groups_small++;
			continue;
		}
		abs_err += fabs(sum_a[g] - sum_p[g]);
		abs_a += fabs(sum_a[g]);
		tot_a += sum_a[g];
		tot_p += sum_p[g];
		out->n_groups++;
		out->n_rows += count[g];
	}
	if (out->n_groups > 0) {
		out->wape = abs_a > 0 ? abs_err / abs_a : NAN;
		out->bias = tot_a != 0 ? (tot_p - tot_a) / tot_a : NAN;
	}
out:
	free(sum_a);
	free(sum_p);
	free(count);
	return ret;
}

/*
 * Vertices of the gain curve for ranking by key (highest first): one vertex
 * per run of equal keys, so tied rows form one straight segment. vx, vy
 * must hold m + 1 entries; returns the number of vertices written, starting
 * with (0, 0). total is sum actual, > 0.
 */
static size_t gain_vertices(const double *actual, const double *key, size_t m, double total,
			    double *vx, double *vy)
{
	struct keyed *order = sort_rows(key, m, 1);
	double cum = 0;
	size_t n_vertices = 1;
	size_t i = 0;

	assert(total > 0);
	vx[0] = 0;
	vy[0] = 0;
	while (i < m) {
		size_t j = i;

		while (j < m && order[j].key == order[i].key)
			cum += actual[order[j++].idx];
		vx[n_vertices] = (double)j / (double)m;
		vy[n_vertices] = cum / total;
		n_vertices++;
		i = j;
	}
	free(order);
	return n_vertices;
}

static double sum_of(const double *v, size_t m)
{
	double s = 0;

	for (size_t i = 0; i < m; i++)
		s += v[i];
	return s;
}

/* Gini of ranking actual by key (see metrics_gini); NaN when total <= 0. */
static double gini_by(const double *actual, const double *key, size_t m)
{
	const double total = sum_of(actual, m);
	double *vx, *vy;
	double area = 0;
	size_t n_vertices;

	if (!(total > 0))
		return NAN;
	vx = xmalloc((m + 1) * sizeof(*vx));
	vy = xmalloc((m + 1) * sizeof(*vy));
	n_vertices = gain_vertices(actual, key, m, total, vx, vy);
	for (size_t k = 1; k < n_vertices; k++)
		area += (vx[k] - vx[k - 1]) * (vy[k] + vy[k - 1]) / 2;
	free(vx);
	free(vy);
	return 2 * area - 1;
}

int metrics_gini(const double *actual, const double *pred, size_t n,
		 double *out_gini, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p;
	size_t m;
	int ret;

	ret = collect_rows("gini", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	*out_gini = gini_by(a, p, m);
	set_used(out_n_used, m);
	free(a);
	free(p);
	return 0;
}

/* One group's gain curve, walked vertex by vertex (gini_by's arithmetic, in its order). */
struct gini_walk {
	size_t m, j;      /* the group's rows; rows walked so far */
	double total, cum, vx, vy, area, run_key;
	int open;         /* a run of equal keys is being walked */
};

static void gini_walk_vertex(struct gini_walk *w)
{
	const double vx = (double)w->j / (double)w->m, vy = w->cum / w->total;

	w->area += (vx - w->vx) * (vy + w->vy) / 2;
	w->vx = vx;
	w->vy = vy;
}

static void gini_walk_row(struct gini_walk *w, double key, double actual)
{
	if (w->open && key != w->run_key)
		gini_walk_vertex(w);
	if (!w->open || key != w->run_key)
		w->run_key = key;
	w->open = 1;
	w->cum += actual;
	w->j++;
}

/*
 * Runs of consecutive copies of a row (the same key, actual and group, bit
 * for bit) as one item each: run_first[r] is its first row, run_len[r] its
 * length; returns the number of runs. Select's validation rows come once per
 * user a weighted row stands for (466,813 target rows from 104,841 at
 * 1,000,000 users): the sort then orders the distinct rows only. Copies of a
 * row are neighbours in the order of all rows too (equal keys stay by row
 * index), so walking each run's rows in turn is the same walk.
 */
static size_t row_runs(const double *actual, const double *key, const int *group, size_t n,
		       size_t *run_first, size_t *run_len)
{
	size_t n_runs = 0;

	for (size_t i = 0; i < n; i++) {
		if (n_runs > 0) {
			const size_t f = run_first[n_runs - 1];

			if (memcmp(&key[i], &key[f], sizeof(double)) == 0 &&
			    memcmp(&actual[i], &actual[f], sizeof(double)) == 0 && group[i] == group[f]) {
				run_len[n_runs - 1]++;
				continue;
			}
		}
		run_first[n_runs] = i;
		run_len[n_runs++] = 1;
	}
	return n_runs;
}

/*
 * What the walk reads of a run, side by side: it visits the runs in key
 * order, which is random in row order, and reading run_first, run_len,
 * actual and group there were four cache misses a run (select's rank share
 * walks up to 470,000 rows per method and horizon, misses most of its time).
 */
struct walk_run {
	double actual;
	size_t len;
	int group;
};

/* How far ahead of the walk a run is fetched: a few misses in flight. */
#define WALK_PREFETCH 8

int metrics_gini_groups(const double *actual, const double *key, const int *group, size_t n,
			int n_groups, double *out_gini)
{
	struct gini_walk *w;
	struct keyed *order;
	struct walk_run *runs;
	size_t *run_first, *run_len, n_runs;
	double *run_key;

	for (size_t i = 0; i < n; i++)
		if (!isfinite(actual[i]) || !isfinite(key[i]) || group[i] < 1 || group[i] >= n_groups)
			return -1;
	w = xcalloc((size_t)n_groups, sizeof(*w));
	/* totals in row order, as sum_of adds them */
	for (size_t i = 0; i < n; i++) {
		w[0].total += actual[i];
		w[0].m++;
		w[group[i]].total += actual[i];
		w[group[i]].m++;
	}
	run_first = xmalloc((n ? n : 1) * sizeof(*run_first));
	run_len = xmalloc((n ? n : 1) * sizeof(*run_len));
	n_runs = row_runs(actual, key, group, n, run_first, run_len);
	run_key = xmalloc((n_runs ? n_runs : 1) * sizeof(*run_key));
	runs = xmalloc((n_runs ? n_runs : 1) * sizeof(*runs));
	for (size_t r = 0; r < n_runs; r++) {
		const size_t i = run_first[r];

		run_key[r] = key[i];
		runs[r] = (struct walk_run){ .actual = actual[i], .len = run_len[r], .group = group[i] };
	}
	free(run_first);
	free(run_len);
	order = sort_rows(run_key, n_runs, 1);
	for (size_t k = 0; k < n_runs; k++) {
		const struct walk_run *u = &runs[order[k].idx];

		if (k + WALK_PREFETCH < n_runs)
			__builtin_prefetch(&runs[order[k + WALK_PREFETCH].idx]);
		for (size_t c = 0; c < u->len; c++) {
			gini_walk_row(&w[0], order[k].key, u->actual);
			gini_walk_row(&w[u->group], order[k].key, u->actual);
		}
	}
	for (int g = 0; g < n_groups; g++) {
		out_gini[g] = NAN;
		if (w[g].m == 0 || !(w[g].total > 0))
			continue;
		gini_walk_vertex(&w[g]);
		out_gini[g] = 2 * w[g].area - 1;
	}
	free(order);
	free(run_key);
	free(runs);
	free(w);
	return 0;
}

int metrics_normalized_gini(const double *actual, const double *pred, size_t n,
			    double *out_gini, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p;
	double model, perfect;
	size_t m;
	int ret;

	ret = collect_rows("normalized gini", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	model = gini_by(a, p, m);
	perfect = gini_by(a, a, m);
	/* perfect is NaN, or exactly 0 when every actual is equal (one segment). */
	*out_gini = perfect > 0 ? model / perfect : NAN;
	set_used(out_n_used, m);
	free(a);
	free(p);
	return 0;
}

int metrics_gain_curve(const double *actual, const double *pred, size_t n, size_t n_points,
		       double *out_x, double *out_y, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p, *vx = NULL, *vy = NULL;
	double total;
	size_t m, n_vertices, seg = 0;
	int ret;

	if (n_points < 2)
		return err_set(err, LTV_EINVAL, "gain curve: asked for %zu points; at least 2 are needed",
			       n_points);
	ret = collect_rows("gain curve", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	total = sum_of(a, m);
	for (size_t k = 0; k < n_points; k++) {
		out_x[k] = (double)k / (double)(n_points - 1);
		out_y[k] = NAN;
	}
	if (!(total > 0))
		goto out;
	vx = xmalloc((m + 1) * sizeof(*vx));
	vy = xmalloc((m + 1) * sizeof(*vy));
	n_vertices = gain_vertices(a, p, m, total, vx, vy);
	for (size_t k = 0; k < n_points; k++) {
		const double t = out_x[k];

		while (seg + 2 < n_vertices && vx[seg + 1] < t)
			seg++;
		/* vx is strictly increasing: every vertex closes a non-empty run. */
		out_y[k] = vy[seg] + (t - vx[seg]) / (vx[seg + 1] - vx[seg]) * (vy[seg + 1] - vy[seg]);
	}
out:
	set_used(out_n_used, m);
	free(vx);
	free(vy);
	free(a);
	free(p);
	return 0;
}

/* Ranks 1..m of v into out_rank, tied values sharing their average rank. */
static void average_ranks(const double *v, size_t m, double *out_rank)
{
	struct keyed *order = sort_rows(v, m, 0);
	size_t i = 0;

	while (i < m) {
		size_t j = i;
		double rank;

		while (j < m && order[j].key == order[i].key)
			j++;
		/* Positions i..j-1 hold ranks i+1..j, whose mean is (i + 1 + j) / 2. */
		rank = ((double)i + 1 + (double)j) / 2;
		for (size_t k = i; k < j; k++)
			out_rank[order[k].idx] = rank;
		i = j;
	}
	free(order);
}

int metrics_spearman(const double *actual, const double *pred, size_t n,
		     double *out_rho, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p, *ra, *rp;
	double mean, cov = 0, var_a = 0, var_p = 0;
	size_t m;
	int ret;

	ret = collect_rows("spearman", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	ra = xmalloc(m * sizeof(*ra));
	rp = xmalloc(m * sizeof(*rp));
	average_ranks(a, m, ra);
	average_ranks(p, m, rp);
	/* Average ranks always have mean (m + 1) / 2. */
	mean = ((double)m + 1) / 2;
	for (size_t i = 0; i < m; i++) {
		cov += (ra[i] - mean) * (rp[i] - mean);
		var_a += (ra[i] - mean) * (ra[i] - mean);
		var_p += (rp[i] - mean) * (rp[i] - mean);
	}
	*out_rho = var_a > 0 && var_p > 0 ? cov / sqrt(var_a * var_p) : NAN;
	set_used(out_n_used, m);
	free(ra);
	free(rp);
	free(a);
	free(p);
	return 0;
}

/*
 * log1p(x), or *last_log when x has *last's bits (then the same value):
 * select's validation rows repeat a weighted row once per user it stands
 * for, one copy after another (466,813 target rows from 104,841 at
 * 1,000,000 users), and log1p of each copy was 5 % of select's CPU.
 */
static double log1p_repeated(double x, uint64_t *last, double *last_log)
{
	uint64_t bits;

	memcpy(&bits, &x, sizeof(bits));
	if (bits != *last) {
		*last = bits;
		*last_log = log1p(x);
	}
	return *last_log;
}

/* metrics_rmsle, with log1p(actual[i]) read from log_actual[i] when it is not NULL. */
static int rmsle(const double *actual, const double *log_actual, const double *pred, size_t n,
		 double *out_rmsle, size_t *out_n_used, struct ltv_err *err)
{
	double sum_sq = 0, last_log = log1p(0.0);
	uint64_t last = 0; /* +0's bits */
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		double d;

		if (isnan(actual[i]) || isnan(pred[i]))
			continue;
		if (isinf(actual[i]) || isinf(pred[i]))
			return err_set(err, LTV_EINVAL,
				       "rmsle: row %zu has an infinite %s value; predictions and labels must be finite",
				       i, isinf(actual[i]) ? "actual" : "predicted");
		if (actual[i] < 0 || pred[i] < 0)
			return err_set(err, LTV_EINVAL,
				       "rmsle: row %zu has a negative %s value (%g); rmsle needs values >= 0",
				       i, actual[i] < 0 ? "actual" : "predicted",
				       actual[i] < 0 ? actual[i] : pred[i]);
		d = log1p_repeated(pred[i], &last, &last_log) - (log_actual ? log_actual[i] : log1p(actual[i]));
		sum_sq += d * d;
		m++;
	}
	if (m == 0)
		return err_set(err, LTV_EINVAL,
			       "rmsle: no row has both an actual and a predicted value (%zu rows, all NaN or none)",
			       n);
	*out_rmsle = sqrt(sum_sq / (double)m);
	set_used(out_n_used, m);
	return 0;
}

int metrics_rmsle(const double *actual, const double *pred, size_t n,
		  double *out_rmsle, size_t *out_n_used, struct ltv_err *err)
{
	return rmsle(actual, NULL, pred, n, out_rmsle, out_n_used, err);
}

int metrics_rmsle_logged(const double *actual, const double *log_actual, const double *pred,
			 size_t n, double *out_rmsle, size_t *out_n_used, struct ltv_err *err)
{
	return rmsle(actual, log_actual, pred, n, out_rmsle, out_n_used, err);
}

int metrics_decile_mape(const double *actual, const double *pred, size_t n,
			struct metrics_deciles *out, size_t *out_n_used, struct ltv_err *err)
{
	double *a, *p;
	struct keyed *order;
	double sum_a[METRICS_N_DECILES] = { 0 }, sum_p[METRICS_N_DECILES] = { 0 };
	double sum_ape = 0;
	size_t m;
	int ret;

	ret = collect_rows("decile mape", actual, pred, n, &a, &p, &m, err);
	if (ret < 0)
		return ret;
	order = sort_rows(p, m, 0);
	for (int d = 0; d < METRICS_N_DECILES; d++)
		out->count[d] = 0;
	for (size_t j = 0; j < m; j++) {
		const size_t d = j * METRICS_N_DECILES / m;

		sum_a[d] += a[order[j].idx];
		sum_p[d] += p[order[j].idx];
		out->count[d]++;
	}
	out->n_deciles = 0;
	for (int d = 0; d < METRICS_N_DECILES; d++) {
		out->mean_pred[d] = NAN;
		out->mean_actual[d] = NAN;
		out->ape[d] = NAN;
		if (out->count[d] == 0)
			continue;
		out->mean_pred[d] = sum_p[d] / (double)out->count[d];
		out->mean_actual[d] = sum_a[d] / (double)out->count[d];
		if (out->mean_actual[d] == 0)
			continue;
		out->ape[d] = fabs(out->mean_pred[d] - out->mean_actual[d]) / fabs(out->mean_actual[d]);
		sum_ape += out->ape[d];
		out->n_deciles++;
	}
	out->mape = out->n_deciles ? sum_ape / (double)out->n_deciles : NAN;
	set_used(out_n_used, m);
	free(order);
	free(a);
	free(p);
	return 0;
}

int metrics_auc(const double *labels, const double *scores, size_t n,
		double *out_auc, size_t *out_n_used, struct ltv_err *err)
{
	double *y, *s, *rank;
	double rank_sum = 0, n_pos = 0, n_neg;
	size_t m;
	int ret;

	for (size_t i = 0; i < n; i++)
		if (!isnan(labels[i]) && !isnan(scores[i]) && labels[i] != 0 && labels[i] != 1)
			return err_set(err, LTV_EINVAL, "auc: row %zu has label %g; labels must be 0 or 1",
				       i, labels[i]);
	ret = collect_rows("auc", labels, scores, n, &y, &s, &m, err);
	if (ret < 0)
		return ret;
	rank = xmalloc(m * sizeof(*rank));
	average_ranks(s, m, rank);
	for (size_t i = 0; i < m; i++) {
		if (y[i] == 1) {
			rank_sum += rank[i];
			n_pos++;
		}
	}
	n_neg = (double)m - n_pos;
	/* U = R_pos - n_pos (n_pos + 1) / 2 counts the (pos, neg) pairs in order. */
	*out_auc = n_pos > 0 && n_neg > 0
		? (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
		: NAN;
	set_used(out_n_used, m);
	free(rank);
	free(y);
	free(s);
	return 0;
}
