/*
 * TF-IDF similarity between campaign names (tokenisation and weighting are
 * specified in include/ltv/tfidf.h). Known documents are kept twice: by row
 * (CSR, what is saved) and by term (postings, rebuilt on load), so a query
 * only touches the documents that share one of its terms. The vocabulary is
 * sorted by bytes, which makes term ids, and so every result, independent of
 * the order names arrive in beyond the document index used for tie-breaks.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/blob.h"
#include "ltv/tfidf.h"

#define TFIDF_MAGIC "LTVTFIDF"
#define TFIDF_VERSION 1
#define TFIDF_NGRAM_MAX 8

struct tfidf_model {
	struct tfidf_param param;
	size_t n_docs;
	size_t n_terms;
	char **names;       /* n_docs, owned */
	char **terms;       /* n_terms, strictly ascending by strcmp, owned */
	double *idf;        /* n_terms */
	size_t *row_ptr;    /* n_docs + 1: document i is col/val[row_ptr[i] .. row_ptr[i+1]) */
	uint32_t *col;      /* term ids, ascending within a document */
	double *val;        /* L2-normalised weights */
	size_t *post_ptr;   /* n_terms + 1: postings of term t */
	uint32_t *post_doc; /* documents, ascending within a term */
	double *post_val;
};

struct term_list {
	char **v;
	size_t n;
	size_t cap;
};

static void term_push(struct term_list *l, char *s)
{
	ARRAY_GROW(l->v, l->n + 1, l->cap);
	l->v[l->n++] = s;
}

/* ASCII classes by hand: the C locale functions depend on setlocale. */
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }

static int is_word_byte(unsigned char c)
{
	return c >= 0x80 || is_upper(c) || is_lower(c) || (c >= '0' && c <= '9');
}

void tfidf_param_init(struct tfidf_param *p)
{
	p->char_ngram = 0;
}

const char *tfidf_param_check(const struct tfidf_param *p)
{
	if (p->char_ngram != 0 && (p->char_ngram < 2 || p->char_ngram > TFIDF_NGRAM_MAX))
		return "char_ngram must be 0 (off) or between 2 and 8";
	return NULL;
}

static void flush_word(struct term_list *l, const char *word, size_t *len)
{
	if (*len)
		term_push(l, xstrndup(word, *len));
	*len = 0;
}

void tfidf_tokenize(const struct tfidf_param *p, const char *name, char ***out_terms,
		    size_t *out_n)
{
	struct term_list l = { NULL, 0, 0 };
	const size_t len = strlen(name);
	char *word = xmalloc(len + 4);
	size_t wl = 0;
	int prev_lower = 0;

	assert(p && name);
	for (size_t i = 0; i < len; i++) {
		const unsigned char c = (unsigned char)name[i];

		if (!is_word_byte(c)) {
			flush_word(&l, word, &wl);
			prev_lower = 0;
			continue;
		}
		if (is_upper(c) && prev_lower && wl >= 2)
			flush_word(&l, word, &wl);
		word[wl++] = is_upper(c) ? (char)(c - 'A' + 'a') : (char)c;
		prev_lower = is_lower(c);
	}
	flush_word(&l, word, &wl);

	if (p->char_ngram) {
		const size_t n = (size_t)p->char_ngram;
		const size_t n_words = l.n;

		for (size_t w = 0; w < n_words; w++) {
			const size_t wlen = strlen(l.v[w]);

			if (wlen + 2 < n)
				continue;
			/* '#' keeps the gram "sum" of "<summer>" apart from a word "sum". */
			word[0] = '#';
			word[1] = '<';
			memcpy(word + 2, l.v[w], wlen);
			word[wlen + 2] = '>';
			for (size_t i = 1; i + n <= wlen + 3; i++) {
				char *gram = xmalloc(n + 2);
				gram[0] = '#';
				memcpy(gram + 1, word + i, n);
				gram[n + 1] = '\0';
				term_push(&l, gram);
			}
		}
	}
	free(word);
	*out_terms = l.v;
	*out_n = l.n;
}

void tfidf_terms_free(char **terms, size_t n)
{
	if (!terms)
		return;
	for (size_t i = 0; i < n; i++)
		free(terms[i]);
	free(terms);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_u32(const void *a, const void *b)
{
	const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Term id, or -1 when term is not in the vocabulary. */
static long term_id(const struct tfidf_model *m, const char *term)
{
	size_t lo = 0, hi = m->n_terms;

	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;
		const int c = strcmp(m->terms[mid], term);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Derives the per-term postings from the per-document rows. */
static void build_postings(struct tfidf_model *m)
{
	const size_t nnz = m->row_ptr[m->n_docs];
	size_t *fill;

	m->post_ptr = xcalloc(m->n_terms + 1, sizeof(size_t));
	m->post_doc = xmalloc((nnz ? nnz : 1) * sizeof(uint32_t));
	m->post_val = xmalloc((nnz ? nnz : 1) * sizeof(double));
	for (size_t t = 0; t < nnz; t++)
		m->post_ptr[m->col[t] + 1]++;
	for (size_t t = 0; t < m->n_terms; t++)
		m->post_ptr[t + 1] += m->post_ptr[t];
	fill = xmalloc((m->n_terms ? m->n_terms : 1) * sizeof(size_t));
	memcpy(fill, m->post_ptr, m->n_terms * sizeof(size_t));
	for (size_t doc = 0; doc < m->n_docs; doc++)
		for (size_t t = m->row_ptr[doc]; t < m->row_ptr[doc + 1]; t++) {
			const size_t at = fill[m->col[t]]++;
			m->post_doc[at] = (uint32_t)doc;
			m->post_val[at] = m->val[t];
		}
	free(fill);
}

int tfidf_fit(const struct tfidf_param *p, const char *const *names, size_t n_docs,
	      struct tfidf_model **out_model, struct ltv_err *err)
{
	struct tfidf_model *m = NULL;
	char ***doc_terms = NULL;
	size_t *doc_n = NULL;
	char **all = NULL;
	uint32_t *ids = NULL;
	size_t *df = NULL;
	size_t n_all = 0, nnz_cap = 0, nnz = 0;
	const char *why;
	int ret = 0;

	assert(p && out_model);
	*out_model = NULL;
	why = tfidf_param_check(p);
	if (why)
		return err_set(err, LTV_EINVAL, "tfidf: %s", why);
	if (n_docs == 0)
		return err_set(err, LTV_EINVAL, "tfidf: no known campaign names to build a vocabulary from");
	if (n_docs >= UINT32_MAX)
		return err_set(err, LTV_EINVAL, "tfidf: %zu campaign names is more than supported", n_docs);
	for (size_t i = 0; i < n_docs; i++)
		if (!names[i])
			return err_set(err, LTV_EINVAL, "tfidf: campaign name %zu is missing", i);

	doc_terms = xcalloc(n_docs, sizeof(*doc_terms));
	doc_n = xcalloc(n_docs, sizeof(size_t));
	for (size_t i = 0; i < n_docs; i++) {
		tfidf_tokenize(p, names[i], &doc_terms[i], &doc_n[i]);
		n_all += doc_n[i];
	}

	m = xcalloc(1, sizeof(*m));
	m->param = *p;
	m->n_docs = n_docs;
	m->names = xcalloc(n_docs, sizeof(char *));
	for (size_t i = 0; i < n_docs; i++)
		m->names[i] = xstrdup(names[i]);

	/* Vocabulary: every distinct term, sorted by bytes. */
	all = xmalloc((n_all ? n_all : 1) * sizeof(char *));
	n_all = 0;
	for (size_t i = 0; i < n_docs; i++)
		for (size_t t = 0; t < doc_n[i]; t++)
			all[n_all++] = doc_terms[i][t];
	qsort(all, n_all, sizeof(char *), cmp_strp);
	m->terms = xmalloc((n_all ? n_all : 1) * sizeof(char *));
	for (size_t t = 0; t < n_all; t++)
		if (t == 0 || strcmp(all[t], all[t - 1]) != 0)
			m->terms[m->n_terms++] = xstrdup(all[t]);
	if (m->n_terms >= UINT32_MAX) {
		ret = err_set(err, LTV_EINVAL, "tfidf: vocabulary of %zu terms is more than supported",
			      m->n_terms);
		goto out;
	}

	/* Rows hold raw counts first; idf is known only once every row is seen. */
	df = xcalloc(m->n_terms ? m->n_terms : 1, sizeof(size_t));
	m->row_ptr = xcalloc(n_docs + 1, sizeof(size_t));
	for (size_t i = 0; i < n_docs; i++) {
		ids = xrealloc(ids, (doc_n[i] ? doc_n[i] : 1) * sizeof(uint32_t));
		for (size_t t = 0; t < doc_n[i]; t++)
			ids[t] = (uint32_t)term_id(m, doc_terms[i][t]);
		qsort(ids, doc_n[i], sizeof(uint32_t), cmp_u32);
		for (size_t t = 0; t < doc_n[i];) {
			size_t run = 1;
			while (t + run < doc_n[i] && ids[t + run] == ids[t])
				run++;
			const size_t old_cap = nnz_cap;

			ARRAY_GROW(m->col, nnz + 1, nnz_cap);
			if (nnz_cap != old_cap)
				m->val = xrealloc(m->val, nnz_cap * sizeof(double));
			m->col[nnz] = ids[t];
			m->val[nnz] = (double)run;
			nnz++;
			df[ids[t]]++;
			t += run;
		}
		m->row_ptr[i + 1] = nnz;
	}
	if (!m->col) {
		m->col = xmalloc(sizeof(uint32_t));
		m->val = xmalloc(sizeof(double));
	}
	m->idf = xmalloc((m->n_terms ? m->n_terms : 1) * sizeof(double));
	for (size_t t = 0; t < m->n_terms; t++)
		m->idf[t] = log((1.0 + (double)n_docs) / (1.0 + (double)df[t])) + 1.0;
	for (size_t i = 0; i < n_docs; i++) {
		double norm = 0.0;

		for (size_t t = m->row_ptr[i]; t < m->row_ptr[i + 1]; t++) {
			m->val[t] *= m->idf[m->col[t]];
			norm += m->val[t] * m->val[t];
		}
		norm = sqrt(norm);
		for (size_t t = m->row_ptr[i]; t < m->row_ptr[i + 1]; t++)
			m->val[t] /= norm;
	}
	build_postings(m);
	*out_model = m;
	m = NULL;
out:
	tfidf_free(m);
	free(df);
	free(ids);
	free(all);
	for (size_t i = 0; i < n_docs; i++)
		tfidf_terms_free(doc_terms[i], doc_n[i]);
	free(doc_terms);
	free(doc_n);
	return ret;
}

size_t tfidf_n_docs(const struct tfidf_model *m) { return m->n_docs; }
size_t tfidf_n_terms(const struct tfidf_model *m) { return m->n_terms; }

const char *tfidf_doc_name(const struct tfidf_model *m, size_t doc)
{
	assert(doc < m->n_docs);
	return m->names[doc];
}

double tfidf_idf(const struct tfidf_model *m, const char *term)
{
	const long id = term_id(m, term);

	return id < 0 ? 0.0 : m->idf[id];
}

/*
 * Cosine of name against every document into scores (n_docs, zeroed here).
 * Returns 1 when name shares at least one term with the vocabulary.
 */
static int score_docs(const struct tfidf_model *m, const char *name, double *scores)
{
	const double idf_unseen = log(1.0 + (double)m->n_docs) + 1.0;
	char **terms = NULL;
	size_t n_terms = 0, n_known = 0;
	uint32_t *ids;
	double *w, norm = 0.0;

	memset(scores, 0, m->n_docs * sizeof(double));
	tfidf_tokenize(&m->param, name, &terms, &n_terms);
	if (n_terms > 1)
		qsort(terms, n_terms, sizeof(char *), cmp_strp);
	ids = xmalloc((n_terms ? n_terms : 1) * sizeof(uint32_t));
	w = xmalloc((n_terms ? n_terms : 1) * sizeof(double));
	for (size_t t = 0; t < n_terms;) {
		size_t run = 1;
		long id;
		double wt;

		while (t + run < n_terms && strcmp(terms[t + run], terms[t]) == 0)
			run++;
		id = term_id(m, terms[t]);
		wt = (double)run * (id < 0 ? idf_unseen : m->idf[id]);
		norm += wt * wt;
		if (id >= 0) {
			ids[n_known] = (uint32_t)id;
			w[n_known++] = wt;
		}
		t += run;
	}
	norm = sqrt(norm);
	/* Terms and vocabulary sort alike, so ids ascend: a fixed summation order. */
	for (size_t q = 0; q < n_known; q++) {
		const double qw = w[q] / norm;

		for (size_t t = m->post_ptr[ids[q]]; t < m->post_ptr[ids[q] + 1]; t++)
			scores[m->post_doc[t]] += qw * m->post_val[t];
	}
	free(w);
	free(ids);
	tfidf_terms_free(terms, n_terms);
	return n_known > 0;
}

struct cand {
	size_t idx;
	double sim;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->sim != y->sim)
		return x->sim > y->sim ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

void tfidf_top_k(const struct tfidf_model *m, const char *name, size_t k, size_t *out_idx,
		 double *out_sim, size_t *out_n)
{
	double *scores;
	struct cand *c;
	size_t n_cand = 0;

	assert(m && name && out_n && (k == 0 || (out_idx && out_sim)));
	*out_n = 0;
	if (k == 0)
		return;
	scores = xmalloc(m->n_docs * sizeof(double));
	if (!score_docs(m, name, scores)) {
		free(scores);
		return;
	}
	c = xmalloc(m->n_docs * sizeof(*c));
	for (size_t i = 0; i < m->n_docs; i++)
		if (scores[i] > 0.0) {
			c[n_cand].idx = i;
			/* A document against itself may sum to 1 + 1 ulp. */
			c[n_cand].sim = scores[i] < 1.0 ? scores[i] : 1.0;
			n_cand++;
		}
	qsort(c, n_cand, sizeof(*c), cmp_cand);
	if (k > n_cand)
		k = n_cand;
	for (size_t i = 0; i < k; i++) {
		out_idx[i] = c[i].idx;
		out_sim[i] = c[i].sim;
	}
	*out_n = k;
	free(c);
	free(scores);
}

void tfidf_predict_value(const struct tfidf_model *m, const char *name, size_t k,
			 const double *doc_values, double fallback, double *out_value)
{
	size_t *idx, n = 0;
	double *sim, num = 0.0, den = 0.0;

	assert(m && name && doc_values && out_value);
	if (k > m->n_docs)
		k = m->n_docs;
	idx = xmalloc((k ? k : 1) * sizeof(size_t));
	sim = xmalloc((k ? k : 1) * sizeof(double));
	tfidf_top_k(m, name, k, idx, sim, &n);
	for (size_t i = 0; i < n; i++) {
		num += sim[i] * doc_values[idx[i]];
		den += sim[i];
	}
	*out_value = n ? num / den : fallback;
	free(sim);
	free(idx);
}

void tfidf_save(const struct tfidf_model *m, uint8_t **out_buf, size_t *out_len)
{
	const size_t nnz = m->row_ptr[m->n_docs];
	struct blob_writer w;

	blob_writer_init(&w);
	blob_put_header(&w, TFIDF_MAGIC, TFIDF_VERSION);
	blob_put_u32(&w, (uint32_t)m->param.char_ngram);
	blob_put_u64(&w, m->n_docs);
	for (size_t i = 0; i < m->n_docs; i++)
		blob_put_str(&w, m->names[i]);
	blob_put_u64(&w, m->n_terms);
	for (size_t t = 0; t < m->n_terms; t++)
		blob_put_str(&w, m->terms[t]);
	blob_put_f64_array(&w, m->idf, m->n_terms);
	blob_put_u64(&w, m->n_docs + 1);
	for (size_t i = 0; i <= m->n_docs; i++)
		blob_put_u64(&w, m->row_ptr[i]);
	blob_put_u64(&w, nnz);
	for (size_t t = 0; t < nnz; t++)
		blob_put_u32(&w, m->col[t]);
	blob_put_f64_array(&w, m->val, nnz);
	*out_buf = blob_writer_detach(&w, out_len);
}

/* A count read from a blob is believable only if that many items of min_size could follow. */
static int count_fits(const struct blob_reader *r, uint64_t count, size_t min_size)
{
	return !r->failed && count <= (r->len - r->pos) / min_size;
}

static int load_body(struct blob_reader *r, struct tfidf_model *m, struct ltv_err *err)
{
	uint64_t n_docs, n_terms, n_rows, nnz;
	size_t n_idf = 0, n_val = 0;

	m->param.char_ngram = (int)blob_get_u32(r);
	n_docs = blob_get_u64(r);
	if (!count_fits(r, n_docs, 4) || n_docs == 0 || n_docs >= UINT32_MAX)
		return err_set(err, LTV_EINVAL, "tfidf: blob document count is invalid");
	m->names = xcalloc((size_t)n_docs, sizeof(char *));
	m->n_docs = (size_t)n_docs;
	for (size_t i = 0; i < m->n_docs; i++)
		if (!(m->names[i] = blob_get_str(r)))
			return blob_reader_status(r, "tfidf", err);
	n_terms = blob_get_u64(r);
	if (!count_fits(r, n_terms, 4) || n_terms >= UINT32_MAX)
		return err_set(err, LTV_EINVAL, "tfidf: blob term count is invalid");
	m->terms = xcalloc(n_terms ? (size_t)n_terms : 1, sizeof(char *));
	for (size_t t = 0; t < n_terms; t++) {
		if (!(m->terms[t] = blob_get_str(r)))
			return blob_reader_status(r, "tfidf", err);
		m->n_terms = t + 1;
		if (t > 0 && strcmp(m->terms[t - 1], m->terms[t]) >= 0)
			return err_set(err, LTV_EINVAL, "tfidf: blob vocabulary is not sorted at term %zu", t);
	}
	if (blob_get_f64_array(r, &m->idf, &n_idf) < 0)
		return blob_reader_status(r, "tfidf", err);
	if (n_idf != m->n_terms)
		return err_set(err, LTV_EINVAL, "tfidf: blob has %zu idf values for %zu terms", n_idf,
			       m->n_terms);
	for (size_t t = 0; t < m->n_terms; t++)
		if (!isfinite(m->idf[t]) || !(m->idf[t] > 0.0))
			return err_set(err, LTV_EINVAL, "tfidf: blob idf of term %zu is invalid", t);
	n_rows = blob_get_u64(r);
	if (!count_fits(r, n_rows, 8) || n_rows != n_docs + 1)
		return err_set(err, LTV_EINVAL, "tfidf: blob row offsets do not match %zu documents",
			       m->n_docs);
	m->row_ptr = xmalloc((size_t)n_rows * sizeof(size_t));
	for (size_t i = 0; i < n_rows; i++)
		m->row_ptr[i] = (size_t)blob_get_u64(r);
	nnz = blob_get_u64(r);
	if (!count_fits(r, nnz, 4))
		return err_set(err, LTV_EINVAL, "tfidf: blob weight count is invalid");
	m->col = xmalloc((nnz ? (size_t)nnz : 1) * sizeof(uint32_t));
	for (size_t t = 0; t < nnz; t++)
		m->col[t] = blob_get_u32(r);
	if (blob_get_f64_array(r, &m->val, &n_val) < 0 || blob_reader_status(r, "tfidf", err) < 0)
		return blob_reader_status(r, "tfidf", err);
	if (n_val != nnz || m->row_ptr[0] != 0 || m->row_ptr[m->n_docs] != nnz)
		return err_set(err, LTV_EINVAL, "tfidf: blob row offsets and weights disagree");
	for (size_t i = 0; i < m->n_docs; i++)
		if (m->row_ptr[i + 1] < m->row_ptr[i])
			return err_set(err, LTV_EINVAL, "tfidf: blob row offsets decrease at document %zu", i);
	for (size_t i = 0; i < m->n_docs; i++) {
		for (size_t t = m->row_ptr[i]; t < m->row_ptr[i + 1]; t++)
			if (m->col[t] >= m->n_terms || !isfinite(m->val[t]) ||
			    (t > m->row_ptr[i] && m->col[t] <= m->col[t - 1]))
				return err_set(err, LTV_EINVAL,
					       "tfidf: blob weight %zu of document %zu is invalid", t, i);
	}
	return 0;
}

int tfidf_load(const void *buf, size_t len, struct tfidf_model **out_model,
	       struct ltv_err *err)
{
	struct blob_reader r;
	struct tfidf_model *m = NULL;
	uint32_t version;
	const char *why;
	int ret;

	*out_model = NULL;
	blob_reader_init(&r, buf, len);
	ret = blob_get_header(&r, TFIDF_MAGIC, TFIDF_VERSION, &version, err);
	if (ret < 0)
		return ret;
	m = xcalloc(1, sizeof(*m));
	ret = load_body(&r, m, err);
	if (ret < 0)
		goto out;
	why = tfidf_param_check(&m->param);
	if (why) {
		ret = err_set(err, LTV_EINVAL, "tfidf: blob parameters: %s", why);
		goto out;
	}
	build_postings(m);
	*out_model = m;
	m = NULL;
out:
	tfidf_free(m);
	return ret;
}

void tfidf_free(struct tfidf_model *m)
{
	if (!m)
		return;
	if (m->names)
		for (size_t i = 0; i < m->n_docs; i++)
			free(m->names[i]);
	free(m->names);
	if (m->terms)
		for (size_t t = 0; t < m->n_terms; t++)
			free(m->terms[t]);
	free(m->terms);
	free(m->idf);
	free(m->row_ptr);
	free(m->col);
	free(m->val);
	free(m->post_ptr);
	free(m->post_doc);
	free(m->post_val);
	free(m);
}
