# Sourced by the smoke scripts: wait_port PID OUT_FILE NAME sets $port from the
# server's "listening on http://HOST:PORT" line (at most 20 s), or returns 1.
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
