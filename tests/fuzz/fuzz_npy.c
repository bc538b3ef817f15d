/* fuzz_npy.c - npy_load on arbitrary bytes, and npz_load when the input
 * looks like a zip ("PK"): magic, version, header dict, shape, dtype, data
 * length; zip directory, local headers, stored and deflated members. */
#include "fuzz_util.h"
#include "npy.h"

static void check_array(const npy_array *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] < 0) abort();
        n *= a->shape[i];
    }
    if (n != a->numel || a->ndim < 0 || a->ndim > NPY_MAX_DIMS || !a->data) abort();
    volatile float s = 0;   /* touch every element: ASan checks the length */
    for (int64_t i = 0; i < a->numel; i++) s += a->data[i];
    (void)s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[SS_ERRLEN] = "";
    npy_array a;
    const char *path = fz_memfile(0, data, size);
    int rc;
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
        /* np.savez names members arr_0, arr_1, ...; saesteer's cache -o X.npz uses hook names */
        rc = npz_load(&a, path, "arr_0", err);
        fz_check_err(rc, err);
        if (rc == SS_OK) { check_array(&a); npy_free(&a); }
        err[0] = 0;
        rc = npz_load(&a, path, "blocks.0.hook_resid_pre", err);
    } else {
        rc = npy_load(&a, path, err);
    }
    fz_check_err(rc, err);
    if (rc == SS_OK) { check_array(&a); npy_free(&a); }
    return 0;
}
