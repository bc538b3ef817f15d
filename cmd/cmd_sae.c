/* cmd_sae.c - the dictionary subcommands: encode, convert, info, latents,
 * sae-eval. Argument parsing and output formatting only; the work is in sae/. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "corpus_job.h"
#include "npy.h"
#include "sae.h"

int cli_info_model(const char *dir, int json);   /* cmd_analysis.c */

/* Options of the sae subcommands. */
typedef struct {
    const char *model, *sae, *text, *text_file, *out, *recon, *arg, *densities, *shard;
    long top, max_tokens, context, threads;
    float max_density;     /* latents: hide latents denser than this (0 = no filter) */
    int no_bos, bos, json, help;
} sae_opts;

static int parse_sae_opts(sae_opts *o, int argc, char **argv, int allow_arg) {
    memset(o, 0, sizeof *o);
    o->top = 10;
    o->max_tokens = 8192;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
#define VAL() do { if (!(v = cli_value(argc, argv, &i))) return SS_EINPUT; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { o->help = 1; return SS_OK; }
        else if (!strcmp(a, "--model")) { VAL(); o->model = v; }
        else if (!strcmp(a, "--sae")) { VAL(); o->sae = v; }
        else if (!strcmp(a, "--text")) { VAL(); o->text = v; }
        else if (!strcmp(a, "--text-file")) { VAL(); o->text_file = v; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { VAL(); o->out = v; }
        else if (!strcmp(a, "--recon")) { VAL(); o->recon = v; }
        else if (!strcmp(a, "--top")) { VAL(); if (cli_int(a, v, 1, 100000, &o->top)) return SS_EINPUT; }
        else if (!strcmp(a, "--max-tokens")) { VAL(); if (cli_int(a, v, 2, 100000000, &o->max_tokens)) return SS_EINPUT; }
        else if (!strcmp(a, "--context")) { VAL(); if (cli_int(a, v, 2, 1 << 20, &o->context)) return SS_EINPUT; }
        else if (!strcmp(a, "--max-density")) { VAL(); if (cli_float(a, v, 1e-12, 1, &o->max_density)) return SS_EINPUT; }
        else if (!strcmp(a, "--densities")) { VAL(); o->densities = v; }
        else if (!strcmp(a, "--no-bos")) o->no_bos = 1;
        else if (!strcmp(a, "--bos")) o->bos = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--shard") && !strcmp(cli_cmd_name, "sae-eval")) { VAL(); o->shard = v; }
        else if (!strcmp(a, "--threads") && !strcmp(cli_cmd_name, "sae-eval")) { VAL(); if (cli_int(a, v, 0, 256, &o->threads)) return SS_EINPUT; }
        else if (allow_arg && a[0] != '-' && !o->arg) o->arg = a;
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
#undef VAL
    }
    if (o->bos && o->no_bos) return cli_fail(SS_EINPUT, "--bos and --no-bos contradict each other");
    return SS_OK;
}

/* The prompt from --text or --text-file (exactly one). */
static int read_prompt(const sae_opts *o, char **text) {
    if (o->text && o->text_file) return cli_fail(SS_EINPUT, "give --text or --text-file, not both");
    if (o->text_file) return cli_read_text_file(o->text_file, text, NULL);
    if (!o->text) return cli_fail(SS_EINPUT, "--text STR is required");
    if (!ss_utf8_valid(o->text, strlen(o->text))) return cli_fail(SS_EINPUT, "--text is not valid UTF-8");
    *text = strdup(o->text);
    return SS_OK;
}

static int load_dict(const char *path, sae_dict **d) {
    char err[SS_ERRLEN];
    int rc = sae_load(d, path ? path : cli_default_sae(), err);
    return rc ? cli_fail(rc, "%s", err) : SS_OK;
}

/* BOS follows the SAE's prepend_bos unless --bos / --no-bos say otherwise;
   say so when the user's choice differs from how the SAE was trained. */
static int want_bos(const sae_opts *o, const sae_dict *d) {
    if (o->no_bos && d->prepend_bos)
        fprintf(stderr, "saesteer %s: warning: --no-bos, but %s was trained with prepend_bos=true\n", cli_cmd_name, d->path);
    if (o->bos && !d->prepend_bos)
        fprintf(stderr, "saesteer %s: warning: --bos, but %s was trained with prepend_bos=false\n", cli_cmd_name, d->path);
    if (o->no_bos) return 0;
    if (o->bos) return 1;
    return d->prepend_bos;
}

/* Model + SAE that fit together, and the prompt's ids. */
typedef struct {
    cli_model cm;
    sae_dict *d;
    gpt2_state *s;
    int *ids, n;
    char *text;
    int have_model;
} sae_run;

static void sae_run_free(sae_run *r) {
    gpt2_state_free(r->s);
    if (r->have_model) cli_free_model(&r->cm);
    sae_free(r->d);
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int sae_run_setup(sae_run *r, const sae_opts *o) {
    char err[SS_ERRLEN];
    gpt2_hook_point hp;
    int rc;
    memset(r, 0, sizeof *r);
    if ((rc = read_prompt(o, &r->text))) return rc;
    if ((rc = load_dict(o->sae, &r->d))) return rc;
    if ((rc = cli_load_model(&r->cm, o->model))) return rc;
    r->have_model = 1;
    if ((rc = sae_check_model(r->d, &r->cm.model->cfg, &hp, err))) return cli_fail(rc, "%s", err);
    if ((rc = cli_encode(&r->cm, r->text, !want_bos(o, r->d), &r->ids, &r->n))) return rc;
    if ((rc = gpt2_state_build(&r->s, r->cm.model, r->n, err))) return cli_fail(rc, "%s", err);
    return SS_OK;
}

/* -------------------------------------------------------------- encode --- */
int cmd_encode(int argc, char **argv) {
    sae_opts o;
    int rc = parse_sae_opts(&o, argc, argv, 0);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer encode [--model DIR] [--sae PATH] (--text STR | --text-file F) [--no-bos | --bos]\n"
               "                       -o ACTS.npy [--recon RECON.npy]\n"
               "SAE latent activations of a prompt: dense float32 (T, d_sae), and with --recon the SAE's\n"
               "reconstruction (T, d_in) in the space the SAE sees (centred when the SAE was trained with\n"
               "center_writing_weights). PATH is a SAELens folder or a saesteer .h5 dictionary. BOS follows the\n"
               "SAE's prepend_bos unless --no-bos/--bos; the model runs only up to the SAE's hook.\n");
        return 0;
    }
    if (!o.out) return cli_fail(SS_EINPUT, "-o ACTS.npy is required");
    if (o.recon && !strcmp(o.recon, o.out)) return cli_fail(SS_EINPUT, "-o and --recon name the same file");
    sae_run r;
    char err[SS_ERRLEN];
    float *x = NULL, *f = NULL, *rec = NULL;
    /* both outputs must be creatable before either is replaced: a bad
       --recon path must not leave a new -o behind a failed run */
    const char *outs[2] = {o.out, o.recon};
    for (int k = 0; k < 2; k++) {
        ss_outfile probe;
        if (outs[k] && (rc = ss_out_open(&probe, outs[k], err))) return cli_fail(rc, "%s", err);
        if (outs[k]) ss_out_abort(&probe);
    }
    if ((rc = sae_run_setup(&r, &o))) goto out;
    int T = r.n, C = r.d->d_in, S = r.d->d_sae;
    x = ss_malloc2((size_t)T * C, sizeof(float));       /* (T, d_in) */
    f = ss_malloc2((size_t)T * S, sizeof(float));       /* (T, d_sae) */
    rec = o.recon ? ss_malloc2((size_t)T * C, sizeof(float)) : NULL;  /* (T, d_in) */
    if (!x || !f || (o.recon && !rec)) { rc = cli_fail(SS_ERUNTIME, "out of memory for %d x %d activations", T, S); goto out; }
    if ((rc = sae_capture(r.d, r.s, r.ids, T, x, err)) || (rc = sae_encode(r.d, x, T, f, err)) ||
        (o.recon && (rc = sae_decode(r.d, f, x, T, rec, err)))) {
        rc = cli_fail(rc, "%s", err);
        goto out;
    }
    int64_t sf[2] = {T, S}, sx[2] = {T, C};
    ss_out_stage_begin();   /* -o and --recon: both replaced, or neither */
    if ((rc = npy_save(o.out, f, 2, sf, err)) || (o.recon && (rc = npy_save(o.recon, rec, 2, sx, err)))) {
        ss_out_stage_end(0, NULL);
        rc = cli_fail(rc, "%s", err);
        goto out;
    }
    if ((rc = ss_out_stage_end(1, err))) { rc = cli_fail(rc, "%s", err); goto out; }
out:
    free(x); free(f); free(rec);
    sae_run_free(&r);
    return rc;
}

/* ------------------------------------------------------------- convert --- */
int cmd_convert(int argc, char **argv) {
    sae_opts o;
    int rc = parse_sae_opts(&o, argc, argv, 1);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer convert SAELENS_DIR -o DICT.h5\n"
               "Import a SAELens SAE folder (cfg.json + sae_weights.safetensors [+ sparsity.safetensors]) into a\n"
               "saesteer HDF5 dictionary (format v1: root datasets W_enc, W_dec, b_enc, b_dec, ...; h5py reads\n"
               "f[\"W_dec\"][i]). An .h5 input is rewritten. The output appears only when complete.\n");
        return 0;
    }
    const char *in = o.arg ? o.arg : o.sae;
    if (!in) return cli_fail(SS_EINPUT, "SAELENS_DIR is required");
    if (!o.out) return cli_fail(SS_EINPUT, "-o DICT.h5 is required");
    if (cli_out_check("-o", o.out)) return SS_EINPUT;
    sae_dict *d;
    char err[SS_ERRLEN];
    if ((rc = load_dict(in, &d))) return rc;
    rc = sae_save_h5(d, o.out, err);
    if (rc) rc = cli_fail(rc, "%s", err);
    else printf("%s: %s SAE %d -> %d at %s\n", o.out, sae_arch_name(d->arch), d->d_in, d->d_sae, d->hook_name);
    sae_free(d);
    return rc;
}

/* ---------------------------------------------------------------- info --- */
typedef struct { double min, p50, mean, max; } summary;

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static summary summarize(float *v, int n) {   /* sorts v */
    summary s = {0, 0, 0, 0};
    if (n <= 0) return s;
    qsort(v, (size_t)n, sizeof(float), cmp_float);
    double sum = 0;
    int finite = 0;
    for (int i = 0; i < n; i++) if (isfinite(v[i])) { sum += v[i]; finite++; }
    s.min = v[0]; s.max = v[n - 1]; s.p50 = v[n / 2];
    s.mean = finite ? sum / finite : -INFINITY;
    return s;
}

static cJSON *summary_json(summary s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "median", s.p50);
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "max", s.max);
    return o;
}

int cmd_info(int argc, char **argv) {
    sae_opts o;
    int rc = parse_sae_opts(&o, argc, argv, 1);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer info [PATH] [--json]\n"
               "       saesteer info --model DIR [--json]\n"
               "Describe a dictionary (SAELens folder or .h5; default the shipped one): architecture, sizes, hook,\n"
               "centring, BOS, normalisation, norms of W_dec rows and W_enc columns, labels, firing densities.\n"
               "With --model: the model instead (architecture, layers, width, heads, context, vocabulary, dtype on\n"
               "disk, parameter count).\n");
        return 0;
    }
    if (o.model) {
        if (o.arg || o.sae) return cli_fail(SS_EINPUT, "give a dictionary PATH or --model DIR, not both");
        return cli_info_model(o.model, o.json);
    }
    sae_dict *d;
    if ((rc = load_dict(o.arg ? o.arg : o.sae, &d))) return rc;
    int C = d->d_in, S = d->d_sae;
    float *v = ss_malloc2((size_t)S, sizeof(float));
    if (!v) { sae_free(d); return cli_fail(SS_ERUNTIME, "out of memory"); }
    for (int i = 0; i < S; i++) v[i] = sae_latent_dec_norm(d, i);
    summary dec = summarize(v, S);
    for (int i = 0; i < S; i++) {
        double s = 0;
        for (int j = 0; j < C; j++) { double w = d->W_enc[(size_t)j * S + i]; s += w * w; }
        v[i] = (float)sqrt(s);
    }
    summary enc = summarize(v, S);
    int n_labels = 0;
    if (d->labels) for (int i = 0; i < S; i++) n_labels += d->labels[i] && d->labels[i][0];
    summary dens = {0, 0, 0, 0};
    int never = 0;
    if (d->log_sparsity) {
        for (int i = 0; i < S; i++) { v[i] = d->log_sparsity[i]; never += !isfinite(v[i]); }
        dens = summarize(v, S);
    }
    free(v);
    struct stat st;
    const char *kind = stat(d->path, &st) == 0 && S_ISDIR(st.st_mode) ? "saelens" : "hdf5";

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "path", d->path);
        cJSON_AddStringToObject(j, "format", kind);
        cJSON_AddStringToObject(j, "architecture", sae_arch_name(d->arch));
        cJSON_AddNumberToObject(j, "d_in", C);
        cJSON_AddNumberToObject(j, "d_sae", S);
        if (d->arch == SAE_TOPK) cJSON_AddNumberToObject(j, "k", d->k);
        cJSON_AddStringToObject(j, "hook_name", d->hook_name);
        cJSON_AddStringToObject(j, "model_name", d->model_name);
        cJSON_AddStringToObject(j, "normalize_activations", sae_norm_name(d->norm));
        cJSON_AddBoolToObject(j, "apply_b_dec_to_input", d->apply_b_dec_to_input);
        cJSON_AddBoolToObject(j, "center_writing_weights", d->center_writing_weights);
        cJSON_AddBoolToObject(j, "prepend_bos", d->prepend_bos);
        cJSON_AddNumberToObject(j, "context_size", d->context_size);
        cJSON_AddItemToObject(j, "W_dec_row_norms", summary_json(dec));
        cJSON_AddItemToObject(j, "W_enc_col_norms", summary_json(enc));
        cJSON_AddNumberToObject(j, "labels", n_labels);
        if (d->log_sparsity) {
            cJSON *ls = summary_json(dens);
            cJSON_AddNumberToObject(ls, "never_fired", never);
            cJSON_AddItemToObject(j, "log10_density", ls);
        } else {
            cJSON_AddNullToObject(j, "log10_density");
        }
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("path                    %s (%s)\n", d->path, kind);
        printf("architecture            %s", sae_arch_name(d->arch));
        if (d->arch == SAE_TOPK) printf(" (k = %d)", d->k);
        printf("\nshape                   d_in %d -> d_sae %d\n", C, S);
        printf("hook                    %s\n", d->hook_name);
        printf("model                   %s\n", d->model_name[0] ? d->model_name : "(unknown)");
        printf("normalize_activations   %s\n", sae_norm_name(d->norm));
        printf("apply_b_dec_to_input    %s\n", d->apply_b_dec_to_input ? "true" : "false");
        printf("center_writing_weights  %s%s\n", d->center_writing_weights ? "true" : "false",
               d->center_writing_weights ? " (the SAE sees the residual minus its per-token mean)" : "");
        printf("prepend_bos             %s\n", d->prepend_bos ? "true" : "false");
        printf("context_size            %d%s\n", d->context_size, d->context_size ? "" : " (unknown)");
        printf("W_dec row norms         min %.4g  median %.4g  mean %.4g  max %.4g\n", dec.min, dec.p50, dec.mean, dec.max);
        printf("W_enc column norms      min %.4g  median %.4g  mean %.4g  max %.4g\n", enc.min, enc.p50, enc.mean, enc.max);
        printf("labels                  %d of %d latents\n", n_labels, S);
        if (d->log_sparsity)
            printf("log10 firing density    min %.4g  median %.4g  mean %.4g  max %.4g  (%d never fired)\n", dens.min,
                   dens.p50, dens.mean, dens.max, never);
        else
            printf("log10 firing density    (not recorded)\n");
    }
    sae_free(d);
    return 0;
}

/* ------------------------------------------------------------- latents --- */
/* A token as text: decoded with U+FFFD for partial UTF-8, so JSON stays valid. */
static char *token_text(const tokenizer *tok, int id) {
    char *s = NULL, err[SS_ERRLEN];
    if (tok_decode(tok, &id, 1, &s, err) != SS_OK) return strdup("?");
    return s;
}

static void print_escaped(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* --max-density: which latents to hide, from the dictionary's log_sparsity or
   a scan's latents.json (--densities). */
static int load_hidden(const sae_opts *o, const sae_dict *d, unsigned char **hidden, int *n_hidden) {
    int S = d->d_sae;
    unsigned char *h = calloc((size_t)S, 1);
    if (!h) return cli_fail(SS_ERUNTIME, "out of memory");
    *n_hidden = 0;
    if (!o->densities) {
        if (!d->log_sparsity) {
            free(h);
            return cli_fail(SS_EINPUT, "--max-density: %s stores no firing densities (log_sparsity); give a scan's "
                                       "latents.json with --densities F", d->path);
        }
        for (int i = 0; i < S; i++)
            if (isfinite(d->log_sparsity[i]) && pow(10.0, d->log_sparsity[i]) > o->max_density) { h[i] = 1; (*n_hidden)++; }
        *hidden = h;
        return SS_OK;
    }
    char *text = NULL;
    size_t len;
    int rc = cli_read_text_file(o->densities, &text, &len);
    if (rc) { free(h); return rc; }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *ls = j ? cJSON_GetObjectItemCaseSensitive(j, "latents") : NULL;
    cJSON *ds = j ? cJSON_GetObjectItemCaseSensitive(j, "d_sae") : NULL;
    if (!cJSON_IsArray(ls) || !cJSON_IsNumber(ds)) {
        cJSON_Delete(j);
        free(h);
        return cli_fail(SS_EINPUT, "--densities %s: not a scan's latents.json (no \"latents\" array / \"d_sae\")", o->densities);
    }
    if ((int)ds->valuedouble != S) {
        int n = (int)ds->valuedouble;   /* read before the tree is freed */
        cJSON_Delete(j);
        free(h);
        return cli_fail(SS_EINPUT, "--densities %s: a scan of %d latents, but %s has %d", o->densities, n, d->path, S);
    }
    cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, ls) {
        cJSON *ix = cJSON_GetObjectItemCaseSensitive(it, "index"), *dn = cJSON_GetObjectItemCaseSensitive(it, "density");
        if (!cJSON_IsNumber(ix) || !cJSON_IsNumber(dn) || ix->valueint < 0 || ix->valueint >= S) {
            cJSON_Delete(j);
            free(h);
            return cli_fail(SS_EINPUT, "--densities %s: latents[%d] has no valid index/density", o->densities, k);
        }
        if (dn->valuedouble > o->max_density && !h[ix->valueint]) { h[ix->valueint] = 1; (*n_hidden)++; }
        k++;
    }
    cJSON_Delete(j);
    *hidden = h;
    return SS_OK;
}

int cmd_latents(int argc, char **argv) {
    sae_opts o;
    int rc = parse_sae_opts(&o, argc, argv, 0);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer latents [--model DIR] [--sae PATH] (--text STR | --text-file F) [--top K] [--json]\n"
               "                        [--no-bos | --bos] [--max-density D [--densities LATENTS.json]]\n"
               "The K (default 10) most active latents at every token of a prompt, with their values and\n"
               "labels when the dictionary has them; a table, or JSON with --json.\n"
               "--max-density D leaves out latents that fire on more than a fraction D of tokens (e.g. 0.1), by\n"
               "the dictionary's stored log_sparsity, or by the \"density\" of each latent in a scan's\n"
               "latents.json given with --densities (l0 still counts every active latent).\n");
        return 0;
    }
    if (o.densities && o.max_density <= 0) return cli_fail(SS_EINPUT, "--densities goes with --max-density D");
    sae_run r;
    char err[SS_ERRLEN];
    float *x = NULL, *f = NULL, *val = NULL;
    int *idx = NULL, n_hidden = 0;
    unsigned char *hidden = NULL;
    if ((rc = sae_run_setup(&r, &o))) goto out;
    int T = r.n, C = r.d->d_in, S = r.d->d_sae, K = (int)(o.top < S ? o.top : S);
    x = ss_malloc2((size_t)T * C, sizeof(float));   /* (T, d_in) */
    f = ss_malloc2((size_t)T * S, sizeof(float));   /* (T, d_sae) */
    idx = ss_malloc2((size_t)K, sizeof(int));
    val = ss_malloc2((size_t)K, sizeof(float));
    if (!x || !f || !idx || !val) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto out; }
    if (o.max_density > 0 && (rc = load_hidden(&o, r.d, &hidden, &n_hidden))) goto out;
    if ((rc = sae_capture(r.d, r.s, r.ids, T, x, err)) || (rc = sae_encode(r.d, x, T, f, err))) {
        rc = cli_fail(rc, "%s", err);
        goto out;
    }
    cJSON *j = NULL, *toks = NULL;
    if (o.json) {
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "sae", r.d->path);
        cJSON_AddStringToObject(j, "hook", r.d->hook_name);
        cJSON_AddNumberToObject(j, "top", K);
        if (hidden) {
            cJSON_AddNumberToObject(j, "max_density", o.max_density);
            cJSON_AddNumberToObject(j, "hidden_latents", n_hidden);
        }
        toks = cJSON_AddArrayToObject(j, "tokens");
    } else {
        printf("# %s at %s, top %d latents per token (latent=value%s)\n", r.d->path, r.d->hook_name, K,
               r.d->labels ? " \"label\"" : "");
        if (hidden) printf("# %d latents denser than %g hidden (densities from %s)\n", n_hidden, o.max_density,
                           o.densities ? o.densities : "the dictionary's log_sparsity");
    }
    for (int t = 0; t < T; t++) {
        int l0 = 0;
        for (int i = 0; i < S; i++) l0 += f[(size_t)t * S + i] != 0.0f;
        if (hidden)
            for (int i = 0; i < S; i++) if (hidden[i]) f[(size_t)t * S + i] = 0.0f;
        int n = sae_sparse_row(f + (size_t)t * S, S, idx, val, K);
        char *tt = token_text(r.cm.tok, r.ids[t]);
        if (o.json) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "pos", t);
            cJSON_AddNumberToObject(e, "id", r.ids[t]);
            cJSON_AddStringToObject(e, "token", tt);
            cJSON_AddNumberToObject(e, "l0", l0);
            cJSON *ls = cJSON_AddArrayToObject(e, "latents");
            for (int k = 0; k < n; k++) {
                cJSON *l = cJSON_CreateObject();
                cJSON_AddNumberToObject(l, "latent", idx[k]);
                cJSON_AddNumberToObject(l, "value", val[k]);
                if (r.d->labels && r.d->labels[idx[k]][0]) cJSON_AddStringToObject(l, "label", r.d->labels[idx[k]]);
                cJSON_AddItemToArray(ls, l);
            }
            cJSON_AddItemToArray(toks, e);
        } else {
            printf("%4d %6d  '", t, r.ids[t]);
            print_escaped(tt);
            printf("'");
            for (int k = 0; k < n; k++) {
                printf("  %d=%.4g", idx[k], val[k]);
                if (r.d->labels && r.d->labels[idx[k]][0]) { printf(" \""); print_escaped(r.d->labels[idx[k]]); printf("\""); }
            }
            if (n == 0) printf("  (no active latents)");
            printf("\n");
        }
        free(tt);
    }
    if (o.json) { cli_print_json(j); cJSON_Delete(j); }
out:
    free(x); free(f); free(idx); free(val); free(hidden);
    sae_run_free(&r);
    return rc;
}

/* ------------------------------------------------------------ sae-eval --- */
int sae_eval_report(const sae_eval *ev, const sae_dict *d, const gpt2_model *m, const char *text_file, int ctx, int bos,
                    int json, int nproc) {
    sae_eval_result res;
    sae_eval_get(ev, &res);
    if (res.n_predictions == 0) return cli_fail(SS_EINPUT, "%s: too little text (no tokens) to evaluate", text_file);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "sae", d->path);
        cJSON_AddStringToObject(j, "model", m->dir);
        cJSON_AddStringToObject(j, "hook", d->hook_name);
        cJSON_AddStringToObject(j, "text_file", text_file);
        cJSON_AddNumberToObject(j, "context", ctx);
        cJSON_AddBoolToObject(j, "bos", bos);
        cJSON_AddNumberToObject(j, "windows", (double)res.n_windows);
        cJSON_AddNumberToObject(j, "tokens", (double)res.n_tokens);
        cJSON_AddNumberToObject(j, "predictions", (double)res.n_predictions);
        cJSON_AddNumberToObject(j, "mse", res.mse);
        cJSON_AddNumberToObject(j, "explained_variance", res.explained_variance);
        cJSON_AddNumberToObject(j, "l0", res.l0);
        cJSON_AddNumberToObject(j, "dead_latents", (double)res.dead);
        cJSON_AddNumberToObject(j, "dead_fraction", res.dead_fraction);
        cJSON_AddNumberToObject(j, "ce_loss_clean", res.ce_clean);
        cJSON_AddNumberToObject(j, "ce_loss_recon", res.ce_recon);
        cJSON_AddNumberToObject(j, "ce_loss_zero", res.ce_zero);
        cJSON_AddNumberToObject(j, "ce_loss_recovered", res.ce_recovered);
        cJSON_AddNumberToObject(j, "ranks", nproc);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("sae                     %s at %s\n", d->path, d->hook_name);
        printf("text                    %s: %lld windows of <= %d tokens%s, %lld scored positions\n", text_file,
               (long long)res.n_windows, ctx, bos ? " (BOS each)" : "", (long long)res.n_tokens);
        printf("mse                     %.6g\n", res.mse);
        printf("explained variance      %.4f\n", res.explained_variance);
        printf("L0                      %.2f\n", res.l0);
        printf("dead latents            %lld of %d (%.2f%%)\n", (long long)res.dead, d->d_sae, 100.0 * res.dead_fraction);
        printf("CE loss clean           %.4f\n", res.ce_clean);
        printf("CE loss with recon      %.4f\n", res.ce_recon);
        printf("CE loss zero-ablated    %.4f\n", res.ce_zero);
        printf("CE loss recovered       %.4f\n", res.ce_recovered);
        if (nproc > 1) printf("processes               %d\n", nproc);
    }
    return SS_OK;
}

typedef struct { double t0, last; int quiet; int64_t windows; } eval_progress;
/* after each window: the first, then one line every ~2 s */
static int eval_progress_cb(void *ctx, const ss_progress *p) {
    eval_progress *e = ctx;
    double now = ss_now();
    if (!e->quiet && (e->windows++ == 0 || now - e->last >= 2.0)) {
        e->last = now;
        fprintf(stderr, "saesteer sae-eval: window %lld (%lld tokens, %.1fs)\n", (long long)e->windows, (long long)p->tokens,
                now - e->t0);
    }
    return 0;
}

static int pack_eval(void *ctx, ss_buf *b, char *err) { return sae_eval_pack(ctx, b, err); }
static int merge_eval(void *ctx, const void *data, size_t len, char *err) { return sae_eval_merge(ctx, data, len, err); }

int cmd_sae_eval(int argc, char **argv) {
    sae_opts o;
    int rc = parse_sae_opts(&o, argc, argv, 0);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer sae-eval [--model DIR] [--sae PATH] --text-file F [--max-tokens N] [--context N]\n"
               "                         [--no-bos | --bos] [--json] [--threads N] [--shard I/N -o PART]\n"
               "How well a dictionary reconstructs its hook over a text: the text's tokens (at most N, default\n"
               "8192) are cut into windows of the SAE's context_size (--context overrides; 128 if unknown), with\n"
               "BOS at the start of each window when the SAE was trained with prepend_bos. Reports MSE, explained\n"
               "variance 1 - sum|x - x_hat|^2 / sum|x - mean|^2, L0, dead latents (never fired), and next-token\n"
               "cross-entropy clean / with the reconstruction spliced in at the hook / with the hook zero-ablated,\n"
               "plus CE loss recovered = (CE_zero - CE_recon) / (CE_zero - CE_clean). BOS positions are left\n"
               "out of the reconstruction statistics. The text is streamed (any size). Progress goes to stderr.\n"
               "--threads N: windows at once (default: the CPUs this process may use), one BLAS thread each.\n"
               "Many processes: `mpirun -n R saesteer sae-eval ...` (MPI build) gives the same numbers as one\n"
               "process (\"ranks\": R in --json); --shard I/N -o PART writes a part file for `saesteer merge`.\n");
        return 0;
    }
    if (!o.text_file) return cli_fail(SS_EINPUT, "--text-file F is required");
    if (o.text) return cli_fail(SS_EINPUT, "sae-eval reads --text-file, not --text");
    int shard = 0, shards = 0;
    if (o.shard && (rc = cjob_shard_arg(o.shard, &shard, &shards))) return rc;
    if (shards && !o.out) return cli_fail(SS_EINPUT, "--shard needs -o PART (the part file to write)");
    if (!shards && o.out) return cli_fail(SS_EINPUT, "-o PART goes with --shard I/N");
    struct stat st;   /* could differ between machines: through an agreement point (MPI ranks) */
    if (stat(o.text_file, &st) != 0 || !S_ISREG(st.st_mode))
        rc = cli_fail(SS_EINPUT, "--text-file %s: not a readable file", o.text_file);
    if ((rc = cjob_agree(rc))) return rc;
    char err[SS_ERRLEN];
    sae_dict *d = NULL;
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    sae_eval *ev = NULL;
    gpt2_hook_point hp;
    cjob job;
    ss_buf pk = {0};
    int bos = 0, ctx = 0;
    rc = load_dict(o.sae, &d);
    if (!rc) rc = cli_load_model(&cm, o.model);
    if (!rc && (rc = sae_check_model(d, &cm.model->cfg, &hp, err))) rc = cli_fail(rc, "%s", err);
    if (!rc) {
        bos = want_bos(&o, d);
        ctx = o.context ? (int)o.context : d->context_size ? d->context_size : 128;
        if (ctx > cm.model->cfg.n_positions) ctx = cm.model->cfg.n_positions;
        if (ctx - bos < 1) rc = cli_fail(SS_EINPUT, "--context %d: too short", ctx);
    }
    if (!rc && (rc = sae_eval_new(&ev, d, cm.model, ctx, err))) rc = cli_fail(rc, "%s", err);
    if ((rc = cjob_agree(rc))) goto out;
    if ((rc = cjob_setup(&job, shard, shards, cm.tok, o.text_file))) goto out;
    eval_progress ep = {ss_now(), ss_now(), ranks_rank() > 0, 0};
    int stopped = 0;
    int nthreads = o.threads ? (int)o.threads : ss_cpu_count();
    if ((rc = sae_eval_file_part(ev, cm.tok, o.text_file, &job.part, o.max_tokens, bos, nthreads, eval_progress_cb, &ep,
                                 &stopped, err)))
        rc = cli_fail(rc, "%s", err);
    if ((rc = cjob_agree(rc))) goto out;
    char opts[128];
    snprintf(opts, sizeof opts, "context=%d bos=%d max_tokens=%lld", ctx, bos, (long long)o.max_tokens);
    if (shards) {
        char fp[65];
        cjob_fingerprint("sae-eval", cm.model, d, opts, fp);
        if ((rc = sae_eval_pack(ev, &pk, err))) { rc = cli_fail(rc, "%s", err); goto out; }
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "command", "sae-eval");
        cJSON_AddStringToObject(h, "fingerprint", fp);
        cJSON_AddStringToObject(h, "options", opts);
        cJSON_AddStringToObject(h, "model", cm.model->dir);
        cJSON_AddStringToObject(h, "sae", d->path);
        cJSON_AddStringToObject(h, "text_file", o.text_file);
        cJSON_AddNumberToObject(h, "seconds", ss_now() - ep.t0);
        rc = cjob_write_part(&job, o.out, h, &pk);
        cJSON_Delete(h);
        if (!rc) printf("shard %d of %d (bytes %lld..%lld) in %.1f s; wrote %s\n", shard, shards, (long long)job.byte_start,
                        (long long)job.byte_end, ss_now() - ep.t0, o.out);
        goto out;
    }
    int64_t sent = 0;
    if ((rc = cjob_reduce(&job, pack_eval, merge_eval, ev, &sent))) goto out;
    if (job.rank == 0) rc = sae_eval_report(ev, d, cm.model, o.text_file, ctx, bos, o.json, cjob_nproc(&job));
    rc = cjob_agree(rc);
out:
    ss_buf_free(&pk);
    sae_eval_free(ev);
    if (cm.model) cli_free_model(&cm);
    sae_free(d);
    return rc;
}
