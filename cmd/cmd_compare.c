/* cmd_compare.c - compare: SAE-latent boost vs a contrastive vector, over a
 * list of scales, same seed everywhere; effect and fluency cost per run. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "gguf.h"
#include "npy.h"
#include "sample.h"
#include "svg.h"
#include "vectors.h"

#ifndef SAESTEER_HOME
#define SAESTEER_HOME "."
#endif

/* sampling flags live in cmd_generate.c */

static const char *usage =
    "usage: saesteer compare [--model DIR] [--sae PATH] --latent I --vector V.npy|F.gguf [--hook NAME]\n"
    "                        --prompts FILE [--scales 0,2,4,8] [--max-new-tokens N] [--match-norm]\n"
    "                        [--target-words FILE | --sentiment [--afinn FILE]] [--no-bos]\n"
    "                        [--json] [--plot FILE.svg] [--record FILE.jsonl] [sampling flags]\n"
    "For every prompt (one per line) and scale, generates with no intervention, with the SAE latent boosted\n"
    "(+ scale * W_dec[I] at the SAE's hook) and with the vector (+ scale * V at --hook, default the SAE's\n"
    "hook; a GGUF control vector's direction.N goes to blocks.N.hook_resid_post), every position, the same\n"
    "sampler seed for all. --match-norm rescales the SAE direction to the vector's norm.\n"
    "Per run: norm (of the added vector), effect (--target-words: mean log-prob shift of the words at each\n"
    "generated position; --sentiment: mean AFINN-111 score of the generations), kl (mean KL(steered ||\n"
    "unsteered) of the next-token distributions over the generated positions), perplexity (of the\n"
    "generations under the unsteered model). --json prints {\"runs\": [...], \"record\": {...}}; --plot draws\n"
    "effect against KL per method, points labelled by scale.\n";

static const char *home(void) {
    const char *h = getenv("SAESTEER_HOME");
    return h && *h ? h : SAESTEER_HOME;
}

/* prompts: one per non-blank line */
static int load_prompts(const char *path, char ***out, int *n_out) {
    char *text;
    size_t len;
    int rc = cli_read_text_file(path, &text, &len);
    if (rc) return rc;
    char **p = calloc(len + 1, sizeof(char *));   /* at most one prompt per byte */
    int n = 0;
    for (char *s = text, *nl; s && *s; s = nl) {
        nl = strchr(s, '\n');
        if (nl) *nl++ = '\0';
        size_t L = strlen(s);
        if (L && s[L - 1] == '\r') s[--L] = '\0';
        const char *t = s;
        while (*t == ' ' || *t == '\t') t++;
        if (!*t) continue;
        p[n++] = strdup(s);
    }
    free(text);
    if (!n) { free(p); return cli_fail(SS_EINPUT, "%s: no prompts (one per line)", path); }
    *out = p;
    *n_out = n;
    return SS_OK;
}

static const char *method_color(const char *m) {
    return !strcmp(m, "sae") ? "#d95f02" : !strcmp(m, "vector") ? "#1b9e77" : "#555555";
}

static int plot(const char *path, const cmp_run *runs, int n, const char *effect_name) {
    char err[SS_ERRLEN];
    double W = 640, H = 440, ml = 70, mr = 20, mt = 40, mb = 55;
    double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    for (int i = 0; i < n; i++) {
        if (runs[i].kl > x1) x1 = runs[i].kl;
        if (runs[i].effect < y0) y0 = runs[i].effect;
        if (runs[i].effect > y1) y1 = runs[i].effect;
    }
    if (x1 <= 0) x1 = 1;
    if (y1 - y0 <= 0) { y0 -= 1; y1 += 1; }
    double pad = 0.05 * (y1 - y0);
    y0 -= pad; y1 += pad; x1 *= 1.05;
#define PX(x) (ml + ((x) - x0) / (x1 - x0) * (W - ml - mr))
#define PY(y) (H - mb - ((y) - y0) / (y1 - y0) * (H - mt - mb))
    svg s;
    int rc = svg_begin(&s, path, W, H, err);
    if (rc) return cli_fail(rc, "%s", err);
    svg_text(&s, W / 2, 24, 15, "middle", "black", 0, "SAE latent vs steering vector: effect against fluency cost");
    double t[16];
    char buf[64];
    int nt = svg_ticks(x0, x1, t, 7);
    for (int i = 0; i < nt; i++) {
        svg_line(&s, PX(t[i]), mt, PX(t[i]), H - mb, "#e6e6e6", 1, 0);
        snprintf(buf, sizeof buf, "%g", t[i]);
        svg_text(&s, PX(t[i]), H - mb + 16, 11, "middle", "#333", 0, buf);
    }
    nt = svg_ticks(y0, y1, t, 7);
    for (int i = 0; i < nt; i++) {
        svg_line(&s, ml, PY(t[i]), W - mr, PY(t[i]), "#e6e6e6", 1, 0);
        snprintf(buf, sizeof buf, "%g", t[i]);
        svg_text(&s, ml - 6, PY(t[i]) + 4, 11, "end", "#333", 0, buf);
    }
    svg_rect(&s, ml, mt, W - ml - mr, H - mt - mb, NULL, "#888");
    svg_text(&s, (ml + W - mr) / 2, H - 14, 13, "middle", "black", 0, "mean KL(steered || unsteered) per generated token (nats)");
    svg_text(&s, 18, (mt + H - mb) / 2, 13, "middle", "black", -90, effect_name);
    const char *methods[3] = {"none", "sae", "vector"};
    /* labels avoid every point marker, the legend and each other */
    svg_placer pl = {0};
    for (int i = 0; i < n; i++) {
        double px = PX(runs[i].kl), py = PY(runs[i].effect);
        svg_placer_block(&pl, px - 5, py - 5, px + 5, py + 5);
    }
    svg_placer_block(&pl, ml + 6, mt + 4, ml + 150, mt + 22 + 16 * 2);
    svg_box area = {ml + 1, mt + 1, W - mr - 1, H - mb - 1};
    for (int mi = 0; mi < 3; mi++) {
        double xy[64];
        int k = 0;
        for (int i = 0; i < n && k < 32; i++)
            if (!strcmp(runs[i].method, methods[mi])) { xy[2 * k] = PX(runs[i].kl); xy[2 * k + 1] = PY(runs[i].effect); k++; }
        svg_polyline(&s, xy, k, method_color(methods[mi]), 1.5);
        for (int i = 0; i < n; i++) {
            if (strcmp(runs[i].method, methods[mi])) continue;
            double px = PX(runs[i].kl), py = PY(runs[i].effect);
            svg_circle(&s, px, py, 4.5, method_color(methods[mi]), "white");
            if (mi && runs[i].scale == 0) continue;   /* scale 0 sits on the unsteered point */
            snprintf(buf, sizeof buf, "%s%g", mi ? "" : "none ", runs[i].scale);
            svg_group_begin(&s, "point-label");
            if (!svg_text_near(&s, &pl, px, py, 6, 10, method_color(methods[mi]), buf, &area)) {
                char tip[96];   /* no free place: the scale goes in the marker's tooltip instead */
                snprintf(tip, sizeof tip, "scale %s", buf);
                svg_circle(&s, px, py, 4.5, method_color(methods[mi]), "white");
                svg_title(&s, tip);
            }
            svg_group_end(&s);
        }
        svg_circle(&s, ml + 14, mt + 14 + 16 * mi, 4.5, method_color(methods[mi]), NULL);
        svg_text(&s, ml + 24, mt + 18 + 16 * mi, 12, "start", "black", 0,
                 mi == 0 ? "no intervention" : mi == 1 ? "SAE latent boost" : "steering vector");
    }
#undef PX
#undef PY
    svg_placer_free(&pl);
    if ((rc = svg_end(&s, err))) return cli_fail(rc, "%s", err);
    return SS_OK;
}

int cmd_compare(int argc, char **argv) {
    const char *model = NULL, *sae_path = NULL, *vec_path = NULL, *hook = NULL, *prompts_path = NULL;
    const char *scales_s = "0,2,4,8", *targets_path = NULL, *afinn_path = NULL, *plot_path = NULL, *record = NULL;
    long latent = -1, max_new = 24;
    int match_norm = 0, sentiment = 0, json = 0, no_bos = 0, rc;
    sampler_params sp;
    sampler_params_default(&sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { printf("%s%s", usage, cli_sampling_help); return 0; }
        if (!strcmp(a, "--model")) dst = &model;
        else if (!strcmp(a, "--sae")) dst = &sae_path;
        else if (!strcmp(a, "--vector")) dst = &vec_path;
        else if (!strcmp(a, "--hook")) dst = &hook;
        else if (!strcmp(a, "--prompts")) dst = &prompts_path;
        else if (!strcmp(a, "--scales")) dst = &scales_s;
        else if (!strcmp(a, "--target-words")) dst = &targets_path;
        else if (!strcmp(a, "--afinn")) dst = &afinn_path;
        else if (!strcmp(a, "--plot")) dst = &plot_path;
        else if (!strcmp(a, "--record")) dst = &record;
        else if (!strcmp(a, "--match-norm")) { match_norm = 1; continue; }
        else if (!strcmp(a, "--sentiment")) { sentiment = 1; continue; }
        else if (!strcmp(a, "--json")) { json = 1; continue; }
        else if (!strcmp(a, "--no-bos")) { no_bos = 1; continue; }
        else if (!strcmp(a, "--latent") || !strcmp(a, "--max-new-tokens")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_int(a, v, !strcmp(a, "--latent") ? 0 : 1, 1 << 30, !strcmp(a, "--latent") ? &latent : &max_new))
                return SS_EINPUT;
            continue;
        } else if ((r = cli_sampling_flag(&sp, argc, argv, &i)) != 0) {
            if (r < 0) return SS_EINPUT;
            continue;
        } else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
        if (!(*dst = cli_value(argc, argv, &i))) return SS_EINPUT;
    }
    if (latent < 0) return cli_fail(SS_EINPUT, "--latent I is required");
    if (!vec_path) return cli_fail(SS_EINPUT, "--vector V.npy is required");
    if (!prompts_path) return cli_fail(SS_EINPUT, "--prompts FILE is required");
    if (targets_path && sentiment) return cli_fail(SS_EINPUT, "pick one effect measure: --target-words FILE or --sentiment");
    char err[SS_ERRLEN];
    if (plot_path) {   /* an unwritable --plot fails now, not after all the generations */
        ss_outfile probe;
        if ((rc = ss_out_open(&probe, plot_path, err))) return cli_fail(rc, "--plot: %s", err);
        ss_out_abort(&probe);
    }
    if ((rc = sampler_params_check(&sp, err))) return cli_fail(rc, "%s", err);
    float *scales = NULL;
    int n_scales = 0;
    if (cli_float_list("--scales", scales_s, &scales, &n_scales)) return SS_EINPUT;
    char **prompts = NULL;
    int n_prompts = 0;
    if ((rc = load_prompts(prompts_path, &prompts, &n_prompts))) { free(scales); return rc; }

    cli_model cm = {0};
    sae_dict *sae = NULL;
    met_afinn *afinn = NULL;
    int *targets = NULL, n_targets = 0;
    float *vec = NULL;
    char vhook[300] = "";
    cmp_run *runs = NULL;
    int n_runs = 0;
    if ((rc = cli_load_model(&cm, model))) goto done;
    if (!sae_path) sae_path = cli_default_sae();
    if ((rc = sae_load(&sae, sae_path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    gpt2_hook_point sae_hp;
    if ((rc = sae_check_model(sae, &cm.model->cfg, &sae_hp, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    if (latent >= sae->d_sae) { rc = cli_fail(SS_EINPUT, "--latent %ld out of range: %s has %d latents", latent, sae_path, sae->d_sae); goto done; }
    /* the vector: .npy (C,) or a one-direction GGUF */
    int C = cm.model->cfg.n_embd;
    if (gguf_is_gguf(vec_path)) {
        gguf_cvec cv;
        if ((rc = gguf_cvec_read(&cv, vec_path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        if (cv.n_dirs != 1 || cv.n_embd != C) {
            rc = cli_fail(SS_EINPUT, "%s: compare takes one direction of width %d (this file: %d directions of width %d)",
                          vec_path, C, cv.n_dirs, cv.n_embd);
            gguf_cvec_free(&cv);
            goto done;
        }
        vec = malloc((size_t)C * sizeof(float));
        memcpy(vec, cv.data, (size_t)C * sizeof(float));
        if (!hook) gguf_cvec_hook(cv.layer[0], vhook, sizeof vhook);
        gguf_cvec_free(&cv);
    } else {
        npy_array a;
        if ((rc = npy_load(&a, vec_path, err))) { rc = cli_fail(rc, "--vector: %s", err); goto done; }
        if (a.ndim != 1 || a.numel != C) {
            rc = cli_fail(SS_EINPUT, "%s: want a vector of shape (%d,), got %d dims with %lld values", vec_path, C, a.ndim,
                          (long long)a.numel);
            npy_free(&a);
            goto done;
        }
        vec = a.data;
        a.data = NULL;
    }
    for (int j = 0; j < C; j++)
        if (!isfinite(vec[j])) { rc = cli_fail(SS_EINPUT, "%s: non-finite value at index %d", vec_path, j); goto done; }
    if (hook) snprintf(vhook, sizeof vhook, "%s", hook);
    if (!vhook[0]) snprintf(vhook, sizeof vhook, "%s", sae->hook_name);
    gpt2_hook_point vhp;
    if ((rc = gpt2_hook_parse(&cm.model->cfg, vhook, &vhp, err))) { rc = cli_fail(rc, "--hook: %s", err); goto done; }
    if (gpt2_hook_width(&cm.model->cfg, &vhp) != C) { rc = cli_fail(SS_EINPUT, "--hook %s is not a d_model-wide hook", vhook); goto done; }
    if (targets_path && (rc = cmp_load_targets(cm.tok, targets_path, &targets, &n_targets, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    char afinn_default[4200];
    if (sentiment) {
        if (!afinn_path) {
            snprintf(afinn_default, sizeof afinn_default, "%s/weights/datasets/afinn-111.tsv", home());
            afinn_path = afinn_default;
        }
        if ((rc = met_afinn_load(&afinn, afinn_path, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    }

    cmp_config c = {0};
    c.m = cm.model;
    c.tok = cm.tok;
    c.sae = sae;
    c.latent = (int)latent;
    c.vec = vec;
    c.vec_hook = vhp;
    c.prompts = prompts;
    c.n_prompts = n_prompts;
    c.scales = scales;
    c.n_scales = n_scales;
    c.max_new = (int)max_new;
    c.sp = sp;
    c.bos = !no_bos;
    c.match_norm = match_norm;
    c.effect = targets ? CMP_EFFECT_TARGET : sentiment ? CMP_EFFECT_SENTIMENT : CMP_EFFECT_NONE;
    c.targets = targets;
    c.n_targets = n_targets;
    c.afinn = afinn;
    const char *effect_name = targets ? "target-word log-prob shift (nats)" : sentiment ? "AFINN-111 sentiment score" : "effect (none chosen: 0)";
    /* the experiment, written down before it runs */
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "command", "compare");
    cJSON_AddStringToObject(rec, "model", cm.model->dir);
    cJSON_AddStringToObject(rec, "sae", sae_path);
    char hex[65];
    if (ss_sha256_file(vec_path, hex, err) == SS_OK) cJSON_AddStringToObject(rec, "vector_sha256", hex);
    cJSON_AddNumberToObject(rec, "latent", (double)latent);
    cJSON_AddStringToObject(rec, "sae_hook", sae->hook_name);
    cJSON_AddStringToObject(rec, "vector", vec_path);
    cJSON_AddStringToObject(rec, "vector_hook", vhook);
    cJSON_AddNumberToObject(rec, "vector_norm", vec_norm(vec, C));
    cJSON_AddNumberToObject(rec, "latent_dec_norm", sae_latent_dec_norm(sae, (int)latent));
    cJSON_AddStringToObject(rec, "positions", "all");
    cJSON_AddBoolToObject(rec, "match_norm", match_norm);
    cJSON_AddBoolToObject(rec, "bos", !no_bos);
    cJSON *sc = cJSON_AddArrayToObject(rec, "scales");
    for (int i = 0; i < n_scales; i++) cJSON_AddItemToArray(sc, cJSON_CreateNumber(scales[i]));
    cJSON_AddStringToObject(rec, "effect", targets ? "target-words" : sentiment ? "sentiment" : "none");
    if (targets_path) cJSON_AddStringToObject(rec, "target_words", targets_path);
    if (sentiment) cJSON_AddStringToObject(rec, "afinn", afinn_path);
    cJSON *smpj = cJSON_AddObjectToObject(rec, "sampling");
    cJSON_AddNumberToObject(smpj, "temperature", sp.temperature);
    cJSON_AddNumberToObject(smpj, "top_k", sp.top_k);
    cJSON_AddNumberToObject(smpj, "top_p", sp.top_p);
    cJSON_AddNumberToObject(smpj, "seed", (double)sp.seed);
    cJSON_AddNumberToObject(smpj, "max_new_tokens", (double)max_new);
    cJSON *pj = cJSON_AddArrayToObject(rec, "prompts");
    for (int i = 0; i < n_prompts; i++) cJSON_AddItemToArray(pj, cJSON_CreateString(prompts[i]));
    if (!json) {
        fprintf(stderr, "compare: latent %ld of %s at %s vs %s at %s; scales %s; %d prompt%s, %ld new tokens, seed %llu%s\n",
                latent, sae_path, sae->hook_name, vec_path, vhook, scales_s, n_prompts, n_prompts == 1 ? "" : "s", max_new,
                (unsigned long long)sp.seed, match_norm ? ", SAE direction matched to the vector's norm" : "");
    }
    rc = cmp_run_all(&c, &runs, &n_runs, err);
    if (rc) { rc = cli_fail(rc, "%s", err); cJSON_Delete(rec); goto done; }
    cJSON *j = cJSON_CreateObject();
    cJSON *rj = cJSON_AddArrayToObject(j, "runs");
    for (int i = 0; i < n_runs; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", runs[i].method);
        cJSON_AddNumberToObject(o, "scale", runs[i].scale);
        cJSON_AddNumberToObject(o, "norm", runs[i].norm);
        cJSON_AddNumberToObject(o, "effect", runs[i].effect);
        cJSON_AddNumberToObject(o, "kl", runs[i].kl);
        cJSON_AddNumberToObject(o, "perplexity", runs[i].perplexity);
        cJSON_AddNumberToObject(o, "tokens", runs[i].n_tokens);
        cJSON *g = cJSON_AddArrayToObject(o, "generations");
        for (int k = 0; k < runs[i].n_gens; k++) cJSON_AddItemToArray(g, cJSON_CreateString(runs[i].gens[k]));
        cJSON_AddItemToArray(rj, o);
    }
    cJSON_AddItemToObject(j, "record", rec);
    if (plot_path && (rc = plot(plot_path, runs, n_runs, effect_name))) { cJSON_Delete(j); goto done; }
    if (record && (rc = cli_record_append(record, j))) { cJSON_Delete(j); goto done; }
    if (json) cli_print_json(j);
    else {
        printf("%-7s %7s %9s %10s %9s %10s  first generation\n", "method", "scale", "norm", "effect", "kl", "perplexity");
        for (int i = 0; i < n_runs; i++) {
            char snip[61];
            const char *g = runs[i].n_gens ? runs[i].gens[0] : "";
            size_t k = 0;
            for (; g[k] && k < 60; k++) snip[k] = g[k] == '\n' ? ' ' : g[k];
            while (k > 0 && ((unsigned char)snip[k - 1] & 0xC0) == 0x80) k--;        /* no broken UTF-8 at the cut */
            if (k > 0 && ((unsigned char)snip[k - 1] & 0xC0) == 0xC0) k--;
            snip[k] = '\0';
            printf("%-7s %7g %9.3f %10.4f %9.4f %10.2f  %s\n", runs[i].method, runs[i].scale, runs[i].norm, runs[i].effect,
                   runs[i].kl, runs[i].perplexity, snip);
        }
        if (plot_path) printf("plot: %s\n", plot_path);
    }
    cJSON_Delete(j);
done:
    cmp_runs_free(runs, n_runs);
    for (int i = 0; i < n_prompts; i++) free(prompts[i]);
    free(prompts);
    free(scales);
    free(vec);
    free(targets);
    met_afinn_free(afinn);
    sae_free(sae);
    cli_free_model(&cm);
    return rc;
}
