/*
 * The baselines `ltvpipe evaluate` holds ltvpipe against (contract in
 * include/ltv/evaluate.h): (a) the campaign's historical mean LTV, (b) the
 * window's revenue times a global multiplier, both learnt from the users
 * mature at H before T, and (c) BG/NBD + Gamma-Gamma fitted on every user's
 * purchase days before T. They read only the scoring frame at T and user-days
 * complete at T, so they see exactly what ltvpipe sees.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/bgnbd.h"
#include "ltv/evaluate.h"
#include "ltv/gamma_gamma.h"
#include "ltv/timeutil.h"

#define DAYS_PER_WEEK 7.0

void eval_baseline_campaign_mean(const struct model_data *d, int64_t horizon,
				 const size_t *rows, size_t n, double *out_pred, size_t *out_n_train)
{
	const double *label = model_data_label(d, horizon);
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	double *sum = xcalloc(n_cohorts + 1, sizeof(double)), total = 0;
	size_t *count = xcalloc(n_cohorts + 1, sizeof(size_t)), n_train = 0;

	for (size_t i = 0; label && i < d->frame.n_rows; i++) {
		size_t c;

		if (isnan(label[i]))
			continue;
		c = model_data_cohort(d, i);
		sum[c] += label[i];
		count[c]++;
		total += label[i];
		n_train++;
	}
	for (size_t i = 0; i < n; i++) {
		size_t c = model_data_cohort(d, rows[i]);

		out_pred[i] = count[c] ? sum[c] / (double)count[c]
			    : n_train ? total / (double)n_train : NAN;
	}
	if (out_n_train)
		*out_n_train = n_train;
	free(sum);
	free(count);
}

void eval_baseline_window_multiplier(const struct model_data *d, int64_t horizon,
				     const size_t *rows, size_t n, double *out_pred)
{
	const double *label = model_data_label(d, horizon);
	const double *rev_d0 = frame_column(&d->frame, "rev_d0");
	double sum_ltv = 0, sum_d0 = 0, multiplier = NAN;

	/* The classic early-LTV multiplier: day 0 is the one day every user has lived. */
	for (size_t i = 0; label && rev_d0 && i < d->frame.n_rows; i++) {
		if (isnan(label[i]))
			continue;
		sum_ltv += label[i];
		sum_d0 += rev_d0[i];
	}
	if (sum_d0 > 0)
		multiplier = sum_ltv / sum_d0;
	for (size_t i = 0; i < n; i++)
		out_pred[i] = rev_d0 ? rev_d0[rows[i]] * multiplier : NAN;
}

/* ---- (c) BG/NBD + Gamma-Gamma ---- */

struct purchase_days {
	const struct model_data *d;
	const double *install;
	int64_t *row_of_uid;   /* uid - 1 → row of d, -1 when not in d */
	size_t n_uids;
	double *x, *t_x, *m_x; /* m_x accumulates the repeat revenue, divided at the end */
};

static int add_day(void *opaque, int64_t uid, int64_t day, double revenue, int64_t events,
		   int64_t purchases)
{
	struct purchase_days *p = opaque;
	int64_t row;

	(void)events;
	(void)purchases;
	if (uid < 1 || (size_t)uid > p->n_uids || (row = p->row_of_uid[uid - 1]) < 0)
		return 0;
	/* Only days complete at as_of exist (the rule of feature_build_base). */
	if (day >= time_day_index((int64_t)p->install[row], p->d->as_of))
		return 0;
	if (day >= 1 && revenue > 0) {
		p->x[row] += 1;
		p->m_x[row] += revenue;
		if ((double)day > p->t_x[row])
			p->t_x[row] = (double)day;
	}
	return 0;
}

struct triple {
	double x, t_x, T;
};

static int compare_triple(const void *pa, const void *pb)
{
	const struct triple *a = pa, *b = pb;

	if (a->x != b->x)
		return a->x < b->x ? -1 : 1;
	if (a->t_x != b->t_x)
		return a->t_x < b->t_x ? -1 : 1;
	return a->T < b->T ? -1 : a->T > b->T;
}

/* BG/NBD on (x, t_x, T) triples collapsed to weighted rows: day resolution repeats them a lot. */
static int fit_bgnbd(struct eval_bgnbd *b, size_t n_rows, struct ltv_err *err)
{
	struct triple *t = xmalloc((n_rows ? n_rows : 1) * sizeof(*t));
	double *x = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	double *t_x = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	double *T = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	double *w = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	struct bgnbd_param param;
	struct bgnbd_data data = { 0 };
	size_t n = 0, k = 0;
	int ret;

	for (size_t i = 0; i < n_rows; i++)
		if (b->age_days[i] >= 1)
			t[n++] = (struct triple){ b->x[i], b->t_x[i] / DAYS_PER_WEEK,
						  b->age_days[i] / DAYS_PER_WEEK };
	qsort(t, n, sizeof(*t), compare_triple);
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && compare_triple(&t[i], &(struct triple){ x[k - 1], t_x[k - 1], T[k - 1] }) == 0) {
			w[k - 1] += 1;
			continue;
		}
		x[k] = t[i].x;
		t_x[k] = t[i].t_x;
		T[k] = t[i].T;
		w[k++] = 1;
	}
	data = (struct bgnbd_data){ .n = k, .x = x, .t_x = t_x, .T = T, .weight = w };
	bgnbd_param_init(&param);
	/* As the bgnbd stage fits (serving/btyd_bgnbd.c): day resolution leaves the optimum flat. */
	param.grad_tol = 1e-5;
	ret = k ? bgnbd_fit(&param, &data, &b->bg, err)
		: err_set(err, LTV_EMODEL, "no user is a day old at as_of");
	free(t);
	free(x);
	free(t_x);
	free(T);
	free(w);
	return ret;
}

static int fit_gamma_gamma(struct eval_bgnbd *b, size_t n_rows, struct ltv_err *err)
{
	double *x = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	double *m_x = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	struct gamma_gamma_param param;
	struct gamma_gamma_data data;
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < n_rows; i++) {
		if (b->x[i] < 1 || !(b->m_x[i] > 0))
			continue;
		x[n] = b->x[i];
		m_x[n++] = b->m_x[i];
	}
	b->fit.n_repeaters = (double)n;
	data = (struct gamma_gamma_data){ .n = n, .x = x, .m_x = m_x, .weight = NULL };
	gamma_gamma_param_init(&param);
	param.grad_tol = 1e-5;
	ret = n ? gamma_gamma_fit(&param, &data, &b->gg, err)
		: err_set(err, LTV_EMODEL, "no user bought again before as_of");
	if (ret == 0 && !(b->gg->q > 1))
		ret = err_set(err, LTV_EMODEL, "Gamma-Gamma q = %.3g <= 1: mean spend undefined", b->gg->q);
	free(x);
	free(m_x);
	return ret;
}

int eval_bgnbd_fit(struct registry *reg, const struct model_data *d, struct eval_bgnbd *out,
		   struct ltv_err *err)
{
	const size_t n_rows = d->frame.n_rows;
	const double *uid = frame_column(&d->frame, "uid");
	const double *age = frame_column(&d->frame, "age_days");
	struct purchase_days p = { .d = d, .install = frame_column(&d->frame, "install_time") };
	struct ltv_err fit_err = { 0 };
	int ret;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n_rows; i++)
		if ((size_t)uid[i] > p.n_uids)
			p.n_uids = (size_t)uid[i];
	p.row_of_uid = xmalloc((p.n_uids ? p.n_uids : 1) * sizeof(int64_t));
	for (size_t u = 0; u < p.n_uids; u++)
		p.row_of_uid[u] = -1;
	for (size_t i = 0; i < n_rows; i++)
		p.row_of_uid[(size_t)uid[i] - 1] = (int64_t)i;
	out->x = p.x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->t_x = p.t_x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->m_x = p.m_x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->age_days = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	ret = registry_user_days_each(reg, add_day, &p, err);
	free(p.row_of_uid);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n_rows; i++) {
		out->age_days[i] = age[i];
		if (out->x[i] > 0)
			out->m_x[i] /= out->x[i];
	}
	/* A model that cannot be fitted is a result to report, not a failure of evaluate. */
	if (fit_bgnbd(out, n_rows, &fit_err) < 0 || fit_gamma_gamma(out, n_rows, &fit_err) < 0) {
		snprintf(out->fit.note, sizeof(out->fit.note), "not fitted: %.200s", fit_err.msg);
		return 0;
	}
	out->fit.ok = 1;
	out->fit.r = out->bg->r;
	out->fit.alpha = out->bg->alpha;
	out->fit.a = out->bg->a;
	out->fit.b = out->bg->b;
	out->fit.log_lik = out->bg->log_lik;
	out->fit.n_customers = out->bg->n_customers;
	out->fit.p = out->gg->p;
	out->fit.q = out->gg->q;
	out->fit.gamma = out->gg->gamma;
	snprintf(out->fit.note, sizeof(out->fit.note),
		 "fitted on %.0f users' purchase days before as_of (weeks; day 0 is the acquisition)",
		 out->fit.n_customers);
	return 0;
}

int eval_bgnbd_predict(const struct eval_bgnbd *b, const struct model_data *d, int64_t horizon,
		       const size_t *rows, size_t n, double *out_pred, struct ltv_err *err)
{
	const double *rev_before = frame_column(&d->frame, "rev_to_date");

	for (size_t i = 0; i < n; i++) {
		size_t r = rows[i];
		double left_days = (double)horizon - b->age_days[r], expected = 0, spend;
		int ret;

		if (!b->fit.ok) {
			out_pred[i] = NAN;
			continue;
		}
		if (left_days > 0) {
			ret = bgnbd_expected(b->bg, b->x[r], b->t_x[r] / DAYS_PER_WEEK,
					     b->age_days[r] / DAYS_PER_WEEK, left_days / DAYS_PER_WEEK,
					     &expected, err);
			if (ret == 0)
				ret = gamma_gamma_expected_spend(b->gg, b->x[r], b->m_x[r], &spend, err);
			if (ret < 0)
				return err_prefix(err, "BG/NBD baseline, row %zu", r);
			expected *= spend;
		}
		out_pred[i] = rev_before[r] + expected;
	}
	return 0;
}

void eval_bgnbd_release(struct eval_bgnbd *b)
{
	bgnbd_free(b->bg);
	gamma_gamma_free(b->gg);
	free(b->x);
	free(b->t_x);
	free(b->m_x);
	free(b->age_days);
	memset(b, 0, sizeof(*b));
}
