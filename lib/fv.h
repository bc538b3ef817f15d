/* fv.h - task-encoding hidden states and function vectors (ARENA 1.3.2
 * sections 2-3; Hendel et al. 2023 "task vectors", Todd et al. 2024
 * "function vectors").
 *
 * Dataset: a JSON list of {"input": x, "output": y}. Prompts follow a template
 * (default FV_TEMPLATE_DEFAULT, "Q: {x}\nA: {y}\n\n"): one example is the
 * template with {x} and {y} filled in, the text after {y} being the separator
 * between examples. An N-shot prompt is N filled examples and then the query:
 * the template up to {y}, less one space if the template has one right before
 * {y}; that space belongs to the answer. So with the default an N-shot prompt
 * is "Q: x1\nA: y1\n\n" ... "Q: xN\nA: yN\n\n" "Q: xq\nA:" (BOS first unless
 * turned off) and its answer is the first token of " yq". A zero-shot prompt
 * is the query alone. A shuffled-label prompt permutes y1..yN among the shots
 * (never the identity when N > 1), the query is unchanged. Accuracy is
 * first-token exact match: argmax of the last position's logits equals the
 * answer token.
 *
 * Items: the dataset is shuffled (seed); the first n_eval items are the
 * evaluation queries and the rest the ICL pool. Every in-context example, and
 * the query of every ICL prompt that builds h / zbar / the CIEs, comes from the
 * pool, so no evaluation item is ever shown as an example: the dataset needs
 * n_eval + shots + 1 items.
 *
 * "Layer L" means the output of block L, TransformerLens
 * blocks.L.hook_resid_post (ARENA's model.transformer.h[L].output[0]).
 *
 * Task vector: h = mean over ICL prompts of the layer-L residual at the last
 * token; "patched" replaces the layer-L residual of the zero-shot prompt's last
 * token by h (FV_REPLACE, Hendel et al.) or adds h to it (FV_ADD, ARENA 1.3.2).
 *
 * Function vector:
 *   zbar[l, h]  mean over clean ICL prompts of head h's attention output before
 *               c_proj (blocks.l.attn.hook_z) at the last token          (L, C)
 *   CIE[l, h]   mean over shuffled-label prompts of
 *               p(answer | zbar[l,h] patched into head h at the last token)
 *               - p(answer | unpatched)                                 (L, NH)
 *               (Todd et al.'s causal indirect effect, in probability;
 *               FV_CIE_LOGPROB: the same difference in log p)
 *   FV          sum over the chosen heads (the top K by CIE, or a given list)
 *               of zbar[l,h] @ W_O[l][h*HS:(h+1)*HS, :]
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

/* ------------------------------------------------------------ template --- */
#define FV_TEMPLATE_DEFAULT "Q: {x}\\nA: {y}\\n\\n"
typedef struct {
    char *spec;            /* the template as given (escapes unexpanded), for records */
    char *pre, *mid, *post;/* text before {x}, between {x} and {y} (less the answer's space), after {y} */
    int space;             /* 1: a space right before {y}, which goes with the answer */
} fv_template;

/* Parse a template (NULL = FV_TEMPLATE_DEFAULT). Escapes: \n newline, \t tab,
   \\ backslash, {{ and }} literal braces. It must hold {x} and then {y}, once
   each, with text between them and a separator after {y}; anything else (a
   missing or repeated placeholder, another {name}, a lone brace, an unknown
   escape, invalid UTF-8) -> SS_EINPUT with a one-line message. */
int fv_template_parse(fv_template *t, const char *spec, char *err);
void fv_template_free(fv_template *t);

/* Prompt text for query q with shots[0..n_shots) (dataset indices); perm
   (n_shots) gives which shot's output is shown for each shot (NULL = own).
   t NULL = the default template. Returns a malloc'd string. */
char *fv_prompt_text(const fv_template *t, const fv_dataset *d, int q, const int *shots, int n_shots, const int *perm);
/* Encode text (+BOS) and the answer of item q (its output, after a space if
   the template has one before {y}; t NULL = default). */
int fv_prompt_make(const gpt2_model *m, const tokenizer *tok, const fv_template *t, const fv_dataset *d, const char *text,
                   int q, int bos, fv_prompt *p, char *err);

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
/* CIE (L, NH) over the (corrupted) prompts P, in p (FV_CIE_PROB) or log p. */
enum { FV_CIE_PROB = 0, FV_CIE_LOGPROB = 1 };
int fv_cie(const gpt2_model *m, const fv_prompt *P, int n, const float *zbar, int metric, float *cie, char *err);
/* Indices of the K largest CIE values, descending: heads (K, 2) as (layer, head). */
void fv_top_heads(const float *cie, int L, int NH, int K, int *heads);
/* FV (C) from zbar (L, C) and heads (K, 2). */
int fv_vector(const gpt2_model *m, const float *zbar, const int *heads, int K, float *fv, char *err);

/* ------------------------------------------------------------ experiments --- */
/* Progress: forward passes done of the run's total (phase: what runs now). */
typedef void (*fv_progress_fn)(void *ctx, const char *phase, int64_t done, int64_t total);

typedef struct {
    int layer;             /* L (when layers is NULL) */
    const int *layers;     /* injection layers to sweep (n_layers); NULL: just `layer` */
    int n_layers;
    int shots;             /* N (default 5) */
    int n_prompts;         /* ICL prompts for h / zbar / CIE (default 20) */
    int n_eval;            /* zero-shot queries evaluated; 0 (default): min(50, items / 2),
                              capped at items - shots - 1 */
    int top_k;             /* heads in the FV (default 10) */
    const int *heads;      /* fv: (n_heads, 2) chosen (layer, head) pairs instead of the top_k by CIE */
    int n_heads;
    int want_cie;          /* with heads: compute the CIEs anyway (for a heat map or a CIE file) */
    const float *cie_in;   /* (L, NH) CIEs of an earlier run (fv_cie_load): used, not recomputed */
    int metric;            /* FV_CIE_PROB (default) or FV_CIE_LOGPROB */
    int mode;              /* task vector: FV_REPLACE (default, Hendel et al.) or FV_ADD (ARENA) */
    const fv_template *tpl;/* NULL: FV_TEMPLATE_DEFAULT */
    int bos;               /* prepend BOS (default 1) */
    uint64_t seed;         /* (default 0) */
    int n_examples;        /* generations reported (default 3) */
    int max_new;           /* tokens per example generation (default 8) */
    fv_progress_fn progress;
    void *progress_ctx;
} fv_opts;

void fv_opts_default(fv_opts *o);
/* The evaluation queries for dataset size n_items (resolving n_eval 0), after
   checking that they and the ICL items fit disjointly: SS_EINPUT naming the
   counts if not. */
int fv_plan(const fv_opts *o, int n_items, int *n_eval, char *err);

typedef struct {
    char input[128], output[128];
    char *zero_shot, *steered;   /* greedy continuations (malloc'd) */
} fv_example;

typedef struct {
    int n_eval, n_prompts, n_pool;
    double zero_shot_acc, icl_acc, shuffled_acc;
    double zero_shot_logprob, icl_logprob, shuffled_logprob;   /* mean log p(answer) */
    int n_layers;                /* layers swept (1 without a sweep) */
    int *layers;                 /* (n_layers) */
    double *layer_acc, *layer_logprob;   /* (n_layers) task vector patched / FV added at each layer */
    int best;                    /* index into layers: highest accuracy, ties: highest log p, then first */
    double patched_acc, patched_logprob; /* = layer_acc / layer_logprob [best] */
    float *vec;                  /* task vector: (n_layers, C) h per layer; fv: (C) the FV; malloc'd */
    float *cie;                  /* (L, NH) fv only, malloc'd; NULL when not computed (heads given) */
    int *heads;                  /* (n_heads, 2) fv only */
    int n_heads;
    char *prompt_example;        /* text of the first ICL evaluation prompt */
    fv_example ex[16];           /* at layers[best] */
    int n_ex;
} fv_result;

void fv_result_free(fv_result *r);

/* Task vector (Hendel et al.) at each layer. */
int fv_task_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                       fv_result *r, char *err);
/* Function vector (Todd et al.) added at each layer. */
int fv_function_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                           fv_result *r, char *err);

/* --------------------------------------------------------- CIE files --- */
/* A JSON file of the CIEs with everything they depend on, so that later runs
   (a layer sweep, other heads) reuse them: {"format": "saesteer-cie",
   "version": 1, "model_sha256", "n_layer", "n_head", "dataset_sha256",
   "template", "shots", "n_prompts", "n_eval", "seed", "bos", "metric",
   "cie": [[...] * n_head] * n_layer}. Numbers round-trip exactly. */
typedef struct {
    char model_sha256[65], dataset_sha256[65];
    int n_layer, n_head, shots, n_prompts, n_eval, bos, metric;
    uint64_t seed;
    const char *template_spec;
} fv_cie_meta;
/* Written atomically. */
int fv_cie_save(const char *path, const fv_cie_meta *meta, const float *cie, char *err);
/* Read into cie (n_layer * n_head, from want) after checking that every field
   equals want's: SS_EINPUT naming the first that differs. */
int fv_cie_load(const char *path, const fv_cie_meta *want, float *cie, char *err);

#endif
