/* perplexity.h - stream a text file as tokens; perplexity of a model over it.
 *
 * Token stream. A text file of any size is read in blocks (never whole) and
 * tokenized block by block. A block is cut only where the GPT-2 pre-tokenizer
 * would start a new piece anyway, so the ids are identical to tokenizing the
 * whole file at once:
 *   1. after a '\n' that follows a printable ASCII byte and precedes one
 *      ("a\nB": the regex ends a piece after the newline; a run of several
 *      whitespace bytes is never cut, since `\s+(?!\S)` treats a run at the
 *      end of a string differently from one in the middle);
 *   2. failing that, before a ' ' that follows an ASCII letter/digit and
 *      precedes an ASCII letter ("ab cd": the piece " cd" starts at the space);
 *   3. failing both within SS_TS_MAX_BLOCK bytes (a file with no spaces or
 *      newlines at all), at the last UTF-8 character boundary: ids may then
 *      differ from whole-file tokenization at that one cut.
 * Memory is O(block size), independent of the file's size.
 *
 * Perplexity. The token stream is cut into non-overlapping windows of
 * (window - 1) text tokens; each window is run as [BOS, t_1 .. t_{W-1}] from an
 * empty KV cache, and every next-token prediction inside it is scored: BOS
 * predicts t_1, t_1 predicts t_2, ..., so every text token is predicted
 * exactly once, from at most window-1 tokens of left context (and less at the
 * start of each window: no stride overlap). The last window may be shorter.
 *   perplexity = exp( sum_i -log p(t_i | BOS, window prefix) / n ),  n = tokens
 * window defaults to n_positions (1024 for GPT-2: 1023 text tokens per window).
 * Logits are computed in slices of SS_PPL_SLICE positions with the KV cache,
 * so memory is O(SS_PPL_SLICE * vocab) rather than O(window * vocab).
 *
 * Library code: never prints or exits; progress goes through a callback.
 */
#ifndef SS_PERPLEXITY_H
#define SS_PERPLEXITY_H

#include "common.h"
#include "gpt2.h"
#include "tokenizer.h"

/* ---------------------------------------------------------- progress --- */
typedef struct {
    int64_t tokens;        /* text tokens consumed so far */
    int64_t max_tokens;    /* the cap asked for (0 = whole file) */
    int64_t bytes_done;    /* bytes of the file consumed so far (approximate) */
    int64_t bytes_total;   /* size of the file */
    const char *phase;     /* NULL while reading the text; else a later phase
                              (e.g. "logit effects") and its progress in done/total */
    int64_t done, total;
} ss_progress;
/* Called after each window; return nonzero to stop early (the caller's result
   then has stopped = 1 and covers what was done). */
typedef int (*ss_progress_fn)(void *ctx, const ss_progress *p);

/* ------------------------------------------------------ token stream --- */
#define SS_TS_BLOCK     (1 << 20)   /* bytes read per block */
#define SS_TS_MAX_BLOCK (16 << 20)  /* longest stretch searched for a safe cut */

typedef struct ss_tokstream ss_tokstream;
/* block: bytes per read (0 = SS_TS_BLOCK; small values are for tests). */
int  ss_tokstream_open(ss_tokstream **out, const tokenizer *tok, const char *path, size_t block, char *err);
/* Up to n next ids into ids; *got < n only at the end of the file (0 = end).
   Invalid UTF-8 -> SS_EINPUT naming the file and byte offset. */
int  ss_tokstream_read(ss_tokstream *ts, int *ids, int n, int *got, char *err);
/* Bytes of the file behind the ids handed out so far (the ids of a block are
   counted in proportion, so this is approximate inside a block; for progress). */
int64_t ss_tokstream_bytes_done(const ss_tokstream *ts);
int64_t ss_tokstream_bytes_total(const ss_tokstream *ts);
/* Exact bytes behind the ids handed out so far: the sum of their byte lengths
   (byte-level BPE loses nothing, so this is the text they came from). */
int64_t ss_tokstream_bytes_out(const ss_tokstream *ts);
void ss_tokstream_close(ss_tokstream *ts);
/* Stream only bytes [start, end) of the file (end < 0: to the end). start and
   end must be 0, the file size or cuts from ss_corpus_bounds: the ids are then
   exactly those of the whole file's stream for that stretch. */
int  ss_tokstream_open_range(ss_tokstream **out, const tokenizer *tok, const char *path, int64_t start, int64_t end,
                             size_t block, char *err);

/* ------------------------------------------------------ corpus parts --- */
/* Corpus work split across processes (MPI ranks, --shard i/N) uses the same
 * windows as one process: window w holds the text tokens [w*per, (w+1)*per)
 * of the whole stream (the last one shorter; none past max_tokens).
 *   1. ss_corpus_bounds cuts the file into n byte ranges: cut r is the first
 *      safe cut (rule 1 or 2 above) at or after r*size/n, found by reading
 *      forward from there, so every process computes the same cuts without
 *      reading the file; a stretch with no safe cut joins the part before.
 *   2. ss_corpus_count counts the tokens of one range (each part its own);
 *      the prefix sums of the counts give each part's first global index.
 *   3. ss_windows_open(byte_start, tok_start, tok_end) yields the windows
 *      whose first token lies in [tok_start, tok_end): it starts reading at
 *      byte_start, skips to the first window boundary and reads on past the
 *      range's end to finish its last window (at most per-1 tokens more).
 * One process: ss_windows_open(0, 0, INT64_MAX). */
int  ss_corpus_bounds(const char *path, int n, int64_t *bounds /* n+1 */, char *err);
int  ss_corpus_count(const tokenizer *tok, const char *path, int64_t start, int64_t end, int64_t *count, char *err);
typedef struct ss_windows ss_windows;
int  ss_windows_open(ss_windows **out, const tokenizer *tok, const char *path, int64_t byte_start, int64_t tok_start,
                     int64_t tok_end, int per, int64_t max_tokens, char *err);
/* The next window's ids (up to per) into ids; *got = 0 when none is left;
   *index0 = global index of ids[0]. */
int  ss_windows_next(ss_windows *w, int *ids, int *got, int64_t *index0, char *err);
int64_t ss_windows_bytes(const ss_windows *w);        /* exact bytes of the windows handed out */
/* Run every window of w through fn on n worker threads (the caller's thread
   is worker 0): worker t calls fn(states[t], ids, got, window number) for
   the windows it takes, one at a time from w under a lock; progress (cb)
   after each window, on one thread at a time. BLAS runs one thread per
   worker meanwhile (ss_blas_single_begin), which also makes every window's
   numbers independent of n: results must then be combined by window number. */
typedef int (*ss_window_fn)(void *state, const int *ids, int got, int64_t window_no, char *err);
int  ss_windows_run(ss_windows *w, int n, void **states, ss_window_fn fn, ss_progress_fn cb, void *cb_ctx,
                    int64_t max_tokens, int *stopped, char *err);
int64_t ss_windows_bytes_total(const ss_windows *w);  /* file size */
void ss_windows_close(ss_windows *w);

/* -------------------------------------------------------- perplexity --- */
#define SS_PPL_SLICE 64

typedef struct {
    double perplexity;     /* exp(nll) */
    double nll;            /* mean negative log-likelihood, nats per token */
    int64_t tokens;        /* text tokens predicted */
    int64_t windows;
    int window;            /* window length used, BOS included */
    int stopped;           /* 1 if the progress callback stopped the run */
} ss_ppl_result;

typedef struct ss_ppl ss_ppl;
/* window: positions per window including BOS, in [2, n_positions]
   (0 = n_positions). */
int  ss_ppl_new(ss_ppl **out, const gpt2_model *m, int window, char *err);
/* Score one window tokens[0..T-1] (tokens[0] is normally BOS): adds the T-1
   next-token predictions to the running sums. */
int  ss_ppl_window(ss_ppl *p, const int *tokens, int T, char *err);
/* The same for window number idx of the stream (ss_ppl_window: the next
   number). Windows may come in any order: ss_ppl_get adds their NLL sums
   in window-number order. */
int  ss_ppl_window_at(ss_ppl *p, int64_t idx, const int *tokens, int T, char *err);
void ss_ppl_get(const ss_ppl *p, ss_ppl_result *r);
void ss_ppl_free(ss_ppl *p);

/* A part of the corpus (see "corpus parts" above). */
typedef struct { int64_t byte_start, tok_start, tok_end; } ss_part;
#define SS_PART_WHOLE {0, 0, INT64_MAX}
/* The windows of one part into a fresh ss_ppl (*out; the caller frees it)
   on `threads` workers (ss_windows_run); *stopped = 1 if the callback
   stopped it. Zero tokens is not an error here. */
int  ss_perplexity_part(const gpt2_model *m, const tokenizer *tok, const char *path, int window, int64_t max_tokens,
                        const ss_part *part, int threads, ss_progress_fn cb, void *cb_ctx, ss_ppl **out, int *stopped,
                        char *err);
/* Partial results: pack p's sums (with each window's NLL sum) onto b; merge
   a packed part whose windows all come after p's into p. Merging the parts
   in window order gives exactly the sums of one process (same additions in
   the same order). */
int  ss_ppl_pack(const ss_ppl *p, ss_buf *b, char *err);
int  ss_ppl_merge(ss_ppl *p, const void *data, size_t len, char *err);

/* The whole job: stream path, windows of `window` (0 = n_positions) with BOS,
   stop after max_tokens text tokens (0 = all). No tokens -> SS_EINPUT. */
int  ss_perplexity_file(const gpt2_model *m, const tokenizer *tok, const char *path, int window,
                        int64_t max_tokens, ss_progress_fn cb, void *cb_ctx, ss_ppl_result *r, char *err);

#endif
