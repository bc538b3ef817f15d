/* test_arch.c - GPT-J and GPT-NeoX against HuggingFace transformers: four
 * random checkpoints made by tests/make_fixtures_arch.py (gptj-f32, gptj-bf16
 * sharded, neox-par-f32 with use_parallel_residual true, neox-seq-bf16
 * sharded with it false and no attention biases). Whole tensors, stated
 * tolerances, the max difference printed:
 *   logits <= 1e-4 absolute (float32 sums over C and F terms, summed in
 *     another order than torch's: ~1e-6 here, 1e-4 leaves room);
 *   every hook <= 1e-5 x the reference tensor's largest |value|;
 *   greedy continuations identical to HF generate (the fixture's smallest
 *     top-1 / top-2 gap is recorded, far above float noise);
 *   decoding one token at a time (the fused f16/bf16 x f32 kernels, KV
 *     cache, rotary at later positions) gives every position's logits too;
 *   the portable kernels give the same logits as the AVX2 ones (1e-5).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "generate.h"
#include "gpt2.h"
#include "npy.h"
#include "testutil.h"
#include "tokenizer.h"

#define LOGIT_ATOL 1e-4f
#define HOOK_REL 1e-5f

static const char *MODELS[] = {"arch/gptj-f32", "arch/gptj-bf16", "arch/neox-par-f32", "arch/neox-seq-bf16"};
#define NM 4

static int *read_ids(const char *path, const char *key, int *n) {
    cJSON *j = tu_json(path);
    if (!j) return NULL;
    cJSON *a = key ? cJSON_GetObjectItem(j, key) : j;
    *n = cJSON_GetArraySize(a);
    int *ids = malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = cJSON_GetArrayItem(a, i)->valueint;
    cJSON_Delete(j);
    return ids;
}

static int close_rel(const char *name, const float *got, const char *npy, size_t n, float rel) {
    npy_array a;
    char err[SS_ERRLEN];
    if (npy_load(&a, npy, err)) { printf("  %s\n", err); return 0; }
    if ((size_t)a.numel != n) { printf("  %s: %lld values in reference, %zu computed\n", name, (long long)a.numel, n); npy_free(&a); return 0; }
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(a.data[i]));
    int ok = tu_allclose(name, got, a.data, n, rel * mx, 0);
    npy_free(&a);
    return ok;
}

typedef struct { float *buf; size_t n; } grab_ctx;
static int grab(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    grab_ctx *g = ctx;
    if (hp->kind == GPT2_HOOK_PATTERN) memcpy(g->buf, act, sizeof(float) * g->n);
    else memcpy(g->buf + (size_t)pos0 * width, act, sizeof(float) * (size_t)T * width);
    return SS_OK;
}

typedef struct { gpt2_model *m; gpt2_state *s; int *ids; int n; char dir[4096]; } fixture;

static int open_fixture(fixture *f, const char *name) {
    char err[SS_ERRLEN], p[4200];
    snprintf(f->dir, sizeof f->dir, "%s", fx(name));
    if (gpt2_load(&f->m, f->dir, err)) { printf("  %s\n", err); return 0; }
    if (gpt2_state_build(&f->s, f->m, 0, err)) return 0;
    snprintf(p, sizeof p, "%s/ref/ids.json", f->dir);
    f->ids = read_ids(p, NULL, &f->n);
    return f->ids != NULL;
}

static void close_fixture(fixture *f) {
    free(f->ids);
    gpt2_state_free(f->s);
    gpt2_free(f->m);
}

static void test_config(void) {
    const char *arch[NM] = {"gptj", "gptj", "gpt_neox", "gpt_neox"};
    const int par[NM] = {1, 1, 1, 0}, rot[NM] = {4, 6, 4, 4};
    for (int k = 0; k < NM; k++) {
        fixture f;
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        printf("\n  [%s] %s L%d C%d NH%d F%d rotary %d theta %g parallel %d erf %d V%d\n", MODELS[k], gpt2_arch_name(c->arch),
               c->n_layer, c->n_embd, c->n_head, c->n_inner, c->rotary_dim, c->rope_theta, c->parallel, c->gelu_erf, c->vocab_size);
        CU_ASSERT(strcmp(gpt2_arch_name(c->arch), arch[k]) == 0);
        CU_ASSERT(c->parallel == par[k] && c->rotary_dim == rot[k]);
        close_fixture(&f);
    }
}

static void test_logits_hidden_hooks(void) {
    for (int k = 0; k < NM; k++) {
        fixture f;
        printf("\n  [%s] kernels %s\n", MODELS[k], gpt2_kernels());
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        int T = f.n, C = c->n_embd, V = c->vocab_size, L = c->n_layer;
        const char *per_layer[] = {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
                                   "hook_mlp_out", "attn.hook_z", "attn.hook_pattern", "mlp.hook_post"};
        char names[128][64];
        int nn = 0;
        snprintf(names[nn++], 64, "hook_embed");
        snprintf(names[nn++], 64, "ln_final.hook_normalized");
        for (int l = 0; l < L; l++)
            for (int i = 0; i < 8; i++)
                if (i != 1 || !c->parallel) snprintf(names[nn++], 64, "blocks.%d.%s", l, per_layer[i]);
        grab_ctx g[128];
        char err[SS_ERRLEN], p[4200];
        for (int i = 0; i < nn; i++) {
            gpt2_hook_point hp;
            CU_ASSERT_FATAL(gpt2_hook_parse(c, names[i], &hp, err) == SS_OK);
            g[i].n = hp.kind == GPT2_HOOK_PATTERN ? (size_t)c->n_head * T * T : (size_t)T * gpt2_hook_width(c, &hp);
            g[i].buf = calloc(g[i].n, sizeof(float));
            CU_ASSERT(gpt2_add_hook(f.s, &hp, grab, &g[i], 0, err) == SS_OK);
        }
        float *logits = malloc(sizeof(float) * (size_t)T * V);
        CU_ASSERT(gpt2_forward(f.s, f.ids, T, logits, 1, err) == SS_OK);
        snprintf(p, sizeof p, "%s/ref/logits.npy", f.dir);
        CU_ASSERT(tu_allclose_npy("logits (T, V)", logits, (size_t)T * V, p, LOGIT_ATOL, 0));
        for (int i = 0; i < nn; i++) {
            snprintf(p, sizeof p, "%s/ref/%s.npy", f.dir, names[i]);
            CU_ASSERT(close_rel(names[i], g[i].buf, p, g[i].n, HOOK_REL));
        }
        /* hidden_states: resid_pre of every layer + ln_final */
        float *hs = malloc(sizeof(float) * (size_t)(L + 1) * T * C);
        for (int l = 0; l <= L; l++) {
            char nm[64];
            if (l < L) snprintf(nm, sizeof nm, "blocks.%d.hook_resid_pre", l);
            else snprintf(nm, sizeof nm, "ln_final.hook_normalized");
            for (int i = 0; i < nn; i++)
                if (!strcmp(names[i], nm)) memcpy(hs + (size_t)l * T * C, g[i].buf, sizeof(float) * (size_t)T * C);
        }
        snprintf(p, sizeof p, "%s/ref/hidden_states.npy", f.dir);
        CU_ASSERT(close_rel("hidden_states (L+1, T, C)", hs, p, (size_t)(L + 1) * T * C, HOOK_REL));
        for (int i = 0; i < nn; i++) free(g[i].buf);
        free(hs);

        /* one token at a time through the KV cache (the T == 1 kernels) */
        gpt2_clear_hooks(f.s);
        gpt2_state_reset(f.s);
        float *inc = malloc(sizeof(float) * (size_t)T * V);
        int ok = 1;
        for (int t = 0; t < T && ok; t++) ok = gpt2_forward(f.s, f.ids + t, 1, inc + (size_t)t * V, 0, err) == SS_OK;
        CU_ASSERT(ok);
        snprintf(p, sizeof p, "%s/ref/logits.npy", f.dir);
        CU_ASSERT(tu_allclose_npy("logits decoded one position at a time", inc, (size_t)T * V, p, LOGIT_ATOL, 0));
        /* the portable kernels against the default ones */
        gpt2_kernels_force_portable(1);
        gpt2_state_reset(f.s);
        float *por = malloc(sizeof(float) * (size_t)T * V), *por1 = malloc(sizeof(float) * V);
        CU_ASSERT(gpt2_forward(f.s, f.ids, T, por, 1, err) == SS_OK);
        gpt2_state_reset(f.s);
        CU_ASSERT(gpt2_forward(f.s, f.ids, T - 1, NULL, 0, err) == SS_OK);
        CU_ASSERT(gpt2_forward(f.s, f.ids + T - 1, 1, por1, 0, err) == SS_OK);
        gpt2_kernels_force_portable(0);
        CU_ASSERT(tu_allclose("portable kernels, prefill", por, logits, (size_t)T * V, 1e-5f, 0));
        CU_ASSERT(tu_allclose("portable kernels, decode", por1, inc + (size_t)(T - 1) * V, V, 1e-5f, 0));
        free(por);
        free(por1);
        free(inc);
        free(logits);
        close_fixture(&f);
    }
}

static void test_generate(void) {
    for (int k = 0; k < NM; k++) {
        fixture f;
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        char err[SS_ERRLEN], p[4200];
        snprintf(p, sizeof p, "%s/ref/generate.json", f.dir);
        int nw = 0;
        int *want = read_ids(p, "greedy", &nw);
        CU_ASSERT_FATAL(want != NULL && nw > 0);
        sampler_params sp;
        sampler_params_default(&sp);
        sp.temperature = 0;
        sampler *smp;
        CU_ASSERT_FATAL(sampler_build(&smp, f.m->cfg.vocab_size, &sp, err) == SS_OK);
        int out[256], n_out = 0;
        CU_ASSERT(generate(f.s, smp, f.ids, f.n, nw, 0, out, &n_out, NULL, NULL, NULL, err) == SS_OK);
        int same = n_out == nw;
        for (int i = 0; same && i < nw; i++) same = out[i] == want[i];
        printf("\n  [%s] greedy %d tokens, %s HF generate\n", MODELS[k], n_out, same ? "identical to" : "DIFFERENT from");
        CU_ASSERT(same);
        sampler_free(smp);
        free(want);
        close_fixture(&f);
    }
}

/* Hooks that do not exist for an architecture are refused with a reason. */
static void test_refused_hooks(void) {
    fixture f;
    CU_ASSERT_FATAL(open_fixture(&f, "arch/gptj-f32"));
    gpt2_hook_point hp;
    char err[SS_ERRLEN];
    CU_ASSERT(gpt2_hook_parse(&f.m->cfg, "blocks.1.hook_resid_mid", &hp, err) == SS_EINPUT);
    printf("\n  %s\n", err);
    CU_ASSERT(strstr(err, "parallel") != NULL);
    CU_ASSERT(gpt2_hook_parse(&f.m->cfg, "hook_pos_embed", &hp, err) == SS_EINPUT);
    printf("  %s\n", err);
    CU_ASSERT(strstr(err, "rotary") != NULL);
    close_fixture(&f);
    CU_ASSERT_FATAL(open_fixture(&f, "arch/neox-seq-bf16"));
    CU_ASSERT(gpt2_hook_parse(&f.m->cfg, "blocks.1.hook_resid_mid", &hp, err) == SS_OK);
    close_fixture(&f);
}

/* Pythia's config.json keys (transformers 4.x: rotary_pct, rotary_emb_base)
   give the same model as rope_parameters (5.x). */
static void test_pythia_config_keys(void) {
    char tmpl[] = "/tmp/ss_archXXXXXX", err[SS_ERRLEN], p[8500], q[8500];
    CU_ASSERT_FATAL(mkdtemp(tmpl) != NULL);
    const char *src = fx("arch/neox-seq-bf16");
    snprintf(p, sizeof p, "%s/config.json", src);
    cJSON *j = tu_json(p);
    CU_ASSERT_FATAL(j != NULL);
    cJSON *rp = cJSON_GetObjectItem(j, "rope_parameters");
    double pct = cJSON_GetObjectItem(rp, "partial_rotary_factor")->valuedouble;
    double theta = cJSON_GetObjectItem(rp, "rope_theta")->valuedouble;
    cJSON_DeleteItemFromObject(j, "rope_parameters");
    cJSON_AddNumberToObject(j, "rotary_pct", pct);
    cJSON_AddNumberToObject(j, "rotary_emb_base", theta);
    char *txt = cJSON_Print(j);
    snprintf(q, sizeof q, "%s/config.json", tmpl);
    FILE *fp = fopen(q, "w");
    fputs(txt, fp);
    fclose(fp);
    free(txt);
    cJSON_Delete(j);
    /* everything else of the checkpoint (index and shards) as symlinks */
    char names[32][256];
    int nf = 0;
    DIR *dd = opendir(src);
    CU_ASSERT_FATAL(dd != NULL);
    for (struct dirent *de; (de = readdir(dd)) && nf < 32;)
        if (strstr(de->d_name, ".safetensors")) snprintf(names[nf++], 256, "%s", de->d_name);
    closedir(dd);
    for (int i = 0; i < nf; i++) {
        snprintf(p, sizeof p, "%s/%s", src, names[i]);
        snprintf(q, sizeof q, "%s/%s", tmpl, names[i]);
        CU_ASSERT(symlink(p, q) == 0);
    }
    gpt2_model *m;
    gpt2_state *s;
    CU_ASSERT_FATAL(gpt2_load(&m, tmpl, err) == SS_OK);
    CU_ASSERT_FATAL(gpt2_state_build(&s, m, 0, err) == SS_OK);
    int n = 0;
    snprintf(p, sizeof p, "%s/ref/ids.json", src);
    int *ids = read_ids(p, NULL, &n);
    float *logits = malloc(sizeof(float) * (size_t)n * m->cfg.vocab_size);
    CU_ASSERT(gpt2_forward(s, ids, n, logits, 1, err) == SS_OK);
    snprintf(p, sizeof p, "%s/ref/logits.npy", src);
    CU_ASSERT(tu_allclose_npy("logits with rotary_pct/rotary_emb_base keys", logits, (size_t)n * m->cfg.vocab_size, p, LOGIT_ATOL, 0));
    free(logits);
    free(ids);
    gpt2_state_free(s);
    gpt2_free(m);
    for (int i = 0; i < nf; i++) { snprintf(q, sizeof q, "%s/%s", tmpl, names[i]); unlink(q); }
    snprintf(q, sizeof q, "%s/config.json", tmpl);
    unlink(q);
    rmdir(tmpl);
}

/* tokenizer.json (three serialisations) and GPT-J's vocab.json/merges.txt:
   ids identical to HF tokenizers on every fixture text. */
static void test_tokenizers(void) {
    const char *files[] = {"tokenizer.json", "tokenizer_strmerges.json", "tokenizer_prefix.json", "vocab.json"};
    cJSON *j = tu_json(fx("arch/tok/tokens.json"));
    CU_ASSERT_FATAL(j != NULL);
    char err[SS_ERRLEN], p[4200];
    for (int k = 0; k < 4; k++) {
        tokenizer *t = NULL;
        int rc;
        if (k < 3) {
            snprintf(p, sizeof p, "arch/tok/%s", files[k]);
            rc = tok_load_json(&t, fx(p), err);
        } else {
            char m[4200];
            snprintf(p, sizeof p, "%s", fx("arch/tok/vocab.json"));
            snprintf(m, sizeof m, "%s", fx("arch/tok/merges.txt"));
            rc = tok_load(&t, p, m, err);
        }
        if (rc) printf("\n  %s\n", err);
        CU_ASSERT_FATAL(rc == SS_OK);
        int n = 0, same = 0;
        for (cJSON *e = j->child; e; e = e->next) {
            cJSON *want = cJSON_GetObjectItem(e, files[k]);
            if (!want) continue;
            const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
            int *ids = NULL, ni = 0;
            CU_ASSERT(tok_encode(t, text, strlen(text), &ids, &ni, err) == SS_OK);
            int ok = ni == cJSON_GetArraySize(want);
            for (int i = 0; ok && i < ni; i++) ok = ids[i] == cJSON_GetArrayItem(want, i)->valueint;
            if (!ok) {
                printf("\n  %s: %s differs:", files[k], text);
                for (int i = 0; i < ni; i++) printf(" %d", ids[i]);
            }
            n++;
            same += ok;
            free(ids);
        }
        printf("\n  %-26s %d / %d texts identical to HF", files[k], same, n);
        CU_ASSERT(n > 0 && same == n);
        tok_free(t);
    }
    printf("\n");
    cJSON_Delete(j);
}

/* gpt2_head_out (what fv builds function vectors from): the heads' slices of
   W_O applied to HF's hook_z, summed over heads, plus the bias = HF's
   hook_attn_out, for every layer and position. */
static void test_head_out(void) {
    for (int k = 0; k < NM; k++) {
        fixture f;
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        int T = f.n, C = c->n_embd, NH = c->n_head, HS = C / NH;
        char p[4200], err[SS_ERRLEN];
        float *got = malloc(sizeof(float) * (size_t)T * C);
        double *acc = malloc(sizeof(double) * C);
        for (int l = 0; l < c->n_layer; l++) {
            npy_array z;
            snprintf(p, sizeof p, "%s/ref/blocks.%d.attn.hook_z.npy", f.dir, l);
            CU_ASSERT_FATAL(npy_load(&z, p, err) == SS_OK);
            for (int t = 0; t < T; t++) {
                for (int j = 0; j < C; j++) acc[j] = f.m->layers[l].proj_b ? f.m->layers[l].proj_b[j] : 0.0;
                for (int h = 0; h < NH; h++) CU_ASSERT(gpt2_head_out(f.m, l, h, z.data + (size_t)t * C + h * HS, acc) == SS_OK);
                for (int j = 0; j < C; j++) got[(size_t)t * C + j] = (float)acc[j];
            }
            snprintf(p, sizeof p, "%s/ref/blocks.%d.hook_attn_out.npy", f.dir, l);
            char nm[96];
            snprintf(nm, sizeof nm, "%s L%d sum_h head_out", MODELS[k] + 5, l);
            CU_ASSERT(close_rel(nm, got, p, (size_t)T * C, HOOK_REL));
            npy_free(&z);
        }
        free(got);
        free(acc);
        close_fixture(&f);
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("arch", NULL, NULL);
    CU_add_test(s, "config of each architecture", test_config);
    CU_add_test(s, "logits, hidden states and every hook vs HF", test_logits_hidden_hooks);
    CU_add_test(s, "greedy generation vs HF generate", test_generate);
    CU_add_test(s, "hooks an architecture lacks are refused", test_refused_hooks);
    CU_add_test(s, "Pythia's rotary_pct / rotary_emb_base keys", test_pythia_config_keys);
    CU_add_test(s, "tokenizer.json and vocab.json ids vs HF", test_tokenizers);
    CU_add_test(s, "per-head output projection (fv) vs HF attn_out", test_head_out);
    return tu_run();
}
