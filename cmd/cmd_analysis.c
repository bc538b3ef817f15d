/* cmd_analysis.c - patch, lens, unembed, attention, info --model: option
 * parsing and output formatting for the analyses in sae/analysis.h. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "attention_view.h"
#include "cli.h"
#include "npy.h"
#include "sae.h"
#include "svg.h"

/* A token as text (U+FFFD for a piece of a character), malloc'd. */
static char *tok_text(const tokenizer *tok, int id) {
    char *s = NULL, err[SS_ERRLEN];
    if (tok_decode(tok, &id, 1, &s, err) != SS_OK) return strdup("?");
    return s;
}

/* Printable form for tables: \n, \t and control bytes escaped. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
}

/* One token for --answer/--wrong: the text must encode to exactly one id. */
static int one_token(const cli_model *cm, const char *flag, const char *text, int *id) {
    char err[SS_ERRLEN];
    int *ids = NULL, n = 0;
    if (!ss_utf8_valid(text, strlen(text))) return cli_fail(SS_EINPUT, "%s is not valid UTF-8", flag);
    int rc = tok_encode(cm->tok, text, strlen(text), &ids, &n, err);
    if (rc) return cli_fail(rc, "%s: %s", flag, err);
    if (n != 1) {
        free(ids);
        return cli_fail(SS_EINPUT, "%s '%.60s' is %d tokens; it must be exactly one (mind the leading space: ' Paris')",
                        flag, text, n);
    }
    *id = ids[0];
    free(ids);
    return SS_OK;
}

static int text_arg(const char *flag, const char *v) {
    if (!ss_utf8_valid(v, strlen(v))) return cli_fail(SS_EINPUT, "%s is not valid UTF-8", flag);
    return SS_OK;
}

/* ------------------------------------------------------------- patch --- */
static void patch_svg_label(char *buf, size_t n, const char *tok, int pos) {
    char t[48];
    size_t j = 0;
    for (const char *s = tok; *s && j + 4 < sizeof t; s++) {
        if (*s == '\n') { t[j++] = '\\'; t[j++] = 'n'; }
        else if ((unsigned char)*s >= 0x20) t[j++] = *s;
    }
    t[j] = 0;
    snprintf(buf, n, "%s|%d", t, pos);
}

/* Heat map of the normalised score (patched - corrupted) / (clean - corrupted). */
static int patch_plot(const char *path, const patch_result *r, const patch_spec *sp, char **toks, int T, int NH) {
    char err[SS_ERRLEN], buf[160], col[8];
    int rows = r->ndim == 3 ? r->shape[0] * r->shape[1] : r->shape[0];
    int cols = r->ndim == 3 ? r->shape[2] : r->shape[1];
    int by_token = r->ndim == 3 || sp->kind != PATCH_Z;
    double cell = cols > 40 ? 14 : cols > 20 ? 20 : 30, rcell = r->ndim == 3 ? 14 : cell;
    double ml = r->ndim == 3 ? 80 : 64, mt = 56, mb = by_token ? 110 : 50, mr = 110;
    double W = ml + cols * cell + mr, H = mt + rows * rcell + mb;
    if (W < 360) W = 360;
    svg s;
    if (svg_begin(&s, path, W, H, err)) return cli_fail(SS_EINPUT, "--plot: %s", err);
    double denom = r->clean - r->corrupted;
    snprintf(buf, sizeof buf, "activation patching: %s%s, %s (clean %.3g, corrupted %.3g)", patch_kind_name(sp->kind),
             sp->per_position ? " per position" : "", sp->metric == PATCH_LOGDIFF ? "logit diff" : "log p(answer)",
             r->clean, r->corrupted);
    svg_text(&s, W / 2, 22, 13, "middle", "black", 0, buf);
    svg_text(&s, W / 2, 40, 11, "middle", "#555", 0, "colour: (patched - corrupted) / (clean - corrupted)");
    for (int i = 0; i < rows; i++) {
        if (r->ndim == 3) snprintf(buf, sizeof buf, "L%d H%d", i / NH, i % NH);
        else snprintf(buf, sizeof buf, "L%d", i);
        svg_text(&s, ml - 6, mt + i * rcell + rcell / 2 + 4, r->ndim == 3 ? 9 : 11, "end", "#333", 0, buf);
        for (int j = 0; j < cols; j++) {
            double v = r->values[(size_t)i * cols + j];
            double sc = denom != 0 ? (v - r->corrupted) / denom : 0;
            svg_diverging(sc, col);
            svg_rect(&s, ml + j * cell, mt + i * rcell, cell, rcell, col, "#ffffff");
            snprintf(buf, sizeof buf, "%s: %.4g (score %.3f)", r->ndim == 3 ? "value" : "value", v, sc);
            svg_title(&s, buf);
        }
    }
    for (int j = 0; j < cols; j++) {
        double x = ml + j * cell + cell / 2, y = mt + rows * rcell + 8;
        if (by_token) {
            patch_svg_label(buf, sizeof buf, toks[j], j);
            svg_text(&s, x + 3, y, 10, "end", "#333", -60, buf);
        } else {
            snprintf(buf, sizeof buf, "%d", j);
            svg_text(&s, x, y + 6, 10, "middle", "#333", 0, buf);
        }
    }
    if (!by_token) svg_text(&s, ml + cols * cell / 2, mt + rows * rcell + 34, 11, "middle", "black", 0, "head");
    /* colour bar */
    double bx = ml + cols * cell + 24, by = mt, bh = rows * rcell < 120 ? 120 : rows * rcell;
    for (int k = 0; k < 40; k++) {
        svg_diverging(1 - 2.0 * k / 39, col);
        svg_rect(&s, bx, by + bh * k / 40, 14, bh / 40 + 0.5, col, NULL);
    }
    svg_text(&s, bx + 20, by + 8, 10, "start", "#333", 0, "+1 (clean)");
    svg_text(&s, bx + 20, by + bh / 2 + 4, 10, "start", "#333", 0, "0");
    svg_text(&s, bx + 20, by + bh, 10, "start", "#333", 0, "-1");
    (void)T;
    if (svg_end(&s, err)) return cli_fail(SS_ERUNTIME, "--plot: %s", err);
    return SS_OK;
}

int cmd_patch(int argc, char **argv) {
    const char *model = NULL, *clean = NULL, *corr = NULL, *ans = NULL, *wrong = NULL, *kind = "resid_pre",
               *metric = "logdiff", *plot = NULL;
    int json = 0, per_pos = 0, no_bos = 0, full = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL(dst) do { if (!(v = cli_value(argc, argv, &i))) return SS_EINPUT; dst = v; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer patch [--model DIR] --clean TEXT --corrupted TEXT --answer STR [--wrong STR]\n"
                   "                      [--kind resid_pre|attn_out|mlp_out|z] [--per-position] [--metric logdiff|logprob]\n"
                   "                      [--no-bos] [--json] [--plot F.svg] [--full-runs]\n"
                   "Activation patching from the clean run into the corrupted one (TransformerLens\n"
                   "patching.get_act_patch_*). Both prompts must be the same number of tokens; --answer and --wrong\n"
                   "one token each (with its leading space: ' Paris'). The metric, at the last position, is\n"
                   "logit(answer) - logit(wrong) (logdiff, the default) or log p(answer) (logprob; no --wrong).\n"
                   "--kind resid_pre|attn_out|mlp_out: for every layer L and position p, blocks.L.hook_<kind>[p] of\n"
                   "the clean run patched into the corrupted run: values[L][p]. --kind z: for every layer and head,\n"
                   "blocks.L.attn.hook_z of that head at every position: values[L][h]; with --per-position at one\n"
                   "position at a time: values[L][h][p]. The table (and the --plot heat map) shows the normalised\n"
                   "score (patched - corrupted) / (clean - corrupted): 1 = the patch restores the clean behaviour.\n"
                   "--json prints {\"kind\", \"metric\", \"clean\", \"corrupted\", \"tokens\", \"values\", ...} with the raw\n"
                   "metric. Patches at positions before the first differing token are no-ops (the two runs are\n"
                   "identical there) and take the corrupted value without a run. --full-runs does every patch as a\n"
                   "whole forward pass instead (slower; for timing and checking the sharing).\n");
            return 0;
        }
        if (!strcmp(a, "--model")) VAL(model);
        else if (!strcmp(a, "--clean")) VAL(clean);
        else if (!strcmp(a, "--corrupted")) VAL(corr);
        else if (!strcmp(a, "--answer")) VAL(ans);
        else if (!strcmp(a, "--wrong")) VAL(wrong);
        else if (!strcmp(a, "--kind")) VAL(kind);
        else if (!strcmp(a, "--metric")) VAL(metric);
        else if (!strcmp(a, "--plot")) VAL(plot);
        else if (!strcmp(a, "--per-position")) per_pos = 1;
        else if (!strcmp(a, "--full-runs")) full = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
#undef VAL
    }
    patch_spec sp = {0};
    if (!patch_kind_parse(kind, &sp.kind)) return cli_fail(SS_EINPUT, "--kind '%.40s': expected resid_pre, attn_out, mlp_out or z", kind);
    if (!strcmp(metric, "logdiff")) sp.metric = PATCH_LOGDIFF;
    else if (!strcmp(metric, "logprob")) sp.metric = PATCH_LOGPROB;
    else return cli_fail(SS_EINPUT, "--metric '%.40s': expected logdiff or logprob", metric);
    if (per_pos && sp.kind != PATCH_Z) return cli_fail(SS_EINPUT, "--per-position goes with --kind z (the other kinds are per position already)");
    sp.per_position = per_pos;
    sp.full_runs = full;
    if (!clean || !corr) return cli_fail(SS_EINPUT, "--clean TEXT and --corrupted TEXT are required");
    if (!ans) return cli_fail(SS_EINPUT, "--answer STR is required");
    if (sp.metric == PATCH_LOGDIFF && !wrong) return cli_fail(SS_EINPUT, "--metric logdiff needs --wrong STR (or use --metric logprob)");
    if (sp.metric == PATCH_LOGPROB && wrong) return cli_fail(SS_EINPUT, "--metric logprob uses --answer only; drop --wrong");
    int rc;
    if ((rc = text_arg("--clean", clean)) || (rc = text_arg("--corrupted", corr))) return rc;
    if (plot) {   /* fail on a bad path before the runs */
        ss_outfile probe;
        char err[SS_ERRLEN];
        if ((rc = ss_out_open(&probe, plot, err))) return cli_fail(rc, "--plot: %s", err);
        ss_out_abort(&probe);
    }
    cli_model cm;
    int *ci = NULL, *xi = NULL, nc = 0, nx = 0;
    char **toks = NULL, err[SS_ERRLEN];
    patch_result r = {0};
    if ((rc = cli_load_model(&cm, model))) return rc;
    if ((rc = one_token(&cm, "--answer", ans, &sp.answer))) goto out;
    if (wrong && (rc = one_token(&cm, "--wrong", wrong, &sp.wrong))) goto out;
    if ((rc = cli_encode(&cm, clean, no_bos, &ci, &nc)) || (rc = cli_encode(&cm, corr, no_bos, &xi, &nx))) goto out;
    if (nc != nx) {
        rc = cli_fail(SS_EINPUT, "--clean is %d tokens and --corrupted is %d tokens%s; patching needs the same length",
                      nc, nx, no_bos ? "" : " (BOS included)");
        goto out;
    }
    if ((rc = patch_run(cm.model, ci, xi, nc, &sp, &r, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    int T = nc, NH = cm.model->cfg.n_head, L = cm.model->cfg.n_layer;
    toks = calloc((size_t)T, sizeof(char *));
    for (int t = 0; t < T; t++) toks[t] = tok_text(cm.tok, xi[t]);
    if (plot && (rc = patch_plot(plot, &r, &sp, toks, T, NH))) goto out;
    double denom = r.clean - r.corrupted;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "kind", patch_kind_name(sp.kind));
        cJSON_AddBoolToObject(j, "per_position", sp.per_position);
        cJSON_AddStringToObject(j, "metric", sp.metric == PATCH_LOGDIFF ? "logdiff" : "logprob");
        cJSON_AddStringToObject(j, "model", cm.model->dir);
        cJSON_AddNumberToObject(j, "answer_id", sp.answer);
        if (sp.metric == PATCH_LOGDIFF) cJSON_AddNumberToObject(j, "wrong_id", sp.wrong);
        cJSON_AddNumberToObject(j, "clean", r.clean);
        cJSON_AddNumberToObject(j, "corrupted", r.corrupted);
        cJSON *ta = cJSON_AddArrayToObject(j, "tokens");
        for (int t = 0; t < T; t++) cJSON_AddItemToArray(ta, cJSON_CreateString(toks[t]));
        cJSON *ca = cJSON_AddArrayToObject(j, "clean_tokens");
        for (int t = 0; t < T; t++) { char *s = tok_text(cm.tok, ci[t]); cJSON_AddItemToArray(ca, cJSON_CreateString(s)); free(s); }
        cJSON *va = cJSON_AddArrayToObject(j, "values");
        for (int l = 0; l < r.shape[0]; l++) {
            cJSON *row = cJSON_CreateArray();
            for (int a = 0; a < r.shape[1]; a++) {
                if (r.ndim == 3) {
                    cJSON *in = cJSON_CreateArray();
                    for (int b = 0; b < r.shape[2]; b++)
                        cJSON_AddItemToArray(in, cJSON_CreateNumber(r.values[((size_t)l * r.shape[1] + a) * r.shape[2] + b]));
                    cJSON_AddItemToArray(row, in);
                } else {
                    cJSON_AddItemToArray(row, cJSON_CreateNumber(r.values[(size_t)l * r.shape[1] + a]));
                }
            }
            cJSON_AddItemToArray(va, row);
        }
        cJSON_AddNumberToObject(j, "runs", (double)r.runs);
        cJSON_AddNumberToObject(j, "skipped", (double)r.skipped);
        cJSON_AddNumberToObject(j, "seconds", r.seconds);
        cJSON_AddNumberToObject(j, "runs_per_s", r.seconds > 0 ? r.runs / r.seconds : 0);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("# patch %s%s clean -> corrupted, metric %s at the last position: clean %.4f, corrupted %.4f\n",
               patch_kind_name(sp.kind), sp.per_position ? " (per position)" : "",
               sp.metric == PATCH_LOGDIFF ? "logit(answer) - logit(wrong)" : "log p(answer)", r.clean, r.corrupted);
        printf("# normalised score (patched - corrupted) / (clean - corrupted); %lld runs in %.3f s (%.0f runs/s), %lld no-op patches skipped\n",
               (long long)r.runs, r.seconds, r.seconds > 0 ? r.runs / r.seconds : 0, (long long)r.skipped);
        if (r.ndim == 2 && sp.kind == PATCH_Z) {
            printf("%-8s", "head");
            for (int h = 0; h < NH; h++) printf(" %9d", h);
            printf("\n");
        }
        int cols = r.ndim == 3 ? r.shape[2] : r.shape[1];
        for (int row = 0; row < (r.ndim == 3 ? L * NH : L); row++) {
            if (row == 0 && (r.ndim == 3 || sp.kind != PATCH_Z)) {
                printf("%-8s", "pos");
                for (int t = 0; t < T; t++) printf(" %9d", t);
                printf("\n%-8s", "token");
                for (int t = 0; t < T; t++) {
                    char lab[12] = {0};
                    size_t k = 0;
                    for (const char *s = toks[t]; *s && k < 9; s++) lab[k++] = (unsigned char)*s < 0x20 ? ' ' : *s;
                    printf(" %9s", lab);
                }
                printf("\n");
            }
            char rl[40];
            if (r.ndim == 3) snprintf(rl, sizeof rl, "L%d H%d", row / NH, row % NH);
            else snprintf(rl, sizeof rl, "L%d", row);
            printf("%-8s", rl);
            for (int c = 0; c < cols; c++) {
                double v = r.values[(size_t)row * cols + c];
                printf(" %9.3f", denom != 0 ? (v - r.corrupted) / denom : 0.0);
            }
            printf("\n");
        }
    }
out:
    if (toks) for (int t = 0; t < nc; t++) free(toks[t]);
    free(toks);
    patch_result_free(&r);
    free(ci);
    free(xi);
    cli_free_model(&cm);
    return rc;
}

/* -------------------------------------------------------------- lens --- */
int cmd_lens(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *ans = NULL;
    long top = 5, pos = -1;
    int json = 0, cached = 0, no_bos = 0, have_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer lens [--model DIR] --text TEXT [--position P] [--top K] [--answer STR]\n"
                   "                     [--cached-scale] [--no-bos] [--json]\n"
                   "Logit lens: the residual stream at every blocks.L.hook_resid_pre and the final\n"
                   "blocks.{n-1}.hook_resid_post, at position P (default the last; negative counts from the end,\n"
                   "BOS is position 0), read through ln_f and the unembedding: the top K (default 5) next tokens\n"
                   "and their log-probabilities over the full vocabulary. By default ln_f is applied in full, with\n"
                   "the stream's own mean and scale (the classic logit lens); --cached-scale centres the stream and\n"
                   "divides by the final residual's LayerNorm scale at that position, as TransformerLens's\n"
                   "accumulated_resid(apply_ln=True) does (then ln_f's weight and bias, which TransformerLens folds\n"
                   "into W_U). --answer STR (one token) adds its rank and log-prob per layer. A table, or --json:\n"
                   "{\"position\", \"hooks\": [...], \"top\": [[{\"id\", \"token\", \"logprob\"}, ...] per hook], ...}.\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text")) { if (!(text = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--answer")) { if (!(ans = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--top")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1000, &top)) return 2; }
        else if (!strcmp(a, "--position")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, -100000, 100000, &pos)) return 2; have_pos = 1; }
        else if (!strcmp(a, "--cached-scale")) cached = 1;
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    (void)have_pos;
    if (!text) return cli_fail(SS_EINPUT, "--text TEXT is required");
    int rc;
    if ((rc = text_arg("--text", text))) return rc;
    cli_model cm;
    int *ids = NULL, n = 0, answer = -1;
    char err[SS_ERRLEN];
    lens_result r = {0};
    if ((rc = cli_load_model(&cm, model))) return rc;
    if (ans && (rc = one_token(&cm, "--answer", ans, &answer))) goto out;
    if ((rc = cli_encode(&cm, text, no_bos, &ids, &n))) goto out;
    long p = pos < 0 ? n + pos : pos;
    if (p < 0 || p >= n) { rc = cli_fail(SS_EINPUT, "--position %ld: the prompt has %d tokens (0..%d)", pos, n, n - 1); goto out; }
    if ((rc = lens_run(cm.model, ids, n, (int)p, cached, (int)top, answer, &r, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    const gpt2_config *c = &cm.model->cfg;
    char name[64];
    char *ptok = tok_text(cm.tok, ids[p]);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", cm.model->dir);
        cJSON_AddNumberToObject(j, "position", (double)p);
        cJSON_AddStringToObject(j, "token", ptok);
        cJSON_AddStringToObject(j, "scale", cached ? "cached (final residual's)" : "own (ln_f in full)");
        cJSON *h = cJSON_AddArrayToObject(j, "hooks"), *tp = cJSON_AddArrayToObject(j, "top");
        for (int i = 0; i < r.n_points; i++) {
            lens_point_name(c, i, name, sizeof name);
            cJSON_AddItemToArray(h, cJSON_CreateString(name));
            cJSON *row = cJSON_CreateArray();
            for (int k = 0; k < r.k; k++) {
                cJSON *e = cJSON_CreateObject();
                int id = r.top_ids[(size_t)i * r.k + k];
                char *s = tok_text(cm.tok, id);
                cJSON_AddNumberToObject(e, "id", id);
                cJSON_AddStringToObject(e, "token", s);
                cJSON_AddNumberToObject(e, "logprob", r.top_logprob[(size_t)i * r.k + k]);
                free(s);
                cJSON_AddItemToArray(row, e);
            }
            cJSON_AddItemToArray(tp, row);
        }
        if (answer >= 0) {
            cJSON *a = cJSON_AddObjectToObject(j, "answer");
            char *s = tok_text(cm.tok, answer);
            cJSON_AddNumberToObject(a, "id", answer);
            cJSON_AddStringToObject(a, "token", s);
            free(s);
            cJSON *rk = cJSON_AddArrayToObject(a, "rank"), *lp = cJSON_AddArrayToObject(a, "logprob");
            for (int i = 0; i < r.n_points; i++) {
                cJSON_AddItemToArray(rk, cJSON_CreateNumber(r.answer_rank[i]));
                cJSON_AddItemToArray(lp, cJSON_CreateNumber(r.answer_logprob[i]));
            }
        }
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("# logit lens at position %ld '", p);
        put_escaped(stdout, ptok);
        printf("' (%s scale): top %d next tokens, probability\n", cached ? "the final residual's cached" : "each stream's own", r.k);
        if (answer >= 0) {
            char *s = tok_text(cm.tok, answer);
            printf("%-26s rank of '", "# hook");
            put_escaped(stdout, s);
            printf("', its log-prob | top tokens\n");
            free(s);
        }
        for (int i = 0; i < r.n_points; i++) {
            lens_point_name(c, i, name, sizeof name);
            printf("%-26s", name);
            if (answer >= 0) printf(" rank %-6d %7.3f |", r.answer_rank[i], r.answer_logprob[i]);
            for (int k = 0; k < r.k; k++) {
                char *s = tok_text(cm.tok, r.top_ids[(size_t)i * r.k + k]);
                printf("  '");
                put_escaped(stdout, s);
                printf("' %.3f", exp(r.top_logprob[(size_t)i * r.k + k]));
                free(s);
            }
            printf("\n");
        }
    }
    free(ptok);
out:
    lens_result_free(&r);
    free(ids);
    cli_free_model(&cm);
    return rc;
}

/* ----------------------------------------------------------- unembed --- */
int cmd_unembed(int argc, char **argv) {
    const char *model = NULL, *vec = NULL, *sae_path = NULL;
    long top = 10, latent = -1;
    int json = 0, lnf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer unembed [--model DIR] (--vector V.npy | --sae PATH --latent I) [--ln-f] [--top K] [--json]\n"
                   "A direction in vocabulary space: the K (default 10) tokens with the largest and the smallest\n"
                   "direct logit v . W_U[:, t] (W_U = wte^T, the tied unembedding). V.npy is (d_model,) or\n"
                   "(1, d_model): a steering vector, a function vector, a mean difference; --sae PATH --latent I\n"
                   "takes row I of the dictionary's W_dec. --ln-f applies ln_f first (with the vector's own mean and\n"
                   "scale), as if the vector were the whole final residual stream.\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--vector")) { if (!(vec = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--sae")) { if (!(sae_path = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--latent")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, SAE_MAX_D_SAE, &latent)) return 2; }
        else if (!strcmp(a, "--top")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 10000, &top)) return 2; }
        else if (!strcmp(a, "--ln-f")) lnf = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!!vec + (sae_path || latent >= 0) != 1) return cli_fail(SS_EINPUT, "give --vector V.npy or --sae PATH --latent I");
    if (!vec && latent < 0) return cli_fail(SS_EINPUT, "--sae needs --latent I");
    int rc;
    cli_model cm;
    char err[SS_ERRLEN];
    npy_array a = {0};
    sae_dict *d = NULL;
    float *scores = NULL, *v = NULL;
    int *hi = NULL, *lo = NULL;
    if ((rc = cli_load_model(&cm, model))) return rc;
    int C = cm.model->cfg.n_embd, V = cm.model->cfg.vocab_size, K = (int)(top < V ? top : V);
    char src[4300];
    if (vec) {
        if ((rc = npy_load(&a, vec, err))) { rc = cli_fail(rc, "--vector: %s", err); goto out; }
        if (!(a.ndim == 1 || (a.ndim == 2 && a.shape[0] == 1)) || a.shape[a.ndim - 1] != C) {
            rc = cli_fail(SS_EINPUT, "%s: a vector of %lld values in %d dimensions; expected (%d,) or (1, %d), the model's width",
                          vec, (long long)a.numel, a.ndim, C, C);
            goto out;
        }
        for (int64_t i = 0; i < a.numel; i++)
            if (!isfinite(a.data[i])) { rc = cli_fail(SS_EINPUT, "%s: non-finite value at index %lld", vec, (long long)i); goto out; }
        v = a.data;
        snprintf(src, sizeof src, "%s", vec);
    } else {
        if ((rc = sae_load(&d, sae_path ? sae_path : cli_default_sae(), err))) { rc = cli_fail(rc, "%s", err); goto out; }
        if (d->d_in != C) { rc = cli_fail(SS_EINPUT, "%s: d_in %d is not the model's width %d", d->path, d->d_in, C); goto out; }
        if (latent >= d->d_sae) { rc = cli_fail(SS_EINPUT, "--latent %ld out of range: %s has %d latents", latent, d->path, d->d_sae); goto out; }
        v = d->W_dec + (size_t)latent * C;
        snprintf(src, sizeof src, "%s W_dec[%ld]", d->path, latent);
    }
    scores = ss_malloc2((size_t)V, sizeof(float));
    hi = ss_malloc2((size_t)K, sizeof(int));
    lo = ss_malloc2((size_t)K, sizeof(int));
    if (!scores || !hi || !lo) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto out; }
    if ((rc = unembed_scores(cm.model, v, lnf, scores, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    topk_indices(scores, V, K, 1, hi);
    topk_indices(scores, V, K, 0, lo);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "source", src);
        cJSON_AddBoolToObject(j, "ln_f", lnf);
        if (d && d->labels && d->labels[latent][0]) cJSON_AddStringToObject(j, "label", d->labels[latent]);
        for (int side = 0; side < 2; side++) {
            cJSON *arr = cJSON_AddArrayToObject(j, side ? "bottom" : "top");
            for (int k = 0; k < K; k++) {
                int id = side ? lo[k] : hi[k];
                char *s = tok_text(cm.tok, id);
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "id", id);
                cJSON_AddStringToObject(e, "token", s);
                cJSON_AddNumberToObject(e, "logit", scores[id]);
                cJSON_AddItemToArray(arr, e);
                free(s);
            }
        }
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("# %s%s: direct logits%s\n", src, d && d->labels && d->labels[latent][0] ? "" : "", lnf ? " after ln_f" : "");
        if (d && d->labels && d->labels[latent][0]) printf("# label: %s\n", d->labels[latent]);
        printf("%-28s  %s\n", "top (boosted)", "bottom (suppressed)");
        for (int k = 0; k < K; k++) {
            char *s1 = tok_text(cm.tok, hi[k]), *s2 = tok_text(cm.tok, lo[k]);
            char cell[256];
            int w = 0;
            FILE *mf = fmemopen(cell, sizeof cell - 1, "w");
            if (mf) { fputc('\'', mf); put_escaped(mf, s1); fprintf(mf, "' %+.3f", scores[hi[k]]); w = (int)ftell(mf); fclose(mf); cell[w] = 0; }
            printf("%-28s  '", cell);
            put_escaped(stdout, s2);
            printf("' %+.3f\n", scores[lo[k]]);
            free(s1);
            free(s2);
        }
    }
out:
    free(scores); free(hi); free(lo);
    npy_free(&a);
    sae_free(d);
    cli_free_model(&cm);
    return rc;
}

/* --------------------------------------------------------- attention --- */
typedef struct { float *buf; int NH, T; } pat_cap;

static int pattern_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)width; (void)pos0; (void)err;
    pat_cap *c = ctx;
    memcpy(c->buf + (size_t)hp->layer * c->NH * c->T * c->T, act, (size_t)c->NH * T * T * sizeof(float));
    return SS_OK;
}

int cmd_attention(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *out = NULL;
    long layer = 0, head = 0;
    int no_bos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer attention [--model DIR] --text TEXT -o VIEW.html [--layer L] [--head H] [--no-bos]\n"
                   "A self-contained HTML view (no network) of blocks.L.attn.hook_pattern for every layer and head:\n"
                   "pick a layer and head (--layer/--head choose the first shown), hover or tap a token to shade the\n"
                   "tokens it attends to (and outline the ones attending to it), and see all heads of the layer as\n"
                   "small heat maps (click one to pick it). URL parameters ?layer=L&head=H&token=P do the same.\n");
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--text")) { if (!(text = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(out = cli_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--layer")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 10000, &layer)) return 2; }
        else if (!strcmp(a, "--head")) { if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 10000, &head)) return 2; }
        else if (!strcmp(a, "--no-bos")) no_bos = 1;
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    if (!text) return cli_fail(SS_EINPUT, "--text TEXT is required");
    if (!out) return cli_fail(SS_EINPUT, "-o VIEW.html is required");
    int rc;
    if ((rc = text_arg("--text", text))) return rc;
    cli_model cm;
    int *ids = NULL, n = 0;
    char err[SS_ERRLEN];
    gpt2_state *s = NULL;
    pat_cap pc = {0};
    char **toks = NULL;
    if ((rc = cli_load_model(&cm, model))) return rc;
    const gpt2_config *c = &cm.model->cfg;
    if (layer >= c->n_layer) { rc = cli_fail(SS_EINPUT, "--layer %ld: the model has %d layers", layer, c->n_layer); goto out; }
    if (head >= c->n_head) { rc = cli_fail(SS_EINPUT, "--head %ld: the model has %d heads", head, c->n_head); goto out; }
    if ((rc = cli_encode(&cm, text, no_bos, &ids, &n))) goto out;
    pc.NH = c->n_head;
    pc.T = n;
    pc.buf = ss_malloc2((size_t)c->n_layer * c->n_head * n, (size_t)n * sizeof(float));
    if (!pc.buf) { rc = cli_fail(SS_ERUNTIME, "out of memory for the attention patterns"); goto out; }
    if ((rc = gpt2_state_build(&s, cm.model, n, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    for (int l = 0; l < c->n_layer; l++) {
        gpt2_hook_point hp = {GPT2_HOOK_PATTERN, l};
        if ((rc = gpt2_add_hook(s, &hp, pattern_hook, &pc, 0, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    }
    gpt2_stop_after_hooks(s);
    if ((rc = gpt2_forward(s, ids, n, NULL, 0, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    toks = calloc((size_t)n, sizeof(char *));
    for (int t = 0; t < n; t++) toks[t] = tok_text(cm.tok, ids[t]);
    attention_view v = {.model = cm.model->dir, .text = text, .n_layer = c->n_layer, .n_head = c->n_head, .T = n,
                        .ids = ids, .tokens = (const char *const *)toks, .pattern = pc.buf,
                        .layer = (int)layer, .head = (int)head};
    if ((rc = attention_view_write(out, &v, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    printf("wrote %s: %d layers x %d heads, %d tokens\n", out, c->n_layer, c->n_head, n);
out:
    if (toks) for (int t = 0; t < n; t++) free(toks[t]);
    free(toks);
    free(pc.buf);
    gpt2_state_free(s);
    free(ids);
    cli_free_model(&cm);
    return rc;
}

/* ------------------------------------------------------- info --model --- */
int cli_info_model(const char *dir, int json) {
    cli_model cm;
    int rc = cli_load_model(&cm, dir);
    if (rc) return rc;
    const gpt2_model *m = cm.model;
    const gpt2_config *c = &m->cfg;
    int64_t C = c->n_embd, L = c->n_layer, V = c->vocab_size, P = c->n_positions;
    int64_t per_layer = 4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C);
    int64_t params = V * C + P * C + L * per_layer + 2 * C;
    /* storage dtype: the one most of the file's float tensors use */
    int64_t by[ST_BOOL + 1] = {0};
    int64_t file_bytes = 0;
    for (int i = 0; i < m->n_files; i++) {
        file_bytes += (int64_t)m->files[i].size;
        for (int k = 0; k < m->files[i].n; k++) by[m->files[i].tensors[k].dtype] += m->files[i].tensors[k].numel;
    }
    int best = ST_F32;
    for (int k = 0; k <= ST_BOOL; k++) if (by[k] > by[best]) best = k;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "path", m->dir);
        cJSON_AddStringToObject(j, "architecture", "gpt2");
        cJSON_AddNumberToObject(j, "n_layer", (double)L);
        cJSON_AddNumberToObject(j, "d_model", (double)C);
        cJSON_AddNumberToObject(j, "n_head", c->n_head);
        cJSON_AddNumberToObject(j, "d_head", (double)(C / c->n_head));
        cJSON_AddNumberToObject(j, "d_mlp", (double)(4 * C));
        cJSON_AddNumberToObject(j, "n_ctx", (double)P);
        cJSON_AddNumberToObject(j, "vocab_size", (double)V);
        cJSON_AddStringToObject(j, "dtype", st_dtype_name((st_dtype)best));
        cJSON_AddNumberToObject(j, "parameters", (double)params);
        cJSON_AddNumberToObject(j, "file_bytes", (double)file_bytes);
        cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->ln_eps);
        cJSON_AddNumberToObject(j, "bos_token_id", c->bos_id);
        cJSON_AddNumberToObject(j, "tokenizer_size", tok_vocab_size(cm.tok));
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("path                    %s\n", m->dir);
        printf("architecture            gpt2 (GPT2LMHeadModel, tied unembedding)\n");
        printf("layers                  %lld\n", (long long)L);
        printf("width (d_model)         %lld\n", (long long)C);
        printf("heads                   %d x d_head %lld\n", c->n_head, (long long)(C / c->n_head));
        printf("mlp width               %lld\n", (long long)(4 * C));
        printf("context (n_positions)   %lld\n", (long long)P);
        printf("vocabulary              %lld (tokenizer %d)\n", (long long)V, tok_vocab_size(cm.tok));
        printf("dtype on disk           %s (%.1f MB in %d file%s)\n", st_dtype_name((st_dtype)best), file_bytes / 1e6,
               m->n_files, m->n_files == 1 ? "" : "s");
        printf("parameters              %lld (%.1fM)\n", (long long)params, params / 1e6);
        printf("layer_norm_epsilon      %g\n", c->ln_eps);
    }
    cli_free_model(&cm);
    return 0;
}
