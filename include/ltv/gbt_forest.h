/*
 * A native evaluator for the tree ensembles gbt.c trains with XGBoost, so
 * that prediction costs tree walks only. XGBoost's own prediction call costs
 * about 180 µs however few the rows (1.7 re-reads the cgroup CPU quota and
 * parses a JSON configuration on every call), and a served user needs about
 * 18 of them (bench/gbt_forest_bench.c).
 *
 * The forest is read from the model's JSON body (XGBoosterSaveModelToBuffer)
 * and predicts as XGBoost 1.7's CPU predictor does, bit for bit: the base
 * margin from base_score as the objective maps it (ProbToMargin), each tree's
 * leaf added in float in tree order, a missing (NaN) value following the
 * node's default direction and any other going left when value < split
 * condition, then the objective's transform in float. gbt.c checks that on
 * probe rows against XGBoost itself before using a forest, and keeps
 * XGBoost for a model whose forest disagrees; tests/unit/test_gbt_forest.c
 * checks it on trained models.
 *
 * A forest whose trees are at most GBT_FOREST_COMPLETE_MAX_DEPTH deep (the
 * configured depths are 4 and 6) is laid out as complete binary trees, 16
 * trees interleaved level by level, and a row's NaN is turned into an
 * infinity per default direction, so a step is one float comparison and
 * computes the child's position (gbt_forest.c); a deeper one walks its node
 * array, the same numbers either way.
 *
 * Only what gbt.c trains is read: one output group, numerical splits, the
 * objectives binary:logistic, reg:squarederror, reg:gamma and reg:tweedie.
 * Pure model code: arrays in, numbers out. A forest is immutable once built,
 * so any number of threads may predict with it at once.
 */
#ifndef LTV_GBT_FOREST_H
#define LTV_GBT_FOREST_H

#include <stddef.h>

#include "ltv/common.h"

struct gbt_forest;

/* The deepest trees laid out as complete binary trees (deeper: the node walk). */
#define GBT_FOREST_COMPLETE_MAX_DEPTH 10

/*
 * The ways a forest can walk its trees, each giving the same numbers: the
 * node array (any depth), the complete layout (up to
 * GBT_FOREST_COMPLETE_MAX_DEPTH), the leaf masks (up to 6 deep, on a CPU
 * with AVX-512: 32 rows at once, src/models/gbt_leaf_masks.c). A new forest
 * takes the last of these it can; calls of a few rows keep to the complete
 * layout, which costs less for them.
 */
enum gbt_forest_walk {
	GBT_FOREST_WALK_NODES,
	GBT_FOREST_WALK_COMPLETE,
	GBT_FOREST_WALK_LEAF_MASKS,
};

/*
 * Builds a forest from an XGBoost JSON model body of len bytes (not
 * NUL-terminated) with n_features features. Returns 0 with *out_forest (the
 * caller frees it with gbt_forest_free), or LTV_EINVAL naming what the body
 * has that this evaluator does not read (then use XGBoost).
 */
int gbt_forest_from_json(const char *json, size_t len, size_t n_features,
			 struct gbt_forest **out_forest, struct ltv_err *err);
void gbt_forest_free(struct gbt_forest *f);

/* The walk f's predictions take. */
enum gbt_forest_walk gbt_forest_walk(const struct gbt_forest *f);
/*
 * Makes f's predictions take walk: 0, or -1 (f unchanged) when f cannot
 * walk that way (too deep, or no AVX-512). For tests and benchmarks, which
 * compare the walks; not while another thread predicts with f.
 */
int gbt_forest_use_walk(struct gbt_forest *f, enum gbt_forest_walk walk);

/*
 * Predicts n_rows rows of x (row-major, n_features each, NaN missing) into
 * out_pred[n_rows]: the transformed prediction, or the raw margin when
 * margin is set. Uses up to n_threads threads for large inputs (the result
 * does not depend on it).
 */
void gbt_forest_predict(const struct gbt_forest *f, const float *x, size_t n_rows, int margin,
			int n_threads, double *out_pred);

/*
 * A bound on the absolute margin of any row, in the float sum the walk makes
 * (base margin, then each tree's leaf): the base's plus each tree's largest
 * leaf's, widened for the rounding of every addition. INFINITY when a leaf
 * or the base is not finite.
 */
double gbt_forest_margin_bound(const struct gbt_forest *f);

/*
 * Adds the leaf of trees first_tree..end_tree-1 for each of n_rows rows of x
 * to margin[row], in float, tree after tree in order: what XGBoost 1.7's CPU
 * predictor does to a cached prediction when trees are added (a fit's
 * validation rows after a round). Walks the node arrays on the rows as they
 * are (no copy of a row), which suits few trees over many rows. Up to
 * n_threads threads for large inputs; the margins do not depend on it.
 */
void gbt_forest_add_to_margins(const struct gbt_forest *f, size_t first_tree, size_t end_tree,
			       const float *x, size_t n_rows, float *margin, int n_threads);
/* The margin before any tree: base_score as the objective maps it (ProbToMargin). */
float gbt_forest_base_margin(const struct gbt_forest *f);
/* XGBoost 1.7's common::Sigmoid in float: binary:logistic's transform of a margin. */
float gbt_forest_sigmoid(float x);

size_t gbt_forest_n_trees(const struct gbt_forest *f);
size_t gbt_forest_n_features(const struct gbt_forest *f);
/* The longest root-to-leaf path of any tree, in splits. */
int gbt_forest_max_depth(const struct gbt_forest *f);
/* Each feature's split thresholds, sorted and unique (for probe rows); borrowed. */
const float *gbt_forest_thresholds(const struct gbt_forest *f, size_t feature, size_t *out_n);

#endif
