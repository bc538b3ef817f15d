#!/usr/bin/env bash
# cli_signals.sh - SIGINT/SIGTERM in the middle of long runs never damage
# earlier outputs (issue 6):
#   scan      a finished OUTDIR (latents.json, dashboard.html) survives an
#             interrupted rescan into the same OUTDIR byte for byte; no
#             temporary file is left; exit 1
#   steer     a --record file keeps its earlier lines; every line in it is
#             whole JSON (finished runs only); exit 1
#   generate  a --record file is untouched by a killed generation; an -o of
#             logits from before is untouched by a killed `logits`
#   perplexity SIGINT stops early with exit 1 and one line on stderr
# usage: bash tests/cli_signals.sh path/to/saesteer REPO_ROOT
# The model is a random GPT-2 from bench/make_weights.py (2 layers, 32 wide,
# 1024 positions, so generations and windows are long enough to interrupt) and
# a random SAE from bench/make_sae.py.
set -u
BIN=${1:?usage: cli_signals.sh SAESTEER REPO_ROOT}
ROOT=${2:?usage: cli_signals.sh SAESTEER REPO_ROOT}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
T=$(mktemp -d "${TMPDIR:-/tmp}/cli_signals.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0; checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }

PY=/usr/bin/python3
$PY "$ROOT/bench/make_weights.py" "$T/model" --size tiny --n-embd 32 --n-positions 1024 >/dev/null 2>&1 &&
  $PY "$ROOT/bench/make_sae.py" "$T/sae" --d-in 32 --d-sae 64 --hook blocks.1.hook_resid_pre --context-size 256 \
    >/dev/null || { echo "FAIL could not build the test model"; exit 1; }
$PY - "$T" "$ROOT" <<'EOF' || { echo "FAIL could not write the texts"; exit 1; }
import sys
import numpy as np
T, root = sys.argv[1:3]
rng = np.random.default_rng(0)
words = open(f"{root}/weights/gpt2-tokenizer/merges.txt", encoding="utf-8").read().split()[1:20000]
words = [w.replace("\u0120", "") for w in words if w.isascii() and w.isalpha()]
idx = rng.integers(0, len(words), (2000, 14))
lines = [" ".join(words[i] for i in row) + ".\n" for row in idx]
open(f"{T}/small.txt", "w").write("".join(lines[:40]))
open(f"{T}/big.txt", "w").write("".join(lines) * 100)   # ~10 MB
EOF
M=$T/model; SAE=$T/sae

# start CMD in the background with SIGINT/SIGTERM at their defaults (a
# non-interactive shell starts background jobs with SIGINT ignored); once it
# has written something (banner, progress, tokens: it is past its start-up),
# wait DELAY s more and send SIG. Sets RC, and ALIVE=1 if the process was
# still running when the signal went.
interrupt() {
  local sig=$1 delay=$2; shift 2
  : > "$T/out"; : > "$T/err"
  /usr/bin/python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGTERM, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$@" >"$T/out" 2>"$T/err" </dev/null &
  local pid=$! i
  for i in $(seq 1 600); do
    { [ -s "$T/out" ] || [ -s "$T/err" ] || ! kill -0 "$pid" 2>/dev/null; } && break
    sleep 0.1
  done
  sleep "$delay"
  if kill -0 "$pid" 2>/dev/null; then ALIVE=1; kill -"$sig" "$pid"; else ALIVE=0; fi
  wait "$pid"; RC=$?
}
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum); }

# ---- scan: a finished OUTDIR survives an interrupted rescan
if "$BIN" scan --model "$M" --sae "$SAE" --text-file "$T/small.txt" --top 4 --quiet -o "$T/scan" >/dev/null 2>"$T/err0"; then
  sums "$T/scan" > "$T/scan.before"
  for sig in TERM INT; do
    interrupt "$sig" 1 "$BIN" scan --model "$M" --sae "$SAE" --text-file "$T/big.txt" --top 4 -o "$T/scan"
    sums "$T/scan" > "$T/scan.after"
    if [ $ALIVE -eq 0 ]; then bad "scan finished before the signal on big.txt; cannot test SIG$sig (rc $RC)"
    elif [ $RC -ne 1 ]; then bad "scan on SIG$sig: exit $RC, want 1 ($(tail -1 "$T/err"))"
    elif ! cmp -s "$T/scan.before" "$T/scan.after"; then bad "scan on SIG$sig changed the earlier OUTDIR: $(diff "$T/scan.before" "$T/scan.after" | head -3)"
    else ok "scan SIG$sig mid-run: exit 1, earlier latents.json and dashboard.html intact, no temp files ($(tail -1 "$T/err" | tr -d '\r' | tail -c 120))"
    fi
  done
else
  bad "scan of small.txt failed: $(cat "$T/err0")"
fi

# ---- steer: the record keeps its earlier lines; only whole lines are added
if "$BIN" steer --model "$M" --sae "$SAE" --latent 3 --text "Once upon a time" --scales 0,2 --max-new-tokens 4 \
     --record "$T/rec.jsonl" >/dev/null 2>"$T/err0"; then
  cp "$T/rec.jsonl" "$T/rec.before"
  n0=$(wc -l < "$T/rec.before")
  interrupt TERM 3 "$BIN" steer --model "$M" --sae "$SAE" --latent 3 --text "Once upon a time" \
      --scales "$(seq -s, 0 2 200)" --samples 4 --max-new-tokens 20 --record "$T/rec.jsonl"
  n1=$(wc -l < "$T/rec.jsonl")
  whole=$(/usr/bin/python3 -c 'import json,sys
n=0
for l in open(sys.argv[1], "rb").read().split(b"\n")[:-1]: json.loads(l); n+=1
print("ok" if open(sys.argv[1], "rb").read().endswith(b"\n") else "partial last line")' "$T/rec.jsonl" 2>&1 | tail -1)
  if [ $ALIVE -eq 0 ]; then bad "steer sweep finished before the signal; cannot test SIGTERM (rc $RC)"
  elif [ $RC -ne 1 ]; then bad "steer on SIGTERM: exit $RC, want 1 ($(tail -1 "$T/err"))"
  elif ! cmp -s "$T/rec.before" <(head -n "$n0" "$T/rec.jsonl"); then bad "steer on SIGTERM changed earlier record lines"
  elif [ "$whole" != ok ]; then bad "steer on SIGTERM left a record that is not whole JSON lines: $whole"
  else ok "steer SIGTERM mid-sweep: exit 1, $n0 earlier record line(s) intact, $((n1 - n0)) whole new line(s) ($(tail -1 "$T/err" | tail -c 100))"
  fi
else
  bad "steer (short) failed: $(cat "$T/err0")"
fi

# ---- generate: killed mid-generation, the record file is untouched
printf '{"earlier": "record line"}\n' > "$T/gen.jsonl"; cp "$T/gen.jsonl" "$T/gen.before"
interrupt TERM 0.05 "$BIN" generate --model "$M" --text "Hello" --max-new-tokens 1000 --ignore-eos --temperature 1 \
    --record "$T/gen.jsonl"
if [ $ALIVE -eq 0 ]; then echo "note generate finished before the signal (rc $RC); record checked anyway"; fi
if [ $RC -ne 0 ] && [ $RC -ne 1 ] && [ $RC -ne 143 ]; then bad "generate on SIGTERM: exit $RC (want 1, or 143 = killed by SIGTERM)"
elif [ $RC -ne 0 ] && ! cmp -s "$T/gen.before" "$T/gen.jsonl"; then bad "generate on SIGTERM changed the record file"
else ok "generate SIGTERM: exit $RC, record file intact"
fi

# ---- logits: an earlier -o survives a killed run (written to a temp file, renamed at the end)
"$BIN" logits --model "$M" --text "Hello there" -o "$T/logits.npy" 2>"$T/err0" || bad "logits failed: $(cat "$T/err0")"
cp "$T/logits.npy" "$T/logits.before"
"$BIN" logits --model "$M" --text-file "$T/small.txt" --no-bos -o "$T/logits.npy" 2>/dev/null &
pid=$!; sleep 0.3; kill -KILL "$pid" 2>/dev/null; wait "$pid"; RC=$?
if ! cmp -s "$T/logits.before" "$T/logits.npy"; then
  [ $RC -eq 0 ] && ok "logits finished before SIGKILL (rc 0): output replaced whole" || bad "logits SIGKILL left a changed -o"
else ok "logits SIGKILL (rc $RC): earlier -o intact"
fi

# ---- perplexity: SIGINT stops early with exit 1
interrupt INT 1 "$BIN" perplexity --model "$M" --text-file "$T/big.txt" --json
lines=$(wc -l < "$T/err")
if [ $ALIVE -eq 0 ]; then bad "perplexity finished before the signal; cannot test SIGINT (rc $RC)"
elif [ $RC -ne 1 ]; then bad "perplexity on SIGINT: exit $RC, want 1"
else ok "perplexity SIGINT: exit 1 ($(grep -v '^\[' "$T/err" | tail -1 | tail -c 100))"
fi
leftover=$(find "$T" -name '*.tmp.*' | head -3)
[ -z "$leftover" ] && ok "no temporary files left anywhere" || bad "temporary files left: $leftover"

echo "$((checks - fails))/$checks checks passed"
exit $((fails > 0))
