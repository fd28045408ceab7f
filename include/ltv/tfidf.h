/*
 * TF-IDF over campaign names for the semantic stage: a campaign with no
 * history is worth the cosine-weighted mean of the values of the known
 * campaigns whose names are most like its own.
 *
 * Tokens: a name is split at every ASCII character that is not a letter or
 * digit (so at '_', '-', '.', space, ...) and where a lowercase letter is
 * followed by an uppercase one (camelCase: "fbUsIos" -> fb, us, ios), then
 * lowercased. The camelCase split is skipped when the word so far is a single
 * lowercase letter, so "iOS", "iPhone" and "eCPM" stay whole words. Bytes
 * >= 0x80 (UTF-8) are word characters. Digits stay attached ("q3", "2024").
 * With char_ngram = n, the character n-grams (over bytes) of each word padded
 * as "<word>" are terms too, marked with a leading '#' so a gram never equals
 * a word ("us" -> "#<us", "#us>" for n = 3); a padded word shorter than n
 * adds none.
 *
 * Weights: tf = the term's count in the name; idf = ln((1 + n_docs) / (1 +
 * df)) + 1 (smoothed, as scikit-learn); vectors are L2-normalised. A query
 * term not in the vocabulary has df 0: it adds to the query's norm (so a name
 * with extra unknown words is less than identical) but matches nothing.
 */
#ifndef LTV_TFIDF_H
#define LTV_TFIDF_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/common.h"

struct tfidf_param {
	int char_ngram; /* 0: words only (default); 2..8: also character n-grams of that length */
};

/* Opaque: read it through the accessors below. */
struct tfidf_model;

/* Defaults: char_ngram 0. */
void tfidf_param_init(struct tfidf_param *p);
/* NULL when p is usable, else a static string saying which field is wrong. */
const char *tfidf_param_check(const struct tfidf_param *p);

/*
 * Splits name into terms (words in order of appearance, then n-grams when
 * enabled; repeats kept). *out_terms is a new array of new strings; free it
 * with tfidf_terms_free(*out_terms, *out_n). An empty name gives 0 terms.
 */
void tfidf_tokenize(const struct tfidf_param *p, const char *name, char ***out_terms,
		    size_t *out_n);
/* Frees an array from tfidf_tokenize; accepts NULL. */
void tfidf_terms_free(char **terms, size_t n);

/*
 * Builds the vocabulary and document vectors from the names of the n_docs
 * known campaigns (n_docs >= 1; names copied; duplicates are separate
 * documents; a name with no terms is a zero vector, similar to nothing).
 * Document i is names[i] everywhere below. *out_model is new; free with
 * tfidf_free.
 */
int tfidf_fit(const struct tfidf_param *p, const char *const *names, size_t n_docs,
	      struct tfidf_model **out_model, struct ltv_err *err);

size_t tfidf_n_docs(const struct tfidf_model *m);
size_t tfidf_n_terms(const struct tfidf_model *m);
/* Name of document doc (< n_docs), borrowed from m. */
const char *tfidf_doc_name(const struct tfidf_model *m, size_t doc);
/* The idf of a vocabulary term, or 0 when term is not in the vocabulary. */
double tfidf_idf(const struct tfidf_model *m, const char *term);

/*
 * The (at most) k known documents most similar to name by cosine, best
 * first, ties by lower index. Only documents with similarity > 0 (at least
 * one shared term) are returned: *out_n <= k, and 0 when name shares no term.
 * out_idx and out_sim hold k values each, caller allocated.
 */
void tfidf_top_k(const struct tfidf_model *m, const char *name, size_t k, size_t *out_idx,
		 double *out_sim, size_t *out_n);

/*
 * Cosine-weighted mean of doc_values (n_docs finite values, borrowed) over
 * the top-k documents for name: sum(sim * value) / sum(sim). When name
 * shares no term with any known document (or k is 0), *out_value is fallback
 * (the caller passes the global mean).
 */
void tfidf_predict_value(const struct tfidf_model *m, const char *name, size_t k,
			 const double *doc_values, double fallback, double *out_value);

/*
 * Serialises m (blob "LTVTFIDF" version 1: u32 char_ngram, u64 n_docs, doc
 * names, u64 n_terms, terms in byte order, f64 array idf, u64 array row
 * offsets, u64 nnz then nnz u32 term ids, f64 array weights). *out_buf is
 * malloc'd; the caller frees it.
 */
void tfidf_save(const struct tfidf_model *m, uint8_t **out_buf, size_t *out_len);
/* Reads a blob written by tfidf_save (borrowed); *out_model is new, free with tfidf_free. */
int tfidf_load(const void *buf, size_t len, struct tfidf_model **out_model,
	       struct ltv_err *err);
/* Frees m and everything it owns; accepts NULL. */
void tfidf_free(struct tfidf_model *m);

#endif
