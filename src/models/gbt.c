/*
 * Gradient-boosted trees over XGBoost's C API (contract in include/ltv/gbt.h):
 * the fitted model. It predicts with the native forest (gbt_forest.h) where
 * that gives XGBoost's own numbers to the bit on probe rows, else through
 * XGBoost; contributions, save and load, the accessors and feature importance
 * are XGBoost's. Fitting is gbt_fit.c's; what both share is in
 * gbt_internal.h. Every XGBoost call goes through XGB_TRY, which turns a
 * failure into LTV_EMODEL carrying the failing function's name and the first
 * line of XGBGetLastError.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ltv/blob.h"
#include "ltv/gbt.h"
#include "ltv/gbt_forest.h"
#include "gbt_internal.h"

/*
 * XGBoost's messages look like "[17:02:11] ../src/learner.cc:712: Check
 * failed: ...\nStack trace: ...": keep the part after the source location,
 * up to the first newline, so the error stays one line.
 */
int gbt_xgb_fail(struct ltv_err *err, const char *call)
{
	const char *msg = XGBGetLastError();
	const char *p;
	size_t len;

	if (!msg)
		msg = "";
	if (msg[0] == '[' && (p = strstr(msg, "] ")) != NULL) {
		const char *loc_end = strstr(p + 2, ": ");
		const char *nl = strchr(p + 2, '\n');

		if (loc_end && (!nl || loc_end < nl))
			msg = loc_end + 2;
	}
	len = strcspn(msg, "\n");
	while (len > 0 && (msg[len - 1] == ' ' || msg[len - 1] == '\r'))
		len--;
	return err_set(err, LTV_EMODEL, "xgboost: %.*s failed: %.*s",
		       (int)strcspn(call, "("), call, (int)len, msg);
}

/* Rows of the probe gbt.c checks a forest on (see forest_check). */
#define PROBE_ROWS 64

/*
 * Rows that walk the forest's splits at their edges: each value is one of the
 * feature's split conditions, or the float just below it, or NaN (missing),
 * so each comparison is tested on both sides and on the default direction.
 */
static float *probe_rows(const struct gbt_forest *f, size_t k)
{
	float *x = xmalloc(PROBE_ROWS * k * sizeof(float));
	uint64_t state = 0x9e3779b97f4a7c15u;

	for (size_t i = 0; i < PROBE_ROWS; i++)
		for (size_t j = 0; j < k; j++) {
			size_t n_cut = 0;
			const float *cut = gbt_forest_thresholds(f, j, &n_cut);
			uint64_t r;

			state = state * 6364136223846793005u + 1442695040888963407u;
			r = state >> 33;
			if (i == 0 || r % 8 == 0)
				x[i * k + j] = NAN;
			else if (n_cut == 0)
				x[i * k + j] = (float)(r % 5);
			else if (r % 3 == 0)
				x[i * k + j] = nextafterf(cut[(r >> 3) % n_cut], -INFINITY);
			else if (r % 3 == 1)
				x[i * k + j] = cut[(r >> 3) % n_cut];
			else
				x[i * k + j] = nextafterf(cut[(r >> 3) % n_cut], INFINITY);
		}
	return x;
}

static int xgb_predict_rows(const struct gbt_model *m, const float *x, size_t n_rows,
			    size_t n_features, int type, double *out_pred, struct ltv_err *err);

/*
 * The forest is used only when it gives XGBoost's own numbers, to the bit,
 * on the probe rows, margins and transformed alike; otherwise XGBoost
 * predicts (slower, same results).
 */
static int forest_check(struct gbt_model *m, struct gbt_forest *f, struct ltv_err *err)
{
	float *x = probe_rows(f, m->n_features);
	double want[PROBE_ROWS], got[PROBE_ROWS];
	int ret = 0, same = 1;

	for (int type = 0; type < 2 && ret == 0 && same; type++) {
		ret = xgb_predict_rows(m, x, PROBE_ROWS, m->n_features, type, want, err);
		gbt_forest_predict(f, x, PROBE_ROWS, type, 1, got);
		for (size_t i = 0; i < PROBE_ROWS && ret == 0; i++)
			same &= memcmp(&want[i], &got[i], sizeof(double)) == 0;
	}
	free(x);
	if (ret == 0 && same)
		m->forest = f;
	else
		gbt_forest_free(f);
	return ret;
}

/* Builds the native forest from the model's own JSON body (see gbt_forest.h). */
int gbt_model_forest_build(struct gbt_model *m, const char *json, size_t len, struct ltv_err *err)
{
	struct gbt_forest *f = NULL;
	struct ltv_err ignored = { 0 };

	if (gbt_forest_from_json(json, len, m->n_features, &f, &ignored) < 0)
		return 0; /* something this evaluator does not read: XGBoost predicts */
	return forest_check(m, f, err);
}

/* The learner configures itself lazily; do it now so concurrent predicts only read it. */
int gbt_model_warm_up(struct gbt_model *m, struct ltv_err *err)
{
	float *row = xmalloc(m->n_features * sizeof(float));
	double pred;
	int ret;

	for (size_t j = 0; j < m->n_features; j++)
		row[j] = NAN;
	ret = xgb_predict_rows(m, row, 1, m->n_features, 0, &pred, err);
	free(row);
	return ret;
}

static int xgb_predict_rows(const struct gbt_model *m, const float *x, size_t n_rows,
			    size_t n_features, int type, double *out_pred, struct ltv_err *err)
{
	/* Array interface "typestr" wants the byte order of the floats we hand over. */
	const char *typestr = (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) ? "<f4" : ">f4";
	char config[160], values[192];
	int ret = 0;

	assert(m && (x || n_rows == 0) && (out_pred || n_rows == 0));
	if (n_features != m->n_features)
		return err_set(err, LTV_EINVAL,
			       "gbt: predict got %zu features per row; the model was fitted on %zu",
			       n_features, m->n_features);
	/*
	 * XGBoost 1.7 requires "cache_id" (0: no cache) and accepts NaN for
	 * "missing" (the Python package sends the same).
	 */
	snprintf(config, sizeof(config),
		 "{\"type\": %d, \"training\": false, \"iteration_begin\": 0, "
		 "\"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, "
		 "\"cache_id\": 0}", type);

	for (size_t start = 0; start < n_rows; start += GBT_PREDICT_CHUNK_ROWS) {
		const size_t chunk = n_rows - start < GBT_PREDICT_CHUNK_ROWS
					     ? n_rows - start : GBT_PREDICT_CHUNK_ROWS;
		const bst_ulong *shape = NULL;
		bst_ulong dim = 0, total = 1;
		const float *result = NULL;

		snprintf(values, sizeof(values),
			 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], "
			 "\"typestr\": \"%s\", \"version\": 3}",
			 (uintptr_t)(x + start * n_features), chunk, n_features, typestr);
		XGB_TRY(XGBoosterPredictFromDense(m->booster, values, config, NULL,
						  &shape, &dim, &result));
		for (bst_ulong d = 0; d < dim; d++)
			total *= shape[d];
		if (total != chunk) {
			ret = err_set(err, LTV_EMODEL,
				      "gbt: xgboost returned %" PRIu64 " predictions for %zu rows",
				      (uint64_t)total, chunk);
			goto out;
		}
		for (size_t i = 0; i < chunk; i++)
			out_pred[start + i] = result[i];
	}
out:
	return ret;
}

static int predict_rows(const struct gbt_model *m, const float *x, size_t n_rows,
			size_t n_features, int type, double *out_pred, struct ltv_err *err)
{
	if (!m->forest)
		return xgb_predict_rows(m, x, n_rows, n_features, type, out_pred, err);
	if (n_features != m->n_features)
		return err_set(err, LTV_EINVAL,
			       "gbt: predict got %zu features per row; the model was fitted on %zu",
			       n_features, m->n_features);
	gbt_forest_predict(m->forest, x, n_rows, type, m->n_threads, out_pred);
	return 0;
}

int gbt_native(const struct gbt_model *m)
{
	return m->forest != NULL;
}

double gbt_margin_bound(const struct gbt_model *m)
{
	return m->forest ? gbt_forest_margin_bound(m->forest) : INFINITY;
}

int gbt_predict_xgboost(const struct gbt_model *m, const float *x, size_t n_rows,
			size_t n_features, int margin, double *out_pred, struct ltv_err *err)
{
	return xgb_predict_rows(m, x, n_rows, n_features, margin ? 1 : 0, out_pred, err);
}

int gbt_predict(const struct gbt_model *m, const float *x, size_t n_rows, size_t n_features,
		double *out_pred, struct ltv_err *err)
{
	return predict_rows(m, x, n_rows, n_features, 0, out_pred, err);
}

int gbt_predict_margin(const struct gbt_model *m, const float *x, size_t n_rows,
		       size_t n_features, double *out_pred, struct ltv_err *err)
{
	return predict_rows(m, x, n_rows, n_features, 1, out_pred, err);
}

int gbt_predict_contribs(const struct gbt_model *m, const float *x, size_t n_rows,
			 size_t n_features, double *out_contrib, struct ltv_err *err)
{
	/*
	 * Contributions go through a DMatrix: XGBoost 1.7's in-place prediction
	 * (XGBoosterPredictFromDense) takes only types 0 and 1. "type": 2 is
	 * TreeSHAP (exact), not the approximation (3).
	 */
	static const char config[] =
		"{\"type\": 2, \"training\": false, \"iteration_begin\": 0, "
		"\"iteration_end\": 0, \"strict_shape\": false}";
	const size_t width = n_features + 1;
	DMatrixHandle d = NULL;
	const bst_ulong *shape = NULL;
	bst_ulong dim = 0, total = 1;
	const float *result = NULL;
	int ret = 0;

	assert(m && (x || n_rows == 0) && (out_contrib || n_rows == 0));
	if (n_features != m->n_features)
		return err_set(err, LTV_EINVAL,
			       "gbt: contributions got %zu features per row; the model was fitted on %zu",
			       n_features, m->n_features);
	if (n_rows == 0)
		return 0;
	XGB_TRY(XGDMatrixCreateFromMat(x, n_rows, n_features, NAN, &d));
	XGB_TRY(XGBoosterPredictFromDMatrix(m->booster, d, config, &shape, &dim, &result));
	for (bst_ulong k = 0; k < dim; k++)
		total *= shape[k];
	if (total != n_rows * width) {
		ret = err_set(err, LTV_EMODEL,
			      "gbt: xgboost returned %" PRIu64 " contributions for %zu rows of %zu",
			      (uint64_t)total, n_rows, width);
		goto out;
	}
	/* result is XGBoost's until its next call on this booster: copied now. */
	for (size_t i = 0; i < n_rows * width; i++)
		out_contrib[i] = result[i];
out:
	if (d)
		XGDMatrixFree(d);
	return ret;
}

int gbt_save_json(const struct gbt_model *m, char **out_text, size_t *out_len, struct ltv_err *err)
{
	const char *body = NULL;
	bst_ulong body_len = 0;
	int ret = 0;

	assert(m && out_text && out_len);
	XGB_TRY(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &body_len, &body));
	/* borrowed from XGBoost until its next call on this booster: copied now */
	*out_text = xmalloc((size_t)body_len + 1);
	memcpy(*out_text, body, (size_t)body_len);
	(*out_text)[body_len] = '\0';
	*out_len = (size_t)body_len;
out:
	return ret;
}

int gbt_save(const struct gbt_model *m, uint8_t **out_buf, size_t *out_len, struct ltv_err *err)
{
	struct blob_writer w;
	const char *body = NULL;
	bst_ulong body_len = 0;
	int ret = 0;

	assert(m && out_buf && out_len);
	blob_writer_init(&w);
	/*
	 * JSON rather than UBJSON: a few flipped bits crash 1.7's UBJSON reader,
	 * while its JSON reader rejects them (found by mutating saved bodies).
	 * Floats are written shortest-round-trip, so reloads predict bit-identically.
	 */
	XGB_TRY(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &body_len, &body));
	/* body is borrowed from XGBoost until its next call: copied into w right here. */
	blob_put_header(&w, GBT_BLOB_MAGIC, GBT_BLOB_VERSION);
	blob_put_str(&w, m->objective);
	blob_put_str(&w, m->eval_metric);
	blob_put_u64(&w, m->n_features);
	blob_put_u32(&w, (uint32_t)m->best_iteration);
	blob_put_u32(&w, (uint32_t)m->rounds_trained);
	blob_put_f64(&w, m->best_score);
	blob_put_u64(&w, XXH3_64bits(body, (size_t)body_len));
	blob_put_u64(&w, body_len);
	blob_put_bytes(&w, body, (size_t)body_len);
	*out_buf = blob_writer_detach(&w, out_len);
out:
	blob_writer_release(&w);
	return ret;
}

int gbt_load(const void *buf, size_t len, int n_threads, struct gbt_model **out_model,
	     struct ltv_err *err)
{
	struct blob_reader r;
	struct gbt_model *m = NULL;
	uint32_t version;
	uint64_t n_features, checksum, body_len;
	const uint8_t *body;
	bst_ulong model_features = 0;
	int boosted = 0;
	int ret;

	assert(buf && out_model);
	*out_model = NULL;
	if (n_threads < 1)
		return err_set(err, LTV_ECONFIG, "gbt: load needs n_threads >= 1, got %d", n_threads);
	blob_reader_init(&r, buf, len);
	if ((ret = blob_get_header(&r, GBT_BLOB_MAGIC, GBT_BLOB_VERSION, &version, err)) < 0)
		return ret;

	m = xcalloc(1, sizeof(*m));
	m->objective = blob_get_str(&r);
	m->eval_metric = blob_get_str(&r);
	n_features = blob_get_u64(&r);
	m->best_iteration = (int)blob_get_u32(&r);
	m->rounds_trained = (int)blob_get_u32(&r);
	m->best_score = blob_get_f64(&r);
	checksum = blob_get_u64(&r);
	body_len = blob_get_u64(&r);
	if ((ret = blob_reader_status(&r, "gbt", err)) < 0)
		goto out;
	if (body_len != r.len - r.pos) {
		ret = err_set(err, LTV_EINVAL,
			      "gbt: model blob says its body has %" PRIu64 " bytes but %zu follow",
			      body_len, r.len - r.pos);
		goto out;
	}
	body = r.data + r.pos;
	if (XXH3_64bits(body, (size_t)body_len) != checksum) {
		ret = err_set(err, LTV_EINVAL, "gbt: model blob body fails its checksum (corrupted)");
		goto out;
	}
	if (!gbt_objective_find(m->objective) || n_features == 0 || n_features > INT_MAX ||
	    m->best_iteration < 0 || m->rounds_trained <= m->best_iteration) {
		ret = err_set(err, LTV_EINVAL,
			      "gbt: model blob has inconsistent metadata (objective '%s', "
			      "%" PRIu64 " features, best round %d of %d)",
			      m->objective, n_features, m->best_iteration, m->rounds_trained);
		goto out;
	}
	m->n_features = (size_t)n_features;

	XGB_TRY(XGBoosterCreate(NULL, 0, &m->booster));
	if ((ret = gbt_booster_set(m->booster, "verbosity", "0", err)) < 0)
		goto out;
	XGB_TRY(XGBoosterLoadModelFromBuffer(m->booster, body, body_len));
	if ((ret = gbt_booster_set_double(m->booster, "nthread", n_threads, err)) < 0)
		goto out;
	m->n_threads = n_threads;
	XGB_TRY(XGBoosterBoostedRounds(m->booster, &boosted));
	XGB_TRY(XGBoosterGetNumFeature(m->booster, &model_features));
	if (boosted != m->best_iteration + 1 || model_features != n_features) {
		ret = err_set(err, LTV_EINVAL,
			      "gbt: model body has %d rounds of %" PRIu64 " features; "
			      "its metadata says %d of %" PRIu64,
			      boosted, (uint64_t)model_features, m->best_iteration + 1, n_features);
		goto out;
	}
	if ((ret = gbt_model_warm_up(m, err)) < 0)
		goto out;
	if ((ret = gbt_model_forest_build(m, (const char *)body, (size_t)body_len, err)) < 0)
		goto out;
	*out_model = m;
	m = NULL;
out:
	gbt_free(m);
	return ret;
}

void gbt_free(struct gbt_model *m)
{
	if (!m)
		return;
	if (m->booster)
		XGBoosterFree(m->booster);
	gbt_forest_free(m->forest);
	free(m->objective);
	free(m->eval_metric);
	free(m);
}

int gbt_best_iteration(const struct gbt_model *m) { return m->best_iteration; }
double gbt_best_score(const struct gbt_model *m) { return m->best_score; }
int gbt_rounds_trained(const struct gbt_model *m) { return m->rounds_trained; }
size_t gbt_n_features(const struct gbt_model *m) { return m->n_features; }
const char *gbt_objective(const struct gbt_model *m) { return m->objective; }

/* Index of a scored feature: by the model's own names, else XGBoost's "f<index>". */
static long feature_index(const char *name, char *const *names, size_t n_names, size_t n_features)
{
	char *end;
	long j;

	for (size_t i = 0; i < n_names; i++)
		if (strcmp(names[i], name) == 0)
			return (long)i;
	if (name[0] != 'f')
		return -1;
	errno = 0;
	j = strtol(name + 1, &end, 10);
	if (errno || end == name + 1 || *end != '\0' || j < 0 || (size_t)j >= n_features)
		return -1;
	return j;
}

int gbt_feature_importance(const struct gbt_model *m, double *out_gain, struct ltv_err *err)
{
	const char **borrowed_names = NULL, **scored = NULL;
	char **names = NULL;
	bst_ulong n_names = 0, n_scored = 0, dim = 0;
	const bst_ulong *shape = NULL;
	const float *scores = NULL;
	int ret = 0;

	assert(m && out_gain);
	for (size_t j = 0; j < m->n_features; j++)
		out_gain[j] = 0.0;
	/* Both calls return buffers XGBoost reuses: copy the names before scoring. */
	XGB_TRY(XGBoosterGetStrFeatureInfo(m->booster, "feature_name", &n_names, &borrowed_names));
	names = xcalloc((size_t)n_names + 1, sizeof(*names));
	for (bst_ulong i = 0; i < n_names; i++)
		names[i] = xstrdup(borrowed_names[i]);
	XGB_TRY(XGBoosterFeatureScore(m->booster, "{\"importance_type\": \"total_gain\"}",
				      &n_scored, &scored, &dim, &shape, &scores));
	for (bst_ulong i = 0; i < n_scored; i++) {
		long j = feature_index(scored[i], names, (size_t)n_names, m->n_features);

		if (j < 0) {
			ret = err_set(err, LTV_EMODEL,
				      "gbt: xgboost scored an unknown feature '%s'", scored[i]);
			goto out;
		}
		out_gain[j] = scores[i];
	}
out:
	if (names)
		for (bst_ulong i = 0; i < n_names; i++)
			free(names[i]);
	free(names);
	return ret;
}

static char version_text[32];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void version_init(void)
{
	int major = 0, minor = 0, patch = 0;

	XGBoostVersion(&major, &minor, &patch);
	snprintf(version_text, sizeof(version_text), "%d.%d.%d", major, minor, patch);
}

const char *gbt_version_string(void)
{
	pthread_once(&version_once, version_init);
	return version_text;
}
