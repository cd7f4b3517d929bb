#!/usr/bin/env bash
# Heap allocations per message of the default path, counted by valgrind's DHAT: a
# count that does not move with the machine's noise, unlike a rate.
#   tests/bench/allocs.sh [TOP]
# Two runs of `nudge serve` under DHAT, each on a fresh data dir: 3,000 messages over
# PROFILES (1,000) profiles first (activations, first snapshots), then STEADY_A (2,000)
# or STEADY_B (6,000) messages at 200/s on 4 connections (fixed seeds). The difference
# of the two runs' totals, divided by STEADY_B - STEADY_A, is what a steady message
# costs; TOP (default 15) lists the allocation sites that account for it.
# Needs valgrind (not installed by deploy/install-deps.sh). Takes about 2 minutes.
# Listens on 127.0.0.1:18091; data and DHAT files go under $OUT.
set -euo pipefail

BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/nudge-allocs}
PROFILES=${PROFILES:-1000}
STEADY_A=${STEADY_A:-2000}
STEADY_B=${STEADY_B:-6000}
TOP=${1:-15}
NUDGE=$BUILD/app/nudge
BENCH=$BUILD/tests/bench/nudge_bench
command -v valgrind >/dev/null || { echo "allocs.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$OUT"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

# run N: one DHAT run ending after N steady messages; writes $OUT/N.dhat.
run() {
  local n=$1 dir=$OUT/data-$1
  rm -rf "$dir" "$OUT/$n.dhat"
  mkdir -p "$dir"
  # GLIBC_TUNABLES set (empty): serve does not exec itself with its malloc tuning,
  # which would leave valgrind behind (valgrind replaces malloc anyway).
  GLIBC_TUNABLES= valgrind --tool=dhat --dhat-out-file="$OUT/$n.dhat" "$NUDGE" serve --listen 127.0.0.1:18091 --data "$dir" \
    >"$OUT/$n.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null http://127.0.0.1:18091/readyz && break
    sleep 0.1
  done
  local key
  key=$(cat "$dir/web.key")
  "$BENCH" --url ws://127.0.0.1:18091/v1/stream --key "$key" --connections 4 --mode open --rate 300 \
    --profiles "$PROFILES" --duration 10s --warmup 0s --seed 7 --run-id fill --fail-on-error >/dev/null 2>&1
  "$BENCH" --url ws://127.0.0.1:18091/v1/stream --key "$key" --connections 4 --mode open --rate 200 \
    --profiles "$PROFILES" --duration "$((n / 200))s" --warmup 0s --seed 8 --run-id steady --fail-on-error \
    >/dev/null 2>&1
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}

run "$STEADY_A"
run "$STEADY_B"
python3 - "$OUT/$STEADY_A.dhat" "$OUT/$STEADY_B.dhat" "$((STEADY_B - STEADY_A))" "$TOP" <<'EOF'
import collections, json, re, sys

def sites(path):
    d = json.load(open(path))
    frames = d["ftbl"]
    blocks, total_blocks, total_bytes = collections.Counter(), 0, 0
    for pp in d["pps"]:
        total_blocks += pp["tbk"]
        total_bytes += pp["tb"]
        # The first frame in nudge's own sources names the site.
        site = "?"
        for i in pp["fs"]:
            m = re.search(r"\((?:[\w./-]*/)?((?:actors|net|storage|policies|app)/[\w.]+:\d+)\)", frames[i]) or \
                re.search(r"\(([\w]+\.(?:cpp|hpp):\d+)\)", frames[i])
            if m and "/usr/" not in frames[i]:
                site = m.group(1)
                break
        blocks[site] += pp["tbk"]
    return blocks, total_blocks, total_bytes

a, a_blocks, a_bytes = sites(sys.argv[1])
b, b_blocks, b_bytes = sites(sys.argv[2])
n, top = int(sys.argv[3]), int(sys.argv[4])
print(f"allocations per message: {(b_blocks - a_blocks) / n:.1f}")
print(f"bytes allocated per message: {(b_bytes - a_bytes) / n:.0f}")
per_site = sorted(((k, (b[k] - a.get(k, 0)) / n) for k in b), key=lambda kv: -kv[1])
for site, v in per_site[:top]:
    print(f"  {v:5.2f}  {site}")
EOF
