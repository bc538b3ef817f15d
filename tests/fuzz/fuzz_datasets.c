/* fuzz_datasets.c - the text datasets users hand to vector/fv/task-vector/
 * compare, each parser fed the same arbitrary bytes:
 *   vec_pairs_load   JSON lines {"positive": ..., "negative": ...}
 *   fv_dataset_load  JSON list of {"input": ..., "output": ...}
 *   met_afinn_load   AFINN lexicon "word<TAB>valence" (then scores a text)
 *   cmp_load_targets compare --target-words (with the shipped GPT-2 tokenizer)
 * Whatever loads must hold valid UTF-8 strings and the stated count. */
// needs: lib/vectors.h
// needs: lib/fv.h
// needs: lib/metrics.h
// needs: sae/compare.h
#include "compare.h"
#include "fuzz_util.h"
#include "fv.h"
#include "metrics.h"
#include "vectors.h"

static tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char err[SS_ERRLEN], v[4200], m[4200];
    const char *home = getenv("SAESTEER_HOME") ? getenv("SAESTEER_HOME") : SAESTEER_HOME;
    snprintf(v, sizeof v, "%s/weights/gpt2-tokenizer/vocab.json", home);
    snprintf(m, sizeof m, "%s/weights/gpt2-tokenizer/merges.txt", home);
    if (tok_load(&tok, v, m, err) != SS_OK) { fprintf(stderr, "fuzz_datasets: %s\n", err); abort(); }
    return 0;
}

static void check_str(const char *s) {
    if (!s || !ss_utf8_valid(s, strlen(s))) { fprintf(stderr, "fuzz: loaded string is NULL or not UTF-8\n"); abort(); }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_memfile(0, data, size);
    char err[SS_ERRLEN] = "";
    vec_pairs p;
    memset(&p, 0, sizeof p);
    int rc = vec_pairs_load(&p, path, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        if (p.n < 1) abort();
        for (int i = 0; i < p.n; i++) { check_str(p.pos[i]); check_str(p.neg[i]); }
        vec_pairs_free(&p);
    }
    fv_dataset d;
    memset(&d, 0, sizeof d);
    err[0] = 0;
    rc = fv_dataset_load(&d, path, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        if (d.n < 1) abort();
        for (int i = 0; i < d.n; i++) { check_str(d.input[i]); check_str(d.output[i]); }
        fv_dataset_free(&d);
    }
    met_afinn *a = NULL;
    err[0] = 0;
    rc = met_afinn_load(&a, path, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        int hits = 0;
        double s = met_afinn_score(a, "I love this good happy day, it is not bad at all; can't stand it", &hits);
        (void)s;
        if (hits < 0 || met_afinn_size(a) < 0) abort();
        met_afinn_free(a);
    }
    int *ids = NULL, n = 0;
    err[0] = 0;
    rc = cmp_load_targets(tok, path, &ids, &n, err);
    fz_check_err(rc, err);
    if (rc == SS_OK)
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tok_vocab_size(tok)) { fprintf(stderr, "fuzz: target id out of range\n"); abort(); }
    free(ids);
    return 0;
}
