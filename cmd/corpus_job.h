/* corpus_job.h - scan, sae-eval and perplexity over many processes.
 *
 * A corpus command runs as one process, as one of N MPI ranks (mpirun -n N;
 * needs -DSAESTEER_MPI=ON) or as shard i of N (--shard i/N, no MPI: job
 * arrays). The text file is cut into N byte ranges at safe cuts and every
 * process takes the windows that start in its range (lib/perplexity.h,
 * "corpus parts"); the partial results merge exactly (scan_pack/scan_merge,
 * sae_eval_pack/sae_eval_merge, ss_ppl_pack/ss_ppl_merge), so the output is
 * the one a single process writes, byte for byte, apart from the line that
 * records how it was made ("ranks", "seconds", "tokens_per_s").
 *
 * Failures under MPI: cli_fail's message is kept, not printed; at the next
 * agreement point every rank learns that one failed, and at the end rank 0
 * prints one line naming the lowest failing rank; every rank exits with its
 * code. Part files: see docs/SCALING.md ("Part files").
 */
#ifndef SS_CORPUS_JOB_H
#define SS_CORPUS_JOB_H

#include <cjson/cJSON.h>

#include "gpt2.h"
#include "perplexity.h"
#include "ranks.h"
#include "sae.h"
#include "tokenizer.h"

#define CJOB_PART_VERSION 1

typedef struct {
    int rank, size;            /* MPI ranks (one process: 0 of 1) */
    int shard, shards;         /* --shard i/N (shards 0: none) */
    int parts, me;             /* the file is cut into `parts`; ours is `me` */
    ss_part part;              /* our windows (global token indices) */
    int64_t byte_start, byte_end, file_bytes;
    double t0;
} cjob;

/* main(), around scan / sae-eval / perplexity: start MPI when launched as
   ranks; at the end, agree on the exit code and print the failing rank's line. */
int  cjob_start(int *argc, char ***argv);
int  cjob_finish(int rc);
/* Agreement point (a collective under MPI): rc if this rank failed,
   SS_ERUNTIME if another did, else 0. */
int  cjob_agree(int rc);
/* --shard i/N */
int  cjob_shard_arg(const char *v, int *shard, int *shards);
/* Which windows are ours: cut the file, count the tokens of the ranges before
   ours and of ours (under MPI each rank counts its own range and the counts
   are exchanged; a shard counts the ranges before its own itself). Prints
   its error; includes an agreement point. */
int  cjob_setup(cjob *j, int shard, int shards, const tokenizer *tok, const char *path);
/* Tree-merge the ranks' packed results into rank 0 (includes agreement
   points). *sent: bytes this rank sent. */
int  cjob_reduce(cjob *j, ranks_pack_fn pack, ranks_merge_fn merge, void *ctx, int64_t *sent);
/* Processes that made the output: ranks or shards (1 for one process). */
int  cjob_nproc(const cjob *j);

/* sha256 over the command, the model's weights and config, the dictionary's
   tensors and metadata (d may be NULL) and an options string: parts with the
   same fingerprint were made by the same computation. */
void cjob_fingerprint(const char *cmd, const gpt2_model *m, const sae_dict *d, const char *opts, char hex[65]);

/* Part files: "saesteer-part 1\n", one line of JSON (the header), the payload.
   cjob_write_part adds the job's fields (shard, byte and token ranges, ...)
   to hdr and writes atomically. cjob_read_part checks the framing and the
   payload's sha256. Both print their errors. */
int  cjob_write_part(const cjob *j, const char *path, cJSON *hdr, const ss_buf *payload);
int  cjob_read_part(const char *path, cJSON **hdr, unsigned char **payload, size_t *len);
/* Check parts (headers, any order) belong together: same command, version,
   fingerprint, text size and shard count; shards 0..N-1 once each; byte and
   token ranges tile the file. order[k] = index of shard k. Prints its error. */
int  cjob_check_parts(cJSON **hdr, const char **paths, int n, int *order);

/* Reports shared by the commands and `saesteer merge` (cmd_scan.c, cmd_sae.c). */
int  ppl_report(const ss_ppl *p, const char *text_file, int json, double secs, int nproc);
int  sae_eval_report(const sae_eval *ev, const sae_dict *d, const gpt2_model *m, const char *text_file, int ctx, int bos,
                     int json, int nproc);

#endif
