#!/usr/bin/env bash
# bench_smoke_nudge: scenario (1) of docs/BENCHMARKS.md for 5 seconds against the real
# `nudge serve` (fresh data dir, embedded default, loopback port 0): 64 connections,
# 10,000 profiles, the retail mix. Passes when the run completes with zero errors; it
# asserts no timing.
# Usage: smoke_nudge.sh NUDGE NUDGE_BENCH
set -euo pipefail
source "$(dirname "$0")/wait_port.sh"

nudge_bin=$1
bench_bin=$2
work=$(mktemp -d)
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

timeout 60 "$nudge_bin" serve --listen 127.0.0.1:0 --data "$work/data" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

wait_port "$server_pid" "$work/server.out" nudge || { cat "$work/server.err" >&2; exit 1; }
key=$(cat "$work/data/web.key")
echo "smoke: nudge on port $port"

timeout 30 "$bench_bin" --url "ws://127.0.0.1:$port/v1/stream" --key "$key" \
    --connections 64 --profiles 10000 --window 16 --duration 5s --warmup 1s --interval 1s --fail-on-error \
    | tee "$work/bench.out"
grep -q '^{"summary":{"messages":[1-9]' "$work/bench.out" || {
    echo "smoke: no summary line with messages > 0" >&2
    exit 1
}
grep -q '^{"interval":{"t_s":1.000,"replies":[1-9]' "$work/bench.out" || {
    echo "smoke: no interval line with replies > 0" >&2
    exit 1
}
echo "smoke: ok"
