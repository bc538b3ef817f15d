/* cmd_vector.c - vector: contrastive steering vectors (CAA mean difference,
 * PCA, ActAdd matrix) and llama.cpp control-vector GGUF export/import. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "npy.h"
#include "vectors.h"

static const char *usage =
    "usage: saesteer vector [--model DIR] --hook NAME (--positive STR --negative STR | --pairs FILE.jsonl)\n"
    "                       [--method mean|pca] [--actadd] [--no-bos] [-o V.npy] [--gguf-out F.gguf] [--json]\n"
    "       saesteer vector --export-gguf V.npy --layer N -o F.gguf\n"
    "       saesteer vector --import-gguf F.gguf [--layer N] -o V.npy\n"
    "Builds a steering vector from the activation at NAME of the last token of each prompt:\n"
    "  mean  the mean of positive - negative over the pairs (CAA)\n"
    "  pca   the first principal direction of the paired differences (uncentred), oriented so the\n"
    "        positives project higher, scaled to the mean difference's norm\n"
    "  --actadd  the ActAdd matrix (P, d): per-position differences of one --positive/--negative pair,\n"
    "        the shorter prompt right-padded with \" \"; steer with --steer-vector (row p at position p)\n"
    "Pairs file: JSON lines {\"positive\": \"...\", \"negative\": \"...\"}. BOS is prepended unless --no-bos.\n"
    "Use the result with: saesteer generate --steer-vector V.npy --hook NAME --scale S ...\n"
    "llama.cpp control vectors: direction.N is added to the output of block N, every position, i.e.\n"
    "TransformerLens blocks.N.hook_resid_post (N >= 1). --gguf-out needs --hook blocks.N.hook_resid_post\n"
    "or blocks.(N+1).hook_resid_pre; --import-gguf prints the hook to steer at.\n";

/* direction index for a hook, or -1 */
static int hook_to_direction(const gpt2_config *cfg, const char *hook) {
    gpt2_hook_point hp;
    char err[SS_ERRLEN];
    if (gpt2_hook_parse(cfg, hook, &hp, err)) return -1;
    if (hp.kind == GPT2_HOOK_RESID_POST && hp.layer >= 1) return hp.layer;
    if (hp.kind == GPT2_HOOK_RESID_PRE && hp.layer >= 2) return hp.layer - 1;
    return -1;
}

static int write_gguf_one(const char *path, const float *v, int C, int N) {
    char err[SS_ERRLEN];
    gguf_cvec cv = {0};
    cv.n_embd = C;
    cv.n_dirs = 1;
    cv.layer = &N;
    cv.data = (float *)v;
    snprintf(cv.model_hint, sizeof cv.model_hint, "gpt2");
    int rc = gguf_cvec_write(path, &cv, err);
    if (rc) return cli_fail(rc, "%s", err);
    return SS_OK;
}

static int export_gguf(const char *in, long layer, const char *out) {
    char err[SS_ERRLEN];
    if (layer < 1) return cli_fail(SS_EINPUT, "--export-gguf needs --layer N >= 1 (llama.cpp's direction.N: the output of block N)");
    if (!out) return cli_fail(SS_EINPUT, "--export-gguf needs -o F.gguf");
    npy_array a;
    int rc = npy_load(&a, in, err);
    if (rc) return cli_fail(rc, "%s", err);
    if (a.ndim != 1 || a.numel < 1) { npy_free(&a); return cli_fail(SS_EINPUT, "%s: want a 1-D vector (d_model,), got %d dims", in, a.ndim); }
    rc = write_gguf_one(out, a.data, (int)a.numel, (int)layer);
    if (!rc) printf("wrote %s: direction.%ld (%lld values), applied by llama.cpp to the output of block %ld (blocks.%ld.hook_resid_post)\n",
                    out, layer, (long long)a.numel, layer, layer);
    npy_free(&a);
    return rc;
}

static int import_gguf(const char *in, long layer, const char *out, int json) {
    char err[SS_ERRLEN];
    if (!out) return cli_fail(SS_EINPUT, "--import-gguf needs -o V.npy");
    gguf_cvec cv;
    int rc = gguf_cvec_read(&cv, in, err);
    if (rc) return cli_fail(rc, "%s", err);
    int idx = -1;
    if (layer >= 0) {
        for (int i = 0; i < cv.n_dirs; i++) if (cv.layer[i] == layer) idx = i;
        if (idx < 0) { gguf_cvec_free(&cv); return cli_fail(SS_EINPUT, "%s: no direction.%ld", in, layer); }
    } else if (cv.n_dirs == 1) {
        idx = 0;
    } else {
        int nd = cv.n_dirs;   /* gguf_cvec_free zeroes cv */
        gguf_cvec_free(&cv);
        return cli_fail(SS_EINPUT, "%s holds %d directions: pick one with --layer N", in, nd);
    }
    int64_t shape[1] = {cv.n_embd};
    rc = npy_save(out, cv.data + (size_t)idx * cv.n_embd, 1, shape, err);
    if (rc) { gguf_cvec_free(&cv); return cli_fail(rc, "%s", err); }
    char hook[64];
    gguf_cvec_hook(cv.layer[idx], hook, sizeof hook);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "out", out);
        cJSON_AddStringToObject(j, "hook", hook);
        cJSON_AddNumberToObject(j, "direction", cv.layer[idx]);
        cJSON_AddNumberToObject(j, "n_embd", cv.n_embd);
        cJSON_AddStringToObject(j, "model_hint", cv.model_hint);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("wrote %s (%d,) from direction.%d; steer with --steer-vector %s --hook %s --scale 1\n", out, cv.n_embd,
               cv.layer[idx], out, hook);
    }
    gguf_cvec_free(&cv);
    return SS_OK;
}

int cmd_vector(int argc, char **argv) {
    const char *model = NULL, *hook = NULL, *pos = NULL, *neg = NULL, *pairs_path = NULL, *out = NULL, *gguf_out = NULL;
    const char *export_in = NULL, *import_in = NULL, *method_s = "mean";
    int no_bos = 0, actadd = 0, json = 0;
    long layer = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        if (!strcmp(a, "--model")) dst = &model;
        else if (!strcmp(a, "--hook")) dst = &hook;
        else if (!strcmp(a, "--positive")) dst = &pos;
        else if (!strcmp(a, "--negative")) dst = &neg;
        else if (!strcmp(a, "--pairs")) dst = &pairs_path;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) dst = &out;
        else if (!strcmp(a, "--gguf-out")) dst = &gguf_out;
        else if (!strcmp(a, "--export-gguf")) dst = &export_in;
        else if (!strcmp(a, "--import-gguf")) dst = &import_in;
        else if (!strcmp(a, "--method")) dst = &method_s;
        else if (!strcmp(a, "--no-bos")) { no_bos = 1; continue; }
        else if (!strcmp(a, "--actadd")) { actadd = 1; continue; }
        else if (!strcmp(a, "--json")) { json = 1; continue; }
        else if (!strcmp(a, "--layer")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_int(a, v, 0, 100000, &layer)) return SS_EINPUT;
            continue;
        } else return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
        if (!(*dst = cli_value(argc, argv, &i))) return SS_EINPUT;
    }
    if (export_in && import_in) return cli_fail(SS_EINPUT, "use --export-gguf or --import-gguf, not both");
    if (export_in) return export_gguf(export_in, layer, out);
    if (import_in) return import_gguf(import_in, layer, out, json);

    vec_method method;
    if (!strcmp(method_s, "mean")) method = VEC_MEAN;
    else if (!strcmp(method_s, "pca")) method = VEC_PCA;
    else return cli_fail(SS_EINPUT, "--method must be mean or pca, not '%.32s'", method_s);
    if (!hook) return cli_fail(SS_EINPUT, "--hook NAME is required");
    if (!out && !gguf_out) return cli_fail(SS_EINPUT, "-o V.npy (or --gguf-out F.gguf) is required");
    if (pairs_path && (pos || neg)) return cli_fail(SS_EINPUT, "use --pairs FILE or --positive/--negative, not both");
    if (!pairs_path && (!pos || !neg)) return cli_fail(SS_EINPUT, "need --positive STR and --negative STR, or --pairs FILE.jsonl");
    if (actadd && pairs_path) return cli_fail(SS_EINPUT, "--actadd takes one --positive/--negative pair, not --pairs");
    if (actadd && gguf_out) return cli_fail(SS_EINPUT, "--actadd makes a per-position matrix; GGUF control vectors are one vector per layer");
    if (actadd && !strcmp(method_s, "pca")) return cli_fail(SS_EINPUT, "--actadd and --method pca do not combine");

    if (out && gguf_out && !strcmp(out, gguf_out)) return cli_fail(SS_EINPUT, "-o and --gguf-out name the same file");
    if (cli_out_check("-o", out) || cli_out_check("--gguf-out", gguf_out)) return SS_EINPUT;
    char err[SS_ERRLEN];
    vec_pairs pairs;
    int rc = pairs_path ? vec_pairs_load(&pairs, pairs_path, err) : vec_pairs_one(&pairs, pos, neg, err);
    if (rc) return cli_fail(rc, "%s", err);
    cli_model cm;
    if ((rc = cli_load_model(&cm, model))) { vec_pairs_free(&pairs); return rc; }
    int N = -1;
    if (gguf_out && (N = hook_to_direction(&cm.model->cfg, hook)) < 0) {
        rc = cli_fail(SS_EINPUT, "--gguf-out: llama.cpp control vectors are added to a block's output: use --hook "
                                 "blocks.N.hook_resid_post with N >= 1 (or blocks.N.hook_resid_pre with N >= 2), not %s", hook);
        goto done;
    }
    float *v = NULL;
    int W = 0, P = 1;
    if (actadd) rc = vec_actadd(cm.model, cm.tok, hook, pos, neg, !no_bos, &v, &P, &W, err);
    else rc = vec_contrastive(cm.model, cm.tok, hook, &pairs, !no_bos, method, &v, &W, err);
    if (rc) { rc = cli_fail(rc, "%s", err); goto done; }
    ss_out_stage_begin();   /* -o and --gguf-out: both replaced, or neither */
    if (out) {
        int64_t shape[2] = {P, W};
        rc = actadd ? npy_save(out, v, 2, shape, err) : npy_save(out, v, 1, shape + 1, err);
        if (rc) { ss_out_stage_end(0, NULL); rc = cli_fail(rc, "%s", err); free(v); goto done; }
    }
    if (gguf_out && (rc = write_gguf_one(gguf_out, v, W, N))) { ss_out_stage_end(0, NULL); free(v); goto done; }
    if ((rc = ss_out_stage_end(1, err))) { rc = cli_fail(rc, "%s", err); free(v); goto done; }
    float norm = vec_norm(v, P * W);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "hook", hook);
        cJSON_AddStringToObject(j, "method", actadd ? "actadd" : method_s);
        cJSON_AddNumberToObject(j, "pairs", pairs.n);
        cJSON *sh = cJSON_AddArrayToObject(j, "shape");
        if (actadd) cJSON_AddItemToArray(sh, cJSON_CreateNumber(P));
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(W));
        cJSON_AddNumberToObject(j, "norm", norm);
        cJSON_AddBoolToObject(j, "bos", !no_bos);
        if (out) cJSON_AddStringToObject(j, "out", out);
        if (gguf_out) { cJSON_AddStringToObject(j, "gguf", gguf_out); cJSON_AddNumberToObject(j, "gguf_direction", N); }
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        if (actadd) printf("wrote %s: ActAdd matrix (%d, %d) at %s, Frobenius norm %.4g\n", out, P, W, hook, norm);
        else {
            if (out) printf("wrote %s: %s vector (%d,) at %s from %d pair%s, norm %.4g\n", out, method_s, W, hook, pairs.n,
                            pairs.n == 1 ? "" : "s", norm);
            if (gguf_out) printf("wrote %s: llama.cpp control vector direction.%d (output of block %d)\n", gguf_out, N, N);
        }
    }
    free(v);
done:
    cli_free_model(&cm);
    vec_pairs_free(&pairs);
    return rc;
}
