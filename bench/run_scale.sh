#!/usr/bin/env bash
# bench/run_scale.sh [SAESTEER] [TOKENS] - the measured figures of docs/SCALING.md.
#   SAESTEER: an MPI build (default build-mpi/saesteer: cmake -S . -B build-mpi -DSAESTEER_MPI=ON)
#   TOKENS:   text tokens per throughput run (default 1024 = 8 windows of 128); ONLY=mpi: the mpirun rows only
# Makes (once, under $SCALE_DIR, default /tmp/saesteer_scale) a GPT-2-small-shaped model with random
# weights (bench/make_weights.py: 12 layers, 768 wide, vocab 50257) and a 24576-latent SAE at
# blocks.8.hook_resid_pre (bench/make_sae.py), and a synthetic text; then prints markdown rows:
#   1. scan throughput: one window at a time with BLAS on 1 or 2 threads vs 2 windows in parallel
#      (one BLAS thread each), and mpirun -n 1 / -n 2 (one window per rank); the load average
#      before each run (the machine is shared);
#   2. bytes each rank sends at the merge, for d_sae and top-K (tiny model: the payload does not
#      depend on the model, only on d_sae, K, the context radius and how full the heaps are).
# Random weights run at the same speed as trained ones (same shapes, dense arithmetic).
set -eu
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build-mpi/saesteer}"); N=${2:-1024}
D=${SCALE_DIR:-/tmp/saesteer_scale}
PY=/usr/bin/python3
MPI=(mpirun --oversubscribe --allow-run-as-root)
mkdir -p "$D"
[ -f "$D/gpt2s/config.json" ] || $PY bench/make_weights.py "$D/gpt2s" >/dev/null
[ -e "$D/sae24k" ] || $PY bench/make_sae.py "$D/sae24k" >/dev/null
[ -f "$D/corpus.txt" ] || $PY tests/scan_helper.py text "$D/corpus.txt" --mb 0.5
load() { cut -d' ' -f1-3 /proc/loadavg; }
# a text of about N tokens (a prefix of the corpus, cut at a space), so that every rank gets its share
# (with --max-tokens on a long text the first rank's range would hold them all)
prefix() { $PY -c 'import sys; t=open(sys.argv[1],encoding="utf-8").read(); n=int(sys.argv[2])*4; n=t.index(" ", n); open(sys.argv[3],"w",encoding="utf-8").write(t[:n])' "$D/corpus.txt" "$1" "$2"; }
prefix "$N" "$D/text_$N.txt"
SCAN=(scan --model "$D/gpt2s" --sae "$D/sae24k" --text-file "$D/text_$N.txt" --quiet)

echo "| configuration | scan tokens/s (window pass) | load average before (1, 5, 15 min) |"
echo "| --- | ---: | --- |"
row() {
  local label=$1; shift
  local l; l=$(load)
  SAESTEER_SCALE_STATS=1 "$@" -o "$D/out" >"$D/stdout" 2>"$D/stderr" || { echo "| $label | failed: $(tail -1 "$D/stderr") | $l |"; return; }
  # tokens over the slowest rank's window pass
  local tps; tps=$(grep -o 'stats: rank .*' "$D/stderr" | $PY -c '
import re, sys
rows = [re.search(r"windows ([0-9.]+) s \(([0-9]+) tokens", l).groups() for l in sys.stdin]
print("%.1f" % (sum(int(t) for _, t in rows) / max(float(s) for s, _ in rows)))')
  echo "| $label | $tps | $l |"
  grep -o 'stats: .*' "$D/stderr" | sed 's/^/    /' >&2
}
if [ "${ONLY:-}" != mpi ]; then
row "1 process, 1 window at a time, BLAS 1 thread" "$BIN" "${SCAN[@]}" --threads 1
row "1 process, 1 window at a time, BLAS 2 threads" env SAESTEER_BLAS_THREADS=2 "$BIN" "${SCAN[@]}" --threads 1
row "1 process, 2 windows in parallel, BLAS 1 thread each" "$BIN" "${SCAN[@]}" --threads 2
fi
row "mpirun -n 1 (1 window, 1 thread)" "${MPI[@]}" -n 1 "$BIN" "${SCAN[@]}" --threads 1
row "mpirun -n 2 (1 window, 1 thread per rank)" "${MPI[@]}" -n 2 "$BIN" "${SCAN[@]}" --threads 1

echo
echo "| d_sae | top-K | context radius | bytes rank 1 sent at the merge (mpirun -n 2, 8000 tokens) | bound 40 + d_sae*(332 + K*(20 + 8*(2R+1))) | rank 0 merge time |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
[ -f "$D/tiny/config.json" ] || $PY bench/make_weights.py "$D/tiny" --size tiny >/dev/null
prefix 8000 "$D/text_8000.txt"
for S in 3072 24576; do
  [ -f "$D/tiny_$S.h5" ] || $PY tests/scan_helper.py make-sae "$D/tiny_$S.h5" --d-in 64 --d-sae "$S" --hook blocks.1.hook_resid_pre --ctx 128 >/dev/null
  for K in 5 20; do
    SAESTEER_SCALE_STATS=1 "${MPI[@]}" -n 2 "$BIN" scan --model "$D/tiny" --sae "$D/tiny_$S.h5" --text-file "$D/text_8000.txt" \
      --top "$K" --quiet --threads 1 -o "$D/out" >/dev/null 2>"$D/stderr"
    b=$(grep -o 'rank 1 of 2: .*sent [0-9]* bytes' "$D/stderr" | grep -o 'sent [0-9]*' | cut -d' ' -f2)
    m=$(grep -o 'rank 0 of 2: .*merge [0-9.]* s' "$D/stderr" | grep -o 'merge [0-9.]* s')
    echo "| $S | $K | 8 | $b | $((40 + S * (332 + K * (20 + 8 * 17)))) | $m |"
  done
done
