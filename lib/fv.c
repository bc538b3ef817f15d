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

/* ------------------------------------------------------------- template --- */

void fv_template_free(fv_template *t) {
    if (!t) return;
    free(t->spec);
    free(t->pre);
    free(t->mid);
    free(t->post);
    memset(t, 0, sizeof *t);
}

int fv_template_parse(fv_template *t, const char *spec, char *err) {
    memset(t, 0, sizeof *t);
    if (!spec) spec = FV_TEMPLATE_DEFAULT;
    size_t n = strlen(spec);
    if (!ss_utf8_valid(spec, n)) return ss_fail(err, SS_EINPUT, "--template: not valid UTF-8");
    /* expand into three parts split at {x} and {y} */
    char *part[3];
    size_t len[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) part[k] = malloc(n + 1);
    t->spec = strdup(spec);
    if (!part[0] || !part[1] || !part[2] || !t->spec) {
        for (int k = 0; k < 3; k++) free(part[k]);
        fv_template_free(t);
        return ss_fail(err, SS_ERUNTIME, "out of memory");
    }
    int cur = 0, rc = SS_OK;   /* cur: 0 before {x}, 1 between, 2 after {y} */
    for (size_t i = 0; i < n && !rc; i++) {
        char c = spec[i];
        if (c == '\\') {
            char e = spec[i + 1];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == '\\') c = '\\';
            else {
                rc = ss_fail(err, SS_EINPUT, "--template: unknown escape '\\%c' at byte %zu (\\n, \\t, \\\\ are known)",
                             e ? e : ' ', i);
                break;
            }
            i++;
        } else if (c == '{' && spec[i + 1] == '{') i++;
        else if (c == '}' && spec[i + 1] == '}') i++;
        else if (c == '{') {
            if (!strncmp(spec + i, "{x}", 3)) {
                if (cur != 0) {
                    rc = ss_fail(err, SS_EINPUT, "--template: %s at byte %zu: {x} must come once, before {y}",
                                 cur == 1 ? "a second {x}" : "{x} after {y}", i);
                    break;
                }
                cur = 1;
                i += 2;
                continue;
            }
            if (!strncmp(spec + i, "{y}", 3)) {
                if (cur != 1) {
                    rc = ss_fail(err, SS_EINPUT, "--template: %s at byte %zu: want {x} and then {y}, once each",
                                 cur == 0 ? "{y} before {x}" : "a second {y}", i);
                    break;
                }
                cur = 2;
                i += 2;
                continue;
            }
            rc = ss_fail(err, SS_EINPUT,
                         "--template: '{' at byte %zu is not {x} or {y} (write {{ for a literal brace)", i);
            break;
        } else if (c == '}') {
            rc = ss_fail(err, SS_EINPUT, "--template: lone '}' at byte %zu (write }} for a literal brace)", i);
            break;
        }
        part[cur][len[cur]++] = c;
    }
    if (!rc && cur == 0) rc = ss_fail(err, SS_EINPUT, "--template has no {x} (the input), e.g. \"Q: {x}\\nA: {y}\\n\\n\"");
    else if (!rc && cur == 1) rc = ss_fail(err, SS_EINPUT, "--template has no {y} (the output), e.g. \"Q: {x}\\nA: {y}\\n\\n\"");
    else if (!rc && len[1] == 0)
        rc = ss_fail(err, SS_EINPUT, "--template: nothing between {x} and {y}: the query would end on the input itself");
    else if (!rc && len[2] == 0)
        rc = ss_fail(err, SS_EINPUT, "--template: nothing after {y}: end it with the separator between examples, e.g. \\n\\n");
    for (int k = 0; k < 3; k++) part[k][len[k]] = '\0';
    if (!rc && len[1] > 0 && part[1][len[1] - 1] == ' ') { t->space = 1; part[1][--len[1]] = '\0'; }
    if (!rc && len[1] == 0)
        rc = ss_fail(err, SS_EINPUT, "--template: only a space between {x} and {y}: the query would end on the input itself");
    t->pre = part[0];
    t->mid = part[1];
    t->post = part[2];
    if (rc) fv_template_free(t);
    return rc;
}

/* the default template, parsed */
static const fv_template DEFAULT_TPL = {(char *)FV_TEMPLATE_DEFAULT, (char *)"Q: ", (char *)"\nA:", (char *)"\n\n", 1};

/* -------------------------------------------------------------- prompts --- */

char *fv_prompt_text(const fv_template *t, const fv_dataset *d, int q, const int *shots, int n_shots, const int *perm) {
    if (!t) t = &DEFAULT_TPL;
    size_t fixed = strlen(t->pre) + strlen(t->mid) + strlen(t->post) + 1;
    size_t cap = fixed + strlen(d->input[q]) + 1;
    for (int i = 0; i < n_shots; i++) cap += fixed + strlen(d->input[shots[i]]) + strlen(d->output[shots[perm ? perm[i] : i]]);
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < n_shots; i++)
        p += sprintf(p, "%s%s%s%s%s%s", t->pre, d->input[shots[i]], t->mid, t->space ? " " : "",
                     d->output[perm ? shots[perm[i]] : shots[i]], t->post);
    sprintf(p, "%s%s%s", t->pre, d->input[q], t->mid);
    return s;
}

int fv_prompt_make(const gpt2_model *m, const tokenizer *tok, const fv_template *t, const fv_dataset *d, const char *text,
                   int q, int bos, fv_prompt *p, char *err) {
    if (!t) t = &DEFAULT_TPL;
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
    /* answer: first token of the output, after the template's space if it has one */
    size_t L = strlen(d->output[q]);
    int sp = t->space ? 1 : 0;
    char *ans = malloc(L + 2);
    if (!ans) return ss_fail(err, SS_ERUNTIME, "out of memory");
    ans[0] = ' ';
    memcpy(ans + sp, d->output[q], L + 1);
    int *a = NULL, na = 0;
    rc = tok_encode(tok, ans, L + (size_t)sp, &a, &na, err);
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

/* ------------------------------------------------------------- progress --- */

typedef struct {
    fv_progress_fn fn;
    void *ctx;
    int64_t done, total;
    const char *phase;
} prog;

static void tick(prog *pr, int64_t n) {
    if (!pr || !pr->fn) return;
    pr->done += n;
    pr->fn(pr->ctx, pr->phase, pr->done, pr->total);
}
static void phase(prog *pr, const char *name) {
    if (pr) pr->phase = name;
}

/* ------------------------------------------------------ building blocks --- */

static int last_logits(const gpt2_model *m, const fv_prompt *P, int n, int mode, int layer, const float *vec,
                       float *logits, prog *pr, char *err) {
    int rc = SS_OK, C = m->cfg.n_embd;
    size_t V = (size_t)m->cfg.vocab_size;
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
        tick(pr, 1);
    }
    gpt2_state_free(s);
    return rc;
}

int fv_last_logits(const gpt2_model *m, const fv_prompt *P, int n, int mode, int layer, const float *vec,
                   float *logits, char *err) {
    return last_logits(m, P, n, mode, layer, vec, logits, NULL, err);
}

static int mean_resid(const gpt2_model *m, const fv_prompt *P, int n, int layer, float *h, prog *pr, char *err) {
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
        tick(pr, 1);
    }
    for (int j = 0; j < C; j++) h[j] = (float)(acc[j] / n);
    gpt2_state_free(s);
    free(row);
    free(acc);
    return rc;
}

int fv_mean_resid(const gpt2_model *m, const fv_prompt *P, int n, int layer, float *h, char *err) {
    return mean_resid(m, P, n, layer, h, NULL, err);
}

static int mean_z(const gpt2_model *m, const fv_prompt *P, int n, float *zbar, prog *pr, char *err) {
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
        tick(pr, 1);
    }
    if (!rc) for (size_t k = 0; k < (size_t)L * C; k++) zbar[k] = (float)(acc[k] / n);
done:
    gpt2_state_free(s);
    free(rows);
    free(acc);
    free(rh);
    return rc;
}

int fv_mean_z(const gpt2_model *m, const fv_prompt *P, int n, float *zbar, char *err) {
    return mean_z(m, P, n, zbar, NULL, err);
}

static int cie_run(const gpt2_model *m, const fv_prompt *P, int n, const float *zbar, int metric, float *cie, prog *pr,
                   char *err) {
    int rc, C = m->cfg.n_embd, L = m->cfg.n_layer, NH = m->cfg.n_head, HS = C / NH, V = m->cfg.vocab_size;
    if (metric != FV_CIE_PROB && metric != FV_CIE_LOGPROB) return ss_fail(err, SS_EINPUT, "unknown CIE metric %d", metric);
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
        double lp0 = met_logprob(logits, V, p->answer), p0 = exp(lp0);
        tick(pr, 1);
        for (int l = 0; l < L && !rc; l++)
            for (int h = 0; h < NH && !rc; h++) {
                row_hook rh = {ROW_SET, last, h * HS, HS, NULL, zbar + (size_t)l * C + (size_t)h * HS};
                gpt2_hook_point hp = {GPT2_HOOK_ATTN_Z, l};
                gpt2_clear_hooks(s);
                s->pos = last;   /* drop the last position from the cache; the prefix stays */
                if ((rc = gpt2_add_hook(s, &hp, row_hook_fn, &rh, 0, err))) break;
                if ((rc = gpt2_forward(s, p->ids + last, 1, logits, 0, err))) break;
                double lp = met_logprob(logits, V, p->answer);
                acc[(size_t)l * NH + h] += metric == FV_CIE_LOGPROB ? lp - lp0 : exp(lp) - p0;
                tick(pr, 1);
            }
    }
    if (!rc) for (int k = 0; k < L * NH; k++) cie[k] = (float)(acc[k] / n);
done:
    gpt2_state_free(s);
    free(logits);
    free(acc);
    return rc;
}

int fv_cie(const gpt2_model *m, const fv_prompt *P, int n, const float *zbar, int metric, float *cie, char *err) {
    return cie_run(m, P, n, zbar, metric, cie, NULL, err);
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
    o->n_eval = 0;
    o->top_k = 10;
    o->bos = 1;
    o->seed = 0;
    o->n_examples = 3;
    o->max_new = 8;
    o->mode = FV_REPLACE;
    o->metric = FV_CIE_PROB;
}

int fv_plan(const fv_opts *o, int n_items, int *n_eval, char *err) {
    if (o->shots < 0) return ss_fail(err, SS_EINPUT, "--shots %d: want 0 or more", o->shots);
    if (o->n_prompts < 1 || o->n_eval < 0) return ss_fail(err, SS_EINPUT, "need at least one ICL prompt and one query");
    int room = n_items - o->shots - 1;   /* evaluation items that leave an ICL pool of shots + 1 */
    if (room < 1)
        return ss_fail(err, SS_EINPUT,
                       "--shots %d: the dataset has %d items; evaluation queries and ICL items are disjoint, so it "
                       "needs at least shots + 2 = %d",
                       o->shots, n_items, o->shots + 2);
    if (o->n_eval == 0) {
        int ne = n_items / 2 < 50 ? n_items / 2 : 50;
        if (ne < 1) ne = 1;
        *n_eval = ne < room ? ne : room;
        return SS_OK;
    }
    if (o->n_eval > room)
        return ss_fail(err, SS_EINPUT,
                       "--n-eval %d with --shots %d: the dataset has %d items; evaluation queries and ICL items are "
                       "disjoint, so it needs n_eval + shots + 1 = %d (use --n-eval %d or fewer)",
                       o->n_eval, o->shots, n_items, o->n_eval + o->shots + 1, room > 0 ? room : 0);
    *n_eval = o->n_eval;
    return SS_OK;
}

void fv_result_free(fv_result *r) {
    if (!r) return;
    free(r->vec);
    free(r->cie);
    free(r->heads);
    free(r->layers);
    free(r->layer_acc);
    free(r->layer_logprob);
    free(r->prompt_example);
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
    int n_prompts, n_eval, n_pool;
    char *example;                       /* text of ev_icl[0] */
} prompt_sets;

static void sets_free(prompt_sets *ps) {
    fv_prompts_free(ps->mean_clean, ps->n_prompts);
    fv_prompts_free(ps->mean_shuf, ps->n_prompts);
    fv_prompts_free(ps->ev_zero, ps->n_eval);
    fv_prompts_free(ps->ev_icl, ps->n_eval);
    fv_prompts_free(ps->ev_shuf, ps->n_eval);
    free(ps->example);
    memset(ps, 0, sizeof *ps);
}

/* An ICL prompt for query q, its shots drawn from pool (np items) without q,
   and its shuffled-label twin. */
static int make_pair(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o, int q,
                     const int *pool_in, int np_in, uint64_t *rng, fv_prompt *clean, fv_prompt *shuf, char **text,
                     char *err) {
    int N = o->shots, rc;
    int *pool = malloc((size_t)(np_in ? np_in : 1) * sizeof(int)), *shots = malloc((size_t)(N ? N : 1) * sizeof(int));
    int *perm = malloc((size_t)(N ? N : 1) * sizeof(int));
    if (!pool || !shots || !perm) { free(pool); free(shots); free(perm); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    int np = 0;
    for (int i = 0; i < np_in; i++) if (pool_in[i] != q) pool[np++] = pool_in[i];
    for (int k = 0; k < N; k++) {           /* partial Fisher-Yates (np >= N: fv_plan) */
        int j = k + rng_below(rng, np - k);
        int t = pool[k]; pool[k] = pool[j]; pool[j] = t;
        shots[k] = pool[k];
    }
    for (int k = 0; k < N; k++) perm[k] = k;
    for (int k = N - 1; k > 0; k--) { int j = rng_below(rng, k + 1); int t = perm[k]; perm[k] = perm[j]; perm[j] = t; }
    int ident = 1;
    for (int k = 0; k < N; k++) ident &= perm[k] == k;
    if (ident && N > 1) for (int k = 0; k < N; k++) perm[k] = (k + 1) % N;   /* never the identity */
    char *t1 = fv_prompt_text(o->tpl, d, q, shots, N, NULL), *t2 = fv_prompt_text(o->tpl, d, q, shots, N, perm);
    rc = !t1 || !t2 ? ss_fail(err, SS_ERUNTIME, "out of memory") : SS_OK;
    if (!rc) rc = fv_prompt_make(m, tok, o->tpl, d, t1, q, o->bos, clean, err);
    if (!rc && shuf) rc = fv_prompt_make(m, tok, o->tpl, d, t2, q, o->bos, shuf, err);
    if (!rc && text) { *text = t1; t1 = NULL; }
    free(t1); free(t2); free(pool); free(shots); free(perm);
    return rc;
}

/* Items shuffled by the seed: the first n_eval are the evaluation queries, the
   rest the ICL pool that every in-context example and every ICL prompt for the
   means comes from (see fv.h). */
static int build_sets(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                      prompt_sets *ps, char *err) {
    memset(ps, 0, sizeof *ps);
    int rc, ne;
    if ((rc = fv_plan(o, d->n, &ne, err))) return rc;
    ps->n_eval = ne;
    ps->n_pool = d->n - ne;
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
    const int *pool = order + ne;
    rc = SS_OK;
    for (int i = 0; i < ne && !rc; i++) {
        int q = order[i];
        char *t = fv_prompt_text(o->tpl, d, q, NULL, 0, NULL);
        rc = t ? fv_prompt_make(m, tok, o->tpl, d, t, q, o->bos, &ps->ev_zero[i], err) : ss_fail(err, SS_ERUNTIME, "out of memory");
        free(t);
        if (!rc) rc = make_pair(m, tok, d, o, q, pool, ps->n_pool, &rng, &ps->ev_icl[i], &ps->ev_shuf[i],
                                i == 0 ? &ps->example : NULL, err);
    }
    for (int i = 0; i < ps->n_prompts && !rc; i++)
        rc = make_pair(m, tok, d, o, pool[i % ps->n_pool], pool, ps->n_pool, &rng, &ps->mean_clean[i], &ps->mean_shuf[i],
                       NULL, err);
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
                    double *acc, double *logp, prog *pr, char *err) {
    int rc = last_logits(m, P, n, mode, layer, vec, logits, pr, err);
    if (!rc) score(m, P, n, logits, acc, logp);
    return rc;
}

/* Greedy continuation of a prompt with vec added (FV_ADD) or written
   (FV_REPLACE) at the layer's output: at the prompt's last position, and with
   every_step at the last position of every step (generated tokens too). */
static int greedy(const gpt2_model *m, const tokenizer *tok, const fv_prompt *p, int mode, int every_step, int layer,
                  const float *vec, int max_new, char **text, char *err) {
    gpt2_state *s = NULL;
    sampler *smp = NULL;
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = 0;
    int *out = calloc((size_t)max_new + 1, sizeof(int)), n_out = 0, rc;
    int n_ctx = p->n + max_new;
    if (!out) return ss_fail(err, SS_ERUNTIME, "out of memory");
    if (n_ctx > m->cfg.n_positions) n_ctx = m->cfg.n_positions, max_new = n_ctx - p->n;
    if ((rc = gpt2_state_build(&s, m, n_ctx, err)) || (rc = sampler_build(&smp, m->cfg.vocab_size, &sp, err))) goto done;
    row_hook rh = {mode == FV_ADD ? ROW_ADD : ROW_SET, every_step ? -1 : p->n - 1, 0, m->cfg.n_embd, NULL, vec};
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

static int n_examples(const fv_opts *o, const prompt_sets *ps) {
    int n = o->n_examples < ps->n_eval ? o->n_examples : ps->n_eval;
    return n > 16 ? 16 : n;
}

static int examples(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                    const prompt_sets *ps, int mode, int every_step, int layer, const float *vec, fv_result *r, prog *pr,
                    char *err) {
    int n = n_examples(o, ps);
    int rc = SS_OK;
    phase(pr, "example generations");
    for (int i = 0; i < n && !rc; i++) {
        fv_example *e = &r->ex[i];
        const fv_prompt *p = &ps->ev_zero[i];
        snprintf(e->input, sizeof e->input, "%s", d->input[p->item]);
        snprintf(e->output, sizeof e->output, "%s", d->output[p->item]);
        r->n_ex = i + 1;
        if ((rc = greedy(m, tok, p, FV_NONE, 0, layer, NULL, o->max_new, &e->zero_shot, err))) break;
        tick(pr, 1);
        rc = greedy(m, tok, p, mode, every_step, layer, vec, o->max_new, &e->steered, err);
        tick(pr, 1);
    }
    return rc;
}

/* zero-shot, ICL and shuffled baselines shared by both experiments */
static int baselines(const gpt2_model *m, const prompt_sets *ps, float *logits, fv_result *r, prog *pr, char *err) {
    int rc;
    r->n_eval = ps->n_eval;
    r->n_prompts = ps->n_prompts;
    r->n_pool = ps->n_pool;
    phase(pr, "baselines");
    if ((rc = eval_set(m, ps->ev_zero, ps->n_eval, FV_NONE, 0, NULL, logits, &r->zero_shot_acc, &r->zero_shot_logprob, pr,
                       err)))
        return rc;
    if ((rc = eval_set(m, ps->ev_icl, ps->n_eval, FV_NONE, 0, NULL, logits, &r->icl_acc, &r->icl_logprob, pr, err)))
        return rc;
    return eval_set(m, ps->ev_shuf, ps->n_eval, FV_NONE, 0, NULL, logits, &r->shuffled_acc, &r->shuffled_logprob, pr, err);
}

/* the layers of a run (o->layers, or o->layer alone), checked, into r */
static int set_layers(const gpt2_model *m, const fv_opts *o, fv_result *r, char *err) {
    int n = o->layers ? o->n_layers : 1, rc;
    if (n < 1) return ss_fail(err, SS_EINPUT, "--layers: no layers");
    r->layers = malloc((size_t)n * sizeof(int));
    r->layer_acc = calloc((size_t)n, sizeof(double));
    r->layer_logprob = calloc((size_t)n, sizeof(double));
    if (!r->layers || !r->layer_acc || !r->layer_logprob) return ss_fail(err, SS_ERUNTIME, "out of memory");
    r->n_layers = n;
    for (int k = 0; k < n; k++) {
        r->layers[k] = o->layers ? o->layers[k] : o->layer;
        if ((rc = check_layer(m, r->layers[k], err))) return rc;
    }
    return SS_OK;
}

static void pick_best(fv_result *r) {
    r->best = 0;
    for (int k = 1; k < r->n_layers; k++)
        if (r->layer_acc[k] > r->layer_acc[r->best] ||
            (r->layer_acc[k] == r->layer_acc[r->best] && r->layer_logprob[k] > r->layer_logprob[r->best]))
            r->best = k;
    r->patched_acc = r->layer_acc[r->best];
    r->patched_logprob = r->layer_logprob[r->best];
}

int fv_task_vector_run(const gpt2_model *m, const tokenizer *tok, const fv_dataset *d, const fv_opts *o,
                       fv_result *r, char *err) {
    memset(r, 0, sizeof *r);
    if (o->mode != FV_REPLACE && o->mode != FV_ADD) return ss_fail(err, SS_EINPUT, "--mode: want replace or add");
    int rc = set_layers(m, o, r, err), C = m->cfg.n_embd;
    if (rc) { fv_result_free(r); return rc; }
    prompt_sets ps;
    if ((rc = build_sets(m, tok, d, o, &ps, err))) { fv_result_free(r); return rc; }
    r->prompt_example = ps.example;
    ps.example = NULL;
    prog pr = {o->progress, o->progress_ctx, 0, 0, NULL};
    pr.total = 3 * (int64_t)ps.n_eval + (int64_t)r->n_layers * (ps.n_prompts + ps.n_eval) + 2 * n_examples(o, &ps);
    float *logits = ss_malloc2((size_t)ps.n_eval, (size_t)m->cfg.vocab_size * sizeof(float));  /* (n_eval, V) */
    r->vec = ss_malloc2((size_t)r->n_layers, (size_t)C * sizeof(float));                        /* (n_layers, C) h */
    if (!logits || !r->vec) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = baselines(m, &ps, logits, r, &pr, err))) goto done;
    phase(&pr, "task vector per layer");
    for (int k = 0; k < r->n_layers && !rc; k++) {
        float *h = r->vec + (size_t)k * C;
        if ((rc = mean_resid(m, ps.mean_clean, ps.n_prompts, r->layers[k], h, &pr, err))) break;
        rc = eval_set(m, ps.ev_zero, ps.n_eval, o->mode, r->layers[k], h, logits, &r->layer_acc[k], &r->layer_logprob[k],
                      &pr, err);
    }
    if (rc) goto done;
    pick_best(r);
    rc = examples(m, tok, d, o, &ps, o->mode, 0, r->layers[r->best], r->vec + (size_t)r->best * C, r, &pr, err);
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
    int K = o->heads ? o->n_heads : o->top_k;
    if (!o->heads && (o->top_k < 1 || o->top_k > L * NH))
        return ss_fail(err, SS_EINPUT, "--heads %d out of range: the model has %d heads in all", o->top_k, L * NH);
    if (o->heads) {
        if (K < 1) return ss_fail(err, SS_EINPUT, "--heads-list: no heads");
        for (int k = 0; k < K; k++) {
            int l = o->heads[2 * k], h = o->heads[2 * k + 1];
            if (l < 0 || l >= L || h < 0 || h >= NH)
                return ss_fail(err, SS_EINPUT, "--heads-list: head %d.%d out of range (layers 0..%d, heads 0..%d)", l, h,
                               L - 1, NH - 1);
            for (int j = 0; j < k; j++)
                if (o->heads[2 * j] == l && o->heads[2 * j + 1] == h)
                    return ss_fail(err, SS_EINPUT, "--heads-list: head %d.%d listed twice", l, h);
        }
    }
    if (o->metric != FV_CIE_PROB && o->metric != FV_CIE_LOGPROB)
        return ss_fail(err, SS_EINPUT, "--cie-metric: want prob or logprob");
    int rc = set_layers(m, o, r, err);
    if (rc) { fv_result_free(r); return rc; }
    int compute_cie = !o->cie_in && (!o->heads || o->want_cie);
    prompt_sets ps;
    if ((rc = build_sets(m, tok, d, o, &ps, err))) { fv_result_free(r); return rc; }
    r->prompt_example = ps.example;
    ps.example = NULL;
    prog pr = {o->progress, o->progress_ctx, 0, 0, NULL};
    pr.total = 3 * (int64_t)ps.n_eval + ps.n_prompts + (compute_cie ? (int64_t)ps.n_prompts * (1 + L * NH) : 0) +
               (int64_t)r->n_layers * ps.n_eval + 2 * n_examples(o, &ps);
    float *logits = ss_malloc2((size_t)ps.n_eval, (size_t)m->cfg.vocab_size * sizeof(float));  /* (n_eval, V) */
    float *zbar = ss_malloc2((size_t)L, (size_t)C * sizeof(float));                            /* (L, C) */
    r->vec = malloc((size_t)C * sizeof(float));                                                 /* (C) FV */
    r->heads = malloc((size_t)K * 2 * sizeof(int));                                             /* (K, 2) */
    if (compute_cie || o->cie_in) r->cie = ss_malloc2((size_t)L, (size_t)NH * sizeof(float));  /* (L, NH) */
    if (!logits || !zbar || !r->vec || !r->heads || ((compute_cie || o->cie_in) && !r->cie)) {
        rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        goto done;
    }
    r->n_heads = K;
    if ((rc = baselines(m, &ps, logits, r, &pr, err))) goto done;
    phase(&pr, "mean head outputs");
    if ((rc = mean_z(m, ps.mean_clean, ps.n_prompts, zbar, &pr, err))) goto done;
    if (o->cie_in) memcpy(r->cie, o->cie_in, (size_t)L * NH * sizeof(float));
    else if (compute_cie) {
        phase(&pr, "CIE per head");
        if ((rc = cie_run(m, ps.mean_shuf, ps.n_prompts, zbar, o->metric, r->cie, &pr, err))) goto done;
    }
    if (o->heads) memcpy(r->heads, o->heads, (size_t)K * 2 * sizeof(int));
    else fv_top_heads(r->cie, L, NH, K, r->heads);
    if ((rc = fv_vector(m, zbar, r->heads, K, r->vec, err))) goto done;
    phase(&pr, "FV per layer");
    for (int k = 0; k < r->n_layers && !rc; k++)
        rc = eval_set(m, ps.ev_zero, ps.n_eval, FV_ADD, r->layers[k], r->vec, logits, &r->layer_acc[k], &r->layer_logprob[k],
                      &pr, err);
    if (rc) goto done;
    pick_best(r);
    rc = examples(m, tok, d, o, &ps, FV_ADD, 1, r->layers[r->best], r->vec, r, &pr, err);
done:
    free(logits);
    free(zbar);
    sets_free(&ps);
    if (rc) fv_result_free(r);
    return rc;
}

/* ------------------------------------------------------------ CIE files --- */

static const char *metric_name(int metric) { return metric == FV_CIE_LOGPROB ? "logprob" : "prob"; }

int fv_cie_save(const char *path, const fv_cie_meta *mt, const float *cie, char *err) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return ss_fail(err, SS_ERUNTIME, "out of memory");
    cJSON_AddStringToObject(j, "format", "saesteer-cie");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "model_sha256", mt->model_sha256);
    cJSON_AddNumberToObject(j, "n_layer", mt->n_layer);
    cJSON_AddNumberToObject(j, "n_head", mt->n_head);
    cJSON_AddStringToObject(j, "dataset_sha256", mt->dataset_sha256);
    cJSON_AddStringToObject(j, "template", mt->template_spec ? mt->template_spec : FV_TEMPLATE_DEFAULT);
    cJSON_AddNumberToObject(j, "shots", mt->shots);
    cJSON_AddNumberToObject(j, "n_prompts", mt->n_prompts);
    cJSON_AddNumberToObject(j, "n_eval", mt->n_eval);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)mt->seed);   /* a string: doubles lose 64-bit seeds */
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddBoolToObject(j, "bos", mt->bos);
    cJSON_AddStringToObject(j, "metric", metric_name(mt->metric));
    cJSON *rows = cJSON_AddArrayToObject(j, "cie");
    for (int l = 0; l < mt->n_layer; l++) {
        cJSON *row = cJSON_CreateArray();
        for (int h = 0; h < mt->n_head; h++) cJSON_AddItemToArray(row, cJSON_CreateNumber(cie[(size_t)l * mt->n_head + h]));
        cJSON_AddItemToArray(rows, row);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return ss_fail(err, SS_ERUNTIME, "out of memory");
    ss_outfile out;
    int rc = ss_out_open(&out, path, err);
    if (!rc) {
        if (fputs(text, out.fp) == EOF || fputc('\n', out.fp) == EOF) {
            ss_out_abort(&out);
            rc = ss_fail(err, SS_ERUNTIME, "%s: write failed", path);
        } else rc = ss_out_commit(&out, err);
    }
    free(text);
    return rc;
}

int fv_cie_load(const char *path, const fv_cie_meta *want, float *cie, char *err) {
    char *text;
    size_t len;
    int rc = ss_read_file(path, &text, &len, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!j || !cJSON_IsString(f) || strcmp(f->valuestring, "saesteer-cie")) {
        cJSON_Delete(j);
        return ss_fail(err, SS_EINPUT, "%s: not a CIE file (want JSON with \"format\": \"saesteer-cie\", from fv --cie-out)", path);
    }
    rc = SS_OK;
#define STR(key, val)                                                                                                   \
    do {                                                                                                                \
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);                                                     \
        if (!rc && !cJSON_IsString(x)) rc = ss_fail(err, SS_EINPUT, "%s: \"%s\" missing or not a string", path, key);  \
        else if (!rc && strcmp(x->valuestring, val))                                                                    \
            rc = ss_fail(err, SS_EINPUT, "%s: made with %s \"%.80s\", this run has \"%.80s\"", path, key, x->valuestring, \
                         val);                                                                                          \
    } while (0)
#define NUM(key, val)                                                                                                   \
    do {                                                                                                                \
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);                                                     \
        if (!rc && !cJSON_IsNumber(x)) rc = ss_fail(err, SS_EINPUT, "%s: \"%s\" missing or not a number", path, key);  \
        else if (!rc && x->valuedouble != (double)(val))                                                                \
            rc = ss_fail(err, SS_EINPUT, "%s: made with %s %g, this run has %d", path, key, x->valuedouble, (int)(val)); \
    } while (0)
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        rc = ss_fail(err, SS_EINPUT, "%s: \"version\" is not 1", path);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)want->seed);
    STR("model_sha256", want->model_sha256);
    NUM("n_layer", want->n_layer);
    NUM("n_head", want->n_head);
    STR("dataset_sha256", want->dataset_sha256);
    STR("template", want->template_spec ? want->template_spec : FV_TEMPLATE_DEFAULT);
    NUM("shots", want->shots);
    NUM("n_prompts", want->n_prompts);
    NUM("n_eval", want->n_eval);
    STR("seed", seed);
    STR("metric", metric_name(want->metric));
#undef STR
#undef NUM
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(j, "bos");
    if (!rc && !cJSON_IsBool(bos)) rc = ss_fail(err, SS_EINPUT, "%s: \"bos\" missing or not true/false", path);
    else if (!rc && !cJSON_IsTrue(bos) != !want->bos)
        rc = ss_fail(err, SS_EINPUT, "%s: made with bos %s, this run has %s", path, cJSON_IsTrue(bos) ? "on" : "off",
                     want->bos ? "on" : "off");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "cie");
    if (!rc && (!cJSON_IsArray(rows) || cJSON_GetArraySize(rows) != want->n_layer))
        rc = ss_fail(err, SS_EINPUT, "%s: \"cie\" is not a list of %d rows", path, want->n_layer);
    for (int l = 0; l < want->n_layer && !rc; l++) {
        const cJSON *row = cJSON_GetArrayItem(rows, l);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != want->n_head) {
            rc = ss_fail(err, SS_EINPUT, "%s: cie[%d] is not a list of %d numbers", path, l, want->n_head);
            break;
        }
        for (int h = 0; h < want->n_head; h++) {
            const cJSON *x = cJSON_GetArrayItem(row, h);
            if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
                rc = ss_fail(err, SS_EINPUT, "%s: cie[%d][%d] is not a finite number", path, l, h);
                break;
            }
            cie[(size_t)l * want->n_head + h] = (float)x->valuedouble;
        }
    }
    cJSON_Delete(j);
    return rc;
}
