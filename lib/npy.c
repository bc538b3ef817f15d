/* npy.c - NumPy .npy / .npz files.
 *
 * .npy: magic "\x93NUMPY", version (1.0, 2.0 or 3.0), header length (2 or 4
 * bytes LE), a Python-dict header {'descr': '<f4', 'fortran_order': False,
 * 'shape': (T, C), } padded to 64 bytes, then the raw data.
 * .npz: a zip archive of NAME.npy members (np.savez: stored; savez_compressed:
 * deflate). We write stored members and read both.
 */
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void npy_free(npy_array *a) {
    if (a) { free(a->data); memset(a, 0, sizeof *a); }
}

/* Parse an .npy image held in memory. `what` names it in errors. */
static int npy_parse(npy_array *a, const unsigned char *buf, size_t len, const char *what, char *err) {
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return ss_fail(err, SS_EINPUT, "%s: not a .npy file (bad magic)", what);
    int major = buf[6];
    size_t hlen, hstart;
    if (major == 1) { hlen = buf[8] | (size_t)buf[9] << 8; hstart = 10; }
    else if (major == 2 || major == 3) {
        if (len < 12) return ss_fail(err, SS_EINPUT, "%s: truncated .npy header", what);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    } else return ss_fail(err, SS_EINPUT, "%s: unsupported .npy version %d", what, major);
    if (hlen > len - hstart || hlen > 65536) return ss_fail(err, SS_EINPUT, "%s: .npy header runs past end of file", what);
    char hdr[65537];
    memcpy(hdr, buf + hstart, hlen);
    hdr[hlen] = '\0';
    const char *d = strstr(hdr, "'descr'");
    const char *fo = strstr(hdr, "'fortran_order'");
    const char *sh = strstr(hdr, "'shape'");
    if (!d || !fo || !sh) return ss_fail(err, SS_EINPUT, "%s: .npy header lacks descr/fortran_order/shape", what);
    char descr[16] = "";
    if (sscanf(d, "'descr' : '%15[^']'", descr) != 1 && sscanf(d, "'descr': '%15[^']'", descr) != 1)
        return ss_fail(err, SS_EINPUT, "%s: cannot read descr", what);
    size_t esize;
    if (strcmp(descr, "<f4") == 0 || strcmp(descr, "=f4") == 0) esize = 4;
    else if (strcmp(descr, "<f8") == 0 || strcmp(descr, "=f8") == 0) esize = 8;
    else if (strcmp(descr, "<f2") == 0 || strcmp(descr, "=f2") == 0) esize = 2;
    else return ss_fail(err, SS_EINPUT, "%s: dtype '%s' not supported (need float32, float64 or float16)", what, descr);
    /* the value after the key, however it is spaced: True, False, or an error */
    const char *fv = fo + strlen("'fortran_order'");
    while (*fv == ' ') fv++;
    if (*fv == ':') fv++;
    while (*fv == ' ') fv++;
    if (!strncmp(fv, "True", 4))
        return ss_fail(err, SS_EINPUT, "%s: fortran_order arrays are not supported (save with C order)", what);
    if (strncmp(fv, "False", 5) != 0) return ss_fail(err, SS_EINPUT, "%s: cannot read fortran_order", what);
    const char *p = strchr(sh, '(');
    if (!p) return ss_fail(err, SS_EINPUT, "%s: cannot read shape", what);
    p++;
    a->numel = 1;
    while (1) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > (1LL << 40)) return ss_fail(err, SS_EINPUT, "%s: bad shape entry", what);
        if (a->ndim >= NPY_MAX_DIMS) return ss_fail(err, SS_EINPUT, "%s: too many dimensions", what);
        a->shape[a->ndim++] = v;
        if (v && a->numel > (1LL << 40) / v) return ss_fail(err, SS_EINPUT, "%s: shape too large", what);
        a->numel *= v;
        p = end;
    }
    size_t data_off = hstart + hlen;
    if ((size_t)a->numel * esize > len - data_off)
        return ss_fail(err, SS_EINPUT, "%s: data truncated (%zu bytes, shape needs %zu)", what, len - data_off,
                       (size_t)a->numel * esize);
    a->data = ss_malloc2((size_t)a->numel, sizeof(float));
    if (!a->data) return ss_fail(err, SS_ERUNTIME, "%s: out of memory", what);
    const unsigned char *src = buf + data_off;
    for (int64_t i = 0; i < a->numel; i++) {
        if (esize == 4) memcpy(&a->data[i], src + 4 * i, 4);
        else if (esize == 8) { double v; memcpy(&v, src + 8 * i, 8); a->data[i] = (float)v; }
        else {
            uint16_t h; memcpy(&h, src + 2 * i, 2);
            uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, mnt = h & 0x3FF, bits;
            if (e == 0) {
                float f = (float)mnt / 16777216.0f;   /* subnormal: mnt * 2^-24 */
                a->data[i] = sign ? -f : f;
                continue;
            }
            bits = e == 31 ? (sign | 0x7F800000 | (mnt << 13)) : (sign | ((e + 112) << 23) | (mnt << 13));
            memcpy(&a->data[i], &bits, 4);
        }
    }
    return SS_OK;
}

int npy_load(npy_array *a, const char *path, char *err) {
    char *buf;
    size_t len;
    int rc = ss_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = npy_parse(a, (unsigned char *)buf, len, path, err);
    free(buf);
    return rc;
}

/* Build the .npy header for a float32 array into hdr; returns its length. */
static size_t npy_header(char *hdr, int ndim, const int64_t *shape) {
    char dict[512], shp[256] = "";
    for (int i = 0; i < ndim; i++) /* numpy writes (3, 4) and (3,) */
        snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (ndim == 1) strcat(shp, ",");
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shp);
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    size_t hl = (size_t)n + pad + 1;
    hdr[8] = (char)(hl & 0xFF);
    hdr[9] = (char)(hl >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', pad);
    hdr[10 + n + pad] = '\n';
    return 10 + hl;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int npy_save(const char *path, const float *data, int ndim, const int64_t *shape, char *err) {
    ss_outfile o;
    int rc = ss_out_open(&o, path, err);
    if (rc) return rc;
    char hdr[1024];
    size_t hl = npy_header(hdr, ndim, shape);
    size_t n = (size_t)numel_of(ndim, shape);
    FILE *f = o.fp;
    if (fwrite(hdr, 1, hl, f) != hl || (n && fwrite(data, sizeof(float), n, f) != n)) {
        ss_out_abort(&o);
        return ss_fail(err, SS_ERUNTIME, "%s: write failed", path);
    }
    return ss_out_commit(&o, err);
}

/* ------------------------------------------------------------------ npz --- */

static void put16(unsigned char *p, unsigned v) { p[0] = v & 0xFF; p[1] = (v >> 8) & 0xFF; }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xFF; }
static uint32_t get32(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned get16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }

int npz_save(const char *path, const npz_entry *e, int n, char *err) {
    ss_outfile o;
    int rc = ss_out_open(&o, path, err);
    if (rc) return rc;
    FILE *f = o.fp;
    unsigned char *central = ss_calloc((size_t)n, 46 + 512);
    size_t clen = 0;
    uint32_t offset = 0;
    for (int i = 0; i < n && !rc; i++) {
        char name[300], hdr[1024];
        snprintf(name, sizeof name, "%s.npy", e[i].name);
        size_t nl = strlen(name), hl = npy_header(hdr, e[i].ndim, e[i].shape);
        size_t dbytes = (size_t)numel_of(e[i].ndim, e[i].shape) * 4;
        uint64_t size = hl + dbytes;
        if (size > 0xFFFFFFF0u || (uint64_t)offset + size + 30 + nl > 0xFFFFFFF0u) {
            rc = ss_fail(err, SS_EINPUT, "%s: arrays too large for a non-zip64 .npz", path);
            break;
        }
        uint32_t crc = crc32(0L, (const Bytef *)hdr, (uInt)hl);
        crc = crc32(crc, (const Bytef *)e[i].data, (uInt)dbytes);
        unsigned char lh[30] = {0x50, 0x4b, 0x03, 0x04};
        put16(lh + 4, 20); put16(lh + 6, 0); put16(lh + 8, 0);   /* version, flags, stored */
        put32(lh + 14, crc); put32(lh + 18, (uint32_t)size); put32(lh + 22, (uint32_t)size);
        put16(lh + 26, (unsigned)nl); put16(lh + 28, 0);
        if (fwrite(lh, 1, 30, f) != 30 || fwrite(name, 1, nl, f) != nl || fwrite(hdr, 1, hl, f) != hl ||
            (dbytes && fwrite(e[i].data, 1, dbytes, f) != dbytes)) {
            rc = ss_fail(err, SS_ERUNTIME, "%s: write failed", path);
            break;
        }
        unsigned char *ch = central + clen;
        memset(ch, 0, 46);
        put32(ch, 0x02014b50); put16(ch + 4, 20); put16(ch + 6, 20);
        put32(ch + 16, crc); put32(ch + 20, (uint32_t)size); put32(ch + 24, (uint32_t)size);
        put16(ch + 28, (unsigned)nl); put32(ch + 42, offset);
        memcpy(ch + 46, name, nl);
        clen += 46 + nl;
        offset += (uint32_t)(30 + nl + size);
    }
    if (!rc) {
        unsigned char end[22] = {0x50, 0x4b, 0x05, 0x06};
        put16(end + 8, (unsigned)n); put16(end + 10, (unsigned)n);
        put32(end + 12, (uint32_t)clen); put32(end + 16, offset);
        if (fwrite(central, 1, clen, f) != clen || fwrite(end, 1, 22, f) != 22)
            rc = ss_fail(err, SS_ERUNTIME, "%s: write failed", path);
    }
    free(central);
    if (rc) { ss_out_abort(&o); return rc; }
    return ss_out_commit(&o, err);
}

int npz_load(npy_array *a, const char *path, const char *key, char *err) {
    memset(a, 0, sizeof *a);
    char *buf;
    size_t len;
    int rc = ss_read_file(path, &buf, &len, err);
    if (rc) return rc;
    const unsigned char *b = (unsigned char *)buf;
    char want[300];
    snprintf(want, sizeof want, "%s.npy", key);
    /* find the end-of-central-directory record */
    long eocd = -1;
    for (long i = (long)len - 22; i >= 0 && i >= (long)len - 22 - 65535; i--)
        if (get32(b + i) == 0x06054b50) { eocd = i; break; }
    if (eocd < 0) { free(buf); return ss_fail(err, SS_EINPUT, "%s: not a zip/.npz file", path); }
    unsigned n = get16(b + eocd + 10);
    size_t cd = get32(b + eocd + 16);
    rc = ss_fail(err, SS_EINPUT, "%s: no array named '%s'", path, key);
    for (unsigned i = 0; i < n; i++) {
        if (cd + 46 > len || get32(b + cd) != 0x02014b50) { rc = ss_fail(err, SS_EINPUT, "%s: corrupt zip directory", path); break; }
        unsigned method = get16(b + cd + 10), nl = get16(b + cd + 28), xl = get16(b + cd + 30), cl = get16(b + cd + 32);
        size_t csize = get32(b + cd + 20), usize = get32(b + cd + 24), loff = get32(b + cd + 42);
        if (cd + 46 + nl > len) { rc = ss_fail(err, SS_EINPUT, "%s: corrupt zip directory", path); break; }
        if (nl == strlen(want) && memcmp(b + cd + 46, want, nl) == 0) {
            if (loff + 30 > len || get32(b + loff) != 0x04034b50) { rc = ss_fail(err, SS_EINPUT, "%s: corrupt zip entry", path); break; }
            size_t doff = loff + 30 + get16(b + loff + 26) + get16(b + loff + 28);
            if (doff > len || csize > len - doff) { rc = ss_fail(err, SS_EINPUT, "%s: zip entry '%s' truncated", path, want); break; }
            if (method == 0) rc = npy_parse(a, b + doff, csize, path, err);
            else if (method == 8) {
                /* deflate expands at most 1032:1: a bigger claimed size is a corrupt directory, not a
                   reason to allocate up to 4 GB */
                if (usize / 1032 > csize + 1) {
                    rc = ss_fail(err, SS_EINPUT, "%s: zip entry '%s': size %zu impossible for %zu compressed bytes", path,
                                 want, usize, csize);
                    break;
                }
                unsigned char *out = malloc(usize ? usize : 1);
                z_stream zs;
                memset(&zs, 0, sizeof zs);
                if (!out || inflateInit2(&zs, -15) != Z_OK) { free(out); rc = ss_fail(err, SS_ERUNTIME, "%s: inflate init", path); break; }
                zs.next_in = (Bytef *)(b + doff); zs.avail_in = (uInt)csize;
                zs.next_out = out; zs.avail_out = (uInt)usize;
                int zr = inflate(&zs, Z_FINISH);
                inflateEnd(&zs);
                if (zr != Z_STREAM_END || zs.total_out != usize)   /* short: the tail would be uninitialised */
                    rc = ss_fail(err, SS_EINPUT, "%s: entry '%s' does not inflate to its stated size", path, want);
                else rc = npy_parse(a, out, usize, path, err);
                free(out);
            } else rc = ss_fail(err, SS_EINPUT, "%s: zip method %u not supported", path, method);
            break;
        }
        cd += 46 + nl + xl + cl;
    }
    free(buf);
    return rc;
}
