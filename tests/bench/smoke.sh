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

# Open loop with interval lines: the send lag and the latency from the actual send are
# reported, and no percentile of the latter exceeds that of the latency from the
# intended time (each sample is the latency less a lag of zero or more).
timeout 20 "$bench_bin" --url "ws://127.0.0.1:$port/v1/stream" --key smoke-key \
    --duration 2s --warmup 0s --connections 4 --mode open --rate 2000 --interval 500ms \
    --fail-on-error | tee "$work/bench-open.out"
summary=$(grep '^{"summary":{"messages":[1-9]' "$work/bench-open.out") || {
    echo "smoke: no open-loop summary line with messages > 0" >&2
    exit 1
}
field() { grep -o "\"$1\":[0-9]*" <<<"$summary" | cut -d: -f2; }
for name in p99_us max_us send_lag_p99_us send_lag_max_us from_send_p99_us from_send_max_us; do
    [[ -n "$(field "$name")" ]] || { echo "smoke: the summary lacks $name" >&2; exit 1; }
done
if (( $(field from_send_p99_us) > $(field p99_us) || $(field from_send_max_us) > $(field max_us) )); then
    echo "smoke: latency from the actual send exceeds latency from the intended time" >&2
    exit 1
fi
grep -q '^{"interval":{.*"send_lag_max_us":[0-9]' "$work/bench-open.out" || {
    echo "smoke: no interval line with send_lag_max_us" >&2
    exit 1
}
echo "smoke: ok"
