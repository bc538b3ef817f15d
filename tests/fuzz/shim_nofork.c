/* shim_nofork.c - linked into the fuzzed library only. sae_h5.c reads every
 * dictionary in a forked, time-limited child (h5_read_forked); forking an
 * ASan process costs ~0.5 s, which would leave the fuzzer at 2 executions a
 * second, and the child's coverage is lost to it. CMakeLists.txt compiles
 * sae_h5.c with -Dfork=saesteer_fuzz_fork and
 * -DSAESTEER_H5_INPROCESS_FALLBACK, so the reader sees a failed fork and
 * reads the file in-process (in the real build a failed fork is an error):
 * the fuzzer then drives sae_h5.c's reader and libhdf5 in-process. Set
 * FUZZ_H5_PROBE=1 to fork for real. */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

pid_t saesteer_fuzz_fork(void);
pid_t saesteer_fuzz_fork(void) {
    const char *e = getenv("FUZZ_H5_PROBE");
    if (e && atoi(e)) return fork();
    errno = EAGAIN;
    return -1;
}
