/*
 * The inline SVG charts of the HTML reports (cli/svg.c), one writer for
 * evaluate's page (cli/eval_report.c) and score's (cli/score_html.c): the
 * plot frame and its coordinates, the value grid with its labels, points of
 * paths, round axis bounds and escaped text.
 */
#ifndef LTV_SVG_H
#define LTV_SVG_H

#include <stdio.h>

/* A chart of w x h pixels whose plot area, inside the pads, shows [x0, x1] x [y0, y1]. */
struct svg_frame {
	double w, h;
	double pad_l, pad_r, pad_t, pad_b;
	double x0, x1, y0, y1;
	int clamp_top;  /* values above y1 are drawn at y1 */
};

/* Pixel column of x and row of y (y grows upwards in the data, downwards on screen). */
double svg_x(const struct svg_frame *fr, double x);
double svg_y(const struct svg_frame *fr, double y);
/* A round upper bound for an axis (1, 2 or 5 times a power of ten); 1 for nothing positive. */
double svg_nice_max(double v);
/* s with <, >, & and " escaped, for text and attribute values. */
void svg_text(FILE *f, const char *s);
/*
 * The value grid: 5 horizontal lines from y0 to y1 across the plot area, with
 * line_attrs (class="grid", stroke="#eee"), each labelled (%.3g) label_gap
 * pixels left of the plot area.
 */
void svg_y_grid(FILE *f, const struct svg_frame *fr, const char *line_attrs, double label_gap);
/* One point of a polyline or polygon, "x,y" in pixels (the caller writes the separators). */
void svg_xy(FILE *f, const struct svg_frame *fr, double x, double y);

#endif
