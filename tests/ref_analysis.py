#!/usr/bin/python3
"""Independent plain-PyTorch reference for `patch`, `lens`, `unembed` and
`attention`: GPT-2 re-implemented from the safetensors file (HF semantics:
Conv1D weights (in, out), gelu_new, tied lm_head), float64 on the CPU, with
TransformerLens-style hook points (resid_pre, attn_out, mlp_out, z, pattern)
where an activation can be replaced. Nothing here calls saesteer's forward
pass; token ids come in on the command line.

  ref_analysis.py patch MODEL --clean 50256,464,... --corrupted ... --answer ID [--wrong ID]
                  --kind resid_pre|attn_out|mlp_out|z [--per-position] [--metric logdiff|logprob]
  ref_analysis.py lens MODEL --ids ... --position P --top K [--cached-scale] [--answer ID]
  ref_analysis.py unembed MODEL --vector V.npy [--ln-f] --top K
  ref_analysis.py attention MODEL --ids ... -o PATTERN.npy      (n_layer, n_head, T, T)
  ref_analysis.py batch MODEL < REQUESTS   (one "patch --clean ..." line each, one JSON line out each)
Each prints one JSON object (attention writes the .npy).

Semantics followed (TransformerLens): patching.get_act_patch_resid_pre /
_attn_out / _mlp_out replace blocks.L.hook_<kind>[p] of the corrupted run by
the clean run's value for every (L, p); get_act_patch_attn_head_out_all_pos
replaces hook_z[:, h] at every position for every (L, h), and
get_act_patch_attn_head_out_by_pos hook_z[p, h] for every (L, p, h)
(returned here as [L][h][p]). The lens with cached scale is
accumulated_resid(apply_ln=True): the stream minus its mean, divided by
ln_final.hook_scale (the final residual's sqrt(var + eps)), then ln_f's weight
and bias (which TransformerLens folds into W_U / b_U).
"""
import argparse, json, math, re, struct
import numpy as np
import torch

DT = torch.float64


def load(model_dir):
    with open(model_dir + "/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    w = {}
    for name, e in header.items():
        if name == "__metadata__" or e["dtype"] not in ("F32", "F16"):
            continue
        name = name.removeprefix("transformer.")
        if re.fullmatch(r"h\.\d+\.attn\.(bias|masked_bias)", name):   # causal-mask buffers
            continue
        b, en = e["data_offsets"]
        arr = np.frombuffer(data[b:en], dtype={"F32": np.float32, "F16": np.float16}[e["dtype"]]).reshape(e["shape"])
        w[name] = torch.from_numpy(arr.astype(np.float64))
    cfg = json.load(open(model_dir + "/config.json"))
    return w, cfg


def ln(w, cfg, x, p):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w[p + ".weight"], w[p + ".bias"], cfg["layer_norm_epsilon"])


def forward(w, cfg, ids, hooks=None, cache=None):
    """ids (T,) -> (final residual (T, C), logits (T, V)). hooks: {name: fn(act) -> act};
    cache: dict filled with every hook's value (after any replacement)."""
    hooks = hooks or {}
    C, H = cfg["n_embd"], cfg["n_head"]
    T = len(ids)

    def hk(name, x):
        if name in hooks:
            x = hooks[name](x.clone())
        if cache is not None:
            cache[name] = x.clone()
        return x

    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        x = hk(f"blocks.{l}.hook_resid_pre", x)
        qkv = ln(w, cfg, x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(T, H, -1).transpose(0, 1)
        k = k.view(T, H, -1).transpose(0, 1)
        v = v.view(T, H, -1).transpose(0, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        att = hk(f"blocks.{l}.attn.hook_pattern", att)
        z = (att @ v).transpose(0, 1)                     # (T, H, d_head)
        z = hk(f"blocks.{l}.attn.hook_z", z)
        a = z.reshape(T, C) @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        a = hk(f"blocks.{l}.hook_attn_out", a)
        x = x + a
        h = ln(w, cfg, x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        h = torch.nn.functional.gelu(h, approximate="tanh")
        m = h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        m = hk(f"blocks.{l}.hook_mlp_out", m)
        x = x + m
        x = hk(f"blocks.{l}.hook_resid_post", x)
    return x, ln(w, cfg, x, "ln_f") @ w["wte.weight"].T


def ints(s):
    return [int(v) for v in s.split(",")]


def cmd_patch(a, w, cfg):
    clean, corr = torch.tensor(ints(a.clean)), torch.tensor(ints(a.corrupted))
    T, L, NH = len(clean), cfg["n_layer"], cfg["n_head"]

    def metric(logits):
        last = logits[-1]
        if a.metric == "logprob":
            return float(torch.log_softmax(last, -1)[a.answer])
        return float(last[a.answer] - last[a.wrong])

    cc = {}
    _, lc = forward(w, cfg, clean, cache=cc)
    _, lx = forward(w, cfg, corr)
    out = {"clean": metric(lc), "corrupted": metric(lx)}
    hook = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out", "z": "attn.hook_z"}[a.kind]
    vals = []
    for l in range(L):
        name = f"blocks.{l}.{hook}"
        src = cc[name]
        if a.kind != "z":
            row = []
            for p in range(T):
                def f(x, p=p):
                    x[p] = src[p]
                    return x
                row.append(metric(forward(w, cfg, corr, {name: f})[1]))
            vals.append(row)
        elif not a.per_position:
            row = []
            for h in range(NH):
                def f(x, h=h):
                    x[:, h] = src[:, h]
                    return x
                row.append(metric(forward(w, cfg, corr, {name: f})[1]))
            vals.append(row)
        else:
            heads = []
            for h in range(NH):
                row = []
                for p in range(T):
                    def f(x, h=h, p=p):
                        x[p, h] = src[p, h]
                        return x
                    row.append(metric(forward(w, cfg, corr, {name: f})[1]))
                heads.append(row)
            vals.append(heads)
    out["values"] = vals
    return out


def cmd_lens(a, w, cfg):
    ids = torch.tensor(ints(a.ids))
    cache = {}
    forward(w, cfg, ids, cache=cache)
    L, P = cfg["n_layer"], a.position
    names = [f"blocks.{l}.hook_resid_pre" for l in range(L)] + [f"blocks.{L - 1}.hook_resid_post"]
    fin = cache[names[-1]][P]
    eps = cfg["layer_norm_epsilon"]
    fscale = torch.sqrt(((fin - fin.mean()) ** 2).mean() + eps)
    top, rank, lp_ans, near = [], [], [], []
    for n in names:
        x = cache[n][P]
        if a.cached_scale:
            y = (x - x.mean()) / fscale * w["ln_f.weight"] + w["ln_f.bias"]
        else:
            y = ln(w, cfg, x, "ln_f")
        lp = torch.log_softmax(y @ w["wte.weight"].T, -1)
        v, i = torch.topk(lp, a.top)
        top.append([{"id": int(j), "logprob": float(u)} for u, j in zip(v, i)])
        if a.answer is not None:
            lp_ans.append(float(lp[a.answer]))
            rank.append(int((lp > lp[a.answer]).sum()) + 1)
            near.append(int(((lp - lp[a.answer]).abs() <= 1e-5).sum()) - 1)
    out = {"position": P, "hooks": names, "top": top}
    if a.answer is not None:
        # near: other tokens within 1e-5 of the answer's log-prob (a float32 run may order those either way)
        out["answer"] = {"id": a.answer, "rank": rank, "logprob": lp_ans, "near": near}
    return out


def cmd_unembed(a, w, cfg):
    v = torch.from_numpy(np.load(a.vector).astype(np.float64)).reshape(-1)
    if a.ln_f:
        v = ln(w, cfg, v, "ln_f")
    s = v @ w["wte.weight"].T
    hv, hi = torch.topk(s, a.top)
    lv, li = torch.topk(-s, a.top)
    return {"top": [{"id": int(i), "logit": float(x)} for x, i in zip(hv, hi)],
            "bottom": [{"id": int(i), "logit": float(-x)} for x, i in zip(lv, li)]}


def cmd_attention(a, w, cfg):
    ids = torch.tensor(ints(a.ids))
    cache = {}
    forward(w, cfg, ids, cache=cache)
    pat = np.stack([cache[f"blocks.{l}.attn.hook_pattern"].numpy() for l in range(cfg["n_layer"])])
    np.save(a.o, pat.astype(np.float32))
    return {"shape": list(pat.shape)}


CMDS = {"patch": cmd_patch, "lens": cmd_lens, "unembed": cmd_unembed, "attention": cmd_attention}


def parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=list(CMDS) + ["batch"])
    ap.add_argument("model")
    ap.add_argument("--clean"); ap.add_argument("--corrupted"); ap.add_argument("--ids")
    ap.add_argument("--answer", type=int); ap.add_argument("--wrong", type=int)
    ap.add_argument("--kind", default="resid_pre"); ap.add_argument("--per-position", action="store_true")
    ap.add_argument("--metric", default="logdiff")
    ap.add_argument("--position", type=int, default=-1); ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--cached-scale", action="store_true")
    ap.add_argument("--vector"); ap.add_argument("--ln-f", action="store_true")
    ap.add_argument("-o")
    return ap


def run(a, w, cfg):
    if a.cmd == "lens" and a.position < 0:
        a.position += len(ints(a.ids))
    with torch.no_grad():
        return CMDS[a.cmd](a, w, cfg)


def main():
    """One command, or `batch MODEL` reading one argument line per request on
    stdin ("patch --clean ... --kind z") and printing one JSON line per request:
    one torch start-up for many checks."""
    ap = parser()
    a = ap.parse_args()
    torch.set_num_threads(1)
    w, cfg = load(a.model)
    if a.cmd != "batch":
        print(json.dumps(run(a, w, cfg)))
        return
    import shlex, sys
    for line in sys.stdin:
        if line.strip():
            r = ap.parse_args([shlex.split(line)[0], a.model] + shlex.split(line)[1:])
            print(json.dumps(run(r, w, cfg)), flush=True)


if __name__ == "__main__":
    main()
