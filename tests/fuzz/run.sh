#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, a separate build dir) and runs each
# for FUZZ_SECONDS (default 60), starting from its seed corpus in tests/fuzz/corpus/.
# Fails on any crash, leak, timeout, out-of-memory or sanitizer report.
#   FUZZ_SECONDS=10 tests/fuzz/run.sh                 # all targets
#   FUZZ_SECONDS=10 tests/fuzz/run.sh decode_json     # some
# Findings are written to build-fuzz/artifacts/; the corpus grown by a run stays in
# build-fuzz/corpus/ (the seeds in the repository are not touched).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_json decode_msgpack policy_compile webhook config_parse reply_pack)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -DNUDGE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/ubsan.supp:${UBSAN_OPTIONS:-}"
mkdir -p "$build/artifacts"
failed=()
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  echo "== fuzz_$t for ${seconds}s"
  # Every seed (and every input once found to crash) is run first, then new inputs.
  if ! "$build/tests/fuzz/fuzz_$t" "$work" "$root/tests/fuzz/corpus/$t" \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
      >"$build/artifacts/$t.log" 2>&1; then
    failed+=("$t")
    grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$build/artifacts/$t.log" | head -20 || true
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$build/artifacts/$t.log" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing FAILED: ${failed[*]} (logs and inputs in $build/artifacts/)"
  exit 1
fi
echo "fuzzing passed: ${targets[*]}"
