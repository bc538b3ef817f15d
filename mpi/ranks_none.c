/* ranks_none.c - one process (a build without SAESTEER_MPI): see ranks.h. */
#include "ranks.h"

int  ranks_init(int *argc, char ***argv, char *err) { return SS_OK; }
int  ranks_rank(void) { return 0; }
int  ranks_size(void) { return 1; }
int  ranks_active(void) { return 0; }
void ranks_finalize(void) {}
int  ranks_allgather_i64(int64_t mine, int64_t *all, char *err) { all[0] = mine; return SS_OK; }
int  ranks_min(int key) { return key; }
void ranks_bcast(void *buf, size_t n, int root) {}
int  ranks_any(int flag) { return flag != 0; }
int  ranks_reduce(ranks_pack_fn pack, ranks_merge_fn merge, void *ctx, int64_t *sent, char *err) {
    *sent = 0;
    return SS_OK;
}
