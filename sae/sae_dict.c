/* sae_dict.c - the dictionary object: names, allocation, validation, model
 * checks, loading by path kind. */
#include "sae_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *ARCH_NAMES[] = {"standard", "topk", "jumprelu", "gated"};
static const char *NORM_NAMES[] = {"none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"};

const char *sae_arch_name(sae_arch a) {
    return (a >= SAE_STANDARD && a <= SAE_GATED) ? ARCH_NAMES[a] : "?";
}

const char *sae_norm_name(sae_norm n) {
    return (n >= SAE_NORM_NONE && n <= SAE_NORM_LAYER) ? NORM_NAMES[n] : "?";
}

int sae_arch_parse(const char *s, sae_arch *a) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, ARCH_NAMES[i]) == 0) { *a = (sae_arch)i; return 1; }
    return 0;
}

int sae_norm_parse(const char *s, sae_norm *n) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, NORM_NAMES[i]) == 0) { *n = (sae_norm)i; return 1; }
    return 0;
}

void sae_strlcpy(char *dst, const char *src, size_t n) {
    if (!n) return;
    size_t l = src ? strlen(src) : 0;
    if (l >= n) l = n - 1;
    if (l) memcpy(dst, src, l);
    dst[l] = '\0';
}

void sae_free(sae_dict *d) {
    if (!d) return;
    free(d->W_enc); free(d->W_dec); free(d->b_enc); free(d->b_dec);
    free(d->threshold); free(d->b_gate); free(d->b_mag); free(d->r_mag);
    free(d->log_sparsity);
    if (d->labels) {
        for (int i = 0; i < d->d_sae; i++) free(d->labels[i]);
        free(d->labels);
    }
    free(d->source);
    free(d);
}

int sae_check_sizes(int64_t d_in, int64_t d_sae, const char *file, char *err) {
    if (d_in < 1 || d_in > SAE_MAX_D_IN)
        return ss_fail(err, SS_EINPUT, "%s: d_in = %lld out of range [1, %d]", file, (long long)d_in, SAE_MAX_D_IN);
    if (d_sae < 1 || d_sae > SAE_MAX_D_SAE)
        return ss_fail(err, SS_EINPUT, "%s: d_sae = %lld out of range [1, %d]", file, (long long)d_sae, SAE_MAX_D_SAE);
    if (d_in * d_sae > SAE_MAX_WEIGHTS)
        return ss_fail(err, SS_EINPUT, "%s: d_in * d_sae = %lld weights, more than the %lld supported", file,
                       (long long)(d_in * d_sae), (long long)SAE_MAX_WEIGHTS);
    return SS_OK;
}

int sae_alloc_arrays(sae_dict *d, const char *file, char *err) {
    int rc = sae_check_sizes(d->d_in, d->d_sae, file, err);
    if (rc) return rc;
    size_t n_in = (size_t)d->d_in, n_sae = (size_t)d->d_sae;
    d->W_enc = ss_calloc(n_in * n_sae, sizeof(float));
    d->W_dec = ss_calloc(n_in * n_sae, sizeof(float));
    d->b_enc = ss_calloc(n_sae, sizeof(float));
    d->b_dec = ss_calloc(n_in, sizeof(float));
    int ok = d->W_enc && d->W_dec && d->b_enc && d->b_dec;
    if (d->arch == SAE_JUMPRELU) ok = ok && (d->threshold = ss_calloc(n_sae, sizeof(float)));
    if (d->arch == SAE_GATED) {
        d->b_gate = ss_calloc(n_sae, sizeof(float));
        d->b_mag = ss_calloc(n_sae, sizeof(float));
        d->r_mag = ss_calloc(n_sae, sizeof(float));
        ok = ok && d->b_gate && d->b_mag && d->r_mag;
    }
    if (!ok) return ss_fail(err, SS_ERUNTIME, "%s: out of memory for %d x %d dictionary", file, d->d_in, d->d_sae);
    return SS_OK;
}

/* First non-finite entry of a (rows, cols) array: error naming it. */
static int check_finite(const float *a, int64_t rows, int64_t cols, const char *name, const char *file, char *err) {
    if (!a) return SS_OK;
    int64_t n = rows * cols;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(a[i])) continue;
        if (cols > 1)
            return ss_fail(err, SS_EINPUT, "%s: dataset '%s': non-finite value %g at index [%lld,%lld]", file, name,
                           (double)a[i], (long long)(i / cols), (long long)(i % cols));
        return ss_fail(err, SS_EINPUT, "%s: dataset '%s': non-finite value %g at index [%lld]", file, name,
                       (double)a[i], (long long)i);
    }
    return SS_OK;
}

int sae_validate(const sae_dict *d, const char *file, char *err) {
    int rc = sae_check_sizes(d->d_in, d->d_sae, file, err);
    if (rc) return rc;
    if (d->arch < SAE_STANDARD || d->arch > SAE_GATED) return ss_fail(err, SS_EINPUT, "%s: unknown architecture", file);
    if (d->norm < SAE_NORM_NONE || d->norm > SAE_NORM_LAYER)
        return ss_fail(err, SS_EINPUT, "%s: unknown normalize_activations", file);
    if (d->arch == SAE_TOPK && (d->k < 1 || d->k > d->d_sae))
        return ss_fail(err, SS_EINPUT, "%s: field 'k' = %d out of range [1, d_sae = %d] for a topk SAE", file, d->k,
                       d->d_sae);
    if (!d->W_enc || !d->W_dec || !d->b_enc || !d->b_dec)
        return ss_fail(err, SS_EINPUT, "%s: missing one of W_enc, W_dec, b_enc, b_dec", file);
    if (d->arch == SAE_JUMPRELU && !d->threshold)
        return ss_fail(err, SS_EINPUT, "%s: jumprelu SAE without 'threshold'", file);
    if (d->arch == SAE_GATED && (!d->b_gate || !d->b_mag || !d->r_mag))
        return ss_fail(err, SS_EINPUT, "%s: gated SAE needs 'b_gate', 'b_mag' and 'r_mag'", file);
    if (d->context_size < 0) return ss_fail(err, SS_EINPUT, "%s: field 'context_size' = %d is negative", file, d->context_size);
    if ((rc = check_finite(d->W_enc, d->d_in, d->d_sae, "W_enc", file, err))) return rc;
    if ((rc = check_finite(d->W_dec, d->d_sae, d->d_in, "W_dec", file, err))) return rc;
    if ((rc = check_finite(d->b_enc, d->d_sae, 1, "b_enc", file, err))) return rc;
    if ((rc = check_finite(d->b_dec, d->d_in, 1, "b_dec", file, err))) return rc;
    if ((rc = check_finite(d->threshold, d->d_sae, 1, "threshold", file, err))) return rc;
    if ((rc = check_finite(d->b_gate, d->d_sae, 1, "b_gate", file, err))) return rc;
    if ((rc = check_finite(d->b_mag, d->d_sae, 1, "b_mag", file, err))) return rc;
    if ((rc = check_finite(d->r_mag, d->d_sae, 1, "r_mag", file, err))) return rc;
    if (d->r_mag)   /* exp(r_mag) must stay finite */
        for (int i = 0; i < d->d_sae; i++)
            if (d->r_mag[i] > 80.0f)
                return ss_fail(err, SS_EINPUT, "%s: dataset 'r_mag': value %g at index [%d] overflows exp()", file,
                               (double)d->r_mag[i], i);
    /* log_sparsity may legitimately hold -inf (never fired); only NaN is bad */
    if (d->log_sparsity)
        for (int i = 0; i < d->d_sae; i++)
            if (isnan(d->log_sparsity[i]))
                return ss_fail(err, SS_EINPUT, "%s: dataset 'log_sparsity': NaN at index [%d]", file, i);
    return SS_OK;
}

int sae_load(sae_dict **out, const char *path, char *err) {
    *out = NULL;
    struct stat st;
    if (!path || !*path) return ss_fail(err, SS_EINPUT, "SAE path is empty");
    if (stat(path, &st) != 0) return ss_fail(err, SS_EINPUT, "%s: no such file or directory", path);
    if (S_ISDIR(st.st_mode)) return sae_load_saelens(out, path, err);
    return sae_load_h5(out, path, err);
}

/* The architecture a SAELens / TransformerLens model name belongs to, or -1
   when the name says nothing we know (custom names pass unchecked). */
static int name_arch(const char *name) {
    char low[256];
    size_t n = 0;
    for (; name[n] && n < sizeof low - 1; n++) low[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    low[n] = 0;
    const char *base = strrchr(low, '/');   /* "EleutherAI/pythia-70m" */
    base = base ? base + 1 : low;
    if (strstr(base, "pythia") || strstr(base, "neox")) return GPT2_ARCH_NEOX;
    if (!strncmp(base, "gpt-j", 5) || !strncmp(base, "gptj", 4)) return GPT2_ARCH_GPTJ;
    if (!strncmp(base, "gpt2", 4) || !strncmp(base, "gpt-2", 5) || strstr(base, "-gpt2")) return GPT2_ARCH_GPT2;
    return -1;
}

int sae_check_model(const sae_dict *d, const gpt2_config *cfg, gpt2_hook_point *hp, char *err) {
    char e2[SS_ERRLEN];
    int na = name_arch(d->model_name);
    if (na >= 0 && na != cfg->arch)
        return ss_fail(err, SS_EINPUT, "%s: field 'model_name' is '%.64s', a %s model, but the loaded model is %s", d->path,
                       d->model_name, gpt2_arch_name(na), gpt2_arch_name(cfg->arch));
    if (gpt2_hook_parse(cfg, d->hook_name, hp, e2) != SS_OK)
        return ss_fail(err, SS_EINPUT, "%s: field 'hook_name': %s", d->path, e2);
    if (hp->kind == GPT2_HOOK_PATTERN)
        return ss_fail(err, SS_EINPUT, "%s: field 'hook_name': '%s' is read-only, an SAE cannot hook it", d->path,
                       d->hook_name);
    int w = gpt2_hook_width(cfg, hp);
    if (w != d->d_in)
        return ss_fail(err, SS_EINPUT, "%s: field 'd_in' = %d but the model's '%s' has width %d", d->path, d->d_in,
                       d->hook_name, w);
    return SS_OK;
}

int sae_hook_center(const sae_dict *d, const gpt2_hook_point *hp) {
    return d->center_writing_weights && gpt2_hook_is_residual(hp);
}

float sae_latent_dec_norm(const sae_dict *d, int latent) {
    if (latent < 0 || latent >= d->d_sae) return 0.0f;
    const float *w = d->W_dec + (size_t)latent * d->d_in;
    double s = 0;
    for (int j = 0; j < d->d_in; j++) s += (double)w[j] * w[j];
    return (float)sqrt(s);
}

int sae_sparse_row(const float *f_row, int d_sae, int *idx, float *val, int cap) {
    /* insertion into a sorted list of at most cap entries: rows are sparse */
    int n = 0;
    if (cap <= 0) return 0;
    for (int i = 0; i < d_sae; i++) {
        float v = f_row[i];
        if (v == 0.0f) continue;
        if (n == cap && !(v > val[n - 1])) continue;
        int j = n < cap ? n++ : cap - 1;
        while (j > 0 && v > val[j - 1]) { val[j] = val[j - 1]; idx[j] = idx[j - 1]; j--; }
        val[j] = v; idx[j] = i;
    }
    return n;
}
