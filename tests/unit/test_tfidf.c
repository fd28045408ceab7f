/*
 * Known-answer tests for TF-IDF on hand-made campaign names. Every expected
 * similarity is worked out in the comments from the definitions in tfidf.h.
 */
#include <math.h>

#include "testutil.h"
#include "ltv/tfidf.h"

/*
 * The three-campaign corpus used below:
 *   0 fb_us_ios_summer_2024      -> fb us ios summer 2024
 *   1 fb_us_android_summer_2024  -> fb us android summer 2024
 *   2 google_uac_br_android_q3   -> google uac br android q3
 * n = 3; df 2 for fb, us, summer, 2024, android; df 1 for ios, google, uac,
 * br, q3 (10 terms).
 *   A = idf(df 2) = ln(4/3) + 1 = 1.2876820724517808
 *   B = idf(df 1) = ln(4/2) + 1 = 1.6931471805599454
 *   U = idf of an unseen term = ln(4/1) + 1 = 2.386294361119891
 * All tf are 1, so
 *   cos(0,1) = 4A^2 / sqrt((4A^2 + B^2) * 5A^2)   = 0.7473757956850811
 *   cos(1,2) = A^2  / sqrt(5A^2 * (A^2 + 4B^2))   = 0.1589542319048084
 *   cos(0,2) = 0 (no shared term)
 */
static const char *const corpus[] = {
	"fb_us_ios_summer_2024",
	"fb_us_android_summer_2024",
	"google_uac_br_android_q3",
};
#define IDF_A 1.2876820724517808
#define IDF_B 1.6931471805599454
#define COS_01 0.7473757956850811
#define COS_12 0.1589542319048084

static struct tfidf_model *fit_corpus(int char_ngram)
{
	struct tfidf_param p;
	struct tfidf_model *m = NULL;
	struct ltv_err err;

	tfidf_param_init(&p);
	p.char_ngram = char_ngram;
	assert_int_equal(tfidf_fit(&p, corpus, 3, &m, &err), 0);
	return m;
}

static void check_tokens(const struct tfidf_param *p, const char *name,
			 const char *const *expected, size_t n_expected)
{
	char **terms = NULL;
	size_t n = 0;

	tfidf_tokenize(p, name, &terms, &n);
	assert_int_equal(n, n_expected);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(terms[i], expected[i]);
	tfidf_terms_free(terms, n);
}

static void test_tokenize(void **state)
{
	struct tfidf_param p;

	(void)state;
	tfidf_param_init(&p);
	check_tokens(&p, "fb_us_ios_summer_2024",
		     (const char *const[]){ "fb", "us", "ios", "summer", "2024" }, 5);
	/* Every separator kind, runs of them, and case folding; digits stay attached. */
	check_tokens(&p, "FB-US.iOS  Summer2024__",
		     (const char *const[]){ "fb", "us", "ios", "summer2024" }, 4);
	/* camelCase splits at lower -> upper, but not after a lone first letter. */
	check_tokens(&p, "fbUsIosSummer", (const char *const[]){ "fb", "us", "ios", "summer" }, 4);
	check_tokens(&p, "iPhoneUS", (const char *const[]){ "iphone", "us" }, 2);
	check_tokens(&p, "ABTest", (const char *const[]){ "abtest" }, 1);
	check_tokens(&p, "", NULL, 0);
	check_tokens(&p, "_-. ", NULL, 0);
	/* Trigrams of "<us>" are "<us" and "us>", marked with '#'. */
	p.char_ngram = 3;
	check_tokens(&p, "us_ab", (const char *const[]){ "us", "ab", "#<us", "#us>", "#<ab", "#ab>" }, 6);
	/* "<a>" has 3 bytes: one gram; a 4-gram of it does not exist. */
	check_tokens(&p, "a", (const char *const[]){ "a", "#<a>" }, 2);
	p.char_ngram = 4;
	check_tokens(&p, "a", (const char *const[]){ "a" }, 1);
}

static void test_vocabulary_and_idf(void **state)
{
	struct tfidf_model *m = fit_corpus(0);

	(void)state;
	assert_int_equal(tfidf_n_docs(m), 3);
	assert_int_equal(tfidf_n_terms(m), 10);
	assert_string_equal(tfidf_doc_name(m, 2), "google_uac_br_android_q3");
	assert_double_near(tfidf_idf(m, "fb"), IDF_A, 1e-15);
	assert_double_near(tfidf_idf(m, "android"), IDF_A, 1e-15);
	assert_double_near(tfidf_idf(m, "ios"), IDF_B, 1e-15);
	assert_double_near(tfidf_idf(m, "q3"), IDF_B, 1e-15);
	assert_true(tfidf_idf(m, "tiktok") == 0.0);
	tfidf_free(m);
}

static void test_cosine_and_top_k_order(void **state)
{
	struct tfidf_model *m = fit_corpus(0);
	size_t idx[3], n;
	double sim[3];

	(void)state;
	/* Doc 1 against the corpus: itself, then doc 0, then doc 2 (shares android). */
	tfidf_top_k(m, "fb_us_android_summer_2024", 3, idx, sim, &n);
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 0);
	assert_int_equal(idx[2], 2);
	assert_double_near(sim[0], 1.0, 1e-12);
	assert_double_near(sim[1], COS_01, 1e-12);
	assert_double_near(sim[2], COS_12, 1e-12);
	/* k cuts the list. */
	tfidf_top_k(m, "fb_us_android_summer_2024", 2, idx, sim, &n);
	assert_int_equal(n, 2);
	assert_int_equal(idx[1], 0);
	/* Doc 0 shares nothing with doc 2, so only two documents come back. */
	tfidf_top_k(m, "fb_us_ios_summer_2024", 3, idx, sim, &n);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 1);
	assert_double_near(sim[1], COS_01, 1e-12);
	/* camelCase spelling of doc 0 is the same document. */
	tfidf_top_k(m, "fbUsIosSummer_2024", 1, idx, sim, &n);
	assert_int_equal(n, 1);
	assert_int_equal(idx[0], 0);
	assert_double_near(sim[0], 1.0, 1e-12);
	/*
	 * An unseen word counts in the query's norm with idf U:
	 * cos = sqrt((4A^2 + B^2) / (4A^2 + B^2 + U^2)) = 0.7907033346465542
	 */
	tfidf_top_k(m, "fb_us_ios_summer_2024_tiktok", 1, idx, sim, &n);
	assert_int_equal(idx[0], 0);
	assert_double_near(sim[0], 0.7907033346465542, 1e-12);
	tfidf_free(m);
}

static void test_ties_by_index(void **state)
{
	/* Docs 1 and 2 are the same name: equal similarity, lower index first. */
	const char *const names[] = { "b_x", "a_x", "a_x", "c_y" };
	struct tfidf_param p;
	struct tfidf_model *m = NULL;
	struct ltv_err err;
	size_t idx[4], n;
	double sim[4];

	(void)state;
	tfidf_param_init(&p);
	assert_int_equal(tfidf_fit(&p, names, 4, &m, &err), 0);
	tfidf_top_k(m, "a_x", 4, idx, sim, &n);
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 2);
	assert_int_equal(idx[2], 0);
	assert_true(sim[0] == sim[1]);
	assert_true(sim[2] < sim[1]);
	tfidf_free(m);
}

static void test_predict_value(void **state)
{
	struct tfidf_model *m = fit_corpus(0);
	const double values[] = { 10.0, 20.0, 40.0 };
	double v = 0.0;

	(void)state;
	/*
	 * Top 3 for doc 1's name: sims 1, COS_01, COS_12 on values 20, 10, 40:
	 * (20 + 10 COS_01 + 40 COS_12) / (1 + COS_01 + COS_12) = 17.74715119806183
	 */
	tfidf_predict_value(m, "fb_us_android_summer_2024", 3, values, -1.0, &v);
	assert_double_near(v, 17.74715119806183, 1e-10);
	/* k = 1: only the identical name counts. */
	tfidf_predict_value(m, "fb_us_android_summer_2024", 1, values, -1.0, &v);
	assert_double_near(v, 20.0, 1e-12);
	/* No shared token, an empty name, or k = 0: the fallback. */
	tfidf_predict_value(m, "tiktok_jp_web", 3, values, 7.5, &v);
	assert_true(v == 7.5);
	tfidf_predict_value(m, "", 3, values, 7.5, &v);
	assert_true(v == 7.5);
	tfidf_predict_value(m, "fb_us", 0, values, 7.5, &v);
	assert_true(v == 7.5);
	/* Only doc 2 shares "google": its value, whatever the similarity. */
	tfidf_predict_value(m, "google_tw", 5, values, 7.5, &v);
	assert_double_near(v, 40.0, 1e-12);
	tfidf_free(m);
}

static void test_char_ngrams(void **state)
{
	/*
	 * One document "summer": terms summer, #<su, #sum, #umm, #mme, #mer,
	 * #er> all with idf ln(2/2) + 1 = 1. Query "summers" adds the unseen
	 * summers, #ers, #rs> (idf ln 2 + 1 = G each) and shares 5 grams:
	 * cos = 5 / (sqrt(7) * sqrt(5 + 3 G^2)) = 0.5124454769623513.
	 * Words alone share nothing.
	 */
	const char *const names[] = { "summer" };
	struct tfidf_param p;
	struct tfidf_model *m = NULL;
	struct ltv_err err;
	size_t idx[1], n;
	double sim[1];

	(void)state;
	tfidf_param_init(&p);
	p.char_ngram = 3;
	assert_int_equal(tfidf_fit(&p, names, 1, &m, &err), 0);
	assert_int_equal(tfidf_n_terms(m), 7);
	tfidf_top_k(m, "summers", 1, idx, sim, &n);
	assert_int_equal(n, 1);
	assert_double_near(sim[0], 0.5124454769623513, 1e-12);
	tfidf_free(m);
	p.char_ngram = 0;
	assert_int_equal(tfidf_fit(&p, names, 1, &m, &err), 0);
	tfidf_top_k(m, "summers", 1, idx, sim, &n);
	assert_int_equal(n, 0);
	tfidf_free(m);
}

static void test_save_load_round_trip(void **state)
{
	struct tfidf_model *m = fit_corpus(3), *back = NULL;
	struct ltv_err err;
	uint8_t *buf = NULL;
	size_t len = 0, i1[3], i2[3], n1, n2;
	double s1[3], s2[3];

	(void)state;
	tfidf_save(m, &buf, &len);
	assert_memory_equal(buf, "LTVTFIDF", 8);
	assert_int_equal(tfidf_load(buf, len, &back, &err), 0);
	assert_int_equal(tfidf_n_docs(back), 3);
	assert_int_equal(tfidf_n_terms(back), tfidf_n_terms(m));
	assert_string_equal(tfidf_doc_name(back, 1), corpus[1]);
	assert_true(tfidf_idf(back, "#<fb") == tfidf_idf(m, "#<fb"));
	tfidf_top_k(m, "fb_us_andorid_q3", 3, i1, s1, &n1);
	tfidf_top_k(back, "fb_us_andorid_q3", 3, i2, s2, &n2);
	assert_int_equal(n1, 3);
	assert_int_equal(n2, n1);
	assert_memory_equal(i1, i2, n1 * sizeof(size_t));
	assert_memory_equal(s1, s2, n1 * sizeof(double));
	tfidf_free(back);
	back = NULL;

	/* Every truncation is an error, never a crash. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(tfidf_load(buf, cut, &back, &err), LTV_EINVAL);
		assert_null(back);
	}
	free(buf);
	tfidf_free(m);
	tfidf_free(NULL);
}

static void test_errors(void **state)
{
	const char *const names[] = { "a", NULL };
	struct tfidf_param p;
	struct tfidf_model *m = NULL;
	struct ltv_err err;

	(void)state;
	tfidf_param_init(&p);
	assert_null(tfidf_param_check(&p));
	assert_int_equal(tfidf_fit(&p, names, 0, &m, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "no known campaign names"));
	assert_int_equal(tfidf_fit(&p, names, 2, &m, &err), LTV_EINVAL);
	assert_non_null(strstr(err.msg, "name 1 is missing"));
	assert_null(m);
	p.char_ngram = 1;
	assert_non_null(tfidf_param_check(&p));
	assert_int_equal(tfidf_fit(&p, names, 1, &m, &err), LTV_EINVAL);
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokenize),
		cmocka_unit_test(test_vocabulary_and_idf),
		cmocka_unit_test(test_cosine_and_top_k_order),
		cmocka_unit_test(test_ties_by_index),
		cmocka_unit_test(test_predict_value),
		cmocka_unit_test(test_char_ngrams),
		cmocka_unit_test(test_save_load_round_trip),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
