#!/bin/bash
# CLI contract (DESIGN.md) for tokenize, logits, cache, generate against the HF
# fixtures, run on both checkpoint layouts, plus exit codes and untouched
# outputs on bad input.   usage: cli_model.sh SAESTEER_BIN REPO_ROOT
set -u
BIN=$1; ROOT=$2; FX=$ROOT/tests/fixtures; PY=/usr/bin/python3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "ok   $1"; }
bad()  { fail=$((fail+1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# compare two .npy files (or an npz key): max abs diff <= tol; prints the diff
close() { $PY - "$@" <<'PY'
import sys, numpy as np
def load(s):
    if "::" in s:
        f, k = s.split("::"); return np.load(f)[k]
    return np.load(s)
a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
if len(sys.argv) > 4 and sys.argv[4] == "last": b = b.reshape(-1, b.shape[-1]); a = a[-1:]
if len(sys.argv) > 4 and sys.argv[4] == "center": b = b - b.mean(-1, keepdims=True)
a = a.reshape(b.shape) if a.size == b.size else a
d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
print(f"     shapes {a.shape} vs {b.shape}, max abs diff {d:.3e} (tol {tol:g})")
sys.exit(0 if d <= tol else 1)
PY
}
one_line_err() { [ "$(wc -l < "$T/err")" -eq 1 ]; }

for M in tiny-sp tiny-oa; do
    D=$FX/$M; R=$D/ref
    PROMPT=$($PY -c "import json; print(json.load(open('$R/ids.json'))['text'])")
    # tokenize
    got=$($BIN tokenize --model "$D" --text "$PROMPT" --json)
    want=$($PY -c "import json; print(json.dumps({'ids': json.load(open('$R/ids.json'))['ids'][1:]}, separators=(',',':')))")
    check "$M tokenize --json" '[ "$got" = "$want" ]'
    got=$($BIN tokenize --model "$D" --text 'a<|endoftext|>b' --json)
    check "$M <|endoftext|> -> 50256" '[ "$got" = "{\"ids\":[64,50256,65]}" ]'
    # logits: every position, BOS prepended by default
    $BIN logits --model "$D" --text "$PROMPT" -o "$T/l.npy"
    check "$M logits (T, V) vs HF" 'close "$T/l.npy" "$R/logits.npy" 1e-4'
    NB=$($PY -c "import json; print(json.load(open('$R/nobos_ids.json'))['text'])")
    $BIN logits --model "$D" --text "$NB" --no-bos -o "$T/l2.npy"
    check "$M logits --no-bos last row vs HF" 'close "$T/l2.npy" "$R/nobos_logits_last.npy" 1e-4 last'
    # steering: vector at all positions, last position, 2-D matrix
    $BIN logits --model "$D" --text "$PROMPT" --steer-vector "$R/steer_v.npy" --hook blocks.1.hook_resid_pre --scale 4 -o "$T/s.npy"
    check "$M logits --steer-vector (all) vs HF" 'close "$T/s.npy" "$R/logits_steer_all.npy" 1e-4 last'
    $BIN logits --model "$D" --text "$PROMPT" --steer-vector "$R/steer_v.npy" --hook blocks.1.hook_resid_pre --scale 4 --positions last -o "$T/s.npy"
    check "$M logits --positions last vs HF" 'close "$T/s.npy" "$R/logits_steer_last.npy" 1e-4 last'
    $BIN logits --model "$D" --text "$PROMPT" --steer-vector "$R/steer_M.npy" --hook blocks.1.hook_resid_pre --scale 4 -o "$T/s.npy"
    check "$M logits 2-D steer matrix vs HF" 'close "$T/s.npy" "$R/logits_steer_mat.npy" 1e-4 last'
    # cache: one hook -> npy, several -> npz, centring
    $BIN cache --model "$D" --text "$PROMPT" --hook blocks.1.hook_resid_pre -o "$T/c.npy"
    check "$M cache one hook (T, C) vs HF" 'close "$T/c.npy" "$R/blocks.1.hook_resid_pre.npy" 1e-5'
    $BIN cache --model "$D" --text "$PROMPT" --hook blocks.0.attn.hook_pattern --hook ln_final.hook_normalized --hook blocks.1.mlp.hook_post -o "$T/c.npz"
    check "$M cache npz: pattern" 'close "$T/c.npz::blocks.0.attn.hook_pattern" "$R/blocks.0.attn.hook_pattern.npy" 1e-5'
    check "$M cache npz: ln_final" 'close "$T/c.npz::ln_final.hook_normalized" "$R/ln_final.hook_normalized.npy" 1e-4'
    check "$M cache npz: mlp.hook_post" 'close "$T/c.npz::blocks.1.mlp.hook_post" "$R/blocks.1.mlp.hook_post.npy" 1e-4'
    $BIN cache --model "$D" --text "$PROMPT" --center-writing-weights --hook blocks.1.hook_resid_pre -o "$T/cc.npy"
    check "$M cache --center-writing-weights = HF - mean" 'close "$T/cc.npy" "$R/blocks.1.hook_resid_pre.npy" 1e-5 center'
    # generate: greedy, plain and steered, vs HF generate
    for K in greedy greedy_steer_all; do
        EXTRA=""; [ $K = greedy_steer_all ] && EXTRA="--steer-vector $R/steer_v.npy --hook blocks.1.hook_resid_pre --scale 4"
        $BIN generate --model "$D" --text "$PROMPT" --max-new-tokens 20 --temperature 0 --ignore-eos --json $EXTRA > "$T/g.json"
        check "$M generate $K vs HF" '$PY -c "import json,sys; g=json.load(open(\"$T/g.json\")); w=json.load(open(\"$R/generate.json\"))[\"$K\"]; t=g[\"timing\"]; sys.exit(0 if g[\"tokens\"]==w and set(t)=={\"load_s\",\"prefill_s\",\"prefill_tokens\",\"decode_s\",\"new_tokens\"} and t[\"new_tokens\"]==20 else 1)"'
    done
done

D=$FX/tiny-sp; R=$D/ref
# a GGUF control vector steers like the same .npy at blocks.N.hook_resid_post
$BIN vector --export-gguf "$R/steer_v.npy" --layer 1 -o "$T/v.gguf" 2>/dev/null
$BIN generate --model "$D" --text "Hi" --steer-vector "$T/v.gguf" --scale 4 --max-new-tokens 8 --temperature 0 --json > "$T/a.json"
$BIN generate --model "$D" --text "Hi" --steer-vector "$R/steer_v.npy" --hook blocks.1.hook_resid_post --scale 4 --max-new-tokens 8 --temperature 0 --json > "$T/b.json"
check "GGUF control vector = .npy at blocks.1.hook_resid_post" '$PY -c "import json,sys; sys.exit(0 if json.load(open(\"$T/a.json\"))[\"tokens\"]==json.load(open(\"$T/b.json\"))[\"tokens\"] else 1)"'
# sampling is reproducible with --seed and differs across seeds
a=$($BIN generate --model "$D" --text "Hi" --max-new-tokens 12 --temperature 1 --top-k 50 --seed 5 --json | $PY -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
b=$($BIN generate --model "$D" --text "Hi" --max-new-tokens 12 --temperature 1 --top-k 50 --seed 5 --json | $PY -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
c=$($BIN generate --model "$D" --text "Hi" --max-new-tokens 12 --temperature 1 --top-k 50 --seed 6 --json | $PY -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
check "--seed reproducible" '[ "$a" = "$b" ] && [ "$a" != "$c" ]'
# --record appends one JSON line per steering run
$BIN generate --model "$D" --text "Hi" --steer-vector "$R/steer_v.npy" --hook blocks.1.hook_resid_pre --scale 2 --max-new-tokens 4 --temperature 0 --record "$T/rec.jsonl" >/dev/null
$BIN logits --model "$D" --text "Hi" --steer-vector "$R/steer_v.npy" --hook blocks.1.hook_resid_pre --scale 2 -o "$T/x.npy" --record "$T/rec.jsonl"
check "--record: 2 JSON lines with hook, scale, sha256" '$PY -c "import json,sys; L=[json.loads(l) for l in open(\"$T/rec.jsonl\")]; i=L[0][\"intervention\"]; sys.exit(0 if len(L)==2 and i[\"hook\"]==\"blocks.1.hook_resid_pre\" and i[\"scale\"]==2 and len(i[\"steer_vector_sha256\"])==64 else 1)"'

# bad input: exit 2, one line on stderr, an existing output untouched
echo precious > "$T/keep.npy"
LONG=$($PY -c "print('word ' * 80)")
printf 'bad \xff\xfe utf8' > "$T/badutf8.txt"
$PY -c "import numpy as np; np.save('$T/wide.npy', np.ones(7, np.float32))"
while IFS='|' read -r name args; do
    eval "$BIN $args -o \"$T/keep.npy\"" > /dev/null 2> "$T/err"; rc=$?
    check "bad input: $name -> exit 2, one line: $(head -c 110 "$T/err")" '[ $rc -eq 2 ] && one_line_err && [ "$(cat "$T/keep.npy")" = precious ]'
done <<EOF2
unknown hook|cache --model $D --text hi --hook blocks.1.hook_resid
layer out of range|cache --model $D --text hi --hook blocks.7.hook_resid_pre
prompt longer than n_positions|logits --model $D --text "$LONG"
scale nan|logits --model $D --text hi --steer-vector $R/steer_v.npy --hook blocks.0.hook_resid_pre --scale nan
vector of the wrong width|logits --model $D --text hi --steer-vector $T/wide.npy --hook blocks.0.hook_resid_pre --scale 1
positions 1,,2|logits --model $D --text hi --steer-vector $R/steer_v.npy --hook blocks.0.hook_resid_pre --scale 1 --positions 1,,2
invalid UTF-8 text file|logits --model $D --text-file $T/badutf8.txt
missing model dir|logits --model $T/nowhere --text hi
steer without --scale|logits --model $D --text hi --steer-vector $R/steer_v.npy --hook blocks.0.hook_resid_pre
unknown flag|logits --model $D --text hi --frobnicate
EOF2
$BIN generate --model "$D" --text hi --max-new-tokens -1 > /dev/null 2> "$T/err"; rc=$?
check "generate --max-new-tokens -1 -> exit 2" '[ $rc -eq 2 ] && one_line_err'
$BIN generate --model "$D" --text hi --temperature inf > /dev/null 2> "$T/err"; rc=$?
check "generate --temperature inf -> exit 2" '[ $rc -eq 2 ] && one_line_err'
$BIN generate --model "$D" --text hi --max-new-tokens 100 > /dev/null 2> "$T/err"; rc=$?
check "generate past n_positions -> exit 2" '[ $rc -eq 2 ] && one_line_err'
$BIN nonsense > /dev/null 2> "$T/err"; rc=$?
check "unknown subcommand -> exit 2" '[ $rc -eq 2 ] && one_line_err'
$BIN logits --model "$D" --text hi -o "$T/nowhere/out.npy" > /dev/null 2> "$T/err"; rc=$?
check "-o in a missing directory -> exit 2" '[ $rc -eq 2 ] && one_line_err && grep -q nowhere/out.npy "$T/err"'
$BIN generate --model "$D" --text hi --max-new-tokens 2 --record "$T/nowhere/rec.jsonl" > /dev/null 2> "$T/err"; rc=$?
check "--record in a missing directory -> exit 2" '[ $rc -eq 2 ] && one_line_err && grep -q nowhere/rec.jsonl "$T/err"'
for c in tokenize logits cache generate steer; do
    $BIN $c --help > "$T/h" 2>&1; rc=$?
    check "$c --help" '[ $rc -eq 0 ] && grep -q usage "$T/h"'
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
