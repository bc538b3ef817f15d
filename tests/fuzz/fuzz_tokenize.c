/* fuzz_tokenize.c - tok_encode on arbitrary bytes with the shipped GPT-2
 * tokenizer (weights/gpt2-tokenizer). Invalid UTF-8 must be refused with an
 * error; valid text must give ids in range whose decode is the text again,
 * and the streaming decoder must agree with tok_decode. */
// needs: lib/tokenizer.h
#include "fuzz_util.h"
#include "tokenizer.h"

static tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char err[SS_ERRLEN], v[4200], m[4200];
    const char *home = getenv("SAESTEER_HOME") ? getenv("SAESTEER_HOME") : SAESTEER_HOME;
    snprintf(v, sizeof v, "%s/weights/gpt2-tokenizer/vocab.json", home);
    snprintf(m, sizeof m, "%s/weights/gpt2-tokenizer/merges.txt", home);
    if (tok_load(&tok, v, m, err) != SS_OK) { fprintf(stderr, "fuzz_tokenize: %s\n", err); abort(); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[SS_ERRLEN] = "";
    int *ids = NULL, n = 0;
    int rc = tok_encode(tok, (const char *)data, size, &ids, &n, err);
    fz_check_err(rc, err);
    if (rc != SS_OK) {
        if (ids || n) abort();
        if (ss_utf8_valid((const char *)data, size)) {
            fprintf(stderr, "fuzz: valid UTF-8 refused: %s\n", err);
            abort();
        }
        return 0;
    }
    if (!ss_utf8_valid((const char *)data, size)) { fprintf(stderr, "fuzz: invalid UTF-8 accepted\n"); abort(); }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_vocab_size(tok)) abort();
    char *back = NULL;
    if (tok_decode(tok, ids, n, &back, err) != SS_OK) abort();
    if (strlen(back) != size || memcmp(back, data, size) != 0) {
        /* NUL bytes in the input end the C string early; compare bytes */
        if (memchr(data, 0, size) == NULL) {
            fprintf(stderr, "fuzz: decode(encode(x)) != x\n");
            abort();
        }
    }
    /* streaming decode, one id at a time, equals the whole decode */
    size_t cap = TOK_STREAM_OUTCAP(tok), total = 0, outlen;
    char *buf = malloc(cap), *acc = malloc((size_t)n * cap + cap + 1);
    tok_stream s = {0};
    for (int i = 0; i < n; i++) {
        if (tok_stream_feed(tok, &s, ids[i], buf, cap, &outlen) != SS_OK) abort();
        memcpy(acc + total, buf, outlen);
        total += outlen;
    }
    if (tok_stream_flush(&s, buf, cap, &outlen) != SS_OK) abort();
    memcpy(acc + total, buf, outlen);
    total += outlen;
    if (total != size || memcmp(acc, data, size) != 0) { fprintf(stderr, "fuzz: stream decode differs\n"); abort(); }
    free(buf); free(acc); free(back); free(ids);
    return 0;
}
