/* safetensors.h - bounds-checked, mmap-based reader for .safetensors files.
 *
 * File layout: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the raw tensor bytes. Offsets are relative to
 * the end of the header. Every offset, shape and dtype is checked against the
 * file size before any byte is read.
 */
#ifndef SS_SAFETENSORS_H
#define SS_SAFETENSORS_H

#include "common.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;    /* points into the mapping */
    size_t nbytes;
} st_tensor;

typedef struct {
    char path[4096];
    void *map;           /* whole file, read-only mmap */
    size_t size;
    int fd, has_fd;      /* kept open: st_to_f32 reads through it (pread) */
    int n;               /* number of tensors */
    st_tensor *tensors;
} st_file;

int st_open(st_file *f, const char *path, char *err);
void st_close(st_file *f);
/* Map a tensor's pages now (one batched populate instead of a page fault
   per 4 KB during the first forward pass). Best effort. */
void st_prefault(const st_tensor *t);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Convert any float tensor (F32/F16/BF16/F64) to f32 into out (numel floats).
   Reads the bytes with pread rather than through the mapping: a tensor that
   is converted is never needed in its file form again, and pread costs no
   page faults (several microseconds per 4 KiB on shadow-paged VMs). */
int st_to_f32(const st_file *f, const st_tensor *t, float *out, char *err);

/* Check a tensor's shape; ndim entries of `shape`. Error names file and tensor. */
int st_check_shape(const st_file *f, const st_tensor *t, int ndim, const int64_t *shape, char *err);

float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
