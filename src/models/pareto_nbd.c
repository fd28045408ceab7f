/*
 * Pareto/NBD model: maximum-likelihood fit of (r, alpha, s, beta) from
 * per-customer (x, t_x, T) summaries, P(alive), the conditional expectation
 * and the probability of at least one purchase in a coming window. The
 * search and the blob layout are mle.c's, shared with BG/NBD and
 * Gamma-Gamma; this file owns the likelihood, its gradient and the
 * predictions.
 *
 * Every hypergeometric term the model needs is one integral
 *   I = integral over u in [lo, hi] of (A + u)^-p (B + u)^-q,   p + q > 1:
 * the likelihood's s A0 / (r+s+x) of Fader & Hardie's note (A = alpha,
 * p = r + x, B = beta, q = s + 1 on [t_x, T]; their two branches
 * alpha >= beta and alpha < beta need no separate code) and the
 * window-purchase probability's integral. It is computed one of two ways:
 *  - z = |A - B| / (max(A, B) + lo) <= SERIES_MAX_Z: as F(lo) - F(hi), F the
 *    tail over [tau, inf), which expands in z = |A - B| / (M + tau) as
 *      (M + tau)^-(p+q-1) / (p+q-1) 2F1(p+q-1, b; p+q; z),  M = max(A, B),
 *    b the exponent of the factor with the smaller shift (under 100 terms);
 *  - otherwise (alpha / beta far from 1, where the series needs up to
 *    millions of terms) by composite Gauss-Legendre quadrature in
 *    v = ln(min(A, B) + u), where the integrand is log-concave and smooth
 *    (quad_integral), accurate to about 1e-14 relative.
 * The fit's gradient is analytic: d/dparam of each row's log-likelihood
 * differentiates under the integral, so one quadrature pass gives the value
 * and the four moments it needs (row_log_lik_grad); the search's
 * value-only calls (Nelder-Mead) take the cheaper of the two ways above.
 * Pure: no I/O, no state (a fit's tail memo is its own), no GSL calls, so
 * safe in several threads.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/mle.h"
#include "ltv/pareto_nbd.h"

#define N_PARAMS 4
/* Largest z summed as a series; beyond it, quadrature. */
#define SERIES_MAX_Z 0.6

enum { P_R, P_ALPHA, P_S, P_BETA };

void pareto_nbd_param_init(struct pareto_nbd_param *param)
{
	assert(param);
	param->max_iter = MLE_DEFAULT_MAX_ITER;
	param->grad_tol = MLE_DEFAULT_GRAD_TOL;
	param->tail_memo = 1;
	param->node_memo = 1;
}

const char *pareto_nbd_param_check(const struct pareto_nbd_param *param)
{
	if (!param)
		return "no parameters given";
	if (param->tail_memo != 0 && param->tail_memo != 1)
		return "tail_memo must be 0 or 1";
	if (param->node_memo != 0 && param->node_memo != 1)
		return "node_memo must be 0 or 1";
	return mle_param_check(param->max_iter, param->grad_tol);
}

static int check_row(double x, double t_x, double T, size_t row, struct ltv_err *err)
{
	if (!isfinite(x) || x < 0 || x != floor(x))
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: x = %g is not a whole number >= 0 of repeat "
			       "transactions", row, x);
	if (!isfinite(T) || T < 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: row %zu: T = %g is not a time >= 0",
			       row, T);
	if (!isfinite(t_x) || t_x < 0 || t_x > T)
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: t_x = %g must lie in [0, T = %g]", row, t_x, T);
	if (x == 0 && t_x != 0)
		return err_set(err, LTV_EINVAL,
			       "pareto_nbd: row %zu: t_x = %g with x = 0; recency of a customer "
			       "with no repeat transactions is 0", row, t_x);
	return 0;
}

int pareto_nbd_data_check(const struct pareto_nbd_data *data, struct ltv_err *err)
{
	assert(data);
	if (data->n == 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: no customers to fit on");
	if (!data->x || !data->t_x || !data->T)
		return err_set(err, LTV_EINVAL, "pareto_nbd: x, t_x and T arrays are all required");
	for (size_t i = 0; i < data->n; i++) {
		int ret = check_row(data->x[i], data->t_x[i], data->T[i], i, err);

		if (ret == 0)
			ret = mle_weight_check("pareto_nbd", data->weight, i, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static double lngamma(double v)
{
	int sign;

	return lgamma_r(v, &sign);
}

/*
 * ln 2F1(a, b; a + 1; z) for a > 0, 0 < b < a + 1, 0 <= z < 1, through
 * Euler's transformation (1 - z)^(1 - b) 2F1(1, a + 1 - b; a + 1; z): the
 * latter's terms are positive with ratios below z, so the tail after a term
 * is at most term z / (1 - z) and the sum stops once that is below rounding.
 * Only called with z <= SERIES_MAX_Z, so it needs fewer than 100 terms.
 */
static double log_hyp2f1_c_a1(double a, double b, double z)
{
	const double c0 = a + 1 - b;
	double term = 1.0, sum = 1.0;

	for (long k = 0; term * z > DBL_EPSILON * sum * (1 - z); k++) {
		term *= (c0 + (double)k) / (a + 1 + (double)k) * z;
		sum += term;
	}
	return (1 - b) * log1p(-z) + log(sum);
}

/* ln F(tau), F the tail integral of the opening comment; A, B > 0, p, q >= 0, p + q > 1. */
static double log_tail(double A, double p, double B, double q, double tau)
{
	const double a = p + q - 1;
	const double M = A >= B ? A : B;
	const double z = fabs(A - B) / (M + tau);

	return -a * log(M + tau) - log(a) + log_hyp2f1_c_a1(a, A >= B ? q : p, z);
}

/*
 * The integral over [lo, hi] of f(u) = (A + u)^-p (B + u)^-q by quadrature,
 * with the moments the gradient needs (E below is under f / integral):
 */
struct moments {
	double log_value;		/* ln of the integral */
	double mean_log_a, mean_log_b;	/* E ln(A + u), E ln(B + u) */
	double mean_inv_a, mean_inv_b;	/* E 1 / (A + u), E 1 / (B + u) */
};

/*
 * In v = ln(m + u), m = min(A, B), d = |A - B|, the integrand times du/dv is
 * e^phi(v) with phi(v) = (1 - b) v - c ln(e^v + d), b the exponent of the
 * factor with the smaller shift and c the other. phi is concave
 * (phi'' = -c e^v d / (e^v + d)^2), analytic within pi of the real axis, and
 * phi'(v) = 1 - b - c e^v / (e^v + d) falls from 1 - b to 1 - b - c < 0. The
 * interval is cut into panels no wider than QUAD_MAX_WIDTH with
 * |phi'| width <= QUAD_MAX_SLOPE at both ends, each summed with 20-point
 * Gauss-Legendre (relative error near 1e-16 on such panels); past the mode
 * the remainder is at most e^phi(v) / |phi'(v)| by concavity, and the sum
 * stops once that is below QUAD_TAIL_TOL of the total.
 */
#define QUAD_MAX_WIDTH 6.0
#define QUAD_MAX_SLOPE 20.0
#define QUAD_TAIL_TOL 1e-18
#define GL_HALF 10

/* Gauss-Legendre, 20 points on [-1, 1]: the positive nodes and their weights. */
static const double gl_node[GL_HALF][2] = {
	{ 0.0765265211334973337546, 0.152753387130725850698 },
	{ 0.22778585114164507808, 0.149172986472603746788 },
	{ 0.373706088715419560673, 0.142096109318382051329 },
	{ 0.510867001950827098004, 0.131688638449176626898 },
	{ 0.636053680726515025453, 0.118194531961518417312 },
	{ 0.746331906460150792614, 0.101930119817240435037 },
	{ 0.839116971822218823395, 0.0832767415767047487248 },
	{ 0.912234428251325905868, 0.0626720483341090635695 },
	{ 0.963971927277913791268, 0.040601429800386941331 },
	{ 0.993128599185094924786, 0.0176140071391521183119 },
};

struct quad_shape {
	double b1, c, d; /* 1 - b, c, d of the comment above */
};

/*
 * e^v at the last two v asked (v NaN: none): quadrature asks it at a
 * panel's ends two or three times, and a fit's rows of one (t_x, T) at the
 * same ends again (struct node_slot). Compared by value: e^v is e^v.
 */
struct exp_pair {
	double v[2], ev[2];
	int next;
};

#define EXP_PAIR_EMPTY { { NAN, NAN }, { 0, 0 }, 0 }

static double exp_of(struct exp_pair *c, double v)
{
	const int k = c->next;

	if (v == c->v[0])
		return c->ev[0];
	if (v == c->v[1])
		return c->ev[1];
	c->v[k] = v;
	c->ev[k] = exp(v);
	c->next = !k;
	return c->ev[k];
}

/* phi(v) and phi'(v), given e^v. */
static double quad_phi(const struct quad_shape *sh, double v, double ev)
{
	return sh->b1 * v - sh->c * log(ev + sh->d);
}

static double quad_dphi(const struct quad_shape *sh, double ev)
{
	return sh->b1 - sh->c * ev / (ev + sh->d);
}

/* Node k of a panel [a, a + h]: k = 2 i, 2 i + 1 are node i's left and right. */
static inline double panel_node(double a, double h, int k)
{
	const int i = k / 2, side = k % 2 ? 1 : -1;

	return a + 0.5 * h * (1 + side * gl_node[i][0]);
}

/*
 * A panel's e^v and ln(e^v + d) at its nodes depend on a, h and d alone,
 * not on the exponents: at one parameter point, rows of every count x whose
 * [t_x, T] is the same have the same panels (at 1,000,000 users a fit's
 * 1,938 to 3,186 rows have 563 to 619 distinct (t_x, T), and a quadrature
 * is nearly always one panel). So a fit gives each distinct (t_x, T) a
 * slot that keeps its last panel's values, two of the three exponentials
 * and logarithms of a node. A slot is used only when a, h and d are equal to
 * the bit, so its values are the ones exp and log would return again.
 */
struct node_slot {
	double a, h, d; /* h = 0: empty (a panel has h > 0) */
	double ev[2 * GL_HALF], lbig[2 * GL_HALF];
	double m, lo, hi, v0, v1; /* v0 = ln(m + lo), v1 = ln(m + hi); hi = 0: none yet */
	struct exp_pair ends;     /* e^v at the panels' ends (NaN: none yet) */
};

static void panel_exps(const struct quad_shape *sh, double a, double h, double ev[2 * GL_HALF],
		       double lbig[2 * GL_HALF])
{
	for (int k = 0; k < 2 * GL_HALF; k++) {
		ev[k] = exp(panel_node(a, h, k));
		lbig[k] = log(ev[k] + sh->d);
	}
}

/* The panel's e^v and ln(e^v + d): from slot (NULL: none) or computed into ev, lbig. */
static void panel_nodes(struct node_slot *slot, const struct quad_shape *sh, double a, double h,
			double ev[2 * GL_HALF], double lbig[2 * GL_HALF], const double **out_ev,
			const double **out_lbig)
{
	if (!slot) {
		panel_exps(sh, a, h, ev, lbig);
		*out_ev = ev;
		*out_lbig = lbig;
		return;
	}
	if (!(slot->a == a && slot->h == h && slot->d == sh->d)) {
		panel_exps(sh, a, h, slot->ev, slot->lbig);
		slot->a = a;
		slot->h = h;
		slot->d = sh->d;
	}
	*out_ev = slot->ev;
	*out_lbig = slot->lbig;
}

/*
 * One panel [a, a + h] of quad_integral: sum[0] += the integrand's weights
 * (relative to e^ref), and with moments also sum[1..4] their products with
 * v, ln(e^v + d), e^-v and 1 / (e^v + d). Inlined with moments a constant,
 * the value-only search's panels skip the four (two are divisions); sum[0]
 * is added up the same way either way, so the value's bits do not depend
 * on it, nor on whether slot kept the nodes.
 */
static inline void quad_panel(const struct quad_shape *sh, double a, double h, double ref,
			      int moments, struct node_slot *slot, double sum[5])
{
	double ev_own[2 * GL_HALF], lbig_own[2 * GL_HALF];
	const double *ev, *lbig;

	panel_nodes(slot, sh, a, h, ev_own, lbig_own, &ev, &lbig);
	for (int k = 0; k < 2 * GL_HALF; k++) {
		const double v = panel_node(a, h, k), big = ev[k] + sh->d;
		const double g = 0.5 * h * gl_node[k / 2][1] * exp(sh->b1 * v - sh->c * lbig[k] - ref);

		sum[0] += g;
		if (moments) {
			sum[1] += g * v;
			sum[2] += g * lbig[k];
			sum[3] += g / ev[k];
			sum[4] += g / big;
		}
	}
}

/*
 * A, B > 0, p, q >= 0, p + q > 1, 0 <= lo < hi < inf. With moments 0 only
 * out->log_value is set (the value-only search's), to the same bits; slot
 * (NULL: none) keeps the panels' nodes for the rows after it.
 */
static void quad_integral(double A, double p, double B, double q, double lo, double hi,
			  int moments, struct node_slot *slot, struct moments *out)
{
	const int a_small = A <= B;
	const double m = a_small ? A : B;
	const struct quad_shape sh = { 1 - (a_small ? p : q), a_small ? q : p, fabs(A - B) };
	struct exp_pair own = EXP_PAIR_EMPTY, *ends = slot ? &slot->ends : &own;
	double v0, v1, mode, ref, sum[5] = { 0, 0, 0, 0, 0 };
	double a;

	if (slot && slot->m == m && slot->lo == lo && slot->hi == hi) {
		v0 = slot->v0;
		v1 = slot->v1;
	} else {
		v0 = log(m + lo);
		v1 = log(m + hi);
		if (slot) {
			slot->m = m;
			slot->lo = lo;
			slot->hi = hi;
			slot->v0 = v0;
			slot->v1 = v1;
		}
	}
	mode = a = v0;
	if (sh.b1 > 0 && sh.d > 0 && sh.b1 < sh.c) {
		const double sig = sh.b1 / sh.c;

		mode = log(sh.d) + log(sig) - log1p(-sig);
		mode = mode < v0 ? v0 : mode > v1 ? v1 : mode;
	}
	ref = quad_phi(&sh, mode, exp_of(ends, mode));
	while (a < v1) {
		double h = QUAD_MAX_WIDTH, k = fabs(quad_dphi(&sh, exp_of(ends, a))), dp;

		if (k * h > QUAD_MAX_SLOPE)
			h = QUAD_MAX_SLOPE / k;
		if (a + h > v1)
			h = v1 - a;
		k = fabs(quad_dphi(&sh, exp_of(ends, a + h)));
		if (k * h > QUAD_MAX_SLOPE)
			h = QUAD_MAX_SLOPE / k;
		if (moments)
			quad_panel(&sh, a, h, ref, 1, slot, sum);
		else
			quad_panel(&sh, a, h, ref, 0, slot, sum);
		a += h;
		dp = quad_dphi(&sh, exp_of(ends, a));
		if (a < v1 && dp < 0) {
			const double ea = exp_of(ends, a);
			const double tail = exp(quad_phi(&sh, a, ea) - ref) / -dp;

			if (tail * (1 + fabs(a) + fabs(log(ea + sh.d)) - 1 / dp) <
			    QUAD_TAIL_TOL * sum[0])
				break;
		}
	}
	out->log_value = ref + log(sum[0]);
	if (!moments)
		return;
	out->mean_log_a = (a_small ? sum[1] : sum[2]) / sum[0];
	out->mean_log_b = (a_small ? sum[2] : sum[1]) / sum[0];
	out->mean_inv_a = (a_small ? sum[3] : sum[4]) / sum[0];
	out->mean_inv_b = (a_small ? sum[4] : sum[3]) / sum[0];
}

/*
 * log_tail values the fit's value-only sums have computed, at whole tau
 * below TAIL_MEMO_T, for the A, p, B, q of the entries whose gen is gen.
 * Rows come sorted by x, t_x, T (btyd_triples_build), so the rows of one
 * count share A, p, B, q, and their t_x and T are a few dozen whole weeks:
 * at 1,000,000 users 1,938 rows need 373 distinct tails, not 3,876. A tail
 * read back is the one log_tail returned, so no bit changes.
 */
#define TAIL_MEMO_T 256
struct tail_memo {
	double A, p, B, q; /* what the entries of generation gen are for */
	uint64_t gen;
	struct {
		double value;
		uint64_t gen;
	} at[TAIL_MEMO_T];
};

/* log_tail(A, p, B, q, tau), through memo when there is one and tau is whole and small. */
static double memo_log_tail(struct tail_memo *memo, double A, double p, double B, double q,
			    double tau)
{
	size_t i;

	if (!memo || !(tau >= 0 && tau < TAIL_MEMO_T) || tau != (double)(size_t)tau)
		return log_tail(A, p, B, q, tau);
	if (A != memo->A || p != memo->p || B != memo->B || q != memo->q) {
		memo->A = A;
		memo->p = p;
		memo->B = B;
		memo->q = q;
		memo->gen++;
	}
	i = (size_t)tau;
	if (memo->at[i].gen != memo->gen) {
		memo->at[i].value = log_tail(A, p, B, q, tau);
		memo->at[i].gen = memo->gen;
	}
	return memo->at[i].value;
}

/* What a fit keeps for the rows after one (each NULL when off): series tails, the row's panels. */
struct fit_memo {
	struct tail_memo *tails;
	struct node_slot *nodes;
};

/*
 * ln of the integral over u in [lo, hi] of (A + u)^-p (B + u)^-q, -inf when
 * lo >= hi: the difference of two series tails when z at lo is at most
 * SERIES_MAX_Z (the two tails agree to rounding when the interval is short;
 * the difference is then tiny next to whatever it is added to), else by
 * quad_integral. memo (NULL: none) keeps tails and panels for the next rows.
 */
static double log_integral(double A, double p, double B, double q, double lo, double hi,
			   const struct fit_memo *memo)
{
	double l_lo, l_hi;

	if (!(lo < hi))
		return -INFINITY;
	if (fabs(A - B) > SERIES_MAX_Z * ((A >= B ? A : B) + lo)) {
		struct moments mo;

		quad_integral(A, p, B, q, lo, hi, 0, memo ? memo->nodes : NULL, &mo);
		return mo.log_value;
	}
	l_lo = memo_log_tail(memo ? memo->tails : NULL, A, p, B, q, lo);
	l_hi = memo_log_tail(memo ? memo->tails : NULL, A, p, B, q, hi);
	return l_hi < l_lo ? l_lo + log(-expm1(l_hi - l_lo)) : -INFINITY;
}

/*
 * The two parts of one customer's likelihood at p = (r, alpha, s, beta),
 * without the common factor Gamma(r+x) alpha^r beta^s / Gamma(r):
 *   *out_alive = ln[(alpha+T)^-(r+x) (beta+T)^-s]   (still alive at T),
 *   *out_dead  = ln[s integral over [t_x, T] of
 *                   (alpha+u)^-(r+x) (beta+u)^-(s+1) du]   (died after t_x),
 * the second being s A0 / (r+s+x) of Fader & Hardie's note.
 */
static void log_parts(const double p[N_PARAMS], double x, double t_x, double T,
		      double *out_alive, double *out_dead)
{
	const double r = p[P_R], alpha = p[P_ALPHA], s = p[P_S], beta = p[P_BETA];

	*out_alive = -(r + x) * log(alpha + T) - s * log(beta + T);
	*out_dead = log(s) + log_integral(alpha, r + x, beta, s + 1, t_x, T, NULL);
}

static double log_add(double u, double v)
{
	const double top = u > v ? u : v;

	return top + log1p(exp((u > v ? v : u) - top));
}

/* psi(v), v > 0: recurrence up to 10, then the asymptotic series (error < 1e-14). */
static double digamma(double v)
{
	double acc = 0, f;

	for (; v < 10; v += 1)
		acc -= 1 / v;
	f = 1 / (v * v);
	return acc + log(v) - 0.5 / v -
	       f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* The terms of a row's log-likelihood that depend on p only. */
struct p_terms {
	double lg_r, log_alpha, log_beta, log_s;
};

static void p_terms_of(const double p[N_PARAMS], void *out_terms)
{
	struct p_terms *out = out_terms;

	out->lg_r = lngamma(p[P_R]);
	out->log_alpha = log(p[P_ALPHA]);
	out->log_beta = log(p[P_BETA]);
	out->log_s = log(p[P_S]);
}

/*
 * One customer's log-likelihood, from the p terms and lg_rx = ln Gamma(r+x)
 * (sum_log_lik computes them once per call and per x; log_parts' sums in
 * the same order, so the bits are those of a row computed on its own).
 */
static double row_value_core(const double p[N_PARAMS], const struct p_terms *pt, double lg_rx,
			     double x, double t_x, double T, const struct fit_memo *memo)
{
	const double r = p[P_R], alpha = p[P_ALPHA], s = p[P_S], beta = p[P_BETA];
	const double alive = -(r + x) * log(alpha + T) - s * log(beta + T);
	const double dead = pt->log_s + log_integral(alpha, r + x, beta, s + 1, t_x, T, memo);

	return lg_rx - pt->lg_r + r * pt->log_alpha + s * pt->log_beta + log_add(alive, dead);
}

/* One customer's log-likelihood. */
static double row_log_lik_value(const double p[N_PARAMS], double x, double t_x, double T)
{
	struct p_terms pt;

	p_terms_of(p, &pt);
	return row_value_core(p, &pt, lngamma(p[P_R] + x), x, t_x, T, NULL);
}

/*
 * One customer's log-likelihood and its gradient d/dp, differentiating
 * under the integral: with w_alive and w_dead the shares of the two parts
 * in their sum and E the moments of quad_integral on [t_x, T] with
 * p = r + x, q = s + 1,
 *   d/dr     = psi(r+x) - psi(r) + ln alpha - w_alive ln(alpha+T) - w_dead E ln(alpha+u)
 *   d/dalpha = r/alpha - (r+x) [w_alive / (alpha+T) + w_dead E 1/(alpha+u)]
 *   d/ds     = ln beta - w_alive ln(beta+T) + w_dead [1/s - E ln(beta+u)]
 *   d/dbeta  = s/beta - w_alive s / (beta+T) - w_dead (s+1) E 1/(beta+u).
 */
static double row_log_lik_grad(const double p[N_PARAMS], double x, double t_x, double T,
			       struct node_slot *nodes, double grad[N_PARAMS])
{
	const double r = p[P_R], alpha = p[P_ALPHA], s = p[P_S], beta = p[P_BETA];
	const double la = log(alpha + T), lb = log(beta + T);
	const double alive = -(r + x) * la - s * lb;
	struct moments mo = { -INFINITY, 0, 0, 0, 0 };
	double dead, top, w_alive, w_dead, sum;

	if (t_x < T)
		quad_integral(alpha, r + x, beta, s + 1, t_x, T, 1, nodes, &mo);
	dead = log(s) + mo.log_value;
	top = alive > dead ? alive : dead;
	w_alive = exp(alive - top);
	w_dead = exp(dead - top);
	sum = w_alive + w_dead;
	w_alive /= sum;
	w_dead /= sum;
	grad[P_R] = digamma(r + x) - digamma(r) + log(alpha) - w_alive * la -
		    w_dead * mo.mean_log_a;
	grad[P_ALPHA] = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead * mo.mean_inv_a);
	grad[P_S] = log(beta) - w_alive * lb + w_dead * (1 / s - mo.mean_log_b);
	grad[P_BETA] = s / beta - w_alive * s / (beta + T) - w_dead * (s + 1) * mo.mean_inv_b;
	return lngamma(r + x) - lngamma(r) + r * log(alpha) + s * log(beta) + top + log(sum);
}

/* row_log_lik of row `row` of a struct pareto_nbd_data, for struct mle_model. */
static double data_row_log_lik(const double *p, const void *data, size_t row, double *grad)
{
	const struct pareto_nbd_data *d = data;
	const double x = d->x[row], t_x = d->t_x[row], T = d->T[row];

	if (grad)
		return row_log_lik_grad(p, x, t_x, T, NULL, grad);
	return row_log_lik_value(p, x, t_x, T);
}

/* The one term of a row that depends on p and x only: ln Gamma(r+x). */
static void lg_rx_of(const double p[N_PARAMS], double x, void *out_lg_rx)
{
	*(double *)out_lg_rx = lngamma(p[P_R] + x);
}

static const double *data_counts(const void *data)
{
	return ((const struct pareto_nbd_data *)data)->x;
}

static double data_row_from_terms(const double *p, const void *pt, const void *lg_rx,
				  const void *data, size_t row)
{
	const struct pareto_nbd_data *d = data;

	return row_value_core(p, pt, *(const double *)lg_rx, d->x[row], d->t_x[row], d->T[row],
			      NULL);
}

/*
 * For mle_log_lik's value-only sum: the p terms once, ln Gamma(r+x) once per
 * count. No gradient terms: a gradient row's quadrature with moments is
 * most of its cost.
 */
static const struct mle_terms terms = {
	sizeof(struct p_terms), sizeof(double), p_terms_of, lg_rx_of, data_counts,
	data_row_from_terms, NULL, NULL, NULL,
};

/*
 * A fit's rows with its memos: the data first, so the callbacks above read
 * it as theirs. slot_of_row[i] is row i's node slot, one per distinct
 * (t_x, T) (NULL with nodes: the node memo is off).
 */
struct memo_data {
	struct pareto_nbd_data d;
	struct tail_memo *tails;
	struct node_slot *nodes;
	uint32_t *slot_of_row;
};

/* Row `row`'s node slot, NULL when the fit keeps none. */
static struct node_slot *row_slot(const struct memo_data *md, size_t row)
{
	return md->nodes ? &md->nodes[md->slot_of_row[row]] : NULL;
}

static double memo_row_from_terms(const double *p, const void *pt, const void *lg_rx,
				  const void *data, size_t row)
{
	const struct memo_data *md = data;
	const struct pareto_nbd_data *d = &md->d;
	const struct fit_memo memo = { md->tails, row_slot(md, row) };

	return row_value_core(p, pt, *(const double *)lg_rx, d->x[row], d->t_x[row], d->T[row],
			      &memo);
}

/* data_row_log_lik of a fit: its gradient rows share the node slots too. */
static double memo_row_log_lik(const double *p, const void *data, size_t row, double *grad)
{
	const struct memo_data *md = data;
	const struct pareto_nbd_data *d = &md->d;

	if (grad)
		return row_log_lik_grad(p, d->x[row], d->t_x[row], d->T[row], row_slot(md, row),
					grad);
	return data_row_log_lik(p, data, row, NULL);
}

/* A row's (t_x, T) and its index, to find the distinct pairs. */
struct span {
	double t_x, T;
	size_t row;
};

static int compare_span(const void *pa, const void *pb)
{
	const struct span *a = pa, *b = pb;

	if (a->t_x != b->t_x)
		return a->t_x < b->t_x ? -1 : 1;
	if (a->T != b->T)
		return a->T < b->T ? -1 : 1;
	return (a->row > b->row) - (a->row < b->row);
}

/*
 * The node slots of a fit on d: md->slot_of_row[i] numbers row i's (t_x, T)
 * among the distinct ones, and md->nodes has a slot for each (all empty).
 */
static void node_slots_init(const struct pareto_nbd_data *d, struct memo_data *md)
{
	struct span *spans = xmalloc(d->n * sizeof(*spans));
	uint32_t n_slots = 0;

	for (size_t i = 0; i < d->n; i++)
		spans[i] = (struct span){ d->t_x[i], d->T[i], i };
	qsort(spans, d->n, sizeof(*spans), compare_span);
	md->slot_of_row = xmalloc(d->n * sizeof(*md->slot_of_row));
	for (size_t i = 0; i < d->n; i++) {
		if (i > 0 && (spans[i].t_x != spans[i - 1].t_x || spans[i].T != spans[i - 1].T))
			n_slots++;
		md->slot_of_row[spans[i].row] = n_slots;
	}
	md->nodes = xcalloc(n_slots + 1, sizeof(*md->nodes)); /* h = 0, hi = 0: every slot empty */
	for (size_t k = 0; k <= n_slots; k++)
		md->nodes[k].ends = (struct exp_pair)EXP_PAIR_EMPTY;
	free(spans);
}

static const struct mle_terms memo_terms = {
	sizeof(struct p_terms), sizeof(double), p_terms_of, lg_rx_of, data_counts,
	memo_row_from_terms, NULL, NULL, NULL,
};

static const char *const param_names[N_PARAMS] = { "r", "alpha", "s", "beta" };

/* The model's description for mle.c, with the terms that read its data. */
#define PARETO_NBD_MLE(row_of_data, terms_of_data)                        \
	{                                                                 \
		.name = "pareto_nbd", .magic = "LTVPNBD1", .n_params = N_PARAMS, \
		.param_names = param_names,                               \
		.unidentified_hint = "too few repeat buyers",             \
		.row_log_lik = (row_of_data), .terms = (terms_of_data),   \
	}

static const struct mle_model pareto_nbd_mle = PARETO_NBD_MLE(data_row_log_lik, &terms);

/* pareto_nbd_mle for a fit, whose data is a struct memo_data. */
static const struct mle_model pareto_nbd_fit_mle = PARETO_NBD_MLE(memo_row_log_lik, &memo_terms);

static struct mle_fit fit_of(const struct pareto_nbd_model *model)
{
	struct mle_fit fit = { { 0 }, model->log_lik, model->n_customers, model->n_iter };

	fit.param[P_R] = model->r;
	fit.param[P_ALPHA] = model->alpha;
	fit.param[P_S] = model->s;
	fit.param[P_BETA] = model->beta;
	return fit;
}

static struct pareto_nbd_model *model_of(const struct mle_fit *fit)
{
	struct pareto_nbd_model *model = xcalloc(1, sizeof(*model));

	model->r = fit->param[P_R];
	model->alpha = fit->param[P_ALPHA];
	model->s = fit->param[P_S];
	model->beta = fit->param[P_BETA];
	model->log_lik = fit->log_lik;
	model->n_customers = fit->n_customers;
	model->n_iter = fit->n_iter;
	return model;
}

int pareto_nbd_fit(const struct pareto_nbd_param *param, const struct pareto_nbd_data *data,
		   struct pareto_nbd_model **out_model, struct ltv_err *err)
{
	struct mle_problem problem;
	struct memo_data md;
	struct mle_fit fit;
	double theta[N_PARAMS], mean_T;
	const char *why;
	int ret;

	assert(data && out_model);
	*out_model = NULL;
	why = pareto_nbd_param_check(param);
	if (why)
		return err_set(err, LTV_EINVAL, "pareto_nbd: %s", why);
	ret = pareto_nbd_data_check(data, err);
	if (ret < 0)
		return ret;
	md = (struct memo_data){ *data, NULL, NULL, NULL };
	if (param->tail_memo) {
		md.tails = xcalloc(1, sizeof(*md.tails));
		md.tails->A = NAN; /* no entry is for anything yet */
	}
	if (param->node_memo)
		node_slots_init(data, &md);
	problem = (struct mle_problem){ &pareto_nbd_fit_mle, &md, data->n, data->weight,
					param->max_iter, param->grad_tol };
	mean_T = mle_weighted_mean(data->T, data->weight, data->n);

	/* alpha and beta are time scales, so start them at the data's own scale. */
	theta[P_R] = 0;
	theta[P_ALPHA] = log(mean_T > 1e-8 ? mean_T : 1.0);
	theta[P_S] = 0;
	theta[P_BETA] = theta[P_ALPHA];
	ret = mle_fit(&problem, theta, &fit, err);
	free(md.tails);
	free(md.nodes);
	free(md.slot_of_row);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

int pareto_nbd_log_lik(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double *out_log_lik, struct ltv_err *err)
{
	struct mle_problem problem;
	struct mle_fit fit;
	double ll;
	int ret;

	assert(model && data && out_log_lik);
	ret = pareto_nbd_data_check(data, err);
	if (ret < 0)
		return ret;
	problem = (struct mle_problem){ &pareto_nbd_mle, data, data->n, data->weight, 0, 0 };
	fit = fit_of(model);
	ll = mle_log_lik(&problem, fit.param, NULL);
	if (isnan(ll))
		return err_set(err, LTV_EMODEL,
			       "pareto_nbd: log-likelihood is not a number at alpha = %g, beta = %g",
			       model->alpha, model->beta);
	*out_log_lik = ll;
	return 0;
}

static int not_finite(const struct pareto_nbd_model *model, struct ltv_err *err)
{
	return err_set(err, LTV_EMODEL,
		       "pareto_nbd: integral is not a finite number at r = %g, alpha = %g, "
		       "s = %g, beta = %g", model->r, model->alpha, model->s, model->beta);
}

int pareto_nbd_p_alive(const struct pareto_nbd_model *model, double x, double t_x, double T,
		       double *out_p_alive, struct ltv_err *err)
{
	struct mle_fit fit;
	double alive, dead;
	int ret;

	assert(model && out_p_alive);
	fit = fit_of(model);
	ret = check_row(x, t_x, T, 0, err);
	if (ret < 0)
		return ret;
	log_parts(fit.param, x, t_x, T, &alive, &dead);
	if (isnan(alive) || isnan(dead) || dead == INFINITY)
		return not_finite(model, err);
	*out_p_alive = 1 / (1 + exp(dead - alive));
	return 0;
}

static int check_horizon(double t, struct ltv_err *err)
{
	if (!isfinite(t) || t < 0)
		return err_set(err, LTV_EINVAL, "pareto_nbd: horizon t = %g is not a time >= 0", t);
	return 0;
}

int pareto_nbd_conditional_expected(const struct pareto_nbd_model *model, double x, double t_x,
				    double T, double t, double *out_expected,
				    struct ltv_err *err)
{
	double p_alive, log_ratio, integral, s1;
	int ret;

	assert(model && out_expected);
	s1 = model->s - 1;
	ret = check_horizon(t, err);
	if (ret == 0)
		ret = pareto_nbd_p_alive(model, x, t_x, T, &p_alive, err);
	if (ret < 0)
		return ret;
	/* (1 - e^((s-1) L)) / (s-1) with L = ln((beta+T)/(beta+T+t)), -L at s = 1. */
	log_ratio = log(model->beta + T) - log(model->beta + T + t);
	integral = s1 == 0 ? -log_ratio : -expm1(s1 * log_ratio) / s1;
	*out_expected = p_alive * (model->r + x) * (model->beta + T) / (model->alpha + T) * integral;
	return 0;
}

int pareto_nbd_p_any_purchase(const struct pareto_nbd_model *model, double x, double t_x,
			      double T, double t, double *out_p_any, struct ltv_err *err)
{
	double p_alive, li, A, B, rx;
	int ret;

	assert(model && out_p_any);
	A = model->alpha + T;
	B = model->beta + T;
	rx = model->r + x;
	ret = check_horizon(t, err);
	if (ret == 0)
		ret = pareto_nbd_p_alive(model, x, t_x, T, &p_alive, err);
	if (ret < 0)
		return ret;
	li = log_integral(A, rx + 1, B, model->s, 0, t, NULL);
	if (isnan(li) || li == INFINITY)
		return not_finite(model, err);
	*out_p_any = p_alive * exp(log(rx) + rx * log(A) + model->s * log(B) + li);
	return 0;
}

int pareto_nbd_predict(const struct pareto_nbd_model *model, const struct pareto_nbd_data *data,
		       double t, double *out_expected, double *out_p_alive, double *out_p_any,
		       struct ltv_err *err)
{
	assert(model && data && out_expected);
	for (size_t i = 0; i < data->n; i++) {
		const double x = data->x[i], t_x = data->t_x[i], T = data->T[i];
		int ret = check_row(x, t_x, T, i, err);

		if (ret == 0)
			ret = pareto_nbd_conditional_expected(model, x, t_x, T, t, &out_expected[i],
							      err);
		if (ret == 0 && out_p_alive)
			ret = pareto_nbd_p_alive(model, x, t_x, T, &out_p_alive[i], err);
		if (ret == 0 && out_p_any)
			ret = pareto_nbd_p_any_purchase(model, x, t_x, T, t, &out_p_any[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int pareto_nbd_save(const struct pareto_nbd_model *model, uint8_t **out_data, size_t *out_len,
		    struct ltv_err *err)
{
	struct mle_fit fit;

	(void)err;
	assert(model);
	fit = fit_of(model);
	mle_save(&pareto_nbd_mle, &fit, out_data, out_len);
	return 0;
}

int pareto_nbd_load(const void *data, size_t len, struct pareto_nbd_model **out_model,
		    struct ltv_err *err)
{
	struct mle_fit fit;
	int ret;

	assert(out_model);
	*out_model = NULL;
	ret = mle_load(&pareto_nbd_mle, data, len, &fit, err);
	if (ret < 0)
		return ret;
	*out_model = model_of(&fit);
	return 0;
}

void pareto_nbd_free(struct pareto_nbd_model *model)
{
	free(model);
}
