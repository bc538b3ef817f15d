/* svg.h - a small SVG 1.1 writer for the CLI's plots (compare scatter, CIE
 * heat map). Plain shapes and text, escaped; written atomically. */
#ifndef SS_SVG_H
#define SS_SVG_H

#include <stdio.h>

#include "common.h"

typedef struct {
    ss_outfile out;
    FILE *f;
    double w, h;
} svg;

int svg_begin(svg *s, const char *path, double w, double h, char *err);
int svg_end(svg *s, char *err);       /* closes and renames into place */
void svg_abort(svg *s);

void svg_rect(svg *s, double x, double y, double w, double h, const char *fill, const char *stroke);
void svg_line(svg *s, double x1, double y1, double x2, double y2, const char *stroke, double width, int dashed);
void svg_polyline(svg *s, const double *xy, int n, const char *stroke, double width);
void svg_circle(svg *s, double cx, double cy, double r, const char *fill, const char *stroke);
/* anchor: "start", "middle", "end"; rotate: degrees about (x, y) */
void svg_text(svg *s, double x, double y, double size, const char *anchor, const char *fill, double rotate,
              const char *text);
void svg_title(svg *s, const char *text);   /* tooltip for the last element group */

/* Up to max "nice" tick values covering [lo, hi]; returns how many. */
int svg_ticks(double lo, double hi, double *ticks, int max);
/* Diverging colour (blue - white - red) for t in [-1, 1], as "#rrggbb". */
void svg_diverging(double t, char out[8]);

#endif
