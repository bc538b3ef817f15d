/* npy.h - NumPy .npy read/write and .npz (stored zip) write, float32 only on output. */
#ifndef SS_NPY_H
#define SS_NPY_H

#include "common.h"

#define NPY_MAX_DIMS 8

typedef struct {
    float *data;           /* numel floats, C order (owned) */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t numel;
} npy_array;

/* Load a .npy of dtype <f4, <f8, <f2 (converted to f32), C order. */
int npy_load(npy_array *a, const char *path, char *err);
void npy_free(npy_array *a);

/* Write a float32 .npy to `path` atomically (temp file + rename). */
int npy_save(const char *path, const float *data, int ndim, const int64_t *shape, char *err);

/* Write several float32 arrays as an uncompressed .npz keyed by name. */
typedef struct {
    const char *name;      /* key, without ".npy" */
    const float *data;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
} npz_entry;
int npz_save(const char *path, const npz_entry *entries, int n, char *err);

/* Load a .npz (stored or deflated) member by key into a. */
int npz_load(npy_array *a, const char *path, const char *key, char *err);

#endif
