/*
 * Loading and slicing of the features artefact for the model stages
 * (contract in include/ltv/model_data.h; a stage loads it from its inputs
 * with model_data_load, pipeline/stage_io.c). The split rule lives here once so
 * that every model validates on the same, time-ordered cohorts.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ltv/model_data.h"
#include "ltv/timeutil.h"

/*
 * The features frame, loaded once and shared read-only by the model stages:
 * with two threads, stages side by side each held a copy (a million users'
 * frame is about 400 MB), and every stage after them read the whole frame
 * from the registry again. Stages only read it (const columns); it stays
 * loaded until another features artefact is asked for while nobody uses it.
 */
static pthread_mutex_t frame_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *key;         /* registry path, artefact id and content hash */
	struct frame frame;
	int users;         /* model_data holding it now */
} frame_cache;

/* Points out->frame at the cached frame of features (loading it when needed), or loads a copy. */
static int features_frame(struct registry *reg, const struct artefact_info *features,
			  struct model_data *out, struct ltv_err *err)
{
	char *key = xasprintf("%s\n%lld\n%s", registry_path(reg), (long long)features->id,
			      features->content_hash);
	int ret = 0;

	pthread_mutex_lock(&frame_cache_lock);
	if ((!frame_cache.key || strcmp(frame_cache.key, key) != 0) && frame_cache.users == 0) {
		free(frame_cache.key);
		frame_cache.key = NULL;
		frame_release(&frame_cache.frame);
		ret = frame_load_compact(reg, features->id, NULL, &frame_cache.frame, err);
		if (ret == 0) {
			frame_cache.key = key;
			key = NULL;
		}
	}
	if (ret == 0 && frame_cache.key && (!key || strcmp(frame_cache.key, key) == 0)) {
		out->frame = frame_cache.frame;
		out->shared_frame = 1;
		frame_cache.users++;
	}
	pthread_mutex_unlock(&frame_cache_lock);
	/* Another features artefact is in use (a backtest beside a run): a copy of its own. */
	if (ret == 0 && !out->shared_frame)
		ret = frame_load_compact(reg, features->id, NULL, &out->frame, err);
	free(key);
	return ret;
}

void model_data_offer_frame(const char *registry_path, int64_t artefact_id,
			    const char *content_hash, struct frame *f)
{
	char *key = xasprintf("%s\n%lld\n%s", registry_path, (long long)artefact_id, content_hash);

	/*
	 * Compact (include/ltv/frame.h): 18 of the 35 columns at 1,000,000 users
	 * hold whole numbers, 82 MB less for every stage after features.
	 */
	frame_compact(f);
	pthread_mutex_lock(&frame_cache_lock);
	if (frame_cache.users == 0) {
		free(frame_cache.key);
		frame_release(&frame_cache.frame);
		frame_cache.key = key;
		frame_cache.frame = *f;
		memset(f, 0, sizeof(*f));
		key = NULL;
	}
	pthread_mutex_unlock(&frame_cache_lock);
	free(key);
	frame_release(f);
}

size_t model_data_shared_frame_bytes(void)
{
	size_t bytes;

	pthread_mutex_lock(&frame_cache_lock);
	bytes = frame_cache.key ? frame_bytes(&frame_cache.frame) : 0;
	pthread_mutex_unlock(&frame_cache_lock);
	return bytes;
}

int model_data_load_artefacts(struct registry *reg, const struct artefact_info *features,
			      const struct artefact_info *tiers, struct model_data *out,
			      struct ltv_err *err)
{
	static const char *const tier_col[] = { "tier", NULL };
	struct frame tier_frame;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = feature_params_load(reg, features, &out->params, err);
	out->as_of = out->params.as_of;
	if (ret == 0)
		ret = features_frame(reg, features, out, err);
	if (ret == 0)
		ret = frame_load_dict(reg, features->id, "app", &out->apps, &out->n_apps, err);
	if (ret == 0)
		ret = frame_load_dict(reg, features->id, "campaign", &out->campaigns,
				      &out->n_campaigns, err);
	if (ret == 0 && tiers) {
		ret = frame_load(reg, tiers->id, tier_col, &tier_frame, err);
		if (ret == 0 && tier_frame.n_rows != out->frame.n_rows)
			ret = err_set(err, LTV_EINTERNAL, "tiers v%lld has %zu rows, features v%lld %zu",
				      (long long)tiers->version, tier_frame.n_rows,
				      (long long)features->version, out->frame.n_rows);
		if (ret == 0) {
			/* Take the column over from the one-column frame. */
			out->tier = tier_frame.cols[0];
			tier_frame.cols[0] = xcalloc(1, sizeof(double));
			frame_release(&tier_frame);
		}
	}
	if (ret == 0) {
		out->app_code = frame_col(&out->frame, "app_code");
		out->campaign_code = frame_col(&out->frame, "campaign_code");
		out->weight = frame_col(&out->frame, "weight");
	}
	if (ret < 0)
		model_data_release(out);
	return ret;
}

void model_data_release(struct model_data *d)
{
	if (d->shared_frame) {
		pthread_mutex_lock(&frame_cache_lock);
		frame_cache.users--;
		pthread_mutex_unlock(&frame_cache_lock);
		memset(&d->frame, 0, sizeof(d->frame));
	}
	frame_release(&d->frame);
	free(d->tier);
	frame_free_dict(d->apps, d->n_apps);
	frame_free_dict(d->campaigns, d->n_campaigns);
	feature_params_release(&d->params);
	memset(d, 0, sizeof(*d));
}

double model_data_weight(const struct model_data *d, size_t row)
{
	const struct frame_col w = frame_col_found(d->weight) ? d->weight
							       : frame_col(&d->frame, "weight");

	return frame_col_found(w) ? frame_col_at(w, row) : 1.0;
}

void label_name(int64_t horizon, char *out, size_t size)
{
	snprintf(out, size, "ltv_%lld", (long long)horizon);
}

const double *model_data_label(const struct model_data *d, int64_t horizon)
{
	char name[LABEL_NAME_MAX];

	label_name(horizon, name, sizeof(name));
	return frame_column(&d->frame, name);
}

/* Whether row i counts for tier (0: every tier; every row when tiers are not loaded). */
static int row_of_tier(const struct model_data *d, size_t i, int tier)
{
	return tier == 0 || !d->tier || d->tier[i] == tier;
}

/* Which of a split's row sets split_rows gathers. */
enum split_sets { SPLIT_SET_TRAIN = 1 << 0, SPLIT_SET_VALID = 1 << 1 };

/*
 * The split rule, once. users_only: one row per user (user_rep), whatever age
 * it describes; else every row of an age below the horizon. Only the sets in
 * `sets` are gathered (the other stays empty).
 */
static void split_rows(const struct model_data *d, int64_t horizon, int tier, int users_only,
		       enum split_sets sets, struct row_split *out)
{
	const struct frame_col age = frame_col(&d->frame, "age_days");
	const struct frame_col window = frame_col(&d->frame, "window_days");
	const struct frame_col user_rep = frame_col(&d->frame, "user_rep");
	const struct frame_col install = frame_col(&d->frame, "install_time");
	const double valid_after = feature_params_valid_after(&d->params, d->as_of, horizon);
	size_t cap_t = 0, cap_v = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < d->frame.n_rows; i++) {
		enum feature_split split;

		/* first: tiers 2 and 3 hold about 1.5% of the rows (hurdle and calibrate split each) */
		if (!row_of_tier(d, i, tier))
			continue;
		split = feature_split_at(valid_after, horizon, frame_col_at(age, i),
					 frame_col_at(install, i));
		if (split == SPLIT_SCORE)
			continue;
		if (!(sets & (split == SPLIT_VALID ? SPLIT_SET_VALID : SPLIT_SET_TRAIN)))
			continue;
		if (users_only ? frame_col_found(user_rep) && frame_col_at(user_rep, i) == 0
			       : frame_col_found(window) && frame_col_at(window, i) >= (double)horizon)
			continue;
		if (split == SPLIT_VALID) {
			ARRAY_GROW(out->valid, out->n_valid + 1, cap_v);
			out->valid[out->n_valid++] = i;
		} else {
			ARRAY_GROW(out->train, out->n_train + 1, cap_t);
			out->train[out->n_train++] = i;
		}
	}
}

size_t model_data_repeats(const struct model_data *d, size_t row)
{
	return (size_t)llround(fmax(model_data_weight(d, row), 0.0));
}

void model_data_expand_by_weight(const struct model_data *d, size_t **rows, size_t *n)
{
	size_t total = 0, at = 0;
	size_t *out;

	for (size_t i = 0; i < *n; i++)
		total += model_data_repeats(d, (*rows)[i]);
	if (total == *n)
		return;
	out = xmalloc((total ? total : 1) * sizeof(size_t));
	for (size_t i = 0; i < *n; i++)
		for (size_t k = model_data_repeats(d, (*rows)[i]); k > 0; k--)
			out[at++] = (*rows)[i];
	free(*rows);
	*rows = out;
	*n = total;
}

void model_data_split(const struct model_data *d, int64_t horizon, int tier,
		      struct row_split *out)
{
	split_rows(d, horizon, tier, 0, SPLIT_SET_TRAIN | SPLIT_SET_VALID, out);
	model_data_expand_by_weight(d, &out->train, &out->n_train);
	model_data_expand_by_weight(d, &out->valid, &out->n_valid);
}

void model_data_split_valid(const struct model_data *d, int64_t horizon, int tier,
			    struct row_split *out)
{
	split_rows(d, horizon, tier, 0, SPLIT_SET_VALID, out);
	model_data_expand_by_weight(d, &out->valid, &out->n_valid);
}

void model_data_split_weighted(const struct model_data *d, int64_t horizon, int tier,
			       struct row_split *out)
{
	split_rows(d, horizon, tier, 0, SPLIT_SET_TRAIN | SPLIT_SET_VALID, out);
}

static size_t rows_of_tier(const struct model_data *d, const size_t *rows, size_t n, int tier,
			   size_t **out)
{
	size_t m = 0;

	*out = xmalloc((n ? n : 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		if (row_of_tier(d, rows[i], tier))
			(*out)[m++] = rows[i];
	return m;
}

void model_data_split_of_tier(const struct model_data *d, const struct row_split *all, int tier,
			      struct row_split *out)
{
	out->n_train = rows_of_tier(d, all->train, all->n_train, tier, &out->train);
	out->n_valid = rows_of_tier(d, all->valid, all->n_valid, tier, &out->valid);
}

void model_data_split_users(const struct model_data *d, int64_t horizon, int tier,
			    struct row_split *out)
{
	split_rows(d, horizon, tier, 1, SPLIT_SET_TRAIN | SPLIT_SET_VALID, out);
}

void row_split_release(struct row_split *s)
{
	free(s->train);
	free(s->valid);
	memset(s, 0, sizeof(*s));
}

int model_data_matrix_into(const struct model_data *d, const struct str_list *columns,
			   const size_t *rows, size_t n_rows, float *x, struct ltv_err *err)
{
	size_t n_cols = columns->n;
	struct frame_col *cols = xcalloc(n_cols ? n_cols : 1, sizeof(*cols));

	for (size_t j = 0; j < n_cols; j++) {
		cols[j] = frame_col(&d->frame, columns->v[j]);
		if (!frame_col_found(cols[j])) {
			free(cols);
			return err_set(err, LTV_ECONFIG,
				       "feature '%s' is not a column of the features artefact; list "
				       "columns the features stage writes", columns->v[j]);
		}
	}
	for (size_t i = 0; i < n_rows; i++)
		for (size_t j = 0; j < n_cols; j++)
			x[i * n_cols + j] = (float)frame_col_at(cols[j], rows[i]);
	free(cols);
	return 0;
}

int model_data_matrix(const struct model_data *d, const struct str_list *columns,
		      const size_t *rows, size_t n_rows, float **out_x, struct ltv_err *err)
{
	const size_t n_cols = columns->n;
	float *x = xmalloc((n_rows ? n_rows : 1) * (n_cols ? n_cols : 1) * sizeof(float));
	int ret = model_data_matrix_into(d, columns, rows, n_rows, x, err);

	if (ret < 0)
		free(x);
	else
		*out_x = x;
	return ret;
}

size_t model_data_cohort(const struct model_data *d, size_t row)
{
	const struct frame_col app = frame_col_found(d->app_code) ? d->app_code
								  : frame_col(&d->frame, "app_code");
	const struct frame_col campaign = frame_col_found(d->campaign_code)
						  ? d->campaign_code
						  : frame_col(&d->frame, "campaign_code");

	return (size_t)frame_col_at(app, row) * d->n_campaigns + (size_t)frame_col_at(campaign, row);
}

int64_t *model_data_rows_by_uid(const struct model_data *d, size_t *out_n)
{
	const struct frame_col uid = frame_col(&d->frame, "uid");
	size_t max_uid = 0;
	int64_t *row;

	for (size_t i = 0; i < d->frame.n_rows; i++)
		max_uid = (size_t)frame_col_at(uid, i) > max_uid ? (size_t)frame_col_at(uid, i) : max_uid;
	row = xmalloc((max_uid + 1) * sizeof(int64_t));
	for (size_t u = 0; u <= max_uid; u++)
		row[u] = -1;
	for (size_t i = 0; i < d->frame.n_rows; i++)
		row[(size_t)frame_col_at(uid, i)] = (int64_t)i;
	*out_n = max_uid + 1;
	return row;
}
