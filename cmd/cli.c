/* cli.c - shared pieces of the saesteer CLI (see cli.h). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "npy.h"
#include "sae.h"

#ifndef SAESTEER_HOME
#define SAESTEER_HOME "."
#endif
#define DEFAULT_MODEL "weights/model"
#define DEFAULT_SAE "weights/saes/blocks.2.hook_resid_pre.h5"

const char *cli_cmd_name = "saesteer";

void (*cli_fail_sink)(int code, const char *msg) = NULL;

int cli_fail(int code, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, and no terminal control bytes (ESC from a hostile file would reach the terminal) */
    for (char *p = msg; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n' || c == '\r' || c == '\t') *p = ' ';
        else if (c < 0x20 || c == 0x7f) *p = '?';
    }
    if (cli_fail_sink) cli_fail_sink(code, msg);
    else fprintf(stderr, "saesteer %s: %s\n", cli_cmd_name, msg);
    return code;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_fail(SS_EINPUT, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_fail(SS_EINPUT, "%s: '%.40s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    *out = v;
    return SS_OK;
}

int cli_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) < 1.0) errno = 0;   /* underflow (1e-320): a tiny number, not an error */
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return cli_fail(SS_EINPUT, "%s: '%.40s' is not a finite number in [%g, %g]", flag, s, lo, hi);
    *out = (float)v;
    return SS_OK;
}

int cli_float_list(const char *flag, const char *s, float **out, int *n) {
    *out = NULL;
    *n = 0;
    size_t sl = strlen(s);   /* strtok_r would skip empty items: "0,,4" is a typo, not [0, 4] */
    if (sl && (s[0] == ',' || s[sl - 1] == ',' || strstr(s, ",,")))
        return cli_fail(SS_EINPUT, "%s: empty item in '%.40s'", flag, s);
    char *copy = strdup(s), *save = NULL;
    float *v = calloc(strlen(s) + 1, sizeof(float));
    if (!copy || !v) { free(copy); free(v); return cli_fail(SS_ERUNTIME, "out of memory"); }
    int rc = SS_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save))
        rc = cli_float(flag, tok, -1e6, 1e6, &v[(*n)++]);
    if (!rc && *n == 0) rc = cli_fail(SS_EINPUT, "%s: empty list", flag);
    free(copy);
    if (rc) { free(v); *n = 0; return rc; }
    *out = v;
    return SS_OK;
}

int cli_int_list(const char *flag, const char *s, long lo, long hi, int **out, int *n) {
    *out = NULL;
    *n = 0;
    size_t sl = strlen(s);   /* strtok_r would skip empty items: "0,,4" is a typo, not [0, 4] */
    if (sl && (s[0] == ',' || s[sl - 1] == ',' || strstr(s, ",,")))
        return cli_fail(SS_EINPUT, "%s: empty item in '%.40s'", flag, s);
    char *copy = strdup(s), *save = NULL;
    int *v = calloc(strlen(s) + 1, sizeof(int));
    if (!copy || !v) { free(copy); free(v); return cli_fail(SS_ERUNTIME, "out of memory"); }
    int rc = SS_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        long x = 0;
        rc = cli_int(flag, tok, lo, hi, &x);
        v[(*n)++] = (int)x;
    }
    if (!rc && *n == 0) rc = cli_fail(SS_EINPUT, "%s: empty list", flag);
    free(copy);
    if (rc) { free(v); *n = 0; return rc; }
    *out = v;
    return SS_OK;
}

static const char *home(void) {
    const char *h = getenv("SAESTEER_HOME");
    return h && *h ? h : SAESTEER_HOME;
}

const char *cli_default_model(void) {
    static char buf[4096];
    const char *e = getenv("SAESTEER_MODEL");
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "%s/%s", home(), DEFAULT_MODEL);
    return buf;
}

const char *cli_default_sae(void) {
    static char buf[4096];
    const char *e = getenv("SAESTEER_SAE");
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "%s/%s", home(), DEFAULT_SAE);
    return buf;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_load_model(cli_model *cm, const char *dir) {
    char err[SS_ERRLEN];
    memset(cm, 0, sizeof *cm);
    if (!dir) dir = cli_default_model();
    double t0 = ss_now();
    int rc = gpt2_load(&cm->model, dir, err);
    if (rc) return cli_fail(rc, "%s", err);
    char vocab[4200], merges[4200], tokjson[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    snprintf(tokjson, sizeof tokjson, "%s/tokenizer.json", dir);
    int use_json = !is_file(vocab) && !is_file(merges) && is_file(tokjson);   /* GPT-NeoX / Pythia ship only this */
    if (!use_json && !is_file(vocab) && !is_file(merges) && cm->model->cfg.vocab_size == 50257) {
        /* weights-only checkpoints (save_pretrained without a tokenizer):
           GPT-2's tokenizer is the only one a 50257-token GPT-2 uses */
        snprintf(vocab, sizeof vocab, "%s/weights/gpt2-tokenizer/vocab.json", home());
        snprintf(merges, sizeof merges, "%s/weights/gpt2-tokenizer/merges.txt", home());
        fprintf(stderr, "saesteer %s: note: %s has no vocab.json/merges.txt; using the GPT-2 tokenizer shipped in weights/gpt2-tokenizer\n",
                cli_cmd_name, dir);
    }
    rc = use_json ? tok_load_json(&cm->tok, tokjson, err) : tok_load(&cm->tok, vocab, merges, err);
    if (rc) { gpt2_free(cm->model); cm->model = NULL; return cli_fail(rc, "%s", err); }
    tok_set_model_vocab(cm->tok, cm->model->cfg.vocab_size);
    if (tok_vocab_size(cm->tok) > cm->model->cfg.vocab_size) {
        int v = tok_vocab_size(cm->tok);
        cli_free_model(cm);
        return cli_fail(SS_EINPUT, "%s: tokenizer has %d tokens but config.json vocab_size is smaller", dir, v);
    }
    cm->load_s = ss_now() - t0;
    return SS_OK;
}

void cli_free_model(cli_model *cm) {
    tok_free(cm->tok);
    gpt2_free(cm->model);
    memset(cm, 0, sizeof *cm);
}

int cli_encode(const cli_model *cm, const char *text, int no_bos, int **ids, int *n) {
    char err[SS_ERRLEN];
    int *raw = NULL, nraw = 0;
    int rc = tok_encode(cm->tok, text, strlen(text), &raw, &nraw, err);
    if (rc) return cli_fail(rc, "--text: %s", err);
    int total = nraw + (no_bos ? 0 : 1);
    if (total == 0) { free(raw); return cli_fail(SS_EINPUT, "--text is empty and --no-bos leaves no tokens"); }
    if (total > cm->model->cfg.n_positions) {
        free(raw);
        return cli_fail(SS_EINPUT, "prompt has %d tokens but the model's context (n_positions) is %d", total,
                        cm->model->cfg.n_positions);
    }
    int *out = malloc((size_t)total * sizeof(int));
    if (!out) { free(raw); return cli_fail(SS_ERUNTIME, "out of memory"); }
    if (!no_bos) out[0] = cm->model->cfg.bos_id;
    if (nraw) memcpy(out + (no_bos ? 0 : 1), raw, (size_t)nraw * sizeof(int));
    free(raw);
    *ids = out;
    *n = total;
    return SS_OK;
}

int cli_read_text_file(const char *path, char **text, size_t *len) {
    char err[SS_ERRLEN];
    size_t n = 0;   /* len may be NULL */
    int rc = ss_read_file(path, text, &n, err);
    if (len) *len = n;
    if (rc) return cli_fail(rc, "%s", err);
    const char *nul = memchr(*text, '\0', n);
    if (nul) {   /* C strings would end there: the rest of the file would be dropped without a word */
        size_t at = (size_t)(nul - *text);
        free(*text);
        *text = NULL;
        return cli_fail(SS_EINPUT, "%s: NUL byte at offset %zu (text files must not contain NUL)", path, at);
    }
    if (!ss_utf8_valid(*text, n)) {
        free(*text);
        *text = NULL;
        return cli_fail(SS_EINPUT, "%s: not valid UTF-8", path);
    }
    return SS_OK;
}

/* ------------------------------------------------------ steering flags --- */

#define MAX_HOOK_ARGS 32

struct cli_steer {
    const char *vec_path;        /* --steer-vector */
    const char *hooks[MAX_HOOK_ARGS]; int n_hooks;  /* --hook (all given) */
    const char *steer_hook;      /* --steer-hook (else the first --hook) */
    float scale; int have_scale; /* --scale */
    float clamp; int have_clamp; /* --clamp */
    int ablate;                  /* --ablate */
    const char *sae_path;        /* --sae */
    int *latents; int n_latents; /* --latent I[,J..] */
    const char *positions;       /* --positions */
    const char *replace;         /* --sae-replace */
    /* loaded by cli_steer_apply */
    npy_array vec;
    steer_add add;
    gguf_cvec cv;                /* --steer-vector F.gguf: llama.cpp control vector */
    steer_add *adds;             /* (cv.n_dirs) one add per direction.N */
    sae_dict *sae;
    sae_intervention *iv;
};

const char *cli_steer_help =
    "steering (any of logits, cache, generate):\n"
    "  --steer-vector V.npy --hook NAME --scale S   add S*V at NAME (a 2-D V adds row p at position p)\n"
    "  --steer-hook NAME                            hook for the vector when --hook lists cache reads\n"
    "  --sae PATH --latent I[,J..] --scale S        boost: add S*W_dec[i] at the SAE's hook\n"
    "  --sae PATH --latent I[,J..] --clamp V        clamp latent(s) to V, keeping the SAE's error\n"
    "  --sae PATH --latent I[,J..] --ablate         clamp to 0\n"
    "  --sae PATH --sae-replace recon|recon+error   replace the activation by the SAE's reconstruction\n"
    "  --positions all|last|i,j,k                   where to intervene (default all, generated tokens too;\n"
    "                                               last = the final position of every forward step)\n";

cli_steer *cli_steer_new(void) { return calloc(1, sizeof(cli_steer)); }

void cli_steer_free(cli_steer *st) {
    if (!st) return;
    npy_free(&st->vec);
    gguf_cvec_free(&st->cv);
    free(st->adds);
    sae_intervention_free(st->iv);
    sae_free(st->sae);
    free(st->latents);
    free(st);
}

int cli_steer_flag(cli_steer *st, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
#define VAL() do { if (!(v = cli_value(argc, argv, i))) return -1; } while (0)
    if (!strcmp(a, "--steer-vector")) { VAL(); st->vec_path = v; return 1; }
    if (!strcmp(a, "--hook")) {
        VAL();
        if (st->n_hooks >= MAX_HOOK_ARGS) { cli_fail(SS_EINPUT, "too many --hook flags (max %d)", MAX_HOOK_ARGS); return -1; }
        st->hooks[st->n_hooks++] = v;
        return 1;
    }
    if (!strcmp(a, "--steer-hook")) { VAL(); st->steer_hook = v; return 1; }
    if (!strcmp(a, "--scale")) { VAL(); if (cli_float(a, v, -1e6, 1e6, &st->scale)) return -1; st->have_scale = 1; return 1; }
    if (!strcmp(a, "--clamp")) { VAL(); if (cli_float(a, v, -1e6, 1e6, &st->clamp)) return -1; st->have_clamp = 1; return 1; }
    if (!strcmp(a, "--ablate")) { st->ablate = 1; return 1; }
    if (!strcmp(a, "--sae")) { VAL(); st->sae_path = v; return 1; }
    if (!strcmp(a, "--latent")) {
        VAL();
        int *l, n;
        if (cli_int_list(a, v, 0, 1L << 30, &l, &n)) return -1;
        int *grown = realloc(st->latents, (size_t)(st->n_latents + n) * sizeof(int));
        if (!grown) { free(l); cli_fail(SS_ERUNTIME, "out of memory"); return -1; }
        st->latents = grown;
        memcpy(st->latents + st->n_latents, l, (size_t)n * sizeof(int));
        st->n_latents += n;
        free(l);
        return 1;
    }
    if (!strcmp(a, "--positions")) {
        VAL();
        steer_positions p;
        char err[SS_ERRLEN];
        if (steer_positions_parse(v, &p, err)) { cli_fail(SS_EINPUT, "%s", err); return -1; }
        st->positions = v;
        return 1;
    }
    if (!strcmp(a, "--sae-replace")) {
        VAL();
        if (strcmp(v, "recon") && strcmp(v, "recon+error")) { cli_fail(SS_EINPUT, "--sae-replace must be recon or recon+error"); return -1; }
        st->replace = v;
        return 1;
    }
#undef VAL
    return 0;
}

int cli_steer_active(const cli_steer *st) {
    return st->vec_path || st->n_latents > 0 || st->replace;
}

int cli_steer_hooks(const cli_steer *st, const char ***names) {
    *names = (const char **)st->hooks;
    return st->n_hooks;
}

/* Check that the flags form one coherent intervention. */
static int steer_validate(const cli_steer *st) {
    if (st->vec_path && (st->n_latents || st->replace))
        return cli_fail(SS_EINPUT, "use --steer-vector or --sae --latent/--sae-replace, not both");
    if (st->vec_path) {
        if (!st->steer_hook && st->n_hooks == 0 && !gguf_is_gguf(st->vec_path))
            return cli_fail(SS_EINPUT, "--steer-vector needs --hook NAME");
        if (!st->have_scale) return cli_fail(SS_EINPUT, "--steer-vector needs --scale S");
        if (st->have_clamp || st->ablate) return cli_fail(SS_EINPUT, "--clamp/--ablate apply to --sae latents, not vectors");
    }
    if (st->n_latents) {
        int modes = st->have_scale + st->have_clamp + st->ablate;
        if (modes != 1) return cli_fail(SS_EINPUT, "--latent needs exactly one of --scale S (boost), --clamp V or --ablate");
    } else if (!st->vec_path && (st->have_clamp || st->ablate)) {
        return cli_fail(SS_EINPUT, "--clamp/--ablate need --sae PATH --latent I");
    }
    return SS_OK;
}

int cli_load_vector(npy_array *v, const char *path, const gpt2_config *cfg, const gpt2_hook_point *hp, const char *hname) {
    char err[SS_ERRLEN];
    int rc = npy_load(v, path, err);
    if (rc) return cli_fail(rc, "--steer-vector: %s", err);
    int width = gpt2_hook_width(cfg, hp);
    int64_t w = v->ndim ? v->shape[v->ndim - 1] : 0;
    if (v->ndim < 1 || v->ndim > 2 || w != width)
        return cli_fail(SS_EINPUT, "%s: vector of shape %s%lld%s must be (%d,) or (P, %d) for hook %s", path,
                        v->ndim == 2 ? "(P, " : "(", (long long)w, v->ndim == 2 ? ")" : ",)", width, width, hname);
    for (int64_t i = 0; i < v->numel; i++)
        if (!isfinite(v->data[i])) return cli_fail(SS_EINPUT, "%s: non-finite value at index %lld", path, (long long)i);
    return SS_OK;
}

int cli_steer_apply(cli_steer *st, const cli_model *cm, gpt2_state *s, int bos) {
    char err[SS_ERRLEN];
    int rc = steer_validate(st);
    if (rc) return rc;
    steer_positions pos;
    steer_positions_parse(st->positions, &pos, err);
    if (st->vec_path && gguf_is_gguf(st->vec_path)) {
        /* a control vector names its own hooks: direction.N -> blocks.N.hook_resid_post */
        if ((rc = gguf_cvec_read(&st->cv, st->vec_path, err))) return cli_fail(rc, "--steer-vector: %s", err);
        st->adds = calloc((size_t)(st->cv.n_dirs ? st->cv.n_dirs : 1), sizeof(steer_add));
        if (!st->adds) return cli_fail(SS_ERUNTIME, "out of memory");
        if ((rc = gguf_cvec_attach(&st->cv, s, st->scale, st->adds, err))) return cli_fail(rc, "%s", err);
        for (int i = 0; i < st->cv.n_dirs; i++) st->adds[i].pos = pos;
    } else if (st->vec_path) {
        const char *hname = st->steer_hook ? st->steer_hook : st->hooks[0];
        gpt2_hook_point hp;
        if ((rc = gpt2_hook_parse(&cm->model->cfg, hname, &hp, err))) return cli_fail(rc, "--hook: %s", err);
        if (hp.kind == GPT2_HOOK_PATTERN) return cli_fail(SS_EINPUT, "--hook %s: attention patterns cannot be steered", hname);
        if ((rc = cli_load_vector(&st->vec, st->vec_path, &cm->model->cfg, &hp, hname))) return rc;
        int width = gpt2_hook_width(&cm->model->cfg, &hp);
        st->add.vec = st->vec.data;
        st->add.rows = st->vec.ndim == 2 ? (int)st->vec.shape[0] : 1;
        st->add.width = width;
        st->add.scale = st->scale;
        st->add.pos = pos;
        if ((rc = gpt2_add_hook(s, &hp, steer_add_hook, &st->add, 0, err))) return cli_fail(rc, "%s", err);
    }
    if (st->n_latents || st->replace) {
        const char *path = st->sae_path ? st->sae_path : cli_default_sae();
        if (!st->sae && (rc = sae_load(&st->sae, path, err))) return cli_fail(rc, "%s", err);
        gpt2_hook_point hp;
        if ((rc = sae_check_model(st->sae, &cm->model->cfg, &hp, err))) return cli_fail(rc, "%s", err);
        if (st->sae->prepend_bos != bos)
            fprintf(stderr, "saesteer %s: warning: %s was trained %s BOS but this prompt is run %s it (%s)\n", cli_cmd_name,
                    path, st->sae->prepend_bos ? "with" : "without", bos ? "with" : "without",
                    bos ? "add --no-bos to match" : "drop --no-bos to match");
        sae_edit *edits = calloc((size_t)(st->n_latents + 1), sizeof(sae_edit));
        if (!edits) return cli_fail(SS_ERUNTIME, "out of memory");
        for (int i = 0; i < st->n_latents; i++) {
            if (st->latents[i] >= st->sae->d_sae) {
                free(edits);
                return cli_fail(SS_EINPUT, "--latent %d out of range: %s has %d latents", st->latents[i], path, st->sae->d_sae);
            }
            edits[i].latent = st->latents[i];
            edits[i].kind = st->have_scale ? SAE_EDIT_BOOST : SAE_EDIT_CLAMP;
            edits[i].value = st->have_scale ? st->scale : st->have_clamp ? st->clamp : 0.0f;
        }
        sae_replace rep = !st->replace ? SAE_REPLACE_NONE
                          : strcmp(st->replace, "recon") == 0 ? SAE_REPLACE_RECON : SAE_REPLACE_RECON_ERR;
        rc = sae_intervention_new(&st->iv, st->sae, edits, st->n_latents, &pos, rep, err);
        free(edits);
        if (rc) return cli_fail(rc, "%s", err);
        if ((rc = sae_intervention_attach(st->iv, s, err))) return cli_fail(rc, "%s", err);
    }
    return SS_OK;
}

/* sha256 of a file, or of the weights file inside a SAELens folder */
static void add_sha(cJSON *o, const char *key, const char *path) {
    char hex[65], err[SS_ERRLEN], p[4200];
    struct stat stb;
    if (stat(path, &stb) == 0 && S_ISDIR(stb.st_mode)) {
        snprintf(p, sizeof p, "%s/sae_weights.safetensors", path);
        if (!is_file(p)) snprintf(p, sizeof p, "%s/model.safetensors", path);
        path = p;
    }
    if (ss_sha256_file(path, hex, err) == SS_OK) cJSON_AddStringToObject(o, key, hex);
}

cJSON *cli_steer_json(const cli_steer *st) {
    cJSON *o = cJSON_CreateObject();
    if (st->vec_path) {
        cJSON_AddStringToObject(o, "method", "vector");
        cJSON_AddStringToObject(o, "steer_vector", st->vec_path);
        add_sha(o, "steer_vector_sha256", st->vec_path);
        if (st->steer_hook || st->n_hooks) cJSON_AddStringToObject(o, "hook", st->steer_hook ? st->steer_hook : st->hooks[0]);
        cJSON_AddNumberToObject(o, "scale", st->scale);
    } else if (st->n_latents || st->replace) {
        const char *path = st->sae_path ? st->sae_path : cli_default_sae();
        cJSON_AddStringToObject(o, "method", st->replace ? "sae-replace" : st->have_scale ? "sae-boost" : "sae-clamp");
        cJSON_AddStringToObject(o, "sae", path);
        add_sha(o, "sae_sha256", path);
        if (st->sae) cJSON_AddStringToObject(o, "hook", st->sae->hook_name);
        cJSON *l = cJSON_AddArrayToObject(o, "latents");
        for (int i = 0; i < st->n_latents; i++) cJSON_AddItemToArray(l, cJSON_CreateNumber(st->latents[i]));
        if (st->have_scale) cJSON_AddNumberToObject(o, "scale", st->scale);
        if (st->have_clamp || st->ablate) cJSON_AddNumberToObject(o, "clamp", st->ablate ? 0.0 : st->clamp);
        if (st->replace) cJSON_AddStringToObject(o, "replace", st->replace);
    } else {
        cJSON_AddStringToObject(o, "method", "none");
    }
    cJSON_AddStringToObject(o, "positions", st->positions ? st->positions : "all");
    return o;
}

/* Default handlers for the whole process (main calls this once): SIGINT and
   SIGTERM remove every temporary output and exit 1 with one line (commands with
   their own stop handler replace these, cli_catch_stop_signals); SIGXFSZ is
   ignored so that a file size limit shows up as a write error; SIGBUS (a
   mapped input truncated under us) is one line and exit 1. */
static void guard_handler(int sig) {
    ss_out_unlink_temps();
    char msg[256];
    const char *what = sig == SIGBUS ? "an input file was truncated or changed while mapped (SIGBUS)"
                       : sig == SIGINT ? "interrupted (SIGINT); no output written"
                                       : "terminated (SIGTERM); no output written";
    size_t n = 0;
    for (const char *p = "saesteer "; *p && n < sizeof msg - 2; ) msg[n++] = *p++;
    for (const char *p = cli_cmd_name; *p && n < sizeof msg - 2; ) msg[n++] = *p++;
    for (const char *p = ": "; *p && n < sizeof msg - 2; ) msg[n++] = *p++;
    for (const char *p = what; *p && n < sizeof msg - 2; ) msg[n++] = *p++;
    msg[n++] = '\n';
    if (write(2, msg, n) < 0) { /* nothing left to do */ }
    _exit(1);
}

void cli_install_guards(void) {
    char err[SS_ERRLEN];
    if (ss_blas_fit_limits(err)) { fprintf(stderr, "saesteer: %s\n", err); _exit(SS_ERUNTIME); }   /* not exit(): OpenBLAS teardown */
    ss_input_guard(1);   /* an output never replaces a file this run read */
    signal(SIGXFSZ, SIG_IGN);
    const int sigs[3] = {SIGINT, SIGTERM, SIGBUS};
    for (int i = 0; i < 3; i++) {
        struct sigaction old, sa;
        if (sigs[i] != SIGBUS && sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = guard_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

int cli_out_check(const char *flag, const char *path) {
    char err[SS_ERRLEN];
    if (path && ss_out_check(path, err)) return cli_fail(SS_EINPUT, "%s %s", flag, err);
    return SS_OK;
}

int cli_record_check(const char *path) {
    char err[SS_ERRLEN];
    struct stat st;
    if (!path) return SS_OK;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return cli_fail(SS_EINPUT, "--record %s: not a regular file", path);
    if (ss_out_check(path, err)) return cli_fail(SS_EINPUT, "--record %s", err);
    return SS_OK;
}

void cli_catch_stop_signals(void (*handler)(int)) {
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

int cli_record_append(const char *path, cJSON *obj) {
    char *json = cJSON_PrintUnformatted(obj);
    size_t n = json ? strlen(json) : 0;
    char *line = json ? malloc(n + 2) : NULL;
    if (!line) { free(json); return cli_fail(SS_ERUNTIME, "--record %s: out of memory", path); }
    memcpy(line, json, n);
    line[n] = '\n';
    free(json);
    /* O_NONBLOCK: a FIFO with no reader is an error, not a hang */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        free(line);
        return cli_fail(e == ENOENT || e == ENOTDIR || e == EISDIR || e == ENXIO ? SS_EINPUT : SS_ERUNTIME,
                        "--record %s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        free(line);
        return cli_fail(SS_EINPUT, "--record %s: not a regular file", path);
    }
    /* one write(2) on O_APPEND: the line lands whole at the end, and concurrent
       appenders never interleave; a short write (full disk, file size limit)
       is cut back off so the file keeps ending with a whole line */
    ssize_t w;
    do w = write(fd, line, n + 1); while (w < 0 && errno == EINTR);
    int e = errno;
    free(line);
    if (w != (ssize_t)(n + 1)) {
        if (w > 0) {
            off_t end = lseek(fd, 0, SEEK_CUR);
            if (end >= w && ftruncate(fd, end - w) != 0) { /* nothing more to do */ }
        }
        close(fd);
        return cli_fail(SS_ERUNTIME, "--record %s: write failed: %s", path, w < 0 ? strerror(e) : "short write (disk full?)");
    }
    if (close(fd) != 0) return cli_fail(SS_ERUNTIME, "--record %s: write failed: %s", path, strerror(errno));
    return SS_OK;
}

void cli_print_json(cJSON *obj) {
    char *s = cJSON_PrintUnformatted(obj);
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
}
