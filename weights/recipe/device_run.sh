#!/usr/bin/env bash
# The command that ran on the GPU machine (one H100/H200, reached through saesteer's `device` tool)
# to make tests/fixtures/ and weights/model, weights/saes. Everything must end inside one 600 s call.
#
#   OUT=/dir bash weights/recipe/device_run.sh [fixtures] [model] [saes]     (default: all three)
#
# Needs corpus/train.txt(.gz|.xz) and corpus/heldout.txt(...) from fetch_corpus.sh (carried along,
# the corpus is gitignored). Stage end times (seconds since this script started) can be moved with
# MODEL_END (default 360) and SAE_END (default 570). What comes back in $OUT (at most 8 files):
#   fixtures.tar fixtures.log train.log sae.log model.tar.part-* (model + train_metrics.json, split
#   into 15 MB pieces) saes.tar (the two .h5 + sae_metrics.json).
# Back on the development machine:
#   tar xf fixtures.tar -C tests/ && python3 tests/make_fixtures.py --links-only
#   cat model.tar.part-* | tar xf - -C weights/model && cp weights/gpt2-tokenizer/* weights/model/
#   tar xf saes.tar -C weights/saes
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
MODEL_END=${MODEL_END:-360}
SAE_END=${SAE_END:-570}
stages="${*:-fixtures model saes}"
mkdir -p "$OUT" /tmp/res /tmp/tok /tmp/saes
nvidia-smi -L || true
python3 -c "import transformers, torch, safetensors, h5py; print('transformers', transformers.__version__, 'torch', torch.__version__, 'safetensors', safetensors.__version__, 'h5py', h5py.__version__)"

if [[ " $stages " == *" fixtures "* ]]; then
    timeout 150 python3 tests/make_fixtures.py --out tests/fixtures --tar "$OUT/fixtures.tar" > "$OUT/fixtures.log" 2>&1
    echo "fixtures rc=$? at ${SECONDS}s"; tail -5 "$OUT/fixtures.log"
fi

if [[ " $stages " == *" model "* ]]; then
    python3 weights/recipe/train_model.py --corpus corpus --out weights/model --metrics /tmp/res/train_metrics.json \
        --save-tokens /tmp/tok --deadline-seconds $((MODEL_END - SECONDS)) 2>&1 | tee "$OUT/train.log" | grep -v "  step "
    echo "model rc=${PIPESTATUS[0]} at ${SECONDS}s"
    if [ -f weights/model/model.safetensors ]; then
        cp /tmp/res/train_metrics.json weights/model/ 2>/dev/null
        (cd weights/model && tar cf /tmp/model.tar config.json generation_config.json model.safetensors train_metrics.json 2>/dev/null; \
         split -b 15m /tmp/model.tar "$OUT/model.tar.part-")
        rm -f weights/model/train_metrics.json
    fi
fi

if [[ " $stages " == *" saes "* ]]; then
    tok_arg="--corpus corpus"
    [ -f /tmp/tok/train.npy ] && tok_arg="--tokens /tmp/tok"
    python3 weights/recipe/train_saes.py --model weights/model $tok_arg --out /tmp/saes \
        --metrics /tmp/saes/sae_metrics.json --deadline-seconds $((SAE_END - SECONDS)) 2>&1 | tee "$OUT/sae.log" | grep -v " step "
    echo "saes rc=${PIPESTATUS[0]} at ${SECONDS}s"
    (cd /tmp/saes && tar cf "$OUT/saes.tar" *.h5 sae_metrics.json 2>/dev/null)
fi
ls -la "$OUT"
