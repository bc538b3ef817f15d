#!/usr/bin/python3
"""h5_hostile.py GOOD.h5 OUTDIR [FOREIGN_DIR] - dictionaries that try to make the reader use other files.

Each is GOOD.h5 (a valid saesteer dictionary) with one dataset replaced by something that lives outside
the file: external raw storage (h5py's external=), an external link, a soft link, a virtual dataset, or
a filter that is not built into HDF5 (it would load a plugin). The foreign files are written to
FOREIGN_DIR (default OUTDIR): canary.txt and canary.bin hold bytes that must never appear in any output,
other.h5 and vsrc.h5 hold a copy of W_dec. saesteer must refuse every one of these files with exit 2
before reading any of them (tests/cli_h5hostile.sh; tests/fuzz/make_corpus.py seeds fuzz_h5 with them).
"""
import os, shutil, sys

import h5py
import numpy as np

CANARY = "CANARY-FOREIGN-BYTES-"


def make(good, out, foreign=None):
    foreign = foreign or out
    os.makedirs(out, exist_ok=True)
    os.makedirs(foreign, exist_ok=True)
    canary_txt, canary_bin = os.path.join(foreign, "canary.txt"), os.path.join(foreign, "canary.bin")
    open(canary_txt, "w").write(CANARY * 200 + "\n")
    np.full(1 << 16, 12345.0, np.float32).tofile(canary_bin)   # 12345 never occurs in a real dictionary
    made = []

    def variant(name, mut):
        p = os.path.join(out, name + ".h5")
        shutil.copy(good, p)
        with h5py.File(p, "r+") as f:
            mut(f)
        made.append(p)

    def ext_labels(f):   # the case: labels "stored" in another file (there /etc/passwd)
        n = int(f.attrs["d_sae"])
        if "labels" in f:
            del f["labels"]
        f.create_dataset("labels", (n,), "S16", external=[(canary_txt, 0, 16 * n)])

    def ext_raw(f):
        a = f["b_dec"][...]
        del f["b_dec"]
        f.create_dataset("b_dec", a.shape, "<f4", external=[(canary_bin, 0, a.nbytes)])

    def ext_link(f):
        a = f["W_dec"][...]
        with h5py.File(os.path.join(foreign, "other.h5"), "w") as o:
            o["W_dec"] = np.full_like(a, 12345.0)
        del f["W_dec"]
        f["W_dec"] = h5py.ExternalLink(os.path.join(foreign, "other.h5"), "W_dec")

    def soft_link(f):
        f["W_dec_real"] = f["W_dec"][...]
        del f["W_dec"]
        f["W_dec"] = h5py.SoftLink("/W_dec_real")

    def virtual(f):
        a = f["W_dec"][...]
        with h5py.File(os.path.join(foreign, "vsrc.h5"), "w") as o:
            o["data"] = np.full_like(a, 12345.0)
        lay = h5py.VirtualLayout(shape=a.shape, dtype="<f4")
        lay[...] = h5py.VirtualSource(os.path.join(foreign, "vsrc.h5"), "data", shape=a.shape)
        del f["W_dec"]
        f.create_virtual_dataset("W_dec", lay)

    def unknown_filter(f):
        a = f["W_enc"][...]
        del f["W_enc"]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(a.shape)
        dcpl.set_filter(32000, h5py.h5z.FLAG_OPTIONAL, ())   # LZF's registered id: a plugin, not built in
        sp = h5py.h5s.create_simple(a.shape)
        h5py.h5d.create(f.id, b"W_enc", h5py.h5t.IEEE_F32LE, sp, dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, a)

    variant("h5_external_labels", ext_labels)
    variant("h5_external_raw", ext_raw)
    variant("h5_external_link", ext_link)
    variant("h5_soft_link", soft_link)
    variant("h5_virtual", virtual)
    variant("h5_unknown_filter", unknown_filter)
    return made


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    for p in make(*sys.argv[1:]):
        print(p)
