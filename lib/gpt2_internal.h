/* gpt2_internal.h - what the model's own files share (not for sae/ or cmd/). */
#ifndef SS_GPT2_INTERNAL_H
#define SS_GPT2_INTERNAL_H

#include <cjson/cJSON.h>
#include "gpt2.h"

/* config.json of model_type "gptj" or "gpt_neox" (arch_config.c). */
int gpt2_config_other(gpt2_config *cfg, const cJSON *root, const char *path, const char *model_type, char *err);

/* Tensor binding (gpt2_weights.c), for the per-architecture loaders. */
const st_tensor *gpt2_find_tensor(const gpt2_model *m, const char *name, const st_file **file);
/* A matrix of shape (d0, d1), kept in its dtype (f32/f16/bf16) in the mmap. */
int gpt2_bind_mat(gpt2_model *m, const char *name, int64_t d0, int64_t d1, int out_major, gpt2_mat *out, char *err);
/* A tensor as f32 (converted into an owned buffer unless it is f32 already). */
int gpt2_bind_f32(gpt2_model *m, const char *name, int ndim, int64_t d0, int64_t d1, const float **out, char *err);
/* Weights of GPT-J / GPT-NeoX (arch_weights.c). */
int gpt2_bind_other(gpt2_model *m, char *err);

#endif
