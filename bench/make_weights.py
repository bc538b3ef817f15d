#!/usr/bin/python3
"""Write random GPT-2 weights as an HF-layout directory (config.json,
model.safetensors, tokenizer files) for benchmarks. Not committed: rerun
`/usr/bin/python3 bench/make_weights.py bench/data/gpt2-small` to recreate.

Sizes: --size small (12 layers, 768 wide, 124M params) by default; medium,
large and xl as OpenAI's (xl: 48 layers, 1600 wide, 25 heads, 1.56B params,
6.2 GB in f32); tiny for quick checks. --n-layer/--n-embd/--n-head/
--n-positions override one field of the size (the test scripts use these). Weights use HF's init (normal std 0.02, LN 1/0) perturbed a
little so nothing is degenerate. Writes f32 unless --dtype f16.
"""
import argparse, json, os, shutil, struct, sys
import numpy as np

SIZES = {
    "small": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
    "medium": dict(n_layer=24, n_embd=1024, n_head=16, n_positions=1024),
    "large": dict(n_layer=36, n_embd=1280, n_head=20, n_positions=1024),
    "xl": dict(n_layer=48, n_embd=1600, n_head=25, n_positions=1024),
    "tiny": dict(n_layer=2, n_embd=64, n_head=4, n_positions=128),
}


def save_safetensors(path, tensors):
    """Minimal safetensors writer: header JSON + raw little-endian bytes."""
    header, offset = {}, 0
    for name, arr in tensors.items():
        dt = {np.float32: "F32", np.float16: "F16"}[arr.dtype.type]
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for arr in tensors.values():   # one tensor at a time: GPT-2 XL is 6.2 GB
            f.write(np.ascontiguousarray(arr).tobytes())
        # Leave the file on disk but out of the page cache, as a model is
        # after a download and a reboot. Written pages sit in the cache in
        # 4 KiB folios; the first reader now brings the file in, and when that
        # is saesteer's 2 MiB-aligned MADV_HUGEPAGE mapping, in 2 MiB folios
        # (see lib/safetensors.c: on shadow-paged VMs this is worth ~0.3 s a run).
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size", default="small", choices=SIZES)
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    ap.add_argument("--seed", type=int, default=0)
    for k in ("n_layer", "n_embd", "n_head", "n_positions"):   # override one field of --size
        ap.add_argument("--" + k.replace("_", "-"), type=int, dest=k)
    a = ap.parse_args()
    size = {k: getattr(a, k) or v for k, v in SIZES[a.size].items()}
    cfg = dict(size, vocab_size=50257, layer_norm_epsilon=1e-5, model_type="gpt2",
               activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256)
    L, C, V, P = cfg["n_layer"], cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    rng = np.random.default_rng(a.seed)
    dt = np.float32 if a.dtype == "f32" else np.float16
    r = lambda *s, std=0.02: (rng.standard_normal(s, dtype=np.float32) * std).astype(dt)
    t = {"transformer.wte.weight": r(V, C), "transformer.wpe.weight": r(P, C, std=0.01),
         "transformer.ln_f.weight": (1 + r(C, std=0.1)).astype(dt), "transformer.ln_f.bias": r(C)}
    for l in range(L):
        p = f"transformer.h.{l}."
        t.update({p + "ln_1.weight": (1 + r(C, std=0.1)).astype(dt), p + "ln_1.bias": r(C),
                  p + "attn.c_attn.weight": r(C, 3 * C), p + "attn.c_attn.bias": r(3 * C),
                  p + "attn.c_proj.weight": r(C, C), p + "attn.c_proj.bias": r(C),
                  p + "ln_2.weight": (1 + r(C, std=0.1)).astype(dt), p + "ln_2.bias": r(C),
                  p + "mlp.c_fc.weight": r(C, 4 * C), p + "mlp.c_fc.bias": r(4 * C),
                  p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C)})
    os.makedirs(a.out, exist_ok=True)
    save_safetensors(os.path.join(a.out, "model.safetensors"), t)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    here = os.path.dirname(os.path.abspath(__file__))
    for fn in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(here, "..", "weights", "gpt2-tokenizer", fn), os.path.join(a.out, fn))
    print(f"wrote {a.out}: {sum(x.size for x in t.values()) / 1e6:.1f}M parameters ({a.dtype})", file=sys.stderr)


if __name__ == "__main__":
    main()
