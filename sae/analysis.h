/* analysis.h - the everyday interpretability analyses, built on lib's hooks:
 * activation patching (TransformerLens patching.get_act_patch_* semantics),
 * the logit lens, and reading a direction in vocabulary space.
 *
 * Library code: never prints or exits; errors come back as SS_* codes with a
 * one-line message in err (SS_ERRLEN bytes).
 */
#ifndef SS_ANALYSIS_H
#define SS_ANALYSIS_H

#include "common.h"
#include "gpt2.h"

/* ------------------------------------------------------------ patching --- */
typedef enum { PATCH_RESID_PRE, PATCH_ATTN_OUT, PATCH_MLP_OUT, PATCH_Z } patch_kind;
typedef enum { PATCH_LOGDIFF, PATCH_LOGPROB } patch_metric;

/* "resid_pre" | "attn_out" | "mlp_out" | "z" -> kind; 1 if known. */
int patch_kind_parse(const char *s, patch_kind *k);
const char *patch_kind_name(patch_kind k);

typedef struct {
    patch_kind kind;
    int per_position;      /* z only: one value per (layer, head, position) */
    patch_metric metric;   /* at the last position: logit(answer) - logit(wrong), or log p(answer) */
    int answer, wrong;     /* token ids (wrong unused by PATCH_LOGPROB) */
    int full_runs;         /* 1: every patch is a whole forward pass from scratch, no sharing and
                              no skipping (for timing the sharing, and as a check of it) */
} patch_spec;

typedef struct {
    int ndim;              /* 2: (n_layer, T) or (n_layer, n_head); 3: (n_layer, n_head, T) */
    int shape[3];
    float *values;         /* the metric after each patch, C order over shape */
    double clean, corrupted;   /* the metric of the unpatched clean / corrupted runs */
    int first_diff;        /* first position where the two prompts differ (T if none) */
    int64_t runs;          /* patched forward runs executed */
    int64_t skipped;       /* patches at positions < first_diff: clean == corrupted there, so the
                              patched run is the corrupted run and its value is `corrupted` */
    double seconds;        /* wall time of the patched runs (restores included) */
} patch_result;

/* Activation patching, clean -> corrupted, both T tokens long (BOS included
 * by the caller). The clean run's activations are captured once; each patched
 * run reuses the corrupted run's KV cache: positions before the patched one
 * are not recomputed (causal attention leaves them unchanged), nor are the
 * blocks before the patched layer (gpt2_forward_from).
 *   resid_pre / attn_out / mlp_out: for each layer L and position p, the
 *     corrupted run with blocks.L.hook_<kind>[p] replaced by the clean one.
 *   z: for each layer L and head h, blocks.L.attn.hook_z[:, h] replaced at
 *     every position; per_position: at one position p at a time. */
int patch_run(const gpt2_model *m, const int *clean, const int *corrupted, int T, const patch_spec *sp,
              patch_result *r, char *err);
void patch_result_free(patch_result *r);

/* ---------------------------------------------------------- logit lens --- */
typedef struct {
    int n_points;          /* n_layer + 1: blocks.L.hook_resid_pre, then blocks.{n-1}.hook_resid_post */
    int k;
    int *top_ids;          /* (n_points, k), most likely first */
    float *top_logprob;    /* (n_points, k) log-softmax over the full vocabulary */
    int answer;            /* -1 if none */
    float *answer_logprob; /* (n_points) */
    int *answer_rank;      /* (n_points) 1 = the most likely token */
} lens_result;

/* The logit lens at position pos of tokens (T): every residual stream point
 * goes through ln_f and the (tied) unembedding. cached_scale = 0: ln_f in
 * full on that stream (its own mean and variance); 1: the stream minus its
 * mean, divided by the final residual's LayerNorm scale at that position, then
 * ln_f's weight and bias, as TransformerLens's
 * accumulated_resid(apply_ln=True) + unembed does (its fold_ln puts ln_f's
 * weight and bias into W_U / b_U). answer: a token id or -1. */
int lens_run(const gpt2_model *m, const int *tokens, int T, int pos, int cached_scale, int k, int answer,
             lens_result *r, char *err);
void lens_result_free(lens_result *r);
/* Name of lens point i ("blocks.3.hook_resid_pre", ...). */
void lens_point_name(const gpt2_config *cfg, int i, char *buf, size_t n);

/* ------------------------------------------------------------ unembed --- */
/* Direct logits of a direction v (C): v . wte[t] for every token t, or of
 * ln_f(v) (ln_f in full, with its own mean and variance) when ln_f is set.
 * out: (V). */
int unembed_scores(const gpt2_model *m, const float *v, int ln_f, float *out, char *err);

/* Indices of the k largest (largest = 1) or smallest values of x (n), best
 * first; ties go to the lower index. Returns how many were written. */
int topk_indices(const float *x, int n, int k, int largest, int *idx);
/* log-softmax of logits (n) in place, in double precision. */
void log_softmax_inplace(float *x, int n);

#endif
