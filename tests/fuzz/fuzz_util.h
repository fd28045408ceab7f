/*
 * What the fuzz targets share: the input written to a scratch file (the
 * config and CSV readers read paths, not buffers). The file lives in $TMPDIR
 * and is rewritten for every input; libFuzzer runs one input at a time.
 */
#ifndef LTV_FUZZ_UTIL_H
#define LTV_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes data to this process's scratch file named by suffix; returns its path (static). */
static inline const char *fuzz_write_file(const uint8_t *data, size_t size, const char *suffix)
{
	static char path[4096];
	const char *tmp = getenv("TMPDIR");
	FILE *f;

	snprintf(path, sizeof(path), "%s/ltvfuzz-%ld%s", tmp && *tmp ? tmp : "/tmp", (long)getpid(),
		 suffix);
	f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();
	return path;
}

/* data as a NUL-terminated string (caller frees); embedded NULs end it early, as in C. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
