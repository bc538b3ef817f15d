/* perplexity.c - text-file token stream and windowed perplexity (see perplexity.h). */
#include "perplexity.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    struct stat st;
    if (stat(path, &st) != 0) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ss_fail(err, SS_EINPUT, "%s: not a regular file", path);
    if (strlen(path) >= sizeof((ss_tokstream *)0)->path) return ss_fail(err, SS_EINPUT, "%s: path too long", path);
    ss_tokstream *ts = calloc(1, sizeof *ts);
    if (!ts) return ss_fail(err, SS_ERUNTIME, "out of memory");
    ts->tok = tok;
    strcpy(ts->path, path);
    ts->size = (int64_t)st.st_size;
    ts->end = end < 0 || end > ts->size ? ts->size : end;
    ts->block = block ? block : SS_TS_BLOCK;
    if (start < 0 || start > ts->end) {
        long long size = (long long)ts->size;
        free(ts);
        return ss_fail(err, SS_EINPUT, "%s: byte range [%lld, %lld) outside the file (%lld bytes)", path,
                       (long long)start, (long long)end, size);
    }
    if (!(ts->f = fopen(path, "rb"))) {
        int e = errno;
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
    double nll_sum;        /* sum of the windows' NLL sums, added in window order */
    int64_t n_pred, n_windows;
    double *wnll;          /* (n_windows) each window's NLL sum, for exact merges */
    int64_t wcap;
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
    int rc;
    if (!p->logits) { ss_ppl_free(p); return ss_fail(err, SS_ERUNTIME, "out of memory for logits"); }
    if ((rc = gpt2_state_build(&p->s, m, window, err))) { ss_ppl_free(p); return rc; }
    *out = p;
    return SS_OK;
}

void ss_ppl_free(ss_ppl *p) {
    if (!p) return;
    gpt2_state_free(p->s);
    free(p->logits);
    free(p->wnll);
    free(p);
}

int ss_ppl_window(ss_ppl *p, const int *tokens, int T, char *err) {
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
    if (p->n_windows == p->wcap) {
        int64_t cap = p->wcap ? 2 * p->wcap : 256;
        double *nw = realloc(p->wnll, (size_t)cap * sizeof(double));
        if (!nw) return ss_fail(err, SS_ERUNTIME, "out of memory");
        p->wnll = nw;
        p->wcap = cap;
    }
    p->wnll[p->n_windows] = nll;
    p->nll_sum += nll;
    p->n_pred += T - 1;
    p->n_windows++;
    return SS_OK;
}

void ss_ppl_get(const ss_ppl *p, ss_ppl_result *r) {
    memset(r, 0, sizeof *r);
    r->tokens = p->n_pred;
    r->windows = p->n_windows;
    r->window = p->window;
    r->nll = p->n_pred ? p->nll_sum / (double)p->n_pred : NAN;
    r->perplexity = p->n_pred ? exp(r->nll) : NAN;
}

int ss_perplexity_part(const gpt2_model *m, const tokenizer *tok, const char *path, int window, int64_t max_tokens,
                       const ss_part *part, ss_progress_fn cb, void *cb_ctx, ss_ppl **out, int *stopped, char *err) {
    *out = NULL;
    *stopped = 0;
    ss_ppl *p = NULL;
    ss_windows *w = NULL;
    int *win = NULL, rc;
    if ((rc = ss_ppl_new(&p, m, window, err))) return rc;
    if ((rc = ss_windows_open(&w, tok, path, part->byte_start, part->tok_start, part->tok_end, p->window - 1,
                              max_tokens, err))) goto done;
    if (!(win = malloc((size_t)p->window * sizeof(int)))) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    win[0] = m->cfg.bos_id;
    int64_t n_text = 0;
    for (;;) {
        int got = 0;
        int64_t index0;
        if ((rc = ss_windows_next(w, win + 1, &got, &index0, err))) goto done;
        if (got == 0) break;
        if ((rc = ss_ppl_window(p, win, got + 1, err))) goto done;
        n_text += got;
        if (cb) {
            ss_progress pr = {n_text, max_tokens, ss_windows_bytes(w), ss_windows_bytes_total(w), NULL, 0, 0};
            if (cb(cb_ctx, &pr)) { *stopped = 1; break; }
        }
    }
done:
    free(win);
    ss_windows_close(w);
    if (rc) ss_ppl_free(p);
    else *out = p;
    return rc;
}

int ss_perplexity_file(const gpt2_model *m, const tokenizer *tok, const char *path, int window,
                       int64_t max_tokens, ss_progress_fn cb, void *cb_ctx, ss_ppl_result *r, char *err) {
    memset(r, 0, sizeof *r);
    ss_ppl *p = NULL;
    ss_part whole = SS_PART_WHOLE;
    int stopped = 0;
    int rc = ss_perplexity_part(m, tok, path, window, max_tokens, &whole, cb, cb_ctx, &p, &stopped, err);
    if (rc) return rc;
    ss_ppl_get(p, r);
    r->stopped = stopped;
    ss_ppl_free(p);
    if (r->tokens == 0 && !stopped) return ss_fail(err, SS_EINPUT, "%s: no tokens to score (empty file?)", path);
    return SS_OK;
}

/* Partial result: "PPL1", window (i32), n_pred, n_windows (i64), then the
   windows' NLL sums (f64 each), native byte order. */
int ss_ppl_pack(const ss_ppl *p, ss_buf *b, char *err) {
    int32_t win = p->window;
    if (ss_buf_put(b, "PPL1", 4) || ss_buf_put(b, &win, 4) || ss_buf_put(b, &p->n_pred, 8) ||
        ss_buf_put(b, &p->n_windows, 8) || ss_buf_put(b, p->wnll, (size_t)p->n_windows * sizeof(double)))
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
    if (n_win < 0 || n_pred < 0 || (size_t)n_win > (len - 24) / sizeof(double) || len != 24 + (size_t)n_win * sizeof(double))
        return ss_fail(err, SS_EINPUT, "perplexity part: size does not match its %lld windows", (long long)n_win);
    if (p->n_windows + n_win > p->wcap) {
        int64_t cap = p->n_windows + n_win;
        double *nw = realloc(p->wnll, (size_t)(cap ? cap : 1) * sizeof(double));
        if (!nw) return ss_fail(err, SS_ERUNTIME, "out of memory");
        p->wnll = nw;
        p->wcap = cap;
    }
    for (int64_t i = 0; i < n_win; i++) {
        double x;
        memcpy(&x, d + 24 + (size_t)i * 8, 8);
        p->wnll[p->n_windows + i] = x;
        p->nll_sum += x;   /* in window order: the same additions as one process */
    }
    p->n_windows += n_win;
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
