/* fuzz_util.h - shared helpers for the libFuzzer targets in tests/fuzz/.
 *
 * The loaders under test take paths, not buffers, so each input is written to
 * a file first: an anonymous memfd (reached as /proc/self/fd/N, no disk I/O)
 * for single-file loaders, or a scratch directory under /dev/shm for loaders
 * that read a folder (SAELens). Nothing in lib/ or sae/ is changed for this.
 *
 * fz_check_err() asserts the library's error contract on every failure: the
 * status is SS_ERUNTIME or SS_EINPUT, the message is non-empty and one line.
 */
#ifndef SS_FUZZ_UTIL_H
#define SS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define FZ_MAX_FILES 4

/* Path of memfd number `slot`, holding exactly data[0..size). */
static inline const char *fz_memfile(int slot, const uint8_t *data, size_t size) {
    static int fds[FZ_MAX_FILES] = {-1, -1, -1, -1};
    static char paths[FZ_MAX_FILES][64];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("saesteer-fuzz", 0);
        if (fds[slot] < 0) { perror("memfd_create"); abort(); }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = pwrite(fds[slot], data + off, size - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    return paths[slot];
}

static char fz_scratch[256];

static inline void fz_scratch_cleanup(void) {
    if (!fz_scratch[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_scratch);
    if (system(cmd) != 0) { /* best effort */ }
}

/* A private scratch directory, created once, removed at exit. */
static inline const char *fz_dir(void) {
    if (!fz_scratch[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(fz_scratch, sizeof fz_scratch, "%s/saesteer-fuzz.XXXXXX", base);
        if (!mkdtemp(fz_scratch)) { perror("mkdtemp"); abort(); }
        atexit(fz_scratch_cleanup);
    }
    return fz_scratch;
}

static inline void fz_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* Read a whole file (seed assets); aborts if missing. */
static inline uint8_t *fz_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "fuzz: cannot open %s\n", path); abort(); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* The error contract of lib/common.h. */
static inline void fz_check_err(int rc, const char *err) {
    if (rc == SS_OK) return;
    if (rc != SS_ERUNTIME && rc != SS_EINPUT) {
        fprintf(stderr, "fuzz: status %d is not SS_ERUNTIME/SS_EINPUT\n", rc);
        abort();
    }
    if (!err[0] || strchr(err, '\n') || strlen(err) >= SS_ERRLEN) {
        fprintf(stderr, "fuzz: bad error message for status %d: \"%s\"\n", rc, err);
        abort();
    }
}

#endif
