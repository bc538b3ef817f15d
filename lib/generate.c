/* generate.c - prefill the prompt, then decode one token at a time from the
 * KV cache. Hooks on the state run at every step, so interventions steer the
 * generated tokens as well as the prompt. */
#include "generate.h"

#include <stdlib.h>

int generate(gpt2_state *s, sampler *smp, const int *prompt, int n_prompt, int max_new,
             int stop_at_eos, int *out, int *n_out, gen_token_cb cb, void *cbctx,
             gen_timing *timing, char *err) {
    const gpt2_config *c = &s->m->cfg;
    *n_out = 0;
    if (n_prompt < 1) return ss_fail(err, SS_EINPUT, "empty prompt (use BOS or some text)");
    if (max_new < 0) return ss_fail(err, SS_EINPUT, "--max-new-tokens must be >= 0");
    if (n_prompt + max_new > s->n_ctx)
        return ss_fail(err, SS_EINPUT, "prompt (%d tokens) + --max-new-tokens (%d) exceeds the context of %d positions",
                       n_prompt, max_new, s->n_ctx);
    float *logits = malloc((size_t)c->vocab_size * sizeof(float));
    if (!logits) return ss_fail(err, SS_ERUNTIME, "out of memory");
    gpt2_state_reset(s);
    sampler_reset(smp);
    for (int i = 0; i < n_prompt; i++) sampler_observe(smp, prompt[i], 0);

    double t0 = ss_now();
    int rc = max_new > 0 ? gpt2_forward(s, prompt, n_prompt, logits, 0, err)
                         : gpt2_forward(s, prompt, n_prompt, NULL, 0, err);
    double t1 = ss_now();
    if (timing) { timing->prefill_s = t1 - t0; timing->prefill_tokens = n_prompt; }
    for (int i = 0; i < max_new && !rc; i++) {
        int id = sampler_sample(smp, logits);
        out[(*n_out)++] = id;
        sampler_observe(smp, id, 1);
        if (cb && cb(cbctx, id)) break;
        if (stop_at_eos && id == c->eos_id) break;
        if (i + 1 < max_new) rc = gpt2_forward(s, &id, 1, logits, 0, err);
    }
    if (timing) { timing->decode_s = ss_now() - t1; timing->new_tokens = *n_out; }
    free(logits);
    return rc;
}
