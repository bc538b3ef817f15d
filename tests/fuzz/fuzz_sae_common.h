/* fuzz_sae_common.h - a valid tiny SAE's tensors (d_in 8, d_sae 16, every
 * optional tensor present so any architecture finds what it needs), written
 * as SAELens sae_weights.safetensors, and a check that runs encode/decode on
 * whatever dictionary a fuzzed file produced. */
#ifndef SS_FUZZ_SAE_COMMON_H
#define SS_FUZZ_SAE_COMMON_H

#include "fuzz_util.h"
#include "sae.h"

#define FZ_D_IN 8
#define FZ_D_SAE 16

static inline float fz_val(unsigned *s) {   /* small deterministic values in [-0.5, 0.5) */
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
}

/* Write the tiny SAE as safetensors to path. */
static inline void fz_write_sae_safetensors(const char *path) {
    static const struct { const char *name; int r, c; } T[] = {
        {"W_enc", FZ_D_IN, FZ_D_SAE}, {"W_dec", FZ_D_SAE, FZ_D_IN}, {"b_enc", FZ_D_SAE, 0}, {"b_dec", FZ_D_IN, 0},
        {"threshold", FZ_D_SAE, 0}, {"b_gate", FZ_D_SAE, 0}, {"b_mag", FZ_D_SAE, 0}, {"r_mag", FZ_D_SAE, 0},
    };
    char hdr[2048];
    size_t off = 0, hl = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        size_t n = (size_t)T[i].r * (T[i].c ? T[i].c : 1) * 4;
        if (T[i].c)
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                   T[i].name, T[i].r, T[i].c, off, off + n);
        else
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                   T[i].name, T[i].r, off, off + n);
        off += n;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint64_t h = hl;
    fwrite(&h, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    unsigned s = 12345;
    for (size_t i = 0; i < off / 4; i++) { float v = fz_val(&s); fwrite(&v, 4, 1, f); }
    fclose(f);
}

/* Exercise a loaded dictionary: metadata invariants, encode, decode. */
static inline void fz_exercise_sae(const sae_dict *d) {
    if (d->d_in < 1 || d->d_sae < 1 || (int64_t)d->d_in * d->d_sae > SAE_MAX_WEIGHTS || !d->W_enc || !d->W_dec ||
        !d->b_enc || !d->b_dec || (d->arch == SAE_TOPK && (d->k < 1 || d->k > d->d_sae)) ||
        (d->arch == SAE_JUMPRELU && !d->threshold) ||
        (d->arch == SAE_GATED && (!d->b_gate || !d->b_mag || !d->r_mag)) || strlen(d->hook_name) >= sizeof d->hook_name) {
        fprintf(stderr, "fuzz: dictionary loaded with inconsistent fields\n");
        abort();
    }
    if ((int64_t)d->d_in * d->d_sae > (1 << 20)) return;   /* keep each run fast */
    enum { T = 3 };
    float *x = malloc(sizeof(float) * T * d->d_in), *f = malloc(sizeof(float) * T * d->d_sae),
          *r = malloc(sizeof(float) * T * d->d_in);
    unsigned s = 7;
    for (int i = 0; i < T * d->d_in; i++) x[i] = 4.0f * fz_val(&s);
    char err[SS_ERRLEN] = "";
    int rc = sae_encode(d, x, T, f, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        if (d->arch == SAE_TOPK)
            for (int t = 0; t < T; t++) {
                int nz = 0;
                for (int i = 0; i < d->d_sae; i++) nz += f[t * d->d_sae + i] != 0;
                if (nz > d->k) { fprintf(stderr, "fuzz: topk row has %d > k = %d nonzeros\n", nz, d->k); abort(); }
            }
        rc = sae_decode(d, f, x, T, r, err);
        fz_check_err(rc, err);
        int idx[8];
        float val[8];
        sae_sparse_row(f, d->d_sae, idx, val, 8);
    }
    free(x); free(f); free(r);
}

#endif
