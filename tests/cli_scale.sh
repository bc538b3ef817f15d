#!/usr/bin/env bash
# cli_scale.sh SAESTEER REPO - corpus work split over processes gives the
# single-process outputs byte for byte (docs/SCALING.md):
#   - --shard I/N + `saesteer merge` for scan, sae-eval and perplexity, N = 1, 2, 3, on an
#     even text and an uneven one (long stretches without a safe cut, so the byte ranges
#     are lopsided, one shard even empty); the scan outputs (latents.json, dashboard.html)
#     compared byte for byte without the one line that says how they were made ("ranks",
#     "seconds", "tokens_per_s"), the metric JSON without "ranks" and "seconds";
#   - --threads 1 vs 3 (windows on worker threads): identical;
#   - merge refuses parts that do not belong together (exit 2, one line, nothing written);
#   - when the build has MPI (SAESTEER_MPI_BUILD=1, set by CMake): the same equalities under
#     `mpirun --oversubscribe -n N` for N = 1, 2, 3; a rank that fails (invalid UTF-8 in its
#     range) makes mpirun exit non-zero with one saesteer line naming the rank and nothing
#     written; SIGINT to mpirun leaves no outputs and no temporary files. In the MPI build the
#     shard, thread and refusal checks are skipped (the plain build ran them).
# The single-process outputs themselves are checked against torch in cli_scan.sh/cli_sae.sh.
set -u
BIN=$(realpath "$1"); ROOT=$(realpath "$2")
T=$(mktemp -d /tmp/cli_scale.XXXXXX)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
H="$ROOT/tests/scan_helper.py"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

"$PY" "$ROOT/bench/make_weights.py" "$T/model" --size tiny >/dev/null || { echo "FAIL make_weights"; exit 1; }
M="$T/model"
"$PY" "$H" make-sae "$T/s.h5" --d-in 64 --d-sae 300 --hook blocks.1.hook_resid_pre --center --ctx 48 >/dev/null || bad "make-sae"

# even: ~3,200 tokens of mixed text; uneven: a long run with no safe cut (no spaces
# between letters, no newline between printable bytes) in the middle, short lines around it
"$PY" - "$T" <<'EOF'
import sys, random
random.seed(1)
w = ("the cat sat on a mat and Paris is in France it's 2024 café 日本 (quoted) Hello WORLD — "
     "naïve don't we'll 3.14 fn() <|endoftext|>").split(" ")
out = []
for i in range(1400):
    out.append(random.choice(w)); out.append(random.choice([" ", " ", " ", "\n", "\n\n", ", ", ". "]))
open(sys.argv[1] + "/even.txt", "w", encoding="utf-8").write("Start " + "".join(out).strip() + " end")
head = "".join(random.choice(w) + random.choice([" ", "\n"]) for _ in range(60))
run = "".join(random.choice(["日本", "café", "-", "x", "ÿ", "."]) for _ in range(1500))
tail = "".join(random.choice(w) + " " for _ in range(40))
open(sys.argv[1] + "/uneven.txt", "w", encoding="utf-8").write(head + run + tail)
EOF
SCAN=(--model "$M" --sae "$T/s.h5" --top 7 --context 4 --quiet)
EVAL=(--model "$M" --sae "$T/s.h5" --max-tokens 1500)
PPL=(--model "$M" --context 50 --max-tokens 1200 --quiet)

# compare the scan outputs of directory $1 with $2, without the provenance line
same_scan() {
  for f in latents.json dashboard.html; do
    cmp -s <(grep -v '^"ranks":' "$1/$f") <(grep -v '^"ranks":' "$2/$f") || return 1
  done
  [ "$(grep -c '^"ranks":' "$2/latents.json")" = 1 ]
}
# metric JSON without "ranks" and "seconds"; $3 = the ranks expected in $2
same_json() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert b.get("ranks") == int(sys.argv[3]), b.get("ranks")
for j in (a, b):
    j.pop("ranks", None); j.pop("seconds", None)
sys.exit(0 if a == b else 1)
EOF
}

# the single-process references
for text in even uneven; do
  X="$T/$text.txt"
  "$BIN" scan "${SCAN[@]}" --text-file "$X" -o "$T/$text.one" >/dev/null 2>"$T/err" || bad "scan $text: $(cat "$T/err")"
  "$BIN" sae-eval "${EVAL[@]}" --text-file "$X" --json >"$T/$text.eval.json" 2>"$T/err" || bad "sae-eval $text: $(cat "$T/err")"
  "$BIN" perplexity "${PPL[@]}" --text-file "$X" --json >"$T/$text.ppl.json" 2>"$T/err" || bad "perplexity $text: $(cat "$T/err")"
  echo "  $text: $(grep -o '"n_tokens":[0-9]*,"n_windows":[0-9]*' "$T/$text.one/latents.json"), $(wc -c <"$X") bytes"
done

# shards, threads and refusals run in the plain build; the MPI build (.ci/run runs this script again
# there) goes straight to the mpirun checks, to keep CI short
if [ "${SAESTEER_MPI_BUILD:-0}" != 1 ]; then
for text in even uneven; do
  X="$T/$text.txt"
  for n in 1 2 3; do
    rm -rf "$T/p"; mkdir "$T/p"
    for i in $(seq 0 $((n - 1))); do
      "$BIN" scan "${SCAN[@]}" --text-file "$X" --shard "$i/$n" -o "$T/p/scan.$i" >>"$T/p/log" 2>&1 &&
      "$BIN" sae-eval "${EVAL[@]}" --text-file "$X" --shard "$i/$n" -o "$T/p/eval.$i" >>"$T/p/log" 2>&1 &&
      "$BIN" perplexity "${PPL[@]}" --text-file "$X" --shard "$i/$n" -o "$T/p/ppl.$i" >>"$T/p/log" 2>&1 || bad "shard $i/$n $text: $(tail -1 "$T/p/log")"
    done
    [ "$n" = 3 ] && echo "  $text, 3 shards: $(grep -o 'windows, bytes [0-9]*\.\.[0-9]*' "$T/p/log" | tr '\n' ' ')"
    # parts in reverse order: merge sorts them by shard
    "$BIN" merge $(ls -r "$T"/p/scan.*) -o "$T/p/out" >/dev/null 2>"$T/err" && same_scan "$T/$text.one" "$T/p/out" &&
      grep -q "^\"ranks\":$n," "$T/p/out/latents.json" &&
      ok "scan $text: $n shards + merge = one process (latents.json, dashboard.html)" || bad "scan $text $n shards: $(cat "$T/err")"
    "$BIN" merge "$T"/p/eval.* --json >"$T/p/eval.json" 2>"$T/err" && same_json "$T/$text.eval.json" "$T/p/eval.json" "$n" &&
      ok "sae-eval $text: $n shards + merge = one process" || bad "sae-eval $text $n shards: $(cat "$T/err")"
    "$BIN" merge "$T"/p/ppl.* --json >"$T/p/ppl.json" 2>"$T/err" && same_json "$T/$text.ppl.json" "$T/p/ppl.json" "$n" &&
      ok "perplexity $text: $n shards + merge = one process" || bad "perplexity $text $n shards: $(cat "$T/err")"
  done
done

# threads: windows on 1 or 3 workers, same bits
for th in 1 3; do
  "$BIN" scan "${SCAN[@]}" --text-file "$T/even.txt" -o "$T/th$th" --threads "$th" >/dev/null 2>&1
  "$BIN" sae-eval "${EVAL[@]}" --text-file "$T/even.txt" --json --threads "$th" >"$T/th$th.eval.json" 2>/dev/null
  "$BIN" perplexity "${PPL[@]}" --text-file "$T/even.txt" --json --threads "$th" >"$T/th$th.ppl.json" 2>/dev/null
  same_scan "$T/even.one" "$T/th$th" && same_json "$T/even.eval.json" "$T/th$th.eval.json" 1 &&
    same_json "$T/even.ppl.json" "$T/th$th.ppl.json" 1 && ok "--threads $th: identical outputs" || bad "--threads $th differs"
done

# ------------------------------------------------------------ refusals
expect2() {   # expect2 WHAT CMD...: exit 2, one line on stderr, nothing in $T/r/out
  local what=$1; shift
  "$@" >"$T/out.txt" 2>"$T/err.txt"; local rc=$?
  if [ "$rc" = 2 ] && [ "$(wc -l <"$T/err.txt")" = 1 ] && [ ! -e "$T/r/out/latents.json" ]; then ok "refused $what: $(head -c 160 "$T/err.txt")"
  else bad "$what: rc $rc: $(head -c 300 "$T/err.txt")"; fi
}
mkdir -p "$T/r"
for i in 0 1 2; do "$BIN" scan "${SCAN[@]}" --text-file "$T/even.txt" --shard "$i/3" -o "$T/r/a.$i" >/dev/null; done
"$BIN" scan "${SCAN[@]}" --text-file "$T/even.txt" --shard 1/2 -o "$T/r/half.1" >/dev/null
"$BIN" scan --model "$M" --sae "$T/s.h5" --top 5 --context 4 --quiet --text-file "$T/even.txt" --shard 1/3 -o "$T/r/top5.1" >/dev/null
"$BIN" scan "${SCAN[@]}" --text-file "$T/uneven.txt" --shard 1/3 -o "$T/r/other.1" >/dev/null
"$BIN" sae-eval "${EVAL[@]}" --text-file "$T/even.txt" --shard 1/3 -o "$T/r/eval.1" >/dev/null 2>&1
"$PY" "$H" make-sae "$T/s2.h5" --d-in 64 --d-sae 300 --hook blocks.1.hook_resid_pre --center --ctx 48 --seed 5 >/dev/null
"$BIN" scan --model "$M" --sae "$T/s2.h5" --top 7 --context 4 --quiet --text-file "$T/even.txt" --shard 1/3 -o "$T/r/sae2.1" >/dev/null
expect2 "a missing shard" "$BIN" merge "$T/r/a.0" "$T/r/a.2" -o "$T/r/out"
expect2 "a shard twice" "$BIN" merge "$T/r/a.0" "$T/r/a.1" "$T/r/a.1" -o "$T/r/out"
expect2 "another shard count" "$BIN" merge "$T/r/a.0" "$T/r/half.1" "$T/r/a.2" -o "$T/r/out"
expect2 "other options (--top 5)" "$BIN" merge "$T/r/a.0" "$T/r/top5.1" "$T/r/a.2" -o "$T/r/out"
expect2 "another dictionary" "$BIN" merge "$T/r/a.0" "$T/r/sae2.1" "$T/r/a.2" -o "$T/r/out"
expect2 "another text" "$BIN" merge "$T/r/a.0" "$T/r/other.1" "$T/r/a.2" -o "$T/r/out"
expect2 "another command" "$BIN" merge "$T/r/a.0" "$T/r/eval.1" "$T/r/a.2" -o "$T/r/out"
cp "$T/r/a.1" "$T/r/bad.1"; printf '\x01' | dd of="$T/r/bad.1" bs=1 seek=$(( $(wc -c <"$T/r/a.1") - 9 )) conv=notrunc 2>/dev/null
expect2 "a corrupt payload" "$BIN" merge "$T/r/a.0" "$T/r/bad.1" "$T/r/a.2" -o "$T/r/out"
head -c 3000 "$T/r/a.1" >"$T/r/trunc.1"
expect2 "a truncated part" "$BIN" merge "$T/r/a.0" "$T/r/trunc.1" "$T/r/a.2" -o "$T/r/out"
sed '2s/"version":1/"version":2/' "$T/r/a.1" >"$T/r/v2.1"
expect2 "another version" "$BIN" merge "$T/r/a.0" "$T/r/v2.1" "$T/r/a.2" -o "$T/r/out"
expect2 "not a part file" "$BIN" merge "$T/r/a.0" "$T/even.txt" "$T/r/a.2" -o "$T/r/out"
"$PY" "$ROOT/bench/make_weights.py" "$T/model2" --size tiny --seed 3 >/dev/null || bad "make_weights 2"
expect2 "merge with another model" "$BIN" merge "$T"/r/a.? --model "$T/model2" -o "$T/r/out"
for v in 3/3 -1/2 a/b 1 0/0; do
  expect2 "--shard $v" "$BIN" scan "${SCAN[@]}" --text-file "$T/even.txt" --shard "$v" -o "$T/r/x"
done
expect2 "--shard without -o" "$BIN" perplexity "${PPL[@]}" --text-file "$T/even.txt" --shard 0/2
fi

# ------------------------------------------------------------------ MPI
if [ "${SAESTEER_MPI_BUILD:-0}" = 1 ]; then
  command -v mpirun >/dev/null || { bad "MPI build but no mpirun on PATH"; exit 1; }
  MPI=(mpirun --oversubscribe --allow-run-as-root -x OMPI_MCA_btl_vader_single_copy_mechanism=none)
  for text in even uneven; do
    X="$T/$text.txt"
    for n in 1 2 3; do
      "${MPI[@]}" -n "$n" "$BIN" scan "${SCAN[@]}" --text-file "$X" -o "$T/mpi.$text.$n" >"$T/out" 2>"$T/err" &&
        same_scan "$T/$text.one" "$T/mpi.$text.$n" && grep -q "^\"ranks\":$n," "$T/mpi.$text.$n/latents.json" &&
        ok "mpirun -n $n scan $text = one process" || bad "mpirun -n $n scan $text: $(tail -2 "$T/err")"
      "${MPI[@]}" -n "$n" "$BIN" sae-eval "${EVAL[@]}" --text-file "$X" --json >"$T/mpi.eval.json" 2>"$T/err" &&
        same_json "$T/$text.eval.json" "$T/mpi.eval.json" "$n" && ok "mpirun -n $n sae-eval $text = one process" ||
        bad "mpirun -n $n sae-eval $text: $(tail -2 "$T/err")"
      "${MPI[@]}" -n "$n" "$BIN" perplexity "${PPL[@]}" --text-file "$X" --json >"$T/mpi.ppl.json" 2>"$T/err" &&
        same_json "$T/$text.ppl.json" "$T/mpi.ppl.json" "$n" && ok "mpirun -n $n perplexity $text = one process" ||
        bad "mpirun -n $n perplexity $text: $(tail -2 "$T/err")"
    done
  done
  # a failing rank: invalid UTF-8 in the last third only
  "$PY" -c 'import sys; t=open(sys.argv[1],"rb").read(); n=len(t)*5//6; open(sys.argv[2],"wb").write(t[:n]+b" \xff "+t[n:])' "$T/even.txt" "$T/badtail.txt"
  "${MPI[@]}" -n 3 "$BIN" scan "${SCAN[@]}" --text-file "$T/badtail.txt" -o "$T/mpi.bad" >"$T/out" 2>"$T/err"; rc=$?
  lines=$(grep -c "^saesteer scan:" "$T/err")
  if [ "$rc" != 0 ] && [ "$lines" = 1 ] && grep -q "^saesteer scan: rank 2 of 3: .*invalid UTF-8" "$T/err" && [ ! -e "$T/mpi.bad/latents.json" ]; then
    ok "a failing rank: exit $rc, one line: $(grep '^saesteer scan:' "$T/err" | head -c 160)"
  else bad "failing rank: rc $rc, $lines lines: $(head -c 400 "$T/err")"; fi
  # SIGINT to mpirun (at its default disposition, see cli_scan.sh) during the scan of a longer text
  "$PY" "$H" text "$T/big.txt" --mb 2 || bad "big text"
  SAESTEER_PROGRESS_S=0 $PY -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGTERM, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "${MPI[@]}" -n 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/big.txt" -o "$T/mpi.int" >"$T/out" 2>"$T/err" &
  pid=$!
  for _ in $(seq 1 600); do grep -q "tokens/s" "$T/err" 2>/dev/null && break; sleep 0.05; done
  kill -INT "$pid"
  wait "$pid"; rc=$?
  if [ "$rc" != 0 ] && [ -z "$(ls -A "$T/mpi.int" 2>/dev/null)" ]; then ok "SIGINT to mpirun: exit $rc, nothing in the output directory"
  else bad "SIGINT to mpirun: rc $rc, left: $(ls -A "$T/mpi.int" 2>/dev/null | tr '\n' ' ') $(tail -2 "$T/err")"; fi
else
  echo "skip MPI checks (not an MPI build: configure with -DSAESTEER_MPI=ON)"
fi

echo "cli_scale: $fails failure(s)"
[ "$fails" = 0 ]
