/*
 * A stage's metrics JSON said to a person (pipeline/metrics_text.c): every
 * accuracy figure named with its horizon and what it measures ("campaign
 * WAPE at D30, out of sample (cross-fitted): 0.3511"), counts as integers,
 * never a bare "wape=". `run` and `status` say them briefly, `models show`
 * one per line; --json keeps the raw metrics.
 */
#ifndef LTV_METRICS_TEXT_H
#define LTV_METRICS_TEXT_H

#include <stdint.h>
#include <stdio.h>

/*
 * Two lines at most: the accuracy figures on one ("on the validation cohorts
 * at D30: payer AUC 0.86, ..."), then up to 8 other metrics as name=value.
 * default_horizon: the target horizon, for metrics that do not name theirs.
 */
void metrics_say_brief(FILE *out, const char *metrics_json, int64_t default_horizon);

/*
 * Every metric on its own line after indent: accuracy figures as "<measure>
 * at D<H>, <on what>: <value>", the others as "name: value"; a list or an
 * object of plain values on one line, anything nested deeper by its entries'
 * names (the values are in --json).
 */
void metrics_say_lines(FILE *out, const char *indent, const char *metrics_json,
		       int64_t default_horizon);

#endif
