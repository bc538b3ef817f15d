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
#include <H5PLpublic.h>
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

/* No error stack printing, and no filter plugins loaded from HDF5_PLUGIN_PATH
   (a dictionary must not choose code to run). */
static void h5_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5PLset_loading_state(0);
}

/* Set only in the reader child (see h5_read_forked). */
static int h5_probe_mode = 0;
#define H5_PROBE_SECONDS 10            /* plus one second per 16 MiB of file */
static void probe_allow(size_t bytes);

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
    /* libhdf5 builds the file in memory (the core driver, no backing store)
       and this code writes the image: a full disk is an ordinary write error
       here, never a failed H5Fclose that libhdf5's exit handler trips over */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ? -1 : H5Fcreate(o.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) {
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot create HDF5 file", path);
    }
    int bad = write_contents(f, d);
    if (!bad && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) bad = 1;
    ssize_t n = bad ? -1 : H5Fget_file_image(f, NULL, 0);
    void *img = n > 0 ? malloc((size_t)n) : NULL;
    if (!img || H5Fget_file_image(f, img, (size_t)n) != n) bad = 1;
    if (H5Fclose(f) < 0) bad = 1;
    if (bad) {
        free(img);
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: HDF5 write failed (out of memory?)", path);
    }
    bad = fwrite(img, 1, (size_t)n, (FILE *)o.fp) != (size_t)n;
    free(img);
    if (bad) {
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: write failed (disk full?)", path);
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
            /* memcpy, not a cast: raw is a byte buffer (aliasing and alignment) */
            int8_t i8; uint8_t u8; int16_t i16; uint16_t u16; int32_t i32; uint32_t u32; int64_t i64;
            if (sz == 1) { memcpy(&i8, raw, 1); memcpy(&u8, raw, 1); v = sgn ? (long long)i8 : (long long)u8; }
            else if (sz == 2) { memcpy(&i16, raw, 2); memcpy(&u16, raw, 2); v = sgn ? (long long)i16 : (long long)u16; }
            else if (sz == 4) { memcpy(&i32, raw, 4); memcpy(&u32, raw, 4); v = sgn ? (long long)i32 : (long long)u32; }
            else { memcpy(&i64, raw, 8); v = (long long)i64; }
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

/* A dataset's bytes must live in this file and decode with the library's own
   code: external storage (raw bytes read from any other file by name) and
   virtual datasets (mapped from other HDF5 files) are refused, and so are
   filters other than the built-in ones (anything else would load a plugin).
   Checked right after H5Dopen2, from the creation property list only, before
   anything asks the dataset for its extent or data. */
static int check_storage(hid_t ds, const char *name, const char *file, char *err, int *rc) {
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) { *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s': storage layout is corrupt", file, name); return 1; }
    const char *why = NULL;
    char what[64] = "";
    H5D_layout_t lay = H5Pget_layout(dcpl);
    int next = H5Pget_external_count(dcpl);
    if (lay == H5D_VIRTUAL) why = "is a virtual dataset (data from other files)";
    else if (lay == H5D_LAYOUT_ERROR || next < 0) why = "has a corrupt storage layout";
    else if (next > 0) why = "has external storage (raw data in another file)";
    int nf = why ? 0 : H5Pget_nfilters(dcpl);
    if (nf < 0) why = "has a corrupt filter pipeline";
    for (int i = 0; i < nf && !why; i++) {
        unsigned flags = 0, cd[16];
        size_t ncd = 16;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname, fname, NULL);
        if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32 &&
            id != H5Z_FILTER_NBIT && id != H5Z_FILTER_SCALEOFFSET) {
            snprintf(what, sizeof what, "uses filter %d, which is not built into HDF5", (int)id);
            why = what;
        }
    }
    H5Pclose(dcpl);
    if (why) *rc = ss_fail(err, SS_EINPUT, "%s: dataset '%s' %s", file, name, why);
    return why != NULL;
}

/* Open a dataset, check it holds rank-ndim data of the expected dims. */
static hid_t r_dset_open(hid_t f, const char *name, int ndim, const hsize_t *want, H5T_class_t want_cls,
                         const char *file, int required, char *err, int *rc) {
    *rc = SS_OK;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        if (required) *rc = ss_fail(err, SS_EINPUT, "%s: missing dataset '%s'", file, name);
        return -1;
    }
    /* a soft or external link could name an object in another file: only
       hard links (objects stored in this file) are followed */
    H5L_info_t li;
    if (H5Lget_info(f, name, &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_HARD) {
        *rc = ss_fail(err, SS_EINPUT, "%s: '%s' is %s link, not a dataset stored in the file", file, name,
                      li.type == H5L_TYPE_SOFT ? "a soft" : li.type == H5L_TYPE_EXTERNAL ? "an external" : "a user-defined");
        return -1;
    }
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) { *rc = ss_fail(err, SS_EINPUT, "%s: '%s' is not a readable dataset", file, name); return -1; }
    if (check_storage(ds, name, file, err, rc)) { H5Dclose(ds); return -1; }
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
    if (h5_probe_mode) probe_allow((size_t)rows * (cols ? cols : 1) * sizeof(float));
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
 * corrupt the heap or spin. So this process never parses a dictionary with
 * libhdf5 at all. sae_load_h5 opens the file once (one descriptor: what was
 * checked is what is read, even if the name is replaced meanwhile), and a
 * forked child under a time and memory limit reads it: the bytes come from
 * that descriptor into memory, libhdf5 opens the memory image (the core
 * driver: it never opens a file by name), every dataset is checked (hard
 * links only, no external storage, no virtual datasets, built-in filters
 * only) before any of its data is read, and the child sends the dictionary
 * back through a pipe. A child that crashes, hangs, dies by a signal or sends
 * less than a whole dictionary is a refusal; so is a failed fork or pipe. */

/* In the reader child: a corrupted length makes HDF5 allocate and fill
   gigabytes; cap the address space so that fails fast instead. The cap grows
   by the size of each float dataset before it is read (probe_allow). */
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

static void probe_allow(size_t bytes) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    rlim_t want = rl.rlim_cur + (rlim_t)bytes;
    if (want < rl.rlim_cur || (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)) want = rl.rlim_max;
    rl.rlim_cur = want;
    setrlimit(RLIMIT_AS, &rl);
}

/* libhdf5 1.10 trusts the object sizes in a global-heap collection ("GCOL",
 * where variable-length strings live): an object of size 0 makes
 * H5HG__cache_heap_deserialize loop forever, and one that runs past its
 * collection makes H5HG_read copy from beyond the heap buffer (found by
 * fuzz_h5; the second reads stray bytes silently, so a crash would not
 * catch it). Walk every collection (version 1, 8-byte lengths, as h5py and
 * sae_save_h5 write them) the way the library will, first. */
static int h5_gheap_check(const unsigned char *b, size_t n, const char *path, char *err) {
    if (n < 32) return SS_OK;
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
    return rc;
}

/* The HDF5 signature at offset 0, 512, 1024, 2048, ... (a user block may precede it). */
static int h5_has_signature(const unsigned char *b, size_t n) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t off = 0; off + 8 <= n; off = off ? off * 2 : 512)
        if (!memcmp(b + off, sig, 8)) return 1;
    return 0;
}

/* Read the dictionary from descriptor fd (size bytes) into d: the whole file
   into memory, then libhdf5 on that image. Runs in the reader child. */
static int h5_read_fd(int fd, size_t size, const char *path, sae_dict *d, char *err) {
    unsigned char *img = malloc(size ? size : 1);
    if (!img) return ss_fail(err, SS_ERUNTIME, "%s: out of memory (%zu bytes)", path, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, img + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != size) {
        free(img);
        return ss_fail(err, SS_EINPUT, "%s: file shrank while being read (%zu of %zu bytes)", path, got, size);
    }
    if (!h5_has_signature(img, size)) {
        free(img);
        return ss_fail(err, SS_EINPUT, "%s: not an HDF5 file (nor a SAELens folder)", path);
    }
    int rc = h5_gheap_check(img, size, path, err);
    if (rc) { free(img); return rc; }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_file_image(fapl, img, size) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        free(img);
        return ss_fail(err, SS_ERUNTIME, "%s: cannot set up the HDF5 reader", path);
    }
    free(img);   /* H5Pset_file_image took a copy */
    /* the core driver refuses to open an image under the name of a file that
       exists (it tries open(2) on the name): give it one that cannot */
    hid_t f = H5Fopen("/proc/self/fdinfo/-1/saesteer-image.h5", H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) return ss_fail(err, SS_EINPUT, "%s: cannot open HDF5 file (truncated or corrupt?)", path);
    rc = read_contents(f, d, path, err);
    H5Fclose(f);
    return rc;
}

/* ---- the dictionary on the wire, child -> parent ---- */
enum { W_ENC, W_DEC, W_BENC, W_BDEC, W_THR, W_BGATE, W_BMAG, W_RMAG, W_LOGSP, W_NARR };
typedef struct {
    char magic[8];
    int32_t arch, norm, d_in, d_sae, k, apply_b_dec, center, prepend_bos, context_size;
    uint32_t have;                 /* bit i: array i present; bit 16: labels; bit 17: source */
    uint64_t labels_len, source_len;   /* bytes, NULs included */
    char hook_name[256], model_name[256];
} h5_wire;
static const char H5_WIRE_MAGIC[8] = "ssh5dct";

static float **wire_arr(sae_dict *d, int i) {
    float **a[W_NARR] = {&d->W_enc, &d->W_dec, &d->b_enc, &d->b_dec, &d->threshold,
                         &d->b_gate, &d->b_mag, &d->r_mag, &d->log_sparsity};
    return a[i];
}
static size_t wire_len(const h5_wire *w, int i) {
    size_t C = (size_t)w->d_in, S = (size_t)w->d_sae;
    return i == W_ENC || i == W_DEC ? C * S : i == W_BDEC ? C : S;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r; n -= (size_t)r;
    }
    return 0;
}
static int read_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r; n -= (size_t)r;
    }
    return 0;
}

static int wire_send(int fd, const sae_dict *d) {
    h5_wire w;
    memset(&w, 0, sizeof w);
    memcpy(w.magic, H5_WIRE_MAGIC, 8);
    w.arch = d->arch; w.norm = d->norm; w.d_in = d->d_in; w.d_sae = d->d_sae; w.k = d->k;
    w.apply_b_dec = d->apply_b_dec_to_input; w.center = d->center_writing_weights;
    w.prepend_bos = d->prepend_bos; w.context_size = d->context_size;
    memcpy(w.hook_name, d->hook_name, sizeof w.hook_name);
    memcpy(w.model_name, d->model_name, sizeof w.model_name);
    for (int i = 0; i < W_NARR; i++)
        if (*wire_arr((sae_dict *)d, i)) w.have |= 1u << i;
    if (d->labels) {
        w.have |= 1u << 16;
        for (int i = 0; i < d->d_sae; i++) w.labels_len += strlen(d->labels[i]) + 1;
    }
    if (d->source) { w.have |= 1u << 17; w.source_len = strlen(d->source) + 1; }
    if (write_all(fd, &w, sizeof w)) return -1;
    for (int i = 0; i < W_NARR; i++)
        if ((w.have >> i & 1) && write_all(fd, *wire_arr((sae_dict *)d, i), wire_len(&w, i) * sizeof(float))) return -1;
    if (d->labels)
        for (int i = 0; i < d->d_sae; i++)
            if (write_all(fd, d->labels[i], strlen(d->labels[i]) + 1)) return -1;
    if (d->source && write_all(fd, d->source, w.source_len)) return -1;
    return 0;
}

/* Parent side: rebuild the dictionary, trusting no number the child sent. */
static int wire_recv(int fd, sae_dict *d, const char *path, char *err) {
    h5_wire w;
    const char *cut = "%s: the HDF5 reader stopped before sending the whole dictionary";
    if (read_all(fd, &w, sizeof w) || memcmp(w.magic, H5_WIRE_MAGIC, 8)) return ss_fail(err, SS_EINPUT, cut, path);
    int rc = sae_check_sizes(w.d_in, w.d_sae, path, err);
    if (rc) return rc;
    if (w.arch < SAE_STANDARD || w.arch > SAE_GATED || w.norm < SAE_NORM_NONE || w.norm > SAE_NORM_LAYER ||
        w.labels_len > ((uint64_t)w.d_sae << 17) || w.source_len > ((uint64_t)1 << 28) ||
        (!(w.have >> 16 & 1) && w.labels_len) || (!(w.have >> 17 & 1) && w.source_len))
        return ss_fail(err, SS_EINPUT, cut, path);
    d->arch = (sae_arch)w.arch; d->norm = (sae_norm)w.norm; d->d_in = w.d_in; d->d_sae = w.d_sae; d->k = w.k;
    d->apply_b_dec_to_input = w.apply_b_dec; d->center_writing_weights = w.center;
    d->prepend_bos = w.prepend_bos; d->context_size = w.context_size;
    memcpy(d->hook_name, w.hook_name, sizeof d->hook_name);
    memcpy(d->model_name, w.model_name, sizeof d->model_name);
    d->hook_name[sizeof d->hook_name - 1] = d->model_name[sizeof d->model_name - 1] = '\0';
    for (int i = 0; i < W_NARR; i++) {
        if (!(w.have >> i & 1)) continue;
        float **a = wire_arr(d, i);
        if (!(*a = ss_malloc2(wire_len(&w, i), sizeof(float))))
            return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
        if (read_all(fd, *a, wire_len(&w, i) * sizeof(float))) return ss_fail(err, SS_EINPUT, cut, path);
    }
    if (w.have >> 16 & 1) {
        char *blob = malloc((size_t)w.labels_len + 1);
        if (!blob || !(d->labels = calloc((size_t)d->d_sae, sizeof(char *)))) {
            free(blob);
            return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
        }
        if (read_all(fd, blob, (size_t)w.labels_len)) { free(blob); return ss_fail(err, SS_EINPUT, cut, path); }
        blob[w.labels_len] = '\0';
        size_t p = 0;
        for (int i = 0; i < d->d_sae && rc == SS_OK; i++) {
            size_t l = p < w.labels_len ? strlen(blob + p) : 0;
            if (p >= w.labels_len) rc = ss_fail(err, SS_EINPUT, cut, path);
            else if (!(d->labels[i] = strdup(blob + p))) rc = ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
            p += l + 1;
        }
        for (int i = 0; i < d->d_sae && rc == SS_OK; i++) if (!d->labels[i]) rc = ss_fail(err, SS_EINPUT, cut, path);
        if (rc == SS_OK && p != w.labels_len) rc = ss_fail(err, SS_EINPUT, cut, path);
        free(blob);
        if (rc) return rc;
    }
    if (w.have >> 17 & 1) {
        if (!w.source_len || !(d->source = malloc((size_t)w.source_len))) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", path);
        if (read_all(fd, d->source, (size_t)w.source_len)) return ss_fail(err, SS_EINPUT, cut, path);
        d->source[w.source_len - 1] = '\0';
    }
    char extra;
    if (read(fd, &extra, 1) != 0) return ss_fail(err, SS_EINPUT, cut, path);
    int ok = ss_utf8_valid(d->hook_name, strlen(d->hook_name)) && ss_utf8_valid(d->model_name, strlen(d->model_name)) &&
             (!d->source || ss_utf8_valid(d->source, strlen(d->source)));
    for (int i = 0; ok && d->labels && i < d->d_sae; i++) ok = ss_utf8_valid(d->labels[i], strlen(d->labels[i]));
    if (!ok) return ss_fail(err, SS_EINPUT, cut, path);
    return SS_OK;
}

/* Fork the reader child on fd and rebuild its dictionary in d. */
static int h5_read_forked(int fd, size_t size, const char *path, sae_dict *d, char *err) {
    int fds[2];
    if (pipe(fds) != 0)
        return ss_fail(err, SS_ERUNTIME, "%s: cannot start the HDF5 reader (pipe: %s)", path, strerror(errno));
    /* the verdict needs the child's exit status: undo an inherited SIG_IGN for SIGCHLD (which would make
       the kernel reap the child and waitpid fail with ECHILD) while the child runs */
    struct sigaction old_chld, dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, &old_chld);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]); close(fds[1]);
        sigaction(SIGCHLD, &old_chld, NULL);
#ifdef SAESTEER_H5_INPROCESS_FALLBACK   /* the fuzz build (tests/fuzz/shim_nofork.c): read in-process */
        (void)e;
        return h5_read_fd(fd, size, path, d, err);
#else
        return ss_fail(err, SS_ERUNTIME, "%s: cannot start the HDF5 reader (fork: %s)", path, strerror(e));
#endif
    }
    if (pid == 0) {
        close(fds[0]);
        int devnull = open("/dev/null", O_WRONLY);   /* glibc's own abort messages */
        if (devnull >= 0) dup2(devnull, 2);
        signal(SIGALRM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        /* the CLI's handlers would print a second message and touch the parent's temporaries;
           a Ctrl-C reaches the whole process group: the parent decides, the child finishes or gets EPIPE */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        alarm(H5_PROBE_SECONDS + (unsigned)(size >> 24));
        limit_memory();
        h5_probe_mode = 1;
        h5_quiet();
        char msg[1 + SS_ERRLEN] = {0};
        sae_dict *c = calloc(1, sizeof *c);
        if (!c) { msg[0] = SS_ERUNTIME; snprintf(msg + 1, SS_ERRLEN, "%s: out of memory", path); }
        else msg[0] = (char)h5_read_fd(fd, size, path, c, msg + 1);
        H5close();   /* the library's teardown trips over a heap it corrupted: before anything is sent */
        if (write_all(fds[1], msg, sizeof msg)) _exit(1);
        if (msg[0] == SS_OK && wire_send(fds[1], c)) _exit(1);
        sae_free(c);   /* a leak here is an error exit under valgrind --error-exitcode */
        _exit(0);
    }
    close(fds[1]);
    char msg[1 + SS_ERRLEN];
    int got_msg = read_all(fds[0], msg, sizeof msg) == 0;
    int rc = SS_OK;
    char werr[SS_ERRLEN] = "";
    if (got_msg && msg[0] == SS_OK) rc = wire_recv(fds[0], d, path, werr);
    close(fds[0]);
    int status = 0, waited;
    while ((waited = (int)waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    int wait_errno = errno;
    sigaction(SIGCHLD, &old_chld, NULL);
    if (waited < 0)
        return ss_fail(err, SS_ERUNTIME, "%s: lost the HDF5 reader's exit status (waitpid: %s); not using the file",
                       path, strerror(wait_errno));
    if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM)
            return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (reading it did not finish in %u s)", path,
                           H5_PROBE_SECONDS + (unsigned)(size >> 24));
        return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (the HDF5 library crashed reading it)", path);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !got_msg)   /* e.g. a sanitizer's abort */
        return ss_fail(err, SS_EINPUT, "%s: corrupt HDF5 file (the HDF5 library failed reading it)", path);
    if (msg[0] != SS_OK) {
        msg[SS_ERRLEN] = '\0';
        return ss_fail(err, msg[0] == SS_ERUNTIME ? SS_ERUNTIME : SS_EINPUT, "%s", msg + 1);
    }
    if (rc) return ss_fail(err, rc, "%s", werr);
    return SS_OK;
}

int sae_load_h5(sae_dict **out, const char *path, char *err) {
    *out = NULL;
    h5_quiet();
    /* one descriptor for the checks and the read; O_NONBLOCK so that a FIFO does not hang the open */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ss_fail(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ss_fail(err, SS_EINPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > ((uint64_t)1 << 40)) {
        close(fd);
        return ss_fail(err, SS_EINPUT, "%s: file too large for a dictionary (%lld bytes)", path, (long long)st.st_size);
    }
    ss_input_note(fd);
    h5_file_size = (hsize_t)st.st_size;
    sae_dict *d = calloc(1, sizeof *d);
    if (!d) { close(fd); return ss_fail(err, SS_ERUNTIME, "out of memory"); }
    int rc = h5_read_forked(fd, (size_t)st.st_size, path, d, err);
    close(fd);
    sae_strlcpy(d->path, path, sizeof d->path);
    if (!rc) rc = sae_validate(d, path, err);
    if (rc) { sae_free(d); return rc; }
    *out = d;
    return SS_OK;
}
