/* test_sae.c - sae/: encode/decode per architecture and normalisation,
 * SAELens folder import (v6 and pre-6.0 configs), HDF5 v1 round trips,
 * hostile inputs, interventions; against the SAELens/HF fixtures in
 * tests/fixtures/saes (made by tests/fixtures' generator on the GPU machine)
 * when they are present. */
#include "testutil.h"

#include "sae.h"
#include "gpt2.h"
#include "npy.h"
#include "generate.h"
#include "sample.h"
#include <cjson/cJSON.h>

#include <CUnit/Basic.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char TMP[4096];

/* ------------------------------------------------------------ helpers --- */
static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static void fill(float *a, size_t n, float scale) { for (size_t i = 0; i < n; i++) a[i] = scale * frand(); }

static const char *tmp(const char *name) {
    static char buf[8][4200];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", TMP, name);
    return buf[k];
}

/* A random dictionary of the given architecture (built in memory). */
static sae_dict *make_dict(sae_arch arch, sae_norm norm, int C, int S) {
    sae_dict *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "mem");
    d->arch = arch; d->norm = norm; d->d_in = C; d->d_sae = S;
    d->k = arch == SAE_TOPK ? 5 : 0;
    snprintf(d->hook_name, sizeof d->hook_name, "blocks.1.hook_resid_pre");
    snprintf(d->model_name, sizeof d->model_name, "tiny");
    d->apply_b_dec_to_input = 1; d->prepend_bos = 1; d->context_size = 64;
    d->W_enc = malloc(sizeof(float) * C * S); fill(d->W_enc, (size_t)C * S, 0.5f);
    d->W_dec = malloc(sizeof(float) * C * S); fill(d->W_dec, (size_t)C * S, 0.5f);
    d->b_enc = malloc(sizeof(float) * S); fill(d->b_enc, S, arch == SAE_GATED ? 0.0f : 0.3f);
    d->b_dec = malloc(sizeof(float) * C); fill(d->b_dec, C, 0.2f);
    if (arch == SAE_JUMPRELU) { d->threshold = malloc(sizeof(float) * S); for (int i = 0; i < S; i++) d->threshold[i] = 0.3f * (frand() + 1.0f); }
    if (arch == SAE_GATED) {
        d->b_gate = malloc(sizeof(float) * S); fill(d->b_gate, S, 0.3f);
        d->b_mag = malloc(sizeof(float) * S); fill(d->b_mag, S, 0.3f);
        d->r_mag = malloc(sizeof(float) * S); fill(d->r_mag, S, 0.5f);
    }
    return d;
}

/* Straight-from-the-formula reference (double precision). */
static void ref_encode(const sae_dict *d, const float *x, int T, float *f, double *shift, double *outs) {
    int C = d->d_in, S = d->d_sae;
    double *xc = malloc(sizeof(double) * C), *h = malloc(sizeof(double) * S);
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        double mu = 0, in = 1, out = 1, sh = 0;
        if (d->norm == SAE_NORM_CONSTANT_RESCALE) {
            double n = 0; for (int j = 0; j < C; j++) n += (double)xr[j] * xr[j];
            n = sqrt(n); in = sqrt((double)C) / n; out = 1.0 / in;
        } else if (d->norm == SAE_NORM_LAYER) {
            for (int j = 0; j < C; j++) mu += xr[j];
            mu /= C;
            double v = 0; for (int j = 0; j < C; j++) v += (xr[j] - mu) * (xr[j] - mu);
            double sd = sqrt(v / (C - 1));
            in = 1.0 / (sd + 1e-5); out = sd; sh = mu;
        }
        shift[t] = sh; outs[t] = out;
        for (int j = 0; j < C; j++) xc[j] = (xr[j] - sh) * in - (d->apply_b_dec_to_input ? d->b_dec[j] : 0);
        for (int i = 0; i < S; i++) {
            double p = 0;
            for (int j = 0; j < C; j++) p += xc[j] * d->W_enc[(size_t)j * S + i];
            h[i] = p;
        }
        float *fr = f + (size_t)t * S;
        for (int i = 0; i < S; i++) {
            double v = h[i] + d->b_enc[i];
            switch (d->arch) {
            case SAE_STANDARD: case SAE_TOPK: fr[i] = (float)(v > 0 ? v : 0); break;
            case SAE_JUMPRELU: fr[i] = (float)((v > d->threshold[i] && v > 0) ? v : 0); break;
            case SAE_GATED: {
                double mag = h[i] * exp(d->r_mag[i]) + d->b_mag[i];
                fr[i] = (float)((h[i] + d->b_gate[i] > 0 && mag > 0) ? mag : 0);
            } break;
            }
        }
        if (d->arch == SAE_TOPK) {   /* keep the k largest pre-activations */
            for (int i = 0; i < S; i++) {
                double v = h[i] + d->b_enc[i];
                int above = 0;
                for (int j = 0; j < S; j++) above += (h[j] + d->b_enc[j]) > v;
                if (above >= d->k) fr[i] = 0;
            }
        }
    }
    free(xc); free(h);
}

static void ref_decode(const sae_dict *d, const float *f, int T, const double *shift, const double *outs, float *rec) {
    int C = d->d_in, S = d->d_sae;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < C; j++) {
            double v = d->b_dec[j];
            for (int i = 0; i < S; i++) v += (double)f[(size_t)t * S + i] * d->W_dec[(size_t)i * C + j];
            rec[(size_t)t * C + j] = (float)(v * outs[t] + shift[t]);
        }
}

/* Minimal safetensors writer: n tensors of f32 (ndim 1 or 2). */
typedef struct { const char *name; const float *data; int ndim; int64_t shape[2]; } st_out;
static void write_st(const char *path, const st_out *ts, int n) {
    char hdr[8192];
    size_t p = 0, off = 0;
    p += (size_t)snprintf(hdr + p, sizeof hdr - p, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = sizeof(float) * (size_t)ts[i].shape[0] * (size_t)(ts[i].ndim == 2 ? ts[i].shape[1] : 1);
        if (ts[i].ndim == 2)
            p += (size_t)snprintf(hdr + p, sizeof hdr - p, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", ts[i].name, (long long)ts[i].shape[0], (long long)ts[i].shape[1], off, off + bytes);
        else
            p += (size_t)snprintf(hdr + p, sizeof hdr - p, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", ts[i].name, (long long)ts[i].shape[0], off, off + bytes);
        off += bytes;
    }
    p += (size_t)snprintf(hdr + p, sizeof hdr - p, "}");
    while (p % 8) hdr[p++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t hl = p;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, p, f);
    for (int i = 0; i < n; i++)
        fwrite(ts[i].data, sizeof(float), (size_t)ts[i].shape[0] * (size_t)(ts[i].ndim == 2 ? ts[i].shape[1] : 1), f);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* A SAELens folder for d (weights of its architecture) with this cfg.json. */
static void write_folder(const char *dir, const sae_dict *d, const char *cfg) {
    mkdir(dir, 0755);
    char p[4300];
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    write_text(p, cfg);
    int C = d->d_in, S = d->d_sae, n = 0;
    st_out ts[8];
    ts[n++] = (st_out){"W_enc", d->W_enc, 2, {C, S}};
    ts[n++] = (st_out){"W_dec", d->W_dec, 2, {S, C}};
    ts[n++] = (st_out){"b_dec", d->b_dec, 1, {C, 0}};
    if (d->arch != SAE_GATED) ts[n++] = (st_out){"b_enc", d->b_enc, 1, {S, 0}};
    if (d->threshold) ts[n++] = (st_out){"threshold", d->threshold, 1, {S, 0}};
    if (d->b_gate) {
        ts[n++] = (st_out){"b_gate", d->b_gate, 1, {S, 0}};
        ts[n++] = (st_out){"b_mag", d->b_mag, 1, {S, 0}};
        ts[n++] = (st_out){"r_mag", d->r_mag, 1, {S, 0}};
    }
    snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
    write_st(p, ts, n);
}

static int arr_eq(const float *a, const float *b, size_t n) {
    if (!a || !b) return a == b;
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static int dict_eq(const sae_dict *a, const sae_dict *b) {
    size_t C = (size_t)a->d_in, S = (size_t)a->d_sae;
    int ok = a->arch == b->arch && a->norm == b->norm && a->d_in == b->d_in && a->d_sae == b->d_sae && a->k == b->k &&
             !strcmp(a->hook_name, b->hook_name) && !strcmp(a->model_name, b->model_name) &&
             a->apply_b_dec_to_input == b->apply_b_dec_to_input && a->center_writing_weights == b->center_writing_weights &&
             a->prepend_bos == b->prepend_bos && a->context_size == b->context_size;
    if (!ok) { printf("  metadata differs\n"); return 0; }
    ok = arr_eq(a->W_enc, b->W_enc, C * S) && arr_eq(a->W_dec, b->W_dec, C * S) && arr_eq(a->b_enc, b->b_enc, S) &&
         arr_eq(a->b_dec, b->b_dec, C) && arr_eq(a->threshold, b->threshold, S) && arr_eq(a->b_gate, b->b_gate, S) &&
         arr_eq(a->b_mag, b->b_mag, S) && arr_eq(a->r_mag, b->r_mag, S) && arr_eq(a->log_sparsity, b->log_sparsity, S);
    if (!ok) { printf("  arrays differ\n"); return 0; }
    if ((a->labels == NULL) != (b->labels == NULL)) { printf("  labels presence differs\n"); return 0; }
    if (a->labels)
        for (size_t i = 0; i < S; i++)
            if (strcmp(a->labels[i] ? a->labels[i] : "", b->labels[i] ? b->labels[i] : "")) { printf("  label %zu differs\n", i); return 0; }
    if ((a->source == NULL) != (b->source == NULL) || (a->source && strcmp(a->source, b->source))) { printf("  source differs\n"); return 0; }
    return 1;
}

/* ------------------------------------------------------ encode/decode --- */
static void check_arch_norm(sae_arch arch, sae_norm norm) {
    int C = 16, S = 40, T = 7;
    sae_dict *d = make_dict(arch, norm, C, S);
    float *x = malloc(sizeof(float) * T * C), *f = malloc(sizeof(float) * T * S), *fr = malloc(sizeof(float) * T * S);
    float *rec = malloc(sizeof(float) * T * C), *rr = malloc(sizeof(float) * T * C);
    double sh[7], os[7];
    fill(x, (size_t)T * C, 2.0f);
    char err[SS_ERRLEN], name[96];
    CU_ASSERT_EQUAL_FATAL(sae_encode(d, x, T, f, err), SS_OK);
    ref_encode(d, x, T, fr, sh, os);
    snprintf(name, sizeof name, "encode %s/%s", sae_arch_name(arch), sae_norm_name(norm));
    CU_ASSERT(tu_allclose(name, f, fr, (size_t)T * S, 1e-5f, 1e-5f));
    CU_ASSERT_EQUAL(sae_decode(d, f, x, T, rec, err), SS_OK);
    ref_decode(d, fr, T, sh, os, rr);
    snprintf(name, sizeof name, "decode %s/%s", sae_arch_name(arch), sae_norm_name(norm));
    CU_ASSERT(tu_allclose(name, rec, rr, (size_t)T * C, 1e-5f, 1e-5f));
    if (arch == SAE_TOPK)
        for (int t = 0; t < T; t++) {
            int nz = 0;
            for (int i = 0; i < S; i++) nz += f[(size_t)t * S + i] != 0;
            CU_ASSERT(nz <= d->k);
        }
    free(x); free(f); free(fr); free(rec); free(rr);
    sae_free(d);
}

static void test_encode_decode(void) {
    for (int a = SAE_STANDARD; a <= SAE_GATED; a++)
        for (int n = SAE_NORM_NONE; n <= SAE_NORM_LAYER; n++) check_arch_norm((sae_arch)a, (sae_norm)n);
}

static void test_sparse_row(void) {
    float row[8] = {0, 3, 0, 1, 5, 0, 2, 0};
    int idx[3]; float val[3];
    int n = sae_sparse_row(row, 8, idx, val, 3);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT(idx[0] == 4 && idx[1] == 1 && idx[2] == 6);
    CU_ASSERT(val[0] == 5 && val[1] == 3 && val[2] == 2);
    CU_ASSERT_EQUAL(sae_sparse_row(row, 8, idx, val, 0), 0);
    int idx8[8]; float val8[8];
    CU_ASSERT_EQUAL(sae_sparse_row(row, 8, idx8, val8, 8), 4);
}

/* ------------------------------------------------------------- HDF5 ----- */
static void test_h5_roundtrip(void) {
    char err[SS_ERRLEN];
    for (int a = SAE_STANDARD; a <= SAE_GATED; a++) {
        sae_dict *d = make_dict((sae_arch)a, (sae_norm)(a % 4), 24, 3000);   /* big enough to chunk */
        d->center_writing_weights = a & 1;
        d->prepend_bos = a != 2;
        d->log_sparsity = malloc(sizeof(float) * d->d_sae);
        fill(d->log_sparsity, d->d_sae, 3.0f);
        d->log_sparsity[7] = -INFINITY;
        d->labels = calloc(d->d_sae, sizeof(char *));
        for (int i = 0; i < d->d_sae; i++) d->labels[i] = strdup(i % 3 ? "" : "caf\xc3\xa9 latent");
        d->source = strdup("{\"d_in\": 24}");
        const char *p = tmp("rt.h5");
        CU_ASSERT_EQUAL_FATAL(sae_save_h5(d, p, err), SS_OK);
        sae_dict *e = NULL;
        int rc = sae_load(&e, p, err);
        if (rc) printf("  %s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
        CU_ASSERT(dict_eq(d, e));
        sae_free(e);
        sae_free(d);
    }
    /* no temporary left behind */
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", TMP);
    CU_ASSERT(system(cmd) != 0);
}

/* Rewrite one attribute / dataset of an existing h5 with HDF5 directly. */
static void h5_set_int_attr(const char *path, const char *name, long long v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a); H5Sclose(sp); H5Fclose(f);
}
static void h5_set_str_attr(const char *path, const char *name, const char *v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    hid_t t = H5Tcopy(H5T_C_S1); H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a); H5Sclose(sp); H5Tclose(t); H5Fclose(f);
}
static void h5_replace_dset(const char *path, const char *name, hid_t type, int ndim, const hsize_t *dims) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
    if (type >= 0) {
        hid_t sp = H5Screate_simple(ndim, dims, NULL);
        hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(ds); H5Sclose(sp);
    }
    H5Fclose(f);
}

static void expect_bad(const char *path, const char *must_contain) {
    char err[SS_ERRLEN] = "";
    sae_dict *d = NULL;
    int rc = sae_load(&d, path, err);
    printf("  %-28s -> rc %d: %s\n", must_contain, rc, err);
    CU_ASSERT_EQUAL(rc, SS_EINPUT);
    CU_ASSERT_PTR_NULL(d);
    CU_ASSERT(strstr(err, must_contain) != NULL);
    CU_ASSERT(strchr(err, '\n') == NULL);
    sae_free(d);
}

static void test_h5_hostile(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(SAE_STANDARD, SAE_NORM_NONE, 16, 5000);
    const char *good = tmp("good.h5");
    CU_ASSERT_EQUAL_FATAL(sae_save_h5(d, good, err), SS_OK);
    char cmd[9000];
    const char *p = tmp("bad.h5");
#define FRESH() do { snprintf(cmd, sizeof cmd, "cp %s %s", good, p); CU_ASSERT(system(cmd) == 0); } while (0)

    /* truncated */
    snprintf(cmd, sizeof cmd, "head -c 40000 %s > %s", good, p);
    CU_ASSERT(system(cmd) == 0);
    expect_bad(p, "bad.h5");
    /* not HDF5 at all */
    write_text(p, "hello");
    expect_bad(p, "not an HDF5 file");
    /* wrong format attribute */
    FRESH(); h5_set_str_attr(p, "format", "something-else");
    expect_bad(p, "attribute 'format'");
    FRESH(); h5_set_int_attr(p, "format_version", 7);
    expect_bad(p, "format_version");
    FRESH(); h5_set_str_attr(p, "architecture", "batchtopk-ish");
    expect_bad(p, "unknown architecture");
    /* absurd sizes */
    FRESH(); h5_set_int_attr(p, "d_sae", 2000000000LL);
    expect_bad(p, "d_sae");
    FRESH(); h5_set_int_attr(p, "d_sae", 4000);
    expect_bad(p, "dataset 'W_enc': shape [16,5000], expected [16,4000]");
    /* missing / wrong datasets */
    FRESH(); h5_replace_dset(p, "W_dec", -1, 0, NULL);
    expect_bad(p, "missing dataset 'W_dec'");
    hsize_t dims2[2] = {5000, 16};
    FRESH(); h5_replace_dset(p, "W_dec", H5T_STD_I32LE, 2, dims2);
    expect_bad(p, "dataset 'W_dec': wrong dtype");
    hsize_t dims3[2] = {16, 5000};
    FRESH(); h5_replace_dset(p, "W_dec", H5T_IEEE_F32LE, 2, dims3);
    expect_bad(p, "dataset 'W_dec': shape [16,5000], expected [5000,16]");
    /* missing attribute */
    FRESH(); { hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT); H5Adelete(f, "hook_name"); H5Fclose(f); }
    expect_bad(p, "missing attribute 'hook_name'");
    /* NaN in weights */
    d->W_dec[3 * 16 + 5] = NAN;
    const char *pn = tmp("nan.h5");
    CU_ASSERT_EQUAL(sae_save_h5(d, pn, err), SS_EINPUT);   /* refuses to write it */
    CU_ASSERT(access(pn, F_OK) != 0);
    d->W_dec[3 * 16 + 5] = 0;
    CU_ASSERT_EQUAL(sae_save_h5(d, pn, err), SS_OK);
    {
        hid_t f = H5Fopen(pn, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t ds = H5Dopen2(f, "W_dec", H5P_DEFAULT);
        d->W_dec[3 * 16 + 5] = INFINITY;
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->W_dec);
        H5Dclose(ds); H5Fclose(f);
    }
    expect_bad(pn, "dataset 'W_dec': non-finite value inf at index [3,5]");
    expect_bad(tmp("does-not-exist.h5"), "no such file");
#undef FRESH
    sae_free(d);
}

/* Random byte corruption of a valid dictionary: every load ends in SS_OK or
   SS_EINPUT with one line, never a crash or a hang (HDF5 itself would). */
static void test_h5_corrupted(void) {
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(SAE_STANDARD, SAE_NORM_NONE, 16, 64);
    d->labels = calloc(64, sizeof(char *));
    for (int i = 0; i < 64; i++) d->labels[i] = strdup(i % 5 ? "" : "a label");
    const char *good = tmp("fz-good.h5"), *bad = tmp("fz.h5");
    CU_ASSERT_EQUAL_FATAL(sae_save_h5(d, good, err), SS_OK);
    sae_free(d);
    FILE *f = fopen(good, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)n), *cp = malloc((size_t)n);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    int counts[3] = {0, 0, 0};
    for (int it = 0; it < 60; it++) {
        memcpy(cp, buf, (size_t)n);
        long len = n;
        int flips = 1 + (int)((frand() + 1.0f) * 4);
        for (int k = 0; k < flips; k++) cp[(long)((frand() + 1.0f) * 0.5f * (n - 1))] = (unsigned char)((frand() + 1.0f) * 127.9f);
        if (it % 7 == 0) len = (long)((frand() + 1.0f) * 0.5f * n);
        f = fopen(bad, "wb");
        fwrite(cp, 1, (size_t)len, f);
        fclose(f);
        sae_dict *e = NULL;
        err[0] = 0;
        double t0 = ss_now();
        int rc = sae_load(&e, bad, err);
        if (ss_now() - t0 > 2) printf("  slow (%.1fs): %s\n", ss_now() - t0, err);
        CU_ASSERT(rc == SS_OK || rc == SS_EINPUT);
        CU_ASSERT(rc != SS_OK || e != NULL);
        CU_ASSERT(strchr(err, '\n') == NULL);
        if (rc >= 0 && rc <= 2) counts[rc]++;
        sae_free(e);
    }
    printf("  60 corrupted files: %d loaded, %d rejected\n", counts[0], counts[2]);
    free(buf); free(cp);
}

/* ------------------------------------------------------------ SAELens --- */
static void test_saelens_import(void) {
    char err[SS_ERRLEN], dir[4200];
    /* v6 layout: topk with k, metadata, centring */
    sae_dict *d = make_dict(SAE_TOPK, SAE_NORM_NONE, 16, 40);
    snprintf(dir, sizeof dir, "%s/v6topk", TMP);
    write_folder(dir, d,
                 "{\"architecture\": \"topk\", \"d_in\": 16, \"d_sae\": 40, \"dtype\": \"float32\", \"device\": \"cpu\","
                 " \"apply_b_dec_to_input\": false, \"normalize_activations\": \"constant_norm_rescale\", \"k\": 7,"
                 " \"reshape_activations\": \"none\", \"metadata\": {\"model_name\": \"gpt2\", \"hook_name\":"
                 " \"blocks.3.hook_resid_post\", \"hook_head_index\": null, \"prepend_bos\": false, \"context_size\": 256,"
                 " \"model_from_pretrained_kwargs\": {\"center_writing_weights\": true}, \"sae_lens_version\": \"6.5.1\"}}");
    sae_dict *e = NULL;
    int rc = sae_load(&e, dir, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    CU_ASSERT_EQUAL(e->arch, SAE_TOPK);
    CU_ASSERT_EQUAL(e->k, 7);
    CU_ASSERT_EQUAL(e->norm, SAE_NORM_CONSTANT_RESCALE);
    CU_ASSERT_EQUAL(e->apply_b_dec_to_input, 0);
    CU_ASSERT_STRING_EQUAL(e->hook_name, "blocks.3.hook_resid_post");
    CU_ASSERT_STRING_EQUAL(e->model_name, "gpt2");
    CU_ASSERT_EQUAL(e->prepend_bos, 0);
    CU_ASSERT_EQUAL(e->context_size, 256);
    CU_ASSERT_EQUAL(e->center_writing_weights, 1);
    CU_ASSERT(arr_eq(e->W_enc, d->W_enc, 16 * 40) && arr_eq(e->W_dec, d->W_dec, 16 * 40));
    CU_ASSERT_PTR_NOT_NULL(e->source);
    /* folder -> h5 -> load: identical */
    CU_ASSERT_EQUAL(sae_save_h5(e, tmp("v6topk.h5"), err), SS_OK);
    sae_dict *g = NULL;
    CU_ASSERT_EQUAL_FATAL(sae_load(&g, tmp("v6topk.h5"), err), SS_OK);
    CU_ASSERT(dict_eq(e, g));
    sae_free(g);
    sae_free(e);
    sae_free(d);

    /* pre-6.0 flat layout: hook_point, activation_fn_str topk + kwargs, top-level kwargs */
    d = make_dict(SAE_STANDARD, SAE_NORM_NONE, 16, 40);
    snprintf(dir, sizeof dir, "%s/oldtopk", TMP);
    write_folder(dir, d,
                 "{\"model_name\": \"gpt2-small\", \"hook_point\": \"blocks.2.hook_resid_pre\", \"hook_point_layer\": 2,"
                 " \"hook_point_head_index\": null, \"d_in\": 16, \"d_sae\": 40, \"activation_fn_str\": \"topk\","
                 " \"activation_fn_kwargs\": {\"k\": 4}, \"normalize_activations\": false, \"context_size\": 128,"
                 " \"model_from_pretrained_kwargs\": {\"center_writing_weights\": true}, \"sae_lens_training_version\": \"3.13.0\"}");
    rc = sae_load(&e, dir, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    CU_ASSERT_EQUAL(e->arch, SAE_TOPK);
    CU_ASSERT_EQUAL(e->k, 4);
    CU_ASSERT_EQUAL(e->norm, SAE_NORM_NONE);
    CU_ASSERT_EQUAL(e->apply_b_dec_to_input, 1);
    CU_ASSERT_EQUAL(e->prepend_bos, 1);
    CU_ASSERT_EQUAL(e->center_writing_weights, 1);
    CU_ASSERT_STRING_EQUAL(e->hook_name, "blocks.2.hook_resid_pre");
    sae_free(e);

    /* old standard without architecture; sparsity.safetensors */
    snprintf(dir, sizeof dir, "%s/oldstd", TMP);
    write_folder(dir, d,
                 "{\"hook_name\": \"blocks.0.hook_resid_pre\", \"d_in\": 16, \"d_sae\": 40, \"normalize_activations\": true}");
    float sp[40];
    fill(sp, 40, 4.0f);
    char p[4300];
    snprintf(p, sizeof p, "%s/sparsity.safetensors", dir);
    write_st(p, (st_out[]){{"sparsity", sp, 1, {40, 0}}}, 1);
    rc = sae_load(&e, dir, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    CU_ASSERT_EQUAL(e->arch, SAE_STANDARD);
    CU_ASSERT_EQUAL(e->norm, SAE_NORM_EXPECTED_AVG);
    CU_ASSERT_EQUAL(e->center_writing_weights, 0);
    CU_ASSERT(arr_eq(e->log_sparsity, sp, 40));
    sae_free(e);
    sae_free(d);

    /* jumprelu checkpoint with log_threshold instead of threshold */
    d = make_dict(SAE_JUMPRELU, SAE_NORM_NONE, 16, 40);
    snprintf(dir, sizeof dir, "%s/logthr", TMP);
    write_folder(dir, d, "{\"architecture\": \"jumprelu\", \"d_in\": 16, \"d_sae\": 40, \"hook_name\": \"blocks.0.hook_resid_pre\"}");
    {
        float lt[40];
        for (int i = 0; i < 40; i++) lt[i] = logf(d->threshold[i]);
        snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
        write_st(p, (st_out[]){{"W_enc", d->W_enc, 2, {16, 40}}, {"W_dec", d->W_dec, 2, {40, 16}}, {"b_enc", d->b_enc, 1, {40, 0}},
                               {"b_dec", d->b_dec, 1, {16, 0}}, {"log_threshold", lt, 1, {40, 0}}}, 5);
    }
    rc = sae_load(&e, dir, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    CU_ASSERT(tu_allclose("threshold from log_threshold", e->threshold, d->threshold, 40, 1e-6f, 1e-6f));
    sae_free(e);
    sae_free(d);

    /* jumprelu and gated through folders */
    for (int a = SAE_JUMPRELU; a <= SAE_GATED; a++) {
        d = make_dict((sae_arch)a, SAE_NORM_LAYER, 16, 40);
        snprintf(dir, sizeof dir, "%s/v6_%d", TMP, a);
        char cfg[1024];
        snprintf(cfg, sizeof cfg,
                 "{\"architecture\": \"%s\", \"d_in\": 16, \"d_sae\": 40, \"apply_b_dec_to_input\": true,"
                 " \"normalize_activations\": \"layer_norm\", \"metadata\": {\"hook_name\": \"blocks.1.hook_resid_pre\"}}",
                 sae_arch_name((sae_arch)a));
        write_folder(dir, d, cfg);
        rc = sae_load(&e, dir, err);
        if (rc) printf("  %s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
        CU_ASSERT_EQUAL(e->arch, (sae_arch)a);
        float x[3 * 16], f1[3 * 40], f2[3 * 40];
        fill(x, 48, 1.0f);
        sae_encode(d, x, 3, f1, err);
        sae_encode(e, x, 3, f2, err);
        CU_ASSERT(memcmp(f1, f2, sizeof f1) == 0);
        sae_free(e);
        sae_free(d);
    }
}

static void test_saelens_hostile(void) {
    char dir[4200], p[4300];
    sae_dict *d = make_dict(SAE_STANDARD, SAE_NORM_NONE, 16, 40);
    const char *okcfg = "{\"architecture\": \"standard\", \"d_in\": 16, \"d_sae\": 40, \"metadata\": {\"hook_name\": \"blocks.1.hook_resid_pre\"}}";
    snprintf(dir, sizeof dir, "%s/bad", TMP);

    write_folder(dir, d, "{\"d_in\": 16, ");
    expect_bad(dir, "not valid JSON");
    write_folder(dir, d, "{\"architecture\": \"matryoshka\", \"d_in\": 16, \"d_sae\": 40, \"hook_name\": \"x\"}");
    expect_bad(dir, "unknown architecture 'matryoshka'");
    write_folder(dir, d, "{\"d_in\": 16, \"hook_name\": \"x\"}");
    expect_bad(dir, "missing field 'd_sae'");
    write_folder(dir, d, "{\"d_in\": 16, \"d_sae\": 40}");
    expect_bad(dir, "hook_name");
    write_folder(dir, d, "{\"d_in\": 16, \"d_sae\": 40, \"hook_name\": \"x\", \"normalize_activations\": \"bogus\"}");
    expect_bad(dir, "normalize_activations");
    write_folder(dir, d, "{\"architecture\": \"topk\", \"d_in\": 16, \"d_sae\": 40, \"hook_name\": \"x\"}");
    expect_bad(dir, "'k'");
    write_folder(dir, d, "{\"architecture\": \"standard\", \"d_in\": 32, \"d_sae\": 40, \"hook_name\": \"x\"}");
    expect_bad(dir, "'W_enc'");
    write_folder(dir, d, "{\"d_in\": 16, \"d_sae\": 40000000000, \"hook_name\": \"x\"}");
    expect_bad(dir, "d_sae");
    write_folder(dir, d, "{\"architecture\": \"jumprelu\", \"d_in\": 16, \"d_sae\": 40, \"hook_name\": \"x\"}");
    expect_bad(dir, "threshold");
    /* NaN weight */
    d->W_enc[2 * 40 + 9] = NAN;
    write_folder(dir, d, okcfg);
    expect_bad(dir, "dataset 'W_enc': non-finite value nan at index [2,9]");
    d->W_enc[2 * 40 + 9] = 0;
    /* missing weights file / tensor */
    write_folder(dir, d, okcfg);
    snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
    write_st(p, (st_out[]){{"W_enc", d->W_enc, 2, {16, 40}}}, 1);
    expect_bad(dir, "missing tensor 'W_dec'");
    unlink(p);
    expect_bad(dir, "sae_weights.safetensors");
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    unlink(p);
    expect_bad(dir, "cfg.json");
    sae_free(d);
}

/* ------------------------------------------------------ interventions --- */
static void run_hook(sae_intervention *iv, float *act, int T, int C, int pos0) {
    gpt2_hook_point hp = {GPT2_HOOK_RESID_PRE, 1};
    char err[SS_ERRLEN];
    int rc = sae_intervention_hook(iv, &hp, act, T, C, pos0, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL(rc, SS_OK);
}

static void check_interventions(sae_arch arch, sae_norm norm) {
    int C = 16, S = 40, T = 5;
    char err[SS_ERRLEN];
    sae_dict *d = make_dict(arch, norm, C, S);
    float x[5 * 16], y[5 * 16], f[5 * 40], rec[5 * 16], want[5 * 16];
    fill(x, (size_t)T * C, 2.0f);
    sae_encode(d, x, T, f, err);
    sae_decode(d, f, x, T, rec, err);
    sae_intervention *iv;

    /* recon + error, no edits: identity */
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, NULL, 0, NULL, SAE_REPLACE_RECON_ERR, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 0);
    CU_ASSERT(tu_allclose("recon+error == identity", y, x, (size_t)T * C, 1e-5f, 1e-5f));
    sae_intervention_free(iv);

    /* recon: decode(encode(x)) */
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, NULL, 0, NULL, SAE_REPLACE_RECON, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 0);
    CU_ASSERT(tu_allclose("recon == decode(encode(x))", y, rec, (size_t)T * C, 1e-6f, 0));
    sae_intervention_free(iv);

    /* clamp latent i to v: x + decode(f') - decode(f); pick a latent that fires */
    int li = 0;
    for (int i = 0; i < S; i++) if (f[(size_t)2 * S + i] > 0) { li = i; break; }
    sae_edit cl = {li, SAE_EDIT_CLAMP, 3.5f};
    float f2[5 * 40], rec2[5 * 16];
    memcpy(f2, f, sizeof f);
    for (int t = 0; t < T; t++) f2[(size_t)t * S + li] = 3.5f;
    sae_decode(d, f2, x, T, rec2, err);
    for (int i = 0; i < T * C; i++) want[i] = x[i] + (rec2[i] - rec[i]);
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &cl, 1, NULL, SAE_REPLACE_NONE, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 0);
    char name[96];
    snprintf(name, sizeof name, "clamp %s/%s", sae_arch_name(arch), sae_norm_name(norm));
    CU_ASSERT(tu_allclose(name, y, want, (size_t)T * C, 1e-5f, 1e-5f));
    sae_intervention_free(iv);
    /* the same through recon+error */
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &cl, 1, NULL, SAE_REPLACE_RECON_ERR, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 0);
    CU_ASSERT(tu_allclose("clamp via recon+error", y, want, (size_t)T * C, 1e-5f, 1e-5f));
    sae_intervention_free(iv);

    /* boost + ablate at the last position only, prefill then a decode step */
    sae_edit two[2] = {{7, SAE_EDIT_BOOST, -2.0f}, {li, SAE_EDIT_CLAMP, 0.0f}};
    steer_positions last = {.mode = POS_LAST};
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, two, 2, &last, SAE_REPLACE_NONE, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 0);
    CU_ASSERT(memcmp(y, x, sizeof(float) * (T - 1) * C) == 0);   /* earlier rows untouched */
    float exp_last[16];
    memcpy(f2, f, sizeof f);
    f2[(size_t)(T - 1) * S + li] = 0.0f;
    sae_decode(d, f2 + (size_t)(T - 1) * S, x + (size_t)(T - 1) * C, 1, rec2, err);
    for (int j = 0; j < C; j++)
        exp_last[j] = x[(size_t)(T - 1) * C + j] + rec2[j] - rec[(size_t)(T - 1) * C + j] - 2.0f * d->W_dec[7 * C + j];
    CU_ASSERT(tu_allclose("ablate+boost at last", y + (size_t)(T - 1) * C, exp_last, (size_t)C, 1e-5f, 1e-5f));
    memcpy(y, x + C, sizeof(float) * C);   /* a decode step at position 9 */
    run_hook(iv, y, 1, C, 9);
    CU_ASSERT(memcmp(y, x + C, sizeof(float) * C) != 0);
    sae_intervention_free(iv);

    /* explicit positions */
    steer_positions lst = {.mode = POS_LIST, .n = 1, .list = {12}};
    sae_edit b = {3, SAE_EDIT_BOOST, 1.0f};
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &b, 1, &lst, SAE_REPLACE_NONE, err), SS_OK);
    memcpy(y, x, sizeof x);
    run_hook(iv, y, T, C, 10);  /* positions 10..14: only row 2 */
    for (int t = 0; t < T; t++)
        for (int j = 0; j < C; j++) {
            float w = x[t * C + j] + (t == 2 ? d->W_dec[3 * C + j] : 0.0f);
            if (fabsf(y[t * C + j] - w) > 1e-6f) { CU_FAIL("position list"); t = T; break; }
        }
    sae_intervention_free(iv);

    /* bad edits */
    sae_edit bad = {S, SAE_EDIT_BOOST, 1.0f};
    CU_ASSERT_EQUAL(sae_intervention_new(&iv, d, &bad, 1, NULL, SAE_REPLACE_NONE, err), SS_EINPUT);
    CU_ASSERT(strstr(err, "out of range") != NULL);
    bad.latent = 0; bad.value = NAN;
    CU_ASSERT_EQUAL(sae_intervention_new(&iv, d, &bad, 1, NULL, SAE_REPLACE_NONE, err), SS_EINPUT);
    sae_free(d);
}

static void test_interventions(void) {
    for (int a = SAE_STANDARD; a <= SAE_GATED; a++)
        for (int n = SAE_NORM_NONE; n <= SAE_NORM_LAYER; n++) check_interventions((sae_arch)a, (sae_norm)n);
}

static void test_dec_norm(void) {
    sae_dict *d = make_dict(SAE_STANDARD, SAE_NORM_NONE, 16, 40);
    double s = 0;
    for (int j = 0; j < 16; j++) s += d->W_dec[5 * 16 + j] * d->W_dec[5 * 16 + j];
    CU_ASSERT(fabs(sae_latent_dec_norm(d, 5) - sqrt(s)) < 1e-6);
    CU_ASSERT_EQUAL(sae_latent_dec_norm(d, 40), 0.0f);
    sae_free(d);
}


/* ------------------------------------------------- with a (random) model --- */
/* A tiny random GPT-2 written as an HF checkpoint (unprefixed names). */
#define MC 16
#define ML 3
#define MV 97
#define MP 32
static void write_model(const char *dir) {
    mkdir(dir, 0755);
    char p[4300];
    snprintf(p, sizeof p, "%s/config.json", dir);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"gpt2\", \"n_embd\": %d, \"n_layer\": %d, \"n_head\": 4, \"vocab_size\": %d,"
             " \"n_positions\": %d, \"layer_norm_epsilon\": 1e-5, \"activation_function\": \"gelu_new\"}", MC, ML, MV, MP);
    write_text(p, cfg);
    static float buf[200000];
    size_t used = 0;
    st_out ts[64];
    int n = 0;
#define T2(nm, a, b, sc, off) do { float *q = buf + used; size_t k = (size_t)(a) * (b); fill(q, k, sc); for (size_t z = 0; z < k; z++) q[z] += off; \
        used += k; ts[n++] = (st_out){strdup(nm), q, (b) > 1 ? 2 : 1, {(a), (b) > 1 ? (b) : 0}}; } while (0)
    T2("wte.weight", MV, MC, 0.3f, 0.0f);
    T2("wpe.weight", MP, MC, 0.3f, 0.0f);
    for (int l = 0; l < ML; l++) {
        char nm[64];
#define NM(s) (snprintf(nm, sizeof nm, "h.%d.%s", l, s), nm)
        T2(NM("ln_1.weight"), MC, 1, 0.1f, 1.0f);  T2(NM("ln_1.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("attn.c_attn.weight"), MC, 3 * MC, 0.3f, 0.0f);  T2(NM("attn.c_attn.bias"), 3 * MC, 1, 0.1f, 0.0f);
        T2(NM("attn.c_proj.weight"), MC, MC, 0.3f, 0.0f);  T2(NM("attn.c_proj.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("ln_2.weight"), MC, 1, 0.1f, 1.0f);  T2(NM("ln_2.bias"), MC, 1, 0.1f, 0.0f);
        T2(NM("mlp.c_fc.weight"), MC, 4 * MC, 0.3f, 0.0f);  T2(NM("mlp.c_fc.bias"), 4 * MC, 1, 0.1f, 0.0f);
        T2(NM("mlp.c_proj.weight"), 4 * MC, MC, 0.3f, 0.0f);  T2(NM("mlp.c_proj.bias"), MC, 1, 0.1f, 0.0f);
#undef NM
    }
    T2("ln_f.weight", MC, 1, 0.1f, 1.0f);
    T2("ln_f.bias", MC, 1, 0.1f, 0.0f);
#undef T2
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, ts, n);
    for (int i = 0; i < n; i++) free((char *)ts[i].name);
}

static gpt2_model *MODEL;
static const int TOKS[12] = {5, 17, 42, 3, 88, 60, 1, 2, 90, 33, 7, 71};
#define NT 12

/* records the activation at a hook (no edits) */
typedef struct { float *x; int C; } rec_ctx;
static int rec_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    rec_ctx *c = ctx;
    memcpy(c->x + (size_t)pos0 * c->C, act, sizeof(float) * T * width);
    return SS_OK;
}

/* reference clamp in double: x' = x + decode(f') - decode(f) */
typedef struct { const sae_dict *d; int latent; float value; } refclamp_ctx;
static int refclamp_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    refclamp_ctx *c = ctx;
    int C = c->d->d_in, S = c->d->d_sae;
    float *f = calloc((size_t)T * S, sizeof(float)), *r1 = calloc((size_t)T * C, sizeof(float)), *r2 = calloc((size_t)T * C, sizeof(float));
    double *sh = calloc((size_t)T, sizeof(double)), *os = calloc((size_t)T, sizeof(double));
    ref_encode(c->d, act, T, f, sh, os);
    ref_decode(c->d, f, T, sh, os, r1);
    for (int t = 0; t < T; t++) f[(size_t)t * S + c->latent] = c->value;
    ref_decode(c->d, f, T, sh, os, r2);
    for (int i = 0; i < T * C; i++) act[i] += r2[i] - r1[i];
    free(f); free(r1); free(r2); free(sh); free(os);
    return SS_OK;
}

static float *run_logits(gpt2_state *s, const int *toks, int T) {
    char err[SS_ERRLEN];
    float *lg = malloc(sizeof(float) * T * MV);
    gpt2_state_reset(s);
    int rc = gpt2_forward(s, toks, T, lg, 1, err);
    if (rc) printf("  forward: %s\n", err);
    CU_ASSERT_EQUAL(rc, SS_OK);
    return lg;
}

static sae_dict *model_dict(sae_arch arch, sae_norm norm, int center) {
    sae_dict *d = make_dict(arch, norm, MC, 48);
    d->center_writing_weights = center;
    snprintf(d->hook_name, sizeof d->hook_name, "blocks.1.hook_resid_mid");
    return d;
}

static void test_model_capture(void) {
    char err[SS_ERRLEN];
    gpt2_state *s;
    CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, MODEL, MP, err), SS_OK);
    for (int center = 0; center <= 1; center++) {
        sae_dict *d = model_dict(SAE_STANDARD, SAE_NORM_NONE, center);
        gpt2_hook_point hp;
        CU_ASSERT_EQUAL_FATAL(sae_check_model(d, &MODEL->cfg, &hp, err), SS_OK);
        float raw[NT * MC], got[NT * MC];
        rec_ctx rc_ = {raw, MC};
        gpt2_clear_hooks(s);
        gpt2_add_hook(s, &hp, rec_hook, &rc_, 0, err);
        float *lg = run_logits(s, TOKS, NT);
        free(lg);
        gpt2_clear_hooks(s);
        CU_ASSERT_EQUAL(sae_capture(d, s, TOKS, NT, got, err), SS_OK);
        CU_ASSERT_EQUAL(s->n_hooks, 0);
        CU_ASSERT_EQUAL(s->stop_layer, MODEL->cfg.n_layer);
        if (center)
            for (int t = 0; t < NT; t++) {
                double mu = 0;
                for (int j = 0; j < MC; j++) mu += raw[t * MC + j];
                for (int j = 0; j < MC; j++) raw[t * MC + j] -= (float)(mu / MC);
            }
        CU_ASSERT(tu_allclose(center ? "capture (centred)" : "capture", got, raw, NT * MC, 1e-5f, 0));
        sae_free(d);
    }
    /* model mismatch */
    sae_dict *d = make_dict(SAE_STANDARD, SAE_NORM_NONE, MC + 1, 10);
    gpt2_hook_point hp;
    CU_ASSERT_EQUAL(sae_check_model(d, &MODEL->cfg, &hp, err), SS_EINPUT);
    printf("  %s\n", err);
    CU_ASSERT(strstr(err, "d_in") != NULL);
    snprintf(d->hook_name, sizeof d->hook_name, "blocks.7.hook_resid_pre");
    CU_ASSERT_EQUAL(sae_check_model(d, &MODEL->cfg, &hp, err), SS_EINPUT);
    printf("  %s\n", err);
    sae_free(d);
    gpt2_state_free(s);
}

static void test_model_interventions(void) {
    char err[SS_ERRLEN];
    gpt2_state *s;
    CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, MODEL, MP, err), SS_OK);
    gpt2_clear_hooks(s);
    float *clean = run_logits(s, TOKS, NT);
    for (int a = SAE_STANDARD; a <= SAE_GATED; a++)
        for (int center = 0; center <= 1; center++) {
            sae_norm norm = (sae_norm)((a + center) % 4);
            sae_dict *d = model_dict((sae_arch)a, norm, center);
            char name[128];
            gpt2_hook_point hp;
            sae_check_model(d, &MODEL->cfg, &hp, err);
            sae_intervention *iv;
            /* recon + error, no edits: the model is unchanged */
            CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, NULL, 0, NULL, SAE_REPLACE_RECON_ERR, err), SS_OK);
            gpt2_clear_hooks(s);
            CU_ASSERT_EQUAL(sae_intervention_attach(iv, s, err), SS_OK);
            float *lg = run_logits(s, TOKS, NT);
            snprintf(name, sizeof name, "recon+error logits %s/%s c%d", sae_arch_name(d->arch), sae_norm_name(norm), center);
            CU_ASSERT(tu_allclose(name, lg, clean, NT * MV, 1e-4f, 0));
            free(lg);
            sae_intervention_free(iv);

            /* boost == adding c * W_dec[i] with lib's steer_add at the same hook */
            sae_edit b = {11, SAE_EDIT_BOOST, 2.5f};
            CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &b, 1, NULL, SAE_REPLACE_NONE, err), SS_OK);
            gpt2_clear_hooks(s);
            sae_intervention_attach(iv, s, err);
            lg = run_logits(s, TOKS, NT);
            steer_add add = {d->W_dec + 11 * MC, 1, MC, 2.5f, {.mode = POS_ALL}};
            gpt2_clear_hooks(s);
            gpt2_add_hook(s, &hp, steer_add_hook, &add, 0, err);
            float *lg2 = run_logits(s, TOKS, NT);
            snprintf(name, sizeof name, "boost == steer_add %s c%d", sae_arch_name(d->arch), center);
            CU_ASSERT(tu_allclose(name, lg, lg2, NT * MV, 1e-5f, 0));
            free(lg); free(lg2);
            sae_intervention_free(iv);

            /* clamp vs the formula applied by a reference hook */
            float *f = malloc(sizeof(float) * NT * d->d_sae), x[NT * MC];
            gpt2_clear_hooks(s);
            sae_capture(d, s, TOKS, NT, x, err);
            sae_encode(d, x, NT, f, err);
            int li = 0;
            for (int i = 0; i < d->d_sae; i++) if (f[5 * d->d_sae + i] > 0) { li = i; break; }
            free(f);
            sae_edit cl = {li, SAE_EDIT_CLAMP, 4.0f};
            CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &cl, 1, NULL, SAE_REPLACE_NONE, err), SS_OK);
            gpt2_clear_hooks(s);
            sae_intervention_attach(iv, s, err);
            lg = run_logits(s, TOKS, NT);
            refclamp_ctx rcx = {d, li, 4.0f};
            gpt2_clear_hooks(s);
            gpt2_add_hook(s, &hp, refclamp_hook, &rcx, sae_hook_center(d, &hp), err);
            lg2 = run_logits(s, TOKS, NT);
            snprintf(name, sizeof name, "clamp vs formula %s/%s c%d", sae_arch_name(d->arch), sae_norm_name(norm), center);
            CU_ASSERT(tu_allclose(name, lg, lg2, NT * MV, 1e-4f, 0));
            float md = 0;
            for (int i = 0; i < NT * MV; i++) md = fmaxf(md, fabsf(lg[i] - clean[i]));
            CU_ASSERT(md > 1e-3f);   /* and it did change something */

            /* KV cache: prefill NT-1 then one decode step == full prefill (positions all) */
            gpt2_clear_hooks(s);
            sae_intervention_attach(iv, s, err);
            gpt2_state_reset(s);
            float *step = malloc(sizeof(float) * MV);
            CU_ASSERT_EQUAL(gpt2_forward(s, TOKS, NT - 1, NULL, 0, err), SS_OK);
            CU_ASSERT_EQUAL(gpt2_forward(s, TOKS + NT - 1, 1, step, 0, err), SS_OK);
            snprintf(name, sizeof name, "decode step == prefill %s c%d", sae_arch_name(d->arch), center);
            CU_ASSERT(tu_allclose(name, step, lg + (NT - 1) * MV, MV, 1e-4f, 0));
            free(step); free(lg); free(lg2);
            sae_intervention_free(iv);
            sae_free(d);
        }
    free(clean);
    gpt2_state_free(s);
}

static void test_model_eval(void) {
    char err[SS_ERRLEN];
    sae_dict *d = model_dict(SAE_TOPK, SAE_NORM_NONE, 1);
    sae_eval *ev;
    CU_ASSERT_EQUAL_FATAL(sae_eval_new(&ev, d, MODEL, 16, err), SS_OK);
    CU_ASSERT_EQUAL(sae_eval_window(ev, TOKS, NT, 1, err), SS_OK);
    CU_ASSERT_EQUAL(sae_eval_window(ev, TOKS + 2, 8, 1, err), SS_OK);
    CU_ASSERT_EQUAL(sae_eval_window(ev, TOKS, 40, 1, err), SS_EINPUT);
    sae_eval_result r;
    sae_eval_get(ev, &r);
    printf("  mse %.4g ev %.4g l0 %.3g dead %lld ce clean %.4f recon %.4f zero %.4f recovered %.4f\n", r.mse,
           r.explained_variance, r.l0, (long long)r.dead, r.ce_clean, r.ce_recon, r.ce_zero, r.ce_recovered);
    CU_ASSERT_EQUAL(r.n_tokens, NT - 1 + 7);
    CU_ASSERT_EQUAL(r.n_predictions, NT - 1 + 7);
    CU_ASSERT(r.l0 > 0 && r.l0 <= d->k);
    CU_ASSERT(r.mse > 0 && isfinite(r.explained_variance));
    /* CE clean from an independent forward */
    gpt2_state *s;
    gpt2_state_build(&s, MODEL, MP, err);
    float *lg = run_logits(s, TOKS, NT);
    double ce = 0;
    for (int t = 0; t + 1 < NT; t++) {
        double mx = -1e30, se = 0;
        for (int v = 0; v < MV; v++) mx = fmax(mx, lg[t * MV + v]);
        for (int v = 0; v < MV; v++) se += exp(lg[t * MV + v] - mx);
        ce += mx + log(se) - lg[t * MV + TOKS[t + 1]];
    }
    free(lg);
    lg = run_logits(s, TOKS + 2, 8);
    for (int t = 0; t + 1 < 8; t++) {
        double mx = -1e30, se = 0;
        for (int v = 0; v < MV; v++) mx = fmax(mx, lg[t * MV + v]);
        for (int v = 0; v < MV; v++) se += exp(lg[t * MV + v] - mx);
        ce += mx + log(se) - lg[t * MV + TOKS[2 + t + 1]];
    }
    free(lg);
    CU_ASSERT(fabs(ce / (NT - 1 + 7) - r.ce_clean) < 1e-5);
    CU_ASSERT(fabs(r.ce_recovered - (r.ce_zero - r.ce_recon) / (r.ce_zero - r.ce_clean)) < 1e-9);
    gpt2_state_free(s);
    sae_eval_free(ev);
    sae_free(d);
}


/* ------------------------------------------ against the HF/SAELens fixtures */
/* Fixture root: $SAESTEER_FIXTURES if set (to try a fresh set), else tests/fixtures. */
static const char *fxp(const char *rel) {
    static char buf[8][4200];
    static int k = 0;
    k = (k + 1) % 8;
    const char *root = getenv("SAESTEER_FIXTURES");
    snprintf(buf[k], sizeof buf[k], "%s/%s", root && *root ? root : FIXTURES, rel);
    return buf[k];
}
static int have_fixtures(void) {
    if (access(fxp("saes/standard/cfg.json"), R_OK) == 0 && access(fxp("tiny-sp/config.json"), R_OK) == 0) return 1;
    /* the fixtures are part of the repository: missing ones are a failure, not a skip */
    printf("  fixtures not found under %s (tests/make_fixtures.py makes them)\n", fxp(""));
    CU_FAIL("fixtures missing");
    return 0;
}

static const char *FX_SAES[] = {"standard", "standard_centered", "topk", "jumprelu", "gated", "old_layout",
                                "norm_constant", "norm_layer"};
#define N_FX_SAES 8

static void test_fx_encode(void) {
    if (!have_fixtures()) return;
    char err[SS_ERRLEN], rel[256];
    npy_array x0;
    CU_ASSERT_EQUAL_FATAL(npy_load(&x0, fxp("tiny-sp/ref/blocks.1.hook_resid_pre.npy"), err), SS_OK);
    int T = (int)x0.shape[0], C = (int)x0.shape[1];
    for (int n = 0; n < N_FX_SAES; n++) {
        snprintf(rel, sizeof rel, "saes/%s", FX_SAES[n]);
        if (access(fxp(rel), R_OK) != 0) { printf("  %s: missing\n", rel); CU_FAIL("fixture SAE missing"); continue; }
        sae_dict *d = NULL;
        int rc = sae_load(&d, fxp(rel), err);
        if (rc) printf("  %s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
        CU_ASSERT_EQUAL(d->d_in, C);
        float *x = malloc(sizeof(float) * T * C), *f = malloc(sizeof(float) * T * d->d_sae), *rec = malloc(sizeof(float) * T * C);
        memcpy(x, x0.data, sizeof(float) * T * C);
        if (d->center_writing_weights)
            for (int t = 0; t < T; t++) {
                float mu = 0;
                for (int j = 0; j < C; j++) mu += x[t * C + j];
                mu /= C;
                for (int j = 0; j < C; j++) x[t * C + j] -= mu;
            }
        CU_ASSERT_EQUAL(sae_encode(d, x, T, f, err), SS_OK);
        CU_ASSERT_EQUAL(sae_decode(d, f, x, T, rec, err), SS_OK);
        char name[128];
        snprintf(name, sizeof name, "%s acts (%s)", FX_SAES[n], sae_arch_name(d->arch));
        snprintf(rel, sizeof rel, "saes/%s/acts.npy", FX_SAES[n]);
        CU_ASSERT(tu_allclose_npy(name, f, (size_t)T * d->d_sae, fxp(rel), 1e-5f, 0));
        snprintf(name, sizeof name, "%s recon", FX_SAES[n]);
        snprintf(rel, sizeof rel, "saes/%s/recon.npy", FX_SAES[n]);
        CU_ASSERT(tu_allclose_npy(name, rec, (size_t)T * C, fxp(rel), 1e-5f, 0));
        /* convert round trip: folder -> h5 -> load, identical */
        CU_ASSERT_EQUAL(sae_save_h5(d, tmp("fx.h5"), err), SS_OK);
        sae_dict *e = NULL;
        CU_ASSERT_EQUAL_FATAL(sae_load(&e, tmp("fx.h5"), err), SS_OK);
        CU_ASSERT(dict_eq(d, e));
        sae_free(e);
        free(x); free(f); free(rec);
        sae_free(d);
    }
    npy_free(&x0);
}

static void test_fx_metadata(void) {
    if (!have_fixtures()) return;
    char err[SS_ERRLEN];
    sae_dict *d;
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/old_layout"), err), SS_OK);
    CU_ASSERT_EQUAL(d->arch, SAE_STANDARD);
    CU_ASSERT_EQUAL(d->apply_b_dec_to_input, 0);
    CU_ASSERT_STRING_EQUAL(d->hook_name, "blocks.1.hook_resid_pre");
    CU_ASSERT_PTR_NOT_NULL(d->log_sparsity);
    sae_free(d);
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/topk"), err), SS_OK);
    CU_ASSERT_EQUAL(d->arch, SAE_TOPK);
    CU_ASSERT_EQUAL(d->k, 8);
    sae_free(d);
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/standard_centered"), err), SS_OK);
    CU_ASSERT_EQUAL(d->center_writing_weights, 1);
    CU_ASSERT_EQUAL(d->prepend_bos, 1);
    CU_ASSERT_EQUAL(d->context_size, 64);
    sae_free(d);
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/norm_constant"), err), SS_OK);
    CU_ASSERT_EQUAL(d->norm, SAE_NORM_CONSTANT_RESCALE);
    sae_free(d);
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/norm_layer"), err), SS_OK);
    CU_ASSERT_EQUAL(d->norm, SAE_NORM_LAYER);
    sae_free(d);
}

/* saes/standard.h5 was written by h5py: it loads and equals the folder. */
static void test_fx_h5py(void) {
    if (!have_fixtures()) return;
    char err[SS_ERRLEN];
    sae_dict *a, *b;
    CU_ASSERT_EQUAL_FATAL(sae_load(&a, fxp("saes/standard"), err), SS_OK);
    int rc = sae_load(&b, fxp("saes/standard.h5"), err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    size_t C = (size_t)a->d_in, S = (size_t)a->d_sae;
    CU_ASSERT(a->arch == b->arch && a->d_in == b->d_in && a->d_sae == b->d_sae && a->norm == b->norm);
    CU_ASSERT_STRING_EQUAL(a->hook_name, b->hook_name);
    CU_ASSERT(a->apply_b_dec_to_input == b->apply_b_dec_to_input && a->center_writing_weights == b->center_writing_weights &&
              a->prepend_bos == b->prepend_bos && a->context_size == b->context_size);
    CU_ASSERT(arr_eq(a->W_enc, b->W_enc, C * S) && arr_eq(a->W_dec, b->W_dec, C * S) && arr_eq(a->b_enc, b->b_enc, S) &&
              arr_eq(a->b_dec, b->b_dec, C));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->labels);
    cJSON *lab = tu_json(fxp("saes/standard_h5_labels.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(lab);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(lab), (int)S);
    int i = 0, same = 1;
    for (cJSON *e = lab->child; e; e = e->next, i++) same &= i < (int)S && strcmp(e->valuestring, b->labels[i]) == 0;
    CU_ASSERT(same);
    cJSON_Delete(lab);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->log_sparsity);
    CU_ASSERT(tu_allclose_npy("standard.h5 log_sparsity", b->log_sparsity, S, fxp("saes/standard_h5_log_sparsity.npy"), 0, 0));
    /* and it survives our own rewrite */
    CU_ASSERT_EQUAL(sae_save_h5(b, tmp("h5py-rewritten.h5"), err), SS_OK);
    sae_dict *c;
    CU_ASSERT_EQUAL_FATAL(sae_load(&c, tmp("h5py-rewritten.h5"), err), SS_OK);
    CU_ASSERT(dict_eq(b, c));
    sae_free(c);
    sae_free(a);
    sae_free(b);
}

/* ln_final.hook_normalized capture */
static int fx_final_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    memcpy((float *)ctx + (size_t)pos0 * width, act, sizeof(float) * T * width);
    return SS_OK;
}

static int *fx_ids(int *n) {
    cJSON *j = tu_json(fxp("tiny-sp/ref/ids.json"));
    if (!j) return NULL;
    cJSON *a = cJSON_GetObjectItem(j, "ids");
    *n = cJSON_GetArraySize(a);
    int *ids = malloc(sizeof(int) * *n), i = 0;
    for (cJSON *e = a->child; e; e = e->next) ids[i++] = e->valueint;
    cJSON_Delete(j);
    return ids;
}

/* Steered logits and ln_final on tiny-sp against HF hooks. */
static void fx_steer(gpt2_model *m, const char *sae, const sae_edit *ed, int n_ed, sae_replace rep, const char *what) {
    char err[SS_ERRLEN], rel[256], name[128];
    sae_dict *d;
    snprintf(rel, sizeof rel, "saes/%s", sae);
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp(rel), err), SS_OK);
    int T = 0, V = m->cfg.vocab_size, C = m->cfg.n_embd;
    int *ids = fx_ids(&T);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    gpt2_state *s;
    CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, m, T, err), SS_OK);
    sae_intervention *iv;
    CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, ed, n_ed, NULL, rep, err), SS_OK);
    CU_ASSERT_EQUAL_FATAL(sae_intervention_attach(iv, s, err), SS_OK);
    float *final = malloc(sizeof(float) * T * C), *logits = malloc(sizeof(float) * V);
    gpt2_hook_point lnf = {GPT2_HOOK_LN_FINAL, -1};
    gpt2_add_hook(s, &lnf, fx_final_hook, final, 0, err);
    int rc = gpt2_forward(s, ids, T, logits, 0, err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL(rc, SS_OK);
    snprintf(name, sizeof name, "%s logits_%s", sae, what);
    snprintf(rel, sizeof rel, "saes/%s/logits_%s.npy", sae, what);
    CU_ASSERT(tu_allclose_npy(name, logits, (size_t)V, fxp(rel), 1e-4f, 0));
    snprintf(name, sizeof name, "%s final_%s", sae, what);
    snprintf(rel, sizeof rel, "saes/%s/final_%s.npy", sae, what);
    CU_ASSERT(tu_allclose_npy(name, final, (size_t)T * C, fxp(rel), 1e-4f, 0));
    free(final); free(logits); free(ids);
    sae_intervention_free(iv);
    gpt2_state_free(s);
    sae_free(d);
}

static void test_fx_steering(void) {
    if (!have_fixtures()) return;
    char err[SS_ERRLEN];
    gpt2_model *m;
    int rc = gpt2_load(&m, fxp("tiny-sp"), err);
    if (rc) printf("  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, SS_OK);
    sae_edit boost = {5, SAE_EDIT_BOOST, 3.0f}, clamp = {5, SAE_EDIT_CLAMP, 2.5f}, ablate = {5, SAE_EDIT_CLAMP, 0.0f};
    fx_steer(m, "standard", &boost, 1, SAE_REPLACE_NONE, "boost");
    fx_steer(m, "standard", &clamp, 1, SAE_REPLACE_NONE, "clamp");
    fx_steer(m, "standard", &ablate, 1, SAE_REPLACE_NONE, "ablate");
    fx_steer(m, "standard", NULL, 0, SAE_REPLACE_RECON, "recon");
    fx_steer(m, "standard_centered", &clamp, 1, SAE_REPLACE_NONE, "clamp");
    /* clamp through recon+error is the same intervention */
    fx_steer(m, "standard", &clamp, 1, SAE_REPLACE_RECON_ERR, "clamp");

    /* greedy generation with the boost on at every position, generated ones too */
    cJSON *g = tu_json(fxp("saes/standard/generate_boost.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    cJSON *pi = cJSON_GetObjectItem(g, "prompt_ids"), *want = cJSON_GetObjectItem(g, "greedy_boost");
    cJSON *want0 = cJSON_GetObjectItem(g, "greedy");
    int np = cJSON_GetArraySize(pi), nn = cJSON_GetArraySize(want), i = 0;
    int *prompt = malloc(sizeof(int) * np), *out = malloc(sizeof(int) * nn), n_out = 0;
    for (cJSON *e = pi->child; e; e = e->next) prompt[i++] = e->valueint;
    sae_dict *d;
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/standard"), err), SS_OK);
    for (int steered = 0; steered <= 1; steered++) {
        gpt2_state *s;
        CU_ASSERT_EQUAL_FATAL(gpt2_state_build(&s, m, np + nn, err), SS_OK);
        sae_intervention *iv = NULL;
        if (steered) {
            CU_ASSERT_EQUAL_FATAL(sae_intervention_new(&iv, d, &boost, 1, NULL, SAE_REPLACE_NONE, err), SS_OK);
            CU_ASSERT_EQUAL_FATAL(sae_intervention_attach(iv, s, err), SS_OK);
        }
        sampler_params sp;
        sampler_params_default(&sp);
        sp.temperature = 0;
        sampler *smp;
        CU_ASSERT_EQUAL_FATAL(sampler_build(&smp, m->cfg.vocab_size, &sp, err), SS_OK);
        gen_timing tm;
        rc = generate(s, smp, prompt, np, nn, 0, out, &n_out, NULL, NULL, &tm, err);
        if (rc) printf("  %s\n", err);
        CU_ASSERT_EQUAL(rc, SS_OK);
        CU_ASSERT_EQUAL(n_out, nn);
        cJSON *w = steered ? want : want0;
        int k = 0, same = 1;
        for (cJSON *e = w->child; e; e = e->next, k++) same &= k < n_out && out[k] == e->valueint;
        printf("  greedy %s: %s\n", steered ? "with boost" : "clean", same ? "same tokens as HF" : "DIFFERENT");
        CU_ASSERT(same);
        sampler_free(smp);
        sae_intervention_free(iv);
        gpt2_state_free(s);
    }
    sae_free(d);
    free(prompt); free(out);
    cJSON_Delete(g);

    /* capture through the model == the fixture activation (centred for the centring SAE) */
    CU_ASSERT_EQUAL_FATAL(sae_load(&d, fxp("saes/standard_centered"), err), SS_OK);
    int T = 0;
    int *ids = fx_ids(&T);
    gpt2_state *s;
    gpt2_state_build(&s, m, T, err);
    float *x = malloc(sizeof(float) * T * d->d_in), *f = malloc(sizeof(float) * T * d->d_sae);
    CU_ASSERT_EQUAL(sae_capture(d, s, ids, T, x, err), SS_OK);
    CU_ASSERT_EQUAL(sae_encode(d, x, T, f, err), SS_OK);
    CU_ASSERT(tu_allclose_npy("standard_centered acts via model", f, (size_t)T * d->d_sae,
                              fxp("saes/standard_centered/acts.npy"), 1e-4f, 0));
    free(x); free(f); free(ids);
    gpt2_state_free(s);
    sae_free(d);
    gpt2_free(m);
}

/* ------------------------------------------------------------------ main */
int main(void) {
    snprintf(TMP, sizeof TMP, "/tmp/test_sae.%d", (int)getpid());
    mkdir(TMP, 0755);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("sae", NULL, NULL);
    CU_add_test(s, "encode/decode vs formula, every arch x norm", test_encode_decode);
    CU_add_test(s, "sparse row", test_sparse_row);
    CU_add_test(s, "latent decoder norm", test_dec_norm);
    CU_add_test(s, "HDF5 round trip", test_h5_roundtrip);
    CU_add_test(s, "HDF5 hostile files", test_h5_hostile);
    CU_add_test(s, "HDF5 with random corruption", test_h5_corrupted);
    CU_add_test(s, "SAELens import (v6, pre-6.0)", test_saelens_import);
    CU_add_test(s, "SAELens hostile folders", test_saelens_hostile);
    CU_add_test(s, "interventions on synthetic activations", test_interventions);
    char mdir[4200], err[SS_ERRLEN];
    snprintf(mdir, sizeof mdir, "%s/model", TMP);
    write_model(mdir);
    if (gpt2_load(&MODEL, mdir, err)) { printf("random model: %s\n", err); return 1; }
    CU_pSuite m = CU_add_suite("sae with a random model", NULL, NULL);
    CU_add_test(m, "capture at the SAE's hook (centring)", test_model_capture);
    CU_add_test(m, "interventions through the forward pass", test_model_interventions);
    CU_add_test(m, "sae-eval statistics", test_model_eval);
    CU_pSuite f = CU_add_suite("sae vs SAELens/HF fixtures", NULL, NULL);
    CU_add_test(f, "every fixture SAE: acts, recon, h5 round trip", test_fx_encode);
    CU_add_test(f, "fixture metadata (v6, pre-6.0, norms)", test_fx_metadata);
    CU_add_test(f, "h5py-written standard.h5", test_fx_h5py);
    CU_add_test(f, "boost/clamp/ablate/recon logits and greedy generation", test_fx_steering);
    int rc = tu_run();
    gpt2_free(MODEL);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", TMP);
    if (system(cmd)) {}
    return rc;
}
