/* compare.h - SAE-latent steering against a contrastive steering vector.
 *
 * For every prompt and scale the same sampler (same seed) generates with
 *   none    no intervention (once, scale 0)
 *   sae     boost: + value * W_dec[latent] at the SAE's hook, every position
 *           (value = scale, or scale * ||v|| / ||W_dec[latent]|| with match_norm)
 *   vector  + scale * v at the vector's hook, every position
 * and each run is scored on its own generations:
 *   norm        the norm of the vector added at each position
 *   kl          mean over generated positions of KL(p_steered || p_unsteered):
 *               the generated sequence is fed to the steered and the unsteered
 *               model and the next-token distributions that produced each
 *               generated token are compared (0 for "none")
 *   perplexity  exp(mean NLL of the generated tokens under the unsteered model,
 *               given the prompt)
 *   effect      target words: mean over generated positions and words of
 *               log p_steered(w) - log p_unsteered(w) (w = first token of
 *               " word"); sentiment: mean over prompts of the AFINN-111 score of
 *               the generated text; none: 0
 * Averages over positions are token-weighted across prompts.
 */
#ifndef SS_COMPARE_H
#define SS_COMPARE_H

#include "metrics.h"
#include "sae.h"
#include "sample.h"
#include "tokenizer.h"

typedef enum { CMP_EFFECT_NONE, CMP_EFFECT_TARGET, CMP_EFFECT_SENTIMENT } cmp_effect;

typedef struct {
    const gpt2_model *m;
    const tokenizer *tok;
    const sae_dict *sae;
    int latent;
    const float *vec;            /* (C) the contrastive vector */
    gpt2_hook_point vec_hook;
    char **prompts;              /* (n_prompts) */
    int n_prompts;
    const float *scales;         /* (n_scales) */
    int n_scales;
    int max_new;
    sampler_params sp;
    int bos;
    int match_norm;
    cmp_effect effect;
    const int *targets;          /* (n_targets) token ids, for CMP_EFFECT_TARGET */
    int n_targets;
    const met_afinn *afinn;      /* for CMP_EFFECT_SENTIMENT */
} cmp_config;

typedef struct {
    char method[8];              /* "none", "sae", "vector" */
    float scale;
    double norm, effect, kl, perplexity;
    int n_tokens;                /* generated tokens scored */
    char **gens;                 /* (n_prompts) generated texts */
    int n_gens;
} cmp_run;

/* Runs: none, then for each scale sae and vector. */
int cmp_run_all(const cmp_config *c, cmp_run **runs, int *n_runs, char *err);
void cmp_runs_free(cmp_run *runs, int n);

/* Target words (one per line, UTF-8) -> first token of " word". */
int cmp_load_targets(const tokenizer *tok, const char *path, int **ids, int *n, char *err);

#endif
