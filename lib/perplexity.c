/* perplexity.c - text-file token stream and windowed perplexity (see perplexity.h). */
#include "perplexity.h"

#include <errno.h>
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
    int64_t done;          /* bytes tokenized (file offset of buf[0]) */
    size_t block;          /* bytes per read */
    int eof;
    char *buf;             /* (cap) untokenized bytes */
    size_t len, cap;
    int *ids;              /* ids of the last tokenized block */
    int n_ids, next;
    size_t ids_bytes;      /* bytes that block came from */
};

int ss_tokstream_open(ss_tokstream **out, const tokenizer *tok, const char *path, size_t block, char *err) {
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
    ts->block = block ? block : SS_TS_BLOCK;
    if (!(ts->f = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        free(ts);
        return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(e));
    }
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
            size_t got = fread(ts->buf + ts->len, 1, ts->block, ts->f);
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
    double nll_sum;
    int64_t n_pred, n_windows;
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

int ss_perplexity_file(const gpt2_model *m, const tokenizer *tok, const char *path, int window,
                       int64_t max_tokens, ss_progress_fn cb, void *cb_ctx, ss_ppl_result *r, char *err) {
    memset(r, 0, sizeof *r);
    ss_ppl *p = NULL;
    ss_tokstream *ts = NULL;
    int *win = NULL, rc, stopped = 0;
    if ((rc = ss_ppl_new(&p, m, window, err))) return rc;
    if ((rc = ss_tokstream_open(&ts, tok, path, 0, err))) goto done;
    if (!(win = malloc((size_t)p->window * sizeof(int)))) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    win[0] = m->cfg.bos_id;
    int64_t n_text = 0;
    for (;;) {
        int want = p->window - 1, got = 0;
        if (max_tokens > 0 && max_tokens - n_text < want) want = (int)(max_tokens - n_text);
        if (want <= 0) break;
        if ((rc = ss_tokstream_read(ts, win + 1, want, &got, err))) goto done;
        if (got == 0) break;
        if ((rc = ss_ppl_window(p, win, got + 1, err))) goto done;
        n_text += got;
        if (cb) {
            ss_progress pr = {n_text, max_tokens, ss_tokstream_bytes_done(ts), ss_tokstream_bytes_total(ts), NULL, 0, 0};
            if (cb(cb_ctx, &pr)) { stopped = 1; break; }
        }
        if (got < want) break;
    }
    ss_ppl_get(p, r);
    r->stopped = stopped;
    if (r->tokens == 0) rc = ss_fail(err, SS_EINPUT, "%s: no tokens to score (empty file?)", path);
done:
    free(win);
    ss_tokstream_close(ts);
    ss_ppl_free(p);
    return rc;
}
