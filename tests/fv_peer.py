#!/usr/bin/env python3
"""fv_peer.py - an independent plain-PyTorch (float64, CPU) reimplementation of saesteer's task-vector
and fv experiments, for tests/cli_fv.sh.

It rebuilds everything from the dataset and the documented rules (README, lib/fv.h), not from saesteer's
outputs: the template is expanded by its own parser, the items are split and the prompts sampled with
the same splitmix64 sequence, and the model is the plain-torch GPT-2 of tests/make_fixtures_fv.py (its
hooks were checked against HF transformers to 1e-15, tests/fixtures/fv/meta.json). CIEs are computed
by full recomputation of every patched prompt (saesteer reuses the prefix's KV cache). The one thing
borrowed is the tokenizer: prompts are tokenised by `saesteer tokenize` (checked against HF's on its
own in tests/test_tokenizer.c).

    fv_peer.py run --model DIR --saesteer BIN --dataset F [--template T] [--shots N] [--n-prompts N]
                   [--n-eval N] [--seed S] [--no-bos] --layers 0,1 [--mode replace|add]
                   [--heads-list 1.2,0.3 | --top-k K] [--metric prob|logprob] > ref.json
    fv_peer.py make-dataset --model DIR --saesteer BIN --n N > dataset.json
        N single-token words; for every other item the output is the model's own zero-shot greedy
        answer, so that accuracies are neither all 0 nor all 1 on a random model.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures_fv import TorchGPT2  # noqa: E402

M64 = (1 << 64) - 1
BOS = 50256
DEFAULT_TEMPLATE = "Q: {x}\\nA: {y}\\n\\n"


class Rng:
    """splitmix64, seeded as saesteer does"""

    def __init__(self, seed):
        self.s = (seed * 0x2545F4914F6CDD1D + 1) & M64

    def below(self, n):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return (z ^ (z >> 31)) % n


def parse_template(spec):
    """-> (pre, mid, post, space), by the documented rules"""
    out, i = "", 0
    marks = []
    while i < len(spec):
        c = spec[i]
        if c == "\\":
            out += {"n": "\n", "t": "\t", "\\": "\\"}[spec[i + 1]]
            i += 2
        elif spec.startswith("{{", i) or spec.startswith("}}", i):
            out += c
            i += 2
        elif spec.startswith("{x}", i) or spec.startswith("{y}", i):
            marks.append((spec[i + 1], len(out)))
            i += 3
        else:
            assert c not in "{}", spec
            out += c
            i += 1
    assert [m for m, _ in marks] == ["x", "y"], spec
    (_, ix), (_, iy) = marks
    pre, mid, post = out[:ix], out[ix:iy], out[iy:]
    space = mid.endswith(" ")
    if space:
        mid = mid[:-1]
    assert mid and post
    return pre, mid, post, space


class Tok:
    """saesteer tokenize, one process per new string; FV_PEER_TOK_CACHE names a JSON file that keeps
    the ids between runs of this script (the tests run it several times on the same strings)"""

    def __init__(self, binary, model):
        self.b, self.m, self.cache = binary, model, {}
        self.path = os.environ.get("FV_PEER_TOK_CACHE")
        if self.path and os.path.exists(self.path):
            self.cache = json.load(open(self.path))

    def save(self):
        if self.path:
            json.dump(self.cache, open(self.path, "w"))

    def __call__(self, s):
        if s not in self.cache:
            out = subprocess.run([self.b, "tokenize", "--model", self.m, "--text", s, "--json"], check=True,
                                 capture_output=True, text=True).stdout
            self.cache[s] = json.loads(out)["ids"]
        return self.cache[s]


def decoder(model):
    """token id -> text (GPT-2 byte-level BPE)"""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs)}
    vocab = json.load(open(os.path.join(model, "vocab.json")))
    inv = {v: k for k, v in vocab.items()}
    return lambda i: bytes(byte_of[ch] for ch in inv[i]).decode("utf-8", errors="replace")


def build(d, tpl, shots, n_prompts, n_eval, seed):
    """(eval items, pool, eval prompts [(q, text_icl, text_shuf)], mean prompts [(q, text_clean, text_shuf)])"""
    pre, mid, post, space = tpl
    sp = " " if space else ""
    n = len(d)
    if n_eval == 0:
        n_eval = min(50, n // 2, n - shots - 1)
    assert n_eval + shots + 1 <= n
    rng = Rng(seed)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    ev, pool = order[:n_eval], order[n_eval:]

    def text(q, sh, perm=None):
        s = ""
        for i, k in enumerate(sh):
            y = d[sh[perm[i]] if perm else k]["output"]
            s += pre + d[k]["input"] + mid + sp + y + post
        return s + pre + d[q]["input"] + mid

    def pair(q):
        cand = [x for x in pool if x != q]
        for k in range(shots):
            j = k + rng.below(len(cand) - k)
            cand[k], cand[j] = cand[j], cand[k]
        sh = cand[:shots]
        perm = list(range(shots))
        for k in range(shots - 1, 0, -1):
            j = rng.below(k + 1)
            perm[k], perm[j] = perm[j], perm[k]
        if perm == list(range(shots)) and shots > 1:
            perm = [(k + 1) % shots for k in range(shots)]
        assert q not in sh and not set(sh) & set(ev)
        return text(q, sh), text(q, sh, perm)

    evp = [(q,) + pair(q) for q in ev]
    meanp = [(pool[i % len(pool)],) + pair(pool[i % len(pool)]) for i in range(n_prompts)]
    # the documented guarantee: no evaluation item is ever an example or an ICL query for the means
    assert not set(ev) & set(pool) and all(q in pool for q, _, _ in meanp)
    return ev, pool, evp, meanp, text


def cmd_run(a):
    torch.set_grad_enabled(False)
    M = TorchGPT2(a.model)
    tok = Tok(a.saesteer, a.model)
    d = json.load(open(a.dataset))
    tpl = parse_template(a.template)
    L, C, NH = M.L, M.C, M.NH
    HS = C // NH
    ev, pool, evp, meanp, text = build(d, tpl, a.shots, a.n_prompts, a.n_eval, a.seed)
    bos = [] if a.no_bos else [BOS]

    def P(s, q):
        return {"ids": bos + tok(s), "answer": tok((" " if tpl[3] else "") + d[q]["output"])[0]}

    zero = [P(text(q, []), q) for q in ev]
    icl = [P(t, q) for q, t, _ in evp]
    shuf = [P(s, q) for q, _, s in evp]
    mclean = [P(t, q) for q, t, _ in meanp]
    mshuf = [P(s, q) for q, _, s in meanp]

    def score(prompts, edit=None):
        """accuracy, mean log p(answer), and the items whose argmax is within 1e-3 of a tie (ambiguous in f32)"""
        acc, lp, amb = 0, 0.0, 0
        for p in prompts:
            e = None if edit is None else (edit[0], edit[1], edit[2], len(p["ids"]) - 1)
            lg = M.run(p["ids"], resid_edit=e)[0]
            ls = lg.log_softmax(-1)
            acc += int(lg.argmax()) == p["answer"]
            lp += float(ls[p["answer"]])
            other = lg.clone()
            other[p["answer"]] = -float("inf")
            amb += abs(float(lg[p["answer"]] - other.max())) < 1e-3
        return acc / len(prompts), lp / len(prompts), amb

    out = {"eval_items": ev, "pool": pool, "prompt_example": evp[0][1]}
    for name, ps in (("zero_shot", zero), ("icl", icl), ("shuffled", shuf)):
        out[name + "_acc"], out[name + "_logprob"], out[name + "_ambiguous"] = score(ps)
    layers = [int(x) for x in a.layers.split(",")]
    sweep = []
    if a.what == "task-vector":
        hs = []
        for l in layers:
            h = torch.stack([M.run(p["ids"])[2][l, -1] for p in mclean]).mean(0)
            acc, lp, amb = score(zero, (l, "add" if a.mode == "add" else "set", h))
            sweep.append({"layer": l, "acc": acc, "logprob": lp, "ambiguous": amb, "h_norm": float(h.norm())})
            hs.append(h.tolist())
        out["h"] = hs
    else:
        zbar = torch.stack([M.run(p["ids"])[1] for p in mclean]).mean(0)       # (L, C)
        cie = torch.zeros(L, NH, dtype=torch.float64)
        for p in mshuf:
            lp0 = float(M.run(p["ids"])[0].log_softmax(-1)[p["answer"]])
            for l in range(L):
                for h in range(NH):
                    lg = M.run(p["ids"], z_patch=(l, h, zbar[l, h * HS:(h + 1) * HS]))[0]
                    lp = float(lg.log_softmax(-1)[p["answer"]])
                    cie[l, h] += (lp - lp0 if a.metric == "logprob" else np.exp(lp) - np.exp(lp0)) / len(mshuf)
        if a.heads_list:
            heads = [[int(t) for t in x.split(".")] for x in a.heads_list.split(",")]
        else:
            flat = cie.flatten().tolist()
            order = sorted(range(L * NH), key=lambda k: (-flat[k], k))
            heads = [[k // NH, k % NH] for k in order[:a.top_k]]
            # how far the K-th head is from the next: a tie within f32 error could swap them
            out["topk_gap"] = flat[order[a.top_k - 1]] - flat[order[a.top_k]] if a.top_k < L * NH else None
        fv = torch.zeros(C, dtype=torch.float64)
        for l, h in heads:
            Wo, _ = M.c_proj(l)
            fv += zbar[l, h * HS:(h + 1) * HS] @ Wo[h * HS:(h + 1) * HS]
        for l in sorted({l for l, _ in heads}):
            fv += M.c_proj(l)[1]
        for l in layers:
            acc, lp, amb = score(zero, (l, "add", fv))
            sweep.append({"layer": l, "acc": acc, "logprob": lp, "ambiguous": amb})
        out.update({"cie": cie.tolist(), "heads": heads, "fv": fv.tolist()})
    out["sweep"] = sweep
    tok.save()
    json.dump(out, sys.stdout)


def cmd_make_dataset(a):
    torch.set_grad_enabled(False)
    M = TorchGPT2(a.model)
    tok = Tok(a.saesteer, a.model)
    dec = decoder(a.model)
    words = ("hot cold up down big small fast slow good bad old new open closed light dark high low long short "
             "hard soft rich poor happy sad early late full empty left right wet dry young strong weak clean dirty "
             "loud quiet warm cool").split()
    items = []
    for i, w in enumerate(words[:a.n]):
        y = words[(i * 7 + 3) % len(words)]
        if i % 2 == 0:
            g = int(M.run([BOS] + tok("Q: " + w + "\nA:"))[0].argmax())
            t = dec(g)
            if t.startswith(" ") and len(t) > 1 and tok(t) == [g] and t[1:].strip() == t[1:]:
                y = t[1:]
        items.append({"input": w, "output": y})
    json.dump(items, sys.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["run", "make-dataset"])
    ap.add_argument("--what", choices=["task-vector", "fv"], default="fv")
    ap.add_argument("--model", required=True)
    ap.add_argument("--saesteer", required=True)
    ap.add_argument("--dataset")
    ap.add_argument("--template", default=DEFAULT_TEMPLATE)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--n-prompts", type=int, default=20)
    ap.add_argument("--n-eval", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-bos", action="store_true")
    ap.add_argument("--layers", default="0")
    ap.add_argument("--mode", default="replace")
    ap.add_argument("--heads-list")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--metric", default="prob")
    ap.add_argument("--n", type=int, default=24)
    a = ap.parse_args()
    (cmd_run if a.cmd == "run" else cmd_make_dataset)(a)


if __name__ == "__main__":
    main()
