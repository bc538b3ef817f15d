#!/usr/bin/env python3
"""Train saesteer's shipped default model: a small GPT-2 (HF GPT2LMHeadModel) with the real GPT-2
tokenizer, on the corpus made by fetch_corpus.sh.

    python3 weights/recipe/train_model.py --corpus corpus --out weights/model --deadline-seconds 480

Runs on one GPU (made on an H100 through saesteer's `device` tool, ~6.5 minutes of training).
`--dry-run` trains a toy configuration on the CPU without transformers/tokenizers (bytes as token
ids) to test the loop.

Data. corpus/train.txt (or .txt.xz / .txt.gz) holds documents separated by a line
"<|endoftext|>". It is tokenised with GPT2TokenizerFast built from weights/gpt2-tokenizer: the text
is cut at every "<|endoftext|>", the pieces are tokenised in parallel and joined with id 50256.
That is exactly what a GPT-2 tokenizer gives for the whole file, since <|endoftext|> is a special
token that is split out before the pre-tokenizer runs (so "\\n" before and after each separator is
kept). The token stream is one long sequence; a training example is a random 256-token slice w of
it, fed as x = [50256] + w[0:255] and scored on y = w[0:256]: position 0 is always BOS (50256),
which is how saesteer (BOS prepended by default) and the SAEs' contexts use the model.

Held-out perplexity (the number in MODEL_CARD.md). The whole of corpus/heldout.txt is tokenised
the same way, cut into consecutive chunks of 255 tokens (the last one shorter), each chunk fed as
[50256] + chunk (<= 256 positions) and every chunk token scored (the first one from BOS alone);
perplexity = exp(total NLL / number of scored tokens). It is measured with the float16 weights as
shipped, upcast to float32 (what saesteer's C runtime computes), in float32.

Optimisation: AdamW (beta 0.9/0.95, weight decay 0.1 on matrices, none on biases, LayerNorm and
embeddings... except the tied wte, which is a matrix and gets it), peak lr 1e-3, 200 warm-up steps,
cosine to 10%, batch 128 x 256 tokens, bf16 autocast, dropout 0.1, grad clip 1.0. The schedule
length is set from the measured step time so that training ends inside the time budget, capped at
10 passes over the ~12.6M training tokens (the corpus is small; more overfits); the held-out loss
(first 200k held-out tokens) is measured every ~7% of the run and the best weights are kept.
"""
import argparse
import gzip
import json
import lzma
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

T0 = time.time()
BOS = 50256
HO_CHUNK = 255  # held-out windows: [BOS] + 255 tokens, as for the first model (comparable numbers)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKDIR = os.path.join(REPO, "weights", "gpt2-tokenizer")
EOT = "<|endoftext|>"


def amp_ctx(on):
    import contextlib
    return torch.autocast("cuda", dtype=torch.bfloat16) if on else contextlib.nullcontext()


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


def tokenize(text, dry):
    pieces = text.split(EOT)
    if dry:
        enc = [list(p.encode("utf-8")) for p in pieces]
    else:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        notes = []
        tok = load_gpt2_tokenizer(TOKDIR, notes=notes)
        log("tokenizer:", type(tok).__name__, *notes)
        enc = []
        B = 2048
        for i in range(0, len(pieces), B):
            enc.extend(tok(pieces[i:i + B], add_special_tokens=False)["input_ids"])
    out = []
    for i, ids in enumerate(enc):
        if i:
            out.append(BOS)
        out.extend(ids)
    return np.asarray(out, dtype=np.int32)


# ------------------------------------------------------------------ plain-torch stand-in (dry run)
class TinyBlock(nn.Module):
    def __init__(self, C, H, pdrop):
        super().__init__()
        self.C, self.H = C, H
        self.ln_1, self.ln_2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.drop = nn.Dropout(pdrop)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, -1)
        q, k, v = (t.view(B, T, self.H, -1).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        att = att.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        a = torch.softmax(att, -1) @ v
        x = x + self.drop(self.c_proj(a.transpose(1, 2).reshape(B, T, C)))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class TinyGPT(nn.Module):
    """A GPT-2 in plain torch; only used by --dry-run (no transformers on the CPU box)."""

    def __init__(self, V, C, L, H, P, pdrop):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.blocks = nn.ModuleList([TinyBlock(C, H, pdrop) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.drop = nn.Dropout(pdrop)
        for n_, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for b in self.blocks:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.T


def build_model(args, dry):
    if dry:
        return TinyGPT(args.vocab, args.n_embd, args.n_layer, args.n_head, args.n_positions, args.dropout), None
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(vocab_size=args.vocab, n_positions=args.n_positions, n_embd=args.n_embd,
                     n_layer=args.n_layer, n_head=args.n_head, layer_norm_epsilon=1e-5,
                     activation_function="gelu_new", resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                     attn_pdrop=args.dropout, bos_token_id=BOS, eos_token_id=BOS, tie_word_embeddings=True)
    m = GPT2LMHeadModel(cfg)
    return m, cfg


def logits_of(model, x, dry):
    if dry:
        return model(x)
    return model(input_ids=x, use_cache=False).logits


@torch.no_grad()
def heldout_nll(model, ho, dev, dry, amp, max_tokens=None, bs=64):
    """Chunks of 255 tokens, BOS prepended, every chunk token scored. Returns (sum NLL, n tokens)."""
    model.eval()
    n = len(ho) if max_tokens is None else min(len(ho), max_tokens)
    chunks = [ho[i:i + HO_CHUNK] for i in range(0, n, HO_CHUNK)]
    tot, cnt = 0.0, 0
    full = [c for c in chunks if len(c) == HO_CHUNK]
    rest = [c for c in chunks if len(c) < HO_CHUNK]
    for i in range(0, len(full), bs):
        batch = np.stack(full[i:i + bs])
        y = torch.from_numpy(batch.astype(np.int64)).to(dev)
        x = torch.cat([torch.full((y.shape[0], 1), BOS, device=dev, dtype=torch.long), y], 1)
        with amp_ctx(amp):
            lg = logits_of(model, x, dry)
        lg = lg[:, :-1].float()
        tot += float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1), reduction="sum"))
        cnt += y.numel()
    for c in rest:
        y = torch.from_numpy(c.astype(np.int64)).to(dev)[None]
        x = torch.cat([torch.full((1, 1), BOS, device=dev, dtype=torch.long), y], 1)
        with amp_ctx(amp):
            lg = logits_of(model, x, dry)
        lg = lg[:, :-1].float()
        tot += float(F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1), reduction="sum"))
        cnt += y.numel()
    model.train()
    return tot, cnt


@torch.no_grad()
def samples(model, dev, dry, prompts, tok=None, n_new=40, seed=0):
    if dry or tok is None:
        return []
    model.eval()
    out = []
    g = torch.Generator(device=dev).manual_seed(seed)
    for p in prompts:
        ids = [BOS] + tok(p, add_special_tokens=False)["input_ids"]
        res = {"prompt": p}
        for mode in ("greedy", "sample_t0.8"):
            seq = list(ids)
            for _ in range(n_new):
                lg = model(input_ids=torch.tensor([seq[-512:]], device=dev)).logits[0, -1].float()
                if mode == "greedy":
                    nxt = int(lg.argmax())
                else:
                    pr = torch.softmax(lg / 0.8, -1)
                    nxt = int(torch.multinomial(pr, 1, generator=g))
                seq.append(nxt)
            res[mode] = tok.decode(seq[len(ids):])
        out.append(res)
    model.train()
    return out


@torch.no_grad()
def icl_probe(model, dev, tok, ddir, n_items=100, shots=10):
    """A quick look (the model card's numbers come from saesteer's own fv/task-vector commands): for up
    to n_items items of each shipped dataset, greedy first-token accuracy with `shots` examples from
    the other items in the "Q: x\nA: y\n\n" format, and with none."""
    import random as _r
    model.eval()
    out = {}
    for name in ("antonyms", "country_capital", "present_past"):
        p = os.path.join(ddir, name + ".json")
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as fh:
            items = [(d["input"], d["output"]) for d in json.load(fh)]
        rnd = _r.Random(0)
        sel = rnd.sample(range(len(items)), min(n_items, len(items)))
        res = {}
        for k in (0, shots):
            ok = 0
            for i in sel:
                others = [j for j in range(len(items)) if j != i]
                demo = "".join("Q: %s\nA: %s\n\n" % items[j] for j in rnd.sample(others, k))
                ids = [BOS] + tok(demo + "Q: %s\nA:" % items[i][0], add_special_tokens=False)["input_ids"]
                want = tok(" " + items[i][1], add_special_tokens=False)["input_ids"][0]
                lg = model(input_ids=torch.tensor([ids], device=dev)).logits[0, -1]
                ok += int(int(lg.argmax()) == want)
            res["%d-shot" % k] = ok / len(sel)
        out[name] = res
        log("ICL probe %-16s %s" % (name, res))
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(REPO, "corpus"))
    ap.add_argument("--out", default=os.path.join(REPO, "weights", "model"))
    ap.add_argument("--metrics", default=None, help="write a JSON summary here")
    ap.add_argument("--save-tokens", default=None, help="also save the token streams (train.npy, heldout.npy) here")
    ap.add_argument("--deadline-seconds", type=float, default=480, help="whole script, from its start")
    ap.add_argument("--reserve-seconds", type=float, default=45, help="kept for final eval + save")
    ap.add_argument("--n-layer", type=int, default=8)
    ap.add_argument("--n-embd", type=int, default=384)
    ap.add_argument("--d-head", type=int, default=64, help="n_head = n_embd / d_head")
    ap.add_argument("--n-positions", type=int, default=512)
    ap.add_argument("--episodes", default=None, help="relations.json: mix in-context episodes (episodes.py)")
    ap.add_argument("--episode-share", type=float, default=0.3,
                    help="share of every batch's rows (so of training tokens) cut from the episode stream")
    ap.add_argument("--episode-tokens", type=float, default=40e6, help="size of the episode stream")
    ap.add_argument("--sweep", default="", help="e.g. 320x8,384x6,384x8: short runs of these n_embd x n_layer "
                    "first; the one with the lowest held-out loss is trained in full")
    ap.add_argument("--sweep-seconds", type=float, default=25)
    ap.add_argument("--max-params", type=float, default=34e6, help="sweep candidates above this are skipped")
    ap.add_argument("--probe", default=os.path.join(REPO, "weights", "datasets"),
                    help="folder with antonyms/country_capital/present_past.json for the ICL probe at the end")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--max-epochs", type=float, default=12.0,
                    help="cap on passes over the training tokens (the corpus is small; more overfits)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    dry = args.dry_run
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    dev = "cuda" if torch.cuda.is_available() and not dry else "cpu"
    amp = dev == "cuda"
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        log("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    seq = args.n_positions  # BOS + (seq - 1) window tokens, seq targets
    global HO_CHUNK
    HO_CHUNK = min(HO_CHUNK, seq - 1)

    # ---------------------------------------------------------------- data
    text, src = read_text(os.path.join(args.corpus, "train"))
    ho_text, ho_src = read_text(os.path.join(args.corpus, "heldout"))
    if dry:
        text, ho_text = text[:400000], ho_text[:6000]
    log("read %s (%d chars), %s (%d chars)" % (src, len(text), ho_src, len(ho_text)))
    train = tokenize(text, dry)
    ho = tokenize(ho_text, dry)
    if not dry and len(train) < len(text) // 10:
        sys.exit("tokenisation produced %d tokens for %d chars: broken tokenizer" % (len(train), len(text)))
    if dry and args.vocab <= 256:  # toy vocabulary for a fast CPU test: bytes, BOS = vocab-1
        global BOS
        train, ho = train % (args.vocab - 1), ho % (args.vocab - 1)
        BOS = args.vocab - 1
    del text, ho_text
    log("tokens: train %d, held-out %d" % (len(train), len(ho)))
    if args.save_tokens:
        os.makedirs(args.save_tokens, exist_ok=True)
        np.save(os.path.join(args.save_tokens, "train.npy"), train)
        np.save(os.path.join(args.save_tokens, "heldout.npy"), ho)
    train_t = torch.from_numpy(train.astype(np.int64)).to(dev)
    N = len(train_t)
    epi_t, epi_stats = None, {}
    if args.episodes:
        sys.path.insert(0, HERE)
        from episodes import EpisodeMaker
        em = EpisodeMaker(args.episodes, seed=args.seed)
        texts, per_task = [], {}
        est = 0
        while est < args.episode_tokens:
            task, t = em.episode()
            texts.append(t)
            per_task[task] = per_task.get(task, 0) + 1
            est += len(t) / 3.2
        epi = tokenize(EOT.join(texts), dry)
        if dry and args.vocab <= 256:
            epi = epi % (args.vocab - 1)
        epi_t = torch.from_numpy(epi.astype(np.int64)).to(dev)
        epi_stats = {"episodes": len(texts), "tokens": int(len(epi)), "share_of_rows": args.episode_share,
                     "per_task": per_task}
        log("episodes: %d, %d tokens (%.1f per episode), %.0f%% of every batch" % (
            len(texts), len(epi), len(epi) / len(texts), 100 * args.episode_share))
        log("episode example:\n" + texts[0][:400])

    tok = None
    if not dry:
        tok = load_gpt2_tokenizer(TOKDIR)

    n_epi_rows = int(round(args.batch * args.episode_share)) if epi_t is not None else 0
    bos_col = torch.full((args.batch, 1), BOS, device=dev, dtype=torch.long)
    ar = torch.arange(seq, device=dev)
    gen = torch.Generator(device=dev).manual_seed(args.seed)

    def batch():
        nt = args.batch - n_epi_rows
        starts = torch.randint(0, N - seq, (nt,), device=dev, generator=gen)
        w = train_t[starts[:, None] + ar[None, :]]  # (B, seq)
        if n_epi_rows:
            es = torch.randint(0, len(epi_t) - seq, (n_epi_rows,), device=dev, generator=gen)
            w = torch.cat([w, epi_t[es[:, None] + ar[None, :]]], 0)
        return torch.cat([bos_col, w[:, :-1]], 1), w

    # ---------------------------------------------------------------- size sweep
    sweep = []
    if args.sweep:
        for spec in args.sweep.split(","):
            c, l = (int(v) for v in spec.split("x"))
            a2 = argparse.Namespace(**vars(args))
            a2.n_embd, a2.n_layer, a2.n_head = c, l, c // args.d_head
            m, _ = build_model(a2, dry)
            npar = sum(p.numel() for p in m.parameters())
            if npar > args.max_params:
                log("sweep %s: %.1fM params > --max-params, skipped" % (spec, npar / 1e6))
                continue
            m.to(dev).train()
            o = torch.optim.AdamW(m.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.wd,
                                  **({"fused": True} if dev == "cuda" else {}))
            t0, st = time.time(), 0
            while time.time() - t0 < args.sweep_seconds:
                for gp in o.param_groups:
                    gp["lr"] = args.lr * min(1.0, (st + 1) / args.warmup)
                x, y = batch()
                with amp_ctx(amp):
                    lg = logits_of(m, x, dry)
                loss = F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), y.reshape(-1))
                o.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
                o.step()
                st += 1
            tot, cnt = heldout_nll(m, ho, dev, dry, amp, 100_000)
            sweep.append({"n_embd": c, "n_layer": l, "params": npar, "steps": st, "seconds": args.sweep_seconds,
                          "tokens": st * args.batch * seq, "heldout_loss": tot / cnt})
            log("sweep %s: %.1fM params, %d steps in %.0f s, held-out loss %.4f" % (
                spec, npar / 1e6, st, args.sweep_seconds, tot / cnt))
            del m, o
            if dev == "cuda":
                torch.cuda.empty_cache()
        if sweep:
            best_s = min(sweep, key=lambda r: r["heldout_loss"])
            args.n_embd, args.n_layer = best_s["n_embd"], best_s["n_layer"]
            log("sweep picked %dx%d" % (args.n_embd, args.n_layer))

    # ---------------------------------------------------------------- model
    args.n_head = args.n_embd // args.d_head
    model, hcfg = build_model(args, dry)
    model.to(dev).train()
    nparam = sum(p.numel() for p in model.parameters())
    log("model params %d (%.2fM), f16 size %.1f MB" % (nparam, nparam / 1e6, nparam * 2 / 1e6))
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (decay if p.dim() >= 2 and "wpe" not in n_ else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            **({"fused": True} if dev == "cuda" else {}))

    ho_eval_tokens = min(len(ho), 200_000)
    train_start = time.time()
    budget = args.deadline_seconds - (train_start - T0) - args.reserve_seconds
    log("training budget %.0f s" % budget)
    total_steps = None
    step, tokens_seen = 0, 0
    best = (float("inf"), None, 0)
    history = []
    eval_every = None
    t_last = time.time()
    while True:
        el = time.time() - train_start
        if step == 10:
            t10 = time.time()
        if total_steps is None and step == 40:
            per = (time.time() - t10) / 30
            total_steps = max(100, 40 + int((budget - el - 5) / per * 0.93))  # evals take ~5% of the time
            total_steps = min(total_steps, int(args.max_epochs * N / ((args.batch - n_epi_rows) * seq)))
            eval_every = max(50, total_steps // 14)
            log("step time %.1f ms -> schedule of %d steps (%.1fM tokens, %.1f epochs)"
                % (per * 1e3, total_steps, total_steps * args.batch * seq / 1e6,
                   total_steps * (args.batch - n_epi_rows) * seq / N))
        if el > budget or (total_steps is not None and step >= total_steps):
            break
        ts = total_steps or 10 ** 9
        if step < args.warmup:
            lr = args.lr * (step + 1) / args.warmup
        else:
            prog = min(1.0, (step - args.warmup) / max(1, ts - args.warmup))
            lr = args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))
        for gp in opt.param_groups:
            gp["lr"] = lr
        x, y = batch()
        with amp_ctx(amp):
            lg = logits_of(model, x, dry)
        loss = F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel()
        if step % 100 == 0 or step == 1:
            dt = time.time() - t_last
            t_last = time.time()
            log("step %6d  loss %.4f  lr %.2e  %.0f tok/s" % (step, float(loss), lr,
                                                               (100 if step > 1 else 1) * x.numel() / max(dt, 1e-9)))
        if eval_every and step % eval_every == 0:
            tot, cnt = heldout_nll(model, ho, dev, dry, amp, ho_eval_tokens)
            hl = tot / cnt
            history.append({"step": step, "tokens": tokens_seen, "train_loss": float(loss), "heldout_loss": hl})
            log("eval step %d: held-out loss %.4f (ppl %.2f) on %d tokens" % (step, hl, math.exp(hl), cnt))
            if hl < best[0]:
                best = (hl, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}, step)
    train_time = time.time() - train_start
    log("trained %d steps, %d tokens in %.1f s" % (step, tokens_seen, train_time))

    tot, cnt = heldout_nll(model, ho, dev, dry, amp, ho_eval_tokens)
    final_hl = tot / cnt
    history.append({"step": step, "tokens": tokens_seen, "heldout_loss": final_hl})
    log("final held-out loss %.4f (ppl %.2f)" % (final_hl, math.exp(final_hl)))
    kept_step = step
    if best[1] is not None and best[0] < final_hl:
        model.load_state_dict(best[1])
        kept_step = best[2]
        log("keeping the best checkpoint, step %d (held-out loss %.4f)" % (best[2], best[0]))

    # ---------------------------------------------------------------- float16 as shipped, measured in f32
    if dev == "cuda":  # true float32 matmuls from here on (the 2026-11 run still had TF32 on: 30.855
        torch.backends.cuda.matmul.allow_tf32 = False  # vs 30.851 from saesteer's C runtime)
        torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model.float()
    tot, cnt = heldout_nll(model, ho, dev, dry, False)
    ppl = math.exp(tot / cnt)
    log("HELD-OUT (f16 weights, f32 compute, all %d tokens): loss %.4f  perplexity %.3f" % (cnt, tot / cnt, ppl))
    smp = samples(model, dev, dry, ["The", "In the beginning", "The President said that",
                                    "Abdication, n.", "I went to the store and", "Once upon a time",
                                    "The function returns", "To install the package,"],
                  tok=tok)
    probe = icl_probe(model, dev, tok, args.probe) if not dry and args.probe else {}
    for s in smp:
        log("SAMPLE %r\n   greedy: %r\n   t=0.8 : %r" % (s["prompt"], s["greedy"], s["sample_t0.8"]))

    # ---------------------------------------------------------------- save
    out = args.out
    os.makedirs(out, exist_ok=True)
    if not dry:
        model.half().save_pretrained(out)
        for f in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(TOKDIR, f), os.path.join(out, f))
        from safetensors import safe_open
        with safe_open(os.path.join(out, "model.safetensors"), "pt") as fh:
            keys = list(fh.keys())
            dts = {str(fh.get_tensor(k).dtype) for k in keys}
        log("saved %d tensors, dtypes %s, prefixed %s, lm_head %s" % (
            len(keys), dts, all(k.startswith("transformer.") for k in keys), any("lm_head" in k for k in keys)))
    else:
        torch.save(model.state_dict(), os.path.join(out, "dry_run_state.pt"))
    metrics = {"params": nparam, "n_layer": args.n_layer, "n_embd": args.n_embd, "n_head": args.n_head,
               "n_positions": args.n_positions, "vocab": args.vocab, "train_tokens_corpus": int(N),
               "heldout_tokens": int(cnt), "steps": step, "kept_step": kept_step, "batch": args.batch,
               "tokens_seen": tokens_seen, "epochs": tokens_seen / N, "train_seconds": train_time,
               "heldout_loss_f16": tot / cnt, "heldout_ppl_f16": ppl, "history": history, "samples": smp,
               "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", "torch": torch.__version__,
               "lr": args.lr, "warmup": args.warmup, "wd": args.wd, "dropout": args.dropout, "dry_run": dry,
               "episodes": epi_stats, "episode_rows_per_batch": n_epi_rows, "sweep": sweep,
               "icl_probe": probe, "text_tokens_seen": step * (args.batch - n_epi_rows) * seq}
    if args.metrics:
        with open(args.metrics, "w") as fh:
            json.dump(metrics, fh, indent=1)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
