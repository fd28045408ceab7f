/*
 * SVG chart primitives (contract in include/ltv/svg.h). Coordinates print
 * with one decimal, labels with %.3g, so both reports draw alike.
 */
#include <math.h>

#include "ltv/svg.h"

double svg_x(const struct svg_frame *fr, double x)
{
	return fr->pad_l + (x - fr->x0) / (fr->x1 - fr->x0) * (fr->w - fr->pad_l - fr->pad_r);
}

double svg_y(const struct svg_frame *fr, double y)
{
	if (fr->clamp_top)
		y = fmin(y, fr->y1);
	return fr->h - fr->pad_b - (y - fr->y0) / (fr->y1 - fr->y0) * (fr->h - fr->pad_t - fr->pad_b);
}

double svg_nice_max(double v)
{
	double e, m;

	if (!(v > 0) || isinf(v))
		return 1;
	e = pow(10, floor(log10(v)));
	m = v / e;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e;
}

void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

void svg_y_grid(FILE *f, const struct svg_frame *fr, const char *line_attrs, double label_gap)
{
	for (int k = 0; k <= 4; k++) {
		const double v = fr->y0 + (fr->y1 - fr->y0) * k / 4;
		const double y = svg_y(fr, v);

		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" %s/>"
			   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
			fr->pad_l, fr->w - fr->pad_r, y, y, line_attrs, fr->pad_l - label_gap, y + 4, v);
	}
}

void svg_xy(FILE *f, const struct svg_frame *fr, double x, double y)
{
	fprintf(f, "%.1f,%.1f", svg_x(fr, x), svg_y(fr, y));
}
