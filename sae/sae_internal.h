/* sae_internal.h - pieces shared between the sae/ source files (not API). */
#ifndef SS_SAE_INTERNAL_H
#define SS_SAE_INTERNAL_H

#include "sae.h"

/* Allocate a dictionary with every array of its architecture (zeroed):
   W_enc, W_dec, b_enc, b_dec always; threshold for jumprelu; b_gate, b_mag,
   r_mag for gated. Metadata fields must be set by the caller first (arch,
   d_in, d_sae). */
int sae_alloc_arrays(sae_dict *d, const char *file, char *err);

/* Checks after loading: sizes within limits, k in range, arrays of the
   architecture present, every weight finite (the error names the dataset and
   the index). `file` names the file in messages. */
int sae_validate(const sae_dict *d, const char *file, char *err);

/* Check sizes before allocating anything. */
int sae_check_sizes(int64_t d_in, int64_t d_sae, const char *file, char *err);

/* Per-row run-time normalisation (SAELens normalize_activations):
   in:  x_n = (x - shift) * in_scale        (layer_norm divides by std + eps)
   out: y   = y_n * out_scale + shift
   shift/in_scale/out_scale are (T). With no run-time normalisation the three
   are 0, 1, 1. */
void sae_norm_coeffs(const sae_dict *d, const float *x, int T, float *shift, float *in_scale, float *out_scale);

/* Pre-activation of one latent for one normalised, b_dec-shifted row x_c
   (d_in) and the activation value it gives (not valid for topk, whose value
   depends on the other latents). */
float sae_latent_value(const sae_dict *d, const float *x_c, int latent);

/* Bounded string copy that always terminates. */
void sae_strlcpy(char *dst, const char *src, size_t n);

#endif
