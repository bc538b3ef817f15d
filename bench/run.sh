#!/bin/bash
# Benchmark: saesteer vs the PyTorch CPU peer on GPT-2-small-size random
# weights, 128-token prompt + 64 greedy tokens, both in the same run.
#   bash bench/run.sh            (makes bench/data/gpt2-small on first use, ~500 MB, not committed)
# Prints prefill tok/s, decode tok/s, load time, exec-to-first-token and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
BIN=${BIN:-build/saesteer}
M=bench/data/gpt2-small
REPS=${REPS:-3}
[ -x "$BIN" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 >/dev/null; }
[ -f "$M/model.safetensors" ] || $PY bench/make_weights.py "$M" --size small
# a 128-token prompt: BOS + 127 tokens of ordinary text
TEXT=$($PY - <<'PYEOF'
words = ("the quick brown fox jumps over the lazy dog while a small bird sings in the old oak tree "
         "near the river bank and children play games in the park on a sunny afternoon ").split()
print(" ".join((words * 10)[:127]))
PYEOF
)
IDS=$($BIN tokenize --model "$M" --text "$TEXT" --json | $PY -c "import json,sys; ids=json.load(sys.stdin)['ids'][:127]; print(','.join(map(str,[50256]+ids)))")
NTOK=$(echo "$IDS" | tr ',' '\n' | wc -l)
echo "prompt: $NTOK tokens; 64 greedy new tokens; $REPS repetitions, best of each reported"
best() { $PY -c "import sys,json; rs=[json.loads(l) for l in sys.stdin if l.strip()]; k=sys.argv[1]; print(json.dumps({'load_s':min(r['load_s'] for r in rs),'prefill_tok_s':max(r['prefill_tokens']/r['prefill_s'] for r in rs),'decode_tok_s':max(r['new_tokens']/r['decode_s'] for r in rs),'first_token_s':min(r.get('first_token_s',0) for r in rs),'tokens':rs[0]['tokens']}))" "$1"; }
: > /tmp/bench_c.jsonl; : > /tmp/bench_t.jsonl
for r in $(seq "$REPS"); do
    s=$(date +%s.%N)
    out=$($BIN generate --model "$M" --text "$TEXT" --max-new-tokens 64 --temperature 0 --ignore-eos --json)
    e=$(date +%s.%N)
    # exec to first token: a separate run producing exactly one token
    s1=$(date +%s.%N); $BIN generate --model "$M" --text "Hello" --max-new-tokens 1 --temperature 0 --json >/dev/null; e1=$(date +%s.%N)
    echo "$out" | $PY -c "import json,sys; d=json.load(sys.stdin); t=d['timing']; t['tokens']=d['tokens']; t['first_token_s']=$e1-$s1; print(json.dumps(t))" >> /tmp/bench_c.jsonl
    OMP_NUM_THREADS=1 $PY bench/peer_torch.py "$M" --ids "$IDS" --new 64 --threads 1 >> /tmp/bench_t.jsonl
done
C=$(best c < /tmp/bench_c.jsonl); T=$(best t < /tmp/bench_t.jsonl)
$PY - "$C" "$T" <<'PYEOF'
import json, sys
c, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = c["tokens"] == t["tokens"]
print(f"{'':22s}{'saesteer':>12s}{'torch CPU':>12s}{'ratio':>8s}")
for k, name, hi in [("prefill_tok_s", "prefill tok/s", 1), ("decode_tok_s", "decode tok/s", 1), ("load_s", "load s", 0)]:
    r = c[k] / t[k] if hi else t[k] / c[k]
    fmt = ".3f" if k == "load_s" else ".1f"
    print(f"{name:22s}{c[k]:12{fmt}}{t[k]:12{fmt}}{r:7.2f}x")
print(f"{'exec to first token s':22s}{c['first_token_s']:12.3f}")
print(f"greedy tokens identical: {same}")
PYEOF

# The same model in f16 (kept f16 in memory, converted inside the matmuls) against f32: decode reads
# half the bytes. Same prompt, 64 greedy tokens, best of REPS.
M16=bench/data/gpt2-small-f16
[ -f "$M16/model.safetensors" ] || $PY bench/make_weights.py "$M16" --size small --dtype f16
: > /tmp/bench_f16.jsonl; : > /tmp/bench_f32.jsonl
for r in $(seq "$REPS"); do
    $BIN generate --model "$M16" --text "$TEXT" --max-new-tokens 64 --temperature 0 --ignore-eos --json |
        $PY -c "import json,sys; d=json.load(sys.stdin); t=d['timing']; t['tokens']=d['tokens']; print(json.dumps(t))" >> /tmp/bench_f16.jsonl
    $BIN generate --model "$M" --text "$TEXT" --max-new-tokens 64 --temperature 0 --ignore-eos --json |
        $PY -c "import json,sys; d=json.load(sys.stdin); t=d['timing']; t['tokens']=d['tokens']; print(json.dumps(t))" >> /tmp/bench_f32.jsonl
done
H=$(best h < /tmp/bench_f16.jsonl); F=$(best f < /tmp/bench_f32.jsonl)
$PY - "$H" "$F" <<'PYEOF'
import json, sys
h, f = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"\nGPT-2 small, same weights rounded to f16 vs f32 (saesteer only)")
print(f"{'':22s}{'f16':>12s}{'f32':>12s}{'ratio':>8s}")
for k, name in [("prefill_tok_s", "prefill tok/s"), ("decode_tok_s", "decode tok/s")]:
    print(f"{name:22s}{h[k]:12.1f}{f[k]:12.1f}{h[k] / f[k]:7.2f}x")
print(f"{'load s':22s}{h['load_s']:12.3f}{f['load_s']:12.3f}")
PYEOF
