# Shared by the bench-*.sh scripts (sourced from the repository root, not run). Installs
# what the clients need (scripts/test-deps.sh) and sets BUND_CACHE, PY (the venv's python)
# CLIENT (../shared/clients/bi_client.py, or BUND_BI_CLIENT) and BENCH_GENERATOR_VERSION.
BUND_CACHE="${BUND_CACHE:-$PWD/.cache}"
bash scripts/test-deps.sh >/dev/null
# shellcheck disable=SC1091
source "$BUND_CACHE/env.sh"
PY="$BUND_CACHE/venv/bin/python"
CLIENT="${BUND_BI_CLIENT:-../shared/clients/bi_client.py}"
# The example data's generator version (bund_example_data::GENERATOR_VERSION): data written
# by another version is written again.
BENCH_GENERATOR_VERSION=5

# bench_data BUND ROWS: the example data of ROWS residents, in $BUND_CACHE/bench-ROWS,
# written by BUND unless it is there at this generator version; prints its directory.
bench_data() {
    local data="$BUND_CACHE/bench-$2"
    if ! grep -qs "\"generator_version\": $BENCH_GENERATOR_VERSION" "$data/MANIFEST.json"; then
        "$1" example-data --rows "$2" --out "$data" >&2
    fi
    echo "$data"
}

# bench_wait_addr LOG_OUT: the address `bund serve` printed to LOG_OUT, within 60 s.
bench_wait_addr() {
    local addr=""
    for _ in $(seq 1 600); do
        addr=$(sed -n 's/^bund: serving Flight SQL on //p' "$1" 2>/dev/null || true)
        [ -n "$addr" ] && { echo "$addr"; return 0; }
        sleep 0.1
    done
    echo "bund did not start; see ${1%.out}" >&2
    return 1
}

# bench_config CONFIG_DIR: the example's catalog and security files copied into CONFIG_DIR,
# the audit log under it.
bench_config() {
    mkdir -p "$1"
    cp examples/shanghai/catalog.toml examples/shanghai/security.toml "$1/"
    printf 'audit_dir = "%s"\n' "$1/audit" >"$1/server.toml"
}

# bench_db_bureau CONFIG_DIR KIND SCHEMA TABLE: adds to CONFIG_DIR's catalog a bureau SCHEMA
# with `people` (database KIND at $BUND_BENCH_DB_URL, table TABLE) and `people_nopush` (the
# same, nothing sent but the columns), granted to admin.
bench_db_bureau() {
    cat >>"$1/catalog.toml" <<EOT

[[database]]
name = "bench_db"
kind = "$2"
url_env = "BUND_BENCH_DB_URL"

[[database]]
name = "bench_db_nopush"
kind = "$2"
url_env = "BUND_BENCH_DB_URL"
filter_pushdown = false

[[bureau]]
id = "$3"
name_zh = "基准"
name_en = "Benchmark"

[[bureau.table]]
name = "people"
description = "Benchmark rows in a $2 database."
open_level = "not_open"
source = { kind = "database", database = "bench_db", table = "$4" }

[[bureau.table]]
name = "people_nopush"
description = "The same rows, nothing sent but the columns."
open_level = "not_open"
source = { kind = "database", database = "bench_db_nopush", table = "$4" }
EOT
    cat >>"$1/security.toml" <<EOT

[[grant]]
roles = ["admin"]
schemas = ["$3"]
EOT
}

# bench_police_policy CONFIG_DIR SCHEMA: police officers see their districts' rows of
# SCHEMA.people (bench_db_bureau's table), id_card denied to everyone but admin.
bench_police_policy() {
    cat >>"$1/security.toml" <<EOT

[[grant]]
roles = ["police_officer"]
schemas = ["$2"]

[[policy]]
id = "$2_people"
dataset = "$2.people"
sensitive = ["id_card"]

  [[policy.rule]]
  roles = ["admin"]

  [[policy.rule]]
  roles = ["police_officer"]
  row_filter = "district_code IN \${principal.districts}"

  [[policy.rule]]
  default = true
  deny = ["id_card"]
EOT
}

# bench_oracle ADDR SCHEMA: pudong_police (bench_police_policy) counting, in SCHEMA.people
# (district = id % 16, bucket = id % 100), bucket 1, whose rows are all in other districts
# (310115 is id % 16 = 10), and bucket 999, which does not exist: both answers are 0, and
# their times must be alike whatever indexes the database has. Medians of 9, interleaved.
bench_oracle() {
    "$PY" - "$1" "$2" <<'PY'
import statistics, sys, time
import adbc_driver_flightsql.dbapi as fsql
addr, schema = sys.argv[1:3]
conn = fsql.connect(addr, autocommit=True,
                    db_kwargs={"username": "pudong_police", "password": "pudong_police-demo"})
def count(bucket):
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {schema}.people WHERE bucket = {bucket}")
        return cur.fetchall()[0][0]
times = {1: [], 999: []}
for _ in range(2):
    for bucket in times:
        assert count(bucket) == 0, bucket
for _ in range(9):
    for bucket, ts in times.items():
        t0 = time.perf_counter()
        count(bucket)
        ts.append(time.perf_counter() - t0)
print(f"oracle       pudong_police, count of a bucket only other districts have "
      f"{statistics.median(times[1]) * 1000:.1f} ms, of a bucket that does not exist "
      f"{statistics.median(times[999]) * 1000:.1f} ms (both 0 rows)")
PY
}

# bench_start BUND CONFIG_DIR DATA_DIR [NAME=VALUE ...]: starts `BUND serve` on a free port
# with that configuration and data (a fixed city token key, the given environment, its log
# under CONFIG_DIR); sets BENCH_PID and BENCH_ADDR.
bench_start() {
    env BUND_SECRET_CITY_TOKEN=bench-city-token-key-0123456789 RUST_LOG=warn "${@:4}" \
        "$1" serve --config "$2" --flight-addr 127.0.0.1:0 --data-dir "$3" \
        >"$2/serve.log.out" 2>"$2/serve.log" &
    BENCH_PID=$!
    BENCH_ADDR=$(bench_wait_addr "$2/serve.log.out")
}

# bench_serve BUND CONFIG_DIR DATA_DIR: bench_config, then bench_start.
bench_serve() {
    bench_config "$2"
    bench_start "$1" "$2" "$3"
}

# bench_throughput ADDR CASE USER QUERY: one timed run through ADBC; prints "CASE ROWS SECONDS".
bench_throughput() {
    local json="$BUND_CACHE/bench-run-$2.json"
    "$PY" "$CLIENT" "$1" -u "$3" -p "$3-demo" --mode throughput --query "$4" \
        --warmup 0 --repeat 1 --json "$json" >/dev/null
    "$PY" - "$2" "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
r = d["runs"][0] if "runs" in d else d
rows = r.get("rows") or d.get("rows")
secs = r.get("seconds") or r.get("elapsed_s") or d.get("seconds")
print(sys.argv[1], rows, secs)
PY
}

# bench_summary RUNS_FILE 'PYTHON EXPRESSIONS': per case (lines "CASE ROWS SECONDS") the
# median time and rows/s; then each `label=expression` line, evaluated with `med` (median
# seconds by case) in scope.
bench_summary() {
    "$PY" - "$1" "$2" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    case, rows, secs = line.split()
    runs.setdefault(case, []).append((int(rows), float(secs)))
med = {c: statistics.median(s for _, s in v) for c, v in runs.items()}
for c, v in runs.items():
    rows = v[0][0]
    print(f"{c:9s} rows={rows:>9d}  median {med[c]:.3f} s  {rows / med[c] / 1e6:.2f} M rows/s  ({len(v)} runs)")
for line in sys.argv[2].strip().splitlines():
    label, expr = line.split("=", 1)
    print(f"{label.strip()}: {eval(expr):.2f}")
PY
}
