#!/bin/bash
# SAE encode benchmark: sae_encode vs a bare sgemm of the same shape (same
# process) vs the PyTorch CPU peer at 1 and 2 threads, on a random SAE the size
# of the public GPT-2-small residual SAEs (768 -> 24576) and 128 tokens.
#   bash bench/run_sae.sh      (makes bench/data/sae-768x24576 on first use, ~150 MB, not committed)
#   TOKENS=512 bash bench/run_sae.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
BUILD=${BUILD:-build}
S=bench/data/sae-768x24576
T=${TOKENS:-128}
[ -x "$BUILD/sae_bench" ] || { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j2 --target sae_bench >/dev/null; }
[ -f "$S/sae_weights.safetensors" ] || $PY bench/make_sae.py "$S"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
C=$("$BUILD/sae_bench" "$S" --tokens "$T" --dump-x "$tmp/x.npy" --dump-f "$tmp/f.npy")
P1=$(OMP_NUM_THREADS=1 $PY bench/peer_torch_sae.py "$S" "$tmp/x.npy" --threads 1 --check "$tmp/f.npy")
P2=$(OMP_NUM_THREADS=2 $PY bench/peer_torch_sae.py "$S" "$tmp/x.npy" --threads 2)
$PY - "$C" "$P1" "$P2" <<'PYEOF'
import json, sys
c, p1, p2 = (json.loads(a) for a in sys.argv[1:])
print(f"SAE {c['d_in']} -> {c['d_sae']} ({c['arch']}), {c['tokens']} tokens, best of 20")
print(f"{'':28s}{'tok/s':>10s}{'GFLOP/s':>10s}")
print(f"{'saesteer sae_encode':28s}{c['encode_tok_s']:10.0f}{c['encode_gflops']:10.1f}")
print(f"{'bare sgemm, same shape':28s}{'':10s}{c['sgemm_gflops']:10.1f}")
print(f"{'torch CPU, 1 thread':28s}{p1['encode_tok_s']:10.0f}{p1['encode_gflops']:10.1f}")
print(f"{'torch CPU, 2 threads':28s}{p2['encode_tok_s']:10.0f}{p2['encode_gflops']:10.1f}")
best = max(p1["encode_tok_s"], p2["encode_tok_s"])
print(f"encode at {100 * c['of_sgemm_peak']:.0f}% of the sgemm; {c['encode_tok_s'] / best:.2f}x the faster torch run")
print(f"features vs torch: max abs diff {p1['max_abs_diff']:.2e}; mean L0 {c['mean_l0']:.0f}")
PYEOF
