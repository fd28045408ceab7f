/*
 * The semantic model as it is stored and predicted with (method_semantic, the
 * format of its blobs); pipeline/semantic.c trains it, and its header comment
 * says how the model predicts. serving/semantic_model.c holds the code.
 */
#ifndef LTV_SEMANTIC_MODEL_H
#define LTV_SEMANTIC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ltv/age_means.h"
#include "ltv/method.h"
#include "ltv/model_data.h"
#include "ltv/tfidf.h"

#define SEMANTIC_MAGIC "LTVSEMAN"
#define SEMANTIC_VERSION 2
#define SEMANTIC_BLOB "semantic"
#define SEMANTIC_MAX_HORIZONS 64

struct semantic_horizon {
	int64_t horizon;
	double global_mean;   /* mean future revenue of every training user; NaN when none */
	uint64_t n_train;
	size_t n_docs;
	struct tfidf_model *tf; /* NULL when n_docs is 0 */
	char **doc_app;       /* per document */
	double *value;        /* per document: mean future revenue */
	uint64_t *n_users;    /* per document: training users behind value */
	/*
	 * semantic.mean_by_age: per document its mean future per snapshot age
	 * (include/ltv/age_means.h; `value` where an age has too few rows), and
	 * the global mean's; NULL: `value` and global_mean at every age. A
	 * campaign's rows are of every age, whose futures fall steeply with it.
	 */
	struct age_means *by_age;
	struct age_means global_by_age;
};

/* A trained (or loaded) model: what method_semantic's state points to. */
struct semantic_state {
	size_t top_k;
	struct semantic_horizon *h;
	size_t n_h;
};

/* Frees a state and everything it owns; NULL is a no-op. */
void semantic_state_free(struct semantic_state *s);

/*
 * Blob "LTVSEMAN" version 1: u64 top_k, u64 n_horizons, then per horizon:
 * u64 horizon, f64 global mean future revenue, u64 training users, u64
 * n_docs, per document: str app, f64 value, u64 users. Document i's name is
 * document i of blob "tfidf:<horizon>" (present when n_docs > 0). Version 2
 * (written only when some horizon has means by age) adds per horizon, after
 * its documents, u32 0/1 and, when 1, the global mean's then each
 * document's means by age (age_means_put).
 */
void semantic_save(const struct semantic_state *s, uint8_t **out_buf, size_t *out_len);

/* The name of horizon's tfidf blob, "tfidf:<H>". */
void semantic_tfidf_key(int64_t horizon, char *buf, size_t size);

/*
 * rev_window + the campaign's value at horizon; leave_one_out values a
 * cohort without its own document (validation).
 */
int semantic_predict_rows(const struct semantic_state *s, const struct model_data *d,
			  const size_t *rows, size_t n, int64_t horizon, int leave_one_out,
			  double *out_ltv, struct ltv_err *err);

extern const struct method method_semantic;

#endif
