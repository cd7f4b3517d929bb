#!/usr/bin/env bash
# bench_smoke_baseline: start echo_baseline on a free port, run nudge_bench against it
# briefly (JSON, then MessagePack), and pass when both runs exit 0 with no errors.
# Usage: smoke.sh ECHO_BASELINE NUDGE_BENCH
set -euo pipefail
source "$(dirname "$0")/wait_port.sh"

echo_bin=$1
bench_bin=$2
work=$(mktemp -d)
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

timeout 40 "$echo_bin" --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

wait_port "$server_pid" "$work/server.out" echo_baseline || { cat "$work/server.err" >&2; exit 1; }
echo "smoke: echo_baseline on port $port"

for format in json msgpack; do
    timeout 20 "$bench_bin" --url "ws://127.0.0.1:$port/v1/stream" --key smoke-key \
        --duration 2s --warmup 0s --connections 4 --format "$format" --fail-on-error \
        | tee "$work/bench-$format.out"
    grep -q '^{"summary":{"messages":[1-9]' "$work/bench-$format.out" || {
        echo "smoke: no summary line with messages > 0 ($format)" >&2
        exit 1
    }
done
echo "smoke: ok"
