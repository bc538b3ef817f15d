/* common.h - error convention shared by lib/, sae/ and cmd/.
 *
 * Library functions never print and never exit. A failing function writes a
 * one-line message into a caller-supplied buffer `err` (SS_ERRLEN bytes) that
 * names the file and the field at fault, and returns a status code that the
 * CLI turns into its exit code:
 *   SS_OK (0)      success
 *   SS_ERUNTIME (1) runtime failure (out of memory, I/O error, ...)
 *   SS_EINPUT (2)  bad input: malformed file, wrong shape, bad flag value
 */
#ifndef SS_COMMON_H
#define SS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define SS_ERRLEN 512

enum { SS_OK = 0, SS_ERUNTIME = 1, SS_EINPUT = 2 };

/* Format a message into err (may be NULL) and return code. */
int ss_fail(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Open a file input: O_NONBLOCK (a FIFO does not hang the open), then fstat:
 * anything but a regular file is refused (SS_EINPUT, "not a regular file").
 * The descriptor is blocking again on return; *size is the file's size. With
 * ss_input_guard(1) (the CLI turns it on), the file is remembered as an input
 * of this run and ss_out_open refuses to replace it. */
int ss_open_input(const char *path, int *fd, size_t *size, char *err);
void ss_input_guard(int on);
/* Remember fd's file as an input / forget path's file (`label` rewrites its own input). */
void ss_input_note(int fd);
void ss_input_forget(const char *path);

/* Read a whole file into a NUL-terminated heap buffer. *len excludes the NUL.
 * Regular files only (ss_open_input). */
int ss_read_file(const char *path, char **buf, size_t *len, char *err);

/* Atomic output: open a temporary file beside `path`; ss_commit renames it into
 * place, ss_abort removes it. An interrupted run never leaves a partial file and
 * never clobbers an existing one.
 *   - a symlink is followed: the temporary goes beside its final target, which
 *     is what gets replaced (the link stays); an existing file keeps its mode
 *   - a character device or FIFO (/dev/null, /dev/stdout, a pipe) is written
 *     directly, nothing to rename; sockets and block devices are refused
 *   - a directory, a missing directory, or a file that is an input of this run
 *     (same st_dev/st_ino) are refused with SS_EINPUT before anything is written
 * Between ss_out_stage_begin() and ss_out_stage_end(), ss_out_commit only
 * finishes (flush + fsync) the temporary; ss_out_stage_end(1, err) renames all
 * of them, ss_out_stage_end(0, NULL) removes them: a command with several
 * outputs replaces none of them unless every one was written. */
typedef struct {
    char path[4096];     /* final destination (symlinks resolved) */
    char tmp[4096];      /* temporary file in the same directory ("" if direct) */
    void *fp;            /* FILE* open for writing */
    int slot;            /* in the table of live temporaries (signal cleanup), -1 if none */
    int direct;          /* a device or FIFO written in place */
} ss_outfile;
int ss_out_open(ss_outfile *o, const char *path, char *err);
int ss_out_commit(ss_outfile *o, char *err);
void ss_out_abort(ss_outfile *o);
void ss_out_stage_begin(void);
int ss_out_stage_end(int commit, char *err);
/* Check now that ss_out_open(path) will be able to proceed (the directory
 * exists, path is not a directory nor an input already opened): for commands
 * that write only after long work. */
int ss_out_check(const char *path, char *err);
/* Remove every temporary output still open or staged. Async-signal-safe: for
 * SIGINT/SIGTERM/SIGBUS handlers. */
void ss_out_unlink_temps(void);

/* Under a finite RLIMIT_AS, start OpenBLAS with a thread count whose work
   buffers fit and reserve the caller's buffer now; SS_ERUNTIME if not even
   one fits (OpenBLAS would otherwise retry its mmap forever). */
int ss_blas_fit_limits(char *err);

/* Duplicate keys anywhere in a parsed JSON object (cJSON keeps both and
 * answers lookups with the first): 1 and the key's name in dup if any. */
struct cJSON;
int ss_json_dup_key(const struct cJSON *j, char *dup, size_t n);

/* For element-wise loops written to vectorise: on x86-64 GCC also builds an
   AVX2+FMA (x86-64-v3) copy of the function and picks one when the program
   loads. The default build targets x86-64-v2 (valgrind has no AVX-512). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SS_VECTOR __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SS_VECTOR
#endif

/* Checked allocation helpers: return NULL on overflow or failure. */
void *ss_calloc(size_t n, size_t size);
void *ss_malloc2(size_t n, size_t size);
/* For buffers of megabytes (KV caches, converted weights): 2 MiB-aligned and
   marked for transparent huge pages, so first touches cost one fault per
   2 MiB instead of one per 4 KiB (on VMs with shadow paging each fault is
   several microseconds). Uninitialised; release with free(). */
void *ss_malloc_big(size_t n, size_t size);

/* Threads for corpus work: the CPUs this process may run on
   (sched_getaffinity; under mpirun with binding, the rank's cores). */
int ss_cpu_count(void);
/* BLAS on one thread until ss_blas_single_end(the returned value) restores
   the previous count. Corpus commands (scan, sae-eval, perplexity) compute
   with one BLAS thread per worker always: OpenBLAS's results can differ in
   the last bits with its thread count (it splits a product differently), so
   this is what makes a window's numbers the same in every process.
   $SAESTEER_BLAS_THREADS=N overrides the 1 (for measuring BLAS threads
   against windows in parallel; results may then differ in the last bits). */
int  ss_blas_single_begin(void);
void ss_blas_single_end(int prev);
/* sum of x[0..n) in the order of key (ascending; keys distinct), in double;
   `stride` doubles per element of x (the first is summed). */
double ss_sum_in_order(const double *x, const int64_t *key, int64_t n, int stride);

/* Monotonic wall clock in seconds. */
double ss_now(void);

/* UTF-8 validity check of a byte range. Returns 1 if valid. */
int ss_utf8_valid(const char *s, size_t len);

/* sha256 of a file as 64 hex chars + NUL. */
int ss_sha256_file(const char *path, char hex[65], char *err);
/* sha256 of a stream of bytes: init, update..., hex (which ends it). */
typedef struct { uint64_t opaque[14]; } ss_sha256;
void ss_sha256_init(ss_sha256 *h);
void ss_sha256_update(ss_sha256 *h, const void *p, size_t n);
void ss_sha256_hex(ss_sha256 *h, char hex[65]);

/* Growable byte buffer (zero-initialise; ss_buf_put returns -1 when out of memory). */
typedef struct { unsigned char *data; size_t len, cap; } ss_buf;
int ss_buf_put(ss_buf *b, const void *p, size_t n);
void ss_buf_free(ss_buf *b);

/* Exact sums of non-negative floats, so that partial sums merge to the same
   bits in any order: a float v = m * 2^(e-150) is added as the integer m
   shifted to bit e-1 of a 384-bit fixed-point number (bit 0 = 2^-149; 277
   bits cover every float, 64 more any count of additions). The top bit of
   the last word marks +inf. ss_xsum_value rounds the integer to a double
   the same way every time. */
#define SS_XSUM_WORDS 6
#define SS_XSUM_INF (1ULL << 63)
static inline void ss_xsum_add(uint64_t *w, float v) {   /* v >= 0 */
    union { float f; uint32_t u; } b = {v};
    uint32_t e = (b.u >> 23) & 0xff, m = b.u & 0x7fffff;
    if (e == 0xff) { w[SS_XSUM_WORDS - 1] |= SS_XSUM_INF; return; }
    if (e) m |= 0x800000; else e = 1;
    unsigned p = e - 1, k = p >> 6, s = p & 63;
    unsigned __int128 add = (unsigned __int128)m << s;
    unsigned __int128 lo = (unsigned __int128)w[k] + (uint64_t)add;
    w[k] = (uint64_t)lo;
    unsigned __int128 c = (lo >> 64) + (uint64_t)(add >> 64);
    for (unsigned j = k + 1; c && j < SS_XSUM_WORDS; j++) {
        c += w[j];
        w[j] = (uint64_t)c;
        c >>= 64;
    }
}
void ss_xsum_merge(uint64_t *a, const uint64_t *b);   /* a += b */
double ss_xsum_value(const uint64_t *w);

#endif
