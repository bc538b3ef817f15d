/* cmd_fv.c - task-vector and fv: task-encoding hidden states and function
 * vectors over an in-context-learning dataset (ARENA 1.3.2 sections 2-3). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fv.h"
#include "npy.h"
#include "svg.h"

static const char *common_help =
    "  --dataset F        JSON list of {\"input\": x, \"output\": y} (e.g. weights/datasets/antonyms.json)\n"
    "  --layer L          the output of block L (blocks.L.hook_resid_post)\n"
    "  --shots N          in-context examples per prompt (default 5)\n"
    "  --n-prompts N      ICL prompts averaged (default 20)\n"
    "  --n-eval N         zero-shot queries scored (default 50)\n"
    "  --seed S           prompt sampling seed (default 0)\n"
    "  --examples N       greedy generations shown (default 3), --max-new-tokens N (default 8)\n"
    "  --no-bos           no <|endoftext|> before each prompt\n"
    "Prompts are \"Q: x\\nA: y\\n\\n\" repeated, then \"Q: x\\nA:\"; accuracy is first-token exact match of \" y\".\n";

typedef struct {
    const char *model, *dataset, *save, *plot;
    int json;
    fv_opts o;
} fv_args;

/* returns 0 ok, 1 help shown, -1 error */
static int parse(int argc, char **argv, fv_args *a, int is_fv) {
    memset(a, 0, sizeof *a);
    fv_opts_default(&a->o);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v;
        long x;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (is_fv)
                printf("usage: saesteer fv [--model DIR] --dataset F --layer L [--heads K] [--shots N] [--save-fv V.npy]\n"
                       "                   [--plot heat.svg] [--json] ...\n"
                       "Function vectors (Todd et al.): the mean attention-head output (hook_z, last token) over clean ICL\n"
                       "prompts; each head's causal indirect effect (CIE: the rise in p(answer) when its mean is patched into\n"
                       "shuffled-label prompts); FV = the top-K heads' means through c_proj (+ c_proj's bias once per layer\n"
                       "among them), added at layer L at the last position of zero-shot prompts and every generated token.\n"
                       "  --heads K          heads in the FV (default 10)\n%s", common_help);
            else
                printf("usage: saesteer task-vector [--model DIR] --dataset F --layer L [--shots N] [--save V.npy] [--json] ...\n"
                       "Task vectors (Hendel et al.): h = mean layer-L residual at the last token over ICL prompts, patched\n"
                       "(replacing) into the last token of zero-shot prompts. Reports zero-shot, patched and ICL accuracy and\n"
                       "the mean log-prob change of the correct token.\n%s", common_help);
            return 1;
        }
#define VAL() do { if (!(v = cli_value(argc, argv, &i))) return -1; } while (0)
#define INT(lo, hi) do { VAL(); if (cli_int(s, v, lo, hi, &x)) return -1; } while (0)
        if (!strcmp(s, "--model")) { VAL(); a->model = v; }
        else if (!strcmp(s, "--dataset")) { VAL(); a->dataset = v; }
        else if (!strcmp(s, "--layer")) { INT(0, 100000); a->o.layer = (int)x; }
        else if (!strcmp(s, "--shots")) { INT(0, 1000); a->o.shots = (int)x; }
        else if (!strcmp(s, "--n-prompts")) { INT(1, 100000); a->o.n_prompts = (int)x; }
        else if (!strcmp(s, "--n-eval")) { INT(1, 100000); a->o.n_eval = (int)x; }
        else if (!strcmp(s, "--examples")) { INT(0, 16); a->o.n_examples = (int)x; }
        else if (!strcmp(s, "--max-new-tokens")) { INT(1, 1024); a->o.max_new = (int)x; }
        else if (!strcmp(s, "--seed")) { INT(0, 1L << 62); a->o.seed = (uint64_t)x; }
        else if (!strcmp(s, "--no-bos")) a->o.bos = 0;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (is_fv && !strcmp(s, "--heads")) { INT(1, 100000); a->o.top_k = (int)x; }
        else if (is_fv && !strcmp(s, "--save-fv")) { VAL(); a->save = v; }
        else if (is_fv && !strcmp(s, "--plot")) { VAL(); a->plot = v; }
        else if (!is_fv && !strcmp(s, "--save")) { VAL(); a->save = v; }
        else { cli_fail(SS_EINPUT, "unknown option '%.64s' (see --help)", s); return -1; }
#undef VAL
#undef INT
    }
    if (!a->dataset) { cli_fail(SS_EINPUT, "--dataset F is required"); return -1; }
    if (a->o.layer < 0) { cli_fail(SS_EINPUT, "--layer L is required"); return -1; }
    return 0;
}

static void add_examples(cJSON *j, const fv_result *r) {
    cJSON *ex = cJSON_AddArrayToObject(j, "examples");
    for (int i = 0; i < r->n_ex; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "input", r->ex[i].input);
        cJSON_AddStringToObject(o, "output", r->ex[i].output);
        cJSON_AddStringToObject(o, "zero_shot", r->ex[i].zero_shot ? r->ex[i].zero_shot : "");
        cJSON_AddStringToObject(o, "steered", r->ex[i].steered ? r->ex[i].steered : "");
        cJSON_AddItemToArray(ex, o);
    }
}

static void print_examples(const fv_result *r, const char *what) {
    for (int i = 0; i < r->n_ex; i++)
        printf("  %s -> %s | zero-shot:%s | %s:%s\n", r->ex[i].input, r->ex[i].output, r->ex[i].zero_shot, what, r->ex[i].steered);
}

/* CIE heat map: layers down, heads across, diverging colours scaled to max |CIE| */
static int heat_map(const char *path, const float *cie, int L, int NH, const int *heads, int K, int layer) {
    char err[SS_ERRLEN], col[8], buf[96];
    double cell = NH > 24 ? 18 : 28, ml = 70, mt = 60, mr = 120, mb = 50;
    double W = ml + NH * cell + mr, H = mt + L * cell + mb;
    if (W < 560) W = 560;   /* room for the title */
    double mx = 0;
    for (int i = 0; i < L * NH; i++) if (cie[i] > mx || -cie[i] > mx) mx = cie[i] > 0 ? cie[i] : -cie[i];
    if (mx <= 0) mx = 1;
    svg s;
    int rc = svg_begin(&s, path, W, H, err);
    if (rc) return cli_fail(rc, "%s", err);
    snprintf(buf, sizeof buf, "Causal indirect effect per head (FV at layer %d, top %d outlined)", layer, K);
    svg_text(&s, W / 2, 24, 14, "middle", "black", 0, buf);
    for (int l = 0; l < L; l++) {
        snprintf(buf, sizeof buf, "%d", l);
        svg_text(&s, ml - 8, mt + l * cell + cell / 2 + 4, 11, "end", "#333", 0, buf);
        for (int h = 0; h < NH; h++) {
            double v = cie[l * NH + h];
            svg_diverging(v / mx, col);
            fprintf(s.f, "<g>");
            svg_rect(&s, ml + h * cell, mt + l * cell, cell, cell, col, "#ffffff");
            snprintf(buf, sizeof buf, "layer %d head %d: CIE %.5f", l, h, v);
            svg_title(&s, buf);
            fprintf(s.f, "</g>\n");
        }
    }
    for (int k = 0; k < K; k++)
        svg_rect(&s, ml + heads[2 * k + 1] * cell + 1, mt + heads[2 * k] * cell + 1, cell - 2, cell - 2, NULL, "black");
    for (int h = 0; h < NH; h++) {
        snprintf(buf, sizeof buf, "%d", h);
        svg_text(&s, ml + h * cell + cell / 2, mt - 6, 11, "middle", "#333", 0, buf);
    }
    svg_text(&s, ml + NH * cell / 2, mt - 22, 12, "middle", "black", 0, "head");
    svg_text(&s, 22, mt + L * cell / 2, 12, "middle", "black", -90, "layer");
    /* colour bar */
    double bx = ml + NH * cell + 30, by = mt, bh = L * cell;
    for (int i = 0; i < 50; i++) {
        svg_diverging(1 - 2.0 * i / 49, col);
        svg_rect(&s, bx, by + bh * i / 50, 16, bh / 50 + 0.5, col, NULL);
    }
    snprintf(buf, sizeof buf, "%+.3g", mx);
    svg_text(&s, bx + 22, by + 10, 10, "start", "#333", 0, buf);
    svg_text(&s, bx + 22, by + bh / 2 + 4, 10, "start", "#333", 0, "0");
    snprintf(buf, sizeof buf, "%+.3g", -mx);
    svg_text(&s, bx + 22, by + bh, 10, "start", "#333", 0, buf);
    svg_text(&s, bx + 8, by + bh + 24, 10, "middle", "#333", 0, "delta p(answer)");
    if ((rc = svg_end(&s, err))) return cli_fail(rc, "%s", err);
    return SS_OK;
}

static int run(int argc, char **argv, int is_fv) {
    fv_args a;
    int p = parse(argc, argv, &a, is_fv);
    if (p) return p > 0 ? 0 : SS_EINPUT;
    char err[SS_ERRLEN];
    fv_dataset d;
    int rc = fv_dataset_load(&d, a.dataset, err);
    if (rc) return cli_fail(rc, "%s", err);
    cli_model cm;
    if ((rc = cli_load_model(&cm, a.model))) { fv_dataset_free(&d); return rc; }
    const gpt2_config *cfg = &cm.model->cfg;
    if (a.o.layer >= cfg->n_layer) {
        rc = cli_fail(SS_EINPUT, "--layer %d out of range: the model has layers 0..%d", a.o.layer, cfg->n_layer - 1);
        goto done;
    }
    if (is_fv && a.o.top_k > cfg->n_layer * cfg->n_head) {
        rc = cli_fail(SS_EINPUT, "--heads %d out of range: the model has %d heads", a.o.top_k, cfg->n_layer * cfg->n_head);
        goto done;
    }
    fv_result r;
    double t0 = ss_now();
    rc = is_fv ? fv_function_vector_run(cm.model, cm.tok, &d, &a.o, &r, err) : fv_task_vector_run(cm.model, cm.tok, &d, &a.o, &r, err);
    if (rc) { rc = cli_fail(rc, "%s", err); goto done; }
    double secs = ss_now() - t0;
    if (a.save) {
        int64_t shape[1] = {cfg->n_embd};
        if ((rc = npy_save(a.save, r.vec, 1, shape, err))) { rc = cli_fail(rc, "%s", err); fv_result_free(&r); goto done; }
    }
    if (is_fv && a.plot && (rc = heat_map(a.plot, r.cie, cfg->n_layer, cfg->n_head, r.heads, r.n_heads, a.o.layer))) {
        fv_result_free(&r);
        goto done;
    }
    char hook[64];
    snprintf(hook, sizeof hook, "blocks.%d.hook_resid_post", a.o.layer);
    float norm = 0;
    for (int j = 0; j < cfg->n_embd; j++) norm += r.vec[j] * r.vec[j];
    norm = sqrtf(norm);
    if (a.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "dataset", a.dataset);
        cJSON_AddNumberToObject(j, "layer", a.o.layer);
        cJSON_AddStringToObject(j, "hook", hook);
        cJSON_AddNumberToObject(j, "shots", a.o.shots);
        cJSON_AddNumberToObject(j, "n_prompts", r.n_prompts);
        cJSON_AddNumberToObject(j, "n_eval", r.n_eval);
        cJSON_AddNumberToObject(j, "seed", (double)a.o.seed);
        if (is_fv) {
            cJSON *hs = cJSON_AddArrayToObject(j, "heads");
            for (int k = 0; k < r.n_heads; k++) {
                int l = r.heads[2 * k], h = r.heads[2 * k + 1];
                cJSON *t = cJSON_CreateArray();
                cJSON_AddItemToArray(t, cJSON_CreateNumber(l));
                cJSON_AddItemToArray(t, cJSON_CreateNumber(h));
                cJSON_AddItemToArray(t, cJSON_CreateNumber(r.cie[l * cfg->n_head + h]));
                cJSON_AddItemToArray(hs, t);
            }
            cJSON_AddNumberToObject(j, "zero_shot_acc", r.zero_shot_acc);
            cJSON_AddNumberToObject(j, "fv_acc", r.patched_acc);
            cJSON_AddNumberToObject(j, "icl_acc", r.icl_acc);
            cJSON_AddNumberToObject(j, "shuffled_acc", r.shuffled_acc);
            cJSON_AddNumberToObject(j, "zero_shot_logprob", r.zero_shot_logprob);
            cJSON_AddNumberToObject(j, "fv_logprob", r.patched_logprob);
            cJSON_AddNumberToObject(j, "icl_logprob", r.icl_logprob);
            cJSON_AddNumberToObject(j, "fv_norm", norm);
            cJSON *cie = cJSON_AddArrayToObject(j, "cie");
            for (int l = 0; l < cfg->n_layer; l++) {
                cJSON *row = cJSON_CreateArray();
                for (int h = 0; h < cfg->n_head; h++) cJSON_AddItemToArray(row, cJSON_CreateNumber(r.cie[l * cfg->n_head + h]));
                cJSON_AddItemToArray(cie, row);
            }
        } else {
            cJSON_AddNumberToObject(j, "zero_shot_acc", r.zero_shot_acc);
            cJSON_AddNumberToObject(j, "patched_acc", r.patched_acc);
            cJSON_AddNumberToObject(j, "icl_acc", r.icl_acc);
            cJSON_AddNumberToObject(j, "shuffled_acc", r.shuffled_acc);
            cJSON_AddNumberToObject(j, "logprob_change", r.patched_logprob - r.zero_shot_logprob);
            cJSON_AddNumberToObject(j, "zero_shot_logprob", r.zero_shot_logprob);
            cJSON_AddNumberToObject(j, "patched_logprob", r.patched_logprob);
            cJSON_AddNumberToObject(j, "icl_logprob", r.icl_logprob);
            cJSON_AddNumberToObject(j, "h_norm", norm);
        }
        add_examples(j, &r);
        cJSON_AddNumberToObject(j, "seconds", secs);
        cli_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("%s at %s, %d-shot, %d ICL prompts, %d queries (%.1f s)\n", is_fv ? "function vector" : "task vector", hook,
               a.o.shots, r.n_prompts, r.n_eval, secs);
        printf("  zero-shot acc %.3f | %s acc %.3f | ICL acc %.3f | shuffled-label acc %.3f\n", r.zero_shot_acc,
               is_fv ? "FV" : "patched", r.patched_acc, r.icl_acc, r.shuffled_acc);
        printf("  mean log p(answer): zero-shot %.3f -> %s %.3f (change %+.3f); ICL %.3f; vector norm %.3f\n",
               r.zero_shot_logprob, is_fv ? "FV" : "patched", r.patched_logprob, r.patched_logprob - r.zero_shot_logprob,
               r.icl_logprob, norm);
        if (is_fv) {
            printf("  top heads (layer, head, CIE):");
            for (int k = 0; k < r.n_heads; k++)
                printf(" (%d,%d,%.4g)", r.heads[2 * k], r.heads[2 * k + 1], r.cie[r.heads[2 * k] * cfg->n_head + r.heads[2 * k + 1]]);
            printf("\n");
        }
        print_examples(&r, is_fv ? "FV" : "patched");
    }
    fv_result_free(&r);
done:
    cli_free_model(&cm);
    fv_dataset_free(&d);
    return rc;
}

int cmd_task_vector(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_fv(int argc, char **argv) { return run(argc, argv, 1); }
