/*
 * Inspection of the registry for `ltvpipe dag`, `ltvpipe diff` and the
 * columns of `models list` that say what a version was built with. A version
 * or a run is reduced to sorted key=value lists (its config keys, its
 * metrics), so any two compare the same way.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/inspect.h"
#include "ltv/model_loader.h"
#include "ltv/stage.h"
#include "ltv/timeutil.h"

/* ---- dag ---- */

int inspect_dag(FILE *out, int format, struct ltv_err *err)
{
	int ret = stage_table_check(err);

	if (ret < 0)
		return ret;
	if (format == DAG_DOT) {
		fprintf(out, "digraph ltvpipe {\n\trankdir=LR;\n\tnode [shape=box];\n");
		for (size_t i = 0; i < stage_count; i++) {
			const struct stage *s = &stage_table[i];

			fprintf(out, "\t\"%s\" [tooltip=\"%s\"];\n", s->name, s->config_sections);
			for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++)
				fprintf(out, "\t\"%s\" -> \"%s\";\n", s->inputs[k], s->name);
		}
		fprintf(out, "}\n");
		return 0;
	}
	if (format == DAG_JSON) {
		cJSON *doc = cJSON_CreateObject(), *stages = cJSON_AddArrayToObject(doc, "stages");
		char *text;

		for (size_t i = 0; i < stage_count; i++) {
			const struct stage *s = &stage_table[i];
			cJSON *o = cJSON_CreateObject(), *in = cJSON_AddArrayToObject(o, "inputs");

			cJSON_AddStringToObject(o, "name", s->name);
			for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++)
				cJSON_AddItemToArray(in, cJSON_CreateString(s->inputs[k]));
			cJSON_AddStringToObject(o, "config_sections", s->config_sections);
			cJSON_AddBoolToObject(o, "uses_as_of", (s->flags & STAGE_USES_AS_OF) != 0);
			cJSON_AddStringToObject(o, "summary", s->summary);
			cJSON_AddItemToArray(stages, o);
		}
		text = cJSON_Print(doc);
		fprintf(out, "%s\n", text);
		cJSON_free(text);
		cJSON_Delete(doc);
		return 0;
	}
	fprintf(out, "%-10s  %-36s  %s\n", "stage", "reads the output of", "fingerprinted config");
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage *s = &stage_table[i];
		char inputs[256] = "(the input files)";
		size_t len = 0;

		for (size_t k = 0; k < STAGE_MAX_INPUTS && s->inputs[k]; k++)
			len += (size_t)snprintf(inputs + len, sizeof(inputs) - len, "%s%s", k ? ", " : "",
						s->inputs[k]);
		fprintf(out, "%-10s  %-36s  %s%s\n", s->name, inputs, s->config_sections,
			(s->flags & STAGE_USES_AS_OF) ? ", as_of" : "");
	}
	return 0;
}

/* ---- what a version or a run was built with ---- */

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void kv_add(struct kv **v, size_t *n, size_t *cap, const char *key, size_t key_len,
		   const char *value, size_t value_len)
{
	ARRAY_GROW(*v, *n + 1, *cap);
	(*v)[*n].key = xstrndup(key, key_len);
	(*v)[*n].value = xstrndup(value, value_len);
	(*n)++;
}

/* Sorts and drops repeated keys (a section read by several stages appears once per stage). */
static void kv_sort_unique(struct kv *v, size_t *n)
{
	size_t out = 0;

	qsort(v, *n, sizeof(*v), kv_cmp);
	for (size_t i = 0; i < *n; i++) {
		if (out > 0 && strcmp(v[out - 1].key, v[i].key) == 0) {
			free(v[i].key);
			free(v[i].value);
			continue;
		}
		v[out++] = v[i];
	}
	*n = out;
}

const char *kv_find(const struct kv *v, size_t n, const char *key)
{
	struct kv probe = { (char *)key, NULL };
	const struct kv *hit = bsearch(&probe, v, n, sizeof(*v), kv_cmp);

	return hit ? hit->value : NULL;
}

struct bw_build {
	struct built_with *b;
	size_t cap_config, cap_metrics;
	int rows;
	char sep;            /* '=' in stage config texts, ':' in a run's config dump */
};

/* "key=value" or "key: value" lines; lines that are not config keys (input_file=) are skipped. */
static void add_config_text(struct bw_build *bb, const char *text, char sep)
{
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n'), *eq;
		size_t len = end ? (size_t)(end - line) : strlen(line);

		eq = memchr(line, sep, len);
		if (eq && strncmp(line, "input_file=", 11) != 0 && strncmp(line, "as_of=", 6) != 0) {
			const char *v = eq + 1;

			while (sep == ':' && v < line + len && *v == ' ')
				v++;
			kv_add(&bb->b->config, &bb->b->n_config, &bb->cap_config, line, (size_t)(eq - line), v,
			       (size_t)(line + len - v));
		}
		line = end ? end + 1 : NULL;
	}
}

static void add_metrics(struct bw_build *bb, const char *stage, const char *json)
{
	cJSON *m = cJSON_Parse(json);
	const cJSON *item;

	cJSON_ArrayForEach(item, m) {
		char key[160], value[40];
		int klen, vlen;

		if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
			continue;
		klen = snprintf(key, sizeof(key), "%s.%s", stage, item->string);
		vlen = snprintf(value, sizeof(value), "%.17g", item->valuedouble);
		kv_add(&bb->b->metrics, &bb->b->n_metrics, &bb->cap_metrics, key, (size_t)klen, value,
		       (size_t)vlen);
	}
	cJSON_Delete(m);
}

/* Rows of version_configs or run_artefacts: id, name, version, as_of, config, metrics. */
static int artefact_row(void *opaque, int n_cols, char **names, char **values)
{
	struct bw_build *bb = opaque;
	int64_t as_of;

	(void)names;
	if (n_cols < 6)
		return 0;
	bb->rows++;
	if (values[3][0] && parse_int64(values[3], &as_of) == 0 &&
	    (bb->b->as_of == INT64_MIN || as_of > bb->b->as_of))
		bb->b->as_of = as_of;
	if (bb->sep == '=')
		add_config_text(bb, values[4], '=');
	add_metrics(bb, values[1], values[5]);
	return 0;
}

/* The model version's own metrics (out-of-sample WAPE, target horizon) as "version.*". */
static int version_row(void *opaque, int n_cols, char **names, char **values)
{
	struct bw_build *bb = opaque;

	(void)names;
	if (n_cols < 5)
		return 0;
	bb->rows++;
	add_metrics(bb, "version", values[4]);
	return 0;
}

static int run_row(void *opaque, int n_cols, char **names, char **values)
{
	struct bw_build *bb = opaque;
	int64_t as_of;

	(void)names;
	if (n_cols < 7)
		return 0;
	bb->rows++;
	if (values[5][0] && parse_int64(values[5], &as_of) == 0 && as_of != INT64_MIN)
		bb->b->as_of = as_of;
	add_config_text(bb, values[6], ':');
	return 0;
}

static void built_with_finish(struct built_with *b)
{
	kv_sort_unique(b->config, &b->n_config);
	kv_sort_unique(b->metrics, &b->n_metrics);
}

int built_with_version(struct registry *reg, int64_t version, struct built_with *out,
		       struct ltv_err *err)
{
	struct bw_build bb = { .b = out, .sep = '=' };
	int ret;

	*out = (struct built_with){ .as_of = INT64_MIN };
	ret = registry_report(reg, "model_version", version, version_row, &bb, err);
	if (ret == 0 && bb.rows == 0)
		ret = err_set(err, LTV_ENOTFOUND, "no model version %lld; see 'ltvpipe models list'",
			      (long long)version);
	if (ret == 0)
		ret = registry_report(reg, "version_configs", version, artefact_row, &bb, err);
	built_with_finish(out);
	return ret;
}

int built_with_run(struct registry *reg, const char *run_id, struct built_with *out,
		   struct ltv_err *err)
{
	struct bw_build bb = { .b = out, .sep = ':' };
	int ret;

	*out = (struct built_with){ .as_of = INT64_MIN };
	ret = registry_report_text(reg, "run", run_id, run_row, &bb, err);
	if (ret == 0 && bb.rows == 0)
		ret = err_set(err, LTV_ENOTFOUND, "no run '%s' in the registry (table runs)", run_id);
	if (ret == 0) {
		int64_t run_as_of = out->as_of;

		bb.sep = ':'; /* the run's config is its dump; the artefacts add metrics only */
		ret = registry_report_text(reg, "run_artefacts", run_id, artefact_row, &bb, err);
		if (run_as_of != INT64_MIN)
			out->as_of = run_as_of;
	}
	built_with_finish(out);
	return ret;
}

void built_with_release(struct built_with *b)
{
	for (size_t i = 0; i < b->n_config; i++) {
		free(b->config[i].key);
		free(b->config[i].value);
	}
	for (size_t i = 0; i < b->n_metrics; i++) {
		free(b->metrics[i].key);
		free(b->metrics[i].value);
	}
	free(b->config);
	free(b->metrics);
	*b = (struct built_with){ .as_of = INT64_MIN };
}

int metric_better_direction(const char *name)
{
	static const char *const lower[] = { "wape", "rmsle", "mape", "error", "mse", "mae", "loss",
					     "logloss", "psi", "brier", "seconds", "rss" };
	static const char *const higher[] = { "gini", "auc", "spearman", "r2", "coverage", "lift" };
	const char *leaf = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;

	if (strstr(leaf, "bias"))
		return 2;
	for (size_t i = 0; i < sizeof(lower) / sizeof(lower[0]); i++)
		if (strstr(leaf, lower[i]))
			return -1;
	for (size_t i = 0; i < sizeof(higher) / sizeof(higher[0]); i++)
		if (strstr(leaf, higher[i]))
			return 1;
	return 0;
}

/* ---- diff ---- */

/* A number of a model version or an alias; else a run id. */
static int is_version_ref(const char *ref)
{
	int64_t v;

	return strcmp(ref, "production") == 0 || strcmp(ref, "candidate") == 0 ||
	       (parse_int64(ref, &v) == 0 && v >= 1);
}

static int load_side(struct registry *reg, const char *ref, struct built_with *out, char *label,
		     size_t label_size, struct ltv_err *err)
{
	int64_t version;
	int ret;

	if (!is_version_ref(ref)) {
		snprintf(label, label_size, "run %s", ref);
		return built_with_run(reg, ref, out, err);
	}
	ret = model_resolve(reg, ref, &version, err);
	if (ret < 0)
		return ret;
	snprintf(label, label_size, "model version %lld", (long long)version);
	return built_with_version(reg, version, out, err);
}

/* Walks two sorted lists together; fn gets each key present in either with both values (NULL if absent). */
static void merge_walk(const struct kv *a, size_t na, const struct kv *b, size_t nb,
		       void (*fn)(void *ctx, const char *key, const char *va, const char *vb), void *ctx)
{
	size_t i = 0, k = 0;

	while (i < na || k < nb) {
		int c = i == na ? 1 : k == nb ? -1 : strcmp(a[i].key, b[k].key);

		if (c < 0) {
			fn(ctx, a[i].key, a[i].value, NULL);
			i++;
		} else if (c > 0) {
			fn(ctx, b[k].key, NULL, b[k].value);
			k++;
		} else {
			if (strcmp(a[i].value, b[k].value) != 0)
				fn(ctx, a[i].key, a[i].value, b[k].value);
			i++;
			k++;
		}
	}
}

struct diff_out {
	FILE *out;
	cJSON *array;    /* JSON mode */
	int n;
	int metrics;     /* the metrics pass */
};

static int timing_metric(const char *key)
{
	return strstr(key, ".seconds") || strstr(key, "peak_rss") || strstr(key, "threads");
}

static void diff_line(void *ctx, const char *key, const char *va, const char *vb)
{
	struct diff_out *d = ctx;

	if (d->metrics) {
		double a = va ? strtod(va, NULL) : NAN, b = vb ? strtod(vb, NULL) : NAN;
		int dir = metric_better_direction(key);
		const char *better = dir == 0 || isnan(a) || isnan(b) || a == b ? "-"
				     : dir == 2 ? (fabs(b) < fabs(a) ? "B" : "A")
				     : (dir < 0 ? (b < a ? "B" : "A") : (b > a ? "B" : "A"));

		/* a stage one of two runs reused has no metrics in it: nothing to compare */
		if (timing_metric(key) || !va || !vb)
			return;
		if (!isnan(a) && !isnan(b) && fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)))
			return;
		if (d->array) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "metric", key);
			isnan(a) ? (void)cJSON_AddNullToObject(o, "a") : (void)cJSON_AddNumberToObject(o, "a", a);
			isnan(b) ? (void)cJSON_AddNullToObject(o, "b") : (void)cJSON_AddNumberToObject(o, "b", b);
			cJSON_AddStringToObject(o, "better_direction", dir == 2 ? "closer to 0" : dir < 0 ? "lower"
								       : dir > 0 ? "higher" : "unknown");
			cJSON_AddStringToObject(o, "better", better);
			cJSON_AddItemToArray(d->array, o);
		} else {
			char sa[32] = "(absent)", sb[32] = "(absent)";

			if (!isnan(a))
				snprintf(sa, sizeof(sa), "%.6g", a);
			if (!isnan(b))
				snprintf(sb, sizeof(sb), "%.6g", b);
			fprintf(d->out, "  %-46s %14s %14s  %s%s\n", key, sa, sb,
				dir == 2 ? "closer to 0 is better" : dir < 0 ? "lower is better"
				: dir > 0 ? "higher is better" : "",
				strcmp(better, "-") == 0 ? "" : strcmp(better, "A") == 0 ? ": A" : ": B");
		}
		d->n++;
		return;
	}
	if (d->array) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "key", key);
		va ? (void)cJSON_AddStringToObject(o, "a", va) : (void)cJSON_AddNullToObject(o, "a");
		vb ? (void)cJSON_AddStringToObject(o, "b", vb) : (void)cJSON_AddNullToObject(o, "b");
		cJSON_AddItemToArray(d->array, o);
	} else {
		fprintf(d->out, "  %-46s %s → %s\n", key, va ? va : "(absent)", vb ? vb : "(absent)");
	}
	d->n++;
}

int inspect_diff(struct registry *reg, const char *a, const char *b, int json, FILE *out,
		 struct ltv_err *err)
{
	struct built_with wa = { .as_of = INT64_MIN }, wb = { .as_of = INT64_MIN };
	char la[96], lb[96], ta[32] = "?", tb[32] = "?";
	struct diff_out d = { .out = out };
	cJSON *doc = NULL;
	int ret;

	if (is_version_ref(a) != is_version_ref(b))
		return err_set(err, LTV_EUSAGE, "'%s' and '%s' must both be model versions or both run ids",
			       a, b);
	ret = load_side(reg, a, &wa, la, sizeof(la), err);
	if (ret == 0)
		ret = load_side(reg, b, &wb, lb, sizeof(lb), err);
	if (ret < 0)
		goto out;
	if (wa.as_of != INT64_MIN)
		time_format_iso8601(wa.as_of, ta, sizeof(ta));
	if (wb.as_of != INT64_MIN)
		time_format_iso8601(wb.as_of, tb, sizeof(tb));
	if (json) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "a", la);
		cJSON_AddStringToObject(doc, "b", lb);
		cJSON_AddStringToObject(doc, "a_as_of", ta);
		cJSON_AddStringToObject(doc, "b_as_of", tb);
		d.array = cJSON_AddArrayToObject(doc, "config");
	} else {
		fprintf(out, "A: %s (as_of %s)\nB: %s (as_of %s)\n\nconfig keys that differ (A → B):\n",
			la, ta, lb, tb);
	}
	merge_walk(wa.config, wa.n_config, wb.config, wb.n_config, diff_line, &d);
	if (!json && d.n == 0)
		fprintf(out, "  (none)\n");
	d.metrics = 1;
	d.n = 0;
	if (json) {
		d.array = cJSON_AddArrayToObject(doc, "metrics");
	} else {
		fprintf(out, "\nmetrics that differ:\n  %-46s %14s %14s  better\n", "metric", "A", "B");
	}
	merge_walk(wa.metrics, wa.n_metrics, wb.metrics, wb.n_metrics, diff_line, &d);
	if (!json && d.n == 0)
		fprintf(out, "  (none)\n");
	if (json) {
		char *text = cJSON_Print(doc);

		fprintf(out, "%s\n", text);
		cJSON_free(text);
	}
out:
	cJSON_Delete(doc);
	built_with_release(&wa);
	built_with_release(&wb);
	return ret;
}
