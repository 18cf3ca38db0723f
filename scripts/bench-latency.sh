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
#                and on): median of 7; on the file as the generator writes it (bloom filters
#                on the lookup columns, page index) and on a copy without either (pyarrow);
#                and SELECT 1 through the same client path, the protocol's floor
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

data=$(bench_data "$BUND" "$ROWS")
# The residents again as a plain file: no bloom filters, no page index, the same row groups
# (pyarrow's defaults), served as plain.residents, for the lookup without those aids;
# written again when the data set is.
if [ ! "$data/plain/residents/part-00000.parquet" -nt "$data/MANIFEST.json" ]; then
    mkdir -p "$data/plain/residents"
    "$PY" - "$data" <<'PY'
import sys
import pyarrow.parquet as pq
data = sys.argv[1]
table = pq.read_table(f"{data}/police/residents")
pq.write_table(table, f"{data}/plain/residents/part-00000.parquet", row_group_size=128 * 1024,
               compression="snappy", write_page_index=False)
PY
fi
trap 'kill "${BENCH_PID:-}" 2>/dev/null || true' EXIT
config="$BUND_CACHE/bench-latency"
bench_config "$config"
cat >>"$config/catalog.toml" <<'EOT'

[[bureau]]
id = "plain"
name_zh = "基准"
name_en = "Benchmark"

[[bureau.table]]
name = "residents"
description = "police.residents without bloom filters or page index."
open_level = "not_open"
source = { kind = "parquet", location = "plain/residents/" }
EOT
printf '\n[[grant]]\nroles = ["admin"]\nschemas = ["plain"]\n' >>"$config/security.toml"
# The concurrent case runs every client as admin: one principal, whose default audit budget
# (6,000 records a minute; an ADBC query is four requests: prepare, GetFlightInfo, DoGet,
# close) refuses what is past 25 queries a second. This measures the server, not the budget.
printf 'audit_records_per_minute = 1000000\n' >>"$config/server.toml"
bench_start "$BUND" "$config" "$data"
echo "== $ROWS residents; $BUND at $BENCH_ADDR"
"$PY" scripts/bench_latency.py "$BENCH_ADDR" "$data" "$CLIENT" \
    "${LAT_CLIENTS:-64}" "${LAT_SECS:-60}"
