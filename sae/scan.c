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
#include <pthread.h>
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
    free(sc->n_active); free(sc->sum_x); free(sc->max_act); free(sc->hist);
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
    sc->threads = o->threads;
    sc->progress = o->progress; sc->progress_ctx = o->progress_ctx;
    size_t SK = S * (size_t)K, SKs = SK * (size_t)sc->span;
    sc->x = ss_malloc2((size_t)W * C, sizeof(float));
    sc->f = ss_malloc2((size_t)W * S, sizeof(float));
    sc->win = ss_malloc2((size_t)W, sizeof(int));
    sc->n_active = ss_calloc(S, sizeof(int64_t));
    sc->sum_x = ss_calloc(S * SS_XSUM_WORDS, sizeof(uint64_t));
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
    if (!sc->x || !sc->f || !sc->win || !sc->n_active || !sc->sum_x || !sc->max_act || !sc->hist || !sc->n_heap ||
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

/* Latent i's heap slot for (v, index), or -1 if it does not enter. */
static int offer_slot(scan_state *sc, int i, float v, int64_t index) {
    const int K = sc->K;
    const int *h = sc->heap + (size_t)i * K;
    const float *val = sc->c_val + (size_t)i * K;
    const int64_t *idx = sc->c_index + (size_t)i * K;
    if (sc->n_heap[i] < K) return sc->n_heap[i];
    int root = h[0];
    if (!(v > val[root] || (v == val[root] && index < idx[root]))) return -1;
    return root;
}

/* Put (v, index) into slot (from offer_slot; its context already stored) and restore the heap. */
static void offer_place(scan_state *sc, int i, int slot, float v, int64_t index) {
    const int K = sc->K;
    int *h = sc->heap + (size_t)i * K;
    float *val = sc->c_val + (size_t)i * K;
    int64_t *idx = sc->c_index + (size_t)i * K;
    val[slot] = v;
    idx[slot] = index;
    if (sc->n_heap[i] < K) {
        h[sc->n_heap[i]] = slot;
        sift_up(h, val, idx, sc->n_heap[i]++);
    } else {
        sift_down(h, K, val, idx, 0);
    }
}

/* Offer (v, index) at scored row t of the window to latent i's heap. */
static void offer(scan_state *sc, int i, float v, int64_t index, int t, int n, const int *ids, const float *f) {
    int slot = offer_slot(sc, i, v, index);
    if (slot < 0) return;
    int lo = t - sc->R < 0 ? 0 : t - sc->R, hi = t + sc->R > n - 1 ? n - 1 : t + sc->R;
    size_t o = ((size_t)i * sc->K + slot) * sc->span;
    sc->c_center[(size_t)i * sc->K + slot] = t - lo;
    sc->c_len[(size_t)i * sc->K + slot] = hi - lo + 1;
    for (int p = lo; p <= hi; p++) {
        sc->c_ids[o + (p - lo)] = ids[p];
        sc->c_acts[o + (p - lo)] = f[(size_t)p * sc->S + i];
    }
    offer_place(sc, i, slot, v, index);
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
            ss_xsum_add(sc->sum_x + (size_t)i * SS_XSUM_WORDS, v);
            if (v > sc->max_act[i]) sc->max_act[i] = v;
            sc->hist[(size_t)i * SCAN_HIST_BINS + hist_bin(v)]++;
            offer(sc, i, v, index0 + t, t, n, ids, sc->f);
        }
    }
    sc->n_tokens += n;
    sc->n_windows++;
    return SS_OK;
}

double scan_sum_act(const scan_state *sc, int latent) {
    return ss_xsum_value(sc->sum_x + (size_t)latent * SS_XSUM_WORDS);
}

/* ------------------------------------------------ windows of one part --- */
/* Workers (sc->threads > 1): each has its own scan state (model state and
   buffers) and takes the next window from the shared iterator under a lock;
   at the end their statistics merge exactly into sc (scan_pack/scan_merge),
   so the result does not depend on which worker ran which window. */
typedef struct {
    scan_state *sc;            /* the worker's own state */
    struct part_run *run;
    int rc;
    char err[SS_ERRLEN];
} scan_worker;

typedef struct part_run {
    scan_state *main;
    ss_windows *w;
    pthread_mutex_t mu;
    int64_t tokens;            /* text tokens handed out */
    int stop, failed;
} part_run;

/* Next window under the lock: *got = 0 when none is left or the run stops. */
static int next_window(part_run *r, int *ids, int *got, int64_t *index0, char *err) {
    pthread_mutex_lock(&r->mu);
    int rc = SS_OK;
    *got = 0;
    if (!r->stop && !r->failed) {
        rc = ss_windows_next(r->w, ids, got, index0, err);
        if (rc) r->failed = 1;
        r->tokens += *got;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* After a window: progress (under the lock; the callback runs on one thread at a time). */
static void window_done(part_run *r) {
    scan_state *m = r->main;
    pthread_mutex_lock(&r->mu);
    m->bytes_done = ss_windows_bytes(r->w);
    if (m->progress && !r->stop) {
        ss_progress pr = {r->tokens, m->max_tokens, m->bytes_done, m->bytes_total, NULL, 0, 0};
        if (m->progress(m->progress_ctx, &pr)) r->stop = 1;
    }
    pthread_mutex_unlock(&r->mu);
}

static int run_windows(scan_state *sc, part_run *r, char *err) {
    int rc = SS_OK;
    sc->win[0] = sc->m->cfg.bos_id;
    for (;;) {
        int got = 0;
        int64_t index0;
        if ((rc = next_window(r, sc->win + sc->bos, &got, &index0, err)) || got == 0) break;
        if ((rc = scan_window(sc, sc->win, got + sc->bos, sc->bos, index0, err))) {
            pthread_mutex_lock(&r->mu);
            r->failed = 1;
            pthread_mutex_unlock(&r->mu);
            break;
        }
        window_done(r);
    }
    return rc;
}

static void *worker_main(void *arg) {
    scan_worker *wk = arg;
    wk->rc = run_windows(wk->sc, wk->run, wk->err);
    return NULL;
}

int scan_file_part(scan_state *sc, const tokenizer *tok, const char *path, const ss_part *part, char *err) {
    part_run r;
    memset(&r, 0, sizeof r);
    r.main = sc;
    int rc = ss_windows_open(&r.w, tok, path, part->byte_start, part->tok_start, part->tok_end, sc->window - sc->bos,
                             sc->max_tokens, err);
    if (rc) return rc;
    sc->bytes_total = ss_windows_bytes_total(r.w);
    pthread_mutex_init(&r.mu, NULL);
    int nt = sc->threads > 1 ? sc->threads : 1;
    int blas = ss_blas_single_begin();   /* one BLAS thread per worker, whatever nt: see common.h */
    if (nt == 1) {
        rc = run_windows(sc, &r, err);
    } else {
        scan_worker *wk = calloc((size_t)nt, sizeof *wk);
        pthread_t *th = calloc((size_t)nt, sizeof *th);
        int started = 0;
        if (!wk || !th) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        scan_opts o = {sc->K, sc->R, sc->window, sc->max_tokens, sc->n_logits, NULL, NULL, 1};
        for (int t = 1; t < nt && !rc; t++) {   /* worker 0 is sc itself */
            if ((rc = scan_new(&wk[t].sc, sc->d, sc->m, &o, err))) break;
        }
        if (!rc) {
            wk[0].sc = sc;
            for (; started < nt; started++) {
                wk[started].run = &r;
                if (started > 0 && pthread_create(&th[started], NULL, worker_main, &wk[started]) != 0) {
                    pthread_mutex_lock(&r.mu);
                    r.failed = 1;
                    pthread_mutex_unlock(&r.mu);
                    rc = ss_fail(err, SS_ERUNTIME, "cannot start scan thread %d", started);
                    break;
                }
            }
            int rc0 = run_windows(sc, &r, wk[0].err);
            for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
            if (!rc && rc0) { rc = rc0; memcpy(err, wk[0].err, SS_ERRLEN); }
            for (int t = 1; t < started && !rc; t++)
                if (wk[t].rc) { rc = wk[t].rc; memcpy(err, wk[t].err, SS_ERRLEN); }
            /* merge the workers' statistics (exact: any order gives the same bits) */
            for (int t = 1; t < nt && !rc; t++) {
                ss_buf b = {0};
                if (!(rc = scan_pack(wk[t].sc, &b, err))) rc = scan_merge(sc, b.data, b.len, err);
                ss_buf_free(&b);
            }
        }
        for (int t = 1; t < nt && wk; t++) scan_free(wk[t].sc);
        free(wk);
        free(th);
    }
    ss_blas_single_end(blas);
    if (r.stop) sc->stopped = 1;
    sc->bytes_done = ss_windows_bytes(r.w);
    pthread_mutex_destroy(&r.mu);
    ss_windows_close(r.w);
    return rc;
}

int scan_file(scan_state *sc, const tokenizer *tok, const char *path, char *err) {
    ss_part whole = SS_PART_WHOLE;
    int rc = scan_file_part(sc, tok, path, &whole, err);
    if (!rc && sc->n_tokens == 0 && !sc->stopped) rc = ss_fail(err, SS_EINPUT, "%s: no tokens to scan (empty file?)", path);
    return rc;
}

/* ------------------------------------------------------ partial results --- */
/* Layout (native byte order; the container around it says which):
     "SCN1", S K span (i32), n_tokens n_windows bytes_done (i64),
     then per latent: n_active (i64), sum (SS_XSUM_WORDS u64), max (f32),
     hist_lo hist_n (i32) and hist_n u32 counts from bin hist_lo,
     n_ctx (i32) and per context: value (f32), token_index (i64),
     center len (i32), ids (len i32), acts (len f32). */
#define PUT(p, n) do { if (ss_buf_put(b, (p), (n))) goto oom; } while (0)
int scan_pack(const scan_state *sc, ss_buf *b, char *err) {
    int32_t hd[3] = {sc->S, sc->K, sc->span};
    int64_t cnt[3] = {sc->n_tokens, sc->n_windows, sc->bytes_done};
    PUT("SCN1", 4); PUT(hd, sizeof hd); PUT(cnt, sizeof cnt);
    for (int i = 0; i < sc->S; i++) {
        PUT(&sc->n_active[i], 8);
        PUT(sc->sum_x + (size_t)i * SS_XSUM_WORDS, SS_XSUM_WORDS * 8);
        PUT(&sc->max_act[i], 4);
        const uint32_t *h = sc->hist + (size_t)i * SCAN_HIST_BINS;
        int32_t lo = 0, hi = SCAN_HIST_BINS - 1;
        while (lo < SCAN_HIST_BINS && !h[lo]) lo++;
        while (hi >= lo && !h[hi]) hi--;
        int32_t hn = hi >= lo ? hi - lo + 1 : 0;
        if (!hn) lo = 0;
        PUT(&lo, 4); PUT(&hn, 4); PUT(h + lo, (size_t)hn * 4);
        int32_t n = sc->n_heap[i];
        PUT(&n, 4);
        for (int j = 0; j < n; j++) {
            size_t s = (size_t)i * sc->K + (size_t)sc->heap[(size_t)i * sc->K + j];
            int32_t cl[2] = {sc->c_center[s], sc->c_len[s]};
            PUT(&sc->c_val[s], 4); PUT(&sc->c_index[s], 8); PUT(cl, 8);
            PUT(sc->c_ids + s * sc->span, (size_t)cl[1] * 4);
            PUT(sc->c_acts + s * sc->span, (size_t)cl[1] * 4);
        }
    }
    return SS_OK;
oom:
    return ss_fail(err, SS_ERUNTIME, "out of memory packing scan results");
}
#undef PUT

#define GET(p, n) do { if (len - off < (size_t)(n)) goto bad; memcpy((p), d + off, (n)); off += (n); } while (0)
int scan_merge(scan_state *sc, const void *data, size_t len, char *err) {
    const unsigned char *d = data;
    size_t off = 0;
    char magic[4];
    int32_t hd[3];
    int64_t cnt[3];
    GET(magic, 4); GET(hd, sizeof hd); GET(cnt, sizeof cnt);
    if (memcmp(magic, "SCN1", 4)) goto bad;
    if (hd[0] != sc->S || hd[1] != sc->K || hd[2] != sc->span)
        return ss_fail(err, SS_EINPUT, "scan part: %d latents, top %d, span %d; expected %d, %d, %d",
                       hd[0], hd[1], hd[2], sc->S, sc->K, sc->span);
    if (cnt[0] < 0 || cnt[1] < 0 || cnt[2] < 0) goto bad;
    for (int i = 0; i < sc->S; i++) {
        int64_t na;
        uint64_t sx[SS_XSUM_WORDS];
        float mx;
        int32_t lo, hn, n;
        GET(&na, 8); GET(sx, sizeof sx); GET(&mx, 4); GET(&lo, 4); GET(&hn, 4);
        if (na < 0 || lo < 0 || hn < 0 || lo + hn > SCAN_HIST_BINS) goto bad;
        sc->n_active[i] += na;
        ss_xsum_merge(sc->sum_x + (size_t)i * SS_XSUM_WORDS, sx);
        if (mx > sc->max_act[i]) sc->max_act[i] = mx;
        for (int k = 0; k < hn; k++) {
            uint32_t c;
            GET(&c, 4);
            sc->hist[(size_t)i * SCAN_HIST_BINS + lo + k] += c;
        }
        GET(&n, 4);
        if (n < 0 || n > sc->K) goto bad;
        for (int j = 0; j < n; j++) {
            float v;
            int64_t index;
            int32_t cl[2];
            GET(&v, 4); GET(&index, 8); GET(cl, 8);
            if (cl[1] < 1 || cl[1] > sc->span || cl[0] < 0 || cl[0] >= cl[1] || index < 0) goto bad;
            int slot = offer_slot(sc, i, v, index);
            size_t s = (size_t)i * sc->K + (size_t)(slot < 0 ? 0 : slot);
            if (len - off < (size_t)cl[1] * 8) goto bad;
            if (slot >= 0) {
                memcpy(sc->c_ids + s * sc->span, d + off, (size_t)cl[1] * 4);
                memcpy(sc->c_acts + s * sc->span, d + off + (size_t)cl[1] * 4, (size_t)cl[1] * 4);
                sc->c_center[s] = cl[0];
                sc->c_len[s] = cl[1];
                offer_place(sc, i, slot, v, index);
            }
            off += (size_t)cl[1] * 8;
        }
    }
    if (off != len) goto bad;
    sc->n_tokens += cnt[0];
    sc->n_windows += cnt[1];
    sc->bytes_done += cnt[2];
    return SS_OK;
bad:
    return ss_fail(err, SS_EINPUT, "scan part: truncated or malformed at byte %zu of %zu", off, len);
}
#undef GET

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

typedef struct {
    scan_state *sc;
    pthread_mutex_t mu;
    int next, done, stop;
} logit_run;

/* Blocks of 64 latents: one sgemm each (BLAS on one thread), then the top
   and bottom n of each row. Workers take blocks in turn; a block's numbers
   do not depend on which worker or how many. */
static void *logit_worker(void *arg) {
    logit_run *lr = arg;
    scan_state *sc = lr->sc;
    const int S = sc->S, C = sc->d->d_in, V = sc->m->cfg.vocab_size, NL = sc->n_logits, B = 64;
    float *buf = ss_malloc2((size_t)B * V, sizeof(float));   /* (B, V) */
    if (!buf) {
        pthread_mutex_lock(&lr->mu);
        lr->stop = 2;
        pthread_mutex_unlock(&lr->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&lr->mu);
        int i0 = lr->stop ? S : lr->next;
        lr->next = i0 + B;
        pthread_mutex_unlock(&lr->mu);
        if (i0 >= S) break;
        int nb = S - i0 < B ? S - i0 : B;
        gpt2_unembed_dirs(sc->m, sc->d->W_dec + (size_t)i0 * C, nb, buf);
        for (int r = 0; r < nb; r++) {
            size_t o = (size_t)(i0 + r) * NL;
            select_n(buf + (size_t)r * V, V, NL, 1.0f, sc->top_ids + o, sc->top_val + o);
            select_n(buf + (size_t)r * V, V, NL, -1.0f, sc->bot_ids + o, sc->bot_val + o);
        }
        pthread_mutex_lock(&lr->mu);
        lr->done += nb;
        if (sc->progress && !lr->stop) {   /* a big dictionary takes a while here too: allow a stop */
            ss_progress pr = {sc->n_tokens, sc->max_tokens, sc->bytes_done, sc->bytes_total, "logit effects", lr->done, S};
            if (sc->progress(sc->progress_ctx, &pr)) lr->stop = 1;
        }
        pthread_mutex_unlock(&lr->mu);
    }
    free(buf);
    return NULL;
}

int scan_logit_effects(scan_state *sc, char *err) {
    const gpt2_config *cfg = &sc->m->cfg;
    const int S = sc->S, C = sc->d->d_in, NL = sc->n_logits;
    if (C != cfg->n_embd) { sc->have_logits = 0; return SS_OK; }   /* not a residual-width dictionary */
    size_t SN = (size_t)S * NL;
    if (!sc->top_ids) {
        sc->top_ids = ss_malloc2(SN, sizeof(int));
        sc->bot_ids = ss_malloc2(SN, sizeof(int));
        sc->top_val = ss_malloc2(SN, sizeof(float));
        sc->bot_val = ss_malloc2(SN, sizeof(float));
    }
    if (!sc->top_ids || !sc->bot_ids || !sc->top_val || !sc->bot_val)
        return ss_fail(err, SS_ERUNTIME, "out of memory for logit effects");
    logit_run lr;
    memset(&lr, 0, sizeof lr);
    lr.sc = sc;
    pthread_mutex_init(&lr.mu, NULL);
    int nt = sc->threads > 1 ? sc->threads : 1, started = 1;
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    int blas = ss_blas_single_begin();
    for (; th && started < nt; started++)
        if (pthread_create(&th[started], NULL, logit_worker, &lr) != 0) break;
    logit_worker(&lr);
    for (int t = 1; th && t < started; t++) pthread_join(th[t], NULL);
    ss_blas_single_end(blas);
    free(th);
    pthread_mutex_destroy(&lr.mu);
    if (lr.stop == 2) return ss_fail(err, SS_ERUNTIME, "out of memory for logit effects");
    if (lr.stop) sc->stopped = 1;
    sc->have_logits = !sc->stopped;
    return SS_OK;
}
