/* test_fv.c - task vectors and function vectors against the HF references of
 * tests/make_fixtures_fv.py (mean head outputs, CIE by full recomputation,
 * top heads, the FV, FV-steered and h-patched logits, FV-steered greedy
 * decoding), prompt formatting and the dataset parser.
 * SS_FV_DIR / SS_FV_MODEL override the fixture folder and model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv.h"
#include "generate.h"
#include "sample.h"
#include "steer.h"
#include "testutil.h"

static gpt2_model *M;
static char DIR_[4096], MODEL[4096];
static fv_prompt *CLEAN, *SHUF, *ZERO;
static int NC, NS, NZ, LAYER, TOPK;
static int HEADS[64][2];

static const char *fvp(const char *rel) {
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", DIR_, rel);
    return buf[k];
}

static fv_prompt *prompts(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    fv_prompt *p = calloc((size_t)*n, sizeof *p);
    for (int i = 0; i < *n; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i), *ids = cJSON_GetObjectItem(o, "ids");
        p[i].n = cJSON_GetArraySize(ids);
        p[i].ids = malloc((size_t)p[i].n * sizeof(int));
        for (int k = 0; k < p[i].n; k++) p[i].ids[k] = cJSON_GetArrayItem(ids, k)->valueint;
        p[i].answer = cJSON_GetObjectItem(o, "answer")->valueint;
        p[i].item = cJSON_GetObjectItem(o, "item")->valueint;
    }
    return p;
}

static int init_suite(void) {
    const char *d = getenv("SS_FV_DIR"), *m = getenv("SS_FV_MODEL");
    snprintf(DIR_, sizeof DIR_, "%s", d && *d ? d : fx("fv"));
    snprintf(MODEL, sizeof MODEL, "%s", m && *m ? m : fx("tiny-sp"));
    char err[SS_ERRLEN];
    if (gpt2_load(&M, MODEL, err)) { printf("  %s\n", err); return 1; }
    cJSON *j = tu_json(fvp("fv.json"));
    if (!j) return 1;
    CLEAN = prompts(cJSON_GetObjectItem(j, "clean"), &NC);
    SHUF = prompts(cJSON_GetObjectItem(j, "shuffled"), &NS);
    ZERO = prompts(cJSON_GetObjectItem(j, "zero"), &NZ);
    LAYER = cJSON_GetObjectItem(j, "layer")->valueint;
    TOPK = cJSON_GetObjectItem(j, "top_k")->valueint;
    const cJSON *h = cJSON_GetObjectItem(j, "heads");
    for (int k = 0; k < TOPK; k++) {
        HEADS[k][0] = cJSON_GetArrayItem(cJSON_GetArrayItem(h, k), 0)->valueint;
        HEADS[k][1] = cJSON_GetArrayItem(cJSON_GetArrayItem(h, k), 1)->valueint;
    }
    cJSON_Delete(j);
    return 0;
}

static int clean_suite(void) {
    fv_prompts_free(CLEAN, NC);
    fv_prompts_free(SHUF, NS);
    fv_prompts_free(ZERO, NZ);
    gpt2_free(M);
    return 0;
}

static float *ref(const char *name, int64_t *numel) {
    npy_array a;
    char err[SS_ERRLEN];
    if (npy_load(&a, fvp(name), err)) { printf("  %s\n", err); return NULL; }
    *numel = a.numel;
    return a.data;
}

static void test_fv_pipeline(void) {
    char err[SS_ERRLEN];
    int L = M->cfg.n_layer, NH = M->cfg.n_head, C = M->cfg.n_embd, V = M->cfg.vocab_size;
    float *zbar = malloc((size_t)L * C * sizeof(float)), *cie = malloc((size_t)L * NH * sizeof(float));
    float *fv = malloc((size_t)C * sizeof(float)), *logits = malloc((size_t)NZ * V * sizeof(float));
    int heads[64 * 2];
    CU_ASSERT_FATAL(fv_mean_z(M, CLEAN, NC, zbar, err) == SS_OK);
    CU_ASSERT(tu_allclose_npy("zbar (L, C)", zbar, (size_t)L * C, fvp("zbar.npy"), 1e-5f, 1e-4f));
    CU_ASSERT_FATAL(fv_cie(M, SHUF, NS, zbar, FV_CIE_PROB, cie, err) == SS_OK);
    /* a random model puts ~1/V on every token, so CIEs are tiny: the
       tolerance is relative to the largest reference |CIE| */
    int64_t n;
    float *rcie = ref("cie.npy", &n), mx = 0;
    CU_ASSERT_FATAL(rcie != NULL && n == L * NH);
    for (int i = 0; i < L * NH; i++) mx = rcie[i] > mx ? rcie[i] : -rcie[i] > mx ? -rcie[i] : mx;
    printf("  largest |CIE| %.3g\n", mx);
    CU_ASSERT(tu_allclose("CIE (L, NH), KV-cache sweep", cie, rcie, (size_t)L * NH, 1e-3f * mx, 0));
    fv_top_heads(rcie, L, NH, TOPK, heads);
    for (int k = 0; k < TOPK; k++) CU_ASSERT(heads[2 * k] == HEADS[k][0] && heads[2 * k + 1] == HEADS[k][1]);
    fv_top_heads(cie, L, NH, TOPK, heads);
    int same = 1;
    for (int k = 0; k < TOPK; k++) same &= heads[2 * k] == HEADS[k][0] && heads[2 * k + 1] == HEADS[k][1];
    printf("  top-%d heads from our CIE %s the reference's\n", TOPK, same ? "equal" : "DIFFER FROM");
    CU_ASSERT(same);
    for (int k = 0; k < TOPK; k++) { heads[2 * k] = HEADS[k][0]; heads[2 * k + 1] = HEADS[k][1]; }
    CU_ASSERT_FATAL(fv_vector(M, zbar, heads, TOPK, fv, err) == SS_OK);
    CU_ASSERT(tu_allclose_npy("FV (C)", fv, (size_t)C, fvp("fv.npy"), 1e-5f, 1e-4f));
    CU_ASSERT_FATAL(fv_last_logits(M, ZERO, NZ, FV_ADD, LAYER, fv, logits, err) == SS_OK);
    CU_ASSERT(tu_allclose_npy("FV-steered logits (Z, V)", logits, (size_t)NZ * V, fvp("fv_logits.npy"), 1e-4f, 1e-4f));
    /* heads out of range */
    int bad[2] = {L, 0};
    CU_ASSERT(fv_vector(M, zbar, bad, 1, fv, err) == SS_EINPUT);
    free(rcie); free(zbar); free(cie); free(fv); free(logits);
}

/* greedy decoding with the FV at the last position of every step == the
   reference's full recomputation with the FV at every position >= the prompt's last */
static void test_fv_greedy(void) {
    char err[SS_ERRLEN];
    int64_t n;
    float *fv = ref("fv.npy", &n);
    cJSON *j = tu_json(fvp("fv_greedy.json"));
    CU_ASSERT_FATAL(fv && j);
    const cJSON *pr = cJSON_GetObjectItem(j, "prompt"), *want = cJSON_GetObjectItem(j, "tokens");
    int np = cJSON_GetArraySize(pr), nw = cJSON_GetArraySize(want), ids[256], out[64], n_out = 0;
    for (int i = 0; i < np; i++) ids[i] = cJSON_GetArrayItem(pr, i)->valueint;
    gpt2_state *s;
    sampler *smp;
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = 0;
    CU_ASSERT_FATAL(gpt2_state_build(&s, M, np + nw, err) == SS_OK);
    CU_ASSERT_FATAL(sampler_build(&smp, M->cfg.vocab_size, &sp, err) == SS_OK);
    steer_add add = {fv, 1, M->cfg.n_embd, 1.0f, {POS_LAST, 0, {0}}};
    gpt2_hook_point hp = {GPT2_HOOK_RESID_POST, LAYER};
    CU_ASSERT_FATAL(gpt2_add_hook(s, &hp, steer_add_hook, &add, 0, err) == SS_OK);
    CU_ASSERT_FATAL(generate(s, smp, ids, np, nw, 0, out, &n_out, NULL, NULL, NULL, err) == SS_OK);
    CU_ASSERT(n_out == nw);
    int ok = 1;
    for (int i = 0; i < nw && i < n_out; i++) ok &= out[i] == cJSON_GetArrayItem(want, i)->valueint;
    printf("  FV-steered greedy tokens %s the reference\n", ok ? "equal" : "DIFFER FROM");
    CU_ASSERT(ok);
    sampler_free(smp);
    gpt2_state_free(s);
    cJSON_Delete(j);
    free(fv);
}

static void test_task_vector(void) {
    char err[SS_ERRLEN];
    int C = M->cfg.n_embd, V = M->cfg.vocab_size;
    float *h = malloc((size_t)C * sizeof(float)), *logits = malloc((size_t)NZ * V * sizeof(float));
    CU_ASSERT_FATAL(fv_mean_resid(M, CLEAN, NC, LAYER, h, err) == SS_OK);
    CU_ASSERT(tu_allclose_npy("task vector h (C)", h, (size_t)C, fvp("tv_h.npy"), 1e-5f, 1e-4f));
    CU_ASSERT_FATAL(fv_last_logits(M, ZERO, NZ, FV_REPLACE, LAYER, h, logits, err) == SS_OK);
    CU_ASSERT(tu_allclose_npy("h-patched logits (Z, V)", logits, (size_t)NZ * V, fvp("tv_logits.npy"), 1e-4f, 1e-4f));
    CU_ASSERT(fv_mean_resid(M, CLEAN, NC, M->cfg.n_layer, h, err) == SS_EINPUT);
    CU_ASSERT(strstr(err, "--layer") != NULL);
    free(h);
    free(logits);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void test_dataset_and_prompts(void) {
    char err[SS_ERRLEN];
    fv_dataset d;
    CU_ASSERT_FATAL(fv_dataset_load(&d, fvp("dataset.json"), err) == SS_OK);
    int shots[2] = {1, 2}, perm[2] = {1, 0};
    char *t = fv_prompt_text(NULL, &d, 0, shots, 2, NULL);
    char want[512];
    snprintf(want, sizeof want, "Q: %s\nA: %s\n\nQ: %s\nA: %s\n\nQ: %s\nA:", d.input[1], d.output[1], d.input[2], d.output[2],
             d.input[0]);
    CU_ASSERT(!strcmp(t, want));
    free(t);
    t = fv_prompt_text(NULL, &d, 0, shots, 2, perm);
    snprintf(want, sizeof want, "Q: %s\nA: %s\n\nQ: %s\nA: %s\n\nQ: %s\nA:", d.input[1], d.output[2], d.input[2], d.output[1],
             d.input[0]);
    CU_ASSERT(!strcmp(t, want));
    free(t);
    fv_dataset_free(&d);
    const char *path = "/tmp/ss_test_fv_dataset.json";
    const char *bad[] = {"", "{}", "[]", "[{\"input\": \"a\"}]", "[{\"input\": \"a\", \"output\": 1}]", "[1, 2]",
                         "[{\"input\": \"\", \"output\": \"b\"}]", "[{\"input\": \"\xc3\", \"output\": \"b\"}]", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i]);
        CU_ASSERT(fv_dataset_load(&d, path, err) == SS_EINPUT);
    }
    write_file(path, "[{\"input\": \"a\", \"output\": \"b\"}]");
    CU_ASSERT(fv_dataset_load(&d, path, err) == SS_OK && d.n == 1);
    fv_dataset_free(&d);
}

/* templates: parts, the answer's space, prompt text; fv_plan's split */
static void test_template_and_plan(void) {
    char err[SS_ERRLEN];
    fv_template t;
    CU_ASSERT_FATAL(fv_template_parse(&t, NULL, err) == SS_OK);
    CU_ASSERT(!strcmp(t.pre, "Q: ") && !strcmp(t.mid, "\nA:") && !strcmp(t.post, "\n\n") && t.space == 1);
    fv_template_free(&t);
    CU_ASSERT_FATAL(fv_template_parse(&t, "<{{{x}}}>\\t{y}\\\\\\n", err) == SS_OK);   /* <{{{x}}}>\t{y}\\\n */
    CU_ASSERT(!strcmp(t.pre, "<{") && !strcmp(t.mid, "}>\t") && !strcmp(t.post, "\\\n") && t.space == 0);
    fv_dataset d;
    CU_ASSERT_FATAL(fv_dataset_load(&d, fvp("dataset.json"), err) == SS_OK);
    int shots[2] = {1, 2};
    char *s = fv_prompt_text(&t, &d, 0, shots, 2, NULL), want[512];
    snprintf(want, sizeof want, "<{%s}>\t%s\\\n<{%s}>\t%s\\\n<{%s}>\t", d.input[1], d.output[1], d.input[2], d.output[2],
             d.input[0]);
    CU_ASSERT(!strcmp(s, want));
    free(s);
    fv_template_free(&t);
    const char *bad[] = {"{x}", "{y}{x}\\n", "{x}{y}\\n", "{x} {y}\\n", "{x}:{y}", "{x}:{y}\\q", "{x}:{z}{y}\\n", "}{x}:{y}\\n",
                         "{x}{x}:{y}\\n", "{x}:{y}{y}\\n", "", "{x:{y}\\n", "{x}:{y}\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fv_template_parse(&t, bad[i], err);
        CU_ASSERT(rc == SS_EINPUT && strstr(err, "--template") != NULL);
        if (rc != SS_EINPUT) printf("  template '%s' was accepted\n", bad[i]);
    }
    char inv[] = {'{', 'x', '}', ':', (char)0xff, '{', 'y', '}', '\n', 0};
    CU_ASSERT(fv_template_parse(&t, inv, err) == SS_EINPUT && strstr(err, "UTF-8"));
    fv_opts o;
    fv_opts_default(&o);
    int ne = -1;
    CU_ASSERT(fv_plan(&o, 8, &ne, err) == SS_OK && ne == 2);      /* min(50, 8/2) capped at 8 - 5 - 1 */
    CU_ASSERT(fv_plan(&o, 300, &ne, err) == SS_OK && ne == 50);
    CU_ASSERT(fv_plan(&o, 30, &ne, err) == SS_OK && ne == 15);
    CU_ASSERT(fv_plan(&o, 6, &ne, err) == SS_EINPUT && strstr(err, "6 items"));
    o.n_eval = 3;
    CU_ASSERT(fv_plan(&o, 9, &ne, err) == SS_OK && ne == 3);
    CU_ASSERT(fv_plan(&o, 8, &ne, err) == SS_EINPUT && strstr(err, "n_eval + shots + 1 = 9") && strstr(err, "--n-eval 2 or"));
    fv_dataset_free(&d);
}

/* the whole experiment on the tiny model: runs, deterministic, sane numbers */
static void test_experiment_runs(void) {
    char err[SS_ERRLEN], v[4200], mg[4200];
    tokenizer *tok;
    snprintf(v, sizeof v, "%s/vocab.json", MODEL);
    snprintf(mg, sizeof mg, "%s/merges.txt", MODEL);
    CU_ASSERT_FATAL(tok_load(&tok, v, mg, err) == SS_OK);
    fv_dataset d;
    CU_ASSERT_FATAL(fv_dataset_load(&d, fvp("dataset.json"), err) == SS_OK);
    fv_opts o;
    fv_opts_default(&o);
    o.layer = LAYER;
    o.shots = 2;
    o.n_prompts = 3;
    o.n_eval = 4;
    o.top_k = 2;
    o.max_new = 3;
    fv_result a, b;
    CU_ASSERT_FATAL(fv_function_vector_run(M, tok, &d, &o, &a, err) == SS_OK);
    CU_ASSERT_FATAL(fv_function_vector_run(M, tok, &d, &o, &b, err) == SS_OK);
    CU_ASSERT(a.n_eval == 4 && a.n_heads == 2 && a.n_ex == 3);
    CU_ASSERT(a.zero_shot_acc >= 0 && a.zero_shot_acc <= 1 && a.patched_acc >= 0 && a.patched_acc <= 1);
    CU_ASSERT(tu_allclose("fv run is deterministic", a.vec, b.vec, (size_t)M->cfg.n_embd, 0, 0));
    fv_result_free(&a);
    fv_result_free(&b);
    CU_ASSERT_FATAL(fv_task_vector_run(M, tok, &d, &o, &a, err) == SS_OK);
    CU_ASSERT(a.n_ex == 3 && a.ex[0].steered != NULL);
    fv_result_free(&a);
    o.shots = d.n;
    CU_ASSERT(fv_task_vector_run(M, tok, &d, &o, &a, err) == SS_EINPUT);
    o.shots = 2;
    o.top_k = M->cfg.n_layer * M->cfg.n_head + 1;
    CU_ASSERT(fv_function_vector_run(M, tok, &d, &o, &a, err) == SS_EINPUT);
    o.top_k = 2;
    o.layer = M->cfg.n_layer;
    CU_ASSERT(fv_function_vector_run(M, tok, &d, &o, &a, err) == SS_EINPUT);
    fv_dataset_free(&d);
    tok_free(tok);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("fv", init_suite, clean_suite);
    CU_add_test(s, "mean z, CIE, top heads, FV, FV-steered logits vs HF", test_fv_pipeline);
    CU_add_test(s, "FV-steered greedy decoding vs HF recomputation", test_fv_greedy);
    CU_add_test(s, "task vector h and patched logits vs HF", test_task_vector);
    CU_add_test(s, "prompt text, dataset parser", test_dataset_and_prompts);
    CU_add_test(s, "templates and the item split", test_template_and_plan);
    CU_add_test(s, "task-vector and fv experiments run, deterministic", test_experiment_runs);
    return tu_run();
}
