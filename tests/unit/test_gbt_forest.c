/*
 * Unit tests for the native tree evaluator (src/models/gbt_forest.c) as
 * gbt.c uses it: models of every objective, trained on data with missing
 * values (so splits default both ways), predict natively, and every
 * prediction, margin and transformed, equals XGBoost's to the bit, before
 * and after save/load and with any thread count; model bodies the evaluator
 * does not read are refused with a reason (then XGBoost predicts); the
 * bound on every margin (gbt_margin_bound) holds.
 */
#include "testutil.h"

#include "ltv/gbt.h"
#include "ltv/gbt_forest.h"

#define N_FEATURES 6

static uint64_t rng_state = 0x6a09e667f3bcc908ULL;

static double unif(void)
{
	return test_unif(&rng_state);
}

/* Rows with 15% missing values, a few integers (ties with split conditions) and wide ranges. */
static float *make_rows(size_t n)
{
	return test_random_rows(&rng_state, n, N_FEATURES, 0.15, 0.15);
}

/* A label for objective from a row: positive, in [0, 1] for logistic, with missing values mattering. */
static float label_of(const char *objective, const float *row)
{
	double s = (isnan(row[0]) ? 3 : row[0]) + 0.5 * (isnan(row[1]) ? -2 : row[1]) +
		   (row[2] > 4 ? 2 : 0) + unif();

	if (strcmp(objective, "binary:logistic") == 0)
		return s > 4 ? 1.0f : 0.0f;
	if (strcmp(objective, "reg:squarederror") == 0)
		return (float)s;
	return (float)(exp(s / 10) + (strcmp(objective, "reg:tweedie") == 0 && unif() < 0.3 ? -1 : 0.1));
}

static struct gbt_model *train_deep(const char *objective, int n_threads, int max_depth)
{
	const size_t n = 800, nv = 200;
	float *x = make_rows(n + nv), *y = malloc((n + nv) * sizeof(float));
	struct gbt_param p;
	struct gbt_model *m = NULL;
	struct ltv_err err = { 0 };

	assert_non_null(y);
	for (size_t i = 0; i < n + nv; i++) {
		y[i] = label_of(objective, x + i * N_FEATURES);
		if (y[i] < 0)
			y[i] = 0;
	}
	gbt_param_init_defaults(&p);
	p.objective = objective;
	p.n_rounds = 40;
	p.max_depth = max_depth;
	if (max_depth > 5)
		p.min_child_weight = 0; /* so the trees reach the depth asked */
	p.n_threads = n_threads;
	if (gbt_fit(&p, x, y, NULL, n, x + n * N_FEATURES, y + n, nv, N_FEATURES, NULL, &m, &err) < 0)
		fail_msg("gbt_fit %s: %s", objective, err.msg);
	free(x);
	free(y);
	return m;
}

static struct gbt_model *train(const char *objective, int n_threads)
{
	return train_deep(objective, n_threads, 5);
}

/* Native predictions (margin and transformed) equal XGBoost's, bit for bit, on n fresh rows. */
static void expect_same_as_xgboost(const struct gbt_model *m, size_t n)
{
	float *x = make_rows(n);
	double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
	struct ltv_err err = { 0 };

	assert_non_null(a);
	assert_non_null(b);
	assert_true(gbt_native(m));
	for (int margin = 0; margin < 2; margin++) {
		assert_int_equal(margin ? gbt_predict_margin(m, x, n, N_FEATURES, a, &err)
					: gbt_predict(m, x, n, N_FEATURES, a, &err), 0);
		assert_int_equal(gbt_predict_xgboost(m, x, n, N_FEATURES, margin, b, &err), 0);
		for (size_t i = 0; i < n; i++)
			if (memcmp(&a[i], &b[i], sizeof(double)) != 0)
				fail_msg("%s row %zu (margin %d): native %a, xgboost %a", gbt_objective(m), i,
					 margin, a[i], b[i]);
	}
	free(x);
	free(a);
	free(b);
}

static void test_every_objective_matches_xgboost(void **state)
{
	static const char *const objectives[] = { "binary:logistic", "reg:squarederror", "reg:gamma",
						  "reg:tweedie" };

	(void)state;
	for (size_t k = 0; k < sizeof(objectives) / sizeof(objectives[0]); k++) {
		struct gbt_model *m = train(objectives[k], 1), *back = NULL;
		struct ltv_err err = { 0 };
		uint8_t *buf = NULL;
		size_t len = 0;

		expect_same_as_xgboost(m, 20000);
		/* Reloaded from its saved body, as score and serve load it. */
		assert_int_equal(gbt_save(m, &buf, &len, &err), 0);
		assert_int_equal(gbt_load(buf, len, 1, &back, &err), 0);
		expect_same_as_xgboost(back, 5000);
		gbt_free(back);
		free(buf);
		gbt_free(m);
	}
}

/* Large inputs are split over threads; the result does not change by a bit. */
static void test_threads_do_not_change_bits(void **state)
{
	struct gbt_model *m1 = train("reg:gamma", 1);
	struct gbt_model *m2 = NULL;
	struct ltv_err err = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0, n = 20000;
	float *x = make_rows(n);
	double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));

	(void)state;
	assert_int_equal(gbt_save(m1, &buf, &len, &err), 0);
	assert_int_equal(gbt_load(buf, len, 2, &m2, &err), 0);
	assert_int_equal(gbt_predict(m1, x, n, N_FEATURES, a, &err), 0);
	assert_int_equal(gbt_predict(m2, x, n, N_FEATURES, b, &err), 0);
	assert_memory_equal(a, b, n * sizeof(double));
	expect_same_as_xgboost(m2, n);
	free(x);
	free(a);
	free(b);
	free(buf);
	gbt_free(m1);
	gbt_free(m2);
}

/*
 * n rows at the forest's edges: each value is NaN, an infinity, a split
 * condition of its feature, the float just below or above one, or a plain
 * value, so every comparison meets ties, both defaults and infinities.
 */
static float *edge_rows(const struct gbt_forest *f, size_t n)
{
	float *x = malloc(n * N_FEATURES * sizeof(float));

	assert_non_null(x);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < N_FEATURES; j++) {
			size_t n_cut = 0;
			const float *cut = gbt_forest_thresholds(f, j, &n_cut);
			const int kind = (int)(unif() * 7);
			const float c = n_cut ? cut[(size_t)(unif() * (double)n_cut)] : (float)(unif() * 10);

			x[i * N_FEATURES + j] = kind == 0 ? NAN : kind == 1 ? INFINITY : kind == 2 ? -INFINITY
					      : kind == 3 ? c : kind == 4 ? nextafterf(c, -INFINITY)
					      : kind == 5 ? nextafterf(c, INFINITY) : (float)(unif() * 20 - 5);
		}
	return x;
}

/*
 * a[n] equals b[n] to the bit, else the test fails naming the row, the
 * walk, margin or transformed and the threads.
 */
static void expect_bits(const struct gbt_model *m, const double *a, const double *b, size_t n,
			int walk, int margin, int threads)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(double)) != 0)
			fail_msg("%s row %zu (walk %d, margin %d, %d threads): native %a, xgboost %a",
				 gbt_objective(m), i, walk, margin, threads, a[i], b[i]);
}

/*
 * Whether this CPU runs the leaf-mask walk (src/models/gbt_leaf_masks.c:
 * AVX-512 F and CD), so that a forest of trees up to 6 deep must take it.
 */
static int cpu_has_leaf_masks(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd");
#else
	return 0;
#endif
}

/*
 * The forest read from m's JSON body predicts edge rows, margins and
 * transformed, on one thread and on two, through every walk it can take,
 * as XGBoost does to the bit; and in calls of 1 to 40 rows, so that the
 * leaf masks' part-filled blocks and the rows left to the complete layout
 * are met. want_complete says which walk its depth makes it take: 1 the
 * complete layout (or the leaf masks, up to 6 deep on a CPU that has them),
 * 0 the node array, -1 either.
 */
static void expect_edges_same_as_xgboost(const struct gbt_model *m, int want_complete)
{
	const size_t n = 10000;
	struct gbt_forest *f = NULL;
	struct ltv_err err = { 0 };
	char *json = NULL;
	size_t len = 0;
	float *x;
	double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(gbt_save_json(m, &json, &len, &err), 0);
	assert_int_equal(gbt_forest_from_json(json, len, N_FEATURES, &f, &err), 0);
	if (want_complete >= 0 &&
	    (gbt_forest_max_depth(f) <= GBT_FOREST_COMPLETE_MAX_DEPTH) != want_complete)
		fail_msg("%s: trees %d deep", gbt_objective(m), gbt_forest_max_depth(f));
	assert_int_equal(gbt_forest_walk(f),
			 gbt_forest_max_depth(f) <= 6 && cpu_has_leaf_masks() ? GBT_FOREST_WALK_LEAF_MASKS
			 : gbt_forest_max_depth(f) <= GBT_FOREST_COMPLETE_MAX_DEPTH ? GBT_FOREST_WALK_COMPLETE
			 : GBT_FOREST_WALK_NODES);
	x = edge_rows(f, n);
	for (int walk = GBT_FOREST_WALK_LEAF_MASKS; walk >= GBT_FOREST_WALK_NODES; walk--) {
		if (gbt_forest_use_walk(f, (enum gbt_forest_walk)walk) < 0)
			continue;
		for (int margin = 0; margin < 2; margin++) {
			assert_int_equal(gbt_predict_xgboost(m, x, n, N_FEATURES, margin, b, &err), 0);
			for (int threads = 1; threads <= 2; threads++) {
				gbt_forest_predict(f, x, n, margin, threads, a);
				expect_bits(m, a, b, n, walk, margin, threads);
			}
			for (size_t i = 0, c = 1; i + c <= 400; i += c, c = c % 40 + 1)
				gbt_forest_predict(f, x + i * N_FEATURES, c, margin, 1, a + i);
			expect_bits(m, a, b, 400, walk, margin, 1);
		}
	}
	gbt_forest_free(f);
	free(json);
	free(x);
	free(a);
	free(b);
}

/* Ties, infinities and NaN both ways, through every walk alike: leaf masks, complete layout, nodes. */
static void test_edges_match_xgboost(void **state)
{
	static const char *const objectives[] = { "binary:logistic", "reg:squarederror" };

	(void)state;
	for (size_t k = 0; k < sizeof(objectives) / sizeof(objectives[0]); k++) {
		struct gbt_model *shallow = train(objectives[k], 1);
		struct gbt_model *six = train_deep(objectives[k], 1, 6);
		struct gbt_model *deep = train_deep(objectives[k], 1, GBT_FOREST_COMPLETE_MAX_DEPTH + 4);

		expect_edges_same_as_xgboost(shallow, 1);
		/* the deepest the leaf masks take: two words a row */
		expect_edges_same_as_xgboost(six, 1);
		/* Squared error grows every tree the depth asked; logistic stops near 10. */
		expect_edges_same_as_xgboost(deep, k == 1 ? 0 : -1);
		gbt_free(shallow);
		gbt_free(six);
		gbt_free(deep);
	}
}

static int forest_of(const char *json, struct ltv_err *err)
{
	struct gbt_forest *f = NULL;
	int ret = gbt_forest_from_json(json, strlen(json), 2, &f, err);

	gbt_forest_free(f);
	return ret;
}

/* A one-tree model body; %s are the tree's split_type array and tree_info. */
#define BODY_HEAD "{\"learner\":{\"gradient_booster\":{\"model\":{\"gbtree_model_param\":" \
	"{\"num_parallel_tree\":\"1\",\"num_trees\":\"1\"},\"tree_info\":[%s],\"trees\":[{" \
	"\"default_left\":[1,0,0],\"left_children\":[%s],\"right_children\":[2,-1,-1]," \
	"\"split_conditions\":[5E-1,-1E0,2.5E0],\"split_indices\":[1,0,0],\"split_type\":[%s]}]}," \
	"\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"5E-1\",\"num_class\":\"0\"," \
	"\"num_target\":\"1\"},\"objective\":{\"name\":\"%s\"}}}"

static void test_bodies_it_does_not_read(void **state)
{
	struct ltv_err err = { 0 };
	char body[2048];
	struct gbt_forest *f = NULL;
	double out[3];
	const float rows[6] = { 0, 0.25f, 0, 0.75f, 0, NAN };

	(void)state;
	snprintf(body, sizeof(body), BODY_HEAD, "0", "1,-1,-1", "0,0,0", "reg:squarederror");
	assert_int_equal(gbt_forest_from_json(body, strlen(body), 2, &f, &err), 0);
	/* base 0.5 + leaf: feature 1 below 0.5 goes left (-1), else right (2.5); NaN defaults left. */
	gbt_forest_predict(f, rows, 3, 0, 1, out);
	assert_true(out[0] == 0.5 - 1 && out[1] == 0.5 + 2.5 && out[2] == 0.5 - 1);
	assert_int_equal(gbt_forest_n_trees(f), 1);
	gbt_forest_free(f);

	assert_int_equal(forest_of("not json", &err), LTV_EINVAL);
	snprintf(body, sizeof(body), BODY_HEAD, "0", "1,-1,-1", "0,1,0", "reg:squarederror");
	assert_int_equal(forest_of(body, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "categorical"));
	snprintf(body, sizeof(body), BODY_HEAD, "1", "1,-1,-1", "0,0,0", "reg:squarederror");
	assert_int_equal(forest_of(body, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "output group"));
	snprintf(body, sizeof(body), BODY_HEAD, "0", "1,-1,-1", "0,0,0", "multi:softprob");
	assert_int_equal(forest_of(body, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "multi:softprob"));
	/* A node that points back at the root is not a tree: a walk would never end. */
	snprintf(body, sizeof(body), BODY_HEAD, "0", "0,-1,-1", "0,0,0", "reg:squarederror");
	assert_int_equal(forest_of(body, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "not a tree"));
}

/*
 * gbt_margin_bound bounds every margin: on trained forests of the tree
 * objectives (fresh and edge rows), and exactly on a one-tree body (base 0.5,
 * leaves -1 and 2.5: 3 up to the rounding allowance).
 */
static void test_margin_bound(void **state)
{
	static const char *const objectives[] = { "binary:logistic", "reg:gamma" };
	const size_t n = 20000;
	struct ltv_err err = { 0 };
	struct gbt_forest *f = NULL;
	char body[2048];
	double *margin = malloc(n * sizeof(double));

	(void)state;
	assert_non_null(margin);
	for (size_t k = 0; k < sizeof(objectives) / sizeof(objectives[0]); k++) {
		struct gbt_model *m = train(objectives[k], 1);
		const double bound = gbt_margin_bound(m);
		float *x = make_rows(n);
		double most = 0;

		assert_true(isfinite(bound) && bound > 0);
		assert_int_equal(gbt_predict_margin(m, x, n, N_FEATURES, margin, &err), 0);
		for (size_t i = 0; i < n; i++)
			most = fmax(most, fabs(margin[i]));
		assert_true(most <= bound);
		free(x);
		gbt_free(m);
	}
	snprintf(body, sizeof(body), BODY_HEAD, "0", "1,-1,-1", "0,0,0", "reg:squarederror");
	assert_int_equal(gbt_forest_from_json(body, strlen(body), 2, &f, &err), 0);
	assert_true(gbt_forest_margin_bound(f) >= 3 && gbt_forest_margin_bound(f) < 3.0001);
	gbt_forest_free(f);
	free(margin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_objective_matches_xgboost),
		cmocka_unit_test(test_threads_do_not_change_bits),
		cmocka_unit_test(test_edges_match_xgboost),
		cmocka_unit_test(test_bodies_it_does_not_read),
		cmocka_unit_test(test_margin_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
