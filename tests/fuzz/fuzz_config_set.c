/*
 * libFuzzer target for the --set parser (config_apply_override): the input's
 * lines, each one KEY=VALUE override applied in order, then validation. A
 * refused override must leave the value it targeted as it was, and every
 * failure must carry a message.
 */
#include "fuzz_util.h"

#include "ltv/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *line = text;
	struct ltv_err err = { 0 };
	struct config cfg;

	config_init_defaults(&cfg);
	while (line) {
		char *nl = strchr(line, '\n'), *before, *after;

		if (nl)
			*nl = '\0';
		before = config_dump(&cfg);
		if (config_apply_override(&cfg, line, &err) < 0) {
			after = config_dump(&cfg);
			if (err.msg[0] == '\0' || strcmp(before, after) != 0)
				abort(); /* a refused --set changed the config */
			free(after);
		}
		free(before);
		line = nl ? nl + 1 : NULL;
	}
	err.msg[0] = '\0';
	if (config_validate(&cfg, &err) < 0 && err.msg[0] == '\0')
		abort();
	config_release(&cfg);
	free(text);
	return 0;
}
