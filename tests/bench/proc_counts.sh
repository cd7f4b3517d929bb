# Sourced by the bench scripts: what a run cost the server, read from /proc/PID/stat.
# kernel_counts PID: the process's minor page faults, user and system time (ticks) so far.
kernel_counts() { awk '{print $10, $14, $15}' "/proc/$1/stat"; }
# kernel_per_reply "COUNTS_BEFORE" "COUNTS_AFTER" REPLIES: minor page faults and the user /
# system split of the server's CPU per reply (docs/BENCHMARKS.md, "Huge pages for the heap").
kernel_per_reply() {
  awk -v a="$1" -v b="$2" -v n="${3:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); if (n < 1) n = 1
    printf "%.2f minor page faults, %.1f µs user and %.1f µs system CPU per reply\n",
      (y[1] - x[1]) / n, (y[2] - x[2]) * 1e6 / hz / n, (y[3] - x[3]) * 1e6 / hz / n }'
}
