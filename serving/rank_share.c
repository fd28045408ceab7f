/*
 * Ranking within campaigns: the chosen method's level, the best ranking
 * method's order of users (contract in include/ltv/rank_share.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/metrics.h"
#include "ltv/model_data.h"
#include "ltv/rank_share.h"

#define SHARE_KEY_MAX 1024

static void share_key(const char *app, const char *campaign, char *buf, size_t size)
{
	snprintf(buf, size, "%s\x1f%s", app, campaign);
}

void rank_share_init(struct rank_share *s)
{
	memset(s, 0, sizeof(*s));
	for (int t = 0; t < 4; t++) {
		s->ranker[t] = -1;
		s->gini[t] = NAN;
		for (int m = 0; m < METHOD_COUNT; m++)
			for (int c = 0; c < RANK_SHARE_MAX_CELLS; c++)
				s->tier_ratio[t][m][c] = NAN;
	}
	s->n_cells = 1;
	strmap_init(&s->cohort);
}

void rank_share_release(struct rank_share *s)
{
	for (size_t k = 0; k < s->n_cohorts; k++) {
		free(s->cohort_app[k]);
		free(s->cohort_campaign[k]);
	}
	free(s->cohort_app);
	free(s->cohort_campaign);
	free(s->cohort_ratio);
	strmap_release(&s->cohort);
	memset(s, 0, sizeof(*s));
}

/* Back to an empty share (rank_share_init's state), for a fit or a load over an old one. */
static void rank_share_reset(struct rank_share *s)
{
	rank_share_release(s);
	rank_share_init(s);
}

static void add_cohort(struct rank_share *s, const char *app, const char *campaign,
		       const double *ratio)
{
	char key[SHARE_KEY_MAX];
	size_t n = s->n_cohorts;

	share_key(app, campaign, key, sizeof(key));
	if (strmap_put(&s->cohort, key, (int64_t)n) != 0)
		return; /* fitted once per campaign */
	s->cohort_app = xrealloc(s->cohort_app, (n + 1) * sizeof(char *));
	s->cohort_campaign = xrealloc(s->cohort_campaign, (n + 1) * sizeof(char *));
	s->cohort_ratio = xrealloc(s->cohort_ratio, (n + 1) * (size_t)s->n_cells * sizeof(double));
	s->cohort_app[n] = xstrdup(app);
	s->cohort_campaign[n] = xstrdup(campaign);
	memcpy(&s->cohort_ratio[n * (size_t)s->n_cells], ratio, (size_t)s->n_cells * sizeof(double));
	s->n_cohorts = n + 1;
}

/*
 * Whether a campaign served by method m gets a share: not when m models each
 * user's own history at the user's exact age (BTYD). Such a method already
 * orders users by their own purchases, and validation rows sit on snapshot
 * ages, so they cannot see the ranker's (a snapshot model's) error between
 * and beyond snapshots: the argument of select's "BTYD on a tie".
 */
static int shared_method(int m)
{
	return m >= 0 && m < METHOD_COUNT && !method_table[m]->user_at_age;
}

static int row_tier(const struct model_data *d, size_t row)
{
	int t = d->tier ? (int)d->tier[row] : 3;

	return t >= 1 && t <= 3 ? t : 3;
}

/*
 * The Gini of ranking a by key over every row with usable[i] (out[0]) and
 * over each tier's of them (out[1..3]), from one sort (metrics_gini_groups):
 * the same figures as metrics_gini on each tier's rows alone. NaN where
 * there is none.
 */
static void tier_ginis(const double *a, const double *key, const int *tier,
		       const unsigned char *usable, size_t n, double out[4])
{
	double *ca, *ck;
	int *ct;
	size_t k = 0;

	while (k < n && usable[k])
		k++;
	/*
	 * Every row usable (most methods at every horizon): the rows as they
	 * are, without copying three arrays of half a million rows per method
	 * into fresh memory (the copies were 3 % of select's CPU at 1,000,000
	 * users, and their page faults more).
	 */
	if (k == n) {
		if (metrics_gini_groups(a, key, tier, n, 4, out) < 0)
			out[0] = out[1] = out[2] = out[3] = NAN;
		return;
	}
	ca = xmalloc((n ? n : 1) * sizeof(double));
	ck = xmalloc((n ? n : 1) * sizeof(double));
	ct = xmalloc((n ? n : 1) * sizeof(int));
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (usable[i]) {
			ca[k] = a[i];
			ck[k] = key[i];
			ct[k++] = tier[i];
		}
	if (metrics_gini_groups(ca, ck, ct, k, 4, out) < 0)
		out[0] = out[1] = out[2] = out[3] = NAN;
	free(ca);
	free(ck);
	free(ct);
}

/*
 * Per tier t (0: every row) and method m, g[t][m]: the method's normalized
 * Gini of revenue to come over the tier's rows, NaN when it does not
 * compete there: fewer than min_users rows, or the method has no value or
 * a value that is not finite for one of them (metrics_gini refuses an
 * infinite one). The actual revenue is the same for every method, so the
 * perfect ranking's Gini (the normalizer) is computed once per tier, and
 * each method is sorted once for all four tiers (tier_ginis): sorting half a
 * million validation rows per method and tier was most of select. Methods
 * side by side, each into its own column.
 */
static void ranker_ginis(const struct model_data *d, const double *y, const size_t *rows, size_t n,
			 double *const *pred, size_t min_users, int n_threads,
			 double g[4][METHOD_COUNT])
{
	const double *rev = frame_column(&d->frame, "rev_window");
	double *a = xmalloc((n ? n : 1) * sizeof(double)), perfect[4];
	int *tier = xmalloc((n ? n : 1) * sizeof(int));
	unsigned char *a_finite = xmalloc(n ? n : 1);
	size_t k[4] = { n, 0, 0, 0 };

	for (size_t i = 0; i < n; i++) {
		a[i] = fmax(y[rows[i]] - rev[rows[i]], 0.0);
		a_finite[i] = isfinite(a[i]);
		tier[i] = row_tier(d, rows[i]);
		k[tier[i]]++;
	}
	tier_ginis(a, a, tier, a_finite, n, perfect);
#pragma omp parallel for schedule(dynamic) num_threads(n_threads > 1 ? n_threads : 1)
	for (int m = 0; m < METHOD_COUNT; m++) {
		double *q = xmalloc((n ? n : 1) * sizeof(double)), model[4];
		unsigned char *usable = xmalloc(n ? n : 1);
		int ok[4] = { 1, 1, 1, 1 };

		for (size_t i = 0; i < n; i++) {
			q[i] = pred[m][i] - rev[rows[i]];
			usable[i] = !isnan(pred[m][i]) && isfinite(q[i]) && a_finite[i];
			if (!usable[i])
				ok[0] = ok[tier[i]] = 0;
		}
		tier_ginis(a, q, tier, usable, n, model);
		for (int t = 0; t <= 3; t++)
			g[t][m] = ok[t] && k[t] >= min_users && k[t] > 0 && perfect[t] > 0
				  ? model[t] / perfect[t] : NAN;
		free(q);
		free(usable);
	}
	free(a);
	free(tier);
	free(a_finite);
}

/* The method with the highest g[m] (the first of equals); -1 when none. */
static int best_ranker(const double *g, double *out_gini)
{
	int best = -1;

	*out_gini = NAN;
	for (int m = 0; m < METHOD_COUNT; m++) {
		if (isnan(g[m]))
			continue;
		if (best < 0 || g[m] > *out_gini) {
			best = m;
			*out_gini = g[m];
		}
	}
	return best;
}

/* Sum of the chosen method's revenue to come over the ranker's, on the rows given; NaN if none. */
static double sum_ratio(double num, double den)
{
	return den > 0 && num >= 0 ? num / den : NAN;
}

/*
 * Sums of revenue to come per age cell: the chosen method's, the ranker's,
 * row weights, and the largest single row's part of the chosen method's sum.
 */
struct cell_sums {
	double num[RANK_SHARE_MAX_CELLS], den[RANK_SHARE_MAX_CELLS], n[RANK_SHARE_MAX_CELLS];
	double top[RANK_SHARE_MAX_CELLS];
};

static void cell_add_part(struct cell_sums *c, int k, double w, double fm, double fr)
{
	c->num[k] += w * fm;
	c->den[k] += w * fr;
	c->n[k] += w;
	c->top[k] = fmax(c->top[k], w * fm);
}

static void cell_add(struct cell_sums *c, struct rank_cell cell, double fm, double fr)
{
	cell_add_part(c, cell.lo, 1 - cell.t, fm, fr);
	if (cell.t > 0)
		cell_add_part(c, cell.hi, cell.t, fm, fr);
}

/*
 * Whether one row holds more than half of cell k's revenue to come by the
 * chosen method. Such a ratio says how that one user's value by the chosen
 * method compares with the ranker's, not how the two methods compare (its
 * effective number of users, (sum w)^2 / sum w^2, is below 2 whatever the
 * row count): the multiplier's revenue to come is proportional to revenue
 * so far, so one large payer among a validation cohort's 1,245 users made
 * a campaign's ratio 7 to 12 where its other cells were 0.5 to 2 (README
 * "The rank share"). The cell then takes its tier's ratio, as a cell with
 * too few rows does.
 */
static int carried_by_one_row(const struct cell_sums *c, int k)
{
	return c->top[k] > 0.5 * c->num[k];
}

/*
 * Ratios of c's cells into out (NaN where a cell has fewer than min_users
 * rows or one row carries it); 1 if any.
 */
static int cell_ratios(const struct cell_sums *c, int n_cells, size_t min_users, double *out)
{
	int any = 0;

	for (int k = 0; k < n_cells; k++) {
		out[k] = c->n[k] >= (double)min_users && !carried_by_one_row(c, k)
				 ? sum_ratio(c->num[k], c->den[k])
				 : NAN;
		any |= !isnan(out[k]);
	}
	return any;
}

void rank_share_fit(struct rank_share *s, const struct model_data *d, int64_t horizon,
		    const size_t *rows, size_t n, double *const *pred, const int *chosen,
		    const struct rank_cell *cell, int n_cells, size_t min_users, int n_threads)
{
	const double *y = model_data_label(d, horizon);
	const double *rev = frame_column(&d->frame, "rev_window");
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	struct cell_sums *tier_sums, *c_sums;
	double ratio[RANK_SHARE_MAX_CELLS], g[4][METHOD_COUNT];

	rank_share_reset(s);
	if (!y || !rev || n == 0 || n_cells < 1 || n_cells > RANK_SHARE_MAX_CELLS)
		return;
	s->n_cells = n_cells;
	ranker_ginis(d, y, rows, n, pred, min_users, n_threads, g);
	for (int t = 0; t <= 3; t++)
		s->ranker[t] = best_ranker(g[t], &s->gini[t]);
	if (s->ranker[0] < 0)
		return;
	tier_sums = xcalloc(4 * METHOD_COUNT, sizeof(*tier_sums));
	c_sums = xcalloc(n_cohorts + 1, sizeof(*c_sums));
	for (size_t i = 0; i < n; i++) {
		const int t = row_tier(d, rows[i]), m = chosen[i], r = rank_share_ranker(s, t);
		double fm, fr;

		if (!shared_method(m) || r < 0 || m == r || isnan(pred[m][i]) || isnan(pred[r][i]))
			continue;
		fm = fmax(pred[m][i] - rev[rows[i]], 0.0);
		fr = fmax(pred[r][i] - rev[rows[i]], 0.0);
		/* per tier (0: every tier, for the tiers served by the global ranker) */
		cell_add(&tier_sums[t * METHOD_COUNT + m], cell[i], fm, fr);
		if (r == s->ranker[0])
			cell_add(&tier_sums[m], cell[i], fm, fr);
		cell_add(&c_sums[model_data_cohort(d, rows[i])], cell[i], fm, fr);
	}
	for (int t = 0; t <= 3; t++)
		for (int m = 0; m < METHOD_COUNT; m++)
			cell_ratios(&tier_sums[t * METHOD_COUNT + m], n_cells, min_users, s->tier_ratio[t][m]);
	for (size_t c = 0; c < n_cohorts; c++)
		if (cell_ratios(&c_sums[c], n_cells, min_users, ratio))
			add_cohort(s, d->apps[c / d->n_campaigns], d->campaigns[c % d->n_campaigns], ratio);
	free(tier_sums);
	free(c_sums);
}

void rank_share_copy_rankers(struct rank_share *dst, const struct rank_share *src)
{
	rank_share_reset(dst);
	memcpy(dst->ranker, src->ranker, sizeof(dst->ranker));
	memcpy(dst->gini, src->gini, sizeof(dst->gini));
	dst->n_cells = src->n_cells;
}

int rank_share_ranker(const struct rank_share *s, int tier)
{
	if (tier >= 1 && tier <= 3 && s->ranker[tier] >= 0)
		return s->ranker[tier];
	return s->ranker[0];
}

/* One cell's ratio: the campaign's, else its tier's, else the pooled one of the same ranker. */
static double cell_ratio(const struct rank_share *s, const double *cohort, int tier, int chosen, int k)
{
	double ratio = cohort ? cohort[k] : NAN;

	if (isnan(ratio))
		ratio = s->tier_ratio[tier][chosen][k];
	if (isnan(ratio) && rank_share_ranker(s, tier) == s->ranker[0])
		ratio = s->tier_ratio[0][chosen][k];
	return ratio;
}

const double *rank_share_cohort(const struct rank_share *s, const char *app, const char *campaign)
{
	char key[SHARE_KEY_MAX];
	int64_t k;

	if (!s->n_cohorts)
		return NULL;
	share_key(app, campaign, key, sizeof(key));
	return strmap_get(&s->cohort, key, &k) ? &s->cohort_ratio[(size_t)k * (size_t)s->n_cells] : NULL;
}

double rank_share_ratio_of(const struct rank_share *s, const double *cohort, int tier, int chosen,
			   struct rank_cell cell)
{
	const int r = rank_share_ranker(s, tier);
	double lo;

	if (r < 0 || !shared_method(chosen) || chosen == r ||
	    cell.lo < 0 || cell.lo >= s->n_cells || cell.hi < 0 || cell.hi >= s->n_cells)
		return NAN;
	if (tier < 1 || tier > 3)
		tier = 3;
	lo = cell_ratio(s, cohort, tier, chosen, cell.lo);
	return cell.t > 0 ? (1 - cell.t) * lo + cell.t * cell_ratio(s, cohort, tier, chosen, cell.hi) : lo;
}

double rank_share_ratio(const struct rank_share *s, const char *app, const char *campaign, int tier,
			int chosen, struct rank_cell cell)
{
	return rank_share_ratio_of(s, rank_share_cohort(s, app, campaign), tier, chosen, cell);
}

void rank_share_within_cells(const size_t *group, size_t n_groups, const struct rank_cell *cell,
			     const double *ranker_to_come, double *to_come, size_t n)
{
	/* per group and cell: the chosen method's and the ranker's sums */
	struct cell_sums *sums = xcalloc(n_groups ? n_groups : 1, sizeof(*sums));

	for (size_t i = 0; i < n; i++)
		if (group[i] < n_groups)
			cell_add(&sums[group[i]], cell[i], to_come[i], ranker_to_come[i]);
	for (size_t i = 0; i < n; i++) {
		const struct cell_sums *c;
		double v = 0;

		if (group[i] >= n_groups)
			continue;
		c = &sums[group[i]];
		for (int e = 0; e < 2; e++) {
			const int k = e ? cell[i].hi : cell[i].lo;
			const double w = e ? cell[i].t : 1 - cell[i].t;

			if (w > 0)
				v += w * (c->den[k] > 0 ? c->num[k] / c->den[k] * ranker_to_come[i] : to_come[i]);
		}
		to_come[i] = v;
	}
	free(sums);
}

double rank_share_apply(double ratio, double ranker_ltv, double rev_so_far)
{
	return rev_so_far + ratio * fmax(ranker_ltv - rev_so_far, 0.0);
}

void rank_share_put(struct blob_writer *w, const struct rank_share *s)
{
	for (int t = 0; t <= 3; t++) {
		blob_put_str(w, s->ranker[t] >= 0 ? method_name(s->ranker[t]) : "");
		blob_put_f64(w, s->gini[t]);
	}
	blob_put_u32(w, (uint32_t)s->n_cells);
	for (int t = 0; t <= 3; t++)
		for (int m = 0; m < METHOD_COUNT; m++) {
			int any = 0;

			for (int k = 0; k < s->n_cells; k++)
				any |= !isnan(s->tier_ratio[t][m][k]);
			if (!any)
				continue;
			blob_put_u32(w, (uint32_t)t);
			blob_put_str(w, method_name(m));
			blob_put_f64_array(w, s->tier_ratio[t][m], (size_t)s->n_cells);
		}
	blob_put_u32(w, UINT32_MAX); /* end of the tier ratios */
	blob_put_u64(w, s->n_cohorts);
	for (size_t k = 0; k < s->n_cohorts; k++) {
		blob_put_str(w, s->cohort_app[k]);
		blob_put_str(w, s->cohort_campaign[k]);
		blob_put_f64_array(w, &s->cohort_ratio[k * (size_t)s->n_cells], (size_t)s->n_cells);
	}
}

int rank_share_get(struct blob_reader *r, struct rank_share *s, struct ltv_err *err)
{
	uint64_t n_cohorts;
	uint32_t t;
	double *v = NULL;
	size_t n_v = 0;

	rank_share_reset(s);
	for (int k = 0; k <= 3; k++) {
		char *name = blob_get_str(r);

		s->ranker[k] = name && *name ? method_index(name) : -1;
		s->gini[k] = blob_get_f64(r);
		if (name && *name && s->ranker[k] < 0) {
			free(name);
			return err_set(err, LTV_EINVAL, "rank share: unknown ranking method");
		}
		free(name);
	}
	s->n_cells = (int)blob_get_u32(r);
	if (r->failed || s->n_cells < 1 || s->n_cells > RANK_SHARE_MAX_CELLS)
		return err_set(err, LTV_EINVAL, "rank share: truncated or corrupt age cells");
	while (!r->failed && (t = blob_get_u32(r)) != UINT32_MAX) {
		char *name = blob_get_str(r);
		int m = name ? method_index(name) : -1;

		free(name);
		if (t > 3 || m < 0 || blob_get_f64_array(r, &v, &n_v) < 0 || n_v != (size_t)s->n_cells) {
			free(v);
			return err_set(err, LTV_EINVAL, "rank share: truncated or corrupt tier ratio");
		}
		memcpy(s->tier_ratio[t][m], v, n_v * sizeof(double));
		free(v);
		v = NULL;
	}
	n_cohorts = blob_get_u64(r);
	if (r->failed || n_cohorts > r->len)
		return err_set(err, LTV_EINVAL, "rank share: truncated or corrupt");
	for (uint64_t k = 0; k < n_cohorts; k++) {
		char *app = blob_get_str(r), *campaign = blob_get_str(r);
		int ok = blob_get_f64_array(r, &v, &n_v) == 0 && n_v == (size_t)s->n_cells;

		if (!r->failed && ok && app && campaign)
			add_cohort(s, app, campaign, v);
		free(app);
		free(campaign);
		free(v);
		v = NULL;
		if (r->failed || !ok)
			return err_set(err, LTV_EINVAL, "rank share: truncated or corrupt");
	}
	return 0;
}
