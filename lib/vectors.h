/* vectors.h - contrastive steering vectors from prompt pairs.
 *
 *   mean (CAA)  v = mean_i (a(pos_i) - a(neg_i))      a = activation at the hook,
 *                                                       last token of the prompt
 *   pca         u = first principal direction of the paired differences, uncentred
 *               (top eigenvector of D^T D, D (n, C) the differences), oriented so
 *               that the positive prompts project higher (sum_i D_i . u > 0) and
 *               scaled to the norm of the mean difference
 *   actadd      M (P, C): per-position differences a_p(pos) - a_p(neg) of two
 *               prompts, the shorter right-padded with the token for " " (ActAdd);
 *               a 2-D steering vector adds row p at position p of the prompt.
 *
 * Activations are the model's own (uncentred) residual: a difference of centred
 * residuals differs only along the all-ones direction, which every LayerNorm
 * removes, so steering with either is the same.
 */
#ifndef SS_VECTORS_H
#define SS_VECTORS_H

#include "gpt2.h"
#include "tokenizer.h"

/* A list of prompt pairs (owned strings). */
typedef struct {
    int n;
    char **pos;            /* (n) */
    char **neg;            /* (n) */
} vec_pairs;

/* JSON lines {"positive": "...", "negative": "..."}; blank lines skipped.
   Not UTF-8, not JSON, missing/ non-string keys, no pairs -> SS_EINPUT naming
   the file and the line. */
int vec_pairs_load(vec_pairs *p, const char *path, char *err);
/* One pair from two strings (copied). */
int vec_pairs_one(vec_pairs *p, const char *pos, const char *neg, char *err);
void vec_pairs_free(vec_pairs *p);

typedef enum { VEC_MEAN, VEC_PCA } vec_method;

/* Activations at hook hp of every position of ids (n tokens, from position 0):
   out (n, width). s must carry no hooks; it is left without hooks. */
int vec_capture(gpt2_state *s, const gpt2_hook_point *hp, const int *ids, int n, float *out, char *err);

/* diffs (n, C) -> v (C): the mean. */
void vec_mean(const float *diffs, int n, int C, float *v);
/* diffs (n, C) -> v (C): uncentred first principal direction, oriented and
   scaled as above. Power iteration on the smaller Gram matrix (n, n) or (C, C)
   in double precision from a deterministic start (the mean difference). */
int vec_pca(const float *diffs, int n, int C, float *v, char *err);

/* Last-token differences of every pair at the hook named `hook`:
   diffs (n_pairs, width), malloc'd. bos: prepend the model's BOS. */
int vec_diffs(const gpt2_model *m, const tokenizer *tok, const char *hook, const vec_pairs *pairs, int bos,
              float **diffs, int *width, char *err);

/* mean or pca vector (width) at the hook, malloc'd. */
int vec_contrastive(const gpt2_model *m, const tokenizer *tok, const char *hook, const vec_pairs *pairs, int bos,
                    vec_method method, float **v, int *width, char *err);

/* ActAdd matrix (P, width), malloc'd: P = the longer prompt's length (BOS
   included when bos). */
int vec_actadd(const gpt2_model *m, const tokenizer *tok, const char *hook, const char *pos, const char *neg, int bos,
               float **mat, int *P, int *width, char *err);

/* Encode text (+ BOS) into a malloc'd id array; checks n_positions. */
int vec_encode(const gpt2_model *m, const tokenizer *tok, const char *text, int bos, int **ids, int *n, char *err);

float vec_norm(const float *v, int n);

#endif
