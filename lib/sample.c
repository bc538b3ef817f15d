/* sample.c - next-token sampling. The order of operations follows HF's
 * logits processors: repetition penalty, frequency/presence penalties,
 * temperature, top-k, top-p, then a draw from the softmax. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sampler {
    sampler_params p;
    int V;
    uint64_t rng;
    int *seen;     /* (V) occurrences in prompt + generated */
    int *gen;      /* (V) occurrences in generated text */
    int *idx;      /* (V) candidate indices, sorted by logit */
    float *prob;   /* (V) */
};

void sampler_params_default(sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
}

int sampler_params_check(const sampler_params *p, char *err) {
    if (!isfinite(p->temperature) || p->temperature < 0 || p->temperature > 100)
        return ss_fail(err, SS_EINPUT, "--temperature must be a number in [0, 100]");
    if (p->top_k < 0) return ss_fail(err, SS_EINPUT, "--top-k must be >= 0");
    if (!isfinite(p->top_p) || p->top_p <= 0 || p->top_p > 1)
        return ss_fail(err, SS_EINPUT, "--top-p must be in (0, 1]");
    if (!isfinite(p->repetition_penalty) || p->repetition_penalty <= 0 || p->repetition_penalty > 100)
        return ss_fail(err, SS_EINPUT, "--repetition-penalty must be in (0, 100]");
    if (!isfinite(p->frequency_penalty) || fabsf(p->frequency_penalty) > 100)
        return ss_fail(err, SS_EINPUT, "--frequency-penalty must be in [-100, 100]");
    if (!isfinite(p->presence_penalty) || fabsf(p->presence_penalty) > 100)
        return ss_fail(err, SS_EINPUT, "--presence-penalty must be in [-100, 100]");
    return SS_OK;
}

int sampler_build(sampler **out, int vocab, const sampler_params *p, char *err) {
    *out = NULL;
    int rc = sampler_params_check(p, err);
    if (rc) return rc;
    sampler *s = ss_calloc(1, sizeof *s);
    if (!s) return ss_fail(err, SS_ERUNTIME, "out of memory");
    s->p = *p;
    s->V = vocab;
    s->seen = ss_calloc((size_t)vocab, sizeof(int));
    s->gen = ss_calloc((size_t)vocab, sizeof(int));
    s->idx = ss_calloc((size_t)vocab, sizeof(int));
    s->prob = ss_calloc((size_t)vocab, sizeof(float));
    if (!s->seen || !s->gen || !s->idx || !s->prob) { sampler_free(s); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    sampler_reset(s);
    *out = s;
    return SS_OK;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->seen); free(s->gen); free(s->idx); free(s->prob);
    free(s);
}

void sampler_reset(sampler *s) {
    memset(s->seen, 0, (size_t)s->V * sizeof(int));
    memset(s->gen, 0, (size_t)s->V * sizeof(int));
    /* splitmix64 of the seed: distinct, well-mixed starting states */
    uint64_t z = s->p.seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s->rng = (z ^ (z >> 31)) | 1;
}

void sampler_observe(sampler *s, int id, int generated) {
    if (id < 0 || id >= s->V) return;
    s->seen[id]++;
    if (generated) s->gen[id]++;
}

/* xorshift64*: uniform float in [0, 1) */
static float rand_uniform(sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static const float *g_sort_logits;
static int cmp_desc(const void *a, const void *b) {
    float x = g_sort_logits[*(const int *)a], y = g_sort_logits[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

int sampler_sample(sampler *s, float *logits) {
    const sampler_params *p = &s->p;
    int V = s->V;
    for (int i = 0; i < V; i++) {
        if (p->repetition_penalty != 1.0f && s->seen[i])
            logits[i] = logits[i] > 0 ? logits[i] / p->repetition_penalty : logits[i] * p->repetition_penalty;
        if (s->gen[i]) logits[i] -= p->frequency_penalty * (float)s->gen[i] + p->presence_penalty;
    }
    if (p->temperature == 0.0f) { /* greedy: first maximum, as torch.argmax */
        int best = 0;
        for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
    for (int i = 0; i < V; i++) logits[i] /= p->temperature;
    /* candidates sorted by logit when top-k / top-p need them */
    int n = V;
    for (int i = 0; i < V; i++) s->idx[i] = i;
    if (p->top_k > 0 || p->top_p < 1.0f) {
        g_sort_logits = logits;
        qsort(s->idx, (size_t)V, sizeof(int), cmp_desc);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    }
    float mx = logits[s->idx[0]];
    if (!(p->top_k > 0 || p->top_p < 1.0f))
        for (int i = 1; i < V; i++) if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) { s->prob[i] = expf(logits[s->idx[i]] - mx); sum += s->prob[i]; }
    if (p->top_p < 1.0f) { /* keep the smallest prefix whose mass reaches top_p */
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= p->top_p) { keep = i + 1; break; }
        }
        n = keep;
        sum = 0.0;
        for (int i = 0; i < n; i++) sum += s->prob[i];
    }
    double r = rand_uniform(s) * sum, acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (r < acc) return s->idx[i];
    }
    return s->idx[n - 1];
}
