/*
 * Unit tests for output_set.c's replacing of a large file: the new text is in
 * place when commit returns, the old file's last link goes soon after (its
 * child, which takes the set's small replaced files too), no "<target>.tmp-"
 * name stays behind, and the clean-up of a dead process's temporaries takes
 * its set-aside links too; files fsynced ahead of the commit (sync_from).
 */
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ltv/output_set.h"

/* Above output_set.c's ASIDE_MIN_BYTES (16 MiB); sparse, so cheap to make. */
#define LARGE_BYTES (24L << 20)

/* Makes path a file of size bytes starting with "old"; returns an fd open on it. */
static int make_old(const char *path, long size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old", 3), 3);
	assert_int_equal(ftruncate(fd, size), 0);
	return fd;
}

/* Replaces path with "new\n" through an output set. */
static void replace_with_new(const char *path)
{
	struct output_set set;
	struct ltv_err err = { 0 };
	FILE *f;

	output_set_init(&set);
	assert_int_equal(output_set_add(&set, path, &f, &err), 0);
	fputs("new\n", f);
	assert_int_equal(output_set_commit(&set, &err), 0);
	output_set_release(&set);
}

static void assert_text(const char *path, const char *want)
{
	char got[16] = { 0 };
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	assert_true(fread(got, 1, sizeof(got) - 1, f) <= sizeof(got) - 1);
	fclose(f);
	assert_string_equal(got, want);
}

/* The links fd's file has once it has none, or after 10 s. */
static nlink_t links_after_wait(int fd)
{
	struct stat st;

	for (int i = 0; i < 1000; i++) {
		assert_int_equal(fstat(fd, &st), 0);
		if (st.st_nlink == 0)
			break;
		usleep(10000);
	}
	return st.st_nlink;
}

/* Entries of dir whose name holds ".tmp-". */
static int temporaries_in(const char *dir)
{
	char cmd[4200];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -c '\\.tmp-'", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_large_file_replaced_and_freed(void **state)
{
	char *dir = test_scratch_dir(), path[4200];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/scores.csv", dir);
	fd = make_old(path, LARGE_BYTES);
	replace_with_new(path);
	assert_text(path, "new\n");
	assert_int_equal(links_after_wait(fd), 0);
	assert_int_equal(temporaries_in(dir), 0);
	close(fd);
	test_scratch_free(dir);
}

static void test_small_file_freed_by_the_rename(void **state)
{
	char *dir = test_scratch_dir(), path[4200];
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/small.csv", dir);
	fd = make_old(path, 4096);
	replace_with_new(path);
	assert_text(path, "new\n");
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0); /* no second link was made */
	close(fd);
	test_scratch_free(dir);
}

/* A file with another link is not freed by the rename: it is left alone. */
static void test_file_with_two_links_keeps_the_other(void **state)
{
	char *dir = test_scratch_dir(), path[4200], other[4200];
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/scores.csv", dir);
	snprintf(other, sizeof(other), "%s/kept.csv", dir);
	fd = make_old(path, LARGE_BYTES);
	assert_int_equal(link(path, other), 0);
	replace_with_new(path);
	assert_text(path, "new\n");
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 1); /* no second link was made */
	assert_text(other, "old");
	assert_int_equal(temporaries_in(dir), 0);
	close(fd);
	test_scratch_free(dir);
}

/*
 * With a large file in the set, a small replaced file is set aside too (the
 * child that frees the large one frees it): both get the new text, the small
 * file's old inode loses its last link soon after, and no temporary stays.
 */
static void test_small_file_goes_with_a_large_one(void **state)
{
	char *dir = test_scratch_dir(), large[4200], small[4200];
	struct output_set set;
	struct ltv_err err = { 0 };
	FILE *f;
	int large_fd, small_fd;

	(void)state;
	snprintf(large, sizeof(large), "%s/scores.csv", dir);
	snprintf(small, sizeof(small), "%s/scores.csv.report.txt", dir);
	large_fd = make_old(large, LARGE_BYTES);
	small_fd = make_old(small, 4096);
	output_set_init(&set);
	assert_int_equal(output_set_add(&set, large, &f, &err), 0);
	fputs("new\n", f);
	assert_int_equal(output_set_add(&set, small, &f, &err), 0);
	fputs("small\n", f);
	assert_int_equal(output_set_commit(&set, &err), 0);
	output_set_release(&set);
	assert_text(large, "new\n");
	assert_text(small, "small\n");
	assert_int_equal(links_after_wait(large_fd), 0);
	assert_int_equal(links_after_wait(small_fd), 0);
	assert_int_equal(temporaries_in(dir), 0);
	close(large_fd);
	close(small_fd);
	test_scratch_free(dir);
}

/*
 * output_set_sync_from fsyncs the files from its index on and notes where
 * each ended; text written after is still flushed by commit (the note no
 * longer matches), and the file before the index is left to commit.
 */
static void test_sync_from_then_more_text(void **state)
{
	char *dir = test_scratch_dir(), first[4200], second[4200];
	struct output_set set;
	struct ltv_err err = { 0 };
	FILE *f1, *f2;

	(void)state;
	snprintf(first, sizeof(first), "%s/users.csv", dir);
	snprintf(second, sizeof(second), "%s/users.csv.campaigns.csv", dir);
	output_set_init(&set);
	assert_int_equal(output_set_add(&set, first, &f1, &err), 0);
	assert_int_equal(output_set_add(&set, second, &f2, &err), 0);
	fputs("one\n", f1);
	fputs("two\n", f2);
	assert_int_equal(output_set_sync_from(&set, 1, &err), 0);
	assert_int_equal(set.files[0].synced_to, -1);
	assert_int_equal(set.files[1].synced_to, 4);
	fputs("more\n", f2);
	assert_int_equal(output_set_commit(&set, &err), 0);
	output_set_release(&set);
	assert_text(first, "one\n");
	assert_text(second, "two\nmore\n");
	assert_int_equal(temporaries_in(dir), 0);
	test_scratch_free(dir);
}

static void test_clean_stale_takes_set_aside_links(void **state)
{
	char *dir = test_scratch_dir(), target[4200], name[4300];
	const char *kinds[] = { "", ".old", ".older" };
	pid_t dead = fork();

	(void)state;
	if (dead == 0)
		_exit(0);
	assert_true(dead > 0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	snprintf(target, sizeof(target), "%s/scores.csv", dir);
	for (size_t i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s.tmp-%ld%s", target, (long)dead, kinds[i]);
		close(make_old(name, 10));
	}
	assert_int_equal(output_set_clean_stale(target), 2);
	assert_int_equal(temporaries_in(dir), 1);
	snprintf(name, sizeof(name), "%s.tmp-%ld.older", target, (long)dead);
	assert_int_equal(access(name, F_OK), 0); /* not a name we make */
	test_scratch_free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_file_replaced_and_freed),
		cmocka_unit_test(test_small_file_freed_by_the_rename),
		cmocka_unit_test(test_file_with_two_links_keeps_the_other),
		cmocka_unit_test(test_small_file_goes_with_a_large_one),
		cmocka_unit_test(test_sync_from_then_more_text),
		cmocka_unit_test(test_clean_stale_takes_set_aside_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
