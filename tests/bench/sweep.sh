#!/usr/bin/env bash
# tests/bench/sweep.sh [RATE ...]
#
# The open loop side by side: at each RATE (default 5000 10000 15000 20000 25000 30000)
# the same generator drives the echo baseline and nudge, alternated (REPS rounds,
# default 2; the order flips each round), and each point prints its latency beside how
# busy the whole machine was and what each side spent per reply. It answers whether a
# p99 is nudge's or the machine's: at equal rates, and at equal machine load, the bare
# transport's p99 is the floor nudge's cannot go under (docs/BENCHMARKS.md, "The open
# loop side by side").
#
# Each nudge point serves a fresh data dir, creates its 10,000 profiles with a 3 s
# closed loop, then runs the open loop (DURATION 10s after WARMUP 2s); each echo point
# starts a fresh echo server, with ECHO_ARGS if set: `--work-us 30 --spin-us 100` makes
# it a model of nudge's I/O thread (30 µs of CPU per message, polling as nudge does).
# SERVERS="echo" (or "nudge") runs one side only. Listens on 127.0.0.1:18083. Columns:
#   server rate  achieved msgs/s  p50/p99/p99.9/max µs  send lag max µs
#   busy: the machine's CPU (all cores, /proc/stat) not idle over the open loop, in %
#   srv_us, gen_us: the server's and the generator's user + system CPU per reply
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-sweep}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
REPS=${REPS:-2}
SERVERS=${SERVERS:-echo nudge}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(5000 10000 15000 20000 25000 30000)
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
ECHO=$BUILD/tests/bench/echo_baseline
source tests/bench/wait_port.sh
mkdir -p "$OUT"
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true' EXIT

# busy_now: "BUSY TOTAL" jiffies of all cores so far (idle and iowait are not busy).
busy_now() { awk '/^cpu /{t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t}' /proc/stat; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { grep -o "\"$1\":[0-9.]*" <<<"$2" | cut -d: -f2 | cut -d. -f1; }
ffield() { grep -o "\"$1\":[0-9.]*" <<<"$2" | cut -d: -f2; }

# point NAME RATE: one open loop against the server already started on 18083.
point() {
  local name=$1 rate=$2 key=${3:-} b0 t0 s0 b1 t1 s1 line
  local keyargs=(); [ -n "$key" ] && keyargs=(--key "$key")
  read -r b0 t0 < <(busy_now); s0=$(ticks "$server")
  line=$("$BENCH" --url ws://127.0.0.1:18083/v1/stream "${keyargs[@]}" --connections 64 --profiles 10000 \
    --mode open --rate "$rate" --duration "$DURATION" --warmup "$WARMUP" 2>/dev/null | grep '^{"summary"')
  read -r b1 t1 < <(busy_now); s1=$(ticks "$server")
  echo "$line" >>"$OUT/points.json"
  local replies; replies=$(field replies "$line")
  printf '%-5s %6d %8d %7d %8d %8d %8d %8d %5d %6.1f %6s %s\n' "$name" "$rate" "$(field rate "$line")" \
    "$(field p50_us "$line")" "$(field p99_us "$line")" "$(field p999_us "$line")" "$(field max_us "$line")" \
    "$(field send_lag_max_us "$line")" "$(( (b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1) ))" \
    "$(awk -v t="$((s1 - s0))" -v hz="$(getconf CLK_TCK)" -v n="$replies" 'BEGIN{print t * 1e6 / hz / (n > 0 ? n : 1)}')" \
    "$(ffield gen_cpu_us_per_reply "$line")" "$(field errors "$line")"
}

run_echo() {
  [[ " $SERVERS " == *" echo "* ]] || return 0
  # shellcheck disable=SC2086  # ECHO_ARGS: several words
  "$ECHO" --listen 127.0.0.1:18083 ${ECHO_ARGS:-} >"$OUT/echo.log" 2>&1 &
  server=$!
  sleep 0.5
  point echo "$1"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

run_nudge() {
  [[ " $SERVERS " == *" nudge "* ]] || return 0
  rm -rf "$OUT/data"; mkdir -p "$OUT/data"
  "$NUDGE" serve --listen 127.0.0.1:18083 --data "$OUT/data" ${NUDGE_CONFIG:+--config "$NUDGE_CONFIG"} >"$OUT/nudge.log" 2>&1 &
  server=$!
  wait_ready 18083 "$OUT/nudge.log"
  local key; key=$(cat "$OUT/data/web.key")
  "$BENCH" --url ws://127.0.0.1:18083/v1/stream --key "$key" --connections 64 --profiles 10000 \
    --duration 3s --warmup 1s >/dev/null 2>&1
  point nudge "$1" "$key"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

: >"$OUT/points.json"
echo "server  rate achieved  p50_us   p99_us p99.9_us   max_us  lag_us busy% srv_us gen_us errors"
for round in $(seq 1 "$REPS"); do
  for rate in "${RATES[@]}"; do
    if [ $((round % 2)) -eq 1 ]; then run_echo "$rate"; run_nudge "$rate"
    else run_nudge "$rate"; run_echo "$rate"; fi
  done
done
