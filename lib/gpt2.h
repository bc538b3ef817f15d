/* gpt2.h - the model: config, weights, forward pass with KV cache, hooks.
 *
 * Three HF architectures share this runtime: GPT-2 (GPT2LMHeadModel), GPT-J
 * (GPTJForCausalLM) and GPT-NeoX / Pythia (GPTNeoXForCausalLM); cfg.arch says
 * which (the names keep their GPT-2 prefix).
 * Shapes use llm.c's letters: T positions in this call, C = n_embd,
 * NH = n_head, HS = C / NH, F = n_inner (MLP width), V = vocab_size,
 * L = n_layer, P = n_positions.
 * Weight matrices are gpt2_mat: f32, f16 or bf16, used in place from the
 * mmap'd file, stored (in, out) (GPT-2's Conv1D, y = x W + b) or (out, in)
 * (nn.Linear, y = x W^T + b); the matmuls convert half-precision weights on
 * the fly (lib/matmul.c).
 */
#ifndef SS_GPT2_H
#define SS_GPT2_H

#include "common.h"
#include "safetensors.h"

typedef enum { GPT2_ARCH_GPT2 = 0, GPT2_ARCH_GPTJ, GPT2_ARCH_NEOX } gpt2_arch;

typedef struct {
    int n_layer, n_head, n_embd, n_positions, vocab_size;
    float ln_eps;          /* layer_norm_epsilon */
    int bos_id, eos_id;    /* bos_token_id / eos_token_id (50256 for GPT-2) */
    /* beyond GPT-2 (all 0 = GPT-2; gpt2_config_load fills them for every arch) */
    int arch;              /* gpt2_arch */
    int n_inner;           /* F: MLP hidden width (4C for GPT-2; 0 is read as 4C) */
    int rotary_dim;        /* dims of each head that get rotary embeddings (0: none) */
    float rope_theta;      /* rotary base (10000) */
    int parallel;          /* attention and MLP both read the block input (GPT-J; NeoX
                              use_parallel_residual): no hook_resid_mid */
    int gelu_erf;          /* MLP activation: 1 exact (erf) gelu (NeoX "gelu"), 0 gelu_new */
} gpt2_config;

/* Parse an HF config.json: model_type gpt2, gptj or gpt_neox. */
int gpt2_config_load(gpt2_config *cfg, const char *path, char *err);
const char *gpt2_arch_name(int arch);   /* "gpt2", "gptj", "gpt_neox" */

/* A weight matrix kept in its file's dtype. */
typedef struct {
    const void *data;      /* NULL: absent */
    int dtype;             /* ST_F32, ST_F16 or ST_BF16 */
    int out_major;         /* 1: stored (out, in) (nn.Linear); 0: (in, out) (Conv1D) */
} gpt2_mat;

typedef struct {
    const float *ln1_w, *ln1_b;      /* (C) */
    gpt2_mat attn_w;                 /* GPT-2 c_attn (C, 3C); NeoX query_key_value (3C, C), per-head [q|k|v] */
    gpt2_mat q_w, k_w, v_w;          /* GPT-J q/k/v_proj (C, C) each */
    const float *attn_b;             /* (3C) or NULL (GPT-J; NeoX attention_bias false) */
    gpt2_mat proj_w;                 /* attn.c_proj / out_proj / dense (C, C) */
    const float *proj_b;             /* (C) or NULL */
    const float *ln2_w, *ln2_b;      /* (C); NULL for GPT-J (its MLP reads ln_1) */
    gpt2_mat fc_w;                   /* (C -> F) */
    const float *fc_b;               /* (F) */
    gpt2_mat fcp_w;                  /* (F -> C) */
    const float *fcp_b;              /* (C) */
} gpt2_layer;

typedef struct gpt2_model {
    gpt2_config cfg;
    char dir[4096];
    gpt2_mat wte;          /* (V, C) token embedding */
    const float *wpe;      /* (P, C) GPT-2 only (NULL with rotary embeddings) */
    gpt2_mat unembed;      /* (V, C) stored (out, in): wte for GPT-2 (tied), lm_head / embed_out */
    const float *unembed_b;/* (V) GPT-J's lm_head.bias, else NULL */
    gpt2_layer *layers;    /* (L) */
    const float *lnf_w, *lnf_b; /* (C) */
    /* storage: mmap'd safetensors shards; matrices point into them, vectors
       that are not f32 are converted into `owned` */
    st_file *files;
    int n_files;
    float **owned;
    int n_owned;
    size_t weight_bytes;   /* bytes of weights in use (as stored) */
} gpt2_model;

/* Load an HF model directory: config.json + model.safetensors (or a sharded
   model.safetensors.index.json). GPT-2 in both layouts: "transformer."-prefixed
   (save_pretrained) and unprefixed (official files; h.N.attn.bias skipped);
   GPT-J ("transformer." + lm_head), GPT-NeoX ("gpt_neox." + embed_out). */
int gpt2_load(gpt2_model **out, const char *dir, char *err);
void gpt2_free(gpt2_model *m);

/* out (T, V) = in (T, C) @ W_U^T, without ln_final and without a bias: the
   direct logit effect of residual directions (as SAELens dashboards show). */
void gpt2_unembed_dirs(const gpt2_model *m, const float *in, int T, float *out);
/* out (C) += zh (HS) @ W_O[h]: head h's slice of layer l's attention output
   projection (no bias). SS_ERUNTIME if out of memory. */
int gpt2_head_out(const gpt2_model *m, int l, int h, const float *zh, double *out);

/* ---------------------------------------------------------------- hooks --- */
/* TransformerLens hook names:
 *   hook_embed, hook_pos_embed                      (T, C)
 *   blocks.L.hook_resid_pre / hook_resid_mid / hook_resid_post   (T, C)
 *   blocks.L.hook_attn_out, blocks.L.hook_mlp_out   (T, C)
 *   blocks.L.attn.hook_z                            (T, NH*HS) head-major: [t][h*HS + d]
 *   blocks.L.attn.hook_pattern                      (NH, T, pos0+T), read-only
 *   blocks.L.mlp.hook_post                          (T, F)
 * hook_pos_embed exists for GPT-2 only (the others use rotary embeddings),
 * hook_resid_mid only where attention and MLP run one after the other
 * (GPT-2, NeoX with use_parallel_residual false); gpt2_hook_parse refuses
 * them elsewhere with a message saying why.
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
    float *tmp2;           /* (n_ctx, C)  mlp_out of a parallel block */
    float *h;              /* (n_ctx, F)  mlp hidden */
    float *mean;           /* (n_ctx)     per-position means for centring */
    float *pattern;        /* (NH, n_ctx, n_ctx) only when a pattern hook is set */
    float *rope;           /* (n_ctx, rotary_dim/2, 2) cos, sin per position; NULL without rotary */
    float *row;            /* (3C) scratch for reordering NeoX's fused qkv */
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
void gpt2_gelu_erf(float *x, int n);   /* exact gelu: 0.5 x (1 + erf(x / sqrt 2)), in place */

/* ------------------------------------------------ typed matmul (matmul.c) --- */
/* out (T, OC), row stride ldo = in (T, IC) @ W + b (b may be NULL), for any
   dtype and layout of W. f32: BLAS on the mmap. f16/bf16: T == 1 uses fused
   convert-and-FMA kernels (AVX2/F16C when the CPU has them, chosen at run
   time; portable C otherwise); T > 1 converts a block of W at a time into a
   small f32 panel and runs sgemm on it. */
void gpt2_matmul_w(float *out, int ldo, const float *in, const gpt2_mat *W, const float *b, int T, int IC, int OC);
/* Row r (length n) of a (rows, n) out-major matrix as f32. */
void gpt2_mat_row(const gpt2_mat *W, int64_t r, int n, float *out);
/* Which kernels the matmuls use: "avx2+f16c" or "portable". Setting
   SAESTEER_PORTABLE=1 in the environment forces the portable ones. */
const char *gpt2_kernels(void);
/* Tests: 1 = use the portable kernels from now on; 0 = back to the default. */
void gpt2_kernels_force_portable(int on);

#endif
