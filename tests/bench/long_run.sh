#!/usr/bin/env bash
# The closed loop over 45 s (docs/BENCHMARKS.md, "The closed loop over 45 s"): how much
# of its rate, and of its CPU per message, a steady load keeps once the kernel starts
# writing the data file back (~30 s after the first dirty pages).
#   tests/bench/long_run.sh [CONFIG]
# Serves a fresh data dir (with CONFIG as its config file, if given), drives a closed
# loop of 64 connections x 16 in flight over 10,000 profiles for 45 s, and prints the
# messages per second and the service's user + system µs per message in seconds 3-13
# (early) and 25-40 (late), read from /v1/stats and /proc/PID/stat, then the data
# file's size. Listens on 127.0.0.1:18093; the data dir goes under $OUT. Takes ~50 s.
set -euo pipefail
source "$(dirname "$0")/wait_port.sh"

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-long-run}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
dir=$OUT/data
rm -rf "$dir"
mkdir -p "$dir"
config=()
[ -n "${1:-}" ] && config=(--config "$1")
pid= bench=
trap '[ -n "$bench" ] && kill "$bench" 2>/dev/null; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

"$NUDGE" serve "${config[@]}" --listen 127.0.0.1:18093 --data "$dir" >"$OUT/nudge.log" 2>&1 &
pid=$!
wait_ready 18093 "$OUT/nudge.log"
token=$(cat "$dir/admin.token")

"$BENCH" --url ws://127.0.0.1:18093/v1/stream --key "$(cat "$dir/web.key")" --connections 64 --window 16 \
  --profiles 10000 --duration 45s --warmup 0s >"$OUT/bench.out" 2>&1 &
bench=$!

# sample: messages handled so far, user ticks, system ticks.
sample() {
  local m
  m=$(curl -s -H "Authorization: Bearer $token" http://127.0.0.1:18093/v1/stats | grep -o '"messages":[0-9]*' | cut -d: -f2)
  echo "${m:-0} $(awk '{print $14, $15}' "/proc/$pid/stat")"
}
sleep 3;  s3=$(sample)
sleep 10; s13=$(sample)
sleep 12; s25=$(sample)
sleep 15; s40=$(sample)
wait "$bench"; bench=
errors=$(grep -o '"errors":[0-9]*' "$OUT/bench.out" | cut -d: -f2)

python3 - "$(getconf CLK_TCK)" "$s3" "$s13" "$s25" "$s40" <<'PY'
import sys
tck = int(sys.argv[1])
s = [list(map(int, a.split())) for a in sys.argv[2:6]]
def window(a, b, seconds):
    n = max(b[0] - a[0], 1)
    return f"{n / seconds:,.0f} msgs/s, {(b[1] - a[1]) * 1e6 / tck / n:.0f} + {(b[2] - a[2]) * 1e6 / tck / n:.0f} µs per message"
print(f"early (s 3-13): {window(s[0], s[1], 10)}")
print(f"late (s 25-40): {window(s[2], s[3], 15)}")
PY
echo "data file: $(du -m "$dir/data.mdb" | cut -f1) MB; generator errors: ${errors:-?}"
[ "${errors:-1}" = 0 ]
