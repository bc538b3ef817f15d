/* testutil.h - helpers shared by the CUnit suites: whole-tensor comparisons
 * against reference dumps (printing the max difference), fixture paths. */
#ifndef SS_TESTUTIL_H
#define SS_TESTUTIL_H

#include <CUnit/Basic.h>
#include "npy.h"

/* Path under tests/fixtures (static buffer, rotates among 8). */
const char *fx(const char *rel);
int fx_exists(const char *rel);

/* Compare n floats: max |a-b| <= atol + rtol*|b| elementwise. Prints
   "name: max abs diff X, max rel diff Y over N values" and returns 1 if ok. */
int tu_allclose(const char *name, const float *got, const float *want, size_t n, float atol, float rtol);
/* Same, against a reference .npy (shape must have numel n). */
int tu_allclose_npy(const char *name, const float *got, size_t n, const char *npy_path, float atol, float rtol);

/* Read a JSON file (fixture) into a cJSON tree; NULL on failure. */
struct cJSON *tu_json(const char *path);

/* Run a suite main: registers nothing itself; runs all, returns failures. */
int tu_run(void);

#endif
