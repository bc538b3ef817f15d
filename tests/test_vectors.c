/* test_vectors.c - contrastive vectors (mean, pca, ActAdd) against the HF
 * references of tests/make_fixtures_fv.py, the PCA on known answers, the
 * pairs-file parser, and the metrics (KL, log-prob, AFINN).
 * SS_FV_DIR / SS_FV_MODEL override the fixture folder and model (the script's
 * --dry-run output can be checked that way). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"
#include "vectors.h"

static gpt2_model *M;
static tokenizer *TOK;
static char DIR_[4096], MODEL[4096];

static const char *fvp(const char *rel) {
    static char buf[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", DIR_, rel);
    return buf[k];
}

static int init_suite(void) {
    const char *d = getenv("SS_FV_DIR"), *m = getenv("SS_FV_MODEL");
    snprintf(DIR_, sizeof DIR_, "%s", d && *d ? d : fx("fv"));
    snprintf(MODEL, sizeof MODEL, "%s", m && *m ? m : fx("tiny-sp"));
    char err[SS_ERRLEN], v[4200], mg[4200];
    if (gpt2_load(&M, MODEL, err)) { printf("  %s\n", err); return 1; }
    snprintf(v, sizeof v, "%s/vocab.json", MODEL);
    snprintf(mg, sizeof mg, "%s/merges.txt", MODEL);
    if (tok_load(&TOK, v, mg, err)) { printf("  %s\n", err); return 1; }
    return 0;
}

static int clean_suite(void) {
    gpt2_free(M);
    tok_free(TOK);
    return 0;
}

static void check_vec(const char *pairs_file, vec_method method, const char *ref) {
    char err[SS_ERRLEN];
    vec_pairs p;
    CU_ASSERT_FATAL(vec_pairs_load(&p, fvp(pairs_file), err) == SS_OK);
    float *v = NULL;
    int W = 0;
    int rc = vec_contrastive(M, TOK, "blocks.0.hook_resid_post", &p, 1, method, &v, &W, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_FATAL(rc == SS_OK);
    CU_ASSERT(W == M->cfg.n_embd);
    CU_ASSERT(tu_allclose_npy(ref, v, (size_t)W, fvp(ref), 2e-5f, 1e-4f));
    free(v);
    vec_pairs_free(&p);
}

static void test_mean4(void) { check_vec("pairs4.jsonl", VEC_MEAN, "vec_mean4.npy"); }
static void test_pca4(void) { check_vec("pairs4.jsonl", VEC_PCA, "vec_pca4.npy"); }
static void test_mean20(void) { check_vec("pairs20.jsonl", VEC_MEAN, "vec_mean20.npy"); }
static void test_pca20(void) { check_vec("pairs20.jsonl", VEC_PCA, "vec_pca20.npy"); }

/* the same hook by its other name gives the same vector */
static void test_hook_alias(void) {
    char err[SS_ERRLEN];
    vec_pairs p;
    CU_ASSERT_FATAL(vec_pairs_load(&p, fvp("pairs4.jsonl"), err) == SS_OK);
    float *a = NULL, *b = NULL;
    int W;
    CU_ASSERT_FATAL(vec_contrastive(M, TOK, "blocks.0.hook_resid_post", &p, 1, VEC_MEAN, &a, &W, err) == SS_OK);
    CU_ASSERT_FATAL(vec_contrastive(M, TOK, "blocks.1.hook_resid_pre", &p, 1, VEC_MEAN, &b, &W, err) == SS_OK);
    CU_ASSERT(tu_allclose("resid_post 0 == resid_pre 1", a, b, (size_t)W, 0, 0));
    free(a); free(b);
    vec_pairs_free(&p);
}

static void test_actadd(void) {
    char err[SS_ERRLEN];
    float *m = NULL;
    int P = 0, W = 0;
    int rc = vec_actadd(M, TOK, "blocks.0.hook_resid_post", "I love talking about weddings", "I hate", 1, &m, &P, &W, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_FATAL(rc == SS_OK);
    npy_array ref;
    CU_ASSERT_FATAL(npy_load(&ref, fvp("actadd.npy"), err) == SS_OK);
    CU_ASSERT(ref.ndim == 2 && ref.shape[0] == P && ref.shape[1] == W);
    CU_ASSERT(tu_allclose("actadd (P, C)", m, ref.data, (size_t)P * W, 2e-5f, 1e-4f));
    /* position 0 is BOS in both prompts: no difference there */
    CU_ASSERT(vec_norm(m, W) == 0.0f);
    npy_free(&ref);
    free(m);
}

/* PCA on differences with a known answer, through both Gram paths */
static void test_pca_known(void) {
    char err[SS_ERRLEN];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? 40 : 6, C = 8;
        float *D = calloc((size_t)n * C, sizeof(float)), v[8], mean[8];
        float u[8] = {0.5f, -0.5f, 0.5f, 0.5f, 0, 0, 0, 0};      /* unit */
        float w[8] = {0, 0, 0, 0, 0.6f, 0.8f, 0, 0};             /* unit, orthogonal */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < C; j++)                          /* big spread along u, small along w */
                D[i * C + j] = (float)(3.0 + (i / 2) % 3) * u[j] + (float)((i % 2) ? 0.3 : -0.3) * w[j];
        CU_ASSERT_FATAL(vec_pca(D, n, C, v, err) == SS_OK);
        vec_mean(D, n, C, mean);
        float nm = vec_norm(mean, C), want[8];
        for (int j = 0; j < C; j++) want[j] = u[j] * nm;
        CU_ASSERT(tu_allclose(pass ? "pca (C, C) Gram path" : "pca (n, n) Gram path", v, want, 8, 1e-5f, 1e-5f));
        /* orientation: flipping every difference flips the vector */
        for (int i = 0; i < n * C; i++) D[i] = -D[i];
        float v2[8];
        CU_ASSERT_FATAL(vec_pca(D, n, C, v2, err) == SS_OK);
        for (int j = 0; j < C; j++) v2[j] = -v2[j];
        CU_ASSERT(tu_allclose("pca orientation follows the positives", v2, want, 8, 1e-5f, 1e-5f));
        free(D);
    }
}

static void write_file(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
}

static void test_pairs_bad(void) {
    char err[SS_ERRLEN];
    vec_pairs p;
    const char *path = "/tmp/ss_test_pairs.jsonl";
    const char *bad[] = {
        "",                                             /* empty */
        "\n\n",                                         /* blank */
        "{\"positive\": \"a\"}\n",                      /* missing key */
        "{\"positive\": \"a\", \"negative\": 3}\n",     /* not a string */
        "not json\n",
        "[\"a\", \"b\"]\n",                             /* not an object */
        "{\"positive\": \"a\", \"negative\": \"b\"}\n{\"positive\": \"\xff\", \"negative\": \"b\"}\n", /* bad UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i], strlen(bad[i]));
        int rc = vec_pairs_load(&p, path, err);
        CU_ASSERT(rc == SS_EINPUT);
        CU_ASSERT(strstr(err, path) != NULL);
    }
    const char *good = "{\"positive\": \"a\", \"negative\": \"b\"}\r\n\n{\"negative\": \"d\", \"positive\": \"c\", \"x\": 1}";
    write_file(path, good, strlen(good));
    CU_ASSERT_FATAL(vec_pairs_load(&p, path, err) == SS_OK);
    CU_ASSERT(p.n == 2 && !strcmp(p.pos[1], "c") && !strcmp(p.neg[1], "d"));
    vec_pairs_free(&p);
    CU_ASSERT(vec_pairs_load(&p, "/nonexistent/pairs.jsonl", err) != SS_OK);
    /* a hook that does not exist */
    CU_ASSERT_FATAL(vec_pairs_one(&p, "a", "b", err) == SS_OK);
    float *v = NULL;
    int W;
    CU_ASSERT(vec_contrastive(M, TOK, "blocks.99.hook_resid_post", &p, 1, VEC_MEAN, &v, &W, err) == SS_EINPUT);
    CU_ASSERT(vec_contrastive(M, TOK, "blocks.0.attn.hook_pattern", &p, 1, VEC_MEAN, &v, &W, err) == SS_EINPUT);
    vec_pairs_free(&p);
    CU_ASSERT_FATAL(vec_pairs_one(&p, "", "b", err) == SS_OK);
    CU_ASSERT(vec_contrastive(M, TOK, "blocks.0.hook_resid_post", &p, 0, VEC_MEAN, &v, &W, err) == SS_EINPUT);
    vec_pairs_free(&p);
}

static void test_metrics(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {4, 3, 2, 1};
    CU_ASSERT(fabs(met_kl_logits(a, b, 4, NULL)) < 1e-12);
    /* KL by hand */
    double pa[4], pc[4], za = 0, zc = 0, kl = 0;
    for (int i = 0; i < 4; i++) { za += exp(a[i]); zc += exp(c[i]); }
    for (int i = 0; i < 4; i++) { pa[i] = exp(a[i]) / za; pc[i] = exp(c[i]) / zc; }
    for (int i = 0; i < 4; i++) kl += pa[i] * log(pa[i] / pc[i]);
    CU_ASSERT(fabs(met_kl_logits(a, c, 4, NULL) - kl) < 1e-9);
    CU_ASSERT(fabs(met_logprob(a, 4, 2) - log(pa[2])) < 1e-9);
    /* AFINN: words, case, phrases first, punctuation */
    const char *lex = "# test lexicon\ngood\t3\nbad\t-3\nnot good\t-2\ncool stuff\t3\ncan't stand\t-3\n";
    write_file("/tmp/ss_test_afinn.tsv", lex, strlen(lex));
    char err[SS_ERRLEN];
    met_afinn *af = NULL;
    CU_ASSERT_FATAL(met_afinn_load(&af, "/tmp/ss_test_afinn.tsv", err) == SS_OK);
    CU_ASSERT(met_afinn_size(af) == 5);
    int hits;
    CU_ASSERT(met_afinn_score(af, "Good, GOOD and bad.", &hits) == 3.0 && hits == 3);
    CU_ASSERT(met_afinn_score(af, "this is not good", &hits) == -2.0 && hits == 1);
    CU_ASSERT(met_afinn_score(af, "Cool stuff! I can't stand it", &hits) == 0.0 && hits == 2);
    CU_ASSERT(met_afinn_score(af, "goodness", &hits) == 0.0 && hits == 0);
    met_afinn_free(af);
    write_file("/tmp/ss_test_afinn.tsv", "good 3\n", 7);
    CU_ASSERT(met_afinn_load(&af, "/tmp/ss_test_afinn.tsv", err) == SS_EINPUT);
    /* the shipped lexicon loads and knows its words */
    const char *shipped = SAESTEER_HOME "/weights/datasets/afinn-111.tsv";
    if (met_afinn_load(&af, shipped, err) == SS_OK) {
        CU_ASSERT(met_afinn_size(af) == 2477);
        CU_ASSERT(met_afinn_score(af, "What a wonderful, superb day", NULL) == 4 + 5);
        met_afinn_free(af);
    } else {
        printf("  %s\n", err);
        CU_FAIL("shipped AFINN lexicon missing");
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("vectors", init_suite, clean_suite);
    CU_add_test(s, "mean difference, 4 pairs vs HF", test_mean4);
    CU_add_test(s, "pca, 4 pairs vs HF (n < C)", test_pca4);
    CU_add_test(s, "mean difference, 20 pairs vs HF", test_mean20);
    CU_add_test(s, "pca, 20 pairs vs HF (n >= C)", test_pca20);
    CU_add_test(s, "resid_post L == resid_pre L+1", test_hook_alias);
    CU_add_test(s, "ActAdd matrix vs HF (padded with \" \")", test_actadd);
    CU_add_test(s, "pca on known answers, both Gram paths", test_pca_known);
    CU_add_test(s, "pairs files: bad input", test_pairs_bad);
    CU_add_test(s, "KL, log-prob, AFINN", test_metrics);
    return tu_run();
}
