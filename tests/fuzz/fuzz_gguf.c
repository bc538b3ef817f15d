/* fuzz_gguf.c - gguf_cvec_read on mutated llama.cpp control vectors (seeds:
 * valid GGUF v3 files, see make_corpus.py): header, metadata key/values of
 * every type, tensor infos, alignment, offsets. A vector that loads must have
 * direction layers >= 1, ascending, and n_dirs x n_embd finite-or-not floats
 * that ASan lets us read. */
// needs: lib/gguf.h
#include "fuzz_util.h"
#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_memfile(0, data, size);
    char err[SS_ERRLEN] = "";
    (void)gguf_is_gguf(path);
    gguf_cvec cv;
    memset(&cv, 0, sizeof cv);
    int rc = gguf_cvec_read(&cv, path, err);
    fz_check_err(rc, err);
    if (rc) return 0;
    if (cv.n_dirs < 1 || cv.n_embd < 1 || !cv.layer || !cv.data || strlen(cv.model_hint) >= sizeof cv.model_hint) abort();
    for (int i = 0; i < cv.n_dirs; i++) {
        if (cv.layer[i] < 1 || (i && cv.layer[i] <= cv.layer[i - 1])) { fprintf(stderr, "fuzz: bad layer list\n"); abort(); }
        char hook[64];
        gguf_cvec_hook(cv.layer[i], hook, sizeof hook);
    }
    volatile float s = 0;
    for (int64_t i = 0; i < (int64_t)cv.n_dirs * cv.n_embd; i++) s += cv.data[i];
    (void)s;
    gguf_cvec_free(&cv);
    return 0;
}
