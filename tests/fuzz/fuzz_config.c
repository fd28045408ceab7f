/*
 * libFuzzer target for the YAML config loader (config_load_file, then
 * config_validate and the canonical printers a fingerprint is made of): any
 * bytes as a config file. A failure must carry a message; a config that
 * loads must survive config_copy and print the same canonical text.
 */
#include "fuzz_util.h"

#include "ltv/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_file(data, size, ".yaml");
	struct ltv_err err = { 0 };
	struct config cfg, copy;
	int ret;

	config_init_defaults(&cfg);
	ret = config_load_file(&cfg, path, &err);
	if (ret == 0)
		ret = config_validate(&cfg, &err);
	if (ret < 0 && (ret != LTV_ECONFIG && ret != LTV_ENOMEM) )
		abort();
	if (ret < 0 && err.msg[0] == '\0')
		abort();
	if (ret == 0) {
		char *a = config_dump(&cfg), *b;

		config_copy(&copy, &cfg);
		b = config_dump(&copy);
		if (strcmp(a, b) != 0)
			abort();
		free(a);
		free(b);
		config_release(&copy);
	}
	config_release(&cfg);
	unlink(path);
	return 0;
}
