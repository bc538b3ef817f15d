/* sae_steer.c - latent interventions as gpt2 hooks, and activation capture.
 *
 * At the SAE's hook, on every selected position (prompt and generated):
 *   clamp  f_i := v keeping the reconstruction error:
 *          x' = x + decode(f with f_i = v) - decode(f)
 *             = x + (v - f_i(x)) * W_dec[i] * out_scale(x)
 *          (out_scale is 1 unless the SAE normalises its input at run time,
 *          in which case the delta is mapped back into the input's space);
 *          ablate is clamp 0.
 *   boost  x' = x + c * W_dec[i]   (added directly, no normalisation)
 *   replace-by-reconstruction: x' = decode(f')  or, with the error term,
 *          x' = decode(f') + (x - decode(f)),  f' = f with the clamps applied;
 *          boosts are added afterwards.
 * The hook is registered with the SAE's centring, so it sees (and edits) the
 * centred residual when the SAE was trained on it.
 */
#include "sae_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sae_intervention {
    const sae_dict *d;
    sae_edit *edits;            /* (n_edits) */
    int n_edits, n_clamps;
    steer_positions pos;
    int all_positions;
    sae_replace replace;
    /* scratch, grown to the largest T seen */
    int cap;
    int *rows;                  /* (cap) selected row indices */
    float *xs;                  /* (cap, C) gathered rows */
    float *f;                   /* (cap, S) codes */
    float *rec;                 /* (cap, C) decode(f) */
    float *rec2;                /* (cap, C) decode(f') */
    float *coef;                /* (3 * cap) norm shift / in_scale / out_scale */
    float *x_c;                 /* (C) one prepared row */
    float *cur;                 /* (n_edits) current value of a clamped latent */
};

int sae_intervention_new(sae_intervention **out, const sae_dict *d, const sae_edit *edits, int n_edits,
                         const steer_positions *pos, sae_replace replace, char *err) {
    *out = NULL;
    if (n_edits < 0 || (n_edits > 0 && !edits)) return ss_fail(err, SS_EINPUT, "bad edit list");
    if (replace < SAE_REPLACE_NONE || replace > SAE_REPLACE_RECON_ERR)
        return ss_fail(err, SS_EINPUT, "unknown replace mode");
    for (int e = 0; e < n_edits; e++) {
        if (edits[e].latent < 0 || edits[e].latent >= d->d_sae)
            return ss_fail(err, SS_EINPUT, "%s: latent %d out of range [0, %d)", d->path, edits[e].latent, d->d_sae);
        if (edits[e].kind != SAE_EDIT_BOOST && edits[e].kind != SAE_EDIT_CLAMP)
            return ss_fail(err, SS_EINPUT, "latent %d: unknown edit kind", edits[e].latent);
        if (!isfinite(edits[e].value))
            return ss_fail(err, SS_EINPUT, "latent %d: %s value is not finite", edits[e].latent,
                           edits[e].kind == SAE_EDIT_BOOST ? "scale" : "clamp");
    }
    sae_intervention *iv = calloc(1, sizeof *iv);
    if (!iv) return ss_fail(err, SS_ERUNTIME, "out of memory");
    iv->d = d;
    iv->n_edits = n_edits;
    iv->edits = ss_malloc2((size_t)(n_edits ? n_edits : 1), sizeof(sae_edit));
    iv->cur = ss_malloc2((size_t)(n_edits ? n_edits : 1), sizeof(float));
    iv->x_c = ss_malloc2((size_t)d->d_in, sizeof(float));
    if (!iv->edits || !iv->cur || !iv->x_c) { sae_intervention_free(iv); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if (n_edits) memcpy(iv->edits, edits, (size_t)n_edits * sizeof(sae_edit));
    for (int e = 0; e < n_edits; e++) iv->n_clamps += edits[e].kind == SAE_EDIT_CLAMP;
    if (pos) iv->pos = *pos;
    iv->all_positions = !pos || pos->mode == POS_ALL;
    iv->replace = replace;
    *out = iv;
    return SS_OK;
}

void sae_intervention_free(sae_intervention *iv) {
    if (!iv) return;
    free(iv->edits); free(iv->cur); free(iv->x_c);
    free(iv->rows); free(iv->xs); free(iv->f); free(iv->rec); free(iv->rec2); free(iv->coef);
    free(iv);
}

int sae_intervention_attach(sae_intervention *iv, gpt2_state *s, char *err) {
    gpt2_hook_point hp;
    int rc = sae_check_model(iv->d, &s->m->cfg, &hp, err);
    if (rc) return rc;
    return gpt2_add_hook(s, &hp, sae_intervention_hook, iv, sae_hook_center(iv->d, &hp), err);
}

static int grow(sae_intervention *iv, int T, char *err) {
    if (T <= iv->cap) return SS_OK;
    size_t C = (size_t)iv->d->d_in, S = (size_t)iv->d->d_sae, n = (size_t)T;
    int full = iv->replace != SAE_REPLACE_NONE || (iv->n_clamps && iv->d->arch == SAE_TOPK);
    free(iv->rows); free(iv->xs); free(iv->f); free(iv->rec); free(iv->rec2); free(iv->coef);
    iv->rows = ss_malloc2(n, sizeof(int));
    iv->coef = ss_malloc2(3 * n, sizeof(float));
    iv->xs = ss_malloc2(n * C, sizeof(float));
    iv->f = full ? ss_malloc2(n * S, sizeof(float)) : NULL;
    iv->rec = full ? ss_malloc2(n * C, sizeof(float)) : NULL;
    iv->rec2 = full ? ss_malloc2(n * C, sizeof(float)) : NULL;
    iv->cap = 0;
    if (!iv->rows || !iv->coef || !iv->xs || (full && (!iv->f || !iv->rec || !iv->rec2)))
        return ss_fail(err, SS_ERUNTIME, "%s: out of memory for the SAE hook (%d positions)", iv->d->path, T);
    iv->cap = T;
    return SS_OK;
}

/* Index of the first edit before e that clamps the same latent (its running
   value is shared), or e itself. */
static int clamp_slot(const sae_intervention *iv, int e) {
    for (int j = 0; j < e; j++)
        if (iv->edits[j].kind == SAE_EDIT_CLAMP && iv->edits[j].latent == iv->edits[e].latent) return j;
    return e;
}

/* Error-preserving clamps on one row x (C): cur[] holds the latents' current
   values (f_i(x)); adds (v - f_i) W_dec[i] * out_scale per clamp. */
static void apply_clamps(sae_intervention *iv, float *x, float out_scale) {
    const sae_dict *d = iv->d;
    for (int e = 0; e < iv->n_edits; e++) {
        const sae_edit *ed = &iv->edits[e];
        if (ed->kind != SAE_EDIT_CLAMP) continue;
        int slot = clamp_slot(iv, e);
        float delta = (ed->value - iv->cur[slot]) * out_scale;
        iv->cur[slot] = ed->value;
        if (delta != 0.0f) cblas_saxpy(d->d_in, delta, d->W_dec + (size_t)ed->latent * d->d_in, 1, x, 1);
    }
}

int sae_intervention_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    sae_intervention *iv = ctx;
    const sae_dict *d = iv->d;
    int C = d->d_in, S = d->d_sae;
    if (width != C) return ss_fail(err, SS_EINPUT, "%s: hook width %d but the SAE's d_in is %d", d->path, width, C);
    int rc = grow(iv, T, err);
    if (rc) return rc;

    /* which rows of this call are touched */
    int n = 0, last = pos0 + T - 1;
    for (int t = 0; t < T; t++)
        if (iv->all_positions || steer_positions_match(&iv->pos, pos0 + t, last)) iv->rows[n++] = t;
    if (n == 0) return SS_OK;

    if (iv->replace == SAE_REPLACE_NONE && iv->n_clamps && d->arch != SAE_TOPK) {
        /* clamps only need the clamped latents' values: one dot product each */
        for (int r = 0; r < n; r++) {
            float *x = act + (size_t)iv->rows[r] * C;
            float sh, in_s, out_s;
            sae_norm_coeffs(d, x, 1, &sh, &in_s, &out_s);
            for (int j = 0; j < C; j++) {
                float v = (x[j] - sh) * in_s;
                iv->x_c[j] = d->apply_b_dec_to_input ? v - d->b_dec[j] : v;
            }
            for (int e = 0; e < iv->n_edits; e++)
                if (iv->edits[e].kind == SAE_EDIT_CLAMP && clamp_slot(iv, e) == e)
                    iv->cur[e] = sae_latent_value(d, iv->x_c, iv->edits[e].latent);
            apply_clamps(iv, x, out_s);
        }
    } else if (iv->replace != SAE_REPLACE_NONE || iv->n_clamps) {
        /* full encode of the selected rows (one sgemm) */
        for (int r = 0; r < n; r++) memcpy(iv->xs + (size_t)r * C, act + (size_t)iv->rows[r] * C, (size_t)C * sizeof(float));
        if ((rc = sae_encode(d, iv->xs, n, iv->f, err))) return rc;
        if (iv->replace == SAE_REPLACE_NONE) {   /* topk clamps */
            sae_norm_coeffs(d, iv->xs, n, iv->coef, iv->coef + n, iv->coef + 2 * n);
            for (int r = 0; r < n; r++) {
                for (int e = 0; e < iv->n_edits; e++)
                    if (iv->edits[e].kind == SAE_EDIT_CLAMP && clamp_slot(iv, e) == e)
                        iv->cur[e] = iv->f[(size_t)r * S + iv->edits[e].latent];
                apply_clamps(iv, act + (size_t)iv->rows[r] * C, iv->coef[2 * n + r]);
            }
        } else {
            if (iv->replace == SAE_REPLACE_RECON_ERR && (rc = sae_decode(d, iv->f, iv->xs, n, iv->rec, err))) return rc;
            for (int r = 0; r < n; r++)
                for (int e = 0; e < iv->n_edits; e++)
                    if (iv->edits[e].kind == SAE_EDIT_CLAMP) iv->f[(size_t)r * S + iv->edits[e].latent] = iv->edits[e].value;
            if ((rc = sae_decode(d, iv->f, iv->xs, n, iv->rec2, err))) return rc;
            for (int r = 0; r < n; r++) {
                float *x = act + (size_t)iv->rows[r] * C;
                const float *xs = iv->xs + (size_t)r * C, *rec = iv->rec + (size_t)r * C, *rec2 = iv->rec2 + (size_t)r * C;
                if (iv->replace == SAE_REPLACE_RECON_ERR)
                    for (int j = 0; j < C; j++) x[j] = rec2[j] + (xs[j] - rec[j]);
                else
                    memcpy(x, rec2, (size_t)C * sizeof(float));
            }
        }
    }

    /* boosts: add c * W_dec[i] */
    for (int e = 0; e < iv->n_edits; e++) {
        const sae_edit *ed = &iv->edits[e];
        if (ed->kind != SAE_EDIT_BOOST || ed->value == 0.0f) continue;
        const float *w = d->W_dec + (size_t)ed->latent * C;
        for (int r = 0; r < n; r++) cblas_saxpy(C, ed->value, w, 1, act + (size_t)iv->rows[r] * C, 1);
    }
    return SS_OK;
}

/* ------------------------------------------------------------ capture --- */
typedef struct { float *x; int C; } capture_ctx;

static int capture_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    capture_ctx *c = ctx;
    if (width != c->C) return ss_fail(err, SS_EINPUT, "capture: hook width %d, expected %d", width, c->C);
    memcpy(c->x + (size_t)pos0 * c->C, act, (size_t)T * c->C * sizeof(float));
    return SS_OK;
}

/* Blocks the forward pass must run for a hook to fire (as gpt2_stop_after_hooks). */
static int layers_needed(const gpt2_state *s, const gpt2_hook_point *hp) {
    if (hp->kind == GPT2_HOOK_EMBED || hp->kind == GPT2_HOOK_POS_EMBED) return 0;
    if (hp->kind == GPT2_HOOK_RESID_PRE) return hp->layer;
    if (hp->kind == GPT2_HOOK_LN_FINAL) return s->m->cfg.n_layer + 1;
    return hp->layer + 1;
}

int sae_capture(const sae_dict *d, gpt2_state *s, const int *tokens, int T, float *x, char *err) {
    gpt2_hook_point hp;
    int rc = sae_check_model(d, &s->m->cfg, &hp, err);
    if (rc) return rc;
    if (T < 1 || T > s->n_ctx) return ss_fail(err, SS_EINPUT, "%d tokens do not fit the context of %d", T, s->n_ctx);
    capture_ctx c = {x, d->d_in};
    int n_before = s->n_hooks, stop_before = s->stop_layer;
    if ((rc = gpt2_add_hook(s, &hp, capture_hook, &c, sae_hook_center(d, &hp), err))) return rc;
    s->stop_layer = layers_needed(s, &hp);
    gpt2_state_reset(s);
    rc = gpt2_forward(s, tokens, T, NULL, 0, err);
    s->n_hooks = n_before;
    s->stop_layer = stop_before;
    return rc;
}
