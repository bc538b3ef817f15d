#!/usr/bin/python3
"""Write a random SAELens-format SAE (cfg.json + sae_weights.safetensors) the
size of the public GPT-2-small residual SAEs (768 -> 24576, ReLU, b_dec
subtracted from the input) for the encode benchmark. Not committed (~150 MB):
`/usr/bin/python3 bench/make_sae.py bench/data/sae-768x24576 [--d-in 768 --d-sae 24576]`.
The test scripts also use it for small SAEs (--hook, --context-size, --center-writing-weights).
"""
import argparse, json, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_weights import save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--d-sae", type=int, default=24576)
    ap.add_argument("--hook", default="blocks.8.hook_resid_pre")
    ap.add_argument("--context-size", type=int, default=128)
    ap.add_argument("--center-writing-weights", action="store_true",
                    help="the SAE was trained on the TransformerLens-centred residual")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    d_in, d_sae = a.d_in, a.d_sae
    W_dec = rng.standard_normal((d_sae, d_in), dtype=np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    W_enc = np.ascontiguousarray(W_dec.T) * np.float32(0.5)
    b_enc = (rng.standard_normal(d_sae, dtype=np.float32) * 0.1 - 0.3).astype(np.float32)
    b_dec = (rng.standard_normal(d_in, dtype=np.float32) * 0.05).astype(np.float32)
    os.makedirs(a.out, exist_ok=True)
    save_safetensors(os.path.join(a.out, "sae_weights.safetensors"),
                     {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec})
    cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
           "model_name": "gpt2", "hook_name": a.hook, "hook_layer": int(a.hook.split(".")[1]),
           "apply_b_dec_to_input": True, "normalize_activations": "none", "prepend_bos": True,
           "context_size": a.context_size,
           "model_from_pretrained_kwargs": {"center_writing_weights": a.center_writing_weights}}
    with open(os.path.join(a.out, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print(f"wrote {a.out}: {d_in} -> {d_sae}")


if __name__ == "__main__":
    main()
