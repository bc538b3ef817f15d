#!/bin/bash
# .ci/valgrind.sh - valgrind memcheck of one ordinary run of every saesteer
# subcommand (tokenize logits cache generate steer encode convert info latents
# sae-eval perplexity scan label vector compare task-vector fv), plus a few
# failing runs (error paths free what they took). Zero errors is the bar:
# invalid reads/writes, uses of uninitialised values, bad frees, and definite
# or indirect leaks all count (--error-exitcode=1 on each run).
#
#   .ci/valgrind.sh [SAESTEER_BINARY]
#
# Without an argument it builds a RelWithDebInfo binary in build-valgrind/.
# The model and SAE are tests/fixtures/tiny-sp and tests/fixtures/saes/
# standard_centered when present, else a random tiny GPT-2 (2 layers, 32 wide)
# and SAE made with numpy. OpenBLAS runs one thread (valgrind serialises
# threads anyway). sae_h5.c reads each .h5 first in a forked child that _exits
# at once (h5_probe); memcheck ignores that child (--child-silent-after-fork),
# the parent runs the same reader on the same file. Runtime: tests/fuzz/README.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then
  BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
  build=$root/build-valgrind
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
  nice -n 10 cmake --build "$build" -j"${JOBS:-2}" --target saesteer >/dev/null || exit 1
  BIN=$build/saesteer
fi
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed (apt-get install valgrind)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ss_valgrind.XXXXXX")
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

FX=${SAESTEER_FIXTURES:-$root/tests/fixtures}
/usr/bin/python3 - "$T" "$root" "$FX" <<'EOF' || { echo "FAIL could not build the test model"; exit 1; }
import json, os, shutil, struct, sys
import numpy as np
T, root, fx = sys.argv[1:4]
rng = np.random.default_rng(0)
r = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)
def save_st(path, t):
    hdr, off = {}, 0
    for k, v in t.items():
        hdr[k] = dict(dtype="F32", shape=list(v.shape), data_offsets=[off, off + v.nbytes]); off += v.nbytes
    h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for v in t.values(): f.write(v.tobytes())
m, s = f"{T}/model", f"{T}/sae"
if os.path.isfile(f"{fx}/tiny-sp/config.json") and os.path.isfile(f"{fx}/saes/standard_centered/cfg.json"):
    shutil.copytree(f"{fx}/tiny-sp", m); shutil.copytree(f"{fx}/saes/standard_centered", s)
else:
    C, L, V, P, S = 32, 2, 50257, 64, 48
    os.makedirs(m); os.makedirs(s)
    json.dump(dict(model_type="gpt2", n_embd=C, n_layer=L, n_head=4, vocab_size=V, n_positions=P,
                   layer_norm_epsilon=1e-5, activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256),
              open(f"{m}/config.json", "w"))
    for f in ("vocab.json", "merges.txt"): shutil.copy(f"{root}/weights/gpt2-tokenizer/{f}", f"{m}/{f}")
    t = {"wte.weight": r(V, C), "wpe.weight": r(P, C)}
    for l in range(L):
        p = f"h.{l}."
        t.update({p + "ln_1.weight": 1 + r(C), p + "ln_1.bias": r(C), p + "attn.c_attn.weight": r(C, 3 * C),
                  p + "attn.c_attn.bias": r(3 * C), p + "attn.c_proj.weight": r(C, C), p + "attn.c_proj.bias": r(C),
                  p + "ln_2.weight": 1 + r(C), p + "ln_2.bias": r(C), p + "mlp.c_fc.weight": r(C, 4 * C),
                  p + "mlp.c_fc.bias": r(4 * C), p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C)})
    t["ln_f.weight"] = 1 + r(C); t["ln_f.bias"] = r(C)
    save_st(f"{m}/model.safetensors", t)
    json.dump({"architecture": "standard", "d_in": C, "d_sae": S, "apply_b_dec_to_input": True,
               "metadata": {"hook_name": "blocks.0.hook_resid_pre", "prepend_bos": True, "context_size": 32,
                            "model_from_pretrained_kwargs": {"center_writing_weights": True}}},
              open(f"{s}/cfg.json", "w"))
    save_st(f"{s}/sae_weights.safetensors", {"W_enc": r(C, S), "W_dec": r(S, C), "b_enc": r(S), "b_dec": r(C)})
C = json.load(open(f"{m}/config.json"))["n_embd"]
np.save(f"{T}/vec.npy", r(C))
open(f"{T}/text.txt", "w").write("The cat sat on the mat. It was a sunny day, and the birds sang.\n" * 6)
open(f"{T}/prompts.txt", "w").write("I think that\nThe weather is\n")
open(f"{T}/pairs.jsonl", "w").write('{"positive": "I love this", "negative": "I hate this"}\n'
                                   '{"positive": "wonderful", "negative": "terrible"}\n')
pairs = [("hot", "cold"), ("up", "down"), ("big", "small"), ("old", "new"), ("fast", "slow"), ("happy", "sad"),
         ("light", "dark"), ("high", "low"), ("rich", "poor"), ("hard", "soft"), ("early", "late"), ("open", "closed")]
json.dump([{"input": a, "output": b} for a, b in pairs], open(f"{T}/ds.json", "w"))
json.dump({"1": "first latent"}, open(f"{T}/labels.json", "w"))
EOF
M=$T/model; SAE=$T/sae
# the layer the SAE reads, for fv/task-vector
VG=(valgrind -q --tool=memcheck --error-exitcode=1 --child-silent-after-fork=yes --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --suppressions="$root/.ci/valgrind.supp")
pass=0; fail=0
# run NAME EXPECTED_EXIT -- ARGS...
run() {
  local name=$1 want=$2; shift 3
  local t0=$(date +%s.%N)
  "${VG[@]}" --log-file="$T/vg.$name.log" "$BIN" "$@" >"$T/out.$name" 2>"$T/err.$name" </dev/null
  local rc=$? dt
  dt=$(echo "$(date +%s.%N) - $t0" | bc)
  local errs; errs=$(grep -c '^==[0-9]*== ' "$T/vg.$name.log" 2>/dev/null || true)
  if [ "$rc" -eq "$want" ] && [ "$errs" -eq 0 ]; then
    pass=$((pass+1)); printf 'ok   %-22s exit %d, 0 valgrind errors (%.1f s)\n' "$name" "$rc" "$dt"
  else
    fail=$((fail+1)); printf 'FAIL %-22s exit %d (want %d), valgrind log:\n' "$name" "$rc" "$want"
    head -60 "$T/vg.$name.log"; echo "  stderr: $(head -c 400 "$T/err.$name")"
  fi
}
TXT=(--text "The cat sat on the mat")
run tokenize 0 -- tokenize --model "$M" "${TXT[@]}" --json
run logits 0 -- logits --model "$M" "${TXT[@]}" -o "$T/logits.npy"
run cache 0 -- cache --model "$M" "${TXT[@]}" --hook blocks.0.hook_resid_pre --hook blocks.1.attn.hook_pattern -o "$T/cache.npz"
run generate 0 -- generate --model "$M" "${TXT[@]}" --max-new-tokens 4 --temperature 0.8 --top-p 0.9 --seed 1 \
    --steer-vector "$T/vec.npy" --hook blocks.1.hook_resid_pre --scale 2 --json
run steer 0 -- steer --model "$M" --sae "$SAE" --latent 1 "${TXT[@]}" --scales 0,4 --max-new-tokens 3 --json
run encode 0 -- encode --model "$M" --sae "$SAE" "${TXT[@]}" -o "$T/acts.npy" --recon "$T/recon.npy"
run convert 0 -- convert "$SAE" -o "$T/dict.h5"
run info 0 -- info "$T/dict.h5" --json
run latents 0 -- latents --model "$M" --sae "$T/dict.h5" "${TXT[@]}" --top 3 --json
run sae-eval 0 -- sae-eval --model "$M" --sae "$SAE" --text-file "$T/text.txt" --max-tokens 64 --json
run perplexity 0 -- perplexity --model "$M" --text-file "$T/text.txt" --json --quiet
run scan 0 -- scan --model "$M" --sae "$T/dict.h5" --text-file "$T/text.txt" --top 3 --quiet -o "$T/scan"
run label 0 -- label "$T/dict.h5" --from "$T/labels.json"
run vector 0 -- vector --model "$M" --hook blocks.1.hook_resid_pre --pairs "$T/pairs.jsonl" --method pca -o "$T/v.npy"
run compare 0 -- compare --model "$M" --sae "$SAE" --latent 1 --vector "$T/vec.npy" --prompts "$T/prompts.txt" \
    --scales 0,2 --max-new-tokens 2 --sentiment --json --plot "$T/plot.svg"
run task-vector 0 -- task-vector --model "$M" --dataset "$T/ds.json" --layer 0 --shots 2 --n-prompts 2 --n-eval 3 \
    --examples 1 --max-new-tokens 2 --json
run fv 0 -- fv --model "$M" --dataset "$T/ds.json" --layer 0 --heads 2 --shots 2 --n-prompts 2 --n-eval 3 \
    --examples 1 --max-new-tokens 2 --json
# error paths free what they took
run bad-sae 2 -- encode --model "$M" --sae "$T/nope" "${TXT[@]}" -o "$T/x.npy"
run bad-vector 2 -- logits --model "$M" "${TXT[@]}" --steer-vector "$T/text.txt" --hook blocks.0.hook_resid_pre --scale 1 -o "$T/x.npy"
run bad-latent 2 -- logits --model "$M" "${TXT[@]}" --sae "$SAE" --latent 100000 --scale 1 -o "$T/x.npy"
echo "valgrind: $pass passed, $fail failed"
exit $((fail > 0))
