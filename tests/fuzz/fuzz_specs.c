/* fuzz_specs.c - the small text specs users type on the command line:
 * TransformerLens hook names (gpt2_hook_parse, round trip through
 * gpt2_hook_name) and --positions lists (steer_positions_parse). */
#include "fuzz_util.h"
#include "gpt2.h"
#include "steer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    char err[SS_ERRLEN] = "";
    gpt2_config cfg = {.n_layer = 12, .n_head = 12, .n_embd = 768, .n_positions = 1024, .vocab_size = 50257,
                       .ln_eps = 1e-5f, .bos_id = 50256, .eos_id = 50256};
    gpt2_hook_point hp;
    int rc = gpt2_hook_parse(&cfg, s, &hp, err);
    fz_check_err(rc, err);
    if (rc == SS_OK) {
        char name[256];
        gpt2_hook_point hp2;
        gpt2_hook_name(&hp, name, sizeof name);
        if (hp.layer < -1 || hp.layer >= cfg.n_layer || gpt2_hook_parse(&cfg, name, &hp2, err) != SS_OK ||
            hp2.kind != hp.kind || hp2.layer != hp.layer) {
            fprintf(stderr, "fuzz: hook '%s' does not round-trip (got '%s')\n", s, name);
            abort();
        }
    }
    steer_positions p;
    err[0] = 0;
    rc = steer_positions_parse(s, &p, err);
    fz_check_err(rc, err);
    if (rc == SS_OK && p.mode == POS_LIST) {
        if (p.n < 1 || p.n > 256) abort();
        for (int i = 0; i < p.n; i++)
            if (p.list[i] < 0 || !steer_positions_match(&p, p.list[i], 0)) abort();
    }
    free(s);
    return 0;
}
