/*
 * The score report as a page (`F.report.html` beside `F.report.txt`):
 * self-contained HTML with inline SVG, no script and no external resource,
 * for a manager to open from a mail or a shared folder. It shows the totals
 * per horizon, the predicted cumulative ROAS curve of the top and bottom
 * campaigns by target-horizon ROAS (days 0 to the longest horizon, read
 * linearly between horizons as the payback day is; the 80% interval as a
 * band; cost as the ROAS 1 line; the payback day as a marker), the same
 * campaigns as a table, and the value-segment mix.
 *
 * Each campaign chart is an <svg class="campaign"> carrying data-campaign,
 * data-app, data-payback-day ("" when not within the longest horizon) and
 * data-roas-<H> per horizon (4 decimals, as F.campaigns.csv), so a test can
 * check what is drawn against the CSV.
 */
#ifndef LTV_SCORE_HTML_H
#define LTV_SCORE_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ltv/predictor.h"

struct score_html_campaign {
	const char *app, *campaign;   /* borrowed */
	int tier;
	size_t users;
	double spend;
	double revenue[PREDICTOR_MAX_HORIZONS];
	double revenue_lo[PREDICTOR_MAX_HORIZONS], revenue_hi[PREDICTOR_MAX_HORIZONS]; /* NaN: none */
	int64_t payback_day;          /* -1: not within the longest horizon */
	const char *method;           /* that served most of its users */
};

struct score_html {
	int64_t model_version, as_of;
	const int64_t *horizons;      /* n_horizons days, increasing */
	size_t n_horizons;
	int64_t target_horizon;
	size_t users;
	double spend;                 /* of the users scored, known cost only */
	double revenue[PREDICTOR_MAX_HORIZONS];
	/* every campaign scored; the ranked ones have >= min_users users and spend */
	const struct score_html_campaign *campaigns;
	size_t n_campaigns;
	size_t min_users;
	size_t segments[SEGMENT_CUTS + 1]; /* Low, Medium, High, VIP at the target horizon */
	double segment_cut[SEGMENT_CUTS];
};

/* Campaigns drawn at each end of the ranking. */
#define SCORE_HTML_TOP 8

/* Writes the page to f. */
void score_html_write(FILE *f, const struct score_html *r);

#endif
