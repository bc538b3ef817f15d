/* perplexity.c - text-file token stream and windowed perplexity (see perplexity.h). */
#include "perplexity.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------ token stream --- */

struct ss_tokstream {
    const tokenizer *tok;
    char path[4096];
    FILE *f;
    int64_t size;          /* file size */
    int64_t end;           /* read up to this offset (a safe cut, or size) */
    int64_t done;          /* bytes tokenized (file offset of buf[0]) */
    int64_t bytes_out;     /* exact bytes behind the ids handed out (sum of their byte lengths) */
    size_t block;          /* bytes per read */
    int eof;
    char *buf;             /* (cap) untokenized bytes */
    size_t len, cap;
    int *ids;              /* ids of the last tokenized block */
    int n_ids, next;
    size_t ids_bytes;      /* bytes that block came from */
};

int ss_tokstream_open(ss_tokstream **out, const tokenizer *tok, const char *path, size_t block, char *err) {
    return ss_tokstream_open_range(out, tok, path, 0, -1, block, err);
}

int ss_tokstream_open_range(ss_tokstream **out, const tokenizer *tok, const char *path, int64_t start, int64_t end,
                            size_t block, char *err) {
    *out = NULL;
    if (strlen(path) >= sizeof((ss_tokstream *)0)->path) return ss_fail(err, SS_EINPUT, "%s: path too long", path);
    int fd, rc;
    size_t size;
    if ((rc = ss_open_input(path, &fd, &size, err))) return rc;   /* regular files only; a FIFO does not hang */
    ss_tokstream *ts = calloc(1, sizeof *ts);
    if (!ts) { close(fd); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    ts->tok = tok;
    strcpy(ts->path, path);
    ts->size = (int64_t)size;
    ts->end = end < 0 || end > ts->size ? ts->size : end;
    ts->block = block ? block : SS_TS_BLOCK;
    if (start < 0 || start > ts->end) {
        long long fsize = (long long)ts->size;
        close(fd);
        free(ts);
        return ss_fail(err, SS_EINPUT, "%s: byte range [%lld, %lld) outside the file (%lld bytes)", path,
                       (long long)start, (long long)end, fsize);
    }
    if (!(ts->f = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        free(ts);
        return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(e));
    }
    if (start > 0 && fseeko(ts->f, (off_t)start, SEEK_SET) != 0) {
        int e = errno;
        ss_tokstream_close(ts);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot seek to byte %lld: %s", path, (long long)start, strerror(e));
    }
    ts->done = start;
    ts->eof = start >= ts->end;
    *out = ts;
    return SS_OK;
}

void ss_tokstream_close(ss_tokstream *ts) {
    if (!ts) return;
    if (ts->f) fclose(ts->f);
    free(ts->buf);
    free(ts->ids);
    free(ts);
}

int64_t ss_tokstream_bytes_done(const ss_tokstream *ts) {
    /* ids of the current block not handed out yet count in proportion */
    if (ts->n_ids <= 0) return ts->done;
    return ts->done - (int64_t)((double)ts->ids_bytes * (ts->n_ids - ts->next) / ts->n_ids);
}
int64_t ss_tokstream_bytes_out(const ss_tokstream *ts) { return ts->bytes_out; }
int64_t ss_tokstream_bytes_total(const ss_tokstream *ts) { return ts->size; }

static int is_print(unsigned char c) { return c >= 0x21 && c <= 0x7e; }
static int is_alnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_alpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* Last offset in (0, len) where the pre-tokenizer starts a new piece whatever
   follows (see perplexity.h); 0 if none. */
static size_t safe_cut(const unsigned char *b, size_t len) {
    if (len < 3) return 0;
    for (size_t i = len - 1; i >= 2; i--) {
        if (b[i - 1] == '\n' && is_print(b[i - 2]) && is_print(b[i])) return i;
        if (b[i] == ' ' && i + 1 < len && is_alnum(b[i - 1]) && is_alpha(b[i + 1])) return i;
    }
    return 0;
}

/* Last UTF-8 character boundary in (0, len]; len if the buffer ends on one. */
static size_t utf8_cut(const unsigned char *b, size_t len) {
    size_t i = len;
    while (i > 0 && (b[i - 1] & 0xC0) == 0x80) i--;   /* continuation bytes */
    if (i == 0) return len;
    /* b[i-1] is a lead (or ASCII) byte: is its character complete? */
    unsigned char c = b[i - 1];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return (len - (i - 1) >= need) ? len : (i - 1 > 0 ? i - 1 : len);
}

/* Offset of the first byte of b[0..len) that is not part of a valid UTF-8
   character (overlongs, surrogates and > U+10FFFF are invalid); len if none. */
static size_t utf8_first_bad(const unsigned char *b, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = b[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (i + n > len) return i;
        for (size_t k = 1; k < n; k++) {
            if ((b[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (b[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

/* Tokenize the next block into ts->ids. Leaves n_ids == 0 only at the end. */
static int refill(ss_tokstream *ts, char *err) {
    ts->n_ids = ts->next = 0;
    for (;;) {
        if (!ts->eof) {
            if (ts->len + ts->block + 1 > ts->cap) {
                size_t cap = ts->len + ts->block + 1;
                char *nb = realloc(ts->buf, cap);
                if (!nb) return ss_fail(err, SS_ERUNTIME, "%s: out of memory for a %zu-byte block", ts->path, cap);
                ts->buf = nb;
                ts->cap = cap;
            }
            int64_t left = ts->end - ts->done - (int64_t)ts->len;
            size_t want = left < (int64_t)ts->block ? (size_t)(left > 0 ? left : 0) : ts->block;
            size_t got = want ? fread(ts->buf + ts->len, 1, want, ts->f) : 0;
            if (got < ts->block) {
                if (ferror(ts->f)) return ss_fail(err, SS_ERUNTIME, "%s: read error at byte %lld", ts->path,
                                                  (long long)(ts->done + (int64_t)ts->len));
                ts->eof = 1;
            }
            ts->len += got;
        }
        if (ts->len == 0) return SS_OK;  /* end of file */
        size_t cut;
        if (ts->eof) cut = ts->len;
        else {
            cut = safe_cut((const unsigned char *)ts->buf, ts->len);
            if (cut == 0) {
                if (ts->len < SS_TS_MAX_BLOCK) continue;   /* read more and look again */
                cut = utf8_cut((const unsigned char *)ts->buf, ts->len);
            }
        }
        free(ts->ids);
        ts->ids = NULL;
        char e2[SS_ERRLEN];
        int rc = tok_encode(ts->tok, ts->buf, cut, &ts->ids, &ts->n_ids, e2);
        if (rc) {
            size_t bad = utf8_first_bad((const unsigned char *)ts->buf, cut);
            if (bad < cut)
                return ss_fail(err, SS_EINPUT, "%s: invalid UTF-8 at byte %lld", ts->path, (long long)(ts->done + (int64_t)bad));
            return ss_fail(err, rc, "%s: in the block at byte %lld: %s", ts->path, (long long)ts->done, e2);
        }
        memmove(ts->buf, ts->buf + cut, ts->len - cut);
        ts->len -= cut;
        ts->done += (int64_t)cut;
        ts->ids_bytes = cut;
        if (ts->n_ids > 0) return SS_OK;
    }
}

int ss_tokstream_read(ss_tokstream *ts, int *ids, int n, int *got, char *err) {
    *got = 0;
    while (*got < n) {
        if (ts->next >= ts->n_ids) {
            int rc = refill(ts, err);
            if (rc) return rc;
            if (ts->n_ids == 0) break;
        }
        int k = ts->n_ids - ts->next;
        if (k > n - *got) k = n - *got;
        memcpy(ids + *got, ts->ids + ts->next, (size_t)k * sizeof(int));
        for (int j = 0; j < k; j++) {
            size_t l = 0;
            tok_token_bytes(ts->tok, ts->ids[ts->next + j], &l);
            ts->bytes_out += (int64_t)l;
        }
        ts->next += k;
        *got += k;
    }
    return SS_OK;
}

/* -------------------------------------------------------- perplexity --- */

struct ss_ppl {
    const gpt2_model *m;
    gpt2_state *s;
    int window;
    float *logits;         /* (SS_PPL_SLICE, V) */
    int64_t n_pred, n_windows;
    /* each window's NLL sum and its window number: ss_ppl_get adds them in
       window order, so workers, ranks and shards give one process's bits */
    double *wnll;          /* (n_windows) */
    int64_t *widx;         /* (n_windows) */
    int64_t wcap;
    int *buf;              /* (window) [BOS, text...] for ss_ppl_text_window */
};

int ss_ppl_new(ss_ppl **out, const gpt2_model *m, int window, char *err) {
    *out = NULL;
    int P = m->cfg.n_positions;
    if (window == 0) window = P;
    if (window < 2 || window > P)
        return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [2, %d] (n_positions)", window, P);
    ss_ppl *p = calloc(1, sizeof *p);
    if (!p) return ss_fail(err, SS_ERUNTIME, "out of memory");
    p->m = m;
    p->window = window;
    p->logits = ss_malloc2((size_t)SS_PPL_SLICE * m->cfg.vocab_size, sizeof(float));
    p->buf = ss_malloc2((size_t)window, sizeof(int));
    int rc;
    if (!p->logits || !p->buf) { ss_ppl_free(p); return ss_fail(err, SS_ERUNTIME, "out of memory for logits"); }
    if ((rc = gpt2_state_build(&p->s, m, window, err))) { ss_ppl_free(p); return rc; }
    *out = p;
    return SS_OK;
}

void ss_ppl_free(ss_ppl *p) {
    if (!p) return;
    gpt2_state_free(p->s);
    free(p->logits);
    free(p->wnll);
    free(p->widx);
    free(p->buf);
    free(p);
}

static int add_wnll(ss_ppl *p, int64_t idx, double nll, char *err) {
    if (p->n_windows == p->wcap) {
        int64_t cap = p->wcap ? 2 * p->wcap : 256;
        double *nw = realloc(p->wnll, (size_t)cap * sizeof(double));
        if (nw) p->wnll = nw;
        int64_t *ni = realloc(p->widx, (size_t)cap * sizeof(int64_t));
        if (ni) p->widx = ni;
        if (!nw || !ni) return ss_fail(err, SS_ERUNTIME, "out of memory");
        p->wcap = cap;
    }
    p->wnll[p->n_windows] = nll;
    p->widx[p->n_windows] = idx;
    p->n_windows++;
    return SS_OK;
}

int ss_ppl_window(ss_ppl *p, const int *tokens, int T, char *err) {
    return ss_ppl_window_at(p, p->n_windows, tokens, T, err);
}

int ss_ppl_window_at(ss_ppl *p, int64_t idx, const int *tokens, int T, char *err) {
    if (T < 2 || T > p->window)
        return ss_fail(err, SS_EINPUT, "window of %d tokens: must be in [2, %d]", T, p->window);
    const int V = p->m->cfg.vocab_size;
    gpt2_state_reset(p->s);
    double nll = 0;
    for (int p0 = 0; p0 < T - 1; p0 += SS_PPL_SLICE) {
        int n = T - 1 - p0;           /* the last position predicts nothing */
        if (n > SS_PPL_SLICE) n = SS_PPL_SLICE;
        int rc = gpt2_forward(p->s, tokens + p0, n, p->logits, 1, err);
        if (rc) return rc;
        for (int j = 0; j < n; j++) {
            const float *l = p->logits + (size_t)j * V;
            float mx = l[0];
            for (int v = 1; v < V; v++) if (l[v] > mx) mx = l[v];
            float se = 0;
            for (int v = 0; v < V; v++) se += expf(l[v] - mx);
            nll += ((double)mx + log((double)se)) - l[tokens[p0 + j + 1]];
        }
    }
    int rc = add_wnll(p, idx, nll, err);
    if (!rc) p->n_pred += T - 1;
    return rc;
}

void ss_ppl_get(const ss_ppl *p, ss_ppl_result *r) {
    memset(r, 0, sizeof *r);
    r->tokens = p->n_pred;
    r->windows = p->n_windows;
    r->window = p->window;
    r->nll = p->n_pred ? ss_sum_in_order(p->wnll, p->widx, p->n_windows, 1) / (double)p->n_pred : NAN;
    r->perplexity = p->n_pred ? exp(r->nll) : NAN;
}

static int ppl_text_window(void *state, const int *ids, int got, int64_t widx, char *err) {
    ss_ppl *p = state;
    p->buf[0] = p->m->cfg.bos_id;
    memcpy(p->buf + 1, ids, (size_t)got * sizeof(int));
    return ss_ppl_window_at(p, widx, p->buf, got + 1, err);
}

int ss_perplexity_part(const gpt2_model *m, const tokenizer *tok, const char *path, int window, int64_t max_tokens,
                       const ss_part *part, int threads, ss_progress_fn cb, void *cb_ctx, ss_ppl **out, int *stopped,
                       char *err) {
    *out = NULL;
    *stopped = 0;
    int nt = threads > 1 ? threads : 1, rc;
    ss_ppl **ps = calloc((size_t)nt, sizeof *ps);
    ss_windows *w = NULL;
    if (!ps) return ss_fail(err, SS_ERUNTIME, "out of memory");
    for (int t = 0; t < nt; t++)
        if ((rc = ss_ppl_new(&ps[t], m, window, err))) goto done;
    if ((rc = ss_windows_open(&w, tok, path, part->byte_start, part->tok_start, part->tok_end, ps[0]->window - 1,
                              max_tokens, err))) goto done;
    rc = ss_windows_run(w, nt, (void **)ps, ppl_text_window, cb, cb_ctx, max_tokens, stopped, err);
    for (int t = 1; t < nt && !rc; t++) {   /* the workers' windows into ps[0] (order is restored by index) */
        for (int64_t k = 0; k < ps[t]->n_windows && !rc; k++) rc = add_wnll(ps[0], ps[t]->widx[k], ps[t]->wnll[k], err);
        ps[0]->n_pred += ps[t]->n_pred;
    }
done:
    ss_windows_close(w);
    for (int t = rc ? 0 : 1; t < nt; t++) ss_ppl_free(ps[t]);
    if (!rc) *out = ps[0];
    free(ps);
    return rc;
}

int ss_perplexity_file(const gpt2_model *m, const tokenizer *tok, const char *path, int window,
                       int64_t max_tokens, ss_progress_fn cb, void *cb_ctx, ss_ppl_result *r, char *err) {
    memset(r, 0, sizeof *r);
    ss_ppl *p = NULL;
    ss_part whole = SS_PART_WHOLE;
    int stopped = 0;
    int rc = ss_perplexity_part(m, tok, path, window, max_tokens, &whole, 1, cb, cb_ctx, &p, &stopped, err);
    if (rc) return rc;
    ss_ppl_get(p, r);
    r->stopped = stopped;
    ss_ppl_free(p);
    if (r->tokens == 0 && !stopped) return ss_fail(err, SS_EINPUT, "%s: no tokens to score (empty file?)", path);
    return SS_OK;
}

/* Partial result: "PPL1", window (i32), n_pred, n_windows (i64), then per
   window its number (i64) and NLL sum (f64), native byte order. */
int ss_ppl_pack(const ss_ppl *p, ss_buf *b, char *err) {
    int32_t win = p->window;
    if (ss_buf_put(b, "PPL1", 4) || ss_buf_put(b, &win, 4) || ss_buf_put(b, &p->n_pred, 8) || ss_buf_put(b, &p->n_windows, 8))
        return ss_fail(err, SS_ERUNTIME, "out of memory packing a perplexity part");
    for (int64_t k = 0; k < p->n_windows; k++)
        if (ss_buf_put(b, &p->widx[k], 8) || ss_buf_put(b, &p->wnll[k], 8))
            return ss_fail(err, SS_ERUNTIME, "out of memory packing a perplexity part");
    return SS_OK;
}

int ss_ppl_merge(ss_ppl *p, const void *data, size_t len, char *err) {
    const unsigned char *d = data;
    int32_t win;
    int64_t n_pred, n_win;
    if (len < 24 || memcmp(d, "PPL1", 4)) return ss_fail(err, SS_EINPUT, "perplexity part: bad header");
    memcpy(&win, d + 4, 4);
    memcpy(&n_pred, d + 8, 8);
    memcpy(&n_win, d + 16, 8);
    if (win != p->window) return ss_fail(err, SS_EINPUT, "perplexity part: window %d, expected %d", win, p->window);
    if (n_win < 0 || n_pred < 0 || (size_t)n_win > (len - 24) / 16 || len != 24 + (size_t)n_win * 16)
        return ss_fail(err, SS_EINPUT, "perplexity part: size does not match its %lld windows", (long long)n_win);
    for (int64_t i = 0; i < n_win; i++) {
        int64_t idx;
        double x;
        memcpy(&idx, d + 24 + (size_t)i * 16, 8);
        memcpy(&x, d + 32 + (size_t)i * 16, 8);
        if (idx < 0) return ss_fail(err, SS_EINPUT, "perplexity part: negative window number");
        int rc = add_wnll(p, idx, x, err);
        if (rc) return rc;
    }
    p->n_pred += n_pred;
    return SS_OK;
}

/* ------------------------------------------------------ corpus parts --- */

/* Is offset i of b (with b[i-2], b[i-1], b[i+1] available) a safe cut? */
static int safe_at(const unsigned char *b, size_t i) {
    return (b[i - 1] == '\n' && is_print(b[i - 2]) && is_print(b[i])) ||
           (b[i] == ' ' && is_alnum(b[i - 1]) && is_alpha(b[i + 1]));
}

int ss_corpus_bounds(const char *path, int n, int64_t *bounds, char *err) {
    if (n < 1) return ss_fail(err, SS_EINPUT, "%s: %d parts: must be >= 1", path, n);
    struct stat st;
    if (stat(path, &st) != 0) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ss_fail(err, SS_EINPUT, "%s: not a regular file", path);
    int64_t size = (int64_t)st.st_size;
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    enum { CH = 1 << 16 };
    unsigned char *b = malloc(CH + 4);
    if (!b) { fclose(f); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    int rc = SS_OK;
    bounds[0] = 0;
    bounds[n] = size;
    for (int r = 1; r < n && !rc; r++) {
        int64_t q = (int64_t)((double)size * r / n), cut = size;   /* no safe cut after q: the rest joins part r-1 */
        if (q < bounds[r - 1]) q = bounds[r - 1];
        if (q < 2) q = 2;
        /* scan forward from q for the first safe cut, reading b[i-2 .. i+1] */
        for (int64_t base = q - 2; base + 3 < size && cut == size; base += CH) {
            if (fseeko(f, (off_t)base, SEEK_SET) != 0) { rc = ss_fail(err, SS_ERUNTIME, "%s: seek failed", path); break; }
            size_t got = fread(b, 1, CH + 3, f);
            if (got < 4) break;
            for (size_t i = 2; i + 1 < got && i < CH + 2; i++)
                if (safe_at(b, i)) { cut = base + (int64_t)i; break; }
            if (got < CH + 3) break;
        }
        bounds[r] = cut;
    }
    free(b);
    fclose(f);
    return rc;
}

int ss_corpus_count(const tokenizer *tok, const char *path, int64_t start, int64_t end, int64_t *count, char *err) {
    *count = 0;
    ss_tokstream *ts = NULL;
    int rc = ss_tokstream_open_range(&ts, tok, path, start, end, 0, err);
    if (rc) return rc;
    int buf[4096], got;
    do {
        if ((rc = ss_tokstream_read(ts, buf, 4096, &got, err))) break;
        *count += got;
    } while (got > 0);
    ss_tokstream_close(ts);
    return rc;
}

struct ss_windows {
    ss_tokstream *ts;
    int64_t next;          /* global index of the next window's first token */
    int64_t tok_end, max_tokens;
    int per, done;
};

int ss_windows_open(ss_windows **out, const tokenizer *tok, const char *path, int64_t byte_start, int64_t tok_start,
                    int64_t tok_end, int per, int64_t max_tokens, char *err) {
    *out = NULL;
    if (per < 1) return ss_fail(err, SS_EINPUT, "windows of %d text tokens: must be >= 1", per);
    ss_windows *w = calloc(1, sizeof *w);
    if (!w) return ss_fail(err, SS_ERUNTIME, "out of memory");
    int rc = ss_tokstream_open_range(&w->ts, tok, path, byte_start, -1, 0, err);
    if (rc) { free(w); return rc; }
    w->per = per;
    w->tok_end = tok_end;
    w->max_tokens = max_tokens;
    w->next = (tok_start + per - 1) / per * per;   /* first window boundary at or after tok_start */
    /* skip the tail of the window that started before this part */
    int64_t skip = w->next - tok_start;
    int buf[1024];
    while (skip > 0 && !rc) {
        int got = 0, k = skip < 1024 ? (int)skip : 1024;
        rc = ss_tokstream_read(w->ts, buf, k, &got, err);
        if (got < k) { w->done = 1; break; }
        skip -= k;
    }
    if (rc) { ss_windows_close(w); return rc; }
    w->ts->bytes_out = 0;   /* count only the bytes of the windows handed out */
    *out = w;
    return SS_OK;
}

int ss_windows_next(ss_windows *w, int *ids, int *got, int64_t *index0, char *err) {
    *got = 0;
    *index0 = w->next;
    if (w->done || w->next >= w->tok_end) return SS_OK;
    int want = w->per;
    if (w->max_tokens > 0 && w->max_tokens - w->next < want) want = (int)(w->max_tokens - w->next);
    if (want <= 0) { w->done = 1; return SS_OK; }
    int rc = ss_tokstream_read(w->ts, ids, want, got, err);
    if (rc) return rc;
    if (*got < w->per) w->done = 1;   /* end of the file or of max_tokens: the last window */
    w->next += w->per;
    return SS_OK;
}

int64_t ss_windows_bytes(const ss_windows *w) { return w->ts->bytes_out; }
int64_t ss_windows_bytes_total(const ss_windows *w) { return w->ts->size; }

void ss_windows_close(ss_windows *w) {
    if (!w) return;
    ss_tokstream_close(w->ts);
    free(w);
}

/* ---------------------------------------------- windows on worker threads --- */
typedef struct {
    ss_windows *w;
    ss_window_fn fn;
    ss_progress_fn cb;
    void *cb_ctx;
    int64_t max_tokens, tokens;
    pthread_mutex_t mu;
    int stop, failed, rc;
    char err[SS_ERRLEN];
} wrun;

typedef struct { wrun *r; void *state; int *ids; } wworker;

static void *wworker_main(void *arg) {
    wworker *k = arg;
    wrun *r = k->r;
    char err[SS_ERRLEN];
    for (;;) {
        int got = 0, rc = SS_OK;
        int64_t index0 = 0;
        pthread_mutex_lock(&r->mu);
        if (!r->stop && !r->failed) {
            rc = ss_windows_next(r->w, k->ids, &got, &index0, err);
            r->tokens += got;
        }
        if (rc && !r->failed) { r->failed = 1; r->rc = rc; memcpy(r->err, err, SS_ERRLEN); }
        pthread_mutex_unlock(&r->mu);
        if (rc || got == 0) break;
        rc = k->r->fn(k->state, k->ids, got, index0 / r->w->per, err);
        pthread_mutex_lock(&r->mu);
        if (rc && !r->failed) { r->failed = 1; r->rc = rc; memcpy(r->err, err, SS_ERRLEN); }
        if (!rc && r->cb && !r->stop) {
            ss_progress pr = {r->tokens, r->max_tokens, ss_windows_bytes(r->w), ss_windows_bytes_total(r->w), NULL, 0, 0};
            if (r->cb(r->cb_ctx, &pr)) r->stop = 1;
        }
        pthread_mutex_unlock(&r->mu);
        if (rc) break;
    }
    return NULL;
}

int ss_windows_run(ss_windows *w, int n, void **states, ss_window_fn fn, ss_progress_fn cb, void *cb_ctx,
                   int64_t max_tokens, int *stopped, char *err) {
    *stopped = 0;
    wrun r;
    memset(&r, 0, sizeof r);
    r.w = w; r.fn = fn; r.cb = cb; r.cb_ctx = cb_ctx; r.max_tokens = max_tokens;
    pthread_mutex_init(&r.mu, NULL);
    wworker *k = calloc((size_t)n, sizeof *k);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    int started = 0, rc = SS_OK;
    if (!k || !th) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
    for (int t = 0; t < n && !rc; t++) {
        k[t].r = &r;
        k[t].state = states[t];
        if (!(k[t].ids = malloc((size_t)w->per * sizeof(int)))) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
    }
    int blas = ss_blas_single_begin();
    for (; !rc && started < n; started++) {
        if (started == 0) continue;   /* worker 0 runs on this thread, below */
        if (pthread_create(&th[started], NULL, wworker_main, &k[started]) != 0) {
            pthread_mutex_lock(&r.mu);
            r.failed = 1;
            pthread_mutex_unlock(&r.mu);
            rc = ss_fail(err, SS_ERUNTIME, "cannot start worker thread %d", started);
            break;
        }
    }
    if (!rc || started > 0) {
        if (!rc) wworker_main(&k[0]);
        for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    }
    ss_blas_single_end(blas);
    if (!rc && r.failed) { rc = r.rc; memcpy(err, r.err, SS_ERRLEN); }
    *stopped = r.stop;
    for (int t = 0; k && t < n; t++) free(k[t].ids);
    free(k);
    free(th);
    pthread_mutex_destroy(&r.mu);
    return rc;
}
