#!/bin/bash
# Run fuzz targets one after another, niced, one process each (libFuzzer's
# default single-process mode; -jobs=1 would fork a child logging to ./fuzz-0.log).
#
#   tests/fuzz/run.sh BUILD RUNS SECONDS [TARGET...]
#
# BUILD is the fuzz build dir (cmake -S tests/fuzz -B BUILD -DCMAKE_C_COMPILER=clang),
# whose corpus/ holds the seeds (make_corpus.sh BUILD/corpus). Each target
# runs until RUNS executions or SECONDS seconds, whichever comes first, and
# keeps what it learns in BUILD/work/TARGET (seeds stay untouched). Crashes,
# leaks, timeouts and OOMs land in BUILD/artifacts/TARGET-*. Logs go to
# BUILD/logs/TARGET.log and one line per target to BUILD/logs/summary.tsv:
#   target  execs  seconds  cov  features  corpus_units  exit  artifacts
# Exit status: 0 if every target finished without a finding.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD RUNS SECONDS [TARGET...]}
runs=${2:?}; secs=${3:?}; shift 3
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$build"/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
mkdir -p "$build/logs" "$build/artifacts" "$build/work"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fail=0
for t in "${targets[@]}"; do
    exe="$build/fuzz_$t"
    if [ ! -x "$exe" ]; then echo "run.sh: no $exe, skipped" >&2; continue; fi
    opts=(-runs="$runs" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-")
    case $t in
        safetensors|config|saelens_cfg|tokenizer_load) opts+=(-dict="$here/json.dict") ;;
    esac
    case $t in
        tokenize|specs) opts+=(-max_len=4096) ;;
        # libhdf5 itself allocates what a corrupted file says and can crash on it (in production
        # sae_h5.c's forked probe absorbs that; fuzz builds read in-process, see shim_nofork.c):
        # fork mode keeps going past such findings; triage the artifacts (frames in sae/ = ours).
        h5) opts+=(-max_len=32768 -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1) ;;
    esac
    # h5: a failed huge malloc returns NULL to libhdf5, as the probe's memory cap does in production
    asan=${ASAN_OPTIONS:-}
    [ "$t" = h5 ] && asan="allocator_may_return_null=1:max_allocation_size_mb=2048${asan:+:$asan}"
    mkdir -p "$build/work/$t" "$build/corpus/$t"
    before=$(ls "$build/artifacts" | grep -c "^$t-" || true)
    start=$(date +%s.%N)
    ASAN_OPTIONS=$asan nice -n 19 "$exe" "${opts[@]}" "$build/work/$t" "$build/corpus/$t" >"$build/logs/$t.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    after=$(ls "$build/artifacts" | grep -c "^$t-" || true)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$build/logs/$t.log" | grep -oE '[0-9]+$' | tail -1)
    last=$(grep -E '^#[0-9]+' "$build/logs/$t.log" | tail -1)
    [ -z "$execs" ] && execs=$(echo "$last" | grep -oE '^#[0-9]+' | tr -d '#')   # fork mode
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
    corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+')
    printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "$(echo "$end - $start" | bc)" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$rc" "$((after - before))" | tee -a "$build/logs/summary.tsv"
    [ "$rc" -ne 0 ] && fail=1
done
exit $fail
