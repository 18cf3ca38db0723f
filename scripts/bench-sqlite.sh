#!/usr/bin/env bash
# SQLite source benchmark (figures, not a test). Writes a SQLite file of ROWS people
# (district = id % 16, bucket = id % 100, an index on bucket) and reports, through a
# release-built bund:
#   bund        SELECT * FROM sqsrc.people to ADBC
#   oracle      pudong_police (row filter: its district) counting a bucket whose rows are
#               all in other districts, and one that does not exist: both answers are 0,
#               and so must be alike in time (the user's predicate is sent behind the fence
#               of a subquery with LIMIT -1, which SQLite neither flattens nor pushes into)
#
#   bash scripts/bench-sqlite.sh [ROWS]        # default: 2000000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ROWS="${1:-2000000}"

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"

db="$BUND_CACHE/bench-sqlite/people.sqlite"
mkdir -p "$(dirname "$db")"
rm -f "$db"
echo "== writing $ROWS rows to $db"
"$PY" - "$db" "$ROWS" <<'PY'
import sqlite3, sys
path, rows = sys.argv[1], int(sys.argv[2])
districts = ['310101', '310104', '310105', '310106', '310107', '310109', '310110', '310112',
             '310113', '310114', '310115', '310116', '310117', '310118', '310120', '310151']
db = sqlite3.connect(path)
db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, id_card TEXT NOT NULL,"
           " district_code TEXT NOT NULL, bucket INTEGER NOT NULL)")
db.executemany("INSERT INTO people VALUES (?, ?, ?, ?)",
               ((i, f"{i:018d}", districts[i % 16], i % 100) for i in range(1, rows + 1)))
db.execute("CREATE INDEX people_bucket ON people (bucket)")
db.execute("ANALYZE")
db.commit()
PY

config="$BUND_CACHE/bench-sqlite-config"
bench_config "$config"
cat >>"$config/catalog.toml" <<EOT

[[database]]
name = "bench_sqlite"
kind = "sqlite"
path = "$db"

[[bureau]]
id = "sqsrc"
name_zh = "基准"
name_en = "Benchmark"

[[bureau.table]]
name = "people"
description = "Benchmark rows in a SQLite file."
open_level = "not_open"
source = { kind = "database", database = "bench_sqlite", table = "people" }
EOT
printf '\n[[grant]]\nroles = ["admin"]\nschemas = ["sqsrc"]\n' >>"$config/security.toml"
bench_police_policy "$config" sqsrc
data=$(bench_data "$BUND" 1000000)
trap 'kill ${BENCH_PID:-0} 2>/dev/null || true' EXIT
bench_start "$BUND" "$config" "$data"
runs="$BUND_CACHE/bench-sqlite-runs.txt"
: >"$runs"
for i in 1 2 3 4; do
    bench_throughput "$BENCH_ADDR" bund admin "SELECT * FROM sqsrc.people" >>"$runs"
    [ "$i" = 1 ] && : >"$runs" # the first round warms caches
done
bench_summary "$runs" ""
bench_oracle "$BENCH_ADDR" sqsrc
