/*
 * What the read-ahead thread of src/csvread.c costs when its batches are
 * taken on another thread, as ingest's events workers take them: reads FILE
 * with read-ahead, takes every batch (csv_reader_next_batch) on the calling
 * thread and, with "read", reads each record's fields, line and fault there
 * (with "skip", gives the batch back unread). Prints the wall, the process's
 * CPU seconds, the calling thread's and the rest (the read-ahead thread's).
 * On two cores the read-ahead thread's CPU with "read" against "skip", or
 * against a run pinned to one core (taskset -c 0), is what its writes to
 * lines the other core read cost it (session 17, load 10, chrt -f 1: 0.40-0.42
 * against 0.22-0.24 s for the 1,000,000 users' events.csv; at load 20 the
 * runs of one mode spread over 0.29-0.47 s, so alternate many). Built by
 * `make bench-tools`.
 * usage: csvread_batches FILE read|skip
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ltv/common.h"
#include "ltv/csvread.h"

static double thread_cpu(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	struct ltv_err err = { 0 };
	struct csv_fields io = { 0 };
	struct csv_reader *r;
	struct csv_batch *b;
	char **header;
	size_t n, line;
	uint64_t records = 0, check = 0;
	double wall, cpu, mine;
	int ret, read;

	if (argc != 3 || (strcmp(argv[2], "read") != 0 && strcmp(argv[2], "skip") != 0)) {
		fprintf(stderr, "usage: csvread_batches FILE read|skip\n");
		return 2;
	}
	read = strcmp(argv[2], "read") == 0;
	r = csv_reader_open(argv[1], &err);
	if (!r) {
		fprintf(stderr, "csvread_batches: %s\n", err.msg);
		return 1;
	}
	csv_reader_set_read_ahead(r, 1);
	wall = now_seconds();
	cpu = process_cpu();
	mine = thread_cpu();
	ret = csv_reader_next(r, &header, &n, &line, &err);
	while (ret == 1 && (ret = csv_reader_next_batch(r, &b, &err)) == 1) {
		const size_t count = read ? csv_batch_count(b) : 0;

		for (size_t i = 0; i < count; i++) {
			struct csv_fault fault;

			csv_batch_record(b, i, &io, &line, &fault);
			for (size_t k = 0; k < io.n; k++)
				check += (unsigned char)io.fields[k][0];
			check += line + (uint64_t)fault.kind;
		}
		records += count;
		csv_reader_give_back(r, b);
	}
	if (ret < 0) {
		fprintf(stderr, "csvread_batches: %s\n", err.msg);
		csv_reader_free(r);
		return 1;
	}
	mine = thread_cpu() - mine;
	cpu = process_cpu() - cpu;
	printf("%s: %llu records (check %llu), %.3f s wall, %.3f CPU s: caller %.3f, read-ahead %.3f\n",
	       argv[2], (unsigned long long)records, (unsigned long long)check, now_seconds() - wall,
	       cpu, mine, cpu - mine);
	free(io.fields);
	csv_reader_free(r);
	return 0;
}
