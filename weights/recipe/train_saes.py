#!/usr/bin/env python3
"""Train the shipped sparse autoencoders on the default model's residual stream.

    python3 weights/recipe/train_saes.py --model weights/model --corpus corpus --out weights/saes

One GPU, ~4 minutes in all (made on the GPU machine through saesteer's `device` tool).
`--dry-run` runs everything on the CPU with a plain-torch stand-in model and byte tokens.

Hooks: blocks.2.hook_resid_pre and blocks.4.hook_resid_pre (= HF hidden_states[2], [4]).
TransformerLens / SAELens conventions, as gpt2-small-res-jb:
  * every context is [BOS=50256] + 255 corpus tokens (context_size 256, the model's n_positions);
  * the residual is CENTRED per token: x - mean(x over d_model) (center_writing_weights=True);
  * the BOS position is not used for training or for the statistics (its residual is an outlier the
    SAE need not model); the model itself is run from the shipped float16 weights in float32.

Architecture: TopK (k=32), d_sae = 2048 (8 x 256), W_dec rows kept at unit norm, apply_b_dec_to_input.
Why TopK rather than ReLU+L1: L0 is pinned by construction (k) instead of by an L1 coefficient that
would need a sweep we have no device time for; no L1 shrinkage, so a better reconstruction at the same
L0; the AuxK loss (OpenAI, "Scaling and evaluating sparse autoencoders") keeps dead latents few.
Inference is SAELens' topk: h = (x - b_dec) W_enc + b_enc, keep the 32 largest, ReLU them.

Training: activations are collected once into GPU memory (train windows at random offsets), scaled
by s = sqrt(d_in) / mean ||x|| for the optimiser's sake; Adam lr 4e-4 (warm-up 1k steps, linear decay
over the last 20%), batch 4096 tokens, AuxK (k_aux 256, coefficient 1/32, latents dead if not fired
for 2M tokens). The scale is folded back afterwards (b_enc /= s, b_dec /= s; W_enc, W_dec unchanged),
which divides every activation by s and leaves W_dec rows unit norm, so the shipped SAE reads the
raw centred residual (normalize_activations "none").

Evaluation on held-out text (corpus/heldout.txt, the model's held-out split), the windows as above:
MSE = mean over tokens of ||x - x_hat||^2 / d_in (centred residual), explained variance =
1 - sum ||x - x_hat||^2 / sum ||x - mean_tokens(x)||^2, L0 = mean number of nonzero latents,
dead fraction = latents that never fire on the held-out tokens, log_sparsity = log10(fraction of
held-out tokens where the latent fires + 1e-10). CE loss recovered: next-token loss of the model
with the hook's residual replaced by the SAE reconstruction at every non-BOS position
(x' = x_hat_centred + mean(x), i.e. the per-token mean put back), against the clean loss and the
loss with the residual zero-ablated at the same positions: (CE_zero - CE_sae) / (CE_zero - CE_clean).

Output: weights/saes/<hook>.h5 in saesteer's HDF5 dictionary format v1 (DESIGN.md), + a JSON summary.
"""
import argparse
import gzip
import json
import lzma
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

T0 = time.time()
BOS = 50256
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EOT = "<|endoftext|>"
CTX = 256


def log(*a):
    print("[%6.1fs]" % (time.time() - T0), *a, flush=True)


def read_text(path_base):
    for ext, opener in ((".txt", open), (".txt.xz", lzma.open), (".txt.gz", gzip.open)):
        p = path_base + ext
        if os.path.exists(p):
            with opener(p, "rt", encoding="utf-8") as fh:
                return fh.read(), p
    raise FileNotFoundError(path_base + ".txt[.xz|.gz]")


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


def tokenize(text, tokdir, dry):
    pieces = text.split(EOT)
    if dry:
        enc = [list(p.encode("utf-8")) for p in pieces]
    else:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        notes = []
        tok = load_gpt2_tokenizer(tokdir, notes=notes)
        log("tokenizer:", *notes)
        enc = []
        for i in range(0, len(pieces), 2048):
            enc.extend(tok(pieces[i:i + 2048], add_special_tokens=False)["input_ids"])
    out = []
    for i, ids in enumerate(enc):
        if i:
            out.append(BOS)
        out.extend(ids)
    return np.asarray(out, dtype=np.int32)


# ------------------------------------------------------------------ model access
class Model:
    """The shipped model in float32 with hooks at resid_pre of chosen layers."""

    def __init__(self, path, dev, dry, dry_cfg=None):
        self.dry = dry
        if dry:
            sys.path.insert(0, HERE)
            import train_model as tm
            c = dry_cfg
            self.m = tm.TinyGPT(c["vocab"], c["n_embd"], c["n_layer"], c["n_head"], CTX, 0.0)
            sd = torch.load(os.path.join(path, "dry_run_state.pt"))
            self.m.load_state_dict(sd)
            self.blocks = self.m.blocks
            self.n_embd = c["n_embd"]
        else:
            from transformers import GPT2LMHeadModel
            self.m = GPT2LMHeadModel.from_pretrained(path, dtype=torch.float32)
            self.blocks = self.m.transformer.h
            self.n_embd = self.m.config.n_embd
        self.m.to(dev).eval().float()

    def _hook(self, layer, fn):
        def pre(mod, args, kwargs=None):
            if kwargs is None:  # old torch without with_kwargs
                hs = args[0]
                return (fn(hs),) + tuple(args[1:])
            hs = args[0] if args else kwargs["hidden_states"]
            new = fn(hs)
            if args:
                return (new,) + tuple(args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = new
            return args, kwargs
        try:
            return self.blocks[layer].register_forward_pre_hook(pre, with_kwargs=True)
        except TypeError:
            return self.blocks[layer].register_forward_pre_hook(lambda m, a: pre(m, a))

    @torch.no_grad()
    def resid(self, x, layers):
        """x: (B, T) ids -> {layer: (B, T, C)} residual at blocks.L.hook_resid_pre (uncentred)."""
        got = {}

        def grab(L):
            def fn(hs):
                got[L] = hs.detach().clone()
                if len(got) == len(layers):
                    raise StopForward
                return hs
            return fn
        hs = [self._hook(L, grab(L)) for L in layers]
        try:
            self.logits(x)
        except StopForward:
            pass
        finally:
            for h in hs:
                h.remove()
        return got

    def logits(self, x):
        if self.dry:
            return self.m(x)
        return self.m(input_ids=x, use_cache=False).logits

    @torch.no_grad()
    def ce_with(self, x, layer=None, fn=None):
        """Next-token CE of every window token x[:, 1:] (the first one predicted from BOS alone), with
        fn applied to the residual at blocks.layer.hook_resid_pre: returns (sum, count)."""
        h = self._hook(layer, fn) if fn is not None else None
        try:
            lg = self.logits(x).float()
        finally:
            if h is not None:
                h.remove()
        lg = lg[:, :-1]
        y = x[:, 1:]
        return float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1), reduction="sum")), y.numel()


class StopForward(Exception):
    pass


# ------------------------------------------------------------------ the SAE
class TopKSAE(torch.nn.Module):
    def __init__(self, d_in, d_sae, k, b_dec_init, gen):
        super().__init__()
        W = torch.randn(d_sae, d_in, generator=gen, device=b_dec_init.device)
        W = W / W.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(W)
        self.W_enc = torch.nn.Parameter(W.T.clone().contiguous())
        self.b_enc = torch.nn.Parameter(torch.zeros(d_sae, device=b_dec_init.device))
        self.b_dec = torch.nn.Parameter(b_dec_init.clone())
        self.k = k

    def pre(self, x):
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x):
        h = self.pre(x)
        top = torch.topk(h, self.k, dim=-1)
        return torch.zeros_like(h).scatter(-1, top.indices, F.relu(top.values)), h

    def decode(self, f):
        return f @ self.W_dec + self.b_dec

    @torch.no_grad()
    def norm_dec(self):
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True)


def train_sae(acts, args, dev, name, deadline):
    """acts: (N, d_in) float32 centred residuals (BOS excluded), already on dev."""
    N, d_in = acts.shape
    scale = math.sqrt(d_in) / float(acts[:200_000].norm(dim=1).mean())
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    b0 = acts[:200_000].mean(0) * scale
    sae = TopKSAE(d_in, args.d_sae, args.k, b0, gen).to(dev)
    opt = torch.optim.Adam(sae.parameters(), lr=args.lr, betas=(0.9, 0.999))
    steps = args.steps
    last_fired = torch.zeros(args.d_sae, device=dev, dtype=torch.long)
    dead_after = args.dead_tokens // args.batch
    k_aux = min(args.k_aux, args.d_sae // 2)
    t_start = time.time()
    done = 0
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # training only; capture and eval stay in f32
    for step in range(steps):
        # fit the schedule (warm-up, flat, linear decay over the last 20%) to the time left, measured
        # once early and again after the AuxK loss (dead latents) has started
        for a, b in ((20, 220), (dead_after + 20, dead_after + 220)):
            if step == a:
                t_a = time.time()
            if step == b:
                per_step = (time.time() - t_a) / (b - a)
                steps = min(args.steps, b + int((deadline - time.time()) / per_step * 0.97))
                log("%s: %.2f ms/step -> %d steps" % (name, per_step * 1e3, steps))
        if step >= steps:
            break
        if time.time() > deadline:
            log("%s: time limit at step %d" % (name, step))
            break
        if step < args.warmup:
            lr = args.lr * (step + 1) / args.warmup
        elif step > 0.8 * steps:
            lr = args.lr * max(0.0, (steps - step) / (0.2 * steps))
        else:
            lr = args.lr
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, N, (args.batch,), device=dev, generator=gen)
        x = acts[idx] * scale
        f, h = sae.encode(x)
        xh = sae.decode(f)
        err = x - xh
        mse = err.pow(2).sum(-1).mean()
        fired = (f > 0).any(0)
        last_fired = torch.where(fired, torch.zeros_like(last_fired), last_fired + 1)
        dead = last_fired > dead_after
        loss = mse
        n_dead = int(dead.sum()) if step % 10 == 0 else None
        if step >= dead_after and dead.any():
            hd = torch.where(dead[None, :], h, torch.full_like(h, -float("inf")))
            kk = min(k_aux, int(dead.sum()))
            top = torch.topk(hd, kk, dim=-1)
            fa = torch.zeros_like(h).scatter(-1, top.indices, F.relu(top.values))
            aux = (fa @ sae.W_dec - err.detach()).pow(2).sum(-1).mean()
            loss = loss + args.aux_coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # keep W_dec rows unit norm: drop the gradient component along each row, then renormalise
        with torch.no_grad():
            W, G = sae.W_dec.data, sae.W_dec.grad
            G -= (G * W).sum(1, keepdim=True) * W
        opt.step()
        sae.norm_dec()
        done = step + 1
        if step % 2000 == 0 or step == steps - 1:
            ev = 1 - err.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
            log("%s step %6d  mse/d %.4f  ev %.4f  L0 %.1f  dead %s  lr %.1e" % (
                name, step, float(mse) / d_in, float(ev), float((f > 0).sum(-1).float().mean()),
                n_dead if n_dead is not None else "-", lr))
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    log("%s: %d steps (%.0f tokens) in %.1f s" % (name, done, done * args.batch, time.time() - t_start))
    # fold the scale: raw-space SAE with unit W_dec rows, activations divided by scale
    with torch.no_grad():
        out = {"W_enc": sae.W_enc.data.clone(), "W_dec": sae.W_dec.data.clone(),
               "b_enc": sae.b_enc.data / scale, "b_dec": sae.b_dec.data / scale}
    return out, scale, done


def sae_fwd(w, x, k):
    h = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    top = torch.topk(h, k, dim=-1)
    f = torch.zeros_like(h).scatter(-1, top.indices, F.relu(top.values))
    return f, f @ w["W_dec"] + w["b_dec"]


def write_h5(path, w, attrs, log_sparsity):
    import h5py
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        d_in, d_sae = w["W_enc"].shape
        f.create_dataset("W_enc", data=w["W_enc"].cpu().numpy().astype(np.float32),
                         chunks=(d_in, min(256, d_sae)), compression="gzip", compression_opts=6)
        f.create_dataset("W_dec", data=w["W_dec"].cpu().numpy().astype(np.float32),
                         chunks=(min(256, d_sae), d_in), compression="gzip", compression_opts=6)
        f.create_dataset("b_enc", data=w["b_enc"].cpu().numpy().astype(np.float32))
        f.create_dataset("b_dec", data=w["b_dec"].cpu().numpy().astype(np.float32))
        f.create_dataset("log_sparsity", data=np.asarray(log_sparsity, dtype=np.float32))
        for k, v in attrs.items():
            f.attrs[k] = v
    os.replace(tmp, path)


def windows(stream, n, gen_np):
    """n random windows of CTX-1 tokens, BOS prepended -> (n, CTX) int64."""
    starts = gen_np.integers(0, len(stream) - (CTX - 1), size=n)
    w = np.stack([stream[s:s + CTX - 1] for s in starts]).astype(np.int64)
    return np.concatenate([np.full((n, 1), BOS, dtype=np.int64), w], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(REPO, "weights", "model"))
    ap.add_argument("--corpus", default=os.path.join(REPO, "corpus"))
    ap.add_argument("--train-name", default="train", help="corpus file base name for SAE training text")
    ap.add_argument("--out", default=os.path.join(REPO, "weights", "saes"))
    ap.add_argument("--metrics", default=None)
    ap.add_argument("--layers", default="2,4")
    ap.add_argument("--d-sae", type=int, default=2048)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--k-aux", type=int, default=256)
    ap.add_argument("--aux-coef", type=float, default=1 / 32)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--dead-tokens", type=int, default=2_000_000)
    ap.add_argument("--train-windows", type=int, default=40000, help="contexts of 256 -> ~10M tokens")
    ap.add_argument("--eval-windows", type=int, default=1000)
    ap.add_argument("--seconds-per-sae", type=float, default=110, help="training time of each SAE")
    ap.add_argument("--deadline-seconds", type=float, default=None,
                    help="whole script, from its start: SAE training time shrinks to fit")
    ap.add_argument("--tokens", default=None, help="folder with train.npy/heldout.npy token streams")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--dry-cfg", default='{"vocab": 256, "n_embd": 32, "n_layer": 2, "n_head": 4}')
    args = ap.parse_args()
    dry = args.dry_run
    dev = "cuda" if torch.cuda.is_available() and not dry else "cpu"
    torch.manual_seed(args.seed)
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # activations/eval in true f32
        log("GPU:", torch.cuda.get_device_name(0))
    layers = [int(s) for s in args.layers.split(",")]
    dry_cfg = json.loads(args.dry_cfg)
    global BOS
    tokdir = args.model
    if args.tokens:  # saved by train_model.py --save-tokens (same tokenisation)
        train = np.load(os.path.join(args.tokens, "train.npy"))
        ho = np.load(os.path.join(args.tokens, "heldout.npy"))
        src = hsrc = args.tokens
    else:
        text, src = read_text(os.path.join(args.corpus, args.train_name))
        ho_text, hsrc = read_text(os.path.join(args.corpus, "heldout"))
        if dry:
            text, ho_text = text[:300000], ho_text[:60000]
        train = tokenize(text, tokdir, dry)
        ho = tokenize(ho_text, tokdir, dry)
    if dry and dry_cfg["vocab"] <= 256:
        BOS = dry_cfg["vocab"] - 1
        train, ho = train % BOS, ho % BOS
    log("tokens: train %d (%s), held-out %d (%s)" % (len(train), src, len(ho), hsrc))
    model = Model(args.model, dev, dry, dry_cfg)
    C = model.n_embd

    # ---------------------------------------------------------------- collect activations
    rng = np.random.default_rng(args.seed)
    nw = args.train_windows
    acts = {L: torch.empty(nw * (CTX - 1), C, device=dev, dtype=torch.float32) for L in layers}
    bs = 256 if dev == "cuda" else 8
    for i in range(0, nw, bs):
        x = torch.from_numpy(windows(train, min(bs, nw - i), rng)).to(dev)
        r = model.resid(x, layers)
        for L in layers:
            a = r[L][:, 1:]  # drop BOS
            a = a - a.mean(-1, keepdim=True)  # centre per token
            acts[L][i * (CTX - 1):(i + x.shape[0]) * (CTX - 1)] = a.reshape(-1, C)
    log("collected %d activations per hook" % (nw * (CTX - 1)))

    # held-out windows: consecutive 255-token chunks, BOS prepended (as the model's perplexity)
    n_ho = min(args.eval_windows, len(ho) // (CTX - 1))
    ho_w = np.concatenate([np.full((n_ho, 1), BOS, dtype=np.int64),
                           ho[:n_ho * (CTX - 1)].reshape(n_ho, CTX - 1).astype(np.int64)], 1)
    ho_w = torch.from_numpy(ho_w).to(dev)

    os.makedirs(args.out, exist_ok=True)
    results = {}
    for L in layers:
        hook = "blocks.%d.hook_resid_pre" % L
        per = args.seconds_per_sae
        if args.deadline_seconds:
            left = T0 + args.deadline_seconds - time.time() - 35 * (len(layers) - layers.index(L))
            per = max(10.0, min(per, left / (len(layers) - layers.index(L))))
        log("%s: %.0f s of training" % (hook, per))
        deadline = time.time() + per
        w, scale, steps = train_sae(acts[L], args, dev, hook, deadline)
        del acts[L]
        # ------------------------------------------------------------ evaluation on held-out text
        sq, var_num, n_tok, l0 = 0.0, 0.0, 0, 0.0
        fire = torch.zeros(args.d_sae, device=dev)
        xs = []
        for i in range(0, n_ho, 64):
            x = ho_w[i:i + 64]
            a = model.resid(x, [L])[L][:, 1:]
            a = (a - a.mean(-1, keepdim=True)).reshape(-1, C)
            f, xh = sae_fwd(w, a, args.k)
            sq += float((a - xh).pow(2).sum())
            n_tok += a.shape[0]
            l0 += float((f > 0).sum())
            fire += (f > 0).float().sum(0)
            xs.append(a)
        X = torch.cat(xs)
        tot_var = float((X - X.mean(0)).pow(2).sum())
        del X, xs
        dens = fire / n_tok
        ce = {"clean": [0.0, 0], "sae": [0.0, 0], "zero": [0.0, 0]}

        def splice_sae(hs):
            a = hs[:, 1:]
            mu = a.mean(-1, keepdim=True)
            _, xh = sae_fwd(w, (a - mu).reshape(-1, C), args.k)
            out = hs.clone()
            out[:, 1:] = xh.reshape(a.shape) + mu
            return out

        def zero(hs):
            out = hs.clone()
            out[:, 1:] = 0
            return out
        for i in range(0, n_ho, 32):
            x = ho_w[i:i + 32]
            for key, fn in (("clean", None), ("sae", splice_sae), ("zero", zero)):
                s, c = model.ce_with(x, L, fn)
                ce[key][0] += s
                ce[key][1] += c
        cev = {k: v[0] / v[1] for k, v in ce.items()}
        rec = (cev["zero"] - cev["sae"]) / (cev["zero"] - cev["clean"])
        r = {"hook": hook, "steps": steps, "train_tokens_seen": steps * args.batch,
             "train_activations": nw * (CTX - 1), "scale_folded": scale,
             "heldout_tokens": n_tok, "mse_per_dim": sq / n_tok / C, "mse_per_token": sq / n_tok,
             "explained_variance": 1 - sq / tot_var, "L0": l0 / n_tok,
             "dead_fraction": float((fire == 0).float().mean()),
             "dense_fraction_gt_10pct": float((dens > 0.1).float().mean()),
             "ce_clean": cev["clean"], "ce_sae": cev["sae"], "ce_zero_ablation": cev["zero"],
             "ce_loss_recovered": rec}
        log("EVAL %s: %s" % (hook, json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})))
        results[hook] = r
        src_json = json.dumps({"trained_by": "weights/recipe/train_saes.py", "architecture": "topk",
                               "k": args.k, "d_sae": args.d_sae, "hook_name": hook,
                               "context_size": CTX, "prepend_bos": True, "center_writing_weights": True,
                               "exclude_bos_from_training": True, "lr": args.lr, "batch": args.batch,
                               "aux_k": args.k_aux, "aux_coef": args.aux_coef, "metrics": r})
        attrs = {"format": "saesteer-sae", "format_version": 1, "architecture": "topk",
                 "d_in": C, "d_sae": args.d_sae, "k": args.k, "hook_name": hook,
                 "model_name": "saesteer-default", "apply_b_dec_to_input": True,
                 "normalize_activations": "none", "center_writing_weights": True, "prepend_bos": True,
                 "context_size": CTX, "source": src_json}
        path = os.path.join(args.out, hook + ".h5")
        write_h5(path, w, attrs, torch.log10(dens + 1e-10).cpu().numpy())
        log("wrote %s (%d bytes)" % (path, os.path.getsize(path)))
    if args.metrics:
        with open(args.metrics, "w") as fh:
            json.dump(results, fh, indent=1)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
