/* gguf.c - llama.cpp control vectors in GGUF v3 (see gguf.h). */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3, GGUF_T_UINT32 = 4,
    GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7, GGUF_T_STRING = 8, GGUF_T_ARRAY = 9,
    GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11, GGUF_T_FLOAT64 = 12, GGUF_T_COUNT
};
#define GGML_TYPE_F32 0
#define GGUF_ALIGN_DEFAULT 32

void gguf_cvec_free(gguf_cvec *cv) {
    if (!cv) return;
    free(cv->layer);
    free(cv->data);
    memset(cv, 0, sizeof *cv);
}

void gguf_cvec_hook(int N, char *buf, size_t n) { snprintf(buf, n, "blocks.%d.hook_resid_post", N); }

int gguf_is_gguf(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);   /* a FIFO must not hang this peek */
    if (fd < 0) return 0;
    struct stat st;
    char m[4];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && pread(fd, m, 4, 0) == 4 && memcmp(m, "GGUF", 4) == 0;
    close(fd);
    return ok;
}

/* --------------------------------------------------------------- writer --- */

static void put_u32(FILE *f, uint32_t v) {
    unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
    fwrite(b, 1, 4, f);
}
static void put_u64(FILE *f, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (v >> (8 * i)) & 0xff;
    fwrite(b, 1, 8, f);
}
static void put_str(FILE *f, const char *s) {
    put_u64(f, strlen(s));
    fwrite(s, 1, strlen(s), f);
}
static void put_f32(FILE *f, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    put_u32(f, u);
}

int gguf_cvec_write(const char *path, const gguf_cvec *cv, char *err) {
    if (cv->n_dirs <= 0 || cv->n_embd <= 0) return ss_fail(err, SS_EINPUT, "%s: control vector has no directions", path);
    for (int i = 0; i < cv->n_dirs; i++) {
        if (cv->layer[i] < 1)
            return ss_fail(err, SS_EINPUT, "%s: direction.%d: llama.cpp control vectors start at layer 1 (the output of block 0 cannot be steered)",
                           path, cv->layer[i]);
        for (int j = 0; j < i; j++)
            if (cv->layer[j] == cv->layer[i]) return ss_fail(err, SS_EINPUT, "%s: direction.%d given twice", path, cv->layer[i]);
    }
    ss_outfile o;
    int rc = ss_out_open(&o, path, err);
    if (rc) return rc;
    FILE *f = o.fp;
    const char *hint = cv->model_hint[0] ? cv->model_hint : "gpt2";
    size_t nbytes = (size_t)cv->n_embd * sizeof(float);
    size_t padded = (nbytes + GGUF_ALIGN_DEFAULT - 1) / GGUF_ALIGN_DEFAULT * GGUF_ALIGN_DEFAULT;
    /* header */
    fwrite("GGUF", 1, 4, f);
    put_u32(f, 3);
    put_u64(f, (uint64_t)cv->n_dirs);
    put_u64(f, 3);
    /* metadata */
    put_str(f, "general.architecture"); put_u32(f, GGUF_T_STRING); put_str(f, "controlvector");
    put_str(f, "controlvector.model_hint"); put_u32(f, GGUF_T_STRING); put_str(f, hint);
    put_str(f, "controlvector.layer_count"); put_u32(f, GGUF_T_INT32); put_u32(f, (uint32_t)cv->n_dirs);
    /* tensor infos */
    for (int i = 0; i < cv->n_dirs; i++) {
        char name[64];
        snprintf(name, sizeof name, "direction.%d", cv->layer[i]);
        put_str(f, name);
        put_u32(f, 1);
        put_u64(f, (uint64_t)cv->n_embd);
        put_u32(f, GGML_TYPE_F32);
        put_u64(f, (uint64_t)(i * padded));
    }
    /* pad to the alignment, then the data */
    long at = ftell(f);
    for (long p = at; p % GGUF_ALIGN_DEFAULT; p++) fputc(0, f);
    for (int i = 0; i < cv->n_dirs; i++) {
        const float *v = cv->data + (size_t)i * cv->n_embd;
        for (int j = 0; j < cv->n_embd; j++) put_f32(f, v[j]);
        for (size_t p = nbytes; p < padded; p++) fputc(0, f);
    }
    if (ferror(f)) { ss_out_abort(&o); return ss_fail(err, SS_ERUNTIME, "%s: write failed", path); }
    return ss_out_commit(&o, err);
}

/* --------------------------------------------------------------- reader --- */

typedef struct {
    const unsigned char *b;
    size_t len, at;
    const char *path;
    char *err;
    int bad;
} rd;

static int need(rd *r, size_t n, const char *what) {
    if (r->bad) return 0;
    if (n > r->len - r->at) {
        ss_fail(r->err, SS_EINPUT, "%s: truncated GGUF (%s at byte %zu runs past the end)", r->path, what, r->at);
        r->bad = 1;
        return 0;
    }
    return 1;
}
static uint32_t get_u32(rd *r, const char *what) {
    if (!need(r, 4, what)) return 0;
    const unsigned char *p = r->b + r->at;
    r->at += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(rd *r, const char *what) {
    if (!need(r, 8, what)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | r->b[r->at + i];
    r->at += 8;
    return v;
}
/* string: pointer into the buffer + length */
static const char *get_str(rd *r, size_t *n, const char *what) {
    uint64_t len = get_u64(r, what);
    if (r->bad) return NULL;
    if (len > (1u << 30) || !need(r, (size_t)len, what)) { if (!r->bad) { ss_fail(r->err, SS_EINPUT, "%s: %s too long", r->path, what); r->bad = 1; } return NULL; }
    const char *s = (const char *)r->b + r->at;
    r->at += (size_t)len;
    *n = (size_t)len;
    return s;
}
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    }
    return 0;
}
/* Skip a value of type t (arrays of any type, nested). */
static void skip_value(rd *r, uint32_t t, const char *key, int depth) {
    if (r->bad) return;
    if (t == GGUF_T_STRING) { size_t n; get_str(r, &n, key); return; }
    if (t == GGUF_T_ARRAY) {
        uint32_t et = get_u32(r, key);
        uint64_t n = get_u64(r, key);
        if (r->bad) return;
        if (depth > 4 || et >= GGUF_T_COUNT) { ss_fail(r->err, SS_EINPUT, "%s: metadata '%s': bad array type %u", r->path, key, et); r->bad = 1; return; }
        if (et != GGUF_T_STRING && et != GGUF_T_ARRAY) {
            size_t es = scalar_size(et);
            if (n > (r->len - r->at) / es) { ss_fail(r->err, SS_EINPUT, "%s: metadata '%s': array runs past the end", r->path, key); r->bad = 1; return; }
            r->at += (size_t)n * es;
            return;
        }
        if (n > r->len) { ss_fail(r->err, SS_EINPUT, "%s: metadata '%s': array too long", r->path, key); r->bad = 1; return; }
        for (uint64_t i = 0; i < n && !r->bad; i++) skip_value(r, et, key, depth + 1);
        return;
    }
    size_t es = scalar_size(t);
    if (!es) { ss_fail(r->err, SS_EINPUT, "%s: metadata '%s': unknown value type %u", r->path, key, t); r->bad = 1; return; }
    if (need(r, es, key)) r->at += es;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int gguf_cvec_read(gguf_cvec *cv, const char *path, char *err) {
    memset(cv, 0, sizeof *cv);
    cv->layer_count = -1;
    char *buf;
    size_t len;
    int rc = ss_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rd r = {(const unsigned char *)buf, len, 0, path, err, 0};
    if (len < 24 || memcmp(buf, "GGUF", 4) != 0) { free(buf); return ss_fail(err, SS_EINPUT, "%s: not a GGUF file (bad magic)", path); }
    r.at = 4;
    uint32_t version = get_u32(&r, "version");
    if (version < 2 || version > 3) { free(buf); return ss_fail(err, SS_EINPUT, "%s: GGUF version %u not supported (2 or 3)", path, version); }
    uint64_t n_tensors = get_u64(&r, "tensor_count");
    uint64_t n_kv = get_u64(&r, "metadata_kv_count");
    if (n_tensors > 100000 || n_kv > 100000) { free(buf); return ss_fail(err, SS_EINPUT, "%s: absurd tensor/metadata count", path); }
    uint64_t alignment = GGUF_ALIGN_DEFAULT;
    char arch[64] = "";
    for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
        size_t kn;
        const char *k = get_str(&r, &kn, "metadata key");
        uint32_t t = get_u32(&r, "metadata type");
        if (r.bad) break;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(kn < 127 ? kn : 127), k);
        if (t == GGUF_T_STRING && (!strcmp(key, "general.architecture") || !strcmp(key, "controlvector.model_hint"))) {
            size_t vn;
            const char *v = get_str(&r, &vn, key);
            if (r.bad) break;
            char *dst = !strcmp(key, "general.architecture") ? arch : cv->model_hint;
            snprintf(dst, 64, "%.*s", (int)(vn < 63 ? vn : 63), v);
        } else if (!strcmp(key, "controlvector.layer_count") && (t == GGUF_T_INT32 || t == GGUF_T_UINT32)) {
            cv->layer_count = (int)get_u32(&r, key);
        } else if (!strcmp(key, "general.alignment") && t == GGUF_T_UINT32) {
            alignment = get_u32(&r, key);
            if (!r.bad && (alignment == 0 || (alignment & (alignment - 1)))) {
                free(buf);
                return ss_fail(err, SS_EINPUT, "%s: general.alignment %llu is not a power of two", path, (unsigned long long)alignment);
            }
        } else {
            skip_value(&r, t, key, 0);
        }
    }
    if (r.bad) { free(buf); return SS_EINPUT; }
    if (arch[0] && strcmp(arch, "controlvector") != 0) {
        free(buf);
        return ss_fail(err, SS_EINPUT, "%s: general.architecture is '%s', not 'controlvector' (a model file, not a control vector?)", path, arch);
    }
    /* tensor infos */
    /* As llama.cpp's common_control_vector_load_one: every tensor must be
       "direction.<int>" (the index read like std::stoi: a leading integer,
       whatever follows it), layer >= 1, F32, one dimension that is not 1,
       all of one size; tensors that name the same layer are summed (its
       comment: "allows multiple directions for same layer in same file"), and
       two tensors of exactly one name are refused, as ggml's GGUF parser does. */
    size_t nt = (size_t)(n_tensors ? n_tensors : 1);
    cv->layer = calloc(nt, sizeof(int));
    uint64_t *offs = calloc(nt, sizeof(uint64_t));
    int *row_of = calloc(nt, sizeof(int));      /* tensor -> row of cv->data (its layer) */
    char **names = calloc(nt, sizeof(char *));
    if (!cv->layer || !offs || !row_of || !names) {
        free(buf); free(offs); free(row_of); free(names); gguf_cvec_free(cv);
        return ss_fail(err, SS_ERUNTIME, "out of memory");
    }
    int n_ent = 0;
    rc = SS_OK;
    for (uint64_t i = 0; i < n_tensors && !rc; i++) {
        size_t nn;
        const char *nm = get_str(&r, &nn, "tensor name");
        uint32_t nd = get_u32(&r, "tensor n_dims");
        if (r.bad) { rc = SS_EINPUT; break; }
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(nn < 127 ? nn : 127), nm);
        if (nd > 4) { rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s' has %u dims", path, name, nd); break; }
        uint64_t ne[4] = {1, 1, 1, 1}, numel = 1;
        for (uint32_t d = 0; d < nd; d++) { ne[d] = get_u64(&r, "tensor dims"); numel *= ne[d] ? ne[d] : 1; }
        uint32_t type = get_u32(&r, "tensor type");
        uint64_t off = get_u64(&r, "tensor offset");
        if (r.bad) { rc = SS_EINPUT; break; }
        if (!(names[i] = strndup(nm, nn))) { rc = ss_fail(err, SS_ERUNTIME, "out of memory"); break; }
        if (strncmp(name, "direction.", 10) != 0) {
            rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s' is not a direction.N (llama.cpp refuses such a control vector)", path, name);
            break;
        }
        const char *q = name + 10;
        while (*q == ' ' || (*q >= '\t' && *q <= '\r')) q++;   /* std::stoi skips leading white space */
        char *end;
        errno = 0;
        long N = strtol(q, &end, 10);
        if (end == q || errno || N < INT32_MIN || N > INT32_MAX || N < 0) {
            rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s': unparsable layer index", path, name);
            break;
        }
        if (N == 0) { rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s': llama.cpp rejects layer 0", path, name); break; }
        if (N > 100000) { rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s': layer %ld is past any model", path, name, N); break; }
        if (type != GGML_TYPE_F32) { rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s' is ggml type %u, not F32", path, name, type); break; }
        int eff_dims = 1;   /* ggml_n_dims: trailing dimensions of 1 do not count */
        for (uint32_t d = 1; d < nd; d++) if (ne[d] != 1) eff_dims = (int)d + 1;   /* a 0 is no vector either */
        if (nd == 0 || eff_dims != 1 || numel == 0 || numel > 1000000) { rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s' is not 1-D", path, name); break; }
        if (cv->n_embd == 0) cv->n_embd = (int)numel;
        else if ((int)numel != cv->n_embd) {
            rc = ss_fail(err, SS_EINPUT, "%s: tensor '%s' has %llu values, others have %d", path, name, (unsigned long long)numel, cv->n_embd);
            break;
        }
        int row = -1;
        for (int j = 0; j < cv->n_dirs; j++) if (cv->layer[j] == N) row = j;
        if (row < 0) { row = cv->n_dirs++; cv->layer[row] = (int)N; }
        row_of[n_ent] = row;
        offs[n_ent] = off;
        n_ent++;
    }
    if (!rc) {   /* one name twice: ggml's gguf_init_from_file refuses the file */
        char **sorted = malloc(nt * sizeof(char *));
        if (!sorted) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        else {
            memcpy(sorted, names, (size_t)n_tensors * sizeof(char *));
            qsort(sorted, (size_t)n_tensors, sizeof(char *), cmp_name);
            for (uint64_t i = 1; i < n_tensors && !rc; i++)
                if (!strcmp(sorted[i - 1], sorted[i]))
                    rc = ss_fail(err, SS_EINPUT, "%s: duplicate tensor name '%.100s' (ggml refuses the file)", path, sorted[i]);
            free(sorted);
        }
    }
    for (uint64_t i = 0; i < n_tensors; i++) free(names[i]);
    free(names);
    if (!rc && cv->n_dirs == 0) rc = ss_fail(err, SS_EINPUT, "%s: no direction.N tensors", path);
    if (!rc) {
        size_t data0 = (r.at + alignment - 1) / alignment * alignment;
        cv->data = ss_calloc((size_t)cv->n_dirs, (size_t)cv->n_embd * sizeof(float));
        if (!cv->data) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        size_t nbytes = (size_t)cv->n_embd * 4;
        size_t padded = (nbytes + alignment - 1) / alignment * alignment;   /* ggml reads the padding too */
        for (int i = 0; i < n_ent && !rc; i++) {
            int row = row_of[i];
            if (offs[i] % alignment || data0 > len || offs[i] > len - data0 || padded > len - data0 - offs[i]) {
                rc = ss_fail(err, SS_EINPUT, "%s: direction.%d: data offset %llu out of range or misaligned", path, cv->layer[row],
                             (unsigned long long)offs[i]);
                break;
            }
            const unsigned char *p = (const unsigned char *)buf + data0 + offs[i];
            for (int j = 0; j < cv->n_embd; j++) {
                uint32_t u = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 | (uint32_t)p[4 * j + 2] << 16 | (uint32_t)p[4 * j + 3] << 24;
                float x;
                memcpy(&x, &u, 4);
                cv->data[(size_t)row * cv->n_embd + j] += x;   /* the sum, for tensors naming one layer */
            }
        }
    }
    /* sort by layer (insertion sort, rows move with their layers) */
    for (int i = 1; i < cv->n_dirs && !rc; i++)
        for (int j = i; j > 0 && cv->layer[j - 1] > cv->layer[j]; j--) {
            int t = cv->layer[j]; cv->layer[j] = cv->layer[j - 1]; cv->layer[j - 1] = t;
            float *a = cv->data + (size_t)j * cv->n_embd, *b = a - cv->n_embd;
            for (int k = 0; k < cv->n_embd; k++) { float x = a[k]; a[k] = b[k]; b[k] = x; }
        }
    free(offs);
    free(row_of);
    free(buf);
    if (rc) gguf_cvec_free(cv);
    return rc;
}

int gguf_cvec_attach(const gguf_cvec *cv, gpt2_state *s, float scale, steer_add *adds, char *err) {
    const gpt2_config *c = &s->m->cfg;
    if (cv->n_embd != c->n_embd)
        return ss_fail(err, SS_EINPUT, "control vector has n_embd %d but the model has %d", cv->n_embd, c->n_embd);
    for (int i = 0; i < cv->n_dirs; i++) {
        if (cv->layer[i] >= c->n_layer)
            return ss_fail(err, SS_EINPUT, "direction.%d is past the model's last block (%d layers)", cv->layer[i], c->n_layer);
        gpt2_hook_point hp = {GPT2_HOOK_RESID_POST, cv->layer[i]};
        memset(&adds[i], 0, sizeof adds[i]);
        adds[i].vec = cv->data + (size_t)i * cv->n_embd;
        adds[i].rows = 1;
        adds[i].width = cv->n_embd;
        adds[i].scale = scale;
        adds[i].pos.mode = POS_ALL;
        int rc = gpt2_add_hook(s, &hp, steer_add_hook, &adds[i], 0, err);
        if (rc) return rc;
    }
    return SS_OK;
}
