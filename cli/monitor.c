/*
 * `ltvpipe monitor` (contract and the choice of reference in
 * include/ltv/monitor.h). Every frame is built by model_data_for_scoring at a
 * cut-off — the version's as_of and the windows before it for the reference,
 * the monitored as_of for the current users — so feature_build_base's rule
 * (only days complete at the cut-off) is what keeps the reference from
 * reading anything after the version's as_of. Predictions come from
 * serving_predict alone.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/data_source.h"
#include "ltv/feature_build.h"
#include "ltv/log.h"
#include "ltv/model_loader.h"
#include "ltv/monitor.h"
#include "ltv/serving.h"
#include "ltv/timeutil.h"

/* |z| of a significant calibration bias: two-sided p < 0.01 (include/ltv/monitor.h). */
#define MONITOR_CALIBRATION_Z 2.576

/* A growing column of values per PSI row (features, then the prediction). */
struct samples {
	double **v;
	size_t n, cap;
};

static void samples_init(struct samples *s, size_t n_cols)
{
	s->v = xcalloc(n_cols, sizeof(double *));
	s->n = s->cap = 0;
}

static void samples_release(struct samples *s, size_t n_cols)
{
	for (size_t c = 0; s->v && c < n_cols; c++)
		free(s->v[c]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void samples_reserve(struct samples *s, size_t n_cols, size_t more)
{
	if (s->n + more <= s->cap)
		return;
	while (s->cap < s->n + more)
		s->cap = s->cap ? s->cap * 2 : 1024;
	for (size_t c = 0; c < n_cols; c++)
		s->v[c] = xrealloc(s->v[c], s->cap * sizeof(double));
}

/* The union of the methods' feature lists, in order of first appearance. */
static void feature_union(const struct loaded_model *m, struct monitor_result *r)
{
	const struct config *cfg = &m->cfg;
	struct str_list hurdle, multiplier;
	const struct str_list *lists[] = { &hurdle, &multiplier, &cfg->lookalike.features };
	size_t cap = 0;

	config_model_features(cfg, &cfg->hurdle, &hurdle);
	config_model_features(cfg, &cfg->multiplier, &multiplier);
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		for (size_t i = 0; i < lists[l]->n; i++) {
			int seen = 0;

			for (size_t k = 0; k < r->n_psi && !seen; k++)
				seen = strcmp(r->psi[k].name, lists[l]->v[i]) == 0;
			if (seen)
				continue;
			ARRAY_GROW(r->psi, r->n_psi + 1, cap);
			memset(&r->psi[r->n_psi], 0, sizeof(r->psi[0]));
			snprintf(r->psi[r->n_psi++].name, sizeof(r->psi[0].name), "%s", lists[l]->v[i]);
		}
	}
	config_str_list_free(&hurdle);
	config_str_list_free(&multiplier);
	ARRAY_GROW(r->psi, r->n_psi + 1, cap);
	memset(&r->psi[r->n_psi], 0, sizeof(r->psi[0]));
	snprintf(r->psi[r->n_psi++].name, sizeof(r->psi[0].name), "predicted_ltv_%lld",
		 (long long)m->params.target_horizon);
}

/* Rows of d installed in [end - days, end). Caller frees. */
static size_t *window_rows(const struct model_data *d, int64_t end, int64_t days, size_t *out_n)
{
	const double *install = frame_column(&d->frame, "install_time");
	const double start = (double)(end - days * SECONDS_PER_DAY);
	size_t *rows = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(size_t)), n = 0;

	for (size_t i = 0; i < d->frame.n_rows; i++)
		if (install[i] >= start && install[i] < (double)end)
			rows[n++] = i;
	*out_n = n;
	return rows;
}

/*
 * Appends the feature values and the served prediction at the target horizon
 * of the users of d installed in the window days before end.
 */
static int add_window(const struct loaded_model *m, const struct model_data *d, int64_t end,
		      int64_t days, const struct monitor_result *r, struct samples *s,
		      struct ltv_err *err)
{
	const int ti = feature_params_horizon_index(&m->params, m->params.target_horizon);
	struct served sv;
	size_t n, *rows = window_rows(d, end, days, &n);
	int ret = 0;

	if (n == 0)
		goto out;
	ret = serving_predict(m, d, rows, n, &sv, err);
	if (ret < 0)
		goto out;
	samples_reserve(s, r->n_psi, n);
	for (size_t c = 0; c + 1 < r->n_psi; c++) {
		const double *col = frame_column(&d->frame, r->psi[c].name);

		if (!col) {
			ret = err_set(err, LTV_ECONFIG, "monitor: model version %lld reads feature '%s', "
				      "which the features frame does not have", (long long)m->version,
				      r->psi[c].name);
			break;
		}
		for (size_t i = 0; i < n; i++)
			s->v[c][s->n + i] = col[rows[i]];
	}
	for (size_t i = 0; i < n; i++)
		s->v[r->n_psi - 1][s->n + i] = sv.ltv[ti][i];
	if (ret == 0)
		s->n += n;
	served_release(&sv);
out:
	free(rows);
	return ret;
}

static int week_compare(const void *pa, const void *pb)
{
	const struct monitor_week *a = pa, *b = pb;

	if (a->c.horizon != b->c.horizon)
		return a->c.horizon < b->c.horizon ? -1 : 1;
	return (a->week_start > b->week_start) - (a->week_start < b->week_start);
}

static struct monitor_week *find_week(struct monitor_result *r, size_t *cap, int64_t horizon,
				      int64_t week_start, int64_t scored_at)
{
	for (size_t k = 0; k < r->n_weeks; k++)
		if (r->weeks[k].c.horizon == horizon && r->weeks[k].week_start == week_start)
			return &r->weeks[k];
	ARRAY_GROW(r->weeks, r->n_weeks + 1, *cap);
	memset(&r->weeks[r->n_weeks], 0, sizeof(r->weeks[0]));
	r->weeks[r->n_weeks].c.horizon = horizon;
	r->weeks[r->n_weeks].week_start = week_start;
	r->weeks[r->n_weeks].scored_at = scored_at;
	r->weeks[r->n_weeks].new_cohort = week_start >= r->model_as_of;
	return &r->weeks[r->n_weeks++];
}

static void cal_add(struct monitor_calibration *c, double pred, double actual)
{
	c->n++;
	c->sum_pred += pred;
	c->sum_actual += actual;
	c->sum_diff2 += (pred - actual) * (pred - actual);
}

/*
 * Bias, z and level of a group (include/ltv/monitor.h): it warns when judged
 * and its bias is both material and significant.
 */
static void cal_finish(const struct config *cfg, struct monitor_calibration *c)
{
	c->bias = c->n && c->sum_actual > 0 ? c->sum_pred / c->sum_actual - 1 : NAN;
	c->z = NAN;
	if (c->n >= 2) {
		const double nn = (double)c->n, mean = (c->sum_pred - c->sum_actual) / nn;
		const double var = (c->sum_diff2 - nn * mean * mean) / (nn - 1);

		c->z = var > 0 ? mean / sqrt(var / nn) : NAN;
	}
	c->judged = c->n >= (size_t)cfg->monitor.calibration_min_users;
	c->level = c->judged && !isnan(c->bias) && fabs(c->bias) >= cfg->monitor.calibration_warn &&
			   !isnan(c->z) && fabs(c->z) >= MONITOR_CALIBRATION_Z
			   ? PSI_WARN : PSI_OK;
}

/* The rows score serves in d: every user younger than the longest horizon. Caller frees. */
static size_t *scored_rows(const struct feature_params *fp, const struct model_data *d, size_t *out_n)
{
	const double *age = frame_column(&d->frame, "age_days");
	const double max_h = (double)feature_params_max_horizon(fp);
	size_t *rows = xmalloc((d->frame.n_rows ? d->frame.n_rows : 1) * sizeof(size_t)), n = 0;

	for (size_t i = 0; i < d->frame.n_rows; i++)
		if (age[i] < max_h)
			rows[n++] = i;
	*out_n = n;
	return rows;
}

/*
 * The users of ref (the frame at T) installed in the longest horizon before
 * T, served as at T, against their ltv_H in cur (the frame at as_of; cur_row
 * its row of each uid) where it is complete.
 */
static int calibration_at_t(const struct loaded_model *m, const struct model_data *ref,
			    const struct model_data *cur, const int64_t *cur_row, size_t n_cur_uid,
			    struct monitor_result *r, size_t *week_cap, struct ltv_err *err)
{
	const struct feature_params *fp = &m->params;
	const int64_t max_h = feature_params_max_horizon(fp);
	const double *install = frame_column(&ref->frame, "install_time");
	const double *uid = frame_column(&ref->frame, "uid");
	size_t n, *rows = window_rows(ref, r->model_as_of, max_h, &n);
	struct served sv;
	int ret = 0;

	if (n == 0)
		goto out;
	ret = serving_predict(m, ref, rows, n, &sv, err);
	if (ret < 0)
		goto out;
	for (size_t h = 0; h < r->n_cal; h++) {
		struct monitor_calibration *c = &r->cal[h];
		const double *actual = model_data_label(cur, c->horizon);

		for (size_t i = 0; actual && i < n; i++) {
			const double t = install[rows[i]];
			const size_t u = (size_t)uid[rows[i]];
			int64_t week;

			/* Younger than H at T (not a training row at H), complete at as_of. */
			if (t < (double)(r->model_as_of - c->horizon * SECONDS_PER_DAY) ||
			    t + (double)(c->horizon * SECONDS_PER_DAY) > (double)r->as_of ||
			    u >= n_cur_uid || cur_row[u] < 0 || isnan(actual[cur_row[u]]))
				continue;
			cal_add(c, sv.ltv[h][i], actual[cur_row[u]]);
			week = r->model_as_of -
			       (int64_t)ceil(((double)r->model_as_of - t) / (7.0 * SECONDS_PER_DAY)) * 7 *
				       SECONDS_PER_DAY;
			cal_add(&find_week(r, week_cap, c->horizon, week, r->model_as_of)->c, sv.ltv[h][i],
				actual[cur_row[u]]);
		}
	}
	served_release(&sv);
out:
	free(rows);
	return ret;
}

/*
 * Whether week k after T (install week [T + 7k, T + 7k + 7 days)) is judged
 * at horizon h: all of it complete at as_of, and among the latest
 * monitor.calibration_weeks such weeks.
 */
static int new_week_judged(const struct config *cfg, const struct monitor_result *r, int64_t k,
			   int64_t horizon)
{
	const int64_t week = 7 * SECONDS_PER_DAY;
	const int64_t last = (r->as_of - horizon * SECONDS_PER_DAY - r->model_as_of) / week - 1;

	return r->as_of >= r->model_as_of + horizon * SECONDS_PER_DAY + week && k <= last &&
	       k > last - cfg->monitor.calibration_weeks;
}

/*
 * The cohorts installed after T (include/ltv/monitor.h): week k served as the
 * daily score of S_k = T + 7(k+1) days served it, from a frame built at S_k
 * (nothing after S_k), against ltv_H in cur.
 */
static int calibration_new_cohorts(const struct loaded_model *m, const struct data_source *src,
				   const struct model_data *cur, const int64_t *cur_row,
				   size_t n_cur_uid, struct monitor_result *r, size_t *week_cap,
				   struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	const int64_t week = 7 * SECONDS_PER_DAY;
	int ret = 0;

	for (int64_t k = 0; ret == 0 && r->model_as_of + (k + 1) * week <= r->as_of; k++) {
		const int64_t start = r->model_as_of + k * week, scored_at = start + week;
		struct model_data d = { 0 };
		struct served sv;
		size_t n, *rows = NULL;
		int wanted = 0;

		for (size_t h = 0; h < r->n_cal; h++)
			wanted |= new_week_judged(cfg, r, k, r->cal[h].horizon);
		if (!wanted)
			continue;
		ret = model_data_for_scoring_from(m, src, scored_at, NULL, INT64_MAX, &d, err);
		if (ret == 0)
			rows = scored_rows(&m->params, &d, &n);
		if (ret == 0 && n > 0 && (ret = serving_predict(m, &d, rows, n, &sv, err)) == 0) {
			const double *install = frame_column(&d.frame, "install_time");
			const double *uid = frame_column(&d.frame, "uid");

			for (size_t h = 0; h < r->n_cal; h++) {
				const double *actual = model_data_label(cur, r->cal[h].horizon);

				if (!actual || !new_week_judged(cfg, r, k, r->cal[h].horizon))
					continue;
				for (size_t i = 0; i < n; i++) {
					const size_t u = (size_t)uid[rows[i]];

					if (install[rows[i]] < (double)start || u >= n_cur_uid ||
					    cur_row[u] < 0 || isnan(actual[cur_row[u]]))
						continue;
					cal_add(&r->cal_new[h], sv.ltv[h][i], actual[cur_row[u]]);
					cal_add(&find_week(r, week_cap, r->cal[h].horizon, start, scored_at)->c,
						sv.ltv[h][i], actual[cur_row[u]]);
				}
			}
			served_release(&sv);
		}
		free(rows);
		model_data_release(&d);
	}
	return ret;
}

/* Calibration of both groups at every horizon, then each group's level. */
static int calibration(const struct loaded_model *m, const struct data_source *src,
		       const struct model_data *ref, const struct model_data *cur,
		       struct monitor_result *r, struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	size_t week_cap = 0, n_cur_uid = 0;
	int64_t *cur_row = model_data_rows_by_uid(cur, &n_cur_uid);
	int ret;

	r->n_cal = m->params.horizons.n;
	for (size_t h = 0; h < r->n_cal; h++) {
		r->cal[h].horizon = r->cal_new[h].horizon = m->params.horizons.v[h];
		r->cal[h].bias = r->cal_new[h].bias = NAN;
	}
	ret = calibration_at_t(m, ref, cur, cur_row, n_cur_uid, r, &week_cap, err);
	if (ret == 0)
		ret = calibration_new_cohorts(m, src, cur, cur_row, n_cur_uid, r, &week_cap, err);
	free(cur_row);
	if (ret < 0)
		return ret;
	for (size_t h = 0; h < r->n_cal; h++) {
		cal_finish(cfg, &r->cal[h]);
		cal_finish(cfg, &r->cal_new[h]);
	}
	for (size_t k = 0; k < r->n_weeks; k++)
		cal_finish(cfg, &r->weeks[k].c);
	if (r->n_weeks)
		qsort(r->weeks, r->n_weeks, sizeof(r->weeks[0]), week_compare);
	return 0;
}

static void summarise(const struct config *cfg, struct monitor_result *r)
{
	r->drift_level = r->calibration_level = PSI_OK;
	r->max_psi = NAN;
	for (size_t k = 0; k < r->n_psi; k++) {
		struct monitor_psi *p = &r->psi[k];

		p->level = psi_level(p->psi.psi, cfg->monitor.psi_warn, cfg->monitor.psi_alert);
		if (p->level > r->drift_level)
			r->drift_level = p->level;
		if (isnan(r->max_psi) || p->psi.psi > r->max_psi) {
			r->max_psi = p->psi.psi;
			snprintf(r->worst, sizeof(r->worst), "%s", p->name);
		}
	}
	r->calibration_warn_n = 0;
	for (size_t h = 0; h < r->n_cal; h++)
		r->calibration_warn_n += (r->cal[h].level != PSI_OK) + (r->cal_new[h].level != PSI_OK);
	for (size_t k = 0; k < r->n_weeks; k++)
		r->calibration_warn_n += r->weeks[k].c.level != PSI_OK;
	if (r->calibration_warn_n)
		r->calibration_level = PSI_WARN;
	r->level = r->drift_level > r->calibration_level ? r->drift_level : r->calibration_level;
}

static cJSON *number_or_null(double v)
{
	return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

/* The figures of one calibration group, as the JSON report has them. */
static cJSON *cal_json(const struct monitor_calibration *c)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddNumberToObject(e, "horizon", (double)c->horizon);
	cJSON_AddNumberToObject(e, "users", (double)c->n);
	cJSON_AddItemToObject(e, "mean_predicted", number_or_null(c->n ? c->sum_pred / (double)c->n : NAN));
	cJSON_AddItemToObject(e, "mean_actual", number_or_null(c->n ? c->sum_actual / (double)c->n : NAN));
	cJSON_AddItemToObject(e, "bias", number_or_null(c->bias));
	cJSON_AddItemToObject(e, "z", number_or_null(c->z));
	cJSON_AddBoolToObject(e, "judged", c->judged);
	cJSON_AddStringToObject(e, "level", psi_level_name(c->level));
	return e;
}

/* The install weeks of one group (new_cohort 0: at T, 1: after T) at horizon. */
static cJSON *weeks_json(const struct monitor_result *r, int64_t horizon, int new_cohort)
{
	cJSON *weeks = cJSON_CreateArray();
	char iso[32];

	for (size_t k = 0; k < r->n_weeks; k++) {
		const struct monitor_week *w = &r->weeks[k];
		cJSON *we;

		if (w->c.horizon != horizon || w->new_cohort != new_cohort)
			continue;
		we = cal_json(&w->c);
		cJSON_DeleteItemFromObject(we, "horizon");
		cJSON_AddStringToObject(we, "install_week", time_format_date(w->week_start, iso, sizeof(iso)));
		cJSON_AddStringToObject(we, "scored_at", time_format_iso8601(w->scored_at, iso, sizeof(iso)));
		cJSON_AddItemToArray(weeks, we);
	}
	return weeks;
}

char *monitor_report_json(const struct monitor_result *r)
{
	cJSON *o = cJSON_CreateObject(), *psi = cJSON_CreateArray(), *cal = cJSON_CreateArray();
	char iso[32], *text;

	cJSON_AddNumberToObject(o, "model_version", (double)r->model_version);
	cJSON_AddStringToObject(o, "model_as_of", time_format_iso8601(r->model_as_of, iso, sizeof(iso)));
	cJSON_AddStringToObject(o, "as_of", time_format_iso8601(r->as_of, iso, sizeof(iso)));
	cJSON_AddNumberToObject(o, "window_days", (double)r->window_days);
	cJSON_AddNumberToObject(o, "reference_windows", (double)r->reference_windows);
	cJSON_AddNumberToObject(o, "current_users", (double)r->n_current);
	cJSON_AddNumberToObject(o, "reference_users", (double)r->n_reference);
	cJSON_AddStringToObject(o, "status", psi_level_name(r->level));
	cJSON_AddStringToObject(o, "drift", psi_level_name(r->drift_level));
	cJSON_AddStringToObject(o, "calibration_status", psi_level_name(r->calibration_level));
	cJSON_AddNumberToObject(o, "calibration_warnings", (double)r->calibration_warn_n);
	cJSON_AddNumberToObject(o, "calibration_warn", r->calibration_warn);
	cJSON_AddItemToObject(o, "max_psi", number_or_null(r->max_psi));
	cJSON_AddStringToObject(o, "max_psi_of", r->worst);
	for (size_t k = 0; k < r->n_psi; k++) {
		cJSON *p = cJSON_CreateObject();

		cJSON_AddStringToObject(p, "name", r->psi[k].name);
		cJSON_AddItemToObject(p, "psi", number_or_null(r->psi[k].psi.psi));
		cJSON_AddNumberToObject(p, "bins", (double)r->psi[k].psi.n_bins);
		cJSON_AddStringToObject(p, "level", psi_level_name(r->psi[k].level));
		cJSON_AddItemToArray(psi, p);
	}
	cJSON_AddItemToObject(o, "psi", psi);
	for (size_t h = 0; h < r->n_cal; h++) {
		cJSON *e = cal_json(&r->cal[h]), *fresh = cal_json(&r->cal_new[h]);

		cJSON_AddItemToObject(e, "weeks", weeks_json(r, r->cal[h].horizon, 0));
		cJSON_AddItemToObject(fresh, "weeks", weeks_json(r, r->cal[h].horizon, 1));
		cJSON_AddItemToObject(e, "new_cohorts", fresh);
		cJSON_AddItemToArray(cal, e);
	}
	cJSON_AddItemToObject(o, "calibration", cal);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

static int psi_order_desc(const void *pa, const void *pb)
{
	const struct monitor_psi *a = *(const struct monitor_psi *const *)pa;
	const struct monitor_psi *b = *(const struct monitor_psi *const *)pb;

	return (a->psi.psi < b->psi.psi) - (a->psi.psi > b->psi.psi);
}

static void print_group_row(const char *horizon, const char *week, const char *scored_at,
			    const struct monitor_calibration *c, FILE *out)
{
	fprintf(out, "    %-8s %-12s %-10s %7zu %12.4f %12.4f %8.4f %7.2f  %s\n", horizon, week, scored_at,
		c->n, c->sum_pred / (double)c->n, c->sum_actual / (double)c->n, c->bias, c->z,
		!c->judged ? "too few users to judge" : psi_level_name(c->level));
}

/* One group's rows per horizon (its total, then its install weeks). */
static void print_groups(const struct monitor_result *r, const struct monitor_calibration *cal,
			 int new_cohort, FILE *out)
{
	char h_text[32], w_iso[32], s_iso[32];

	fprintf(out, "    %-8s %-12s %-10s %7s %12s %12s %8s %7s  %s\n", "horizon", "install_week",
		"scored_at", "users", "mean_pred", "mean_actual", "bias", "z", "level");
	for (size_t h = 0; h < r->n_cal; h++) {
		snprintf(h_text, sizeof(h_text), "%lld", (long long)cal[h].horizon);
		if (cal[h].n == 0) {
			fprintf(out, "    %-8s %s\n", h_text, new_cohort ? "no install week after as_of "
				"complete yet" : "no user complete yet");
			continue;
		}
		print_group_row(h_text, "all", "", &cal[h], out);
		for (size_t k = 0; k < r->n_weeks; k++) {
			const struct monitor_week *w = &r->weeks[k];

			if (w->c.horizon != cal[h].horizon || w->new_cohort != new_cohort)
				continue;
			print_group_row("", time_format_date(w->week_start, w_iso, sizeof(w_iso)),
					time_format_date(w->scored_at, s_iso, sizeof(s_iso)), &w->c, out);
		}
	}
}

static void print_text(const struct config *cfg, const struct monitor_result *r, FILE *out)
{
	const struct monitor_psi **order = xmalloc((r->n_psi ? r->n_psi : 1) * sizeof(*order));
	char t_iso[32], a_iso[32], w_iso[32];

	fprintf(out, "monitor: model version %lld (trained as of %s) at as_of %s: %s\n",
		(long long)r->model_version, time_format_iso8601(r->model_as_of, t_iso, sizeof(t_iso)),
		time_format_iso8601(r->as_of, a_iso, sizeof(a_iso)), psi_level_name(r->level));
	fprintf(out, "  drift: %zu users installed in the %lld days before as_of, against %zu installed "
		"in the %lld windows of %lld days before %s (each side at its age then)\n",
		r->n_current, (long long)r->window_days, r->n_reference, (long long)r->reference_windows,
		(long long)r->window_days, time_format_date(r->model_as_of, w_iso, sizeof(w_iso)));
	fprintf(out, "  drift %s: max PSI %.4f (%s); warn at %.4g, alert at %.4g\n",
		psi_level_name(r->drift_level), r->max_psi, r->worst, r->psi_warn, r->psi_alert);
	for (size_t k = 0; k < r->n_psi; k++)
		order[k] = &r->psi[k];
	qsort(order, r->n_psi, sizeof(*order), psi_order_desc);
	fprintf(out, "    %-26s %9s %5s  %s\n", "PSI of", "PSI", "bins", "level");
	for (size_t k = 0; k < r->n_psi; k++)
		fprintf(out, "    %-26s %9.4f %5zu  %s\n", order[k]->name, order[k]->psi.psi,
			order[k]->psi.n_bins, psi_level_name(order[k]->level));
	fprintf(out, "  calibration %s: predicted against actual ltv_H complete by as_of; a group warns "
		"at |bias| >= %.4g with |z| >= %.3f and >= %lld users (%lld warn)\n",
		psi_level_name(r->calibration_level), r->calibration_warn, MONITOR_CALIBRATION_Z,
		(long long)cfg->monitor.calibration_min_users, (long long)r->calibration_warn_n);
	fprintf(out, "    users installed in the longest horizon before %s, predicted at %s:\n",
		time_format_date(r->model_as_of, t_iso, sizeof(t_iso)), t_iso);
	print_groups(r, r->cal, 0, out);
	fprintf(out, "    new cohorts: users installed after %s, each install week predicted at its "
		"end (ages 0-6 days, as the daily score then served them):\n", t_iso);
	print_groups(r, r->cal_new, 1, out);
	fprintf(out, "  stored as monitor report %lld; exit status %d\n", (long long)r->report_id,
		monitor_exit_status(r->level));
	free(order);
}

int monitor_exit_status(enum psi_level level)
{
	return level == PSI_ALERT ? 4 : level == PSI_WARN ? 3 : 0;
}

void monitor_result_release(struct monitor_result *r)
{
	free(r->psi);
	free(r->weeks);
	memset(r, 0, sizeof(*r));
}

static int store(struct registry *reg, struct monitor_result *r, struct ltv_err *err)
{
	char *json = monitor_report_json(r);
	const struct monitor_row row = {
		.model_version = r->model_version, .as_of = r->as_of, .window_days = r->window_days,
		.status = (char *)psi_level_name(r->level), .max_psi = r->max_psi, .report = json,
	};
	int ret = registry_begin(reg, err);

	if (ret == 0)
		ret = registry_monitor_insert(reg, &row, &r->report_id, err);
	if (ret == 0)
		ret = registry_commit(reg, err);
	if (ret < 0)
		registry_rollback(reg);
	free(json);
	return ret;
}

/*
 * The earliest install time of a row any frame is read at (window_rows): the
 * reference windows before T, the users calibrated at T (installed within
 * the longest horizon before it) and the current window before as_of; the
 * new cohorts come after T.
 */
static int64_t earliest_install_read(const struct loaded_model *m, const struct monitor_result *r)
{
	const int64_t from = r->model_as_of < r->as_of ? r->model_as_of : r->as_of;
	int64_t days = r->reference_windows * r->window_days;

	if (feature_params_max_horizon(&m->params) > days)
		days = feature_params_max_horizon(&m->params);
	if (r->window_days > days)
		days = r->window_days;
	return from - days * SECONDS_PER_DAY;
}

/*
 * Reference and current samples, PSI per column, calibration. Every frame is
 * built at a cut-off up to as_of (the reference windows, as_of, each new
 * cohort week's end) from one read of the registry's users and of the
 * user-days of the users those frames' rows are read at (user_data_load),
 * not one read per frame.
 */
static int measure(const struct loaded_model *m, struct registry *reg, struct monitor_result *r,
		   struct ltv_err *err)
{
	const struct config *cfg = &m->cfg;
	struct samples ref, cur;
	struct model_data d_cur = { 0 }, d_ref0 = { 0 };
	struct user_data data;
	const struct data_source source = data_source_memory(&data), *src = &source;
	char iso[32], t_iso[32];
	int ret = user_data_load(reg, earliest_install_read(m, r), &data, err);

	if (ret < 0)
		return ret;

	samples_init(&ref, r->n_psi);
	samples_init(&cur, r->n_psi);
	for (int64_t k = 0; k < r->reference_windows && ret == 0; k++) {
		const int64_t end = r->model_as_of - k * r->window_days * SECONDS_PER_DAY;
		struct model_data d = { 0 };

		ret = model_data_for_scoring_from(m, src, end, NULL, INT64_MAX, &d, err);
		if (ret == 0)
			ret = add_window(m, &d, end, r->window_days, r, &ref, err);
		if (k == 0 && ret == 0)
			d_ref0 = d;
		else
			model_data_release(&d);
	}
	if (ret == 0)
		ret = model_data_for_scoring_from(m, src, r->as_of, NULL, INT64_MAX, &d_cur, err);
	if (ret == 0)
		ret = add_window(m, &d_cur, r->as_of, r->window_days, r, &cur, err);
	if (ret < 0)
		goto out;
	r->n_reference = ref.n;
	r->n_current = cur.n;
	if (ref.n == 0) {
		ret = err_set(err, LTV_EUSAGE, "monitor: no user was installed in the %lld windows of %lld "
			      "days before model version %lld's as_of %s: nothing to compare with; raise "
			      "monitor.window_days or monitor.reference_windows",
			      (long long)r->reference_windows, (long long)r->window_days,
			      (long long)m->version,
			      time_format_iso8601(r->model_as_of, t_iso, sizeof(t_iso)));
		goto out;
	}
	if (cur.n == 0) {
		ret = err_set(err, LTV_EUSAGE, "monitor: no user was installed in the %lld days before "
			      "as_of %s; pass an --as-of with recent installs or raise "
			      "monitor.window_days", (long long)r->window_days,
			      time_format_iso8601(r->as_of, iso, sizeof(iso)));
		goto out;
	}
	for (size_t c = 0; c < r->n_psi && ret == 0; c++)
		ret = psi_compute(ref.v[c], ref.n, cur.v[c], cur.n, (int)cfg->monitor.bins,
				  &r->psi[c].psi, err);
	if (ret == 0)
		ret = calibration(m, src, &d_ref0, &d_cur, r, err);
	if (ret == 0)
		summarise(cfg, r);
out:
	samples_release(&ref, r->n_psi);
	samples_release(&cur, r->n_psi);
	model_data_release(&d_cur);
	model_data_release(&d_ref0);
	user_data_release(&data);
	return ret;
}

int monitor_run(const struct config *cfg, struct registry *reg, const struct monitor_options *opts,
		FILE *out, struct monitor_result *out_result, struct ltv_err *err)
{
	struct monitor_result r = { 0 };
	struct loaded_model m = { 0 };
	int64_t version = 0;
	char t_iso[32], a_iso[32];
	int ret = model_resolve(reg, opts->model, &version, err);

	if (ret == 0)
		ret = model_load(reg, cfg, version, &m, err);
	if (ret < 0)
		goto out;
	r.model_version = version;
	r.model_as_of = model_artefact(&m, "features")->as_of;
	r.window_days = cfg->monitor.window_days;
	r.reference_windows = cfg->monitor.reference_windows;
	r.psi_warn = cfg->monitor.psi_warn;
	r.psi_alert = cfg->monitor.psi_alert;
	r.calibration_warn = cfg->monitor.calibration_warn;
	r.as_of = opts->as_of;
	if (r.as_of == INT64_MIN && (ret = registry_default_as_of(reg, &r.as_of, err)) < 0) {
		err_prefix(err, "monitor");
		goto out;
	}
	if (r.as_of < r.model_as_of) {
		ret = err_set(err, LTV_EUSAGE, "monitor: --as-of %s is before model version %lld's as_of "
			      "%s; monitor a version on data after it was trained (pass a later --as-of)",
			      time_format_iso8601(r.as_of, a_iso, sizeof(a_iso)), (long long)version,
			      time_format_iso8601(r.model_as_of, t_iso, sizeof(t_iso)));
		goto out;
	}
	feature_union(&m, &r);
	ret = measure(&m, reg, &r, err);
	if (ret == 0)
		ret = store(reg, &r, err);
	if (ret < 0)
		goto out;
	LOG(LOG_INFO, "monitor: model version %lld: %s (max PSI %.4f on %s)", (long long)version,
	    psi_level_name(r.level), r.max_psi, r.worst);
	if (opts->json) {
		char *json = monitor_report_json(&r);

		fprintf(out, "%s\n", json);
		free(json);
	} else {
		print_text(cfg, &r, out);
	}
out:
	if (m.version)
		model_release(&m);
	if (ret == 0 && out_result)
		*out_result = r;
	else
		monitor_result_release(&r);
	return ret;
}
