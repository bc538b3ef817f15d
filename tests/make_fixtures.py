#!/usr/bin/env python3
"""Make the HuggingFace reference fixtures under tests/fixtures/ for saesteer's C tests.

HOW TO RERUN
  The references come from HuggingFace transformers (made with transformers 5.17, torch 2.11,
  safetensors, numpy, h5py, regex; CPU is enough: every number is computed on the CPU in
  float32, so no TF32/GPU rounding gets into the references):

      python3 tests/make_fixtures.py --out tests/fixtures          # ~1 minute
      python3 tests/make_fixtures.py --out tests/fixtures --links-only

  The second command only makes the relative symlinks tiny-*/vocab.json and merges.txt ->
  ../../../weights/gpt2-tokenizer/ (the first makes them too; it exists for when the files were
  made on another machine and copied back, as saesteer's were: on the GPU machine through the
  `device` tool, `tar` of tests/fixtures into $OUT, untarred here).
  Everything is seeded (--seed, default 1234), so a rerun with the same library versions gives
  the same files. `--dry-run` runs without transformers (plain-torch reference model only, a
  stand-in tokenizer check) to test the script itself on a CPU box with Debian's python3-torch.

WHAT IS CHECKED WHILE MAKING THEM (the run fails loudly otherwise; see meta.json)
  * an independent float64 plain-torch GPT-2 (ref_forward below) reproduces HF's logits, hidden
    states and every hook (max abs diffs recorded in meta.json);
  * hidden_states[L] == blocks.L.hook_resid_pre, hidden_states[-1] == ln_final.hook_normalized;
  * KV-cache greedy decoding == full recomputation == HF generate(), steered and unsteered;
  * tiny-sp reloads with from_pretrained, tiny-oa (official layout, f16) reloads too;
  * the fast tokenizer, GPT2Tokenizer and a from-scratch byte-level BPE agree on every text.

SIZES. Everything must stay small (the repository travels to the GPU box under a 64 MiB cap and
the default model takes ~37 MB), so the tiny models are narrower than first planned
(tiny-sp C=16, tiny-oa C=24; the 50257-row embedding dominates) and only the main prompt has full
(T, 50257) logits. For every intervention the fixture holds the LAST position's logits (1, V)
plus `final_*.npy` = ln_final.hook_normalized (T, C) at every position; logits = final @ wte.T, so
every position is still pinned down at 1/2000 of the size.

SEMANTICS USED (C code must match)
  * hook names are TransformerLens'. Values are HF's (uncentred) unless the file says centred.
    hook_resid_mid = input of ln_2; hook_attn_out = attn module output (after c_proj + bias);
    attn.hook_z = input of attn.c_proj reshaped (T, n_head, d_head); attn.hook_pattern = softmaxed
    probabilities (n_head, T, T) (eager attention); mlp.hook_post = gelu_new output (T, 4C);
    ln_final.hook_normalized = ln_f OUTPUT including its weight and bias (== HF's last
    hidden_states entry; TransformerLens with fold_ln would show it without w, b).
  * steering: a forward pre-hook on transformer.h[L] adds scale*v to the residual at
    blocks.L.hook_resid_pre: all positions / only the last position of each forward call / a
    2-D (P, C) matrix whose row p goes to absolute position p (positions >= P get nothing).
    Generation: every forward call of the decode loop runs the hook on its new position.
  * SAE encode (x: (T, d_in) at the SAE's hook; centred per token first when
    center_writing_weights is true):
        normalize_activations "none":                 x_n = x
        "constant_norm_rescale" (SAELens):            c = sqrt(d_in) / ||x||_2 (per token);  x_n = x * c
        "layer_norm" (SAELens):                       mu = mean(x); s = std(x - mu) with Bessel's
                                                      correction (divide by d_in - 1, torch.std);
                                                      x_n = (x - mu) / (s + 1e-5)
        x_c = x_n - b_dec if apply_b_dec_to_input else x_n
        standard: f = relu(x_c W_enc + b_enc)
        jumprelu: h = x_c W_enc + b_enc; f = relu(h) * (h > threshold)
        topk:     h = x_c W_enc + b_enc; keep the k largest h (torch.topk), relu them, zero the rest
        gated:    f = (x_c W_enc + b_gate > 0) * relu(x_c (W_enc * exp(r_mag)) + b_mag)
    decode: y = f W_dec + b_dec, then undo the normalisation:
        "constant_norm_rescale": y / c;  "layer_norm": y * s + mu   (the same s, no eps);  "none": y.
  * SAE interventions (at the SAE's hook, all positions, the BOS position included):
        boost  x' = x + scale * W_dec[i]
        clamp  x' = x + (v - f_i(x)) * W_dec[i]      (error preserving; f from the centred x when
                                                      the SAE says center_writing_weights; the change
                                                      is added to the model's own, uncentred, residual)
        ablate = clamp to 0
        recon  x' = decode(encode(x))                (no error term)
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tarfile

import numpy as np
import torch

try:  # transformers and safetensors are on the GPU machine, not on a plain Debian box
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel
    HAVE_HF = True
except Exception:  # pragma: no cover - dry-run path
    HAVE_HF = False
try:
    from safetensors.torch import save_file as st_save_file
    from safetensors import safe_open
    HAVE_ST = True
except Exception:
    HAVE_ST = False

BOS = 50256
VOCAB = 50257
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOKDIR = os.path.join(REPO, "weights", "gpt2-tokenizer")

SP = dict(name="tiny-sp", n_layer=2, n_embd=16, n_head=4, n_positions=64)
OA = dict(name="tiny-oa", n_layer=3, n_embd=24, n_head=3, n_positions=64)
MAIN_TEXT = "The quick brown fox jumps over the"
NOBOS_TEXT = "Hello, my dog is cute"
STEER_LAYER = 1
STEER_SCALE = 4.0
GEN_NEW = 20
SAE_LATENT = 5
SAE_BOOST = 3.0
SAE_CLAMP = 2.5
SAE_GEN_NEW = 10

META = {"checks": {}, "notes": [], "failures": []}
MY_OUTPUTS = ["tiny-sp", "tiny-oa", "saes", "tokens.json", "meta.json", "README.md"]


def check(cond, msg):
    """A failed self-check is recorded (meta.json "failures") and printed; the run goes on so that
    every file is still written, and the script exits 1 at the end."""
    if not cond:
        META["failures"].append(str(msg)[:500])
        print("CHECK FAILED:", str(msg)[:500], flush=True)
    return cond


def log(*a):
    print(*a, flush=True)


# ============================================================== small file helpers
def save_npy(path, arr):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, arr)


def save_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def t2np(t):
    return t.detach().to("cpu", torch.float32).numpy()


_ST_DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.bool: "BOOL",
          torch.uint8: "U8", torch.int64: "I64"}


def save_safetensors(tensors, path, metadata=None):
    """safetensors.torch.save_file when available, else an equivalent pure-Python writer."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    if HAVE_ST:
        st_save_file(tensors, path, metadata=metadata)
        return
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k in sorted(tensors):
        v = tensors[k]
        raw = (v.view(torch.int16) if v.dtype in (torch.float16, torch.bfloat16) else v).numpy().tobytes()
        header[k] = {"dtype": _ST_DT[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)))
        fh.write(h)
        for b in blobs:
            fh.write(b)


def read_safetensors_header(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(fh.read(n))


# ============================================================== parameters
def make_params(cfg, seed):
    """Random GPT-2 parameters, HF names with the `transformer.` prefix, float32.
    std 0.1-0.2 so logits are far from flat; every LayerNorm weight 1+0.3*randn and bias 0.2*randn;
    every bias nonzero, so that folding/transposition bugs show."""
    g = torch.Generator().manual_seed(seed)
    C, L, P = cfg["n_embd"], cfg["n_layer"], cfg["n_positions"]

    def rn(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    p = {"transformer.wte.weight": rn(VOCAB, C, std=0.2),
         "transformer.wpe.weight": rn(P, C, std=0.1)}
    for i in range(L):
        pre = "transformer.h.%d." % i
        p[pre + "ln_1.weight"] = rn(C, std=0.3, mean=1.0)
        p[pre + "ln_1.bias"] = rn(C, std=0.2)
        p[pre + "attn.c_attn.weight"] = rn(C, 3 * C, std=0.2)
        p[pre + "attn.c_attn.bias"] = rn(3 * C, std=0.1)
        p[pre + "attn.c_proj.weight"] = rn(C, C, std=0.2)
        p[pre + "attn.c_proj.bias"] = rn(C, std=0.1)
        p[pre + "ln_2.weight"] = rn(C, std=0.3, mean=1.0)
        p[pre + "ln_2.bias"] = rn(C, std=0.2)
        p[pre + "mlp.c_fc.weight"] = rn(C, 4 * C, std=0.2)
        p[pre + "mlp.c_fc.bias"] = rn(4 * C, std=0.1)
        p[pre + "mlp.c_proj.weight"] = rn(4 * C, C, std=0.1)
        p[pre + "mlp.c_proj.bias"] = rn(C, std=0.1)
    p["transformer.ln_f.weight"] = rn(C, std=0.3, mean=1.0)
    p["transformer.ln_f.bias"] = rn(C, std=0.2)
    return p


# ============================================================== float64 reference GPT-2
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def ref_forward(P, cfg, ids, edit=None, dtype=torch.float64):
    """Plain-torch GPT-2 forward over the whole sequence (no cache). Returns (logits (T,V), hooks).
    edit(L, x (T,C), pos0) -> x' is applied at blocks.L.hook_resid_pre (pos0 = 0 here)."""
    W = {k: v.to(dtype) for k, v in P.items()}
    T, C, H = len(ids), cfg["n_embd"], cfg["n_head"]
    D = C // H
    hk = {}
    ids_t = torch.tensor(ids, dtype=torch.long)
    tok = W["transformer.wte.weight"][ids_t]
    pos = W["transformer.wpe.weight"][:T]
    hk["hook_embed"], hk["hook_pos_embed"] = tok, pos
    x = tok + pos
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for L in range(cfg["n_layer"]):
        pre = "transformer.h.%d." % L
        if edit is not None:
            x = edit(L, x, 0)
        hk["blocks.%d.hook_resid_pre" % L] = x
        h = layer_norm(x, W[pre + "ln_1.weight"], W[pre + "ln_1.bias"])
        qkv = h @ W[pre + "attn.c_attn.weight"] + W[pre + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.reshape(T, H, D).transpose(0, 1) for t in (q, k, v))  # (H,T,D)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1)
        hk["blocks.%d.attn.hook_pattern" % L] = a
        z = (a @ v).transpose(0, 1)  # (T,H,D)
        hk["blocks.%d.attn.hook_z" % L] = z
        attn_out = z.reshape(T, C) @ W[pre + "attn.c_proj.weight"] + W[pre + "attn.c_proj.bias"]
        hk["blocks.%d.hook_attn_out" % L] = attn_out
        x = x + attn_out
        hk["blocks.%d.hook_resid_mid" % L] = x
        h2 = layer_norm(x, W[pre + "ln_2.weight"], W[pre + "ln_2.bias"])
        post = gelu_new(h2 @ W[pre + "mlp.c_fc.weight"] + W[pre + "mlp.c_fc.bias"])
        hk["blocks.%d.mlp.hook_post" % L] = post
        mlp_out = post @ W[pre + "mlp.c_proj.weight"] + W[pre + "mlp.c_proj.bias"]
        hk["blocks.%d.hook_mlp_out" % L] = mlp_out
        x = x + mlp_out
        hk["blocks.%d.hook_resid_post" % L] = x
    xf = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"])
    hk["ln_final.hook_normalized"] = xf
    logits = xf @ W["transformer.wte.weight"].T
    return logits, hk


def hook_names(cfg):
    names = ["hook_embed", "hook_pos_embed"]
    for L in range(cfg["n_layer"]):
        names += ["blocks.%d.%s" % (L, s) for s in (
            "hook_resid_pre", "attn.hook_z", "attn.hook_pattern", "hook_attn_out", "hook_resid_mid",
            "mlp.hook_post", "hook_mlp_out", "hook_resid_post")]
    return names + ["ln_final.hook_normalized"]


# ============================================================== runners
class RefRunner:
    """Stand-in for HF in --dry-run: float32 plain torch, full recompute."""
    kind = "ref-f32"

    def __init__(self, P, cfg):
        self.P, self.cfg = P, cfg

    def run(self, ids, edit=None, capture=False):
        logits, hk = ref_forward(self.P, self.cfg, ids, edit=edit, dtype=torch.float32)
        hs = [hk["blocks.%d.hook_resid_pre" % L] for L in range(self.cfg["n_layer"])]
        hs.append(hk["ln_final.hook_normalized"])
        return logits, torch.stack(hs), (hk if capture else None)

    def greedy_cached(self, ids, n, edit=None):
        return self.greedy_recompute(ids, n, edit)

    def greedy_recompute(self, ids, n, edit=None):
        seq, out, gaps = list(ids), [], []
        for _ in range(n):
            logits, _, _ = self.run(seq, edit=edit)
            top = torch.topk(logits[-1], 2)
            gaps.append(float(top.values[0] - top.values[1]))
            nxt = int(top.indices[0])
            out.append(nxt)
            seq.append(nxt)
        return out, gaps

    def hf_generate(self, ids, n, edit=None):
        return None


class HFRunner:
    kind = "hf"

    def __init__(self, model, cfg):
        self.m, self.cfg = model, cfg
        self.tr = model.transformer

    def _install(self, edit, capture, cap, state):
        handles = []
        tr, H = self.tr, self.cfg["n_head"]

        def block_pre(L):
            def fn(mod, args, kwargs):
                hs = args[0] if args else kwargs["hidden_states"]
                t = hs.shape[1]
                if edit is not None:
                    pos0 = state["pos"][L]
                    state["pos"][L] += t
                    new = edit(L, hs[0], pos0).unsqueeze(0).to(hs.dtype)
                    if args:
                        args = (new,) + tuple(args[1:])
                    else:
                        kwargs = dict(kwargs)
                        kwargs["hidden_states"] = new
                    hs = new
                if capture:
                    cap["blocks.%d.hook_resid_pre" % L] = hs[0].detach().clone()
                return args, kwargs
            return fn

        for L in range(self.cfg["n_layer"]):
            handles.append(tr.h[L].register_forward_pre_hook(block_pre(L), with_kwargs=True))
        if capture:
            def out_hook(name, first=True):
                def fn(mod, inp, out):
                    o = out[0] if isinstance(out, (tuple, list)) else out
                    if o.dim() == 3:
                        o = o[0]
                    cap[name] = o.detach().clone()
                return fn

            def in_hook(name, reshape=None):
                def fn(mod, inp):
                    i = inp[0]
                    if i.dim() == 3:
                        i = i[0]
                    if reshape:
                        i = i.reshape(i.shape[0], *reshape)
                    cap[name] = i.detach().clone()
                return fn
            C = self.cfg["n_embd"]

            def reg(what, fn):
                try:
                    handles.append(fn())
                except Exception as e:  # the float64 reference fills in, with a note
                    META["notes"].append("could not hook %s: %r" % (what, e))
            reg("wte", lambda: tr.wte.register_forward_hook(out_hook("hook_embed")))
            reg("wpe", lambda: tr.wpe.register_forward_hook(out_hook("hook_pos_embed")))
            for L in range(self.cfg["n_layer"]):
                b = tr.h[L]
                reg("hook_z", lambda: b.attn.c_proj.register_forward_pre_hook(in_hook("blocks.%d.attn.hook_z" % L, (H, C // H))))
                reg("attn_out", lambda: b.attn.register_forward_hook(out_hook("blocks.%d.hook_attn_out" % L)))
                reg("resid_mid", lambda: b.ln_2.register_forward_pre_hook(in_hook("blocks.%d.hook_resid_mid" % L)))
                reg("mlp.act", lambda: b.mlp.act.register_forward_hook(out_hook("blocks.%d.mlp.hook_post" % L)))
                reg("mlp_out", lambda: b.mlp.register_forward_hook(out_hook("blocks.%d.hook_mlp_out" % L)))
                reg("resid_post", lambda: b.register_forward_hook(out_hook("blocks.%d.hook_resid_post" % L)))
            reg("ln_f", lambda: tr.ln_f.register_forward_hook(out_hook("ln_final.hook_normalized")))
        return handles

    def _state(self):
        return {"pos": [0] * self.cfg["n_layer"]}

    @torch.no_grad()
    def run(self, ids, edit=None, capture=False):
        cap, state = {}, self._state()
        hs = self._install(edit, capture, cap, state)
        try:
            o = self.m(input_ids=torch.tensor([ids]), output_hidden_states=True,
                       output_attentions=capture, use_cache=False)
        finally:
            for h in hs:
                h.remove()
        if capture:
            if o.attentions is not None and o.attentions[0] is not None:
                for L, a in enumerate(o.attentions):
                    cap["blocks.%d.attn.hook_pattern" % L] = a[0].detach().clone()
            else:
                META["notes"].append("HF returned no attentions; hook_pattern taken from the float64 reference")
        return o.logits[0], torch.stack([h[0] for h in o.hidden_states]), (cap if capture else None)

    @torch.no_grad()
    def greedy_cached(self, ids, n, edit=None):
        state = self._state()
        hs = self._install(edit, False, {}, state)
        out, gaps, past, cur = [], [], None, list(ids)
        try:
            for _ in range(n):
                o = self.m(input_ids=torch.tensor([cur]), past_key_values=past, use_cache=True)
                past = o.past_key_values
                top = torch.topk(o.logits[0, -1], 2)
                gaps.append(float(top.values[0] - top.values[1]))
                nxt = int(top.indices[0])
                out.append(nxt)
                cur = [nxt]
        finally:
            for h in hs:
                h.remove()
        return out, gaps

    @torch.no_grad()
    def greedy_recompute(self, ids, n, edit=None):
        seq, out, gaps = list(ids), [], []
        for _ in range(n):
            logits, _, _ = self.run(seq, edit=edit)
            top = torch.topk(logits[-1], 2)
            gaps.append(float(top.values[0] - top.values[1]))
            nxt = int(top.indices[0])
            out.append(nxt)
            seq.append(nxt)
        return out, gaps

    @torch.no_grad()
    def hf_generate(self, ids, n, edit=None):
        state = self._state()
        hs = self._install(edit, False, {}, state)
        try:
            inp = torch.tensor([ids])
            g = self.m.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                                max_new_tokens=n, use_cache=True, pad_token_id=BOS, eos_token_id=None)
        finally:
            for h in hs:
                h.remove()
        return [int(t) for t in g[0, len(ids):]]


# ============================================================== interventions (edit functions)
def edit_vector(vec, scale, layer, positions="all"):
    v = torch.as_tensor(vec)

    def fn(L, x, pos0):
        if L != layer:
            return x
        add = (scale * v).to(x.dtype)
        if positions == "all":
            return x + add
        if positions == "last":
            x = x.clone()
            x[-1] = x[-1] + add
            return x
        raise ValueError(positions)
    return fn


def edit_matrix(M, scale, layer):
    M = torch.as_tensor(M)

    def fn(L, x, pos0):
        if L != layer:
            return x
        x = x.clone()
        for i in range(x.shape[0]):
            p = pos0 + i
            if p < M.shape[0]:
                x[i] = x[i] + (scale * M[p]).to(x.dtype)
        return x
    return fn


# ============================================================== SAEs
def sae_encode(sae, x, return_norm=False):
    """x: (T, d_in) torch; sae: dict with cfg + tensors. Follows the docstring formulas."""
    cfg = sae["cfg"]
    dt = x.dtype
    W = {k: v.to(dt) for k, v in sae["w"].items()}
    if cfg["center"]:
        x = x - x.mean(-1, keepdim=True)
    norm = {}
    na = cfg["normalize_activations"]
    if na == "constant_norm_rescale":
        c = math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
        norm["c"] = c
        x = x * c
    elif na == "layer_norm":
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        s = xc.std(-1, keepdim=True)  # unbiased, as torch.std / SAELens
        norm["mu"], norm["s"] = mu, s
        x = xc / (s + 1e-5)
    if cfg["apply_b_dec_to_input"]:
        x = x - W["b_dec"]
    arch = cfg["architecture"]
    if arch == "standard":
        f = torch.relu(x @ W["W_enc"] + W["b_enc"])
    elif arch == "jumprelu":
        h = x @ W["W_enc"] + W["b_enc"]
        f = torch.relu(h) * (h > W["threshold"]).to(dt)
    elif arch == "topk":
        h = x @ W["W_enc"] + W["b_enc"]
        top = torch.topk(h, cfg["k"], dim=-1)
        f = torch.zeros_like(h).scatter(-1, top.indices, torch.relu(top.values))
    elif arch == "gated":
        gate = ((x @ W["W_enc"] + W["b_gate"]) > 0).to(dt)
        mag = torch.relu(x @ (W["W_enc"] * torch.exp(W["r_mag"])) + W["b_mag"])
        f = gate * mag
    else:
        raise ValueError(arch)
    return (f, norm) if return_norm else f


def sae_decode(sae, f, norm):
    W = {k: v.to(f.dtype) for k, v in sae["w"].items()}
    y = f @ W["W_dec"] + W["b_dec"]
    na = sae["cfg"]["normalize_activations"]
    if na == "constant_norm_rescale":
        y = y / norm["c"]
    elif na == "layer_norm":
        y = y * norm["s"] + norm["mu"]
    return y


def edit_sae(sae, layer, mode, latent=None, value=None):
    def fn(L, x, pos0):
        if L != layer:
            return x
        if mode == "boost":
            return x + value * sae["w"]["W_dec"][latent].to(x.dtype)
        f, norm = sae_encode(sae, x, return_norm=True)
        if mode == "clamp":
            return x + (value - f[:, latent:latent + 1]) * sae["w"]["W_dec"][latent].to(x.dtype)
        if mode == "recon":
            return sae_decode(sae, f, norm)
        raise ValueError(mode)
    return fn


def make_sae(name, arch, x, seed, d_sae, center=False, apply_b_dec=True, norm="none", k=None):
    """Random SAE tuned on the activations x (T, d_in) so that codes are sparse but not empty,
    and latent SAE_LATENT fires on some positions but not all."""
    g = torch.Generator().manual_seed(seed)
    d_in = x.shape[1]
    x64 = x.double()
    W_dec = torch.randn(d_sae, d_in, generator=g, dtype=torch.float64)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True) * (0.8 + 0.4 * torch.rand(d_sae, 1, generator=g, dtype=torch.float64))
    W_enc = W_dec.T.clone() * 1.1 + 0.1 * torch.randn(d_in, d_sae, generator=g, dtype=torch.float64)
    b_dec = 0.1 * torch.randn(d_in, generator=g, dtype=torch.float64)
    w = {"W_enc": W_enc, "W_dec": W_dec, "b_dec": b_dec}
    cfg = {"name": name, "architecture": arch, "center": center, "apply_b_dec_to_input": apply_b_dec,
           "normalize_activations": norm, "k": k, "d_in": d_in, "d_sae": d_sae}
    sae = {"cfg": cfg, "w": w}
    # pre-activations with b_enc = 0 (gated: with r_mag = 0) to place the biases
    xx = x64
    if center:
        xx = xx - xx.mean(-1, keepdim=True)
    if norm == "constant_norm_rescale":
        xx = xx * (math.sqrt(d_in) / xx.norm(dim=-1, keepdim=True))
    elif norm == "layer_norm":
        mu = xx.mean(-1, keepdim=True)
        xx = (xx - mu) / ((xx - mu).std(-1, keepdim=True) + 1e-5)
    if apply_b_dec:
        xx = xx - b_dec
    h0 = xx @ W_enc  # (T, d_sae)
    q80 = torch.quantile(h0, 0.80, dim=0)  # per latent: fires on ~20% of positions
    b = -q80 + 0.05 * torch.randn(d_sae, generator=g, dtype=torch.float64)
    b[SAE_LATENT] = -torch.quantile(h0[:, SAE_LATENT], 0.5)  # fires on ~half of the positions
    if arch in ("standard", "jumprelu", "topk"):
        if arch == "topk":
            b = -torch.quantile(h0, 0.75, dim=0) + 0.05 * torch.randn(d_sae, generator=g, dtype=torch.float64)
        w["b_enc"] = b
    if arch == "jumprelu":
        # thresholds sit inside the positive pre-activations, so some h > 0 are cut (h <= threshold)
        w["b_enc"] = b + 0.3 * h0.std(0)
        w["threshold"] = (0.2 + 0.3 * torch.rand(d_sae, generator=g, dtype=torch.float64)) * h0.std(0)
    if arch == "gated":
        w["b_gate"] = b
        w["r_mag"] = 0.2 * torch.randn(d_sae, generator=g, dtype=torch.float64)
        w["b_mag"] = 0.1 * torch.randn(d_sae, generator=g, dtype=torch.float64) + 0.05
    for kk in list(w):
        w[kk] = w[kk].float()  # the stored weights are float32; references are computed from them
    return sae


def saelens_cfg_v6(sae, hook, model_name, context_size=64):
    c = sae["cfg"]
    d = {"d_in": c["d_in"], "d_sae": c["d_sae"], "dtype": "float32", "device": "cpu",
         "apply_b_dec_to_input": c["apply_b_dec_to_input"],
         "normalize_activations": c["normalize_activations"], "reshape_activations": "none",
         "metadata": {"sae_lens_version": "6.12.1", "sae_lens_training_version": "6.12.1",
                      "model_name": model_name, "hook_name": hook, "hook_head_index": None,
                      "model_class_name": "HookedTransformer",
                      "model_from_pretrained_kwargs": {"center_writing_weights": bool(c["center"])},
                      "prepend_bos": True, "exclude_special_tokens": False,
                      "context_size": context_size, "seqpos_slice": [None],
                      "dataset_path": "saesteer/tests/fixtures (random weights)",
                      "neuronpedia_id": None},
         "architecture": c["architecture"]}
    if c["architecture"] == "topk":
        d["k"] = c["k"]
    return d


def saelens_cfg_old(sae, hook, layer, model_name, context_size=64):
    c = sae["cfg"]
    return {"model_name": model_name, "model_class_name": "HookedTransformer",
            "hook_point": hook, "hook_point_layer": layer, "hook_point_head_index": None,
            "dataset_path": "saesteer/tests/fixtures (random weights)", "is_dataset_tokenized": True,
            "context_size": context_size, "use_cached_activations": False, "d_in": c["d_in"],
            "d_sae": c["d_sae"], "expansion_factor": c["d_sae"] // c["d_in"],
            "activation_fn_str": "relu", "apply_b_dec_to_input": c["apply_b_dec_to_input"],
            "prepend_bos": True, "normalize_activations": "none", "device": "cpu",
            "dtype": "torch.float32", "seed": 42, "b_dec_init_method": "geometric_median",
            "l1_coefficient": 8e-05, "lr": 0.0004, "train_batch_size": 4096,
            "sae_lens_training_version": "2.1.3",
            "run_name": "%d-L1-8e-05-LR-0.0004-Tokens-3.000e+08" % c["d_sae"]}


def write_h5(path, sae, attrs, labels=None, log_sparsity=None):
    import h5py
    tmp = path + ".tmp"
    w = sae["w"]
    with h5py.File(tmp, "w") as f:
        d_in, d_sae = w["W_enc"].shape
        for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold", "b_gate", "b_mag", "r_mag"):
            if name not in w:
                continue
            a = t2np(w[name])
            if a.ndim == 2:
                chunks = (min(a.shape[0], 64), a.shape[1]) if name == "W_dec" else (a.shape[0], min(a.shape[1], 64))
                f.create_dataset(name, data=a, chunks=chunks, compression="gzip", compression_opts=4)
            else:
                f.create_dataset(name, data=a)
        if log_sparsity is not None:
            f.create_dataset("log_sparsity", data=np.asarray(log_sparsity, dtype=np.float32))
        if labels is not None:
            dt = h5py.string_dtype(encoding="utf-8")
            f.create_dataset("labels", data=np.array(labels, dtype=object), dtype=dt)
        for k, v in attrs.items():
            f.attrs[k] = v
    os.replace(tmp, path)


def load_gpt2_tokenizer(tokdir, cls_name="GPT2TokenizerFast", notes=None):
    """GPT-2's tokenizer from vocab.json + merges.txt alone, across transformers versions: 4.x takes
    (vocab_file=, merges_file=); 5.x ignores those names and wants from_pretrained(dir) or
    (vocab=, merges=) -- and silently builds an EMPTY tokenizer otherwise. So every way is tried and
    the first one that encodes "Hello world" as [15496, 995] and "a<|endoftext|>b" with 50256 wins."""
    import transformers
    cls = getattr(transformers, cls_name)
    vp, mp = os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt")

    def merges_list():
        with open(mp, encoding="utf-8") as fh:
            return [tuple(l.split()) for l in fh.read().split("\n")[1:] if l.strip()]

    def vocab_dict():
        with open(vp, encoding="utf-8") as fh:
            return json.load(fh)
    ways = [("from_pretrained(dir)", lambda: cls.from_pretrained(tokdir)),
            ("vocab=path, merges=path", lambda: cls(vocab=vp, merges=mp)),
            ("vocab=dict, merges=tuples", lambda: cls(vocab=vocab_dict(), merges=merges_list())),
            ("vocab_file=, merges_file=", lambda: cls(vocab_file=vp, merges_file=mp))]
    errs = []
    for how, make in ways:
        try:
            tok = make()
            ids = tok("Hello world", add_special_tokens=False)["input_ids"]
            if ids != [15496, 995]:
                errs.append("%s(%s): 'Hello world' -> %r" % (cls_name, how, ids[:8]))
                continue
            if 50256 not in tok("a<|endoftext|>b", add_special_tokens=False)["input_ids"]:
                tok.add_special_tokens({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"})
                errs.append("%s(%s): <|endoftext|> had to be registered as a special token" % (cls_name, how))
                if 50256 not in tok("a<|endoftext|>b", add_special_tokens=False)["input_ids"]:
                    continue
            if notes is not None:
                notes.append("%s loaded with %s%s" % (cls_name, how, ("; tried: " + " | ".join(errs)) if errs else ""))
            return tok
        except Exception as e:
            errs.append("%s(%s): %r" % (cls_name, how, e))
    raise RuntimeError("no way to load the GPT-2 tokenizer worked: " + " | ".join(errs))


# ============================================================== tokenizer reference (from scratch)
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class RefBPE:
    """Byte-level BPE written from the GPT-2 description: pre-tokenizer regex, byte->unicode map,
    merges applied lowest rank first, <|endoftext|> split out of the text first."""

    def __init__(self, vocab_path, merges_path):
        import regex
        with open(vocab_path, encoding="utf-8") as fh:
            self.enc = json.load(fh)
        with open(merges_path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:] if l and not l.startswith("#version")]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            a, b = parts[bi], parts[bi + 1]
            new, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(parts[i])
                    i += 1
            parts = new
        self.cache[word] = parts
        return parts

    def encode(self, text):
        ids = []
        chunks = text.split("<|endoftext|>")
        for ci, chunk in enumerate(chunks):
            if ci > 0:
                ids.append(BOS)
            for m in self.pat.findall(chunk):
                u = "".join(self.b2u[b] for b in m.encode("utf-8"))
                ids.extend(self.enc[p] for p in self.bpe(u))
        return ids


TOKEN_TEXTS = [
    "Hello world",
    "It's a dog's life, isn't it? They're here, we've won, I'm sure you'll see, he'd go.",
    "IT'S LOUD. DON'T SHOUT. WE'RE HERE, I'M OK, THEY'LL SEE, HE'D GO, WE'VE WON",
    "The cat'S toy and the dog'S bone; O'Neill's rock'n'roll",
    "two  spaces",
    "three   spaces",
    "five     spaces",
    "trailing spaces   ",
    "   leading spaces",
    " ",
    "     ",
    "",
    "line one\nline two",
    "para one\n\npara two",
    "windows\r\nline\r\n",
    "\n",
    "   \n   \n  x",
    "tab\tseparated\tvalues",
    "\t\tindented with tabs\t",
    "1234567 and 3.14 and 2024-11-27 and 1,000,000",
    "12345678901234567890",
    "Wait... what?!? No!!! (yes) [maybe] {ok} <tag> --- *** ;;",
    "café naïve Zürich résumé façade",
    "Ünïcödé ÀÉÎÕÜ ß ø å",
    "e\u0301 n\u0303 a\u0308 (combining marks)",
    "日本語のテキスト",
    "中文文本，标点。",
    "Привет, мир! Ελληνικά",
    "مرحبا بالعالم",
    "👍🏽 thumbs up 🤖 robot 🇺🇸 flag",
    "‘curly quotes’ “double” — em dash – en dash … ellipsis",
    "x\u00a0y non-breaking space and a\u200bb zero width",
    "Hello<|endoftext|>World",
    "<|endoftext|>",
    "before <|endoftext|> after",
    "end of doc.<|endoftext|>\n\nNew doc",
    "<|endoftext|><|endoftext|>",
    "<|endoftext| is not special, nor is <|endoftext",
    "email@example.com https://example.org/path?q=1&r=2",
    "def f(x):\n    return x**2  # square\n",
    ("The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
     "combined movable metal type, oil-based inks and a wooden press adapted from those used to make "
     "wine. Within fifty years, presses had spread to more than two hundred cities across Europe, and "
     "millions of books had been printed. Scholars argue about the consequences, but most agree that "
     "cheaper books changed how people learned, worshipped, argued and governed themselves."),
]


def make_tokens(out, ref_bpe):
    entries, disagreements = [], 0
    fast = slow = None
    if HAVE_HF:
        try:
            fast = load_gpt2_tokenizer(TOKDIR, "GPT2TokenizerFast", META["notes"])
        except Exception as e:
            check(False, "GPT2TokenizerFast could not be loaded: %r" % (e,))
            fast = None
        try:
            slow = load_gpt2_tokenizer(TOKDIR, "GPT2Tokenizer", META["notes"])
        except Exception as e:  # pragma: no cover
            META["notes"].append("GPT2Tokenizer failed: %r" % (e,))
        META["tokenizer_classes"] = {"fast": type(fast).__module__ + "." + type(fast).__name__,
                                     "slow": (type(slow).__module__ + "." + type(slow).__name__) if slow else None}
    for text in TOKEN_TEXTS:
        ref_ids = ref_bpe.encode(text) if ref_bpe else None
        e = {"text": text}
        if fast is None and ref_ids is not None:
            e["ids"] = ref_ids
            e["note"] = "HF tokenizer unavailable: ids from the from-scratch BPE"
        elif fast is not None:
            ids = fast(text, add_special_tokens=False)["input_ids"]
            e["ids"] = ids
            if slow is not None:
                sids = slow(text, add_special_tokens=False)["input_ids"]
                if sids != ids:
                    e["ids_gpt2tokenizer"] = sids
                    e["note"] = "GPT2Tokenizer disagrees with GPT2TokenizerFast"
                    disagreements += 1
            if ref_ids is not None and ref_ids != ids:
                e["ids_reference_bpe"] = ref_ids
                e["note"] = (e.get("note", "") + "; from-scratch BPE disagrees").strip("; ")
                disagreements += 1
            dec = fast.decode(ids)
            if dec != text:
                e["decoded"] = dec
        else:
            e["ids"] = ref_ids
            e["note"] = "DRY RUN: ids from the from-scratch BPE only"
        entries.append(e)
    save_json(os.path.join(out, "tokens.json"), entries)
    META["checks"]["tokenizer_disagreements"] = disagreements
    log("tokens.json: %d texts, %d disagreements" % (len(entries), disagreements))
    return fast


# ============================================================== model fixtures
def build_hf(P, cfg):
    hcfg = GPT2Config(vocab_size=VOCAB, n_positions=cfg["n_positions"], n_embd=cfg["n_embd"],
                      n_layer=cfg["n_layer"], n_head=cfg["n_head"], layer_norm_epsilon=1e-5,
                      activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                      bos_token_id=BOS, eos_token_id=BOS, tie_word_embeddings=True)
    try:
        hcfg._attn_implementation = "eager"
    except Exception:
        pass
    m = GPT2LMHeadModel(hcfg)
    if getattr(m.config, "_attn_implementation", "eager") != "eager" and hasattr(m, "set_attn_implementation"):
        m.set_attn_implementation("eager")
    missing, unexpected = m.load_state_dict({k: v.clone() for k, v in P.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias")) and k != "lm_head.weight"]
    assert not missing and not unexpected, (missing, unexpected)
    if m.lm_head.weight.data_ptr() != m.transformer.wte.weight.data_ptr():
        META["notes"].append("lm_head not tied after load; copied wte into it")
        m.lm_head.weight.data.copy_(m.transformer.wte.weight.data)
    m.eval()
    META.setdefault("attn_implementation", {})[cfg["name"]] = getattr(m.config, "_attn_implementation", None)
    return m


def maxdiff(a, b):
    return float((a.double() - b.double()).abs().max())


def model_fixture(out, cfg, P, seed, ids_main, ids_nobos, layout):
    name = cfg["name"]
    mdir = os.path.join(out, name)
    rdir = os.path.join(mdir, "ref")
    os.makedirs(rdir, exist_ok=True)
    C = cfg["n_embd"]
    chk = META["checks"].setdefault(name, {})

    # ---------------- write the checkpoint
    if layout == "save_pretrained":
        if HAVE_HF:
            model = build_hf(P, cfg)
            model.save_pretrained(mdir)
            keys = list(read_safetensors_header(os.path.join(mdir, "model.safetensors")))
            keys = [k for k in keys if k != "__metadata__"]
            chk["saved_keys_all_prefixed"] = all(k.startswith("transformer.") for k in keys)
            chk["saved_has_lm_head"] = any(k.startswith("lm_head") for k in keys)
            rm = GPT2LMHeadModel.from_pretrained(mdir, attn_implementation="eager").eval()
            with torch.no_grad():
                a = rm(input_ids=torch.tensor([ids_main])).logits[0]
                b = model(input_ids=torch.tensor([ids_main])).logits[0]
            chk["reload_from_pretrained_maxdiff"] = maxdiff(a, b)
            runner = HFRunner(model, cfg)
        else:
            save_safetensors(P, os.path.join(mdir, "model.safetensors"), {"format": "pt"})
            save_json(os.path.join(mdir, "config.json"), official_config(cfg, dry=True))
            runner = RefRunner(P, cfg)
    else:  # official openai-community layout, float16, with attn.bias buffers
        P16 = {k: v.half() for k, v in P.items()}
        P = {k: v.float() for k, v in P16.items()}  # what a loader converting f16 -> f32 sees
        tens = {}
        n = cfg["n_positions"]
        tril = torch.tril(torch.ones(n, n)).reshape(1, 1, n, n)
        bias_dtypes = [torch.bool, torch.float32, torch.float16]
        for k, v in P16.items():
            tens[k[len("transformer."):]] = v
        for L in range(cfg["n_layer"]):
            tens["h.%d.attn.bias" % L] = tril.to(bias_dtypes[L % 3])
        save_safetensors(tens, os.path.join(mdir, "model.safetensors"), {"format": "pt"})
        save_json(os.path.join(mdir, "config.json"), official_config(cfg))
        chk["attn_bias_dtypes"] = {"h.%d.attn.bias" % L: str(bias_dtypes[L % 3]) for L in range(cfg["n_layer"])}
        if HAVE_HF:
            model = build_hf(P, cfg)
            try:
                rm = GPT2LMHeadModel.from_pretrained(mdir, attn_implementation="eager", dtype=torch.float32).eval()
                with torch.no_grad():
                    a = rm(input_ids=torch.tensor([ids_main])).logits[0]
                    b = model(input_ids=torch.tensor([ids_main])).logits[0]
                chk["reload_from_pretrained_maxdiff"] = maxdiff(a, b)
            except Exception as e:
                chk["reload_from_pretrained_error"] = repr(e)[:300]
            runner = HFRunner(model, cfg)
        else:
            runner = RefRunner(P, cfg)

    # ---------------- main prompt: logits, hidden states, hooks
    logits, hs, hk = runner.run(ids_main, capture=True)
    ref_logits, ref_hk = ref_forward(P, cfg, ids_main)
    chk["logits_vs_float64_maxdiff"] = maxdiff(logits, ref_logits)
    hook_diffs = {}
    for h in hook_names(cfg):
        if h not in hk:
            hk[h] = ref_hk[h].float()
            META["notes"].append("%s %s from the float64 reference (no HF capture)" % (name, h))
        hook_diffs[h] = maxdiff(hk[h], ref_hk[h])
        save_npy(os.path.join(rdir, h + ".npy"), t2np(hk[h]))
    chk["hooks_vs_float64_maxdiff"] = max(hook_diffs.values())
    chk["hooks_worst"] = max(hook_diffs, key=hook_diffs.get)
    ok = all(maxdiff(hs[L], hk["blocks.%d.hook_resid_pre" % L]) < 1e-6 for L in range(cfg["n_layer"]))
    ok = check(ok, name + ": hidden_states[L] != blocks.L.hook_resid_pre") and \
        check(maxdiff(hs[-1], hk["ln_final.hook_normalized"]) < 1e-6, name + ": hidden_states[-1] != ln_f output")
    chk["hidden_states_match_hooks"] = ok
    save_npy(os.path.join(rdir, "logits.npy"), t2np(logits))
    save_npy(os.path.join(rdir, "hidden_states.npy"), t2np(hs))
    save_json(os.path.join(rdir, "ids.json"), {"text": MAIN_TEXT, "prepend_bos": True, "ids": ids_main})
    chk["logits_std"] = float(logits.std())
    check(chk["logits_vs_float64_maxdiff"] < 1e-4, (name, "logits vs float64", chk["logits_vs_float64_maxdiff"]))
    check(chk["hooks_vs_float64_maxdiff"] < 1e-4, (name, "hooks vs float64", chk["hooks_worst"], chk["hooks_vs_float64_maxdiff"]))

    # ---------------- no-BOS prompt
    lg, hs2, _ = runner.run(ids_nobos)
    save_npy(os.path.join(rdir, "nobos_logits_last.npy"), t2np(lg[-1:]))
    save_npy(os.path.join(rdir, "nobos_hidden_states.npy"), t2np(hs2))
    save_json(os.path.join(rdir, "nobos_ids.json"), {"text": NOBOS_TEXT, "prepend_bos": False, "ids": ids_nobos})

    # ---------------- steering vectors
    g = torch.Generator().manual_seed(seed + 7)
    v = 0.5 * torch.randn(C, generator=g)
    M = 0.5 * torch.randn(4, C, generator=g)
    save_npy(os.path.join(rdir, "steer_v.npy"), t2np(v))
    save_npy(os.path.join(rdir, "steer_M.npy"), t2np(M))
    variants = {"steer_all": edit_vector(v, STEER_SCALE, STEER_LAYER, "all"),
                "steer_last": edit_vector(v, STEER_SCALE, STEER_LAYER, "last"),
                "steer_mat": edit_matrix(M, STEER_SCALE, STEER_LAYER)}
    for vn, ed in variants.items():
        lg, hsv, _ = runner.run(ids_main, edit=ed)
        rl, rh = ref_forward(P, cfg, ids_main, edit=ed)
        chk[vn + "_vs_float64_maxdiff"] = maxdiff(lg, rl)
        check(chk[vn + "_vs_float64_maxdiff"] < 1e-4, (name, vn, chk[vn + "_vs_float64_maxdiff"]))
        check(maxdiff(lg, logits) > 1e-2, (name, vn, "steering had no effect"))
        save_npy(os.path.join(rdir, "logits_%s.npy" % vn), t2np(lg[-1:]))
        save_npy(os.path.join(rdir, "final_%s.npy" % vn), t2np(hsv[-1]))

    # ---------------- greedy generation
    gen = {"prompt_text": MAIN_TEXT, "prompt_ids": ids_main, "prepend_bos": True,
           "max_new_tokens": GEN_NEW, "temperature": 0,
           "steer": {"hook": "blocks.%d.hook_resid_pre" % STEER_LAYER, "vector": "steer_v.npy",
                     "scale": STEER_SCALE, "positions": "all (prompt and every generated token)"}}
    for key, ed in (("greedy", None), ("greedy_steer_all", variants["steer_all"])):
        toks, gaps = runner.greedy_cached(ids_main, GEN_NEW, edit=ed)
        toks2, _ = runner.greedy_recompute(ids_main, GEN_NEW, edit=ed)
        try:
            toks3 = runner.hf_generate(ids_main, GEN_NEW, edit=ed)
        except Exception as e:
            toks3 = None
            META["notes"].append("HF generate failed (%s %s): %r" % (name, key, e))
        chk[key + "_cache_equals_recompute"] = check(toks == toks2, (name, key, "cache != recompute", toks, toks2))
        if toks3 is not None:
            chk[key + "_hf_generate_equal"] = (toks3 == toks)
            check(toks3 == toks[:len(toks3)], (name, key, "HF generate differs", toks3, toks))
        chk[key + "_min_top2_gap"] = min(gaps)
        if BOS in toks:
            META["notes"].append("%s %s: greedy output contains 50256" % (name, key))
        gen[key] = toks
    save_json(os.path.join(rdir, "generate.json"), gen)
    return runner, P, logits, hk


def official_config(cfg, dry=False):
    c = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
         "bos_token_id": BOS, "embd_pdrop": 0.1, "eos_token_id": BOS, "initializer_range": 0.02,
         "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": cfg["n_positions"],
         "n_embd": cfg["n_embd"], "n_head": cfg["n_head"], "n_layer": cfg["n_layer"],
         "n_positions": cfg["n_positions"], "resid_pdrop": 0.1, "summary_activation": None,
         "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
         "summary_use_proj": True,
         "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
         "vocab_size": VOCAB}
    if dry:
        c["note"] = "DRY RUN"
    return c


# ============================================================== SAE fixtures
def sae_fixtures(out, runner, P, cfg, ids_main, hk, logits_clean):
    sdir = os.path.join(out, "saes")
    hook = "blocks.%d.hook_resid_pre" % STEER_LAYER
    x = hk[hook].float()  # (T, 16) HF values at the hook
    d_in, d_sae = x.shape[1], 4 * x.shape[1]
    chk = META["checks"].setdefault("saes", {})
    specs = [("standard", "standard", {}), ("standard_centered", "standard", {"center": True}),
             ("topk", "topk", {"k": 8}), ("jumprelu", "jumprelu", {}), ("gated", "gated", {}),
             ("old_layout", "standard", {"apply_b_dec": False}),
             ("norm_constant", "standard", {"norm": "constant_norm_rescale"}),
             ("norm_layer", "standard", {"norm": "layer_norm"})]
    saes = {}
    for i, (nm, arch, kw) in enumerate(specs):
        sae = make_sae(nm, arch, x, seed=100 + i, d_sae=d_sae, **kw)
        saes[nm] = sae
        d = os.path.join(sdir, nm)
        os.makedirs(d, exist_ok=True)
        tens = {k: v.contiguous() for k, v in sae["w"].items()}
        save_safetensors(tens, os.path.join(d, "sae_weights.safetensors"))
        if nm == "old_layout":
            save_json(os.path.join(d, "cfg.json"), saelens_cfg_old(sae, hook, STEER_LAYER, cfg["name"]))
        else:
            save_json(os.path.join(d, "cfg.json"), saelens_cfg_v6(sae, hook, cfg["name"]))
        f, norm = sae_encode(sae, x.double(), return_norm=True)
        y = sae_decode(sae, f, norm)
        f32, n32 = sae_encode(sae, x, return_norm=True)
        chk[nm + "_f32_vs_f64_acts_maxdiff"] = maxdiff(f32, f)
        save_npy(os.path.join(d, "acts.npy"), t2np(f))
        save_npy(os.path.join(d, "recon.npy"), t2np(y))
        l0 = (f > 0).double().sum(-1)
        chk[nm + "_L0_per_token"] = [int(t) for t in l0]
        chk[nm + "_latent%d_active_positions" % SAE_LATENT] = int((f[:, SAE_LATENT] > 0).sum())
        xx = x.double() - (x.double().mean(-1, keepdim=True) if sae["cfg"]["center"] else 0)
        chk[nm + "_explained_variance"] = float(1 - ((y - xx) ** 2).sum() / ((xx - xx.mean(0)) ** 2).sum())
        if arch == "jumprelu":
            h = (xx - sae["w"]["b_dec"].double()) @ sae["w"]["W_enc"].double() + sae["w"]["b_enc"].double()
            chk["jumprelu_cut_by_threshold"] = int(((h > 0) & (h <= sae["w"]["threshold"].double())).sum())
        if arch == "topk":
            h = (xx - sae["w"]["b_dec"].double()) @ sae["w"]["W_enc"].double() + sae["w"]["b_enc"].double()
            chk["topk_positions_with_fewer_than_k_positive"] = int(((h > 0).sum(-1) < 8).sum())
        if nm == "old_layout":
            g = torch.Generator().manual_seed(77)
            dens = torch.rand(d_sae, generator=g) * 0.5 + 1e-4
            save_safetensors({"sparsity": torch.log10(dens).float()}, os.path.join(d, "sparsity.safetensors"))

    # ---------------- interventions with the standard SAEs (HF hooks at the SAE's hook)
    ip = {}
    std = saes["standard"]
    cases = [("standard", "boost", edit_sae(std, STEER_LAYER, "boost", SAE_LATENT, SAE_BOOST)),
             ("standard", "clamp", edit_sae(std, STEER_LAYER, "clamp", SAE_LATENT, SAE_CLAMP)),
             ("standard", "ablate", edit_sae(std, STEER_LAYER, "clamp", SAE_LATENT, 0.0)),
             ("standard", "recon", edit_sae(std, STEER_LAYER, "recon")),
             ("standard_centered", "clamp", edit_sae(saes["standard_centered"], STEER_LAYER, "clamp", SAE_LATENT, SAE_CLAMP))]
    for nm, mode, ed in cases:
        lg, hsv, _ = runner.run(ids_main, edit=ed)
        rl, _ = ref_forward(P, cfg, ids_main, edit=ed)
        chk["%s_%s_vs_float64_maxdiff" % (nm, mode)] = maxdiff(lg, rl)
        check(chk["%s_%s_vs_float64_maxdiff" % (nm, mode)] < 1e-4, (nm, mode, chk["%s_%s_vs_float64_maxdiff" % (nm, mode)]))
        chk["%s_%s_effect_maxabs" % (nm, mode)] = maxdiff(lg, logits_clean)
        save_npy(os.path.join(sdir, nm, "logits_%s.npy" % mode), t2np(lg[-1:]))
        save_npy(os.path.join(sdir, nm, "final_%s.npy" % mode), t2np(hsv[-1]))
    ed = cases[0][2]
    toks, gaps = runner.greedy_cached(ids_main, SAE_GEN_NEW, edit=ed)
    toks2, _ = runner.greedy_recompute(ids_main, SAE_GEN_NEW, edit=ed)
    check(toks == toks2, ("sae boost generation: cache != recompute", toks, toks2))
    try:
        toks3 = runner.hf_generate(ids_main, SAE_GEN_NEW, edit=ed)
    except Exception as e:
        toks3 = None
        META["notes"].append("HF generate failed (sae boost): %r" % (e,))
    plain, _ = runner.greedy_cached(ids_main, SAE_GEN_NEW)
    save_json(os.path.join(sdir, "standard", "generate_boost.json"),
              {"prompt_text": MAIN_TEXT, "prompt_ids": ids_main, "prepend_bos": True,
               "max_new_tokens": SAE_GEN_NEW, "temperature": 0, "latent": SAE_LATENT, "scale": SAE_BOOST,
               "positions": "all (prompt and every generated token)", "greedy": plain, "greedy_boost": toks,
               "min_top2_gap": min(gaps), "hf_generate_equal": (toks3 == toks) if toks3 is not None else None})
    save_json(os.path.join(sdir, "interventions.json"),
              {"model": cfg["name"], "hook": hook, "latent": SAE_LATENT, "boost_scale": SAE_BOOST,
               "clamp_value": SAE_CLAMP, "ablate_value": 0.0, "positions": "all",
               "files": {"standard/logits_boost.npy": "x + 3.0*W_dec[5]",
                         "standard/logits_clamp.npy": "x + (2.5 - f_5(x))*W_dec[5]",
                         "standard/logits_ablate.npy": "x + (0 - f_5(x))*W_dec[5]",
                         "standard/logits_recon.npy": "x := decode(encode(x)), no error term",
                         "standard_centered/logits_clamp.npy":
                             "x + (2.5 - f_5(x - mean(x)))*W_dec[5], added to the uncentred residual"},
               "shapes": "logits_*.npy (1, 50257) = last position; final_*.npy (T, C) = ln_final.hook_normalized at every position"})

    # ---------------- HDF5 dictionary written by h5py
    try:
        labels = [""] * d_sae
        labels[SAE_LATENT] = "fixture latent five"
        labels[0] = "zero"
        labels[d_sae - 1] = "last latent, ünïcode label ✓"
        g = torch.Generator().manual_seed(78)
        ls = torch.log10(torch.rand(d_sae, generator=g) * 0.3 + 1e-4)
        cfgtext = json.dumps(saelens_cfg_v6(std, hook, cfg["name"]))
        attrs = {"format": "saesteer-sae", "format_version": 1, "architecture": "standard",
                 "d_in": d_in, "d_sae": d_sae, "k": 0, "hook_name": hook, "model_name": cfg["name"],
                 "apply_b_dec_to_input": True, "normalize_activations": "none",
                 "center_writing_weights": False, "prepend_bos": True, "context_size": 64,
                 "source": cfgtext}
        write_h5(os.path.join(sdir, "standard.h5"), std, attrs, labels=labels, log_sparsity=t2np(ls))
        save_npy(os.path.join(sdir, "standard_h5_log_sparsity.npy"), t2np(ls))
        save_json(os.path.join(sdir, "standard_h5_labels.json"), labels)
    except Exception as e:  # pragma: no cover
        META["notes"].append("h5 failed: %r" % (e,))
        log("h5 FAILED", e)


# ============================================================== README
DESCRIBE = [
    ("meta.json", "how the fixtures were made: library versions, seeds, every self-check and its max difference"),
    ("tokens.json", "list of {text, ids}: GPT2TokenizerFast ids (no BOS added; <|endoftext|> in the text -> 50256) "
                    "for 41 texts; an entry carries ids_gpt2tokenizer / ids_reference_bpe / note only where "
                    "another tokenizer disagreed, and `decoded` only where decode(ids) != text"),
    ("tiny-sp/", "save_pretrained layout (transformer. prefix, no lm_head), float32; n_layer 2, n_embd 16, "
                 "n_head 4, n_positions 64, vocab 50257; config.json, generation_config.json, model.safetensors; "
                 "vocab.json and merges.txt are symlinks to weights/gpt2-tokenizer"),
    ("tiny-oa/", "official openai-community layout (no prefix, h.N.attn.bias mask buffers: h.0 BOOL, h.1 F32, "
                 "h.2 F16, shape (1,1,64,64), lower-triangular ones), weights float16; n_layer 3, n_embd 24, "
                 "n_head 3; config.json written like the official one (n_ctx etc.); references computed from "
                 "the f16 weights upcast to f32"),
    ("<model>/ref/ids.json", "main prompt 'The quick brown fox jumps over the' with BOS prepended: the ids fed (T=8)"),
    ("<model>/ref/logits.npy", "(T, 50257) logits at every position of the main prompt"),
    ("<model>/ref/hidden_states.npy", "(n_layer+1, T, C) HF output_hidden_states; [L] = blocks.L.hook_resid_pre, "
                                      "the last one has ln_f applied (= ln_final.hook_normalized)"),
    ("<model>/ref/<hook>.npy", "every TransformerLens hook on the main prompt: hook_embed (T,C), hook_pos_embed (T,C), "
                               "blocks.L.hook_resid_pre/mid/post (T,C), blocks.L.hook_attn_out (T,C), "
                               "blocks.L.hook_mlp_out (T,C), blocks.L.attn.hook_z (T,n_head,d_head), "
                               "blocks.L.attn.hook_pattern (n_head,T,T), blocks.L.mlp.hook_post (T,4C), "
                               "ln_final.hook_normalized (T,C); uncentred HF values"),
    ("<model>/ref/nobos_ids.json, nobos_logits_last.npy, nobos_hidden_states.npy",
     "'Hello, my dog is cute' WITHOUT BOS: ids, last-position logits (1,V), hidden states (n_layer+1,T,C)"),
    ("<model>/ref/steer_v.npy, steer_M.npy", "steering vector (C,) and matrix (4,C); both used with scale 4.0 at "
                                             "blocks.1.hook_resid_pre"),
    ("<model>/ref/logits_steer_all.npy, final_steer_all.npy", "4.0*v added at all positions: last-position logits "
                                                              "(1,V) and ln_final.hook_normalized (T,C)"),
    ("<model>/ref/logits_steer_last.npy, final_steer_last.npy", "4.0*v added at the last position only"),
    ("<model>/ref/logits_steer_mat.npy, final_steer_mat.npy", "4.0*M[p] added at absolute position p (p<4)"),
    ("<model>/ref/generate.json", "greedy 20 new tokens after BOS+main prompt: `greedy` (no steering), "
                                  "`greedy_steer_all` (4.0*v at every position, generated ones included); "
                                  "KV-cache decode == full recompute == HF generate"),
    ("saes/<name>/cfg.json, sae_weights.safetensors", "SAELens folders on tiny-sp blocks.1.hook_resid_pre, d_in 16, "
                                                      "d_sae 64, float32: standard, standard_centered "
                                                      "(center_writing_weights true), topk (k 8), jumprelu, gated "
                                                      "(no b_enc), old_layout (pre-6.0 flat cfg, apply_b_dec_to_input "
                                                      "false, + sparsity.safetensors), norm_constant "
                                                      "(constant_norm_rescale), norm_layer (layer_norm)"),
    ("saes/<name>/acts.npy, recon.npy", "(T, 64) activations and (T, 16) reconstruction on tiny-sp's main prompt "
                                        "(BOS included) at blocks.1.hook_resid_pre; formulas in make_fixtures.py"),
    ("saes/standard/logits_{boost,clamp,ablate,recon}.npy, final_*.npy",
     "interventions with latent 5 at all positions: boost +3.0*W_dec[5], clamp to 2.5, ablate (clamp 0), replace by "
     "the reconstruction; (1,V) last-position logits and (T,C) ln_final.hook_normalized"),
    ("saes/standard_centered/logits_clamp.npy, final_clamp.npy", "clamp latent 5 to 2.5 with the centring SAE"),
    ("saes/standard/generate_boost.json", "greedy 10 tokens with and without the boost (hook on while generating)"),
    ("saes/interventions.json", "the intervention parameters above, machine-readable"),
    ("saes/standard.h5", "the `standard` SAE in saesteer's HDF5 v1 format written by h5py: gzip-chunked W_enc/W_dec, "
                         "labels (vlen UTF-8, '' = unlabelled), log_sparsity; attributes as h5py writes Python "
                         "values: strings vlen UTF-8, ints int64, bools HDF5 enum(int8) FALSE/TRUE"),
    ("saes/standard_h5_labels.json, standard_h5_log_sparsity.npy", "what standard.h5 holds in labels / log_sparsity"),
]


def write_readme(out):
    lines = ["# Test fixtures (generated; do not edit by hand)", "",
             "Made by `tests/make_fixtures.py` (its docstring says how to rerun it and which semantics the numbers",
             "follow). Random-weight GPT-2s and SAEs; every reference comes from HuggingFace transformers on CPU in",
             "float32 and is cross-checked against a float64 plain-torch implementation (meta.json). Arrays are",
             "float32 .npy (C order), ids are JSON. T = 8 for the main prompt (BOS + 7 tokens).", "",
             "| path | what it holds |", "| --- | --- |"]
    for p, d in DESCRIBE:
        lines.append("| `%s` | %s |" % (p, d.replace("|", "\\|")))
    lines += ["", "## Files and sizes (made by make_fixtures.py)", "", "```"]
    total = 0
    others = []
    for root, dirs, files in os.walk(out):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            rel = os.path.relpath(p, out)
            if rel == "README.md":
                continue
            if rel.split(os.sep)[0] not in MY_OUTPUTS:
                others.append(rel)
                continue
            if os.path.islink(p):
                lines.append("%10s  %s -> %s" % ("link", rel, os.readlink(p)))
                continue
            sz = os.path.getsize(p)
            total += sz
            lines.append("%10d  %s" % (sz, rel))
    lines += ["%10d  total (README.md excluded)" % total, "```", ""]
    if others:
        lines += ["Also in this folder, made by other scripts (tests/make_fixtures_fv.py makes fv/, "
                  "tests/tokref.js tokens_js.json; see those scripts): " +
                  ", ".join("`%s`" % o for o in sorted(others)[:40]) + (" ..." if len(others) > 40 else ""), ""]
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return total


def make_links(out):
    for name in ("tiny-sp", "tiny-oa"):
        d = os.path.join(out, name)
        if not os.path.isdir(d):
            continue
        for f in ("vocab.json", "merges.txt"):
            p = os.path.join(d, f)
            if os.path.lexists(p):
                os.remove(p)
            os.symlink(os.path.join("..", "..", "..", "weights", "gpt2-tokenizer", f), p)


# ============================================================== main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dry-run", action="store_true", help="no transformers: plain-torch stand-in only")
    ap.add_argument("--links-only", action="store_true")
    ap.add_argument("--tar", help="also write the fixtures as this tar file (for the trip back from the GPU box)")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    if args.links_only:
        make_links(out)
        write_readme(out)
        return 0
    global HAVE_HF
    if args.dry_run:
        HAVE_HF = False
    elif not HAVE_HF:
        sys.exit("transformers is not importable; use --dry-run to test the script without it")
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(out, exist_ok=True)
    for mine in MY_OUTPUTS:  # other scripts (make_fixtures_fv.py, tokref.js) also write here: keep theirs
        p = os.path.join(out, mine)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.remove(p)
    META.update({"seed": args.seed, "torch": torch.__version__,
                 "transformers": transformers.__version__ if HAVE_HF else None,
                 "numpy": np.__version__, "dry_run": not HAVE_HF, "device": "cpu", "dtype": "float32",
                 "main_text": MAIN_TEXT, "nobos_text": NOBOS_TEXT})
    try:
        ref_bpe = RefBPE(os.path.join(TOKDIR, "vocab.json"), os.path.join(TOKDIR, "merges.txt"))
    except Exception as e:
        ref_bpe = None
        META["notes"].append("from-scratch BPE unavailable: %r" % (e,))
    fast = make_tokens(out, ref_bpe)
    enc = (lambda t: fast(t, add_special_tokens=False)["input_ids"]) if fast is not None else ref_bpe.encode
    ids_main = [BOS] + enc(MAIN_TEXT)
    ids_nobos = enc(NOBOS_TEXT)
    log("main ids", ids_main, "nobos ids", ids_nobos)

    import traceback
    try:
        P_sp = make_params(SP, args.seed)
        runner, P_sp, logits_sp, hk_sp = model_fixture(out, SP, P_sp, args.seed, ids_main, ids_nobos, "save_pretrained")
        log("tiny-sp done", json.dumps(META["checks"]["tiny-sp"]))
        sae_fixtures(out, runner, P_sp, SP, ids_main, hk_sp, logits_sp)
        log("saes done", json.dumps(META["checks"]["saes"]))
    except Exception:
        check(False, "tiny-sp/saes crashed: " + traceback.format_exc()[-400:])
        traceback.print_exc()
    try:
        P_oa = make_params(OA, args.seed + 1)
        model_fixture(out, OA, P_oa, args.seed + 1, ids_main, ids_nobos, "official")
        log("tiny-oa done", json.dumps(META["checks"]["tiny-oa"]))
    except Exception:
        check(False, "tiny-oa crashed: " + traceback.format_exc()[-400:])
        traceback.print_exc()

    save_json(os.path.join(out, "meta.json"), META)
    make_links(out)
    total = write_readme(out)
    log("fixtures total bytes: %d (%.2f MB)" % (total, total / 1e6))
    if args.tar:
        with tarfile.open(args.tar, "w") as tf:
            for mine in MY_OUTPUTS:
                if os.path.lexists(os.path.join(out, mine)):
                    tf.add(os.path.join(out, mine), arcname=os.path.join("fixtures", mine))
        log("wrote", args.tar)
    if META["notes"]:
        print("NOTES:", *META["notes"], sep="\n  ", flush=True)
    if META["failures"]:
        log("FAILED CHECKS: %d" % len(META["failures"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
