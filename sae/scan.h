/* scan.h - corpus scan: stream a text file through the model up to an SAE's
 * hook, encode every token, and keep per latent, in memory independent of the
 * file's size:
 *   - the top-K activating tokens (a min-heap of K entries per latent keyed by
 *     (value, token index)), each with the token ids and this latent's
 *     activations for up to R tokens either side of it, inside its window;
 *   - how many tokens it fired on (f > 0), the sum and max of its activations;
 *   - a histogram of its positive activations over log-spaced bins;
 *   - after the run (scan_logit_effects), its direct effect on the output
 *     tokens: W_dec[i] . wte[v] for every token v, top and bottom n.
 *
 * Windows. The text is cut into non-overlapping windows of `window` positions
 * (default: the SAE's context_size, capped at n_positions; n_positions if the
 * SAE does not say). If the SAE was trained with prepend_bos, each window is
 * [BOS, window-1 text tokens] and the BOS position is not scored (not counted
 * in densities, histograms or contexts); otherwise windows hold `window` text
 * tokens and every position is scored. The model runs only up to the SAE's
 * layer (sae_capture), with the centring the SAE's metadata asks for.
 *
 * Ties. Contexts are ordered by value, descending; equal values keep the
 * earlier token (the smaller token index). The result is exactly the first K
 * of all scored tokens sorted that way, which tests check by brute force.
 *
 * Logit effects. The plain direct dot product W_dec[i] . wte[v] (no ln_final,
 * no centring of W_U) is what SAELens / Neuronpedia dashboards show, and what
 * is reported here. With center_writing_weights the true logit effect passes
 * through ln_final; the ranking is a guide, not an exact effect.
 *
 * Library code: never prints; progress through the ss_progress_fn callback,
 * which may stop the scan early (scan->stopped = 1; the statistics then cover
 * the windows done).
 */
#ifndef SS_SCAN_H
#define SS_SCAN_H

#include "perplexity.h"
#include "sae.h"
#include "tokenizer.h"

/* log10-spaced histogram of positive activations: bin b covers
   [10^(LO + b*(HI-LO)/BINS), 10^(LO + (b+1)*(HI-LO)/BINS)); values below the
   first edge go in bin 0, above the last in bin BINS-1. */
#define SCAN_HIST_BINS 64
#define SCAN_HIST_LOG10_LO (-4.0)
#define SCAN_HIST_LOG10_HI (4.0)

typedef struct {
    int top_k;             /* contexts kept per latent (default 20) */
    int radius;            /* tokens kept each side of the max token (< 0: default 8) */
    int window;            /* positions per window incl. BOS (0 = SAE's context_size / n_positions) */
    int64_t max_tokens;    /* stop after this many text tokens (0 = all) */
    int n_logits;          /* top and bottom output tokens per latent (default 10) */
    ss_progress_fn progress; void *progress_ctx;
    int threads;           /* > 1: that many windows at once, one BLAS thread each (see scan_file_part) */
} scan_opts;

typedef struct {
    /* set up by scan_new */
    const sae_dict *d;
    const gpt2_model *m;
    int S;                 /* d_sae */
    int K, R, span;        /* top_k, radius, span = 2R+1 */
    int window, bos;       /* window length; 1 if windows start with BOS */
    int64_t max_tokens;
    int n_logits;
    ss_progress_fn progress; void *progress_ctx;
    int threads;
    gpt2_state *s;
    float *x;              /* (window, d_in) captured activation */
    float *f;              /* (window, S) codes */
    int *win;              /* (window) token ids of the current window */
    /* statistics, per latent */
    int64_t n_tokens;      /* scored tokens */
    int64_t n_windows;
    int64_t bytes_done, bytes_total;
    int stopped;
    int64_t *n_active;     /* (S) tokens with f > 0 */
    uint64_t *sum_x;       /* (S, SS_XSUM_WORDS) exact sum of f over those tokens (scan_sum_act) */
    float *max_act;        /* (S) */
    uint32_t *hist;        /* (S, SCAN_HIST_BINS) */
    /* top-K, per latent: heap of slot numbers (root = weakest) and the slots */
    int *n_heap;           /* (S) entries in use */
    int *heap;             /* (S, K) slot of each heap entry */
    float *c_val;          /* (S, K) activation at the max token */
    int64_t *c_index;      /* (S, K) text-token index of the max token in the stream */
    int *c_center;         /* (S, K) offset of the max token inside the stored span */
    int *c_len;            /* (S, K) tokens stored */
    int *c_ids;            /* (S, K, span) token ids */
    float *c_acts;         /* (S, K, span) this latent's activation on each */
    /* logit effects (scan_logit_effects) */
    int *top_ids, *bot_ids;     /* (S, n_logits) */
    float *top_val, *bot_val;   /* (S, n_logits) */
    int have_logits;
} scan_state;

/* A context as returned by scan_contexts (pointers into the scan). */
typedef struct {
    float value;
    int64_t token_index;   /* index among the text tokens of the stream (BOS not counted) */
    int center, len;
    const int *ids;        /* (len) */
    const float *acts;     /* (len) */
} scan_context;

int  scan_new(scan_state **out, const sae_dict *d, const gpt2_model *m, const scan_opts *o, char *err);
void scan_free(scan_state *sc);
/* One window tokens (T): positions < skip are run but not scored; index0 is the
   stream index of tokens[skip]. */
int  scan_window(scan_state *sc, const int *tokens, int T, int skip, int64_t index0, char *err);
/* Stream a text file through scan_window in windows as described above. */
int  scan_file(scan_state *sc, const tokenizer *tok, const char *path, char *err);
/* The windows of one part of the file (lib/perplexity.h, "corpus parts"):
   token indices stay global, so the parts' results merge into exactly the
   whole file's. Zero tokens is not an error here. With threads > 1, that
   many windows run at once (each worker its own model state, BLAS set to
   one thread meanwhile) and the workers' results merge exactly at the end. */
int  scan_file_part(scan_state *sc, const tokenizer *tok, const char *path, const ss_part *part, char *err);
/* Sum of latent i's positive activations (exact sum, rounded once). */
double scan_sum_act(const scan_state *sc, int latent);
/* Partial results. scan_pack appends sc's statistics and contexts to b
   (format in scan.c; native byte order); scan_merge adds a packed part into
   sc. Counts and histograms add, maxima take the max, sums are exact integers
   (SS_XSUM) and contexts are offered to the top-K heaps with their global
   token indices, so merging parts in any order gives exactly the statistics
   of one process over all their windows. Malformed data -> SS_EINPUT. */
int  scan_pack(const scan_state *sc, ss_buf *b, char *err);
int  scan_merge(scan_state *sc, const void *data, size_t len, char *err);
/* Fill top_ids/top_val/bot_ids/bot_val from W_dec @ wte^T (blocked sgemm).
   Reports progress (phase "logit effects") per block of 64 latents; a stop
   request sets stopped = 1 and leaves the effects incomplete (have_logits 0). */
int  scan_logit_effects(scan_state *sc, char *err);
/* Latent i's contexts, strongest first, into out (capacity sc->K); returns the count. */
int  scan_contexts(const scan_state *sc, int latent, scan_context *out);
/* Lower edge of histogram bin b (bin b spans [edge(b), edge(b+1))). */
double scan_hist_edge(int b);

#endif
