/*
 * What the XGBoost stages (hurdle, multiplier) share, so that the layout of
 * their artefacts and the rules their training follows are written once: the
 * list of named bodies that is hashed and stored in one fixed order, the
 * opening of every manifest and of its entries, loading a body back with the
 * checks that keep a mismatched booster out of prediction, the training
 * report, gbt_param from a config gbt_section, tier slots, the choice of
 * early-stopping rows and the validation the stages score themselves on.
 * The byte layout here is part of stored artefacts and their content hashes:
 * changing it changes every hurdle and multiplier artefact.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/gbt_artefact.h"
#include "ltv/metrics.h"
#include "ltv/rng.h"

/* A feature name is at least its u32 length: a larger count is a corrupt blob. */
#define MIN_FEATURE_BYTES 4

static void body_key(char key[GBT_ARTEFACT_KEY_MAX], int tier, int64_t horizon, const char *part)
{
	snprintf(key, GBT_ARTEFACT_KEY_MAX, "t%d:h%lld:%s", tier, (long long)horizon, part);
}

/* Appends a body that takes ownership of data. */
static void body_append(struct gbt_artefact *a, const char *key, uint8_t *data, size_t len)
{
	struct gbt_artefact_body *b;

	ARRAY_GROW(a->bodies, a->n_bodies + 1, a->cap_bodies);
	b = &a->bodies[a->n_bodies++];
	snprintf(b->key, sizeof(b->key), "%s", key);
	b->data = data;
	b->len = len;
}

void gbt_artefact_init(struct gbt_artefact *a)
{
	memset(a, 0, sizeof(*a));
	a->models = cJSON_CreateObject();
	a->skipped = cJSON_CreateArray();
	a->nearly_pooled = cJSON_CreateArray();
}

void gbt_artefact_release(struct gbt_artefact *a)
{
	for (size_t i = 0; i < a->n_bodies; i++)
		free(a->bodies[i].data);
	free(a->bodies);
	cJSON_Delete(a->models);
	cJSON_Delete(a->skipped);
	cJSON_Delete(a->nearly_pooled);
	memset(a, 0, sizeof(*a));
}

struct cJSON *gbt_artefact_add_model_info(struct cJSON *models, int tier, int64_t horizon)
{
	cJSON *info = cJSON_CreateObject();
	char name[GBT_ARTEFACT_KEY_MAX];

	snprintf(name, sizeof(name), "t%d_h%lld", tier, (long long)horizon);
	cJSON_AddItemToObject(models, name, info);
	return info;
}

void gbt_artefact_write_manifest(struct gbt_artefact *a, const struct gbt_artefact_codec *c,
				 const struct str_list *features, const void *state, size_t n)
{
	struct gbt_artefact_entry *e = xmalloc((n ? n : 1) * sizeof(*e));
	uint32_t version = 1;
	struct blob_writer w;
	uint8_t *data;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int has_factors = 0;

		e[i] = c->opening(state, i, &has_factors);
		if (has_factors)
			version = c->fmt->version;
	}
	blob_writer_init(&w);
	blob_put_header(&w, c->fmt->magic, version);
	blob_put_u64(&w, features->n);
	for (size_t j = 0; j < features->n; j++)
		blob_put_str(&w, features->v[j]);
	blob_put_u64(&w, n);
	for (size_t i = 0; i < n; i++) {
		blob_put_u32(&w, e[i].tier);
		blob_put_u64(&w, (uint64_t)e[i].horizon);
		blob_put_u32(&w, e[i].has_body);
		c->put(&w, state, i, version);
	}
	data = blob_writer_detach(&w, &len);
	body_append(a, GBT_ARTEFACT_MANIFEST_KEY, data, len);
	blob_writer_release(&w);
	free(e);
}

int gbt_artefact_add_model(struct gbt_artefact *a, int tier, int64_t horizon, const char *part,
			   const struct gbt_model *m, struct ltv_err *err)
{
	char key[GBT_ARTEFACT_KEY_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	int ret = gbt_save(m, &data, &len, err);

	if (ret < 0)
		return ret;
	body_key(key, tier, horizon, part);
	body_append(a, key, data, len);
	return 0;
}

/* The version of the manifest r reads (open_manifest accepted it). */
static uint32_t manifest_version(const struct blob_reader *r)
{
	/* The u32 after the 8-byte magic (blob_put_header). */
	struct blob_reader head = *r;

	head.pos = 8;
	head.failed = 0;
	return blob_get_u32(&head);
}

/*
 * Fetches artefact_id's manifest into *out_buf (caller frees, also on
 * failure), checks its header against fmt, appends its feature names to
 * out_features (empty before; the caller's to free, also on failure), and
 * reads its entry count into *out_n_entries, leaving r at the first entry.
 */
static int open_manifest(struct registry *reg, int64_t artefact_id,
			 const struct gbt_artefact_manifest *fmt, void **out_buf,
			 struct blob_reader *r, struct str_list *out_features,
			 size_t *out_n_entries, struct ltv_err *err)
{
	uint32_t version;
	uint64_t n_features, n_entries;
	size_t len = 0;
	int ret;

	assert(out_features->n == 0 && !out_features->v);
	*out_buf = NULL;
	*out_n_entries = 0;
	ret = registry_blob_get(reg, artefact_id, GBT_ARTEFACT_MANIFEST_KEY, out_buf, &len, err);
	if (ret < 0)
		return ret;
	blob_reader_init(r, *out_buf, len);
	ret = blob_get_header(r, fmt->magic, fmt->version, &version, err);
	if (ret < 0)
		return ret;
	n_features = blob_get_u64(r);
	if (n_features > (r->len - r->pos) / MIN_FEATURE_BYTES)
		return err_set(err, LTV_EINVAL, "%s: bad feature count %llu", fmt->what,
			       (unsigned long long)n_features);
	out_features->v = xcalloc(n_features ? n_features : 1, sizeof(char *));
	for (; out_features->n < n_features; out_features->n++)
		if (!(out_features->v[out_features->n] = blob_get_str(r)))
			return blob_reader_status(r, fmt->what, err);
	n_entries = blob_get_u64(r);
	if (n_entries > (r->len - r->pos) / fmt->entry_bytes)
		return err_set(err, LTV_EINVAL, "%s: bad model count %llu", fmt->what,
			       (unsigned long long)n_entries);
	*out_n_entries = (size_t)n_entries;
	return 0;
}

int gbt_artefact_feature_names(struct registry *reg, int64_t artefact_id,
			       struct str_list *out_features, struct ltv_err *err)
{
	struct gbt_artefact_manifest fmt = { .entry_bytes = 1, .what = "model manifest" };
	struct blob_reader r;
	void *buf = NULL;
	size_t len = 0, n_entries;
	char magic[8];
	int ret = registry_blob_get(reg, artefact_id, GBT_ARTEFACT_MANIFEST_KEY, &buf, &len, err);

	if (ret < 0)
		return ret;
	/* every stage's manifest opens the same way; its own magic is read, not assumed */
	if (len < sizeof(magic)) {
		free(buf);
		return err_set(err, LTV_EINVAL, "model manifest of artefact %lld is truncated",
			       (long long)artefact_id);
	}
	memcpy(magic, buf, sizeof(magic));
	free(buf);
	fmt.magic = magic;
	fmt.version = UINT32_MAX;
	ret = open_manifest(reg, artefact_id, &fmt, &buf, &r, out_features, &n_entries, err);
	free(buf);
	return ret;
}

int gbt_artefact_read_manifest(struct registry *reg, int64_t artefact_id,
			       const struct gbt_artefact_codec *c, struct str_list *out_features,
			       void *state, struct ltv_err *err)
{
	struct blob_reader r;
	void *buf = NULL;
	size_t n = 0;
	uint32_t version;
	int ret = open_manifest(reg, artefact_id, c->fmt, &buf, &r, out_features, &n, err);

	if (ret < 0)
		goto out;
	version = manifest_version(&r);
	c->reserve(state, n);
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct gbt_artefact_entry e;

		e.tier = blob_get_u32(&r);
		e.horizon = (int64_t)blob_get_u64(&r);
		e.has_body = blob_get_u32(&r);
		ret = c->get(&r, version, &e, state, err);
	}
	if (ret == 0)
		ret = blob_reader_status(&r, c->fmt->what, err);
out:
	free(buf);
	return ret;
}

int gbt_artefact_load_model(struct registry *reg, int64_t artefact_id, const char *stage,
			    int tier, int64_t horizon, const char *part, int n_threads,
			    size_t n_features, struct gbt_model **out_model, struct ltv_err *err)
{
	char key[GBT_ARTEFACT_KEY_MAX];
	struct gbt_model *m = NULL;
	void *buf = NULL;
	size_t len = 0;
	int ret;

	body_key(key, tier, horizon, part);
	ret = registry_blob_get(reg, artefact_id, key, &buf, &len, err);
	if (ret == 0)
		ret = gbt_load(buf, len, n_threads, &m, err);
	if (ret == 0 && gbt_n_features(m) != n_features)
		ret = err_set(err, LTV_EINVAL, "it has %zu features, the manifest %zu",
			      gbt_n_features(m), n_features);
	if (ret < 0) {
		err_prefix(err, "%s body '%s'", stage, key);
		goto out;
	}
	*out_model = m;
	m = NULL;
out:
	gbt_free(m);
	free(buf);
	return ret;
}

int gbt_artefact_load_models(struct registry *reg, int64_t artefact_id, const char *stage,
			     const struct gbt_body_load *bodies, size_t n, int n_threads,
			     size_t n_features, struct ltv_err *err)
{
	struct ltv_err *errs = xcalloc(n ? n : 1, sizeof(*errs));
	int *rets = xcalloc(n ? n : 1, sizeof(*rets)), ret = 0;

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads > 1 ? n_threads : 1)
	for (size_t i = 0; i < n; i++)
		rets[i] = gbt_artefact_load_model(reg, artefact_id, stage, bodies[i].tier,
						  bodies[i].horizon, bodies[i].part, n_threads, n_features,
						  bodies[i].out_model, &errs[i]);
	for (size_t i = 0; i < n && ret == 0; i++)
		if (rets[i] < 0) {
			ret = rets[i];
			*err = errs[i];
		}
	free(errs);
	free(rets);
	return ret;
}

void gbt_artefact_copy_features(const struct str_list *features, struct str_list *out_features)
{
	out_features->n = features->n;
	out_features->v = xcalloc(features->n ? features->n : 1, sizeof(char *));
	for (size_t j = 0; j < features->n; j++)
		out_features->v[j] = xstrdup(features->v[j]);
}

void gbt_artefact_release_features(struct str_list *features)
{
	for (size_t j = 0; j < features->n; j++)
		free(features->v[j]);
	free(features->v);
	memset(features, 0, sizeof(*features));
}

void gbt_artefact_param(const struct gbt_section *sec, const char *objective, int n_threads,
			struct gbt_param *out_param)
{
	gbt_param_init_defaults(out_param);
	out_param->objective = objective;
	out_param->max_depth = (int)sec->max_depth;
	out_param->eta = sec->eta;
	out_param->n_rounds = (int)sec->n_rounds;
	out_param->early_stopping_rounds = (int)sec->early_stopping_rounds;
	out_param->min_child_weight = sec->min_child_weight;
	out_param->subsample = sec->subsample;
	out_param->colsample_bytree = sec->colsample_bytree;
	out_param->lambda = sec->lambda;
	out_param->max_bin = (int)sec->max_bin;
	out_param->n_threads = n_threads;
}

int gbt_artefact_row_tier(const struct model_data *d, size_t row)
{
	double t = d->tier ? d->tier[row] : 0;

	return t >= 1 && t <= 3 ? (int)t : 0;
}

size_t gbt_artefact_tier_rows(const struct model_data *d, const size_t *rows, size_t n,
			      const void *const use[GBT_ARTEFACT_N_TIERS], int t,
			      size_t *out_idx)
{
	size_t n_sub = 0;

	assert(t >= 0 && t < GBT_ARTEFACT_N_TIERS);
	if (t > 0 && use[t] == use[0])
		return 0;
	for (size_t i = 0; i < n; i++)
		if (use[gbt_artefact_row_tier(d, rows[i])] == use[t])
			out_idx[n_sub++] = i;
	return n_sub;
}

const float *gbt_artefact_tier_matrix(const float *x, size_t n, size_t k, const size_t *idx,
				      size_t n_sub, float **sub)
{
	if (n_sub == n)
		return x;
	if (!*sub)
		*sub = xmalloc(n * (k ? k : 1) * sizeof(float));
	for (size_t i = 0; i < n_sub; i++)
		memcpy(*sub + i * k, x + idx[i] * k, k * sizeof(float));
	return *sub;
}

void gbt_artefact_rows_release(struct gbt_artefact_rows *rows)
{
	free(rows->weight);
	free(rows->x);
	free(rows->target);
	memset(rows, 0, sizeof(*rows));
}

/* A uniform number in [0, 1) fixed by the row's position. */
static double row_uniform(size_t i)
{
	return rng_keyed_uniform((uint64_t)i, 0x6c74766361707331ULL); /* any fixed stream */
}

size_t gbt_artefact_rows_cap(struct gbt_artefact_rows *rows, size_t k, size_t max_rows)
{
	size_t n_pos = 0, at = 0;
	double rate[2]; /* [0]: target <= 0, [1]: target > 0 */

	if (max_rows == 0 || rows->n <= max_rows)
		return rows->n;
	for (size_t i = 0; i < rows->n; i++)
		n_pos += rows->target[i] > 0;
	rate[1] = n_pos <= max_rows / 2 ? 1.0 : (double)(max_rows / 2) / (double)n_pos;
	rate[0] = ((double)max_rows - rate[1] * (double)n_pos) / (double)(rows->n - n_pos);
	if (!rows->weight) {
		rows->weight = xmalloc(rows->n * sizeof(float));
		for (size_t i = 0; i < rows->n; i++)
			rows->weight[i] = 1.0f;
	}
	for (size_t i = 0; i < rows->n; i++) {
		const double q = rate[rows->target[i] > 0];

		if (q < 1.0 && row_uniform(i) >= q)
			continue;
		if (at != i)
			memmove(rows->x + at * k, rows->x + i * k, k * sizeof(float));
		rows->target[at] = rows->target[i];
		rows->weight[at] = (float)(rows->weight[i] / q);
		at++;
	}
	rows->n = at;
	return at;
}

enum gbt_artefact_tier_fit gbt_artefact_tier_fit(size_t n_fit_rows, size_t min_rows,
						 size_t n_rows, size_t n_pooled_rows)
{
	if (n_fit_rows < min_rows)
		return GBT_ARTEFACT_TIER_TOO_FEW;
	if ((double)n_rows >= GBT_ARTEFACT_TIER_OWN_MODEL_SHARE * (double)n_pooled_rows)
		return GBT_ARTEFACT_TIER_NEARLY_POOLED;
	return GBT_ARTEFACT_TIER_OWN;
}

const char *gbt_artefact_tier_fit_name(enum gbt_artefact_tier_fit fit)
{
	static const char *const names[] = { "own", "pooled: too few rows",
					     "pooled: nearly all its rows" };

	assert((size_t)fit < sizeof(names) / sizeof(names[0]));
	return names[fit];
}

void gbt_artefact_note_nearly_pooled(struct cJSON *list, int tier, int64_t horizon)
{
	char name[GBT_ARTEFACT_KEY_MAX];

	snprintf(name, sizeof(name), "t%d_h%lld", tier, (long long)horizon);
	cJSON_AddItemToArray(list, cJSON_CreateString(name));
}

const struct gbt_artefact_rows *gbt_artefact_pick_valid(const struct gbt_artefact_rows *own,
							const struct gbt_artefact_rows *pooled,
							enum gbt_artefact_valid *out_valid)
{
	if (own->n >= GBT_ARTEFACT_MIN_VALID_ROWS) {
		*out_valid = GBT_ARTEFACT_VALID_OWN;
		return own;
	}
	if (pooled && pooled->n >= GBT_ARTEFACT_MIN_VALID_ROWS) {
		*out_valid = GBT_ARTEFACT_VALID_POOLED;
		return pooled;
	}
	*out_valid = GBT_ARTEFACT_VALID_NONE;
	return NULL;
}

const char *gbt_artefact_valid_name(enum gbt_artefact_valid valid)
{
	static const char *const names[] = { "own", "pooled", "none" };

	assert((size_t)valid < sizeof(names) / sizeof(names[0]));
	return names[valid];
}

/* Fills s from n rows of actual and predicted ltv; cohort[i] is below n_cohorts. */
static int score(const double *actual, const double *pred, const size_t *cohort, size_t n,
		 size_t n_cohorts, struct gbt_artefact_scores *s, struct ltv_err *err)
{
	struct metrics_campaign campaign = { .wape = NAN };
	int ret = metrics_rmsle(actual, pred, n, &s->rmsle, NULL, err);

	if (ret == 0)
		ret = metrics_wape(actual, pred, n, &s->wape, NULL, err);
	if (ret == 0)
		ret = metrics_bias(actual, pred, n, &s->bias, NULL, err);
	if (ret == 0)
		ret = metrics_campaign_wape(actual, pred, cohort, n, n_cohorts, 1, &campaign, err);
	if (ret == 0)
		s->campaign_wape = campaign.wape;
	return ret;
}

/*
 * method->predict for rows that repeat: model_data_split gives a weighted
 * row once per user it stands for, one copy after another (hurdle's target
 * horizon at 1,000,000 users: 466,813 rows from 104,841), and a method's
 * prediction of a row depends on that row alone. So each run of copies is
 * predicted once and the result copied to the run: the same numbers.
 */
static int predict_runs(const struct method *method, const void *state,
			const struct model_data *d, const size_t *rows, size_t n, int64_t horizon,
			double *out_ltv, double *out_p_payer, struct ltv_err *err)
{
	size_t *distinct = xmalloc((n ? n : 1) * sizeof(size_t)), n_distinct = 0;
	double *ltv, *p_payer;
	int ret;

	for (size_t i = 0; i < n; i++)
		if (i == 0 || rows[i] != rows[i - 1])
			distinct[n_distinct++] = rows[i];
	if (n_distinct == n) { /* nothing repeats: predict in place */
		free(distinct);
		return method->predict(state, d, rows, n, horizon, out_ltv, out_p_payer, err);
	}
	ltv = xmalloc((n_distinct ? n_distinct : 1) * sizeof(double));
	p_payer = xmalloc((n_distinct ? n_distinct : 1) * sizeof(double));
	ret = method->predict(state, d, distinct, n_distinct, horizon, ltv, p_payer, err);
	for (size_t i = 0, at = 0; i < n && ret == 0; i++) {
		if (i > 0 && rows[i] != rows[i - 1])
			at++;
		out_ltv[i] = ltv[at];
		if (out_p_payer)
			out_p_payer[i] = p_payer[at];
	}
	free(distinct);
	free(ltv);
	free(p_payer);
	return ret;
}

int gbt_artefact_validate(const struct model_data *d, int64_t horizon,
			  const struct method *method, const void *state, int has_model,
			  struct gbt_artefact_validation *out, struct ltv_err *err)
{
	const double *ltv = model_data_label(d, horizon);
	const size_t *rows;
	size_t n, *cohort = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	out->scores = (struct gbt_artefact_scores){ NAN, NAN, NAN, NAN };
	model_data_split_valid(d, horizon, 0, &out->split);
	rows = out->split.valid;
	n = out->n = out->split.n_valid;
	if (n == 0 || !has_model || !ltv)
		return 0;
	out->predicted = 1;
	out->actual = xmalloc(n * sizeof(double));
	out->pred = xmalloc(n * sizeof(double));
	out->p_payer = xmalloc(n * sizeof(double));
	cohort = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		out->actual[i] = ltv[rows[i]];
		cohort[i] = model_data_cohort(d, rows[i]);
	}
	ret = predict_runs(method, state, d, rows, n, horizon, out->pred, out->p_payer, err);
	if (ret == 0)
		ret = score(out->actual, out->pred, cohort, n, d->n_apps * d->n_campaigns,
			    &out->scores, err);
	free(cohort);
	return ret;
}

void gbt_artefact_validation_release(struct gbt_artefact_validation *v)
{
	row_split_release(&v->split);
	free(v->actual);
	free(v->pred);
	free(v->p_payer);
	memset(v, 0, sizeof(*v));
}

void gbt_artefact_add_scores(struct cJSON *metrics, const struct gbt_artefact_scores *s)
{
	gbt_artefact_add_metric(metrics, "rmsle", s->rmsle);
	gbt_artefact_add_metric(metrics, "wape", s->wape);
	gbt_artefact_add_metric(metrics, "campaign_wape", s->campaign_wape);
	gbt_artefact_add_metric(metrics, "bias", s->bias);
}

void gbt_artefact_add_metric(struct cJSON *metrics, const char *name, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(metrics, name, v);
	else
		cJSON_AddNullToObject(metrics, name);
}
