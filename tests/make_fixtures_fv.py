#!/usr/bin/env python3
"""Reference fixtures for saesteer's contrastive vectors, ActAdd, task vectors and function vectors.

HOW TO RERUN
  On a machine with HuggingFace transformers + torch (the GPU machine through the `device` tool;
  CPU is enough, everything is float64 on the CPU), from the repository root, after
  tests/make_fixtures.py has made tests/fixtures/tiny-sp:

      python3 tests/make_fixtures_fv.py --model tests/fixtures/tiny-sp --out tests/fixtures/fv

  Without transformers (a CPU box with Debian's python3-torch) the same logic runs on an
  independent plain-torch GPT-2 and the saesteer binary's tokenizer, to test the script itself:

      /usr/bin/python3 tests/make_fixtures_fv.py --dry-run --saesteer build/saesteer \\
          --model bench/data/tiny --out /tmp/fvdry

  Nothing is random: the prompts are fixed lists below.

WHAT IS MADE (all float32 .npy unless said; the C tests in tests/test_vectors.c and tests/test_fv.c
compare whole tensors against them)
  pairs4.jsonl, pairs20.jsonl   prompt pairs (JSON lines {"positive", "negative"})
  vec_mean4/20.npy, vec_pca4/20.npy  (C,) at blocks.0.hook_resid_post, last token, BOS prepended:
                                mean of positive - negative; pca = first right singular vector of the
                                (uncentred) difference matrix, sign so that the positives project
                                higher, scaled to the mean difference's norm
  actadd.npy                    (P, C) per-position differences at blocks.0.hook_resid_post of
                                ACTADD_POS vs ACTADD_NEG, the shorter right-padded with " " (220)
  fv.json                       the ICL prompts (ids and answer token of " y"), layer, top_k, heads
  zbar.npy (L, C)               mean over clean prompts of attn.hook_z (the input of attn.c_proj) at
                                the last token
  cie.npy (L, NH)               mean over shuffled-label prompts of p(answer | head h's z at the last
                                token replaced by zbar[l, h]) - p(answer), by full recomputation
  fv.npy (C,)                   sum over the top-K heads of zbar[l,h] @ c_proj.weight[h*HS:(h+1)*HS]
                                + c_proj.bias once per distinct layer among them
  fv_logits.npy (Z, V)          last-position logits of the zero-shot prompts with fv added to the
                                output of block LAYER at the last position
  fv_greedy.json                greedy tokens of zero-shot prompt 0 with fv added at every position
                                >= the prompt's last (= at the last position of every decode step)
  tv_h.npy (C,)                 mean over clean prompts of the output of block LAYER at the last token
  tv_logits.npy (Z, V)          zero-shot logits with that residual replaced by tv_h
  gguf_py.gguf + gguf_py.npy    (only where the `gguf` package is installed) a control vector written
                                by llama.cpp's own gguf-py GGUFWriter, to read back in C
  meta.json                     versions, backend, self-checks
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

LAYER = 0          # FV / task vector layer: the output of block 0
TOP_K = 3
HOOK = "blocks.0.hook_resid_post"

PAIRS4 = [
    ("I love this movie, it is wonderful", "I hate this movie, it is terrible"),
    ("The weather today is sunny and warm", "The weather today is cold and grey"),
    ("She smiled", "She cried"),
    ("What a great idea!", "What an awful idea!"),
]
WORDS = ["happy", "good", "kind", "bright", "calm", "rich", "brave", "warm", "clean", "fast",
         "strong", "young", "light", "soft", "loud", "early", "safe", "sweet", "true", "open"]
ANTI = ["sad", "bad", "cruel", "dark", "angry", "poor", "afraid", "cold", "dirty", "slow",
        "weak", "old", "heavy", "hard", "quiet", "late", "risky", "bitter", "false", "closed"]
PAIRS20 = [("I feel " + a + " today", "I feel " + b + " today") for a, b in zip(WORDS, ANTI)]
ACTADD_POS = "I love talking about weddings"
ACTADD_NEG = "I hate"

DATASET = [{"input": a, "output": b} for a, b in
           [("hot", "cold"), ("up", "down"), ("big", "small"), ("fast", "slow"),
            ("good", "bad"), ("old", "new"), ("open", "closed"), ("light", "dark")]]
N_ICL = 4          # clean/shuffled prompts
N_ZERO = 2         # zero-shot prompts whose logits are stored


def icl_text(shots, q, labels=None):
    s = ""
    for i, k in enumerate(shots):
        y = DATASET[labels[i]]["output"] if labels else DATASET[k]["output"]
        s += "Q: %s\nA: %s\n\n" % (DATASET[k]["input"], y)
    return s + "Q: %s\nA:" % DATASET[q]["input"]


# ------------------------------------------------------------ safetensors ---
def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16, "BF16": None}[v["dtype"]]
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
        out[k[len("transformer."):] if k.startswith("transformer.") else k] = torch.tensor(arr.astype(np.float64))
    return out


# --------------------------------------------------------- plain torch GPT-2 ---
class TorchGPT2:
    """float64 GPT-2 from the safetensors file (HF semantics: Conv1D (in, out), gelu_new)."""

    def __init__(self, d):
        self.cfg = json.load(open(os.path.join(d, "config.json")))
        self.W = load_st(os.path.join(d, "model.safetensors"))
        self.L, self.C, self.NH = self.cfg["n_layer"], self.cfg["n_embd"], self.cfg["n_head"]
        self.eps = self.cfg.get("layer_norm_epsilon", 1e-5)

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, (self.C,), self.W[p + ".weight"], self.W[p + ".bias"], self.eps)

    def run(self, ids, z_patch=None, resid_edit=None):
        """z_patch: (layer, head, vec) replaces head's z at the last position.
        resid_edit: (layer, mode, vec, first_pos) adds ('add') or sets ('set') the output of block
        layer at positions >= first_pos. Returns last logits (V), z at the last token (L, C), the
        output of every block (L, T, C)."""
        W, C, NH = self.W, self.C, self.NH
        HS = C // NH
        T = len(ids)
        x = W["wte.weight"][ids] + W["wpe.weight"][:T]
        zs, outs = [], []
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for l in range(self.L):
            p = "h.%d." % l
            h = self.ln(x, p + "ln_1")
            qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
            q, k, v = qkv.split(C, dim=-1)
            q, k, v = [t.view(T, NH, HS).transpose(0, 1) for t in (q, k, v)]
            att = (q @ k.transpose(-1, -2)) / np.sqrt(HS)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            z = (att @ v).transpose(0, 1).reshape(T, C).clone()
            if z_patch is not None and z_patch[0] == l:
                hh = z_patch[1]
                z[T - 1, hh * HS:(hh + 1) * HS] = z_patch[2]
            zs.append(z[T - 1].clone())
            x = x + z @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
            h = self.ln(x, p + "ln_2")
            m = h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"]
            m = 0.5 * m * (1 + torch.tanh(np.sqrt(2 / np.pi) * (m + 0.044715 * m ** 3)))
            x = x + m @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
            if resid_edit is not None and resid_edit[0] == l:
                _, mode, vec, first = resid_edit
                x = x.clone()
                if mode == "add":
                    x[first:] = x[first:] + vec
                else:
                    x[first:] = vec
            outs.append(x.clone())
        xf = self.ln(x, "ln_f")
        logits = xf[T - 1] @ W["wte.weight"].T
        return logits, torch.stack(zs), torch.stack(outs)

    def c_proj(self, l):
        return self.W["h.%d.attn.c_proj.weight" % l], self.W["h.%d.attn.c_proj.bias" % l]


# ------------------------------------------------------------ HF transformers ---
class HFGPT2:
    """The same interface on transformers' GPT2LMHeadModel (float64, eager attention), with hooks:
    z = the input of attn.c_proj, the output of block l = transformer.h[l]'s output[0]."""

    def __init__(self, d):
        from transformers import GPT2LMHeadModel
        self.m = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager").double().eval()
        self.cfg = self.m.config.to_dict()
        self.L, self.C, self.NH = self.m.config.n_layer, self.m.config.n_embd, self.m.config.n_head

    @torch.no_grad()
    def run(self, ids, z_patch=None, resid_edit=None):
        tr, C, NH = self.m.transformer, self.C, self.NH
        HS = C // NH
        T = len(ids)
        zs, outs, hs = [None] * self.L, [None] * self.L, []
        for l in range(self.L):
            def pre(mod, args, l=l):
                z = args[0].clone()
                if z_patch is not None and z_patch[0] == l:
                    hh = z_patch[1]
                    z[0, T - 1, hh * HS:(hh + 1) * HS] = z_patch[2]
                zs[l] = z[0, T - 1].clone()
                return (z,) + tuple(args[1:])

            def post(mod, args, out, l=l):
                o = out[0] if isinstance(out, tuple) else out
                if resid_edit is not None and resid_edit[0] == l:
                    _, mode, vec, first = resid_edit
                    o = o.clone()
                    if mode == "add":
                        o[0, first:] = o[0, first:] + vec
                    else:
                        o[0, first:] = vec
                outs[l] = o[0].clone()
                return (o,) + tuple(out[1:]) if isinstance(out, tuple) else o

            hs.append(tr.h[l].attn.c_proj.register_forward_pre_hook(pre))
            hs.append(tr.h[l].register_forward_hook(post))
        try:
            logits = self.m(torch.tensor([ids]), use_cache=False).logits[0, -1]
        finally:
            for h in hs:
                h.remove()
        return logits, torch.stack(zs), torch.stack(outs)

    def c_proj(self, l):
        a = self.m.transformer.h[l].attn.c_proj
        return a.weight, a.bias


# --------------------------------------------------------------- tokenizers ---
class HFTok:
    def __init__(self, d):
        from transformers import AutoTokenizer
        self.t = AutoTokenizer.from_pretrained(d)

    def __call__(self, s):
        return self.t(s, add_special_tokens=False)["input_ids"]


class BinTok:
    """Dry run only: the saesteer binary's tokenizer."""

    def __init__(self, binary, d):
        self.b, self.d = binary, d

    def __call__(self, s):
        out = subprocess.run([self.b, "tokenize", "--model", self.d, "--text", s, "--json"], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)["ids"]


def save(out, name, arr):
    np.save(os.path.join(out, name), np.ascontiguousarray(np.asarray(arr, dtype=np.float32)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tests/fixtures/tiny-sp")
    ap.add_argument("--out", default="tests/fixtures/fv")
    ap.add_argument("--dry-run", action="store_true", help="plain torch + saesteer tokenizer, no transformers")
    ap.add_argument("--saesteer", default="build/saesteer")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_grad_enabled(False)
    if a.dry_run:
        M, tok = TorchGPT2(a.model), BinTok(a.saesteer, a.model)
    else:
        M, tok = HFGPT2(a.model), HFTok(a.model)
    ref = TorchGPT2(a.model)           # independent check of the hooks
    BOS = 50256
    meta = {"backend": "plain-torch (dry run)" if a.dry_run else "transformers", "torch": torch.__version__,
            "layer": LAYER, "top_k": TOP_K, "hook": HOOK, "checks": {}}
    if not a.dry_run:
        import transformers
        meta["transformers"] = transformers.__version__
    L, C, NH = M.L, M.C, M.NH
    HS = C // NH

    def enc(s):
        return [BOS] + tok(s)

    def check(name, x, y, tol=1e-9):
        d = float((x - y).abs().max())
        meta["checks"][name] = d
        if d > tol:   # recorded, not fatal: the one device run must still bring the files back
            meta["checks"][name + "_FAILED"] = True
            print("WARNING: self-check %s failed: max diff %g" % (name, d), file=sys.stderr)

    # hooks agree between the backends
    ids = enc(PAIRS4[0][0])
    l1, z1, o1 = M.run(ids)
    l2, z2, o2 = ref.run(ids)
    check("logits_vs_plain_torch", l1, l2, 1e-8)
    check("z_vs_plain_torch", z1, z2, 1e-10)
    check("block_out_vs_plain_torch", o1, o2, 1e-10)

    # ---- contrastive vectors
    for name, pairs in (("4", PAIRS4), ("20", PAIRS20)):
        with open(os.path.join(a.out, "pairs%s.jsonl" % name), "w") as f:
            for p, n in pairs:
                f.write(json.dumps({"positive": p, "negative": n}) + "\n")
        D = []
        for p, n in pairs:
            D.append(M.run(enc(p))[2][0, -1] - M.run(enc(n))[2][0, -1])
        D = torch.stack(D)
        mean = D.mean(0)
        _, S, Vh = torch.linalg.svd(D, full_matrices=False)
        u = Vh[0]
        if float(D.sum(0) @ u) < 0:
            u = -u
        pca = u * mean.norm()
        meta["checks"]["pca%s_singular_gap" % name] = float(S[0] / S[1]) if len(S) > 1 else None
        save(a.out, "vec_mean%s.npy" % name, mean)
        save(a.out, "vec_pca%s.npy" % name, pca)

    # ---- ActAdd matrix
    ia, ib = enc(ACTADD_POS), enc(ACTADD_NEG)
    P = max(len(ia), len(ib))
    pad = tok(" ")
    assert pad == [220], pad
    ia += [220] * (P - len(ia))
    ib += [220] * (P - len(ib))
    save(a.out, "actadd.npy", M.run(ia)[2][0] - M.run(ib)[2][0])
    meta["actadd"] = {"positive": ACTADD_POS, "negative": ACTADD_NEG, "P": P}

    # ---- ICL prompts
    def prompt(text, q):
        return {"text": text, "ids": enc(text), "answer": tok(" " + DATASET[q]["output"])[0], "item": q}

    clean, shuf, zero = [], [], []
    for i in range(N_ICL):
        shots = [(i + 1) % len(DATASET), (i + 2) % len(DATASET)]
        clean.append(prompt(icl_text(shots, i), i))
        shuf.append(prompt(icl_text(shots, i, labels=[shots[1], shots[0]]), i))
    for i in range(N_ZERO):
        zero.append(prompt(icl_text([], 4 + i), 4 + i))
    with open(os.path.join(a.out, "dataset.json"), "w") as f:
        json.dump(DATASET, f)

    # ---- function vector
    zbar = torch.stack([M.run(p["ids"])[1] for p in clean]).mean(0)            # (L, C)
    cie = torch.zeros(L, NH, dtype=torch.float64)
    for p in shuf:
        p0 = M.run(p["ids"])[0].softmax(-1)[p["answer"]]
        for l in range(L):
            for h in range(NH):
                pl = M.run(p["ids"], z_patch=(l, h, zbar[l, h * HS:(h + 1) * HS]))[0].softmax(-1)[p["answer"]]
                cie[l, h] += (pl - p0) / len(shuf)
    flat = cie.flatten().numpy()
    order = sorted(range(L * NH), key=lambda k: (-flat[k], k))[:TOP_K]
    heads = [[k // NH, k % NH] for k in order]
    fv = torch.zeros(C, dtype=torch.float64)
    for l, h in heads:
        Wo, _ = M.c_proj(l)
        fv += zbar[l, h * HS:(h + 1) * HS] @ Wo[h * HS:(h + 1) * HS]
    for l in sorted({l for l, _ in heads}):
        fv += M.c_proj(l)[1]
    save(a.out, "zbar.npy", zbar)
    save(a.out, "cie.npy", cie)
    save(a.out, "fv.npy", fv)
    save(a.out, "fv_logits.npy", torch.stack([M.run(p["ids"], resid_edit=(LAYER, "add", fv, len(p["ids"]) - 1))[0]
                                              for p in zero]))
    # greedy with the FV at every position from the prompt's last on (full recomputation)
    g = list(zero[0]["ids"])
    n0 = len(g)
    for _ in range(4):
        g.append(int(M.run(g, resid_edit=(LAYER, "add", fv, n0 - 1))[0].argmax()))
    with open(os.path.join(a.out, "fv_greedy.json"), "w") as f:
        json.dump({"prompt": zero[0]["ids"], "tokens": g[n0:]}, f)

    # ---- task vector
    h = torch.stack([M.run(p["ids"])[2][LAYER, -1] for p in clean]).mean(0)
    save(a.out, "tv_h.npy", h)
    save(a.out, "tv_logits.npy", torch.stack([M.run(p["ids"], resid_edit=(LAYER, "set", h, len(p["ids"]) - 1))[0]
                                              for p in zero]))

    with open(os.path.join(a.out, "fv.json"), "w") as f:
        json.dump({"layer": LAYER, "top_k": TOP_K, "heads": heads, "clean": clean, "shuffled": shuf, "zero": zero}, f,
                  indent=1)

    # ---- a control vector written by llama.cpp's gguf-py, if it is installed here
    try:
        import gguf
        v = (np.arange(C, dtype=np.float32) - C / 2) / C
        w = gguf.GGUFWriter(os.path.join(a.out, "gguf_py.gguf"), "controlvector")
        w.add_string("controlvector.model_hint", "gpt2")
        w.add_int32("controlvector.layer_count", 1)
        w.add_tensor("direction.1", v)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        save(a.out, "gguf_py.npy", v)
        meta["gguf_py"] = getattr(gguf, "__version__", "installed")
    except ImportError:
        meta["gguf_py"] = None
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
