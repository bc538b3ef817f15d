#!/usr/bin/env bash
# cli_sae.sh - the dictionary subcommands end to end:
#   convert a SAELens folder, read the .h5 back with h5py (names, attributes,
#   f["W_dec"][i]); encode a prompt and compare with numpy computing the SAE on
#   `cache`'s activation (centred when the SAE says so); info/latents output;
#   bad input gives exit 2, one line on stderr, and leaves outputs untouched.
# usage: bash tests/cli_sae.sh path/to/saesteer REPO_ROOT
# Uses tests/fixtures/tiny-sp and tests/fixtures/saes when present, else builds
# a tiny random GPT-2 and SAE with numpy in a temporary directory.
set -u
BIN=${1:?usage: cli_sae.sh SAESTEER REPO_ROOT}
ROOT=${2:?usage: cli_sae.sh SAESTEER REPO_ROOT}
T=$(mktemp -d /tmp/cli_sae.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0; checks=0
ok()   { checks=$((checks+1)); echo "ok   $*"; }
bad()  { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }

# a python with numpy and h5py (Debian's, when a pyenv one lacks them)
PY=""
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import numpy, h5py' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then echo "FAIL no python3 with numpy and h5py (apt install python3-numpy python3-h5py)"; exit 1; fi

# ------------------------------------------------------------ fixtures ---
FX=${SAESTEER_FIXTURES:-$ROOT/tests/fixtures}
MODEL="$FX/tiny-sp"
SAE="$FX/saes/standard_centered"
if [ ! -f "$MODEL/config.json" ] || [ ! -f "$SAE/cfg.json" ]; then
  echo "note: fixtures missing; using a random tiny model and SAE"
  MODEL="$T/model"; SAE="$T/sae"
  "$PY" "$ROOT/bench/make_weights.py" "$MODEL" --size tiny --n-layer 3 --n-embd 32 --n-positions 64 >/dev/null 2>&1 &&
    "$PY" "$ROOT/bench/make_sae.py" "$SAE" --d-in 32 --d-sae 200 --hook blocks.1.hook_resid_pre --context-size 32 \
      --center-writing-weights >/dev/null || { echo "FAIL could not build the tiny model"; exit 1; }
fi
echo "model $MODEL, sae $SAE"

# ------------------------------------------------------------- convert ---
if "$BIN" convert "$SAE" -o "$T/d.h5" > "$T/out" 2> "$T/err"; then ok "convert exit 0"; else bad "convert: $(cat "$T/err")"; fi
ls "$T" | grep -q '\.tmp\.' && bad "convert left a temporary file" || ok "no temporary left"
if "$PY" - "$T/d.h5" "$SAE" <<'EOF'
import h5py, json, struct, sys
import numpy as np
h5, folder = sys.argv[1:3]
b = open(f"{folder}/sae_weights.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]; hdr = json.loads(b[8:8 + n])
def tensor(k):
    v = hdr[k]; s, e = v["data_offsets"]
    dt = {"F32": np.float32, "F16": np.float16, "F64": np.float64}[v["dtype"]]
    return np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"]).astype(np.float32)
cfg = json.load(open(f"{folder}/cfg.json"))
with h5py.File(h5, "r") as f:
    a = f.attrs
    assert a["format"] == "saesteer-sae", a["format"]
    assert int(a["format_version"]) == 1
    assert isinstance(a["architecture"], str) and isinstance(a["hook_name"], str)
    assert int(a["d_in"]) == cfg["d_in"] and int(a["d_sae"]) == cfg["d_sae"]
    for k in ("apply_b_dec_to_input", "center_writing_weights", "prepend_bos", "context_size", "normalize_activations",
              "model_name", "source"):
        assert k in a, k
    assert json.loads(a["source"]) == cfg
    for k in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert f[k].dtype == np.float32, (k, f[k].dtype)
        if k in hdr:
            assert np.array_equal(f[k][()], tensor(k)), k
    i = cfg["d_sae"] // 2
    assert np.array_equal(f["W_dec"][i], tensor("W_dec")[i])
    assert f["W_dec"].shape == (cfg["d_sae"], cfg["d_in"])
    assert isinstance(a["prepend_bos"], np.bool_), type(a["prepend_bos"])
    print("h5py reads", h5, {k: a[k] for k in ("architecture", "hook_name", "d_in", "d_sae", "center_writing_weights")})
EOF
then ok "h5py reads the converted dictionary"; else bad "h5py check"; fi

# --------------------------------------------------------------- info ---
if "$BIN" info "$T/d.h5" --json > "$T/info.json" 2> "$T/err" &&
   "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["d_sae"]>0 and "W_dec_row_norms" in j' "$T/info.json"
then ok "info --json"; else bad "info --json: $(cat "$T/err")"; fi
"$BIN" info "$SAE" > "$T/info.txt" 2> "$T/err" && grep -q "center_writing_weights" "$T/info.txt" && ok "info table" || bad "info table"

# ------------------------------------------------------------- encode ---
TEXT="The cat sat on the mat, and then it slept."
if "$BIN" encode --model "$MODEL" --sae "$T/d.h5" --text "$TEXT" -o "$T/acts.npy" --recon "$T/rec.npy" 2> "$T/err"
then ok "encode exit 0"; else bad "encode: $(cat "$T/err")"; fi
"$BIN" encode --model "$MODEL" --sae "$SAE" --text "$TEXT" -o "$T/acts_folder.npy" 2> /dev/null
HOOK=$("$PY" -c 'import h5py,sys; print(h5py.File(sys.argv[1],"r").attrs["hook_name"])' "$T/d.h5")
"$BIN" cache --model "$MODEL" --text "$TEXT" --hook "$HOOK" -o "$T/x.npy" 2> /dev/null
if "$PY" - "$T" <<'EOF'
import h5py, sys
import numpy as np
T = sys.argv[1]
with h5py.File(f"{T}/d.h5", "r") as f:
    W = {k: f[k][()] for k in f.keys() if k != "labels"}
    a = dict(f.attrs)
assert a["architecture"] == "standard" and a["normalize_activations"] == "none", "this check computes a standard SAE"
x = np.load(f"{T}/x.npy")
if a["center_writing_weights"]:
    x = x - x.mean(-1, keepdims=True)
xc = x - W["b_dec"] if a["apply_b_dec_to_input"] else x
f = np.maximum(xc @ W["W_enc"] + W["b_enc"], 0)
rec = f @ W["W_dec"] + W["b_dec"]
acts, r, acts2 = np.load(f"{T}/acts.npy"), np.load(f"{T}/rec.npy"), np.load(f"{T}/acts_folder.npy")
assert acts.dtype == np.float32 and acts.shape == f.shape, (acts.shape, f.shape)
assert r.shape == (x.shape[0], x.shape[1])
d1, d2 = np.abs(acts - f).max(), np.abs(r - rec).max()
print(f"encode vs numpy: acts max diff {d1:.2e}, recon max diff {d2:.2e} over {acts.shape}")
assert d1 < 1e-4 * max(1, np.abs(f).max()) and d2 < 1e-4 * max(1, np.abs(rec).max())
assert np.array_equal(acts, acts2), "folder and .h5 encode differently"
EOF
then ok "encode matches numpy on cache's activation"; else bad "encode vs numpy"; fi
# --no-bos: one row fewer, and a warning for an SAE trained with BOS
"$BIN" encode --model "$MODEL" --sae "$T/d.h5" --text "$TEXT" --no-bos -o "$T/acts_nobos.npy" 2> "$T/err"
if "$PY" -c 'import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); assert b.shape[0]==a.shape[0]-1' \
     "$T/acts.npy" "$T/acts_nobos.npy" && grep -q "prepend_bos" "$T/err"
then ok "--no-bos drops BOS and warns"; else bad "--no-bos: $(cat "$T/err")"; fi

# ------------------------------------------------------------ latents ---
if "$BIN" latents --model "$MODEL" --sae "$T/d.h5" --text "$TEXT" --top 3 --json > "$T/lat.json" 2> "$T/err" &&
   "$PY" - "$T" <<'EOF'
import json, sys
import numpy as np
T = sys.argv[1]
j = json.load(open(f"{T}/lat.json"))
acts = np.load(f"{T}/acts.npy")
assert len(j["tokens"]) == acts.shape[0]
for t, e in enumerate(j["tokens"]):
    want = np.argsort(-acts[t])[:3]
    got = [l["latent"] for l in e["latents"]]
    assert got == [int(i) for i in want[:len(got)]], (t, got, want)
    assert all(abs(l["value"] - acts[t, l["latent"]]) < 1e-4 for l in e["latents"])
assert j["tokens"][0]["token"] == "<|endoftext|>"
EOF
then ok "latents --json agrees with encode"; else bad "latents: $(cat "$T/err")"; fi
"$BIN" latents --model "$MODEL" --sae "$T/d.h5" --text "$TEXT" --top 2 > "$T/lat.txt" 2>/dev/null && grep -q "endoftext" "$T/lat.txt" \
  && ok "latents table" || bad "latents table"

# ----------------------------------------------------------- sae-eval ---
for i in 1 2 3 4 5 6; do echo "The quick brown fox jumps over the lazy dog while the sun shines on the hills."; done > "$T/text.txt"
if "$BIN" sae-eval --model "$MODEL" --sae "$T/d.h5" --text-file "$T/text.txt" --max-tokens 60 --json > "$T/eval.json" 2> "$T/err" &&
   "$PY" -c '
import json,sys,math
j=json.load(open(sys.argv[1]))
for k in ("mse","explained_variance","l0","dead_fraction","ce_loss_clean","ce_loss_recon","ce_loss_zero","ce_loss_recovered"):
    assert isinstance(j[k],(int,float)) and math.isfinite(j[k]), k
assert j["tokens"] > 0 and 0 <= j["dead_fraction"] <= 1' "$T/eval.json" && grep -q "window" "$T/err"
then ok "sae-eval --json"; else bad "sae-eval: $(cat "$T/err")"; fi

# ------------------------------------- encode vs SAELens references (fixtures) ---
if [ -f "$FX/saes/standard/acts.npy" ]; then
  for name in standard standard_centered topk jumprelu gated old_layout norm_constant norm_layer; do
    if "$BIN" encode --model "$MODEL" --sae "$FX/saes/$name" --text "The quick brown fox jumps over the" \
         -o "$T/fa.npy" --recon "$T/fr.npy" 2> "$T/err" &&
       "$PY" -c 'import numpy as np,sys
a,b,r,s=(np.load(p) for p in sys.argv[1:5])
assert a.shape==b.shape and r.shape==s.shape, (a.shape,b.shape,r.shape,s.shape)
d1,d2=abs(a-b).max(),abs(r-s).max(); print(f"  acts max diff {d1:.2e}, recon max diff {d2:.2e}"); assert d1<1e-5 and d2<1e-5' \
         "$T/fa.npy" "$FX/saes/$name/acts.npy" "$T/fr.npy" "$FX/saes/$name/recon.npy"
    then ok "encode --sae saes/$name matches the SAELens reference"; else bad "encode $name: $(cat "$T/err")"; fi
  done
fi

# ---------------------------------------- steered logits vs HF (fixtures) ---
if [ -f "$FX/saes/standard/logits_boost.npy" ]; then
  P="The quick brown fox jumps over the"
  for spec in "standard boost --scale 3" "standard clamp --clamp 2.5" "standard ablate --ablate" "standard_centered clamp --clamp 2.5"; do
    set -- $spec
    name=$1; what=$2; shift 2
    if "$BIN" logits --model "$MODEL" --text "$P" --sae "$FX/saes/$name" --latent 5 "$@" --last-only -o "$T/l.npy" 2> "$T/err" &&
       "$PY" -c 'import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); d=abs(a-b).max(); print(f"  max diff {d:.2e}"); assert a.shape==b.shape and d<1e-4' \
         "$T/l.npy" "$FX/saes/$name/logits_$what.npy"
    then ok "logits --sae $name --latent 5 $* matches HF"; else bad "logits $name $what: $(cat "$T/err")"; fi
  done
  "$BIN" convert "$FX/saes/standard" -o "$T/std.h5" > /dev/null 2>&1
  if "$BIN" logits --model "$MODEL" --text "$P" --sae "$T/std.h5" --latent 5 --scale 3 --last-only -o "$T/l.npy" 2> "$T/err" &&
     "$PY" -c 'import numpy as np,sys; assert abs(np.load(sys.argv[1])-np.load(sys.argv[2])).max()<1e-4' "$T/l.npy" "$FX/saes/standard/logits_boost.npy"
  then ok "boost through the converted .h5 matches HF"; else bad "boost via .h5: $(cat "$T/err")"; fi
fi

# ---------------------------------------------------------- bad input ---
# each: exit 2, exactly one line on stderr, the existing output untouched
echo "sentinel" > "$T/keep.npy"
expect2() {
  local what=$1; shift
  "$@" > /dev/null 2> "$T/err.all"
  local rc=$?
  grep -v ': note: ' "$T/err.all" > "$T/err"   # informational notes are not errors
  if [ $rc -eq 2 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && [ "$(cat "$T/keep.npy")" = "sentinel" ] && \
     ! ls "$T" | grep -q '\.tmp\.'; then
    ok "$what -> exit 2: $(cat "$T/err")"
  else
    bad "$what -> rc $rc, stderr: $(cat "$T/err")"
  fi
}
mkdir -p "$T/badsae"; cp "$SAE"/* "$T/badsae/"
"$PY" - "$T/badsae/cfg.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["architecture"] = "matryoshka"; json.dump(c, open(sys.argv[1], "w"))
EOF
expect2 "unknown architecture" "$BIN" encode --model "$MODEL" --sae "$T/badsae" --text hi -o "$T/keep.npy"
expect2 "missing SAE" "$BIN" encode --model "$MODEL" --sae "$T/nope.h5" --text hi -o "$T/keep.npy"
head -c 3000 "$T/d.h5" > "$T/trunc.h5"
expect2 "truncated h5" "$BIN" encode --model "$MODEL" --sae "$T/trunc.h5" --text hi -o "$T/keep.npy"
"$PY" - "$T/d.h5" "$T/nan.h5" <<'EOF'
import h5py, shutil, sys
import numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    w = f["W_dec"][()]; w[3, 1] = np.nan; f["W_dec"][...] = w
EOF
expect2 "NaN in W_dec" "$BIN" encode --model "$MODEL" --sae "$T/nan.h5" --text hi -o "$T/keep.npy"
grep -q "W_dec" "$T/err" && grep -q "\[3,1\]" "$T/err" && ok "NaN error names dataset and index" || bad "NaN message: $(cat "$T/err")"
"$PY" - "$T/d.h5" "$T/hook.h5" <<'EOF'
import h5py, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f.attrs["hook_name"] = "blocks.99.hook_resid_pre"
EOF
expect2 "hook not in model" "$BIN" encode --model "$MODEL" --sae "$T/hook.h5" --text hi -o "$T/keep.npy"
"$PY" - "$T/d.h5" "$T/shape.h5" <<'EOF'
import h5py, shutil, sys
import numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    d = f["W_dec"][()]; del f["W_dec"]; f["W_dec"] = d[:-1]
EOF
expect2 "wrong W_dec shape" "$BIN" encode --model "$MODEL" --sae "$T/shape.h5" --text hi -o "$T/keep.npy"
expect2 "convert bad folder" "$BIN" convert "$T/badsae" -o "$T/keep.npy"
expect2 "convert without -o" "$BIN" convert "$SAE"
expect2 "unknown flag" "$BIN" encode --model "$MODEL" --sae "$T/d.h5" --text hi -o "$T/keep.npy" --frobnicate
expect2 "latents bad --top" "$BIN" latents --model "$MODEL" --sae "$T/d.h5" --text hi --top 0
expect2 "info of a non-dictionary" "$BIN" info "$T/keep.npy"
expect2 "sae-eval missing file" "$BIN" sae-eval --model "$MODEL" --sae "$T/d.h5" --text-file "$T/none.txt"
for c in encode convert info latents sae-eval; do
  "$BIN" $c --help > "$T/help" 2>&1 && grep -q "usage: saesteer $c" "$T/help" && ok "$c --help" || bad "$c --help"
done

echo "$((checks - fails))/$checks checks passed"
[ $fails -eq 0 ]
