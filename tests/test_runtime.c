/* test_runtime.c - the GPT-2 runtime on checkpoints the test writes itself:
 * KV-cache decode vs full recomputation, F16/BF16/sharded/unprefixed layouts
 * vs the F32 original, forged safetensors, npy/npz round trips, sampling,
 * hook names, positions and centring. (HF comparisons are in test_gpt2.c.) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "generate.h"
#include "gpt2.h"
#include "npy.h"
#include "safetensors.h"
#include "sample.h"
#include "steer.h"
#include "testutil.h"

/* tiny config: V=64 tokens, C=16, 2 heads, 2 layers, 32 positions */
enum { V = 64, C = 16, NH = 2, L = 2, P = 32 };

typedef struct { char name[64]; int nd; int64_t shape[2]; float *data; } tensor;
static tensor g_t[64];
static int g_nt;
static char g_dir[256];

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* values on a coarse grid so that F16 and BF16 hold them exactly */
static void add_tensor(const char *name, int nd, int64_t d0, int64_t d1, float base, float amp) {
    tensor *t = &g_t[g_nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->nd = nd; t->shape[0] = d0; t->shape[1] = d1;
    int64_t n = nd == 1 ? d0 : d0 * d1;
    t->data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) t->data[i] = base + roundf(frand() * amp * 64.0f) / 64.0f;
}

static void build_weights(void) {
    if (g_nt) return;
    add_tensor("wte.weight", 2, V, C, 0, 0.5f);
    add_tensor("wpe.weight", 2, P, C, 0, 0.25f);
    char n[64];
    for (int l = 0; l < L; l++) {
#define T(suf, nd, a, b, base, amp) snprintf(n, sizeof n, "h.%d.%s", l, suf); add_tensor(n, nd, a, b, base, amp)
        T("ln_1.weight", 1, C, 0, 1, 0.25f); T("ln_1.bias", 1, C, 0, 0, 0.25f);
        T("attn.c_attn.weight", 2, C, 3 * C, 0, 0.5f); T("attn.c_attn.bias", 1, 3 * C, 0, 0, 0.25f);
        T("attn.c_proj.weight", 2, C, C, 0, 0.5f); T("attn.c_proj.bias", 1, C, 0, 0, 0.25f);
        T("ln_2.weight", 1, C, 0, 1, 0.25f); T("ln_2.bias", 1, C, 0, 0, 0.25f);
        T("mlp.c_fc.weight", 2, C, 4 * C, 0, 0.5f); T("mlp.c_fc.bias", 1, 4 * C, 0, 0, 0.25f);
        T("mlp.c_proj.weight", 2, 4 * C, C, 0, 0.5f); T("mlp.c_proj.bias", 1, C, 0, 0, 0.25f);
#undef T
    }
    add_tensor("ln_f.weight", 1, C, 0, 1, 0.25f);
    add_tensor("ln_f.bias", 1, C, 0, 0, 0.25f);
}

static uint16_t to_f16(float f) { /* exact for our grid values */
    uint32_t b; memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000; int e = (int)((b >> 23) & 0xFF) - 127 + 15; uint32_t m = b & 0x7FFFFF;
    if ((b & 0x7FFFFFFF) == 0) return (uint16_t)sign;
    if (e <= 0) { m |= 0x800000; return (uint16_t)(sign | (m >> (14 - e))); }
    return (uint16_t)(sign | (uint32_t)e << 10 | (m >> 13));
}

/* Write tensors [from, to) to a safetensors file: dtype "F32"/"F16"/"BF16";
   prefix "" or "transformer."; extra_bias adds h.N.attn.bias buffers. */
static void write_st(const char *path, const char *dtype, const char *prefix, int from, int to, int extra_bias) {
    size_t es = strcmp(dtype, "F32") ? 2 : 4;
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (int i = from; i < to; i++) {
        tensor *t = &g_t[i];
        char nm[128];
        snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
        cJSON *e = cJSON_AddObjectToObject(h, nm);
        cJSON_AddStringToObject(e, "dtype", dtype);
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->nd; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)t->shape[d]));
        int64_t n = t->nd == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += (size_t)n * es;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    if (extra_bias)
        for (int l = 0; l < L; l++) {
            char nm[128];
            snprintf(nm, sizeof nm, "%sh.%d.attn.bias", prefix, l);
            cJSON *e = cJSON_AddObjectToObject(h, nm);
            cJSON_AddStringToObject(e, "dtype", "U8");
            cJSON *s = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < 4; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber(d < 2 ? 1 : P));
            cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
            cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
            off += P * P;
            cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        }
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    char *js = cJSON_PrintUnformatted(h);
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    FILE *f = fopen(path, "wb");
    uint64_t hlen = hl + pad;
    fwrite(&hlen, 8, 1, f);
    fwrite(js, 1, hl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    for (int i = from; i < to; i++) {
        tensor *t = &g_t[i];
        int64_t n = t->nd == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
        for (int64_t k = 0; k < n; k++) {
            if (es == 4) fwrite(&t->data[k], 4, 1, f);
            else if (!strcmp(dtype, "F16")) { uint16_t v = to_f16(t->data[k]); fwrite(&v, 2, 1, f); }
            else { uint32_t b; memcpy(&b, &t->data[k], 4); uint16_t v = (uint16_t)(b >> 16); fwrite(&v, 2, 1, f); }
        }
    }
    if (extra_bias)
        for (int l = 0; l < L; l++)
            for (int i = 0; i < P * P; i++) fputc((i % P) <= (i / P), f);
    fclose(f);
    free(js);
    cJSON_Delete(h);
}

static void write_config(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"model_type\": \"gpt2\", \"n_layer\": %d, \"n_head\": %d, \"n_embd\": %d, \"n_positions\": %d, "
               "\"n_ctx\": %d, \"vocab_size\": %d, \"layer_norm_epsilon\": 1e-05, \"activation_function\": \"gelu_new\", "
               "\"bos_token_id\": %d, \"eos_token_id\": %d, \"n_inner\": null}\n", L, NH, C, P, P, V, V - 1, V - 1);
    fclose(f);
}

/* Make a model directory variant and return its path. */
static const char *make_model(const char *variant) {
    build_weights();
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/saesteer_rt_XXXXXX");
        if (!mkdtemp(g_dir)) return NULL;
    }
    static char d[512];
    snprintf(d, sizeof d, "%s/%s", g_dir, variant);
    mkdir(d, 0755);
    write_config(d);
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    if (!strcmp(variant, "f32")) write_st(p, "F32", "transformer.", 0, g_nt, 0);
    else if (!strcmp(variant, "f16")) write_st(p, "F16", "", 0, g_nt, 1);
    else if (!strcmp(variant, "bf16")) write_st(p, "BF16", "transformer.", 0, g_nt, 0);
    else if (!strcmp(variant, "sharded")) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/model-00001-of-00002.safetensors", d);
        snprintf(b, sizeof b, "%s/model-00002-of-00002.safetensors", d);
        write_st(a, "F32", "", 0, g_nt / 2, 1);
        write_st(b, "F32", "", g_nt / 2, g_nt, 0);
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
        FILE *f = fopen(p, "w");
        fprintf(f, "{\"metadata\": {}, \"weight_map\": {");
        for (int i = 0; i < g_nt; i++)
            fprintf(f, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", g_t[i].name, i < g_nt / 2 ? 1 : 2);
        fprintf(f, "}}\n");
        fclose(f);
    }
    return d;
}

static const int TOKS[] = {63, 5, 17, 42, 8, 8, 30, 1, 55, 12};
#define NT (int)(sizeof TOKS / sizeof TOKS[0])

static float *run_logits(const char *dir) {
    char err[SS_ERRLEN];
    gpt2_model *m;
    gpt2_state *s;
    if (gpt2_load(&m, dir, err)) { printf("  %s\n", err); return NULL; }
    if (gpt2_state_build(&s, m, 0, err)) { gpt2_free(m); return NULL; }
    float *lg = malloc(sizeof(float) * NT * V);
    int rc = gpt2_forward(s, TOKS, NT, lg, 1, err);
    gpt2_state_free(s);
    gpt2_free(m);
    if (rc) { free(lg); return NULL; }
    return lg;
}

static void test_layouts_agree(void) {
    float *ref = run_logits(make_model("f32"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    const char *variants[] = {"f16", "bf16", "sharded"};
    for (int i = 0; i < 3; i++) {
        float *lg = run_logits(make_model(variants[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(lg);
        char nm[64];
        snprintf(nm, sizeof nm, "logits %s vs f32", variants[i]);
        CU_ASSERT(tu_allclose(nm, lg, ref, NT * V, 1e-6f, 0));
        free(lg);
    }
    free(ref);
}

/* Feeding tokens one at a time through the KV cache gives the logits of the
   full recomputation at every position. */
static void test_kv_cache(void) {
    char err[SS_ERRLEN];
    gpt2_model *m;
    gpt2_state *s;
    CU_ASSERT_FATAL(gpt2_load(&m, make_model("f32"), err) == SS_OK);
    CU_ASSERT_FATAL(gpt2_state_build(&s, m, 0, err) == SS_OK);
    float full[NT * V], step[NT * V];
    CU_ASSERT(gpt2_forward(s, TOKS, NT, full, 1, err) == SS_OK);
    gpt2_state_reset(s);
    CU_ASSERT(gpt2_forward(s, TOKS, 3, step, 1, err) == SS_OK);   /* a 3-token prefill, then steps */
    for (int t = 3; t < NT; t++) CU_ASSERT(gpt2_forward(s, &TOKS[t], 1, step + t * V, 0, err) == SS_OK);
    CU_ASSERT(tu_allclose("kv-cache decode vs full", step, full, NT * V, 1e-5f, 1e-5f));
    /* the last-position-only path equals the last row */
    float last[V];
    gpt2_state_reset(s);
    CU_ASSERT(gpt2_forward(s, TOKS, NT, last, 0, err) == SS_OK);
    CU_ASSERT(tu_allclose("last-only logits", last, full + (NT - 1) * V, V, 1e-6f, 0));
    /* beyond the context and outside the vocabulary */
    int bad = V;
    gpt2_state_reset(s);
    CU_ASSERT(gpt2_forward(s, &bad, 1, last, 0, err) == SS_EINPUT);
    s->pos = P;
    CU_ASSERT(gpt2_forward(s, TOKS, 1, last, 0, err) == SS_EINPUT);
    printf("  context overflow: %s\n", err);
    gpt2_state_free(s);
    gpt2_free(m);
}

typedef struct { float *buf; int width; } grab_ctx;
static int grab(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    grab_ctx *g = ctx;
    memcpy(g->buf + (size_t)pos0 * width, act, sizeof(float) * T * width);
    return SS_OK;
}

/* Centred hooks see x - mean(x); adding a vector at all positions through a
   centred hook changes the logits exactly like an uncentred add of the same
   vector minus its mean (LayerNorm ignores the mean). Early stop gives the
   same activation as the full run. */
static void test_hooks_center_stop(void) {
    char err[SS_ERRLEN];
    gpt2_model *m;
    gpt2_state *s;
    CU_ASSERT_FATAL(gpt2_load(&m, make_model("f32"), err) == SS_OK);
    CU_ASSERT_FATAL(gpt2_state_build(&s, m, 0, err) == SS_OK);
    gpt2_hook_point hp;
    CU_ASSERT(gpt2_hook_parse(&m->cfg, "blocks.1.hook_resid_pre", &hp, err) == SS_OK);
    CU_ASSERT(gpt2_hook_parse(&m->cfg, "blocks.2.hook_resid_pre", &hp, err) == SS_EINPUT);
    CU_ASSERT(gpt2_hook_parse(&m->cfg, "blocks.1.hook_resid", &hp, err) == SS_EINPUT);
    CU_ASSERT(gpt2_hook_parse(&m->cfg, "blocks.-1.hook_resid_pre", &hp, err) == SS_EINPUT);
    const char *names[] = {"hook_embed", "hook_pos_embed", "blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern",
                           "blocks.0.mlp.hook_post", "blocks.1.hook_mlp_out", "ln_final.hook_normalized"};
    for (int i = 0; i < 7; i++) {
        char back[128];
        CU_ASSERT(gpt2_hook_parse(&m->cfg, names[i], &hp, err) == SS_OK);
        gpt2_hook_name(&hp, back, sizeof back);
        CU_ASSERT_STRING_EQUAL(back, names[i]);
    }
    gpt2_hook_parse(&m->cfg, "blocks.1.hook_resid_pre", &hp, err);
    float raw[NT * C], cen[NT * C], early[NT * C];
    grab_ctx g1 = {raw, C}, g2 = {cen, C}, g3 = {early, C};
    gpt2_add_hook(s, &hp, grab, &g1, 0, err);
    gpt2_add_hook(s, &hp, grab, &g2, 1, err);
    CU_ASSERT(gpt2_forward(s, TOKS, NT, NULL, 0, err) == SS_OK);
    for (int t = 0; t < NT; t++) {
        float mu = 0;
        for (int j = 0; j < C; j++) mu += raw[t * C + j];
        mu /= C;
        for (int j = 0; j < C; j++) raw[t * C + j] -= mu;
    }
    CU_ASSERT(tu_allclose("centred hook = x - mean", cen, raw, NT * C, 1e-6f, 0));
    gpt2_clear_hooks(s);
    gpt2_add_hook(s, &hp, grab, &g3, 1, err);
    gpt2_stop_after_hooks(s);
    CU_ASSERT(s->stop_layer == 1);
    gpt2_state_reset(s);
    CU_ASSERT(gpt2_forward(s, TOKS, NT, NULL, 0, err) == SS_OK);
    CU_ASSERT(tu_allclose("early stop activation", early, cen, NT * C, 0, 0));
    gpt2_state_free(s);
    gpt2_free(m);
}

/* steer_add: 1-D at chosen positions, "last" = last position of each call,
   2-D adds row p at position p once. */
static void test_steer_positions(void) {
    char err[SS_ERRLEN];
    steer_positions p;
    CU_ASSERT(steer_positions_parse("all", &p, err) == SS_OK && p.mode == POS_ALL);
    CU_ASSERT(steer_positions_parse("last", &p, err) == SS_OK && p.mode == POS_LAST);
    CU_ASSERT(steer_positions_parse("0,3,5", &p, err) == SS_OK && p.n == 3 && p.list[2] == 5);
    CU_ASSERT(steer_positions_parse("1,,2", &p, err) == SS_EINPUT);
    CU_ASSERT(steer_positions_parse("1,", &p, err) == SS_EINPUT);
    CU_ASSERT(steer_positions_parse("-1", &p, err) == SS_EINPUT);
    CU_ASSERT(steer_positions_parse("first", &p, err) == SS_EINPUT);
    float act[4 * 2] = {0}, v[2] = {1, 2}, mat[3 * 2] = {1, 1, 2, 2, 3, 3};
    steer_add a = {v, 1, 2, 10.0f, {0}};
    steer_positions_parse("last", &a.pos, err);
    gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, 0};
    CU_ASSERT(steer_add_hook(&a, &hp, act, 4, 2, 0, err) == SS_OK);
    float want1[8] = {0, 0, 0, 0, 0, 0, 10, 20};
    CU_ASSERT(tu_allclose("add at last", act, want1, 8, 0, 0));
    memset(act, 0, sizeof act);
    steer_add b = {mat, 3, 2, 1.0f, {0}};
    CU_ASSERT(steer_add_hook(&b, &hp, act, 2, 2, 2, err) == SS_OK);  /* positions 2,3 */
    float want2[8] = {3, 3, 0, 0, 0, 0, 0, 0};
    CU_ASSERT(tu_allclose("matrix row p at position p", act, want2, 8, 0, 0));
    CU_ASSERT(steer_add_hook(&b, &hp, act, 2, 3, 0, err) == SS_EINPUT);
}

/* Forged files: every one is SS_EINPUT with the file named. */
static void write_raw(const char *path, const void *hdr, size_t hl, uint64_t claimed, size_t data) {
    FILE *f = fopen(path, "wb");
    fwrite(&claimed, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (size_t i = 0; i < data; i++) fputc(0, f);
    fclose(f);
}

static void test_forged_safetensors(void) {
    char err[SS_ERRLEN], p[600];
    make_model("f32");
    snprintf(p, sizeof p, "%s/forged.safetensors", g_dir);
    st_file f;
    struct { const char *what, *hdr; long claimed_delta; size_t data; } cases[] = {
        {"header length past EOF", "{}", 1000, 0},
        {"header not JSON", "{\"a\": [1,", 0, 0},
        {"offsets past EOF", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8},
        {"offsets disagree with shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 0, 16},
        {"unknown dtype", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 16},
        {"negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 0, 16},
        {"huge shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 0, 16},
        {"reversed offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 0, 16},
        {"missing data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", 0, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t hl = strlen(cases[i].hdr);
        write_raw(p, cases[i].hdr, hl, (uint64_t)((long)hl + cases[i].claimed_delta), cases[i].data);
        int rc = st_open(&f, p, err);
        printf("  %-28s -> %s\n", cases[i].what, rc ? err : "ACCEPTED");
        CU_ASSERT(rc == SS_EINPUT);
        CU_ASSERT(strstr(err, "forged.safetensors") != NULL);
    }
    FILE *fp = fopen(p, "wb");
    fputs("abc", fp);
    fclose(fp);
    CU_ASSERT(st_open(&f, p, err) == SS_EINPUT);
    /* a model dir whose weights miss a tensor / have a wrong shape / bad config */
    char d[600], q[700];
    snprintf(d, sizeof d, "%s/broken", g_dir);
    mkdir(d, 0755);
    write_config(d);
    snprintf(q, sizeof q, "%s/model.safetensors", d);
    write_st(q, "F32", "", 0, g_nt - 1, 0);   /* ln_f.bias missing */
    gpt2_model *m;
    CU_ASSERT(gpt2_load(&m, d, err) == SS_EINPUT);
    printf("  missing tensor -> %s\n", err);
    CU_ASSERT(strstr(err, "ln_f.bias") != NULL);
    snprintf(q, sizeof q, "%s/config.json", d);
    fp = fopen(q, "w");
    fprintf(fp, "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 3, \"n_embd\": 16, \"n_positions\": 32, \"vocab_size\": 64}");
    fclose(fp);
    CU_ASSERT(gpt2_load(&m, d, err) == SS_EINPUT);
    printf("  bad config -> %s\n", err);
    fp = fopen(q, "w");
    fprintf(fp, "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 16, \"n_positions\": 32, \"vocab_size\": 65}");
    fclose(fp);
    snprintf(q, sizeof q, "%s/model.safetensors", d);
    write_st(q, "F32", "", 0, g_nt, 0);
    CU_ASSERT(gpt2_load(&m, d, err) == SS_EINPUT);
    printf("  shape vs config -> %s\n", err);
    CU_ASSERT(strstr(err, "wte.weight") != NULL);
}

static void test_npy_npz(void) {
    char err[SS_ERRLEN], p[600], z[600];
    make_model("f32");
    snprintf(p, sizeof p, "%s/a.npy", g_dir);
    snprintf(z, sizeof z, "%s/a.npz", g_dir);
    float data[6] = {1, -2, 3.5f, 4, 5, 6e-3f};
    int64_t sh[2] = {2, 3}, sh1[1] = {6};
    CU_ASSERT(npy_save(p, data, 2, sh, err) == SS_OK);
    npy_array a;
    CU_ASSERT(npy_load(&a, p, err) == SS_OK);
    CU_ASSERT(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    CU_ASSERT(tu_allclose("npy round trip", a.data, data, 6, 0, 0));
    npy_free(&a);
    npz_entry e[2] = {{"blocks.0.hook_resid_pre", data, 2, {2, 3}}, {"x", data, 1, {6}}};
    (void)sh1;
    CU_ASSERT(npz_save(z, e, 2, err) == SS_OK);
    CU_ASSERT(npz_load(&a, z, "x", err) == SS_OK && a.ndim == 1 && a.shape[0] == 6);
    npy_free(&a);
    CU_ASSERT(npz_load(&a, z, "blocks.0.hook_resid_pre", err) == SS_OK && a.numel == 6);
    npy_free(&a);
    CU_ASSERT(npz_load(&a, z, "nope", err) == SS_EINPUT);
    /* a failed save leaves an existing file alone; a missing directory is bad input */
    CU_ASSERT(npy_save("/nonexistent-dir/x.npy", data, 2, sh, err) == SS_EINPUT);
    FILE *f = fopen(p, "r+b");
    fseek(f, 20, SEEK_SET);
    fputs("XXXX", f);
    fclose(f);
    truncate(p, 60);
    CU_ASSERT(npy_load(&a, p, err) == SS_EINPUT);
}

static void test_sampler(void) {
    char err[SS_ERRLEN];
    sampler_params sp;
    sampler_params_default(&sp);
    sampler *s;
    float base[V];
    for (int i = 0; i < V; i++) base[i] = frand() * 3;
    base[17] = 9;
    float lg[V];
    sp.temperature = 0;
    CU_ASSERT(sampler_build(&s, V, &sp, err) == SS_OK);
    memcpy(lg, base, sizeof lg);
    CU_ASSERT(sampler_sample(s, lg) == 17);
    sampler_free(s);
    sp.temperature = 1; sp.top_k = 1;
    sampler_build(&s, V, &sp, err);
    memcpy(lg, base, sizeof lg);
    CU_ASSERT(sampler_sample(s, lg) == 17);
    sampler_free(s);
    sp.top_k = 0; sp.top_p = 1e-4f;
    sampler_build(&s, V, &sp, err);
    memcpy(lg, base, sizeof lg);
    CU_ASSERT(sampler_sample(s, lg) == 17);
    sampler_free(s);
    /* same seed, same draws; different seed, different draws; frequencies follow softmax */
    sp.top_p = 1; sp.seed = 7;
    sampler *a, *b;
    sampler_build(&a, V, &sp, err);
    sampler_build(&b, V, &sp, err);
    int same = 1, counts[V] = {0};
    for (int i = 0; i < 2000; i++) {
        float l1[V], l2[V];
        memcpy(l1, base, sizeof l1);
        memcpy(l2, base, sizeof l2);
        int x = sampler_sample(a, l1), y = sampler_sample(b, l2);
        same &= x == y;
        counts[x]++;
    }
    CU_ASSERT(same);
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(base[i] - 9);
    double p17 = 1 / z;
    printf("  P(argmax) expected %.3f, drawn %.3f\n", p17, counts[17] / 2000.0);
    CU_ASSERT(fabs(counts[17] / 2000.0 - p17) < 0.05);
    sampler_free(a);
    sampler_free(b);
    /* repetition penalty pushes a seen token down */
    sp.temperature = 0; sp.repetition_penalty = 100;
    sampler_build(&s, V, &sp, err);
    sampler_observe(s, 17, 0);
    memcpy(lg, base, sizeof lg);
    CU_ASSERT(sampler_sample(s, lg) != 17);
    sampler_free(s);
    sp.repetition_penalty = 1; sp.temperature = NAN;
    CU_ASSERT(sampler_build(&s, V, &sp, err) == SS_EINPUT);
    sp.temperature = 1; sp.top_p = 0;
    CU_ASSERT(sampler_build(&s, V, &sp, err) == SS_EINPUT);
}

/* gelu_new with the vectorised exp against the tanh formula in double, on a
   dense grid over [-40, 40] and at the edges; also layernorm against double. */
static void test_kernels(void) {
    enum { N = 80001 };
    float *x = malloc(sizeof(float) * N);
    double maxd = 0;
    for (int i = 0; i < N; i++) x[i] = -40.0f + 0.001f * (float)i;
    gpt2_gelu(x, N);
    for (int i = 0; i < N; i++) {
        double v = -40.0f + 0.001f * (float)i;
        double ref = 0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        double d = fabs(x[i] - ref) / (fabs(v) > 1 ? fabs(v) : 1);
        if (d > maxd) maxd = d;
    }
    printf("\n  gelu_new vs double: max abs diff / max(1,|x|) %.3e over %d values (tol 3e-7)\n", maxd, N);
    CU_ASSERT(maxd <= 3e-7);
    float e[5] = {NAN, INFINITY, 1e30f, -1e30f, 0.0f};
    gpt2_gelu(e, 5);
    CU_ASSERT(isnan(e[0]) && e[1] == INFINITY && e[2] == 1e30f && e[3] == 0.0f && e[4] == 0.0f);
    free(x);

    enum { T = 3, C = 37 };
    float in[T * C], w[C], b[C], out[T * C];
    for (int i = 0; i < T * C; i++) in[i] = sinf(0.37f * (float)i) * (float)(1 + i % 5) + 3.0f;
    for (int i = 0; i < C; i++) { w[i] = 0.5f + 0.01f * (float)i; b[i] = -0.2f + 0.02f * (float)i; }
    gpt2_layernorm(out, in, w, b, T, C, 1e-5f);
    double maxl = 0;
    for (int t = 0; t < T; t++) {
        double mu = 0, var = 0;
        for (int i = 0; i < C; i++) mu += in[t * C + i];
        mu /= C;
        for (int i = 0; i < C; i++) var += (in[t * C + i] - mu) * (in[t * C + i] - mu);
        var /= C;
        for (int i = 0; i < C; i++) {
            double ref = (in[t * C + i] - mu) / sqrt(var + 1e-5) * w[i] + b[i];
            double d = fabs(out[t * C + i] - ref);
            if (d > maxl) maxl = d;
        }
    }
    printf("  layernorm vs double: max abs diff %.3e over %d values (tol 2e-6)\n  ", maxl, T * C);
    CU_ASSERT(maxl <= 2e-6);
}

/* The vectorised F16/BF16 -> F32 conversion equals the scalar reference on
   every bit pattern, from a tensor at an odd data offset. */
static void test_f16_all_patterns(void) {
    const char *p = "/tmp/ss_test_f16_all.safetensors";
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[1,131073]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[131073,262145]}}");
    FILE *f = fopen(p, "wb");
    uint64_t n = (uint64_t)hl;
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, (size_t)hl, f);
    fputc(0, f);
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 0; i < 65536; i++) { uint16_t v = (uint16_t)i; fwrite(&v, 2, 1, f); }
    fclose(f);
    st_file sf;
    char err[SS_ERRLEN];
    CU_ASSERT_FATAL(st_open(&sf, p, err) == SS_OK);
    float *out = malloc(sizeof(float) * 65536);
    int bad_h = 0, bad_b = 0;
    CU_ASSERT(st_to_f32(&sf, st_find(&sf, "h"), out, err) == SS_OK);
    for (uint32_t i = 0; i < 65536; i++) {
        float r = st_f16_to_f32((uint16_t)i);
        bad_h += memcmp(&r, &out[i], 4) != 0;
    }
    CU_ASSERT(st_to_f32(&sf, st_find(&sf, "b"), out, err) == SS_OK);
    for (uint32_t i = 0; i < 65536; i++) {
        float r = st_bf16_to_f32((uint16_t)i);
        bad_b += memcmp(&r, &out[i], 4) != 0;
    }
    printf("\n  f16/bf16 -> f32: %d / %d of 65536 bit patterns differ from the scalar reference\n  ", bad_h, bad_b);
    CU_ASSERT(bad_h == 0 && bad_b == 0);
    free(out);
    st_close(&sf);
    unlink(p);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("runtime", NULL, NULL);
    CU_add_test(s, "f16/bf16/sharded/unprefixed layouts agree with f32", test_layouts_agree);
    CU_add_test(s, "kv-cache decode equals full recomputation", test_kv_cache);
    CU_add_test(s, "hook names, centring, early stop", test_hooks_center_stop);
    CU_add_test(s, "steering positions and matrices", test_steer_positions);
    CU_add_test(s, "forged safetensors and broken model dirs", test_forged_safetensors);
    CU_add_test(s, "npy/npz round trips", test_npy_npz);
    CU_add_test(s, "sampling", test_sampler);
    CU_add_test(s, "gelu_new and layernorm kernels", test_kernels);
    CU_add_test(s, "f16/bf16 conversion, every bit pattern", test_f16_all_patterns);
    return tu_run();
}
