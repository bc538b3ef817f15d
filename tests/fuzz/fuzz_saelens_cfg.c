/* fuzz_saelens_cfg.c - sae_load_saelens on a folder whose cfg.json is the
 * fuzz input and whose sae_weights.safetensors is a valid tiny SAE (d_in 8,
 * d_sae 16, tensors for every architecture). Covers the v6 and pre-6.0
 * layouts, architecture / activation_fn_str, k, normalize_activations,
 * hook_name / hook_point, metadata, flags. A dictionary that loads is encoded
 * and decoded once. */
#include "fuzz_sae_common.h"

static char dir[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char p[600];
    snprintf(dir, sizeof dir, "%s/sae", fz_dir());
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
    fz_write_sae_safetensors(p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[600], err[SS_ERRLEN] = "";
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    fz_write(p, data, size);
    sae_dict *d = NULL;
    int rc = sae_load_saelens(&d, dir, err);
    fz_check_err(rc, err);
    if (rc) { if (d) abort(); return 0; }
    fz_exercise_sae(d);
    sae_free(d);
    return 0;
}
