#!/usr/bin/env bash
# Replicas (figures, not a test): what a second replica behind HAProxy buys concurrent users,
# and what a replica killed under load costs them. Every `bund serve` is pinned to a core of
# its own (taskset), HAProxy runs examples/haproxy.cfg with this run's ports.
#
#   bash scripts/bench-cluster.sh [BUND] [ROWS]     # default target/release/bund, 1000000
#   CLUSTER_CLIENTS=32 CLUSTER_SECS=60 bash scripts/bench-cluster.sh ...
#   CLUSTER_CASES="kill" bash scripts/bench-cluster.sh ...     # some cases only
#
# Prints, each for CLUSTER_CLIENTS clients (default 32) running the BI flow's small queries
# (dashboard aggregates and an ID lookup, each client one connection, as pudong_police) for
# CLUSTER_SECS seconds (default 60):
#   one        one replica on core 0, through HAProxy: queries/s, p50, p99
#   two        two replicas on cores 0 and 1, through HAProxy: queries/s, p50, p99
#   kill       two replicas; at a third of the time one is killed (SIGKILL), at two thirds
#              started again: the share of queries answered, first try and after the
#              client's retry (a client whose query fails reconnects and sends it again,
#              once), and what failed
set -euo pipefail
cd "$(dirname "$0")/.."
BUND=$(realpath "${1:-target/release/bund}")
ROWS="${2:-1000000}"
CLIENTS="${CLUSTER_CLIENTS:-32}"
SECS="${CLUSTER_SECS:-60}"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

data=$(bench_data "$BUND" "$ROWS")
config="$BUND_CACHE/bench-cluster"
rm -rf "$config"
bench_config "$config"
# every client is pudong_police: one principal, whose default audit budget would refuse
# the load this measures (see bench-latency.sh)
printf 'audit_records_per_minute = 1000000\n' >>"$config/server.toml"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
FLIGHT=("$(free_port)" "$(free_port)")
HTTP=("$(free_port)" "$(free_port)")
LB=$(free_port)
KEY="bench-cluster-signing-key-0123456789abcdef"
PIDS=("" "")
HAPROXY_PID=""

# start_replica I: `bund serve` as replica rI on core I, its ports, until it serves
start_replica() {
    local i=$1
    env BUND_SIGNING_KEY="$KEY" RUST_LOG=warn taskset -c "$i" "$BUND" serve --config "$config" \
        --data-dir "$data" --replica "r$i" --flight-addr "127.0.0.1:${FLIGHT[$i]}" \
        --http-addr "127.0.0.1:${HTTP[$i]}" >"$config/r$i.out" 2>"$config/r$i.log" &
    PIDS[i]=$!
    # not a job of this shell: a replica killed on purpose is not reported as one
    disown "${PIDS[i]}"
    bench_wait_addr "$config/r$i.out" >/dev/null
}

# start_haproxy N: HAProxy in front of the first N replicas
start_haproxy() {
    local cfg="$config/haproxy.cfg" i
    sed -e "s/127.0.0.1:50050/127.0.0.1:$LB/" -e '/^    server /,$d' examples/haproxy.cfg >"$cfg"
    for ((i = 0; i < $1; i++)); do
        echo "    server r$i 127.0.0.1:${FLIGHT[$i]} check port ${HTTP[$i]}" >>"$cfg"
    done
    "$BUND_TEST_HAPROXY" -db -f "$cfg" >"$config/haproxy.log" 2>&1 &
    HAPROXY_PID=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$LB") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "haproxy did not listen; see $config/haproxy.log" >&2
    return 1
}

# stop_all: HAProxy and every replica of this run (a restarted one too), until they are gone
stop_all() {
    [ -z "$HAPROXY_PID" ] || { kill "$HAPROXY_PID" 2>/dev/null; wait "$HAPROXY_PID" 2>/dev/null; } || true
    pkill -f -- "--config $config " 2>/dev/null || true
    for _ in $(seq 1 100); do
        pgrep -f -- "--config $config " >/dev/null || break
        sleep 0.1
    done
    HAPROXY_PID=""
    PIDS=("" "")
}
trap stop_all EXIT

echo "== $ROWS residents; $BUND; $CLIENTS clients x $SECS s through HAProxy at 127.0.0.1:$LB"
for case in ${CLUSTER_CASES:-one two kill}; do
    start_replica 0
    [ "$case" = one ] || start_replica 1
    start_haproxy "$([ "$case" = one ] && echo 1 || echo 2)"
    if [ "$case" = kill ]; then
        (
            sleep "$((SECS / 3))"
            kill -9 "${PIDS[0]}"
            sleep "$((SECS / 3))"
            start_replica 0
        ) &
    fi
    "$PY" scripts/bench_cluster.py "$case" "127.0.0.1:$LB" "$data" "$CLIENT" "$CLIENTS" "$SECS"
    [ "$case" != kill ] || wait "$!" 2>/dev/null || true
    stop_all
done
