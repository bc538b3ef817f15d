/* gpt2.c - forward pass with KV cache and hook points, for GPT-2, GPT-J and
 * GPT-NeoX.
 *
 * One call runs T new tokens after the s->pos already cached ones:
 *
 *   x = wte[tok] (+ wpe[pos], GPT-2)                 hook_embed, hook_pos_embed
 *   for each block l:                                blocks.l.hook_resid_pre
 *       a = attn(ln_1(x))   (z: heads before c_proj) attn.hook_z, attn.hook_pattern
 *     sequential (GPT-2, NeoX use_parallel_residual false):
 *       x = x + a                                    hook_attn_out, hook_resid_mid
 *       m = mlp(ln_2(x))                             mlp.hook_post, hook_mlp_out
 *       x = x + m                                    hook_resid_post
 *     parallel (GPT-J: mlp(ln_1(x)); NeoX: mlp(ln_2(x)) of the block input):
 *       x = x + (a + m)                              hook_resid_post
 *   logits = ln_f(x) @ W_U^T (+ b_U, GPT-J)          ln_final.hook_normalized
 *
 * Attention: q, k, v from c_attn (GPT-2), q/k/v_proj (GPT-J, no biases) or
 * query_key_value (NeoX, laid out per head as [q|k|v], reordered here into
 * GPT-2's [q|k|v] of all heads); rotary embeddings on the first rotary_dim
 * dims of each head of q and k: GPT-J rotates pairs (2i, 2i+1), NeoX pairs
 * (i, i + rotary_dim/2), by the angle pos * theta^(-2i/rotary_dim).
 * Only the positions whose logits are asked for are unembedded.
 */
#include "gpt2.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- kernels --- */

/* The element-wise loops below are written so the compiler vectorises them
   (SS_VECTOR adds an AVX2+FMA copy of each, see common.h). */

/* exp(x) for x in [-87.3, 88.3] (clamped outside; NaN stays NaN) in a form
   that vectorises: 2^n by integer bit arithmetic, e^r by the Cephes degree-6
   polynomial on |r| <= ln2/2. Within 2 ulp of expf. */
static inline float vec_expf(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.37626f ? 88.37626f : x;
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504f + shift;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    float n = t - shift;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t sb = (tb - 0x4B400000u + 127u) << 23; /* the integer n, biased, as an exponent */
    float scale;
    memcpy(&scale, &sb, 4);
    return p * scale;
}

SS_VECTOR
void gpt2_layernorm(float *out, const float *in, const float *w, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * C;
        float *o = out + (size_t)t * C;
        float mean = 0.0f;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= (float)C;
        float var = 0.0f;
        for (int i = 0; i < C; i++) { float d = x[i] - mean; var += d * d; }
        var /= (float)C;
        float rstd = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - mean) * rstd * w[i] + b[i];
    }
}

SS_VECTOR
void gpt2_gelu(float *x, int n) {
    const float s = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        /* 1 + tanh(u) = 2 - 2/(exp(2u) + 1): one exp instead of tanh's
           expm1, exact to float rounding in absolute terms, and saturating
           cleanly (large u -> 2, very negative u -> 0) */
        float u = s * (v + 0.044715f * v * v * v);
        x[i] = v * (1.0f - 1.0f / (vec_expf(2.0f * u) + 1.0f));
    }
}

void gpt2_gelu_erf(float *x, int n) {
    for (int i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

/* row[0..valid) = softmax(row[0..valid)), row[valid..n) = 0 (causal mask). */
SS_VECTOR
static void softmax_causal(float *row, int valid, int n) {
    float mx = row[0];
    for (int j = 1; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
    for (int j = 0; j < valid; j++) row[j] = vec_expf(row[j] - mx);
    float sum = 0.0f;
    for (int j = 0; j < valid; j++) sum += row[j];
    float inv = 1.0f / sum;
    for (int j = 0; j < valid; j++) row[j] *= inv;
    for (int j = valid; j < n; j++) row[j] = 0.0f;
}

SS_VECTOR
static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void gpt2_matmul(float *out, const float *in, const float *W, const float *b, int T, int IC, int OC) {
    for (int t = 0; t < T; t++) {
        if (b) memcpy(out + (size_t)t * OC, b, (size_t)OC * sizeof(float));
        else memset(out + (size_t)t * OC, 0, (size_t)OC * sizeof(float));
    }
    if (T == 1) /* OpenBLAS does not turn M=1 sgemm into sgemv itself */
        cblas_sgemv(CblasRowMajor, CblasTrans, IC, OC, 1.0f, W, OC, in, 1, 1.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, OC, IC, 1.0f, in, IC, W, OC, 1.0f, out, OC);
}

/* ----------------------------------------------------------- run state --- */

int gpt2_state_build(gpt2_state **out, const gpt2_model *m, int n_ctx, char *err) {
    *out = NULL;
    const gpt2_config *c = &m->cfg;
    if (n_ctx <= 0 || n_ctx > c->n_positions) n_ctx = c->n_positions;
    gpt2_state *s = ss_calloc(1, sizeof *s);
    if (!s) return ss_fail(err, SS_ERUNTIME, "out of memory");
    s->m = m;
    s->n_ctx = n_ctx;
    s->stop_layer = c->n_layer;
    size_t C = (size_t)c->n_embd, N = (size_t)n_ctx, L = (size_t)c->n_layer;
    size_t F = (size_t)(c->n_inner > 0 ? c->n_inner : 4 * c->n_embd), R = (size_t)c->rotary_dim;
    s->k_cache = ss_malloc_big(L * N, C * sizeof(float));
    s->v_cache = ss_malloc_big(L * N, C * sizeof(float));
    /* x, xn, z, tmp, tmp2: C each; qkv: 3C; h: F; att: N; mean: 1 */
    size_t per_pos = 5 * C + 3 * C + F + N + 1;
    s->mem = ss_malloc_big(N, per_pos * sizeof(float));
    s->row = malloc(3 * C * sizeof(float));
    if (R) {
        s->rope = ss_malloc2(N, R * sizeof(float));
        if (s->rope) /* as HF, in float32: inv = 1 / theta^(2i/R); angle = pos * inv */
            for (size_t p = 0; p < N; p++)
                for (size_t i = 0; i < R / 2; i++) {
                    float inv = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)R);
                    float ang = (float)p * inv;
                    s->rope[p * R + 2 * i] = cosf(ang);
                    s->rope[p * R + 2 * i + 1] = sinf(ang);
                }
    }
    if (!s->k_cache || !s->v_cache || !s->mem || !s->row || (R && !s->rope)) {
        gpt2_state_free(s);
        return ss_fail(err, SS_ERUNTIME, "out of memory for a %d-position context", n_ctx);
    }
    float *p = s->mem;
    s->x = p;    p += N * C;
    s->xn = p;   p += N * C;
    s->z = p;    p += N * C;
    s->tmp = p;  p += N * C;
    s->tmp2 = p; p += N * C;
    s->qkv = p;  p += N * 3 * C;
    s->h = p;    p += N * F;
    s->att = p;  p += N * N;
    s->mean = p;
    *out = s;
    return SS_OK;
}

void gpt2_state_free(gpt2_state *s) {
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->mem);
    free(s->pattern);
    free(s->rope);
    free(s->row);
    free(s);
}

void gpt2_state_reset(gpt2_state *s) { s->pos = 0; }

int gpt2_add_hook(gpt2_state *s, const gpt2_hook_point *hp, gpt2_hook_fn fn, void *ctx, int center, char *err) {
    if (s->n_hooks >= GPT2_MAX_HOOKS) return ss_fail(err, SS_EINPUT, "too many hooks (max %d)", GPT2_MAX_HOOKS);
    if (center && !gpt2_hook_is_residual(hp)) {
        char nm[128];
        gpt2_hook_name(hp, nm, sizeof nm);
        return ss_fail(err, SS_EINPUT, "hook '%s': centring applies to residual-stream hooks only", nm);
    }
    if (hp->kind == GPT2_HOOK_PATTERN && !s->pattern) {
        size_t NH = (size_t)s->m->cfg.n_head, N = (size_t)s->n_ctx;
        s->pattern = ss_malloc_big(NH * N, N * sizeof(float));
        if (!s->pattern) return ss_fail(err, SS_ERUNTIME, "out of memory for attention patterns");
    }
    gpt2_hook *h = &s->hooks[s->n_hooks++];
    h->hp = *hp;
    h->fn = fn;
    h->ctx = ctx;
    h->center = center;
    return SS_OK;
}

void gpt2_clear_hooks(gpt2_state *s) {
    s->n_hooks = 0;
    s->stop_layer = s->m->cfg.n_layer;
}

void gpt2_stop_after_hooks(gpt2_state *s) {
    int stop = 0;
    for (int i = 0; i < s->n_hooks; i++) {
        const gpt2_hook_point *hp = &s->hooks[i].hp;
        int need;
        if (hp->kind == GPT2_HOOK_EMBED || hp->kind == GPT2_HOOK_POS_EMBED) need = 0;
        else if (hp->kind == GPT2_HOOK_RESID_PRE) need = hp->layer;
        else if (hp->kind == GPT2_HOOK_LN_FINAL) need = s->m->cfg.n_layer + 1;
        else need = hp->layer + 1;
        if (need > stop) stop = need;
    }
    s->stop_layer = s->n_hooks ? stop : s->m->cfg.n_layer;
}

/* Run every hook registered at (kind, layer) on act (T, width). Centring
   hooks see x - mean(x) per row; whatever they change is added back. */
static int run_hooks(gpt2_state *s, gpt2_hook_kind kind, int layer, float *act, int T, int width, int pos0, char *err) {
    for (int i = 0; i < s->n_hooks; i++) {
        gpt2_hook *h = &s->hooks[i];
        if (h->hp.kind != kind || h->hp.layer != layer) continue;
        if (h->center) {
            for (int t = 0; t < T; t++) {
                float *r = act + (size_t)t * width, mu = 0.0f;
                for (int j = 0; j < width; j++) mu += r[j];
                mu /= (float)width;
                s->mean[t] = mu;
                for (int j = 0; j < width; j++) r[j] -= mu;
            }
        }
        int rc = h->fn(h->ctx, &h->hp, act, T, width, pos0, err);
        if (h->center)
            for (int t = 0; t < T; t++) {
                float *r = act + (size_t)t * width;
                for (int j = 0; j < width; j++) r[j] += s->mean[t];
            }
        if (rc) return rc;
    }
    return SS_OK;
}

static int has_hook(const gpt2_state *s, gpt2_hook_kind kind, int layer) {
    for (int i = 0; i < s->n_hooks; i++)
        if (s->hooks[i].hp.kind == kind && s->hooks[i].hp.layer == layer) return 1;
    return 0;
}

/* Causal self-attention of T new positions against the pos0+T cached keys.
   qkv (T, 3C) -> z (T, C); k/v (pos0+T, C) rows of this layer's cache. */
static void attention(gpt2_state *s, int l, int T, int pos0, int want_pattern) {
    const gpt2_config *c = &s->m->cfg;
    int C = c->n_embd, NH = c->n_head, HS = C / NH, N = pos0 + T;
    float *kc = s->k_cache + (size_t)l * s->n_ctx * C;
    float *vc = s->v_cache + (size_t)l * s->n_ctx * C;
    float scale = 1.0f / sqrtf((float)HS);
    for (int t = 0; t < T; t++) { /* append this call's keys and values */
        memcpy(kc + (size_t)(pos0 + t) * C, s->qkv + (size_t)t * 3 * C + C, (size_t)C * sizeof(float));
        memcpy(vc + (size_t)(pos0 + t) * C, s->qkv + (size_t)t * 3 * C + 2 * C, (size_t)C * sizeof(float));
    }
    for (int h = 0; h < NH; h++) {
        float *att = s->att; /* (T, N) scores for head h */
        const float *q = s->qkv + h * HS;
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, HS, scale, kc + h * HS, C, q, 1, 0.0f, att, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, HS, scale, q, 3 * C, kc + h * HS, C,
                        0.0f, att, N);
        for (int t = 0; t < T; t++) /* causal softmax over keys 0..pos0+t */
            softmax_causal(att + (size_t)t * N, pos0 + t + 1, N);
        if (want_pattern)
            memcpy(s->pattern + (size_t)h * T * N, att, (size_t)T * N * sizeof(float));
        if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, N, HS, 1.0f, vc + h * HS, C, att, 1, 0.0f, s->z + h * HS, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, N, 1.0f, att, N, vc + h * HS, C,
                        0.0f, s->z + h * HS, C);
    }
}

static int forward_blocks(gpt2_state *s, int first, int T, float *logits, int all_logits, char *err);

/* q, k, v (T rows of 3C) of this call: NeoX's per-head [q|k|v] reordered into
   [q of all heads | k | v], then rotary embeddings on q and k. */
static void qkv_prepare(gpt2_state *s, int T, int pos0) {
    const gpt2_config *c = &s->m->cfg;
    int C = c->n_embd, NH = c->n_head, HS = C / NH, R = c->rotary_dim;
    for (int t = 0; t < T; t++) {
        float *r = s->qkv + (size_t)t * 3 * C;
        if (c->arch == GPT2_ARCH_NEOX) {
            memcpy(s->row, r, (size_t)3 * C * sizeof(float));
            for (int h = 0; h < NH; h++)
                for (int j = 0; j < 3; j++)
                    memcpy(r + (size_t)j * C + h * HS, s->row + (size_t)h * 3 * HS + j * HS, (size_t)HS * sizeof(float));
        }
        if (!R) continue;
        const float *cs = s->rope + (size_t)(pos0 + t) * R;   /* (R/2) x (cos, sin) */
        for (int qk = 0; qk < 2; qk++)
            for (int h = 0; h < NH; h++) {
                float *v = r + (size_t)qk * C + h * HS;
                if (c->arch == GPT2_ARCH_GPTJ) {         /* pairs (2i, 2i+1) */
                    for (int i = 0; i < R / 2; i++) {
                        float a = v[2 * i], b = v[2 * i + 1], co = cs[2 * i], si = cs[2 * i + 1];
                        v[2 * i] = a * co - b * si;
                        v[2 * i + 1] = b * co + a * si;
                    }
                } else {                                  /* pairs (i, i + R/2) */
                    int H2 = R / 2;
                    for (int i = 0; i < H2; i++) {
                        float a = v[i], b = v[i + H2], co = cs[2 * i], si = cs[2 * i + 1];
                        v[i] = a * co - b * si;
                        v[i + H2] = b * co + a * si;
                    }
                }
            }
    }
}

/* MLP of T rows: s->h = act(in @ fc + b); hooks; out = s->h @ fcp + b. */
static int mlp(gpt2_state *s, const gpt2_layer *w, int l, const float *in, float *out, int T, int pos0, char *err) {
    const gpt2_config *c = &s->m->cfg;
    int C = c->n_embd, F = c->n_inner > 0 ? c->n_inner : 4 * C, rc;
    gpt2_matmul_w(s->h, F, in, &w->fc_w, w->fc_b, T, C, F);
    if (c->gelu_erf) gpt2_gelu_erf(s->h, T * F);
    else gpt2_gelu(s->h, T * F);
    if ((rc = run_hooks(s, GPT2_HOOK_MLP_POST, l, s->h, T, F, pos0, err))) return rc;
    gpt2_matmul_w(out, C, s->h, &w->fcp_w, w->fcp_b, T, F, C);
    return run_hooks(s, GPT2_HOOK_MLP_OUT, l, out, T, C, pos0, err);
}

SS_VECTOR
static void add3_inplace(float *x, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (a[i] + b[i]) + x[i];
}

int gpt2_forward(gpt2_state *s, const int *tokens, int T, float *logits, int all_logits, char *err) {
    const gpt2_model *m = s->m;
    const gpt2_config *c = &m->cfg;
    int C = c->n_embd, V = c->vocab_size, pos0 = s->pos, rc;
    if (T <= 0) return ss_fail(err, SS_EINPUT, "no tokens to run");
    if (pos0 + T > s->n_ctx)
        return ss_fail(err, SS_EINPUT, "sequence of %d tokens exceeds the context of %d positions", pos0 + T, s->n_ctx);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= V)
            return ss_fail(err, SS_EINPUT, "token id %d at position %d is outside the vocabulary (%d)", tokens[t], pos0 + t, V);

    /* embeddings: x (T, C) */
    float *x = s->x, *tmp = s->tmp;
    int hook_emb = has_hook(s, GPT2_HOOK_EMBED, -1), hook_pos = has_hook(s, GPT2_HOOK_POS_EMBED, -1);
    for (int t = 0; t < T; t++) gpt2_mat_row(&m->wte, tokens[t], C, x + (size_t)t * C);
    if (hook_emb && (rc = run_hooks(s, GPT2_HOOK_EMBED, -1, x, T, C, pos0, err))) return rc;
    if (m->wpe) {
        for (int t = 0; t < T; t++) memcpy(tmp + (size_t)t * C, m->wpe + (size_t)(pos0 + t) * C, (size_t)C * sizeof(float));
        if (hook_pos && (rc = run_hooks(s, GPT2_HOOK_POS_EMBED, -1, tmp, T, C, pos0, err))) return rc;
        add_inplace(x, tmp, (size_t)T * C);
    }
    return forward_blocks(s, 0, T, logits, all_logits, err);
}

/* Blocks first..n_layer-1 (or up to stop_layer), ln_f and the unembedding for
   the T positions after s->pos, starting from the residual stream in s->x. */
static int forward_blocks(gpt2_state *s, int first, int T, float *logits, int all_logits, char *err) {
    const gpt2_model *m = s->m;
    const gpt2_config *c = &m->cfg;
    int C = c->n_embd, V = c->vocab_size, pos0 = s->pos, rc;
    float *x = s->x, *xn = s->xn, *tmp = s->tmp;
    int stop = s->stop_layer;
    for (int l = first; l < c->n_layer; l++) {
        const gpt2_layer *w = &m->layers[l];
        if ((rc = run_hooks(s, GPT2_HOOK_RESID_PRE, l, x, T, C, pos0, err))) return rc;
        if (l >= stop) break;
        /* attention */
        gpt2_layernorm(xn, x, w->ln1_w, w->ln1_b, T, C, c->ln_eps);
        if (c->arch == GPT2_ARCH_GPTJ) {
            gpt2_matmul_w(s->qkv, 3 * C, xn, &w->q_w, NULL, T, C, C);
            gpt2_matmul_w(s->qkv + C, 3 * C, xn, &w->k_w, NULL, T, C, C);
            gpt2_matmul_w(s->qkv + 2 * C, 3 * C, xn, &w->v_w, NULL, T, C, C);
        } else {
            gpt2_matmul_w(s->qkv, 3 * C, xn, &w->attn_w, w->attn_b, T, C, 3 * C);
        }
        if (c->arch != GPT2_ARCH_GPT2) qkv_prepare(s, T, pos0);
        int want_pattern = has_hook(s, GPT2_HOOK_PATTERN, l);
        attention(s, l, T, pos0, want_pattern);
        if (want_pattern && (rc = run_hooks(s, GPT2_HOOK_PATTERN, l, s->pattern, T, pos0 + T, pos0, err))) return rc;
        if ((rc = run_hooks(s, GPT2_HOOK_ATTN_Z, l, s->z, T, C, pos0, err))) return rc;
        gpt2_matmul_w(tmp, C, s->z, &w->proj_w, w->proj_b, T, C, C);
        if ((rc = run_hooks(s, GPT2_HOOK_ATTN_OUT, l, tmp, T, C, pos0, err))) return rc;
        if (c->parallel) {
            /* GPT-J's MLP reads ln_1's output (still in xn); NeoX's its own ln_2 of the block input */
            if (c->arch == GPT2_ARCH_NEOX) gpt2_layernorm(xn, x, w->ln2_w, w->ln2_b, T, C, c->ln_eps);
            if ((rc = mlp(s, w, l, xn, s->tmp2, T, pos0, err))) return rc;
            add3_inplace(x, tmp, s->tmp2, (size_t)T * C);
        } else {
            add_inplace(x, tmp, (size_t)T * C);
            if ((rc = run_hooks(s, GPT2_HOOK_RESID_MID, l, x, T, C, pos0, err))) return rc;
            gpt2_layernorm(xn, x, w->ln2_w, w->ln2_b, T, C, c->ln_eps);
            if ((rc = mlp(s, w, l, xn, tmp, T, pos0, err))) return rc;
            add_inplace(x, tmp, (size_t)T * C);
        }
        if ((rc = run_hooks(s, GPT2_HOOK_RESID_POST, l, x, T, C, pos0, err))) return rc;
    }
    s->pos = pos0 + T;
    if (stop < c->n_layer) return SS_OK;   /* only early activations were wanted */

    /* final layernorm and unembedding of the positions asked for */
    gpt2_layernorm(xn, x, m->lnf_w, m->lnf_b, T, C, c->ln_eps);
    if ((rc = run_hooks(s, GPT2_HOOK_LN_FINAL, -1, xn, T, C, pos0, err))) return rc;
    if (!logits) return SS_OK;
    if (all_logits && T > 1)
        gpt2_matmul_w(logits, V, xn, &m->unembed, m->unembed_b, T, C, V);
    else
        gpt2_matmul_w(logits, V, xn + (size_t)(T - 1) * C, &m->unembed, m->unembed_b, 1, C, V);
    size_t n = (size_t)(all_logits ? T : 1) * V;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) { uint32_t u; memcpy(&u, &logits[i], 4); bad |= (u & 0x7f800000u) == 0x7f800000u; }
    if (bad)
        return ss_fail(err, SS_EINPUT, "%s: the forward pass produced non-finite logits (NaN/inf in the weights, "
                       "or an intervention too large for float32)", m->dir);
    return SS_OK;
}

int gpt2_forward_from(gpt2_state *s, int layer, const float *x, int T, float *logits, int all_logits, char *err) {
    const gpt2_config *c = &s->m->cfg;
    if (layer < 0 || layer > c->n_layer)
        return ss_fail(err, SS_EINPUT, "resume layer %d outside [0, %d]", layer, c->n_layer);
    if (T <= 0) return ss_fail(err, SS_EINPUT, "no positions to run");
    if (s->pos + T > s->n_ctx)
        return ss_fail(err, SS_EINPUT, "sequence of %d positions exceeds the context of %d positions", s->pos + T, s->n_ctx);
    memcpy(s->x, x, (size_t)T * c->n_embd * sizeof(float));
    return forward_blocks(s, layer, T, logits, all_logits, err);
}

void gpt2_state_rewind(gpt2_state *s, int pos) {
    if (pos >= 0 && pos < s->pos) s->pos = pos;
}
