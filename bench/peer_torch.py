#!/usr/bin/python3
"""The PyTorch CPU peer for the benchmark: GPT-2 with HF semantics (Conv1D
weights (in, out), gelu_new, tied lm_head, KV cache), loading the same
safetensors file, greedy decoding. Prints one JSON line of timings.

  /usr/bin/python3 bench/peer_torch.py MODEL_DIR --ids 50256,464,... --new 64 [--threads 1]
  (--dump-logits OUT.npy writes the prompt's logits for a correctness check)
"""
import argparse, json, math, struct, time
import numpy as np
import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16, "BF16": None}[e["dtype"]]
        b, en = e["data_offsets"]
        arr = np.frombuffer(data[b:en], dtype=dt).reshape(e["shape"])
        out[name.removeprefix("transformer.")] = torch.from_numpy(arr.astype(np.float32))
    return out


def forward(w, cfg, ids, cache, pos0, all_logits=False):
    """ids (T,) new tokens after pos0 cached ones -> logits (T, V), or (1, V)
    for the last position only (what generation needs, as saesteer does)."""
    C, H = cfg["n_embd"], cfg["n_head"]
    T = ids.shape[0]
    x = w["wte.weight"][ids] + w["wpe.weight"][pos0:pos0 + T]
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), w[p + ".weight"], w[p + ".bias"], cfg["layer_norm_epsilon"])
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        if l in cache:
            k = torch.cat([cache[l][0], k]); v = torch.cat([cache[l][1], v])
        cache[l] = (k, v)
        N = k.shape[0]
        q = q.view(T, H, -1).transpose(0, 1); k = k.view(N, H, -1).transpose(0, 1); v = v.view(N, H, -1).transpose(0, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        mask = torch.arange(N)[None, :] > (torch.arange(T)[:, None] + pos0)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        z = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + z @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        h = torch.nn.functional.gelu(h, approximate="tanh")
        x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    if not all_logits:
        x = x[-1:]
    return ln(x, "ln_f") @ w["wte.weight"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dump-logits")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cfg = json.load(open(a.model + "/config.json"))
    w = load_safetensors(a.model + "/model.safetensors")
    load_s = time.perf_counter() - t0
    ids = torch.tensor([int(x) for x in a.ids.split(",")])
    with torch.inference_mode():
        cache = {}
        t1 = time.perf_counter()
        logits = forward(w, cfg, ids, cache, 0)
        prefill_s = time.perf_counter() - t1
        if a.dump_logits:
            np.save(a.dump_logits, forward(w, cfg, ids, {}, 0, all_logits=True).numpy())
        toks, pos = [], ids.shape[0]
        t2 = time.perf_counter()
        nxt = int(logits[-1].argmax())
        for i in range(a.new):
            toks.append(nxt)
            if i + 1 == a.new:
                break
            logits = forward(w, cfg, torch.tensor([nxt]), cache, pos)
            pos += 1
            nxt = int(logits[-1].argmax())
        decode_s = time.perf_counter() - t2
    print(json.dumps({"tokens": toks, "load_s": load_s, "prefill_s": prefill_s, "prefill_tokens": int(ids.shape[0]),
                      "decode_s": decode_s, "new_tokens": len(toks), "threads": a.threads}))


if __name__ == "__main__":
    main()
