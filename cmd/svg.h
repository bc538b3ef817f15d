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

/* <g class="cls"> ... </g> around the elements drawn in between */
void svg_group_begin(svg *s, const char *cls);
void svg_group_end(svg *s);

/* Point labels that do not overlap: block the areas labels must avoid (point
   markers, legend), then svg_text_near tries eight places around a point
   (right/left/above/below, then farther out) and draws the text at the first
   that stays inside `area` and overlaps nothing blocked or already placed.
   Text extent is estimated as 0.6 em per character by 1 em. Returns 1 if
   drawn, 0 if no place was free (nothing drawn; the caller may add a title). */
typedef struct { double x0, y0, x1, y1; } svg_box;
typedef struct { svg_box *b; int n, cap; } svg_placer;
void svg_placer_block(svg_placer *p, double x0, double y0, double x1, double y1);
int svg_text_near(svg *s, svg_placer *p, double px, double py, double gap, double size, const char *fill,
                  const char *text, const svg_box *area);
void svg_placer_free(svg_placer *p);

/* Up to max "nice" tick values covering [lo, hi]; returns how many. */
int svg_ticks(double lo, double hi, double *ticks, int max);
/* Diverging colour (blue - white - red) for t in [-1, 1], as "#rrggbb". */
void svg_diverging(double t, char out[8]);

#endif
