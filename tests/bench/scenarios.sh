#!/usr/bin/env bash
# The benchmark scenarios of docs/BENCHMARKS.md, one command each:
#   tests/bench/scenarios.sh 1    steady stream: nudge and the echo baseline side by side
#   tests/bench/scenarios.sh 2    cold profiles: PROFILES (1,000,000) stored, random access
#   tests/bench/scenarios.sh 3    memory: PROFILES (100,000) active with EVENTS (20) each
#   tests/bench/scenarios.sh 4    durability = "power" (POWER_SYNC=log: through the commit log)
#   tests/bench/scenarios.sh 5    restart: start to /readyz 200 over a filled data dir, clean and after a SIGKILL
#   tests/bench/scenarios.sh 6    POST /v1/events batches with wrk
# Run from the repository root after building (build/). Each prints what it measured;
# nudge_bench's JSON summary lines are kept in $OUT (default /tmp/nudge-scenarios).
# Filling a data dir stops after FILL_LIMIT seconds (default 3600) and then fails.
# Scenario 1 serves nudge with the config file NUDGE_CONFIG when it is set.
# Servers listen on 127.0.0.1 ports 18080/18081; data dirs live under $OUT.
set -euo pipefail
source "$(dirname "$0")/proc_counts.sh"

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-scenarios}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
ECHO=$BUILD/tests/bench/echo_baseline
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_nudge DIR [CONFIG]: serves DIR on 127.0.0.1:18080 and waits for /readyz.
start_nudge() {
  local dir=$1 config=${2:-}
  mkdir -p "$dir"
  if [ -n "$config" ]; then
    "$NUDGE" serve --config "$config" --listen 127.0.0.1:18080 --data "$dir" >>"$OUT/nudge.log" 2>&1 &
  else
    "$NUDGE" serve --listen 127.0.0.1:18080 --data "$dir" >>"$OUT/nudge.log" 2>&1 &
  fi
  nudge_pid=$!
  pids+=("$nudge_pid")
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null http://127.0.0.1:18080/readyz && return 0
    sleep 0.05
  done
  echo "nudge did not become ready (see $OUT/nudge.log)" >&2
  return 1
}

stop_nudge() { kill "$nudge_pid"; wait "$nudge_pid" 2>/dev/null || true; }
kill_nudge() { kill -9 "$nudge_pid"; wait "$nudge_pid" 2>/dev/null || true; }

# timed_start DIR: start_nudge DIR, with the milliseconds from exec to /readyz 200 (as
# polled by start_nudge) left in start_ms.
timed_start() {
  local t0; t0=$(date +%s%N)
  start_nudge "$1"
  start_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

stats() { curl -s -H "Authorization: Bearer $(cat "$1/admin.token")" http://127.0.0.1:18080/v1/stats; }

# run_bench LABEL ARGS...: one nudge_bench run; prints and keeps its summary line.
run_bench() {
  local label=$1; shift
  local line
  line=$("$BENCH" --duration "$DURATION" --warmup "$WARMUP" "$@" 2>/dev/null | grep '^{"summary"')
  echo "$line" >"$OUT/$label.json"
  echo "$label: $(echo "$line" | grep -o '"rate":[0-9.]*\|"errors":[0-9]*\|"p50_us":[0-9]*\|"p99_us":[0-9]*\|"p999_us":[0-9]*\|"max_us":[0-9]*\|"send_lag_max_us":[0-9]*\|"from_send_p99_us":[0-9]*\|"gen_cpu_us_per_reply":[0-9.]*' | tr '\n' ' ')"
}

rate_of() { grep -o '"rate":[0-9.]*' "$OUT/$1.json" | cut -d: -f2 | cut -d. -f1; }
replies_of() { grep -o '"replies":[0-9]*' "$OUT/$1.json" | cut -d: -f2; }

# io_bytes PID FIELD: a counter of /proc/PID/io (write_bytes, wchar).
io_bytes() { grep "^$2:" "/proc/$1/io" | cut -d' ' -f2; }

# cpu_ticks PID: the process's user + system time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu_per_reply LABEL TICKS_BEFORE TICKS_AFTER: CPU microseconds the server spent per
# reply of that run (warm-up and drain included on both sides): the figure that this
# machine's run-to-run noise moves least.
cpu_per_reply() {
  local replies; replies=$(replies_of "$1")
  echo "$1: $(( ($3 - $2) * 1000000 / $(getconf CLK_TCK) / (replies > 0 ? replies : 1) )) µs of server CPU per reply"
}

# fill DIR PROFILES EVENTS: every profile a-<n> gets EVENTS events through POST /v1/events.
fill() {
  local dir=$1 profiles=$2 events=$3
  local total=$((profiles * events)) requests=$(((profiles * events + 99) / 100))
  cat >"$OUT/fill.lua" <<LUA
dofile("tests/bench/events_batch.lua")
local sent, base = 0, request
-- wrk builds one request before the run that it never sends: hence the + 1.
request = function() sent = sent + 1; if sent > $requests + 1 then return wrk.format("GET", "/healthz") end; return base() end
LUA
  WRITE_KEY=$(cat "$dir/web.key") BATCH=100 PROFILES=$profiles SEQUENTIAL=1 \
    wrk -t1 -c1 -d3600s -s "$OUT/fill.lua" http://127.0.0.1:18080/v1/events >"$OUT/fill.wrk" &
  local wrk_pid=$! start=$SECONDS m=0 limit=${FILL_LIMIT:-3600}
  while [ "${m:-0}" -lt "$total" ] && [ $((SECONDS - start)) -lt "$limit" ]; do
    sleep 1
    m=$(stats "$dir" | grep -o '"messages":[0-9]*' | cut -d: -f2)
  done
  kill "$wrk_pid"; wait "$wrk_pid" 2>/dev/null || true
  if [ "${m:-0}" -lt "$total" ]; then
    echo "fill stopped after FILL_LIMIT=$limit s with ${m:-0} of $total events" >&2
    return 1
  fi
  echo "filled $profiles profiles x $events events in $((SECONDS - start)) s"
}

scenario_1() {
  local dir=$OUT/s1
  rm -rf "$dir"
  # NUDGE_CONFIG: a config file for nudge (e.g. "[server]\nio_threads = 2").
  start_nudge "$dir" "${NUDGE_CONFIG:-}"
  "$ECHO" --listen 127.0.0.1:18081 >/dev/null 2>&1 &
  local echo_pid=$!
  pids+=("$echo_pid")
  sleep 0.5
  # A steady stream: the 10,000 profiles exist before anything is measured (creating
  # a profile costs more than updating one; see docs/BENCHMARKS.md).
  fill "$dir" 10000 1
  local key; key=$(cat "$dir/web.key")
  local t0 t1
  t0=$(cpu_ticks "$echo_pid")
  run_bench s1-baseline --url ws://127.0.0.1:18081/v1/stream --connections 64 --window 16 --profiles 10000
  t1=$(cpu_ticks "$echo_pid"); cpu_per_reply s1-baseline "$t0" "$t1"
  t0=$(cpu_ticks "$nudge_pid")
  run_bench s1-nudge --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --window 16 --profiles 10000
  t1=$(cpu_ticks "$nudge_pid"); cpu_per_reply s1-nudge "$t0" "$t1"
  local base nudge half
  base=$(rate_of s1-baseline); nudge=$(rate_of s1-nudge); half=$((nudge / 2))
  echo "ratio nudge/baseline: $(echo "scale=2; $nudge / $base" | bc)"
  t0=$(cpu_ticks "$nudge_pid")
  run_bench s1-open-half --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --mode open --rate "$half" --profiles 10000
  t1=$(cpu_ticks "$nudge_pid"); cpu_per_reply s1-open-half "$t0" "$t1"
  echo "$half" >"$OUT/s1-half-rate"
}

scenario_2() {
  # The filled dir is kept for the next runs (and scenario 5). Every run adds its
  # messages to it (replies are kept for the 24 h dedupe window), and a grown file
  # dirties more pages per message: remove $OUT/s2 for a fresh fill (docs/BENCHMARKS.md,
  # "Cold profiles over a minute").
  local dir=$OUT/s2 profiles=${PROFILES:-1000000}
  if [ ! -f "$dir/data.mdb" ] || [ "$(cat "$dir/.profiles" 2>/dev/null)" != "$profiles" ]; then
    rm -rf "$dir"
    start_nudge "$dir"
    fill "$dir" "$profiles" 1
    stop_nudge
    echo "$profiles" >"$dir/.profiles"
  fi
  local key; key=$(cat "$dir/web.key")
  local rate=${RATE:-$(cat "$OUT/s1-half-rate" 2>/dev/null || echo 10000)}
  # Activations read the file through the page cache: the part of it that is not there
  # is read from the disk (a closed loop over a file mostly paged out did 1,169 msgs/s).
  local cached; cached=$(fincore --bytes --noheadings -o RES "$dir/data.mdb" 2>/dev/null || echo 0)
  echo "s2: data file $(du -m "$dir/data.mdb" | cut -f1) MB, $(( ${cached:-0} / 1048576 )) MB of it in the page cache"
  # A fresh start each time: every profile is passivated, so most messages activate one.
  start_nudge "$dir"
  local t0 t1 w0 w1 k0 k1
  t0=$(cpu_ticks "$nudge_pid"); w0=$(io_bytes "$nudge_pid" write_bytes); k0=$(kernel_counts "$nudge_pid")
  run_bench s2-closed --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --window 16 --profiles "$profiles"
  t1=$(cpu_ticks "$nudge_pid"); cpu_per_reply s2-closed "$t0" "$t1"
  k1=$(kernel_counts "$nudge_pid"); echo "s2-closed: $(kernel_per_reply "$k0" "$k1" "$(replies_of s2-closed)")"
  # The data file's pages each message dirties (write_bytes counts a mapped page as it is
  # dirtied): ~30 s later the kernel writes them back in one burst, which is what the
  # closed loop's rate falls by when it runs longer (docs/BENCHMARKS.md, "Cold profiles
  # over a minute").
  w1=$(io_bytes "$nudge_pid" write_bytes)
  echo "s2-closed: $(( (w1 - w0) / $(replies_of s2-closed) )) bytes of pages dirtied per reply"
  echo "activations: $(stats "$dir" | grep -o '"stored":[0-9]*') stored, $(curl -s http://127.0.0.1:18080/metrics | grep '^nudge_profile_activations_total')"
  stop_nudge
  start_nudge "$dir"
  t0=$(cpu_ticks "$nudge_pid")
  run_bench s2-open --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --mode open --rate "$rate" --profiles "$profiles"
  t1=$(cpu_ticks "$nudge_pid"); cpu_per_reply s2-open "$t0" "$t1"
  stop_nudge
}

scenario_3() {
  local dir=$OUT/s3 profiles=${PROFILES:-100000} events=${EVENTS:-20}
  rm -rf "$dir"
  # Opt-out consent, so that every profile keeps its events as history (under the
  # default opt-in regime a profile without analytics keeps no history at all).
  printf '[consent]\ndefault = "granted"\n' >"$OUT/granted.toml"
  start_nudge "$dir" "$OUT/granted.toml"
  local before; before=$(grep RssAnon "/proc/$nudge_pid/status" | tr -s ' ' | cut -d' ' -f2)
  fill "$dir" "$profiles" "$events"
  sleep 2
  local after; after=$(grep RssAnon "/proc/$nudge_pid/status" | tr -s ' ' | cut -d' ' -f2)
  echo "$(stats "$dir" | grep -o '"profiles":{[^}]*}')"
  local admin last=$((profiles - 1)); admin=$(cat "$dir/admin.token")
  local sample; sample=$(curl -sf -H "Authorization: Bearer $admin" "http://127.0.0.1:18080/v1/profiles?identity=anonymous_id:$(printf "a-%0${#last}d" 0)")
  echo "a sample profile holds $(echo "$sample" | grep -o '"recent_events":\[[^]]*' | grep -o '"ts"' | wc -l) events and $(echo "$sample" | grep -o '"decision_id"' | wc -l) decisions"
  echo "anonymous resident memory: $before kB idle, $after kB after; per active profile: $(( (after - before) * 1024 / profiles )) bytes"
  grep -E "RssFile|VmHWM" "/proc/$nudge_pid/status" | tr -s ' ' | tr '\n' ' '; echo "(the LMDB map is file-backed)"
  stop_nudge
}

scenario_4() {
  local dir=$OUT/s4
  rm -rf "$dir"
  # POWER_SYNC=log: the commit log instead of LMDB's own syncs (docs/BENCHMARKS.md).
  printf '[durability]\nmode = "power"\npower_sync = "%s"\n' "${POWER_SYNC:-lmdb}" >"$OUT/power.toml"
  start_nudge "$dir" "$OUT/power.toml"
  fill "$dir" 10000 1
  local key; key=$(cat "$dir/web.key")
  # wchar: the bytes LMDB's writes hand to the kernel (power durability writes its
  # pages with pwrite); write_bytes: what the kernel counts as dirtied for them, which
  # on this machine's kernel is several times more (docs/BENCHMARKS.md).
  local s0 w0 c0; s0=$(stats "$dir"); w0=$(io_bytes "$nudge_pid" write_bytes)
  c0=$(io_bytes "$nudge_pid" wchar)
  run_bench s4-power --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --window 16 --profiles 10000
  local s w1 c1; s=$(stats "$dir"); w1=$(io_bytes "$nudge_pid" write_bytes)
  c1=$(io_bytes "$nudge_pid" wchar)
  local commits records
  commits=$(( $(echo "$s" | grep -o '"commits":[0-9]*' | cut -d: -f2) - $(echo "$s0" | grep -o '"commits":[0-9]*' | cut -d: -f2) ))
  records=$(( $(echo "$s" | grep -o '"records":[0-9]*' | cut -d: -f2) - $(echo "$s0" | grep -o '"records":[0-9]*' | cut -d: -f2) ))
  echo "journal during the run: $records records in $commits commits (each synced: LMDB's data and meta page, or the log): $(echo "scale=1; $records / $commits" | bc) records per commit"
  echo "written: $(( (c1 - c0) / records )) bytes per record, $(( (c1 - c0) / 1024 / commits )) KiB per commit (wchar)"
  echo "pages dirtied: $(( (w1 - w0) / records )) bytes per record, $(( (w1 - w0) / 1024 / commits )) KiB per commit (write_bytes)"
  # The closed loop's p99 is its queue (1,024 in flight); the latency target is read in
  # an open loop at half of the closed loop's rate, or at RATE.
  local half=${RATE:-$(( $(rate_of s4-power) / 2 ))}
  run_bench s4-open-half --url ws://127.0.0.1:18080/v1/stream --key "$key" --connections 64 --mode open --rate "$half" --profiles 10000
  stop_nudge
}

scenario_5() {
  # Over the data dir of scenario 2 (run it first), or DIR.
  local dir=${DIR:-$OUT/s2}
  [ -f "$dir/data.mdb" ] || { echo "scenario 5 needs a filled data dir: run scenario 2 first or set DIR" >&2; return 1; }
  local stored
  for run in 1 2 3; do
    timed_start "$dir"
    stored=$(stats "$dir" | grep -o '"stored":[0-9]*' | cut -d: -f2)
    echo "restart $run: $start_ms ms from exec to /readyz 200 ($stored profiles stored, $(du -sh "$dir/data.mdb" | cut -f1) data file)"
    stop_nudge
  done
  # Then a start after a crash, which reads every journal entry a clean stop would have
  # dropped: a copy of the dir under a closed loop over its profiles for CRASH_LOAD
  # (20s), SIGKILL, and two timed starts of what that left, each SIGKILLed too so that
  # the second reads the same journal. CRASH=0 skips it.
  [ "${CRASH:-1}" = 0 ] && return 0
  local copy=$OUT/s5-crash profiles
  profiles=$(cat "$dir/.profiles" 2>/dev/null || echo 10000)
  rm -rf "$copy"
  cp -a --sparse=always "$dir" "$copy"
  start_nudge "$copy"
  DURATION=${CRASH_LOAD:-20s} WARMUP=0s run_bench s5-load --url ws://127.0.0.1:18080/v1/stream \
    --key "$(cat "$copy/web.key")" --connections 64 --window 16 --profiles "$profiles"
  echo "live journal entries at the kill: $(stats "$copy" | grep -o '"live_entries":[0-9]*' | cut -d: -f2)"
  kill_nudge
  for run in 1 2; do
    timed_start "$copy"
    echo "start after SIGKILL $run: $start_ms ms from exec to /readyz 200"
    kill_nudge
  done
  grep 'journal: .* entries from position' "$OUT/nudge.log" | tail -1
  rm -rf "$copy"
}

scenario_6() {
  local dir=$OUT/s6
  rm -rf "$dir"
  start_nudge "$dir"
  WRITE_KEY=$(cat "$dir/web.key") BATCH=${BATCH:-100} PROFILES=10000 \
    wrk -t1 -c8 -d"${DURATION}" --latency -s tests/bench/events_batch.lua http://127.0.0.1:18080/v1/events |
    grep -E "Requests/sec|50%|90%|99%|events|errors"
  stop_nudge
}

case "${1:-}" in
  1|2|3|4|5|6) "scenario_$1" ;;
  *) echo "usage: $0 1|2|3|4|5|6 (see docs/BENCHMARKS.md)" >&2; exit 2 ;;
esac
