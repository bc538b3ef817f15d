/* sample.h - next-token sampling: greedy, temperature, top-k, top-p,
 * repetition / frequency / presence penalties, reproducible with a seed. */
#ifndef SS_SAMPLE_H
#define SS_SAMPLE_H

#include "common.h"

typedef struct {
    float temperature;         /* 0 = greedy (argmax) */
    int top_k;                 /* 0 = off */
    float top_p;               /* 1 = off */
    float repetition_penalty;  /* HF: logit>0 ? logit/p : logit*p for seen tokens; 1 = off */
    float frequency_penalty;   /* logit -= f * count(token) in generated text; 0 = off */
    float presence_penalty;    /* logit -= p if token generated before; 0 = off */
    uint64_t seed;
} sampler_params;

void sampler_params_default(sampler_params *p);
/* Validate ranges (NaN, negative temperature, top_p outside (0,1], ...). */
int sampler_params_check(const sampler_params *p, char *err);

typedef struct sampler sampler;
int sampler_build(sampler **out, int vocab, const sampler_params *p, char *err);
void sampler_free(sampler *s);
/* Forget the history and reseed (same seed => same tokens). */
void sampler_reset(sampler *s);
/* Note a token of the context (prompt or generated): feeds the penalties.
   `generated` tokens count for frequency/presence penalties; all count for
   repetition penalty. */
void sampler_observe(sampler *s, int id, int generated);
/* Pick the next token from logits (V); logits may be modified. */
int sampler_sample(sampler *s, float *logits);

#endif
