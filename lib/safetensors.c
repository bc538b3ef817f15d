/* safetensors.c - see safetensors.h. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; st_dtype d; size_t size; } DTYPES[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
    {"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"I16", ST_I16, 2},  {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const char *st_dtype_name(st_dtype d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].d == d) return DTYPES[i].name;
    return "?";
}

size_t st_dtype_size(st_dtype d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].d == d) return DTYPES[i].size;
    return 0;
}

void st_close(st_file *f) {
    if (!f) return;
    if (f->tensors) {
        for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
        free(f->tensors);
    }
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->size);
    if (f->has_fd) close(f->fd);
    memset(f, 0, sizeof *f);
}

/* Parse one tensor entry of the JSON header into t; checks everything. */
static int parse_entry(const st_file *f, const cJSON *e, size_t data_start, st_tensor *t, char *err) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e)) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': entry is not an object", f->path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': missing field 'dtype'", f->path, nm);
    size_t esize = 0;
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(dt->valuestring, DTYPES[i].name) == 0) { t->dtype = DTYPES[i].d; esize = DTYPES[i].size; }
    if (!esize) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': unsupported dtype '%.16s'", f->path, nm, dt->valuestring);
    if (!cJSON_IsArray(sh)) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': missing field 'shape'", f->path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) return ss_fail(err, SS_EINPUT, "%s: tensor '%s': shape has %d dims (max %d)", f->path, nm, nd, ST_MAX_DIMS);
    t->ndim = nd;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 || d->valuedouble != (double)(int64_t)d->valuedouble)
            return ss_fail(err, SS_EINPUT, "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, nm, i);
        t->shape[i] = (int64_t)d->valuedouble;
        if (t->shape[i] && numel > INT64_MAX / t->shape[i])
            return ss_fail(err, SS_EINPUT, "%s: tensor '%s': shape overflows", f->path, nm);
        numel *= t->shape[i];
    }
    t->numel = numel;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': missing field 'data_offsets'", f->path, nm);
    double b = cJSON_GetArrayItem(off, 0)->valuedouble, en = cJSON_GetArrayItem(off, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(off, 1)) ||
        b < 0 || en < b || en > 1e18)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': bad data_offsets", f->path, nm);
    size_t begin = (size_t)b, end = (size_t)en;
    if ((uint64_t)numel > (uint64_t)SIZE_MAX / esize || end - begin != (size_t)numel * esize)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': data_offsets span %zu bytes but shape x dtype needs %lld",
                       f->path, nm, end - begin, (long long)numel * (long long)esize);
    if (end > f->size - data_start)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': data_offsets [%zu, %zu) run past end of file (%zu data bytes)",
                       f->path, nm, begin, end, f->size - data_start);
    t->data = (const char *)f->map + data_start + begin;
    t->nbytes = end - begin;
    t->name = strdup(nm);
    if (!t->name) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", f->path);
    return SS_OK;
}

/* Map a whole file read-only at a 2 MiB-aligned address and ask for
   transparent huge pages. Where the page cache holds the file in 2 MiB folios
   (it does once a huge-page mapping like this one has read it in), the kernel
   then maps it with one entry per 2 MiB instead of one per 4 KiB: on a VM
   with shadow page tables that turns ~300 ms of first-touch faults for a
   500 MB model into ~5 ms. Falls back to a plain mapping. NULL on failure. */
static void *map_huge_aligned(int fd, size_t size) {
    const size_t huge = (size_t)2 << 20;
    long pg = sysconf(_SC_PAGESIZE);
    size_t ps = pg > 0 ? (size_t)pg : 4096;
    void *map = MAP_FAILED;
    if (size <= SIZE_MAX - huge - ps) {
        size_t len = (size + ps - 1) & ~(ps - 1);   /* what the mapping really covers */
        char *res = mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (res != MAP_FAILED) {
            char *a = (char *)(((uintptr_t)res + huge - 1) & ~(uintptr_t)(huge - 1));
            char *end = res + len + huge;
            map = mmap(a, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
            /* give back the reservation around the mapping (page-aligned pieces) */
            if (a > res) munmap(res, (size_t)(a - res));
            if (end > a + len) munmap(a + len, (size_t)(end - (a + len)));
            if (map == MAP_FAILED) munmap(a, len);
        }
    }
    if (map == MAP_FAILED) map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(map, size, MADV_HUGEPAGE);
#endif
    return map;
}

static int cmp_tensor_start(const void *a, const void *b) {
    const char *x = (*(const st_tensor *const *)a)->data, *y = (*(const st_tensor *const *)b)->data;
    return x < y ? -1 : x > y;
}

int st_open(st_file *f, const char *path, char *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd;
    int orc = ss_open_input(path, &fd, &f->size, err);   /* regular files only; a FIFO does not hang */
    if (orc) return orc;
    if (f->size < 8) { close(fd); return ss_fail(err, SS_EINPUT, "%s: file too short for a safetensors header (%zu bytes)", path, f->size); }
    f->map = map_huge_aligned(fd, f->size);
    if (!f->map) { close(fd); return ss_fail(err, SS_ERUNTIME, "%s: mmap failed: %s", path, strerror(errno)); }
    f->fd = fd;
    f->has_fd = 1;

    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)p[i] << (8 * i);
    if (hlen == 0 || hlen > f->size - 8 || hlen > (100u << 20)) {
        int rc = hlen > (100u << 20) && hlen <= f->size - 8
                     ? ss_fail(err, SS_EINPUT, "%s: header length %llu is over the 100 MiB limit", path, (unsigned long long)hlen)
                     : ss_fail(err, SS_EINPUT, "%s: header length %llu does not fit in the file (%zu bytes)", path,
                               (unsigned long long)hlen, f->size);
        st_close(f);
        return rc;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        st_close(f);
        return ss_fail(err, SS_EINPUT, "%s: header is not a JSON object", path);
    }
    char dup[64];
    if (ss_json_dup_key(root, dup, sizeof dup)) {   /* cJSON would answer lookups with the first */
        cJSON_Delete(root);
        st_close(f);
        return ss_fail(err, SS_EINPUT, "%s: tensor or key '%s' appears twice in the header", path, dup);
    }
    int n = 0;
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) n++;
    f->tensors = ss_calloc((size_t)n, sizeof(st_tensor));
    if (!f->tensors) { cJSON_Delete(root); st_close(f); return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path); }
    size_t data_start = 8 + (size_t)hlen;
    int rc = SS_OK;
    for (cJSON *e = root->child; e && rc == SS_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        rc = parse_entry(f, e, data_start, &f->tensors[f->n], err);
        if (rc == SS_OK) f->n++;
    }
    cJSON_Delete(root);
    if (rc != SS_OK) { st_close(f); return rc; }
    /* no two tensors may share bytes (the format's rule; a forged header could
       alias one tensor into another) */
    const st_tensor **by = f->n > 1 ? malloc((size_t)f->n * sizeof *by) : NULL;
    if (f->n > 1 && !by) { st_close(f); return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path); }
    for (int i = 0; i < f->n && by; i++) by[i] = &f->tensors[i];
    if (by) qsort(by, (size_t)f->n, sizeof *by, cmp_tensor_start);
    for (int i = 1; i < f->n && by; i++) {
        const char *a = by[i - 1]->data, *b = by[i]->data;
        if (by[i - 1]->nbytes && by[i]->nbytes && a + by[i - 1]->nbytes > b) {
            rc = ss_fail(err, SS_EINPUT, "%s: tensors '%s' and '%s' overlap in the file", path, by[i - 1]->name, by[i]->name);
            break;
        }
    }
    free(by);
    if (rc != SS_OK) { st_close(f); return rc; }
    return SS_OK;
}

void st_prefault(const st_tensor *t) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
    long pg = sysconf(_SC_PAGESIZE);
    size_t ps = pg > 0 ? (size_t)pg : 4096;
    uintptr_t lo = (uintptr_t)t->data & ~(uintptr_t)(ps - 1), hi = (uintptr_t)t->data + t->nbytes;
    if (!t->nbytes || madvise((void *)lo, hi - lo, MADV_POPULATE_READ) == 0) return;
    /* older kernels: touch the tensor's first byte, then the start of each later page */
    volatile unsigned char sink = 0;
    for (uintptr_t a = (uintptr_t)t->data; a < hi; a = (a & ~(uintptr_t)(ps - 1)) + ps) sink ^= *(const unsigned char *)a;
    (void)sink;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3FF;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) bits = sign | 0x7F800000 | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/* st_f16_to_f32 over n values, without branches so that it vectorises:
   the 15 low bits shifted into place and rebased cover normal numbers;
   exponent 31 (inf/NaN) gets the rest of the f32 exponent; exponent 0
   (zero/subnormal) is renormalised by a float subtraction. Equal to
   st_f16_to_f32 for all 65536 inputs (test_runtime). */
SS_VECTOR
static void f16_to_f32_n(const unsigned char *src, float *out, size_t n) {
    const float magic = 0x1p-14f;   /* bits (127 - 14) << 23 */
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t o = (uint32_t)(h & 0x7fff) << 13, e = o & 0x0f800000u;
        o += (uint32_t)(127 - 15) << 23;
        uint32_t inf = o + ((uint32_t)(128 - 16) << 23), den_bits = o + (1u << 23), r;
        float den;
        memcpy(&den, &den_bits, 4);
        den -= magic;
        memcpy(&den_bits, &den, 4);
        r = e == 0x0f800000u ? inf : e == 0 ? den_bits : o;
        r |= (uint32_t)(h & 0x8000) << 16;
        memcpy(&out[i], &r, 4);
    }
}

SS_VECTOR
static void bf16_to_f32_n(const unsigned char *src, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t r = (uint32_t)h << 16;
        memcpy(&out[i], &r, 4);
    }
}

/* Convert n values of a float dtype from src to out. */
static void convert_f32(st_dtype dt, const unsigned char *src, float *out, size_t n) {
    switch (dt) {
    case ST_F32: memcpy(out, src, n * 4); break;
    case ST_F16: f16_to_f32_n(src, out, n); break;
    case ST_BF16: bf16_to_f32_n(src, out, n); break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, src + 8 * i, 8); out[i] = (float)d; }
        break;
    default: break;
    }
}

int st_to_f32(const st_file *f, const st_tensor *t, float *out, char *err) {
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return ss_fail(err, SS_EINPUT, "%s: tensor '%s': dtype %s is not a float type", f->path, t->name, st_dtype_name(t->dtype));
    size_t es = st_dtype_size(t->dtype), n = (size_t)t->numel;
    /* pread in chunks of whole elements; the offset is the tensor's place in the mapping */
    enum { CHUNK = 1 << 18 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", f->path);
    off_t off = (off_t)((const unsigned char *)t->data - (const unsigned char *)f->map);
    size_t per = CHUNK / es, done = 0;
    while (done < n) {
        size_t k = n - done < per ? n - done : per, want = k * es, got = 0;
        while (got < want) {
            ssize_t r = pread(f->fd, buf + got, want - got, off + (off_t)(done * es + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                free(buf);
                return ss_fail(err, SS_ERUNTIME, "%s: tensor '%s': read failed: %s", f->path, t->name,
                               r < 0 ? strerror(errno) : "file shrank while open");
            }
            got += (size_t)r;
        }
        convert_f32(t->dtype, buf, out + done, k);
        done += k;
    }
    free(buf);
    return SS_OK;
}

int st_check_shape(const st_file *f, const st_tensor *t, int ndim, const int64_t *shape, char *err) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return SS_OK;
    char want[128] = "", got[128] = "";
    for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
    for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
    return ss_fail(err, SS_EINPUT, "%s: tensor '%s': shape [%s], expected [%s]", f->path, t->name, got, want);
}
