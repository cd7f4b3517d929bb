#!/usr/bin/env bash
# The whole test run that CI does (`.ci/run` and the README's test command call it after
# deploy/install-deps.sh). Four stages, each failing the run:
#   1. build (RelWithDebInfo, build/) and every test: unit, integration, crash loop;
#   2. build-asan/: a Debug build with AddressSanitizer + UndefinedBehaviorSanitizer and
#      every test again (the integration tests then drive the sanitized server);
#   3. build-tsan/: ThreadSanitizer, only the server and the tests that run it
#      (see thread_sanitized below);
#   4. the libFuzzer targets, FUZZ_SECONDS (default here 30; run.sh's own is 60) each
#      (tests/fuzz/run.sh): a regression check of the seeds and a short search; a long
#      search is `FUZZ_SECONDS=600 tests/fuzz/run.sh`.
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

# Debian's libcaf_core is not built with TSan, so TSan sees neither CAF's lock-free
# mailbox nor its reference counts; tests/tsan.supp says which reports that leaves out
# and why. Every thread of our own (io threads, journal writer, timer and outbox
# services, the outbound HTTP client, the retention sweeper) and every lock and atomic
# in our code is instrumented. Reports go to build-tsan/tsan/ (the server's included);
# any report fails the stage. Only nudge and the tests that need it are built.
thread_sanitized() {
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
    -DNUDGE_SANITIZE=thread "${launcher[@]}" >/dev/null
  cmake --build build-tsan -j"$jobs" --target nudge integration_test actors_test
  rm -rf build-tsan/tsan
  mkdir -p build-tsan/tsan
  local status=0
  TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$PWD/build-tsan/tsan/report:suppressions=$PWD/tests/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure -j"$jobs" --timeout 300 \
      -R "$tsan_tests" -E "$tsan_skip" || status=$?
  if compgen -G "build-tsan/tsan/report*" >/dev/null; then
    cat build-tsan/tsan/report*
    echo "ThreadSanitizer reported the above"
    return 1
  fi
  return "$status"
}

# Every integration test and the actors' unit tests (the id generator's threads), but
# not the 50,000-timer flood, whose bounded loop needs the plain build's throughput (its
# stats call times out under TSan; delivery runs in the other schedule tests).
tsan_tests='^(actors/|[^/]*$)'
tsan_skip='NOT_BUILT|bench_smoke|50,000 timers'

start=$SECONDS
stage "build and test" plain
stage "ASan+UBSan build and test" sanitized
stage "ThreadSanitizer build and test" thread_sanitized
stage "fuzz" env FUZZ_SECONDS="${FUZZ_SECONDS:-30}" tests/fuzz/run.sh
echo "==== all green in $((SECONDS - start)) s"
