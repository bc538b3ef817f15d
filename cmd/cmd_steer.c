/* cmd_steer.c - steer: a feature-boosting experiment. The same prompt is
 * continued once per scale (scale 0 = the unsteered default), each with the
 * same seed, so the intervention is the only difference between the runs.
 * The experiment header (what is steered, where, how much) is printed before
 * anything runs, as the course's pair rule asks; with --record each finished
 * run is appended as one self-contained JSON line, so an interrupted sweep
 * keeps the runs it finished. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"
#include "npy.h"
#include "sae.h"


static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { (void)sig; g_stop = 1; }
static int stop_cb(void *ctx, int id) { (void)ctx; (void)id; return g_stop; }

static const char *USAGE =
    "usage: saesteer steer [--model DIR] [--sae PATH] --latent I[,J..] --text STR\n"
    "                      [--scales 0,4,8 | --clamps 0,5,10] [--positions all|last|i,j,k]\n"
    "                      [--samples K] [--max-new-tokens N] [sampling flags] [--no-bos]\n"
    "                      [--json] [--record FILE.jsonl]\n"
    "   or: saesteer steer --steer-vector V.npy --hook NAME --text STR --scales ...\n"
    "Feature-boosting experiment: the prompt is continued once per scale with the same seed(s), so\n"
    "the intervention is the only difference. --scales boosts (adds s * W_dec[i] at the SAE's hook);\n"
    "--clamps sets the latent to each value keeping the SAE's error. Scale 0 in --scales is the\n"
    "unsteered default. --samples K runs seeds S..S+K-1 at every scale.\n"
    "Defaults: --scales 0,4,8, --max-new-tokens 40, --temperature 0.7, --top-p 0.9, --seed 0.\n";

typedef struct {
    const char *model, *sae_path, *text, *vec_path, *hook, *positions, *record, *scales_s, *clamps_s;
    int *latents, n_latents, no_bos, json, samples;
    long max_new;
    sampler_params sp;
} steer_opts;

static int parse(steer_opts *o, int argc, char **argv, int *help) {
    const char *v;
    long n;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
#define VAL(dst) do { if (!(v = cli_value(argc, argv, &i))) return SS_EINPUT; dst = v; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { *help = 1; return SS_OK; }
        else if (!strcmp(a, "--model")) VAL(o->model);
        else if (!strcmp(a, "--sae")) VAL(o->sae_path);
        else if (!strcmp(a, "--text")) VAL(o->text);
        else if (!strcmp(a, "--steer-vector")) VAL(o->vec_path);
        else if (!strcmp(a, "--hook")) VAL(o->hook);
        else if (!strcmp(a, "--record")) VAL(o->record);
        else if (!strcmp(a, "--scales")) VAL(o->scales_s);
        else if (!strcmp(a, "--clamps")) VAL(o->clamps_s);
        else if (!strcmp(a, "--positions")) {
            VAL(o->positions);
            steer_positions p;
            char err[SS_ERRLEN];
            if (steer_positions_parse(v, &p, err)) return cli_fail(SS_EINPUT, "%s", err);
        } else if (!strcmp(a, "--latent")) {
            VAL(v);
            if (o->latents) return cli_fail(SS_EINPUT, "give --latent once (a comma list boosts several together)");
            if (cli_int_list(a, v, 0, 1L << 30, &o->latents, &o->n_latents)) return SS_EINPUT;
        } else if (!strcmp(a, "--samples")) {
            VAL(v);
            if (cli_int(a, v, 1, 1000, &n)) return SS_EINPUT;
            o->samples = (int)n;
        } else if (!strcmp(a, "--max-new-tokens")) {
            VAL(v);
            if (cli_int(a, v, 1, 1 << 20, &o->max_new)) return SS_EINPUT;
        } else if (!strcmp(a, "--no-bos")) o->no_bos = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if ((r = cli_sampling_flag(&o->sp, argc, argv, &i)) != 0) { if (r < 0) return SS_EINPUT; }
        else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
#undef VAL
    }
    return SS_OK;
}

/* The experiment header shared by the printed banner, the JSON and --record. */
static cJSON *header_json(const steer_opts *o, const cli_model *cm, const sae_dict *sae, const char *sae_path,
                          const char *hook, const float *vals, int nv, int clamp) {
    cJSON *h = cJSON_CreateObject();
    char hex[65], err[SS_ERRLEN], p[4200];
    cJSON_AddStringToObject(h, "command", "steer");
    cJSON_AddStringToObject(h, "model", cm->model->dir);
    snprintf(p, sizeof p, "%s/model.safetensors", cm->model->dir);
    if (ss_sha256_file(p, hex, err) == SS_OK) cJSON_AddStringToObject(h, "model_sha256", hex);
    if (sae) {
        cJSON_AddStringToObject(h, "method", clamp ? "sae-clamp" : "sae-boost");
        cJSON_AddStringToObject(h, "sae", sae_path);
        const char *wp = sae_path;
        if (!strstr(sae_path, ".h5")) { snprintf(p, sizeof p, "%s/sae_weights.safetensors", sae_path); wp = p; }
        if (ss_sha256_file(wp, hex, err) == SS_OK) cJSON_AddStringToObject(h, "sae_sha256", hex);
        cJSON *l = cJSON_AddArrayToObject(h, "latents");
        cJSON *lab = cJSON_AddArrayToObject(h, "labels");
        for (int i = 0; i < o->n_latents; i++) {
            cJSON_AddItemToArray(l, cJSON_CreateNumber(o->latents[i]));
            cJSON_AddItemToArray(lab, cJSON_CreateString(sae->labels ? sae->labels[o->latents[i]] : ""));
        }
    } else {
        cJSON_AddStringToObject(h, "method", "vector");
        cJSON_AddStringToObject(h, "steer_vector", o->vec_path);
        if (ss_sha256_file(o->vec_path, hex, err) == SS_OK) cJSON_AddStringToObject(h, "steer_vector_sha256", hex);
    }
    cJSON_AddStringToObject(h, "hook", hook);
    cJSON_AddStringToObject(h, "positions", o->positions ? o->positions : "all");
    cJSON *s = cJSON_AddArrayToObject(h, clamp ? "clamps" : "scales");
    for (int i = 0; i < nv; i++) cJSON_AddItemToArray(s, cJSON_CreateNumber(vals[i]));
    cJSON *sm = cJSON_AddObjectToObject(h, "sampling");
    cJSON_AddNumberToObject(sm, "temperature", o->sp.temperature);
    cJSON_AddNumberToObject(sm, "top_k", o->sp.top_k);
    cJSON_AddNumberToObject(sm, "top_p", o->sp.top_p);
    cJSON_AddNumberToObject(sm, "repetition_penalty", o->sp.repetition_penalty);
    cJSON_AddNumberToObject(sm, "seed", (double)o->sp.seed);
    cJSON_AddNumberToObject(sm, "samples", o->samples);
    cJSON_AddNumberToObject(sm, "max_new_tokens", (double)o->max_new);
    cJSON_AddStringToObject(h, "prompt", o->text);
    cJSON_AddBoolToObject(h, "bos", !o->no_bos);
    return h;
}

int cmd_steer(int argc, char **argv) {
    steer_opts o;
    memset(&o, 0, sizeof o);
    o.samples = 1;
    o.max_new = 40;
    sampler_params_default(&o.sp);
    o.sp.temperature = 0.7f;
    o.sp.top_p = 0.9f;
    int help = 0, rc = parse(&o, argc, argv, &help);
    if (rc || help) {
        if (help) printf("%s%s", USAGE, cli_sampling_help);
        free(o.latents);
        return rc;
    }
    float *vals = NULL;
    int nv = 0, clamp = o.clamps_s != NULL;
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    sae_dict *sae = NULL;
    npy_array vec;
    memset(&vec, 0, sizeof vec);
    gpt2_state *s = NULL;
    sampler *smp = NULL;
    int *ids = NULL, n = 0, *out = NULL;
    char err[SS_ERRLEN], hook[256] = "";
    cJSON *hdr = NULL, *runs = cJSON_CreateArray();

    if (!o.text) { rc = cli_fail(SS_EINPUT, "--text STR is required"); goto done; }
    if (!ss_utf8_valid(o.text, strlen(o.text))) { rc = cli_fail(SS_EINPUT, "--text is not valid UTF-8"); goto done; }
    if (o.scales_s && o.clamps_s) { rc = cli_fail(SS_EINPUT, "give --scales or --clamps, not both"); goto done; }
    if (o.vec_path && (o.latents || o.sae_path || clamp)) { rc = cli_fail(SS_EINPUT, "--steer-vector takes --hook and --scales, not --sae/--latent/--clamps"); goto done; }
    if (!o.vec_path && !o.latents) { rc = cli_fail(SS_EINPUT, "--latent I (with --sae PATH) or --steer-vector V.npy --hook NAME is required"); goto done; }
    if (o.vec_path && !o.hook) { rc = cli_fail(SS_EINPUT, "--steer-vector needs --hook NAME"); goto done; }
    if ((rc = cli_float_list(clamp ? "--clamps" : "--scales", clamp ? o.clamps_s : (o.scales_s ? o.scales_s : "0,4,8"), &vals, &nv)))
        goto done;
    if ((rc = cli_load_model(&cm, o.model))) goto done;
    const gpt2_config *cfg = &cm.model->cfg;
    gpt2_hook_point hp;
    const char *sae_path = o.sae_path ? o.sae_path : cli_default_sae();
    if (o.latents) {
        if ((rc = sae_load(&sae, sae_path, err)) || (rc = sae_check_model(sae, cfg, &hp, err))) { rc = cli_fail(rc, "%s", err); goto done; }
        for (int i = 0; i < o.n_latents; i++)
            if (o.latents[i] >= sae->d_sae) { rc = cli_fail(SS_EINPUT, "--latent %d out of range: %s has %d latents", o.latents[i], sae_path, sae->d_sae); goto done; }
        snprintf(hook, sizeof hook, "%s", sae->hook_name);
        if (o.no_bos && sae->prepend_bos)
            fprintf(stderr, "saesteer steer: warning: --no-bos, but %s was trained with BOS prepended\n", sae_path);
    } else {
        if ((rc = gpt2_hook_parse(cfg, o.hook, &hp, err))) { rc = cli_fail(rc, "--hook: %s", err); goto done; }
        if ((rc = cli_load_vector(&vec, o.vec_path, cfg, &hp, o.hook))) goto done;
        snprintf(hook, sizeof hook, "%s", o.hook);
    }
    if ((rc = cli_encode(&cm, o.text, o.no_bos, &ids, &n))) goto done;
    if (n + o.max_new > cfg->n_positions) { rc = cli_fail(SS_EINPUT, "prompt (%d tokens) + --max-new-tokens (%ld) exceeds n_positions (%d)", n, o.max_new, cfg->n_positions); goto done; }
    if ((rc = gpt2_state_build(&s, cm.model, n + (int)o.max_new, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    out = calloc((size_t)o.max_new + 1, sizeof(int));
    if (!out) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto done; }

    /* the header, before anything runs */
    hdr = header_json(&o, &cm, sae, sae_path, hook, vals, nv, clamp);
    if (!o.json) {
        printf("== steer: %s", sae ? (clamp ? "clamp" : "boost") : "vector");
        if (sae) {
            printf(" latent");
            for (int i = 0; i < o.n_latents; i++) {
                const char *lab = sae->labels ? sae->labels[o.latents[i]] : "";
                printf("%s %d%s%s%s", i ? "," : "", o.latents[i], *lab ? " (" : "", lab, *lab ? ")" : "");
            }
            printf(" of %s", sae_path);
        } else printf(" %s", o.vec_path);
        printf("\n   hook %s | positions %s | %s", hook, o.positions ? o.positions : "all", clamp ? "clamps" : "scales");
        for (int i = 0; i < nv; i++) printf("%s%g", i ? "," : " ", vals[i]);
        printf("\n   model %s | temperature %g top-k %d top-p %g | seed %llu x %d sample(s) | %ld new tokens\n",
               cm.model->dir, o.sp.temperature, o.sp.top_k, o.sp.top_p, (unsigned long long)o.sp.seed, o.samples, o.max_new);
        printf("   prompt: %s\n", o.text);
        fflush(stdout);
    }

    cli_catch_stop_signals(on_signal);
    steer_positions pos;
    steer_positions_parse(o.positions, &pos, err);
    uint64_t seed0 = o.sp.seed;
    for (int vi = 0; vi < nv && !g_stop; vi++) {
        for (int k = 0; k < o.samples && !g_stop; k++) {
            sae_intervention *iv = NULL;
            steer_add add = {vec.data, vec.ndim == 2 ? (int)vec.shape[0] : 1, vec.ndim ? (int)vec.shape[vec.ndim - 1] : 0, vals[vi], pos};
            gpt2_clear_hooks(s);
            int steered = clamp || vals[vi] != 0.0f;
            if (steered && sae) {
                sae_edit *ed = calloc((size_t)o.n_latents, sizeof(sae_edit));
                if (!ed) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto done; }
                for (int i = 0; i < o.n_latents; i++) {
                    ed[i].latent = o.latents[i];
                    ed[i].kind = clamp ? SAE_EDIT_CLAMP : SAE_EDIT_BOOST;
                    ed[i].value = vals[vi];
                }
                rc = sae_intervention_new(&iv, sae, ed, o.n_latents, &pos, SAE_REPLACE_NONE, err);
                free(ed);
                if (!rc) rc = sae_intervention_attach(iv, s, err);
            } else if (steered) {
                rc = gpt2_add_hook(s, &hp, steer_add_hook, &add, 0, err);
            }
            o.sp.seed = seed0 + (uint64_t)k;
            if (!rc) rc = sampler_build(&smp, cfg->vocab_size, &o.sp, err);
            int n_out = 0;
            gen_timing tm;
            if (!rc) rc = generate(s, smp, ids, n, (int)o.max_new, 1, out, &n_out, stop_cb, NULL, &tm, err);
            sampler_free(smp);
            smp = NULL;
            sae_intervention_free(iv);
            if (rc) { rc = cli_fail(rc, "%s", err); goto done; }
            if (g_stop) break;   /* an interrupted run is not reported */
            char *txt = NULL;
            if ((rc = tok_decode(cm.tok, out, n_out, &txt, err))) { rc = cli_fail(rc, "%s", err); goto done; }
            cJSON *run = cJSON_CreateObject();
            cJSON_AddNumberToObject(run, clamp ? "clamp" : "scale", vals[vi]);
            cJSON_AddNumberToObject(run, "seed", (double)o.sp.seed);
            if (sae && !clamp) {
                double norm = 0;
                for (int i = 0; i < o.n_latents; i++) {
                    double v = vals[vi] * sae_latent_dec_norm(sae, o.latents[i]);
                    norm += v * v;
                }
                cJSON_AddNumberToObject(run, "added_norm", sqrt(norm));
            }
            cJSON *tk = cJSON_AddArrayToObject(run, "tokens");
            for (int i = 0; i < n_out; i++) cJSON_AddItemToArray(tk, cJSON_CreateNumber(out[i]));
            cJSON_AddStringToObject(run, "text", txt);
            if (!o.json) {
                if (k == 0) printf("\n-- %s %g%s --\n", clamp ? "clamp" : "scale", vals[vi], (!clamp && vals[vi] == 0.0f) ? " (default, unsteered)" : "");
                printf("%s%s%s\n", o.samples > 1 ? "  * " : "", o.text, txt);
                fflush(stdout);
            }
            if (o.record) {
                cJSON *line = cJSON_Duplicate(hdr, 1);
                cJSON_AddItemToObject(line, "run", cJSON_Duplicate(run, 1));
                if ((rc = cli_record_append(o.record, line))) { cJSON_Delete(line); cJSON_Delete(run); free(txt); goto done; }
                cJSON_Delete(line);
            }
            cJSON_AddItemToArray(runs, run);
            free(txt);
        }
    }
    if (g_stop) { rc = cli_fail(SS_ERUNTIME, "interrupted; %d finished run(s) kept", cJSON_GetArraySize(runs)); goto done; }
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "record", cJSON_Duplicate(hdr, 1));
        cJSON_AddItemToObject(j, "runs", runs);
        runs = NULL;
        cli_print_json(j);
        cJSON_Delete(j);
    }
done:
    cJSON_Delete(runs);
    cJSON_Delete(hdr);
    free(out);
    gpt2_state_free(s);
    free(ids);
    npy_free(&vec);
    sae_free(sae);
    cli_free_model(&cm);
    free(vals);
    free(o.latents);
    return rc;
}
