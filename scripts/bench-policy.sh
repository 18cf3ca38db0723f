#!/usr/bin/env bash
# Policy benchmark (figures, not a test): what the security barrier costs when serving.
# Streams `SELECT * FROM police.residents` through ADBC from a release-built `bund`:
#   admin            every resident, unmasked (no barrier: admin's rule is the identity)
#   admin, filtered  the same rows the police officer gets, unmasked (WHERE district_code = '310115')
#   pudong_police    row filter (district 310115) + three masks, behind the barrier
# and reports rows/s for each; the cost of the policy is police time / admin-filtered time
# (the same rows out). Runs are interleaved so that machine noise hits all three alike.
#
#   bash scripts/bench-policy.sh [ROWS]        # default: 10000000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ROWS="${1:-10000000}"

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"
data=$(bench_data "$BUND" "$ROWS")
trap 'kill "${BENCH_PID:-}" 2>/dev/null || true' EXIT
bench_serve "$BUND" "$BUND_CACHE/bench-policy-config" "$data"
pid=$BENCH_PID
addr=$BENCH_ADDR
echo "== $ROWS residents, server pid $pid at $addr"
runs="$BUND_CACHE/bench-policy-runs.txt"
: >"$runs"
for i in 1 2 3 4; do
    bench_throughput "$addr" admin admin "SELECT * FROM police.residents" >>"$runs"
    bench_throughput "$addr" filtered admin "SELECT * FROM police.residents WHERE district_code = '310115'" >>"$runs"
    bench_throughput "$addr" police pudong_police "SELECT * FROM police.residents" >>"$runs"
    [ "$i" = 1 ] && : >"$runs" # warm-up round
done
bench_summary "$runs" "
policy cost (police / admin-filtered, same rows out) = med['police'] / med['filtered']
police / admin-all time ratio = med['police'] / med['admin']"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status)"
kill -TERM $pid
wait $pid || true
trap - EXIT
