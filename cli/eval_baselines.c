/*
 * The baselines `ltvpipe evaluate` holds ltvpipe against (contract in
 * include/ltv/evaluate.h): (a) the campaign's historical mean LTV, (b) the
 * window's revenue times a global multiplier, both learnt from the users
 * mature at H before T, (c) BG/NBD + Gamma-Gamma and (d) Pareto/NBD +
 * Gamma-Gamma, both fitted on every user's purchase days before T by one code
 * path (the same rows, the same Gamma-Gamma). They read only the scoring frame at T and user-days
 * complete at T, so they see exactly what ltvpipe sees.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/bgnbd.h"
#include "ltv/btyd_history.h"
#include "ltv/evaluate.h"
#include "ltv/gamma_gamma.h"
#include "ltv/pareto_nbd.h"
#include "ltv/timeutil.h"

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

/* ---- (c) BG/NBD and (d) Pareto/NBD, each + Gamma-Gamma ---- */

/*
 * The users' (x, t_x, T) in weeks collapsed to weighted rows (day resolution
 * repeats them a lot), exactly: BG/NBD (c) and Pareto/NBD (d) fit the same rows.
 */
static void collapse_triples(const struct eval_btyd *b, size_t n_rows, struct btyd_triples *out)
{
	struct btyd_history *h = xmalloc((n_rows ? n_rows : 1) * sizeof(*h));
	size_t n = 0;

	for (size_t i = 0; i < n_rows; i++)
		if (b->age_days[i] >= 1)
			h[n++] = (struct btyd_history){ b->x[i], b->t_x[i] / BTYD_DAYS_PER_WEEK,
							b->age_days[i] / BTYD_DAYS_PER_WEEK, 0 };
	btyd_triples_collapse(h, n, out);
	free(h);
}

static int fit_bgnbd(struct eval_btyd *b, const struct btyd_triples *t, struct ltv_err *err)
{
	struct bgnbd_param param;

	bgnbd_param_init(&param);
	/* As the bgnbd stage fits (serving/btyd_bgnbd.c): day resolution leaves the optimum flat. */
	param.grad_tol = 1e-5;
	return t->n ? bgnbd_fit(&param, &(struct bgnbd_data){ .n = t->n, .x = t->x, .t_x = t->t_x,
							       .T = t->T, .weight = t->weight }, &b->bg, err)
		    : err_set(err, LTV_EMODEL, "no user is a day old at as_of");
}

static int fit_pareto_nbd(struct eval_btyd *b, const struct btyd_triples *t, struct ltv_err *err)
{
	struct pareto_nbd_param param;

	pareto_nbd_param_init(&param);
	/* As the pareto_nbd stage fits (serving/btyd_pareto.c). */
	param.grad_tol = 1e-5;
	return t->n ? pareto_nbd_fit(&param, &(struct pareto_nbd_data){ .n = t->n, .x = t->x,
									 .t_x = t->t_x, .T = t->T,
									 .weight = t->weight }, &b->pn, err)
		    : err_set(err, LTV_EMODEL, "no user is a day old at as_of");
}

static int fit_gamma_gamma(struct eval_btyd *b, size_t n_rows, struct ltv_err *err)
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
	b->bgnbd.n_repeaters = b->pareto_nbd.n_repeaters = (double)n;
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

/* The Gamma-Gamma parameters and the fit's note beside a count model's. */
static void describe_fit(struct eval_btyd_fit *f, const struct gamma_gamma_model *gg, double n_customers,
			 double log_lik)
{
	f->ok = 1;
	f->log_lik = log_lik;
	f->n_customers = n_customers;
	f->p = gg->p;
	f->q = gg->q;
	f->gamma = gg->gamma;
	snprintf(f->note, sizeof(f->note),
		 "fitted on %.0f users' purchase days before as_of (weeks; day 0 is the acquisition)",
		 n_customers);
}

int eval_btyd_fit(struct registry *reg, const struct model_data *d, struct eval_btyd *out,
		  struct ltv_err *err)
{
	const size_t n_rows = d->frame.n_rows;
	const double *uid = frame_column(&d->frame, "uid");
	const double *age = frame_column(&d->frame, "age_days");
	struct btyd_days p = { .install = frame_column(&d->frame, "install_time"), .as_of = d->as_of,
			       .n_slots = n_rows };
	int64_t *slot;
	struct btyd_triples t = { 0 };
	struct ltv_err gg_err = { 0 }, bg_err = { 0 }, pn_err = { 0 };
	int ret, gg_ok;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n_rows; i++)
		if ((size_t)uid[i] > p.n_uids)
			p.n_uids = (size_t)uid[i];
	p.slot = slot = xmalloc((p.n_uids ? p.n_uids : 1) * sizeof(int64_t));
	for (size_t u = 0; u < p.n_uids; u++)
		slot[u] = -1;
	for (size_t i = 0; i < n_rows; i++)
		slot[(size_t)uid[i] - 1] = (int64_t)i;
	out->x = p.x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->t_x = p.t_x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->m_x = p.m_x = xcalloc(n_rows ? n_rows : 1, sizeof(double));
	out->age_days = xmalloc((n_rows ? n_rows : 1) * sizeof(double));
	ret = btyd_days_read(reg, &p, err);
	free(slot);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n_rows; i++)
		out->age_days[i] = age[i];
	/* A model that cannot be fitted is a result to report, not a failure of evaluate. */
	collapse_triples(out, n_rows, &t);
	gg_ok = fit_gamma_gamma(out, n_rows, &gg_err) == 0;
	if (!gg_ok || fit_bgnbd(out, &t, &bg_err) < 0)
		snprintf(out->bgnbd.note, sizeof(out->bgnbd.note), "not fitted: %.200s",
			 gg_ok ? bg_err.msg : gg_err.msg);
	else {
		describe_fit(&out->bgnbd, out->gg, out->bg->n_customers, out->bg->log_lik);
		out->bgnbd.r = out->bg->r;
		out->bgnbd.alpha = out->bg->alpha;
		out->bgnbd.a = out->bg->a;
		out->bgnbd.b = out->bg->b;
	}
	if (!gg_ok || fit_pareto_nbd(out, &t, &pn_err) < 0)
		snprintf(out->pareto_nbd.note, sizeof(out->pareto_nbd.note), "not fitted: %.200s",
			 gg_ok ? pn_err.msg : gg_err.msg);
	else {
		describe_fit(&out->pareto_nbd, out->gg, out->pn->n_customers, out->pn->log_lik);
		out->pareto_nbd.r = out->pn->r;
		out->pareto_nbd.alpha = out->pn->alpha;
		out->pareto_nbd.s = out->pn->s;
		out->pareto_nbd.beta = out->pn->beta;
	}
	btyd_triples_release(&t);
	return 0;
}

/* Expected purchase days of row r in the `weeks` after as_of under the count model of kind. */
static int expected_purchases(const struct eval_btyd *b, enum eval_btyd_kind kind, size_t r,
			      double weeks, double *out, struct ltv_err *err)
{
	const double x = b->x[r], t_x = b->t_x[r] / BTYD_DAYS_PER_WEEK, T = b->age_days[r] / BTYD_DAYS_PER_WEEK;

	if (kind == EVAL_BTYD_PARETO_NBD)
		return pareto_nbd_conditional_expected(b->pn, x, t_x, T, weeks, out, err);
	return bgnbd_expected(b->bg, x, t_x, T, weeks, out, err);
}

int eval_btyd_predict(const struct eval_btyd *b, enum eval_btyd_kind kind, const struct model_data *d,
		      int64_t horizon, const size_t *rows, size_t n, double *out_pred, struct ltv_err *err)
{
	const double *rev_before = frame_column(&d->frame, "rev_to_date");
	const int ok = kind == EVAL_BTYD_PARETO_NBD ? b->pareto_nbd.ok : b->bgnbd.ok;

	for (size_t i = 0; i < n; i++) {
		size_t r = rows[i];
		double left_days = (double)horizon - b->age_days[r], expected = 0, spend;
		int ret;

		if (!ok) {
			out_pred[i] = NAN;
			continue;
		}
		if (left_days > 0) {
			ret = expected_purchases(b, kind, r, left_days / BTYD_DAYS_PER_WEEK, &expected, err);
			if (ret == 0)
				ret = gamma_gamma_expected_spend(b->gg, b->x[r], b->m_x[r], &spend, err);
			if (ret < 0)
				return err_prefix(err, "%s baseline, row %zu",
						  kind == EVAL_BTYD_PARETO_NBD ? "Pareto/NBD" : "BG/NBD", r);
			expected *= spend;
		}
		out_pred[i] = rev_before[r] + expected;
	}
	return 0;
}

void eval_btyd_release(struct eval_btyd *b)
{
	bgnbd_free(b->bg);
	pareto_nbd_free(b->pn);
	gamma_gamma_free(b->gg);
	free(b->x);
	free(b->t_x);
	free(b->m_x);
	free(b->age_days);
	memset(b, 0, sizeof(*b));
}
