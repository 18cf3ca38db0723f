#!/usr/bin/env bash
# PostgreSQL source benchmark (figures, not a test). Starts a PostgreSQL server of its own
# (initdb in $BUND_CACHE/bench-pg on a free port), loads ROWS people, and reports:
#   copy        COPY (SELECT * FROM people) TO STDOUT (FORMAT binary) through psql: the
#               fastest the server hands out these rows
#   bund        SELECT * FROM pgsrc.people through a release-built bund to ADBC
#   selective   a 1 %-selective query (bucket = 7) with filter pushdown (the WHERE runs in
#               PostgreSQL) and the same query against a database entry with
#               filter_pushdown = false (every row is sent, Bund filters)
#   oracle      with an index on bucket, pudong_police (row filter: its district) counting a
#               bucket whose rows are all in other districts, and one that does not exist:
#               both answers are 0, and so must be alike in time
# Rounds are interleaved so that machine noise hits every case alike; medians of 3.
#
#   bash scripts/bench-postgres.sh [ROWS]        # default: 10000000
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
ROWS="${1:-10000000}"
PG="$BUND_TEST_PG_BIN"
PASSWORD=bench-pg-pw

cargo build --release -p bund-server --bin bund
BUND="${CARGO_TARGET_DIR:-target}/release/bund"

pgdir="$BUND_CACHE/bench-pg"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$pgdir"
mkdir -p "$pgdir"
echo "$PASSWORD" >"$pgdir/pw"
[ "$(id -u)" = 0 ] && chown -R postgres "$pgdir"
as_pg "$PG/initdb" -D "$pgdir/data" -U bund --pwfile="$pgdir/pw" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
as_pg "$PG/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
    -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c shared_buffers=1GB" start >/dev/null
config="$BUND_CACHE/bench-pg-config"
trap 'kill ${BENCH_PID:-0} 2>/dev/null || true; as_pg "$PG/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true' EXIT
psql_() { PGPASSWORD=$PASSWORD "$PG/psql" -h 127.0.0.1 -p "$port" -U bund -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "== loading $ROWS rows into PostgreSQL"
psql_ -c "CREATE TABLE people AS SELECT i::int8 AS id, lpad(i::text, 18, '0') AS id_card,
    'name ' || i AS name,
    (ARRAY['310101','310104','310105','310106','310107','310109','310110','310112',
           '310113','310114','310115','310116','310117','310118','310120','310151'])[1 + i % 16] AS district_code,
    DATE '1950-01-01' + (i % 20000)::int AS birth_date,
    ((i % 100000) / 100.0)::numeric(12,2) AS amount,
    (i % 100)::int4 AS bucket
    FROM generate_series(1, $ROWS) i" -c "VACUUM ANALYZE people"

bench_config "$config"
bench_db_bureau "$config" postgres pgsrc public.people
bench_police_policy "$config" pgsrc
data=$(bench_data "$BUND" 1000000)
bench_start "$BUND" "$config" "$data" BUND_BENCH_DB_URL="postgres://bund:$PASSWORD@127.0.0.1:$port/postgres?sslmode=disable"
pid=$BENCH_PID
addr=$BENCH_ADDR

runs="$BUND_CACHE/bench-pg-runs.txt"
: >"$runs"
copy_run() {
    local t0 t1
    t0=$(date +%s.%N)
    psql_ -c "\\copy (SELECT * FROM people) TO '/dev/null' WITH (FORMAT binary)"
    t1=$(date +%s.%N)
    echo "copy $ROWS $(echo "$t1 - $t0" | bc)"
}
for i in 1 2 3 4; do
    copy_run >>"$runs"
    bench_throughput "$addr" bund admin "SELECT * FROM pgsrc.people" >>"$runs"
    bench_throughput "$addr" pushdown admin "SELECT * FROM pgsrc.people WHERE bucket = 7" >>"$runs"
    bench_throughput "$addr" nopush admin "SELECT * FROM pgsrc.people_nopush WHERE bucket = 7" >>"$runs"
    [ "$i" = 1 ] && : >"$runs" # the first round warms caches
done
bench_summary "$runs" "
Bund rows/s / COPY binary rows/s = med['copy'] / med['bund']
1 % selective query, pushdown speed-up = med['nopush'] / med['pushdown']"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status)"

# oracle: with an index on bucket, an officer's empty answers (see bench_oracle)
psql_ -c "CREATE INDEX ON people (bucket)" -c "ANALYZE people"
bench_oracle "$addr" pgsrc
