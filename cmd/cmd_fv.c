/* cmd_fv.c - task-vector and fv: task-encoding hidden states and function
 * vectors over an in-context-learning dataset (ARENA 1.3.2 sections 2-3).
 * Parsing and printing only; the computation is lib/fv.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fv.h"
#include "npy.h"
#include "svg.h"

static const char *common_help =
    "  --dataset F        JSON list of {\"input\": x, \"output\": y} (e.g. weights/datasets/antonyms.json)\n"
    "  --layer L          inject at the output of block L (blocks.L.hook_resid_post)\n"
    "  --layers SPEC      sweep the injection layer instead: 0-5, 1,3,5 or 0-2,5; prints accuracy per layer\n"
    "  --sweep-json F     with --layers: write the sweep (the --json document) to F\n"
    "  --sweep-plot F.svg with --layers: accuracy and mean log p(answer) vs layer: the %s against\n"
    "                     the zero-shot, ICL and shuffled-label ICL baselines\n"
    "  --shots N          in-context examples per prompt (default 5)\n"
    "  --n-prompts N      ICL prompts averaged (default 20)\n"
    "  --n-eval N         held-out queries scored (default min(50, half the dataset))\n"
    "  --template T       prompt format, default \"Q: {x}\\nA: {y}\\n\\n\": one example, {x} the input, {y} the\n"
    "                     output, the text after {y} the separator between examples; the query is the text up to\n"
    "                     {y}, and a space right before {y} goes with the answer. Escapes \\n \\t \\\\, {{ }} for braces\n"
    "  --seed S           item split and prompt sampling seed (default 0)\n"
    "  --examples N       greedy generations shown, at the (best) layer (default 3), --max-new-tokens N (default 8)\n"
    "  --no-bos           no <|endoftext|> before each prompt\n"
    "  --quiet            no progress on stderr (shown for runs over ~1.5 s: a counter of forward passes with its rate)\n"
    "Items are shuffled by the seed: the first n_eval are the evaluation queries, the rest the pool every in-context\n"
    "example comes from, so no query is ever shown as an example (the dataset needs n_eval + shots + 1 items).\n"
    "Accuracy is first-token exact match of the answer; the shuffled-label baseline is the ICL prompts with their\n"
    "example outputs permuted.\n";

typedef struct {
    const char *model, *dataset, *save, *plot, *cie_in, *cie_out, *sweep_json, *sweep_plot, *template;
    int json, quiet;
    int *layers, n_layers;
    int *heads, n_heads_list, heads_given;
    fv_opts o;
} fv_args;

/* "0-5", "1,3,5", "0-2,5" -> layers in the order given; a layer twice is refused */
static int parse_layers(const char *s, int **out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 4096, *v = malloc((size_t)cap * sizeof(int));   /* more layers than any model has */
    if (!v) return cli_fail(SS_ERUNTIME, "out of memory");
    const char *p = s;
    while (1) {
        char *end;
        if (*p < '0' || *p > '9') { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': want L, A-B or a comma list of them", s); }
        long a = strtol(p, &end, 10), b = a;
        if (*end == '-') {
            p = end + 1;
            if (*p < '0' || *p > '9') { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': want L, A-B or a comma list of them", s); }
            b = strtol(p, &end, 10);
        }
        if (a > 100000 || b > 100000 || b < a) { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': range %ld-%ld is empty or too large", s, a, b); }
        for (long x = a; x <= b; x++) {
            for (int k = 0; k < *n; k++)
                if (v[k] == x) { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': layer %ld given twice", s, x); }
            if (*n >= cap) { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': too many layers", s); }
            v[(*n)++] = (int)x;
        }
        if (*end == '\0') break;
        if (*end != ',') { free(v); return cli_fail(SS_EINPUT, "--layers '%.40s': want L, A-B or a comma list of them", s); }
        p = end + 1;
    }
    *out = v;
    return SS_OK;
}

/* "L.H,L.H,..." -> (n, 2) */
static int parse_heads(const char *s, int **out, int *n) {
    *out = NULL;
    *n = 0;
    int *v = malloc((strlen(s) + 1) * 2 * sizeof(int));
    if (!v) return cli_fail(SS_ERUNTIME, "out of memory");
    const char *p = s;
    while (1) {
        char *e1, *e2;
        if (*p < '0' || *p > '9') break;
        long l = strtol(p, &e1, 10);
        if (*e1 != '.' || e1[1] < '0' || e1[1] > '9') break;
        long h = strtol(e1 + 1, &e2, 10);
        if (l > 100000 || h > 100000) break;
        v[2 * *n] = (int)l;
        v[2 * *n + 1] = (int)h;
        (*n)++;
        if (*e2 == '\0') { *out = v; return SS_OK; }
        if (*e2 != ',') break;
        p = e2 + 1;
    }
    free(v);
    *n = 0;
    return cli_fail(SS_EINPUT, "--heads-list '%.60s': want LAYER.HEAD[,LAYER.HEAD...], e.g. 9.6,12.3", s);
}

static void args_free(fv_args *a) {
    free(a->layers);
    free(a->heads);
}

/* returns 0 ok, 1 help shown, -1 error */
static int parse(int argc, char **argv, fv_args *a, int is_fv) {
    memset(a, 0, sizeof *a);
    fv_opts_default(&a->o);
    int have_layer = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v;
        long x;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (is_fv) {
                printf("usage: saesteer fv [--model DIR] --dataset F (--layer L | --layers SPEC) [--heads K | --heads-list L.H,..]\n"
                       "                   [--cie-metric prob|logprob] [--cie-out C.json | --cie-in C.json] [--save-fv V.npy]\n"
                       "                   [--plot heat.svg] [--template T] [--json] ...\n"
                       "Function vectors (Todd et al.): the mean attention-head output (hook_z, last token) over clean ICL\n"
                       "prompts; each head's causal indirect effect (CIE: the rise in p(answer) when its mean is patched into\n"
                       "shuffled-label prompts); FV = the chosen heads' means through c_proj (+ c_proj's bias once per layer\n"
                       "among them), added at layer L at the last position of zero-shot prompts and every generated token.\n"
                       "  --heads K          the top K heads by CIE (default 10)\n"
                       "  --heads-list L.H,..  these heads instead (layer.head, e.g. 3.1,4.0); no CIE sweep unless\n"
                       "                     --plot or --cie-out asks for the CIEs\n"
                       "  --cie-metric M     prob (default: the rise in p(answer), as Todd et al.) or logprob (in log p)\n"
                       "  --cie-out C.json   save the CIEs with what they depend on (model and dataset sha256, template,\n"
                       "                     shots, n_prompts, n_eval, seed, bos, metric)\n"
                       "  --cie-in C.json    reuse them instead of recomputing; every one of those must match this run\n"
                       "  --plot heat.svg    CIE heat map (layers x heads, the FV's heads outlined)\n"
                       "  --save-fv V.npy    the FV (n_embd,)\n");
                printf(common_help, "FV");
            } else {
                printf("usage: saesteer task-vector [--model DIR] --dataset F (--layer L | --layers SPEC) [--mode replace|add]\n"
                       "                            [--save V.npy] [--template T] [--json] ...\n"
                       "Task vectors (Hendel et al.): h = mean layer-L residual at the last token over ICL prompts, put into\n"
                       "the last token of zero-shot prompts. Reports zero-shot, patched, ICL and shuffled-label accuracy and\n"
                       "the mean log-prob change of the correct token.\n"
                       "  --mode replace     (default) the zero-shot prompt's last-token state at layer L is replaced by h\n"
                       "                     (Hendel et al.)\n"
                       "  --mode add         h is added to it (ARENA 1.3.2); either way only the prompt's last position\n"
                       "  --save V.npy       h (n_embd,); with --layers one row per swept layer (n_layers, n_embd)\n");
                printf(common_help, "task vector");
            }
            return 1;
        }
#define VAL() do { if (!(v = cli_value(argc, argv, &i))) return -1; } while (0)
#define INT(lo, hi) do { VAL(); if (cli_int(s, v, lo, hi, &x)) return -1; } while (0)
        if (!strcmp(s, "--model")) { VAL(); a->model = v; }
        else if (!strcmp(s, "--dataset")) { VAL(); a->dataset = v; }
        else if (!strcmp(s, "--layer")) { INT(0, 100000); a->o.layer = (int)x; have_layer = 1; }
        else if (!strcmp(s, "--layers")) {
            VAL();
            free(a->layers);
            if (parse_layers(v, &a->layers, &a->n_layers)) return -1;
        }
        else if (!strcmp(s, "--shots")) { INT(0, 1000); a->o.shots = (int)x; }
        else if (!strcmp(s, "--n-prompts")) { INT(1, 100000); a->o.n_prompts = (int)x; }
        else if (!strcmp(s, "--n-eval")) { INT(1, 100000); a->o.n_eval = (int)x; }
        else if (!strcmp(s, "--examples")) { INT(0, 16); a->o.n_examples = (int)x; }
        else if (!strcmp(s, "--max-new-tokens")) { INT(1, 1024); a->o.max_new = (int)x; }
        else if (!strcmp(s, "--seed")) { INT(0, 1L << 62); a->o.seed = (uint64_t)x; }
        else if (!strcmp(s, "--template")) { VAL(); a->template = v; }
        else if (!strcmp(s, "--no-bos")) a->o.bos = 0;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--quiet")) a->quiet = 1;
        else if (!strcmp(s, "--sweep-json")) { VAL(); a->sweep_json = v; }
        else if (!strcmp(s, "--sweep-plot")) { VAL(); a->sweep_plot = v; }
        else if (is_fv && !strcmp(s, "--heads")) { INT(1, 100000); a->o.top_k = (int)x; a->heads_given = 1; }
        else if (is_fv && !strcmp(s, "--heads-list")) {
            VAL();
            free(a->heads);
            if (parse_heads(v, &a->heads, &a->n_heads_list)) return -1;
        }
        else if (is_fv && !strcmp(s, "--cie-metric")) {
            VAL();
            if (!strcmp(v, "prob")) a->o.metric = FV_CIE_PROB;
            else if (!strcmp(v, "logprob")) a->o.metric = FV_CIE_LOGPROB;
            else { cli_fail(SS_EINPUT, "--cie-metric '%.40s': want prob or logprob", v); return -1; }
        }
        else if (is_fv && !strcmp(s, "--cie-out")) { VAL(); a->cie_out = v; }
        else if (is_fv && !strcmp(s, "--cie-in")) { VAL(); a->cie_in = v; }
        else if (is_fv && !strcmp(s, "--save-fv")) { VAL(); a->save = v; }
        else if (is_fv && !strcmp(s, "--plot")) { VAL(); a->plot = v; }
        else if (!is_fv && !strcmp(s, "--save")) { VAL(); a->save = v; }
        else if (!is_fv && !strcmp(s, "--mode")) {
            VAL();
            if (!strcmp(v, "replace")) a->o.mode = FV_REPLACE;
            else if (!strcmp(v, "add")) a->o.mode = FV_ADD;
            else { cli_fail(SS_EINPUT, "--mode '%.40s': want replace or add", v); return -1; }
        }
        else { cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", s); return -1; }
#undef VAL
#undef INT
    }
    if (!a->dataset) { cli_fail(SS_EINPUT, "--dataset F is required"); return -1; }
    if (have_layer && a->layers) { cli_fail(SS_EINPUT, "--layer and --layers together: give one"); return -1; }
    if (!have_layer && !a->layers) { cli_fail(SS_EINPUT, "--layer L (or --layers SPEC) is required"); return -1; }
    if ((a->sweep_json || a->sweep_plot) && !a->layers) {
        cli_fail(SS_EINPUT, "%s needs --layers", a->sweep_json ? "--sweep-json" : "--sweep-plot");
        return -1;
    }
    if (a->heads && a->heads_given) { cli_fail(SS_EINPUT, "--heads and --heads-list together: give one"); return -1; }
    if (a->cie_in && a->cie_out) { cli_fail(SS_EINPUT, "--cie-in and --cie-out together: the CIEs would only be copied"); return -1; }
    a->o.layers = a->layers;
    a->o.n_layers = a->n_layers;
    a->o.heads = a->heads;
    a->o.n_heads = a->n_heads_list;
    a->o.want_cie = a->plot || a->cie_out;
    return 0;
}

/* ----------------------------------------------------------- progress --- */
typedef struct {
    double t0, last, delay, every;
    int tty, quiet, shown;
} progress_ctx;

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total) {
    progress_ctx *pc = ctx;
    if (pc->quiet) return;
    double now = ss_now(), el = now - pc->t0;
    if (el < pc->delay || (pc->shown && now - pc->last < pc->every && done < total)) return;
    pc->last = now;
    pc->shown = 1;
    double rate = el > 0 ? (double)done / el : 0, left = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%ssaesteer %s: %lld/%lld forward passes (%.0f%%), %.1f/s, ~%.0f s left [%s]%s",
            pc->tty ? "\r\033[K" : "", cli_cmd_name, (long long)done, (long long)total,
            total > 0 ? 100.0 * (double)done / (double)total : 100.0, rate, left, phase ? phase : "", pc->tty ? "" : "\n");
    fflush(stderr);
}

static void progress_init(progress_ctx *pc, int quiet) {
    memset(pc, 0, sizeof *pc);
    pc->t0 = ss_now();
    pc->quiet = quiet;
    pc->tty = isatty(2);
    pc->delay = 1.5;
    pc->every = pc->tty ? 0.2 : 5.0;
    const char *e = getenv("SAESTEER_PROGRESS_S");   /* tests: report every E seconds from the start */
    if (e && *e) pc->delay = pc->every = atof(e);
}

static void progress_end(progress_ctx *pc) {
    if (pc->tty && pc->shown) fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------- output --- */

/* generated text on one line: \n, \t, \r, other control bytes and backslash escaped */
static void print_escaped(const char *t) {
    for (const unsigned char *p = (const unsigned char *)(t ? t : ""); *p; p++) {
        if (*p == '\n') fputs("\\n", stdout);
        else if (*p == '\t') fputs("\\t", stdout);
        else if (*p == '\r') fputs("\\r", stdout);
        else if (*p == '\\') fputs("\\\\", stdout);
        else if (*p < 0x20 || *p == 0x7f) printf("\\x%02x", *p);
        else putchar(*p);
    }
}

static void add_examples(cJSON *j, const fv_result *r) {
    cJSON *ex = cJSON_AddArrayToObject(j, "examples");
    for (int i = 0; i < r->n_ex; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", r->ex[i].input);
        cJSON_AddStringToObject(o, "output", r->ex[i].output);
        cJSON_AddStringToObject(o, "zero_shot", r->ex[i].zero_shot ? r->ex[i].zero_shot : "");
        cJSON_AddStringToObject(o, "steered", r->ex[i].steered ? r->ex[i].steered : "");
        cJSON_AddItemToArray(ex, o);
    }
}

static void print_examples(const fv_result *r, const char *what) {
    for (int i = 0; i < r->n_ex; i++) {
        printf("  ");
        print_escaped(r->ex[i].input);
        printf(" -> ");
        print_escaped(r->ex[i].output);
        printf(" | zero-shot: ");
        print_escaped(r->ex[i].zero_shot);
        printf(" | %s: ", what);
        print_escaped(r->ex[i].steered);
        printf("\n");
    }
}

static double vnorm(const float *v, int n) {
    double s = 0;
    for (int j = 0; j < n; j++) s += (double)v[j] * v[j];
    return sqrt(s);
}

/* One panel of the sweep plot: the FV / task vector per layer as a line with
   points, the three baselines (which do not depend on the layer) as dashed
   lines, y from lo to hi. */
typedef struct {
    double ml, pw, mt, ph, lo, hi;
    int lmin, lmax;
} panel_geom;

static double px(const panel_geom *g, double l) {
    return g->lmax > g->lmin ? g->ml + g->pw * (l - g->lmin) / (g->lmax - g->lmin) : g->ml + g->pw / 2;
}
static double py(const panel_geom *g, double v) { return g->mt + g->ph * (1 - (v - g->lo) / (g->hi - g->lo)); }

static const char *BASE_COL[3] = {"#1b9e77", "#d95f02", "#666666"};
static const char *BASE_NAME[3] = {"ICL (few-shot)", "shuffled-label ICL", "zero-shot"};

static void panel(svg *s, const panel_geom *g, const fv_result *r, const int *ord, const double *val, const double *base,
                  const char *ylabel, const char *what, int acc) {
    char buf[160];
    double ticks[16];
    int nt = svg_ticks(g->lo, g->hi, ticks, 6);
    for (int t = 0; t < nt; t++) {
        svg_line(s, g->ml, py(g, ticks[t]), g->ml + g->pw, py(g, ticks[t]), "#e4e4e4", 1, 0);
        snprintf(buf, sizeof buf, acc ? "%.1f" : "%.4g", ticks[t]);
        svg_text(s, g->ml - 6, py(g, ticks[t]) + 4, 11, "end", "#333", 0, buf);
    }
    int nl = g->lmax - g->lmin + 1, step = nl <= 16 ? 1 : (nl + 15) / 16;
    for (int l = g->lmin; l <= g->lmax; l += step) {
        snprintf(buf, sizeof buf, "%d", l);
        svg_text(s, px(g, l), g->mt + g->ph + 16, 11, "middle", "#333", 0, buf);
    }
    svg_line(s, g->ml, g->mt + g->ph, g->ml + g->pw, g->mt + g->ph, "#333", 1, 0);
    svg_line(s, g->ml, g->mt, g->ml, g->mt + g->ph, "#333", 1, 0);
    svg_text(s, g->ml - 44, g->mt + g->ph / 2, 12, "middle", "black", -90, ylabel);
    for (int b = 0; b < 3; b++) svg_line(s, g->ml, py(g, base[b]), g->ml + g->pw, py(g, base[b]), BASE_COL[b], 2, 1);
    double *xy = malloc((size_t)r->n_layers * 2 * sizeof(double));
    if (!xy) return;
    for (int k = 0; k < r->n_layers; k++) { xy[2 * k] = px(g, r->layers[ord[k]]); xy[2 * k + 1] = py(g, val[ord[k]]); }
    svg_polyline(s, xy, r->n_layers, "#3366cc", 2.5);
    for (int k = 0; k < r->n_layers; k++) {
        fprintf(s->f, "<g>");
        svg_circle(s, xy[2 * k], xy[2 * k + 1], 4, "#3366cc", NULL);
        snprintf(buf, sizeof buf, "layer %d: %s acc %.3f, mean log p %.3f", r->layers[ord[k]], what, r->layer_acc[ord[k]],
                 r->layer_logprob[ord[k]]);
        svg_title(s, buf);
        fprintf(s->f, "</g>\n");
    }
    free(xy);
}

/* The papers' figure: accuracy vs injection layer (top) and, because a model
   at chance shows nothing there, mean log p(answer) vs layer (bottom). */
static int sweep_plot(const char *path, const fv_result *r, const char *title, const char *what) {
    char err[SS_ERRLEN], buf[160];
    double W = 720, H = 580, ml = 70, mr = 210, pw = W - ml - mr, ph = 210;
    int *ord = malloc((size_t)r->n_layers * sizeof(int));
    if (!ord) return cli_fail(SS_ERUNTIME, "out of memory");
    for (int k = 0; k < r->n_layers; k++) ord[k] = k;
    for (int k = 1; k < r->n_layers; k++)   /* by layer, for the line */
        for (int j = k; j > 0 && r->layers[ord[j - 1]] > r->layers[ord[j]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
    panel_geom g = {ml, pw, 50, ph, 0, 1, r->layers[ord[0]], r->layers[ord[r->n_layers - 1]]};
    double acc_base[3] = {r->icl_acc, r->shuffled_acc, r->zero_shot_acc};
    double lp_base[3] = {r->icl_logprob, r->shuffled_logprob, r->zero_shot_logprob};
    double lo = lp_base[0], hi = lp_base[0];
    for (int b = 1; b < 3; b++) { lo = fmin(lo, lp_base[b]); hi = fmax(hi, lp_base[b]); }
    for (int k = 0; k < r->n_layers; k++) { lo = fmin(lo, r->layer_logprob[k]); hi = fmax(hi, r->layer_logprob[k]); }
    double pad = hi - lo > 1e-9 ? 0.08 * (hi - lo) : 0.5;
    svg s;
    int rc = svg_begin(&s, path, W, H, err);
    if (rc) { free(ord); return cli_fail(rc, "%s", err); }
    svg_text(&s, W / 2, 24, 14, "middle", "black", 0, title);
    panel(&s, &g, r, ord, r->layer_acc, acc_base, "accuracy (first token)", what, 1);
    panel_geom g2 = g;
    g2.mt = g.mt + ph + 60;
    g2.lo = lo - pad;
    g2.hi = hi + pad;
    panel(&s, &g2, r, ord, r->layer_logprob, lp_base, "mean log p(answer)", what, 0);
    svg_text(&s, ml + pw / 2, H - 14, 12, "middle", "black", 0, "injection layer (blocks.L.hook_resid_post)");
    double lx = ml + pw + 20, ly = g.mt + 10;
    svg_line(&s, lx, ly, lx + 24, ly, "#3366cc", 2.5, 0);
    svg_circle(&s, lx + 12, ly, 4, "#3366cc", NULL);
    svg_text(&s, lx + 30, ly + 4, 11, "start", "black", 0, what);
    for (int b = 0; b < 3; b++) {
        ly += 20;
        svg_line(&s, lx, ly, lx + 24, ly, BASE_COL[b], 2, 1);
        snprintf(buf, sizeof buf, "%s %.2f", BASE_NAME[b], acc_base[b]);
        svg_text(&s, lx + 30, ly + 4, 11, "start", "black", 0, buf);
    }
    free(ord);
    if ((rc = svg_end(&s, err))) return cli_fail(rc, "%s", err);
    return SS_OK;
}

/* CIE heat map: layers down, heads across, diverging colours scaled to max |CIE| */
static int heat_map(const char *path, const float *cie, int L, int NH, const int *heads, int K, const char *where, int logprob) {
    char err[SS_ERRLEN], col[8], buf[192];
    double cell = NH > 24 ? 18 : 28, ml = 70, mt = 60, mr = 120, mb = 50;
    double W = ml + NH * cell + mr, H = mt + L * cell + mb;
    if (W < 560) W = 560;   /* room for the title */
    double mx = 0;
    for (int i = 0; i < L * NH; i++) if (cie[i] > mx || -cie[i] > mx) mx = cie[i] > 0 ? cie[i] : -cie[i];
    if (mx <= 0) mx = 1;
    svg s;
    int rc = svg_begin(&s, path, W, H, err);
    if (rc) return cli_fail(rc, "%s", err);
    snprintf(buf, sizeof buf, "Causal indirect effect per head (FV %s, its %d heads outlined)", where, K);
    svg_text(&s, W / 2, 24, 14, "middle", "black", 0, buf);
    for (int l = 0; l < L; l++) {
        snprintf(buf, sizeof buf, "%d", l);
        svg_text(&s, ml - 8, mt + l * cell + cell / 2 + 4, 11, "end", "#333", 0, buf);
        for (int h = 0; h < NH; h++) {
            double v = cie[l * NH + h];
            svg_diverging(v / mx, col);
            fprintf(s.f, "<g>");
            svg_rect(&s, ml + h * cell, mt + l * cell, cell, cell, col, "#ffffff");
            snprintf(buf, sizeof buf, "layer %d head %d: CIE %.5g", l, h, v);
            svg_title(&s, buf);
            fprintf(s.f, "</g>\n");
        }
    }
    for (int k = 0; k < K; k++)
        svg_rect(&s, ml + heads[2 * k + 1] * cell + 1, mt + heads[2 * k] * cell + 1, cell - 2, cell - 2, NULL, "black");
    for (int h = 0; h < NH; h++) {
        snprintf(buf, sizeof buf, "%d", h);
        svg_text(&s, ml + h * cell + cell / 2, mt - 6, 11, "middle", "#333", 0, buf);
    }
    svg_text(&s, ml + NH * cell / 2, mt - 22, 12, "middle", "black", 0, "head");
    svg_text(&s, 22, mt + L * cell / 2, 12, "middle", "black", -90, "layer");
    /* colour bar */
    double bx = ml + NH * cell + 30, by = mt, bh = L * cell;
    for (int i = 0; i < 50; i++) {
        svg_diverging(1 - 2.0 * i / 49, col);
        svg_rect(&s, bx, by + bh * i / 50, 16, bh / 50 + 0.5, col, NULL);
    }
    snprintf(buf, sizeof buf, "%+.3g", mx);
    svg_text(&s, bx + 22, by + 10, 10, "start", "#333", 0, buf);
    svg_text(&s, bx + 22, by + bh / 2 + 4, 10, "start", "#333", 0, "0");
    snprintf(buf, sizeof buf, "%+.3g", -mx);
    svg_text(&s, bx + 22, by + bh, 10, "start", "#333", 0, buf);
    svg_text(&s, bx + 8, by + bh + 24, 10, "middle", "#333", 0, logprob ? "delta log p(answer)" : "delta p(answer)");
    if ((rc = svg_end(&s, err))) return cli_fail(rc, "%s", err);
    return SS_OK;
}

static void add_heads(cJSON *j, const fv_result *r, int NH) {
    cJSON *hs = cJSON_AddArrayToObject(j, "heads");
    for (int k = 0; k < r->n_heads; k++) {
        int l = r->heads[2 * k], h = r->heads[2 * k + 1];
        cJSON *t = cJSON_CreateArray();
        cJSON_AddItemToArray(t, cJSON_CreateNumber(l));
        cJSON_AddItemToArray(t, cJSON_CreateNumber(h));
        cJSON_AddItemToArray(t, r->cie ? cJSON_CreateNumber(r->cie[l * NH + h]) : cJSON_CreateNull());
        cJSON_AddItemToArray(hs, t);
    }
}

static cJSON *result_json(const fv_args *a, const fv_result *r, const gpt2_config *cfg, int is_fv, double secs) {
    int C = cfg->n_embd, sweep = a->layers != NULL;
    char hook[64];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dataset", a->dataset);
    if (!sweep) {
        snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", r->layers[0]);
        cJSON_AddNumberToObject(j, "layer", r->layers[0]);
        cJSON_AddStringToObject(j, "hook", hook);
    } else {
        cJSON *ls = cJSON_AddArrayToObject(j, "layers");
        for (int k = 0; k < r->n_layers; k++) cJSON_AddItemToArray(ls, cJSON_CreateNumber(r->layers[k]));
        cJSON_AddNumberToObject(j, "best_layer", r->layers[r->best]);
    }
    if (!is_fv) cJSON_AddStringToObject(j, "mode", a->o.mode == FV_ADD ? "add" : "replace");
    cJSON_AddStringToObject(j, "template", a->template ? a->template : FV_TEMPLATE_DEFAULT);
    cJSON_AddNumberToObject(j, "shots", a->o.shots);
    cJSON_AddNumberToObject(j, "n_prompts", r->n_prompts);
    cJSON_AddNumberToObject(j, "n_eval", r->n_eval);
    cJSON_AddNumberToObject(j, "n_pool", r->n_pool);
    cJSON_AddNumberToObject(j, "seed", (double)a->o.seed);
    cJSON_AddBoolToObject(j, "bos", a->o.bos);
    cJSON_AddStringToObject(j, "prompt_example", r->prompt_example ? r->prompt_example : "");
    cJSON_AddNumberToObject(j, "zero_shot_acc", r->zero_shot_acc);
    cJSON_AddNumberToObject(j, is_fv ? "fv_acc" : "patched_acc", r->patched_acc);
    cJSON_AddNumberToObject(j, "icl_acc", r->icl_acc);
    cJSON_AddNumberToObject(j, "shuffled_acc", r->shuffled_acc);
    if (!is_fv) cJSON_AddNumberToObject(j, "logprob_change", r->patched_logprob - r->zero_shot_logprob);
    cJSON_AddNumberToObject(j, "zero_shot_logprob", r->zero_shot_logprob);
    cJSON_AddNumberToObject(j, is_fv ? "fv_logprob" : "patched_logprob", r->patched_logprob);
    cJSON_AddNumberToObject(j, "icl_logprob", r->icl_logprob);
    cJSON_AddNumberToObject(j, "shuffled_logprob", r->shuffled_logprob);
    cJSON_AddNumberToObject(j, is_fv ? "fv_norm" : "h_norm", vnorm(r->vec + (is_fv ? 0 : (size_t)r->best * C), C));
    cJSON *sw = cJSON_AddArrayToObject(j, "sweep");
    for (int k = 0; k < r->n_layers; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", r->layers[k]);
        cJSON_AddNumberToObject(o, "acc", r->layer_acc[k]);
        cJSON_AddNumberToObject(o, "logprob", r->layer_logprob[k]);
        if (!is_fv) cJSON_AddNumberToObject(o, "h_norm", vnorm(r->vec + (size_t)k * C, C));
        cJSON_AddItemToArray(sw, o);
    }
    if (is_fv) {
        cJSON_AddStringToObject(j, "cie_metric", a->o.metric == FV_CIE_LOGPROB ? "logprob" : "prob");
        cJSON_AddStringToObject(j, "heads_from", a->heads ? "list" : a->cie_in ? "cie-in" : "cie");
        add_heads(j, r, cfg->n_head);
        if (r->cie) {
            cJSON *cie = cJSON_AddArrayToObject(j, "cie");
            for (int l = 0; l < cfg->n_layer; l++) {
                cJSON *row = cJSON_CreateArray();
                for (int h = 0; h < cfg->n_head; h++) cJSON_AddItemToArray(row, cJSON_CreateNumber(r->cie[l * cfg->n_head + h]));
                cJSON_AddItemToArray(cie, row);
            }
        }
    }
    add_examples(j, r);
    cJSON_AddNumberToObject(j, "seconds", secs);
    return j;
}

static void print_text(const fv_args *a, const fv_result *r, const gpt2_config *cfg, int is_fv, double secs) {
    int C = cfg->n_embd;
    const char *what = is_fv ? "FV" : a->o.mode == FV_ADD ? "h added" : "patched";
    printf("%s%s, %d-shot, %d ICL prompts from a pool of %d items, %d held-out queries (%.1f s)\n",
           is_fv ? "function vector" : "task vector", is_fv ? "" : a->o.mode == FV_ADD ? " (add)" : " (replace)", a->o.shots,
           r->n_prompts, r->n_pool, r->n_eval, secs);
    printf("  prompt: ");
    print_escaped(r->prompt_example);
    printf("\n");
    if (!a->layers) {
        printf("  at blocks.%d.hook_resid_post: zero-shot acc %.3f | %s acc %.3f | ICL acc %.3f | shuffled-label acc %.3f\n",
               r->layers[0], r->zero_shot_acc, what, r->patched_acc, r->icl_acc, r->shuffled_acc);
        printf("  mean log p(answer): zero-shot %.3f -> %s %.3f (change %+.3f); ICL %.3f; shuffled %.3f; vector norm %.3f\n",
               r->zero_shot_logprob, what, r->patched_logprob, r->patched_logprob - r->zero_shot_logprob, r->icl_logprob,
               r->shuffled_logprob, vnorm(r->vec, C));
    } else {
        printf("  zero-shot acc %.3f (log p %.3f) | ICL acc %.3f (%.3f) | shuffled-label acc %.3f (%.3f)\n", r->zero_shot_acc,
               r->zero_shot_logprob, r->icl_acc, r->icl_logprob, r->shuffled_acc, r->shuffled_logprob);
        printf("  layer  %7s acc  log p(answer)%s\n", what, is_fv ? "" : "  norm of h");
        for (int k = 0; k < r->n_layers; k++) {
            printf("  %5d  %11.3f  %13.3f", r->layers[k], r->layer_acc[k], r->layer_logprob[k]);
            if (!is_fv) printf("  %9.3f", vnorm(r->vec + (size_t)k * C, C));
            printf("%s\n", k == r->best ? "  <- best" : "");
        }
        if (is_fv) printf("  FV norm %.3f\n", vnorm(r->vec, C));
    }
    if (is_fv) {
        printf("  FV heads (layer, head%s):", r->cie ? ", CIE" : "");
        for (int k = 0; k < r->n_heads; k++) {
            int l = r->heads[2 * k], h = r->heads[2 * k + 1];
            if (r->cie) printf(" (%d,%d,%.4g)", l, h, r->cie[l * cfg->n_head + h]);
            else printf(" (%d,%d)", l, h);
        }
        printf("\n");
    }
    if (r->n_ex) printf("  greedy generations at layer %d:\n", r->layers[r->best]);
    print_examples(r, what);
}

/* sha256 of the model's weights file (or of a sharded model's index) */
static int model_sha(const gpt2_model *m, char hex[65]) {
    char p[4200], err[SS_ERRLEN];
    snprintf(p, sizeof p, "%s/model.safetensors", m->dir);
    if (ss_sha256_file(p, hex, err) == SS_OK) return SS_OK;
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", m->dir);
    if (ss_sha256_file(p, hex, err) == SS_OK) return SS_OK;
    return cli_fail(SS_ERUNTIME, "%s", err);
}

static int run(int argc, char **argv, int is_fv) {
    fv_args a;
    int p = parse(argc, argv, &a, is_fv);
    if (p) { args_free(&a); return p > 0 ? 0 : SS_EINPUT; }
    char err[SS_ERRLEN];
    fv_template tpl;
    int rc = fv_template_parse(&tpl, a.template, err);
    if (rc) { args_free(&a); return cli_fail(rc, "%s", err); }
    a.o.tpl = &tpl;
    fv_dataset d;
    if ((rc = fv_dataset_load(&d, a.dataset, err))) { fv_template_free(&tpl); args_free(&a); return cli_fail(rc, "%s", err); }
    int n_eval;
    if ((rc = fv_plan(&a.o, d.n, &n_eval, err))) {
        fv_dataset_free(&d); fv_template_free(&tpl); args_free(&a);
        return cli_fail(rc, "%s: %s", a.dataset, err);
    }
    cli_model cm;
    float *cie_in = NULL;
    fv_result r;
    memset(&r, 0, sizeof r);
    if ((rc = cli_load_model(&cm, a.model))) { fv_dataset_free(&d); fv_template_free(&tpl); args_free(&a); return rc; }
    const gpt2_config *cfg = &cm.model->cfg;
    for (int k = 0; k < (a.layers ? a.n_layers : 1); k++) {
        int l = a.layers ? a.layers[k] : a.o.layer;
        if (l >= cfg->n_layer) {
            rc = cli_fail(SS_EINPUT, "%s %d out of range: the model has layers 0..%d", a.layers ? "--layers: layer" : "--layer",
                          l, cfg->n_layer - 1);
            goto done;
        }
    }
    if (is_fv && !a.heads && a.o.top_k > cfg->n_layer * cfg->n_head) {
        rc = cli_fail(SS_EINPUT, "--heads %d out of range: the model has %d heads", a.o.top_k, cfg->n_layer * cfg->n_head);
        goto done;
    }
    fv_cie_meta meta;
    memset(&meta, 0, sizeof meta);
    if (a.cie_in || a.cie_out) {
        meta.n_layer = cfg->n_layer;
        meta.n_head = cfg->n_head;
        meta.shots = a.o.shots;
        meta.n_prompts = a.o.n_prompts;
        meta.n_eval = n_eval;
        meta.bos = a.o.bos;
        meta.metric = a.o.metric;
        meta.seed = a.o.seed;
        meta.template_spec = tpl.spec;
        if ((rc = model_sha(cm.model, meta.model_sha256))) goto done;
        if ((rc = ss_sha256_file(a.dataset, meta.dataset_sha256, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    }
    if (a.cie_in) {
        cie_in = ss_malloc2((size_t)cfg->n_layer, (size_t)cfg->n_head * sizeof(float));
        if (!cie_in) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto done; }
        if ((rc = fv_cie_load(a.cie_in, &meta, cie_in, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        a.o.cie_in = cie_in;
    }
    progress_ctx pc;
    progress_init(&pc, a.quiet);
    a.o.progress = on_progress;
    a.o.progress_ctx = &pc;
    rc = is_fv ? fv_function_vector_run(cm.model, cm.tok, &d, &a.o, &r, err) : fv_task_vector_run(cm.model, cm.tok, &d, &a.o, &r, err);
    progress_end(&pc);
    if (rc) { rc = cli_fail(rc, "%s", err); goto done; }
    double secs = ss_now() - pc.t0;
    if (a.save) {
        int64_t shape[2] = {r.n_layers, cfg->n_embd};
        int nd = is_fv || !a.layers ? 1 : 2;
        if (nd == 1) shape[0] = cfg->n_embd;
        if ((rc = npy_save(a.save, r.vec, nd, shape, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    }
    if (is_fv && a.plot) {
        char where[96];
        if (a.layers) snprintf(where, sizeof where, "swept over %d layers", r.n_layers);
        else snprintf(where, sizeof where, "at layer %d", r.layers[0]);
        if ((rc = heat_map(a.plot, r.cie, cfg->n_layer, cfg->n_head, r.heads, r.n_heads, where, a.o.metric == FV_CIE_LOGPROB)))
            goto done;
    }
    if (a.cie_out && (rc = fv_cie_save(a.cie_out, &meta, r.cie, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    cJSON *j = result_json(&a, &r, cfg, is_fv, secs);
    if (a.sweep_json) {
        char *text = cJSON_Print(j);
        ss_outfile out;
        if (!text) rc = cli_fail(SS_ERUNTIME, "out of memory");
        else if ((rc = ss_out_open(&out, a.sweep_json, err))) rc = cli_fail(rc, "%s", err);
        else if (fputs(text, out.fp) == EOF || fputc('\n', out.fp) == EOF) {
            ss_out_abort(&out);
            rc = cli_fail(SS_ERUNTIME, "%s: write failed", a.sweep_json);
        } else if ((rc = ss_out_commit(&out, err))) rc = cli_fail(rc, "%s", err);
        free(text);
        if (rc) { cJSON_Delete(j); goto done; }
    }
    if (a.sweep_plot) {
        char title[200];
        const char *base = strrchr(a.dataset, '/');
        snprintf(title, sizeof title, "%s on %s, %d-shot, by injection layer",
                 is_fv ? "Function vector" : a.o.mode == FV_ADD ? "Task vector (add)" : "Task vector (replace)",
                 base ? base + 1 : a.dataset, a.o.shots);
        if ((rc = sweep_plot(a.sweep_plot, &r, title, is_fv ? "FV" : "task vector"))) { cJSON_Delete(j); goto done; }
    }
    if (a.json) cli_print_json(j);
    else print_text(&a, &r, cfg, is_fv, secs);
    cJSON_Delete(j);
done:
    fv_result_free(&r);
    free(cie_in);
    cli_free_model(&cm);
    fv_dataset_free(&d);
    fv_template_free(&tpl);
    args_free(&a);
    return rc;
}

int cmd_task_vector(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_fv(int argc, char **argv) { return run(argc, argv, 1); }
