#!/usr/bin/env bash
# Interactive latency (figures, not a test): what a BI tool, a dashboard and a lookup
# application see, next to DuckDB and DataFusion run in-process (Python) on the same files.
#
#   bash scripts/bench-latency.sh [BUND] [ROWS]     # default target/release/bund, 10000000
#   LAT_CLIENTS=64 LAT_SECS=60 bash scripts/bench-latency.sh ...   # the concurrency case
#   LAT_ONLY=select1,prepared bash scripts/bench-latency.sh ...      # some cases only
#
# Prints, each on loopback against one `bund serve` of the example over ROWS residents:
#   select1      SELECT 1 as GetFlightInfo + DoGet over raw pyarrow.flight: p50, p90
#   bi_flow      the BI flow of ../shared/clients/bi_client.py --mode bi (ADBC): every step
#                and the total, once on its default table (the CSV bureau's first table) and
#                once on police.residents (Parquet)
#   prepared     a prepared ID-number lookup on police.residents, executed again with new
#                parameters (ADBC): p50, p90
#   id_lookup    WHERE id_card = '…' (ADBC): Bund, DuckDB, DataFusion (pushdown_filters off
#                and on): median of 7
#   district     WHERE district_code = '310115' (23 % of the rows): rows/s, the same three
#   masked       SELECT * as pudong_police (row filter + masks) against admin's same rows
#   oracle       pudong_police counting a household of another district, and one outside
#                every row group's range: both answers are empty, and so must be alike in time
#   concurrent   LAT_CLIENTS clients (default 64), each a connection running small dashboard
#                aggregates for LAT_SECS seconds (default 60): queries/s, p50, p99
# DuckDB and DataFusion for Python are installed into the venv at the versions below.
set -euo pipefail
cd "$(dirname "$0")/.."
BUND=$(realpath "${1:-target/release/bund}")
ROWS="${2:-10000000}"
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
"$PY" -c 'import duckdb, datafusion' 2>/dev/null ||
    "$PY" -m pip install --quiet "duckdb==2.0.1" "datafusion==55.0.0"

data="$BUND_CACHE/bench-$ROWS"
if ! grep -qs "\"generator_version\": $BENCH_GENERATOR_VERSION" "$data/MANIFEST.json"; then
    "$BUND" example-data --rows "$ROWS" --out "$data"
fi
trap 'kill "${BENCH_PID:-}" 2>/dev/null || true' EXIT
bench_serve "$BUND" "$BUND_CACHE/bench-latency" "$data"
echo "== $ROWS residents; $BUND at $BENCH_ADDR"
"$PY" scripts/bench_latency.py "$BENCH_ADDR" "$data" "$CLIENT" \
    "${LAT_CLIENTS:-64}" "${LAT_SECS:-60}"
