#!/bin/bash
# .ci/valgrind.sh - valgrind memcheck of one ordinary run of every saesteer
# subcommand (tokenize logits cache generate steer encode convert info latents
# sae-eval perplexity scan label vector compare task-vector fv), plus a few
# failing runs (error paths free what they took). Zero errors is the bar:
# invalid reads/writes, uses of uninitialised values, bad frees, and definite
# or indirect leaks all count (--error-exitcode=1 on each run).
#
#   .ci/valgrind.sh [SAESTEER_BINARY]
#
# Without an argument it builds a RelWithDebInfo binary in build-valgrind/.
# The model and SAE are tests/fixtures/tiny-sp and tests/fixtures/saes/
# standard_centered when present, else a random tiny GPT-2 (2 layers, 32 wide)
# and SAE from bench/make_weights.py and bench/make_sae.py. OpenBLAS runs one thread (valgrind serialises
# threads anyway). sae_h5.c reads each .h5 first in a forked child that _exits
# at once (h5_probe); memcheck ignores that child (--child-silent-after-fork),
# the parent runs the same reader on the same file. Runtime: tests/fuzz/README.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then
  BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  build=$root/build-valgrind
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
  nice -n 10 cmake --build "$build" -j"${JOBS:-2}" --target saesteer >/dev/null || exit 1
  BIN=$build/saesteer
fi
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed (apt-get install valgrind)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ss_valgrind.XXXXXX")
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

FX=${SAESTEER_FIXTURES:-$root/tests/fixtures}
m=$T/model; s=$T/sae
if [ -f "$FX/tiny-sp/config.json" ] && [ -f "$FX/saes/standard_centered/cfg.json" ]; then
  cp -rL "$FX/tiny-sp" "$m" && cp -rL "$FX/saes/standard_centered" "$s"   # -L: the fixtures link the shared tokenizer
else
  /usr/bin/python3 "$root/bench/make_weights.py" "$m" --size tiny --n-embd 32 --n-positions 64 >/dev/null 2>&1 &&
    /usr/bin/python3 "$root/bench/make_sae.py" "$s" --d-in 32 --d-sae 48 --hook blocks.0.hook_resid_pre \
      --context-size 32 --center-writing-weights >/dev/null
fi || { echo "FAIL could not build the test model"; exit 1; }
/usr/bin/python3 - "$T" <<'EOF' || { echo "FAIL could not write the test inputs"; exit 1; }
import json, sys
import numpy as np
T = sys.argv[1]
C = json.load(open(f"{T}/model/config.json"))["n_embd"]
np.save(f"{T}/vec.npy", (np.random.default_rng(0).standard_normal(C) * 0.1).astype(np.float32))
open(f"{T}/text.txt", "w").write("The cat sat on the mat. It was a sunny day, and the birds sang.\n" * 6)
open(f"{T}/prompts.txt", "w").write("I think that\nThe weather is\n")
open(f"{T}/pairs.jsonl", "w").write('{"positive": "I love this", "negative": "I hate this"}\n'
                                   '{"positive": "wonderful", "negative": "terrible"}\n')
pairs = [("hot", "cold"), ("up", "down"), ("big", "small"), ("old", "new"), ("fast", "slow"), ("happy", "sad"),
         ("light", "dark"), ("high", "low"), ("rich", "poor"), ("hard", "soft"), ("early", "late"), ("open", "closed")]
json.dump([{"input": a, "output": b} for a, b in pairs], open(f"{T}/ds.json", "w"))
json.dump({"1": "first latent"}, open(f"{T}/labels.json", "w"))
EOF
M=$T/model; SAE=$T/sae
# the layer the SAE reads, for fv/task-vector
VG=(valgrind -q --tool=memcheck --error-exitcode=1 --child-silent-after-fork=yes --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --suppressions="$root/.ci/valgrind.supp")
pass=0; fail=0
# run NAME EXPECTED_EXIT -- ARGS...
run() {
  local name=$1 want=$2; shift 3
  local t0=$(date +%s.%N)
  "${VG[@]}" --log-file="$T/vg.$name.log" "$BIN" "$@" >"$T/out.$name" 2>"$T/err.$name" </dev/null
  local rc=$? dt
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  local errs; errs=$(grep -c '^==[0-9]*== ' "$T/vg.$name.log" 2>/dev/null || true)
  if [ "$rc" -eq "$want" ] && [ "$errs" -eq 0 ]; then
    pass=$((pass+1)); printf 'ok   %-22s exit %d, 0 valgrind errors (%.1f s)\n' "$name" "$rc" "$dt"
  else
    fail=$((fail+1)); printf 'FAIL %-22s exit %d (want %d), valgrind log:\n' "$name" "$rc" "$want"
    head -60 "$T/vg.$name.log"; echo "  stderr: $(head -c 400 "$T/err.$name")"
  fi
}
TXT=(--text "The cat sat on the mat")
run tokenize 0 -- tokenize --model "$M" "${TXT[@]}" --json
run logits 0 -- logits --model "$M" "${TXT[@]}" -o "$T/logits.npy"
run cache 0 -- cache --model "$M" "${TXT[@]}" --hook blocks.0.hook_resid_pre --hook blocks.1.attn.hook_pattern -o "$T/cache.npz"
run generate 0 -- generate --model "$M" "${TXT[@]}" --max-new-tokens 4 --temperature 0.8 --top-p 0.9 --seed 1 \
    --steer-vector "$T/vec.npy" --hook blocks.1.hook_resid_pre --scale 2 --json
run steer 0 -- steer --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" --scales 0,4 --max-new-tokens 3 --json
run encode 0 -- encode --model "$M" --sae "$SAE" "${TXT[@]}" -o "$T/acts.npy" --recon "$T/recon.npy"
run convert 0 -- convert "$SAE" -o "$T/dict.h5"
run info 0 -- info "$T/dict.h5" --json
run latents 0 -- latents --model "$M" --sae "$T/dict.h5" "${TXT[@]}" --top 3 --json
run sae-eval 0 -- sae-eval --model "$M" --sae "$SAE" --text-file "$T/text.txt" --max-tokens 64 --json
run perplexity 0 -- perplexity --model "$M" --text-file "$T/text.txt" --json --quiet
run scan 0 -- scan --model "$M" --sae "$T/dict.h5" --text-file "$T/text.txt" --top 3 --quiet -o "$T/scan"
run label 0 -- label "$T/dict.h5" --from "$T/labels.json"
run vector 0 -- vector --model "$M" --hook blocks.1.hook_resid_pre --pairs "$T/pairs.jsonl" --method pca -o "$T/v.npy"
run compare 0 -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec.npy" --prompts "$T/prompts.txt" \
    --scales 0,2 --max-new-tokens 2 --sentiment --json --plot "$T/plot.svg"
run task-vector 0 -- task-vector --model "$M" --dataset "$T/ds.json" --layer 0 --shots 2 --n-prompts 2 --n-eval 3 \
    --examples 1 --max-new-tokens 2 --json
run fv 0 -- fv --model "$M" --dataset "$T/ds.json" --layer 0 --heads 2 --shots 2 --n-prompts 2 --n-eval 3 \
    --examples 1 --max-new-tokens 2 --json
# error paths free what they took
run bad-sae 2 -- encode --model "$M" --sae "$T/nope" "${TXT[@]}" -o "$T/x.npy"
run bad-vector 2 -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/text.txt" --hook blocks.0.hook_resid_pre --scale 1 -o "$T/x.npy"
run bad-latent 2 -- logits --model "$M" "${TXT[@]}" --sae "$SAE" --latent 100000 --scale 1 -o "$T/x.npy"
echo "valgrind: $pass passed, $fail failed"
exit $((fail > 0))
