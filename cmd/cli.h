/* cli.h - shared pieces of the saesteer CLI: argument helpers, defaults,
 * model loading, prompt encoding, steering flags, output. Only cmd/ prints
 * and exits; every computation lives in lib/ or sae/. Exit codes: 0 ok,
 * 1 runtime failure, 2 bad input or usage. */
#ifndef SS_CLI_H
#define SS_CLI_H

#include "common.h"
#include "gpt2.h"
#include "steer.h"
#include "tokenizer.h"

/* ---- subcommands: each returns the process exit code ---- */
typedef int (*cli_cmd_fn)(int argc, char **argv);

/* ---- errors and parsing ---- */
/* Print "saesteer CMD: message" to stderr (one line). Returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern const char *cli_cmd_name;   /* current subcommand, for messages */
/* When set, cli_fail hands its message here instead of printing it (MPI
   ranks collect failures so that one line names the failing rank). */
extern void (*cli_fail_sink)(int code, const char *msg);

/* Value of a flag that takes one: argv[*i + 1], advancing *i; NULL (and an
   error printed) if missing. */
const char *cli_value(int argc, char **argv, int *i);
/* Strict numeric parsing with a range; print an error naming the flag. */
int cli_int(const char *flag, const char *s, long lo, long hi, long *out);
int cli_float(const char *flag, const char *s, double lo, double hi, float *out);
/* Comma-separated lists: "0,2,4.5" -> floats; "3,17" -> ints. Caller frees. */
int cli_float_list(const char *flag, const char *s, float **out, int *n);
int cli_int_list(const char *flag, const char *s, long lo, long hi, int **out, int *n);

/* Defaults: $SAESTEER_MODEL, else <home>/weights/model; $SAESTEER_SAE, else
   the first shipped dictionary. <home> is $SAESTEER_HOME or the source tree. */
const char *cli_default_model(void);
const char *cli_default_sae(void);

/* ---- model + tokenizer ---- */
typedef struct {
    gpt2_model *model;
    tokenizer *tok;
    double load_s;
} cli_model;
/* Load dir (NULL -> default): config, weights, vocab.json, merges.txt. */
int cli_load_model(cli_model *cm, const char *dir);
void cli_free_model(cli_model *cm);
/* Encode text, prepending BOS unless no_bos; check the length fits. */
int cli_encode(const cli_model *cm, const char *text, int no_bos, int **ids, int *n);
/* Read a text argument or file; validates UTF-8. */
int cli_read_text_file(const char *path, char **text, size_t *len);

/* ---- steering flags shared by logits, cache, generate, steer, compare ---- */
/* --steer-vector V.npy --hook NAME --scale S
   --sae PATH --latent I[,J..] (--scale S | --clamp V | --ablate)
   --positions all|last|i,j,k   --sae-replace recon|recon+error           */
typedef struct cli_steer cli_steer;
cli_steer *cli_steer_new(void);
void cli_steer_free(cli_steer *st);
/* If argv[*i] is a steering flag, consume it (and its value) and return 1;
   return 0 if not a steering flag; -1 after printing an error (exit 2). */
int cli_steer_flag(cli_steer *st, int argc, char **argv, int *i);
/* Has the user asked for any intervention? */
int cli_steer_active(const cli_steer *st);
/* The --hook value(s) (cache reads them too). */
int cli_steer_hooks(const cli_steer *st, const char ***names);
/* Load vectors / SAEs, validate against the model, register hooks on s.
   bos: whether the prompt starts with BOS (warns if an SAE was trained otherwise). */
int cli_steer_apply(cli_steer *st, const cli_model *cm, gpt2_state *s, int bos);
/* Load a steering vector for hook hp: (width,) or (P, width), all finite.
   Prints the error and returns the exit code on failure. */
#include "npy.h"
int cli_load_vector(npy_array *v, const char *path, const gpt2_config *cfg, const gpt2_hook_point *hp, const char *hname);
/* JSON object describing the intervention (for --record and --json). */
struct cJSON *cli_steer_json(const cli_steer *st);
/* Usage text for the steering flags. */
extern const char *cli_steer_help;

/* ---- sampling flags (generate, steer, compare): --temperature --top-k --top-p
   --repetition-penalty --frequency-penalty --presence-penalty --seed.
   Returns 1 if consumed, 0 if not a sampling flag, -1 after an error. ---- */
#include "sample.h"
int cli_sampling_flag(sampler_params *sp, int argc, char **argv, int *i);
extern const char *cli_sampling_help;

/* ---- outputs ---- */
/* SIGINT/SIGTERM call handler once (a second one takes the default action).
   A signal that was ignored when the program started (nohup, a background
   job of a non-interactive shell) stays ignored. */
void cli_catch_stop_signals(void (*handler)(int));
/* Process-wide signal guards (main calls this first): SIGINT/SIGTERM remove
   temporary outputs and exit 1 with one line; SIGXFSZ is ignored (a write
   error instead); SIGBUS from a truncated mapped input is one line, exit 1. */
void cli_install_guards(void);
/* Exit-2 check, before any work, that an output path can be written
   (ss_out_check): its directory exists, it is not a directory nor an input
   opened so far. NULL path: nothing to check. Prints "FLAG msg". */
int cli_out_check(const char *flag, const char *path);
/* The same for a --record file, which must be a regular file or not exist yet. */
int cli_record_check(const char *path);
/* Append one JSON line to a record file (experiment log, --record FILE):
   one write(2) on O_APPEND, cut back off if short; regular files only. */
int cli_record_append(const char *path, struct cJSON *obj);
/* Print a cJSON object to stdout followed by a newline. */
void cli_print_json(struct cJSON *obj);

#endif
