#!/usr/bin/env bash
# tests/bench/power_sync.sh RATE [CONFIG] [TRACE_SECONDS]
#
# One run of "power" durability's latency at a fixed rate: serves a fresh data dir
# with CONFIG (default: durability = "power"; see docs/BENCHMARKS.md, "A commit log
# for power durability"), creates 10,000 profiles with a 3 s closed loop, then runs
# a 10 s open loop at RATE and prints its summary. With TRACE_SECONDS, `perf trace`
# records the server's fdatasync / pwrite64 / pwritev calls for that long in the
# middle of the open loop and prints each call's duration distribution.
#
#   printf '[durability]\nmode = "power"\npower_sync = "log"\n' > /tmp/log.toml
#   tests/bench/power_sync.sh 2000 /tmp/log.toml 4
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:?usage: power_sync.sh RATE [CONFIG] [TRACE_SECONDS]}
CONFIG=${2:-}
TRACE=${3:-}
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-power-sync}
rm -rf "$OUT"; mkdir -p "$OUT/data"
if [ -z "$CONFIG" ]; then
  CONFIG=$OUT/power.toml
  printf '[durability]\nmode = "power"\n' >"$CONFIG"
fi
"$BUILD/app/nudge" serve --config "$CONFIG" --listen 127.0.0.1:18082 --data "$OUT/data" >"$OUT/nudge.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:18082/readyz && break; sleep 0.05; done
key=$(cat "$OUT/data/web.key")
bench() { "$BUILD/tests/bench/nudge_bench" --url ws://127.0.0.1:18082/v1/stream --key "$key" --connections 64 --profiles 10000 "$@" 2>/dev/null | grep '^{"summary"'; }
bench --duration 3s --warmup 1s >/dev/null
bench --mode open --rate "$RATE" --duration 10s --warmup 2s >"$OUT/open.json" &
bench_pid=$!
if [ -n "$TRACE" ]; then
  sleep 5
  timeout -s INT "$TRACE" perf trace -e fdatasync,pwrite64,pwritev -p "$pid" -o "$OUT/trace.txt" >/dev/null 2>&1 || true
fi
wait "$bench_pid"
echo "open loop at $RATE/s: $(grep -o '"rate":[0-9.]*\|"p50_us":[0-9]*\|"p99_us":[0-9]*\|"max_us":[0-9]*\|"send_lag_max_us":[0-9]*' "$OUT/open.json" | tr '\n' ' ')"
if [ -n "$TRACE" ]; then
  for call in fdatasync pwrite64 pwritev; do
    grep " $call(" "$OUT/trace.txt" | grep -o '( *[0-9.]* ms)' | tr -d '()ms ' | sort -n |
      awk -v c="$call" '{a[NR]=$1; s+=$1} END {if (NR) printf "%s: %d calls, mean %.3f ms, p50 %.3f, p99 %.3f, max %.3f\n", c, NR, s/NR, a[int(NR*0.5)+1], a[int(NR*0.99)+1], a[NR]}'
  done
fi
