/* gpt2_weights.c - load an HF GPT-2 directory into a gpt2_model.
 *
 * Accepts model.safetensors or a sharded model.safetensors.index.json, tensor
 * names with or without the "transformer." prefix (save_pretrained vs the
 * official files), and F32/F16/BF16 tensors. Matrices are used in place from
 * the mmap in their own dtype (the matmuls convert f16/bf16 on the fly);
 * vectors (LayerNorms, biases) and wpe are converted to f32 once.
 * GPT-J and GPT-NeoX tensors are bound in arch_weights.c with the helpers here.
 */
#include "gpt2.h"
#include "gpt2_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void gpt2_free(gpt2_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (int i = 0; i < m->n_files; i++) st_close(&m->files[i]);
    free(m->files);
    free(m->layers);
    free(m);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Open the shard files listed in an index's weight_map (each once). */
static int open_sharded(gpt2_model *m, const char *index_path, char *err) {
    char *text;
    int rc = ss_read_file(index_path, &text, NULL, err);
    if (rc) return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return ss_fail(err, SS_EINPUT, "%s: missing object 'weight_map'", index_path);
    }
    int cap = cJSON_GetArraySize(wm);
    char **names = ss_calloc((size_t)(cap ? cap : 1), sizeof(char *));
    if (!names) { cJSON_Delete(root); return ss_fail(err, SS_ERUNTIME, "%s: out of memory", index_path); }
    int nn = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || strstr(e->valuestring, "..")) {
            rc = ss_fail(err, SS_EINPUT, "%s: weight_map['%.64s'] is not a file name in the directory", index_path, e->string);
            break;
        }
        int seen = 0;
        for (int i = 0; i < nn; i++) seen |= strcmp(names[i], e->valuestring) == 0;
        if (!seen) names[nn++] = e->valuestring;
    }
    if (!rc) {
        m->files = ss_calloc((size_t)(nn ? nn : 1), sizeof(st_file));
        if (!m->files) rc = ss_fail(err, SS_ERUNTIME, "%s: out of memory", index_path);
        for (int i = 0; i < nn && !rc; i++) {
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", m->dir, names[i]);
            rc = st_open(&m->files[i], p, err);
            if (!rc) m->n_files++;
        }
    }
    free(names);
    cJSON_Delete(root);
    return rc;
}

/* Find `name` with or without the "transformer." prefix in any shard. */
const st_tensor *gpt2_find_tensor(const gpt2_model *m, const char *name, const st_file **file) {
    char pre[512];
    snprintf(pre, sizeof pre, "transformer.%s", name);
    for (int i = 0; i < m->n_files; i++) {
        const st_tensor *t = st_find(&m->files[i], name);
        if (!t) t = st_find(&m->files[i], pre);
        if (t) { *file = &m->files[i]; return t; }
    }
    return NULL;
}

/* 1 if no NaN/inf among n floats: a branch-free scan of the exponent bits
   that runs at memory speed (the pages are needed for the forward anyway). */
static int all_finite(const float *p, int64_t n) {
    const uint32_t *u = (const uint32_t *)p;
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= ((u[i] & 0x7f800000u) == 0x7f800000u);
    return !bad;
}

/* Bind one weight: check shape, then point into the mmap (f32, aligned) or
   convert into an owned f32 buffer. Rejects NaN/inf. */
int gpt2_bind_f32(gpt2_model *m, const char *name, int ndim, int64_t d0, int64_t d1, const float **out, char *err) {
    const st_file *f = NULL;
    const st_tensor *t = gpt2_find_tensor(m, name, &f);
    if (!t) return ss_fail(err, SS_EINPUT, "%s: missing tensor '%s' (also tried 'transformer.%s')", m->dir, name, name);
    int64_t shape[2] = {d0, d1};
    int rc = st_check_shape(f, t, ndim, shape, err);
    if (rc) return rc;
    const float *p;
    int scan = 1;
    if (t->dtype == ST_F32 && ((uintptr_t)t->data % 4) == 0) {
        p = t->data;
        /* big mmap'd matrices are not read at load (that would fault in the
           whole file before the first token); NaN/inf in them surface as
           non-finite logits, which gpt2_forward reports */
        scan = t->numel <= (1 << 20);
        st_prefault(t);   /* the forward pass reads every weight: map it now, in bulk */
    } else {
        float *buf = ss_malloc_big((size_t)t->numel, sizeof(float));
        if (!buf) return ss_fail(err, SS_ERUNTIME, "%s: out of memory converting '%s'", f->path, t->name);
        rc = st_to_f32(f, t, buf, err);
        if (rc) { free(buf); return rc; }
        m->owned[m->n_owned++] = buf;
        p = buf;
    }
    if (scan && !all_finite(p, t->numel)) {
        int64_t i = 0;
        while (isfinite(p[i])) i++;
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': non-finite value at index %lld", f->path, t->name, (long long)i);
    }
    m->weight_bytes += (size_t)t->numel * 4;
    *out = p;
    return SS_OK;
}

/* 1 if no NaN/inf among n half-precision values (exponent bits all ones). */
static int all_finite_half(const uint16_t *p, int64_t n, int dtype) {
    uint16_t mask = dtype == ST_BF16 ? 0x7f80u : 0x7c00u, bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= (uint16_t)((p[i] & mask) == mask);
    return !bad;
}

int gpt2_bind_mat(gpt2_model *m, const char *name, int64_t d0, int64_t d1, int out_major, gpt2_mat *out, char *err) {
    const st_file *f = NULL;
    const st_tensor *t = gpt2_find_tensor(m, name, &f);
    if (!t) return ss_fail(err, SS_EINPUT, "%s: missing tensor '%s' (also tried 'transformer.%s')", m->dir, name, name);
    int64_t shape[2] = {d0, d1};
    int rc = st_check_shape(f, t, 2, shape, err);
    if (rc) return rc;
    size_t es = st_dtype_size(t->dtype);
    if ((t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) || ((uintptr_t)t->data % es) != 0) {
        /* f64, or a misaligned tensor: an owned f32 copy */
        const float *p;
        if ((rc = gpt2_bind_f32(m, name, 2, d0, d1, &p, err))) return rc;
        out->data = p;
        out->dtype = ST_F32;
        out->out_major = out_major;
        return SS_OK;
    }
    /* big mmap'd matrices are not scanned at load (that would fault in the
       whole file before the first token); NaN/inf in them surface as
       non-finite logits, which gpt2_forward reports */
    if (t->numel <= (1 << 20)) {
        int ok = t->dtype == ST_F32 ? all_finite(t->data, t->numel) : all_finite_half(t->data, t->numel, t->dtype);
        if (!ok) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': non-finite value", f->path, t->name);
    }
    st_prefault(t);   /* the forward pass reads every weight: map it now, in bulk */
    out->data = t->data;
    out->dtype = t->dtype;
    out->out_major = out_major;
    m->weight_bytes += (size_t)t->numel * es;
    return SS_OK;
}

int gpt2_load(gpt2_model **out, const char *dir, char *err) {
    *out = NULL;
    gpt2_model *m = ss_calloc(1, sizeof *m);
    if (!m) return ss_fail(err, SS_ERUNTIME, "out of memory");
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    char p[8192];
    snprintf(p, sizeof p, "%s/config.json", dir);
    int rc = gpt2_config_load(&m->cfg, p, err);
    if (rc) { gpt2_free(m); return rc; }
    const gpt2_config *c = &m->cfg;

    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (file_exists(p)) {
        m->files = ss_calloc(1, sizeof(st_file));
        rc = m->files ? st_open(&m->files[0], p, err) : ss_fail(err, SS_ERUNTIME, "%s: out of memory", p);
        if (!rc) m->n_files = 1;
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
        if (file_exists(p)) rc = open_sharded(m, p, err);
        else rc = ss_fail(err, SS_EINPUT, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    if (rc) { gpt2_free(m); return rc; }

    int L = c->n_layer, C = c->n_embd;
    m->owned = ss_calloc((size_t)(16 * L + 8), sizeof(float *));
    m->layers = ss_calloc((size_t)L, sizeof(gpt2_layer));
    if (!m->owned || !m->layers) { gpt2_free(m); return ss_fail(err, SS_ERUNTIME, "out of memory"); }

    if (c->arch != GPT2_ARCH_GPT2) {
        rc = gpt2_bind_other(m, err);
        if (rc) { gpt2_free(m); return rc; }
        *out = m;
        return SS_OK;
    }
    rc = gpt2_bind_mat(m, "wte.weight", c->vocab_size, C, 1, &m->wte, err);
    m->unembed = m->wte;   /* tied */
    if (!rc) rc = gpt2_bind_f32(m, "wpe.weight", 2, c->n_positions, C, &m->wpe, err);
    if (!rc) rc = gpt2_bind_f32(m, "ln_f.weight", 1, C, 0, &m->lnf_w, err);
    if (!rc) rc = gpt2_bind_f32(m, "ln_f.bias", 1, C, 0, &m->lnf_b, err);
    for (int l = 0; l < L && !rc; l++) {
        gpt2_layer *ly = &m->layers[l];
        struct { const char *suffix; int nd; int64_t d0, d1; const float **dst; } w[] = {
            {"ln_1.weight", 1, C, 0, &ly->ln1_w},          {"ln_1.bias", 1, C, 0, &ly->ln1_b},
            {"attn.c_attn.bias", 1, 3 * C, 0, &ly->attn_b}, {"attn.c_proj.bias", 1, C, 0, &ly->proj_b},
            {"ln_2.weight", 1, C, 0, &ly->ln2_w},          {"ln_2.bias", 1, C, 0, &ly->ln2_b},
            {"mlp.c_fc.bias", 1, 4 * C, 0, &ly->fc_b},     {"mlp.c_proj.bias", 1, C, 0, &ly->fcp_b},
        };
        struct { const char *suffix; int64_t d0, d1; gpt2_mat *dst; } mw[] = {
            {"attn.c_attn.weight", C, 3 * C, &ly->attn_w}, {"attn.c_proj.weight", C, C, &ly->proj_w},
            {"mlp.c_fc.weight", C, 4 * C, &ly->fc_w},      {"mlp.c_proj.weight", 4 * C, C, &ly->fcp_w},
        };
        char name[256];
        for (size_t i = 0; i < sizeof w / sizeof w[0] && !rc; i++) {
            snprintf(name, sizeof name, "h.%d.%s", l, w[i].suffix);
            rc = gpt2_bind_f32(m, name, w[i].nd, w[i].d0, w[i].d1, w[i].dst, err);
        }
        for (size_t i = 0; i < sizeof mw / sizeof mw[0] && !rc; i++) {
            snprintf(name, sizeof name, "h.%d.%s", l, mw[i].suffix);
            rc = gpt2_bind_mat(m, name, mw[i].d0, mw[i].d1, 0, mw[i].dst, err);
        }
    }
    if (rc) { gpt2_free(m); return rc; }
    *out = m;
    return SS_OK;
}
