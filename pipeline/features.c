/*
 * Stage features: per-user early features from the observation window, labels
 * per horizon, and the install-date split (DESIGN.md "Time, windows and
 * labels"). The leakage rules live here:
 *  - a user-day is read only when the whole day is complete at as_of
 *    (install + (day + 1) days <= as_of), so nothing after as_of is seen;
 *  - features read only days d < obs_days; labels ltv_H only for users mature
 *    at H (install + H days <= as_of), NaN otherwise;
 *  - campaign and app encodings are computed on training cohorts only, and a
 *    training user's own encoding comes from the other install-date folds.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/frame.h"
#include "ltv/log.h"
#include "ltv/stage.h"
#include "ltv/strmap.h"
#include "ltv/timeutil.h"

enum split { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_SCORE = 2 };

#define ENCODING_FOLDS 5

struct user_acc {
	double rev_window, rev_d0, rev_max_day;
	double purchases, events, events_d0, active_days;
	double first_purchase_day;
	double ltv[16];
};

struct features_run {
	struct stage_ctx *ctx;
	const struct config *cfg;
	int64_t as_of;
	struct user_table users;
	int64_t *row_of_uid;    /* uid - 1 → frame row, -1 when installed after as_of */
	struct user_acc *acc;   /* per frame row */
	size_t n_rows;
	int64_t days_read, days_after_as_of;
};

/* Days complete at as_of since install: day d is readable iff d < age. */
static int64_t complete_days(int64_t install, int64_t as_of)
{
	return time_day_index(install, as_of);
}

static int collect_user_day(void *opaque, int64_t uid, int64_t day, double revenue,
			    int64_t events, int64_t purchases)
{
	struct features_run *fr = opaque;
	const struct config *cfg = fr->cfg;
	int64_t row;
	struct user_acc *a;

	if (uid < 1 || (size_t)uid > fr->users.n || (row = fr->row_of_uid[uid - 1]) < 0)
		return 0;
	if (day >= complete_days(fr->users.install_time[uid - 1], fr->as_of)) {
		fr->days_after_as_of++;
		return 0;
	}
	fr->days_read++;
	a = &fr->acc[row];
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

/*
 * Sorted unique values among the rows kept, and each row's index into them
 * (out_code). The dictionary's strings are borrowed from values.
 */
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
		dict[n++] = values[u];
	}
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

/*
 * Smoothed target mean of y per code, learnt from training rows only:
 * (sum + m * prior) / (count + m). A training row's own value comes from the
 * other install-date folds (so it never sees its own label); validation and
 * scored rows use every training row.
 */
struct encoding_input {
	const double *split;
	const int *fold;     /* training rows: 0..ENCODING_FOLDS-1 */
	size_t n_rows;
	double smoothing;
};

static void target_encode(const struct encoding_input *in, const double *code, size_t n_codes,
			  const double *y, const double *prior, double *out)
{
	size_t k = ENCODING_FOLDS + 1; /* slot ENCODING_FOLDS holds the totals */
	double *sum = xcalloc(k * (n_codes ? n_codes : 1), sizeof(double));
	double *cnt = xcalloc(k * (n_codes ? n_codes : 1), sizeof(double));

	for (size_t i = 0; i < in->n_rows; i++) {
		size_t c = (size_t)code[i];

		if (in->split[i] != SPLIT_TRAIN || isnan(y[i]))
			continue;
		sum[(size_t)in->fold[i] * n_codes + c] += y[i];
		cnt[(size_t)in->fold[i] * n_codes + c] += 1;
		sum[ENCODING_FOLDS * n_codes + c] += y[i];
		cnt[ENCODING_FOLDS * n_codes + c] += 1;
	}
	for (size_t i = 0; i < in->n_rows; i++) {
		size_t c = (size_t)code[i];
		double s = sum[ENCODING_FOLDS * n_codes + c], n = cnt[ENCODING_FOLDS * n_codes + c];

		if (in->split[i] == SPLIT_TRAIN) {
			s -= sum[(size_t)in->fold[i] * n_codes + c];
			n -= cnt[(size_t)in->fold[i] * n_codes + c];
		}
		out[i] = (s + in->smoothing * prior[i]) / (n + in->smoothing);
	}
	free(sum);
	free(cnt);
}

/* The global training mean of y, out-of-fold for training rows (the prior of the app encoding). */
static void global_prior(const struct encoding_input *in, const double *y, double *out)
{
	double *zero = xcalloc(in->n_rows ? in->n_rows : 1, sizeof(double));
	double *flat = xcalloc(in->n_rows ? in->n_rows : 1, sizeof(double));
	struct encoding_input plain = *in;

	/* A single code with no smoothing is the plain out-of-fold mean. */
	plain.smoothing = 1e-9;
	target_encode(&plain, zero, 1, y, flat, out);
	free(zero);
	free(flat);
}

static void assign_split(struct features_run *fr, struct frame *f, double *split, int *fold)
{
	const int64_t target = fr->cfg->features.target_horizon;
	const int64_t valid_after = fr->as_of - (target + fr->cfg->features.validation_days) * SECONDS_PER_DAY;
	const double *install = frame_column(f, "install_time");
	const double *age = frame_column(f, "age_days");
	double first = INFINITY, last = -INFINITY;
	size_t n_train = 0;

	for (size_t i = 0; i < fr->n_rows; i++) {
		if (age[i] < (double)target)
			split[i] = SPLIT_SCORE;
		else if (install[i] > (double)valid_after)
			split[i] = SPLIT_VALID;
		else
			split[i] = SPLIT_TRAIN;
		if (split[i] == SPLIT_TRAIN) {
			n_train++;
			first = fmin(first, install[i]);
			last = fmax(last, install[i]);
		}
	}
	/* Folds are contiguous install-date ranges of the training cohorts. */
	for (size_t i = 0; i < fr->n_rows; i++) {
		double span = last - first;
		int k = span > 0 ? (int)((install[i] - first) / span * ENCODING_FOLDS) : 0;

		fold[i] = k >= ENCODING_FOLDS ? ENCODING_FOLDS - 1 : k < 0 ? 0 : k;
	}
	(void)n_train;
}

static void fill_user_columns(struct features_run *fr, struct frame *f)
{
	const struct config *cfg = fr->cfg;
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
	double *ltv[16];

	for (size_t h = 0; h < cfg->features.horizons.n; h++) {
		char name[32];

		snprintf(name, sizeof(name), "ltv_%lld", (long long)cfg->features.horizons.v[h]);
		ltv[h] = frame_add_column(f, name);
	}
	for (size_t u = 0; u < fr->users.n; u++) {
		int64_t row = fr->row_of_uid[u];
		const struct user_acc *a;
		int64_t days;

		if (row < 0)
			continue;
		a = &fr->acc[row];
		days = complete_days(fr->users.install_time[u], fr->as_of);
		uid[row] = (double)fr->users.uid[u];
		install[row] = (double)fr->users.install_time[u];
		age[row] = (double)days;
		window[row] = (double)(days < cfg->features.obs_days ? days : cfg->features.obs_days);
		rev_window[row] = a->rev_window;
		rev_d0[row] = a->rev_d0;
		rev_max[row] = a->rev_max_day;
		purchases[row] = a->purchases;
		events[row] = a->events;
		events_d0[row] = a->events_d0;
		active[row] = a->active_days;
		/* Events per observed day, damped by log so a bot's burst does not dominate. */
		engagement[row] = window[row] > 0 ? log1p(a->events) * a->active_days / window[row] : 0;
		first_purchase[row] = a->first_purchase_day;
		cost[row] = fr->users.cost[u];
		for (size_t h = 0; h < cfg->features.horizons.n; h++)
			ltv[h][row] = days >= cfg->features.horizons.v[h] ? a->ltv[h] : NAN;
	}
}

/* App, campaign and (app, campaign) encodings, learnt on the training cohorts. */
static int add_encodings(struct features_run *fr, struct frame *f, char ***out_apps,
			 size_t *out_n_apps, char ***out_campaigns, size_t *out_n_campaigns)
{
	char name[32];
	double *app = frame_add_column(f, "app_code");
	double *campaign = frame_add_column(f, "campaign_code");
	double *split = frame_add_column(f, "split");
	double *cohort = xcalloc(fr->n_rows ? fr->n_rows : 1, sizeof(double));
	double *payer = xcalloc(fr->n_rows ? fr->n_rows : 1, sizeof(double));
	double *prior = xcalloc(fr->n_rows ? fr->n_rows : 1, sizeof(double));
	int *fold = xcalloc(fr->n_rows ? fr->n_rows : 1, sizeof(int));
	const double *rev_window = frame_column(f, "rev_window");
	const double *y;
	struct encoding_input in;
	double *app_te, *campaign_te, *payer_te, *app_payer_te, *campaign_n;
	double *count;

	*out_apps = dictionary(fr->users.app_id, fr->row_of_uid, fr->users.n, app, out_n_apps);
	*out_campaigns = dictionary(fr->users.campaign, fr->row_of_uid, fr->users.n, campaign,
				    out_n_campaigns);
	for (size_t i = 0; i < fr->n_rows; i++)
		cohort[i] = app[i] * (double)*out_n_campaigns + campaign[i];
	assign_split(fr, f, split, fold);

	snprintf(name, sizeof(name), "ltv_%lld", (long long)fr->cfg->features.target_horizon);
	y = frame_column(f, name);
	for (size_t i = 0; i < fr->n_rows; i++)
		payer[i] = isnan(y[i]) ? NAN : (double)(y[i] - rev_window[i] > 0);
	in = (struct encoding_input){ split, fold, fr->n_rows, fr->cfg->features.encoding_smoothing };

	app_te = frame_add_column(f, "app_ltv_te");
	global_prior(&in, y, prior);
	target_encode(&in, app, *out_n_apps, y, prior, app_te);
	campaign_te = frame_add_column(f, "campaign_ltv_te");
	target_encode(&in, cohort, *out_n_apps * *out_n_campaigns, y, app_te, campaign_te);

	app_payer_te = xcalloc(fr->n_rows ? fr->n_rows : 1, sizeof(double));
	global_prior(&in, payer, prior);
	target_encode(&in, app, *out_n_apps, payer, prior, app_payer_te);
	payer_te = frame_add_column(f, "campaign_payer_te");
	target_encode(&in, cohort, *out_n_apps * *out_n_campaigns, payer, app_payer_te, payer_te);

	/* How established a campaign is: log of its training users (all folds). */
	campaign_n = frame_add_column(f, "campaign_train_users_log");
	count = xcalloc(*out_n_apps * *out_n_campaigns + 1, sizeof(double));
	for (size_t i = 0; i < fr->n_rows; i++)
		if (split[i] == SPLIT_TRAIN)
			count[(size_t)cohort[i]] += 1;
	for (size_t i = 0; i < fr->n_rows; i++)
		campaign_n[i] = log1p(count[(size_t)cohort[i]]);

	free(count);
	free(app_payer_te);
	free(cohort);
	free(payer);
	free(prior);
	free(fold);
	return 0;
}

static void add_metrics(struct features_run *fr, const struct frame *f)
{
	cJSON *m = fr->ctx->metrics;
	const double *split = frame_column(f, "split");
	char name[32], iso[32];
	double n_split[3] = { 0 }, sum = 0, payers = 0;
	const double *y, *rev_window = frame_column(f, "rev_window");

	snprintf(name, sizeof(name), "ltv_%lld", (long long)fr->cfg->features.target_horizon);
	y = frame_column(f, name);
	for (size_t i = 0; i < fr->n_rows; i++) {
		n_split[(int)split[i]] += 1;
		if (split[i] == SPLIT_TRAIN) {
			sum += y[i];
			payers += y[i] - rev_window[i] > 0;
		}
	}
	cJSON_AddStringToObject(m, "as_of", time_format_iso8601(fr->as_of, iso, sizeof(iso)));
	cJSON_AddNumberToObject(m, "users", (double)fr->n_rows);
	cJSON_AddNumberToObject(m, "train_users", n_split[SPLIT_TRAIN]);
	cJSON_AddNumberToObject(m, "validation_users", n_split[SPLIT_VALID]);
	cJSON_AddNumberToObject(m, "users_to_score", n_split[SPLIT_SCORE]);
	snprintf(name, sizeof(name), "train_mean_ltv_%lld", (long long)fr->cfg->features.target_horizon);
	cJSON_AddNumberToObject(m, name, n_split[SPLIT_TRAIN] > 0 ? sum / n_split[SPLIT_TRAIN] : 0);
	cJSON_AddNumberToObject(m, "train_payer_rate_after_window",
				n_split[SPLIT_TRAIN] > 0 ? payers / n_split[SPLIT_TRAIN] : 0);
	cJSON_AddNumberToObject(m, "user_days_read", (double)fr->days_read);
	cJSON_AddNumberToObject(m, "user_days_after_as_of_ignored", (double)fr->days_after_as_of);
	cJSON_AddNumberToObject(m, "users_installed_after_as_of_ignored",
				(double)(fr->users.n - fr->n_rows));
}

int stage_features_run(struct stage_ctx *ctx)
{
	struct features_run fr = { .ctx = ctx, .cfg = ctx->cfg, .as_of = ctx->as_of };
	struct frame f;
	char **apps = NULL, **campaigns = NULL;
	size_t n_apps = 0, n_campaigns = 0;
	int64_t out_id;
	int ret;

	frame_init(&f, 0);
	assert(ctx->cfg->features.horizons.n <= 16);
	ret = registry_users_load(ctx->reg, &fr.users, &ctx->err);
	if (ret < 0)
		return ret;
	fr.row_of_uid = xmalloc((fr.users.n ? fr.users.n : 1) * sizeof(int64_t));
	for (size_t u = 0; u < fr.users.n; u++)
		fr.row_of_uid[u] = fr.users.install_time[u] <= fr.as_of ? (int64_t)fr.n_rows++ : -1;
	if (fr.n_rows == 0) {
		char iso[32];

		ret = err_set(&ctx->err, LTV_EINVAL, "no user installed on or before as_of %s; "
			      "pass a later --as-of", time_format_iso8601(fr.as_of, iso, sizeof(iso)));
		goto out;
	}
	fr.acc = xcalloc(fr.n_rows, sizeof(*fr.acc));
	for (size_t i = 0; i < fr.n_rows; i++)
		fr.acc[i].first_purchase_day = NAN;
	ret = registry_user_days_each(ctx->reg, collect_user_day, &fr, &ctx->err);
	if (ret < 0)
		goto out;

	frame_init(&f, fr.n_rows);
	fill_user_columns(&fr, &f);
	add_encodings(&fr, &f, &apps, &n_apps, &campaigns, &n_campaigns);
	add_metrics(&fr, &f);
	frame_hash(&f, &ctx->content);
	for (size_t i = 0; i < n_apps; i++)
		hasher_add_str(&ctx->content, apps[i]);
	for (size_t i = 0; i < n_campaigns; i++)
		hasher_add_str(&ctx->content, campaigns[i]);

	ret = stage_output_id(ctx, &out_id);
	if (ret == 0)
		ret = frame_save(&f, ctx->reg, out_id, &ctx->err);
	if (ret == 0)
		ret = frame_save_dict(ctx->reg, out_id, "app", apps, n_apps, &ctx->err);
	if (ret == 0)
		ret = frame_save_dict(ctx->reg, out_id, "campaign", campaigns, n_campaigns, &ctx->err);
out:
	free(apps);
	free(campaigns);
	frame_release(&f);
	free(fr.acc);
	free(fr.row_of_uid);
	user_table_release(&fr.users);
	return ret;
}
