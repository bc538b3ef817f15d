/* test_analysis.c - the runtime piece activation patching stands on
 * (gpt2_forward_from + gpt2_state_rewind: resuming a forward pass at a middle
 * block over the tail of the sequence) and the small helpers of sae/analysis.h.
 * patch/lens themselves are checked against the plain-torch reference in
 * tests/cli_analysis.sh. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "gpt2.h"
#include "testutil.h"

typedef struct { float *buf; int C, T; } grab;

static int grab_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)err;
    grab *g = ctx;
    memcpy(g->buf + ((size_t)hp->layer * g->T + pos0) * g->C, act, (size_t)T * width * sizeof(float));
    return SS_OK;
}

/* Resuming at any block L from any position p, with the corrupted-free KV
   cache of the same tokens, gives the full run's last-position logits: on
   both fixture layouts, every (L, p), L = n_layer included. Tolerance 1e-5
   absolute: the same float32 kernels on the same rows, only the row count of
   each matmul differs (OpenBLAS may block them differently). */
static void check_resume(const char *model) {
    char err[SS_ERRLEN];
    gpt2_model *m;
    CU_ASSERT_FATAL(gpt2_load(&m, fx(model), err) == SS_OK);
    const int ids[] = {50256, 464, 2068, 7586, 21831, 18045, 625, 262};
    const int T = 8, C = m->cfg.n_embd, L = m->cfg.n_layer, V = m->cfg.vocab_size;
    gpt2_state *s;
    CU_ASSERT_FATAL(gpt2_state_build(&s, m, T, err) == SS_OK);
    float *resid = calloc((size_t)(L + 1) * T * C, sizeof(float));
    float *full = malloc((size_t)V * sizeof(float)), *got = malloc((size_t)V * sizeof(float));
    grab g = {resid, C, T};
    for (int l = 0; l < L; l++) {
        gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, l};
        gpt2_add_hook(s, &hp, grab_hook, &g, 0, err);
    }
    /* the residual entering "block n_layer" is the last block's resid_post */
    grab gpost = {resid + (size_t)C * T, C, T};   /* layer L-1 lands at slot L */
    gpt2_hook_point post = {GPT2_HOOK_RESID_POST, L - 1};
    gpt2_add_hook(s, &post, grab_hook, &gpost, 0, err);
    CU_ASSERT_FATAL(gpt2_forward(s, ids, T, full, 0, err) == SS_OK);
    gpt2_clear_hooks(s);
    double worst = 0;
    int ok = 1;
    for (int l = 0; l <= L; l++)
        for (int p = T - 1; p >= 0; p--) {
            gpt2_state_rewind(s, p);
            CU_ASSERT(s->pos == p);
            int rc = gpt2_forward_from(s, l, resid + ((size_t)l * T + p) * C, T - p, got, 0, err);
            CU_ASSERT(rc == SS_OK);
            if (rc) { printf("  %s\n", err); ok = 0; continue; }
            for (int v = 0; v < V; v++) {
                double d = fabs((double)got[v] - full[v]);
                if (d > worst) worst = d;
            }
        }
    printf("  %s: resume at every block x position vs the full run: max abs diff %.3g over %d runs\n", model, worst,
           (L + 1) * T);
    CU_ASSERT(ok && worst <= 1e-5);
    /* bad requests */
    gpt2_state_rewind(s, 0);
    CU_ASSERT(gpt2_forward_from(s, L + 1, resid, 1, NULL, 0, err) == SS_EINPUT);
    CU_ASSERT(gpt2_forward_from(s, -1, resid, 1, NULL, 0, err) == SS_EINPUT);
    CU_ASSERT(gpt2_forward_from(s, 0, resid, T + 1, NULL, 0, err) == SS_EINPUT);
    CU_ASSERT(gpt2_forward_from(s, 0, resid, 0, NULL, 0, err) == SS_EINPUT);
    gpt2_state_rewind(s, 5);   /* rewinding forward is a no-op */
    CU_ASSERT(s->pos == 0);
    free(resid); free(full); free(got);
    gpt2_state_free(s);
    gpt2_free(m);
}

static void test_resume_sp(void) { check_resume("tiny-sp"); }
static void test_resume_oa(void) { check_resume("tiny-oa"); }

static int cmp_desc(const void *a, const void *b, void *x) {
    const float *v = x;
    int i = *(const int *)a, j = *(const int *)b;
    return v[i] > v[j] ? -1 : v[i] < v[j] ? 1 : i - j;
}

/* topk_indices = the first k of a full stable sort (ties: lower index). */
static void test_topk(void) {
    enum { N = 5000 };
    static float x[N];
    static int order[N], got[64];
    srand(7);
    for (int i = 0; i < N; i++) x[i] = (float)(rand() % 1000) / 10.0f;   /* many ties */
    for (int i = 0; i < N; i++) order[i] = i;
    qsort_r(order, N, sizeof(int), cmp_desc, x);
    CU_ASSERT(topk_indices(x, N, 64, 1, got) == 64);
    CU_ASSERT(memcmp(got, order, sizeof got) == 0);
    for (int i = 0; i < N; i++) x[i] = -x[i];
    CU_ASSERT(topk_indices(x, N, 64, 0, got) == 64);
    CU_ASSERT(memcmp(got, order, sizeof got) == 0);
    CU_ASSERT(topk_indices(x, 3, 10, 1, got) == 3);
    float l[3] = {1.0f, 2.0f, 3.0f};
    log_softmax_inplace(l, 3);
    double z = log(exp(1.0) + exp(2.0) + exp(3.0));
    printf("  log_softmax: %.9g %.9g %.9g\n", l[0], l[1], l[2]);
    CU_ASSERT(fabs(l[2] - (3.0 - z)) < 1e-6 && fabs(l[0] - (1.0 - z)) < 1e-6);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("analysis", NULL, NULL);
    CU_add_test(s, "gpt2_forward_from: resume = full run (tiny-sp)", test_resume_sp);
    CU_add_test(s, "gpt2_forward_from: resume = full run (tiny-oa)", test_resume_oa);
    CU_add_test(s, "topk_indices / log_softmax", test_topk);
    return tu_run();
}
