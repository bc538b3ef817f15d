/* common.c - errors, files, atomic outputs, small utilities. */
#include "common.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int ss_fail(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, SS_ERRLEN, fmt, ap);
        va_end(ap);
        /* keep messages on one line */
        for (char *p = err; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return code;
}

/* ---------------------------------------------------------------- inputs --- */

#define SS_MAX_INPUTS 256
static struct { dev_t dev; ino_t ino; } g_inputs[SS_MAX_INPUTS];
static int g_n_inputs, g_guard_inputs;

void ss_input_guard(int on) { g_guard_inputs = on; }

void ss_input_note(int fd) {
    struct stat st;
    if (!g_guard_inputs) return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    for (int i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == st.st_dev && g_inputs[i].ino == st.st_ino) return;
    if (g_n_inputs < SS_MAX_INPUTS) {
        g_inputs[g_n_inputs].dev = st.st_dev;
        g_inputs[g_n_inputs].ino = st.st_ino;
        g_n_inputs++;
    }
}

void ss_input_forget(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return;
    for (int i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == st.st_dev && g_inputs[i].ino == st.st_ino) g_inputs[i] = g_inputs[--g_n_inputs];
}

static int is_input(const struct stat *st) {
    for (int i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == st->st_dev && g_inputs[i].ino == st->st_ino) return 1;
    return 0;
}

int ss_open_input(const char *path, int *fd_out, size_t *size, char *err) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        close(fd);
        return ss_fail(err, SS_EINPUT, "%s: not a regular file%s", path, dir ? " (a directory)" : "");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    ss_input_note(fd);
    *fd_out = fd;
    if (size) *size = (size_t)st.st_size;
    return SS_OK;
}

int ss_read_file(const char *path, char **buf, size_t *len, char *err) {
    *buf = NULL;
    if (len) *len = 0;
    int fd;
    size_t n;
    int rc = ss_open_input(path, &fd, &n, err);
    if (rc) return rc;
    char *b = n < SIZE_MAX ? malloc(n + 1) : NULL;
    if (!b) { close(fd); return ss_fail(err, SS_ERUNTIME, "%s: out of memory (%zu bytes)", path, n); }
    size_t got = 0;
    while (got < n) {   /* the size fstat gave; a file that shrinks meanwhile is an error */
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { int e = errno; free(b); close(fd); return ss_fail(err, SS_ERUNTIME, "%s: read error: %s", path, strerror(e)); }
        if (r == 0) { free(b); close(fd); return ss_fail(err, SS_EINPUT, "%s: file shrank while being read", path); }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    if (len) *len = n;
    return SS_OK;
}

/* --------------------------------------------------------------- outputs --- */

/* Live temporaries, for ss_out_unlink_temps in a signal handler: fixed slots,
   a slot's name is written before it is marked used. */
#define SS_MAX_LIVE 16
static struct {
    volatile sig_atomic_t used;     /* 1 open, 2 staged (finished, waiting for its rename) */
    char tmp[4096], path[4096];
} g_live[SS_MAX_LIVE];
static int g_staging;

void ss_out_unlink_temps(void) {
    for (int i = 0; i < SS_MAX_LIVE; i++)
        if (g_live[i].used) unlink(g_live[i].tmp);
}

static int live_add(const ss_outfile *o) {
    for (int i = 0; i < SS_MAX_LIVE; i++)
        if (!g_live[i].used) {
            memcpy(g_live[i].tmp, o->tmp, sizeof g_live[i].tmp);
            memcpy(g_live[i].path, o->path, sizeof g_live[i].path);
            g_live[i].used = 1;
            return i;
        }
    return -1;   /* more than SS_MAX_LIVE at once: still atomic, just not cleaned up by a signal */
}
static void live_del(ss_outfile *o) {
    if (o->slot >= 0 && o->slot < SS_MAX_LIVE) g_live[o->slot].used = 0;
    o->slot = -1;
}

/* Follow symlinks in the last component (up to 40): the file to replace. */
static int resolve_output(const char *path, char *res, size_t n) {
    char cur[4096], tgt[4096];
    if (strlen(path) >= sizeof cur) return ENAMETOOLONG;
    strcpy(cur, path);
    for (int hop = 0; hop < 40; hop++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
            if (strlen(cur) >= n) return ENAMETOOLONG;
            strcpy(res, cur);
            return 0;
        }
        ssize_t k = readlink(cur, tgt, sizeof tgt - 1);
        if (k < 0) return errno;
        tgt[k] = '\0';
        if (tgt[0] == '/') { strcpy(cur, tgt); continue; }
        char *slash = strrchr(cur, '/');
        size_t dl = slash ? (size_t)(slash - cur) + 1 : 0;
        if (dl + (size_t)k >= sizeof cur) return ENAMETOOLONG;
        memcpy(cur + dl, tgt, (size_t)k + 1);
    }
    return ELOOP;
}

/* What ss_out_open will find at path: 0 ok (st_out filled if it exists, *exists set). */
static int out_inspect(const char *path, char *real, size_t rn, struct stat *st, int *exists, char *err) {
    *exists = stat(path, st) == 0;   /* follows symlinks, /proc's magic ones too (/dev/stdout -> pipe:[N]) */
    int e = 0;
    if (*exists && !S_ISREG(st->st_mode)) {
        if (strlen(path) >= rn) e = ENAMETOOLONG;
        else strcpy(real, path);   /* written in place, under the name given */
    } else if (*exists) {
        char *r = realpath(path, NULL);   /* the regular file a symlink points to */
        if (!r) e = errno;
        else if (strlen(r) >= rn) e = ENAMETOOLONG;
        else strcpy(real, r);
        free(r);
    } else {
        e = resolve_output(path, real, rn);   /* missing, or a dangling symlink: the file it names */
    }
    if (e) return ss_fail(err, SS_EINPUT, "%s: cannot resolve output path: %s", path, strerror(e));
    if (*exists) {
        if (S_ISDIR(st->st_mode)) return ss_fail(err, SS_EINPUT, "%s: is a directory (give a file name)", path);
        if (S_ISSOCK(st->st_mode) || S_ISBLK(st->st_mode))
            return ss_fail(err, SS_EINPUT, "%s: is a %s; outputs go to regular files, character devices or FIFOs",
                           path, S_ISSOCK(st->st_mode) ? "socket" : "block device");
        if (S_ISREG(st->st_mode) && is_input(st))
            return ss_fail(err, SS_EINPUT, "%s: is also an input of this command; write the output elsewhere", path);
        return SS_OK;
    }
    /* the directory must exist */
    char dir[4096];
    strcpy(dir, real);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    struct stat ds;
    if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode))
        return ss_fail(err, SS_EINPUT, "%s: cannot create output: directory %s does not exist", path, dir);
    return SS_OK;
}

int ss_out_check(const char *path, char *err) {
    char real[4096];
    struct stat st;
    int exists;
    if (!path || !*path) return ss_fail(err, SS_EINPUT, "output path is empty");
    return out_inspect(path, real, sizeof real, &st, &exists, err);
}

int ss_out_open(ss_outfile *o, const char *path, char *err) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (!path || !*path) return ss_fail(err, SS_EINPUT, "output path is empty");
    struct stat st;
    int exists, rc;
    if ((rc = out_inspect(path, o->path, sizeof o->path, &st, &exists, err))) return rc;
    if (exists && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        /* written in place: nothing to rename, nothing to remove on failure */
        int fd = open(o->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return ss_fail(err, SS_ERUNTIME, "%s: cannot open: %s", path, strerror(errno));
        if (!(o->fp = fdopen(fd, "wb"))) { close(fd); return ss_fail(err, SS_ERUNTIME, "%s: cannot open", path); }
        o->direct = 1;
        return SS_OK;
    }
    /* the temporary: <dir>/<name, cut to 200 bytes>.tmp.PID.XXXXXX, within NAME_MAX */
    const char *base = strrchr(o->path, '/');
    size_t dl = base ? (size_t)(base - o->path) + 1 : 0;
    base = base ? base + 1 : o->path;
    int bl = (int)strlen(base) > 200 ? 200 : (int)strlen(base);
    if (dl + (size_t)bl + 40 >= sizeof o->tmp) return ss_fail(err, SS_EINPUT, "%s: output path too long", path);
    snprintf(o->tmp, sizeof o->tmp, "%.*s%.*s.tmp.%ld.XXXXXX", (int)dl, o->path, bl, base, (long)getpid());
    int fd = mkostemp(o->tmp, O_CLOEXEC);
    if (fd >= 0) {
        /* mkstemp makes 0600: a replaced file keeps its mode, a new one gets 0666 & ~umask */
        mode_t um = umask(0);
        umask(um);
        fchmod(fd, exists ? (st.st_mode & 07777) : (0666 & ~um));
        o->slot = live_add(o);
    }
    if (fd < 0) {
        int e = errno;
        o->tmp[0] = '\0';
        /* a directory that is not there is the caller's mistake; a full or
           read-only disk is not */
        int bad_path = e == ENOENT || e == ENOTDIR || e == EISDIR || e == ENAMETOOLONG;
        return ss_fail(err, bad_path ? SS_EINPUT : SS_ERUNTIME, "%s: cannot create temporary output: %s",
                       path, strerror(e));
    }
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        close(fd); unlink(o->tmp); o->tmp[0] = '\0'; live_del(o);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot open temporary output", path);
    }
    return SS_OK;
}

int ss_out_commit(ss_outfile *o, char *err) {
    FILE *f = o->fp;
    o->fp = NULL;
    int bad = 0, e = 0;
    if (f) {
        if (fflush(f) != 0 || ferror(f)) { bad = 1; e = errno; }
        if (!o->direct && fsync(fileno(f)) != 0 && errno != EINVAL) { bad = 1; e = errno; }
        if (fclose(f) != 0 && !bad) { bad = 1; e = errno; }
    }
    if (o->direct) {
        o->direct = 0;
        return bad ? ss_fail(err, SS_ERUNTIME, "%s: write failed: %s", o->path, strerror(e)) : SS_OK;
    }
    if (bad) {
        unlink(o->tmp); o->tmp[0] = '\0'; live_del(o);
        return ss_fail(err, SS_ERUNTIME, "%s: write failed (%s)", o->path, e ? strerror(e) : "disk full?");
    }
    if (g_staging && o->slot >= 0) {   /* renamed by ss_out_stage_end */
        g_live[o->slot].used = 2;
        o->slot = -1;
        o->tmp[0] = '\0';
        return SS_OK;
    }
    if (rename(o->tmp, o->path) != 0) {
        e = errno;
        unlink(o->tmp); o->tmp[0] = '\0'; live_del(o);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot rename output into place: %s", o->path, strerror(e));
    }
    o->tmp[0] = '\0';
    live_del(o);
    return SS_OK;
}

void ss_out_abort(ss_outfile *o) {
    if (o->fp) { fclose((FILE *)o->fp); o->fp = NULL; }
    if (o->tmp[0]) { unlink(o->tmp); o->tmp[0] = '\0'; }
    if (o->slot >= 0) live_del(o);
    o->direct = 0;
}

void ss_out_stage_begin(void) { g_staging = 1; }

int ss_out_stage_end(int commit, char *err) {
    g_staging = 0;
    int rc = SS_OK;
    for (int i = 0; i < SS_MAX_LIVE; i++) {
        if (g_live[i].used != 2) continue;
        if (commit && rc == SS_OK && rename(g_live[i].tmp, g_live[i].path) != 0)
            rc = ss_fail(err, SS_ERUNTIME, "%s: cannot rename output into place: %s", g_live[i].path, strerror(errno));
        if (!commit || rc) unlink(g_live[i].tmp);
        g_live[i].used = 0;
    }
    return rc;
}

/* ----------------------------------------------------------------- BLAS --- */

/* OpenBLAS (Debian's pthread build) takes a 128 MiB work buffer per thread
   with mmap and, when mmap fails, retries forever: under `ulimit -v` a run
   hangs in its first sgemm. With a finite address-space limit, use as many
   threads as leave room, and take the calling thread's buffer now (OpenBLAS
   keeps it for later calls) while the address space is still free; if even
   one buffer does not fit, say so instead of hanging later. */
#define SS_BLAS_BUFFER ((size_t)136 << 20)   /* 128 MiB + OpenBLAS's own alignment slack */
extern void openblas_set_num_threads(int);
int ss_blas_fit_limits(char *err) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return SS_OK;
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%ld", &pages) != 1) pages = 0; fclose(f); }
    double used = (double)pages * (double)sysconf(_SC_PAGESIZE);
    double left = (double)rl.rlim_cur - used - (double)(256 << 20);   /* room for the program's own data */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long n = (long)(left / (2.0 * (double)SS_BLAS_BUFFER));            /* a buffer and a stack per thread, and slack */
    if (n > ncpu) n = ncpu;
    if (n < 1) n = 1;
    openblas_set_num_threads((int)n);
    void *probe = mmap(NULL, SS_BLAS_BUFFER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED)
        return ss_fail(err, SS_ERUNTIME, "the address-space limit (ulimit -v %llu KiB) leaves no room for OpenBLAS's "
                       "128 MiB work buffer", (unsigned long long)(rl.rlim_cur >> 10));
    munmap(probe, SS_BLAS_BUFFER);
    float a = 1, b = 1, c = 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return SS_OK;
}

/* ------------------------------------------------------------------ JSON --- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int ss_json_dup_key(const cJSON *j, char *dup, size_t n) {
    if (!j) return 0;
    if (cJSON_IsObject(j)) {
        size_t k = 0;
        for (const cJSON *c = j->child; c; c = c->next) k++;
        const char **names = k > 1 ? malloc(k * sizeof *names) : NULL;
        if (names) {   /* sorted, so a 50k-entry vocab.json costs n log n */
            size_t m = 0;
            for (const cJSON *c = j->child; c; c = c->next) names[m++] = c->string ? c->string : "";
            qsort(names, m, sizeof *names, cmp_str);
            for (size_t i = 1; i < m; i++)
                if (!strcmp(names[i - 1], names[i])) {
                    snprintf(dup, n, "%s", names[i]);
                    free(names);
                    return 1;
                }
            free(names);
        }
    }
    for (const cJSON *c = j->child; c; c = c->next)
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && ss_json_dup_key(c, dup, n)) return 1;
    return 0;
}

void *ss_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *ss_malloc2(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    size_t b = n * size;
    return malloc(b ? b : 1);
}

void *ss_malloc_big(size_t n, size_t size) {
    const size_t huge = (size_t)2 << 20;
    if (size && n > SIZE_MAX / size) return NULL;
    size_t b = n * size;
    if (b < huge) return malloc(b ? b : 1);
    if (b > SIZE_MAX - huge) return NULL;
    b = (b + huge - 1) & ~(huge - 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, b) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, b, MADV_HUGEPAGE);
#endif
    return p;
}

double ss_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ss_utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; if (cp < 2) return 0; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return 0;
        if (len - i <= n) return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        i += n + 1;
    }
    return 1;
}

/* ---- sha256 (FIPS 180-4), used to fingerprint files in experiment records ---- */
typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t nbuf; } sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
        uint32_t mj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = S0 + mj;
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_update(sha256_ctx *c, const unsigned char *p, size_t n) {
    c->len += n;
    while (n > 0) {
        size_t k = 64 - c->nbuf;
        if (k > n) k = n;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k; p += k; n -= k;
        if (c->nbuf == 64) { sha256_block(c, c->buf); c->nbuf = 0; }
    }
}

void ss_sha256_init(ss_sha256 *h) {
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    _Static_assert(sizeof(ss_sha256) >= sizeof(sha256_ctx), "ss_sha256 too small");
    sha256_ctx *c = (sha256_ctx *)h;
    memset(c, 0, sizeof *c);
    memcpy(c->h, H0, sizeof H0);
}

void ss_sha256_update(ss_sha256 *h, const void *p, size_t n) { sha256_update((sha256_ctx *)h, p, n); }

void ss_sha256_hex(ss_sha256 *h, char hex[65]) {
    sha256_ctx *c = (sha256_ctx *)h;
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0;
    sha256_update(c, &pad, 1);
    while (c->nbuf != 56) sha256_update(c, &zero, 1);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

int ss_sha256_file(const char *path, char hex[65], char *err) {
    ss_sha256 c;
    ss_sha256_init(&c);
    int fd, rc = ss_open_input(path, &fd, NULL, err);   /* regular files only */
    if (rc) return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) { close(fd); return ss_fail(err, SS_ERUNTIME, "%s: cannot open", path); }
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) ss_sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return ss_fail(err, SS_ERUNTIME, "%s: read error", path);
    ss_sha256_hex(&c, hex);
    return SS_OK;
}

/* ---- growable byte buffer ---- */
int ss_buf_put(ss_buf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *nd = realloc(b->data, cap);
        if (!nd) return -1;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void ss_buf_free(ss_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- exact sums of non-negative floats ---- */
void ss_xsum_merge(uint64_t *a, const uint64_t *b) {
    uint64_t flag = (a[SS_XSUM_WORDS - 1] | b[SS_XSUM_WORDS - 1]) & SS_XSUM_INF;
    unsigned __int128 c = 0;
    for (int k = 0; k < SS_XSUM_WORDS; k++) {
        uint64_t x = a[k], y = b[k];
        if (k == SS_XSUM_WORDS - 1) { x &= ~SS_XSUM_INF; y &= ~SS_XSUM_INF; }
        c += (unsigned __int128)x + y;
        a[k] = (uint64_t)c;
        c >>= 64;
    }
    a[SS_XSUM_WORDS - 1] |= flag;
}

double ss_xsum_value(const uint64_t *w) {
    if (w[SS_XSUM_WORDS - 1] & SS_XSUM_INF) return INFINITY;
    double d = 0;
    for (int k = SS_XSUM_WORDS - 1; k >= 0; k--) d += ldexp((double)w[k], 64 * k - 149);
    return d;
}

/* ---- threads and ordered sums for corpus work ---- */
int ss_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int ss_blas_single_begin(void) {
    int prev = openblas_get_num_threads();
    const char *e = getenv("SAESTEER_BLAS_THREADS");   /* measurement knob (docs/SCALING.md) */
    int n = e && atoi(e) > 0 ? atoi(e) : 1;
    openblas_set_num_threads(n);
    return prev;
}

void ss_blas_single_end(int prev) { openblas_set_num_threads(prev > 0 ? prev : 1); }

static int by_key(const void *a, const void *b, void *ctx) {
    const int64_t *key = ctx;
    int64_t x = key[*(const int64_t *)a], y = key[*(const int64_t *)b];
    return x < y ? -1 : x > y;
}

double ss_sum_in_order(const double *x, const int64_t *key, int64_t n, int stride) {
    int sorted = 1;
    for (int64_t i = 1; i < n && sorted; i++) sorted = key[i - 1] < key[i];
    double s = 0;
    if (sorted) {
        for (int64_t i = 0; i < n; i++) s += x[(size_t)i * stride];
        return s;
    }
    int64_t *ord = malloc((size_t)n * sizeof *ord);
    if (!ord) {   /* no memory: an O(n^2) walk in key order */
        int64_t last = INT64_MIN;
        for (int64_t c = 0; c < n; c++) {
            int64_t best = -1;
            for (int64_t i = 0; i < n; i++)
                if (key[i] > last && (best < 0 || key[i] < key[best])) best = i;
            s += x[(size_t)best * stride];
            last = key[best];
        }
        return s;
    }
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    qsort_r(ord, (size_t)n, sizeof *ord, by_key, (void *)key);
    for (int64_t i = 0; i < n; i++) s += x[(size_t)ord[i] * stride];
    free(ord);
    return s;
}
