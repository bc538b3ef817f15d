#!/usr/bin/env bash
# cli_h5hostile.sh - a dictionary never makes saesteer read another file, and
# no corrupted dictionary kills it (issue 13, items 1-3 and 9):
#   1. crafted .h5 files (tests/h5_hostile.py: external raw storage, an
#      external link, a soft link, a virtual dataset, a plugin filter, and
#      labels "stored" in /etc/passwd) are refused by info, latents, encode,
#      label and convert with exit 2 and one line on stderr, before any foreign
#      byte is read: none shows up in any output, label leaves the file alone
#   2. the forked reader's verdict holds when the caller ignores SIGCHLD
#   3. a mutation smoke: MUTANTS (default 200) copies of valid and crafted
#      dictionaries with 1-8 random bytes overwritten go through the real CLI
#      (`info --json`, every 10th also `latents`): never a signal death or a
#      hang, one line on stderr when refused, no foreign bytes in any output
#   4. a dictionary replaced (rename) over and over while `info` reads it:
#      every run either reads one of the two files whole or refuses, never
#      mixes them
# usage: bash tests/cli_h5hostile.sh path/to/saesteer REPO_ROOT
set -u
BIN=${1:?usage: cli_h5hostile.sh SAESTEER REPO_ROOT}
ROOT=${2:?usage: cli_h5hostile.sh SAESTEER REPO_ROOT}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
ROOT=$(cd "$ROOT" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/cli_h5hostile.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0; checks=0
ok()  { checks=$((checks+1)); echo "ok   $*"; }
bad() { checks=$((checks+1)); fails=$((fails+1)); echo "FAIL $*"; }
PY=/usr/bin/python3
FX=${SAESTEER_FIXTURES:-$ROOT/tests/fixtures}
GOOD=$FX/saes/standard.h5 MODEL=$FX/tiny-sp
[ -f "$GOOD" ] && [ -f "$MODEL/config.json" ] || { echo "FAIL fixtures missing ($GOOD, $MODEL)"; exit 1; }
cp "$GOOD" "$T/good.h5"
"$PY" "$ROOT/tests/h5_hostile.py" "$T/good.h5" "$T/h" "$T/foreign" >/dev/null || { echo "FAIL h5_hostile.py"; exit 1; }
# the issue's own example: 64 labels of 16 bytes "stored" at the start of /etc/passwd
"$PY" - "$T/good.h5" "$T/h/h5_labels_etc_passwd.h5" <<'EOF' || { echo "FAIL could not build the /etc/passwd case"; exit 1; }
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    n = int(f.attrs["d_sae"]); del f["labels"]
    f.create_dataset("labels", (n,), "S16", external=[("/etc/passwd", 0, 16 * n)])
EOF
# bytes that must never appear: the text canary, and the start of /etc/passwd
FOREIGN=("CANARY-FOREIGN" "$(head -c 12 /etc/passwd)")
foreign_in() { local f s; for f in "$@"; do for s in "${FOREIGN[@]}"; do grep -qaF -- "$s" "$f" && return 0; done; done; return 1; }

# ---- 1. crafted files
declare -A WHY=([h5_external_labels]="external storage" [h5_external_raw]="external storage"
  [h5_external_link]="external link" [h5_soft_link]="soft link" [h5_virtual]="virtual dataset"
  [h5_unknown_filter]="not built into HDF5" [h5_labels_etc_passwd]="external storage")
for f in "$T"/h/*.h5; do
  name=$(basename "$f" .h5)
  sum=$(sha256sum < "$f")
  for cmd in "info $f" "info $f --json" "latents --model $MODEL --sae $f --text hello --top 64" \
             "encode --model $MODEL --sae $f --text hello -o $T/enc.npy" "label $f --latent 0 --text x" \
             "convert $f -o $T/conv.h5"; do
    rm -f "$T/enc.npy" "$T/conv.h5"
    # shellcheck disable=SC2086
    timeout -k 5 60 "$BIN" $cmd >"$T/out" 2>"$T/err"; rc=$?
    what="$name: saesteer ${cmd%% *}"
    if [ $rc -ne 2 ]; then bad "$what: exit $rc, expected 2 ($(head -c 200 "$T/err"))"
    elif [ "$(wc -l < "$T/err")" -ne 1 ]; then bad "$what: $(wc -l < "$T/err") lines on stderr"
    elif ! grep -q "${WHY[$name]}" "$T/err"; then bad "$what: message does not say '${WHY[$name]}': $(cat "$T/err")"
    elif foreign_in "$T/out" "$T/err"; then bad "$what: foreign bytes in the output"
    elif [ -e "$T/enc.npy" ] || [ -e "$T/conv.h5" ]; then bad "$what: wrote an output"
    elif [ "$(sha256sum < "$f")" != "$sum" ]; then bad "$what: changed the dictionary"
    else ok "$what: exit 2: $(cut -c1-110 "$T/err")"; fi
  done
done

# ---- 2. the caller ignores SIGCHLD (the kernel then reaps the reader child itself): a corrupt file is
#         still refused, a good one still read
cp "$ROOT/tests/fuzz/regressions/h5/libhdf5_gheap_object_overruns_16B.h5" "$T/corrupt.h5" 2>/dev/null ||
  head -c 9000 "$GOOD" > "$T/corrupt.h5"
"$PY" -c 'import os,signal,sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])' \
  "$BIN" info "$T/corrupt.h5" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && ok "SIGCHLD ignored: corrupt file refused (exit 2)" || bad "SIGCHLD ignored: corrupt file exit $rc: $(cat "$T/err")"
"$PY" -c 'import os,signal,sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])' \
  "$BIN" info "$T/good.h5" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "SIGCHLD ignored: good file read" || bad "SIGCHLD ignored: good file exit $rc: $(cat "$T/err")"
# a 4-byte mutant of a valid dictionary that the old forked probe read cleanly and then crashed the
# parent in H5Aexists (exit 139): now the parent never parses the file
"$BIN" info "$ROOT/tests/fuzz/cli_regressions/parent_segv_H5Aexists_4byte_mutant.h5" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -lt 128 ] && ok "parent-crash mutant: exit $rc" || bad "parent-crash mutant: killed by signal $((rc-128))"
# a FIFO given as the dictionary must not hang
mkfifo "$T/fifo.h5"
timeout -k 2 20 "$BIN" info "$T/fifo.h5" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && ok "FIFO as dictionary: exit 2: $(cat "$T/err")" || bad "FIFO as dictionary: exit $rc"

# ---- 3. mutation smoke through the real CLI
N=${MUTANTS:-200}
[ -n "${ASAN_OPTIONS:-}" ] && N=${MUTANTS:-60}   # .ci/sanitize.sh: every run forks an ASan child
mkdir -p "$T/m"
"$PY" - "$T/m" "$N" "$T/good.h5" "$T"/h/*.h5 <<'EOF' || { echo "FAIL could not write the mutants"; exit 1; }
import random, sys
out, n, srcs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rng = random.Random(13)
data = [open(s, "rb").read() for s in srcs]
for i in range(n):
    b = bytearray(data[0] if i % 2 == 0 else data[1 + (i // 2) % (len(data) - 1)])
    for _ in range(rng.choice([1, 1, 2, 4])):
        w = rng.choice([1, 2, 4, 8]); o = rng.randrange(len(b) - w)
        b[o:o + w] = rng.randbytes(w) if rng.random() < 0.7 else bytes([rng.choice([0, 0xff])]) * w
    open(f"{out}/m{i:04d}.h5", "wb").write(b)
EOF
deaths=0; hangs=0; leaks=0; multi=0; accepted=0; refused=0; i=0
for f in "$T"/m/*.h5; do
  cmds=("info $f --json")
  [ $((i % 10)) -eq 0 ] && cmds+=("latents --model $MODEL --sae $f --text hello --top 64")
  for cmd in "${cmds[@]}"; do
    # shellcheck disable=SC2086
    timeout -k 5 60 "$BIN" $cmd >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then hangs=$((hangs+1)); cp "$f" "$T/hang_$(basename "$f")"; echo "  hang: $cmd"
    elif [ $rc -ge 128 ]; then deaths=$((deaths+1)); echo "  signal $((rc-128)): $cmd: $(head -c 200 "$T/err")"
    elif foreign_in "$T/out" "$T/err"; then leaks=$((leaks+1)); echo "  foreign bytes: $cmd"
    elif [ $rc -ne 0 ] && [ "$(wc -l < "$T/err")" -ne 1 ]; then multi=$((multi+1)); echo "  $(wc -l < "$T/err") lines: $cmd"
    elif [ $rc -eq 0 ]; then accepted=$((accepted+1)); else refused=$((refused+1)); fi
  done
  i=$((i+1))
done
msg="$N mutants: $accepted runs accepted, $refused refused; $deaths signal deaths, $hangs hangs, $leaks with foreign bytes, $multi multi-line errors"
[ $((deaths + hangs + leaks + multi)) -eq 0 ] && ok "$msg" || bad "$msg"

# ---- 4. the file is renamed over while being read: never a mix of the two
"$PY" - "$T/good.h5" "$T/other.h5" <<'EOF' || { echo "FAIL could not write the second dictionary"; exit 1; }
import shutil, sys, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:   # same sizes, different contents: a mix would be read as one
    for k in ("W_enc", "W_dec", "b_dec"):
        a = f[k][...]; del f[k]; f.create_dataset(k, data=(a * 2).astype(np.float32))
EOF
"$BIN" info "$T/good.h5" --json > "$T/info_a.json" && "$BIN" info "$T/other.h5" --json > "$T/info_b.json" ||
  { bad "info on the two dictionaries"; }
sed -i "s|$T/other.h5|$T/d.h5|; s|$T/good.h5|$T/d.h5|" "$T/info_a.json" "$T/info_b.json"
cp "$T/good.h5" "$T/d.h5"
( while [ ! -e "$T/stop" ]; do cp "$T/good.h5" "$T/d.tmp1" && mv "$T/d.tmp1" "$T/d.h5";
    cp "$T/other.h5" "$T/d.tmp2" && mv "$T/d.tmp2" "$T/d.h5"; done ) &
swapper=$!
mixed=0; runs=0; errs=0
for _ in $(seq 1 40); do
  "$BIN" info "$T/d.h5" --json >"$T/out" 2>"$T/err"; rc=$?
  runs=$((runs+1))
  if [ $rc -eq 0 ]; then cmp -s "$T/out" "$T/info_a.json" || cmp -s "$T/out" "$T/info_b.json" || mixed=$((mixed+1))
  else errs=$((errs+1)); echo "  exit $rc: $(cat "$T/err")"; fi
done
touch "$T/stop"; wait $swapper
[ $mixed -eq 0 ] && [ $errs -eq 0 ] && ok "dictionary replaced during $runs reads: each read one whole file" ||
  bad "dictionary replaced during $runs reads: $mixed mixed, $errs errors"

echo "$((checks - fails))/$checks checks passed"
[ $fails -eq 0 ] && echo PASS
exit $((fails > 0))
