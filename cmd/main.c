/* main.c - saesteer: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "corpus_job.h"

int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_steer(int argc, char **argv);
/* sae subcommands (cmd_sae.c) */
int cmd_encode(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_latents(int argc, char **argv);
int cmd_sae_eval(int argc, char **argv);
/* corpus subcommands (cmd_scan.c) */
int cmd_perplexity(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_merge(int argc, char **argv);
/* contrastive vectors, comparison, function vectors (cmd_vector.c, cmd_compare.c, cmd_fv.c) */
int cmd_vector(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_task_vector(int argc, char **argv);
int cmd_fv(int argc, char **argv);
/* analyses (cmd_analysis.c) */
int cmd_patch(int argc, char **argv);
int cmd_lens(int argc, char **argv);
int cmd_unembed(int argc, char **argv);
int cmd_attention(int argc, char **argv);

static const struct { const char *name; cli_cmd_fn fn; const char *help; } COMMANDS[] = {
    {"tokenize", cmd_tokenize, "text -> GPT-2 token ids"},
    {"logits", cmd_logits, "logits (T, vocab) for a prompt, optionally steered"},
    {"cache", cmd_cache, "activations at TransformerLens hook points"},
    {"generate", cmd_generate, "continue a prompt (greedy or sampled), optionally steered"},
    {"steer", cmd_steer, "feature-boosting experiment: default vs steered generations over scales"},
    {"encode", cmd_encode, "SAE latent activations (and reconstruction) for a prompt"},
    {"convert", cmd_convert, "SAELens folder -> saesteer HDF5 dictionary"},
    {"info", cmd_info, "describe a dictionary, or a model with --model DIR"},
    {"latents", cmd_latents, "top latents per token of a prompt"},
    {"sae-eval", cmd_sae_eval, "reconstruction and CE-loss metrics of a dictionary over a text file"},
    {"perplexity", cmd_perplexity, "model perplexity over a text file (streamed, BOS-prefixed windows)"},
    {"scan", cmd_scan, "top activating contexts of every latent over a text file -> latents.json, dashboard.html"},
    {"label", cmd_label, "name latents in an .h5 dictionary"},
    {"merge", cmd_merge, "combine the part files of scan/sae-eval/perplexity --shard I/N"},
    {"vector", cmd_vector, "contrastive steering vector (mean, pca, ActAdd) and llama.cpp GGUF export/import"},
    {"compare", cmd_compare, "SAE-latent boost vs a steering vector: effect against fluency over scales"},
    {"task-vector", cmd_task_vector, "task-encoding hidden state (ICL mean) patched into zero-shot prompts"},
    {"fv", cmd_fv, "function vector: per-head causal indirect effects, top heads, FV accuracy"},
    {"patch", cmd_patch, "activation patching clean -> corrupted per layer x position or head (heat map)"},
    {"lens", cmd_lens, "logit lens: top next tokens at every layer's residual stream"},
    {"unembed", cmd_unembed, "top and bottom tokens of a direction (vector, SAE decoder row)"},
    {"attention", cmd_attention, "self-contained HTML view of the attention patterns of a prompt"},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static cli_cmd_fn lookup(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(COMMANDS[i].name, name)) return COMMANDS[i].fn;
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: saesteer SUBCOMMAND [options]   (saesteer SUBCOMMAND --help for its options)\n\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\n--model DIR defaults to the shipped model (weights/model), --sae PATH to the shipped dictionary.\n"
               "DIR is an HF GPT-2, GPT-J or GPT-NeoX/Pythia folder (config.json, safetensors, vocab.json+merges.txt\n"
               "or tokenizer.json); f16/bf16 weights stay f16/bf16 in memory.\n"
               "Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage.\n");
}

int main(int argc, char **argv) {
    cli_install_guards();
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    cli_cmd_fn fn = lookup(argv[1]);
    if (!fn) {
        fprintf(stderr, "saesteer: unknown subcommand '%.64s' (see saesteer --help)\n", argv[1]);
        return 2;
    }
    cli_cmd_name = argv[1];
    /* corpus commands may run as MPI ranks (mpirun -n N, a -DSAESTEER_MPI=ON build) */
    if (fn == cmd_scan || fn == cmd_sae_eval || fn == cmd_perplexity) {
        int rc = cjob_start(&argc, &argv);
        if (!rc) rc = fn(argc - 1, argv + 1);
        return cjob_finish(rc);
    }
    return fn(argc - 1, argv + 1);
}
