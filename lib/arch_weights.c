/* arch_weights.c - tensor names and shapes of GPT-J and GPT-NeoX / Pythia
 * checkpoints (HF safetensors, one file or sharded). Matrices are nn.Linear
 * weights, stored (out, in), kept in their dtype; LayerNorms and biases are
 * f32 (converted once if the file holds them in f16/bf16). Buffers some
 * checkpoints carry (attn.bias, attn.masked_bias, rotary_emb.inv_freq) are
 * not read.
 */
#include "gpt2_internal.h"

#include <stdio.h>

static int bind_gptj(gpt2_model *m, char *err) {
    const gpt2_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_inner, V = c->vocab_size, rc;
    if ((rc = gpt2_bind_mat(m, "wte.weight", V, C, 1, &m->wte, err)) ||
        (rc = gpt2_bind_mat(m, "lm_head.weight", V, C, 1, &m->unembed, err)) ||
        (rc = gpt2_bind_f32(m, "lm_head.bias", 1, V, 0, &m->unembed_b, err)) ||
        (rc = gpt2_bind_f32(m, "ln_f.weight", 1, C, 0, &m->lnf_w, err)) ||
        (rc = gpt2_bind_f32(m, "ln_f.bias", 1, C, 0, &m->lnf_b, err)))
        return rc;
    for (int l = 0; l < c->n_layer; l++) {
        gpt2_layer *ly = &m->layers[l];
        char n[256];
#define NM(s) (snprintf(n, sizeof n, "h.%d.%s", l, s), n)
        if ((rc = gpt2_bind_f32(m, NM("ln_1.weight"), 1, C, 0, &ly->ln1_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("ln_1.bias"), 1, C, 0, &ly->ln1_b, err)) ||
            (rc = gpt2_bind_mat(m, NM("attn.q_proj.weight"), C, C, 1, &ly->q_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("attn.k_proj.weight"), C, C, 1, &ly->k_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("attn.v_proj.weight"), C, C, 1, &ly->v_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("attn.out_proj.weight"), C, C, 1, &ly->proj_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("mlp.fc_in.weight"), F, C, 1, &ly->fc_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("mlp.fc_in.bias"), 1, F, 0, &ly->fc_b, err)) ||
            (rc = gpt2_bind_mat(m, NM("mlp.fc_out.weight"), C, F, 1, &ly->fcp_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("mlp.fc_out.bias"), 1, C, 0, &ly->fcp_b, err)))
            return rc;
#undef NM
    }
    return SS_OK;
}

static int bind_neox(gpt2_model *m, char *err) {
    const gpt2_config *c = &m->cfg;
    int C = c->n_embd, F = c->n_inner, V = c->vocab_size, rc;
    const st_file *f;   /* the output embedding: embed_out (Pythia's files) or lm_head (transformers 5) */
    if ((rc = gpt2_bind_mat(m, "gpt_neox.embed_in.weight", V, C, 1, &m->wte, err)) ||
        (rc = gpt2_bind_mat(m, gpt2_find_tensor(m, "embed_out.weight", &f) ? "embed_out.weight" : "lm_head.weight",
                            V, C, 1, &m->unembed, err)) ||
        (rc = gpt2_bind_f32(m, "gpt_neox.final_layer_norm.weight", 1, C, 0, &m->lnf_w, err)) ||
        (rc = gpt2_bind_f32(m, "gpt_neox.final_layer_norm.bias", 1, C, 0, &m->lnf_b, err)))
        return rc;
    for (int l = 0; l < c->n_layer; l++) {
        gpt2_layer *ly = &m->layers[l];
        char n[256];
#define NM(s) (snprintf(n, sizeof n, "gpt_neox.layers.%d.%s", l, s), n)
        if ((rc = gpt2_bind_f32(m, NM("input_layernorm.weight"), 1, C, 0, &ly->ln1_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("input_layernorm.bias"), 1, C, 0, &ly->ln1_b, err)) ||
            (rc = gpt2_bind_f32(m, NM("post_attention_layernorm.weight"), 1, C, 0, &ly->ln2_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("post_attention_layernorm.bias"), 1, C, 0, &ly->ln2_b, err)) ||
            (rc = gpt2_bind_mat(m, NM("attention.query_key_value.weight"), 3 * C, C, 1, &ly->attn_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("attention.dense.weight"), C, C, 1, &ly->proj_w, err)) ||
            (rc = gpt2_bind_mat(m, NM("mlp.dense_h_to_4h.weight"), F, C, 1, &ly->fc_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("mlp.dense_h_to_4h.bias"), 1, F, 0, &ly->fc_b, err)) ||
            (rc = gpt2_bind_mat(m, NM("mlp.dense_4h_to_h.weight"), C, F, 1, &ly->fcp_w, err)) ||
            (rc = gpt2_bind_f32(m, NM("mlp.dense_4h_to_h.bias"), 1, C, 0, &ly->fcp_b, err)))
            return rc;
        /* attention biases: present unless the config says attention_bias false */
        if (gpt2_find_tensor(m, NM("attention.query_key_value.bias"), &f) &&
            (rc = gpt2_bind_f32(m, n, 1, 3 * C, 0, &ly->attn_b, err)))
            return rc;
        if (gpt2_find_tensor(m, NM("attention.dense.bias"), &f) &&
            (rc = gpt2_bind_f32(m, n, 1, C, 0, &ly->proj_b, err)))
            return rc;
#undef NM
    }
    return SS_OK;
}

int gpt2_bind_other(gpt2_model *m, char *err) {
    return m->cfg.arch == GPT2_ARCH_GPTJ ? bind_gptj(m, err) : bind_neox(m, err);
}
