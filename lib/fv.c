/* fv.c - task vectors and function vectors (see fv.h). */
#include "fv.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "metrics.h"
#include "sample.h"
#include "steer.h"

/* -------------------------------------------------------------- dataset --- */

void fv_dataset_free(fv_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) { free(d->input[i]); free(d->output[i]); }
    free(d->input);
    free(d->output);
    memset(d, 0, sizeof *d);
}

int fv_dataset_load(fv_dataset *d, const char *path, char *err) {
    memset(d, 0, sizeof *d);
    char *text;
    size_t len;
    int rc = ss_read_file(path, &text, &len, err);
    if (rc) return rc;
    if (!ss_utf8_valid(text, len)) { free(text); return ss_fail(err, SS_EINPUT, "%s: not valid UTF-8", path); }
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j || !cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return ss_fail(err, SS_EINPUT, "%s: not a JSON list of {\"input\": ..., \"output\": ...}", path);
    }
    int n = cJSON_GetArraySize(j);
    if (n == 0) { cJSON_Delete(j); return ss_fail(err, SS_EINPUT, "%s: empty dataset", path); }
    d->input = calloc((size_t)n, sizeof(char *));
    d->output = calloc((size_t)n, sizeof(char *));
    if (!d->input || !d->output) { cJSON_Delete(j); fv_dataset_free(d); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(it, "input");
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(it, "output");
        if (!cJSON_IsObject(it) || !cJSON_IsString(x) || !cJSON_IsString(y)) {
            rc = ss_fail(err, SS_EINPUT, "%s: item %d: want {\"input\": string, \"output\": string}", path, i);
            break;
        }
        if (!x->valuestring[0] || !y->valuestring[0]) {
            rc = ss_fail(err, SS_EINPUT, "%s: item %d: empty input or output", path, i);
            break;
        }
        d->input[i] = strdup(x->valuestring);
        d->output[i] = strdup(y->valuestring);
        d->n = ++i;
    }
    cJSON_Delete(j);
    if (rc) fv_dataset_free(d);
    return rc;
}

/* -------------------------------------------------------------- prompts --- */

void fv_prompts_free(fv_prompt *p, int n) {
    if (!p) return;
    for (int i = 0; i < n; i++) free(p[i].ids);
    free(p);
}

char *fv_prompt_text(const fv_dataset *d, int q, const int *shots, int n_shots, const int *perm) {
    size_t cap = 64 + strlen(d->input[q]);
    for (int i = 0; i < n_shots; i++) cap += strlen(d->input[shots[i]]) + strlen(d->output[shots[perm ? perm[i] : i]]) + 16;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < n_shots; i++)
        p += sprintf(p, "Q: %s\nA: %s\n\n", d->input[shots[i]], d->output[perm ? shots[perm[i]] : shots[i]]);
    sprintf(p, "Q: %s\nA:", d->input[q]);
    return s;
}

int fv_prompt_make(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const char *text, int q, int bos,
                   fv_prompt *p, char *err) {
    memset(p, 0, sizeof *p);
    int *raw = NULL, nraw = 0, rc;
    if ((rc = tok_encode(tok, text, strlen(text), &raw, &nraw, err))) return rc;
    int n = nraw + (bos ? 1 : 0);
    if (n > m->cfg.n_positions) {
        free(raw);
        return ss_fail(err, SS_EINPUT, "prompt for item %d has %d tokens, more than n_positions (%d): use fewer --shots", q, n,
                       m->cfg.n_positions);
    }
    p->ids = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!p->ids) { free(raw); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if (bos) p->ids[0] = m->cfg.bos_id;
    if (nraw) memcpy(p->ids + (bos ? 1 : 0), raw, (size_t)nraw * sizeof(int));
    free(raw);
    p->n = n;
    p->item = q;
    /* answer: first token of " " + output */
    size_t L = strlen(d->output[q]);
    char *ans = malloc(L + 2);
    if (!ans) return ss_fail(err, SS_ERUNTIME, "out of memory");
    ans[0] = ' ';
    memcpy(ans + 1, d->output[q], L + 1);
    int *a = NULL, na = 0;
    rc = tok_encode(tok, ans, L + 1, &a, &na, err);
    free(ans);
    if (rc) return rc;
    if (na < 1) { free(a); return ss_fail(err, SS_EINPUT, "item %d: answer has no tokens", q); }
    p->answer = a[0];
    free(a);
    if (p->n < 2) return ss_fail(err, SS_EINPUT, "item %d: prompt has fewer than 2 tokens", q);
    return SS_OK;
}

/* ---------------------------------------------------------------- hooks --- */

/* Read, write or add one row at an absolute position (pos < 0: the last
   position of every forward call). */
enum { ROW_READ, ROW_SET, ROW_ADD };
typedef struct {
    int op;
    int pos;
    int off, len;          /* the slice of the row touched: [off, off+len) */
    float *dst;            /* ROW_READ: (len) */
    const float *src;      /* ROW_SET / ROW_ADD: (len) */
} row_hook;

static int row_hook_fn(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    row_hook *r = ctx;
    (void)hp;
    int p = r->pos < 0 ? pos0 + T - 1 : r->pos;
    if (p < pos0 || p >= pos0 + T) return SS_OK;
    if (r->off + r->len > width) return ss_fail(err, SS_ERUNTIME, "row hook: slice past width %d", width);
    float *row = act + (size_t)(p - pos0) * width + r->off;
    if (r->op == ROW_READ) memcpy(r->dst, row, (size_t)r->len * sizeof(float));
    else if (r->op == ROW_SET) memcpy(row, r->src, (size_t)r->len * sizeof(float));
    else for (int j = 0; j < r->len; j++) row[j] += r->src[j];
    return SS_OK;
}

static int max_len(const fv_prompt *P, int n) {
    int mx = 1;
    for (int i = 0; i < n; i++) if (P[i].n > mx) mx = P[i].n;
    return mx;
}

static int check_layer(const gpt2_model *m, int layer, char *err) {
    if (layer < 0 || layer >= m->cfg.n_layer)
        return ss_fail(err, SS_EINPUT, "--layer %d out of range: the model has layers 0..%d", layer, m->cfg.n_layer - 1);
    return SS_OK;
}

/* ------------------------------------------------------ building blocks --- */

int fv_last_logits(const gpt2_model *m, const fv_prompt *P, int n, int mode, int layer, const float *vec,
                   float *logits, char *err) {
    int rc = SS_OK, V = m->cfg.vocab_size, C = m->cfg.n_embd;
    if (mode != FV_NONE && (rc = check_layer(m, layer, err))) return rc;
    gpt2_state *s = NULL;
    if ((rc = gpt2_state_build(&s, m, max_len(P, n), err))) return rc;
    for (int i = 0; i < n && !rc; i++) {
        row_hook rh = {mode == FV_ADD ? ROW_ADD : ROW_SET, P[i].n - 1, 0, C, NULL, vec};
        gpt2_clear_hooks(s);
        gpt2_state_reset(s);
        if (mode != FV_NONE) {
            gpt2_hook_point hp = {GPT2_HOOK_RESID_POST, layer};
            if ((rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh, 0, err))) break;
        }
        rc = gpt2_forward(s, P[i].ids, P[i].n, logits + (size_t)i * V, 0, err);
    }
    gpt2_state_free(s);
    return rc;
}

int fv_mean_resid(const gpt2_model *m, const fv_prompt *P, int n, int layer, float *h, char *err) {
    int rc, C = m->cfg.n_embd;
    if ((rc = check_layer(m, layer, err))) return rc;
    gpt2_state *s = NULL;
    float *row = malloc((size_t)C * sizeof(float));   /* (C) */
    double *acc = calloc((size_t)C, sizeof(double));  /* (C) */
    if (!row || !acc) { free(row); free(acc); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if ((rc = gpt2_state_build(&s, m, max_len(P, n), err))) { free(row); free(acc); return rc; }
    for (int i = 0; i < n && !rc; i++) {
        row_hook rh = {ROW_READ, P[i].n - 1, 0, C, row, NULL};
        gpt2_hook_point hp = {GPT2_HOOK_RESID_POST, layer};
        gpt2_clear_hooks(s);
        gpt2_state_reset(s);
        if ((rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh, 0, err))) break;
        gpt2_stop_after_hooks(s);
        if ((rc = gpt2_forward(s, P[i].ids, P[i].n, NULL, 0, err))) break;
        for (int j = 0; j < C; j++) acc[j] += row[j];
    }
    for (int j = 0; j < C; j++) h[j] = (float)(acc[j] / n);
    gpt2_state_free(s);
    free(row);
    free(acc);
    return rc;
}

int fv_mean_z(const gpt2_model *m, const fv_prompt *P, int n, float *zbar, char *err) {
    int rc, C = m->cfg.n_embd, L = m->cfg.n_layer;
    gpt2_state *s = NULL;
    float *rows = ss_malloc2((size_t)L, (size_t)C * sizeof(float));  /* (L, C) one prompt */
    double *acc = ss_calloc((size_t)L * C, sizeof(double));           /* (L, C) */
    row_hook *rh = calloc((size_t)L, sizeof(row_hook));               /* (L) */
    if (!rows || !acc || !rh) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = gpt2_state_build(&s, m, max_len(P, n), err))) goto done;
    for (int i = 0; i < n && !rc; i++) {
        gpt2_clear_hooks(s);
        gpt2_state_reset(s);
        for (int l = 0; l < L && !rc; l++) {
            rh[l] = (row_hook){ROW_READ, P[i].n - 1, 0, C, rows + (size_t)l * C, NULL};
            gpt2_hook_point hp = {GPT2_HOOK_ATTN_Z, l};
            rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh[l], 0, err);
        }
        if (rc || (rc = gpt2_forward(s, P[i].ids, P[i].n, NULL, 0, err))) break;
        for (size_t k = 0; k < (size_t)L * C; k++) acc[k] += rows[k];
    }
    if (!rc) for (size_t k = 0; k < (size_t)L * C; k++) zbar[k] = (float)(acc[k] / n);
done:
    gpt2_state_free(s);
    free(rows);
    free(acc);
    free(rh);
    return rc;
}

int fv_cie(const gpt2_model *m, const fv_prompt *P, int n, const float *zbar, float *cie, char *err) {
    int rc, C = m->cfg.n_embd, L = m->cfg.n_layer, NH = m->cfg.n_head, HS = C / NH, V = m->cfg.vocab_size;
    gpt2_state *s = NULL;
    float *logits = malloc((size_t)V * sizeof(float));            /* (V) */
    double *acc = ss_calloc((size_t)L * NH, sizeof(double));       /* (L, NH) */
    if (!logits || !acc) { free(logits); free(acc); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if ((rc = gpt2_state_build(&s, m, max_len(P, n), err))) goto done;
    for (int i = 0; i < n && !rc; i++) {
        const fv_prompt *p = &P[i];
        int last = p->n - 1;
        gpt2_clear_hooks(s);
        gpt2_state_reset(s);
        /* the prefix once; then the last token from the cache, per head */
        if ((rc = gpt2_forward(s, p->ids, last, NULL, 0, err))) break;
        if ((rc = gpt2_forward(s, p->ids + last, 1, logits, 0, err))) break;
        double p0 = exp(met_logprob(logits, V, p->answer));
        for (int l = 0; l < L && !rc; l++)
            for (int h = 0; h < NH && !rc; h++) {
                row_hook rh = {ROW_SET, last, h * HS, HS, NULL, zbar + (size_t)l * C + (size_t)h * HS};
                gpt2_hook_point hp = {GPT2_HOOK_ATTN_Z, l};
                gpt2_clear_hooks(s);
                s->pos = last;   /* drop the last position from the cache; the prefix stays */
                if ((rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh, 0, err))) break;
                if ((rc = gpt2_forward(s, p->ids + last, 1, logits, 0, err))) break;
                acc[(size_t)l * NH + h] += exp(met_logprob(logits, V, p->answer)) - p0;
            }
    }
    if (!rc) for (int k = 0; k < L * NH; k++) cie[k] = (float)(acc[k] / n);
done:
    gpt2_state_free(s);
    free(logits);
    free(acc);
    return rc;
}

void fv_top_heads(const float *cie, int L, int NH, int K, int *heads) {
    int N = L * NH;
    char *taken = calloc((size_t)N, 1);
    for (int k = 0; k < K && k < N; k++) {
        int best = -1;
        for (int i = 0; i < N; i++)
            if (!taken[i] && (best < 0 || cie[i] > cie[best])) best = i;   /* ties: lowest index */
        taken[best] = 1;
        heads[2 * k] = best / NH;
        heads[2 * k + 1] = best % NH;
    }
    free(taken);
}

int fv_vector(const gpt2_model *m, const float *zbar, const int *heads, int K, float *fv, char *err) {
    int C = m->cfg.n_embd, L = m->cfg.n_layer, NH = m->cfg.n_head, HS = C / NH;
    double *acc = calloc((size_t)C, sizeof(double));  /* (C) */
    char *layer_used = calloc((size_t)L, 1);
    if (!acc || !layer_used) { free(acc); free(layer_used); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    for (int k = 0; k < K; k++) {
        int l = heads[2 * k], h = heads[2 * k + 1];
        if (l < 0 || l >= L || h < 0 || h >= NH) {
            free(acc); free(layer_used);
            return ss_fail(err, SS_EINPUT, "head (%d, %d) out of range (%d layers, %d heads)", l, h, L, NH);
        }
        const float *z = zbar + (size_t)l * C + (size_t)h * HS;              /* (HS) */
        if (gpt2_head_out(m, l, h, z, acc)) {                               /* head h's slice of W_O */
            free(acc); free(layer_used);
            return ss_fail(err, SS_ERUNTIME, "out of memory");
        }
        layer_used[l] = 1;
    }
    for (int l = 0; l < L; l++)
        if (layer_used[l] && m->layers[l].proj_b) for (int j = 0; j < C; j++) acc[j] += m->layers[l].proj_b[j];
    for (int j = 0; j < C; j++) fv[j] = (float)acc[j];
    free(acc);
    free(layer_used);
    return SS_OK;
}

/* ---------------------------------------------------------- experiments --- */

void fv_opts_default(fv_opts *o) {
    memset(o, 0, sizeof *o);
    o->layer = -1;
    o->shots = 5;
    o->n_prompts = 20;
    o->n_eval = 50;
    o->top_k = 10;
    o->bos = 1;
    o->seed = 0;
    o->n_examples = 3;
    o->max_new = 8;
}

void fv_result_free(fv_result *r) {
    if (!r) return;
    free(r->vec);
    free(r->cie);
    free(r->heads);
    for (int i = 0; i < r->n_ex; i++) { free(r->ex[i].zero_shot); free(r->ex[i].steered); }
    memset(r, 0, sizeof *r);
}

static uint64_t rng_next(uint64_t *s) {   /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rng_below(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

/* The prompt sets of one experiment. */
typedef struct {
    fv_prompt *mean_clean, *mean_shuf;   /* (n_prompts) ICL prompts, and their shuffled-label twins */
    fv_prompt *ev_zero, *ev_icl, *ev_shuf; /* (n_eval) */
    int n_prompts, n_eval;
} prompt_sets;

static void sets_free(prompt_sets *ps) {
    fv_prompts_free(ps->mean_clean, ps->n_prompts);
    fv_prompts_free(ps->mean_shuf, ps->n_prompts);
    fv_prompts_free(ps->ev_zero, ps->n_eval);
    fv_prompts_free(ps->ev_icl, ps->n_eval);
    fv_prompts_free(ps->ev_shuf, ps->n_eval);
    memset(ps, 0, sizeof *ps);
}

/* An ICL prompt for query q and its shuffled-label twin. */
static int make_pair(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o, int q,
                     uint64_t *rng, fv_prompt *clean, fv_prompt *shuf, char *err) {
    int N = o->shots, rc;
    int *pool = malloc((size_t)d->n * sizeof(int)), *shots = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *perm = malloc((size_t)(N ? N : 1) * sizeof(int));
    if (!pool || !shots || !perm) { free(pool); free(shots); free(perm); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    int np = 0;
    for (int i = 0; i < d->n; i++) if (i != q) pool[np++] = i;
    for (int k = 0; k < N; k++) {           /* partial Fisher-Yates */
        int j = k + rng_below(rng, np - k);
        int t = pool[k]; pool[k] = pool[j]; pool[j] = t;
        shots[k] = pool[k];
    }
    for (int k = 0; k < N; k++) perm[k] = k;
    for (int k = N - 1; k > 0; k--) { int j = rng_below(rng, k + 1); int t = perm[k]; perm[k] = perm[j]; perm[j] = t; }
    int ident = 1;
    for (int k = 0; k < N; k++) ident &= perm[k] == k;
    if (ident && N > 1) for (int k = 0; k < N; k++) perm[k] = (k + 1) % N;   /* never the identity */
    char *t1 = fv_prompt_text(d, q, shots, N, NULL), *t2 = fv_prompt_text(d, q, shots, N, perm);
    rc = !t1 || !t2 ? ss_fail(err, SS_ERUNTIME, "out of memory") : SS_OK;
    if (!rc) rc = fv_prompt_make(m, tok, d, t1, q, o->bos, clean, err);
    if (!rc && shuf) rc = fv_prompt_make(m, tok, d, t2, q, o->bos, shuf, err);
    free(t1); free(t2); free(pool); free(shots); free(perm);
    return rc;
}

static int build_sets(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                      prompt_sets *ps, char *err) {
    memset(ps, 0, sizeof *ps);
    int rc;
    if ((rc = check_layer(m, o->layer, err))) return rc;
    if (o->shots < 0 || o->shots >= d->n)
        return ss_fail(err, SS_EINPUT, "--shots %d: the dataset has %d items, need more than the shots", o->shots, d->n);
    if (o->n_prompts < 1 || o->n_eval < 1) return ss_fail(err, SS_EINPUT, "need at least one prompt and one eval query");
    ps->n_eval = o->n_eval < d->n ? o->n_eval : d->n;
    ps->n_prompts = o->n_prompts;
    int *order = malloc((size_t)d->n * sizeof(int));
    ps->mean_clean = calloc((size_t)ps->n_prompts, sizeof(fv_prompt));
    ps->mean_shuf = calloc((size_t)ps->n_prompts, sizeof(fv_prompt));
    ps->ev_zero = calloc((size_t)ps->n_eval, sizeof(fv_prompt));
    ps->ev_icl = calloc((size_t)ps->n_eval, sizeof(fv_prompt));
    ps->ev_shuf = calloc((size_t)ps->n_eval, sizeof(fv_prompt));
    if (!order || !ps->mean_clean || !ps->mean_shuf || !ps->ev_zero || !ps->ev_icl || !ps->ev_shuf) {
        free(order); sets_free(ps);
        return ss_fail(err, SS_ERUNTIME, "out of memory");
    }
    uint64_t rng = o->seed * 0x2545F4914F6CDD1Dull + 1;
    for (int i = 0; i < d->n; i++) order[i] = i;
    for (int i = d->n - 1; i > 0; i--) { int j = rng_below(&rng, i + 1); int t = order[i]; order[i] = order[j]; order[j] = t; }
    rc = SS_OK;
    /* eval queries first in the order, the ICL prompts for the means after them */
    for (int i = 0; i < ps->n_eval && !rc; i++) {
        int q = order[i];
        char *t = fv_prompt_text(d, q, NULL, 0, NULL);
        rc = t ? fv_prompt_make(m, tok, d, t, q, o->bos, &ps->ev_zero[i], err) : ss_fail(err, SS_ERUNTIME, "out of memory");
        free(t);
        if (!rc) rc = make_pair(m, tok, d, o, q, &rng, &ps->ev_icl[i], &ps->ev_shuf[i], err);
    }
    for (int i = 0; i < ps->n_prompts && !rc; i++)
        rc = make_pair(m, tok, d, o, order[(ps->n_eval + i) % d->n], &rng, &ps->mean_clean[i], &ps->mean_shuf[i], err);
    free(order);
    if (rc) sets_free(ps);
    return rc;
}

/* accuracy and mean log p(answer) of last-position logits (n, V) */
static void score(const gpt2_model *m, const fv_prompt *P, int n, const float *logits, double *acc, double *logp) {
    int V = m->cfg.vocab_size;
    double a = 0, lp = 0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (row[v] > row[best]) best = v;
        a += best == P[i].answer;
        lp += met_logprob(row, V, P[i].answer);
    }
    *acc = a / n;
    if (logp) *logp = lp / n;
}

/* Evaluate under an intervention; logits scratch (n, V). */
static int eval_set(const gpt2_model *m, const fv_prompt *P, int n, int mode, int layer, const float *vec, float *logits,
                    double *acc, double *logp, char *err) {
    int rc = fv_last_logits(m, P, n, mode, layer, vec, logits, err);
    if (!rc) score(m, P, n, logits, acc, logp);
    return rc;
}

/* Greedy continuation of a prompt, with vec added (mode FV_ADD: at the
   layer's last position of every step, generated tokens included) or
   replacing the prompt's last position (FV_REPLACE), or none. */
static int greedy(const gpt2_model *m, const tokenizer *tok, const fv_prompt *p, int mode, int layer, const float *vec,
                  int max_new, char **text, char *err) {
    gpt2_state *s = NULL;
    sampler *smp = NULL;
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = 0;
    int *out = calloc((size_t)max_new + 1, sizeof(int)), n_out = 0, rc;
    int n_ctx = p->n + max_new;
    if (n_ctx > m->cfg.n_positions) n_ctx = m->cfg.n_positions, max_new = n_ctx - p->n;
    if ((rc = gpt2_state_build(&s, m, n_ctx, err)) || (rc = sampler_build(&smp, m->cfg.vocab_size, &sp, err))) goto done;
    row_hook rh = {mode == FV_ADD ? ROW_ADD : ROW_SET, mode == FV_ADD ? -1 : p->n - 1, 0, m->cfg.n_embd, NULL, vec};
    if (mode != FV_NONE) {
        gpt2_hook_point hp = {GPT2_HOOK_RESID_POST, layer};
        if ((rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh, 0, err))) goto done;
    }
    if ((rc = generate(s, smp, p->ids, p->n, max_new, 0, out, &n_out, NULL, NULL, NULL, err))) goto done;
    rc = tok_decode(tok, out, n_out, text, err);
done:
    free(out);
    sampler_free(smp);
    gpt2_state_free(s);
    return rc;
}

static int examples(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                    const prompt_sets *ps, int mode, const float *vec, fv_result *r, char *err) {
    int n = o->n_examples < ps->n_eval ? o->n_examples : ps->n_eval;
    if (n > 16) n = 16;
    int rc = SS_OK;
    for (int i = 0; i < n && !rc; i++) {
        fv_example *e = &r->ex[i];
        const fv_prompt *p = &ps->ev_zero[i];
        snprintf(e->input, sizeof e->input, "%s", d->input[p->item]);
        snprintf(e->output, sizeof e->output, "%s", d->output[p->item]);
        r->n_ex = i + 1;
        if ((rc = greedy(m, tok, p, FV_NONE, o->layer, NULL, o->max_new, &e->zero_shot, err))) break;
        rc = greedy(m, tok, p, mode, o->layer, vec, o->max_new, &e->steered, err);
    }
    return rc;
}

/* zero-shot, ICL and shuffled baselines shared by both experiments */
static int baselines(const gpt2_model *m, const prompt_sets *ps, float *logits, fv_result *r, char *err) {
    int rc;
    r->n_eval = ps->n_eval;
    r->n_prompts = ps->n_prompts;
    if ((rc = eval_set(m, ps->ev_zero, ps->n_eval, FV_NONE, 0, NULL, logits, &r->zero_shot_acc, &r->zero_shot_logprob, err)))
        return rc;
    if ((rc = eval_set(m, ps->ev_icl, ps->n_eval, FV_NONE, 0, NULL, logits, &r->icl_acc, &r->icl_logprob, err))) return rc;
    return eval_set(m, ps->ev_shuf, ps->n_eval, FV_NONE, 0, NULL, logits, &r->shuffled_acc, NULL, err);
}

int fv_task_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                       fv_result *r, char *err) {
    memset(r, 0, sizeof *r);
    prompt_sets ps;
    int rc = build_sets(m, tok, d, o, &ps, err);
    if (rc) return rc;
    float *logits = ss_malloc2((size_t)ps.n_eval, (size_t)m->cfg.vocab_size * sizeof(float));  /* (n_eval, V) */
    r->vec = malloc((size_t)m->cfg.n_embd * sizeof(float));                                     /* (C) h */
    if (!logits || !r->vec) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = baselines(m, &ps, logits, r, err))) goto done;
    if ((rc = fv_mean_resid(m, ps.mean_clean, ps.n_prompts, o->layer, r->vec, err))) goto done;
    if ((rc = eval_set(m, ps.ev_zero, ps.n_eval, FV_REPLACE, o->layer, r->vec, logits, &r->patched_acc,
                       &r->patched_logprob, err)))
        goto done;
    rc = examples(m, tok, d, o, &ps, FV_REPLACE, r->vec, r, err);
done:
    free(logits);
    sets_free(&ps);
    if (rc) fv_result_free(r);
    return rc;
}

int fv_function_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                           fv_result *r, char *err) {
    memset(r, 0, sizeof *r);
    int L = m->cfg.n_layer, NH = m->cfg.n_head, C = m->cfg.n_embd;
    if (o->top_k < 1 || o->top_k > L * NH)
        return ss_fail(err, SS_EINPUT, "--heads %d out of range: the model has %d heads in all", o->top_k, L * NH);
    prompt_sets ps;
    int rc = build_sets(m, tok, d, o, &ps, err);
    if (rc) return rc;
    float *logits = ss_malloc2((size_t)ps.n_eval, (size_t)m->cfg.vocab_size * sizeof(float));  /* (n_eval, V) */
    float *zbar = ss_malloc2((size_t)L, (size_t)C * sizeof(float));                            /* (L, C) */
    r->vec = malloc((size_t)C * sizeof(float));                                                 /* (C) FV */
    r->cie = ss_malloc2((size_t)L, (size_t)NH * sizeof(float));                                 /* (L, NH) */
    r->heads = malloc((size_t)o->top_k * 2 * sizeof(int));                                      /* (K, 2) */
    if (!logits || !zbar || !r->vec || !r->cie || !r->heads) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    r->n_heads = o->top_k;
    if ((rc = baselines(m, &ps, logits, r, err))) goto done;
    if ((rc = fv_mean_z(m, ps.mean_clean, ps.n_prompts, zbar, err))) goto done;
    if ((rc = fv_cie(m, ps.mean_shuf, ps.n_prompts, zbar, r->cie, err))) goto done;
    fv_top_heads(r->cie, L, NH, o->top_k, r->heads);
    if ((rc = fv_vector(m, zbar, r->heads, o->top_k, r->vec, err))) goto done;
    if ((rc = eval_set(m, ps.ev_zero, ps.n_eval, FV_ADD, o->layer, r->vec, logits, &r->patched_acc, &r->patched_logprob, err)))
        goto done;
    rc = examples(m, tok, d, o, &ps, FV_ADD, r->vec, r, err);
done:
    free(logits);
    free(zbar);
    sets_free(&ps);
    if (rc) fv_result_free(r);
    return rc;
}
