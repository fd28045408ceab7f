/*
 * What src/models/gbt_forest.c and src/models/gbt_leaf_masks.c share and
 * nobody else may see: a tree node as the forest reads it, and the leaf-mask
 * walk, which predicts 32 rows at a time with AVX-512 where the CPU has it
 * (the contract every walk keeps is include/ltv/gbt_forest.h's: XGBoost's
 * numbers to the bit).
 */
#ifndef LTV_GBT_LEAF_MASKS_H
#define LTV_GBT_LEAF_MASKS_H

#include <stddef.h>
#include <stdint.h>

/*
 * A node of a tree as read. A leaf points to itself both ways, so a walk
 * that has reached it may take more steps and stay: trees of one group are
 * walked the group's depth of steps without a test per tree.
 */
struct forest_node {
	float value;       /* split condition, or leaf value */
	uint32_t slot;     /* 2 * feature + default_left: where in a row's slots its value is */
	int32_t left;      /* indices in the forest's node array */
	int32_t right;
};

/* The deepest trees the leaf-mask walk takes (64 leaves: two 32-bit words a row). */
#define LEAF_MASKS_MAX_DEPTH 6
/*
 * Rows a call of leaf_masks_margins predicts at most: two AVX-512 vectors of
 * floats, so that a split's constants are loaded once for both
 * (bench/gbt_walks_bench.c: 0.057 µs a row with one vector).
 */
#define LEAF_MASKS_ROWS 32

struct leaf_masks;

/*
 * The leaf-mask layout of n_trees trees (tree t's root node root[t] of
 * nodes, depth[t] splits deep) over n_features features, with the forest's
 * base margin. NULL when the CPU has no AVX-512 (F and CD), a tree is deeper
 * than LEAF_MASKS_MAX_DEPTH or there are no trees: then the caller walks the
 * trees itself. Freed with leaf_masks_free (NULL accepted).
 */
struct leaf_masks *leaf_masks_new(const struct forest_node *nodes, const size_t *root,
				  const int *depth, size_t n_trees, size_t n_features,
				  float base_margin);
void leaf_masks_free(struct leaf_masks *lm);

/*
 * Scratch for leaf_masks_margins, one per thread: 2 * n_features columns of
 * LEAF_MASKS_ROWS floats, 64-byte aligned. Freed with free().
 */
float *leaf_masks_scratch_new(const struct leaf_masks *lm);

/*
 * The margins of n_rows rows (at most LEAF_MASKS_ROWS) of x, row-major with
 * the forest's n_features each, NaN missing: the base margin plus each
 * tree's leaf, added in float in tree order, as XGBoost does.
 */
void leaf_masks_margins(const struct leaf_masks *lm, const float *x, size_t n_rows,
			float *scratch, float *out_margin);

#endif
