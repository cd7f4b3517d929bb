#!/usr/bin/env bash
# Instructions per message of the steady path, counted by valgrind's callgrind: unlike
# CPU time on a shared VM (±25% between runs), the count repeats within about 1%, so
# it can tell a change of a few per cent from noise. It counts user-space
# instructions only: not the kernel's share (sendmsg, recvmsg, epoll) nor cache misses.
#   tests/bench/instructions.sh [TOP]
# Serves a fresh data dir under callgrind, drives a closed loop (CONNECTIONS (16) x
# WINDOW (8) in flight over PROFILES (1,000) profiles, fixed seed), lets WARM (14)
# seconds pass so that every profile exists and is active, then counts MEASURE (8)
# seconds and divides by the messages the service handled meanwhile (/v1/stats). TOP
# (default 25) lists the functions with the most instructions of their own, per
# message. With RATE set, an open loop at RATE messages/s instead: well under what the
# service manages under callgrind (~1,500/s), so that each commit holds a record or
# two, the shape of moderate load. With DATA set, a copy of that data dir instead of a
# fresh one (scenario 2's, with PROFILES=1000000: nearly every message activates a
# stored profile). Needs valgrind (not installed by
# deploy/install-deps.sh). With CONFIG set, nudge reads that config file (e.g. one
# setting [durability] checkpoint_entries, to count snapshots' share; without one it
# sets [server] io_spin_us = 0). Takes about 40 s.
# Listens on 127.0.0.1:18092; data and the callgrind file go under $OUT.
set -euo pipefail

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-instructions}
PROFILES=${PROFILES:-1000}
CONNECTIONS=${CONNECTIONS:-16}
WINDOW=${WINDOW:-8}
WARM=${WARM:-14}
MEASURE=${MEASURE:-8}
TOP=${1:-25}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
command -v valgrind >/dev/null || { echo "instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$OUT"
dir=$OUT/data
rm -rf "$dir" "$OUT"/callgrind.out*
if [ -n "${DATA:-}" ]; then cp -r "$DATA" "$dir"; else mkdir -p "$dir"; fi
pid= bench=
trap '[ -n "$bench" ] && kill "$bench" 2>/dev/null; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

# Without CONFIG the I/O thread does not poll before it sleeps ([server] io_spin_us = 0):
# callgrind would count the polling's instructions as the messages'.
if [ -z "${CONFIG:-}" ]; then
  CONFIG=$OUT/nospin.toml
  printf '[server]\nio_spin_us = 0\n' >"$CONFIG"
fi
config=(--config "$CONFIG")
# GLIBC_TUNABLES set (empty): serve does not exec itself with its malloc tuning,
# which would leave valgrind behind (valgrind replaces malloc anyway).
GLIBC_TUNABLES= valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$NUDGE" serve "${config[@]}" --listen 127.0.0.1:18092 \
  --data "$dir" >"$OUT/nudge.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null http://127.0.0.1:18092/readyz && break
  sleep 0.1
done
key=$(cat "$dir/web.key")
token=$(cat "$dir/admin.token")
# counts: the messages handled and the journal's commits so far.
counts() {
  local s; s=$(curl -sf -H "Authorization: Bearer $token" http://127.0.0.1:18092/v1/stats)
  echo "$(echo "$s" | grep -o '"messages":[0-9]*' | head -1 | cut -d: -f2) $(echo "$s" | grep -o '"commits":[0-9]*' | cut -d: -f2)"
}
loop=(--window "$WINDOW")
[ -n "${RATE:-}" ] && loop=(--mode open --rate "$RATE")
"$BENCH" --url ws://127.0.0.1:18092/v1/stream --key "$key" --connections "$CONNECTIONS" "${loop[@]}" \
  --profiles "$PROFILES" --duration "$((WARM + MEASURE + 6))s" --warmup 0s --seed 5 --fail-on-error >"$OUT/bench.out" 2>&1 &
bench=$!
sleep "$WARM"
read -r m0 c0 < <(counts)
callgrind_control -z "$pid" >/dev/null  # counts from here
sleep "$MEASURE"
callgrind_control -d "$pid" >/dev/null  # writes callgrind.out.1: what was counted since
read -r m1 c1 < <(counts)
wait "$bench"
bench=
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "messages per commit: $(echo "scale=1; ($m1 - $m0) / $(( c1 > c0 ? c1 - c0 : 1 ))" | bc)"
python3 - "$OUT/callgrind.out.1" "$((m1 - m0))" "$TOP" <<'EOF'
import re, subprocess, sys
path, n, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if n <= 0:
    sys.exit("no messages were handled while counting")
out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path], capture_output=True, text=True).stdout
rows, total = [], None
for line in out.splitlines():
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m or "=>" in line:
        continue
    count, name = int(m.group(1).replace(",", "")), m.group(2).strip()
    if name == "PROGRAM TOTALS":
        total = count
    else:
        rows.append((count, name))
if total is None:
    sys.exit("callgrind_annotate printed no totals")
print(f"messages counted: {n}")
print(f"instructions per message: {total / n:.0f}")
# Thread entry points carry the whole count as their own (callgrind's zeroing keeps
# their frames open); what is left is each function's own instructions.
for count, name in sorted(rows, reverse=True):
    if count >= total * 0.95:
        continue
    if top == 0:
        break
    top -= 1
    print(f"  {count / n:8.0f}  {name[:150]}")
EOF
