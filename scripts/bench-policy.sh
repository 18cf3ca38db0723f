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
BUND_CACHE="${BUND_CACHE:-$PWD/.cache}"
bash scripts/test-deps.sh >/dev/null
PY="$BUND_CACHE/venv/bin/python"
CLIENT="${BUND_BI_CLIENT:-../shared/clients/bi_client.py}"
ROWS="${1:-10000000}"

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"
data="$BUND_CACHE/bench-$ROWS"
if ! grep -qs '"generator_version": 2' "$data/MANIFEST.json"; then
    "$BUND" example-data --rows "$ROWS" --out "$data"
fi
config="$BUND_CACHE/bench-policy-config"
mkdir -p "$config"
cp examples/shanghai/catalog.toml examples/shanghai/security.toml "$config/"
printf 'audit_dir = "%s"\n' "$BUND_CACHE/bench-policy-audit" >"$config/server.toml"
log="$BUND_CACHE/bench-policy.log"
BUND_SECRET_CITY_TOKEN=bench-policy-city-token-key-0123456789 RUST_LOG=warn \
    "$BUND" serve --config "$config" --flight-addr 127.0.0.1:0 --data-dir "$data" >"$log.out" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 600); do
    addr=$(sed -n 's/^bund: serving Flight SQL on //p' "$log.out" 2>/dev/null || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "bund did not start; see $log"; exit 1; }
echo "== $ROWS residents, server pid $pid at $addr"
run() { # name user query
    "$PY" "$CLIENT" "$addr" -u "$2" -p "$2-demo" --mode throughput --query "$3" \
        --warmup 0 --repeat 1 --json "$BUND_CACHE/bench-policy-$1.json" >/dev/null
    "$PY" - "$BUND_CACHE/bench-policy-$1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["runs"][0] if "runs" in d else d
rows = r.get("rows") or d.get("rows")
secs = r.get("seconds") or r.get("elapsed_s") or d.get("seconds")
print(f"{rows} {secs}")
PY
}
for i in 1 2 3 4; do
    for case in admin filtered police; do
        case $case in
            admin) line=$(run admin admin "SELECT * FROM police.residents");;
            filtered) line=$(run filtered admin "SELECT * FROM police.residents WHERE district_code = '310115'");;
            police) line=$(run police pudong_police "SELECT * FROM police.residents");;
        esac
        [ "$i" = 1 ] && continue # warm-up round
        echo "$case $line" >>"$BUND_CACHE/bench-policy-runs.txt.$$"
    done
done
"$PY" - "$BUND_CACHE/bench-policy-runs.txt.$$" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    case, rows, secs = line.split()
    runs.setdefault(case, []).append((int(rows), float(secs)))
med = {c: statistics.median(s for _, s in v) for c, v in runs.items()}
for c, v in runs.items():
    rows = v[0][0]
    print(f"{c:9s} rows={rows:>9d}  median {med[c]:.3f} s  {rows / med[c] / 1e6:.2f} M rows/s")
print(f"policy cost (police / admin-filtered, same rows out): {med['police'] / med['filtered']:.2f}x")
print(f"police / admin-all time ratio: {med['police'] / med['admin']:.2f}x")
PY
rm -f "$BUND_CACHE/bench-policy-runs.txt.$$"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status)"
kill -TERM $pid
wait $pid || true
trap - EXIT
