#!/usr/bin/env bash
# The commands that ran on the GPU machine (one H200, reached through saesteer's `device` tool) to make
# weights/model and weights/saes (and, in the first model's time, tests/fixtures/).
#
#   OUT=/dir bash weights/recipe/device_run.sh model     first call: tokenise, size sweep, train
#   OUT=/dir bash weights/recipe/device_run.sh saes      second call, same machine: SAEs + the rest
#   OUT=/dir bash weights/recipe/device_run.sh fixtures  tests/make_fixtures.py (GPT-2 test fixtures)
#
# The corpus travels compressed in a git-ignored folder named by CORPUS_XZ (default corpus_dev):
# train.txt.xz, heldout.txt.xz, relations.json.xz from fetch_corpus.sh. One call may run 600 s and
# bring back 8 files of at most 16 MiB, 64 MiB together, so the f16 model (~67 MB) comes back in
# 15 MiB pieces over the two calls: `model` returns as many pieces as fit (model.tar.part-aa..ad),
# `saes` the rest. Between the calls the machine stays warm (a call within 30 s keeps it), which is
# what keeps /root/ss (model, token streams) there. Back on the development machine:
#   cat model.tar.part-* | tar xf - -C weights/model && cp weights/gpt2-tokenizer/* weights/model/
#   tar xf saes.tar -C weights/saes
# Times: MODEL_END (default 575) is the `model` stage's deadline in seconds since the script started.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
CORPUS_XZ=${CORPUS_XZ:-corpus_dev}
MODEL_END=${MODEL_END:-575}
SWEEP=${SWEEP:-320x8,384x6,384x8}
SWEEP_SECONDS=${SWEEP_SECONDS:-15}
W=/root/ss
stage="${1:-model}"
mkdir -p "$OUT" "$W"
nvidia-smi -L || true
python3 -c "import transformers, torch, safetensors, h5py; print('transformers', transformers.__version__, 'torch', torch.__version__, 'safetensors', safetensors.__version__, 'h5py', h5py.__version__)"

case "$stage" in
fixtures)
    timeout 150 python3 tests/make_fixtures.py --out tests/fixtures --tar "$OUT/fixtures.tar" > "$OUT/fixtures.log" 2>&1
    echo "fixtures rc=$? at ${SECONDS}s"; tail -5 "$OUT/fixtures.log"
    ;;
model)
    mkdir -p "$W/corpus" "$W/res" "$W/tok"
    for f in train.txt heldout.txt relations.json; do xz -dc -T0 "$CORPUS_XZ/$f.xz" > "$W/corpus/$f" & done
    wait
    ls -la "$W/corpus"; echo "unpacked at ${SECONDS}s"
    python3 weights/recipe/train_model.py --corpus "$W/corpus" --out "$W/model" --metrics "$W/res/train_metrics.json" \
        --episodes "$W/corpus/relations.json" --sweep "$SWEEP" --sweep-seconds "$SWEEP_SECONDS" \
        --save-tokens "$W/tok" --deadline-seconds $((MODEL_END - SECONDS)) 2>&1 | tee "$OUT/train.log" | grep -v "  step "
    echo "model rc=${PIPESTATUS[0]} at ${SECONDS}s"
    if [ -f "$W/model/model.safetensors" ]; then
        cp "$W/res/train_metrics.json" "$W/model/"
        (cd "$W/model" && tar cf "$W/model.tar" config.json generation_config.json model.safetensors train_metrics.json)
        rm -f "$W/model/train_metrics.json"
        (cd "$W" && rm -f model.tar.part-* && split -b 15m model.tar model.tar.part-)
        sha256sum "$W/model.tar" | tee "$OUT/model.tar.sha256"
        n=0
        for p in "$W"/model.tar.part-*; do   # 4 pieces (60 MiB) + the logs fit in one reply
            [ $n -lt 4 ] && cp "$p" "$OUT/" && n=$((n + 1))
        done
        cp "$W/res/train_metrics.json" "$OUT/"
    fi
    ;;
saes)
    n=0
    for p in "$W"/model.tar.part-*; do
        n=$((n + 1)); [ $n -gt 4 ] && cp "$p" "$OUT/"
    done
    mkdir -p "$W/saes"
    python3 weights/recipe/train_saes.py --model "$W/model" --tokens "$W/tok" --out "$W/saes" \
        --metrics "$W/saes/sae_metrics.json" --d-sae "${D_SAE:-3072}" --seconds-per-sae "${SAE_SECONDS:-70}" \
        --deadline-seconds "${SAE_END:-420}" 2>&1 | tee "$OUT/sae.log" | grep -v " step "
    echo "saes rc=${PIPESTATUS[0]} at ${SECONDS}s"
    (cd "$W/saes" && tar cf "$OUT/saes.tar" *.h5 sae_metrics.json 2>/dev/null)
    ;;
esac
ls -la "$OUT"
