#!/usr/bin/env bash
# A closed loop, second by second (docs/BENCHMARKS.md, "Cold profiles over a minute"):
# the messages handled in each second beside the machine's dirty and under-writeback
# page cache, which shows the kernel's writeback bursts and what they do to the rate.
#   tests/bench/per_second.sh DIR [PROFILES] [SECONDS]
# Serves DIR in place (scenario 2's, /tmp/nudge-scenarios/s2, for cold profiles; it is
# changed by the run), drives 64 connections x 16 in flight over PROFILES (default
# 1,000,000) profiles for SECONDS (default 70), then prints one line per second and
# the loop's summary. Listens on 127.0.0.1:18094; the log goes under $OUT.
set -euo pipefail
source "$(dirname "$0")/wait_port.sh"

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-per-second}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
dir=${1:?usage: per_second.sh DIR [PROFILES] [SECONDS]}
profiles=${2:-1000000}
seconds=${3:-70}
[ -f "$dir/web.key" ] || { echo "$dir is not a data dir nudge has served (no web.key)" >&2; exit 1; }
mkdir -p "$OUT"
pid= bench=
trap '[ -n "$bench" ] && kill "$bench" 2>/dev/null; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

"$NUDGE" serve --listen 127.0.0.1:18094 --data "$dir" >"$OUT/nudge.log" 2>&1 &
pid=$!
wait_ready 18094 "$OUT/nudge.log"
token=$(cat "$dir/admin.token")

"$BENCH" --url ws://127.0.0.1:18094/v1/stream --key "$(cat "$dir/web.key")" --connections 64 --window 16 \
  --profiles "$profiles" --duration "${seconds}s" --warmup 0s >"$OUT/bench.out" 2>&1 &
bench=$!

echo "second  msgs/s  dirty_MB  writeback_MB  active_profiles"
prev=0
for s in $(seq 1 "$seconds"); do
  sleep 1
  stats=$(curl -s -H "Authorization: Bearer $token" http://127.0.0.1:18094/v1/stats)
  m=$(echo "$stats" | grep -o '"messages":[0-9]*' | cut -d: -f2)
  active=$(echo "$stats" | grep -o '"active":[0-9]*' | cut -d: -f2)
  dirty=$(awk '/^Dirty:/ {print int($2 / 1024)}' /proc/meminfo)
  wb=$(awk '/^Writeback:/ {print int($2 / 1024)}' /proc/meminfo)
  printf '%6d  %6d  %8d  %12d  %15s\n' "$s" $(( ${m:-0} - prev )) "$dirty" "$wb" "${active:-?}"
  prev=${m:-0}
done
wait "$bench"; bench=
grep -o '"rate":[0-9.]*\|"errors":[0-9]*' "$OUT/bench.out" | tr '\n' ' '; echo
