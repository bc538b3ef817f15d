/* test_regressions.c - one test per crash, leak or wrong acceptance found by
 * the fuzzers (tests/fuzz/) and the bad-input matrix (tests/cli_badinput.sh),
 * each fed the minimal input that showed it. The raw fuzzer inputs are also
 * kept in tests/fuzz/regressions/<target>/ and replayed by .ci/fuzz_smoke.sh.
 * See tests/fuzz/README.md for the list. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpt2.h"
#include "npy.h"
#include "safetensors.h"
#include "testutil.h"

static char g_tmp[256];

/* Write len bytes to a fresh temp file; returns its path (static). */
static const char *tmpfile_with(const void *data, size_t len) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ss_regress.XXXXXX");
    int fd = mkstemp(g_tmp);
    if (fd < 0) return NULL;
    if (len && write(fd, data, len) != (ssize_t)len) { close(fd); return NULL; }
    close(fd);
    return g_tmp;
}

/* The error contract: SS_EINPUT and a one-line message naming the file. */
static void expect_einput(int rc, const char *err, const char *path, const char *field) {
    CU_ASSERT_EQUAL(rc, SS_EINPUT);
    CU_ASSERT(strchr(err, '\n') == NULL);
    CU_ASSERT(strstr(err, path) != NULL);
    if (field) CU_ASSERT(strstr(err, field) != NULL);
    if (rc != SS_EINPUT || !strstr(err, path) || (field && !strstr(err, field)))
        printf("\n  got rc %d: %s\n", rc, err);
}

/* fuzz_config: layer_norm_epsilon 1e-50 is > 0 as a double but 0 as the f32
   the runtime uses, so LayerNorm divided by zero on constant rows. */
static void test_config_eps_underflow(void) {
    const char cfg[] = "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 4, \"n_embd\": 64, \"n_positions\": 128,"
                       " \"vocab_size\": 50257, \"layer_norm_epsilon\": 1e-50}";
    const char *p = tmpfile_with(cfg, sizeof cfg - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    gpt2_config c;
    char err[SS_ERRLEN] = "";
    expect_einput(gpt2_config_load(&c, p, err), err, p, "layer_norm_epsilon");
    unlink(p);
    /* the smallest normal f32 is still fine */
    const char ok[] = "{\"n_layer\": 2, \"n_head\": 4, \"n_embd\": 64, \"n_positions\": 128, \"vocab_size\": 50257,"
                      " \"layer_norm_epsilon\": 1.2e-38}";
    p = tmpfile_with(ok, sizeof ok - 1);
    CU_ASSERT_EQUAL(gpt2_config_load(&c, p, err), SS_OK);
    CU_ASSERT(c.ln_eps > 0);
    unlink(p);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("regressions", NULL, NULL);
    CU_add_test(s, "config: layer_norm_epsilon that underflows f32 (fuzz_config)", test_config_eps_underflow);
    return tu_run();
}
