/* cmd_generate.c - generate: prompt -> continuation, optionally steered. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"

/* Parse the sampling flags; returns 1 if consumed, 0 if not ours, -1 on error. */
int cli_sampling_flag(sampler_params *sp, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long n;
#define VAL() do { if (!(v = cli_value(argc, argv, i))) return -1; } while (0)
    if (!strcmp(a, "--temperature")) { VAL(); return cli_float(a, v, 0, 100, &sp->temperature) ? -1 : 1; }
    if (!strcmp(a, "--top-k")) { VAL(); if (cli_int(a, v, 0, 1 << 24, &n)) return -1; sp->top_k = (int)n; return 1; }
    if (!strcmp(a, "--top-p")) { VAL(); return cli_float(a, v, 1e-6, 1, &sp->top_p) ? -1 : 1; }
    if (!strcmp(a, "--repetition-penalty")) { VAL(); return cli_float(a, v, 1e-3, 100, &sp->repetition_penalty) ? -1 : 1; }
    if (!strcmp(a, "--frequency-penalty")) { VAL(); return cli_float(a, v, -100, 100, &sp->frequency_penalty) ? -1 : 1; }
    if (!strcmp(a, "--presence-penalty")) { VAL(); return cli_float(a, v, -100, 100, &sp->presence_penalty) ? -1 : 1; }
    if (!strcmp(a, "--seed")) {
        VAL();
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);   /* ERANGE: above 2^64-1 all would be one seed */
        if (*v == '-' || end == v || *end || errno == ERANGE) {
            cli_fail(SS_EINPUT, "--seed: '%.40s' is not an integer in [0, 18446744073709551615]", v);
            return -1;
        }
        sp->seed = s;
        return 1;
    }
#undef VAL
    return 0;
}

const char *cli_sampling_help =
    "sampling:\n"
    "  --temperature T        0 = greedy (default 1)\n"
    "  --top-k K --top-p P    truncation (default off)\n"
    "  --repetition-penalty R HF-style, on prompt and generated tokens (default 1 = off)\n"
    "  --frequency-penalty F --presence-penalty P   OpenAI-style, on generated tokens (default 0)\n"
    "  --seed S               the same seed gives the same tokens (default 0)\n";

typedef struct {
    const tokenizer *tok;
    tok_stream ts;
    int stream;
} stream_ctx;

static int on_token(void *ctx, int id) {
    stream_ctx *c = ctx;
    if (!c->stream) return 0;
    char buf[256];
    size_t n = 0;
    if (tok_stream_feed(c->tok, &c->ts, id, buf, sizeof buf, &n) == SS_OK && n) {
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *record = NULL;
    int no_bos = 0, json = 0, ignore_eos = 0, rc = 0;
    long max_new = 32;
    sampler_params sp;
    sampler_params_default(&sp);
    cli_steer *st = cli_steer_new();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: saesteer generate [--model DIR] --text STR [--no-bos] [--max-new-tokens N] [--json]\n"
                   "                         [--ignore-eos] [sampling flags] [steering flags] [--record FILE.jsonl]\n"
                   "Continues the prompt (BOS prepended unless --no-bos). Without --json the text streams to stdout;\n"
                   "--json prints {\"tokens\": [new ids], \"text\": ..., \"timing\": {load_s, prefill_s, prefill_tokens,\n"
                   "decode_s, new_tokens}}. Stops at <|endoftext|> unless --ignore-eos. Interventions apply to the\n"
                   "prompt and to every generated token.\n%s%s", cli_sampling_help, cli_steer_help);
            cli_steer_free(st);
            return 0;
        }
        if (!strcmp(a, "--model")) { if (!(model = cli_value(argc, argv, &i))) goto bad; continue; }
        if (!strcmp(a, "--text")) { if (!(text = cli_value(argc, argv, &i))) goto bad; continue; }
        if (!strcmp(a, "--record")) { if (!(record = cli_value(argc, argv, &i))) goto bad; continue; }
        if (!strcmp(a, "--no-bos")) { no_bos = 1; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!strcmp(a, "--ignore-eos")) { ignore_eos = 1; continue; }
        if (!strcmp(a, "--max-new-tokens")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v || cli_int(a, v, 0, 1 << 20, &max_new)) goto bad;
            continue;
        }
        if ((r = cli_sampling_flag(&sp, argc, argv, &i)) != 0) { if (r < 0) goto bad; continue; }
        if ((r = cli_steer_flag(st, argc, argv, &i)) != 0) { if (r < 0) goto bad; continue; }
        cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", a);
        goto bad;
    }
    if (!text) { cli_fail(SS_EINPUT, "--text STR is required"); goto bad; }
    if (!ss_utf8_valid(text, strlen(text))) { cli_fail(SS_EINPUT, "--text is not valid UTF-8"); goto bad; }

    cli_model cm;
    char err[SS_ERRLEN];
    int *ids = NULL, n = 0, *out = NULL, n_out = 0;
    gpt2_state *s = NULL;
    sampler *smp = NULL;
    if ((rc = cli_load_model(&cm, model))) { cli_steer_free(st); return rc; }
    if ((rc = cli_encode(&cm, text, no_bos, &ids, &n))) goto out;
    if (n + max_new > cm.model->cfg.n_positions) {
        rc = cli_fail(SS_EINPUT, "prompt (%d tokens) + --max-new-tokens (%ld) exceeds n_positions (%d)", n, max_new,
                      cm.model->cfg.n_positions);
        goto out;
    }
    if ((rc = gpt2_state_build(&s, cm.model, n + (int)max_new, err)) ||
        (rc = sampler_build(&smp, cm.model->cfg.vocab_size, &sp, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if ((rc = cli_steer_apply(st, &cm, s, !no_bos))) goto out;
    out = ss_calloc((size_t)max_new + 1, sizeof(int));
    stream_ctx sc = {cm.tok, {{0}, 0}, !json};
    gen_timing tm;
    rc = generate(s, smp, ids, n, (int)max_new, !ignore_eos, out, &n_out, on_token, &sc, &tm, err);
    if (rc) { rc = cli_fail(rc, "%s", err); goto out; }
    char *gen_text = NULL;
    if ((rc = tok_decode(cm.tok, out, n_out, &gen_text, err))) { rc = cli_fail(rc, "%s", err); goto out; }
    if (json || record) {
        cJSON *j = cJSON_CreateObject();
        cJSON *toks = cJSON_AddArrayToObject(j, "tokens");
        for (int i = 0; i < n_out; i++) cJSON_AddItemToArray(toks, cJSON_CreateNumber(out[i]));
        cJSON_AddStringToObject(j, "text", gen_text);
        cJSON *t = cJSON_AddObjectToObject(j, "timing");
        cJSON_AddNumberToObject(t, "load_s", cm.load_s);
        cJSON_AddNumberToObject(t, "prefill_s", tm.prefill_s);
        cJSON_AddNumberToObject(t, "prefill_tokens", tm.prefill_tokens);
        cJSON_AddNumberToObject(t, "decode_s", tm.decode_s);
        cJSON_AddNumberToObject(t, "new_tokens", tm.new_tokens);
        if (json) cli_print_json(j);
        if (record) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "command", "generate");
            cJSON_AddStringToObject(r, "model", cm.model->dir);
            cJSON_AddStringToObject(r, "prompt", text);
            cJSON_AddBoolToObject(r, "bos", !no_bos);
            cJSON_AddItemToObject(r, "intervention", cli_steer_json(st));
            cJSON *smpj = cJSON_AddObjectToObject(r, "sampling");
            cJSON_AddNumberToObject(smpj, "temperature", sp.temperature);
            cJSON_AddNumberToObject(smpj, "top_k", sp.top_k);
            cJSON_AddNumberToObject(smpj, "top_p", sp.top_p);
            cJSON_AddNumberToObject(smpj, "repetition_penalty", sp.repetition_penalty);
            cJSON_AddNumberToObject(smpj, "seed", (double)sp.seed);
            cJSON_AddNumberToObject(smpj, "max_new_tokens", (double)max_new);
            cJSON_AddItemToObject(r, "output", cJSON_Duplicate(j, 1));
            rc = cli_record_append(record, r);
            cJSON_Delete(r);
        }
        cJSON_Delete(j);
    }
    if (!json) {
        char buf[64];
        size_t k = 0;
        tok_stream_flush(&sc.ts, buf, sizeof buf, &k);
        fwrite(buf, 1, k, stdout);
        putchar('\n');
    }
    free(gen_text);
out:
    free(out);
    sampler_free(smp);
    gpt2_state_free(s);
    free(ids);
    cli_free_model(&cm);
    cli_steer_free(st);
    return rc;
bad:
    cli_steer_free(st);
    return SS_EINPUT;
}
