/*
 * The native tree evaluator (contract in include/ltv/gbt_forest.h). The
 * model body is parsed with cJSON for its structure (into an arena of the
 * thread: json_arena.h); the float values
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
#include <omp.h>

#include "ltv/gbt_forest.h"

#include "gbt_leaf_masks.h"
#include "json_arena.h"

/* Trees walked side by side for one row (independent loads: the CPU overlaps them). */
#define LOCKSTEP 16
/*
 * The deepest group of trees laid out as complete binary trees (2^depth
 * leaves a tree): GBT_FOREST_COMPLETE_MAX_DEPTH. The configured depths are 4
 * and 6; a forest with a deeper tree (up to 16 is allowed) is walked through
 * its node array instead.
 */
#define COMPLETE_MAX_DEPTH GBT_FOREST_COMPLETE_MAX_DEPTH
/* GCC's unroll pragma takes a number, not a macro: spelled through _Pragma so LOCKSTEP expands. */
#define PRAGMA(x) _Pragma(#x)
#define UNROLL(n) PRAGMA(GCC unroll n)
#define TREES_KEY "\"trees\":["

/*
 * A split of the complete layout: the walk goes right iff slots[slot] >=
 * value. A row's slots hold each feature twice (see row_slots), its NaN made
 * +inf where the default is right and -inf where it is left, so one float
 * comparison does XGBoost's "missing: default, else left iff x < split" for
 * finite split conditions (the only ones read). Below a leaf that is not at
 * the bottom, splits have value NaN and always go left.
 */
struct split {
	float value;
	uint32_t slot;
};

/*
 * Up to LOCKSTEP consecutive trees laid out as complete binary trees of the
 * group's depth (the deepest of them), in level order (position p's
 * children at 2p + 1 and 2p + 2, so a walk loads no child index), the
 * group's n trees interleaved: position p of tree k is splits[first_split +
 * p * n + k], leaf position q (p - (2^depth - 1)) leaves[first_leaf + q * n + k].
 */
struct group {
	size_t first_split;
	size_t first_leaf;
	int depth;
	int n_trees;
};

enum link { LINK_IDENTITY, LINK_LOGISTIC, LINK_EXP };

struct gbt_forest {
	size_t n_features;
	size_t n_trees;
	size_t *root;          /* n_trees: each tree's first node in nodes */
	int *depth;            /* n_trees: the longest path from the root, in splits */
	int *group_depth;      /* per LOCKSTEP trees from tree 0: their largest depth */
	struct forest_node *nodes;    /* the node walk, for a forest too deep for the complete layout */
	size_t n_nodes;
	struct group *groups;  /* the complete layout (NULL when too deep), n_trees / LOCKSTEP rounded up */
	struct leaf_masks *masks; /* the leaf-mask walk (NULL: no AVX-512, or trees too deep) */
	enum gbt_forest_walk walk; /* the walk predictions take */
	struct split *splits;
	float *leaves;
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
	if (k != n || !tree_is_sound(left, right, n, &f->depth[t]) || n > INT32_MAX ||
	    f->n_features > UINT32_MAX / 2) {
		ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu is not a tree", t);
		goto out;
	}
	f->root[t] = f->n_nodes;
	f->nodes = xrealloc(f->nodes, (f->n_nodes + n) * sizeof(*f->nodes));
	for (size_t i = 0; i < n; i++) {
		struct forest_node *nd = &f->nodes[f->n_nodes + i];
		const int leaf = left[i] < 0;

		if (!leaf && (feature[i] < 0 || (size_t)feature[i] >= f->n_features)) {
			ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu splits on feature %lld of %zu",
				      t, (long long)feature[i], f->n_features);
			goto out;
		}
		if (!leaf && !isfinite(cond[i])) { /* the row slots' infinities need finite splits */
			ret = err_set(err, LTV_EINVAL, "gbt forest: tree %zu has a split condition %g",
				      t, (double)cond[i]);
			goto out;
		}
		nd->value = cond[i];
		nd->left = (int32_t)(f->n_nodes + (size_t)(leaf ? (int64_t)i : left[i]));
		nd->right = (int32_t)(f->n_nodes + (size_t)(leaf ? (int64_t)i : right[i]));
		nd->slot = leaf ? 0 : 2 * (uint32_t)feature[i] + (dleft[i] != 0);
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
		const struct forest_node *nd = &f->nodes[i];
		size_t j = nd->slot / 2;

		if (nd->left == (int32_t)i)
			continue; /* a leaf */
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

/*
 * Writes the subtree at node i into tree k of a group of n trees of depth
 * `depth`, from position p (level d) on: position p of tree k is at p * n + k
 * of the group's splits (and, for leaves, p - (2^depth - 1) of its leaves).
 * A leaf above the bottom gets always-left splits below it, its value at the
 * leftmost leaf under it; positions no walk reaches keep their initial
 * always-left splits and zero leaves.
 */
static void lay_out(const struct gbt_forest *f, size_t i, const struct group *g, size_t k,
		    size_t p, int d)
{
	const struct forest_node *nd = &f->nodes[i];
	const size_t n = (size_t)g->n_trees, n_splits = ((size_t)1 << g->depth) - 1;

	if (d == g->depth) { /* no tree is deeper than its group: this is a leaf */
		f->leaves[g->first_leaf + (p - n_splits) * n + k] = nd->value;
		return;
	}
	if (nd->left == (int32_t)i) {
		lay_out(f, i, g, k, 2 * p + 1, d + 1);
		return;
	}
	f->splits[g->first_split + p * n + k] = (struct split){ .value = nd->value, .slot = nd->slot };
	lay_out(f, (size_t)nd->left, g, k, 2 * p + 1, d + 1);
	lay_out(f, (size_t)nd->right, g, k, 2 * p + 2, d + 1);
}

/* The complete layout of every group, when no group is deeper than COMPLETE_MAX_DEPTH. */
static void build_complete(struct gbt_forest *f)
{
	const size_t n_groups = (f->n_trees + LOCKSTEP - 1) / LOCKSTEP;
	size_t n_splits = 0, n_leaves = 0;

	for (size_t g = 0; g < n_groups; g++)
		if (f->group_depth[g] > COMPLETE_MAX_DEPTH)
			return;
	f->groups = xcalloc(n_groups ? n_groups : 1, sizeof(*f->groups));
	for (size_t g = 0; g < n_groups; g++) {
		struct group *gr = &f->groups[g];

		gr->depth = f->group_depth[g];
		gr->n_trees = (int)(f->n_trees - g * LOCKSTEP < LOCKSTEP ? f->n_trees - g * LOCKSTEP
									 : LOCKSTEP);
		gr->first_split = n_splits;
		gr->first_leaf = n_leaves;
		n_leaves += (size_t)gr->n_trees << gr->depth;
		n_splits += (size_t)gr->n_trees * (((size_t)1 << gr->depth) - 1);
	}
	f->splits = xmalloc((n_splits ? n_splits : 1) * sizeof(*f->splits));
	f->leaves = xcalloc(n_leaves, sizeof(float));
	for (size_t i = 0; i < n_splits; i++)
		f->splits[i] = (struct split){ .value = NAN, .slot = 0 };
	for (size_t g = 0; g < n_groups; g++)
		for (int k = 0; k < f->groups[g].n_trees; k++)
			lay_out(f, f->root[g * LOCKSTEP + (size_t)k], &f->groups[g], (size_t)k, 0, 0);
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
	struct json_arena arena = { 0 };
	const cJSON *root = json_arena_parse(&arena, json, len);
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
	build_complete(f);
	f->masks = leaf_masks_new(f->nodes, f->root, f->depth, f->n_trees, f->n_features,
				  f->base_margin);
	f->walk = f->masks ? GBT_FOREST_WALK_LEAF_MASKS
		  : f->groups ? GBT_FOREST_WALK_COMPLETE : GBT_FOREST_WALK_NODES;
	*out_forest = f;
	f = NULL;
out:
	gbt_forest_free(f);
	json_arena_release(&arena);
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
	free(f->groups);
	free(f->splits);
	free(f->leaves);
	leaf_masks_free(f->masks);
	free(f);
}

enum gbt_forest_walk gbt_forest_walk(const struct gbt_forest *f) { return f->walk; }

int gbt_forest_use_walk(struct gbt_forest *f, enum gbt_forest_walk walk)
{
	if ((walk == GBT_FOREST_WALK_LEAF_MASKS && !f->masks) ||
	    (walk == GBT_FOREST_WALK_COMPLETE && !f->groups))
		return -1;
	f->walk = walk;
	return 0;
}

double gbt_forest_margin_bound(const struct gbt_forest *f)
{
	double bound = fabs((double)f->base_margin);

	for (size_t t = 0; t < f->n_trees; t++) {
		const size_t end = t + 1 < f->n_trees ? f->root[t + 1] : f->n_nodes;
		double most = 0;

		/* a tree's nodes follow its root; a leaf points to itself */
		for (size_t i = f->root[t]; i < end; i++)
			if (f->nodes[i].left == (int32_t)i) {
				if (!isfinite(f->nodes[i].value))
					return INFINITY;
				most = fmax(most, fabs((double)f->nodes[i].value));
			}
		bound += most;
	}
	/* each float addition of the walk's sum rounds up by at most 2^-24 of it */
	return isfinite(f->base_margin) ? bound * (1 + (double)(f->n_trees + 1) * 0x1p-22) : INFINITY;
}

size_t gbt_forest_n_trees(const struct gbt_forest *f) { return f->n_trees; }
size_t gbt_forest_n_features(const struct gbt_forest *f) { return f->n_features; }

int gbt_forest_max_depth(const struct gbt_forest *f)
{
	int depth = 0;

	for (size_t t = 0; t < f->n_trees; t++)
		depth = f->depth[t] > depth ? f->depth[t] : depth;
	return depth;
}

const float *gbt_forest_thresholds(const struct gbt_forest *f, size_t feature, size_t *out_n)
{
	assert(feature < f->n_features);
	*out_n = f->n_thresholds[feature];
	return f->thresholds[feature];
}

/* XGBoost 1.7's common::Sigmoid, in float. */
float gbt_forest_sigmoid(float x)
{
	const float eps = 1e-16f;
	float e = expf(fminf(-x, 88.7f));

	return 1.0f / (e + 1.0f + eps);
}

/*
 * A row's slots: each feature's value twice, at 2j where the default
 * direction is right (NaN made +inf, which goes right of any finite split)
 * and at 2j + 1 where it is left (NaN made -inf). Other values, infinities
 * included, compare as they are: x >= split goes right, as XGBoost's
 * !(x < split) does for any x that is not NaN.
 */
static void row_slots(const float *row, size_t n_features, float *slots)
{
	for (size_t j = 0; j < n_features; j++) {
		const float v = row[j];

		slots[2 * j] = isnan(v) ? INFINITY : v;
		slots[2 * j + 1] = isnan(v) ? -INFINITY : v;
	}
}

/*
 * The leaves of a group's n trees for one row, added to sum in tree order.
 * The trees are walked side by side for the group's depth of steps: each
 * step is one load of a split and one of a slot, no branch. at[k] is tree
 * k's position p as its index p * n + k in the group's splits, so its
 * children 2p + 1 and 2p + 2 are at 2 at[k] + n - k and n further, and the
 * trees of a group share one base. Inlined with n = LOCKSTEP, the inner
 * loop unrolls with constants.
 */
static inline float group_sum(const struct gbt_forest *f, const struct group *g, int n,
			      const float *slots, float sum)
{
	const struct split *splits = f->splits + g->first_split;
	const uint32_t n_splits = ((uint32_t)1 << g->depth) - 1;
	uint32_t at[LOCKSTEP];

	for (int k = 0; k < n; k++)
		at[k] = (uint32_t)k;
	for (int d = 0; d < g->depth; d++)
		UNROLL(LOCKSTEP)
		for (int k = 0; k < n; k++) {
			const struct split *s = &splits[at[k]];
			const uint32_t right = slots[s->slot] >= s->value;

			at[k] = 2 * at[k] + (uint32_t)(n - k) + right * (uint32_t)n;
		}
	for (int k = 0; k < n; k++)
		sum += f->leaves[g->first_leaf + at[k] - n_splits * (uint32_t)n];
	return sum;
}

/* One step down from node i: XGBoost's GetNext on the row's slots (a leaf stays put). */
static inline int32_t step(const struct forest_node *nodes, int32_t i, const float *slots)
{
	const struct forest_node *nd = &nodes[i];

	return slots[nd->slot] >= nd->value ? nd->right : nd->left;
}

/* group_sum through the node array, for trees t..t+n-1 (n at most LOCKSTEP) of the group's depth. */
static inline float node_group_sum(const struct gbt_forest *f, size_t t, int n, int depth,
				   const float *slots, float sum)
{
	int32_t at[LOCKSTEP];

	for (int k = 0; k < n; k++)
		at[k] = (int32_t)f->root[t + (size_t)k];
	for (int d = depth; d > 0; d--)
		for (int k = 0; k < n; k++)
			at[k] = step(f->nodes, at[k], slots);
	for (int k = 0; k < n; k++)
		sum += f->nodes[at[k]].value;
	return sum;
}

/*
 * One row's margin: the base margin plus each tree's leaf, in float, in tree
 * order, from the row's slots; through the complete layout when the forest
 * has one, else through the node array (trees deeper than
 * COMPLETE_MAX_DEPTH).
 */
static float row_margin(const struct gbt_forest *f, const float *slots)
{
	const size_t n_groups = (f->n_trees + LOCKSTEP - 1) / LOCKSTEP;
	const int complete = f->groups && f->walk != GBT_FOREST_WALK_NODES;
	float sum = f->base_margin;

	for (size_t g = 0; g < n_groups; g++) {
		const size_t t = g * LOCKSTEP;
		const int n = f->n_trees - t < LOCKSTEP ? (int)(f->n_trees - t) : LOCKSTEP;

		if (complete && n == LOCKSTEP)
			sum = group_sum(f, &f->groups[g], LOCKSTEP, slots, sum);
		else if (complete)
			sum = group_sum(f, &f->groups[g], n, slots, sum);
		else
			sum = node_group_sum(f, t, n, f->group_depth[g], slots, sum);
	}
	return sum;
}

static double transform(const struct gbt_forest *f, float margin)
{
	switch (f->link) {
	case LINK_LOGISTIC:
		return gbt_forest_sigmoid(margin);
	case LINK_EXP:
		return expf(margin);
	default:
		return margin;
	}
}

/* Rows per thread below which a parallel region costs more than it saves. */
#define PARALLEL_MIN_ROWS 4096

/*
 * Rows below which the leaf-mask walk is slower than the complete layout's:
 * it compares every split of a tree for a whole block of LEAF_MASKS_ROWS
 * however few rows it holds (bench/gbt_walks_bench.c, the 16 models of the
 * 1,000,000-user registry: about 1.9 µs a block, 0.24 µs a row on the
 * complete layout). A served request's one row stays on the latter.
 */
#define LEAF_MASKS_MIN_ROWS 8

/*
 * One thread's scratch for predict_rows of n_rows rows: a row's slots, or
 * the leaf-mask walk's columns when it takes them.
 */
static float *walk_scratch_new(const struct gbt_forest *f, size_t n_rows)
{
	if (f->walk == GBT_FOREST_WALK_LEAF_MASKS && n_rows >= LEAF_MASKS_MIN_ROWS)
		return leaf_masks_scratch_new(f->masks);
	return xmalloc((f->n_features ? 2 * f->n_features : 1) * sizeof(float));
}

/*
 * Rows first..last-1 of x into out_pred, with scratch from walk_scratch_new:
 * LEAF_MASKS_ROWS rows at a time by the leaf-mask walk while at least
 * LEAF_MASKS_MIN_ROWS are left, the others a row at a time.
 */
static void predict_rows(const struct gbt_forest *f, const float *x, size_t first, size_t last,
			 int margin, float *scratch, double *out_pred)
{
	const size_t k = f->n_features;

	while (f->walk == GBT_FOREST_WALK_LEAF_MASKS && last - first >= LEAF_MASKS_MIN_ROWS) {
		const size_t n = last - first < LEAF_MASKS_ROWS ? last - first : LEAF_MASKS_ROWS;
		float m[LEAF_MASKS_ROWS];

		leaf_masks_margins(f->masks, x + first * k, n, scratch, m);
		for (size_t r = 0; r < n; r++)
			out_pred[first + r] = margin ? (double)m[r] : transform(f, m[r]);
		first += n;
	}
	for (size_t i = first; i < last; i++) {
		float m;

		row_slots(x + i * k, k, scratch);
		m = row_margin(f, scratch);
		out_pred[i] = margin ? (double)m : transform(f, m);
	}
}

void gbt_forest_predict(const struct gbt_forest *f, const float *x, size_t n_rows, int margin,
			int n_threads, double *out_pred)
{
	assert(f && (x || n_rows == 0) && (out_pred || n_rows == 0));
	if (n_threads > 1 && n_rows >= 2 * PARALLEL_MIN_ROWS) {
#pragma omp parallel num_threads(n_threads)
		{
			const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
			const size_t first = n_rows * id / nt, last = n_rows * (id + 1) / nt;
			float *scratch = walk_scratch_new(f, last - first);

			predict_rows(f, x, first, last, margin, scratch, out_pred);
			free(scratch);
		}
		return;
	}
	/* Small inputs (a served request) never enter an OpenMP region: it costs more than the trees. */
	{
		float *scratch = walk_scratch_new(f, n_rows);

		predict_rows(f, x, 0, n_rows, margin, scratch, out_pred);
		free(scratch);
	}
}

float gbt_forest_base_margin(const struct gbt_forest *f) { return f->base_margin; }

/* Rows walked side by side through one tree (independent loads: the CPU overlaps them). */
#define ROW_LANES 8

/*
 * One step down from node i by XGBoost's GetNextNode on the row as it is: a
 * missing (NaN) value takes the node's default child, any other goes right
 * unless value < split condition. No branch (which way a row goes is a coin
 * toss to the branch predictor), and no slots: a row is read where the walk
 * looks, not copied. A leaf stays put.
 */
static inline int32_t raw_step(const struct forest_node *nodes, int32_t i, const float *row)
{
	const struct forest_node *nd = &nodes[i];
	const float v = row[nd->slot / 2];
	const int32_t right = (v >= nd->value) | (isnan(v) & !(nd->slot & 1));

	return nd->left + right * (nd->right - nd->left);
}

/*
 * Adds tree t's leaf to margin[i] for rows first..last-1, ROW_LANES rows at
 * a time walked together for the tree's depth of steps.
 */
static void add_tree_rows(const struct gbt_forest *f, size_t t, const float *x, size_t first,
			  size_t last, float *margin)
{
	const size_t k = f->n_features;
	const int32_t root = (int32_t)f->root[t];
	const int depth = f->depth[t];
	size_t i = first;

	for (; i + ROW_LANES <= last; i += ROW_LANES) {
		int32_t at[ROW_LANES];

		for (int r = 0; r < ROW_LANES; r++)
			at[r] = root;
		for (int d = 0; d < depth; d++)
			for (int r = 0; r < ROW_LANES; r++)
				at[r] = raw_step(f->nodes, at[r], x + (i + (size_t)r) * k);
		for (int r = 0; r < ROW_LANES; r++)
			margin[i + (size_t)r] += f->nodes[at[r]].value;
	}
	for (; i < last; i++) {
		int32_t at = root;

		for (int d = 0; d < depth; d++)
			at = raw_step(f->nodes, at, x + i * k);
		margin[i] += f->nodes[at].value;
	}
}

/* Trees first_tree..end_tree-1 one after another, so each row gets the leaves in tree order. */
static void add_rows(const struct gbt_forest *f, size_t first_tree, size_t end_tree,
		     const float *x, size_t first, size_t last, float *margin)
{
	for (size_t t = first_tree; t < end_tree; t++)
		add_tree_rows(f, t, x, first, last, margin);
}

void gbt_forest_add_to_margins(const struct gbt_forest *f, size_t first_tree, size_t end_tree,
			       const float *x, size_t n_rows, float *margin, int n_threads)
{
	assert(f && (x || n_rows == 0) && (margin || n_rows == 0));
	assert(first_tree <= end_tree && end_tree <= f->n_trees);
	if (n_threads > 1 && n_rows >= 2 * PARALLEL_MIN_ROWS) {
#pragma omp parallel num_threads(n_threads)
		{
			const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();

			add_rows(f, first_tree, end_tree, x, n_rows * id / nt,
				 n_rows * (id + 1) / nt, margin);
		}
		return;
	}
	add_rows(f, first_tree, end_tree, x, 0, n_rows, margin);
}
