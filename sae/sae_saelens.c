/* sae_saelens.c - import a SAELens SAE folder:
 *   cfg.json                   v6 layout (fields at top level + "metadata"
 *                              object) or the pre-6.0 flat layout
 *   sae_weights.safetensors    W_enc (d_in, d_sae), W_dec (d_sae, d_in), b_enc,
 *                              b_dec; threshold (or log_threshold) for jumprelu;
 *                              b_gate, b_mag, r_mag for gated (no b_enc)
 *   sparsity.safetensors       optional: "sparsity" (d_sae), log10 density
 *
 * cfg.json, as SAELens reads it (handle_config_defaulting / pre-6.0 renames):
 *   architecture         "standard" | "topk" | "jumprelu" | "gated"; absent ->
 *                        from activation_fn_str / activation_fn ("relu" ->
 *                        standard, "topk" -> topk)
 *   k                    topk: top level, or activation_fn_kwargs.k
 *   apply_b_dec_to_input default true
 *   normalize_activations string, or a bool (true -> expected_average_only_in),
 *                        null/absent -> none
 *   hook_name            metadata.hook_name, hook_name or hook_point
 *   model_name, prepend_bos (default true), context_size: metadata.* or top level
 *   center_writing_weights: [metadata.]model_from_pretrained_kwargs.center_writing_weights
 *                        (absent -> false)
 */
#include "sae_internal.h"

#include "safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A field of the config: inside "metadata" (v6) first, then at top level. */
static const cJSON *cfg_get(const cJSON *root, const cJSON *meta, const char *key) {
    const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    if (v && !cJSON_IsNull(v)) return v;
    v = cJSON_GetObjectItemCaseSensitive(root, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Integer field; *out untouched if absent. Errors on non-integers. */
static int cfg_int(const cJSON *v, const char *file, const char *key, long long lo, long long hi, int *out,
                   char *err) {
    if (!v) return SS_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return ss_fail(err, SS_EINPUT, "%s: field '%s' is not an integer", file, key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return ss_fail(err, SS_EINPUT, "%s: field '%s' = %.0f out of range [%lld, %lld]", file, key, v->valuedouble,
                       lo, hi);
    *out = (int)v->valuedouble;
    return SS_OK;
}

/* Bool field (JSON bool, or 0/1); *out untouched if absent. */
static int cfg_bool(const cJSON *v, const char *file, const char *key, int *out, char *err) {
    if (!v) return SS_OK;
    if (cJSON_IsBool(v)) { *out = cJSON_IsTrue(v); return SS_OK; }
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) { *out = v->valuedouble != 0; return SS_OK; }
    return ss_fail(err, SS_EINPUT, "%s: field '%s' is not a boolean", file, key);
}

static int cfg_str(const cJSON *v, const char *file, const char *key, char *out, size_t n, char *err) {
    if (!v) return SS_OK;
    if (!cJSON_IsString(v)) return ss_fail(err, SS_EINPUT, "%s: field '%s' is not a string", file, key);
    if (strlen(v->valuestring) >= n)
        return ss_fail(err, SS_EINPUT, "%s: field '%s' longer than %zu bytes", file, key, n - 1);
    sae_strlcpy(out, v->valuestring, n);
    return SS_OK;
}

/* Fill d's metadata from the parsed cfg.json. */
static int parse_cfg(sae_dict *d, const cJSON *root, const char *file, char *err) {
    int rc;
    if (!cJSON_IsObject(root)) return ss_fail(err, SS_EINPUT, "%s: not a JSON object", file);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (!cJSON_IsObject(meta)) meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
    if (!cJSON_IsObject(meta)) meta = NULL;

    /* sizes */
    const cJSON *v_in = cJSON_GetObjectItemCaseSensitive(root, "d_in");
    const cJSON *v_sae = cJSON_GetObjectItemCaseSensitive(root, "d_sae");
    if (!v_in) return ss_fail(err, SS_EINPUT, "%s: missing field 'd_in'", file);
    if (!v_sae) return ss_fail(err, SS_EINPUT, "%s: missing field 'd_sae'", file);
    if ((rc = cfg_int(v_in, file, "d_in", 1, SAE_MAX_D_IN, &d->d_in, err))) return rc;
    if ((rc = cfg_int(v_sae, file, "d_sae", 1, SAE_MAX_D_SAE, &d->d_sae, err))) return rc;

    /* architecture and activation function */
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_fn_str");
    if (!cJSON_IsString(act)) act = cJSON_GetObjectItemCaseSensitive(root, "activation_fn");
    const char *act_s = cJSON_IsString(act) ? act->valuestring : "relu";
    if (arch && !cJSON_IsNull(arch)) {
        if (!cJSON_IsString(arch)) return ss_fail(err, SS_EINPUT, "%s: field 'architecture' is not a string", file);
        if (!sae_arch_parse(arch->valuestring, &d->arch))
            return ss_fail(err, SS_EINPUT,
                           "%s: field 'architecture': unknown architecture '%.64s' (expected standard, topk, jumprelu, gated)",
                           file, arch->valuestring);
    } else {
        d->arch = SAE_STANDARD;
    }
    if (d->arch == SAE_STANDARD) {
        /* pre-6.0: topk was a standard SAE with activation_fn_str "topk" */
        if (strcmp(act_s, "topk") == 0) d->arch = SAE_TOPK;
        else if (strcmp(act_s, "relu") != 0)
            return ss_fail(err, SS_EINPUT, "%s: field 'activation_fn_str': unsupported activation '%.64s' (relu or topk)",
                           file, act_s);
    }
    if (d->arch == SAE_TOPK) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "k");
        const char *kname = "k";
        if (!k || cJSON_IsNull(k)) {
            const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "activation_fn_kwargs");
            k = cJSON_IsObject(kw) ? cJSON_GetObjectItemCaseSensitive(kw, "k") : NULL;
            kname = "activation_fn_kwargs.k";
        }
        if (!k) return ss_fail(err, SS_EINPUT, "%s: topk SAE without field 'k' (or activation_fn_kwargs.k)", file);
        if ((rc = cfg_int(k, file, kname, 1, d->d_sae, &d->k, err))) return rc;
    }

    d->apply_b_dec_to_input = 1;
    if ((rc = cfg_bool(cJSON_GetObjectItemCaseSensitive(root, "apply_b_dec_to_input"), file, "apply_b_dec_to_input",
                       &d->apply_b_dec_to_input, err)))
        return rc;

    const cJSON *na = cJSON_GetObjectItemCaseSensitive(root, "normalize_activations");
    d->norm = SAE_NORM_NONE;
    if (cJSON_IsBool(na)) d->norm = cJSON_IsTrue(na) ? SAE_NORM_EXPECTED_AVG : SAE_NORM_NONE;
    else if (cJSON_IsString(na)) {
        if (!sae_norm_parse(na->valuestring, &d->norm))
            return ss_fail(err, SS_EINPUT,
                           "%s: field 'normalize_activations': unknown value '%.64s' (none, expected_average_only_in, constant_norm_rescale, layer_norm)",
                           file, na->valuestring);
    } else if (na && !cJSON_IsNull(na))
        return ss_fail(err, SS_EINPUT, "%s: field 'normalize_activations' is not a string", file);

    /* where the SAE sits and how it was trained */
    const cJSON *hook = cfg_get(root, meta, "hook_name");
    const char *hook_key = "hook_name";
    if (!hook) { hook = cfg_get(root, meta, "hook_point"); hook_key = "hook_point"; }
    if (!hook) return ss_fail(err, SS_EINPUT, "%s: missing field 'hook_name' (metadata.hook_name or hook_point)", file);
    if ((rc = cfg_str(hook, file, hook_key, d->hook_name, sizeof d->hook_name, err))) return rc;
    const cJSON *head = cfg_get(root, meta, "hook_head_index");
    if (!head) head = cfg_get(root, meta, "hook_point_head_index");
    if (head) return ss_fail(err, SS_EINPUT, "%s: field 'hook_head_index': single-head SAEs are not supported", file);
    if ((rc = cfg_str(cfg_get(root, meta, "model_name"), file, "model_name", d->model_name, sizeof d->model_name, err)))
        return rc;
    d->prepend_bos = 1;
    if ((rc = cfg_bool(cfg_get(root, meta, "prepend_bos"), file, "prepend_bos", &d->prepend_bos, err))) return rc;
    if ((rc = cfg_int(cfg_get(root, meta, "context_size"), file, "context_size", 0, 1 << 24, &d->context_size, err)))
        return rc;
    const cJSON *kw = cfg_get(root, meta, "model_from_pretrained_kwargs");
    if (kw && !cJSON_IsObject(kw))
        return ss_fail(err, SS_EINPUT, "%s: field 'model_from_pretrained_kwargs' is not an object", file);
    if (kw && (rc = cfg_bool(cJSON_GetObjectItemCaseSensitive(kw, "center_writing_weights"), file,
                             "model_from_pretrained_kwargs.center_writing_weights", &d->center_writing_weights, err)))
        return rc;
    return SS_OK;
}

/* Copy tensor `name` of the expected shape into dst (converted to f32). */
static int take(const st_file *f, const char *name, int ndim, int64_t a, int64_t b, float *dst, int required,
                int *found, char *err) {
    const st_tensor *t = st_find(f, name);
    if (found) *found = t != NULL;
    if (!t) return required ? ss_fail(err, SS_EINPUT, "%s: missing tensor '%s'", f->path, name) : SS_OK;
    int64_t shape[2] = {a, b};
    int rc = st_check_shape(f, t, ndim, shape, err);
    if (rc) return rc;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': dtype %s, expected a float type", f->path, name,
                       st_dtype_name(t->dtype));
    return st_to_f32(f, t, dst, err);
}

/* Optional per-latent decoder scaling (SAELens finetuning_scaling_factor /
   "scaling_factor" tensor): folded into W_dec rows, which decodes identically. */
static int fold_scaling(sae_dict *d, const st_file *f, char *err) {
    const char *names[] = {"finetuning_scaling_factor", "scaling_factor"};
    for (int n = 0; n < 2; n++) {
        if (!st_find(f, names[n])) continue;
        float *s = ss_malloc2((size_t)d->d_sae, sizeof(float));
        if (!s) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", f->path);
        int rc = take(f, names[n], 1, d->d_sae, 0, s, 1, NULL, err);
        if (rc) { free(s); return rc; }
        for (int i = 0; i < d->d_sae; i++)
            for (int j = 0; j < d->d_in; j++) d->W_dec[(size_t)i * d->d_in + j] *= s[i];
        free(s);
    }
    return SS_OK;
}

static int load_weights(sae_dict *d, const char *wpath, char *err) {
    st_file f;
    int rc = st_open(&f, wpath, err);
    if (rc) return rc;
    int64_t C = d->d_in, S = d->d_sae;
    int found;
    if ((rc = take(&f, "W_enc", 2, C, S, d->W_enc, 1, NULL, err))) goto done;
    if ((rc = take(&f, "W_dec", 2, S, C, d->W_dec, 1, NULL, err))) goto done;
    if ((rc = take(&f, "b_dec", 1, C, 0, d->b_dec, 1, NULL, err))) goto done;
    /* gated has no b_enc (SAELens sets it to None); others require it */
    if ((rc = take(&f, "b_enc", 1, S, 0, d->b_enc, d->arch != SAE_GATED, NULL, err))) goto done;
    if (d->arch == SAE_JUMPRELU) {
        if ((rc = take(&f, "threshold", 1, S, 0, d->threshold, 0, &found, err))) goto done;
        if (!found) {   /* training checkpoints store log_threshold */
            if ((rc = take(&f, "log_threshold", 1, S, 0, d->threshold, 0, &found, err))) goto done;
            if (!found) { rc = ss_fail(err, SS_EINPUT, "%s: missing tensor 'threshold'", wpath); goto done; }
            for (int64_t i = 0; i < S; i++) d->threshold[i] = expf(d->threshold[i]);
        }
    }
    if (d->arch == SAE_GATED) {
        if ((rc = take(&f, "b_gate", 1, S, 0, d->b_gate, 1, NULL, err))) goto done;
        if ((rc = take(&f, "b_mag", 1, S, 0, d->b_mag, 1, NULL, err))) goto done;
        if ((rc = take(&f, "r_mag", 1, S, 0, d->r_mag, 1, NULL, err))) goto done;
    }
    rc = fold_scaling(d, &f, err);
done:
    st_close(&f);
    return rc;
}

static int load_sparsity(sae_dict *d, const char *spath, char *err) {
    st_file f;
    int rc = st_open(&f, spath, err);
    if (rc) return rc;
    d->log_sparsity = ss_malloc2((size_t)d->d_sae, sizeof(float));
    if (!d->log_sparsity) rc = ss_fail(err, SS_ERUNTIME, "%s: out of memory", spath);
    else rc = take(&f, "sparsity", 1, d->d_sae, 0, d->log_sparsity, 1, NULL, err);
    st_close(&f);
    return rc;
}

int sae_load_saelens(sae_dict **out, const char *dir, char *err) {
    *out = NULL;
    char cpath[4200], wpath[4200], spath[4200];
    if (strlen(dir) >= 4000) return ss_fail(err, SS_EINPUT, "%.64s...: path too long", dir);
    snprintf(cpath, sizeof cpath, "%s/cfg.json", dir);
    snprintf(wpath, sizeof wpath, "%s/sae_weights.safetensors", dir);
    snprintf(spath, sizeof spath, "%s/sparsity.safetensors", dir);

    sae_dict *d = calloc(1, sizeof *d);
    if (!d) return ss_fail(err, SS_ERUNTIME, "out of memory");
    sae_strlcpy(d->path, dir, sizeof d->path);
    char *text = NULL;
    int rc = ss_read_file(cpath, &text, NULL, err);
    if (rc) goto fail;
    cJSON *root = cJSON_Parse(text);
    if (!root) { rc = ss_fail(err, SS_EINPUT, "%s: not valid JSON", cpath); goto fail; }
    char dup[64];
    if (ss_json_dup_key(root, dup, sizeof dup)) {   /* cJSON would silently use the first */
        cJSON_Delete(root);
        rc = ss_fail(err, SS_EINPUT, "%s: key '%s' appears twice", cpath, dup);
        goto fail;
    }
    rc = parse_cfg(d, root, cpath, err);
    cJSON_Delete(root);
    if (rc) goto fail;
    d->source = text;
    text = NULL;

    if ((rc = sae_alloc_arrays(d, cpath, err))) goto fail;
    if ((rc = load_weights(d, wpath, err))) goto fail;
    struct stat st;
    if (stat(spath, &st) == 0 && (rc = load_sparsity(d, spath, err))) goto fail;
    if ((rc = sae_validate(d, wpath, err))) goto fail;
    *out = d;
    return SS_OK;
fail:
    free(text);
    sae_free(d);
    return rc;
}
