/*
 * Looking at what the registry holds, for people and programs: the stage
 * graph (`ltvpipe dag`), what a model version or a run was built with (the
 * configuration keys of its artefacts and their metrics), and two of them side
 * by side (`ltvpipe diff`). Reads only.
 */
#ifndef LTV_INSPECT_H
#define LTV_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "ltv/common.h"
#include "ltv/registry.h"

enum dag_format { DAG_TEXT, DAG_DOT, DAG_JSON };

/* The stage table as a graph: one line per stage (text), Graphviz dot, or JSON. */
int inspect_dag(FILE *out, int format, struct ltv_err *err);

/* One "key=value" pair; both owned by the list. */
struct kv {
	char *key;
	char *value;
};

/*
 * What a model version or a run was built with: config keys (sorted, unique),
 * the metrics of its artefacts as "stage.metric" numbers (sorted), and the
 * as_of it was trained at (INT64_MIN when none of its artefacts has one).
 */
struct built_with {
	struct kv *config;
	size_t n_config;
	struct kv *metrics;   /* value: the number as text, %.17g */
	size_t n_metrics;
	int64_t as_of;
};

/* Of model version v (LTV_ENOTFOUND when there is none). */
int built_with_version(struct registry *reg, int64_t version, struct built_with *out,
		       struct ltv_err *err);
/* Of run run_id: its recorded config and the metrics of the artefacts it made. */
int built_with_run(struct registry *reg, const char *run_id, struct built_with *out,
		   struct ltv_err *err);
void built_with_release(struct built_with *b);
/* The value of key in a sorted list, or NULL. */
const char *kv_find(const struct kv *v, size_t n, const char *key);

/* For a metric's name: -1 when lower is better (errors), 1 when higher is (Gini, AUC), 2 when
 * closer to 0 is (bias), 0 unknown. */
int metric_better_direction(const char *name);

/*
 * `ltvpipe diff A B`: A and B are both model versions (numbers or aliases) or
 * both run ids. Prints the config keys that differ, then the metrics that
 * differ with the better direction; JSON with json.
 */
int inspect_diff(struct registry *reg, const char *a, const char *b, int json, FILE *out,
		 struct ltv_err *err);

#endif
