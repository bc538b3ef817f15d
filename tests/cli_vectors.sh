#!/bin/bash
# cli_vectors.sh BIN ROOT - the vector, compare, task-vector and fv subcommands end to end on the tiny
# fixture model: outputs against tests/fixtures/fv (HF references), GGUF round trips checked with a
# from-scratch Python reader, plots parsed as XML, and bad input (exit 2, one line, nothing written).
# SS_FV_MODEL / SS_FV_DIR override the model and the reference folder.
set -u
BIN=$1
ROOT=$2
PY=/usr/bin/python3
M=${SS_FV_MODEL:-$ROOT/tests/fixtures/tiny-sp}
FX=${SS_FV_DIR:-$ROOT/tests/fixtures/fv}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# expect CODE DESCRIPTION -- command...: exit code, and for code 2 exactly one stderr line
expect() {
    local want=$1 what=$2
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" != "$want" ]; then bad "$what: exit $rc, want $want; stderr: $(head -c 300 "$T/err")"; return; fi
    if [ "$want" = 2 ] && [ "$(grep -vc '^saesteer [a-z-]*: note:' "$T/err")" != 1 ]; then
        bad "$what: want one error line, got: $(cat "$T/err")"; return
    fi
    ok
}
# npy_close A.npy B.npy ATOL
npy_close() {
    $PY - "$1" "$2" "$3" <<'EOF'
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
print("  %s vs %s: shape %s, max abs diff %.3g" % (sys.argv[1].split("/")[-1], sys.argv[2].split("/")[-1], a.shape, d))
sys.exit(0 if d <= float(sys.argv[3]) else 1)
EOF
}

# ---------------------------------------------------------------- vector
H=blocks.0.hook_resid_post
expect 0 "vector mean" -- "$BIN" vector --model "$M" --hook $H --pairs "$FX/pairs4.jsonl" -o "$T/mean.npy"
npy_close "$T/mean.npy" "$FX/vec_mean4.npy" 2e-5 && ok || bad "vector mean vs HF"
expect 0 "vector pca" -- "$BIN" vector --model "$M" --hook $H --pairs "$FX/pairs20.jsonl" --method pca -o "$T/pca.npy" --json
npy_close "$T/pca.npy" "$FX/vec_pca20.npy" 2e-5 && ok || bad "vector pca vs HF"
$PY -c "import json,sys; j=json.load(open('$T/out')); sys.exit(0 if j['pairs']==20 and j['shape']==[$($PY -c "import numpy as np;print(np.load('$FX/vec_pca20.npy').shape[0])")] else 1)" && ok || bad "vector --json"
expect 0 "vector --actadd" -- "$BIN" vector --model "$M" --hook $H --positive "I love talking about weddings" --negative "I hate" --actadd -o "$T/aa.npy"
npy_close "$T/aa.npy" "$FX/actadd.npy" 2e-5 && ok || bad "actadd vs HF"
expect 0 "generate with the ActAdd matrix" -- "$BIN" generate --model "$M" --text "I went up to my friend and said" --steer-vector "$T/aa.npy" --hook $H --scale 4 --max-new-tokens 4 --temperature 0 --json

# GGUF: written by vector, parsed by an independent reader, read back, exported, imported
expect 0 "vector --gguf-out" -- "$BIN" vector --model "$M" --hook blocks.1.hook_resid_post --pairs "$FX/pairs4.jsonl" -o "$T/v1.npy" --gguf-out "$T/v1.gguf"
$PY - "$T/v1.gguf" "$T/v1.npy" <<'EOF' && ok || bad "GGUF layout (python reader)"
import struct, sys, numpy as np
b = open(sys.argv[1], "rb").read()
assert b[:4] == b"GGUF" and struct.unpack_from("<I", b, 4)[0] == 3
nt, nkv = struct.unpack_from("<QQ", b, 8)
o = 24
def s():
    global o
    n = struct.unpack_from("<Q", b, o)[0]; o += 8; o += n; return b[o - n:o].decode()
kv = {}
for _ in range(nkv):
    k = s(); t = struct.unpack_from("<I", b, o)[0]; o += 4
    if t == 8: kv[k] = s()
    elif t == 5: kv[k] = struct.unpack_from("<i", b, o)[0]; o += 4
    else: raise SystemExit("unexpected type %d" % t)
assert kv == {"general.architecture": "controlvector", "controlvector.model_hint": "gpt2", "controlvector.layer_count": 1}, kv
name = s(); nd = struct.unpack_from("<I", b, o)[0]; o += 4
ne = struct.unpack_from("<%dQ" % nd, b, o); o += 8 * nd
typ, off = struct.unpack_from("<IQ", b, o); o += 12
assert name == "direction.1" and nd == 1 and typ == 0 and off == 0, (name, nd, typ, off)
data0 = (o + 31) // 32 * 32
v = np.frombuffer(b, "<f4", ne[0], data0)
assert np.array_equal(v, np.load(sys.argv[2])), "data differs"
assert len(b) == data0 + (ne[0] * 4 + 31) // 32 * 32
print("  GGUF: %s, %s, %d floats at byte %d" % (kv["general.architecture"], name, ne[0], data0))
EOF
expect 0 "vector --import-gguf" -- "$BIN" vector --import-gguf "$T/v1.gguf" -o "$T/v1b.npy" --json
grep -q '"hook":"blocks.1.hook_resid_post"' "$T/out" && ok || bad "import-gguf names blocks.1.hook_resid_post: $(cat "$T/out")"
npy_close "$T/v1b.npy" "$T/v1.npy" 0 && ok || bad "GGUF round trip"
expect 0 "vector --export-gguf" -- "$BIN" vector --export-gguf "$T/v1.npy" --layer 1 -o "$T/v1c.gguf"
cmp -s "$T/v1.gguf" "$T/v1c.gguf" && ok || bad "export-gguf == gguf-out"

# bad input: one line, exit 2, nothing written
printf 'not json\n' >"$T/p_bad.jsonl"
printf '' >"$T/p_empty.jsonl"
printf '{"positive": "a"}\n' >"$T/p_key.jsonl"
printf '{"positive": "\xff", "negative": "b"}\n' >"$T/p_utf.jsonl"
for f in p_bad p_empty p_key p_utf; do
    expect 2 "pairs $f" -- "$BIN" vector --model "$M" --hook $H --pairs "$T/$f.jsonl" -o "$T/never.npy"
done
expect 2 "unknown hook" -- "$BIN" vector --model "$M" --hook blocks.9.hook_resid_post --pairs "$FX/pairs4.jsonl" -o "$T/never.npy"
expect 2 "--gguf-out at block 0" -- "$BIN" vector --model "$M" --hook blocks.0.hook_resid_post --pairs "$FX/pairs4.jsonl" --gguf-out "$T/never.gguf"
expect 2 "bad method" -- "$BIN" vector --model "$M" --hook $H --pairs "$FX/pairs4.jsonl" --method svd -o "$T/never.npy"
expect 2 "no output" -- "$BIN" vector --model "$M" --hook $H --pairs "$FX/pairs4.jsonl"
head -c 100 "$T/v1.gguf" >"$T/trunc.gguf"
expect 2 "truncated GGUF" -- "$BIN" vector --import-gguf "$T/trunc.gguf" -o "$T/never.npy"
expect 2 "export a 2-D matrix" -- "$BIN" vector --export-gguf "$T/aa.npy" --layer 1 -o "$T/never.gguf"
ls "$T"/never.* >/dev/null 2>&1 && bad "a failed command wrote an output" || ok

# ---------------------------------------------------------- task-vector, fv
expect 0 "task-vector" -- "$BIN" task-vector --model "$M" --dataset "$FX/dataset.json" --layer 0 --shots 2 --n-prompts 3 --n-eval 4 --json
$PY -c "
import json,sys; j=json.load(open('$T/out'))
for k in ('zero_shot_acc','patched_acc','icl_acc','logprob_change','examples'): assert k in j, k
" && ok || bad "task-vector JSON: $(cat "$T/out")"
expect 0 "fv" -- "$BIN" fv --model "$M" --dataset "$FX/dataset.json" --layer 0 --heads 3 --shots 2 --n-prompts 3 --n-eval 4 --save-fv "$T/fv.npy" --plot "$T/heat.svg" --json
$PY - "$T/out" "$T/heat.svg" "$T/fv.npy" <<'EOF' && ok || bad "fv JSON / heat map"
import json, sys, numpy as np, xml.etree.ElementTree as ET
j = json.load(open(sys.argv[1]))
for k in ("heads", "zero_shot_acc", "fv_acc", "icl_acc", "shuffled_acc"): assert k in j, k
assert len(j["heads"]) == 3 and all(len(h) == 3 for h in j["heads"])
cies = [h[2] for h in j["heads"]]
assert cies == sorted(cies, reverse=True)
root = ET.parse(sys.argv[2]).getroot()
assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 8
assert np.load(sys.argv[3]).ndim == 1
EOF
printf '{"input": "a"}' >"$T/d_obj.json"
printf '[]' >"$T/d_empty.json"
printf '[{"input": "a"}]' >"$T/d_key.json"
for f in d_obj d_empty d_key; do
    expect 2 "dataset $f" -- "$BIN" fv --model "$M" --dataset "$T/$f.json" --layer 0 --save-fv "$T/never.npy"
done
expect 2 "fv layer out of range" -- "$BIN" fv --model "$M" --dataset "$FX/dataset.json" --layer 99 --save-fv "$T/never.npy"
expect 2 "fv heads out of range" -- "$BIN" fv --model "$M" --dataset "$FX/dataset.json" --layer 0 --heads 999 --save-fv "$T/never.npy"
expect 2 "task-vector shots >= dataset" -- "$BIN" task-vector --model "$M" --dataset "$FX/dataset.json" --layer 0 --shots 50 --save "$T/never.npy"
ls "$T"/never.* >/dev/null 2>&1 && bad "a failed fv command wrote an output" || ok

# ------------------------------------------------------------------ compare
# a random standard SAE at blocks.0.hook_resid_post, written with h5py in the documented v1 format
$PY - "$T/sae.h5" "$M" <<'EOF' || bad "making the test SAE"
import sys, json, h5py, numpy as np
C = json.load(open(sys.argv[2] + "/config.json"))["n_embd"]
S = 32
r = np.random.default_rng(0)
with h5py.File(sys.argv[1], "w") as f:
    f["W_enc"] = r.normal(size=(C, S)).astype("f4")
    f["W_dec"] = (r.normal(size=(S, C)) / np.sqrt(C)).astype("f4")
    f["b_enc"] = np.zeros(S, "f4")
    f["b_dec"] = np.zeros(C, "f4")
    a = f.attrs
    a["format"] = "saesteer-sae"; a["format_version"] = 1; a["architecture"] = "standard"
    a["d_in"] = C; a["d_sae"] = S; a["k"] = 0; a["hook_name"] = "blocks.0.hook_resid_post"
    a["model_name"] = "tiny"; a["apply_b_dec_to_input"] = True; a["normalize_activations"] = "none"
    a["center_writing_weights"] = False; a["prepend_bos"] = True; a["context_size"] = 64
EOF
printf 'I think that\nThe movie was\n' >"$T/prompts.txt"
printf 'love\ngreat\n' >"$T/words.txt"
expect 0 "compare --target-words" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/mean.npy" --prompts "$T/prompts.txt" --scales 0,4 --max-new-tokens 5 --seed 7 --target-words "$T/words.txt" --json --plot "$T/cmp.svg" --record "$T/rec.jsonl"
$PY - "$T/out" "$T/cmp.svg" "$T/rec.jsonl" "$T/mean.npy" <<'EOF' && ok || bad "compare JSON / plot / record"
import json, sys, numpy as np, xml.etree.ElementTree as ET
j = json.load(open(sys.argv[1]))
runs = j["runs"]
assert [r["method"] for r in runs] == ["none", "sae", "vector", "sae", "vector"], [r["method"] for r in runs]
for r in runs:
    for k in ("method", "scale", "norm", "effect", "kl", "perplexity", "generations"): assert k in r, k
    assert len(r["generations"]) == 2 and r["kl"] >= 0 and r["perplexity"] > 0
none = runs[0]
assert none["kl"] == 0 and none["effect"] == 0 and none["norm"] == 0
# scale 0 steers nothing: same text, zero KL, as the unsteered run (same seed)
for r in runs[1:3]:
    assert r["generations"] == none["generations"] and r["kl"] < 1e-9, r
v = np.load(sys.argv[4])
assert abs(runs[4]["norm"] - 4 * np.linalg.norm(v)) < 1e-3 * runs[4]["norm"]
assert "record" in j and j["record"]["latent"] == 3 and j["record"]["scales"] == [0, 4]
ET.parse(sys.argv[2])
assert len(open(sys.argv[3]).read().splitlines()) == 1
EOF
# point labels of close points do not overlap each other or any marker; the plot scales (viewBox)
expect 0 "compare --plot with crowded points" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/mean.npy" --prompts "$T/prompts.txt" --scales 0,0.001,0.002,0.003,4 --max-new-tokens 3 --seed 7 --target-words "$T/words.txt" --plot "$T/crowd.svg"
$PY - "$T/crowd.svg" <<'EOF' && ok || bad "compare plot labels overlap"
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
assert root.get("viewBox") and "max-width" in root.get("style", ""), root.attrib
def box(t):   # the writer's estimate: 0.6 em per character, 1 em high, baseline 0.2 em above the bottom
    x, y, s = float(t.get("x")), float(t.get("y")), float(t.get("font-size"))
    return (x, y - 0.8 * s, x + 0.6 * s * len(t.text), y + 0.2 * s)
labels = [box(t) for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "point-label" for t in g.iter("{http://www.w3.org/2000/svg}text")]
marks = [(float(c.get("cx")) - 4.5, float(c.get("cy")) - 4.5, float(c.get("cx")) + 4.5, float(c.get("cy")) + 4.5)
         for c in root.iter("{http://www.w3.org/2000/svg}circle") if float(c.get("r")) == 4.5]
hit = lambda a, b: a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
over = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels)) if hit(labels[i], labels[j])]
on_marks = [i for i, l in enumerate(labels) if any(hit(l, m) for m in marks)]
print(f"  {len(labels)} point labels, {len(marks)} markers: {len(over)} overlapping pairs, {len(on_marks)} labels on a marker")
sys.exit(0 if labels and not over and not on_marks else 1)
EOF
expect 0 "compare --match-norm --sentiment" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/v1.gguf" --prompts "$T/prompts.txt" --scales 2 --max-new-tokens 4 --match-norm --sentiment --json
$PY -c "
import json; r=json.load(open('$T/out'))['runs']
assert abs(r[1]['norm'] - r[2]['norm']) < 1e-4 * r[2]['norm'], r
assert json.load(open('$T/out'))['record']['vector_hook'] == 'blocks.1.hook_resid_post'
" && ok || bad "compare --match-norm norms equal / GGUF hook"
$PY -c "import numpy as np; np.save('$T/wide.npy', np.zeros(7, 'f4'))"
expect 2 "compare vector of wrong width" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/wide.npy" --prompts "$T/prompts.txt" --plot "$T/never.svg"
expect 2 "compare latent out of range" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 32 --vector "$T/mean.npy" --prompts "$T/prompts.txt" --plot "$T/never.svg"
printf '\n\n' >"$T/noprompts.txt"
expect 2 "compare no prompts" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/mean.npy" --prompts "$T/noprompts.txt" --plot "$T/never.svg"
expect 2 "compare both effects" -- "$BIN" compare --model "$M" --sae "$T/sae.h5" --latent 3 --vector "$T/mean.npy" --prompts "$T/prompts.txt" --sentiment --target-words "$T/words.txt"
ls "$T"/never.* >/dev/null 2>&1 && bad "a failed compare wrote an output" || ok

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
