/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fx(const char *rel) {
    static char buf[8][4096];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", FIXTURES, rel);
    return buf[k];
}

int fx_exists(const char *rel) { return access(fx(rel), R_OK) == 0; }

int tu_allclose(const char *name, const float *got, const float *want, size_t n, float atol, float rtol) {
    double maxabs = 0, maxrel = 0;
    size_t worst = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d == d)) d = INFINITY; /* NaN counts as infinitely wrong */
        double r = d / (fabs((double)want[i]) + 1e-12);
        if (d > maxabs) { maxabs = d; worst = i; }
        if (r > maxrel && fabs(want[i]) > 1e-6) maxrel = r;
        if (d > atol + rtol * fabs((double)want[i])) bad++;
    }
    printf("  %-40s max abs diff %.3e, max rel diff %.3e over %zu values (atol %.0e, rtol %.0e)%s\n", name, maxabs,
           maxrel, n, atol, rtol, bad ? "  FAIL" : "");
    if (bad)
        printf("    %zu values out of tolerance; worst at %zu: got %.8g want %.8g\n", bad, worst, got[worst], want[worst]);
    return bad == 0;
}

int tu_allclose_npy(const char *name, const float *got, size_t n, const char *npy_path, float atol, float rtol) {
    npy_array a;
    char err[SS_ERRLEN];
    if (npy_load(&a, npy_path, err)) { printf("  %s: %s\n", name, err); return 0; }
    if ((size_t)a.numel != n) {
        printf("  %s: reference has %lld values, got %zu\n", name, (long long)a.numel, n);
        npy_free(&a);
        return 0;
    }
    int ok = tu_allclose(name, got, a.data, n, atol, rtol);
    npy_free(&a);
    return ok;
}

cJSON *tu_json(const char *path) {
    char *text, err[SS_ERRLEN];
    if (ss_read_file(path, &text, NULL, err)) { printf("  %s\n", err); return NULL; }
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

int tu_run(void) {
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failed = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
