/* fuzz_config.c - gpt2_config_load on an arbitrary config.json. A config that
 * loads must describe a model the runtime can build (the invariants below);
 * hook names are then parsed against it. */
#include "fuzz_util.h"
#include "gpt2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[SS_ERRLEN] = "";
    gpt2_config cfg;
    int rc = gpt2_config_load(&cfg, fz_memfile(0, data, size), err);
    fz_check_err(rc, err);
    if (rc) return 0;
    if (cfg.n_layer < 1 || cfg.n_head < 1 || cfg.n_embd < 1 || cfg.n_positions < 1 || cfg.vocab_size < 1 ||
        cfg.n_embd % cfg.n_head != 0 || !(cfg.ln_eps > 0) || cfg.bos_id < 0 || cfg.bos_id >= cfg.vocab_size ||
        cfg.eos_id < 0 || cfg.eos_id >= cfg.vocab_size) {
        fprintf(stderr, "fuzz: config loaded with inconsistent values\n");
        abort();
    }
    static const char *names[] = {"hook_embed", "blocks.0.hook_resid_pre", "blocks.1.attn.hook_z",
                                  "blocks.1023.hook_resid_post", "blocks.-1.hook_resid_pre", "ln_final.hook_normalized"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        gpt2_hook_point hp;
        err[0] = 0;
        rc = gpt2_hook_parse(&cfg, names[i], &hp, err);
        fz_check_err(rc, err);
        if (rc == SS_OK && (hp.layer < -1 || hp.layer >= cfg.n_layer)) abort();
        if (rc == SS_OK && hp.kind != GPT2_HOOK_PATTERN && gpt2_hook_width(&cfg, &hp) <= 0) abort();
    }
    return 0;
}
