/* sae.h - sparse autoencoder dictionaries: loading (SAELens folders, saesteer
 * HDF5 v1 files), encode/decode per architecture, latent interventions
 * (boost, clamp, ablate, replace-by-reconstruction) as gpt2 hooks, and the
 * statistics behind `sae-eval`.
 *
 * Shapes: T positions, d_in = width of the hooked activation, d_sae = number
 * of latents. Weights follow SAELens: W_enc (d_in, d_sae), W_dec (d_sae, d_in),
 * h = x W_enc + b_enc, recon = f W_dec + b_dec.
 *
 * Library code: never prints or exits; errors come back as SS_* codes with a
 * one-line message in err (SS_ERRLEN bytes) naming the file and the field.
 */
#ifndef SS_SAE_H
#define SS_SAE_H

#include "common.h"
#include "gpt2.h"
#include "perplexity.h"
#include "steer.h"

typedef enum { SAE_STANDARD, SAE_TOPK, SAE_JUMPRELU, SAE_GATED } sae_arch;
typedef enum { SAE_NORM_NONE, SAE_NORM_EXPECTED_AVG, SAE_NORM_CONSTANT_RESCALE, SAE_NORM_LAYER } sae_norm;

/* Limits a file must respect before anything is allocated. */
#define SAE_MAX_D_IN   65536
#define SAE_MAX_D_SAE  (1 << 23)
#define SAE_MAX_WEIGHTS ((int64_t)1 << 31)   /* d_in * d_sae */

typedef struct sae_dict {
    char path[4096];
    sae_arch arch; sae_norm norm;
    int d_in, d_sae, k;                 /* k: topk only (0 otherwise) */
    char hook_name[256], model_name[256];
    int apply_b_dec_to_input, center_writing_weights, prepend_bos, context_size; /* context_size 0 = unknown */
    float *W_enc;   /* (d_in, d_sae) */  float *W_dec; /* (d_sae, d_in) */
    float *b_enc;   /* (d_sae) (zeros for gated) */  float *b_dec; /* (d_in) */
    float *threshold, *b_gate, *b_mag, *r_mag;   /* (d_sae) or NULL */
    float *log_sparsity;                        /* (d_sae) or NULL, log10 firing density */
    char **labels;                              /* d_sae strings ("" = none) or NULL */
    char *source;                               /* imported cfg.json text or NULL */
} sae_dict;

/* A SAELens folder (cfg.json + sae_weights.safetensors [+ sparsity.safetensors])
   or a saesteer .h5 file. Validates shapes, finiteness and architecture. */
int  sae_load(sae_dict **out, const char *path, char *err);
int  sae_load_saelens(sae_dict **out, const char *dir, char *err);
int  sae_load_h5(sae_dict **out, const char *path, char *err);
void sae_free(sae_dict *d);
/* HDF5 v1 (DESIGN.md), atomic: temp file in the same dir + rename. */
int  sae_save_h5(const sae_dict *d, const char *path, char *err);

const char *sae_arch_name(sae_arch a);
const char *sae_norm_name(sae_norm n);
int sae_arch_parse(const char *s, sae_arch *a);     /* 1 if known */
int sae_norm_parse(const char *s, sae_norm *n);     /* 1 if known */

/* d_in equals the hook's width and hook_name parses for this model. */
int  sae_check_model(const sae_dict *d, const gpt2_config *cfg, gpt2_hook_point *hp, char *err);
/* Does the hook for this SAE see the centred residual? (center_writing_weights
   and the hook is one TransformerLens centres) */
int  sae_hook_center(const sae_dict *d, const gpt2_hook_point *hp);

/* Encode T rows of x (T, d_in) into f (T, d_sae): normalize_activations, minus
   b_dec if apply_b_dec_to_input, one sgemm for all rows, then the activation. */
int  sae_encode(const sae_dict *d, const float *x, int T, float *f, char *err);
/* Decode f (T, d_sae) to recon (T, d_in) in the input's space; x (the same
   rows given to encode) supplies the constant_norm_rescale / layer_norm
   coefficients and may be NULL when the SAE has no run-time normalisation. */
int  sae_decode(const sae_dict *d, const float *f, const float *x, int T, float *recon, char *err);
/* Nonzeros of one row sorted by value (desc); returns how many were written
   (at most cap). */
int  sae_sparse_row(const float *f_row, int d_sae, int *idx, float *val, int cap);

/* ------------------------------------------------------- interventions --- */
typedef enum { SAE_EDIT_BOOST, SAE_EDIT_CLAMP } sae_edit_kind;
/* boost: add value * W_dec[latent]; clamp: set f_latent to value keeping the
   reconstruction error; ablate = clamp 0 */
typedef struct { int latent; sae_edit_kind kind; float value; } sae_edit;
/* replace x by SAE(x) without / with the error term (with the error term and
   no edits this is the identity, a check) */
typedef enum { SAE_REPLACE_NONE, SAE_REPLACE_RECON, SAE_REPLACE_RECON_ERR } sae_replace;

typedef struct sae_intervention sae_intervention;
/* pos NULL = all positions. d must outlive the intervention. */
int  sae_intervention_new(sae_intervention **out, const sae_dict *d, const sae_edit *edits, int n_edits,
                          const steer_positions *pos, sae_replace replace, char *err);
/* gpt2_add_hook at the SAE's hook (checks the model first). */
int  sae_intervention_attach(sae_intervention *iv, gpt2_state *s, char *err);
void sae_intervention_free(sae_intervention *iv);
/* The hook function itself (ctx = sae_intervention*), for callers that
   register it themselves. */
int  sae_intervention_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err);

/* ||W_dec[latent]||: a boost of value c adds a vector of norm |c| * this. */
float sae_latent_dec_norm(const sae_dict *d, int latent);

/* ------------------------------------------------------------ capture --- */
/* Run the model on tokens (T, starting at position 0 of a reset state) only
   up to the SAE's hook and copy the activation the SAE sees (centred if the
   SAE says so) into x (T, d_in). Hooks already on s are kept (they run too);
   the capture hook is removed again before returning. */
int  sae_capture(const sae_dict *d, gpt2_state *s, const int *tokens, int T, float *x, char *err);

/* ---------------------------------------------------------- evaluation --- */
/* sae-eval over windows of tokens: reconstruction quality at the hook and
   next-token cross-entropy clean / with the reconstruction spliced in / with
   the hook zero-ablated. */
typedef struct {
    int64_t n_windows;
    int64_t n_tokens;          /* positions whose activations were scored (BOS excluded) */
    int64_t n_predictions;     /* next-token predictions scored */
    double mse;                /* mean over tokens and dims of (x - x_hat)^2 */
    double explained_variance; /* 1 - sum||x - x_hat||^2 / sum||x - mean(x)||^2 */
    double l0;                 /* mean number of active latents per token */
    int64_t dead;              /* latents that never fired */
    double dead_fraction;
    double ce_clean, ce_recon, ce_zero;
    double ce_recovered;       /* (ce_zero - ce_recon) / (ce_zero - ce_clean) */
} sae_eval_result;

typedef struct sae_eval sae_eval;
/* n_ctx: longest window. */
int  sae_eval_new(sae_eval **out, const sae_dict *d, const gpt2_model *m, int n_ctx, char *err);
/* One window of T tokens (BOS included by the caller if wanted); positions
   < skip are left out of the reconstruction statistics (1 to skip BOS). */
int  sae_eval_window(sae_eval *ev, const int *tokens, int T, int skip, char *err);
/* The same as window number idx (sae_eval_window: the next number): windows
   may come in any order; sae_eval_get adds their sums in number order. */
int  sae_eval_window_at(sae_eval *ev, int64_t idx, const int *tokens, int T, int skip, char *err);
void sae_eval_get(const sae_eval *ev, sae_eval_result *r);
void sae_eval_free(sae_eval *ev);
/* The windows of one part of a text file (lib/perplexity.h, "corpus parts"):
   windows of n_ctx - bos text tokens, [BOS, ...] when bos, none past
   max_tokens (0 = all); a final window of one token without BOS is skipped.
   threads > 1: that many windows at once (ss_windows_run; each worker its
   own sae_eval, merged exactly into ev). *stopped = 1 if the progress
   callback stopped it. */
int  sae_eval_file_part(sae_eval *ev, const tokenizer *tok, const char *path, const ss_part *part, int64_t max_tokens,
                        int bos, int threads, ss_progress_fn cb, void *cb_ctx, int *stopped, char *err);
/* Partial results: pack ev's sums (each window's sums kept) onto b; merge a
   packed part whose windows come after ev's. Merged in window order, the
   sums are the same additions as one process: identical bits. */
int  sae_eval_pack(const sae_eval *ev, ss_buf *b, char *err);
int  sae_eval_merge(sae_eval *ev, const void *data, size_t len, char *err);

#endif
