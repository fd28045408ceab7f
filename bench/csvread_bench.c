/*
 * Tokenizer benchmark behind src/csvread.c's fast path: reads a CSV file to
 * the end with the fast path on (the default) or off (every byte through
 * libcsv) and prints records, fields, bytes and MB/s. Built by `make
 * bench-tools`; bench/ingest.sh runs it on generated files.
 * usage: csvread_bench FILE fast|libcsv
 */
#include <stdio.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/csvread.h"

int main(int argc, char **argv)
{
	struct ltv_err err = { 0 };
	struct csv_reader *r;
	char **fields;
	size_t n, line;
	uint64_t records = 0, n_fields = 0, faults = 0;
	double started;
	int ret;

	if (argc != 3 || (strcmp(argv[2], "fast") != 0 && strcmp(argv[2], "libcsv") != 0)) {
		fprintf(stderr, "usage: csvread_bench FILE fast|libcsv\n");
		return 2;
	}
	r = csv_reader_open(argv[1], &err);
	if (!r) {
		fprintf(stderr, "csvread_bench: %s\n", err.msg);
		return 1;
	}
	csv_reader_set_fast_path(r, strcmp(argv[2], "fast") == 0);
	started = now_seconds();
	while ((ret = csv_reader_next(r, &fields, &n, &line, &err)) == 1) {
		struct csv_fault f;

		csv_reader_fault(r, &f);
		records++;
		n_fields += n;
		faults += f.kind != CSV_FAULT_NONE;
	}
	if (ret < 0) {
		fprintf(stderr, "csvread_bench: %s\n", err.msg);
		csv_reader_free(r);
		return 1;
	}
	printf("%s: %llu records, %llu fields, %llu faults, %.1f MB in %.3f s = %.0f MB/s\n",
	       argv[2], (unsigned long long)records, (unsigned long long)n_fields,
	       (unsigned long long)faults, (double)csv_reader_bytes_read(r) / 1e6,
	       now_seconds() - started,
	       (double)csv_reader_bytes_read(r) / 1e6 / (now_seconds() - started + 1e-9));
	csv_reader_free(r);
	return 0;
}
