#!/bin/bash
# cli_readability.sh SAESTEER REPO - latents --max-density (from the dictionary's
# log_sparsity or a scan's latents.json) against numpy on `encode`'s dense
# activations, and label --from-neuronpedia read back with h5py, plus their errors.
set -u
BIN=$1; ROOT=$2; FX=$ROOT/tests/fixtures; PY=/usr/bin/python3
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass+1)); echo "ok   $1"; }
bad()  { fail=$((fail+1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
M=$FX/tiny-sp; S=$FX/saes/standard.h5
TEXT="The quick brown fox jumps over the lazy dog"

# the median density of the dictionary: about half the latents hidden
D=$($PY -c "import h5py, numpy as np, sys; print(float(np.median(10 ** h5py.File(sys.argv[1])['log_sparsity'][:])))" "$S")
"$BIN" encode --model "$M" --sae "$S" --text "$TEXT" -o "$T/acts.npy"
"$BIN" latents --model "$M" --sae "$S" --text "$TEXT" --top 5 --max-density "$D" --json > "$T/l.json"
$PY - "$T/l.json" "$T/acts.npy" "$S" "$D" <<'PY' && ok "latents --max-density (log_sparsity): top 5 among the allowed latents = numpy on encode's activations" || bad "latents --max-density (log_sparsity)"
import json, sys, h5py, numpy as np
j, f = json.load(open(sys.argv[1])), np.load(sys.argv[2])
dens = 10 ** h5py.File(sys.argv[3])["log_sparsity"][:].astype(np.float64)
D = float(sys.argv[4]); hidden = dens > D
ok = j["hidden_latents"] == int(hidden.sum()) and 0 < hidden.sum() < len(dens)
for t, e in enumerate(j["tokens"]):
    g = np.where(hidden, 0, f[t])
    order = [int(i) for i in np.argsort(-g, kind="stable") if g[i] > 0][:5]
    ok &= [l["latent"] for l in e["latents"]] == order and e["l0"] == int((f[t] != 0).sum())
print(f"     {int(hidden.sum())} of {len(dens)} latents denser than {D:.4g} hidden; {len(j['tokens'])} tokens match numpy: {ok}")
sys.exit(0 if ok else 1)
PY
# densities from a scan's latents.json: latent i has density i/64
$PY -c "import json; print(json.dumps({'d_sae': 64, 'latents': [{'index': i, 'density': i / 64} for i in range(64)]}))" > "$T/scan.json"
"$BIN" latents --model "$M" --sae "$S" --text "$TEXT" --top 64 --max-density 0.25 --densities "$T/scan.json" --json > "$T/l2.json"
check "latents --densities latents.json: only latents with density <= 0.25 (index <= 16) shown" '$PY -c "
import json, sys; j = json.load(open(sys.argv[1]))
shown = {l[\"latent\"] for e in j[\"tokens\"] for l in e[\"latents\"]}
print(\"     hidden\", j[\"hidden_latents\"], \"shown\", sorted(shown))
sys.exit(0 if j[\"hidden_latents\"] == 47 and shown and max(shown) <= 16 else 1)" "$T/l2.json"'

# Neuronpedia explanations export
cp "$S" "$T/d.h5"
cat > "$T/np.json" <<'EOF'
[{"modelId": "gpt2-small", "layer": "1-res", "index": "5", "description": "  foxes and\ndogs ", "explanationModelName": "gpt-4o"},
 {"modelId": "gpt2-small", "layer": "1-res", "index": 7, "description": "café 日本"},
 {"modelId": "gpt2-small", "layer": "1-res", "index": "5", "description": "a second explanation of 5"},
 {"modelId": "gpt2-small", "layer": "1-res", "index": 9, "description": "LONG"}]
EOF
$PY - "$T/np.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); r[3]["description"] = "é" * 200   # 400 bytes: cut to 256 at a character boundary
json.dump(r, open(sys.argv[1], "w"))
EOF
"$BIN" label "$T/d.h5" --from-neuronpedia "$T/np.json" > "$T/out.txt"
check "label --from-neuronpedia: descriptions on one line, first record wins, cut at 256 bytes (h5py reads them)" '$PY -c "
import h5py, sys
L = [x.decode() if isinstance(x, bytes) else x for x in h5py.File(sys.argv[1])[\"labels\"][:]]
print(\"     \", repr(L[5]), repr(L[7]), len(L[9].encode()), \"bytes;\", open(sys.argv[2]).read().strip())
sys.exit(0 if L[5] == \"foxes and dogs\" and L[7] == \"café 日本\" and L[9] == \"é\" * 128 else 1)" "$T/d.h5" "$T/out.txt"'
printf '[{"layer": "1-res", "index": 3, "description": "one"}, {"layer": "2-res", "index": 4, "description": "two"}]' > "$T/two.json"
sum0=$(sha256sum < "$T/d.h5")
"$BIN" label "$T/d.h5" --from-neuronpedia "$T/two.json" > /dev/null 2> "$T/err"; rc=$?
check "several layers without --layer: exit 2, one line, file unchanged" '[ $rc -eq 2 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q -- "--layer" "$T/err" && [ "$(sha256sum < "$T/d.h5")" = "$sum0" ]'
"$BIN" label "$T/d.h5" --from-neuronpedia "$T/two.json" --layer 2-res > /dev/null
check "--layer 2-res imports that layer's record only" '$PY -c "
import h5py, sys
L = [x.decode() if isinstance(x, bytes) else x for x in h5py.File(sys.argv[1])[\"labels\"][:]]
sys.exit(0 if L[4] == \"two\" and L[3] != \"one\" else 1)" "$T/d.h5"'
for bad_json in '{"a": 1}' '[1, 2]' '[{"index": 3}]' '[{"index": 99, "description": "x"}]' 'not json'; do
    printf '%s' "$bad_json" > "$T/bad.json"
    sum0=$(sha256sum < "$T/d.h5")
    "$BIN" label "$T/d.h5" --from-neuronpedia "$T/bad.json" > /dev/null 2> "$T/err"; rc=$?
    check "unknown layout '$bad_json': exit 2, one line ($(cut -c1-90 "$T/err"))" '[ $rc -eq 2 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && [ "$(sha256sum < "$T/d.h5")" = "$sum0" ]'
done
"$BIN" latents --model "$M" --sae "$FX/saes/standard" --text "$TEXT" --max-density 0.1 > /dev/null 2> "$T/err"; rc=$?
check "--max-density with no stored densities asks for --densities" '[ $rc -eq 2 ] && grep -q -- "--densities" "$T/err" || { cat "$T/err"; false; }'
printf '{"d_sae": 32, "latents": []}' > "$T/s32.json"
"$BIN" latents --model "$M" --sae "$S" --text "$TEXT" --max-density 0.1 --densities "$T/s32.json" > /dev/null 2> "$T/err"; rc=$?
check "--densities of another dictionary size: exit 2" '[ $rc -eq 2 ] && grep -q "32 latents" "$T/err"'

echo "cli_readability: $pass passed, $fail failed"
[ $fail -eq 0 ]
