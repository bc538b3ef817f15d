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
    uint64_t *sum_x;           /* (C, 2, SS_XSUM_WORDS) exact sums of the positive and negative parts of x */
    unsigned char *fired;      /* (S) */
    /* each window's sums and its window number: sae_eval_get adds them in
       window order, so workers, ranks and shards give one process's bits */
    int64_t n_tok, n_pred, n_windows;
    double *wsum;              /* (n_windows, EV_WSUMS) */
    int64_t *widx;             /* (n_windows) */
    int64_t wcap;
    int *buf;                  /* (n_ctx) [BOS, text...] for sae_eval_file_part */
    int bos;
};
enum { EV_WSUMS = 6 };         /* sse, sum_x2, l0, ce clean, recon, zero */

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
    free(ev->x); free(ev->f); free(ev->x_hat); free(ev->logits); free(ev->sum_x); free(ev->fired); free(ev->wsum); free(ev->widx); free(ev->buf);
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
    ev->sum_x = ss_calloc(C * 2 * SS_XSUM_WORDS, sizeof(uint64_t));
    ev->fired = ss_calloc(S, 1);
    ev->buf = ss_malloc2(N, sizeof(int));
    if (!ev->x || !ev->f || !ev->x_hat || !ev->logits || !ev->sum_x || !ev->fired || !ev->buf) {
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

static int run(sae_eval *ev, const int *tokens, int T, int which, double *ce, char *err) {
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
    *ce = ce_sum(ev->logits, tokens, T, ev->m->cfg.vocab_size);
    return SS_OK;
}

/* Keep window idx's sums (ws: EV_WSUMS). */
static int add_window(sae_eval *ev, int64_t idx, const double *ws, char *err) {
    if (ev->n_windows == ev->wcap) {
        int64_t cap = ev->wcap ? 2 * ev->wcap : 256;
        double *nw = realloc(ev->wsum, (size_t)cap * EV_WSUMS * sizeof(double));
        if (nw) ev->wsum = nw;
        int64_t *ni = realloc(ev->widx, (size_t)cap * sizeof(int64_t));
        if (ni) ev->widx = ni;
        if (!nw || !ni) return ss_fail(err, SS_ERUNTIME, "out of memory");
        ev->wcap = cap;
    }
    memcpy(ev->wsum + (size_t)ev->n_windows * EV_WSUMS, ws, EV_WSUMS * sizeof(double));
    ev->widx[ev->n_windows] = idx;
    ev->n_windows++;
    return SS_OK;
}

int sae_eval_window(sae_eval *ev, const int *tokens, int T, int skip, char *err) {
    return sae_eval_window_at(ev, ev->n_windows, tokens, T, skip, err);
}

int sae_eval_window_at(sae_eval *ev, int64_t idx, const int *tokens, int T, int skip, char *err) {
    if (T < 2 || T > ev->n_ctx) return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [2, %d]", T, ev->n_ctx);
    if (skip < 0) skip = 0;
    if (skip > T) skip = T;
    int rc;
    double ws[EV_WSUMS] = {0};
    for (int which = 0; which < 3; which++)
        if ((rc = run(ev, tokens, T, which, &ws[3 + which], err))) return rc;

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
                ws[0] += e * e;
                uint64_t *sx = ev->sum_x + (size_t)j * 2 * SS_XSUM_WORDS;
                if (xr[j] >= 0) ss_xsum_add(sx, xr[j]);
                else ss_xsum_add(sx + SS_XSUM_WORDS, -xr[j]);
                ws[1] += (double)xr[j] * xr[j];
            }
            for (int i = 0; i < S; i++)
                if (fr[i] != 0.0f) { ws[2] += 1; ev->fired[i] = 1; }
        }
        ev->n_tok += n;
    }
    ev->n_pred += T - 1;
    return add_window(ev, idx, ws, err);
}

/* src's statistics into dst (worker results; exact, order restored by window number). */
static int absorb(sae_eval *dst, const sae_eval *src, char *err) {
    int C = dst->d->d_in, S = dst->d->d_sae, rc = SS_OK;
    for (int j = 0; j < 2 * C; j++) ss_xsum_merge(dst->sum_x + (size_t)j * SS_XSUM_WORDS, src->sum_x + (size_t)j * SS_XSUM_WORDS);
    for (int i = 0; i < S; i++) dst->fired[i] |= src->fired[i];
    for (int64_t k = 0; k < src->n_windows && !rc; k++) rc = add_window(dst, src->widx[k], src->wsum + (size_t)k * EV_WSUMS, err);
    dst->n_tok += src->n_tok;
    dst->n_pred += src->n_pred;
    return rc;
}

static int eval_text_window(void *state, const int *ids, int got, int64_t widx, char *err) {
    sae_eval *ev = state;
    if (got + ev->bos < 2) return SS_OK;   /* a lone final token predicts nothing */
    ev->buf[0] = ev->m->cfg.bos_id;
    memcpy(ev->buf + ev->bos, ids, (size_t)got * sizeof(int));
    return sae_eval_window_at(ev, widx, ev->buf, got + ev->bos, ev->bos, err);
}

int sae_eval_file_part(sae_eval *ev, const tokenizer *tok, const char *path, const ss_part *part, int64_t max_tokens,
                       int bos, int threads, ss_progress_fn cb, void *cb_ctx, int *stopped, char *err) {
    *stopped = 0;
    int nt = threads > 1 ? threads : 1, rc = SS_OK;
    sae_eval **evs = calloc((size_t)nt, sizeof *evs);
    ss_windows *w = NULL;
    if (!evs) return ss_fail(err, SS_ERUNTIME, "out of memory");
    evs[0] = ev;
    for (int t = 1; t < nt && !rc; t++) rc = sae_eval_new(&evs[t], ev->d, ev->m, ev->n_ctx, err);
    for (int t = 0; t < nt && !rc; t++) evs[t]->bos = bos ? 1 : 0;
    if (!rc) rc = ss_windows_open(&w, tok, path, part->byte_start, part->tok_start, part->tok_end, ev->n_ctx - (bos ? 1 : 0),
                                  max_tokens, err);
    if (!rc) rc = ss_windows_run(w, nt, (void **)evs, eval_text_window, cb, cb_ctx, max_tokens, stopped, err);
    for (int t = 1; t < nt && !rc; t++) rc = absorb(ev, evs[t], err);
    ss_windows_close(w);
    for (int t = 1; t < nt; t++) sae_eval_free(evs[t]);
    free(evs);
    return rc;
}

/* Partial result: "EVL1", C S (i32), n_tok n_pred n_windows (i64), sum_x
   (C*2*SS_XSUM_WORDS u64), fired (S bytes), then per window its number
   (i64) and EV_WSUMS f64. */
int sae_eval_pack(const sae_eval *ev, ss_buf *b, char *err) {
    int32_t hd[2] = {ev->d->d_in, ev->d->d_sae};
    int64_t cnt[3] = {ev->n_tok, ev->n_pred, ev->n_windows};
    if (ss_buf_put(b, "EVL1", 4) || ss_buf_put(b, hd, sizeof hd) || ss_buf_put(b, cnt, sizeof cnt) ||
        ss_buf_put(b, ev->sum_x, (size_t)hd[0] * 2 * SS_XSUM_WORDS * 8) || ss_buf_put(b, ev->fired, (size_t)hd[1]))
        return ss_fail(err, SS_ERUNTIME, "out of memory packing sae-eval results");
    for (int64_t k = 0; k < ev->n_windows; k++)
        if (ss_buf_put(b, &ev->widx[k], 8) || ss_buf_put(b, ev->wsum + (size_t)k * EV_WSUMS, EV_WSUMS * sizeof(double)))
            return ss_fail(err, SS_ERUNTIME, "out of memory packing sae-eval results");
    return SS_OK;
}

int sae_eval_merge(sae_eval *ev, const void *data, size_t len, char *err) {
    const unsigned char *d = data;
    int32_t hd[2];
    int64_t cnt[3];
    int C = ev->d->d_in, S = ev->d->d_sae;
    size_t fixed = 4 + sizeof hd + sizeof cnt + (size_t)C * 2 * SS_XSUM_WORDS * 8 + (size_t)S;
    if (len < 4 + sizeof hd + sizeof cnt || memcmp(d, "EVL1", 4)) return ss_fail(err, SS_EINPUT, "sae-eval part: bad header");
    memcpy(hd, d + 4, sizeof hd);
    memcpy(cnt, d + 4 + sizeof hd, sizeof cnt);
    if (hd[0] != C || hd[1] != S) return ss_fail(err, SS_EINPUT, "sae-eval part: d_in %d, d_sae %d; expected %d, %d", hd[0], hd[1], C, S);
    if (cnt[0] < 0 || cnt[1] < 0 || cnt[2] < 0 || len < fixed || (size_t)cnt[2] > (len - fixed) / ((EV_WSUMS + 1) * 8) ||
        len != fixed + (size_t)cnt[2] * (EV_WSUMS + 1) * 8)
        return ss_fail(err, SS_EINPUT, "sae-eval part: size does not match its %lld windows", (long long)cnt[2]);
    const unsigned char *p = d + 4 + sizeof hd + sizeof cnt;
    for (int j = 0; j < 2 * C; j++) {
        uint64_t w[SS_XSUM_WORDS];
        memcpy(w, p + (size_t)j * SS_XSUM_WORDS * 8, sizeof w);
        ss_xsum_merge(ev->sum_x + (size_t)j * SS_XSUM_WORDS, w);
    }
    p += (size_t)C * 2 * SS_XSUM_WORDS * 8;
    for (int i = 0; i < S; i++) ev->fired[i] |= p[i] != 0;
    p += S;
    for (int64_t k = 0; k < cnt[2]; k++) {
        double ws[EV_WSUMS];
        int64_t idx;
        memcpy(&idx, p + (size_t)k * (EV_WSUMS + 1) * 8, 8);
        memcpy(ws, p + (size_t)k * (EV_WSUMS + 1) * 8 + 8, sizeof ws);
        if (idx < 0) return ss_fail(err, SS_EINPUT, "sae-eval part: negative window number");
        int rc = add_window(ev, idx, ws, err);
        if (rc) return rc;
    }
    ev->n_tok += cnt[0];
    ev->n_pred += cnt[1];
    return SS_OK;
}

void sae_eval_get(const sae_eval *ev, sae_eval_result *r) {
    memset(r, 0, sizeof *r);
    int C = ev->d->d_in, S = ev->d->d_sae;
    r->n_windows = ev->n_windows;
    r->n_tokens = ev->n_tok;
    r->n_predictions = ev->n_pred;
    double n = (double)ev->n_tok, sums[EV_WSUMS];
    for (int k = 0; k < EV_WSUMS; k++) sums[k] = ss_sum_in_order(ev->wsum + k, ev->widx, ev->n_windows, EV_WSUMS);
    if (n > 0) {
        double sst = sums[1];
        for (int j = 0; j < C; j++) {
            const uint64_t *sx = ev->sum_x + (size_t)j * 2 * SS_XSUM_WORDS;
            double m = ss_xsum_value(sx) - ss_xsum_value(sx + SS_XSUM_WORDS);
            sst -= m * m / n;
        }
        r->mse = sums[0] / (n * C);
        r->explained_variance = sst > 0 ? 1.0 - sums[0] / sst : NAN;
        r->l0 = sums[2] / n;
    } else {
        r->mse = r->explained_variance = r->l0 = NAN;
    }
    for (int i = 0; i < S; i++) r->dead += !ev->fired[i];
    r->dead_fraction = (double)r->dead / S;
    if (ev->n_pred > 0) {
        r->ce_clean = sums[3] / ev->n_pred;
        r->ce_recon = sums[4] / ev->n_pred;
        r->ce_zero = sums[5] / ev->n_pred;
        double den = r->ce_zero - r->ce_clean;
        r->ce_recovered = den != 0 ? (r->ce_zero - r->ce_recon) / den : NAN;
    } else {
        r->ce_clean = r->ce_recon = r->ce_zero = r->ce_recovered = NAN;
    }
}
