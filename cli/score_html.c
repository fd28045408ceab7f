/*
 * The score report as a self-contained page (contract in
 * include/ltv/score_html.h). Plain fprintf of HTML and SVG; every name from
 * the data goes through html_text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ltv/common.h"
#include "ltv/score_html.h"
#include "ltv/svg.h"
#include "ltv/timeutil.h"

#define CHART_W 320.0
#define CHART_H 200.0
#define PAD_L 40.0
#define PAD_R 12.0
#define PAD_T 34.0
#define PAD_B 30.0

static double roas(double revenue, double spend)
{
	return spend > 0 ? revenue / spend : NAN;
}

/* The cumulative ROAS curve of c: day 0 (nothing yet), then each horizon. */
static void campaign_chart(FILE *f, const struct score_html *r, const struct score_html_campaign *c)
{
	const double last = (double)r->horizons[r->n_horizons - 1];
	struct svg_frame a = { CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B, 0, last, 0, 1.2, 1 };
	int has_band = 1;

	for (size_t h = 0; h < r->n_horizons; h++) {
		a.y1 = fmax(a.y1, roas(c->revenue[h], c->spend) * 1.1);
		if (isnan(c->revenue_hi[h]))
			has_band = 0;
		else
			a.y1 = fmax(a.y1, roas(c->revenue_hi[h], c->spend) * 1.05);
	}
	a.y1 = svg_nice_max(a.y1);
	fprintf(f, "<svg class=\"campaign\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		   "role=\"img\" data-app=\"", CHART_W, CHART_H, CHART_W, CHART_H);
	svg_text(f, c->app);
	fputs("\" data-campaign=\"", f);
	svg_text(f, c->campaign);
	fputs("\" data-payback-day=\"", f);
	if (c->payback_day >= 0)
		fprintf(f, "%lld", (long long)c->payback_day);
	fputc('"', f);
	for (size_t h = 0; h < r->n_horizons; h++)
		fprintf(f, " data-roas-%lld=\"%.4f\"", (long long)r->horizons[h],
			roas(c->revenue[h], c->spend));
	fputs(">\n<title>", f);
	svg_text(f, c->campaign);
	fputs("</title>\n<text x=\"6\" y=\"13\" font-weight=\"bold\">", f);
	svg_text(f, c->campaign);
	fprintf(f, "</text>\n<text x=\"6\" y=\"27\" class=\"sub\">%zu users, spend %.2f, tier %d, %s"
		   "</text>\n", c->users, c->spend, c->tier, c->method);
	/* axes and grid */
	svg_y_grid(f, &a, "class=\"grid\"", 3);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">0</text>\n", svg_x(&a, 0),
		CHART_H - PAD_B + 13);
	for (size_t h = 0; h < r->n_horizons; h++)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">D%lld</text>\n",
			svg_x(&a, (double)r->horizons[h]), CHART_H - PAD_B + 13,
			(long long)r->horizons[h]);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"sub\">day since install"
		   "</text>\n", (PAD_L + CHART_W - PAD_R) / 2, CHART_H - 4);
	/* the 80% interval of the cumulative revenue, as ROAS */
	if (has_band) {
		fputs("<polygon class=\"band\" points=\"", f);
		svg_xy(f, &a, 0, 0);
		for (size_t h = 0; h < r->n_horizons; h++) {
			fputc(' ', f);
			svg_xy(f, &a, (double)r->horizons[h], roas(c->revenue_hi[h], c->spend));
		}
		for (size_t h = r->n_horizons; h-- > 0;) {
			fputc(' ', f);
			svg_xy(f, &a, (double)r->horizons[h], roas(c->revenue_lo[h], c->spend));
		}
		fputs("\"/>\n", f);
	}
	/* cost: where cumulative revenue pays the spend back */
	fprintf(f, "<line class=\"cost\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
		   "<text x=\"%.1f\" y=\"%.1f\" class=\"cost-label\" text-anchor=\"end\">cost (ROAS 1)</text>\n",
		PAD_L, CHART_W - PAD_R, svg_y(&a, 1), svg_y(&a, 1), CHART_W - PAD_R - 2, svg_y(&a, 1) - 3);
	fputs("<polyline class=\"curve\" points=\"", f);
	svg_xy(f, &a, 0, 0);
	for (size_t h = 0; h < r->n_horizons; h++) {
		fputc(' ', f);
		svg_xy(f, &a, (double)r->horizons[h], roas(c->revenue[h], c->spend));
	}
	fputs("\"/>\n", f);
	if (c->payback_day >= 0)
		fprintf(f, "<circle class=\"payback\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>"
			   "<text x=\"%.1f\" y=\"%.1f\" class=\"payback-label\">pays back on day %lld</text>\n",
			svg_x(&a, (double)c->payback_day), svg_y(&a, 1), PAD_L + 4, PAD_T + 10,
			(long long)c->payback_day);
	else
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"no-payback\">no payback by day %lld</text>\n",
			PAD_L + 4, PAD_T + 10, (long long)r->horizons[r->n_horizons - 1]);
	fputs("</svg>\n", f);
}

static int64_t ranking_h; /* horizon index the ranking sorts on */

static int compare_roas_desc(const void *pa, const void *pb)
{
	const struct score_html_campaign *x = *(const struct score_html_campaign *const *)pa;
	const struct score_html_campaign *y = *(const struct score_html_campaign *const *)pb;
	const double rx = roas(x->revenue[ranking_h], x->spend);
	const double ry = roas(y->revenue[ranking_h], y->spend);

	return rx < ry ? 1 : rx > ry ? -1 : strcmp(x->campaign, y->campaign);
}

static void campaign_table(FILE *f, const struct score_html *r,
			   const struct score_html_campaign *const *list, size_t n, const char *id)
{
	fprintf(f, "<table id=\"%s\"><thead><tr><th>app</th><th>campaign</th><th>users</th>"
		   "<th>spend</th>", id);
	for (size_t h = 0; h < r->n_horizons; h++)
		fprintf(f, "<th>ROAS D%lld (80%% interval)</th>", (long long)r->horizons[h]);
	fputs("<th>payback day</th><th>tier</th><th>method</th></tr></thead><tbody>\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct score_html_campaign *c = list[i];

		fputs("<tr><td>", f);
		svg_text(f, c->app);
		fputs("</td><td>", f);
		svg_text(f, c->campaign);
		fprintf(f, "</td><td>%zu</td><td>%.2f</td>", c->users, c->spend);
		for (size_t h = 0; h < r->n_horizons; h++) {
			fprintf(f, "<td>%.3f", roas(c->revenue[h], c->spend));
			if (!isnan(c->revenue_lo[h]))
				fprintf(f, " <span class=\"sub\">(%.2f to %.2f)</span>",
					roas(c->revenue_lo[h], c->spend), roas(c->revenue_hi[h], c->spend));
			fputs("</td>", f);
		}
		if (c->payback_day >= 0)
			fprintf(f, "<td>%lld</td>", (long long)c->payback_day);
		else
			fprintf(f, "<td>not by D%lld</td>", (long long)r->horizons[r->n_horizons - 1]);
		fprintf(f, "<td>%d</td><td>%s</td></tr>\n", c->tier, c->method);
	}
	fputs("</tbody></table>\n", f);
}

static void segment_chart(FILE *f, const struct score_html *r)
{
	static const char *const names[] = { "Low", "Medium", "High", "VIP" };
	static const char *const colors[] = { "#9aa3b5", "#7fb0f0", "#1d6fd6", "#0b3d91" };
	const double w = 560, bar = 22;
	size_t max = 1;

	for (int k = 0; k <= SEGMENT_CUTS; k++)
		max = r->segments[k] > max ? r->segments[k] : max;
	fprintf(f, "<svg id=\"segments\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		   "role=\"img\"><title>Value segments at D%lld</title>\n", w,
		(SEGMENT_CUTS + 1) * (bar + 8) + 8, w, (SEGMENT_CUTS + 1) * (bar + 8) + 8,
		(long long)r->target_horizon);
	for (int k = 0; k <= SEGMENT_CUTS; k++) {
		const double y = 4 + k * (bar + 8);
		const double len = 300.0 * (double)r->segments[k] / (double)max;

		fprintf(f, "<text x=\"4\" y=\"%.1f\">%s</text><rect class=\"segment\" data-segment=\"%s\" "
			   "data-users=\"%zu\" x=\"80\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\"/>"
			   "<text x=\"%.1f\" y=\"%.1f\">%zu users (%.1f%%)</text>\n",
			y + 15, names[k], names[k], r->segments[k], y, fmax(len, 1), bar, colors[k],
			86 + len, y + 15, r->segments[k],
			r->users ? 100.0 * (double)r->segments[k] / (double)r->users : 0);
	}
	fputs("</svg>\n", f);
}

void score_html_write(FILE *f, const struct score_html *r)
{
	const struct score_html_campaign **ranked =
		xmalloc((r->n_campaigns ? r->n_campaigns : 1) * sizeof(*ranked));
	const long long longest = (long long)r->horizons[r->n_horizons - 1];
	size_t k = 0, n_top, bottom_from;
	char iso[32];

	for (size_t h = 0; h < r->n_horizons; h++)
		if (r->horizons[h] == r->target_horizon)
			ranking_h = (int64_t)h;
	for (size_t i = 0; i < r->n_campaigns; i++)
		if (r->campaigns[i].users >= r->min_users && r->campaigns[i].spend > 0)
			ranked[k++] = &r->campaigns[i];
	qsort(ranked, k, sizeof(*ranked), compare_roas_desc);
	n_top = k < SCORE_HTML_TOP ? k : SCORE_HTML_TOP;
	/* the bottom list never repeats a campaign of the top one */
	bottom_from = k > 2 * SCORE_HTML_TOP ? k - SCORE_HTML_TOP : n_top;

	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", f);
	fprintf(f, "<title>ltvpipe score report, model version %lld</title>\n<style>\n",
		(long long)r->model_version);
	fputs("body{font-family:system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1100px}\n"
	      "table{border-collapse:collapse;margin:10px 0 18px}td,th{border-bottom:1px solid #e4e6ea;"
	      "padding:4px 9px;text-align:right;font-size:13px}th{background:#eef0f4}"
	      "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}\n"
	      ".sub{color:#667;font-size:11px}svg{font-family:sans-serif;font-size:10px;margin:0 10px 10px 0;"
	      "background:#fff;border:1px solid #e4e6ea;border-radius:4px}\n"
	      ".grid{stroke:#eee}.band{fill:#4c8bf5;fill-opacity:.18;stroke:none}"
	      ".curve{fill:none;stroke:#1d6fd6;stroke-width:2}.cost{stroke:#b00020;stroke-dasharray:5 3}"
	      ".cost-label{fill:#b00020}.payback{fill:#1b7f3b}.payback-label{fill:#1b7f3b}"
	      ".no-payback{fill:#a66a00}\n</style></head><body>\n", f);
	fprintf(f, "<h1>Predicted value of the users scored</h1>\n<p id=\"summary\">Model version %lld, "
		   "as of %s: %zu users younger than %lld days in %zu campaigns, acquired for %.2f. "
		   "Money is in the currency of the input revenue and cost.</p>\n",
		(long long)r->model_version, time_format_date(r->as_of, iso, sizeof(iso)), r->users,
		longest, r->n_campaigns, r->spend);
	fputs("<table id=\"totals\"><thead><tr><th>horizon</th><th></th><th>predicted revenue</th>"
	      "<th>ROAS</th></tr></thead><tbody>\n", f);
	for (size_t h = 0; h < r->n_horizons; h++)
		fprintf(f, "<tr><td>D%lld</td><td></td><td>%.2f</td><td>%s%.3f</td></tr>\n",
			(long long)r->horizons[h], r->revenue[h], r->spend > 0 ? "" : "n/a ",
			r->spend > 0 ? r->revenue[h] / r->spend : 0);
	fputs("</tbody></table>\n", f);

	fprintf(f, "<h2>Top campaigns by predicted D%lld ROAS</h2>\n<p class=\"sub\">Campaigns with at "
		   "least %zu users scored and known cost: %zu of %zu. Each chart is the campaign's "
		   "predicted cumulative ROAS from install (day 0) to day %lld, read linearly between "
		   "the horizons; the shaded band is its 80%% interval; the dashed line is its cost "
		   "(ROAS 1); the dot is the day it pays back.</p>\n<div id=\"top\">\n",
		(long long)r->target_horizon, r->min_users, k, r->n_campaigns, longest);
	for (size_t i = 0; i < n_top; i++)
		campaign_chart(f, r, ranked[i]);
	fputs("</div>\n", f);
	campaign_table(f, r, ranked, n_top, "top-table");
	fprintf(f, "<h2>Bottom campaigns by predicted D%lld ROAS</h2>\n<div id=\"bottom\">\n",
		(long long)r->target_horizon);
	for (size_t i = bottom_from; i < k; i++)
		campaign_chart(f, r, ranked[i]);
	if (bottom_from >= k)
		fputs("<p class=\"sub\">Every ranked campaign is in the top list.</p>\n", f);
	fputs("</div>\n", f);
	campaign_table(f, r, ranked + bottom_from, k - bottom_from, "bottom-table");
	fprintf(f, "<h2>Value segments at D%lld</h2>\n<p class=\"sub\">Cut at predicted D%lld LTV "
		   "%.4f (Medium), %.4f (High) and %.4f (VIP).</p>\n", (long long)r->target_horizon,
		(long long)r->target_horizon, r->segment_cut[0], r->segment_cut[1], r->segment_cut[2]);
	segment_chart(f, r);
	fputs("</body></html>\n", f);
	free(ranked);
}
