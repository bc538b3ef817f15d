/* cmd_scan.c - perplexity, scan and label: the corpus-level subcommands.
 *
 *   perplexity  model perplexity over a text file (lib/perplexity.h)
 *   scan        top activating contexts, densities, histograms and logit
 *               effects of every latent of an SAE over a text file
 *               (sae/scan.h) -> OUTDIR/latents.json + OUTDIR/dashboard.html
 *   label       name latents in an .h5 dictionary's `labels` dataset
 *
 * SIGINT/SIGTERM: the handler only sets a flag, which the progress callback
 * hands back to the library to stop at the next window; scan then exits 1
 * without renaming its temporary outputs into place, so the outputs of an
 * earlier run stay as they were. A second signal kills at once (SA_RESETHAND):
 * still no partial latents.json/dashboard.html, at most a stray *.tmp.* file.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dashboard.h"
#include "perplexity.h"
#include "sae.h"
#include "scan.h"

/* ------------------------------------------------ signals and progress --- */

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) { g_stop = sig; }

typedef struct {
    double t0, last, every;
    int quiet;
    char banner[1024];     /* printed with the first report (so bad input stays one line) */
} progress_ctx;

static void fmt_dur(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* Every `every` seconds: tokens, tokens/s, how far through, ETA. */
static int on_progress(void *ctx, const ss_progress *p) {
    progress_ctx *pc = ctx;
    double now = ss_now();
    if (!pc->quiet && now - pc->last >= pc->every && p->phase) {
        pc->last = now;
        fprintf(stderr, "saesteer %s: %s: %lld of %lld\n", cli_cmd_name, p->phase, (long long)p->done, (long long)p->total);
    } else if (!pc->quiet && now - pc->last >= pc->every) {
        pc->last = now;
        if (pc->banner[0]) { fprintf(stderr, "%s\n", pc->banner); pc->banner[0] = '\0'; }
        double el = now - pc->t0, rate = el > 0 ? (double)p->tokens / el : 0;
        double frac = p->bytes_total > 0 ? (double)p->bytes_done / (double)p->bytes_total : 0;
        if (p->max_tokens > 0 && (double)p->tokens / (double)p->max_tokens > frac)
            frac = (double)p->tokens / (double)p->max_tokens;
        char eta[32];
        fmt_dur(frac > 0 ? el * (1 - frac) / frac : NAN, eta, sizeof eta);
        fprintf(stderr, "saesteer %s: %lld tokens, %.0f tokens/s, %.1f%% done, ETA %s\n", cli_cmd_name,
                (long long)p->tokens, rate, 100 * frac, eta);
    }
    return g_stop != 0;
}

static const char *progress_every_env(void) { return getenv("SAESTEER_PROGRESS_S"); }

static void progress_init(progress_ctx *pc, int quiet) {
    pc->t0 = pc->last = ss_now();
    pc->every = 2.0;
    const char *e = progress_every_env();
    if (e && *e) pc->every = atof(e);
    pc->quiet = quiet;
    pc->banner[0] = '\0';
}

/* -------------------------------------------------------- perplexity --- */
int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *text_file = NULL, *v;
    long max_tokens = 0, window = 0;
    int json = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer perplexity [--model DIR] --text-file F [--json] [--max-tokens N] [--context N] [--quiet]\n"
                   "Perplexity of the model over a text file, streamed (any size).\n"
                   "The tokens are cut into non-overlapping windows of N-1 tokens (N = --context, default the\n"
                   "model's n_positions); each window runs as [BOS, tokens...] from an empty cache and every\n"
                   "next-token prediction in it is scored (BOS predicts the first token), so each text token is\n"
                   "predicted once: perplexity = exp(mean NLL), \"tokens\" = number of predictions.\n"
                   "--max-tokens N stops after N text tokens. --json prints\n"
                   "{\"perplexity\": p, \"tokens\": n, \"nll\": ..., \"windows\": ..., \"window\": N, \"seconds\": ...}.\n"
                   "Progress on stderr every ~2 s (--quiet: none). SIGINT stops early: exit 1.\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text-file")) { if (!(text_file = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1L << 62, &max_tokens)) return 2;
        } else if (!strcmp(a, "--context")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 2, 1 << 20, &window)) return 2;
        } else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!text_file) return cli_fail(SS_EINPUT, "--text-file F is required");
    cli_model cm;
    int rc = cli_load_model(&cm, model);
    if (rc) return rc;
    if (window > cm.model->cfg.n_positions) {
        int P = cm.model->cfg.n_positions;
        cli_free_model(&cm);
        return cli_fail(SS_EINPUT, "--context %ld: the model's n_positions is %d", window, P);
    }
    cli_catch_stop_signals(on_signal);
    progress_ctx pc;
    progress_init(&pc, quiet);
    ss_ppl_result r;
    char err[SS_ERRLEN];
    rc = ss_perplexity_file(cm.model, cm.tok, text_file, (int)window, max_tokens, on_progress, &pc, &r, err);
    double secs = ss_now() - pc.t0;
    cli_free_model(&cm);
    if (rc) return cli_fail(rc, "%s", err);
    if (r.stopped) return cli_fail(SS_ERUNTIME, "interrupted after %lld tokens (perplexity so far %.4f)",
                                   (long long)r.tokens, r.perplexity);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "perplexity", r.perplexity);
        cJSON_AddNumberToObject(j, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(j, "nll", r.nll);
        cJSON_AddNumberToObject(j, "windows", (double)r.windows);
        cJSON_AddNumberToObject(j, "window", r.window);
        cJSON_AddNumberToObject(j, "seconds", secs);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("perplexity %.4f (mean NLL %.4f nats) over %lld tokens: %lld windows of up to %d positions incl. BOS; %.1f s, %.0f tokens/s\n",
               r.perplexity, r.nll, (long long)r.tokens, (long long)r.windows, r.window, secs,
               secs > 0 ? (double)r.tokens / secs : 0);
    }
    return 0;
}

/* ---------------------------------------------------------- JSON writer --- */
/* latents.json can hold millions of numbers: it is streamed with fprintf,
   never built as a cJSON tree. */

static void jstr_n(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s, *e = p + n; p < e; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void jstr(FILE *f, const char *s) { jstr_n(f, s, strlen(s)); }

/* A number with 4 significant digits ("0" for zero, null if not finite). */
static void jnum(FILE *f, double x) {
    if (!isfinite(x)) fputs("null", f);
    else if (x == 0) fputc('0', f);
    else fprintf(f, "%.4g", x);
}

typedef struct {
    const char *model_dir, *sae_path, *text_file;
    double seconds;
} scan_meta;

static int write_latents_json(FILE *f, const scan_state *sc, const tokenizer *tok, const scan_meta *mt, char *err) {
    const sae_dict *d = sc->d;
    const int S = sc->S, V = sc->m->cfg.vocab_size;
    scan_context *ctx = calloc((size_t)sc->K, sizeof *ctx);
    unsigned char *used = calloc((size_t)V, 1);
    if (!ctx || !used) { free(ctx); free(used); return ss_fail(err, SS_ERUNTIME, "out of memory"); }

    fprintf(f, "{\"format\":\"saesteer-scan\",\"version\":1,\n\"model\":");
    jstr(f, mt->model_dir);
    fputs(",\"sae\":", f); jstr(f, mt->sae_path);
    fputs(",\"hook_name\":", f); jstr(f, d->hook_name);
    fputs(",\"architecture\":", f); jstr(f, sae_arch_name(d->arch));
    fprintf(f, ",\"d_in\":%d,\"d_sae\":%d,\n\"text_file\":", d->d_in, d->d_sae);
    jstr(f, mt->text_file);
    fprintf(f, ",\"bytes_scanned\":%lld,\"n_tokens\":%lld,\"n_windows\":%lld,\"window\":%d,\"prepend_bos\":%s,"
               "\"center_writing_weights\":%s,\"top_k\":%d,\"context_radius\":%d,\"seconds\":",
            (long long)sc->bytes_done, (long long)sc->n_tokens, (long long)sc->n_windows, sc->window,
            sc->bos ? "true" : "false", d->center_writing_weights ? "true" : "false", sc->K, sc->R);
    jnum(f, mt->seconds);
    fputs(",\"tokens_per_s\":", f);
    jnum(f, mt->seconds > 0 ? (double)sc->n_tokens / mt->seconds : 0);
    fprintf(f, ",\n\"histogram\":{\"bins\":%d,\"log10_lo\":%g,\"log10_hi\":%g,\"note\":\"counts of positive "
               "activations; bin b of the full histogram covers [10^(lo+b*(hi-lo)/bins), 10^(lo+(b+1)*(hi-lo)/bins)); "
               "each latent stores the nonzero stretch from hist_start\"},\n",
            SCAN_HIST_BINS, SCAN_HIST_LOG10_LO, SCAN_HIST_LOG10_HI);
    fputs("\"logit_effect\":", f);
    jstr(f, sc->have_logits ? "direct W_dec[i] . W_U (W_U = wte^T, no ln_final), as SAELens/Neuronpedia dashboards show"
                            : "none (the SAE's d_in is not the model's width)");
    fputs(",\n\"latents\":[\n", f);

    for (int i = 0; i < S; i++) {
        if (i) fputs(",\n", f);
        fprintf(f, "{\"index\":%d,\"label\":", i);
        jstr(f, d->labels && d->labels[i] ? d->labels[i] : "");
        int64_t na = sc->n_active[i];
        fprintf(f, ",\"n_active\":%lld,\"density\":", (long long)na);
        jnum(f, sc->n_tokens ? (double)na / (double)sc->n_tokens : 0);
        fputs(",\"max_act\":", f); jnum(f, sc->max_act[i]);
        fputs(",\"mean_act\":", f); jnum(f, na ? sc->sum_act[i] / (double)na : 0);
        const uint32_t *h = sc->hist + (size_t)i * SCAN_HIST_BINS;
        int lo = 0, hi = SCAN_HIST_BINS - 1;
        while (lo < SCAN_HIST_BINS && !h[lo]) lo++;
        while (hi >= lo && !h[hi]) hi--;
        fprintf(f, ",\"hist_start\":%d,\"hist\":[", lo < SCAN_HIST_BINS ? lo : 0);
        for (int b = lo; b <= hi; b++) fprintf(f, b > lo ? ",%u" : "%u", h[b]);
        fputs("],\"top_logits\":[", f);
        for (int j = 0; sc->have_logits && j < sc->n_logits; j++) {
            size_t o = (size_t)i * sc->n_logits + j;
            fprintf(f, j ? ",[%d," : "[%d,", sc->top_ids[o]);
            jnum(f, sc->top_val[o]);
            fputc(']', f);
            used[sc->top_ids[o]] = 1;
        }
        fputs("],\"bottom_logits\":[", f);
        for (int j = 0; sc->have_logits && j < sc->n_logits; j++) {
            size_t o = (size_t)i * sc->n_logits + j;
            fprintf(f, j ? ",[%d," : "[%d,", sc->bot_ids[o]);
            jnum(f, sc->bot_val[o]);
            fputc(']', f);
            used[sc->bot_ids[o]] = 1;
        }
        fputs("],\"contexts\":[", f);
        int n = scan_contexts(sc, i, ctx);
        for (int c = 0; c < n; c++) {
            fputs(c ? ",\n {\"value\":" : "\n {\"value\":", f);
            jnum(f, ctx[c].value);
            fprintf(f, ",\"token_index\":%lld,\"center\":%d,\"ids\":[", (long long)ctx[c].token_index, ctx[c].center);
            for (int t = 0; t < ctx[c].len; t++) {
                fprintf(f, t ? ",%d" : "%d", ctx[c].ids[t]);
                used[ctx[c].ids[t]] = 1;
            }
            fputs("],\"acts\":[", f);
            for (int t = 0; t < ctx[c].len; t++) {
                if (t) fputc(',', f);
                jnum(f, ctx[c].acts[t]);
            }
            fputs("]}", f);
        }
        fputs("]}", f);
    }
    /* every token id used above: its text, or its raw bytes when they are not
       UTF-8 on their own (a piece of a character: the dashboard decodes a run
       of such tokens together) */
    fputs("\n],\n\"tokens\":{", f);
    int first = 1, rc = SS_OK;
    for (int v = 0; v < V; v++) {
        if (!used[v]) continue;
        size_t len = 0;
        const char *b = tok_token_bytes(tok, v, &len);
        fprintf(f, first ? "\"%d\":" : ",\"%d\":", v);
        first = 0;
        if (!b) { fprintf(f, "\"<%d>\"", v); continue; }
        if (ss_utf8_valid(b, len)) { jstr_n(f, b, len); continue; }
        fputc('[', f);
        for (size_t k = 0; k < len; k++) fprintf(f, k ? ",%u" : "%u", (unsigned char)b[k]);
        fputc(']', f);
    }
    fputs("}}\n", f);
    free(ctx);
    free(used);
    if (!rc && ferror(f)) rc = ss_fail(err, SS_ERUNTIME, "latents.json: write error");
    return rc;
}

/* -------------------------------------------------------------- scan --- */
int cmd_scan(int argc, char **argv) {
    const char *model = NULL, *sae_path = NULL, *text_file = NULL, *outdir = NULL, *v;
    long top = 20, radius = 8, window = 0, max_tokens = 0, n_logits = 10;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer scan [--model DIR] [--sae PATH] --text-file F -o OUTDIR\n"
                   "                     [--top K] [--context N] [--window W] [--max-tokens N] [--logit-tokens N] [--quiet]\n"
                   "Streams F (any size) through the model only up to the SAE's hook, encodes every token and keeps,\n"
                   "per latent, in memory independent of F's size: the top K (default 20) activating tokens with N\n"
                   "(default 8) tokens of context each side, the activation density (fraction of tokens where the\n"
                   "latent > 0), a log-spaced histogram of its activations, and its top/bottom --logit-tokens (10)\n"
                   "output tokens by the direct effect W_dec[i] . wte (no ln_final; what SAELens/Neuronpedia show).\n"
                   "Windows of W positions (default the SAE's context_size, else n_positions); with the SAE's\n"
                   "prepend_bos each starts with BOS, which is not scored. Centring follows the SAE's metadata.\n"
                   "Writes OUTDIR/latents.json and OUTDIR/dashboard.html (self-contained; open it in a browser;\n"
                   "?q=TEXT searches on load). Progress on stderr every ~2 s. SIGINT/SIGTERM: stops, exit 1,\n"
                   "earlier outputs in OUTDIR left untouched.\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--sae")) { if (!(sae_path = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text-file")) { if (!(text_file = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(outdir = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--top")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1000, &top)) return 2; }
        else if (!strcmp(a, "--context")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 512, &radius)) return 2; }
        else if (!strcmp(a, "--window")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, &window)) return 2; }
        else if (!strcmp(a, "--max-tokens")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1L << 62, &max_tokens)) return 2; }
        else if (!strcmp(a, "--logit-tokens")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1000, &n_logits)) return 2; }
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!text_file) return cli_fail(SS_EINPUT, "--text-file F is required");
    if (!outdir) return cli_fail(SS_EINPUT, "-o OUTDIR is required");
    struct stat st;
    if (stat(text_file, &st) != 0 || !S_ISREG(st.st_mode))
        return cli_fail(SS_EINPUT, "--text-file %s: not a readable file", text_file);
    if (stat(outdir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return cli_fail(SS_EINPUT, "-o %s: exists and is not a directory", outdir);
    } else if (mkdir(outdir, 0777) != 0) {
        return cli_fail(SS_ERUNTIME, "-o %s: cannot create directory: %s", outdir, strerror(errno));
    }
    if (!sae_path) sae_path = cli_default_sae();
    if (!model) model = cli_default_model();

    char err[SS_ERRLEN];
    cli_model cm;
    int rc = cli_load_model(&cm, model);
    if (rc) return rc;
    sae_dict *d = NULL;
    if ((rc = sae_load(&d, sae_path, err))) { cli_free_model(&cm); return cli_fail(rc, "%s", err); }
    cli_catch_stop_signals(on_signal);
    progress_ctx pc;
    progress_init(&pc, quiet);
    scan_opts o = {(int)top, (int)radius, (int)window, max_tokens, (int)n_logits, on_progress, &pc};
    scan_state *sc = NULL;
    ss_outfile oj, oh;
    memset(&oj, 0, sizeof oj);
    memset(&oh, 0, sizeof oh);
    FILE *jin = NULL;
    if ((rc = scan_new(&sc, d, cm.model, &o, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    snprintf(pc.banner, sizeof pc.banner, "saesteer scan: %.300s over %.300s (%d latents at %s; windows of %d%s)",
             sae_path, text_file, d->d_sae, d->hook_name, sc->window, sc->bos ? " with BOS" : "");
    if ((rc = scan_file(sc, cm.tok, text_file, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    double secs = ss_now() - pc.t0;
    if (sc->stopped || g_stop) {
        rc = cli_fail(SS_ERUNTIME, "interrupted after %lld tokens; nothing written, earlier outputs in %s left as they were",
                      (long long)sc->n_tokens, outdir);
        goto done;
    }
    if ((rc = scan_logit_effects(sc, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if (sc->stopped || g_stop) {
        rc = cli_fail(SS_ERUNTIME, "interrupted; nothing written, earlier outputs in %s left as they were", outdir);
        goto done;
    }

    char path[4200];
    scan_meta mt = {model, sae_path, text_file, secs};
    snprintf(path, sizeof path, "%s/latents.json", outdir);
    if ((rc = ss_out_open(&oj, path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if ((rc = write_latents_json(oj.fp, sc, cm.tok, &mt, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if (fflush(oj.fp) != 0) { rc = cli_fail(SS_ERUNTIME, "%s: write failed (disk full?)", path); goto done; }
    snprintf(path, sizeof path, "%s/dashboard.html", outdir);
    if ((rc = ss_out_open(&oh, path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if (!(jin = fopen(oj.tmp, "rb"))) { rc = cli_fail(SS_ERUNTIME, "%s: cannot read back", oj.tmp); goto done; }
    if (dashboard_write(oh.fp, jin) != 0) { rc = cli_fail(SS_ERUNTIME, "%s: write failed (disk full?)", path); goto done; }
    if (g_stop) {
        rc = cli_fail(SS_ERUNTIME, "interrupted while writing; earlier outputs in %s left as they were", outdir);
        goto done;
    }
    ss_out_stage_begin();   /* latents.json and dashboard.html: both replaced, or neither */
    if ((rc = ss_out_commit(&oj, err)) || (rc = ss_out_commit(&oh, err)) || (rc = ss_out_stage_end(1, err))) {
        ss_out_stage_end(0, NULL);
        rc = cli_fail(rc, "%s", err);
        goto done;
    }

    int64_t alive = 0;
    for (int i = 0; i < sc->S; i++) alive += sc->n_active[i] > 0;
    printf("scanned %lld tokens (%lld windows, %lld bytes) in %.1f s: %.0f tokens/s\n", (long long)sc->n_tokens,
           (long long)sc->n_windows, (long long)sc->bytes_done, secs, secs > 0 ? (double)sc->n_tokens / secs : 0);
    printf("%lld of %d latents fired, %lld dead\n", (long long)alive, sc->S, (long long)(sc->S - alive));
    printf("wrote %s/latents.json and %s/dashboard.html\n", outdir, outdir);
    rc = 0;
done:
    if (jin) fclose(jin);
    ss_out_abort(&oj);
    ss_out_abort(&oh);
    scan_free(sc);
    sae_free(d);
    cli_free_model(&cm);
    return rc;
}

/* ------------------------------------------------------------- label --- */
#define LABEL_MAX 256

static int check_label(const char *what, const char *s) {
    size_t n = strlen(s);
    if (n > LABEL_MAX) return cli_fail(SS_EINPUT, "%s: label longer than %d bytes", what, LABEL_MAX);
    if (!ss_utf8_valid(s, n)) return cli_fail(SS_EINPUT, "%s: label is not valid UTF-8", what);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return cli_fail(SS_EINPUT, "%s: label has a control character (one line only)", what);
    return SS_OK;
}

static int set_label(sae_dict *d, long i, const char *s) {
    char *c = strdup(s);
    if (!c) return cli_fail(SS_ERUNTIME, "out of memory");
    free(d->labels[i]);
    d->labels[i] = c;
    return SS_OK;
}

/* --from FILE.json: {"12": "name", ...} or [{"latent": 12, "label": "name"}, ...] */
static int labels_from_json(sae_dict *d, const char *path, int *n_set) {
    char *text = NULL;
    size_t len;
    int rc = cli_read_text_file(path, &text, &len);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return cli_fail(SS_EINPUT, "--from %s: not valid JSON", path);
    *n_set = 0;
    rc = SS_OK;
    cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, j) {
        char what[4300];
        long idx = -1;
        const char *lab = NULL;
        if (cJSON_IsObject(j)) {
            char *end;
            errno = 0;
            idx = strtol(it->string, &end, 10);
            if (errno || end == it->string || *end) idx = -1;
            lab = cJSON_GetStringValue(it);
            snprintf(what, sizeof what, "--from %s: key \"%.40s\"", path, it->string);
        } else if (cJSON_IsArray(j) && cJSON_IsObject(it)) {
            cJSON *li = cJSON_GetObjectItemCaseSensitive(it, "latent");
            if (cJSON_IsNumber(li) && li->valuedouble == (double)(long)li->valuedouble) idx = (long)li->valuedouble;
            lab = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "label"));
            snprintf(what, sizeof what, "--from %s: entry [%d]", path, k);
        } else {
            snprintf(what, sizeof what, "--from %s: entry [%d]", path, k);
        }
        k++;
        if (idx < 0 || idx >= d->d_sae) { rc = cli_fail(SS_EINPUT, "%s: latent index missing or not in [0, %d)", what, d->d_sae); break; }
        if (!lab) { rc = cli_fail(SS_EINPUT, "%s: label must be a string", what); break; }
        if ((rc = check_label(what, lab)) || (rc = set_label(d, idx, lab))) break;
        (*n_set)++;
    }
    if (!rc && !cJSON_IsObject(j) && !cJSON_IsArray(j))
        rc = cli_fail(SS_EINPUT, "--from %s: expected an object {\"12\": \"name\"} or an array of {\"latent\", \"label\"}", path);
    cJSON_Delete(j);
    return rc;
}

int cmd_label(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *from = NULL, *v;
    long latent = -1;
    int list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer label DICT.h5 --latent I --text \"name\"\n"
                   "       saesteer label DICT.h5 --from LABELS.json\n"
                   "       saesteer label DICT.h5 --list\n"
                   "Sets latent labels in the dictionary's `labels` dataset and rewrites the file atomically\n"
                   "(temporary file + rename; every other dataset and attribute is kept; a symlink is followed to\n"
                   "the file it names; concurrent label runs take turns on a flock, none is lost). --text \"\"\n"
                   "clears a label.\n"
                   "LABELS.json: {\"12\": \"name\", ...} or [{\"latent\": 12, \"label\": \"name\"}, ...].\n"
                   "Labels are one line of UTF-8, at most %d bytes. --list prints the labelled latents.\n", LABEL_MAX);
            return 0;
        }
        if (!strcmp(a, "--latent")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, SAE_MAX_D_SAE, &latent)) return 2; }
        else if (!strcmp(a, "--text")) { if (!(text = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--from")) { if (!(from = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--list")) list = 1;
        else if (a[0] == '-' && a[1]) return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
        else if (!path) path = a;
        else return cli_fail(SS_EINPUT, "one dictionary path only ('%.64s' is extra)", a);
    }
    if (!path) return cli_fail(SS_EINPUT, "the dictionary path is required (see --help)");
    int modes = (text != NULL || latent >= 0) + (from != NULL) + list;
    if (modes != 1) return cli_fail(SS_EINPUT, "give exactly one of --latent I --text NAME, --from FILE.json, --list");
    if (!list && !from && (latent < 0 || !text)) return cli_fail(SS_EINPUT, "--latent I and --text NAME go together");
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_fail(SS_EINPUT, "%s: labels live in .h5 dictionaries; convert the SAELens folder first "
                                   "(saesteer convert %s -o DICT.h5)", path, path);
    char err[SS_ERRLEN];
    /* an exclusive lock from load to rename, so concurrent label runs apply one
       after the other (each reads what the previous one wrote). The rename
       replaces the locked file: after waiting, check that path still names the
       file we hold, else lock the new one. */
    int lock_fd = -1;
    for (int tries = 0; !list && tries < 100; tries++) {
        lock_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (lock_fd < 0) break;   /* sae_load_h5 says why */
        struct stat held, now;
        if (flock(lock_fd, LOCK_EX) != 0 || fstat(lock_fd, &held) != 0) { close(lock_fd); lock_fd = -1; break; }
        if (stat(path, &now) == 0 && now.st_dev == held.st_dev && now.st_ino == held.st_ino) break;
        close(lock_fd);
        lock_fd = -1;
    }
    sae_dict *d = NULL;
    int rc = sae_load_h5(&d, path, err);
    if (rc) { if (lock_fd >= 0) close(lock_fd); return cli_fail(rc, "%s", err); }
    ss_input_forget(path);   /* label replaces its own input: that is the point */
    if (list) {
        for (int i = 0; d->labels && i < d->d_sae; i++)
            if (d->labels[i] && d->labels[i][0]) printf("%d\t%s\n", i, d->labels[i]);
        sae_free(d);
        return 0;
    }
    if (!d->labels && !(d->labels = calloc((size_t)d->d_sae, sizeof(char *)))) { sae_free(d); return cli_fail(SS_ERUNTIME, "out of memory"); }
    for (int i = 0; i < d->d_sae; i++)
        if (!d->labels[i] && !(d->labels[i] = strdup(""))) { sae_free(d); return cli_fail(SS_ERUNTIME, "out of memory"); }
    int n_set = 0;
    if (from) rc = labels_from_json(d, from, &n_set);
    else if (latent >= d->d_sae) rc = cli_fail(SS_EINPUT, "--latent %ld: %s has %d latents", latent, path, d->d_sae);
    else if (!(rc = check_label("--text", text)) && !(rc = set_label(d, latent, text))) n_set = 1;
    if (!rc && (rc = sae_save_h5(d, path, err))) rc = cli_fail(rc, "%s", err);
    if (lock_fd >= 0) close(lock_fd);   /* after the rename: the next label run reads the new file */
    if (!rc) {
        if (from) printf("set %d labels in %s\n", n_set, path);
        else printf("latent %ld of %s: \"%s\"\n", latent, path, text);
    }
    sae_free(d);
    return rc;
}
