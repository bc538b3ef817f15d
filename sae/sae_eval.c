/* sae_eval.c - what an SAE does to the model, over windows of text.
 *
 * Per window of T tokens, three forward passes of the whole model:
 *   clean    no intervention; the hook activation x (T, d_in) is captured
 *   recon    x replaced by the SAE's reconstruction at every position
 *   zero     x replaced by zeros at every position
 * and next-token cross-entropy for each (positions 0..T-2 predict 1..T-1).
 * Reconstruction statistics use the captured x at positions >= skip:
 *   mse = sum (x - x_hat)^2 / (n * d_in)
 *   explained variance = 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2
 *                        (mean over all scored tokens of the run)
 *   L0 = mean number of nonzero latents; dead = latents that never fired.
 *   CE loss recovered = (CE_zero - CE_recon) / (CE_zero - CE_clean).
 */
#include "sae_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sae_eval {
    const sae_dict *d;
    const gpt2_model *m;
    gpt2_state *s;
    sae_intervention *recon;   /* replace by reconstruction, all positions */
    int n_ctx;
    float *x;                  /* (n_ctx, C) captured activation */
    float *f;                  /* (n_ctx, S) codes */
    float *x_hat;              /* (n_ctx, C) reconstruction */
    float *logits;             /* (n_ctx, V) */
    double *sum_x;             /* (C) over scored tokens */
    unsigned char *fired;      /* (S) */
    double sum_x2, sse, l0_sum;
    int64_t n_tok, n_pred, n_windows;
    double ce[3];              /* summed CE: clean, recon, zero */
};

typedef struct { float *x; int C; } eval_capture;

static int eval_capture_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    eval_capture *c = ctx;
    memcpy(c->x + (size_t)pos0 * c->C, act, (size_t)T * width * sizeof(float));
    return SS_OK;
}

static int zero_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    memset(act, 0, (size_t)T * width * sizeof(float));
    return SS_OK;
}

void sae_eval_free(sae_eval *ev) {
    if (!ev) return;
    gpt2_state_free(ev->s);
    sae_intervention_free(ev->recon);
    free(ev->x); free(ev->f); free(ev->x_hat); free(ev->logits); free(ev->sum_x); free(ev->fired);
    free(ev);
}

int sae_eval_new(sae_eval **out, const sae_dict *d, const gpt2_model *m, int n_ctx, char *err) {
    *out = NULL;
    gpt2_hook_point hp;
    int rc = sae_check_model(d, &m->cfg, &hp, err);
    if (rc) return rc;
    if (n_ctx < 2 || n_ctx > m->cfg.n_positions)
        return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [2, %d]", n_ctx, m->cfg.n_positions);
    sae_eval *ev = calloc(1, sizeof *ev);
    if (!ev) return ss_fail(err, SS_ERUNTIME, "out of memory");
    ev->d = d; ev->m = m; ev->n_ctx = n_ctx;
    size_t C = (size_t)d->d_in, S = (size_t)d->d_sae, V = (size_t)m->cfg.vocab_size, N = (size_t)n_ctx;
    ev->x = ss_malloc2(N * C, sizeof(float));
    ev->f = ss_malloc2(N * S, sizeof(float));
    ev->x_hat = ss_malloc2(N * C, sizeof(float));
    ev->logits = ss_malloc2(N * V, sizeof(float));
    ev->sum_x = ss_calloc(C, sizeof(double));
    ev->fired = ss_calloc(S, 1);
    if (!ev->x || !ev->f || !ev->x_hat || !ev->logits || !ev->sum_x || !ev->fired) {
        sae_eval_free(ev);
        return ss_fail(err, SS_ERUNTIME, "out of memory for sae-eval buffers (window %d)", n_ctx);
    }
    if ((rc = gpt2_state_build(&ev->s, m, n_ctx, err)) ||
        (rc = sae_intervention_new(&ev->recon, d, NULL, 0, NULL, SAE_REPLACE_RECON, err))) {
        sae_eval_free(ev);
        return rc;
    }
    *out = ev;
    return SS_OK;
}

/* Summed next-token cross-entropy of logits (T, V) against tokens[1..T-1]. */
static double ce_sum(const float *logits, const int *tokens, int T, int V) {
    double total = 0;
    for (int t = 0; t + 1 < T; t++) {
        const float *l = logits + (size_t)t * V;
        float mx = l[0];
        for (int v = 1; v < V; v++) if (l[v] > mx) mx = l[v];
        double se = 0;
        for (int v = 0; v < V; v++) se += exp((double)l[v] - mx);
        total += (mx + log(se)) - l[tokens[t + 1]];
    }
    return total;
}

static int run(sae_eval *ev, const int *tokens, int T, int which, char *err) {
    gpt2_state *s = ev->s;
    gpt2_hook_point hp;
    int rc = sae_check_model(ev->d, &ev->m->cfg, &hp, err);
    if (rc) return rc;
    eval_capture cap = {ev->x, ev->d->d_in};
    gpt2_clear_hooks(s);
    if (which == 0) rc = gpt2_add_hook(s, &hp, eval_capture_hook, &cap, sae_hook_center(ev->d, &hp), err);
    else if (which == 1) rc = sae_intervention_attach(ev->recon, s, err);
    else rc = gpt2_add_hook(s, &hp, zero_hook, NULL, 0, err);
    if (rc) return rc;
    gpt2_state_reset(s);
    rc = gpt2_forward(s, tokens, T, ev->logits, 1, err);
    gpt2_clear_hooks(s);
    if (rc) return rc;
    ev->ce[which] += ce_sum(ev->logits, tokens, T, ev->m->cfg.vocab_size);
    return SS_OK;
}

int sae_eval_window(sae_eval *ev, const int *tokens, int T, int skip, char *err) {
    if (T < 2 || T > ev->n_ctx) return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [2, %d]", T, ev->n_ctx);
    if (skip < 0) skip = 0;
    if (skip > T) skip = T;
    int rc;
    for (int which = 0; which < 3; which++)
        if ((rc = run(ev, tokens, T, which, err))) return rc;

    /* reconstruction statistics on the clean activations */
    int n = T - skip, C = ev->d->d_in, S = ev->d->d_sae;
    if (n > 0) {
        const float *x = ev->x + (size_t)skip * C;
        if ((rc = sae_encode(ev->d, x, n, ev->f, err))) return rc;
        if ((rc = sae_decode(ev->d, ev->f, x, n, ev->x_hat, err))) return rc;
        for (int t = 0; t < n; t++) {
            const float *xr = x + (size_t)t * C, *hr = ev->x_hat + (size_t)t * C, *fr = ev->f + (size_t)t * S;
            for (int j = 0; j < C; j++) {
                double e = (double)xr[j] - hr[j];
                ev->sse += e * e;
                ev->sum_x[j] += xr[j];
                ev->sum_x2 += (double)xr[j] * xr[j];
            }
            for (int i = 0; i < S; i++)
                if (fr[i] != 0.0f) { ev->l0_sum += 1; ev->fired[i] = 1; }
        }
        ev->n_tok += n;
    }
    ev->n_pred += T - 1;
    ev->n_windows++;
    return SS_OK;
}

void sae_eval_get(const sae_eval *ev, sae_eval_result *r) {
    memset(r, 0, sizeof *r);
    int C = ev->d->d_in, S = ev->d->d_sae;
    r->n_windows = ev->n_windows;
    r->n_tokens = ev->n_tok;
    r->n_predictions = ev->n_pred;
    double n = (double)ev->n_tok;
    if (n > 0) {
        double sst = ev->sum_x2;
        for (int j = 0; j < C; j++) sst -= ev->sum_x[j] * ev->sum_x[j] / n;
        r->mse = ev->sse / (n * C);
        r->explained_variance = sst > 0 ? 1.0 - ev->sse / sst : NAN;
        r->l0 = ev->l0_sum / n;
    } else {
        r->mse = r->explained_variance = r->l0 = NAN;
    }
    for (int i = 0; i < S; i++) r->dead += !ev->fired[i];
    r->dead_fraction = (double)r->dead / S;
    if (ev->n_pred > 0) {
        r->ce_clean = ev->ce[0] / ev->n_pred;
        r->ce_recon = ev->ce[1] / ev->n_pred;
        r->ce_zero = ev->ce[2] / ev->n_pred;
        double den = r->ce_zero - r->ce_clean;
        r->ce_recovered = den != 0 ? (r->ce_zero - r->ce_recon) / den : NAN;
    } else {
        r->ce_clean = r->ce_recon = r->ce_zero = r->ce_recovered = NAN;
    }
}
