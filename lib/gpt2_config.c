/* gpt2_config.c - HF config.json for GPT-2. */
#include "gpt2.h"
#include "gpt2_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Read an integer field in [lo, hi]; `alt` is an alternative key (or NULL).
   Missing and no default (def < 0) -> error naming the field. */
static int cfg_int(const cJSON *root, const char *path, const char *key, const char *alt, long def,
                   long lo, long hi, int *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v && alt) v = cJSON_GetObjectItemCaseSensitive(root, alt);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return ss_fail(err, SS_EINPUT, "%s: missing field '%s'", path, key);
        *out = (int)def;
        return SS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ss_fail(err, SS_EINPUT, "%s: field '%s' must be an integer in [%ld, %ld]", path, v->string, lo, hi);
    *out = (int)v->valuedouble;
    return SS_OK;
}

int gpt2_config_load(gpt2_config *cfg, const char *path, char *err) {
    memset(cfg, 0, sizeof *cfg);
    char *text;
    int rc = ss_read_file(path, &text, NULL, err);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ss_fail(err, SS_EINPUT, "%s: not a JSON object", path);
    }
    char dup[64];
    if (ss_json_dup_key(root, dup, sizeof dup)) {   /* cJSON would silently use the first */
        cJSON_Delete(root);
        return ss_fail(err, SS_EINPUT, "%s: key '%s' appears twice", path, dup);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && (strcmp(mt->valuestring, "gptj") == 0 || strcmp(mt->valuestring, "gpt_neox") == 0)) {
        rc = gpt2_config_other(cfg, root, path, mt->valuestring, err);   /* arch_config.c */
        goto done;
    }
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "gpt2") != 0) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'model_type' is '%.32s', expected 'gpt2', 'gptj' or 'gpt_neox'", path, mt->valuestring);
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    if (act && (!cJSON_IsString(act) || (strcmp(act->valuestring, "gelu_new") != 0 &&
                                         strcmp(act->valuestring, "gelu_pytorch_tanh") != 0))) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'activation_function' must be 'gelu_new'", path);
        goto done;
    }
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(root, "scale_attn_by_inverse_layer_idx");
    if (cJSON_IsTrue(inv)) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'scale_attn_by_inverse_layer_idx' = true is not supported", path);
        goto done;
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "scale_attn_weights");
    if (cJSON_IsFalse(sc)) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'scale_attn_weights' = false is not supported", path);
        goto done;
    }
    if ((rc = cfg_int(root, path, "n_layer", "num_hidden_layers", -1, 1, 1024, &cfg->n_layer, err)) ||
        (rc = cfg_int(root, path, "n_head", "num_attention_heads", -1, 1, 1024, &cfg->n_head, err)) ||
        (rc = cfg_int(root, path, "n_embd", "hidden_size", -1, 1, 65536, &cfg->n_embd, err)) ||
        (rc = cfg_int(root, path, "n_positions", "n_ctx", -1, 1, 1 << 20, &cfg->n_positions, err)) ||
        (rc = cfg_int(root, path, "vocab_size", NULL, -1, 1, 1 << 24, &cfg->vocab_size, err)) ||
        (rc = cfg_int(root, path, "bos_token_id", NULL, 50256, 0, 1 << 24, &cfg->bos_id, err)) ||
        (rc = cfg_int(root, path, "eos_token_id", NULL, 50256, 0, 1 << 24, &cfg->eos_id, err)))
        goto done;
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(root, "n_inner");
    if (inner && !cJSON_IsNull(inner) && !(cJSON_IsNumber(inner) && inner->valuedouble == 4.0 * cfg->n_embd)) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'n_inner' must be null or 4*n_embd", path);
        goto done;
    }
    if (cfg->n_embd % cfg->n_head != 0) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'n_embd' (%d) is not divisible by 'n_head' (%d)", path,
                     cfg->n_embd, cfg->n_head);
        goto done;
    }
    /* ids the file gives must be tokens of the model; the GPT-2 default (50256)
       of a file that gives none falls back to the last token of a smaller vocab */
    const char *idk[2] = {"bos_token_id", "eos_token_id"};
    int *idv[2] = {&cfg->bos_id, &cfg->eos_id};
    for (int k = 0; k < 2; k++) {
        if (*idv[k] < cfg->vocab_size) continue;
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, idk[k]))) {
            rc = ss_fail(err, SS_EINPUT, "%s: field '%s' = %d is not a token id (vocab_size %d)", path, idk[k], *idv[k],
                         cfg->vocab_size);
            goto done;
        }
        *idv[k] = cfg->vocab_size - 1;
    }
    cfg->ln_eps = 1e-5f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (eps) {
        if (!cJSON_IsNumber(eps) || !((float)eps->valuedouble > 0) || eps->valuedouble > 1) {   /* > 0 in f32 too */
            rc = ss_fail(err, SS_EINPUT, "%s: field 'layer_norm_epsilon' must be a number in (0, 1]", path);
            goto done;
        }
        cfg->ln_eps = (float)eps->valuedouble;
    }
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (cJSON_IsFalse(tie)) {
        rc = ss_fail(err, SS_EINPUT, "%s: field 'tie_word_embeddings' = false is not supported (GPT-2 ties lm_head to wte)", path);
        goto done;
    }
    cfg->n_inner = 4 * cfg->n_embd;
done:
    cJSON_Delete(root);
    return rc;
}
