/* scan.c - corpus scan engine (see scan.h).
 *
 * Per window: sae_capture runs the model only up to the SAE's hook, one
 * sae_encode gives f (T, S), then one pass over f updates each active
 * latent's count, sum, max, histogram bin and top-K heap. A heap entry that
 * enters copies its context (ids and this latent's activations) out of the
 * current window at once, so nothing about earlier windows is kept.
 * Memory: O(S * K * (2R+1)) + O(window * (d_in + S)), independent of the file.
 */
#include "scan.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double scan_hist_edge(int b) {
    return pow(10.0, SCAN_HIST_LOG10_LO + (SCAN_HIST_LOG10_HI - SCAN_HIST_LOG10_LO) * b / SCAN_HIST_BINS);
}

static int hist_bin(float v) {
    double b = floor((log10((double)v) - SCAN_HIST_LOG10_LO) * SCAN_HIST_BINS / (SCAN_HIST_LOG10_HI - SCAN_HIST_LOG10_LO));
    if (!(b >= 0)) return 0;
    if (b >= SCAN_HIST_BINS) return SCAN_HIST_BINS - 1;
    return (int)b;
}

void scan_free(scan_state *sc) {
    if (!sc) return;
    gpt2_state_free(sc->s);
    free(sc->x); free(sc->f); free(sc->win);
    free(sc->n_active); free(sc->sum_act); free(sc->max_act); free(sc->hist);
    free(sc->n_heap); free(sc->heap); free(sc->c_val); free(sc->c_index); free(sc->c_center); free(sc->c_len);
    free(sc->c_ids); free(sc->c_acts);
    free(sc->top_ids); free(sc->bot_ids); free(sc->top_val); free(sc->bot_val);
    free(sc);
}

int scan_new(scan_state **out, const sae_dict *d, const gpt2_model *m, const scan_opts *o, char *err) {
    *out = NULL;
    gpt2_hook_point hp;
    int rc = sae_check_model(d, &m->cfg, &hp, err);
    if (rc) return rc;
    int P = m->cfg.n_positions;
    int K = o->top_k ? o->top_k : 20, R = o->radius >= 0 ? o->radius : 8, NL = o->n_logits ? o->n_logits : 10;
    if (K < 1 || K > 1000) return ss_fail(err, SS_EINPUT, "top-k %d: must be in [1, 1000]", K);
    if (R > 512) return ss_fail(err, SS_EINPUT, "context radius %d: must be in [0, 512]", R);
    if (NL < 1 || NL > m->cfg.vocab_size) return ss_fail(err, SS_EINPUT, "logit tokens %d: must be in [1, vocab]", NL);
    int bos = d->prepend_bos ? 1 : 0;
    int W = o->window;
    if (W == 0) W = d->context_size > 0 && d->context_size < P ? d->context_size : P;
    if (W < 1 + bos || W > P)
        return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [%d, %d] (n_positions)", W, 1 + bos, P);
    if (o->max_tokens < 0) return ss_fail(err, SS_EINPUT, "max tokens %lld: must be >= 0", (long long)o->max_tokens);

    scan_state *sc = calloc(1, sizeof *sc);
    if (!sc) return ss_fail(err, SS_ERUNTIME, "out of memory");
    size_t S = (size_t)d->d_sae, C = (size_t)d->d_in;
    sc->d = d; sc->m = m; sc->S = (int)S; sc->K = K; sc->R = R; sc->span = 2 * R + 1;
    sc->window = W; sc->bos = bos; sc->max_tokens = o->max_tokens; sc->n_logits = NL;
    sc->progress = o->progress; sc->progress_ctx = o->progress_ctx;
    size_t SK = S * (size_t)K, SKs = SK * (size_t)sc->span;
    sc->x = ss_malloc2((size_t)W * C, sizeof(float));
    sc->f = ss_malloc2((size_t)W * S, sizeof(float));
    sc->win = ss_malloc2((size_t)W, sizeof(int));
    sc->n_active = ss_calloc(S, sizeof(int64_t));
    sc->sum_act = ss_calloc(S, sizeof(double));
    sc->max_act = ss_calloc(S, sizeof(float));
    sc->hist = ss_calloc(S * SCAN_HIST_BINS, sizeof(uint32_t));
    sc->n_heap = ss_calloc(S, sizeof(int));
    sc->heap = ss_calloc(SK, sizeof(int));
    sc->c_val = ss_calloc(SK, sizeof(float));
    sc->c_index = ss_calloc(SK, sizeof(int64_t));
    sc->c_center = ss_calloc(SK, sizeof(int));
    sc->c_len = ss_calloc(SK, sizeof(int));
    sc->c_ids = ss_calloc(SKs, sizeof(int));
    sc->c_acts = ss_calloc(SKs, sizeof(float));
    if (!sc->x || !sc->f || !sc->win || !sc->n_active || !sc->sum_act || !sc->max_act || !sc->hist || !sc->n_heap ||
        !sc->heap || !sc->c_val || !sc->c_index || !sc->c_center || !sc->c_len || !sc->c_ids || !sc->c_acts) {
        scan_free(sc);
        return ss_fail(err, SS_ERUNTIME, "out of memory for scan buffers (%zu latents, top %d, span %d)", S, K, 2 * R + 1);
    }
    if ((rc = gpt2_state_build(&sc->s, m, W, err))) { scan_free(sc); return rc; }
    *out = sc;
    return SS_OK;
}

/* ---------------------------------------------------------- top-K heap --- */
/* Entry a is weaker than b: smaller value, or equal value and later token. */
static inline int weaker(const float *val, const int64_t *idx, int a, int b) {
    return val[a] < val[b] || (val[a] == val[b] && idx[a] > idx[b]);
}

static void sift_down(int *h, int n, const float *val, const int64_t *idx, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && weaker(val, idx, h[l], h[w])) w = l;
        if (r < n && weaker(val, idx, h[r], h[w])) w = r;
        if (w == i) return;
        int t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static void sift_up(int *h, const float *val, const int64_t *idx, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!weaker(val, idx, h[i], h[p])) return;
        int t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

/* Offer (v, index) at scored row t of the window to latent i's heap. */
static void offer(scan_state *sc, int i, float v, int64_t index, int t, int n, const int *ids, const float *f) {
    const int K = sc->K;
    int *h = sc->heap + (size_t)i * K;
    float *val = sc->c_val + (size_t)i * K;
    int64_t *idx = sc->c_index + (size_t)i * K;
    int slot;
    if (sc->n_heap[i] < K) {
        slot = sc->n_heap[i];
    } else {
        int root = h[0];
        if (!(v > val[root] || (v == val[root] && index < idx[root]))) return;
        slot = root;
    }
    val[slot] = v;
    idx[slot] = index;
    int lo = t - sc->R < 0 ? 0 : t - sc->R, hi = t + sc->R > n - 1 ? n - 1 : t + sc->R;
    size_t o = ((size_t)i * K + slot) * sc->span;
    sc->c_center[(size_t)i * K + slot] = t - lo;
    sc->c_len[(size_t)i * K + slot] = hi - lo + 1;
    for (int p = lo; p <= hi; p++) {
        sc->c_ids[o + (p - lo)] = ids[p];
        sc->c_acts[o + (p - lo)] = f[(size_t)p * sc->S + i];
    }
    if (sc->n_heap[i] < K) {
        h[sc->n_heap[i]] = slot;
        sift_up(h, val, idx, sc->n_heap[i]++);
    } else {
        sift_down(h, K, val, idx, 0);
    }
}

int scan_window(scan_state *sc, const int *tokens, int T, int skip, int64_t index0, char *err) {
    if (T < 1 || T > sc->window) return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [1, %d]", T, sc->window);
    if (skip < 0 || skip >= T) return ss_fail(err, SS_EINPUT, "skip %d: must be in [0, %d)", skip, T);
    const int S = sc->S, C = sc->d->d_in, n = T - skip;
    int rc = sae_capture(sc->d, sc->s, tokens, T, sc->x, err);
    if (rc) return rc;
    if ((rc = sae_encode(sc->d, sc->x + (size_t)skip * C, n, sc->f, err))) return rc;
    const int *ids = tokens + skip;
    for (int t = 0; t < n; t++) {
        const float *row = sc->f + (size_t)t * S;
        for (int i = 0; i < S; i++) {
            float v = row[i];
            if (!(v > 0.0f)) continue;
            sc->n_active[i]++;
            sc->sum_act[i] += v;
            if (v > sc->max_act[i]) sc->max_act[i] = v;
            sc->hist[(size_t)i * SCAN_HIST_BINS + hist_bin(v)]++;
            offer(sc, i, v, index0 + t, t, n, ids, sc->f);
        }
    }
    sc->n_tokens += n;
    sc->n_windows++;
    return SS_OK;
}

int scan_file(scan_state *sc, const tokenizer *tok, const char *path, char *err) {
    ss_tokstream *ts = NULL;
    int rc = ss_tokstream_open(&ts, tok, path, 0, err);
    if (rc) return rc;
    sc->bytes_total = ss_tokstream_bytes_total(ts);
    const int per = sc->window - sc->bos;
    int64_t index = 0;
    sc->win[0] = sc->m->cfg.bos_id;
    for (;;) {
        int want = per, got = 0;
        if (sc->max_tokens > 0 && sc->max_tokens - index < want) want = (int)(sc->max_tokens - index);
        if (want <= 0) break;
        if ((rc = ss_tokstream_read(ts, sc->win + sc->bos, want, &got, err))) break;
        if (got == 0) break;
        if ((rc = scan_window(sc, sc->win, got + sc->bos, sc->bos, index, err))) break;
        index += got;
        sc->bytes_done = ss_tokstream_bytes_done(ts);
        if (sc->progress) {
            ss_progress pr = {index, sc->max_tokens, sc->bytes_done, sc->bytes_total, NULL, 0, 0};
            if (sc->progress(sc->progress_ctx, &pr)) { sc->stopped = 1; break; }
        }
        if (got < want) break;
    }
    ss_tokstream_close(ts);
    if (!rc && sc->n_tokens == 0 && !sc->stopped) rc = ss_fail(err, SS_EINPUT, "%s: no tokens to scan (empty file?)", path);
    return rc;
}

int scan_contexts(const scan_state *sc, int latent, scan_context *out) {
    const int K = sc->K, n = sc->n_heap[latent];
    for (int j = 0; j < n; j++) {
        size_t s = (size_t)latent * K + j;
        out[j].value = sc->c_val[s];
        out[j].token_index = sc->c_index[s];
        out[j].center = sc->c_center[s];
        out[j].len = sc->c_len[s];
        out[j].ids = sc->c_ids + s * sc->span;
        out[j].acts = sc->c_acts + s * sc->span;
    }
    /* insertion sort, strongest first (K is small) */
    for (int a = 1; a < n; a++) {
        scan_context c = out[a];
        int b = a - 1;
        while (b >= 0 && (out[b].value < c.value || (out[b].value == c.value && out[b].token_index > c.token_index))) {
            out[b + 1] = out[b];
            b--;
        }
        out[b + 1] = c;
    }
    return n;
}

/* ------------------------------------------------------ logit effects --- */

/* Keep the n largest (sign +1) or smallest (sign -1) of row into ids/vals,
   best first; ties keep the smaller id. */
static void select_n(const float *row, int V, int n, float sign, int *ids, float *vals) {
    int cnt = 0;
    for (int v = 0; v < V; v++) {
        float x = sign * row[v];
        if (cnt == n && !(x > sign * vals[n - 1])) continue;
        int j = cnt < n ? cnt++ : n - 1;
        while (j > 0 && x > sign * vals[j - 1]) { vals[j] = vals[j - 1]; ids[j] = ids[j - 1]; j--; }
        vals[j] = row[v];
        ids[j] = v;
    }
}

int scan_logit_effects(scan_state *sc, char *err) {
    const gpt2_config *cfg = &sc->m->cfg;
    const int S = sc->S, C = sc->d->d_in, V = cfg->vocab_size, NL = sc->n_logits;
    if (C != cfg->n_embd) { sc->have_logits = 0; return SS_OK; }   /* not a residual-width dictionary */
    size_t SN = (size_t)S * NL;
    if (!sc->top_ids) {
        sc->top_ids = ss_malloc2(SN, sizeof(int));
        sc->bot_ids = ss_malloc2(SN, sizeof(int));
        sc->top_val = ss_malloc2(SN, sizeof(float));
        sc->bot_val = ss_malloc2(SN, sizeof(float));
    }
    const int B = 64;
    float *buf = ss_malloc2((size_t)B * V, sizeof(float));   /* (B, V) */
    if (!sc->top_ids || !sc->bot_ids || !sc->top_val || !sc->bot_val || !buf) {
        free(buf);
        return ss_fail(err, SS_ERUNTIME, "out of memory for logit effects");
    }
    for (int i0 = 0; i0 < S; i0 += B) {
        int nb = S - i0 < B ? S - i0 : B;
        gpt2_unembed_dirs(sc->m, sc->d->W_dec + (size_t)i0 * C, nb, buf);
        for (int r = 0; r < nb; r++) {
            size_t o = (size_t)(i0 + r) * NL;
            select_n(buf + (size_t)r * V, V, NL, 1.0f, sc->top_ids + o, sc->top_val + o);
            select_n(buf + (size_t)r * V, V, NL, -1.0f, sc->bot_ids + o, sc->bot_val + o);
        }
        if (sc->progress) {   /* a big dictionary takes a while here too: allow a stop */
            ss_progress pr = {sc->n_tokens, sc->max_tokens, sc->bytes_done, sc->bytes_total, "logit effects", i0 + nb, S};
            if (sc->progress(sc->progress_ctx, &pr)) { sc->stopped = 1; break; }
        }
    }
    free(buf);
    sc->have_logits = !sc->stopped;
    return SS_OK;
}
