/* ranks_mpi.c - MPI ranks (built with -DSAESTEER_MPI=ON): see ranks.h. */
#include "ranks.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static int g_active = 0, g_rank = 0, g_size = 1;

/* Launched by mpirun (Open MPI, MPICH/Hydra) or srun? Then there are ranks;
   a plain `saesteer scan` never touches MPI. */
static int launched(void) {
    static const char *const VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", NULL};
    for (int i = 0; VARS[i]; i++)
        if (getenv(VARS[i])) return 1;
    return 0;
}

int ranks_init(int *argc, char ***argv, char *err) {
    if (g_active || !launched()) return SS_OK;
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) return ss_fail(err, SS_ERUNTIME, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_active = 1;
    return SS_OK;
}

int ranks_rank(void) { return g_rank; }
int ranks_size(void) { return g_size; }
int ranks_active(void) { return g_active; }

void ranks_finalize(void) {
    if (!g_active) return;
    MPI_Finalize();
    g_active = 0;
}

int ranks_allgather_i64(int64_t mine, int64_t *all, char *err) {
    if (!g_active) { all[0] = mine; return SS_OK; }
    if (MPI_Allgather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ss_fail(err, SS_ERUNTIME, "MPI_Allgather failed");
    return SS_OK;
}

int ranks_min(int key) {
    if (!g_active) return key;
    int out = key;
    MPI_Allreduce(&key, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return out;
}

void ranks_bcast(void *buf, size_t n, int root) {
    if (g_active) MPI_Bcast(buf, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
}

int ranks_any(int flag) {
    if (!g_active) return flag != 0;
    int in = flag != 0, out = in;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

/* Messages: the length (int64), then chunks of at most 1 GiB (MPI counts are int). */
#define CHUNK ((size_t)1 << 30)
enum { TAG_LEN = 17, TAG_DATA = 18 };

static int send_buf(const ss_buf *b, int to, char *err) {
    int64_t n = (int64_t)b->len;
    if (MPI_Send(&n, 1, MPI_INT64_T, to, TAG_LEN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ss_fail(err, SS_ERUNTIME, "MPI_Send to rank %d failed", to);
    for (size_t o = 0; o < b->len; o += CHUNK) {
        size_t k = b->len - o < CHUNK ? b->len - o : CHUNK;
        if (MPI_Send(b->data + o, (int)k, MPI_BYTE, to, TAG_DATA, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ss_fail(err, SS_ERUNTIME, "MPI_Send to rank %d failed", to);
    }
    return SS_OK;
}

static int recv_buf(unsigned char **data, size_t *len, int from, char *err) {
    int64_t n = 0;
    *data = NULL;
    if (MPI_Recv(&n, 1, MPI_INT64_T, from, TAG_LEN, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return ss_fail(err, SS_ERUNTIME, "MPI_Recv from rank %d failed", from);
    unsigned char *d = malloc(n > 0 ? (size_t)n : 1);
    if (!d) return ss_fail(err, SS_ERUNTIME, "out of memory for %lld bytes from rank %d", (long long)n, from);
    for (size_t o = 0; o < (size_t)n; o += CHUNK) {
        size_t k = (size_t)n - o < CHUNK ? (size_t)n - o : CHUNK;
        if (MPI_Recv(d + o, (int)k, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(d);
            return ss_fail(err, SS_ERUNTIME, "MPI_Recv from rank %d failed", from);
        }
    }
    *data = d;
    *len = (size_t)n;
    return SS_OK;
}

int ranks_reduce(ranks_pack_fn pack, ranks_merge_fn merge, void *ctx, int64_t *sent, char *err) {
    *sent = 0;
    if (!g_active || g_size == 1) return SS_OK;
    int rc = SS_OK;
    for (int step = 1; step < g_size; step <<= 1) {
        if (g_rank & step) {   /* lowest set bit: send to the parent, done */
            ss_buf b = {0};
            /* a rank that failed while merging sends an empty message: the parent fails too */
            if (!rc) rc = pack(ctx, &b, err);
            if (rc) ss_buf_free(&b);
            int r2 = send_buf(&b, g_rank - step, err);
            *sent = (int64_t)b.len;
            ss_buf_free(&b);
            return rc ? rc : r2;
        }
        int child = g_rank + step;
        if (child < g_size) {
            unsigned char *d = NULL;
            size_t len = 0;
            int r2 = recv_buf(&d, &len, child, err);
            if (!rc) rc = r2;
            if (!rc && len == 0) rc = ss_fail(err, SS_ERUNTIME, "rank %d failed while merging", child);
            if (!rc) rc = merge(ctx, d, len, err);
            free(d);
        }
    }
    return rc;
}
