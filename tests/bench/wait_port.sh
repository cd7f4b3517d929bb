# Sourced by the bench scripts: wait_port PID OUT_FILE NAME sets $port from the
# server's "listening on http://HOST:PORT" line (at most 20 s), or returns 1;
# wait_ready PORT LOG waits (at most 10 s) for nudge's /readyz on 127.0.0.1:PORT, or
# says to look at LOG and returns 1.
wait_port() {
    local pid=$1 out=$2 name=$3 line
    port=""
    for _ in $(seq 1 200); do
        if line=$(grep -m1 '^listening on http://' "$out" 2>/dev/null); then
            port=${line##*:}
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "smoke: $name did not print its port" >&2
    return 1
}

wait_ready() {
    local port=$1 log=$2
    for _ in $(seq 1 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
        sleep 0.05
    done
    echo "nudge did not become ready (see $log)" >&2
    return 1
}
