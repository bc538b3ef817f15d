#!/bin/bash
# cli_arch.sh BIN ROOT - every subcommand that is not GPT-2-specific, end to end on the GPT-J and
# GPT-NeoX fixtures (tests/fixtures/arch): each runs and writes its output; `cache` of every hook and
# `logits` match the HF references (1e-5 x max|activation|, 1e-4 absolute); SAELens dictionaries are
# checked against the loaded model (model_name family, hook that the architecture lacks: exit 2, one
# line); tokenize reads tokenizer.json.
set -u
BIN=$1
ROOT=$2
PY=/usr/bin/python3
FX=$ROOT/tests/fixtures/arch
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
expect() {   # expect CODE DESCRIPTION -- command...
    local want=$1 what=$2
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" != "$want" ]; then bad "$what: exit $rc, want $want; stderr: $(head -c 300 "$T/err")"; return 1; fi
    if [ "$want" = 2 ] && [ "$(wc -l <"$T/err")" != 1 ]; then bad "$what: stderr is not one line: $(cat "$T/err")"; return 1; fi
    ok
}

PROMPT="The quick brown fox jumps over the lazy dog, and"
printf 'The cat sat on the mat.\nA dog ran in the park and the sun was out.\nIt was a cold day.\n' >"$T/corpus.txt"
printf 'I think that\nThe weather is\n' >"$T/prompts.txt"

for m in gptj-f32 gptj-bf16 neox-par-f32 neox-seq-bf16; do
    M=$FX/$m
    L=$($PY -c "import json;c=json.load(open('$M/config.json'));print(c.get('n_layer',c.get('num_hidden_layers')))")
    C=$($PY -c "import json;c=json.load(open('$M/config.json'));print(c.get('n_embd',c.get('hidden_size')))")
    LAST=$((L - 1))
    case $m in gptj*) MN=gpt-j-6b ;; *) MN=pythia-70m-deduped ;; esac
    H=blocks.1.hook_resid_post
    # logits and every hook of the reference prompt (the fixture's ids are BOS + this prompt)
    expect 0 "$m logits" -- "$BIN" logits --model "$M" --text "$PROMPT" -o "$T/logits.npy"
    $PY - "$T/logits.npy" "$M/ref/logits.npy" <<'PYEOF' && ok || bad "$m logits vs HF"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = float(np.abs(a - b).max()); print("  logits max abs diff %.3g" % d); sys.exit(0 if a.shape == b.shape and d <= 1e-4 else 1)
PYEOF
    HOOKS=$(ls "$M/ref" | grep -E '^(hook_|blocks|ln_final)' | sed 's/\.npy$//')
    ARGS=()
    for h in $HOOKS; do ARGS+=(--hook "$h"); done
    expect 0 "$m cache" -- "$BIN" cache --model "$M" --text "$PROMPT" "${ARGS[@]}" -o "$T/c.npz"
    $PY - "$T/c.npz" "$M/ref" <<'PYEOF' && ok || bad "$m cache vs HF"
import sys, os, numpy as np
z = np.load(sys.argv[1]); worst = 0.0; bad = []
for k in z.files:
    r = np.load(os.path.join(sys.argv[2], k + ".npy")); a = z[k].reshape(r.shape)
    rel = float(np.abs(a - r).max() / np.abs(r).max()); worst = max(worst, rel)
    if rel > 1e-5: bad.append((k, rel))
print("  %d hooks, worst rel diff %.3g" % (len(z.files), worst)); sys.exit(1 if bad or not z.files else 0)
PYEOF
    expect 0 "$m generate" -- "$BIN" generate --model "$M" --text "$PROMPT" --max-new-tokens 16 --temperature 0 --ignore-eos --json
    $PY - "$T/out" "$M/ref/generate.json" <<'PYEOF' && ok || bad "$m generate ids vs HF"
import sys, json
o = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
print("  greedy", o["tokens"] == r["greedy"] and "identical to HF generate" or "DIFFERENT from HF generate")
sys.exit(0 if o["tokens"] == r["greedy"] else 1)
PYEOF
    expect 0 "$m tokenize" -- "$BIN" tokenize --model "$M" --text "$PROMPT" --json
    expect 0 "$m perplexity" -- "$BIN" perplexity --model "$M" --text-file "$T/corpus.txt" --json
    expect 0 "$m vector" -- "$BIN" vector --model "$M" --hook $H --positive "I love it" --negative "I hate it" -o "$T/v.npy"
    expect 0 "$m steer-vector generate" -- "$BIN" generate --model "$M" --text "I think" --steer-vector "$T/v.npy" --hook $H --scale 4 --max-new-tokens 5 --temperature 0
    expect 0 "$m task-vector" -- "$BIN" task-vector --model "$M" --dataset "$ROOT/tests/fixtures/fv/dataset.json" --layer 0 --shots 2 --n-prompts 3 --n-eval 4 --json
    expect 0 "$m fv" -- "$BIN" fv --model "$M" --dataset "$ROOT/tests/fixtures/fv/dataset.json" --layer 0 --heads 2 --shots 2 --n-prompts 3 --n-eval 4 --save-fv "$T/fv.npy" --json
    # a SAELens SAE on this model
    rm -rf "$T/sae"
    "$PY" "$ROOT/bench/make_sae.py" "$T/sae" --d-in "$C" --d-sae 64 --hook $H --context-size 32 >/dev/null 2>&1 || bad "make_sae"
    $PY -c "import json;p='$T/sae/cfg.json';c=json.load(open(p));c['model_name']='$MN';json.dump(c,open(p,'w'))"
    expect 0 "$m encode" -- "$BIN" encode --model "$M" --sae "$T/sae" --text "$PROMPT" -o "$T/acts.npy"
    expect 0 "$m latents" -- "$BIN" latents --model "$M" --sae "$T/sae" --text "$PROMPT" --top 3 --json
    expect 0 "$m steer" -- "$BIN" steer --model "$M" --sae "$T/sae" --latent 3 --text "I think" --scales 0,4 --max-new-tokens 5 --seed 1
    expect 0 "$m scan" -- "$BIN" scan --model "$M" --sae "$T/sae" --text-file "$T/corpus.txt" -o "$T/scan"
    [ -s "$T/scan/latents.json" ] && ok || bad "$m scan wrote no latents.json"
    expect 0 "$m compare" -- "$BIN" compare --model "$M" --sae "$T/sae" --latent 3 --vector "$T/v.npy" --prompts "$T/prompts.txt" --scales 0,2 --max-new-tokens 4 --seed 7 --json
    # the dictionary's model_name must fit the loaded model
    $PY -c "import json;p='$T/sae/cfg.json';c=json.load(open(p));c['model_name']='gpt2-small';json.dump(c,open(p,'w'))"
    expect 2 "$m SAE for gpt2-small" -- "$BIN" encode --model "$M" --sae "$T/sae" --text "Hi" -o "$T/never.npy" &&
        { grep -q "model_name" "$T/err" && ok || bad "$m model_name message: $(cat "$T/err")"; }
    [ ! -e "$T/never.npy" ] && ok || bad "$m wrote an output on error"
    expect 2 "$m hook_pos_embed" -- "$BIN" cache --model "$M" --text "Hi" --hook hook_pos_embed -o "$T/never.npy"
done
# resid_mid: refused where attention and MLP are parallel, given where they are sequential
expect 2 "resid_mid on a parallel model" -- "$BIN" cache --model "$FX/neox-par-f32" --text "Hi" --hook blocks.0.hook_resid_mid -o "$T/never.npy"
grep -q "parallel" "$T/err" && ok || bad "resid_mid message: $(cat "$T/err")"
expect 0 "resid_mid on a sequential model" -- "$BIN" cache --model "$FX/neox-seq-bf16" --text "Hi" --hook blocks.0.hook_resid_mid -o "$T/mid.npy"

echo "cli_arch: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
