/* sae_bench.c - time sae_encode against a bare sgemm of the same shape.
 *
 *   build/sae_bench SAE [--tokens T] [--reps R] [--dump-x X.npy --dump-f F.npy]
 *
 * SAE is a SAELens folder or a .h5 dictionary. x is T rows of seeded
 * N(0, 1) noise. Both timings are the best of R runs after two warm-ups, in
 * the same process, so "ratio" (encode GFLOP/s over sgemm GFLOP/s) says how
 * close the encoder is to the machine's matrix-multiply peak at this shape.
 * Prints one JSON line. bench/run_sae.sh runs it with the PyTorch peer.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "npy.h"
#include "sae.h"

static double best_of(int reps, void (*fn)(void *), void *ctx) {
    fn(ctx);
    fn(ctx);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = ss_now();
        fn(ctx);
        double dt = ss_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct { const sae_dict *d; const float *x; float *f; int T; int rc; char err[SS_ERRLEN]; } run_ctx;

static void run_encode(void *p) {
    run_ctx *c = p;
    if (!c->rc) c->rc = sae_encode(c->d, c->x, c->T, c->f, c->err);
}

static void run_sgemm(void *p) {
    run_ctx *c = p;
    int C = c->d->d_in, S = c->d->d_sae;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->T, S, C, 1.0f, c->x, C, c->d->W_enc, S, 0.0f, c->f, S);
}

int main(int argc, char **argv) {
    const char *path = NULL, *dump_x = NULL, *dump_f = NULL;
    int T = 128, reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump-x") && i + 1 < argc) dump_x = argv[++i];
        else if (!strcmp(argv[i], "--dump-f") && i + 1 < argc) dump_f = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else { fprintf(stderr, "usage: sae_bench SAE [--tokens T] [--reps R] [--dump-x X.npy --dump-f F.npy]\n"); return 2; }
    }
    if (!path || T < 1 || T > 65536 || reps < 1) { fprintf(stderr, "sae_bench: need an SAE, 1 <= T <= 65536, reps >= 1\n"); return 2; }
    char err[SS_ERRLEN];
    sae_dict *d;
    double t0 = ss_now();
    if (sae_load(&d, path, err)) { fprintf(stderr, "sae_bench: %s\n", err); return 2; }
    double load_s = ss_now() - t0;
    int C = d->d_in, S = d->d_sae;
    float *x = malloc(sizeof(float) * (size_t)T * C), *f = malloc(sizeof(float) * (size_t)T * S);
    if (!x || !f) { fprintf(stderr, "sae_bench: out of memory\n"); return 1; }
    uint64_t st = 42;   /* xorshift64* + Box-Muller: the same x on every run */
    for (size_t i = 0; i < (size_t)T * C; i++) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            st ^= st >> 12; st ^= st << 25; st ^= st >> 27;
            u[k] = ((st * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
        }
        x[i] = (float)(sqrt(-2.0 * log(u[0] + 1e-300)) * cos(2 * M_PI * u[1]));
    }
    run_ctx c = {d, x, f, T, 0, ""};
    double enc = best_of(reps, run_encode, &c);
    if (c.rc) { fprintf(stderr, "sae_bench: %s\n", c.err); return 1; }
    int nnz = 0;
    for (size_t i = 0; i < (size_t)T * S; i++) nnz += f[i] != 0.0f;
    if (dump_f) {
        int64_t sh[2] = {T, S};
        if (npy_save(dump_f, f, 2, sh, err)) { fprintf(stderr, "sae_bench: %s\n", err); return 1; }
    }
    double gemm = best_of(reps, run_sgemm, &c);
    if (dump_x) {
        int64_t sh[2] = {T, C};
        if (npy_save(dump_x, x, 2, sh, err)) { fprintf(stderr, "sae_bench: %s\n", err); return 1; }
    }
    double flop = 2.0 * T * C * S;
    printf("{\"sae\":\"%s\",\"arch\":\"%s\",\"d_in\":%d,\"d_sae\":%d,\"tokens\":%d,\"load_s\":%.4f,"
           "\"encode_s\":%.6f,\"encode_tok_s\":%.1f,\"encode_gflops\":%.1f,\"sgemm_gflops\":%.1f,"
           "\"of_sgemm_peak\":%.3f,\"mean_l0\":%.1f}\n",
           path, sae_arch_name(d->arch), C, S, T, load_s, enc, T / enc, flop / enc * 1e-9, flop / gemm * 1e-9,
           gemm / enc, (double)nnz / T);
    free(x);
    free(f);
    sae_free(d);
    return 0;
}
