/*
 * Stage calibrate: per (tier, horizon), anchor-and-adjust — anchor = the
 * tier's mean actual LTV on training cohorts, α fitted on the validation
 * cohorts and clipped to [alpha_min, alpha_max] — or isotonic regression
 * when it cross-validates better (src/models/calibration.c decides). The
 * predictions calibrated are those of the selected mix, with fallbacks.
 *
 * A completed calibrate is a complete training run, so this stage also
 * records the model version — every artefact it was built from — in the
 * same transaction, and moves the aliases: the first version becomes
 * `production`, later ones `candidate`, and with models.auto_promote a
 * candidate whose validation WAPE beats production's replaces it.
 */
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/held_out.h"
#include "ltv/log.h"
#include "ltv/metrics.h"
#include "ltv/mix_memo.h"
#include "ltv/model_compare.h"
#include "ltv/predictor.h"
#include "ltv/stage.h"
#include "ltv/stage_io.h"


static const double *sort_install;

static int compare_by_install(const void *a, const void *b)
{
	double x = sort_install[*(const size_t *)a], y = sort_install[*(const size_t *)b];

	return x < y ? -1 : x > y ? 1 : (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
}

/*
 * rows[0..n) by install time, ties by row. Rows in increasing order (as
 * splits give them), without a NaN time, are ordered by the metrics' radix sort, whose ties stay
 * in input order, which is then row order: the same sequence as the
 * comparison sort, which serves any other input.
 */
static void sort_by_install(const double *install, size_t *rows, size_t n)
{
	size_t sorted = 1;
	double *key;
	size_t *perm, *copy;

	/* (a NaN time is equal to every other for compare_by_install, not for the radix sort) */
	for (size_t i = 0; i < n && sorted; i++)
		sorted = (i == 0 || rows[i - 1] <= rows[i]) && !isnan(install[rows[i]]);
	if (!sorted || n < 2) {
		sort_install = install;
		qsort(rows, n, sizeof(size_t), compare_by_install);
		return;
	}
	key = xmalloc(n * sizeof(double));
	perm = xmalloc(n * sizeof(size_t));
	copy = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		key[i] = install[rows[i]];
	metrics_sort_order(key, n, 0, perm);
	memcpy(copy, rows, n * sizeof(size_t));
	for (size_t k = 0; k < n; k++)
		rows[k] = copy[perm[k]];
	free(key);
	free(perm);
	free(copy);
}

/*
 * The rows calibrate fits and checks on: the validation snapshot rows of the
 * features artefact, or, with calibrate.held_out_ages, the validation users
 * at the ages they would be served at (include/ltv/held_out.h).
 */
struct judge_rows {
	const struct model_data *train; /* the features artefact's rows */
	const struct held_out *ho;      /* NULL: judge on train's validation rows */
	/*
	 * Per horizon index, each method's predictions of the judged rows, kept:
	 * the mix is asked for the same rows per tier, for the band and for the
	 * WAPE, and without held-out ages select of the same run has predicted
	 * every method on them already (include/ltv/prediction_memo.h).
	 */
	struct prediction_memo *memo[PREDICTOR_MAX_HORIZONS];
	/*
	 * Per horizon index, train's validation rows of every tier (judged
	 * without held-out ages): a tier's are these filtered, in the same order,
	 * instead of another pass over the whole frame per tier, band and WAPE.
	 */
	size_t *valid[PREDICTOR_MAX_HORIZONS];
	size_t n_valid[PREDICTOR_MAX_HORIZONS];
	/* Per tier (1-3) and horizon index: tier_train_mean, from the same pass. */
	double anchor[4][PREDICTOR_MAX_HORIZONS];
	/*
	 * Per horizon index, the mix of valid[h] in their order (NULL: none):
	 * select's of this run (it judged the same rows), else judge_mix_keep's.
	 * The band asks for it, and at the target horizon the WAPE.
	 */
	struct mix_memo *mix[PREDICTOR_MAX_HORIZONS];
};

static const struct model_data *judge_data(const struct judge_rows *j)
{
	return j->ho ? &j->ho->d : j->train;
}

/* The judged validation rows at horizon of tier (0: all); out->train is left empty when kept rows serve. */
static void judge_split(const struct judge_rows *j, int64_t horizon, int tier, struct row_split *out)
{
	const int h = feature_params_horizon_index(&j->train->params, horizon);
	const double *row_tier = j->train->tier;

	if (j->ho) {
		held_out_split(j->ho, horizon, tier, out);
		return;
	}
	if (h < 0 || h >= PREDICTOR_MAX_HORIZONS || !j->valid[h]) {
		model_data_split(j->train, horizon, tier, out);
		return;
	}
	/* model_data_split's own tier test, on the rows it gives for every tier */
	memset(out, 0, sizeof(*out));
	out->valid = xmalloc((j->n_valid[h] ? j->n_valid[h] : 1) * sizeof(size_t));
	for (size_t i = 0; i < j->n_valid[h]; i++)
		if (tier <= 0 || !row_tier || row_tier[j->valid[h][i]] == tier)
			out->valid[out->n_valid++] = j->valid[h][i];
}

/*
 * The tier's mean revenue still to come after the rows' ages, on training
 * cohorts (weighted): over w's training rows of the tier (w: a split of
 * every tier, whose rows of one tier are that tier's split, in order).
 */
static double tier_train_mean(const struct model_data *d, int64_t horizon,
			      const struct row_split *w, int tier)
{
	const double *y = model_data_label(d, horizon);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	double sum = 0, weight = 0;

	for (size_t i = 0; i < w->n_train; i++) {
		const size_t r = w->train[i];
		double wt;

		if (tier > 0 && d->tier && d->tier[r] != tier)
			continue; /* model_data_split's own tier test */
		wt = model_data_weight(d, r);
		sum += wt * (y[r] - rev_window[r]);
		weight += wt;
	}
	return weight > 0 ? sum / weight : NAN;
}

/*
 * Per horizon, one pass over the frame (a weighted split): its training
 * rows give each tier's anchor, its validation rows, each as often as its
 * weight, are the judged rows (model_data_split's) without held-out ages.
 * And each horizon's memo: select's, when it left one for these very rows
 * on the run's shelf (which has a lock), else an empty one. The horizons
 * are independent, each writing its own slots of j: side by side.
 */
static void judge_memos(struct stage_ctx *ctx, struct judge_rows *j, const struct int_list *hz)
{
	char *key = j->ho ? NULL : stage_prediction_key(ctx);
	const size_t n_h = hz->n < PREDICTOR_MAX_HORIZONS ? hz->n : PREDICTOR_MAX_HORIZONS;
	int from_select[PREDICTOR_MAX_HORIZONS] = { 0 };

#pragma omp parallel for schedule(dynamic, 1) num_threads(stage_threads(ctx))
	for (size_t h = 0; h < n_h; h++) {
		struct row_split w, s = { 0 };

		model_data_split_weighted(j->train, hz->v[h], 0, &w);
		for (int t = 1; t <= 3; t++)
			j->anchor[t][h] = tier_train_mean(j->train, hz->v[h], &w, t);
		if (j->ho) {
			held_out_split(j->ho, hz->v[h], 0, &s);
		} else {
			s.valid = w.valid;
			s.n_valid = w.n_valid;
			w.valid = NULL;
			model_data_expand_by_weight(j->train, &s.valid, &s.n_valid);
		}
		row_split_release(&w);
		j->memo[h] = key ? prediction_shelf_take(ctx->predictions, key, hz->v[h]) : NULL;
		j->mix[h] = prediction_memo_take_mix(j->memo[h]);
		from_select[h] = (j->memo[h] != NULL) + (j->mix[h] != NULL);
		if (!j->memo[h])
			j->memo[h] = prediction_memo_new(judge_data(j), hz->v[h], s.valid, s.n_valid);
		if (!j->ho) {
			j->valid[h] = s.valid;
			j->n_valid[h] = s.n_valid;
			s.valid = NULL;
		}
		row_split_release(&s);
	}
	/* said on the stage's thread, in horizon order */
	for (size_t h = 0; h < n_h; h++)
		LOG(LOG_DEBUG, "methods' predictions at %lld days: %s", (long long)hz->v[h],
		    from_select[h] == 2 ? "select's of this run, and its mix"
		    : from_select[h] ? "select's of this run" : "predicted here");
	free(key);
}

static void judge_memos_release(struct judge_rows *j)
{
	for (size_t h = 0; h < PREDICTOR_MAX_HORIZONS; h++) {
		prediction_memo_free(j->memo[h]);
		j->memo[h] = NULL;
		free(j->valid[h]);
		j->valid[h] = NULL;
		mix_memo_free(j->mix[h]);
		j->mix[h] = NULL;
	}
}

/*
 * The mix's raw predictions of the judged rows[0..n) at horizon
 * (predictor_predict_raw): the kept mix's when it serves these rows
 * (mix_memo_get: the same values).
 */
static int judge_predict(const struct judge_rows *j, const struct predictor *p,
			 const size_t *rows, size_t n, int64_t horizon, double *out,
			 struct ltv_err *err)
{
	const int h = feature_params_horizon_index(&p->params, horizon);
	const int kept = h >= 0 && h < PREDICTOR_MAX_HORIZONS;

	if (kept && mix_memo_get(j->mix[h], judge_data(j), rows, n, out))
		return 0;
	return predictor_predict_raw_memo(p, judge_data(j), rows, n, horizon, kept ? j->memo[h] : NULL,
					  out, err);
}

/*
 * Keeps the mix of horizon's judged rows of every tier, in their order, in
 * *out (include/ltv/mix_memo.h), when select left none: the band asks for
 * these very rows and, at the target horizon, the validation WAPE again.
 * (Each tier's fit asks for its cohorts' rows in install order, whose
 * curves sums run in another order, and the floor shares for the young
 * rows only: those predict.) Not with held-out ages.
 */
static int judge_mix_keep(const struct judge_rows *j, const struct predictor *p, int64_t horizon,
			  struct mix_memo **out, struct ltv_err *err)
{
	struct row_split s;
	double *raw;
	int ret;

	*out = NULL;
	if (j->ho)
		return 0;
	judge_split(j, horizon, 0, &s);
	raw = xmalloc((s.n_valid + 1) * sizeof(double));
	ret = judge_predict(j, p, s.valid, s.n_valid, horizon, raw, err);
	if (ret == 0)
		*out = mix_memo_new(judge_data(j), s.valid, s.n_valid, raw);
	free(raw);
	row_split_release(&s);
	return ret;
}

/*
 * Whether the calibration's cross-validated error (the kind it chose) is below
 * the raw predictions' error on the same rows. Raw predictions were not fitted
 * on these cohorts, so both are held-out errors.
 */
static int beats_raw(const struct calibration *cal, const double *pred, const double *actual,
		     size_t n)
{
	double raw = 0, cv = cal->kind == CALIBRATION_ANCHOR ? cal->cv_mse_anchor : cal->cv_mse_isotonic;

	for (size_t i = 0; i < n; i++)
		raw += (pred[i] - actual[i]) * (pred[i] - actual[i]);
	return n > 0 && cv < raw / (double)n;
}

/*
 * Whether the calibration lowers the summed campaign error of the revenue to
 * come (sum over campaigns of at least min_users rows of |predicted -
 * actual| totals) on the rows it was fitted on. The per-user check
 * (beats_raw) is not enough: a fit that lowers the users' squared error can
 * move every campaign total the wrong way (generated seed 7: validation
 * campaign WAPE 0.094 raw, 0.260 calibrated). Measured in sample, which
 * favours the calibration, so a calibration that fails here would fail held
 * out too.
 */
static int beats_raw_campaigns(const struct calibration *cal, const struct judge_rows *j,
			       const size_t *rows, const double *pred, const double *actual,
			       size_t n, size_t min_users)
{
	const struct model_data *d = judge_data(j);
	/* Held out: a campaign as one scoring sees it, its users at one pseudo as_of. */
	const size_t n_k = j->ho && j->ho->n_k ? j->ho->n_k : 1;
	const size_t n_cohorts = d->n_apps * d->n_campaigns * n_k;
	double *raw = xcalloc(n_cohorts + 1, sizeof(double)), *cald = xcalloc(n_cohorts + 1, sizeof(double));
	size_t *count = xcalloc(n_cohorts + 1, sizeof(size_t));
	double err_raw = 0, err_cal = 0;
	struct calibration_last last = { 0 };

	for (size_t i = 0; i < n; i++) {
		const size_t c = model_data_cohort(d, rows[i]) * n_k +
				 (j->ho ? (size_t)j->ho->k[rows[i]] : 0);
		const double v = calibration_apply_repeated(cal, pred[i], &last);

		raw[c] += pred[i] - actual[i];
		cald[c] += fmax(v, 0.0) - actual[i];
		count[c]++;
	}
	for (size_t c = 0; c < n_cohorts; c++)
		if (count[c] >= min_users) {
			err_raw += fabs(raw[c]);
			err_cal += fabs(cald[c]);
		}
	free(raw);
	free(cald);
	free(count);
	return err_cal < err_raw;
}

/* Fits one (tier, horizon); stores its body and table row. *out_cal is NULL for identity. */
static int fit_one(const struct stage_ctx *ctx, const struct judge_rows *j,
		   const struct predictor *p, int tier, int64_t horizon, struct calibration **out_cal,
		   struct calibration_row *out_row, struct ltv_err *err)
{
	const struct model_data *d = judge_data(j);
	struct calibration_param param;
	struct row_split s;
	const double *y = model_data_label(d, horizon);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	double *pred = NULL, *actual = NULL;
	int ret = 0;

	*out_cal = NULL;
	*out_row = (struct calibration_row){ tier, horizon, "identity", NAN, NAN, 0, NAN, NAN };
	judge_split(j, horizon, tier, &s);
	out_row->n_validation = (int64_t)s.n_valid;
	out_row->anchor = j->anchor[tier][feature_params_horizon_index(&j->train->params, horizon)];
	if (s.n_valid < (size_t)ctx->cfg->calibrate.min_users || isnan(out_row->anchor))
		goto out;
	/* Contiguous folds over install date, as calibration_fit_best expects. */
	sort_by_install(frame_column(&d->frame, "install_time"), s.valid, s.n_valid);
	pred = xmalloc(s.n_valid * sizeof(double));
	actual = xmalloc(s.n_valid * sizeof(double));
	ret = judge_predict(j, p, s.valid, s.n_valid, horizon, pred, err);
	if (ret < 0)
		goto out;
	/* Calibrated is the revenue still to come (predictor_calibrate). */
	for (size_t i = 0; i < s.n_valid; i++) {
		actual[i] = y[s.valid[i]] - rev_window[s.valid[i]];
		pred[i] = fmax(pred[i] - rev_window[s.valid[i]], 0.0);
	}
	calibration_param_init(&param);
	param.alpha_min = ctx->cfg->calibrate.alpha_min;
	param.alpha_max = ctx->cfg->calibrate.alpha_max;
	param.n_folds = (size_t)ctx->cfg->calibrate.folds;
	ret = calibration_fit_best(&param, out_row->anchor, pred, actual, s.n_valid, out_cal, err);
	if (ret < 0)
		goto out;
	if (!beats_raw(*out_cal, pred, actual, s.n_valid) ||
	    !beats_raw_campaigns(*out_cal, j, s.valid, pred, actual, s.n_valid,
				 (size_t)ctx->cfg->select.min_validation_users)) {
		/* Held-out folds or campaign totals say it would make things worse: not applied. */
		out_row->mse_anchor = (*out_cal)->cv_mse_anchor;
		out_row->mse_isotonic = (*out_cal)->cv_mse_isotonic;
		calibration_free(*out_cal);
		*out_cal = NULL;
		goto out;
	}
	out_row->kind = calibration_kind_name((*out_cal)->kind);
	out_row->alpha = (*out_cal)->kind == CALIBRATION_ANCHOR ? (*out_cal)->alpha : NAN;
	out_row->mse_anchor = (*out_cal)->cv_mse_anchor;
	out_row->mse_isotonic = (*out_cal)->cv_mse_isotonic;
out:
	free(pred);
	free(actual);
	row_split_release(&s);
	return ret;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Distinct ages collected by insertion before age_index sorts them all instead. */
#define AGE_INDEX_MAX_SMALL 64

/*
 * The distinct values of window[rows[0..n)] in ascending order into ages
 * (room for AGE_INDEX_MAX_SMALL); 0 when there are more of them, or a NaN
 * (which no order holds). Validation rows sit on a handful of snapshot ages,
 * and sorting half a million of them to find those was most of age_index.
 */
static size_t distinct_ages(struct frame_col window, const size_t *rows, size_t n, double *ages)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const double a = frame_col_at(window, rows[i]);
		size_t at = k;

		if (isnan(a))
			return 0;
		while (at > 0 && ages[at - 1] > a)
			at--;
		if (at > 0 && ages[at - 1] == a)
			continue;
		if (k == AGE_INDEX_MAX_SMALL)
			return 0;
		memmove(&ages[at + 1], &ages[at], (k - at) * sizeof(double));
		ages[at] = a;
		k++;
	}
	return k;
}

/*
 * The snapshot age of each validation row as a dense index (0 .. *out_n - 1,
 * by age): the ages are read from the rows, not from the configuration.
 */
static size_t *age_index(const struct model_data *d, const struct row_split *s, size_t *out_n)
{
	const struct frame_col window = frame_col(&d->frame, "window_days");
	size_t *idx = xcalloc(s->n_valid + 1, sizeof(size_t)), n = 0;
	double *ages = xmalloc((s->n_valid > AGE_INDEX_MAX_SMALL ? s->n_valid : AGE_INDEX_MAX_SMALL) *
			       sizeof(double));

	if (frame_col_found(window) && s->n_valid > 0)
		n = distinct_ages(window, s->valid, s->n_valid, ages);
	if (frame_col_found(window) && s->n_valid > 0 && n == 0) {
		for (size_t i = 0; i < s->n_valid; i++)
			ages[i] = frame_col_at(window, s->valid[i]);
		qsort(ages, s->n_valid, sizeof(double), compare_double);
		for (size_t i = 0; i < s->n_valid; i++)
			if (n == 0 || ages[i] != ages[n - 1])
				ages[n++] = ages[i];
	}
	if (frame_col_found(window) && s->n_valid > 0) {
		for (size_t i = 0; i < s->n_valid; i++) {
			const double a = frame_col_at(window, s->valid[i]);
			size_t lo = 0, hi = n - 1;

			while (lo < hi) {
				const size_t mid = (lo + hi) / 2;

				if (ages[mid] < a)
					lo = mid + 1;
				else
					hi = mid;
			}
			idx[i] = lo;
		}
	}
	*out_n = n ? n : 1;
	free(ages);
	return idx;
}

/*
 * Sums of revenue to come per held-out group (cohort * n_ages + age[i]);
 * groups of fewer than min_users rows get group_pred 0, which leaves them
 * out of the band. Returns how many groups are left in.
 */
static size_t group_sums(const struct model_data *d, const struct row_split *s, const double *pred,
			 const double *actual, const size_t *age, size_t n_ages, size_t min_users,
			 double *group_pred, double *group_actual, size_t *group_n)
{
	const size_t n_groups = d->n_apps * d->n_campaigns * n_ages;
	size_t kept = 0;

	memset(group_pred, 0, n_groups * sizeof(double));
	memset(group_actual, 0, n_groups * sizeof(double));
	memset(group_n, 0, n_groups * sizeof(size_t));
	for (size_t i = 0; i < s->n_valid; i++) {
		const size_t g = model_data_cohort(d, s->valid[i]) * n_ages + age[i];

		group_pred[g] += pred[i];
		group_actual[g] += actual[i];
		group_n[g]++;
	}
	/* Campaigns too small to say anything about campaign error are left out of its band. */
	for (size_t g = 0; g < n_groups; g++) {
		if (group_n[g] < min_users)
			group_pred[g] = 0;
		kept += group_pred[g] > 0;
	}
	return kept;
}

/* Campaigns with at least one group left in by group_sums: the band's independent units. */
static size_t group_units(size_t n_cohorts, size_t n_ages, const double *group_pred)
{
	size_t units = 0;

	for (size_t c = 0; c < n_cohorts; c++) {
		size_t a = 0;

		while (a < n_ages && !(group_pred[c * n_ages + a] > 0))
			a++;
		units += a < n_ages;
	}
	return units;
}

/*
 * The 80% band of the revenue still to come at one horizon (src/models/
 * conformal.c), from the calibrated predictions on the validation cohorts:
 * per user by prediction bucket, per campaign from held-out groups.
 *
 * A held-out group is one campaign at one snapshot age, not one campaign:
 * validation has a row per (user, snapshot age), so a campaign's sum over
 * its rows counted each user once per age, with errors that move together,
 * unlike any campaign that is scored (each user once, at one age); and
 * with few validation campaigns (CDNOW: 5 acquisition weeks) the conformal
 * quantile was their largest score. Per (campaign, age) each user counts
 * once, as when scoring, and there are as many groups as campaigns times
 * ages (the groups of one campaign share users, so they are not
 * independent: more of them steadies the quantile without the finite-sample
 * guarantee of independent ones).
 */
static int fit_band(const struct stage_ctx *ctx, const struct judge_rows *j,
		    const struct predictor *p, int64_t horizon, struct conformal *out,
		    struct ltv_err *err)
{
	const struct model_data *d = judge_data(j);
	const double *y = model_data_label(d, horizon);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const size_t n_cohorts = d->n_apps * d->n_campaigns;
	const size_t min_users = (size_t)ctx->cfg->select.min_validation_users;
	struct row_split s;
	double *pred, *actual, *group_pred = NULL, *group_actual = NULL;
	size_t *group_n = NULL, *age = NULL, n_ages = 1, n_groups, units;
	int ret;

	judge_split(j, horizon, 0, &s);
	if (j->ho) {
		/*
		 * Held out: a group is a campaign at one pseudo as_of T', its users
		 * each once at the real age they have there, as a scored campaign.
		 */
		n_ages = j->ho->n_k ? j->ho->n_k : 1;
		age = xcalloc(s.n_valid + 1, sizeof(size_t));
		for (size_t i = 0; i < s.n_valid; i++)
			age[i] = (size_t)j->ho->k[s.valid[i]];
	} else {
		age = age_index(d, &s, &n_ages);
	}
	n_groups = n_cohorts * n_ages;
	group_pred = xcalloc(n_groups + 1, sizeof(double));
	group_actual = xcalloc(n_groups + 1, sizeof(double));
	group_n = xcalloc(n_groups + 1, sizeof(size_t));
	pred = xmalloc((s.n_valid + 1) * sizeof(double));
	actual = xmalloc((s.n_valid + 1) * sizeof(double));
	ret = judge_predict(j, p, s.valid, s.n_valid, horizon, pred, err);
	for (size_t i = 0; i < s.n_valid && ret == 0; i++)
		actual[i] = rev_window[s.valid[i]];
	if (ret == 0)
		predictor_calibrate(p, d, s.valid, s.n_valid, horizon, actual, pred);
	for (size_t i = 0; i < s.n_valid && ret == 0; i++) {
		pred[i] -= rev_window[s.valid[i]];
		actual[i] = y[s.valid[i]] - rev_window[s.valid[i]];
	}
	/*
	 * Too few (campaign, age) groups with enough users (small data, or a
	 * horizon with few ages below it): the campaigns themselves, summed over
	 * their ages, as before, rather than no campaign interval at all.
	 */
	if (ret == 0 && group_sums(d, &s, pred, actual, age, n_ages, min_users, group_pred,
				   group_actual, group_n) < CONFORMAL_MIN_GROUPS && n_ages > 1) {
		memset(age, 0, s.n_valid * sizeof(size_t));
		n_groups = n_cohorts;
		n_ages = 1;
		group_sums(d, &s, pred, actual, age, 1, min_users, group_pred, group_actual, group_n);
	}
	/*
	 * The ages of one campaign share its users and miss together: the
	 * conformal rank's finite-sample margin is that of the campaigns
	 * (README "Campaign intervals", "Counting the rank by campaigns").
	 */
	units = group_units(n_cohorts, n_ages, group_pred);
	if (ret == 0 && s.n_valid > 0)
		ret = conformal_fit(pred, actual, s.n_valid, 20, 100, 0.8, group_pred, group_actual,
				    n_groups, units, out, err);
	/* Off by default: README "Campaign intervals" has the measurements why. */
	if (ret == 0 && s.n_valid > 0 && ctx->cfg->calibrate.bootstrap_band)
		conformal_fit_bootstrap(pred, actual, s.n_valid, group_pred, group_actual, n_groups,
					units, out);
	free(pred);
	free(actual);
	free(group_pred);
	free(group_actual);
	free(group_n);
	free(age);
	row_split_release(&s);
	return ret;
}

/* Row's tier slot (1..3; 3 without tiers), as predictor_calibrate reads it. */
static int row_tier(const struct model_data *d, size_t row)
{
	const int tier = d->tier ? (int)d->tier[row] : 3;

	return tier >= 1 && tier <= 3 ? tier : 3;
}

/*
 * Whether calibrate fits and stores floor shares (the step between
 * horizons, select.horizon_step, has no floor to share).
 */
static int fits_floor_shares(const struct config *cfg)
{
	return cfg->calibrate.floor_share && !cfg->select.horizon_step;
}

/*
 * calibrate.floor_share: per horizon index h > 0, the share f of
 * the floor between horizons h-1 and h (predictor_floor_between in
 * include/ltv/predictor.h) that brings the served sum at h of the users
 * younger than h-1 back to the longer horizon's own sum. Why: such a user
 * is served the larger of the two horizons' values, and where different
 * methods serve the two (seed 3: pareto_nbd at 30 days, curves at 90) each
 * user gets whichever says more and the sum is above both (README
 * "Results"). The rows: the validation rows at h younger than h-1 (snapshot
 * ages 1 to 14 for 30 and 90 days), users none of the methods was fitted
 * on, each as often as its weight; with floor_share 1 only their features
 * are read, no label.
 * With v the calibrated mix at each horizon (the shorter one served as
 * serving serves it, its own floors applied), f = (sum v_h - sum v_h-1) /
 * sum max(v_h - v_h-1, 0), clipped to [0, 1]: 0 when the longer horizon's
 * own sum is below the shorter's (then no user can be served less than the
 * shorter horizon, and that is all the floor gives). With floor_share 2 the
 * rows' actual ltv at h (validation labels, which end before as_of) takes
 * the place of sum v_h (predictor_floor_share_fit). One f serves every
 * tier (stored per tier, as calibrations are): fitted per tier, seed 42's
 * tiers 2 and 3 got 0 and were ranked at 90 days by the 30-day mix, and no
 * figure of the four generated samples was better but one bias (README
 * "Results").
 * With fewer than calibrate.min_users rows f stays 1 (the larger of the two).
 */
/*
 * v[k][0..n), k = 0..h: the calibrated mix at horizon k of rows[0..n)
 * (seen: their revenue so far). The horizons are independent (each reads
 * and fills its own memo, as fit_horizons' fits do) and are predicted side
 * by side, the longest first; an error is the shortest failing horizon's.
 */
static int floor_rows_predict(struct stage_ctx *ctx, const struct judge_rows *j, const struct predictor *p,
			      const size_t *rows, size_t n, const double *seen, size_t h, double **v)
{
	const struct model_data *d = judge_data(j);
	const struct int_list *hz = &j->train->params.horizons;
	struct ltv_err errs[PREDICTOR_MAX_HORIZONS];
	int rets[PREDICTOR_MAX_HORIZONS] = { 0 };

	for (size_t k = 0; k <= h; k++)
		v[k] = xmalloc((n + 1) * sizeof(double));
#pragma omp parallel for schedule(dynamic, 1) num_threads(stage_threads(ctx))
	for (size_t kk = 0; kk <= h; kk++) {
		const size_t k = h - kk;

		errs[k] = (struct ltv_err){ 0 };
		rets[k] = judge_predict(j, p, rows, n, hz->v[k], v[k], &errs[k]);
		if (rets[k] == 0)
			predictor_calibrate(p, d, rows, n, hz->v[k], seen, v[k]);
	}
	for (size_t k = 0; k <= h; k++)
		if (rets[k] < 0) {
			ctx->err = errs[k];
			return rets[k];
		}
	return 0;
}

static int fit_floor_shares(struct stage_ctx *ctx, const struct judge_rows *j, struct predictor *p)
{
	const struct model_data *d = judge_data(j);
	const struct int_list *hz = &j->train->params.horizons;
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const double *rev_window = frame_column(&d->frame, "rev_window");
	const size_t min_rows = (size_t)ctx->cfg->calibrate.min_users;
	const int to_actual = ctx->cfg->calibrate.floor_share == 2;
	cJSON *o = cJSON_AddObjectToObject(ctx->metrics, "floor_shares");
	int ret = 0;

	for (size_t h = 1; h < hz->n && h < PREDICTOR_MAX_HORIZONS && ret == 0; h++) {
		const double *y = model_data_label(d, hz->v[h]);
		double *v[PREDICTOR_MAX_HORIZONS] = { 0 }, *seen, *shorter, *longer, *actual, fit;
		size_t *rows, n = 0;
		struct row_split s;
		char key[48];
		cJSON *oh;

		judge_split(j, hz->v[h], 0, &s);
		rows = xmalloc((s.n_valid + 1) * sizeof(size_t));
		seen = xmalloc((s.n_valid + 1) * sizeof(double));
		for (size_t i = 0; frame_col_found(window) && i < s.n_valid; i++)
			if (frame_col_at(window, s.valid[i]) < (double)hz->v[h - 1]) {
				seen[n] = rev_window[s.valid[i]];
				rows[n++] = s.valid[i];
			}
		ret = floor_rows_predict(ctx, j, p, rows, n, seen, h, v);
		shorter = xmalloc((n + 1) * sizeof(double));
		longer = xmalloc((n + 1) * sizeof(double));
		actual = xmalloc((n + 1) * sizeof(double));
		for (size_t k = 1; k < h && ret == 0; k++)
			for (size_t i = 0; i < n; i++)
				v[k][i] = predictor_floor_between(v[k - 1][i], v[k][i],
								  p->floor_share[row_tier(d, rows[i])][k]);
		for (size_t i = 0; i < n; i++) {
			shorter[i] = v[h - 1][i];
			longer[i] = v[h][i];
			actual[i] = y ? y[rows[i]] : NAN;
		}
		fit = to_actual && !y ? NAN /* no labels: the plain floor */
		      : predictor_floor_share_fit(shorter, longer, to_actual ? actual : NULL, n);
		/* one share for every tier (per tier, measured: worse on every figure; README) */
		for (int t = 0; t < 4; t++)
			p->floor_share[t][h] = n >= min_rows && !isnan(fit) ? fit : 1.0;
		LOG(LOG_INFO, "floor share %lld to %lld days: %.4f on %zu validation rows",
		    (long long)hz->v[h - 1], (long long)hz->v[h], p->floor_share[0][h], n);
		snprintf(key, sizeof(key), "h%lld", (long long)hz->v[h]);
		oh = cJSON_AddObjectToObject(o, key);
		cJSON_AddNumberToObject(oh, "rows", (double)n);
		cJSON_AddNumberToObject(oh, "share", p->floor_share[0][h]);
		for (size_t k = 0; k <= h; k++)
			free(v[k]);
		free(shorter);
		free(longer);
		free(actual);
		free(rows);
		free(seen);
		row_split_release(&s);
	}
	return ret;
}

/* Each horizon's band, fitted by fit_horizons, into the output and its metrics. */
static int store_bands(struct stage_ctx *ctx, const struct judge_rows *j, struct predictor *p,
		       int64_t out_id)
{
	const struct int_list *hz = &j->train->params.horizons;
	cJSON *bands = cJSON_AddObjectToObject(ctx->metrics, "interval_bands");
	int ret = 0;

	for (size_t h = 0; h < hz->n && ret == 0; h++) {
		char key[48];
		size_t len;
		uint8_t *body;
		cJSON *o;

		if (p->band[h].n_buckets == 0)
			continue;
		body = conformal_save(&p->band[h], &len);
		snprintf(key, sizeof(key), "band:h%lld", (long long)hz->v[h]);
		hasher_update(&ctx->content, body, len);
		ret = registry_blob_put(ctx->reg, out_id, key, body, len, &ctx->err);
		free(body);
		o = cJSON_AddObjectToObject(bands, key + 5);
		cJSON_AddNumberToObject(o, "buckets", (double)p->band[h].n_buckets);
		cJSON_AddNumberToObject(o, "campaign_ratio_lo", p->band[h].group_lo);
		cJSON_AddNumberToObject(o, "campaign_ratio_hi", p->band[h].group_hi);
		cJSON_AddNumberToObject(o, "campaign_tau2", p->band[h].group_tau2);
		cJSON_AddNumberToObject(o, "campaign_noise_k", p->band[h].group_k);
		cJSON_AddNumberToObject(o, "campaign_q", p->band[h].group_q);
		if (p->band[h].boot_grid) {
			cJSON_AddNumberToObject(o, "campaign_boot_tau2", p->band[h].boot_tau2);
			cJSON_AddNumberToObject(o, "campaign_boot_q", p->band[h].boot_q);
		}
		cJSON_AddNumberToObject(o, "campaigns", (double)p->band[h].n_groups);
	}
	return ret;
}

/*
 * Value segments cut at the 50th, 80th and 95th percentile of the calibrated
 * predictions on the validation cohorts: Low / Medium / High / VIP then hold
 * about 50 / 30 / 15 / 5 % of a cohort like the recent ones.
 */
static void segment_cuts(const double *pred, size_t n, double *out_cuts)
{
	static const double q[SEGMENT_CUTS] = { 0.50, 0.80, 0.95 };
	double *sorted = xmalloc((n ? n : 1) * sizeof(double));
	int plain = 1;
	size_t done = 0; /* sorted[0..done) holds the smallest values, the last cut's among them */

	memcpy(sorted, pred, n * sizeof(double));
	/* a NaN or a -0 beside 0 has no one place in a sort: qsort's as before */
	for (size_t i = 0; i < n && plain; i++)
		plain = !isnan(sorted[i]) && !(sorted[i] == 0 && signbit(sorted[i]));
	if (!plain)
		qsort(sorted, n, sizeof(double), compare_double);
	for (int k = 0; k < SEGMENT_CUTS; k++) {
		const size_t at = n ? (size_t)(q[k] * (double)(n - 1)) : 0;

		/*
		 * Else the three cuts by quickselect, each on what lies above the
		 * last: the values a sort puts there (the run's tail at 1,000,000
		 * users sorted half a million predictions for three of them).
		 */
		if (plain && n && at >= done) {
			kth_select(sorted + done, n - done, at - done);
			done = at + 1;
		}
		out_cuts[k] = n ? sorted[at] : 0;
	}
	free(sorted);
}

/* Campaign-level WAPE of the calibrated mix on the validation cohorts at the target horizon. */
static int validation_wape(struct stage_ctx *ctx, const struct judge_rows *j,
			   struct predictor *p, double *out_raw, double *out_calibrated)
{
	const struct model_data *d = judge_data(j);
	const int64_t target = d->params.target_horizon;
	const double *y = model_data_label(d, target);
	const double *rev_window = frame_column(&d->frame, "rev_window");
	struct row_split s;
	struct metrics_campaign camp;
	double *pred, *actual, *floor_v;
	size_t *group;
	int ret;

	judge_split(j, target, 0, &s);
	pred = xmalloc((s.n_valid + 1) * sizeof(double));
	actual = xmalloc((s.n_valid + 1) * sizeof(double));
	floor_v = xmalloc((s.n_valid + 1) * sizeof(double));
	group = xmalloc((s.n_valid + 1) * sizeof(size_t));
	*out_raw = *out_calibrated = NAN;
	ret = judge_predict(j, p, s.valid, s.n_valid, target, pred, &ctx->err);
	for (size_t i = 0; i < s.n_valid && ret == 0; i++) {
		actual[i] = y[s.valid[i]];
		group[i] = model_data_cohort(d, s.valid[i]);
		floor_v[i] = rev_window[s.valid[i]];
	}
	if (ret == 0 && s.n_valid > 0 &&
	    metrics_campaign_wape(actual, pred, group, s.n_valid, d->n_apps * d->n_campaigns,
				  (size_t)ctx->cfg->select.min_validation_users, &camp, &ctx->err) == 0)
		*out_raw = camp.wape;
	if (ret == 0 && s.n_valid > 0) {
		predictor_calibrate(p, d, s.valid, s.n_valid, target, floor_v, pred);
		segment_cuts(pred, s.n_valid, p->segment_cut);
		if (metrics_campaign_wape(actual, pred, group, s.n_valid, d->n_apps * d->n_campaigns,
					  (size_t)ctx->cfg->select.min_validation_users, &camp,
					  &ctx->err) == 0)
			*out_calibrated = camp.wape;
	}
	free(pred);
	free(actual);
	free(floor_v);
	free(group);
	row_split_release(&s);
	return ret;
}

/*
 * The version's headline error: select's cross-fitted campaign WAPE at the
 * target horizon (NaN when select could not compute one).
 */
static double select_out_of_sample_wape(const struct artefact_info *select)
{
	cJSON *m = select && select->metrics ? cJSON_Parse(select->metrics) : NULL;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "out_of_sample_campaign_wape");
	double wape = cJSON_IsNumber(v) ? v->valuedouble : NAN;

	cJSON_Delete(m);
	return wape;
}

/* Every artefact of the version: the inputs, what they were made from, and this one. */
static int record_model_version(struct stage_ctx *ctx, int64_t out_id, double wape,
				int64_t target_horizon, int64_t *out_version)
{
	int64_t ids[STAGE_MAX_INPUTS * 4];
	size_t n = 0;
	char *metrics;
	cJSON *m = cJSON_CreateObject();
	int ret = 0;

	ids[n++] = out_id;
	for (size_t i = 0; i < ctx->n_inputs && ret == 0; i++) {
		int64_t *up = NULL;
		size_t n_up = 0;

		ids[n++] = ctx->inputs[i]->id;
		ret = registry_lineage(ctx->reg, ctx->inputs[i]->id, &up, &n_up, &ctx->err);
		for (size_t k = 0; k < n_up && n < sizeof(ids) / sizeof(ids[0]); k++)
			ids[n++] = up[k]; /* duplicates are ignored by the registry */
		free(up);
	}
	cJSON_AddNumberToObject(m, "out_of_sample_campaign_wape", wape);
	cJSON_AddNumberToObject(m, "target_horizon", (double)target_horizon);
	metrics = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	if (ret == 0)
		ret = registry_model_version_create(ctx->reg, ctx->run_id, ids, n, wape, metrics,
						    out_version, &ctx->err);
	cJSON_free(metrics);
	return ret;
}

/*
 * The champion/challenger gate (DESIGN.md "The registry"). With
 * models.auto_promote, the new version replaces production when the paired
 * comparison (include/ltv/model_compare.h: both versions on the same users,
 * installed after both versions' as_of, whose outcome at the target horizon
 * is known in the data ingested) finds its campaign WAPE lower with
 * p < 0.05. When there are no such users yet — the usual case right after a
 * retrain on all the data, as the new version's as_of is the latest event —
 * the decision falls back to the old rule, each version's own validation
 * campaign WAPE (measured on different users), and the reason says so. The
 * decision and its numbers go into alias_history: in production's move, or,
 * when production stays, in the candidate's. Every move goes through
 * registry_alias_move, as `models promote` and the HTTP alias route do, so an
 * auto-promotion unsets the candidate and records who and why the same way.
 */
static int move_aliases(struct stage_ctx *ctx, int64_t version, double wape)
{
	struct ltv_err ignored, why = { 0 };
	struct alias_move mv;
	struct compare_result cr;
	int64_t production;
	double production_wape = NAN;
	char reason[1024], summary[512];
	int ret, promote;

	if (registry_alias_get(ctx->reg, "production", &production, &ignored) != 0)
		return registry_alias_move(ctx->reg, "production", version, "ltvpipe run",
					   "first model version", &mv, &ctx->err);
	if (!ctx->cfg->models.auto_promote)
		return registry_alias_move(ctx->reg, "candidate", version, "ltvpipe run",
					   "new model version", &mv, &ctx->err);
	if (compare_versions(ctx->reg, ctx->cfg, production, version, INT64_MIN, 0, &cr, &why) == 0) {
		promote = compare_b_is_better(&cr);
		compare_summary(&cr, summary, sizeof(summary));
		snprintf(reason, sizeof(reason), "%s: %s", promote ? "auto-promoted" : "new model version; "
			 "kept production (not significantly better)", summary);
		cJSON_AddStringToObject(ctx->metrics, "auto_promote_rule", "paired comparison");
		cJSON_AddNumberToObject(ctx->metrics, "paired_users", (double)cr.pr.n);
		cJSON_AddNumberToObject(ctx->metrics, "paired_wape_difference", cr.pr.m[PAIRED_WAPE].diff);
		cJSON_AddNumberToObject(ctx->metrics, "paired_p_value", cr.pr.m[PAIRED_WAPE].p);
	} else {
		registry_model_version_error(ctx->reg, production, &production_wape, &ignored);
		promote = !isnan(wape) && (isnan(production_wape) || wape < production_wape);
		LOG(LOG_INFO, "auto_promote: no paired comparison (%s); validation WAPE decides", why.msg);
		if (promote)
			snprintf(reason, sizeof(reason), "auto-promoted: validation campaign WAPE %.4f beats "
				 "production v%lld's %.4f (no paired comparison yet: %.600s)", wape,
				 (long long)production, production_wape, why.msg);
		else
			snprintf(reason, sizeof(reason), "new model version; kept production: validation "
				 "campaign WAPE %.4f does not beat production v%lld's %.4f (no paired "
				 "comparison yet: %.600s)", wape, (long long)production, production_wape, why.msg);
		cJSON_AddStringToObject(ctx->metrics, "auto_promote_rule", "validation WAPE");
	}
	cJSON_AddStringToObject(ctx->metrics, "auto_promote", promote ? "promoted" : "kept production");
	ret = registry_alias_move(ctx->reg, "candidate", version, "ltvpipe run",
				  promote ? "new model version" : reason, &mv, &ctx->err);
	if (ret < 0 || !promote)
		return ret;
	/* the move unsets the candidate it promotes and appends that to the reason */
	return registry_alias_move(ctx->reg, "production", version, "ltvpipe run (auto_promote)",
				   reason, &mv, &ctx->err);
}

/*
 * Every (tier, horizon) calibration, then each horizon's band (which
 * applies its tiers' calibrations): the horizons side by side, as they
 * share nothing they write (each its own memo, calibrations, band and
 * rows), the longest first (it has the most validation rows). Fits are
 * counted as they finish, so progress reads as before (k of 9 fits). On
 * failure, the lowest failing horizon's error, whatever the thread count.
 */
static int fit_horizons(struct stage_ctx *ctx, struct judge_rows *j, struct predictor *p,
			struct calibration_row (*rows)[PREDICTOR_MAX_HORIZONS])
{
	const struct int_list *hz = &j->train->params.horizons;
	const int n = (int)hz->n;
	struct ltv_err errs[PREDICTOR_MAX_HORIZONS];
	int rets[PREDICTOR_MAX_HORIZONS] = { 0 }, done = 0;

#pragma omp parallel for schedule(dynamic) num_threads(stage_threads(ctx))
	for (int k = 0; k < n; k++) {
		const int h = n - 1 - k;

		if (!j->mix[h]) /* select's, when it left one */
			rets[h] = judge_mix_keep(j, p, hz->v[h], &j->mix[h], &errs[h]);
		for (int t = 1; t <= 3 && rets[h] == 0; t++) {
			rets[h] = fit_one(ctx, j, p, t, hz->v[h], &p->cal[t][h], &rows[t][h], &errs[h]);
#pragma omp critical(calibrate_progress)
			stage_progress(ctx, "fits", (uint64_t)++done, 3 * (uint64_t)n);
		}
		if (rets[h] == 0)
			rets[h] = fit_band(ctx, j, p, hz->v[h], &p->band[h], &errs[h]);
	}
	for (int h = 0; h < n; h++)
		if (rets[h] < 0) {
			ctx->err = errs[h];
			return rets[h];
		}
	return 0;
}

/*
 * The methods select of this run loaded, when it left them on the run's
 * shelf (prediction_shelf_offer_states), else loaded here: hurdle's and
 * multiplier's trees took 0.65 of calibrate's 1.16 CPU s at 1,000,000 users
 * (perf), parsed again from the registry.
 */
static int load_methods(struct stage_ctx *ctx, struct predictor *p,
			const struct artefact_info *const *artefacts)
{
	char *key = stage_prediction_key(ctx);
	const int from_select = prediction_shelf_take_states(ctx->predictions, key, p->states);

	free(key);
	LOG(LOG_DEBUG, "methods: %s", from_select ? "select's of this run" : "loaded here");
	return from_select ? 0 : predictor_load_methods(p, ctx->reg, artefacts, &ctx->err);
}

int stage_calibrate_run(struct stage_ctx *ctx)
{
	const struct int_list *hz;
	const struct artefact_info *artefacts[METHOD_COUNT];
	struct calibration_row rows[4][PREDICTOR_MAX_HORIZONS];
	struct model_data d;
	struct held_out ho = { 0 };
	struct judge_rows judge = { .train = &d };
	struct predictor p;
	double wape_raw = NAN, wape_cal = NAN, wape_oos;
	int64_t out_id, version;
	int ret;

	ret = model_data_load(ctx, 1, &d);
	if (ret < 0)
		return ret;
	hz = &d.params.horizons;
	predictor_init(&p, ctx->cfg, &d.params);
	for (int m = 0; m < METHOD_COUNT; m++)
		artefacts[m] = stage_input(ctx, method_table[m]->name);
	ret = load_methods(ctx, &p, artefacts);
	if (ret == 0)
		ret = predictor_load_selection(&p, ctx->reg, stage_input(ctx, "select"), &ctx->err);
	if (ret == 0 && ctx->cfg->calibrate.held_out_ages) {
		ret = held_out_load(ctx, &d, &ho);
		judge.ho = &ho;
		if (ret == 0)
			cJSON_AddNumberToObject(ctx->metrics, "held_out_rows", (double)ho.d.frame.n_rows);
	}
	if (ret == 0)
		judge_memos(ctx, &judge, hz);
	/* fits: one per tier and horizon, and each horizon's band */
	if (ret == 0)
		ret = fit_horizons(ctx, &judge, &p, rows);
	if (ret == 0 && fits_floor_shares(ctx->cfg))
		ret = fit_floor_shares(ctx, &judge, &p);
	if (ret == 0)
		ret = validation_wape(ctx, &judge, &p, &wape_raw, &wape_cal);
	if (ret < 0)
		goto out;
	cJSON_AddNumberToObject(ctx->metrics, "validation_campaign_wape_raw", wape_raw);
	/* The horizon its figures are at (status prints it; not today's config's). */
	cJSON_AddNumberToObject(ctx->metrics, "target_horizon", (double)d.params.target_horizon);
	cJSON_AddNumberToObject(ctx->metrics, "validation_campaign_wape", wape_cal);

	ret = stage_output_id(ctx, &out_id);
	for (int t = 1; t <= 3 && ret == 0; t++) {
		for (size_t h = 0; h < hz->n && ret == 0; h++) {
			char key[64];

			ret = registry_calibration_insert(ctx->reg, out_id, &rows[t][h], &ctx->err);
			hasher_add_str(&ctx->content, rows[t][h].kind);
			if (ret < 0 || !p.cal[t][h])
				continue;
			size_t len;
			uint8_t *body = calibration_save(p.cal[t][h], &len);

			snprintf(key, sizeof(key), "cal:t%d:h%lld", t, (long long)hz->v[h]);
			hasher_update(&ctx->content, body, len);
			ret = registry_blob_put(ctx->reg, out_id, key, body, len, &ctx->err);
			free(body);
		}
	}
	if (ret == 0) {
		size_t len;
		uint8_t *body = predictor_save_segments(&p, &len);

		hasher_update(&ctx->content, body, len);
		ret = registry_blob_put(ctx->reg, out_id, "segments", body, len, &ctx->err);
		free(body);
		cJSON_AddNumberToObject(ctx->metrics, "segment_medium_from", p.segment_cut[0]);
		cJSON_AddNumberToObject(ctx->metrics, "segment_high_from", p.segment_cut[1]);
		cJSON_AddNumberToObject(ctx->metrics, "segment_vip_from", p.segment_cut[2]);
	}
	if (ret == 0)
		ret = store_bands(ctx, &judge, &p, out_id);
	if (ret == 0 && fits_floor_shares(ctx->cfg)) {
		size_t len;
		uint8_t *body = predictor_save_floor_shares(&p, &len);

		hasher_update(&ctx->content, body, len);
		ret = registry_blob_put(ctx->reg, out_id, "floor_shares", body, len, &ctx->err);
		free(body);
	}
	wape_oos = select_out_of_sample_wape(stage_input(ctx, "select"));
	cJSON_AddNumberToObject(ctx->metrics, "out_of_sample_campaign_wape", wape_oos);
	if (ret == 0)
		ret = record_model_version(ctx, out_id, wape_oos, d.params.target_horizon, &version);
	if (ret == 0) {
		cJSON_AddNumberToObject(ctx->metrics, "model_version", (double)version);
		ret = move_aliases(ctx, version, wape_oos);
	}
out:
	judge_memos_release(&judge);
	predictor_release(&p);
	held_out_release(&ho);
	model_data_release(&d);
	return ret;
}
