#!/bin/bash
# bench/patch_bench.sh [MODEL_DIR] - patched runs per second of `saesteer patch` on a 29-token (BOS included)
# prompt pair that differs at one name (an IOI-style prompt), shared (the default: the corrupted
# prefix and blocks before the patch reused) against --full-runs (every patch a whole forward
# pass), for every kind; best of 3 each. Prints a Markdown table.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SAESTEER_BIN:-$ROOT/build/saesteer}
M=${1:-$ROOT/weights/model}
CLEAN="When John and Mary went to the store on the hill after a long and busy day at work, John gave a bottle of cold water to"
CORR="When John and Mary went to the store on the hill after a long and busy day at work, Mary gave a bottle of cold water to"
best() {   # ARGS...: best runs/s of 3, and the grid's seconds
    for i in 1 2 3; do "$BIN" patch --model "$M" --clean "$CLEAN" --corrupted "$CORR" --answer " Mary" --wrong " John" "$@" --json; done |
        /usr/bin/python3 -c "import json,sys; r=[json.loads(l) for l in sys.stdin]; b=max(r, key=lambda j: j['runs_per_s']); print('%d %.3f %.0f %d' % (b['runs'], min(j['seconds'] for j in r), b['runs_per_s'], b['skipped']))"
}
echo "| kind | patches | shared: runs, grid s, runs/s | --full-runs: runs, grid s, runs/s | grid speed-up |"
echo "| --- | ---: | ---: | ---: | ---: |"
for k in resid_pre attn_out mlp_out z "z --per-position"; do
    read -r rs ss ps sk <<<"$(best --kind $k)"
    read -r rf sf pf _ <<<"$(best --kind $k --full-runs)"
    echo "| $k | $((rs + sk)) | $rs, $ss, $ps | $rf, $sf, $pf | $(/usr/bin/python3 -c "print('%.1fx' % ($sf / $ss))") |"
done
