/* cmd_model.c - tokenize, logits, cache, generate: the model-level subcommands. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "cli.h"
#include "generate.h"
#include "npy.h"

/* Options shared by the model subcommands. */
typedef struct {
    const char *model, *text, *text_file, *out, *record;
    int no_bos, json, center, last_only, help;
} model_opts;

/* Parse the common options; steering flags go to st (may be NULL).
   Unknown flags are an error. extra() handles subcommand-specific ones. */
typedef int (*extra_fn)(void *ctx, int argc, char **argv, int *i);
static int parse_opts(model_opts *o, cli_steer *st, int argc, char **argv, extra_fn extra, void *ctx) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { o->help = 1; return SS_OK; }
        if (!strcmp(a, "--model")) { if (!(o->model = cli_value(argc, argv, &i))) return SS_EINPUT; continue; }
        if (!strcmp(a, "--text")) { if (!(o->text = cli_value(argc, argv, &i))) return SS_EINPUT; continue; }
        if (!strcmp(a, "--text-file")) { if (!(o->text_file = cli_value(argc, argv, &i))) return SS_EINPUT; continue; }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) { if (!(o->out = cli_value(argc, argv, &i))) return SS_EINPUT; continue; }
        if (!strcmp(a, "--record")) { if (!(o->record = cli_value(argc, argv, &i))) return SS_EINPUT; continue; }
        if (!strcmp(a, "--no-bos")) { o->no_bos = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!strcmp(a, "--center-writing-weights")) { o->center = 1; continue; }
        if (!strcmp(a, "--last-only")) { o->last_only = 1; continue; }
        if (st && (r = cli_steer_flag(st, argc, argv, &i)) != 0) { if (r < 0) return SS_EINPUT; continue; }
        if (extra && (r = extra(ctx, argc, argv, &i)) != 0) { if (r < 0) return SS_EINPUT; continue; }
        return cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
    }
    return SS_OK;
}

/* The prompt text from --text or --text-file (exactly one). */
static int prompt_text(const model_opts *o, char **text) {
    if (o->text && o->text_file) return cli_fail(SS_EINPUT, "give --text or --text-file, not both");
    if (o->text_file) return cli_read_text_file(o->text_file, text, NULL);
    if (!o->text) return cli_fail(SS_EINPUT, "--text STR is required");
    if (!ss_utf8_valid(o->text, strlen(o->text))) return cli_fail(SS_EINPUT, "--text is not valid UTF-8");
    *text = strdup(o->text);
    return SS_OK;
}

static cJSON *ids_json(const int *ids, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

/* Append the --record line of a logits/cache run. */
static int record_run(const char *path, const char *cmd, const cli_model *cm, const char *text, int bos,
                      const cli_steer *st, const char *out) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "command", cmd);
    cJSON_AddStringToObject(r, "model", cm->model->dir);
    cJSON_AddStringToObject(r, "prompt", text);
    cJSON_AddBoolToObject(r, "bos", bos);
    cJSON_AddItemToObject(r, "intervention", cli_steer_json(st));
    cJSON_AddStringToObject(r, "output", out);
    int rc = cli_record_append(path, r);
    cJSON_Delete(r);
    return rc;
}

/* ------------------------------------------------------------ tokenize --- */
static int decode_flag(void *ctx, int argc, char **argv, int *i) {
    if (strcmp(argv[*i], "--decode")) return 0;
    const char *v = cli_value(argc, argv, i);
    if (!v) return -1;
    *(const char **)ctx = v;
    return 1;
}

/* tokenize --decode 464,2068: ids back to text */
static int tokenize_decode(const model_opts *o, const char *list) {
    if (o->text || o->text_file) return cli_fail(SS_EINPUT, "--decode takes ids, not --text/--text-file");
    int *ids = NULL, n = 0, rc;
    if ((rc = cli_int_list("--decode", list, 0, 1L << 30, &ids, &n))) return rc;
    const char *dir = o->model ? o->model : cli_default_model();
    char vocab[4200], merges[4200], err[SS_ERRLEN];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    tokenizer *tok;
    if ((rc = tok_load(&tok, vocab, merges, err))) { free(ids); return cli_fail(rc, "%s", err); }
    char *text = NULL;
    size_t len = 0;
    for (int k = 0; k < n; k++)
        if (ids[k] >= tok_vocab_size(tok)) {
            rc = cli_fail(SS_EINPUT, "--decode: id %d is outside the vocabulary (%d tokens)", ids[k], tok_vocab_size(tok));
            goto out;
        }
    if ((rc = tok_decode_len(tok, ids, n, &text, &len, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "text", text);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        fwrite(text, 1, len, stdout);
        putchar('\n');
    }
out:
    free(text);
    free(ids);
    tok_free(tok);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    model_opts o;
    const char *decode = NULL;
    int rc = parse_opts(&o, NULL, argc, argv, decode_flag, &decode);
    if (rc) return rc;
    if (o.help) {
        printf("usage: saesteer tokenize [--model DIR] (--text STR | --text-file F) [--json]\n"
               "       saesteer tokenize [--model DIR] --decode ID,ID,... [--json]\n"
               "GPT-2 byte-level BPE token ids of the text (no BOS added; <|endoftext|> -> 50256).\n"
               "--json prints {\"ids\": [...]}; otherwise one line per token: id and its text.\n"
               "--decode turns ids back into text (bytes that are not UTF-8 become U+FFFD, as HF decode does);\n"
               "--json prints {\"text\": \"...\"}.\n");
        return 0;
    }
    if (decode) return tokenize_decode(&o, decode);
    char *text = NULL;
    if ((rc = prompt_text(&o, &text))) return rc;
    const char *dir = o.model ? o.model : cli_default_model();
    char vocab[4200], merges[4200], err[SS_ERRLEN];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    char tokjson[4200];
    snprintf(tokjson, sizeof tokjson, "%s/tokenizer.json", dir);
    tokenizer *tok;
    FILE *vf = fopen(vocab, "rb"), *jf = vf ? NULL : fopen(tokjson, "rb");
    if (vf) fclose(vf);
    if (jf) fclose(jf);
    rc = jf ? tok_load_json(&tok, tokjson, err) : tok_load(&tok, vocab, merges, err);
    if (rc) { free(text); return cli_fail(rc, "%s", err); }
    int *ids = NULL, n = 0;
    rc = tok_encode(tok, text, strlen(text), &ids, &n, err);
    free(text);
    if (rc) { tok_free(tok); return cli_fail(rc, "%s", err); }
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "ids", ids_json(ids, n));
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        for (int i = 0; i < n; i++) {
            size_t len;
            const char *b = tok_token_bytes(tok, ids[i], &len);
            printf("%d\t", ids[i]);
            for (size_t k = 0; k < len; k++) {
                unsigned char c = (unsigned char)b[k];
                if (c == '\n') fputs("\\n", stdout);
                else if (c == '\t') fputs("\\t", stdout);
                else if (c < 0x20) printf("\\x%02x", c);
                else putchar(c);
            }
            putchar('\n');
        }
    }
    free(ids);
    tok_free(tok);
    return 0;
}

/* -------------------------------------------------------------- logits --- */
static int top_flag(void *ctx, int argc, char **argv, int *i) {
    if (strcmp(argv[*i], "--top")) return 0;
    const char *v = cli_value(argc, argv, i);
    if (!v || cli_int("--top", v, 1, 100000, (long *)ctx)) return -1;
    return 1;
}

/* The top K next tokens after the last position: probability and logit. */
static int print_top(const cli_model *cm, const float *row, int pos, long K, int json) {
    int V = cm->model->cfg.vocab_size;
    float *lp = ss_malloc2((size_t)V, sizeof(float));
    int *idx = ss_malloc2((size_t)K, sizeof(int));
    if (!lp || !idx) { free(lp); free(idx); return cli_fail(SS_ERUNTIME, "out of memory"); }
    memcpy(lp, row, (size_t)V * sizeof(float));
    log_softmax_inplace(lp, V);
    int n = topk_indices(row, V, (int)K, 1, idx);
    cJSON *j = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (json) {
        cJSON_AddNumberToObject(j, "position", pos);
        arr = cJSON_AddArrayToObject(j, "top");
    } else {
        printf("# next token after position %d: rank, id, token, probability, logit\n", pos);
    }
    for (int k = 0; k < n; k++) {
        char *t = NULL, err[SS_ERRLEN];
        if (tok_decode(cm->tok, &idx[k], 1, &t, err)) t = strdup("?");
        if (json) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "id", idx[k]);
            cJSON_AddStringToObject(e, "token", t);
            cJSON_AddNumberToObject(e, "prob", exp(lp[idx[k]]));
            cJSON_AddNumberToObject(e, "logit", row[idx[k]]);
            cJSON_AddItemToArray(arr, e);
        } else {
            printf("%4d %6d  '", k + 1, idx[k]);
            for (const char *c = t; *c; c++) {
                if (*c == '\n') fputs("\\n", stdout);
                else if (*c == '\t') fputs("\\t", stdout);
                else if ((unsigned char)*c < 0x20) printf("\\x%02x", (unsigned char)*c);
                else putchar(*c);
            }
            printf("'  %.4f  %.3f\n", exp(lp[idx[k]]), row[idx[k]]);
        }
        free(t);
    }
    if (json) { cli_print_json(j); cJSON_Delete(j); }
    free(lp);
    free(idx);
    return SS_OK;
}

int cmd_logits(int argc, char **argv) {
    model_opts o;
    long top = 0;
    cli_steer *st = cli_steer_new();
    int rc = parse_opts(&o, st, argc, argv, top_flag, &top);
    if (rc || o.help) {
        if (o.help)
            printf("usage: saesteer logits [--model DIR] (--text STR | --text-file F) [--no-bos] [--last-only] [-o OUT.npy]\n"
                   "                       [--top K] [--json] [steering flags] [--record FILE.jsonl]\n"
                   "Writes float32 logits (T, vocab) for every position (BOS included unless --no-bos),\n"
                   "or (1, vocab) for the last position with --last-only. --top K prints the K most likely next\n"
                   "tokens after the last position with their probabilities and logits (a table, or with --json\n"
                   "{\"position\", \"top\": [{\"id\", \"token\", \"prob\", \"logit\"}, ...]}), with or without -o.\n%s",
                   cli_steer_help);
        cli_steer_free(st);
        return rc;
    }
    if (o.json && !top) top = 10;
    if (!o.out && !top) { cli_steer_free(st); return cli_fail(SS_EINPUT, "-o OUT.npy or --top K is required"); }
    if (!o.out) o.last_only = 1;
    if ((o.out && cli_out_check("-o", o.out)) || cli_record_check(o.record)) { cli_steer_free(st); return SS_EINPUT; }
    cli_model cm;
    char *text = NULL, err[SS_ERRLEN];
    int *ids = NULL, n = 0;
    gpt2_state *s = NULL;
    float *logits = NULL;
    if ((rc = prompt_text(&o, &text)) || (rc = cli_load_model(&cm, o.model))) goto out0;
    if ((rc = cli_encode(&cm, text, o.no_bos, &ids, &n))) goto out;
    if ((rc = gpt2_state_build(&s, cm.model, n, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if ((rc = cli_steer_apply(st, &cm, s, !o.no_bos))) goto out;
    int V = cm.model->cfg.vocab_size, rows = o.last_only ? 1 : n;
    logits = ss_malloc2((size_t)rows * V, sizeof(float));
    if (!logits) { rc = cli_fail(SS_ERUNTIME, "out of memory for %d x %d logits", rows, V); goto out; }
    if ((rc = gpt2_forward(s, ids, n, logits, !o.last_only, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    int64_t shape[2] = {rows, V};
    if (o.out && (rc = npy_save(o.out, logits, 2, shape, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if (top && (rc = print_top(&cm, logits + (size_t)(rows - 1) * V, n - 1, top < V ? top : V, o.json))) goto out;
    if (o.record) rc = record_run(o.record, "logits", &cm, text, !o.no_bos, st, o.out ? o.out : "(stdout)");
out:
    cli_free_model(&cm);
out0:
    free(logits);
    gpt2_state_free(s);
    free(ids);
    free(text);
    cli_steer_free(st);
    return rc;
}

/* --------------------------------------------------------------- cache --- */
typedef struct {
    gpt2_hook_point hp;
    const char *name;
    float *data;       /* (n_ctx, width) or pattern (NH, T, T) */
    int width;
    int T;
} capture;

static int capture_hook(void *ctx, const gpt2_hook_point *hp, float *act, int T, int width, int pos0, char *err) {
    (void)err;
    capture *c = ctx;
    if (hp->kind == GPT2_HOOK_PATTERN) { /* one prefill call: (NH, T, T), c->width = NH*T */
        memcpy(c->data, act, (size_t)c->width * T * sizeof(float));
    } else {
        memcpy(c->data + (size_t)pos0 * width, act, (size_t)T * width * sizeof(float));
    }
    c->T = pos0 + T;
    return SS_OK;
}

int cmd_cache(int argc, char **argv) {
    model_opts o;
    cli_steer *st = cli_steer_new();
    int rc = parse_opts(&o, st, argc, argv, NULL, NULL);
    if (rc || o.help) {
        if (o.help)
            printf("usage: saesteer cache [--model DIR] (--text STR | --text-file F) [--no-bos] [--center-writing-weights]\n"
                   "                      --hook NAME [--hook NAME ...] -o OUT.npy|OUT.npz [steering flags]\n"
                   "Activations at TransformerLens hook points: one --hook -> .npy (T, d); several -> .npz keyed\n"
                   "by hook name. attn.hook_pattern is (n_head, T, T), attn.hook_z (T, n_head, d_head). --center-writing-weights shows residual\n"
                   "hooks as TransformerLens does with center_writing_weights (minus the per-token mean).\n"
                   "The model runs only as far as the deepest hook needs. With steering, the vector's hook is\n"
                   "--steer-hook NAME (default: the first --hook).\n%s", cli_steer_help);
        cli_steer_free(st);
        return rc;
    }
    const char **names;
    int nh = cli_steer_hooks(st, &names);
    if (!o.out) { cli_steer_free(st); return cli_fail(SS_EINPUT, "-o OUT.npy is required"); }
    if (cli_out_check("-o", o.out) || cli_record_check(o.record)) { cli_steer_free(st); return SS_EINPUT; }
    if (nh == 0) { cli_steer_free(st); return cli_fail(SS_EINPUT, "--hook NAME is required"); }
    size_t olen = strlen(o.out);
    int want_npz = olen > 4 && strcmp(o.out + olen - 4, ".npz") == 0;
    if (nh > 1 && !want_npz) { cli_steer_free(st); return cli_fail(SS_EINPUT, "several --hook need an .npz output (-o OUT.npz)"); }
    cli_model cm;
    char *text = NULL, err[SS_ERRLEN];
    int *ids = NULL, n = 0;
    gpt2_state *s = NULL;
    capture caps[32];
    memset(caps, 0, sizeof caps);
    if ((rc = prompt_text(&o, &text)) || (rc = cli_load_model(&cm, o.model))) goto out0;
    if ((rc = cli_encode(&cm, text, o.no_bos, &ids, &n))) goto out;
    if ((rc = gpt2_state_build(&s, cm.model, n, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if ((rc = cli_steer_apply(st, &cm, s, !o.no_bos))) goto out;   /* interventions run before the captures */
    const gpt2_config *cfg = &cm.model->cfg;
    for (int i = 0; i < nh; i++) {
        capture *c = &caps[i];
        c->name = names[i];
        if ((rc = gpt2_hook_parse(cfg, names[i], &c->hp, err))) { rc = cli_fail(rc, "--hook: %s", err); goto out; }
        for (int k = 0; k < i; k++)
            if (!strcmp(caps[k].name, names[i])) { rc = cli_fail(SS_EINPUT, "--hook %s given twice", names[i]); goto out; }
        c->width = c->hp.kind == GPT2_HOOK_PATTERN ? cfg->n_head * n : gpt2_hook_width(cfg, &c->hp);
        c->data = ss_calloc((size_t)n, (size_t)c->width * sizeof(float));
        if (!c->data) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto out; }
        int center = o.center && gpt2_hook_is_residual(&c->hp);
        if ((rc = gpt2_add_hook(s, &c->hp, capture_hook, c, center, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    }
    gpt2_stop_after_hooks(s);
    if ((rc = gpt2_forward(s, ids, n, NULL, 0, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    npz_entry ent[32];
    for (int i = 0; i < nh; i++) {
        ent[i].name = caps[i].name;
        ent[i].data = caps[i].data;
        if (caps[i].hp.kind == GPT2_HOOK_PATTERN) {
            ent[i].ndim = 3;
            ent[i].shape[0] = cfg->n_head; ent[i].shape[1] = n; ent[i].shape[2] = n;
        } else if (caps[i].hp.kind == GPT2_HOOK_ATTN_Z) {   /* (T, n_head, d_head), as TransformerLens */
            ent[i].ndim = 3;
            ent[i].shape[0] = n; ent[i].shape[1] = cfg->n_head; ent[i].shape[2] = cfg->n_embd / cfg->n_head;
        } else {
            ent[i].ndim = 2;
            ent[i].shape[0] = n; ent[i].shape[1] = caps[i].width;
        }
    }
    rc = want_npz ? npz_save(o.out, ent, nh, err) : npy_save(o.out, ent[0].data, ent[0].ndim, ent[0].shape, err);
    if (rc) { rc = cli_fail(rc, "%s", err); goto out; }
    if (o.record) rc = record_run(o.record, "cache", &cm, text, !o.no_bos, st, o.out);
out:
    cli_free_model(&cm);
out0:
    for (int i = 0; i < 32; i++) free(caps[i].data);
    gpt2_state_free(s);
    free(ids);
    free(text);
    cli_steer_free(st);
    return rc;
}
