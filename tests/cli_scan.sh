#!/usr/bin/env bash
# cli_scan.sh SAESTEER REPO - perplexity, scan and label from the command line,
# on a tiny random GPT-2 (bench/make_weights.py --size tiny) and a random SAE:
#   - perplexity against the torch forward of bench/peer_torch.py (HF semantics),
#     default windows and --context 50, printing the difference;
#   - scan outputs checked by tests/scan_helper.py check-scan;
#   - SIGINT / SIGTERM during a scan: exit 1, earlier outputs byte-identical, no temp files;
#   - label: h5py reads the label back, every other dataset unchanged; bad input
#     exits 2 and leaves the file untouched;
#   - bad input to perplexity and scan: exit 2, one line on stderr, nothing written.
set -u
BIN=$(realpath "$1"); ROOT=$(realpath "$2")
T=$(mktemp -d /tmp/cli_scan.XXXXXX)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
H="$ROOT/tests/scan_helper.py"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect CODE CMD...: exit code and a one-line stderr
expect() {
  local want=$1; shift
  "$@" >"$T/out.txt" 2>"$T/err.txt"; local rc=$?
  local lines; lines=$(wc -l <"$T/err.txt")
  if [ "$rc" = "$want" ] && { [ "$want" = 0 ] || [ "$lines" = 1 ]; }; then ok "exit $rc: ${*:2:6} | $(head -c 150 "$T/err.txt")"
  else bad "want exit $want, got $rc ($lines stderr lines): $* | $(head -c 300 "$T/err.txt")"; fi
}

"$PY" "$ROOT/bench/make_weights.py" "$T/model" --size tiny >/dev/null || { echo "FAIL make_weights"; exit 1; }
M="$T/model"

# a text of ~2,500 tokens with no trailing newline (so --text "$(cat F)" tokenizes the same)
"$PY" - "$T/text.txt" <<'EOF'
import sys, random
random.seed(1)
w = ("the cat sat on a mat and Paris is in France it's 2024 café 日本 (quoted) Hello WORLD — "
     "naïve don't we'll 3.14 fn() <|endoftext|>").split(" ")
out = []
for i in range(1400):
    out.append(random.choice(w))
    out.append(random.choice([" ", " ", " ", "\n", "\n\n", ", ", ". "]))
open(sys.argv[1], "w", encoding="utf-8").write("Start " + "".join(out).strip() + " end")
EOF

# ------------------------------------------------------------ perplexity
"$BIN" tokenize --model "$M" --text "$(cat "$T/text.txt")" --json >"$T/ids.json" || bad "tokenize"
for ctx in 0 50; do
  args=(); [ "$ctx" != 0 ] && args=(--context "$ctx")
  if "$BIN" perplexity --model "$M" --text-file "$T/text.txt" --json --quiet "${args[@]}" >"$T/ppl.json" 2>"$T/err.txt" &&
     "$PY" "$H" ppl-ref "$M" "$T/ids.json" "${args[@]}" >"$T/ref.json"; then
    if "$PY" - "$T/ppl.json" "$T/ref.json" "$ctx" <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
d = abs(a["perplexity"] - b["perplexity"]); r = d / b["perplexity"]
print(f"  context {sys.argv[3] or 'n_positions'}: saesteer {a['perplexity']:.6f} over {a['tokens']} tokens in {a['windows']} windows; "
      f"torch (float64) {b['perplexity']:.6f} over {b['tokens']}: abs diff {d:.3g}, rel diff {r:.3g}, nll diff {abs(a['nll'] - b['nll']):.3g}")
sys.exit(0 if a["tokens"] == b["tokens"] and r < 1e-4 else 1)
EOF
    then ok "perplexity matches the torch reference (context ${ctx/#0/default})"; else bad "perplexity vs torch"; fi
  else bad "perplexity run: $(cat "$T/err.txt")"; fi
done
"$BIN" perplexity --model "$M" --text-file "$T/text.txt" --max-tokens 100 --json --quiet >"$T/ppl.json" &&
  "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["tokens"]==100 and j["windows"]==1 and set(j)>={"perplexity","tokens"} else 1)' "$T/ppl.json" &&
  ok "perplexity --max-tokens 100: 100 tokens, one window" || bad "perplexity --max-tokens"
out=$("$BIN" perplexity --model "$M" --text-file "$T/text.txt" --max-tokens 300 --quiet)
case "$out" in "perplexity "*" over 300 tokens"*) ok "perplexity text output: $out";; *) bad "text output: $out";; esac

printf 'abc \xff def' >"$T/badutf.txt"; : >"$T/empty.txt"
expect 2 "$BIN" perplexity --model "$M"
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/nope.txt"
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/badutf.txt"
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/empty.txt"
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/text.txt" --context 1
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/text.txt" --context 129
expect 2 "$BIN" perplexity --model "$M" --text-file "$T/text.txt" --bogus

# ------------------------------------------------------------------ scan
"$PY" "$H" make-sae "$T/s.h5" --d-in 64 --d-sae 300 --hook blocks.1.hook_resid_pre --center --ctx 48 || bad "make-sae"
if "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt" -o "$T/scan" --top 7 --context 4 >"$T/out.txt" 2>"$T/err.txt"; then
  ok "scan: $(tr '\n' ' ' <"$T/out.txt")"
  "$PY" "$H" check-scan "$T/scan" "$T/s.h5" && ok "latents.json consistent" || bad "check-scan"
  "$PY" - "$T/scan/latents.json" "$T/ids.json" <<'EOF' && ok "contexts are the scanned tokens at their token_index" || bad "context ids"
import json, sys
J, ids = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["ids"]
per, bad = J["window"] - 1, 0
for L in J["latents"]:
    for c in L["contexts"]:
        i = c["token_index"]; s = i - c["center"]
        # the stored span is ids[s : s+len], never crossing a window boundary
        bad += ids[s:s + len(c["ids"])] != c["ids"] or s // per != (s + len(c["ids"]) - 1) // per
assert J["n_tokens"] == len(ids), (J["n_tokens"], len(ids))
sys.exit(1 if bad else 0)
EOF
  [ "$(stat -c %a "$T/scan/latents.json")" != 600 ] && ok "outputs readable ($(stat -c %a "$T/scan/latents.json"))" || bad "outputs 0600"
else bad "scan: $(cat "$T/err.txt")"; fi

# bad input: nothing written
mkdir -p "$T/scan2"
"$PY" "$H" make-sae "$T/wrong.h5" --d-in 64 --d-sae 10 --hook blocks.7.hook_resid_pre
expect 2 "$BIN" scan --model "$M" --sae "$T/wrong.h5" --text-file "$T/text.txt" -o "$T/scan2"
"$PY" "$H" make-sae "$T/wide.h5" --d-in 65 --d-sae 10 --hook blocks.1.hook_resid_pre
expect 2 "$BIN" scan --model "$M" --sae "$T/wide.h5" --text-file "$T/text.txt" -o "$T/scan2"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/empty.txt" -o "$T/scan2"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/badutf.txt" -o "$T/scan2"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/nope.txt" -o "$T/scan2"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt" -o "$T/text.txt"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt"
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt" -o "$T/scan2" --top 0
expect 2 "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/text.txt" -o "$T/scan2" --window 500
[ -z "$(ls -A "$T/scan2")" ] && ok "failed scans wrote nothing" || bad "scan2 not empty: $(ls "$T/scan2")"

# ------------------------------------------------------------- interrupt
# a text long enough to take several seconds; interrupt after the first progress line
"$PY" "$H" text "$T/big.txt" --mb 3 || bad "big text"
sha() { sha256sum "$T/scan/latents.json" "$T/scan/dashboard.html" | cut -c1-64 | tr '\n' ' '; }
before=$(sha)
for sig in INT TERM; do
  # SIGINT/SIGTERM back at their defaults: a non-interactive shell starts
  # background jobs with SIGINT ignored, and saesteer leaves an ignored signal alone
  SAESTEER_PROGRESS_S=0 $PY -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGTERM, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BIN" scan --model "$M" --sae "$T/s.h5" --text-file "$T/big.txt" -o "$T/scan" >"$T/out.txt" 2>"$T/err.txt" &
  pid=$!
  for _ in $(seq 1 600); do grep -q "tokens/s" "$T/err.txt" 2>/dev/null && break; sleep 0.05; done
  kill -"$sig" "$pid"
  wait "$pid"; rc=$?
  left=$(ls "$T/scan" | grep -c tmp)
  if [ "$rc" = 1 ] && [ "$(sha)" = "$before" ] && [ "$left" = 0 ] && grep -q "interrupted" "$T/err.txt" &&
     grep -q "windows of 48 with BOS" "$T/err.txt" && grep -q "tokens/s, .*% done, ETA" "$T/err.txt"; then
    [ "$sig" = INT ] && echo "  progress: $(grep -m1 ETA "$T/err.txt")"
    ok "SIG$sig: exit 1, earlier outputs intact, no temp files ($(grep interrupted "$T/err.txt" | head -c 120))"
  else bad "SIG$sig: rc $rc, left $left, $(tail -1 "$T/err.txt")"; fi
done

# ----------------------------------------------------------------- label
cp "$T/s.h5" "$T/l.h5"
expect 0 "$BIN" label "$T/l.h5" --latent 5 --text "cats on mats ü"
"$PY" - "$T/s.h5" "$T/l.h5" <<'EOF' && ok "h5py reads the label; every other dataset and attribute unchanged" || bad "label round trip"
import h5py, sys, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
lab = b["labels"].asstr()[()]
assert lab[5] == "cats on mats ü" and all(x == "" for i, x in enumerate(lab) if i != 5), lab[:8]
for k in a.keys():
    assert np.array_equal(a[k][()], b[k][()]), k
for k, v in a.attrs.items():
    w = b.attrs.get(k)
    same = str(w) == str(v) if isinstance(v, (str, bytes)) else int(w) == int(v)
    assert same, (k, v, w)
EOF
printf '{"7": "seven", "9": "nine"}' >"$T/labels.json"
expect 0 "$BIN" label "$T/l.h5" --from "$T/labels.json"
printf '[{"latent": 9, "label": "nine again"}, {"latent": 0, "label": "zero"}]' >"$T/labels2.json"
expect 0 "$BIN" label "$T/l.h5" --from "$T/labels2.json"
"$BIN" label "$T/l.h5" --list >"$T/list.txt"
[ "$(cat "$T/list.txt")" = "$(printf '0\tzero\n5\tcats on mats ü\n7\tseven\n9\tnine again')" ] && ok "label --list" || bad "list: $(cat "$T/list.txt")"
expect 0 "$BIN" label "$T/l.h5" --latent 7 --text ""
h=$(sha256sum <"$T/l.h5")
expect 2 "$BIN" label "$T/l.h5" --latent 300 --text "out of range"
expect 2 "$BIN" label "$T/l.h5" --latent 1 --text "$(printf 'two\nlines')"
expect 2 "$BIN" label "$T/l.h5" --latent 1
expect 2 "$BIN" label "$T/l.h5" --latent 1 --text x --from "$T/labels.json"
printf '{"1": "ok", "999": "bad"}' >"$T/labels3.json"
expect 2 "$BIN" label "$T/l.h5" --from "$T/labels3.json"
printf '{"1": 5}' >"$T/labels4.json"
expect 2 "$BIN" label "$T/l.h5" --from "$T/labels4.json"
printf '[1, 2' >"$T/labels5.json"
expect 2 "$BIN" label "$T/l.h5" --from "$T/labels5.json"
expect 2 "$BIN" label "$T" --latent 1 --text x
expect 2 "$BIN" label "$T/text.txt" --latent 1 --text x
[ "$(sha256sum <"$T/l.h5")" = "$h" ] && ok "rejected labels left the file untouched" || bad "file changed"
# labels show up in the next scan
"$BIN" scan --model "$M" --sae "$T/l.h5" --text-file "$T/text.txt" -o "$T/scan3" --quiet >/dev/null &&
  "$PY" "$H" check-scan "$T/scan3" "$T/l.h5" && ok "scan carries the labels" || bad "labels in scan"

echo "cli_scan: $fails failures"
exit $((fails > 0))
