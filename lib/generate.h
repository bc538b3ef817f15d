/* generate.h - prefill + decode loop on a gpt2_state with its hooks. */
#ifndef SS_GENERATE_H
#define SS_GENERATE_H

#include "gpt2.h"
#include "sample.h"

typedef struct {
    double prefill_s, decode_s;
    int prefill_tokens, new_tokens;
} gen_timing;

/* Called after each new token; return non-zero to stop early. */
typedef int (*gen_token_cb)(void *ctx, int id);

/* Reset s's KV cache, prefill prompt (n_prompt >= 1), then generate up to
 * max_new tokens into out (capacity max_new). Stops early at eos if
 * stop_at_eos. Hooks registered on s run during prefill and on every
 * generated token. Total length must fit s->n_ctx. */
int generate(gpt2_state *s, sampler *smp, const int *prompt, int n_prompt, int max_new,
             int stop_at_eos, int *out, int *n_out, gen_token_cb cb, void *cbctx,
             gen_timing *timing, char *err);

#endif
