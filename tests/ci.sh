#!/usr/bin/env bash
# The whole test run that CI does (`.ci/run` and the README's test command call it after
# deploy/install-deps.sh). Three stages, each failing the run:
#   1. build (RelWithDebInfo, build/) and every test: unit, integration, crash loop;
#   2. build-asan/: a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer and
#      every test again (the integration tests then drive the sanitized server);
#   3. the libFuzzer targets, FUZZ_SECONDS (default 60) each (tests/fuzz/run.sh).
# Budget: 45 minutes on 2 cores. Each stage prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${CI_JOBS:-2}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

stage() {
  local name="$1"
  shift
  local start=$SECONDS
  echo "==== $name"
  "$@"
  echo "==== $name: $((SECONDS - start)) s"
}

plain() {
  cmake -S . -B build "${launcher[@]}" >/dev/null
  cmake --build build -j"$jobs"
  ctest --test-dir build --output-on-failure -j"$jobs"
}

sanitized() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNUDGE_SANITIZE=address,undefined "${launcher[@]}" >/dev/null
  cmake --build build-asan -j"$jobs"
  # halt_on_error: a UBSan report fails the test (it only prints by default); the
  # server's own reports fail the integration tests through its exit or its replies.
  # The timer flood runs at 50,000 in the plain build; sanitized code is ~10x slower,
  # so here it checks the same path with 5,000.
  NUDGE_TIMERS=5000 \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/ubsan.supp" \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 600
}

start=$SECONDS
stage "build and test" plain
stage "ASan+UBSan build and test" sanitized
stage "fuzz" tests/fuzz/run.sh
echo "==== all green in $((SECONDS - start)) s"
