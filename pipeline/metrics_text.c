/*
 * Stage metrics for people (contract in include/ltv/metrics_text.h). One
 * table says what each accuracy figure measures, so `run`, `status` and
 * `models show` name them the same way.
 */
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ltv/metrics_text.h"

#define ON_VALIDATION "on the validation cohorts"
#define CROSS_FITTED "out of sample (validation cohorts cross-fitted by select)"

/* key as stored; label in the brief line; measure and on what it was measured, for a line of its own */
static const struct { const char *key, *label, *measure, *where; } metric_labels[] = {
	{ "payer_auc", "payer AUC", "payer AUC", ON_VALIDATION },
	{ "rmsle", "user RMSLE", "user RMSLE", ON_VALIDATION },
	{ "wape", "user WAPE", "user WAPE", ON_VALIDATION },
	{ "campaign_wape", "campaign WAPE", "campaign WAPE", ON_VALIDATION },
	{ "bias", "bias", "bias", ON_VALIDATION },
	{ "val_campaign_wape", "campaign WAPE", "campaign WAPE", ON_VALIDATION },
	{ "val_campaign_bias", "campaign bias", "campaign bias", ON_VALIDATION },
	{ "val_campaign_mape", "campaign MAPE", "campaign MAPE", ON_VALIDATION },
	{ "val_user_rmsle", "user RMSLE", "user RMSLE", ON_VALIDATION },
	{ "validation_campaign_wape_raw", "campaign WAPE before calibration",
	  "campaign WAPE before calibration", ON_VALIDATION },
	{ "validation_campaign_wape", "campaign WAPE", "campaign WAPE", ON_VALIDATION },
	{ "validation_campaign_bias", "campaign bias", "campaign bias", ON_VALIDATION },
	{ "validation_rmsle", "user RMSLE", "user RMSLE", ON_VALIDATION },
	{ "out_of_sample_campaign_wape", "campaign WAPE out of sample (cross-fitted)", "campaign WAPE",
	  CROSS_FITTED },
	{ "out_of_sample_campaign_bias", "campaign bias out of sample (cross-fitted)", "campaign bias",
	  CROSS_FITTED },
};
#define N_LABELS (sizeof(metric_labels) / sizeof(metric_labels[0]))

static int label_index(const char *key)
{
	for (size_t i = 0; i < N_LABELS; i++)
		if (strcmp(metric_labels[i].key, key) == 0)
			return (int)i;
	return -1;
}

static int is_horizon_key(const char *key)
{
	return strcmp(key, "horizon") == 0 || strcmp(key, "val_horizon") == 0 ||
	       strcmp(key, "out_of_sample_horizon") == 0 || strcmp(key, "target_horizon") == 0;
}

static void print_number(FILE *out, double v)
{
	if (v == floor(v) && fabs(v) < 1e15) /* counts: 1733970, never 1.73397e+06 */
		fprintf(out, "%.0f", v);
	else
		fprintf(out, "%.6g", v);
}

/* The horizon the metrics name, else default_horizon. */
static double horizon_of(const cJSON *m, int64_t default_horizon)
{
	const cJSON *item;
	double horizon = (double)default_horizon;

	cJSON_ArrayForEach(item, m)
		if (cJSON_IsNumber(item) && is_horizon_key(item->string))
			horizon = item->valuedouble;
	return horizon;
}

static int is_plain(const cJSON *v)
{
	return cJSON_IsNumber(v) || cJSON_IsString(v) || cJSON_IsBool(v) || cJSON_IsNull(v);
}

static void print_plain(FILE *out, const cJSON *v)
{
	if (cJSON_IsNumber(v))
		print_number(out, v->valuedouble);
	else if (cJSON_IsString(v))
		fputs(v->valuestring, out);
	else if (cJSON_IsBool(v))
		fputs(cJSON_IsTrue(v) ? "yes" : "no", out);
	else
		fputs("none", out);
}

/* The accuracy label of item (index into metric_labels), or -1: not a number or not an accuracy figure. */
static int accuracy_index(const cJSON *item)
{
	return cJSON_IsNumber(item) ? label_index(item->string) : -1;
}

void metrics_say_brief(FILE *out, const char *metrics_json, int64_t default_horizon)
{
	cJSON *m = cJSON_Parse(metrics_json);
	const cJSON *item;
	double horizon;
	int printed = 0, quality = 0;

	if (!m)
		return;
	horizon = horizon_of(m, default_horizon);
	cJSON_ArrayForEach(item, m) {
		int k = accuracy_index(item);

		if (k < 0)
			continue;
		fprintf(out, "%s", quality++ ? ", " : "");
		if (quality == 1)
			fprintf(out, "      on the validation cohorts at D%.0f: ", horizon);
		fprintf(out, "%s %.4g", metric_labels[k].label, item->valuedouble);
	}
	if (quality)
		fputc('\n', out);
	cJSON_ArrayForEach(item, m) {
		if (printed >= 8 || (!cJSON_IsNumber(item) && !cJSON_IsString(item)) ||
		    label_index(item->string) >= 0 || (quality && is_horizon_key(item->string)))
			continue;
		fprintf(out, "%s%s=", printed ? ", " : "      ", item->string);
		print_plain(out, item); /* a number or a string here */
		printed++;
	}
	if (printed)
		fputc('\n', out);
	cJSON_Delete(m);
}

/* A list or object on one line: its plain values, or the names of what is nested deeper. */
static void print_compound(FILE *out, const cJSON *v)
{
	const cJSON *e;
	int all_plain = 1, i = 0;

	cJSON_ArrayForEach(e, v)
		all_plain = all_plain && is_plain(e);
	if (!all_plain) {
		fprintf(out, "%d entries (", cJSON_GetArraySize(v));
		cJSON_ArrayForEach(e, v)
			if (e->string)
				fprintf(out, "%s%s", i++ ? ", " : "", e->string);
		fputs(i ? "; see --json)" : "see --json)", out);
		return;
	}
	cJSON_ArrayForEach(e, v) {
		fputs(i++ ? ", " : "", out);
		if (e->string)
			fprintf(out, "%s ", e->string);
		print_plain(out, e);
	}
	if (i == 0)
		fputs("none", out);
}

void metrics_say_lines(FILE *out, const char *indent, const char *metrics_json,
		       int64_t default_horizon)
{
	cJSON *m = cJSON_Parse(metrics_json);
	const cJSON *item;
	double horizon;

	if (!m)
		return;
	horizon = horizon_of(m, default_horizon);
	/* the accuracy figures first, each with its horizon and what it was measured on */
	cJSON_ArrayForEach(item, m) {
		int k = accuracy_index(item);

		if (k < 0)
			continue;
		fprintf(out, "%s%s at D%.0f, %s: %.4g\n", indent, metric_labels[k].measure, horizon,
			metric_labels[k].where, item->valuedouble);
	}
	cJSON_ArrayForEach(item, m) {
		if (accuracy_index(item) >= 0 || is_horizon_key(item->string))
			continue;
		fprintf(out, "%s%s: ", indent, item->string);
		if (is_plain(item))
			print_plain(out, item);
		else
			print_compound(out, item);
		fputc('\n', out);
	}
	cJSON_Delete(m);
}
