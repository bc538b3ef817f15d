#!/usr/bin/env python3
"""Write a random GPT-J-6B-shaped bf16 checkpoint (28 layers, 4096 wide, 16 heads, rotary_dim 64,
vocab 50400, 12.1 GB) in HF's sharded safetensors layout, one tensor at a time (numpy only; memory
stays ~100 MB). For the README's memory/speed figures: `saesteer generate --model DIR ...` under
/usr/bin/time -v. Values: a fixed random block of N(0, 0.02) reused at a different offset per tensor
(layer norms 1 and 0), enough for a forward pass with sane activations; not a trained model.

    python3 bench/make_gptj6b.py DIR        # then: rm -rf DIR when done
"""
import json
import os
import struct
import sys

import numpy as np

L, C, NH, R, V, P = 28, 4096, 16, 64, 50400, 2048
F = 4 * C
SHARD = 2 << 30


def tensors():
    yield "transformer.wte.weight", (V, C), "m"
    for i in range(L):
        p = "transformer.h.%d." % i
        yield p + "ln_1.weight", (C,), "one"
        yield p + "ln_1.bias", (C,), "zero"
        for w in ("q_proj", "k_proj", "v_proj", "out_proj"):
            yield p + "attn.%s.weight" % w, (C, C), "m"
        yield p + "mlp.fc_in.weight", (F, C), "m"
        yield p + "mlp.fc_in.bias", (F,), "zero"
        yield p + "mlp.fc_out.weight", (C, F), "m"
        yield p + "mlp.fc_out.bias", (C,), "zero"
    yield "transformer.ln_f.weight", (C,), "one"
    yield "transformer.ln_f.bias", (C,), "zero"
    yield "lm_head.weight", (V, C), "m"
    yield "lm_head.bias", (V,), "zero"


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    block = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).view(np.uint32) >> 16
    block = block.astype(np.uint16)
    shards, cur, size = [], [], 0
    for name, shape, kind in tensors():
        n = int(np.prod(shape)) * 2
        if cur and size + n > SHARD:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape, kind))
        size += n
    shards.append(cur)
    wm, total, k = {}, 0, 0
    for si, sh in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (si + 1, len(shards))
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape, kind in sh:
            n = int(np.prod(shape)) * 2
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
            wm[name] = fn
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(os.path.join(d, fn), "wb") as fh:
            fh.write(struct.pack("<Q", len(h)))
            fh.write(h)
            for name, shape, kind in sh:
                numel = int(np.prod(shape))
                if kind == "one":
                    a = np.full(numel, 0x3F80, np.uint16)
                elif kind == "zero":
                    a = np.zeros(numel, np.uint16)
                else:
                    k += 7919
                    a = np.resize(np.roll(block, k), numel)
                fh.write(a.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        total += off
        print(fn, "%.2f GB" % (off / 1e9), flush=True)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, fh)
    cfg = {"architectures": ["GPTJForCausalLM"], "model_type": "gptj", "vocab_size": V, "n_positions": P,
           "n_embd": C, "n_layer": L, "n_head": NH, "rotary_dim": R, "n_inner": None,
           "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": 50256,
           "eos_token_id": 50256, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
    print("total %.2f GB" % (total / 1e9))


if __name__ == "__main__":
    main()
