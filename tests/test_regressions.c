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
#include <zlib.h>

#include "gpt2.h"
#include "npy.h"
#include "safetensors.h"
#include "sae.h"
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

/* A one-member .npz "arr_0.npy" holding a deflated (3,) float32 .npy; the
   central directory states `usize` as the uncompressed size (0: the true one)
   and, if `cut`, the deflate stream is cut short of its end. */
static size_t build_npz(unsigned char *out, uint32_t usize, int cut) {
    static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    unsigned char npy[128 + 12];
    memset(npy, ' ', 128);
    memcpy(npy, hdr, sizeof hdr - 1);
    npy[127] = '\n';
    float v[3] = {1, 2, 3};
    memcpy(npy + 128, v, 12);
    unsigned char comp[512];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = npy; zs.avail_in = sizeof npy; zs.next_out = comp; zs.avail_out = sizeof comp;
    deflate(&zs, Z_FINISH);
    uint32_t csize = (uint32_t)zs.total_out;
    deflateEnd(&zs);
    if (cut) {   /* a complete stream of only the first 64 bytes */
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        zs.next_in = npy; zs.avail_in = 64; zs.next_out = comp; zs.avail_out = sizeof comp;
        deflate(&zs, Z_FINISH);
        csize = (uint32_t)zs.total_out;
        deflateEnd(&zs);
    }
    if (!usize) usize = sizeof npy;
    uint32_t crc = (uint32_t)crc32(0, npy, sizeof npy);
    const char *name = "arr_0.npy";
    size_t nl = strlen(name), o = 0;
#define P16(x) do { out[o++] = (x) & 0xFF; out[o++] = ((x) >> 8) & 0xFF; } while (0)
#define P32(x) do { P16((x) & 0xFFFF); P16(((uint32_t)(x)) >> 16); } while (0)
    P32(0x04034b50); P16(20); P16(0); P16(8); P16(0); P16(0); P32(crc); P32(csize); P32(usize); P16(nl); P16(0);
    memcpy(out + o, name, nl); o += nl;
    memcpy(out + o, comp, csize); o += csize;
    size_t cd = o;
    P32(0x02014b50); P16(20); P16(20); P16(0); P16(8); P16(0); P16(0); P32(crc); P32(csize); P32(usize);
    P16(nl); P16(0); P16(0); P16(0); P16(0); P32(0); P32(0);
    memcpy(out + o, name, nl); o += nl;
    size_t cdlen = o - cd;
    P32(0x06054b50); P16(0); P16(0); P16(1); P16(1); P32(cdlen); P32(cd); P16(0);
#undef P16
#undef P32
    return o;
}

/* fuzz_npy: a 300-byte .npz whose directory claimed a 4 GB member made
   npz_load malloc 4 GB (a timeout under ASan, an OOM without overcommit);
   a deflate stream shorter than the stated size left the tail of the buffer
   uninitialised and parsed it as data. */
static void test_npz_sizes(void) {
    unsigned char buf[1024];
    char err[SS_ERRLEN] = "";
    npy_array a;
    size_t n = build_npz(buf, 0, 0);
    const char *p = tmpfile_with(buf, n);
    CU_ASSERT_EQUAL_FATAL(npz_load(&a, p, "arr_0", err), SS_OK);
    CU_ASSERT(a.numel == 3 && a.data[2] == 3.0f);
    npy_free(&a);
    unlink(p);
    n = build_npz(buf, 0xFFFFFFF0u, 0);
    p = tmpfile_with(buf, n);
    expect_einput(npz_load(&a, p, "arr_0", err), err, p, "arr_0.npy");
    unlink(p);
    n = build_npz(buf, 0, 1);
    p = tmpfile_with(buf, n);
    expect_einput(npz_load(&a, p, "arr_0", err), err, p, "arr_0.npy");
    unlink(p);
}

/* fuzz_h5: libhdf5 1.10.8 loops forever on a global-heap object of size 0 and
   copies past the heap buffer for an object that runs beyond its collection;
   sae_load_h5 now checks the collections first and answers at once. */
static void test_h5_global_heap(void) {
    static const char *files[] = {"libhdf5_gheap_zero_free_object.h5", "libhdf5_gheap_object_overruns_16B.h5",
                                  "libhdf5_gheap_object_1GB.h5"};
    for (int i = 0; i < 3; i++) {
        char p[4200], err[SS_ERRLEN] = "";
        snprintf(p, sizeof p, "%s/tests/fuzz/regressions/h5/%s", SAESTEER_HOME, files[i]);
        sae_dict *d = NULL;
        double t0 = ss_now();
        int rc = sae_load_h5(&d, p, err);
        expect_einput(rc, err, p, "global heap");
        CU_ASSERT_PTR_NULL(d);
        CU_ASSERT(ss_now() - t0 < 5.0);   /* not the probe's 10 s alarm */
        if (d) sae_free(d);
    }
}

/* fuzz_safetensors: st_open's 2 MiB-aligned mapping handed back the tail of
   its address-space reservation from the unaligned end of the file, which
   munmap refuses, so every open leaked up to 2 MiB of address space (VmSize
   grew by 4 GB over 2000 opens of a small file; RSS did not). */
static long vm_size_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmSize:", 7)) kb = atol(line + 7);
    if (f) fclose(f);
    return kb;
}

static void test_st_open_address_space(void) {
    char err[SS_ERRLEN];
    const char *p = fx("tiny-sp/model.safetensors");
    st_file f;
    CU_ASSERT_FATAL(st_open(&f, p, err) == SS_OK);
    st_close(&f);
    long before = vm_size_kb();
    for (int i = 0; i < 500; i++) {
        CU_ASSERT_FATAL(st_open(&f, p, err) == SS_OK);
        st_close(&f);
    }
    long grew = vm_size_kb() - before;
    printf("\n  500 st_open/st_close: VmSize grew by %ld kB (a 2 MiB leak per open would be ~1,000,000)\n  ", grew);
    CU_ASSERT(before > 0 && grew < 65536);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("regressions", NULL, NULL);
    CU_add_test(s, "config: layer_norm_epsilon that underflows f32 (fuzz_config)", test_config_eps_underflow);
    CU_add_test(s, "npz: member sizes the data cannot back (fuzz_npy)", test_npz_sizes);
    CU_add_test(s, "h5: corrupt global-heap collections (fuzz_h5)", test_h5_global_heap);
    CU_add_test(s, "safetensors: no address space kept after st_close (fuzz_safetensors)", test_st_open_address_space);
    return tu_run();
}
