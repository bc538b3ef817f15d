#!/bin/bash
# cli_fv.sh BIN ROOT - the options of task-vector and fv (issue 10 part 3) end to end on the tiny fixture
# model, against tests/fv_peer.py: an independent float64 plain-PyTorch reimplementation of the whole
# experiment (template, item split, prompt sampling, h, CIE by full recomputation, FV, layer sweep).
#
# Tolerances and why:
#   mean log p(answer)  1e-4 absolute: saesteer runs in float32; on this model its logits agree with
#                       float64 torch to ~1e-5 (tests/test_fv.c), and a mean of log-softmaxes keeps that
#   accuracy            exact, except that an item whose answer logit is within 1e-3 of the best other
#                       logit (the peer counts them) may flip in float32; each such item allows 1/n
#   h, FV vectors       1e-5 absolute (float32 sums of ~10 terms of size ~1)
#   logprob CIEs        1e-5 absolute: differences of two float32 log-probs of size ~10 (~1e-6 each)
#   --cie-in            bit for bit: the CIE file's numbers round-trip exactly, so the reused run must
#                       produce the identical FV file and JSON
set -u
BIN=$1
ROOT=$2
PY=/usr/bin/python3
M=${SS_FV_MODEL:-$ROOT/tests/fixtures/tiny-sp}
PEER="$ROOT/tests/fv_peer.py"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export FV_PEER_TOK_CACHE=$T/tokens.json
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# expect CODE DESCRIPTION [PATTERN] -- command...: exit code; for code 2 exactly one stderr line,
# matching PATTERN (an extended regex) if given
expect() {
    local want=$1 what=$2 pat=""
    shift 2
    if [ "$1" != "--" ]; then pat=$1; shift; fi
    shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" != "$want" ]; then bad "$what: exit $rc, want $want; stderr: $(head -c 300 "$T/err")"; return; fi
    if [ "$want" = 2 ] && [ "$(wc -l <"$T/err")" != 1 ]; then bad "$what: want one error line, got: $(cat "$T/err")"; return; fi
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$T/err"; then bad "$what: stderr does not match /$pat/: $(cat "$T/err")"; return; fi
    [ "$want" = 2 ] && echo "  $what: $(cat "$T/err")"
    ok
}

# compare C.json REF.json [VEC.npy REFKEY]: baselines, the prompt, the sweep, and a vector
compare() {
    $PY - "$@" <<'EOF'
import json, sys
import numpy as np
c, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n = c["n_eval"]
ok = True
assert c["prompt_example"] == r["prompt_example"], (c["prompt_example"], r["prompt_example"])
dl, da = 0.0, 0.0
def acc(name, a, b, amb):
    global ok, da
    da = max(da, abs(a - b))
    if abs(a - b) > amb / n + 1e-12:
        print("  %s accuracy %.3f vs peer %.3f (%d ambiguous items)" % (name, a, b, amb)); ok = False
for k in ("zero_shot", "icl", "shuffled"):
    acc(k, c[k + "_acc"], r[k + "_acc"], r[k + "_ambiguous"])
    dl = max(dl, abs(c[k + "_logprob"] - r[k + "_logprob"]))
assert [s["layer"] for s in c["sweep"]] == [s["layer"] for s in r["sweep"]]
for s, t in zip(c["sweep"], r["sweep"]):
    acc("layer %d" % s["layer"], s["acc"], t["acc"], t["ambiguous"])
    dl = max(dl, abs(s["logprob"] - t["logprob"]))
msg = "  %s: %d layers, max |acc diff| %.3g, max |mean log p diff| %.3g" % (sys.argv[1].split("/")[-1], len(c["sweep"]), da, dl)
if dl > 1e-4: ok = False
if len(sys.argv) > 3:
    v, w = np.load(sys.argv[3]).astype(np.float64), np.array(r[sys.argv[4]])
    assert v.shape == w.shape, (v.shape, w.shape)
    dv = float(np.abs(v - w).max())
    msg += ", %s %s max diff %.3g" % (sys.argv[4], v.shape, dv)
    if dv > 1e-5: ok = False
print(msg)
sys.exit(0 if ok else 1)
EOF
}

peer() { $PY "$PEER" run --model "$M" --saesteer "$BIN" "$@"; }

# a 24-item dataset on which the random model gets some zero-shot answers right
$PY "$PEER" make-dataset --model "$M" --saesteer "$BIN" --n 24 >"$T/ds.json" || { echo "FAIL: make-dataset"; exit 1; }
C=(--model "$M" --dataset "$T/ds.json" --shots 3 --n-prompts 4 --n-eval 10 --quiet)
P=(--dataset "$T/ds.json" --shots 3 --n-prompts 4 --n-eval 10)

# ---------------------------------------------------------- task-vector --mode
for mode in replace add; do
    expect 0 "task-vector --mode $mode --layers 0-1" -- "$BIN" task-vector "${C[@]}" --layers 0-1 --mode $mode --save "$T/h_$mode.npy" --json
    cp "$T/out" "$T/tv_$mode.json"
    peer --what task-vector "${P[@]}" --layers 0,1 --mode $mode >"$T/ref_tv_$mode.json" || bad "peer task-vector $mode"
    compare "$T/tv_$mode.json" "$T/ref_tv_$mode.json" "$T/h_$mode.npy" h && ok || bad "task-vector --mode $mode vs peer"
done
$PY - "$T/tv_replace.json" "$T/tv_add.json" <<'EOF' && ok || bad "replace and add give the same numbers"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["mode"] == "replace" and b["mode"] == "add"
d = max(abs(s["logprob"] - t["logprob"]) for s, t in zip(a["sweep"], b["sweep"]))
print("  replace vs add: largest difference in mean log p %.3g" % d)
assert d > 1e-3
EOF

# ---------------------------------------------------------- fv --heads-list
expect 0 "fv --heads-list" -- "$BIN" fv "${C[@]}" --layers 0,1 --heads-list 1.2,0.3,0.0 --save-fv "$T/fv_list.npy" --json
cp "$T/out" "$T/fv_list.json"
peer --what fv "${P[@]}" --layers 0,1 --heads-list 1.2,0.3,0.0 >"$T/ref_fv_list.json" || bad "peer fv heads-list"
compare "$T/fv_list.json" "$T/ref_fv_list.json" "$T/fv_list.npy" fv && ok || bad "fv --heads-list vs peer"
$PY -c "
import json; j = json.load(open('$T/fv_list.json'))
assert j['heads_from'] == 'list' and [h[:2] for h in j['heads']] == [[1, 2], [0, 3], [0, 0]], j['heads']
assert 'cie' not in j and all(h[2] is None for h in j['heads'])   # no CIE sweep was asked for
" && ok || bad "fv --heads-list JSON"

# ---------------------------------------------------------- --cie-metric logprob, --cie-out, --cie-in
expect 0 "fv --cie-metric logprob --cie-out" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-metric logprob --cie-out "$T/cie.json" --save-fv "$T/fv1.npy" --json
cp "$T/out" "$T/fv1.json"
peer --what fv "${P[@]}" --layers 1 --top-k 3 --metric logprob >"$T/ref_fv_lp.json" || bad "peer fv logprob"
compare "$T/fv1.json" "$T/ref_fv_lp.json" "$T/fv1.npy" fv && ok || bad "fv --cie-metric logprob vs peer"
$PY - "$T/cie.json" "$T/ref_fv_lp.json" "$T/fv1.json" <<'EOF' && ok || bad "logprob CIEs vs peer"
import json, sys
import numpy as np
f, r, c = (json.load(open(p)) for p in sys.argv[1:])
assert f["format"] == "saesteer-cie" and f["metric"] == "logprob" and f["n_layer"] == 2 and f["n_head"] == 4
a, b = np.array(f["cie"]), np.array(r["cie"])
d = float(np.abs(a - b).max())
print("  logprob CIE (2, 4): largest |CIE| %.3g, max diff vs peer %.3g; top-3 gap %.3g" % (np.abs(b).max(), d, r["topk_gap"]))
assert d <= 1e-5
assert r["topk_gap"] > 1e-4 and [h[:2] for h in c["heads"]] == r["heads"], (c["heads"], r["heads"])
assert np.array_equal(np.array(c["cie"]), a)   # the file holds what the run reported
EOF
expect 0 "fv --cie-in" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie.json" --save-fv "$T/fv2.npy" --json
cp "$T/out" "$T/fv2.json"
cmp -s "$T/fv1.npy" "$T/fv2.npy" && ok || bad "--cie-in: the FV differs from the recomputed one"
$PY - "$T/fv1.json" "$T/fv2.json" <<'EOF' && ok || bad "--cie-in: JSON differs from the recomputed run"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a.pop("heads_from") == "cie" and b.pop("heads_from") == "cie-in"
a.pop("seconds"); b.pop("seconds")
assert a == b, [k for k in a if a[k] != b.get(k)]
print("  --cie-in run equals the recomputing run bit for bit (FV file and every JSON field but seconds)")
EOF
# the CIE file must match the run
X=(--layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie.json" --save-fv "$T/never.npy")
expect 2 "cie-in: shots differ" "shots 3, this run has 2" -- "$BIN" fv "${C[@]}" --shots 2 "${X[@]}"
expect 2 "cie-in: metric differs" "metric" -- "$BIN" fv "${C[@]}" "${X[@]}" --cie-metric prob
expect 2 "cie-in: seed differs" "seed" -- "$BIN" fv "${C[@]}" --seed 1 "${X[@]}"
expect 2 "cie-in: n_eval differs" "n_eval 10, this run has 9" -- "$BIN" fv "${C[@]}" --n-eval 9 "${X[@]}"
expect 2 "cie-in: n_prompts differ" "n_prompts" -- "$BIN" fv "${C[@]}" --n-prompts 5 "${X[@]}"
expect 2 "cie-in: template differs" "template" -- "$BIN" fv "${C[@]}" --template '{x} = {y}\n' "${X[@]}"
expect 2 "cie-in: bos differs" "bos on, this run has off" -- "$BIN" fv "${C[@]}" --no-bos "${X[@]}"
$PY -c "
import json; d = json.load(open('$T/ds.json')); d[0]['output'] += 's'; json.dump(d, open('$T/ds2.json', 'w'))"
expect 2 "cie-in: dataset differs" "dataset_sha256" -- "$BIN" fv "${C[@]}" --dataset "$T/ds2.json" "${X[@]}"
expect 2 "cie-in: model differs" "model_sha256" -- "$BIN" fv "${C[@]}" --model "$ROOT/tests/fixtures/tiny-oa" --layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie.json" --save-fv "$T/never.npy"
$PY -c "
import json; j = json.load(open('$T/cie.json'))
k = dict(j, n_layer=3); json.dump(k, open('$T/cie_shape.json', 'w'))
k = dict(j); k['cie'] = [r[:3] for r in j['cie']]; json.dump(k, open('$T/cie_rows.json', 'w'))
k = dict(j); k['cie'] = [[1, 'x', 2, 3], j['cie'][1]]; json.dump(k, open('$T/cie_str.json', 'w'))"
expect 2 "cie-in: shape differs" "n_layer 3, this run has 2" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie_shape.json"
expect 2 "cie-in: short rows" "cie\\[0\\]" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie_rows.json"
expect 2 "cie-in: a string" "cie\\[0\\]\\[1\\]" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-metric logprob --cie-in "$T/cie_str.json"
expect 2 "cie-in: not a CIE file" "not a CIE file" -- "$BIN" fv "${C[@]}" --layer 1 --heads 3 --cie-in "$T/ds.json"
expect 2 "cie-in with cie-out" "together" -- "$BIN" fv "${C[@]}" --layer 1 --cie-in "$T/cie.json" --cie-out "$T/never.json"
expect 2 "heads with heads-list" "together" -- "$BIN" fv "${C[@]}" --layer 1 --heads 2 --heads-list 0.1
expect 2 "heads-list syntax" "LAYER.HEAD" -- "$BIN" fv "${C[@]}" --layer 1 --heads-list 0.1,2
expect 2 "heads-list range" "head 0.4 out of range" -- "$BIN" fv "${C[@]}" --layer 1 --heads-list 0.4
expect 2 "heads-list twice" "listed twice" -- "$BIN" fv "${C[@]}" --layer 1 --heads-list 0.1,0.1
expect 2 "cie-metric value" "prob or logprob" -- "$BIN" fv "${C[@]}" --layer 1 --cie-metric nats
expect 2 "mode value" "replace or add" -- "$BIN" task-vector "${C[@]}" --layer 1 --mode swap

# ---------------------------------------------------------- --template
for tp in 'In: {x} | Out: {y}\n' '{x}={y};\t' '<{{{x}}}> {y}\n\n'; do
    expect 0 "task-vector --template '$tp'" -- "$BIN" task-vector "${C[@]}" --layer 0 --template "$tp" --json
    cp "$T/out" "$T/tpl.json"
    peer --what task-vector "${P[@]}" --layers 0 --template "$tp" >"$T/ref_tpl.json" || bad "peer template $tp"
    compare "$T/tpl.json" "$T/ref_tpl.json" && ok || bad "--template '$tp' vs peer"
done
$PY -c "
import json; j = json.load(open('$T/tpl.json')); p = j['prompt_example']
assert p.startswith('<{') and p.endswith('}>') and '\n\n<{' in p, p" && ok || bad "template braces and separator"
for tp in 'Q: {y}\nA: {x}\n' 'Q: {x}\nA:\n' 'A: {y}\n' '{x} -> {y}' '{x}{y}\n' '{x} {y}\n' '{x} -> {y}\q' \
          '{x} -> {z} {y}\n' '{x} -> {y}}\n' '{x}{x} -> {y}\n' '{x} -> {y}{y}\n' '{x -> {y}\n' ''; do
    expect 2 "bad template '$tp'" "template" -- "$BIN" fv "${C[@]}" --layer 0 --template "$tp" --save-fv "$T/never.npy"
done

# ---------------------------------------------------------- disjoint items
expect 2 "n_eval + shots too large" "24 items.*n_eval \\+ shots \\+ 1 = 25 \\(use --n-eval 20 or fewer\\)" -- "$BIN" task-vector "${C[@]}" --layer 0 --n-eval 21
expect 2 "shots too large" "24 items.*shots \\+ 2 = 25" -- "$BIN" fv "${C[@]}" --layer 0 --shots 23 --n-eval 1
expect 0 "default n_eval" -- "$BIN" task-vector --model "$M" --dataset "$T/ds.json" --layer 0 --shots 3 --n-prompts 2 --examples 0 --json
$PY -c "
import json; j = json.load(open('$T/out')); assert (j['n_eval'], j['n_pool']) == (12, 12), j" && ok || bad "default n_eval is half of 24"
peer --what task-vector --dataset "$T/ds.json" --shots 3 --n-prompts 2 --layers 0 >"$T/ref_def.json" || bad "peer default"
compare "$T/out" "$T/ref_def.json" && ok || bad "default n_eval split vs peer"

# ---------------------------------------------------------- layer sweep JSON and SVG
expect 0 "fv sweep files" -- "$BIN" fv "${C[@]}" --layers 1,0 --heads-list 1.2 --sweep-json "$T/sweep.json" --sweep-plot "$T/sweep.svg" --json
$PY - "$T/sweep.json" "$T/out" "$T/sweep.svg" <<'EOF' && ok || bad "sweep JSON / SVG"
import json, sys, xml.etree.ElementTree as ET
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
a.pop("seconds"); b.pop("seconds")
assert a == b
assert a["layers"] == [1, 0] and [s["layer"] for s in a["sweep"]] == [1, 0] and "layer" not in a
best = max(a["sweep"], key=lambda s: (s["acc"], s["logprob"]))
assert a["best_layer"] == best["layer"] and a["fv_acc"] == best["acc"]
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[3]).getroot()
pl = root.findall(".//%spolyline" % ns)
assert len(pl) == 2 and all(len(p.get("points").split()) == 2 for p in pl)   # accuracy and log p panels
# the points are in layer order and at the JSON's accuracies: y = top + height * (1 - acc)
acc = {s["layer"]: s["acc"] for s in a["sweep"]}
ys = [float(p.split(",")[1]) for p in pl[0].get("points").split()]
assert all(abs(y - (50 + 210 * (1 - acc[l]))) < 0.01 for y, l in zip(ys, (0, 1))), (ys, acc)
dashed = [l for l in root.findall(".//%sline" % ns) if l.get("stroke-dasharray")]
assert len(dashed) == 9   # three baselines in each panel and their legend swatches
text = " ".join(t.text or "" for t in root.iter("%stext" % ns))
for w in ("zero-shot", "ICL", "shuffled-label", "FV", "injection layer", "accuracy", "log p"): assert w in text, w
print("  sweep JSON == --json output; SVG: accuracy and log p lines (2 points each, layer order), 3 dashed baselines each, legend")
EOF
expect 2 "sweep-plot without --layers" "needs --layers" -- "$BIN" fv "${C[@]}" --layer 0 --sweep-plot "$T/never.svg"
expect 2 "layer and layers" "together" -- "$BIN" fv "${C[@]}" --layer 0 --layers 0-1
expect 2 "layers out of range" "layer 2 out of range" -- "$BIN" task-vector "${C[@]}" --layers 0-2 --sweep-json "$T/never.json"
expect 2 "layers syntax" "want L, A-B" -- "$BIN" task-vector "${C[@]}" --layers 0-
expect 2 "layers twice" "given twice" -- "$BIN" task-vector "${C[@]}" --layers 0,0-1
expect 0 "task-vector sweep save" -- "$BIN" task-vector "${C[@]}" --layers 0-1 --save "$T/hh.npy" --examples 0
$PY -c "
import numpy as np; assert np.load('$T/hh.npy').shape == (2, 16)" && ok || bad "task-vector --layers --save is (n_layers, C)"
ls "$T"/never.* >/dev/null 2>&1 && bad "a failed command wrote an output" || ok

# ---------------------------------------------------------- progress, escaped generations
SAESTEER_PROGRESS_S=0 "$BIN" fv --model "$M" --dataset "$T/ds.json" --shots 3 --n-prompts 4 --n-eval 10 --heads 3 --layers 0-1 >"$T/out" 2>"$T/err"
$PY - "$T/err" <<'EOF' && ok || bad "progress lines: $(head -3 "$T/err")"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
pat = re.compile(r"^saesteer fv: (\d+)/(\d+) forward passes \(\d+%\), [0-9.]+/s, ~[0-9]+ s left \[[a-zA-Z -]+\]$")
m = [pat.match(l) for l in lines]
assert lines and all(m), lines[:3]
d = [int(x.group(1)) for x in m]
assert d == sorted(d) and d[-1] == int(m[-1].group(2)), (d[-5:], m[-1].group(2))
print("  %d progress lines (not a terminal), last %s" % (len(lines), lines[-1]))
EOF
SAESTEER_PROGRESS_S=0 "$BIN" fv "${C[@]}" --heads 3 --layers 0-1 >"$T/out" 2>"$T/err"
[ ! -s "$T/err" ] && ok || bad "--quiet still wrote to stderr: $(head -2 "$T/err")"
$PY -c "
import json
json.dump([{'input': 'w%d\nline two\t!' % i, 'output': 'x%d' % i} for i in range(10)], open('$T/nl.json', 'w'))"
expect 0 "escaped generations" -- "$BIN" task-vector --model "$M" --dataset "$T/nl.json" --layer 0 --shots 2 --n-prompts 2 --n-eval 3 --examples 3 --quiet
$PY - "$T/out" <<'EOF' && ok || bad "example lines not escaped: $(cat "$T/out")"
import sys
lines = open(sys.argv[1]).read().split("\n")
ex = [l for l in lines if "| zero-shot:" in l]
assert len(ex) == 3 and all("\\nline two\\t!" in l for l in ex), ex
assert any(l.startswith("  prompt: ") and "\\n" in l for l in lines)
assert all("\t" not in l for l in lines)
print("  3 example lines, newlines and tabs escaped")
EOF

echo "cli_fv: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
