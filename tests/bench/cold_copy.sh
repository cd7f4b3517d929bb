#!/usr/bin/env bash
# One loop over a copy of a filled data dir (docs/BENCHMARKS.md, "Huge pages for the
# heap"): the copy is synced before nudge starts, so that every run begins from the same
# file with its pages cached and clean, and the dir itself is left as it was.
#   tests/bench/cold_copy.sh DIR [PROFILES] [CONFIG]
# Copies DIR (scenario 2's, /tmp/nudge-scenarios/s2) to $OUT/copy, serves it (with
# CONFIG, if given), drives 64 connections over PROFILES (default 1,000,000) profiles
# for 10 s (a closed loop of 16 in flight each; with RATE=N an open loop at N msgs/s),
# then prints the loop's summary and the service's minor page faults and user / system
# CPU per reply. TUNABLES=... runs nudge alone with GLIBC_TUNABLES=..., for an A/B of
# malloc's settings. Listens on 127.0.0.1:18095; the log goes under $OUT.
set -euo pipefail
source "$(dirname "$0")/wait_port.sh"
source "$(dirname "$0")/proc_counts.sh"

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-cold-copy}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
src=${1:?usage: cold_copy.sh DIR [PROFILES] [CONFIG]}
profiles=${2:-1000000}
config=${3:-}
[ -f "$src/web.key" ] || { echo "$src is not a data dir nudge has served (no web.key)" >&2; exit 1; }
mkdir -p "$OUT"
rm -rf "$OUT/copy"
cp -a --sparse=always "$src" "$OUT/copy"
sync
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

if [ -n "${TUNABLES+set}" ]; then
  GLIBC_TUNABLES=$TUNABLES "$NUDGE" serve ${config:+--config "$config"} --listen 127.0.0.1:18095 --data "$OUT/copy" >"$OUT/nudge.log" 2>&1 &
else
  "$NUDGE" serve ${config:+--config "$config"} --listen 127.0.0.1:18095 --data "$OUT/copy" >"$OUT/nudge.log" 2>&1 &
fi
pid=$!
wait_ready 18095 "$OUT/nudge.log"

before=$(kernel_counts "$pid")
summary=$("$BENCH" --url ws://127.0.0.1:18095/v1/stream --key "$(cat "$OUT/copy/web.key")" --connections 64 \
  ${RATE:+--mode open --rate "$RATE"} --profiles "$profiles" --duration 10s --warmup 0s --drain 2s 2>/dev/null |
  grep '^{"summary"')
after=$(kernel_counts "$pid")
echo "$summary" | grep -o '"rate":[0-9.]*\|"errors":[0-9]*\|"p50_us":[0-9]*\|"p99_us":[0-9]*\|"max_us":[0-9]*' | paste -sd' '
kernel_per_reply "$before" "$after" "$(echo "$summary" | grep -o '"replies":[0-9]*' | cut -d: -f2)"
