/* patch.c - activation patching (see analysis.h).
 *
 * The order of the patched runs is what lets them share work. A run patched
 * at (layer L, position p) changes only positions >= p of blocks >= L, so it
 * is run from gpt2_state_rewind(p) + gpt2_forward_from(L): the corrupted
 * run's KV cache supplies every earlier position, and its blocks < L at the
 * positions >= p are still the corrupted ones. Within a layer the positions
 * go from last to first, so each run's prefix is still untouched; after a
 * layer the positions it overwrote in blocks >= L are restored with one
 * unpatched run from layer L.
 */
#include "analysis.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[] = {"resid_pre", "attn_out", "mlp_out", "z"};

int patch_kind_parse(const char *s, patch_kind *k) {
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, KIND_NAMES[i])) { *k = (patch_kind)i; return 1; }
    return 0;
}

const char *patch_kind_name(patch_kind k) { return (unsigned)k < 4 ? KIND_NAMES[k] : "?"; }

static gpt2_hook_kind hook_of(patch_kind k) {
    switch (k) {
    case PATCH_RESID_PRE: return GPT2_HOOK_RESID_PRE;
    case PATCH_ATTN_OUT: return GPT2_HOOK_ATTN_OUT;
    case PATCH_MLP_OUT: return GPT2_HOOK_MLP_OUT;
    default: return GPT2_HOOK_ATTN_Z;
    }
}

typedef struct {
    int C, T, HS;
    float *clean;          /* (L, T, C) clean activations at the patched hook */
    float *corr_resid;     /* (L, T, C) corrupted blocks.L.hook_resid_pre */
    float *final_row;      /* (C) ln_final.hook_normalized of the last position */
    /* the patch in force: layer, absolute position (-1 = every position),
       head (-1 = the whole row) */
    int active, layer, pos, head;
} patch_ctx;

/* Captures go through this small record: where rows of one hook land. */
typedef struct { float *base; int C, T; } cap_dst;

static int cap_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)err;
    cap_dst *d = ctx;
    memcpy(d->base + ((size_t)hp->layer * d->T + pos0) * d->C, act, (size_t)T * width * sizeof(float));
    return SS_OK;
}

static int final_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)hp; (void)pos0; (void)err;
    patch_ctx *pc = ctx;
    memcpy(pc->final_row, act + (size_t)(T - 1) * width, (size_t)width * sizeof(float));
    return SS_OK;
}

static int patch_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)err;
    patch_ctx *pc = ctx;
    if (!pc->active || hp->layer != pc->layer) return SS_OK;
    for (int t = 0; t < T; t++) {
        int p = pos0 + t;
        if (pc->pos >= 0 && p != pc->pos) continue;
        const float *src = pc->clean + ((size_t)hp->layer * pc->T + p) * pc->C;
        float *dst = act + (size_t)t * width;
        if (pc->head < 0) memcpy(dst, src, (size_t)pc->C * sizeof(float));
        else memcpy(dst + pc->head * pc->HS, src + pc->head * pc->HS, (size_t)pc->HS * sizeof(float));
    }
    return SS_OK;
}

/* The metric from the last position's ln_final row (and the logits buffer). */
static double metric(const gpt2_model *m, const patch_spec *sp, const float *row, float *logits) {
    int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    if (sp->metric == PATCH_LOGDIFF) {
        /* the logits buffer (max(V, 2C)) holds the two unembedding rows */
        float *a = logits, *w = logits + C;
        gpt2_mat_row(&m->unembed, sp->answer, C, a);
        gpt2_mat_row(&m->unembed, sp->wrong, C, w);
        double d = 0;
        for (int i = 0; i < C; i++) d += (double)row[i] * ((double)a[i] - (double)w[i]);
        if (m->unembed_b) d += (double)m->unembed_b[sp->answer] - (double)m->unembed_b[sp->wrong];
        return d;
    }
    gpt2_unembed_dirs(m, row, 1, logits);
    if (m->unembed_b)
        for (int i = 0; i < V; i++) logits[i] += m->unembed_b[i];
    double mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[sp->answer] - mx - log(sum);
}

/* The plain way, for comparison: every patched run from scratch. */
static int full_runs(const gpt2_model *m, const int *corrupted, int T, const patch_spec *sp, patch_ctx *pc,
                     gpt2_state *s, float *logits, patch_result *r, char *err) {
    int L = m->cfg.n_layer, NH = m->cfg.n_head, nh = sp->kind == PATCH_Z ? NH : 1, rc = SS_OK;
    int by_pos = sp->kind != PATCH_Z || sp->per_position;
    gpt2_hook_point hf = {GPT2_HOOK_LN_FINAL, -1};
    double t0 = ss_now();
    for (int l = 0; l < L && !rc; l++) {
        gpt2_clear_hooks(s);
        gpt2_hook_point h = {hook_of(sp->kind), l};
        if ((rc = gpt2_add_hook(s, &hf, final_hook, pc, 0, err)) || (rc = gpt2_add_hook(s, &h, patch_hook, pc, 0, err))) break;
        pc->layer = l;
        for (int p = by_pos ? T - 1 : 0; p >= 0 && !rc; p--)
            for (int hh = 0; hh < nh && !rc; hh++) {
                size_t at = r->ndim == 3 ? ((size_t)l * NH + hh) * T + p : sp->kind == PATCH_Z ? (size_t)l * NH + hh : (size_t)l * T + p;
                gpt2_state_reset(s);
                pc->active = 1; pc->pos = by_pos ? p : -1; pc->head = sp->kind == PATCH_Z ? hh : -1;
                if ((rc = gpt2_forward(s, corrupted, T, NULL, 0, err))) break;
                r->values[at] = (float)metric(m, sp, pc->final_row, logits);
                r->runs++;
            }
    }
    r->seconds = ss_now() - t0;
    gpt2_state_free(s);
    free(pc->clean); free(pc->corr_resid); free(pc->final_row); free(logits);
    if (rc) patch_result_free(r);
    return rc;
}

void patch_result_free(patch_result *r) {
    free(r->values);
    memset(r, 0, sizeof *r);
}

int patch_run(const gpt2_model *m, const int *clean, const int *corrupted, int T, const patch_spec *sp,
              patch_result *r, char *err) {
    memset(r, 0, sizeof *r);
    const gpt2_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size, rc;
    if (T <= 0) return ss_fail(err, SS_EINPUT, "patch: no tokens");
    if ((unsigned)sp->kind > PATCH_Z) return ss_fail(err, SS_EINPUT, "patch: unknown kind");
    if (sp->per_position && sp->kind != PATCH_Z)
        return ss_fail(err, SS_EINPUT, "patch: per-position applies to kind z (the other kinds are per position already)");
    if (sp->answer < 0 || sp->answer >= V || (sp->metric == PATCH_LOGDIFF && (sp->wrong < 0 || sp->wrong >= V)))
        return ss_fail(err, SS_EINPUT, "patch: answer/wrong token outside the vocabulary (%d)", V);
    for (int t = 0; t < T; t++)
        if (clean[t] < 0 || clean[t] >= V || corrupted[t] < 0 || corrupted[t] >= V)
            return ss_fail(err, SS_EINPUT, "patch: token id at position %d outside the vocabulary (%d)", t, V);

    patch_ctx pc = {.C = C, .T = T, .HS = C / NH};
    gpt2_state *s = NULL;
    float *logits = NULL;
    int by_pos = sp->kind != PATCH_Z || sp->per_position, nh = sp->kind == PATCH_Z ? NH : 1;
    r->ndim = sp->kind == PATCH_Z && sp->per_position ? 3 : 2;
    r->shape[0] = L;
    r->shape[1] = sp->kind == PATCH_Z ? NH : T;
    r->shape[2] = r->ndim == 3 ? T : 1;
    size_t nval = (size_t)L * r->shape[1] * r->shape[2];
    r->values = ss_malloc2(nval, sizeof(float));
    pc.clean = ss_malloc2((size_t)L * T, (size_t)C * sizeof(float));
    pc.corr_resid = ss_malloc2((size_t)L * T, (size_t)C * sizeof(float));
    pc.final_row = ss_malloc2((size_t)C, sizeof(float));
    logits = ss_malloc2((size_t)(V > 2 * C ? V : 2 * C), sizeof(float));   /* logprob: logits; logdiff: 2 unembedding rows */
    if (!r->values || !pc.clean || !pc.corr_resid || !pc.final_row || !logits) {
        rc = ss_fail(err, SS_ERUNTIME, "patch: out of memory");
        goto fail;
    }
    if ((rc = gpt2_state_build(&s, m, T, err))) goto fail;

    /* 1. clean run: the activations to patch in, and the clean metric */
    cap_dst dclean = {pc.clean, C, T}, dcorr = {pc.corr_resid, C, T};
    gpt2_hook_point hp = {GPT2_HOOK_LN_FINAL, -1};
    if ((rc = gpt2_add_hook(s, &hp, final_hook, &pc, 0, err))) goto fail;
    for (int l = 0; l < L; l++) {
        gpt2_hook_point h = {hook_of(sp->kind), l};
        if ((rc = gpt2_add_hook(s, &h, cap_hook, &dclean, 0, err))) goto fail;
    }
    if ((rc = gpt2_forward(s, clean, T, NULL, 0, err))) goto fail;
    r->clean = metric(m, sp, pc.final_row, logits);

    /* 2. corrupted run: its KV cache and residual streams are the base of every patched run */
    gpt2_clear_hooks(s);
    gpt2_state_reset(s);
    if ((rc = gpt2_add_hook(s, &hp, final_hook, &pc, 0, err))) goto fail;
    for (int l = 0; l < L; l++) {
        gpt2_hook_point h = {GPT2_HOOK_RESID_PRE, l};
        if ((rc = gpt2_add_hook(s, &h, cap_hook, &dcorr, 0, err))) goto fail;
    }
    if ((rc = gpt2_forward(s, corrupted, T, NULL, 0, err))) goto fail;
    r->corrupted = metric(m, sp, pc.final_row, logits);

    int d = 0;
    while (d < T && clean[d] == corrupted[d]) d++;
    r->first_diff = d;
    if (sp->full_runs) return full_runs(m, corrupted, T, sp, &pc, s, logits, r, err);

    /* 3. the patched runs */
    double t0 = ss_now();
    for (int l = 0; l < L; l++) {
        gpt2_clear_hooks(s);
        gpt2_hook_point h = {hook_of(sp->kind), l};
        if ((rc = gpt2_add_hook(s, &hp, final_hook, &pc, 0, err)) ||
            (rc = gpt2_add_hook(s, &h, patch_hook, &pc, 0, err)))
            goto fail;
        pc.layer = l;
        const float *base = pc.corr_resid + (size_t)l * T * C;
        if (by_pos) {
            for (int p = T - 1; p >= 0; p--) {
                for (int hh = 0; hh < nh; hh++) {
                    size_t at = r->ndim == 3 ? ((size_t)l * NH + hh) * T + p : (size_t)l * T + p;
                    if (p < d) { r->values[at] = (float)r->corrupted; r->skipped++; continue; }
                    gpt2_state_rewind(s, p);
                    pc.active = 1; pc.pos = p; pc.head = sp->kind == PATCH_Z ? hh : -1;
                    if ((rc = gpt2_forward_from(s, l, base + (size_t)p * C, T - p, NULL, 0, err))) goto fail;
                    r->values[at] = (float)metric(m, sp, pc.final_row, logits);
                    r->runs++;
                }
            }
            if (d < T && l + 1 < L) {   /* put back the corrupted blocks >= l at positions >= d */
                pc.active = 0;
                gpt2_state_rewind(s, d);
                if ((rc = gpt2_forward_from(s, l, base + (size_t)d * C, T - d, NULL, 0, err))) goto fail;
            }
        } else {
            for (int hh = 0; hh < nh; hh++) {
                size_t at = (size_t)l * NH + hh;
                if (d >= T) { r->values[at] = (float)r->corrupted; r->skipped++; continue; }
                gpt2_state_rewind(s, d);
                pc.active = 1; pc.pos = -1; pc.head = hh;
                if ((rc = gpt2_forward_from(s, l, base + (size_t)d * C, T - d, NULL, 0, err))) goto fail;
                r->values[at] = (float)metric(m, sp, pc.final_row, logits);
                r->runs++;
            }
        }
    }
    r->seconds = ss_now() - t0;
    for (size_t i = 0; i < nval; i++)
        if (!isfinite(r->values[i]) || !isfinite(r->clean) || !isfinite(r->corrupted)) {
            rc = ss_fail(err, SS_EINPUT, "%s: the patched runs produced a non-finite metric", m->dir);
            goto fail;
        }
    rc = SS_OK;
    goto done;
fail:
    patch_result_free(r);
done:
    gpt2_state_free(s);
    free(pc.clean);
    free(pc.corr_resid);
    free(pc.final_row);
    free(logits);
    return rc;
}
