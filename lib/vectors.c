/* vectors.c - contrastive steering vectors (see vectors.h). */
#include "vectors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- pairs --- */

void vec_pairs_free(vec_pairs *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) { free(p->pos[i]); free(p->neg[i]); }
    free(p->pos);
    free(p->neg);
    memset(p, 0, sizeof *p);
}

static int pairs_push(vec_pairs *p, const char *pos, const char *neg) {
    char **a = realloc(p->pos, (size_t)(p->n + 1) * sizeof(char *));
    if (!a) return SS_ERUNTIME;
    p->pos = a;
    char **b = realloc(p->neg, (size_t)(p->n + 1) * sizeof(char *));
    if (!b) return SS_ERUNTIME;
    p->neg = b;
    p->pos[p->n] = strdup(pos);
    p->neg[p->n] = strdup(neg);
    if (!p->pos[p->n] || !p->neg[p->n]) { free(p->pos[p->n]); free(p->neg[p->n]); return SS_ERUNTIME; }
    p->n++;
    return SS_OK;
}

int vec_pairs_one(vec_pairs *p, const char *pos, const char *neg, char *err) {
    memset(p, 0, sizeof *p);
    if (!ss_utf8_valid(pos, strlen(pos))) return ss_fail(err, SS_EINPUT, "--positive is not valid UTF-8");
    if (!ss_utf8_valid(neg, strlen(neg))) return ss_fail(err, SS_EINPUT, "--negative is not valid UTF-8");
    if (pairs_push(p, pos, neg)) return ss_fail(err, SS_ERUNTIME, "out of memory");
    return SS_OK;
}

int vec_pairs_load(vec_pairs *p, const char *path, char *err) {
    memset(p, 0, sizeof *p);
    char *text;
    size_t len;
    int rc = ss_read_file(path, &text, &len, err);
    if (rc) return rc;
    if (!ss_utf8_valid(text, len)) { free(text); return ss_fail(err, SS_EINPUT, "%s: not valid UTF-8", path); }
    if (memchr(text, '\0', len)) { free(text); return ss_fail(err, SS_EINPUT, "%s: contains a NUL byte", path); }
    int line = 0;
    for (char *s = text, *nl; s && *s; s = nl) {
        line++;
        nl = strchr(s, '\n');
        if (nl) *nl++ = '\0';
        const char *t = s;
        while (*t == ' ' || *t == '\t' || *t == '\r') t++;
        if (!*t) continue;
        cJSON *j = cJSON_Parse(t);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            rc = ss_fail(err, SS_EINPUT, "%s line %d: not a JSON object (want {\"positive\": ..., \"negative\": ...})", path, line);
            break;
        }
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "positive");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "negative");
        if (!cJSON_IsString(a) || !cJSON_IsString(b)) {
            cJSON_Delete(j);
            rc = ss_fail(err, SS_EINPUT, "%s line %d: missing string \"%s\"", path, line,
                         !cJSON_IsString(a) ? "positive" : "negative");
            break;
        }
        rc = pairs_push(p, a->valuestring, b->valuestring);
        cJSON_Delete(j);
        if (rc) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); break; }
    }
    free(text);
    if (!rc && p->n == 0) rc = ss_fail(err, SS_EINPUT, "%s: no pairs (empty file)", path);
    if (rc) vec_pairs_free(p);
    return rc;
}

/* -------------------------------------------------------------- capture --- */

typedef struct {
    float *out;            /* (n, width) */
    int n, width;
} capture_ctx;

static int capture_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    capture_ctx *c = ctx;
    (void)hp;
    if (width != c->width) return ss_fail(err, SS_ERUNTIME, "capture: width %d != %d", width, c->width);
    for (int t = 0; t < T; t++) {
        int p = pos0 + t;
        if (p < c->n) memcpy(c->out + (size_t)p * width, act + (size_t)t * width, (size_t)width * sizeof(float));
    }
    return SS_OK;
}

int vec_capture(gpt2_state *s, const gpt2_hook_point *hp, const int *ids, int n, float *out, char *err) {
    capture_ctx c = {out, n, gpt2_hook_width(&s->m->cfg, hp)};
    if (c.width <= 0) return ss_fail(err, SS_EINPUT, "capture: hook has no fixed width");
    gpt2_clear_hooks(s);
    gpt2_state_reset(s);
    int rc = gpt2_add_hook(s, hp, capture_hook, &c, 0, err);
    if (!rc) {
        gpt2_stop_after_hooks(s);
        rc = gpt2_forward(s, ids, n, NULL, 0, err);
    }
    gpt2_clear_hooks(s);
    return rc;
}

int vec_encode(const gpt2_model *m, const tokenizer *tok, const char *text, int bos, int **ids, int *n, char *err) {
    int *raw = NULL, nraw = 0;
    *ids = NULL;
    *n = 0;
    int rc = tok_encode(tok, text, strlen(text), &raw, &nraw, err);
    if (rc) return rc;
    int total = nraw + (bos ? 1 : 0);
    if (total == 0) { free(raw); return ss_fail(err, SS_EINPUT, "prompt '%.40s' is empty and BOS is off: no tokens", text); }
    if (total > m->cfg.n_positions) {
        free(raw);
        return ss_fail(err, SS_EINPUT, "prompt '%.40s...' has %d tokens, more than n_positions (%d)", text, total,
                       m->cfg.n_positions);
    }
    int *out = malloc((size_t)total * sizeof(int));
    if (!out) { free(raw); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if (bos) out[0] = m->cfg.bos_id;
    if (nraw) memcpy(out + (bos ? 1 : 0), raw, (size_t)nraw * sizeof(int));
    free(raw);
    *ids = out;
    *n = total;
    return SS_OK;
}

float vec_norm(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    return (float)sqrt(s);
}

/* Activation rows of one prompt at the hook into acts (n, width). */
static int prompt_acts(gpt2_state *s, const gpt2_hook_point *hp, const int *ids, int n, float *acts, char *err) {
    return vec_capture(s, hp, ids, n, acts, err);
}

int vec_diffs(const gpt2_model *m, const tokenizer *tok, const char *hook, const vec_pairs *pairs, int bos,
              float **diffs_out, int *width_out, char *err) {
    *diffs_out = NULL;
    gpt2_hook_point hp;
    int rc = gpt2_hook_parse(&m->cfg, hook, &hp, err);
    if (rc) return rc;
    int W = gpt2_hook_width(&m->cfg, &hp);
    if (W <= 0 || hp.kind == GPT2_HOOK_PATTERN)
        return ss_fail(err, SS_EINPUT, "hook '%s': attention patterns have no vector width", hook);
    if (pairs->n <= 0) return ss_fail(err, SS_EINPUT, "no prompt pairs");
    int P = m->cfg.n_positions;
    gpt2_state *s = NULL;
    float *acts = ss_malloc2((size_t)P, (size_t)W * sizeof(float));   /* (P, W) one prompt */
    float *diffs = ss_malloc2((size_t)pairs->n, (size_t)W * sizeof(float)); /* (n_pairs, W) */
    float *last = ss_malloc2((size_t)W, sizeof(float));               /* (W) positive's last row */
    if (!acts || !diffs || !last) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = gpt2_state_build(&s, m, P, err))) goto done;
    for (int i = 0; i < pairs->n && !rc; i++) {
        for (int side = 0; side < 2 && !rc; side++) {
            int *ids = NULL, n = 0;
            const char *text = side == 0 ? pairs->pos[i] : pairs->neg[i];
            if ((rc = vec_encode(m, tok, text, bos, &ids, &n, err))) break;
            rc = prompt_acts(s, &hp, ids, n, acts, err);
            free(ids);
            if (rc) break;
            const float *row = acts + (size_t)(n - 1) * W;
            if (side == 0) memcpy(last, row, (size_t)W * sizeof(float));
            else for (int j = 0; j < W; j++) diffs[(size_t)i * W + j] = last[j] - row[j];
        }
    }
done:
    gpt2_state_free(s);
    free(acts);
    free(last);
    if (rc) { free(diffs); return rc; }
    *diffs_out = diffs;
    *width_out = W;
    return SS_OK;
}

/* --------------------------------------------------------- mean and pca --- */

void vec_mean(const float *diffs, int n, int C, float *v) {
    for (int j = 0; j < C; j++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += diffs[(size_t)i * C + j];
        v[j] = (float)(s / n);
    }
}

/* Top eigenvector of a symmetric (k, k) matrix G by power iteration from x
   (k, overwritten with the result, unit norm). */
static void power_iteration(const double *G, int k, double *x) {
    double *y = malloc((size_t)k * sizeof(double));
    double nx = 0;
    for (int i = 0; i < k; i++) nx += x[i] * x[i];
    nx = sqrt(nx);
    if (nx == 0) { for (int i = 0; i < k; i++) x[i] = 1.0 / sqrt((double)k); }
    else for (int i = 0; i < k; i++) x[i] /= nx;
    for (int it = 0; it < 100000; it++) {
        for (int i = 0; i < k; i++) {
            double s = 0;
            const double *g = G + (size_t)i * k;
            for (int j = 0; j < k; j++) s += g[j] * x[j];
            y[i] = s;
        }
        double ny = 0;
        for (int i = 0; i < k; i++) ny += y[i] * y[i];
        ny = sqrt(ny);
        if (ny == 0) break;  /* G == 0: any direction */
        double delta = 0;
        for (int i = 0; i < k; i++) {
            y[i] /= ny;
            delta += (y[i] - x[i]) * (y[i] - x[i]);
            x[i] = y[i];
        }
        if (delta < 1e-26) break;
    }
    free(y);
}

int vec_pca(const float *diffs, int n, int C, float *v, char *err) {
    if (n <= 0 || C <= 0) return ss_fail(err, SS_EINPUT, "pca: no differences");
    float *mean = malloc((size_t)C * sizeof(float));   /* (C) */
    double *u = calloc((size_t)C, sizeof(double));     /* (C) direction */
    int k = n < C ? n : C;
    double *G = calloc((size_t)k * k, sizeof(double));  /* (k, k) Gram */
    double *x = malloc((size_t)k * sizeof(double));     /* (k) */
    if (!mean || !u || !G || !x) { free(mean); free(u); free(G); free(x); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    vec_mean(diffs, n, C, mean);
    if (n < C) {
        /* G = D D^T (n, n); eigenvector x -> u = D^T x */
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++) {
                double s = 0;
                const float *da = diffs + (size_t)a * C, *db = diffs + (size_t)b * C;
                for (int j = 0; j < C; j++) s += (double)da[j] * db[j];
                G[(size_t)a * n + b] = G[(size_t)b * n + a] = s;
            }
        /* start: D x0 with x0 = D mean, i.e. the projections on the mean difference */
        for (int a = 0; a < n; a++) {
            double s = 0;
            for (int j = 0; j < C; j++) s += (double)diffs[(size_t)a * C + j] * mean[j];
            x[a] = s;
        }
        power_iteration(G, n, x);
        for (int a = 0; a < n; a++)
            for (int j = 0; j < C; j++) u[j] += x[a] * diffs[(size_t)a * C + j];
    } else {
        /* G = D^T D (C, C) */
        for (int a = 0; a < C; a++)
            for (int b = a; b < C; b++) {
                double s = 0;
                for (int i = 0; i < n; i++) s += (double)diffs[(size_t)i * C + a] * diffs[(size_t)i * C + b];
                G[(size_t)a * C + b] = G[(size_t)b * C + a] = s;
            }
        for (int j = 0; j < C; j++) x[j] = mean[j];
        power_iteration(G, C, x);
        for (int j = 0; j < C; j++) u[j] = x[j];
    }
    double nu = 0, proj = 0, nm = 0;
    for (int j = 0; j < C; j++) { nu += u[j] * u[j]; nm += (double)mean[j] * mean[j]; }
    nu = sqrt(nu);
    nm = sqrt(nm);
    /* orient: the positives project higher, sum_i D_i . u = n * mean . u > 0 */
    for (int j = 0; j < C; j++) proj += u[j] * mean[j];
    double sgn = proj < 0 ? -1.0 : 1.0;
    for (int j = 0; j < C; j++) v[j] = nu > 0 ? (float)(sgn * u[j] / nu * nm) : 0.0f;
    free(mean); free(u); free(G); free(x);
    return SS_OK;
}

int vec_contrastive(const gpt2_model *m, const tokenizer *tok, const char *hook, const vec_pairs *pairs, int bos,
                    vec_method method, float **v_out, int *width, char *err) {
    float *diffs = NULL;
    int W = 0;
    *v_out = NULL;
    int rc = vec_diffs(m, tok, hook, pairs, bos, &diffs, &W, err);
    if (rc) return rc;
    float *v = malloc((size_t)W * sizeof(float));  /* (W) */
    if (!v) { free(diffs); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    if (method == VEC_PCA) rc = vec_pca(diffs, pairs->n, W, v, err);
    else vec_mean(diffs, pairs->n, W, v);
    free(diffs);
    if (rc) { free(v); return rc; }
    *v_out = v;
    *width = W;
    return SS_OK;
}

/* --------------------------------------------------------------- actadd --- */

int vec_actadd(const gpt2_model *m, const tokenizer *tok, const char *hook, const char *pos, const char *neg, int bos,
               float **mat_out, int *P_out, int *width, char *err) {
    *mat_out = NULL;
    gpt2_hook_point hp;
    int rc = gpt2_hook_parse(&m->cfg, hook, &hp, err);
    if (rc) return rc;
    int W = gpt2_hook_width(&m->cfg, &hp);
    if (W <= 0 || hp.kind == GPT2_HOOK_PATTERN)
        return ss_fail(err, SS_EINPUT, "hook '%s': attention patterns have no vector width", hook);
    /* the pad token: " " (GPT-2: 220) */
    int *sp = NULL, nsp = 0;
    if ((rc = tok_encode(tok, " ", 1, &sp, &nsp, err))) return rc;
    if (nsp != 1) { free(sp); return ss_fail(err, SS_EINPUT, "tokenizer: \" \" is not a single token; cannot pad"); }
    int pad = sp[0];
    free(sp);
    int *ia = NULL, na = 0, *ib = NULL, nb = 0;
    if ((rc = vec_encode(m, tok, pos, bos, &ia, &na, err))) return rc;
    if ((rc = vec_encode(m, tok, neg, bos, &ib, &nb, err))) { free(ia); return rc; }
    int P = na > nb ? na : nb;
    int *pa = malloc((size_t)P * sizeof(int)), *pb = malloc((size_t)P * sizeof(int)); /* (P) padded ids */
    float *A = ss_malloc2((size_t)P, (size_t)W * sizeof(float));  /* (P, W) positive */
    float *B = ss_malloc2((size_t)P, (size_t)W * sizeof(float));  /* (P, W) negative */
    gpt2_state *s = NULL;
    if (!pa || !pb || !A || !B) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); goto done; }
    for (int p = 0; p < P; p++) { pa[p] = p < na ? ia[p] : pad; pb[p] = p < nb ? ib[p] : pad; }
    if ((rc = gpt2_state_build(&s, m, P, err))) goto done;
    if ((rc = vec_capture(s, &hp, pa, P, A, err))) goto done;
    if ((rc = vec_capture(s, &hp, pb, P, B, err))) goto done;
    for (size_t i = 0; i < (size_t)P * W; i++) A[i] -= B[i];
done:
    gpt2_state_free(s);
    free(ia); free(ib); free(pa); free(pb); free(B);
    if (rc) { free(A); return rc; }
    *mat_out = A;
    *P_out = P;
    *width = W;
    return SS_OK;
}
