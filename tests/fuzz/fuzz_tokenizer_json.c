/* fuzz_tokenizer_json.c - tok_load_json on an arbitrary tokenizer.json. A
 * tokenizer that loads must then encode a fixed text (with added-token
 * candidates, NFC-sensitive characters and runs of spaces) into ids in range,
 * and decode them without trouble.
 */
// needs: lib/tokenizer.h
#include "fuzz_util.h"
#include "tokenizer.h"

static const char TEXT[] = "Hello world, it's 2024!  Tabs\tand\nnewlines<|endoftext|><|pad|> e\xcc\x81 caf\xc3\xa9 \xe6\x97\xa5    x";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = fz_memfile(0, data, size);
    char err[SS_ERRLEN] = "";
    tokenizer *t = NULL;
    int rc = tok_load_json(&t, p, err);
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
        free(back);
    }
    free(ids);
    tok_free(t);
    return 0;
}
