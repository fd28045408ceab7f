/*
 * Unit tests for cJSON parses into a thread's arena (src/models/json_arena.c,
 * the native forest's read of model bodies): the tree reads back as cJSON
 * made it, also when it outgrows the first block and on two threads at
 * once; a failed parse returns NULL and its arena is released as any other;
 * outside a parse cJSON's allocations are malloc's (a printed text is
 * freed with free, a built tree with cJSON_Delete).
 */
#include "testutil.h"

#include <omp.h>

#include "ltv/common.h"

#include "../../src/models/json_arena.h"

/* "[0,1,...,9,0,1,...]" of n digits: 2 bytes of text a node of 64, past the first block's 16 a byte. */
static char *numbers_text(size_t n)
{
	const size_t cap = n * 2 + 3;
	char *s = xmalloc(cap);
	size_t len = 0;

	s[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%zu", i ? "," : "", i % 10);
	s[len++] = ']';
	s[len] = '\0';
	return s;
}

/* 0 when root is numbers_text(n)'s array. */
static int numbers_read_back(const cJSON *root, size_t n)
{
	size_t i = 0;
	const cJSON *it;

	if (!cJSON_IsArray(root) || (size_t)cJSON_GetArraySize(root) != n)
		return -1;
	cJSON_ArrayForEach(it, root) {
		if (!cJSON_IsNumber(it) || it->valuedouble != (double)(i % 10))
			return -1;
		i++;
	}
	return 0;
}

static void test_tree_reads_back(void **state)
{
	static const char text[] = "{\"learner\": {\"name\": \"gbtree\", \"trees\": [{\"left\": [1, -1, -1],"
				   " \"cond\": [0.5, 1.25, -2e-3]}, {\"left\": [-1]}]}, \"key\": \"v\"}";
	struct json_arena a = { 0 };
	const cJSON *root, *trees, *cond;

	(void)state;
	root = json_arena_parse(&a, text, sizeof(text) - 1);
	assert_non_null(root);
	trees = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "learner"), "trees");
	assert_int_equal(cJSON_GetArraySize(trees), 2);
	cond = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(trees, 0), "cond");
	assert_int_equal(cJSON_GetArraySize(cond), 3);
	assert_true(cJSON_GetArrayItem(cond, 1)->valuedouble == 1.25);
	assert_true(cJSON_GetArrayItem(cond, 2)->valuedouble == -2e-3);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "key")->valuestring, "v");
	json_arena_release(&a);
	assert_null(a.blocks);
	/* an arena released is empty again: the next parse may use it; len bounds the text */
	root = json_arena_parse(&a, "[7]{\"not\": ", 3);
	assert_int_equal(cJSON_GetArraySize(root), 1);
	assert_true(cJSON_GetArrayItem(root, 0)->valuedouble == 7);
	json_arena_release(&a);
}

static void test_outgrows_first_block(void **state)
{
	const size_t n = 200000;
	char *text = numbers_text(n);
	struct json_arena a = { 0 };
	const cJSON *root = json_arena_parse(&a, text, strlen(text));
	size_t blocks = 0;

	(void)state;
	for (const struct json_arena_block *b = a.blocks; b; b = b->next)
		blocks++;
	assert_true(blocks > 1);
	assert_int_equal(numbers_read_back(root, n), 0);
	json_arena_release(&a);
	free(text);
}

static void test_failed_parse(void **state)
{
	static const char *bad[] = { "{\"a\": [1, 2,", "[1, 2", "", "{\"k\" 1}" };
	struct json_arena a = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(json_arena_parse(&a, bad[i], strlen(bad[i])));
		json_arena_release(&a);
		assert_null(a.blocks);
	}
}

static void test_malloc_outside_a_parse(void **state)
{
	struct json_arena a = { 0 };
	const cJSON *parsed = json_arena_parse(&a, "{\"x\": 1}", 8);
	cJSON *built = cJSON_CreateObject();
	char *printed;

	(void)state;
	/* built while the arena's tree lives, printed and freed after it is released */
	cJSON_AddNumberToObject(built, "x", cJSON_GetObjectItemCaseSensitive(parsed, "x")->valuedouble);
	cJSON_AddStringToObject(built, "name", "hurdle");
	json_arena_release(&a);
	printed = cJSON_PrintUnformatted(built);
	assert_string_equal(printed, "{\"x\":1,\"name\":\"hurdle\"}");
	free(printed);
	cJSON_Delete(built);
}

static void test_two_threads(void **state)
{
	const size_t n[2] = { 50000, 70000 };
	char *text[2] = { numbers_text(n[0]), numbers_text(n[1]) };
	int ok[2] = { 0, 0 };

	(void)state;
#pragma omp parallel for num_threads(2)
	for (int t = 0; t < 2; t++) {
		for (int round = 0; round < 5; round++) {
			struct json_arena a = { 0 };
			const cJSON *root = json_arena_parse(&a, text[t], strlen(text[t]));

			ok[t] += numbers_read_back(root, n[t]) == 0;
			json_arena_release(&a);
		}
	}
	assert_int_equal(ok[0], 5);
	assert_int_equal(ok[1], 5);
	free(text[0]);
	free(text[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_reads_back),
		cmocka_unit_test(test_outgrows_first_block),
		cmocka_unit_test(test_failed_parse),
		cmocka_unit_test(test_malloc_outside_a_parse),
		cmocka_unit_test(test_two_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
