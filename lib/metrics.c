/* metrics.c - KL, log-probabilities and AFINN sentiment (see metrics.h). */
#include "metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void met_log_softmax(const float *logits, int V, double *out) {
    double mx = logits[0];
    for (int i = 1; i < V; i++) if (logits[i] > mx) mx = logits[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)logits[i] - mx);
    double lse = mx + log(s);
    for (int i = 0; i < V; i++) out[i] = (double)logits[i] - lse;
}

double met_kl(const double *logp, const double *logq, int V) {
    double kl = 0;
    for (int i = 0; i < V; i++) {
        double p = exp(logp[i]);
        if (p > 0) kl += p * (logp[i] - logq[i]);
    }
    return kl < 0 ? 0 : kl;   /* rounding can give -1e-17 */
}

double met_kl_logits(const float *a, const float *b, int V, double *scratch) {
    double *buf = scratch ? scratch : malloc((size_t)2 * V * sizeof(double));
    if (!buf) return NAN;
    met_log_softmax(a, V, buf);
    met_log_softmax(b, V, buf + V);
    double kl = met_kl(buf, buf + V, V);
    if (!scratch) free(buf);
    return kl;
}

double met_logprob(const float *logits, int V, int id) {
    double mx = logits[0];
    for (int i = 1; i < V; i++) if (logits[i] > mx) mx = logits[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)logits[i] - mx);
    return (double)logits[id] - mx - log(s);
}

/* ----------------------------------------------------------------- AFINN --- */

typedef struct { char *key; int value; } afinn_entry;

struct met_afinn {
    afinn_entry *e;        /* (n) sorted by key */
    int n;
    int max_words;         /* longest phrase, in words */
};

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const afinn_entry *)a)->key, ((const afinn_entry *)b)->key);
}

void met_afinn_free(met_afinn *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) free(a->e[i].key);
    free(a->e);
    free(a);
}

int met_afinn_size(const met_afinn *a) { return a->n; }

int met_afinn_load(met_afinn **out, const char *path, char *err) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = ss_read_file(path, &text, &len, err);
    if (rc) return rc;
    if (!ss_utf8_valid(text, len)) { free(text); return ss_fail(err, SS_EINPUT, "%s: not valid UTF-8", path); }
    met_afinn *a = calloc(1, sizeof *a);
    int cap = 0, line = 0;
    a->max_words = 1;
    for (char *s = text, *nl; s && *s; s = nl) {
        line++;
        nl = strchr(s, '\n');
        if (nl) *nl++ = '\0';
        size_t L = strlen(s);
        if (L && s[L - 1] == '\r') s[--L] = '\0';
        if (!L || s[0] == '#') continue;
        char *tab = strrchr(s, '\t');
        char *end;
        long v = tab ? strtol(tab + 1, &end, 10) : 0;
        if (!tab || end == tab + 1 || *end || v < -5 || v > 5 || tab == s) {
            rc = ss_fail(err, SS_EINPUT, "%s line %d: want 'word<TAB>valence' with valence in -5..5", path, line);
            break;
        }
        *tab = '\0';
        if (a->n == cap) {
            cap = cap ? 2 * cap : 4096;
            afinn_entry *e = realloc(a->e, (size_t)cap * sizeof *e);
            if (!e) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); break; }
            a->e = e;
        }
        for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
        a->e[a->n].key = strdup(s);
        a->e[a->n].value = (int)v;
        a->n++;
        int words = 1;
        for (char *p = s; *p; p++) words += *p == ' ';
        if (words > a->max_words) a->max_words = words;
    }
    free(text);
    if (!rc && a->n == 0) rc = ss_fail(err, SS_EINPUT, "%s: empty lexicon", path);
    if (rc) { met_afinn_free(a); return rc; }
    if (a->max_words > 3) a->max_words = 3;
    qsort(a->e, (size_t)a->n, sizeof *a->e, entry_cmp);
    *out = a;
    return SS_OK;
}

static const afinn_entry *lookup(const met_afinn *a, const char *key) {
    afinn_entry k = {(char *)key, 0};
    return bsearch(&k, a->e, (size_t)a->n, sizeof *a->e, entry_cmp);
}

/* word characters: ASCII letters, digits, apostrophe, and any non-ASCII byte
   (so accented words stay whole) */
static int is_word_byte(unsigned char c) { return isalnum(c) || c == '\'' || c >= 0x80; }

double met_afinn_score(const met_afinn *a, const char *text, int *n_hits) {
    /* split into lowercase words */
    size_t L = strlen(text);
    char *buf = malloc(L + 1);
    char **w = malloc((L / 2 + 2) * sizeof(char *));
    int nw = 0;
    if (!buf || !w) { free(buf); free(w); if (n_hits) *n_hits = 0; return 0; }
    size_t i = 0, o = 0;
    while (i < L) {
        while (i < L && !is_word_byte((unsigned char)text[i])) i++;
        if (i >= L) break;
        w[nw++] = buf + o;
        while (i < L && is_word_byte((unsigned char)text[i])) buf[o++] = (char)tolower((unsigned char)text[i++]);
        buf[o++] = '\0';
    }
    double score = 0;
    int hits = 0;
    char phrase[512];
    for (int k = 0; k < nw;) {
        int used = 0;
        for (int m = a->max_words; m >= 1 && !used; m--) {
            if (k + m > nw) continue;
            size_t p = 0;
            int ok = 1;
            for (int j = 0; j < m && ok; j++) {
                size_t l = strlen(w[k + j]);
                if (p + l + 2 >= sizeof phrase) { ok = 0; break; }
                if (j) phrase[p++] = ' ';
                memcpy(phrase + p, w[k + j], l);
                p += l;
            }
            if (!ok) continue;
            phrase[p] = '\0';
            const afinn_entry *e = lookup(a, phrase);
            if (e) { score += e->value; hits++; used = m; }
        }
        k += used ? used : 1;
    }
    free(buf);
    free(w);
    if (n_hits) *n_hits = hits;
    return score;
}
