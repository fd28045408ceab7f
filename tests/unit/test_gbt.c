/*
 * Unit tests for the XGBoost wrapper (src/models/gbt.c, fitting in
 * gbt_fit.c): known signals are recovered, early stopping cuts the model to
 * its best round and keeps it through save/load, saved bodies are checked,
 * and thread counts, chunking and concurrent callers do not change a single
 * bit of the predictions.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xgboost/c_api.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ltv/blob.h"
#include "ltv/gbt.h"

/* splitmix64: reproducible data without depending on libc's rand(). */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unif(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_normal(struct rng *r)
{
	double u1 = rng_unif(r), u2 = rng_unif(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static float *make_x(struct rng *r, size_t n, size_t k)
{
	float *x = malloc(n * k * sizeof(float));

	assert_non_null(x);
	for (size_t i = 0; i < n * k; i++)
		x[i] = (float)rng_unif(r);
	return x;
}

static float *alloc_f(size_t n)
{
	float *v = malloc(n * sizeof(float));

	assert_non_null(v);
	return v;
}

static double *alloc_d(size_t n)
{
	double *v = malloc(n * sizeof(double));

	assert_non_null(v);
	return v;
}

static double correlation(const double *a, const float *b, size_t n)
{
	double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;

	for (size_t i = 0; i < n; i++) {
		ma += a[i];
		mb += b[i];
	}
	ma /= (double)n;
	mb /= (double)n;
	for (size_t i = 0; i < n; i++) {
		sab += (a[i] - ma) * (b[i] - mb);
		saa += (a[i] - ma) * (a[i] - ma);
		sbb += (b[i] - mb) * (b[i] - mb);
	}
	return sab / sqrt(saa * sbb);
}

static double rmse(const double *pred, const float *y, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (pred[i] - y[i]) * (pred[i] - y[i]);
	return sqrt(s / (double)n);
}

/* y = 3·x0 + N(0, sd) over k uniform features. */
static void make_linear(struct rng *r, size_t n, size_t k, double sd, float **out_x, float **out_y)
{
	float *x = make_x(r, n, k);
	float *y = alloc_f(n);

	for (size_t i = 0; i < n; i++)
		y[i] = (float)(3.0 * x[i * k] + sd * rng_normal(r));
	*out_x = x;
	*out_y = y;
}

static struct gbt_model *fit_ok(const struct gbt_param *p, const float *xt, const float *yt,
				size_t nt, const float *xv, const float *yv, size_t nv, size_t k,
				const char *const *names)
{
	struct gbt_model *m = NULL;
	struct ltv_err err = { 0, "" };
	int ret = gbt_fit(p, xt, yt, NULL, nt, xv, yv, nv, k, names, &m, &err);

	if (ret != 0)
		fprintf(stderr, "gbt_fit: %s\n", err.msg);
	assert_int_equal(ret, 0);
	assert_non_null(m);
	return m;
}

static void test_regression_recovers_linear_signal(void **state)
{
	struct rng r = { 1 };
	const size_t k = 4, nt = 4000, nv = 1000;
	float *xt, *yt, *xv, *yv;
	struct gbt_param p;
	struct gbt_model *m;
	double *pred = alloc_d(nv);
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, nt, k, 0.1, &xt, &yt);
	make_linear(&r, nv, k, 0.1, &xv, &yv);
	gbt_param_init_defaults(&p);
	p.n_threads = 2;
	m = fit_ok(&p, xt, yt, nt, xv, yv, nv, k, NULL);
	assert_int_equal(gbt_predict(m, xv, nv, k, pred, &err), 0);
	assert_true(rmse(pred, yv, nv) < 0.15);
	assert_true(correlation(pred, yv, nv) > 0.95);
	assert_string_equal(gbt_objective(m), "reg:squarederror");
	assert_int_equal(gbt_n_features(m), k);
	/* The reported validation metric is the RMSE of what gbt_predict returns. */
	assert_double_near(gbt_best_score(m), rmse(pred, yv, nv), 1e-4);

	gbt_free(m);
	free(xt), free(yt), free(xv), free(yv), free(pred);
}

static void test_logistic_separates_classes(void **state)
{
	struct rng r = { 2 };
	const size_t k = 3, n = 3000;
	float *x = make_x(&r, n, k);
	float *y = alloc_f(n);
	double *prob = alloc_d(n), *margin = alloc_d(n);
	double sum_pos = 0, sum_neg = 0;
	size_t n_pos = 0;
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	(void)state;
	for (size_t i = 0; i < n; i++)
		y[i] = (x[i * k] - 0.5 + 0.1 * rng_normal(&r)) > 0 ? 1.0f : 0.0f;
	gbt_param_init_defaults(&p);
	p.objective = "binary:logistic";
	p.n_rounds = 100;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_best_iteration(m), 99);
	assert_true(isnan(gbt_best_score(m)));
	assert_int_equal(gbt_predict(m, x, n, k, prob, &err), 0);
	assert_int_equal(gbt_predict_margin(m, x, n, k, margin, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(prob[i] >= 0.0 && prob[i] <= 1.0);
		assert_double_near(prob[i], 1.0 / (1.0 + exp(-margin[i])), 1e-5);
		if (y[i] > 0.5f) {
			sum_pos += prob[i];
			n_pos++;
		} else {
			sum_neg += prob[i];
		}
	}
	assert_true(n_pos > n / 4 && n_pos < 3 * n / 4);
	assert_true(sum_pos / (double)n_pos - sum_neg / (double)(n - n_pos) > 0.6);

	gbt_free(m);
	free(x), free(y), free(prob), free(margin);
}

static void test_early_stopping_keeps_best_round(void **state)
{
	struct rng r = { 3 };
	const size_t k = 5, nt = 300, nv = 300;
	float *xt, *yt, *xv, *yv;
	struct gbt_param p;
	struct gbt_model *m, *full, *loaded = NULL;
	double *pred = alloc_d(nv), *pred_full = alloc_d(nv), *pred_loaded = alloc_d(nv);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, nt, k, 2.0, &xt, &yt);
	make_linear(&r, nv, k, 2.0, &xv, &yv);
	gbt_param_init_defaults(&p);
	p.eta = 0.3;
	p.n_rounds = 500;
	p.early_stopping_rounds = 20;
	m = fit_ok(&p, xt, yt, nt, xv, yv, nv, k, NULL);
	assert_true(gbt_best_iteration(m) < 100);
	assert_int_equal(gbt_rounds_trained(m), gbt_best_iteration(m) + 1 + 20);

	/* Predictions come from the best round: their RMSE is the best score... */
	assert_int_equal(gbt_predict(m, xv, nv, k, pred, &err), 0);
	assert_double_near(rmse(pred, yv, nv), gbt_best_score(m), 1e-4);
	/* ...which beats all 500 rounds, so the cut really changed the model. */
	full = fit_ok(&p, xt, yt, nt, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_best_iteration(full), 499);
	assert_int_equal(gbt_predict(full, xv, nv, k, pred_full, &err), 0);
	assert_true(rmse(pred_full, yv, nv) > gbt_best_score(m) + 0.05);

	assert_int_equal(gbt_save(m, &buf, &len, &err), 0);
	assert_int_equal(gbt_load(buf, len, 1, &loaded, &err), 0);
	assert_int_equal(gbt_best_iteration(loaded), gbt_best_iteration(m));
	assert_int_equal(gbt_rounds_trained(loaded), gbt_rounds_trained(m));
	assert_memory_equal(&(double){ gbt_best_score(loaded) }, &(double){ gbt_best_score(m) },
			    sizeof(double));
	assert_int_equal(gbt_predict(loaded, xv, nv, k, pred_loaded, &err), 0);
	assert_memory_equal(pred, pred_loaded, nv * sizeof(double));

	gbt_free(m), gbt_free(full), gbt_free(loaded);
	free(buf), free(xt), free(yt), free(xv), free(yv);
	free(pred), free(pred_full), free(pred_loaded);
}

static void test_save_load_bit_identical(void **state)
{
	struct rng r = { 4 };
	const size_t k = 6, n = 2000;
	const char *const names[] = { "rev_d0", "rev_d1", "purchases", "active_days", "events", "cost" };
	float *x, *y;
	struct gbt_param p;
	struct gbt_model *m, *loaded = NULL;
	double *before = alloc_d(n), *after = alloc_d(n);
	uint8_t *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, n, k, 0.5, &x, &y);
	gbt_param_init_defaults(&p);
	p.objective = "reg:squarederror";
	p.n_rounds = 60;
	p.colsample_bytree = 0.7;
	m = fit_ok(&p, x, y, n / 2, x + n / 2 * k, y + n / 2, n / 2, k, names);
	assert_int_equal(gbt_predict(m, x, n, k, before, &err), 0);
	assert_int_equal(gbt_save(m, &buf, &len, &err), 0);
	assert_true(len > 100);
	assert_memory_equal(buf, GBT_BLOB_MAGIC, 8);
	assert_int_equal(gbt_load(buf, len, 2, &loaded, &err), 0);
	assert_int_equal(gbt_predict(loaded, x, n, k, after, &err), 0);
	assert_memory_equal(before, after, n * sizeof(double));
	/* Saving the loaded model gives the same bytes: nothing was lost or added. */
	assert_int_equal(gbt_save(loaded, &buf2, &len2, &err), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(buf, buf2, len);

	gbt_free(m), gbt_free(loaded);
	free(buf), free(buf2), free(x), free(y), free(before), free(after);
}

/*
 * models export writes gbt_save_json's text to "<name>.json": XGBoost itself
 * must load that file (as another tool would, with XGBoosterLoadModel) and
 * predict what the wrapper predicts.
 */
static void test_save_json_loads_in_xgboost(void **state)
{
	struct rng r = { 9 };
	const size_t k = 6, n = 1000;
	const char *const names[] = { "rev_d0", "rev_d1", "purchases", "active_days", "events", "cost" };
	char path[] = "/tmp/ltv_gbt_json_XXXXXX.json";
	float *x, *y;
	struct gbt_param p;
	struct gbt_model *m;
	double *ours = alloc_d(n);
	char *text = NULL;
	size_t len = 0;
	struct ltv_err err = { 0, "" };
	BoosterHandle h = NULL;
	DMatrixHandle d = NULL;
	bst_ulong out_dim = 0;
	const bst_ulong *shape = NULL;
	const float *theirs = NULL;
	FILE *f;
	int fd;

	(void)state;
	make_linear(&r, n, k, 0.3, &x, &y);
	gbt_param_init_defaults(&p);
	p.objective = "reg:squarederror";
	p.n_rounds = 40;
	m = fit_ok(&p, x, y, n / 2, x + n / 2 * k, y + n / 2, n / 2, k, names);
	assert_int_equal(gbt_predict(m, x, n, k, ours, &err), 0);
	assert_int_equal(gbt_save_json(m, &text, &len, &err), 0);
	assert_true(len > 100 && text[0] == '{' && strlen(text) == len);
	assert_non_null(strstr(text, "\"learner\""));
	fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(XGBoosterCreate(NULL, 0, &h), 0);
	assert_int_equal(XGBoosterLoadModel(h, path), 0);
	assert_int_equal(XGDMatrixCreateFromMat(x, n, k, NAN, &d), 0);
	assert_int_equal(XGBoosterPredictFromDMatrix(h, d, "{\"type\": 0, \"training\": false, "
				"\"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}",
				&shape, &out_dim, &theirs), 0);
	assert_int_equal(shape[0], n);
	for (size_t i = 0; i < n; i++)
		assert_float_equal(ours[i], theirs[i], 1e-5 * (1 + fabs(ours[i])));
	XGDMatrixFree(d);
	XGBoosterFree(h);
	unlink(path);
	gbt_free(m);
	free(text), free(x), free(y), free(ours);
}

/* Rewrites a saved blob with a new body (and its correct checksum). */
static uint8_t *reblob(const struct gbt_model *m, const void *body, size_t body_len,
		       int best_iteration, size_t *out_len)
{
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, GBT_BLOB_MAGIC, GBT_BLOB_VERSION);
	blob_put_str(&w, gbt_objective(m));
	blob_put_str(&w, "rmse");
	blob_put_u64(&w, gbt_n_features(m));
	blob_put_u32(&w, (uint32_t)best_iteration);
	blob_put_u32(&w, (uint32_t)gbt_rounds_trained(m));
	blob_put_f64(&w, gbt_best_score(m));
	blob_put_u64(&w, XXH3_64bits(body, body_len));
	blob_put_u64(&w, body_len);
	blob_put_bytes(&w, body, body_len);
	return blob_writer_detach(&w, out_len);
}

static void test_load_rejects_corrupt_blobs(void **state)
{
	struct rng r = { 5 };
	const size_t k = 3, n = 500;
	float *x, *y;
	struct gbt_param p;
	struct gbt_model *m, *loaded = NULL;
	uint8_t *buf = NULL, *bad;
	size_t len = 0, bad_len, body_len;
	struct ltv_err err = { 0, "" };
	static const char garbage[] = "this is not an xgboost model at all";

	(void)state;
	make_linear(&r, n, k, 0.5, &x, &y);
	gbt_param_init_defaults(&p);
	p.n_rounds = 20;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_save(m, &buf, &len, &err), 0);

	/* A flipped byte in the body: caught by the checksum, XGBoost never sees it. */
	bad = malloc(len);
	memcpy(bad, buf, len);
	bad[len - 40] ^= 0x5a;
	assert_int_equal(gbt_load(bad, len, 1, &loaded, &err), LTV_EINVAL);
	assert_null(loaded);
	assert_non_null(strstr(err.msg, "checksum"));
	/* Truncated anywhere, or not ours at all. */
	for (size_t cut = 0; cut < len; cut += (cut < 100 ? 1 : 997)) {
		assert_true(gbt_load(buf, cut, 1, &loaded, &err) < 0);
		assert_null(loaded);
	}
	memcpy(bad, buf, len);
	bad[0] = 'X';
	assert_int_equal(gbt_load(bad, len, 1, &loaded, &err), LTV_EINVAL);
	free(bad);

	/* A well-formed blob whose body XGBoost rejects: the XGBoost text is kept. */
	bad = reblob(m, garbage, sizeof(garbage), gbt_best_iteration(m), &bad_len);
	assert_int_equal(gbt_load(bad, bad_len, 1, &loaded, &err), LTV_EMODEL);
	assert_null(loaded);
	assert_non_null(strstr(err.msg, "xgboost: XGBoosterLoadModelFromBuffer failed: "));
	assert_null(strchr(err.msg, '\n'));
	free(bad);

	/* A real body whose metadata disagrees with it. */
	{
		struct blob_reader rd;
		uint32_t version;
		char *s;

		blob_reader_init(&rd, buf, len);
		assert_int_equal(blob_get_header(&rd, GBT_BLOB_MAGIC, 1, &version, &err), 0);
		free(blob_get_str(&rd));
		s = blob_get_str(&rd);
		free(s);
		(void)blob_get_u64(&rd), (void)blob_get_u32(&rd), (void)blob_get_u32(&rd);
		(void)blob_get_f64(&rd), (void)blob_get_u64(&rd);
		body_len = (size_t)blob_get_u64(&rd);
		assert_int_equal(blob_reader_status(&rd, "test", &err), 0);
		assert_int_equal(body_len, len - rd.pos);
		bad = reblob(m, buf + rd.pos, body_len, gbt_best_iteration(m) - 3, &bad_len);
	}
	assert_int_equal(gbt_load(bad, bad_len, 1, &loaded, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "rounds"));
	assert_null(loaded);
	free(bad);
	/* And the untouched blob still loads. */
	assert_int_equal(gbt_load(buf, len, 1, &loaded, &err), 0);

	gbt_free(m), gbt_free(loaded);
	free(buf), free(x), free(y);
}

/* Gamma / tweedie: y has mean mu = exp(0.5 + 2·x0); tweedie adds exact zeros. */
static void check_positive_objective(const char *objective, uint64_t seed)
{
	struct rng r = { seed };
	const size_t k = 3, nt = 4000, nv = 1000, n = nt + nv;
	const int tweedie = strcmp(objective, "reg:tweedie") == 0;
	float *x = make_x(&r, n, k);
	float *y = alloc_f(n), *mu = alloc_f(n);
	double *pred = alloc_d(n);
	double sum_pred = 0, sum_y = 0;
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	for (size_t i = 0; i < n; i++) {
		double mean = exp(0.5 + 2.0 * x[i * k]);
		/* Gamma(shape 2, scale mean/2): the sum of two exponentials. */
		double g = -0.5 * mean * (log(1.0 - rng_unif(&r)) + log(1.0 - rng_unif(&r)));

		if (tweedie && rng_unif(&r) < 0.5) {
			g = 0.0;
			mu[i] = (float)(0.5 * mean);
		} else {
			mu[i] = (float)(tweedie ? 0.5 * mean : mean);
		}
		y[i] = (float)(g > 1e-6 || tweedie ? g : 1e-6);
	}
	gbt_param_init_defaults(&p);
	p.objective = objective;
	p.max_depth = 3;
	p.n_threads = 2;
	m = fit_ok(&p, x, y, nt, x + nt * k, y + nt, nv, k, NULL);
	assert_int_equal(gbt_predict(m, x, n, k, pred, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(pred[i] > 0.0 && isfinite(pred[i]));
		sum_pred += pred[i];
		sum_y += y[i];
	}
	assert_true(fabs(sum_pred / sum_y - 1.0) < 0.1);
	if (tweedie)
		for (size_t i = 0; i < n; i++)
			mu[i] = (float)(0.5 * exp(0.5 + 2.0 * x[i * k]));
	assert_true(correlation(pred, mu, n) > 0.9);

	gbt_free(m);
	free(x), free(y), free(mu), free(pred);
}

static void test_gamma_predicts_positive_means(void **state)
{
	(void)state;
	check_positive_objective("reg:gamma", 6);
}

static void test_tweedie_predicts_positive_means(void **state)
{
	(void)state;
	check_positive_objective("reg:tweedie", 7);
}

/* gbt_param.threads_now: a count that changes every round. */
struct threads_script {
	int calls;
};

static int threads_changing(void *arg)
{
	struct threads_script *s = arg;

	return 1 + s->calls++ % 3; /* 1, 2, 3, 1, ... */
}

/* The same best round, predictions on x and saved bytes. */
static void assert_same_model(struct gbt_model *m1, struct gbt_model *m2, const float *x,
			      size_t n, size_t k)
{
	double *p1 = alloc_d(n), *p2 = alloc_d(n);
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct ltv_err err = { 0, "" };

	assert_int_equal(gbt_best_iteration(m1), gbt_best_iteration(m2));
	assert_int_equal(gbt_predict(m1, x, n, k, p1, &err), 0);
	assert_int_equal(gbt_predict(m2, x, n, k, p2, &err), 0);
	assert_memory_equal(p1, p2, n * sizeof(double));
	assert_int_equal(gbt_save(m1, &b1, &len1, &err), 0);
	assert_int_equal(gbt_save(m2, &b2, &len2, &err), 0);
	assert_int_equal(len1, len2);
	assert_memory_equal(b1, b2, len1);
	free(p1), free(p2), free(b1), free(b2);
}

/*
 * Same seed, row and column sampling on: 1 thread, 2 threads, and a thread
 * count that changes before every round (threads_now: a stage task taking
 * the cores its neighbours leave) give identical bits.
 */
static void test_thread_count_does_not_change_predictions(void **state)
{
	struct rng r = { 8 };
	const size_t k = 8, n = 20000;
	float *x, *y;
	struct gbt_param p;
	struct gbt_model *m1, *m2, *m3;
	struct threads_script script = { 0 };

	(void)state;
	make_linear(&r, n, k, 0.7, &x, &y);
	gbt_param_init_defaults(&p);
	p.n_rounds = 80;
	p.subsample = 0.8;
	p.colsample_bytree = 0.7;
	p.seed = 42;
	p.n_threads = 1;
	m1 = fit_ok(&p, x, y, n * 3 / 4, x + n * 3 / 4 * k, y + n * 3 / 4, n / 4, k, NULL);
	p.n_threads = 2;
	m2 = fit_ok(&p, x, y, n * 3 / 4, x + n * 3 / 4 * k, y + n * 3 / 4, n / 4, k, NULL);
	assert_same_model(m1, m2, x, n, k);
	p.n_threads = 1;
	p.threads_now = threads_changing;
	p.threads_arg = &script;
	m3 = fit_ok(&p, x, y, n * 3 / 4, x + n * 3 / 4 * k, y + n * 3 / 4, n / 4, k, NULL);
	assert_int_equal(script.calls, gbt_rounds_trained(m3)); /* asked before every round */
	assert_true(script.calls >= 3);
	assert_same_model(m1, m3, x, n, k);

	gbt_free(m1), gbt_free(m2), gbt_free(m3);
	free(x), free(y);
}

/*
 * The validation metric must not depend on the thread count either: it picks
 * the best round and is stored (best_score) in the saved body. XGBoost sums a
 * metric's per-row losses in one partial sum per thread; with one huge
 * residual first, a serial sum loses every small one after it (below its
 * rounding step) while two halves keep the second half's. On 2 threads the
 * saved bodies then differed (before the fit evaluated on 1).
 */
static void test_thread_count_does_not_change_best_score(void **state)
{
	struct rng r = { 18 };
	const size_t k = 6, n = 16000, n_train = n / 2;
	float *x, *y;
	struct gbt_param p;
	struct gbt_model *m1, *m2;

	(void)state;
	make_linear(&r, n, k, 0.7, &x, &y);
	y[n_train] = 1e8f; /* the first validation row: residual^2 about 1e16 */
	gbt_param_init_defaults(&p);
	p.n_rounds = 40;
	p.n_threads = 1;
	m1 = fit_ok(&p, x, y, n_train, x + n_train * k, y + n_train, n - n_train, k, NULL);
	p.n_threads = 2;
	m2 = fit_ok(&p, x, y, n_train, x + n_train * k, y + n_train, n - n_train, k, NULL);
	assert_memory_equal(&(double){ gbt_best_score(m1) }, &(double){ gbt_best_score(m2) },
			    sizeof(double));
	assert_true(gbt_best_score(m1) > 1e3); /* the huge row is in it */
	assert_same_model(m1, m2, x, n, k);
	gbt_free(m1), gbt_free(m2);
	free(x), free(y);
}

/*
 * gbt_rows: rows binned once, then fitted with two objectives and labels
 * (hurdle's revenue candidates), give each gbt_fit's model to the byte; a
 * fit whose max_bin or weights do not match the binned rows is refused.
 */
static void test_binned_rows_fit_like_gbt_fit(void **state)
{
	struct rng r = { 19 };
	const size_t k = 5, n = 6000, n_train = n * 3 / 4;
	float *x, *y, *y_gamma = alloc_f(n);
	struct gbt_param p;
	struct gbt_rows *rows = NULL;
	struct gbt_model *a, *b, *c;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, n, k, 0.5, &x, &y);
	for (size_t i = 0; i < n; i++)
		y_gamma[i] = expf(y[i] * 0.3f);
	gbt_param_init_defaults(&p);
	p.n_rounds = 60;
	p.subsample = 0.8;
	p.max_bin = 64;
	assert_int_equal(gbt_rows_new(x, n_train, k, NULL, 2, p.max_bin, &rows, &err), 0);
	for (int kind = 0; kind < 2; kind++) {
		const float *labels = kind ? y_gamma : y;

		p.objective = kind ? "reg:gamma" : "reg:squarederror";
		a = fit_ok(&p, x, labels, n_train, x + n_train * k, labels + n_train, n - n_train, k,
			   NULL);
		assert_int_equal(gbt_fit_rows(&p, rows, labels, x + n_train * k, labels + n_train,
					      n - n_train, NULL, &b, &err), 0);
		assert_same_model(a, b, x, n, k);
		gbt_free(a), gbt_free(b);
	}
	p.max_bin = 32;
	assert_int_equal(gbt_fit_rows(&p, rows, y_gamma, NULL, NULL, 0, NULL, &c, &err),
			 LTV_EINVAL);
	assert_non_null(strstr(err.msg, "max_bin"));
	gbt_rows_free(rows);
	gbt_rows_free(NULL);
	free(x), free(y), free(y_gamma);
}

static void test_missing_values_accepted(void **state)
{
	struct rng r = { 9 };
	const size_t k = 3, n = 4000;
	float *x, *y;
	float nan_row[3] = { NAN, NAN, NAN };
	double *pred = alloc_d(n), one;
	double *obs_pred = alloc_d(n);
	float *obs_y = alloc_f(n);
	size_t n_obs = 0, n_missing = 0;
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, n, k, 0.1, &x, &y);
	for (size_t i = 0; i < n * k; i++)
		if (rng_unif(&r) < 0.2)
			x[i] = NAN;
	gbt_param_init_defaults(&p);
	p.n_rounds = 150;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_predict(m, x, n, k, pred, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(isfinite(pred[i]));
		if (isnan(x[i * k])) {
			n_missing++;
			continue;
		}
		obs_pred[n_obs] = pred[i];
		obs_y[n_obs++] = y[i];
	}
	assert_true(n_missing > n / 10);
	assert_true(correlation(obs_pred, obs_y, n_obs) > 0.95);
	/* A row with nothing observed still gets a finite prediction near the mean. */
	assert_int_equal(gbt_predict(m, nan_row, 1, k, &one, &err), 0);
	assert_true(one > 0.5 && one < 2.5);

	gbt_free(m);
	free(x), free(y), free(pred), free(obs_pred), free(obs_y);
}

static void test_single_class_labels_do_not_crash(void **state)
{
	struct rng r = { 10 };
	const size_t k = 2, n = 300;
	float *x = make_x(&r, n, k);
	float *y = calloc(n, sizeof(float));
	double *prob = alloc_d(n);
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	(void)state;
	gbt_param_init_defaults(&p);
	p.objective = "binary:logistic";
	p.n_rounds = 50;
	m = fit_ok(&p, x, y, n / 2, x + n / 2 * k, y + n / 2, n / 2, k, NULL);
	assert_int_equal(gbt_predict(m, x, n, k, prob, &err), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(prob[i] >= 0.0 && prob[i] < 0.1);

	gbt_free(m);
	free(x), free(y), free(prob);
}

static void test_bad_input_is_reported(void **state)
{
	struct rng r = { 11 };
	const size_t k = 2, n = 50;
	float *x = make_x(&r, n, k);
	float *y = alloc_f(n);
	double pred[4];
	struct gbt_param p;
	struct gbt_model *m = NULL;
	struct ltv_err err = { 0, "" };

	(void)state;
	for (size_t i = 0; i < n; i++)
		y[i] = 1.0f;
	y[3] = 2.0f;
	gbt_param_init_defaults(&p);
	p.n_rounds = 5;
	p.objective = "binary:logistic";
	assert_int_equal(gbt_fit(&p, x, y, NULL, n, NULL, NULL, 0, k, NULL, &m, &err), LTV_EINVAL);
	assert_null(m);
	assert_string_equal(err.msg, "gbt: training label 3 is 2; labels must be in [0, 1] for binary:logistic");
	y[3] = 0.0f;
	p.objective = "reg:gamma";
	assert_int_equal(gbt_fit(&p, x, y, NULL, n, NULL, NULL, 0, k, NULL, &m, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "label 3 is 0"));
	y[3] = NAN;
	p.objective = "reg:squarederror";
	assert_int_equal(gbt_fit(&p, x, y, NULL, n, NULL, NULL, 0, k, NULL, &m, &err), LTV_EINVAL);
	y[3] = 1.0f;
	p.eta = 0.0;
	assert_int_equal(gbt_fit(&p, x, y, NULL, n, NULL, NULL, 0, k, NULL, &m, &err), LTV_ECONFIG);
	assert_non_null(strstr(err.msg, "eta"));
	p.eta = 0.3;
	/* A metric XGBoost does not know fails inside XGBoost, with its message kept. */
	p.eval_metric = "no-such-metric";
	assert_int_equal(gbt_fit(&p, x, y, NULL, n, x, y, n, k, NULL, &m, &err), LTV_EMODEL);
	assert_non_null(strstr(err.msg, "xgboost: "));
	assert_non_null(strstr(err.msg, "no-such-metric"));
	assert_null(m);
	p.eval_metric = NULL;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_predict(m, x, 2, k + 1, pred, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "fitted on 2"));

	gbt_free(m);
	free(x), free(y);
}

static void test_param_check(void **state)
{
	struct gbt_param p;

	(void)state;
	gbt_param_init_defaults(&p);
	assert_null(gbt_param_check(&p));
	p.objective = "reg:linear";
	assert_non_null(gbt_param_check(&p));
	p.objective = "reg:tweedie";
	assert_null(gbt_param_check(&p));
	p.tweedie_variance_power = 2.0;
	assert_non_null(gbt_param_check(&p));
	gbt_param_init_defaults(&p);
	p.n_threads = 0;
	assert_non_null(strstr(gbt_param_check(&p), "n_threads"));
	gbt_param_init_defaults(&p);
	p.subsample = NAN;
	assert_non_null(strstr(gbt_param_check(&p), "subsample"));
	gbt_param_init_defaults(&p);
	p.max_depth = 0;
	assert_non_null(strstr(gbt_param_check(&p), "max_depth"));
	gbt_param_init_defaults(&p);
	p.eval_metric = "rmse\", \"x";
	assert_non_null(strstr(gbt_param_check(&p), "eval_metric"));
}

/* Chunk boundaries are invisible: big batch == the same rows predicted alone. */
static void test_chunked_predict_matches_small_batches(void **state)
{
	struct rng r = { 12 };
	const size_t k = 3, nt = 2000, n = GBT_PREDICT_CHUNK_ROWS + 1000;
	const size_t from = GBT_PREDICT_CHUNK_ROWS - 300, span = 600;
	float *xt, *yt, *x;
	double *big = alloc_d(n), *small = alloc_d(span), one;
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, nt, k, 0.3, &xt, &yt);
	x = make_x(&r, n, k);
	gbt_param_init_defaults(&p);
	p.n_rounds = 30;
	p.n_threads = 2;
	m = fit_ok(&p, xt, yt, nt, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_predict(m, x, n, k, big, &err), 0);
	assert_int_equal(gbt_predict(m, x + from * k, span, k, small, &err), 0);
	assert_memory_equal(big + from, small, span * sizeof(double));
	assert_int_equal(gbt_predict(m, x + (n - 1) * k, 1, k, &one, &err), 0);
	assert_memory_equal(&big[n - 1], &one, sizeof(double));
	assert_int_equal(gbt_predict(m, x, 0, k, NULL, &err), 0);

	gbt_free(m);
	free(xt), free(yt), free(x), free(big), free(small);
}

struct predict_job {
	const struct gbt_model *m;
	const float *x;
	size_t n, k;
	const double *expect;
	int mismatches;
};

static void *predict_worker(void *arg)
{
	struct predict_job *job = arg;
	double *out = malloc(job->n * sizeof(double));
	struct ltv_err err = { 0, "" };

	for (int rep = 0; rep < 8 && out; rep++)
		if (gbt_predict(job->m, job->x, job->n, job->k, out, &err) != 0 ||
		    memcmp(out, job->expect, job->n * sizeof(double)) != 0)
			job->mismatches++;
	free(out);
	return NULL;
}

/* Two models, four threads (two per model), predicting at once. */
static void test_concurrent_predicts(void **state)
{
	struct rng r = { 13 };
	const size_t k = 4, n = 20000;
	float *x, *y, *yb = alloc_f(n);
	double *e_reg = alloc_d(n), *e_bin = alloc_d(n);
	struct gbt_param p;
	struct gbt_model *reg, *bin;
	struct predict_job jobs[4];
	pthread_t th[4];
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, n, k, 0.3, &x, &y);
	for (size_t i = 0; i < n; i++)
		yb[i] = y[i] > 1.5f ? 1.0f : 0.0f;
	gbt_param_init_defaults(&p);
	p.n_rounds = 40;
	p.n_threads = 2;
	reg = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	p.objective = "binary:logistic";
	bin = fit_ok(&p, x, yb, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_predict(reg, x, n, k, e_reg, &err), 0);
	assert_int_equal(gbt_predict(bin, x, n, k, e_bin, &err), 0);
	for (int t = 0; t < 4; t++) {
		jobs[t] = (struct predict_job){ t % 2 ? bin : reg, x, n, k, t % 2 ? e_bin : e_reg, 0 };
		assert_int_equal(pthread_create(&th[t], NULL, predict_worker, &jobs[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(jobs[t].mismatches, 0);
	}

	gbt_free(reg), gbt_free(bin);
	free(x), free(y), free(yb), free(e_reg), free(e_bin);
}

static void test_feature_importance(void **state)
{
	struct rng r = { 14 };
	const size_t k = 4, n = 3000;
	const char *const names[] = { "signal", "noise_a", "noise_b", "constant" };
	float *x, *y;
	double gain[4], gain_named[4];
	struct gbt_param p;
	struct gbt_model *m, *named;
	struct ltv_err err = { 0, "" };

	(void)state;
	make_linear(&r, n, k, 0.1, &x, &y);
	for (size_t i = 0; i < n; i++)
		x[i * k + 3] = 1.0f;
	gbt_param_init_defaults(&p);
	p.n_rounds = 50;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	named = fit_ok(&p, x, y, n, NULL, NULL, 0, k, names);
	assert_int_equal(gbt_feature_importance(m, gain, &err), 0);
	assert_int_equal(gbt_feature_importance(named, gain_named, &err), 0);
	assert_true(gain[0] > 10.0 * (gain[1] + gain[2]));
	assert_true(gain[1] >= 0.0 && gain[2] >= 0.0);
	assert_true(gain[3] == 0.0);
	/* Names change nothing but the labels. */
	assert_memory_equal(gain, gain_named, sizeof(gain));

	gbt_free(m), gbt_free(named);
	free(x), free(y);
}

/*
 * TreeSHAP contributions plus the bias give the margin, row by row, for a
 * regressor and a classifier (log-odds), NaN features included; a feature no
 * tree uses contributes nothing, and the signal dominates the noise.
 */
static void check_contribs(const char *objective, uint64_t seed)
{
	struct rng r = { seed };
	const size_t k = 4, n = 400;
	float *x, *y;
	double *margin = alloc_d(n), *contrib = alloc_d(n * (k + 1));
	double signal = 0, noise = 0;
	struct gbt_param p;
	struct gbt_model *m;
	struct ltv_err err = { 0, "" };

	make_linear(&r, n, k, 0.1, &x, &y);
	for (size_t i = 0; i < n; i++) {
		x[i * k + 3] = 1.0f;
		if (i % 7 == 0)
			x[i * k + 1] = NAN;
		if (strcmp(objective, "binary:logistic") == 0)
			y[i] = y[i] > 0 ? 1.0f : 0.0f;
	}
	gbt_param_init_defaults(&p);
	p.objective = objective;
	p.n_rounds = 30;
	m = fit_ok(&p, x, y, n, NULL, NULL, 0, k, NULL);
	assert_int_equal(gbt_predict_margin(m, x, n, k, margin, &err), 0);
	assert_int_equal(gbt_predict_contribs(m, x, n, k, contrib, &err), 0);
	for (size_t i = 0; i < n; i++) {
		double sum = 0;

		for (size_t j = 0; j <= k; j++)
			sum += contrib[i * (k + 1) + j];
		assert_true(fabs(sum - margin[i]) <= 1e-4 * (1 + fabs(margin[i])));
		assert_true(contrib[i * (k + 1) + 3] == 0.0);
		signal += fabs(contrib[i * (k + 1)]);
		noise += fabs(contrib[i * (k + 1) + 2]);
	}
	assert_true(signal > 5 * noise);
	/* A wrong row width is refused, not read past. */
	assert_int_equal(gbt_predict_contribs(m, x, n, k - 1, contrib, &err), LTV_EINVAL);
	gbt_free(m);
	free(x), free(y), free(margin), free(contrib);
}

static void test_contributions_sum_to_margin(void **state)
{
	(void)state;
	check_contribs("reg:squarederror", 21);
	check_contribs("binary:logistic", 22);
}

/*
 * Training weights reach XGBoost (the training matrix is built through a data
 * iterator, which sets them itself): rows of weight 2 fit as those rows
 * written twice, and zero weights on half the rows change the fit. Features
 * take 16 values, fewer than the bins, so both matrices get the same cuts.
 */
static void test_weights_count_as_repeated_rows(void **state)
{
	struct rng r = { 11 };
	const size_t k = 3, n = 600, nv = 200;
	float *x = alloc_f(n * k), *y = alloc_f(n), *w = alloc_f(n), *w0 = alloc_f(n);
	float *xd = alloc_f(2 * n * k), *yd = alloc_f(2 * n), *xv = alloc_f(nv * k);
	double *pw = alloc_d(nv), *pd = alloc_d(nv), *p0 = alloc_d(nv);
	struct gbt_model *mw = NULL, *md = NULL, *m0 = NULL;
	struct ltv_err err = { 0, "" };
	struct gbt_param p;
	size_t nd = 0;
	double max_diff = 0, zero_diff = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < k; j++)
			x[i * k + j] = (float)(rng_next(&r) % 16) / 16.0f;
		y[i] = (float)(3.0 * x[i * k] + x[i * k + 1] + 0.1 * rng_normal(&r));
		w[i] = i % 3 == 0 ? 2.0f : 1.0f;
		w0[i] = x[i * k] < 0.5f ? 1.0f : 0.0f;
		for (int c = 0; c < (int)w[i]; c++, nd++) {
			memcpy(xd + nd * k, x + i * k, k * sizeof(float));
			yd[nd] = y[i];
		}
	}
	for (size_t i = 0; i < nv * k; i++)
		xv[i] = (float)(rng_next(&r) % 16) / 16.0f;
	gbt_param_init_defaults(&p);
	p.n_rounds = 20;
	p.n_threads = 1;
	assert_int_equal(gbt_fit(&p, x, y, w, n, NULL, NULL, 0, k, NULL, &mw, &err), 0);
	assert_int_equal(gbt_fit(&p, xd, yd, NULL, nd, NULL, NULL, 0, k, NULL, &md, &err), 0);
	assert_int_equal(gbt_fit(&p, x, y, w0, n, NULL, NULL, 0, k, NULL, &m0, &err), 0);
	assert_int_equal(gbt_predict(mw, xv, nv, k, pw, &err), 0);
	assert_int_equal(gbt_predict(md, xv, nv, k, pd, &err), 0);
	assert_int_equal(gbt_predict(m0, xv, nv, k, p0, &err), 0);
	for (size_t i = 0; i < nv; i++) {
		max_diff = fmax(max_diff, fabs(pw[i] - pd[i]));
		zero_diff = fmax(zero_diff, fabs(pw[i] - p0[i]));
	}
	assert_true(max_diff < 1e-4);
	/* Rows with x0 >= 0.5 weighed nothing: their region is fitted from the others. */
	assert_true(zero_diff > 0.5);
	gbt_free(mw), gbt_free(md), gbt_free(m0);
	free(x), free(y), free(w), free(w0), free(xd), free(yd), free(xv);
	free(pw), free(pd), free(p0);
}

static void test_version_string(void **state)
{
	int major, minor, patch;
	char expect[32];

	(void)state;
	XGBoostVersion(&major, &minor, &patch);
	snprintf(expect, sizeof(expect), "%d.%d.%d", major, minor, patch);
	assert_string_equal(gbt_version_string(), expect);
	assert_true(major >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regression_recovers_linear_signal),
		cmocka_unit_test(test_logistic_separates_classes),
		cmocka_unit_test(test_early_stopping_keeps_best_round),
		cmocka_unit_test(test_save_load_bit_identical),
		cmocka_unit_test(test_save_json_loads_in_xgboost),
		cmocka_unit_test(test_load_rejects_corrupt_blobs),
		cmocka_unit_test(test_gamma_predicts_positive_means),
		cmocka_unit_test(test_tweedie_predicts_positive_means),
		cmocka_unit_test(test_thread_count_does_not_change_predictions),
		cmocka_unit_test(test_thread_count_does_not_change_best_score),
		cmocka_unit_test(test_binned_rows_fit_like_gbt_fit),
		cmocka_unit_test(test_missing_values_accepted),
		cmocka_unit_test(test_single_class_labels_do_not_crash),
		cmocka_unit_test(test_bad_input_is_reported),
		cmocka_unit_test(test_param_check),
		cmocka_unit_test(test_chunked_predict_matches_small_batches),
		cmocka_unit_test(test_concurrent_predicts),
		cmocka_unit_test(test_feature_importance),
		cmocka_unit_test(test_contributions_sum_to_margin),
		cmocka_unit_test(test_weights_count_as_repeated_rows),
		cmocka_unit_test(test_version_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
