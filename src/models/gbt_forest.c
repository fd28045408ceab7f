/*
 * The native tree evaluator (contract in include/ltv/gbt_forest.h). The
 * model body is parsed with cJSON for its structure; the float values
 * (split conditions, which hold the leaf values on leaves, and base_score)
 * are read from the text with strtof, since going through cJSON's double
 * would round twice.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/gbt_forest.h"

#define DEFAULT_LEFT 0x80000000u
#define LEAF 0x40000000u
#define FEATURE_MASK 0x3fffffffu
/* Trees walked side by side for one row (independent loads: the CPU overlaps them). */
#define LOCKSTEP 16
#define TREES_KEY "\"trees\":["

/*
 * A node of a tree. A leaf (LEAF set) points to itself both ways, so a walk
 * that has reached it may take more steps and stay: trees of one group are
 * walked the group's depth of steps without a test per tree.
 */
struct node {
	float value;       /* split condition, or leaf value */
	uint32_t feature;  /* feature index | DEFAULT_LEFT when NaN goes left | LEAF */
	int32_t left;      /* indices in the forest's node array */
	int32_t right;
};

enum link { LINK_IDENTITY, LINK_LOGISTIC, LINK_EXP };

struct gbt_forest {
	size_t n_features;
	size_t n_trees;
	size_t *root;          /* n_trees: each tree's first node in nodes */
	int *depth;            /* n_trees: the longest path from the root, in splits */
	int *group_depth;      /* per LOCKSTEP trees from tree 0: their largest depth */
	struct node *nodes;
	size_t n_nodes;
	float base_margin;
	enum link link;
	float **thresholds;    /* per feature, sorted unique split conditions */
	size_t *n_thresholds;
};

static const struct {
	const char *name;
	enum link link;
} objectives[] = {
	{ "binary:logistic", LINK_LOGISTIC },
	{ "reg:squarederror", LINK_IDENTITY },
	{ "reg:gamma", LINK_EXP },
	{ "reg:tweedie", LINK_EXP },
};

static int parse_float(const char *s, const char *end, float *out, const char **out_next)
{
	char buf[64];
	size_t n = 0;
	char *stop;

	while (s < end && n + 1 < sizeof(buf) && *s && strchr("+-.0123456789eE", *s) != NULL)
		buf[n++] = *s++;
	buf[n] = '\0';
	if (n == 0)
		return -1;
	errno = 0;
	*out = strtof(buf, &stop);
	if (*stop != '\0')
		return -1;
	if (out_next)
		*out_next = s;
	return 0;
}

/*
 * The k-th array "split_conditions" in the body text, read as exact floats
 * into out[n]; from *cursor on (each tree's array comes after the last).
 */
static int scan_conditions(const char *json, size_t len, const char **cursor, float *out,
			   size_t n)
{
	static const char key[] = "\"split_conditions\":[";
	const char *end = json + len;
	const char *p = memmem(*cursor, (size_t)(end - *cursor), key, sizeof(key) - 1);

	if (!p)
		return -1;
	p += sizeof(key) - 1;
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			if (p >= end || *p != ',')
				return -1;
			p++;
		}
		if (parse_float(p, end, &out[i], &p) < 0)
			return -1;
	}
	if (p >= end || *p != ']')
		return -1;
	*cursor = p + 1;
	return 0;
}

static const cJSON *child(const cJSON *obj, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A JSON array of exactly n numbers (or of n, when n is SIZE_MAX: any length). */
static int int_array(const cJSON *arr, size_t n, int64_t *out)
{
	size_t i = 0;
	const cJSON *it;

	if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n)
		return -1;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
		    fabs(it->valuedouble) > 2147483647.0)
			return -1;
		out[i++] = (int64_t)it->valuedouble;
	}
	return 0;
}

/*
 * Every node reachable from the root exactly once and only through valid
 * indices: then a walk always ends at a leaf. Sets *out_depth to the longest
 * path in splits.
 */
static int tree_is_sound(const int64_t *left, const int64_t *right, size_t n, int *out_depth)
{
	unsigned char *seen = xcalloc(n ? n : 1, 1);
	size_t *stack = xmalloc((n ? n : 1) * sizeof(size_t)), top = 0;
	int *depth = xcalloc(n ? n : 1, sizeof(int));
	int ok = n > 0;

	*out_depth = 0;
	if (ok) {
		stack[top++] = 0;
		seen[0] = 1;
	}
	while (ok && top > 0) {
		size_t i = stack[--top];

		if (depth[i] > *out_depth)
			*out_depth = depth[i];
		if (left[i] < 0 && right[i] < 0)
			continue;
		for (int c = 0; c < 2 && ok; c++) {
			int64_t k = c ? right[i] : left[i];

			ok = k > 0 && (size_t)k < n && !seen[k];
			if (ok) {
				seen[k] = 1;
				depth[k] = depth[i] + 1;
				stack[top++] = (size_t)k;
			}
		}
	}
	free(seen);
	free(stack);
	free(depth);
	return ok;
}

static int add_tree(struct gbt_forest *f, const cJSON *tree, const char *json, size_t len,
		    const char **cursor, size_t t, struct ltv_err *err)
{
	const cJSON *split_type = child(tree, "split_type");
	const cJSON *it;
	size_t n = (size_t)cJSON_GetArraySize(child(tree, "left_children"));
	int64_t *left = xmalloc((n ? n : 1) * sizeof(int64_t));
	int64_t *right = xmalloc((n ? n : 1) * sizeof(int64_t));
	int64_t *feature = xmalloc((n ? n : 1) * sizeof(int64_t));
	int64_t *dleft = xmalloc((n ? n : 1) * sizeof(int64_t));
	float *cond = xmalloc((n ? n : 1) * sizeof(float));
	size_t k = 0;
	int ret = 0;

	if (int_array(child(tree, "left_children"), n, left) < 0 ||
	    int_array(child(tree, "right_children"), n, right) < 0 ||
	    int_array(child(tree, "split_indices"), n, feature) < 0 ||
	    int_array(child(tree, "default_left"), n, dleft) < 0 ||
	    scan_conditions(json, len, cursor, cond, n) < 0) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu has malformed node arrays", t);
		goto out;
	}
	cJSON_ArrayForEach(it, split_type) {
		if (!cJSON_IsNumber(it) || it->valuedouble != 0) {
			ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu has categorical splits", t);
			goto out;
		}
	}
	/* The text scan must have met this tree's own array: its values agree with cJSON's. */
	cJSON_ArrayForEach(it, child(tree, "split_conditions")) {
		double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;

		if (k >= n || !(fabs(d - (double)cond[k]) <= 1e-6 * fabs(d) + 1e-30)) {
			ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu split conditions do not "
				      "read back", t);
			goto out;
		}
		k++;
	}
	if (k != n || !tree_is_sound(left, right, n, &f->depth[t]) || n > FEATURE_MASK) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu is not a tree", t);
		goto out;
	}
	f->root[t] = f->n_nodes;
	f->nodes = xrealloc(f->nodes, (f->n_nodes + n) * sizeof(*f->nodes));
	for (size_t i = 0; i < n; i++) {
		struct node *nd = &f->nodes[f->n_nodes + i];
		const int leaf = left[i] < 0;

		if (!leaf && (feature[i] < 0 || (size_t)feature[i] >= f->n_features)) {
			ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu splits on feature %lld of %zu",
				      t, (long long)feature[i], f->n_features);
			goto out;
		}
		nd->value = cond[i];
		nd->left = (int32_t)(f->n_nodes + (size_t)(leaf ? (int64_t)i : left[i]));
		nd->right = (int32_t)(f->n_nodes + (size_t)(leaf ? (int64_t)i : right[i]));
		nd->feature = leaf ? LEAF : (uint32_t)feature[i] | (dleft[i] ? DEFAULT_LEFT : 0);
	}
	f->n_nodes += n;
out:
	free(left);
	free(right);
	free(feature);
	free(dleft);
	free(cond);
	return ret;
}

static int compare_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

static void collect_thresholds(struct gbt_forest *f)
{
	size_t *cap = xcalloc(f->n_features, sizeof(size_t));

	f->thresholds = xcalloc(f->n_features, sizeof(float *));
	f->n_thresholds = xcalloc(f->n_features, sizeof(size_t));
	for (size_t i = 0; i < f->n_nodes; i++) {
		const struct node *nd = &f->nodes[i];
		size_t j = nd->feature & FEATURE_MASK;

		if (nd->feature & LEAF)
			continue;
		ARRAY_GROW(f->thresholds[j], f->n_thresholds[j] + 1, cap[j]);
		f->thresholds[j][f->n_thresholds[j]++] = nd->value;
	}
	for (size_t j = 0; j < f->n_features; j++) {
		size_t u = 0;

		if (f->n_thresholds[j] == 0)
			continue; /* a feature no split uses: no array (qsort must not get NULL) */
		qsort(f->thresholds[j], f->n_thresholds[j], sizeof(float), compare_float);
		for (size_t i = 0; i < f->n_thresholds[j]; i++)
			if (u == 0 || f->thresholds[j][i] != f->thresholds[j][u - 1])
				f->thresholds[j][u++] = f->thresholds[j][i];
		f->n_thresholds[j] = u;
	}
	free(cap);
}

/* XGBoost 1.7's ProbToMargin: the base margin for base_score under the objective. */
static float base_margin(enum link link, float base_score)
{
	switch (link) {
	case LINK_LOGISTIC:
		return -logf(1.0f / base_score - 1.0f);
	case LINK_EXP:
		return logf(base_score);
	default:
		return base_score;
	}
}

static int read_learner(struct gbt_forest *f, const cJSON *learner, struct ltv_err *err)
{
	const cJSON *param = child(learner, "learner_model_param");
	const cJSON *objective = child(child(learner, "objective"), "name");
	const cJSON *score = child(param, "base_score"), *n_class = child(param, "num_class");
	const cJSON *n_target = child(param, "num_target");
	float base_score;
	size_t k;

	if (!cJSON_IsString(objective))
		return err_set(err, LTV_EINVAL, "gbt forest: no objective");
	for (k = 0; k < sizeof(objectives) / sizeof(objectives[0]); k++)
		if (strcmp(objectives[k].name, objective->valuestring) == 0)
			break;
	if (k == sizeof(objectives) / sizeof(objectives[0]))
		return err_set(err, LTV_EINVAL, "gbt forest: objective '%s' is not read",
			       objective->valuestring);
	f->link = objectives[k].link;
	if (!cJSON_IsString(score) ||
	    parse_float(score->valuestring, score->valuestring + strlen(score->valuestring),
			&base_score, NULL) < 0 || !isfinite(base_score))
		return err_set(err, LTV_EINVAL, "gbt forest: bad base_score");
	if ((f->link == LINK_LOGISTIC && !(base_score > 0.0f && base_score < 1.0f)) ||
	    (f->link == LINK_EXP && !(base_score > 0.0f)))
		return err_set(err, LTV_EINVAL, "gbt forest: base_score %g out of range", (double)base_score);
	if ((cJSON_IsString(n_class) && strcmp(n_class->valuestring, "0") != 0) ||
	    (cJSON_IsString(n_target) && strcmp(n_target->valuestring, "1") != 0))
		return err_set(err, LTV_EINVAL, "gbt forest: more than one output");
	f->base_margin = base_margin(f->link, base_score);
	return 0;
}

int gbt_forest_from_json(const char *json, size_t len, size_t n_features,
			 struct gbt_forest **out_forest, struct ltv_err *err)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *learner = child(root, "learner");
	const cJSON *model = child(child(learner, "gradient_booster"), "model");
	const cJSON *trees = child(model, "trees"), *info = child(model, "tree_info");
	const cJSON *param = child(model, "gbtree_model_param"), *it;
	const cJSON *parallel = child(param, "num_parallel_tree");
	const cJSON *booster = child(child(learner, "gradient_booster"), "name");
	struct gbt_forest *f = xcalloc(1, sizeof(*f));
	const char *cursor;
	int ret = 0;

	assert(json && out_forest);
	*out_forest = NULL;
	f->n_features = n_features;
	if (!root || !cJSON_IsArray(trees) || !cJSON_IsString(booster) ||
	    strcmp(booster->valuestring, "gbtree") != 0) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: not a gbtree model body");
		goto out;
	}
	if (!cJSON_IsString(parallel) || strcmp(parallel->valuestring, "1") != 0) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: parallel trees are not read");
		goto out;
	}
	cJSON_ArrayForEach(it, info) {
		if (!cJSON_IsNumber(it) || it->valuedouble != 0) {
			ret = err_set(err, LTV_EINVAL, "gbt forest: more than one output group");
			goto out;
		}
	}
	if ((ret = read_learner(f, learner, err)) < 0)
		goto out;
	f->n_trees = (size_t)cJSON_GetArraySize(trees);
	if ((size_t)cJSON_GetArraySize(info) != f->n_trees) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: tree_info does not match the trees");
		goto out;
	}
	f->root = xcalloc(f->n_trees ? f->n_trees : 1, sizeof(size_t));
	f->depth = xcalloc(f->n_trees ? f->n_trees : 1, sizeof(int));
	/* The trees' arrays come after "trees":[ in the text, in the same order. */
	cursor = memmem(json, len, TREES_KEY, sizeof(TREES_KEY) - 1);
	if (!cursor) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: no trees in the body text");
		goto out;
	}
	{
		size_t t = 0;

		cJSON_ArrayForEach(it, trees) {
			if ((ret = add_tree(f, it, json, len, &cursor, t++, err)) < 0)
				goto out;
		}
	}
	collect_thresholds(f);
	f->group_depth = xcalloc(f->n_trees / LOCKSTEP + 1, sizeof(int));
	for (size_t t = 0; t < f->n_trees; t++)
		if (f->depth[t] > f->group_depth[t / LOCKSTEP])
			f->group_depth[t / LOCKSTEP] = f->depth[t];
	*out_forest = f;
	f = NULL;
out:
	gbt_forest_free(f);
	cJSON_Delete(root);
	return ret;
}

void gbt_forest_free(struct gbt_forest *f)
{
	if (!f)
		return;
	if (f->thresholds)
		for (size_t j = 0; j < f->n_features; j++)
			free(f->thresholds[j]);
	free(f->thresholds);
	free(f->n_thresholds);
	free(f->root);
	free(f->depth);
	free(f->group_depth);
	free(f->nodes);
	free(f);
}

size_t gbt_forest_n_trees(const struct gbt_forest *f) { return f->n_trees; }
size_t gbt_forest_n_features(const struct gbt_forest *f) { return f->n_features; }

const float *gbt_forest_thresholds(const struct gbt_forest *f, size_t feature, size_t *out_n)
{
	assert(feature < f->n_features);
	*out_n = f->n_thresholds[feature];
	return f->thresholds[feature];
}

/* XGBoost 1.7's common::Sigmoid, in float. */
static float sigmoid(float x)
{
	const float eps = 1e-16f;
	float e = expf(fminf(-x, 88.7f));

	return 1.0f / (e + 1.0f + eps);
}

/* One step down from node i for row: XGBoost's GetNext (a leaf stays put). */
static inline int32_t step(const struct node *nodes, int32_t i, const float *row)
{
	const struct node *nd = &nodes[i];
	const float v = row[nd->feature & FEATURE_MASK];
	/* NaN compares false: it goes left only where the default is left. */
	const int go_left = (nd->feature & DEFAULT_LEFT) ? !(v >= nd->value) : v < nd->value;

	return go_left ? nd->left : nd->right;
}

/*
 * One row's margin: the base margin plus each tree's leaf, in float, in tree
 * order. LOCKSTEP trees are walked side by side for their group's depth of
 * steps; their leaves are then added one by one, in order.
 */
static float row_margin(const struct gbt_forest *f, const float *row)
{
	const struct node *nodes = f->nodes;
	float sum = f->base_margin;
	size_t t = 0;

	for (; t + LOCKSTEP <= f->n_trees; t += LOCKSTEP) {
		int32_t at[LOCKSTEP];

		for (int k = 0; k < LOCKSTEP; k++)
			at[k] = (int32_t)f->root[t + k];
		for (int d = f->group_depth[t / LOCKSTEP]; d > 0; d--)
			for (int k = 0; k < LOCKSTEP; k++)
				at[k] = step(nodes, at[k], row);
		for (int k = 0; k < LOCKSTEP; k++)
			sum += nodes[at[k]].value;
	}
	for (; t < f->n_trees; t++) {
		int32_t at = (int32_t)f->root[t];

		for (int d = f->depth[t]; d > 0; d--)
			at = step(nodes, at, row);
		sum += nodes[at].value;
	}
	return sum;
}

static double transform(const struct gbt_forest *f, float margin)
{
	switch (f->link) {
	case LINK_LOGISTIC:
		return sigmoid(margin);
	case LINK_EXP:
		return expf(margin);
	default:
		return margin;
	}
}

/* Rows per thread below which a parallel region costs more than it saves. */
#define PARALLEL_MIN_ROWS 4096

void gbt_forest_predict(const struct gbt_forest *f, const float *x, size_t n_rows, int margin,
			int n_threads, double *out_pred)
{
	const size_t k = f->n_features;

	assert(f && (x || n_rows == 0) && (out_pred || n_rows == 0));
	if (n_threads > 1 && n_rows >= 2 * PARALLEL_MIN_ROWS) {
		const long n = (long)n_rows;

#pragma omp parallel for schedule(static) num_threads(n_threads)
		for (long i = 0; i < n; i++) {
			const float m = row_margin(f, x + (size_t)i * k);

			out_pred[i] = margin ? (double)m : transform(f, m);
		}
		return;
	}
	/* Small inputs (a served request) never enter an OpenMP region: it costs more than the trees. */
	for (size_t i = 0; i < n_rows; i++) {
		const float m = row_margin(f, x + i * k);

		out_pred[i] = margin ? (double)m : transform(f, m);
	}
}
