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
#include "corpus_job.h"
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
int ppl_report(const ss_ppl *p, const char *text_file, int json, double secs, int nproc) {
    ss_ppl_result r;
    ss_ppl_get(p, &r);
    if (r.tokens == 0) return cli_fail(SS_EINPUT, "%s: no tokens to score (empty file?)", text_file);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "perplexity", r.perplexity);
        cJSON_AddNumberToObject(j, "tokens", (double)r.tokens);
        cJSON_AddNumberToObject(j, "nll", r.nll);
        cJSON_AddNumberToObject(j, "windows", (double)r.windows);
        cJSON_AddNumberToObject(j, "window", r.window);
        cJSON_AddNumberToObject(j, "seconds", secs);
        cJSON_AddNumberToObject(j, "ranks", nproc);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("perplexity %.4f (mean NLL %.4f nats) over %lld tokens: %lld windows of up to %d positions incl. BOS; %.1f s, %.0f tokens/s",
               r.perplexity, r.nll, (long long)r.tokens, (long long)r.windows, r.window, secs,
               secs > 0 ? (double)r.tokens / secs : 0);
        if (nproc > 1) printf(" (%d processes)", nproc);
        printf("\n");
    }
    return SS_OK;
}

static int pack_ppl(void *ctx, ss_buf *b, char *err) { return ss_ppl_pack(ctx, b, err); }
static int merge_ppl(void *ctx, const void *data, size_t len, char *err) { return ss_ppl_merge(ctx, data, len, err); }

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *text_file = NULL, *part_out = NULL, *v;
    long max_tokens = 0, window = 0, threads = 0;
    int json = 0, quiet = 0, shard = 0, shards = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer perplexity [--model DIR] --text-file F [--json] [--max-tokens N] [--context N] [--quiet]\n"
                   "                           [--threads N] [--shard I/N -o PART]\n"
                   "Perplexity of the model over a text file, streamed (any size).\n"
                   "The tokens are cut into non-overlapping windows of N-1 tokens (N = --context, default the\n"
                   "model's n_positions); each window runs as [BOS, tokens...] from an empty cache and every\n"
                   "next-token prediction in it is scored (BOS predicts the first token), so each text token is\n"
                   "predicted once: perplexity = exp(mean NLL), \"tokens\" = number of predictions.\n"
                   "--max-tokens N stops after N text tokens. --json prints\n"
                   "{\"perplexity\": p, \"tokens\": n, \"nll\": ..., \"windows\": ..., \"window\": N, \"seconds\": ..., \"ranks\": R}.\n"
                   "Progress on stderr every ~2 s (--quiet: none). SIGINT stops early: exit 1.\n"
                   "--threads N: windows at once (default: the CPUs this process may use), one BLAS thread each.\n"
                   "Many processes: `mpirun -n R saesteer perplexity ...` (MPI build) gives the same numbers as one\n"
                   "process; --shard I/N -o PART writes a part file for `saesteer merge` (docs/SCALING.md).\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text-file")) { if (!(text_file = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(part_out = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--shard")) { if (!(v = cli_value(argc, argv, &i)) || cjob_shard_arg(v, &shard, &shards)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 256, &threads)) return 2; }
        else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1L << 62, &max_tokens)) return 2;
        } else if (!strcmp(a, "--context")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 2, 1 << 20, &window)) return 2;
        } else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!text_file) return cli_fail(SS_EINPUT, "--text-file F is required");
    if (shards && !part_out) return cli_fail(SS_EINPUT, "--shard needs -o PART (the part file to write)");
    if (!shards && part_out) return cli_fail(SS_EINPUT, "-o PART goes with --shard I/N");
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    ss_ppl *p = NULL;
    ss_buf pk = {0};
    cjob job;
    char err[SS_ERRLEN];
    int rc = cli_load_model(&cm, model);
    if (!rc && window > cm.model->cfg.n_positions)
        rc = cli_fail(SS_EINPUT, "--context %ld: the model's n_positions is %d", window, cm.model->cfg.n_positions);
    if ((rc = cjob_agree(rc))) goto done;
    cli_catch_stop_signals(on_signal);
    progress_ctx pc;
    progress_init(&pc, quiet || ranks_rank() > 0);
    if ((rc = cjob_setup(&job, shard, shards, cm.tok, text_file))) goto done;
    int stopped = 0;
    rc = ss_perplexity_part(cm.model, cm.tok, text_file, (int)window, max_tokens, &job.part,
                            threads ? (int)threads : ss_cpu_count(), on_progress, &pc, &p, &stopped, err);
    if (rc) rc = cli_fail(rc, "%s", err);
    else if (stopped || g_stop) {
        ss_ppl_result r;
        ss_ppl_get(p, &r);
        rc = cli_fail(SS_ERUNTIME, "interrupted after %lld tokens (perplexity so far %.4f)", (long long)r.tokens, r.perplexity);
    }
    if ((rc = cjob_agree(rc))) goto done;
    ss_ppl_result r;
    ss_ppl_get(p, &r);
    double secs = ss_now() - pc.t0;
    if (shards) {
        char fp[65], opts[128];
        snprintf(opts, sizeof opts, "window=%d max_tokens=%lld", r.window, (long long)max_tokens);
        cjob_fingerprint("perplexity", cm.model, NULL, opts, fp);
        if ((rc = ss_ppl_pack(p, &pk, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "command", "perplexity");
        cJSON_AddStringToObject(h, "fingerprint", fp);
        cJSON_AddStringToObject(h, "options", opts);
        cJSON_AddStringToObject(h, "model", cm.model->dir);
        cJSON_AddStringToObject(h, "text_file", text_file);
        cJSON_AddNumberToObject(h, "n_tokens", (double)r.tokens);
        cJSON_AddNumberToObject(h, "seconds", secs);
        rc = cjob_write_part(&job, part_out, h, &pk);
        cJSON_Delete(h);
        if (!rc) printf("shard %d of %d: %lld predictions in %lld windows in %.1f s; wrote %s\n", shard, shards,
                        (long long)r.tokens, (long long)r.windows, secs, part_out);
        goto done;
    }
    int64_t sent = 0;
    if ((rc = cjob_reduce(&job, pack_ppl, merge_ppl, p, &sent))) goto done;
    if (job.rank == 0) rc = ppl_report(p, text_file, json, ss_now() - pc.t0, cjob_nproc(&job));
    rc = cjob_agree(rc);
done:
    ss_buf_free(&pk);
    ss_ppl_free(p);
    if (cm.model) cli_free_model(&cm);
    return rc;
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
    int ranks;             /* processes that made it (MPI ranks or shards; 1) */
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
               "\"center_writing_weights\":%s,\"top_k\":%d,\"context_radius\":%d,\n",
            (long long)sc->bytes_done, (long long)sc->n_tokens, (long long)sc->n_windows, sc->window,
            sc->bos ? "true" : "false", d->center_writing_weights ? "true" : "false", sc->K, sc->R);
    /* how it was made, on a line of its own: everything else is the same for any number of processes */
    fprintf(f, "\"ranks\":%d,\"seconds\":", mt->ranks);
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
        fputs(",\"mean_act\":", f); jnum(f, na ? scan_sum_act(sc, i) / (double)na : 0);
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

/* OUTDIR/latents.json and OUTDIR/dashboard.html from a finished scan (after
   scan_logit_effects), each through a temporary file renamed into place at
   the end; an interrupt before then leaves the earlier outputs. */
static int write_scan_outputs(scan_state *sc, const tokenizer *tok, const char *outdir, const scan_meta *mt) {
    char err[SS_ERRLEN], path[4200];
    ss_outfile oj, oh;
    memset(&oj, 0, sizeof oj);
    memset(&oh, 0, sizeof oh);
    FILE *jin = NULL;
    int rc;
    snprintf(path, sizeof path, "%s/latents.json", outdir);
    if ((rc = ss_out_open(&oj, path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if ((rc = write_latents_json(oj.fp, sc, tok, mt, err))) { rc = cli_fail(rc, "%s", err); goto done; }
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
done:
    if (jin) fclose(jin);
    ss_out_abort(&oj);
    ss_out_abort(&oh);
    return rc;
}

static int make_outdir(const char *outdir) {
    struct stat st;
    if (stat(outdir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return cli_fail(SS_EINPUT, "-o %s: exists and is not a directory", outdir);
    } else if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        return cli_fail(SS_ERUNTIME, "-o %s: cannot create directory: %s", outdir, strerror(errno));
    }
    return SS_OK;
}

/* After the statistics: logit effects, outputs, the summary on stdout. */
static int finish_scan(scan_state *sc, const tokenizer *tok, const char *outdir, const scan_meta *mt) {
    char err[SS_ERRLEN];
    int rc;
    if (sc->n_tokens == 0) return cli_fail(SS_EINPUT, "%s: no tokens to scan (empty file?)", mt->text_file);
    double t0 = ss_now();
    if ((rc = scan_logit_effects(sc, err))) return cli_fail(rc, "%s", err);
    if (sc->stopped || g_stop)
        return cli_fail(SS_ERUNTIME, "interrupted; nothing written, earlier outputs in %s left as they were", outdir);
    double t1 = ss_now();
    if ((rc = write_scan_outputs(sc, tok, outdir, mt))) return rc;
    if (getenv("SAESTEER_SCALE_STATS"))
        fprintf(stderr, "saesteer scan: stats: logit effects %.3f s, writing outputs %.3f s\n", t1 - t0, ss_now() - t1);
    int64_t alive = 0;
    for (int i = 0; i < sc->S; i++) alive += sc->n_active[i] > 0;
    double secs = mt->seconds;
    printf("scanned %lld tokens (%lld windows, %lld bytes) in %.1f s: %.0f tokens/s", (long long)sc->n_tokens,
           (long long)sc->n_windows, (long long)sc->bytes_done, secs, secs > 0 ? (double)sc->n_tokens / secs : 0);
    if (mt->ranks > 1) printf(" (%d processes)", mt->ranks);
    printf("\n%lld of %d latents fired, %lld dead\n", (long long)alive, sc->S, (long long)(sc->S - alive));
    printf("wrote %s/latents.json and %s/dashboard.html\n", outdir, outdir);
    return SS_OK;
}

static int pack_scan(void *ctx, ss_buf *b, char *err) { return scan_pack(ctx, b, err); }
static int merge_scan(void *ctx, const void *data, size_t len, char *err) { return scan_merge(ctx, data, len, err); }

static void scan_opts_string(const scan_state *sc, char *buf, size_t n) {
    snprintf(buf, n, "top_k=%d radius=%d window=%d max_tokens=%lld logit_tokens=%d", sc->K, sc->R, sc->window,
             (long long)sc->max_tokens, sc->n_logits);
}

int cmd_scan(int argc, char **argv) {
    const char *model = NULL, *sae_path = NULL, *text_file = NULL, *outdir = NULL, *v;
    long top = 20, radius = 8, window = 0, max_tokens = 0, n_logits = 10, threads = 0;
    int quiet = 0, shard = 0, shards = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer scan [--model DIR] [--sae PATH] --text-file F -o OUTDIR\n"
                   "                     [--top K] [--context N] [--window W] [--max-tokens N] [--logit-tokens N]\n"
                   "                     [--threads N] [--shard I/N] [--quiet]\n"
                   "Streams F (any size) through the model only up to the SAE's hook, encodes every token and keeps,\n"
                   "per latent, in memory independent of F's size: the top K (default 20) activating tokens with N\n"
                   "(default 8) tokens of context each side, the activation density (fraction of tokens where the\n"
                   "latent > 0), a log-spaced histogram of its activations, and its top/bottom --logit-tokens (10)\n"
                   "output tokens by the direct effect W_dec[i] . wte (no ln_final; what SAELens/Neuronpedia show).\n"
                   "Windows of W positions (default the SAE's context_size, else n_positions); with the SAE's\n"
                   "prepend_bos each starts with BOS, which is not scored. Centring follows the SAE's metadata.\n"
                   "Writes OUTDIR/latents.json and OUTDIR/dashboard.html (self-contained; open it in a browser;\n"
                   "?q=TEXT searches on load). Progress on stderr every ~2 s. SIGINT/SIGTERM: stops, exit 1,\n"
                   "earlier outputs in OUTDIR left untouched.\n"
                   "--threads N: N windows at once, one BLAS thread each (default: the CPUs this process may use;\n"
                   "faster here than BLAS threads on one window, and the numbers do not depend on N: docs/SCALING.md).\n"
                   "Many processes (docs/SCALING.md): `mpirun -n N saesteer scan ...` (a -DSAESTEER_MPI=ON build)\n"
                   "splits F by byte ranges and writes the same outputs as one process; without MPI, --shard I/N\n"
                   "-o PART writes shard I's partial result file and `saesteer merge PART... -o OUTDIR` combines them.\n");
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
        else if (!strcmp(a, "--threads")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 256, &threads)) return 2; }
        else if (!strcmp(a, "--shard")) { if (!(v = cli_value(argc, argv, &i)) || cjob_shard_arg(v, &shard, &shards)) return 2; }
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!text_file) return cli_fail(SS_EINPUT, "--text-file F is required");
    if (!outdir) return cli_fail(SS_EINPUT, shards ? "-o PART is required (the part file to write)" : "-o OUTDIR is required");
    /* checks that could differ between machines go through an agreement point (MPI ranks) */
    struct stat st;
    int rc = SS_OK;
    if (stat(text_file, &st) != 0 || !S_ISREG(st.st_mode))
        rc = cli_fail(SS_EINPUT, "--text-file %s: not a readable file", text_file);
    if (!rc && !shards) rc = make_outdir(outdir);
    if ((rc = cjob_agree(rc))) return rc;
    if (!sae_path) sae_path = cli_default_sae();
    if (!model) model = cli_default_model();

    char err[SS_ERRLEN];
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    sae_dict *d = NULL;
    scan_state *sc = NULL;
    cjob job;
    ss_buf pk = {0};
    rc = cli_load_model(&cm, model);
    if (!rc && (rc = sae_load(&d, sae_path, err))) rc = cli_fail(rc, "%s", err);
    cli_catch_stop_signals(on_signal);
    progress_ctx pc;
    progress_init(&pc, quiet || ranks_rank() > 0);
    scan_opts o = {(int)top, (int)radius, (int)window, max_tokens, (int)n_logits, on_progress, &pc,
                   threads ? (int)threads : ss_cpu_count()};
    if (!rc && (rc = scan_new(&sc, d, cm.model, &o, err))) rc = cli_fail(rc, "%s", err);
    if ((rc = cjob_agree(rc))) goto done;
    double tc = ss_now();
    if ((rc = cjob_setup(&job, shard, shards, cm.tok, text_file))) goto done;
    double tw = ss_now();
    snprintf(pc.banner, sizeof pc.banner, "saesteer scan: %.300s over %.300s (%d latents at %s; windows of %d%s)",
             sae_path, text_file, d->d_sae, d->hook_name, sc->window, sc->bos ? " with BOS" : "");
    if ((rc = scan_file_part(sc, cm.tok, text_file, &job.part, err))) rc = cli_fail(rc, "%s", err);
    double te = ss_now();
    if (!rc && (sc->stopped || g_stop))
        rc = cli_fail(SS_ERUNTIME, "interrupted after %lld tokens; nothing written, earlier outputs in %s left as they were",
                      (long long)sc->n_tokens, outdir);
    if ((rc = cjob_agree(rc))) goto done;
    double secs = ss_now() - pc.t0;
    if (shards) {   /* a partial result file */
        char fp[65], opts[256];
        scan_opts_string(sc, opts, sizeof opts);
        cjob_fingerprint("scan", cm.model, d, opts, fp);
        if ((rc = scan_pack(sc, &pk, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "command", "scan");
        cJSON_AddStringToObject(h, "fingerprint", fp);
        cJSON_AddStringToObject(h, "options", opts);
        cJSON_AddStringToObject(h, "model", model);
        cJSON_AddStringToObject(h, "sae", sae_path);
        cJSON_AddStringToObject(h, "text_file", text_file);
        cJSON_AddNumberToObject(h, "n_tokens", (double)sc->n_tokens);
        cJSON_AddNumberToObject(h, "seconds", secs);
        rc = cjob_write_part(&job, outdir, h, &pk);
        cJSON_Delete(h);
        if (!rc) printf("shard %d of %d: %lld tokens (%lld windows, bytes %lld..%lld) in %.1f s; wrote %s\n", shard, shards,
                        (long long)sc->n_tokens, (long long)sc->n_windows, (long long)job.byte_start,
                        (long long)job.byte_end, secs, outdir);
        goto done;
    }
    int64_t sent = 0, my_tokens = sc->n_tokens;   /* this rank's, before the merge adds the others' */
    double tm = ss_now();
    if ((rc = cjob_reduce(&job, pack_scan, merge_scan, sc, &sent))) goto done;
    if (getenv("SAESTEER_SCALE_STATS"))   /* the figures of docs/SCALING.md, per rank */
        fprintf(stderr, "saesteer scan: stats: rank %d of %d: counting %.3f s, windows %.3f s (%lld tokens, %.1f tokens/s), "
                        "waiting %.3f s, sent %lld bytes at the merge, merge %.3f s\n", job.rank, job.size, tw - tc, te - tw,
                (long long)my_tokens, te > tw ? (double)my_tokens / (te - tw) : 0, tm - te, (long long)sent, ss_now() - tm);
    if (job.rank == 0) {
        scan_meta mt = {model, sae_path, text_file, ss_now() - pc.t0, cjob_nproc(&job)};
        rc = finish_scan(sc, cm.tok, outdir, &mt);
    }
    rc = cjob_agree(rc);
done:
    ss_buf_free(&pk);
    scan_free(sc);
    sae_free(d);
    if (cm.model) cli_free_model(&cm);
    return rc;
}

/* ------------------------------------------------------------ merge --- */
/* saesteer merge PART... [-o OUTDIR] [--model DIR] [--sae PATH] */
int cmd_merge(int argc, char **argv) {
    const char *out = NULL, *model = NULL, *sae_path = NULL;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) return cli_fail(SS_ERUNTIME, "out of memory");
    int n = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer merge PART... [-o OUTDIR] [--model DIR] [--sae PATH] [--json]\n"
                   "Combines the part files of `saesteer scan|sae-eval|perplexity --shard I/N` (all N of them, in\n"
                   "any order) into what one process over the whole text would have written, byte for byte apart\n"
                   "from the line with \"ranks\" (N) and \"seconds\" (the slowest shard's). Refuses parts that do not\n"
                   "belong together: another command, model, dictionary or options (a sha256 fingerprint), another\n"
                   "text size, a shard missing or twice, ranges that do not tile the text, a corrupt payload.\n"
                   "scan parts: -o OUTDIR gets latents.json and dashboard.html (the model and dictionary are loaded\n"
                   "again, from the paths in the parts unless --model/--sae say otherwise, and must match the\n"
                   "fingerprint). sae-eval and perplexity parts: the report on stdout (--json as those commands).\n"
                   "Part file format: docs/SCALING.md.\n");
            free(paths);
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(out = cli_value(argc, argv, &i))) { free(paths); return 2; } }
        else if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) { free(paths); return 2; } }
        else if (!strcmp(a, "--sae")) { if (!(sae_path = cli_value(argc, argv, &i))) { free(paths); return 2; } }
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] == '-' && a[1]) { free(paths); return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a); }
        else paths[n++] = a;
    }
    if (n == 0) { free(paths); return cli_fail(SS_EINPUT, "give the part files to merge (see --help)"); }
    cJSON **hdr = calloc((size_t)n, sizeof *hdr);
    unsigned char **pay = calloc((size_t)n, sizeof *pay);
    size_t *len = calloc((size_t)n, sizeof *len);
    int *order = calloc((size_t)n, sizeof *order);
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    sae_dict *d = NULL;
    scan_state *sc = NULL;
    sae_eval *ev = NULL;
    ss_ppl *pp = NULL;
    char err[SS_ERRLEN];
    int rc = SS_OK;
    if (!hdr || !pay || !len || !order) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto done; }
    for (int i = 0; i < n && !rc; i++) rc = cjob_read_part(paths[i], &hdr[i], &pay[i], &len[i]);
    if (rc || (rc = cjob_check_parts(hdr, paths, n, order))) goto done;
    cJSON *h0 = hdr[order[0]];
    const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "command"));
    const char *opts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "options"));
    const char *text_file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "text_file"));
    if (!model) model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "model"));
    if (!sae_path) sae_path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "sae"));
    if (!cmd || !opts || !text_file || !model) { rc = cli_fail(SS_EINPUT, "%s: header lacks command/options/text_file/model", paths[order[0]]); goto done; }
    int is_scan = !strcmp(cmd, "scan");
    if (is_scan && !out) { rc = cli_fail(SS_EINPUT, "scan parts: -o OUTDIR is required"); goto done; }
    if (!is_scan && out) { rc = cli_fail(SS_EINPUT, "%s parts: the report goes to stdout (no -o)", cmd); goto done; }
    if (is_scan && (rc = make_outdir(out))) goto done;
    double secs = 0;
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_GetObjectItemCaseSensitive(hdr[i], "seconds");
        if (cJSON_IsNumber(s) && s->valuedouble > secs) secs = s->valuedouble;
    }
    if ((rc = cli_load_model(&cm, model))) goto done;
    if (sae_path && strcmp(cmd, "perplexity") && (rc = sae_load(&d, sae_path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    char fp[65];
    cjob_fingerprint(cmd, cm.model, d, opts, fp);
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h0, "fingerprint"));
    if (!want || strcmp(fp, want)) {
        rc = cli_fail(SS_EINPUT, "the model %s%s%s is not the one the parts were made with (fingerprint differs)", model,
                      d ? " or dictionary " : "", d ? sae_path : "");
        goto done;
    }
    cli_catch_stop_signals(on_signal);
    if (is_scan) {
        scan_opts o = {0};
        long long mt;
        if (sscanf(opts, "top_k=%d radius=%d window=%d max_tokens=%lld logit_tokens=%d", &o.top_k, &o.radius, &o.window,
                   &mt, &o.n_logits) != 5) { rc = cli_fail(SS_EINPUT, "%s: options '%.100s' not understood", paths[order[0]], opts); goto done; }
        o.max_tokens = mt;
        o.threads = ss_cpu_count();   /* logit effects */
        if ((rc = scan_new(&sc, d, cm.model, &o, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        for (int k = 0; k < n && !rc; k++)
            if ((rc = scan_merge(sc, pay[order[k]], len[order[k]], err))) rc = cli_fail(rc, "%s: %s", paths[order[k]], err);
        if (rc) goto done;
        scan_meta m = {model, sae_path, text_file, secs, n};
        rc = finish_scan(sc, cm.tok, out, &m);
    } else if (!strcmp(cmd, "sae-eval")) {
        int ctx, bos;
        long long mt;
        if (sscanf(opts, "context=%d bos=%d max_tokens=%lld", &ctx, &bos, &mt) != 3) {
            rc = cli_fail(SS_EINPUT, "%s: options '%.100s' not understood", paths[order[0]], opts); goto done;
        }
        if ((rc = sae_eval_new(&ev, d, cm.model, ctx, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        for (int k = 0; k < n && !rc; k++)
            if ((rc = sae_eval_merge(ev, pay[order[k]], len[order[k]], err))) rc = cli_fail(rc, "%s: %s", paths[order[k]], err);
        if (!rc) rc = sae_eval_report(ev, d, cm.model, text_file, ctx, bos, json, n);
    } else if (!strcmp(cmd, "perplexity")) {
        int win;
        long long mt;
        if (sscanf(opts, "window=%d max_tokens=%lld", &win, &mt) != 2) {
            rc = cli_fail(SS_EINPUT, "%s: options '%.100s' not understood", paths[order[0]], opts); goto done;
        }
        if ((rc = ss_ppl_new(&pp, cm.model, win, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        for (int k = 0; k < n && !rc; k++)
            if ((rc = ss_ppl_merge(pp, pay[order[k]], len[order[k]], err))) rc = cli_fail(rc, "%s: %s", paths[order[k]], err);
        if (!rc) rc = ppl_report(pp, text_file, json, secs, n);
    } else {
        rc = cli_fail(SS_EINPUT, "%s: unknown command '%.40s'", paths[order[0]], cmd);
    }
done:
    for (int i = 0; hdr && i < n; i++) cJSON_Delete(hdr[i]);
    for (int i = 0; pay && i < n; i++) free(pay[i]);
    free(hdr); free(pay); free(len); free(order); free(paths);
    scan_free(sc);
    sae_eval_free(ev);
    ss_ppl_free(pp);
    sae_free(d);
    if (cm.model) cli_free_model(&cm);
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

/* --from-neuronpedia FILE.json: a Neuronpedia explanations export, an array of
   {"modelId", "layer", "index", "description", ...} records (or an object
   holding one under "explanations"). index may be a number or a numeric
   string. A description is put on one line and cut to LABEL_MAX bytes (at a
   character boundary); the first record of an index wins. Records of several
   layers need --layer to pick one. */
static int labels_from_neuronpedia(sae_dict *d, const char *path, const char *want_layer, int *n_set, int *n_skipped) {
    char *text = NULL;
    size_t len;
    int rc = cli_read_text_file(path, &text, &len);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return cli_fail(SS_EINPUT, "--from-neuronpedia %s: not valid JSON", path);
    cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "explanations");
    const char *layout = "expected a Neuronpedia explanations export: an array of {\"modelId\", \"layer\", \"index\", \"description\"} records";
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        cJSON_Delete(root);
        return cli_fail(SS_EINPUT, "--from-neuronpedia %s: %s", path, layout);
    }
    /* the layers present */
    const char *first_layer = NULL;
    int several = 0, k = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        cJSON *idx = cJSON_GetObjectItemCaseSensitive(it, "index"), *desc = cJSON_GetObjectItemCaseSensitive(it, "description");
        if (!cJSON_IsObject(it) || !(cJSON_IsNumber(idx) || cJSON_IsString(idx)) || !cJSON_IsString(desc)) {
            cJSON_Delete(root);
            return cli_fail(SS_EINPUT, "--from-neuronpedia %s: record [%d] has no index/description; %s", path, k, layout);
        }
        const char *ly = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "layer"));
        if (ly && !first_layer) first_layer = ly;
        else if (ly && strcmp(ly, first_layer)) several = 1;
        k++;
    }
    if (several && !want_layer) {   /* the message first: first_layer points into root */
        rc = cli_fail(SS_EINPUT, "--from-neuronpedia %s: records of several layers (e.g. \"%.40s\"); pick one with --layer ID",
                      path, first_layer);
        cJSON_Delete(root);
        return rc;
    }
    unsigned char *seen = calloc((size_t)d->d_sae, 1);
    if (!seen) { cJSON_Delete(root); return cli_fail(SS_ERUNTIME, "out of memory"); }
    *n_set = *n_skipped = 0;
    k = 0;
    rc = SS_OK;
    cJSON_ArrayForEach(it, arr) {
        cJSON *idx = cJSON_GetObjectItemCaseSensitive(it, "index");
        const char *ly = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "layer"));
        k++;
        if (want_layer && (!ly || strcmp(ly, want_layer))) { (*n_skipped)++; continue; }
        long i = -1;
        if (cJSON_IsNumber(idx) && idx->valuedouble == (double)(long)idx->valuedouble) i = (long)idx->valuedouble;
        else if (cJSON_IsString(idx)) {
            char *end;
            errno = 0;
            i = strtol(idx->valuestring, &end, 10);
            if (errno || end == idx->valuestring || *end) i = -1;
        }
        if (i < 0 || i >= d->d_sae) {
            rc = cli_fail(SS_EINPUT, "--from-neuronpedia %s: record [%d]: index not in [0, %d) of this dictionary", path, k - 1, d->d_sae);
            break;
        }
        if (seen[i]) { (*n_skipped)++; continue; }
        seen[i] = 1;
        /* one line, at most LABEL_MAX bytes, cut at a character boundary */
        char lab[LABEL_MAX + 1];
        size_t n = 0;
        int space = 0;
        for (const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "description")); *c; c++) {
            unsigned char u = (unsigned char)*c;
            if (u < 0x20 || u == ' ') { space = n > 0; continue; }
            size_t clen = u < 0x80 ? 1 : u < 0xE0 ? 2 : u < 0xF0 ? 3 : 4;
            if (n + space + clen > LABEL_MAX) break;
            if (space) { lab[n++] = ' '; space = 0; }
            for (size_t b = 0; b < clen && c[b]; b++) lab[n++] = c[b];
            c += clen - 1;
        }
        lab[n] = '\0';
        char what[4300];
        snprintf(what, sizeof what, "--from-neuronpedia %s: record [%d]", path, k - 1);
        if ((rc = check_label(what, lab)) || (rc = set_label(d, i, lab))) break;
        (*n_set)++;
    }
    free(seen);
    cJSON_Delete(root);
    return rc;
}

int cmd_label(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *from = NULL, *np = NULL, *np_layer = NULL, *v;
    long latent = -1;
    int list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer label DICT.h5 --latent I --text \"name\"\n"
                   "       saesteer label DICT.h5 --from LABELS.json\n"
                   "       saesteer label DICT.h5 --from-neuronpedia EXPLANATIONS.json [--layer ID]\n"
                   "       saesteer label DICT.h5 --list\n"
                   "Sets latent labels in the dictionary's `labels` dataset and rewrites the file atomically\n"
                   "(temporary file + rename; every other dataset and attribute is kept; a symlink is followed to\n"
                   "the file it names; concurrent label runs take turns on a flock, none is lost). --text \"\"\n"
                   "clears a label.\n"
                   "LABELS.json: {\"12\": \"name\", ...} or [{\"latent\": 12, \"label\": \"name\"}, ...].\n"
                   "Labels are one line of UTF-8, at most %d bytes. --list prints the labelled latents.\n"
                   "--from-neuronpedia imports a Neuronpedia explanations export: an array of {\"modelId\", \"layer\",\n"
                   "\"index\", \"description\"} records (or {\"explanations\": [...]}); descriptions are put on one line and\n"
                   "cut to %d bytes, the first record of an index wins, and --layer ID keeps the records of one layer\n"
                   "(needed when the file holds several).\n", LABEL_MAX, LABEL_MAX);
            return 0;
        }
        if (!strcmp(a, "--latent")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, SAE_MAX_D_SAE, &latent)) return 2; }
        else if (!strcmp(a, "--text")) { if (!(text = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--from")) { if (!(from = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--from-neuronpedia")) { if (!(np = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--layer")) { if (!(np_layer = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--list")) list = 1;
        else if (a[0] == '-' && a[1]) return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
        else if (!path) path = a;
        else return cli_fail(SS_EINPUT, "one dictionary path only ('%.64s' is extra)", a);
    }
    if (!path) return cli_fail(SS_EINPUT, "the dictionary path is required (see --help)");
    int modes = (text != NULL || latent >= 0) + (from != NULL) + (np != NULL) + list;
    if (modes != 1) return cli_fail(SS_EINPUT, "give exactly one of --latent I --text NAME, --from FILE.json, --from-neuronpedia FILE.json, --list");
    if (np_layer && !np) return cli_fail(SS_EINPUT, "--layer goes with --from-neuronpedia");
    if (!list && !from && !np && (latent < 0 || !text)) return cli_fail(SS_EINPUT, "--latent I and --text NAME go together");
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
    int n_set = 0, n_skipped = 0;
    if (np) rc = labels_from_neuronpedia(d, np, np_layer, &n_set, &n_skipped);
    else if (from) rc = labels_from_json(d, from, &n_set);
    else if (latent >= d->d_sae) rc = cli_fail(SS_EINPUT, "--latent %ld: %s has %d latents", latent, path, d->d_sae);
    else if (!(rc = check_label("--text", text)) && !(rc = set_label(d, latent, text))) n_set = 1;
    if (!rc && (rc = sae_save_h5(d, path, err))) rc = cli_fail(rc, "%s", err);
    if (lock_fd >= 0) close(lock_fd);   /* after the rename: the next label run reads the new file */
    if (!rc) {
        if (np) printf("set %d labels in %s (%d records skipped: other layers or repeated indices)\n", n_set, path, n_skipped);
        else if (from) printf("set %d labels in %s\n", n_set, path);
        else printf("latent %ld of %s: \"%s\"\n", latent, path, text);
    }
    sae_free(d);
    return rc;
}
