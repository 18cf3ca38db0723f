#!/usr/bin/env bash
# Serving benchmark (figures, not a test): streams `SELECT * FROM police.residents` from a
# release-built `bund` to the external clients in ../shared/clients (ADBC and raw
# pyarrow.flight), for 1 million and 10 million residents, and reports rows/s, MB/s, time to
# first batch and the server's peak RSS (VmHWM).
#
#   bash scripts/bench-serve.sh [ROWS ...]        # default: 1000000 10000000
#
# Needs the venv of scripts/test-deps.sh (pyarrow, ADBC). Data sets are kept in
# $BUND_CACHE/bench-<rows> so a second run skips generation.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
SIZES=("${@:-1000000 10000000}")
# shellcheck disable=SC2206
SIZES=(${SIZES[*]})

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"
QUERY="SELECT * FROM police.residents"

for rows in "${SIZES[@]}"; do
    data="$BUND_CACHE/bench-$rows"
    if ! grep -qs "\"generator_version\": $BENCH_GENERATOR_VERSION" "$data/MANIFEST.json"; then
        /usr/bin/time -f "generated $rows residents in %e s (peak RSS %M KiB)" \
            "$BUND" example-data --rows "$rows" --out "$data"
    fi
    log="$BUND_CACHE/bench-$rows.log"
    RUST_LOG=info "$BUND" serve --flight-addr 127.0.0.1:0 --data-dir "$data" >"$log.out" 2>"$log" &
    pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    addr=$(bench_wait_addr "$log.out")
    echo "== $rows residents, server pid $pid at $addr"
    for mode in throughput raw; do
        "$PY" "$CLIENT" "$addr" -u admin -p admin-demo --mode "$mode" --query "$QUERY" \
            --warmup 1 --repeat 3 --json "$BUND_CACHE/bench-$rows-$mode.json"
    done
    echo "server peak RSS: $(grep VmHWM /proc/$pid/status)"
    kill -TERM $pid
    wait $pid || true
    trap - EXIT
done
