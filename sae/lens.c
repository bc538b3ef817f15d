/* lens.c - the logit lens and directions in vocabulary space (see analysis.h). */
#include "analysis.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int topk_indices(const float *x, int n, int k, int largest, int *idx) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    int m = 0;   /* idx[0..m) sorted best first */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) continue;   /* NaN never ranks */
        if (m == k) {
            float w = x[idx[k - 1]];
            if (largest ? !(v > w) : !(v < w)) continue;
            m--;
        }
        int j = m++;
        while (j > 0 && (largest ? v > x[idx[j - 1]] : v < x[idx[j - 1]])) { idx[j] = idx[j - 1]; j--; }
        idx[j] = i;
    }
    return m;
}

void log_softmax_inplace(float *x, int n) {
    double mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++) x[i] = (float)((double)x[i] - lse);
}

void lens_point_name(const gpt2_config *cfg, int i, char *buf, size_t n) {
    if (i < cfg->n_layer) snprintf(buf, n, "blocks.%d.hook_resid_pre", i);
    else snprintf(buf, n, "blocks.%d.hook_resid_post", cfg->n_layer - 1);
}

void lens_result_free(lens_result *r) {
    free(r->top_ids);
    free(r->top_logprob);
    free(r->answer_logprob);
    free(r->answer_rank);
    memset(r, 0, sizeof *r);
}

typedef struct { float *rows; int C, pos; } lens_cap;   /* rows (n_layer + 1, C) */

static int lens_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)err;
    lens_cap *c = ctx;
    int t = c->pos - pos0, slot = hp->kind == GPT2_HOOK_RESID_POST ? hp->layer + 1 : hp->layer;
    if (t >= 0 && t < T) memcpy(c->rows + (size_t)slot * c->C, act + (size_t)t * width, (size_t)width * sizeof(float));
    return SS_OK;
}

int lens_run(const gpt2_model *m, const int *tokens, int T, int pos, int cached_scale, int k, int answer,
             lens_result *r, char *err) {
    memset(r, 0, sizeof *r);
    const gpt2_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size, P = L + 1, rc;
    if (pos < 0 || pos >= T) return ss_fail(err, SS_EINPUT, "lens: position %d outside the prompt's %d tokens", pos, T);
    if (answer >= V) return ss_fail(err, SS_EINPUT, "lens: answer id %d outside the vocabulary (%d)", answer, V);
    if (k < 1) k = 1;
    if (k > V) k = V;
    lens_cap cap = {NULL, C, pos};
    gpt2_state *s = NULL;
    float *y = NULL, *logits = NULL;
    cap.rows = ss_malloc2((size_t)P, (size_t)C * sizeof(float));
    y = ss_malloc2((size_t)C, sizeof(float));
    logits = ss_malloc2((size_t)V, sizeof(float));
    r->n_points = P;
    r->k = k;
    r->answer = answer;
    r->top_ids = ss_malloc2((size_t)P * k, sizeof(int));
    r->top_logprob = ss_malloc2((size_t)P * k, sizeof(float));
    if (answer >= 0) {
        r->answer_logprob = ss_malloc2((size_t)P, sizeof(float));
        r->answer_rank = ss_malloc2((size_t)P, sizeof(int));
    }
    if (!cap.rows || !y || !logits || !r->top_ids || !r->top_logprob ||
        (answer >= 0 && (!r->answer_logprob || !r->answer_rank))) {
        rc = ss_fail(err, SS_ERUNTIME, "lens: out of memory");
        goto fail;
    }
    /* only the positions up to pos matter (causal attention) */
    if ((rc = gpt2_state_build(&s, m, pos + 1, err))) goto fail;
    for (int l = 0; l < L; l++) {
        gpt2_hook_point h = {GPT2_HOOK_RESID_PRE, l};
        if ((rc = gpt2_add_hook(s, &h, lens_hook, &cap, 0, err))) goto fail;
    }
    gpt2_hook_point hpost = {GPT2_HOOK_RESID_POST, L - 1};
    if ((rc = gpt2_add_hook(s, &hpost, lens_hook, &cap, 0, err))) goto fail;
    if ((rc = gpt2_forward(s, tokens, pos + 1, NULL, 0, err))) goto fail;

    /* the final residual's LayerNorm scale, for cached_scale */
    const float *fin = cap.rows + (size_t)L * C;
    double mu = 0, var = 0;
    for (int i = 0; i < C; i++) mu += fin[i];
    mu /= C;
    for (int i = 0; i < C; i++) var += (fin[i] - mu) * (fin[i] - mu);
    var /= C;
    double fscale = sqrt(var + (double)c->ln_eps);

    for (int p = 0; p < P; p++) {
        const float *x = cap.rows + (size_t)p * C;
        if (cached_scale) {
            double mx = 0;
            for (int i = 0; i < C; i++) mx += x[i];
            mx /= C;
            for (int i = 0; i < C; i++) y[i] = (float)(((double)x[i] - mx) / fscale) * m->lnf_w[i] + m->lnf_b[i];
        } else {
            gpt2_layernorm(y, x, m->lnf_w, m->lnf_b, 1, C, c->ln_eps);
        }
        gpt2_unembed_dirs(m, y, 1, logits);
        if (m->unembed_b)   /* GPT-J's lm_head bias is part of the logits */
            for (int i = 0; i < V; i++) logits[i] += m->unembed_b[i];
        for (int i = 0; i < V; i++)
            if (!isfinite(logits[i])) { rc = ss_fail(err, SS_EINPUT, "%s: non-finite logits in the lens", m->dir); goto fail; }
        log_softmax_inplace(logits, V);
        int *ids = r->top_ids + (size_t)p * k;
        topk_indices(logits, V, k, 1, ids);
        for (int j = 0; j < k; j++) r->top_logprob[(size_t)p * k + j] = logits[ids[j]];
        if (answer >= 0) {
            float a = logits[answer];
            int rank = 1;
            for (int i = 0; i < V; i++) rank += logits[i] > a || (logits[i] == a && i < answer);
            r->answer_logprob[p] = a;
            r->answer_rank[p] = rank;
        }
    }
    rc = SS_OK;
    goto done;
fail:
    lens_result_free(r);
done:
    gpt2_state_free(s);
    free(cap.rows);
    free(y);
    free(logits);
    return rc;
}

int unembed_scores(const gpt2_model *m, const float *v, int ln_f, float *out, char *err) {
    int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    float *y = ss_malloc2((size_t)C, sizeof(float));
    if (!y) return ss_fail(err, SS_ERUNTIME, "unembed: out of memory");
    if (ln_f) gpt2_layernorm(y, v, m->lnf_w, m->lnf_b, 1, C, m->cfg.ln_eps);
    else memcpy(y, v, (size_t)C * sizeof(float));
    gpt2_unembed_dirs(m, y, 1, out);   /* W_U only: a direction's scores carry no bias */
    free(y);
    for (int i = 0; i < V; i++)
        if (!isfinite(out[i])) return ss_fail(err, SS_EINPUT, "unembed: non-finite score for token %d", i);
    return SS_OK;
}
