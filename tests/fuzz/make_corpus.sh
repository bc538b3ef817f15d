#!/bin/bash
# Build the seed corpora for the fuzz targets: make_corpus.sh OUTDIR
# (small valid files of every format, near-misses, and small fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: make_corpus.sh OUTDIR}
rm -rf "$out"
mkdir -p "$out"
/usr/bin/python3 "$here/make_corpus.py" "$out"
