/* test_scan.c - lib/perplexity (token stream, windowed perplexity) and
 * sae/scan (corpus scan) on a tiny random GPT-2 written here, with the real
 * GPT-2 tokenizer (weights/gpt2-tokenizer) and random dictionaries:
 *   - streamed tokenization equals tokenizing the whole file, for any block size;
 *   - perplexity in KV-cache slices equals a full-logits computation in double,
 *     and the file-level windows are exactly the documented ones;
 *   - scan's top-K contexts, densities and histograms equal a brute force that
 *     encodes every window and sorts everything (exact comparison), for
 *     several architectures, with and without BOS and centring;
 *   - logit effects equal W_dec . wte^T computed in double;
 *   - a progress callback stops the scan early.
 * The torch reference for perplexity is in tests/cli_scan.sh. */
#include "testutil.h"

#include "gpt2.h"
#include "perplexity.h"
#include "sae.h"
#include "scan.h"
#include "tokenizer.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char TMP[4096];
static tokenizer *TOK;
static gpt2_model *MODEL;
static char *TEXT;            /* the test corpus */
static const char *TEXT_PATH;

/* ------------------------------------------------------------ helpers --- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rnd() >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f; }
static void fill(float *a, size_t n, float scale, float off) { for (size_t i = 0; i < n; i++) a[i] = scale * frand() + off; }

static const char *tmp(const char *name) {
    static char buf[8][4200];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", TMP, name);
    return buf[k];
}

static void write_bytes(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

/* Tiny random GPT-2 with the real vocabulary (the tokenizer's ids reach 50256). */
#define MC 16
#define ML 3
#define MV 50257
#define MP 160
typedef struct { char name[64]; float *data; int64_t r, c; } tens;
static void write_model(const char *dir) {
    mkdir(dir, 0755);
    char p[4300], cfg[512];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"gpt2\", \"n_embd\": %d, \"n_layer\": %d, \"n_head\": 4, \"vocab_size\": %d,"
             " \"n_positions\": %d, \"layer_norm_epsilon\": 1e-5, \"activation_function\": \"gelu_new\","
             " \"bos_token_id\": 50256, \"eos_token_id\": 50256}", MC, ML, MV, MP);
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_bytes(p, cfg, strlen(cfg));
    tens ts[64];
    int n = 0;
#define T2(nm, a, b, sc, off) do { tens *t = &ts[n++]; snprintf(t->name, sizeof t->name, "%s", nm); t->r = (a); t->c = (b); \
        t->data = malloc(sizeof(float) * (size_t)(a) * (b)); fill(t->data, (size_t)(a) * (b), sc, off); } while (0)
    T2("wte.weight", MV, MC, 0.5f, 0.0f);
    T2("wpe.weight", MP, MC, 0.3f, 0.0f);
    for (int l = 0; l < ML; l++) {
        char nm[64];
#define NM(s) (snprintf(nm, sizeof nm, "h.%d.%s", l, s), nm)
        T2(NM("ln_1.weight"), MC, 1, 0.1f, 1.0f);  T2(NM("ln_1.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("attn.c_attn.weight"), MC, 3 * MC, 0.4f, 0.0f);  T2(NM("attn.c_attn.bias"), 3 * MC, 1, 0.1f, 0.0f);
        T2(NM("attn.c_proj.weight"), MC, MC, 0.3f, 0.0f);  T2(NM("attn.c_proj.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("ln_2.weight"), MC, 1, 0.1f, 1.0f);  T2(NM("ln_2.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("mlp.c_fc.weight"), MC, 4 * MC, 0.3f, 0.0f);  T2(NM("mlp.c_fc.bias"), 4 * MC, 1, 0.1f, 0.0f);
        T2(NM("mlp.c_proj.weight"), 4 * MC, MC, 0.3f, 0.0f);  T2(NM("mlp.c_proj.bias"), MC, 1, 0.1f, 0.0f);
#undef NM
    }
    T2("ln_f.weight", MC, 1, 0.1f, 1.0f);
    T2("ln_f.bias", MC, 1, 0.1f, 0.0f);
#undef T2
    /* safetensors: u64 header length, JSON header, raw f32 */
    size_t cap = 16384, hl = 0, off = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = sizeof(float) * (size_t)ts[i].r * ts[i].c;
        if (ts[i].c > 1)
            hl += (size_t)snprintf(hdr + hl, cap - hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", ts[i].name, (long long)ts[i].r, (long long)ts[i].c, off, off + bytes);
        else
            hl += (size_t)snprintf(hdr + hl, cap - hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", ts[i].name, (long long)ts[i].r, off, off + bytes);
        off += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    uint64_t h64 = hl;
    fwrite(&h64, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (int i = 0; i < n; i++) { fwrite(ts[i].data, sizeof(float), (size_t)ts[i].r * ts[i].c, f); free(ts[i].data); }
    fclose(f);
    free(hdr);
}

/* A random dictionary for the tiny model's hook. */
static sae_dict *make_dict(sae_arch arch, int S, const char *hook, int center, int bos, int ctx) {
    sae_dict *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "mem");
    d->arch = arch; d->norm = SAE_NORM_NONE; d->d_in = MC; d->d_sae = S;
    d->k = arch == SAE_TOPK ? 4 : 0;
    snprintf(d->hook_name, sizeof d->hook_name, "%s", hook);
    snprintf(d->model_name, sizeof d->model_name, "tiny");
    d->apply_b_dec_to_input = 1; d->center_writing_weights = center; d->prepend_bos = bos; d->context_size = ctx;
    d->W_enc = malloc(sizeof(float) * MC * S); fill(d->W_enc, (size_t)MC * S, 0.5f, 0.0f);
    d->W_dec = malloc(sizeof(float) * MC * S); fill(d->W_dec, (size_t)MC * S, 0.5f, 0.0f);
    d->b_enc = malloc(sizeof(float) * S); fill(d->b_enc, S, 0.5f, -0.6f);
    d->b_dec = malloc(sizeof(float) * MC); fill(d->b_dec, MC, 0.2f, 0.0f);
    if (arch == SAE_JUMPRELU) { d->threshold = malloc(sizeof(float) * S); for (int i = 0; i < S; i++) d->threshold[i] = 0.2f * (frand() + 1.0f); }
    return d;
}

/* A corpus with every kind of place a block could be cut: single and double
   newlines, CRLF, runs of spaces and tabs, digits, accents, CJK, emoji,
   contractions, <|endoftext|>, and a long stretch with no space. */
static char *make_text(size_t target) {
    static const char *words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "Paris", "is", "in", "France", "it's",
                                  "don't", "we'll", "2024", "3.14", "café", "naïve", "日本語", "😀", "(quoted)", "—", "x",
                                  "Hello", "WORLD", "fn()", "a_b", "<|endoftext|>", "...", "?!", "'s", "1,000"};
    static const char *seps[] = {" ", " ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", ", ", ". ", "   "};
    const int nw = (int)(sizeof words / sizeof *words), ns = (int)(sizeof seps / sizeof *seps);
    char *s = malloc(target + 4096);
    size_t n = 0;
    while (n < target) {
        const char *w = words[rnd() % nw], *sp = seps[rnd() % ns];
        if (rnd() % 97 == 0) { for (int i = 0; i < 300; i++) s[n++] = "abcdefgh"[i % 8]; }
        memcpy(s + n, w, strlen(w)); n += strlen(w);
        memcpy(s + n, sp, strlen(sp)); n += strlen(sp);
    }
    s[n] = '\0';
    return s;
}

static int init_suite(void) {
    snprintf(TMP, sizeof TMP, "/tmp/test_scan.%ld", (long)getpid());
    mkdir(TMP, 0755);
    char err[SS_ERRLEN];
    if (tok_load(&TOK, SAESTEER_HOME "/weights/gpt2-tokenizer/vocab.json", SAESTEER_HOME "/weights/gpt2-tokenizer/merges.txt", err)) {
        fprintf(stderr, "tokenizer: %s\n", err);
        return 1;
    }
    write_model(tmp("model"));
    if (gpt2_load(&MODEL, tmp("model"), err)) { fprintf(stderr, "model: %s\n", err); return 1; }
    TEXT = make_text(12000);
    TEXT_PATH = strdup(tmp("corpus.txt"));
    write_bytes(TEXT_PATH, TEXT, strlen(TEXT));
    return 0;
}

static int clean_suite(void) {
    gpt2_free(MODEL);
    tok_free(TOK);
    free(TEXT);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMP);
    if (system(cmd)) {}
    free((char *)TEXT_PATH);
    return 0;
}

static int *whole_ids(const char *text, size_t len, int *n) {
    char err[SS_ERRLEN];
    int *ids = NULL;
    int rc = tok_encode(TOK, text, len, &ids, n, err);
    if (rc) printf("  tok_encode: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    return ids;
}

/* ------------------------------------------------------ token stream --- */
static void check_stream(const char *path, const int *want, int n_want, size_t block) {
    char err[SS_ERRLEN];
    ss_tokstream *ts;
    CU_ASSERT_EQUAL_FATAL(ss_tokstream_open(&ts, TOK, path, block, err), SS_OK);
    int *got = malloc(sizeof(int) * ((size_t)n_want + 64));
    int total = 0, g;
    for (;;) {   /* uneven read sizes */
        int want_n = 1 + (int)(rnd() % 37);
        int rc = ss_tokstream_read(ts, got + total, want_n, &g, err);
        CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
        total += g;
        if (g < want_n) break;
        CU_ASSERT_FATAL(total <= n_want);
    }
    CU_ASSERT_EQUAL(ss_tokstream_bytes_done(ts), ss_tokstream_bytes_total(ts));
    int same = total == n_want && (n_want == 0 || !memcmp(got, want, sizeof(int) * (size_t)n_want));
    if (!same) {
        int k = 0;
        while (k < total && k < n_want && got[k] == want[k]) k++;
        printf("  block %zu: %d ids streamed vs %d whole; first difference at %d\n", block, total, n_want, k);
    }
    CU_ASSERT(same);
    free(got);
    ss_tokstream_close(ts);
}

static void test_tokstream_equals_whole(void) {
    int n;
    int *want = whole_ids(TEXT, strlen(TEXT), &n);
    printf("\n  corpus: %zu bytes, %d tokens\n", strlen(TEXT), n);
    size_t blocks[] = {1, 2, 7, 64, 333, 4096, 0};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) check_stream(TEXT_PATH, want, n, blocks[i]);
    free(want);
    /* no safe cut anywhere: one block at the end of the file */
    char *nospace = malloc(5001);
    for (int i = 0; i < 5000; i++) nospace[i] = "ab.cd"[i % 5];
    nospace[5000] = 0;
    write_bytes(tmp("nospace.txt"), nospace, 5000);
    want = whole_ids(nospace, 5000, &n);
    check_stream(tmp("nospace.txt"), want, n, 16);
    free(want);
    free(nospace);
    /* empty file */
    write_bytes(tmp("empty.txt"), "", 0);
    check_stream(tmp("empty.txt"), NULL, 0, 0);
}

static void test_tokstream_bad_utf8(void) {
    char err[SS_ERRLEN];
    char bad[200];
    memset(bad, 'a', sizeof bad);
    for (int i = 9; i < 200; i += 10) bad[i] = ' ';
    bad[150] = (char)0xff;
    write_bytes(tmp("bad.txt"), bad, sizeof bad);
    ss_tokstream *ts;
    CU_ASSERT_EQUAL_FATAL(ss_tokstream_open(&ts, TOK, tmp("bad.txt"), 32, err), SS_OK);
    int ids[500], got, rc;
    do { rc = ss_tokstream_read(ts, ids, 5, &got, err); } while (rc == SS_OK && got > 0);
    CU_ASSERT_EQUAL(rc, SS_EINPUT);
    printf("\n  bad UTF-8: %s\n", err);
    CU_ASSERT(strstr(err, "bad.txt") != NULL);
    CU_ASSERT(strstr(err, "byte 150") != NULL);
    ss_tokstream_close(ts);
    CU_ASSERT_EQUAL(ss_tokstream_open(&ts, TOK, tmp("no-such-file.txt"), 0, err), SS_EINPUT);
}

/* ------------------------------------------------------- perplexity --- */
/* Mean NLL over the T-1 predictions of one window from one full forward, in double. */
static double ref_window_nll(const int *toks, int T) {
    char err[SS_ERRLEN];
    gpt2_state *s;
    CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, MODEL, MP, err), SS_OK);
    float *lg = malloc(sizeof(float) * (size_t)T * MV);
    CU_ASSERT_EQUAL_FATAL(gpt2_forward(s, toks, T, lg, 1, err), SS_OK);
    double nll = 0;
    for (int t = 0; t + 1 < T; t++) {
        const float *l = lg + (size_t)t * MV;
        double mx = l[0], se = 0;
        for (int v = 1; v < MV; v++) if (l[v] > mx) mx = l[v];
        for (int v = 0; v < MV; v++) se += exp((double)l[v] - mx);
        nll += mx + log(se) - l[toks[t + 1]];
    }
    free(lg);
    gpt2_state_free(s);
    return nll;
}

static void test_ppl_window(void) {
    char err[SS_ERRLEN];
    int n;
    int *ids = whole_ids(TEXT, strlen(TEXT), &n);
    int T = MP;                 /* three KV-cache slices of SS_PPL_SLICE */
    int *win = malloc(sizeof(int) * T);
    win[0] = 50256;
    memcpy(win + 1, ids, sizeof(int) * (T - 1));
    ss_ppl *p;
    CU_ASSERT_EQUAL_FATAL(ss_ppl_new(&p, MODEL, 0, err), SS_OK);
    CU_ASSERT_EQUAL_FATAL(ss_ppl_window(p, win, T, err), SS_OK);
    ss_ppl_result r;
    ss_ppl_get(p, &r);
    double ref = ref_window_nll(win, T) / (T - 1);
    printf("\n  window of %d: nll %.6f (slices) vs %.6f (full, double): diff %.2e\n", T, r.nll, ref, fabs(r.nll - ref));
    CU_ASSERT(fabs(r.nll - ref) < 1e-4);
    CU_ASSERT_EQUAL(r.tokens, T - 1);
    CU_ASSERT_EQUAL(ss_ppl_window(p, win, 1, err), SS_EINPUT);
    ss_ppl_free(p);
    CU_ASSERT_EQUAL(ss_ppl_new(&p, MODEL, MP + 1, err), SS_EINPUT);
    CU_ASSERT_PTR_NULL(p);
    free(win);
    free(ids);
}

static int stop_after(void *ctx, const ss_progress *pr) {
    int *left = ctx;
    return --*left <= 0;
}

static void test_ppl_file_windows(void) {
    char err[SS_ERRLEN];
    int n;
    int *ids = whole_ids(TEXT, strlen(TEXT), &n);
    const int W = 50;
    const int64_t caps[] = {0, 1, 49, 50, 333};
    for (size_t c = 0; c < sizeof caps / sizeof *caps; c++) {
        int64_t cap = caps[c], N = cap && cap < n ? cap : n;
        ss_ppl_result r;
        CU_ASSERT_EQUAL_FATAL(ss_perplexity_file(MODEL, TOK, TEXT_PATH, W, cap, NULL, NULL, &r, err), SS_OK);
        /* the documented windows: [BOS, W-1 tokens], non-overlapping */
        double nll = 0;
        int64_t wins = 0;
        int win[W];
        win[0] = 50256;
        for (int64_t s = 0; s < N; s += W - 1) {
            int k = (int)(N - s < W - 1 ? N - s : W - 1);
            memcpy(win + 1, ids + s, sizeof(int) * k);
            nll += ref_window_nll(win, k + 1);
            wins++;
        }
        nll /= (double)N;
        printf("\n  max_tokens %lld: %lld tokens, %lld windows, ppl %.5f vs reference %.5f", (long long)cap,
               (long long)r.tokens, (long long)r.windows, r.perplexity, exp(nll));
        CU_ASSERT_EQUAL(r.tokens, N);
        CU_ASSERT_EQUAL(r.windows, wins);
        CU_ASSERT(fabs(r.nll - nll) < 1e-4);
    }
    printf("\n");
    int left = 3;
    ss_ppl_result r;
    CU_ASSERT_EQUAL(ss_perplexity_file(MODEL, TOK, TEXT_PATH, W, 0, stop_after, &left, &r, err), SS_OK);
    CU_ASSERT_EQUAL(r.stopped, 1);
    CU_ASSERT_EQUAL(r.windows, 3);
    CU_ASSERT_EQUAL(ss_perplexity_file(MODEL, TOK, tmp("empty.txt"), W, 0, NULL, NULL, &r, err), SS_EINPUT);
    free(ids);
}

/* -------------------------------------------------------------- scan --- */
typedef struct { float v; int64_t idx; int t, n; const int *ids; const float *f; } cand;   /* brute-force entry */

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int ref_bin(float v) {
    for (int b = SCAN_HIST_BINS - 1; b > 0; b--) if ((double)v >= scan_hist_edge(b)) return b;
    return 0;
}

/* Run scan_file and compare with encoding every window and sorting. */
static void check_scan(sae_dict *d, int window, int K, int R, int64_t max_tokens) {
    char err[SS_ERRLEN];
    const int S = d->d_sae, C = d->d_in, bos = d->prepend_bos;
    scan_opts o = {K, R, window, max_tokens, 5, NULL, NULL, 0};
    scan_state *sc;
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &o, err), SS_OK);
    int rc = scan_file(sc, TOK, TEXT_PATH, err);
    if (rc) printf("  scan_file: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    const int W = sc->window, per = W - bos;

    /* brute force */
    int n;
    int *ids = whole_ids(TEXT, strlen(TEXT), &n);
    int64_t N = max_tokens && max_tokens < n ? max_tokens : n;
    int n_win = (int)((N + per - 1) / per);
    gpt2_state *s;
    CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, MODEL, MP, err), SS_OK);
    float *f_all = malloc(sizeof(float) * (size_t)N * S), *x = malloc(sizeof(float) * (size_t)W * C);
    int *win_all = malloc(sizeof(int) * (size_t)n_win * W);
    cand **lists = calloc(S, sizeof *lists);
    int *nl = calloc(S, sizeof(int));
    int64_t *act = calloc(S, sizeof(int64_t));
    uint32_t *hist = calloc((size_t)S * SCAN_HIST_BINS, sizeof(uint32_t));
    for (int i = 0; i < S; i++) lists[i] = malloc(sizeof(cand) * (size_t)N);
    for (int w = 0; w < n_win; w++) {
        int64_t s0 = (int64_t)w * per;
        int k = (int)(N - s0 < per ? N - s0 : per);
        int *win = win_all + (size_t)w * W;
        win[0] = 50256;
        memcpy(win + bos, ids + s0, sizeof(int) * k);
        CU_ASSERT_EQUAL_FATAL(sae_capture(d, s, win, k + bos, x, err), SS_OK);
        float *f = f_all + (size_t)s0 * S;
        CU_ASSERT_EQUAL_FATAL(sae_encode(d, x + (size_t)bos * C, k, f, err), SS_OK);
        for (int t = 0; t < k; t++)
            for (int i = 0; i < S; i++) {
                float v = f[(size_t)t * S + i];
                if (!(v > 0)) continue;
                act[i]++;
                hist[(size_t)i * SCAN_HIST_BINS + ref_bin(v)]++;
                lists[i][nl[i]++] = (cand){v, s0 + t, t, k, win + bos, f};
            }
    }
    CU_ASSERT_EQUAL(sc->n_tokens, N);
    CU_ASSERT_EQUAL(sc->n_windows, n_win);
    scan_context *ctx = calloc(K, sizeof *ctx);
    int bad = 0, total_ctx = 0, hist_bad = 0, alive = 0;
    int64_t l0 = 0;
    for (int i = 0; i < S; i++) {
        qsort(lists[i], nl[i], sizeof(cand), cand_cmp);
        int want = nl[i] < K ? nl[i] : K, got = scan_contexts(sc, i, ctx);
        alive += nl[i] > 0;
        l0 += act[i];
        if (sc->n_active[i] != act[i] || got != want) { bad++; continue; }
        uint64_t hs = 0;
        for (int b = 0; b < SCAN_HIST_BINS; b++) {
            hs += sc->hist[(size_t)i * SCAN_HIST_BINS + b];
            if (sc->hist[(size_t)i * SCAN_HIST_BINS + b] != hist[(size_t)i * SCAN_HIST_BINS + b]) hist_bad++;
        }
        if (hs != (uint64_t)act[i]) hist_bad++;
        float mx = 0;
        for (int j = 0; j < nl[i]; j++) if (lists[i][j].v > mx) mx = lists[i][j].v;
        if (sc->max_act[i] != mx) bad++;
        for (int j = 0; j < want; j++) {
            const cand *e = &lists[i][j];
            int lo = e->t - R < 0 ? 0 : e->t - R, hi = e->t + R > e->n - 1 ? e->n - 1 : e->t + R;
            int ok = ctx[j].value == e->v && ctx[j].token_index == e->idx && ctx[j].center == e->t - lo &&
                     ctx[j].len == hi - lo + 1;
            for (int p = lo; ok && p <= hi; p++)
                ok = ctx[j].ids[p - lo] == e->ids[p] && ctx[j].acts[p - lo] == e->f[(size_t)p * S + i];
            if (!ok) {
                if (bad < 5) printf("  latent %d context %d: got (%g @ %lld) want (%g @ %lld)\n", i, j, ctx[j].value,
                                    (long long)ctx[j].token_index, e->v, (long long)e->idx);
                bad++;
            }
            total_ctx++;
        }
    }
    printf("\n  %s bos=%d center=%d window %d top %d radius %d max_tokens %lld: %lld tokens, %d windows, %d/%d latents "
           "fired, mean L0 %.2f, %d contexts compared, %d mismatches, %d histogram mismatches",
           sae_arch_name(d->arch), bos, d->center_writing_weights, W, K, R, (long long)max_tokens, (long long)N, n_win,
           alive, S, (double)l0 / (double)N, total_ctx, bad, hist_bad);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(hist_bad, 0);
    CU_ASSERT(alive > S / 4);       /* the test means something */
    CU_ASSERT(total_ctx >= alive);
    for (int i = 0; i < S; i++) free(lists[i]);
    free(lists); free(nl); free(act); free(hist); free(ctx); free(f_all); free(x); free(win_all); free(ids);
    gpt2_state_free(s);
    scan_free(sc);
}

static void test_scan_bruteforce(void) {
    sae_dict *d = make_dict(SAE_STANDARD, 64, "blocks.2.hook_resid_pre", 1, 1, 24);
    check_scan(d, 0, 5, 3, 0);          /* window from context_size, BOS, centred */
    check_scan(d, 17, 1, 0, 400);       /* top 1, no context, capped */
    check_scan(d, 0, 50, 6, 0);         /* K larger than many latents' counts */
    sae_free(d);
    d = make_dict(SAE_TOPK, 40, "blocks.1.hook_resid_post", 0, 0, 0);
    check_scan(d, 30, 4, 2, 0);         /* no BOS: every position scored */
    sae_free(d);
    d = make_dict(SAE_JUMPRELU, 33, "blocks.0.hook_mlp_out", 1, 1, 0);
    check_scan(d, 0, 3, 4, 1000);       /* window = n_positions */
    sae_free(d);
    printf("\n");
}

static void test_scan_logits(void) {
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(SAE_STANDARD, 70, "blocks.1.hook_resid_pre", 0, 1, 0);   /* 70: a partial block of 64 */
    scan_opts o = {3, 2, 20, 100, 7, NULL, NULL, 0};
    scan_state *sc;
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &o, err), SS_OK);
    CU_ASSERT_EQUAL_FATAL(scan_logit_effects(sc, err), SS_OK);
    CU_ASSERT_EQUAL(sc->have_logits, 1);
    double *row = malloc(sizeof(double) * MV), maxdiff = 0;
    int id_bad = 0;
    for (int i = 0; i < d->d_sae; i++) {
        for (int v = 0; v < MV; v++) {
            double s = 0;
            float wv[MC];
            gpt2_mat_row(&MODEL->wte, v, MC, wv);
            for (int j = 0; j < MC; j++) s += (double)d->W_dec[(size_t)i * MC + j] * wv[j];
            row[v] = s;
        }
        for (int j = 0; j < 7; j++) {
            int ti = sc->top_ids[i * 7 + j], bi = sc->bot_ids[i * 7 + j];
            maxdiff = fmax(maxdiff, fabs(row[ti] - sc->top_val[i * 7 + j]));
            maxdiff = fmax(maxdiff, fabs(row[bi] - sc->bot_val[i * 7 + j]));
            /* rank: exactly j tokens above (below) it, up to float noise */
            int above = 0, below = 0;
            for (int v = 0; v < MV; v++) { above += row[v] > row[ti] + 1e-5; below += row[v] < row[bi] - 1e-5; }
            if (above > j || below > j) id_bad++;
            if (j && (sc->top_val[i * 7 + j] > sc->top_val[i * 7 + j - 1] || sc->bot_val[i * 7 + j] < sc->bot_val[i * 7 + j - 1])) id_bad++;
        }
    }
    printf("\n  logit effects of %d latents x %d tokens: max |diff| vs double %.2e, %d rank errors\n", d->d_sae, MV, maxdiff, id_bad);
    CU_ASSERT(maxdiff < 1e-4);
    CU_ASSERT_EQUAL(id_bad, 0);
    free(row);
    scan_free(sc);
    sae_free(d);
    /* not a residual-width dictionary: no logit effects, no error */
    d = make_dict(SAE_STANDARD, 8, "blocks.0.mlp.hook_post", 0, 1, 0);
    free(d->W_enc); free(d->W_dec); free(d->b_dec);
    d->d_in = 4 * MC;
    d->W_enc = calloc((size_t)4 * MC * 8, sizeof(float)); d->W_dec = calloc((size_t)4 * MC * 8, sizeof(float));
    d->b_dec = calloc(4 * MC, sizeof(float));
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &o, err), SS_OK);
    CU_ASSERT_EQUAL(scan_logit_effects(sc, err), SS_OK);
    CU_ASSERT_EQUAL(sc->have_logits, 0);
    scan_free(sc);
    sae_free(d);
}

static int stop_in_phase(void *ctx, const ss_progress *pr) {
    int *calls = ctx;
    if (pr->phase) (*calls)++;
    return pr->phase && pr->done >= 64;
}

static void test_scan_stop_and_errors(void) {
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(SAE_STANDARD, 16, "blocks.1.hook_resid_pre", 1, 1, 16);
    int left = 2;
    scan_opts o = {3, 2, 0, 0, 5, stop_after, &left, 0};
    scan_state *sc;
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &o, err), SS_OK);
    CU_ASSERT_EQUAL(scan_file(sc, TOK, TEXT_PATH, err), SS_OK);
    CU_ASSERT_EQUAL(sc->stopped, 1);
    CU_ASSERT_EQUAL(sc->n_windows, 2);
    CU_ASSERT_EQUAL(sc->n_tokens, 2 * 15);
    scan_free(sc);
    /* a stop while computing logit effects */
    sae_dict *d2 = make_dict(SAE_STANDARD, 200, "blocks.1.hook_resid_pre", 1, 1, 16);
    int calls = 0;
    scan_opts o2 = {3, 2, 0, 50, 5, stop_in_phase, &calls, 0};
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d2, MODEL, &o2, err), SS_OK);
    CU_ASSERT_EQUAL(scan_file(sc, TOK, TEXT_PATH, err), SS_OK);
    CU_ASSERT_EQUAL(sc->stopped, 0);
    CU_ASSERT_EQUAL(scan_logit_effects(sc, err), SS_OK);
    CU_ASSERT_EQUAL(sc->stopped, 1);
    CU_ASSERT_EQUAL(sc->have_logits, 0);
    CU_ASSERT_EQUAL(calls, 1);
    scan_free(sc);
    sae_free(d2);
    o.progress = NULL;
    CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &o, err), SS_OK);
    CU_ASSERT_EQUAL(scan_file(sc, TOK, tmp("empty.txt"), err), SS_EINPUT);
    printf("\n  empty file: %s\n", err);
    CU_ASSERT_EQUAL(scan_file(sc, TOK, tmp("no-such.txt"), err), SS_EINPUT);
    scan_free(sc);
    o.window = MP + 1;
    CU_ASSERT_EQUAL(scan_new(&sc, d, MODEL, &o, err), SS_EINPUT);
    printf("  window too long: %s\n", err);
    o.window = 1;   /* BOS leaves no room */
    CU_ASSERT_EQUAL(scan_new(&sc, d, MODEL, &o, err), SS_EINPUT);
    o.window = 0;
    snprintf(d->hook_name, sizeof d->hook_name, "blocks.9.hook_resid_pre");
    CU_ASSERT_EQUAL(scan_new(&sc, d, MODEL, &o, err), SS_EINPUT);
    printf("  bad hook: %s\n", err);
    sae_free(d);
}

/* ------------------------------------------------------ corpus parts --- */
/* The windows of N parts (ss_corpus_bounds, ss_corpus_count, ss_windows),
   concatenated, equal the windows of the whole file cut from tok_encode of
   the whole text (the independent reference), for N = 1..6 and a cap. */
static void test_parts_windows(void) {
    char err[SS_ERRLEN];
    int n;
    int *ids = whole_ids(TEXT, strlen(TEXT), &n);
    const int per = 37;
    int bad = 0, checked = 0;
    for (int cap = 0; cap <= 1; cap++) {
        int64_t max_tokens = cap ? n / 2 + 5 : 0, N = cap ? max_tokens : n;
        for (int parts = 1; parts <= 6; parts++) {
            int64_t bounds[7], counts[6], t0 = 0, next = 0;
            CU_ASSERT_EQUAL_FATAL(ss_corpus_bounds(TEXT_PATH, parts, bounds, err), SS_OK);
            CU_ASSERT_EQUAL(bounds[0], 0);
            CU_ASSERT_EQUAL(bounds[parts], (int64_t)strlen(TEXT));
            for (int p = 0; p < parts; p++) {
                CU_ASSERT(bounds[p] <= bounds[p + 1]);
                CU_ASSERT_EQUAL_FATAL(ss_corpus_count(TOK, TEXT_PATH, bounds[p], bounds[p + 1], &counts[p], err), SS_OK);
            }
            int64_t total = 0;
            for (int p = 0; p < parts; p++) total += counts[p];
            CU_ASSERT_EQUAL(total, n);   /* the ranges tokenize to the whole file's tokens */
            int buf[64];
            for (int p = 0; p < parts; p++) {
                ss_windows *w;
                CU_ASSERT_EQUAL_FATAL(ss_windows_open(&w, TOK, TEXT_PATH, bounds[p], t0, t0 + counts[p], per, max_tokens, err), SS_OK);
                int got;
                int64_t i0;
                for (;;) {
                    CU_ASSERT_EQUAL_FATAL(ss_windows_next(w, buf, &got, &i0, err), SS_OK);
                    if (got == 0) break;
                    int want = (int)(N - next < per ? N - next : per);
                    if (i0 != next || got != want || memcmp(buf, ids + next, sizeof(int) * (size_t)got)) bad++;
                    next += per;
                    checked++;
                }
                ss_windows_close(w);
                t0 += counts[p];
            }
            if (next < N) bad++;   /* every window handed out once */
        }
    }
    printf("  %d windows checked against tok_encode of the whole text, %d wrong\n", checked, bad);
    CU_ASSERT_EQUAL(bad, 0);
    free(ids);
}

/* SS_XSUM: any split and order of the additions gives the same bits; the
   value is within a few ulps of the exact sum (__float128: 113-bit mantissa,
   exact for these magnitudes, 2^-30 .. 2^20, at most 2^14 terms). */
static void test_exact_sums(void) {
    enum { NV = 12000 };
    float *v = malloc(sizeof(float) * NV);
    __float128 exact = 0;
    for (int i = 0; i < NV; i++) {
        v[i] = ldexpf(0.5f + 0.5f * fabsf(frand()), (int)(rnd() % 51) - 30);
        exact += v[i];
    }
    uint64_t a[SS_XSUM_WORDS] = {0}, b[SS_XSUM_WORDS] = {0}, c[SS_XSUM_WORDS] = {0};
    for (int i = 0; i < NV; i++) ss_xsum_add(a, v[i]);
    for (int i = NV - 1; i >= NV / 3; i--) ss_xsum_add(b, v[i]);   /* two parts, reversed */
    for (int i = 0; i < NV / 3; i++) ss_xsum_add(c, v[i]);
    ss_xsum_merge(b, c);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    double got = ss_xsum_value(a), want = (double)exact;
    printf("  exact sum of %d floats: %.17g vs __float128 %.17g (diff %.3g)\n", NV, got, want, got - want);
    CU_ASSERT(fabs(got - want) <= 4 * ldexp(1.0, -52) * want);
    uint64_t inf[SS_XSUM_WORDS] = {0};
    ss_xsum_add(inf, INFINITY);
    ss_xsum_merge(a, inf);
    CU_ASSERT(isinf(ss_xsum_value(a)));
    free(v);
}

/* A scan of N parts, packed and merged in a scrambled order (and on worker
   threads), has the single process's statistics exactly: every array compared. */
static void test_scan_parts_merge(void) {
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(SAE_STANDARD, 40, "blocks.1.hook_resid_pre", 1, 1, 24);
    scan_opts o = {5, 3, 0, 0, 5, NULL, NULL, 0};
    scan_state *one;
    CU_ASSERT_EQUAL_FATAL(scan_new(&one, d, MODEL, &o, err), SS_OK);
    CU_ASSERT_EQUAL_FATAL(scan_file(one, TOK, TEXT_PATH, err), SS_OK);
    const int S = one->S;
    scan_context *c1 = calloc(one->K, sizeof *c1), *c2 = calloc(one->K, sizeof *c2);
    for (int parts = 2; parts <= 4; parts++) {
        int64_t bounds[5], t0 = 0;
        CU_ASSERT_EQUAL_FATAL(ss_corpus_bounds(TEXT_PATH, parts, bounds, err), SS_OK);
        ss_buf packs[4] = {{0}};
        for (int p = 0; p < parts; p++) {
            int64_t cnt;
            CU_ASSERT_EQUAL_FATAL(ss_corpus_count(TOK, TEXT_PATH, bounds[p], bounds[p + 1], &cnt, err), SS_OK);
            ss_part part = {bounds[p], t0, t0 + cnt};
            t0 += cnt;
            scan_opts op = o;
            op.threads = 1 + p % 3;   /* windows on 1, 2 or 3 workers */
            scan_state *sc;
            CU_ASSERT_EQUAL_FATAL(scan_new(&sc, d, MODEL, &op, err), SS_OK);
            CU_ASSERT_EQUAL_FATAL(scan_file_part(sc, TOK, TEXT_PATH, &part, err), SS_OK);
            CU_ASSERT_EQUAL_FATAL(scan_pack(sc, &packs[p], err), SS_OK);
            scan_free(sc);
        }
        scan_state *m;
        CU_ASSERT_EQUAL_FATAL(scan_new(&m, d, MODEL, &o, err), SS_OK);
        for (int k = 0; k < parts; k++) {   /* last part first */
            int p = (k + parts - 1) % parts;
            CU_ASSERT_EQUAL_FATAL(scan_merge(m, packs[p].data, packs[p].len, err), SS_OK);
            ss_buf_free(&packs[p]);
        }
        int bad = 0;
        bad += m->n_tokens != one->n_tokens || m->n_windows != one->n_windows || m->bytes_done != one->bytes_done;
        bad += memcmp(m->n_active, one->n_active, sizeof(int64_t) * S) != 0;
        bad += memcmp(m->sum_x, one->sum_x, sizeof(uint64_t) * SS_XSUM_WORDS * S) != 0;
        bad += memcmp(m->max_act, one->max_act, sizeof(float) * S) != 0;
        bad += memcmp(m->hist, one->hist, sizeof(uint32_t) * SCAN_HIST_BINS * S) != 0;
        for (int i = 0; i < S; i++) {
            int n1 = scan_contexts(one, i, c1), n2 = scan_contexts(m, i, c2);
            if (n1 != n2) { bad++; continue; }
            for (int j = 0; j < n1; j++)
                if (c1[j].value != c2[j].value || c1[j].token_index != c2[j].token_index || c1[j].center != c2[j].center ||
                    c1[j].len != c2[j].len || memcmp(c1[j].ids, c2[j].ids, sizeof(int) * c1[j].len) ||
                    memcmp(c1[j].acts, c2[j].acts, sizeof(float) * c1[j].len)) bad++;
        }
        printf("  %d parts merged: %lld tokens, %d differences from one process\n", parts, (long long)m->n_tokens, bad);
        CU_ASSERT_EQUAL(bad, 0);
        /* a malformed part is refused, not read past its end */
        ss_buf b = {0};
        CU_ASSERT_EQUAL_FATAL(scan_pack(m, &b, err), SS_OK);
        CU_ASSERT_EQUAL(scan_merge(m, b.data, b.len - 3, err), SS_EINPUT);
        ss_buf_free(&b);
        scan_free(m);
    }
    free(c1); free(c2);
    scan_free(one);
    sae_free(d);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("scan", init_suite, clean_suite);
    CU_add_test(s, "token stream equals whole-file tokenization", test_tokstream_equals_whole);
    CU_add_test(s, "token stream: bad UTF-8, missing file", test_tokstream_bad_utf8);
    CU_add_test(s, "perplexity window in KV slices vs full logits", test_ppl_window);
    CU_add_test(s, "perplexity file windows as documented", test_ppl_file_windows);
    CU_add_test(s, "scan top-K, density, histogram vs brute force", test_scan_bruteforce);
    CU_add_test(s, "scan logit effects vs double", test_scan_logits);
    CU_add_test(s, "scan stops on request; bad input", test_scan_stop_and_errors);
    CU_add_test(s, "corpus parts: windows of N parts = whole-file windows", test_parts_windows);
    CU_add_test(s, "exact sums: any split and order, same bits", test_exact_sums);
    CU_add_test(s, "scan of N parts merged = one process, exactly", test_scan_parts_merge);
    return tu_run();
}
