/* test_gguf.c - llama.cpp control vectors: write/read round trip, the exact
 * byte layout of the GGUF v3 spec, a file written by llama.cpp's gguf-py (when
 * the fixture script found it), hostile files, and the steering semantics
 * (direction.N == a vector added at blocks.N.hook_resid_post == at
 * blocks.N+1.hook_resid_pre, every position). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "testutil.h"

#define TMP "/tmp/ss_test_cvec.gguf"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long L = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)L + 1);
    *n = fread(b, 1, (size_t)L, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static void test_round_trip(void) {
    char err[SS_ERRLEN];
    int layers[3] = {5, 1, 3};
    float data[3 * 7];
    for (int i = 0; i < 21; i++) data[i] = (float)i * 0.25f - 2.0f;
    gguf_cvec cv = {7, 3, layers, data, "gpt2", 3};
    CU_ASSERT_FATAL(gguf_cvec_write(TMP, &cv, err) == SS_OK);
    gguf_cvec r;
    CU_ASSERT_FATAL(gguf_cvec_read(&r, TMP, err) == SS_OK);
    CU_ASSERT(r.n_embd == 7 && r.n_dirs == 3 && r.layer_count == 3 && !strcmp(r.model_hint, "gpt2"));
    CU_ASSERT(r.layer[0] == 1 && r.layer[1] == 3 && r.layer[2] == 5);   /* sorted by layer */
    CU_ASSERT(tu_allclose("direction.1", r.data, data + 7, 7, 0, 0));
    CU_ASSERT(tu_allclose("direction.3", r.data + 7, data + 14, 7, 0, 0));
    CU_ASSERT(tu_allclose("direction.5", r.data + 14, data, 7, 0, 0));
    gguf_cvec_free(&r);
    CU_ASSERT(gguf_is_gguf(TMP));
    /* refused on write: layer 0, duplicates */
    int l0[1] = {0}, dup[2] = {2, 2};
    gguf_cvec bad = {7, 1, l0, data, "gpt2", 1};
    CU_ASSERT(gguf_cvec_write("/tmp/ss_test_cvec_bad.gguf", &bad, err) == SS_EINPUT);
    bad.layer = dup;
    bad.n_dirs = 2;
    CU_ASSERT(gguf_cvec_write("/tmp/ss_test_cvec_bad.gguf", &bad, err) == SS_EINPUT);
}

/* Byte for byte what the GGUF v3 spec and llama.cpp's writer produce. */
static void test_byte_layout(void) {
    char err[SS_ERRLEN];
    int layer = 2;
    float v[3] = {1.0f, -2.0f, 0.5f};
    gguf_cvec cv = {3, 1, &layer, v, "gpt2", 1};
    CU_ASSERT_FATAL(gguf_cvec_write(TMP, &cv, err) == SS_OK);
    unsigned char want[512];
    size_t n = 0;
#define U32(x) do { uint32_t _v = (x); for (int _i = 0; _i < 4; _i++) want[n++] = (_v >> (8 * _i)) & 0xff; } while (0)
#define U64(x) do { uint64_t _v = (x); for (int _i = 0; _i < 8; _i++) want[n++] = (_v >> (8 * _i)) & 0xff; } while (0)
#define STR(s) do { U64(strlen(s)); memcpy(want + n, s, strlen(s)); n += strlen(s); } while (0)
    memcpy(want, "GGUF", 4); n = 4;
    U32(3);                    /* version */
    U64(1);                    /* tensor_count */
    U64(3);                    /* metadata_kv_count */
    STR("general.architecture"); U32(8); STR("controlvector");
    STR("controlvector.model_hint"); U32(8); STR("gpt2");
    STR("controlvector.layer_count"); U32(5); U32(1);       /* GGUF_TYPE_INT32 */
    STR("direction.2"); U32(1); U64(3); U32(0); U64(0);    /* n_dims, ne[0], GGML_TYPE_F32, offset */
    while (n % 32) want[n++] = 0;                          /* general.alignment default 32 */
    memcpy(want + n, v, 12); n += 12;                      /* little-endian f32 */
    while (n % 32) want[n++] = 0;                          /* tensor data padded too */
    size_t got_n;
    unsigned char *got = slurp(TMP, &got_n);
    CU_ASSERT_FATAL(got != NULL);
    printf("  file %zu bytes, spec layout %zu bytes\n", got_n, n);
    CU_ASSERT(got_n == n && memcmp(got, want, n) == 0);
    free(got);
#undef U32
#undef U64
#undef STR
}

/* a control vector written by llama.cpp's own gguf-py (fixture; made where the
   `gguf` package exists) */
static void test_gguf_py(void) {
    if (!fx_exists("fv/gguf_py.gguf")) {
        printf("  (no fv/gguf_py.gguf: the fixture machine had no gguf-py; skipped)\n");
        return;
    }
    char err[SS_ERRLEN];
    gguf_cvec r;
    int rc = gguf_cvec_read(&r, fx("fv/gguf_py.gguf"), err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_FATAL(rc == SS_OK);
    CU_ASSERT(r.n_dirs == 1 && r.layer[0] == 1 && !strcmp(r.model_hint, "gpt2"));
    CU_ASSERT(tu_allclose_npy("gguf-py direction.1", r.data, (size_t)r.n_embd, fx("fv/gguf_py.npy"), 0, 0));
    gguf_cvec_free(&r);
}

static void test_hostile(void) {
    char err[SS_ERRLEN];
    int layer = 2;
    float v[4] = {1, 2, 3, 4};
    gguf_cvec cv = {4, 1, &layer, v, "gpt2", 1};
    CU_ASSERT_FATAL(gguf_cvec_write(TMP, &cv, err) == SS_OK);
    size_t n = 0;
    unsigned char *good = slurp(TMP, &n), *b = malloc(n + 64);
    gguf_cvec r;
    const char *bad = "/tmp/ss_test_cvec_hostile.gguf";
    /* every truncation */
    for (size_t cut = 0; cut < n; cut += (cut < 200 ? 1 : 7)) {
        spit(bad, good, cut);
        int rc = gguf_cvec_read(&r, bad, err);
        CU_ASSERT(rc == SS_EINPUT);
        if (rc == SS_OK) { printf("  truncated at %zu accepted\n", cut); gguf_cvec_free(&r); break; }
    }
    /* find the tensor info: the name "direction.2" */
    size_t at = 0;
    for (size_t i = 0; i + 11 <= n; i++) if (!memcmp(good + i, "direction.2", 11)) { at = i; break; }
    CU_ASSERT_FATAL(at > 0);
    size_t type_at = at + 11 + 4 + 8, off_at = type_at + 4;
    struct { const char *what; size_t pos; unsigned char val; } edits[] = {
        {"bad magic", 0, 'X'},
        {"version 9", 4, 9},
        {"direction.0", at + 10, '0'},
        {"F16 tensor", type_at, 1},
        {"2-D tensor", at + 11, 2},
        {"offset past the end", off_at + 1, 0x40},
        {"misaligned offset", off_at, 4},
        {"absurd name length", at - 8 + 5, 0x7f},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(b, good, n);
        b[edits[e].pos] = edits[e].val;
        spit(bad, b, n);
        int rc = gguf_cvec_read(&r, bad, err);
        if (rc != SS_EINPUT) printf("  %s: accepted\n", edits[e].what);
        else printf("  %-20s -> %s\n", edits[e].what, err);
        CU_ASSERT(rc == SS_EINPUT);
        if (rc == SS_OK) gguf_cvec_free(&r);
    }
    CU_ASSERT(gguf_cvec_read(&r, "/nonexistent.gguf", err) != SS_OK);
    /* two directions of different widths */
    int l2[2] = {1, 2};
    float w[8] = {0};
    gguf_cvec two = {4, 2, l2, w, "gpt2", 2};
    CU_ASSERT_FATAL(gguf_cvec_write(TMP, &two, err) == SS_OK);
    free(good);
    good = slurp(TMP, &n);
    for (size_t i = 0; i + 11 <= n; i++)
        if (!memcmp(good + i, "direction.2", 11)) { good[i + 11 + 4] = 3; break; }  /* ne[0] = 3 */
    spit(bad, good, n);
    CU_ASSERT(gguf_cvec_read(&r, bad, err) == SS_EINPUT);
    free(good);
    free(b);
}

/* direction.N added by llama.cpp's rule == steering at blocks.N.hook_resid_post
   == at blocks.N+1.hook_resid_pre; and the model must know the layer */
static void test_semantics(void) {
    char err[SS_ERRLEN];
    gpt2_model *m;
    const char *mp = getenv("SS_FV_MODEL");
    CU_ASSERT_FATAL(gpt2_load(&m, mp && *mp ? mp : fx("tiny-sp"), err) == SS_OK);
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, L = m->cfg.n_layer;
    CU_ASSERT_FATAL(L >= 2);
    float *v = malloc((size_t)C * sizeof(float));
    for (int j = 0; j < C; j++) v[j] = (float)((j * 7) % 5) - 2.0f;
    int layer = 1;
    gguf_cvec cv = {C, 1, &layer, v, "gpt2", 1};
    CU_ASSERT_FATAL(gguf_cvec_write(TMP, &cv, err) == SS_OK);
    gguf_cvec r;
    CU_ASSERT_FATAL(gguf_cvec_read(&r, TMP, err) == SS_OK);
    int ids[5] = {50256, 464, 3290, 318, 257};
    float *a = malloc((size_t)5 * V * sizeof(float)), *b = malloc((size_t)5 * V * sizeof(float));
    gpt2_state *s;
    CU_ASSERT_FATAL(gpt2_state_build(&s, m, 8, err) == SS_OK);
    steer_add adds[1];
    CU_ASSERT_FATAL(gguf_cvec_attach(&r, s, 0.5f, adds, err) == SS_OK);
    CU_ASSERT_FATAL(gpt2_forward(s, ids, 5, a, 1, err) == SS_OK);
    gpt2_clear_hooks(s);
    gpt2_state_reset(s);
    char name[64];
    gguf_cvec_hook(1, name, sizeof name);
    CU_ASSERT(!strcmp(name, "blocks.1.hook_resid_post"));
    gpt2_hook_point hp;
    if (L > 2) {
        CU_ASSERT_FATAL(gpt2_hook_parse(&m->cfg, "blocks.2.hook_resid_pre", &hp, err) == SS_OK);
    } else {
        CU_ASSERT_FATAL(gpt2_hook_parse(&m->cfg, "blocks.1.hook_resid_post", &hp, err) == SS_OK);
    }
    steer_add add = {v, 1, C, 0.5f, {POS_ALL, 0, {0}}};
    CU_ASSERT_FATAL(gpt2_add_hook(s, &hp, steer_add_hook, &add, 0, err) == SS_OK);
    CU_ASSERT_FATAL(gpt2_forward(s, ids, 5, b, 1, err) == SS_OK);
    CU_ASSERT(tu_allclose("direction.1 == +v at the output of block 1", a, b, (size_t)5 * V, 1e-5f, 1e-5f));
    gpt2_clear_hooks(s);
    /* a direction past the last block, or of the wrong width */
    r.layer[0] = L;
    CU_ASSERT(gguf_cvec_attach(&r, s, 1.0f, adds, err) == SS_EINPUT);
    r.layer[0] = 1;
    r.n_embd = C + 1;
    CU_ASSERT(gguf_cvec_attach(&r, s, 1.0f, adds, err) == SS_EINPUT);
    r.n_embd = C;
    gguf_cvec_free(&r);
    gpt2_state_free(s);
    gpt2_free(m);
    free(v); free(a); free(b);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("gguf", NULL, NULL);
    CU_add_test(s, "write/read round trip", test_round_trip);
    CU_add_test(s, "byte layout == GGUF v3 spec", test_byte_layout);
    CU_add_test(s, "reads a file written by llama.cpp's gguf-py", test_gguf_py);
    CU_add_test(s, "hostile files", test_hostile);
    CU_add_test(s, "direction.N steers blocks.N.hook_resid_post", test_semantics);
    return tu_run();
}
