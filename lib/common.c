/* common.c - errors, files, atomic outputs, small utilities. */
#include "common.h"

#include <cblas.h>
#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
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

int ss_read_file(const char *path, char **buf, size_t *len, char *err) {
    *buf = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return ss_fail(err, SS_EINPUT, "%s: cannot seek", path); }
    long n = ftell(f);
    if (n < 0) { fclose(f); return ss_fail(err, SS_EINPUT, "%s: not a regular file", path); }
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (!b) { fclose(f); return ss_fail(err, SS_ERUNTIME, "%s: out of memory (%ld bytes)", path, n); }
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b); fclose(f);
        return ss_fail(err, SS_ERUNTIME, "%s: read error", path);
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    if (len) *len = (size_t)n;
    return SS_OK;
}

int ss_out_open(ss_outfile *o, const char *path, char *err) {
    memset(o, 0, sizeof *o);
    if (strlen(path) + 32 >= sizeof o->path)
        return ss_fail(err, SS_EINPUT, "%s: output path too long", path);
    strcpy(o->path, path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(o->tmp);
    if (fd >= 0) { /* mkstemp makes 0600; outputs get the usual 0666 & ~umask */
        mode_t um = umask(0);
        umask(um);
        fchmod(fd, 0666 & ~um);
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
        close(fd); unlink(o->tmp); o->tmp[0] = '\0';
        return ss_fail(err, SS_ERUNTIME, "%s: cannot open temporary output", path);
    }
    return SS_OK;
}

int ss_out_commit(ss_outfile *o, char *err) {
    FILE *f = o->fp;
    o->fp = NULL;
    int bad = 0;
    if (f) {
        if (fflush(f) != 0 || ferror(f)) bad = 1;
        if (fsync(fileno(f)) != 0 && errno != EINVAL) bad = 1;
        if (fclose(f) != 0) bad = 1;
    }
    if (bad) {
        unlink(o->tmp); o->tmp[0] = '\0';
        return ss_fail(err, SS_ERUNTIME, "%s: write failed (disk full?)", o->path);
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        unlink(o->tmp); o->tmp[0] = '\0';
        return ss_fail(err, SS_ERUNTIME, "%s: cannot rename output into place: %s", o->path, strerror(e));
    }
    o->tmp[0] = '\0';
    return SS_OK;
}

void ss_out_abort(ss_outfile *o) {
    if (o->fp) { fclose((FILE *)o->fp); o->fp = NULL; }
    if (o->tmp[0]) { unlink(o->tmp); o->tmp[0] = '\0'; }
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
    FILE *f = fopen(path, "rb");
    if (!f) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
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
