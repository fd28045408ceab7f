/*
 * Select's validation rows by cohort (include/ltv/select_cohorts.h), out of
 * pipeline/select.c: a choice's cohort sums, RMSLEs and users' residuals.
 *
 * Why one grouping: each choice (five per run: two other horizons, the
 * target's two cross-fitted folds and the target) grouped its rows by
 * cohort twice (a counting sort in aggregate and another for the users'
 * keys) and looked each row's cohort up in the frame seven times (those two,
 * and the three blend fits). Now one pass, shared.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/metrics.h"
#include "ltv/select_cohorts.h"

void select_cohort_rows_build(const struct model_data *d, int64_t horizon, const struct row_split *s,
			      const int *in_fold, int skip_fold, size_t n_cohorts,
			      struct cohort_rows *out)
{
	const double *y = model_data_label(d, horizon);
	const size_t alloc = s->n_valid ? s->n_valid : 1;
	size_t *at = xmalloc((n_cohorts + 1) * sizeof(size_t)), n = 0;

	out->cohort = xmalloc(alloc * sizeof(size_t));
	out->row_of = xmalloc(alloc * sizeof(size_t));
	out->actual = xmalloc(alloc * sizeof(double));
	out->start = xcalloc(n_cohorts + 1, sizeof(size_t));
	for (size_t i = 0; i < s->n_valid; i++) {
		out->cohort[i] = model_data_cohort(d, s->valid[i]);
		if (!(in_fold && in_fold[i] == skip_fold)) {
			out->start[out->cohort[i] + 1]++;
			n++;
		}
	}
	for (size_t c = 0; c < n_cohorts; c++)
		out->start[c + 1] += out->start[c];
	memcpy(at, out->start, (n_cohorts + 1) * sizeof(size_t));
	for (size_t i = 0; i < s->n_valid; i++)
		if (!(in_fold && in_fold[i] == skip_fold)) {
			const size_t j = at[out->cohort[i]]++;

			out->row_of[j] = i;
			out->actual[j] = y[s->valid[i]];
		}
	out->n = n;
	out->y = y;
	out->in_fold = in_fold;
	out->skip_fold = skip_fold;
	free(at);
}

void select_cohort_rows_release(struct cohort_rows *co)
{
	free(co->cohort);
	free(co->row_of);
	free(co->start);
	free(co->actual);
	memset(co, 0, sizeof(*co));
}

/*
 * The sums in row order (each candidate's predictions read in turn; gathered
 * cohort by cohort they took about 2.5 times the perf samples at 1,000,000
 * users), the RMSLEs per cohort in co's order.
 */
void select_aggregate(const struct cohort_rows *co, const struct model_data *d, const struct row_split *s,
		      double *const *pred, size_t min_users, int n_threads, struct cohort_eval *ev,
		      size_t n_cohorts)
{
	double *log_actual = xmalloc((co->n ? co->n : 1) * sizeof(double));
	size_t longest = 1;

	memset(ev, 0, (n_cohorts + 1) * sizeof(*ev));
	for (size_t i = 0; i < s->n_valid; i++) {
		struct cohort_eval *e = &ev[co->cohort[i]];

		if (co->in_fold && co->in_fold[i] == co->skip_fold)
			continue;
		e->n++;
		e->actual_sum += co->y[s->valid[i]];
		e->tier = d->tier ? (int)d->tier[s->valid[i]] : 3;
		for (int m = 0; m < N_CANDIDATES; m++) {
			if (isnan(pred[m][i]))
				e->missing[m] = 1;
			else
				e->pred_sum[m] += pred[m][i];
		}
	}
	for (size_t c = 0; c < n_cohorts; c++) {
		const struct cohort_eval *e = &ev[c];

		if (e->n >= min_users) {
			longest = e->n > longest ? e->n : longest;
			/* the actuals' log1p, once for every candidate, and once for a row's copies */
			for (size_t j = co->start[c]; j < co->start[c + 1]; j++)
				log_actual[j] = j > co->start[c] &&
						memcmp(&co->actual[j], &co->actual[j - 1], sizeof(double)) == 0
						? log_actual[j - 1] : log1p(co->actual[j]);
		}
	}
	/* the candidates side by side: each fills its own ev[c].rmsle[m] */
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
	for (int m = 0; m < N_CANDIDATES; m++) {
		double *q = xmalloc(longest * sizeof(double)); /* one cohort's predictions */
		struct ltv_err err = { 0 }; /* a cohort without RMSLE is NaN; nothing to report */

		for (size_t c = 0; c < n_cohorts; c++) {
			size_t k = 0;

			ev[c].rmsle[m] = NAN;
			if (ev[c].n < min_users || ev[c].missing[m])
				continue;
			for (size_t j = co->start[c]; j < co->start[c + 1]; j++, k++)
				q[k] = pred[m][co->row_of[j]];
			if (metrics_rmsle_logged(co->actual + co->start[c], log_actual + co->start[c], q, k,
						 &ev[c].rmsle[m], NULL, &err) < 0)
				ev[c].rmsle[m] = NAN;
		}
		free(q);
	}
	free(log_actual);
}

/* A row's key: j is its place in co's cohort order, which orders a cohort's rows as their row index does. */
struct row_key {
	size_t cohort;
	double uid;
	size_t j;
};

/* (cohort, uid, row): a total order, so the sum over a user's rows never depends on qsort. */
static int compare_row_key(const void *pa, const void *pb)
{
	const struct row_key *a = pa, *b = pb;

	if (a->cohort != b->cohort)
		return a->cohort < b->cohort ? -1 : 1;
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	return (a->j > b->j) - (a->j < b->j);
}

static struct row_key key_of(const struct cohort_rows *co, const struct row_split *s, struct frame_col uid,
			     size_t j)
{
	const size_t i = co->row_of[j];

	return (struct row_key){ co->cohort[i], frame_col_at(uid, s->valid[i]), j };
}

/*
 * Each row's user (in key order) and each cohort's first user past its own
 * (cohort_start[c + 1]); returns the users, or 0 with keys not NULL: then
 * *keys holds the rows' keys, which must be sorted and walked again.
 */
static size_t users_of_rows(const struct cohort_rows *co, const struct row_split *s, struct frame_col uid,
			    const struct row_key *keys, size_t *user, size_t *cohort_start)
{
	struct row_key prev = { 0 };
	size_t u = 0;

	for (size_t k = 0; k < co->n; k++) {
		const struct row_key key = keys ? keys[k] : key_of(co, s, uid, k);

		if (k > 0 && !keys && compare_row_key(&prev, &key) >= 0)
			return 0; /* not in key order after all */
		if (k > 0 && (key.cohort != prev.cohort || key.uid != prev.uid))
			u++;
		user[k] = u;
		cohort_start[key.cohort + 1] = u + 1;
		prev = key;
	}
	return co->n ? u + 1 : 0;
}

/*
 * co's rows sorted by compare_row_key, when co's own order is not that
 * order (the frame's rows come grouped by user in uid order, so a cohort's
 * rows in row order usually already are).
 */
static struct row_key *sorted_row_keys(const struct cohort_rows *co, const struct row_split *s,
				       struct frame_col uid)
{
	struct row_key *keys = xmalloc((co->n ? co->n : 1) * sizeof(*keys));

	for (size_t j = 0; j < co->n; j++)
		keys[j] = key_of(co, s, uid, j);
	qsort(keys, co->n, sizeof(*keys), compare_row_key);
	return keys;
}

void select_user_resid_build(const struct cohort_rows *co, const struct model_data *d,
			     const struct row_split *s, double *const *pred, size_t n_cohorts,
			     int n_threads, struct user_resid *out)
{
	const struct frame_col uid = frame_col(&d->frame, "uid");
	const size_t n = co->n;
	struct row_key *keys = NULL;
	/* per row in key order: its user, its index in pred, its actual value (co's own arrays when in co's order) */
	size_t *user = xmalloc((n ? n : 1) * sizeof(size_t)), *at = co->row_of;
	const double *actual = co->actual;
	double *actual_sorted = NULL;

	out->cohort_start = xcalloc(n_cohorts + 1, sizeof(size_t));
	out->n_users = users_of_rows(co, s, uid, NULL, user, out->cohort_start);
	if (n > 0 && out->n_users == 0) {
		keys = sorted_row_keys(co, s, uid);
		memset(out->cohort_start, 0, (n_cohorts + 1) * sizeof(size_t));
		out->n_users = users_of_rows(co, s, uid, keys, user, out->cohort_start);
		at = xmalloc(n * sizeof(size_t));
		actual = actual_sorted = xmalloc(n * sizeof(double));
		for (size_t k = 0; k < n; k++) {
			at[k] = co->row_of[keys[k].j];
			actual_sorted[k] = co->actual[keys[k].j];
		}
	}
	/* one sum per user, not per row: arrays of users, not rows */
	for (int m = 0; m < N_CANDIDATES; m++)
		out->resid[m] = xcalloc(out->n_users ? out->n_users : 1, sizeof(double));
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
	for (int m = 0; m < N_CANDIDATES; m++)
		for (size_t k = 0; k < n; k++)
			out->resid[m][user[k]] += pred[m][at[k]] - actual[k];
	/* Cohorts without users start where the previous one ended. */
	for (size_t c = 1; c <= n_cohorts; c++)
		if (out->cohort_start[c] < out->cohort_start[c - 1])
			out->cohort_start[c] = out->cohort_start[c - 1];
	free(user);
	if (keys)
		free(at);
	free(actual_sorted);
	free(keys);
}

void select_user_resid_release(struct user_resid *u)
{
	free(u->cohort_start);
	for (int m = 0; m < N_CANDIDATES; m++)
		free(u->resid[m]);
	memset(u, 0, sizeof(*u));
}
