/* test_gpt2.c - the runtime against HuggingFace transformers: two random
 * GPT-2 checkpoints made by tests/make_fixtures.py (tiny-sp: save_pretrained
 * layout, f32; tiny-oa: official layout with h.N.attn.bias buffers, f16).
 * Whole tensors are compared with stated tolerances: logits <= 1e-4 abs,
 * hidden states <= 1e-5 relative to the tensor's largest value. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "gpt2.h"
#include "npy.h"
#include "steer.h"
#include "testutil.h"

#define LOGIT_ATOL 1e-4f
#define HIDDEN_REL 1e-5f

static const char *MODELS[] = {"tiny-sp", "tiny-oa"};

static int *read_ids(const char *path, int *n) {
    cJSON *j = tu_json(path);
    if (!j) return NULL;
    cJSON *a = cJSON_IsArray(j) ? j : cJSON_GetObjectItem(j, "ids");
    *n = cJSON_GetArraySize(a);
    int *ids = malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = cJSON_GetArrayItem(a, i)->valueint;
    cJSON_Delete(j);
    return ids;
}

/* max |a-b| <= rel * max|b| */
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

typedef struct { float *buf; size_t n; } grab_ctx;  /* n: floats of a pattern capture */
static int grab(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    grab_ctx *g = ctx;
    if (hp->kind == GPT2_HOOK_PATTERN) memcpy(g->buf, act, sizeof(float) * g->n);  /* one prefill: (NH, T, T) */
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
    f->ids = read_ids(p, &f->n);
    return f->ids != NULL;
}

static void close_fixture(fixture *f) {
    free(f->ids);
    gpt2_state_free(f->s);
    gpt2_free(f->m);
}

static void test_logits_and_hidden(void) {
    for (int k = 0; k < 2; k++) {
        fixture f;
        printf("\n  [%s]\n", MODELS[k]);
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        int T = f.n, C = c->n_embd, V = c->vocab_size, L = c->n_layer;
        float *logits = malloc(sizeof(float) * (size_t)T * V);
        float *hs = calloc((size_t)(L + 1) * T * C, sizeof(float));
        grab_ctx g[64];
        for (int l = 0; l < L; l++) {
            gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, l};
            g[l].buf = hs + (size_t)l * T * C;
            gpt2_add_hook(f.s, &hp, grab, &g[l], 0, NULL);
        }
        gpt2_hook_point fin = {GPT2_HOOK_LN_FINAL, -1};
        g[L].buf = hs + (size_t)L * T * C;
        gpt2_add_hook(f.s, &fin, grab, &g[L], 0, NULL);
        char err[SS_ERRLEN], p[4200];
        CU_ASSERT(gpt2_forward(f.s, f.ids, T, logits, 1, err) == SS_OK);
        snprintf(p, sizeof p, "%s/ref/logits.npy", f.dir);
        CU_ASSERT(tu_allclose_npy("logits (T, V)", logits, (size_t)T * V, p, LOGIT_ATOL, 0));
        snprintf(p, sizeof p, "%s/ref/hidden_states.npy", f.dir);
        CU_ASSERT(close_rel("hidden_states (L+1, T, C)", hs, p, (size_t)(L + 1) * T * C, HIDDEN_REL));
        /* without BOS: a different prompt, last-position logits */
        int nn;
        snprintf(p, sizeof p, "%s/ref/nobos_ids.json", f.dir);
        int *ids2 = read_ids(p, &nn);
        CU_ASSERT_FATAL(ids2 != NULL);
        gpt2_clear_hooks(f.s);
        gpt2_state_reset(f.s);
        CU_ASSERT(gpt2_forward(f.s, ids2, nn, logits, 0, err) == SS_OK);
        snprintf(p, sizeof p, "%s/ref/nobos_logits_last.npy", f.dir);
        CU_ASSERT(tu_allclose_npy("no-BOS last logits (1, V)", logits, V, p, LOGIT_ATOL, 0));
        free(ids2);
        free(hs);
        free(logits);
        close_fixture(&f);
    }
}

/* Every TransformerLens hook of tiny-sp against HF module hooks. */
static void test_tl_hooks(void) {
    fixture f;
    CU_ASSERT_FATAL(open_fixture(&f, "tiny-sp"));
    const gpt2_config *c = &f.m->cfg;
    int T = f.n, L = c->n_layer;
    const char *per_layer[] = {"hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
                               "hook_mlp_out", "attn.hook_z", "attn.hook_pattern", "mlp.hook_post"};
    char names[64][64];
    int nn = 0;
    snprintf(names[nn++], 64, "hook_embed");
    snprintf(names[nn++], 64, "hook_pos_embed");
    snprintf(names[nn++], 64, "ln_final.hook_normalized");
    for (int l = 0; l < L; l++)
        for (int i = 0; i < 8; i++) snprintf(names[nn++], 64, "blocks.%d.%s", l, per_layer[i]);
    grab_ctx g[64];
    size_t sizes[64];
    char err[SS_ERRLEN];
    for (int i = 0; i < nn; i++) {
        gpt2_hook_point hp;
        CU_ASSERT_FATAL(gpt2_hook_parse(c, names[i], &hp, err) == SS_OK);
        sizes[i] = hp.kind == GPT2_HOOK_PATTERN ? (size_t)c->n_head * T * T : (size_t)T * gpt2_hook_width(c, &hp);
        g[i].buf = calloc(sizes[i], sizeof(float));
        g[i].n = sizes[i];
        CU_ASSERT(gpt2_add_hook(f.s, &hp, grab, &g[i], 0, err) == SS_OK);
    }
    CU_ASSERT(gpt2_forward(f.s, f.ids, T, NULL, 0, err) == SS_OK);
    for (int i = 0; i < nn; i++) {
        char p[8600];
        snprintf(p, sizeof p, "%s/ref/%s.npy", f.dir, names[i]);
        CU_ASSERT(close_rel(names[i], g[i].buf, p, sizes[i], HIDDEN_REL));
        free(g[i].buf);
    }
    close_fixture(&f);
}

/* A vector added at blocks.1.hook_resid_pre: all positions, last only, and a
   matrix at positions 0..3, against HF forward pre-hooks. */
static void test_steering(void) {
    for (int k = 0; k < 2; k++) {
        fixture f;
        printf("\n  [%s]\n", MODELS[k]);
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        char err[SS_ERRLEN], p[4200];
        npy_array v, M;
        snprintf(p, sizeof p, "%s/ref/steer_v.npy", f.dir);
        CU_ASSERT_FATAL(npy_load(&v, p, err) == SS_OK);
        snprintf(p, sizeof p, "%s/ref/steer_M.npy", f.dir);
        CU_ASSERT_FATAL(npy_load(&M, p, err) == SS_OK);
        const char *modes[] = {"all", "last", "mat"};
        float *logits = malloc(sizeof(float) * c->vocab_size);
        float *fin = malloc(sizeof(float) * (size_t)f.n * c->n_embd);
        for (int m = 0; m < 3; m++) {
            steer_add a = {v.data, 1, c->n_embd, 4.0f, {0}};
            if (m == 2) { a.vec = M.data; a.rows = (int)M.shape[0]; }
            steer_positions_parse(m == 1 ? "last" : "all", &a.pos, err);
            gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, 1}, hf = {GPT2_HOOK_LN_FINAL, -1};
            grab_ctx g = {fin, 0};
            gpt2_clear_hooks(f.s);
            gpt2_state_reset(f.s);
            gpt2_add_hook(f.s, &hp, steer_add_hook, &a, 0, err);
            gpt2_add_hook(f.s, &hf, grab, &g, 0, err);
            CU_ASSERT(gpt2_forward(f.s, f.ids, f.n, logits, 0, err) == SS_OK);
            char nm[64], q[4300];
            snprintf(nm, sizeof nm, "steered logits (%s)", modes[m]);
            snprintf(q, sizeof q, "%s/ref/logits_steer_%s.npy", f.dir, modes[m]);
            CU_ASSERT(tu_allclose_npy(nm, logits, c->vocab_size, q, LOGIT_ATOL, 0));
            snprintf(nm, sizeof nm, "steered ln_final (%s)", modes[m]);
            snprintf(q, sizeof q, "%s/ref/final_steer_%s.npy", f.dir, modes[m]);
            CU_ASSERT(close_rel(nm, fin, q, (size_t)f.n * c->n_embd, HIDDEN_REL));
        }
        npy_free(&v);
        npy_free(&M);
        free(logits);
        free(fin);
        close_fixture(&f);
    }
}

/* Greedy continuations, plain and steered on every position (generated
   tokens included), equal HF generate's. */
static void test_generate(void) {
    for (int k = 0; k < 2; k++) {
        fixture f;
        printf("\n  [%s]\n", MODELS[k]);
        CU_ASSERT_FATAL(open_fixture(&f, MODELS[k]));
        const gpt2_config *c = &f.m->cfg;
        char err[SS_ERRLEN], p[4200];
        snprintf(p, sizeof p, "%s/ref/generate.json", f.dir);
        cJSON *j = tu_json(p);
        CU_ASSERT_FATAL(j != NULL);
        npy_array v;
        snprintf(p, sizeof p, "%s/ref/steer_v.npy", f.dir);
        CU_ASSERT_FATAL(npy_load(&v, p, err) == SS_OK);
        const char *keys[] = {"greedy", "greedy_steer_all"};
        for (int m = 0; m < 2; m++) {
            cJSON *want = cJSON_GetObjectItem(j, keys[m]);
            CU_ASSERT_FATAL(cJSON_IsArray(want));
            int nw = cJSON_GetArraySize(want);
            gpt2_state *s;
            gpt2_state_build(&s, f.m, f.n + nw, err);
            steer_add a = {v.data, 1, c->n_embd, 4.0f, {0}};
            gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, 1};
            if (m == 1) gpt2_add_hook(s, &hp, steer_add_hook, &a, 0, err);
            sampler_params sp;
            sampler_params_default(&sp);
            sp.temperature = 0;
            sampler *smp;
            sampler_build(&smp, c->vocab_size, &sp, err);
            int out[256], n_out = 0;
            CU_ASSERT(generate(s, smp, f.ids, f.n, nw, 0, out, &n_out, NULL, NULL, NULL, err) == SS_OK);
            int same = n_out == nw;
            for (int i = 0; same && i < nw; i++) same = out[i] == cJSON_GetArrayItem(want, i)->valueint;
            printf("  %-20s %d tokens, %s HF generate\n", keys[m], n_out, same ? "identical to" : "DIFFERENT from");
            CU_ASSERT(same);
            sampler_free(smp);
            gpt2_state_free(s);
        }
        npy_free(&v);
        cJSON_Delete(j);
        close_fixture(&f);
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("gpt2 vs HF transformers", NULL, NULL);
    CU_add_test(s, "logits and hidden_states, both layouts, with and without BOS", test_logits_and_hidden);
    CU_add_test(s, "every TransformerLens hook", test_tl_hooks);
    CU_add_test(s, "steering: all positions, last, per-position matrix", test_steering);
    CU_add_test(s, "greedy generation, plain and steered", test_generate);
    return tu_run();
}
