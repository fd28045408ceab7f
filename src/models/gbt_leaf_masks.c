/*
 * The leaf-mask walk of the native tree evaluator (src/models/gbt_leaf_masks.h):
 * 32 rows at once, one AVX-512 lane each (two vectors), every split of a
 * tree compared for all of them, no walk and no gather of split data
 * (QuickScorer, Lucchese et al., SIGIR 2015, done across rows).
 *
 * A tree of depth at most 6 is seen as a complete one of depth D (5, or 6
 * when a tree of the forest is that deep): its 2^D bottom positions are the
 * bits of one or two 32-bit words a row, a leaf sitting at the leftmost
 * position under it. A row starts with every bit set; each split the row
 * goes right at clears the bits of its left subtree. The leaf the row
 * reaches is then the leftmost bit left: every position left of it lies in
 * the left subtree of a split where the row went right (their last common
 * ancestor), and none of its own ancestors where the row went right has it
 * on the left. Which way a row goes is the forest's own test, slots[slot]
 * >= split on the row's slots (a NaN made +inf or -inf by the default
 * direction, gbt_forest.c's row_slots), so the leaves, and their float sum
 * in tree order, are the other walks' to the bit.
 *
 * Why: the complete layout's walk (gbt_forest.c) makes one dependent load a
 * tree and level, about 1 ns a step on this machine (18-20 cycles a row and
 * depth-6 tree); here a split is a compare and a masked AND for 16 rows
 * (bench/gbt_walks_bench.c, 1,000,000-user models: 0.24 -> 0.06 µs a row).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/common.h"

#include "gbt_leaf_masks.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_LEAF_MASKS 1
#else
#define HAVE_LEAF_MASKS 0
#endif

/*
 * A split: rows whose slot `column` (the forest's 2 * feature + default_left,
 * times LEAF_MASKS_ROWS: where its column starts in the scratch) is >= value
 * go right and keep only `keep` of their word's bits.
 */
struct mask_split {
	float value;
	uint32_t column;
	uint32_t keep;
};

/* A tree's splits: n_lo acting on word 0, then n_hi on word 1, from first on. */
struct mask_tree {
	uint32_t first, n_lo, n_hi;
};

struct leaf_masks {
	size_t n_trees, n_features;
	int depth;                 /* D: 5 (one word a row) or 6 (two) */
	float base_margin;
	struct mask_tree *trees;
	struct mask_split *splits;
	float *leaves;             /* 2^D a tree, by bottom position (0 where no leaf starts) */
};

/* A tree's splits by word while it is built, before they go into the forest's array. */
struct split_lists {
	struct mask_split *v[2];
	size_t n[2], cap[2];
};

/*
 * Node i of a tree at level `level`, position pos there: its splits into
 * lists, its leaves into leaves (the tree's 2^depth).
 */
static void add_subtree(const struct forest_node *nodes, int32_t i, int level, uint32_t pos,
			int depth, struct split_lists *lists, float *leaves)
{
	const struct forest_node *nd = &nodes[i];
	const uint32_t first = pos << (depth - level); /* leftmost bottom position under i */
	uint32_t half, word, keep;

	if (nd->left == i || level == depth) {
		leaves[first] = nd->value;
		return;
	}
	half = UINT32_C(1) << (depth - level - 1); /* positions under each child */
	word = first >> 5;
	keep = half >= 32 ? 0 : ~(((UINT32_C(1) << half) - 1) << (first & 31));
	ARRAY_GROW(lists->v[word], lists->n[word] + 1, lists->cap[word]);
	lists->v[word][lists->n[word]++] =
		(struct mask_split){ nd->value, nd->slot * LEAF_MASKS_ROWS, keep };
	add_subtree(nodes, nd->left, level + 1, 2 * pos, depth, lists, leaves);
	add_subtree(nodes, nd->right, level + 1, 2 * pos + 1, depth, lists, leaves);
}

static int cpu_has_leaf_masks(void)
{
#if HAVE_LEAF_MASKS
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd");
#else
	return 0;
#endif
}

struct leaf_masks *leaf_masks_new(const struct forest_node *nodes, const size_t *root,
				  const int *depth, size_t n_trees, size_t n_features,
				  float base_margin)
{
	struct leaf_masks *lm;
	struct split_lists lists = { 0 };
	size_t n_splits = 0, cap_splits = 0;
	int deepest = 0;

	if (n_trees == 0 || n_trees > UINT32_MAX / 64 ||
	    n_features > UINT32_MAX / 2 / LEAF_MASKS_ROWS || !cpu_has_leaf_masks())
		return NULL;
	for (size_t t = 0; t < n_trees; t++)
		deepest = depth[t] > deepest ? depth[t] : deepest;
	if (deepest > LEAF_MASKS_MAX_DEPTH)
		return NULL;
	lm = xcalloc(1, sizeof(*lm));
	lm->n_trees = n_trees;
	lm->n_features = n_features;
	lm->depth = deepest > 5 ? 6 : 5;
	lm->base_margin = base_margin;
	lm->trees = xcalloc(n_trees, sizeof(*lm->trees));
	lm->leaves = xcalloc(n_trees << lm->depth, sizeof(float));
	for (size_t t = 0; t < n_trees; t++) {
		struct mask_tree *tr = &lm->trees[t];

		lists.n[0] = lists.n[1] = 0;
		add_subtree(nodes, (int32_t)root[t], 0, 0, lm->depth, &lists,
			    lm->leaves + (t << lm->depth));
		ARRAY_GROW(lm->splits, n_splits + lists.n[0] + lists.n[1], cap_splits);
		tr->first = (uint32_t)n_splits;
		tr->n_lo = (uint32_t)lists.n[0];
		tr->n_hi = (uint32_t)lists.n[1];
		for (int w = 0; w < 2; w++)
			for (size_t k = 0; k < lists.n[w]; k++)
				lm->splits[n_splits++] = lists.v[w][k];
	}
	free(lists.v[0]);
	free(lists.v[1]);
	return lm;
}

void leaf_masks_free(struct leaf_masks *lm)
{
	if (!lm)
		return;
	free(lm->trees);
	free(lm->splits);
	free(lm->leaves);
	free(lm);
}

float *leaf_masks_scratch_new(const struct leaf_masks *lm)
{
	void *p = NULL;
	const size_t bytes = (2 * lm->n_features + 1) * LEAF_MASKS_ROWS * sizeof(float);

	if (posix_memalign(&p, 64, bytes) != 0)
		die_oom(bytes);
	return p;
}

#if HAVE_LEAF_MASKS
#define TARGET __attribute__((target("avx512f,avx512cd")))
/* Vectors of 16 lanes a block of LEAF_MASKS_ROWS rows takes. */
#define HALVES (LEAF_MASKS_ROWS / 16)

/*
 * The rows' slots as columns: cols[LEAF_MASKS_ROWS * s + r] is slot s of row
 * r (gbt_forest.c's row_slots, transposed); rows past n_rows read as 0.
 */
TARGET static void slot_columns(const float *x, size_t n_rows, size_t n_features, float *cols)
{
	const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	const __m512 inf = _mm512_set1_ps(__builtin_inff()), ninf = _mm512_set1_ps(-__builtin_inff());

	for (int h = 0; h < HALVES; h++) {
		const size_t first = 16 * (size_t)h, n = n_rows > first ? n_rows - first : 0;
		const __mmask16 lanes = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1);
		const __m512i at = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)n_features));

		for (size_t j = 0; j < n_features; j++) {
			const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, at,
								  x + first * n_features + j, 4);
			const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
			float *col = cols + 2 * LEAF_MASKS_ROWS * j + first;

			_mm512_store_ps(col, _mm512_mask_blend_ps(nan, v, inf));
			_mm512_store_ps(col + LEAF_MASKS_ROWS, _mm512_mask_blend_ps(nan, v, ninf));
		}
	}
}

/*
 * Clears, in each row's word (w[h]: rows 16h..16h+15), the bits of the
 * splits' left subtrees where the row goes right. A split's constants are
 * loaded once for all the block's rows.
 */
TARGET static inline void apply_splits(const struct mask_split *s, const struct mask_split *end,
				       const float *cols, __m512i *w)
{
	for (; s < end; s++) {
		const __m512 value = _mm512_set1_ps(s->value);
		const __m512i keep = _mm512_set1_epi32((int)s->keep);
		const float *col = cols + s->column;

		for (int h = 0; h < HALVES; h++) {
			const __mmask16 right = _mm512_cmp_ps_mask(_mm512_load_ps(col + 16 * h), value,
								   _CMP_GE_OQ);

			w[h] = _mm512_mask_and_epi32(w[h], right, w[h], keep);
		}
	}
}

/* Each lane's lowest set bit's index (the word is never 0 where it is read). */
TARGET static inline __m512i lowest_bit(__m512i w)
{
	const __m512i low = _mm512_and_si512(w, _mm512_sub_epi32(_mm512_setzero_si512(), w));

	return _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(low));
}

/* The leaf of a tree (leaves: its 2^depth) each row of 16 reaches, from its words lo and hi. */
TARGET static inline __m512 leaf_of(const float *leaves, int depth, __m512i lo, __m512i hi)
{
	__mmask16 in_lo;
	__m512i bit;

	if (depth == 5)
		return _mm512_permutex2var_ps(_mm512_loadu_ps(leaves), lowest_bit(lo),
					      _mm512_loadu_ps(leaves + 16));
	in_lo = _mm512_test_epi32_mask(lo, lo);
	bit = lowest_bit(_mm512_mask_blend_epi32(in_lo, hi, lo));
	return _mm512_mask_blend_ps(in_lo,
				    _mm512_permutex2var_ps(_mm512_loadu_ps(leaves + 32), bit,
							   _mm512_loadu_ps(leaves + 48)),
				    _mm512_permutex2var_ps(_mm512_loadu_ps(leaves), bit,
							   _mm512_loadu_ps(leaves + 16)));
}

TARGET void leaf_masks_margins(const struct leaf_masks *lm, const float *x, size_t n_rows,
			       float *scratch, float *out_margin)
{
	__m512 sum[HALVES];
	float margins[LEAF_MASKS_ROWS];

	assert(n_rows >= 1 && n_rows <= LEAF_MASKS_ROWS);
	slot_columns(x, n_rows, lm->n_features, scratch);
	for (int h = 0; h < HALVES; h++)
		sum[h] = _mm512_set1_ps(lm->base_margin);
	for (size_t t = 0; t < lm->n_trees; t++) {
		const struct mask_tree *tr = &lm->trees[t];
		const struct mask_split *s = lm->splits + tr->first;
		__m512i lo[HALVES], hi[HALVES];

		for (int h = 0; h < HALVES; h++)
			lo[h] = hi[h] = _mm512_set1_epi32(-1);
		apply_splits(s, s + tr->n_lo, scratch, lo);
		apply_splits(s + tr->n_lo, s + tr->n_lo + tr->n_hi, scratch, hi);
		for (int h = 0; h < HALVES; h++)
			sum[h] = _mm512_add_ps(sum[h], leaf_of(lm->leaves + (t << lm->depth), lm->depth,
								lo[h], hi[h]));
	}
	for (int h = 0; h < HALVES; h++)
		_mm512_storeu_ps(margins + 16 * h, sum[h]);
	memcpy(out_margin, margins, n_rows * sizeof(float));
}
#else
void leaf_masks_margins(const struct leaf_masks *lm, const float *x, size_t n_rows,
			float *scratch, float *out_margin)
{
	(void)lm, (void)x, (void)n_rows, (void)scratch, (void)out_margin;
	assert(!"leaf_masks_new returns NULL without AVX-512");
}
#endif
