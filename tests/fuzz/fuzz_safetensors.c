/* fuzz_safetensors.c - st_open on arbitrary bytes: the 8-byte header length,
 * the JSON header, dtypes, shapes and data_offsets. Every tensor that loads
 * must lie inside the mapping; float tensors are converted with st_to_f32. */
#include "fuzz_util.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[SS_ERRLEN] = "";
    st_file f;
    int rc = st_open(&f, fz_memfile(0, data, size), err);
    fz_check_err(rc, err);
    if (rc) return 0;
    const char *lo = f.map, *hi = (const char *)f.map + f.size;
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        const char *b = t->data;
        if (b < lo || b > hi || t->nbytes > (size_t)(hi - b) ||
            t->nbytes != (size_t)t->numel * st_dtype_size(t->dtype)) {
            fprintf(stderr, "fuzz: tensor '%s' escapes the mapping\n", t->name);
            abort();
        }
        if (st_find(&f, t->name) == NULL) abort();
        float *out = malloc((size_t)t->numel * sizeof(float) + 1);
        if (!out) abort();
        err[0] = 0;
        rc = st_to_f32(&f, t, out, err);
        fz_check_err(rc, err);
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (st_check_shape(&f, t, t->ndim, shape, err) != SS_OK) abort();
        shape[0] = 7;  /* a wrong shape must give an error, not a crash */
        rc = st_check_shape(&f, t, t->ndim > 0 ? t->ndim : 1, shape, err);
        fz_check_err(rc, err);
        free(out);
    }
    st_close(&f);
    return 0;
}
