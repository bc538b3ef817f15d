/* arch_config.c - HF config.json for GPT-J (model_type "gptj") and GPT-NeoX /
 * Pythia ("gpt_neox"), in both the keys transformers 4.x wrote (rotary_pct,
 * rotary_emb_base) and 5.x writes (rope_parameters). */
#include "gpt2_internal.h"

#include <math.h>
#include <string.h>

static int get_int(const cJSON *root, const char *path, const char *key, long def, long lo, long hi, int *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) return ss_fail(err, SS_EINPUT, "%s: missing field '%s'", path, key);
        *out = (int)def;
        return SS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ss_fail(err, SS_EINPUT, "%s: field '%s' must be an integer in [%ld, %ld]", path, key, lo, hi);
    *out = (int)v->valuedouble;
    return SS_OK;
}

static int get_num(const cJSON *obj, const char *path, const char *key, double def, double lo, double hi, double *out, char *err) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v || cJSON_IsNull(v)) { *out = def; return SS_OK; }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return ss_fail(err, SS_EINPUT, "%s: field '%s' must be a number in [%g, %g]", path, key, lo, hi);
    *out = v->valuedouble;
    return SS_OK;
}

static int get_bool(const cJSON *root, const char *path, const char *key, int def, int *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return SS_OK; }
    if (!cJSON_IsBool(v)) return ss_fail(err, SS_EINPUT, "%s: field '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return SS_OK;
}

int gpt2_config_other(gpt2_config *cfg, const cJSON *root, const char *path, const char *model_type, char *err) {
    int rc, neox = strcmp(model_type, "gpt_neox") == 0;
    cfg->arch = neox ? GPT2_ARCH_NEOX : GPT2_ARCH_GPTJ;
    double eps = 1e-5, theta = 10000.0;
    if (!neox) {
        if ((rc = get_int(root, path, "n_layer", -1, 1, 1024, &cfg->n_layer, err)) ||
            (rc = get_int(root, path, "n_head", -1, 1, 1024, &cfg->n_head, err)) ||
            (rc = get_int(root, path, "n_embd", -1, 1, 65536, &cfg->n_embd, err)) ||
            (rc = get_int(root, path, "n_positions", -1, 1, 1 << 20, &cfg->n_positions, err)) ||
            (rc = get_int(root, path, "vocab_size", -1, 1, 1 << 24, &cfg->vocab_size, err)) ||
            (rc = get_int(root, path, "n_inner", 0, 1, 1 << 20, &cfg->n_inner, err)) ||
            (rc = get_int(root, path, "rotary_dim", 0, 1, 65536, &cfg->rotary_dim, err)) ||
            (rc = get_int(root, path, "bos_token_id", 50256, 0, 1 << 24, &cfg->bos_id, err)) ||
            (rc = get_int(root, path, "eos_token_id", 50256, 0, 1 << 24, &cfg->eos_id, err)) ||
            (rc = get_num(root, path, "layer_norm_epsilon", 1e-5, 1e-30, 1, &eps, err)))
            return rc;
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
        if (act && (!cJSON_IsString(act) || (strcmp(act->valuestring, "gelu_new") != 0 &&
                                             strcmp(act->valuestring, "gelu_pytorch_tanh") != 0)))
            return ss_fail(err, SS_EINPUT, "%s: field 'activation_function' must be 'gelu_new' for gptj", path);
        if (cfg->n_embd % cfg->n_head)
            return ss_fail(err, SS_EINPUT, "%s: field 'n_embd' (%d) is not divisible by 'n_head' (%d)", path, cfg->n_embd, cfg->n_head);
        if (cfg->n_inner == 0) cfg->n_inner = 4 * cfg->n_embd;
        if (cfg->rotary_dim == 0) cfg->rotary_dim = cfg->n_embd / cfg->n_head;   /* null: the whole head */
        cfg->parallel = 1;
    } else {
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
        if (!rp || cJSON_IsNull(rp)) rp = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        if (rp && !cJSON_IsNull(rp) && !cJSON_IsObject(rp))
            return ss_fail(err, SS_EINPUT, "%s: field 'rope_parameters' must be an object", path);
        if (cJSON_IsObject(rp)) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
            if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rp, "type");
            if (ty && !(cJSON_IsString(ty) && strcmp(ty->valuestring, "default") == 0))
                return ss_fail(err, SS_EINPUT, "%s: field 'rope_parameters.rope_type' must be 'default' (scaled rotary "
                               "embeddings are not supported)", path);
        } else rp = NULL;
        double pct = 0.25;
        int bias = 1;
        if ((rc = get_int(root, path, "num_hidden_layers", -1, 1, 1024, &cfg->n_layer, err)) ||
            (rc = get_int(root, path, "num_attention_heads", -1, 1, 1024, &cfg->n_head, err)) ||
            (rc = get_int(root, path, "hidden_size", -1, 1, 65536, &cfg->n_embd, err)) ||
            (rc = get_int(root, path, "max_position_embeddings", -1, 1, 1 << 20, &cfg->n_positions, err)) ||
            (rc = get_int(root, path, "vocab_size", -1, 1, 1 << 24, &cfg->vocab_size, err)) ||
            (rc = get_int(root, path, "intermediate_size", -1, 1, 1 << 20, &cfg->n_inner, err)) ||
            (rc = get_int(root, path, "bos_token_id", 0, 0, 1 << 24, &cfg->bos_id, err)) ||
            (rc = get_int(root, path, "eos_token_id", 0, 0, 1 << 24, &cfg->eos_id, err)) ||
            (rc = get_num(root, path, "layer_norm_eps", 1e-5, 1e-30, 1, &eps, err)) ||
            (rc = get_num(root, path, "rotary_pct", 0.25, 0, 1, &pct, err)) ||
            (rc = get_num(root, path, "rotary_emb_base", 10000.0, 1, 1e12, &theta, err)) ||
            (rc = get_num(root, path, "rope_theta", theta, 1, 1e12, &theta, err)) ||
            (rc = get_num(rp, path, "partial_rotary_factor", pct, 0, 1, &pct, err)) ||
            (rc = get_num(rp, path, "rope_theta", theta, 1, 1e12, &theta, err)) ||
            (rc = get_bool(root, path, "use_parallel_residual", 1, &cfg->parallel, err)) ||
            (rc = get_bool(root, path, "attention_bias", 1, &bias, err)))
            return rc;
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
        if (act && !cJSON_IsString(act))
            return ss_fail(err, SS_EINPUT, "%s: field 'hidden_act' must be a string", path);
        if (!act || strcmp(act->valuestring, "gelu") == 0) cfg->gelu_erf = 1;
        else if (strcmp(act->valuestring, "gelu_new") == 0 || strcmp(act->valuestring, "gelu_pytorch_tanh") == 0) cfg->gelu_erf = 0;
        else return ss_fail(err, SS_EINPUT, "%s: field 'hidden_act' is '%.32s'; supported: 'gelu', 'gelu_new'", path, act->valuestring);
        if (cfg->n_embd % cfg->n_head)
            return ss_fail(err, SS_EINPUT, "%s: field 'hidden_size' (%d) is not divisible by 'num_attention_heads' (%d)",
                           path, cfg->n_embd, cfg->n_head);
        cfg->rotary_dim = (int)((cfg->n_embd / cfg->n_head) * pct);   /* int(head_size * rotary_pct), as HF */
        cfg->rope_theta = (float)theta;
        (void)bias;   /* attention_bias: the loader binds the biases if the file has them */
    }
    if (!neox) cfg->rope_theta = 10000.0f;
    int HS = cfg->n_embd / cfg->n_head;
    if (cfg->rotary_dim > HS || cfg->rotary_dim % 2)
        return ss_fail(err, SS_EINPUT, "%s: rotary dimension %d must be even and at most the head size %d", path, cfg->rotary_dim, HS);
    if (cfg->bos_id >= cfg->vocab_size || cfg->eos_id >= cfg->vocab_size)
        return ss_fail(err, SS_EINPUT, "%s: field 'bos_token_id' / 'eos_token_id' (%d / %d) outside the vocabulary (%d)", path,
                       cfg->bos_id, cfg->eos_id, cfg->vocab_size);
    cfg->ln_eps = (float)eps;
    if (!(cfg->ln_eps > 0)) return ss_fail(err, SS_EINPUT, "%s: layer norm epsilon must be > 0", path);
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (cJSON_IsTrue(tie))
        return ss_fail(err, SS_EINPUT, "%s: field 'tie_word_embeddings' = true is not supported for %s (its output "
                       "embedding is a separate matrix)", path, model_type);
    return SS_OK;
}

const char *gpt2_arch_name(int arch) {
    return arch == GPT2_ARCH_GPTJ ? "gptj" : arch == GPT2_ARCH_NEOX ? "gpt_neox" : "gpt2";
}
