#!/bin/bash
# cli_analysis.sh SAESTEER REPO - patch, lens, unembed, logits --top, cache's
# hook_z shape, tokenize --decode and info --model against an independent
# float64 plain-PyTorch GPT-2 (tests/ref_analysis.py) on both fixture layouts
# (tiny-sp: save_pretrained, f32; tiny-oa: official files, f16), plus the
# errors a user meets. Tolerance 1e-4 absolute on metrics and log-probs:
# saesteer runs float32, the reference float64; the observed gaps are ~1e-6.
set -u
BIN=$1; ROOT=$2; FX=$ROOT/tests/fixtures; PY=/usr/bin/python3; REF="$ROOT/tests/ref_analysis.py"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "ok   $1"; }
bad()  { fail=$((fail+1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
if ! $PY -c "import torch" 2>/dev/null; then echo "FAIL python3-torch is needed (apt-get install -y python3-torch)"; exit 1; fi

ids() { $BIN tokenize --model "$1" --text "$2" --json | $PY -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['ids'])))"; }
# case NAME TYPE REF_REQUEST -- SAESTEER_ARGS...: run saesteer now, queue the reference request;
# the reference answers them all in one process (tests/ref_analysis.py batch), then compare.py judges
case_() {
    local name=$1 type=$2 req=$3; shift 4
    n=$((n + 1))
    if "$BIN" "$@" --json > "$W/$n.json" 2> "$W/$n.err"; then :; else echo "{}" > "$W/$n.json"; fi
    printf '%s\t%s\t%s\n' "$name" "$type" "$W/$n.json" >> "$W/cases.tsv"
    echo "$req" >> "$W/req.txt"
}
cat > "$T/compare.py" <<'PY'
import json, sys
cases = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
refs = [json.loads(l) for l in open(sys.argv[2])]
TOL = 1e-4
for (name, typ, path), r in zip(cases, refs):
    try:
        c = json.load(open(path))
        if typ == "patch":
            import numpy as np
            a, b = np.array(c["values"], dtype=float), np.array(r["values"], dtype=float)
            d = max(float(np.abs(a - b).max()) if a.shape == b.shape else float("inf"),
                    abs(c["clean"] - r["clean"]), abs(c["corrupted"] - r["corrupted"]))
            ok, msg = d <= TOL, (f"values {a.shape}, clean {c['clean']:.4f}, corrupted {c['corrupted']:.4f}: "
                                 f"max abs diff {d:.2e} (tol {TOL:g}); {c['runs']} runs, {c['skipped']} no-op patches")
        elif typ == "lens":
            ids_ok = len(c["top"]) == len(r["top"]) and all([e["id"] for e in x] == [e["id"] for e in y] for x, y in zip(c["top"], r["top"]))
            d = max(abs(e["logprob"] - f["logprob"]) for x, y in zip(c["top"], r["top"]) for e, f in zip(x, y))
            da = max(abs(x - y) for x, y in zip(c["answer"]["logprob"], r["answer"]["logprob"]))
            # ranks agree up to the tokens whose log-prob is within 1e-5 of the answer's (float32 vs float64 order)
            rk = all(abs(x - y) <= n for x, y, n in zip(c["answer"]["rank"], r["answer"]["rank"], r["answer"]["near"]))
            ok = ids_ok and rk and d <= TOL and da <= TOL and c["hooks"] == r["hooks"] and c["position"] == r["position"]
            msg = (f"{len(c['hooks'])} hooks at position {c['position']}: top ids equal {ids_ok}, max log-prob diff {d:.2e}; "
                   f"answer ranks {c['answer']['rank']} vs {r['answer']['rank']} agree {rk} (near-ties {r['answer']['near']}), log-prob diff {da:.2e} (tol {TOL:g})")
        elif typ == "unembed":
            ok = all([e["id"] for e in c[k]] == [e["id"] for e in r[k]] for k in ("top", "bottom"))
            d = max(abs(e["logit"] - f["logit"]) for k in ("top", "bottom") for e, f in zip(c[k], r[k]))
            msg = f"ids equal {ok}, max logit diff {d:.2e} (tol {TOL:g})"
            ok = ok and d <= TOL
    except Exception as e:
        ok, msg = False, f"{type(e).__name__}: {e}; saesteer said: {open(path[:-5] + '.err').read().strip()}"
    print(("ok   " if ok else "FAIL ") + name + "\n     " + msg)
PY

CLEAN="The quick brown fox jumps over the"; CORR="The quick red fox jumps over the"
# without BOS and differing at the first and a later token: the restore path after every layer
NB_CLEAN="Hello, my dog is cute"; NB_CORR="Hey, my cat is cute"
for M in tiny-sp tiny-oa; do
    D=$FX/$M; W=$T/$M; mkdir -p "$W"; n=0
    C=50256,$(ids "$D" "$CLEAN"); X=50256,$(ids "$D" "$CORR"); A=$(ids "$D" " lazy"); WR=$(ids "$D" " dog")
    for kind in resid_pre attn_out mlp_out z z-pos; do
        k=${kind%-pos}; extra=""; [ "$kind" = z-pos ] && extra=--per-position
        case_ "$M patch --kind $kind --metric logdiff vs torch" patch "patch --clean $C --corrupted $X --answer $A --wrong $WR --kind $k $extra" -- \
            patch --model "$D" --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --kind $k $extra
        case_ "$M patch --kind $kind --metric logprob vs torch" patch "patch --clean $C --corrupted $X --answer $A --kind $k $extra --metric logprob" -- \
            patch --model "$D" --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --metric logprob --kind $k $extra
    done
    NC=$(ids "$D" "$NB_CLEAN"); NX=$(ids "$D" "$NB_CORR"); NA=$(ids "$D" "!")
    for kind in resid_pre attn_out z-pos; do
        k=${kind%-pos}; extra=""; [ "$kind" = z-pos ] && extra=--per-position
        case_ "$M patch --no-bos, first token differs, --kind $kind vs torch" patch "patch --clean $NC --corrupted $NX --answer $NA --kind $k $extra --metric logprob" -- \
            patch --model "$D" --no-bos --clean "$NB_CLEAN" --corrupted "$NB_CORR" --answer "!" --metric logprob --kind $k $extra
    done
    for pos in -1 3; do
        for scale in "" --cached-scale; do
            case_ "$M lens --position $pos ${scale:-(ln_f in full)} vs torch" lens "lens --ids $C --position $pos --top 8 --answer $A $scale" -- \
                lens --model "$D" --text "$CLEAN" --position $pos --top 8 --answer " lazy" $scale
        done
    done
    for lnf in "" --ln-f; do
        case_ "$M unembed ${lnf:-(raw)} top/bottom ids and logits vs torch" unembed "unembed --vector $D/ref/steer_v.npy --top 6 $lnf" -- \
            unembed --model "$D" --vector "$D/ref/steer_v.npy" --top 6 $lnf
    done
    $PY "$REF" batch "$D" < "$W/req.txt" > "$W/ref.jsonl"
    $PY "$T/compare.py" "$W/cases.tsv" "$W/ref.jsonl" > "$W/result.txt"
    cat "$W/result.txt"
    pass=$((pass + $(grep -c '^ok' "$W/result.txt"))); fail=$((fail + $(grep -c '^FAIL' "$W/result.txt")))
    [ "$(grep -c '^\(ok\|FAIL\)' "$W/result.txt")" -eq "$n" ] || bad "$M: the reference answered $(wc -l < "$W/ref.jsonl") of $n requests"

    # the shared runs equal whole forward passes of the same patches (--full-runs), skipped no-ops included
    for kind in resid_pre z-pos; do
        k=${kind%-pos}; extra=""; [ "$kind" = z-pos ] && extra=--per-position
        $BIN patch --model "$D" --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --kind $k $extra --json > "$T/s.json"
        $BIN patch --model "$D" --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --kind $k $extra --full-runs --json > "$T/f.json"
        check "$M patch --kind $kind: shared runs = --full-runs" '$PY -c "
import json, sys, numpy as np
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
d = float(np.abs(np.array(a[\"values\"]) - np.array(b[\"values\"])).max())
print(\"     max abs diff %.2e over %d values; runs %d shared vs %d whole (tol 1e-5)\" % (d, np.array(a[\"values\"]).size, a[\"runs\"], b[\"runs\"]))
sys.exit(0 if d <= 1e-5 and b[\"skipped\"] == 0 else 1)" "$T/s.json" "$T/f.json"'
    done

    # the heat map: an SVG with a viewBox and one cell per value
    $BIN patch --model "$D" --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --plot "$T/p.svg" > "$T/table.txt"
    check "$M patch --plot: SVG with a viewBox and a cell per (layer, position)" '$PY -c "
import json, sys, xml.dom.minidom as x
d = x.parse(sys.argv[1]); L = json.load(open(sys.argv[2]))[\"n_layer\"]
n = len(d.getElementsByTagName(\"title\")); vb = d.documentElement.getAttribute(\"viewBox\")
print(\"     viewBox\", vb, \"cells\", n, \"want\", L * 8)
sys.exit(0 if vb and n == L * 8 else 1)" "$T/p.svg" "$D/config.json"'
    check "$M patch text table: a row per layer" '[ "$(grep -c "^L[0-9]" "$T/table.txt")" -eq "$($PY -c "import json; print(json.load(open(\"$D/config.json\"))[\"n_layer\"])")" ]'
    $BIN lens --model "$D" --text "$CLEAN" --top 3 > "$T/lens.txt"
    check "$M lens text table: one row per hook" '[ "$(grep -c "^blocks" "$T/lens.txt")" -ge 3 ]'

    # logits --top: the HF reference logits' top tokens and their softmax
    $BIN logits --model "$D" --text "$CLEAN" --top 5 --json > "$T/c.json"
    check "$M logits --top 5 = top of the HF logits, prob = softmax" '$PY -c "
import json, sys, numpy as np
c, l = json.load(open(sys.argv[1])), np.load(sys.argv[2])[-1].astype(np.float64)
p = np.exp(l - l.max()); p /= p.sum()
want = [int(i) for i in np.argsort(-l, kind=\"stable\")[:5]]
got = [e[\"id\"] for e in c[\"top\"]]
d = max(abs(e[\"prob\"] - p[e[\"id\"]]) for e in c[\"top\"])
print(\"     ids\", got, \"HF\", want, \"max prob diff %.2e\" % d)
sys.exit(0 if got == want and d <= 1e-5 else 1)" "$T/c.json" "$D/ref/logits.npy"'
    # cache: attn.hook_z in TransformerLens's shape
    $BIN cache --model "$D" --text "$CLEAN" --hook blocks.1.attn.hook_z -o "$T/z.npy"
    check "$M cache blocks.1.attn.hook_z is (T, n_head, d_head) and equals HF" '$PY -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print(\"     shape\", a.shape, \"ref\", b.shape, \"max abs diff %.2e\" % np.abs(a - b).max())
sys.exit(0 if a.shape == b.shape and np.abs(a - b).max() <= 1e-5 else 1)" "$T/z.npy" "$D/ref/blocks.1.attn.hook_z.npy"'
    # info --model: the numbers a user checks, against config.json and the safetensors header
    $BIN info --model "$D" --json > "$T/i.json"
    check "$M info --model: layers, width, heads, context, vocab, dtype, parameters" '$PY -c "
import json, re, struct, sys
j, d = json.load(open(sys.argv[1])), sys.argv[2]
cfg = json.load(open(d + \"/config.json\"))
h = open(d + \"/model.safetensors\", \"rb\"); n = struct.unpack(\"<Q\", h.read(8))[0]; hd = json.loads(h.read(n))
ts = [v for k, v in hd.items() if k != \"__metadata__\" and not re.fullmatch(r\"(transformer[.])?h[.][0-9]+[.]attn[.](bias|masked_bias)\", k)]
params = sum(int(np.prod(v[\"shape\"])) for v in ts) if (np := __import__(\"numpy\")) else 0
dt = {v[\"dtype\"] for v in ts}
print(\"     info:\", j[\"n_layer\"], j[\"d_model\"], j[\"n_head\"], j[\"n_ctx\"], j[\"vocab_size\"], j[\"dtype\"], j[\"parameters\"], \"| header:\", params, dt)
sys.exit(0 if (j[\"n_layer\"], j[\"d_model\"], j[\"n_head\"], j[\"n_ctx\"], j[\"vocab_size\"]) == (cfg[\"n_layer\"], cfg[\"n_embd\"], cfg[\"n_head\"], cfg[\"n_positions\"], cfg[\"vocab_size\"]) and j[\"parameters\"] == params and dt == {j[\"dtype\"]} else 1)" "$T/i.json" "$D"'
done

D=$FX/tiny-sp
# unembed an SAE decoder row = unembed of that row saved as .npy
$PY -c "import h5py, numpy as np, sys; np.save(sys.argv[2], h5py.File(sys.argv[1])['W_dec'][5])" "$FX/saes/standard.h5" "$T/row.npy"
$BIN unembed --model "$D" --sae "$FX/saes/standard.h5" --latent 5 --json > "$T/a.json"
$BIN unembed --model "$D" --vector "$T/row.npy" --json > "$T/b.json"
check "unembed --sae --latent 5 = unembed of W_dec[5]" '$PY -c "import json,sys; a,b=json.load(open(sys.argv[1])),json.load(open(sys.argv[2])); sys.exit(0 if a[\"top\"]==b[\"top\"] and a[\"bottom\"]==b[\"bottom\"] else 1)" "$T/a.json" "$T/b.json"'
# tokenize --decode inverts tokenize
ids_=$($BIN tokenize --model "$D" --text "The Eiffel Tower, café 日本" --json | $PY -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['ids'])))")
got=$($BIN tokenize --model "$D" --decode "$ids_")
check "tokenize --decode inverts tokenize" '[ "$got" = "The Eiffel Tower, café 日本" ]'
got=$($BIN tokenize --model "$D" --decode 464,2068 --json)
check "tokenize --decode 464,2068 --json" '[ "$got" = "{\"text\":\"The quick\"}" ]'

# errors: one line, exit 2, naming what is wrong
err_is() {   # CODE PATTERN command...
    local code=$1 pat=$2; shift 2
    "$@" > /dev/null 2> "$T/err"; local rc=$?
    [ $rc -eq "$code" ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q -- "$pat" "$T/err" || { echo "     rc $rc: $(cat "$T/err")"; return 1; }
}
check "patch: different lengths name both" 'err_is 2 "is 8 tokens and --corrupted is 9 tokens" $BIN patch --model $D --clean "$CLEAN" --corrupted "The quick red fox jumps over the lazy" --answer " lazy" --wrong " dog"'
check "patch: a two-token answer names its count" 'err_is 2 "is 2 tokens" $BIN patch --model $D --clean "$CLEAN" --corrupted "$CORR" --answer " lazy dog" --wrong " dog"'
check "patch: unknown kind" 'err_is 2 "kind" $BIN patch --model $D --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --kind q'
check "patch: --per-position without z" 'err_is 2 "per-position" $BIN patch --model $D --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --per-position'
check "patch: logdiff without --wrong" 'err_is 2 "wrong" $BIN patch --model $D --clean "$CLEAN" --corrupted "$CORR" --answer " lazy"'
check "patch: --plot into a missing directory fails before running" 'err_is 2 "plot" $BIN patch --model $D --clean "$CLEAN" --corrupted "$CORR" --answer " lazy" --wrong " dog" --plot "$T/no/such/p.svg"'
check "lens: position out of range" 'err_is 2 "position" $BIN lens --model $D --text "$CLEAN" --position 8'
check "unembed: wrong width" 'err_is 2 "expected (16,)" $BIN unembed --model $D --vector "$FX/tiny-oa/ref/steer_v.npy"'
check "unembed: latent out of range" 'err_is 2 "out of range" $BIN unembed --model $D --sae "$FX/saes/standard.h5" --latent 64'
check "tokenize --decode: id outside the vocabulary" 'err_is 2 "outside the vocabulary" $BIN tokenize --model $D --decode 1,50257'
check "logits: neither -o nor --top" 'err_is 2 "required" $BIN logits --model $D --text hi'

echo "cli_analysis: $pass passed, $fail failed"
[ $fail -eq 0 ]
