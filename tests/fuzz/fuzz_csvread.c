/*
 * libFuzzer target for the CSV reader (include/ltv/csvread.h): any bytes as a
 * file. Every record must come with a line number that never goes back, a
 * failure must carry a message, and once failed the reader keeps failing.
 */
#include "fuzz_util.h"

#include "ltv/csvread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_file(data, size, ".csv");
	struct ltv_err err = { 0 };
	struct csv_reader *r = csv_reader_open(path, &err);
	size_t last_line = 0;
	int ret;

	if (!r)
		abort(); /* any file that exists opens */
	for (size_t records = 0; records < 100000; records++) {
		char **fields = NULL;
		size_t n = 0, line = 0;

		ret = csv_reader_next(r, &fields, &n, &line, &err);
		if (ret <= 0)
			break;
		if (line < last_line || n == 0)
			abort();
		last_line = line;
		for (size_t i = 0; i < n; i++)
			if (!fields[i])
				abort();
	}
	if (ret < 0) {
		char **fields = NULL;
		size_t n = 0, line = 0;

		if (err.msg[0] == '\0' || csv_reader_next(r, &fields, &n, &line, &err) >= 0)
			abort();
	}
	if (csv_reader_bytes_read(r) > csv_reader_file_size(r))
		abort();
	csv_reader_free(r);
	unlink(path);
	return 0;
}
