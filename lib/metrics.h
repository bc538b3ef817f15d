/* metrics.h - what a steering intervention did to the model's predictions.
 *
 *   KL        KL(p_steered || p_unsteered) of two next-token distributions,
 *             from their logits (double-precision log-softmax)
 *   NLL       -log p(token) under a distribution; perplexity = exp(mean NLL)
 *   log-prob  log p(token): the target-word shift is log p_steered(w) -
 *             log p_unsteered(w) of the word's first token
 *   AFINN     sentiment of a text: the sum of the AFINN-111 valences (-5..5) of
 *             its words and phrases (case-folded, longest phrase first, up to 3
 *             words), as the afinn reference implementations score it
 */
#ifndef SS_METRICS_H
#define SS_METRICS_H

#include "common.h"

/* log-softmax of logits (V) into out (V). */
void met_log_softmax(const float *logits, int V, double *out);
/* KL(p || q) from two log-probability rows (V). */
double met_kl(const double *logp, const double *logq, int V);
/* KL(softmax(a) || softmax(b)) from logits. scratch: (2V) doubles or NULL. */
double met_kl_logits(const float *a, const float *b, int V, double *scratch);
/* log p(id) under softmax(logits). */
double met_logprob(const float *logits, int V, int id);

/* AFINN lexicon: lines "word-or-phrase<TAB>valence"; '#' lines are comments. */
typedef struct met_afinn met_afinn;
int met_afinn_load(met_afinn **out, const char *path, char *err);
void met_afinn_free(met_afinn *a);
int met_afinn_size(const met_afinn *a);
/* Sum of valences of the words of text (UTF-8); *n_hits gets how many
   words/phrases matched (may be NULL). */
double met_afinn_score(const met_afinn *a, const char *text, int *n_hits);

#endif
