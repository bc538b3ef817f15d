/* sae_encode.c - encode / decode with SAELens semantics.
 *
 *   x_n  = norm_in(x)                        normalize_activations (per row)
 *   x_c  = x_n - b_dec   if apply_b_dec_to_input
 *   standard  f = relu(x_c W_enc + b_enc)
 *   jumprelu  h = x_c W_enc + b_enc;  f = relu(h) * (h > threshold)
 *   topk      h = x_c W_enc + b_enc;  f = relu(top-k of h), zeros elsewhere
 *   gated     p = x_c W_enc;  f = (p + b_gate > 0) * relu(p * exp(r_mag) + b_mag)
 *   recon = norm_out(f W_dec + b_dec)
 *
 * normalize_activations (SAELens run_time_activation_norm_fn_in/_out):
 *   none, expected_average_only_in: identity at inference
 *   constant_norm_rescale: c = sqrt(d_in) / ||x||;  in: x * c;  out: y / c
 *   layer_norm: mu = mean(x), s = std(x - mu) (unbiased, n-1);
 *               in: (x - mu) / (s + 1e-5);  out: y * s + mu
 */
#include "sae_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAE_LN_EPS 1e-5

void sae_norm_coeffs(const sae_dict *d, const float *x, int T, float *shift, float *in_scale, float *out_scale) {
    int C = d->d_in;
    for (int t = 0; t < T; t++) {
        const float *xr = x ? x + (size_t)t * C : NULL;
        shift[t] = 0.0f; in_scale[t] = 1.0f; out_scale[t] = 1.0f;
        if (!xr) continue;
        if (d->norm == SAE_NORM_CONSTANT_RESCALE) {
            double ss = 0;
            for (int j = 0; j < C; j++) ss += (double)xr[j] * xr[j];
            double nrm = sqrt(ss);
            if (nrm > 0) {
                in_scale[t] = (float)(sqrt((double)C) / nrm);
                out_scale[t] = (float)(nrm / sqrt((double)C));
            }
        } else if (d->norm == SAE_NORM_LAYER) {
            double mu = 0;
            for (int j = 0; j < C; j++) mu += xr[j];
            mu /= C;
            double ss = 0;
            for (int j = 0; j < C; j++) { double v = (float)(xr[j] - (float)mu); ss += v * v; }
            double sd = C > 1 ? sqrt(ss / (C - 1)) : 0.0;
            shift[t] = (float)mu;
            in_scale[t] = (float)(1.0 / ((double)(float)sd + SAE_LN_EPS));
            out_scale[t] = (float)sd;
        }
    }
}

/* x_c (T, C) = norm_in(x) - b_dec * apply_b_dec_to_input */
static void prepare_input(const sae_dict *d, const float *x, int T, const float *shift, const float *in_scale,
                          float *x_c) {
    int C = d->d_in;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * C;
        float *o = x_c + (size_t)t * C;
        for (int j = 0; j < C; j++) {
            float v = (xr[j] - shift[t]) * in_scale[t];
            o[j] = d->apply_b_dec_to_input ? v - d->b_dec[j] : v;
        }
    }
}

/* Keep the k largest entries of h (n) (relu'd), zero the rest. heap_i/heap_v: k scratch. */
static void topk_row(float *h, int n, int k, int *heap_i, float *heap_v) {
    /* min-heap of the k largest seen so far */
    int m = 0;
    for (int i = 0; i < n; i++) {
        float v = h[i];
        if (m < k) {
            int c = m++;
            while (c > 0) {
                int p = (c - 1) / 2;
                if (heap_v[p] <= v) break;
                heap_v[c] = heap_v[p]; heap_i[c] = heap_i[p]; c = p;
            }
            heap_v[c] = v; heap_i[c] = i;
        } else if (v > heap_v[0]) {
            int c = 0;
            for (;;) {
                int l = 2 * c + 1, r = l + 1, s = c;
                float sv = v;
                if (l < m && heap_v[l] < sv) { s = l; sv = heap_v[l]; }
                if (r < m && heap_v[r] < sv) { s = r; }
                if (s == c) break;
                heap_v[c] = heap_v[s]; heap_i[c] = heap_i[s]; c = s;
            }
            heap_v[c] = v; heap_i[c] = i;
        }
    }
    memset(h, 0, (size_t)n * sizeof(float));
    for (int j = 0; j < m; j++) h[heap_i[j]] = heap_v[j] > 0.0f ? heap_v[j] : 0.0f;
}

int sae_encode(const sae_dict *d, const float *x, int T, float *f, char *err) {
    if (T <= 0) return SS_OK;
    int C = d->d_in, S = d->d_sae;
    float *x_c = ss_malloc2((size_t)T * C, sizeof(float));   /* (T, C) */
    float *coef = ss_malloc2((size_t)T * 3, sizeof(float));  /* shift, in_scale, out_scale: (T) each */
    int *heap_i = NULL; float *heap_v = NULL;                 /* (k) topk scratch */
    if (d->arch == SAE_TOPK) {
        heap_i = ss_malloc2((size_t)d->k, sizeof(int));
        heap_v = ss_malloc2((size_t)d->k, sizeof(float));
    }
    if (!x_c || !coef || (d->arch == SAE_TOPK && (!heap_i || !heap_v))) {
        free(x_c); free(coef); free(heap_i); free(heap_v);
        return ss_fail(err, SS_ERUNTIME, "%s: out of memory encoding %d positions", d->path, T);
    }
    sae_norm_coeffs(d, x, T, coef, coef + T, coef + 2 * T);
    prepare_input(d, x, T, coef, coef + T, x_c);

    /* f (T, S) = x_c (T, C) @ W_enc (C, S): the one big matmul */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, S, C, 1.0f, x_c, C, d->W_enc, S, 0.0f, f, S);

    for (int t = 0; t < T; t++) {
        float *h = f + (size_t)t * S;
        switch (d->arch) {
        case SAE_STANDARD:
            for (int i = 0; i < S; i++) { float v = h[i] + d->b_enc[i]; h[i] = v > 0.0f ? v : 0.0f; }
            break;
        case SAE_JUMPRELU:
            for (int i = 0; i < S; i++) {
                float v = h[i] + d->b_enc[i];
                h[i] = (v > d->threshold[i] && v > 0.0f) ? v : 0.0f;
            }
            break;
        case SAE_TOPK:
            for (int i = 0; i < S; i++) h[i] += d->b_enc[i];
            topk_row(h, S, d->k, heap_i, heap_v);
            break;
        case SAE_GATED:
            for (int i = 0; i < S; i++) {
                float p = h[i];
                float mag = p * expf(d->r_mag[i]) + d->b_mag[i];
                h[i] = (p + d->b_gate[i] > 0.0f && mag > 0.0f) ? mag : 0.0f;
            }
            break;
        }
    }
    free(x_c); free(coef); free(heap_i); free(heap_v);
    return SS_OK;
}

float sae_latent_value(const sae_dict *d, const float *x_c, int i) {
    int S = d->d_sae;
    float p = cblas_sdot(d->d_in, x_c, 1, d->W_enc + i, S);
    switch (d->arch) {
    case SAE_STANDARD: { float v = p + d->b_enc[i]; return v > 0.0f ? v : 0.0f; }
    case SAE_JUMPRELU: { float v = p + d->b_enc[i]; return (v > d->threshold[i] && v > 0.0f) ? v : 0.0f; }
    case SAE_GATED: {
        float mag = p * expf(d->r_mag[i]) + d->b_mag[i];
        return (p + d->b_gate[i] > 0.0f && mag > 0.0f) ? mag : 0.0f;
    }
    default: return 0.0f;   /* topk: needs the whole row */
    }
}

int sae_decode(const sae_dict *d, const float *f, const float *x, int T, float *recon, char *err) {
    if (T <= 0) return SS_OK;
    int C = d->d_in, S = d->d_sae;
    int need_x = d->norm == SAE_NORM_CONSTANT_RESCALE || d->norm == SAE_NORM_LAYER;
    if (need_x && !x)
        return ss_fail(err, SS_EINPUT, "%s: decode with normalize_activations=%s needs the input rows", d->path,
                       sae_norm_name(d->norm));
    float *coef = ss_malloc2((size_t)T * 3, sizeof(float));  /* shift, in_scale, out_scale: (T) each */
    if (!coef) return ss_fail(err, SS_ERUNTIME, "%s: out of memory decoding %d positions", d->path, T);
    sae_norm_coeffs(d, need_x ? x : NULL, T, coef, coef + T, coef + 2 * T);

    /* recon (T, C) = f (T, S) @ W_dec (S, C): activations are sparse, so
       accumulate rows of W_dec unless the codes are dense */
    int64_t nnz = 0;
    for (int64_t i = 0; i < (int64_t)T * S; i++) nnz += f[i] != 0.0f;
    if (nnz * 8 < (int64_t)T * S) {
        memset(recon, 0, (size_t)T * C * sizeof(float));
        for (int t = 0; t < T; t++) {
            const float *fr = f + (size_t)t * S;
            float *o = recon + (size_t)t * C;
            for (int i = 0; i < S; i++)
                if (fr[i] != 0.0f) cblas_saxpy(C, fr[i], d->W_dec + (size_t)i * C, 1, o, 1);
        }
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, S, 1.0f, f, S, d->W_dec, C, 0.0f, recon, C);
    }
    for (int t = 0; t < T; t++) {
        float *o = recon + (size_t)t * C;
        float sh = coef[t], os = coef[2 * T + t];
        for (int j = 0; j < C; j++) {
            float v = o[j] + d->b_dec[j];
            o[j] = need_x ? v * os + sh : v;
        }
    }
    free(coef);
    return SS_OK;
}
