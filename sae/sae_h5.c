/* sae_h5.c - saesteer HDF5 dictionary format, version 1 (one SAE per file).
 *
 * Datasets at the root, float32, C order:
 *   W_enc (d_in, d_sae)  W_dec (d_sae, d_in)  b_enc (d_sae)  b_dec (d_in)
 *   optional: threshold, b_gate, b_mag, r_mag, log_sparsity (d_sae);
 *             labels (d_sae) variable-length UTF-8 strings
 * Root attributes:
 *   format = "saesteer-sae", format_version = 1, architecture, d_in, d_sae,
 *   k (topk), hook_name, model_name, apply_b_dec_to_input,
 *   normalize_activations, center_writing_weights, prepend_bos, context_size,
 *   source (imported cfg.json text, if any)
 * Strings are variable-length UTF-8 scalars (h5py gives str), integers are
 * int64, flags are HDF5 enum bools the way h5py writes numpy bools. Large
 * datasets are chunked along the first axis, shuffled and deflated.
 *
 * The reader also accepts what h5py writes from plain Python values (int,
 * bool, str, fixed-length strings, float64 arrays) and rejects anything else
 * with a message naming the attribute or dataset.
 */
#include "sae_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define H5_FORMAT_NAME "saesteer-sae"
#define H5_FORMAT_VERSION 1
#define H5_DEFLATE_LEVEL 4
#define H5_CHUNK_BYTES (1 << 20)

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Set only in the probe child (see h5_probe): read everything, except the
   bulk float data of files larger than H5_PROBE_FULL_BYTES. */
static int h5_probe_mode = 0;
#define H5_PROBE_SECONDS 10
#define H5_PROBE_FULL_BYTES ((hsize_t)32 << 20)   /* smaller files: the probe reads everything */

/* ================================================================ writer === */

static int w_attr_str(hid_t loc, const char *name, const char *val) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *v = val ? val : "";
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e < 0 ? -1 : 0;
}

static int w_attr_int(hid_t loc, const char *name, long long val) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_LLONG, &val);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

/* h5py's bool: an int8 enum {FALSE = 0, TRUE = 1} */
static int w_attr_bool(hid_t loc, const char *name, int val) {
    hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
    signed char f = 0, tr = 1, v = val ? 1 : 0;
    H5Tenum_insert(t, "FALSE", &f);
    H5Tenum_insert(t, "TRUE", &tr);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e < 0 ? -1 : 0;
}

/* float32 dataset (rows) or (rows, cols); chunked + compressed when large. */
static int w_f32(hid_t loc, const char *name, const float *data, hsize_t rows, hsize_t cols) {
    if (!data) return 0;
    int ndim = cols ? 2 : 1;
    hsize_t dims[2] = {rows, cols};
    hsize_t row_elems = cols ? cols : 1;
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (rows * row_elems * sizeof(float) > 65536) {
        hsize_t crows = H5_CHUNK_BYTES / (row_elems * sizeof(float));
        if (ndim == 1) crows = H5_CHUNK_BYTES / sizeof(float);
        if (crows < 1) crows = 1;
        if (crows > rows) crows = rows;
        hsize_t chunk[2] = {crows, cols};
        H5Pset_chunk(dcpl, ndim, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, H5_DEFLATE_LEVEL);
    }
    hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t e = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return e < 0 ? -1 : 0;
}

static int w_labels(hid_t loc, char **labels, int n) {
    const char **v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < n; i++) v[i] = labels[i] ? labels[i] : "";
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(loc, "labels", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = ds < 0 ? -1 : H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(t);
    free(v);
    return e < 0 ? -1 : 0;
}

static int write_contents(hid_t f, const sae_dict *d) {
    hsize_t C = (hsize_t)d->d_in, S = (hsize_t)d->d_sae;
    int bad = 0;
    bad |= w_attr_str(f, "format", H5_FORMAT_NAME);
    bad |= w_attr_int(f, "format_version", H5_FORMAT_VERSION);
    bad |= w_attr_str(f, "architecture", sae_arch_name(d->arch));
    bad |= w_attr_int(f, "d_in", d->d_in);
    bad |= w_attr_int(f, "d_sae", d->d_sae);
    if (d->arch == SAE_TOPK) bad |= w_attr_int(f, "k", d->k);
    bad |= w_attr_str(f, "hook_name", d->hook_name);
    bad |= w_attr_str(f, "model_name", d->model_name);
    bad |= w_attr_bool(f, "apply_b_dec_to_input", d->apply_b_dec_to_input);
    bad |= w_attr_str(f, "normalize_activations", sae_norm_name(d->norm));
    bad |= w_attr_bool(f, "center_writing_weights", d->center_writing_weights);
    bad |= w_attr_bool(f, "prepend_bos", d->prepend_bos);
    bad |= w_attr_int(f, "context_size", d->context_size);
    if (d->source) bad |= w_attr_str(f, "source", d->source);
    bad |= w_f32(f, "W_enc", d->W_enc, C, S);
    bad |= w_f32(f, "W_dec", d->W_dec, S, C);
    bad |= w_f32(f, "b_enc", d->b_enc, S, 0);
    bad |= w_f32(f, "b_dec", d->b_dec, C, 0);
    bad |= w_f32(f, "threshold", d->threshold, S, 0);
    bad |= w_f32(f, "b_gate", d->b_gate, S, 0);
    bad |= w_f32(f, "b_mag", d->b_mag, S, 0);
    bad |= w_f32(f, "r_mag", d->r_mag, S, 0);
    bad |= w_f32(f, "log_sparsity", d->log_sparsity, S, 0);
    if (d->labels) bad |= w_labels(f, d->labels, d->d_sae);
    return bad;
}

int sae_save_h5(const sae_dict *d, const char *path, char *err) {
    h5_quiet();
    int rc = sae_validate(d, d->path[0] ? d->path : "dictionary", err);
    if (rc) return rc;
    ss_outfile o;
    if ((rc = ss_out_open(&o, path, err))) return rc;
    /* HDF5 writes by name: keep the temporary's name, drop the stdio handle */
    fclose((FILE *)o.fp);
    o.fp = NULL;
    hid_t f = H5Fcreate(o.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot create HDF5 file", path);
    }
    int bad = write_contents(f, d);
    if (H5Fclose(f) < 0) bad = 1;
    if (bad) {
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: HDF5 write failed (disk full?)", path);
    }
    return ss_out_commit(&o, err);
}

/* ================================================================ reader === */

/* Open a scalar (or one-element) attribute; <0 if absent. */
static hid_t r_attr_open(hid_t f, const char *name, const char *file, int required, char *err, int *rc) {
    *rc = SS_OK;
    if (H5Aexists(f, name) <= 0) {
        if (required) *rc = ss_fail(err, SS_EINPUT, "%s: missing attribute '%s'", file, name);
        return -1;
    }
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) { *rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name); return -1; }
    hid_t sp = H5Aget_space(a);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    if (n != 1) {
        H5Aclose(a);
        *rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' is not a scalar", file, name);
        return -1;
    }
    return a;
}

/* String attribute into a fresh heap string (*out NULL if absent and optional). */
static int r_attr_str(hid_t f, const char *name, const char *file, int required, char **out, char *err) {
    int rc;
    *out = NULL;
    hid_t a = r_attr_open(f, name, file, required, err, &rc);
    if (a < 0) return rc;
    hid_t ft = H5Aget_type(a);
    if (H5Tget_class(ft) != H5T_STRING) {
        H5Tclose(ft); H5Aclose(a);
        return ss_fail(err, SS_EINPUT, "%s: attribute '%s' is not a string", file, name);
    }
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    rc = SS_OK;
    if (H5Tis_variable_str(ft) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char *p = NULL;
        if (H5Aread(a, mt, &p) < 0) rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name);
        else {
            *out = strdup(p ? p : "");
            hid_t sp = H5Screate(H5S_SCALAR);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &p);
            H5Sclose(sp);
        }
    } else {
        size_t n = H5Tget_size(ft);
        if (n == 0 || n > (1u << 24)) rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s': bad string size", file, name);
        else {
            H5Tset_size(mt, n);
            H5Tset_strpad(mt, H5T_STR_NULLPAD);
            char *p = calloc(n + 1, 1);
            if (!p) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
            else if (H5Aread(a, mt, p) < 0) { free(p); rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name); }
            else *out = p;
        }
    }
    H5Tclose(mt); H5Tclose(ft); H5Aclose(a);
    if (rc == SS_OK && !*out) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
    if (rc == SS_OK && !ss_utf8_valid(*out, strlen(*out))) {
        free(*out); *out = NULL;
        rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' is not valid UTF-8", file, name);
    }
    return rc;
}

/* String attribute into a fixed buffer. */
static int r_attr_strbuf(hid_t f, const char *name, const char *file, int required, char *buf, size_t n, char *err) {
    char *s;
    int rc = r_attr_str(f, name, file, required, &s, err);
    if (rc || !s) return rc;
    if (strlen(s) >= n) { free(s); return ss_fail(err, SS_EINPUT, "%s: attribute '%s' longer than %zu bytes", file, name, n - 1); }
    sae_strlcpy(buf, s, n);
    free(s);
    return SS_OK;
}

/* Integer-valued attribute: integer, h5py bool (enum), or an integral float.
   *out untouched if absent and optional. */
static int r_attr_int(hid_t f, const char *name, const char *file, int required, long long lo, long long hi,
                      long long *out, char *err) {
    int rc;
    hid_t a = r_attr_open(f, name, file, required, err, &rc);
    if (a < 0) return rc;
    hid_t ft = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(ft);
    long long v = 0;
    rc = SS_OK;
    if (cls == H5T_INTEGER) {
        if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name);
    } else if (cls == H5T_FLOAT) {
        double x = 0;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &x) < 0) rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name);
        else if (!(x > -9.2e18 && x < 9.2e18) || x != (double)(long long)x)   /* range first: the cast is UB outside it */
            rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' = %g is not an integer", file, name, x);
        else v = (long long)x;
    } else if (cls == H5T_ENUM) {
        /* h5py bool: read the raw value in the enum's own (native) type and
           name it; TRUE/FALSE, else take the integer value */
        hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
        size_t sz = mt < 0 ? 0 : H5Tget_size(mt);
        unsigned char raw[16] = {0};
        char nm[32];
        if (sz == 0 || sz > 8 || H5Aread(a, mt, raw) < 0)
            rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' unreadable", file, name);
        else if (H5Tenum_nameof(mt, raw, nm, sizeof nm) >= 0 && (!strcmp(nm, "TRUE") || !strcmp(nm, "FALSE")))
            v = !strcmp(nm, "TRUE");
        else {
            hid_t base = H5Tget_super(mt);
            int sgn = H5Tget_sign(base) == H5T_SGN_2;
            if (sz == 1) v = sgn ? (long long)*(int8_t *)raw : (long long)*(uint8_t *)raw;
            else if (sz == 2) v = sgn ? (long long)*(int16_t *)raw : (long long)*(uint16_t *)raw;
            else if (sz == 4) v = sgn ? (long long)*(int32_t *)raw : (long long)*(uint32_t *)raw;
            else v = *(long long *)raw;
            H5Tclose(base);
        }
        if (mt >= 0) H5Tclose(mt);
    } else {
        rc = ss_fail(err, SS_EINPUT, "%s: attribute '%s' is not an integer", file, name);
    }
    H5Tclose(ft); H5Aclose(a);
    if (rc) return rc;
    if (v < lo || v > hi)
        return ss_fail(err, SS_EINPUT, "%s: attribute '%s' = %lld out of range [%lld, %lld]", file, name, v, lo, hi);
    *out = v;
    return SS_OK;
}

static int r_attr_flag(hid_t f, const char *name, const char *file, int dflt, int *out, char *err) {
    long long v = dflt;
    int rc = r_attr_int(f, name, file, 0, 0, 1, &v, err);
    *out = (int)v;
    return rc;
}

/* Where a dataset's bytes are must lie inside the file, and chunks must not
   be larger than the dataset: HDF5 1.10 trusts these numbers when reading.
   tsz: element size to check the contiguous storage size against (0: don't). */
static hsize_t h5_file_size = 0;
static int check_layout(hid_t ds, const char *name, const char *file, size_t tsz, char *err, int *rc) {
    hid_t sp = H5Dget_space(ds), dcpl = H5Dget_create_plist(ds);
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0}, chunk[H5S_MAX_RANK] = {0};
    if (rank > 0 && rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5D_layout_t lay = dcpl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
    int bad = rank < 0 || rank > H5S_MAX_RANK || lay == H5D_LAYOUT_ERROR;
    hsize_t nelem = 1;
    for (int i = 0; i < rank && !bad; i++) nelem = dims[i] && nelem > ((hsize_t)1 << 40) / dims[i] ? ((hsize_t)1 << 41) : nelem * dims[i];
    if (!bad && lay == H5D_CONTIGUOUS) {
        haddr_t off = H5Dget_offset(ds);
        hsize_t sz = H5Dget_storage_size(ds);
        if (off != HADDR_UNDEF && ((tsz && sz != nelem * tsz) || off > h5_file_size || sz > h5_file_size - off)) bad = 1;
    } else if (!bad && lay == H5D_CHUNKED) {
        int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
        if (cr != rank) bad = 1;
        hsize_t celem = 1;
        for (int i = 0; i < rank && !bad; i++) {
            if (chunk[i] == 0 || chunk[i] > (dims[i] ? dims[i] : 1)) bad = 1;
            else celem *= chunk[i];
        }
        hsize_t nchunks = 0;
        if (!bad && H5Dget_num_chunks(ds, sp, &nchunks) < 0) bad = 1;   /* 1.10 wants a real space, not H5S_ALL */
        for (hsize_t c = 0; c < nchunks && !bad; c++) {
            hsize_t coff[H5S_MAX_RANK];
            unsigned mask;
            haddr_t addr;
            hsize_t size;
            if (H5Dget_chunk_info(ds, sp, c, coff, &mask, &addr, &size) < 0 || addr > h5_file_size ||
                size > h5_file_size - addr || (tsz && mask == 0 && size > celem * tsz * 2 + 4096))
                bad = 1;
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (bad) *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s': storage layout is corrupt", file, name);
    return bad;
}

/* Open a dataset, check it holds rank-ndim data of the expected dims. */
static hid_t r_dset_open(hid_t f, const char *name, int ndim, const hsize_t *want, H5T_class_t want_cls,
                         const char *file, int required, char *err, int *rc) {
    *rc = SS_OK;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        if (required) *rc = ss_fail(err, SS_EINPUT, "%s: missing dataset '%s'", file, name);
        return -1;
    }
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) { *rc = ss_fail(err, SS_EINPUT, "%s: '%s' is not a readable dataset", file, name); return -1; }
    hid_t ft = H5Dget_type(ds);
    H5T_class_t cls = H5Tget_class(ft);
    size_t tsz = H5Tget_size(ft);
    H5Tclose(ft);
    if (cls != want_cls) {
        H5Dclose(ds);
        *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s': wrong dtype (expected %s)", file, name,
                      want_cls == H5T_FLOAT ? "float32" : "strings");
        return -1;
    }
    if (cls == H5T_FLOAT && (tsz < 2 || tsz > 8)) {
        H5Dclose(ds);
        *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s': unsupported float size %zu", file, name, tsz);
        return -1;
    }
    if (check_layout(ds, name, file, cls == H5T_FLOAT ? tsz : 0, err, rc))   /* strings: bounds only */ { H5Dclose(ds); return -1; }
    hid_t sp = H5Dget_space(ds);
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank > 0 && rank <= H5S_MAX_RANK) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    int ok = rank == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[64];
        size_t p = 0;
        for (int i = 0; i < rank && i < 8 && p < sizeof got - 24; i++)
            p += (size_t)snprintf(got + p, sizeof got - p, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
        if (ndim == 2) snprintf(exp, sizeof exp, "%llu,%llu", (unsigned long long)want[0], (unsigned long long)want[1]);
        else snprintf(exp, sizeof exp, "%llu", (unsigned long long)want[0]);
        H5Dclose(ds);
        *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s': shape [%s], expected [%s]", file, name, got, exp);
        return -1;
    }
    return ds;
}

/* Read a float dataset into *dst (allocated here). */
static int r_f32(hid_t f, const char *name, hsize_t rows, hsize_t cols, const char *file, int required, float **dst,
                 char *err) {
    int rc;
    hsize_t want[2] = {rows, cols};
    hid_t ds = r_dset_open(f, name, cols ? 2 : 1, want, H5T_FLOAT, file, required, err, &rc);
    if (ds < 0) return rc;
    if (h5_probe_mode && h5_file_size > H5_PROBE_FULL_BYTES) { H5Dclose(ds); return SS_OK; }
    float *buf = ss_malloc2((size_t)rows * (cols ? cols : 1), sizeof(float));
    if (!buf) { H5Dclose(ds); return ss_fail(err, SS_ERUNTIME, "%s: out of memory reading '%s'", file, name); }
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf); H5Dclose(ds);
        return ss_fail(err, SS_EINPUT, "%s: dataset '%s': read failed (truncated or corrupt file?)", file, name);
    }
    H5Dclose(ds);
    free(*dst);
    *dst = buf;
    return SS_OK;
}

static int r_labels(hid_t f, sae_dict *d, const char *file, char *err) {
    int rc;
    hsize_t want[1] = {(hsize_t)d->d_sae};
    hid_t ds = r_dset_open(f, "labels", 1, want, H5T_STRING, file, 0, err, &rc);
    if (ds < 0) return rc;
    size_t n = (size_t)d->d_sae;
    d->labels = calloc(n, sizeof(char *));
    if (!d->labels) { H5Dclose(ds); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    hid_t ft = H5Dget_type(ds);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    rc = SS_OK;
    if (H5Tis_variable_str(ft) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char **p = calloc(n, sizeof(char *));
        if (!p) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        else if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) < 0)
            rc = ss_fail(err, SS_EINPUT, "%s: dataset 'labels': read failed", file);
        else {
            for (size_t i = 0; i < n && !rc; i++)
                if (!(d->labels[i] = strdup(p[i] ? p[i] : ""))) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
            hid_t sp = H5Dget_space(ds);
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, p);
            H5Sclose(sp);
        }
        free(p);
    } else {
        size_t w = H5Tget_size(ft);
        char *buf = (w == 0 || w > 65536) ? NULL : ss_malloc2(n, w);
        if (!buf) rc = ss_fail(err, SS_EINPUT, "%s: dataset 'labels': bad string size %zu", file, w);
        else {
            H5Tset_size(mt, w);
            H5Tset_strpad(mt, H5T_STR_NULLPAD);
            if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
                rc = ss_fail(err, SS_EINPUT, "%s: dataset 'labels': read failed", file);
            for (size_t i = 0; i < n && !rc; i++)
                if (!(d->labels[i] = strndup(buf + i * w, w))) rc = ss_fail(err, SS_ERUNTIME, "out of memory");
        }
        free(buf);
    }
    H5Tclose(mt); H5Tclose(ft); H5Dclose(ds);
    for (size_t i = 0; i < n && !rc; i++)
        if (!ss_utf8_valid(d->labels[i], strlen(d->labels[i])))
            rc = ss_fail(err, SS_EINPUT, "%s: dataset 'labels': entry [%zu] is not valid UTF-8", file, i);
    return rc;
}

static int read_contents(hid_t f, sae_dict *d, const char *file, char *err) {
    int rc;
    char fmt[64] = "", arch[64] = "", norm[64] = "none";
    long long ver = 0, d_in = 0, d_sae = 0, k = 0, ctx = 0;
    if ((rc = r_attr_strbuf(f, "format", file, 1, fmt, sizeof fmt, err))) {
        if (H5Aexists(f, "format") <= 0)
            return ss_fail(err, SS_EINPUT, "%s: not a saesteer dictionary (no 'format' attribute)", file);
        return rc;
    }
    if (strcmp(fmt, H5_FORMAT_NAME) != 0)
        return ss_fail(err, SS_EINPUT, "%s: attribute 'format' = '%.40s', expected '%s'", file, fmt, H5_FORMAT_NAME);
    if ((rc = r_attr_int(f, "format_version", file, 1, 0, 1000000, &ver, err))) return rc;
    if (ver != H5_FORMAT_VERSION)
        return ss_fail(err, SS_EINPUT, "%s: attribute 'format_version' = %lld, this build reads version %d", file, ver,
                       H5_FORMAT_VERSION);
    if ((rc = r_attr_strbuf(f, "architecture", file, 1, arch, sizeof arch, err))) return rc;
    if (!sae_arch_parse(arch, &d->arch))
        return ss_fail(err, SS_EINPUT, "%s: attribute 'architecture': unknown architecture '%s'", file, arch);
    if ((rc = r_attr_int(f, "d_in", file, 1, 1, SAE_MAX_D_IN, &d_in, err))) return rc;
    if ((rc = r_attr_int(f, "d_sae", file, 1, 1, SAE_MAX_D_SAE, &d_sae, err))) return rc;
    if ((rc = sae_check_sizes(d_in, d_sae, file, err))) return rc;
    d->d_in = (int)d_in; d->d_sae = (int)d_sae;
    if (d->arch == SAE_TOPK) {
        if ((rc = r_attr_int(f, "k", file, 1, 1, d_sae, &k, err))) return rc;
        d->k = (int)k;
    }
    if ((rc = r_attr_strbuf(f, "hook_name", file, 1, d->hook_name, sizeof d->hook_name, err))) return rc;
    if ((rc = r_attr_strbuf(f, "model_name", file, 0, d->model_name, sizeof d->model_name, err))) return rc;
    if ((rc = r_attr_strbuf(f, "normalize_activations", file, 0, norm, sizeof norm, err))) return rc;
    if (!sae_norm_parse(norm, &d->norm))
        return ss_fail(err, SS_EINPUT, "%s: attribute 'normalize_activations': unknown value '%s'", file, norm);
    if ((rc = r_attr_flag(f, "apply_b_dec_to_input", file, 1, &d->apply_b_dec_to_input, err))) return rc;
    if ((rc = r_attr_flag(f, "center_writing_weights", file, 0, &d->center_writing_weights, err))) return rc;
    if ((rc = r_attr_flag(f, "prepend_bos", file, 1, &d->prepend_bos, err))) return rc;
    if ((rc = r_attr_int(f, "context_size", file, 0, 0, 1 << 24, &ctx, err))) return rc;
    d->context_size = (int)ctx;
    if ((rc = r_attr_str(f, "source", file, 0, &d->source, err))) return rc;

    hsize_t C = (hsize_t)d->d_in, S = (hsize_t)d->d_sae;
    if ((rc = r_f32(f, "W_enc", C, S, file, 1, &d->W_enc, err))) return rc;
    if ((rc = r_f32(f, "W_dec", S, C, file, 1, &d->W_dec, err))) return rc;
    if ((rc = r_f32(f, "b_dec", C, 0, file, 1, &d->b_dec, err))) return rc;
    if ((rc = r_f32(f, "b_enc", S, 0, file, d->arch != SAE_GATED, &d->b_enc, err))) return rc;
    if (!d->b_enc && !(d->b_enc = ss_calloc(S, sizeof(float))))
        return ss_fail(err, SS_ERUNTIME, "out of memory");
    if ((rc = r_f32(f, "threshold", S, 0, file, d->arch == SAE_JUMPRELU, &d->threshold, err))) return rc;
    int gated = d->arch == SAE_GATED;
    if ((rc = r_f32(f, "b_gate", S, 0, file, gated, &d->b_gate, err))) return rc;
    if ((rc = r_f32(f, "b_mag", S, 0, file, gated, &d->b_mag, err))) return rc;
    if ((rc = r_f32(f, "r_mag", S, 0, file, gated, &d->r_mag, err))) return rc;
    if ((rc = r_f32(f, "log_sparsity", S, 0, file, 0, &d->log_sparsity, err))) return rc;
    return r_labels(f, d, file, err);
}

/* HDF5 1.10 trusts what a file says about itself (string lengths in its
 * global heap, chunk sizes, ...): a corrupted file can make the library crash,
 * corrupt the heap or spin. So the whole file is first read by a child
 * process under a time limit (files over H5_PROBE_FULL_BYTES: everything but
 * the bulk float data). The child reports its verdict through a pipe; this
 * process touches the file only after the child read it cleanly, and
 * otherwise returns the child's error. */
/* In the probe child: a corrupted length makes HDF5 allocate and fill
   gigabytes; cap the address space so that fails fast instead. */
static void limit_memory(void) {
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return;
    if (fscanf(f, "%ld", &pages) != 1) pages = 0;
    fclose(f);
    rlim_t now = (rlim_t)pages * (rlim_t)page;
    if (pages <= 0 || now > ((rlim_t)1 << 40)) return;   /* sanitizers reserve terabytes: leave them be */
    rlim_t want = now + ((rlim_t)2 << 30) + (rlim_t)h5_file_size * 4;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want)) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_AS, &rl);
    }
}

static int h5_probe(const char *path, char *err) {
    int fds[2];
    if (pipe(fds) != 0) return SS_OK;   /* cannot probe: read directly */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return SS_OK; }
    if (pid == 0) {
        close(fds[0]);
        int devnull = open("/dev/null", O_WRONLY);   /* glibc's own abort messages */
        if (devnull >= 0) dup2(devnull, 2);
        signal(SIGALRM, SIG_DFL);
        alarm(H5_PROBE_SECONDS);
        limit_memory();
        h5_probe_mode = 1;
        h5_quiet();
        char msg[1 + SS_ERRLEN] = {0};
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            msg[0] = SS_EINPUT;
            snprintf(msg + 1, SS_ERRLEN, "%s: cannot open HDF5 file (truncated or corrupt?)", path);
        } else {
            sae_dict *d = calloc(1, sizeof *d);
            if (d) msg[0] = (char)read_contents(f, d, path, msg + 1);
            H5Fclose(f);
            sae_free(d);   /* a leak here is an error exit under valgrind --error-exitcode */
        }
        H5close();   /* the library's teardown trips over a heap it corrupted */
        if (write(fds[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char msg[1 + SS_ERRLEN];
    size_t got = 0;
    while (got < sizeof msg) {
        ssize_t r = read(fds[0], msg + got, sizeof msg - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return SS_OK;
    if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM)
            return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (reading it did not finish in %d s)", path,
                           H5_PROBE_SECONDS);
        return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (the HDF5 library crashed reading it)", path);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != sizeof msg)   /* e.g. a sanitizer's abort */
        return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (the HDF5 library failed reading it)", path);
    if (msg[0] != SS_OK) {
        msg[SS_ERRLEN] = '\0';
        return ss_fail(err, msg[0] == SS_ERUNTIME ? SS_ERUNTIME : SS_EINPUT, "%s", msg + 1);
    }
    return SS_OK;
}

/* libhdf5 1.10 trusts the object sizes in a global-heap collection ("GCOL",
 * where variable-length strings live): an object of size 0 makes
 * H5HG__cache_heap_deserialize loop forever, and one that runs past its
 * collection makes H5HG_read copy from beyond the heap buffer (found by
 * fuzz_h5; the second reads stray bytes silently, so the probe child does not
 * catch it). Walk every collection (version 1, 8-byte lengths, as h5py and
 * sae_save_h5 write them) the way the library will, first. */
static int h5_gheap_check(const char *path, char *err) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 32) { if (fd >= 0) close(fd); return SS_OK; }
    size_t n = (size_t)st.st_size;
    const unsigned char *b = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (b == MAP_FAILED) return SS_OK;   /* H5Fopen will say what is wrong */
    int rc = SS_OK;
    for (const unsigned char *q = b; rc == SS_OK && (q = memmem(q, n - (size_t)(q - b), "GCOL", 4)) != NULL; q++) {
        size_t i = (size_t)(q - b);
        if (i + 16 > n || b[i + 4] != 1) continue;
        uint64_t size = 0;
        for (int k = 0; k < 8; k++) size |= (uint64_t)b[i + 8 + k] << (8 * k);
        if (size < 32 || size > n - i) continue;   /* not a collection the library can load */
        size_t p = i + 16, end = i + (size_t)size;
        while (p + 16 <= end) {
            unsigned idx = b[p] | (unsigned)b[p + 1] << 8;
            uint64_t osz = 0;
            for (int k = 0; k < 8; k++) osz |= (uint64_t)b[p + 8 + k] << (8 * k);
            uint64_t need = idx ? 16 + ((osz + 7) & ~(uint64_t)7) : osz;
            if (need == 0 || need > end - p || (idx && osz > need)) {
                rc = ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (global heap object at byte %zu has size %llu)",
                             path, p, (unsigned long long)osz);
                break;
            }
            p += (size_t)need;
        }
    }
    munmap((void *)b, n);
    return rc;
}

int sae_load_h5(sae_dict **out, const char *path, char *err) {
    *out = NULL;
    h5_quiet();
    FILE *probe = fopen(path, "rb");
    if (!probe) return ss_fail(err, SS_EINPUT, "%s: cannot open", path);
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0)
        return ss_fail(err, SS_EINPUT, "%s: not an HDF5 file (nor a SAELens folder)", path);
    struct stat st;
    h5_file_size = stat(path, &st) == 0 ? (hsize_t)st.st_size : 0;
    int rc = h5_gheap_check(path, err);
    if (!rc) rc = h5_probe(path, err);
    if (rc) return rc;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return ss_fail(err, SS_EINPUT, "%s: cannot open HDF5 file (truncated or corrupt?)", path);
    sae_dict *d = calloc(1, sizeof *d);
    if (!d) { H5Fclose(f); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    sae_strlcpy(d->path, path, sizeof d->path);
    rc = read_contents(f, d, path, err);
    H5Fclose(f);
    if (!rc) rc = sae_validate(d, path, err);
    if (rc) { sae_free(d); return rc; }
    *out = d;
    return SS_OK;
}
