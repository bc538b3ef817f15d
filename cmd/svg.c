/* svg.c - see svg.h. */
#include "svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int svg_begin(svg *s, const char *path, double w, double h, char *err) {
    memset(s, 0, sizeof *s);
    int rc = ss_out_open(&s->out, path, err);
    if (rc) return rc;
    s->f = s->out.fp;
    s->w = w;
    s->h = h;
    fprintf(s->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" style=\"max-width: 100%%; height: auto\" "
            "font-family=\"Helvetica, Arial, sans-serif\">\n"
            "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
            w, h, w, h, w, h);
    return SS_OK;
}

int svg_end(svg *s, char *err) {
    fprintf(s->f, "</svg>\n");
    s->f = NULL;
    return ss_out_commit(&s->out, err);
}

void svg_abort(svg *s) {
    s->f = NULL;
    ss_out_abort(&s->out);
}

static void esc(FILE *f, const char *t) {
    for (; *t; t++) {
        switch (*t) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*t < 0x20 && *t != '\t') fputc(' ', f);   /* XML forbids most control chars */
            else fputc(*t, f);
        }
    }
}

void svg_rect(svg *s, double x, double y, double w, double h, const char *fill, const char *stroke) {
    fprintf(s->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"", x, y, w, h, fill ? fill : "none");
    if (stroke) fprintf(s->f, " stroke=\"%s\"", stroke);
    fprintf(s->f, "/>\n");
}

void svg_line(svg *s, double x1, double y1, double x2, double y2, const char *stroke, double width, int dashed) {
    fprintf(s->f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"%.2f\"%s/>\n", x1, y1,
            x2, y2, stroke, width, dashed ? " stroke-dasharray=\"4 3\"" : "");
}

void svg_polyline(svg *s, const double *xy, int n, const char *stroke, double width) {
    if (n < 2) return;
    fprintf(s->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" points=\"", stroke, width);
    for (int i = 0; i < n; i++) fprintf(s->f, "%s%.2f,%.2f", i ? " " : "", xy[2 * i], xy[2 * i + 1]);
    fprintf(s->f, "\"/>\n");
}

void svg_circle(svg *s, double cx, double cy, double r, const char *fill, const char *stroke) {
    fprintf(s->f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"", cx, cy, r, fill);
    if (stroke) fprintf(s->f, " stroke=\"%s\"", stroke);
    fprintf(s->f, "/>\n");
}

void svg_text(svg *s, double x, double y, double size, const char *anchor, const char *fill, double rotate,
              const char *text) {
    fprintf(s->f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"%s\" fill=\"%s\"", x, y, size,
            anchor ? anchor : "start", fill ? fill : "black");
    if (rotate != 0) fprintf(s->f, " transform=\"rotate(%.1f %.2f %.2f)\"", rotate, x, y);
    fputc('>', s->f);
    esc(s->f, text);
    fprintf(s->f, "</text>\n");
}

void svg_title(svg *s, const char *text) {
    fprintf(s->f, "<title>");
    esc(s->f, text);
    fprintf(s->f, "</title>\n");
}

void svg_group_begin(svg *s, const char *cls) { fprintf(s->f, "<g class=\"%s\">\n", cls); }
void svg_group_end(svg *s) { fprintf(s->f, "</g>\n"); }

void svg_placer_block(svg_placer *p, double x0, double y0, double x1, double y1) {
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 64;
        svg_box *b = realloc(p->b, (size_t)nc * sizeof *b);
        if (!b) return;
        p->b = b;
        p->cap = nc;
    }
    p->b[p->n++] = (svg_box){x0, y0, x1, y1};
}

void svg_placer_free(svg_placer *p) {
    free(p->b);
    memset(p, 0, sizeof *p);
}

int svg_text_near(svg *s, svg_placer *p, double px, double py, double gap, double size, const char *fill,
                  const char *text, const svg_box *area) {
    int chars = 0;
    for (const char *c = text; *c; c++) chars += ((unsigned char)*c & 0xC0) != 0x80;
    double w = 0.6 * size * chars, h = size;
    /* candidate boxes (left, top) around the point, nearest first */
    const double dx[8] = {gap, -gap - w, gap, -gap - w, -w / 2, -w / 2, 2.5 * gap, -2.5 * gap - w};
    const double dy[8] = {-gap - h, -gap - h, gap, gap, -2 * gap - h, 2 * gap, -h / 2, -h / 2};
    for (int k = 0; k < 8; k++) {
        double x0 = px + dx[k], y0 = py + dy[k], x1 = x0 + w, y1 = y0 + h;
        if (area && (x0 < area->x0 || y0 < area->y0 || x1 > area->x1 || y1 > area->y1)) continue;
        int clash = 0;
        for (int i = 0; i < p->n && !clash; i++)
            clash = x0 < p->b[i].x1 && p->b[i].x0 < x1 && y0 < p->b[i].y1 && p->b[i].y0 < y1;
        if (clash) continue;
        svg_placer_block(p, x0, y0, x1, y1);
        svg_text(s, x0, y1 - 0.2 * size, size, "start", fill, 0, text);
        return 1;
    }
    return 0;
}

int svg_ticks(double lo, double hi, double *ticks, int max) {
    if (!(hi > lo)) { ticks[0] = lo; return 1; }
    double span = hi - lo, raw = span / (max > 1 ? max - 1 : 1);
    double mag = pow(10, floor(log10(raw)));
    double step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    int n = 0;
    for (double t = ceil(lo / step) * step; t <= hi + 1e-9 * span && n < max; t += step) ticks[n++] = fabs(t) < 1e-12 * step ? 0 : t;
    return n;
}

void svg_diverging(double t, char out[8]) {
    if (!(t == t)) t = 0;
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    /* white at 0, #b2182b at +1, #2166ac at -1 */
    double r, g, b;
    if (t >= 0) { r = 255 + t * (178 - 255); g = 255 + t * (24 - 255); b = 255 + t * (43 - 255); }
    else { t = -t; r = 255 + t * (33 - 255); g = 255 + t * (102 - 255); b = 255 + t * (172 - 255); }
    snprintf(out, 8, "#%02x%02x%02x", (int)lround(r), (int)lround(g), (int)lround(b));
}
