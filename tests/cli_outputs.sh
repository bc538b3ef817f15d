#!/usr/bin/env bash
# cli_outputs.sh - where outputs go and what a failed run leaves (issue 13, items 4-8):
#   - a symlink output replaces its target (the link stays, the target keeps its mode)
#   - /dev/stdout (through a link: never name /dev/stdout itself, a broken build run as root would
#     replace it) and a FIFO are written directly (nothing replaced, no temporary file)
#   - an output that is a directory, in a missing directory, or an input of the run: exit 2, nothing changed
#   - multi-file outputs (encode -o + --recon, vector -o + --gguf-out, scan's latents.json + dashboard.html)
#     are replaced together or not at all
#   - a 245-character output name works (the temporary's name stays within NAME_MAX)
#   - `label`: concurrent runs never lose a label; a symlinked dictionary is labelled through the link
#   - `--record` under a file size limit: the file keeps ending with a whole line, exit 1
#   - `ulimit -f`: a write error and exit 1, no SIGXFSZ death, no temporary left
#   - `ulimit -v`: OpenBLAS never hangs (a result or a one-line error)
#   - the model truncated under a run: SIGBUS is one line and exit 1; SIGTERM while an output is written
#     removes its temporary
#   - --scale 1e-320 is a number; GGUF control vectors read as llama.cpp reads them
# usage: bash tests/cli_outputs.sh path/to/saesteer REPO_ROOT
set -u
BIN=${1:?usage: cli_outputs.sh SAESTEER REPO_ROOT}
ROOT=${2:?usage: cli_outputs.sh SAESTEER REPO_ROOT}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$ROOT" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cli_outputs.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0; checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
PY=/usr/bin/python3
FX=${SAESTEER_FIXTURES:-$ROOT/tests/fixtures}
M=$FX/tiny-sp SAE=$FX/saes/standard.h5
[ -f "$M/config.json" ] && [ -f "$SAE" ] || { echo "FAIL fixtures missing ($M, $SAE)"; exit 1; }
TXT=(--text "The quick brown fox jumps")
cd "$T" || exit 1
no_temps() { [ -z "$(find "$T" -name '*.tmp.*' | head -1)" ]; }
run() { "$BIN" "$@" >"$T/out" 2>"$T/err"; rc=$?; }

# ---- symlinks: the target is replaced, the link stays, the mode is kept
printf 'old\n' > real.npy; chmod 600 real.npy; ln -s real.npy link.npy
run logits --model "$M" "${TXT[@]}" -o link.npy
check "symlink output: exit 0, link kept, target replaced with mode 600" \
  test $rc -eq 0 -a -L link.npy -a "$(stat -c %a real.npy)" = 600 -a "$(head -c 6 real.npy | tail -c 5)" = NUMPY
ln -s missing_dir/x.npy dangling.npy
run logits --model "$M" "${TXT[@]}" -o dangling.npy
check "dangling symlink into a missing directory: exit 2 ($(cat err))" test $rc -eq 2

# ---- devices and FIFOs are written in place
# never /dev/stdout itself: a build that replaces outputs by rename would, as root, replace /dev/stdout
ln -s /dev/stdout stdout_link
"$BIN" logits --model "$M" "${TXT[@]}" -o stdout_link 2>err | cat > stdout.bin; rc=${PIPESTATUS[0]}
head -c 6 stdout.bin | tail -c 5 > magic
check "-o LINK-TO-/dev/stdout: exit 0, the .npy on stdout, the link kept" test -L stdout_link -a $rc -eq 0 -a "$(cat magic)" = NUMPY
mkfifo fifo.npy
timeout 60 cat fifo.npy > fifo.bin & reader=$!   # (a run that replaces the FIFO never opens it)
run logits --model "$M" "${TXT[@]}" -o fifo.npy; wait $reader
head -c 6 fifo.bin | tail -c 5 > fifo_magic
check "-o FIFO: exit 0, written through, still a FIFO" test $rc -eq 0 -a -p fifo.npy -a "$(cat fifo_magic)" = NUMPY
check "no temporary files left so far" no_temps

# ---- outputs that cannot be: exit 2 before the work, nothing changed
mkdir adir
run logits --model "$M" "${TXT[@]}" -o adir
check "-o DIRECTORY: exit 2 ($(cat err))" test $rc -eq 2
run logits --model "$M" "${TXT[@]}" -o nodir/x.npy
check "-o in a missing directory: exit 2" test $rc -eq 2
cp -r "$M" model; sum=$(sha256sum < model/model.safetensors)
run logits --model model "${TXT[@]}" -o model/model.safetensors
check "-o the model's own weights: exit 2 and unchanged ($(cat err))" test $rc -eq 2 -a "$(sha256sum < model/model.safetensors)" = "$sum"
cp "$SAE" d.h5; sum=$(sha256sum < d.h5)
run convert d.h5 -o d.h5
check "convert d.h5 -o d.h5: exit 2 and unchanged" test $rc -eq 2 -a "$(sha256sum < d.h5)" = "$sum"
ln -s d.h5 d_link.h5
run convert d.h5 -o d_link.h5
check "convert d.h5 -o LINK-TO-d.h5: exit 2 and unchanged" test $rc -eq 2 -a "$(sha256sum < d.h5)" = "$sum"

# ---- multi-file outputs: both or neither
printf 'keep\n' > keep.npy
run encode --model "$M" --sae "$SAE" "${TXT[@]}" -o keep.npy --recon adir
check "encode -o keep.npy --recon DIR: exit 2, keep.npy untouched" test $rc -eq 2 -a "$(cat keep.npy)" = keep
run vector --model "$M" --hook blocks.1.hook_resid_post --positive good --negative bad -o keep.npy --gguf-out adir
check "vector -o keep.npy --gguf-out DIR: exit 2, keep.npy untouched" test $rc -eq 2 -a "$(cat keep.npy)" = keep
run encode --model "$M" --sae "$SAE" "${TXT[@]}" -o a.npy --recon r.npy
check "encode -o --recon: both written" test $rc -eq 0 -a -s a.npy -a -s r.npy
# scan: dashboard.html cannot be replaced (a directory): the old latents.json must survive
mkdir scan; printf 'old json\n' > scan/latents.json; mkdir scan/dashboard.html
printf 'The quick brown fox jumps over the lazy dog.\n%.0s' $(seq 1 20) > corpus.txt
run scan --model "$M" --sae "$SAE" --text-file corpus.txt -o scan --quiet
check "scan with dashboard.html a directory: fails, latents.json untouched ($(tail -1 err))" \
  test $rc -ne 0 -a $rc -lt 128 -a "$(cat scan/latents.json)" = "old json"
check "no temporary files left" no_temps

# ---- a long output name
long=$(printf 'x%.0s' $(seq 1 245)).npy
run logits --model "$M" "${TXT[@]}" -o "$long"
check "245-character output name: exit 0 ($(cat err))" test $rc -eq 0 -a -s "$long"

# ---- label: concurrent runs, and a symlinked dictionary
cp "$SAE" lab.h5
for i in $(seq 0 7); do "$BIN" label lab.h5 --latent $((10 + i)) --text "name$i" >/dev/null 2>>label.err & done; wait
"$BIN" label lab.h5 --list > labels.txt
n=0; for i in $(seq 0 7); do grep -q "^$((10 + i))	name$i\$" labels.txt && n=$((n+1)); done
check "8 concurrent label runs: all 8 labels kept ($n)" test $n -eq 8 -a ! -s label.err
cp "$SAE" real_dict.h5; chmod 640 real_dict.h5; ln -s real_dict.h5 dict_link.h5
run label dict_link.h5 --latent 3 --text through-link
check "label via a symlink: the real file is labelled, keeps mode 640, the link stays" \
  test $rc -eq 0 -a -L dict_link.h5 -a "$(stat -c %a real_dict.h5)" = 640 -a -n "$("$BIN" label real_dict.h5 --list | grep through-link)"

# ---- --record under a file size limit: cut back to whole lines
run cache --model "$M" --text hi --hook blocks.0.hook_resid_pre -o small.npy --record rec.jsonl
one=$(wc -c < rec.jsonl)
head -c $((4096 - one / 2)) /dev/zero | tr '\0' 'x' > rec2.jsonl; echo >> rec2.jsonl   # ends with a newline
size=$(wc -c < rec2.jsonl)
( ulimit -f 4; "$BIN" cache --model "$M" --text hi --hook blocks.0.hook_resid_pre -o small.npy --record rec2.jsonl >out 2>err ); rc=$?
check "--record past ulimit -f: exit 1, file cut back to $size bytes ending in a newline ($(cat err))" \
  test $rc -eq 1 -a "$(wc -c < rec2.jsonl)" = "$size" -a "$(tail -c 1 rec2.jsonl | od -An -c | tr -d ' ')" = '\n'

# ---- ulimit -f on the output: a write error, not SIGXFSZ, no temporary left
( ulimit -f 64
  printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 1 5) > p.txt
  "$BIN" logits --model "$M" --text-file p.txt -o big.npy >out 2>err ); rc=$?
check "logits -o past ulimit -f: exit 1, one line ($(cat err)), no temporary" \
  test $rc -eq 1 -a "$(wc -l < err)" -eq 1 -a ! -e big.npy
check "no temporary files left" no_temps

# ---- ulimit -v: OpenBLAS must not hang (not under ASan, which needs terabytes of address space)
if [ -n "${ASAN_OPTIONS:-}" ]; then echo "skip ulimit -v checks: ASAN_OPTIONS is set (.ci/sanitize.sh)"; else
for kb in 200000 4000000; do
  ( ulimit -v $kb; timeout -k 5 120 "$BIN" logits --model "$M" "${TXT[@]}" -o v.npy >out 2>err ); rc=$?
  check "ulimit -v $kb: no hang, exit $rc ($(head -c 150 err))" test $rc -eq 0 -o \( $rc -eq 1 -a "$(wc -l < err)" -eq 1 \)
done
( ulimit -v 4000000; timeout -k 5 120 "$BIN" logits --model "$M" "${TXT[@]}" -o v.npy >/dev/null 2>&1 ); rc=$?
check "ulimit -v 4000000: runs (exit $rc)" test $rc -eq 0
fi

# ---- the model file truncated under a run: SIGBUS becomes one line, exit 1
"$PY" "$ROOT/bench/make_weights.py" bm --size tiny --n-embd 32 --n-positions 1024 >/dev/null 2>&1 ||
  bad "could not build the model for the SIGBUS check"
"$PY" -c 'import sys; sys.stdout.write(("The quick brown fox jumps over the lazy dog. " * 20 + "\n") * 20000)' > big.txt
cp -r bm bm_cut
timeout -k 5 300 "$BIN" perplexity --model bm_cut --text-file big.txt >/dev/null 2>pp.err & p=$!
for _ in $(seq 1 600); do [ -s pp.err ] && break; sleep 0.1; done   # the first progress line: it is running
truncate -s 4096 bm_cut/model.safetensors
wait $p; rc=$?
check "model truncated during perplexity: exit 1, one line naming SIGBUS ($(tail -1 pp.err))" \
  test $rc -eq 1 -a -n "$(tail -1 pp.err | grep SIGBUS)"

# ---- SIGTERM while the output is being written (~180 MB of logits): the temporary is removed, exit 1
"$PY" -c 'print("word " * 900)' > long.txt
mkdir sig
"$BIN" logits --model bm --text-file long.txt -o sig/o.npy 2>sig.err & p=$!
seen=0
for _ in $(seq 1 6000); do ls sig | grep -q '\.tmp\.' && { seen=1; break; }; kill -0 $p 2>/dev/null || break; sleep 0.01; done
kill -TERM $p 2>/dev/null; wait $p; rc=$?
check "SIGTERM while writing: temporary seen ($seen), exit 1, one line, nothing left ($(cat sig.err))" \
  test $seen -eq 1 -a $rc -eq 1 -a "$(wc -l < sig.err)" -eq 1 -a -z "$(ls -A sig)"

# ---- numbers
run logits --model "$M" "${TXT[@]}" --steer-vector /dev/null --hook blocks.0.hook_resid_pre --scale 1e-320 -o s.npy
check "--scale 1e-320 is parsed as a number (the vector is what fails: $(cat err))" \
  test $rc -eq 2 -a -z "$(grep -e '--scale' err)"

# ---- GGUF control vectors as llama.cpp reads them (common_control_vector_load_one)
"$PY" - <<'EOF' || bad "could not write the GGUF files"
import struct
import numpy as np
def gs(x): x = x.encode(); return struct.pack("<Q", len(x)) + x
def gguf(path, tensors, n=16):   # tensors: [(name, values)]
    kv = [("general.architecture", 8, gs("controlvector")), ("controlvector.layer_count", 5, struct.pack("<i", 1))]
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(gs(k) + struct.pack("<I", t) + v for k, t, v in kv)
    for i, (name, _) in enumerate(tensors):
        b += gs(name) + struct.pack("<IQIQ", 1, n, 0, i * n * 4)
    b += b"\0" * ((32 - len(b) % 32) % 32)
    open(path, "wb").write(b + b"".join(np.asarray(v, np.float32).tobytes() for _, v in tensors))
a, c = np.arange(16, dtype=np.float32), np.full(16, 0.5, np.float32)
gguf("sum.gguf", [("direction.1", a), ("direction.01", c)])       # both layer 1: llama.cpp adds them
np.save("sum_expected.npy", a + c)
gguf("other.gguf", [("direction.1", a), ("output.weight", c)])    # not a direction: llama.cpp refuses the file
gguf("dupname.gguf", [("direction.1", a), ("direction.1", c)])    # one name twice: ggml refuses the file
gguf("suffix.gguf", [("direction.2abc", a)])                      # std::stoi reads the leading 2
EOF
run vector --import-gguf sum.gguf -o sum.npy
check "GGUF: direction.1 + direction.01 are summed, as llama.cpp does" \
  test $rc -eq 0 -a "$("$PY" -c 'import numpy as np; print(float(abs(np.load("sum.npy") - np.load("sum_expected.npy")).max()))')" = 0.0
run vector --import-gguf other.gguf -o o.npy
check "GGUF: a tensor that is not direction.N refuses the file ($(cat err))" test $rc -eq 2 -a ! -e o.npy
run vector --import-gguf dupname.gguf -o o.npy
check "GGUF: one tensor name twice refuses the file ($(cat err))" test $rc -eq 2 -a ! -e o.npy
run vector --import-gguf suffix.gguf --layer 2 -o o.npy
check "GGUF: direction.2abc is layer 2 (std::stoi)" test $rc -eq 0

echo "$((checks - fails))/$checks checks passed"
[ $fails -eq 0 ] && echo PASS
exit $((fails > 0))
