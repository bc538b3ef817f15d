/* fv.h - task-encoding hidden states and function vectors (ARENA 1.3.2
 * sections 2-3; Hendel et al. 2023 "task vectors", Todd et al. 2024
 * "function vectors").
 *
 * Dataset: a JSON list of {"input": x, "output": y}. An N-shot prompt is
 *     "Q: x1\nA: y1\n\n" ... "Q: xN\nA: yN\n\n" "Q: xq\nA:"
 * (BOS first unless turned off) and its answer is the first token of " yq".
 * A zero-shot prompt is "Q: xq\nA:". A shuffled-label prompt permutes y1..yN
 * among the shots (never the identity when N > 1), the query is unchanged.
 * Accuracy is first-token exact match: argmax of the last position's logits
 * equals the answer token.
 *
 * "Layer L" means the output of block L, TransformerLens
 * blocks.L.hook_resid_post (ARENA's model.transformer.h[L].output[0]).
 *
 * Task vector: h = mean over ICL prompts of the layer-L residual at the last
 * token; "patched" replaces the layer-L residual of the zero-shot prompt's last
 * token by h.
 *
 * Function vector:
 *   zbar[l, h]  mean over clean ICL prompts of head h's attention output before
 *               c_proj (blocks.l.attn.hook_z) at the last token          (L, C)
 *   CIE[l, h]   mean over shuffled-label prompts of
 *               p(answer | zbar[l,h] patched into head h at the last token)
 *               - p(answer | unpatched)                                 (L, NH)
 *               (Todd et al.'s causal indirect effect, in probability)
 *   FV          sum over the top-K heads of zbar[l,h] @ W_O[l][h*HS:(h+1)*HS, :]
 *               + c_proj's bias b_O[l] once for every distinct layer l among
 *               the K heads (a head's share of attn_out has no bias of its
 *               own; adding b_O per head would count a layer's bias once per
 *               chosen head, which is what summing nnsight's out_proj(z_head)
 *               does in the ARENA solution; we do not)                  (C)
 *   fv_acc      zero-shot prompts with FV added to the layer-L residual at the
 *               last position (and at every generated token)
 * Patching a head at the last token does not change earlier positions, so the
 * CIE sweep runs each prompt's prefix once and then only the last token per
 * head from the KV cache.
 */
#ifndef SS_FV_H
#define SS_FV_H

#include "gpt2.h"
#include "tokenizer.h"

typedef struct {
    int n;
    char **input;          /* (n) */
    char **output;         /* (n) */
} fv_dataset;

/* JSON list of {"input": str, "output": str}; not UTF-8 / not a list / empty /
   missing or non-string keys -> SS_EINPUT naming the file and the item. */
int fv_dataset_load(fv_dataset *d, const char *path, char *err);
void fv_dataset_free(fv_dataset *d);

typedef struct {
    int *ids;              /* (n) tokens, BOS first if on */
    int n;
    int answer;            /* first token of " " + output */
    int item;              /* dataset index of the query */
} fv_prompt;

void fv_prompts_free(fv_prompt *p, int n);

/* Prompt text for query q with shots[0..n_shots) (dataset indices); perm
   (n_shots) gives which shot's output is shown for each shot (NULL = own).
   Returns a malloc'd string. */
char *fv_prompt_text(const fv_dataset *d, int q, const int *shots, int n_shots, const int *perm);
/* Encode text (+BOS) and the answer " "+output of item q. */
int fv_prompt_make(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const char *text, int q, int bos,
                   fv_prompt *p, char *err);

/* ------------------------------------------------------ building blocks --- */
/* Last-position logits (n_prompts, V) of each prompt, with an optional
   intervention on the layer-`layer` residual (blocks.layer.hook_resid_post) at
   the prompt's last position: mode 0 none, 1 add vec, 2 replace by vec. */
enum { FV_NONE = 0, FV_ADD = 1, FV_REPLACE = 2 };
int fv_last_logits(const gpt2_model *m, const fv_prompt *P, int n, int mode, int layer, const float *vec,
                   float *logits, char *err);
/* Mean over prompts of the layer-`layer` residual at the last token -> h (C). */
int fv_mean_resid(const gpt2_model *m, const fv_prompt *P, int n, int layer, float *h, char *err);
/* Mean over prompts of hook_z at the last token, every layer -> zbar (L, C). */
int fv_mean_z(const gpt2_model *m, const fv_prompt *P, int n, float *zbar, char *err);
/* CIE (L, NH) over the (corrupted) prompts P. */
int fv_cie(const gpt2_model *m, const fv_prompt *P, int n, const float *zbar, float *cie, char *err);
/* Indices of the K largest CIE values, descending: heads (K, 2) as (layer, head). */
void fv_top_heads(const float *cie, int L, int NH, int K, int *heads);
/* FV (C) from zbar (L, C) and heads (K, 2). */
int fv_vector(const gpt2_model *m, const float *zbar, const int *heads, int K, float *fv, char *err);

/* ------------------------------------------------------------ experiments --- */
typedef struct {
    int layer;             /* L */
    int shots;             /* N (default 5) */
    int n_prompts;         /* ICL prompts for h / zbar / CIE (default 20) */
    int n_eval;            /* zero-shot queries evaluated (default 50) */
    int top_k;             /* heads in the FV (default 10) */
    int bos;               /* prepend BOS (default 1) */
    uint64_t seed;         /* (default 0) */
    int n_examples;        /* generations reported (default 3) */
    int max_new;           /* tokens per example generation (default 8) */
} fv_opts;

void fv_opts_default(fv_opts *o);

typedef struct {
    char input[128], output[128];
    char *zero_shot, *steered;   /* greedy continuations (malloc'd) */
} fv_example;

typedef struct {
    int n_eval, n_prompts;
    double zero_shot_acc, icl_acc, shuffled_acc;
    double patched_acc;          /* task vector: h patched; fv: FV added */
    double zero_shot_logprob, patched_logprob, icl_logprob;  /* mean log p(answer) */
    float *vec;                  /* (C) h or FV, malloc'd */
    float *cie;                  /* (L, NH) fv only, malloc'd */
    int *heads;                  /* (top_k, 2) fv only */
    int n_heads;
    fv_example ex[16];
    int n_ex;
} fv_result;

void fv_result_free(fv_result *r);

/* Task vector (Hendel et al.) at layer L. */
int fv_task_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                       fv_result *r, char *err);
/* Function vector (Todd et al.) added at layer L. */
int fv_function_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                           fv_result *r, char *err);

#endif
