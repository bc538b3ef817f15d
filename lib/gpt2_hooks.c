/* gpt2_hooks.c - TransformerLens hook names <-> hook points. */
#include "gpt2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-layer hooks: the text after "blocks.L." */
static const struct { const char *suffix; gpt2_hook_kind kind; } LAYER_HOOKS[] = {
    {"hook_resid_pre", GPT2_HOOK_RESID_PRE}, {"hook_resid_mid", GPT2_HOOK_RESID_MID},
    {"hook_resid_post", GPT2_HOOK_RESID_POST}, {"hook_attn_out", GPT2_HOOK_ATTN_OUT},
    {"hook_mlp_out", GPT2_HOOK_MLP_OUT}, {"attn.hook_z", GPT2_HOOK_ATTN_Z},
    {"attn.hook_pattern", GPT2_HOOK_PATTERN}, {"mlp.hook_post", GPT2_HOOK_MLP_POST},
};
#define N_LAYER_HOOKS (int)(sizeof LAYER_HOOKS / sizeof LAYER_HOOKS[0])

int gpt2_hook_parse(const gpt2_config *cfg, const char *name, gpt2_hook_point *hp, char *err) {
    if (!name) return ss_fail(err, SS_EINPUT, "hook name missing");
    hp->layer = -1;
    if (strcmp(name, "hook_embed") == 0) { hp->kind = GPT2_HOOK_EMBED; return SS_OK; }
    if (strcmp(name, "hook_pos_embed") == 0) {
        if (cfg->arch != GPT2_ARCH_GPT2)
            return ss_fail(err, SS_EINPUT, "hook 'hook_pos_embed' does not exist for %s: it has rotary position "
                           "embeddings, no learned position embedding", gpt2_arch_name(cfg->arch));
        hp->kind = GPT2_HOOK_POS_EMBED;
        return SS_OK;
    }
    if (strcmp(name, "ln_final.hook_normalized") == 0) { hp->kind = GPT2_HOOK_LN_FINAL; return SS_OK; }
    if (strncmp(name, "blocks.", 7) == 0) {
        const char *p = name + 7;
        char *end;
        if (*p >= '0' && *p <= '9') {
            long l = strtol(p, &end, 10);
            if (*end == '.' && end - p <= 6) {
                for (int i = 0; i < N_LAYER_HOOKS; i++) {
                    if (strcmp(end + 1, LAYER_HOOKS[i].suffix) != 0) continue;
                    if (l < 0 || l >= cfg->n_layer)
                        return ss_fail(err, SS_EINPUT, "hook '%.64s': layer %ld out of range (model has %d layers)",
                                       name, l, cfg->n_layer);
                    if (LAYER_HOOKS[i].kind == GPT2_HOOK_RESID_MID && cfg->parallel)
                        return ss_fail(err, SS_EINPUT, "hook '%.64s' does not exist for this %s model: attention and MLP "
                                       "run in parallel on the block input, so there is no residual stream between them "
                                       "(use hook_resid_pre or hook_resid_post)", name, gpt2_arch_name(cfg->arch));
                    hp->kind = LAYER_HOOKS[i].kind;
                    hp->layer = (int)l;
                    return SS_OK;
                }
            }
        }
    }
    return ss_fail(err, SS_EINPUT,
                   "unknown hook name '%.64s' (expected e.g. blocks.0.hook_resid_pre, blocks.0.attn.hook_z, hook_embed, ln_final.hook_normalized)",
                   name);
}

void gpt2_hook_name(const gpt2_hook_point *hp, char *buf, size_t n) {
    switch (hp->kind) {
    case GPT2_HOOK_EMBED: snprintf(buf, n, "hook_embed"); return;
    case GPT2_HOOK_POS_EMBED: snprintf(buf, n, "hook_pos_embed"); return;
    case GPT2_HOOK_LN_FINAL: snprintf(buf, n, "ln_final.hook_normalized"); return;
    default: break;
    }
    for (int i = 0; i < N_LAYER_HOOKS; i++)
        if (LAYER_HOOKS[i].kind == hp->kind) { snprintf(buf, n, "blocks.%d.%s", hp->layer, LAYER_HOOKS[i].suffix); return; }
    snprintf(buf, n, "?");
}

int gpt2_hook_width(const gpt2_config *cfg, const gpt2_hook_point *hp) {
    switch (hp->kind) {
    case GPT2_HOOK_MLP_POST: return cfg->n_inner > 0 ? cfg->n_inner : 4 * cfg->n_embd;
    case GPT2_HOOK_PATTERN: return 0;
    default: return cfg->n_embd;   /* z is NH*HS == C */
    }
}

int gpt2_hook_is_residual(const gpt2_hook_point *hp) {
    switch (hp->kind) {
    case GPT2_HOOK_EMBED: case GPT2_HOOK_POS_EMBED: case GPT2_HOOK_RESID_PRE: case GPT2_HOOK_RESID_MID:
    case GPT2_HOOK_RESID_POST: case GPT2_HOOK_ATTN_OUT: case GPT2_HOOK_MLP_OUT:
        return 1;
    default:
        return 0;
    }
}
