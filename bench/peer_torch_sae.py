#!/usr/bin/python3
"""PyTorch CPU peer for the SAE encode benchmark: SAELens's standard encoder,
relu((x - b_dec) @ W_enc + b_enc), on the same sae_weights.safetensors and the
same x (an .npy written by sae_bench --dump-x). Best of --reps after two
warm-ups; with --check F.npy also reports the max abs difference to
saesteer's features. Prints one JSON line.

  /usr/bin/python3 bench/peer_torch_sae.py SAE_DIR X.npy [--threads 1] [--reps 20] [--check F.npy]
"""
import argparse, json, os, sys, time
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch import load_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sae")
    ap.add_argument("x")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--check")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w = load_safetensors(os.path.join(a.sae, "sae_weights.safetensors"))
    W_enc, b_enc, b_dec = w["W_enc"], w["b_enc"], w["b_dec"]
    x = torch.from_numpy(np.load(a.x))

    def enc():
        return torch.relu((x - b_dec) @ W_enc + b_enc)

    with torch.no_grad():
        enc(), enc()
        best = float("inf")
        for _ in range(a.reps):
            t0 = time.perf_counter()
            f = enc()
            best = min(best, time.perf_counter() - t0)
    T, C = x.shape
    S = W_enc.shape[1]
    out = {"threads": a.threads, "tokens": T, "encode_s": best, "encode_tok_s": T / best,
           "encode_gflops": 2.0 * T * C * S / best * 1e-9}
    if a.check:
        out["max_abs_diff"] = float(np.abs(np.load(a.check) - f.numpy()).max())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
