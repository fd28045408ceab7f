/*
 * The stage table: every stage of DESIGN.md's pipeline, in an order where each
 * stage's inputs come before it. The runner walks this table; nothing else
 * lists the stages.
 */
#include <stdio.h>
#include <string.h>

#include "ltv/stage.h"

const struct stage stage_table[] = {
	{
		.name = "ingest",
		.code_version = "1",
		.config_sections = "input,columns,ingest",
		.inputs = { NULL },
		.flags = STAGE_READS_INPUT_FILES | STAGE_HUGE_PAGES,
		.run = stage_ingest_run,
		.summary = "validate and load users.csv and events.csv into per-user-day aggregates",
	},
	{
		.name = "features",
		.code_version = "3",
		.config_sections = "features",
		.inputs = { "ingest", NULL },
		.flags = STAGE_USES_AS_OF | STAGE_HUGE_PAGES,
		.run = stage_features_run,
		.summary = "early-window features, labels per horizon and the install-date split",
	},
	{
		.name = "tiers",
		.code_version = "1",
		.config_sections = "tiers",
		.inputs = { "features", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_tiers_run,
		.summary = "tier 1/2/3 per campaign by mature users and payers (table campaign_tiers)",
	},
	{
		.name = "hurdle",
		.code_version = "2",
		.config_sections = "hurdle",
		.inputs = { "features", "tiers", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_hurdle_run,
		.summary = "XGBoost P(payer) x E[revenue still to come | payer], per tier with a pooled fallback",
	},
	{
		.name = "multiplier",
		.code_version = "2",
		.config_sections = "multiplier",
		.inputs = { "features", "tiers", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_multiplier_run,
		.summary = "XGBoost multiplier ltv_H / revenue in window, per tier",
	},
	{
		.name = "curves",
		.code_version = "1",
		.config_sections = "curves",
		.inputs = { "ingest", "features", "tiers", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_curves_run,
		.summary = "per-campaign cumulative revenue curves a*d^b shrunk to tier priors",
	},
	{
		.name = "lookalike",
		.code_version = "1",
		.config_sections = "lookalike",
		.inputs = { "features", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_lookalike_run,
		.summary = "k-means on early features; a user is worth its cluster's future revenue",
	},
	{
		.name = "semantic",
		.code_version = "1",
		.config_sections = "semantic",
		.inputs = { "features", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_semantic_run,
		.summary = "TF-IDF on campaign names; a campaign is worth its most similar known ones",
	},
	{
		.name = "bgnbd",
		.code_version = "1",
		.config_sections = "btyd",
		.inputs = { "ingest", "features", "tiers", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_bgnbd_run,
		.summary = "BG/NBD + Gamma-Gamma per app on purchase days: expected paying days to H x spend",
	},
	{
		.name = "pareto_nbd",
		.code_version = "1",
		.config_sections = "btyd",
		.inputs = { "ingest", "features", "tiers", NULL },
		.flags = STAGE_USES_AS_OF,
		.run = stage_pareto_nbd_run,
		.summary = "Pareto/NBD + Gamma-Gamma per app: like bgnbd, dropping out at any time",
	},
	{
		.name = "select",
		.code_version = "1",
		.config_sections = "select,features",
		.inputs = { "features", "tiers", "hurdle", "multiplier", "curves", "lookalike", "semantic",
			    "bgnbd", "pareto_nbd", NULL },
		/*
		 * Not STAGE_KEEP_FREED (which acts under run.memory_mb only): its
		 * arrays of 5 to 11 MB (a validation row's per method, per
		 * rank-share thread) left holes in the heap that set the cold run's
		 * peak (select alone at 1,000,000 users: 487 MB kept, 455 MB mapped
		 * and returned, for 0.1-0.3 CPU s). Without a budget the whole run
		 * keeps what it frees (pipeline/run_heap.c; session 19: the
		 * cold run's peak +10 MB, 21,000 fewer page faults).
		 */
		.flags = STAGE_USES_AS_OF,
		.run = stage_select_run,
		.summary = "best method per campaign on the validation cohorts (table method_selection)",
	},
	{
		.name = "calibrate",
		.code_version = "2",
		.config_sections = "calibrate,models",
		.inputs = { "features", "tiers", "hurdle", "multiplier", "curves", "lookalike", "semantic",
			    "bgnbd", "pareto_nbd", "select", NULL },
		.flags = STAGE_USES_AS_OF | STAGE_KEEP_FREED,
		.run = stage_calibrate_run,
		.summary = "anchor-and-adjust or isotonic per tier and horizon; records the model version",
	},
};
const size_t stage_count = sizeof(stage_table) / sizeof(stage_table[0]);

int stage_find(const char *name)
{
	for (size_t i = 0; i < stage_count; i++)
		if (strcmp(stage_table[i].name, name) == 0)
			return (int)i;
	return -1;
}

int stage_table_check(struct ltv_err *err)
{
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage *s = &stage_table[i];

		if (!s->name || !s->run || !s->code_version || !s->config_sections)
			return err_set(err, LTV_EINTERNAL, "stage table entry %zu is incomplete", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(stage_table[j].name, s->name) == 0)
				return err_set(err, LTV_EINTERNAL, "stage '%s' is listed twice", s->name);
		for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++) {
			int idx = stage_find(s->inputs[k]);

			/* An input must be an earlier stage: that rules out cycles too. */
			if (idx < 0 || (size_t)idx >= i)
				return err_set(err, LTV_EINTERNAL,
					       "stage '%s' reads '%s', which is not an earlier stage",
					       s->name, s->inputs[k]);
		}
	}
	return 0;
}
