/* matmul.c - matrix products with weights kept in their file's dtype.
 *
 * f32 weights go straight to BLAS from the mmap. f16/bf16 weights are never
 * converted as a whole (a 6B-parameter bf16 model stays 12 GB, not 24):
 *   T == 1 (decode): fused kernels convert 8 weights at a time in registers
 *     and FMA them against the f32 activations (AVX2 + F16C + FMA when the
 *     CPU has them, picked once at run time; portable C otherwise), split
 *     over the output rows among as many threads as BLAS uses (a small pool
 *     whose idle threads sleep on a condition variable: spinning workers, as
 *     OpenMP's are by default, made decode 10x slower on a busy machine);
 *   T > 1 (prefill): a block of output columns is converted into a small f32
 *     panel (about 1 MiB) and multiplied with sgemm, block after block.
 * Half -> f32 conversion is exact, so both paths compute the same products
 * as f32 weights holding the same values (up to summation order).
 */
#include "gpt2.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SS_X86 1
#endif
#include <pthread.h>

int openblas_get_num_threads(void);

/* ------------------------------------------------------- conversions --- */

static inline float h2f(int dtype, uint16_t h) {
    return dtype == ST_BF16 ? st_bf16_to_f32(h) : st_f16_to_f32(h);
}

static void cvt_n_portable(int dtype, const uint16_t *src, float *out, size_t n) {
    if (dtype == ST_BF16) {
        for (size_t i = 0; i < n; i++) { uint32_t u = (uint32_t)src[i] << 16; memcpy(&out[i], &u, 4); }
    } else {
        for (size_t i = 0; i < n; i++) out[i] = st_f16_to_f32(src[i]);
    }
}

static float dot_portable(int dtype, const uint16_t *w, const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    if (dtype == ST_BF16) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) { uint32_t u = (uint32_t)w[i + k] << 16; float f; memcpy(&f, &u, 4); acc[k] += f * x[i + k]; }
    } else {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += st_f16_to_f32(w[i + k]) * x[i + k];
    }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += h2f(dtype, w[i]) * x[i];
    return s;
}

static void axpy_portable(int dtype, float a, const uint16_t *w, float *y, int n) {
    if (dtype == ST_BF16)
        for (int i = 0; i < n; i++) { uint32_t u = (uint32_t)w[i] << 16; float f; memcpy(&f, &u, 4); y[i] += a * f; }
    else
        for (int i = 0; i < n; i++) y[i] += a * st_f16_to_f32(w[i]);
}

#ifdef SS_X86
#define AVX __attribute__((target("avx2,fma,f16c")))
AVX static inline __m256 load8(int dtype, const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (dtype == ST_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

AVX static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX static float dot_avx(int dtype, const uint16_t *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    if (dtype == ST_BF16) {
        for (; i + 32 <= n; i += 32) {
            a0 = _mm256_fmadd_ps(load8(ST_BF16, w + i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(load8(ST_BF16, w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8(ST_BF16, w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8(ST_BF16, w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
        }
    } else {
        for (; i + 32 <= n; i += 32) {
            a0 = _mm256_fmadd_ps(load8(ST_F16, w + i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(load8(ST_F16, w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8(ST_F16, w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8(ST_F16, w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
        }
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8(dtype, w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += h2f(dtype, w[i]) * x[i];
    return s;
}

AVX static void axpy_avx(int dtype, float a, const uint16_t *w, float *y, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load8(dtype, w + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * h2f(dtype, w[i]);
}

AVX static void cvt_n_avx(int dtype, const uint16_t *src, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8(dtype, src + i));
    for (; i < n; i++) out[i] = h2f(dtype, src[i]);
}
#endif

static int use_avx = -1;   /* decided once: CPU support and SAESTEER_PORTABLE */

static int have_avx(void) {
    if (use_avx < 0) {
        int ok = 0;
#ifdef SS_X86
        /* CPUID (clang 14's __builtin_cpu_supports does not know "f16c"):
           leaf 1 ECX: FMA bit 12, OSXSAVE 27, AVX 28, F16C 29; leaf 7 EBX: AVX2 bit 5;
           and the OS must save the YMM registers (XCR0 bits 1 and 2). */
        unsigned a, b, c, d;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 12)) && (c & (1u << 27)) && (c & (1u << 28)) &&
            (c & (1u << 29))) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            if ((lo & 6u) == 6u && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 5))) ok = 1;
        }
#endif
        const char *e = getenv("SAESTEER_PORTABLE");
        if (e && *e && strcmp(e, "0") != 0) ok = 0;
        use_avx = ok;
    }
    return use_avx;
}

const char *gpt2_kernels(void) { return have_avx() ? "avx2+f16c" : "portable"; }

void gpt2_kernels_force_portable(int on) {
    use_avx = -1;
    have_avx();
    if (on) use_avx = 0;
}

static void cvt_n(int dtype, const uint16_t *src, float *out, size_t n) {
#ifdef SS_X86
    if (have_avx()) { cvt_n_avx(dtype, src, out, n); return; }
#endif
    cvt_n_portable(dtype, src, out, n);
}

static float dot(int dtype, const uint16_t *w, const float *x, int n) {
#ifdef SS_X86
    if (have_avx()) return dot_avx(dtype, w, x, n);
#endif
    return dot_portable(dtype, w, x, n);
}

static void axpy(int dtype, float a, const uint16_t *w, float *y, int n) {
#ifdef SS_X86
    if (have_avx()) { axpy_avx(dtype, a, w, y, n); return; }
#endif
    axpy_portable(dtype, a, w, y, n);
}

void gpt2_mat_row(const gpt2_mat *W, int64_t r, int n, float *out) {
    if (W->dtype == ST_F32) memcpy(out, (const float *)W->data + r * n, (size_t)n * sizeof(float));
    else cvt_n(W->dtype, (const uint16_t *)W->data + r * n, out, (size_t)n);
}

/* ------------------------------------------------------- thread pool --- */

typedef void (*part_fn)(void *ctx, int part, int nparts);

static struct {
    pthread_mutex_t mu, job;   /* mu guards the fields; job serialises callers */
    pthread_cond_t go, done;
    int nworkers, pending;
    unsigned long gen;
    part_fn fn;
    void *ctx;
    int nparts;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, NULL, NULL, 0};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void *pool_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.go, &pool.mu);
        seen = pool.gen;
        part_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int n = pool.nparts;
        pthread_mutex_unlock(&pool.mu);
        if (id < n) fn(ctx, id, n);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* A child of fork() has none of the workers: it runs everything itself. */
static void pool_after_fork_child(void) {
    pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c0 = PTHREAD_COND_INITIALIZER;
    pool.mu = m0;
    pool.job = m0;
    pool.go = c0;
    pool.done = c0;
    pool.nworkers = 0;
    pool.pending = 0;
}

static void pool_init(void) {
    pthread_atfork(NULL, NULL, pool_after_fork_child);
    int n = openblas_get_num_threads();
    for (int i = 1; i < n && i < 64; i++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, pool_worker, (void *)(intptr_t)i) == 0) pool.nworkers++;
        pthread_attr_destroy(&at);
    }
}

/* fn(ctx, p, n) for p = 0..n-1, the parts on the pool's threads and this one. */
static void run_parts(part_fn fn, void *ctx, size_t work) {
    int n = 1;
    if (work >= ((size_t)1 << 16)) {
        pthread_once(&pool_once, pool_init);
        n = openblas_get_num_threads();
        if (n > pool.nworkers + 1) n = pool.nworkers + 1;
    }
    if (n <= 1) { fn(ctx, 0, 1); return; }
    pthread_mutex_lock(&pool.job);
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.nparts = n;
    pool.pending = pool.nworkers;
    pool.gen++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    fn(ctx, 0, n);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.job);
}

/* ----------------------------------------------------------- products --- */

/* T == 1, half weights: out[o] = b[o] + sum_i in[i] W(i, o); part p of n
   computes a contiguous block of outputs. */
typedef struct { float *out; const float *in; const gpt2_mat *W; const float *b; int IC, OC; } gemv_job;

static void gemv_part(void *ctx, int p, int n) {
    const gemv_job *j = ctx;
    int chunk = ((j->OC + n - 1) / n + 15) & ~15;
    int o0 = p * chunk, o1 = o0 + chunk > j->OC ? j->OC : o0 + chunk;
    const uint16_t *w = j->W->data;
    int dt = j->W->dtype, IC = j->IC, OC = j->OC;
    if (o0 >= o1) return;
    if (j->W->out_major) {   /* rows of W are outputs: one dot product each */
        for (int o = o0; o < o1; o++) j->out[o] = (j->b ? j->b[o] : 0.0f) + dot(dt, w + (size_t)o * IC, j->in, IC);
        return;
    }
    /* (in, out) layout: out[o0..o1) += in[i] * row i */
    for (int o = o0; o < o1; o++) j->out[o] = j->b ? j->b[o] : 0.0f;
    for (int i = 0; i < IC; i++) axpy(dt, j->in[i], w + (size_t)i * OC + o0, j->out + o0, o1 - o0);
}

static void gemv_half(float *out, const float *in, const gpt2_mat *W, const float *b, int IC, int OC) {
    gemv_job j = {out, in, W, b, IC, OC};
    run_parts(gemv_part, &j, (size_t)IC * OC);
}

/* T > 1, half weights: convert a block of output columns at a time into an
   f32 panel and sgemm it. */
static void gemm_half(float *out, int ldo, const float *in, const gpt2_mat *W, const float *b, int T, int IC, int OC) {
    size_t target = (size_t)1 << 18;                  /* floats per panel: 1 MiB */
    int B = (int)(target / (size_t)IC);
    B = B < 16 ? 16 : (B / 16) * 16;
    if (B > OC) B = OC;
    float *panel = ss_malloc_big((size_t)B, (size_t)IC * sizeof(float));
    if (!panel) {   /* no room even for a panel: the slow but correct way */
        for (int t = 0; t < T; t++) gemv_half(out + (size_t)t * ldo, in + (size_t)t * IC, W, b, IC, OC);
        return;
    }
    const uint16_t *w = W->data;
    for (int o0 = 0; o0 < OC; o0 += B) {
        int nb = OC - o0 < B ? OC - o0 : B;
        if (W->out_major) {   /* rows o0..o0+nb of (OC, IC): contiguous */
            cvt_n(W->dtype, w + (size_t)o0 * IC, panel, (size_t)nb * IC);
        } else {              /* columns o0..o0+nb of (IC, OC) -> panel (IC, nb) */
            for (int i = 0; i < IC; i++) cvt_n(W->dtype, w + (size_t)i * OC + o0, panel + (size_t)i * nb, (size_t)nb);
        }
        for (int t = 0; t < T; t++) {
            float *o = out + (size_t)t * ldo + o0;
            if (b) memcpy(o, b + o0, (size_t)nb * sizeof(float));
            else memset(o, 0, (size_t)nb * sizeof(float));
        }
        if (W->out_major)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nb, IC, 1.0f, in, IC, panel, IC, 1.0f, out + o0, ldo);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, nb, IC, 1.0f, in, IC, panel, nb, 1.0f, out + o0, ldo);
    }
    free(panel);
}

void gpt2_matmul_w(float *out, int ldo, const float *in, const gpt2_mat *W, const float *b, int T, int IC, int OC) {
    if (W->dtype != ST_F32) {
        if (T == 1) gemv_half(out, in, W, b, IC, OC);
        else gemm_half(out, ldo, in, W, b, T, IC, OC);
        return;
    }
    const float *w = W->data;
    for (int t = 0; t < T; t++) {
        if (b) memcpy(out + (size_t)t * ldo, b, (size_t)OC * sizeof(float));
        else memset(out + (size_t)t * ldo, 0, (size_t)OC * sizeof(float));
    }
    if (W->out_major) {
        if (T == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w, IC, in, 1, 1.0f, out, 1);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OC, IC, 1.0f, in, IC, w, IC, 1.0f, out, ldo);
    } else {
        if (T == 1) cblas_sgemv(CblasRowMajor, CblasTrans, IC, OC, 1.0f, w, OC, in, 1, 1.0f, out, 1);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, OC, IC, 1.0f, in, IC, w, OC, 1.0f, out, ldo);
    }
}

void gpt2_unembed_dirs(const gpt2_model *m, const float *in, int T, float *out) {
    gpt2_matmul_w(out, m->cfg.vocab_size, in, &m->unembed, NULL, T, m->cfg.n_embd, m->cfg.vocab_size);
}

int gpt2_head_out(const gpt2_model *m, int l, int h, const float *zh, double *out) {
    int C = m->cfg.n_embd, HS = C / m->cfg.n_head;
    const gpt2_mat *W = &m->layers[l].proj_w;
    float *row = malloc((size_t)C * sizeof(float));
    if (!row) return SS_ERUNTIME;
    if (!W->out_major) {   /* (in, out): rows h*HS .. of the input dimension */
        for (int d = 0; d < HS; d++) {
            gpt2_mat_row(W, (int64_t)h * HS + d, C, row);
            for (int j = 0; j < C; j++) out[j] += (double)zh[d] * row[j];
        }
    } else {               /* (out, in): columns h*HS .. of every row */
        for (int j = 0; j < C; j++) {
            gpt2_mat_row(W, j, C, row);
            double s = 0;
            for (int d = 0; d < HS; d++) s += (double)zh[d] * row[h * HS + d];
            out[j] += s;
        }
    }
    free(row);
    return SS_OK;
}
