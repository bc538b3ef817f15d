#!/usr/bin/python3
"""Helpers for tests/cli_scan.sh and tests/cli_dashboard.sh (numpy, h5py; torch for ppl-ref).

  scan_helper.py make-sae OUT.h5 --d-in C --d-sae S --hook NAME [--seed N] [--center] [--no-bos] [--ctx N] [--b-enc B]
      a random standard SAE in the saesteer HDF5 v1 format, written with h5py
  scan_helper.py ppl-ref MODEL_DIR IDS.json [--context N]
      perplexity with the torch forward of bench/peer_torch.py (HF semantics) over the
      token ids {"ids": [...]} in the documented windows: non-overlapping [BOS, N-1 tokens],
      every next-token prediction scored. Prints {"perplexity", "tokens", "nll"}.
  scan_helper.py check-scan OUTDIR SAE.h5
      structural and numerical checks of latents.json (see check_scan)
  scan_helper.py text OUT.txt --mb X
      a synthetic text of X MB for the memory measurement
"""
import argparse, json, math, os, sys

import numpy as np


def make_sae(a):
    import h5py
    rng = np.random.default_rng(a.seed)
    C, S = a.d_in, a.d_sae
    W_enc = (rng.standard_normal((C, S)) / math.sqrt(C)).astype(np.float32)
    W_dec = (rng.standard_normal((S, C)) / math.sqrt(C)).astype(np.float32)
    b_enc = (rng.standard_normal(S) * 0.02 + a.b_enc).astype(np.float32)
    b_dec = (rng.standard_normal(C) * 0.02).astype(np.float32)
    with h5py.File(a.out, "w") as f:
        f.attrs["format"] = "saesteer-sae"
        f.attrs["format_version"] = 1
        f.attrs["architecture"] = "standard"
        f.attrs["d_in"] = C
        f.attrs["d_sae"] = S
        f.attrs["hook_name"] = a.hook
        f.attrs["model_name"] = "tiny"
        f.attrs["apply_b_dec_to_input"] = 1
        f.attrs["normalize_activations"] = "none"
        f.attrs["center_writing_weights"] = 1 if a.center else 0
        f.attrs["prepend_bos"] = 0 if a.no_bos else 1
        f.attrs["context_size"] = a.ctx
        f["W_enc"] = W_enc
        f["W_dec"] = W_dec
        f["b_enc"] = b_enc
        f["b_dec"] = b_dec


def ppl_ref(a):
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
    import peer_torch
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    w = peer_torch.load_safetensors(os.path.join(a.model, "model.safetensors"))
    w = {k: v.double() for k, v in w.items()}
    cfg = dict(cfg)
    ids = json.load(open(a.ids))["ids"]
    W = a.context or cfg["n_positions"]
    bos = cfg.get("bos_token_id", 50256)
    nll, n = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(ids), W - 1):
            win = torch.tensor([bos] + ids[s:s + W - 1])
            logits = peer_torch.forward(w, cfg, win, {}, 0, all_logits=True)
            lp = torch.log_softmax(logits[:-1], dim=-1)
            nll -= float(lp[torch.arange(len(win) - 1), win[1:]].sum())
            n += len(win) - 1
    print(json.dumps({"perplexity": math.exp(nll / n), "tokens": n, "nll": nll / n}))


def check_scan(a):
    """latents.json: every field present and consistent; returns nonzero on failure."""
    import h5py
    J = json.load(open(os.path.join(a.outdir, "latents.json")))
    with h5py.File(a.sae, "r") as f:
        S, C = int(f.attrs["d_sae"]), int(f.attrs["d_in"])
        W_dec = f["W_dec"][()]
        labels = [x.decode() if isinstance(x, bytes) else x for x in f["labels"][()]] if "labels" in f else [""] * S
    errs = []
    def want(c, msg):
        if not c:
            errs.append(msg)
    want(J["format"] == "saesteer-scan" and J["version"] == 1, "format")
    want(J["d_sae"] == S and len(J["latents"]) == S, "d_sae / latents count")
    N, K, R = J["n_tokens"], J["top_k"], J["context_radius"]
    toks = J["tokens"]
    bins = J["histogram"]["bins"]
    alive = 0
    for i, L in enumerate(J["latents"]):
        want(L["index"] == i, f"latent {i}: index")
        want(L["label"] == labels[i], f"latent {i}: label {L['label']!r} vs h5 {labels[i]!r}")
        want(sum(L["hist"]) == L["n_active"], f"latent {i}: histogram sums to {sum(L['hist'])}, n_active {L['n_active']}")
        want(L["hist_start"] + len(L["hist"]) <= bins, f"latent {i}: histogram range")
        want(abs(L["density"] - L["n_active"] / N) <= 1e-3 * L["density"] + 1e-12, f"latent {i}: density")
        cs = L["contexts"]
        want(len(cs) == min(K, L["n_active"]), f"latent {i}: {len(cs)} contexts, n_active {L['n_active']}")
        vals = [c["value"] for c in cs]
        want(vals == sorted(vals, reverse=True), f"latent {i}: contexts not sorted")
        if cs:
            alive += 1
            want(abs(cs[0]["value"] - L["max_act"]) <= 1e-3 * L["max_act"], f"latent {i}: top context != max_act")
        for c in cs:
            want(len(c["ids"]) == len(c["acts"]) <= 2 * R + 1, f"latent {i}: context length")
            want(0 <= c["center"] < len(c["ids"]), f"latent {i}: center")
            want(abs(c["acts"][c["center"]] - c["value"]) <= 1e-3 * abs(c["value"]), f"latent {i}: act at center")
            want(all(str(t) in toks for t in c["ids"]), f"latent {i}: token text missing")
            want(0 <= c["token_index"] < N, f"latent {i}: token_index")
        # logit effects: the direct dot product with wte, rank 0 is the largest
        if L["top_logits"]:
            want(all(L["top_logits"][j][1] >= L["top_logits"][j + 1][1] for j in range(len(L["top_logits"]) - 1)), f"latent {i}: top logits order")
            want(L["top_logits"][0][1] >= L["bottom_logits"][0][1], f"latent {i}: top vs bottom")
    want(alive > 0, "no latent fired")
    want(abs(sum(L["n_active"] for L in J["latents"]) / N) > 0, "L0")
    for e in errs[:20]:
        print("  check-scan:", e)
    print(f"  check-scan: {S} latents, {alive} with contexts, {N} tokens, {len(toks)} token strings, {len(errs)} problems")
    return 1 if errs else 0


def text(a):
    """Synthetic English-like text: words from /usr/share/dict (or a built-in list), sentences, paragraphs."""
    words = None
    for p in ("/usr/share/dict/words", "/usr/share/dict/american-english"):
        if os.path.exists(p):
            words = [w.strip() for w in open(p, encoding="utf-8", errors="ignore") if w.strip().isalpha()][:60000]
            break
    if not words:
        words = ("the of and to in a is that for it as was with be by on not he I this are or his from at which but "
                 "have an they you were her she there would their we him been has when who will more no if out so "
                 "said what up its about into than them can only other new some could time these two may then do "
                 "first any my now such like our over man me even most made after also did many before must through").split()
    rng = np.random.default_rng(0)
    target = int(a.mb * 1e6)
    with open(a.out, "w", encoding="utf-8") as f:
        n = 0
        while n < target:
            idx = rng.integers(0, len(words), size=20000)
            lens = rng.integers(5, 25, size=2000)
            out, p = [], 0
            for L in lens:
                s = " ".join(words[j] for j in idx[p:p + L])
                p += L
                out.append(s[:1].upper() + s[1:] + ".")
                if p > 19000:
                    break
            chunk = " ".join(out) + "\n\n"
            f.write(chunk)
            n += len(chunk)


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("make-sae"); p.add_argument("out"); p.add_argument("--d-in", type=int, required=True)
    p.add_argument("--d-sae", type=int, required=True); p.add_argument("--hook", required=True)
    p.add_argument("--seed", type=int, default=0); p.add_argument("--center", action="store_true")
    p.add_argument("--no-bos", action="store_true"); p.add_argument("--ctx", type=int, default=0)
    p.add_argument("--b-enc", type=float, default=-0.01, help="mean encoder bias (more negative: sparser)")
    p = sp.add_parser("ppl-ref"); p.add_argument("model"); p.add_argument("ids"); p.add_argument("--context", type=int, default=0)
    p = sp.add_parser("check-scan"); p.add_argument("outdir"); p.add_argument("sae")
    p = sp.add_parser("text"); p.add_argument("out"); p.add_argument("--mb", type=float, required=True)
    a = ap.parse_args()
    r = {"make-sae": make_sae, "ppl-ref": ppl_ref, "check-scan": check_scan, "text": text}[a.cmd](a)
    sys.exit(r or 0)


if __name__ == "__main__":
    main()
