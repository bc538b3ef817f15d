#!/bin/bash
# .ci/sanitize.sh - build the library, the CLI and every test with
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) and run the
# whole ctest suite (CUnit suites and tests/cli_*.sh, which then exercise the
# sanitized saesteer binary). Any report aborts the process that hit it, so
# the test that ran it fails. Zero reports is the bar.
#
#   .ci/sanitize.sh [BUILD_DIR]        (default build-sanitize; ctest args via CTEST_ARGS)
#
# Runtime on the 2-core dev machine: see tests/fuzz/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-sanitize}
jobs=${JOBS:-2}
cmake -S "$root" -B "$build" -DSAESTEER_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice -n 10 cmake --build "$build" -j"$jobs"
# abort_on_error: a report kills the process with SIGABRT, so no test can
# mistake it for an ordinary exit 1. LSan runs at every exit.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:detect_invalid_pointer_pairs=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/.ci/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
cd "$build"
nice -n 10 ctest -j"$jobs" --output-on-failure ${CTEST_ARGS:-}
