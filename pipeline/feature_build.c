/*
 * Base features and encodings (contract in include/ltv/feature_build.h).
 * The leakage rules live here, once, for training and scoring alike:
 *  - a user-day is read only when the whole day is complete at as_of
 *    (install + (day + 1) days <= as_of), so nothing after as_of is seen;
 *  - features read only days d < obs_days; a label ltv_H exists only for a
 *    user mature at H (install + H days <= as_of), NaN otherwise.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/feature_build.h"
#include "ltv/hash.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

#define MAX_HORIZONS 16
#define ENCODINGS_MAGIC "LTVENCD1"

struct user_acc {
	double rev_to_date; /* every complete day: the floor no prediction goes below */
	double rev_window, rev_d0, rev_max_day;
	double purchases, events, events_d0, active_days;
	double first_purchase_day;
	double ltv[MAX_HORIZONS];
};

struct base_run {
	const struct config *cfg;
	int64_t as_of;
	struct user_table users;
	int64_t *row_of_uid;    /* uid - 1 → frame row, -1 when installed after as_of */
	struct user_acc *acc;   /* per frame row */
	size_t n_rows;
	struct feature_base_stats stats;
};

/* Days complete at as_of since install: day d is readable iff d < this. */
static int64_t complete_days(int64_t install, int64_t as_of)
{
	return time_day_index(install, as_of);
}

static int collect_user_day(void *opaque, int64_t uid, int64_t day, double revenue,
			    int64_t events, int64_t purchases)
{
	struct base_run *br = opaque;
	const struct config *cfg = br->cfg;
	int64_t row;
	struct user_acc *a;

	if (uid < 1 || (size_t)uid > br->users.n || (row = br->row_of_uid[uid - 1]) < 0)
		return 0;
	if (day >= complete_days(br->users.install_time[uid - 1], br->as_of)) {
		br->stats.user_days_after_as_of++;
		return 0;
	}
	br->stats.user_days_read++;
	a = &br->acc[row];
	a->rev_to_date += revenue;
	if (day < cfg->features.obs_days) {
		a->rev_window += revenue;
		a->purchases += (double)purchases;
		a->events += (double)events;
		a->active_days += 1;
		if (revenue > a->rev_max_day)
			a->rev_max_day = revenue;
		if (day == 0) {
			a->rev_d0 += revenue;
			a->events_d0 += (double)events;
		}
		if (revenue > 0 && (isnan(a->first_purchase_day) || day < a->first_purchase_day))
			a->first_purchase_day = (double)day;
	}
	for (size_t h = 0; h < cfg->features.horizons.n; h++)
		if (day < cfg->features.horizons.v[h])
			a->ltv[h] += revenue;
	return 0;
}

static int compare_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted unique values among the rows kept (copies), and each row's index into them. */
static char **dictionary(char *const *values, const int64_t *row_of, size_t n_users,
			 double *out_code, size_t *out_n)
{
	struct strmap seen;
	char **dict = NULL;
	size_t n = 0, cap = 0;

	strmap_init(&seen);
	for (size_t u = 0; u < n_users; u++) {
		if (row_of[u] < 0 || strmap_put(&seen, values[u], 0) != 0)
			continue;
		ARRAY_GROW(dict, n + 1, cap);
		dict[n++] = xstrdup(values[u]);
	}
	if (n)
		qsort(dict, n, sizeof(char *), compare_str_ptr);
	strmap_release(&seen);
	strmap_init(&seen);
	for (size_t i = 0; i < n; i++)
		strmap_put(&seen, dict[i], (int64_t)i);
	for (size_t u = 0; u < n_users; u++) {
		int64_t code;

		if (row_of[u] >= 0 && strmap_get(&seen, values[u], &code))
			out_code[row_of[u]] = (double)code;
	}
	strmap_release(&seen);
	*out_n = n;
	return dict;
}

static void fill_user_columns(struct base_run *br, struct frame *f)
{
	const struct config *cfg = br->cfg;
	double *uid = frame_add_column(f, "uid");
	double *install = frame_add_column(f, "install_time");
	double *age = frame_add_column(f, "age_days");
	double *window = frame_add_column(f, "window_days");
	double *rev_window = frame_add_column(f, "rev_window");
	double *rev_d0 = frame_add_column(f, "rev_d0");
	double *rev_max = frame_add_column(f, "rev_max_day");
	double *purchases = frame_add_column(f, "purchases_window");
	double *events = frame_add_column(f, "events_window");
	double *events_d0 = frame_add_column(f, "events_d0");
	double *active = frame_add_column(f, "active_days_window");
	double *engagement = frame_add_column(f, "engagement");
	double *first_purchase = frame_add_column(f, "first_purchase_day");
	double *cost = frame_add_column(f, "cost");
	double *rev_to_date = frame_add_column(f, "rev_to_date");
	double *ltv[MAX_HORIZONS];

	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		char name[32];

		snprintf(name, sizeof(name), "ltv_%lld", (long long)cfg->features.horizons.v[h]);
		ltv[h] = frame_add_column(f, name);
	}
	for (size_t u = 0; u < br->users.n; u++) {
		int64_t row = br->row_of_uid[u];
		const struct user_acc *a;
		int64_t days;

		if (row < 0)
			continue;
		a = &br->acc[row];
		days = complete_days(br->users.install_time[u], br->as_of);
		uid[row] = (double)br->users.uid[u];
		install[row] = (double)br->users.install_time[u];
		age[row] = (double)days;
		window[row] = (double)(days < cfg->features.obs_days ? days : cfg->features.obs_days);
		rev_window[row] = a->rev_window;
		rev_d0[row] = a->rev_d0;
		rev_max[row] = a->rev_max_day;
		purchases[row] = a->purchases;
		events[row] = a->events;
		events_d0[row] = a->events_d0;
		active[row] = a->active_days;
		/* Events per observed day, damped by log so one burst does not dominate. */
		engagement[row] = window[row] > 0 ? log1p(a->events) * a->active_days / window[row] : 0;
		first_purchase[row] = a->first_purchase_day;
		cost[row] = br->users.cost[u];
		rev_to_date[row] = a->rev_to_date;
		for (size_t h = 0; h < cfg->features.horizons.n; h++)
			ltv[h][row] = days >= cfg->features.horizons.v[h] ? a->ltv[h] : NAN;
	}
}

int feature_build_base(struct registry *reg, const struct config *cfg, int64_t as_of,
		       struct frame *out, char ***out_apps, size_t *out_n_apps,
		       char ***out_campaigns, size_t *out_n_campaigns,
		       struct feature_base_stats *out_stats, struct ltv_err *err)
{
	struct base_run br = { .cfg = cfg, .as_of = as_of };
	int ret;

	assert(cfg->features.horizons.n <= MAX_HORIZONS);
	frame_init(out, 0);
	ret = registry_users_load(reg, &br.users, err);
	if (ret < 0)
		return ret;
	br.row_of_uid = xmalloc((br.users.n ? br.users.n : 1) * sizeof(int64_t));
	for (size_t u = 0; u < br.users.n; u++)
		br.row_of_uid[u] = br.users.install_time[u] <= as_of ? (int64_t)br.n_rows++ : -1;
	br.stats.users_after_as_of = (int64_t)(br.users.n - br.n_rows);
	if (br.n_rows == 0) {
		char iso[32];

		ret = err_set(err, LTV_EINVAL, "no user installed on or before as_of %s; pass a later --as-of",
			      time_format_iso8601(as_of, iso, sizeof(iso)));
		goto out;
	}
	br.acc = xcalloc(br.n_rows, sizeof(*br.acc));
	for (size_t i = 0; i < br.n_rows; i++)
		br.acc[i].first_purchase_day = NAN;
	ret = registry_user_days_each(reg, collect_user_day, &br, err);
	if (ret < 0)
		goto out;
	frame_init(out, br.n_rows);
	fill_user_columns(&br, out);
	*out_apps = dictionary(br.users.app_id, br.row_of_uid, br.users.n,
			       frame_add_column(out, "app_code"), out_n_apps);
	*out_campaigns = dictionary(br.users.campaign, br.row_of_uid, br.users.n,
				    frame_add_column(out, "campaign_code"), out_n_campaigns);
	if (out_stats)
		*out_stats = br.stats;
out:
	free(br.acc);
	free(br.row_of_uid);
	user_table_release(&br.users);
	return ret;
}

/* ---- encodings ---- */

void encodings_release(struct encodings *e)
{
	frame_free_dict(e->apps, e->n_apps);
	frame_free_dict(e->campaigns, e->n_campaigns);
	free(e->app_ltv);
	free(e->app_payer);
	free(e->cohort_ltv);
	free(e->cohort_payer);
	free(e->cohort_log_n);
	memset(e, 0, sizeof(*e));
}

int encodings_save(const struct encodings *e, struct registry *reg, int64_t artefact_id,
		   struct ltv_err *err)
{
	size_t n_cohorts = e->n_apps * e->n_campaigns, len;
	struct blob_writer w;
	uint8_t *data;
	int ret;

	blob_writer_init(&w);
	blob_put_header(&w, ENCODINGS_MAGIC, 1);
	blob_put_f64(&w, e->global_ltv);
	blob_put_f64(&w, e->global_payer);
	blob_put_f64_array(&w, e->app_ltv, e->n_apps);
	blob_put_f64_array(&w, e->app_payer, e->n_apps);
	blob_put_f64_array(&w, e->cohort_ltv, n_cohorts);
	blob_put_f64_array(&w, e->cohort_payer, n_cohorts);
	blob_put_f64_array(&w, e->cohort_log_n, n_cohorts);
	data = blob_writer_detach(&w, &len);
	ret = registry_blob_put(reg, artefact_id, "encodings", data, len, err);
	free(data);
	if (ret == 0)
		ret = frame_save_dict(reg, artefact_id, "app", e->apps, e->n_apps, err);
	if (ret == 0)
		ret = frame_save_dict(reg, artefact_id, "campaign", e->campaigns, e->n_campaigns, err);
	return ret;
}

int encodings_load(struct registry *reg, int64_t artefact_id, struct encodings *out,
		   struct ltv_err *err)
{
	struct blob_reader r;
	void *data = NULL;
	size_t len, n_app1 = 0, n_app2 = 0, n_c1 = 0, n_c2 = 0, n_c3 = 0;
	uint32_t version;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = frame_load_dict(reg, artefact_id, "app", &out->apps, &out->n_apps, err);
	if (ret == 0)
		ret = frame_load_dict(reg, artefact_id, "campaign", &out->campaigns, &out->n_campaigns, err);
	if (ret == 0)
		ret = registry_blob_get(reg, artefact_id, "encodings", &data, &len, err);
	if (ret < 0)
		goto out;
	blob_reader_init(&r, data, len);
	ret = blob_get_header(&r, ENCODINGS_MAGIC, 1, &version, err);
	if (ret < 0)
		goto out;
	out->global_ltv = blob_get_f64(&r);
	out->global_payer = blob_get_f64(&r);
	if (blob_get_f64_array(&r, &out->app_ltv, &n_app1) < 0 ||
	    blob_get_f64_array(&r, &out->app_payer, &n_app2) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_ltv, &n_c1) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_payer, &n_c2) < 0 ||
	    blob_get_f64_array(&r, &out->cohort_log_n, &n_c3) < 0 ||
	    n_app1 != out->n_apps || n_app2 != out->n_apps ||
	    n_c1 != out->n_apps * out->n_campaigns || n_c2 != n_c1 || n_c3 != n_c1)
		ret = err_set(err, LTV_EINVAL, "encodings of artefact %lld are truncated or corrupt",
			      (long long)artefact_id);
out:
	free(data);
	if (ret < 0)
		encodings_release(out);
	return ret;
}

void encodings_hash(const struct encodings *e, struct hasher *h)
{
	size_t n_cohorts = e->n_apps * e->n_campaigns;

	for (size_t i = 0; i < e->n_apps; i++)
		hasher_add_str(h, e->apps[i]);
	for (size_t i = 0; i < e->n_campaigns; i++)
		hasher_add_str(h, e->campaigns[i]);
	hasher_add_double(h, e->global_ltv);
	hasher_add_double(h, e->global_payer);
	hasher_update(h, e->app_ltv, e->n_apps * sizeof(double));
	hasher_update(h, e->app_payer, e->n_apps * sizeof(double));
	hasher_update(h, e->cohort_ltv, n_cohorts * sizeof(double));
	hasher_update(h, e->cohort_payer, n_cohorts * sizeof(double));
	hasher_update(h, e->cohort_log_n, n_cohorts * sizeof(double));
}

/* Maps each base dictionary entry to its index in an extended copy of the target dictionary. */
static double *recode(char *const *target, size_t n_target, char *const *base, size_t n_base,
		      char ***out_dict, size_t *out_n)
{
	struct strmap index;
	double *map = xmalloc((n_base ? n_base : 1) * sizeof(double));
	char **dict = xcalloc(n_target + n_base + 1, sizeof(char *));
	size_t n = 0;

	strmap_init(&index);
	for (; n < n_target; n++) {
		dict[n] = xstrdup(target[n]);
		strmap_put(&index, dict[n], (int64_t)n);
	}
	for (size_t i = 0; i < n_base; i++) {
		int64_t code;

		if (!strmap_get(&index, base[i], &code)) {
			code = (int64_t)n;
			dict[n++] = xstrdup(base[i]);
			strmap_put(&index, base[i], code);
		}
		map[i] = (double)code;
	}
	strmap_release(&index);
	*out_dict = dict;
	*out_n = n;
	return map;
}

int feature_apply_encodings(const struct encodings *e, struct frame *f,
			    char *const *base_apps, size_t n_base_apps,
			    char *const *base_campaigns, size_t n_base_campaigns,
			    char ***out_apps, size_t *out_n_apps,
			    char ***out_campaigns, size_t *out_n_campaigns)
{
	double *app = frame_column(f, "app_code"), *campaign = frame_column(f, "campaign_code");
	double *app_map = recode(e->apps, e->n_apps, base_apps, n_base_apps, out_apps, out_n_apps);
	double *campaign_map = recode(e->campaigns, e->n_campaigns, base_campaigns, n_base_campaigns,
				      out_campaigns, out_n_campaigns);
	double *app_ltv = frame_add_column(f, "app_ltv_te");
	double *campaign_ltv = frame_add_column(f, "campaign_ltv_te");
	double *campaign_payer = frame_add_column(f, "campaign_payer_te");
	double *campaign_log_n = frame_add_column(f, "campaign_train_users_log");

	assert(app && campaign);
	for (size_t i = 0; i < f->n_rows; i++) {
		size_t a = (size_t)app_map[(size_t)app[i]];
		size_t c = (size_t)campaign_map[(size_t)campaign[i]];
		int known_app = a < e->n_apps, known_cohort = known_app && c < e->n_campaigns;
		double app_value = known_app ? e->app_ltv[a] : e->global_ltv;
		double app_payer = known_app ? e->app_payer[a] : e->global_payer;

		app[i] = (double)a;
		campaign[i] = (double)c;
		app_ltv[i] = app_value;
		campaign_ltv[i] = known_cohort ? e->cohort_ltv[a * e->n_campaigns + c] : app_value;
		campaign_payer[i] = known_cohort ? e->cohort_payer[a * e->n_campaigns + c] : app_payer;
		campaign_log_n[i] = known_cohort ? e->cohort_log_n[a * e->n_campaigns + c] : 0;
	}
	free(app_map);
	free(campaign_map);
	return 0;
}
