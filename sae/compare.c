/* compare.c - SAE-latent vs vector steering (see compare.h). */
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "vectors.h"

void cmp_runs_free(cmp_run *runs, int n) {
    if (!runs) return;
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < runs[i].n_gens; g++) free(runs[i].gens[g]);
        free(runs[i].gens);
    }
    free(runs);
}

int cmp_load_targets(const tokenizer *tok, const char *path, int **ids_out, int *n_out, char *err) {
    *ids_out = NULL;
    *n_out = 0;
    char *text;
    size_t len;
    int rc = ss_read_file(path, &text, &len, err);
    if (rc) return rc;
    if (!ss_utf8_valid(text, len)) { free(text); return ss_fail(err, SS_EINPUT, "%s: not valid UTF-8", path); }
    int *ids = malloc((len + 1) * sizeof(int)), n = 0, line = 0;
    for (char *s = text, *nl; s && *s && !rc; s = nl) {
        line++;
        nl = strchr(s, '\n');
        if (nl) *nl++ = '\0';
        while (*s == ' ' || *s == '\t') s++;
        size_t L = strlen(s);
        while (L && (s[L - 1] == '\r' || s[L - 1] == ' ' || s[L - 1] == '\t')) s[--L] = '\0';
        if (!L) continue;
        char *w = malloc(L + 2);
        w[0] = ' ';
        memcpy(w + 1, s, L + 1);
        int *t = NULL, nt = 0;
        rc = tok_encode(tok, w, L + 1, &t, &nt, err);
        free(w);
        if (!rc && nt < 1) rc = ss_fail(err, SS_EINPUT, "%s line %d: word has no tokens", path, line);
        if (!rc) ids[n++] = t[0];
        free(t);
    }
    free(text);
    if (!rc && n == 0) rc = ss_fail(err, SS_EINPUT, "%s: no target words", path);
    if (rc) { free(ids); return rc; }
    *ids_out = ids;
    *n_out = n;
    return SS_OK;
}

/* Score one generation: full = prompt + gen. Adds into the run's sums. */
typedef struct {
    double kl, nll, effect;      /* sums over generated positions (effect: target words) */
    double sentiment;            /* sum over prompts */
    int tokens;
} sums;

static int score_one(const cmp_config *c, gpt2_state *s_int, gpt2_state *s_base, const int *full, int n_p, int n_g,
                     float *lg_s, float *lg_u, double *scratch, sums *acc, char *err) {
    int V = c->m->cfg.vocab_size, T = n_p + n_g - 1, rc;
    /* logits at positions 0..T-1; position n_p-1+k predicts gen token k */
    gpt2_state_reset(s_int);
    gpt2_state_reset(s_base);
    if ((rc = gpt2_forward(s_int, full, T, lg_s, 1, err))) return rc;
    if ((rc = gpt2_forward(s_base, full, T, lg_u, 1, err))) return rc;
    for (int k = 0; k < n_g; k++) {
        size_t row = (size_t)(n_p - 1 + k) * V;
        double *ls = scratch, *lu = scratch + V;
        met_log_softmax(lg_s + row, V, ls);
        met_log_softmax(lg_u + row, V, lu);
        acc->kl += met_kl(ls, lu, V);
        acc->nll -= lu[full[n_p + k]];
        if (c->effect == CMP_EFFECT_TARGET) {
            double e = 0;
            for (int w = 0; w < c->n_targets; w++) e += ls[c->targets[w]] - lu[c->targets[w]];
            acc->effect += e / c->n_targets;
        }
        acc->tokens++;
    }
    return SS_OK;
}

static int one_run(const cmp_config *c, const char *method, float scale, gpt2_state *s_int, gpt2_state *s_base,
                   sampler *smp, int **pids, int *np, int *full, float *lg_s, float *lg_u, double *scratch, cmp_run *r,
                   char *err) {
    int rc = SS_OK, C = c->m->cfg.n_embd;
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->scale = scale;
    r->gens = calloc((size_t)c->n_prompts, sizeof(char *));
    if (!r->gens) return ss_fail(err, SS_ERUNTIME, "out of memory");
    /* the intervention */
    sae_intervention *iv = NULL;
    steer_add add;
    gpt2_clear_hooks(s_int);
    float vnorm = vec_norm(c->vec, C), dnorm = sae_latent_dec_norm(c->sae, c->latent);
    if (!strcmp(method, "sae")) {
        float value = c->match_norm ? (dnorm > 0 ? scale * vnorm / dnorm : 0.0f) : scale;
        sae_edit e = {c->latent, SAE_EDIT_BOOST, value};
        r->norm = fabs((double)value) * dnorm;
        if ((rc = sae_intervention_new(&iv, c->sae, &e, 1, NULL, SAE_REPLACE_NONE, err))) return rc;
        if ((rc = sae_intervention_attach(iv, s_int, err))) { sae_intervention_free(iv); return rc; }
    } else if (!strcmp(method, "vector")) {
        memset(&add, 0, sizeof add);
        add.vec = c->vec;
        add.rows = 1;
        add.width = C;
        add.scale = scale;
        add.pos.mode = POS_ALL;
        r->norm = fabs((double)scale) * vnorm;
        if ((rc = gpt2_add_hook(s_int, &c->vec_hook, steer_add_hook, &add, 0, err))) return rc;
    }
    sums acc = {0};
    for (int i = 0; i < c->n_prompts && !rc; i++) {
        int n_g = 0;
        memcpy(full, pids[i], (size_t)np[i] * sizeof(int));
        rc = generate(s_int, smp, pids[i], np[i], c->max_new, 0, full + np[i], &n_g, NULL, NULL, NULL, err);
        if (rc) break;
        r->n_gens = i + 1;
        if ((rc = tok_decode(c->tok, full + np[i], n_g, &r->gens[i], err))) break;
        if (c->effect == CMP_EFFECT_SENTIMENT) acc.sentiment += met_afinn_score(c->afinn, r->gens[i], NULL);
        if (n_g > 0) rc = score_one(c, s_int, s_base, full, np[i], n_g, lg_s, lg_u, scratch, &acc, err);
    }
    gpt2_clear_hooks(s_int);
    sae_intervention_free(iv);
    if (rc) return rc;
    r->n_tokens = acc.tokens;
    int t = acc.tokens ? acc.tokens : 1;
    r->kl = acc.kl / t;
    r->perplexity = exp(acc.nll / t);
    r->effect = c->effect == CMP_EFFECT_TARGET ? acc.effect / t
              : c->effect == CMP_EFFECT_SENTIMENT ? acc.sentiment / c->n_prompts : 0.0;
    return SS_OK;
}

int cmp_run_all(const cmp_config *c, cmp_run **runs_out, int *n_runs_out, char *err) {
    *runs_out = NULL;
    *n_runs_out = 0;
    int rc = SS_OK, V = c->m->cfg.vocab_size;
    if (c->n_prompts < 1) return ss_fail(err, SS_EINPUT, "no prompts");
    if (c->n_scales < 1) return ss_fail(err, SS_EINPUT, "no scales");
    if (c->latent < 0 || c->latent >= c->sae->d_sae)
        return ss_fail(err, SS_EINPUT, "--latent %d out of range: %s has %d latents", c->latent, c->sae->path, c->sae->d_sae);
    if (gpt2_hook_width(&c->m->cfg, &c->vec_hook) != c->m->cfg.n_embd)
        return ss_fail(err, SS_EINPUT, "the vector's hook must be a d_model-wide (residual) hook");
    if (c->effect == CMP_EFFECT_TARGET && (!c->targets || c->n_targets < 1))
        return ss_fail(err, SS_EINPUT, "no target words");
    if (c->effect == CMP_EFFECT_SENTIMENT && !c->afinn) return ss_fail(err, SS_EINPUT, "no AFINN lexicon");
    int n_runs = 1 + 2 * c->n_scales;
    cmp_run *runs = calloc((size_t)n_runs, sizeof(cmp_run));
    int **pids = calloc((size_t)c->n_prompts, sizeof(int *));   /* (n_prompts) token ids */
    int *np = calloc((size_t)c->n_prompts, sizeof(int));
    gpt2_state *s_int = NULL, *s_base = NULL;
    sampler *smp = NULL;
    int *full = NULL;
    float *lg_s = NULL, *lg_u = NULL;
    double *scratch = NULL;
    if (!runs || !pids || !np) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    int longest = 0;
    for (int i = 0; i < c->n_prompts && !rc; i++) {
        rc = vec_encode(c->m, c->tok, c->prompts[i], c->bos, &pids[i], &np[i], err);
        if (!rc && np[i] + c->max_new > c->m->cfg.n_positions)
            rc = ss_fail(err, SS_EINPUT, "prompt %d (%d tokens) + --max-new-tokens %d exceeds n_positions %d", i + 1, np[i],
                         c->max_new, c->m->cfg.n_positions);
        if (!rc && np[i] > longest) longest = np[i];
    }
    if (rc) goto done;
    int N = longest + c->max_new;
    full = malloc((size_t)N * sizeof(int));                           /* (N) prompt + generation */
    lg_s = ss_malloc2((size_t)N, (size_t)V * sizeof(float));          /* (N, V) steered logits */
    lg_u = ss_malloc2((size_t)N, (size_t)V * sizeof(float));          /* (N, V) unsteered logits */
    scratch = malloc((size_t)2 * V * sizeof(double));                 /* (2, V) log-probs */
    if (!full || !lg_s || !lg_u || !scratch) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = gpt2_state_build(&s_int, c->m, N, err)) || (rc = gpt2_state_build(&s_base, c->m, N, err)) ||
        (rc = sampler_build(&smp, V, &c->sp, err)))
        goto done;
    int k = 0;
    rc = one_run(c, "none", 0.0f, s_int, s_base, smp, pids, np, full, lg_s, lg_u, scratch, &runs[k++], err);
    for (int i = 0; i < c->n_scales && !rc; i++) {
        rc = one_run(c, "sae", c->scales[i], s_int, s_base, smp, pids, np, full, lg_s, lg_u, scratch, &runs[k++], err);
        if (!rc)
            rc = one_run(c, "vector", c->scales[i], s_int, s_base, smp, pids, np, full, lg_s, lg_u, scratch, &runs[k++], err);
    }
    if (!rc) { *runs_out = runs; *n_runs_out = n_runs; runs = NULL; }
done:
    cmp_runs_free(runs, n_runs);
    for (int i = 0; pids && i < c->n_prompts; i++) free(pids[i]);
    free(pids); free(np); free(full); free(lg_s); free(lg_u); free(scratch);
    sampler_free(smp);
    gpt2_state_free(s_int);
    gpt2_state_free(s_base);
    return rc;
}
