#!/usr/bin/env python3
"""Make the GPT-J and GPT-NeoX reference fixtures under tests/fixtures/arch/ for saesteer's C tests.

HOW TO RERUN
  The references come from HuggingFace transformers (made with transformers 5.17, torch 2.11,
  tokenizers, safetensors, numpy; CPU float32 is enough, every number is computed on the CPU):

      python3 tests/make_fixtures_arch.py --out tests/fixtures/arch        # ~1 minute

  saesteer's were made on the GPU machine through the `device` tool (the script copied there, its
  output tarred into $OUT and untarred here). Everything is seeded, so a rerun with the same library
  versions gives the same files. `--dry-run` runs without transformers/tokenizers: a float64
  plain-torch model stands in for HF and a hand-written tokenizer.json for the `tokenizers` one, to
  test the script itself (and the C code) on a CPU box with Debian's python3-torch.

WHAT IT MAKES (see tests/fixtures/arch/README.md for every file)
  Four random checkpoints with a 2256-token byte-level BPE vocabulary (GPT-2's first 256 bytes +
  its first 2000 merges, from weights/gpt2-tokenizer) plus added tokens, so that everything stays
  small; vocab_size is padded above the tokenizer's size as the real models do:
    gptj-f32     GPTJForCausalLM, float32, one model.safetensors, rotary_dim 4 of head_dim 8,
                 vocab.json + merges.txt (GPT-J ships GPT-2's tokenizer files)
    gptj-bf16    GPTJForCausalLM, bfloat16, sharded (index + 3 shards), rotary_dim 6 of 16, 3 layers
    neox-par-f32 GPTNeoXForCausalLM, use_parallel_residual true, float32, one file, rotary 50% of 8,
                 intermediate_size 96 (not 4*hidden), tokenizer.json (NFC, ByteLevel, added tokens);
                 the output embedding is `embed_out.weight` in the files, as in Pythia's (transformers
                 5 calls the module lm_head but saves it under the old name; meta.json saved_names)
    neox-seq-bf16 GPTNeoXForCausalLM, use_parallel_residual false, bfloat16, sharded, rotary 25% of
                 16, rope_theta 1000, attention_bias false
  For each: the ids of a prompt (BOS first), logits (T, V) at every position, every TransformerLens
  hook (HF module outputs captured with forward hooks), hidden states, greedy continuations from HF
  generate (and a full-recompute greedy loop, which must agree), and for the tokenizers the ids of a
  list of texts from HF (GPT2TokenizerFast on the GPT-J files; tokenizers.Tokenizer on each
  tokenizer.json variant: merges as ["a","b"] lists and as "a b" strings, add_prefix_space).
  bf16 references are computed in float32 from the bf16 weights (as saesteer computes).

CHECKS (the run fails loudly otherwise; numbers in meta.json)
  * an independent float64 plain-torch model (ref_forward below) reproduces HF's logits and hooks;
  * hidden_states[L] == blocks.L.hook_resid_pre; the saved checkpoint reloads to the same logits;
  * HF generate (KV cache) == greedy full recompute.

SEMANTICS (the C code must match)
  GPT-J block:  h = ln_1(x); x' = x + attn(h) + mlp(h)    (one LayerNorm, parallel; no resid_mid)
    attn: q,k,v = h Wq^T, h Wk^T, h Wv^T (no biases); rotary on dims [0, rotary_dim) of each head,
    pairs (2i, 2i+1): x'[2i] = x[2i] cos - x[2i+1] sin, x'[2i+1] = x[2i+1] cos + x[2i] sin,
    angle = pos * 10000^(-2i/rotary_dim); softmax(q k^T / sqrt(head_dim)) v; out_proj (no bias).
    mlp: fc_out(gelu_new(fc_in(h))). logits = ln_f(x) lm_head^T + lm_head.bias.
  GPT-NeoX layer: qkv = ln1(x) Wqkv^T + b, viewed (T, NH, 3*HS): per head [q | k | v];
    rotary on dims [0, r) with r = int(HS * partial_rotary_factor), half-split pairs (i, i + r/2):
    x'[i] = x[i] cos - x[i+r/2] sin, x'[i+r/2] = x[i+r/2] cos + x[i] sin, angle = pos * theta^(-2i/r);
    parallel:   x' = x + attn(ln1(x)) + mlp(ln2(x))           (no resid_mid)
    sequential: m = x + attn(ln1(x)); x' = m + mlp(ln2(m))   (resid_mid = m)
    mlp: dense_4h_to_h(gelu_erf(dense_h_to_4h(.))). logits = final_layer_norm(x) embed_out^T.
  Hooks: hook_embed = embedding output; blocks.L.hook_resid_pre = block input; attn.hook_z = input
  of out_proj/dense as (T, NH, HS); attn.hook_pattern = softmax probabilities (NH, T, T);
  hook_attn_out = out_proj/dense output; mlp.hook_post = activation output; hook_mlp_out = mlp
  output; hook_resid_post = block output; ln_final.hook_normalized = final LayerNorm output.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import traceback

import numpy as np
import torch

try:
    import transformers
    from transformers import GPTJConfig, GPTJForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM
    HAVE_HF = True
except Exception:
    HAVE_HF = False
try:
    import tokenizers
    HAVE_TOK = True
except Exception:
    HAVE_TOK = False

HERE = os.path.dirname(os.path.abspath(__file__))
N_MERGES = 2000
N_BPE = 256 + N_MERGES          # ids 0..2255 are BPE tokens
EOT = "<|endoftext|>"

MODELS = [
    dict(name="gptj-f32", arch="gptj", dtype="f32", shard=None, n_layer=2, C=32, NH=4, rotary_dim=4,
         P=64, V=2304, seed=101),
    dict(name="gptj-bf16", arch="gptj", dtype="bf16", shard="40KB", n_layer=3, C=32, NH=2, rotary_dim=6,
         P=64, V=2304, seed=102),
    dict(name="neox-par-f32", arch="neox", dtype="f32", shard=None, n_layer=2, C=32, NH=4, rotary_pct=0.5,
         theta=10000.0, parallel=True, bias=True, inner=96, P=64, V=2304, seed=103, pythia_names=True),
    dict(name="neox-seq-bf16", arch="neox", dtype="bf16", shard="40KB", n_layer=3, C=32, NH=2, rotary_pct=0.25,
         theta=1000.0, parallel=False, bias=False, inner=128, P=64, V=2304, seed=104),
]
PROMPT = "The quick brown fox jumps over the lazy dog, and"
GEN_NEW = 16

TOKEN_TEXTS = [
    "Hello world",
    "It's a dog's life, isn't it? They're here, we've won, I'm sure you'll see.",
    "two  spaces, four    spaces and eight        spaces",
    "   leading and trailing   ",
    "line one\nline two\n\n\npara\r\n",
    "tab\tseparated\t\tvalues",
    "1234567 and 3.14 and 2024-11-27",
    "Wait... what?!? No!!! (yes) [maybe] {ok} <tag>",
    "caf\u00e9 na\u00efve Z\u00fcrich",
    "e\u0301 n\u0303 a\u0308 (combining marks: NFC composes them)",
    "\u212b angstrom sign and \u2126 ohm sign (NFC singletons)",
    "\u65e5\u672c\u8a9e \uc548\ub155 \u041f\u0440\u0438\u0432\u0435\u0442",
    "\U0001f44d\U0001f3fd thumbs \U0001f916 robot",
    "Hello<|endoftext|>World",
    "<|endoftext|>",
    "before <|endoftext|> after<|padding|>x",
    "<|endoftext| is not special",
    "",
    " ",
    "def f(x):\n    return x**2  # square\n",
    "SAEsteer steers SAEsteer-ly",
]


META = {"checks": {}, "notes": [], "failures": []}


def check(cond, msg):
    if not cond:
        META["failures"].append(str(msg)[:600])
        print("CHECK FAILED:", str(msg)[:600], flush=True)
    return cond


def log(*a):
    print(*a, flush=True)


def save_npy(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(np.asarray(arr, dtype=np.float32)))


def save_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def t2np(t):
    return t.detach().to("cpu", torch.float32).numpy()


def maxdiff(a, b):
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def find_tokdir(arg):
    if arg:
        return arg
    d = HERE
    for _ in range(6):
        p = os.path.join(d, "weights", "gpt2-tokenizer")
        if os.path.isfile(os.path.join(p, "vocab.json")):
            return p
        d = os.path.dirname(d)
    sys.exit("weights/gpt2-tokenizer not found above %s; pass --tokdir" % HERE)


# ============================================================== the small tokenizer
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


def small_vocab(tokdir):
    """GPT-2's first 256 + N_MERGES tokens (merge i makes token 256+i in GPT-2's vocab.json)."""
    with open(os.path.join(tokdir, "vocab.json"), encoding="utf-8") as fh:
        full = json.load(fh)
    with open(os.path.join(tokdir, "merges.txt"), encoding="utf-8") as fh:
        lines = [l for l in fh.read().split("\n") if l and not l.startswith("#version")]
    merges = [tuple(l.split(" ")) for l in lines[:N_MERGES]]
    inv = {i: s for s, i in full.items()}
    vocab = {inv[i]: i for i in range(N_BPE)}
    for i, (a, b) in enumerate(merges):
        assert vocab[a + b] == 256 + i and a in vocab and b in vocab, (i, a, b)
    return vocab, merges


def write_gpt2_files(d, vocab, merges):
    v = dict(vocab)
    v[EOT] = N_BPE
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as fh:
        json.dump(v, fh, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as fh:
        fh.write("#version: 0.2\n")
        for a, b in merges:
            fh.write("%s %s\n" % (a, b))


ADDED = [  # (content, special, normalized): like Pythia's specials and whitespace-run tokens
    (EOT, True, False), ("<|padding|>", True, False), ("    ", False, True), ("  ", False, True),
    ("SAEsteer", False, False),
]


def build_tokenizer_json(vocab, merges, nfc=True, prefix_space=False):
    """A tokenizers.Tokenizer as Pythia's: BPE + (NFC) + ByteLevel pre-tokenizer/decoder + added tokens."""
    from tokenizers import Tokenizer, AddedToken, models, normalizers, pre_tokenizers, decoders, processors
    tk = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges)))
    if nfc:
        tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space, trim_offsets=True)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=True)
    for content, special, normalized in ADDED:
        at = AddedToken(content, special=special, normalized=normalized, lstrip=False, rstrip=False,
                        single_word=False)
        if special:
            tk.add_special_tokens([at])
        else:
            tk.add_tokens([at])
    return tk


def dry_tokenizer_json(vocab, merges, nfc=True, prefix_space=False):
    """--dry-run stand-in for tokenizers' own serialisation (same schema, written by hand)."""
    added = [{"id": N_BPE + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": n, "special": s} for i, (c, s, n) in enumerate(ADDED)]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFC"} if nfc else None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": prefix_space, "trim_offsets": True,
                              "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": vocab, "merges": [[a, b] for a, b in merges]}}


class RefBPE:
    """From-scratch byte-level BPE (dry run only): added tokens split out first, GPT-2 regex, merges."""

    def __init__(self, vocab, merges, specials, nfc=True):
        import re
        self.nfc = nfc
        self.enc, self.ranks = vocab, {m: i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()
        self.specials = specials
        try:
            import regex
            self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        except ImportError:
            self.pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")

    def bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            parts[bi:bi + 2] = [parts[bi] + parts[bi + 1]]
        return parts

    def encode(self, text):
        import unicodedata
        ids, i, seg = [], 0, ""
        keys = sorted(self.specials, key=len, reverse=True)
        while i <= len(text):
            hit = next((k for k in keys if text.startswith(k, i)), None) if i < len(text) else None
            if hit is None and i < len(text):
                seg += text[i]
                i += 1
                continue
            if self.nfc:
                seg = unicodedata.normalize("NFC", seg)
            for m in self.pat.findall(seg):
                u = "".join(self.b2u[b] for b in m.encode("utf-8"))
                ids.extend(self.enc[p] for p in self.bpe(u))
            seg = ""
            if hit is None:
                break
            ids.append(self.specials[hit])
            i += len(hit)
        return ids


# ============================================================== parameters
def make_params(mc):
    """Random parameters with HF names, float32 (rounded to bf16 for bf16 models). std 0.1-0.25 so
    logits are far from flat; LayerNorm weights 1+0.3*randn and biases 0.2*randn."""
    g = torch.Generator().manual_seed(mc["seed"])
    C, L, V = mc["C"], mc["n_layer"], mc["V"]

    def rn(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean
    p = {}
    if mc["arch"] == "gptj":
        F = 4 * C
        p["transformer.wte.weight"] = rn(V, C, std=0.25)
        for i in range(L):
            pre = "transformer.h.%d." % i
            p[pre + "ln_1.weight"] = rn(C, std=0.3, mean=1.0)
            p[pre + "ln_1.bias"] = rn(C, std=0.2)
            for w in ("q_proj", "k_proj", "v_proj", "out_proj"):
                p[pre + "attn.%s.weight" % w] = rn(C, C, std=0.25)
            p[pre + "mlp.fc_in.weight"] = rn(F, C, std=0.25)
            p[pre + "mlp.fc_in.bias"] = rn(F, std=0.1)
            p[pre + "mlp.fc_out.weight"] = rn(C, F, std=0.15)
            p[pre + "mlp.fc_out.bias"] = rn(C, std=0.1)
        p["transformer.ln_f.weight"] = rn(C, std=0.3, mean=1.0)
        p["transformer.ln_f.bias"] = rn(C, std=0.2)
        p["lm_head.weight"] = rn(V, C, std=0.25)
        p["lm_head.bias"] = rn(V, std=0.2)
    else:
        F = mc["inner"]
        p["gpt_neox.embed_in.weight"] = rn(V, C, std=0.25)
        for i in range(L):
            pre = "gpt_neox.layers.%d." % i
            for ln in ("input_layernorm", "post_attention_layernorm"):
                p[pre + ln + ".weight"] = rn(C, std=0.3, mean=1.0)
                p[pre + ln + ".bias"] = rn(C, std=0.2)
            p[pre + "attention.query_key_value.weight"] = rn(3 * C, C, std=0.25)
            p[pre + "attention.dense.weight"] = rn(C, C, std=0.25)
            if mc["bias"]:
                p[pre + "attention.query_key_value.bias"] = rn(3 * C, std=0.1)
                p[pre + "attention.dense.bias"] = rn(C, std=0.1)
            p[pre + "mlp.dense_h_to_4h.weight"] = rn(F, C, std=0.25)
            p[pre + "mlp.dense_h_to_4h.bias"] = rn(F, std=0.1)
            p[pre + "mlp.dense_4h_to_h.weight"] = rn(C, F, std=0.15)
            p[pre + "mlp.dense_4h_to_h.bias"] = rn(C, std=0.1)
        p["gpt_neox.final_layer_norm.weight"] = rn(C, std=0.3, mean=1.0)
        p["gpt_neox.final_layer_norm.bias"] = rn(C, std=0.2)
        p["embed_out.weight"] = rn(V, C, std=0.25)
    if mc["dtype"] == "bf16":
        p = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in p.items()}
    return p


# ============================================================== float64 reference
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rope(x, pos, r, theta, interleaved):
    """x (T, H, D): rotate dims [0, r) of each head. interleaved: GPT-J pairs (2i, 2i+1);
    else NeoX pairs (i, i + r/2)."""
    inv = 1.0 / (theta ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
    ang = pos.to(torch.float64)[:, None] * inv[None, :]           # (T, r/2)
    cos, sin = ang.cos()[:, None, :].to(x.dtype), ang.sin()[:, None, :].to(x.dtype)
    out = x.clone()
    if interleaved:
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        out[..., 0:r:2] = a * cos - b * sin
        out[..., 1:r:2] = b * cos + a * sin
    else:
        h = r // 2
        a, b = x[..., :h], x[..., h:r]
        out[..., :h] = a * cos - b * sin
        out[..., h:r] = b * cos + a * sin
    return out


def ref_forward(P, mc, ids, dtype=torch.float64):
    W = {k: v.to(dtype) for k, v in P.items()}
    T, C, H = len(ids), mc["C"], mc["NH"]
    D = C // H
    pos = torch.arange(T)
    hk = {}
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    ids_t = torch.tensor(ids, dtype=torch.long)
    gptj = mc["arch"] == "gptj"
    x = (W["transformer.wte.weight"] if gptj else W["gpt_neox.embed_in.weight"])[ids_t]
    hk["hook_embed"] = x
    for L in range(mc["n_layer"]):
        hk["blocks.%d.hook_resid_pre" % L] = x
        if gptj:
            pre = "transformer.h.%d." % L
            h = layer_norm(x, W[pre + "ln_1.weight"], W[pre + "ln_1.bias"])
            q = (h @ W[pre + "attn.q_proj.weight"].T).reshape(T, H, D)
            k = (h @ W[pre + "attn.k_proj.weight"].T).reshape(T, H, D)
            v = (h @ W[pre + "attn.v_proj.weight"].T).reshape(T, H, D)
            q, k = rope(q, pos, mc["rotary_dim"], 10000.0, True), rope(k, pos, mc["rotary_dim"], 10000.0, True)
        else:
            pre = "gpt_neox.layers.%d." % L
            h = layer_norm(x, W[pre + "input_layernorm.weight"], W[pre + "input_layernorm.bias"])
            qkv = h @ W[pre + "attention.query_key_value.weight"].T
            if mc["bias"]:
                qkv = qkv + W[pre + "attention.query_key_value.bias"]
            qkv = qkv.reshape(T, H, 3 * D)
            q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
            r = int(D * mc["rotary_pct"])
            q, k = rope(q, pos, r, mc["theta"], False), rope(k, pos, r, mc["theta"], False)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D)
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1)
        hk["blocks.%d.attn.hook_pattern" % L] = a
        z = torch.einsum("hts,shd->thd", a, v)
        hk["blocks.%d.attn.hook_z" % L] = z
        if gptj:
            attn_out = z.reshape(T, C) @ W[pre + "attn.out_proj.weight"].T
            hk["blocks.%d.hook_attn_out" % L] = attn_out
            post = gelu_new(h @ W[pre + "mlp.fc_in.weight"].T + W[pre + "mlp.fc_in.bias"])
            hk["blocks.%d.mlp.hook_post" % L] = post
            mlp_out = post @ W[pre + "mlp.fc_out.weight"].T + W[pre + "mlp.fc_out.bias"]
            hk["blocks.%d.hook_mlp_out" % L] = mlp_out
            x = x + attn_out + mlp_out
        else:
            attn_out = z.reshape(T, C) @ W[pre + "attention.dense.weight"].T
            if mc["bias"]:
                attn_out = attn_out + W[pre + "attention.dense.bias"]
            hk["blocks.%d.hook_attn_out" % L] = attn_out
            if mc["parallel"]:
                m_in = x
            else:
                m_in = x + attn_out
                hk["blocks.%d.hook_resid_mid" % L] = m_in
            h2 = layer_norm(m_in, W[pre + "post_attention_layernorm.weight"], W[pre + "post_attention_layernorm.bias"])
            post = gelu_erf(h2 @ W[pre + "mlp.dense_h_to_4h.weight"].T + W[pre + "mlp.dense_h_to_4h.bias"])
            hk["blocks.%d.mlp.hook_post" % L] = post
            mlp_out = post @ W[pre + "mlp.dense_4h_to_h.weight"].T + W[pre + "mlp.dense_4h_to_h.bias"]
            hk["blocks.%d.hook_mlp_out" % L] = mlp_out
            x = x + attn_out + mlp_out if mc["parallel"] else m_in + mlp_out
        hk["blocks.%d.hook_resid_post" % L] = x
    if gptj:
        xf = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"])
        logits = xf @ W["lm_head.weight"].T + W["lm_head.bias"]
    else:
        xf = layer_norm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"])
        logits = xf @ W["embed_out.weight"].T
    hk["ln_final.hook_normalized"] = xf
    return logits, hk


def hook_names(mc):
    names = ["hook_embed"]
    for L in range(mc["n_layer"]):
        per = ["hook_resid_pre", "attn.hook_z", "attn.hook_pattern", "hook_attn_out", "mlp.hook_post",
               "hook_mlp_out", "hook_resid_post"]
        if mc["arch"] == "neox" and not mc["parallel"]:
            per.append("hook_resid_mid")
        names += ["blocks.%d.%s" % (L, s) for s in per]
    return names + ["ln_final.hook_normalized"]


# ============================================================== HF model
def hf_config(mc, bos):
    common = dict(bos_token_id=bos, eos_token_id=bos, tie_word_embeddings=False)
    if mc["arch"] == "gptj":
        cfg = GPTJConfig(vocab_size=mc["V"], n_positions=mc["P"], n_embd=mc["C"], n_layer=mc["n_layer"],
                         n_head=mc["NH"], rotary_dim=mc["rotary_dim"], n_inner=None,
                         activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.1,
                         embd_pdrop=0.1, attn_pdrop=0.1, **common)
    else:
        cfg = GPTNeoXConfig(vocab_size=mc["V"], hidden_size=mc["C"], num_hidden_layers=mc["n_layer"],
                            num_attention_heads=mc["NH"], intermediate_size=mc["inner"], hidden_act="gelu",
                            rotary_pct=mc["rotary_pct"], rotary_emb_base=mc["theta"],
                            max_position_embeddings=mc["P"], layer_norm_eps=1e-5,
                            use_parallel_residual=mc["parallel"], attention_bias=mc["bias"],
                            hidden_dropout=0.1, attention_dropout=0.1, **common)
    try:
        cfg._attn_implementation = "eager"
    except Exception as e:
        META["notes"].append("could not set eager attention on the config: %r" % (e,))
    return cfg


def build_hf(mc, P, bos):
    cfg = hf_config(mc, bos)
    cls = GPTJForCausalLM if mc["arch"] == "gptj" else GPTNeoXForCausalLM
    model = cls(cfg)
    try:
        model.set_attn_implementation("eager")
    except Exception:
        pass
    sd = model.state_dict()
    # transformers 5 calls NeoX's output embedding lm_head (the files on the Hub: embed_out)
    alias = ({"embed_out.weight": "lm_head.weight"} if "embed_out.weight" in P and "embed_out.weight" not in sd
             and "lm_head.weight" in sd else {})
    if alias:
        META["notes"].append("%s: HF's module is lm_head for the file's embed_out" % mc["name"])
    PP = {alias.get(k, k): v for k, v in P.items()}
    missing = [k for k in PP if k not in sd]
    check(not missing, "%s: parameters HF does not have: %s" % (mc["name"], missing[:5]))
    with torch.no_grad():
        for k, v in sd.items():
            if k in PP:
                check(tuple(v.shape) == tuple(PP[k].shape), "%s: shape of %s" % (mc["name"], k))
                v.copy_(PP[k])
            elif v.is_floating_point() and ("inv_freq" in k or "embed_positions" in k or "masked_bias" in k
                                            or k.endswith(".attn.bias") or k.endswith("attention.bias")):
                pass  # buffers
            else:
                check(False, "%s: HF tensor %s not set by the script" % (mc["name"], k))
    model.eval()
    return model


class HFRun:
    def __init__(self, model, mc):
        self.m, self.mc = model, mc
        self.base = model.transformer if mc["arch"] == "gptj" else model.gpt_neox

    def hooks(self, cap):
        b, mc, hs = self.base, self.mc, []
        H, D = mc["NH"], mc["C"] // mc["NH"]

        def out_hook(name):
            def fn(mod, inp, out):
                o = out[0] if isinstance(out, (tuple, list)) else out
                cap[name] = o[0].detach().clone()
            return fn

        def in_hook(name, shape=None):
            def fn(mod, args, kwargs):
                i = args[0] if args else kwargs["hidden_states"]
                i = i[0]
                cap[name] = (i.reshape(i.shape[0], *shape) if shape else i).detach().clone()
            return fn
        gptj = mc["arch"] == "gptj"
        blocks = b.h if gptj else b.layers
        hs.append((b.wte if gptj else b.embed_in).register_forward_hook(out_hook("hook_embed")))
        for L, blk in enumerate(blocks):
            pre = "blocks.%d." % L
            hs.append(blk.register_forward_pre_hook(in_hook(pre + "hook_resid_pre"), with_kwargs=True))
            attn = blk.attn if gptj else blk.attention
            o = attn.out_proj if gptj else attn.dense
            hs.append(o.register_forward_pre_hook(in_hook(pre + "attn.hook_z", (H, D)), with_kwargs=True))
            hs.append(o.register_forward_hook(out_hook(pre + "hook_attn_out")))
            if not gptj and not mc["parallel"]:
                hs.append(blk.post_attention_layernorm.register_forward_pre_hook(
                    in_hook(pre + "hook_resid_mid"), with_kwargs=True))
            hs.append(blk.mlp.act.register_forward_hook(out_hook(pre + "mlp.hook_post")))
            hs.append(blk.mlp.register_forward_hook(out_hook(pre + "hook_mlp_out")))
            hs.append(blk.register_forward_hook(out_hook(pre + "hook_resid_post")))
        hs.append((b.ln_f if gptj else b.final_layer_norm).register_forward_hook(out_hook("ln_final.hook_normalized")))
        return hs

    @torch.no_grad()
    def run(self, ids, capture=True):
        cap = {}
        hs = self.hooks(cap) if capture else []
        try:
            o = self.m(input_ids=torch.tensor([ids]), output_hidden_states=True, output_attentions=capture,
                       use_cache=False)
        finally:
            for h in hs:
                h.remove()
        if capture:
            if o.attentions is not None and all(a is not None for a in o.attentions):
                for L, a in enumerate(o.attentions):
                    cap["blocks.%d.attn.hook_pattern" % L] = a[0].detach().clone()
            else:
                check(False, "%s: HF returned no attentions" % self.mc["name"])
        return o.logits[0], torch.stack([h[0] for h in o.hidden_states]), cap

    @torch.no_grad()
    def generate(self, ids, n):
        gc = self.m.generation_config
        gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = None, 0, None
        out = self.m.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, num_beams=1,
                              attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        return [int(t) for t in out[0, len(ids):]]


class RefRun:
    def __init__(self, P, mc):
        self.P, self.mc = P, mc

    def run(self, ids, capture=True):
        logits, hk = ref_forward(self.P, self.mc, ids, dtype=torch.float32)
        hs = [hk["blocks.%d.hook_resid_pre" % L] for L in range(self.mc["n_layer"])] + [hk["ln_final.hook_normalized"]]
        return logits, torch.stack(hs), hk

    def generate(self, ids, n):
        return greedy_recompute(self, ids, n)[0]


def greedy_recompute(runner, ids, n):
    seq, out, gaps = list(ids), [], []
    for _ in range(n):
        logits, _, _ = runner.run(seq, capture=False)
        top = torch.topk(logits[-1].double(), 2)
        gaps.append(float(top.values[0] - top.values[1]))
        out.append(int(top.indices[0]))
        seq.append(out[-1])
    return out, gaps


# ============================================================== writing checkpoints
_ST_DT = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_st(tensors, path):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(tensors):
        v = tensors[k].contiguous()
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


def read_st_names(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return [k for k in json.loads(fh.read(n)) if k != "__metadata__"]


def dry_config(mc, bos):
    if mc["arch"] == "gptj":
        return {"architectures": ["GPTJForCausalLM"], "model_type": "gptj", "vocab_size": mc["V"],
                "n_positions": mc["P"], "n_embd": mc["C"], "n_layer": mc["n_layer"], "n_head": mc["NH"],
                "rotary_dim": mc["rotary_dim"], "n_inner": None, "activation_function": "gelu_new",
                "layer_norm_epsilon": 1e-5, "bos_token_id": bos, "eos_token_id": bos, "tie_word_embeddings": False}
    return {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": mc["V"],
            "hidden_size": mc["C"], "num_hidden_layers": mc["n_layer"], "num_attention_heads": mc["NH"],
            "intermediate_size": mc["inner"], "hidden_act": "gelu", "max_position_embeddings": mc["P"],
            "layer_norm_eps": 1e-5, "use_parallel_residual": mc["parallel"], "attention_bias": mc["bias"],
            "rope_parameters": {"rope_type": "default", "rope_theta": mc["theta"],
                                "partial_rotary_factor": mc["rotary_pct"]},
            "bos_token_id": bos, "eos_token_id": bos, "tie_word_embeddings": False}


def save_checkpoint(mc, P, model, d, bos):
    os.makedirs(d, exist_ok=True)
    dt = torch.bfloat16 if mc["dtype"] == "bf16" else torch.float32
    if model is not None:
        m = model.to(dt)
        kw = {"safe_serialization": True}
        if mc["shard"]:
            kw["max_shard_size"] = mc["shard"]
        m.save_pretrained(d, **kw)
        model.to(torch.float32)
        if mc.get("pythia_names"):  # the output embedding under the name Pythia's files use
            from safetensors.torch import load_file, save_file
            f = os.path.join(d, "model.safetensors")
            T = load_file(f)
            if "lm_head.weight" in T:
                T["embed_out.weight"] = T.pop("lm_head.weight")
                save_file(T, f, metadata={"format": "pt"})
            META.setdefault("saved_names", {})[mc["name"]] = sorted(T)
        else:
            names = []
            for fn in sorted(os.listdir(d)):
                if fn.endswith(".safetensors"):
                    names += sorted(read_st_names(os.path.join(d, fn)))
            META.setdefault("saved_names", {})[mc["name"]] = names
        return
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(dry_config(mc, bos), fh, indent=2)
    T = {k: v.to(dt) for k, v in P.items()}
    if not mc["shard"]:
        write_st(T, os.path.join(d, "model.safetensors"))
        return
    keys = sorted(T)
    parts = [keys[i::3] for i in range(3)]
    wm = {}
    for i, ks in enumerate(parts):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
        write_st({k: T[k] for k in ks}, os.path.join(d, fn))
        wm.update({k: fn for k in ks})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": sum(v.numel() * v.element_size() for v in T.values())},
                   "weight_map": wm}, fh, indent=2)


# ============================================================== per model
def model_fixture(out, mc, tok_encode, bos, dry, tok_files):
    name = mc["name"]
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    P = make_params(mc)
    model = None if dry else build_hf(mc, P, bos)
    runner = RefRun(P, mc) if dry else HFRun(model, mc)
    ids = [bos] + tok_encode(PROMPT)
    log(name, "ids", ids)
    ck = META["checks"].setdefault(name, {})
    check(max(ids) < mc["V"] and len(ids) + GEN_NEW <= mc["P"], "%s: prompt ids / length" % name)
    logits, hidden, cap = runner.run(ids)
    ref_logits, ref_hk = ref_forward(P, mc, ids)
    scale = float(ref_logits.abs().max())
    ck["logits_vs_f64"] = maxdiff(logits, ref_logits)
    check(ck["logits_vs_f64"] <= 1e-4 * max(1.0, scale), "%s: logits vs float64 reference %g" % (name, ck["logits_vs_f64"]))
    worst = 0.0
    for h in hook_names(mc):
        if h not in cap:
            check(False, "%s: hook %s not captured" % (name, h))
            continue
        a, b = cap[h], ref_hk[h]
        check(tuple(a.shape) == tuple(b.shape), "%s: %s shape %s vs ref %s" % (name, h, tuple(a.shape), tuple(b.shape)))
        rel = maxdiff(a, b) / max(1e-30, float(b.abs().max()))
        worst = max(worst, rel)
        check(rel <= 1e-5, "%s: hook %s vs float64 reference rel %g" % (name, h, rel))
    ck["hooks_vs_f64_rel"] = worst
    for L in range(mc["n_layer"]):
        check(maxdiff(hidden[L], cap["blocks.%d.hook_resid_pre" % L]) == 0, "%s: hidden_states[%d] != resid_pre" % (name, L))
    check(maxdiff(hidden[-1], cap["ln_final.hook_normalized"]) == 0, "%s: last hidden state != ln_final" % name)
    gen = runner.generate(ids, GEN_NEW)
    rec, gaps = greedy_recompute(runner, ids, GEN_NEW)
    check(gen == rec, "%s: HF generate %s != greedy recompute %s" % (name, gen, rec))
    ck["greedy_min_gap"] = min(gaps)
    check(min(gaps) > 1e-3, "%s: a greedy step is nearly tied (gap %g)" % (name, min(gaps)))

    save_checkpoint(mc, P, model, d, bos)
    for src, dst in tok_files:
        shutil.copyfile(src, os.path.join(d, dst))
    if not dry:  # the saved files reload to the same numbers
        cls = GPTJForCausalLM if mc["arch"] == "gptj" else GPTNeoXForCausalLM
        re_m = cls.from_pretrained(d, dtype=torch.float32)
        re_m.eval()
        with torch.no_grad():
            l2 = re_m(input_ids=torch.tensor([ids])).logits[0]
        ck["reload_logits_diff"] = maxdiff(l2, logits)
        check(ck["reload_logits_diff"] <= 1e-5 * max(1.0, scale), "%s: reload differs by %g" % (name, ck["reload_logits_diff"]))
        with open(os.path.join(d, "config.json")) as fh:
            META.setdefault("configs", {})[name] = json.load(fh)
    rd = os.path.join(d, "ref")
    save_json(os.path.join(rd, "ids.json"), ids)
    save_npy(os.path.join(rd, "logits.npy"), t2np(logits))
    save_npy(os.path.join(rd, "hidden_states.npy"), t2np(hidden))
    for h in hook_names(mc):
        if h in cap:
            save_npy(os.path.join(rd, h + ".npy"), t2np(cap[h]))
    save_json(os.path.join(rd, "generate.json"), {"prompt": PROMPT, "ids": ids, "greedy": gen, "min_gap": min(gaps),
                                                   "text": None})
    log(name, json.dumps(ck))
    return gen


# ============================================================== tokenizer fixtures
def tokenizer_fixtures(out, tokdir, dry):
    vocab, merges = small_vocab(tokdir)
    td = os.path.join(out, "tok")
    if os.path.isdir(td):
        shutil.rmtree(td)
    os.makedirs(td)
    write_gpt2_files(td, vocab, merges)
    variants = {"tokenizer.json": dict(nfc=True, prefix_space=False),
                "tokenizer_prefix.json": dict(nfc=False, prefix_space=True)}
    encoders = {}
    for fn, kw in variants.items():
        p = os.path.join(td, fn)
        if dry:
            save_json(p, dry_tokenizer_json(vocab, merges, **kw))
            specials = {c: N_BPE + i for i, (c, s, n) in enumerate(ADDED)}
            if kw["prefix_space"]:
                META["notes"].append("dry run: no ids for %s" % fn)
                continue
            rb = RefBPE(vocab, merges, specials)
            encoders[fn] = rb.encode
        else:
            tk = build_tokenizer_json(vocab, merges, **kw)
            tk.save(p)
            from tokenizers import Tokenizer
            tk2 = Tokenizer.from_file(p)
            encoders[fn] = (lambda t, tk2=tk2: tk2.encode(t, add_special_tokens=False).ids)
    # the same tokenizer with merges as "a b" strings (the older serialisation): must give the same ids
    with open(os.path.join(td, "tokenizer.json"), encoding="utf-8") as fh:
        tj = json.load(fh)
    mg = tj["model"]["merges"]
    META["checks"]["tokenizer_json_merges_form"] = "list" if mg and isinstance(mg[0], list) else "string"
    tj["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in mg]
    save_json(os.path.join(td, "tokenizer_strmerges.json"), tj)
    if not dry:
        from tokenizers import Tokenizer
        tk3 = Tokenizer.from_file(os.path.join(td, "tokenizer_strmerges.json"))
        encoders["tokenizer_strmerges.json"] = (lambda t: tk3.encode(t, add_special_tokens=False).ids)
        # GPT-J's files: GPT2TokenizerFast from a folder holding ONLY vocab.json + merges.txt (with a
        # tokenizer.json beside them, transformers would read that instead)
        from transformers import GPT2TokenizerFast
        import tempfile
        g2, gdir = None, tempfile.mkdtemp()
        for fn in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(td, fn), os.path.join(gdir, fn))
        for how, make in (("from_pretrained(dir)", lambda: GPT2TokenizerFast.from_pretrained(gdir)),
                          ("vocab_file=, merges_file=", lambda: GPT2TokenizerFast(
                              vocab_file=os.path.join(gdir, "vocab.json"), merges_file=os.path.join(gdir, "merges.txt")))):
            try:
                g = make()
                if g("Hello world", add_special_tokens=False)["input_ids"] == [39, 695, 78, 995]:
                    g2 = g
                    META["notes"].append("GPT2TokenizerFast for vocab.json: " + how)
                    break
            except Exception as e:
                META["notes"].append("GPT2TokenizerFast on the small files (%s): %r" % (how, e))
        check(g2 is not None, "GPT2TokenizerFast could not load the small vocab.json/merges.txt")
        rb = RefBPE(vocab, merges, {EOT: N_BPE}, nfc=False)
        if g2 is not None:
            encoders["vocab.json"] = (lambda t: g2(t, add_special_tokens=False)["input_ids"])
            bad = [t for t in TOKEN_TEXTS if encoders["vocab.json"](t) != rb.encode(t)]
            check(not bad, "GPT2TokenizerFast and the from-scratch BPE disagree on %r" % bad[:3])
    else:
        rb2 = RefBPE(vocab, merges, {EOT: N_BPE}, nfc=False)
        encoders["vocab.json"] = rb2.encode
        META["notes"].append("dry run: vocab.json ids from the from-scratch BPE")
    entries = []
    for text in TOKEN_TEXTS:
        e = {"text": text}
        for fn, enc in encoders.items():
            e[fn] = enc(text)
        entries.append(e)
    if "tokenizer.json" in encoders and "tokenizer_strmerges.json" in encoders:
        check(all(e["tokenizer.json"] == e["tokenizer_strmerges.json"] for e in entries),
              "merges as strings give other ids than merges as lists")
    save_json(os.path.join(td, "tokens.json"), entries)
    return vocab, merges, encoders


def write_readme(out):
    rows = []
    for root, _, files in os.walk(out):
        for f in sorted(files):
            p = os.path.join(root, f)
            rows.append((os.path.relpath(p, out), os.path.getsize(p)))
    rows.sort()
    total = sum(s for _, s in rows)
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("# GPT-J / GPT-NeoX fixtures (generated by tests/make_fixtures_arch.py; do not edit)\n\n")
        fh.write("See the script's docstring for how they were made and the semantics they pin down.\n\n")
        fh.write("| path | what |\n| --- | --- |\n")
        fh.write("| `tok/vocab.json, merges.txt` | GPT-2's first 256 bytes + 2000 merges, `<|endoftext|>` = 2256 (GPT-J's tokenizer files) |\n")
        fh.write("| `tok/tokenizer.json` | the same BPE as HF tokenizers saves it: NFC normalizer, ByteLevel pre-tokenizer, added tokens `<|endoftext|>` 2256 and `<|padding|>` 2257 (special), `'    '` 2258 and `'  '` 2259 (normalized), `SAEsteer` 2260 |\n")
        fh.write("| `tok/tokenizer_strmerges.json` | the same with merges as `\"a b\"` strings |\n")
        fh.write("| `tok/tokenizer_prefix.json` | no normalizer, ByteLevel add_prefix_space true |\n")
        fh.write("| `tok/tokens.json` | per text: ids from HF for each tokenizer file (key = file name; `vocab.json` = GPT2TokenizerFast) |\n")
        fh.write("| `<model>/` | checkpoint as save_pretrained wrote it (config.json, safetensors or index + shards) + tokenizer files |\n")
        fh.write("| `<model>/ref/ids.json` | BOS + the prompt's ids |\n")
        fh.write("| `<model>/ref/logits.npy` | (T, V) logits |\n")
        fh.write("| `<model>/ref/hidden_states.npy` | (n_layer+1, T, C) |\n")
        fh.write("| `<model>/ref/<hook>.npy` | every TransformerLens hook the architecture has |\n")
        fh.write("| `<model>/ref/generate.json` | greedy continuation (HF generate == greedy recompute) |\n")
        fh.write("| `meta.json` | versions, configs, self-check numbers |\n\n```\n")
        for r, s in rows:
            fh.write("%10d  %s\n" % (s, r))
        fh.write("```\n")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures", "arch"))
    ap.add_argument("--tokdir", default=None)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    dry = args.dry_run
    if not dry and not (HAVE_HF and HAVE_TOK):
        sys.exit("transformers/tokenizers not importable; use --dry-run")
    torch.manual_seed(0)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    tokdir = find_tokdir(args.tokdir)
    META.update({"torch": torch.__version__, "transformers": transformers.__version__ if HAVE_HF and not dry else None,
                 "tokenizers": tokenizers.__version__ if HAVE_TOK and not dry else None, "dry_run": dry,
                 "prompt": PROMPT, "models": MODELS})
    vocab, merges, enc = tokenizer_fixtures(out, tokdir, dry)
    td = os.path.join(out, "tok")
    for mc in MODELS:
        try:
            if mc["arch"] == "gptj":
                e = enc["vocab.json"]
                files = [(os.path.join(td, "vocab.json"), "vocab.json"), (os.path.join(td, "merges.txt"), "merges.txt")]
            else:
                e = enc["tokenizer.json"]
                files = [(os.path.join(td, "tokenizer.json"), "tokenizer.json")]
            model_fixture(out, mc, e, N_BPE, dry, files)
        except Exception:
            check(False, "%s crashed: %s" % (mc["name"], traceback.format_exc()[-600:]))
            traceback.print_exc()
    save_json(os.path.join(out, "meta.json"), META)
    total = write_readme(out)
    log("fixtures total bytes: %d (%.2f MB)" % (total, total / 1e6))
    if META["notes"]:
        print("NOTES:", *META["notes"], sep="\n  ", flush=True)
    if META["failures"]:
        log("FAILED CHECKS: %d" % len(META["failures"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
