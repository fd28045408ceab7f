/*
 * Throwaway registries for score and evaluate (contract in
 * include/ltv/scratch_registry.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ltv/runner.h"
#include "ltv/scratch_dir.h"
#include "ltv/scratch_registry.h"

int scratch_registry_init(struct scratch_registry *s, const char *prefix,
			  const struct config *base, struct ltv_err *err)
{
	char *set_registry;
	int ret;

	memset(s, 0, sizeof(*s));
	ret = scratch_dir_create(prefix, s->dir, sizeof(s->dir), err);
	if (ret < 0)
		return ret;
	s->path = xasprintf("%s/registry.sqlite", s->dir);
	set_registry = xasprintf("registry.path=%s", s->path);
	config_copy(&s->cfg, base);
	s->have_cfg = 1;
	ret = config_apply_override(&s->cfg, set_registry, err);
	if (ret == 0)
		ret = config_apply_override(&s->cfg, "ingest.mode=replace", err);
	free(set_registry);
	return ret;
}

int scratch_registry_ingest(struct scratch_registry *s, const char *command, struct ltv_err *err)
{
	struct run_options run = { .only = "ingest", .as_of = INT64_MIN, .command = command };

	return runner_run(&s->cfg, &run, stderr, err);
}

void scratch_registry_release(struct scratch_registry *s)
{
	if (s->have_cfg)
		config_release(&s->cfg);
	s->have_cfg = 0;
	free(s->path);
	s->path = NULL;
	if (s->dir[0])
		scratch_dir_remove(s->dir);
	s->dir[0] = '\0';
}
