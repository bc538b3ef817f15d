/* ranks.h - the processes of one corpus job, as the CLI sees them.
 *
 * With -DSAESTEER_MPI=ON and started by mpirun/srun (the launcher's
 * environment says so), these are MPI ranks (ranks_mpi.c); otherwise one
 * process (ranks_none.c, the same calls as no-ops). Only this directory
 * includes <mpi.h>: cmd/ stays parsing and formatting, sae/ and lib/ the
 * computation.
 */
#ifndef SS_RANKS_H
#define SS_RANKS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* Start MPI if this process was launched as one of several ranks (and the
   build has MPI). Safe to call more than once. Returns SS_OK or a failure. */
int  ranks_init(int *argc, char ***argv, char *err);
int  ranks_rank(void);
int  ranks_size(void);
/* 1 if ranks_init started MPI (even for a single rank). */
int  ranks_active(void);
void ranks_finalize(void);

/* Every rank passes in its value; all[r] is rank r's value afterwards. */
int  ranks_allgather_i64(int64_t mine, int64_t *all, char *err);
/* Lowest rank with key < size (each passes its own key: its rank if it has
   something to report, else ranks_size()); returns that rank or size. */
int  ranks_min(int key);
/* Broadcast n bytes from rank root. */
void ranks_bcast(void *buf, size_t n, int root);
/* Logical OR of flag over all ranks. */
int  ranks_any(int flag);

/* Tree merge of packed partial results (binomial tree, log2(size) rounds):
   in round k a rank whose bit k is its lowest set bit sends pack() of its
   state to rank - 2^k, which calls merge() with it. A rank only ever merges
   parts whose windows come after its own, in rank order, so merges that
   must follow window order do. Afterwards rank 0 holds every rank's
   contribution. *sent: bytes this rank sent (0 on rank 0). */
typedef int (*ranks_pack_fn)(void *ctx, ss_buf *b, char *err);
typedef int (*ranks_merge_fn)(void *ctx, const void *data, size_t len, char *err);
int  ranks_reduce(ranks_pack_fn pack, ranks_merge_fn merge, void *ctx, int64_t *sent, char *err);

#endif
