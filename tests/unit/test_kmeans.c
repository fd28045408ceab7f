/*
 * Known-answer tests for k-means: separable blobs, bit-identical fits across
 * thread counts, empty clusters, the blob round-trip and the scaler maths.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/kmeans.h"

/* n_per rows around each of n_centres centres (row-major, d dims), sd 0.5; truth[i] = blob. */
static double *make_blobs(const double *centres, size_t n_centres, size_t d, size_t n_per,
			  uint64_t seed, int *truth)
{
	double *x = malloc(n_centres * n_per * d * sizeof(double));
	uint64_t s = seed;

	for (size_t i = 0; i < n_centres * n_per; i++) {
		const size_t c = i % n_centres;
		for (size_t j = 0; j < d; j++)
			x[i * d + j] = centres[c * d + j] + 0.5 * test_gauss(&s);
		if (truth)
			truth[i] = (int)c;
	}
	return x;
}

static void test_scaler_maths(void **state)
{
	/* Column 0: 1, 3, 5 -> mean 3, population std sqrt(8/3); column 1 constant -> std 1. */
	const double x[] = { 1, 10, 3, 10, 5, 10 };
	double z[6], back[6];
	struct scaler s;
	struct ltv_err err;

	(void)state;
	assert_int_equal(scaler_fit(&s, x, 3, 2, &err), 0);
	assert_double_near(s.mean[0], 3.0, 1e-15);
	assert_double_near(s.mean[1], 10.0, 1e-15);
	assert_double_near(s.std[0], sqrt(8.0 / 3.0), 1e-15);
	assert_true(s.std[1] == 1.0);
	scaler_transform(&s, x, 3, z);
	/* (1 - 3) / 1.632993161855452 = -1.224744871391589 */
	assert_double_near(z[0], -1.224744871391589, 1e-14);
	assert_double_near(z[2], 0.0, 1e-15);
	assert_double_near(z[4], 1.224744871391589, 1e-14);
	assert_double_near(z[1], 0.0, 1e-15);
	scaler_inverse(&s, z, 3, back);
	for (int i = 0; i < 6; i++)
		assert_double_near(back[i], x[i], 1e-13);
	scaler_release(&s);
	assert_null(s.mean);

	const double bad[] = { 1, NAN };
	assert_int_equal(scaler_fit(&s, bad, 1, 2, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "feature 1"));
	assert_null(s.mean);
}

static void test_blobs_recovered(void **state)
{
	const double centres[] = { 0, 0, 6, 6, -6, 6 };
	const size_t n = 900;
	int truth[900], labels[900], pred[3];
	double cent[6];
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 3, 2, 300, 7, truth);
	int map[3] = { -1, -1, -1 };

	(void)state;
	kmeans_param_init(&p);
	p.k = 3;
	assert_null(kmeans_param_check(&p));
	assert_int_equal(kmeans_fit(&p, x, n, 2, &m, labels, &err), 0);
	assert_int_equal(m->k, 3);
	kmeans_centroids_unscaled(m, cent);
	/* Each true centre has exactly one fitted centroid within 0.1. */
	for (int c = 0; c < 3; c++) {
		int hits = 0;
		for (int j = 0; j < 3; j++)
			if (hypot(cent[j * 2] - centres[c * 2], cent[j * 2 + 1] - centres[c * 2 + 1]) < 0.1) {
				hits++;
				map[c] = j;
			}
		assert_int_equal(hits, 1);
	}
	assert_int_not_equal(map[0], map[1]);
	assert_int_not_equal(map[0], map[2]);
	assert_int_not_equal(map[1], map[2]);
	/* Every row carries its own blob's cluster. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(labels[i], map[truth[i]]);
	/* Predicting the true centres lands in the same clusters. */
	assert_int_equal(kmeans_predict(m, centres, 3, 1, pred, NULL, &err), 0);
	for (int c = 0; c < 3; c++)
		assert_int_equal(pred[c], map[c]);
	/* Inertia is the sum of squared standardised distances, as predict reports them. */
	double d2[900], sum = 0.0;
	int again[900];
	assert_int_equal(kmeans_predict(m, x, n, 2, again, d2, &err), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(again[i], labels[i]);
		sum += d2[i];
	}
	assert_double_near(sum, m->inertia, 1e-9 * m->inertia);
	kmeans_free(m);
	free(x);
}

static void test_threads_bit_identical(void **state)
{
	/* Enough rows for several blocks, so the per-block merge order is exercised. */
	const double centres[] = { 0, 0, 0, 4, 0, 1, 0, 4, 2, 3, 3, 3 };
	const size_t n = 4 * 6000;
	int *l1 = malloc(n * sizeof(int)), *l2 = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m1 = NULL, *m2 = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 4, 3, 6000, 99, NULL);

	(void)state;
	kmeans_param_init(&p);
	p.k = 6; /* more clusters than blobs: Lloyd has real work to do */
	p.tol = 0.0;
	p.max_iter = 30;
	p.n_threads = 1;
	assert_int_equal(kmeans_fit(&p, x, n, 3, &m1, l1, &err), 0);
	p.n_threads = 2;
	assert_int_equal(kmeans_fit(&p, x, n, 3, &m2, l2, &err), 0);
	assert_true(m1->n_iter > 1);
	assert_int_equal(m1->n_iter, m2->n_iter);
	assert_memory_equal(m1->centroids, m2->centroids, 6 * 3 * sizeof(double));
	assert_memory_equal(&m1->inertia, &m2->inertia, sizeof(double));
	assert_memory_equal(l1, l2, n * sizeof(int));
	kmeans_free(m1);
	kmeans_free(m2);
	free(x);
	free(l1);
	free(l2);
}

/* Fits x with prune 0 and 1 (threads 1 and 2) and checks every result is the same, to the bit. */
static void check_prune_same(const double *x, size_t n, size_t d, size_t k, uint64_t seed)
{
	int *l0 = malloc(n * sizeof(int)), *l1 = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m0 = NULL, *m1 = NULL;
	struct ltv_err err;

	kmeans_param_init(&p);
	p.k = k;
	p.seed = seed;
	p.tol = 0.0;
	p.max_iter = 40;
	p.prune = 0;
	assert_int_equal(kmeans_fit(&p, x, n, d, &m0, l0, &err), 0);
	p.prune = 1;
	p.n_threads = 2;
	assert_int_equal(kmeans_fit(&p, x, n, d, &m1, l1, &err), 0);
	assert_true(m0->n_iter > 2);
	assert_int_equal(m0->n_iter, m1->n_iter);
	assert_memory_equal(m0->centroids, m1->centroids, k * d * sizeof(double));
	assert_memory_equal(&m0->inertia, &m1->inertia, sizeof(double));
	assert_memory_equal(l0, l1, n * sizeof(int));
	kmeans_free(m0);
	kmeans_free(m1);
	free(l0);
	free(l1);
}

/*
 * Pruning (Hamerly's bounds) skips searches but not results: the same
 * centroids, inertia, iterations and labels as searching every row every
 * pass, on overlapping blobs (rows near two centroids) and on a small
 * integer grid repeated (rows equally near two centroids, rows on
 * centroids), k not a multiple of the centroids searched at once.
 */
static void test_prune_is_no_prune(void **state)
{
	const double centres[] = { 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1 };
	const size_t n_grid = 16 * 400;
	double *blobs = make_blobs(centres, 4, 3, 3001, 3, NULL);
	double *grid = malloc(n_grid * 2 * sizeof(double));

	(void)state;
	check_prune_same(blobs, 4 * 3001, 3, 13, 42);
	check_prune_same(blobs, 4 * 3001, 3, 5, 7);
	for (size_t i = 0; i < n_grid; i++) {
		grid[2 * i] = (double)(i % 4);
		grid[2 * i + 1] = (double)(i / 4 % 4);
	}
	check_prune_same(grid, n_grid, 2, 7, 42);
	check_prune_same(grid, n_grid, 2, 11, 5);
	free(blobs);
	free(grid);
}

/*
 * The reference centroids of one update from labels: each block's sums in
 * row order from 0, the blocks' added in block order, over the counts.
 */
static void block_ordered_means(const double *x, const int *label, size_t n, size_t d, size_t k,
				size_t block, double *out)
{
	double *sums = calloc(k * d, sizeof(double)), *blk = malloc(k * d * sizeof(double));
	size_t *counts = calloc(k, sizeof(size_t));

	for (size_t r0 = 0; r0 < n; r0 += block) {
		for (size_t t = 0; t < k * d; t++)
			blk[t] = 0.0;
		for (size_t i = r0; i < n && i < r0 + block; i++) {
			for (size_t t = 0; t < d; t++)
				blk[(size_t)label[i] * d + t] += x[i * d + t];
			counts[label[i]]++;
		}
		for (size_t t = 0; t < k * d; t++)
			sums[t] += blk[t];
	}
	for (size_t t = 0; t < k * d; t++)
		out[t] = sums[t] / (double)counts[t / d];
	free(sums);
	free(blk);
	free(counts);
}

/*
 * The centroids are the means of each block's sums taken row by row, the
 * blocks' added in order, to the bit: whatever path adds a block's rows
 * (a whole group of 8 features and the rest one by one; rows of one
 * cluster in a run, or alternating) and whether a pass whose labels did
 * not change reuses the last pass's sums. Four blobs far apart, started on
 * their centres, so the labels are the blobs' from the first pass on;
 * values with noise, so another order of additions would round otherwise.
 */
static void check_block_ordered(size_t d, size_t max_iter, int n_threads)
{
	const size_t k = 4, n = 3 * 4096 + 777;
	double *x = malloc(n * d * sizeof(double)), *centres = malloc(k * d * sizeof(double));
	double *want = malloc(k * d * sizeof(double));
	int *truth = malloc(n * sizeof(int)), *label = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	uint64_t seed = 11;

	for (size_t c = 0; c < k; c++)
		for (size_t t = 0; t < d; t++)
			centres[c * d + t] = 100.0 * (double)c + 0.1 * (double)t;
	for (size_t i = 0; i < n; i++) {
		/* runs of one cluster (rows 1000-2999 and the second block's first half), else alternating */
		truth[i] = i >= 1000 && i < 3000 ? 2 : i >= 4096 && i < 6144 ? 1 : (int)(i % k);
		for (size_t t = 0; t < d; t++)
			x[i * d + t] = centres[(size_t)truth[i] * d + t] + test_gauss(&seed);
	}
	kmeans_param_init(&p);
	p.k = k;
	p.standardize = 0;
	p.init_centroids = centres;
	p.tol = 0.0;
	p.max_iter = max_iter;
	p.n_threads = n_threads;
	assert_int_equal(kmeans_fit(&p, x, n, d, &m, label, &err), 0);
	assert_memory_equal(label, truth, n * sizeof(int));
	assert_int_equal(kmeans_block_rows(m), 4096);
	block_ordered_means(x, truth, n, d, k, kmeans_block_rows(m), want);
	assert_memory_equal(m->centroids, want, k * d * sizeof(double));
	kmeans_free(m);
	free(x);
	free(centres);
	free(want);
	free(truth);
	free(label);
}

static void test_centroids_are_block_ordered_sums(void **state)
{
	(void)state;
	check_block_ordered(8, 1, 1);
	check_block_ordered(11, 1, 2);
	check_block_ordered(3, 1, 1);
	check_block_ordered(8, 4, 2);
	check_block_ordered(19, 4, 1);
}

/*
 * kmeans_fit_inplace (the lookalike stage's, without a standardised copy of
 * the rows) fits the same model and labels as kmeans_fit, to the bit, and
 * leaves the standardised rows in x: scaler_transform's of the original.
 */
static void test_fit_inplace_is_fit(void **state)
{
	const double centres[] = { 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1 };
	const size_t n = 4 * 2500;
	int *l1 = malloc(n * sizeof(int)), *l2 = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m1 = NULL, *m2 = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 4, 3, 2500, 11, NULL);
	double *z = malloc(n * 3 * sizeof(double));

	(void)state;
	for (size_t i = 0; i < n * 3; i++)
		x[i] = x[i] * 250.0 - 40.0; /* far from standardised: the scaler is exercised */
	kmeans_param_init(&p);
	p.k = 7;
	p.max_iter = 40;
	assert_int_equal(kmeans_fit(&p, x, n, 3, &m1, l1, &err), 0);
	scaler_transform(&m1->scaler, x, n, z);
	assert_int_equal(kmeans_fit_inplace(&p, x, n, 3, &m2, l2, &err), 0);
	assert_true(m1->n_iter > 1);
	assert_int_equal(m1->n_iter, m2->n_iter);
	assert_memory_equal(m1->scaler.mean, m2->scaler.mean, 3 * sizeof(double));
	assert_memory_equal(m1->scaler.std, m2->scaler.std, 3 * sizeof(double));
	assert_memory_equal(m1->centroids, m2->centroids, 7 * 3 * sizeof(double));
	assert_memory_equal(&m1->inertia, &m2->inertia, sizeof(double));
	assert_memory_equal(l1, l2, n * sizeof(int));
	assert_memory_equal(x, z, n * 3 * sizeof(double));
	kmeans_free(m1);
	kmeans_free(m2);
	free(z);
	free(x);
	free(l1);
	free(l2);
}

/*
 * Predicting rows in slices that start at multiples of kmeans_block_rows
 * (lookalike_labels, which builds its matrix a slice at a time) gives the
 * labels and distances of one call over all rows, to the bit, the last
 * slice and block partial.
 */
static void test_predict_in_block_slices(void **state)
{
	const double centres[] = { 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1 };
	const size_t per = 2600, n = 4 * per;
	int *whole = malloc(n * sizeof(int)), *sliced = malloc(n * sizeof(int));
	double *d_whole = malloc(n * sizeof(double)), *d_sliced = malloc(n * sizeof(double));
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 4, 3, per, 5, NULL);
	size_t bs;

	(void)state;
	kmeans_param_init(&p);
	p.k = 5;
	assert_int_equal(kmeans_fit(&p, x, n, 3, &m, NULL, &err), 0);
	bs = kmeans_block_rows(m);
	assert_true(bs < n && n % bs != 0); /* several blocks, the last partial */
	assert_int_equal(kmeans_predict(m, x, n, 2, whole, d_whole, &err), 0);
	for (size_t r0 = 0; r0 < n; r0 += bs) {
		const size_t rows = n - r0 < bs ? n - r0 : bs;

		assert_int_equal(kmeans_predict(m, x + r0 * 3, rows, 1, sliced + r0, d_sliced + r0,
						&err), 0);
	}
	assert_memory_equal(whole, sliced, n * sizeof(int));
	assert_memory_equal(d_whole, d_sliced, n * sizeof(double));
	kmeans_free(m);
	free(x);
	free(whole);
	free(sliced);
	free(d_whole);
	free(d_sliced);
}

/*
 * The labels kmeans_fit returns are kmeans_predict's on the same rows, to the
 * bit, at any thread count: the lookalike stage takes the fit's labels for the
 * target horizon instead of predicting its rows again. Overlapping blobs and
 * a partial last block, so near ties and block edges are exercised.
 */
static void test_fit_labels_are_predict_labels(void **state)
{
	const double centres[] = { 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1 };
	const size_t n = 4 * 3001;
	int *fit = malloc(n * sizeof(int)), *pred = malloc(n * sizeof(int));
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 4, 3, 3001, 7, NULL);

	(void)state;
	for (size_t i = 0; i < n * 3; i++)
		x[i] = x[i] * 1000.0 + 5.0; /* far from standardised: the scaler is exercised */
	kmeans_param_init(&p);
	p.k = 9;
	p.max_iter = 40;
	assert_int_equal(kmeans_fit(&p, x, n, 3, &m, fit, &err), 0);
	assert_true(m->n_iter > 1);
	for (int threads = 1; threads <= 2; threads++) {
		memset(pred, -1, n * sizeof(int));
		assert_int_equal(kmeans_predict(m, x, n, threads, pred, NULL, &err), 0);
		assert_memory_equal(fit, pred, n * sizeof(int));
	}
	kmeans_free(m);
	free(x);
	free(fit);
	free(pred);
}

/*
 * A row's label and distance are the same whether it is predicted alone or
 * among others (the dot products are summed row by row, not by a blocked
 * product whose last rows of a call are summed in another order), with k
 * not a multiple of the centroids nearest_rows takes at once.
 */
static void test_row_label_alone(void **state)
{
	const double centres[] = { 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0 };
	const size_t n = 3 * 1001, d = 5;
	int *whole = malloc(n * sizeof(int));
	double *d_whole = malloc(n * sizeof(double));
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	double *x = make_blobs(centres, 3, d, 1001, 11, NULL);

	(void)state;
	kmeans_param_init(&p);
	p.k = 13;
	assert_int_equal(kmeans_fit(&p, x, n, d, &m, NULL, &err), 0);
	assert_int_equal(kmeans_predict(m, x, n, 2, whole, d_whole, &err), 0);
	for (size_t i = 0; i < n; i++) {
		int one;
		double d_one;

		assert_int_equal(kmeans_predict(m, x + i * d, 1, 1, &one, &d_one, &err), 0);
		assert_int_equal(one, whole[i]);
		assert_memory_equal(&d_one, &d_whole[i], sizeof(double));
	}
	kmeans_free(m);
	free(x);
	free(whole);
	free(d_whole);
}

/*
 * Equally near centroids: the row takes the first, within one of the runs of
 * four centroids the nearest search scans apart and across runs (3 and 4,
 * 5 and 6, 2 and 9 are the same point).
 */
static void test_ties_take_first_centroid(void **state)
{
	const double cent[] = { 9, 9, -9, -9, 2, 2, 5, 5, 5, 5, 0, 9, 0, 9, -5, 0, 8, 0, 2, 2, 7, 7 };
	const double rows[] = { 5, 5, 2, 2, 0, 9, 4, 4, 2.5, 2.5 };
	const int want[] = { 3, 2, 5, 3, 2 };
	struct kmeans_model m = { .k = 11, .d = 2 };
	double mean[2] = { 0, 0 }, sd[2] = { 1, 1 };
	int got[5];
	struct ltv_err err;

	(void)state;
	m.scaler = (struct scaler){ .d = 2, .mean = mean, .std = sd };
	m.centroids = (double *)cent;
	assert_int_equal(kmeans_predict(&m, rows, 5, 1, got, NULL, &err), 0);
	assert_memory_equal(got, want, sizeof(want));
}

static void test_more_clusters_than_distinct_rows(void **state)
{
	/* 4 distinct points, 5 copies each, k = 6: two clusters must stay empty. */
	const double pts[] = { 0, 0, 1, 0, 0, 1, 3, 3 };
	double x[40], cent[12];
	int labels[20];
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	int covered[4] = { 0 };

	(void)state;
	for (int i = 0; i < 20; i++) {
		x[i * 2] = pts[(i % 4) * 2];
		x[i * 2 + 1] = pts[(i % 4) * 2 + 1];
	}
	kmeans_param_init(&p);
	p.k = 6;
	assert_int_equal(kmeans_fit(&p, x, 20, 2, &m, labels, &err), 0);
	/* Zero up to rounding: a mean of five equal values need not equal them to the last bit. */
	assert_true(m->inertia <= 1e-25);
	assert_true(m->n_iter < p.max_iter); /* converged rather than reseeding forever */
	kmeans_centroids_unscaled(m, cent);
	for (int j = 0; j < 6; j++) {
		int on_point = 0;
		for (int q = 0; q < 4; q++)
			if (fabs(cent[j * 2] - pts[q * 2]) < 1e-12 &&
			    fabs(cent[j * 2 + 1] - pts[q * 2 + 1]) < 1e-12)
				on_point = 1;
		assert_true(on_point);
	}
	for (int i = 0; i < 20; i++) {
		const int j = labels[i];
		assert_double_near(cent[j * 2], x[i * 2], 1e-12);
		assert_double_near(cent[j * 2 + 1], x[i * 2 + 1], 1e-12);
		covered[i % 4] = 1;
		/* Copies of one point share a label. */
		assert_int_equal(labels[i], labels[i % 4]);
	}
	assert_int_equal(covered[0] + covered[1] + covered[2] + covered[3], 4);
	kmeans_free(m);

	/* Fewer rows than clusters is an error, not a crash. */
	p.k = 21;
	assert_int_equal(kmeans_fit(&p, x, 20, 2, &m, NULL, &err), LTV_EINVAL);
	assert_null(m);
	assert_non_null(strstr(err.msg, "20 rows"));
}

static void test_empty_cluster_reseeded_to_farthest(void **state)
{
	/*
	 * Start one centroid far from all data: it is empty after the first
	 * assignment and must move to the farthest row, the outlier (10, 0).
	 * Without the reseed it would stay at (100, 100) and the other centroid
	 * would be the mean of all five rows, (2.4, 0.4).
	 */
	const double x[] = { 0, 0, 0, 1, 1, 0, 1, 1, 10, 0 };
	const double init[] = { 0.5, 0.5, 100, 100 };
	int labels[5];
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;

	(void)state;
	kmeans_param_init(&p);
	p.k = 2;
	p.standardize = 0;
	p.init_centroids = init;
	assert_int_equal(kmeans_fit(&p, x, 5, 2, &m, labels, &err), 0);
	assert_double_near(m->centroids[0], 0.5, 1e-12);
	assert_double_near(m->centroids[1], 0.5, 1e-12);
	assert_double_near(m->centroids[2], 10.0, 1e-12);
	assert_double_near(m->centroids[3], 0.0, 1e-12);
	/* Four corners at squared distance 0.5 each. */
	assert_double_near(m->inertia, 2.0, 1e-12);
	for (int i = 0; i < 4; i++)
		assert_int_equal(labels[i], 0);
	assert_int_equal(labels[4], 1);
	kmeans_free(m);
}

static void test_save_load_round_trip(void **state)
{
	const double centres[] = { 0, 0, 6, 6, -6, 6 };
	double *x = make_blobs(centres, 3, 2, 50, 3, NULL);
	struct kmeans_param p;
	struct kmeans_model *m = NULL, *back = NULL;
	struct ltv_err err;
	uint8_t *buf = NULL;
	size_t len = 0;
	int l1[150], l2[150];

	(void)state;
	kmeans_param_init(&p);
	p.k = 3;
	assert_int_equal(kmeans_fit(&p, x, 150, 2, &m, NULL, &err), 0);
	kmeans_save(m, &buf, &len);
	assert_memory_equal(buf, "LTVKMNS1", 8);
	/* header 12 + k,d 16 + three arrays (8 + 8n each) + inertia 8 + n_iter 8 */
	assert_int_equal(len, 12 + 16 + (8 + 16) + (8 + 16) + (8 + 48) + 16);
	assert_int_equal(kmeans_load(buf, len, &back, &err), 0);
	assert_int_equal(back->k, 3);
	assert_int_equal(back->d, 2);
	assert_int_equal(back->n_iter, m->n_iter);
	assert_memory_equal(back->centroids, m->centroids, 6 * sizeof(double));
	assert_memory_equal(back->scaler.mean, m->scaler.mean, 2 * sizeof(double));
	assert_memory_equal(back->scaler.std, m->scaler.std, 2 * sizeof(double));
	assert_memory_equal(&back->inertia, &m->inertia, sizeof(double));
	assert_int_equal(kmeans_predict(m, x, 150, 1, l1, NULL, &err), 0);
	assert_int_equal(kmeans_predict(back, x, 150, 1, l2, NULL, &err), 0);
	assert_memory_equal(l1, l2, sizeof(l1));
	kmeans_free(back);
	back = NULL;

	/* Truncated and foreign blobs are errors. */
	assert_int_equal(kmeans_load(buf, len - 1, &back, &err), LTV_EINVAL);
	assert_null(back);
	assert_non_null(strstr(err.msg, "truncated"));
	buf[0] = 'X';
	assert_int_equal(kmeans_load(buf, len, &back, &err), LTV_EINVAL);
	assert_null(back);
	free(buf);
	kmeans_free(m);
	kmeans_free(NULL);
	free(x);
}

/*
 * A model of three clusters over the points 0..3 on one axis, for the
 * cluster-means tests: only k matters there, the means come from the labels
 * given.
 */
static struct kmeans_model *three_clusters_of_four_points(void)
{
	const double x[] = { 0, 1, 2, 3 };
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;

	kmeans_param_init(&p);
	p.k = 3;
	assert_int_equal(kmeans_fit(&p, x, 4, 1, &m, NULL, &err), 0);
	return m;
}

static void test_cluster_means(void **state)
{
	const int labels[] = { 0, 0, 1 };
	const double values[] = { 1, 3, 10 };
	const int bad_labels[] = { 0, 3, 1 };
	double means[3];
	size_t counts[3];
	struct kmeans_model *m = three_clusters_of_four_points();
	struct ltv_err err;

	(void)state;
	/* Cluster 2 is empty here and gets the overall mean (1 + 3 + 10) / 3. */
	assert_int_equal(kmeans_cluster_means(m, labels, 3, values, means, counts, &err), 0);
	assert_double_near(means[0], 2.0, 1e-15);
	assert_double_near(means[1], 10.0, 1e-15);
	assert_double_near(means[2], 14.0 / 3.0, 1e-15);
	assert_int_equal(counts[0], 2);
	assert_int_equal(counts[1], 1);
	assert_int_equal(counts[2], 0);
	assert_int_equal(kmeans_cluster_means(m, bad_labels, 3, values, means, NULL, &err),
			 LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 1 has label 3"));
	kmeans_free(m);
}

/*
 * Rows counted by repeats give the bit-identical means of the rows repeated
 * (lookalike's weighted rows without their copies); errors count the copies.
 */
static void test_cluster_means_repeated(void **state)
{
	const int labels[] = { 0, 1, 0, 2 };
	const size_t repeats[] = { 3, 0, 2, 1 };
	const double values[] = { 0.1, 99, 0.7, 1e-3 };
	const int expanded_labels[] = { 0, 0, 0, 0, 0, 2 };
	const double expanded_values[] = { 0.1, 0.1, 0.1, 0.7, 0.7, 1e-3 };
	const int bad_labels[] = { 0, 1, 5, 2 };
	double means[3], want[3];
	size_t counts[3], want_counts[3];
	struct kmeans_model *m = three_clusters_of_four_points();
	struct ltv_err err;

	(void)state;
	assert_int_equal(kmeans_cluster_means(m, expanded_labels, 6, expanded_values, want,
					      want_counts, &err), 0);
	assert_int_equal(kmeans_cluster_means_repeated(m, labels, repeats, 4, values, means, counts,
						       &err), 0);
	assert_memory_equal(means, want, sizeof(means));
	assert_memory_equal(counts, want_counts, sizeof(counts));
	assert_int_equal(counts[0], 5);
	assert_int_equal(counts[1], 0); /* row 1 repeats 0 times: cluster 1 is empty */
	assert_int_equal(kmeans_cluster_means_repeated(m, bad_labels, repeats, 4, values, means,
						       NULL, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "row 3 has label 5")); /* rows 0-2 are row 0's copies */
	kmeans_free(m);
}

static void test_param_check(void **state)
{
	struct kmeans_param p;
	struct kmeans_model *m = NULL;
	struct ltv_err err;
	const double x[] = { 1, 2 };

	(void)state;
	kmeans_param_init(&p);
	assert_null(kmeans_param_check(&p));
	p.k = 0;
	assert_string_equal(kmeans_param_check(&p), "k must be at least 1");
	p.k = 1;
	p.n_threads = 0;
	assert_string_equal(kmeans_param_check(&p), "n_threads must be at least 1");
	assert_int_equal(kmeans_fit(&p, x, 2, 1, &m, NULL, &err), LTV_EINVAL);
	assert_null(m);
	p.n_threads = 1;
	p.tol = -1.0;
	assert_non_null(kmeans_param_check(&p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scaler_maths),
		cmocka_unit_test(test_blobs_recovered),
		cmocka_unit_test(test_threads_bit_identical),
		cmocka_unit_test(test_fit_inplace_is_fit),
		cmocka_unit_test(test_predict_in_block_slices),
		cmocka_unit_test(test_fit_labels_are_predict_labels),
		cmocka_unit_test(test_row_label_alone),
		cmocka_unit_test(test_prune_is_no_prune),
		cmocka_unit_test(test_centroids_are_block_ordered_sums),
		cmocka_unit_test(test_ties_take_first_centroid),
		cmocka_unit_test(test_more_clusters_than_distinct_rows),
		cmocka_unit_test(test_empty_cluster_reseeded_to_farthest),
		cmocka_unit_test(test_save_load_round_trip),
		cmocka_unit_test(test_cluster_means),
		cmocka_unit_test(test_cluster_means_repeated),
		cmocka_unit_test(test_param_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
