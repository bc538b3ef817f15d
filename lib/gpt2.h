/* gpt2.h - GPT-2 model: config, weights, forward pass with KV cache, hooks.
 *
 * Shapes use llm.c's letters: T positions in this call, C = n_embd,
 * NH = n_head, HS = C / NH, V = vocab_size, L = n_layer, P = n_positions.
 * Weights follow HF's Conv1D convention: stored (in, out), y = x W + b.
 */
#ifndef SS_GPT2_H
#define SS_GPT2_H

#include "common.h"
#include "safetensors.h"

typedef struct {
    int n_layer, n_head, n_embd, n_positions, vocab_size;
    float ln_eps;          /* layer_norm_epsilon */
    int bos_id, eos_id;    /* bos_token_id / eos_token_id (50256 for GPT-2) */
} gpt2_config;

/* Parse an HF config.json (model_type gpt2, activation gelu_new). */
int gpt2_config_load(gpt2_config *cfg, const char *path, char *err);

typedef struct {
    const float *ln1_w, *ln1_b;      /* (C) */
    const float *attn_w, *attn_b;    /* (C, 3C), (3C)  c_attn */
    const float *proj_w, *proj_b;    /* (C, C), (C)    attn.c_proj */
    const float *ln2_w, *ln2_b;      /* (C) */
    const float *fc_w, *fc_b;        /* (C, 4C), (4C)  mlp.c_fc */
    const float *fcp_w, *fcp_b;      /* (4C, C), (C)   mlp.c_proj */
} gpt2_layer;

typedef struct gpt2_model {
    gpt2_config cfg;
    char dir[4096];
    const float *wte;      /* (V, C), also the (tied) unembedding */
    const float *wpe;      /* (P, C) */
    gpt2_layer *layers;    /* (L) */
    const float *lnf_w, *lnf_b; /* (C) */
    /* storage: mmap'd safetensors shards; f32 tensors point into them, others
       are converted into `owned` */
    st_file *files;
    int n_files;
    float **owned;
    int n_owned;
    size_t weight_bytes;   /* bytes of f32 weights in use */
} gpt2_model;

/* Load an HF GPT-2 directory: config.json + model.safetensors (or a sharded
   model.safetensors.index.json). Both layouts: "transformer."-prefixed
   (save_pretrained) and unprefixed (official files; h.N.attn.bias skipped). */
int gpt2_load(gpt2_model **out, const char *dir, char *err);
void gpt2_free(gpt2_model *m);

/* ---------------------------------------------------------------- hooks --- */
/* TransformerLens hook names:
 *   hook_embed, hook_pos_embed                      (T, C)
 *   blocks.L.hook_resid_pre / hook_resid_mid / hook_resid_post   (T, C)
 *   blocks.L.hook_attn_out, blocks.L.hook_mlp_out   (T, C)
 *   blocks.L.attn.hook_z                            (T, NH*HS) head-major: [t][h*HS + d]
 *   blocks.L.attn.hook_pattern                      (NH, T, pos0+T), read-only
 *   blocks.L.mlp.hook_post                          (T, 4C)
 *   ln_final.hook_normalized                        (T, C) (after ln_f's affine; == HF last hidden state)
 */
typedef enum {
    GPT2_HOOK_EMBED, GPT2_HOOK_POS_EMBED, GPT2_HOOK_RESID_PRE, GPT2_HOOK_ATTN_Z,
    GPT2_HOOK_PATTERN, GPT2_HOOK_ATTN_OUT, GPT2_HOOK_RESID_MID, GPT2_HOOK_MLP_POST,
    GPT2_HOOK_MLP_OUT, GPT2_HOOK_RESID_POST, GPT2_HOOK_LN_FINAL, GPT2_HOOK_KINDS
} gpt2_hook_kind;

typedef struct {
    gpt2_hook_kind kind;
    int layer;             /* -1 for hook_embed, hook_pos_embed, ln_final */
} gpt2_hook_point;

/* Parse a TransformerLens hook name; unknown names / layers out of range -> SS_EINPUT. */
int gpt2_hook_parse(const gpt2_config *cfg, const char *name, gpt2_hook_point *hp, char *err);
/* Canonical name, e.g. "blocks.3.hook_resid_pre". */
void gpt2_hook_name(const gpt2_hook_point *hp, char *buf, size_t n);
/* Width of one position's activation at this hook (C, 4C, ...). For
   hook_pattern the per-call width is pos0+T; this returns 0. */
int gpt2_hook_width(const gpt2_config *cfg, const gpt2_hook_point *hp);
/* 1 for the d_model-wide residual-writing hooks that TransformerLens centres
   under center_writing_weights (embed, pos_embed, resid_*, attn_out, mlp_out). */
int gpt2_hook_is_residual(const gpt2_hook_point *hp);

/* A hook callback sees the activations of the T new positions of this forward
 * call, absolute positions pos0 .. pos0+T-1 (BOS, if any, is position 0):
 * act is (T, width) row-major (hook_pattern: (NH, T, pos0+T)). It may modify
 * act in place (not hook_pattern); the forward pass continues from the
 * modified values. Return SS_OK or an error code with err filled. */
typedef int (*gpt2_hook_fn)(void *ctx, const gpt2_hook_point *hp, float *act,
                            int T, int width, int pos0, char *err);

#define GPT2_MAX_HOOKS 64

typedef struct {
    gpt2_hook_point hp;
    gpt2_hook_fn fn;
    void *ctx;
    int center;            /* residual hooks only: the callback sees x - mean_C(x)
                              (TL center_writing_weights); its edits are carried
                              back onto the uncentred stream */
} gpt2_hook;

/* ------------------------------------------------------------ run state --- */
typedef struct gpt2_state {
    const gpt2_model *m;
    int n_ctx;             /* capacity in positions (<= P) */
    int pos;               /* positions already in the KV cache */
    float *k_cache;        /* (L, n_ctx, C) */
    float *v_cache;        /* (L, n_ctx, C) */
    /* activations for up to n_ctx positions, one allocation */
    float *mem;
    float *x;              /* (n_ctx, C)  residual stream */
    float *xn;             /* (n_ctx, C)  layernorm output */
    float *qkv;            /* (n_ctx, 3C) */
    float *z;              /* (n_ctx, C)  attention output per head, before c_proj */
    float *att;            /* (n_ctx, n_ctx) scores of one head */
    float *tmp;            /* (n_ctx, C)  attn_out / mlp_out */
    float *h;              /* (n_ctx, 4C) mlp hidden */
    float *mean;           /* (n_ctx)     per-position means for centring */
    float *pattern;        /* (NH, n_ctx, n_ctx) only when a pattern hook is set */
    gpt2_hook hooks[GPT2_MAX_HOOKS];
    int n_hooks;
    int stop_layer;        /* run blocks [0, stop_layer) only and skip the
                              unembedding; n_layer (default) runs everything */
} gpt2_state;

int gpt2_state_build(gpt2_state **out, const gpt2_model *m, int n_ctx, char *err);
void gpt2_state_free(gpt2_state *s);
void gpt2_state_reset(gpt2_state *s);     /* empty the KV cache (hooks stay) */
int gpt2_add_hook(gpt2_state *s, const gpt2_hook_point *hp, gpt2_hook_fn fn, void *ctx, int center, char *err);
void gpt2_clear_hooks(gpt2_state *s);
/* Stop after the last block any registered hook needs (or `layer` blocks if
   larger); logits are then not computed. Call after adding hooks. */
void gpt2_stop_after_hooks(gpt2_state *s);

/* Run T new tokens (appended after the s->pos cached ones).
 * logits: NULL, or (T, V) if all_logits, else (1, V) for the last position.
 * Positions beyond n_ctx, token ids outside [0, V) -> SS_EINPUT. */
int gpt2_forward(gpt2_state *s, const int *tokens, int T, float *logits, int all_logits, char *err);

/* Resume a forward pass at block `layer` (0..n_layer; n_layer = only ln_f and
 * the unembedding) for T positions after the s->pos cached ones. x (T, C) is
 * the residual stream entering that block (blocks.layer.hook_resid_pre) at
 * those positions. The KV cache of blocks < layer must already hold these
 * positions from an earlier run (they are read, not recomputed); hooks from
 * blocks.layer.hook_resid_pre on run as in gpt2_forward. With
 * gpt2_state_rewind this reruns the tail of a sequence from a middle layer. */
int gpt2_forward_from(gpt2_state *s, int layer, const float *x, int T, float *logits, int all_logits, char *err);
/* Forget the cached positions from pos on (positions 0..pos-1 stay). */
void gpt2_state_rewind(gpt2_state *s, int pos);

/* Layer kernels (exposed for tests and for sae/): (out, in, weights..., T, C). */
void gpt2_layernorm(float *out, const float *in, const float *w, const float *b, int T, int C, float eps);
void gpt2_gelu(float *x, int n);   /* gelu_new (tanh form), in place */
/* out (T, OC) = in (T, IC) @ W (IC, OC) + b; uses sgemv when T == 1. */
void gpt2_matmul(float *out, const float *in, const float *W, const float *b, int T, int IC, int OC);

#endif
